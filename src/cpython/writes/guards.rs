//! Which lock expressions guard an instruction: the `with` statements around it (3.11+ by
//! the exception table, 3.8-3.10 by `SETUP_WITH` spans) and `X.acquire()` ... `X.release()`
//! spans. It says nothing about what is written, and reads no memory.

use crate::cpython::bytecode::{self, evaluate_before, CodeNames, ExceptionEntry, Instruction};
use crate::cpython::layout::Dialect;

use super::code::Guard;

fn guard_at(minor: u8, instructions: &[Instruction], at: usize, names: &CodeNames) -> Guard {
    let sym = evaluate_before(minor, instructions, at, names)
        .and_then(|st| st.into_iter().flatten().last());
    Guard {
        path: sym.as_ref().and_then(|s| s.path.clone()),
        text: sym.map(|s| s.text),
    }
}

/// 3.11+: the `with` statements whose cleanup handlers cover the instruction, following
/// handlers outward as the interpreter would on an exception.
pub(super) fn withs_by_exception_table(
    minor: u8,
    instructions: &[Instruction],
    entries: &[ExceptionEntry],
    names: &CodeNames,
    index: usize,
) -> Vec<Guard> {
    let mut out = Vec::new();
    let mut unit = instructions[index].offset;
    let mut visited = Vec::new();
    while let Some(entry) = bytecode::covering(entries, unit) {
        if visited.contains(&entry.target) || visited.len() > 64 {
            break;
        }
        visited.push(entry.target);
        if bytecode::is_with_cleanup(Dialect(minor), instructions, entry.target) {
            if let Some(s) = bytecode::with_statement_for_handler(
                Dialect(minor),
                instructions,
                entries,
                entry.target,
            ) {
                if bytecode::is_with_entry(Dialect(minor), instructions, s) {
                    out.push(guard_at(minor, instructions, s, names));
                }
            }
        }
        unit = entry.target;
    }
    out
}

/// 3.8-3.10: each `SETUP_WITH` and the handler it jumps to bound its body, as
/// (statement, handler) instruction indices with the guard.
pub(super) fn with_spans_by_setup(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
) -> Vec<(usize, usize, Guard)> {
    let mut out = Vec::new();
    for (s, ins) in instructions.iter().enumerate() {
        if ins.name != "SETUP_WITH" {
            continue;
        }
        // Relative jump from the next instruction; bytes before 3.10.
        let delta = if minor == 10 {
            ins.arg as usize
        } else {
            ins.arg as usize / 2
        };
        let Some(end) = bytecode::index_at(instructions, ins.next + delta) else {
            continue;
        };
        out.push((s, end, guard_at(minor, instructions, s, names)));
    }
    out
}

/// `X.acquire()` ... `X.release()` in one code object: from each acquire to the first release
/// of the same expression after it (the normal path of a `try: ... finally: X.release()`).
pub(super) fn acquire_spans(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
) -> Vec<(usize, usize, Guard)> {
    // Found at the method lookup, not the call: the call's arguments can be anything
    // (`X.acquire(timeout=-1 if d is None else d)`), the lookup is on a name chain.
    let calls = method_lookups(minor, instructions, names, &["acquire", "release"]);
    let mut out = Vec::new();
    for (a, method, guard) in &calls {
        if method != "acquire" {
            continue;
        }
        let end = calls
            .iter()
            .find(|(r, m, g)| r > a && m == "release" && g.text == guard.text)
            .map(|(r, _, _)| *r)
            .unwrap_or(instructions.len());
        out.push((*a, end, guard.clone()));
    }
    out
}

/// Where code looks up one of `methods` on an expression (`X.callback` before its call), as
/// (lookup instruction index, method, `X`), in code order.
pub(super) fn method_lookups(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    methods: &[&str],
) -> Vec<(usize, String, Guard)> {
    instructions
        .iter()
        .enumerate()
        .filter_map(|(k, ins)| {
            let arg = ins.arg as usize;
            let idx = match ins.name {
                "LOAD_METHOD" => arg,
                "LOAD_ATTR" if minor >= 12 => arg >> 1,
                "LOAD_ATTR" => arg,
                _ => return None,
            };
            let method = names.names.get(idx)?;
            if !methods.contains(&method.as_str()) {
                return None;
            }
            let receiver = evaluate_before(minor, instructions, k, names)
                .and_then(|st| st.into_iter().last().flatten())?;
            Some((
                k,
                method.clone(),
                Guard {
                    text: Some(receiver.text),
                    path: receiver.path,
                },
            ))
        })
        .collect()
}
