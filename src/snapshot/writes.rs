//! The shared locations a thread can write from where it is (for `record`'s race candidates):
//! every user frame's writes still reachable from its current instruction, and those of the
//! user functions it can still call (one call deep, code already seen on a stack), resolved to
//! objects through that frame's names now, each with the locks that guard it lexically. Read
//! only from off-CPU threads; standard-library code is skipped. Judges no race.

use super::builder::*;
use crate::cpython::bytecode::{self, WriteTarget};
use crate::cpython::functions;
use crate::cpython::threads::CodeInfo;
use crate::cpython::writes::{CodeWrite, Guard};

/// Code from the standard library (threading, queue, importlib...), whose internal writes are
/// never the user's race. CPython's own test suite (`lib/python3.X/test/`) is user code here.
pub(super) fn is_library_file(file: &str) -> bool {
    file.starts_with('<') || (file.contains("/lib/python3.") && !file.contains("/test/"))
}

/// Containers whose item writes are plain memory updates. Anything else runs its own
/// `__setitem__` (whose frame is read in turn) or is thread-safe by contract (`deque`).
const PLAIN_CONTAINERS: &[&str] = &[
    "list",
    "dict",
    "set",
    "bytearray",
    "collections.OrderedDict",
    "collections.defaultdict",
];

pub(super) fn is_init(function: &str) -> bool {
    function == "__init__" || function.ends_with(".__init__")
}

/// Where a write's names are looked up: a frame on the stack, or a function a frame can
/// still call (its first parameter bound to the object the method was looked up on).
#[derive(Clone, Copy)]
pub(super) enum Scope<'r> {
    Frame(&'r RawFrame),
    Call {
        code: &'r CodeInfo,
        receiver: Option<usize>,
        globals: usize,
    },
}

impl Scope<'_> {
    pub(super) fn code(&self) -> &CodeInfo {
        match self {
            Scope::Frame(f) => &f.code,
            Scope::Call { code, .. } => code,
        }
    }
}

impl<'w, 'a> Builder<'w, 'a> {
    /// The shared locations the thread can write from every user frame on its stack, and
    /// from the user functions those frames can still call (one call deep, code already seen).
    pub(super) fn writes(&self, frames: &[FrameView]) -> Vec<WriteAccess> {
        // Objects under construction on this stack: their writes are not shared yet.
        let constructing: HashSet<usize> = frames
            .iter()
            .filter(|f| is_init(&f.raw.code.name))
            .filter_map(|f| self.walker.local(f.raw, "self"))
            .collect();
        let mut out: Vec<WriteAccess> = Vec::new();
        let mut push = |a: Option<WriteAccess>| {
            if let Some(a) = a {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        };
        let user = frames.iter().filter(|f| !is_library_file(&f.frame.file));
        for (depth, fv) in user.enumerate() {
            let code = &fv.raw.code;
            let Some(here) = fv.raw.instr.map(|unit| code.at(unit)) else {
                continue;
            };
            let Some(at) = here.index else {
                continue;
            };
            let decoded = code.writes();
            let reach = code.reach(&here);
            let line = code.line_of_instruction(at);
            let scope = Scope::Frame(fv.raw);
            for w in reach.writes.iter().map(|&i| &decoded.writes[i]) {
                let evidence = if depth == 0 && w.line.is_some() && w.line == line {
                    WriteEvidence::CurrentLine
                } else {
                    WriteEvidence::ReachableWrite
                };
                let Some(guards) = self.guards(scope, &w.guards) else {
                    continue;
                };
                push(self.access(scope, w, evidence, guards.clone(), &constructing));
                push(self.container_read(scope, w, evidence, guards.clone(), &constructing));
                // `obj.prop = v` runs the property's setter on `obj`.
                if let WriteTarget::Attr { object, attr } = &w.target {
                    if let Some((callee, receiver, globals)) = self.setter(scope, object, attr) {
                        for a in self.callee_writes(
                            &callee,
                            Some(receiver),
                            globals,
                            &guards,
                            &constructing,
                        ) {
                            push(Some(a));
                        }
                    }
                }
            }
            for c in reach.calls.iter().map(|&i| &decoded.calls[i]) {
                let Some(guards) = self.guards(scope, &c.guards) else {
                    continue;
                };
                let Some((callee, receiver, globals)) = self.callee(scope, c) else {
                    continue;
                };
                for a in self.callee_writes(&callee, receiver, globals, &guards, &constructing) {
                    push(Some(a));
                }
            }
        }
        out
    }

    /// The writes a call will make, each guarded also by the locks around the call.
    fn callee_writes(
        &self,
        callee: &CodeInfo,
        receiver: Option<usize>,
        globals: usize,
        outer: &[GuardLock],
        constructing: &HashSet<usize>,
    ) -> Vec<WriteAccess> {
        if is_library_file(&callee.filename) || is_init(&callee.name) {
            return Vec::new();
        }
        let scope = Scope::Call {
            code: callee,
            receiver,
            globals,
        };
        let decoded = callee.writes();
        let entry = callee.at(0);
        let mut out = Vec::new();
        for w in callee
            .reach(&entry)
            .writes
            .iter()
            .map(|&i| &decoded.writes[i])
        {
            let Some(mut guards) = self.guards(scope, &w.guards) else {
                continue;
            };
            for g in outer {
                if !guards.contains(g) {
                    guards.push(g.clone());
                }
            }
            let evidence = WriteEvidence::CalleeWrite;
            out.extend(self.container_read(scope, w, evidence, guards.clone(), constructing));
            out.extend(self.access(scope, w, evidence, guards, constructing));
        }
        out
    }

    /// The user function a call names, with the object its method was looked up on, if its
    /// code has been seen on a stack already (nothing new is read for it).
    fn callee(
        &self,
        scope: Scope,
        c: &crate::cpython::writes::CodeCall,
    ) -> Option<(std::sync::Arc<CodeInfo>, Option<usize>, usize)> {
        let objs = self.objs();
        let (func, receiver) = match &c.receiver {
            None => (objs.dict_get(self.globals(scope)?, &c.name).ok()??, None),
            Some(path) => {
                let obj = self.resolve(scope, path)?;
                if objs.attr(obj, &c.name).ok()?.is_some() {
                    return None;
                }
                (
                    objs.attr(objs.type_of(obj).ok()?, &c.name).ok()??,
                    Some(obj),
                )
            }
        };
        let (code, globals) = functions::function_parts(objs, func)?;
        Some((self.walker.cached_code(code)?, receiver, globals))
    }

    /// The setter a store to `object.attr` runs, when `attr` is a property of its class.
    fn setter(
        &self,
        scope: Scope,
        object: &bytecode::Path,
        attr: &str,
    ) -> Option<(std::sync::Arc<CodeInfo>, usize, usize)> {
        let objs = self.objs();
        let obj = self.resolve(scope, object)?;
        let prop = objs.attr(objs.type_of(obj).ok()?, attr).ok()??;
        let (code, globals) =
            functions::function_parts(objs, functions::property_setter(objs, prop)?)?;
        Some((self.walker.cached_code(code)?, obj, globals))
    }

    pub(super) fn globals(&self, scope: Scope) -> Option<usize> {
        match scope {
            Scope::Frame(f) => {
                let objs = self.objs();
                objs.mem
                    .ptr(f.addr + objs.layout.offsets.frame_globals)
                    .ok()
            }
            Scope::Call { globals, .. } => Some(globals),
        }
    }

    /// The locks guarding a point, resolved in its scope; `None` if any cannot be told: a
    /// write under a lock that cannot be named is not judged.
    fn guards(&self, scope: Scope, guards: &[Guard]) -> Option<Vec<GuardLock>> {
        let mut out = Vec::new();
        for g in guards {
            let obj = self.resolve(scope, g.path.as_ref()?)?;
            // Any other context manager counts as itself; a Condition whose lock cannot be
            // read now is unknown (its own address would not match the holds of its lock).
            let lock = match self.lock_behind(obj) {
                Some((l, _)) => l,
                None if self.objs().type_name(obj).ok()? == "Condition" => return None,
                None => obj,
            };
            let guard = GuardLock {
                lock: lock_id(self.pid, lock),
                name: g.text.clone(),
            };
            if !out.contains(&guard) {
                out.push(guard);
            }
        }
        Some(out)
    }

    /// One write resolved in its scope; `None` where its object cannot be told, or it is not
    /// shared state.
    fn access(
        &self,
        scope: Scope,
        w: &CodeWrite,
        evidence: WriteEvidence,
        guards: Vec<GuardLock>,
        constructing: &HashSet<usize>,
    ) -> Option<WriteAccess> {
        let objs = self.objs();
        let code = scope.code();
        let in_init = is_init(&code.name);
        let own = |p: &bytecode::Path| in_init && p.root == bytecode::Root::Local("self".into());
        let shared = |obj: usize| !constructing.contains(&obj) && !self.thread_local(obj);
        let (location, name, through_self) = match &w.target {
            WriteTarget::Global(name) => self.global_location(scope, name)?,
            WriteTarget::Attr { object, attr } => {
                self.attr_location(scope, object, attr, constructing)?
            }
            WriteTarget::Item { container, .. } => {
                let obj = self.resolve(scope, container)?;
                let ty = objs.type_name_rc(obj).ok()?;
                if own(container) || !shared(obj) || !PLAIN_CONTAINERS.contains(&&*ty) {
                    return None;
                }
                let (owner, through_self) = self.name_of(scope, container);
                (
                    Location::Item {
                        container: format!("{obj:#x}"),
                        class: format!("{:#x}", objs.type_of(obj).ok()?),
                    },
                    format!("{owner}[...]"),
                    through_self,
                )
            }
        };
        let site = code_site(code, w.line);
        let adds_or_takes = matches!(
            w.target,
            WriteTarget::Item {
                adds_or_takes: true,
                ..
            }
        );
        Some(WriteAccess {
            location,
            name,
            through_self,
            site,
            evidence,
            guards,
            adds_or_takes,
            access: AccessKind::Write,
        })
    }

    /// The location of module global `name` in a scope's globals, its name, and `false` (not
    /// named through `self`).
    pub(super) fn global_location(
        &self,
        scope: Scope,
        name: &str,
    ) -> Option<(Location, String, bool)> {
        Some((
            Location::Global {
                globals: format!("{:#x}", self.globals(scope)?),
                name: name.to_string(),
            },
            name.to_string(),
            false,
        ))
    }

    /// The location `object.attr` names in a scope, its name and whether it is named
    /// through `self`; `None` where that is no shared state: the object cannot be resolved,
    /// is being built (`self` in `__init__`, or in `constructing`) or thread-local, or does
    /// not keep `attr` in its dict (a property's setter runs Python code whose own writes
    /// are read in turn).
    pub(super) fn attr_location(
        &self,
        scope: Scope,
        object: &bytecode::Path,
        attr: &str,
        constructing: &HashSet<usize>,
    ) -> Option<(Location, String, bool)> {
        let objs = self.objs();
        let own =
            is_init(&scope.code().name) && object.root == bytecode::Root::Local("self".into());
        let obj = self.resolve(scope, object)?;
        if own
            || constructing.contains(&obj)
            || self.thread_local(obj)
            || objs.attr(obj, attr).ok()?.is_none()
        {
            return None;
        }
        let (owner, through_self) = self.name_of(scope, object);
        Some((
            Location::Attr {
                object: format!("{obj:#x}"),
                class: format!("{:#x}", objs.type_of(obj).ok()?),
                attr: attr.to_string(),
            },
            format!("{owner}.{attr}"),
            through_self,
        ))
    }

    /// How the code names an object: its path, with `self` replaced by its class name.
    pub(super) fn name_of(&self, scope: Scope, path: &bytecode::Path) -> (String, bool) {
        if path.root == bytecode::Root::Local("self".into()) {
            if let Some(ty) = self
                .resolve(
                    scope,
                    &bytecode::Path {
                        root: path.root.clone(),
                        attrs: Vec::new(),
                    },
                )
                .and_then(|s| self.objs().type_name(s).ok())
            {
                let mut name = ty.rsplit('.').next().unwrap_or(&ty).to_string();
                for a in &path.attrs {
                    name.push('.');
                    name.push_str(a);
                }
                return (name, true);
            }
        }
        (path.to_string(), false)
    }

    pub(super) fn thread_local(&self, obj: usize) -> bool {
        matches!(
            self.objs().type_name(obj).as_deref(),
            Ok("_thread._local") | Ok("_threading_local.local")
        )
    }

    /// The object a name-and-attributes path refers to in a scope. An attribute missing from
    /// an instance's dict is looked up on its class (`lock = Lock()` in a class body).
    pub(super) fn resolve(&self, scope: Scope, path: &bytecode::Path) -> Option<usize> {
        let (code, receiver, globals) = match scope {
            Scope::Frame(frame) => return self.walker.resolve_in_frame(frame, path),
            Scope::Call {
                code,
                receiver,
                globals,
            } => (code, receiver, globals),
        };
        let objs = self.objs();
        let mut obj = match &path.root {
            // A call's only known local is its first parameter, bound to the receiver.
            bytecode::Root::Local(n) => (code.names.locals.first() == Some(n))
                .then_some(receiver)
                .flatten()?,
            bytecode::Root::Deref(_) => return None,
            bytecode::Root::Global(n) => objs.dict_get(globals, n).ok()??,
        };
        for a in &path.attrs {
            obj = match objs.attr(obj, a).ok()? {
                Some(v) => v,
                None => objs.attr(objs.type_of(obj).ok()?, a).ok()??,
            };
        }
        Some(obj)
    }
}

/// `function file:line` of a line of `code`, as a frame there would give it.
pub(super) fn code_site(code: &CodeInfo, line: Option<u32>) -> String {
    crate::model::frame_site(&code.name, &code.filename, line.unwrap_or(0))
}
