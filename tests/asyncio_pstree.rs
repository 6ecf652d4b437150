//! gridlock against CPython's own `python3.X -m asyncio pstree PID` (3.14+), run inside the
//! same Debian root on the same target: on two tasks awaiting each other both find the cycle
//! and name the same tasks; on two tasks deadlocked through `asyncio.Lock`s pstree sees no
//! cycle (it follows awaits only) and gridlock reports the deadlock.
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{doc, dump_json, fixture, interpreters, Interpreter, Target};

/// The Debian root's interpreters that ship `asyncio pstree` (3.14+); none, with a printed
/// reason, where the root or those versions are missing.
fn pstree_interpreters() -> Vec<Interpreter> {
    let found: Vec<Interpreter> = interpreters()
        .into_iter()
        .filter(|py| py.root.is_some() && py.minor >= 14)
        .collect();
    if found.is_empty() {
        eprintln!(
            "skipped: no CPython 3.14+ in a Debian root ({}): `asyncio pstree` has nothing to compare against",
            support::debian_root().display()
        );
    }
    found
}

/// `python -m asyncio pstree PID` inside the interpreter's root: (exit code, stdout, stderr).
/// Killed after a minute (it reads a stopped-or-not target once and exits).
fn pstree(py: &Interpreter, pid: i32) -> (i32, String, String) {
    let mut child = Command::new(&py.path)
        .args(["-m", "asyncio", "pstree", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start asyncio pstree");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait for pstree").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{}: asyncio pstree {pid} did not finish", py.label);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("pstree output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The task names of pstree's `cycle: a → b → a` line, sorted and without the repeat.
fn pstree_cycle(text: &str) -> Option<Vec<String>> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("cycle: "))?;
    let mut names: Vec<String> = line.split(" → ").map(|n| n.trim().to_string()).collect();
    names.sort();
    names.dedup();
    Some(names)
}

#[test]
fn pstree_and_gridlock_find_the_same_await_cycle() {
    for py in pstree_interpreters() {
        let target = Target::start_busy(&py, &fixture("asyncio_scenarios.py"), &["await_cycle"]);
        let (pcode, out, err) = pstree(&py, target.pid);
        let (code, d) = dump_json(target.pid, "300ms");
        let theirs = pstree_cycle(&err)
            .or_else(|| pstree_cycle(&out))
            .unwrap_or_else(|| panic!("{}: pstree found no cycle:\n{out}\n{err}", py.label));
        assert_eq!(pcode, 1, "{}: pstree exits 1 on a cycle: {err}", py.label);
        assert_eq!(code, 3, "{}: {:#}", py.label, d["findings"]);
        let dl = doc::findings(&d, "deadlock");
        assert_eq!(dl.len(), 1, "{}: {:#}", py.label, d["findings"]);
        let mut ours = doc::finding_task_names(&d, dl[0]);
        ours.sort();
        assert_eq!(ours, theirs, "{}: the same tasks", py.label);
        assert_eq!(ours, ["first", "second"]);
    }
}

#[test]
fn only_gridlock_sees_an_asyncio_lock_deadlock() {
    for py in pstree_interpreters() {
        let target = Target::start_busy(&py, &fixture("asyncio_scenarios.py"), &["lock_inversion"]);
        let (pcode, out, err) = pstree(&py, target.pid);
        let (code, d) = dump_json(target.pid, "300ms");
        // pstree prints the task tree (both tasks in it) and no cycle.
        assert_eq!(pcode, 0, "{}: {out}\n{err}", py.label);
        assert!(
            out.contains("(T) path-ab") && out.contains("(T) path-ba"),
            "{}: {out}",
            py.label
        );
        assert_eq!(pstree_cycle(&out).or_else(|| pstree_cycle(&err)), None);
        assert_eq!(code, 3, "{}: {:#}", py.label, d["findings"]);
        let dl = doc::findings(&d, "deadlock");
        assert_eq!(dl.len(), 1, "{}: {:#}", py.label, d["findings"]);
        assert_eq!(doc::finding_task_names(&d, dl[0]), ["path-ab", "path-ba"]);
        assert_eq!(dl[0]["locks"].as_array().unwrap().len(), 2);
    }
}

#[test]
fn pstree_cycle_lines_are_parsed() {
    let err = "ERROR: await-graph contains cycles - cannot print a tree!\n\ncycle: second → first → second\n";
    assert_eq!(pstree_cycle(err).unwrap(), ["first", "second"]);
    assert_eq!(pstree_cycle("└── (T) Task-1\n"), None);
}
