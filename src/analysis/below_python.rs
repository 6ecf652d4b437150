//! How the report names what lies below Python (C locks, the GIL, a dead owner TID) and the
//! advice for a cycle through the GIL: words only, shared by the detectors and the reports.
//! A leaf: it imports nothing but the model.

use crate::model::*;

/// Advice for a deadlock cycle that passes through the GIL.
pub const GIL_CYCLE_ADVICE: &str = "A thread keeps the GIL while it blocks in C (a ctypes.PyDLL call, or a C extension that does not release the GIL around a blocking call) on something only a thread waiting for the GIL can release: release the GIL around blocking C calls (ctypes.CDLL, Py_BEGIN_ALLOW_THREADS).";

/// The report's word for a C lock or the GIL: "C mutex 0x7f.. (pthread_mutex_t)", "the GIL"
/// (or "the GIL of interpreter 1");
/// a rwlock held for reading says its readers are counted, not known.
pub fn below_python_label(l: &Lock) -> Option<String> {
    match l.kind {
        // A subinterpreter's own GIL says whose it is.
        LockKind::Gil => Some(l.name.clone().unwrap_or_else(|| "the GIL".into())),
        LockKind::PthreadMutex => Some(format!("C mutex {} (pthread_mutex_t)", l.address)),
        LockKind::PthreadRwlock => Some(match l.readers_note() {
            Some(note) => format!("C rwlock {} (pthread_rwlock_t), {note}", l.address),
            None => format!("C rwlock {} (pthread_rwlock_t)", l.address),
        }),
        _ => None,
    }
}

/// A C lock's owner that is no Python thread, by its TID: gone, or a thread running no Python.
pub fn c_owner_label(h: &Holder) -> Option<String> {
    let tid = h.owner_ident?;
    Some(match h.process {
        Some(_) => format!("TID {tid} (a thread running no Python)"),
        None => format!("TID {tid}, which no longer exists"),
    })
}

/// The id of an owner that is no thread of the process, known only by its TID: `PID:tid:TID`.
pub fn gone_owner_id(pid: i32, tid: u64) -> String {
    format!("{pid}:tid:{tid}")
}
