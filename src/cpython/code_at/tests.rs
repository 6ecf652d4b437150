//! The per-instruction cache of a code object: a hit, a reused address with another code
//! object is not one, and the bound.

use std::collections::HashMap;
use std::sync::Arc;

use super::MAX_INSTRUCTIONS;
use crate::cpython::layout::for_version;
use crate::cpython::objects::Objects;
use crate::cpython::threads::{CodeInfo, Walker};
use crate::memory::FakeMemory;

/// 3.9: `while True: with self.lock: self.n = 1`, kept as the code object whose name and
/// line table are the objects at `ptrs`.
fn looping_write(ptrs: (usize, usize)) -> CodeInfo {
    let (instructions, names) = crate::cpython::writes::tests::looping_write_39();
    CodeInfo::for_test(9, instructions, names, ptrs)
}

#[test]
fn a_frame_at_a_known_instruction_is_one_lookup() {
    let code = looping_write((0x100, 0x200));
    let unit = code.instructions[8].offset;
    let first = code.at(unit);
    assert_eq!(first.index, Some(8));
    let reach = code.reach(&first);
    assert_eq!(
        reach.writes,
        vec![0],
        "the write is reachable through the loop"
    );
    let again = code.at(unit);
    assert!(
        Arc::ptr_eq(&first, &again),
        "the second lookup is the kept one"
    );
    assert!(
        std::ptr::eq(code.reach(&again), reach),
        "reachability is not worked out again"
    );
    // The `with` statement a 3.9 block handler closes, kept per handler.
    let handler = code.instructions[7].offset;
    assert_eq!(code.handler_with(handler), Some(Some(2)));
    assert_eq!(code.handler_with(code.instructions[4].offset), None);
    let statement = code.with_statement(2);
    assert_eq!(statement.subject.as_deref(), Some("self.lock"));
    assert!(Arc::ptr_eq(&statement, &code.with_statement(2)));
}

#[test]
fn a_reused_address_with_another_code_object_is_not_a_hit() {
    let layout = for_version(3, 9, 18).unwrap();
    let offs = layout.offsets;
    let addr = 0x10_0000;
    let (name, table) = (0x20_0000usize, 0x30_0000usize);
    let mut mem = FakeMemory::new();
    mem.put_u64s(addr + offs.code_name, &[name as u64]);
    mem.put_u64s(addr + offs.code_linetable, &[table as u64]);
    let mut walker = Walker::new(Objects::new(&mem, &layout));
    let kept = Arc::new(looping_write((name, table)));
    walker.adopt_cache(HashMap::from([(addr, kept.clone())]));
    let hit = walker
        .cached_code(addr)
        .expect("the same code object is a hit");
    assert!(Arc::ptr_eq(&hit, &kept));
    assert!(Arc::ptr_eq(&walker.read_code(addr).unwrap(), &kept));

    // The address now holds another function of the same (interned) name: its own line table.
    let mut reused = FakeMemory::new();
    reused.put_u64s(addr + offs.code_name, &[name as u64]);
    reused.put_u64s(addr + offs.code_linetable, &[0x40_0000]);
    let mut walker = Walker::new(Objects::new(&reused, &layout));
    walker.adopt_cache(HashMap::from([(addr, kept.clone())]));
    assert!(walker.cached_code(addr).is_none());
    // Read afresh (which this fake memory cannot satisfy), never the kept one.
    assert!(walker.read_code(addr).is_err());
}

#[test]
fn the_instructions_kept_per_code_object_are_bounded() {
    let code = looping_write((0x100, 0x200));
    for unit in 0..MAX_INSTRUCTIONS + 50 {
        code.at(unit);
    }
    assert_eq!(code.at.len(), MAX_INSTRUCTIONS);
    // Beyond the bound an instruction is decoded on each use, with the same answer.
    let beyond = MAX_INSTRUCTIONS + 10;
    let (a, b) = (code.at(beyond), code.at(beyond));
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!(a.index, b.index);
    // A kept one is still one lookup.
    assert!(Arc::ptr_eq(&code.at(3), &code.at(3)));
}
