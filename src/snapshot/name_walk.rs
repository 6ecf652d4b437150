//! How is an object reached from the program's module globals, by the shortest path, and
//! how is that path spelled (`checking.lock`, `service._stock_lock`, `LOCKS['users']`)? One
//! breadth-first walk over globals, instance dicts, `__slots__`, class attributes and
//! module-level dicts, lists and tuples, bounded in objects read and in time; a path found
//! before is re-read hop by hop (`hop_holds`) before it is used again. This file decides
//! nothing about locks, and knows no CPython version (object reading is `cpython::objects`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::cpython::objects::Objects;
use crate::model::NameHow;

/// Steps after the global: `app.service.pool._lock` is as deep as a name goes.
const MAX_DEPTH: u8 = 3;
/// Objects whose contents the walk reads (dicts, instances, classes, lists), and its time.
pub const MAX_OBJECTS: usize = 50_000;
pub const MAX_TIME: Duration = Duration::from_millis(150);

/// Items read of one list or tuple.
const MAX_SEQ: usize = 1024;

/// Primitives whose inner locks are named as the primitive (`jobs` for a global
/// `queue.Queue`'s `mutex`): the attributes a reader never spells.
const WRAPPERS: &[&str] = &[
    "Queue",
    "LifoQueue",
    "PriorityQueue",
    "Condition",
    "Event",
    "Semaphore",
    "BoundedSemaphore",
    "Barrier",
];
const WRAPPED: &[&str] = &[
    "mutex",
    "not_empty",
    "not_full",
    "all_tasks_done",
    "_lock",
    "_cond",
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Step {
    /// A global or an attribute, by its key object (a str).
    Attr(usize),
    /// A `__slots__` attribute: its name object and its offset in the instance.
    Slot(usize, usize),
    /// A dict entry, by its key object.
    Item(usize),
    Index(usize),
    /// A wrapper's inner lock: no step in the name.
    Through,
}

/// One hop of a path: `container`'s entry `step` is `child`.
#[derive(Clone, Debug)]
pub(super) struct Hop {
    container: usize,
    step: Step,
    child: usize,
}

#[derive(Clone, Debug)]
pub(super) struct Found {
    pub(super) hops: Vec<Hop>,
    pub(super) name: String,
    pub(super) how: NameHow,
    /// The module whose globals the path starts from.
    pub(super) origin: String,
}

/// How the walk reads an object's contents.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Dict,
    Seq,
    Class(usize),
    Instance,
}

struct Node {
    obj: usize,
    depth: u8,
    /// Index of the node it was reached from, and how; `None` for a module's dict.
    parent: Option<usize>,
    step: Step,
    root: usize,
}

pub(super) struct Root {
    pub(super) dict: usize,
    /// The module's name, for qualifying; `None` for the frames' own globals.
    pub(super) module: Option<usize>,
}

/// Whether `container`'s entry is still `child`, read now.
pub(super) fn hop_holds(objs: &Objects, hop: &Hop) -> bool {
    match hop.step {
        Step::Attr(k) | Step::Item(k) => entries(objs, hop.container)
            .iter()
            .any(|&(key, v)| key == k && v == hop.child),
        Step::Slot(_, offset) => objs.slot_value(hop.container, offset) == Some(hop.child),
        Step::Through => entries(objs, hop.container)
            .iter()
            .any(|&(_, v)| v == hop.child),
        Step::Index(i) => objs
            .type_name_rc(hop.container)
            .ok()
            .and_then(|t| match &*t {
                "list" => objs.list_items(hop.container).ok(),
                "tuple" => objs.tuple_items(hop.container).ok(),
                _ => None,
            })
            .is_some_and(|items| items.get(i) == Some(&hop.child)),
    }
}

/// A dict's, an instance's or a class's (key, value) pairs.
pub(super) fn entries(objs: &Objects, obj: usize) -> Vec<(usize, usize)> {
    if objs.type_is(obj, "dict") {
        return objs.dict_entries(obj).unwrap_or_default();
    }
    if let Some(d) = objs.class_dict(obj) {
        return objs.dict_entries(d).unwrap_or_default();
    }
    objs.instance_entries(obj).unwrap_or_default()
}

/// How the note about a search stopped early begins (one such note per process).
pub const NOTE_PREFIX: &str = "lock names:";

/// How far one walk may go: objects whose contents it reads, and time.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    pub(super) objects: usize,
    pub(super) time: Duration,
}

pub(super) const BOUNDS: Bounds = Bounds {
    objects: MAX_OBJECTS,
    time: MAX_TIME,
};

/// What one walk found, and how far it had got when it stopped at its bounds.
pub(super) struct Search {
    pub(super) found: HashMap<usize, Found>,
    /// Objects read and time taken, when it stopped before it had looked everywhere.
    pub(super) stopped: Option<(usize, Duration)>,
}

impl Search {
    /// The snapshot's or document's note when the walk stopped early.
    pub(super) fn note(&self) -> Option<String> {
        let (read, took) = self.stopped?;
        Some(format!(
            "{NOTE_PREFIX} the search for the program's names stopped after {read} objects and {} ms (its bounds are {MAX_OBJECTS} and {} ms); locks it did not reach keep their local names",
            took.as_millis(),
            MAX_TIME.as_millis()
        ))
    }
}

/// The shortest spelled path to each `wanted` object from the `roots`' globals (in order).
pub(super) fn search(
    objs: &Objects,
    roots: &[Root],
    wanted: HashSet<usize>,
    bounds: Bounds,
) -> Search {
    let mut walk = Walk::new(objs, wanted, bounds);
    let complete = walk.run(roots);
    Search {
        stopped: (!complete).then(|| (walk.read, walk.started.elapsed())),
        found: walk.found,
    }
}

struct Walk<'o, 'a> {
    objs: &'o Objects<'a>,
    wanted: HashSet<usize>,
    nodes: Vec<Node>,
    visited: HashSet<usize>,
    found: HashMap<usize, Found>,
    /// Objects whose contents were read, and objects looked at (for the clock).
    read: usize,
    steps: usize,
    started: Instant,
    bounds: Bounds,
    /// The depth of the deepest name found so far.
    found_depth: u8,
    /// Per root: the key of the module name that qualifies its names (none for the
    /// frames' own globals), and its dict.
    root_modules: Vec<Option<usize>>,
    root_dicts: Vec<usize>,
    /// Per type: its `__slots__` members (name object, offset), read once.
    slots: HashMap<usize, Vec<(usize, usize)>>,
}

impl<'o, 'a> Walk<'o, 'a> {
    fn new(objs: &'o Objects<'a>, wanted: HashSet<usize>, bounds: Bounds) -> Self {
        Walk {
            bounds,
            found_depth: 0,
            objs,
            wanted,
            nodes: Vec::new(),
            visited: HashSet::new(),
            found: HashMap::new(),
            read: 0,
            steps: 0,
            started: Instant::now(),
            root_modules: Vec::new(),
            root_dicts: Vec::new(),
            slots: HashMap::new(),
        }
    }

    fn over_budget(&mut self) -> bool {
        self.steps += 1;
        self.read >= self.bounds.objects
            || (self.steps % 64 == 0 && self.started.elapsed() > self.bounds.time)
    }

    /// Walk level by level; whether it looked everywhere it meant to (or found everything).
    fn run(&mut self, roots: &[Root]) -> bool {
        let mut queue: VecDeque<usize> = VecDeque::new();
        self.root_modules = roots.iter().map(|r| r.module).collect();
        self.root_dicts = roots.iter().map(|r| r.dict).collect();
        for r in roots {
            self.visited.insert(r.dict);
        }
        // Level 0: every global of every root, before anything deeper.
        for (ri, r) in roots.iter().enumerate() {
            if self.found.len() == self.wanted.len() {
                return true;
            }
            if self.over_budget() {
                return false;
            }
            self.read += 1;
            let entries = self.objs.dict_entries(r.dict).unwrap_or_default();
            for (k, v) in entries {
                self.child(None, ri, r.dict, Step::Attr(k), v, 0, &mut queue);
            }
        }
        while let Some(n) = queue.pop_front() {
            // Everything found, and nothing left that could reach it by a path as short.
            if self.found.len() == self.wanted.len() && self.nodes[n].depth > self.found_depth {
                return true;
            }
            if self.over_budget() {
                return false;
            }
            self.expand(n, &mut queue);
        }
        true
    }

    /// A value reached from `parent` (or a root's dict): a wanted lock is named; anything
    /// with contents is queued while the path is short enough.
    #[allow(clippy::too_many_arguments)]
    fn child(
        &mut self,
        parent: Option<usize>,
        root: usize,
        container: usize,
        step: Step,
        v: usize,
        depth: u8,
        queue: &mut VecDeque<usize>,
    ) {
        if self.wanted.contains(&v) {
            if let Some(f) = self.name_of(parent, root, container, step, v) {
                let better = match self.found.get(&v) {
                    None => true,
                    // Same depth: an attribute path reads better than a registry entry.
                    Some(old) => old.how == NameHow::Registry && f.how != NameHow::Registry,
                };
                if better {
                    self.found.insert(v, f);
                    self.found_depth = self.found_depth.max(depth);
                }
            }
            // A wanted queue still holds a wanted lock (its `mutex`): read on.
        }
        if depth >= MAX_DEPTH || !self.visited.insert(v) {
            return;
        }
        // Its shape is read when it is expanded: every module's globals are looked at
        // before anything of theirs is read.
        self.nodes.push(Node {
            obj: v,
            depth,
            parent,
            step,
            root,
        });
        queue.push_back(self.nodes.len() - 1);
    }

    /// How to read an object's contents, or `None` for one without any worth a name.
    fn shape(&self, obj: usize) -> Option<Shape> {
        let ty = self.objs.type_name_rc(obj).ok()?;
        Some(match &*ty {
            "dict" => Shape::Dict,
            "list" | "tuple" => Shape::Seq,
            "module"
            | "str"
            | "int"
            | "float"
            | "bool"
            | "bytes"
            | "bytearray"
            | "complex"
            | "NoneType"
            | "function"
            | "builtin_function_or_method"
            | "method"
            | "method_descriptor"
            | "getset_descriptor"
            | "member_descriptor"
            | "wrapper_descriptor"
            | "classmethod_descriptor"
            | "code"
            | "cell"
            | "set"
            | "frozenset"
            | "property"
            | "staticmethod"
            | "classmethod"
            | "weakref"
            | "weakref.ReferenceType"
            | "frame"
            | "generator"
            | "coroutine"
            | "range"
            | "mappingproxy"
            | "_thread.lock"
            | "_thread.RLock"
            | "ellipsis"
            | "NotImplementedType"
            | "re.Pattern"
            | "_sre.SRE_Pattern" => return None,
            _ => match self.objs.class_dict(obj) {
                Some(d) => Shape::Class(d),
                None => Shape::Instance,
            },
        })
    }

    fn expand(&mut self, n: usize, queue: &mut VecDeque<usize>) {
        let (obj, depth, root) = {
            let node = &self.nodes[n];
            (node.obj, node.depth, node.root)
        };
        let Some(shape) = self.shape(obj) else {
            return;
        };
        self.read += 1;
        let objs = self.objs;
        match shape {
            Shape::Seq => {
                let items = match objs.type_name_rc(obj).as_deref() {
                    Ok("list") => objs.list_items(obj),
                    _ => objs.tuple_items(obj),
                }
                .unwrap_or_default();
                for (i, v) in items.into_iter().take(MAX_SEQ).enumerate() {
                    self.child(Some(n), root, obj, Step::Index(i), v, depth + 1, queue);
                }
            }
            Shape::Dict => {
                for (k, v) in objs.dict_entries(obj).unwrap_or_default() {
                    self.child(Some(n), root, obj, Step::Item(k), v, depth + 1, queue);
                }
            }
            Shape::Class(dict) => {
                for (k, v) in objs.dict_entries(dict).unwrap_or_default() {
                    self.child(Some(n), root, obj, Step::Attr(k), v, depth + 1, queue);
                }
            }
            Shape::Instance => {
                let wrapper = objs
                    .type_name_rc(obj)
                    .is_ok_and(|t| WRAPPERS.contains(&&*t));
                for (k, v) in objs.instance_entries(obj).unwrap_or_default() {
                    let through = wrapper && objs.str_rc(k).is_ok_and(|s| WRAPPED.contains(&&*s));
                    if through {
                        // Same depth: `jobs.mutex` is spelled `jobs`.
                        self.child(Some(n), root, obj, Step::Through, v, depth, queue);
                    } else {
                        self.child(Some(n), root, obj, Step::Attr(k), v, depth + 1, queue);
                    }
                }
                let Ok(ty) = objs.type_of(obj) else {
                    return;
                };
                let slots = self
                    .slots
                    .entry(ty)
                    .or_insert_with(|| objs.slot_members(ty))
                    .clone();
                for (k, offset) in slots {
                    if let Some(v) = objs.slot_value(obj, offset) {
                        let step = Step::Slot(k, offset);
                        self.child(Some(n), root, obj, step, v, depth + 1, queue);
                    }
                }
            }
        }
    }

    /// The name of the path to `v`, with its hops; `None` where a step cannot be spelled
    /// from what was read (a dict key that is neither str nor int).
    fn name_of(
        &self,
        parent: Option<usize>,
        root: usize,
        container: usize,
        step: Step,
        v: usize,
    ) -> Option<Found> {
        let mut hops = vec![Hop {
            container,
            step,
            child: v,
        }];
        let mut at = parent;
        while let Some(i) = at {
            let node = &self.nodes[i];
            let container = match node.parent {
                Some(p) => self.nodes[p].obj,
                None => self.root_dicts[node.root],
            };
            hops.push(Hop {
                container,
                step: node.step,
                child: node.obj,
            });
            at = node.parent;
        }
        hops.reverse();
        let mut name = String::new();
        let mut registry = false;
        for (i, hop) in hops.iter().enumerate() {
            match hop.step {
                Step::Attr(k) | Step::Slot(k, _) => {
                    let s = self.objs.str(k).ok()?;
                    if !is_identifier(&s) {
                        return None;
                    }
                    if i > 0 {
                        name.push('.');
                    }
                    name.push_str(&s);
                }
                Step::Item(k) => {
                    let key = self.objs.short_repr(k);
                    if key == "…" {
                        return None;
                    }
                    registry = true;
                    name.push_str(&format!("[{key}]"));
                }
                Step::Index(idx) => {
                    registry = true;
                    name.push_str(&format!("[{idx}]"));
                }
                Step::Through => {}
            }
        }
        if name.is_empty() || name.starts_with('[') {
            return None;
        }
        let module = self.root_modules[root].and_then(|k| self.objs.str(k).ok());
        // Where it was found: the module's own `__name__`.
        let origin = self
            .objs
            .dict_get(self.root_dicts[root], "__name__")
            .ok()
            .flatten()
            .and_then(|n| self.objs.str(n).ok())
            .unwrap_or_else(|| "?".into());
        let steps = hops.iter().filter(|h| h.step != Step::Through).count();
        let how = if registry {
            NameHow::Registry
        } else if steps == 1 {
            NameHow::Global
        } else {
            NameHow::Attribute
        };
        let name = match module {
            Some(m) if m != "__main__" => format!("{m}.{name}"),
            _ => name,
        };
        Some(Found {
            hops,
            name,
            how,
            origin,
        })
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::for_version;
    use crate::cpython::layout::common::{OB_TYPE, TP_NAME};
    use crate::memory::FakeMemory;

    /// Fake objects in a 3.12 layout: types by name, compact ASCII strs, combined dicts.
    struct Heap {
        mem: FakeMemory,
        next: usize,
        types: HashMap<&'static str, usize>,
    }

    impl Heap {
        fn alloc(&mut self, size: usize) -> usize {
            let at = self.next;
            self.next += size.div_ceil(64) * 64 + 64;
            self.mem.put(at, &vec![0u8; size]);
            at
        }
        fn typed(&mut self, ty: &'static str, size: usize) -> usize {
            let t = match self.types.get(ty) {
                Some(t) => *t,
                None => {
                    let t = self.alloc(256);
                    let name = self.alloc(128);
                    self.mem.write(name, ty.as_bytes());
                    self.mem.put_u64s(t + TP_NAME, &[name as u64]);
                    self.types.insert(ty, t);
                    t
                }
            };
            let at = self.alloc(size);
            self.mem.put_u64s(at + OB_TYPE, &[t as u64]);
            at
        }
        fn str(&mut self, s: &str) -> usize {
            let at = self.typed("str", 40 + s.len() + 1);
            self.mem.put_u64s(at + 16, &[s.len() as u64]);
            // state: kind 1, compact, ascii.
            self.mem
                .write(at + 32, &[(1 << 2) | (1 << 5) | (1 << 6), 0, 0, 0]);
            self.mem.write(at + 40, s.as_bytes());
            at
        }
        fn dict(&mut self, items: &[(&str, usize)]) -> usize {
            let keys = self.alloc(40 + 16 * items.len());
            self.mem.write(keys + 9, &[3, 1]); // 8 index bytes, unicode keys
            self.mem.put_u64s(keys + 24, &[items.len() as u64]);
            for (i, (k, v)) in items.iter().enumerate() {
                let k = self.str(k);
                self.mem
                    .put_u64s(keys + 40 + 16 * i, &[k as u64, *v as u64]);
            }
            let dict = self.typed("dict", 48);
            self.mem.put_u64s(dict + 32, &[keys as u64, 0]);
            dict
        }
    }

    /// A module's globals `a`, `b`, `c` (dicts), the lock two dicts down the last one:
    /// `c['inner']['lock']`.
    fn module_with_a_deep_lock(heap: &mut Heap) -> (usize, usize) {
        let lock = heap.typed("_thread.lock", 32);
        let inner = heap.dict(&[("lock", lock)]);
        let c = heap.dict(&[("inner", inner)]);
        let (a, b) = (heap.dict(&[]), heap.dict(&[]));
        let globals = heap.dict(&[("a", a), ("b", b), ("c", c)]);
        (globals, lock)
    }

    #[test]
    fn a_walk_names_the_path_or_says_where_its_bounds_stopped_it() {
        let mut heap = Heap {
            mem: FakeMemory::new(),
            next: 0x10_0000,
            types: HashMap::new(),
        };
        let (globals, lock) = module_with_a_deep_lock(&mut heap);
        let layout = for_version(3, 12, 1).unwrap();
        let objs = Objects::new(&heap.mem, &layout);
        let roots = [Root {
            dict: globals,
            module: None,
        }];
        let wanted = || HashSet::from([lock]);

        let whole = search(&objs, &roots, wanted(), BOUNDS);
        assert!(whole.stopped.is_none() && whole.note().is_none());
        let found = &whole.found[&lock];
        assert_eq!(found.name, "c['inner']['lock']");
        assert_eq!(found.how, NameHow::Registry);
        assert_eq!(found.hops.len(), 3);
        assert!(found.hops.iter().all(|h| hop_holds(&objs, h)));

        // Two objects read (the globals and `a`): it stops before `c` and says so.
        let tight = Bounds {
            objects: 2,
            time: Duration::from_secs(60),
        };
        let cut = search(&objs, &roots, wanted(), tight);
        assert!(cut.found.is_empty());
        assert_eq!(cut.stopped.map(|(read, _)| read), Some(2));
        let note = cut.note().unwrap();
        assert!(note.starts_with(NOTE_PREFIX), "{note}");
        assert!(
            note.contains("stopped after 2 objects") && note.contains("keep their local names"),
            "{note}"
        );
    }
}
