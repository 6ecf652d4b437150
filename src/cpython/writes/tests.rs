//! Decoding writes and their guards from assembled bytecode, per dialect.

use super::*;
use crate::cpython::bytecode::tests::assemble;
use crate::cpython::bytecode::{self, CodeNames, Path, Root, WriteTarget};
use crate::cpython::opcodes;

/// 3.9: `while True: with self.lock: self.n = 1` (then jump back to the top), decoded, with
/// its names.
pub(crate) fn looping_write_39() -> (Vec<bytecode::Instruction>, CodeNames) {
    let t = &opcodes::V3_9;
    let ops = [
        ("LOAD_FAST", 0),         // 0  self
        ("LOAD_ATTR", 0),         // 1  .lock
        ("SETUP_WITH", 8),        // 2  handler at unit 3 + 4 = 7 (bytes/2)
        ("POP_TOP", 0),           // 3
        ("LOAD_CONST", 1),        // 4
        ("LOAD_FAST", 0),         // 5  self
        ("STORE_ATTR", 1),        // 6  .n
        ("WITH_EXCEPT_START", 0), // 7
        ("JUMP_ABSOLUTE", 0),     // 8  back to 0
    ];
    let names = CodeNames {
        names: vec!["lock".into(), "n".into()],
        locals: vec!["self".into()],
        cells: vec![],
        consts: vec!["None".into(), "1".into()],
        const_strings: vec![],
    };
    (bytecode::decode(t, &assemble(t, &ops)), names)
}

#[test]
fn a_write_under_setup_with_is_guarded_and_reachable_through_the_loop() {
    let (ins, names) = looping_write_39();
    let lines = vec![Some(1); ins.len()];
    let cw = decode(9, &ins, &[], &names, false, &lines);
    assert_eq!(cw.writes.len(), 1, "{:?}", cw.writes);
    let w = &cw.writes[0];
    assert_eq!(w.index, 6);
    assert_eq!(w.guards.len(), 1);
    assert_eq!(w.guards[0].text.as_deref(), Some("self.lock"));
    assert!(cw.reachable(0, w), "ahead");
    assert!(cw.reachable(8, w), "through the loop");
}

#[test]
fn a_rebound_local_makes_a_write_unreachable_with_its_current_value() {
    // 3.12: for item in items: item.done = 1
    let t = &opcodes::V3_12;
    let ops = [
        ("LOAD_FAST", 1),     // 0 items
        ("GET_ITER", 0),      // 1
        ("FOR_ITER", 5),      // 2
        ("STORE_FAST", 0),    // 3 item
        ("LOAD_CONST", 1),    // 4
        ("LOAD_FAST", 0),     // 5 item
        ("STORE_ATTR", 0),    // 6 .done
        ("JUMP_BACKWARD", 0), // 7 (target patched below)
    ];
    let mut ins = bytecode::decode(t, &assemble(t, &ops));
    // Jump back to FOR_ITER.
    ins[7].arg = (ins[7].next - ins[2].offset) as u32;
    let names = CodeNames {
        names: vec!["done".into()],
        locals: vec!["item".into(), "items".into()],
        cells: vec![],
        consts: vec!["None".into(), "1".into()],
        const_strings: vec![],
    };
    let lines = vec![Some(1); ins.len()];
    let cw = decode(12, &ins, &[], &names, false, &lines);
    let w = &cw.writes[0];
    assert!(cw.reachable(4, w), "between the binding and the write");
    assert!(!cw.reachable(7, w), "the next iteration binds `item` again");
    assert!(!cw.reachable(1, w), "`item` is bound on the way");
}

#[test]
fn a_slice_deletion_is_a_write_and_an_append_only_adds() {
    // 3.12: results.append(item); del results[:500]
    let t = &opcodes::V3_12;
    let ops = [
        ("LOAD_GLOBAL", 0),   // 0 results
        ("LOAD_ATTR", 3),     // 1 .append (method)
        ("LOAD_FAST", 0),     // 2 item
        ("CALL", 1),          // 3
        ("POP_TOP", 0),       // 4
        ("LOAD_GLOBAL", 0),   // 5 results
        ("LOAD_CONST", 0),    // 6 None
        ("LOAD_CONST", 1),    // 7 500
        ("BUILD_SLICE", 2),   // 8
        ("DELETE_SUBSCR", 0), // 9
    ];
    let ins = bytecode::decode(t, &assemble(t, &ops));
    let names = CodeNames {
        names: vec!["results".into(), "append".into()],
        locals: vec!["item".into()],
        cells: vec![],
        consts: vec!["None".into(), "500".into()],
        const_strings: vec![],
    };
    let lines: Vec<Option<u32>> = (0..ins.len())
        .map(|i| Some(if i < 5 { 1 } else { 2 }))
        .collect();
    let cw = decode(12, &ins, &[], &names, false, &lines);
    let targets: Vec<&WriteTarget> = cw.writes.iter().map(|w| &w.target).collect();
    let results = Path {
        root: Root::Global("results".into()),
        attrs: vec![],
    };
    assert_eq!(
        targets,
        [
            &WriteTarget::Item {
                container: results.clone(),
                adds_or_takes: true
            },
            &WriteTarget::Item {
                container: results,
                adds_or_takes: false
            }
        ]
    );
}

#[test]
fn a_write_only_the_owner_can_make_is_not_a_shared_write() {
    // 3.12: me = threading.get_ident()
    //       if self._writer == me: self.entries += 1      (the owner's re-entry)
    //       self.total = 1                                 (anyone)
    let t = &opcodes::V3_12;
    let ops = [
        ("LOAD_GLOBAL", 1),       // 0 threading (+ NULL)
        ("LOAD_ATTR", 2),         // 1 .get_ident
        ("CALL", 0),              // 2
        ("STORE_FAST", 1),        // 3 me
        ("LOAD_FAST", 0),         // 4 self
        ("LOAD_ATTR", 4),         // 5 ._writer
        ("LOAD_FAST", 1),         // 6 me
        ("COMPARE_OP", 40),       // 7 ==
        ("POP_JUMP_IF_FALSE", 0), // 8 (target patched below)
        ("LOAD_FAST", 0),         // 9 self
        ("COPY", 1),              // 10
        ("LOAD_ATTR", 6),         // 11 .entries
        ("LOAD_CONST", 1),        // 12 1
        ("BINARY_OP", 13),        // 13 +=
        ("SWAP", 2),              // 14
        ("STORE_ATTR", 3),        // 15 .entries
        ("LOAD_CONST", 1),        // 16 1
        ("LOAD_FAST", 0),         // 17 self
        ("STORE_ATTR", 4),        // 18 .total
    ];
    let mut ins = bytecode::decode(t, &assemble(t, &ops));
    ins[8].arg = (ins[16].offset - ins[8].next) as u32;
    let names = CodeNames {
        names: vec![
            "threading".into(),
            "get_ident".into(),
            "_writer".into(),
            "entries".into(),
            "total".into(),
        ],
        locals: vec!["self".into(), "me".into()],
        cells: vec![],
        consts: vec!["None".into(), "1".into()],
        const_strings: vec![],
    };
    let lines: Vec<Option<u32>> = (0..ins.len())
        .map(|i| {
            Some(match i {
                0..=3 => 1,
                4..=8 => 2,
                9..=15 => 3,
                _ => 4,
            })
        })
        .collect();
    let cw = decode(12, &ins, &[], &names, false, &lines);
    let written: Vec<String> = cw
        .writes
        .iter()
        .map(|w| match &w.target {
            WriteTarget::Attr { attr, .. } => attr.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(written, ["total"]);
}

/// `co_code`, `co_exceptiontable` and per-instruction lines of
/// `def add_locked(self, n):\n    with self.lock:\n        self.value += n`, as compiled by
/// Debian's CPython 3.14.10 and 3.15.2: the `with` is entered through `LOAD_SPECIAL`.
const ADD_LOCKED_314: [u8; 154] = [
    128, 0, 86, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 59, 1, 95, 1, 117,
    2, 117, 3, 95, 0, 52, 0, 0, 0, 0, 0, 0, 0, 31, 0, 86, 0, 59, 1, 80, 2, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 86, 1, 44, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 117, 2, 110, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 82, 0, 82, 0, 82, 0, 52, 3, 0, 0, 0, 0, 0, 0, 31, 0, 82, 0, 35, 0, 32, 0,
    43, 0, 39, 0, 0, 0, 0, 0, 0, 0, 103, 2, 0, 0, 28, 0, 105, 2, 31, 0, 29, 0, 31, 0, 31, 0, 31, 0,
    82, 0, 35, 0, 59, 3, 29, 0, 105, 1,
];
const ADD_LOCKED_314_TABLE: [u8; 9] = [149, 26, 57, 5, 185, 11, 65, 10, 9];
const ADD_LOCKED_315: [u8; 156] = [
    128, 0, 0, 0, 85, 0, 79, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 57, 1, 94, 1,
    116, 2, 116, 3, 94, 0, 50, 0, 0, 0, 0, 0, 0, 0, 29, 0, 85, 0, 57, 1, 79, 2, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 85, 1, 42, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 116, 2, 109,
    1, 0, 0, 0, 0, 0, 0, 0, 0, 80, 7, 80, 7, 80, 7, 50, 3, 0, 0, 0, 0, 0, 0, 29, 0, 80, 7, 33, 0,
    30, 0, 41, 0, 37, 0, 0, 0, 0, 0, 0, 0, 102, 2, 0, 0, 26, 0, 104, 2, 29, 0, 27, 0, 29, 0, 29, 0,
    29, 0, 80, 7, 33, 0, 57, 3, 27, 0, 104, 1,
];
const ADD_LOCKED_315_TABLE: [u8; 9] = [150, 26, 58, 5, 186, 11, 65, 11, 9];
const ADD_LOCKED_LINES: [Option<u32>; 40] = {
    let mut l = [Some(4); 40];
    l[0] = Some(3);
    let mut i = 10;
    while i < 17 {
        l[i] = Some(5);
        i += 1;
    }
    l[37] = None;
    l[38] = None;
    l[39] = None;
    l
};

#[test]
fn a_314_with_block_entered_through_load_special_guards_its_body() {
    let names = CodeNames {
        names: vec!["lock".into(), "value".into()],
        locals: vec!["self".into(), "n".into()],
        cells: vec![],
        consts: vec!["None".into()],
        const_strings: vec![],
    };
    for (minor, t, code, table) in [
        (
            14u8,
            &opcodes::V3_14,
            &ADD_LOCKED_314[..],
            &ADD_LOCKED_314_TABLE[..],
        ),
        (
            15,
            &opcodes::V3_15,
            &ADD_LOCKED_315[..],
            &ADD_LOCKED_315_TABLE[..],
        ),
    ] {
        let ins = bytecode::decode(t, code);
        assert_eq!(ins.len(), ADD_LOCKED_LINES.len(), "3.{minor}");
        let entries = bytecode::exception_table(table);
        let cw = decode(minor, &ins, &entries, &names, false, &ADD_LOCKED_LINES);
        assert_eq!(cw.writes.len(), 1, "3.{minor}: {:?}", cw.writes);
        let w = &cw.writes[0];
        assert_eq!(ins[w.index].name, "STORE_ATTR", "3.{minor}");
        assert_eq!(w.line, Some(5));
        assert_eq!(
            w.target,
            WriteTarget::Attr {
                object: Path {
                    root: Root::Local("self".into()),
                    attrs: vec![],
                },
                attr: "value".into(),
            },
            "3.{minor}"
        );
        assert_eq!(w.guards.len(), 1, "3.{minor}: {:?}", w.guards);
        assert_eq!(w.guards[0].text.as_deref(), Some("self.lock"), "3.{minor}");
        assert!(
            cw.reachable(0, w),
            "3.{minor}: ahead of the function's entry"
        );
    }
}

#[test]
fn a_315_mutator_call_with_a_common_constant_argument_is_a_write() {
    // `def f(key): results.append(None); registry[key] = None` (two lines) by 3.15.2:
    // `None` is loaded with LOAD_COMMON_CONSTANT.
    let t = &opcodes::V3_15;
    let code = [
        128, 0, 0, 0, 91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 79, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 80, 7, 50, 1, 0, 0, 0, 0, 0, 0, 29, 0, 80, 7, 91, 4, 0, 0, 0, 0, 0, 0, 0, 0,
        85, 0, 36, 0, 0, 0, 80, 7, 33, 0,
    ];
    let lines = [2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4].map(Some);
    let names = CodeNames {
        names: vec!["results".into(), "append".into(), "registry".into()],
        locals: vec!["key".into()],
        cells: vec![],
        consts: vec!["None".into()],
        const_strings: vec![],
    };
    let ins = bytecode::decode(t, &code);
    assert_eq!(ins.len(), lines.len());
    let cw = decode(15, &ins, &[], &names, false, &lines);
    let containers: Vec<String> = cw
        .writes
        .iter()
        .map(|w| match &w.target {
            WriteTarget::Item { container, .. } => container.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(containers, ["results", "registry"]);
}

#[test]
fn a_borrowed_load_ends_construction_on_314() {
    // `job = Job(i); job.state = "queued"; q.put(job); job.payload = 1` by 3.14.10: the
    // first store is construction, the one after `job` was handed to `q.put` is not.
    let t = &opcodes::V3_14;
    let code = [
        128, 0, 92, 1, 0, 0, 0, 0, 0, 0, 0, 0, 86, 1, 52, 1, 0, 0, 0, 0, 0, 0, 112, 2, 82, 0, 86,
        2, 110, 1, 0, 0, 0, 0, 0, 0, 0, 0, 86, 0, 80, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 86, 2, 52, 1, 0, 0, 0, 0, 0, 0, 31, 0, 94, 1, 86, 2, 110, 3, 0, 0, 0, 0, 0, 0,
        0, 0, 82, 1, 35, 0,
    ];
    let lines = [6, 7, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10].map(Some);
    let names = CodeNames {
        names: vec!["Job".into(), "state".into(), "put".into(), "payload".into()],
        locals: vec!["q".into(), "i".into(), "job".into()],
        cells: vec![],
        consts: vec!["'queued'".into(), "None".into()],
        const_strings: vec![],
    };
    let ins = bytecode::decode(t, &code);
    assert_eq!(ins.len(), lines.len());
    let cw = decode(14, &ins, &[], &names, false, &lines);
    let attrs: Vec<&str> = cw
        .writes
        .iter()
        .filter_map(|w| match &w.target {
            WriteTarget::Attr { attr, .. } => Some(attr.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(attrs, ["payload"]);
}

#[test]
fn an_augmented_subscript_on_314_writes_its_container() {
    // `def f(k): box.data[k] += 1` by 3.14.10: `COPY 2; COPY 2` duplicates both operands.
    let t = &opcodes::V3_14;
    let code = [
        128, 0, 92, 0, 0, 0, 0, 0, 0, 0, 0, 0, 80, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 86, 0, 59, 2, 59, 2, 44, 26, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 94, 1, 44, 13, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 117, 3, 117, 2, 38, 0, 0, 0, 82, 1, 35, 0,
    ];
    let lines = [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4].map(Some);
    let names = CodeNames {
        names: vec!["box".into(), "data".into()],
        locals: vec!["k".into()],
        cells: vec![],
        consts: vec!["1".into(), "None".into()],
        const_strings: vec![],
    };
    let ins = bytecode::decode(t, &code);
    assert_eq!(ins.len(), lines.len());
    let cw = decode(14, &ins, &[], &names, false, &lines);
    assert_eq!(cw.writes.len(), 1, "{:?}", cw.writes);
    assert_eq!(
        cw.writes[0].target,
        WriteTarget::Item {
            container: Path {
                root: Root::Global("box".into()),
                attrs: vec!["data".into()],
            },
            adds_or_takes: false,
        }
    );
}

#[test]
fn an_attribute_argument_is_not_the_method_called() {
    // 3.12: items.append(job.result)
    let t = &opcodes::V3_12;
    let ops = [
        ("LOAD_GLOBAL", 0), // 0 items
        ("LOAD_ATTR", 3),   // 1 .append (method)
        ("LOAD_FAST", 0),   // 2 job
        ("LOAD_ATTR", 4),   // 3 .result (plain)
        ("CALL", 1),        // 4
        ("POP_TOP", 0),     // 5
    ];
    let ins = bytecode::decode(t, &assemble(t, &ops));
    let names = CodeNames {
        names: vec!["items".into(), "append".into(), "result".into()],
        locals: vec!["job".into()],
        cells: vec![],
        consts: vec!["None".into()],
        const_strings: vec![],
    };
    let lines = vec![Some(1); ins.len()];
    let cw = decode(12, &ins, &[], &names, false, &lines);
    let targets: Vec<&WriteTarget> = cw.writes.iter().map(|w| &w.target).collect();
    assert_eq!(
        targets,
        [&WriteTarget::Item {
            container: Path {
                root: Root::Global("items".into()),
                attrs: vec![],
            },
            adds_or_takes: true
        }]
    );
}

#[test]
fn a_store_fused_with_the_load_of_its_object_is_an_attribute_write() {
    // 3.13+: `out, self.results = self.results, []` stores `out` and loads `self` in one
    // STORE_FAST_LOAD_FAST before the STORE_ATTR.
    let names = CodeNames {
        names: vec!["results".into()],
        locals: vec!["self".into(), "out".into()],
        cells: vec![],
        consts: vec!["None".into()],
        const_strings: vec![],
    };
    for (minor, t, load) in [
        (13u8, &opcodes::V3_13, "LOAD_FAST"),
        (14, &opcodes::V3_14, "LOAD_FAST_BORROW"),
    ] {
        let ops = [
            (load, 0),                    // self
            ("LOAD_ATTR", 0),             // .results
            ("BUILD_LIST", 0),            // []
            ("SWAP", 2),                  //
            ("STORE_FAST_LOAD_FAST", 16), // out = ...; self
            ("STORE_ATTR", 0),            // .results
        ];
        let ins = bytecode::decode(t, &assemble(t, &ops));
        let lines = vec![Some(1); ins.len()];
        let cw = decode(minor, &ins, &[], &names, false, &lines);
        let targets: Vec<&WriteTarget> = cw.writes.iter().map(|w| &w.target).collect();
        assert_eq!(
            targets,
            [&WriteTarget::Attr {
                object: Path {
                    root: Root::Local("self".into()),
                    attrs: vec![],
                },
                attr: "results".into(),
            }],
            "3.{minor}"
        );
    }
}

#[test]
fn a_call_whose_computed_key_is_bound_again_on_the_way_passes_another_value() {
    // 3.12: for k in keys: take(self.queues[k])
    let t = &opcodes::V3_12;
    let ops = [
        ("LOAD_FAST", 2),     // 0 keys
        ("GET_ITER", 0),      // 1
        ("FOR_ITER", 8),      // 2
        ("STORE_FAST", 1),    // 3 k
        ("LOAD_GLOBAL", 1),   // 4 take (+ NULL)
        ("LOAD_FAST", 0),     // 5 self
        ("LOAD_ATTR", 2),     // 6 .queues
        ("LOAD_FAST", 1),     // 7 k
        ("BINARY_SUBSCR", 0), // 8
        ("CALL", 1),          // 9
        ("POP_TOP", 0),       // 10
        ("JUMP_BACKWARD", 0), // 11 (target patched below)
    ];
    let mut ins = bytecode::decode(t, &assemble(t, &ops));
    ins[11].arg = (ins[11].next - ins[2].offset) as u32;
    let names = CodeNames {
        names: vec!["take".into(), "queues".into()],
        locals: vec!["self".into(), "k".into(), "keys".into()],
        cells: vec![],
        consts: vec!["None".into()],
        const_strings: vec![],
    };
    let lines = vec![Some(1); ins.len()];
    let cw = decode(12, &ins, &[], &names, false, &lines);
    let c = cw.calls.iter().find(|c| c.name == "take").expect("take");
    let args = call_arguments(12, &ins, &names, c.index, "take").expect("arguments");
    assert!(cw.reachable_call_passing(4, c, &args), "`k` as bound now");
    assert!(cw.reachable_call(11, c), "the call itself is reached again");
    assert!(
        !cw.reachable_call_passing(11, c, &args),
        "the next iteration binds `k` again"
    );
}
