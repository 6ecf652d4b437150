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
    /// The function's parameters as its `def` names them (`src`, `dst`), for advice that
    /// spells the call (`transfer(src, dst)`); not part of the document.
    #[serde(skip)]
    pub parameters: Option<std::sync::Arc<[String]>>,
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
        frame_site(&self.function, &self.file, self.line)
    }
}

/// The `site` of a frame of `function` in `file` at `line`, without making the frame.
pub fn frame_site(function: &str, file: &str, line: u32) -> String {
    format!("{function} {}:{line}", short_file(file))
}

pub fn short_file(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where a thread's native frames started from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NativeSource {
    /// The stack pointer and program counter the kernel shows for the syscall the thread
    /// sleeps in (`/proc/PID/task/TID/syscall`): read without stopping it.
    Syscall,
    /// Its registers, read while it was held in a brief ptrace stop (`--native`).
    PtraceStop,
    /// The stack pointer and program counter a core dump kept of it (`NT_PRSTATUS`).
    CoreRegisters,
}

/// One native frame: the program counter or a return address, and the function symbol of
/// the mapped binary that covers it (none when the binary's symbols do not cover it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NativeFrame {
    /// `0x7f...`.
    pub address: String,
    pub symbol: Option<String>,
    /// Bytes into `symbol`.
    pub offset: Option<u64>,
    /// The binary's path as the target maps it.
    pub module: Option<String>,
    /// Found by scanning the stack for a return address where the unwind tables could not
    /// go on (a frame that needs a frame pointer the kernel does not show): likely, not certain.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scanned: bool,
    /// `symbol` is the nearest exported symbol before the address, not the function that
    /// contains it: the binary keeps only its exports (`.dynsym`) and none covers the address.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nearest_export: bool,
}

impl NativeFrame {
    /// `pthread_mutex_lock+0x96 (libc.so.6)`, or `0x7f.. (libc.so.6)` without a symbol;
    /// `, scanned` and `, nearest export` say how far to trust it.
    pub fn label(&self) -> String {
        let module = self.module.as_deref().map(short_file).unwrap_or("?");
        let marks = format!(
            "{}{}",
            if self.scanned { ", scanned" } else { "" },
            if self.nearest_export {
                ", nearest export"
            } else {
                ""
            }
        );
        match (&self.symbol, self.offset) {
            (Some(s), Some(off)) => format!("{s}+{off:#x} ({module}{marks})"),
            (Some(s), None) => format!("{s} ({module})"),
            _ => format!("{} ({module})", self.address),
        }
    }
}
