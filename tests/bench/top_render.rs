//! Per-frame render time of `gridlock top` for a 300-thread document (a real dump of
//! deadlock_300.py), each view, at 80x24 and 200x60, on ratatui's TestBackend. Prints
//! numbers; asserts nothing (they depend on the machine).
//!
//!     cargo bench --bench top_render

use std::time::Instant;

use crossterm::event::{Event as Input, KeyCode, KeyEvent, KeyModifiers};
use gridlock::tui::{views, App, Event};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/documents/threads_300.json"
    );
    let doc = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut app = App::from_document(doc);
    let frames = 200;
    println!("per-frame render time, 300-thread document, {frames} frames each (median / p99)");
    for key in ['1', '2', '3', '4', '5'] {
        app.update(Event::Input(Input::Key(KeyEvent::new(
            KeyCode::Char(key),
            KeyModifiers::NONE,
        ))));
        for (w, h) in [(80u16, 24u16), (200, 60)] {
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            let mut times: Vec<f64> = (0..frames)
                .map(|_| {
                    let t = Instant::now();
                    term.draw(|f| views::draw(f, &app)).unwrap();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "  {:<10} {w:>3}x{h:<3} {:>7.3} ms / {:>7.3} ms",
                app.view.title(),
                times[frames / 2],
                times[frames * 99 / 100]
            );
        }
    }
}
