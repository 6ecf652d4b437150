//! `gridlock run`: start a command, watch it and every Python process it starts, and stop it
//! with a report when a failing finding persists, when it hangs, or when time runs out.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::analysis;
use crate::crossproc;
use crate::model::*;
use crate::snapshot::Snapshot;
use crate::target::procfs;
use crate::tree;

pub struct WatchOptions {
    pub interval: Duration,
    /// How long a finding must persist before it counts.
    pub persist: Duration,
    pub hang_after: Duration,
    pub timeout: Option<Duration>,
    pub fail_on: Vec<FindingKind>,
    /// Event-loop steps longer than this are `loop_block`s, reported as they happen.
    pub loop_threshold: Duration,
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

pub fn watch(child: &mut Child, opts: &WatchOptions, command: Command) -> Watch {
    let root = child.id() as i32;
    let started = Instant::now();
    // Every Python process of the tree, sampled together into one wait-for graph.
    let mut tree = crossproc::Tree::new(root);
    tree.writes = true;
    let mut history: VecDeque<Snapshot> = VecDeque::new();
    // Every snapshot of the run, folded per process: latent findings (lock order, races).
    let mut over_time: HashMap<i32, analysis::Accumulator> = HashMap::new();
    let mut last_progress = Instant::now();
    let mut last_fingerprint = 0u64;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let doc = document(&history, &over_time, root, &command, opts, false);
            return Watch {
                outcome: Outcome::Exited,
                status: Some(status),
                document: doc,
            };
        }
        let sig = RECEIVED_SIGNAL.load(Ordering::SeqCst);
        if sig != 0 {
            let doc = document(&history, &over_time, root, &command, opts, false);
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
            let doc = document(&history, &over_time, root, &command, opts, false);
            return Watch {
                outcome: Outcome::TimedOut,
                status: None,
                document: doc,
            };
        }

        let pids = tree::descendants(root);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut timed_sleep = false;
        for &pid in &pids {
            tree::cpu_ticks(pid).hash(&mut hasher);
            pid.hash(&mut hasher);
            timed_sleep |= tree::sleeping_with_timeout(pid);
        }
        if let Ok((s, parts)) = tree.snapshot_parts() {
            over_time.retain(|pid, _| pids.contains(pid));
            for part in parts {
                over_time
                    .entry(part.pid)
                    .or_insert_with(analysis::Accumulator::over_time)
                    .push(part);
            }
            for th in &s.threads {
                (&th.id, &th.frames, th.state).hash(&mut hasher);
            }
            history.push_back(s);
            let horizon = SystemTime::now() - opts.persist - opts.interval;
            while history.len() > 2 && history.front().map(|f| f.taken < horizon).unwrap_or(false) {
                history.pop_front();
            }
        }
        let fingerprint = hasher.finish();
        if fingerprint != last_fingerprint || timed_sleep {
            last_fingerprint = fingerprint;
            last_progress = Instant::now();
        }

        let doc = document(&history, &over_time, root, &command, opts, true);
        if crate::fails(&doc, &opts.fail_on) {
            return Watch {
                outcome: Outcome::Failed,
                status: None,
                document: doc,
            };
        }
        if last_progress.elapsed() >= opts.hang_after {
            let mut doc = document(&history, &over_time, root, &command, opts, false);
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

/// One document over the tree's snapshots; with `require_persistence`, findings count only
/// once the history spans the persistence window.
fn document(
    history: &VecDeque<Snapshot>,
    over_time: &HashMap<i32, analysis::Accumulator>,
    root: i32,
    command: &Command,
    opts: &WatchOptions,
    require_persistence: bool,
) -> Document {
    let (Some(first), Some(last)) = (history.front(), history.back()) else {
        return empty_document(command);
    };
    let snaps: Vec<Snapshot> = history.iter().cloned().collect();
    let span = last.taken.duration_since(first.taken).unwrap_or_default();
    let root_process = last.processes.first().cloned().unwrap_or_else(|| Process {
        pid: root,
        ppid: procfs::ppid(root),
        name: procfs::comm(root),
        cmdline: procfs::cmdline(root),
        python_version: String::new(),
        exited: false,
        interpreter_found: None,
    });
    let mut doc = analysis::document_with(
        &snaps,
        root_process,
        command.clone(),
        analysis::loops::LoopOptions {
            threshold: opts.loop_threshold,
            mode: analysis::loops::LoopMode::Live,
        },
    );
    if require_persistence && span < opts.persist {
        // A loop block carries its own duration: it counts as soon as it crosses the threshold.
        doc.findings.retain(|f| f.kind == FindingKind::LoopBlock);
    }
    analysis::add_latent_findings(&mut doc, over_time);
    doc
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
        loops: Vec::new(),
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
        duration: None, ongoing: None, loop_id: None, culprit: None, stack: Vec::new(), histogram: None,
        knot: false,
        location: None,
        locksets: Vec::new(),
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
