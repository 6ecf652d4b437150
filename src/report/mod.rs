//! Printers: each a function of (&Document, impl Write). None of them computes anything new.

pub mod dot;
mod dot_parts;
mod dot_tasks;
pub mod escape;
pub mod gil;
pub mod junit;
pub mod kernel;
mod labels;
mod task_tree;
pub mod text;
pub mod timing;

use std::io::Write;

use crate::model::Document;

pub fn json<W: Write>(doc: &Document, mut out: W) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, doc)?;
    writeln!(out)
}
