//! The loops panel: per event loop what it runs now and for how long, the worst culprits of
//! `loop_block`s, and every task with its stack top and what it waits for. A function of the
//! document and the selection.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::{Document, Finding, FindingKind, Framework};
use crate::tui::style::{window_offset, BOLD, DIM, SELECTED};

/// Per loop: what it runs now and for how long; then the worst culprits of `loop_block`s.
fn loop_summary(doc: &Document) -> Vec<Line<'static>> {
    let short = |id: &str| id.rsplit(':').next().unwrap_or(id).to_string();
    let blocks: Vec<&Finding> = doc
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::LoopBlock)
        .collect();
    let mut lines = Vec::new();
    for l in &doc.loops {
        let thread = l
            .thread
            .as_deref()
            .map(|t| {
                doc.thread(t)
                    .and_then(|t| t.name.clone())
                    .unwrap_or_else(|| short(t))
            })
            .unwrap_or_default();
        let doing = match &l.step {
            Some(step) => step
                .callback
                .clone()
                .or_else(|| step.task.as_deref().map(short))
                .unwrap_or_else(|| "a step".into()),
            None => l.state.as_str().to_string(),
        };
        let ongoing = blocks
            .iter()
            .find(|f| f.loop_id.as_deref() == Some(&l.id) && f.ongoing == Some(true))
            .and_then(|f| f.duration)
            .map(|d| format!("  BLOCKED {:.0} ms so far", d * 1000.0))
            .unwrap_or_default();
        let style = if ongoing.is_empty() {
            Style::default()
        } else {
            BOLD.fg(Color::Red)
        };
        lines.push(Line::styled(
            format!(
                "loop {} on {thread}: {} {doing}  ({} tasks, {} ready){ongoing}",
                short(&l.id),
                l.state.as_str(),
                l.tasks,
                l.ready.unwrap_or(0)
            ),
            style,
        ));
    }
    // Worst culprits: total blocked time per culprit over the findings so far.
    let mut culprits: Vec<(String, usize, f64, f64)> = Vec::new();
    for f in &blocks {
        let name = f.culprit.clone().unwrap_or_else(|| "?".into());
        let (count, total, max) = match &f.histogram {
            Some(h) => (h.count, h.total, h.max),
            None => (1, f.duration.unwrap_or(0.0), f.duration.unwrap_or(0.0)),
        };
        match culprits.iter_mut().find(|c| c.0 == name) {
            Some(c) => {
                c.1 += count;
                c.2 += total;
                c.3 = c.3.max(max);
            }
            None => culprits.push((name, count, total, max)),
        }
    }
    culprits.sort_by(|a, b| b.2.total_cmp(&a.2));
    for (name, count, total, max) in culprits.into_iter().take(3) {
        lines.push(Line::styled(
            format!(
                "  culprit {name}: {count} block(s), {:.0} ms in all, longest {:.0} ms",
                total * 1000.0,
                max * 1000.0
            ),
            DIM,
        ));
    }
    lines
}

/// The loops' summary, then the tasks' table with row `selected` highlighted.
pub fn draw(frame: &mut Frame, doc: &Document, selected: usize, area: Rect) {
    let summary = loop_summary(doc);
    let area = if summary.is_empty() {
        area
    } else {
        let height = (summary.len() as u16 + 1).min(area.height / 2);
        let [top, rest] =
            Layout::vertical([Constraint::Length(height), Constraint::Fill(1)]).areas(area);
        frame.render_widget(Paragraph::new(summary), top);
        rest
    };
    if doc.tasks.is_empty() && doc.loops.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::styled("no asyncio loops seen", BOLD),
                Line::styled(
                    "tasks appear here, per loop, when the document has them",
                    DIM,
                ),
            ]),
            area,
        );
        return;
    }
    let height = area.height.saturating_sub(1) as usize;
    let sel = selected;
    let offset = window_offset(sel, height, doc.tasks.len());
    let short = |id: &str| id.rsplit(':').next().unwrap_or(id).to_string();
    let rows: Vec<Row> = doc
        .tasks
        .iter()
        .skip(offset)
        .take(height)
        .map(|t| {
            let top = t
                .frames
                .first()
                .map(|f| format!("{}:{}", f.function, f.line))
                .unwrap_or_default();
            let waits = t
                .waits_for
                .as_ref()
                .map(|w| {
                    let what = w.name.clone().or_else(|| w.target.as_deref().map(short));
                    match what {
                        Some(what) => format!("{} {what}", w.kind),
                        None => w.kind.to_string(),
                    }
                })
                .unwrap_or_default();
            // Another framework's loop says whose it is (`twisted 0x7f..`, `celery`).
            let lp = match (t.framework, short(&t.loop_id)) {
                (Framework::Asyncio, lp) => lp,
                (f, lp) if lp == f.as_str() => lp,
                (f, lp) => format!("{} {lp}", f.as_str()),
            };
            Row::new(vec![
                lp,
                t.name.clone().unwrap_or_default(),
                t.state.as_str().to_string(),
                t.coroutine.clone().unwrap_or_default(),
                top,
                waits,
            ])
        })
        .collect();
    let widths = [
        Constraint::Fill(1),
        Constraint::Fill(2),
        Constraint::Length(10),
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Fill(2),
    ];
    let mut state = TableState::default().with_selected(Some(sel - offset));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(
                Row::new(vec![
                    "LOOP",
                    "TASK",
                    "STATE",
                    "COROUTINE",
                    "WHERE",
                    "WAITS FOR",
                ])
                .style(BOLD.fg(Color::Cyan)),
            )
            .row_highlight_style(SELECTED),
        area,
        &mut state,
    );
}
