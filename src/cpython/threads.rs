//! Walk the interpreter's thread states and each thread's frames, straight from memory,
//! keeping what py-spy's public stack traces do not expose: frame and code addresses, the
//! current instruction, and the slots of each frame (locals and value stack).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::bytecode::{self, CodeNames, ExceptionEntry, Instruction};
use super::layout::{common::*, BlockScheme, Bytecode, Dialect, InstructionPointer, Offsets};
use super::objects::Objects;
use crate::error::{Error, Result};
use crate::memory::{AddrMap, ReadMemory};

const MAX_THREADS: usize = 4096;
pub(super) const MAX_FRAMES: usize = 2048;

/// What gridlock needs from one code object, read once and cached by address.
#[derive(Debug)]
pub struct CodeInfo {
    pub filename: String,
    pub name: String,
    pub instructions: Vec<Instruction>,
    pub exception_table: Vec<ExceptionEntry>,
    pub names: CodeNames,
    /// Its parameters as the `def` names them (`co_varnames[:co_argcount + co_kwonlyargcount]`),
    /// without `*args`/`**kwargs`; `None` when the counts read are not plausible.
    /// Shared with every frame of this code (a frame clones the `Arc`, not the names).
    pub parameters: Option<std::sync::Arc<[String]>>,
    /// Slots before the value stack: locals (+ cells + frees).
    pub nlocalsplus: usize,
    pub stacksize: usize,
    pub first_line: i32,
    pub line_table: Vec<u8>,
    minor: u8,
    /// What `read_code` checks a cached entry against before reuse (an address can be reused
    /// by another code object; one with the same interned name still has its own line table).
    name_ptr: usize,
    linetable_ptr: usize,
    /// Lines already decoded, by code unit: a line table is walked from its start for each
    /// lookup, and the same few instructions are looked up in every snapshot.
    lines: Mutex<AddrMap<Option<u32>>>,
    /// Its writes to shared locations, decoded on first use.
    writes: std::sync::OnceLock<super::writes::CodeWrites>,
    /// Its `X.acquire()` ... `X.release()` spans, decoded on first use.
    acquires: std::sync::OnceLock<Vec<(usize, usize, super::writes::Guard)>>,
    /// Per instruction: what a frame there has open and can still do (`code_at`).
    pub(super) at: super::code_at::AtCache,
}

impl CodeInfo {
    /// Whether this is the code object now at its address: one whose name and line table
    /// are the objects read there (a freed code object's address is reused by another).
    fn still(&self, name_ptr: usize, linetable_ptr: usize) -> bool {
        self.name_ptr == name_ptr && self.linetable_ptr == linetable_ptr
    }

    fn parts(&self) -> super::code_at::Code<'_> {
        super::code_at::Code {
            minor: self.minor,
            instructions: &self.instructions,
            exception_table: &self.exception_table,
            names: &self.names,
        }
    }

    /// A frame of this code at `unit` (code units): decoded once per unit (`code_at`).
    pub fn at(&self, unit: usize) -> Arc<super::code_at::At> {
        self.at.at(self.parts(), unit, || self.line_at(unit))
    }

    /// The writes and calls a frame at `at` can still make, decoded once per instruction.
    pub fn reach<'s>(&self, at: &'s super::code_at::At) -> &'s super::code_at::Reach {
        at.reach(self.writes())
    }

    /// The call in progress at `at`, as (receiver text, method).
    pub fn calling<'s>(&self, at: &'s super::code_at::At) -> Option<&'s (String, String)> {
        at.calling(self.parts())
    }

    /// How the `with` statement at instruction `statement` names its subject, and its line.
    pub fn with_statement(&self, statement: usize) -> Arc<super::code_at::WithStatement> {
        (self.at).with_statement(self.parts(), statement, || {
            self.line_of_instruction(statement)
        })
    }

    /// The `with` statement a 3.8-3.10 block handler closes (`AtCache::handler_with`).
    pub(super) fn handler_with(&self, handler: usize) -> Option<Option<usize>> {
        self.at.handler_with(self.parts(), handler)
    }

    /// The `with` blocks the exception table opens around `at` (3.11+).
    fn table_withs<'s>(
        &self,
        at: &'s super::code_at::At,
        unit: usize,
    ) -> &'s [super::code_at::TableWith] {
        at.table_withs(self.parts(), unit)
    }

    /// The source line of the instruction at `unit` (code units).
    pub fn line_at(&self, unit: usize) -> Option<u32> {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        *lines.entry(unit).or_insert_with(|| {
            super::lines::line_at(self.minor, &self.line_table, self.first_line, unit)
        })
    }

    /// The line of the `index`-th decoded instruction.
    pub fn line_of_instruction(&self, index: usize) -> Option<u32> {
        self.line_at(self.instructions.get(index)?.offset)
    }

    /// Its `X.acquire()` ... `X.release()` spans (acquire lookup, release lookup or end,
    /// `X`), decoded once: a frame between them holds what `X` names.
    pub fn acquires(&self) -> &[(usize, usize, super::writes::Guard)] {
        self.acquires.get_or_init(|| {
            super::writes::acquire_spans(self.minor, &self.instructions, &self.names)
        })
    }

    /// Where it looks up one of `methods` on an expression (`X.callback`), as (instruction
    /// index, method, `X`), in code order; decoded on each call.
    pub fn method_lookups(&self, methods: &[&str]) -> Vec<(usize, String, super::writes::Guard)> {
        super::writes::method_lookups(self.minor, &self.instructions, &self.names, methods)
    }

    /// The arguments (name chains, positional and by keyword) of the call a decoded call
    /// names.
    pub fn call_arguments(
        &self,
        c: &super::writes::CodeCall,
    ) -> Option<super::writes::CallArguments> {
        super::writes::call_arguments(
            self.minor,
            &self.instructions,
            &self.names,
            c.index,
            &c.name,
        )
    }

    /// The index of the instruction executing at `unit` (code units).
    pub fn index_at(&self, unit: usize) -> Option<usize> {
        bytecode::index_at(&self.instructions, unit)
    }

    /// Every write to a possibly shared location this code makes, decoded once.
    pub fn writes(&self) -> &super::writes::CodeWrites {
        self.writes.get_or_init(|| {
            let lines: Vec<Option<u32>> = (0..self.instructions.len())
                .map(|i| self.line_of_instruction(i))
                .collect();
            super::writes::decode(
                self.minor,
                &self.instructions,
                &self.exception_table,
                &self.names,
                self.name == "<module>",
                &lines,
            )
        })
    }
}

#[cfg(test)]
impl CodeInfo {
    /// A code object of 3.`minor` made of `instructions`, as `read_code` would keep it for
    /// one whose name and line table are the objects at `name_ptr` and `linetable_ptr`.
    pub(crate) fn for_test(
        minor: u8,
        instructions: Vec<Instruction>,
        names: CodeNames,
        (name_ptr, linetable_ptr): (usize, usize),
    ) -> CodeInfo {
        CodeInfo {
            filename: "t.py".into(),
            name: "f".into(),
            instructions,
            exception_table: Vec::new(),
            names,
            parameters: None,
            nlocalsplus: 1,
            stacksize: 4,
            first_line: 1,
            line_table: Vec::new(),
            minor,
            name_ptr,
            linetable_ptr,
            lines: Default::default(),
            writes: Default::default(),
            acquires: Default::default(),
            at: Default::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RawFrame {
    pub addr: usize,
    pub code: Arc<CodeInfo>,
    /// Current instruction, in code units.
    pub instr: Option<usize>,
}

/// Interpreters a process may run at once, at most, when walking their list.
const MAX_INTERPRETERS: usize = 4096;

/// The interpreters `_PyRuntime` lists from `head` (the newest first), while the layout knows
/// the links (3.12+; else `head` alone). An unreadable link ends the list.
pub fn interpreters(mem: &dyn ReadMemory, offsets: &Offsets, head: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = head;
    while at != 0 && out.len() < MAX_INTERPRETERS {
        out.push(at);
        let Some((next, _)) = offsets.interp_next_and_id else {
            break;
        };
        match mem.ptr(at + next) {
            Ok(p) => at = p,
            Err(_) => break,
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct RawThread {
    pub tstate: usize,
    pub thread_id: u64,
    pub native_id: Option<i32>,
    /// Innermost first.
    pub frames: Vec<RawFrame>,
}

/// A `with` block that is active in a frame: the object in its `__exit__` slot.
#[derive(Debug, Clone)]
pub struct ActiveWith {
    pub exit_slot: usize,
    /// Index of the instruction that entered it (`SETUP_WITH` / `BEFORE_WITH`), for naming.
    pub statement: Option<usize>,
}

pub struct Walker<'a> {
    pub objs: Objects<'a>,
    code_cache: HashMap<usize, Arc<CodeInfo>>,
    /// How long this snapshot has paused to read cut stacks again (`stack`).
    pub(super) paused: std::time::Duration,
}

impl<'a> Walker<'a> {
    pub fn new(objs: Objects<'a>) -> Self {
        Walker {
            objs,
            code_cache: HashMap::new(),
            paused: std::time::Duration::ZERO,
        }
    }

    /// The target's bytecode dialect, for the decoders in `bytecode`.
    pub fn dialect(&self) -> Dialect {
        self.objs.layout.dialect()
    }

    fn minor(&self) -> u8 {
        self.objs.layout.minor
    }

    /// A frame slot's object: 3.14+ slots are `_PyStackRef`s whose low bits are tags
    /// (bit 0 a borrowed reference, `& 3 == 3` a tagged int, not an object).
    pub fn slot_object(&self, bits: usize) -> usize {
        if !self.objs.layout.offsets.stackrefs {
            return bits;
        }
        if bits & 3 == 3 {
            0
        } else {
            bits & !3
        }
    }

    pub fn threads(&mut self, interp: usize) -> Result<Vec<RawThread>> {
        let offs = self.objs.layout.offsets;
        let mem = self.objs.mem;
        let mut tstate = mem.ptr(interp + offs.interp_threads_head)?;
        let mut out = Vec::new();
        while tstate != 0 {
            if out.len() >= MAX_THREADS {
                return Err(Error::Layout("thread list does not end".into()));
            }
            let thread_id = mem.u64(tstate + offs.tstate_thread_id)?;
            let native_id = match offs.tstate_native_thread_id {
                Some(off) => Some(mem.i32(tstate + off)?).filter(|t| *t > 0),
                None => None,
            };
            let frames = self.frames(tstate).unwrap_or_default();
            out.push(RawThread {
                tstate,
                thread_id,
                native_id,
                frames,
            });
            tstate = mem.ptr(tstate + offs.tstate_next)?;
        }
        Ok(out)
    }

    /// Add to `threads` (the main interpreter's, read by `threads`) what the other
    /// interpreters listed from `head` run: a thread state of a subinterpreter on an OS thread
    /// of the main list holds that thread's innermost frames (`Interpreter.call`, an
    /// `InterpreterPoolExecutor` worker), put before the main one's (3.13+; before, such a
    /// thread state may name another thread than the one running it, and is left out); one on
    /// a thread the main interpreter does not list is a thread of its own. Unreadable links
    /// end the walk.
    pub fn add_subinterpreters(&mut self, head: usize, main: usize, threads: &mut Vec<RawThread>) {
        let offsets = self.objs.layout.offsets;
        if offsets.interp_next_and_id.is_none() {
            return;
        }
        for interp in interpreters(self.objs.mem, &offsets, head) {
            if interp == main {
                continue;
            }
            for sub in self.threads(interp).unwrap_or_default() {
                if sub.frames.is_empty() {
                    continue;
                }
                let same = sub
                    .native_id
                    .and_then(|n| threads.iter_mut().find(|t| t.native_id == Some(n)));
                match same {
                    // Its ids may name the thread that made it, not the one running it: which
                    // thread runs these frames is unknown, so they are left out.
                    Some(_) if !offsets.sub_thread_ids_trusted => {}
                    Some(t) => {
                        let mut frames = sub.frames;
                        frames.append(&mut t.frames);
                        t.frames = frames;
                    }
                    None => threads.push(sub),
                }
            }
        }
    }

    /// One frame at `addr` (a coroutine's or generator's frame, which no thread links to).
    pub fn frame_at(&mut self, addr: usize) -> Result<RawFrame> {
        let code_addr = self.slot_object(
            self.objs
                .mem
                .ptr(addr + self.objs.layout.offsets.frame_code)?,
        );
        let code = self.code(code_addr)?;
        let instr = self.instruction(addr, code_addr);
        Ok(RawFrame { addr, code, instr })
    }

    pub(super) fn instruction(&self, frame: usize, code_addr: usize) -> Option<usize> {
        let offs = self.objs.layout.offsets;
        let mem = self.objs.mem;
        match offs.frame_instruction {
            InstructionPointer::LastiBytes(off) => {
                let lasti = mem.i32(frame + off).ok()?;
                (lasti >= 0).then_some(lasti as usize / 2)
            }
            InstructionPointer::LastiUnits(off) => {
                let lasti = mem.i32(frame + off).ok()?;
                (lasti >= 0).then_some(lasti as usize)
            }
            InstructionPointer::Pointer(off) => {
                let ptr = mem.ptr(frame + off).ok()?;
                let Bytecode::Inline(start) = offs.code_bytecode else {
                    return None;
                };
                let base = code_addr + start;
                (ptr >= base).then(|| (ptr - base) / 2)
            }
        }
    }

    pub fn code(&mut self, addr: usize) -> Result<Arc<CodeInfo>> {
        let info = self.read_code(addr)?;
        if !self
            .code_cache
            .get(&addr)
            .is_some_and(|c| Arc::ptr_eq(c, &info))
        {
            self.code_cache.insert(addr, info.clone());
        }
        Ok(info)
    }

    /// A code object, from the cache when it holds this one, else read (and not kept: for
    /// code no frame runs yet, such as a function a frame will call).
    pub fn read_code(&self, addr: usize) -> Result<Arc<CodeInfo>> {
        let offs = self.objs.layout.offsets;
        let mem = self.objs.mem;
        let name_ptr = mem.ptr(addr + offs.code_name)?;
        let linetable_ptr = mem.ptr(addr + offs.code_linetable)?;
        if let Some(c) = self.code_cache.get(&addr) {
            if c.still(name_ptr, linetable_ptr) {
                return Ok(c.clone());
            }
        }
        if self.objs.type_name(addr)? != "code" {
            return Err(Error::Layout(format!("{addr:#x} is not a code object")));
        }
        let objs = &self.objs;
        let filename = objs.str(mem.ptr(addr + offs.code_filename)?)?;
        let name = match offs.code_qualname {
            Some(q) => objs
                .str(mem.ptr(addr + q)?)
                .or_else(|_| objs.str(name_ptr))?,
            None => objs.str(name_ptr)?,
        };
        let nlocals = mem.i32(addr + offs.code_nlocals)?.max(0) as usize;
        let stacksize = mem.i32(addr + offs.code_stacksize)?.max(0) as usize;
        let locals = objs
            .tuple_strings(mem.ptr(addr + offs.code_varnames)?)
            .unwrap_or_default();
        let parameters = parameter_names(mem, addr + offs.code_argcount, &locals);
        let mut cells = Vec::new();
        if let (Some(c), Some(f)) = (offs.code_cellvars, offs.code_freevars) {
            cells.extend(objs.tuple_strings(mem.ptr(addr + c)?).unwrap_or_default());
            cells.extend(objs.tuple_strings(mem.ptr(addr + f)?).unwrap_or_default());
        }
        let nlocalsplus = match offs.code_nlocalsplus {
            Some(off) => mem.i32(addr + off)?.max(0) as usize,
            None => nlocals + cells.len(),
        };
        let names = objs
            .tuple_strings(mem.ptr(addr + offs.code_names)?)
            .unwrap_or_default();
        let const_items = objs
            .tuple_items(mem.ptr(addr + offs.code_consts)?)
            .unwrap_or_default();
        let consts = const_items.iter().map(|&c| objs.short_repr(c)).collect();
        let raw_code = match offs.code_bytecode {
            Bytecode::Object(off) => objs.bytes_object(mem.ptr(addr + off)?)?,
            Bytecode::Inline(off) => {
                // co_code_adaptive has Py_SIZE(code) code units.
                let units = mem.i64(addr + VAR_SIZE)?;
                if !(0..=(1 << 22)).contains(&units) {
                    return Err(Error::Layout("implausible code size".into()));
                }
                mem.bytes(addr + off, units as usize * 2)?
            }
        };
        let instructions = bytecode::decode(self.objs.layout.opcodes, &raw_code);
        // A call's keyword names are a constant tuple of strings: read only the constants a
        // keyword call names (KW_NAMES, or the load right before CALL_KW / CALL_FUNCTION_KW).
        let mut const_strings = vec![Vec::new(); const_items.len()];
        for (i, ins) in instructions.iter().enumerate() {
            let named = match ins.name {
                "KW_NAMES" => Some(ins.arg as usize),
                "LOAD_CONST" => instructions
                    .get(i + 1)
                    .filter(|n| matches!(n.name, "CALL_KW" | "CALL_FUNCTION_KW"))
                    .map(|_| ins.arg as usize),
                _ => None,
            };
            if let Some(c) = named.filter(|c| *c < const_items.len()) {
                if const_strings[c].is_empty() && objs.type_is(const_items[c], "tuple") {
                    const_strings[c] = objs.tuple_strings(const_items[c]).unwrap_or_default();
                }
            }
        }
        let exception_table = match offs.code_exceptiontable {
            Some(off) => bytecode::exception_table(&objs.bytes_object(mem.ptr(addr + off)?)?),
            None => Vec::new(),
        };
        let info = Arc::new(CodeInfo {
            filename,
            name,
            instructions,
            exception_table,
            parameters,
            names: CodeNames {
                names,
                locals,
                cells,
                consts,
                const_strings,
            },
            nlocalsplus,
            stacksize,
            first_line: mem.i32(addr + offs.code_firstlineno)?,
            line_table: objs.bytes_object(linetable_ptr).unwrap_or_default(),
            minor: self.minor(),
            name_ptr,
            linetable_ptr,
            lines: Default::default(),
            writes: Default::default(),
            acquires: Default::default(),
            at: Default::default(),
        });
        Ok(info)
    }

    fn localsplus(&self, frame: usize) -> usize {
        frame + self.objs.layout.offsets.frame_localsplus
    }

    /// The value-stack base of a frame.
    fn valuestack(&self, frame: &RawFrame) -> Result<usize> {
        match self.objs.layout.offsets.frame_valuestack_ptr {
            Some(off) => self.objs.mem.ptr(frame.addr + off),
            None => Ok(self.localsplus(frame.addr) + 8 * frame.code.nlocalsplus),
        }
    }

    /// Local variables (fast locals, cells, frees) by name, non-NULL only.
    pub fn locals(&self, frame: &RawFrame) -> Vec<(String, usize)> {
        let base = self.localsplus(frame.addr);
        let n = frame.code.nlocalsplus.min(256);
        let Ok(raw) = self.objs.mem.bytes(base, n * 8) else {
            return Vec::new();
        };
        let mut names = frame.code.names.locals.clone();
        if self.minor() <= 10 {
            names.extend(frame.code.names.cells.iter().cloned());
        }
        raw.chunks_exact(8)
            .enumerate()
            .filter_map(|(i, c)| {
                let v = self.slot_object(u64::from_le_bytes(c.try_into().unwrap()) as usize);
                (v != 0).then(|| (names.get(i).cloned().unwrap_or_else(|| format!("#{i}")), v))
            })
            .collect()
    }

    /// The first set slot named `name` (a 3.8-3.10 argument that is also a cell is NULL in
    /// its local slot and set in its cell slot). Reads only the slots so named.
    pub fn local(&self, frame: &RawFrame, name: &str) -> Option<usize> {
        self.local_indices(&frame.code, name)
            .find_map(|i| self.local_at(frame, i))
    }

    /// The slots of a code's frames named `name`, in the order `local` tries them: the same
    /// for every frame of the code, so a caller reading many such frames may keep them.
    pub fn local_indices<'c>(
        &self,
        code: &'c CodeInfo,
        name: &'c str,
    ) -> impl Iterator<Item = usize> + 'c {
        let names = &code.names;
        let cells: &[String] = if self.minor() <= 10 {
            &names.cells
        } else {
            &[]
        };
        names
            .locals
            .iter()
            .chain(cells)
            .enumerate()
            .take(code.nlocalsplus.min(256))
            .filter(move |(_, n)| *n == name)
            .map(|(i, _)| i)
    }

    /// The object in a frame's slot `i` (locals, then cells and frees), if set.
    pub fn local_at(&self, frame: &RawFrame, i: usize) -> Option<usize> {
        if i >= frame.code.nlocalsplus.min(256) {
            return None;
        }
        let base = self.localsplus(frame.addr);
        let v = self.slot_object(self.objs.mem.ptr(base + 8 * i).ok()?);
        (v != 0).then_some(v)
    }

    /// The objects a frame's locals hold, then its value-stack candidates (see
    /// `stack_candidates`): what a search for the object a thread uses starts from.
    pub fn frame_objects(&self, frame: &RawFrame) -> Vec<usize> {
        let mut out: Vec<usize> = self.locals(frame).into_iter().map(|(_, v)| v).collect();
        out.extend(self.stack_candidates(frame));
        out
    }

    /// Every non-NULL slot of the frame's value stack up to `co_stacksize`. Slots above the
    /// live depth may be stale: use these only as candidates to verify, never as facts.
    pub fn stack_candidates(&self, frame: &RawFrame) -> Vec<usize> {
        let Ok(base) = self.valuestack(frame) else {
            return Vec::new();
        };
        let Ok(raw) = self.objs.mem.bytes(base, frame.code.stacksize.min(256) * 8) else {
            return Vec::new();
        };
        raw.chunks_exact(8)
            .map(|c| self.slot_object(u64::from_le_bytes(c.try_into().unwrap()) as usize))
            .filter(|v| *v != 0)
            .collect()
    }

    /// How an active `with` names what it entered (`src.lock`) and the line of its statement:
    /// what a holder's site says. Each is `None` where the statement is not known.
    pub fn with_statement(
        &self,
        frame: &RawFrame,
        with: &ActiveWith,
    ) -> (Option<String>, Option<u32>) {
        let Some(at) = with.statement else {
            return (None, None);
        };
        let s = frame.code.with_statement(at);
        (s.subject.clone(), s.line)
    }

    /// The `with` blocks active in a frame, innermost first. A `with` whose statement is the
    /// current instruction (still entering, blocked in `__enter__`) is not active.
    pub fn active_withs(&self, frame: &RawFrame) -> Vec<ActiveWith> {
        let code = &frame.code;
        let mut out = Vec::new();
        match self.objs.layout.offsets.frame_blocks {
            BlockScheme::BlockStack { iblock, blockstack } => {
                let minor = self.minor();
                let mem = self.objs.mem;
                let Ok(n) = mem.i32(frame.addr + iblock) else {
                    return out;
                };
                let Ok(stack) = self.valuestack(frame) else {
                    return out;
                };
                for b in (0..n.clamp(0, 20) as usize).rev() {
                    let at = frame.addr + blockstack + b * TRY_BLOCK_SIZE;
                    let (Ok(kind), Ok(handler), Ok(level)) =
                        (mem.i32(at), mem.i32(at + 4), mem.i32(at + 8))
                    else {
                        continue;
                    };
                    if kind != SETUP_FINALLY_BLOCK || level < 1 || handler < 0 {
                        continue;
                    }
                    let handler = if minor == 10 {
                        handler as usize
                    } else {
                        handler as usize / 2
                    };
                    let Some(statement) = code.handler_with(handler) else {
                        continue;
                    };
                    if let Ok(slot) = mem.ptr(stack + 8 * (level as usize - 1)) {
                        out.push(ActiveWith {
                            exit_slot: slot,
                            statement,
                        });
                    }
                }
            }
            BlockScheme::ExceptionTable => {
                let Some(unit) = frame.instr else {
                    return out;
                };
                let at = code.at(unit);
                let withs = code.table_withs(&at, unit);
                if withs.is_empty() {
                    return out;
                }
                let Ok(stack) = self.valuestack(frame) else {
                    return out;
                };
                for w in withs {
                    if let Ok(slot) = self.objs.mem.ptr(stack + 8 * (w.depth - 1)) {
                        out.push(ActiveWith {
                            exit_slot: self.slot_object(slot),
                            statement: w.statement,
                        });
                    }
                }
            }
        }
        out
    }

    /// The current instruction's index in the decoded code.
    pub fn current_index(&self, frame: &RawFrame) -> Option<usize> {
        frame.code.at(frame.instr?).index
    }
}

impl<'a> Walker<'a> {
    /// A code object this walker (or an earlier snapshot's) already read, without reading it:
    /// for code a frame may call, which has run on some thread's stack if it runs often.
    pub fn cached_code(&self, addr: usize) -> Option<Arc<CodeInfo>> {
        let c = self.code_cache.get(&addr)?;
        let (mem, offs) = (self.objs.mem, &self.objs.layout.offsets);
        let name_ptr = mem.ptr(addr + offs.code_name).ok()?;
        let linetable_ptr = mem.ptr(addr + offs.code_linetable).ok()?;
        c.still(name_ptr, linetable_ptr).then(|| c.clone())
    }

    /// Reuse code objects read by an earlier snapshot of the same process.
    pub fn adopt_cache(&mut self, cache: HashMap<usize, Arc<CodeInfo>>) {
        self.code_cache = cache;
    }

    pub fn take_cache(&mut self) -> HashMap<usize, Arc<CodeInfo>> {
        std::mem::take(&mut self.code_cache)
    }
}

/// The first `co_argcount + co_kwonlyargcount` local names: the parameters come first in
/// `co_varnames` / `co_localsplusnames`. `None` when the counts are not plausible.
fn parameter_names(
    mem: &dyn ReadMemory,
    argcount_at: usize,
    locals: &[String],
) -> Option<std::sync::Arc<[String]>> {
    // `co_posonlyargcount` sits between the two counts; positional-only ones are in argcount.
    let args = usize::try_from(mem.i32(argcount_at).ok()?).ok()?;
    let kwonly = usize::try_from(mem.i32(argcount_at + 8).ok()?).ok()?;
    locals
        .get(..args.checked_add(kwonly)?)
        .map(std::sync::Arc::from)
}
