//! gridlock: why is this Python process stuck?
//!
//! The core reads a running CPython process from outside (`target`, `cpython`), builds a
//! snapshot of who holds and who waits (`snapshot`), finds deadlocks, stalls and orphaned
//! locks (`analysis`) and renders the report contract's document (`model`, `report`).
//! Nothing outside `tui` touches a terminal UI.

pub mod agent;
pub mod analysis;
pub mod asyncio;
pub mod cli;
pub mod cli_docs;
/// Post-mortem: a core dump read as a target.
pub mod core;
/// Where a snapshot's CPU time goes (a diagnostic, `GRIDLOCK_COST_SPLIT=1`).
pub mod cost_split;
pub mod cpython;
pub mod crossproc;
pub mod duration;
pub mod error;
/// Concurrency frameworks beside asyncio, read from memory.
pub mod frameworks;
pub mod guard;
pub mod kernel;
pub mod memory;
pub mod model;
pub mod native;
pub mod probe;
pub mod report;
pub mod sampler;
pub mod snapshot;
pub mod target;
pub mod tree;
/// The `top` dashboard: the only module that knows about the terminal.
pub mod tui;
pub mod watch;

use std::time::Duration;

use model::{Command, Document, FindingKind};

/// What `dump` reads and for how long: built once from the command line.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// How long to sample (zero: one snapshot).
    pub window: Duration,
    /// Read each frame's local variables.
    pub locals: bool,
    /// Every Python process in the tree rooted at the pid, with the waits between them.
    pub tree: bool,
    /// Event-loop steps longer than this that persisted are reported.
    pub loop_threshold: Duration,
    /// Native frames of running threads too, each stopped briefly with ptrace.
    pub native: bool,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            window: Duration::from_secs(1),
            locals: false,
            tree: false,
            loop_threshold: analysis::loops::DEFAULT_THRESHOLD,
            native: false,
        }
    }
}

/// What `record` samples, how often and for how long.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub duration: Duration,
    /// Samples per second.
    pub rate: f64,
    /// Record every Python process below the pid as well, following new ones.
    pub tree: bool,
    /// Every event-loop step longer than this is reported.
    pub loop_threshold: Duration,
    /// Native frames of running threads too, each stopped briefly with ptrace at every sample.
    pub native: bool,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            duration: Duration::from_secs(10),
            rate: 100.0,
            tree: false,
            loop_threshold: analysis::loops::DEFAULT_THRESHOLD,
            native: false,
        }
    }
}

/// Attach to `pid` (with `--tree`, every Python process below it too), sample it over the
/// window, and return the report document.
pub fn dump(pid: i32, options: &DumpOptions, command: Command) -> error::Result<Document> {
    let loop_options = analysis::loops::LoopOptions {
        threshold: options.loop_threshold,
        mode: analysis::loops::LoopMode::Persisting,
    };
    let read = target::ReadOptions {
        locals: options.locals,
        native: options.native,
        ..target::ReadOptions::default()
    };
    if options.tree {
        return dump_tree(pid, options.window, read, command, loop_options);
    }
    let mut target = snapshot::Session::attach(pid, read)?;
    let snaps = sampler::sample_window(&mut target, options.window, sampler::DUMP_SNAPSHOTS)?;
    Ok(analysis::document_with(
        &snaps,
        target.process.clone(),
        command,
        loop_options,
    ))
}

/// What `dump --core` reads: a core file and where the binaries it names are.
#[derive(Debug, Clone, Default)]
pub struct CoreDumpOptions {
    pub core: std::path::PathBuf,
    /// The dumped process's executable, when it is not at its recorded path.
    pub executable: Option<std::path::PathBuf>,
    /// The root the dumped process saw (a container's or a chroot's).
    pub sysroot: Option<std::path::PathBuf>,
    pub locals: bool,
    pub loop_threshold: Duration,
}

/// `dump --core`: the report of the process a core dump froze, as one snapshot.
pub fn dump_core(options: &CoreDumpOptions, command: Command) -> error::Result<Document> {
    let core = core::Core::open(
        &options.core,
        &core::CoreOptions {
            executable: options.executable.clone(),
            sysroot: options.sysroot.clone(),
        },
    )?;
    let read = target::ReadOptions {
        locals: options.locals,
        ..target::ReadOptions::default()
    };
    let mut session = snapshot::Session::new(core::attach::target(core, read)?);
    let snap = snapshot::take(&mut session)?;
    Ok(analysis::document_with(
        &[snap],
        session.target.process.clone(),
        command,
        analysis::loops::LoopOptions {
            threshold: options.loop_threshold,
            mode: analysis::loops::LoopMode::Persisting,
        },
    ))
}

/// `dump --tree`: every Python process in the tree rooted at `pid`, sampled together, with
/// the waits that cross process boundaries.
fn dump_tree(
    pid: i32,
    window: Duration,
    read: target::ReadOptions,
    command: Command,
    loop_options: analysis::loops::LoopOptions,
) -> error::Result<Document> {
    let mut tree = crossproc::Tree::attach(pid, read)?;
    let n = if window.is_zero() {
        1
    } else {
        sampler::DUMP_SNAPSHOTS
    };
    let start = std::time::Instant::now();
    let mut snaps = Vec::new();
    for i in 0..n {
        if i > 0 {
            let due = window * i as u32 / (n as u32 - 1);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        snaps.push(tree.snapshot()?);
    }
    let root = tree
        .targets
        .values()
        .next()
        .map(|t| t.process.clone())
        .expect("attached");
    Ok(analysis::document_with(&snaps, root, command, loop_options))
}

/// Attach to `pid` and sample it at the rate for the duration, tracking lock order (with
/// `--tree`, every Python process below it too). A target that exits after at least one
/// snapshot yields what was recorded, marked `exited` (with `exited_at`, when it was found gone).
pub fn record(pid: i32, options: &RecordOptions, command: Command) -> error::Result<Document> {
    if options.tree {
        return record_tree(pid, options, command);
    }
    let read = target::ReadOptions {
        writes: true,
        native: options.native,
        ..target::ReadOptions::default()
    };
    let mut target = snapshot::Session::attach(pid, read)?;
    let mut acc = analysis::Accumulator::over_time();
    acc.set_loop_options(record_loop_options(options.loop_threshold));
    let exited = sample_on_schedule(options.duration, options.rate, || {
        let snap = snapshot::take(&mut target)?;
        acc.push(snap);
        cost_split::snapshot_done();
        Ok(())
    })?;
    // Once, not per sample: what the program calls the objects of window-wide findings.
    let note = analysis::program_names::name_latent(&mut acc, &target);
    let mut doc = acc.document(target.process.clone(), command);
    if let Some(note) = note {
        analysis::program_names::add_note(&mut doc, pid, note);
    }
    mark_exited(&mut doc, pid, exited);
    Ok(doc)
}

/// `record --tree`: every Python process in the tree rooted at `pid` (following new ones),
/// sampled together. Deadlocks, stalls and loop blocks come from the linked tree snapshots;
/// lock order and races from each process's own (addresses mean nothing across processes).
fn record_tree(pid: i32, options: &RecordOptions, command: Command) -> error::Result<Document> {
    let read = target::ReadOptions {
        writes: true,
        native: options.native,
        ..target::ReadOptions::default()
    };
    let mut tree = crossproc::Tree::attach(pid, read)?;
    // Timed waits settle over the linked stream as over a single process's.
    let mut acc = analysis::Accumulator::settling();
    acc.set_loop_options(record_loop_options(options.loop_threshold));
    let mut per_process: std::collections::HashMap<i32, analysis::Accumulator> = Default::default();
    let exited = sample_on_schedule(options.duration, options.rate, || {
        let (linked, parts) = tree.snapshot_parts()?;
        for part in parts {
            per_process
                .entry(part.pid)
                .or_insert_with(analysis::Accumulator::over_time)
                .push(part);
        }
        acc.push(linked);
        Ok(())
    })?;
    let root = acc
        .last()
        .and_then(|s| s.processes.iter().find(|p| p.pid == pid).cloned())
        .or_else(|| tree.targets.get(&pid).map(|t| t.process.clone()))
        .unwrap_or_else(|| model::Process {
            pid,
            ppid: target::procfs::ppid(pid),
            name: target::procfs::comm(pid),
            cmdline: target::procfs::cmdline(pid),
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
    // Each process's window-wide findings by its own names, read once at the end.
    let notes = analysis::program_names::name_latent_tree(&mut per_process, &tree);
    let mut doc = acc.document(root, command);
    analysis::add_latent_findings(&mut doc, &per_process);
    for (pid, note) in notes {
        analysis::program_names::add_note(&mut doc, pid, note);
    }
    mark_exited(&mut doc, pid, exited);
    Ok(doc)
}

/// Mark `pid` exited at `when`, if it was found gone.
fn mark_exited(doc: &mut Document, pid: i32, when: Option<std::time::SystemTime>) {
    let Some(when) = when else { return };
    for p in doc.processes.iter_mut().filter(|p| p.pid == pid) {
        p.exited = true;
        p.exited_at = Some(analysis::timestamp(when));
    }
}

fn record_loop_options(threshold: Duration) -> analysis::loops::LoopOptions {
    analysis::loops::LoopOptions {
        threshold,
        mode: analysis::loops::LoopMode::Record,
    }
}

/// Call `sample` at `rate` Hz until `duration` has passed. Returns when the target was found
/// gone, if it exited (after at least one sample: an exit before any is the error itself).
fn sample_on_schedule(
    duration: Duration,
    rate: f64,
    mut sample: impl FnMut() -> error::Result<()>,
) -> error::Result<Option<std::time::SystemTime>> {
    let start = std::time::Instant::now();
    let mut tick = 0u64;
    loop {
        match sample() {
            Ok(()) => {}
            Err(error::Error::TargetExited { .. }) if tick > 0 => {
                return Ok(Some(std::time::SystemTime::now()))
            }
            Err(e) => return Err(e),
        }
        tick += 1;
        if start.elapsed() >= duration {
            return Ok(None);
        }
        // Keep to the rate's schedule; never sleep past the end of the window.
        let due = Duration::from_secs_f64(tick as f64 / rate).min(duration);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// Whether a document fails under the given kinds (empty: the contract's error kinds).
pub fn fails(doc: &Document, fail_on: &[FindingKind]) -> bool {
    doc.findings.iter().any(|f| fails_on(f, fail_on))
}

/// Whether one finding fails a command: the error kinds, and those named by `--fail-on`.
pub fn fails_on(f: &model::Finding, fail_on: &[FindingKind]) -> bool {
    f.severity == model::Severity::Error || fail_on.contains(&f.kind)
}
