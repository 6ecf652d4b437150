//! A process of the document: what it runs, what gridlock could not read in it, the test it
//! was running, what can wake it when idle and its Celery app. It names only the Celery app.

use serde::{Deserialize, Serialize};

use super::celery::CeleryApp;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Process {
    pub pid: i32,
    pub ppid: Option<i32>,
    pub name: String,
    pub cmdline: String,
    pub python_version: String,
    pub exited: bool,
    /// When gridlock found it gone (RFC 3339), for a process that exited while it was being
    /// recorded; it exited after the window's last snapshot and before this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<String>,
    /// How gridlock found the interpreter: `searched` (py-spy read the binary's symbols or
    /// scanned its data) or `cached` (from a process of the tree running the same binary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter_found: Option<String>,
    /// What gridlock could not read in this process, or read without testing: an interpreter
    /// newer than the newest tested, a lock layout it did not recognise (that part is off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The test the process was running at its latest snapshot (pytest, unittest), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_test: Option<CurrentTest>,
    /// The core file this process was read from (`dump --core`), when it was not read live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    /// Every thread is blocked, yet the process is not stuck: it catches a signal someone
    /// outside can send, and its main thread waits where CPython runs the handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
    /// The process's Celery app (queues consumed, default queue, broker and backend), where
    /// one is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub celery: Option<CeleryApp>,
}

/// What can wake an idle process (`processes[].idle`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Idle {
    /// The signals it catches that could wake it (`SIGTERM`), SIGINT and faults aside.
    pub signals: Vec<String>,
    /// Where the main thread waits, which is where the handler runs (`function file:line`).
    pub site: Option<String>,
    /// One line for people: `waiting for SIGTERM's handler`.
    pub summary: String,
}

/// A test a process was running, and how gridlock knew.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CurrentTest {
    /// pytest's node id (`tests/test_x.py::TestY::test_z`) or unittest's id
    /// (`module.Class.test_method`).
    pub name: String,
    /// JUnit's classname and name for it, as pytest's `--junitxml` writes them
    /// (`tests.test_x.TestY`, `test_z`).
    pub classname: String,
    pub function: String,
    /// pytest's phase: `setup`, `call` or `teardown` (none for unittest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub source: TestSource,
}

/// Where a current test's name was read. A closed set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TestSource {
    /// `PYTEST_CURRENT_TEST` in the process's `os.environ`, read from its memory.
    OsEnviron,
    /// The innermost `test*` method of a `unittest.TestCase` on a thread's stack.
    Stack,
}

impl TestSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TestSource::OsEnviron => "os_environ",
            TestSource::Stack => "stack",
        }
    }
}

impl CurrentTest {
    /// `NAME (phase)  [source]`, for the text report.
    pub fn describe(&self) -> String {
        match &self.phase {
            Some(phase) => format!("{} ({phase})  [{}]", self.name, self.source.as_str()),
            None => format!("{}  [{}]", self.name, self.source.as_str()),
        }
    }
}
