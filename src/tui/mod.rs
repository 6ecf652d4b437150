//! `gridlock top PID`: a live dashboard. Three sources feed one channel (a sampling thread
//! that owns the target and the accumulator, an input thread, a tick thread); the UI thread
//! applies each event to `App` and redraws from it. The rest of the crate never sees a
//! terminal; this module never reads the target itself.

pub mod app;
mod names;
pub mod panels;
mod style;
pub mod term;
pub mod views;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::analysis::Accumulator;
use crate::crossproc::Tree;
use crate::error::Error;
use crate::model::{Command, Document, Process};
use crate::snapshot;
use crate::snapshot::Session;
use crate::target::ReadOptions;
pub use app::{App, Effect, Event, Sample, Tick};

/// Share of one core the sampling thread may use before the rate is lowered: what leaves
/// room for drawing within the 10% goal.
const SAMPLING_BUDGET: f64 = 0.05;
const TICK: Duration = Duration::from_millis(250);

pub struct TopOptions {
    pub pid: i32,
    pub rate: f64,
    pub tree: bool,
    pub command: Command,
}

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Attach(#[from] Error),
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// The least time between two searches for the names of new inversions' and races' objects.
const LIVE_NAMES_EVERY: Duration = Duration::from_secs(2);

/// What is sampled: one process, or with `--tree` every Python process below it.
enum Source {
    One(Session),
    Tree(Tree),
}

impl Source {
    fn take(&mut self) -> Result<snapshot::Snapshot, Error> {
        match self {
            Source::One(t) => snapshot::take(t),
            Source::Tree(t) => t.snapshot(),
        }
    }
    fn alive(&self) -> bool {
        match self {
            Source::One(t) => t.alive(),
            Source::Tree(t) => crate::target::procfs::exists(t.root),
        }
    }
    /// The root process, as the document's first process.
    fn process(&self) -> Option<Process> {
        match self {
            Source::One(t) => Some(t.process.clone()),
            Source::Tree(t) => t
                .targets
                .get(&t.root)
                .or_else(|| t.targets.values().next())
                .map(|t| t.process.clone()),
        }
    }
    fn set_locals(&mut self, on: bool) {
        match self {
            Source::One(t) => t.read.locals = on,
            Source::Tree(tree) => {
                tree.read.locals = on;
                for t in tree.targets.values_mut() {
                    t.read.locals = on;
                }
            }
        }
    }
}

/// What the UI asks of the sampling thread.
#[derive(Debug)]
enum Control {
    Pause(bool),
    Locals(bool),
}

/// Attach (errors are reported before the screen changes), then run the dashboard until `q`,
/// Ctrl-C or a signal.
pub fn run(opts: TopOptions) -> Result<(), TopError> {
    let target = if opts.tree {
        Source::Tree(Tree::attach(opts.pid, ReadOptions::default())?)
    } else {
        Source::One(Session::attach(opts.pid, ReadOptions::default())?)
    };
    crate::watch::install_signal_handlers();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<Event>();
    let (ctl_tx, ctl_rx) = mpsc::channel::<Control>();
    {
        let tx = tx.clone();
        let (rate, command) = (opts.rate, opts.command.clone());
        std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let crashed = tx.clone();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    sample_loop(target, rate, command, started, tx, ctl_rx)
                }));
                if let Err(e) = r {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let _ = crashed.send(Event::SamplerError(format!("sampler stopped: {msg}")));
                }
            })?;
    }
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("input".into())
            .spawn(move || {
                while let Ok(ev) = crossterm::event::read() {
                    if tx.send(Event::Input(ev)).is_err() {
                        break;
                    }
                }
            })?;
    }
    std::thread::Builder::new()
        .name("tick".into())
        .spawn(move || tick_loop(started, tx))?;

    let mut app = App::new(opts.pid, opts.rate);
    app.tree = opts.tree;
    // Lets the end-to-end tests check that a panic on the UI thread restores the terminal.
    let panic_for_test = std::env::var_os("GRIDLOCK_TEST_PANIC_IN_TOP").is_some();
    let mut guard = term::Guard::enter()?;
    loop {
        guard.terminal.draw(|f| views::draw(f, &app))?;
        if panic_for_test && app.doc.is_some() {
            panic!("GRIDLOCK_TEST_PANIC_IN_TOP is set");
        }
        let Ok(first) = rx.recv() else { break };
        // Apply everything already queued before drawing again: one frame per burst.
        let mut effects = app.update(first);
        while let Ok(ev) = rx.try_recv() {
            effects.extend(app.update(ev));
        }
        for effect in effects {
            match effect {
                Effect::Quit => {}
                Effect::Pause(p) => {
                    let _ = ctl_tx.send(Control::Pause(p));
                }
                Effect::Locals(l) => {
                    let _ = ctl_tx.send(Control::Locals(l));
                }
                Effect::Save(doc) => {
                    let saved = save(&doc, opts.pid).map_err(|e| e.to_string());
                    app.update(Event::Saved(saved));
                }
            }
        }
        if app.quit {
            break;
        }
    }
    drop(guard);
    Ok(())
}

/// Write the document to `gridlock-top-PID-UNIXTIME.json` in the current directory.
fn save(doc: &Document, pid: i32) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let path = std::env::current_dir()?.join(format!("gridlock-top-{pid}-{secs}.json"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    crate::report::json(doc, &mut file)?;
    std::io::Write::flush(&mut file)?;
    Ok(path)
}

fn sample_loop(
    mut target: Source,
    requested: f64,
    command: Command,
    started: Instant,
    tx: Sender<Event>,
    ctl: Receiver<Control>,
) {
    let mut acc = Accumulator::over_time();
    // Names for inversions and races, searched for on this thread, not the screen's.
    let mut names = crate::analysis::program_names::LiveNames::new(LIVE_NAMES_EVERY);
    let min_interval = Duration::from_secs_f64(1.0 / requested);
    let mut cost_avg: Option<f64> = None;
    let mut paused = false;
    // The root's identity, kept for the document after a tree's root is gone.
    let mut root = target.process();
    loop {
        let due = Instant::now();
        let cpu0 = thread_cpu();
        if !paused {
            match target.take() {
                Ok(snap) => {
                    let at = snap
                        .taken
                        .elapsed()
                        .map(|ago| started.elapsed().saturating_sub(ago))
                        .unwrap_or_else(|_| started.elapsed())
                        .as_secs_f64();
                    acc.push(snap);
                    if let Source::One(session) = &target {
                        names.refresh(&mut acc, session);
                    }
                    if let Some(p) = target.process() {
                        root = Some(p);
                    }
                    let Some(process) = root.clone() else {
                        continue;
                    };
                    let doc = acc.live_document(process, command.clone());
                    let cost = thread_cpu().saturating_sub(cpu0);
                    let avg = match cost_avg {
                        None => cost.as_secs_f64(),
                        Some(a) => 0.8 * a + 0.2 * cost.as_secs_f64(),
                    };
                    cost_avg = Some(avg);
                    let interval = adapted_interval(min_interval, avg);
                    let sample = Sample {
                        doc,
                        at,
                        rate: 1.0 / interval.as_secs_f64(),
                        cost,
                    };
                    if tx.send(Event::Sample(Box::new(sample))).is_err() {
                        return;
                    }
                }
                Err(Error::TargetExited { .. }) => {
                    let _ = tx.send(Event::TargetExited);
                    return;
                }
                Err(_) if !target.alive() => {
                    let _ = tx.send(Event::TargetExited);
                    return;
                }
                // A read that raced the target's own updates: the next sample will do.
                Err(e) => {
                    if tx.send(Event::SamplerError(e.to_string())).is_err() {
                        return;
                    }
                }
            }
        }
        let interval = match cost_avg {
            Some(avg) => adapted_interval(min_interval, avg),
            None => min_interval,
        };
        // Sleep until the next sample, waking at once for a control message.
        loop {
            let left = (due + interval).saturating_duration_since(Instant::now());
            match ctl.recv_timeout(left) {
                Ok(Control::Pause(p)) => paused = p,
                Ok(Control::Locals(l)) => target.set_locals(l),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if left.is_zero() {
                break;
            }
        }
    }
}

/// The time between samples: the requested one, or longer when a snapshot's CPU cost
/// (`cost_secs`, averaged) would otherwise exceed the sampling budget.
fn adapted_interval(requested: Duration, cost_secs: f64) -> Duration {
    requested.max(Duration::from_secs_f64(
        (cost_secs / SAMPLING_BUDGET).clamp(0.0, 60.0),
    ))
}

fn tick_loop(started: Instant, tx: Sender<Event>) {
    let mut last: Option<(Instant, Duration)> = None;
    let mut cpu = None;
    loop {
        std::thread::sleep(TICK);
        let sig = crate::watch::RECEIVED_SIGNAL.swap(0, Ordering::SeqCst);
        if sig != 0 && tx.send(Event::Signal(sig)).is_err() {
            return;
        }
        let now = Instant::now();
        if let Some(used) = process_cpu() {
            match last {
                Some((t, u)) if now.duration_since(t) >= Duration::from_secs(1) => {
                    let wall = now.duration_since(t).as_secs_f64();
                    cpu = Some(used.saturating_sub(u).as_secs_f64() / wall * 100.0);
                    last = Some((now, used));
                }
                None => last = Some((now, used)),
                _ => {}
            }
        }
        let tick = Tick {
            elapsed: started.elapsed().as_secs_f64(),
            cpu,
        };
        if tx.send(Event::Tick(tick)).is_err() {
            return;
        }
    }
}

/// CPU time used by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// gridlock's own CPU time (user + system), from /proc/self/stat.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_millis(ticks * 1000 / hz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_adapts_down_only_when_a_snapshot_is_expensive() {
        let tenth = Duration::from_millis(100);
        // 2 ms a snapshot at 10 Hz is 2% of a core: keep the rate.
        assert_eq!(adapted_interval(tenth, 0.002), tenth);
        // 20 ms a snapshot would be 20%: sample every 400 ms (5%).
        assert_eq!(adapted_interval(tenth, 0.020), Duration::from_millis(400));
    }

    #[test]
    fn reads_own_cpu_time() {
        assert!(process_cpu().is_some());
        assert!(thread_cpu() > Duration::ZERO);
    }
}
