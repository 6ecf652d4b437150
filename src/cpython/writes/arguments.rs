//! Which expressions a call passes as its arguments: for the function or method a code object
//! looks up at one instruction (`take` in `take(q)`, `self._drain` in `self._drain()`), the
//! name chains its call's positional and keyword arguments are (`take(self.jobs)`,
//! `take(q=jobs)`), subscripts of them by a constant or by another name chain
//! (`take(self.queues['a'])`, `take(JOBS[0])`, `take(self.queues[k])`), or which name chains
//! it unpacks (`take(*args, **kwargs)`, `take(a, *rest)`, `take(**kw)`), so a callee's
//! parameters can be resolved in the caller's frame. It reads no memory (the unpacked tuple
//! and dict, and a computed key, are read by whoever binds them); a call it cannot follow
//! (`take(**{'q': q})`) gives `None`, and an argument that is none of these (`q[i + 1]`, a
//! call's result) gives `None` for that argument.

use crate::cpython::bytecode::{
    evaluate_before, expression_start, CodeNames, Instruction, Key, Path, Root, Sym,
};

/// How far past its lookup a call instruction is looked for (its arguments' loads).
const MAX_CALL_DISTANCE: usize = 64;

/// One argument expression gridlock can resolve to an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Argument {
    /// A name chain (`self.jobs`).
    Name(Path),
    /// A name chain subscripted by a constant or by a name chain (`self.queues['a']`,
    /// `JOBS[0]`, `self.queues[k]`).
    Item(Path, Key),
}

impl Argument {
    fn of(sym: &Sym) -> Option<Argument> {
        match (&sym.path, &sym.item) {
            (Some(p), _) => Some(Argument::Name(p.clone())),
            (None, Some((p, k))) => Some(Argument::Item(p.clone(), k.clone())),
            (None, None) => None,
        }
    }

    /// The names its value is looked up through (a computed key's too).
    pub fn roots(&self) -> impl Iterator<Item = &Root> {
        let (path, key) = match self {
            Argument::Name(p) => (p, None),
            Argument::Item(p, k) => (p, Some(k)),
        };
        let key = match key {
            Some(Key::Name(k)) => Some(&k.root),
            _ => None,
        };
        std::iter::once(&path.root).chain(key)
    }
}

/// What one call passes, each argument a name chain or `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallArguments {
    pub positional: Vec<Option<Argument>>,
    /// By keyword, in call order.
    pub keywords: Vec<(String, Option<Argument>)>,
    /// `*X`: the sequence whose items are the positional arguments after `positional`
    /// (`take(a, *rest)`).
    pub star: Option<Argument>,
    /// `**X`: the dict whose str keys are the keyword arguments (then `keywords` is empty).
    pub double_star: Option<Argument>,
}

impl CallArguments {
    /// Every argument expression, positional first, then the unpacked ones.
    pub fn all(&self) -> impl Iterator<Item = &Option<Argument>> {
        self.positional
            .iter()
            .chain(self.keywords.iter().map(|(_, p)| p))
            .chain([&self.star, &self.double_star])
    }

    /// The names all its arguments are looked up through.
    pub fn roots(&self) -> impl Iterator<Item = &Root> {
        self.all().flatten().flat_map(Argument::roots)
    }
}

/// The arguments of the call of what `instructions[lookup]` loads (named `name`); `None` if
/// that call is not found or mixes unpacking with other arguments.
pub(super) fn call_arguments(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    lookup: usize,
    name: &str,
) -> Option<CallArguments> {
    let end = instructions.len().min(lookup + MAX_CALL_DISTANCE);
    for j in lookup + 1..end {
        let ins = &instructions[j];
        // 3.11's PRECALL comes first with the same count. The keyword names are a constant
        // tuple: named by KW_NAMES before the call (3.11-3.12), or loaded onto the stack
        // right before CALL_KW (3.13+) / CALL_FUNCTION_KW (3.8-3.10).
        let (keywords_const, on_stack) = match ins.name {
            "CALL" | "CALL_METHOD" | "CALL_FUNCTION" | "PRECALL" => {
                let mut k = j - 1;
                if instructions[k].name == "PRECALL" && k > lookup {
                    k -= 1;
                }
                let kw = &instructions[k];
                ((kw.name == "KW_NAMES").then_some(kw.arg as usize), false)
            }
            "CALL_KW" | "CALL_FUNCTION_KW" => {
                let load = &instructions[j - 1];
                if load.name != "LOAD_CONST" {
                    return None;
                }
                (Some(load.arg as usize), true)
            }
            "CALL_FUNCTION_EX" => match unpacking_call(minor, instructions, names, j, name) {
                Some(found) => return found,
                None => continue,
            },
            _ => continue,
        };
        let Some(stack) = evaluate_before(minor, instructions, j, names) else {
            continue;
        };
        let argc = ins.arg as usize;
        let top = stack.len() - usize::from(on_stack);
        if top <= argc || stack.is_empty() {
            continue;
        }
        let (below, args) = stack[..top].split_at(top - argc);
        let callable = below.iter().rev().find_map(|s| s.as_ref());
        if !callable.is_some_and(|c| calls(c, name)) {
            continue;
        }
        let keyword_names: &[String] = match keywords_const {
            Some(c) => names.const_strings.get(c)?,
            None => &[],
        };
        if keyword_names.len() > argc {
            return None;
        }
        let paths: Vec<Option<Argument>> = args
            .iter()
            .map(|a| a.as_ref().and_then(Argument::of))
            .collect();
        let (positional, by_keyword) = paths.split_at(argc - keyword_names.len());
        return Some(CallArguments {
            positional: positional.to_vec(),
            keywords: keyword_names
                .iter()
                .cloned()
                .zip(by_keyword.iter().cloned())
                .collect(),
            ..CallArguments::default()
        });
    }
    None
}

/// Whether a callable's rendering is `name` or a method of that name (`self._drain`).
fn calls(callable: &Sym, name: &str) -> bool {
    callable.text == name
        || callable
            .text
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with('.'))
}

/// The `CALL_FUNCTION_EX` at `j`: `None` if it calls something else, `Some(None)` if it calls
/// `name` in a way not followed or its stack is not understood (it may be the call),
/// `Some(args)` for `name(*X)`, `name(**Y)`, `name(*X, **Y)`, `name(a, b, *X)`.
fn unpacking_call(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    j: usize,
    name: &str,
) -> Option<Option<CallArguments>> {
    match read_unpacking(minor, instructions, names, j, name) {
        None => Some(None),
        Some((false, _)) => None,
        Some((true, args)) => Some(args),
    }
}

/// Whether the `CALL_FUNCTION_EX` at `j` calls `name`, and what it unpacks if followed.
/// The stack under it: the callable (and a NULL, 3.11+), the positional tuple, then the
/// keyword dict: 3.8-3.10 when the flag is set; 3.11+ merged into a new dict (`BUILD_MAP 0`,
/// `Y`, `DICT_MERGE 1`); 3.14+ always a slot, NULL without one. The positional tuple is `X`,
/// an empty or constant tuple (`BUILD_TUPLE 0`, `LOAD_CONST`: no positional name chains), or
/// leading arguments then `X` (`BUILD_LIST n`, `X`, `LIST_EXTEND 1`, `LIST_TO_TUPLE` or
/// 3.12+'s `CALL_INTRINSIC_1 6`; 3.8's `BUILD_TUPLE n`, `X`, `BUILD_TUPLE_UNPACK_WITH_CALL 2`).
fn read_unpacking(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    j: usize,
    name: &str,
) -> Option<(bool, Option<CallArguments>)> {
    let merge = j
        .checked_sub(1)
        .filter(|&m| instructions[m].name == "DICT_MERGE" && instructions[m].arg == 1);
    let (end, mut double_star) = match merge {
        Some(m) => {
            let merged = evaluate_before(minor, instructions, m, names)?;
            let start = expression_start(minor, instructions, m);
            let map = start.checked_sub(1).map(|b| &instructions[b])?;
            if merged.len() != 1 || map.name != "BUILD_MAP" || map.arg != 0 {
                return None;
            }
            (start - 1, Some(merged[0].as_ref().and_then(Argument::of)))
        }
        None => (j, None),
    };
    let mut stack = evaluate_before(minor, instructions, end, names)?;
    if merge.is_none() && (minor >= 14 || (minor <= 10 && instructions[j].arg & 1 == 1)) {
        // The dict's own slot (3.14+: a NULL without one).
        double_star = stack.pop()?.map(|s| Argument::of(&s));
    } else if merge.is_none() && instructions[j].arg & 1 == 1 {
        return None;
    }
    // (the callee's stack, the positional name chains, the unpacked sequence)
    let (stack, positional, star) = if stack.is_empty() {
        // The tuple was built by the instruction before this pure run.
        let built = expression_start(minor, instructions, end).checked_sub(1)?;
        positional_tuple(minor, instructions, names, built)?
    } else {
        let star = stack.pop()??;
        let constant = instructions[end - 1].name == "LOAD_CONST";
        (stack, Vec::new(), (!constant).then_some(star))
    };
    let callable = stack.iter().rev().find_map(|s| s.as_ref())?;
    if !calls(callable, name) {
        return Some((false, None));
    }
    let star = match star.map(|s| Argument::of(&s)) {
        Some(None) => return Some((true, None)),
        Some(Some(a)) => Some(a),
        None => None,
    };
    if double_star == Some(None) {
        return Some((true, None));
    }
    Some((
        true,
        Some(CallArguments {
            positional,
            star,
            double_star: double_star.flatten(),
            ..CallArguments::default()
        }),
    ))
}

/// The positional tuple that `instructions[built]` builds (not a pure instruction): the stack
/// under it, its leading arguments and the unpacked sequence (`None` for an empty tuple).
/// `None` where it is another shape.
#[allow(clippy::type_complexity)]
fn positional_tuple(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    built: usize,
) -> Option<(Vec<Option<Sym>>, Vec<Option<Argument>>, Option<Sym>)> {
    let ins = &instructions[built];
    if ins.name == "BUILD_TUPLE" && ins.arg == 0 {
        return Some((
            evaluate_before(minor, instructions, built, names)?,
            Vec::new(),
            None,
        ));
    }
    // Where the unpacked sequence's expression ends, and what builds the leading arguments.
    let (extended, leading) = match ins.name {
        "LIST_TO_TUPLE" => (built.checked_sub(1)?, "BUILD_LIST"),
        "CALL_INTRINSIC_1" if ins.arg == 6 => (built.checked_sub(1)?, "BUILD_LIST"),
        "BUILD_TUPLE_UNPACK_WITH_CALL" if ins.arg == 2 => (built, "BUILD_TUPLE"),
        _ => return None,
    };
    if leading == "BUILD_LIST" {
        let extend = &instructions[extended];
        if extend.name != "LIST_EXTEND" || extend.arg != 1 {
            return None;
        }
    }
    let mut rest = evaluate_before(minor, instructions, extended, names)?;
    let star = rest.pop()??;
    if !rest.is_empty() {
        return None;
    }
    let build = expression_start(minor, instructions, extended).checked_sub(1)?;
    let head = &instructions[build];
    if head.name != leading {
        return None;
    }
    let mut stack = evaluate_before(minor, instructions, build, names)?;
    let count = head.arg as usize;
    if stack.len() < count {
        return None;
    }
    let positional = stack
        .split_off(stack.len() - count)
        .iter()
        .map(|a| a.as_ref().and_then(Argument::of))
        .collect();
    Some((stack, positional, Some(star)))
}

#[cfg(test)]
mod tests;
