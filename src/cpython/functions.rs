//! What a call or an attribute store will run, read from outside: a Python function's code
//! object and globals, and a property's setter. Layout facts checked with ctypes against
//! `id(f.__code__)`, `id(f.__globals__)` and `id(prop.fset)` on 3.8-3.13, and on Debian's
//! 3.13.18, 3.14.10 and 3.15.2.

use super::objects::Objects;

/// `(code, globals)` of a plain Python function object; `None` for anything else.
pub fn function_parts(objs: &Objects, func: usize) -> Option<(usize, usize)> {
    if objs.type_name_rc(func).ok()?.as_ref() != "function" {
        return None;
    }
    // 3.10 moved the function's fields behind COMMON_FIELDS (globals, builtins, name,
    // qualname, code).
    let (code, globals) = if objs.layout.minor <= 9 {
        (16, 24)
    } else {
        (48, 16)
    };
    let code = objs.mem.ptr(func + code).ok().filter(|p| *p != 0)?;
    let globals = objs.mem.ptr(func + globals).ok().filter(|p| *p != 0)?;
    Some((code, globals))
}

/// The setter function of a `property` object (`prop_set`, after `prop_get`).
pub fn property_setter(objs: &Objects, prop: usize) -> Option<usize> {
    if objs.type_name_rc(prop).ok()?.as_ref() != "property" {
        return None;
    }
    objs.mem.ptr(prop + 24).ok().filter(|p| *p != 0)
}
