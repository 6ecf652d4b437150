//! Which object a name-and-attributes path (`self.lock`, `backend_slots`, a closure's `sem`)
//! names in one frame, as the frame's names are bound now: a local, a cell's content, or a
//! module global, then each attribute in turn (looked up on the class where the instance
//! lacks it). It reads memory only; it decides nothing about what the object is.

use super::bytecode::{Path, Root};
use super::threads::{RawFrame, Walker};

/// A cell object's `ob_ref`, after its header.
const CELL_REF: usize = 16;

impl Walker<'_> {
    /// The object `path` names in `frame`, or `None` where a step cannot be read.
    pub fn resolve_in_frame(&self, frame: &RawFrame, path: &Path) -> Option<usize> {
        let objs = &self.objs;
        let mut obj = match &path.root {
            Root::Local(n) => self.local(frame, n)?,
            Root::Deref(n) => {
                let cell = self.local(frame, n)?;
                if objs.type_name(cell).ok()? == "cell" {
                    objs.mem.ptr(cell + CELL_REF).ok().filter(|p| *p != 0)?
                } else {
                    cell
                }
            }
            Root::Global(n) => {
                let globals = self.frame_globals(frame)?;
                objs.dict_get(globals, n).ok()??
            }
        };
        for a in &path.attrs {
            obj = match objs.attr(obj, a).ok()? {
                Some(v) => v,
                None => objs.attr(objs.type_of(obj).ok()?, a).ok()??,
            };
        }
        Some(obj)
    }

    /// The module globals dict of a frame (`f_globals`).
    pub fn frame_globals(&self, frame: &RawFrame) -> Option<usize> {
        let off = self.objs.layout.offsets.frame_globals;
        let d = self.objs.mem.ptr(frame.addr + off).ok()?;
        (self.objs.type_name(d).ok()? == "dict").then_some(d)
    }
}
