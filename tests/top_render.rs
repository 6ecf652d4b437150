//! `gridlock top` views rendered on ratatui's TestBackend from recorded documents (real
//! `gridlock dump --json` output of examples/bank_transfer.py and of the 300-thread bench
//! target), at 80x24 and 200x60. Assertions name specific cells and strings.

use crossterm::event::{Event as Input, KeyCode, KeyEvent, KeyModifiers};
use gridlock::model::Document;
use gridlock::model::FindingKind;
use gridlock::tui::app::View;
use gridlock::tui::{views, App, Effect, Event};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

const SIZES: [(u16, u16); 2] = [(80, 24), (200, 60)];

fn load(name: &str) -> Document {
    let path = format!(
        "{}/tests/fixtures/documents/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bank() -> App {
    App::from_document(load("bank_deadlock.json"))
}

fn big() -> App {
    App::from_document(load("threads_300.json"))
}

fn render(app: &App, (w, h): (u16, u16)) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| views::draw(f, app)).unwrap();
    term.backend().buffer().clone()
}

fn lines(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

fn text(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

/// (x, y) of the first occurrence of `needle` (by cells; every symbol here is one cell wide).
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    find_below(buf, needle, 0)
}

/// The first occurrence on or below row `min_y` (the body starts at row 4).
fn find_below(buf: &Buffer, needle: &str, min_y: usize) -> Option<(u16, u16)> {
    for (y, line) in lines(buf).iter().enumerate().skip(min_y) {
        let cells: Vec<&str> = (0..buf.area.width)
            .map(|x| buf[(x, y as u16)].symbol())
            .collect();
        let n: Vec<String> = needle.chars().map(|c| c.to_string()).collect();
        for x in 0..cells.len().saturating_sub(n.len() - 1) {
            if cells[x..x + n.len()]
                .iter()
                .zip(&n)
                .all(|(a, b)| *a == b.as_str())
            {
                return Some((x as u16, y as u16));
            }
        }
        let _ = line;
    }
    None
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Event::Input(Input::Key(KeyEvent::new(
        code,
        KeyModifiers::NONE,
    ))))
}

#[test]
fn header_shows_the_deadlock_banner_in_red() {
    for size in SIZES {
        let buf = render(&bank(), size);
        let (x, y) = find(&buf, "DEADLOCK").unwrap_or_else(|| panic!("{}", text(&buf)));
        assert!(y < 3, "banner in the header: {}", text(&buf));
        assert_eq!(buf[(x, y)].bg, Color::Red);
        assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
        let banner = &lines(&buf)[y as usize];
        assert!(
            banner.contains("teller-1") && banner.contains("teller-2"),
            "{banner}"
        );
        let all = text(&buf);
        assert!(all.contains("pid "), "{all}");
        assert!(all.contains("CPython 3.12.1"), "{all}");
        assert!(all.contains("5 samples"), "{all}");
        assert!(all.contains("GIL none"), "{all}");
        let gil = if size.0 < 110 {
            "0%/0% wait"
        } else {
            "(held 0%, waited 0%)"
        };
        assert!(all.contains(gil), "{all}");
    }
}

#[test]
fn threads_view_shows_each_threads_state_and_what_it_waits_for() {
    for size in SIZES {
        let buf = render(&bank(), size);
        let all = text(&buf);
        // The banner names the thread too; the table row is below the header.
        let y = lines(&buf)
            .iter()
            .position(|l| l.starts_with("teller-1 "))
            .unwrap_or_else(|| panic!("{all}")) as u16;
        let row = &lines(&buf)[y as usize];
        assert!(row.contains("lock_wait"), "{row}");
        assert!(row.contains("src.lock"), "holds: {row}");
        assert!(row.contains("dst.lock ← teller-2"), "waits for: {row}");
        if size.0 >= 100 {
            assert!(row.contains("transfer:"), "where: {row}");
        }
        // A thread in the cycle is named in red.
        let (x, y) = (0..buf.area.width)
            .map(|x| (x, y))
            .find(|&(x, y)| buf[(x, y)].symbol() == "t")
            .unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red, "{row}");
        let (_, my) = find_below(&buf, "MainThread", 4).unwrap();
        assert!(
            lines(&buf)[my as usize].contains("join_wait"),
            "{}",
            lines(&buf)[my as usize]
        );
        // The state strip of the one sample ends in a 'blocked' glyph.
        assert!(row.trim_end().ends_with('▃'), "{row}");
    }
}

#[test]
fn threads_view_fits_300_threads_and_scrolls_to_the_selection() {
    for size in SIZES {
        let mut app = big();
        let buf = render(&app, size);
        let all = text(&buf);
        assert!(all.contains("Threads 300"), "{all}");
        // Interest order: the two deadlocked workers come first.
        let first_rows: Vec<String> = lines(&buf)[5..7].to_vec();
        for w in ["worker-77", "worker-165"] {
            assert!(first_rows.iter().any(|r| r.contains(w)), "{w}: {all}");
        }
        for _ in 0..299 {
            key(&mut app, KeyCode::Down);
        }
        let buf = render(&app, size);
        let last = lines(&buf)[size.1 as usize - 2].clone();
        let t = app.selected_thread().unwrap();
        assert!(
            last.contains(t.name.as_deref().unwrap()),
            "{last}\n{}",
            text(&buf)
        );
        let (x, y) = find(&buf, t.name.as_deref().unwrap()).unwrap();
        assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
    }
}

#[test]
fn filter_and_sort_change_the_rows() {
    let mut app = big();
    key(&mut app, KeyCode::Char('/'));
    for c in "worker-16".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let buf = render(&app, (200, 60));
    let all = text(&buf);
    // worker-16, worker-160..169: 11 rows.
    assert_eq!(app.rows.len(), 11, "{all}");
    assert!(all.contains("filter \"worker-16\""), "{all}");
    assert!(
        !lines(&buf).iter().any(|l| l.starts_with("worker-77 ")),
        "{all}"
    );
    key(&mut app, KeyCode::Char('s'));
    let buf = render(&app, (200, 60));
    assert!(text(&buf).contains("NAME▼"));
    let rows = lines(&buf);
    assert!(rows[5].contains("worker-16 "), "{}", rows[5]);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.rows.len(), 300);
}

#[test]
fn enter_opens_a_threads_stack_and_history() {
    for size in SIZES {
        let mut app = bank();
        let pos = app
            .rows
            .iter()
            .position(|&i| app.doc.as_ref().unwrap().threads[i].name.as_deref() == Some("teller-2"))
            .unwrap();
        for _ in 0..pos {
            key(&mut app, KeyCode::Down);
        }
        key(&mut app, KeyCode::Enter);
        let buf = render(&app, size);
        let all = text(&buf);
        assert!(all.contains("teller-2  tid"), "{all}");
        assert!(all.contains("waits for dst.lock ← teller-1"), "{all}");
        assert!(all.contains("holds src.lock"), "{all}");
        assert!(all.contains("stack, innermost first"), "{all}");
        assert!(all.contains("transfer bank_transfer.py:"), "{all}");
        assert!(all.contains("last 60 s"), "{all}");
        let effects = key(&mut app, KeyCode::Char('l'));
        assert!(matches!(effects[..], [Effect::Locals(true)]));
        key(&mut app, KeyCode::Esc);
        assert!(app.detail.is_none());
    }
}

#[test]
fn graph_view_highlights_the_cycle_edges() {
    for size in SIZES {
        let mut app = bank();
        key(&mut app, KeyCode::Tab);
        assert_eq!(app.view, View::Graph);
        let buf = render(&app, size);
        let all = text(&buf);
        assert!(all.contains("CYCLE (deadlock)"), "{all}");
        let (x, y) = find(&buf, "══waits for══▶").unwrap_or_else(|| panic!("{all}"));
        assert_eq!(buf[(x, y)].fg, Color::Red);
        assert!(buf[(x, y)].modifier.contains(Modifier::BOLD));
        let edge = &lines(&buf)[y as usize];
        assert!(
            edge.contains("teller-") && edge.contains("dst.lock <0x"),
            "{edge}"
        );
        assert!(all.contains("══held by══▶ teller-"), "{all}");
        assert!(
            all.contains(" as src.lock"),
            "the holder's name for the lock: {all}"
        );
        assert!(
            all.contains("[futex] at transfer bank_transfer.py:"),
            "{all}"
        );
        assert!(
            all.contains("[value_stack] at transfer bank_transfer.py:"),
            "{all}"
        );
        // MainThread's join is outside the cycle: drawn, not highlighted.
        let (x, y) = find(&buf, "MainThread ──joins──▶").unwrap_or_else(|| panic!("{all}"));
        assert_ne!(buf[(x + 12, y)].fg, Color::Red);
    }
}

#[test]
fn graph_view_of_300_threads_lists_the_cycle_first() {
    let mut app = big();
    key(&mut app, KeyCode::Char('2'));
    let buf = render(&app, (80, 24));
    let all = text(&buf);
    assert!(all.contains("CYCLE (deadlock): worker-"), "{all}");
    assert!(all.contains("OTHER WAITS"), "{all}");
}

#[test]
fn findings_view_and_full_report() {
    for size in SIZES {
        let mut app = bank();
        key(&mut app, KeyCode::Char('3'));
        let buf = render(&app, size);
        let all = text(&buf);
        let (_, y) = find_below(&buf, "deadlock", 4).unwrap_or_else(|| panic!("{all}"));
        let row = &lines(&buf)[y as usize];
        assert!(row.contains("error"), "{row}");
        assert!(row.contains(" 5 "), "samples: {row}");
        assert!(row.contains("22:13:3"), "first/last seen: {row}");
        key(&mut app, KeyCode::Enter);
        let buf = render(&app, size);
        let all = text(&buf);
        assert!(
            all.contains("DEADLOCK  2 threads wait for each other"),
            "{all}"
        );
        assert!(all.contains("held by \"teller-"), "{all}");
        let (x, y) = find_below(&buf, "DEADLOCK  2", 4).unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
        key(&mut app, KeyCode::Esc);
        assert!(app.detail.is_none());
    }
}

#[test]
fn loops_and_processes_say_what_is_not_there_yet() {
    for size in SIZES {
        let mut app = bank();
        key(&mut app, KeyCode::Char('4'));
        assert!(text(&render(&app, size)).contains("no asyncio loops seen"));
        key(&mut app, KeyCode::Tab);
        let buf = render(&app, size);
        let all = text(&buf);
        assert!(all.contains("single process"), "{all}");
        assert!(all.contains("3 threads, 3 blocked"), "{all}");
    }
}

#[test]
fn loops_and_processes_render_documents_that_have_them() {
    let mut doc = load("bank_deadlock.json");
    doc.tasks.push(
        serde_json::from_value(serde_json::json!({
            "id": "1:task:0x10", "pid": 1, "loop": "1:loop:0x20", "name": "Task-7",
            "coroutine": "fetch", "state": "pending", "frames": [], "address": "0x10",
            "waits_for": {"kind": "lock", "target": "1:l:0x30", "targets": [], "future": null,
                          "evidence": "memory", "site": "fetch app.py:3", "name": "self.lock"}
        }))
        .unwrap(),
    );
    doc.loops.push(
        serde_json::from_value(serde_json::json!({
            "id": "1:loop:0x20", "pid": 1, "address": "0x20", "kind": "_UnixSelectorEventLoop",
            "thread": null, "state": "step", "ready": 2, "tasks": 1,
            "step": {"key": "k", "task": null, "callback": "blocking_handler", "handle": null, "frames": []}
        }))
        .unwrap(),
    );
    let mut block = doc.findings[0].clone();
    block.kind = FindingKind::LoopBlock;
    block.id = "loop_block:1".into();
    block.loop_id = Some("1:loop:0x20".into());
    block.culprit = Some("blocking_handler".into());
    block.duration = Some(0.75);
    block.ongoing = Some(true);
    doc.findings.push(block);
    let mut child = doc.processes[0].clone();
    child.ppid = Some(child.pid);
    child.pid += 1;
    doc.processes.push(child);
    let mut app = App::from_document(doc);
    key(&mut app, KeyCode::Char('4'));
    let all = text(&render(&app, (80, 24)));
    assert!(all.contains("Task-7") && all.contains("pending"), "{all}");
    assert!(all.contains("lock self.lock"), "{all}");
    assert!(
        all.contains("step blocking_handler") && all.contains("BLOCKED 750 ms so far"),
        "{all}"
    );
    assert!(
        all.contains("culprit blocking_handler: 1 block(s)"),
        "{all}"
    );
    key(&mut app, KeyCode::Char('5'));
    let all = text(&render(&app, (80, 24)));
    assert!(all.contains("process tree"), "{all}");
}

/// A real `dump --tree --json` of tests/fixtures/kernel_waits.py `flock_fork` (two processes
/// taking two lock files in opposite orders): the process view shows each process's kernel wait
/// and the process on the other side.
#[test]
fn the_process_view_shows_the_kernel_edges_between_processes() {
    let doc = load("flock_deadlock.json");
    let (parent, child) = (doc.processes[0].pid, doc.processes[1].pid);
    let mut app = App::from_document(doc);
    key(&mut app, KeyCode::Char('4'));
    key(&mut app, KeyCode::Tab);
    let all = text(&render(&app, (200, 60)));
    assert!(all.contains("process tree"), "{all}");
    assert!(all.contains("KERNEL WAITS"), "{all}");
    let row = |pid: i32| {
        lines(&render(&app, (200, 60)))
            .into_iter()
            .find(|l| l.trim_start().starts_with(&format!("{pid} ")))
            .unwrap_or_else(|| panic!("no row for {pid}: {all}"))
    };
    assert!(
        row(parent).contains(&format!("file lock refs.lock -> pid {child}")),
        "{all}"
    );
    assert!(
        row(child).contains(&format!("file lock index.lock -> pid {parent}")),
        "{all}"
    );
}

#[test]
fn exited_target_keeps_the_last_state_and_says_so() {
    let mut app = bank();
    app.update(Event::TargetExited);
    for size in SIZES {
        let all = text(&render(&app, size));
        assert!(all.contains("TARGET EXITED"), "{all}");
        assert!(all.contains("teller-1"), "{all}");
    }
}

#[test]
fn help_pause_save_and_quit_are_effects() {
    let mut app = bank();
    key(&mut app, KeyCode::Char('?'));
    assert!(text(&render(&app, (80, 24))).contains("filter threads"));
    key(&mut app, KeyCode::Esc);
    assert!(!app.help);
    assert!(matches!(
        key(&mut app, KeyCode::Char('p'))[..],
        [Effect::Pause(true)]
    ));
    assert!(text(&render(&app, (80, 24))).contains("PAUSED"));
    assert!(matches!(
        key(&mut app, KeyCode::Char('d'))[..],
        [Effect::Save(_)]
    ));
    app.update(Event::Saved(Ok("/tmp/x.json".into())));
    assert!(text(&render(&app, (80, 24))).contains("saved the document to /tmp/x.json"));
    assert!(matches!(
        key(&mut app, KeyCode::Char('q'))[..],
        [Effect::Quit]
    ));
    assert!(app.quit);
}

#[test]
fn a_new_finding_is_flagged_while_another_view_is_open() {
    let mut doc = load("bank_deadlock.json");
    let finding = doc.findings.pop().unwrap();
    let mut app = App::from_document(doc.clone());
    assert!(text(&render(&app, (80, 24))).contains("no deadlock"));
    doc.findings.push(finding);
    doc.window.snapshots += 1;
    app.update(Event::Sample(Box::new(gridlock::tui::Sample {
        doc,
        at: 1.0,
        rate: 2.5,
        cost: std::time::Duration::from_millis(20),
    })));
    let all = text(&render(&app, (80, 24)));
    assert!(all.contains("NEW deadlock"), "{all}");
    assert!(all.contains("lowered from 10"), "adapted rate: {all}");
    key(&mut app, KeyCode::Char('3'));
    assert!(!text(&render(&app, (80, 24))).contains("NEW deadlock"));
}

#[test]
fn header_shows_own_cpu_and_time_attached_from_ticks() {
    let mut app = bank();
    app.update(Event::Tick(gridlock::tui::Tick {
        elapsed: 75.0,
        cpu: Some(3.25),
    }));
    let narrow = text(&render(&app, (80, 24)));
    assert!(
        narrow.contains("cpu 3.2%") && narrow.contains("1m15s"),
        "{narrow}"
    );
    let wide = text(&render(&app, (200, 60)));
    assert!(wide.contains("self 3.2% cpu"), "{wide}");
}

#[test]
fn tiny_and_resized_terminals_do_not_panic() {
    let app = big();
    for size in [(20, 5), (1, 1), (80, 24), (300, 100)] {
        render(&app, size);
    }
}

#[test]
fn threads_in_a_pid_namespace_show_both_tids() {
    // Real `dump --json` of the bank deadlock under `unshare --pid --fork --mount-proc`.
    let doc = load("bank_deadlock_namespace.json");
    let main = doc
        .threads
        .iter()
        .find(|t| t.name.as_deref() == Some("MainThread"));
    let (host, own) = main
        .map(|t| (t.native_id.unwrap(), t.namespace_tid.unwrap()))
        .unwrap();
    assert_eq!(own, 1);
    for size in SIZES {
        let mut app = App::from_document(doc.clone());
        let buf = render(&app, size);
        let all = text(&buf);
        let row = lines(&buf)
            .into_iter()
            .find(|l| l.starts_with("MainThread"))
            .unwrap_or_else(|| panic!("{all}"));
        assert!(row.contains(&format!("{host}/{own}")), "{row}");
        // The detail view spells it out.
        let pos = app
            .rows
            .iter()
            .position(|&i| app.doc.as_ref().unwrap().threads[i].native_id == Some(host))
            .unwrap();
        for _ in 0..pos {
            key(&mut app, KeyCode::Down);
        }
        key(&mut app, KeyCode::Enter);
        let detail = text(&render(&app, size));
        assert!(
            detail.contains(&format!("tid {host}, 1 in its namespace")),
            "{detail}"
        );
    }
}

#[test]
fn a_thread_in_unknown_state_marks_the_screen_incomplete() {
    // Real `dump --json` of tests/fixtures/leaked_thread_state.py (a thread state left behind).
    let doc = load("leaked_thread_state.json");
    assert_eq!(doc.unmatched_threads.len(), 1);
    for size in SIZES {
        let mut app = App::from_document(doc.clone());
        let buf = render(&app, size);
        let (_, y) = find(&buf, "INCOMPLETE").unwrap_or_else(|| panic!("{}", text(&buf)));
        assert!(y < 3, "in the header: {}", text(&buf));
        let pos = app
            .rows
            .iter()
            .position(|&i| app.doc.as_ref().unwrap().threads[i].id == doc.unmatched_threads[0])
            .unwrap();
        for _ in 0..pos {
            key(&mut app, KeyCode::Down);
        }
        key(&mut app, KeyCode::Enter);
        let detail = text(&render(&app, size));
        assert!(detail.contains("kernel state unknown: "), "{detail}");
    }
}

/// Real `gridlock dump --json` of tests/fixtures/lock_names.py (CPython 3.12): the panels lead
/// with the program-wide names (`locks[].name`), the local ones after.
#[test]
fn panels_lead_with_the_program_wide_lock_names() {
    let doc = load("lock_names.json");
    for size in SIZES {
        let mut app = App::from_document(doc.clone());
        let buf = render(&app, size);
        let all = text(&buf);
        let row = lines(&buf)
            .into_iter()
            .find(|l| l.starts_with("teller-1 "))
            .unwrap_or_else(|| panic!("{all}"));
        assert!(row.contains("checking.lock"), "holds: {row}");
        if size.0 >= 100 {
            assert!(row.contains("savings.lock ← teller-2"), "waits for: {row}");
        }
        key(&mut app, KeyCode::Tab);
        assert_eq!(app.view, View::Graph);
        let all = text(&render(&app, size));
        if size.0 >= 200 {
            assert!(
                all.contains("══waits for══▶ savings.lock (dst.lock in transfer) <0x"),
                "{all}"
            );
            assert!(all.contains("checking.lock <0x"), "{all}");
        }
    }
}

/// GIL use over the stream (issue 24): the threads table's `GIL` column on a wide terminal and
/// the thread detail's `GIL` line, from the document's `gil` (computed by the core).
#[test]
fn threads_view_shows_each_threads_share_of_the_gil() {
    let mut value: serde_json::Value = serde_json::to_value(load("bank_deadlock.json")).unwrap();
    let ids: Vec<serde_json::Value> = value["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    let use_of = |id: &serde_json::Value, held: u64, waited: u64| {
        serde_json::json!({
            "thread": id, "name": null, "samples": 50, "held": held,
            "share": held as f64 / 50.0, "longest_hold_s": 0.9,
            "longest_hold_samples": held, "waited": waited, "longest_wait_s": 0.4,
            "max_waiters_while_held": 2
        })
    };
    value["gil"] = serde_json::json!({
        "samples": 50, "held_samples": 50, "contended_samples": 40, "max_waiters": 2,
        "threads": [use_of(&ids[0], 48, 0), use_of(&ids[1], 1, 30), use_of(&ids[2], 1, 30)],
    });
    let mut app = App::from_document(serde_json::from_value(value).unwrap());
    let buf = render(&app, (200, 60));
    let all = text(&buf);
    let (gx, gy) = find_below(&buf, "GIL ", 3).unwrap_or_else(|| panic!("{all}"));
    assert!(lines(&buf)[gy as usize].contains("HOLDS"), "{all}");
    // The column holds each thread's share: 96% for the one that held it in 48 of 50.
    let (x, _) = find_below(&buf, "96%", gy as usize + 1).unwrap_or_else(|| panic!("{all}"));
    assert_eq!(x, gx, "{all}");
    assert!(find_below(&buf, "2% ", gy as usize + 1).is_some(), "{all}");
    // A narrow terminal drops the column.
    let narrow = text(&render(&app, (80, 24)));
    assert!(!narrow.contains("96%"), "{narrow}");
    // The detail of the selected thread says what it did with the GIL.
    key(&mut app, KeyCode::Enter);
    let detail = text(&render(&app, (200, 60)));
    assert!(
        detail.contains("GIL held 96% of samples, longest hold 0.9 s (48 samples) while up to 2 waited")
            || detail.contains("GIL held 2% of samples, longest hold 0.9 s (1 sample) while up to 2 waited; waited in 60% of its samples, longest wait 0.4 s"),
        "{detail}"
    );
}

/// bank_deadlock.json turned into issue 31's shapes: teller-1 waits with a timeout for a
/// semaphore of 2 permits (both held), and MainThread's join is a polling loop.
fn timed_semaphore() -> App {
    let path = format!(
        "{}/tests/fixtures/documents/bank_deadlock.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let threads = d["threads"].as_array_mut().unwrap();
    let teller = threads
        .iter_mut()
        .find(|t| t["name"] == "teller-1")
        .unwrap();
    let target = teller["waits_for"]["target"].clone();
    teller["waits_for"]["timed"] = true.into();
    teller["waits_for"]["timeout_s"] = 3600.0.into();
    teller["waits_for"]["waited_s"] = 12.4.into();
    let main = threads
        .iter_mut()
        .find(|t| t["name"] == "MainThread")
        .unwrap();
    main["waits_for"]["timed"] = true.into();
    main["waits_for"]["timeout_s"] = 0.2.into();
    main["waits_for"]["waited_s"] = 7.5.into();
    let lock = d["locks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["id"] == target)
        .unwrap();
    lock["kind"] = "semaphore".into();
    lock["permits"] = serde_json::json!({"total": 2, "free": 0});
    App::from_document(serde_json::from_value(d).unwrap())
}

/// The detail panel of thread `name`, opened from the threads table.
fn detail_of(mut app: App, name: &str) -> String {
    let pos = app
        .rows
        .iter()
        .position(|&i| app.doc.as_ref().unwrap().threads[i].name.as_deref() == Some(name))
        .unwrap();
    for _ in 0..pos {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    text(&render(&app, (200, 60)))
}

#[test]
fn top_shows_a_waits_timeout_how_long_it_lasted_and_a_semaphores_permits() {
    let buf = render(&timed_semaphore(), (200, 60));
    let all = text(&buf);
    let row = lines(&buf)
        .into_iter()
        .find(|l| l.starts_with("teller-1 "))
        .unwrap_or_else(|| panic!("{all}"));
    // The table's column is narrow: the permits lead, after the lock's name.
    assert!(row.contains("dst.lock, 2 of 2 permits held ←"), "{row}");
    // The detail panel has room for all of it.
    let all = detail_of(timed_semaphore(), "teller-1");
    assert!(
        all.contains(
            "waits for dst.lock, 2 of 2 permits held ← teller-2 (timeout 3,600 s, waiting 12.4 s)"
        ),
        "{all}"
    );
    // A polling join says how long it has lasted, not just that it has a timeout.
    let all = detail_of(timed_semaphore(), "MainThread");
    assert!(all.contains("(timeout 0.2 s, waiting 7.5 s)"), "{all}");
}

/// A thread blocked in C shows its native frames in the detail panel, innermost first, as a
/// real `gridlock dump --json` of `tests/fixtures/native_locks.py gil_cycle` (pyenv 3.12)
/// recorded them: "gil-holder" sleeps in glibc's mutex lock under libffi's call.
#[test]
fn thread_detail_shows_the_native_frames_of_a_thread_blocked_in_c() {
    let app = App::from_document(load("native_gil_cycle.json"));
    let detail = detail_of(app, "gil-holder");
    let lines: Vec<&str> = detail.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{detail}"))
    };
    let heading = at("native frames, innermost first");
    let lock = at("  pthread_mutex_lock");
    let ffi = at("  ffi_call");
    assert!(heading < lock && lock < ffi, "{detail}");
    assert!(lines[lock].contains("libc.so.6"), "{}", lines[lock]);
    // The thread waiting for the GIL shows where it sleeps for it.
    let detail = detail_of(
        App::from_document(load("native_gil_cycle.json")),
        "native-holder",
    );
    assert!(detail.contains("  take_gil"), "{detail}");
}
