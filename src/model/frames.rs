//! A stack frame as the document shows it (`function file:line`, optional locals). It
//! names no other part of the document.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
    /// With `--locals`: the frame's local variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locals: Option<Vec<Local>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Local {
    pub name: String,
    pub address: String,
    /// A short rendering: the value of an int, str or None, otherwise `<type at address>`.
    pub repr: String,
}

impl Frame {
    /// `function file:line`, the contract's `site`.
    pub fn site(&self) -> String {
        format!("{} {}:{}", self.function, short_file(&self.file), self.line)
    }
}

pub fn short_file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
