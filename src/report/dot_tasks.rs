//! The tasks of the wait-for graph as DOT (asyncio, trio, Twisted, Celery): each task that
//! waits on something or holds a lock is a rounded box named by its framework and name, its
//! wait an edge to what it waits on and each lock it holds an edge to it, drawn in red where
//! a deadlock's edges are. A part of `dot`'s output; it computes nothing new.

use std::collections::HashSet;
use std::io::{self, Write};

use super::dot_parts::{edge, quote, Hot};
use crate::model::*;

/// The task nodes and their edges, a deadlock's in red.
pub(super) fn render<W: Write>(doc: &Document, hot: &Hot, out: &mut W) -> io::Result<()> {
    let held: Vec<(&Lock, &Holder, &str)> = doc
        .locks
        .iter()
        .flat_map(|l| {
            l.holders
                .iter()
                .filter_map(move |h| h.task.as_deref().map(|t| (l, h, t)))
        })
        .collect();
    let holders: HashSet<&str> = held.iter().map(|(_, _, t)| *t).collect();
    let drawn: Vec<&Task> = doc
        .tasks
        .iter()
        .filter(|t| {
            holders.contains(t.id.as_str())
                || t.waits_for.as_ref().is_some_and(|w| w.target.is_some())
        })
        .collect();
    let ids: HashSet<&str> = drawn.iter().map(|t| t.id.as_str()).collect();
    let nodes: HashSet<&str> = doc
        .threads
        .iter()
        .map(|t| t.id.as_str())
        .chain(doc.locks.iter().map(|l| l.id.as_str()))
        .chain(ids.iter().copied())
        .collect();
    for t in &drawn {
        let name = t
            .name
            .as_deref()
            .or(t.coroutine.as_deref())
            .unwrap_or(t.id.as_str());
        let label = format!("{} task {name}\n{}", t.framework.as_str(), t.state.as_str());
        let color = hot.node(&t.id);
        writeln!(
            out,
            "  {} [shape=box, style=rounded, label={}{color}];",
            quote(&t.id),
            quote(&label)
        )?;
    }
    for t in &drawn {
        let Some(w) = &t.waits_for else { continue };
        let Some(target) = w.target.as_deref().filter(|x| nodes.contains(x)) else {
            continue;
        };
        let site = w.site.as_deref().unwrap_or_default();
        let label = format!("waits for\n{site} [{}]", w.evidence.as_str());
        edge(out, hot, &t.id, target, &label)?;
    }
    for (l, h, task) in held {
        if !ids.contains(task) {
            continue;
        }
        let site = h.site.as_deref().unwrap_or_default();
        let label = format!("held by\n{site} [{}]", h.evidence.as_str());
        edge(out, hot, &l.id, task, &label)?;
    }
    Ok(())
}
