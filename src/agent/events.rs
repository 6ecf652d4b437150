//! What the agent writes besides metrics: one JSON line per finding that appears or clears
//! (`--events FILE|-`), carrying the whole report document of that process, and the last
//! report of each stuck process (`--report-dir DIR`, one `PID.json` each, replaced whole).
//! Nothing here decides what a finding is.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::{Document, Finding};

/// Where event lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSink {
    Stdout,
    File(PathBuf),
}

impl EventSink {
    /// `-` is stdout, anything else a file appended to.
    pub fn parse(s: &str) -> EventSink {
        if s == "-" {
            EventSink::Stdout
        } else {
            EventSink::File(s.into())
        }
    }
}

/// Whether a finding began to persist or stopped (cleared, or its process exited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Appeared,
    Cleared,
}

/// One event line.
#[derive(Serialize)]
pub struct Event<'a> {
    pub event: Change,
    pub time: String,
    pub pid: i32,
    pub kind: crate::model::FindingKind,
    pub finding: &'a Finding,
    /// The process exited (the finding cleared with it).
    pub exited: bool,
    /// The process's report: the one the finding was found in (appeared) or the newest
    /// (cleared).
    pub document: &'a Document,
}

/// Event lines, written whole and flushed each (a collector tails the file).
pub struct Events {
    out: Box<dyn Write + Send>,
}

impl Events {
    pub fn open(sink: &EventSink) -> std::io::Result<Events> {
        let out: Box<dyn Write + Send> = match sink {
            EventSink::Stdout => Box::new(std::io::stdout()),
            EventSink::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        Ok(Events { out })
    }

    pub fn write(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}

/// `DIR/PID.json` holds the process's newest report; written to a temporary name and renamed,
/// so a reader never sees half of one.
pub fn keep_report(dir: &Path, pid: i32, doc: &Document) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{pid}.json.tmp"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    crate::report::json(doc, &mut file)?;
    file.flush()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(format!("{pid}.json")))
}
