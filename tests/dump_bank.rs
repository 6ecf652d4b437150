mod support;

use support::{doc, dump_json, dump_text, example, for_each_interpreter, Target};

#[test]
fn bank_transfer_deadlock_is_found_with_holders_and_sites() {
    for_each_interpreter(|py| {
        let target = Target::start(py, &example("bank_transfer.py"), &[]);
        let (code, d) = dump_json(target.pid, "300ms");
        assert_eq!(code, 3, "exit status for a deadlock");
        let deadlocks = doc::findings(&d, "deadlock");
        assert_eq!(deadlocks.len(), 1, "one deadlock: {:#}", d["findings"]);
        let f = deadlocks[0];
        assert_eq!(
            doc::finding_thread_names(&d, f),
            vec!["teller-1", "teller-2"]
        );
        assert_eq!(f["locks"].as_array().unwrap().len(), 2);
        for e in f["edges"].as_array().unwrap() {
            match e["via"].as_str().unwrap() {
                "waits_for" => {
                    assert_eq!(e["evidence"], "futex");
                    assert_eq!(e["name"], "dst.lock");
                    assert!(
                        e["site"]
                            .as_str()
                            .unwrap()
                            .starts_with("transfer bank_transfer.py:"),
                        "{e}"
                    );
                }
                "held_by" => {
                    assert_eq!(e["evidence"], "value_stack");
                    assert_eq!(e["name"], "src.lock");
                }
                other => panic!("unexpected edge {other}"),
            }
        }
        let main = doc::thread_by_name(&d, "MainThread");
        assert_eq!(main["state"], "join_wait");
        let (code, text) = dump_text(target.pid, "0");
        assert_eq!(code, 3);
        assert!(text.contains("DEADLOCK"), "{text}");
        assert!(text.contains("held by \"teller-"), "{text}");
    });
}

#[test]
fn dot_output_highlights_the_cycle_and_locals_are_shown_on_request() {
    let py = &support::interpreters()[0];
    let target = Target::start(py, &example("bank_transfer.py"), &[]);
    let dot = std::env::temp_dir().join(format!("gridlock-{}.dot", std::process::id()));
    let out = support::gridlock(&[
        "dump",
        &target.pid.to_string(),
        "--window",
        "0",
        "--dot",
        dot.to_str().unwrap(),
        "--locals",
        "--color",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let graph = std::fs::read_to_string(&dot).unwrap();
    let _ = std::fs::remove_file(&dot);
    assert!(graph.starts_with("digraph waitfor {"), "{graph}");
    let red_edges: Vec<&str> = graph
        .lines()
        .filter(|l| l.contains("->") && l.contains("color=red"))
        .collect();
    assert_eq!(
        red_edges.len(),
        4,
        "two waits and two holds form the cycle:\n{graph}"
    );
    assert!(graph.contains("teller-1") && graph.contains("teller-2"));
    let text = String::from_utf8_lossy(&out.stdout);
    // --locals: the transfer frame's arguments, by value where they are plain.
    assert!(text.contains("amount = 10"), "{text}");
    assert!(text.contains("src = <Account at 0x"), "{text}");
}
