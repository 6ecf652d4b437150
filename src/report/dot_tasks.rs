//! The tasks of the wait-for graph as DOT (asyncio, trio, Twisted, Celery): each task that
//! waits on something or holds a lock is a rounded box named by its framework and name, its
//! wait an edge to what it waits on and each lock it holds an edge to it, drawn in red where
//! a deadlock's edges are. A part of `dot`'s output; it computes nothing new.

use std::collections::HashSet;
use std::io::{self, Write};

use crate::model::*;

/// The task nodes and their edges; `hot_edges` are the deadlocks' edges (from, to).
pub(super) fn render<W: Write>(
    doc: &Document,
    hot_edges: &HashSet<(&str, &str)>,
    quote: fn(&str) -> String,
    out: &mut W,
) -> io::Result<()> {
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
    let hot = |from: &str, to: &str| {
        if hot_edges.contains(&(from, to)) {
            ", color=red, penwidth=2"
        } else {
            ""
        }
    };
    let hot_nodes: HashSet<&str> = hot_edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
    for t in &drawn {
        let name = t
            .name
            .as_deref()
            .or(t.coroutine.as_deref())
            .unwrap_or(t.id.as_str());
        let label = format!("{} task {name}\n{}", t.framework.as_str(), t.state.as_str());
        let color = if hot_nodes.contains(t.id.as_str()) {
            ", color=red, penwidth=2"
        } else {
            ""
        };
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
        edge(out, quote, &t.id, target, &label, hot(&t.id, target))?;
    }
    for (l, h, task) in held {
        if !ids.contains(task) {
            continue;
        }
        let site = h.site.as_deref().unwrap_or_default();
        let label = format!("held by\n{site} [{}]", h.evidence.as_str());
        edge(out, quote, &l.id, task, &label, hot(&l.id, task))?;
    }
    Ok(())
}

/// One labelled edge, `style` its colour attributes (empty when cold).
fn edge<W: Write>(
    out: &mut W,
    quote: fn(&str) -> String,
    from: &str,
    to: &str,
    label: &str,
    style: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "  {} -> {} [label={}{style}];",
        quote(from),
        quote(to),
        quote(label)
    )
}
