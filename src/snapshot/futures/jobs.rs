//! Which futures this process's thread pools complete: the future of the `_WorkItem` a worker
//! thread runs now (`_WorkItem.run` on its stack), and those queued in a pool's work queue
//! (any of the pool's `_worker` threads will run them). Plus the frame tests the futures
//! files share. It reads frames and objects only; it names no waiter.

use crate::snapshot::builder::*;

/// How a future will be completed.
#[derive(Debug, Clone)]
pub(super) enum Completer {
    /// A worker thread runs its work item now (thread index, site inside the function).
    Running(usize, Option<String>),
    /// Queued in a thread pool: any of its workers (thread indexes) will run it.
    Queued(Vec<usize>),
    /// Copied from an asyncio task's result.
    Task(String),
    /// A callback queued on the loop of this thread (index) will complete it.
    Loop(usize),
    /// Copied from a task whose own step is queued on the loop of this thread (index): the
    /// loop's thread runs the task.
    TaskOnLoop(usize),
}

#[derive(Debug, Clone)]
pub(super) struct Job {
    /// What it computes: the submitted function, or the task's coroutine.
    pub(super) what: Option<String>,
    pub(super) completer: Completer,
}

/// Whether the frame is in `concurrent/futures/<file>` (no allocation: every frame of every
/// thread is asked, every snapshot).
pub(super) fn in_futures(f: &Frame, file: &str) -> bool {
    f.file
        .strip_suffix(file)
        .is_some_and(|dir| dir.ends_with("concurrent/futures/"))
}

/// `function`, or a method of that name (`Future.result` on 3.11+).
pub(super) fn named(f: &Frame, function: &str) -> bool {
    f.function
        .strip_suffix(function)
        .is_some_and(|head| head.is_empty() || head.ends_with('.'))
}

/// Futures being run by a worker thread now, and futures queued in a thread pool.
pub(super) fn running_and_queued(
    walker: &Walker,
    raw: &[RawThread],
    threads: &[Thread],
) -> HashMap<usize, Job> {
    let objs = &walker.objs;
    let mut jobs = HashMap::new();
    let mut pools: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, rt) in raw.iter().enumerate() {
        let frames = &threads[i].frames;
        for (j, rf) in rt.frames.iter().enumerate() {
            let Some(f) = frames.get(j) else { break };
            if !in_futures(f, "thread.py") {
                continue;
            }
            if named(f, "_worker") {
                if let Some(q) = walker.local(rf, "work_queue") {
                    pools.entry(q).or_default().push(i);
                }
                continue;
            }
            if !named(f, "run") {
                continue;
            }
            let Some(item) = walker
                .local(rf, "self")
                .filter(|s| objs.type_is(*s, "_WorkItem"))
            else {
                continue;
            };
            let Some(fut) = objs.attr(item, "future").ok().flatten() else {
                continue;
            };
            // The frame `run` called is the submitted function's, where it is now (3.14+ call
            // it through `WorkerContext.run`, in the same file).
            let inner = frames[..j]
                .iter()
                .rev()
                .find(|f| !f.file.ends_with("concurrent/futures/thread.py"));
            let what = work_item_function(objs, item).or_else(|| inner.map(|f| f.function.clone()));
            jobs.insert(
                fut,
                Job {
                    what,
                    completer: Completer::Running(i, inner.map(Frame::site)),
                },
            );
        }
    }
    for (queue, workers) in pools {
        for item in objs.simple_queue_items(queue).unwrap_or_default() {
            if !objs.type_is(item, "_WorkItem") {
                continue;
            }
            let Some(fut) = objs.attr(item, "future").ok().flatten() else {
                continue;
            };
            jobs.entry(fut).or_insert_with(|| Job {
                what: work_item_function(objs, item),
                completer: Completer::Queued(workers.clone()),
            });
        }
    }
    jobs
}

/// The function a `_WorkItem` runs: its `fn`, or (3.14+) the first of its `task` tuple
/// `(fn, args, kwargs)`.
pub(super) fn work_item_function(objs: &Objects, item: usize) -> Option<String> {
    let f = match objs.attr(item, "fn").ok().flatten() {
        Some(f) => f,
        None => {
            let task = objs.attr(item, "task").ok().flatten()?;
            *objs.tuple_items(task).ok()?.first()?
        }
    };
    objs.function_qualname(f).ok()
}
