//! Counting resources in the wait-for graph (the contract's Permits): a semaphore or a pool
//! whose every permit is held is an OR-wait over its holders; it is one only when the holders
//! found account for every permit taken, so an unknown holder never makes a knot. And how a
//! knot through such a resource is said: its permits, who holds them, where each waits.

use crate::model::*;
use crate::snapshot::Snapshot;

/// How the caller labels a thread or lock of a snapshot (the detectors' words), passed in so
/// that this file needs nothing of theirs.
pub type Label = fn(&Snapshot, &str) -> String;

/// What to do about a knot through a counting resource.
pub const KNOT_ADVICE: &str = "Every permit (or pooled item) is held by a party that waits for another one, or for something only another holder can give: do not take a second permit while holding one (pass the one you hold down to the helper), or size the resource for the nesting.";

/// Whether a lock counts permits (a semaphore or a pool).
pub fn counts_permits(lock: &Lock) -> bool {
    matches!(
        lock.kind,
        LockKind::Semaphore | LockKind::Pool | LockKind::AsyncioSemaphore | LockKind::TrioSemaphore
    )
}

/// The thread, or else the asyncio task, holding a permit.
fn party(h: &Holder) -> Option<&str> {
    h.thread.as_deref().or(h.task.as_deref())
}

/// The holders of a counting resource none of whose permits is free, when they are known
/// threads (or tasks) that account for every permit (total known): the parties a waiter
/// depends on. None when a permit is free (its waiter is being woken) or some holder is
/// unknown.
pub fn complete_holders(lock: &Lock) -> Option<Vec<&str>> {
    if !counts_permits(lock) {
        return None;
    }
    let p = lock.permits?;
    let (total, free) = (p.total?, p.free?);
    let threads: Vec<&str> = lock.holders.iter().map(party).collect::<Option<_>>()?;
    (free == 0 && total > 0 && threads.len() as u64 == total).then_some(threads)
}

/// `backend_slots: 2 of 2 permits held by "handler-0" (handle app.py:11) and "handler-1"
/// (handle app.py:11), each waiting for another at fetch_profile app.py:7`, for a knot through
/// a counting resource among `locks`.
pub fn knot_summary(
    snap: &Snapshot,
    locks: &[String],
    thread_label: Label,
    lock_label: Label,
) -> Option<String> {
    let lock = locks
        .iter()
        .filter_map(|l| snap.lock(l))
        .find(|l| complete_holders(l).is_some())?;
    let p = lock.permits?;
    let mut held: Vec<String> = lock
        .holders
        .iter()
        .filter_map(|h| {
            let t = party(h)?;
            Some(match &h.site {
                Some(site) => format!("{} ({site})", thread_label(snap, t)),
                None => thread_label(snap, t),
            })
        })
        .collect();
    held.sort();
    let waits: Vec<(String, Option<String>, bool)> = lock
        .holders
        .iter()
        .filter_map(|h| {
            let id = party(h)?;
            let (target, site) = match snap.thread(id) {
                Some(t) => {
                    let w = t.waits_for.as_ref()?;
                    (w.target.as_deref(), w.site.clone())
                }
                None => {
                    let w = snap.task(id)?.waits_for.as_ref()?;
                    (w.target.as_deref(), w.site.clone())
                }
            };
            let same = target == Some(lock.id.as_str());
            Some((thread_label(snap, id), site, same))
        })
        .collect();
    let all_same_site = !waits.is_empty()
        && waits.len() == held.len()
        && waits.iter().all(|w| w.2 && w.1 == waits[0].1);
    let tail = if all_same_site {
        let at = waits[0]
            .1
            .as_ref()
            .map(|s| format!(" at {s}"))
            .unwrap_or_default();
        if held.len() == 1 {
            format!(", waiting for another{at}")
        } else {
            format!(", each waiting for another{at}")
        }
    } else {
        let parts: Vec<String> = waits
            .iter()
            .map(|(who, site, same)| {
                let what = if *same {
                    "another permit"
                } else {
                    "a party of this knot"
                };
                match site {
                    Some(s) => format!("{who} waits for {what} at {s}"),
                    None => format!("{who} waits for {what}"),
                }
            })
            .collect();
        format!("; {}", parts.join("; "))
    };
    let unit = if lock.kind == LockKind::Pool {
        "items"
    } else {
        "permits"
    };
    Some(format!(
        "{}: {} of {} {unit} held by {}{tail}",
        lock_label(snap, &lock.id),
        p.total.unwrap_or(0) - p.free.unwrap_or(0),
        p.total.unwrap_or(0),
        join_and(&held),
    ))
}

/// ` (2 of 2 items held by "request-0" and "request-1")` for a counting resource whose
/// permits are known, for a stall's words; empty otherwise.
pub fn held_note(snap: &Snapshot, id: &str, thread_label: Label) -> String {
    let Some(lock) = snap.lock(id).filter(|l| counts_permits(l)) else {
        return String::new();
    };
    let Some(p) = lock.permits else {
        return String::new();
    };
    let unit = if lock.kind == LockKind::Pool {
        "items"
    } else {
        "permits"
    };
    let mut by: Vec<String> = lock
        .holders
        .iter()
        .filter_map(|h| h.thread.as_deref().map(|t| thread_label(snap, t)))
        .collect();
    by.sort();
    let held = match (p.total, p.free) {
        (Some(t), Some(f)) => format!("{} of {t} {unit} held", t.saturating_sub(f)),
        (None, Some(f)) => format!("{f} {unit} free"),
        _ => return String::new(),
    };
    if by.is_empty() {
        format!(" ({held}, by no thread found)")
    } else {
        format!(" ({held} by {})", join_and(&by))
    }
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
