//! `gridlock run` watches the whole process tree as one wait-for graph: a cross-process
//! deadlock stops the run with a report, and every process of the tree is killed.
mod support;

use std::process::{Command, Stdio};

use support::{fixture, gridlock_bin, interpreters};

#[test]
fn run_stops_a_cross_process_deadlock_and_kills_the_tree() {
    let py = interpreters().into_iter().max_by_key(|i| i.minor).unwrap();
    let dir = std::env::temp_dir().join(format!("gridlock-crossproc-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let out = Command::new(gridlock_bin())
        .args(["run", "--window", "500ms", "--timeout", "30s", "--report"])
        .arg(&report)
        .arg("--")
        .arg(&py.path)
        .arg(fixture("mp_locks.py"))
        .arg("fork")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("2 threads in 2 processes"), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let f = &doc["findings"][0];
    assert_eq!(f["kind"], "deadlock");
    assert_eq!(f["processes"].as_array().unwrap().len(), 2);
    let pids: Vec<i64> = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_i64().unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "process {pid} survived the run: {state}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
