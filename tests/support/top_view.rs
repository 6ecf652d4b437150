//! `gridlock top`'s views of a real document, rendered in memory (ratatui's TestBackend), so
//! a test asserts what `top` shows for a target it already dumped without a terminal.

use crossterm::event::{Event as Input, KeyCode, KeyEvent, KeyModifiers};
use gridlock::tui::{views, App, Event};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// The screen of `top` on `doc` (a `dump --json` document) after pressing `key` (`'4'`: the
/// loops and tasks view), at 200x60, one string per row joined by newlines.
pub fn render(doc: &serde_json::Value, key: char) -> String {
    let doc: gridlock::model::Document =
        serde_json::from_value(doc.clone()).expect("a dump --json document");
    let mut app = App::from_document(doc);
    app.update(Event::Input(Input::Key(KeyEvent::new(
        KeyCode::Char(key),
        KeyModifiers::NONE,
    ))));
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    term.draw(|f| views::draw(f, &app)).unwrap();
    let buf = term.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
