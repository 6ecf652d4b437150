//! What a suspended frame's code and current instruction tell, decoded once per
//! (code object, instruction) per snapshot: ten thousand tasks parked on the same `await`
//! share one entry instead of each decoding the line table and the bytecode again.

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::cpython::threads::{CodeInfo, RawFrame};
use crate::cpython::{bytecode, Dialect};
use crate::model::{short_file, Frame};

use super::types::AddrMap;

#[derive(Debug)]
pub struct FrameFacts {
    /// Keeps the code object alive while its address is a key of the table.
    code: Arc<CodeInfo>,
    index: Option<usize>,
    dialect: Dialect,
    /// `function`, `file` and the current line.
    pub frame: Frame,
    /// `function file:line`.
    pub site: String,
    /// The frame is asyncio's own code (`/asyncio/` in its path).
    pub in_asyncio: bool,
    /// The file's last path component (`locks.py`).
    pub file: String,
    /// The function's name without its qualification (`acquire` of `Lock.acquire`).
    pub function: String,
    /// 3.8-3.10: suspended in a `YIELD_FROM` (an `await`); 3.11+ have no such marker: true.
    pub yield_from: bool,
    /// How the awaiting code names what it awaits, decoded when first asked.
    awaited: OnceCell<Option<String>>,
    /// The method the current instruction calls, decoded when first asked.
    called: OnceCell<Option<String>>,
    /// Index of the local `self` among the frame's slots.
    pub self_slot: Option<usize>,
    /// The code has an `async with` (only those can hold an `asyncio.Lock`).
    pub async_with: bool,
}

impl FrameFacts {
    /// How the awaiting code names what it awaits (`q` in `await q.get()`).
    pub fn awaited_name(&self) -> Option<&str> {
        self.awaited
            .get_or_init(|| awaited_name(self.dialect, &self.code, self.index?))
            .as_deref()
    }
}

impl FrameFacts {
    /// The method a frame suspended in a call is calling (`run_until_complete` of
    /// `self._loop.run_until_complete(task)`), from the bytecode of that call.
    pub fn called_method(&self) -> Option<&str> {
        self.called
            .get_or_init(|| {
                let idx = self.index?;
                let ins = &self.code.instructions;
                let at = (idx.saturating_sub(2)..=idx).rev().find(|&i| {
                    matches!(
                        ins[i].name,
                        "CALL_METHOD" | "CALL_FUNCTION" | "CALL_FUNCTION_KW" | "CALL" | "CALL_KW"
                    )
                })?;
                bytecode::call_receiver(self.dialect, ins, at, &self.code.names).map(|(_, m)| m)
            })
            .as_deref()
    }
}

/// (code object, current instruction) -> its facts, for one snapshot.
#[derive(Default)]
pub struct Facts {
    by_site: AddrMap<(usize, usize), Rc<FrameFacts>>,
}

impl Facts {
    pub fn of(&mut self, dialect: Dialect, rf: &RawFrame) -> Rc<FrameFacts> {
        let key = (
            Arc::as_ptr(&rf.code) as usize,
            rf.instr.unwrap_or(usize::MAX),
        );
        if let Some(f) = self.by_site.get(&key) {
            return f.clone();
        }
        let f = Rc::new(decode(dialect, rf));
        self.by_site.insert(key, f.clone());
        f
    }
}

fn decode(dialect: Dialect, rf: &RawFrame) -> FrameFacts {
    let code = &rf.code;
    let frame = Frame {
        function: code.name.clone(),
        file: code.filename.clone(),
        line: rf.instr.and_then(|u| code.line_at(u)).unwrap_or(0),
        locals: None,
        parameters: code.parameters.clone(),
    };
    let index = rf
        .instr
        .and_then(|u| bytecode::index_at(&code.instructions, u));
    let ins = &code.instructions;
    let yield_from = !dialect.marks_yield_from()
        || index
            .map(|i| {
                // `f_lasti` is moved back one instruction on suspension, so YIELD_FROM is next.
                ins[i].name == "YIELD_FROM" || ins.get(i + 1).map(|n| n.name) == Some("YIELD_FROM")
            })
            .unwrap_or(false);
    let mut names: Vec<&String> = code.names.locals.iter().collect();
    if dialect.cells_named_apart() {
        names.extend(code.names.cells.iter());
    }
    let self_slot = names
        .iter()
        .position(|n| n.as_str() == "self")
        .filter(|i| *i < code.nlocalsplus);
    FrameFacts {
        site: frame.site(),
        in_asyncio: code.filename.contains("/asyncio/"),
        file: short_file(&code.filename).to_string(),
        function: code.name.rsplit('.').next().unwrap_or("").to_string(),
        yield_from,
        awaited: OnceCell::new(),
        called: OnceCell::new(),
        index,
        dialect,
        self_slot,
        async_with: bytecode::has_async_with(ins),
        frame,
        code: rf.code.clone(),
    }
}

/// How the awaiting frame names what it awaits: the subject of the `async with` being
/// entered, or the receiver of the awaited call (`q` in `await q.get()`).
fn awaited_name(dialect: Dialect, code: &CodeInfo, idx: usize) -> Option<String> {
    let lo = idx.saturating_sub(10);
    if let Some(at) = bytecode::entering_async_with(&code.instructions, idx) {
        return bytecode::with_subject(dialect, &code.instructions, at, &code.names);
    }
    let at = (lo..=idx).rev().find(|&i| {
        matches!(
            code.instructions[i].name,
            "CALL_METHOD" | "CALL_FUNCTION" | "CALL" | "PRECALL"
        )
    })?;
    bytecode::call_receiver(dialect, &code.instructions, at, &code.names).map(|(r, _)| r)
}
