//! From snapshots to findings: the wait-for graph, one detector per finding kind, and the
//! window logic that keeps only what persisted.

pub mod detectors;
pub mod graph;

use std::collections::HashMap;
use std::time::SystemTime;

use crate::model::*;
use crate::snapshot::Snapshot;

/// All findings of one snapshot.
pub fn findings(snap: &Snapshot) -> Vec<Finding> {
    let graph = graph::WaitGraph::build(snap);
    let mut out: Vec<Finding> = Vec::new();
    for d in detectors::all() {
        let found = d.detect(snap, &graph, &out);
        out.extend(found);
    }
    out
}

/// Build the contract's document from a window of snapshots (oldest first): the newest
/// snapshot's threads and locks, and the findings present in every snapshot.
pub fn document(snaps: &[Snapshot], process: Process, command: Command) -> Document {
    let last = snaps.last().expect("at least one snapshot");
    let per_snapshot: Vec<Vec<Finding>> = snaps.iter().map(findings).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for fs in &per_snapshot {
        for f in fs {
            *counts.entry(f.id.as_str()).or_default() += 1;
        }
    }
    let started = snaps.first().unwrap().taken;
    let ended = last.taken;
    let mut findings: Vec<Finding> = per_snapshot
        .last()
        .unwrap()
        .iter()
        .filter(|f| counts.get(f.id.as_str()) == Some(&snaps.len()))
        .cloned()
        .map(|mut f| {
            f.first_seen = timestamp(started);
            f.last_seen = timestamp(ended);
            f.samples = snaps.len();
            f
        })
        .collect();
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.id.cmp(&b.id))
    });

    let mut threads = last.threads.clone();
    for t in &mut threads {
        let mut since = last.taken;
        for s in snaps.iter().rev().skip(1) {
            match s.thread(&t.id) {
                Some(old) if old.state == t.state => since = s.taken,
                _ => break,
            }
        }
        t.state_since = timestamp(since);
    }
    let mut process = process;
    process.exited = false;
    Document {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "gridlock".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command,
        window: Window {
            started: timestamp(started),
            ended: timestamp(ended),
            snapshots: snaps.len(),
            seconds: ended
                .duration_since(started)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        },
        processes: vec![process],
        threads,
        locks: last.locks.clone(),
        tasks: Vec::new(),
        findings,
    }
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(timestamp(t), "2026-11-18T10:26:40.123Z");
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
