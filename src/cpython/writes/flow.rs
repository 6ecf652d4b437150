//! Which loops, name-rebinding instructions and exception handlers a code object has: the
//! control flow that reachability needs. It decides no reachability itself and reads no
//! memory.

use crate::cpython::bytecode::{self, CodeNames, ExceptionEntry, Instruction, Root};

/// The code of exception handlers (`except` bodies, the exceptional copy of a `finally`):
/// from a handler's entry to its first `POP_EXCEPT` or re-raise. 3.11+: handler entries are
/// exception-table targets; 3.8-3.10: `SETUP_FINALLY` targets.
pub(super) fn handlers(
    minor: u8,
    instructions: &[Instruction],
    entries: &[ExceptionEntry],
) -> Vec<(usize, usize)> {
    let mut starts: Vec<usize> = if minor >= 11 {
        entries
            .iter()
            .filter_map(|e| bytecode::index_at(instructions, e.target))
            .filter(|&i| instructions[i].name == "PUSH_EXC_INFO")
            .collect()
    } else {
        instructions
            .iter()
            .filter(|ins| ins.name == "SETUP_FINALLY")
            .filter_map(|ins| {
                // Relative jump from the next instruction; bytes before 3.10.
                let delta = if minor == 10 {
                    ins.arg as usize
                } else {
                    ins.arg as usize / 2
                };
                bytecode::index_at(instructions, ins.next + delta)
            })
            // 3.8 runs a `finally` body on the normal path too, falling into it.
            .filter(|&i| i == 0 || instructions[i - 1].name != "BEGIN_FINALLY")
            .collect()
    };
    starts.sort_unstable();
    starts.dedup();
    starts
        .into_iter()
        .filter_map(|s| {
            let end = (s..instructions.len()).find(|&i| {
                matches!(
                    instructions[i].name,
                    "POP_EXCEPT" | "RERAISE" | "END_FINALLY" | "RAISE_VARARGS"
                )
            })?;
            Some((s, end))
        })
        .collect()
}

/// The instruction a jump goes to, for jumps that go backward.
fn backward_target(minor: u8, ins: &Instruction) -> Option<usize> {
    bytecode::jump_target(minor, ins).filter(|&t| t <= ins.offset)
}

pub(super) fn loops(minor: u8, instructions: &[Instruction]) -> Vec<(usize, usize)> {
    instructions
        .iter()
        .enumerate()
        .filter_map(|(j, ins)| {
            let t = backward_target(minor, ins)?;
            Some((bytecode::index_at(instructions, t)?, j))
        })
        .collect()
}

pub(super) fn rebinds(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    module_level: bool,
) -> Vec<(usize, Root)> {
    let local = |i: usize| names.locals.get(i).cloned();
    let mut out = Vec::new();
    for (k, ins) in instructions.iter().enumerate() {
        let arg = ins.arg as usize;
        let mut push = |r: Option<Root>| {
            if let Some(r) = r {
                out.push((k, r));
            }
        };
        match ins.name {
            "STORE_FAST" | "DELETE_FAST" | "STORE_FAST_MAYBE_NULL" => {
                push(local(arg).map(Root::Local))
            }
            "STORE_FAST_STORE_FAST" => {
                push(local(arg >> 4).map(Root::Local));
                push(local(arg & 15).map(Root::Local));
            }
            "STORE_FAST_LOAD_FAST" => push(local(arg >> 4).map(Root::Local)),
            "STORE_DEREF" | "DELETE_DEREF" => {
                let n = if minor >= 11 {
                    names.locals.get(arg)
                } else {
                    names.cells.get(arg)
                };
                push(n.cloned().map(Root::Deref))
            }
            "STORE_GLOBAL" | "DELETE_GLOBAL" => {
                push(names.names.get(arg).cloned().map(Root::Global))
            }
            "STORE_NAME" | "DELETE_NAME" if module_level => {
                push(names.names.get(arg).cloned().map(Root::Global))
            }
            _ => {}
        }
    }
    out
}
