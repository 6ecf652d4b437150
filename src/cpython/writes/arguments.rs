//! Which expressions a call passes as its positional arguments: for the function or method a
//! code object looks up at one instruction (`take` in `take(q)`, `self._drain` in
//! `self._drain()`), the name chains its call's arguments are, so a callee's parameters can
//! be resolved in the caller's frame. It reads no memory; a call it cannot follow (keyword
//! arguments, `*args`, an argument that is no name chain) gives `None` for that argument or
//! for the whole call.

use crate::cpython::bytecode::{evaluate_before, CodeNames, Instruction, Path};

/// How far past its lookup a call instruction is looked for (its arguments' loads).
const MAX_CALL_DISTANCE: usize = 64;

/// The positional arguments of the call of what `instructions[lookup]` loads (named `name`),
/// each a name chain or `None`; `None` if that call is not found.
pub(super) fn call_arguments(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    lookup: usize,
    name: &str,
) -> Option<Vec<Option<Path>>> {
    let end = instructions.len().min(lookup + MAX_CALL_DISTANCE);
    for j in lookup + 1..end {
        let ins = &instructions[j];
        // 3.11's PRECALL comes first with the same count; CALL_KW / CALL_FUNCTION_KW /
        // CALL_FUNCTION_EX calls are not followed (the walk stops at them).
        match ins.name {
            "CALL" | "CALL_METHOD" | "CALL_FUNCTION" | "PRECALL" => {}
            "CALL_KW" | "CALL_FUNCTION_KW" | "CALL_FUNCTION_EX" | "KW_NAMES" => return None,
            _ => continue,
        }
        let Some(stack) = evaluate_before(minor, instructions, j, names) else {
            continue;
        };
        let argc = ins.arg as usize;
        if stack.len() <= argc {
            continue;
        }
        let (below, args) = stack.split_at(stack.len() - argc);
        let callable = below.iter().rev().find_map(|s| s.as_ref());
        let named = callable.is_some_and(|c| {
            c.text == name
                || c.text
                    .strip_suffix(name)
                    .is_some_and(|head| head.ends_with('.'))
        });
        if named {
            return Some(
                args.iter()
                    .map(|a| a.as_ref().and_then(|s| s.path.clone()))
                    .collect(),
            );
        }
    }
    None
}
