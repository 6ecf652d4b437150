//! GIL use over a stream of samples (`record`, `top`): per thread, the share of samples it
//! held the GIL, its longest hold, and how long it waited for it. Computed in `analysis`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct GilUse {
    /// Samples taken (each one read who holds the main interpreter's GIL).
    pub samples: usize,
    /// Samples in which some thread held it.
    pub held_samples: usize,
    /// Samples in which at least one thread waited for it (`gil_wait`).
    pub contended_samples: usize,
    /// The most threads seen waiting for it in one sample.
    pub max_waiters: usize,
    /// Every thread that held or waited for it, the one that held it most first.
    pub threads: Vec<GilThreadUse>,
    /// One entry per GIL seen contended (a subinterpreter with a GIL of its own has its own),
    /// in the order first seen: the counts above merge every GIL of the process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gils: Vec<GilLockUse>,
}

/// One GIL's use over the samples in which some thread waited for it (a GIL is a lock node
/// only then: uncontended samples say nothing of which GIL a holder held).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct GilLockUse {
    /// The GIL's lock id in the documents (`locks[].id`).
    pub lock: String,
    /// "the GIL", "the GIL of interpreter 1".
    pub name: Option<String>,
    /// Samples in which at least one thread waited for this GIL.
    pub contended_samples: usize,
    /// The most threads seen waiting for it in one sample.
    pub max_waiters: usize,
    /// The thread seen holding it in most of its contended samples, and in how many (none
    /// when no holder was known).
    pub top_holder: Option<String>,
    pub top_holder_samples: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct GilThreadUse {
    /// The thread's document id (it may have exited since).
    pub thread: String,
    pub name: Option<String>,
    /// Samples the thread was seen in.
    pub samples: usize,
    /// Samples in which it held the GIL.
    pub held: usize,
    /// `held` over all samples of the recording.
    pub share: f64,
    /// Its longest run of consecutive samples holding the GIL, in seconds from the first
    /// sample of the run to the last (a lower bound: switches between samples are not seen).
    pub longest_hold_s: f64,
    pub longest_hold_samples: usize,
    /// Samples in which it waited for the GIL.
    pub waited: usize,
    /// Its longest run of consecutive samples waiting, in seconds, as `longest_hold_s`.
    pub longest_wait_s: f64,
    /// The most threads seen waiting for the GIL in one sample while this thread held it.
    pub max_waiters_while_held: usize,
}

impl GilThreadUse {
    /// `held 96% of samples, longest hold 3.0 s (300 samples) while up to 3 waited; waited 2%,
    /// longest wait 0.1 s`: the parts that apply.
    pub fn summary(&self) -> String {
        let t = self;
        let mut parts = Vec::new();
        if t.held > 0 {
            let waiters = match t.max_waiters_while_held {
                0 => String::new(),
                w => format!(" while up to {w} waited"),
            };
            parts.push(format!(
                "held {} of samples, longest hold {:.1} s ({} sample{}){waiters}",
                percent(t.share),
                t.longest_hold_s,
                t.longest_hold_samples,
                if t.longest_hold_samples == 1 { "" } else { "s" }
            ));
        }
        if t.waited > 0 {
            parts.push(format!(
                "waited in {} of its samples, longest wait {:.1} s",
                percent(t.waited as f64 / t.samples.max(1) as f64),
                t.longest_wait_s
            ));
        }
        parts.join("; ")
    }
}

/// `96%`.
pub fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

impl GilUse {
    /// What a thread did with the GIL, if it held or waited for it.
    pub fn thread(&self, id: &str) -> Option<&GilThreadUse> {
        self.threads.iter().find(|t| t.thread == id)
    }
}
