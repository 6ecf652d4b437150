//! CPython's own lock/threading test modules give the same outcomes with and without the
//! probe. Slow (minutes): `cargo test --test probe_suites -- --ignored`.
use std::process::Command;

#[test]
#[ignore]
fn cpython_lock_tests_pass_the_same_with_the_probe() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/probe_cpython_suites.sh");
    let out = Command::new("sh").arg(script).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The per-version counts, seen with --nocapture.
    println!("{text}");
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
