//! Hostile input, end to end: what a target controls (thread names, function names, its file
//! name, its argv, string locals) never reaches the operator's terminal raw through the text
//! report, DOT or JUnit, and stays recognisable, escaped; JSON keeps the exact strings.
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{fixture, for_each_interpreter, gridlock, gridlock_bin, Interpreter, Target};

/// What the fixture puts in its thread names, function name and a local (NUL included).
const EVIL: &str = "\x1b]0;pwned\x07\x1b[5mX\x00\r\n\u{202e}";
/// The same, as the reports show it.
const EVIL_SHOWN: &str = r"\x1b]0;pwned\x07\x1b[5mX\x00\r\n\u{202e}";
/// A file name cannot hold NUL (nor `/`): everything else goes in.
const EVIL_FILE: &str = "hostile\x1b[31m\x07\r\n\u{202e}yp.py";
const EVIL_FILE_SHOWN: &str = r"hostile\x1b[31m\x07\r\n\u{202e}yp.py";
/// An argument cannot hold NUL either.
const EVIL_ARG: &str = "arg\x1b]2;title\x07\r\n\u{202e}";
const EVIL_ARG_SHOWN: &str = r"arg\x1b]2;title\x07\r\n\u{202e}";

/// The fixture copied into a fresh temp folder under the hostile file name.
fn hostile_copy(label: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("gridlock-hostile-{}-{label}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join(EVIL_FILE);
    std::fs::copy(fixture("hostile_names.py"), &script).unwrap();
    (dir, script)
}

/// Every byte a terminal would act on, other than the line feeds between report lines.
fn raw_controls(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.char_indices()
        .filter(|(_, c)| {
            (c.is_control() && *c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .map(|(i, c)| format!("{c:?} at {i}: {:?}", &text[i.saturating_sub(30)..i]))
        .collect()
}

fn start(py: &Interpreter, script: &Path) -> Target {
    Target::start(py, script, &[EVIL_ARG])
}

#[test]
fn the_text_report_and_dot_escape_what_the_target_controls() {
    for_each_interpreter(|py| {
        let (dir, script) = hostile_copy(&py.label);
        let target = start(py, &script);
        let pid = target.pid.to_string();
        let dot = dir.join("graph.dot");
        let out = gridlock(&[
            "dump",
            &pid,
            "--window",
            "300ms",
            "--color",
            "never",
            "--locals",
            "--dot",
            dot.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(3), "[{}] {:?}", py.label, out);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(raw_controls(&out.stdout), Vec::<String>::new(), "{text}");
        assert_eq!(raw_controls(&out.stderr), Vec::<String>::new());
        // Still recognisable: each name whole, on the line that names it.
        let deadlock = text
            .lines()
            .find(|l| l.starts_with("DEADLOCK"))
            .expect(&text);
        for who in ["evil-1", "evil-2"] {
            assert!(
                deadlock.contains(&format!("{who}{EVIL_SHOWN}")),
                "{deadlock}"
            );
        }
        let header = text.lines().next().unwrap();
        assert!(
            header.contains(EVIL_FILE_SHOWN) && header.contains(EVIL_ARG_SHOWN),
            "{header}"
        );
        assert!(
            text.contains(&format!("take{EVIL_SHOWN} ({EVIL_FILE_SHOWN}:")),
            "{text}"
        );
        // A string local is shown as a repr, its controls escaped where it is made.
        assert!(
            text.lines()
                .any(|l| l.contains("note = 'local") && l.contains("pwned")),
            "{text}"
        );

        let graph = std::fs::read(&dot).unwrap();
        assert_eq!(raw_controls(&graph), Vec::<String>::new());
        // DOT quotes the backslashes once more; Graphviz shows the label as the text report does.
        let quoted = format!("evil-1{EVIL_SHOWN}").replace('\\', "\\\\");
        let graph = String::from_utf8_lossy(&graph);
        assert!(graph.contains(&quoted), "{graph}");

        // With colour on, the only escape sequences are gridlock's own.
        let out = gridlock(&["dump", &pid, "--window", "0", "--color", "always"]);
        let coloured = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut plain = coloured.clone();
        for sgr in ["\x1b[0m", "\x1b[1m", "\x1b[1;31m", "\x1b[1;33m", "\x1b[2m"] {
            plain = plain.replace(sgr, "");
        }
        assert!(
            coloured.contains("\x1b[1;31m"),
            "colour was asked for: {coloured}"
        );
        assert_eq!(
            raw_controls(plain.as_bytes()),
            Vec::<String>::new(),
            "{coloured}"
        );

        // JSON escapes them itself and keeps the exact strings.
        let (_, doc) = support::dump_json(target.pid, "0");
        support::doc::thread_by_name(&doc, &format!("evil-1{EVIL}"));
        assert!(doc["processes"][0]["cmdline"]
            .as_str()
            .unwrap()
            .contains(EVIL_ARG));
        drop(target);
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn run_reports_and_junit_escape_what_the_target_controls() {
    let py = &support::interpreters()[0];
    let (dir, script) = hostile_copy(&format!("run-{}", py.label));
    let junit = dir.join("junit.xml");
    let out = Command::new(gridlock_bin())
        .args(["run", "--junit", junit.to_str().unwrap(), "--"])
        .arg(&py.path)
        .arg(&script)
        .arg(EVIL_ARG)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(raw_controls(&out.stderr), Vec::<String>::new(), "{stderr}");
    assert!(stderr.contains(&format!("evil-2{EVIL_SHOWN}")), "{stderr}");
    let xml = std::fs::read(&junit).unwrap();
    assert_eq!(raw_controls(&xml), Vec::<String>::new());
    let xml = String::from_utf8_lossy(&xml);
    assert!(xml.contains(&format!("evil-1{EVIL_SHOWN}")), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A SIGSTOPped deadlock: its threads are `stopped`, the report says nothing is inferred from
/// their waits and finds nothing; continued, the same process is a deadlock again.
#[test]
fn a_stopped_target_says_so_and_nothing_is_inferred_from_its_waits() {
    for_each_interpreter(|py| {
        let target = Target::start(py, &support::example("bank_transfer.py"), &[]);
        // Let the deadlock form first (bounded): stopped before the tellers reach their
        // locks, the target would form it only after SIGCONT, during the last dump's window.
        support::dump_json_until(target.pid, "0", Duration::from_secs(15), |code, _| {
            code == 3
        });
        let signal = |sig| unsafe { libc::kill(target.pid, sig) };
        signal(libc::SIGSTOP);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while support::proc_state(target.pid) != Some('T') && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (code, doc) = support::dump_json(target.pid, "300ms");
        assert_eq!(code, 0, "{doc}");
        let states: Vec<&str> = doc["threads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap())
            .collect();
        assert!(
            states.len() == 3 && states.iter().all(|s| *s == "stopped"),
            "{states:?}"
        );
        assert!(doc["findings"].as_array().unwrap().is_empty(), "{doc}");
        let (_, text) = support::dump_text(target.pid, "0");
        assert!(
            text.contains(&format!(
                "STOPPED  process {} is stopped (SIGSTOP or a debugger): a stopped process cannot make progress, so nothing is inferred from its waits.",
                target.pid
            )),
            "{text}"
        );

        signal(libc::SIGCONT);
        // The resumed threads restart their futex waits: one may still be running at the
        // first snapshot of a dump taken at once, and a deadlock must hold over the window.
        let resumed = |code: i32, doc: &serde_json::Value| {
            code == 3 && support::doc::findings(doc, "deadlock").len() == 1
        };
        let (code, doc) =
            support::dump_json_until(target.pid, "300ms", Duration::from_secs(10), resumed);
        assert!(
            resumed(code, &doc),
            "no deadlock reported once resumed: {code} {doc}"
        );
    });
}
