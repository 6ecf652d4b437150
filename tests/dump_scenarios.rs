//! End-to-end: `gridlock dump` on real deadlocked and stalled CPython processes, one fixture
//! per scenario (tests/fixtures), on every interpreter. Each test asserts the exit status,
//! the finding, the threads of the cycle, and for every edge its evidence, lock name and site.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use support::{
    doc, dump_json, dump_text, fixture, for_each_interpreter, line_of, Interpreter, Target,
};

const WINDOW: &str = "300ms";

/// The one finding of `kind` (fails listing every finding otherwise).
fn only<'a>(d: &'a Value, kind: &str) -> &'a Value {
    let found = doc::findings(d, kind);
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} finding, got: {:#}",
        d["findings"]
    );
    found[0]
}

fn kinds(d: &Value) -> Vec<String> {
    let mut k: Vec<String> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

fn thread_name(d: &Value, id: &str) -> String {
    d["threads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .and_then(|t| t["name"].as_str())
        .unwrap_or_else(|| panic!("no thread {id} in the document"))
        .to_string()
}

fn thread_id<'a>(d: &'a Value, name: &str) -> &'a str {
    doc::thread_by_name(d, name)["id"].as_str().unwrap()
}

/// One thread's part of a cycle: the edge leaving it (`waits_for` or `joins`) and, when it
/// waits for a lock, the lock's `held_by` edge.
struct Step {
    out: Value,
    held_by: Option<Value>,
}

/// The finding's edges, keyed by the name of the thread each step starts from.
fn steps(d: &Value, f: &Value) -> BTreeMap<String, Step> {
    let edges = f["edges"].as_array().unwrap();
    let mut out = BTreeMap::new();
    for e in edges {
        match e["via"].as_str().unwrap() {
            "waits_for" | "joins" => {
                let held_by = edges
                    .iter()
                    .find(|h| h["via"] == "held_by" && h["from"] == e["to"])
                    .cloned();
                let name = thread_name(d, e["from"].as_str().unwrap());
                assert!(
                    out.insert(
                        name.clone(),
                        Step {
                            out: e.clone(),
                            held_by
                        }
                    )
                    .is_none(),
                    "{name} leaves the cycle twice: {:#}",
                    f["edges"]
                );
            }
            "held_by" => {}
            other => panic!("unexpected edge kind {other}: {e}"),
        }
    }
    out
}

/// `function file:line`, as gridlock prints sites.
fn site(function: &str, file: &Path, line: u32) -> String {
    format!(
        "{function} {}:{line}",
        file.file_name().unwrap().to_string_lossy()
    )
}

/// Code objects carry qualified names (`Node.link`) from 3.11 on; bare names before.
fn qualified(py: &Interpreter, class: &str, function: &str) -> String {
    if py.minor >= 11 {
        format!("{class}.{function}")
    } else {
        function.to_string()
    }
}

/// The step's edge is a futex wait for a lock named `name` at `at`.
fn assert_waits(step: &Step, name: &str, at: &str) {
    let e = &step.out;
    assert_eq!(e["via"], "waits_for", "{e}");
    assert_eq!(e["evidence"], "futex", "{e}");
    assert_eq!(e["name"], name, "{e}");
    assert_eq!(e["site"], at, "{e}");
}

/// The lock the step waits for is held by `holder`, known by `evidence`, under `name`,
/// taken at `at` (when the evidence can tell).
fn assert_held(d: &Value, step: &Step, holder: &str, evidence: &str, name: &str, at: Option<&str>) {
    let h = step
        .held_by
        .as_ref()
        .unwrap_or_else(|| panic!("no held_by edge after {}", step.out));
    assert_eq!(h["from"], step.out["to"], "{h}");
    assert_eq!(thread_name(d, h["to"].as_str().unwrap()), holder, "{h}");
    assert_eq!(h["evidence"], evidence, "{h}");
    assert_eq!(h["name"], name, "{h}");
    if let Some(at) = at {
        assert_eq!(h["site"], at, "{h}");
    }
}

/// The single deadlock, after checking the exit status and the text report agree.
fn deadlock(target: &Target) -> (Value, Value) {
    let (code, d) = dump_json(target.pid, WINDOW);
    assert_eq!(code, 3, "exit status for a deadlock: {:#}", d["findings"]);
    assert_eq!(kinds(&d), vec!["deadlock"], "{:#}", d["findings"]);
    let f = only(&d, "deadlock").clone();
    assert_eq!(f["severity"], "error");
    assert_eq!(
        f["samples"], d["window"]["snapshots"],
        "persisted in every snapshot"
    );
    (d, f)
}

fn assert_text_reports(target: &Target, heading: &str) {
    let (code, text) = dump_text(target.pid, "0");
    assert_eq!(code, 3, "{text}");
    assert!(text.contains(heading), "no {heading:?} in:\n{text}");
}

fn check_abba(target: &Target, src: &Path) {
    let (d, f) = deadlock(target);
    assert_eq!(
        doc::finding_thread_names(&d, &f),
        vec!["worker-ab", "worker-ba"]
    );
    assert_eq!(f["locks"].as_array().unwrap().len(), 2);
    let s = steps(&d, &f);
    let ab = &s["worker-ab"];
    assert_waits(
        ab,
        "lock_b",
        &site("ab", src, line_of(src, "def ab", "with lock_b:")),
    );
    assert_held(
        &d,
        ab,
        "worker-ba",
        "value_stack",
        "lock_b",
        Some(&site("ba", src, line_of(src, "def ba", "with lock_b:"))),
    );
    let ba = &s["worker-ba"];
    assert_waits(
        ba,
        "lock_a",
        &site("ba", src, line_of(src, "def ba", "with lock_a:")),
    );
    assert_held(
        &d,
        ba,
        "worker-ab",
        "value_stack",
        "lock_a",
        Some(&site("ab", src, line_of(src, "def ab", "with lock_a:"))),
    );
    // The lock objects agree with the edges.
    let lock_b = doc::lock(&d, ab.out["to"].as_str().unwrap());
    assert_eq!(lock_b["kind"], "lock");
    assert_eq!(lock_b["locked"], true);
    let holders = lock_b["holders"].as_array().unwrap();
    assert_eq!(holders.len(), 1, "{lock_b}");
    assert_eq!(holders[0]["thread"], thread_id(&d, "worker-ba"));
    assert_eq!(holders[0]["evidence"], "value_stack");
    let waiters = lock_b["waiters"].as_array().unwrap();
    assert_eq!(waiters.len(), 1, "{lock_b}");
    assert_eq!(waiters[0]["thread"], thread_id(&d, "worker-ab"));
    // Each worker holds exactly its first lock.
    for (name, held) in [("worker-ab", "lock_a"), ("worker-ba", "lock_b")] {
        let t = doc::thread_by_name(&d, name);
        assert_eq!(t["state"], "lock_wait");
        assert_eq!(t["blocked"], true);
        let holds = t["holds"].as_array().unwrap();
        assert_eq!(holds.len(), 1, "{name}: {:#}", t["holds"]);
        assert_eq!(holds[0]["name"], held);
        assert_eq!(holds[0]["evidence"], "value_stack");
    }
    assert_eq!(doc::thread_by_name(&d, "MainThread")["state"], "join_wait");
}

#[test]
fn abba_with_module_global_locks() {
    for_each_interpreter(|py| {
        let src = fixture("abba_globals.py");
        let target = Target::start(py, &src, &[]);
        check_abba(&target, &src);
        assert_text_reports(&target, "DEADLOCK");
    });
}

#[test]
fn source_rewritten_after_start_does_not_change_names_or_sites() {
    for_each_interpreter(|py| {
        let original = fixture("abba_globals.py");
        let dir = std::env::temp_dir().join(format!(
            "gridlock-rewritten-{}-{}",
            std::process::id(),
            py.label
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let _cleanup = RemoveOnDrop(dir.clone());
        let copy = dir.join("abba_globals.py");
        std::fs::copy(&original, &copy).unwrap();
        let target = Target::start(py, &copy, &[]);
        // Different content at every line: names and lines must come from the code
        // objects in memory, never from the file.
        std::fs::write(
            &copy,
            "# rewritten after the process started\n\nwith other_lock:\n    pass\n",
        )
        .unwrap();
        check_abba(&target, &original);
        assert_text_reports(&target, "DEADLOCK");
    });
}

/// Removes a temporary directory when dropped, even when an assertion failed.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn dining_philosophers_with_forks_in_a_list() {
    for_each_interpreter(|py| {
        let src = fixture("philosophers.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        let names: Vec<String> = (0..3).map(|i| format!("philosopher-{i}")).collect();
        assert_eq!(doc::finding_thread_names(&d, &f), names);
        assert_eq!(f["locks"].as_array().unwrap().len(), 3);
        let s = steps(&d, &f);
        let left = site("dine", &src, line_of(&src, "def dine", "with forks[i]:"));
        let right = site(
            "dine",
            &src,
            line_of(&src, "def dine", "with forks[(i + 1)"),
        );
        for i in 0..3 {
            // Philosopher i waits for its right fork, which philosopher i+1 holds as its left.
            let step = &s[&names[i]];
            assert_waits(step, "forks[(i + 1) % N]", &right);
            assert_held(
                &d,
                step,
                &names[(i + 1) % 3],
                "value_stack",
                "forks[i]",
                Some(&left),
            );
        }
    });
}

#[test]
fn one_with_statement_blocked_entering_its_second_lock() {
    for_each_interpreter(|py| {
        let src = fixture("with_two_items.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        assert_eq!(
            doc::finding_thread_names(&d, &f),
            vec!["entering", "holding"]
        );
        let s = steps(&d, &f);
        let both = site(
            "entering",
            &src,
            line_of(&src, "def entering", "with res.first, res.second:"),
        );
        assert_waits(&s["entering"], "res.second", &both);
        assert_held(
            &d,
            &s["entering"],
            "holding",
            "value_stack",
            "res._second",
            Some(&site(
                "holding",
                &src,
                line_of(&src, "def holding", "with res._second:"),
            )),
        );
        assert_waits(
            &s["holding"],
            "res.first",
            &site(
                "holding",
                &src,
                line_of(&src, "def holding", "with res.first:"),
            ),
        );
        assert_held(
            &d,
            &s["holding"],
            "entering",
            "value_stack",
            "res.first",
            Some(&both),
        );
        // The lock being entered is not held: "entering" holds res.first only.
        let holds = doc::thread_by_name(&d, "entering")["holds"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(holds.len(), 1, "{holds:#?}");
        assert_eq!(holds[0]["name"], "res.first");
        assert_eq!(holds[0]["lock"], s["holding"].out["to"]);
    });
}

/// `outer` holds lock_a and lock_b from one multi-line `with`, waits for lock_c.
fn check_multiline(py: &Interpreter, src: &Path) {
    let target = Target::start(py, src, &[]);
    let (d, f) = deadlock(&target);
    assert_eq!(doc::finding_thread_names(&d, &f), vec!["inner", "outer"]);
    let s = steps(&d, &f);
    let with_line = line_of(src, "def outer", "with ");
    // The statement's first line, or (3.13) the line of the item itself.
    let item_sites = |item: &str| {
        [
            site("outer", src, with_line),
            site("outer", src, line_of(src, "def outer", item)),
        ]
    };
    assert_waits(
        &s["outer"],
        "lock_c",
        &site("outer", src, line_of(src, "def outer", "with lock_c:")),
    );
    assert_held(
        &d,
        &s["outer"],
        "inner",
        "value_stack",
        "lock_c",
        Some(&site(
            "inner",
            src,
            line_of(src, "def inner", "with lock_c:"),
        )),
    );
    assert_waits(
        &s["inner"],
        "lock_b",
        &site("inner", src, line_of(src, "def inner", "with lock_b:")),
    );
    assert_held(&d, &s["inner"], "outer", "value_stack", "lock_b", None);
    let held_site = s["inner"].held_by.as_ref().unwrap()["site"].clone();
    assert!(
        item_sites("lock_b").iter().any(|s| held_site == s.as_str()),
        "lock_b taken at {held_site}, expected one of {:?}",
        item_sites("lock_b")
    );
    // Both items of the statement are held, each with its own site.
    let outer = doc::thread_by_name(&d, "outer");
    let mut holds: Vec<(String, String)> = outer["holds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["evidence"], "value_stack", "{h}");
            (
                h["name"].as_str().unwrap().to_string(),
                h["site"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    holds.sort();
    assert_eq!(holds.len(), 2, "{holds:?}");
    assert_eq!(holds[0].0, "lock_a");
    assert!(item_sites("lock_a,").contains(&holds[0].1), "{holds:?}");
    assert_eq!(holds[1].0, "lock_b");
    assert!(item_sites("lock_b").contains(&holds[1].1), "{holds:?}");
    assert_eq!(outer["waits_for"]["name"], "lock_c");
}

#[test]
fn multi_line_with_statement_backslash() {
    for_each_interpreter(|py| check_multiline(py, &fixture("with_multiline.py")));
}

#[test]
fn multi_line_with_statement_parenthesised() {
    for_each_interpreter(|py| {
        // Parenthesised context managers: official in 3.10, accepted by 3.9's parser,
        // a syntax error on 3.8.
        if py.minor < 9 {
            eprintln!("[{}] skipped: parenthesised `with` needs 3.9+", py.label);
            return;
        }
        check_multiline(py, &fixture("with_parenthesized.py"))
    });
}

#[test]
fn locks_entered_through_local_aliases() {
    for_each_interpreter(|py| {
        let src = fixture("alias.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        assert_eq!(
            doc::finding_thread_names(&d, &f),
            vec!["link-left", "link-right"]
        );
        let link = qualified(py, "Node", "link");
        let wait_site = site(&link, &src, line_of(&src, "def link", "with o:"));
        let hold_site = site(&link, &src, line_of(&src, "def link", "with l:"));
        let s = steps(&d, &f);
        for (me, other) in [("link-left", "link-right"), ("link-right", "link-left")] {
            assert_waits(&s[me], "o", &wait_site);
            assert_held(&d, &s[me], other, "value_stack", "l", Some(&hold_site));
        }
    });
}

#[test]
fn rlock_cycle_held_through_a_returned_helper() {
    for_each_interpreter(|py| {
        let src = fixture("rlock_helper.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        assert_eq!(
            doc::finding_thread_names(&d, &f),
            vec!["rlock-first", "rlock-second"]
        );
        let s = steps(&d, &f);
        for (me, func, wanted, other) in [
            ("rlock-first", "def first", "rlock_b", "rlock-second"),
            ("rlock-second", "def second", "rlock_a", "rlock-first"),
        ] {
            let step = &s[me];
            let at = line_of(&src, func, &format!("{wanted}.acquire()"));
            assert_waits(step, wanted, &site(&func[4..], &src, at));
            // No frame shows the lock held: only the RLock's owner field does.
            assert_held(&d, step, other, "memory", wanted, None);
            let lock = doc::lock(&d, step.out["to"].as_str().unwrap());
            assert_eq!(lock["kind"], "rlock");
            assert_eq!(lock["locked"], true);
            let holders = lock["holders"].as_array().unwrap();
            assert_eq!(holders.len(), 1, "{lock}");
            let owner = doc::thread_by_name(&d, other);
            assert_eq!(holders[0]["thread"], owner["id"]);
            assert_eq!(holders[0]["owner_ident"], owner["thread_id"]);
            assert_eq!(holders[0]["evidence"], "memory");
            assert_eq!(holders[0]["count"], 1);
            let holds = owner["holds"].as_array().unwrap();
            assert_eq!(holds.len(), 1, "{holds:#?}");
            assert_eq!(holds[0]["lock"], lock["id"]);
            assert_eq!(holds[0]["evidence"], "memory");
        }
    });
}

#[test]
fn cycle_through_a_join() {
    for_each_interpreter(|py| {
        let src = fixture("join_cycle.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        assert_eq!(doc::finding_thread_names(&d, &f), vec!["joiner", "worker"]);
        assert_eq!(f["locks"].as_array().unwrap().len(), 1);
        let s = steps(&d, &f);
        let join = &s["joiner"].out;
        assert_eq!(join["via"], "joins", "{join}");
        assert_eq!(join["to"], thread_id(&d, "worker"));
        assert_eq!(join["evidence"], "futex");
        assert_eq!(
            join["site"],
            site(
                "join_worker",
                &src,
                line_of(&src, "def join_worker", "worker.join()")
            )
        );
        assert_waits(
            &s["worker"],
            "state_lock",
            &site("work", &src, line_of(&src, "def work", "with state_lock:")),
        );
        assert_held(
            &d,
            &s["worker"],
            "joiner",
            "value_stack",
            "state_lock",
            Some(&site(
                "join_worker",
                &src,
                line_of(&src, "def join_worker", "with state_lock:"),
            )),
        );
        let joiner = doc::thread_by_name(&d, "joiner");
        assert_eq!(joiner["state"], "join_wait");
        assert_eq!(joiner["waits_for"]["kind"], "join");
        assert_eq!(joiner["waits_for"]["target"], thread_id(&d, "worker"));
        // The main thread joins "joiner": blocked, but outside the cycle.
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(main["waits_for"]["target"], joiner["id"]);
    });
}

#[test]
fn cycle_of_four_threads() {
    for_each_interpreter(|py| {
        let src = fixture("ring4.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        let names: Vec<String> = (0..4).map(|i| format!("station-{i}")).collect();
        assert_eq!(doc::finding_thread_names(&d, &f), names);
        assert_eq!(f["locks"].as_array().unwrap().len(), 4);
        assert_eq!(f["edges"].as_array().unwrap().len(), 8);
        let func = qualified(py, "Station", "hand_over");
        let wait_site = site(
            &func,
            &src,
            line_of(&src, "def hand_over", "with self.next.lock:"),
        );
        let hold_site = site(
            &func,
            &src,
            line_of(&src, "def hand_over", "with self.lock:"),
        );
        let s = steps(&d, &f);
        for i in 0..4 {
            assert_waits(&s[&names[i]], "self.next.lock", &wait_site);
            assert_held(
                &d,
                &s[&names[i]],
                &names[(i + 1) % 4],
                "value_stack",
                "self.lock",
                Some(&hold_site),
            );
        }
        // The cycle is reported in wait order: each thread's edge leads to the next one's.
        let edges = f["edges"].as_array().unwrap();
        for (i, e) in edges.iter().enumerate() {
            assert_eq!(
                e["to"],
                edges[(i + 1) % edges.len()]["from"],
                "{:#}",
                f["edges"]
            );
        }
    });
}

#[test]
fn signal_handler_reenters_a_lock_its_thread_holds() {
    for_each_interpreter(|py| {
        let src = fixture("signal_reentry.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        assert_eq!(doc::finding_thread_names(&d, &f), vec!["MainThread"]);
        assert_eq!(d["threads"].as_array().unwrap().len(), 1);
        assert_eq!(f["locks"].as_array().unwrap().len(), 1);
        let s = steps(&d, &f);
        let main = &s["MainThread"];
        assert_waits(
            main,
            "lock",
            &site("on_usr1", &src, line_of(&src, "def on_usr1", "with lock:")),
        );
        assert_held(
            &d,
            main,
            "MainThread",
            "value_stack",
            "lock",
            Some(&site(
                "update",
                &src,
                line_of(&src, "def update", "with lock:"),
            )),
        );
        // The handler's frame sits on top of the frame that holds the lock.
        let frames = doc::thread_by_name(&d, "MainThread")["frames"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(frames[0]["function"], "on_usr1", "{frames:#?}");
        assert_eq!(frames[1]["function"], "update", "{frames:#?}");
        assert_text_reports(&target, "DEADLOCK");
    });
}

#[test]
fn import_deadlock_through_a_module_lock() {
    for_each_interpreter(|py| {
        let src = fixture("import_deadlock.py");
        let plugin = fixture("slow_plugin.py");
        let target = Target::start(py, &src, &[]);
        let (d, f) = deadlock(&target);
        assert_eq!(
            doc::finding_thread_names(&d, &f),
            vec!["importer", "registrar"]
        );
        let s = steps(&d, &f);
        assert_waits(
            &s["importer"],
            "registry_lock",
            &site(
                "<module>",
                &plugin,
                line_of(&plugin, "import_started.set()", "with registry_lock:"),
            ),
        );
        assert_held(
            &d,
            &s["importer"],
            "registrar",
            "value_stack",
            "registry_lock",
            Some(&site(
                "registrar",
                &src,
                line_of(&src, "def registrar", "with registry_lock:"),
            )),
        );
        let reg = &s["registrar"];
        assert_waits(
            reg,
            "import slow_plugin",
            &site(
                "registrar",
                &src,
                line_of(&src, "def registrar", "import slow_plugin"),
            ),
        );
        assert_held(&d, reg, "importer", "memory", "import slow_plugin", None);
        let module_lock = doc::lock(&d, reg.out["to"].as_str().unwrap());
        assert_eq!(module_lock["kind"], "module_lock");
        assert_eq!(module_lock["module"], "slow_plugin");
        assert_eq!(module_lock["locked"], true);
        let holders = module_lock["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{module_lock}");
        let importer = doc::thread_by_name(&d, "importer");
        assert_eq!(holders[0]["owner_ident"], importer["thread_id"]);
        assert_eq!(holders[0]["evidence"], "memory");
        assert!(
            f["locks"].as_array().unwrap().contains(&reg.out["to"]),
            "{:#}",
            f["locks"]
        );
    });
}

#[test]
fn orphaned_rlock_and_lost_plain_lock() {
    for_each_interpreter(|py| {
        let src = fixture("orphaned_locks.py");
        let target = Target::start(py, &src, &[]);
        let (code, d) = dump_json(target.pid, WINDOW);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        assert_eq!(
            kinds(&d),
            vec!["orphaned_lock", "stall"],
            "{:#}",
            d["findings"]
        );
        let live: Vec<&Value> = d["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["thread_id"])
            .collect();
        assert_eq!(live.len(), 3, "the owners have exited: {:#}", d["threads"]);

        // The RLock: its owner field names a thread that is gone.
        let orphan = only(&d, "orphaned_lock");
        assert_eq!(orphan["severity"], "error");
        let rlock_waiter = doc::thread_by_name(&d, "rlock-waiter");
        assert_eq!(orphan["threads"], serde_json::json!([rlock_waiter["id"]]));
        let rlock_id = orphan["locks"][0].as_str().unwrap();
        let rlock = doc::lock(&d, rlock_id);
        assert_eq!(rlock["kind"], "rlock");
        assert_eq!(rlock["locked"], true);
        assert!(
            rlock["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == "cache_rlock"),
            "{rlock}"
        );
        let holders = rlock["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{rlock}");
        assert_eq!(holders[0]["thread"], Value::Null, "{rlock}");
        assert_eq!(holders[0]["evidence"], "memory");
        let ident = &holders[0]["owner_ident"];
        assert!(
            ident.as_u64().unwrap() != 0 && !live.contains(&ident),
            "{rlock}"
        );
        let edges = orphan["edges"].as_array().unwrap();
        let wait = edges.iter().find(|e| e["via"] == "waits_for").unwrap();
        assert_eq!(wait["from"], rlock_waiter["id"]);
        assert_eq!(wait["to"], rlock_id);
        assert_eq!(wait["evidence"], "futex");
        assert_eq!(
            wait["site"],
            site(
                "wait_rlock",
                &src,
                line_of(&src, "def wait_rlock", "with cache_rlock:")
            )
        );
        let held = edges.iter().find(|e| e["via"] == "held_by").unwrap();
        assert_eq!(held["evidence"], "memory");
        assert_eq!(held["to"], format!("{}:t:{}", target.pid, ident));

        // The plain Lock records no owner: its holder is unknown, and with every thread
        // blocked the process is stalled.
        let stall = only(&d, "stall");
        let mut all: Vec<String> = d["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect();
        let mut involved: Vec<String> = stall["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        all.sort();
        involved.sort();
        assert_eq!(involved, all);
        let lock_waiter = doc::thread_by_name(&d, "lock-waiter");
        let wait = stall["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["from"] == lock_waiter["id"])
            .unwrap_or_else(|| panic!("no edge from lock-waiter: {stall:#}"));
        assert_eq!(wait["via"], "waits_for");
        assert_eq!(wait["evidence"], "futex");
        assert_eq!(wait["name"], "index_lock");
        assert_eq!(
            wait["site"],
            site(
                "wait_lock",
                &src,
                line_of(&src, "def wait_lock", "with index_lock:")
            )
        );
        let lock = doc::lock(&d, wait["to"].as_str().unwrap());
        assert_eq!(lock["kind"], "lock");
        assert_eq!(lock["locked"], true);
        let holders = lock["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{lock}");
        assert_eq!(holders[0]["thread"], Value::Null);
        assert_eq!(holders[0]["evidence"], "unknown");
        for t in d["threads"].as_array().unwrap() {
            assert_eq!(t["blocked"], true, "{t}");
            assert!(t["holds"].as_array().unwrap().is_empty(), "{t}");
        }
        let (code, text) = dump_text(target.pid, "0");
        assert_eq!(code, 3, "{text}");
        assert!(text.contains("ORPHANED LOCK"), "{text}");
        assert!(text.contains("STALL"), "{text}");
    });
}

#[test]
fn condition_wait_without_a_notifier_is_a_stall() {
    for_each_interpreter(|py| {
        let src = fixture("condition_stall.py");
        let target = Target::start(py, &src, &[]);
        let (code, d) = dump_json(target.pid, WINDOW);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        assert_eq!(kinds(&d), vec!["stall"], "{:#}", d["findings"]);
        let stall = only(&d, "stall");
        assert_eq!(stall["threads"].as_array().unwrap().len(), 4);
        let consumers: Vec<&Value> = (0..3)
            .map(|i| doc::thread_by_name(&d, &format!("consumer-{i}")))
            .collect();
        let cond_id = consumers[0]["waits_for"]["target"].clone();
        let cond = doc::lock(&d, cond_id.as_str().unwrap());
        assert_eq!(cond["kind"], "condition", "{cond}");
        assert!(
            cond["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["name"] == "cond"),
            "{cond}"
        );
        let wait_site = site("consume", &src, line_of(&src, "def consume", "cond.wait()"));
        for c in &consumers {
            assert_eq!(c["state"], "condition_wait", "{c}");
            assert_eq!(c["blocked"], true);
            let w = &c["waits_for"];
            assert_eq!(w["kind"], "notify", "{w}");
            assert_eq!(w["target"], cond_id, "all wait on the same condition: {w}");
            assert_eq!(w["evidence"], "futex");
            assert_eq!(w["timed"], false);
            assert_eq!(w["site"], wait_site);
            // The condition's lock was released by wait(), and the private waiter lock
            // is not something the thread holds or waits for as a lock.
            assert!(c["holds"].as_array().unwrap().is_empty(), "{c}");
            let e = stall["edges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["from"] == c["id"])
                .unwrap();
            assert_eq!(e["to"], cond_id, "{e}");
        }
        // No plain lock has a consumer among its waiters: the futex they sleep on is
        // their own waiter lock, which is never reported as a lock wait.
        for l in d["locks"].as_array().unwrap() {
            if l["id"] != cond_id {
                assert!(l["waiters"].as_array().unwrap().is_empty(), "{l}");
            }
        }
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(main["state"], "join_wait");
        assert_eq!(main["waits_for"]["target"], consumers[0]["id"]);
        assert_text_reports(&target, "STALL");
    });
}

/// A stall's summary names who holds the lock a thread waits for; its edges say so too (a
/// `held_by` edge with evidence and site), and so does the text's evidence block.
#[test]
fn a_stall_names_the_holder_in_its_edges() {
    for_each_interpreter(|py| {
        let src = fixture("stall_known_holder.py");
        let target = Target::start(py, &src, &[]);
        let (code, d) = dump_json(target.pid, WINDOW);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        assert_eq!(kinds(&d), vec!["stall"], "{:#}", d["findings"]);
        let stall = only(&d, "stall");
        let consumer = doc::thread_by_name(&d, "consumer");
        let producer = doc::thread_by_name(&d, "producer");
        let edges = stall["edges"].as_array().unwrap();
        let wait = edges
            .iter()
            .find(|e| e["from"] == consumer["id"])
            .unwrap_or_else(|| panic!("no edge from consumer: {stall:#}"));
        assert_eq!(wait["via"], "waits_for");
        let held = edges
            .iter()
            .find(|e| e["via"] == "held_by" && e["from"] == wait["to"])
            .unwrap_or_else(|| panic!("no held_by edge for the waited lock: {stall:#}"));
        assert_eq!(held["to"], producer["id"], "{stall:#}");
        assert_eq!(held["evidence"], "value_stack", "{held}");
        assert_eq!(held["name"], "stats_lock", "{held}");
        assert_eq!(
            held["site"],
            site(
                "produce",
                &src,
                line_of(&src, "def produce", "with stats_lock:")
            )
        );
        let (code, text) = dump_text(target.pid, "0");
        assert_eq!(code, 3, "{text}");
        assert!(
            text.contains("held by \"producer\"")
                && text.contains("as stats_lock, taken at produce"),
            "{text}"
        );
    });
}
