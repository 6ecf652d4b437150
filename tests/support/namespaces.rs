//! Targets in their own PID namespace, as in a container: a fixture started under
//! `unshare --pid --fork --mount-proc` with a host interpreter, or under `unshare --pid
//! --fork --mount` plus a chroot into the Debian unstable root (`scripts/debian-root.sh`)
//! with that root's own interpreter. Python is then unshare's child and PID 1 of its
//! namespace: the returned target's `pid` is Python's host PID, and dropping it kills the
//! whole namespace. Where namespaces cannot be made here, the start returns `None` after
//! printing a note (the test then skips).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{gridlock_bin, Interpreter, Target};

/// A target in its own PID namespace. Its `target.pid` is Python's host PID; `target.child`
/// is unshare, killed and reaped after the namespace's first process (Python) is killed.
pub struct NsTarget {
    pub target: Target,
}

impl Drop for NsTarget {
    fn drop(&mut self) {
        // The namespace's init: killing it kills everything in the namespace.
        unsafe {
            libc::kill(self.target.pid, libc::SIGKILL);
        }
    }
}

/// Whether this process may make PID and mount namespaces (root, no seccomp filter in the
/// way); the reason printed otherwise.
pub fn unshare_permitted() -> Result<(), String> {
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "unshare --pid --fork --mount-proc is not permitted here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("no unshare command here: {e}")),
    }
}

/// Whether namespaces can be made here; prints a note (the test then skips) when not.
pub fn permitted() -> bool {
    unshare_permitted()
        .map_err(|why| note("a test of targets in PID namespaces", &why))
        .is_ok()
}

fn note(what: &str, why: &str) {
    eprintln!("note: skipped {what}: {why}");
}

/// Start `script` with `interp` inside `unshare --pid --fork --mount-proc`, wait for its
/// READY line and for its threads to settle. `None` (with a printed note) where namespaces
/// are not permitted.
pub fn start_in_pid_namespace(
    interp: &Interpreter,
    script: &Path,
    args: &[&str],
) -> Option<NsTarget> {
    let target = spawn_in_pid_namespace(interp, script, args)?;
    target.target.settle();
    Some(target)
}

/// Like `start_in_pid_namespace`, without waiting for the threads to settle (busy fixtures).
pub fn spawn_in_pid_namespace(
    interp: &Interpreter,
    script: &Path,
    args: &[&str],
) -> Option<NsTarget> {
    if let Err(why) = unshare_permitted() {
        note("a target in a PID namespace", &why);
        return None;
    }
    let mut cmd = unshare(&["--pid", "--mount-proc"]);
    cmd.arg(&interp.path).arg(script).args(args);
    Some(adopt(Target::spawn_command(
        cmd,
        &format!("{} in a PID namespace", interp.label),
    )))
}

/// The Debian unstable root (`scripts/debian-root.sh`, run here: it makes the root if
/// missing and mounts what it needs), or why it is not available.
pub fn debian_root() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/debian-root.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let root = PathBuf::from(printed.lines().last().unwrap_or(""));
    if out.status.success() && root.is_absolute() && root.join("usr/bin").is_dir() {
        Ok(root)
    } else {
        Err(format!(
            "no Debian unstable root: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Start `script` (a path inside this repository) with the Debian root's `python` (e.g.
/// `python3.13`) inside `unshare --pid --fork --mount` and a chroot into the root, wait for
/// READY and for the threads to settle. `None`, with a printed note, where namespaces or the
/// root are not available.
pub fn start_in_debian_root(python: &str, script: &Path, args: &[&str]) -> Option<NsTarget> {
    let what = format!("{python} in the Debian root in a PID namespace");
    let root = debian_root_for(&what, python)?;
    let target = adopt(Target::spawn_command(
        in_debian_root(&["--pid"], &root, python, script, args),
        &what,
    ));
    target.target.settle();
    Some(target)
}

/// The Debian root when namespaces can be made and it has `python`; `None` after a note.
fn debian_root_for(what: &str, python: &str) -> Option<PathBuf> {
    if let Err(why) = unshare_permitted() {
        note(what, &why);
        return None;
    }
    let root = match debian_root() {
        Ok(r) => r,
        Err(why) => {
            note(what, &why);
            return None;
        }
    };
    if !root.join("usr/bin").join(python).exists() {
        note(what, &format!("{} has no {python}", root.display()));
        return None;
    }
    Some(root)
}

/// `unshare --fork --mount` (plus `namespaces`) running `python script args` chrooted into
/// `root`. Nothing is copied into the root: the repository is bind-mounted at the root's
/// `/mnt` and a `proc` of the new namespaces at its `/proc`, both seen only inside the new
/// mount namespace, so the fixture's path is one the host cannot resolve.
fn in_debian_root(
    namespaces: &[&str],
    root: &Path,
    python: &str,
    script: &Path,
    args: &[&str],
) -> Command {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inside = Path::new("/mnt").join(script.strip_prefix(repo).expect("a repository file"));
    let mut cmd = unshare(namespaces);
    cmd.args([
        "sh",
        "-c",
        r#"repo=$1 root=$2; shift 2
           mount --bind "$repo" "$root/mnt" && mount -t proc proc "$root/proc" &&
           exec chroot "$root" "$@""#,
        "sh",
    ])
    .arg(repo)
    .arg(root)
    .arg(python)
    .arg(inside)
    .args(args);
    cmd
}

/// `unshare --fork --mount` (private mounts) with `extra` options; unshare kills its child
/// when it dies.
fn unshare(extra: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--fork", "--mount", "--kill-child"])
        .args(extra)
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// Point a started unshare's target at its child, the namespace's first process (Python once
/// it printed READY).
fn adopt(mut target: Target) -> NsTarget {
    let unshare = target.pid;
    let deadline = Instant::now() + Duration::from_secs(10);
    let child = loop {
        let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            break pid.parse().expect("a pid");
        }
        assert!(
            Instant::now() < deadline,
            "unshare {unshare} has no child after READY"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    target.pid = child;
    NsTarget { target }
}

/// Whether gridlock finds the bank-transfer deadlock with the Debian root's `python` outside
/// a PID namespace (chrooted in a private mount namespace only): the namespace tests with
/// that interpreter are meaningful only once it does. Prints a note when it does not.
pub fn gridlock_supports_debian(python: &str) -> bool {
    let what = format!("{python} in the Debian root");
    let Some(root) = debian_root_for(&what, python) else {
        return false;
    };
    let bank = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bank_transfer.py");
    let target = adopt(Target::spawn_command(
        in_debian_root(&[], &root, python, &bank, &[]),
        &what,
    ));
    target.target.settle();
    let out = Command::new(gridlock_bin())
        .args(["dump", &target.target.pid.to_string(), "--json"])
        .output()
        .expect("run gridlock");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let deadlock = doc["findings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["kind"] == "deadlock"));
    if out.status.code() != Some(3) || !deadlock {
        note(
            &what,
            &format!(
                "gridlock does not find the bank-transfer deadlock there yet, outside a PID \
                 namespace (exit {:?}{})",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default()
            ),
        );
        return false;
    }
    true
}
