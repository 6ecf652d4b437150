//! Test support: find every CPython under test, start fixtures as real processes, wait until
//! the scenario is reached, run gridlock on them, and kill every spawned process on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod healthy;
pub mod namespaces;
pub mod parallel;
pub mod representative;
pub mod top_view;

/// What `gridlock run --timeout 60s --junit FILE -- COMMAND` gave: its exit code, its stderr
/// and the JUnit file it wrote (empty when it wrote none).
pub struct JunitRun {
    pub code: Option<i32>,
    pub stderr: String,
    pub xml: String,
}

/// `command` run under `gridlock run` to its end, the JUnit file written to a scratch folder
/// named after `name` (removed after).
pub fn run_with_junit(name: &str, command: &[&std::ffi::OsStr]) -> JunitRun {
    let dir = std::env::temp_dir().join(format!("gridlock-{name}-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("junit.xml");
    let out = Command::new(gridlock_bin())
        .args(["run", "--timeout", "60s", "--junit"])
        .arg(&junit)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .output()
        .expect("run gridlock run");
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    JunitRun {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        xml,
    }
}

#[derive(Debug, Clone)]
pub struct Interpreter {
    /// e.g. "3.12.1", "debian-3.11" or "sid-3.14"
    pub label: String,
    /// What to exec. For an interpreter in the Debian root, a wrapper script that execs
    /// `chroot ROOT python3.X "$@"` (the PID stays the same through both execs).
    pub path: PathBuf,
    pub minor: u32,
    /// The Debian root the interpreter lives in, if any. Fixture, example and probe files
    /// are mirrored into it at their own absolute paths (see `mirror_into_root`).
    pub root: Option<PathBuf>,
}

/// The Debian unstable root holding python3.13/3.14/3.15 (../shared/FACTS.md).
pub fn debian_root() -> PathBuf {
    PathBuf::from(
        std::env::var("GRIDLOCK_DEBIAN_ROOT").unwrap_or_else(|_| "/var/tmp/gridlock-sid".into()),
    )
}

/// Copy this project's fixtures, examples and probe package into `root` at the same
/// absolute paths, so that every path a test passes works inside `chroot root`. Files only,
/// one folder at a time, and never from a folder that contains the root itself.
fn mirror_into_root(root: &Path) {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let project = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs: Vec<PathBuf> = [
            "tests",
            "tests/fixtures",
            "examples",
            "probes/boot",
            "probes/gridlock_probe",
        ]
        .iter()
        .map(|d| project.join(d))
        .collect();
        // Every fixture folder (pytest and unittest suites, documents), one level down.
        if let Ok(rd) = std::fs::read_dir(project.join("tests/fixtures")) {
            dirs.extend(
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        for src in dirs {
            let root_real = std::fs::canonicalize(root).unwrap_or(root.to_path_buf());
            if root_real.starts_with(&src) {
                continue;
            }
            let dst = root.join(src.strip_prefix("/").unwrap());
            let Ok(rd) = std::fs::read_dir(&src) else {
                continue;
            };
            std::fs::create_dir_all(&dst).unwrap();
            for e in rd.filter_map(|e| e.ok()) {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let to = dst.join(e.file_name());
                    let tmp = dst.join(format!(
                        ".{}.{}",
                        e.file_name().to_string_lossy(),
                        std::process::id()
                    ));
                    if std::fs::copy(e.path(), &tmp).is_ok() {
                        let _ = std::fs::rename(&tmp, &to);
                    }
                }
            }
        }
    });
}

/// Where the host sees a path that the target (maybe inside a Debian root) opens.
pub fn host_path(py: &Interpreter, path: &Path) -> PathBuf {
    match &py.root {
        Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
        None => path.to_path_buf(),
    }
}

/// Copy one file into `root` at its own absolute path (a script made by a test).
pub fn copy_into_root(root: &Path, file: &Path) {
    let Ok(file) = std::fs::canonicalize(file) else {
        return;
    };
    if file.starts_with(root) {
        return;
    }
    let dst = root.join(file.strip_prefix("/").unwrap());
    if let Some(parent) = dst.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    // Tests running side by side start targets from the same file: a copy in place would
    // truncate it under an interpreter that is reading it. Unchanged files are left alone;
    // others are replaced whole (a copy under a name of this thread's, then a rename).
    let Ok(bytes) = std::fs::read(&file) else {
        return;
    };
    if std::fs::read(&dst).is_ok_and(|old| old == bytes) {
        return;
    }
    static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dst.with_extension(format!("copy{}-{n}", std::process::id()));
    if std::fs::write(&tmp, &bytes).is_ok() {
        if let Ok(meta) = std::fs::metadata(&file) {
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        let _ = std::fs::rename(&tmp, &dst);
    }
}

/// The Debian root's interpreters (python3.13, 3.14, 3.15), each behind a wrapper script;
/// none, with a printed note, where the root does not exist.
fn debian_root_interpreters() -> Vec<(String, PathBuf, PathBuf)> {
    let root = debian_root();
    if !root.join("usr/bin").is_dir() {
        eprintln!(
            "note: no Debian root at {} (scripts/debian-root.sh makes one): its CPython 3.13/3.14/3.15 are skipped",
            root.display()
        );
        return Vec::new();
    }
    if !root.join("proc/self").exists() {
        eprintln!(
            "note: {}/proc is not mounted (mount -t proc proc {}/proc): the Debian root's interpreters are skipped",
            root.display(),
            root.display()
        );
        return Vec::new();
    }
    mirror_into_root(&root);
    let mut out = Vec::new();
    for v in ["3.13", "3.14", "3.15"] {
        if !root.join(format!("usr/bin/python{v}")).exists() {
            continue;
        }
        let wrapper = std::env::temp_dir().join(format!(
            "gridlock-sid-python{v}-{}",
            root.display().to_string().replace('/', "_")
        ));
        let text = format!(
            "#!/bin/sh\nexec chroot '{}' /usr/bin/python{v} \"$@\"\n",
            root.display()
        );
        if std::fs::read_to_string(&wrapper).ok().as_deref() != Some(text.as_str()) {
            let tmp = wrapper.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &text).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::rename(&tmp, &wrapper).unwrap();
        }
        out.push((format!("sid-{v}"), wrapper, root.clone()));
    }
    out
}

fn pyenv_root() -> Option<PathBuf> {
    if let Ok(root) = std::env::var("PYENV_ROOT") {
        return Some(PathBuf::from(root));
    }
    if let Ok(out) = Command::new("pyenv").arg("root").output() {
        if out.status.success() {
            return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    std::env::var("HOME")
        .ok()
        .map(|h| Path::new(&h).join(".pyenv"))
}

fn minor_of(path: &Path) -> Option<u32> {
    let out = Command::new(path)
        .args([
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    (it.next()? == "3").then_some(())?;
    it.next()?.parse().ok()
}

/// Every CPython 3.8+ under `$(pyenv root)/versions`, Debian's static `/usr/bin/python3.11`,
/// whatever `python3` is, and the Debian root's python3.13/3.14/3.15. Missing ones are
/// skipped; finding none at all fails the test.
pub fn interpreters() -> Vec<Interpreter> {
    let mut found: Vec<Interpreter> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add_in = |label: String, path: PathBuf, root: Option<PathBuf>| {
        let real = std::fs::canonicalize(&path).unwrap_or(path.clone());
        if !seen.insert(real.clone()) {
            return;
        }
        if let Some(minor) = minor_of(&real) {
            if minor >= 8 {
                found.push(Interpreter {
                    label,
                    path: real,
                    minor,
                    root,
                });
            }
        }
    };
    let mut add = |label: String, path: PathBuf| add_in(label, path, None);
    if let Some(root) = pyenv_root() {
        if let Ok(rd) = std::fs::read_dir(root.join("versions")) {
            let mut dirs: Vec<_> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            dirs.sort();
            for v in dirs {
                let exe = root.join("versions").join(&v).join("bin/python3");
                if exe.exists() {
                    add(v, exe);
                }
            }
        }
    }
    if Path::new("/usr/bin/python3.11").exists() {
        add("debian-3.11".into(), PathBuf::from("/usr/bin/python3.11"));
    }
    if let Ok(out) = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
    {
        let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !exe.is_empty() {
            add("python3".into(), PathBuf::from(exe));
        }
    }
    for (label, wrapper, root) in debian_root_interpreters() {
        add_in(label, wrapper, Some(root));
    }
    assert!(
        !found.is_empty(),
        "no CPython 3.8+ found: install one (pyenv) or python3"
    );
    if let Ok(only) = std::env::var("GRIDLOCK_TEST_PYTHONS") {
        found.retain(|i| only.split(',').any(|o| i.label.starts_with(o)));
    }
    found
}

/// Whether `py` can import pytest.
pub fn pytest_available(py: &Interpreter) -> bool {
    Command::new(&py.path)
        .args(["-c", "import pytest"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// A running Python target, killed (SIGKILL) and reaped when dropped, even on panic.
pub struct Target {
    pub child: Child,
    pub pid: i32,
    pub label: String,
    /// Lines the fixture printed to stdout after READY (drained in the background).
    lines: mpsc::Receiver<String>,
}

impl Target {
    /// Start `script` under `interp` and wait for it to print a line starting with `READY`,
    /// then until its threads have settled (none running for a while).
    pub fn start(interp: &Interpreter, script: &Path, args: &[&str]) -> Target {
        Self::start_with(interp, script, args, |_| {})
    }

    pub fn start_with(
        interp: &Interpreter,
        script: &Path,
        args: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Target {
        let target = Self::spawn_ready(interp, script, args, tweak);
        target.settle();
        target
    }

    /// Start `script` and wait for its READY line; every target is started here.
    fn spawn_ready(
        interp: &Interpreter,
        script: &Path,
        args: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Target {
        if let Some(root) = &interp.root {
            copy_into_root(root, script);
        }
        let mut cmd = Command::new(&interp.path);
        cmd.arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null());
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        tweak(&mut cmd);
        Self::spawn_command(cmd, &interp.label)
    }

    /// Start `cmd` (its stdout piped here, killed if the test process dies) and wait for a
    /// line starting with `READY`: for targets started through a wrapper (`namespaces`).
    pub fn spawn_command(mut cmd: Command, label: &str) -> Target {
        unsafe {
            // If the test process dies, the kernel kills the target too.
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let pid = child.id() as i32;
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut target = Target {
            child,
            pid,
            label: label.to_string(),
            lines: rx,
        };
        target.wait_for_line("READY", Duration::from_secs(30));
        target
    }

    /// Wait for a stdout line starting with `prefix`; returns it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!("[{}] fixture did not print {prefix:?} within {timeout:?} (exit status: {status:?})", self.label);
                }
            }
        }
    }

    /// Wait until no thread of the target has been running for several consecutive polls.
    pub fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut quiet = 0;
        while quiet < 4 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(40));
            if running_threads(self.pid) == 0 {
                quiet += 1;
            } else {
                quiet = 0;
            }
        }
    }

    pub fn is_alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
            && proc_state(self.pid).map(|s| s != 'Z').unwrap_or(false)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

pub fn running_threads(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                    stat.rfind(')')
                        .map(|i| stat[i + 1..].trim_start().starts_with('R'))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

pub fn gridlock_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gridlock")
}

pub fn gridlock(args: &[&str]) -> Output {
    Command::new(gridlock_bin())
        .args(args)
        .output()
        .expect("run gridlock")
}

/// `gridlock dump PID --json --window W`: exit code and parsed document.
pub fn dump_json(pid: i32, window: &str) -> (i32, serde_json::Value) {
    let out = gridlock(&["dump", &pid.to_string(), "--json", "--window", window]);
    let code = out.status.code().unwrap_or(-1);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "gridlock dump {pid} did not print JSON ({e}); exit {code}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, doc)
}

/// `dump_json` again and again (50 ms apart) until `done` holds of a dump or `limit` has
/// passed: for a state the target reaches by itself soon. Returns the last dump.
#[allow(dead_code)]
pub fn dump_json_until(
    pid: i32,
    window: &str,
    limit: Duration,
    done: impl Fn(i32, &serde_json::Value) -> bool,
) -> (i32, serde_json::Value) {
    let deadline = Instant::now() + limit;
    loop {
        let (code, doc) = dump_json(pid, window);
        if done(code, &doc) || Instant::now() >= deadline {
            return (code, doc);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn dump_text(pid: i32, window: &str) -> (i32, String) {
    let out = gridlock(&[
        "dump",
        &pid.to_string(),
        "--window",
        window,
        "--color",
        "never",
    ]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Helpers over the JSON document.
pub mod doc {
    use serde_json::Value;

    pub fn findings<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == kind)
            .collect()
    }

    /// The function names of a thread's native frames, innermost first (`?` for an
    /// unnamed one).
    pub fn native_symbols(d: &Value, name: &str) -> Vec<String> {
        thread_by_name(d, name)["native_frames"]
            .as_array()
            .map(|frames| {
                frames
                    .iter()
                    .map(|f| f["symbol"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A thread's native frames (innermost first) show it waiting in glibc's mutex lock,
    /// reached through ctypes' `ffi_call`.
    pub fn assert_mutex_wait_through_ffi(symbols: &[String], name: &str) {
        assert!(
            symbols.iter().any(|s| matches!(
                s.as_str(),
                "pthread_mutex_lock" | "___pthread_mutex_lock" | "__lll_lock_wait"
            )),
            "{name}: {symbols:?}"
        );
        assert!(
            symbols.iter().any(|s| s.starts_with("ffi_call")),
            "{name}: {symbols:?}"
        );
    }

    pub fn thread_by_name<'a>(doc: &'a Value, name: &str) -> &'a Value {
        doc["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| {
                panic!(
                    "no thread named {name} in {}",
                    serde_json::to_string_pretty(&doc["threads"]).unwrap()
                )
            })
    }

    pub fn thread<'a>(doc: &'a Value, id: &str) -> &'a Value {
        doc["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no thread {id}"))
    }

    /// The task named `name` (asyncio's or a framework's).
    pub fn task_named<'a>(doc: &'a Value, name: &str) -> &'a Value {
        doc["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no task {name}: {:#}", doc["tasks"]))
    }

    pub fn lock<'a>(doc: &'a Value, id: &str) -> &'a Value {
        doc["locks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == id)
            .unwrap_or_else(|| panic!("no lock {id}"))
    }

    /// Names of the threads a finding involves.
    pub fn finding_thread_names(doc: &Value, f: &Value) -> Vec<String> {
        involved_names(doc, f, "threads")
    }

    /// Names of the asyncio tasks a finding involves.
    pub fn finding_task_names(doc: &Value, f: &Value) -> Vec<String> {
        involved_names(doc, f, "tasks")
    }

    /// The sorted `name`s of the document's `key` entries (threads, tasks) a finding lists.
    fn involved_names(doc: &Value, f: &Value, key: &str) -> Vec<String> {
        let mut names: Vec<String> = f[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| {
                doc[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["id"] == *id)
                    .map(|t| t["name"].as_str().unwrap_or("?").to_string())
                    .unwrap_or_default()
            })
            .collect();
        names.sort();
        names
    }
}

/// The message a panic carried (`panic!`'s formatted `String` or a literal `&str`), empty when
/// it carried anything else.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Run `check` for every interpreter, collecting failures so one version's failure does not
/// hide another's; panics at the end listing every failing version.
pub fn for_each_interpreter(mut check: impl FnMut(&Interpreter)) {
    let interps = interpreters();
    let mut failures = Vec::new();
    for interp in &interps {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(interp)));
        if let Err(e) = result {
            let msg = panic_message(&*e);
            failures.push(format!("{}: {msg}", interp.label));
        }
    }
    assert!(
        failures.is_empty(),
        "failed on {} of {} interpreters:\n{}",
        failures.len(),
        interps.len(),
        failures.join("\n\n")
    );
}

/// The interpreter of the first `$(pyenv root)/versions/PREFIX*` folder (e.g. "2.7", "3.7"),
/// whatever its major version: for tests about versions gridlock refuses.
pub fn pyenv_python(prefix: &str) -> Option<(String, PathBuf)> {
    let versions = pyenv_root()?.join("versions");
    let mut dirs: Vec<String> = std::fs::read_dir(&versions)
        .ok()?
        .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_string()))
        .filter(|v| v.starts_with(&format!("{prefix}.")) || v == prefix)
        .collect();
    dirs.sort();
    dirs.into_iter().find_map(|v| {
        let bin = versions.join(&v).join("bin");
        ["python3", "python2", "python"]
            .iter()
            .map(|exe| bin.join(exe))
            .find(|p| p.exists())
            .map(|p| (v.clone(), p))
    })
}

impl Target {
    /// Like `start`, but without waiting for the threads to settle: for busy fixtures whose
    /// threads never stop running (healthy workloads), where `settle` would only time out.
    pub fn start_busy(interp: &Interpreter, script: &Path, args: &[&str]) -> Target {
        Self::spawn_ready(interp, script, args, |_| {})
    }

    /// `start_busy`, with a tweak to the command (e.g. its own process group).
    pub fn start_busy_with(
        interp: &Interpreter,
        script: &Path,
        args: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Target {
        Self::spawn_ready(interp, script, args, tweak)
    }
}

/// The 1-based number of the first line containing `needle` at or after the first line
/// containing `after` in the file at `path`: fixtures' expected sites without hard-coded
/// numbers (`line_of(&f, "def ab", "with lock_b:")`).
pub fn line_of(path: &Path, after: &str, needle: &str) -> u32 {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(after))
        .unwrap_or_else(|| panic!("{after:?} not in {}", path.display()));
    let at = lines[start..]
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not after {after:?} in {}", path.display()));
    (start + at + 1) as u32
}
