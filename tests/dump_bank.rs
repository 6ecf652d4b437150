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
