//! CPython internals, read from outside: per-version layouts behind one trait, object
//! readers, a bytecode decoder and the thread/frame walker.

pub mod bytecode;
pub mod functions;
pub mod layout;
pub mod lines;
pub mod objects;
#[rustfmt::skip]
pub mod opcodes;
pub mod threads;
pub mod writes;

pub use layout::{for_version, VersionLayout};
