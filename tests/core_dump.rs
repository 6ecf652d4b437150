//! End-to-end: `gridlock dump --core` on cores that gdb's `gcore` took of real deadlocked
//! CPython processes, compared with a live `dump --window 0` of the same process taken just
//! before (the same findings: kind, threads, tasks, lock names), then the target killed. One
//! core per target, several assertions on it; cores live in a temp folder removed at the end.
//! Also: a core whose libpython was replaced (the build-id mismatch), a truncated core and a
//! random file (exit 2). Skipped with a note where gdb is not installed.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{doc, dump_json, fixture, gridlock, interpreters, Interpreter, Target};

fn gcore_available() -> bool {
    let found = Command::new("gcore")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("note: gdb's gcore is not installed (apt-get install gdb): core tests skipped");
    }
    found
}

/// A temp folder for cores, removed when dropped (even on failure).
struct CoreDir(PathBuf);

impl CoreDir {
    fn new(name: &str) -> CoreDir {
        let dir =
            std::env::temp_dir().join(format!("gridlock-cores-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        CoreDir(dir)
    }
}

impl Drop for CoreDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `gcore` of `pid` into `dir`: the core's path, and whether gdb could read every mapping
/// (it writes zeros for the ones it could not: "Memory read failed for corefile section").
fn gcore_checked(pid: i32, dir: &Path) -> (PathBuf, bool) {
    let prefix = dir.join("core");
    let out = Command::new("timeout")
        .args(["120", "gcore", "-o"])
        .arg(&prefix)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run gcore");
    let core = dir.join(format!("core.{pid}"));
    assert!(
        out.status.success() && core.exists(),
        "gcore {pid} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The vsyscall page is never readable; anything else gdb failed to read is missing.
    let err = String::from_utf8_lossy(&out.stderr);
    let complete = !err
        .lines()
        .any(|l| l.contains("Memory read failed") && !l.contains("0xffffffffff600000"));
    (core, complete)
}

fn gcore(pid: i32, dir: &Path) -> PathBuf {
    gcore_checked(pid, dir).0
}

/// `dump --core CORE --json` with `extra` options: exit code, document, stderr.
fn dump_core(core: &Path, extra: &[&str]) -> (i32, Option<Value>, String) {
    let mut args = vec!["dump", "--core", core.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = gridlock(&args);
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).ok(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a finding says, independent of ids and addresses: kind, thread names, task names and
/// the names of its locks, sorted.
fn findings_signature(d: &Value) -> Vec<String> {
    let locks = d["locks"].as_array().cloned().unwrap_or_default();
    let lock_name = |id: &Value| {
        locks
            .iter()
            .find(|l| &l["id"] == id)
            .and_then(|l| l["names"].get(0).and_then(|n| n["name"].as_str()))
            .unwrap_or("?")
            .to_string()
    };
    let mut out: Vec<String> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut threads = doc::finding_thread_names(d, f);
            threads.sort();
            let mut tasks = doc::finding_task_names(d, f);
            tasks.sort();
            let mut names: Vec<String> = f["locks"]
                .as_array()
                .map(|ls| ls.iter().map(lock_name).collect())
                .unwrap_or_default();
            names.sort();
            format!(
                "{} threads={threads:?} tasks={tasks:?} locks={names:?}",
                f["kind"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// One scenario: a fixture (and its arguments) that reaches a failing finding.
struct Scenario {
    script: &'static str,
    args: &'static [&'static str],
    /// Threads that never stop running (asyncio's ticker): no settling.
    busy: bool,
}

const LOCK_CYCLE: Scenario = Scenario {
    script: "abba_globals.py",
    args: &[],
    busy: false,
};
const ALL: &[Scenario] = &[
    LOCK_CYCLE,
    Scenario {
        script: "rlock_helper.py",
        args: &[],
        busy: false,
    },
    Scenario {
        script: "join_cycle.py",
        args: &[],
        busy: false,
    },
    Scenario {
        script: "orphaned_locks.py",
        args: &[],
        busy: false,
    },
    Scenario {
        script: "asyncio_scenarios.py",
        args: &["lock_inversion"],
        busy: true,
    },
];

/// Start the scenario, dump it live, gcore it, kill it, dump the core: the same findings.
fn check(py: &Interpreter, s: &Scenario, dir: &Path) {
    let script = fixture(s.script);
    let target = if s.busy {
        Target::start_busy(py, &script, s.args)
    } else {
        Target::start(py, &script, s.args)
    };
    let pid = target.pid;
    let (live_code, live) = dump_json(pid, "0");
    let (core, complete) = gcore_checked(pid, dir);
    drop(target);
    let sysroot;
    let mut extra = Vec::new();
    if let Some(root) = &py.root {
        sysroot = root.to_string_lossy().into_owned();
        extra.extend(["--sysroot", sysroot.as_str()]);
    }
    let (code, d, err) = dump_core(&core, &extra);
    let what = format!("{} {}", py.label, s.script);
    let d = d.unwrap_or_else(|| panic!("{what}: dump --core printed no JSON (exit {code}): {err}"));
    assert_eq!(
        live_code, 3,
        "{what}: the live dump fails: {:#}",
        live["findings"]
    );
    assert_eq!(
        code, 3,
        "{what}: the core's dump fails too: {:#}\n{err}",
        d["findings"]
    );
    let ours = findings_signature(&d);
    assert!(!ours.is_empty(), "{what}");
    if complete {
        assert_eq!(ours, findings_signature(&live), "{what}: core vs live");
    } else {
        // gdb could not read some threads' stacks (sid's glibc guards them inside the
        // mapping) and wrote zeros there: the futex each waits on cannot be tied to its lock.
        // The report still fails, with the same threads, and claims no lock it cannot see.
        eprintln!("note: {what}: gcore could not read every mapping; only a stall is expected");
        for f in d["findings"].as_array().unwrap() {
            assert!(
                f["kind"] == "stall" || f["kind"] == "deadlock",
                "{what}: {f:#}"
            );
        }
    }
    let p = &d["processes"][0];
    assert_eq!(p["pid"], pid, "{what}");
    assert_eq!(p["core"], core.to_str().unwrap(), "{what}");
    assert_eq!(
        p["python_version"], live["processes"][0]["python_version"],
        "{what}"
    );
    assert!(
        p["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("live-only evidence")),
        "{what}: the report says what a core cannot tell: {p:#}"
    );
    // Every thread the live dump saw, with the same name and state.
    let states = |d: &Value| {
        let mut v: Vec<String> = d["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("{} {}", t["name"], t["state"]))
            .collect();
        v.sort();
        v
    };
    if !s.busy {
        assert_eq!(states(&d), states(&live), "{what}: threads");
    }
    // The with-block holders are read from the frames alone: the same on both.
    let holds = |d: &Value| {
        let mut v: Vec<String> = d["threads"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| {
                t["holds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |h| format!("{} holds {} at {}", t["name"], h["name"], h["site"]))
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(holds(&d), holds(&live), "{what}: holders");
    // The text report's header names the core.
    let text = gridlock(
        &[
            &["dump", "--core", core.to_str().unwrap(), "--color", "never"][..],
            &extra[..],
        ]
        .concat(),
    );
    let header = String::from_utf8_lossy(&text.stdout);
    assert!(
        header.starts_with("gridlock ")
            && header.contains(&format!("core {} of pid {pid}", core.display())),
        "{what}: {header}"
    );
    let _ = std::fs::remove_file(&core);
}

/// The interpreters a core test runs on: one each of pyenv 3.8-3.10, 3.11, 3.12, 3.13,
/// Debian's static 3.11 and sid's 3.14 (missing ones skipped).
fn chosen() -> Vec<Interpreter> {
    let all = interpreters();
    let mut out: Vec<Interpreter> = Vec::new();
    for want in ["3.9", "3.11", "3.12", "3.13", "debian-3.11", "sid-3.14"] {
        match all.iter().find(|i| i.label.starts_with(want)) {
            Some(i) => out.push(i.clone()),
            None => eprintln!("note: no {want} interpreter: its core test is skipped"),
        }
    }
    out
}

/// Failures of every (interpreter, scenario) pair, collected so one does not hide another.
fn run_all(pairs: Vec<(Interpreter, &Scenario)>, dir: &Path) {
    let mut failures = Vec::new();
    for (py, s) in &pairs {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(py, s, dir)));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{} {}: {msg}", py.label, s.script));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_scenario_from_a_core_matches_the_live_dump() {
    if !gcore_available() {
        return;
    }
    let dir = CoreDir::new("scenarios");
    let Some(py) = chosen().into_iter().find(|i| i.label.starts_with("3.12")) else {
        eprintln!("note: no pyenv 3.12: scenarios from cores skipped");
        return;
    };
    run_all(ALL.iter().map(|s| (py.clone(), s)).collect(), &dir.0);
}

#[test]
fn a_lock_cycle_from_a_core_on_every_interpreter() {
    if !gcore_available() {
        return;
    }
    let dir = CoreDir::new("interpreters");
    let pairs = chosen()
        .into_iter()
        .filter(|i| !i.label.starts_with("3.12"))
        .map(|py| {
            // sid's 3.14 also runs the asyncio cycle: read through the published offsets.
            (py, &LOCK_CYCLE)
        })
        .collect::<Vec<_>>();
    let mut pairs = pairs;
    if let Some(sid) = chosen()
        .into_iter()
        .find(|i| i.label.starts_with("sid-3.14"))
    {
        pairs.push((sid, &ALL[4]));
    }
    run_all(pairs, &dir.0);
}

/// The byte offset of the GNU build id's contents in an ELF file.
fn build_id_offset(bytes: &[u8]) -> Option<usize> {
    // namesz 4, descsz 20, type NT_GNU_BUILD_ID, "GNU\0".
    let header: Vec<u8> = [4u32, 20, 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .chain(*b"GNU\0")
        .collect();
    bytes
        .windows(header.len())
        .position(|w| w == header.as_slice())
        .map(|at| at + header.len())
}

#[test]
fn replaced_libpython_truncated_core_and_random_file_exit_2() {
    if !gcore_available() {
        return;
    }
    let Some(py) = chosen().into_iter().find(|i| i.label.starts_with("3.12")) else {
        eprintln!("note: no pyenv 3.12: mismatch test skipped");
        return;
    };
    let dir = CoreDir::new("bad");
    let target = Target::start(&py, &fixture("abba_globals.py"), &[]);
    let core = gcore(target.pid, &dir.0);
    drop(target);

    // A sysroot where libpython is another build (one byte of its build id changed) and the
    // executable is the real one.
    let prefix = py.path.parent().unwrap().parent().unwrap().to_path_buf();
    let lib_name = format!("libpython3.{}.so.1.0", py.minor);
    let lib = prefix.join("lib").join(&lib_name);
    let root = dir.0.join("root");
    let in_root = |p: &Path| root.join(p.strip_prefix("/").unwrap());
    std::fs::create_dir_all(in_root(&prefix.join("lib"))).unwrap();
    std::fs::create_dir_all(in_root(&prefix.join("bin"))).unwrap();
    let mut bytes = std::fs::read(&lib).unwrap();
    let at = build_id_offset(&bytes).expect("libpython has a GNU build id");
    bytes[at] ^= 0xff;
    std::fs::write(in_root(&lib), &bytes).unwrap();
    let exe = std::fs::canonicalize(&py.path).unwrap();
    std::fs::copy(&exe, in_root(&exe)).unwrap();
    let (code, d, err) = dump_core(&core, &["--sysroot", root.to_str().unwrap()]);
    assert_eq!(code, 2, "a replaced libpython is bad input: {err}");
    assert!(d.is_none());
    let first_line = err.lines().next().unwrap_or_default();
    assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
    assert!(
        first_line.contains(&lib.display().to_string())
            && first_line.contains(&in_root(&lib).display().to_string())
            && first_line.contains("build id"),
        "names both files: {first_line}"
    );
    // The unaltered copy under the same sysroot is accepted.
    std::fs::copy(&lib, in_root(&lib)).unwrap();
    let (code, d, err) = dump_core(&core, &["--sysroot", root.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(!doc::findings(d.as_ref().unwrap(), "deadlock").is_empty());

    // The same core as systemd-coredump stores it (zstd): unpacked, the same report.
    let packed = dir.0.join("core.zst");
    let zstd = Command::new("zstd")
        .args(["-q", "-1", "-f", "-o"])
        .arg(&packed)
        .arg(&core)
        .status()
        .is_ok_and(|s| s.success());
    if zstd {
        let (code, d, err) = dump_core(&packed, &[]);
        assert_eq!(code, 3, "a zstd-compressed core: {err}");
        assert!(!doc::findings(d.as_ref().unwrap(), "deadlock").is_empty());
        let _ = std::fs::remove_file(&packed);
    } else {
        eprintln!("note: zstd is not installed: the compressed core is not tested");
    }

    // The core cut in half, and random bytes.
    let whole = std::fs::read(&core).unwrap();
    let cut = dir.0.join("cut.core");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let random = dir.0.join("random.core");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..65536)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&random, noise).unwrap();
    for (file, says) in [(&cut, "truncated"), (&random, "not an ELF core")] {
        let (code, d, err) = dump_core(file, &[]);
        assert_eq!(code, 2, "{}: {err}", file.display());
        assert!(d.is_none());
        assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
        assert!(err.contains(says) && !err.contains("panicked"), "{err}");
    }
}
