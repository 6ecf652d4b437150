//! Race candidates by sampled lockset (after Eraser): per sample, every shared location each
//! thread can write from where it is (its current line, or a write its frames can still
//! reach), with the locks held then: the locks it holds now plus those of the `with` blocks
//! around the write. A location written by two or more threads whose lock sets have an empty
//! intersection is a `race` finding.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::*;
use crate::snapshot::Snapshot;

#[derive(Debug, Default, Clone)]
struct PerThread {
    id: String,
    name: Option<String>,
    sites: BTreeSet<String>,
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
}

#[derive(Default)]
pub struct RaceTracker {
    locations: BTreeMap<Location, Tracked>,
    lock_names: BTreeMap<String, String>,
    snapshots: usize,
    /// Each live thread's incarnation, and the last snapshot each incarnation was seen in.
    current: HashMap<String, Incarnation>,
    last_seen: HashMap<Incarnation, usize>,
}

type Incarnation = (String, usize);

fn intersect(acc: &mut Option<BTreeSet<String>>, with: &BTreeSet<String>) {
    *acc = Some(match acc.take() {
        None => with.clone(),
        Some(s) => s.intersection(with).cloned().collect(),
    });
}

impl RaceTracker {
    pub fn observe(&mut self, snap: &Snapshot) {
        self.snapshots += 1;
        let now = self.snapshots;
        for t in &snap.threads {
            // A thread absent from the previous snapshot is a new one, even with a reused id.
            let inc = match self.current.get(&t.id) {
                Some(inc) if self.last_seen.get(inc) == Some(&(now - 1)) => inc.clone(),
                _ => (t.id.clone(), now),
            };
            self.current.insert(t.id.clone(), inc.clone());
            self.last_seen.insert(inc, now);
        }
        for t in &snap.threads {
            let inc = self.current[&t.id].clone();
            let held: BTreeSet<String> = t.holds.iter().map(|h| h.lock.clone()).collect();
            let mut counted: BTreeSet<&Location> = BTreeSet::new();
            for w in &t.writes {
                let loc = self
                    .locations
                    .entry(w.location.clone())
                    .or_insert_with(|| Tracked {
                        name: w.name.clone(),
                        through_self: w.through_self,
                        ..Tracked::default()
                    });
                if loc.through_self && !w.through_self {
                    loc.name = w.name.clone();
                    loc.through_self = false;
                }
                if !loc.shared {
                    match &loc.exclusive {
                        None => {
                            loc.exclusive = Some(inc.clone());
                            continue;
                        }
                        Some(owner) if *owner == inc => continue,
                        Some(_) => loc.shared = true,
                    }
                }
                let mut locks = held.clone();
                locks.extend(w.guards.iter().map(|g| g.lock.clone()));
                let per = loc.threads.entry(inc.clone()).or_default();
                per.id = t.id.clone();
                per.name = t.name.clone();
                per.sites.insert(w.site.clone());
                per.evidence.insert(w.evidence);
                // Several writes to one location in one sample are one sample of it.
                if counted.insert(&w.location) {
                    per.samples += 1;
                }
                intersect(&mut per.lockset, &locks);
                intersect(&mut loc.common, &locks);
                for g in &w.guards {
                    if let Some(n) = &g.name {
                        self.lock_names
                            .entry(g.lock.clone())
                            .or_insert_with(|| n.clone());
                    }
                }
            }
            for h in &t.holds {
                if let Some(n) = &h.name {
                    self.lock_names
                        .entry(h.lock.clone())
                        .or_insert_with(|| n.clone());
                }
            }
        }
    }

    fn lock_name(&self, id: &str) -> String {
        self.lock_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.rsplit(':').next().unwrap_or(id).to_string())
    }

    pub fn findings(&self, pid: i32) -> Vec<Finding> {
        let mut out = Vec::new();
        for (location, loc) in &self.locations {
            if loc.threads.len() < 2 || !loc.common.as_ref().is_some_and(|c| c.is_empty()) {
                continue;
            }
            // Two threads never alive at the same time cannot race (one ended before the
            // other started: an address reused by a new object, or a later test's thread).
            let life =
                |inc: &Incarnation| (inc.1, self.last_seen.get(inc).copied().unwrap_or(inc.1));
            let incs: Vec<&Incarnation> = loc.threads.keys().collect();
            let overlap = incs.iter().enumerate().any(|(i, a)| {
                incs[i + 1..].iter().any(|b| {
                    let (a0, a1) = life(a);
                    let (b0, b1) = life(b);
                    a0 <= b1 && b0 <= a1
                })
            });
            if !overlap {
                continue;
            }
            let id = location.id();
            let sides: Vec<RaceSide> = loc
                .threads
                .iter()
                .map(|(_, p)| {
                    let locks: Vec<String> = p.lockset.iter().flatten().cloned().collect();
                    RaceSide {
                        thread: p.id.clone(),
                        name: p.name.clone(),
                        sites: p.sites.iter().cloned().collect(),
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
                    format!(
                        "{who} at {} holding {holding} ({} samples, {})",
                        side.sites.join(", "),
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
                    "{} is written by {} threads with no lock in common: {}",
                    loc.name,
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
                        side.sites.iter().map(move |s| Edge {
                            from: side.thread.clone(),
                            to: id.clone(),
                            via: EdgeVia::Writes,
                            evidence: Evidence::ValueStack,
                            site: Some(s.clone()),
                            name: None,
                        })
                    })
                    .collect(),
                advice: Some("Guard every write to this location with the same lock (or confine it to one thread).".into()),
                duration: None, ongoing: None, loop_id: None, culprit: None, stack: Vec::new(), histogram: None,
                knot: false,
                location: Some(loc.name.clone()),
                locksets: sides,
            });
        }
        out
    }
}
