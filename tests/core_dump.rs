//! End-to-end: `gridlock dump --core` on cores of real deadlocked CPython processes, written
//! by gdb's `gcore` (the target left running) and by the kernel (`SIGABRT` with
//! `RLIMIT_CORE` unlimited, where `core_pattern` is a plain file name), compared with a live
//! `dump --window 0` of the same process taken just before: the same findings (kind, threads,
//! tasks, lock names), thread states, holders, and waits whose evidence is the dumped
//! registers (`core_registers`), never `futex`. One target per interpreter forms all five
//! shapes at once (lock cycle, RLock cycle, join cycle, asyncio lock cycle, orphaned locks;
//! `fixtures/five_shapes.py`), each of its cores checked; interpreters run in parallel; cores
//! live in a temp folder removed at the end. Where gdb could not
//! read a thread's stack (sid's glibc guards it with pages inside the mapping, and gcore gives
//! up on the whole mapping), the report says so and claims no lock the stack would have
//! named. Also: a core whose libpython was replaced (the build-id mismatch), a truncated core
//! and a random file (exit 2). Skipped with a note where gdb is not installed.

mod support;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{
    copy_into_root, doc, dump_json, dump_json_until, fixture, gridlock, interpreters, Interpreter,
    Target,
};

fn gcore_available() -> bool {
    let found = Command::new("gcore")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("note: gdb's gcore is not installed (apt-get install gdb): core tests skipped");
    }
    found
}

/// Whether the kernel writes a core into the dumping process's working directory: its
/// `core_pattern` is a plain file name (no pipe to a helper, no absolute path). Tests never
/// change the pattern.
fn kernel_cores_available() -> bool {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    let pattern = pattern.trim();
    let plain = !pattern.is_empty() && !pattern.starts_with('|') && !pattern.contains('/');
    if !plain {
        eprintln!(
            "note: kernel.core_pattern is {pattern:?}, not a plain file name: kernel-written \
             cores are not tested"
        );
    }
    plain
}

/// A temp folder for cores, removed when dropped (even on failure). For an interpreter in a
/// Debian root it lies inside the root, so that the target can work in it.
struct CoreDir {
    /// Where the host sees it.
    host: PathBuf,
    /// Where the target sees it.
    inside: PathBuf,
}

impl CoreDir {
    fn new(name: &str, root: Option<&Path>) -> CoreDir {
        let inside = std::env::temp_dir().join(format!(
            "gridlock-cores-{name}-{}-{}",
            std::process::id(),
            root.map_or("host", |_| "root")
        ));
        let host = match root {
            Some(root) => root.join(inside.strip_prefix("/").unwrap()),
            None => inside.clone(),
        };
        std::fs::create_dir_all(&host).unwrap();
        CoreDir { host, inside }
    }
}

impl Drop for CoreDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.host);
    }
}

/// `gcore` of `pid` into `dir`: the core's path, and whether gdb could read every mapping
/// (it leaves zeros for the rest of a mapping it failed to read: "Memory read failed").
fn gcore_checked(pid: i32, dir: &Path) -> (PathBuf, bool) {
    let prefix = dir.join("core");
    let out = Command::new("timeout")
        .args(["120", "gcore", "-o"])
        .arg(&prefix)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run gcore");
    let core = dir.join(format!("core.{pid}"));
    assert!(
        out.status.success() && core.exists(),
        "gcore {pid} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The vsyscall page is never readable; anything else gdb failed to read is missing.
    let err = String::from_utf8_lossy(&out.stderr);
    let complete = !err
        .lines()
        .any(|l| l.contains("Memory read failed") && !l.contains("0xffffffffff600000"));
    (core, complete)
}

fn gcore(pid: i32, dir: &Path) -> PathBuf {
    gcore_checked(pid, dir).0
}

/// Who writes a core of the running target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// gdb's gcore: the target keeps running.
    Gcore,
    /// The kernel, on `SIGABRT`: the target dies (so it comes last).
    Kernel,
}

/// glibc gives each of the five shapes' 11 threads a malloc arena, reserved (`---p`, 64 MiB
/// each) and written out whole by gcore: one arena keeps a core at ~100 MiB, not ~750, and
/// the test fast. pyenv's 3.12 keeps its arenas, as a real process has them.
fn one_arena(py: &Interpreter, cmd: &mut Command) {
    if !py.label.starts_with("3.12") {
        cmd.env("MALLOC_ARENA_MAX", "1");
    }
}

/// Start the five shapes in `cwd` (as the target sees it) with `RLIMIT_CORE` unlimited, so
/// that the kernel writes its core there. In a Debian root: `chroot ROOT sh -c 'cd DIR &&
/// exec python'`, the same PID throughout.
fn start_dumpable(py: &Interpreter, cwd: &Path) -> Target {
    let script = fixture(FIVE_SHAPES);
    let mut cmd = match &py.root {
        Some(root) => {
            copy_into_root(root, &script);
            let mut c = Command::new("chroot");
            c.arg(root)
                .args(["/bin/sh", "-c", "cd \"$0\" && exec \"$@\""])
                .arg(cwd)
                .arg(format!("/usr/bin/python3.{}", py.minor));
            c
        }
        None => {
            let mut c = Command::new(&py.path);
            c.current_dir(cwd);
            c
        }
    };
    one_arena(py, &mut cmd);
    cmd.arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    unsafe {
        cmd.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &unlimited);
            Ok(())
        });
    }
    let target = Target::spawn_command(cmd, &py.label);
    target.settle();
    target
}

/// `SIGABRT` to the target and the core the kernel wrote into `dir` (its only file), or
/// `None` with a note when the kernel wrote none.
fn abort_for_core(target: &mut Target, dir: &Path) -> Option<PathBuf> {
    unsafe { libc::kill(target.pid, libc::SIGABRT) };
    let status = target.child.wait().expect("wait for the aborted target");
    if !status.core_dumped() {
        eprintln!(
            "note: [{}] the kernel wrote no core on SIGABRT ({status}): kernel core skipped",
            target.label
        );
        return None;
    }
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(files.len(), 1, "one core in {}: {files:?}", dir.display());
    files.into_iter().next()
}

/// `dump --core CORE --json` with `extra` options: exit code, document, stderr.
fn dump_core(core: &Path, extra: &[&str]) -> (i32, Option<Value>, String) {
    let mut args = vec!["dump", "--core", core.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = gridlock(&args);
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).ok(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a finding says, independent of ids and addresses: kind, thread names, task names and
/// the names of its locks, sorted.
fn findings_signature(d: &Value) -> Vec<String> {
    let locks = d["locks"].as_array().cloned().unwrap_or_default();
    let lock_name = |id: &Value| {
        locks
            .iter()
            .find(|l| &l["id"] == id)
            .and_then(|l| l["names"].get(0).and_then(|n| n["name"].as_str()))
            .unwrap_or("?")
            .to_string()
    };
    let mut out: Vec<String> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut threads = doc::finding_thread_names(d, f);
            threads.sort();
            let mut tasks = doc::finding_task_names(d, f);
            tasks.sort();
            let mut names: Vec<String> = f["locks"]
                .as_array()
                .map(|ls| ls.iter().map(lock_name).collect())
                .unwrap_or_default();
            names.sort();
            format!(
                "{} threads={threads:?} tasks={tasks:?} locks={names:?}",
                f["kind"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// Every `evidence` value anywhere in a document.
fn evidences(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("evidence", Value::String(e)) => out.push(e.clone()),
                    _ => evidences(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| evidences(v, out)),
        _ => {}
    }
}

/// Each thread's name, state and the evidence and target of its wait, sorted.
fn waits(d: &Value) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = d["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let w = &t["waits_for"];
            (
                t["name"].to_string(),
                t["state"].to_string(),
                w["evidence"].as_str().unwrap_or("").to_string(),
                w["target"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The fixture that forms the five shapes at once, each in its own named threads: the lock
/// cycle, the RLock cycle, the join cycle, the asyncio lock cycle and the orphaned locks.
const FIVE_SHAPES: &str = "five_shapes.py";

/// How each shape's finding begins (`findings_signature`): all five must be in the live
/// dump before a core is compared with it.
const SHAPES: &[&str] = &[
    r#"deadlock threads=["worker-ab", "worker-ba"] tasks=[]"#,
    r#"deadlock threads=["rlock-first", "rlock-second"] tasks=[]"#,
    r#"deadlock threads=["join-worker", "joiner"] tasks=[]"#,
    r#"deadlock threads=[] tasks=["path-ab", "path-ba"]"#,
    r#"orphaned_lock threads=["rlock-waiter"] tasks=[]"#,
];

/// Start the five shapes under `py`, dump them live, then take a core with each of `writers`
/// in turn (gcore first: the kernel's kills the target) and compare each with the live dump.
fn check(py: &Interpreter, writers: &[Writer]) {
    assert!(
        !writers[..writers.len() - 1].contains(&Writer::Kernel),
        "the kernel's core comes last"
    );
    let kernel = writers.contains(&Writer::Kernel);
    let dir = CoreDir::new(&py.label, py.root.as_deref().filter(|_| kernel));
    let mut target = if kernel {
        start_dumpable(py, &dir.inside)
    } else {
        Target::start_with(py, &fixture(FIVE_SHAPES), &[], |c| one_arena(py, c))
    };
    let pid = target.pid;
    let (live_code, live) = dump_json(pid, "0");
    let what = &py.label;
    assert_eq!(
        live_code, 3,
        "{what}: the live dump fails: {:#}",
        live["findings"]
    );
    let live_findings = findings_signature(&live);
    for shape in SHAPES {
        assert!(
            live_findings.iter().any(|f| f.starts_with(shape)),
            "{what}: the live dump finds {shape}: {live_findings:#?}"
        );
    }
    for &writer in writers {
        let (core, complete) = match writer {
            Writer::Gcore => gcore_checked(pid, &dir.host),
            Writer::Kernel => match abort_for_core(&mut target, &dir.host) {
                Some(core) => (core, true),
                None => continue,
            },
        };
        compare(py, &live, &core, writer, complete);
        let _ = std::fs::remove_file(&core);
    }
}

/// The core's report against the live one.
fn compare(py: &Interpreter, live: &Value, core: &Path, writer: Writer, complete: bool) {
    let pid = live["processes"][0]["pid"].as_i64().unwrap();
    let sysroot;
    let mut extra = Vec::new();
    if let Some(root) = &py.root {
        sysroot = root.to_string_lossy().into_owned();
        extra.extend(["--sysroot", sysroot.as_str()]);
    }
    let (code, d, err) = dump_core(core, &extra);
    let what = format!("{} ({writer:?})", py.label);
    let d = d.unwrap_or_else(|| panic!("{what}: dump --core printed no JSON (exit {code}): {err}"));
    assert_eq!(
        code, 3,
        "{what}: the core's dump fails too: {:#}\n{err}",
        d["findings"]
    );
    let p = &d["processes"][0];
    assert_eq!(p["pid"], pid, "{what}");
    assert_eq!(p["core"], core.to_str().unwrap(), "{what}");
    assert_eq!(
        p["python_version"], live["processes"][0]["python_version"],
        "{what}"
    );
    let notes: Vec<&str> = p["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("live-only evidence")
            && n.contains("wait channels")
            && n.contains("schedstat")
            && n.contains("/proc/locks")),
        "{what}: the report says what a core cannot tell: {notes:#?}"
    );
    // What the live dump knew from the futex syscall, the core knows from the registers.
    let mut evidence = Vec::new();
    evidences(&d, &mut evidence);
    assert!(
        !evidence.iter().any(|e| e == "futex"),
        "{what}: a core's waits are known from its registers: {evidence:?}"
    );
    let mut live_evidence = Vec::new();
    evidences(live, &mut live_evidence);
    assert_eq!(
        evidence.iter().any(|e| e == "core_registers"),
        live_evidence.iter().any(|e| e == "futex"),
        "{what}: {evidence:?} vs live {live_evidence:?}"
    );
    let ours = findings_signature(&d);
    assert!(!ours.is_empty(), "{what}");
    let lost = notes.iter().any(|n| n.contains("only zeros for the stack"));
    if lost {
        // gdb could not read some threads' stacks and left zeros: the report says so, still
        // fails with a stall or the deadlock, and ties no wait to a lock the live dump did
        // not (the wait records that lived on those stacks are unknown).
        assert!(
            writer == Writer::Gcore && !complete,
            "{what}: stacks are lost only where gdb failed to read a mapping: {notes:#?}"
        );
        eprintln!("note: {what}: gcore could not read some thread stacks (reported as lost)");
        let live_findings = findings_signature(live);
        for f in &ours {
            assert!(
                f.starts_with("stall ") || live_findings.contains(f),
                "{what}: {f} is neither a stall nor a live finding: {live_findings:#?}"
            );
        }
        let live_waits = waits(live);
        for (name, state, _, target) in waits(&d) {
            assert!(
                target.is_empty()
                    || live_waits
                        .iter()
                        .any(|w| w.0 == name && w.1 == state && w.3 == target),
                "{what}: {name} waits for {target} only in the core"
            );
        }
    } else {
        assert_eq!(ours, findings_signature(live), "{what}: core vs live");
        // Every thread the live dump saw, in the same state, waiting for the same thing;
        // what it knew from the futex syscall, known from the registers.
        let relabel = |mut w: Vec<(String, String, String, String)>| {
            for x in &mut w {
                if x.2 == "futex" {
                    x.2 = "core_registers".into();
                }
            }
            w
        };
        assert_eq!(waits(&d), relabel(waits(live)), "{what}: threads");
    }
    // The holders: the same on both.
    let holds = |d: &Value| {
        let mut v: Vec<String> = d["threads"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| {
                t["holds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(move |h| format!("{} holds {} at {}", t["name"], h["name"], h["site"]))
            })
            .collect();
        v.sort();
        v
    };
    if lost {
        // A holder known from a lock's owner field is tied to its thread through the
        // thread's own records, which may lie on a lost stack: unknown, never another holder.
        // A with-block holder is read from the Python frames alone: still known.
        let (ours, theirs) = (holds(&d), holds(live));
        for h in &ours {
            assert!(theirs.contains(h), "{what}: {h} only in the core");
        }
        for h in theirs.iter().filter(|h| !h.ends_with(" at null")) {
            assert!(
                ours.contains(h),
                "{what}: the core lost the with-block holder {h}"
            );
        }
    } else {
        assert_eq!(holds(&d), holds(live), "{what}: holders");
    }
    // The text report's header names the core.
    let text = gridlock(
        &[
            &["dump", "--core", core.to_str().unwrap(), "--color", "never"][..],
            &extra[..],
        ]
        .concat(),
    );
    let header = String::from_utf8_lossy(&text.stdout);
    assert!(
        header.starts_with("gridlock ")
            && header.contains(&format!("core {} of pid {pid}", core.display())),
        "{what}: {header}"
    );
}

/// The interpreters labelled by `wanted` (prefixes), missing ones skipped with a note.
fn chosen(wanted: &[&str]) -> Vec<Interpreter> {
    let all = interpreters();
    let mut out: Vec<Interpreter> = Vec::new();
    for want in wanted {
        match all.iter().find(|i| i.label.starts_with(want)) {
            Some(i) => out.push(i.clone()),
            None => eprintln!("note: no {want} interpreter: its core test is skipped"),
        }
    }
    out
}

/// How many interpreters are checked at once: their targets mostly sleep, but gcore and
/// the dumps take CPU.
const PARALLEL: usize = 4;

/// Every (interpreter, writers) check, `PARALLEL` at a time; failures collected so one does
/// not hide another.
fn run_all(mut checks: Vec<(Interpreter, Vec<Writer>)>) {
    // Taken from the end: the first listed (the slowest) start first.
    checks.reverse();
    let queue = std::sync::Mutex::new(checks);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let Some((py, writers)) = queue.lock().unwrap().pop() else {
                    return;
                };
                let started = std::time::Instant::now();
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&py, &writers)));
                eprintln!(
                    "note: {} {writers:?} took {:.1?}",
                    py.label,
                    started.elapsed()
                );
                if let Err(e) = r {
                    let msg = support::panic_message(&*e);
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {msg}", py.label));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The five shapes on every interpreter, one target each, compared with one live dump:
/// pyenv's 3.8-3.13 and Debian's static 3.11 from gcore (3.12 also from the kernel's core);
/// sid's 3.13, 3.14 and 3.15 (in the Debian root, read with `--sysroot`) from kernel-written
/// cores, 3.14 also with gcore from outside the root first, whose thread stacks gdb cannot
/// read (glibc's guard pages inside them): reported as lost, never as a lock claim.
#[test]
fn five_shapes_from_cores_match_the_live_dump_on_every_interpreter() {
    if !gcore_available() {
        return;
    }
    let kernel = kernel_cores_available();
    let mut checks = Vec::new();
    for py in chosen(&[
        "3.12",
        "sid-3.14",
        "3.8",
        "3.9",
        "3.10",
        "3.11",
        "3.13",
        "debian-3.11",
        "sid-3.13",
        "sid-3.15",
    ]) {
        let sid = py.root.is_some();
        let mut writers = Vec::new();
        if !sid || py.minor == 14 {
            writers.push(Writer::Gcore);
        }
        if kernel && (sid || py.label.starts_with("3.12")) {
            writers.push(Writer::Kernel);
        }
        if !writers.is_empty() {
            checks.push((py, writers));
        }
    }
    run_all(checks);
}

use support::doc::native_symbols;

/// A core of C-level hangs below Python (`native_locks.py stuck`: a C-mutex AB-BA through
/// ctypes' CDLL, a cycle through the GIL and a C mutex): the blocked threads' native frames,
/// unwound from the registers the core kept over the core's memory and the files it names,
/// name glibc's mutex lock and libffi's call, frame for frame as the live dump's (unwound
/// from `/proc`'s syscall file); the DOT graph shows them on the threads' boxes.
#[test]
fn native_frames_from_a_core_name_the_libc_frames_as_live() {
    if !gcore_available() {
        return;
    }
    let Some(py) = chosen(&["3.12"]).into_iter().next() else {
        return;
    };
    let dir = CoreDir::new("native", None);
    let target = Target::start(&py, &fixture("native_locks.py"), &["stuck"]);
    let blocked = ["native-ab", "native-ba", "gil-holder"];
    let (_, live) = dump_json_until(target.pid, "0", Duration::from_secs(10), |_, d| {
        blocked.iter().all(|n| !native_symbols(d, n).is_empty())
    });
    let core = gcore(target.pid, &dir.host);
    drop(target);
    let (code, d, err) = dump_core(&core, &[]);
    let d = d.unwrap_or_else(|| panic!("dump --core printed no JSON (exit {code}): {err}"));
    assert_eq!(code, 3, "{:#}", d["findings"]);
    for name in blocked {
        let symbols = native_symbols(&d, name);
        doc::assert_mutex_wait_through_ffi(&symbols, name);
        assert_eq!(symbols, native_symbols(&live, name), "{name}: core vs live");
        assert_eq!(
            doc::thread_by_name(&d, name)["native_frames_from"],
            "core_registers",
            "{name}"
        );
        let frames = doc::thread_by_name(&d, name)["native_frames"].clone();
        let libc_frame = frames
            .as_array()
            .unwrap()
            .iter()
            .find(|f| {
                f["symbol"]
                    .as_str()
                    .is_some_and(|s| s.contains("mutex_lock"))
            })
            .unwrap();
        assert!(
            libc_frame["module"]
                .as_str()
                .is_some_and(|m| m.contains("libc.so")),
            "{name}: {libc_frame:#}"
        );
    }
    // The main thread waits for the GIL "gil-holder" keeps, or on its Event: under a GIL
    // wait the core shows take_gil, as live when a dump catches it inside its 5 ms timed
    // waits; under a Python wait, no native frame.
    let main = native_symbols(&d, "MainThread");
    if doc::thread_by_name(&d, "MainThread")["state"] == "gil_wait" {
        assert!(main.iter().any(|s| s == "take_gil"), "{main:?}");
    } else {
        assert_eq!(main, Vec::<String>::new());
    }
    let dot = gridlock(&["dump", "--core", core.to_str().unwrap(), "--dot", "-"]);
    let dot = String::from_utf8_lossy(&dot.stdout);
    let native_ab = dot
        .lines()
        .find(|l| l.contains("label=\"native-ab\\"))
        .unwrap_or_else(|| panic!("no box for native-ab: {dot}"));
    assert!(
        native_ab.contains("native_lock_wait\\nnative: ") && native_ab.contains("mutex_lock"),
        "{native_ab}"
    );
}

/// The byte offset of the GNU build id's contents in an ELF file.
fn build_id_offset(bytes: &[u8]) -> Option<usize> {
    // namesz 4, descsz 20, type NT_GNU_BUILD_ID, "GNU\0".
    let header: Vec<u8> = [4u32, 20, 3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .chain(*b"GNU\0")
        .collect();
    bytes
        .windows(header.len())
        .position(|w| w == header.as_slice())
        .map(|at| at + header.len())
}

#[test]
fn replaced_libpython_truncated_core_and_random_file_exit_2() {
    if !gcore_available() {
        return;
    }
    let Some(py) = chosen(&["3.12"]).into_iter().next() else {
        return;
    };
    let dir = CoreDir::new("bad", None);
    let target = Target::start(&py, &fixture("abba_globals.py"), &[]);
    let core = gcore(target.pid, &dir.host);
    drop(target);

    // A sysroot where libpython is another build (one byte of its build id changed) and the
    // executable is the real one.
    let prefix = py.path.parent().unwrap().parent().unwrap().to_path_buf();
    let lib_name = format!("libpython3.{}.so.1.0", py.minor);
    let lib = prefix.join("lib").join(&lib_name);
    let root = dir.host.join("root");
    let in_root = |p: &Path| root.join(p.strip_prefix("/").unwrap());
    std::fs::create_dir_all(in_root(&prefix.join("lib"))).unwrap();
    std::fs::create_dir_all(in_root(&prefix.join("bin"))).unwrap();
    let mut bytes = std::fs::read(&lib).unwrap();
    let at = build_id_offset(&bytes).expect("libpython has a GNU build id");
    bytes[at] ^= 0xff;
    std::fs::write(in_root(&lib), &bytes).unwrap();
    let exe = std::fs::canonicalize(&py.path).unwrap();
    std::fs::copy(&exe, in_root(&exe)).unwrap();
    let (code, d, err) = dump_core(&core, &["--sysroot", root.to_str().unwrap()]);
    assert_eq!(code, 2, "a replaced libpython is bad input: {err}");
    assert!(d.is_none());
    let first_line = err.lines().next().unwrap_or_default();
    assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
    assert!(
        first_line.contains(&lib.display().to_string())
            && first_line.contains(&in_root(&lib).display().to_string())
            && first_line.contains("build id"),
        "names both files: {first_line}"
    );
    // The unaltered copy under the same sysroot is accepted.
    std::fs::copy(&lib, in_root(&lib)).unwrap();
    let (code, d, err) = dump_core(&core, &["--sysroot", root.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(!doc::findings(d.as_ref().unwrap(), "deadlock").is_empty());

    // The same core as systemd-coredump stores it (zstd): unpacked, the same report.
    let packed = dir.host.join("core.zst");
    let zstd = Command::new("zstd")
        .args(["-q", "-1", "-f", "-o"])
        .arg(&packed)
        .arg(&core)
        .status()
        .is_ok_and(|s| s.success());
    if zstd {
        let (code, d, err) = dump_core(&packed, &[]);
        assert_eq!(code, 3, "a zstd-compressed core: {err}");
        assert!(!doc::findings(d.as_ref().unwrap(), "deadlock").is_empty());
        let _ = std::fs::remove_file(&packed);
    } else {
        eprintln!("note: zstd is not installed: the compressed core is not tested");
    }

    // The core cut in half, and random bytes.
    let whole = std::fs::read(&core).unwrap();
    let cut = dir.host.join("cut.core");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let random = dir.host.join("random.core");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..65536)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&random, noise).unwrap();
    for (file, says) in [(&cut, "truncated"), (&random, "not an ELF core")] {
        let (code, d, err) = dump_core(file, &[]);
        assert_eq!(code, 2, "{}: {err}", file.display());
        assert!(d.is_none());
        assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
        assert!(err.contains(says) && !err.contains("panicked"), "{err}");
    }
}
