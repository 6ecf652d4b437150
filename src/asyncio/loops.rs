//! Which event loop each thread runs and what it does now: polling, between steps, or
//! running a step (which task or callback, with its frames), for asyncio's own loops and
//! for native ones (uvloop) seen from the stack and the syscall only. It reads loops; it
//! does not judge how long a step took (`analysis::loops` does).

use crate::cpython::layout::asyncio_common::{DEQUE_LEN, DEQUE_STATE, RUNNING_LOOP_HOLDER_LOOP};
use crate::cpython::layout::RunningLoop;
use crate::cpython::threads::RawThread;
use crate::model::{short_file, EventLoop, Frame, LoopState, LoopStep, Thread};

use super::ids::{loop_id, task_id};
use super::reader::{short, Reader};

const RUNNING_LOOP_KEY: &str = "__asyncio_running_event_loop__";

impl Reader<'_, '_, '_> {
    pub(super) fn running_loop(&mut self, rt: &RawThread) -> Option<usize> {
        let objs = &self.walker.objs;
        let from_tstate = match self.offs.running_loop {
            RunningLoop::DictHolder(off) | RunningLoop::DictLoop(off) => {
                let dict = objs.mem.ptr(rt.tstate + off).ok().filter(|d| *d != 0);
                let value = dict.and_then(|d| objs.dict_get(d, RUNNING_LOOP_KEY).ok().flatten());
                match (self.offs.running_loop, value) {
                    (RunningLoop::DictHolder(_), Some(h)) => {
                        objs.mem.ptr(h + RUNNING_LOOP_HOLDER_LOOP).ok()
                    }
                    (_, v) => v,
                }
            }
            RunningLoop::Field(off) => objs.mem.ptr(rt.tstate + off).ok(),
            RunningLoop::NotInThreadState => None,
        };
        if let Some(lp) = from_tstate.filter(|l| *l != 0 && !objs.is_none(*l)) {
            return Some(lp);
        }
        // Pure-Python asyncio keeps the running loop elsewhere: `_run_once`'s `self` is it.
        let f = rt
            .frames
            .iter()
            .find(|f| is_run_once(&f.code.filename, &f.code.name))?;
        self.walker.local(f, "self")
    }

    /// What the loop thread does now, and the frames of the step it runs.
    pub(super) fn loop_state(
        &mut self,
        lp: usize,
        rt: &RawThread,
        th: &Thread,
        current: Option<usize>,
    ) -> (EventLoop, Option<Vec<Frame>>) {
        let info = self.ty(lp);
        let kind = info
            .as_ref()
            .map(|i| i.name.to_string())
            .unwrap_or_else(|| "?".into());
        let native = info.is_some_and(|i| !i.base_event_loop);
        let ready = self.walker.objs.attr(lp, "_ready").ok().flatten();
        let ready_len = ready
            .and_then(|d| self.mem().i64(d + DEQUE_LEN).ok())
            .map(|n| n.max(0) as usize);
        let ready_state = ready.and_then(|d| self.mem().u64(d + DEQUE_STATE).ok());
        if let Some(d) = ready {
            self.cache.ready_queues.insert(lp, d);
        }
        let torn = matches!(
            (self.cache.ready_before.get(&lp), ready_state),
            (Some(before), Some(now)) if *before != now
        );
        let frames = &th.frames;
        let run_once = frames
            .iter()
            .position(|f| is_run_once(&f.file, &f.function));
        let run = run_once.and_then(|ro| {
            frames[..ro].iter().position(|f| {
                short(&f.file) == "events.py"
                    && (f.function == "_run" || f.function == "Handle._run")
            })
        });
        let mut step = None;
        let mut step_frames = None;
        let state = match (run_once, run) {
            (None, _) if native => {
                let (state, s) = self.native_loop_state(rt, th, current);
                step_frames = s.as_ref().map(|s| s.frames.clone());
                step = s;
                state
            }
            (None, _) => LoopState::Unknown,
            // The ready queue moved while we read: a step ended or began during the sample.
            (Some(_), Some(_)) if torn => LoopState::Between,
            (Some(_), Some(j)) => {
                let handle = rt.frames.get(j).and_then(|f| self.walker.local(f, "self"));
                let callback = (j > 0).then(|| frames[j - 1].function.clone());
                let sf: Vec<Frame> = frames[..j].to_vec();
                step_frames = Some(sf.clone());
                step = Some(LoopStep {
                    key: format!(
                        "{:x}/{:x}/{:x}",
                        ready_state.unwrap_or(0),
                        handle.unwrap_or(0),
                        current.unwrap_or(0)
                    ),
                    task: current.map(|t| task_id(self.pid, t)),
                    callback,
                    handle: handle.map(|h| format!("{h:#x}")),
                    frames: sf,
                });
                LoopState::Step
            }
            (Some(ro), None) => {
                if ro > 0 && short(&frames[ro - 1].file) == "selectors.py" {
                    LoopState::Polling
                } else {
                    LoopState::Between
                }
            }
        };
        (
            EventLoop {
                id: loop_id(self.pid, lp),
                pid: self.pid,
                address: format!("{lp:#x}"),
                kind,
                thread: Some(th.id.clone()),
                state,
                step,
                ready: ready_len,
                tasks: 0,
                deadlines: None,
            },
            step_frames,
        )
    }

    /// A loop that asyncio's `BaseEventLoop` does not run (uvloop's `Loop`, scheduling in
    /// native code): seen from the thread's stack and syscall only. The innermost frame that
    /// called into the loop (`run_until_complete` / `run_forever`, from its bytecode) runs
    /// it; Python frames above that frame are a callback or task step (the task is the
    /// loop's `_current_tasks` entry); none, in `epoll_wait`, is polling. Without the loop's
    /// own counters, two steps of one task or callback with no poll sampled between them
    /// look like one.
    pub(super) fn native_loop_state(
        &mut self,
        rt: &RawThread,
        th: &Thread,
        current: Option<usize>,
    ) -> (LoopState, Option<LoopStep>) {
        let dialect = self.walker.dialect();
        let run = rt.frames.iter().position(|f| {
            matches!(
                self.facts.of(dialect, f).called_method(),
                Some("run_until_complete" | "run_forever")
            )
        });
        let Some(j) = run else {
            return (LoopState::Unknown, None);
        };
        if j == 0 || th.frames.len() != rt.frames.len() {
            let polling = th
                .kernel
                .as_ref()
                .and_then(|k| k.syscall.as_deref())
                .is_some_and(|s| s.starts_with("epoll_wait") || s.starts_with("epoll_pwait"));
            return (
                if polling {
                    LoopState::Polling
                } else {
                    LoopState::Between
                },
                None,
            );
        }
        let frames: Vec<Frame> = th.frames[..j].to_vec();
        let step = LoopStep {
            key: format!(
                "native/{:x}/{:x}",
                current.unwrap_or(0),
                rt.frames[j - 1].addr
            ),
            task: current.map(|t| self.task_id(t)),
            callback: Some(frames[j - 1].function.clone()),
            handle: None,
            frames,
        };
        (LoopState::Step, Some(step))
    }
}

fn is_run_once(file: &str, function: &str) -> bool {
    short_file(file) == "base_events.py" && function.ends_with("_run_once")
}
