//! Waits only the kernel explains, on real processes: flock(2) AB-BA between two processes
//! (forked, and started with subprocess) is a deadlock naming both files; POSIX byte ranges
//! (`lockf`, where the kernel answers one side EDEADLK) name the holder of the range waited
//! for and not a bystander's; an OFD lock held outside the tree is a stall naming its holder;
//! `input()` under `run` is named when the run is stopped; a thread in a syscall gridlock does
//! not model is reported so, never as fine; a lock-file protected counter hammered by 4
//! processes gives no finding. Sockets: `sendall` both ways over loopback TCP and over named
//! and abstract Unix sockets is a deadlock between processes (evidence `sock_diag`), and a
//! thread waiting for the answer of a server thread that waits for a lock it holds is one
//! too; a `connect` to a listener whose process waits for the connecting side is a deadlock,
//! an `accept` names its address and is no finding, a socket to another host is an I/O wait
//! naming it; a Unix socket server under load gives no finding. Interpreters: one pyenv
//! 3.8/3.9, pyenv 3.11, sid's 3.14.
mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{fixture, gridlock, gridlock_bin, host_path, interpreters, Interpreter, Target};

/// A representative set: the oldest pyenv 3.8/3.9, pyenv's 3.11, sid's 3.14.
fn some_interpreters() -> Vec<Interpreter> {
    let all = interpreters();
    let mut out = Vec::new();
    let pick = |f: &dyn Fn(&Interpreter) -> bool| all.iter().find(|i| f(i)).cloned();
    for p in [
        pick(&|i| i.root.is_none() && matches!(i.minor, 8 | 9) && !i.label.contains("debian")),
        pick(&|i| i.label.starts_with("3.11")),
        pick(&|i| i.label == "sid-3.14"),
    ] {
        match p {
            Some(i) => out.push(i),
            None => eprintln!("note: an interpreter of the representative set is missing"),
        }
    }
    assert!(!out.is_empty(), "no interpreter to test with");
    out
}

/// A scratch folder as the target names it (inside sid's root for sid's interpreters),
/// created on the host side and removed on drop.
struct Scratch {
    target: PathBuf,
    host: PathBuf,
}

impl Scratch {
    fn new(py: &Interpreter, what: &str) -> Scratch {
        let target = std::env::temp_dir().join(format!(
            "gridlock-kernel-{}-{}-{what}",
            std::process::id(),
            py.label
        ));
        let host = host_path(py, &target);
        let _ = std::fs::remove_dir_all(&host);
        std::fs::create_dir_all(&host).unwrap();
        Scratch { target, host }
    }
    fn arg(&self) -> &str {
        self.target.to_str().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.host);
    }
}

/// A fixture in its own process group, SIGKILLed whole (children included) on drop.
struct Group(Target);

impl Group {
    fn start(py: &Interpreter, mode: &str, dir: &Scratch) -> Group {
        Group(Target::start_with(
            py,
            &fixture("kernel_waits.py"),
            &[mode, dir.arg()],
            |cmd| unsafe {
                cmd.pre_exec(|| {
                    libc::setpgid(0, 0);
                    Ok(())
                });
            },
        ))
    }
    fn pid(&self) -> i32 {
        self.0.pid
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        unsafe { libc::kill(-self.0.pid, libc::SIGKILL) };
    }
}

/// `dump --tree` as JSON (exit code, document) and as text.
fn dump_tree(pid: i32) -> (i32, Value, String) {
    let p = pid.to_string();
    let out = gridlock(&["dump", &p, "--tree", "--json", "--window", "0.5s"]);
    let code = out.status.code().unwrap_or(-1);
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let text = gridlock(&["dump", &p, "--tree", "--window", "0", "--color", "never"]);
    (
        code,
        doc,
        String::from_utf8_lossy(&text.stdout).into_owned(),
    )
}

/// `dump --tree` of a tree that must show one deadlock (exit 3): the document, its text and
/// that deadlock.
fn dump_one_deadlock(pid: i32, label: &str) -> (Value, String, Value) {
    let (code, doc, text) = dump_tree(pid);
    assert_eq!(code, 3, "[{label}] {text}");
    let dl = findings(&doc, "deadlock");
    assert_eq!(dl.len(), 1, "[{label}] {text}");
    let deadlock = dl[0].clone();
    (doc, text, deadlock)
}

fn findings<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn file_locks(doc: &Value) -> Vec<&Value> {
    doc["locks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "file_lock")
        .collect()
}

fn holder_pids(lock: &Value) -> Vec<i64> {
    let mut v: Vec<i64> = lock["holders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["process"].as_i64())
        .collect();
    v.sort();
    v
}

#[test]
fn flock_abba_between_two_processes_is_a_deadlock_naming_both_files() {
    for py in some_interpreters() {
        for mode in ["flock_fork", "flock_subprocess"] {
            let label = format!("{} {mode}", py.label);
            let dir = Scratch::new(&py, mode);
            let g = Group::start(&py, mode, &dir);
            let (doc, text, deadlock) = dump_one_deadlock(g.pid(), &label);
            let summary = deadlock["summary"].as_str().unwrap();
            for file in ["index.lock", "refs.lock"] {
                assert!(summary.contains(file), "[{label}] {summary}");
            }
            assert!(summary.contains("held by process"), "[{label}] {summary}");
            let locks = file_locks(&doc);
            assert_eq!(locks.len(), 2, "[{label}] {locks:#?}");
            for l in &locks {
                // The path as the target names it (inside sid's root: without the root).
                let name = l["name"].as_str().unwrap();
                assert!(name.starts_with(dir.arg()), "[{label}] {name}");
                assert_eq!(l["holders"][0]["evidence"], "proc_locks", "[{label}]");
                assert_eq!(holder_pids(l).len(), 1, "[{label}] {l:#?}");
                assert!(
                    deadlock["locks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == &l["id"]),
                    "[{label}] the cycle names every lock file"
                );
            }
            // Each lock is held by the other process than the one waiting for it.
            for t in doc["threads"].as_array().unwrap() {
                assert_eq!(t["state"], "file_lock_wait", "[{label}] {t:#?}");
                assert_eq!(t["syscall_name"], "flock", "[{label}]");
                let target = t["waits_for"]["target"].as_str().unwrap();
                let lock = locks.iter().find(|l| l["id"] == target).unwrap();
                assert!(!holder_pids(lock).contains(&t["pid"].as_i64().unwrap()));
            }
            assert!(text.contains("file lock on"), "[{label}] {text}");
            assert!(text.contains("DEADLOCK"), "[{label}] {text}");
        }
    }
}

#[test]
fn lockf_ranges_name_the_holder_of_the_range_waited_for_after_edeadlk() {
    for py in some_interpreters().into_iter().skip(1) {
        let label = py.label.clone();
        let dir = Scratch::new(&py, "lockf");
        let g = Group::start(&py, "lockf", &dir);
        let (code, doc, text) = dump_tree(g.pid());
        // The parent got EDEADLK for bytes 10-19 and now waits for the child, which still
        // waits for bytes 0-9 that the parent holds: a deadlock the kernel let through.
        let children: Vec<i64> = doc["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["pid"].as_i64() != Some(g.pid() as i64))
            .map(|p| p["pid"].as_i64().unwrap())
            .collect();
        assert_eq!(children.len(), 2, "[{label}] child and bystander: {text}");
        let waiting: Vec<&Value> = doc["threads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["state"] == "file_lock_wait")
            .collect();
        assert_eq!(waiting.len(), 1, "[{label}] {text}");
        let w = &waiting[0]["waits_for"];
        assert_eq!(waiting[0]["syscall_name"], "fcntl");
        assert!(
            w["name"].as_str().unwrap().ends_with("ranges.db bytes 0-9"),
            "[{label}] {w:#?}"
        );
        assert!(
            w["via"].as_str().unwrap().contains("F_SETLKW"),
            "[{label}] {w:#?}"
        );
        let lock = file_locks(&doc)
            .into_iter()
            .find(|l| l["id"] == w["target"])
            .unwrap();
        // The bystander holds bytes 100-109 of the same file: not in the way.
        assert_eq!(
            holder_pids(lock),
            vec![g.pid() as i64],
            "[{label}] {lock:#?}"
        );
        assert_eq!(code, 3, "[{label}] {text}");
        let dl = findings(&doc, "deadlock");
        assert_eq!(dl.len(), 1, "[{label}] {text}");
        assert!(
            dl[0]["summary"].as_str().unwrap().contains("ranges.db"),
            "[{label}] {}",
            dl[0]["summary"]
        );
    }
}

#[test]
fn an_ofd_lock_held_outside_the_tree_is_a_stall_naming_its_holder() {
    for py in some_interpreters().into_iter().take(2) {
        let label = py.label.clone();
        let dir = Scratch::new(&py, "ofd");
        let holder = Group::start(&py, "ofd_hold", &dir);
        let waiter = Group::start(&py, "ofd_wait", &dir);
        let (code, doc, text) = dump_tree(waiter.pid());
        assert_eq!(code, 3, "[{label}] {text}");
        let stall = findings(&doc, "stall");
        assert_eq!(stall.len(), 1, "[{label}] {text}");
        let summary = stall[0]["summary"].as_str().unwrap();
        assert!(
            summary.contains(&format!("process {} (", holder.pid())),
            "[{label}] {summary}"
        );
        assert!(
            summary.contains("kernel_waits.py ofd_hold"),
            "[{label}] {summary}"
        );
        assert!(
            summary.contains("outside the watched processes"),
            "[{label}] {summary}"
        );
        let t = &doc["threads"][0];
        assert_eq!(t["state"], "file_lock_wait", "[{label}]");
        assert!(t["waits_for"]["via"]
            .as_str()
            .unwrap()
            .contains("F_OFD_SETLKW"));
        assert!(
            text.contains(&format!("held by pid {}", holder.pid())),
            "[{label}] {text}"
        );
    }
}

#[test]
fn input_under_run_is_named_when_the_run_is_stopped() {
    let py = some_interpreters().remove(0);
    let dir = Scratch::new(&py, "input");
    let mut child = Command::new(gridlock_bin())
        .args(["run", "--hang-after", "1500ms", "--timeout", "20s", "--"])
        .arg(&py.path)
        .arg(fixture("kernel_waits.py"))
        .args(["input", dir.arg()])
        // A stdin this test holds open and never writes: what CI gives a prompt.
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("input_wait"), "{stderr}");
    assert!(
        stderr.contains("input on fd 0 (stdin) from pipe:["),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "the stdin's writer (this test) is named: {stderr}"
    );
}

#[test]
fn a_thread_in_an_unmodelled_syscall_is_never_reported_fine() {
    for py in some_interpreters().into_iter().take(1) {
        let dir = Scratch::new(&py, "pause");
        let g = Group::start(&py, "pause", &dir);
        let p = g.pid().to_string();
        let out = gridlock(&["dump", &p, "--window", "0.3s", "--color", "never"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(
            text.contains("NOT MODELLED  1 thread blocked in pause(2): not modelled"),
            "{text}"
        );
        assert!(!text.contains("No deadlock"), "{text}");
        let (_, doc) = support::dump_json(g.pid(), "0.3s");
        assert_eq!(doc["threads"][0]["state"], "syscall");
        assert_eq!(doc["threads"][0]["syscall_name"], "pause");
    }
}

#[test]
fn a_lock_file_counter_hammered_by_four_processes_has_no_finding() {
    for py in some_interpreters().into_iter().skip(1).take(1) {
        let label = py.label.clone();
        let dir = Scratch::new(&py, "counter");
        let g = Group(Target::start_busy_with(
            &py,
            &fixture("kernel_waits.py"),
            &["counter", dir.arg()],
            |cmd| unsafe {
                cmd.pre_exec(|| {
                    libc::setpgid(0, 0);
                    Ok(())
                });
            },
        ));
        std::thread::sleep(Duration::from_millis(300));
        let (code, doc, text) = dump_tree(g.pid());
        assert_eq!(code, 0, "[{label}] {text}");
        assert!(
            doc["findings"].as_array().unwrap().is_empty(),
            "[{label}] {text}"
        );
        assert_eq!(doc["processes"].as_array().unwrap().len(), 5, "[{label}]");
        let n: u64 = std::fs::read_to_string(dir.host.join("counter"))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        assert!(n > 0, "[{label}] the workers made progress");
    }
}

#[test]
fn loopback_tcp_sendall_both_ways_is_a_deadlock_and_an_echo_server_is_not() {
    for py in some_interpreters().into_iter().skip(1) {
        let label = py.label.clone();
        let dir = Scratch::new(&py, "tcp");
        let g = Group::start(&py, "tcp_sendall", &dir);
        let (doc, _, deadlock) = dump_one_deadlock(g.pid(), &label);
        assert_eq!(
            deadlock["processes"].as_array().unwrap().len(),
            2,
            "[{label}]"
        );
        for t in doc["threads"].as_array().unwrap() {
            assert_eq!(t["state"], "io_wait", "[{label}] {t:#?}");
            assert_eq!(t["syscall_name"], "sendto", "[{label}]");
            let target = t["waits_for"]["target"].as_str().unwrap();
            let lock = doc["locks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["id"] == target)
                .unwrap();
            // Named by its two addresses, from /proc/net/tcp.
            assert!(
                lock["name"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("tcp 127.0.0.1:"),
                "[{label}] {lock:#?}"
            );
            assert!(t["blocked"].as_bool().unwrap(), "[{label}] {t:#?}");
            assert_eq!(t["waits_for"]["evidence"], "sock_diag", "[{label}] {t:#?}");
        }
        // A plain dump of one side names the connection and the process holding its other
        // end, and says it cannot tell more without it.
        let (_, one) = support::dump_json(g.pid(), "0");
        let wait = &one["threads"][0]["waits_for"];
        assert!(
            wait["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("write to tcp 127.0.0.1:"),
            "[{label}] {wait:#?}"
        );
        let notes = one["processes"][0]["notes"].to_string();
        assert!(notes.contains("outside this report"), "[{label}] {notes}");
        drop(g);
        let g = Group(Target::start_busy_with(
            &py,
            &fixture("kernel_waits.py"),
            &["tcp_healthy", dir.arg()],
            |cmd| unsafe {
                cmd.pre_exec(|| {
                    libc::setpgid(0, 0);
                    Ok(())
                });
            },
        ));
        let (code, doc, text) = dump_tree(g.pid());
        assert_eq!(code, 0, "[{label}] {text}");
        assert!(
            doc["findings"].as_array().unwrap().is_empty(),
            "[{label}] {text}"
        );
    }
}

fn start_group(py: &Interpreter, mode: &str, dir: &Scratch, busy: bool) -> Group {
    let setpgid = |cmd: &mut Command| unsafe {
        cmd.pre_exec(|| {
            libc::setpgid(0, 0);
            Ok(())
        });
    };
    let script = fixture("kernel_waits.py");
    let args = [mode, dir.arg()];
    Group(if busy {
        Target::start_busy_with(py, &script, &args, setpgid)
    } else {
        Target::start_with(py, &script, &args, setpgid)
    })
}

fn threads(doc: &Value) -> &Vec<Value> {
    doc["threads"].as_array().unwrap()
}

/// The oldest pyenv interpreter of the set and sid's 3.14.
fn ends_of_the_set() -> Vec<Interpreter> {
    let mut all = some_interpreters();
    if all.len() > 2 {
        all.remove(1);
    }
    all
}

#[test]
fn unix_socket_sendall_both_ways_is_a_deadlock_named_and_abstract() {
    for py in ends_of_the_set() {
        for mode in ["unix_sendall", "abstract_sendall"] {
            let label = format!("{} {mode}", py.label);
            let dir = Scratch::new(&py, mode);
            let g = start_group(&py, mode, &dir, false);
            let (doc, text, deadlock) = dump_one_deadlock(g.pid(), &label);
            assert_eq!(
                deadlock["processes"].as_array().unwrap().len(),
                2,
                "[{label}]"
            );
            for t in threads(&doc) {
                assert_eq!(t["state"], "io_wait", "[{label}] {t:#?}");
                assert_eq!(t["waits_for"]["evidence"], "sock_diag", "[{label}] {t:#?}");
                let lock = doc["locks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["id"] == t["waits_for"]["target"])
                    .unwrap();
                assert_eq!(lock["kind"], "socket", "[{label}]");
                // Named by the socket's name, as /proc/net/unix lists it (`@` when abstract).
                let name = lock["name"].as_str().unwrap_or_default();
                let wanted = if mode == "abstract_sendall" {
                    "unix socket @"
                } else {
                    "unix socket /"
                };
                assert!(name.starts_with(wanted), "[{label}] {lock:#?}");
                // The peer is held by the other process.
                let holders = holder_pids(lock);
                assert_eq!(holders.len(), 1, "[{label}] {lock:#?}");
                assert_ne!(holders[0], t["pid"].as_i64().unwrap(), "[{label}]");
                assert_eq!(lock["holders"][0]["evidence"], "sock_diag", "[{label}]");
            }
            assert!(
                text.contains("other end held by process"),
                "[{label}] {text}"
            );
            assert!(
                deadlock["summary"]
                    .as_str()
                    .unwrap()
                    .contains("unix socket "),
                "[{label}] {text}"
            );
        }
    }
}

#[test]
fn a_server_thread_waiting_for_the_lock_its_waiting_client_holds_is_a_deadlock() {
    for py in ends_of_the_set() {
        let label = py.label.clone();
        let dir = Scratch::new(&py, "lock_rpc");
        let g = start_group(&py, "lock_rpc", &dir, false);
        let (doc, text, deadlock) = dump_one_deadlock(g.pid(), &label);
        let main = threads(&doc)
            .iter()
            .find(|t| t["name"] == "MainThread")
            .unwrap();
        let server = threads(&doc)
            .iter()
            .find(|t| t["name"] == "server")
            .unwrap();
        assert_eq!(main["state"], "io_wait", "[{label}] {main:#?}");
        assert_eq!(main["waits_for"]["evidence"], "sock_diag", "[{label}]");
        assert_eq!(server["state"], "lock_wait", "[{label}] {server:#?}");
        assert!(
            main["holds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["lock"] == server["waits_for"]["target"]),
            "[{label}] the waiting client holds the server's lock: {text}"
        );
        let members: Vec<&Value> = deadlock["threads"].as_array().unwrap().iter().collect();
        assert!(
            members.contains(&&main["id"]) && members.contains(&&server["id"]),
            "[{label}] {text}"
        );
        assert!(text.contains("state_lock"), "[{label}] {text}");
    }
}

#[test]
fn a_connect_the_listener_never_accepts_is_a_deadlock_and_an_idle_accept_is_no_finding() {
    for py in ends_of_the_set() {
        let label = py.label.clone();
        let dir = Scratch::new(&py, "backlog");
        let g = start_group(&py, "connect_backlog", &dir, false);
        let (doc, text, _) = dump_one_deadlock(g.pid(), &label);
        let child = threads(&doc)
            .iter()
            .find(|t| t["pid"].as_i64() != Some(g.pid() as i64))
            .unwrap();
        assert_eq!(child["syscall_name"], "connect", "[{label}] {child:#?}");
        let w = &child["waits_for"];
        assert_eq!(w["evidence"], "sock_diag", "[{label}] {w:#?}");
        let name = w["name"].as_str().unwrap();
        assert!(
            name.starts_with("connect to ") && name.ends_with("backlog.sock"),
            "[{label}] {name}"
        );
        let lock = doc["locks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == w["target"])
            .unwrap();
        assert_eq!(
            holder_pids(lock),
            vec![g.pid() as i64],
            "[{label}] {lock:#?}"
        );
        assert!(
            text.contains(&format!("listened on by pid {}", g.pid())),
            "[{label}] {text}"
        );
        drop(g);

        let g = start_group(&py, "accept_idle", &dir, false);
        let (code, doc, text) = dump_tree(g.pid());
        assert_eq!(code, 0, "[{label}] {text}");
        assert!(
            doc["findings"].as_array().unwrap().is_empty(),
            "[{label}] {text}"
        );
        let t = &threads(&doc)[0];
        assert_eq!(t["waits_for"]["evidence"], "sock_diag", "[{label}] {t:#?}");
        assert!(!t["blocked"].as_bool().unwrap(), "[{label}]");
        let name = t["waits_for"]["name"].as_str().unwrap();
        assert!(name.starts_with("accept on 127.0.0.1:"), "[{label}] {name}");
        assert!(text.contains("nobody known to connect"), "[{label}] {text}");
    }
}

#[test]
fn a_socket_to_another_host_is_an_io_wait_naming_its_address() {
    let py = some_interpreters().remove(0);
    let dir = Scratch::new(&py, "remote");
    let g = start_group(&py, "connect_remote", &dir, false);
    std::thread::sleep(Duration::from_millis(300));
    let p = g.pid().to_string();
    let out = gridlock(&["dump", &p, "--json", "--window", "0.5s"]);
    let Ok(doc) = serde_json::from_slice::<Value>(&out.stdout) else {
        eprintln!("note: no connection to 198.51.100.7:80 can be made or attempted here: skipped");
        return;
    };
    let t = &threads(&doc)[0];
    if !matches!(t["syscall_name"].as_str(), Some("recvfrom" | "connect")) {
        eprintln!("note: the fixture is not waiting on 198.51.100.7:80 ({t}): skipped");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert!(doc["findings"].as_array().unwrap().is_empty(), "{doc:#}");
    let w = &t["waits_for"];
    assert_eq!(w["evidence"], "sock_diag", "{t:#}");
    assert!(
        w["name"]
            .as_str()
            .unwrap()
            .ends_with("198.51.100.7:80, a remote host"),
        "{t:#}"
    );
    assert!(w["waited_s"].as_f64().unwrap() > 0.0, "{t:#}");
    assert!(!t["blocked"].as_bool().unwrap());
    let text = gridlock(&["dump", &p, "--window", "0.3s", "--color", "never"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("198.51.100.7:80, a remote host [sock_diag] (waiting"),
        "{text}"
    );
}

#[test]
fn a_unix_socket_server_under_load_has_no_finding() {
    for py in some_interpreters().into_iter().skip(1).take(1) {
        let label = py.label.clone();
        let dir = Scratch::new(&py, "load");
        let g = start_group(&py, "unix_load", &dir, true);
        std::thread::sleep(Duration::from_millis(300));
        let (code, doc, text) = dump_tree(g.pid());
        assert_eq!(code, 0, "[{label}] {text}");
        assert!(
            doc["findings"].as_array().unwrap().is_empty(),
            "[{label}] {text}"
        );
        assert_eq!(
            doc["processes"].as_array().unwrap().len(),
            6,
            "[{label}] {text}"
        );
    }
}

/// `run` over a command whose processes deadlock through the kernel (flock AB-BA, and
/// `sendall` both ways over loopback TCP) stops it with exit 3 and a deadlock finding naming
/// the kernel objects, and kills the tree.
#[test]
fn run_stops_processes_deadlocked_over_lock_files_and_loopback_tcp() {
    let py = some_interpreters().pop().unwrap();
    for (mode, names) in [
        ("flock_subprocess", &["index.lock", "refs.lock"][..]),
        ("tcp_sendall", &["tcp 127.0.0.1:"][..]),
    ] {
        let label = format!("{} {mode}", py.label);
        let dir = Scratch::new(&py, &format!("run-{mode}"));
        let report = dir.host.join("report.json");
        let out = Command::new(gridlock_bin())
            .args(["run", "--window", "500ms", "--timeout", "30s", "--report"])
            .arg(&report)
            .arg("--")
            .arg(&py.path)
            .arg(fixture("kernel_waits.py"))
            .args([mode, dir.arg()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "[{label}] {stderr}");
        assert!(stderr.contains("DEADLOCK"), "[{label}] {stderr}");
        let doc: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let dl = findings(&doc, "deadlock");
        assert_eq!(dl.len(), 1, "[{label}] {doc:#}");
        assert_eq!(dl[0]["processes"].as_array().unwrap().len(), 2, "[{label}]");
        let summary = dl[0]["summary"].as_str().unwrap();
        for name in names {
            assert!(summary.contains(name), "[{label}] {summary}");
        }
        let pids: Vec<i64> = doc["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["pid"].as_i64())
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        for pid in pids {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            assert!(
                state.is_empty() || state.contains(") Z"),
                "[{label}] process {pid} survived the run: {state}"
            );
        }
    }
}
