//! The findings panel: the table of findings so far and one finding's full report (the text
//! report `gridlock dump` prints), which `app` builds when the finding is opened or a sample
//! arrives. Drawing reads the document and that report only.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::model::{Document, Severity};
use crate::tui::style::{clock, window_offset, BOLD, CYCLE_STYLE, DIM, SELECTED};

/// The text report (`gridlock dump`'s) of one finding, threads included.
pub fn report(doc: &Document, id: &str) -> Vec<String> {
    let mut one = doc.clone();
    one.findings.retain(|f| f.id == id);
    let mut out = Vec::new();
    let _ =
        crate::report::text::render(&one, &crate::report::text::Style { color: false }, &mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The findings table, row `selected` highlighted.
pub fn draw(frame: &mut Frame, doc: &Document, selected: usize, area: Rect) {
    if doc.findings.is_empty() {
        frame.render_widget(
            Paragraph::new(
                "no findings yet: no deadlock, stall, orphaned lock or lock-order inversion seen",
            )
            .style(DIM)
            .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let wide = area.width >= 120;
    let widths = [
        Constraint::Length(7),
        Constraint::Length(if wide { 20 } else { 9 }),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Fill(1),
    ];
    let height = area.height.saturating_sub(1) as usize;
    let sel = selected;
    let offset = window_offset(sel, height, doc.findings.len());
    let rows: Vec<Row> = doc
        .findings
        .iter()
        .skip(offset)
        .take(height)
        .map(|f| {
            let current = f.last_seen == doc.window.ended;
            let sev = match f.severity {
                Severity::Error => Cell::from("error").style(CYCLE_STYLE),
                Severity::Warning => Cell::from("warning").style(Style::new().fg(Color::Yellow)),
            };
            let summary = if current {
                f.summary.clone()
            } else {
                format!("(gone) {}", f.summary)
            };
            Row::new(vec![
                sev,
                Cell::from(f.kind.as_str()),
                Cell::from(clock(&f.first_seen)),
                Cell::from(clock(&f.last_seen)),
                Cell::from(f.samples.to_string()),
                Cell::from(summary),
            ])
            .style(if current { Style::new() } else { DIM })
        })
        .collect();
    let header = Row::new(vec!["SEV", "KIND", "FIRST", "LAST", "SAMPLES", "SUMMARY"])
        .style(BOLD.fg(Color::Cyan));
    let mut state = TableState::default().with_selected(Some(sel - offset));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .row_highlight_style(SELECTED),
        area,
        &mut state,
    );
}

/// An open finding's report (`report`'s lines), scrolled by `scroll` lines.
pub fn draw_report(frame: &mut Frame, report: &[String], scroll: usize, area: Rect) {
    let lines: Vec<Line> = report
        .iter()
        .map(|l| {
            let is_title = l
                .split_whitespace()
                .next()
                .is_some_and(|w| w.len() > 3 && w.chars().all(|c| c.is_ascii_uppercase()));
            if is_title && !l.starts_with(' ') && !l.starts_with("THREADS") {
                Line::styled(l.clone(), CYCLE_STYLE)
            } else {
                Line::raw(l.clone())
            }
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}
