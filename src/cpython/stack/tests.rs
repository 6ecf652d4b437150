//! A thread's stack read while it runs: a walk that meets memory it cannot read, or a chain
//! that ends short of its entry frame, is read again where memory can change (within a
//! snapshot's budget of pauses), and otherwise keeps what it read.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;

use crate::cpython::layout::{for_version, Layout, TopFrame};
use crate::cpython::objects::Objects;
use crate::cpython::threads::{CodeInfo, Walker};
use crate::error::Result;
use crate::memory::{FakeMemory, ReadMemory};

const TSTATE: usize = 0x10_0000;
const CFRAME: usize = 0x18_0000;
const FRAME: usize = 0x20_0000;
/// The entry frame the C stack owns, at the end of a 3.12+ thread's chain.
const ENTRY: usize = 0x28_0000;
const CODE: usize = 0x30_0000;
const NAME: usize = 0x40_0000;
const TABLE: usize = 0x50_0000;
/// Where a torn link points: nothing is mapped there.
const GARBAGE: u64 = 0x33;

/// Where 3.15's thread state points at the frame every chain ends at.
const BASE_AT: usize = 80;
const BASE: usize = 0x38_0000;

/// 3.`minor`'s layout; 15 stands for a layout with a base frame (3.12's otherwise).
fn layout(minor: u64) -> Layout {
    let mut layout = for_version(3, minor.min(12), 0).unwrap();
    if minor >= 15 {
        layout.offsets.tstate_base_frame = Some(BASE_AT);
    }
    layout
}

/// A thread state whose top frame is `top`, and one frame at `FRAME` running the code at
/// `CODE`, linked to `back` (3.12+: an entry frame at `ENTRY` ends the chain; 3.15+: it
/// links to the base frame at `BASE`, which does).
fn memory(minor: u64, top: u64, back: u64) -> FakeMemory {
    let entry_back = if minor >= 15 { BASE as u64 } else { 0 };
    with_entry_back(minor, top, back, entry_back)
}

fn with_entry_back(minor: u64, top: u64, back: u64, entry_back: u64) -> FakeMemory {
    let offs = layout(minor).offsets;
    let mut mem = FakeMemory::new();
    match offs.tstate_top_frame {
        TopFrame::Direct(at) => {
            mem.put_u64s(TSTATE + at, &[top]);
        }
        TopFrame::ViaCframe(cframe, current) => {
            mem.put_u64s(TSTATE + cframe, &[CFRAME as u64]);
            mem.put_u64s(CFRAME + current, &[top]);
        }
    }
    mem.put_u64s(FRAME + offs.frame_back, &[back]);
    mem.put_u64s(FRAME + offs.frame_code, &[CODE as u64]);
    if let (Some(owner), Some(shim)) = (offs.frame_owner, offs.frame_shim_owner) {
        mem.put(FRAME + owner, &[0]);
        mem.put_u64s(ENTRY + offs.frame_back, &[entry_back]);
        mem.put(ENTRY + owner, &[shim]);
        mem.put_u64s(BASE + offs.frame_back, &[0]);
        mem.put(BASE + owner, &[shim]);
    }
    if let Some(at) = offs.tstate_base_frame {
        mem.put_u64s(TSTATE + at, &[BASE as u64]);
    }
    mem.put_u64s(CODE + offs.code_name, &[NAME as u64]);
    mem.put_u64s(CODE + offs.code_linetable, &[TABLE as u64]);
    mem
}

/// A live process caught halfway: `torn` until a reader reads again, then `whole`.
struct Running {
    torn: FakeMemory,
    whole: FakeMemory,
    reread: Cell<bool>,
}

impl Running {
    fn new(torn: FakeMemory, whole: FakeMemory) -> Running {
        Running {
            torn,
            whole,
            reread: Cell::new(false),
        }
    }
}

impl ReadMemory for Running {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        if self.reread.get() {
            self.whole.read_into(addr, buf)
        } else {
            self.torn.read_into(addr, buf)
        }
    }

    fn reread(&self, _places: &[(usize, usize)]) -> bool {
        self.reread.set(true);
        true
    }
}

/// `check` given a walker of 3.`minor` over `mem`, with the code at `CODE` known.
fn with_walker<R>(minor: u64, mem: &dyn ReadMemory, check: impl FnOnce(&mut Walker) -> R) -> R {
    let layout = layout(minor);
    let mut walker = Walker::new(Objects::new(mem, &layout));
    let (instructions, names) = crate::cpython::writes::tests::looping_write_39();
    let code = CodeInfo::for_test(minor.min(12) as u8, instructions, names, (NAME, TABLE));
    walker.adopt_cache(HashMap::from([(CODE, Arc::new(code))]));
    check(&mut walker)
}

fn frames(minor: u64, mem: &dyn ReadMemory) -> Result<Vec<String>> {
    with_walker(minor, mem, |walker| {
        Ok(walker
            .frames(TSTATE)?
            .iter()
            .map(|f| f.code.name.clone())
            .collect())
    })
}

#[test]
fn a_stack_read_halfway_through_a_call_is_read_again() {
    for minor in [9, 11, 12, 15] {
        // The chain's end: a null link (3.9, 3.11), the entry frame (3.12+).
        let end = if minor >= 12 { ENTRY as u64 } else { 0 };
        assert_eq!(
            frames(minor, &memory(minor, FRAME as u64, end)).unwrap(),
            ["f"]
        );
        // The top frame's link not yet set: nothing readable, then the whole stack.
        let running = Running::new(
            memory(minor, GARBAGE, end),
            memory(minor, FRAME as u64, end),
        );
        assert_eq!(frames(minor, &running).unwrap(), ["f"], "3.{minor}");
        assert!(running.reread.get(), "3.{minor}");
        // A frame's link torn: one frame and unreadable memory, then the stack to its end.
        let running = Running::new(
            memory(minor, FRAME as u64, GARBAGE),
            memory(minor, FRAME as u64, end),
        );
        assert_eq!(frames(minor, &running).unwrap(), ["f"], "3.{minor}");
        assert!(running.reread.get(), "3.{minor}");
    }
}

#[test]
fn a_chain_that_ends_short_of_its_entry_frame_is_read_again() {
    // 3.14 makes a frame called from C current before linking it to its caller: its link is
    // null, and no entry frame ends the chain.
    let running = Running::new(
        memory(12, FRAME as u64, 0),
        memory(12, FRAME as u64, ENTRY as u64),
    );
    assert_eq!(frames(12, &running).unwrap(), ["f"]);
    assert!(running.reread.get());
    // 3.15: an entry frame not yet linked to the base frame.
    let running = Running::new(
        with_entry_back(15, FRAME as u64, ENTRY as u64, 0),
        memory(15, FRAME as u64, ENTRY as u64),
    );
    assert_eq!(frames(15, &running).unwrap(), ["f"]);
    assert!(running.reread.get());
    let whole = Running::new(
        memory(15, FRAME as u64, ENTRY as u64),
        memory(15, FRAME as u64, ENTRY as u64),
    );
    assert_eq!(frames(15, &whole).unwrap(), ["f"]);
    assert!(!whole.reread.get(), "a chain to its base frame is whole");
    // Before 3.12 a null link is the chain's end: nothing to read again.
    let running = Running::new(memory(11, FRAME as u64, 0), memory(11, FRAME as u64, 0));
    assert_eq!(frames(11, &running).unwrap(), ["f"]);
    assert!(!running.reread.get());
}

#[test]
fn memory_that_cannot_change_keeps_the_frames_read() {
    // A core's stack is as it was dumped: the frames before the unreadable link are kept.
    for minor in [9, 12] {
        let cut = memory(minor, FRAME as u64, GARBAGE);
        assert_eq!(frames(minor, &cut).unwrap(), ["f"], "3.{minor}");
        assert!(
            frames(minor, &memory(minor, GARBAGE, 0)).is_err(),
            "3.{minor}"
        );
    }
    assert_eq!(frames(12, &memory(12, FRAME as u64, 0)).unwrap(), ["f"]);
}

/// A live process whose stack is cut at every read: it counts the reads again it is asked for.
struct AlwaysCut {
    mem: FakeMemory,
    rereads: Cell<usize>,
}

impl ReadMemory for AlwaysCut {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        self.mem.read_into(addr, buf)
    }

    fn reread(&self, _places: &[(usize, usize)]) -> bool {
        self.rereads.set(self.rereads.get() + 1);
        true
    }
}

#[test]
fn a_snapshot_pauses_for_cut_stacks_within_its_budget() {
    let cut = AlwaysCut {
        mem: memory(12, FRAME as u64, 0),
        rereads: Cell::new(0),
    };
    with_walker(12, &cut, |walker| {
        // The first cut thread is read again seven times (12.7 ms of pauses), then kept as read.
        assert_eq!(walker.frames(TSTATE).unwrap().len(), 1);
        assert_eq!(cut.rereads.get(), 7);
        // However many threads are cut, the snapshot pauses 25 ms at most, and then keeps each
        // as read at once.
        for _ in 0..50 {
            assert_eq!(walker.frames(TSTATE).unwrap().len(), 1);
        }
        assert!(walker.paused <= std::time::Duration::from_millis(25));
        let spent = cut.rereads.get();
        assert_eq!(walker.frames(TSTATE).unwrap().len(), 1);
        assert_eq!(cut.rereads.get(), spent, "no pause left: kept at once");
    });
}
