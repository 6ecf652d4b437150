//! What a frame at one instruction of a code object has open and can still do, as far as the
//! bytecode alone tells: the instruction's index and line, the `with` blocks the exception
//! table opens around it (3.11+), the call it is making, and the writes and calls it can still
//! reach. All are pure functions of the code object and the instruction, decoded once per
//! (code object, instruction) and kept on the code object's `CodeInfo` (`threads`; itself
//! cached by address and checked against the object's name and line table on each use, since
//! addresses are reused). Bounded: at most `MAX_INSTRUCTIONS` instructions per code object are kept;
//! others are decoded on each use. It reads no memory: which objects those names hold now is
//! the caller's to read.

use std::sync::{Arc, Mutex, OnceLock};

use super::bytecode::{self, CodeNames, ExceptionEntry, Instruction};
use super::layout::Dialect;
use super::writes::CodeWrites;
use crate::memory::AddrMap;

/// The decoded parts of one code object the facts are decoded from.
#[derive(Clone, Copy)]
pub struct Code<'c> {
    pub minor: u8,
    pub instructions: &'c [Instruction],
    pub exception_table: &'c [ExceptionEntry],
    pub names: &'c CodeNames,
}

/// Instructions kept per code object: a hot function's frames stop at a handful of places
/// (calls, the eval breaker's backward jumps); a bound keeps a long recording flat.
pub const MAX_INSTRUCTIONS: usize = 256;

/// `with` statements kept per code object, by the index of the instruction that enters them.
const MAX_STATEMENTS: usize = 256;

/// The per-instruction facts of one code object (a field of its `CodeInfo`).
#[derive(Debug, Default)]
pub struct AtCache {
    /// By code unit (a frame's current instruction).
    units: Mutex<AddrMap<Arc<At>>>,
    /// By `with` statement index: how the code names what it enters, and the statement's line.
    statements: Mutex<AddrMap<Arc<WithStatement>>>,
    /// By 3.8-3.10 block handler (code units): the `with` statement a cleanup handler closes,
    /// `None` where the handler is no `with` cleanup.
    handlers: Mutex<AddrMap<Option<Option<usize>>>>,
}

/// A frame of a code object at one instruction.
#[derive(Debug)]
pub struct At {
    /// The index of the instruction executing at the unit, in the decoded code.
    pub index: Option<usize>,
    /// The line of that unit.
    pub line: Option<u32>,
    withs: OnceLock<Vec<TableWith>>,
    reach: OnceLock<Reach>,
    calling: OnceLock<Option<(String, String)>>,
}

/// A `with` block the 3.11+ exception table opens around an instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableWith {
    /// Value-stack depth of the handler: the `__exit__` slot is at `depth - 1`.
    pub depth: usize,
    /// The index of the instruction that entered it.
    pub statement: Option<usize>,
}

/// The writes and calls (indices into `CodeInfo::writes()`) a frame can still make.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reach {
    pub writes: Vec<usize>,
    pub calls: Vec<usize>,
}

/// How a `with` statement names what it enters (`self.lock`), and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WithStatement {
    pub subject: Option<String>,
    pub line: Option<u32>,
}

/// Get-or-insert into a bounded map: beyond `max` entries, the value is made and not kept.
fn kept<V: Clone>(map: &Mutex<AddrMap<V>>, key: usize, max: usize, make: impl FnOnce() -> V) -> V {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = map.get(&key) {
        return v.clone();
    }
    let v = make();
    if map.len() < max {
        map.insert(key, v.clone());
    }
    v
}

impl AtCache {
    /// How many instructions are kept.
    pub fn len(&self) -> usize {
        self.units.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A frame of `code` at `unit` (code units) whose line is `line()`, decoded once per unit.
    pub fn at(&self, code: Code, unit: usize, line: impl FnOnce() -> Option<u32>) -> Arc<At> {
        kept(&self.units, unit, MAX_INSTRUCTIONS, || {
            Arc::new(At {
                index: bytecode::index_at(code.instructions, unit),
                line: line(),
                withs: OnceLock::new(),
                reach: OnceLock::new(),
                calling: OnceLock::new(),
            })
        })
    }

    /// How the `with` statement entered at instruction `statement` names its subject, and its
    /// line `line()`, decoded once per statement.
    pub fn with_statement(
        &self,
        code: Code,
        statement: usize,
        line: impl FnOnce() -> Option<u32>,
    ) -> Arc<WithStatement> {
        kept(&self.statements, statement, MAX_STATEMENTS, || {
            Arc::new(WithStatement {
                subject: bytecode::with_subject(
                    Dialect(code.minor),
                    code.instructions,
                    statement,
                    code.names,
                ),
                line: line(),
            })
        })
    }

    /// The `with` statement a 3.8-3.10 block handler (code units) cleans up after: `None`
    /// when the handler is no `with` cleanup, `Some(None)` when it is one whose statement is
    /// not found. Decoded once per handler.
    pub fn handler_with(&self, code: Code, handler: usize) -> Option<Option<usize>> {
        kept(&self.handlers, handler, MAX_STATEMENTS, || {
            let dialect = Dialect(code.minor);
            bytecode::is_with_cleanup(dialect, code.instructions, handler).then(|| {
                bytecode::with_statement_for_handler(dialect, code.instructions, &[], handler)
            })
        })
    }
}

impl At {
    /// The `with` blocks the exception table opens around `unit` (this `At`'s unit), innermost
    /// first (3.11+; empty before).
    pub fn table_withs(&self, code: Code, unit: usize) -> &[TableWith] {
        self.withs.get_or_init(|| {
            let dialect = Dialect(code.minor);
            let mut out = Vec::new();
            let mut unit = unit;
            let mut visited = Vec::new();
            while let Some(entry) = bytecode::covering(code.exception_table, unit) {
                // Handlers nest outward; a repeated target would mean a malformed table.
                if visited.contains(&entry.target) || visited.len() > 64 {
                    break;
                }
                visited.push(entry.target);
                if entry.depth >= 1
                    && bytecode::is_with_cleanup(dialect, code.instructions, entry.target)
                {
                    out.push(TableWith {
                        depth: entry.depth,
                        statement: bytecode::with_statement_for_handler(
                            dialect,
                            code.instructions,
                            code.exception_table,
                            entry.target,
                        ),
                    });
                }
                unit = entry.target;
            }
            out
        })
    }

    /// The writes and calls of `decoded` (the code's) a frame here can still make with its
    /// names bound as they are now (`CodeWrites::reachable`).
    pub fn reach(&self, decoded: &CodeWrites) -> &Reach {
        self.reach.get_or_init(|| {
            let Some(at) = self.index else {
                return Reach::default();
            };
            Reach {
                writes: (decoded.writes.iter().enumerate())
                    .filter(|(_, w)| decoded.reachable(at, w))
                    .map(|(i, _)| i)
                    .collect(),
                calls: (decoded.calls.iter().enumerate())
                    .filter(|(_, c)| decoded.reachable_call(at, c))
                    .map(|(i, _)| i)
                    .collect(),
            }
        })
    }

    /// The call in progress here, as (receiver text, method): `("self.lock", "acquire")`.
    pub fn calling(&self, code: Code) -> Option<&(String, String)> {
        self.calling
            .get_or_init(|| {
                let at = self.index?;
                bytecode::call_receiver(Dialect(code.minor), code.instructions, at, code.names)
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests;
