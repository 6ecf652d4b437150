//! `gridlock top` end to end in a real terminal (tmux) on the real deadlocking example: the
//! screen shows the deadlock and both tellers, keys move between views, and `q` / Ctrl-C
//! give the shell back with the terminal restored (no alternate screen, cooked mode, echo).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{example, fixture, gridlock_bin, interpreters, Target};

/// A tmux server of our own (private socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, cols: u16, rows: u16) -> Option<Tmux> {
        let socket = format!("gridlock-test-{}-{name}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "top",
            ])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .args([
                "env",
                "PS1=PROMPT$ ",
                "TERM=xterm-256color",
                "bash",
                "--norc",
                "--noprofile",
            ])
            .status()
            .ok()?
            .success();
        ok.then_some(Tmux { socket })
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "top"])
    }

    /// Wait until the screen satisfies `pred`; panics with the screen otherwise.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("screen never showed {what}:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alternate_on(&self) -> bool {
        self.tmux(&["display-message", "-p", "-t", "top", "#{alternate_on}"])
            .trim()
            == "1"
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The shell is back at its prompt, in cooked mode with echo (what `stty` reports).
fn assert_terminal_restored(t: &Tmux) {
    assert!(!t.alternate_on(), "still on the alternate screen");
    t.keys(&["clear; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo EN\"\"D", "Enter"]);
    let s = t.wait_for("stty output", |s| {
        s.contains("END\n") || s.trim_end().ends_with("END")
    });
    assert!(s.contains("icanon echo"), "raw mode left on:\n{s}");
    assert!(s.contains("PROMPT$"), "no prompt:\n{s}");
}

#[test]
fn top_shows_the_deadlock_moves_between_views_and_restores_the_terminal() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (.ci/run installs it with apt-get)");
        return;
    }
    let py = interpreters()
        .into_iter()
        .max_by_key(|i| (i.label.starts_with("3.12"), i.minor))
        .unwrap();
    let target = Target::start(&py, &example("bank_transfer.py"), &[]);
    let t = Tmux::start("views", 100, 30).expect("start tmux");
    t.wait_for("the prompt", |s| s.contains("PROMPT$"));
    t.keys(&[&format!("{} top {}", gridlock_bin(), target.pid), "Enter"]);
    let s = t.wait_for("the deadlock and both tellers", |s| {
        s.contains("DEADLOCK") && s.contains("teller-1") && s.contains("teller-2")
    });
    assert!(t.alternate_on(), "top draws on the alternate screen");
    assert!(s.contains("lock_wait"), "{s}");

    t.keys(&["Tab"]);
    t.wait_for("the graph view", |s| {
        s.contains("CYCLE (deadlock)") && s.contains("══waits for══▶")
    });
    t.keys(&["Tab"]);
    t.wait_for("the findings view", |s| {
        s.contains("SUMMARY") && s.contains("wait for each other")
    });
    t.keys(&["Enter"]);
    t.wait_for("the full report", |s| {
        s.contains("DEADLOCK  2 threads") && s.contains("held by \"teller-")
    });
    t.keys(&["Escape", "1"]);
    t.wait_for("the threads view", |s| s.contains("WAITS FOR"));
    t.keys(&["?"]);
    t.wait_for("the help", |s| s.contains("filter threads"));
    t.keys(&["Escape"]);
    t.keys(&["q"]);
    t.wait_for("the prompt after q", |s| {
        !s.contains("gridlock top pid") && s.trim_end().ends_with("PROMPT$")
    });
    assert_terminal_restored(&t);

    // Ctrl-C quits too, and restores the terminal the same way.
    t.keys(&["clear", "Enter"]);
    t.keys(&[&format!("{} top {}", gridlock_bin(), target.pid), "Enter"]);
    t.wait_for("the dashboard again", |s| s.contains("DEADLOCK"));
    t.keys(&["C-c"]);
    t.wait_for("the prompt after Ctrl-C", |s| {
        !s.contains("gridlock top pid") && s.trim_end().ends_with("PROMPT$")
    });
    assert_terminal_restored(&t);
}

/// A deadlock over locks that are attributes of module globals (`transfer(src, dst)` called
/// with `checking` and `savings` swapped): the threads panel and the graph name them as the
/// program does (`checking.lock`), not only as the frames do (`src.lock`, `dst.lock`), and
/// a registry's locks by their keys (`LOCKS['users']`).
#[test]
fn top_names_the_locks_as_the_program_does() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (.ci/run installs it with apt-get)");
        return;
    }
    let py = interpreters()
        .into_iter()
        .max_by_key(|i| (i.label.starts_with("3.12"), i.minor))
        .unwrap();
    let target = Target::start(&py, &fixture("lock_names.py"), &["bank", "registry"]);
    let t = Tmux::start("names", 120, 30).expect("start tmux");
    t.wait_for("the prompt", |s| s.contains("PROMPT$"));
    t.keys(&[&format!("{} top {}", gridlock_bin(), target.pid), "Enter"]);
    let s = t.wait_for("the tellers holding the program's locks", |s| {
        s.contains("DEADLOCK") && s.contains("teller-1") && s.contains("checking.lock")
    });
    assert!(s.contains("savings.lock"), "{s}");
    // A registry's entries, by their keys.
    let s = t.wait_for("the registry's locks", |s| s.contains("LOCKS['users']"));
    assert!(s.contains("LOCKS['orders']"), "{s}");
    t.keys(&["Tab"]);
    let s = t.wait_for("the graph view", |s| s.contains("══waits for══▶"));
    assert!(
        s.contains("checking.lock") && s.contains("savings.lock"),
        "the graph names the locks as the program does:\n{s}"
    );
    t.keys(&["q"]);
    t.wait_for("the prompt after q", |s| s.trim_end().ends_with("PROMPT$"));
}

#[test]
fn top_says_when_the_target_exits_and_keeps_the_last_state() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (.ci/run installs it with apt-get)");
        return;
    }
    let py = interpreters().into_iter().next().unwrap();
    let mut target = Target::start(&py, &example("bank_transfer.py"), &[]);
    let t = Tmux::start("exit", 80, 24).expect("start tmux");
    t.wait_for("the prompt", |s| s.contains("PROMPT$"));
    t.keys(&[&format!("{} top {}", gridlock_bin(), target.pid), "Enter"]);
    t.wait_for("the deadlock", |s| s.contains("DEADLOCK"));
    let _ = target.child.kill();
    let _ = target.child.wait();
    let s = t.wait_for("the exit notice", |s| s.contains("TARGET EXITED"));
    assert!(s.contains("teller-1"), "last state kept:\n{s}");
    t.keys(&["q"]);
    t.wait_for("the prompt after q", |s| s.trim_end().ends_with("PROMPT$"));
    assert!(!t.alternate_on());
}

#[test]
fn a_panic_restores_the_terminal_and_prints_the_message() {
    if !tmux_available() {
        eprintln!("SKIPPED: tmux is not installed (.ci/run installs it with apt-get)");
        return;
    }
    let py = interpreters().into_iter().next().unwrap();
    let target = Target::start(&py, &example("bank_transfer.py"), &[]);
    let t = Tmux::start("panic", 80, 24).expect("start tmux");
    t.wait_for("the prompt", |s| s.contains("PROMPT$"));
    t.keys(&[
        &format!(
            "GRIDLOCK_TEST_PANIC_IN_TOP=1 {} top {}",
            gridlock_bin(),
            target.pid
        ),
        "Enter",
    ]);
    let s = t.wait_for("the panic message and the prompt", |s| {
        s.contains("GRIDLOCK_TEST_PANIC_IN_TOP is set") && s.trim_end().ends_with("PROMPT$")
    });
    assert!(!s.contains("gridlock top pid"), "{s}");
    assert_terminal_restored(&t);
}

#[test]
fn top_reports_attach_errors_without_touching_the_terminal() {
    let out = Command::new(gridlock_bin())
        .args(["top", "999999999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no such process"), "{err}");
    assert!(out.stdout.is_empty(), "no escape sequences written");
}
