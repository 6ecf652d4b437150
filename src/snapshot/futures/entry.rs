//! The `locks[]` entry of a waited future: made once per future, its holders whoever
//! completes it (a worker thread, a pool's workers, a task, a loop's thread), its name what
//! computes it, and each place it is waited on. It reads no memory.

use crate::snapshot::builder::*;

use super::jobs::{Completer, Job};

/// How a queued callback is named in a future's name: the function that made a closure
/// (`run_coroutine_threadsafe` for its `callback`), with the closure's own name where it says
/// which copy it is (`_chain_future's _call_set_state`).
pub(super) fn short_callback(callback: &str) -> String {
    match callback.split_once(".<locals>.") {
        Some((outer, "callback")) => outer.to_string(),
        Some((outer, inner)) => format!("{outer}'s {inner}"),
        None => callback.to_string(),
    }
}

/// Where the future is waited on, as a place its name is used (the entry is made unplaced).
pub(super) fn add_name(lock: &mut Lock, site: &str) {
    let Some(name) = lock.names.first().map(|n| n.name.clone()) else {
        return;
    };
    if let Some(unplaced) = lock.names.iter_mut().find(|n| n.frame.is_empty()) {
        unplaced.frame = site.to_string();
        return;
    }
    let n = LockName {
        how: NameHow::Local,
        name,
        frame: site.to_string(),
    };
    if !lock.names.contains(&n) {
        lock.names.push(n);
    }
}

/// The `locks[]` entry of a waited future, made once: holders are whoever completes it.
pub(super) fn future_entry<'e>(
    pid: i32,
    fut: usize,
    job: Option<&Job>,
    threads: &[Thread],
    entries: &'e mut BTreeMap<usize, Lock>,
) -> &'e mut Lock {
    entries.entry(fut).or_insert_with(|| {
        let holder = |thread: Option<String>, task: Option<String>, site: Option<String>| Holder {
            thread,
            task,
            process: None,
            owner_ident: None,
            evidence: Evidence::Future,
            site,
            count: None,
            call_path: Vec::new(),
        };
        let on_loop = |w: usize| Holder {
            evidence: Evidence::ReadyQueue,
            ..holder(Some(threads[w].id.clone()), None, None)
        };
        let (what, holders) = match job {
            Some(j) => {
                let holders = match &j.completer {
                    Completer::Running(w, site) => {
                        vec![holder(Some(threads[*w].id.clone()), None, site.clone())]
                    }
                    Completer::Queued(ws) => ws
                        .iter()
                        .map(|w| holder(Some(threads[*w].id.clone()), None, None))
                        .collect(),
                    Completer::Task(t) => vec![holder(None, Some(t.clone()), None)],
                    Completer::Loop(w) | Completer::TaskOnLoop(w) => vec![on_loop(*w)],
                };
                (j.what.clone(), holders)
            }
            None => (None, Vec::new()),
        };
        let queued = matches!(job.map(|j| &j.completer), Some(Completer::Queued(_)));
        let on_loop = matches!(job.map(|j| &j.completer), Some(Completer::Loop(_)));
        let name = match what {
            Some(w) if on_loop && w == "run_coroutine_threadsafe" => format!("the result of {w}"),
            Some(w) if on_loop => format!("a future set by {w}"),
            Some(w) if queued => format!("the result of {w} (queued)"),
            Some(w) => format!("the result of {w}"),
            None => "a future".to_string(),
        };
        Lock {
            names: vec![LockName {
                how: NameHow::Local,
                name,
                frame: String::new(),
            }],
            ..Lock::pending_result(pid, fut, LockKind::Future, holders)
        }
    })
}
