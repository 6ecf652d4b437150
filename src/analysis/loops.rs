//! Event-loop blocks over time: consecutive samples of a loop running the same step (same
//! ready-queue counter, handle and task, no poll in between) are one step; a step that held
//! the loop longer than the threshold is a `loop_block`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::clock::timestamp;
use crate::model::*;
use crate::snapshot::Snapshot;

/// asyncio's own `slow_callback_duration`.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_millis(100);

/// Upper bounds (seconds) of the per-culprit histogram's buckets; the last is open.
const BUCKETS: [f64; 7] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopMode {
    /// `dump`: a block still running that persisted over the whole window.
    Persisting,
    /// `run`: a block still running, as soon as it crosses the threshold.
    Live,
    /// `record`: every block of the window, finished or not, with histograms.
    Record,
}

#[derive(Debug, Clone, Copy)]
pub struct LoopOptions {
    pub threshold: Duration,
    pub mode: LoopMode,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            threshold: DEFAULT_THRESHOLD,
            mode: LoopMode::Persisting,
        }
    }
}

#[derive(Debug, Clone)]
struct Step {
    loop_id: String,
    key: String,
    thread: Option<String>,
    task: Option<String>,
    culprit: String,
    first: SystemTime,
    last: SystemTime,
    samples: usize,
    stack: Vec<Frame>,
    syscall: Option<String>,
}

impl Step {
    fn duration(&self) -> Duration {
        self.last.duration_since(self.first).unwrap_or_default()
    }
}

#[derive(Default)]
pub struct LoopTracker {
    current: BTreeMap<String, Step>,
    finished: Vec<Step>,
}

impl LoopTracker {
    pub fn observe(&mut self, snap: &Snapshot, opts: &LoopOptions) {
        let mut running: HashMap<&str, &LoopStep> = HashMap::new();
        for l in &snap.loops {
            if let (true, Some(step)) = (l.state == LoopState::Step, &l.step) {
                running.insert(&l.id, step);
            }
        }
        // Steps that ended: the loop polled, moved on, or is gone.
        let ended: Vec<String> = self
            .current
            .iter()
            .filter(|(id, s)| {
                running
                    .get(id.as_str())
                    .map(|r| r.key != s.key)
                    .unwrap_or(true)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            let s = self.current.remove(&id).unwrap();
            if opts.mode == LoopMode::Record && s.duration() > opts.threshold {
                self.finished.push(s);
            }
        }
        for l in &snap.loops {
            let Some(step) = running.get(l.id.as_str()) else {
                continue;
            };
            let thread = l.thread.as_deref().and_then(|t| snap.thread(t));
            let syscall = thread
                .and_then(|t| t.kernel.as_ref())
                .and_then(|k| k.syscall.clone());
            let s = self.current.entry(l.id.clone()).or_insert_with(|| Step {
                loop_id: l.id.clone(),
                key: step.key.clone(),
                thread: l.thread.clone(),
                task: step.task.clone(),
                culprit: culprit(snap, step),
                first: snap.taken,
                last: snap.taken,
                samples: 0,
                stack: Vec::new(),
                syscall: None,
            });
            s.last = snap.taken;
            s.samples += 1;
            // The newest stack seen doing it, and what the kernel says it waits in.
            s.stack = step.frames.clone();
            s.syscall = syscall.map(|c| c.split_whitespace().next().unwrap_or("").to_string());
        }
    }

    /// `loop_block` findings. `snapshots` is the window's count (for `Persisting`).
    pub fn findings(&self, snap: &Snapshot, opts: &LoopOptions, snapshots: usize) -> Vec<Finding> {
        let mut out = Vec::new();
        let mut blocks: Vec<(&Step, bool)> = Vec::new();
        if opts.mode == LoopMode::Record {
            blocks.extend(self.finished.iter().map(|s| (s, false)));
        }
        for s in self.current.values() {
            if opts.mode == LoopMode::Persisting && s.samples < snapshots {
                continue;
            }
            blocks.push((s, true));
        }
        let mut by_culprit: HashMap<&str, Vec<f64>> = HashMap::new();
        for (s, _) in &blocks {
            if s.duration() > opts.threshold {
                by_culprit
                    .entry(&s.culprit)
                    .or_default()
                    .push(s.duration().as_secs_f64());
            }
        }
        for (s, ongoing) in blocks {
            if s.duration() <= opts.threshold {
                continue;
            }
            out.push(self.finding(snap, s, ongoing, opts, by_culprit.get(s.culprit.as_str())));
        }
        out
    }

    fn finding(
        &self,
        snap: &Snapshot,
        s: &Step,
        ongoing: bool,
        opts: &LoopOptions,
        durations: Option<&Vec<f64>>,
    ) -> Finding {
        let secs = s.duration().as_secs_f64();
        let thread = s
            .thread
            .as_deref()
            .map(|t| super::detectors::thread_label(snap, t))
            .unwrap_or_else(|| "an unknown thread".into());
        let at = s
            .stack
            .first()
            .map(|f| format!(", at {}", f.site()))
            .unwrap_or_default();
        let kernel = s
            .syscall
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| format!(" (the thread sleeps in {c})"))
            .unwrap_or_else(|| " (the thread is running)".into());
        // A loop asyncio's BaseEventLoop does not run (uvloop) is seen from its thread's stack
        // and syscall only (`native/` step keys): say what was seen, not more.
        let meanwhile = if s.key.starts_with("native/") {
            "no poll was seen meanwhile (a uvloop loop is seen from its thread's stack and syscall only)"
        } else {
            "nothing else on this loop ran meanwhile"
        };
        let summary =
            format!(
            "the event loop of {thread} was held for {secs:.3} s{} by {}{at}{kernel}; {meanwhile}",
            if ongoing { " so far (still blocking)" } else { "" },
            s.culprit,
        );
        let mut edges = Vec::new();
        edges.push(Edge {
            from: s.loop_id.clone(),
            to: s.task.clone().unwrap_or_else(|| s.culprit.clone()),
            via: EdgeVia::Runs,
            // The loop's current task is read from `_current_tasks`; a callback from the stack.
            evidence: Evidence::Memory,
            site: s.stack.first().map(Frame::site),
            name: None,
        });
        let histogram = (opts.mode == LoopMode::Record)
            .then(|| durations.map(|d| histogram(&s.culprit, d)))
            .flatten();
        Finding {
            id: format!(
                "loop_block:{}:{}:{}",
                s.loop_id,
                s.key,
                timestamp(s.first)
            ),
            kind: FindingKind::LoopBlock,
            severity: FindingKind::LoopBlock.severity(),
            first_seen: timestamp(s.first),
            last_seen: timestamp(s.last),
            samples: s.samples,
            summary,
            threads: s.thread.iter().cloned().collect(),
            tasks: s.task.iter().cloned().collect(),
            processes: vec![snap.pid],
            locks: Vec::new(),
            edges,
            advice: Some(format!(
                "A step of an event loop must not block for more than {:.0} ms: move blocking calls to a thread ({}), and split CPU-bound work or run it in a process pool.",
                opts.threshold.as_secs_f64() * 1000.0,
                // A Twisted reactor's steps (`frameworks::twisted`'s keys).
                if s.key.starts_with("twisted:") {
                    "threads.deferToThread(...) or reactor.callInThread"
                } else if s.key.starts_with("trio:") {
                    // A trio task's step (`frameworks::trio`'s keys).
                    "await trio.to_thread.run_sync(...)"
                } else {
                    "await asyncio.to_thread(...) or loop.run_in_executor"
                }
            )),
            duration: Some(secs),
            ongoing: Some(ongoing),
            loop_id: Some(s.loop_id.clone()),
            culprit: Some(s.culprit.clone()),
            stack: s.stack.clone(),
            histogram,
            knot: false,
            location: None,
            locksets: Vec::new(),
            notes: Vec::new(),
        }
    }
}

fn culprit(snap: &Snapshot, step: &LoopStep) -> String {
    if let Some(t) = step.task.as_deref() {
        return super::detectors::task_label(snap, t);
    }
    match &step.callback {
        Some(cb) => format!("callback {cb}"),
        None => "a callback implemented in C".into(),
    }
}

fn histogram(culprit: &str, durations: &[f64]) -> Histogram {
    let mut buckets: Vec<(Option<f64>, usize)> = BUCKETS
        .iter()
        .map(|b| (Some(*b), 0))
        .chain(std::iter::once((None, 0)))
        .collect();
    for d in durations {
        let i = BUCKETS.iter().position(|b| d <= b).unwrap_or(BUCKETS.len());
        buckets[i].1 += 1;
    }
    Histogram {
        culprit: culprit.to_string(),
        count: durations.len(),
        max: durations.iter().cloned().fold(0.0, f64::max),
        total: durations.iter().sum(),
        buckets,
    }
}
