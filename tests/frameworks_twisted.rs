//! Twisted (issue 32), on real reactors from PyPI: `threads.blockingCallFromThread(reactor,
//! f)` called on the reactor's own thread is a deadlock naming the reactor (the call waits for
//! the reactor it blocks); a twisted.web server idling gives no finding. Interpreters: one
//! pyenv 3.9-3.10 and one pyenv 3.11-3.13 with Twisted installed (`scripts/test` installs it);
//! one without is skipped with a note.

mod support;

use support::{doc, dump_json, dump_text, fixture, line_of, Interpreter, Target};

/// A pyenv 3.9-3.10 and a pyenv 3.11-3.13 that can import Twisted.
fn with_twisted() -> Vec<Interpreter> {
    support::representative::pyenv_pair_importing("twisted.internet.reactor", "Twisted")
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

#[test]
fn an_idle_twisted_web_server_gives_no_finding() {
    let script = fixture("twisted_reactor.py");
    for interp in with_twisted() {
        let t = Target::start(&interp, &script, &["web"]);
        let (code, d) = dump_json(t.pid, "1s");
        assert_eq!(code, 0, "[{}] {d:#}", interp.label);
        assert!(d["findings"].as_array().unwrap().is_empty(), "{d:#}");
        assert!(
            !d["locks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["kind"] == "reactor"),
            "{d:#}"
        );
    }
}
