//! How a finding names a thread: by its name, else its TID, with its process when the
//! snapshot spans several. Shared by the detectors and the advice they give; it may not
//! import either.

use crate::snapshot::Snapshot;

pub fn thread_label(snap: &Snapshot, id: &str) -> String {
    let label = thread_label_in_process(snap, id);
    match snap.thread(id) {
        Some(t) if snap.processes.len() > 1 => format!("{label} of process {}", t.pid),
        _ => label,
    }
}

fn thread_label_in_process(snap: &Snapshot, id: &str) -> String {
    match snap.thread(id) {
        Some(t) => match &t.name {
            Some(n) => format!("\"{n}\""),
            None => format!(
                "thread {}",
                t.native_id
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| t.thread_id.to_string())
            ),
        },
        None => id.to_string(),
    }
}
