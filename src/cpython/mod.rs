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

/// The CPython versions gridlock reads ("3.8", ...), straight from the layout table so the
/// list `--version` prints cannot drift from what attaching accepts.
pub fn supported_versions() -> Vec<String> {
    (0..=40)
        .filter(|&minor| for_version(3, minor).is_some())
        .map(|minor| format!("3.{minor}"))
        .collect()
}
