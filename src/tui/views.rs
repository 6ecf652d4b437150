//! Views: functions of (&App, Frame). They read the state and draw it; nothing here changes
//! state or does I/O, so a recorded document renders the same on a TestBackend as live.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::app::{App, Detail, SortKey, ThreadHistory, View, HISTORY_SECS};
use crate::model::*;

pub const CYCLE_STYLE: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
pub const BANNER_STYLE: Style = Style::new()
    .fg(Color::White)
    .bg(Color::Red)
    .add_modifier(Modifier::BOLD);
const DIM: Style = Style::new().fg(Color::DarkGray);
const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);
const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);

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
            (Some(Detail::Thread(id)), _) => draw_thread_detail(frame, app, doc, id, body),
            (Some(Detail::Finding(_)), _) => draw_report(frame, app, body),
            (None, View::Threads) => draw_threads(frame, app, doc, body),
            (None, View::Graph) => draw_graph(frame, app, doc, body),
            (None, View::Findings) => draw_findings(frame, app, doc, body),
            (None, View::Loops) => draw_loops(frame, app, doc, body),
            (None, View::Processes) => draw_processes(frame, app, doc, body),
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

// ---------------------------------------------------------------- threads

fn draw_threads(frame: &mut Frame, app: &App, doc: &Document, area: Rect) {
    // Narrow terminals drop WHERE (the detail view has the whole stack) so that what a
    // thread holds and waits for stays readable.
    let wide = area.width >= 120;
    let with_where = area.width >= 100;
    let name_w = if wide { 22 } else { 11 };
    let state_w = if wide { 14 } else { 9 };
    // `HOST/OWN` for threads in another PID namespace.
    let tid_w = if doc.threads.iter().any(|t| t.namespace_tid.is_some()) {
        13
    } else {
        7
    };
    let mut widths = vec![
        Constraint::Length(name_w),
        Constraint::Length(tid_w),
        Constraint::Length(state_w),
        Constraint::Length(5),
        Constraint::Fill(2),
        Constraint::Fill(3),
    ];
    if with_where {
        widths.push(Constraint::Fill(3));
    }
    widths.push(if wide {
        Constraint::Fill(4)
    } else {
        Constraint::Length(10)
    });
    let cols = Layout::horizontal(widths.clone()).spacing(1).split(area);
    let strip_w = cols[cols.len() - 1].width as usize;
    let in_cycle = cycle_threads(doc);
    let height = area.height.saturating_sub(1) as usize;
    let sel = app.selection();
    let offset = window_offset(sel, height, app.rows.len());
    let rows: Vec<Row> = app
        .rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|&i| {
            let t = &doc.threads[i];
            let name_style = if in_cycle.contains(&t.id.as_str()) {
                CYCLE_STYLE
            } else {
                Style::new()
            };
            let state = if wide {
                t.state.as_str()
            } else {
                short_state(t.state)
            };
            let mut cells = vec![
                Cell::from(qualified_name(doc, t)).style(name_style),
                Cell::from(match (t.native_id, t.namespace_tid) {
                    (Some(tid), Some(own)) => format!("{tid}/{own}"),
                    (tid, own) => tid.or(own).map(|n| n.to_string()).unwrap_or_default(),
                }),
                Cell::from(state).style(state_style(t.state, t.blocked)),
                Cell::from(App::time_in_state(doc, t).map(fmt_secs).unwrap_or_default()),
                Cell::from(holds_text(doc, t)),
                Cell::from(wait_text(doc, t)),
            ];
            if with_where {
                cells.push(Cell::from(
                    t.frames
                        .first()
                        .map(|f| format!("{}:{}", f.function, f.line))
                        .unwrap_or_default(),
                ));
            }
            cells.push(Cell::from(strip(app.history.get(&t.id), app.now, strip_w)));
            Row::new(cells)
        })
        .collect();
    let sort = |label: &str, key: SortKey| {
        if app.sort == key {
            format!("{label}▼")
        } else {
            label.to_string()
        }
    };
    let mut header = vec![
        sort("NAME", SortKey::Name),
        sort("TID", SortKey::Tid),
        sort("STATE", SortKey::State),
        sort("TIME", SortKey::TimeInState),
        "HOLDS".into(),
        "WAITS FOR".into(),
    ];
    if with_where {
        header.push("WHERE".into());
    }
    header.push(format!("LAST {}s", HISTORY_SECS as u32));
    let header = Row::new(header).style(BOLD.fg(Color::Cyan));
    let mut state = TableState::default();
    if !app.rows.is_empty() {
        state.select(Some(sel - offset));
    }
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(SELECTED);
    frame.render_stateful_widget(table, area, &mut state);
    if app.rows.is_empty() {
        let msg = if app.filter.is_empty() {
            "no Python threads".to_string()
        } else {
            format!("no thread matches \"{}\"", app.filter)
        };
        frame.render_widget(
            Paragraph::new(msg).style(DIM),
            Rect {
                y: area.y + 1,
                height: 1,
                ..area
            },
        );
    }
}

/// The first row shown so that `sel` stays on screen (no state needed: a function of the
/// selection).
fn window_offset(sel: usize, height: usize, len: usize) -> usize {
    if height == 0 || sel < height {
        0
    } else {
        (sel + 1 - height).min(len.saturating_sub(height))
    }
}

/// One glyph per time slice of the last minute, newest on the right: the state of the last
/// sample in each slice.
pub fn strip(h: Option<&ThreadHistory>, now: f64, width: usize) -> Line<'static> {
    let mut spans: Vec<Span> = Vec::with_capacity(width);
    let Some(h) = h else {
        return Line::raw("");
    };
    if width == 0 {
        return Line::raw("");
    }
    let slice = HISTORY_SECS / width as f64;
    let mut cells: Vec<Option<ThreadState>> = vec![None; width];
    for &(at, state) in &h.samples {
        let age = now - at;
        if !(0.0..HISTORY_SECS).contains(&age) {
            continue;
        }
        let i = width - 1 - ((age / slice) as usize).min(width - 1);
        // Samples come oldest first: the last one written wins.
        cells[i] = Some(state);
    }
    for c in cells {
        spans.push(match c {
            None => Span::raw(" "),
            Some(s) => {
                let (glyph, color) = glyph(s);
                Span::styled(glyph, Style::new().fg(color))
            }
        });
    }
    Line::from(spans)
}

fn glyph(s: ThreadState) -> (&'static str, Color) {
    match s {
        ThreadState::Running => ("█", Color::Green),
        ThreadState::GilWait => ("▆", Color::Yellow),
        ThreadState::LockWait
        | ThreadState::JoinWait
        | ThreadState::ConditionWait
        | ThreadState::NativeLockWait
        | ThreadState::FileLockWait => ("▃", Color::Red),
        ThreadState::InputWait => ("▁", Color::Blue),
        ThreadState::Sleep | ThreadState::IoWait | ThreadState::Syscall => ("▁", Color::Blue),
        ThreadState::Stopped | ThreadState::Unknown => ("·", Color::DarkGray),
    }
}

fn short_state(s: ThreadState) -> &'static str {
    match s {
        ThreadState::ConditionWait => "cond_wait",
        s => s.as_str(),
    }
}

fn state_style(s: ThreadState, blocked: bool) -> Style {
    match s {
        ThreadState::Running => Style::new().fg(Color::Green),
        ThreadState::GilWait => Style::new().fg(Color::Yellow),
        ThreadState::LockWait
        | ThreadState::JoinWait
        | ThreadState::ConditionWait
        | ThreadState::NativeLockWait
        | ThreadState::FileLockWait
            if blocked =>
        {
            Style::new().fg(Color::Red)
        }
        ThreadState::LockWait
        | ThreadState::JoinWait
        | ThreadState::ConditionWait
        | ThreadState::NativeLockWait
        | ThreadState::FileLockWait => Style::new().fg(Color::Magenta),
        ThreadState::Sleep
        | ThreadState::IoWait
        | ThreadState::Syscall
        | ThreadState::InputWait => Style::new().fg(Color::Blue),
        ThreadState::Stopped | ThreadState::Unknown => DIM,
    }
}

fn cycle_threads(doc: &Document) -> Vec<&str> {
    doc.findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deadlock && f.last_seen == doc.window.ended)
        .flat_map(|f| f.threads.iter().map(String::as_str))
        .collect()
}

pub fn thread_name(t: &Thread) -> String {
    t.name
        .clone()
        .unwrap_or_else(|| format!("thread {}", t.thread_id))
}

/// A thread's name, with its process when the document spans several (each has a MainThread).
fn qualified_name(doc: &Document, t: &Thread) -> String {
    if doc.processes.len() > 1 {
        format!("{}@{}", thread_name(t), t.pid)
    } else {
        thread_name(t)
    }
}

fn thread_name_by_id(doc: &Document, id: &str) -> String {
    doc.thread(id)
        .map(|t| qualified_name(doc, t))
        .unwrap_or_else(|| format!("thread {}", id.rsplit(':').next().unwrap_or(id)))
}

/// How code names a lock: the given name, else its first known name, else kind and address.
fn lock_short(doc: &Document, id: &str, name: Option<&str>) -> String {
    if let Some(n) = name {
        return n.to_string();
    }
    match doc.lock(id) {
        Some(l) => match (&l.module, l.names.first()) {
            (Some(m), _) => format!("import lock {m}"),
            (None, Some(n)) => n.name.clone(),
            (None, None) => format!("{} {}", l.kind, l.address),
        },
        None => id.rsplit(':').next().unwrap_or(id).to_string(),
    }
}

fn holds_text(doc: &Document, t: &Thread) -> String {
    t.holds
        .iter()
        .map(|h| lock_short(doc, &h.lock, h.name.as_deref()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn wait_text(doc: &Document, t: &Thread) -> String {
    let Some(w) = &t.waits_for else {
        return String::new();
    };
    // The futex of a thread waiting for the GIL is the GIL's: say so rather than its address.
    if t.state == ThreadState::GilWait && w.kind == WaitKind::UnknownFutex {
        return "GIL".into();
    }
    let timed = if w.timed { " (timeout)" } else { "" };
    match (w.kind, &w.target) {
        (WaitKind::Join, Some(th)) => format!("join {}{timed}", thread_name_by_id(doc, th)),
        (WaitKind::Notify, Some(l)) => {
            format!("notify {}{timed}", lock_short(doc, l, w.name.as_deref()))
        }
        (_, Some(l)) => {
            let holders: Vec<String> = doc
                .lock(l)
                .map(|lock| {
                    lock.holders
                        .iter()
                        .filter_map(|h| h.thread.as_deref())
                        .map(|id| thread_name_by_id(doc, id))
                        .collect()
                })
                .unwrap_or_default();
            let by = if holders.is_empty() {
                String::new()
            } else {
                format!(" ← {}", holders.join(", "))
            };
            format!("{}{by}{timed}", lock_short(doc, l, w.name.as_deref()))
        }
        _ => format!("futex {}{timed}", w.futex.as_deref().unwrap_or("?")),
    }
}

fn draw_thread_detail(frame: &mut Frame, app: &App, doc: &Document, id: &str, area: Rect) {
    let Some(t) = doc.thread(id) else {
        frame.render_widget(
            Paragraph::new("this thread has exited (Esc to go back)").style(DIM),
            area,
        );
        return;
    };
    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::from(vec![
        Span::styled(thread_name(t), BOLD),
        Span::raw(format!(
            "  {}  ident {}  ",
            t.tid_label().unwrap_or("tid ?".into()),
            t.thread_id
        )),
        Span::styled(t.state.as_str(), state_style(t.state, t.blocked)),
        Span::raw(format!(
            " for {}{}{}",
            App::time_in_state(doc, t)
                .map(fmt_secs)
                .unwrap_or("?".into()),
            if t.blocked { "  [blocked]" } else { "" },
            if t.owns_gil { "  [holds the GIL]" } else { "" },
        )),
    ]));
    if let Some(w) = &t.waits_for {
        lines.push(Line::from(vec![
            Span::raw("waits for "),
            Span::styled(wait_text(doc, t), BOLD),
            Span::styled(format!("  [{}]", w.evidence.as_str()), DIM),
            Span::raw(
                w.site
                    .as_deref()
                    .map(|s| format!("  at {s}"))
                    .unwrap_or_default(),
            ),
        ]));
    }
    for h in &t.holds {
        let addr = doc
            .lock(&h.lock)
            .map(|l| l.address.clone())
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::raw("holds "),
            Span::styled(lock_short(doc, &h.lock, h.name.as_deref()), BOLD),
            Span::raw(format!(" {addr}")),
            Span::raw(
                h.site
                    .as_deref()
                    .map(|s| format!("  taken at {s}"))
                    .unwrap_or_default(),
            ),
            Span::styled(format!("  [{}]", h.evidence.as_str()), DIM),
        ]));
    }
    if let Some(why) = &t.kernel_unmatched {
        lines.push(Line::styled(format!("kernel state unknown: {why}"), DIM));
    }
    if let Some(k) = &t.kernel {
        lines.push(Line::styled(
            format!(
                "kernel: {} {} {}",
                k.state,
                k.syscall.as_deref().unwrap_or(""),
                k.wchan.as_deref().unwrap_or("")
            ),
            DIM,
        ));
    }
    lines.push(Line::raw(""));
    let strip_w = (area.width as usize).saturating_sub(20).clamp(10, 120);
    let mut hist = vec![Span::styled("last 60 s  ", BOLD)];
    hist.extend(strip(app.history.get(&t.id), app.now, strip_w).spans);
    lines.push(Line::from(hist));
    if let Some(h) = app.history.get(&t.id) {
        let changes: Vec<String> = h
            .changes
            .iter()
            .rev()
            .take(6)
            .map(|(at, s)| format!("{} ago {}", fmt_secs(app.now - at), s.as_str()))
            .collect();
        lines.push(Line::styled(
            format!("changes: {}", changes.join(" · ")),
            DIM,
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("stack, innermost first", BOLD),
        Span::styled(
            if app.locals {
                "  (locals on: l to stop reading them)"
            } else {
                "  (l: read locals)"
            },
            DIM,
        ),
    ]));
    for f in &t.frames {
        lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(f.function.clone(), BOLD),
            Span::raw(format!(" {}:{}", short_file(&f.file), f.line)),
        ]));
        for l in f.locals.iter().flatten() {
            lines.push(Line::raw(format!("      {} = {}", l.name, l.repr)));
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.detail_scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}

// ---------------------------------------------------------------- graph

/// The wait-for graph as lines: cycles first (highlighted), then every other wait.
pub fn graph_lines(doc: &Document) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let cycles: Vec<&Finding> = doc
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Deadlock && f.last_seen == doc.window.ended)
        .collect();
    let name_of = |id: &str, name: Option<&str>| -> String {
        if doc.lock(id).is_some() || id.contains(":l:") {
            let addr = doc.lock(id).map(|l| l.address.clone()).unwrap_or_default();
            format!("{} <{}>", lock_short(doc, id, name), addr)
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
                (
                    format!("<{addr}>"),
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

pub fn graph_lines_len(doc: &Document) -> usize {
    graph_lines(doc).len()
}

fn draw_graph(frame: &mut Frame, app: &App, doc: &Document, area: Rect) {
    let lines = graph_lines(doc);
    let h = area.height as usize;
    let top = app.selection().min(lines.len().saturating_sub(h));
    let visible: Vec<Line> = lines.into_iter().skip(top).take(h).collect();
    frame.render_widget(Paragraph::new(visible), area);
}

// ---------------------------------------------------------------- findings

fn draw_findings(frame: &mut Frame, app: &App, doc: &Document, area: Rect) {
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
    let sel = app.selection();
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

fn draw_report(frame: &mut Frame, app: &App, area: Rect) {
    let lines: Vec<Line> = app
        .report
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
            .scroll((app.detail_scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}

// ---------------------------------------------------------------- loops, processes

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

fn draw_loops(frame: &mut Frame, app: &App, doc: &Document, area: Rect) {
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
    let sel = app.selection();
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
            Row::new(vec![
                short(&t.loop_id),
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

fn draw_processes(frame: &mut Frame, app: &App, doc: &Document, area: Rect) {
    let [note, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let text = if doc.processes.len() <= 1 {
        if app.tree {
            "single process (no Python child seen yet)"
        } else {
            "single process (start with --tree to follow child processes)"
        }
    } else {
        "process tree"
    };
    frame.render_widget(Paragraph::new(Line::styled(text, BOLD)), note);
    let rows: Vec<Row> = doc
        .processes
        .iter()
        .map(|p| {
            let threads: Vec<&Thread> = doc.threads.iter().filter(|t| t.pid == p.pid).collect();
            let blocked = threads.iter().filter(|t| t.blocked).count();
            let state = if p.exited {
                "exited".to_string()
            } else {
                format!("{} threads, {} blocked", threads.len(), blocked)
            };
            let depth = depth(doc, p);
            Row::new(vec![
                format!("{}{}", "  ".repeat(depth), p.pid),
                p.ppid.map(|x| x.to_string()).unwrap_or_default(),
                p.python_version.clone(),
                state,
                if p.cmdline.is_empty() {
                    p.name.clone()
                } else {
                    p.cmdline.clone()
                },
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(24),
        Constraint::Fill(1),
    ];
    let mut state = TableState::default().with_selected(Some(app.selection()));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(
                Row::new(vec!["PID", "PPID", "PYTHON", "STATE", "COMMAND"])
                    .style(BOLD.fg(Color::Cyan)),
            )
            .row_highlight_style(SELECTED),
        table,
        &mut state,
    );
}

/// How deep a process sits below the first one in the document's tree.
fn depth(doc: &Document, p: &Process) -> usize {
    let mut d = 0;
    let mut cur = p.ppid;
    while let Some(pp) = cur {
        match doc.processes.iter().find(|q| q.pid == pp) {
            Some(q) if d < 16 => {
                d += 1;
                cur = q.ppid;
            }
            _ => break,
        }
    }
    d
}

// ---------------------------------------------------------------- formatting

pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{}s", s as u64)
    } else if s < 3600.0 {
        format!("{}m{:02}s", s as u64 / 60, s as u64 % 60)
    } else {
        format!("{}h{:02}m", s as u64 / 3600, s as u64 % 3600 / 60)
    }
}

fn fmt_rate(r: f64) -> String {
    if r >= 10.0 || (r - r.round()).abs() < 0.05 {
        format!("{:.0}", r)
    } else {
        format!("{r:.1}")
    }
}

/// `HH:MM:SS` of a document timestamp.
fn clock(ts: &str) -> String {
    ts.get(11..19).unwrap_or(ts).to_string()
}
