//! asyncio tasks and async deadlocks on real programs, every CPython under test.
mod support;

use serde_json::Value;
use support::{doc, dump_json, fixture, for_each_interpreter, Target};

fn scenario(py: &support::Interpreter, mode: &str) -> Target {
    // Every scenario prints READY once reached; the loop thread may never rest.
    Target::start_busy(py, &fixture("asyncio_scenarios.py"), &[mode])
}

fn task<'a>(d: &'a Value, name: &str) -> &'a Value {
    doc::task_named(d, name)
}

#[test]
fn two_tasks_awaiting_each_other_are_a_deadlock() {
    for_each_interpreter(|py| {
        let target = scenario(py, "await_cycle");
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let dl = doc::findings(&d, "deadlock");
        assert_eq!(dl.len(), 1, "{:#}", d["findings"]);
        assert_eq!(doc::finding_task_names(&d, dl[0]), ["first", "second"]);
        for e in dl[0]["edges"].as_array().unwrap() {
            assert_eq!(e["via"], "awaits");
            assert_eq!(e["evidence"], "memory");
        }
        let first = task(&d, "first");
        assert_eq!(first["waits_for"]["kind"], "task");
        assert_eq!(first["waits_for"]["target"], task(&d, "second")["id"]);
        assert_eq!(first["state"], "pending");
        assert!(first["coroutine"].as_str().unwrap().ends_with("first"));
        let line = first["frames"][0]["line"].as_u64().unwrap();
        assert!(line > 90, "the await's line: {line}");
        // main gathers both: it waits, but is not part of the cycle.
        let main = task(&d, "Task-1");
        assert_eq!(main["waits_for"]["kind"], "gather");
        assert_eq!(main["waits_for"]["targets"].as_array().unwrap().len(), 2);
    });
}

#[test]
fn an_asyncio_lock_inversion_is_a_deadlock_with_exact_holders() {
    for_each_interpreter(|py| {
        let target = scenario(py, "lock_inversion");
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let dl = doc::findings(&d, "deadlock");
        assert_eq!(dl.len(), 1, "{:#}", d["findings"]);
        assert_eq!(doc::finding_task_names(&d, dl[0]), ["path-ab", "path-ba"]);
        assert_eq!(dl[0]["locks"].as_array().unwrap().len(), 2);
        let edges = dl[0]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 4);
        for e in edges {
            match e["via"].as_str().unwrap() {
                // The waiter's future is one of the lock's `_waiters`.
                "waits_for" => assert_eq!(e["evidence"], "memory"),
                // The holder's `async with` keeps the bound `__aexit__` on its value stack.
                "held_by" => assert_eq!(e["evidence"], "value_stack"),
                v => panic!("unexpected edge {v}"),
            }
        }
        let ab = task(&d, "path-ab");
        assert_eq!(ab["waits_for"]["kind"], "lock");
        assert_eq!(ab["waits_for"]["name"], "self.lock_b");
        assert_eq!(ab["holds"][0]["name"], "self.lock_a");
        let lock = doc::lock(&d, ab["holds"][0]["lock"].as_str().unwrap());
        assert_eq!(lock["kind"], "asyncio_lock");
        assert_eq!(lock["locked"], true);
        assert_eq!(lock["holders"][0]["task"], ab["id"]);
        let summary = dl[0]["summary"].as_str().unwrap();
        assert!(
            summary.contains("path-ab") && summary.contains("path-ba"),
            "{summary}"
        );
    });
}

#[test]
fn eager_tasks_are_read_and_flagged_on_312_and_later() {
    for_each_interpreter(|py| {
        if py.minor < 12 {
            return;
        }
        let target = scenario(py, "eager");
        let (_, d) = dump_json(target.pid, "300ms");
        // create_task names the task after its eager first step has begun: still `Task-N`.
        let t = d["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| {
                t["coroutine"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("eager_blocker")
            })
            .unwrap_or_else(|| panic!("no eager task: {:#}", d["tasks"]));
        // 3.12/3.13 list it in `_eager_tasks`; 3.14+ keep no such set, and the task is told
        // by its coroutine's frame being called by the code that created it, not by the loop.
        assert_eq!(t["eager"], true, "{t:#}");
        assert_eq!(t["state"], "running");
        if py.minor >= 14 {
            // Its own frames only, down to its coroutine (not its creator's).
            let frames = t["frames"].as_array().unwrap();
            let outer = frames.last().unwrap()["function"].as_str().unwrap();
            assert!(outer.ends_with("eager_blocker"), "{t:#}");
        }
        let parked = task(&d, "parked");
        assert_eq!(parked["waits_for"]["kind"], "event");
        // A task whose first step has run, and the task that created the eager one (its
        // step is under way below the eager step), are not eager.
        assert_eq!(parked["eager"], false, "{parked:#}");
        assert_eq!(task(&d, "Task-1")["eager"], false);
        // The creator's own step is under way (its coroutine executes, below the eager
        // step): running, though the loop's running task is the eager one.
        assert_eq!(task(&d, "Task-1")["state"], "running", "{:#}", d["tasks"]);
        let blocks = doc::findings(&d, "loop_block");
        assert_eq!(blocks.len(), 1, "{:#}", d["findings"]);
        assert_eq!(blocks[0]["tasks"][0], t["id"]);
    });
}

#[test]
fn a_healthy_loop_with_a_thousand_tasks_has_no_finding() {
    for_each_interpreter(|py| {
        let target = scenario(py, "healthy");
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 0);
        assert!(
            d["findings"].as_array().unwrap().is_empty(),
            "{:#}",
            d["findings"]
        );
        let tasks = d["tasks"].as_array().unwrap();
        assert!(tasks.len() >= 1000, "{} tasks", tasks.len());
        let sleeping = tasks
            .iter()
            .filter(|t| t["waits_for"]["kind"] == "sleep")
            .count();
        assert!(
            sleeping >= 900,
            "{sleeping} of {} wait in asyncio.sleep",
            tasks.len()
        );
        assert_eq!(
            d["loops"][0]["tasks"].as_u64().unwrap() as usize,
            tasks.len()
        );
        // Idle workers' local queues are looked for briefly, and no note says the search
        // for names stopped: no finding names them.
        assert!(
            tasks
                .iter()
                .any(|t| ["queue", "future"]
                    .contains(&t["waits_for"]["kind"].as_str().unwrap_or(""))),
            "no idle worker awaits its queue"
        );
        let notes = process_notes(&d);
        assert!(
            !notes.iter().any(|n| n.starts_with("lock names:")),
            "{notes:?}"
        );
    });
}

#[test]
fn a_loop_waiting_on_its_own_run_coroutine_threadsafe_is_a_self_deadlock() {
    for_each_interpreter(|py| {
        // Not `scenario`: the loop's one thread does come to rest, in `fut.result()`, and the
        // dump must not start while it is still on its way there from READY (a loop block,
        // not yet the deadlock, under load).
        let target = Target::start(py, &fixture("asyncio_scenarios.py"), &["self_deadlock"]);
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let dl = doc::findings(&d, "deadlock");
        assert_eq!(dl.len(), 1, "{:#}", d["findings"]);
        assert_eq!(doc::finding_thread_names(&d, dl[0]), ["MainThread"]);
        let e = &dl[0]["edges"][0];
        assert_eq!(e["evidence"], "futex");
        assert_eq!(e["to"], d["loops"][0]["id"]);
        assert!(dl[0]["summary"].as_str().unwrap().contains("self_deadlock"));
    });
}

/// Tasks that are not `_asyncio.Task` itself: a subclass made by a custom task factory (its
/// type is found a Task through its `tp_base` chain, not by name), asyncio's pure-Python
/// `_PyTask` (fields read from its `__dict__`), and a process whose asyncio runs without its C
/// accelerator (pure-Python tasks, futures and registries). Each is read like a C task: names,
/// coroutines, await relations and `asyncio.Lock` holders, and both deadlocks are found.
#[test]
fn subclassed_and_pure_python_tasks_are_read_like_c_tasks() {
    let script = fixture("asyncio_task_kinds.py");
    for_each_interpreter(|py| {
        for kind in ["subclass", "pytask", "noaccel"] {
            // The fixture checks the tasks are of the kind asked for before READY.
            let target = Target::start(py, &script, &[kind]);
            let (code, d) = dump_json(target.pid, "300ms");
            assert_eq!(code, 3, "{kind}: {:#}", d["findings"]);
            let dl = doc::findings(&d, "deadlock");
            let mut cycles: Vec<Vec<String>> =
                dl.iter().map(|f| doc::finding_task_names(&d, f)).collect();
            cycles.sort();
            assert_eq!(
                cycles,
                [vec!["first", "second"], vec!["path-ab", "path-ba"]],
                "{kind}: {:#}",
                d["findings"]
            );

            let first = task(&d, "first");
            let second = task(&d, "second");
            assert_eq!(first["state"], "pending", "{kind}");
            assert!(
                first["coroutine"].as_str().unwrap().ends_with("first"),
                "{kind}: {first:#}"
            );
            assert!(second["coroutine"].as_str().unwrap().ends_with("second"));
            assert_eq!(first["waits_for"]["kind"], "task", "{kind}: {first:#}");
            assert_eq!(first["waits_for"]["target"], second["id"]);
            assert_eq!(second["waits_for"]["target"], first["id"]);
            assert_eq!(first["waits_for"]["evidence"], "memory");
            // The await stack reaches the user's frame, at the line of its await (a
            // pure-Python future adds its own `__await__` frame above it).
            let line = support::line_of(&script, "async def first", "await tasks[\"second\"]");
            let own = first["frames"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["function"].as_str().unwrap().ends_with("first"))
                .unwrap_or_else(|| panic!("{kind}: {first:#}"));
            assert_eq!(own["line"], line, "{kind}: {first:#}");
            assert_eq!(
                first["waits_for"]["site"].as_str().unwrap(),
                format!(
                    "{} asyncio_task_kinds.py:{line}",
                    own["function"].as_str().unwrap()
                )
            );

            let ab = task(&d, "path-ab");
            assert_eq!(ab["waits_for"]["kind"], "lock", "{kind}: {ab:#}");
            assert_eq!(ab["waits_for"]["name"], "self.lock_b");
            assert_eq!(ab["waits_for"]["evidence"], "memory");
            assert_eq!(ab["holds"][0]["name"], "self.lock_a");
            let lock = doc::lock(&d, ab["holds"][0]["lock"].as_str().unwrap());
            assert_eq!(lock["holders"][0]["task"], ab["id"]);

            let waiter = task(&d, "waiter");
            assert_eq!(waiter["waits_for"]["kind"], "event", "{kind}: {waiter:#}");
            // main gathers all five.
            let main = task(&d, "Task-1");
            assert_eq!(main["waits_for"]["kind"], "gather", "{kind}: {main:#}");
            assert_eq!(
                main["waits_for"]["targets"].as_array().unwrap().len(),
                5,
                "{kind}: {main:#}"
            );
            assert_eq!(d["loops"][0]["tasks"], 6, "{kind}");
        }
    });
}

/// The notes of the document's only process.
fn process_notes(d: &Value) -> Vec<String> {
    d["processes"][0]["notes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// 3.14's `_asyncio` without its `.AsyncioDebug` section (a copy whose section is renamed,
/// found first on `sys.path`): gridlock says it used its own offsets, checked on live tasks,
/// on the build they were verified on (3.14.10), and finds the same deadlock; on any other
/// build it reads no asyncio at all and says why. With the real `_asyncio` there is no such
/// note (the published offsets passed the check).
#[test]
fn without_the_published_section_the_table_is_used_only_where_verified() {
    let Some(py) = support::interpreters()
        .into_iter()
        .find(|py| py.root.is_some() && py.minor == 14)
    else {
        eprintln!("skipped: no CPython 3.14 in a Debian root");
        return;
    };
    let root = py.root.clone().unwrap();
    let so = "_asyncio.cpython-314-x86_64-linux-gnu.so";
    let original = std::fs::read(root.join("usr/lib/python3.14/lib-dynload").join(so))
        .expect("the Debian root's _asyncio extension");
    let name = b".AsyncioDebug\0";
    let at: Vec<usize> = original
        .windows(name.len())
        .enumerate()
        .filter(|(_, w)| w == name)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the section name appears once, in .shstrtab");
    let mut patched = original.clone();
    patched[at[0] + name.len() - 2] = b'X';
    let inside = format!("/tmp/gridlock-nosection-{}", std::process::id());
    let dir = root.join(inside.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(so), &patched).unwrap();
    std::fs::copy(
        fixture("asyncio_scenarios.py"),
        dir.join("asyncio_scenarios.py"),
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| {
        let script = std::path::Path::new(&inside).join("asyncio_scenarios.py");
        let target = Target::start_busy(&py, &script, &["await_cycle"]);
        let (code, d) = dump_json(target.pid, "300ms");
        drop(target);
        let notes = process_notes(&d);
        if d["processes"][0]["python_version"] == "3.14.10" {
            assert_eq!(code, 3, "{notes:?} {:#}", d["findings"]);
            assert!(
                notes.iter().any(|n| n.starts_with(
                    "asyncio read with gridlock's own offsets for CPython 3.14.10 (checked on live tasks): no .AsyncioDebug section"
                )),
                "{notes:?}"
            );
            let dl = doc::findings(&d, "deadlock");
            assert_eq!(doc::finding_task_names(&d, dl[0]), ["first", "second"]);
        } else {
            assert_eq!(code, 0, "{notes:?}");
            assert!(d["tasks"].as_array().unwrap().is_empty());
            assert!(
                notes.iter().any(|n| n.starts_with(
                    "asyncio tasks and event loops not read: no .AsyncioDebug section"
                )),
                "{notes:?}"
            );
        }
        // A section whose offsets fail the live check (a Task size `_asyncio.Task` does not
        // have): given up after three snapshots, then the same fallback.
        let words: Vec<u8> = [168u64, 136, 96, 108, 109, 128, 152]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let at: Vec<usize> = original
            .windows(words.len())
            .enumerate()
            .filter(|(_, w)| *w == &words[..])
            .map(|(i, _)| i)
            .collect();
        if at.len() == 1 {
            let mut wrong = original.clone();
            wrong[at[0]..at[0] + 8].copy_from_slice(&176u64.to_le_bytes());
            std::fs::write(dir.join(so), &wrong).unwrap();
            let target = Target::start_busy(&py, &script, &["await_cycle"]);
            let (_, d) = dump_json(target.pid, "1s");
            let notes = process_notes(&d);
            if d["processes"][0]["python_version"] == "3.14.10" {
                assert!(
                    notes.iter().any(|n| n.ends_with(
                        "the offsets its .AsyncioDebug section publishes fail a check on live objects (_asyncio.Task is 168 bytes, the offsets say 176)"
                    ) && n.starts_with("asyncio read with gridlock's own offsets")),
                    "{notes:?}"
                );
                assert!(d["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["name"] == "first"));
            } else {
                assert!(
                    notes
                        .iter()
                        .any(|n| n.starts_with("asyncio tasks and event loops not read")),
                    "{notes:?}"
                );
            }
        } else {
            eprintln!("note: 3.14's section values differ from 3.14.10's: the wrong-section case is skipped");
        }
        // The real extension publishes its offsets: no note.
        let target = scenario(&py, "await_cycle");
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 3);
        assert!(
            !process_notes(&d).iter().any(|n| n.contains("asyncio")),
            "{:?}",
            process_notes(&d)
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
