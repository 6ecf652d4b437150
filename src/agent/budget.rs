//! The agent's CPU budget: how much CPU it spent (getrusage, every thread of the agent) and the
//! sample rate that keeps it within its share of a core. The rate only goes down from what was
//! asked, never above it. Nothing here samples a target.

use std::time::{Duration, Instant};

/// The lowest rate the budget lowers to (one pass every 100 s): findings still persist over
/// a window with two snapshots, however far apart.
pub const MIN_RATE: f64 = 0.01;

/// Weight of the newest pass in the running cost estimate.
const SMOOTHING: f64 = 0.3;

/// The rate the budget allows, from what passes cost.
#[derive(Debug, Clone)]
pub struct Budget {
    /// What `--rate` asked for (passes per second).
    requested: f64,
    /// `--max-cpu` as a fraction of one core.
    max_share: f64,
    /// CPU seconds one pass costs, smoothed.
    cost: Option<f64>,
}

impl Budget {
    pub fn new(requested: f64, max_share: f64) -> Budget {
        Budget {
            requested,
            max_share,
            cost: None,
        }
    }

    /// Record what the last pass cost (CPU seconds, the agent's idle time included).
    pub fn observe(&mut self, cpu_seconds: f64) {
        let c = cpu_seconds.max(0.0);
        self.cost = Some(match self.cost {
            Some(old) => old + SMOOTHING * (c - old),
            None => c,
        });
    }

    /// Passes per second within the budget: the requested rate, or less.
    pub fn rate(&self) -> f64 {
        match self.cost {
            Some(c) if c > 0.0 => (self.max_share / c).min(self.requested).max(MIN_RATE),
            _ => self.requested,
        }
        .min(self.requested)
    }

    /// Whether the budget holds the rate below the requested one.
    pub fn limited(&self) -> bool {
        self.rate() < self.requested
    }
}

/// CPU time this process has used so far (user + system, every thread).
pub fn own_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF cannot fail.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The agent's share of one core between two readings.
#[derive(Debug)]
pub struct CpuMeter {
    at: Instant,
    cpu: Duration,
}

impl CpuMeter {
    pub fn start() -> CpuMeter {
        CpuMeter {
            at: Instant::now(),
            cpu: own_cpu(),
        }
    }

    /// CPU seconds used and the share of a core since the last reading; starts a new one.
    pub fn lap(&mut self) -> (f64, f64) {
        let (now, cpu) = (Instant::now(), own_cpu());
        let used = cpu.saturating_sub(self.cpu).as_secs_f64();
        let wall = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.cpu = cpu;
        (used, if wall > 0.0 { used / wall } else { 0.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_passes_keep_the_requested_rate() {
        let mut b = Budget::new(1.0, 0.05);
        assert_eq!(b.rate(), 1.0);
        b.observe(0.01);
        assert_eq!(b.rate(), 1.0);
        assert!(!b.limited());
    }

    #[test]
    fn costly_passes_lower_the_rate_to_the_budget_and_it_recovers() {
        let mut b = Budget::new(1.0, 0.05);
        b.observe(0.1); // 0.1 s per pass at 1 Hz is 10% of a core
        assert!((b.rate() - 0.5).abs() < 1e-9, "{}", b.rate());
        assert!(b.limited());
        for _ in 0..50 {
            b.observe(0.01);
        }
        assert_eq!(b.rate(), 1.0);
        assert!(!b.limited());
    }

    #[test]
    fn the_rate_has_a_floor() {
        let mut b = Budget::new(1.0, 0.05);
        b.observe(1000.0);
        assert_eq!(b.rate(), MIN_RATE);
    }

    #[test]
    fn own_cpu_grows_with_work() {
        let before = own_cpu();
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(own_cpu() > before);
    }
}
