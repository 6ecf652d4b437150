//! Which tasks exist and which one each loop runs now. 3.8-3.13 (and pure-Python asyncio)
//! keep them in `asyncio.tasks`' module globals (`_all_tasks`/`_scheduled_tasks` WeakSets,
//! 3.12+'s `_eager_tasks` set, the `_current_tasks` dict); 3.14+ in circular lists headed in
//! each thread state and the interpreter, with the running task in a thread-state field.
//! It lists addresses; what a task is is read by `tasks`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cpython::layout::asyncio_common::WEAKREF_OBJECT;
use crate::cpython::layout::{CoroFrame, CurrentTask, TaskRegistry};
use crate::cpython::threads::RawThread;
use crate::model::Frame;

use super::reader::{short, Reader};
use super::types::{AddrMap, Kind, TaskImpl};

/// How often to look for `asyncio.tasks` again in a process that has not imported it.
const LOOKUP_EVERY: Duration = Duration::from_secs(1);

impl Reader<'_, '_, '_> {
    pub(super) fn tasks_module(&mut self, interp: usize) -> Option<usize> {
        if let Some(m) = self.cache.tasks_module {
            return Some(m);
        }
        if let Some(at) = self.cache.last_lookup {
            if at.elapsed() < LOOKUP_EVERY {
                return None;
            }
        }
        self.cache.last_lookup = Some(Instant::now());
        let objs = &self.walker.objs;
        let modules = objs.mem.ptr(interp + self.offs.interp_modules).ok()?;
        let module = objs.dict_get(modules, "asyncio.tasks").ok()??;
        let dict = objs.mem.ptr(module + 16).ok()?;
        (objs.type_name(dict).ok()? == "dict").then_some(())?;
        self.cache.tasks_module = Some(dict);
        Some(dict)
    }

    /// `asyncio.tasks`' globals, by name; `None` (and looked up again later) while the
    /// module is not imported or its dict moved.
    pub(super) fn module_globals(&mut self, interp: usize) -> Option<HashMap<String, usize>> {
        let module = self.tasks_module(interp)?;
        let globals: HashMap<String, usize> = match self.walker.objs.dict_items(module) {
            Ok(g) => g.into_iter().collect(),
            Err(_) => {
                // The module was unloaded or its dict moved: look it up again next time.
                self.cache.tasks_module = None;
                return None;
            }
        };
        Some(globals)
    }

    /// Each loop's running task, by loop.
    pub(super) fn current_tasks(
        &mut self,
        raw: &[RawThread],
        globals: &HashMap<String, usize>,
    ) -> HashMap<usize, usize> {
        match self.offs.current_task {
            CurrentTask::ModuleDict => globals
                .get("_current_tasks")
                .and_then(|d| self.walker.objs.dict_entries(*d).ok())
                .unwrap_or_default()
                .into_iter()
                .collect(),
            CurrentTask::TstateField(off) => {
                let mut current = HashMap::new();
                for rt in raw {
                    let Some(lp) = self.running_loop(rt) else {
                        continue;
                    };
                    let objs = &self.walker.objs;
                    if let Some(t) = objs
                        .mem
                        .ptr(rt.tstate + off)
                        .ok()
                        .filter(|t| *t != 0 && !objs.is_none(*t))
                    {
                        current.insert(lp, t);
                    }
                }
                current
            }
        }
    }

    /// Every registry's tasks, each with whether it is listed as eager (3.12/3.13).
    pub(super) fn members(
        &mut self,
        interp: usize,
        raw: &[RawThread],
        globals: &HashMap<String, usize>,
    ) -> Vec<(usize, bool)> {
        let mut members: Vec<(usize, bool)> = Vec::new();
        if let TaskRegistry::ThreadLists {
            tstate_head,
            interp_head,
            node,
            ..
        } = self.offs.registry
        {
            for head in raw
                .iter()
                .map(|rt| rt.tstate + tstate_head)
                .chain([interp + interp_head])
            {
                for t in self.task_list(head, node) {
                    members.push((t, false));
                }
            }
        }
        for name in ["_all_tasks", "_scheduled_tasks"] {
            if let Some(ws) = globals.get(name) {
                for t in self.weakset(*ws) {
                    members.push((t, false));
                }
            }
        }
        if let Some(eager) = globals.get("_eager_tasks") {
            for t in self.walker.objs.set_items(*eager).unwrap_or_default() {
                members.push((t, true));
            }
        }
        members
    }

    /// 3.14+: the running tasks in their first, eager step, with their frames (innermost
    /// first, down to the task's coroutine). With `eager_start` the first step runs inside
    /// the task's constructor (`task_eager_start`), so the coroutine's frame is called by
    /// whatever created the task; a step the loop runs is called by `Handle._run`, or, in a
    /// native loop, by the frame that called into the loop. (3.12/3.13 list such tasks in
    /// `_eager_tasks` instead.)
    pub(super) fn eager_steps(
        &mut self,
        raw: &[RawThread],
        current: &HashMap<usize, usize>,
    ) -> AddrMap<usize, Vec<Frame>> {
        let mut out = AddrMap::default();
        let (TaskRegistry::ThreadLists { .. }, CoroFrame::Embedded { at, .. }) =
            (self.offs.registry, self.offs.coro_frame)
        else {
            return out;
        };
        let dialect = self.walker.dialect();
        for rt in raw {
            let Some(task) = self
                .running_loop(rt)
                .and_then(|lp| current.get(&lp).copied())
            else {
                continue;
            };
            if self.kind(task) != Some(Kind::Task(TaskImpl::C)) {
                continue;
            }
            let Some(coro) = self
                .mem()
                .ptr(task + self.offs.task_coro)
                .ok()
                .filter(|c| *c != 0)
            else {
                continue;
            };
            let Some(k) = rt.frames.iter().position(|f| f.addr == coro + at) else {
                continue;
            };
            let Some(caller) = rt.frames.get(k + 1) else {
                continue;
            };
            let by_loop = (short(&caller.code.filename) == "events.py"
                && matches!(caller.code.name.as_str(), "_run" | "Handle._run"))
                || matches!(
                    self.facts.of(dialect, caller).called_method(),
                    Some("run_until_complete" | "run_forever")
                );
            if by_loop {
                continue;
            }
            let frames = rt.frames[..=k]
                .iter()
                .map(|f| self.facts.of(dialect, f).frame.clone())
                .collect();
            out.insert(task, frames);
        }
        out
    }

    /// The tasks of a 3.14+ circular task list whose head node is at `head`: each node is
    /// `{next, prev}` inside a task, `node` bytes from its start.
    pub(super) fn task_list(&self, head: usize, node: usize) -> Vec<usize> {
        const MAX_TASKS: usize = 1 << 20;
        let mut out = Vec::new();
        let mem = self.mem();
        let mut at = match mem.ptr(head) {
            Ok(p) => p,
            Err(_) => return out,
        };
        while at != head && at != 0 && out.len() < MAX_TASKS {
            let Some(task) = at.checked_sub(node) else {
                break;
            };
            out.push(task);
            at = match mem.ptr(at) {
                Ok(p) => p,
                Err(_) => break,
            };
        }
        out
    }

    /// The members of a `weakref.WeakSet`: its `data` set holds weak references. A dead
    /// reference points at `None`, which is not a task and is dropped when read as one.
    pub(super) fn weakset(&mut self, ws: usize) -> Vec<usize> {
        let objs = &self.walker.objs;
        let Some(data) = objs.attr(ws, "data").ok().flatten() else {
            return Vec::new();
        };
        let refs = objs.set_items(data).unwrap_or_default();
        refs.into_iter()
            .filter_map(|r| objs.mem.ptr(r + WEAKREF_OBJECT).ok().filter(|o| *o != 0))
            .collect()
    }
}
