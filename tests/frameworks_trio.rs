//! trio (issue 32), on real runs of trio from PyPI: two tasks of a nursery taking two
//! `trio.Lock`s in opposite orders are a deadlock of tasks; a receiver holding a lock while
//! the only sender of its memory channel waits for that lock is a deadlock through the
//! channel, and so is a sender holding a lock while the only receiver waits for it (the send
//! side); the lock cycle in `top`'s task view and stopped by `run` with a JUnit failure; a server idling in `sleep_forever` beside busy tasks gives no finding. Tasks carry
//! `framework: trio`, the run is a loop. Interpreters: each of pyenv's 3.9, 3.10, 3.11, 3.12
//! and 3.13 with trio installed (`scripts/test` installs it), one target process each, all
//! at once in their own threads; one without trio is skipped with a note.

mod support;

use serde_json::Value;
use support::Target;
use support::{doc, dump_json, dump_text, fixture, gridlock, line_of, Interpreter};

/// Each pyenv 3.9-3.13 that can import trio.
fn with_trio() -> Vec<Interpreter> {
    support::representative::pyenv_each_importing("trio", "trio")
}

/// Interpreters checked at once: every one (the checks mostly wait for a dump's window).
const AT_ONCE: usize = 5;

/// `check` on each of `interps`, all at once, each failure named at the end.
fn on_each(interps: Vec<Interpreter>, check: impl Fn(&Interpreter) + Sync) {
    support::parallel::for_each_of_at_once(interps, AT_ONCE, check)
}

fn task<'a>(d: &'a Value, name: &str) -> &'a Value {
    doc::task_named(d, name)
}

/// The trio run, as a loop of the document.
fn trio_loop(d: &Value) -> &Value {
    d["loops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "trio")
        .unwrap_or_else(|| panic!("no trio loop: {d:#}"))
}

#[test]
fn a_trio_lock_cycle_in_a_nursery_is_a_deadlock_of_its_two_tasks() {
    let script = fixture("trio_tasks.py");
    // The workers are trio_primitives.py's take_two, which trio_tasks.py imports.
    let at_take = line_of(
        &fixture("trio_primitives.py"),
        "async def take_two",
        "async with second:",
    );
    on_each(with_trio(), |interp| {
        let (t, d) = the_deadlock_of(interp, &script, "lock_cycle", ["worker-ab", "worker-ba"]);
        let f = deadlock_of(&d, ["worker-ab", "worker-ba"]);
        assert_eq!(f["locks"].as_array().unwrap().len(), 2, "{f:#}");
        for (name, other) in [("worker-ab", "worker-ba"), ("worker-ba", "worker-ab")] {
            let tk = task(&d, name);
            assert_eq!(tk["framework"], "trio", "{tk:#}");
            assert_eq!(tk["state"], "pending", "{tk:#}");
            let w = &tk["waits_for"];
            assert_eq!(w["kind"], "lock", "{tk:#}");
            assert_eq!(w["evidence"], "memory", "{tk:#}");
            assert_eq!(tk["coroutine"], "take_two", "{tk:#}");
            assert_eq!(
                w["site"],
                format!("take_two trio_primitives.py:{at_take}"),
                "{tk:#}"
            );
            // The lock records its owner: the other task.
            let lock = doc::lock(&d, w["target"].as_str().unwrap());
            assert_eq!(lock["kind"], "trio_lock", "{lock:#}");
            assert_eq!(lock["locked"], true, "{lock:#}");
            let owner = task(&d, other)["id"].clone();
            assert_eq!(lock["holders"][0]["task"], owner, "{lock:#}");
            assert_eq!(lock["holders"][0]["evidence"], "memory", "{lock:#}");
        }
        // The run is a loop whose tasks include the nursery's parent, which waits for both.
        let lp = trio_loop(&d);
        assert_eq!(lp["state"], "polling", "{lp:#}");
        let parent = task(&d, "__main__.lock_cycle");
        assert_eq!(parent["waits_for"]["kind"], "gather", "{parent:#}");
        assert_eq!(parent["waits_for"]["targets"].as_array().unwrap().len(), 2);

        let (code, text) = dump_text(t.pid, "0.3s");
        assert_eq!(code, 3, "{text}");
        assert!(
            text.contains("DEADLOCK  2 trio tasks wait for each other in a cycle: task \"worker-"),
            "{text}"
        );
        assert!(
            text.contains("take the same trio.Locks in different orders"),
            "{text}"
        );
        let out = gridlock(&["dump", &t.pid.to_string(), "--window", "0", "--dot", "-"]);
        let dot = String::from_utf8_lossy(&out.stdout);
        assert!(
            dot.contains("worker-ab") && dot.contains("worker-ba"),
            "[{}] {dot}",
            interp.label
        );
        // top's task view lists both with their framework and what each waits for.
        let screen = support::top_view::render(&d, '4');
        for name in ["worker-ab", "worker-ba"] {
            let row = screen
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("[{}] no {name} row: {screen}", interp.label));
            assert!(row.trim_start().starts_with("trio 0x"), "{row}");
            assert!(row.contains("pending") && row.contains("lock"), "{row}");
        }
    });
}

#[test]
fn run_stops_a_trio_lock_cycle_and_junit_names_its_tasks() {
    let Some(interp) = with_trio().pop() else {
        return;
    };
    let script = fixture("trio_tasks.py");
    let run = support::run_with_junit(
        "trio",
        &[
            interp.path.as_os_str(),
            script.as_os_str(),
            "lock_cycle".as_ref(),
        ],
    );
    assert_eq!(run.code, Some(3), "[{}] {}", interp.label, run.stderr);
    assert!(
        run.stderr
            .contains("DEADLOCK  2 trio tasks wait for each other in a cycle"),
        "{}",
        run.stderr
    );
    let xml = &run.xml;
    assert!(xml.contains("<failure type=\"deadlock\""), "{xml}");
    assert!(
        xml.contains("worker-ab") && xml.contains("worker-ba"),
        "{xml}"
    );
}

#[test]
fn a_receiver_whose_only_sender_waits_for_its_lock_is_a_deadlock_through_the_channel() {
    let script = fixture("trio_tasks.py");
    on_each(with_trio(), |interp| {
        let (_t, d) = with_deadlocks(interp, &script, "channel", "0.5s", 2);
        // The receive side: the consumer waits for the channel's only send side, held by the
        // producer, which waits for the consumer's lock.
        channel_cycle(&d, "consumer", "producer");
        // The send side: the sender waits for the channel's only receive side, held by the
        // receiver, which waits for the sender's lock.
        channel_cycle(&d, "sender", "receiver");
    });
}

/// A deadlock of `waiter` (on a memory channel whose only other open side `other` holds) and
/// `other` (waiting for a lock `waiter` holds).
fn channel_cycle(d: &Value, waiter: &str, other: &str) {
    let mut names = [waiter, other];
    names.sort();
    let f = deadlock_of(d, names);
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("2 trio tasks wait for each other in a cycle through a memory channel"),
        "{summary}"
    );
    let (waiting, holding) = (task(d, waiter), task(d, other));
    let w = &waiting["waits_for"];
    assert_eq!(w["kind"], "channel", "{waiting:#}");
    let channel = doc::lock(d, w["target"].as_str().unwrap());
    assert_eq!(channel["kind"], "channel", "{channel:#}");
    let holders = channel["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1, "{channel:#}");
    assert_eq!(holders[0]["task"], holding["id"], "{channel:#}");
    assert_eq!(holding["waits_for"]["kind"], "lock", "{holding:#}");
    let lock = doc::lock(d, holding["waits_for"]["target"].as_str().unwrap());
    assert_eq!(lock["holders"][0]["task"], waiting["id"], "{lock:#}");
}

#[test]
fn a_trio_server_idling_beside_busy_tasks_gives_no_finding() {
    let script = fixture("trio_tasks.py");
    on_each(with_trio(), |interp| {
        let t = Target::start(interp, &script, &["healthy"]);
        // Every dump must be clean. The tasks are read while the busy ones run, so a read can
        // be torn (the runner's task set changing under it) and come back empty: up to three
        // dumps to see them (known limit: the trio reader does not re-read a torn set).
        let mut d = Value::Null;
        for attempt in 1..=3 {
            let (code, doc) = dump_json(t.pid, "1s");
            assert_eq!(code, 0, "[{}] {doc:#}", interp.label);
            assert!(doc["findings"].as_array().unwrap().is_empty(), "{doc:#}");
            d = doc;
            let seen = d["tasks"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["name"] == "__main__.serve"));
            if seen {
                break;
            }
            eprintln!("note: [{}] dump {attempt} read no trio tasks", interp.label);
        }
        let serve = task(&d, "__main__.serve");
        assert_eq!(serve["framework"], "trio");
        assert_eq!(serve["waits_for"]["kind"], "sleep", "{serve:#}");
        assert_eq!(serve["waits_for"]["via"], "trio.sleep_forever", "{serve:#}");
        for n in 0..3 {
            let busy = task(&d, &format!("busy-{n}"));
            assert_eq!(busy["framework"], "trio", "{busy:#}");
        }
        // The text report too, with the same allowance for a torn read of the task set.
        let mut text = String::new();
        for attempt in 1..=3 {
            let (code, out) = dump_text(t.pid, "0.3s");
            assert_eq!(code, 0, "{out}");
            text = out;
            if text.contains("(trio) on \"MainThread\"") {
                break;
            }
            eprintln!(
                "note: [{}] text dump {attempt} read no trio run",
                interp.label
            );
        }
        assert!(text.contains("(trio) on \"MainThread\""), "{text}");
    });
}

#[test]
fn a_trio_run_whose_every_task_is_parked_is_a_stall_naming_each_wait() {
    let script = fixture("trio_tasks.py");
    on_each(with_trio(), |interp| {
        let t = Target::start(interp, &script, &["parked"]);
        let (code, d) = dump_json(t.pid, "0.5s");
        assert_eq!(code, 3, "[{}] {d:#}", interp.label);
        assert!(doc::findings(&d, "deadlock").is_empty(), "{d:#}");
        let stalls = doc::findings(&d, "stall");
        assert_eq!(stalls.len(), 1, "[{}] {d:#}", interp.label);
        let f = stalls[0];
        let lp = trio_loop(&d);
        assert_eq!(lp["deadlines"], 0, "{lp:#}");
        assert_eq!(f["loop"], lp["id"], "{f:#}");
        // The three workers, the nursery's parent and trio's `<init>` (parked on the system
        // nursery); not the entry queue's task, which waits on its wakeup socket.
        let mut names = doc::finding_task_names(&d, f);
        names.sort();
        assert_eq!(
            names,
            [
                "<init>",
                "__main__.parked",
                "event-waiter",
                "semaphore-holder",
                "semaphore-taker"
            ],
            "{f:#}"
        );
        let summary = f["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("the trio run on thread ")
                && summary.contains("is stuck: all 5 of its tasks are parked"),
            "{summary}"
        );
        assert!(
            summary.contains("task \"event-waiter\" (wait_event) waits in trio.Event.wait"),
            "{summary}"
        );
        assert!(
            summary.contains("task \"semaphore-taker\" (take_semaphore) waits in trio.Semaphore.acquire on trio_semaphore"),
            "{summary}"
        );
        // One edge per wait: the taker to the semaphore, the parent to each child.
        let taker = task(&d, "semaphore-taker");
        let edges = f["edges"].as_array().unwrap();
        assert!(
            edges.iter().any(|e| e["from"] == taker["id"]
                && e["to"] == taker["waits_for"]["target"]
                && e["via"] == "waits_for"),
            "{f:#}"
        );
        let parent = task(&d, "__main__.parked");
        assert_eq!(
            edges
                .iter()
                .filter(|e| e["from"] == parent["id"] && e["via"] == "awaits")
                .count(),
            3,
            "{f:#}"
        );
        // The nursery tree: each worker's parent is the task whose nursery started it, and
        // the text report draws the workers under it.
        for child in ["event-waiter", "semaphore-holder", "semaphore-taker"] {
            assert_eq!(task(&d, child)["parent"], parent["id"], "{d:#}");
        }
        let (code, text) = dump_text(t.pid, "0.3s");
        assert_eq!(code, 3, "{text}");
        assert!(text.contains("STALL"), "{text}");
        let tasks_at = text.find("EVENT LOOPS AND TASKS").expect("a task section");
        let tree = &text[tasks_at..];
        let parent_at = tree
            .find("task \"__main__.parked\" (parked)")
            .unwrap_or_else(|| panic!("{text}"));
        for child in ["event-waiter", "semaphore-holder", "semaphore-taker"] {
            let at = tree
                .find(&format!("└ task \"{child}\""))
                .unwrap_or_else(|| panic!("{child} not drawn under its parent: {text}"));
            assert!(at > parent_at, "{text}");
        }
    });
}

#[test]
fn parked_trio_tasks_beside_a_sleeper_or_a_socket_reader_give_no_finding() {
    let script = fixture("trio_tasks.py");
    // The two shapes alternate over the interpreters (3.9, 3.11, 3.13 the sleeper).
    on_each(with_trio(), |interp| {
        let (shape, waker, kind) = if interp.minor % 2 == 1 {
            ("parked_sleeper", "sleeper", "sleep")
        } else {
            ("parked_socket", "socket-reader", "io")
        };
        let t = Target::start(interp, &script, &[shape]);
        let (code, d) = dump_json(t.pid, "0.5s");
        assert_eq!(code, 0, "[{}] {shape}: {d:#}", interp.label);
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        let w = task(&d, waker);
        assert_eq!(w["waits_for"]["kind"], kind, "{w:#}");
        assert_eq!(
            task(&d, "semaphore-taker")["waits_for"]["kind"],
            "semaphore"
        );
        let lp = trio_loop(&d);
        // trio.sleep(100) is a deadline; a socket wait is not.
        assert_eq!(
            lp["deadlines"],
            if kind == "sleep" { 1 } else { 0 },
            "{lp:#}"
        );
    });
}

/// Each pyenv 3.9-3.13 importing `import`: one process each.
fn each_importing(import: &str) -> Vec<Interpreter> {
    support::representative::pyenv_each_importing(import, import)
}

/// `shape` of `script` started and dumped: exit 3 and one deadlock, of exactly the tasks
/// `names` (`deadlock_of` gives it).
fn the_deadlock_of(
    interp: &Interpreter,
    script: &std::path::Path,
    shape: &str,
    names: [&str; 2],
) -> (Target, Value) {
    let (t, d) = with_deadlocks(interp, script, shape, "0.5s", 1);
    deadlock_of(&d, names);
    (t, d)
}

/// `shape` of `script` started and dumped over `window`: exit 3 with `n` deadlocks.
fn with_deadlocks(
    interp: &Interpreter,
    script: &std::path::Path,
    shape: &str,
    window: &str,
    n: usize,
) -> (Target, Value) {
    let t = Target::start(interp, script, &[shape]);
    let (code, d) = dump_json(t.pid, window);
    assert_eq!(code, 3, "[{}] {d:#}", interp.label);
    let deadlocks = doc::findings(&d, "deadlock");
    assert_eq!(deadlocks.len(), n, "[{}] {:#}", interp.label, d["findings"]);
    (t, d)
}

/// The deadlock finding whose tasks are exactly `names`.
fn deadlock_of<'a>(d: &'a Value, names: [&str; 2]) -> &'a Value {
    doc::findings(d, "deadlock")
        .into_iter()
        .find(|f| doc::finding_task_names(d, f) == names)
        .unwrap_or_else(|| panic!("no deadlock of {names:?}: {:#}", d["findings"]))
}

#[test]
fn trio_limiters_fifo_locks_raw_reschedules_and_a_blocking_task_in_one_run() {
    let script = fixture("trio_primitives.py");
    let at_take = line_of(&script, "async def take_two", "async with second:");
    let at_sleep = line_of(&script, "async def block", "time.sleep(3600)");
    on_each(each_importing("trio"), |interp| {
        let (t, d) = with_deadlocks(interp, &script, "primitives", "0.3s", 2);

        // A CapacityLimiter's borrower is its holder: borrower -> lock -> lock-holder ->
        // limiter -> borrower.
        let f = deadlock_of(&d, ["borrower", "lock-holder"]);
        assert_eq!(f["locks"].as_array().unwrap().len(), 2, "{f:#}");
        let taker = task(&d, "lock-holder");
        let w = &taker["waits_for"];
        assert_eq!(w["kind"], "semaphore", "{taker:#}");
        assert_eq!(w["via"], "trio.CapacityLimiter.acquire", "{taker:#}");
        assert_eq!(w["evidence"], "memory", "{taker:#}");
        assert_eq!(w["site"], format!("take_two trio_primitives.py:{at_take}"));
        let limiter = doc::lock(&d, w["target"].as_str().unwrap());
        assert_eq!(limiter["kind"], "trio_semaphore", "{limiter:#}");
        assert_eq!(limiter["permits"]["total"], 1, "{limiter:#}");
        assert_eq!(limiter["permits"]["free"], 0, "{limiter:#}");
        let holders = limiter["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{limiter:#}");
        assert_eq!(
            holders[0]["task"],
            task(&d, "borrower")["id"],
            "{limiter:#}"
        );
        assert_eq!(holders[0]["evidence"], "memory", "{limiter:#}");

        // StrictFIFOLocks taken in opposite orders: each records its owner as trio.Lock does.
        let f = deadlock_of(&d, ["fifo-ab", "fifo-ba"]);
        for (name, other) in [("fifo-ab", "fifo-ba"), ("fifo-ba", "fifo-ab")] {
            let tk = task(&d, name);
            assert_eq!(tk["waits_for"]["kind"], "lock", "{tk:#}");
            assert_eq!(
                tk["waits_for"]["via"], "trio.StrictFIFOLock.acquire",
                "{tk:#}"
            );
            let lock = doc::lock(&d, tk["waits_for"]["target"].as_str().unwrap());
            assert_eq!(lock["kind"], "trio_lock", "{lock:#}");
            assert_eq!(
                lock["holders"][0]["task"],
                task(&d, other)["id"],
                "{lock:#}"
            );
            assert!(
                f["locks"].as_array().unwrap().contains(&lock["id"]),
                "{f:#}"
            );
        }

        // Parked by wait_task_rescheduled itself: no primitive, so no waker is known.
        let r = task(&d, "rescheduled");
        let w = &r["waits_for"];
        assert_eq!(w["kind"], "reschedule", "{r:#}");
        assert_eq!(w["evidence"], "unknown", "{r:#}");
        assert_eq!(w["via"], "trio.lowlevel.wait_task_rescheduled", "{r:#}");
        assert!(w["target"].is_null(), "{r:#}");

        // time.sleep inside a task: the run is blocked by that task.
        let blocks = doc::findings(&d, "loop_block");
        assert_eq!(blocks.len(), 1, "{:#}", d["findings"]);
        let blocker = task(&d, "blocker");
        assert_eq!(blocker["state"], "running", "{blocker:#}");
        assert_eq!(blocks[0]["tasks"][0], blocker["id"], "{:#}", blocks[0]);
        assert_eq!(blocks[0]["loop"], trio_loop(&d)["id"], "{:#}", blocks[0]);
        let advice = blocks[0]["advice"].as_str().unwrap();
        assert!(advice.contains("trio.to_thread.run_sync"), "{advice}");
        assert_eq!(trio_loop(&d)["state"], "step", "{:#}", trio_loop(&d));

        let (code, text) = dump_text(t.pid, "0.3s");
        assert_eq!(code, 3, "{text}");
        assert!(
            text.contains(&format!(
                "LOOP BLOCK  the event loop of \"MainThread\" was held for"
            )) && text.contains(&format!(
                "by task \"blocker\" (block), at block trio_primitives.py:{at_sleep}"
            )),
            "{text}"
        );
    });
}

#[test]
fn a_trio_run_parked_whole_beside_a_raw_reschedule_is_incomplete_not_fine() {
    let script = fixture("trio_primitives.py");
    on_each(each_importing("trio"), |interp| {
        let t = Target::start(interp, &script, &["rescheduled"]);
        let out = gridlock(&["dump", &t.pid.to_string(), "--window", "0.3s", "--json"]);
        let d: Value = serde_json::from_slice(&out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Neither a stall (the waker may exist) nor "nothing found".
        assert_eq!(out.status.code(), Some(2), "{stderr} {d:#}");
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        assert!(
            stderr.contains("task \"rescheduled\" waits in trio.lowlevel.wait_task_rescheduled, whose waker trio does not record: gridlock cannot tell whether the run is stuck"),
            "{stderr}"
        );
        assert_eq!(task(&d, "event-waiter")["waits_for"]["kind"], "event");
        let (code, text) = dump_text(t.pid, "0.3s");
        assert_eq!(code, 2, "{text}");
        assert!(
            text.contains("WAKER UNKNOWN  every task of the trio run"),
            "{text}"
        );
        assert!(!text.contains("No deadlock"), "{text}");
    });
}

#[test]
fn anyio_locks_fast_or_not_and_a_fast_semaphore_on_the_trio_backend_are_trio_primitives() {
    let script = fixture("trio_primitives.py");
    let at_take = line_of(&script, "async def take_two", "async with second:");
    on_each(each_importing("anyio, trio"), |interp| {
        let (_t, d) = with_deadlocks(interp, &script, "anyio", "0.3s", 2);
        // anyio.Lock() waits in trio.Lock.acquire; anyio.Lock(fast_acquire=True) parks in
        // the trio.Lock's own ParkingLot: both are read as the trio.Lock they wrap, which
        // records its owner.
        for (pair, via) in [
            (["anyio-ab", "anyio-ba"], "trio.Lock.acquire"),
            (["fast-ab", "fast-ba"], "anyio.Lock.acquire (fast_acquire)"),
        ] {
            let f = deadlock_of(&d, pair);
            assert_eq!(f["locks"].as_array().unwrap().len(), 2, "{f:#}");
            for (name, other) in [(pair[0], pair[1]), (pair[1], pair[0])] {
                let tk = task(&d, name);
                assert_eq!(tk["framework"], "trio", "{tk:#}");
                let w = &tk["waits_for"];
                assert_eq!(w["kind"], "lock", "{tk:#}");
                assert_eq!(w["via"], via, "{tk:#}");
                assert_eq!(w["evidence"], "memory", "{tk:#}");
                // The program's line, not anyio's wrapper.
                assert_eq!(w["site"], format!("take_two trio_primitives.py:{at_take}"));
                let lock = doc::lock(&d, w["target"].as_str().unwrap());
                assert_eq!(lock["kind"], "trio_lock", "{lock:#}");
                assert_eq!(
                    lock["holders"][0]["task"],
                    task(&d, other)["id"],
                    "{lock:#}"
                );
            }
        }
        // anyio.Semaphore(1, fast_acquire=True): the waiter parks in the trio.Semaphore's
        // lot; its permits are read, and its holder is not claimed (a semaphore records none).
        let waiter = task(&d, "sem-waiter");
        let w = &waiter["waits_for"];
        assert_eq!(w["kind"], "semaphore", "{waiter:#}");
        assert_eq!(
            w["via"], "anyio.Semaphore.acquire (fast_acquire)",
            "{waiter:#}"
        );
        let sem = doc::lock(&d, w["target"].as_str().unwrap());
        assert_eq!(sem["kind"], "trio_semaphore", "{sem:#}");
        assert_eq!(sem["permits"]["total"], 1, "{sem:#}");
        assert_eq!(sem["permits"]["free"], 0, "{sem:#}");
        assert!(sem["holders"].as_array().unwrap().is_empty(), "{sem:#}");
        assert_eq!(task(&d, "sem-holder")["waits_for"]["kind"], "event");
        // No task of the run is left with an unknown waker.
        for tk in d["tasks"].as_array().unwrap() {
            assert_ne!(tk["waits_for"]["evidence"], "unknown", "{tk:#}");
        }
    });
}
