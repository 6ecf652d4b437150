//! One snapshot of a loop with many tasks, without `record`'s per-sample analysis: the time
//! `snapshot::take` needs to read every thread and every task (with await stacks) of
//! `asyncio_target.py tasks N`, for each pyenv CPython 3.8-3.13 found (or the interpreters
//! given). Prints the median and the fastest of ROUNDS snapshots; asserts nothing.
//!
//!     cargo bench --bench asyncio_snapshot                  # N=10000, ROUNDS=20
//!     N=1000 ROUNDS=50 cargo bench --bench asyncio_snapshot -- /usr/bin/python3.11

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use gridlock::snapshot;
use gridlock::snapshot::Session;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn interpreters() -> Vec<PathBuf> {
    let given: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .collect();
    if !given.is_empty() {
        return given;
    }
    let root = Command::new("pyenv")
        .arg("root")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| format!("{}/.pyenv", std::env::var("HOME").unwrap_or_default()));
    // Versions gridlock supports, in version order (3.10 after 3.9).
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(format!("{root}/versions"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let minor: u32 = name.strip_prefix("3.")?.split('.').next()?.parse().ok()?;
                    let py = e.path().join("bin/python3");
                    ((8..=13).contains(&minor) && py.exists()).then_some((minor, py))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

fn main() {
    let n = env_or("N", 10_000);
    let rounds = env_or("ROUNDS", 20).max(1);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/asyncio_target.py");
    println!("snapshot::take of a loop with {n} parked tasks, {rounds} snapshots per interpreter");
    for py in interpreters() {
        let mut child = Command::new(&py)
            .args([script, "tasks", &n.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the target");
        let mut line = String::new();
        let ready = BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .is_ok()
            && line.starts_with("READY");
        let result = if ready {
            measure(child.id() as i32, rounds)
        } else {
            Err("the target never printed READY".into())
        };
        let _ = child.kill();
        let _ = child.wait();
        match result {
            Ok((median, fastest, tasks)) => println!(
                "  {:<45} median {median:>7.1} ms, fastest {fastest:>7.1} ms ({tasks} tasks read)",
                py.display()
            ),
            Err(e) => println!("  {:<45} {e}", py.display()),
        }
    }
}

/// (median ms, fastest ms, tasks in the last snapshot)
fn measure(pid: i32, rounds: usize) -> Result<(f64, f64, usize), String> {
    let mut target = Session::attach(pid, Default::default()).map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    let mut tasks = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let snap = snapshot::take(&mut target).map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        tasks = snap.tasks.len();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0], tasks))
}
