//! Where a jump goes, and whether a comparison tests identity (`==`, `is`): the control flow
//! facts of single instructions. It follows no paths itself and reads no memory.

use super::decode::Instruction;

/// Whether the instruction compares two values for sameness: `==` or `is`.
pub(in crate::cpython) fn is_identity_test(minor: u8, ins: &Instruction) -> bool {
    const EQ: u32 = 2;
    match ins.name {
        "IS_OP" => ins.arg == 0,
        // 3.8 spells `is` as a comparison (8).
        "COMPARE_OP" if minor <= 8 => ins.arg == EQ || ins.arg == 8,
        "COMPARE_OP" if minor <= 11 => ins.arg == EQ,
        // 3.12: the comparison in the high bits; 3.13+: above a bool-conversion flag.
        "COMPARE_OP" if minor == 12 => ins.arg >> 4 == EQ,
        "COMPARE_OP" => ins.arg >> 5 == EQ,
        _ => false,
    }
}

/// Where a jump goes (code units), for the jumps that loops and `if`s compile to: absolute
/// before 3.11 (bytes before 3.10, code units in 3.10); from 3.11 relative to the next
/// instruction, backward when the name says so (`POP_JUMP_IF_*` is forward from 3.12).
pub(in crate::cpython) fn jump_target(minor: u8, ins: &Instruction) -> Option<usize> {
    let arg = ins.arg as usize;
    if minor <= 10 {
        let absolute = matches!(
            ins.name,
            "JUMP_ABSOLUTE"
                | "POP_JUMP_IF_FALSE"
                | "POP_JUMP_IF_TRUE"
                | "JUMP_IF_FALSE_OR_POP"
                | "JUMP_IF_TRUE_OR_POP"
                | "JUMP_IF_NOT_EXC_MATCH"
        );
        return absolute.then_some(if minor == 10 { arg } else { arg / 2 });
    }
    if ins.name.starts_with("JUMP_BACKWARD") || ins.name.starts_with("POP_JUMP_BACKWARD") {
        ins.next.checked_sub(arg)
    } else if ins.name.starts_with("POP_JUMP_") {
        Some(ins.next + arg)
    } else {
        None
    }
}
