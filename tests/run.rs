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

#[test]
fn a_pytest_suite_with_a_deadlocking_test_fails_with_junit_naming_both_threads() {
    let pys: Vec<Interpreter> = interpreters()
        .into_iter()
        .filter(support::pytest_available)
        .collect();
    assert!(
        !pys.is_empty(),
        "pytest is installed by .ci/run for python3"
    );
    let py = &pys[0];
    let p = py.path.to_str().unwrap();
    let dir = std::env::temp_dir().join(format!("gridlock-pytest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("junit.xml");
    let suite = support::fixture("pytest_deadlock");
    let (code, stderr) = run(&[
        "--junit",
        junit.to_str().unwrap(),
        "--",
        p,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        suite.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{stderr}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("gridlock.deadlock"), "{xml}");
    assert!(
        xml.contains("mover-ab") && xml.contains("mover-ba"),
        "{xml}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        python_processes_running("pytest_deadlock").is_empty(),
        "pytest was left running"
    );

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
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_multiprocessing_child_that_deadlocks_while_the_parent_waits_is_caught() {
    for py in some_interpreters() {
        for method in ["fork", "spawn"] {
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
