//! Which `with` statement an instruction enters or an exception handler cleans up, and what
//! a `with` or a call is made on (`lock` for `with lock:` or `lock.acquire()`). It finds no
//! writes and reads no memory.

use crate::cpython::layout::Dialect;

use super::decode::{ExceptionEntry, Instruction};
use super::eval::{evaluate_before, CodeNames};

/// If the instruction at `idx` enters a `with` (3.8-3.10 `SETUP_WITH`, 3.11-3.13
/// `BEFORE_WITH`, 3.14+ the `__enter__` call after `COPY 1; LOAD_SPECIAL __exit__; SWAP 2;
/// SWAP 3; LOAD_SPECIAL __enter__`), the index to name its subject from (`with_subject`).
pub fn entering_with(dialect: Dialect, instructions: &[Instruction], idx: usize) -> Option<usize> {
    let ins = instructions.get(idx)?;
    if matches!(ins.name, "SETUP_WITH" | "BEFORE_WITH") {
        return Some(idx);
    }
    if dialect.0 < 14 {
        return None;
    }
    special_entry(instructions, idx, ENTER)
}

/// Whether the instruction at `idx` starts a (not async) `with` statement's entry as
/// `with_statement_for_handler` names it: `SETUP_WITH` / `BEFORE_WITH`, or on 3.14+ the
/// `COPY 1` before `LOAD_SPECIAL __exit__` ... `LOAD_SPECIAL __enter__; CALL`.
pub fn is_with_entry(dialect: Dialect, instructions: &[Instruction], idx: usize) -> bool {
    match instructions.get(idx).map(|i| i.name) {
        Some("SETUP_WITH" | "BEFORE_WITH") => true,
        Some("COPY") if dialect.0 >= 14 => special_entry(instructions, idx + 5, ENTER) == Some(idx),
        _ => false,
    }
}

/// Whether the code has an `async with` (`BEFORE_ASYNC_WITH`, or 3.14+'s `LOAD_SPECIAL
/// __aenter__`).
pub fn has_async_with(instructions: &[Instruction]) -> bool {
    instructions
        .iter()
        .any(|i| i.name == "BEFORE_ASYNC_WITH" || (i.name == "LOAD_SPECIAL" && i.arg == AENTER))
}

/// `LOAD_SPECIAL` arguments (3.14+): `__enter__`, `__aenter__`.
const ENTER: u32 = 0;
const AENTER: u32 = 2;

/// 3.14+: the index of the `COPY 1` that starts the `with` / `async with` entry whose
/// `__enter__` / `__aenter__` call is at `call`.
fn special_entry(instructions: &[Instruction], call: usize, special: u32) -> Option<usize> {
    if instructions.get(call)?.name != "CALL" || call < 5 {
        return None;
    }
    let seq = &instructions[call - 5..call];
    let names: Vec<&str> = seq.iter().map(|i| i.name).collect();
    (names == ["COPY", "LOAD_SPECIAL", "SWAP", "SWAP", "LOAD_SPECIAL"] && seq[4].arg == special)
        .then_some(call - 5)
}

/// The `async with` entered at or shortly before `idx` (a few await instructions follow
/// its `BEFORE_ASYNC_WITH`, or 3.14+'s `__aenter__` call): the index to name its subject from.
pub fn entering_async_with(instructions: &[Instruction], idx: usize) -> Option<usize> {
    let idx = idx.min(instructions.len().checked_sub(1)?);
    (idx.saturating_sub(12)..=idx).rev().find_map(|i| {
        if instructions[i].name == "BEFORE_ASYNC_WITH" {
            Some(i)
        } else {
            special_entry(instructions, i, AENTER)
        }
    })
}

/// The expression whose value is entered by the `with` at `instructions[at]`
/// (`SETUP_WITH` / `BEFORE_WITH`).
pub fn with_subject(
    dialect: Dialect,
    instructions: &[Instruction],
    at: usize,
    names: &CodeNames,
) -> Option<String> {
    let minor = dialect.0;
    let stack = evaluate_before(minor, instructions, at, names)?;
    stack.into_iter().flatten().last().map(|s| s.text)
}

/// The object a call at `instructions[at]` is made on: `lock` for `lock.acquire()`.
pub fn call_receiver(
    dialect: Dialect,
    instructions: &[Instruction],
    at: usize,
    names: &CodeNames,
) -> Option<(String, String)> {
    let minor = dialect.0;
    let stack = evaluate_before(minor, instructions, at, names)?;
    stack.into_iter().rev().flatten().find_map(|s| {
        let method = s.text.rsplit('.').next()?.to_string();
        s.receiver.map(|r| (r, method))
    })
}

/// The `with` statement whose cleanup handler starts at `handler` (code units).
/// 3.8-3.10: the `SETUP_WITH` jumping to it; 3.11+: the `BEFORE_WITH` just before the
/// first protected instruction of any exception-table entry targeting it.
pub fn with_statement_for_handler(
    dialect: Dialect,
    instructions: &[Instruction],
    entries: &[ExceptionEntry],
    handler: usize,
) -> Option<usize> {
    let minor = dialect.0;
    // `async with` is named at its BEFORE_ASYNC_WITH, a few await instructions earlier.
    let async_entry = |idx: usize| entering_async_with(instructions, idx);
    if minor <= 10 {
        if let Some(idx) = instructions.iter().position(|ins| {
            ins.name == "SETUP_ASYNC_WITH"
                && ins.next
                    + if minor == 10 {
                        ins.arg as usize
                    } else {
                        ins.arg as usize / 2
                    }
                    == handler
        }) {
            return async_entry(idx);
        }
        instructions.iter().position(|ins| {
            ins.name == "SETUP_WITH" && {
                // Relative jump from the next instruction; bytes before 3.10.
                let delta = if minor == 10 {
                    ins.arg as usize
                } else {
                    ins.arg as usize / 2
                };
                ins.next + delta == handler
            }
        })
    } else {
        let start = entries
            .iter()
            .filter(|e| e.target == handler)
            .map(|e| e.start)
            .min()?;
        let idx = instructions.iter().position(|ins| ins.next == start)?;
        entering_with(dialect, instructions, idx).or_else(|| async_entry(idx))
    }
}

/// Whether the handler at `target` is a `with` statement's cleanup.
pub fn is_with_cleanup(dialect: Dialect, instructions: &[Instruction], target: usize) -> bool {
    let minor = dialect.0;
    let Some(i) = instructions.iter().position(|ins| ins.offset == target) else {
        return false;
    };
    match minor {
        8 => instructions[i].name == "WITH_CLEANUP_START",
        9 | 10 => instructions[i].name == "WITH_EXCEPT_START",
        _ => {
            instructions[i].name == "PUSH_EXC_INFO"
                && instructions.get(i + 1).map(|n| n.name) == Some("WITH_EXCEPT_START")
        }
    }
}
