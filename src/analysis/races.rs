//! Race candidates by sampled lockset (after Eraser): per sample, every shared location each
//! thread can write from where it is (its current line, or a write its frames can still
//! reach), with the locks held then: the locks it holds now plus those of the `with` blocks
//! around the write. A location written by two or more threads whose lock sets have an empty
//! intersection is a `race` finding, unless every write to it, by any thread, adds items to a
//! container or takes one out (`list.append`, `set.add`, `list.pop`, ...): under the GIL those
//! lose and duplicate nothing in any order, so they race only with a write that replaces or
//! removes (a store, `del`, `remove`, `clear`). Reads that mutate what a location holds
//! (`self.results.append(x)` reads `self.results`) join the lock sets of that location: with a
//! write replacing it, accesses from two threads with no lock in common are a race too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::model::*;
use crate::snapshot::Snapshot;

#[derive(Debug, Default, Clone)]
struct PerThread {
    id: String,
    name: Option<String>,
    sites: BTreeSet<String>,
    /// Where it reads the location to mutate what it holds.
    read_sites: BTreeSet<String>,
    /// Locks held at every sampled write (intersection so far).
    lockset: Option<BTreeSet<String>>,
    samples: usize,
    evidence: BTreeSet<WriteEvidence>,
}

#[derive(Debug, Default)]
struct Tracked {
    /// How the code names it; a name through `self` only until another is seen.
    name: String,
    through_self: bool,
    /// By thread incarnation (id, first snapshot seen): an ident reused by a later thread is
    /// another thread.
    threads: BTreeMap<Incarnation, PerThread>,
    /// Locks held at every sampled write by any thread.
    common: Option<BTreeSet<String>>,
    /// The only thread seen writing so far (Eraser's exclusive state): its writes are not
    /// judged until a second thread writes, so one thread's set-up before handing an object
    /// over (through a queue, say) is not a race.
    exclusive: Option<Incarnation>,
    shared: bool,
    /// A write other than adding or taking one item was seen (by any thread).
    order_dependent: bool,
    /// A read to mutate what the location holds was seen (by any thread).
    read: bool,
}

#[derive(Default)]
pub struct RaceTracker {
    locations: BTreeMap<Location, Tracked>,
    lock_names: BTreeMap<String, String>,
    /// Program-wide names of objects (locks, the objects of raced attributes and items) by
    /// address, read at the recording's end (`set_program_names`): they lead.
    program: HashMap<usize, String>,
    snapshots: usize,
    /// Each live thread's incarnation, and the last snapshot each incarnation was seen in.
    current: FxHashMap<String, Incarnation>,
    last_seen: FxHashMap<Incarnation, usize>,
    /// What each live thread could write when its frames were last read (a thread on a CPU is
    /// not read, and keeps its last sighting).
    reach: FxHashMap<Incarnation, FxHashSet<Location>>,
}

type Incarnation = (String, usize);

/// At most this many writes of a thread are compared with its kept reach (pairwise).
const SAME_REACH_MAX: usize = 64;

/// Narrow a lock set to the locks held at one write: `held` (the thread's) and `guards` (the
/// `with` blocks around the write). The first write sets it.
fn intersect(acc: &mut Option<BTreeSet<String>>, held: &[&str], guards: &[GuardLock]) {
    match acc {
        None => {
            let locks = held.iter().map(|l| l.to_string());
            *acc = Some(locks.chain(guards.iter().map(|g| g.lock.clone())).collect());
        }
        Some(set) => {
            set.retain(|l| held.contains(&l.as_str()) || guards.iter().any(|g| g.lock == *l))
        }
    }
}

/// Whether `reach` holds exactly the locations of `writes` (then it need not be rebuilt).
/// Counted pairwise, so only for a thread with few writes (`SAME_REACH_MAX`); more are
/// rebuilt.
fn same_reach(reach: &FxHashSet<Location>, writes: &[WriteAccess]) -> bool {
    if writes.len() > SAME_REACH_MAX {
        return false;
    }
    let distinct = writes
        .iter()
        .enumerate()
        .filter(|(i, w)| !writes[..*i].iter().any(|o| o.location == w.location))
        .count();
    distinct == reach.len() && writes.iter().all(|w| reach.contains(&w.location))
}

impl RaceTracker {
    pub fn observe(&mut self, snap: &Snapshot) {
        self.snapshots += 1;
        let now = self.snapshots;
        // The ids whose reach was set in this snapshot (one id's thread states add up).
        let mut refreshed: Vec<&str> = Vec::new();
        for t in &snap.threads {
            // A thread absent from the previous snapshot is a new one, even with a reused id.
            // One id twice in a snapshot (a second thread state made on the same OS thread,
            // as C code does with `PyThreadState_New`) is one thread: it cannot race itself.
            let known = self
                .current
                .get(&t.id)
                .is_some_and(|inc| self.last_seen.get(inc).is_some_and(|&s| s + 1 >= now));
            if !known {
                self.current.insert(t.id.clone(), (t.id.clone(), now));
            }
            let inc = &self.current[&t.id];
            if !t.writes.is_empty() {
                // A thread's reach is that of all its thread states in this snapshot.
                let first = !refreshed.contains(&t.id.as_str());
                if first {
                    refreshed.push(&t.id);
                }
                match self.reach.get_mut(inc) {
                    Some(reach) if first && same_reach(reach, &t.writes) => {}
                    Some(reach) => {
                        if first {
                            reach.clear();
                        }
                        for w in &t.writes {
                            if !reach.contains(&w.location) {
                                reach.insert(w.location.clone());
                            }
                        }
                    }
                    None => {
                        let reach = t.writes.iter().map(|w| w.location.clone()).collect();
                        self.reach.insert(inc.clone(), reach);
                    }
                }
            }
            match self.last_seen.get_mut(inc) {
                Some(seen) => *seen = now,
                None => {
                    self.last_seen.insert(inc.clone(), now);
                }
            }
        }
        let last_seen = &self.last_seen;
        self.reach.retain(|inc, _| last_seen.get(inc) == Some(&now));
        for t in &snap.threads {
            let inc = &self.current[&t.id];
            let mut held: Vec<&str> = t.holds.iter().map(|h| h.lock.as_str()).collect();
            held.sort_unstable();
            held.dedup();
            let mut counted: Vec<&Location> = Vec::new();
            for w in &t.writes {
                let loc = match self.locations.get_mut(&w.location) {
                    Some(loc) => loc,
                    None => self
                        .locations
                        .entry(w.location.clone())
                        .or_insert_with(|| Tracked {
                            name: w.name.clone(),
                            through_self: w.through_self,
                            ..Tracked::default()
                        }),
                };
                if loc.through_self && !w.through_self {
                    loc.name = w.name.clone();
                    loc.through_self = false;
                }
                let reads = w.access == AccessKind::ReadThenMutate;
                loc.order_dependent |= !reads && !w.adds_or_takes;
                loc.read |= reads;
                if !loc.shared {
                    match &loc.exclusive {
                        None => {
                            loc.exclusive = Some(inc.clone());
                            continue;
                        }
                        Some(owner) if owner == inc => continue,
                        // The first writer's exclusive hold ends only if it can still write
                        // the location now; otherwise the object changed hands (a queue
                        // hand-off, or a freed object's address taken by a new one) and the
                        // newcomer holds it alone.
                        Some(owner) => {
                            if self
                                .reach
                                .get(owner)
                                .is_some_and(|r| r.contains(&w.location))
                            {
                                loc.shared = true;
                            } else {
                                loc.exclusive = Some(inc.clone());
                                continue;
                            }
                        }
                    }
                }
                let per = match loc.threads.get_mut(inc) {
                    Some(per) => per,
                    None => loc.threads.entry(inc.clone()).or_default(),
                };
                if per.id != t.id {
                    per.id.clone_from(&t.id);
                }
                if per.name != t.name {
                    per.name.clone_from(&t.name);
                }
                let sites = if reads {
                    &mut per.read_sites
                } else {
                    &mut per.sites
                };
                if !sites.contains(&w.site) {
                    sites.insert(w.site.clone());
                }
                per.evidence.insert(w.evidence);
                // Several writes to one location in one sample are one sample of it.
                if !counted.contains(&&w.location) {
                    counted.push(&w.location);
                    per.samples += 1;
                }
                intersect(&mut per.lockset, &held, &w.guards);
                intersect(&mut loc.common, &held, &w.guards);
                for g in &w.guards {
                    if let Some(n) = &g.name {
                        if !self.lock_names.contains_key(&g.lock) {
                            self.lock_names.insert(g.lock.clone(), n.clone());
                        }
                    }
                }
            }
            for h in &t.holds {
                if let Some(n) = &h.name {
                    if !self.lock_names.contains_key(&h.lock) {
                        self.lock_names.insert(h.lock.clone(), n.clone());
                    }
                }
            }
        }
    }

    fn lock_name(&self, id: &str) -> String {
        lock_address(id)
            .and_then(|a| self.program.get(&a))
            .or_else(|| self.lock_names.get(id))
            .cloned()
            .unwrap_or_else(|| id.rsplit(':').next().unwrap_or(id).to_string())
    }

    /// The objects whose program-wide names the race findings would use, each with the type
    /// it must still have where that is known: the locks of their lock sets, and the object
    /// whose attribute (or the container whose items) they race on.
    pub fn wanted(&self) -> Vec<(usize, Option<usize>)> {
        let hex = |s: &str| usize::from_str_radix(s.trim_start_matches("0x"), 16).ok();
        let mut out = Vec::new();
        for (location, loc) in self.locations.iter().filter(|(_, l)| self.raced(l)) {
            match location {
                Location::Attr { object, class, .. } => {
                    out.extend(hex(object).map(|o| (o, hex(class))))
                }
                Location::Item { container, class } => {
                    out.extend(hex(container).map(|o| (o, hex(class))))
                }
                Location::Global { .. } => {}
            }
            for p in loc.threads.values() {
                out.extend(
                    p.lockset
                        .iter()
                        .flatten()
                        .filter_map(|l| lock_address(l))
                        .map(|a| (a, None)),
                );
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Program-wide names read for `wanted`'s objects: a race names its locks, and the object
    /// whose attribute or items it races on, by them (`meter.value`, not `Meter.value`).
    pub fn set_program_names(&mut self, names: &HashMap<usize, String>) {
        self.program = names.clone();
    }

    /// How the finding names a location: by the program-wide name of its object where one
    /// was read, else as the code names it.
    fn location_name(&self, location: &Location, loc: &Tracked) -> String {
        let named = |obj: &str| {
            usize::from_str_radix(obj.trim_start_matches("0x"), 16)
                .ok()
                .and_then(|a| self.program.get(&a))
        };
        match location {
            Location::Attr { object, attr, .. } => named(object).map(|n| format!("{n}.{attr}")),
            Location::Item { container, .. } => named(container).map(|n| format!("{n}[...]")),
            Location::Global { .. } => None,
        }
        .unwrap_or_else(|| loc.name.clone())
    }

    /// Whether a location is a race: written by two threads alive at the same time with no
    /// lock in common, and not only by adds and takes.
    fn raced(&self, loc: &Tracked) -> bool {
        if loc.threads.len() < 2
            || !loc.common.as_ref().is_some_and(|c| c.is_empty())
            || !loc.order_dependent
        {
            return false;
        }
        // Two threads never alive at the same time cannot race (one ended before the
        // other started: an address reused by a new object, or a later test's thread).
        let life = |inc: &Incarnation| (inc.1, self.last_seen.get(inc).copied().unwrap_or(inc.1));
        let incs: Vec<&Incarnation> = loc.threads.keys().collect();
        incs.iter().enumerate().any(|(i, a)| {
            incs[i + 1..].iter().any(|b| {
                let (a0, a1) = life(a);
                let (b0, b1) = life(b);
                a0 <= b1 && b0 <= a1
            })
        })
    }

    pub fn findings(&self, pid: i32) -> Vec<Finding> {
        let mut out = Vec::new();
        for (location, loc) in &self.locations {
            if !self.raced(loc) {
                continue;
            }
            let id = location.id();
            let name = self.location_name(location, loc);
            let sides: Vec<RaceSide> = loc
                .threads
                .iter()
                .map(|(_, p)| {
                    let locks: Vec<String> = p.lockset.iter().flatten().cloned().collect();
                    RaceSide {
                        thread: p.id.clone(),
                        name: p.name.clone(),
                        sites: p.sites.iter().cloned().collect(),
                        read_sites: p.read_sites.iter().cloned().collect(),
                        lock_names: locks.iter().map(|l| self.lock_name(l)).collect(),
                        locks,
                        samples: p.samples,
                        evidence: p.evidence.iter().copied().collect(),
                    }
                })
                .collect();
            let parts: Vec<String> = sides
                .iter()
                .map(|side| {
                    let who = side
                        .name
                        .as_deref()
                        .map(|n| format!("\"{n}\""))
                        .unwrap_or_else(|| side.thread.clone());
                    let holding = if side.lock_names.is_empty() {
                        "no lock".to_string()
                    } else {
                        side.lock_names.join(", ")
                    };
                    let seen: Vec<&str> = side.evidence.iter().map(|e| e.as_str()).collect();
                    let at = if !loc.read {
                        format!("at {}", side.sites.join(", "))
                    } else {
                        let mut at = Vec::new();
                        if !side.sites.is_empty() {
                            at.push(format!("writes at {}", side.sites.join(", ")));
                        }
                        if !side.read_sites.is_empty() {
                            at.push(format!("reads at {}", side.read_sites.join(", ")));
                        }
                        at.join(" and ")
                    };
                    format!(
                        "{who} {at} holding {holding} ({} samples, {})",
                        side.samples,
                        seen.join(", ")
                    )
                })
                .collect();
            let mut locks: BTreeSet<String> = BTreeSet::new();
            for side in &sides {
                locks.extend(side.locks.iter().cloned());
            }
            out.push(Finding {
                id: format!("race:{id}"),
                kind: FindingKind::Race,
                severity: FindingKind::Race.severity(),
                first_seen: String::new(),
                last_seen: String::new(),
                samples: sides.iter().map(|p| p.samples).sum(),
                summary: format!(
                    "{} is {} by {} threads with no lock in common: {}",
                    name,
                    if loc.read {
                        "replaced and read to mutate what it holds"
                    } else {
                        "written"
                    },
                    sides.len(),
                    parts.join("; ")
                ),
                threads: loc
                    .threads
                    .values()
                    .map(|p| p.id.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                tasks: Vec::new(),
                processes: vec![pid],
                locks: locks.into_iter().collect(),
                edges: sides
                    .iter()
                    .flat_map(|side| {
                        let id = id.clone();
                        let writes = side.sites.iter().map(|s| (EdgeVia::Writes, s));
                        let reads = side.read_sites.iter().map(|s| (EdgeVia::Reads, s));
                        writes.chain(reads).map(move |(via, s)| Edge {
                            from: side.thread.clone(),
                            to: id.clone(),
                            via,
                            evidence: Evidence::ValueStack,
                            site: Some(s.clone()),
                            name: None,
                        })
                    })
                    .collect(),
                advice: Some(if loc.read {
                    "Hold the lock that guards its replacement around every read that mutates what it holds, from the read to the mutation (or confine it to one thread).".into()
                } else {
                    "Guard every write to this location with the same lock (or confine it to one thread).".into()
                }),
                duration: None, ongoing: None, loop_id: None, culprit: None, stack: Vec::new(), histogram: None,
                knot: false,
                location: Some(name),
                locksets: sides,
                notes: Vec::new(),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
