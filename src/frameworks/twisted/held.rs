//! Where a Deferred may be held besides a module global: a frame's locals (a closure's
//! variable through its cell) and the attributes of the objects those hold, one level deep
//! (`self.ready`, `shelf.restocked`). Answers which named values to look at; it decides
//! nothing about Deferreds and follows nothing further. Read-only; every read is bounded by
//! the caller's budget.

use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawFrame, Walker};

/// Attributes read at most from one object.
const MAX_ATTRS: usize = 64;

/// The values a frame's locals hold, each named as the code names it: the local (for a
/// closure's variable, its cell's content), then that object's attributes (`self.ready`).
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

/// An object's own attributes, named `owner.attribute`; none for a module, class or function
/// (their attributes are globals or code, not state an object holds).
pub(super) fn attributes(
    objs: &Objects,
    owner: &str,
    obj: usize,
    budget: &mut usize,
) -> Vec<(String, usize)> {
    if *budget == 0 {
        return Vec::new();
    }
    let Ok(ty) = objs.type_name_rc(obj) else {
        return Vec::new();
    };
    if matches!(
        &*ty,
        "module" | "type" | "function" | "method" | "cell" | "code" | "frame" | "generator"
    ) {
        return Vec::new();
    }
    let Ok(attrs) = objs.instance_attrs(obj) else {
        return Vec::new();
    };
    let take = attrs.len().min(MAX_ATTRS).min(*budget);
    *budget -= take;
    attrs
        .into_iter()
        .take(take)
        .map(|(a, v)| (format!("{owner}.{a}"), v))
        .collect()
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
