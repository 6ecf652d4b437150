//! From snapshots to findings: the wait-for graph, one detector per finding kind, and the
//! window logic that keeps only what persisted.

pub mod below_python;
mod celery;
mod celery_stall;
mod clock;
pub mod detectors;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod gil_use;
pub mod graph;
pub mod idle;
pub mod labels;
pub mod lockorder;
pub mod loops;
pub mod native;
pub mod order_advice;
pub mod permits;
pub mod program_names;
pub mod races;
pub mod state_since;
pub mod stream;
pub mod timed;
pub mod trio_runs;

use std::collections::HashMap;
use std::time::SystemTime;

use crate::model::*;
use crate::snapshot::Snapshot;
pub use clock::timestamp;

/// All findings of one snapshot.
pub fn findings(snap: &Snapshot) -> Vec<Finding> {
    let graph = graph::WaitGraph::build(snap);
    let mut out: Vec<Finding> = Vec::new();
    for d in detectors::all().into_iter().chain(native::all()) {
        let found = d.detect(snap, &graph, &out);
        out.extend(found);
    }
    timed::annotate(snap, &mut out);
    celery::describe(snap, &mut out);
    celery_stall::detect(snap, &mut out);
    out
}

/// Build the contract's document from a window of snapshots (oldest first): the newest
/// snapshot's threads and locks, and the findings present in every snapshot.
pub fn document(snaps: &[Snapshot], process: Process, command: Command) -> Document {
    document_with(snaps, process, command, loops::LoopOptions::default())
}

/// `document`, with the given `loop_block` options.
pub fn document_with(
    snaps: &[Snapshot],
    process: Process,
    command: Command,
    loop_options: loops::LoopOptions,
) -> Document {
    // With the probe loaded, lock order is known for the whole run, not just the window.
    let mut acc = if snaps.iter().any(|s| s.probe_loaded) {
        Accumulator {
            lock_order: Some(lockorder::LockOrder::default()),
            ..Accumulator::default()
        }
    } else {
        Accumulator::default()
    };
    acc.set_loop_options(loop_options);
    let mut snaps = snaps.to_vec();
    timed::settle_window(&mut snaps);
    for s in snaps {
        acc.push(s);
    }
    acc.document(process, command)
}

/// A window of snapshots folded as they arrive, so long recordings keep flat memory:
/// counts of each finding, when each thread entered its current state, and the newest snapshot.
#[derive(Default)]
pub struct Accumulator {
    started: Option<SystemTime>,
    snapshots: usize,
    seen: HashMap<String, usize>,
    last: Option<Snapshot>,
    last_findings: Vec<Finding>,
    state_since: state_since::StateSince,
    /// Lock-order edges, tracked only when asked (`record`, `run`).
    lock_order: Option<lockorder::LockOrder>,
    /// Event-loop steps over time (`loop_block`).
    loops: loops::LoopTracker,
    loop_options: loops::LoopOptions,
    races: Option<races::RaceTracker>,
    /// Every finding ever seen, with when and how often (for `top`, which shows findings
    /// as they appear rather than only those that persisted over the whole window).
    ever: HashMap<String, Seen>,
    /// Per thread: in how many snapshots it was seen, and in how many of them its kernel
    /// state could not be matched.
    unmatched: HashMap<String, (usize, usize)>,
    /// For streams (`over_time`): timed waits settled over the stream's recent past.
    stream: Option<stream::StreamWindow>,
    /// Snapshots taken before the stream spanned a settling window, and the findings seen in
    /// the others: what persisted is judged over the settled snapshots once there are any.
    warmup: usize,
    seen_settled: HashMap<String, usize>,
    /// GIL use over the stream (`over_time`): shares, longest holds and waits.
    gil: Option<gil_use::GilTracker>,
}

struct Seen {
    first: SystemTime,
    last: SystemTime,
    samples: usize,
    finding: Finding,
}

impl Accumulator {
    /// An accumulator that also tracks what only time reveals: the order in which threads
    /// take locks, and the locks held at each sampled write (`record`).
    pub fn over_time() -> Accumulator {
        Accumulator {
            lock_order: Some(lockorder::LockOrder::default()),
            races: Some(races::RaceTracker::default()),
            stream: Some(stream::StreamWindow::default()),
            gil: Some(gil_use::GilTracker::default()),
            ..Accumulator::default()
        }
    }

    /// An accumulator that settles timed waits over the stream, as `over_time` does, but
    /// tracks neither lock order nor races: `record --tree`'s linked snapshots, whose lock
    /// order and races each process's own accumulator tracks.
    pub fn settling() -> Accumulator {
        Accumulator {
            stream: Some(stream::StreamWindow::default()),
            ..Accumulator::default()
        }
    }

    /// How `loop_block`s are found: the threshold, and which blocks a document reports.
    pub fn set_loop_options(&mut self, opts: loops::LoopOptions) {
        self.loop_options = opts;
    }

    pub fn push(&mut self, snap: Snapshot) {
        let stream = crate::cost_split::span(crate::cost_split::Phase::Stream);
        let (snap, settled) = match self.stream.as_mut() {
            Some(w) => w.settle(snap),
            None => (snap, true),
        };
        drop(stream);
        let _analysis = crate::cost_split::span(crate::cost_split::Phase::Analysis);
        self.warmup += usize::from(!settled);
        self.started.get_or_insert(snap.taken);
        self.loops.observe(&snap, &self.loop_options);
        self.snapshots += 1;
        let found = findings(&snap);
        for f in &found {
            *self.seen.entry(f.id.clone()).or_default() += 1;
            if settled {
                *self.seen_settled.entry(f.id.clone()).or_default() += 1;
            }
            let seen = self.ever.entry(f.id.clone()).or_insert_with(|| Seen {
                first: snap.taken,
                last: snap.taken,
                samples: 0,
                finding: f.clone(),
            });
            seen.last = snap.taken;
            seen.samples += 1;
            // The newest version: sites and names can sharpen as the threads settle.
            seen.finding = f.clone();
        }
        self.state_since.observe(&snap.threads, snap.taken);
        for t in &snap.threads {
            let unmatched = t.kernel_unmatched.is_some() as usize;
            match self.unmatched.get_mut(&t.id) {
                Some(e) => *e = (e.0 + 1, e.1 + unmatched),
                None => {
                    self.unmatched.insert(t.id.clone(), (1, unmatched));
                }
            }
        }
        if self.unmatched.len() != snap.threads.len() {
            self.unmatched.retain(|id, _| snap.thread(id).is_some());
        }
        if let Some(lo) = self.lock_order.as_mut() {
            lo.observe(&snap);
        }
        if let Some(r) = self.races.as_mut() {
            r.observe(&snap);
        }
        if let Some(g) = self.gil.as_mut() {
            g.observe(&snap);
        }
        self.last_findings = found;
        self.last = Some(snap);
    }

    /// What only time reveals, so far: lock-order inversions (except those already reported
    /// as a deadlock among `reported`) and race candidates. Empty unless tracked (`over_time`).
    pub fn latent_findings(&self, pid: i32, reported: &[Finding]) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(lo) = &self.lock_order {
            let deadlocked: Vec<Vec<String>> = reported
                .iter()
                .filter(|f| f.kind == FindingKind::Deadlock)
                .map(|f| {
                    let mut l = f.locks.clone();
                    l.sort();
                    l
                })
                .collect();
            out.extend(
                lo.findings(pid)
                    .into_iter()
                    .filter(|f| !deadlocked.contains(&f.locks)),
            );
        }
        if let Some(r) = &self.races {
            out.extend(r.findings(pid));
        }
        out
    }

    /// The objects whose program-wide names its window-wide findings (inversions, races)
    /// would use, each with the type it must still have where known (`set_program_names`).
    pub fn latent_objects(&self) -> Vec<(usize, Option<usize>)> {
        let mut out = Vec::new();
        if let Some(lo) = &self.lock_order {
            out.extend(lo.wanted());
        }
        if let Some(r) = &self.races {
            out.extend(r.wanted());
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Names read for `latent_objects` (at the end of a recording): inversions and races
    /// name their locks and raced objects by them.
    pub fn set_program_names(&mut self, names: &HashMap<usize, String>) {
        if let Some(lo) = self.lock_order.as_mut() {
            lo.set_program_names(names);
        }
        if let Some(r) = self.races.as_mut() {
            r.set_program_names(names);
        }
    }

    /// Whether a finding was seen in every snapshot: every settled one, once a stream has
    /// settled any (a polling loop is only known blocked once the stream spans a window).
    fn persisted(&self, id: &str) -> bool {
        let settled = self.snapshots - self.warmup;
        if settled > 0 {
            self.seen_settled.get(id) == Some(&settled)
        } else {
            self.seen.get(id) == Some(&self.snapshots)
        }
    }

    pub fn snapshots(&self) -> usize {
        self.snapshots
    }

    pub fn last(&self) -> Option<&Snapshot> {
        self.last.as_ref()
    }

    /// The document so far with every finding seen at least once (current or not), each
    /// with its own first/last seen and sample count: what a live view shows. Panics if
    /// nothing was pushed.
    pub fn live_document(&self, process: Process, command: Command) -> Document {
        let mut doc = self.assemble(process, command, Vec::new());
        let mut findings: Vec<Finding> = self
            .ever
            .values()
            .map(|s| {
                let mut f = s.finding.clone();
                f.first_seen = timestamp(s.first);
                f.last_seen = timestamp(s.last);
                f.samples = s.samples;
                f
            })
            .collect();
        // Inversions and races are computed over the whole window, not per snapshot; an
        // inversion that deadlocked at some point is reported as that deadlock.
        let latent = self.latent_findings(doc.processes[0].pid, &findings);
        for mut f in latent {
            if f.first_seen.is_empty() {
                f.first_seen = doc.window.started.clone();
                f.last_seen = doc.window.ended.clone();
            }
            findings.push(f);
        }
        findings.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(a.kind.cmp(&b.kind))
                .then(a.id.cmp(&b.id))
        });
        doc.findings = findings;
        doc
    }

    /// The document so far. Panics if nothing was pushed.
    pub fn document(&self, process: Process, command: Command) -> Document {
        let last = self.last.as_ref().expect("at least one snapshot");
        let started = self.started.unwrap();
        let ended = last.taken;
        let mut findings: Vec<Finding> = self
            .last_findings
            .iter()
            .filter(|f| self.persisted(&f.id))
            .cloned()
            .map(|mut f| {
                f.first_seen = timestamp(started);
                f.last_seen = timestamp(ended);
                f.samples = self.snapshots;
                f
            })
            .collect();
        let latent = self.latent_findings(last.pid, &findings);
        findings.extend(latent);
        for f in findings.iter_mut().filter(|f| f.first_seen.is_empty()) {
            f.first_seen = timestamp(started);
            f.last_seen = timestamp(ended);
        }
        findings.extend(
            self.loops
                .findings(last, &self.loop_options, self.snapshots),
        );
        findings.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(a.kind.cmp(&b.kind))
                .then(a.id.cmp(&b.id))
        });
        self.assemble(process, command, findings)
    }

    /// Threads of `last` whose kernel state was unknown in every snapshot they were seen in:
    /// at least two (a thread seen once may be starting), or the window's only one.
    fn persistently_unmatched(&self, last: &Snapshot) -> Vec<String> {
        last.threads
            .iter()
            .filter(|t| {
                self.unmatched.get(&t.id).is_some_and(|&(seen, unmatched)| {
                    unmatched == seen && (seen >= 2 || self.snapshots == 1)
                })
            })
            .map(|t| t.id.clone())
            .collect()
    }

    /// The document of the newest snapshot with the given findings.
    fn assemble(&self, process: Process, command: Command, findings: Vec<Finding>) -> Document {
        let last = self.last.as_ref().expect("at least one snapshot");
        let started = self.started.unwrap();
        let ended = last.taken;
        let mut threads = last.threads.clone();
        for t in &mut threads {
            let since = self.state_since.get(&t.id).unwrap_or(last.taken);
            t.state_since = timestamp(since);
        }
        let mut processes = if last.processes.is_empty() {
            vec![Process {
                exited: false,
                ..process
            }]
        } else {
            // The root first (a document's first process is the one asked about).
            let mut ps = last.processes.clone();
            ps.sort_by_key(|p| (p.pid != last.pid, p.pid));
            ps
        };
        for p in &mut processes {
            for note in last.notes.get(&p.pid).into_iter().flatten() {
                if !p.notes.contains(note) {
                    p.notes.push(note.clone());
                }
            }
            // Idle only where nothing was found: a deadlocked process is not idle.
            let involved = findings.iter().any(|f| {
                matches!(f.kind, FindingKind::Deadlock | FindingKind::Stall)
                    && (f.processes.contains(&p.pid) || f.processes.is_empty())
            });
            p.idle = (!involved).then(|| idle::idle(last, p.pid)).flatten();
        }
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
                snapshots: self.snapshots,
                seconds: ended
                    .duration_since(started)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
            },
            processes,
            threads,
            locks: last.locks.clone(),
            tasks: last.tasks.clone(),
            findings,
            loops: last.loops.clone(),
            unmatched_threads: self.persistently_unmatched(last),
            gil: self.gil.as_ref().and_then(|g| g.summary()),
        }
    }
}

/// Add to a tree's document the latent findings (lock-order inversions, races) each process's
/// own accumulator found, once each (with the probe, the document may already have them).
pub fn add_latent_findings(doc: &mut Document, per_process: &HashMap<i32, Accumulator>) {
    let mut pids: Vec<&i32> = per_process.keys().collect();
    pids.sort();
    for pid in pids {
        for f in per_process[pid].latent_findings(*pid, &doc.findings) {
            if !doc.findings.iter().any(|g| g.id == f.id) {
                doc.findings.push(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_timestamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(timestamp(t), "2026-11-18T11:06:40.123Z");
        assert_eq!(
            timestamp(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
