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
