//! Questions asked of a whole document: a thread, lock or task by id, the test a finding's
//! processes were running, and the sentences saying a report is incomplete (unmatched or
//! unmodelled threads, waits on a lock whose holders cannot be known). It reads the document;
//! it builds none of it.

use std::collections::BTreeMap;

use super::document::Document;
use super::findings::Finding;
use super::locks::Lock;
use super::processes::CurrentTest;
use super::tasks::Task;
use super::threads::{Thread, ThreadState};

impl Document {
    /// One sentence saying the report is incomplete and what to do, when some thread's
    /// kernel state could not be matched (`unmatched_threads`).
    pub fn unmatched_summary(&self) -> Option<String> {
        let first = self.unmatched_threads.first()?;
        let n = self.unmatched_threads.len();
        let (who, why) = match self.thread(first) {
            Some(t) => (
                t.name
                    .as_ref()
                    .map(|n| format!("\"{n}\""))
                    .unwrap_or_else(|| format!("thread {}", t.thread_id)),
                t.kernel_unmatched.clone().unwrap_or_default(),
            ),
            None => (first.clone(), String::new()),
        };
        let also = match n {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        let advice = if self.threads.iter().any(|t| t.namespace_tid.is_some()) {
            "; the target runs in another PID namespace: run gridlock on the host or in a \
             container that shares the target's PID namespace (docker run \
             --pid=container:NAME --cap-add SYS_PTRACE), with that namespace's /proc mounted"
        } else {
            ""
        };
        Some(format!(
            "the kernel state of {who}{also} could not be matched, so gridlock cannot tell \
             whether {} stuck: {why}{advice}",
            if n == 1 { "it is" } else { "they are" }
        ))
    }

    /// Threads blocked, for the whole window, in a syscall gridlock does not model (state
    /// `syscall`): they may be stuck or not, so no report about them may say "nothing found".
    pub fn unmodelled_threads(&self) -> Vec<&Thread> {
        self.threads
            .iter()
            .filter(|t| t.state == ThreadState::Syscall && t.syscall_name.is_some())
            .filter(|t| self.window.snapshots <= 1 || t.state_since <= self.window.started)
            .collect()
    }

    /// One sentence about `unmodelled_threads`, grouped by syscall: "2 threads blocked in
    /// flock(2), 1 in msgrcv(2): not modelled, ...".
    pub fn unmodelled_summary(&self) -> Option<String> {
        let threads = self.unmodelled_threads();
        if threads.is_empty() {
            return None;
        }
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &threads {
            *by.entry(t.syscall_name.as_deref().unwrap_or("?"))
                .or_default() += 1;
        }
        let parts: Vec<String> = by
            .iter()
            .enumerate()
            .map(|(i, (name, n))| {
                let call = if name.starts_with("syscall ") {
                    name.to_string()
                } else {
                    format!("{name}(2)")
                };
                match (i, n) {
                    (0, 1) => format!("1 thread blocked in {call}"),
                    (0, n) => format!("{n} threads blocked in {call}"),
                    (_, n) => format!("{n} in {call}"),
                }
            })
            .collect();
        Some(format!(
            "{}: not modelled, so gridlock cannot tell whether {} stuck",
            parts.join(", "),
            if threads.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        ))
    }

    /// Threads blocked, for the whole window, on a lock whose holders cannot be known: a C
    /// rwlock held for reading (glibc counts its readers, it records none of them). Whatever
    /// they wait for may never come, so no report about them may say "nothing found".
    pub fn unowned_waiters(&self) -> Vec<(&Thread, &Lock)> {
        self.threads
            .iter()
            .filter(|t| t.blocked)
            .filter(|t| self.window.snapshots <= 1 || t.state_since <= self.window.started)
            .filter_map(|t| {
                let lock = self.lock(t.waits_for.as_ref()?.target.as_deref()?)?;
                (lock.readers.is_some() && lock.holders.is_empty()).then_some((t, lock))
            })
            .collect()
    }

    /// One sentence about `unowned_waiters`, one clause per lock: "\"w\" waits for C rwlock
    /// 0x7f.. (pthread_rwlock_t), held for reading by 1 reader (glibc records no reader
    /// owners): ...".
    pub fn unowned_summary(&self) -> Option<String> {
        let waiters = self.unowned_waiters();
        let mut by_lock: BTreeMap<&str, (&Lock, Vec<String>)> = BTreeMap::new();
        for (t, lock) in &waiters {
            let who = t
                .name
                .as_ref()
                .map(|n| format!("\"{n}\""))
                .unwrap_or_else(|| format!("thread {}", t.thread_id));
            by_lock
                .entry(&lock.id)
                .or_insert((lock, Vec::new()))
                .1
                .push(who);
        }
        let parts: Vec<String> = by_lock
            .values_mut()
            .map(|(lock, who)| {
                who.sort();
                format!(
                    "{} wait{} for C rwlock {} (pthread_rwlock_t), {}",
                    who.join(" and "),
                    if who.len() == 1 { "s" } else { "" },
                    lock.address,
                    lock.readers_note().unwrap_or_default()
                )
            })
            .collect();
        (!parts.is_empty()).then(|| {
            format!(
                "{}: gridlock cannot tell whether {} stuck",
                parts.join("; "),
                if waiters.len() == 1 {
                    "it is"
                } else {
                    "they are"
                }
            )
        })
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
    pub fn thread(&self, id: &str) -> Option<&Thread> {
        self.threads.iter().find(|t| t.id == id)
    }
    pub fn lock(&self, id: &str) -> Option<&Lock> {
        self.locks.iter().find(|l| l.id == id)
    }

    /// The test that was running in the processes a finding involves (its processes, its
    /// threads' and its tasks' processes, in the document's order), if one said.
    pub fn finding_test(&self, f: &Finding) -> Option<&CurrentTest> {
        let pid_of = |id: &String| id.split(':').next().and_then(|p| p.parse::<i32>().ok());
        let pids: Vec<i32> = f
            .processes
            .iter()
            .copied()
            .chain(f.threads.iter().filter_map(pid_of))
            .chain(f.tasks.iter().filter_map(pid_of))
            .collect();
        self.processes
            .iter()
            .filter(|p| pids.contains(&p.pid))
            .find_map(|p| p.current_test.as_ref())
    }
}
