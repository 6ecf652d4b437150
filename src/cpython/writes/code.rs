//! What one code object's writes and calls are (with the guards around each), and whether a
//! frame at one instruction can still reach one with its names bound as they are now. It
//! decodes no bytecode (that is `decode`'s) and reads no memory.

use crate::cpython::bytecode::{Path, Root, WriteTarget};

/// A lock expression guarding a write: `self.lock` for `with self.lock:`. `path` is `None`
/// where the expression is not a name chain (`with self.lock_for(key):`): the guard is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub path: Option<Path>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeWrite {
    /// Index of the instruction that writes.
    pub index: usize,
    pub line: Option<u32>,
    pub target: WriteTarget,
    /// Innermost first.
    pub guards: Vec<Guard>,
}

/// A function this code names in order to call it: `register` (a global) or `meter.add`
/// (a method looked up on `meter`), with the locks guarding that point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCall {
    pub index: usize,
    /// The object the method is looked up on; `None` for a global function.
    pub receiver: Option<Path>,
    pub name: String,
    pub guards: Vec<Guard>,
}

/// Every write of one code object, with what reachability needs.
#[derive(Debug, Clone, Default)]
pub struct CodeWrites {
    pub writes: Vec<CodeWrite>,
    pub calls: Vec<CodeCall>,
    /// Loops as (first instruction, backward jump) index pairs.
    pub(super) loops: Vec<(usize, usize)>,
    /// Instructions that bind a name a path can start from.
    pub(super) rebinds: Vec<(usize, Root)>,
    /// Exception handlers' code, as index ranges: run only while an exception is handled.
    pub(super) handlers: Vec<(usize, usize)>,
}

impl CodeWrites {
    fn rebound(&self, root: &Root, from: usize, to: usize) -> bool {
        self.rebinds
            .iter()
            .any(|(k, r)| r == root && from <= *k && *k < to)
    }

    /// Whether a frame whose current instruction is `at` can still make `w` with the names its
    /// target and guards start from bound as they are now: `w` lies ahead of `at`, or in a
    /// loop around `at`, and no instruction on the way binds those names again.
    pub fn reachable(&self, at: usize, w: &CodeWrite) -> bool {
        let mut roots: Vec<&Root> = Vec::new();
        match &w.target {
            WriteTarget::Global(_) => {}
            WriteTarget::Attr { object, .. } => roots.push(&object.root),
            WriteTarget::Item { container, .. } => roots.push(&container.root),
        }
        roots.extend(
            w.guards
                .iter()
                .filter_map(|g| g.path.as_ref().map(|p| &p.root)),
        );
        self.reachable_index(at, w.index, &roots)
    }

    /// `reachable`, for a call.
    pub fn reachable_call(&self, at: usize, c: &CodeCall) -> bool {
        self.reachable_index(at, c.index, &call_roots(c))
    }

    /// `reachable_call`, with the names the call's arguments start from (`q` and `k` in
    /// `take(q, self.queues[k])`) also bound as they are now: their values now are the ones
    /// the call will pass.
    pub fn reachable_call_passing(
        &self,
        at: usize,
        c: &CodeCall,
        args: &super::arguments::CallArguments,
    ) -> bool {
        let mut roots = call_roots(c);
        roots.extend(args.roots());
        self.reachable_index(at, c.index, &roots)
    }

    fn reachable_index(&self, at: usize, index: usize, roots: &[&Root]) -> bool {
        // A handler's code runs only while its exception is handled: not from outside it.
        let inside = |i: usize| {
            self.handlers
                .iter()
                .filter(|(s, e)| *s <= i && i <= *e)
                .copied()
                .collect::<Vec<_>>()
        };
        let here = inside(at);
        if inside(index).iter().any(|h| !here.contains(h)) {
            return false;
        }
        let clear = |spans: &[(usize, usize)]| {
            !roots
                .iter()
                .any(|r| spans.iter().any(|(a, b)| self.rebound(r, *a, *b)))
        };
        if index >= at {
            return clear(&[(at + 1, index)]);
        }
        // Behind the current instruction: only through a loop around both, the tightest first.
        self.loops
            .iter()
            .filter(|(t, j)| *t <= index && *j >= at)
            .min_by_key(|(t, j)| j - t)
            .is_some_and(|(t, j)| clear(&[(at + 1, j + 1), (*t, index)]))
    }
}

/// The names a call's receiver and guards start from.
fn call_roots(c: &CodeCall) -> Vec<&Root> {
    let mut roots: Vec<&Root> = c.receiver.iter().map(|p| &p.root).collect();
    roots.extend(
        c.guards
            .iter()
            .filter_map(|g| g.path.as_ref().map(|p| &p.root)),
    );
    roots
}
