//! What a lock cycle's advice says: which thread (or asyncio task) took which lock first, by
//! the program's names, and where that order came from (one function called with its
//! arguments swapped, spelled with the parameters its code object names, and who chose them;
//! or two functions that nest the locks oppositely, each site as its call). It only reads a
//! finding's edges and the snapshot's stacks; it decides nothing about the cycle itself.

use std::collections::HashMap;

use super::labels::thread_label;
use crate::model::{short_file, Edge, EdgeVia, Frame};
use crate::snapshot::Snapshot;

/// Who the cycle's parties are, and so what chose a function's arguments when nothing else
/// is on their stacks.
#[derive(Clone, Copy, PartialEq)]
enum Parties {
    Threads,
    Tasks,
}

impl Parties {
    fn chooser(self) -> &'static str {
        match self {
            Parties::Threads => "Thread(target=..., args=...)",
            Parties::Tasks => "create_task(...) call",
        }
    }
}

/// A thread's or a task's frames, innermost first.
fn frames<'s>(snap: &'s Snapshot, id: &str) -> &'s [Frame] {
    snap.thread(id)
        .map(|t| &t.frames[..])
        .or_else(|| snap.task(id).map(|t| &t.frames[..]))
        .unwrap_or(&[])
}

/// One thread's part of the cycle: the lock it holds, where it took it, the lock it waits
/// for, where it waits.
struct Part {
    thread: String,
    first: String,
    first_site: Option<String>,
    then: String,
    then_site: Option<String>,
}

/// The advice for a cycle of threads over locks (edges alternate `waits_for`, `held_by`);
/// `None` when the edges do not give every thread both ends, or a first lock was taken at no
/// known site.
pub fn lock_cycle_advice(snap: &Snapshot, threads: &[String], edges: &[Edge]) -> Option<String> {
    let label = |t: &str| thread_label(snap, t);
    cycle_advice(snap, threads, edges, Parties::Threads, &label)
}

/// The same for a cycle of asyncio tasks over asyncio locks, each task named by `label`.
pub fn task_cycle_advice(
    snap: &Snapshot,
    tasks: &[String],
    edges: &[Edge],
    label: &dyn Fn(&str) -> String,
) -> Option<String> {
    cycle_advice(snap, tasks, edges, Parties::Tasks, label)
}

fn cycle_advice(
    snap: &Snapshot,
    threads: &[String],
    edges: &[Edge],
    parties: Parties,
    label: &dyn Fn(&str) -> String,
) -> Option<String> {
    let mut holds: HashMap<&str, (&Edge, &str)> = HashMap::new();
    let mut waits: HashMap<&str, &Edge> = HashMap::new();
    for e in edges {
        match e.via {
            EdgeVia::WaitsFor => {
                waits.insert(e.from.as_str(), e);
            }
            EdgeVia::HeldBy => {
                holds.insert(e.to.as_str(), (e, e.from.as_str()));
            }
            _ => {}
        }
    }
    let parts: Vec<Part> = threads
        .iter()
        .map(|t| {
            let (held, lock) = holds.get(t.as_str())?;
            let wait = waits.get(t.as_str())?;
            Some(Part {
                thread: label(t),
                first: lock_name(snap, lock, held.name.as_deref()),
                first_site: held.site.clone(),
                then: lock_name(snap, &wait.to, wait.name.as_deref()),
                then_site: wait.site.clone(),
            })
        })
        .collect::<Option<_>>()?;
    // An order is only advice where each party's first lock was seen taken somewhere (trio
    // records no site for a held lock): otherwise the caller's general advice stands.
    if parts.len() < 2 || parts.iter().any(|p| p.first_site.is_none()) {
        return None;
    }
    let same_function = parts
        .iter()
        .all(|p| function(&p.first_site) == function(&parts[0].first_site))
        && parts
            .iter()
            .all(|p| function(&p.then_site) == function(&p.first_site))
        && function(&parts[0].first_site).is_some();
    let orders: Vec<String> = parts
        .iter()
        .zip(threads)
        .map(|(p, t)| {
            if same_function {
                format!("{} takes {} then {}", p.thread, p.first, p.then)
            } else {
                format!(
                    "{} takes {} (at {}) then {} (at {})",
                    p.thread,
                    p.first,
                    called(snap, t, &p.first_site),
                    p.then,
                    called(snap, t, &p.then_site)
                )
            }
        })
        .collect();
    if !same_function {
        return Some(format!(
            "{}: take these locks in one order in every place that nests them.",
            orders.join("; ")
        ));
    }
    let orders = orders.join(", ");
    let f = function(&parts[0].first_site).unwrap_or("?");
    let signature = threads
        .iter()
        .find_map(|t| signature(snap, t, f))
        .unwrap_or_else(|| f.to_string());
    let file_lines = lines(&parts);
    let callers: Vec<Option<String>> = threads.iter().map(|t| caller(snap, t, f)).collect();
    let chooser = parties.chooser();
    let chosen = if callers.iter().all(Option::is_none) {
        let each = match parties {
            Parties::Threads => "thread",
            Parties::Tasks => "task",
        };
        format!("each {each}'s {chooser} chose them")
    } else {
        parts
            .iter()
            .zip(&callers)
            .map(|(p, c)| match c {
                Some(site) => format!("{} called it from {site}", p.thread),
                None => format!("{}'s {chooser}", p.thread),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all = if parts.len() == 2 { "both" } else { "all" };
    Some(format!(
        "{orders}, {all} in {signature} {file_lines}, which takes the locks in the order of its arguments ({chosen}); choose one order (for example by id() or by a key of what the locks protect) before taking them."
    ))
}

/// A lock's program-wide name, else the name at this edge with its address (two locals of
/// one function name different locks).
fn lock_name(snap: &Snapshot, id: &str, local: Option<&str>) -> String {
    match snap.lock(id) {
        Some(l) => match (&l.name, local) {
            (Some(n), _) => n.clone(),
            (None, Some(local)) => format!("{local} ({})", l.address),
            (None, None) => format!("{} {}", l.kind, l.address),
        },
        None => local.unwrap_or(id).to_string(),
    }
}

/// `file.py:12-14`: the lines of the function's sites.
fn lines(parts: &[Part]) -> String {
    let mut file = None;
    let mut nums: Vec<u32> = Vec::new();
    for s in parts
        .iter()
        .flat_map(|p| [&p.first_site, &p.then_site])
        .flatten()
    {
        if let Some((f, n)) = s.split(' ').nth(1).and_then(|fl| fl.rsplit_once(':')) {
            file = Some(f.to_string());
            nums.extend(n.parse::<u32>().ok());
        }
    }
    match (file, nums.iter().min(), nums.iter().max()) {
        (Some(f), Some(a), Some(b)) if a != b => format!("{f}:{a}-{b}"),
        (Some(f), Some(a), _) => format!("{f}:{a}"),
        _ => String::new(),
    }
}

/// Where a thread's call of `function` came from: the frame below its outermost frame of
/// `function` (outside `threading`); `None` when the thread's `Thread(target=...,
/// args=...)` called it.
fn caller(snap: &Snapshot, thread: &str, function: &str) -> Option<String> {
    let frames = frames(snap, thread);
    let outermost = frames.iter().rposition(|f| f.function == function)?;
    frames
        .get(outermost + 1)
        .filter(|f| short_file(&f.file) != "threading.py")
        .map(Frame::site)
}

/// The function of a site (`transfer` of `transfer bank.py:12`).
fn function(site: &Option<String>) -> Option<&str> {
    site.as_deref().and_then(|s| s.split(' ').next())
}

/// `transfer(src, dst)`: the function as its `def` names its parameters, read from the code
/// object of the thread's frame of that function; `None` when no frame of it, or not its
/// parameters, is known.
fn signature(snap: &Snapshot, thread: &str, function: &str) -> Option<String> {
    let frame = frames(snap, thread)
        .iter()
        .find(|f| f.function == function)?;
    Some(format!(
        "{function}({})",
        frame.parameters.as_ref()?.join(", ")
    ))
}

/// A site as the call it is in: `InventoryService.restock(self) lock_names.py:75`.
fn called(snap: &Snapshot, thread: &str, site: &Option<String>) -> String {
    let Some(site) = site else {
        return "an unknown site".into();
    };
    match site.split_once(' ') {
        Some((f, rest)) => match signature(snap, thread, f) {
            Some(sig) => format!("{sig} {rest}"),
            None => site.clone(),
        },
        None => site.clone(),
    }
}
