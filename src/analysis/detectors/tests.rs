//! The detectors on hand-built snapshots: cycles through futures, and pool starvation only
//! when every worker is stuck.

use crate::analysis::fixtures::{lock, snapshot, thread};
use crate::model::*;
use crate::snapshot::Snapshot;

fn findings(snap: &Snapshot) -> Vec<Finding> {
    crate::analysis::findings(snap)
}

#[test]
fn a_cycle_through_a_running_future_names_both_waits() {
    let snap = snapshot(
        vec![
            thread(1, 1, "MainThread", Some((WaitKind::Future, "1:l:0xf"))),
            thread(1, 2, "reloader_0", Some((WaitKind::Lock, "1:l:0xa"))),
        ],
        vec![
            lock(
                "1:l:0xf",
                LockKind::Future,
                "the result of reload_rate",
                &["1:t:2"],
                Some("reload_rate a.py:3"),
            ),
            lock("1:l:0xa", LockKind::Lock, "config_lock", &["1:t:1"], None),
        ],
    );
    let f = findings(&snap);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind, FindingKind::Deadlock);
    assert!(
        f[0].summary.contains(
            "\"MainThread\" waits for the result of reload_rate running on \"reloader_0\""
        ),
        "{}",
        f[0].summary
    );
    assert!(
        f[0].summary
            .contains("\"reloader_0\" waits for config_lock, held by \"MainThread\""),
        "{}",
        f[0].summary
    );
    assert!(f[0]
        .edges
        .iter()
        .any(|e| e.via == EdgeVia::CompletedBy && e.to == "1:t:2"));
}

#[test]
fn queued_futures_deadlock_only_when_every_worker_is_stuck() {
    let pool = ["1:t:1", "1:t:2"];
    let starved = snapshot(
        vec![
            thread(1, 1, "pool_0", Some((WaitKind::Future, "1:l:0xf1"))),
            thread(1, 2, "pool_1", Some((WaitKind::Future, "1:l:0xf2"))),
        ],
        vec![
            lock(
                "1:l:0xf1",
                LockKind::Future,
                "the result of inner (queued)",
                &pool,
                None,
            ),
            lock(
                "1:l:0xf2",
                LockKind::Future,
                "the result of inner (queued)",
                &pool,
                None,
            ),
        ],
    );
    let f = findings(&starved);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        f[0].knot && f[0].summary.starts_with("pool starvation"),
        "{}",
        f[0].summary
    );

    // One worker free (not blocked): the queued work will run.
    let mut busy = starved.clone();
    busy.threads[1].blocked = false;
    busy.threads[1].waits_for = None;
    assert!(findings(&busy).is_empty());
}
