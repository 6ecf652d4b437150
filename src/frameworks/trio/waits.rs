//! What a parked trio task waits on, from its await chain: the trio primitive whose method
//! is suspended (its `self`), and who could wake it: a `Lock`'s owner (recorded in the lock),
//! a `CapacityLimiter`'s borrowers, a memory channel's other side (the tasks whose frames
//! hold it, when they account for every open one), a nursery's children; anyio's
//! `fast_acquire` wrappers, parked in their trio primitive's lot, as that primitive. Anything
//! it cannot tell is left without a target, never guessed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use crate::cpython::layout::common::OB_TYPE;
use crate::cpython::threads::Walker;
use crate::model::{
    lock_id, Evidence, Holder, Lock, LockKind, Permits, Task, TaskWait, TaskWaitKind, Waiter,
};

mod channels;

use super::fields::{word, Fields};
use super::places::{in_trio, Place, Role};
use crate::asyncio::{with_hex, ChainLink};

/// A trio task as read: its object, coroutine chain and whether it runs now.
pub(crate) struct TaskRead {
    pub(crate) addr: usize,
    pub(crate) chain: Vec<ChainLink>,
}

/// A primitive seen in a wait, with what is known of who holds it.
struct Primitive {
    kind: LockKind,
    holders: Vec<Holder>,
    permits: Option<Permits>,
    locked: Option<bool>,
}

/// The waits of one run's tasks and the primitives they name.
pub(crate) struct Waits {
    pid: i32,
    seen: BTreeMap<usize, Primitive>,
    /// Channels waited on, each with the side its first waiter waits for (true: the send
    /// side): who holds that side is read once every task's chain is (`channel_holders`).
    channels: Vec<(usize, bool)>,
    /// By code object: the slots named `self` (a method's frames all keep it in the same).
    selves: rustc_hash::FxHashMap<usize, Vec<usize>>,
    /// By type object: whether it is `cell` (a method whose nested function closes over
    /// `self` keeps it in a cell, a new one per call).
    cells: rustc_hash::FxHashMap<usize, bool>,
    /// By type object: its name and whether it is one of trio's locks (`_LockImpl` in its
    /// MRO), read once per type.
    classes: HashMap<usize, Option<(Rc<str>, bool)>>,
    /// By object: its class as `class_of` gives it (thousands of tasks wait on one Event).
    objects: rustc_hash::FxHashMap<usize, Option<(Rc<str>, bool, usize)>>,
    /// The run's task objects.
    task_addrs: HashSet<usize, std::hash::BuildHasherDefault<crate::memory::AddrHasher>>,
    /// Words that thousands of tasks parked alike share, written once each: a wait's `via`
    /// by (code object, type), its `site` by (code object, line), ids' prefixes.
    vias: rustc_hash::FxHashMap<(usize, usize), String>,
    /// By code object: whether it is trio's own (`in_trio`) or anyio's, which of trio's
    /// functions it is, and where its function's name starts in its qualified name
    /// (thousands of tasks parked alike run the same few).
    places: rustc_hash::FxHashMap<usize, (Place, Role, usize)>,
    /// An Event's or Condition's id, by object (thousands of tasks wait on one Event).
    targets: crate::memory::AddrMap<String>,
    sites: rustc_hash::FxHashMap<(usize, u32), String>,
    task_prefix: String,
    event_prefix: String,
    condition_prefix: String,
}

/// The primitives seen in one run's waits, once the tasks' chains are no longer needed.
pub(crate) struct Seen {
    pid: i32,
    seen: BTreeMap<usize, Primitive>,
}

fn holder(task: Option<String>, evidence: Evidence) -> Holder {
    Holder {
        thread: None,
        task,
        process: None,
        owner_ident: None,
        evidence,
        site: None,
        count: None,
        call_path: Vec::new(),
    }
}

impl Waits {
    /// The waits of the run whose task objects are `tasks`.
    pub(crate) fn new(pid: i32, tasks: &[usize]) -> Self {
        Waits {
            pid,
            seen: BTreeMap::new(),
            channels: Vec::new(),
            selves: Default::default(),
            cells: Default::default(),
            classes: HashMap::new(),
            objects: Default::default(),
            task_addrs: tasks.iter().copied().collect(),
            vias: Default::default(),
            places: Default::default(),
            targets: Default::default(),
            sites: Default::default(),
            task_prefix: format!("{pid}:task:"),
            event_prefix: format!("{pid}:{}:", TaskWaitKind::Event.as_str()),
            condition_prefix: format!("{pid}:{}:", TaskWaitKind::Condition.as_str()),
        }
    }

    /// Whose code `link` runs, which of trio's functions it is, and where the function's
    /// own name starts in its qualified name: once per code object.
    fn code_of(&mut self, link: &ChainLink) -> (Place, Role, usize) {
        let code = &link.raw.code;
        *self
            .places
            .entry(std::sync::Arc::as_ptr(code) as usize)
            .or_insert_with(|| {
                let function = code.name.rfind('.').map_or(0, |k| k + 1);
                if in_trio(&code.filename) {
                    (Place::Trio, Role::of(&code.filename, &code.name), function)
                } else if code.filename.contains("/anyio/") {
                    (Place::Anyio, Role::Other, function)
                } else {
                    (Place::Program, Role::Other, function)
                }
            })
    }

    /// Whether `addr` is one of the run's task objects.
    pub(crate) fn is_task(&self, addr: usize) -> bool {
        self.task_addrs.contains(&addr)
    }

    /// `self` of the method `link` runs (through its cell where a nested function closes
    /// over it). An object already classified is no cell: its type is not read again.
    fn this(&mut self, walker: &Walker, link: &ChainLink) -> Option<usize> {
        let objs = &walker.objs;
        let code = &link.raw.code;
        let slots = self
            .selves
            .entry(std::sync::Arc::as_ptr(code) as usize)
            .or_insert_with(|| walker.local_indices(code, "self").collect());
        let v = slots.iter().find_map(|i| walker.local_at(&link.raw, *i))?;
        if self.objects.contains_key(&v) {
            return Some(v);
        }
        // Its type and, if it is a cell, what the cell holds, in one read.
        let cell_ref = objs.layout.stdlib.cell_ref;
        let mut head = [0u8; 32];
        let n = (cell_ref + 8).max(OB_TYPE + 8);
        if n > head.len() || objs.mem.read_into(v, &mut head[..n]).is_err() {
            return (!objs.type_is(v, "cell")).then_some(v);
        }
        let ty = word(&head, OB_TYPE);
        let is_cell = *self
            .cells
            .entry(ty)
            .or_insert_with(|| objs.type_is(v, "cell"));
        if !is_cell {
            return Some(v);
        }
        Some(word(&head, cell_ref)).filter(|v| *v != 0)
    }

    /// `PID:task:0x...` of a task object.
    fn task_id(&self, addr: usize) -> String {
        with_hex(&self.task_prefix, addr)
    }

    /// `trio.{class}.{function}` for a method of `class` (type object `ty`) in `link`.
    fn via(&mut self, link: &ChainLink, ty: usize, class: &str, function: &str) -> String {
        let code = std::sync::Arc::as_ptr(&link.raw.code) as usize;
        self.vias
            .entry((code, ty))
            .or_insert_with(|| format!("trio.{class}.{function}"))
            .clone()
    }

    /// The class name of `obj` and whether it is a trio lock, once per type.
    fn class_of(
        &mut self,
        objs: &crate::cpython::objects::Objects,
        obj: usize,
    ) -> Option<(Rc<str>, bool, usize)> {
        if let Some(known) = self.objects.get(&obj) {
            return known.clone();
        }
        let class = self.read_class(objs, obj);
        self.objects.insert(obj, class.clone());
        class
    }

    fn read_class(
        &mut self,
        objs: &crate::cpython::objects::Objects,
        obj: usize,
    ) -> Option<(Rc<str>, bool, usize)> {
        let ty = objs.type_of(obj).ok()?;
        let (name, is_lock) = self
            .classes
            .entry(ty)
            .or_insert_with(|| {
                let mro = objs.type_mro_names(obj).ok()?;
                let name: Rc<str> = mro.first().map(String::as_str).unwrap_or_default().into();
                Some((name, mro.iter().any(|n| n == "_LockImpl")))
            })
            .clone()?;
        Some((name, is_lock, ty))
    }

    /// What is left once every task's wait is read: the primitives seen.
    pub(crate) fn finish(self) -> Seen {
        Seen {
            pid: self.pid,
            seen: self.seen,
        }
    }

    /// What the parked task at `addr` waits for, from its await `chain`; `None` when its
    /// chain could not be read.
    pub(crate) fn of(
        &mut self,
        walker: &Walker,
        fields: &mut Fields,
        addr: usize,
        chain: &[ChainLink],
    ) -> Option<TaskWait> {
        let innermost = chain.last()?;
        // Whose code each link runs, and which function (a chain is at most 64 deep).
        let mut codes = [(Place::Program, Role::Other, 0); 64];
        for (i, link) in chain.iter().enumerate().take(64) {
            codes[i] = self.code_of(link);
        }
        let codes = &codes[..chain.len().min(64)];
        let is_trio = |i: usize| codes.get(i).is_some_and(|c| c.0 == Place::Trio);
        // The program's own frame: not trio's, nor anyio's wrappers around it.
        let site = chain
            .iter()
            .zip(codes)
            .rev()
            .find(|(_, c)| c.0 == Place::Program)
            .map(|(l, _)| {
                let code = std::sync::Arc::as_ptr(&l.raw.code) as usize;
                self.sites
                    .entry((code, l.frame.line))
                    .or_insert_with(|| l.frame.site())
                    .clone()
            });
        let mut wait = TaskWait {
            kind: TaskWaitKind::Reschedule,
            target: None,
            targets: Vec::new(),
            future: None,
            evidence: Evidence::Memory,
            site,
            name: None,
            via: None,
            program_name: None,
        };
        let objs = &walker.objs;
        // Outermost trio frame first: `sleep` before the `sleep_forever` it calls.
        for (i, link) in chain.iter().enumerate().filter(|(i, _)| is_trio(*i)) {
            let (_, role, at) = codes[i];
            if role == Role::Other {
                continue;
            }
            let function = link.raw.code.name.get(at..).unwrap_or("");
            match role {
                Role::Other => {}
                Role::Sleep => {
                    wait.kind = TaskWaitKind::Sleep;
                    wait.via = Some(format!("trio.{function}"));
                    return Some(wait);
                }
                Role::Io => {
                    wait.kind = TaskWaitKind::Io;
                    wait.via = Some(format!("trio.lowlevel.{function}"));
                    return Some(wait);
                }
                Role::NurseryWait => {
                    let nursery = self.this(walker, link)?;
                    wait.kind = TaskWaitKind::Gather;
                    wait.via = Some("trio nursery".into());
                    let children = fields
                        .get(objs, nursery, "_children")
                        .and_then(|s| objs.set_items(s).ok())
                        .unwrap_or_default();
                    let mut children: Vec<usize> = children
                        .into_iter()
                        .filter(|c| self.task_addrs.contains(c))
                        .collect();
                    children.sort_unstable();
                    wait.targets = children.iter().map(|c| self.task_id(*c)).collect();
                    return Some(wait);
                }
                Role::Primitive => {
                    let obj = self.this(walker, link)?;
                    let (ty, is_lock, type_addr) = self.class_of(objs, obj)?;
                    let ty = ty.as_ref();
                    wait.via = Some(self.via(link, type_addr, ty, function));
                    if is_lock {
                        self.lock_wait(objs, fields, obj, addr, &mut wait);
                    } else if ty == "Semaphore" || ty == "CapacityLimiter" {
                        self.semaphore_wait(objs, fields, obj, &ty, &mut wait);
                    } else if ty == "Event" || ty == "Condition" {
                        let prefix = if ty == "Event" {
                            wait.kind = TaskWaitKind::Event;
                            &self.event_prefix
                        } else {
                            wait.kind = TaskWaitKind::Condition;
                            &self.condition_prefix
                        };
                        let target = self
                            .targets
                            .entry(obj)
                            .or_insert_with(|| with_hex(prefix, obj));
                        wait.target = Some(target.clone());
                    } else {
                        continue;
                    }
                    return Some(wait);
                }
                // anyio's `fast_acquire` parks in its trio primitive's own lot.
                Role::Park => {
                    let caller = i.checked_sub(1).and_then(|k| chain.get(k));
                    let lot = self.this(walker, link);
                    let Some((obj, class)) = caller
                        .zip(lot)
                        .and_then(|(c, lot)| self.anyio_primitive(walker, fields, c, lot))
                    else {
                        continue;
                    };
                    let (ty, is_lock, _) = self.class_of(objs, obj)?;
                    wait.via = Some(format!("anyio.{class}.acquire (fast_acquire)"));
                    if is_lock {
                        self.lock_wait(objs, fields, obj, addr, &mut wait);
                    } else if ty.as_ref() == "Semaphore" {
                        self.semaphore_wait(objs, fields, obj, &ty, &mut wait);
                    } else {
                        continue;
                    }
                    return Some(wait);
                }
                Role::Channel => {
                    let end = self.this(walker, link)?;
                    let state = fields.get(objs, end, "_state")?;
                    wait.kind = TaskWaitKind::Channel;
                    wait.via = Some(format!("trio.{}.{function}", objs.type_name(end).ok()?));
                    wait.target = Some(lock_id(self.pid, state));
                    // A receiver waits for the send side, a sender for the receive side.
                    let other_is_send = function == "receive";
                    if !self.seen.contains_key(&state) {
                        self.seen.insert(
                            state,
                            Primitive {
                                kind: LockKind::Channel,
                                holders: Vec::new(),
                                permits: None,
                                locked: None,
                            },
                        );
                        self.channels.push((state, other_is_send));
                    }
                    return Some(wait);
                }
            }
        }
        // Parked by a low-level call no primitive explains (`wait_task_rescheduled` or
        // `ParkingLot.park` called directly): whoever reschedules it is not recorded anywhere.
        if let Some(outer) = (0..chain.len()).find(|i| is_trio(*i)).map(|i| &chain[i]) {
            let function = outer.raw.code.name.rsplit('.').next().unwrap_or("");
            wait.via = Some(match function {
                "wait_task_rescheduled" => "trio.lowlevel.wait_task_rescheduled".into(),
                "park" => "trio.lowlevel.ParkingLot.park".into(),
                _ => format!("trio {}", outer.raw.code.name),
            });
        } else {
            wait.via = Some(innermost.raw.code.name.clone());
        }
        wait.evidence = Evidence::Unknown;
        Some(wait)
    }

    /// The trio primitive an anyio `Lock` or `Semaphore` wraps, when `caller` is that
    /// wrapper's `acquire` parking in `lot`, the primitive's own lot; with the wrapper's class.
    fn anyio_primitive(
        &mut self,
        walker: &Walker,
        fields: &mut Fields,
        caller: &ChainLink,
        lot: usize,
    ) -> Option<(usize, Rc<str>)> {
        let code = &caller.raw.code;
        if !code.filename.ends_with("anyio/_backends/_trio.py") || !code.name.ends_with("acquire") {
            return None;
        }
        let objs = &walker.objs;
        let wrapper = walker.local(&caller.raw, "self")?;
        let (class, _, _) = self.class_of(objs, wrapper)?;
        // `__original`, name-mangled by its class.
        let original = match class.as_ref() {
            "Lock" => fields.get(objs, wrapper, "_Lock__original"),
            "Semaphore" => fields.get(objs, wrapper, "_Semaphore__original"),
            _ => None,
        }?;
        (fields.get(objs, original, "_lot") == Some(lot)).then_some((original, class))
    }

    fn lock_wait(
        &mut self,
        objs: &crate::cpython::objects::Objects,
        fields: &mut Fields,
        lock: usize,
        task: usize,
        wait: &mut TaskWait,
    ) {
        wait.kind = TaskWaitKind::Lock;
        wait.target = Some(lock_id(self.pid, lock));
        // Exact when the task is parked in the lock's own lot.
        let parked = fields
            .get(objs, lock, "_lot")
            .and_then(|lot| fields.get(objs, lot, "_parked"))
            .and_then(|d| objs.dict_entries(d).ok())
            .is_some_and(|e| e.iter().any(|(k, _)| *k == task));
        if !parked {
            wait.evidence = Evidence::Unknown;
        }
        let owner = fields.get(objs, lock, "_owner");
        let owner = owner.map(|o| self.task_id(o));
        self.seen.entry(lock).or_insert_with(|| Primitive {
            kind: LockKind::TrioLock,
            locked: Some(owner.is_some()),
            // trio records the owner task in the lock itself.
            holders: owner
                .map(|o| holder(Some(o), Evidence::Memory))
                .into_iter()
                .collect(),
            permits: None,
        });
    }

    fn semaphore_wait(
        &mut self,
        objs: &crate::cpython::objects::Objects,
        fields: &mut Fields,
        obj: usize,
        ty: &str,
        wait: &mut TaskWait,
    ) {
        wait.kind = TaskWaitKind::Semaphore;
        wait.target = Some(lock_id(self.pid, obj));
        let int = |fields: &mut Fields, name| {
            fields
                .get(objs, obj, name)
                .and_then(|v| objs.int(v).ok())
                .and_then(|v| u64::try_from(v).ok())
        };
        let (holders, permits) = if ty == "CapacityLimiter" {
            let borrowers = fields
                .get(objs, obj, "_borrowers")
                .and_then(|s| objs.set_items(s).ok())
                .unwrap_or_default();
            let total = int(fields, "_total_tokens");
            let holders: Vec<Holder> = borrowers
                .iter()
                .map(|b| {
                    if self.task_addrs.contains(b) {
                        holder(Some(self.task_id(*b)), Evidence::Memory)
                    } else {
                        // A borrower that is not a task (`acquire_on_behalf_of`).
                        holder(None, Evidence::Unknown)
                    }
                })
                .collect();
            let free = total.map(|t| t.saturating_sub(borrowers.len() as u64));
            (holders, Some(Permits { total, free }))
        } else {
            let free = int(fields, "_value");
            let total = int(fields, "_max_value");
            // A semaphore records no holders.
            (Vec::new(), Some(Permits { total, free }))
        };
        self.seen.entry(obj).or_insert(Primitive {
            kind: LockKind::TrioSemaphore,
            locked: permits.and_then(|p| p.free).map(|f| f == 0),
            holders,
            permits,
        });
    }
}

impl Seen {
    /// The primitives seen, with the tasks waiting for each.
    pub(crate) fn into_locks(self, tasks: &[Task]) -> Vec<Lock> {
        if self.seen.is_empty() {
            // No waiter to look up (ten thousand tasks on an Event name none).
            return Vec::new();
        }
        let pid = self.pid;
        let ids: HashMap<String, usize> = self
            .seen
            .keys()
            .map(|addr| (lock_id(pid, *addr), *addr))
            .collect();
        let mut waiting: HashMap<usize, Vec<Waiter>> = HashMap::new();
        for t in tasks {
            let Some(w) = t.waits_for.as_ref() else {
                continue;
            };
            let Some(addr) = w.target.as_ref().and_then(|x| ids.get(x)) else {
                continue;
            };
            waiting.entry(*addr).or_default().push(Waiter {
                thread: t.id.clone(),
                evidence: w.evidence,
                site: w.site.clone(),
            });
        }
        self.seen
            .into_iter()
            .map(|(addr, s)| {
                let id = lock_id(pid, addr);
                let waiters = waiting.remove(&addr).unwrap_or_default();
                Lock {
                    id,
                    pid,
                    address: format!("{addr:#x}"),
                    kind: s.kind,
                    name: None,
                    names: Vec::new(),
                    permits: s.permits,
                    locked: s.locked,
                    holders: s.holders,
                    waiters,
                    module: None,
                    shared: None,
                    contradictions: Vec::new(),
                    python_type: None,
                    readers: None,
                }
            })
            .collect()
    }
}
