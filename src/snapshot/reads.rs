//! The shared locations a thread reads in order to mutate what they hold (for `record`'s
//! read/write races): an item write through a name chain first loads its container from the
//! chain's last link, `self.results.append(x)` loads `self.results`, `results[k] = v` loads
//! the global `results`. The mutation lands in whatever object that link held at the load, so
//! another thread replacing the link (`self.results = []`) under a lock the reader does not
//! hold can lose it. Derived from the writes `cpython::writes` decodes; judges no race.

use super::builder::*;
use super::writes::{code_site, Scope};
use crate::cpython::bytecode::{Path, Root, WriteTarget};
use crate::cpython::writes::CodeWrite;

/// Containers whose in-place mutation through a replaced link is lost: the plain ones whose
/// item writes are judged, and `deque`, thread-safe itself but not the link to it.
const MUTATED_IN_PLACE: &[&str] = &[
    "list",
    "dict",
    "set",
    "bytearray",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.deque",
];

impl<'w, 'a> Builder<'w, 'a> {
    /// The read an item write makes of the link holding its container, as an access of that
    /// link; `None` for a container held in a local, one that cannot be resolved, or one not
    /// shared (under construction, thread-local, or an attribute on its class).
    pub(super) fn container_read(
        &self,
        scope: Scope,
        w: &CodeWrite,
        evidence: WriteEvidence,
        guards: Vec<GuardLock>,
        constructing: &HashSet<usize>,
    ) -> Option<WriteAccess> {
        let WriteTarget::Item { container, .. } = &w.target else {
            return None;
        };
        let objs = self.objs();
        let held = self.resolve(scope, container)?;
        if !MUTATED_IN_PLACE.contains(&&*objs.type_name_rc(held).ok()?) {
            return None;
        }
        let (location, name, through_self) = match container.attrs.split_last() {
            None => match &container.root {
                Root::Global(name) => self.global_location(scope, name)?,
                // A local or a closure's cell: no other thread names it.
                _ => return None,
            },
            Some((attr, prefix)) => {
                let owner = Path {
                    root: container.root.clone(),
                    attrs: prefix.to_vec(),
                };
                self.attr_location(scope, &owner, attr, constructing)?
            }
        };
        let site = code_site(scope.code(), w.line);
        Some(WriteAccess {
            location,
            name,
            through_self,
            site,
            evidence,
            guards,
            adds_or_takes: false,
            access: AccessKind::ReadThenMutate,
        })
    }
}
