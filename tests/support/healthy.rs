//! A healthy target, asserted: several dumps in a row, each exiting 0 with no finding.

use super::dump_json;

/// `dump_json` `times` times: each must exit 0 with no finding (`label` names the target in
/// a failure). Returns the last document, for further checks.
#[allow(dead_code)]
pub fn assert_no_findings(pid: i32, window: &str, times: usize, label: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..times {
        let (code, d) = dump_json(pid, window);
        assert_eq!(code, 0, "{label}: {:#}", d["findings"]);
        assert!(
            d["findings"].as_array().unwrap().is_empty(),
            "{label}: {:#}",
            d["findings"]
        );
        last = d;
    }
    last
}
