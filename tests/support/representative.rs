//! A representative set of interpreters for tests whose behaviour does not change with every
//! minor version: one pyenv 3.8-3.10, one pyenv 3.11-3.12, and the Debian root's 3.14. A
//! missing one is skipped with a printed note.

use super::{interpreters, Interpreter};

pub fn interpreters_to_test() -> Vec<Interpreter> {
    let all = interpreters();
    let mut picked = Vec::new();
    let wanted: [(&str, &dyn Fn(&Interpreter) -> bool); 3] = [
        ("a pyenv CPython 3.8-3.10", &|i| {
            i.root.is_none() && (8..=10).contains(&i.minor)
        }),
        ("a pyenv CPython 3.11-3.12", &|i| {
            i.root.is_none() && (11..=12).contains(&i.minor)
        }),
        ("the Debian root's python3.14", &|i| {
            i.root.is_some() && i.minor == 14
        }),
    ];
    for (what, fits) in wanted {
        match all.iter().find(|i| fits(i)) {
            Some(i) => picked.push(i.clone()),
            None => eprintln!("note: no {what} found: skipped"),
        }
    }
    assert!(!picked.is_empty(), "no interpreter to test");
    picked
}
