//! How the cross-process links name a process node (`PID:p`), find a thread of the merged
//! snapshot, and say where a thread's own code waits.

use crate::model::*;
use crate::snapshot::Snapshot;

/// Where user code waits: the innermost frame outside the standard library's process and
/// thread plumbing (`Process.join`, `Connection.recv`, `Popen.wait`), else the innermost.
pub(super) fn user_site(t: &Thread) -> Option<String> {
    let library = |f: &Frame| {
        f.file.contains("/multiprocessing/")
            || matches!(
                short_file(&f.file),
                "subprocess.py" | "threading.py" | "queue.py"
            )
    };
    t.frames
        .iter()
        .find(|f| !library(f))
        .or(t.frames.first())
        .map(|f| f.site())
}

pub(super) fn process_node(pid: i32) -> String {
    format!("{pid}:p")
}

pub(super) fn thread_mut<'a>(snap: &'a mut Snapshot, id: &str) -> Option<&'a mut Thread> {
    snap.threads.iter_mut().find(|t| t.id == id)
}

/// Used by the graph: the node id of a process.
pub fn process_id(pid: i32) -> String {
    process_node(pid)
}
