//! What a detector is (one per kind of finding: it looks at a snapshot and its wait-for
//! graph) and the blank finding each one fills in (a deadlock's keyed by its parties). It
//! names no detector.

use crate::analysis::graph::WaitGraph;
use crate::model::*;
use crate::snapshot::Snapshot;

pub trait Detector {
    fn kind(&self) -> FindingKind;
    fn detect(&self, snap: &Snapshot, graph: &WaitGraph, so_far: &[Finding]) -> Vec<Finding>;
}

pub(in crate::analysis) fn finding(kind: FindingKind, id: String, summary: String) -> Finding {
    Finding {
        id,
        kind,
        severity: kind.severity(),
        first_seen: String::new(),
        last_seen: String::new(),
        samples: 1,
        summary,
        threads: Vec::new(),
        tasks: Vec::new(),
        processes: Vec::new(),
        locks: Vec::new(),
        edges: Vec::new(),
        advice: None,
        duration: None,
        ongoing: None,
        loop_id: None,
        culprit: None,
        stack: Vec::new(),
        histogram: None,
        knot: false,
        location: None,
        locksets: Vec::new(),
        notes: Vec::new(),
    }
}

/// A deadlock finding keyed by its parties.
pub(super) fn deadlock(key: &[String], summary: String) -> Finding {
    finding(
        FindingKind::Deadlock,
        format!("deadlock:{}", key.join(",")),
        summary,
    )
}
