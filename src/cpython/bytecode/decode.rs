//! Which instructions and 3.11+ exception-table entries a code object's bytes hold, and
//! which instruction runs at a code unit. It gives instructions no meaning beyond their names
//! and arguments, and reads no memory.

use crate::cpython::opcode_table::OpcodeTable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Offset in code units (2 bytes each).
    pub offset: usize,
    pub name: &'static str,
    pub arg: u32,
    /// Offset of the next instruction, in code units, after inline caches.
    pub next: usize,
}

/// Decode a code object's bytecode. `EXTENDED_ARG` prefixes fold into the following
/// instruction (which keeps the prefix's offset, as jumps target it); caches are skipped.
pub fn decode(table: &OpcodeTable, code: &[u8]) -> Vec<Instruction> {
    let mut out = Vec::with_capacity(code.len() / 2);
    let mut i = 0;
    let mut ext: u32 = 0;
    let mut start = None;
    while i + 1 < code.len() {
        let op = code[i];
        let name = table.name(op);
        let arg = ext << 8 | code[i + 1] as u32;
        let unit = i / 2;
        let next = unit + 1 + table.caches[op as usize] as usize;
        if name == "EXTENDED_ARG" {
            ext = arg;
            start.get_or_insert(unit);
        } else {
            out.push(Instruction {
                offset: start.take().unwrap_or(unit),
                name,
                arg,
                next,
            });
            ext = 0;
        }
        i = next * 2;
    }
    out
}

/// Index of the instruction that is executing at `unit` (the last one starting at or before it).
pub fn index_at(instructions: &[Instruction], unit: usize) -> Option<usize> {
    match instructions.binary_search_by(|ins| ins.offset.cmp(&unit)) {
        Ok(i) => Some(i),
        Err(0) => None,
        Err(i) => Some(i - 1),
    }
}

/// One entry of a 3.11+ exception table, in code units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExceptionEntry {
    pub start: usize,
    pub end: usize,
    pub target: usize,
    pub depth: usize,
    pub lasti: bool,
}

/// Parse `co_exceptiontable`: varint-encoded (start, length, target, depth<<1|lasti) records,
/// each starting with a byte whose bit 7 is set.
pub fn exception_table(raw: &[u8]) -> Vec<ExceptionEntry> {
    fn varint(raw: &[u8], pos: &mut usize) -> Option<usize> {
        let mut b = *raw.get(*pos)? as usize;
        *pos += 1;
        let mut val = b & 63;
        while b & 64 != 0 {
            val <<= 6;
            b = *raw.get(*pos)? as usize;
            *pos += 1;
            val |= b & 63;
        }
        Some(val)
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let mut read = || -> Option<ExceptionEntry> {
            let start = varint(raw, &mut pos)?;
            let length = varint(raw, &mut pos)?;
            let target = varint(raw, &mut pos)?;
            let dl = varint(raw, &mut pos)?;
            Some(ExceptionEntry {
                start,
                end: start + length,
                target,
                depth: dl >> 1,
                lasti: dl & 1 == 1,
            })
        };
        match read() {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}

pub fn covering(entries: &[ExceptionEntry], unit: usize) -> Option<&ExceptionEntry> {
    entries.iter().find(|e| e.start <= unit && unit < e.end)
}
