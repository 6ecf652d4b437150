//! Which writes and calls a code object makes, each with the locks guarding it, put together
//! from the other files' answers. It reads no memory; how guards, confinement and control
//! flow are found is theirs.

use crate::cpython::bytecode::{
    evaluate_before, writes_in, CodeNames, ExceptionEntry, Instruction, Path,
};
use crate::cpython::layout::Dialect;

use super::code::{CodeCall, CodeWrite, CodeWrites, Guard};
use super::confined::{owner_branches, under_construction};
use super::flow::{handlers, loops, rebinds};
use super::guards::{acquire_spans, with_spans_by_setup, withs_by_exception_table};

/// Decode a code object's writes. `lines[i]` is the line of instruction `i`.
pub fn decode(
    minor: u8,
    instructions: &[Instruction],
    exception_table: &[ExceptionEntry],
    names: &CodeNames,
    module_level: bool,
    lines: &[Option<u32>],
) -> CodeWrites {
    let mut writes = Vec::new();
    let owner_branches = owner_branches(minor, instructions, names);
    // One source line at a time: augmented assignments are recognised within their line.
    let mut start = 0;
    while start < instructions.len() {
        let mut end = start + 1;
        while end < instructions.len() && lines.get(end) == lines.get(start) {
            end += 1;
        }
        for (index, target) in writes_in(
            Dialect(minor),
            instructions,
            start..end,
            start,
            names,
            module_level,
        ) {
            if under_construction(instructions, names, index, &target) {
                continue;
            }
            if owner_branches.iter().any(|&(s, e)| s < index && index < e) {
                continue;
            }
            writes.push(CodeWrite {
                index,
                line: lines.get(index).copied().flatten(),
                target,
                guards: Vec::new(),
            });
        }
        start = end;
    }
    let spans = acquire_spans(minor, instructions, names);
    let with_spans = if minor <= 10 {
        with_spans_by_setup(minor, instructions, names)
    } else {
        Vec::new()
    };
    let guards_at = |index: usize| -> Vec<Guard> {
        let mut guards = if minor >= 11 {
            withs_by_exception_table(minor, instructions, exception_table, names, index)
        } else {
            with_spans
                .iter()
                .rev()
                .filter(|(s, e, _)| *s < index && index < *e)
                .map(|(_, _, g)| g.clone())
                .collect()
        };
        guards.extend(
            spans
                .iter()
                .filter(|(s, e, _)| *s < index && index < *e)
                .map(|(_, _, g)| g.clone()),
        );
        guards
    };
    for w in &mut writes {
        w.guards = guards_at(w.index);
    }
    let calls = callees(minor, instructions, names, module_level)
        .into_iter()
        .map(|(index, receiver, name)| CodeCall {
            index,
            receiver,
            name,
            guards: guards_at(index),
        })
        .collect();
    CodeWrites {
        writes,
        calls,
        loops: loops(minor, instructions),
        rebinds: rebinds(minor, instructions, names, module_level),
        handlers: handlers(minor, instructions, exception_table),
    }
}

/// Functions named to be called: a global (`LOAD_GLOBAL`, or `LOAD_NAME` at module level)
/// or a method lookup (`LOAD_METHOD`, 3.12+ `LOAD_ATTR` with its method bit) on a name chain.
fn callees(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    module_level: bool,
) -> Vec<(usize, Option<Path>, String)> {
    let mut out = Vec::new();
    for (k, ins) in instructions.iter().enumerate() {
        let arg = ins.arg as usize;
        let (name, method) = match ins.name {
            "LOAD_GLOBAL" if minor >= 11 => (names.names.get(arg >> 1), false),
            "LOAD_GLOBAL" => (names.names.get(arg), false),
            "LOAD_NAME" if module_level => (names.names.get(arg), false),
            "LOAD_METHOD" => (names.names.get(arg), true),
            "LOAD_ATTR" if minor >= 12 && arg & 1 == 1 => (names.names.get(arg >> 1), true),
            _ => continue,
        };
        let Some(name) = name.cloned() else {
            continue;
        };
        if !method {
            out.push((k, None, name));
            continue;
        }
        let receiver = evaluate_before(minor, instructions, k, names)
            .and_then(|st| st.into_iter().last().flatten())
            .and_then(|s| s.path);
        if let Some(receiver) = receiver {
            out.push((k, Some(receiver), name));
        }
    }
    out
}
