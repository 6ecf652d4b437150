//! The wait-for graph as Graphviz DOT: threads as boxes, locks as ellipses, edges labelled
//! with the site and evidence; edges and nodes of findings' cycles drawn in red. The tasks'
//! part is `dot_tasks`'.

use std::io::{self, Write};

use super::dot_parts::{edge, quote, Hot};
use crate::model::*;

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
    let hot = Hot::of(doc);
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
        let color = hot.node(&t.id);
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
        let color = hot.node(&l.id);
        writeln!(
            out,
            "  {} [shape=ellipse, label={}{color}];",
            quote(&l.id),
            quote(&label)
        )?;
    }
    for t in &doc.threads {
        if let Some(w) = &t.waits_for {
            if let Some(target) = &w.target {
                let verb = match w.kind {
                    WaitKind::Join => "joins",
                    WaitKind::Notify => "waits for notify",
                    _ => "waits for",
                };
                let site = w.site.as_deref().unwrap_or_default();
                let label = format!("{verb}\n{site} [{}]", w.evidence.as_str());
                edge(&mut out, &hot, &t.id, target, &label)?;
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
                edge(&mut out, &hot, &l.id, &gone, "held by\n[pthread_owner]")?;
            }
            if let Some(th) = &h.thread {
                let site = h.site.as_deref().unwrap_or_default();
                let label = format!("held by\n{site} [{}]", h.evidence.as_str());
                edge(&mut out, &hot, &l.id, th, &label)?;
            }
        }
    }
    super::dot_tasks::render(doc, &hot, &mut out)?;
    writeln!(out, "}}")
}
