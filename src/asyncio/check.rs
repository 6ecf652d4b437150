//! Whether a set of 3.14+ asyncio offsets (published by the target or from the table) holds
//! on the live target, before anything is built on it: every task-list head links back to
//! itself, the tasks on the lists are `_asyncio.Task`s whose marker byte is set and whose
//! name is a str or an int, `_asyncio.Task` is as large as the offsets say, and each thread's
//! running task is a task. It only reads; it decides nothing about what is reported.

use crate::cpython::layout::common::TP_BASICSIZE;
use crate::cpython::layout::{AsyncioOffsets, CurrentTask, TaskRegistry};
use crate::cpython::objects::Objects;
use crate::cpython::threads::RawThread;

use super::types::{Kind, TaskImpl, Types};

/// Tasks looked at per list.
const TASKS_PER_LIST: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed on at least one live task.
    Holds,
    /// Nothing contradicts the offsets, but no task exists yet to check them on.
    NoTaskYet,
    /// A check failed: why, in a few words.
    Fails(String),
}

/// Check `offs` against the live interpreter `interp` and its threads `raw`. `task_type` is
/// `asyncio.tasks.Task` when the target has it.
pub fn check(
    objs: &Objects,
    types: &mut Types,
    offs: &AsyncioOffsets,
    interp: usize,
    raw: &[RawThread],
    task_type: Option<usize>,
) -> Verdict {
    let TaskRegistry::ThreadLists {
        tstate_head,
        interp_head,
        node,
        task_size,
        is_task,
    } = offs.registry
    else {
        return Verdict::Holds;
    };
    match check_lists(
        objs,
        types,
        interp,
        raw,
        (tstate_head, interp_head, node, is_task),
    ) {
        Err(why) => return Verdict::Fails(why),
        Ok(checked) => {
            if let Err(why) = check_task_type(objs, types, task_type, task_size) {
                return Verdict::Fails(why);
            }
            if let Err(why) = check_running(objs, types, offs, raw) {
                return Verdict::Fails(why);
            }
            if checked == 0 {
                return Verdict::NoTaskYet;
            }
        }
    }
    Verdict::Holds
}

/// Each list head links back, and its first tasks are tasks; returns how many were checked.
fn check_lists(
    objs: &Objects,
    types: &mut Types,
    interp: usize,
    raw: &[RawThread],
    (tstate_head, interp_head, node, is_task): (usize, usize, usize, usize),
) -> Result<usize, String> {
    let mem = objs.mem;
    let heads = raw
        .iter()
        .map(|rt| (rt.tstate + tstate_head, "a thread's"))
        .chain([(interp + interp_head, "the interpreter's")]);
    let mut checked = 0;
    for (head, whose) in heads {
        let broken = || format!("{whose} task list head does not link back to itself");
        let next = mem.ptr(head).map_err(|_| broken())?;
        let prev = mem.ptr(head + 8).map_err(|_| broken())?;
        if next == 0 || mem.ptr(next + 8).ok() != Some(head) || mem.ptr(prev).ok() != Some(head) {
            return Err(broken());
        }
        let mut at = next;
        for _ in 0..TASKS_PER_LIST {
            if at == head {
                break;
            }
            let task = at.checked_sub(node).ok_or_else(broken)?;
            check_task(objs, types, task, is_task)?;
            checked += 1;
            let after = mem.ptr(at).map_err(|_| broken())?;
            if mem.ptr(after + 8).ok() != Some(at) {
                return Err(format!("{whose} task list does not link back"));
            }
            at = after;
        }
    }
    Ok(checked)
}

/// A task on a list is an `_asyncio.Task` (or a subclass), has its marker byte set and a
/// str or int name.
fn check_task(
    objs: &Objects,
    types: &mut Types,
    task: usize,
    is_task: usize,
) -> Result<(), String> {
    let ty = objs
        .type_of(task)
        .map_err(|_| "a task on a list cannot be read".to_string())?;
    if types.kind(objs, ty) != Some(Kind::Task(TaskImpl::C)) {
        return Err("an object on a task list is not an _asyncio.Task".into());
    }
    let mut marker = [0u8; 1];
    if objs.mem.read_into(task + is_task, &mut marker).is_err() || marker[0] != 1 {
        return Err("a task's is_task byte is not set".into());
    }
    Ok(())
}

/// `_asyncio.Task`'s own size is the offsets' `sizeof(TaskObj)`.
fn check_task_type(
    objs: &Objects,
    types: &mut Types,
    task_type: Option<usize>,
    task_size: usize,
) -> Result<(), String> {
    let Some(ty) = task_type else {
        return Ok(());
    };
    let c_task = types
        .info(objs, ty)
        .is_some_and(|i| &*i.name == "_asyncio.Task");
    if !c_task {
        return Ok(());
    }
    let size = objs
        .mem
        .u64(ty + TP_BASICSIZE)
        .map_err(|_| "_asyncio.Task cannot be read".to_string())?;
    if size as usize != task_size {
        return Err(format!(
            "_asyncio.Task is {size} bytes, the offsets say {task_size}"
        ));
    }
    Ok(())
}

/// Each thread's running task, when set, is a task.
fn check_running(
    objs: &Objects,
    types: &mut Types,
    offs: &AsyncioOffsets,
    raw: &[RawThread],
) -> Result<(), String> {
    let CurrentTask::TstateField(off) = offs.current_task else {
        return Ok(());
    };
    for rt in raw {
        let t = objs
            .mem
            .ptr(rt.tstate + off)
            .map_err(|_| "a thread's running task cannot be read".to_string())?;
        if t == 0 {
            continue;
        }
        let kind = objs.type_of(t).ok().and_then(|ty| types.kind(objs, ty));
        if !matches!(kind, Some(Kind::Task(_))) {
            return Err("a thread's running task is not a task".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::asyncio_debug::test_layout_314;
    use crate::cpython::layout::common::TP_NAME;
    use crate::memory::FakeMemory;

    const TASK_TYPE: usize = 0x1000;
    const STR_TYPE: usize = 0x2000;
    const INTERP: usize = 0x10_0000;
    const TSTATE: usize = 0x20_0000;
    const TASK: usize = 0x30_0000;

    /// A 3.14 target with one thread whose task list holds one running `_asyncio.Task`.
    fn target(task_size: u64) -> FakeMemory {
        let mut m = FakeMemory::new();
        for (ty, name) in [(TASK_TYPE, "_asyncio.Task"), (STR_TYPE, "str")] {
            m.put(ty, &[0u8; 512]);
            m.put(ty + 0x800, &[0u8; 128]);
            m.write(ty + 0x800, name.as_bytes());
            m.put_u64s(ty + TP_NAME, &[(ty + 0x800) as u64]);
        }
        m.put_u64s(TASK_TYPE + TP_BASICSIZE, &[task_size]);
        m.put(INTERP, &vec![0u8; 11000]);
        let ihead = (INTERP + 10880) as u64;
        m.put_u64s(INTERP + 10880, &[ihead, ihead]);
        m.put(TSTATE, &[0u8; 1024]);
        let head = (TSTATE + 880) as u64;
        let node = (TASK + 152) as u64;
        m.put_u64s(TSTATE + 880, &[node, node]);
        m.put_u64s(TSTATE + 872, &[TASK as u64]);
        m.put(TASK, &[0u8; 168]);
        m.put_u64s(TASK + 8, &[TASK_TYPE as u64]);
        m.write(TASK + 108, &[1]);
        m.put_u64s(TASK + 152, &[head, head]);
        m
    }

    fn verdict(m: &FakeMemory) -> Verdict {
        let layout = test_layout_314(10);
        let objs = Objects::new(m, &layout);
        let raw = [RawThread {
            tstate: TSTATE,
            thread_id: 1,
            native_id: Some(1),
            frames: Vec::new(),
        }];
        let offs = layout.asyncio.unwrap();
        let mut types = Types::default();
        check(&objs, &mut types, &offs, INTERP, &raw, Some(TASK_TYPE))
    }

    #[test]
    fn offsets_that_fit_the_live_objects_hold() {
        assert_eq!(verdict(&target(168)), Verdict::Holds);
    }

    #[test]
    fn empty_lists_leave_the_check_open() {
        let mut m = target(168);
        let head = (TSTATE + 880) as u64;
        m.put_u64s(TSTATE + 880, &[head, head]);
        m.put_u64s(TSTATE + 872, &[0]);
        assert_eq!(verdict(&m), Verdict::NoTaskYet);
    }

    #[test]
    fn what_does_not_fit_fails_the_check() {
        // `_asyncio.Task` is not the size the offsets say.
        let Verdict::Fails(why) = verdict(&target(176)) else {
            panic!("a wrong task size passed");
        };
        assert!(why.contains("176 bytes"), "{why}");
        // A list head whose first node does not point back.
        let mut m = target(168);
        m.put_u64s(TASK + 152 + 8, &[0x4242]);
        assert!(matches!(verdict(&m), Verdict::Fails(w) if w.contains("link back")));
        // The object on the list is not a task (a str), or its marker byte is not set.
        let mut m = target(168);
        m.put_u64s(TASK + 8, &[STR_TYPE as u64]);
        assert!(matches!(verdict(&m), Verdict::Fails(w) if w.contains("not an _asyncio.Task")));
        let mut m = target(168);
        m.write(TASK + 108, &[0]);
        assert!(matches!(verdict(&m), Verdict::Fails(w) if w.contains("is_task")));
        // The running task is not a task.
        let mut m = target(168);
        m.put_u64s(TSTATE + 872, &[STR_TYPE as u64]);
        assert!(matches!(verdict(&m), Verdict::Fails(w) if w.contains("running task")));
    }
}
