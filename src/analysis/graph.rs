//! The wait-for graph of one snapshot: typed nodes (threads, locks) and edges that say who
//! waits for what and who holds it. Only waits with exactly one possible waker (AND edges)
//! are kept for cycle search; a lock with several holders would be an OR-wait.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{Edge, Evidence, WaitKind};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Thread(String),
    Lock(String),
    /// An asyncio task.
    Task(String),
}

impl Node {
    pub fn id(&self) -> &str {
        match self {
            Node::Thread(id) | Node::Lock(id) | Node::Task(id) => id,
        }
    }
}

pub struct WaitGraph {
    pub graph: DiGraph<Node, Edge>,
    pub index: HashMap<String, NodeIndex>,
}

impl WaitGraph {
    pub fn build(snap: &Snapshot) -> WaitGraph {
        let mut g = WaitGraph {
            graph: DiGraph::new(),
            index: HashMap::new(),
        };
        for t in &snap.threads {
            g.node(Node::Thread(t.id.clone()));
        }
        for t in snap.threads.iter().filter(|t| t.blocked) {
            let Some(w) = &t.waits_for else { continue };
            let Some(target) = &w.target else { continue };
            match w.kind {
                WaitKind::Lock => {
                    let Some(lock) = snap.lock(target) else {
                        continue;
                    };
                    let from = g.node(Node::Thread(t.id.clone()));
                    let to = g.node(Node::Lock(lock.id.clone()));
                    g.graph.add_edge(
                        from,
                        to,
                        Edge {
                            from: t.id.clone(),
                            to: lock.id.clone(),
                            via: "waits_for".into(),
                            evidence: w.evidence,
                            site: w.site.clone(),
                            name: w.name.clone(),
                        },
                    );
                    let live: Vec<_> = lock
                        .holders
                        .iter()
                        .filter_map(|h| h.thread.as_ref().map(|th| (th, h)))
                        .collect();
                    if live.len() == 1 && lock.holders.len() == 1 {
                        let (holder, h) = live[0];
                        if let Some(&hn) = g.index.get(holder) {
                            let name = snap
                                .thread(holder)
                                .and_then(|ht| ht.holds.iter().find(|x| x.lock == lock.id))
                                .and_then(|x| x.name.clone());
                            if !g.graph.contains_edge(to, hn) {
                                g.graph.add_edge(
                                    to,
                                    hn,
                                    Edge {
                                        from: lock.id.clone(),
                                        to: holder.clone(),
                                        via: "held_by".into(),
                                        evidence: h.evidence,
                                        site: h.site.clone(),
                                        name,
                                    },
                                );
                            }
                        }
                    }
                }
                WaitKind::Join => {
                    if let Some(&to) = g.index.get(target.as_str()) {
                        let from = g.index[&t.id];
                        g.graph.add_edge(
                            from,
                            to,
                            Edge {
                                from: t.id.clone(),
                                to: target.clone(),
                                via: "joins".into(),
                                evidence: Evidence::Futex,
                                site: w.site.clone(),
                                name: w.name.clone(),
                            },
                        );
                    }
                }
                WaitKind::Notify | WaitKind::UnknownFutex => {}
            }
        }
        g.add_tasks(snap);
        g
    }

    /// Suspended tasks: task -> awaited task (each gathered task), task -> `asyncio.Lock`
    /// -> the task holding it through `async with`. Event, Condition, Semaphore and Queue
    /// waits can be ended by any task, so they are left out of cycle search.
    fn add_tasks(&mut self, snap: &Snapshot) {
        for t in &snap.tasks {
            self.node(Node::Task(t.id.clone()));
        }
        for t in snap.tasks.iter().filter(|t| t.state == "pending") {
            let Some(w) = &t.waits_for else { continue };
            let from = self.index[&t.id];
            let edge = |to: &str, via: &str| Edge {
                from: t.id.clone(),
                to: to.to_string(),
                via: via.into(),
                evidence: w.evidence,
                site: w.site.clone(),
                name: w.name.clone(),
            };
            match w.kind.as_str() {
                "task" | "gather" => {
                    for target in w.target.iter().chain(&w.targets) {
                        if let Some(&to) = self.index.get(target.as_str()) {
                            self.graph.add_edge(from, to, edge(target, "awaits"));
                        }
                    }
                }
                "lock" if w.evidence != Evidence::Unknown => {
                    let Some(lock) = w.target.as_deref().and_then(|l| snap.lock(l)) else {
                        continue;
                    };
                    let to = self.node(Node::Lock(lock.id.clone()));
                    self.graph.add_edge(from, to, edge(&lock.id, "waits_for"));
                    let [h] = &lock.holders[..] else { continue };
                    let Some(holder) = &h.task else { continue };
                    let Some(&hn) = self.index.get(holder.as_str()) else {
                        continue;
                    };
                    if !self.graph.contains_edge(to, hn) {
                        let name = snap
                            .task(holder)
                            .and_then(|ht| ht.holds.iter().find(|x| x.lock == lock.id))
                            .and_then(|x| x.name.clone());
                        self.graph.add_edge(
                            to,
                            hn,
                            Edge {
                                from: lock.id.clone(),
                                to: holder.clone(),
                                via: "held_by".into(),
                                evidence: h.evidence,
                                site: h.site.clone(),
                                name,
                            },
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn node(&mut self, n: Node) -> NodeIndex {
        if let Some(&i) = self.index.get(n.id()) {
            return i;
        }
        let id = n.id().to_string();
        let i = self.graph.add_node(n);
        self.index.insert(id, i);
        i
    }

    /// Every elementary cycle through at least one thread, each starting at its smallest node
    /// index (so each is found once), in wait order. Bounded: pathological graphs stop early.
    pub fn cycles(&self, limit: usize) -> Vec<Vec<NodeIndex>> {
        let mut out = Vec::new();
        for scc in petgraph::algo::tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            let mut members: Vec<NodeIndex> = scc.clone();
            members.sort();
            for &start in &members {
                let mut path = vec![start];
                self.extend(start, start, &members, &mut path, &mut out, limit);
                if out.len() >= limit {
                    return out;
                }
            }
        }
        out
    }

    fn extend(
        &self,
        start: NodeIndex,
        at: NodeIndex,
        members: &[NodeIndex],
        path: &mut Vec<NodeIndex>,
        out: &mut Vec<Vec<NodeIndex>>,
        limit: usize,
    ) {
        for next in self.graph.neighbors(at) {
            if out.len() >= limit {
                return;
            }
            if next == start {
                out.push(path.clone());
            } else if next > start && members.contains(&next) && !path.contains(&next) {
                path.push(next);
                self.extend(start, next, members, path, out, limit);
                path.pop();
            }
        }
    }

    pub fn edge(&self, a: NodeIndex, b: NodeIndex) -> Option<&Edge> {
        self.graph.find_edge(a, b).map(|e| &self.graph[e])
    }
}
