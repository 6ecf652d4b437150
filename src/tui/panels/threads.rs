//! The threads panel: its state (rows filtered and sorted, each thread's state history over
//! the last minute), updated by `app` from each sample and key, and the table and a thread's
//! detail drawn from it. Drawing reads the state; nothing here changes it while drawing.

use std::collections::{HashMap, HashSet, VecDeque};

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::model::{percent, short_file, Document, FindingKind, NativeSource, Thread, ThreadState};
use crate::tui::names::{holds_text, lock_long, qualified_name, thread_name, wait_text};
use crate::tui::style::{fmt_secs, window_offset, BOLD, CYCLE_STYLE, DIM, SELECTED};

/// How much history the state strips and GIL shares cover.
pub const HISTORY_SECS: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Blocked holders first, then blocked, then waiting, then the rest (as the text report).
    Interest,
    Name,
    Tid,
    State,
    /// Longest in its state first.
    TimeInState,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Interest => "interest",
            SortKey::Name => "name",
            SortKey::Tid => "tid",
            SortKey::State => "state",
            SortKey::TimeInState => "time in state",
        }
    }
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Interest => SortKey::Name,
            SortKey::Name => SortKey::Tid,
            SortKey::Tid => SortKey::State,
            SortKey::State => SortKey::TimeInState,
            SortKey::TimeInState => SortKey::Interest,
        }
    }
}

/// A thread's states over the last minute, one entry per sample, and its state changes.
#[derive(Debug, Default, Clone)]
pub struct ThreadHistory {
    pub samples: VecDeque<(f64, ThreadState)>,
    pub changes: VecDeque<(f64, ThreadState)>,
}

/// What the table draws from, borrowed from the app's state.
pub struct TableView<'a> {
    /// Indexes into `doc.threads`, filtered and sorted.
    pub rows: &'a [usize],
    pub selected: usize,
    pub sort: SortKey,
    pub filter: &'a str,
    pub history: &'a HashMap<String, ThreadHistory>,
    /// When the newest sample was taken, seconds since attaching.
    pub now: f64,
}

/// What a thread's detail draws from.
pub struct DetailView<'a> {
    pub history: &'a HashMap<String, ThreadHistory>,
    pub now: f64,
    pub locals: bool,
    pub scroll: usize,
}

// ---------------------------------------------------------------- state

/// Add a sample's thread states to their histories (the last `HISTORY_SECS`, the last 50
/// changes); threads gone from the sample lose theirs.
pub fn record(history: &mut HashMap<String, ThreadHistory>, doc: &Document, at: f64) {
    let horizon = at - HISTORY_SECS;
    for t in &doc.threads {
        let h = history.entry(t.id.clone()).or_default();
        if h.changes.back().map(|c| c.1) != Some(t.state) {
            h.changes.push_back((at, t.state));
            if h.changes.len() > 50 {
                h.changes.pop_front();
            }
        }
        h.samples.push_back((at, t.state));
        while h.samples.front().is_some_and(|s| s.0 < horizon) {
            h.samples.pop_front();
        }
    }
    let live: HashSet<&str> = doc.threads.iter().map(|t| t.id.as_str()).collect();
    history.retain(|id, _| live.contains(id.as_str()));
}

/// The rows of the table: indexes into `doc.threads` matching `filter`, in `sort` order.
pub fn rows(doc: &Document, filter: &str, sort: SortKey) -> Vec<usize> {
    let needle = filter.to_lowercase();
    let mut rows: Vec<usize> = (0..doc.threads.len())
        .filter(|&i| needle.is_empty() || thread_matches(&doc.threads[i], &needle))
        .collect();
    let name = |t: &Thread| t.name.clone().unwrap_or_default();
    match sort {
        SortKey::Interest => rows.sort_by_key(|&i| (interest(&doc.threads[i]), i)),
        SortKey::Name => rows.sort_by_key(|&i| (name(&doc.threads[i]), i)),
        SortKey::Tid => rows.sort_by_key(|&i| (doc.threads[i].native_id, i)),
        SortKey::State => rows.sort_by_key(|&i| (doc.threads[i].state, i)),
        SortKey::TimeInState => {
            let t: Vec<f64> = doc
                .threads
                .iter()
                .map(|t| time_in_state(doc, t).unwrap_or(0.0))
                .collect();
            rows.sort_by(|&a, &b| t[b].total_cmp(&t[a]).then(a.cmp(&b)))
        }
    }
    rows
}

/// Seconds a thread has been in its current state, from the document's timestamps.
pub fn time_in_state(doc: &Document, t: &Thread) -> Option<f64> {
    Some(parse_timestamp(&doc.window.ended)? - parse_timestamp(&t.state_since)?)
}

fn thread_matches(t: &Thread, needle: &str) -> bool {
    t.name
        .as_deref()
        .is_some_and(|n| n.to_lowercase().contains(needle))
        || t.state.as_str().contains(needle)
        || t.native_id.is_some_and(|id| id.to_string() == needle)
        || t.namespace_tid.is_some_and(|id| id.to_string() == needle)
        || t.frames
            .first()
            .is_some_and(|f| f.function.to_lowercase().contains(needle))
}

/// As the text report orders threads: blocked holders, blocked, waiting, the rest.
fn interest(t: &Thread) -> u8 {
    match (t.blocked, t.waits_for.is_some(), t.holds.is_empty()) {
        (true, _, false) => 0,
        (true, _, true) => 1,
        (false, true, _) => 2,
        _ => match t.state {
            ThreadState::Running | ThreadState::GilWait => 3,
            _ => 4,
        },
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp as the document writes them
/// (`2026-11-18T10:26:40.123Z`).
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from civil (the inverse of analysis::timestamp's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86400 + h * 3600 + min * 60) as f64 + sec)
}

// ---------------------------------------------------------------- drawing

/// The threads table.
pub fn draw(frame: &mut Frame, doc: &Document, view: &TableView, area: Rect) {
    // Narrow terminals drop WHERE (the detail view has the whole stack) so that what a
    // thread holds and waits for stays readable.
    let wide = area.width >= 120;
    let with_where = area.width >= 100;
    // Each thread's share of samples holding the GIL, when the stream has seen it used.
    let gil = doc.gil.as_ref().filter(|_| wide);
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
    ];
    if gil.is_some() {
        widths.push(Constraint::Length(4));
    }
    widths.extend([Constraint::Fill(2), Constraint::Fill(3)]);
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
    let sel = view.selected;
    let offset = window_offset(sel, height, view.rows.len());
    let rows: Vec<Row> = view
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
                Cell::from(time_in_state(doc, t).map(fmt_secs).unwrap_or_default()),
            ];
            if let Some(g) = gil {
                cells.push(Cell::from(
                    g.thread(&t.id)
                        .filter(|u| u.held > 0)
                        .map(|u| percent(u.share))
                        .unwrap_or_default(),
                ));
            }
            cells.extend([
                Cell::from(holds_text(doc, t)),
                Cell::from(wait_text(doc, t)),
            ]);
            if with_where {
                cells.push(Cell::from(
                    t.frames
                        .first()
                        .map(|f| format!("{}:{}", f.function, f.line))
                        .unwrap_or_default(),
                ));
            }
            cells.push(Cell::from(strip(
                view.history.get(&t.id),
                view.now,
                strip_w,
            )));
            Row::new(cells)
        })
        .collect();
    let sort = |label: &str, key: SortKey| {
        if view.sort == key {
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
    ];
    if gil.is_some() {
        header.push("GIL".into());
    }
    header.extend(["HOLDS".into(), "WAITS FOR".into()]);
    if with_where {
        header.push("WHERE".into());
    }
    header.push(format!("LAST {}s", HISTORY_SECS as u32));
    let header = Row::new(header).style(BOLD.fg(Color::Cyan));
    let mut state = TableState::default();
    if !view.rows.is_empty() {
        state.select(Some(sel - offset));
    }
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(SELECTED);
    frame.render_stateful_widget(table, area, &mut state);
    if view.rows.is_empty() {
        let msg = if view.filter.is_empty() {
            "no Python threads".to_string()
        } else {
            format!("no thread matches \"{}\"", view.filter)
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

/// One thread's detail: state, waits and holds, history, stack (with locals when read).
pub fn draw_detail(frame: &mut Frame, doc: &Document, id: &str, view: &DetailView, area: Rect) {
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
            time_in_state(doc, t).map(fmt_secs).unwrap_or("?".into()),
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
            Span::styled(lock_long(doc, &h.lock, h.name.as_deref()), BOLD),
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
    if let Some(g) = doc.gil.as_ref().and_then(|g| g.thread(&t.id)) {
        lines.push(Line::from(vec![
            Span::styled("GIL ", BOLD),
            Span::raw(g.summary()),
        ]));
    }
    if !t.native_frames.is_empty() {
        let from = match t.native_frames_from {
            Some(NativeSource::PtraceStop) => " (ptrace stop)",
            _ => "",
        };
        lines.push(Line::styled(
            format!("native frames{from}, innermost first"),
            BOLD,
        ));
        for f in t.native_frames.iter().take(16) {
            lines.push(Line::raw(format!("  {}", f.label())));
        }
        if t.native_frames.len() > 16 {
            lines.push(Line::styled(
                format!("  … {} more", t.native_frames.len() - 16),
                DIM,
            ));
        }
    }
    lines.push(Line::raw(""));
    let strip_w = (area.width as usize).saturating_sub(20).clamp(10, 120);
    let mut hist = vec![Span::styled("last 60 s  ", BOLD)];
    hist.extend(strip(view.history.get(&t.id), view.now, strip_w).spans);
    lines.push(Line::from(hist));
    if let Some(h) = view.history.get(&t.id) {
        let changes: Vec<String> = h
            .changes
            .iter()
            .rev()
            .take(6)
            .map(|(at, s)| format!("{} ago {}", fmt_secs(view.now - at), s.as_str()))
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
            if view.locals {
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
            .scroll((view.scroll.min(u16::MAX as usize) as u16, 0)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_the_documents_timestamps() {
        let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let s = crate::analysis::timestamp(t);
        assert!((parse_timestamp(&s).unwrap() - 1_795_000_000.123).abs() < 1e-6);
        assert_eq!(parse_timestamp("1970-01-01T00:00:00.000Z"), Some(0.0));
        assert_eq!(parse_timestamp("garbage"), None);
    }
}
