//! Which files are Twisted's own code: a frame's file under Twisted's package path, told from
//! a program's file that merely sits under a directory named `twisted`. Paths only.

/// Whether a file is Twisted's own code (`.../twisted/internet/defer.py`), not a program's
/// file that merely sits under a directory named `twisted`.
pub(super) fn is_twisted_code(filename: &str) -> bool {
    const PACKAGES: [&str; 12] = [
        "internet/",
        "python/",
        "_threads/",
        "web/",
        "application/",
        "protocols/",
        "logger/",
        "cred/",
        "conch/",
        "names/",
        "spread/",
        "trial/",
    ];
    filename.match_indices("/twisted/").any(|(i, m)| {
        PACKAGES
            .iter()
            .any(|p| filename[i + m.len()..].starts_with(p))
    })
}
