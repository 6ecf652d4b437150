//! Which name does the program itself give a lock? A module global (`checking`), an
//! attribute path from one (`checking.lock`, `service._stock_lock`, through instance dicts,
//! `__slots__` and class attributes), an entry of a module-level dict, list or tuple
//! (`LOCKS['users']`), or else an attribute of the `self` a holding or waiting thread's
//! frame holds (`InventoryService._stock_lock`).
//!
//! Found from outside by one breadth-first walk, shortest paths first, from the `f_globals`
//! of the blocked threads' frames (names there are unqualified) and then every module of
//! `sys.modules` (qualified: `logging._lock`), bounded in objects read and in time; the
//! snapshot's notes say when it stopped early. A name is only given when every step of its
//! path was read in this sample: a path found in an earlier sample is read again, step by
//! step, before it is used. This file never decides who holds or waits, and knows no CPython
//! version (object reading is `cpython::objects`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::multiprocessing::frame_globals;
use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawThread, Walker};
use crate::model::{short_file, Lock, LockKind, LockName, NameHow, Thread};

/// Steps after the global: `app.service.pool._lock` is as deep as a name goes.
const MAX_DEPTH: u8 = 3;
/// Objects whose contents the walk reads (dicts, instances, classes, lists), and its time.
pub const MAX_OBJECTS: usize = 50_000;
pub const MAX_TIME: Duration = Duration::from_millis(150);
/// How the note about a search stopped early begins (one such note per process).
pub const NOTE_PREFIX: &str = "lock names:";
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

/// What the walk keeps from one sample to the next: each named lock's path (read again
/// before use) and the locks a finished walk did not reach (not searched again).
#[derive(Default)]
pub struct NameCache {
    paths: HashMap<usize, Found>,
    unreached: HashSet<usize>,
    /// Walks that stopped early without reaching a lock, per lock.
    tries: HashMap<usize, u8>,
    /// When the last walk began: `record` meets new locks at many samples (threads come and
    /// go), and walks at most once per `SEARCH_EVERY` for them.
    last_search: Option<Instant>,
}

/// The least time between two walks of one session.
const SEARCH_EVERY: Duration = Duration::from_secs(1);
/// Walks stopped early at their bounds after which a lock no walk reached is left unnamed.
const MAX_TRIES: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
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
struct Hop {
    container: usize,
    step: Step,
    child: usize,
}

#[derive(Clone, Debug)]
struct Found {
    hops: Vec<Hop>,
    name: String,
    how: NameHow,
    /// The module whose globals the path starts from.
    origin: String,
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

struct Root {
    dict: usize,
    /// The module's name, for qualifying; `None` for the frames' own globals.
    module: Option<usize>,
}

/// Whether the kind is a Python object a global can refer to. A future is named by what it
/// computes (`futures`), which says more than the attribute that holds it.
fn nameable(kind: LockKind) -> bool {
    !matches!(
        kind,
        LockKind::Future
            | LockKind::SharedSemaphore
            | LockKind::Pipe
            | LockKind::Socket
            | LockKind::Children
            | LockKind::Gil
            | LockKind::PthreadMutex
            | LockKind::PthreadRwlock
            | LockKind::FileLock
            | LockKind::ModuleLock
    )
}

/// Give every Python lock of the sample its program-wide name where one is read: sets
/// `Lock.name` and adds the name to `names[]` with how it was found. Returns a note when the
/// walk stopped at its bounds before it had looked everywhere.
pub fn name_locks(
    walker: &Walker,
    interp: usize,
    raw: &[RawThread],
    threads: &[Thread],
    locks: &mut [Lock],
    cache: &mut NameCache,
) -> Option<String> {
    let objs = &walker.objs;
    let targets: HashMap<usize, usize> = locks
        .iter()
        .enumerate()
        .filter(|(_, l)| l.shared.is_none() && nameable(l.kind))
        .filter_map(|(i, l)| {
            Some((
                usize::from_str_radix(l.address.trim_start_matches("0x"), 16).ok()?,
                i,
            ))
        })
        .collect();
    if targets.is_empty() {
        return None;
    }
    let mut found: HashMap<usize, Found> = HashMap::new();
    for &addr in targets.keys() {
        if let Some(f) = cache.paths.get(&addr) {
            if f.hops.iter().all(|h| hop_holds(objs, h)) {
                found.insert(addr, f.clone());
            }
        }
    }
    let wanted: HashSet<usize> = targets
        .keys()
        .filter(|a| !found.contains_key(a) && !cache.unreached.contains(a))
        .copied()
        .collect();
    let mut note = None;
    let due = cache
        .last_search
        .is_none_or(|t| t.elapsed() >= SEARCH_EVERY);
    if !wanted.is_empty() && due {
        cache.last_search = Some(Instant::now());
        let mut walk = Walk::new(objs, wanted.clone());
        let roots = roots(walker, interp, raw, threads);
        let complete = walk.run(&roots);
        for (addr, f) in walk.found {
            cache.paths.insert(addr, f.clone());
            found.insert(addr, f);
        }
        // Not searched again this session once a walk looked everywhere, nor after
        // `MAX_TRIES` walks that stopped early: `record` must not pay the bound at every
        // sample. A first walk often stops early (nothing of the target read yet), and a
        // lock it missed then would keep its local name for the whole recording.
        for &a in wanted.iter().filter(|a| !found.contains_key(a)) {
            let tries = cache.tries.entry(a).or_default();
            *tries += 1;
            if complete || *tries >= MAX_TRIES {
                cache.unreached.insert(a);
            }
        }
        if !complete {
            note = Some(format!(
                "{NOTE_PREFIX} the search for the program's names stopped after {} objects and {} ms (its bounds are {MAX_OBJECTS} and {} ms); locks it did not reach keep their local names",
                walk.read,
                walk.started.elapsed().as_millis(),
                MAX_TIME.as_millis()
            ));
        }
    }
    for (addr, f) in found {
        let lock = &mut locks[targets[&addr]];
        apply(lock, f.name, f.how, format!("module {}", f.origin));
    }
    // Else the attribute of a holding or waiting thread's `self`, named with its class.
    let unnamed: HashMap<usize, usize> = targets
        .iter()
        .filter(|(_, i)| locks[**i].name.is_none())
        .map(|(a, i)| (*a, *i))
        .collect();
    if !unnamed.is_empty() {
        for (addr, (name, site)) in owner_attributes(walker, raw, threads, locks, &unnamed) {
            apply(&mut locks[unnamed[&addr]], name, NameHow::Attribute, site);
        }
    }
    note
}

/// The program-wide names of `wanted` objects (any object, not only locks), by one walk
/// from `sys.modules` (`__main__`'s globals unqualified); whether the walk looked everywhere.
/// An object with an expected type is only named while it still has that type.
pub(super) fn name_objects(
    walker: &Walker,
    interp: usize,
    wanted: &[(usize, Option<usize>)],
) -> (HashMap<usize, String>, bool) {
    let objs = &walker.objs;
    let wanted: HashSet<usize> = wanted
        .iter()
        .filter(|(addr, ty)| ty.is_none_or(|ty| objs.type_of(*addr).ok() == Some(ty)))
        .map(|(addr, _)| *addr)
        .collect();
    if wanted.is_empty() {
        return (HashMap::new(), true);
    }
    let mut walk = Walk::new(objs, wanted);
    let complete = walk.run(&roots(walker, interp, &[], &[]));
    let names = walk.found.into_iter().map(|(a, f)| (a, f.name)).collect();
    (names, complete)
}

fn apply(lock: &mut Lock, name: String, how: NameHow, frame: String) {
    let n = LockName {
        name: name.clone(),
        frame,
        how,
    };
    if !lock.names.contains(&n) {
        lock.names.push(n);
    }
    lock.name = Some(name);
}

/// Whether `container`'s entry is still `child`, read now.
fn hop_holds(objs: &Objects, hop: &Hop) -> bool {
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
fn entries(objs: &Objects, obj: usize) -> Vec<(usize, usize)> {
    if objs.type_is(obj, "dict") {
        return objs.dict_entries(obj).unwrap_or_default();
    }
    if let Some(d) = objs.class_dict(obj) {
        return objs.dict_entries(d).unwrap_or_default();
    }
    objs.instance_entries(obj).unwrap_or_default()
}

/// The frames' own globals first (the blocked and holding threads'), then `sys.modules`.
fn roots(walker: &Walker, interp: usize, raw: &[RawThread], threads: &[Thread]) -> Vec<Root> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let involved: HashSet<u64> = threads
        .iter()
        .filter(|t| t.blocked || !t.holds.is_empty())
        .map(|t| t.thread_id)
        .collect();
    for rt in raw.iter().filter(|t| involved.contains(&t.thread_id)) {
        for f in &rt.frames {
            if let Some(g) = frame_globals(walker, f) {
                if seen.insert(g) {
                    out.push(Root {
                        dict: g,
                        module: None,
                    });
                }
            }
        }
    }
    // A frame's module is named unqualified; stdlib frames' too (threading, queue).
    for (key, dict) in walker.objs.modules(interp).unwrap_or_default() {
        if seen.insert(dict) {
            out.push(Root {
                dict,
                module: Some(key),
            });
        }
    }
    out
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
    /// Per root: the key of the module name that qualifies its names (none for the
    /// frames' own globals), and its dict.
    root_modules: Vec<Option<usize>>,
    root_dicts: Vec<usize>,
    /// Per type: its `__slots__` members (name object, offset), read once.
    slots: HashMap<usize, Vec<(usize, usize)>>,
}

impl<'o, 'a> Walk<'o, 'a> {
    fn new(objs: &'o Objects<'a>, wanted: HashSet<usize>) -> Self {
        Walk {
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
        self.read >= MAX_OBJECTS || (self.steps % 64 == 0 && self.started.elapsed() > MAX_TIME)
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
            if self.wanted.is_empty() {
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
            if self.wanted.is_empty() {
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

/// `Class.attr` for an unnamed lock that is an attribute of the `self` of a frame of a
/// thread that holds or waits for it, with that frame's site.
fn owner_attributes(
    walker: &Walker,
    raw: &[RawThread],
    threads: &[Thread],
    locks: &[Lock],
    unnamed: &HashMap<usize, usize>,
) -> HashMap<usize, (String, String)> {
    let objs = &walker.objs;
    let mut involved: HashSet<&str> = HashSet::new();
    for i in unnamed.values() {
        let l = &locks[*i];
        involved.extend(l.holders.iter().filter_map(|h| h.thread.as_deref()));
        involved.extend(l.waiters.iter().map(|w| w.thread.as_str()));
    }
    let mut out = HashMap::new();
    for t in threads.iter().filter(|t| involved.contains(t.id.as_str())) {
        let Some(rt) = raw.iter().find(|r| r.thread_id == t.thread_id) else {
            continue;
        };
        for f in &rt.frames {
            let Some(me) = walker.local(f, "self") else {
                continue;
            };
            let slots = objs
                .type_of(me)
                .map(|ty| objs.slot_members(ty))
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, offset)| Some((k, objs.slot_value(me, offset)?)));
            let attrs = objs.instance_entries(me).unwrap_or_default();
            for (k, v) in attrs.into_iter().chain(slots) {
                if !unnamed.contains_key(&v) || out.contains_key(&v) {
                    continue;
                }
                let (Ok(attr), Ok(class)) = (objs.str(k), objs.type_name(me)) else {
                    continue;
                };
                let line = f.instr.and_then(|u| f.code.line_at(u)).unwrap_or(0);
                let site = format!("{} {}:{line}", f.code.name, short_file(&f.code.filename));
                out.insert(v, (format!("{class}.{attr}"), site));
            }
        }
    }
    out
}
