//! `gridlock run -- CMD`: the watchdog, end to end on real Python commands.
mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{example, gridlock_bin, interpreters, Interpreter};

/// Two interpreters keep this file quick: the oldest and the newest found.
fn some_interpreters() -> Vec<Interpreter> {
    let all = interpreters();
    let mut picked = vec![all.first().unwrap().clone()];
    if all.len() > 1 {
        picked.push(all.iter().max_by_key(|i| i.minor).unwrap().clone());
    }
    picked
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(gridlock_bin())
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn python_processes_running(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .filter(|c| c.contains(marker) && !c.contains("gridlock"))
        .collect()
}

#[test]
fn a_deadlocking_command_is_stopped_with_a_report_and_junit() {
    for py in some_interpreters() {
        let dir =
            std::env::temp_dir().join(format!("gridlock-run-{}-{}", std::process::id(), py.label));
        std::fs::create_dir_all(&dir).unwrap();
        let junit = dir.join("junit.xml");
        let report = dir.join("report.json");
        let (code, stderr) = run(&[
            "--junit",
            junit.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--",
            py.path.to_str().unwrap(),
            example("bank_transfer.py").to_str().unwrap(),
        ]);
        assert_eq!(code, 3, "[{}] {stderr}", py.label);
        assert!(stderr.contains("DEADLOCK"), "{stderr}");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("<failure type=\"deadlock\""), "{xml}");
        // No test was running: the case keeps gridlock's own classname.
        assert!(xml.contains(r#"classname="gridlock.deadlock""#), "{xml}");
        assert!(
            xml.contains("teller-1") && xml.contains("teller-2"),
            "{xml}"
        );
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(doc["findings"][0]["kind"], "deadlock");
        assert_eq!(doc["command"]["name"], "run");
        std::thread::sleep(Duration::from_millis(100));
        assert!(python_processes_running(&dir.to_string_lossy()).is_empty());
        assert!(
            python_processes_running("bank_transfer.py")
                .iter()
                .all(|c| !c.contains(py.path.to_str().unwrap())),
            "the deadlocked target was left running"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn passing_and_failing_commands_keep_their_own_status() {
    for py in some_interpreters() {
        let p = py.path.to_str().unwrap();
        assert_eq!(run(&["--", p, "-c", "print('ok')"]).0, 0);
        assert_eq!(run(&["--", p, "-c", "import sys; sys.exit(7)"]).0, 7);
    }
}

#[test]
fn timeout_reports_kills_and_exits_124() {
    let py = &some_interpreters()[0];
    let (code, stderr) = run(&[
        "--timeout",
        "1s",
        "--",
        py.path.to_str().unwrap(),
        "-c",
        "import time; time.sleep(60)",
    ]);
    assert_eq!(code, 124, "{stderr}");
    assert!(
        stderr.contains("--timeout ran out") && stderr.contains("THREADS"),
        "{stderr}"
    );
}

#[test]
fn long_c_calls_and_waits_on_live_subprocesses_are_not_hangs() {
    let py = &some_interpreters()[0];
    let p = py.path.to_str().unwrap();
    // A C call burning CPU for several seconds: its stack does not change, its CPU time does.
    let (code, stderr) = run(&[
        "--hang-after",
        "2s",
        "--",
        p,
        "-c",
        "import hashlib; hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 3_000_000)",
    ]);
    assert_eq!(code, 0, "{stderr}");
    // Waiting on a subprocess that sleeps (it acts again by itself).
    let (code, stderr) = run(&[
        "--hang-after",
        "2s",
        "--",
        p,
        "-c",
        "import subprocess; subprocess.run(['sleep', '4'])",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_process_parked_forever_is_a_hang() {
    let py = &some_interpreters()[0];
    let (code, stderr) = run(&[
        "--hang-after",
        "2s",
        "--",
        py.path.to_str().unwrap(),
        "-c",
        "import socket; a, b = socket.socketpair(); a.recv(1)",
    ]);
    assert_eq!(code, 3, "{stderr}");
    // With the tree-wide graph (issue 7) this is provably a self-deadlock: the only thread
    // reads a socket whose peer only its own process holds. Reported before the hang timer.
    assert!(
        stderr.contains("HANG") || stderr.contains("whose other end only its own process holds"),
        "{stderr}"
    );
}

#[test]
fn sigterm_to_run_writes_a_report_first() {
    let py = &some_interpreters()[0];
    let report = std::env::temp_dir().join(format!("gridlock-sigterm-{}.json", std::process::id()));
    let child = Command::new(gridlock_bin())
        .args([
            "run",
            "--report",
            report.to_str().unwrap(),
            "--",
            py.path.to_str().unwrap(),
            "-c",
            "import time; time.sleep(60)",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        !doc["threads"].as_array().unwrap().is_empty(),
        "the report shows the threads at the time of the signal"
    );
    let _ = std::fs::remove_file(&report);
}

/// A pytest suite that deadlocks: `a_pytest_suite_that_hangs_in_its_third_test_...` below.
#[test]
fn pytest_suites_that_pass_or_fail_keep_pytest_s_own_status() {
    let py = python_with(&["pytest"]);
    let p = py.to_str().unwrap();
    let pass = support::fixture("pytest_pass");
    assert_eq!(
        run(&[
            "--",
            p,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            pass.to_str().unwrap()
        ])
        .0,
        0
    );
    let fail = support::fixture("pytest_fail");
    assert_eq!(
        run(&[
            "--",
            p,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            fail.to_str().unwrap()
        ])
        .0,
        1,
        "pytest's own status for a failing suite"
    );
}

#[test]
fn a_multiprocessing_child_that_deadlocks_while_the_parent_waits_is_caught() {
    for py in some_interpreters() {
        for method in ["fork", "spawn", "forkserver"] {
            let (code, stderr) = run(&[
                "--",
                py.path.to_str().unwrap(),
                support::fixture("mp_child_deadlock.py").to_str().unwrap(),
                method,
            ]);
            assert_eq!(code, 3, "[{} {method}] {stderr}", py.label);
            assert!(
                stderr.contains("DEADLOCK")
                    && stderr.contains("child-ab")
                    && stderr.contains("child-ba"),
                "{stderr}"
            );
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                python_processes_running("mp_child_deadlock.py").is_empty(),
                "[{method}] processes left behind"
            );
        }
    }
}

/// Live (not zombie) processes whose command line holds `marker`, gridlock's own excepted.
fn alive_with(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains(marker)
                && !cmd.contains(support::gridlock_bin())
                && support::proc_state(*pid).is_some_and(|s| s != 'Z')
        })
        .collect()
}

/// Kills what a failed test left (only processes carrying its own marker), then checks.
fn assert_none_left(marker: &str, what: &str) {
    let mut left = alive_with(marker);
    for _ in 0..50 {
        if left.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = alive_with(marker);
    }
    for pid in &left {
        unsafe {
            libc::kill(*pid, libc::SIGKILL);
        }
    }
    panic!("{what}: left running: {left:?}");
}

/// A Python command that sleeps, tagged so the test finds it (and only it).
fn sleeper(py: &Interpreter, seconds: u32, marker: &str) -> String {
    format!(
        "{} -c 'import time; time.sleep({seconds})  # {marker}'",
        py.path.display()
    )
}

#[test]
fn a_deadlock_the_command_leaves_behind_is_still_caught_and_killed() {
    let py = &some_interpreters()[0];
    // The issue's command, with an argument (ignored by the example) that tags the process.
    let marker = format!("orphan-deadlock-{}", std::process::id());
    let script = format!(
        "{} {} {marker} >/dev/null & exit 0",
        py.path.display(),
        example("bank_transfer.py").display()
    );
    let (code, stderr) = run(&["--", "sh", "-c", &script]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("DEADLOCK") && stderr.contains("teller-1"),
        "{stderr}"
    );
    assert_none_left(&marker, "the orphaned deadlock");
}

#[test]
fn run_waits_for_what_the_command_leaves_behind_and_times_it_out() {
    let py = &some_interpreters()[0];
    // The orphan sleeps 2 s after the command exited: run returns only once it has exited.
    let marker = format!("orphan-wait-{}", std::process::id());
    let script = format!("{} & exit 5", sleeper(py, 2, &marker));
    let (code, stderr) = run(&["--", "sh", "-c", &script]);
    assert_eq!(code, 5, "the command's own status: {stderr}");
    assert!(
        alive_with(&marker).is_empty(),
        "run returned while the tree ran"
    );

    // An orphan that outlives --timeout is killed with the rest.
    let marker = format!("orphan-timeout-{}", std::process::id());
    let script = format!("{} & exit 0", sleeper(py, 60, &marker));
    let (code, stderr) = run(&["--timeout", "1s", "--", "sh", "-c", &script]);
    assert_eq!(code, 124, "{stderr}");
    assert_none_left(&marker, "the orphan after --timeout");
}

#[test]
fn a_killed_gridlock_run_takes_its_tree_with_it() {
    let py = &some_interpreters()[0];
    let marker = format!("orphan-sigkill-{}", std::process::id());
    // A child (the shell, then Python in the foreground) and a grandchild in the background.
    let script = format!(
        "{} & {}; wait",
        sleeper(py, 60, &format!("{marker} background")),
        sleeper(py, 60, &format!("{marker} foreground"))
    );
    let mut gridlock = Command::new(gridlock_bin())
        .args(["run", "--", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // The shell's command line holds the marker too: wait for both Pythons and the shell.
    while alive_with(&marker).len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alive_with(&marker).len(), 3, "the tree did not start");
    // Let run see the whole tree at least once before it is killed.
    std::thread::sleep(Duration::from_millis(500));
    gridlock.kill().unwrap();
    let _ = gridlock.wait();
    assert_none_left(&marker, "a SIGKILLed gridlock run");
}

/// The first interpreter that imports every one of `modules` (scripts/test installs pytest
/// and pytest-xdist for python3).
fn python_with(modules: &[&str]) -> std::path::PathBuf {
    interpreters()
        .into_iter()
        .find(|p| modules.iter().all(|m| has_module(p, m)))
        .unwrap_or_else(|| panic!("no interpreter has {modules:?}: scripts/test installs them"))
        .path
}

fn has_module(py: &Interpreter, module: &str) -> bool {
    Command::new(&py.path)
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs `gridlock run --junit --report -- CMD` on a suite whose third test deadlocks; returns
/// the exit status, stderr, the JUnit XML and the JSON document.
fn run_suite(label: &str, cmd: &[&str]) -> (i32, String, String, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("gridlock-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("junit.xml");
    let report = dir.join("report.json");
    let mut args = vec![
        "--junit",
        junit.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--",
    ];
    args.extend_from_slice(cmd);
    let (code, stderr) = run(&args);
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    let doc = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    (code, stderr, xml, doc)
}

/// Every process the report saw (pytest-xdist workers included) was killed with the run.
/// By pid: other tests (and sessions) may run the same suites at the same time.
fn assert_all_gone(doc: &serde_json::Value, label: &str) {
    for p in doc["processes"].as_array().into_iter().flatten() {
        let pid = p["pid"].as_i64().unwrap();
        let state = support::proc_state(pid as i32);
        assert!(
            state.is_none() || state == Some('Z'),
            "{label}: process {pid} was left running ({state:?})"
        );
    }
}

/// The processes of a document that name a current test.
fn processes_with_test(doc: &serde_json::Value) -> Vec<&serde_json::Value> {
    doc["processes"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["current_test"].is_object())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_pytest_suite_that_hangs_in_its_third_test_names_it_plain_and_under_xdist() {
    let py = python_with(&["pytest", "xdist"]);
    let p = py.to_str().unwrap();
    let suite = support::fixture("hung_tests/test_hangs.py");
    let suite = suite.to_str().unwrap();
    for workers in [None, Some("2")] {
        let mut cmd = vec![p, "-m", "pytest", "-q", "-p", "no:cacheprovider"];
        if let Some(n) = workers {
            cmd.extend(["-n", n]);
        }
        cmd.push(suite);
        let label = format!("pytest-third-{}", workers.unwrap_or("plain"));
        let (code, stderr, xml, doc) = run_suite(&label, &cmd);
        assert_eq!(code, 3, "{label}: {stderr}");
        assert!(
            xml.contains(r#"name="test_three_transfers_deadlock""#)
                && xml.contains(r#"test_hangs" name="#)
                && xml.contains(r#"<failure type="deadlock""#),
            "{label}: the failed case is the third test: {xml}"
        );
        assert!(
            xml.contains("mover-ab") && xml.contains("mover-ba"),
            "{label}: the report names both threads: {xml}"
        );
        let with_test = processes_with_test(&doc);
        assert_eq!(with_test.len(), 1, "{label}: {doc}");
        let test = &with_test[0]["current_test"];
        assert!(
            test["name"]
                .as_str()
                .unwrap()
                .ends_with("test_hangs.py::test_three_transfers_deadlock"),
            "{label}: {test}"
        );
        assert_eq!(test["phase"], "call", "{label}");
        assert_eq!(test["source"], "os_environ", "{label}");
        // Under xdist the test runs in a worker, never in pytest's own (root) process.
        let root = doc["processes"][0]["pid"].as_i64();
        assert_eq!(
            with_test[0]["pid"].as_i64() != root,
            workers.is_some(),
            "{label}: {doc}"
        );
        assert!(
            stderr.contains("during test ")
                && stderr.contains("test_three_transfers_deadlock (call)"),
            "{label}: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_all_gone(&doc, &label);
        assert!(
            python_processes_running(suite).is_empty(),
            "{label}: pytest was left running"
        );
    }
}

/// Under pytest-xdist with `-n 2` and `-n 4`, a deadlock in one worker is reported while the
/// other workers are still busy running tests: a tree snapshot slower than the sample interval
/// once kept the persistence window from ever spanning `--window` until they fell quiet (30 s
/// and more, sometimes past a CI job's timeout). Three runs of each; the measure is how many
/// of the other workers' tests finished before the report, not wall time.
#[test]
fn a_deadlock_under_xdist_is_reported_while_other_workers_are_busy() {
    let py = python_with(&["pytest", "xdist"]);
    let p = py.to_str().unwrap();
    let suite = support::fixture("hung_tests/test_busy_xdist.py");
    let suite = suite.to_str().unwrap();
    for workers in ["2", "4"] {
        for round in 0..3 {
            let label = format!("xdist-busy-{workers}-{round}");
            let log =
                std::env::temp_dir().join(format!("gridlock-{label}-{}.log", std::process::id()));
            let _ = std::fs::remove_file(&log);
            let out = Command::new(gridlock_bin())
                .args(["run", "--verbose", "--", p, "-m", "pytest", "-q"])
                .args(["-p", "no:cacheprovider", "-n", workers, suite])
                .env("BUSY_LOG", &log)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let busy_done = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .count();
            let _ = std::fs::remove_file(&log);
            assert_eq!(out.status.code(), Some(3), "{label}: {stderr}");
            assert!(
                stderr.contains("DEADLOCK") && stderr.contains("mover-ab"),
                "{label}: {stderr}"
            );
            // About 15 at most here (the window, one slow tree snapshot and the workers'
            // attach, at some 12 busy tests a second); 58-138 before the fix under `-n 4`.
            assert!(
                busy_done < 40,
                "{label}: {busy_done} busy tests ran before the deadlock was reported: {stderr}"
            );
            assert!(
                python_processes_running(suite).is_empty(),
                "{label}: pytest was left running"
            );
        }
    }
}

#[test]
fn a_unittest_suite_that_hangs_in_its_third_test_names_it() {
    let suite = support::fixture("hung_tests");
    for py in some_interpreters() {
        let p = py.path.to_str().unwrap();
        let cmd = [
            p,
            "-m",
            "unittest",
            "discover",
            "-s",
            suite.to_str().unwrap(),
            "-p",
            "test_ledger.py",
        ];
        let label = format!("unittest-{}", py.label);
        let (code, stderr, xml, doc) = run_suite(&label, &cmd);
        assert_eq!(code, 3, "{label}: {stderr}");
        assert!(
            xml.contains(
                r#"<testcase classname="test_ledger.LedgerTests" name="test_c_transfers_deadlock">"#
            ),
            "{label}: {xml}"
        );
        let with_test = processes_with_test(&doc);
        assert_eq!(with_test.len(), 1, "{label}: {doc}");
        let test = &with_test[0]["current_test"];
        assert_eq!(
            test["name"], "test_ledger.LedgerTests.test_c_transfers_deadlock",
            "{label}"
        );
        assert_eq!(test["source"], "stack", "{label}");
        assert!(test.get("phase").is_none(), "{label}: {test}");
        std::thread::sleep(Duration::from_millis(200));
        assert_all_gone(&doc, &label);
    }
}
