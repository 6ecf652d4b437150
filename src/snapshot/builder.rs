//! The per-snapshot `Builder` that the files beside it extend (each adds the methods of its
//! question: waits, holders, GIL, C locks, checkouts, probe, writes), the frame view they
//! share, and the imports they all use (re-exported here for them, so each can
//! `use super::builder::*`). It names no file beside it: they build on it.

pub(super) use std::collections::{BTreeMap, HashMap, HashSet};

pub(super) use super::mp_view::MpView;
pub(super) use crate::cpython::objects::Objects;
pub(super) use crate::cpython::threads::{ActiveWith, RawFrame, RawThread, Walker};
pub(super) use crate::model::*;
pub(super) use crate::target::procfs::{self, KernelThread};
pub(super) use crate::target::taskfiles::TaskFiles;

/// How many innermost frames are searched for the object a thread waits on.
pub(super) const WAIT_SEARCH_FRAMES: usize = 6;

pub(super) struct Builder<'w, 'a> {
    pub(super) pid: i32,
    pub(super) with_locals: bool,
    pub(super) with_writes: bool,
    pub(super) walker: &'w Walker<'a>,
    pub(super) locks: BTreeMap<usize, Lock>,
    pub(super) live_idents: HashSet<u64>,
    pub(super) mp: Option<MpView>,
    pub(super) task_files: &'w mut TaskFiles,
    pub(super) runtime_region: Option<(usize, usize)>,
    /// Read from a core: `/proc` knows nothing of this process (its pid may be another's now).
    pub(super) frozen: bool,
    /// The C library, whose lock layouts `native` knows.
    pub(super) libc: crate::native::Libc,
    /// C locks recognised around waited futexes, by address, until their owners are resolved.
    pub(super) c_locks: BTreeMap<usize, crate::native::CLock>,
    /// Futex waits matched to lock objects, kept while the same wait lasts (`waits`).
    pub(super) wait_matches: &'w mut super::wait_matches::WaitMatches,
}

pub(super) struct FrameView<'r> {
    pub(super) raw: &'r RawFrame,
    pub(super) frame: Frame,
}

pub(super) fn is_function(f: &FrameView, file: &str, function: &str) -> bool {
    short_file(&f.frame.file) == file
        && (f.frame.function == function || f.frame.function.ends_with(&format!(".{function}")))
}

/// `Event.wait` for a frame named `wait` whose `self` is an Event (3.8-3.10 code has no qualname).
pub(super) fn qualified(
    function: &str,
    _locals: &[String],
    raw: &RawFrame,
    walker: &Walker,
) -> String {
    if function.contains('.') {
        return function.to_string();
    }
    match walker
        .local(raw, "self")
        .and_then(|s| walker.objs.type_name(s).ok())
    {
        Some(ty) => format!("{ty}.{function}"),
        None => function.to_string(),
    }
}

impl<'w, 'a> Builder<'w, 'a> {
    pub(super) fn objs(&self) -> &Objects<'a> {
        &self.walker.objs
    }

    pub(super) fn lock_kind(&self, obj: usize) -> Option<LockKind> {
        match self.objs().type_name_rc(obj).ok()?.as_ref() {
            "_thread.lock" => Some(LockKind::Lock),
            "_thread.RLock" => Some(LockKind::RLock),
            _ => None,
        }
    }

    /// The name a `with` gives what it took and the site of its statement (the frame's own
    /// line where the statement is not known): a holder's evidence.
    pub(super) fn with_site(&self, fv: &FrameView, with: &ActiveWith) -> (Option<String>, String) {
        let (name, line) = self.walker.with_statement(fv.raw, with);
        let site = Frame {
            line: line.unwrap_or(fv.frame.line),
            ..fv.frame.clone()
        }
        .site();
        (name, site)
    }

    pub(super) fn ensure_lock(&mut self, addr: usize, kind: LockKind) -> &mut Lock {
        let pid = self.pid;
        self.locks.entry(addr).or_insert_with(|| Lock {
            name: None,
            permits: None,
            id: lock_id(pid, addr),
            pid,
            address: format!("{addr:#x}"),
            kind,
            names: Vec::new(),
            locked: None,
            holders: Vec::new(),
            waiters: Vec::new(),
            module: None,
            shared: None,
            contradictions: Vec::new(),
            python_type: None,
            readers: None,
        })
    }

    pub(super) fn add_name(&mut self, addr: usize, name: Option<&String>, site: &str) {
        if let (Some(name), Some(lock)) = (name, self.locks.get_mut(&addr)) {
            let n = LockName {
                how: NameHow::Local,
                name: name.clone(),
                frame: site.to_string(),
            };
            if !lock.names.contains(&n) {
                lock.names.push(n);
            }
        }
    }
}
