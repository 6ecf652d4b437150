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

/// Runs `check` on each interpreter of `interpreters_to_test`, going on past a failing one, and
/// fails at the end naming every interpreter that failed and why.
#[allow(dead_code)]
pub fn for_each_representative(check: impl Fn(&Interpreter)) {
    for_each_of(interpreters_to_test(), check)
}

/// Runs `check` on each of `interps`, going on past a failing one, and fails at the end naming
/// every interpreter that failed and why.
#[allow(dead_code)]
pub fn for_each_of(interps: Vec<Interpreter>, mut check: impl FnMut(&Interpreter)) {
    let mut failures = Vec::new();
    for interp in interps {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&interp)));
        if let Err(e) = run {
            let msg = super::panic_message(&*e);
            failures.push(format!("{}: {msg}", interp.label));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// One pyenv CPython 3.9-3.10 and one 3.11-3.13 on which `import` succeeds (a library the test
/// set-up installed from PyPI), each missing one skipped with a note naming `what`.
#[allow(dead_code)]
pub fn pyenv_pair_importing(import: &str, what: &str) -> Vec<Interpreter> {
    pyenv_one_per_range_importing(
        import,
        what,
        &[("3.9-3.10", 9..=10), ("3.11-3.13", 11..=13)],
    )
}

/// One pyenv CPython from each of 3.9-3.10, 3.11-3.12 and 3.13 on which `import` succeeds (a
/// library the test set-up installed from PyPI), each missing one skipped with a note naming
/// `what`: the supported range spread over three processes per shape.
#[allow(dead_code)]
pub fn pyenv_spread_importing(import: &str, what: &str) -> Vec<Interpreter> {
    pyenv_one_per_range_importing(
        import,
        what,
        &[
            ("3.9-3.10", 9..=10),
            ("3.11-3.12", 11..=12),
            ("3.13", 13..=13),
        ],
    )
}

/// Each of pyenv's CPython 3.9, 3.10, 3.11, 3.12 and 3.13 on which `import` succeeds (the
/// first of each minor version), each missing one skipped with a note naming `what`. The
/// imports are tried in parallel, once per test binary and `import`.
#[allow(dead_code)]
pub fn pyenv_each_importing(import: &str, what: &str) -> Vec<Interpreter> {
    static FOUND: std::sync::Mutex<Vec<(String, Vec<Interpreter>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, known)) = found.iter().find(|(i, _)| i == import) {
        return known.clone();
    }
    let all = interpreters();
    let picked: Vec<Option<Interpreter>> = std::thread::scope(|s| {
        let each: Vec<_> = (9..=13u32)
            .map(|minor| {
                let all = &all;
                s.spawn(move || {
                    all.iter()
                        .filter(|i| i.root.is_none() && i.minor == minor)
                        .find(|i| imports(i, import))
                        .cloned()
                })
            })
            .collect();
        each.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    let mut out = Vec::new();
    for (minor, i) in (9..=13u32).zip(picked) {
        match i {
            Some(i) => out.push(i),
            None => eprintln!("note: no pyenv CPython 3.{minor} with {what} installed: skipped"),
        }
    }
    found.push((import.to_string(), out.clone()));
    out
}

/// Whether `import` succeeds on `i`.
fn imports(i: &Interpreter, import: &str) -> bool {
    std::process::Command::new(&i.path)
        .args(["-c", &format!("import {import}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The first pyenv CPython of each range of minor versions on which `import` succeeds.
#[allow(dead_code)]
pub fn pyenv_one_per_range_importing(
    import: &str,
    what: &str,
    ranges: &[(&str, std::ops::RangeInclusive<u32>)],
) -> Vec<Interpreter> {
    let all = interpreters();
    let mut picked = Vec::new();
    for (minors, range) in ranges {
        match all
            .iter()
            .find(|i| i.root.is_none() && range.contains(&i.minor) && imports(i, import))
        {
            Some(i) => picked.push(i.clone()),
            None => eprintln!("note: no pyenv CPython {minors} with {what} installed: skipped"),
        }
    }
    picked
}
