//! Bad input: every way `gridlock dump` can fail gives one clear line on stderr and exit 1
//! (2 for usage errors), never a panic.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{fixture, gridlock, interpreters, proc_state, pyenv_python, Interpreter, Target};

const NOBODY: u32 = 65534;

/// A child process killed and reaped on drop, even when the test fails.
struct Guard(Child);

impl Guard {
    fn spawn(cmd: &mut Command) -> Guard {
        Guard(cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")))
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str, mode: u32) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gridlock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts gridlock failed with `code`, printed nothing on stdout and exactly one line on
/// stderr that contains every needle; returns that line.
fn assert_one_line_error(what: &str, out: &Output, code: i32, needles: &[&str]) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!(
        "{what}: exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{ctx}");
    assert_eq!(out.status.code(), Some(code), "{ctx}");
    assert!(stdout.is_empty(), "nothing on stdout: {ctx}");
    let line = stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "one line on stderr: {ctx}");
    assert!(line.starts_with("gridlock: error: "), "{ctx}");
    for needle in needles {
        assert!(
            line.contains(needle),
            "stderr should mention {needle:?}: {ctx}"
        );
    }
    line.to_string()
}

fn dump(pid: i32, extra: &[&str]) -> Output {
    let pid = pid.to_string();
    let mut args = vec!["dump", pid.as_str()];
    args.extend_from_slice(extra);
    gridlock(&args)
}

fn wait_for_state(pid: i32, want: char, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while proc_state(pid) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "process {pid} did not reach state {want} (state {:?})",
            proc_state(pid)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An interpreter for single-version tests: 3.12 if present, else the first found.
fn some_interpreter() -> Interpreter {
    let all = interpreters();
    all.iter()
        .find(|i| i.minor == 12)
        .unwrap_or(&all[0])
        .clone()
}

#[test]
fn missing_pid() {
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let free = (2..pid_max)
        .rev()
        .find(|p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid");
    let out = dump(free, &["--window", "0"]);
    assert_one_line_error(
        "missing pid",
        &out,
        1,
        &["no such process", &free.to_string()],
    );
}

#[test]
fn non_python_process() {
    let sleeper = Guard::spawn(Command::new("sleep").arg("60"));
    wait_for_state(sleeper.pid(), 'S', Duration::from_secs(5));
    let out = dump(sleeper.pid(), &["--window", "0"]);
    assert_one_line_error(
        "sleep 60",
        &out,
        1,
        &["not a Python process", "sleep", &sleeper.pid().to_string()],
    );
}

/// `python app.py & gridlock dump $!` at once: the PID may still be the shell that forked it,
/// not Python yet, or Python still making its interpreter. A process that young is looked at
/// again until it has started: here a shell that waits 0.5 s, then execs Python in its place.
#[test]
fn a_process_that_becomes_python_just_after_the_dump_starts_is_dumped() {
    let py = some_interpreter();
    for extra in [&[][..], &["--tree"]] {
        let starting = Guard::spawn(
            Command::new("sh")
                .args([
                    "-c",
                    "sleep 0.5; exec \"$0\" -c 'import time; time.sleep(60)'",
                ])
                .arg(&py.path)
                .stdin(Stdio::null())
                .stdout(Stdio::null()),
        );
        let out = dump(starting.pid(), &[&["--window", "0"], extra].concat());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "[{}] {extra:?} {text}{}",
            py.label,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("pid {} · CPython 3.", starting.pid())),
            "{extra:?} {text}"
        );
    }
}

#[test]
fn kernel_thread_is_not_python() {
    // kthreadd is pid 2 on Linux unless this runs in a pid namespace.
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if comm.trim() != "kthreadd" {
        eprintln!("skipped: pid 2 is not kthreadd here");
        return;
    }
    let out = dump(2, &["--window", "0"]);
    assert_one_line_error("kthreadd", &out, 1, &["not a Python process", "kthreadd"]);
}

#[test]
fn zombie() {
    // A Python child that exits while this test (its parent) does not reap it yet.
    let py = some_interpreter();
    let zombie = Guard::spawn(
        Command::new(&py.path)
            .args(["-c", "pass"])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    wait_for_state(zombie.pid(), 'Z', Duration::from_secs(10));
    let out = dump(zombie.pid(), &["--window", "0"]);
    assert_one_line_error("zombie", &out, 1, &["zombie", &zombie.pid().to_string()]);
}

#[test]
fn unsupported_versions_are_refused() {
    let mut tried = 0;
    for (prefix, minor) in [("2.7", 7), ("3.6", 6), ("3.7", 7)] {
        let Some((version, path)) = pyenv_python(prefix) else {
            eprintln!("skipped: no CPython {prefix} under pyenv");
            continue;
        };
        tried += 1;
        let interp = Interpreter {
            label: version.clone(),
            path,
            minor,
            root: None,
        };
        let target = Target::start(&interp, &fixture("idle.py"), &[]);
        let out = dump(target.pid, &["--window", "0"]);
        assert_one_line_error(
            &format!("CPython {version}"),
            &out,
            1,
            &[
                &format!("CPython {version}"),
                &format!(
                    "supported: CPython {}",
                    gridlock::cpython::layout::supported_range()
                ),
            ],
        );
    }
    eprintln!("checked {tried} unsupported versions");
}

#[test]
fn target_exits_mid_dump() {
    // The target sleeps 1 s after READY and exits; the 3 s window outlives it. Left unreaped
    // by this test, it ends as a zombie; run under `sh`, it is reaped and vanishes: both must
    // read as "exited".
    let interps = interpreters();
    let mut picked: Vec<&Interpreter> = interps
        .iter()
        .filter(|i| i.minor == 8 || i.minor == 13 || i.label == "debian-3.11")
        .collect();
    if picked.is_empty() {
        picked.push(&interps[0]);
    }
    for py in picked {
        let target = Target::start(py, &fixture("idle.py"), &["1.0"]);
        let started = Instant::now();
        let out = dump(target.pid, &["--window", "3s"]);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "[{}] gridlock should stop soon after the target exits",
            py.label
        );
        assert_one_line_error(
            &format!("[{}] exit mid-dump (zombie)", py.label),
            &out,
            1,
            &["exited", &target.pid.to_string()],
        );

        // Reaped: the pid disappears from /proc during the window.
        let script = format!(
            "{} {} 1.0 & echo $!; wait",
            py.path.display(),
            fixture("idle.py").display()
        );
        let mut shell = Guard::spawn(
            Command::new("sh")
                .args(["-c", &script])
                .stdout(Stdio::piped())
                .stdin(Stdio::null()),
        );
        let mut reader = std::io::BufReader::new(shell.0.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        let pid: i32 = line.trim().parse().unwrap();
        // Give the interpreter time to start (READY comes from its stdout, read below).
        line.clear();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert_eq!(line.trim(), "READY", "[{}]", py.label);
        let out = dump(pid, &["--window", "3s"]);
        assert_one_line_error(
            &format!("[{}] exit mid-dump (reaped)", py.label),
            &out,
            1,
            &["exited", &pid.to_string()],
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    // A pid that parses (this test, not Python): the usage error must come first.
    let me = &std::process::id().to_string()[..];
    let cases: &[&[&str]] = &[
        &["dump", me, "--window", "soon"],
        &["dump", me, "--window", "-1s"],
        &["dump", me, "--window", "5parsecs"],
        &["dump", me, "--fail-on", "deadlock,bogus"],
        &["dump", me, "--color", "purple"],
        &["dump"],
        &["dump", "notapid"],
        &["dump", "99999999999"],
        &["frobnicate"],
        &[],
    ];
    for args in cases {
        let out = gridlock(args);
        let stderr = text(&out.stderr);
        let ctx = format!("gridlock {args:?}: exit {:?}\nstderr: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{ctx}");
        assert_eq!(out.status.code(), Some(2), "{ctx}");
        assert!(out.stdout.is_empty(), "{ctx}");
        assert!(!stderr.trim().is_empty(), "{ctx}");
    }
    // The message names what was wrong.
    let out = gridlock(&["dump", me, "--fail-on", "bogus"]);
    assert!(text(&out.stderr).contains("bogus"));
    assert!(
        text(&out.stderr).contains("deadlock"),
        "lists the valid kinds"
    );
    let out = gridlock(&["dump", me, "--window", "soon"]);
    assert!(text(&out.stderr).contains("soon"));
    assert!(
        text(&out.stderr).contains("500ms"),
        "shows the accepted forms"
    );
    let out = gridlock(&["dump"]);
    assert!(text(&out.stderr).contains("<PID>"));
}

/// Issue 15: huge, tiny, exponent and zero durations and rates, for every option that takes
/// one: a usage error naming the value and the range, never a panic.
#[test]
fn out_of_range_durations_and_rates_are_usage_errors() {
    let me = &std::process::id().to_string()[..];
    let huge = "100000000000000000000";
    let cases: &[(&[&str], &str)] = &[
        (&["dump", me, "--window", huge], "1ms to 30 days"),
        (&["dump", me, "--window", "1e9"], "1ms to 30 days"),
        (&["dump", me, "--window", "0.1ms"], "or 0 for one snapshot"),
        (&["dump", me, "--loop-threshold", "0"], "1ms to 30 days"),
        (&["record", me, "--duration", huge], "1ms to 30 days"),
        (&["record", me, "--duration", "inf"], "invalid duration"),
        (
            &["record", me, "--loop-threshold", "1e400"],
            "1ms to 30 days",
        ),
        (&["record", me, "--rate", "0"], "from 0.01 to 10000"),
        (&["top", me, "--rate", "1e-300"], "from 0.01 to 1000"),
        (&["run", "--timeout", huge, "--", "true"], "1ms to 30 days"),
        (
            &["run", "--hang-after", "-5s", "--", "true"],
            "invalid duration",
        ),
        (
            &["run", "--window", "31d", "--", "true"],
            "invalid duration",
        ),
        (&["run", "--window", "721h", "--", "true"], "1ms to 30 days"),
        (&["run", "--rate", "0", "--", "true"], "from 0.01 to 1000"),
    ];
    for (args, says) in cases {
        let out = gridlock(args);
        let stderr = text(&out.stderr);
        let ctx = format!("gridlock {args:?}: exit {:?}\nstderr: {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{ctx}");
        assert_eq!(out.status.code(), Some(2), "{ctx}");
        assert!(stderr.contains(says), "{ctx}");
    }
    // Exponent and fractional forms in range are accepted alike.
    let out = gridlock(&[
        "run",
        "--timeout",
        "1.5e1",
        "--hang-after",
        "2.5e-1m",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn help_mentions_exit_codes() {
    for args in [&["--help"][..], &["dump", "--help"], &["help", "dump"]] {
        let out = gridlock(args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "gridlock {args:?}");
        assert!(
            stdout.contains("EXIT STATUS"),
            "gridlock {args:?}: {stdout}"
        );
        for (code, word) in [
            (0, "nothing"),
            (1, "could not"),
            (2, "usage"),
            (3, "finding"),
        ] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} ")) && l.contains(word)),
                "gridlock {args:?} should explain exit {code}: {stdout}"
            );
        }
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The gridlock binary, runnable by `nobody`: the build's own when every folder above it is
/// traversable by others, else a copy in a 0755 temp folder.
fn gridlock_for_nobody(tmp: &TempDir) -> PathBuf {
    let bin = PathBuf::from(support::gridlock_bin());
    let others_x = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    };
    if others_x(&bin) && bin.ancestors().skip(1).all(others_x) {
        return bin;
    }
    let copy = tmp.0.join("gridlock");
    std::fs::copy(&bin, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

fn gridlock_as_nobody(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .current_dir("/")
        .env_remove("HOME")
        .output()
        .expect("run gridlock as nobody")
}

/// Debian's python3.11: readable by every user (pyenv's live under /root).
fn system_python() -> Option<Interpreter> {
    let path = PathBuf::from("/usr/bin/python3.11");
    path.exists().then(|| Interpreter {
        label: "debian-3.11".into(),
        path,
        minor: 11,
        root: None,
    })
}

#[test]
fn unprivileged_user_cannot_dump_root_process() {
    if !running_as_root() {
        eprintln!("skipped: needs root, to run gridlock as nobody against a root process");
        return;
    }
    let tmp = TempDir::new("perm-root", 0o755);
    let bin = gridlock_for_nobody(&tmp);
    let py = system_python().unwrap_or_else(some_interpreter);
    let target = Target::start(&py, &fixture("idle.py"), &[]);
    let out = gridlock_as_nobody(&bin, &["dump", &target.pid.to_string(), "--window", "0"]);
    let line = assert_one_line_error(
        "nobody dumps a root process",
        &out,
        1,
        &["permission denied", &target.pid.to_string()],
    );
    assert!(
        line.contains("root") && (line.contains("CAP_SYS_PTRACE") || line.contains("ptrace_scope")),
        "the hint says how to get permission: {line}"
    );
    assert!(target.is_alive());
}

#[test]
fn unprivileged_user_can_dump_own_process() {
    if !running_as_root() {
        eprintln!("skipped: needs root, to start processes as nobody");
        return;
    }
    let Some(py) = system_python() else {
        eprintln!(
            "skipped: no /usr/bin/python3.11 (pyenv's interpreters are not readable by nobody)"
        );
        return;
    };
    let tmp = TempDir::new("perm-own", 0o755);
    let bin = gridlock_for_nobody(&tmp);
    let script = tmp.0.join("bank_transfer.py");
    std::fs::copy(support::example("bank_transfer.py"), &script).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cwd = tmp.0.clone();
    let target = Target::start_with(&py, &script, &[], move |cmd| {
        cmd.uid(NOBODY)
            .gid(NOBODY)
            .current_dir(cwd)
            .env_remove("HOME");
    });
    let owner = std::fs::metadata(format!("/proc/{}", target.pid))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_eq!(owner, NOBODY, "the target runs as nobody");
    let out = gridlock_as_nobody(
        &bin,
        &[
            "dump",
            &target.pid.to_string(),
            "--json",
            "--window",
            "300ms",
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let ctx = format!("exit {:?}\nstderr: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{ctx}");
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "nobody may dump its own process: {ctx}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{ctx}"));
    assert_eq!(doc["processes"][0]["pid"], target.pid);
    assert!(
        doc["threads"].as_array().map(|t| t.len()).unwrap_or(0) >= 3,
        "{ctx}"
    );
}
