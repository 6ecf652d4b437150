//! Whether a trio run is parked whole: polling with no deadline, no other thread of its
//! process running (which could call in through trio's entry queue), and every task parked.
//! Which of the parked tasks only another task can wake, and which wait in a low-level
//! `wait_task_rescheduled` whose waker is not recorded. Asked of a snapshot (the stall
//! detector) and of a document (an incomplete report); it decides no finding itself.

use crate::model::{
    Document, EventLoop, Evidence, LoopState, Task, TaskState, TaskWait, TaskWaitKind, Thread,
};

/// A trio run every task of which is parked.
pub struct ParkedRun<'d> {
    /// Tasks parked on something only another task of the run can end, with that wait.
    pub parked: Vec<(&'d Task, &'d TaskWait)>,
    /// Tasks parked where nothing says who will reschedule them.
    pub unknown: Vec<&'d Task>,
}

/// The entry queue's own task, parked on its wakeup socket: only another thread (or a signal
/// trio turns into a wakeup) ends that wait.
fn is_entry_queue(t: &Task) -> bool {
    t.frames
        .iter()
        .any(|f| f.file.ends_with("trio/_core/_entry_queue.py"))
}

/// Waits only another task of the run can end (a sleep only by its deadline, which the
/// run's count of deadlines says is not there: `sleep_forever`).
fn parked_on_a_task(kind: TaskWaitKind) -> bool {
    matches!(
        kind,
        TaskWaitKind::Sleep
            | TaskWaitKind::Lock
            | TaskWaitKind::Semaphore
            | TaskWaitKind::Event
            | TaskWaitKind::Condition
            | TaskWaitKind::Channel
            | TaskWaitKind::Gather
    )
}

/// The run of `lp` when every one of its tasks is parked with nothing outside the run to
/// wake it (no I/O wait but the entry queue's, no deadline, no other thread running).
pub fn parked_run<'d>(
    lp: &EventLoop,
    threads: &[Thread],
    tasks: &'d [Task],
) -> Option<ParkedRun<'d>> {
    if lp.kind != "trio" || lp.state != LoopState::Polling || lp.deadlines != Some(0) {
        return None;
    }
    let others_run = threads
        .iter()
        .any(|t| t.pid == lp.pid && Some(&t.id) != lp.thread.as_ref() && !t.blocked);
    if others_run {
        return None;
    }
    let mut run = ParkedRun {
        parked: Vec::new(),
        unknown: Vec::new(),
    };
    for t in tasks.iter().filter(|t| t.loop_id == lp.id) {
        let w = t.waits_for.as_ref()?;
        if t.state != TaskState::Pending {
            return None;
        }
        if parked_on_a_task(w.kind) {
            run.parked.push((t, w));
        } else if w.kind == TaskWaitKind::Reschedule && w.evidence == Evidence::Unknown {
            run.unknown.push(t);
        } else if !(w.kind == TaskWaitKind::Io && is_entry_queue(t)) {
            return None;
        }
    }
    (!run.parked.is_empty() || !run.unknown.is_empty()).then_some(run)
}

/// One sentence when a trio run of `doc` is parked whole but some of its tasks wait where
/// nothing says who reschedules them: gridlock cannot tell whether the run is stuck.
pub fn unknown_waker_summary(doc: &Document) -> Option<String> {
    let parts: Vec<String> = doc
            .loops
            .iter()
            .filter_map(|lp| {
                let run = parked_run(lp, &doc.threads, &doc.tasks)?;
                let first = run.unknown.first()?;
                let via = first
                    .waits_for
                    .as_ref()
                    .and_then(|w| w.via.as_deref())
                    .unwrap_or("a low-level wait");
                let name = first.name.as_deref().unwrap_or("?");
                let more = match run.unknown.len() {
                    1 => String::new(),
                    n => format!(" and {} more", n - 1),
                };
                Some(format!(
                    "every task of the trio run on thread {} is parked, and task \"{name}\"{more} waits in {via}, whose waker trio does not record",
                    lp.thread.as_deref().unwrap_or("?")
                ))
            })
            .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "{}: gridlock cannot tell whether the run is stuck",
            parts.join("; ")
        )
    })
}
