//! End-to-end: a thread waits for a future or an event that only a callback queued on an
//! event loop will complete (`run_coroutine_threadsafe` before its task exists,
//! `call_soon_threadsafe(fut.set_result, ..)`, `call_soon_threadsafe(event.set)`), while the
//! loop's own thread blocks on that thread (joins it, or takes a lock it holds): a deadlock
//! naming both threads, through a `completed_by` edge to the loop's thread with evidence
//! `ready_queue`. The same once `run_coroutine_threadsafe`'s callback ran and the task it
//! created waits with its first step (`Task.__step`) queued behind the callback that blocks,
//! and once that task is done and `_chain_future`'s copy of its result (`_call_set_state`) is
//! queued behind it; and a task awaiting an asyncio future that such a queued callback sets
//! (`set_result`, or `_chain_future`'s `_set_state` from another loop). A loop that keeps bridging to a thread that finishes gives no finding.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::healthy::assert_no_findings;
use support::representative::for_each_representative;
use support::{doc, dump_json_until, dump_text, fixture, line_of, Target};

const WINDOW: &str = "300ms";

fn edges<'a>(f: &'a Value, via: &str) -> Vec<&'a Value> {
    f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == via)
        .collect()
}

/// The document once the target's dump exits 3, and its one deadlock, among `threads`.
fn the_deadlock(target: &Target, mode: &str, threads: &[&str]) -> (Value, Value) {
    let (code, d) = dump_json_until(target.pid, WINDOW, Duration::from_secs(10), |c, _| c == 3);
    assert_eq!(code, 3, "[{mode}] exit status: {:#}", d["findings"]);
    let found = doc::findings(&d, "deadlock");
    assert_eq!(found.len(), 1, "[{mode}] {:#}", d["findings"]);
    let f = found[0].clone();
    assert_eq!(doc::finding_thread_names(&d, &f), threads, "[{mode}]");
    (d, f)
}

#[test]
fn waits_on_a_blocked_loops_queued_callback_are_deadlocks() {
    let script = fixture("loop_queued.py");
    let lock_line = line_of(&script, "time.sleep(0.3)", "with registry_lock:");
    for_each_representative(|interp| {
        for (mode, summary_part, blocks) in [
            (
                "join",
                "the result of run_coroutine_threadsafe",
                "\"MainThread\" joins \"bridge\"",
            ),
            (
                "lock",
                "the result of run_coroutine_threadsafe",
                "\"MainThread\" waits for registry_lock, held by \"bridge\"",
            ),
            ("event", "ready", "\"MainThread\" joins \"bridge\""),
            (
                "set_result",
                "a future set by Future.set_result",
                "\"MainThread\" joins \"bridge\"",
            ),
            // The task exists; its first step is queued behind the callback that blocks.
            (
                "task",
                "the result of task \"Task-2\"",
                "\"MainThread\" waits for registry_lock, held by \"bridge\"",
            ),
            // The task is done; `_chain_future`'s copy of its result is queued behind the
            // callback that blocks.
            (
                "chained",
                "a future set by _chain_future's _call_set_state",
                "\"MainThread\" waits for registry_lock, held by \"bridge\"",
            ),
        ] {
            let target = Target::start(interp, &script, &[mode]);
            let (d, f) = the_deadlock(&target, mode, &["MainThread", "bridge"]);
            let f = &f;
            let summary = f["summary"].as_str().unwrap();
            let expected = format!("\"bridge\" waits for {summary_part}");
            assert!(
                summary.contains(&expected)
                    && summary.contains("queued on the event loop of \"MainThread\"")
                    && summary.contains(blocks),
                "[{mode}] {summary}"
            );
            let main = doc::thread_by_name(&d, "MainThread")["id"].clone();
            let completed = edges(f, "completed_by");
            assert_eq!(completed.len(), 1, "[{mode}] {:#}", f["edges"]);
            assert_eq!(completed[0]["to"], main, "[{mode}]");
            assert_eq!(completed[0]["evidence"], "ready_queue", "[{mode}]");
            let waited = doc::lock(&d, completed[0]["from"].as_str().unwrap());
            let kind = if mode == "event" { "event" } else { "future" };
            assert_eq!(waited["kind"], kind, "[{mode}] {waited:#}");
            assert_eq!(waited["holders"][0]["thread"], main, "[{mode}] {waited:#}");
            assert_eq!(waited["holders"][0]["evidence"], "ready_queue", "[{mode}]");
            if mode == "task" {
                // The task's queued step.
                assert!(summary.contains(" via Task.__step, queued"), "{summary}");
            }
            if mode == "task" || mode == "chained" {
                assert!(
                    doc::findings(&d, "stall").is_empty(),
                    "[{mode}] {:#}",
                    d["findings"]
                );
            }
            if ["lock", "task", "chained"].contains(&mode) {
                let held = edges(f, "held_by");
                assert!(
                    held.iter().any(|e| e["site"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("bridge ") && s.contains("loop_queued.py"))),
                    "[{mode}] {:#}",
                    f["edges"]
                );
            }
            if mode == "lock" {
                let wait = &doc::thread_by_name(&d, "MainThread")["waits_for"];
                assert_eq!(
                    wait["site"],
                    format!("main loop_queued.py:{lock_line}"),
                    "[{mode}] {wait:#}"
                );
            }
            if mode == "join" {
                let (_, text) = dump_text(target.pid, WINDOW);
                assert!(
                    text.contains("set by a callback queued on the event loop of \"MainThread\"")
                        && text.contains("[ready_queue]"),
                    "[{mode}] {text}"
                );
            }
        }
    });
}

/// A task of the blocked loop awaits an asyncio future that only a handle queued on that
/// loop completes: `call_soon_threadsafe(waited.set_result, 5)` ("asyncio_set_result"), or
/// `_chain_future`'s `_set_state` queued from another loop's thread ("other_loop", where
/// loop_a's thread holds registry_lock and waits on the loop_b task, and loop_b's thread takes
/// registry_lock). The thread waiting on that task's result closes a deadlock through the
/// task, its awaited future (completed by the loop's thread, evidence `ready_queue`, named by
/// the callback) and the blocked loop's thread. Both targets run at once.
#[test]
fn a_task_awaiting_a_future_set_by_a_queued_callback_is_in_the_deadlock() {
    let script = fixture("loop_queued.py");
    for_each_representative(|interp| {
        let shapes = [
            (
                "asyncio_set_result",
                ["MainThread", "bridge"],
                // The program's own name for it (the module global).
                "waited",
                "a future set by Future.set_result",
                "\"MainThread\" joins \"bridge\"",
            ),
            (
                "other_loop",
                ["MainThread", "loop_a"],
                "a future set by _chain_future's _set_state",
                "a future set by _chain_future's _set_state",
                "\"MainThread\" waits for registry_lock, held by \"loop_a\"",
            ),
        ];
        let targets: Vec<Target> = shapes
            .iter()
            .map(|(mode, ..)| Target::start(interp, &script, &[mode]))
            .collect();
        for ((mode, threads, awaited, callback, blocks), target) in shapes.iter().zip(&targets) {
            let (d, f) = the_deadlock(target, mode, threads);
            let f = &f;
            assert_eq!(doc::finding_task_names(&d, f).len(), 1, "[{mode}] {f:#}");
            assert!(
                doc::findings(&d, "stall").is_empty(),
                "[{mode}] {:#}",
                d["findings"]
            );
            let summary = f["summary"].as_str().unwrap();
            assert!(
                summary.contains(&format!(
                    "waits for {awaited}, queued on the event loop of \"MainThread\""
                )) && summary.contains(blocks),
                "[{mode}] {summary}"
            );
            let main = doc::thread_by_name(&d, "MainThread")["id"].clone();
            let on_loop: Vec<_> = edges(f, "completed_by")
                .into_iter()
                .filter(|e| e["evidence"] == "ready_queue")
                .collect();
            assert_eq!(on_loop.len(), 1, "[{mode}] {:#}", f["edges"]);
            assert_eq!(on_loop[0]["to"], main, "[{mode}]");
            // The awaited future's waiter is the task, not a thread.
            let awaited_future = doc::lock(&d, on_loop[0]["from"].as_str().unwrap());
            assert_eq!(awaited_future["kind"], "future", "[{mode}]");
            assert!(
                awaited_future["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|n| n["name"] == *callback),
                "[{mode}] {awaited_future:#}"
            );
            let waiter = awaited_future["waiters"][0]["thread"].as_str().unwrap();
            assert!(waiter.contains(":task:"), "[{mode}] {awaited_future:#}");
            // It is the asyncio future itself, and the text report names it so.
            assert_eq!(
                awaited_future["python_type"], "asyncio.Future",
                "[{mode}] {awaited_future:#}"
            );
            if *mode == "asyncio_set_result" {
                let address = awaited_future["address"].as_str().unwrap();
                let (_, text) = dump_text(target.pid, WINDOW);
                assert!(
                    text.contains(&format!("<asyncio.Future {address}>"))
                        && !text.contains(&format!("<concurrent.futures.Future {address}>")),
                    "[{mode}] {text}"
                );
            }
        }
    });
}

#[test]
fn a_loop_bridging_to_a_thread_that_finishes_is_healthy() {
    let script = fixture("loop_queued.py");
    for_each_representative(|interp| {
        let target = Target::start_busy(interp, &script, &["healthy"]);
        std::thread::sleep(Duration::from_millis(300));
        let d = assert_no_findings(target.pid, WINDOW, 3, &interp.label);
        assert_eq!(doc::thread_by_name(&d, "bridge")["name"], "bridge");
    });
}

/// uvloop keeps its ready queue in its C struct, which gridlock does not read: the same
/// `run_coroutine_threadsafe` shape on uvloop gets no `completed_by` edge, and the document
/// says so in a note ("uvloop: queued callbacks not read") instead of claiming the cycle.
#[test]
fn a_uvloop_loops_queued_callbacks_are_said_unread() {
    let script = fixture("loop_queued.py");
    let pair = support::representative::pyenv_pair_importing("uvloop", "uvloop");
    let Some(interp) = pair.first() else {
        return;
    };
    let target = Target::start(interp, &script, &["join", "uvloop"]);
    let (_, d) = dump_json_until(target.pid, WINDOW, Duration::from_secs(10), |_, d| {
        !d["findings"].as_array().unwrap().is_empty()
    });
    let notes = &d["processes"][0]["notes"];
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(
                "uvloop: queued callbacks not read (uvloop.Loop runs on thread \"MainThread\""
            )),
        "{}: {notes:#}",
        interp.label
    );
    assert!(
        doc::findings(&d, "deadlock").is_empty(),
        "{:#}",
        d["findings"]
    );
    assert!(
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| edges(f, "completed_by").is_empty()),
        "{:#}",
        d["findings"]
    );
}
