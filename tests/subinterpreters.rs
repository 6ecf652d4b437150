//! End-to-end: processes running subinterpreters (`concurrent.interpreters`, 3.14+).
//! `_PyRuntime` lists the newest interpreter first: the main one is found along the list, and
//! the threads of every interpreter are read (a subinterpreter's thread state on an OS thread
//! of the main list holds that thread's innermost frames).
mod support;

use support::{doc, dump_json, fixture, interpreters, Interpreter, Target};

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

/// One interpreter of each version from 3.13 (where the debug offsets name a subinterpreter's
/// own GIL); none, with a printed reason.
fn with_own_gil() -> Vec<Interpreter> {
    let mut found: Vec<Interpreter> = Vec::new();
    for py in interpreters().into_iter().filter(|py| py.minor >= 13) {
        if !found.iter().any(|f| f.minor == py.minor) {
            found.push(py);
        }
    }
    if found.is_empty() {
        eprintln!("skipped: no CPython 3.13+ found (own-GIL subinterpreters are read from 3.13)");
    }
    found
}

#[test]
fn a_subinterpreter_s_own_gil_is_its_own_lock_held_by_its_thread() {
    for py in with_own_gil() {
        // "sub-holder" keeps its subinterpreter's own GIL in a PyDLL sleep, "sub-waiter"
        // waits to enter that subinterpreter, two main-interpreter threads spin.
        eprintln!("[{}] own GIL", py.label);
        // Busy threads never settle: started without waiting for them to.
        let target = Target::start_busy(&py, &fixture("subinterpreter_own_gil.py"), &[]);
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 3, "[{}] {:#}", py.label, d["findings"]);
        let id_of = |name: &str| doc::thread_by_name(&d, name)["id"].clone();
        let gil = gil_named(&d, "the GIL of interpreter ")
            .unwrap_or_else(|| panic!("[{}] no own GIL: {:#}", py.label, d["locks"]));
        assert_eq!(
            gil["holders"].as_array().unwrap().len(),
            1,
            "[{}] {gil:#}",
            py.label
        );
        assert_eq!(
            gil["holders"][0]["thread"],
            id_of("sub-holder"),
            "[{}] {gil:#}",
            py.label
        );
        assert_eq!(gil["holders"][0]["evidence"], "gil_state", "[{}]", py.label);
        let waiters: Vec<_> = gil["waiters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["thread"].clone())
            .collect();
        assert_eq!(waiters, [id_of("sub-waiter")], "[{}] {gil:#}", py.label);
        assert_eq!(doc::thread_by_name(&d, "sub-holder")["owns_gil"], true);
        // The main interpreter's busy threads wait, at most, for the main GIL.
        for busy in ["main-busy-0", "main-busy-1"] {
            let t = doc::thread_by_name(&d, busy);
            assert_ne!(t["waits_for"]["target"], gil["id"], "[{}] {t:#}", py.label);
        }
        if let Some(main_gil) = gil_named(&d, "the GIL").filter(|l| l["name"] == "the GIL") {
            assert_ne!(main_gil["id"], gil["id"], "[{}]", py.label);
        }
        // The hold blocks only the subinterpreter: the finding names its own waiter.
        let holds = doc::findings(&d, "gil_hold");
        assert_eq!(holds.len(), 1, "[{}] {:#}", py.label, d["findings"]);
        let names = doc::finding_thread_names(&d, holds[0]);
        assert!(
            names.contains(&"sub-holder".to_string())
                && !names.iter().any(|n| n.starts_with("main-busy")),
            "[{}] {names:?}",
            py.label
        );
    }
}
