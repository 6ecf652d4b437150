//! Event-loop blocks (`loop_block`) on real asyncio programs, every CPython under test.
mod support;

use std::process::Command;

use serde_json::Value;
use support::parallel::for_each_interpreter_at_once;
use support::{doc, dump_json, fixture, for_each_interpreter, gridlock, gridlock_bin, Target};

fn scenario(py: &support::Interpreter, mode: &str) -> Target {
    // Every scenario prints READY once reached; the loop thread may never rest.
    Target::start_busy(py, &fixture("asyncio_scenarios.py"), &[mode])
}

fn stack_functions(f: &Value) -> Vec<String> {
    f["stack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fr| fr["function"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_blocked_loop_is_a_loop_block_with_its_culprit_and_stack() {
    // (mode, culprit substring, innermost function of the stack, thread name)
    let cases = [
        (
            "sleep",
            "blocking_handler",
            "blocking_handler",
            "MainThread",
        ),
        ("cpu", "cpu_handler", "crunch", "MainThread"),
        ("deep", "deep_handler", "level3", "MainThread"),
        ("forever", "forever", "forever", "MainThread"),
        (
            "callback",
            "callback plain_callback",
            "plain_callback",
            "MainThread",
        ),
        (
            "thread-sleep",
            "blocking_handler",
            "blocking_handler",
            "loop-thread",
        ),
    ];
    // Two interpreters at a time: most scenarios sleep in their block.
    for_each_interpreter_at_once(2, |py| {
        for (mode, culprit, inner, thread) in cases {
            let target = scenario(py, mode);
            let (code, d) = dump_json(target.pid, "300ms");
            assert_eq!(
                code, 0,
                "[{mode}] a loop block is a warning: {:#}",
                d["findings"]
            );
            let blocks = doc::findings(&d, "loop_block");
            assert_eq!(blocks.len(), 1, "[{mode}] {:#}", d["findings"]);
            let f = blocks[0];
            assert!(
                f["culprit"].as_str().unwrap().contains(culprit),
                "[{mode}] culprit {}",
                f["culprit"]
            );
            assert_eq!(
                stack_functions(f)[0].rsplit('.').next().unwrap(),
                inner,
                "[{mode}]"
            );
            assert!(
                f["duration"].as_f64().unwrap() >= 0.25,
                "[{mode}] {}",
                f["duration"]
            );
            assert_eq!(f["ongoing"], true);
            assert_eq!(f["severity"], "warning");
            assert_eq!(doc::finding_thread_names(&d, f), [thread], "[{mode}]");
            let lp = d["loops"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| Some(&l["id"]) == Some(&f["loop"]))
                .unwrap_or_else(|| panic!("[{mode}] no loop {}", f["loop"]));
            assert_eq!(lp["state"], "step");
            if mode == "callback" {
                assert!(f["tasks"].as_array().unwrap().is_empty());
            } else {
                // The culprit is the loop's current task, read from `_current_tasks`.
                let task = f["tasks"][0].as_str().unwrap();
                let t = d["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["id"] == task)
                    .unwrap();
                assert_eq!(t["state"], "running", "[{mode}]");
                // A step the loop runs (not the first step of an eager task).
                assert_eq!(t["eager"], false, "[{mode}]");
            }
            if mode == "thread-sleep" {
                // The busy workers are not the loop: only the loop thread is named.
                assert_eq!(d["loops"].as_array().unwrap().len(), 1);
            }
            if mode == "sleep" {
                // The same target for the command line's checks.
                fail_on_and_threshold(&target);
            }
        }
    });
}

/// `--fail-on loop_block` fails on the block of `target` (the `sleep` scenario), and a
/// threshold above what the window can show finds none.
fn fail_on_and_threshold(target: &Target) {
    // --fail-on loop_block makes it fail.
    let out = gridlock(&[
        "dump",
        &target.pid.to_string(),
        "--window",
        "300ms",
        "--fail-on",
        "loop_block",
        "--color",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("LOOP BLOCK"), "{text}");
    assert!(text.contains("EVENT LOOPS AND TASKS"), "{text}");
    // A higher threshold than the window can show: no finding.
    let out = gridlock(&[
        "dump",
        &target.pid.to_string(),
        "--window",
        "300ms",
        "--loop-threshold",
        "2s",
        "--json",
    ]);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc::findings(&d, "loop_block").is_empty());
}

#[test]
fn dump_tree_applies_the_loop_threshold() {
    // The target sleeps in its block: three interpreters at a time.
    for_each_interpreter_at_once(3, |py| {
        let target = scenario(py, "sleep");
        let blocks = |threshold: &str| {
            let out = gridlock(&[
                "dump",
                &target.pid.to_string(),
                "--tree",
                "--window",
                "300ms",
                "--loop-threshold",
                threshold,
                "--json",
            ]);
            let d: Value = serde_json::from_slice(&out.stdout).unwrap();
            doc::findings(&d, "loop_block").len()
        };
        assert_eq!(blocks("100ms"), 1, "a blocked loop is seen under --tree");
        assert_eq!(blocks("2s"), 0, "--loop-threshold is applied under --tree");
    });
}

fn record(pid: i32) -> Value {
    let out = Command::new(gridlock_bin())
        .args(["record", &pid.to_string(), "--duration", "800ms", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn steps_are_told_apart_short_ones_pass_long_ones_are_each_a_block() {
    for_each_interpreter(|py| {
        // 60 ms steps separated by `await asyncio.sleep(0)`: never one long block.
        let target = scenario(py, "steps60");
        let d = record(target.pid);
        assert!(
            doc::findings(&d, "loop_block").is_empty(),
            "60 ms steps: {:#}",
            d["findings"]
        );
        drop(target);

        // 150 ms steps: each is its own block of about 150 ms.
        let target = scenario(py, "steps150");
        let d = record(target.pid);
        let blocks = doc::findings(&d, "loop_block");
        // Sampling on a loaded machine can miss the start or end of a step: count loosely,
        // but never accept two steps merged into one block.
        assert!((2..=8).contains(&blocks.len()), "{:#}", d["findings"]);
        for f in &blocks {
            let secs = f["duration"].as_f64().unwrap();
            assert!((0.1..0.25).contains(&secs), "one step, not two: {secs}");
            assert!(f["culprit"].as_str().unwrap().contains("step_loop"));
            // Every block of the culprit is in its histogram.
            assert_eq!(
                f["histogram"]["count"].as_u64().unwrap() as usize,
                blocks.len()
            );
        }
    });
}

#[test]
fn run_fails_on_a_loop_block_as_it_happens() {
    for_each_interpreter(|py| {
        let report = std::env::temp_dir().join(format!(
            "gridlock-asyncio-run-{}-{}.json",
            std::process::id(),
            py.label
        ));
        let started = std::time::Instant::now();
        let out = Command::new(gridlock_bin())
            .args([
                "run",
                "--fail-on",
                "loop_block",
                "--timeout",
                "20s",
                "--report",
            ])
            .arg(&report)
            .arg("--")
            .arg(&py.path)
            .arg(fixture("asyncio_scenarios.py"))
            .arg("forever")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Not the 1 s persistence window of other findings: the block's own duration counts.
        assert!(started.elapsed().as_secs_f64() < 15.0);
        let d: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        let _ = std::fs::remove_file(&report);
        let blocks = doc::findings(&d, "loop_block");
        assert_eq!(blocks.len(), 1, "{:#}", d["findings"]);
        assert!(blocks[0]["culprit"].as_str().unwrap().contains("forever"));
    });
}

/// Whether `import uvloop` works in this interpreter.
fn has_uvloop(py: &support::Interpreter) -> bool {
    Command::new(&py.path)
        .args(["-c", "import uvloop"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// uvloop schedules in native code: no `_run_once`, no ready deque. Its loop is still found
/// (the thread's running loop) and its blocks are seen from the thread's stack (Python frames
/// above the frame that called `run_until_complete`) and syscall (`epoll_wait` = polling).
/// Runs on every interpreter with uvloop installed (.ci/run installs it) and needs one.
#[test]
fn a_uvloop_loop_block_is_seen_from_its_stack_and_syscall() {
    let script = fixture("uvloop_scenarios.py");
    let mut ran = Vec::new();
    for_each_interpreter(|py| {
        if !has_uvloop(py) {
            return;
        }
        ran.push(py.label.clone());
        let idle = Target::start_busy(py, &script, &["idle"]);
        let (code, d) = dump_json(idle.pid, "300ms");
        assert_eq!(code, 0, "[idle] {:#}", d["findings"]);
        assert!(d["findings"].as_array().unwrap().is_empty());
        assert_eq!(d["loops"][0]["state"], "polling", "{:#}", d["loops"]);
        assert_eq!(d["loops"][0]["kind"], "Loop");
        drop(idle);

        // (mode, culprit, stack)
        for (mode, culprit, stack) in [
            ("task", "blocker", ["nap", "blocker"]),
            (
                "callback",
                "callback blocking_callback",
                ["nap", "blocking_callback"],
            ),
        ] {
            let target = Target::start_busy(py, &script, &[mode]);
            let (code, d) = dump_json(target.pid, "300ms");
            assert_eq!(code, 0, "[{mode}] a loop block is a warning");
            let blocks = doc::findings(&d, "loop_block");
            assert_eq!(blocks.len(), 1, "[{mode}] {:#}", d["findings"]);
            let f = blocks[0];
            assert!(
                f["culprit"].as_str().unwrap().contains(culprit),
                "[{mode}] {f:#}"
            );
            assert_eq!(stack_functions(f), stack, "[{mode}]");
            assert_eq!(f["ongoing"], true);
            assert!(f["duration"].as_f64().unwrap() >= 0.1);
            let summary = f["summary"].as_str().unwrap();
            assert!(
                summary.contains("clock_nanosleep") || summary.contains("select"),
                "{summary}"
            );
            assert!(summary.contains("stack and syscall only"), "{summary}");
            if mode == "task" {
                // The task comes from `_current_tasks`, as for asyncio's own loops.
                let t = &f["tasks"][0];
                let task = d["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["id"] == *t)
                    .unwrap();
                assert_eq!(task["state"], "running");
                assert_eq!(task["eager"], false);
                assert!(task["coroutine"].as_str().unwrap().ends_with("blocker"));
            }
        }
    });
    assert!(
        !ran.is_empty(),
        "uvloop is installed in no interpreter: `python -m pip install uvloop` (.ci/run does)"
    );
}
