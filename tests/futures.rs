//! End-to-end: waits on futures and pools as wait-for edges, on real CPython processes of
//! every interpreter. A thread waiting on a future waits for the worker running its work item
//! (or for every worker of the pool it is queued in, or for the asyncio task computing it);
//! cycles through those edges are deadlocks naming every party; busy, healthy pools are not.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};

use support::parallel::for_each_interpreter_at_once;
use support::{
    doc, dump_json, dump_text, fixture, for_each_interpreter, gridlock, gridlock_bin, line_of,
    Target,
};

const WINDOW: &str = "300ms";

/// How many interpreters' deadlocked targets are checked at once: they sleep in their
/// cycle, so the checks mostly wait (a target starting, a dump's window). The busy pools
/// are checked one at a time.
const AT_ONCE: usize = 3;

fn deadlocks(d: &Value) -> Vec<&Value> {
    doc::findings(d, "deadlock")
}

fn only_deadlock(d: &Value) -> &Value {
    let found = deadlocks(d);
    assert_eq!(
        found.len(),
        1,
        "expected one deadlock, got: {:#}",
        d["findings"]
    );
    found[0]
}

fn thread_id<'a>(d: &'a Value, name: &str) -> &'a str {
    doc::thread_by_name(d, name)["id"].as_str().unwrap()
}

/// The finding's edge leaving `from` with `via`.
fn edge<'a>(f: &'a Value, from: &str, via: &str) -> &'a Value {
    f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from"] == from && e["via"] == via)
        .unwrap_or_else(|| panic!("no {via} edge from {from} in {:#}", f["edges"]))
}

/// MainThread holds `config_lock` and waits (through each kind of future wait) for
/// `reload_rate`, which runs on "reloader_0" and waits for `config_lock`.
#[test]
fn thread_pool_cycle_through_every_kind_of_wait() {
    let script = fixture("futures_thread_pool.py");
    let run_line = line_of(&script, "def reload_rate", "with config_lock:");
    for_each_interpreter_at_once(AT_ONCE, |interp| {
        for (mode, via) in [
            ("result", "Future.result"),
            ("wait", "concurrent.futures.wait"),
            ("as_completed", "as_completed"),
            ("map", "Future.result"),
        ] {
            let target = Target::start(interp, &script, &[mode]);
            let (code, d) = dump_json(target.pid, WINDOW);
            assert_eq!(code, 3, "[{mode}] exit status: {:#}", d["findings"]);
            let f = only_deadlock(&d);
            let main = thread_id(&d, "MainThread");
            let worker = thread_id(&d, "reloader_0");
            let summary = f["summary"].as_str().unwrap();
            assert!(
                summary.contains(
                    "\"MainThread\" waits for the result of reload_rate running on \"reloader_0\""
                ) && summary
                    .contains("\"reloader_0\" waits for config_lock, held by \"MainThread\""),
                "[{mode}] {summary}"
            );
            assert!(!summary.contains("_condition"), "[{mode}] {summary}");
            let wait = &doc::thread_by_name(&d, "MainThread")["waits_for"];
            assert_eq!(wait["kind"], "future", "[{mode}] {wait:#}");
            assert_eq!(wait["via"], via, "[{mode}] {wait:#}");
            assert_eq!(wait["evidence"], "future", "[{mode}] {wait:#}");
            let to_future = edge(f, main, "waits_for");
            assert_eq!(to_future["evidence"], "future");
            let fut = doc::lock(&d, to_future["to"].as_str().unwrap());
            assert_eq!(fut["kind"], "future", "{fut:#}");
            assert_eq!(
                fut["names"][0]["name"], "the result of reload_rate",
                "{fut:#}"
            );
            let by = edge(f, to_future["to"].as_str().unwrap(), "completed_by");
            assert_eq!(by["to"], worker, "[{mode}] {by:#}");
            assert_eq!(by["evidence"], "future");
            assert_eq!(
                by["site"],
                format!("reload_rate futures_thread_pool.py:{run_line}"),
                "[{mode}] {by:#}"
            );
            let held = edge(
                f,
                edge(f, worker, "waits_for")["to"].as_str().unwrap(),
                "held_by",
            );
            assert_eq!(held["to"], main);
        }
    });
}

/// `shutdown(wait=True)` joins the workers: a join cycle with the worker that needs the lock.
#[test]
fn thread_pool_shutdown_joins_its_workers() {
    let script = fixture("futures_thread_pool.py");
    for_each_interpreter_at_once(AT_ONCE, |interp| {
        let target = Target::start(interp, &script, &["shutdown"]);
        let (code, d) = dump_json(target.pid, WINDOW);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let f = only_deadlock(&d);
        let main = thread_id(&d, "MainThread");
        assert_eq!(edge(f, main, "joins")["to"], thread_id(&d, "reloader_0"));
    });
}

/// Every worker of a two-thread pool waits on work it queued in the same pool.
#[test]
fn pool_starvation_is_a_deadlock_of_the_pool() {
    let script = fixture("futures_starvation.py");
    for_each_interpreter_at_once(AT_ONCE, |interp| {
        let target = Target::start(interp, &script, &[]);
        let (code, d) = dump_json(target.pid, WINDOW);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let f = only_deadlock(&d);
        assert!(
            f["summary"]
                .as_str()
                .unwrap()
                .starts_with("pool starvation"),
            "{}",
            f["summary"]
        );
        let summary = f["summary"].as_str().unwrap();
        assert!(
            summary.contains("queued for any of \"pool_0\", \"pool_1\""),
            "{summary}"
        );
        assert_eq!(doc::finding_thread_names(&d, f), vec!["pool_0", "pool_1"]);
        for w in ["pool_0", "pool_1"] {
            let id = thread_id(&d, w);
            let to = edge(f, id, "waits_for")["to"].as_str().unwrap().to_string();
            let fut = doc::lock(&d, &to);
            assert_eq!(fut["names"][0]["name"], "the result of inner (queued)");
            let mut holders: Vec<&str> = fut["holders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["thread"].as_str().unwrap())
                .collect();
            holders.sort();
            let mut pool = vec![thread_id(&d, "pool_0"), thread_id(&d, "pool_1")];
            pool.sort();
            assert_eq!(holders, pool, "a queued future waits for every worker");
        }
        let (_, text) = dump_text(target.pid, WINDOW);
        assert!(
            text.contains("queued in its pool, for any of its workers"),
            "{text}"
        );
    });
}

/// Pools kept busy with futures in flight: waits that end, never a finding.
#[test]
fn busy_pools_are_healthy() {
    let script = fixture("futures_healthy.py");
    for_each_interpreter(|interp| {
        for mode in ["map", "asyncio"] {
            let target = Target::start_busy(interp, &script, &[mode]);
            std::thread::sleep(std::time::Duration::from_millis(300));
            let (code, d) = dump_json(target.pid, "500ms");
            assert_eq!(code, 0, "[{mode}] {:#}", d["findings"]);
            assert!(
                deadlocks(&d).is_empty() && doc::findings(&d, "stall").is_empty(),
                "[{mode}] {:#}",
                d["findings"]
            );
        }
    });
}

/// At exit MainThread joins the non-daemon threads in `threading._shutdown`; the stall names
/// the holder of the lock "stats" waits for.
#[test]
fn stall_names_holders_and_the_exit_join() {
    let script = fixture("futures_shutdown.py");
    for_each_interpreter_at_once(AT_ONCE, |interp| {
        let target = Target::start(interp, &script, &[]);
        let (code, d) = dump_json(target.pid, WINDOW);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let stalls = doc::findings(&d, "stall");
        assert_eq!(stalls.len(), 1, "{:#}", d["findings"]);
        let s = stalls[0];
        let summary = s["summary"].as_str().unwrap();
        assert!(
            summary.contains("\"stats\" waits for stats_lock, held by \"reporter\""),
            "{summary}"
        );
        // `_shutdown` joins them one at a time, in no set order.
        let joined = ["reporter", "stats"]
            .into_iter()
            .find(|t| {
                summary.contains(&format!(
                    "\"MainThread\" waits for the non-daemon thread \"{t}\" to exit"
                ))
            })
            .unwrap_or_else(|| panic!("{summary}"));
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(main["state"], "join_wait", "{main:#}");
        assert_eq!(main["waits_for"]["kind"], "join");
        assert_eq!(main["waits_for"]["target"], thread_id(&d, joined));
        let join = edge(s, main["id"].as_str().unwrap(), "joins");
        assert!(
            join["site"]
                .as_str()
                .unwrap()
                .starts_with("_shutdown threading.py:"),
            "{join:#}"
        );
    });
}

/// Task "refresher" holds `cache_lock` and awaits `blocking_refresh` in the pool; the worker
/// waits on `run_coroutine_threadsafe(reload_cache())`, whose task waits for `cache_lock`.
#[test]
fn asyncio_cycle_through_executor_and_run_coroutine_threadsafe() {
    let script = fixture("futures_asyncio.py");
    for_each_interpreter_at_once(AT_ONCE, |interp| {
        for mode in ["run_in_executor", "wrap_future"] {
            let target = Target::start(interp, &script, &[mode]);
            let (code, d) = dump_json(target.pid, WINDOW);
            assert_eq!(code, 3, "[{mode}] {:#}", d["findings"]);
            let f = only_deadlock(&d);
            assert_eq!(doc::finding_thread_names(&d, f), vec!["blocking_0"]);
            let tasks = &f["tasks"];
            assert_eq!(tasks.as_array().unwrap().len(), 2, "[{mode}] {f:#}");
            let refresher = d["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == "refresher")
                .unwrap();
            let reload = d["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["coroutine"].as_str().unwrap().ends_with("reload_cache"))
                .unwrap();
            let worker = thread_id(&d, "blocking_0");
            // refresher -> its executor future -> the worker running blocking_refresh.
            let rid = refresher["id"].as_str().unwrap();
            let to_pool = edge(f, rid, "waits_for");
            assert_eq!(to_pool["evidence"], "future");
            let pool_future = to_pool["to"].as_str().unwrap();
            assert_eq!(doc::lock(&d, pool_future)["kind"], "future");
            assert_eq!(refresher["waits_for"]["target"], pool_future);
            assert_eq!(edge(f, pool_future, "completed_by")["to"], worker);
            // worker -> the run_coroutine_threadsafe future -> the reload_cache task.
            let to_task = edge(f, worker, "waits_for");
            let chained = to_task["to"].as_str().unwrap();
            assert_eq!(edge(f, chained, "completed_by")["to"], reload["id"]);
            // reload_cache -> cache_lock -> refresher.
            let to_lock = edge(f, reload["id"].as_str().unwrap(), "waits_for");
            assert_eq!(
                edge(f, to_lock["to"].as_str().unwrap(), "held_by")["to"],
                refresher["id"]
            );
            let summary = f["summary"].as_str().unwrap();
            assert!(
                summary.contains("blocking_refresh running on \"blocking_0\""),
                "[{mode}] {summary}"
            );
        }
    });
}

/// A fixture with pool worker processes, started in its own process group so that the
/// workers (which outlive a killed parent) are killed with it.
struct Group(Target);

impl Drop for Group {
    fn drop(&mut self) {
        unsafe { libc::kill(-self.0.pid, libc::SIGKILL) };
    }
}

fn own_group(cmd: &mut Command) {
    std::os::unix::process::CommandExt::process_group(cmd, 0);
}

/// `gridlock dump PID --tree --json`: exit code and document.
fn dump_tree(pid: i32, window: &str) -> (i32, Value) {
    let out = gridlock(&[
        "dump",
        &pid.to_string(),
        "--tree",
        "--json",
        "--window",
        window,
    ]);
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), doc)
}

/// The parent holds a multiprocessing.Lock its pool's worker process needs, and waits for
/// that worker's result: ProcessPoolExecutor (work id) and multiprocessing.Pool (job id).
#[test]
fn process_pool_cycles_under_tree() {
    let script = fixture("futures_process_pool.py");
    let line = line_of(&script, "def reload_rate", "with config_lock:");
    for_each_interpreter_at_once(AT_ONCE, |interp| {
        // `forkserver` (3.14's default on Linux): the workers are the server's children.
        for (mode, start) in [
            ("executor", "fork"),
            ("queued", "fork"),
            ("pool", "fork"),
            ("executor", "forkserver"),
            ("pool", "forkserver"),
        ] {
            let mode = &format!("{mode} {start}")[..];
            let group = Group(Target::start_with(
                interp,
                &script,
                &mode.split(' ').collect::<Vec<_>>(),
                own_group,
            ));
            let target = &group.0;
            let (code, d) = dump_tree(target.pid, WINDOW);
            assert_eq!(code, 3, "[{mode}] {:#}", d["findings"]);
            let f = only_deadlock(&d);
            assert_eq!(
                f["processes"].as_array().unwrap().len(),
                2,
                "[{mode}] {f:#}"
            );
            let parent = format!("{}:", target.pid);
            let main = f["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .find(|t| t.starts_with(&parent))
                .unwrap();
            let to_future = edge(f, main, "waits_for");
            assert_eq!(to_future["evidence"], "future", "[{mode}] {f:#}");
            let fut = to_future["to"].as_str().unwrap();
            let by = edge(f, fut, "completed_by");
            let worker = by["to"].as_str().unwrap();
            assert!(!worker.starts_with(&parent), "[{mode}] {by:#}");
            let worker = if mode.starts_with("queued") {
                // Queued work waits for the pool's worker processes, not for one thread.
                assert!(worker.ends_with(":p"), "[{mode}] {by:#}");
                assert_eq!(by["site"], Value::Null);
                let child = worker.trim_end_matches(":p");
                f["threads"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap())
                    .find(|t| t.starts_with(&format!("{child}:")))
                    .unwrap_or_else(|| panic!("[{mode}] no thread of {child}: {f:#}"))
            } else {
                assert_eq!(
                    by["site"],
                    format!("reload_rate futures_process_pool.py:{line}")
                );
                worker
            };
            let wait = edge(f, worker, "waits_for");
            assert_eq!(wait["evidence"], "shm_futex", "[{mode}] {f:#}");
            assert_eq!(edge(f, wait["to"].as_str().unwrap(), "held_by")["to"], main);
            let name = doc::lock(&d, fut)["names"][0]["name"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                name.starts_with("the result of reload_rate"),
                "[{mode}] {name}"
            );
        }
    });
}

/// `gridlock run` stops the same cycles, reports them and kills the tree.
#[test]
fn run_stops_process_pool_cycles() {
    let script = fixture("futures_process_pool.py");
    for_each_interpreter_at_once(AT_ONCE, |interp| {
        for mode in ["executor", "pool", "executor forkserver"] {
            let dir = std::env::temp_dir().join(format!(
                "gridlock-futures-run-{}-{}-{}",
                std::process::id(),
                interp.label,
                mode.replace(' ', "-")
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let report = dir.join("report.json");
            let out = Command::new(gridlock_bin())
                .args(["run", "--window", "500ms", "--timeout", "60s", "--report"])
                .arg(&report)
                .arg("--")
                .arg(&interp.path)
                .arg(&script)
                .args(mode.split(' '))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(3), "[{mode}] {stderr}");
            assert!(stderr.contains("through a future"), "[{mode}] {stderr}");
            let d: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
            let f = only_deadlock(&d);
            assert!(
                f["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["via"] == "completed_by"),
                "[{mode}] {f:#}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}

/// A multiprocessing.Pool.imap pipeline kept busy: no finding under `--tree`.
#[test]
fn busy_process_pool_is_healthy() {
    let script = fixture("futures_healthy.py");
    for_each_interpreter(|interp| {
        let group = Group(Target::start_busy_with(
            interp,
            &script,
            &["imap"],
            own_group,
        ));
        let target = &group.0;
        std::thread::sleep(std::time::Duration::from_millis(500));
        let (code, d) = dump_tree(target.pid, "500ms");
        assert_eq!(code, 0, "{:#}", d["findings"]);
        assert!(
            d["processes"].as_array().unwrap().len() >= 3,
            "{:#}",
            d["processes"]
        );
        assert!(
            deadlocks(&d).is_empty() && doc::findings(&d, "stall").is_empty(),
            "{:#}",
            d["findings"]
        );
    });
}
