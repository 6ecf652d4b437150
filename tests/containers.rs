//! Targets in containers: real deadlocks inside a PID namespace (`unshare --pid --fork
//! --mount-proc`, every host CPython) and inside a PID namespace plus a chroot into the
//! Debian unstable root (its own python3.13-3.15, once gridlock supports them), found with
//! both TIDs; a healthy busy program there with every thread's state known; `run` over a
//! pytest suite started through unshare; and a thread whose kernel state cannot be matched
//! making the verdict incomplete (exit 2), on the host. Namespaces need root: those tests
//! skip with a printed note where unshare is not permitted.
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::namespaces::{self, NsTarget};
use support::parallel::for_each_interpreter_at_once;
use support::{doc, dump_json, dump_text, example, fixture, for_each_interpreter, Target};

/// How many interpreters' sleeping (deadlocked or idle) targets are checked at once.
const AT_ONCE: usize = 3;

/// The deadlocks every namespace test looks for: fixture, its arguments, and the names of
/// the threads (or asyncio tasks) the deadlock involves.
fn scenarios() -> Vec<(PathBuf, Vec<&'static str>, &'static str, [&'static str; 2])> {
    vec![
        (
            example("bank_transfer.py"),
            vec![],
            "threads",
            ["teller-1", "teller-2"],
        ),
        (
            fixture("rlock_helper.py"),
            vec![],
            "threads",
            ["rlock-first", "rlock-second"],
        ),
        (
            fixture("join_cycle.py"),
            vec![],
            "threads",
            ["joiner", "worker"],
        ),
        (
            fixture("asyncio_scenarios.py"),
            vec!["lock_inversion"],
            "tasks",
            ["path-ab", "path-ba"],
        ),
    ]
}

/// Every thread of the document has both TIDs, different, and a known kernel state.
fn assert_both_tids(d: &Value) {
    assert!(d.get("unmatched_threads").is_none(), "{:#}", d["threads"]);
    for t in d["threads"].as_array().unwrap() {
        let host = t["native_id"].as_i64().unwrap_or_else(|| panic!("{t:#}"));
        let own = t["namespace_tid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{t:#}"));
        assert_ne!(host, own, "{t:#}");
        assert!(t.get("kernel_unmatched").is_none(), "{t:#}");
        assert_ne!(t["state"], "unknown", "{t:#}");
        assert!(t["kernel"].is_object(), "{t:#}");
    }
}

/// The deadlock of `names` is found in the namespaced target, exit 3, both TIDs in JSON and
/// in the text report.
fn assert_deadlock_found(target: &NsTarget, key: &str, names: [&str; 2]) {
    let pid = target.target.pid;
    let (code, d) = dump_json(pid, "500ms");
    assert_eq!(code, 3, "{:#}", d["findings"]);
    let dl = doc::findings(&d, "deadlock");
    assert_eq!(dl.len(), 1, "{:#}", d["findings"]);
    let found = if key == "tasks" {
        doc::finding_task_names(&d, dl[0])
    } else {
        doc::finding_thread_names(&d, dl[0])
    };
    assert_eq!(found, names);
    assert_both_tids(&d);
    // Python is its namespace's first process: its main thread is TID 1 there.
    let main = doc::thread_by_name(&d, "MainThread");
    assert_eq!(main["namespace_tid"], 1, "{main:#}");
    assert_eq!(main["native_id"], pid, "{main:#}");

    let (code, text) = dump_text(pid, "500ms");
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains(&format!("\"MainThread\" (tid {pid}, 1 in its namespace)")),
        "{text}"
    );
}

#[test]
fn deadlocks_in_a_pid_namespace_are_found_with_both_tids() {
    if !namespaces::permitted() {
        return;
    }
    // Deadlocked targets sleep: the checks mostly wait (a namespace starting, a dump's window).
    for_each_interpreter_at_once(AT_ONCE, |py| {
        for (script, args, key, names) in scenarios() {
            let Some(target) = namespaces::start_in_pid_namespace(py, &script, &args) else {
                return;
            };
            assert_deadlock_found(&target, key, names);
        }
    });
}

#[test]
fn deadlocks_in_a_chroot_into_the_debian_root_are_found_with_both_tids() {
    for python in ["python3.13", "python3.14", "python3.15"] {
        if !namespaces::gridlock_supports_debian(python) {
            continue;
        }
        for (script, args, key, names) in scenarios() {
            let Some(target) = namespaces::start_in_debian_root(python, &script, &args) else {
                break;
            };
            // The target's files are its root's: the path is the one it sees.
            let (_, d) = dump_json(target.target.pid, "0");
            assert!(
                d["processes"][0]["cmdline"]
                    .as_str()
                    .unwrap()
                    .contains("/mnt/"),
                "{:#}",
                d["processes"]
            );
            assert_deadlock_found(&target, key, names);
        }
    }
}

#[test]
fn a_healthy_busy_program_in_a_pid_namespace_passes_with_every_state_known() {
    if !namespaces::permitted() {
        return;
    }
    for_each_interpreter(|py| {
        let Some(target) = namespaces::spawn_in_pid_namespace(py, &fixture("healthy_busy.py"), &[])
        else {
            return;
        };
        let (code, d) = dump_json(target.target.pid, "500ms");
        assert_eq!(code, 0, "{:#}", d["findings"]);
        assert!(d["threads"].as_array().unwrap().len() >= 10);
        assert_both_tids(&d);
    });
}

#[test]
fn run_through_unshare_stops_a_deadlocking_pytest_suite_with_junit() {
    if !namespaces::permitted() {
        return;
    }
    let Some(py) = support::interpreters()
        .into_iter()
        .find(support::pytest_available)
    else {
        eprintln!("note: skipped: no interpreter here has pytest");
        return;
    };
    let dir = std::env::temp_dir().join(format!("gridlock-ns-pytest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("junit.xml");
    let report = dir.join("report.json");
    let suite = fixture("hung_tests/test_hangs.py");
    let out = Command::new(support::gridlock_bin())
        .args(["run", "--junit"])
        .arg(&junit)
        .arg("--report")
        .arg(&report)
        .args([
            "--",
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
        ])
        .arg(&py.path)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&suite)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    // The failed case is the test that hung, named as on the host.
    assert!(xml.contains("test_three_transfers_deadlock"), "{xml}");
    assert!(
        xml.contains("mover-ab") && xml.contains("mover-ba"),
        "{xml}"
    );
    let d: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let dl = doc::findings(&d, "deadlock");
    assert_eq!(dl.len(), 1, "{:#}", d["findings"]);
    for id in dl[0]["threads"].as_array().unwrap() {
        let t = doc::thread(&d, id.as_str().unwrap());
        assert!(t["namespace_tid"].is_i64(), "{t:#}");
    }
    // The tree below unshare is named: pytest is a process of the report.
    assert!(
        d["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["cmdline"].as_str().unwrap_or("").contains("pytest")),
        "{:#}",
        d["processes"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bank deadlock under `unshare --pid --fork --mount-proc` with the first interpreter;
/// `None` (with a note) where namespaces cannot be made.
fn bank_in_a_pid_namespace() -> Option<NsTarget> {
    if !namespaces::permitted() {
        return None;
    }
    let py = &support::interpreters()[0];
    namespaces::start_in_pid_namespace(py, &example("bank_transfer.py"), &[])
}

#[test]
fn dump_tree_from_unshare_finds_and_names_the_namespaced_python() {
    let Some(target) = bank_in_a_pid_namespace() else {
        return;
    };
    // The tree's root is unshare itself (not Python); the bank runs one namespace below.
    let unshare = target.target.child.id().to_string();
    let out = support::gridlock(&["dump", &unshare, "--tree", "--json", "--window", "500ms"]);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(out.status.code(), Some(3), "{:#}", d["findings"]);
    let dl = doc::findings(&d, "deadlock");
    assert_eq!(dl.len(), 1, "{:#}", d["findings"]);
    assert_eq!(
        doc::finding_thread_names(&d, dl[0]),
        ["teller-1", "teller-2"]
    );
    assert!(d["processes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["pid"] == target.target.pid
            && p["cmdline"].as_str().unwrap().contains("bank_transfer.py")));
    assert_both_tids(&d);
}

#[test]
fn a_thread_whose_kernel_state_cannot_be_matched_makes_the_report_incomplete() {
    // The target sleeps: several interpreters at once.
    for_each_interpreter_at_once(AT_ONCE, |py| {
        let target = Target::start(py, &fixture("leaked_thread_state.py"), &[]);
        let (code, d) = dump_json(target.pid, "500ms");
        assert_eq!(code, 2, "{:#}", d["threads"]);
        let unmatched = d["unmatched_threads"].as_array().unwrap();
        assert_eq!(unmatched.len(), 1, "{:#}", d["threads"]);
        let leaked = doc::thread(&d, unmatched[0].as_str().unwrap());
        assert_eq!(leaked["state"], "unknown");
        assert!(leaked["kernel_unmatched"].is_string(), "{leaked:#}");
        // The live thread is matched as before.
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(main["native_id"], target.pid);
        assert!(main.get("kernel_unmatched").is_none(), "{main:#}");

        let (code, text) = dump_text(target.pid, "500ms");
        assert_eq!(code, 2, "{text}");
        assert!(text.contains("INCOMPLETE"), "{text}");
        assert!(text.contains("kernel state unknown: "), "{text}");
        assert!(
            !text.contains("No deadlock"),
            "an incomplete report never says nothing was found: {text}"
        );
    });
}

#[test]
fn without_cap_sys_ptrace_the_permission_message_says_what_a_container_needs() {
    let python = Path::new("/usr/bin/python3.11");
    let setpriv_works = Command::new("setpriv")
        .args(["--bounding-set", "-sys_ptrace", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !python.exists() || !setpriv_works {
        eprintln!(
            "note: skipped: needs root, setpriv and /usr/bin/python3.11 (readable by nobody)"
        );
        return;
    }
    // A process of another user, as a target in a container next to gridlock's would be.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(python)
        .args([
            "-c",
            "import time; print('READY', flush=True); time.sleep(600)",
        ])
        .stdin(Stdio::null())
        .current_dir("/");
    let target = Target::spawn_command(cmd, "python3.11 as nobody");
    // gridlock as root without CAP_SYS_PTRACE: what a container without --cap-add gives it.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-sys_ptrace", "--inh-caps", "-sys_ptrace"])
        .arg(support::gridlock_bin())
        .args(["dump", &target.pid.to_string(), "--window", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(
        stderr.contains("--cap-add SYS_PTRACE") && stderr.contains("--pid="),
        "says what a container needs: {stderr}"
    );
    assert!(target.is_alive());
}

#[test]
fn gridlock_inside_the_targets_pid_namespace_finds_the_deadlock() {
    let Some(target) = bank_in_a_pid_namespace() else {
        return;
    };
    // As a container sharing the target's PID namespace (and its /proc) would run it.
    let out = Command::new("nsenter")
        .args([
            "--target",
            &target.target.pid.to_string(),
            "--mount",
            "--pid",
        ])
        .arg(support::gridlock_bin())
        .args(["dump", "1", "--json", "--window", "500ms"])
        .output()
        .unwrap();
    let d: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(3), "{:#}", d["findings"]);
    let dl = doc::findings(&d, "deadlock");
    assert_eq!(
        doc::finding_thread_names(&d, dl[0]),
        ["teller-1", "teller-2"]
    );
    // Seen from inside, the namespace's TIDs are the only ones: nothing to map.
    let main = doc::thread_by_name(&d, "MainThread");
    assert_eq!(main["native_id"], 1, "{main:#}");
    assert!(main.get("namespace_tid").is_none(), "{main:#}");
}

#[test]
fn run_never_passes_a_command_whose_threads_stayed_unmatched() {
    let py = &support::interpreters()[0];
    let out = Command::new(support::gridlock_bin())
        .args(["run", "--"])
        .arg(&py.path)
        .arg(fixture("leaked_thread_state.py"))
        .arg("2")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The command itself exits 0; the run cannot say nothing was found.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("could not be matched"), "{stderr}");
}

#[test]
fn a_target_in_another_root_is_read_with_its_own_paths_and_both_tids() {
    // Whatever gridlock makes of the Debian interpreters' locks, it must attach through
    // /proc/PID/exe and /proc/PID/root (the binary's path is not the host's) and map TIDs.
    for python in ["python3.13", "python3.14", "python3.15"] {
        let Some(target) =
            namespaces::start_in_debian_root(python, &example("bank_transfer.py"), &[])
        else {
            continue;
        };
        let pid = target.target.pid.to_string();
        let out = support::gridlock(&["dump", &pid, "--json", "--window", "0"]);
        if out.status.code() == Some(1) {
            eprintln!(
                "note: skipped {python}: gridlock does not attach to it yet: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            continue;
        }
        let d: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_both_tids(&d);
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(main["namespace_tid"], 1, "{main:#}");
        // Paths as the target sees them: the repository is bind-mounted at its /mnt only.
        let file = main["frames"].as_array().unwrap().last().unwrap()["file"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(file, "/mnt/examples/bank_transfer.py", "{main:#}");
    }
}
