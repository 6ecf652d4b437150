//! The processes panel: the process tree (with `--tree`) or the single process, each with
//! its threads' count, how many are blocked, and what they wait for through the kernel in
//! other processes (file locks, sockets, pipes, children). A function of the document, the selection
//! and whether the tree is followed.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::model::{Document, Process, Thread};
use crate::report::escape::escape;
use crate::report::kernel::process_kernel_waits;
use crate::tui::style::{BOLD, SELECTED};

/// The processes' table with row `selected` highlighted; `tree`: child processes are
/// followed (`--tree`).
pub fn draw(frame: &mut Frame, doc: &Document, selected: usize, tree: bool, area: Rect) {
    let [note, table] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let text = if doc.processes.len() <= 1 {
        if tree {
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
            let kernel = process_kernel_waits(doc, p.pid).join("; ");
            Row::new(vec![
                format!("{}{}", "  ".repeat(depth), p.pid),
                p.ppid.map(|x| x.to_string()).unwrap_or_default(),
                p.python_version.clone(),
                state,
                escape(&kernel).into_owned(),
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
        Constraint::Length(34),
        Constraint::Fill(1),
    ];
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(
                Row::new(vec![
                    "PID",
                    "PPID",
                    "PYTHON",
                    "STATE",
                    "KERNEL WAITS",
                    "COMMAND",
                ])
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
