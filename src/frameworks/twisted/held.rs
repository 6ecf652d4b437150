//! Where a Deferred may be held besides a module global: a frame's locals (a closure's
//! variable through its cell) and what the objects those hold hold in turn, a few levels deep:
//! their attributes and the items of their lists, tuples and dicts (`self.ready`,
//! `shop.orders[0].paid`, `pending['quote']`). Answers which named values to look at; it
//! decides nothing about Deferreds. Read-only; every read is bounded by the caller's budget.

use std::collections::HashSet;

use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawFrame, Walker};

/// Attributes or items read at most from one object.
const MAX_ATTRS: usize = 64;
/// Levels followed below a local or global (`a.b.c` is three), and values read at most from
/// one of them, so one large structure cannot spend the whole budget.
const MAX_DEPTH: usize = 3;
const MAX_PER_ROOT: usize = 2_000;

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
/// `owner[0]`, `owner['key']`), followed `MAX_DEPTH` levels deep, each object once; nothing
/// for a module, class or function (their attributes are globals or code, not state an
/// object holds), and nothing inside a Deferred (its result is followed as a chain).
pub(super) fn attributes(
    objs: &Objects,
    owner: &str,
    obj: usize,
    budget: &mut usize,
) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut seen = HashSet::from([obj]);
    let mut level = vec![(owner.to_string(), obj)];
    let mut left = MAX_PER_ROOT;
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for (name, o) in level {
            for (n, v) in children(objs, &name, o, budget, &mut left) {
                if seen.insert(v) {
                    out.push((n.clone(), v));
                    next.push((n, v));
                }
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    out
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
                .map(|(i, v)| (format!("{owner}[{i}]"), v))
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
                (format!("{owner}[{key}]"), v)
            })
            .collect(),
        _ => objs
            .instance_attrs(obj)
            .unwrap_or_default()
            .into_iter()
            .take(MAX_ATTRS)
            .map(|(a, v)| (format!("{owner}.{a}"), v))
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
