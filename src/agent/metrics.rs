//! The agent's metrics, in the prometheus-client crate's registry (which writes and escapes the
//! OpenMetrics text): one family per question, series per process removed when it exits or
//! its finding clears. Nothing here samples or serves.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Why a process could not be read: `gridlock_attach_errors_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    PermissionDenied,
    UnsupportedVersion,
    FreeThreaded,
    /// The interpreter was not found after every try.
    AttachFailed,
    /// Its layout could not be checked.
    Layout,
    /// An attached process whose snapshot failed (counted per failed pass).
    ReadFailed,
}

impl AttachError {
    pub const ALL: [AttachError; 6] = [
        AttachError::PermissionDenied,
        AttachError::UnsupportedVersion,
        AttachError::FreeThreaded,
        AttachError::AttachFailed,
        AttachError::Layout,
        AttachError::ReadFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttachError::PermissionDenied => "permission_denied",
            AttachError::UnsupportedVersion => "unsupported_version",
            AttachError::FreeThreaded => "free_threaded",
            AttachError::AttachFailed => "attach_failed",
            AttachError::Layout => "layout",
            AttachError::ReadFailed => "read_failed",
        }
    }
}

/// Who a series is about. Labels without a value are left out (Prometheus reads an empty
/// label as none); `cmdline` stays empty unless `--label-cmdline`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct ProcessLabels {
    pub pid: String,
    pub comm: String,
    pub container: String,
    pub pod: String,
    pub unit: String,
    pub cmdline: Option<String>,
}

impl EncodeLabelSet for ProcessLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let labels: Vec<(&str, &str)> = [
            ("pid", self.pid.as_str()),
            ("comm", self.comm.as_str()),
            ("container", self.container.as_str()),
            ("pod", self.pod.as_str()),
            ("unit", self.unit.as_str()),
            ("cmdline", self.cmdline.as_deref().unwrap_or("")),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        labels.encode(encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    pub kind: String,
    #[prometheus(flatten)]
    pub process: ProcessLabels,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the agent exports, and the registry that writes them.
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub findings: Family<FindingLabels, Gauge>,
    pub finding_age: Family<FindingLabels, FloatGauge>,
    pub blocked_threads: Family<ProcessLabels, Gauge>,
    pub loop_block_seconds: Histogram,
    pub targets: Gauge,
    pub scan_seconds: FloatGauge,
    attach_errors: Family<ReasonLabels, Counter>,
    pub sample_rate: FloatGauge,
    pub cpu_share: FloatGauge,
    pub cpu_limited: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gridlock");
        let m = Metrics {
            registry: Arc::new(Registry::default()),
            findings: Family::default(),
            finding_age: Family::default(),
            blocked_threads: Family::default(),
            // 0.1 s .. ~100 s
            loop_block_seconds: Histogram::new(exponential_buckets(0.1, 2.0, 11)),
            targets: Gauge::default(),
            scan_seconds: FloatGauge::default(),
            attach_errors: Family::default(),
            sample_rate: FloatGauge::default(),
            cpu_share: FloatGauge::default(),
            cpu_limited: Gauge::default(),
        };
        registry.register(
            "findings",
            "Findings that persisted over the window, per kind and process (absent when none)",
            m.findings.clone(),
        );
        registry.register(
            "finding_age_seconds",
            "Since when the oldest persisting finding of this kind in this process was first seen",
            m.finding_age.clone(),
        );
        registry.register(
            "blocked_threads",
            "Threads of the process in an untimed wait that only another party can end, in the last snapshot",
            m.blocked_threads.clone(),
        );
        registry.register(
            "loop_block_seconds",
            "How long each event-loop block lasted, observed when it ended",
            m.loop_block_seconds.clone(),
        );
        registry.register(
            "targets",
            "Python processes being sampled",
            m.targets.clone(),
        );
        registry.register(
            "scan_seconds",
            "Wall time of the last pass over every target (discovery and one snapshot each)",
            m.scan_seconds.clone(),
        );
        registry.register(
            "attach_errors",
            "Processes that could not be read, by reason (read_failed: per failed snapshot)",
            m.attach_errors.clone(),
        );
        registry.register(
            "sample_rate_hz",
            "Passes per second now: --rate, or less when the CPU budget lowered it",
            m.sample_rate.clone(),
        );
        registry.register(
            "cpu_share",
            "The agent's own CPU use, as a share of one core, over the last pass",
            m.cpu_share.clone(),
        );
        registry.register(
            "cpu_limited",
            "1 when --max-cpu holds the sample rate below --rate",
            m.cpu_limited.clone(),
        );
        for reason in AttachError::ALL {
            let _ = m.attach_errors.get_or_create(&ReasonLabels {
                reason: reason.as_str().into(),
            });
        }
        Metrics {
            registry: Arc::new(registry),
            ..m
        }
    }

    pub fn attach_error(&self, reason: AttachError) {
        self.attach_errors
            .get_or_create(&ReasonLabels {
                reason: reason.as_str().into(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pid: i32, comm: &str) -> ProcessLabels {
        ProcessLabels {
            pid: pid.to_string(),
            comm: comm.into(),
            container: String::new(),
            pod: String::new(),
            unit: String::new(),
            cmdline: None,
        }
    }

    #[test]
    fn series_appear_escaped_and_disappear() {
        let m = Metrics::new();
        let f = FindingLabels {
            kind: "deadlock".into(),
            process: labels(42, "py\"th\\on\nx"),
        };
        m.findings.get_or_create(&f).set(1);
        m.attach_error(AttachError::PermissionDenied);
        let text = m.encode();
        assert!(
            text.contains(r#"gridlock_findings{kind="deadlock",pid="42",comm="py\"th\\on\nx"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"gridlock_attach_errors_total{reason="permission_denied"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"gridlock_attach_errors_total{reason="read_failed"} 0"#));
        assert!(text.ends_with("# EOF\n"));
        m.findings.remove(&f);
        assert!(!m.encode().contains("gridlock_findings{"));
    }
}
