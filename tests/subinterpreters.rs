//! End-to-end: processes running subinterpreters (`concurrent.interpreters`, 3.14+).
//! `_PyRuntime` lists the newest interpreter first: the main one is found along the list, and
//! the threads of every interpreter are read (a subinterpreter's thread state on an OS thread
//! of the main list holds that thread's innermost frames).
mod support;

use std::time::Duration;

use support::{doc, dump_json, dump_json_until, fixture, interpreters, Interpreter, Target};

/// The interpreters with `concurrent.interpreters` (3.14+); none, with a printed reason.
fn with_subinterpreters() -> Vec<Interpreter> {
    let found: Vec<Interpreter> = interpreters()
        .into_iter()
        .filter(|py| py.minor >= 14)
        .collect();
    if found.is_empty() {
        eprintln!("skipped: no CPython 3.14+ found (concurrent.interpreters is new in 3.14)");
    }
    found
}

/// Start the fixture in `mode` and dump it over 300 ms, expecting exit `code`.
fn dump_mode(py: &Interpreter, mode: &str, code: i32) -> serde_json::Value {
    let target = Target::start(py, &fixture("subinterpreters.py"), &[mode]);
    let (got, d) = dump_json(target.pid, "300ms");
    assert_eq!(got, code, "[{} {mode}] {:#}", py.label, d["findings"]);
    d
}

/// A thread's functions, innermost first.
fn functions(thread: &serde_json::Value) -> Vec<&str> {
    thread["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect()
}

/// The names of the threads of the one deadlock found, sorted.
fn deadlocked_names(d: &serde_json::Value) -> Vec<String> {
    let found = doc::findings(d, "deadlock");
    assert_eq!(found.len(), 1, "{:#}", d["findings"]);
    doc::finding_thread_names(d, found[0])
}

#[test]
fn a_deadlock_of_the_main_interpreter_is_found_beside_a_subinterpreter() {
    for py in with_subinterpreters() {
        let d = dump_mode(&py, "idle", 3);
        assert_eq!(
            deadlocked_names(&d),
            ["main-ab", "main-ba"],
            "[{}]",
            py.label
        );
    }
}

#[test]
fn a_deadlock_inside_a_subinterpreter_is_found_with_the_join_waiting_on_it() {
    for py in with_subinterpreters() {
        let d = dump_mode(&py, "inside", 3);
        assert_eq!(deadlocked_names(&d), ["sub-ab", "sub-ba"], "[{}]", py.label);
        // The main thread runs the subinterpreter's code: its stack goes from the join in
        // that code down to `Interpreter.exec` and the main interpreter's module.
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(main["state"], "join_wait", "[{}] {main:#}", py.label);
        let functions = functions(main);
        assert!(
            functions.first() == Some(&"Thread.join")
                && functions.contains(&"Interpreter.exec")
                && functions.last() == Some(&"<module>"),
            "[{}] {functions:?}",
            py.label
        );
    }
}

#[test]
fn an_interpreter_pool_worker_shows_the_function_it_runs() {
    for py in with_subinterpreters() {
        let d = dump_mode(&py, "pool", 0);
        let worker = d["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("InterpreterPoolExecutor"))
            })
            .unwrap_or_else(|| panic!("[{}] no worker: {:#}", py.label, d["threads"]));
        let functions = functions(worker);
        // Innermost the subinterpreter's frames (the submitted function), then the worker's.
        assert_eq!(
            functions.first(),
            Some(&"nap"),
            "[{}] {functions:?}",
            py.label
        );
        assert!(
            functions.contains(&"Interpreter.call") && functions.contains(&"_worker"),
            "[{}] {functions:?}",
            py.label
        );
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(
            main["waits_for"]["kind"], "future",
            "[{}] {main:#}",
            py.label
        );
    }
}

/// The lock of kind `gil` whose name starts with `prefix`.
fn gil_named<'a>(d: &'a serde_json::Value, prefix: &str) -> Option<&'a serde_json::Value> {
    d["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "gil" && l["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
}

/// The shared main GIL's lock.
fn main_gil(d: &serde_json::Value) -> Option<&serde_json::Value> {
    d["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "gil" && l["name"] == "the GIL")
}

/// The ids of the threads waiting for `gil`, sorted (none without it).
fn gil_waiters(gil: Option<&serde_json::Value>) -> Vec<serde_json::Value> {
    let mut w: Vec<_> = gil
        .and_then(|g| g["waiters"].as_array())
        .map(|ws| ws.iter().map(|w| w["thread"].clone()).collect())
        .unwrap_or_default();
    w.sort_by_key(|v| v.to_string());
    w
}

/// The main GIL is waited for by both spinning main-interpreter threads and by no thread but
/// them and the main thread (which may be caught in `Thread.start` taking the GIL back).
fn assert_main_gil_waiters(py: &Interpreter, d: &serde_json::Value, main: &serde_json::Value) {
    let id_of = |name: &str| doc::thread_by_name(d, name)["id"].clone();
    let main_waiters = gil_waiters(Some(main));
    let busy = [id_of("main-busy-0"), id_of("main-busy-1")];
    assert!(
        busy.iter().all(|b| main_waiters.contains(b))
            && main_waiters
                .iter()
                .all(|w| busy.contains(w) || *w == id_of("MainThread")),
        "[{}] {main:#}",
        py.label
    );
}

/// One interpreter of each version from 3.12 (whose per-interpreter GIL is read from the
/// debug offsets on 3.13+, from the checked table on 3.12); none, with a printed reason.
fn with_own_gil() -> Vec<Interpreter> {
    let mut found: Vec<Interpreter> = Vec::new();
    for py in interpreters().into_iter().filter(|py| py.minor >= 12) {
        if !found.iter().any(|f| f.minor == py.minor) {
            found.push(py);
        }
    }
    if found.is_empty() {
        eprintln!("skipped: no CPython 3.12+ found (own-GIL subinterpreters are new in 3.12)");
    }
    found
}

#[test]
fn each_interpreter_s_gil_is_its_own_lock_with_its_own_holder_and_waiters() {
    for py in with_own_gil() {
        eprintln!("[{}] own GIL", py.label);
        if py.minor == 12 {
            own_gil_on_3_12(&py);
            continue;
        }
        // "sub-holder" keeps its subinterpreter's own GIL in a PyDLL sleep, "sub-waiter" waits
        // to enter that subinterpreter; "legacy-holder" keeps the shared main GIL the same way
        // from a legacy subinterpreter, which freezes the two spinning main threads (the main
        // thread sleeps). Busy threads never settle: started without waiting for them to.
        let target = Target::start_busy(&py, &fixture("subinterpreter_own_gil.py"), &[]);
        let (code, d) = dump_json_until(target.pid, "300ms", Duration::from_secs(10), |_, d| {
            doc::findings(d, "gil_hold").len() == 2
        });
        assert_eq!(code, 3, "[{}] {:#}", py.label, d["findings"]);
        let id_of = |name: &str| doc::thread_by_name(&d, name)["id"].clone();
        let own = gil_named(&d, "the GIL of interpreter ")
            .unwrap_or_else(|| panic!("[{}] no own GIL: {:#}", py.label, d["locks"]));
        assert_eq!(
            own["holders"].as_array().unwrap().len(),
            1,
            "[{}] {own:#}",
            py.label
        );
        assert_eq!(
            own["holders"][0]["thread"],
            id_of("sub-holder"),
            "[{}] {own:#}",
            py.label
        );
        assert_eq!(own["holders"][0]["evidence"], "gil_state", "[{}]", py.label);
        assert_eq!(
            gil_waiters(Some(own)),
            [id_of("sub-waiter")],
            "[{}] {own:#}",
            py.label
        );
        assert_eq!(doc::thread_by_name(&d, "sub-holder")["owns_gil"], true);
        // The shared GIL is one node, held by the legacy subinterpreter's thread and waited
        // for by the main interpreter's threads only.
        let main =
            main_gil(&d).unwrap_or_else(|| panic!("[{}] no main GIL: {:#}", py.label, d["locks"]));
        assert_eq!(
            main["holders"][0]["thread"],
            id_of("legacy-holder"),
            "[{}]",
            py.label
        );
        assert_main_gil_waiters(&py, &d, main);
        // Each hold blocks only its own interpreter: each finding names its own waiters.
        for f in doc::findings(&d, "gil_hold") {
            let names = doc::finding_thread_names(&d, f);
            let own_hold = names.contains(&"sub-holder".to_string());
            assert!(
                own_hold != names.contains(&"legacy-holder".to_string())
                    && own_hold != names.iter().any(|n| n.starts_with("main-busy")),
                "[{}] {names:?}",
                py.label
            );
        }
    }
}

/// 3.12 (`_xxsubinterpreters`): "sub-holder" backtracks in a regex under the subinterpreter's
/// own GIL, a thread of the subinterpreter (in `wait_for_own_gil`) waits for that GIL, and the
/// legacy subinterpreter's PyDLL sleep keeps the main GIL from the main interpreter's threads.
/// Both thread states that hold a GIL are the ones `run_string` reuses, whose ids name the
/// main thread (which made them): the holders are unknown, never the main thread.
fn own_gil_on_3_12(py: &Interpreter) {
    let target = Target::start_busy(py, &fixture("subinterpreter_own_gil.py"), &[]);
    let (_, d) = dump_json_until(target.pid, "300ms", Duration::from_secs(10), |_, d| {
        gil_waiters(gil_named(d, "the GIL of interpreter ")).len() == 1
            && gil_waiters(main_gil(d)).len() >= 2
    });
    let id_of = |name: &str| doc::thread_by_name(&d, name)["id"].clone();
    let own = gil_named(&d, "the GIL of interpreter ")
        .unwrap_or_else(|| panic!("[{}] no own GIL: {:#}", py.label, d["locks"]));
    // The own GIL's one waiter is the subinterpreter's thread, none of the main interpreter's.
    let sub_waiter = d["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| functions(t).first() == Some(&"wait_for_own_gil"))
        .unwrap_or_else(|| panic!("[{}] no wait_for_own_gil: {:#}", py.label, d["threads"]));
    assert_eq!(
        gil_waiters(Some(own)),
        [sub_waiter["id"].clone()],
        "[{}] {own:#}",
        py.label
    );
    // The main GIL: its own node, waited for by the main interpreter's threads only.
    let main = main_gil(&d).unwrap_or_else(|| panic!("[{}] {:#}", py.label, d["locks"]));
    assert_main_gil_waiters(py, &d, main);
    // No GIL is said to be held by the main thread, and the subinterpreters' frames are not
    // put on it: which threads run those thread states is unknown.
    for gil in [own, main] {
        assert!(
            gil["holders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["thread"] != id_of("MainThread")),
            "[{}] {gil:#}",
            py.label
        );
    }
    let main_thread = doc::thread_by_name(&d, "MainThread");
    assert!(
        !functions(main_thread).contains(&"match"),
        "[{}] {main_thread:#}",
        py.label
    );
    assert!(
        doc::findings(&d, "gil_hold").is_empty(),
        "[{}] {:#}",
        py.label,
        d["findings"]
    );
}
