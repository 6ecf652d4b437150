//! `gridlock watch`: a node agent. Finds the CPython processes of the host (or those the
//! filters select), attaches to new ones as they appear and forgets those that exit, samples
//! each at a low rate within a CPU budget, and exports the findings that persisted as
//! Prometheus metrics, JSON event lines and kept reports. A process that cannot be read is a
//! counted error, never the agent's end. Reads targets only; never stops one.

pub mod budget;
pub mod events;
pub mod fleet;
pub mod host;
pub mod http;
pub mod labels;
pub mod metrics;
pub mod options;

pub use options::WatchOptions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Command;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot serve metrics on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the events file {path}: {source}")]
    Events {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot use the report folder {path}: {source}")]
    ReportDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Run the agent until `stop` holds a signal number (set by the caller's signal handler).
/// Prints where metrics are served to stderr once listening.
pub fn run(opts: &WatchOptions, command: Command, stop: &AtomicI32) -> Result<(), AgentError> {
    let metrics = Arc::new(metrics::Metrics::new());
    if let Some(addr) = opts.metrics {
        let server = http::serve(addr, metrics.clone())
            .map_err(|source| AgentError::Listen { addr, source })?;
        eprintln!(
            "gridlock watch: serving metrics on http://{}/metrics",
            server.addr
        );
    }
    let mut events = match &opts.events {
        Some(sink) => Some(
            events::Events::open(sink).map_err(|source| AgentError::Events {
                path: match sink {
                    events::EventSink::File(p) => p.clone(),
                    events::EventSink::Stdout => "-".into(),
                },
                source,
            })?,
        ),
        None => None,
    };
    if let Some(dir) = &opts.report_dir {
        std::fs::create_dir_all(dir).map_err(|source| AgentError::ReportDir {
            path: dir.clone(),
            source,
        })?;
    }
    let mut fleet = fleet::Fleet::new();
    let mut budget = budget::Budget::new(opts.rate, opts.max_cpu);
    let mut meter = budget::CpuMeter::start();
    let mut interval = Duration::from_secs_f64(1.0 / opts.rate);
    metrics.sample_rate.set(opts.rate);
    while stop.load(Ordering::SeqCst) == 0 {
        let started = Instant::now();
        let mut pass = fleet::Pass {
            opts,
            metrics: &metrics,
            events: events.as_mut(),
            command: &command,
        };
        fleet.refresh(&mut pass);
        fleet.sample(&mut pass);
        metrics.targets.set(fleet.targets() as i64);
        metrics.scan_seconds.set(started.elapsed().as_secs_f64());
        sleep_unless_stopped(started + interval, stop);
        // What the whole period cost (the pass, the scrapes, the sleep), against the budget.
        let (used, share) = meter.lap();
        budget.observe(used);
        metrics.cpu_share.set(share);
        let rate = budget.rate();
        metrics.sample_rate.set(rate);
        metrics.cpu_limited.set(budget.limited() as i64);
        interval = Duration::from_secs_f64(1.0 / rate);
    }
    Ok(())
}

/// Sleep until `until`, waking early when a signal arrives.
fn sleep_unless_stopped(until: Instant, stop: &AtomicI32) {
    const SLICE: Duration = Duration::from_millis(100);
    loop {
        let now = Instant::now();
        if now >= until || stop.load(Ordering::SeqCst) != 0 {
            return;
        }
        std::thread::sleep((until - now).min(SLICE));
    }
}
