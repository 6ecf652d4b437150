//! The wait-for graph of one snapshot: typed nodes (threads, locks) and edges that say who
//! waits for what and who holds it. Only waits with exactly one possible waker (AND edges)
//! are kept for cycle search; a lock with several holders would be an OR-wait.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::model::{Edge, EdgeVia, Evidence, LockKind, TaskState, TaskWaitKind, Wait, WaitKind};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Thread(String),
    Lock(String),
    /// An asyncio task.
    Task(String),
    /// `PID:p` (`--tree`): a process acts through any of its threads, and exits only once
    /// they are done.
    Process(String),
}

impl Node {
    pub fn id(&self) -> &str {
        match self {
            Node::Thread(id) | Node::Lock(id) | Node::Task(id) | Node::Process(id) => id,
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
        for p in &snap.processes {
            let pn = g.node(Node::Process(crate::crossproc::process_id(p.pid)));
            for t in snap.threads.iter().filter(|t| t.pid == p.pid) {
                let tn = g.index[&t.id];
                g.graph.add_edge(
                    pn,
                    tn,
                    Edge {
                        from: crate::crossproc::process_id(p.pid),
                        to: t.id.clone(),
                        via: EdgeVia::HasThread,
                        evidence: Evidence::Memory,
                        site: None,
                        name: None,
                    },
                );
            }
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
                            via: EdgeVia::WaitsFor,
                            evidence: w.evidence,
                            site: w.site.clone(),
                            name: w.name.clone(),
                        },
                    );
                    if lock.shared.is_some() {
                        g.shared_holders(snap, lock, to);
                        continue;
                    }
                    let live: Vec<_> = lock
                        .holders
                        .iter()
                        .filter_map(|h| h.thread.as_ref().map(|th| (th, h)))
                        .collect();
                    if live.len() == 1 && lock.holders.len() == 1 {
                        let (holder, h) = live[0];
                        if let Some(&hn) = g.index.get(holder) {
                            g.held_by(snap, to, hn, lock, holder, h);
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
                                via: EdgeVia::Joins,
                                evidence: w.evidence,
                                site: w.site.clone(),
                                name: w.name.clone(),
                            },
                        );
                    }
                }
                WaitKind::ChildExit | WaitKind::Pipe => {
                    let from = g.index[&t.id];
                    let via = if w.kind == WaitKind::ChildExit {
                        EdgeVia::WaitsForExit
                    } else {
                        EdgeVia::WaitsFor
                    };
                    let edge = Edge {
                        from: t.id.clone(),
                        to: target.clone(),
                        via,
                        evidence: w.evidence,
                        site: w.site.clone(),
                        name: w.name.clone(),
                    };
                    if let Some(&to) = g.index.get(target.as_str()) {
                        g.graph.add_edge(from, to, edge);
                    } else if let Some(lock) = snap.lock(target) {
                        let to = g.node(Node::Lock(lock.id.clone()));
                        g.graph.add_edge(from, to, edge);
                        g.shared_holders(snap, lock, to);
                    }
                }
                WaitKind::Future => {
                    let from = g.index[&t.id];
                    for target in std::iter::once(target).chain(&w.targets) {
                        g.future_wait(snap, from, &t.id, target, w);
                    }
                }
                WaitKind::Notify => match snap.lock(target) {
                    // An event only a loop's queued callback will set: waiter -> event ->
                    // the loop's thread, as for a future.
                    Some(lock) if lock.kind == LockKind::Event && !lock.holders.is_empty() => {
                        let from = g.index[&t.id];
                        g.future_wait(snap, from, &t.id, target, w);
                    }
                    // A full bounded queue: waiter -> queue -> each thread whose code will
                    // take from it, or may (evidence `unknown`): several make an OR-wait.
                    Some(lock)
                        if lock.kind == LockKind::Queue
                            && lock
                                .holders
                                .iter()
                                .any(|h| h.evidence == Evidence::QueueGetter) =>
                    {
                        g.queue_wait(&t.id, edge_of(w), lock)
                    }
                    Some(lock) => g.permit_wait(snap, &t.id, edge_of(w), lock),
                    None => {}
                },
                WaitKind::UnknownFutex | WaitKind::Input => {}
            }
        }
        g.add_tasks(snap);
        g
    }

    /// A wait on a `concurrent.futures` future: waiter -> future -> whoever completes it
    /// (the worker running it; every worker of the pool it is queued in, an OR; the task
    /// its result is copied from; the thread of the loop whose ready queue holds its setter). A future nobody is known to complete has no way out.
    fn future_wait(
        &mut self,
        snap: &Snapshot,
        from: NodeIndex,
        waiter: &str,
        target: &str,
        w: &Wait,
    ) {
        let Some(fut) = snap.lock(target) else { return };
        let to = self.node(Node::Lock(fut.id.clone()));
        self.graph.add_edge(
            from,
            to,
            Edge {
                from: waiter.to_string(),
                to: fut.id.clone(),
                via: EdgeVia::WaitsFor,
                evidence: w.evidence,
                site: w.site.clone(),
                name: fut.names.first().map(|n| n.name.clone()),
            },
        );
        for h in &fut.holders {
            let (by, node) = match (&h.thread, &h.task, h.process) {
                (Some(th), _, _) => (th.clone(), Node::Thread(th.clone())),
                (None, Some(task), _) => (task.clone(), Node::Task(task.clone())),
                (None, None, Some(p)) => {
                    let id = crate::crossproc::process_id(p);
                    (id.clone(), Node::Process(id))
                }
                _ => continue,
            };
            let hn = self.node(node);
            if !self.graph.contains_edge(to, hn) {
                self.graph.add_edge(
                    to,
                    hn,
                    Edge {
                        from: fut.id.clone(),
                        to: by,
                        via: EdgeVia::CompletedBy,
                        evidence: h.evidence,
                        site: h.site.clone(),
                        name: None,
                    },
                );
            }
        }
    }

    /// Suspended tasks: task -> awaited task (each gathered task), task -> `asyncio.Lock`
    /// -> the task holding it through `async with`. Event, Condition, Semaphore and Queue
    /// waits can be ended by any task, so they are left out of cycle search.
    fn add_tasks(&mut self, snap: &Snapshot) {
        for t in &snap.tasks {
            self.node(Node::Task(t.id.clone()));
        }
        for t in snap.tasks.iter().filter(|t| t.state == TaskState::Pending) {
            let Some(w) = &t.waits_for else { continue };
            let from = self.index[&t.id];
            let edge = |to: &str, via: EdgeVia| Edge {
                from: t.id.clone(),
                to: to.to_string(),
                via,
                evidence: w.evidence,
                site: w.site.clone(),
                name: w.name.clone(),
            };
            match w.kind {
                TaskWaitKind::Task | TaskWaitKind::Gather => {
                    for target in w.target.iter().chain(&w.targets) {
                        if let Some(&to) = self.index.get(target.as_str()) {
                            self.graph.add_edge(from, to, edge(target, EdgeVia::Awaits));
                        }
                    }
                }
                // A channel is completed by the tasks holding its other side, as a future by
                // whoever runs its work.
                TaskWaitKind::Future | TaskWaitKind::Channel => {
                    if let Some(target) = &w.target {
                        let wait = Wait {
                            timeout_s: None,
                            waited_s: None,
                            kind: WaitKind::Future,
                            target: Some(target.clone()),
                            evidence: w.evidence,
                            site: w.site.clone(),
                            name: w.name.clone(),
                            via: w.via.clone(),
                            timed: false,
                            futex: None,
                            targets: Vec::new(),
                        };
                        self.future_wait(snap, from, &t.id, target, &wait);
                    }
                }
                // A task waiting for an asyncio semaphore every permit of which is held.
                TaskWaitKind::Semaphore if w.evidence != Evidence::Unknown => {
                    if let Some(lock) = w.target.as_deref().and_then(|l| snap.lock(l)) {
                        let wait = (w.evidence, w.site.clone(), w.name.clone());
                        self.permit_wait(snap, &t.id, wait, lock);
                    }
                }
                TaskWaitKind::Lock if w.evidence != Evidence::Unknown => {
                    let Some(lock) = w.target.as_deref().and_then(|l| snap.lock(l)) else {
                        continue;
                    };
                    let to = self.node(Node::Lock(lock.id.clone()));
                    self.graph
                        .add_edge(from, to, edge(&lock.id, EdgeVia::WaitsFor));
                    let [h] = &lock.holders[..] else { continue };
                    let Some(holder) = &h.task else { continue };
                    let Some(&hn) = self.index.get(holder.as_str()) else {
                        continue;
                    };
                    self.held_by(snap, to, hn, lock, holder, h);
                }
                _ => {}
            }
        }
    }

    /// A wait to put into a full bounded queue: waiter -> queue -> each thread that will
    /// take from it, or may (`drained_by`).
    fn queue_wait(
        &mut self,
        waiter: &str,
        w: (Evidence, Option<String>, Option<String>),
        queue: &crate::model::Lock,
    ) {
        let from = self.index[waiter];
        let to = self.node(Node::Lock(queue.id.clone()));
        self.graph.add_edge(
            from,
            to,
            Edge {
                from: waiter.to_string(),
                to: queue.id.clone(),
                via: EdgeVia::WaitsFor,
                evidence: w.0,
                site: w.1,
                name: w.2,
            },
        );
        for h in &queue.holders {
            let Some(getter) = &h.thread else { continue };
            let Some(&hn) = self.index.get(getter) else {
                continue;
            };
            if !self.graph.contains_edge(to, hn) {
                self.graph.add_edge(
                    to,
                    hn,
                    Edge {
                        from: queue.id.clone(),
                        to: getter.clone(),
                        via: EdgeVia::DrainedBy,
                        evidence: h.evidence,
                        site: h.site.clone(),
                        name: None,
                    },
                );
            }
        }
    }

    /// A wait for a counting resource every permit of which is held: waiter -> resource ->
    /// each holder (an OR-wait). Nothing when a permit is free or a holder is unknown.
    fn permit_wait(
        &mut self,
        snap: &Snapshot,
        waiter: &str,
        w: (Evidence, Option<String>, Option<String>),
        lock: &crate::model::Lock,
    ) {
        let Some(holders) = super::permits::complete_holders(lock) else {
            return;
        };
        let from = self.index[waiter];
        let to = self.node(Node::Lock(lock.id.clone()));
        self.graph.add_edge(
            from,
            to,
            Edge {
                from: waiter.to_string(),
                to: lock.id.clone(),
                via: EdgeVia::WaitsFor,
                evidence: w.0,
                site: w.1,
                name: w.2,
            },
        );
        for (holder, h) in holders.into_iter().zip(&lock.holders) {
            let Some(&hn) = self.index.get(holder) else {
                continue;
            };
            self.held_by(snap, to, hn, lock, holder, h);
        }
    }

    /// A cross-process resource points at every holder (several: an OR-wait); a holder that
    /// is unknown leaves it with no edge, so nothing through it is claimed stuck.
    fn shared_holders(&mut self, snap: &Snapshot, lock: &crate::model::Lock, to: NodeIndex) {
        if lock
            .holders
            .iter()
            .any(|h| h.thread.is_none() && h.process.is_none())
        {
            return;
        }
        for h in &lock.holders {
            let target = match (&h.thread, h.process) {
                (Some(t), _) => t.clone(),
                (None, Some(p)) => crate::crossproc::process_id(p),
                _ => continue,
            };
            let Some(&hn) = self.index.get(&target) else {
                continue;
            };
            self.held_by(snap, to, hn, lock, &target, h);
        }
    }

    /// `lock -> holder`, a `held_by` edge, unless there is one already; named as the holder (a
    /// thread or a task) names the lock in the frame that holds it.
    fn held_by(
        &mut self,
        snap: &Snapshot,
        to: NodeIndex,
        hn: NodeIndex,
        lock: &crate::model::Lock,
        holder: &str,
        h: &crate::model::Holder,
    ) {
        if self.graph.contains_edge(to, hn) {
            return;
        }
        let holds = snap
            .thread(holder)
            .map(|t| &t.holds)
            .or_else(|| snap.task(holder).map(|t| &t.holds));
        let name = holds
            .and_then(|hs| hs.iter().find(|x| x.lock == lock.id))
            .and_then(|x| x.name.clone());
        self.graph.add_edge(
            to,
            hn,
            Edge {
                from: lock.id.clone(),
                to: holder.to_string(),
                via: EdgeVia::HeldBy,
                evidence: h.evidence,
                site: h.site.clone(),
                name,
            },
        );
    }

    /// The nodes that can provably never proceed: the greatest set in which every node has a
    /// way out and all its ways out lead back into the set. A thread has one wait; a resource
    /// with several holders, or a process with several threads, is an OR: one party able to
    /// act frees it. Nodes outside every cycle may be in it (they wait on a stuck party).
    pub fn stuck(&self) -> Vec<bool> {
        let n = self.graph.node_count();
        let mut stuck = vec![true; n];
        loop {
            let mut changed = false;
            for i in 0..n {
                if !stuck[i] {
                    continue;
                }
                let ni = NodeIndex::new(i);
                let mut succ = self.graph.neighbors(ni).peekable();
                let free = succ.peek().is_none() || succ.any(|s| !stuck[s.index()]);
                if free {
                    stuck[i] = false;
                    changed = true;
                }
            }
            if !changed {
                return stuck;
            }
        }
    }

    /// Strongly connected groups of stuck nodes (with a cycle in them).
    pub fn stuck_sccs(&self) -> Vec<Vec<NodeIndex>> {
        let stuck = self.stuck();
        petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .map(|mut scc| {
                scc.retain(|n| stuck[n.index()]);
                scc
            })
            .filter(|scc| {
                scc.len() > 1 || (scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]))
            })
            .collect()
    }

    /// Whether any node of the group has several possible wakers: then it is a knot.
    pub fn has_or(&self, scc: &[NodeIndex]) -> bool {
        scc.iter().any(|n| self.is_or(*n))
    }

    /// Whether a node has several possible wakers.
    pub fn is_or(&self, n: NodeIndex) -> bool {
        self.graph.neighbors(n).count() > 1
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
        for scc in self.stuck_sccs() {
            if self.has_or(&scc) {
                continue;
            }
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

/// A thread's wait as the edge to its resource carries it: evidence, site and name.
fn edge_of(w: &Wait) -> (Evidence, Option<String>, Option<String>) {
    (w.evidence, w.site.clone(), w.name.clone())
}
