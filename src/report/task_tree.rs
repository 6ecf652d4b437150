//! The order a loop's tasks are shown in: as a tree, each task under the one that started it
//! (a trio nursery's parent task, `Task.parent`) or that gathers it (`waits_for.targets` of a
//! gather or nursery wait), depth first; tasks with neither are roots, in document order.
//! Order and depth only: it writes nothing.

use std::collections::HashMap;

use crate::model::{Task, TaskWaitKind};

/// Deepest indentation shown; deeper tasks are drawn at this depth.
const MAX_DEPTH: usize = 12;

/// `tasks` depth first, each with its depth (0 for a root). Every task appears once.
pub(super) fn tree_order<'a>(tasks: &[&'a Task]) -> Vec<(&'a Task, usize)> {
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    let mut parent: Vec<Option<usize>> = tasks
        .iter()
        .map(|t| t.parent.as_deref().and_then(|p| index.get(p).copied()))
        .collect();
    for (i, t) in tasks.iter().enumerate() {
        let Some(w) = t
            .waits_for
            .as_ref()
            .filter(|w| w.kind == TaskWaitKind::Gather)
        else {
            continue;
        };
        for c in w.targets.iter().filter_map(|c| index.get(c.as_str())) {
            if parent[*c].is_none() && *c != i {
                parent[*c] = Some(i);
            }
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (c, p) in parent.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(c);
        }
    }
    let mut shown = vec![false; tasks.len()];
    let mut out = Vec::with_capacity(tasks.len());
    // Roots first; then whatever a cycle of parents left out, as roots.
    let roots: Vec<usize> = (0..tasks.len()).filter(|i| parent[*i].is_none()).collect();
    for start in roots.into_iter().chain(0..tasks.len()) {
        if shown[start] {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if shown[i] {
                continue;
            }
            shown[i] = true;
            out.push((tasks[i], depth.min(MAX_DEPTH)));
            for c in children[i].iter().rev() {
                stack.push((*c, depth + 1));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Framework, TaskState, TaskWait};

    fn task(id: &str, parent: Option<&str>, gathers: &[&str]) -> Task {
        Task {
            id: id.into(),
            pid: 1,
            loop_id: "1:loop:0x1".into(),
            name: Some(id.into()),
            coroutine: None,
            state: TaskState::Pending,
            frames: Vec::new(),
            waits_for: (!gathers.is_empty()).then(|| TaskWait {
                kind: TaskWaitKind::Gather,
                target: None,
                targets: gathers.iter().map(|g| g.to_string()).collect(),
                future: None,
                evidence: crate::model::Evidence::Memory,
                site: None,
                name: None,
                via: None,
                program_name: None,
            }),
            address: String::new(),
            eager: false,
            holds: Vec::new(),
            framework: Framework::Trio,
            parent: parent.map(str::to_string),
        }
    }

    #[test]
    fn children_follow_their_parent_or_gatherer_depth_first() {
        let ts = [
            task("c1", Some("root"), &[]),
            task("root", None, &[]),
            task("g", Some("c1"), &[]),
            task("lone", None, &["x"]),
            task("c2", None, &[]),
            task("gatherer", Some("root"), &["c2"]),
        ];
        let refs: Vec<&Task> = ts.iter().collect();
        let order: Vec<(&str, usize)> = tree_order(&refs)
            .into_iter()
            .map(|(t, d)| (t.id.as_str(), d))
            .collect();
        assert_eq!(
            order,
            [
                ("root", 0),
                ("c1", 1),
                ("g", 2),
                ("gatherer", 1),
                ("c2", 2),
                ("lone", 0)
            ]
        );
    }

    #[test]
    fn a_cycle_of_parents_is_shown_once_each() {
        let ts = [task("a", Some("b"), &[]), task("b", Some("a"), &[])];
        let refs: Vec<&Task> = ts.iter().collect();
        let order = tree_order(&refs);
        assert_eq!(order.len(), 2);
    }
}
