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
mod tests {
    use super::*;
    use crate::cpython::bytecode::Root;

    fn code(ops: &[(&'static str, u32)]) -> Vec<Instruction> {
        ops.iter()
            .enumerate()
            .map(|(i, &(name, arg))| Instruction {
                offset: i,
                name,
                arg,
                next: i + 1,
            })
            .collect()
    }

    /// `take`, `jobs`; `self`, `flag`; consts `None`, `('q',)`, `('block',)`.
    fn names() -> CodeNames {
        CodeNames {
            names: vec!["take".into(), "jobs".into()],
            locals: vec!["self".into(), "flag".into()],
            cells: vec![],
            consts: vec!["None".into(), "…".into(), "…".into()],
            const_strings: vec![vec![], vec!["q".into()], vec!["block".into()]],
        }
    }

    fn self_jobs_path() -> Path {
        Path {
            root: Root::Local("self".into()),
            attrs: vec!["jobs".into()],
        }
    }

    fn self_jobs() -> Option<Argument> {
        Some(Argument::Name(self_jobs_path()))
    }

    fn flag() -> Option<Argument> {
        Some(Argument::Name(Path {
            root: Root::Local("flag".into()),
            attrs: vec![],
        }))
    }

    #[test]
    fn a_keyword_argument_is_bound_by_name_in_every_dialect() {
        // `take(q=self.jobs)`
        let v310 = code(&[
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("LOAD_CONST", 1),
            ("CALL_FUNCTION_KW", 1),
        ]);
        let v311 = code(&[
            ("PUSH_NULL", 0),
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("KW_NAMES", 1),
            ("PRECALL", 1),
            ("CALL", 1),
        ]);
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("KW_NAMES", 1),
            ("CALL", 1),
        ]);
        let v313 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_CONST", 1),
            ("CALL_KW", 1),
        ]);
        let lookup = |ins: &[Instruction]| ins.iter().position(|i| i.name == "LOAD_GLOBAL");
        for (minor, ins) in [(10u8, v310), (11, v311), (12, v312), (13, v313)] {
            let args = call_arguments(minor, &ins, &names(), lookup(&ins).unwrap(), "take");
            assert_eq!(
                args,
                Some(CallArguments {
                    keywords: vec![("q".into(), self_jobs())],
                    ..CallArguments::default()
                }),
                "3.{minor}"
            );
        }
    }

    #[test]
    fn positional_and_keyword_arguments_are_told_apart() {
        // `take(self.jobs, block=flag)` (3.12, 3.13)
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_FAST", 1),
            ("KW_NAMES", 2),
            ("CALL", 2),
        ]);
        let v313 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_FAST", 1),
            ("LOAD_CONST", 2),
            ("CALL_KW", 2),
        ]);
        for (minor, ins) in [(12u8, v312), (13, v313)] {
            let args = call_arguments(minor, &ins, &names(), 0, "take").unwrap();
            assert_eq!(args.positional, vec![self_jobs()], "3.{minor}");
            assert_eq!(args.keywords, vec![("block".into(), flag())], "3.{minor}");
            assert_eq!(args.all().flatten().count(), 2);
        }
    }

    #[test]
    fn a_constant_subscript_is_an_item_argument() {
        // `take(self.jobs['a'])` (3.12; `'a'` is const 3) and `take(jobs[0])` (3.14's
        // subscript is BINARY_OP 26, its small int LOAD_SMALL_INT).
        let mut n = names();
        n.consts.push("'a'".into());
        n.const_strings.push(vec![]);
        let keyed = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_CONST", 3),
            ("BINARY_SUBSCR", 0),
            ("CALL", 1),
        ]);
        let args = call_arguments(12, &keyed, &n, 0, "take").unwrap();
        assert_eq!(
            args.positional,
            vec![Some(Argument::Item(self_jobs_path(), Key::Str("a".into())))]
        );
        let indexed = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_GLOBAL", 2),
            ("LOAD_SMALL_INT", 0),
            ("BINARY_OP", 26),
            ("CALL", 1),
        ]);
        let jobs = Path {
            root: Root::Global("jobs".into()),
            attrs: vec![],
        };
        let args = call_arguments(14, &indexed, &n, 0, "take").unwrap();
        assert_eq!(
            args.positional,
            vec![Some(Argument::Item(jobs, Key::Int(0)))]
        );
    }

    #[test]
    fn a_subscript_by_a_name_chain_is_an_item_argument_in_every_dialect() {
        // `take(self.queues[k])` then `take(QUEUES[NAME])`, as each dialect compiles them.
        let n = CodeNames {
            names: vec![
                "take".into(),
                "queues".into(),
                "QUEUES".into(),
                "NAME".into(),
            ],
            locals: vec!["self".into(), "k".into()],
            ..CodeNames::default()
        };
        let v38 = code(&[
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("LOAD_FAST", 1),
            ("BINARY_SUBSCR", 0),
            ("CALL_FUNCTION", 1),
            ("POP_TOP", 0),
            ("LOAD_GLOBAL", 0),
            ("LOAD_GLOBAL", 2),
            ("LOAD_GLOBAL", 3),
            ("BINARY_SUBSCR", 0),
            ("CALL_FUNCTION", 1),
        ]);
        let v311 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("LOAD_FAST", 1),
            ("BINARY_SUBSCR", 0),
            ("PRECALL", 1),
            ("CALL", 1),
            ("POP_TOP", 0),
            ("LOAD_GLOBAL", 1),
            ("LOAD_GLOBAL", 4),
            ("LOAD_GLOBAL", 6),
            ("BINARY_SUBSCR", 0),
            ("PRECALL", 1),
            ("CALL", 1),
        ]);
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_FAST", 1),
            ("BINARY_SUBSCR", 0),
            ("CALL", 1),
            ("POP_TOP", 0),
            ("LOAD_GLOBAL", 1),
            ("LOAD_GLOBAL", 4),
            ("LOAD_GLOBAL", 6),
            ("BINARY_SUBSCR", 0),
            ("CALL", 1),
        ]);
        let v314 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST_BORROW", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_FAST_BORROW", 1),
            ("BINARY_OP", 26),
            ("CALL", 1),
            ("POP_TOP", 0),
            ("LOAD_GLOBAL", 1),
            ("LOAD_GLOBAL", 4),
            ("LOAD_GLOBAL", 6),
            ("BINARY_OP", 26),
            ("CALL", 1),
        ]);
        let queues = Path {
            root: Root::Local("self".into()),
            attrs: vec!["queues".into()],
        };
        let k = Path {
            root: Root::Local("k".into()),
            attrs: vec![],
        };
        let global = |name: &str| Path {
            root: Root::Global(name.into()),
            attrs: vec![],
        };
        let by_local = Argument::Item(queues, Key::Name(k.clone()));
        let by_global = Argument::Item(global("QUEUES"), Key::Name(global("NAME")));
        let v313 = v312.clone();
        for (minor, ins) in [(8u8, v38), (11, v311), (12, v312), (13, v313), (14, v314)] {
            let second = ins.iter().rposition(|i| i.name == "POP_TOP").unwrap() + 1;
            let first = call_arguments(minor, &ins, &n, 0, "take").unwrap();
            assert_eq!(first.positional, vec![Some(by_local.clone())], "3.{minor}");
            let roots: Vec<&Root> = first.roots().collect();
            assert_eq!(roots, [&Root::Local("self".into()), &k.root], "3.{minor}");
            let then = call_arguments(minor, &ins, &n, second, "take").unwrap();
            assert_eq!(then.positional, vec![Some(by_global.clone())], "3.{minor}");
        }
        // 3.13's fused load of two locals (`take(queues[k])`, both locals).
        let mut fused = n.clone();
        fused.locals = vec!["queues".into(), "k".into()];
        let v313 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST_LOAD_FAST", 1),
            ("BINARY_SUBSCR", 0),
            ("CALL", 1),
        ]);
        let local_queues = Path {
            root: Root::Local("queues".into()),
            attrs: vec![],
        };
        assert_eq!(
            call_arguments(13, &v313, &fused, 0, "take")
                .unwrap()
                .positional,
            vec![Some(Argument::Item(local_queues, Key::Name(k)))]
        );
        // A key the compiler folds (`take(QUEUES[-1])`; 3.15 loads -1 as a common constant).
        let folded = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_GLOBAL", 4),
            ("LOAD_COMMON_CONSTANT", 11),
            ("BINARY_OP", 26),
            ("CALL", 1),
        ]);
        assert_eq!(
            call_arguments(15, &folded, &n, 0, "take")
                .unwrap()
                .positional,
            vec![Some(Argument::Item(global("QUEUES"), Key::Int(-1)))]
        );
        // A key computed by an operation (`take(QUEUES[k + 1])`, 3.14) is no argument.
        let computed = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_GLOBAL", 4),
            ("LOAD_FAST_BORROW", 1),
            ("LOAD_SMALL_INT", 1),
            ("BINARY_OP", 0),
            ("BINARY_OP", 26),
            ("CALL", 1),
        ]);
        let args = call_arguments(14, &computed, &n, 0, "take").unwrap();
        assert_eq!(args.positional, vec![None]);
    }

    #[test]
    fn star_args_and_kwargs_are_the_unpacked_name_chains_in_every_dialect() {
        // `take(*flag, **self.jobs)`
        let v310 = code(&[
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("CALL_FUNCTION_EX", 1),
        ]);
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 1),
            ("BUILD_MAP", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("DICT_MERGE", 1),
            ("CALL_FUNCTION_EX", 1),
        ]);
        let v314 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST_BORROW", 1),
            ("BUILD_MAP", 0),
            ("LOAD_FAST_BORROW", 0),
            ("LOAD_ATTR", 2),
            ("DICT_MERGE", 1),
            ("CALL_FUNCTION_EX", 0),
        ]);
        for (minor, ins) in [(10u8, v310), (12, v312), (14, v314)] {
            let args = call_arguments(minor, &ins, &names(), 0, "take");
            assert_eq!(
                args,
                Some(CallArguments {
                    star: flag(),
                    double_star: self_jobs(),
                    ..CallArguments::default()
                }),
                "3.{minor}"
            );
        }
        // `take(*flag)`: 3.12 (no dict), 3.14 (a NULL in the dict's slot).
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 1),
            ("CALL_FUNCTION_EX", 0),
        ]);
        let v314 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST_BORROW", 1),
            ("PUSH_NULL", 0),
            ("CALL_FUNCTION_EX", 0),
        ]);
        for (minor, ins) in [(12u8, v312), (14, v314)] {
            let args = call_arguments(minor, &ins, &names(), 0, "take").unwrap();
            assert_eq!(args.star, flag(), "3.{minor}");
            assert_eq!(args.double_star, None, "3.{minor}");
            assert_eq!(args.all().flatten().count(), 1);
        }
    }

    #[test]
    fn leading_arguments_before_an_unpacked_sequence_are_bound_in_every_dialect() {
        // `take(flag, *self.jobs)`: a tuple built in place.
        let v38 = code(&[
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 1),
            ("BUILD_TUPLE", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("BUILD_TUPLE_UNPACK_WITH_CALL", 2),
            ("CALL_FUNCTION_EX", 0),
        ]);
        let v310 = code(&[
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 1),
            ("BUILD_LIST", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("LIST_EXTEND", 1),
            ("LIST_TO_TUPLE", 0),
            ("CALL_FUNCTION_EX", 0),
        ]);
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 1),
            ("BUILD_LIST", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LIST_EXTEND", 1),
            ("CALL_INTRINSIC_1", 6),
            ("CALL_FUNCTION_EX", 0),
        ]);
        let v314 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST_BORROW", 1),
            ("BUILD_LIST", 1),
            ("LOAD_FAST_BORROW", 0),
            ("LOAD_ATTR", 2),
            ("LIST_EXTEND", 1),
            ("CALL_INTRINSIC_1", 6),
            ("PUSH_NULL", 0),
            ("CALL_FUNCTION_EX", 0),
        ]);
        for (minor, ins) in [(8u8, v38), (10, v310), (12, v312), (14, v314)] {
            let args = call_arguments(minor, &ins, &names(), 0, "take");
            assert_eq!(
                args,
                Some(CallArguments {
                    positional: vec![flag()],
                    star: self_jobs(),
                    ..CallArguments::default()
                }),
                "3.{minor}"
            );
        }
        // Another intrinsic than list-to-tuple is no positional tuple.
        let other = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 1),
            ("BUILD_LIST", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LIST_EXTEND", 1),
            ("CALL_INTRINSIC_1", 3),
            ("CALL_FUNCTION_EX", 0),
        ]);
        assert_eq!(call_arguments(12, &other, &names(), 0, "take"), None);
    }

    #[test]
    fn keywords_unpacked_alone_are_bound_in_every_dialect() {
        // `take(**self.jobs)`: an empty positional tuple, built (3.8, 3.9) or constant.
        let v38 = code(&[
            ("LOAD_GLOBAL", 0),
            ("BUILD_TUPLE", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("CALL_FUNCTION_EX", 1),
        ]);
        let v39 = code(&[
            ("LOAD_GLOBAL", 0),
            ("BUILD_TUPLE", 0),
            ("BUILD_MAP", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("DICT_MERGE", 1),
            ("CALL_FUNCTION_EX", 1),
        ]);
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_CONST", 1),
            ("BUILD_MAP", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("DICT_MERGE", 1),
            ("CALL_FUNCTION_EX", 1),
        ]);
        let v314 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_CONST", 1),
            ("BUILD_MAP", 0),
            ("LOAD_FAST_BORROW", 0),
            ("LOAD_ATTR", 2),
            ("DICT_MERGE", 1),
            ("CALL_FUNCTION_EX", 0),
        ]);
        for (minor, ins) in [(8u8, v38), (9, v39), (12, v312), (14, v314)] {
            let args = call_arguments(minor, &ins, &names(), 0, "take");
            assert_eq!(
                args,
                Some(CallArguments {
                    double_star: self_jobs(),
                    ..CallArguments::default()
                }),
                "3.{minor}"
            );
        }
    }

    #[test]
    fn a_dict_display_and_unknown_keyword_names_are_not_followed() {
        // `take(**{'q': flag})` (3.12): the merged dict is built in place.
        let display = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_CONST", 1),
            ("BUILD_MAP", 0),
            ("LOAD_CONST", 0),
            ("LOAD_FAST", 1),
            ("BUILD_MAP", 1),
            ("DICT_MERGE", 1),
            ("CALL_FUNCTION_EX", 1),
        ]);
        assert_eq!(call_arguments(12, &display, &names(), 0, "take"), None);
        // A keyword-names constant that is not a tuple of strings (a torn read).
        let torn = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_CONST", 0),
            ("CALL_KW", 1),
        ]);
        let mut bad = names();
        bad.const_strings.clear();
        assert_eq!(call_arguments(13, &torn, &bad, 0, "take"), None);
        // More keyword names than arguments.
        let short = code(&[("LOAD_GLOBAL", 1), ("KW_NAMES", 1), ("CALL", 0)]);
        assert_eq!(call_arguments(12, &short, &names(), 0, "take"), None);
    }
}
