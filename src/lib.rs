//! gridlock: why is this Python process stuck?
//!
//! The core reads a running CPython process from outside (`target`, `cpython`), builds a
//! snapshot of who holds and who waits (`snapshot`), finds deadlocks, stalls and orphaned
//! locks (`analysis`) and renders the report contract's document (`model`, `report`).
//! Nothing here touches a terminal UI.

pub mod analysis;
pub mod cli;
pub mod cpython;
pub mod duration;
pub mod error;
pub mod model;
pub mod report;
pub mod sampler;
pub mod snapshot;
pub mod target;
pub mod tree;
pub mod watch;

use std::time::Duration;

use model::{Command, Document, FindingKind};

/// Attach to `pid`, sample it over `window`, and return the report document.
pub fn dump(pid: i32, window: Duration, locals: bool, command: Command) -> error::Result<Document> {
    let mut target = target::Target::attach(pid)?;
    target.locals = locals;
    let snaps = sampler::sample_window(&mut target, window, sampler::DUMP_SNAPSHOTS)?;
    Ok(analysis::document(&snaps, target.process.clone(), command))
}

/// Whether a document fails under the given kinds (empty: the contract's error kinds).
pub fn fails(doc: &Document, fail_on: &[FindingKind]) -> bool {
    doc.findings.iter().any(|f| {
        if fail_on.is_empty() {
            f.severity == model::Severity::Error
        } else {
            fail_on.contains(&f.kind) || f.severity == model::Severity::Error
        }
    })
}
