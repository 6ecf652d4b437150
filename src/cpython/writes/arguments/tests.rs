//! Unit tests of call-argument binding: each bytecode dialect's listing of a call, and the
//! parameters it binds.

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

/// Each dialect's listing binds `expected` at the call that starts at `at(listing)`.
fn assert_bound_in_each<const N: usize>(
    listings: [(u8, Vec<Instruction>); N],
    at: impl Fn(&[Instruction]) -> usize,
    expected: CallArguments,
) {
    for (minor, ins) in listings {
        let args = call_arguments(minor, &ins, &names(), at(&ins), "take");
        assert_eq!(args, Some(expected.clone()), "3.{minor}");
    }
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
    assert_bound_in_each(
        [(10u8, v310), (11, v311), (12, v312), (13, v313)],
        |ins| lookup(ins).unwrap(),
        CallArguments {
            keywords: vec![("q".into(), self_jobs())],
            ..CallArguments::default()
        },
    );
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
    assert_bound_in_each(
        [(10u8, v310), (12, v312), (14, v314)],
        |_| 0,
        CallArguments {
            star: flag(),
            double_star: self_jobs(),
            ..CallArguments::default()
        },
    );
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
    assert_bound_in_each(
        [(8u8, v38), (10, v310), (12, v312), (14, v314)],
        |_| 0,
        CallArguments {
            positional: vec![flag()],
            star: self_jobs(),
            ..CallArguments::default()
        },
    );
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
    assert_bound_in_each(
        [(8u8, v38), (9, v39), (12, v312), (14, v314)],
        |_| 0,
        CallArguments {
            double_star: self_jobs(),
            ..CallArguments::default()
        },
    );
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
