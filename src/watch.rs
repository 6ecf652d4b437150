//! `gridlock run`: start a command, watch it and every Python process it starts, and stop it
//! with a report when a failing finding persists, when it hangs, or when time runs out.
//!
//! gridlock is the subreaper of the command's tree: a process the command leaves behind is
//! re-parented to gridlock, stays watched, and is killed with the rest; the watch ends when
//! the whole tree has exited. The tree dies with gridlock (`guard`).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::analysis;
use crate::crossproc;
use crate::guard::Guard;
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
    /// With `run --probe`: the folders the probe was written to. A Python process of the tree
    /// that has not loaded it gets a note saying why and what to do.
    pub probe: Option<Vec<std::path::PathBuf>>,
    /// Say on stderr why a failing finding's persistence window restarted.
    pub verbose: bool,
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
    /// The first time a document of the run had threads whose kernel state stayed unknown:
    /// what it said (`Document::unmatched_summary`). Such a run cannot pass as clean.
    pub unmatched: Option<String>,
}

/// How long a process must have been sampled without the probe before it counts as missing:
/// the probe loads at interpreter start-up, well before this.
const PROBE_GRACE: Duration = Duration::from_millis(500);

/// Per process of the tree with `run --probe`: when it was first sampled, whether the probe
/// was ever seen in it, and why not once it has been missing past `PROBE_GRACE` (worked out
/// then, while the process is alive to be asked).
#[derive(Default)]
struct ProbeSeen(HashMap<i32, (SystemTime, bool, Option<String>)>);

impl ProbeSeen {
    fn update(&mut self, part: &Snapshot, dirs: &[std::path::PathBuf]) {
        let e = self.0.entry(part.pid).or_insert((part.taken, false, None));
        e.1 |= part.probe_loaded;
        let long = part.taken.duration_since(e.0).unwrap_or_default() >= PROBE_GRACE;
        if !e.1 && long && e.2.is_none() {
            e.2 = Some(crate::probe::missing_note(part.pid, dirs));
        }
    }

    fn annotate(&self, doc: &mut Document) {
        for p in &mut doc.processes {
            if let Some((_, false, Some(note))) = self.0.get(&p.pid) {
                p.notes.push(note.clone());
            }
        }
    }
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

/// Make this process the subreaper of every process it starts from now on: an orphan of the
/// tree is re-parented here rather than to init, so it stays in the watched tree.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: a plain prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reap every child of gridlock that has exited (the command, and orphans of its tree
/// re-parented here), keeping the command's own status.
fn reap(root: i32, status: &mut Option<ExitStatus>) {
    loop {
        let mut raw = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        if pid <= 0 {
            return;
        }
        if pid == root {
            *status = Some(ExitStatus::from_raw(raw));
        }
    }
}

pub fn watch(child: &Child, opts: &WatchOptions, command: Command, guard: &mut Guard) -> Watch {
    let root = child.id() as i32;
    let started = Instant::now();
    // Every Python process of the tree, sampled together into one wait-for graph.
    let mut tree = crossproc::Tree::new(
        root,
        crate::target::ReadOptions {
            writes: true,
            ..Default::default()
        },
    );
    tree.subreaper = true;
    let mut status = None;
    let mut history: VecDeque<Snapshot> = VecDeque::new();
    // Every snapshot of the run, folded per process: latent findings (lock order, races).
    let mut over_time: HashMap<i32, analysis::Accumulator> = HashMap::new();
    let mut last_progress = Instant::now();
    let mut last_fingerprint = 0u64;
    let mut unmatched: Option<String> = None;
    let mut probe_seen = ProbeSeen::default();
    // With `verbose`: the failing findings of the latest tree snapshot, to tell when one's
    // window restarts.
    let mut present: HashMap<String, String> = HashMap::new();
    // Every document of the run, with the probe's notes where it is missing.
    let doc_of = |history: &VecDeque<Snapshot>,
                  over_time: &HashMap<i32, analysis::Accumulator>,
                  probe_seen: &ProbeSeen,
                  require_persistence: bool| {
        let mut doc = document(
            history,
            over_time,
            root,
            &command,
            opts,
            require_persistence,
        );
        probe_seen.annotate(&mut doc);
        doc
    };
    // The end of the run, while its processes are still there: the window-wide findings
    // named as each program names their objects, then the document.
    let final_doc = |history: &VecDeque<Snapshot>,
                     over_time: &mut HashMap<i32, analysis::Accumulator>,
                     tree: &crossproc::Tree,
                     probe_seen: &ProbeSeen,
                     require_persistence: bool| {
        let notes = analysis::program_names::name_latent_tree(over_time, tree);
        let mut doc = doc_of(history, over_time, probe_seen, require_persistence);
        for (pid, note) in notes {
            analysis::program_names::add_note(&mut doc, pid, note);
        }
        doc
    };
    loop {
        reap(root, &mut status);
        if status.is_some() && tree::own_descendants().is_empty() {
            let doc = doc_of(&history, &over_time, &probe_seen, false);
            return Watch {
                outcome: Outcome::Exited,
                status,
                document: doc,
                unmatched,
            };
        }
        let sig = RECEIVED_SIGNAL.load(Ordering::SeqCst);
        if sig != 0 {
            let doc = final_doc(&history, &mut over_time, &tree, &probe_seen, false);
            return Watch {
                outcome: Outcome::Signalled(sig),
                status,
                document: doc,
                unmatched,
            };
        }
        if opts
            .timeout
            .map(|t| started.elapsed() >= t)
            .unwrap_or(false)
        {
            let doc = final_doc(&history, &mut over_time, &tree, &probe_seen, false);
            return Watch {
                outcome: Outcome::TimedOut,
                status: None,
                document: doc,
                unmatched,
            };
        }

        let pids = tree::own_descendants();
        guard.update(&pids);
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
                if let Some(dirs) = &opts.probe {
                    probe_seen.update(&part, dirs);
                }
                over_time
                    .entry(part.pid)
                    .or_insert_with(analysis::Accumulator::over_time)
                    .push(part);
            }
            for th in &s.threads {
                (&th.id, &th.frames, th.state).hash(&mut hasher);
            }
            if opts.verbose {
                explain_restarts(&mut present, &s, &tree.failed, opts);
            }
            history.push_back(s);
            trim_to_window(&mut history, opts.persist);
        }
        let fingerprint = hasher.finish();
        if fingerprint != last_fingerprint || timed_sleep {
            last_fingerprint = fingerprint;
            last_progress = Instant::now();
        }

        let doc = doc_of(&history, &over_time, &probe_seen, true);
        // A window of one snapshot cannot tell a starting thread from an unmatched one.
        if unmatched.is_none() && doc.window.snapshots >= 2 {
            unmatched = doc.unmatched_summary();
        }
        if crate::fails(&doc, &opts.fail_on) {
            return Watch {
                outcome: Outcome::Failed,
                status: None,
                document: final_doc(&history, &mut over_time, &tree, &probe_seen, true),
                unmatched,
            };
        }
        if last_progress.elapsed() >= opts.hang_after {
            let mut doc = final_doc(&history, &mut over_time, &tree, &probe_seen, false);
            doc.findings.push(hang_finding(&doc, opts.hang_after));
            return Watch {
                outcome: Outcome::Failed,
                status: None,
                document: doc,
                unmatched,
            };
        }
        std::thread::sleep(opts.interval);
    }
}

/// Drops the oldest snapshots the window no longer needs: the oldest goes only while the one
/// after it still lies a whole `persist` before the newest. (Trimming to a fixed horizon
/// behind the clock instead kept the span short of `persist` for good whenever one tree
/// snapshot took longer than the sample interval: a busy pytest-xdist run then reported its
/// deadlock only once the other workers fell quiet.)
pub(crate) fn trim_to_window(history: &mut VecDeque<Snapshot>, persist: Duration) {
    let Some(newest) = history.back().map(|s| s.taken) else {
        return;
    };
    let spans_window = |s: &Snapshot| newest.duration_since(s.taken).unwrap_or_default() >= persist;
    while history.len() > 2 && history.get(1).is_some_and(spans_window) {
        history.pop_front();
    }
}

/// `run --verbose`: says on stderr when a failing finding of the previous tree snapshot is
/// missing from this one (its persistence window starts over), and why when it is known: a
/// process of the finding could not be read this time.
fn explain_restarts(
    present: &mut HashMap<String, String>,
    snap: &Snapshot,
    failed: &[(i32, String)],
    opts: &WatchOptions,
) {
    let now: HashMap<String, String> = analysis::findings(snap)
        .into_iter()
        .filter(|f| crate::fails_on(f, &opts.fail_on))
        .map(|f| (f.id, format!("{} ({})", f.kind.as_str(), f.summary)))
        .collect();
    for (pid, why) in failed {
        eprintln!("gridlock run: process {pid} could not be read in this sample: {why}");
    }
    for (id, what) in present.iter().filter(|(id, _)| !now.contains_key(*id)) {
        let unread: Vec<String> = failed
            .iter()
            .filter(|(pid, _)| id.contains(&format!("{pid}:")))
            .map(|(pid, _)| pid.to_string())
            .collect();
        let why = if unread.is_empty() {
            "it is absent from the latest snapshot".to_string()
        } else {
            format!("process {} could not be read", unread.join(", "))
        };
        eprintln!(
            "gridlock run: the window of {} restarted: {why}",
            crate::report::escape::escape(what)
        );
    }
    *present = now;
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
        exited_at: None,
        interpreter_found: None,
        current_test: None,
        core: None,
        notes: Vec::new(),
        idle: None,
        celery: None,
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
        unmatched_threads: Vec::new(),
        gil: None,
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
            "no thread's stack changed, no thread used CPU time and no process in the tree made progress for {:.1} s{}",
            after.as_secs_f64(),
            input_waits(doc)
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
        notes: Vec::new(),
    }
}

/// The threads waiting for input (a prompt nobody answers), as a clause of the hang's summary.
fn input_waits(doc: &Document) -> String {
    let waits: Vec<String> = doc
        .threads
        .iter()
        .filter(|t| t.state == ThreadState::InputWait)
        .filter_map(|t| {
            let what = t.waits_for.as_ref()?.name.clone()?;
            let who = t
                .name
                .clone()
                .unwrap_or_else(|| format!("thread {}", t.thread_id));
            Some(format!("\"{who}\" of process {} waits for {what}", t.pid))
        })
        .collect();
    if waits.is_empty() {
        String::new()
    } else {
        format!("; {}", waits.join("; "))
    }
}

/// Kill the whole tree (children first, so none is re-parented and missed) and reap it.
pub fn kill_tree() {
    let mut status = None;
    for _ in 0..50 {
        let pids = tree::own_descendants();
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
        reap(0, &mut status);
    }
}

/// Pass `sig` on to the command (or, once it has exited, to what it left behind), wait up to
/// `grace` for the whole tree to exit, then kill what is left. The command's status, if known.
pub fn signal_tree(
    root: i32,
    sig: i32,
    mut status: Option<ExitStatus>,
    grace: Duration,
) -> Option<ExitStatus> {
    let sig = nix::sys::signal::Signal::try_from(sig).unwrap_or(nix::sys::signal::Signal::SIGTERM);
    reap(root, &mut status);
    let to: Vec<i32> = if status.is_none() {
        vec![root]
    } else {
        tree::own_descendants()
    };
    for pid in to {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        reap(root, &mut status);
        if tree::own_descendants().is_empty() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_tree();
    reap(root, &mut status);
    status
}
