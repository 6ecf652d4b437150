//! Timed waits and idle daemons (issue 31), on real processes: a wait loop that times out and
//! waits again at the same line, with nothing left to end it, is blocked (a stall); a process
//! whose threads all wait but whose SIGTERM handler can wake its main thread is idle (no
//! finding, exit 0, `processes[].idle`); without a handler the same process stalls.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::representative::for_each_representative as for_each;
use support::{doc, dump_json, dump_json_until, dump_text, fixture, Target};

fn wait_of<'a>(d: &'a Value, thread: &str) -> &'a Value {
    &doc::thread_by_name(d, thread)["waits_for"]
}

fn seconds(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("not a number of seconds: {v}"))
}

#[test]
fn an_idle_daemon_with_a_sigterm_handler_is_idle_and_without_one_stalls() {
    let script = fixture("idle_daemon.py");
    for_each(|interp| {
        let t = Target::start(interp, &script, &["handler"]);
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 0, "[{}] {d:#}", interp.label);
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        let idle = &d["processes"][0]["idle"];
        assert_eq!(idle["signals"], serde_json::json!(["SIGTERM"]), "{d:#}");
        assert_eq!(idle["summary"], "waiting for SIGTERM's handler");
        assert!(
            idle["site"]
                .as_str()
                .is_some_and(|s| s.starts_with("<module> idle_daemon.py:")),
            "{idle}"
        );
        // Untimed waits still say how long they have lasted.
        let w = wait_of(&d, "worker-0");
        assert!(w["timeout_s"].is_null(), "{w}");
        assert!(seconds(&w["waited_s"]) > 0.5, "{w}");
        let (code, text) = dump_text(t.pid, "0");
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("IDLE  process") && text.contains("waiting for SIGTERM's handler"),
            "{text}"
        );
        drop(t);

        let t = Target::start(interp, &script, &["plain"]);
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 3, "{d:#}");
        assert_eq!(doc::findings(&d, "stall").len(), 1, "{d:#}");
        assert!(d["processes"][0]["idle"].is_null(), "{d:#}");
    });
}

#[test]
fn wait_loops_whose_notifier_died_are_one_blocked_wait_each() {
    let script = fixture("timed_loops.py");
    for_each(|interp| {
        let t = Target::start(interp, &script, &[]);
        // Each loop wakes every 0.2 s; a window needs all four seen in their wait.
        let (code, d) = dump_json_until(t.pid, "1s", Duration::from_secs(10), |c, _| c == 3);
        assert_eq!(code, 3, "[{}] {d:#}", interp.label);
        let stalls = doc::findings(&d, "stall");
        assert_eq!(stalls.len(), 1, "{d:#}");
        assert_eq!(
            doc::finding_thread_names(&d, stalls[0]),
            ["MainThread", "cond-loop", "event-loop", "queue-loop"]
        );
        for (name, via_kind) in [
            ("cond-loop", "notify"),
            ("event-loop", "notify"),
            ("queue-loop", "notify"),
            ("MainThread", "join"),
        ] {
            let th = doc::thread_by_name(&d, name);
            let w = &th["waits_for"];
            assert_eq!(th["blocked"], true, "{th:#}");
            assert_eq!(w["kind"], via_kind, "{w:#}");
            assert_eq!(seconds(&w["timeout_s"]), 0.2, "{name}: {w:#}");
            // Counted from the first entry seen: more than one timeout ago.
            assert!(seconds(&w["waited_s"]) > 0.2, "{name}: {w:#}");
        }
    });
}

#[test]
fn a_service_polling_an_empty_queue_with_a_sigterm_handler_is_idle() {
    let script = fixture("idle_daemon.py");
    for_each(|interp| {
        let t = Target::start(interp, &script, &["poller"]);
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 0, "[{}] {d:#}", interp.label);
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        assert_eq!(
            d["processes"][0]["idle"]["summary"],
            "waiting for SIGTERM's handler"
        );
        let w = wait_of(&d, "worker-0");
        assert_eq!(seconds(&w["timeout_s"]), 0.5, "{w:#}");
        let w = wait_of(&d, "MainThread");
        assert_eq!(seconds(&w["timeout_s"]), 0.5, "{w:#}");
    });
}
