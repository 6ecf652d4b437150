//! Running one check on several interpreters at once, for checks that mostly wait (a
//! recording's `--duration`) rather than compute: each runs in its own thread with its own
//! target, a few at a time, and a failure on one interpreter is collected, not hiding the
//! others'. It decides nothing about what a check asserts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{interpreters, Interpreter};

/// Runs `check` on every interpreter of `interpreters()`, `at_once` at a time, and fails at the
/// end naming every interpreter that failed and why.
pub fn for_each_interpreter_at_once(at_once: usize, check: impl Fn(&Interpreter) + Sync) {
    for_each_of_at_once(interpreters(), at_once, check)
}

/// Runs `check` on each of `interps`, `at_once` at a time (each in its own thread, taking the
/// next interpreter when it is done), and fails at the end naming every one that failed.
pub fn for_each_of_at_once(
    interps: Vec<Interpreter>,
    at_once: usize,
    check: impl Fn(&Interpreter) + Sync,
) {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..at_once.clamp(1, interps.len().max(1)) {
            s.spawn(|| loop {
                let Some(interp) = interps.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    break;
                };
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(interp)));
                if let Err(e) = run {
                    let msg = super::panic_message(&*e);
                    let mut failures = failures.lock().unwrap_or_else(|e| e.into_inner());
                    failures.push(format!("{}: {msg}", interp.label));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(
        failures.is_empty(),
        "failed on {} of {} interpreters:\n{}",
        failures.len(),
        interps.len(),
        failures.join("\n\n")
    );
}
