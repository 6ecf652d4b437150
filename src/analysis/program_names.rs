//! What do the window-wide findings of a stream (lock-order inversions, races) call their
//! locks and objects, as the program names them? Read once per process from its live session
//! (`snapshot::late_names`) when a recording ends (`record`, `record --tree`, `run`'s report),
//! or now and then off the screen's path (`top`), and given to that process's accumulator.
//! When the search stopped at its bounds the process gets the note a snapshot's search gives.
//! This file decides nothing about findings and reads no memory itself.

use std::collections::HashMap;

use super::Accumulator;
use crate::crossproc::Tree;
use crate::model::Document;
use crate::snapshot::late_names::{names_now, LateNames};
use crate::snapshot::names::NOTE_PREFIX;
use crate::snapshot::Session;

/// Names `acc`'s window-wide findings' objects from `session`; returns the search's note.
pub fn name_latent(acc: &mut Accumulator, session: &Session) -> Option<String> {
    let LateNames { names, note } = names_now(session, &acc.latent_objects());
    acc.set_program_names(&names);
    note
}

/// The same for every process of a tree, each by its own session (a process gone has none);
/// the notes by process.
pub fn name_latent_tree(
    per_process: &mut HashMap<i32, Accumulator>,
    tree: &Tree,
) -> Vec<(i32, String)> {
    let mut notes = Vec::new();
    for (pid, acc) in per_process.iter_mut() {
        let Some(session) = tree.targets.get(pid) else {
            continue;
        };
        if let Some(note) = name_latent(acc, session) {
            notes.push((*pid, note));
        }
    }
    notes
}

/// Gives process `pid` of the document the search's note, unless it already says the
/// search stopped (one such note per process).
pub fn add_note(doc: &mut Document, pid: i32, note: String) {
    for p in doc.processes.iter_mut().filter(|p| p.pid == pid) {
        if !p.notes.iter().any(|n| n.starts_with(NOTE_PREFIX)) {
            p.notes.push(note.clone());
        }
    }
}

/// `top`: names read so far, and which objects were already looked for, so that each
/// window-wide finding's objects are searched for once, at most every `every`.
pub struct LiveNames {
    names: HashMap<usize, String>,
    looked: std::collections::HashSet<usize>,
    last: Option<std::time::Instant>,
    every: std::time::Duration,
}

impl LiveNames {
    pub fn new(every: std::time::Duration) -> LiveNames {
        LiveNames {
            names: HashMap::new(),
            looked: Default::default(),
            last: None,
            every,
        }
    }

    /// When objects of `acc`'s findings were not looked for yet and the last search is
    /// `every` old: one bounded search for them from `session`, its names given to `acc`.
    pub fn refresh(&mut self, acc: &mut Accumulator, session: &Session) {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        let wanted: Vec<(usize, Option<usize>)> = acc
            .latent_objects()
            .into_iter()
            .filter(|(a, _)| !self.looked.contains(a))
            .collect();
        if wanted.is_empty() {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let found = names_now(session, &wanted);
        // A search that stopped early is tried again for what it missed.
        if found.note.is_none() {
            self.looked.extend(wanted.iter().map(|(a, _)| *a));
        }
        self.looked.extend(found.names.keys().copied());
        self.names.extend(found.names);
        acc.set_program_names(&self.names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_gets_one_note_of_a_search_that_stopped() {
        let doc_json = serde_json::json!({
            "schema_version": 1, "tool": {"name": "gridlock", "version": "0"},
            "command": {"name": "record", "args": []},
            "window": {"started": "", "ended": "", "snapshots": 1, "seconds": 1.0},
            "processes": [{"pid": 7, "ppid": 1, "name": "python3", "cmdline": "",
                           "python_version": "3.12.1", "exited": false, "notes": []}],
            "threads": [], "locks": [], "tasks": [], "findings": [], "loops": []
        });
        let mut doc: Document = serde_json::from_value(doc_json).unwrap();
        let note = |n| format!("{NOTE_PREFIX} the search stopped after {n} objects");
        add_note(&mut doc, 7, note(10));
        add_note(&mut doc, 7, note(20));
        add_note(&mut doc, 8, note(30));
        assert_eq!(doc.processes[0].notes, [note(10)]);
    }
}
