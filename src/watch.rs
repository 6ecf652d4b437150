//! `gridlock run`: start a command, watch it and every Python process it starts, and stop it
//! with a report when a failing finding persists, when it hangs, or when time runs out.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::analysis;
use crate::error::Error;
use crate::model::*;
use crate::snapshot::{self, Snapshot};
use crate::target::{procfs, Target};
use crate::tree;

pub struct WatchOptions {
    pub interval: Duration,
    /// How long a finding must persist before it counts.
    pub persist: Duration,
    pub hang_after: Duration,
    pub timeout: Option<Duration>,
    pub fail_on: Vec<FindingKind>,
}

/// Why watching ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command exited by itself.
    Exited,
    /// A failing finding persisted (the document says which).
    Failed,
    TimedOut,
    /// gridlock received this signal.
    Signalled(i32),
}

pub struct Watch {
    pub outcome: Outcome,
    pub status: Option<ExitStatus>,
    pub document: Document,
}

/// Set by the signal handler; read by the watch loop.
pub static RECEIVED_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    RECEIVED_SIGNAL.store(sig, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM so a cancelled CI job still gets a report.
pub fn install_signal_handlers() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        unsafe {
            let _ = sigaction(sig, &action);
        }
    }
}

struct Watched {
    target: Option<Target>,
    /// Every snapshot of the run, folded: latent findings (lock order, races).
    over_time: analysis::Accumulator,
    cmdline: String,
    attach_tries: u32,
    history: VecDeque<Snapshot>,
}

const MAX_ATTACH_TRIES: u32 = 20;

pub fn watch(child: &mut Child, opts: &WatchOptions, command: Command) -> Watch {
    let root = child.id() as i32;
    let started = Instant::now();
    let mut watched: HashMap<i32, Watched> = HashMap::new();
    let mut last_progress = Instant::now();
    let mut last_fingerprint = 0u64;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let doc = document(&watched, &command, opts, false);
            return Watch {
                outcome: Outcome::Exited,
                status: Some(status),
                document: doc,
            };
        }
        let sig = RECEIVED_SIGNAL.load(Ordering::SeqCst);
        if sig != 0 {
            let doc = document(&watched, &command, opts, false);
            return Watch {
                outcome: Outcome::Signalled(sig),
                status: None,
                document: doc,
            };
        }
        if opts
            .timeout
            .map(|t| started.elapsed() >= t)
            .unwrap_or(false)
        {
            let doc = document(&watched, &command, opts, false);
            return Watch {
                outcome: Outcome::TimedOut,
                status: None,
                document: doc,
            };
        }

        let pids = tree::descendants(root);
        watched.retain(|pid, _| pids.contains(pid));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut timed_sleep = false;
        for &pid in &pids {
            tree::cpu_ticks(pid).hash(&mut hasher);
            pid.hash(&mut hasher);
            timed_sleep |= tree::sleeping_with_timeout(pid);
            let w = watched.entry(pid).or_insert_with(|| Watched {
                target: None,
                over_time: analysis::Accumulator::over_time(),
                cmdline: String::new(),
                attach_tries: 0,
                history: VecDeque::new(),
            });
            let cmdline = procfs::cmdline(pid);
            if cmdline != w.cmdline {
                // A new program (exec): try attaching again.
                w.cmdline = cmdline;
                w.attach_tries = 0;
                w.target = None;
            }
            if w.target.is_none() && w.attach_tries < MAX_ATTACH_TRIES {
                w.attach_tries += 1;
                match Target::attach(pid) {
                    Ok(mut t) => {
                        t.writes = true;
                        w.target = Some(t)
                    }
                    Err(Error::NotPython { .. }) | Err(Error::Unsupported { .. }) => {
                        w.attach_tries = MAX_ATTACH_TRIES
                    }
                    Err(_) => {}
                }
            }
            if let Some(t) = w.target.as_mut() {
                match snapshot::take(t) {
                    Ok(s) => {
                        for th in &s.threads {
                            (&th.id, &th.frames, th.state).hash(&mut hasher);
                        }
                        w.over_time.push(s.clone());
                        w.history.push_back(s);
                        let horizon = SystemTime::now() - opts.persist - opts.interval;
                        while w.history.len() > 2
                            && w.history
                                .front()
                                .map(|f| f.taken < horizon)
                                .unwrap_or(false)
                        {
                            w.history.pop_front();
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        let fingerprint = hasher.finish();
        if fingerprint != last_fingerprint || timed_sleep {
            last_fingerprint = fingerprint;
            last_progress = Instant::now();
        }

        let doc = document(&watched, &command, opts, true);
        if crate::fails(&doc, &opts.fail_on) {
            return Watch {
                outcome: Outcome::Failed,
                status: None,
                document: doc,
            };
        }
        if last_progress.elapsed() >= opts.hang_after {
            let mut doc = document(&watched, &command, opts, false);
            doc.findings.push(hang_finding(&doc, opts.hang_after));
            return Watch {
                outcome: Outcome::Failed,
                status: None,
                document: doc,
            };
        }
        std::thread::sleep(opts.interval);
    }
}

/// One document over every watched Python process; with `require_persistence`, findings
/// count only once their history spans the persistence window.
fn document(
    watched: &HashMap<i32, Watched>,
    command: &Command,
    opts: &WatchOptions,
    require_persistence: bool,
) -> Document {
    let mut pids: Vec<&i32> = watched.keys().collect();
    pids.sort();
    let mut merged: Option<Document> = None;
    for pid in pids {
        let w = &watched[pid];
        let (Some(t), false) = (&w.target, w.history.is_empty()) else {
            continue;
        };
        let snaps: Vec<Snapshot> = w.history.iter().cloned().collect();
        let span = snaps
            .last()
            .unwrap()
            .taken
            .duration_since(snaps[0].taken)
            .unwrap_or_default();
        let mut doc = analysis::document(&snaps, t.process.clone(), command.clone());
        if require_persistence && span < opts.persist {
            doc.findings.clear();
        }
        let latent = w.over_time.latent_findings(t.pid, &doc.findings);
        doc.findings.extend(latent);
        merged = Some(match merged {
            None => doc,
            Some(mut m) => {
                m.processes.extend(doc.processes);
                m.threads.extend(doc.threads);
                m.locks.extend(doc.locks);
                m.findings.extend(doc.findings);
                m
            }
        });
    }
    merged.unwrap_or_else(|| empty_document(command))
}

fn empty_document(command: &Command) -> Document {
    let now = analysis::timestamp(SystemTime::now());
    Document {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "gridlock".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command: command.clone(),
        window: Window {
            started: now.clone(),
            ended: now,
            snapshots: 0,
            seconds: 0.0,
        },
        processes: Vec::new(),
        threads: Vec::new(),
        locks: Vec::new(),
        tasks: Vec::new(),
        findings: Vec::new(),
    }
}

fn hang_finding(doc: &Document, after: Duration) -> Finding {
    let now = analysis::timestamp(SystemTime::now());
    Finding {
        id: "hang".into(),
        kind: FindingKind::Hang,
        severity: Severity::Error,
        first_seen: now.clone(),
        last_seen: now,
        samples: doc.window.snapshots,
        summary: format!(
            "no thread's stack changed, no thread used CPU time and no process in the tree made progress for {:.1} s",
            after.as_secs_f64()
        ),
        threads: doc.threads.iter().map(|t| t.id.clone()).collect(),
        tasks: Vec::new(),
        processes: doc.processes.iter().map(|p| p.pid).collect(),
        locks: Vec::new(),
        edges: Vec::new(),
        advice: Some("Every thread is parked: look at what each waits for below (an I/O call without a timeout, a wait nobody will end).".into()),
    }
}

/// Kill `root` and all its descendants (children first, so none is re-parented and missed).
pub fn kill_tree(root: i32) {
    for _ in 0..3 {
        let pids = tree::descendants(root);
        if pids.is_empty() {
            return;
        }
        for pid in pids.iter().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
