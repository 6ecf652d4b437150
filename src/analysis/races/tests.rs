//! The race tracker's unit tests: writes and reads from fake threads, judged by their lock sets.

use super::*;
use crate::analysis::fixtures::{snapshot, thread};

fn write(name: &str, site: &str, adds_or_takes: bool, guard: Option<&str>) -> WriteAccess {
    WriteAccess {
        location: Location::Item {
            container: "0x1000".into(),
            class: "0x2000".into(),
        },
        name: name.into(),
        through_self: false,
        site: site.into(),
        evidence: WriteEvidence::ReachableWrite,
        guards: guard
            .map(|g| GuardLock {
                lock: g.into(),
                name: Some(g.into()),
            })
            .into_iter()
            .collect(),
        adds_or_takes,
        access: AccessKind::Write,
    }
}

/// Two threads writing one list, five samples each, one thread per snapshot.
fn findings_for(first: WriteAccess, second: WriteAccess) -> Vec<Finding> {
    let mut tracker = RaceTracker::default();
    for round in 0..10 {
        let mut a = thread(1, 1, "a", None);
        let mut b = thread(1, 2, "b", None);
        if round % 2 == 0 {
            a.writes.push(first.clone());
        } else {
            b.writes.push(second.clone());
        }
        tracker.observe(&snapshot(vec![a, b], Vec::new()));
    }
    tracker.findings(1)
}

/// `write`'s unguarded write of the same name to another object (container 0x3000).
fn write_elsewhere(name: &str, site: &str) -> WriteAccess {
    WriteAccess {
        location: Location::Item {
            container: "0x3000".into(),
            class: "0x2000".into(),
        },
        ..write(name, site, false, None)
    }
}

#[test]
fn appends_alone_from_two_threads_are_not_a_race() {
    let found = findings_for(
        write("results[...]", "a f.py:1", true, None),
        write("results[...]", "b f.py:2", true, None),
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn appends_race_with_an_order_dependent_write_under_a_lock() {
    let found = findings_for(
        write("results[...]", "a f.py:1", true, None),
        write("results[...]", "b f.py:2", false, Some("1:lock:0x10")),
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0]
        .summary
        .starts_with("results[...] is written by 2 threads"));
}

#[test]
fn a_location_that_changed_hands_is_not_a_race() {
    // Thread a writes its object at 0x1000, then moves on to another one; only then does
    // thread b write an object at 0x1000 (a freed address reused, or a hand-off).
    let mut tracker = RaceTracker::default();
    let other = write_elsewhere("mine.x", "a f.py:1");
    for round in 0..10 {
        let mut a = thread(1, 1, "a", None);
        let mut b = thread(1, 2, "b", None);
        if round < 5 {
            a.writes.push(write("mine.x", "a f.py:1", false, None));
        } else {
            a.writes.push(other.clone());
            b.writes.push(write("mine.x", "b f.py:2", false, None));
        }
        tracker.observe(&snapshot(vec![a, b], Vec::new()));
    }
    let found = tracker.findings(1);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn two_thread_states_of_one_os_thread_do_not_race() {
    let mut tracker = RaceTracker::default();
    for _ in 0..5 {
        let mut a = thread(1, 1, "MainThread", None);
        a.writes
            .push(write("registry[...]", "a f.py:1", false, None));
        let mut again = a.clone();
        again.writes[0].site = "b f.py:2".into();
        tracker.observe(&snapshot(vec![a, again], Vec::new()));
    }
    let found = tracker.findings(1);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn every_thread_state_of_one_os_thread_counts_for_its_reach() {
    // Thread a keeps writing mine.x from one thread state while its second one writes
    // elsewhere: b's one write to mine.x, read before a's in the last snapshot, meets a's
    // (a can still write it), no change of hands.
    let mut tracker = RaceTracker::default();
    let other = write_elsewhere("mine.x", "a f.py:3");
    for round in 0..10 {
        let mut a = thread(1, 1, "a", None);
        a.writes.push(write("mine.x", "a f.py:1", false, None));
        let mut again = thread(1, 1, "a", None);
        again.writes.push(other.clone());
        let mut b = thread(1, 2, "b", None);
        if round == 9 {
            b.writes.push(write("mine.x", "b f.py:2", false, None));
        }
        tracker.observe(&snapshot(vec![b, a, again], Vec::new()));
    }
    let found = tracker.findings(1);
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn stores_from_two_threads_with_no_lock_are_a_race() {
    let found = findings_for(
        write("registry[...]", "a f.py:1", false, None),
        write("registry[...]", "b f.py:2", false, None),
    );
    assert_eq!(found.len(), 1, "{found:#?}");
}

fn read(name: &str, site: &str, guard: Option<&str>) -> WriteAccess {
    WriteAccess {
        access: AccessKind::ReadThenMutate,
        ..write(name, site, false, guard)
    }
}

#[test]
fn a_read_to_mutate_without_the_lock_races_a_replacement_under_it() {
    let found = findings_for(
        read("Collector.results", "add f.py:1", None),
        write(
            "Collector.results",
            "drain f.py:2",
            false,
            Some("1:lock:0x10"),
        ),
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = &found[0];
    assert!(
        f.summary
            .starts_with("Collector.results is replaced and read to mutate what it holds"),
        "{}",
        f.summary
    );
    let vias: Vec<EdgeVia> = f.edges.iter().map(|e| e.via).collect();
    assert_eq!(vias, [EdgeVia::Reads, EdgeVia::Writes], "{f:#?}");
    assert_eq!(f.locksets[0].read_sites, ["add f.py:1"]);
    assert!(f.locksets[0].sites.is_empty());
}

#[test]
fn reads_and_replacements_under_one_lock_or_reads_alone_are_not_a_race() {
    let locked = findings_for(
        read("Collector.results", "add f.py:1", Some("1:lock:0x10")),
        write(
            "Collector.results",
            "drain f.py:2",
            false,
            Some("1:lock:0x10"),
        ),
    );
    assert!(locked.is_empty(), "{locked:#?}");
    let reads_only = findings_for(
        read("results", "add f.py:1", None),
        read("results", "add f.py:1", None),
    );
    assert!(reads_only.is_empty(), "{reads_only:#?}");
}
