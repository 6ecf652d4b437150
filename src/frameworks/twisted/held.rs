//! Where a Deferred may be held besides a module global: a frame's locals (a closure's
//! variable through its cell) and what the objects those hold hold in turn, at any depth:
//! their attributes and the items of their lists, tuples and dicts (`self.ready`,
//! `shop.orders[0].paid`, `pending['quote']`, `depot.regions['eu'].aisles[0].bins['b1']`).
//! Answers which named values to look at; it decides nothing about Deferreds. Read-only; each
//! root is bounded by a budget of values read (not a depth), and every read by the caller's
//! budget for the snapshot.

use std::collections::{HashSet, VecDeque};

use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawFrame, Walker};

/// Attributes or items read at most from one object.
const MAX_ATTRS: usize = 64;
/// Values read at most below one local or global, breadth first (the nearest first, however
/// deep), so one large structure cannot spend the whole budget.
const MAX_PER_ROOT: usize = 2_000;
/// Characters of a name kept from its root side; the last step is always kept
/// (`depot.regions…bins['b1'].counted`), so a long chain cannot grow names without bound.
const MAX_NAME: usize = 120;

/// The values a frame's locals hold, each named as the code names it: the local (for a
/// closure's variable, its cell's content), then what that object holds (`self.ready`).
pub(super) fn frame_values(
    walker: &Walker,
    frame: &RawFrame,
    budget: &mut usize,
) -> Vec<(String, usize)> {
    let objs = &walker.objs;
    let mut out = Vec::new();
    for (name, v) in walker.locals(frame) {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        let Some(v) = through_cell(objs, v) else {
            continue;
        };
        out.extend(attributes(objs, &name, v, budget));
        out.push((name, v));
    }
    out
}

/// What an object holds, named as the code would reach it (`owner.attribute`,
/// `owner[0]`, `owner['key']`), breadth first until `MAX_PER_ROOT` values were read, each
/// object once; nothing for a module, class or function (their attributes are globals or
/// code, not state an object holds), and nothing inside a Deferred (its result is followed
/// as a chain).
pub(super) fn attributes(
    objs: &Objects,
    owner: &str,
    obj: usize,
    budget: &mut usize,
) -> Vec<(String, usize)> {
    attributes_avoiding(objs, owner, obj, &[], budget)
}

/// `attributes`, never entering the objects in `avoid`: from one of the reactor's
/// connections, not back into the reactor (whose `.reactor` attribute would otherwise name
/// every other connection's Deferreds through this one and spend its budget on them).
pub(super) fn attributes_avoiding(
    objs: &Objects,
    owner: &str,
    obj: usize,
    avoid: &[usize],
    budget: &mut usize,
) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut seen = HashSet::from([obj]);
    seen.extend(avoid.iter().copied());
    let mut queue = VecDeque::from([(owner.to_string(), obj)]);
    let mut left = MAX_PER_ROOT;
    while let Some((name, o)) = queue.pop_front() {
        if *budget == 0 || left == 0 {
            break;
        }
        for (n, v) in children(objs, &name, o, budget, &mut left) {
            if seen.insert(v) {
                out.push((n.clone(), v));
                queue.push_back((n, v));
            }
        }
    }
    out
}

/// `owner` and one more step (`.attr`, `[0]`), its root side cut to `MAX_NAME` characters.
fn step(owner: &str, step: std::fmt::Arguments) -> String {
    let mut name = owner.to_string();
    if name.chars().count() > MAX_NAME {
        name = name.chars().take(MAX_NAME).collect();
        name.push('…');
    }
    use std::fmt::Write;
    let _ = name.write_fmt(step);
    name
}

/// One object's own attributes, or its items when it is a list, tuple or dict.
fn children(
    objs: &Objects,
    owner: &str,
    obj: usize,
    budget: &mut usize,
    left: &mut usize,
) -> Vec<(String, usize)> {
    if *budget == 0 || *left == 0 {
        return Vec::new();
    }
    let Ok(ty) = objs.type_name_rc(obj) else {
        return Vec::new();
    };
    let named: Vec<(String, usize)> = match &*ty {
        "module"
        | "type"
        | "function"
        | "method"
        | "builtin_function_or_method"
        | "cell"
        | "code"
        | "frame"
        | "generator"
        | "coroutine"
        | "Deferred"
        | "str"
        | "bytes"
        | "int"
        | "float"
        | "bool"
        | "NoneType" => return Vec::new(),
        "list" | "tuple" => {
            let items = if &*ty == "list" {
                objs.list_items(obj)
            } else {
                objs.tuple_items(obj)
            };
            items
                .unwrap_or_default()
                .into_iter()
                .take(MAX_ATTRS)
                .enumerate()
                .map(|(i, v)| (step(owner, format_args!("[{i}]")), v))
                .collect()
        }

        "dict" => objs
            .dict_entries(obj)
            .unwrap_or_default()
            .into_iter()
            .take(MAX_ATTRS)
            .map(|(k, v)| {
                let key = objs
                    .type_is(k, "str")
                    .then(|| objs.str(k).ok())
                    .flatten()
                    .map(|k| format!("{k:?}").chars().take(64).collect::<String>())
                    .unwrap_or_else(|| "...".into());
                (step(owner, format_args!("[{key}]")), v)
            })
            .collect(),
        _ => objs
            .instance_attrs(obj)
            .unwrap_or_default()
            .into_iter()
            .take(MAX_ATTRS)
            .map(|(a, v)| (step(owner, format_args!(".{a}")), v))
            .collect(),
    };
    let take = named.len().min(*budget).min(*left);
    *budget -= take;
    *left -= take;
    named.into_iter().take(take).collect()
}

/// A cell's content (none when empty), any other object itself.
pub(super) fn through_cell(objs: &Objects, v: usize) -> Option<usize> {
    if objs.type_is(v, "cell") {
        objs.mem
            .ptr(v + objs.layout.stdlib.cell_ref)
            .ok()
            .filter(|p| *p != 0)
    } else {
        Some(v)
    }
}
