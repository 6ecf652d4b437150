//! A small bytecode decoder: instructions, the 3.11+ exception table, and symbolic evaluation
//! of the expression that produced a value (how code names a lock: `src.lock`, `forks[2]`).
//! Names come from the code object, never from source text, so they survive edited files.
//!
//! One file per question; this one only names them and what the rest of the crate may use:
//! - `decode`: which instructions and exception-table entries a code object's bytes hold;
//! - `eval`: which value (a name chain, a rendering) the expression before an instruction
//!   leaves on the stack;
//! - `control`: where a jump goes and whether a comparison tests identity;
//! - `withs`: which `with` statement an instruction enters or a handler cleans up, and what a
//!   `with` or a call is made on;
//! - `writes`: which shared locations one line's instructions write.

mod control;
mod decode;
mod eval;
mod withs;
mod writes;

pub use super::opcode_table::OpcodeTable;
pub(super) use control::{is_identity_test, jump_target};
pub use decode::{covering, decode, exception_table, index_at, ExceptionEntry, Instruction};
pub(super) use eval::{evaluate_before, expression_start, Sym};
pub use eval::{CodeNames, Key, Path, Root};
pub use withs::{
    call_receiver, entering_async_with, entering_with, has_async_with, is_with_cleanup,
    is_with_entry, with_statement_for_handler, with_subject,
};
pub(super) use writes::writes_in;
pub use writes::{WriteTarget, ADD_OR_TAKE, MUTATORS};

#[cfg(test)]
pub(crate) mod tests;
