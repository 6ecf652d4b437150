//! The wait-for graph as Graphviz DOT: threads as boxes, locks as ellipses, edges labelled
//! with the site and evidence; edges and nodes of findings' cycles drawn in red. The tasks'
//! part is `dot_tasks`'.

use std::collections::HashSet;
use std::io::{self, Write};

use crate::model::*;

/// A DOT string: a label's line breaks (`\n` in the text given) become DOT's `\n`; a
/// backslash or quote from the data stays itself.
fn quote(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// The most native frames one thread's box names.
const NATIVE_SHOWN: usize = 4;

/// A thread's native frames in one compact line, innermost first: function names only
/// (`__lll_lock_wait < pthread_mutex_lock < ffi_call …`); an unnamed one as `?(libc.so.6)`,
/// its binary's file name.
fn native_line(frames: &[NativeFrame]) -> Option<String> {
    if frames.is_empty() {
        return None;
    }
    let names: Vec<String> = frames
        .iter()
        .take(NATIVE_SHOWN)
        .map(|f| match (&f.symbol, &f.module) {
            // Only the nearest export before the address: not the function itself.
            (Some(symbol), _) if f.nearest_export => format!("near {symbol}"),
            (Some(symbol), _) => symbol.clone(),
            (None, Some(module)) => format!("?({})", module.rsplit('/').next().unwrap_or("")),
            (None, None) => "?".into(),
        })
        .collect();
    let more = if frames.len() > NATIVE_SHOWN {
        " …"
    } else {
        ""
    };
    Some(format!("native: {}{more}", names.join(" < ")))
}

pub fn render<W: Write>(doc: &Document, mut out: W) -> io::Result<()> {
    let doc = &*super::escape::document(doc);
    let hot_edges: HashSet<(&str, &str)> = doc
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deadlock)
        .flat_map(|f| f.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())))
        .collect();
    let hot_nodes: HashSet<&str> = hot_edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
    writeln!(out, "digraph waitfor {{")?;
    writeln!(out, "  rankdir=LR;")?;
    for t in &doc.threads {
        let mut label = format!(
            "{}\n{}",
            t.name.clone().unwrap_or_else(|| t.thread_id.to_string()),
            t.state.as_str()
        );
        if let Some(native) = native_line(&t.native_frames) {
            label = format!("{label}\n{native}");
        }
        let color = if hot_nodes.contains(t.id.as_str()) {
            ", color=red, penwidth=2"
        } else {
            ""
        };
        writeln!(
            out,
            "  {} [shape=box, label={}{color}];",
            quote(&t.id),
            quote(&label)
        )?;
    }
    for l in &doc.locks {
        let name = l
            .module
            .clone()
            .map(|m| format!("import {m}"))
            .or_else(|| l.display_name(None))
            .unwrap_or_default();
        let mut label = match crate::analysis::below_python::below_python_label(l) {
            Some(c) => c,
            None => format!("{}\n{} {}", name, l.kind, l.address),
        };
        if let Some(p) = super::timing::permits_label(l) {
            label = format!("{label}\n{p}");
        }
        let color = if hot_nodes.contains(l.id.as_str()) {
            ", color=red, penwidth=2"
        } else {
            ""
        };
        writeln!(
            out,
            "  {} [shape=ellipse, label={}{color}];",
            quote(&l.id),
            quote(&label)
        )?;
    }
    let edge = |from: &str, to: &str, label: String, out: &mut W| -> io::Result<()> {
        let color = if hot_edges.contains(&(from, to)) {
            ", color=red, penwidth=2"
        } else {
            ""
        };
        writeln!(
            out,
            "  {} -> {} [label={}{color}];",
            quote(from),
            quote(to),
            quote(&label)
        )
    };
    for t in &doc.threads {
        if let Some(w) = &t.waits_for {
            if let Some(target) = &w.target {
                let verb = match w.kind {
                    WaitKind::Join => "joins",
                    WaitKind::Notify => "waits for notify",
                    _ => "waits for",
                };
                edge(
                    &t.id,
                    target,
                    format!(
                        "{verb}\n{} [{}]",
                        w.site.clone().unwrap_or_default(),
                        w.evidence.as_str()
                    ),
                    &mut out,
                )?;
            }
        }
    }
    for l in &doc.locks {
        for h in &l.holders {
            // A C lock's owner that is no thread of the process: a node of its own.
            if let (None, None, Some(tid), Evidence::PthreadOwner) =
                (&h.thread, h.process, h.owner_ident, h.evidence)
            {
                let gone = crate::analysis::below_python::gone_owner_id(l.pid, tid);
                writeln!(
                    out,
                    "  {} [shape=box, style=dashed, label={}];",
                    quote(&gone),
                    quote(&format!("TID {tid} (gone)"))
                )?;
                edge(&l.id, &gone, "held by\n[pthread_owner]".into(), &mut out)?;
            }
            if let Some(th) = &h.thread {
                edge(
                    &l.id,
                    th,
                    format!(
                        "held by\n{} [{}]",
                        h.site.clone().unwrap_or_default(),
                        h.evidence.as_str()
                    ),
                    &mut out,
                )?;
            }
        }
    }
    super::dot_tasks::render(doc, &hot_edges, quote, &mut out)?;
    writeln!(out, "}}")
}
