//! End-to-end: a healthy, busy process (threads taking locks for microseconds in a loop,
//! Conditions and Events handing work over) must never produce a finding, however often it
//! is dumped: single snapshots (`--window 0`, no persistence filter) catch torn reads and
//! momentary states mistaken for deadlocks or stalls.

mod support;

use std::time::Duration;

use support::{doc, dump_json, fixture, for_each_interpreter, Target};

const SINGLE_SNAPSHOTS: usize = 20;
const WINDOWED: usize = 3;

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
