//! The dashboard's look shared by every panel: styles, how durations, rates and clock times
//! are written, and which rows a scrolled table shows. Pure functions: no state, no I/O.

use ratatui::style::{Color, Modifier, Style};

pub const CYCLE_STYLE: Style = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
pub const BANNER_STYLE: Style = Style::new()
    .fg(Color::White)
    .bg(Color::Red)
    .add_modifier(Modifier::BOLD);
pub const DIM: Style = Style::new().fg(Color::DarkGray);
pub const BOLD: Style = Style::new().add_modifier(Modifier::BOLD);
pub const SELECTED: Style = Style::new().add_modifier(Modifier::REVERSED);

/// The first row shown so that `sel` stays on screen (no state needed: a function of the
/// selection).
pub fn window_offset(sel: usize, height: usize, len: usize) -> usize {
    if height == 0 || sel < height {
        0
    } else {
        (sel + 1 - height).min(len.saturating_sub(height))
    }
}

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

pub fn fmt_rate(r: f64) -> String {
    if r >= 10.0 || (r - r.round()).abs() < 0.05 {
        format!("{:.0}", r)
    } else {
        format!("{r:.1}")
    }
}

/// `HH:MM:SS` of a document timestamp.
pub fn clock(ts: &str) -> String {
    ts.get(11..19).unwrap_or(ts).to_string()
}
