//! End-to-end: a healthy, busy process (threads taking locks for microseconds in a loop,
//! Conditions and Events handing work over) must never produce a finding, however often it
//! is dumped: single snapshots (`--window 0`, no persistence filter) catch torn reads and
//! momentary states mistaken for deadlocks or stalls.

mod support;

use std::time::Duration;

use support::representative::for_each_of;
use support::{doc, dump_json, fixture, for_each_interpreter, interpreters, Target};

const SINGLE_SNAPSHOTS: usize = 20;
const WINDOWED: usize = 3;
/// Single snapshots of a thread calling Python from C: before stacks were read again, about
/// one in ten caught the stack halfway through a call on 3.12, 3.14 and 3.15 (one in thirty
/// on 3.11; none on 3.13).
const CALLS_FROM_C_SNAPSHOTS: usize = 40;

#[test]
fn busy_healthy_process_has_no_findings() {
    for_each_interpreter(|py| {
        let target = Target::start_busy(py, &fixture("healthy_busy.py"), &[]);
        // The main thread prints READY just before it joins the workers: until it is in that
        // join, a dump rightly sees it running or waiting for the GIL.
        support::dump_json_until(target.pid, "0", Duration::from_secs(10), |_, d| {
            doc::thread_by_name(d, "MainThread")["state"] == "join_wait"
        });
        let runs = std::iter::repeat("0")
            .take(SINGLE_SNAPSHOTS)
            .chain(std::iter::repeat("300ms").take(WINDOWED));
        let mut states = std::collections::BTreeSet::new();
        for (i, window) in runs.enumerate() {
            let (code, d) = dump_json(target.pid, window);
            assert!(
                d["findings"].as_array().unwrap().is_empty() && code == 0,
                "dump {i} (--window {window}) exited {code} with findings: {:#}\nthreads: {:#}\nlocks: {:#}",
                d["findings"],
                d["threads"],
                d["locks"]
            );
            // Eleven workers and the main thread, all seen every time.
            assert_eq!(
                d["threads"].as_array().unwrap().len(),
                12,
                "{:#}",
                d["threads"]
            );
            assert_eq!(doc::thread_by_name(&d, "MainThread")["state"], "join_wait");
            for t in d["threads"].as_array().unwrap() {
                states.insert(t["state"].as_str().unwrap().to_string());
            }
        }
        // The workload really was busy: something ran or waited for the GIL in some dump.
        assert!(
            states.contains("running") || states.contains("gil_wait"),
            "states seen: {states:?}"
        );
        assert!(target.is_alive());
    });
}

/// A thread that calls Python from C without pause is read whole in every snapshot: a stack
/// read halfway through a call is read again, never kept empty or cut short (a cut stack lost
/// a polling thread's wait, and with it a Celery starvation deadlock, in one snapshot of five).
#[test]
fn a_thread_calling_python_from_c_is_read_whole_in_every_snapshot() {
    // Where a call from C enters a new evaluation loop with its own C frame (3.11+); one
    // interpreter per minor version.
    let mut minors = std::collections::BTreeSet::new();
    let picked = interpreters()
        .into_iter()
        .filter(|py| py.minor >= 11 && minors.insert(py.minor))
        .collect();
    for_each_of(picked, |py| {
        let target = Target::start(py, &fixture("calls_from_c.py"), &[]);
        let mut cut = Vec::new();
        for i in 0..CALLS_FROM_C_SNAPSHOTS {
            let (code, d) = dump_json(target.pid, "0");
            assert_eq!(code, 0, "[{}] dump {i}: {d:#}", py.label);
            let spinner = doc::thread_by_name(&d, "spinner");
            let functions: Vec<&str> = spinner["frames"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|f| f["function"].as_str())
                .collect();
            // Its own function is always on its stack, below whatever it calls.
            if !functions.iter().any(|f| *f == "spin") {
                cut.push(format!("dump {i}: {functions:?} ({})", spinner["state"]));
            }
        }
        assert!(
            cut.is_empty(),
            "[{}] the spinner's stack was cut in {} of {CALLS_FROM_C_SNAPSHOTS} snapshots:\n{}",
            py.label,
            cut.len(),
            cut.join("\n")
        );
        assert!(target.is_alive());
    });
}
