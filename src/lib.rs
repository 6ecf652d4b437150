//! gridlock: why is this Python process stuck?
//!
//! The core reads a running CPython process from outside (`target`, `cpython`), builds a
//! snapshot of who holds and who waits (`snapshot`), finds deadlocks, stalls and orphaned
//! locks (`analysis`) and renders the report contract's document (`model`, `report`).
//! Nothing outside `tui` touches a terminal UI.

pub mod analysis;
pub mod asyncio;
pub mod cli;
pub mod cpython;
pub mod crossproc;
pub mod duration;
pub mod error;
pub mod memory;
pub mod model;
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

/// Attach to `pid`, sample it over `window`, and return the report document.
pub fn dump(pid: i32, window: Duration, locals: bool, command: Command) -> error::Result<Document> {
    dump_with(
        pid,
        window,
        locals,
        command,
        analysis::loops::DEFAULT_THRESHOLD,
    )
}

/// `dump`, reporting event-loop steps longer than `loop_threshold` that persisted.
pub fn dump_with(
    pid: i32,
    window: Duration,
    locals: bool,
    command: Command,
    loop_threshold: Duration,
) -> error::Result<Document> {
    let mut target = target::Target::attach(pid)?;
    target.locals = locals;
    let snaps = sampler::sample_window(&mut target, window, sampler::DUMP_SNAPSHOTS)?;
    Ok(analysis::document_with(
        &snaps,
        target.process.clone(),
        command,
        analysis::loops::LoopOptions {
            threshold: loop_threshold,
            mode: analysis::loops::LoopMode::Persisting,
        },
    ))
}

/// `dump --tree`: every Python process in the tree rooted at `pid`, sampled together, with
/// the waits that cross process boundaries.
pub fn dump_tree(
    pid: i32,
    window: Duration,
    locals: bool,
    command: Command,
) -> error::Result<Document> {
    let mut tree = crossproc::Tree::attach(pid, locals)?;
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
    Ok(analysis::document(&snaps, root, command))
}

/// Attach to `pid` and sample it at `rate` Hz for `duration`, tracking lock order. A target
/// that exits after at least one snapshot yields what was recorded, marked `exited`.
pub fn record(
    pid: i32,
    duration: Duration,
    rate: f64,
    command: Command,
) -> error::Result<Document> {
    record_with(
        pid,
        duration,
        rate,
        command,
        analysis::loops::DEFAULT_THRESHOLD,
    )
}

/// `record`, reporting every event-loop step longer than `loop_threshold`.
pub fn record_with(
    pid: i32,
    duration: Duration,
    rate: f64,
    command: Command,
    loop_threshold: Duration,
) -> error::Result<Document> {
    let mut target = target::Target::attach(pid)?;
    target.writes = true;
    let mut acc = analysis::Accumulator::over_time();
    acc.set_loop_options(record_loop_options(loop_threshold));
    let exited = sample_on_schedule(duration, rate, || {
        snapshot::take(&mut target).map(|s| acc.push(s))
    })?;
    let mut doc = acc.document(target.process.clone(), command);
    doc.processes[0].exited = exited;
    Ok(doc)
}

/// `record --tree`: every Python process in the tree rooted at `pid` (following new ones),
/// sampled together. Deadlocks, stalls and loop blocks come from the linked tree snapshots;
/// lock order and races from each process's own (addresses mean nothing across processes).
pub fn record_tree(
    pid: i32,
    duration: Duration,
    rate: f64,
    command: Command,
    loop_threshold: Duration,
) -> error::Result<Document> {
    let mut tree = crossproc::Tree::attach(pid, false)?;
    tree.writes = true;
    let mut acc = analysis::Accumulator::default();
    acc.set_loop_options(record_loop_options(loop_threshold));
    let mut per_process: std::collections::HashMap<i32, analysis::Accumulator> = Default::default();
    let exited = sample_on_schedule(duration, rate, || {
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
            exited,
            interpreter_found: None,
            notes: Vec::new(),
        });
    let mut doc = acc.document(root, command);
    analysis::add_latent_findings(&mut doc, &per_process);
    if exited {
        for p in doc.processes.iter_mut().filter(|p| p.pid == pid) {
            p.exited = true;
        }
    }
    Ok(doc)
}

fn record_loop_options(threshold: Duration) -> analysis::loops::LoopOptions {
    analysis::loops::LoopOptions {
        threshold,
        mode: analysis::loops::LoopMode::Record,
    }
}

/// Call `sample` at `rate` Hz until `duration` has passed. Returns whether the target exited
/// (after at least one sample: an exit before any is the error itself).
fn sample_on_schedule(
    duration: Duration,
    rate: f64,
    mut sample: impl FnMut() -> error::Result<()>,
) -> error::Result<bool> {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = std::time::Instant::now();
    let mut tick = 0u32;
    loop {
        match sample() {
            Ok(()) => {}
            Err(error::Error::TargetExited { .. }) if tick > 0 => return Ok(true),
            Err(e) => return Err(e),
        }
        tick += 1;
        if start.elapsed() >= duration {
            return Ok(false);
        }
        // Keep to the rate's schedule; never sleep past the end of the window.
        let due = (interval * tick).min(duration);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// Whether a document fails under the given kinds (empty: the contract's error kinds).
pub fn fails(doc: &Document, fail_on: &[FindingKind]) -> bool {
    doc.findings.iter().any(|f| {
        if fail_on.is_empty() {
            f.severity == model::Severity::Error
        } else {
            fail_on.contains(&f.kind) || f.severity == model::Severity::Error
        }
    })
}
