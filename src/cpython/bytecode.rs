//! A small bytecode decoder: instructions, the 3.11+ exception table, and symbolic evaluation
//! of the expression that produced a value (how code names a lock: `src.lock`, `forks[2]`).
//! Names come from the code object, never from source text, so they survive edited files.

use super::layout::Dialect;
pub use super::opcode_table::OpcodeTable;

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

/// Names a code object gives to its operands.
#[derive(Debug, Clone, Default)]
pub struct CodeNames {
    pub names: Vec<String>,
    /// 3.8-3.10 `co_varnames`; 3.11+ `co_localsplusnames`.
    pub locals: Vec<String>,
    /// 3.8-3.10: `co_cellvars + co_freevars` (LOAD_DEREF's index space).
    pub cells: Vec<String>,
    /// Short renderings of `co_consts`.
    pub consts: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Sym {
    pub(super) text: String,
    /// For a method or attribute about to be called: the object it was looked up on.
    pub(super) receiver: Option<String>,
    /// Where the value comes from, when it is a name or an attribute chain on one.
    pub(super) path: Option<Path>,
    pub(super) receiver_path: Option<Path>,
    /// A binary operation: parenthesised when it is itself an operand (`(i + 1) % n`).
    compound: bool,
}

impl Sym {
    fn operand(&self) -> String {
        if self.compound {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }
}

/// The operator of a binary-operation opcode: 3.8-3.10 have one opcode per operator,
/// 3.11+ one `BINARY_OP` whose argument is the `NB_*` number (13 and up: in-place forms).
fn binary_operator(minor: u8, ins: &Instruction) -> Option<&'static str> {
    const NB_OPS: [&str; 13] = [
        "+", "&", "//", "<<", "@", "*", "%", "|", "**", ">>", "-", "/", "^",
    ];
    if minor >= 11 {
        // 26 and up (3.14+) are not operators: NB_SUBSCR is a subscript.
        return (ins.name == "BINARY_OP" && ins.arg < 26)
            .then(|| NB_OPS.get(ins.arg as usize % 13).copied())
            .flatten();
    }
    Some(match ins.name {
        "BINARY_ADD" => "+",
        "BINARY_AND" => "&",
        "BINARY_FLOOR_DIVIDE" => "//",
        "BINARY_LSHIFT" => "<<",
        "BINARY_MATRIX_MULTIPLY" => "@",
        "BINARY_MULTIPLY" => "*",
        "BINARY_MODULO" => "%",
        "BINARY_OR" => "|",
        "BINARY_POWER" => "**",
        "BINARY_RSHIFT" => ">>",
        "BINARY_SUBTRACT" => "-",
        "BINARY_TRUE_DIVIDE" => "/",
        "BINARY_XOR" => "^",
        _ => return None,
    })
}

fn is_expression_op(name: &str) -> bool {
    matches!(
        name,
        "LOAD_FAST"
            | "LOAD_FAST_CHECK"
            | "LOAD_FAST_LOAD_FAST"
            | "LOAD_FAST_BORROW"
            | "LOAD_FAST_BORROW_LOAD_FAST_BORROW"
            | "LOAD_SMALL_INT"
            | "LOAD_COMMON_CONSTANT"
            | "LOAD_DEREF"
            | "LOAD_CLASSDEREF"
            | "LOAD_GLOBAL"
            | "LOAD_NAME"
            | "LOAD_ATTR"
            | "LOAD_METHOD"
            | "LOAD_CONST"
            | "BINARY_SUBSCR"
            | "BUILD_SLICE"
            | "PUSH_NULL"
            | "PRECALL"
            | "KW_NAMES"
            | "CALL"
            | "CALL_METHOD"
            | "CALL_FUNCTION"
            | "NOP"
            | "COPY_FREE_VARS"
            | "RESUME"
            | "CACHE"
    )
}

/// `BINARY_OP` with `NB_SUBSCR` (3.14+ subscripts).
fn is_subscript(minor: u8, ins: &Instruction) -> bool {
    minor >= 14 && ins.name == "BINARY_OP" && ins.arg == 26
}

/// If the instruction at `idx` enters a `with` (3.8-3.10 `SETUP_WITH`, 3.11-3.13
/// `BEFORE_WITH`, 3.14+ the `__enter__` call after `COPY 1; LOAD_SPECIAL __exit__; SWAP 2;
/// SWAP 3; LOAD_SPECIAL __enter__`), the index to name its subject from (`with_subject`).
pub fn entering_with(dialect: Dialect, instructions: &[Instruction], idx: usize) -> Option<usize> {
    let ins = instructions.get(idx)?;
    if matches!(ins.name, "SETUP_WITH" | "BEFORE_WITH") {
        return Some(idx);
    }
    if dialect.0 < 14 {
        return None;
    }
    special_entry(instructions, idx, ENTER)
}

/// Whether the instruction at `idx` starts a (not async) `with` statement's entry as
/// `with_statement_for_handler` names it: `SETUP_WITH` / `BEFORE_WITH`, or on 3.14+ the
/// `COPY 1` before `LOAD_SPECIAL __exit__` ... `LOAD_SPECIAL __enter__; CALL`.
pub fn is_with_entry(dialect: Dialect, instructions: &[Instruction], idx: usize) -> bool {
    match instructions.get(idx).map(|i| i.name) {
        Some("SETUP_WITH" | "BEFORE_WITH") => true,
        Some("COPY") if dialect.0 >= 14 => special_entry(instructions, idx + 5, ENTER) == Some(idx),
        _ => false,
    }
}

/// Whether the code has an `async with` (`BEFORE_ASYNC_WITH`, or 3.14+'s `LOAD_SPECIAL
/// __aenter__`).
pub fn has_async_with(instructions: &[Instruction]) -> bool {
    instructions
        .iter()
        .any(|i| i.name == "BEFORE_ASYNC_WITH" || (i.name == "LOAD_SPECIAL" && i.arg == AENTER))
}

/// `LOAD_SPECIAL` arguments (3.14+): `__enter__`, `__aenter__`.
const ENTER: u32 = 0;
const AENTER: u32 = 2;

/// 3.14+: the index of the `COPY 1` that starts the `with` / `async with` entry whose
/// `__enter__` / `__aenter__` call is at `call`.
fn special_entry(instructions: &[Instruction], call: usize, special: u32) -> Option<usize> {
    if instructions.get(call)?.name != "CALL" || call < 5 {
        return None;
    }
    let seq = &instructions[call - 5..call];
    let names: Vec<&str> = seq.iter().map(|i| i.name).collect();
    (names == ["COPY", "LOAD_SPECIAL", "SWAP", "SWAP", "LOAD_SPECIAL"] && seq[4].arg == special)
        .then_some(call - 5)
}

/// The `async with` entered at or shortly before `idx` (a few await instructions follow
/// its `BEFORE_ASYNC_WITH`, or 3.14+'s `__aenter__` call): the index to name its subject from.
pub fn entering_async_with(instructions: &[Instruction], idx: usize) -> Option<usize> {
    let idx = idx.min(instructions.len().checked_sub(1)?);
    (idx.saturating_sub(12)..=idx).rev().find_map(|i| {
        if instructions[i].name == "BEFORE_ASYNC_WITH" {
            Some(i)
        } else {
            special_entry(instructions, i, AENTER)
        }
    })
}

/// `LOAD_COMMON_CONSTANT` operands, from `opcode._common_constants`: 3.14 has the first five,
/// 3.15 appends the rest (its compiler loads `None` this way).
const COMMON_CONSTANTS: [&str; 12] = [
    "AssertionError",
    "NotImplementedError",
    "tuple",
    "all",
    "any",
    "list",
    "set",
    "None",
    "''",
    "True",
    "False",
    "-1",
];

/// Evaluate symbolically the pure expression that ends right before `instructions[end]`
/// and return the stack it leaves, innermost last. `None` where any step is not understood.
pub(super) fn evaluate_before(
    minor: u8,
    instructions: &[Instruction],
    end: usize,
    names: &CodeNames,
) -> Option<Vec<Option<Sym>>> {
    let mut start = end;
    while start > 0
        && (is_expression_op(instructions[start - 1].name)
            || binary_operator(minor, &instructions[start - 1]).is_some()
            || is_subscript(minor, &instructions[start - 1]))
    {
        start -= 1;
    }
    let mut stack: Vec<Option<Sym>> = Vec::new();
    let plain = |t: String| {
        Some(Sym {
            text: t,
            receiver: None,
            path: None,
            receiver_path: None,
            compound: false,
        })
    };
    let named = |t: String, root: fn(String) -> Root| {
        Some(Sym {
            text: t.clone(),
            receiver: None,
            path: Some(Path {
                root: root(t),
                attrs: Vec::new(),
            }),
            receiver_path: None,
            compound: false,
        })
    };
    let get = |v: &Vec<String>, i: usize| v.get(i).cloned();
    for ins in &instructions[start..end] {
        let arg = ins.arg as usize;
        match ins.name {
            "LOAD_FAST" | "LOAD_FAST_CHECK" | "LOAD_FAST_BORROW" => {
                stack.push(named(get(&names.locals, arg)?, Root::Local))
            }
            "LOAD_SMALL_INT" => stack.push(plain(arg.to_string())),
            "LOAD_COMMON_CONSTANT" => stack.push(plain(COMMON_CONSTANTS.get(arg)?.to_string())),
            "LOAD_FAST_LOAD_FAST" | "LOAD_FAST_BORROW_LOAD_FAST_BORROW" => {
                stack.push(named(get(&names.locals, arg >> 4)?, Root::Local));
                stack.push(named(get(&names.locals, arg & 15)?, Root::Local));
            }
            "LOAD_DEREF" | "LOAD_CLASSDEREF" => {
                let v = if minor >= 11 {
                    get(&names.locals, arg)
                } else {
                    get(&names.cells, arg)
                };
                stack.push(named(v?, Root::Deref));
            }
            "LOAD_NAME" => stack.push(named(get(&names.names, arg)?, Root::Global)),
            "LOAD_GLOBAL" => {
                if minor >= 11 {
                    let g = named(get(&names.names, arg >> 1)?, Root::Global);
                    let null = arg & 1 == 1;
                    if null && minor <= 12 {
                        stack.push(None);
                    }
                    stack.push(g);
                    if null && minor >= 13 {
                        stack.push(None);
                    }
                } else {
                    stack.push(named(get(&names.names, arg)?, Root::Global));
                }
            }
            "LOAD_CONST" => stack.push(plain(get(&names.consts, arg)?)),
            "LOAD_ATTR" | "LOAD_METHOD" => {
                let (idx, method) = if minor >= 12 && ins.name == "LOAD_ATTR" {
                    (arg >> 1, arg & 1 == 1)
                } else {
                    (arg, ins.name == "LOAD_METHOD")
                };
                let obj = stack.pop()??;
                let attr = get(&names.names, idx)?;
                let path = obj.path.clone().map(|mut p| {
                    p.attrs.push(attr.clone());
                    p
                });
                let sym = Some(Sym {
                    text: format!("{}.{}", obj.operand(), attr),
                    receiver: Some(obj.operand()),
                    path: if method { None } else { path },
                    receiver_path: obj.path.clone(),
                    compound: false,
                });
                if method {
                    // The method and its `self` (or NULL) occupy two slots; keep the pair adjacent.
                    stack.push(sym);
                    stack.push(None);
                } else {
                    stack.push(sym);
                }
            }
            _ if ins.name == "BINARY_SUBSCR" || is_subscript(minor, ins) => {
                let index = stack.pop()??;
                let obj = stack.pop()??;
                stack.push(plain(format!("{}[{}]", obj.operand(), index.text)));
            }
            "PUSH_NULL" => stack.push(None),
            // `x[a:b]` for `del x[a:b]` (a slice stored or loaded has an op of its own).
            "BUILD_SLICE" => {
                for _ in 0..arg {
                    stack.pop()?;
                }
                stack.push(plain("slice".into()));
            }
            "CALL" | "CALL_METHOD" | "CALL_FUNCTION" => {
                for _ in 0..arg {
                    stack.pop()?;
                }
                // Pop up to and including the callable (skipping NULL / self placeholders).
                let callable = loop {
                    match stack.pop()? {
                        Some(s) => break s,
                        None => continue,
                    }
                };
                while matches!(stack.last(), Some(None)) {
                    stack.pop();
                }
                stack.push(plain(format!("{}()", callable.text)));
            }
            _ => {
                if let Some(op) = binary_operator(minor, ins) {
                    let right = stack.pop()??;
                    let left = stack.pop()??;
                    stack.push(Some(Sym {
                        text: format!("{} {op} {}", left.operand(), right.operand()),
                        receiver: None,
                        path: None,
                        receiver_path: None,
                        compound: true,
                    }));
                }
            }
        }
    }
    Some(stack)
}

/// Whether the instruction compares two values for sameness: `==` or `is`.
pub(super) fn is_identity_test(minor: u8, ins: &Instruction) -> bool {
    const EQ: u32 = 2;
    match ins.name {
        "IS_OP" => ins.arg == 0,
        // 3.8 spells `is` as a comparison (8).
        "COMPARE_OP" if minor <= 8 => ins.arg == EQ || ins.arg == 8,
        "COMPARE_OP" if minor <= 11 => ins.arg == EQ,
        // 3.12: the comparison in the high bits; 3.13+: above a bool-conversion flag.
        "COMPARE_OP" if minor == 12 => ins.arg >> 4 == EQ,
        "COMPARE_OP" => ins.arg >> 5 == EQ,
        _ => false,
    }
}

/// Where a jump goes (code units), for the jumps that loops and `if`s compile to: absolute
/// before 3.11 (bytes before 3.10, code units in 3.10); from 3.11 relative to the next
/// instruction, backward when the name says so (`POP_JUMP_IF_*` is forward from 3.12).
pub(super) fn jump_target(minor: u8, ins: &Instruction) -> Option<usize> {
    let arg = ins.arg as usize;
    if minor <= 10 {
        let absolute = matches!(
            ins.name,
            "JUMP_ABSOLUTE"
                | "POP_JUMP_IF_FALSE"
                | "POP_JUMP_IF_TRUE"
                | "JUMP_IF_FALSE_OR_POP"
                | "JUMP_IF_TRUE_OR_POP"
                | "JUMP_IF_NOT_EXC_MATCH"
        );
        return absolute.then_some(if minor == 10 { arg } else { arg / 2 });
    }
    if ins.name.starts_with("JUMP_BACKWARD") || ins.name.starts_with("POP_JUMP_BACKWARD") {
        ins.next.checked_sub(arg)
    } else if ins.name.starts_with("POP_JUMP_") {
        Some(ins.next + arg)
    } else {
        None
    }
}

/// The expression whose value is entered by the `with` at `instructions[at]`
/// (`SETUP_WITH` / `BEFORE_WITH`).
pub fn with_subject(
    dialect: Dialect,
    instructions: &[Instruction],
    at: usize,
    names: &CodeNames,
) -> Option<String> {
    let minor = dialect.0;
    let stack = evaluate_before(minor, instructions, at, names)?;
    stack.into_iter().flatten().last().map(|s| s.text)
}

/// The object a call at `instructions[at]` is made on: `lock` for `lock.acquire()`.
pub fn call_receiver(
    dialect: Dialect,
    instructions: &[Instruction],
    at: usize,
    names: &CodeNames,
) -> Option<(String, String)> {
    let minor = dialect.0;
    let stack = evaluate_before(minor, instructions, at, names)?;
    stack.into_iter().rev().flatten().find_map(|s| {
        let method = s.text.rsplit('.').next()?.to_string();
        s.receiver.map(|r| (r, method))
    })
}

/// The `with` statement whose cleanup handler starts at `handler` (code units).
/// 3.8-3.10: the `SETUP_WITH` jumping to it; 3.11+: the `BEFORE_WITH` just before the
/// first protected instruction of any exception-table entry targeting it.
pub fn with_statement_for_handler(
    dialect: Dialect,
    instructions: &[Instruction],
    entries: &[ExceptionEntry],
    handler: usize,
) -> Option<usize> {
    let minor = dialect.0;
    // `async with` is named at its BEFORE_ASYNC_WITH, a few await instructions earlier.
    let async_entry = |idx: usize| entering_async_with(instructions, idx);
    if minor <= 10 {
        if let Some(idx) = instructions.iter().position(|ins| {
            ins.name == "SETUP_ASYNC_WITH"
                && ins.next
                    + if minor == 10 {
                        ins.arg as usize
                    } else {
                        ins.arg as usize / 2
                    }
                    == handler
        }) {
            return async_entry(idx);
        }
        instructions.iter().position(|ins| {
            ins.name == "SETUP_WITH" && {
                // Relative jump from the next instruction; bytes before 3.10.
                let delta = if minor == 10 {
                    ins.arg as usize
                } else {
                    ins.arg as usize / 2
                };
                ins.next + delta == handler
            }
        })
    } else {
        let start = entries
            .iter()
            .filter(|e| e.target == handler)
            .map(|e| e.start)
            .min()?;
        let idx = instructions.iter().position(|ins| ins.next == start)?;
        entering_with(dialect, instructions, idx).or_else(|| async_entry(idx))
    }
}

/// Whether the handler at `target` is a `with` statement's cleanup.
pub fn is_with_cleanup(dialect: Dialect, instructions: &[Instruction], target: usize) -> bool {
    let minor = dialect.0;
    let Some(i) = instructions.iter().position(|ins| ins.offset == target) else {
        return false;
    };
    match minor {
        8 => instructions[i].name == "WITH_CLEANUP_START",
        9 | 10 => instructions[i].name == "WITH_EXCEPT_START",
        _ => {
            instructions[i].name == "PUSH_EXC_INFO"
                && instructions.get(i + 1).map(|n| n.name) == Some("WITH_EXCEPT_START")
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cpython::opcodes;

    #[test]
    fn parses_an_exception_table() {
        // co_exceptiontable of `with a.x[0] as y, b: pass` compiled by CPython 3.12.
        let raw = [
            144, 7, 54, 3, 151, 1, 42, 5, 153, 8, 54, 3, 170, 5, 51, 9, 175, 7, 54, 3, 182, 5, 63,
            7,
        ];
        let e = exception_table(&raw);
        assert_eq!(e.len(), 6);
        assert_eq!(
            e[0],
            ExceptionEntry {
                start: 16,
                end: 23,
                target: 54,
                depth: 1,
                lasti: true
            }
        );
        assert_eq!(
            e[1],
            ExceptionEntry {
                start: 23,
                end: 24,
                target: 42,
                depth: 2,
                lasti: true
            }
        );
        assert_eq!(
            e[3],
            ExceptionEntry {
                start: 42,
                end: 47,
                target: 51,
                depth: 4,
                lasti: true
            }
        );
        assert_eq!(covering(&e, 22).unwrap().target, 54);
    }

    /// Bytecode for `(opcode, arg)` pairs, with each opcode's inline cache units.
    pub(crate) fn assemble(t: &OpcodeTable, ops: &[(&str, u8)]) -> Vec<u8> {
        let mut code = Vec::new();
        for (name, arg) in ops {
            let op = (0..=255u8)
                .find(|o| t.names[*o as usize] == Some(name))
                .unwrap_or_else(|| panic!("no opcode {name} in 3.{}", t.minor));
            code.extend([op, *arg]);
            for _ in 0..t.caches[op as usize] {
                code.extend([0, 0]);
            }
        }
        code
    }

    #[test]
    fn names_a_subscripted_attribute() {
        // 3.12: LOAD_FAST a; LOAD_ATTR x (plain); LOAD_CONST 0; BINARY_SUBSCR; BEFORE_WITH
        let t = &opcodes::V3_12;
        let code = assemble(
            t,
            &[
                ("LOAD_FAST", 0),
                ("LOAD_ATTR", 0),
                ("LOAD_CONST", 1),
                ("BINARY_SUBSCR", 0),
                ("BEFORE_WITH", 0),
            ],
        );
        let ins = decode(t, &code);
        assert_eq!(ins.last().unwrap().name, "BEFORE_WITH");
        let names = CodeNames {
            names: vec!["x".into()],
            locals: vec!["a".into()],
            cells: vec![],
            consts: vec!["None".into(), "0".into()],
        };
        assert_eq!(
            with_subject(Dialect(12), &ins, ins.len() - 1, &names).as_deref(),
            Some("a.x[0]")
        );
    }

    #[test]
    fn names_a_computed_index() {
        // `with forks[(i + 1) % N]:` on 3.10 (one opcode per operator) and 3.12 (BINARY_OP).
        let names = CodeNames {
            names: vec!["forks".into(), "N".into()],
            locals: vec!["i".into()],
            cells: vec![],
            consts: vec!["None".into(), "1".into()],
        };
        let v310 = [
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 0),
            ("LOAD_CONST", 1),
            ("BINARY_ADD", 0),
            ("LOAD_GLOBAL", 1),
            ("BINARY_MODULO", 0),
            ("BINARY_SUBSCR", 0),
            ("SETUP_WITH", 0),
        ];
        let v312 = [
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 0),
            ("LOAD_CONST", 1),
            ("BINARY_OP", 0),
            ("LOAD_GLOBAL", 2),
            ("BINARY_OP", 6),
            ("BINARY_SUBSCR", 0),
            ("BEFORE_WITH", 0),
        ];
        for (minor, t, ops) in [(10u8, &opcodes::V3_10, &v310), (12, &opcodes::V3_12, &v312)] {
            let ins = decode(t, &assemble(t, ops));
            assert_eq!(ins.len(), ops.len());
            assert_eq!(
                with_subject(Dialect(minor), &ins, ins.len() - 1, &names).as_deref(),
                Some("forks[(i + 1) % N]"),
                "3.{minor}"
            );
        }
    }
}

/// Where a value lives, as a chain the snapshot can resolve to an object's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub root: Root,
    pub attrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Local(String),
    /// A cell or free variable.
    Deref(String),
    /// A module global (or builtin).
    Global(String),
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (Root::Local(n) | Root::Deref(n) | Root::Global(n)) = &self.root;
        write!(f, "{n}")?;
        for a in &self.attrs {
            write!(f, ".{a}")?;
        }
        Ok(())
    }
}

/// A write to possibly shared state found on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteTarget {
    /// `global counter; counter += 1`, or an assignment at module level.
    Global(String),
    /// `obj.attr = ...` / `obj.attr += ...`
    Attr { object: Path, attr: String },
    /// `container[key] = ...`, `container[key] += ...`, `del container[key]`, or a mutating
    /// method call. `adds_or_takes`: the call adds or takes items one by one (see
    /// [`ADD_OR_TAKE`]).
    Item {
        container: Path,
        adds_or_takes: bool,
    },
}

/// Mutating methods that add items to their container or take one out: calls of these from
/// several threads lose and duplicate nothing in any order (each is one atomic call under
/// the GIL; every item added is there, every item taken goes to one caller: a work list),
/// unlike a store, which replaces another thread's value, or a `remove`/`clear`/`del`, which
/// acts on what another thread may have changed.
pub const ADD_OR_TAKE: &[&str] = &[
    "append",
    "appendleft",
    "extend",
    "extendleft",
    "add",
    "pop",
    "popleft",
    "popitem",
];

/// Methods that mutate the container they are called on.
pub const MUTATORS: &[&str] = &[
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "update",
    "setdefault",
    "add",
    "discard",
    "popitem",
    "appendleft",
    "popleft",
    "extendleft",
    "sort",
    "reverse",
];

/// The writes made by the instructions in `range` (one source line) at or after `from` (the
/// current instruction: a write already done in this pass, or a with-block's exit code that
/// shares the line, is not a write in progress), decoded from bytecode, each with the index
/// of the instruction that makes it.
pub(super) fn writes_in(
    dialect: Dialect,
    instructions: &[Instruction],
    range: std::ops::Range<usize>,
    from: usize,
    names: &CodeNames,
    module_level: bool,
) -> Vec<(usize, WriteTarget)> {
    let minor = dialect.0;
    let mut out = Vec::new();
    let top_paths = |at: usize| -> Vec<Option<Path>> {
        evaluate_before(minor, instructions, at, names)
            .map(|st| st.into_iter().map(|s| s.and_then(|s| s.path)).collect())
            .unwrap_or_default()
    };
    // Augmented assignments duplicate the target before loading from it: find the duplication
    // inside the line and evaluate what was on the stack there.
    // The nearest duplication before the store: a line can hold several augmented assignments.
    let duplicated =
        |at: usize, is_dup: &dyn Fn(&Instruction) -> bool, depth: usize| -> Option<Path> {
            (range.start..at)
                .rev()
                .find(|&j| is_dup(&instructions[j]))
                // 3.11+ copies a subscript's two operands as `COPY 2; COPY 2`: take the first.
                .map(|j| j - usize::from(j > range.start && is_dup(&instructions[j - 1])))
                .and_then(|j| {
                    let st = top_paths(j);
                    st.len().checked_sub(depth).and_then(|k| st[k].clone())
                })
        };
    // A thread paused on the line's loop back edge is looping over the whole line.
    let looping = instructions
        .get(from)
        .map(|i| {
            matches!(
                i.name,
                "JUMP_BACKWARD" | "JUMP_BACKWARD_NO_INTERRUPT" | "JUMP_ABSOLUTE"
            )
        })
        .unwrap_or(false);
    let first = if looping {
        range.start
    } else {
        from.max(range.start)
    };
    for i in first..range.end {
        let ins = &instructions[i];
        let arg = ins.arg as usize;
        match ins.name {
            "STORE_GLOBAL" | "DELETE_GLOBAL" => {
                if let Some(n) = names.names.get(arg) {
                    out.push((i, WriteTarget::Global(n.clone())));
                }
            }
            "STORE_NAME" if module_level => {
                if let Some(n) = names.names.get(arg) {
                    out.push((i, WriteTarget::Global(n.clone())));
                }
            }
            "STORE_ATTR" | "DELETE_ATTR" => {
                let Some(attr) = names.names.get(arg).cloned() else {
                    continue;
                };
                let object = top_paths(i).last().cloned().flatten().or_else(|| {
                    duplicated(
                        i,
                        &|x: &Instruction| x.name == "DUP_TOP" || (x.name == "COPY" && x.arg == 1),
                        1,
                    )
                });
                if let Some(object) = object {
                    out.push((i, WriteTarget::Attr { object, attr }));
                }
            }
            "STORE_SUBSCR" | "DELETE_SUBSCR" => {
                let st = top_paths(i);
                // `container[key] = value` has the container second from the top; `del
                // container[key]` has it second too (under the key), with no value above.
                let container = st
                    .len()
                    .checked_sub(2)
                    .and_then(|k| st[k].clone())
                    .or_else(|| {
                        duplicated(
                            i,
                            &|x: &Instruction| {
                                x.name == "DUP_TOP_TWO" || (x.name == "COPY" && x.arg == 2)
                            },
                            2,
                        )
                    });
                if let Some(container) = container {
                    out.push((
                        i,
                        WriteTarget::Item {
                            container,
                            adds_or_takes: false,
                        },
                    ));
                }
            }
            "CALL" | "CALL_METHOD" | "CALL_FUNCTION" | "CALL_FUNCTION_KW" | "CALL_KW" => {
                let Some(mut stack) = evaluate_before(minor, instructions, i, names) else {
                    continue;
                };
                // The arguments sit above the callable (and, for keyword calls before 3.11
                // and from 3.13, a tuple of their names): an argument such as `x.y` in
                // `items.append(x.y)` is not the method called.
                let above = arg + matches!(ins.name, "CALL_FUNCTION_KW" | "CALL_KW") as usize;
                stack.truncate(stack.len().saturating_sub(above));
                let call = stack
                    .into_iter()
                    .rev()
                    .flatten()
                    .find(|s| s.receiver.is_some());
                if let Some(call) = call {
                    let method = call.text.rsplit('.').next().unwrap_or("");
                    if let (true, Some(container)) =
                        (MUTATORS.contains(&method), call.receiver_path)
                    {
                        out.push((
                            i,
                            WriteTarget::Item {
                                container,
                                adds_or_takes: ADD_OR_TAKE.contains(&method),
                            },
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}
