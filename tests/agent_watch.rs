//! `gridlock watch`, the node agent, end to end: a real Prometheus scrapes it while real
//! targets deadlock, run healthy, exit and churn. The agent is restricted to each test's own
//! processes (`--pid`, `--ppid`) so tests running side by side do not see each other's.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{example, fixture, gridlock_bin, interpreters, Interpreter, Target};

/// A spawned helper process, killed and reaped on drop (even when the test fails).
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A folder of this test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "gridlock-agent-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on loopback: the body of a 200 answer.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then_some(())
        .filter(|_| head.split_whitespace().nth(1) == Some("200"))?;
    Some(body.to_string())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Wait (polling every 250 ms) until `check` returns something, or `limit` passes.
fn wait_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(t) = check() {
            return Some(t);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `gridlock watch` serving metrics on a port of its own.
struct Agent {
    port: u16,
    process: Spawned,
}

impl Agent {
    fn start(args: &[&str]) -> Agent {
        let port = free_port();
        let child = Command::new(gridlock_bin())
            .arg("watch")
            .args(args)
            .args(["--metrics", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gridlock watch");
        let mut agent = Agent {
            port,
            process: Spawned(child),
        };
        let up = wait_until(Duration::from_secs(30), || http_get(port, "/metrics"));
        let status = agent.process.0.try_wait().ok().flatten();
        assert!(
            up.is_some(),
            "gridlock watch did not serve metrics on {port} (exit status {status:?})"
        );
        agent
    }

    fn pid(&self) -> i32 {
        self.process.0.id() as i32
    }

    fn metrics(&self) -> String {
        http_get(self.port, "/metrics").expect("a scrape of gridlock watch")
    }
}

/// The value of an unlabelled series in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Every pid a family has a series for in an exposition.
fn pids_of(text: &str, family: &str) -> Vec<i32> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .filter_map(|l| {
            let at = l.find("pid=\"")? + 5;
            l[at..].split('"').next()?.parse().ok()
        })
        .collect()
}

/// A real Prometheus scraping the agent every second, with its own ports and storage.
struct Prometheus {
    port: u16,
    _process: Spawned,
}

impl Prometheus {
    fn start(scrape_port: u16, dir: &Path) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: gridlock\n    static_configs:\n      - targets: ['127.0.0.1:{scrape_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("prometheus.log")).unwrap(),
            ))
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            port,
            _process: Spawned(child),
        };
        assert!(
            wait_until(Duration::from_secs(60), || http_get(port, "/-/ready")).is_some(),
            "prometheus did not get ready: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        p
    }

    /// An instant query's result vector.
    fn query(&self, q: &str) -> Vec<Value> {
        let Some(body) = http_get(self.port, &format!("/api/v1/query?query={}", urlencode(q)))
        else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// pid -> value of every series a query returns.
    fn by_pid(&self, q: &str) -> Vec<(i32, String)> {
        self.query(q)
            .iter()
            .filter_map(|r| {
                Some((
                    r["metric"]["pid"].as_str()?.parse().ok()?,
                    r["value"][1].as_str()?.to_string(),
                ))
            })
            .collect()
    }
}

/// One interpreter of each family the tests cover: a pyenv 3.8-3.10, a 3.11/3.12 and the
/// Debian root's 3.14, those present (at least one).
fn representative() -> Vec<Interpreter> {
    let all = interpreters();
    let mut out: Vec<Interpreter> = Vec::new();
    let picks: [&dyn Fn(&Interpreter) -> bool; 3] = [
        &|i| (8..=10).contains(&i.minor) && i.root.is_none(),
        &|i| (11..=12).contains(&i.minor) && i.root.is_none(),
        &|i| i.label.starts_with("sid-3.14"),
    ];
    for pick in picks {
        if let Some(i) = all.iter().find(|i| pick(i)) {
            out.push(i.clone());
        }
    }
    if out.is_empty() {
        out.push(all[0].clone());
    }
    out
}

fn tools_or_skip() -> bool {
    let ok = have("prometheus") && have("promtool");
    if !ok {
        eprintln!("note: prometheus/promtool not installed (scripts/test installs Debian's prometheus): skipped");
    }
    ok
}

#[test]
fn prometheus_sees_deadlocks_appear_and_clear_and_never_a_healthy_one() {
    if !tools_or_skip() {
        return;
    }
    let pys = representative();
    let mut banks: Vec<Target> = pys
        .iter()
        .map(|py| Target::start(py, &example("bank_transfer.py"), &[]))
        .collect();
    let healthy = Target::start_busy(&pys[0], &fixture("healthy_busy.py"), &[]);
    let labels: Vec<String> = banks.iter().map(|t| t.label.clone()).collect();
    eprintln!("interpreters: {labels:?}");
    let dir = TempDir::new("deadlock");
    let events = dir.0.join("events.jsonl");
    let reports = dir.0.join("reports");
    let pids: Vec<String> = banks
        .iter()
        .map(|t| t.pid)
        .chain([healthy.pid])
        .map(|p| p.to_string())
        .collect();
    let agent = Agent::start(&[
        "--pid",
        &pids.join(","),
        "--rate",
        "4",
        "--window",
        "1s",
        "--max-cpu",
        "50",
        "--events",
        events.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    let prom = Prometheus::start(agent.port, &dir.0);

    // Every deadlocked target's series reaches 1; the healthy one never has a finding.
    let found = wait_until(Duration::from_secs(90), || {
        let any = prom.by_pid("gridlock_findings");
        assert!(
            !any.iter().any(|(p, _)| *p == healthy.pid),
            "a finding for the healthy target: {any:?}"
        );
        let deadlocks = prom.by_pid(r#"gridlock_findings{kind="deadlock"}"#);
        banks
            .iter()
            .all(|t| deadlocks.contains(&(t.pid, "1".to_string())))
            .then_some(deadlocks)
    });
    assert!(
        found.is_some(),
        "gridlock_findings{{kind=\"deadlock\"}} did not reach 1 for every deadlocked target {labels:?}: {:?}; agent says:\n{}",
        prom.query("gridlock_findings"),
        agent.metrics()
    );
    let blocked = prom.by_pid("gridlock_blocked_threads");
    for t in &banks {
        let n: f64 = blocked
            .iter()
            .find(|(p, _)| *p == t.pid)
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0.0);
        assert!(n >= 2.0, "[{}] two tellers blocked: {blocked:?}", t.label);
    }

    // The exposition passes promtool's checks; every target is counted.
    let text = agent.metrics();
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sample(&text, "gridlock_targets"),
        Some(pids.len() as f64),
        "{text}"
    );

    // A target that exits: its series clear; the others stay.
    let killed = banks.remove(0);
    let killed_pid = killed.pid;
    drop(killed);
    let cleared = wait_until(Duration::from_secs(60), || {
        let deadlocks = prom.by_pid(r#"gridlock_findings{kind="deadlock"}"#);
        (!deadlocks.iter().any(|(p, _)| *p == killed_pid)).then_some(deadlocks)
    });
    let cleared = cleared.unwrap_or_else(|| {
        panic!(
            "the exited target's series did not clear: {:?}",
            prom.query("gridlock_findings")
        )
    });
    for t in &banks {
        assert!(
            cleared.contains(&(t.pid, "1".to_string())),
            "[{}] still deadlocked: {cleared:?}",
            t.label
        );
    }
    assert!(!pids_of(&agent.metrics(), "gridlock_blocked_threads").contains(&killed_pid));
    // Over the whole test, no series of the healthy target ever held a finding.
    let ever = prom.query(&format!(
        "count_over_time(gridlock_findings{{pid=\"{}\"}}[10m])",
        healthy.pid
    ));
    assert!(ever.is_empty(), "the healthy target had findings: {ever:?}");

    // Events: each deadlock appeared with its process's whole document; the killed one cleared
    // with its exit; nothing about the healthy target.
    let lines: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    for pid in banks.iter().map(|t| t.pid).chain([killed_pid]) {
        let appeared = lines
            .iter()
            .find(|e| e["event"] == "appeared" && e["pid"] == pid && e["kind"] == "deadlock")
            .unwrap_or_else(|| panic!("no appeared event for {pid}: {lines:?}"));
        let doc = &appeared["document"];
        assert_eq!(doc["processes"][0]["pid"], pid);
        let f = support::doc::findings(doc, "deadlock");
        assert_eq!(f.len(), 1, "{doc:#}");
        assert_eq!(
            support::doc::finding_thread_names(doc, f[0]),
            vec!["teller-1", "teller-2"]
        );
    }
    assert!(
        lines.iter().any(|e| e["event"] == "cleared"
            && e["pid"] == killed_pid
            && e["exited"] == true
            && e["document"]["processes"][0]["exited"] == true),
        "no cleared event for the exited target: {lines:?}"
    );
    assert!(!lines.iter().any(|e| e["pid"] == healthy.pid));

    // The reports kept: the stuck processes' only.
    for pid in banks.iter().map(|t| t.pid).chain([killed_pid]) {
        let text = std::fs::read_to_string(reports.join(format!("{pid}.json")))
            .unwrap_or_else(|e| panic!("no report kept for {pid}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(support::doc::findings(&doc, "deadlock").len(), 1);
    }
    assert!(!reports.join(format!("{}.json", healthy.pid)).exists());
}

#[test]
fn promtool_accepts_the_alert_rules_and_their_unit_test() {
    if !tools_or_skip() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yaml"],
        ["test", "rules", "alerts_test.yaml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// RSS of a process in KiB.
fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// How much the agent's RSS may grow between the end of the warm-up and the end of the churn.
const RSS_TOLERANCE_KIB: u64 = 4 * 1024;

#[test]
fn churn_keeps_the_agents_memory_flat_and_its_targets_consistent() {
    let all = interpreters();
    let py = all
        .iter()
        .find(|i| (11..=12).contains(&i.minor) && i.root.is_none())
        .unwrap_or(&all[0]);
    // 20 idle Python children a second for 20 s, each living 0.3 s.
    let mut churner = Target::start_busy(py, &fixture("churn.py"), &["20", "20", "0.3"]);
    let started = Instant::now();
    let agent = Agent::start(&[
        "--ppid",
        &churner.pid.to_string(),
        "--rate",
        "10",
        "--window",
        "1s",
        "--max-cpu",
        "100",
    ]);
    let mut seen = std::collections::HashSet::new();
    let mut max_targets = 0.0f64;
    let mut baseline = None;
    let mut peak_after = 0;
    while started.elapsed() < Duration::from_secs(20) {
        let text = agent.metrics();
        let targets = sample(&text, "gridlock_targets").expect("gridlock_targets");
        max_targets = max_targets.max(targets);
        seen.extend(pids_of(&text, "gridlock_blocked_threads"));
        let rss = rss_kib(agent.pid());
        if started.elapsed() >= Duration::from_secs(6) {
            baseline.get_or_insert(rss);
            peak_after = peak_after.max(rss);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let done = churner.wait_for_line("DONE", Duration::from_secs(30));
    // Every child has exited: no target, no per-process series left.
    let settled = wait_until(Duration::from_secs(15), || {
        let text = agent.metrics();
        (sample(&text, "gridlock_targets") == Some(0.0)
            && pids_of(&text, "gridlock_blocked_threads").is_empty()
            && pids_of(&text, "gridlock_findings").is_empty())
        .then_some(())
    });
    assert!(
        settled.is_some(),
        "series left after the churn: {}",
        agent.metrics()
    );
    let end = rss_kib(agent.pid());
    let baseline = baseline.expect("a reading after the warm-up");
    eprintln!(
        "churn: {done}; {} children attached; at most {max_targets} at once; agent RSS {baseline} KiB after warm-up, peak {peak_after} KiB, {end} KiB at the end",
        seen.len()
    );
    assert!(
        seen.len() >= 20,
        "the agent attached to only {} of the churned children",
        seen.len()
    );
    // About 6 live at any time (20/s living 0.3 s): never more than the live children.
    assert!(max_targets <= 20.0, "{max_targets} targets at once");
    assert!(
        peak_after.max(end) <= baseline + RSS_TOLERANCE_KIB,
        "agent RSS grew from {baseline} KiB to {} KiB over the churn",
        peak_after.max(end)
    );
}

#[test]
fn bad_options_and_a_taken_port_are_one_sentence_errors() {
    let out = Command::new(gridlock_bin())
        .args(["watch", "--comm", "("])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid regular expression"));
    let out = Command::new(gridlock_bin())
        .args(["watch", "--max-cpu", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(gridlock_bin())
        .args(["watch", "--pid", "1", "--metrics", &addr])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("gridlock: error: cannot serve metrics on {addr}")),
        "{err}"
    );
}
