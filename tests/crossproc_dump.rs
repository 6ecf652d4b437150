//! `gridlock dump --tree`: cross-process deadlocks on real process trees (multiprocessing with
//! fork and spawn, raw os.pipe/os.fork). Every fixture runs in its own process group, killed
//! whole (grandchildren included) when the test ends.
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use support::{fixture, gridlock, interpreters, Interpreter};

/// A fixture's process tree: its own process group, SIGKILLed whole on drop.
struct Tree {
    child: Child,
    pid: i32,
    label: String,
    ready: String,
}

impl Tree {
    fn start(py: &Interpreter, script: &str, args: &[&str]) -> Tree {
        let mut cmd = Command::new(&py.path);
        cmd.arg(fixture(script))
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("spawn fixture");
        let pid = child.id() as i32;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut tree = Tree {
            child,
            pid,
            label: format!("{} {script} {}", py.label, args.join(" ")),
            ready: String::new(),
        };
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(l) if l.starts_with("READY") => {
                    tree.ready = l;
                    break;
                }
                Ok(_) => {}
                Err(_) => panic!("[{}] fixture never printed READY", tree.label),
            }
        }
        // Let the deadlock form (the blocked write, the second acquire).
        std::thread::sleep(Duration::from_millis(400));
        tree
    }

    /// Dump the tree; for a scenario still forming (a spawned child still importing), retry
    /// for a few seconds until a failing finding shows up.
    fn dump(&self, window: &str) -> (i32, Value, String) {
        for _ in 0..10 {
            let r = self.dump_once(window);
            if r.0 != 0 || self.label.contains("mp_healthy") {
                return r;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.dump_once(window)
    }

    fn dump_once(&self, window: &str) -> (i32, Value, String) {
        let out = gridlock(&[
            "dump",
            &self.pid.to_string(),
            "--tree",
            "--json",
            "--window",
            window,
        ]);
        let code = out.status.code().unwrap_or(-1);
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "[{}] no JSON ({e}): {}",
                self.label,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let text = gridlock(&[
            "dump",
            &self.pid.to_string(),
            "--tree",
            "--window",
            "0",
            "--color",
            "never",
        ]);
        (
            code,
            doc,
            String::from_utf8_lossy(&text.stdout).into_owned(),
        )
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn findings<'a>(d: &'a Value, kind: &str) -> Vec<&'a Value> {
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn pids(f: &Value) -> Vec<i64> {
    let mut v: Vec<i64> = f["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    v.sort();
    v
}

fn ready_pids(t: &Tree) -> Vec<i64> {
    t.ready
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().unwrap())
        .collect()
}

fn evidence(f: &Value) -> Vec<String> {
    f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["evidence"].as_str().unwrap().to_string())
        .collect()
}

/// Oldest and newest interpreters: the spawn start method re-imports everything, so it is
/// checked on two versions to keep this file's runtime short.
fn ends() -> Vec<Interpreter> {
    let all = interpreters();
    let mut v = vec![all.iter().min_by_key(|i| i.minor).unwrap().clone()];
    let newest = all.iter().max_by_key(|i| i.minor).unwrap().clone();
    if newest.minor != v[0].minor {
        v.push(newest);
    }
    v
}

/// Collect failures over interpreters so one does not hide another.
fn each(interps: &[Interpreter], check: impl FnMut(&Interpreter)) {
    support::representative::for_each_of(interps.to_vec(), check)
}

fn check_two_locks(py: &Interpreter, method: &str) {
    let t = Tree::start(py, "mp_locks.py", &[method]);
    let (code, d, text) = t.dump("300ms");
    assert_eq!(code, 3, "[{}] {text}", t.label);
    let dl = findings(&d, "deadlock");
    assert_eq!(dl.len(), 1, "[{}] {:#}", t.label, d["findings"]);
    let f = dl[0];
    assert_eq!(
        pids(f),
        ready_pids(&t),
        "[{}] only the two workers",
        t.label
    );
    assert!(f.get("knot").is_none(), "an exact cycle, not a knot");
    assert_eq!(f["threads"].as_array().unwrap().len(), 2);
    for e in f["edges"].as_array().unwrap() {
        match e["via"].as_str().unwrap() {
            "waits_for" => {
                assert_eq!(e["evidence"], "shm_futex");
                assert_eq!(e["name"], "second");
                assert!(e["site"]
                    .as_str()
                    .unwrap()
                    .starts_with("worker mp_locks.py:"));
            }
            "held_by" => assert_eq!(e["evidence"], "memory"),
            v => panic!("unexpected edge {v}"),
        }
    }
    for l in f["locks"].as_array().unwrap() {
        let lock = d["locks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == *l)
            .unwrap();
        assert_eq!(lock["kind"], "mp_lock");
        assert_eq!(lock["shared"]["value"], 0);
        assert!(lock["shared"]["inode"].as_u64().unwrap() > 0);
    }
    assert!(
        text.contains("2 threads in 2 processes wait for each other"),
        "{text}"
    );
    assert!(text.contains("[shm_futex]"), "{text}");
    // One search for the interpreter; every other process runs the same binary (forked, or
    // exec'd again by spawn and forkserver) and is found from the cache.
    let found: Vec<&str> = d["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["interpreter_found"].as_str().unwrap())
        .collect();
    assert!(found.len() >= 3, "[{}] {found:?}", t.label);
    assert_eq!(found[0], "searched", "[{}] {found:?}", t.label);
    assert!(
        found[1..].iter().all(|f| *f == "cached"),
        "[{}] {found:?}",
        t.label
    );
}

#[test]
fn two_processes_two_mp_locks_in_opposite_order() {
    each(&interpreters(), |py| check_two_locks(py, "fork"));
    each(&ends(), |py| check_two_locks(py, "spawn"));
    each(&ends(), |py| check_two_locks(py, "forkserver"));
}

fn check_queue_join(py: &Interpreter, method: &str) {
    let t = Tree::start(py, "mp_queue_join.py", &[method]);
    let (code, d, text) = t.dump("300ms");
    assert_eq!(code, 3, "[{}] {text}", t.label);
    let dl = findings(&d, "deadlock");
    assert_eq!(dl.len(), 1, "[{}] {:#}", t.label, d["findings"]);
    let f = dl[0];
    let child = ready_pids(&t)[0];
    assert_eq!(pids(f), vec![t.pid as i64, child], "[{}]", t.label);
    let ev = evidence(f);
    // A forkserver child is waited for through the server's pipe, not wait4: the child's pid
    // comes from the `Popen` in memory.
    let join = if method == "forkserver" {
        "memory"
    } else {
        "wait4"
    };
    assert!(ev.contains(&join.to_string()), "{ev:?}");
    assert!(ev.contains(&"pipe".to_string()), "{ev:?}");
    // The child holds the read end too (it inherited the queue): an OR-wait, so a knot.
    assert_eq!(f["knot"], true);
    assert!(text.contains("QueueFeederThread"), "{text}");
    assert!(text.contains(&format!("to exit  [{join}]")), "{text}");
}

#[test]
fn join_before_draining_a_queue() {
    each(&interpreters(), |py| check_queue_join(py, "fork"));
    each(&ends(), |py| check_queue_join(py, "spawn"));
    // forkserver: 3.14's default start method on Linux.
    let mut forkserver = ends();
    forkserver.extend(interpreters().into_iter().filter(|p| p.minor == 14));
    each(&forkserver, |py| check_queue_join(py, "forkserver"));
}

#[test]
fn join_before_draining_a_raw_pipe() {
    each(&interpreters(), |py| {
        let t = Tree::start(py, "mp_raw_pipe.py", &[]);
        let (code, d, text) = t.dump("300ms");
        assert_eq!(code, 3, "[{}] {text}", t.label);
        let dl = findings(&d, "deadlock");
        assert_eq!(dl.len(), 1, "[{}] {:#}", t.label, d["findings"]);
        let f = dl[0];
        // Unused ends are closed: every wait has one waker, an exact cycle.
        assert!(f.get("knot").is_none());
        assert_eq!(pids(f), vec![t.pid as i64, ready_pids(&t)[0]]);
        let ev = evidence(f);
        assert!(
            ev.contains(&"wait4".into()) && ev.contains(&"pipe".into()),
            "{ev:?}"
        );
        assert!(
            !text.contains("multiprocessing"),
            "no multiprocessing frames here: {text}"
        );
    });
}

fn check_conn_lock(py: &Interpreter, method: &str) {
    let t = Tree::start(py, "mp_conn_lock.py", &[method]);
    let (code, d, text) = t.dump("300ms");
    assert_eq!(code, 3, "[{}] {text}", t.label);
    let dl = findings(&d, "deadlock");
    assert_eq!(dl.len(), 1, "[{}] {:#}", t.label, d["findings"]);
    let f = dl[0];
    assert_eq!(pids(f), vec![t.pid as i64, ready_pids(&t)[0]]);
    let ev = evidence(f);
    assert!(ev.contains(&"shm_futex".into()), "{ev:?}");
    // A Pipe() is a socketpair: its peer comes from NETLINK_SOCK_DIAG, and the edge says so.
    assert!(ev.contains(&"sock_diag".into()), "{ev:?}");
    let sock = d["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "socket")
        .expect("socket resource");
    assert!(sock["shared"]["peer_inode"].as_u64().is_some());
    assert!(text.contains("held by \"MainThread\""), "{text}");
}

#[test]
fn parent_holds_lock_while_receiving_from_child() {
    each(&interpreters(), |py| check_conn_lock(py, "fork"));
    each(&ends(), |py| check_conn_lock(py, "spawn"));
}

#[test]
fn pool_worker_killed_holding_a_lock_is_an_orphaned_lock() {
    // Fork only: the pool's lock reaches workers through the initializer's global either way,
    // but only forked workers are guaranteed to exist before the first task kills one.
    each(&interpreters(), |py| {
        let t = Tree::start(py, "mp_pool_orphan.py", &[]);
        let (code, d, text) = t.dump("500ms");
        assert_eq!(code, 3, "[{}] {text}", t.label);
        let o = findings(&d, "orphaned_lock");
        assert_eq!(o.len(), 1, "[{}] {:#}", t.label, d["findings"]);
        assert!(findings(&d, "deadlock").is_empty());
        let lock = d["locks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == o[0]["locks"][0])
            .unwrap();
        assert_eq!(lock["shared"]["holder_exited"], true);
        assert_eq!(lock["shared"]["value"], 0);
        assert!(text.contains("ORPHANED LOCK"), "{text}");
    });
}

#[test]
fn healthy_pool_and_queue_have_no_finding() {
    let cases: Vec<(Interpreter, &str, &str)> = ends()
        .into_iter()
        .flat_map(|py| {
            [
                (py.clone(), "pool", "fork"),
                (py.clone(), "queue", "fork"),
                (py, "queue", "spawn"),
            ]
        })
        .collect();
    let mut failures = Vec::new();
    for (py, mode, method) in cases {
        let t = Tree::start(&py, "mp_healthy.py", &[mode, method]);
        let (code, d, _) = t.dump("1s");
        if code != 0 || !d["findings"].as_array().unwrap().is_empty() {
            failures.push(format!("[{}] exit {code}: {:#}", t.label, d["findings"]));
        }
        assert!(
            d["processes"].as_array().unwrap().len() >= 3,
            "[{}]",
            t.label
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
