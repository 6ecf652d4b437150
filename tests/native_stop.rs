//! End-to-end: `dump --native` stops running threads briefly with ptrace for their native
//! frames, and never leaves a thread of the target stopped: not after a dump, not when
//! gridlock is killed (SIGTERM, SIGINT, SIGKILL) in the middle of one. The target
//! (`tests/fixtures/native_running.py`) has a thread spinning in libc's memcmp (through a
//! ctypes call that releases the GIL) and one blocked in a C mutex.
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::representative::for_each_representative;
use support::{doc, fixture, gridlock, gridlock_bin, Target};

/// `dump PID --json --window 0` with `extra` flags: exit code and document.
fn dump(pid: i32, extra: &[&str]) -> (i32, Value) {
    let pid = pid.to_string();
    let mut args = vec!["dump", &pid, "--json", "--window", "0"];
    args.extend_from_slice(extra);
    let out = gridlock(&args);
    let code = out.status.code().unwrap_or(-1);
    let d = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {code}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, d)
}

fn symbols(t: &Value) -> Vec<String> {
    t["native_frames"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .map(|f| f["symbol"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The scheduler state letter of every thread of `pid`.
fn thread_states(pid: i32) -> Vec<(String, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let e = e.unwrap();
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if let Some(i) = stat.rfind(')') {
            let state = stat[i + 1..].trim_start().chars().next().unwrap_or('?');
            out.push((e.file_name().to_string_lossy().into_owned(), state));
        }
    }
    out
}

/// No thread of `pid` is in a stop (`T` stopped, `t` traced), checked a few times over 100 ms.
fn assert_none_stopped(pid: i32, when: &str) {
    for _ in 0..5 {
        let states = thread_states(pid);
        assert!(
            states.iter().all(|(_, s)| !matches!(s, 'T' | 't')),
            "{when}: {states:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The spinner is caught in C: its frames came from a ptrace stop and run from libc through
/// libffi's call into ctypes.
fn spinner_caught_in_c(d: &Value) -> bool {
    let t = doc::thread_by_name(d, "c-spinner");
    let first_in_libc = t["native_frames"][0]["module"]
        .as_str()
        .is_some_and(|m| m.contains("libc.so"));
    t["native_frames_from"] == "ptrace_stop"
        && first_in_libc
        && symbols(t).iter().any(|s| s.starts_with("ffi_call"))
}

#[test]
fn native_flag_gives_running_threads_native_frames_and_leaves_none_stopped() {
    for_each_representative(|py| {
        let target = Target::start_busy(py, &fixture("native_running.py"), &[]);

        // Without --native nothing is stopped and the running thread has no native frames;
        // the one blocked in a C mutex has them, from its syscall's registers.
        let (code, d) = dump(target.pid, &[]);
        assert_eq!(code, 0, "{:#}", d["findings"]);
        let spinner = doc::thread_by_name(&d, "c-spinner");
        assert!(
            spinner.get("native_frames").is_none() && spinner.get("native_frames_from").is_none(),
            "{spinner:#}"
        );
        let waiter = doc::thread_by_name(&d, "mutex-waiter");
        assert_eq!(waiter["native_frames_from"], "syscall", "{waiter:#}");

        // With --native: the spinner's frames, from a ptrace stop. It may be between two
        // calls (in Python) at the instant it is stopped: a few dumps catch it in C.
        let deadline = Instant::now() + Duration::from_secs(10);
        let d = loop {
            let (code, d) = dump(target.pid, &["--native"]);
            assert_eq!(code, 0, "{:#}", d["findings"]);
            assert_none_stopped(target.pid, "after dump --native");
            if spinner_caught_in_c(&d) || Instant::now() > deadline {
                break d;
            }
        };
        let spinner = doc::thread_by_name(&d, "c-spinner");
        assert!(spinner_caught_in_c(&d), "{spinner:#}");
        assert_eq!(spinner["state"], "running", "{spinner:#}");
        // pyenv's ctypes keeps its symbols (Debian's is stripped of its internal ones).
        let names = symbols(spinner);
        assert!(
            py.root.is_some() || names.iter().any(|s| s == "_ctypes_callproc"),
            "{names:?}"
        );
        // The blocked thread still reads from its syscall, without a stop.
        let waiter = doc::thread_by_name(&d, "mutex-waiter");
        assert_eq!(waiter["native_frames_from"], "syscall", "{waiter:#}");
        assert!(
            symbols(waiter)
                .iter()
                .any(|s| s.contains("pthread_mutex_lock")),
            "{waiter:#}"
        );
        // A thread waiting on a Python object gets none, with or without the flag.
        let main = doc::thread_by_name(&d, "MainThread");
        assert!(main.get("native_frames").is_none(), "{main:#}");

        // The text report shows the stopped thread's frames.
        let out = gridlock(&["dump", &target.pid.to_string(), "--window", "0", "--native"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("native") && l.contains("ffi_call")),
            "{text}"
        );

        // gridlock killed in the middle of a dump that stops the spinner at every snapshot:
        // the kernel lets go of whatever its tracer thread held.
        for (signal, after_ms) in [
            (libc::SIGTERM, 150),
            (libc::SIGINT, 230),
            (libc::SIGKILL, 310),
            (libc::SIGTERM, 390),
        ] {
            let mut g = Command::new(gridlock_bin())
                .args([
                    "dump",
                    &target.pid.to_string(),
                    "--native",
                    "--window",
                    "5s",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(after_ms));
            unsafe {
                libc::kill(g.id() as i32, signal);
            }
            let status = g.wait().unwrap();
            assert!(!status.success(), "gridlock was not stopped by {signal}");
            assert!(target.is_alive());
            assert_none_stopped(
                target.pid,
                &format!("after signal {signal} to gridlock at {after_ms} ms"),
            );
        }
    });
}
