//! Celery (issue 32), end to end on a real prefork worker and a real broker: kombu's
//! filesystem transport with the file result backend, and a real `redis-server` started here
//! on a loopback port. A task waiting inside the worker for a subtask
//! (`thumbnail.delay(n).get(disable_sync_subtasks=False)`) while every pool process is busy
//! doing the same is pool starvation: `dump --tree` reports a deadlock naming the tasks and
//! their ids (exit 3), and reads the worker's tasks into `tasks[]` with `framework: celery`.
//! A worker that ran chains (`-c 1`) and chains and a chord (`-c 2`) to completion gives no
//! finding. Each broker with
//! `-c 1` and `-c 2`; the workers of one broker start together. Interpreters: pyenv's 3.9-3.13
//! spread over the tests (filesystem: 3.9 and 3.11; Redis: 3.10 and 3.12; the shared queue and
//! the backend down: 3.13, else 3.12), each where celery and redis import (scripts/test
//! installs them), else skipped with a note.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// The pyenv interpreters of `wanted` (`("3.10", 10)`) where celery and redis import.
fn celery_interpreters(wanted: &[(&str, u32)]) -> Vec<Interpreter> {
    let mut out = Vec::new();
    for &(prefix, minor) in wanted {
        let Some((label, path)) = pyenv_python(prefix) else {
            eprintln!("note: no pyenv CPython {prefix}: skipped");
            continue;
        };
        let imports = Command::new(&path)
            .args(["-c", "import celery, redis, kombu.transport.redis"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !imports {
            eprintln!("note: celery or redis not installed for {label} (scripts/test installs them): skipped");
            continue;
        }
        out.push(Interpreter {
            label,
            path,
            minor,
            root: None,
        });
    }
    out
}

/// A worker started in its own process group: dropping it kills the main process and every
/// pool process it forked, even when the test fails.
struct Worker {
    target: Target,
    dir: PathBuf,
}

impl Drop for Worker {
    fn drop(&mut self) {
        unsafe {
            libc::kill(-self.target.pid, libc::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn data_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gridlock-celery-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_worker(py: &Interpreter, broker: &str, concurrency: u32, tag: &str) -> Worker {
    let dir = data_dir(tag);
    let c = concurrency.to_string();
    let target = Target::start_busy_with(
        py,
        &fixture("celery_worker.py"),
        &["worker", broker, &c, dir.to_str().unwrap()],
        |cmd| {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        },
    );
    Worker { target, dir }
}

/// `cmd`, killed by the kernel if the test process dies (a killed test leaves no client or
/// redis-server behind; a test that ends kills them itself).
fn dies_with_the_test(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// Run the fixture's client against a worker's broker; returns its stdout.
fn send(py: &Interpreter, broker: &str, worker: &Worker, args: &[&str]) -> String {
    let out = dies_with_the_test(
        Command::new(&py.path)
            .arg(fixture("celery_worker.py"))
            .args(["send", broker, worker.dir.to_str().unwrap()])
            .args(args)
            .stdin(Stdio::null()),
    )
    .output()
    .expect("run the celery client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "[{}] celery client {args:?} failed: {stdout}\n{}",
        py.label,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn dump_tree_json(pid: i32) -> (i32, Value) {
    let out = gridlock(&[
        "dump",
        &pid.to_string(),
        "--tree",
        "--json",
        "--window",
        "1",
    ]);
    let code = out.status.code().unwrap_or(-1);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gridlock dump --tree {pid} printed no JSON ({e}); exit {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, doc)
}

fn celery_tasks(doc: &Value) -> Vec<&Value> {
    doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["framework"] == "celery")
        .collect()
}

fn deadlocks(doc: &Value) -> Vec<&Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "deadlock")
        .collect()
}

/// A starving worker of `concurrency` pool processes: the deadlock, its tasks and ids.
fn check_starvation(py: &Interpreter, worker: &Worker, concurrency: usize) {
    let label = &py.label;
    let (code, doc) = dump_json_until_tree(worker.target.pid, |code, doc| {
        code == 3
            && celery_tasks(doc)
                .iter()
                .filter(|t| t["name"] == "render" && !t["frames"].as_array().unwrap().is_empty())
                .count()
                == concurrency
    });
    assert_eq!(
        code, 3,
        "[{label}] -c {concurrency}: expected a deadlock: {doc:#}"
    );
    // Every pool process runs a `render` that waits for a `thumbnail` result.
    let tasks = celery_tasks(&doc);
    let renders: Vec<&&Value> = tasks
        .iter()
        .filter(|t| t["name"] == "render" && t["pid"] != worker.target.pid)
        .collect();
    assert_eq!(renders.len(), concurrency, "[{label}] renders: {tasks:#?}");
    for r in &renders {
        assert_eq!(r["state"], "running");
        let wait = &r["waits_for"];
        assert_eq!(wait["evidence"], "celery", "[{label}] {r:#}");
        assert_eq!(wait["via"], "AsyncResult.get", "[{label}] {r:#}");
        assert!(
            wait["site"]
                .as_str()
                .unwrap()
                .starts_with("render celery_worker.py:"),
            "[{label}] {r:#}"
        );
        let uuid = r["id"].as_str().unwrap().split(":celery:").nth(1).unwrap();
        assert_eq!(uuid.len(), 36, "[{label}] a task id is a uuid: {uuid}");
    }
    // The worker's main process holds the requests, the subtask queued among them.
    let queued: Vec<&&Value> = tasks
        .iter()
        .filter(|t| t["pid"] == worker.target.pid && t["state"] == "pending")
        .collect();
    assert!(
        queued.iter().any(|t| t["name"] == "thumbnail"),
        "[{label}] no queued thumbnail in the main process: {tasks:#?}"
    );
    let found = deadlocks(&doc);
    assert_eq!(found.len(), 1, "[{label}] {found:#?}");
    let f = found[0];
    let summary = f["summary"].as_str().unwrap();
    // A subtask still in the broker (with `-c 2`, the one the blocked main thread has not
    // fetched): its only waker in the tree is that thread, so the knot is a deadlock of the
    // tree, said so, with a note naming the subtask and its queue.
    let notes: Vec<&str> = f["notes"]
        .as_array()
        .map(|n| n.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    let in_broker: Vec<&str> = doc["locks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| f["locks"].as_array().unwrap().contains(&l["id"]))
        .filter(|l| {
            l["name"]
                .as_str()
                .is_some_and(|n| n.contains("(in the broker"))
        })
        .filter_map(|l| l["id"].as_str()?.strip_prefix("celery:result:"))
        .collect();
    for uuid in &in_broker {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with(&format!("[{uuid}] is still in the broker (queue celery"))),
            "[{label}] -c {concurrency}: {f:#}"
        );
    }
    assert_eq!(
        summary.contains("as far as this process tree shows"),
        !in_broker.is_empty(),
        "[{label}] -c {concurrency}: {summary}"
    );
    if concurrency == 1 {
        assert!(in_broker.is_empty() && notes.is_empty(), "[{label}] {f:#}");
    } else {
        assert_eq!(f["knot"], true, "[{label}] -c {concurrency}: {f:#}");
    }
    let queued_id = queued
        .iter()
        .find(|t| t["name"] == "thumbnail")
        .and_then(|t| t["id"].as_str())
        .and_then(|id| id.split(":celery:").nth(1))
        .unwrap();
    assert!(
        summary.contains(&format!("thumbnail[{queued_id}]")),
        "[{label}] the summary names the queued subtask {queued_id}: {summary}"
    );
    // Every pool process's thread is in the finding.
    let pool_threads: Vec<&str> = f["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .filter(|t| !t.starts_with(&format!("{}:", worker.target.pid)))
        .collect();
    assert_eq!(pool_threads.len(), concurrency, "[{label}] {f:#}");
    assert!(
        f["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["evidence"] == "celery"),
        "[{label}] {f:#}"
    );
    if concurrency == 1 {
        check_outputs(label, worker, &doc);
    }
    // The text report says it too, through `dump --tree`.
    let out = gridlock(&["dump", &worker.target.pid.to_string(), "--tree"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "[{label}] {text}");
    assert!(text.contains("DEADLOCK"), "[{label}] {text}");
    assert!(text.contains("thumbnail["), "[{label}] {text}");
    // A waited result is labelled with Celery's type and no address: it is no
    // concurrent.futures.Future, nor an object at some address.
    let result_label = text
        .lines()
        .find(|l| l.contains("waits for  the result of thumbnail["))
        .unwrap_or_else(|| panic!("[{label}] no wait on a thumbnail's result: {text}"));
    assert!(
        result_label.contains(") <celery.result.AsyncResult>"),
        "[{label}] {result_label}"
    );
    assert!(
        !text.contains("concurrent.futures.Future"),
        "[{label}] {text}"
    );
}

/// A starving `-c 1` worker's other outputs: the Celery release read from memory (a checked
/// one: no note), `top`'s task view of its document, and DOT through `dump --tree`.
fn check_outputs(label: &str, worker: &Worker, doc: &Value) {
    for p in doc["processes"].as_array().unwrap() {
        let version = p["celery"]["version"].as_str().unwrap_or_default();
        assert!(version.starts_with("5."), "[{label}] celery.version: {p:#}");
        assert!(
            !p["notes"].to_string().contains("Celery"),
            "[{label}] a checked release has no note: {p:#}"
        );
    }
    let screen = support::top_view::render(doc, '4');
    let row = screen
        .lines()
        .find(|l| l.contains(" render ") && l.contains("thumbnail["))
        .unwrap_or_else(|| panic!("[{label}] no render row waiting for a thumbnail: {screen}"));
    assert!(
        row.trim_start().starts_with("celery") && row.contains("running"),
        "[{label}] {row}"
    );
    // Tried up to three times, as the JSON dump above is: under load a pool process's
    // result poll (redis) can wake inside the 0.3 s window (seen once in a full suite run).
    let dot_dump = || {
        gridlock(&[
            "dump",
            &worker.target.pid.to_string(),
            "--tree",
            "--window",
            "0.3",
            "--dot",
            "-",
        ])
    };
    let mut out = dot_dump();
    for _ in 0..2 {
        if out.status.code() == Some(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        out = dot_dump();
    }
    let dot = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "[{label}] {dot}");
    let graph = &dot[dot.find("digraph waitfor {").expect("a DOT graph")..];
    assert!(
        graph.contains("label=\"celery task render\\nrunning\""),
        "[{label}] {graph}"
    );
    assert!(
        graph
            .lines()
            .any(|l| l.contains("-> \"celery:result:") && l.contains("color=red")),
        "[{label}] a red wait on a result: {graph}"
    );
}

fn dump_json_until_tree(pid: i32, done: impl Fn(i32, &Value) -> bool) -> (i32, Value) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, doc) = dump_tree_json(pid);
        if done(code, &doc) || std::time::Instant::now() >= deadline {
            return (code, doc);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A worker that ran chains and a chord to completion: no finding.
fn check_healthy(py: &Interpreter, worker: &Worker) {
    let (code, doc) = dump_tree_json(worker.target.pid);
    assert_eq!(code, 0, "[{}] healthy worker: {doc:#}", py.label);
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["kind"] != "deadlock" && f["kind"] != "stall"),
        "[{}] {doc:#}",
        py.label
    );
    assert!(
        !doc["processes"].to_string().contains("Celery's version")
            && !doc["processes"]
                .to_string()
                .contains("is outside the releases"),
        "[{}] no version note: {doc:#}",
        py.label
    );
    // The tree is the worker and its pool processes.
    assert!(
        doc["processes"].as_array().unwrap().len() >= 2,
        "[{}] {doc:#}",
        py.label
    );
}

/// Both concurrencies starve and one of each runs healthy work; `brokers` gives each of the
/// four workers its own broker (its own queue), so no worker takes another's tasks.
fn check_broker(py: &Interpreter, brokers: [String; 4], tag: &str) {
    let starving: Vec<(usize, Worker, &str)> = [1, 2]
        .into_iter()
        .zip(&brokers[..2])
        .map(|(c, b)| {
            let w = start_worker(py, b, c as u32, &format!("{tag}-starve{c}"));
            (c, w, b.as_str())
        })
        .collect();
    let healthy: Vec<(Worker, &str)> = [1, 2]
        .into_iter()
        .zip(&brokers[2..])
        .map(|(c, b)| {
            (
                start_worker(py, b, c, &format!("{tag}-healthy{c}")),
                b.as_str(),
            )
        })
        .collect();
    for (c, w, b) in &starving {
        send(py, b, w, &["starve", &c.to_string()]);
    }
    for ((w, b), args) in healthy
        .iter()
        .zip([&["healthy"][..], &["healthy", "chord"]])
    {
        let out = send(py, b, w, args);
        assert!(out.contains("DONE"), "[{}] {out}", py.label);
    }
    for (w, _) in &healthy {
        check_healthy(py, w);
    }
    for (c, w, _) in &starving {
        check_starvation(py, w, *c);
    }
}

#[test]
fn celery_filesystem_broker() {
    let pys = celery_interpreters(&[("3.9", 9), ("3.11", 11)]);
    for py in &pys {
        let brokers = std::array::from_fn(|_| "filesystem".to_string());
        check_broker(py, brokers, &format!("fs-{}", py.label));
    }
}

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Option<Redis> {
    start_redis_with(&[])
}

/// A `redis-server` on a free loopback port with extra arguments (`--requirepass`).
fn start_redis_with(extra: &[&str]) -> Option<Redis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = dies_with_the_test(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .spawn()
    .ok()?;
    let redis = Redis { child, port };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(redis);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn celery_redis_broker() {
    let pys = celery_interpreters(&[("3.10", 10), ("3.12", 12)]);
    if pys.is_empty() {
        return;
    }
    let Some(redis) = start_redis() else {
        eprintln!(
            "note: redis-server not installed or did not start (scripts/test installs it): skipped"
        );
        return;
    };
    for (i, py) in pys.iter().enumerate() {
        // One database per worker, so their queues never meet.
        let brokers =
            std::array::from_fn(|w| format!("redis://127.0.0.1:{}/{}", redis.port, 4 * i + w));
        check_broker(py, brokers, &format!("redis-{}", py.label));
    }
}

/// Two workers on one broker (kombu's filesystem transport), each `-c 1`: A consumes only
/// `renders`, B only `celery`, the default queue. B naps; A's `render` waits for a `thumbnail`
/// that goes to B's queue. Another worker (B) could take the subtask once it frees, so
/// `dump --tree` on the pair's parent reports a stall, not a deadlock, naming the subtask's id
/// and queue and how the queue is known, with a note that consumers outside the tree are not
/// seen. Shown on pyenv's 3.13, else 3.12 (one pair: five processes).
#[test]
fn celery_shared_queue_is_a_stall() {
    let pys = celery_interpreters(&[("3.13", 13), ("3.12", 12)]);
    let Some(py) = pys.first() else { return };
    let label = &py.label;
    let dir = data_dir(&format!("pair-{label}"));
    let target = Target::start_busy_with(
        py,
        &fixture("celery_worker.py"),
        &["pair", "filesystem", dir.to_str().unwrap()],
        |cmd| {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        },
    );
    let pair = Worker { target, dir };
    send(py, "filesystem", &pair, &["shared"]);
    let stall = |doc: &Value| -> Option<Value> {
        doc["findings"]
            .as_array()?
            .iter()
            .find(|f| {
                f["kind"] == "stall"
                    && f["id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with("celery-stall:"))
            })
            .cloned()
    };
    let (code, doc) = dump_json_until_tree(pair.target.pid, |_, doc| stall(doc).is_some());
    assert_eq!(code, 3, "[{label}] a stall fails: {doc:#}");
    assert!(deadlocks(&doc).is_empty(), "[{label}] no deadlock: {doc:#}");
    let f = stall(&doc).unwrap_or_else(|| panic!("[{label}] no Celery stall: {doc:#}"));
    // The subtask's id, as the waiting render's AsyncResult names it.
    let tasks = celery_tasks(&doc);
    let render = tasks
        .iter()
        .find(|t| t["name"] == "render" && !t["frames"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("[{label}] no running render: {tasks:#?}"));
    let waited = render["waits_for"]["name"].as_str().unwrap();
    let id = waited
        .split_once('[')
        .and_then(|(_, rest)| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("[{label}] {render:#}"));
    assert_eq!(id.len(), 36, "[{label}] a task id is a uuid: {waited}");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("[{id}]")),
        "[{label}] names {id}: {summary}"
    );
    // The queue, and how it is known: B's request's delivery, or the app's default queue.
    assert!(
        summary.contains("queue celery (the routing key its request was delivered with)")
            || summary.contains("queue celery (the app's default queue"),
        "[{label}] names the queue: {summary}"
    );
    assert!(
        summary.contains("nap["),
        "[{label}] names what B is busy with: {summary}"
    );
    let notes = f["notes"].as_array().unwrap();
    assert!(!notes.is_empty(), "[{label}] {f:#}");
    assert!(
        f["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["via"] == "completed_by" && e["evidence"] == "celery"),
        "[{label}] {f:#}"
    );
    // Worker B's app was read: it consumes `celery`; A consumes `renders`.
    let consumes: Vec<Vec<&str>> = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["celery"]["consumes"].as_array())
        .map(|q| q.iter().filter_map(|s| s.as_str()).collect())
        .collect();
    assert!(consumes.contains(&vec!["celery"]), "[{label}] {consumes:?}");
    assert!(
        consumes.contains(&vec!["renders"]),
        "[{label}] {consumes:?}"
    );
    let out = gridlock(&["dump", &pair.target.pid.to_string(), "--tree"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "[{label}] {text}");
    assert!(
        text.contains("STALL") && text.contains(id),
        "[{label}] {text}"
    );
    assert!(text.contains("note: "), "[{label}] {text}");
}

/// A task waiting inside a worker for a result while the Redis result backend goes away
/// (`redis-server` killed mid-wait, password-protected): the wait is an I/O wait on the
/// backend, a stall (exit 3) that names the backend's URL with its password masked, not a
/// deadlock and not "no finding". Celery retries the connection for about 20 s, then fails
/// the task: the dump is taken inside that time. Shown on pyenv's 3.13, else 3.12.
#[test]
fn celery_backend_down_is_a_stall() {
    let pys = celery_interpreters(&[("3.13", 13), ("3.12", 12)]);
    let Some(py) = pys.first() else { return };
    let label = &py.label;
    let Some(mut redis) = start_redis_with(&["--requirepass", "s3cretpw"]) else {
        eprintln!("note: redis-server not installed or did not start: skipped");
        return;
    };
    let url = format!("redis://:s3cretpw@127.0.0.1:{}/0", redis.port);
    let worker = start_worker(py, &url, 1, &format!("ghost-{label}"));
    send(py, &url, &worker, &["ghost"]);
    // The task waits (its result never comes) while the backend is up ...
    let (_, doc) = dump_json_until_tree(worker.target.pid, |_, doc| {
        celery_tasks(doc)
            .iter()
            .any(|t| t["name"] == "await_ghost" && t["waits_for"]["via"] == "AsyncResult.get")
    });
    assert!(
        celery_tasks(&doc)
            .iter()
            .any(|t| t["name"] == "await_ghost" && !t["waits_for"].is_null()),
        "[{label}] the task waits: {doc:#}"
    );
    // ... then the backend goes away mid-wait.
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let down = |doc: &Value| -> Option<Value> {
        doc["findings"]
            .as_array()?
            .iter()
            .find(|f| {
                f["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("celery-backend:"))
            })
            .cloned()
    };
    let (code, doc) = dump_json_until_tree(worker.target.pid, |_, doc| down(doc).is_some());
    let f = down(&doc).unwrap_or_else(|| panic!("[{label}] no backend finding: {doc:#}"));
    assert_eq!(code, 3, "[{label}] {doc:#}");
    assert_eq!(f["kind"], "stall", "[{label}] {f:#}");
    assert!(deadlocks(&doc).is_empty(), "[{label}] {doc:#}");
    let summary = f["summary"].as_str().unwrap();
    let masked = format!("redis://:***@127.0.0.1:{}/0", redis.port);
    assert!(
        summary.contains(&masked),
        "[{label}] names {masked}: {summary}"
    );
    assert!(summary.contains("await_ghost["), "[{label}] {summary}");
    // What gridlock read from memory keeps the password masked (the command lines, which
    // carry the URL as typed, are the user's own).
    let read: Vec<String> = doc["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["celery"].to_string())
        .chain(
            doc["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.to_string()),
        )
        .collect();
    assert!(
        read.iter().all(|s| !s.contains("s3cretpw")),
        "[{label}] the password leaks: {read:#?}"
    );
    assert!(
        doc["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["celery"]["backend"] == masked.as_str()),
        "[{label}] {doc:#}"
    );
}

/// `gridlock run --junit --report -- python celery_worker.py starving filesystem DIR`: the
/// command starts a `-c 1` worker on the filesystem broker and sends it one `render`, which
/// starves it. The run stops (exit 3, the tree killed) and the JUnit failure names the tasks,
/// their ids and the pool size. The worker's celery.__version__ is faked to 4.4.7 from its own
/// start-up code: its processes are read as Celery 5.x, with the note in text and JSON.
/// Shown on pyenv's 3.12, else 3.11.
#[test]
fn run_stops_a_starving_worker_and_junit_names_the_tasks_and_pool_size() {
    let pys = celery_interpreters(&[("3.12", 12), ("3.11", 11)]);
    let Some(py) = pys.first() else { return };
    let label = &py.label;
    let dir = data_dir(&format!("run-{label}"));
    let (junit, report) = (dir.join("junit.xml"), dir.join("report.json"));
    let out = Command::new(gridlock_bin())
        .args(["run", "--timeout", "90s", "--junit"])
        .arg(&junit)
        .arg("--report")
        .arg(&report)
        .arg("--")
        .arg(&py.path)
        .arg(fixture("celery_worker.py"))
        .args(["starving", "filesystem"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("run gridlock run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    let doc: Value = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(3), "[{label}] {stderr}");
    let found = deadlocks(&doc);
    assert_eq!(found.len(), 1, "[{label}] {doc:#}");
    let summary = found[0]["summary"].as_str().unwrap();
    // The render that waits (in the pool process) and the thumbnail it waits for.
    let tasks = celery_tasks(&doc);
    let render = tasks
        .iter()
        .find(|t| t["name"] == "render" && !t["frames"].as_array().unwrap().is_empty())
        .unwrap_or_else(|| panic!("[{label}] no running render: {tasks:#?}"));
    let process = |pid: &Value| {
        doc["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| &p["pid"] == pid)
            .unwrap_or_else(|| panic!("[{label}] no process {pid}: {doc:#}"))
    };
    let pool_process = process(&render["pid"]);
    let worker = process(&pool_process["ppid"]);
    assert!(
        summary.starts_with(&format!(
            "Celery pool starvation in worker pid {}: all 1 of its pool processes",
            worker["pid"]
        )),
        "[{label}] {summary}"
    );
    let render_id = render["id"]
        .as_str()
        .unwrap()
        .split(":celery:")
        .nth(1)
        .unwrap();
    let thumbnail = render["waits_for"]["name"].as_str().unwrap();
    assert!(thumbnail.starts_with("thumbnail["), "[{label}] {render:#}");
    for said in [
        format!("render[{render_id}] (pool process {})", render["pid"]),
        format!("waits for {thumbnail}"),
    ] {
        assert!(summary.contains(&said), "[{label}] {said}: {summary}");
        // The JUnit failure's message is the summary (its `[`/`]` need no escaping).
        assert!(
            xml.contains("<failure type=\"deadlock\" message=\"Celery pool starvation")
                && xml.contains(&said),
            "[{label}] {said}: {xml}"
        );
    }
    assert!(
        stderr.contains("DEADLOCK  Celery pool starvation"),
        "[{label}] {stderr}"
    );
    // The faked release: a note on the worker and its pool process, in JSON and in text.
    let note =
        "Celery 4.4.7 is outside the releases gridlock was checked on (5.x); it is read as those";
    for p in [worker, pool_process] {
        assert_eq!(p["celery"]["version"], "4.4.7", "[{label}] {p:#}");
        assert!(
            p["notes"].as_array().unwrap().iter().any(|n| n == note),
            "[{label}] {p:#}"
        );
    }
    assert!(
        stderr.contains(&format!("note: {note}")),
        "[{label}] {stderr}"
    );
}
