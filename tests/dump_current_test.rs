//! `dump` names the test a process is running: pytest's `PYTEST_CURRENT_TEST` read from the
//! process's own `os.environ` (not the environment it started with), or a unittest method on
//! its stack; every interpreter.

mod support;

use support::{dump_json, fixture, for_each_interpreter, Target};

#[test]
fn dump_names_the_running_test_from_os_environ_or_the_stack() {
    let script = fixture("hung_tests/dump_target.py");
    for_each_interpreter(|py| {
        // A stale value in the starting environment: only os.environ's own may be reported.
        let stale = |c: &mut std::process::Command| {
            c.env("PYTEST_CURRENT_TEST", "tests/stale.py::test_old (setup)");
        };
        let target = Target::start_with(py, &script, &["pytest"], stale);
        let (code, doc) = dump_json(target.pid, "0.3s");
        assert_eq!(code, 3, "{doc}");
        let test = &doc["processes"][0]["current_test"];
        assert_eq!(
            test["name"], "tests/test_bank.py::TestMoves::test_cycle[2-x]",
            "{test}"
        );
        assert_eq!(test["classname"], "tests.test_bank.TestMoves");
        assert_eq!(test["function"], "test_cycle[2-x]");
        assert_eq!(test["phase"], "call");
        assert_eq!(test["source"], "os_environ");
        drop(target);

        let target = Target::start_with(py, &script, &["none"], stale);
        let (code, doc) = dump_json(target.pid, "0.3s");
        assert_eq!(code, 3, "{doc}");
        assert!(
            doc["processes"][0].get("current_test").is_none(),
            "deleted from os.environ, so no test: {}",
            doc["processes"][0]
        );
        drop(target);

        let target = Target::start(py, &script, &["unittest"]);
        let (code, doc) = dump_json(target.pid, "0.3s");
        assert_eq!(code, 3, "{doc}");
        let test = &doc["processes"][0]["current_test"];
        assert_eq!(
            test["name"], "__main__.VaultTests.test_transfer_hangs",
            "{test}"
        );
        assert_eq!(test["classname"], "__main__.VaultTests");
        assert_eq!(test["source"], "stack");
    });
}
