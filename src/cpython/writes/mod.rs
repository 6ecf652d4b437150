//! Which shared locations a code object writes, and which locks guard each write lexically
//! (the `with` blocks around it, an `X.acquire()` ... `X.release()` span): decoded once per code
//! object. Also whether a frame at one instruction can still reach a write with the names it
//! resolves through still bound as they are now. It reads no memory and names no object.
//!
//! One file per question; this one only names them and what the rest of the crate may use:
//! - `code`: what one code object's writes and calls are, and whether a frame can still reach
//!   one (`CodeWrites::reachable`);
//! - `decode`: which writes and calls a code object makes, put together with their guards;
//! - `guards`: which lock expressions guard an instruction (`with` blocks, acquire spans);
//! - `confined`: which writes no other thread can make (owner branches, objects being built);
//! - `flow`: which loops, rebinding instructions and exception handlers a code object has;
//! - `arguments`: which name chains a call passes as its positional arguments.

mod arguments;
mod code;
mod confined;
mod decode;
mod flow;
mod guards;

pub use arguments::{Argument, CallArguments};
pub use code::{CodeCall, CodeWrite, CodeWrites, Guard};
pub use decode::decode;

/// `X.acquire()` ... `X.release()` spans of one code object, as (acquire lookup, first
/// release lookup after it or the code's end, `X`) instruction indices.
pub fn acquire_spans(
    minor: u8,
    instructions: &[crate::cpython::bytecode::Instruction],
    names: &crate::cpython::bytecode::CodeNames,
) -> Vec<(usize, usize, Guard)> {
    guards::acquire_spans(minor, instructions, names)
}

/// Where a code object looks up one of `methods` on an expression, as (lookup instruction
/// index, method, the expression), in code order.
pub fn method_lookups(
    minor: u8,
    instructions: &[crate::cpython::bytecode::Instruction],
    names: &crate::cpython::bytecode::CodeNames,
    methods: &[&str],
) -> Vec<(usize, String, Guard)> {
    guards::method_lookups(minor, instructions, names, methods)
}

/// The arguments (name chains, or `None`; positional and by keyword) of the call of what the
/// instruction at `lookup` loads under `name`; `None` where that call is not found or not
/// followed.
pub fn call_arguments(
    minor: u8,
    instructions: &[crate::cpython::bytecode::Instruction],
    names: &crate::cpython::bytecode::CodeNames,
    lookup: usize,
    name: &str,
) -> Option<CallArguments> {
    arguments::call_arguments(minor, instructions, names, lookup, name)
}

#[cfg(test)]
pub(crate) mod tests;
