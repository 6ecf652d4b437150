//! Which value the pure expression before an instruction leaves on the stack: its rendering
//! (`src.lock`, `forks[i % n]`) and, for a name chain, its `Path`. It decides nothing about
//! writes or `with` statements, and reads no memory.

use super::decode::Instruction;

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
    /// For each of `co_consts`: its strings when it is a tuple of strings (a call's keyword
    /// names), else empty.
    pub const_strings: Vec<Vec<String>>,
}

#[derive(Debug, Clone)]
pub(in crate::cpython) struct Sym {
    pub(in crate::cpython) text: String,
    /// For a method or attribute about to be called: the object it was looked up on.
    pub(in crate::cpython) receiver: Option<String>,
    /// Where the value comes from, when it is a name or an attribute chain on one.
    pub(in crate::cpython) path: Option<Path>,
    pub(in crate::cpython) receiver_path: Option<Path>,
    /// A name chain subscripted by a constant or another name chain (`self.queues['a']`,
    /// `JOBS[0]`, `self.queues[k]`).
    pub(in crate::cpython) item: Option<(Path, Key)>,
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

/// Where the pure expression that ends right before `instructions[end]` starts.
pub(in crate::cpython) fn expression_start(
    minor: u8,
    instructions: &[Instruction],
    end: usize,
) -> usize {
    let mut start = end;
    while start > 0
        && (is_expression_op(instructions[start - 1].name)
            || binary_operator(minor, &instructions[start - 1]).is_some()
            || is_subscript(minor, &instructions[start - 1]))
    {
        start -= 1;
    }
    start
}

/// Evaluate symbolically the pure expression that ends right before `instructions[end]`
/// and return the stack it leaves, innermost last. `None` where any step is not understood.
pub(in crate::cpython) fn evaluate_before(
    minor: u8,
    instructions: &[Instruction],
    end: usize,
    names: &CodeNames,
) -> Option<Vec<Option<Sym>>> {
    let start = expression_start(minor, instructions, end);
    let mut stack: Vec<Option<Sym>> = Vec::new();
    // 3.13+ fuses a store with the next load (`out, self.results = ...` stores `out`, then
    // loads `self` for the attribute store): the expression starts with the load half.
    let fused_load = start
        .checked_sub(1)
        .map(|k| &instructions[k])
        .filter(|ins| ins.name == "STORE_FAST_LOAD_FAST")
        .map(|ins| ins.arg as usize & 15);
    let plain = |t: String| {
        Some(Sym {
            text: t,
            receiver: None,
            path: None,
            receiver_path: None,
            item: None,
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
            item: None,
            compound: false,
        })
    };
    let get = |v: &Vec<String>, i: usize| v.get(i).cloned();
    if let Some(slot) = fused_load {
        stack.push(named(get(&names.locals, slot)?, Root::Local));
    }
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
                    item: None,
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
                let key = match (&index.path, index.compound) {
                    (Some(p), _) => Some(Key::Name(p.clone())),
                    (None, false) => Key::parse(&index.text),
                    (None, true) => None,
                };
                stack.push(Some(Sym {
                    item: obj.path.clone().zip(key),
                    ..plain(format!("{}[{}]", obj.operand(), index.text))?
                }));
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
                        item: None,
                        compound: true,
                    }));
                }
            }
        }
    }
    Some(stack)
}

/// A subscript's index: a constant (`['a']`, `[0]`, from the constant's rendering, folded
/// by the compiler where it was an expression of constants) or a name chain whose value the
/// frame holds (`[k]`, `[self.name]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Str(String),
    Int(i64),
    Name(Path),
}

impl Key {
    /// `'a'` or `-1`; a string with an escape in its rendering is not taken.
    fn parse(text: &str) -> Option<Key> {
        if let Some(s) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
            return (!s.contains(['\\', '\''])).then(|| Key::Str(s.to_string()));
        }
        text.parse().ok().map(Key::Int)
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Str(s) => write!(f, "[{s:?}]"),
            Key::Int(i) => write!(f, "[{i}]"),
            Key::Name(p) => write!(f, "[{p}]"),
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
