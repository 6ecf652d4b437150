//! CPython internals, read from outside: per-version layouts behind one trait, object
//! readers, a bytecode decoder and the thread/frame walker.

pub mod bytecode;
pub mod layout;
pub mod lines;
pub mod objects;
pub mod stdlib;
#[rustfmt::skip]
pub mod opcodes;
pub mod threads;

pub use layout::{for_version, VersionLayout};
