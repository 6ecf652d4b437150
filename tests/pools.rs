//! Counting resources (issue 31), on real processes: a semaphore shows its permits and who
//! holds them; when every permit is held by a thread that waits for another, it is a deadlock
//! (a knot) naming the holders and the counts; threads sharing a semaphore one permit at a
//! time give no finding.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::representative::for_each_representative as for_each;
use support::{doc, dump_json, fixture, line_of, Interpreter, Target};

fn lock_named<'a>(d: &'a Value, name: &str) -> &'a Value {
    d["locks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == name)
        })
        .unwrap_or_else(|| panic!("no lock named {name}: {:#}", d["locks"]))
}

/// How a semaphore knot's fixture runs and reads: whether it waits for READY, how the
/// finding names its parties (threads or tasks), its summary, and which lock is the semaphore.
struct KnotShape {
    busy: bool,
    parties: fn(&Value, &Value) -> Vec<String>,
    summary: String,
    semaphore: fn(&Value, &Value) -> Value,
}

/// `script MODE`'s knot, on one interpreter: one deadlock (a knot) of handler-0 and
/// handler-1 with the shape's summary, whose semaphore has 2 of 2 permits, held by two
/// holders. Returns the target, the document, the finding's semaphore and the finding.
fn knot(
    interp: &Interpreter,
    script: &Path,
    mode: &str,
    shape: KnotShape,
) -> (Target, Value, Value, Value) {
    let t = if shape.busy {
        Target::start_busy(interp, script, &[mode])
    } else {
        Target::start(interp, script, &[mode])
    };
    let (code, d) = dump_json(t.pid, "1s");
    assert_eq!(code, 3, "[{}] {d:#}", interp.label);
    let deadlocks = doc::findings(&d, "deadlock");
    assert_eq!(deadlocks.len(), 1, "{d:#}");
    let f = deadlocks[0].clone();
    assert_eq!(f["knot"], true, "{f:#}");
    assert_eq!((shape.parties)(&d, &f), ["handler-0", "handler-1"], "{f:#}");
    assert_eq!(f["summary"], shape.summary);
    let sem = (shape.semaphore)(&d, &f);
    assert_eq!(sem["permits"], serde_json::json!({"total": 2, "free": 0}));
    assert_eq!(sem["holders"].as_array().unwrap().len(), 2, "{sem:#}");
    (t, d, sem, f)
}

/// `semaphores.py MODE`'s knot, on one interpreter: one deadlock of the threads handler-0 and
/// handler-1, each holding a permit of `backend_slots` taken in `function` at line `taken` and
/// waiting for another in `fetch_profile`, every holder named by a `held_by` edge of the
/// finding. Returns the target, the document and the finding's semaphore for the checks
/// particular to the mode.
fn thread_knot(
    interp: &Interpreter,
    mode: &str,
    function: &str,
    taken: u32,
) -> (Target, Value, Value) {
    let script = fixture("semaphores.py");
    let waited = line_of(&script, "def fetch_profile", "with backend_slots:");
    let shape = KnotShape {
        busy: false,
        parties: doc::finding_thread_names,
        summary: format!(
            "backend_slots: 2 of 2 permits held by \"handler-0\" ({function} semaphores.py:{taken}) \
             and \"handler-1\" ({function} semaphores.py:{taken}), each waiting for another at \
             fetch_profile semaphores.py:{waited}"
        ),
        // The semaphore itself, not the inner lock of its condition (which carries its name).
        semaphore: |d, f| {
            let sem = f["locks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| doc::lock(d, id.as_str().unwrap()))
                .find(|l| l["kind"] == "semaphore")
                .unwrap_or_else(|| panic!("no semaphore in the finding: {f:#}"))
                .clone();
            assert!(
                sem["name"] == "backend_slots"
                    || sem["names"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n["name"] == "backend_slots"),
                "{sem:#}"
            );
            sem
        },
    };
    let (t, d, sem, f) = knot(interp, &script, mode, shape);
    // Every holder is named by an edge of the finding, as is every wait.
    let held_by = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "held_by" && e["from"] == sem["id"])
        .count();
    assert_eq!(held_by, 2, "{f:#}");
    (t, d, sem)
}

#[test]
fn a_bounded_semaphore_held_by_its_own_waiters_is_a_deadlock_naming_holders_and_counts() {
    let script = fixture("semaphores.py");
    let taken = line_of(&script, "def handle", "with backend_slots:");
    for_each(|interp| {
        let (_t, d, sem) = thread_knot(interp, "held", "handle", taken);
        assert!(
            sem["holders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["evidence"] == "value_stack"),
            "{sem:#}"
        );
        assert!(doc::findings(&d, "stall").is_empty());
    });
}

#[test]
fn permits_held_by_a_bare_acquire_whose_release_is_ahead_are_held_by_acquire_call() {
    let script = fixture("semaphores.py");
    let taken = line_of(&script, "def handle_bare", "backend_slots.acquire()");
    for_each(|interp| {
        let (t, _, sem) = thread_knot(interp, "bare", "handle_bare", taken);
        assert!(
            sem["holders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["evidence"] == "acquire_call"),
            "{sem:#}"
        );
        let (_, text) = support::dump_text(t.pid, "0");
        assert!(
            text.contains(&format!(
                "taken at handle_bare semaphores.py:{taken}  [acquire_call]"
            )),
            "{text}"
        );
    });
}

#[test]
fn eight_threads_sharing_a_bounded_semaphore_of_three_give_no_finding() {
    let script = fixture("semaphores.py");
    for_each(|interp| {
        let t = Target::start_busy(interp, &script, &["shared"]);
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 0, "[{}] {d:#}", interp.label);
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        let sem = lock_named(&d, "pool_slots");
        assert_eq!(sem["permits"]["total"], 3, "{sem:#}");
    });
}

/// Where scripts/test put the libraries for an interpreter of the Debian root (which has no
/// pip): added by PYTHONPATH. pyenv's have them installed. SQLAlchemy runs its pure-Python
/// code there, as the issue asks (its C extensions are tested on pyenv's).
fn with_site(interp: &Interpreter, cmd: &mut Command) {
    if interp.root.is_some() {
        cmd.env(
            "PYTHONPATH",
            format!("/opt/gridlock-3.{}/site-packages", interp.minor),
        );
        cmd.env("DISABLE_SQLALCHEMY_CEXT_RUNTIME", "1");
    }
}

/// The representative interpreters that import `module` (installed by scripts/test); the
/// others are skipped with a note.
fn with_library(module: &str, check: impl Fn(&Interpreter)) {
    for_each(|interp| {
        let mut cmd = Command::new(&interp.path);
        with_site(interp, &mut cmd);
        let ok = cmd
            .args(["-c", &format!("import {module}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            check(interp)
        } else {
            eprintln!("note: {}: {module} not installed, skipped", interp.label);
        }
    });
}

fn start_with_site(interp: &Interpreter, script: &Path, mode: &str) -> Target {
    Target::start_with(interp, script, &[mode], |c| with_site(interp, c))
}

fn start_busy_with_site(interp: &Interpreter, script: &Path, mode: &str) -> Target {
    Target::start_busy_with(interp, script, &[mode], |c| with_site(interp, c))
}

/// How a report names the fixture's pool: its program-wide name, where the bounded name search
/// reached it (`engine` is a module global), else the attribute of the object that owns the
/// queue, by its class (`QueuePool._pool`, as a frame's `self` holds it), else that class.
const POOL_LABELS: [&str; 3] = ["engine.pool._pool", "QueuePool._pool", "QueuePool"];

#[test]
fn a_sqlalchemy_pool_exhausted_by_its_own_holders_is_a_deadlock_until_the_timeout() {
    let script = fixture("sqlalchemy_pool.py");
    let taken = line_of(&script, "def handle_request", "with engine.connect()");
    let asked = line_of(&script, "def audit", "with engine.connect()");
    with_library("sqlalchemy", |interp| {
        let t = start_with_site(interp, &script, "exhausted");
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 3, "[{}] {d:#}", interp.label);
        let deadlocks = doc::findings(&d, "deadlock");
        assert_eq!(deadlocks.len(), 1, "{d:#}");
        let f = deadlocks[0];
        let summary = f["summary"].as_str().unwrap();
        let held = format!(
            ": 2 of 2 items held by \"request-0\" (handle_request \
             sqlalchemy_pool.py:{taken}) and \"request-1\" (handle_request \
             sqlalchemy_pool.py:{taken}), each waiting for another at audit \
             sqlalchemy_pool.py:{asked}, until the timeout in "
        );
        assert!(
            POOL_LABELS
                .iter()
                .any(|l| summary.starts_with(&format!("{l}{held}"))),
            "{summary}"
        );
        assert_eq!(f["knot"], true);
        let pool = doc::lock(&d, f["locks"][0].as_str().unwrap());
        assert_eq!(pool["kind"], "pool", "{pool:#}");
        assert_eq!(pool["permits"], serde_json::json!({"total": 2, "free": 0}));
        let holders = pool["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 2, "{pool:#}");
        assert!(
            holders.iter().all(|h| h["evidence"] == "checkout"),
            "{pool:#}"
        );
        let w = &doc::thread_by_name(&d, "request-0")["waits_for"];
        assert_eq!(w["timeout_s"].as_f64(), Some(3600.0), "{w:#}");
        drop(t);

        let t = start_busy_with_site(interp, &script, "shared");
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 0, "{d:#}");
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        drop(t);

        // Held by threads that wait for something else: a stall that names the pool.
        let t = start_with_site(interp, &script, "stalled");
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 3, "{d:#}");
        let stalls = doc::findings(&d, "stall");
        assert_eq!(stalls.len(), 1, "{d:#}");
        let summary = stalls[0]["summary"].as_str().unwrap();
        assert!(
            POOL_LABELS.iter().any(|l| summary.contains(&format!(
                "\"late\" waits for a notify on {l} (2 of 2 items held by \"request-0\" \
                 and \"request-1\")"
            ))),
            "{summary}"
        );
    });
}

/// The asyncio semaphore of `asyncio_semaphores.py` by the name its holders use.
fn asyncio_semaphore<'a>(d: &'a Value, name: &str) -> &'a Value {
    let sem = lock_named(d, name);
    assert_eq!(sem["kind"], "asyncio_semaphore", "{sem:#}");
    sem
}

/// `asyncio_semaphores.py MODE`'s knot, on one interpreter: one deadlock of handler-0 and
/// handler-1, each holding a permit of `backend_slots` taken in `function` at line `taken`
/// and waiting for another in `fetch_profile`. Returns the target, the document and the
/// finding's semaphore for the checks particular to the mode.
fn asyncio_knot(
    interp: &Interpreter,
    mode: &str,
    function: &str,
    taken: u32,
) -> (Target, Value, Value) {
    let script = fixture("asyncio_semaphores.py");
    let waited = line_of(
        &script,
        "async def fetch_profile",
        "async with backend_slots:",
    );
    let shape = KnotShape {
        busy: true,
        parties: doc::finding_task_names,
        summary: format!(
            "backend_slots: 2 of 2 permits held by task \"handler-0\" ({function}) ({function} \
             asyncio_semaphores.py:{taken}) and task \"handler-1\" ({function}) ({function} \
             asyncio_semaphores.py:{taken}), each waiting for another at fetch_profile \
             asyncio_semaphores.py:{waited}"
        ),
        semaphore: |d, _| asyncio_semaphore(d, "backend_slots").clone(),
    };
    let (t, d, sem, _) = knot(interp, &script, mode, shape);
    (t, d, sem)
}

#[test]
fn an_asyncio_semaphore_held_by_tasks_waiting_for_it_is_a_deadlock_naming_holders_and_counts() {
    let script = fixture("asyncio_semaphores.py");
    let taken = line_of(&script, "async def handle(", "async with backend_slots:");
    for_each(|interp| {
        let (t, d, sem) = asyncio_knot(interp, "held", "handle", taken);
        let f = doc::findings(&d, "deadlock")[0];
        for h in sem["holders"].as_array().unwrap() {
            assert_eq!(h["evidence"], "value_stack", "{sem:#}");
            let task = &d["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["id"] == h["task"])
                .unwrap_or_else(|| panic!("no holder task: {h:#}"));
            assert!(task["name"].as_str().unwrap().starts_with("handler-"));
        }
        // Each handler's wait: the semaphore, exact (its future is among `_waiters`).
        let edges = f["edges"].as_array().unwrap();
        let waits = edges.iter().filter(|e| e["via"] == "waits_for").count();
        let held_by = edges.iter().filter(|e| e["via"] == "held_by").count();
        assert_eq!((waits, held_by), (2, 2), "{f:#}");
        assert!(edges
            .iter()
            .filter(|e| e["via"] == "waits_for")
            .all(|e| e["evidence"] == "memory" && e["to"] == sem["id"]));
        // Each holder by its task's name, the second one too (an OR-wait's "or by").
        let (_, text) = support::dump_text(t.pid, "0");
        assert!(
            text.contains("or by task \"handler-") && !text.contains("or by 0x"),
            "{text}"
        );
    });
}

#[test]
fn asyncio_permits_held_past_a_bare_acquire_whose_release_is_ahead_are_held_by_acquire_call() {
    let script = fixture("asyncio_semaphores.py");
    let taken = line_of(
        &script,
        "async def handle_bare",
        "await backend_slots.acquire()",
    );
    for_each(|interp| {
        let (t, _, sem) = asyncio_knot(interp, "bare", "handle_bare", taken);
        assert!(
            sem["holders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|h| h["evidence"] == "acquire_call" && h["task"].is_string()),
            "{sem:#}"
        );
        let (_, text) = support::dump_text(t.pid, "0");
        assert!(
            text.contains(&format!(
                "since handle_bare asyncio_semaphores.py:{taken}  [acquire_call]"
            )),
            "{text}"
        );
    });
}

#[test]
fn eight_tasks_sharing_an_asyncio_semaphore_of_three_give_no_finding() {
    let script = fixture("asyncio_semaphores.py");
    for_each(|interp| {
        let t = Target::start_busy(interp, &script, &["shared"]);
        for _ in 0..2 {
            let (code, d) = dump_json(t.pid, "1s");
            assert_eq!(code, 0, "[{}] {d:#}", interp.label);
            assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
            let Some(sem) = d["locks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["kind"] == "asyncio_semaphore")
            else {
                continue;
            };
            // A plain Semaphore: free permits known, no total.
            assert!(sem["permits"]["free"].as_u64().unwrap() <= 3, "{sem:#}");
            assert!(sem["permits"]["total"].is_null(), "{sem:#}");
            assert!(sem["holders"].as_array().unwrap().len() <= 3, "{sem:#}");
        }
    });
}

#[test]
fn a_urllib3_pool_of_one_whose_connection_its_waiter_holds_is_a_deadlock() {
    let script = fixture("urllib3_pool.py");
    // The unread response is held by the local `first` of the frame that asks again.
    let asked = line_of(&script, "def fetch_twice", "second = http.request");
    with_library("urllib3", |interp| {
        let t = start_with_site(interp, &script, "exhausted");
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 3, "[{}] {d:#}", interp.label);
        let deadlocks = doc::findings(&d, "deadlock");
        assert_eq!(deadlocks.len(), 1, "{d:#}");
        let f = deadlocks[0];
        assert_eq!(doc::finding_thread_names(&d, f), ["client"], "{f:#}");
        let summary = f["summary"].as_str().unwrap();
        assert!(
            summary.contains(&format!(
                ": 1 of 1 items held by \"client\" (fetch_twice urllib3_pool.py:{asked}), \
                 waiting for another at fetch_twice urllib3_pool.py:{asked}"
            )),
            "{summary}"
        );
        let pool = doc::lock(&d, f["locks"][0].as_str().unwrap());
        assert_eq!(pool["kind"], "pool", "{pool:#}");
        assert_eq!(pool["permits"], serde_json::json!({"total": 1, "free": 0}));
        let holders = pool["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{pool:#}");
        assert_eq!(holders[0]["evidence"], "checkout", "{pool:#}");
        let client = doc::thread_by_name(&d, "client");
        assert!(
            client["holds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["lock"] == pool["id"] && h["name"] == "first"),
            "{client:#}"
        );
        assert_eq!(
            holders[0]["thread"],
            doc::thread_by_name(&d, "client")["id"],
            "{pool:#}"
        );
        drop(t);

        let t = start_busy_with_site(interp, &script, "shared");
        for _ in 0..2 {
            let (code, d) = dump_json(t.pid, "1s");
            assert_eq!(code, 0, "[{}] {d:#}", interp.label);
            assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        }
    });
}

/// Issue 31's shapes on every interpreter the suite has (pyenv 3.8-3.13, Debian's, the Debian
/// root's 3.13-3.15), one dump each: a semaphore knot, a SQLAlchemy pool exhausted by its own
/// holders and asyncio permits held past a bare `acquire()` are deadlocks, wait loops whose
/// notifier died a stall, and an idle daemon with a SIGTERM handler no finding. The detailed
/// assertions of each shape run on the representative set above; this one runs the
/// interpreters side by side, since each mostly waits for its targets to settle.
#[test]
fn every_shape_gives_its_finding_on_every_interpreter() {
    // (fixture, mode, library it needs, the exit status and finding kinds of its dump)
    let shapes: [(&str, &str, Option<&str>, i32, &[&str]); 5] = [
        ("semaphores.py", "held", None, 3, &["deadlock"]),
        (
            "sqlalchemy_pool.py",
            "exhausted",
            Some("sqlalchemy"),
            3,
            &["deadlock"],
        ),
        ("asyncio_semaphores.py", "bare", None, 3, &["deadlock"]),
        ("timed_loops.py", "", None, 3, &["stall"]),
        ("idle_daemon.py", "handler", None, 0, &[]),
    ];
    let interps = support::interpreters();
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = interps
            .iter()
            .map(|interp| {
                let run = s.spawn(move || {
                    let mut failed = Vec::new();
                    for (script, mode, library, status, kinds) in shapes {
                        if let Some(module) = library {
                            let mut cmd = Command::new(&interp.path);
                            with_site(interp, &mut cmd);
                            let ok = cmd
                                .args(["-c", &format!("import {module}")])
                                .output()
                                .is_ok_and(|o| o.status.success());
                            if !ok {
                                eprintln!(
                                    "note: {}: {module} not installed, skipped",
                                    interp.label
                                );
                                continue;
                            }
                        }
                        let args: &[&str] = if mode.is_empty() { &[] } else { &[mode] };
                        let t = Target::start_with(interp, &fixture(script), args, |c| {
                            with_site(interp, c)
                        });
                        // A polling loop wakes every 0.2 s: a window needs each seen waiting.
                        let (code, d) = support::dump_json_until(
                            t.pid,
                            "1s",
                            std::time::Duration::from_secs(10),
                            |c, _| c == status,
                        );
                        let found: Vec<&str> = d["findings"]
                            .as_array()
                            .map(|f| f.iter().filter_map(|f| f["kind"].as_str()).collect())
                            .unwrap_or_default();
                        if code != status || found != kinds {
                            failed.push(format!(
                                "{} {script} {mode}: exit {code}, findings {found:?} \
                                 (expected {status}, {kinds:?})",
                                interp.label
                            ));
                        }
                    }
                    failed
                });
                (&interp.label, run)
            })
            .collect();
        runs.into_iter()
            .flat_map(|(label, run)| {
                run.join()
                    .unwrap_or_else(|_| vec![format!("{label}: panicked (see above)")])
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
