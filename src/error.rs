//! Library errors. Each variant carries enough for a one-line message a user can act on,
//! passed in when it is built: this file imports nothing of the domain (it sits below all).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("no such process: {pid}")]
    NoSuchProcess { pid: i32 },

    #[error("process {pid} has exited (it is a zombie waiting to be reaped by its parent)")]
    Zombie { pid: i32 },

    #[error("process {pid} ({name}) is not a Python process: no CPython interpreter found in its memory maps")]
    NotPython { pid: i32, name: String },

    #[error("permission denied reading process {pid}: {hint}")]
    PermissionDenied { pid: i32, hint: String },

    /// `supported`: the versions gridlock reads (`3.8 to 3.15`), passed in by the caller:
    /// this file knows no CPython version.
    #[error("process {pid} runs CPython {version}, which gridlock does not support (supported: CPython {supported}; newer versions are attempted when they publish debug offsets)")]
    Unsupported {
        pid: i32,
        version: String,
        supported: String,
    },

    #[error("process {pid} runs a free-threaded CPython {version} build, which gridlock does not read yet: run the program on a default (GIL) build of CPython to inspect it")]
    FreeThreaded { pid: i32, version: String },

    #[error("process {pid} exited while gridlock was reading it")]
    TargetExited { pid: i32 },

    #[error("could not attach to process {pid}: {reason}")]
    Attach { pid: i32, reason: String },

    #[error("could not read process {pid} memory at {addr:#x} ({len} bytes): {source}")]
    Memory {
        pid: i32,
        addr: usize,
        len: usize,
        #[source]
        source: std::io::Error,
    },

    /// A core file that cannot be read as one (bad input: exit 2).
    #[error("cannot use core file {path}: {reason}")]
    BadCore { path: String, reason: String },

    #[error("unexpected object layout: {0}")]
    Layout(String),

    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What gridlock inside a container needs to read a process next to it.
const CONTAINER_HINT: &str = "gridlock runs in a container: give it CAP_SYS_PTRACE and the target's PID namespace (docker run --cap-add SYS_PTRACE --pid=container:TARGET_CONTAINER, or --pid=host; in Kubernetes, securityContext.capabilities.add: [SYS_PTRACE] and shareProcessNamespace: true), and run it as root or as the target's user";

/// Whether gridlock itself runs in a container (Docker's, Podman's marker file, or a
/// container runtime named in its cgroup).
fn in_container() -> bool {
    let marked = ["/.dockerenv", "/run/.containerenv"]
        .iter()
        .any(|f| std::path::Path::new(f).exists());
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    marked
        || ["docker", "kubepods", "containerd", "libpod", "lxc"]
            .iter()
            .any(|k| cgroup.contains(k))
}

/// How to fix a ptrace permission problem on Linux.
pub fn permission_hint() -> String {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .map(|s| s.trim().to_string());
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut hint = String::from(match (in_container(), root) {
        (true, _) => CONTAINER_HINT,
        (false, true) => "gridlock already runs as root: the target may live in another user namespace, or gridlock runs in a container that lacks CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE, sharing the target's PID namespace with --pid=container:NAME or --pid=host)",
        (false, false) => "run gridlock as root (sudo), or as the target's user with CAP_SYS_PTRACE (sudo setcap cap_sys_ptrace+ep $(which gridlock))",
    });
    match scope.as_deref() {
        Some("1") => hint.push_str(
            "; kernel.yama.ptrace_scope is 1, so non-root users may only read their own children: set it to 0 with `sudo sysctl kernel.yama.ptrace_scope=0`",
        ),
        Some("2") => hint.push_str("; kernel.yama.ptrace_scope is 2: only root (CAP_SYS_PTRACE) may attach"),
        Some("3") => hint.push_str("; kernel.yama.ptrace_scope is 3: attaching is disabled until reboot"),
        _ => {}
    }
    hint
}
