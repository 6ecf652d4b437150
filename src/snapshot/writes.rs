//! The shared locations a thread writes on its current line, by identity (for `record`'s
//! race candidates). Read only from off-CPU threads; standard-library code is skipped.

use super::*;
use crate::cpython::bytecode;

/// Code from the standard library (threading, queue, importlib...), whose internal writes are
/// never the user's race.
pub(super) fn is_library_file(file: &str) -> bool {
    file.starts_with('<') || file.contains("/lib/python3.")
}

impl<'w, 'a> Builder<'w, 'a> {
    /// The shared locations the innermost user frame writes on its current line, by identity.
    pub(super) fn writes(&self, frames: &[FrameView]) -> Vec<WriteAccess> {
        let Some(fv) = frames.iter().find(|f| !is_library_file(&f.frame.file)) else {
            return Vec::new();
        };
        let code = &fv.raw.code;
        let Some(at) = self.walker.current_index(fv.raw) else {
            return Vec::new();
        };
        let Some(line) = code.line_of_instruction(at) else {
            return Vec::new();
        };
        let same_line = |i: usize| code.line_of_instruction(i) == Some(line);
        let mut start = at;
        while start > 0 && same_line(start - 1) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < code.instructions.len() && same_line(end) {
            end += 1;
        }
        let module_level = code.name == "<module>";
        let site = Frame {
            line,
            ..fv.frame.clone()
        }
        .site();
        let objs = self.objs();
        let mut out = Vec::new();
        for w in bytecode::writes_in(
            self.walker.dialect(),
            &code.instructions,
            start..end,
            at,
            &code.names,
            module_level,
        ) {
            let (location, name) = match w {
                bytecode::WriteTarget::Global(name) => {
                    let Ok(globals) = objs
                        .mem
                        .ptr(fv.raw.addr + objs.layout.offsets.frame_globals)
                    else {
                        continue;
                    };
                    (format!("global {globals:#x}:{name}"), name)
                }
                bytecode::WriteTarget::Attr { object, attr } => {
                    let Some(obj) = self.resolve(fv.raw, &object) else {
                        continue;
                    };
                    if self.thread_local(obj) {
                        continue;
                    }
                    (format!("attr {obj:#x}:{attr}"), format!("{object}.{attr}"))
                }
                bytecode::WriteTarget::Item { container } => {
                    let Some(obj) = self.resolve(fv.raw, &container) else {
                        continue;
                    };
                    if self.thread_local(obj) {
                        continue;
                    }
                    (format!("item {obj:#x}"), format!("{container}[...]"))
                }
            };
            out.push(WriteAccess {
                location,
                name,
                site: site.clone(),
            });
        }
        out
    }

    pub(super) fn thread_local(&self, obj: usize) -> bool {
        matches!(
            self.objs().type_name(obj).as_deref(),
            Ok("_thread._local") | Ok("_threading_local.local")
        )
    }

    /// The object a name-and-attributes path refers to in a frame.
    pub(super) fn resolve(&self, frame: &RawFrame, path: &bytecode::Path) -> Option<usize> {
        let objs = self.objs();
        let mut obj = match &path.root {
            bytecode::Root::Local(n) => self.walker.local(frame, n)?,
            bytecode::Root::Deref(n) => {
                let cell = self.walker.local(frame, n)?;
                if objs.type_name(cell).ok()? == "cell" {
                    objs.mem.ptr(cell + 16).ok().filter(|p| *p != 0)?
                } else {
                    cell
                }
            }
            bytecode::Root::Global(n) => {
                let globals = objs
                    .mem
                    .ptr(frame.addr + objs.layout.offsets.frame_globals)
                    .ok()?;
                objs.dict_get(globals, n).ok()??
            }
        };
        for a in &path.attrs {
            obj = objs.attr(obj, a).ok()??;
        }
        Some(obj)
    }
}
