//! Which CPython versions gridlock supports, and the table `Layout` of one of 3.8-3.13 by
//! version number.

use super::asyncio::asyncio_offsets;
use super::locks::{LockLayouts, SEM_LOCK, SEM_RLOCK};
use super::offsets::{Layout, Offsets};
use super::stdlib::stdlib_offsets;
use super::tables::{before_311, from_312, V311};
use crate::cpython::opcode_table::OpcodeTable;
use crate::cpython::opcodes;

/// The oldest and newest CPython minor versions gridlock is tested on (3.`OLDEST`..3.`NEWEST`).
pub const OLDEST: u8 = 8;
pub const NEWEST: u8 = 15;

/// The supported range as users read it ("3.8 to 3.15").
pub fn supported_range() -> String {
    format!("3.{OLDEST} to 3.{NEWEST}")
}

/// The table layout for CPython `major.minor.patch`, if this file knows it.
pub fn for_version(major: u64, minor: u64, patch: u64) -> Option<Layout> {
    if major != 3 {
        return None;
    }
    let minor = u8::try_from(minor).ok()?;
    let (offsets, opcodes): (Offsets, &'static OpcodeTable) = match minor {
        8 => (before_311(8), &opcodes::V3_8),
        9 => (before_311(9), &opcodes::V3_9),
        10 => (before_311(10), &opcodes::V3_10),
        11 => (V311, &opcodes::V3_11),
        12 => (from_312(12), &opcodes::V3_12),
        13 => (from_312(13), &opcodes::V3_13),
        _ => return None,
    };
    Some(Layout {
        minor,
        version: format!("{major}.{minor}.{patch}"),
        offsets,
        asyncio: asyncio_offsets(minor),
        asyncio_published: None,
        opcodes,
        locks: LockLayouts {
            lock: Some(SEM_LOCK),
            rlock: Some(SEM_RLOCK),
        },
        locks_checked: false,
        interpreter_fields_pending: None,
        stdlib: stdlib_offsets(minor),
        notes: Vec::new(),
    })
}
