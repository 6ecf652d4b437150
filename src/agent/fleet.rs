//! The Python processes `watch` samples: attached as they appear, forgotten when they exit,
//! each with the window of its own snapshots from which the findings that persisted are found
//! by the same code as `dump` and `run` (`analysis::document_with`). Each pass becomes metric
//! updates and events. Reads targets only through `snapshot`; never stops one.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use crate::analysis::{self, loops};
use crate::error::Error;
use crate::model::{Command, Document, Finding, FindingKind};
use crate::snapshot::{self, Session, Snapshot};
use crate::target::discovery::DiscoveryCache;
use crate::target::ReadOptions;

use super::events::{self, Change, Event, Events};
use super::host::{self, Entry};
use super::labels;
use super::metrics::{AttachError, FindingLabels, Metrics, ProcessLabels};
use super::options::WatchOptions;

/// Passes a process that looks like Python but whose interpreter was not found is tried in
/// (one starting up has not set it up yet).
const MAX_ATTACH_TRIES: u32 = 5;

/// Failed snapshots in a row after which an attached process is given up.
const MAX_READ_FAILURES: u32 = 10;

/// What the agent knows of one process of the host.
struct Known {
    start: u64,
    comm: String,
    state: State,
}

enum State {
    /// Filtered out, not Python, or given up: looked at again only after an exec.
    Skipped,
    /// Tried this many times without finding its interpreter yet.
    Pending(u32),
    Watched(Box<Watched>),
}

/// An attached process and what its snapshots showed.
struct Watched {
    session: Session,
    labels: ProcessLabels,
    /// Its snapshots over the window (oldest first).
    history: VecDeque<Snapshot>,
    /// Findings persisting now, by id.
    persisting: HashMap<String, Persisting>,
    /// The finding series exported for it, to remove when they clear.
    exported: HashSet<FindingLabels>,
    last_doc: Option<Document>,
    failures: u32,
}

struct Persisting {
    finding: Finding,
    since: SystemTime,
}

/// What one pass needs besides the fleet.
pub struct Pass<'a> {
    pub opts: &'a WatchOptions,
    pub metrics: &'a Metrics,
    pub events: Option<&'a mut Events>,
    pub command: &'a Command,
}

impl Pass<'_> {
    fn emit(&mut self, event: &Event) {
        if let Some(events) = self.events.as_deref_mut() {
            if let Err(e) = events.write(event) {
                eprintln!("gridlock watch: cannot write an event: {e}");
            }
        }
    }
}

#[derive(Default)]
pub struct Fleet {
    known: HashMap<i32, Known>,
    /// Interpreter discovery, shared by every process running the same Python binary.
    discovery: DiscoveryCache,
}

impl Fleet {
    pub fn new() -> Fleet {
        Fleet::default()
    }

    /// Processes attached now.
    pub fn targets(&self) -> usize {
        self.known
            .values()
            .filter(|k| matches!(k.state, State::Watched(_)))
            .count()
    }

    /// Follow the host: forget processes that exited (their series and findings go with them),
    /// attach to new ones the filters admit.
    pub fn refresh(&mut self, pass: &mut Pass) {
        let entries = host::processes();
        let live: HashMap<i32, &Entry> = entries.iter().map(|e| (e.pid, e)).collect();
        let gone: Vec<i32> = self
            .known
            .iter()
            .filter(|(pid, k)| {
                live.get(pid)
                    .is_none_or(|e| e.start != k.start || e.comm != k.comm)
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in gone {
            if let Some(Known {
                state: State::Watched(w),
                ..
            }) = self.known.remove(&pid)
            {
                forget(*w, pass);
            }
        }
        for e in &entries {
            let known = self.known.entry(e.pid).or_insert_with(|| Known {
                start: e.start,
                comm: e.comm.clone(),
                state: if pass.opts.filter.admits(e, || cgroup_text(e.pid)) {
                    State::Pending(0)
                } else {
                    State::Skipped
                },
            });
            let State::Pending(tries) = known.state else {
                continue;
            };
            known.state = attach(e, tries, &mut self.discovery, pass);
        }
    }

    /// One snapshot of every attached process, and what changed.
    pub fn sample(&mut self, pass: &mut Pass) {
        let mut given_up = Vec::new();
        for (pid, known) in self.known.iter_mut() {
            let State::Watched(w) = &mut known.state else {
                continue;
            };
            let taken = snapshot::take(&mut w.session);
            // A page cache per target held between passes a second apart is most of the
            // agent's memory: given back (measured in tests/bench/README.md).
            w.session.mem.release_spare();
            match taken {
                Ok(s) => {
                    w.failures = 0;
                    w.history.push_back(s);
                }
                // Forgotten with its series at the next refresh.
                Err(Error::TargetExited { .. } | Error::NoSuchProcess { .. }) => continue,
                Err(_) if !w.session.alive() => continue,
                Err(_) => {
                    pass.metrics.attach_error(AttachError::ReadFailed);
                    w.failures += 1;
                    if w.failures >= MAX_READ_FAILURES {
                        given_up.push(*pid);
                    }
                    continue;
                }
            }
            w.update(pass);
        }
        for pid in given_up {
            if let Some(known) = self.known.get_mut(&pid) {
                if let State::Watched(w) = std::mem::replace(&mut known.state, State::Skipped) {
                    forget(*w, pass);
                }
            }
        }
    }
}

fn cgroup_text(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
}

/// Try to attach to a process the filters admit; what it is afterwards.
fn attach(e: &Entry, tries: u32, discovery: &mut DiscoveryCache, pass: &mut Pass) -> State {
    let read = ReadOptions::default();
    let counted = |reason| {
        pass.metrics.attach_error(reason);
        State::Skipped
    };
    match Session::attach_with(e.pid, read, discovery) {
        Ok(session) => {
            let placement = labels::placement(&cgroup_text(e.pid));
            let labels = ProcessLabels {
                pid: e.pid.to_string(),
                comm: e.comm.clone(),
                container: placement.container,
                pod: placement.pod,
                unit: placement.unit,
                cmdline: pass
                    .opts
                    .label_cmdline
                    .then(|| session.process.cmdline.clone()),
            };
            pass.metrics.blocked_threads.get_or_create(&labels).set(0);
            State::Watched(Box::new(Watched {
                session,
                labels,
                history: VecDeque::new(),
                persisting: HashMap::new(),
                exported: HashSet::new(),
                last_doc: None,
                failures: 0,
            }))
        }
        Err(Error::NotPython { .. })
        | Err(Error::Zombie { .. })
        | Err(Error::NoSuchProcess { .. })
        | Err(Error::TargetExited { .. }) => State::Skipped,
        Err(_) if !crate::target::procfs::exists(e.pid) => State::Skipped,
        Err(Error::PermissionDenied { .. }) => counted(AttachError::PermissionDenied),
        Err(Error::Unsupported { .. }) => counted(AttachError::UnsupportedVersion),
        Err(Error::FreeThreaded { .. }) => counted(AttachError::FreeThreaded),
        Err(Error::Layout(_)) => counted(AttachError::Layout),
        Err(_) if tries + 1 >= MAX_ATTACH_TRIES => counted(AttachError::AttachFailed),
        Err(_) => State::Pending(tries + 1),
    }
}

/// A process that exited (or was given up): its findings clear, its series go.
fn forget(mut w: Watched, pass: &mut Pass) {
    let exited = !w.session.alive();
    if let Some(doc) = w.last_doc.as_mut() {
        for p in doc.processes.iter_mut().filter(|p| p.pid == w.session.pid) {
            p.exited = exited;
        }
    }
    let ids: Vec<String> = w.persisting.keys().cloned().collect();
    for id in ids {
        w.clear(&id, exited, pass);
    }
    if let (Some(dir), Some(doc)) = (&pass.opts.report_dir, &w.last_doc) {
        if dir.join(format!("{}.json", w.session.pid)).exists() {
            let _ = events::keep_report(dir, w.session.pid, doc);
        }
    }
    for labels in w.exported.drain() {
        pass.metrics.findings.remove(&labels);
        pass.metrics.finding_age.remove(&labels);
    }
    pass.metrics.blocked_threads.remove(&w.labels);
}

impl Watched {
    /// Fold the newest snapshot in: the findings that persist now, their events and series.
    fn update(&mut self, pass: &mut Pass) {
        let now = SystemTime::now();
        // `run`'s window: it spans --window (once it can), whatever the timing jitter.
        crate::watch::trim_to_window(&mut self.history, pass.opts.window);
        let (Some(first), Some(last)) = (self.history.front(), self.history.back()) else {
            return;
        };
        let span = last.taken.duration_since(first.taken).unwrap_or_default();
        let window_start = first.taken;
        let mut doc = analysis::document_with(
            self.history.make_contiguous(),
            self.session.process.clone(),
            pass.command.clone(),
            loops::LoopOptions {
                threshold: pass.opts.loop_threshold,
                mode: loops::LoopMode::Live,
            },
        );
        if span < pass.opts.window {
            // A loop block carries its own duration: it counts as soon as it crosses the threshold.
            doc.findings.retain(|f| f.kind == FindingKind::LoopBlock);
        }
        let blocked = doc.threads.iter().filter(|t| t.blocked).count();
        pass.metrics
            .blocked_threads
            .get_or_create(&self.labels)
            .set(blocked as i64);

        let current: HashSet<&str> = doc.findings.iter().map(|f| f.id.as_str()).collect();
        let cleared: Vec<String> = self
            .persisting
            .keys()
            .filter(|id| !current.contains(id.as_str()))
            .cloned()
            .collect();
        self.last_doc = Some(doc);
        for id in cleared {
            self.clear(&id, false, pass);
        }
        let doc = self.last_doc.as_ref().expect("just set");
        for f in &doc.findings {
            match self.persisting.get_mut(&f.id) {
                Some(p) => p.finding = f.clone(),
                None => {
                    let since = match f.duration {
                        Some(d) if f.kind == FindingKind::LoopBlock => {
                            now - Duration::from_secs_f64(d.max(0.0))
                        }
                        _ => window_start,
                    };
                    self.persisting.insert(
                        f.id.clone(),
                        Persisting {
                            finding: f.clone(),
                            since,
                        },
                    );
                    pass.emit(&Event {
                        event: Change::Appeared,
                        time: analysis::timestamp(now),
                        pid: self.session.pid,
                        kind: f.kind,
                        finding: f,
                        exited: false,
                        document: doc,
                    });
                }
            }
        }
        if let Some(dir) = &pass.opts.report_dir {
            if !doc.findings.is_empty() {
                if let Err(e) = events::keep_report(dir, self.session.pid, doc) {
                    eprintln!(
                        "gridlock watch: cannot keep the report of {}: {e}",
                        self.session.pid
                    );
                }
            }
        }
        self.export(now, pass.metrics);
    }

    /// A finding stopped persisting (or its process exited): its event, and a loop block's
    /// duration into the histogram.
    fn clear(&mut self, id: &str, exited: bool, pass: &mut Pass) {
        let Some(p) = self.persisting.remove(id) else {
            return;
        };
        if p.finding.kind == FindingKind::LoopBlock {
            if let Some(d) = p.finding.duration {
                pass.metrics.loop_block_seconds.observe(d);
            }
        }
        if let Some(doc) = &self.last_doc {
            pass.emit(&Event {
                event: Change::Cleared,
                time: analysis::timestamp(SystemTime::now()),
                pid: self.session.pid,
                kind: p.finding.kind,
                finding: &p.finding,
                exited,
                document: doc,
            });
        }
        if exited {
            return;
        }
        self.export(SystemTime::now(), pass.metrics);
    }

    /// Per kind: how many findings persist and the oldest one's age; series of kinds that
    /// cleared are removed.
    fn export(&mut self, now: SystemTime, metrics: &Metrics) {
        let mut by_kind: HashMap<FindingKind, (i64, SystemTime)> = HashMap::new();
        for p in self.persisting.values() {
            let e = by_kind.entry(p.finding.kind).or_insert((0, p.since));
            e.0 += 1;
            e.1 = e.1.min(p.since);
        }
        let mut exported = HashSet::new();
        for (kind, (count, since)) in by_kind {
            let labels = FindingLabels {
                kind: kind.as_str().into(),
                process: self.labels.clone(),
            };
            metrics.findings.get_or_create(&labels).set(count);
            metrics
                .finding_age
                .get_or_create(&labels)
                .set(now.duration_since(since).unwrap_or_default().as_secs_f64());
            exported.insert(labels);
        }
        for old in self.exported.difference(&exported) {
            metrics.findings.remove(old);
            metrics.finding_age.remove(old);
        }
        self.exported = exported;
    }
}
