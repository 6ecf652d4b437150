//! End-to-end: a full bounded `queue.Queue` whose putter holds the lock its only consumer
//! takes before its next `get` is a deadlock through the queue (`drained_by`, evidence
//! `queue_getter`), not a stall; a bounded queue under load (producers putting under a lock,
//! consumers taking without it) in the same process, and alone, gives no finding.

mod support;

use std::time::Duration;

use support::healthy::assert_no_findings;
use support::representative::for_each_representative;
use support::{doc, dump_json_until, dump_text, fixture, line_of, Target};

const WINDOW: &str = "300ms";

#[test]
fn a_full_queue_whose_only_getter_waits_for_the_putters_lock_is_a_deadlock() {
    let script = fixture("queue_cycle.py");
    let get_line = line_of(&script, "def consume", "self.jobs.get()");
    let put_line = line_of(&script, "def produce", "self.jobs.put(i)");
    for_each_representative(|interp| {
        let target = Target::start_busy(interp, &script, &["both"]);
        let (code, d) = dump_json_until(target.pid, WINDOW, Duration::from_secs(10), |c, _| c == 3);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let findings = d["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{:#}", d["findings"]);
        let f = &findings[0];
        assert_eq!(f["kind"], "deadlock");
        let mut names = doc::finding_thread_names(&d, f);
        names.sort();
        assert_eq!(names, ["consumer", "producer"]);
        let summary = f["summary"].as_str().unwrap();
        assert!(
            summary.contains("through a full queue")
                && summary.contains("\"producer\" waits to put into Pipeline.jobs, which is full and only \"consumer\" takes from")
                && summary.contains("\"consumer\" waits for stats_lock, held by \"producer\""),
            "{summary}"
        );
        let edges = f["edges"].as_array().unwrap();
        let consumer = doc::thread_by_name(&d, "consumer")["id"].clone();
        let producer = doc::thread_by_name(&d, "producer")["id"].clone();
        let drained: Vec<_> = edges.iter().filter(|e| e["via"] == "drained_by").collect();
        assert_eq!(drained.len(), 1, "{edges:#?}");
        assert_eq!(drained[0]["to"], consumer);
        assert_eq!(drained[0]["evidence"], "queue_getter");
        // `Pipeline.consume` where the code object carries its qualified name (3.14).
        let get_site = drained[0]["site"].as_str().unwrap().to_string();
        assert!(
            get_site.ends_with(&format!("consume queue_cycle.py:{get_line}")),
            "{get_site}"
        );
        let queue = doc::lock(&d, drained[0]["from"].as_str().unwrap());
        assert_eq!(queue["kind"], "queue", "{queue:#}");
        assert_eq!(queue["holders"][0]["thread"], consumer, "{queue:#}");
        assert!(edges.iter().any(|e| e["via"] == "held_by"
            && e["to"] == producer
            && e["evidence"] == "value_stack"));
        let put = edges
            .iter()
            .find(|e| e["via"] == "waits_for" && e["from"] == producer)
            .unwrap();
        assert!(
            put["site"]
                .as_str()
                .unwrap()
                .ends_with(&format!("produce queue_cycle.py:{put_line}")),
            "{put:#}"
        );
        // The text says who drains the queue; the load beside it adds no finding.
        let (code, text) = dump_text(target.pid, WINDOW);
        assert_eq!(code, 3, "{text}");
        let consume = get_site.split(' ').next().unwrap();
        assert!(
            text.contains(&format!(
                "full; taken from only by \"consumer\" (tid {}), whose code calls get next at {get_site}, through {consume} -> self.jobs.get  [queue_getter]",
                doc::thread_by_name(&d, "consumer")["native_id"]
            )),
            "{text}"
        );
        assert!(!text.contains("STALL"), "{text}");
    });
}

#[test]
fn a_bounded_queue_under_load_is_healthy() {
    let script = fixture("queue_cycle.py");
    for_each_representative(|interp| {
        let target = Target::start_busy(interp, &script, &["healthy"]);
        assert_no_findings(target.pid, WINDOW, 3, &interp.label);
    });
}

/// One process, three shapes: a consumer that reaches `get` only through calls not yet on its
/// stack (`self._next_job()` -> `take(self.jobs)` -> `q.get()`, and the same passing the queue
/// by keyword, `take(q=self.jobs)`, as a dict's item, `take(self.queues['a'])`, and from the
/// consumer's own frame forwarding its arguments, `take(*args, **kwargs)`, the tuple read from
/// memory, and as a dict's item by a key its frame holds, `take(self.queues[name])`) is found
/// as the queue's getter (a deadlock, the `get` site in `take`, the calls to it in the
/// holder's `call_path`); the same code whose key names another queue is no getter of the full
/// one (no deadlock); and the same knot with a running "auditor" that calls a method of the
/// queue picked at run time (it could drain it) is no deadlock.
#[test]
fn a_getter_through_calls_is_found_and_a_running_referrer_prevents_a_false_deadlock() {
    let script = fixture("queue_cycle.py");
    let get_line = line_of(&script, "def take(q)", "return q.get()");
    let audit_line = line_of(&script, "def audit", "getattr(self.jobs, self.action)()");
    for_each_representative(|interp| {
        let target = Target::start_busy(interp, &script, &["indirect"]);
        let (code, d) = dump_json_until(target.pid, WINDOW, Duration::from_secs(10), |c, _| c == 3);
        assert_eq!(code, 3, "{:#}", d["findings"]);
        let deadlocks = doc::findings(&d, "deadlock");
        assert_eq!(deadlocks.len(), 5, "{:#}", d["findings"]);
        // The queue passed on by position (`take(self.jobs)`), by keyword (`take(q=...)`), as
        // a dict's item, unpacked from the consumer's own `*args`, and as a dict's item by
        // the key in the consumer's local `name`.
        for knot in ["indirect", "keyword", "subscript", "forwarded", "computed"] {
            let consumer = format!("{knot}-consumer");
            let f = deadlocks
                .iter()
                .find(|f| doc::finding_thread_names(&d, f).contains(&consumer))
                .unwrap_or_else(|| panic!("no deadlock of {consumer}: {:#}", d["findings"]));
            let mut names = doc::finding_thread_names(&d, f);
            names.sort();
            assert_eq!(names, [consumer.clone(), format!("{knot}-producer")]);
            let edges = f["edges"].as_array().unwrap();
            let drained: Vec<_> = edges.iter().filter(|e| e["via"] == "drained_by").collect();
            assert_eq!(drained.len(), 1, "{edges:#?}");
            assert_eq!(drained[0]["to"], doc::thread_by_name(&d, &consumer)["id"]);
            assert_eq!(drained[0]["evidence"], "queue_getter");
            assert!(
                drained[0]["site"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("take queue_cycle.py:{get_line}")),
                "{:#}",
                drained[0]
            );
            // The holder records the calls down to that `get` (a function's qualified name
            // where the code object carries it).
            let queue = doc::lock(&d, drained[0]["from"].as_str().unwrap());
            let path: Vec<&str> = queue["holders"][0]["call_path"]
                .as_array()
                .unwrap_or_else(|| panic!("no call_path: {queue:#}"))
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            let ends: &[&str] = if ["forwarded", "computed"].contains(&knot) {
                &["consume", "take", "q.get"]
            } else {
                &["consume", "_next_job", "take", "q.get"]
            };
            assert!(
                path.len() == ends.len() && path.iter().zip(ends).all(|(p, e)| p.ends_with(*e)),
                "{path:?}"
            );
        }
        // A thread's id, asserted to be in none of `findings`; the queue a producer waits on.
        let in_none = |findings: Vec<&serde_json::Value>, name: &str| {
            let id = doc::thread_by_name(&d, name)["id"].clone();
            assert!(
                findings
                    .iter()
                    .all(|f| !f["threads"].as_array().unwrap().contains(&id)),
                "{name}: {:#}",
                d["findings"]
            );
            id
        };
        let queue_of = |producer: &str| {
            let target = &doc::thread_by_name(&d, producer)["waits_for"]["target"];
            doc::lock(&d, target.as_str().unwrap())
        };
        // The twin whose key names the other queue: no deadlock names it, and its consumer is
        // no getter of the full queue.
        let elsewhere = in_none(deadlocks.clone(), "elsewhere-consumer");
        let queue = queue_of("elsewhere-producer");
        assert_eq!(queue["kind"], "queue", "{queue:#}");
        assert!(
            queue["holders"]
                .as_array()
                .is_none_or(|h| h.iter().all(|h| h["thread"] != elsewhere)),
            "{queue:#}"
        );
        // The audited knot: no finding names its threads; the auditor is an `unknown` holder.
        let audited = in_none(
            d["findings"].as_array().unwrap().iter().collect(),
            "audited-consumer",
        );
        let queue = queue_of("audited-producer");
        let auditor = doc::thread_by_name(&d, "auditor")["id"].clone();
        let holders = queue["holders"].as_array().unwrap();
        assert!(
            holders
                .iter()
                .any(|h| h["thread"] == audited && h["evidence"] == "queue_getter")
                && holders.iter().any(|h| h["thread"] == auditor
                    && h["evidence"] == "unknown"
                    && h["site"]
                        .as_str()
                        .is_some_and(|s| s.ends_with(&format!("queue_cycle.py:{audit_line}")))),
            "{queue:#}"
        );
    });
}
