//! What `watch` is asked to do: its options, built once from the command line. Imports only
//! the leaf parts they name (filters, event sinks), never the agent's loop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{events, host};

/// What `watch` looks at, how often, and where it reports: built once from the command line.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub filter: host::Filter,
    /// Passes per second asked for (the budget may lower it).
    pub rate: f64,
    /// How long a finding must persist before it counts.
    pub window: Duration,
    /// The agent's CPU budget, as a share of one core.
    pub max_cpu: f64,
    /// Where to serve `/metrics` (`None`: no server).
    pub metrics: Option<SocketAddr>,
    pub events: Option<events::EventSink>,
    pub report_dir: Option<PathBuf>,
    /// Label series with the command line (off: it can hold secrets).
    pub label_cmdline: bool,
    /// Event-loop steps longer than this are `loop_block`s.
    pub loop_threshold: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            filter: host::Filter::default(),
            rate: 1.0,
            window: Duration::from_secs(5),
            max_cpu: 0.05,
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            events: None,
            report_dir: None,
            label_cmdline: false,
            loop_threshold: crate::analysis::loops::DEFAULT_THRESHOLD,
        }
    }
}
