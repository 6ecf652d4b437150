//! Decoding, exception tables and naming expressions, from assembled bytecode.

use super::*;
use crate::cpython::layout::Dialect;
use crate::cpython::opcodes;

#[test]
fn parses_an_exception_table() {
    // co_exceptiontable of `with a.x[0] as y, b: pass` compiled by CPython 3.12.
    let raw = [
        144, 7, 54, 3, 151, 1, 42, 5, 153, 8, 54, 3, 170, 5, 51, 9, 175, 7, 54, 3, 182, 5, 63, 7,
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
        const_strings: vec![],
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
        const_strings: vec![],
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
