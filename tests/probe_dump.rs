//! The in-target probe, end to end: fixtures run under `python -m gridlock_probe`, dumped from
//! outside; `gridlock run --probe` on real commands; the probe's semantics in every CPython.
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{doc, dump_json, fixture, for_each_interpreter, gridlock_bin, Interpreter, Target};

fn probes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("probes")
}

/// `python -m gridlock_probe tests/fixtures/probe_scenarios.py MODE`, once it printed READY.
fn start(py: &Interpreter, mode: &str) -> Target {
    let script = fixture("probe_scenarios.py");
    Target::start_with(
        py,
        Path::new("-m"),
        &["gridlock_probe", script.to_str().unwrap(), mode],
        |cmd| {
            cmd.env("PYTHONPATH", probes_dir());
        },
    )
}

fn thread_id_of(d: &serde_json::Value, name: &str) -> String {
    doc::thread_by_name(d, name)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn helper_taken_locks_are_held_exactly_and_the_deadlock_is_found() {
    for_each_interpreter(|py| {
        let target = start(py, "deadlock");
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 3, "[{}] {:#}", py.label, d["findings"]);
        let f = doc::findings(&d, "deadlock");
        assert_eq!(f.len(), 1, "{:#}", d["findings"]);
        assert_eq!(
            doc::finding_thread_names(&d, f[0]),
            vec!["teller-a", "teller-b"]
        );
        for e in f[0]["edges"].as_array().unwrap() {
            if e["via"] == "held_by" {
                assert_eq!(e["evidence"], "probe", "{e}");
            } else {
                assert_eq!(e["evidence"], "futex", "{e}");
                assert!(
                    e["site"].as_str().unwrap().contains("probe_scenarios.py"),
                    "the wait's site is the user's line, not the probe's: {e}"
                );
            }
        }
        for name in ["teller-a", "teller-b"] {
            let t = doc::thread_by_name(&d, name);
            let holds = t["holds"].as_array().unwrap();
            assert_eq!(holds.len(), 1, "{t:#}");
            assert_eq!(holds[0]["evidence"], "probe");
            assert!(
                holds[0]["site"]
                    .as_str()
                    .unwrap()
                    .starts_with("take probe_scenarios.py:"),
                "{t:#}"
            );
            let lock = doc::lock(&d, holds[0]["lock"].as_str().unwrap());
            assert_eq!(lock["holders"].as_array().unwrap().len(), 1, "{lock:#}");
            assert_eq!(lock["holders"][0]["thread"], t["id"]);
        }
    });
}

#[test]
fn every_permit_of_a_semaphore_has_an_exact_holder() {
    for_each_interpreter(|py| {
        let target = start(py, "semaphore");
        let (_, d) = dump_json(target.pid, "0");
        let waiter = doc::thread_by_name(&d, "waiter");
        let sem_id = waiter["waits_for"]["target"]
            .as_str()
            .unwrap_or_else(|| panic!("[{}] waiter waits for nothing: {waiter:#}", py.label));
        let sem = doc::lock(&d, sem_id);
        assert_eq!(sem["kind"], "semaphore", "{sem:#}");
        assert_eq!(sem["locked"], true, "all permits are taken: {sem:#}");
        let mut holders: Vec<String> = sem["holders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                assert_eq!(h["evidence"], "probe", "{h}");
                assert!(h["site"].as_str().unwrap().starts_with("take "), "{h}");
                h["thread"].as_str().unwrap().to_string()
            })
            .collect();
        holders.sort();
        let mut expected = vec![thread_id_of(&d, "holder-0"), thread_id_of(&d, "holder-1")];
        expected.sort();
        assert_eq!(holders, expected, "{sem:#}");
    });
}

#[test]
fn a_condition_held_by_bare_acquire_while_another_waits_for_notify() {
    for_each_interpreter(|py| {
        let target = start(py, "condition");
        let (_, d) = dump_json(target.pid, "0");
        let waiter = doc::thread_by_name(&d, "waiter");
        assert_eq!(
            waiter["state"], "condition_wait",
            "[{}] {waiter:#}",
            py.label
        );
        assert!(
            waiter["holds"].as_array().unwrap().is_empty(),
            "wait() released the lock: {waiter:#}"
        );
        let cond = doc::lock(&d, waiter["waits_for"]["target"].as_str().unwrap());
        assert_eq!(cond["kind"], "condition");
        let holders = cond["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{cond:#}");
        assert_eq!(holders[0]["evidence"], "probe");
        assert_eq!(
            holders[0]["thread"].as_str().unwrap(),
            thread_id_of(&d, "holder")
        );
        let holder = doc::thread_by_name(&d, "holder");
        assert_eq!(holder["holds"][0]["evidence"], "probe", "{holder:#}");
        assert!(holder["holds"][0]["site"]
            .as_str()
            .unwrap()
            .starts_with("take probe_scenarios.py:"));
    });
}

#[test]
fn a_probe_claim_memory_contradicts_is_reported_not_trusted() {
    for_each_interpreter(|py| {
        let target = start(py, "contradiction");
        let (code, d) = dump_json(target.pid, "0");
        assert_eq!(code, 0, "[{}] {:#}", py.label, d["findings"]);
        let locks = d["locks"].as_array().unwrap();
        let forged = locks
            .iter()
            .find(|l| l["contradictions"].is_array())
            .unwrap_or_else(|| panic!("no contradiction reported: {locks:#?}"));
        assert_eq!(forged["locked"], false);
        assert!(
            forged["holders"].as_array().unwrap().is_empty(),
            "{forged:#}"
        );
        let c = &forged["contradictions"][0];
        assert_eq!(c["evidence"], "probe");
        assert_eq!(c["memory"], "the lock is unlocked");
        assert!(c["site"].as_str().unwrap().starts_with("forged "), "{c}");
        let main = doc::thread_by_name(&d, "MainThread");
        assert!(main["holds"].as_array().unwrap().is_empty(), "{main:#}");
    });
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(gridlock_bin())
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The host's oldest and newest, and every Debian root interpreter: those run under `chroot`,
/// where the probe's host folder is reached through `/proc/<gridlock's pid>/root`.
fn oldest_and_newest() -> Vec<Interpreter> {
    let all = support::interpreters();
    let host: Vec<&Interpreter> = all.iter().filter(|i| i.root.is_none()).collect();
    let mut picked: Vec<Interpreter> = Vec::new();
    if let Some(i) = host.iter().min_by_key(|i| i.minor) {
        picked.push((*i).clone());
    }
    if let Some(i) = host.iter().max_by_key(|i| i.minor) {
        picked.push((*i).clone());
    }
    picked.extend(all.iter().filter(|i| i.root.is_some()).cloned());
    picked
}

fn run_json(args: &[&str]) -> (i32, String, serde_json::Value) {
    let report = std::env::temp_dir().join(format!(
        "gridlock-probe-run-{}-{}.json",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut all = vec!["--report", report.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, stderr) = run(&all);
    let doc = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("no report written: {stderr}"));
    let _ = std::fs::remove_file(&report);
    (code, stderr, doc)
}

fn probe_notes(doc: &serde_json::Value) -> Vec<String> {
    doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["notes"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_string))
        .filter(|n| n.contains("did not load"))
        .collect()
}

/// A Python process of a `run --probe` that could not load the probe is told apart, with
/// why and what to do, instead of silently reporting without it.
#[test]
fn run_probe_says_where_the_probe_did_not_load() {
    let script = "import time; time.sleep(1.5)";
    for py in oldest_and_newest() {
        let p = py.path.to_str().unwrap();
        // Loaded: no note.
        let (code, stderr, doc) = run_json(&["--probe", "--", p, "-c", script]);
        assert_eq!(code, 0, "[{}] {stderr}", py.label);
        assert!(probe_notes(&doc).is_empty(), "[{}] {doc:#}", py.label);
        // -I ignores PYTHONPATH: the probe's folders were given but not used.
        let (code, stderr, doc) = run_json(&["--probe", "--", p, "-I", "-c", script]);
        assert_eq!(code, 0, "[{}] {stderr}", py.label);
        let notes = probe_notes(&doc);
        assert_eq!(notes.len(), 1, "[{}] {doc:#}", py.label);
        assert!(
            notes[0].contains("did not run the probe's sitecustomize"),
            "{notes:?}"
        );
        assert!(notes[0].contains("python -m gridlock_probe"), "{notes:?}");
        assert!(stderr.contains("did not load"), "[{}] {stderr}", py.label);
        // A command that starts Python with an environment of its own.
        let (code, stderr, doc) = run_json(&["--probe", "--", "env", "-i", p, "-c", script]);
        assert_eq!(code, 0, "[{}] {stderr}", py.label);
        let notes = probe_notes(&doc);
        assert_eq!(notes.len(), 1, "[{}] {doc:#}", py.label);
        assert!(notes[0].contains("environment lacks"), "{notes:?}");
    }
}

/// A root without `/proc` cannot reach the probe's host folder: said so, in a private mount
/// namespace where the Debian root's `/proc` is unmounted (the host's mount is untouched).
#[test]
fn run_probe_in_a_root_without_proc_says_the_folder_is_not_visible() {
    let Some(py) = support::interpreters()
        .into_iter()
        .find(|i| i.root.is_some() && i.minor == 14)
    else {
        eprintln!("note: no Debian root python3.14: skipped");
        return;
    };
    let root = py.root.as_ref().unwrap().to_str().unwrap().to_string();
    let shell = format!(
        "umount '{root}/proc' && exec chroot '{root}' /usr/bin/python3.14 -c 'import time; time.sleep(1.5)'"
    );
    let (code, stderr, doc) =
        run_json(&["--probe", "--", "unshare", "--mount", "sh", "-c", &shell]);
    assert_eq!(code, 0, "{stderr}");
    let notes = probe_notes(&doc);
    assert_eq!(notes.len(), 1, "{doc:#}");
    assert!(
        notes[0].contains("is not visible from its root"),
        "{notes:?}"
    );
}

#[test]
fn run_probe_finds_every_lock_order_inversion_and_loads_into_children() {
    let script = fixture("probe_scenarios.py");
    // The probe is installed by the boot hook here, not by -m: the fixture checks it.
    for py in oldest_and_newest() {
        let p = py.path.to_str().unwrap();
        let (code, stderr) = run(&[
            "--probe",
            "--fail-on",
            "lock_order_inversion",
            "--",
            p,
            script.to_str().unwrap(),
            "inversion",
        ]);
        assert_eq!(code, 3, "[{}] {stderr}", py.label);
        assert!(stderr.contains("inversion"), "{stderr}");
        assert!(stderr.contains("path probe_scenarios.py"), "{stderr}");
        // Without --fail-on the command keeps its own status.
        let (code, stderr) = run(&["--probe", "--", p, script.to_str().unwrap(), "inversion"]);
        assert_eq!(code, 0, "[{}] {stderr}", py.label);
        // A Python child of a Python child has it too.
        let check = "import sys,threading; sys.exit(0 if 'gridlock_probe' in sys.modules and type(threading.Lock()).__name__.startswith('_GridlockProbe') else 5)";
        let outer = format!(
            "import subprocess,sys; sys.exit(subprocess.run([sys.executable, '-c', {check:?}]).returncode)"
        );
        let (code, stderr) = run(&["--probe", "--", p, "-c", &outer]);
        assert_eq!(code, 0, "[{}] {stderr}", py.label);
        // Without --probe nothing is loaded.
        let (code, _) = run(&["--", p, "-c", check]);
        assert_eq!(code, 5, "[{}]", py.label);
    }
}

#[test]
fn the_probe_keeps_lock_semantics() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe_semantics.py");
    for_each_interpreter(|py| {
        let out = Command::new(&py.path)
            .arg(&script)
            .env("PYTHONPATH", probes_dir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "[{}] {}{}",
            py.label,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}
