//! The graph panel: the wait-for graph as lines (cycles first, highlighted, then every other
//! wait), how many there are (the app's selection is bounded by it) and a scrolled draw. A
//! function of the document and the selection; it keeps no state of its own.

use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::model::{Document, EdgeVia, Finding, FindingKind, WaitKind};
use crate::tui::names::{lock_long, thread_name, thread_name_by_id};
use crate::tui::style::{BOLD, CYCLE_STYLE, DIM};

/// The wait-for graph as lines: cycles first (highlighted), then every other wait.
pub fn lines(doc: &Document) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let cycles: Vec<&Finding> = doc
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deadlock && f.last_seen == doc.window.ended)
        .collect();
    let name_of = |id: &str, name: Option<&str>| -> String {
        if doc.lock(id).is_some() || id.contains(":l:") {
            let addr = doc.lock(id).map(|l| l.address.clone()).unwrap_or_default();
            format!("{} <{}>", lock_long(doc, id, name), addr)
        } else {
            thread_name_by_id(doc, id)
        }
    };
    let mut in_cycle_waits: Vec<&str> = Vec::new();
    for f in &cycles {
        let names: Vec<String> = f
            .threads
            .iter()
            .map(|t| thread_name_by_id(doc, t))
            .collect();
        lines.push(Line::styled(
            format!(
                "CYCLE ({}): {} → {}",
                f.kind.as_str(),
                names.join(" → "),
                names.first().cloned().unwrap_or_default()
            ),
            CYCLE_STYLE,
        ));
        for e in &f.edges {
            if e.via == EdgeVia::WaitsFor || e.via == EdgeVia::Joins {
                in_cycle_waits.push(e.from.as_str());
            }
            // An arrow label, not a sentence: "held by" rather than "is held by".
            let verb = match e.via {
                EdgeVia::HeldBy => "held by",
                via => via.verb(),
            };
            // A lock is named as the waiter names it; its holder's own name for it follows.
            let (from, to) = if e.via == EdgeVia::HeldBy {
                let addr = doc
                    .lock(&e.from)
                    .map(|l| l.address.clone())
                    .unwrap_or_default();
                let alias = e
                    .name
                    .as_deref()
                    .map(|n| format!(" as {n}"))
                    .unwrap_or_default();
                // Led by the program-wide name where one was read.
                let program = doc.lock(&e.from).and_then(|l| l.name.as_deref());
                (
                    match program {
                        Some(n) => format!("{n} <{addr}>"),
                        None => format!("<{addr}>"),
                    },
                    format!("{}{alias}", name_of(&e.to, None)),
                )
            } else {
                (name_of(&e.from, None), name_of(&e.to, e.name.as_deref()))
            };
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(from, BOLD),
                Span::styled(format!(" ══{verb}══▶ "), CYCLE_STYLE),
                Span::styled(to, BOLD),
            ]));
            lines.push(Line::from(vec![
                Span::raw("      "),
                Span::styled(format!("[{}]", e.evidence.as_str()), DIM),
                Span::raw(
                    e.site
                        .as_deref()
                        .map(|s| format!(" at {s}"))
                        .unwrap_or_default(),
                ),
            ]));
        }
        lines.push(Line::raw(""));
    }
    let mut others = Vec::new();
    for t in &doc.threads {
        let Some(w) = &t.waits_for else { continue };
        let Some(target) = &w.target else { continue };
        if in_cycle_waits.contains(&t.id.as_str()) {
            continue;
        }
        let verb = match w.kind {
            WaitKind::Join => "joins",
            WaitKind::Notify => "waits for notify on",
            _ => "waits for",
        };
        let mut spans = vec![
            Span::raw("  "),
            Span::styled(thread_name(t), BOLD),
            Span::raw(format!(" ──{verb}──▶ ")),
            Span::raw(name_of(target, w.name.as_deref())),
        ];
        if let Some(lock) = doc.lock(target) {
            for h in &lock.holders {
                spans.push(Span::raw(" ──held by──▶ "));
                spans.push(Span::styled(
                    h.thread
                        .as_deref()
                        .map(|id| thread_name_by_id(doc, id))
                        .unwrap_or_else(|| "no live thread".into()),
                    BOLD,
                ));
            }
        }
        let style = if w.timed { DIM } else { Style::new() };
        others.push(Line::from(spans).style(style));
        others.push(Line::from(vec![
            Span::raw("      "),
            Span::styled(
                format!(
                    "[{}]{}",
                    w.evidence.as_str(),
                    if w.timed { " with timeout" } else { "" }
                ),
                DIM,
            ),
            Span::raw(
                w.site
                    .as_deref()
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default(),
            ),
        ]));
    }
    if !others.is_empty() {
        lines.push(Line::styled(
            format!("OTHER WAITS ({})", others.len() / 2),
            BOLD.fg(Color::Cyan),
        ));
        lines.extend(others);
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            "no thread waits on a lock or thread: the wait-for graph is empty",
            DIM,
        ));
    }
    lines
}

pub fn lines_len(doc: &Document) -> usize {
    lines(doc).len()
}

/// The graph, scrolled so that line `selected` is on screen.
pub fn draw(frame: &mut Frame, doc: &Document, selected: usize, area: Rect) {
    let lines = lines(doc);
    let h = area.height as usize;
    let top = selected.min(lines.len().saturating_sub(h));
    let visible: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    frame.render_widget(Paragraph::new(visible), area);
}
