//! The report contract's document (`shared/design/report-contract.md`): one serde model that
//! every output renders (text, JSON, DOT, and later the TUI). Fields are only ever added.
//!
//! Each child answers one question about the document and names only the children it builds on;
//! every type is re-exported here, so callers write `crate::model::Thread`.

mod celery;
mod document;
mod evidence;
mod findings;
mod frames;
mod gil;
mod locks;
mod lookups;
mod processes;
mod tasks;
mod threads;
mod writes;

pub use celery::*;
pub use document::*;
pub use evidence::*;
pub use findings::*;
pub use frames::*;
pub use gil::*;
pub use locks::*;
pub use processes::*;
pub use tasks::*;
pub use threads::*;
pub use writes::*;
