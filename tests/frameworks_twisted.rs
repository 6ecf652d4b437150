//! Twisted (issue 32), on real reactors from PyPI: `threads.blockingCallFromThread(reactor,
//! f)` called on the reactor's own thread is a deadlock naming the reactor (the call waits for
//! the reactor it blocks); two `inlineCallbacks` generators (two `ensureDeferred` coroutines;
//! two generators whose Deferreds are an object's attribute and closure cells) each waiting
//! for a Deferred only the other fires are a deadlock, their tasks of framework `twisted`;
//! a twisted.web server idling, Deferreds a reactor timer fires and a Deferred a protocol
//! fires give none (one process); a timed call sleeping in the reactor thread is a loop block;
//! a thread pool (deferToThread) whose workers all block in blockingCallFromThread on work
//! queued behind them is a deadlock of the pool, and a busy pool that drains gives none.
//! Interpreters: one pyenv 3.9-3.10, one 3.11-3.12 and the 3.13 with Twisted installed
//! (`scripts/test` installs it); one without is skipped with a note.

mod support;

use support::{doc, dump_json, dump_text, fixture, line_of, Interpreter, Target};

/// A pyenv 3.9-3.10, a 3.11-3.12 and a 3.13 that can import Twisted.
fn with_twisted() -> Vec<Interpreter> {
    support::representative::pyenv_spread_importing("twisted.internet.reactor", "Twisted")
}

#[test]
fn blocking_call_from_thread_on_the_reactor_thread_is_a_deadlock_naming_the_reactor() {
    let script = fixture("twisted_reactor.py");
    let call = line_of(&script, "def refresh_prices", "blockingCallFromThread");
    for interp in with_twisted() {
        let t = Target::start(&interp, &script, &["blocking_call"]);
        let (code, d) = dump_json(t.pid, "0.5s");
        assert_eq!(code, 3, "[{}] {d:#}", interp.label);
        let deadlocks = doc::findings(&d, "deadlock");
        assert_eq!(deadlocks.len(), 1, "[{}] {d:#}", interp.label);
        let f = deadlocks[0];
        assert_eq!(doc::finding_thread_names(&d, f), ["MainThread"], "{f:#}");
        let summary = f["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("\"MainThread\" waits in blockingCallFromThread for a call only its own reactor would run"),
            "{summary}"
        );
        let main = doc::thread_by_name(&d, "MainThread");
        let w = &main["waits_for"];
        assert_eq!(w["kind"], "future", "{main:#}");
        assert_eq!(
            w["via"], "twisted.internet.threads.blockingCallFromThread",
            "{main:#}"
        );
        assert_eq!(
            w["site"],
            format!("refresh_prices twisted_reactor.py:{call}"),
            "{main:#}"
        );
        let reactor = doc::lock(&d, w["target"].as_str().unwrap());
        assert_eq!(reactor["kind"], "reactor", "{reactor:#}");
        // The installed release is a checked one: no version note.
        let notes = d["processes"][0]["notes"].to_string();
        assert!(!notes.contains("Twisted"), "[{}] {notes}", interp.label);
        assert_eq!(reactor["holders"][0]["thread"], main["id"], "{reactor:#}");
        assert_eq!(reactor["holders"][0]["evidence"], "memory", "{reactor:#}");

        let (code, text) = dump_text(t.pid, "0.3s");
        assert_eq!(code, 3, "{text}");
        assert!(
            text.contains("DEADLOCK  \"MainThread\" waits in blockingCallFromThread"),
            "{text}"
        );
    }
}

/// The task whose coroutine is `name` (a nested function's qualified name ends with it).
fn task<'a>(d: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    d["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["coroutine"]
                .as_str()
                .is_some_and(|c| c == name || c.ends_with(&format!(".{name}")))
        })
        .unwrap_or_else(|| panic!("no task {name}: {d:#}"))
}

/// A function's short name (`start_shelf.<locals>.count_shelf` is `count_shelf`).
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

#[test]
fn inline_callbacks_waiting_on_each_others_deferreds_are_a_deadlock() {
    let script = fixture("twisted_deferreds.py");
    // 3.12 too: there the module globals once spent the whole search budget before main()'s
    // locals were read (the shelf and deep cycles were missed).
    let mut interps = with_twisted();
    interps.extend(support::representative::pyenv_one_per_range_importing(
        "twisted.internet.reactor",
        "Twisted",
        &[("3.12", 12..=12)],
    ));
    for interp in interps {
        // All eight cycles in one process: module globals, coroutines, Deferreds held only as
        // an object's attribute (its object a local of main()) and as closure cells, a
        // Deferred chained to another, Deferreds held three and seven levels down in main()'s
        // objects, by a protocol only the reactor's connection holds, and by an object only a
        // reactor timer holds; its twisted.__version__ is gone (a note).
        let t = Target::start(
            &interp,
            &script,
            &[
                "cycle",
                "coroutines",
                "shelf",
                "chained",
                "deep",
                "deeper",
                "io_cycle",
                "timer_cycle",
                "no_version",
            ],
        );
        let (code, d) = dump_json(t.pid, "0.5s");
        let label = format!("[{}]", interp.label);
        assert_eq!(code, 3, "{label} {d:#}");
        let deadlocks = doc::findings(&d, "deadlock");
        assert_eq!(deadlocks.len(), 8, "{label} {d:#}");
        assert!(
            d["processes"][0]["notes"].as_array().unwrap().iter().any(
                |n| n == "Twisted's version could not be read; it is read as Twisted 24.x-26.x"
            ),
            "{label} {:#}",
            d["processes"][0]
        );
        for (a, b, fires, waits, through) in [
            (
                "load_prices",
                "load_stock",
                "prices_ready.callback",
                "stock_ready",
                "prices_ready",
            ),
            (
                "fetch_prices",
                "fetch_stock",
                "quotes_ready.callback",
                "orders_ready",
                "quotes_ready",
            ),
            (
                "count_shelf",
                "price_shelf",
                "priced.callback",
                "shelf.restocked",
                "priced",
            ),
            // show_listing waits for `listing`, chained to `indexed`, which build_index fires.
            (
                "build_index",
                "show_listing",
                "indexed.callback",
                "yield built",
                "listing",
            ),
            (
                "charge",
                "ship",
                "order.payment.settled.callback",
                "yield order.packed",
                "payment.settled",
            ),
            // Seven levels down in main()'s objects, past what a depth bound of three reached.
            (
                "count_bin",
                "weigh_bin",
                "bin.counted.callback",
                "yield bin.weighed",
                "counted",
            ),
            // Held only by a protocol instance the reactor's connection holds.
            (
                "authenticate",
                "welcome",
                "session.authed.callback",
                "yield session.welcomed",
                "authed",
            ),
            // Held only by an object a reactor timer was given.
            (
                "open_books",
                "close_books",
                "ledger.opened.callback",
                "yield ledger.closed",
                "opened",
            ),
        ] {
            let label = format!("{label} {a}");
            let fires_b = line_of(&script, &format!("def {a}"), fires);
            let waits_a = line_of(&script, &format!("def {a}"), waits);
            let (ta, tb) = (task(&d, a), task(&d, b));
            let (qa, qb) = (
                ta["coroutine"].as_str().unwrap(),
                tb["coroutine"].as_str().unwrap(),
            );
            let f = deadlocks
                .iter()
                .find(|f| {
                    let mut names = doc::finding_task_names(&d, f);
                    names.sort();
                    let mut pair = [qa, qb];
                    pair.sort();
                    names == pair
                })
                .unwrap_or_else(|| panic!("{label}: no deadlock of {qa} and {qb}: {d:#}"));
            let summary = f["summary"].as_str().unwrap();
            assert!(
                summary.starts_with(
                    "2 Twisted inlineCallbacks wait for each other in a cycle through a Deferred"
                ),
                "{summary}"
            );
            for t in [ta, tb] {
                assert_eq!(t["framework"], "twisted", "{label} {t:#}");
                assert_eq!(t["waits_for"]["kind"], "future", "{label} {t:#}");
                assert_eq!(t["waits_for"]["evidence"], "deferred", "{label} {t:#}");
            }
            assert_eq!(
                ta["waits_for"]["site"],
                format!("{qa} twisted_deferreds.py:{waits_a}"),
                "{label} {ta:#}"
            );
            // b waits for the Deferred a's code fires after its own wait.
            let fired = doc::lock(&d, tb["waits_for"]["target"].as_str().unwrap());
            assert_eq!(fired["kind"], "deferred", "{fired:#}");
            let name = fired["name"].as_str().unwrap_or_default();
            assert!(name.ends_with(through), "{label} {fired:#}");
            assert_eq!(fired["holders"][0]["task"], ta["id"], "{fired:#}");
            assert_eq!(fired["holders"][0]["evidence"], "deferred", "{fired:#}");
            assert_eq!(
                fired["holders"][0]["site"],
                format!("{qa} twisted_deferreds.py:{fires_b}"),
                "{fired:#}"
            );
            let reactor = d["loops"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["id"] == ta["loop"])
                .unwrap_or_else(|| panic!("{label} no reactor loop {d:#}"));
            assert_eq!(reactor["state"], "polling", "{reactor:#}");
            assert_eq!(reactor["kind"], "EPollReactor", "{reactor:#}");
            assert_eq!(short(qa), a, "{label}");
        }
        let listing = task(&d, "show_listing");
        assert_eq!(
            listing["waits_for"]["name"], "listing, chained to indexed",
            "{label} {listing:#}"
        );
        // DOT draws the tasks: each a rounded box, its wait and its firer red edges.
        let out = support::gridlock(&["dump", &t.pid.to_string(), "--window", "0", "--dot", "-"]);
        let dot = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(3), "{label} {dot}");
        for name in ["load_prices", "load_stock", "show_listing", "charge"] {
            let t = task(&d, name);
            let id = t["id"].as_str().unwrap();
            let target = t["waits_for"]["target"].as_str().unwrap();
            let node = format!("\"{id}\" [shape=box, style=rounded, label=\"twisted task {}\\npending\", color=red", t["name"].as_str().unwrap());
            assert!(dot.contains(&node), "{label} {node}: {dot}");
            assert!(
                dot.lines().any(|l| l
                    .starts_with(&format!("  \"{id}\" -> \"{target}\" [label=\"waits for"))
                    && l.ends_with("color=red, penwidth=2];")),
                "{label} {name}: {dot}"
            );
        }
        // top's task view lists them with what each waits for.
        let screen = support::top_view::render(&d, '4');
        let row = screen
            .lines()
            .find(|l| l.contains("load_stock"))
            .unwrap_or_else(|| panic!("{label} no load_stock row: {screen}"));
        assert!(row.trim_start().starts_with("twisted 0x"), "{label} {row}");
        assert!(
            row.contains("pending") && row.contains("future prices_ready"),
            "{label} {row}"
        );
        assert!(
            screen.contains("on MainThread: polling"),
            "{label} {screen}"
        );

        let (code, text) = dump_text(t.pid, "0.3s");
        assert_eq!(code, 3, "{text}");
        let fires = line_of(&script, "def load_prices", "prices_ready.callback");
        assert!(
            text.contains(&format!(
                "fired by task \"load_prices\" (load_prices), whose code calls it next at load_prices twisted_deferreds.py:{fires}"
            )),
            "{text}"
        );
    }
}

/// Four quiet shapes in one process: a twisted.web server idling (its reactor a polling
/// loop), Deferreds a reactor timer fires, a client waiting for a Deferred its protocol
/// fires (an I/O wait, its firer unknown), and Deferreds found only through the reactor (a
/// connected protocol's, and one a timer's bound method fires), their firers unknown.
#[test]
fn an_idle_web_server_timers_and_a_silent_protocol_give_no_finding() {
    let script = fixture("twisted_deferreds.py");
    let waits = line_of(&script, "def ask_price", "yield price_answered");
    for interp in with_twisted() {
        let t = Target::start(
            &interp,
            &script,
            &["web", "healthy", "protocol", "io_healthy", "old_version"],
        );
        let (code, d) = dump_json(t.pid, "0.5s");
        let label = format!("[{}]", interp.label);
        assert_eq!(code, 0, "{label} {d:#}");
        // Its twisted.__version__ says 22.4.0: read as a checked release, with a note.
        assert!(
            d["processes"][0]["notes"].as_array().unwrap().iter().any(|n| n
                == "Twisted 22.4.0 is outside the releases gridlock was checked on (24.x-26.x); it is read as those"),
            "{label} {:#}",
            d["processes"][0]
        );
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        assert!(
            !d["locks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["kind"] == "reactor"),
            "{d:#}"
        );
        let reactor = &d["loops"][0];
        assert_eq!(reactor["state"], "polling", "{reactor:#}");
        assert_eq!(reactor["kind"], "EPollReactor", "{reactor:#}");

        // The timer's generator sleeps; the one started by refresh is its result's firer.
        let timer = task(&d, "wait_for_timer");
        assert_eq!(timer["waits_for"]["kind"], "sleep", "{timer:#}");
        assert_eq!(timer["waits_for"]["via"], "reactor.callLater", "{timer:#}");
        let refresh = task(&d, "refresh");
        let result = doc::lock(&d, refresh["waits_for"]["target"].as_str().unwrap());
        assert_eq!(result["holders"][0]["task"], timer["id"], "{result:#}");
        // prices_ready is fired by the sleeping generator, after its timer.
        let stock = task(&d, "load_stock");
        let prices = doc::lock(&d, stock["waits_for"]["target"].as_str().unwrap());
        assert_eq!(prices["holders"][0]["task"], timer["id"], "{prices:#}");

        // The client waits for a server that never answers: an I/O wait, never a deadlock.
        let ask = task(&d, "ask_price");
        assert_eq!(ask["waits_for"]["kind"], "future", "{ask:#}");
        assert_eq!(
            ask["waits_for"]["site"],
            format!("ask_price twisted_deferreds.py:{waits}"),
            "{ask:#}"
        );
        // dataReceived fires it; quote_price calls its callback only before its own wait.
        let answered = doc::lock(&d, ask["waits_for"]["target"].as_str().unwrap());
        assert_eq!(answered["kind"], "deferred", "{answered:#}");
        let holders = answered["holders"].as_array().unwrap();
        assert_eq!(holders.len(), 1, "{answered:#}");
        assert_eq!(holders[0]["evidence"], "unknown", "{answered:#}");
        assert!(holders[0]["task"].is_null(), "{answered:#}");
        assert_eq!(
            answered["waiters"].as_array().unwrap().len(),
            2,
            "{answered:#}"
        );
        // Found only through the reactor (a connection's protocol, a timer's bound method):
        // waits whose firers are unknown, never a finding.
        for (name, through) in [
            ("await_quote", "reactor's Server.protocol.answered"),
            ("await_poll", "callLater(...).func.__self__.done"),
        ] {
            let t = task(&d, name);
            let waited = doc::lock(&d, t["waits_for"]["target"].as_str().unwrap());
            assert_eq!(waited["kind"], "deferred", "{label} {waited:#}");
            assert_eq!(
                waited["name"],
                format!("Deferred {through}"),
                "{label} {waited:#}"
            );
            assert_eq!(
                waited["holders"][0]["evidence"], "unknown",
                "{label} {waited:#}"
            );
        }
    }
}

#[test]
fn a_timed_call_sleeping_on_the_reactor_thread_is_a_loop_block() {
    let script = fixture("twisted_reactor.py");
    let sleep = line_of(&script, "def rebuild_index", "time.sleep");
    for interp in with_twisted() {
        let t = Target::start(&interp, &script, &["slow_timer"]);
        let (_, d) = dump_json(t.pid, "0.5s");
        let blocks = doc::findings(&d, "loop_block");
        assert_eq!(blocks.len(), 1, "[{}] {d:#}", interp.label);
        let summary = blocks[0]["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("the event loop of \"MainThread\" was held for"),
            "{summary}"
        );
        assert!(
            summary.contains(&format!(
                "by callback rebuild_index, at rebuild_index twisted_reactor.py:{sleep}"
            )),
            "{summary}"
        );
        let advice = blocks[0]["advice"].as_str().unwrap();
        assert!(advice.contains("threads.deferToThread"), "{advice}");
        let reactor = &d["loops"][0];
        assert_eq!(reactor["state"], "step", "{reactor:#}");
        assert_eq!(reactor["step"]["callback"], "rebuild_index", "{reactor:#}");
    }
}

#[test]
fn a_thread_pool_whose_workers_block_on_work_queued_behind_them_is_a_deadlock_of_the_pool() {
    let script = fixture("twisted_pool.py");
    let call = line_of(&script, "def export_report", "blockingCallFromThread");
    for interp in with_twisted() {
        let t = Target::start(&interp, &script, &["starved"]);
        let (code, d) = dump_json(t.pid, "0.5s");
        let label = format!("[{}]", interp.label);
        assert_eq!(code, 3, "{label} {d:#}");
        let deadlocks = doc::findings(&d, "deadlock");
        assert_eq!(deadlocks.len(), 1, "{label} {d:#}");
        let f = deadlocks[0];
        assert_eq!(f["knot"], true, "{f:#}");
        let summary = f["summary"].as_str().unwrap();
        assert!(summary.starts_with("pool starvation"), "{summary}");
        assert!(
            f["advice"]
                .as_str()
                .unwrap()
                .contains("Twisted thread pool"),
            "{f:#}"
        );
        let workers = [
            "PoolThread-twisted.internet.reactor-0",
            "PoolThread-twisted.internet.reactor-1",
        ];
        let mut names = doc::finding_thread_names(&d, f);
        names.sort();
        assert_eq!(names, workers, "{label} {f:#}");
        let mut ids: Vec<&serde_json::Value> = workers
            .iter()
            .map(|w| &doc::thread_by_name(&d, w)["id"])
            .collect();
        ids.sort_by_key(|v| v.as_str().unwrap().to_string());
        for w in workers {
            let worker = doc::thread_by_name(&d, w);
            let wait = &worker["waits_for"];
            assert_eq!(wait["kind"], "future", "{worker:#}");
            assert_eq!(wait["evidence"], "deferred", "{worker:#}");
            assert_eq!(
                wait["via"], "twisted.internet.threads.blockingCallFromThread",
                "{worker:#}"
            );
            assert_eq!(
                wait["site"],
                format!("export_report twisted_pool.py:{call}"),
                "{worker:#}"
            );
            // The work render_page deferred to the pool is queued: any worker would run it.
            let result = doc::lock(&d, wait["target"].as_str().unwrap());
            assert_eq!(result["kind"], "deferred", "{result:#}");
            assert_eq!(
                result["name"], "Deferred: the result of render (deferToThread, queued)",
                "{result:#}"
            );
            let holders = result["holders"].as_array().unwrap();
            assert!(
                holders.iter().all(|h| h["evidence"] == "thread_pool"),
                "{result:#}"
            );
            let mut by: Vec<&serde_json::Value> = holders.iter().map(|h| &h["thread"]).collect();
            by.sort_by_key(|v| v.as_str().unwrap().to_string());
            assert_eq!(by, ids, "{result:#}");
        }
        let (code, text) = dump_text(t.pid, "0.3s");
        assert_eq!(code, 3, "{text}");
        assert!(
            text.contains("queued in its pool, for any of its workers"),
            "{text}"
        );
    }
}

#[test]
fn a_busy_thread_pool_that_drains_gives_no_finding() {
    let script = fixture("twisted_pool.py");
    for interp in with_twisted() {
        let t = Target::start_busy(&interp, &script, &["draining"]);
        let (code, d) = dump_json(t.pid, "0.5s");
        assert_eq!(code, 0, "[{}] {d:#}", interp.label);
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        // Both workers are there, running or between items, never stuck.
        for w in [
            "PoolThread-twisted.internet.reactor-0",
            "PoolThread-twisted.internet.reactor-1",
        ] {
            doc::thread_by_name(&d, w);
        }
    }
}

/// `gridlock run -- python twisted_deferreds.py cycle` on one interpreter (the newest with
/// Twisted): the Deferred cycle stops the run (exit 3, the process killed) and the JUnit file
/// names both generators.
#[test]
fn run_stops_a_twisted_deferred_cycle_and_junit_names_it() {
    let Some(interp) = with_twisted().pop() else {
        return;
    };
    let script = fixture("twisted_deferreds.py");
    let run = support::run_with_junit(
        "twisted",
        &[
            interp.path.as_os_str(),
            script.as_os_str(),
            "cycle".as_ref(),
        ],
    );
    let stderr = &run.stderr;
    assert_eq!(run.code, Some(3), "[{}] {stderr}", interp.label);
    assert!(
        stderr.contains("DEADLOCK  2 Twisted inlineCallbacks wait for each other"),
        "{stderr}"
    );
    let xml = &run.xml;
    assert!(xml.contains("<failure type=\"deadlock\""), "{xml}");
    assert!(xml.contains(r#"classname="gridlock.deadlock""#), "{xml}");
    assert!(
        xml.contains("load_prices") && xml.contains("load_stock"),
        "{xml}"
    );
}
