//! `_asyncio`'s `.AsyncioDebug` section (CPython 3.14+, `Modules/_asynciomodule.c`,
//! `Py_AsyncioModuleDebugOffsets`): the Task, interpreter and thread-state offsets a target
//! publishes for out-of-process tools. This file names the section's fields, bounds them,
//! and combines them with the facts no section gives into the asyncio offsets. It reads
//! nothing from the target (the bytes come from `target::elf`, the live check from asyncio).

use super::layout::{AsyncioOffsets, CoroFrame, CurrentTask, Layout, RunningLoop, TaskRegistry};

/// The section's name in the ELF file.
pub const SECTION: &str = ".AsyncioDebug";
/// More than the section can hold (13 uint64 on 3.14 and 3.15): a larger one is refused.
pub const SECTION_MAX: usize = 4096;
/// A binary that may hold the section: the `_asyncio` extension (3.14) or the interpreter's
/// executable or libpython (3.15, where `_asyncio` is built in).
pub fn may_hold_section(file_name: &str) -> bool {
    file_name.starts_with("_asyncio")
        || file_name.starts_with("python")
        || file_name.starts_with("libpython")
}

/// Bounds on what the section may say: a Task is a few hundred bytes, an interpreter state a
/// few hundred KiB, a thread state about 1 KiB.
const MAX_TASK: usize = 4096;
const MAX_INTERP: usize = 16 << 20;
const MAX_TSTATE: usize = 1 << 16;
/// `PyObject_HEAD`: no Task field lies before it.
const OBJECT_HEAD: usize = 16;
/// `struct llist_node {next, prev}`.
const LLIST_NODE: usize = 16;

/// The section's fields, in their published order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncioDebug {
    pub task_size: usize,
    pub task_name: usize,
    pub task_awaited_by: usize,
    pub task_is_task: usize,
    pub task_awaited_by_is_set: usize,
    pub task_coro: usize,
    pub task_node: usize,
    pub interp_size: usize,
    pub interp_tasks_head: usize,
    pub tstate_size: usize,
    pub tstate_running_loop: usize,
    pub tstate_running_task: usize,
    pub tstate_tasks_head: usize,
}

const FIELDS: usize = 13;

/// The section's fields from its bytes (little-endian uint64s), each within its struct.
pub fn parse(bytes: &[u8]) -> Result<AsyncioDebug, String> {
    if bytes.len() < FIELDS * 8 || bytes.len() > SECTION_MAX {
        return Err(format!(
            "{SECTION} is {} bytes, not the {} of {FIELDS} offsets",
            bytes.len(),
            FIELDS * 8
        ));
    }
    let mut w = [0usize; FIELDS];
    for (i, c) in bytes.chunks_exact(8).take(FIELDS).enumerate() {
        let v = u64::from_le_bytes(c.try_into().unwrap());
        // Anything past every bound becomes usize::MAX and fails the checks below.
        w[i] = usize::try_from(v).unwrap_or(usize::MAX);
    }
    let d = AsyncioDebug {
        task_size: w[0],
        task_name: w[1],
        task_awaited_by: w[2],
        task_is_task: w[3],
        task_awaited_by_is_set: w[4],
        task_coro: w[5],
        task_node: w[6],
        interp_size: w[7],
        interp_tasks_head: w[8],
        tstate_size: w[9],
        tstate_running_loop: w[10],
        tstate_running_task: w[11],
        tstate_tasks_head: w[12],
    };
    d.within_bounds()?;
    Ok(d)
}

impl AsyncioDebug {
    fn within_bounds(&self) -> Result<(), String> {
        let inside = |what: &str, off: usize, len: usize, size: usize, min: usize| {
            if off >= min && off.checked_add(len).is_some_and(|end| end <= size) {
                Ok(())
            } else {
                Err(format!(
                    "{SECTION} places {what} at {off}, outside its {size}-byte struct"
                ))
            }
        };
        if self.task_size > MAX_TASK
            || self.interp_size > MAX_INTERP
            || self.tstate_size > MAX_TSTATE
        {
            return Err(format!(
                "{SECTION} gives implausible sizes (task {}, interpreter {}, thread state {})",
                self.task_size, self.interp_size, self.tstate_size
            ));
        }
        let t = self.task_size;
        inside("task_name", self.task_name, 8, t, OBJECT_HEAD)?;
        inside("task_awaited_by", self.task_awaited_by, 8, t, OBJECT_HEAD)?;
        // `fut_state` (a C enum) sits right before `is_task`.
        inside("task_is_task", self.task_is_task, 1, t, OBJECT_HEAD + 4)?;
        inside(
            "task_awaited_by_is_set",
            self.task_awaited_by_is_set,
            1,
            t,
            OBJECT_HEAD,
        )?;
        // `task_fut_waiter` sits right before `task_coro`.
        inside("task_coro", self.task_coro, 8, t, OBJECT_HEAD + 8)?;
        inside("task_node", self.task_node, LLIST_NODE, t, OBJECT_HEAD)?;
        let i = self.interp_size;
        inside(
            "asyncio_tasks_head",
            self.interp_tasks_head,
            LLIST_NODE,
            i,
            0,
        )?;
        let s = self.tstate_size;
        inside("asyncio_running_loop", self.tstate_running_loop, 8, s, 0)?;
        inside("asyncio_running_task", self.tstate_running_task, 8, s, 0)?;
        inside(
            "asyncio_tasks_head",
            self.tstate_tasks_head,
            LLIST_NODE,
            s,
            0,
        )?;
        Ok(())
    }
}

/// The asyncio offsets of `layout`'s target from its section `d`: the published fields from
/// the section, the rest from the facts of its version (Future fields no section publishes,
/// coroutine frames, the await slot). Fails when the section disagrees with the target's
/// `_Py_DebugOffsets` (then it belongs to another build).
pub fn offsets(layout: &Layout, d: &AsyncioDebug) -> Result<AsyncioOffsets, String> {
    let (Some(facts), Some(published)) = (layout.asyncio, layout.asyncio_published.as_ref()) else {
        return Err(format!(
            "CPython {} publishes no asyncio offsets gridlock reads",
            layout.version
        ));
    };
    if let Some(size) = published.interp_size.filter(|s| *s != d.interp_size) {
        return Err(format!(
            "{SECTION} is for another build: its interpreter state is {} bytes, the interpreter's own debug offsets say {size}",
            d.interp_size
        ));
    }
    if let Some(base) = published.tstate_base_size {
        let fields = [
            d.tstate_running_loop,
            d.tstate_running_task,
            d.tstate_tasks_head,
        ];
        if d.tstate_size < base || fields.iter().any(|f| *f < base) {
            return Err(format!(
                "{SECTION} places thread-state fields inside the {base}-byte PyThreadState, which ends before them"
            ));
        }
    }
    Ok(AsyncioOffsets {
        running_loop: RunningLoop::Field(d.tstate_running_loop),
        current_task: CurrentTask::TstateField(d.tstate_running_task),
        registry: TaskRegistry::ThreadLists {
            tstate_head: d.tstate_tasks_head,
            interp_head: d.interp_tasks_head,
            node: d.task_node,
            task_size: d.task_size,
            is_task: d.task_is_task,
        },
        task_name: d.task_name,
        task_coro: d.task_coro,
        // The Future head ends `..., awaited_by, state, is_task`: `fut_state` is the C enum
        // right before `is_task`, and `task_fut_waiter` the pointer right before `task_coro`
        // (Modules/_asynciomodule.c, `FutureObj_HEAD` and `TaskObj`, 3.14 and 3.15).
        fut_state: d.task_is_task - 4,
        task_fut_waiter: d.task_coro - 8,
        coro_frame: match facts.coro_frame {
            f @ CoroFrame::Embedded { .. } => f,
            CoroFrame::Pointer { .. } => {
                return Err("asyncio offsets of a pre-3.11 frame layout".into())
            }
        },
        ..facts
    })
}

/// A 3.14 layout from fake debug offsets whose interpreter and thread-state sizes are the
/// ones 3.14.10 publishes (for unit tests).
#[cfg(test)]
pub(crate) fn test_layout_314(micro: u64) -> Layout {
    use crate::cpython::debug_offsets;
    let version = 0x030e00f0 | (micro << 8);
    let m = debug_offsets::fake_runtime(version, debug_offsets::V314, false);
    let mut d = debug_offsets::read(&m, 0x10000).unwrap();
    d.set("interpreter_state", "size", 225864);
    d.set("thread_state", "size", 832);
    super::layout::from_debug_offsets(&d).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3.14.10's section, as its `_asyncio` extension holds it (FACTS-cpython-314.md).
    const V314: [u64; FIELDS] = [
        168, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880,
    ];

    fn bytes_of(words: &[u64]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn layout_314(micro: u64) -> Layout {
        test_layout_314(micro)
    }

    #[test]
    fn a_hand_made_section_gives_the_published_offsets() {
        let d = parse(&bytes_of(&V314)).unwrap();
        assert_eq!(d.task_node, 152);
        assert_eq!(d.tstate_tasks_head, 880);
        let layout = layout_314(10);
        let o = offsets(&layout, &d).unwrap();
        assert!(matches!(o.running_loop, RunningLoop::Field(864)));
        assert_eq!(o.current_task, CurrentTask::TstateField(872));
        assert_eq!(
            o.registry,
            TaskRegistry::ThreadLists {
                tstate_head: 880,
                interp_head: 10880,
                node: 152,
                task_size: 168,
                is_task: 108
            }
        );
        assert_eq!((o.task_name, o.task_coro), (136, 128));
        assert_eq!((o.fut_state, o.task_fut_waiter), (104, 120));
        // The same values as the table verified on this build.
        let table = layout.asyncio.unwrap();
        assert_eq!(table.registry, o.registry);
        assert_eq!((table.fut_state, table.task_fut_waiter), (104, 120));
        assert!(layout.asyncio_published.as_ref().unwrap().table_build);
        assert!(!layout_314(11).asyncio_published.unwrap().table_build);
    }

    #[test]
    fn moved_fields_are_taken_from_the_section() {
        // A later build that grew the Task by 8 bytes before its name and node.
        let mut w = V314;
        w[0] = 176;
        w[1] = 144;
        w[6] = 160;
        w[12] = 888;
        let d = parse(&bytes_of(&w)).unwrap();
        let o = offsets(&layout_314(11), &d).unwrap();
        assert_eq!(o.task_name, 144);
        assert!(matches!(
            o.registry,
            TaskRegistry::ThreadLists {
                node: 160,
                tstate_head: 888,
                ..
            }
        ));
    }

    #[test]
    fn short_oversized_and_out_of_bounds_sections_are_refused() {
        assert!(parse(&bytes_of(&V314[..12])).is_err());
        assert!(parse(&vec![0u8; SECTION_MAX + 8]).is_err());
        // The node past the end of the Task.
        let mut w = V314;
        w[6] = 160;
        let err = parse(&bytes_of(&w)).unwrap_err();
        assert!(err.contains("task_node"), "{err}");
        // A size no Task has.
        let mut w = V314;
        w[0] = u64::MAX;
        assert!(parse(&bytes_of(&w)).is_err());
        // A field before the object header.
        let mut w = V314;
        w[3] = 2;
        assert!(parse(&bytes_of(&w)).is_err());
        // Trailing padding is fine.
        let mut padded = bytes_of(&V314);
        padded.extend([0u8; 24]);
        assert_eq!(parse(&padded).unwrap(), parse(&bytes_of(&V314)).unwrap());
    }

    #[test]
    fn a_section_of_another_build_is_refused() {
        let mut w = V314;
        w[7] = 226240; // 3.15's interpreter state
        let d = parse(&bytes_of(&w)).unwrap();
        let err = offsets(&layout_314(10), &d).unwrap_err();
        assert!(err.contains("another build"), "{err}");
        // Thread-state fields inside PyThreadState proper.
        let mut w = V314;
        w[10] = 800;
        let d = parse(&bytes_of(&w)).unwrap();
        assert!(offsets(&layout_314(10), &d).is_err());
    }
}
