//! `gridlock --version`, `completions` and `man`: generated from the command line, checked
//! through the real binary.

mod support;

use support::gridlock;

fn stdout(args: &[&str]) -> (i32, String) {
    let out = gridlock(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn long_version_names_every_cpython_it_reads_and_short_version_stays_one_line() {
    let (code, long) = stdout(&["--version"]);
    assert_eq!(code, 0);
    assert!(long.starts_with("gridlock 0."), "{long}");
    let versions = gridlock::cpython::supported_versions();
    assert!(versions.contains(&"3.8".to_string()), "{versions:?}");
    for v in &versions {
        assert!(
            long.contains(&format!("{v},")) || long.contains(&format!("{v} ")),
            "{v} in {long}"
        );
    }
    assert!(long.contains("Free-threaded"), "{long}");
    let (code, short) = stdout(&["-V"]);
    assert_eq!(code, 0);
    assert_eq!(short.lines().count(), 1, "{short}");
}

#[test]
fn completions_for_bash_zsh_and_fish_cover_the_subcommands() {
    for (shell, marker) in [
        ("bash", "_gridlock()"),
        ("zsh", "#compdef gridlock"),
        ("fish", "complete -c gridlock"),
    ] {
        let (code, script) = stdout(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(script.contains(marker), "{shell}: {script}");
        for sub in ["dump", "run", "record", "top", "hang-after"] {
            assert!(script.contains(sub), "{shell} completes {sub}");
        }
    }
    let out = gridlock(&["completions", "ksh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_prints_gridlock_1_and_writes_one_page_per_subcommand() {
    let (code, page) = stdout(&["man"]);
    assert_eq!(code, 0);
    assert!(page.contains(".TH gridlock 1"), "{page}");
    assert!(page.contains("gridlock\\-run(1)"), "{page}");
    let dir = std::env::temp_dir().join(format!("gridlock-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, _) = stdout(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    for page in [
        "gridlock.1",
        "gridlock-dump.1",
        "gridlock-run.1",
        "gridlock-record.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_default();
        assert!(text.contains(".TH"), "{page}: {text}");
    }
    let run = std::fs::read_to_string(dir.join("gridlock-run.1")).unwrap();
    assert!(run.contains("hang\\-after"), "{run}");
    let _ = std::fs::remove_dir_all(&dir);
    let out = gridlock(&["man", "--out-dir", "/nonexistent/gridlock-man"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one clear sentence: {err}");
}
