//! The screen: header, tabs, the open panel (or detail) and the footer, drawn from `App`.
//! Each panel draws itself (`panels`); this file only lays them out. Nothing here changes
//! state or does I/O, so a recorded document renders the same on a TestBackend as live.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::app::{App, Detail, View};
use super::names::{thread_name, thread_name_by_id};
use super::panels::{findings, graph, loops, processes, threads};
use super::style::{fmt_rate, fmt_secs, BANNER_STYLE, BOLD, DIM, SELECTED};
use crate::model::{Finding, FindingKind, Severity};

pub fn draw(frame: &mut Frame, app: &App) {
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, app, header);
    draw_tabs(frame, app, tabs);
    match &app.doc {
        None => frame.render_widget(
            Paragraph::new(format!(
                "attaching to process {}, waiting for the first sample…",
                app.pid
            )),
            body,
        ),
        Some(doc) => match (&app.detail, app.view) {
            (Some(Detail::Thread(id)), _) => {
                let view = threads::DetailView {
                    history: &app.history,
                    now: app.now,
                    locals: app.locals,
                    scroll: app.detail_scroll,
                };
                threads::draw_detail(frame, doc, id, &view, body)
            }
            (Some(Detail::Finding(_)), _) => {
                findings::draw_report(frame, &app.report, app.detail_scroll, body)
            }
            (None, View::Threads) => {
                let view = threads::TableView {
                    rows: &app.rows,
                    selected: app.selection(),
                    sort: app.sort,
                    filter: &app.filter,
                    history: &app.history,
                    now: app.now,
                };
                threads::draw(frame, doc, &view, body)
            }
            (None, View::Graph) => graph::draw(frame, doc, app.selection(), body),
            (None, View::Findings) => findings::draw(frame, doc, app.selection(), body),
            (None, View::Loops) => loops::draw(frame, doc, app.selection(), body),
            (None, View::Processes) => processes::draw(frame, doc, app.selection(), app.tree, body),
        },
    }
    draw_footer(frame, app, footer);
    if app.help {
        draw_help(frame);
    }
}

// ---------------------------------------------------------------- header, tabs, footer

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let mut lines = Vec::new();
    let (version, cmdline) = app
        .doc
        .as_ref()
        .and_then(|d| d.processes.first())
        .map(|p| {
            (
                p.python_version.clone(),
                if p.cmdline.is_empty() {
                    p.name.clone()
                } else {
                    p.cmdline.clone()
                },
            )
        })
        .unwrap_or_default();
    lines.push(Line::from(vec![
        Span::styled(" gridlock top ", BOLD.fg(Color::Cyan)),
        Span::styled(format!("pid {} ", app.pid), BOLD),
        Span::raw(format!("CPython {version}  ")),
        Span::styled(cmdline, DIM),
    ]));

    // Narrow terminals get the same facts in fewer words, so the line fits in 80 columns.
    let narrow = area.width < 110;
    let mut stats = vec![Span::raw(" ")];
    if app.paused {
        stats.push(Span::styled("PAUSED ", BOLD.fg(Color::Yellow)));
    }
    if app.rate < app.requested_rate * 0.95 {
        let why = if narrow { "" } else { ": large target" };
        stats.push(Span::styled(
            format!(
                "{} Hz (lowered from {}{why}) ",
                fmt_rate(app.rate),
                fmt_rate(app.requested_rate)
            ),
            Style::new().fg(Color::Yellow),
        ));
    } else {
        stats.push(Span::raw(format!("{} Hz ", fmt_rate(app.rate))));
    }
    stats.push(Span::raw(format!(
        "· {} sample{} · {} ",
        app.samples,
        if app.samples == 1 { "" } else { "s" },
        fmt_secs(app.elapsed)
    )));
    let mut holder = app
        .doc
        .as_ref()
        .and_then(|d| d.threads.iter().find(|t| t.owns_gil))
        .map(thread_name)
        .unwrap_or_else(|| "none".into());
    let (held, waited) = app.gil.shares();
    if narrow {
        if holder.chars().count() > 14 {
            holder = holder.chars().take(13).collect::<String>() + "…";
        }
        stats.push(Span::raw(format!(
            "· GIL {holder} {:.0}%/{:.0}% wait ",
            held * 100.0,
            waited * 100.0
        )));
    } else {
        stats.push(Span::raw(format!(
            "· GIL {holder} (held {:.0}%, waited {:.0}%) ",
            held * 100.0,
            waited * 100.0
        )));
    }
    if let Some(cpu) = app.cpu {
        stats.push(Span::raw(if narrow {
            format!("· cpu {cpu:.1}%")
        } else {
            format!("· self {cpu:.1}% cpu")
        }));
    }
    lines.push(Line::from(stats));

    let mut status = vec![Span::raw(" ")];
    status.push(banner(app));
    if let Some(n) = app
        .doc
        .as_ref()
        .map(|d| d.unmatched_threads.len())
        .filter(|n| *n > 0)
    {
        // Some thread's state is unknown: a clean screen would not mean a healthy target.
        status.push(Span::raw(" "));
        status.push(Span::styled(
            format!(" INCOMPLETE: {n} thread(s) in unknown state (Enter on one says why) "),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    if app.exited {
        status.push(Span::raw(" "));
        status.push(Span::styled(
            " TARGET EXITED: last state shown ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
    }
    if let Some(kind) = app.new_finding {
        status.push(Span::raw(" "));
        status.push(Span::styled(
            format!(" NEW {} (3: Findings) ", kind.as_str()),
            Style::new()
                .fg(Color::Black)
                .bg(Color::Magenta)
                .add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::from(status));
    frame.render_widget(Paragraph::new(lines), area);
}

/// The most severe finding present in the newest sample, as one banner.
fn banner(app: &App) -> Span<'static> {
    let Some(doc) = &app.doc else {
        return Span::raw("");
    };
    let current: Vec<&Finding> = doc
        .findings
        .iter()
        .filter(|f| f.last_seen == doc.window.ended)
        .collect();
    let worst = current
        .iter()
        .find(|f| f.kind == FindingKind::Deadlock)
        .or_else(|| current.iter().find(|f| f.severity == Severity::Error))
        .or_else(|| current.first());
    match worst {
        Some(f) => {
            let names: Vec<String> = f
                .threads
                .iter()
                .map(|id| thread_name_by_id(doc, id))
                .collect();
            let who = if f.kind == FindingKind::Deadlock && names.len() > 1 {
                format!("{} → {}", names.join(" → "), names[0])
            } else {
                names.join(", ")
            };
            let more = if current.len() > 1 {
                format!(" (+{} more)", current.len() - 1)
            } else {
                String::new()
            };
            let style = if f.severity == Severity::Error {
                BANNER_STYLE
            } else {
                Style::new()
                    .fg(Color::Black)
                    .bg(Color::Yellow)
                    .add_modifier(Modifier::BOLD)
            };
            Span::styled(
                format!(
                    " {} {who} · {} samples{more} ",
                    f.kind.as_str().to_uppercase().replace('_', " "),
                    f.samples
                ),
                style,
            )
        }
        None => Span::styled(
            " no deadlock, stall or orphaned lock ",
            Style::new().fg(Color::Green),
        ),
    }
}

fn draw_tabs(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = vec![Span::raw(" ")];
    for (i, v) in View::ALL.iter().enumerate() {
        let count = match (v, &app.doc) {
            (View::Threads, Some(d)) => format!(" {}", d.threads.len()),
            (View::Findings, Some(d)) if !d.findings.is_empty() => format!(" {}", d.findings.len()),
            (View::Loops, Some(d)) if !d.tasks.is_empty() => format!(" {}", d.tasks.len()),
            (View::Processes, Some(d)) if d.processes.len() > 1 => {
                format!(" {}", d.processes.len())
            }
            _ => String::new(),
        };
        let style = if *v == app.view {
            SELECTED.add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        spans.push(Span::styled(
            format!(" {}:{}{count} ", i + 1, v.title()),
            style,
        ));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::new().bg(Color::Indexed(236))),
        area,
    );
}

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let line = if app.editing_filter {
        Line::from(vec![
            Span::styled(" filter: ", BOLD),
            Span::raw(format!("{}▏", app.filter)),
            Span::styled("  Enter keep · Esc clear", DIM),
        ])
    } else if let Some(m) = &app.message {
        Line::from(Span::raw(format!(" {m}")))
    } else {
        let mut spans = vec![];
        if !app.filter.is_empty() {
            spans.push(Span::styled(
                format!(" filter \"{}\" (Esc clears) ", app.filter),
                Style::new().fg(Color::Yellow),
            ));
        }
        let hint = match (&app.detail, app.view) {
            (Some(Detail::Thread(_)), _) => " Esc back · ↑↓ scroll · l locals · ? help · q quit",
            (Some(Detail::Finding(_)), _) => " Esc back · ↑↓ scroll · d save · ? help · q quit",
            _ => " Tab views · ↑↓ move · Enter detail · / filter · s sort · p pause · d save · ? help · q quit",
        };
        spans.push(Span::styled(hint, DIM));
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_help(frame: &mut Frame) {
    let keys = [
        ("Tab, Shift-Tab, 1-5", "switch view"),
        ("↑↓, j k, PgUp PgDn, g G", "move, scroll"),
        ("Enter", "open detail (thread stack, finding report)"),
        ("Esc", "back, clear the filter"),
        ("/", "filter threads (name, state, function, tid)"),
        ("s", "cycle the threads' sort order"),
        ("l", "in a thread's detail: read locals (costs more)"),
        ("p", "pause / resume sampling"),
        ("d", "save the document as JSON in the current dir"),
        ("?", "this help"),
        ("q, Ctrl-C", "quit"),
    ];
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<24}"), BOLD),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " strip: █ running ▆ GIL wait ▃ blocked ▁ idle/sleep/io",
        DIM,
    ));
    let area = frame.area();
    let w = 74.min(area.width);
    let h = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}
