//! Lock-order inversions (latent deadlocks), seen over time: each time a thread is seen
//! holding lock A while holding or waiting for lock B, record A -> B with both sites. A cycle
//! in this graph means two code paths take the same locks in opposite orders, even if the run
//! never deadlocked (ThreadSanitizer's "lock-order-inversion (potential deadlock)").

use std::collections::{BTreeMap, HashMap};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::*;
use crate::snapshot::Snapshot;

fn short(id: &str) -> &str {
    id.rsplit(':').next().unwrap_or(id)
}

#[derive(Debug, Clone)]
pub struct OrderEdge {
    pub thread: String,
    pub thread_name: Option<String>,
    /// Where A was taken, and where B was taken (or is being waited for) while A was held.
    pub first_site: Option<String>,
    pub then_site: Option<String>,
    pub first_name: Option<String>,
    pub then_name: Option<String>,
    /// How the second lock was known: held (`value_stack`) or waited for (`futex`).
    pub then_evidence: Evidence,
    pub samples: usize,
}

#[derive(Default)]
pub struct LockOrder {
    edges: BTreeMap<(String, String), OrderEdge>,
    names: HashMap<String, String>,
    /// Program-wide names (`checking.lock`), from the latest sample that read one.
    program: HashMap<String, String>,
    /// Probe serial -> node id. An address reused by a later lock gets `#serial` appended,
    /// so two locks that lived at one address are never one node.
    serials: HashMap<u64, String>,
    first_serial_at: HashMap<usize, u64>,
}

impl LockOrder {
    fn probe_node(&mut self, pid: i32, addr: usize, serial: u64) -> String {
        if let Some(id) = self.serials.get(&serial) {
            return id.clone();
        }
        let first = *self.first_serial_at.entry(addr).or_insert(serial);
        let id = if first == serial {
            crate::snapshot::lock_id(pid, addr)
        } else {
            format!("{}#{serial}", crate::snapshot::lock_id(pid, addr))
        };
        self.serials.insert(serial, id.clone());
        id
    }

    /// Every "held A, then took B" the in-target probe recorded: complete, not sampled.
    fn observe_probe(&mut self, snap: &Snapshot) {
        let mut edges: Vec<&crate::probe::ProbeEdge> = snap.probe_edges.iter().collect();
        // Oldest locks first, so an address's first lock keeps the plain id.
        edges.sort_by_key(|e| (e.first_serial.min(e.then_serial), e.then_serial));
        for e in edges {
            let a = self.probe_node(snap.pid, e.first, e.first_serial);
            let b = self.probe_node(snap.pid, e.then, e.then_serial);
            if a == b {
                continue;
            }
            let thread = crate::snapshot::thread_id(snap.pid, e.ident);
            let thread_name = snap.thread(&thread).and_then(|t| t.name.clone());
            let entry = self.edges.entry((a, b)).or_insert_with(|| OrderEdge {
                thread,
                thread_name,
                first_site: Some(e.first_site.clone()),
                then_site: Some(e.then_site.clone()),
                first_name: None,
                then_name: None,
                then_evidence: Evidence::Probe,
                samples: 0,
            });
            entry.samples = entry.samples.max(1);
        }
    }

    pub fn observe(&mut self, snap: &Snapshot) {
        self.observe_probe(snap);
        for t in &snap.threads {
            // `holds` lists the innermost frame's innermost `with` first: reverse for
            // acquisition order. Holds known only from memory carry no order and are skipped.
            let ordered: Vec<&Hold> = t
                .holds
                .iter()
                .rev()
                .filter(|h| h.evidence != Evidence::Memory || h.site.is_some())
                .collect();
            let mut later: Vec<(String, Option<String>, Option<String>, Evidence)> = ordered
                .iter()
                .map(|h| (h.lock.clone(), h.site.clone(), h.name.clone(), h.evidence))
                .collect();
            if let Some(w) = &t.waits_for {
                if let (WaitKind::Lock, Some(target)) = (w.kind, &w.target) {
                    later.push((target.clone(), w.site.clone(), w.name.clone(), w.evidence));
                }
            }
            for (i, (a, a_site, a_name, _)) in later.iter().enumerate() {
                for (b, b_site, b_name, b_evidence) in &later[i + 1..] {
                    if a == b {
                        continue;
                    }
                    let e = self
                        .edges
                        .entry((a.clone(), b.clone()))
                        .or_insert_with(|| OrderEdge {
                            thread: t.id.clone(),
                            thread_name: t.name.clone(),
                            first_site: a_site.clone(),
                            then_site: b_site.clone(),
                            first_name: a_name.clone(),
                            then_name: b_name.clone(),
                            then_evidence: *b_evidence,
                            samples: 0,
                        });
                    e.samples += 1;
                }
            }
        }
        for l in &snap.locks {
            if let Some(n) = &l.name {
                self.program.insert(l.id.clone(), n.clone());
            }
            if let Some(n) = l
                .module
                .as_ref()
                .map(|m| format!("import {m}"))
                .or_else(|| l.names.first().map(|n| n.name.clone()))
            {
                self.names.entry(l.id.clone()).or_insert(n);
            }
        }
    }

    /// The locks of its inversions, by address, for their program-wide names.
    pub fn wanted(&self) -> Vec<(usize, Option<usize>)> {
        let mut out: Vec<(usize, Option<usize>)> = self
            .findings(0)
            .iter()
            .flat_map(|f| f.locks.iter().filter_map(|l| lock_address(l)))
            .map(|a| (a, None))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Program-wide names read at the recording's end, for locks no sample named.
    pub fn set_program_names(&mut self, names: &HashMap<usize, String>) {
        let ids: Vec<String> = self
            .edges
            .keys()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        for id in ids {
            if let Some(n) = lock_address(&id).and_then(|a| names.get(&a)) {
                self.program.entry(id).or_insert_with(|| n.clone());
            }
        }
    }

    pub fn findings(&self, pid: i32) -> Vec<Finding> {
        let mut g: DiGraph<String, ()> = DiGraph::new();
        let mut idx: HashMap<&str, NodeIndex> = HashMap::new();
        for (a, b) in self.edges.keys() {
            let ia = *idx.entry(a).or_insert_with(|| g.add_node(a.clone()));
            let ib = *idx.entry(b).or_insert_with(|| g.add_node(b.clone()));
            g.add_edge(ia, ib, ());
        }
        let mut out = Vec::new();
        for scc in petgraph::algo::tarjan_scc(&g) {
            if scc.len() < 2 {
                continue;
            }
            let mut locks: Vec<String> = scc.iter().map(|n| g[*n].clone()).collect();
            locks.sort();
            let edges: Vec<(&(String, String), &OrderEdge)> = self
                .edges
                .iter()
                .filter(|((a, b), _)| locks.contains(a) && locks.contains(b))
                .collect();
            let name = |id: &str| {
                self.names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.rsplit(':').next().unwrap_or(id).to_string())
            };
            let orders: Vec<String> = edges
                .iter()
                .map(|((a, b), e)| {
                    let who = e
                        .thread_name
                        .as_deref()
                        .map(|n| format!("\"{n}\""))
                        .unwrap_or_else(|| e.thread.clone());
                    let label =
                        |id: &str, local: &Option<String>| match (self.program.get(id), local) {
                            (Some(p), Some(n)) if p != n => format!("{p} ({n}) <{}>", short(id)),
                            (Some(p), _) => format!("{p} <{}>", short(id)),
                            (None, Some(n)) => format!("{n} <{}>", short(id)),
                            (None, None) => format!("{} <{}>", name(id), short(id)),
                        };
                    format!(
                        "{who} takes {} then {}",
                        label(a, &e.first_name),
                        label(b, &e.then_name)
                    )
                })
                .collect();
            out.push(Finding {
                id: format!("lock_order_inversion:{}", locks.join(",")),
                kind: FindingKind::LockOrderInversion,
                severity: FindingKind::LockOrderInversion.severity(),
                first_seen: String::new(),
                last_seen: String::new(),
                samples: edges.iter().map(|(_, e)| e.samples).sum(),
                summary: format!("lock-order inversion (potential deadlock): {}", orders.join("; ")),
                threads: {
                    let mut t: Vec<String> = edges.iter().map(|(_, e)| e.thread.clone()).collect();
                    t.sort();
                    t.dedup();
                    t
                },
                tasks: Vec::new(),
                processes: vec![pid],
                locks: locks.clone(),
                edges: edges
                    .iter()
                    .map(|((a, b), e)| Edge {
                        from: a.clone(),
                        to: b.clone(),
                        via: EdgeVia::ThenTakes,
                        evidence: e.then_evidence,
                        site: e.then_site.clone(),
                        name: e.then_name.clone(),
                    })
                    .collect(),
                advice: Some("Two code paths take these locks in opposite orders; if they ever run at the same time they deadlock. Take them in one global order.".into()),
                duration: None, ongoing: None, loop_id: None, culprit: None, stack: Vec::new(), histogram: None,
                knot: false,
                location: None,
                locksets: Vec::new(),
                notes: Vec::new(),
            });
        }
        out
    }
}
