//! The command line (clap derive).

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::model::FindingKind;

pub const EXIT_CODES: &str = "EXIT STATUS:
  0  nothing that fails was found
  1  gridlock could not do its job (no such process, not Python, permission denied,
     unsupported version, target exited)
  2  usage error; bad input (dump --core: not a core, truncated or corrupt, or binaries
     that are not the ones the core mapped); an incomplete report
  3  a failing finding: deadlock, stall, orphaned_lock or hang by default (see --fail-on)";

/// `gridlock --version`: the version, then the CPython builds gridlock reads.
pub static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    let versions = crate::cpython::supported_versions();
    format!(
        "{version}\n\
         CPython builds it reads: {list} (default builds, with the GIL), on 64-bit Linux (tested on x86-64);\n\
         \x20 libpython as a shared library (pyenv, python.org, most distributions) or linked into the\n\
         \x20 executable (Debian's static python3.X). Free-threaded builds (3.13t) are not supported.",
        version = env!("CARGO_PKG_VERSION"),
        list = versions.join(", "),
    )
});

#[derive(Debug, Parser)]
#[command(
    name = "gridlock",
    version,
    long_version = LONG_VERSION.as_str(),
    about = "Tells you why a Python process is stuck: deadlocks, stalls and orphaned locks, read from outside the running process",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Sample a running CPython process over a short window and report who holds and who waits
    #[command(after_help = EXIT_CODES)]
    Dump(DumpArgs),
    /// Run a command, watch it and the Python processes it starts, and stop it with a report
    /// when it deadlocks, stalls or hangs (exit 3), or runs out of time (exit 124)
    #[command(after_help = RUN_EXIT_CODES)]
    Run(RunArgs),
    /// Sample a running process over a window and report what only time reveals:
    /// lock-order inversions (latent deadlocks), plus everything dump finds that persisted
    #[command(after_help = EXIT_CODES)]
    Record(RecordArgs),
    /// A live terminal dashboard of a running process: threads, wait-for graph and findings
    /// as they appear (keys: Tab views, Enter detail, / filter, s sort, p pause, d save, ? help, q quit)
    #[command(after_help = TOP_EXIT_CODES)]
    Top(TopArgs),
    /// A node agent: watch every CPython process of this host (or those the filters select),
    /// sample each at a low rate within a CPU budget, and export the findings that persist as
    /// Prometheus metrics (GET /metrics), JSON event lines and kept reports
    #[command(after_help = WATCH_EXIT_CODES)]
    Watch(WatchArgs),
    /// Print a shell completion script, e.g. `gridlock completions bash > /etc/bash_completion.d/gridlock`
    Completions(CompletionsArgs),
    /// Print the man page gridlock(1) in roff, e.g. `gridlock man | man -l -`; --out-dir writes
    /// gridlock.1 and one gridlock-SUBCOMMAND.1 per subcommand
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write gridlock.1 and gridlock-SUBCOMMAND.1 pages into this folder instead of printing gridlock(1)
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub const TOP_EXIT_CODES: &str = "EXIT STATUS:
  0  the dashboard was closed (q, Ctrl-C); findings do not change it
  1  gridlock could not attach (no such process, not Python, permission denied, unsupported)
  2  usage error";

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Process id of the running CPython process (3.8 and newer)
    pub pid: i32,

    /// Samples per second, 0.01 to 1000 (lowered automatically when the target
    /// is too large to sample this fast)
    #[arg(long, default_value_t = 10.0, value_parser = rate_up_to(1000.0), value_name = "HZ")]
    pub rate: f64,

    /// Sample every Python process below PID too, with the waits between them (the Processes view)
    #[arg(long)]
    pub tree: bool,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Process id of the running CPython process (3.8 and newer)
    pub pid: i32,

    /// How long to sample (1ms to 720h). A target that exits before the end: the report shows
    /// what was recorded and when it exited, and the exit status is 1
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,

    /// Samples per second, 0.01 to 10000
    #[arg(long, default_value_t = 100.0, value_parser = rate_up_to(10_000.0), value_name = "HZ")]
    pub rate: f64,

    /// Print the report contract's JSON document instead of text
    #[arg(long)]
    pub json: bool,

    /// Finding kinds that make the exit status 3, e.g. lock_order_inversion (in addition to the error kinds)
    #[arg(long, value_delimiter = ',', value_parser = parse_kind, value_name = "KIND,...")]
    pub fail_on: Vec<FindingKind>,

    /// Report an event-loop step (task step or callback) that holds the loop longer than this
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
    pub loop_threshold: Duration,

    /// Colour the text report: auto (when stdout is a terminal), always, never
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,

    /// Sample every Python process below PID too (following new ones), with the waits between them
    #[arg(long)]
    pub tree: bool,

    /// Native frames of running threads too: at every sample each running thread is stopped
    /// briefly with ptrace (one at a time, at most 100ms each, never left stopped)
    #[arg(long)]
    pub native: bool,
}

pub const RUN_EXIT_CODES: &str = "EXIT STATUS:
  CMD's own status when nothing fails (128+N if it was killed by signal N), once every process
       of its tree has exited (gridlock is the tree's subreaper: what CMD leaves running is
       still watched, and killed on a finding or --timeout; a killed gridlock takes the tree
       with it)
  1    gridlock could not start CMD
  2    usage error
  3    a failing finding (deadlock, stall, orphaned_lock, hang; see --fail-on): the report is
       written, the whole process tree is killed
  124  --timeout ran out (after writing the report, like timeout(1))
  128+N  gridlock received SIGINT/SIGTERM (N): it writes the report, then passes the signal on";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Write the report contract's JSON document to FILE when the run ends
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write a JUnit XML file with one failed test case per failing finding
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Stop CMD after this long: report, kill the tree, exit 124
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,

    /// Report a hang when nothing in the tree made progress for this long
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub hang_after: Duration,

    /// Samples per second, 0.01 to 1000
    #[arg(long, default_value_t = 10.0, value_parser = rate_up_to(1000.0), value_name = "HZ")]
    pub rate: f64,

    /// How long a finding must persist before the run is stopped
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub window: Duration,

    /// Finding kinds that fail the run, comma-separated (in addition to the error kinds)
    #[arg(long, value_delimiter = ',', value_parser = parse_kind, value_name = "KIND,...")]
    pub fail_on: Vec<FindingKind>,

    /// Load gridlock's in-target probe into CMD and every Python process it starts (through
    /// PYTHONPATH and a sitecustomize hook; no file of yours is changed): exact owners for
    /// every lock created from then on, and every lock-order inversion of the run
    #[arg(long)]
    pub probe: bool,

    /// Report an event-loop step (task step or callback) that holds the loop longer than this
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
    pub loop_threshold: Duration,

    /// Say on stderr why a failing finding's window restarted (a process that could not be
    /// read in a sample, a finding gone from the latest sample)
    #[arg(long, short)]
    pub verbose: bool,

    /// The command to run, after `--`
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Process id of the running CPython process (3.8 and newer)
    #[arg(required_unless_present = "core")]
    pub pid: Option<i32>,

    /// Read a core dump instead of a running process (gdb's gcore, the kernel's, or
    /// systemd-coredump's zstd/lz4/xz-compressed ones): one snapshot of the moment it was
    /// dumped. A file that is not a readable core, or binaries that are not the ones the core
    /// mapped, exit 2
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pid", "tree"])]
    pub core: Option<PathBuf>,

    /// With --core: the dumped process's executable, when it is not at the path the core names
    #[arg(long, value_name = "PATH", requires = "core")]
    pub executable: Option<PathBuf>,

    /// With --core: the directory the dumped process saw as / (a container's or a chroot's
    /// root); the binaries the core names are read from under it
    #[arg(long, value_name = "DIR", requires = "core")]
    pub sysroot: Option<PathBuf>,

    /// Print the report contract's JSON document instead of text
    #[arg(long)]
    pub json: bool,

    /// Also write the wait-for graph as Graphviz DOT to FILE (`-` for stdout)
    #[arg(long, value_name = "FILE")]
    pub dot: Option<PathBuf>,

    /// Include each frame's local variables (names and short reprs)
    #[arg(long)]
    pub locals: bool,

    /// Sample every Python process in the tree rooted at PID together, and follow waits
    /// across processes: multiprocessing locks and semaphores, child exits, pipes and sockets
    #[arg(long)]
    pub tree: bool,

    /// How long to sample (1ms to 720h): findings must persist over the whole window; 0 takes
    /// one snapshot
    #[arg(long, default_value = "1s", value_parser = parse_window, value_name = "DURATION")]
    pub window: Duration,

    /// Finding kinds that make the exit status 3, comma-separated (default: the error kinds)
    #[arg(long, value_delimiter = ',', value_parser = parse_kind, value_name = "KIND,...")]
    pub fail_on: Vec<FindingKind>,

    /// Report an event-loop step (task step or callback) that holds the loop longer than this
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
    pub loop_threshold: Duration,

    /// Colour the text report: auto (when stdout is a terminal), always, never
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub color: String,

    /// Native frames of running threads too: each running thread is stopped briefly with
    /// ptrace (one at a time, at most 100ms each, never left stopped) for its registers.
    /// Threads blocked below Python get native frames without it, and without a stop
    #[arg(long, conflicts_with = "core")]
    pub native: bool,
}

pub const WATCH_EXIT_CODES: &str = "EXIT STATUS:
  0  stopped by SIGINT or SIGTERM
  1  gridlock could not start (the metrics address is taken, the events file or report
     folder cannot be written, no such user)
  2  usage error";

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only these processes (comma-separated or repeated)
    #[arg(long, value_delimiter = ',', value_name = "PID,...")]
    pub pid: Vec<i32>,

    /// Only processes whose name (/proc/PID/comm) matches this regular expression
    #[arg(long, value_parser = parse_regex, value_name = "REGEX")]
    pub comm: Option<regex::Regex>,

    /// Only processes of this user (name or uid)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Only processes whose cgroup path (/proc/PID/cgroup) starts with PREFIX, e.g. /kubepods
    #[arg(long, value_name = "PREFIX")]
    pub cgroup: Option<String>,

    /// Only children of this process (a supervisor, a test)
    #[arg(long, value_name = "PID")]
    pub ppid: Option<i32>,

    /// Passes over every process per second, 0.01 to 100 (lowered when --max-cpu requires)
    #[arg(long, default_value_t = 1.0, value_parser = rate_up_to(100.0), value_name = "HZ")]
    pub rate: f64,

    /// How long a finding must persist before it is exported
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub window: Duration,

    /// The agent's CPU budget in percent of one core: the rate is lowered to stay within it
    #[arg(long, default_value_t = 5.0, value_parser = parse_percent, value_name = "PERCENT")]
    pub max_cpu: f64,

    /// Serve Prometheus/OpenMetrics metrics on ADDR (GET /metrics); `none` serves nothing
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub metrics: String,

    /// Write one JSON line per finding that appears or clears, with the process's whole
    /// report, to FILE (appended) or `-` (stdout)
    #[arg(long, value_name = "FILE")]
    pub events: Option<String>,

    /// Keep the newest report of each stuck process as DIR/PID.json
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,

    /// Add the command line as a `cmdline` label (off by default: arguments can hold secrets)
    #[arg(long)]
    pub label_cmdline: bool,

    /// Report an event-loop step (task step or callback) that holds the loop longer than this
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
    pub loop_threshold: Duration,
}

fn parse_regex(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| format!("invalid regular expression: {e}"))
}

/// A CPU share in percent of one core, above 0 and at most 100 per core of the host.
fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim().trim_end_matches('%').parse::<f64>() {
        Ok(p)
            if p > 0.0
                && p <= 100.0
                    * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64 =>
        {
            Ok(p)
        }
        _ => Err(format!(
            "invalid CPU budget {s:?}: use a percentage of one core, e.g. 5"
        )),
    }
}

/// Every duration option but `dump --window`: 1 ms to 30 days.
fn parse_duration(s: &str) -> Result<Duration, crate::duration::DurationError> {
    crate::duration::parse(s)
}

/// `dump --window`, where 0 means one snapshot.
fn parse_window(s: &str) -> Result<Duration, crate::duration::DurationError> {
    crate::duration::parse_or_zero(s)
}

/// A sample rate in Hz, from 0.01 (one sample per 100 s: the interval stays a sane
/// duration) to `max`.
fn rate_up_to(max: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| match s.trim().parse::<f64>() {
        Ok(r) if (0.01..=max).contains(&r) => Ok(r),
        _ => Err(format!(
            "invalid rate {s:?}: use a number of samples per second from 0.01 to {max}"
        )),
    }
}

fn parse_kind(s: &str) -> Result<FindingKind, String> {
    FindingKind::parse(s).ok_or_else(|| {
        format!("unknown finding kind {s:?}: use deadlock, stall, orphaned_lock, hang, lock_order_inversion, race, loop_block")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
