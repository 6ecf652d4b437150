//! Which writes no other thread can make: those inside `if X.owner == me:` (the owner idiom
//! of re-entrant locks) and those to an object this code is still building. It only excludes
//! writes; it finds neither writes nor guards, and reads no memory.

use crate::cpython::bytecode::{
    self, evaluate_before, CodeNames, Instruction, Path, Root, WriteTarget,
};

/// Calls that name the current thread: `threading.get_ident()`, `current_thread()`, or a
/// method of that name (`self._current_thread()`).
const CURRENT_THREAD: &[&str] = &[
    "get_ident",
    "get_native_id",
    "current_thread",
    "currentThread",
];

fn names_current_thread(text: &str) -> bool {
    text.strip_suffix("()")
        .and_then(|callee| callee.rsplit('.').next())
        .is_some_and(|f| CURRENT_THREAD.contains(&f.trim_start_matches('_')))
}

/// The bodies of `if X.owner == me:` (or `is`), where `me` is the current thread (a call
/// naming it, or a local bound to one): the owner idiom of re-entrant locks. Only the thread
/// that `X.owner` names can be inside, so its writes there are confined to the owner: the
/// protocol that set `X.owner` (under a lock, as the owner's own code) is what guards them.
/// As (jump, target) index pairs.
pub(super) fn owner_branches(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
) -> Vec<(usize, usize)> {
    let current_thread_local = |name: &str| {
        instructions.iter().enumerate().any(|(k, ins)| {
            matches!(ins.name, "STORE_FAST")
                && names.locals.get(ins.arg as usize).map(String::as_str) == Some(name)
                && evaluate_before(minor, instructions, k, names)
                    .and_then(|st| st.into_iter().last().flatten())
                    .is_some_and(|s| names_current_thread(&s.text))
        })
    };
    let mut out = Vec::new();
    for (j, ins) in instructions.iter().enumerate().skip(1) {
        // The jump past an `if` body that falls through on true.
        if !matches!(ins.name, "POP_JUMP_IF_FALSE" | "POP_JUMP_FORWARD_IF_FALSE") {
            continue;
        }
        let Some(target) = bytecode::jump_target(minor, ins).filter(|&t| t > ins.offset) else {
            continue;
        };
        if !bytecode::is_identity_test(minor, &instructions[j - 1]) {
            continue;
        }
        let Some(stack) = evaluate_before(minor, instructions, j - 1, names) else {
            continue;
        };
        let [.., Some(left), Some(right)] = stack.as_slice() else {
            continue;
        };
        let is_owner_attr =
            |s: &bytecode::Sym| s.path.as_ref().is_some_and(|p| !p.attrs.is_empty());
        let is_me = |s: &bytecode::Sym| {
            names_current_thread(&s.text)
                || matches!(&s.path, Some(Path { root: Root::Local(n), attrs }) if attrs.is_empty() && current_thread_local(n))
        };
        if (is_owner_attr(left) && is_me(right)) || (is_me(left) && is_owner_attr(right)) {
            if let Some(end) = bytecode::index_at(instructions, target) {
                out.push((j, end));
            }
        }
    }
    out
}

/// Whether a write sets an attribute of a local bound to a call's result earlier in this code
/// (`job = Job(); job.state = "new"`) that has not been used since except to set attributes:
/// the object is still being built, and no other thread can have seen it.
pub(super) fn under_construction(
    instructions: &[Instruction],
    names: &CodeNames,
    at: usize,
    target: &WriteTarget,
) -> bool {
    let WriteTarget::Attr { object, .. } = target else {
        return false;
    };
    let (Root::Local(n), true) = (&object.root, object.attrs.is_empty()) else {
        return false;
    };
    let Some(slot) = names.locals.iter().position(|x| x == n) else {
        return false;
    };
    let sets_attr = |k: usize| instructions.get(k + 1).map(|i| i.name) == Some("STORE_ATTR");
    let is_call = |k: usize| {
        k > 0
            && matches!(
                instructions[k - 1].name,
                "CALL" | "CALL_FUNCTION" | "CALL_METHOD" | "CALL_FUNCTION_KW" | "CALL_KW"
            )
    };
    for k in (0..at).rev() {
        let ins = &instructions[k];
        let arg = ins.arg as usize;
        match ins.name {
            "STORE_FAST" if arg == slot => return is_call(k),
            "LOAD_FAST" | "LOAD_FAST_CHECK" | "LOAD_FAST_BORROW"
                if arg == slot && !sets_attr(k) =>
            {
                return false
            }
            // 3.13+ pairs: `(first << 4) | second`.
            "LOAD_FAST_LOAD_FAST" | "LOAD_FAST_BORROW_LOAD_FAST_BORROW"
                if arg >> 4 == slot || (arg & 15 == slot && !sets_attr(k)) =>
            {
                return false
            }
            "STORE_FAST_LOAD_FAST" if arg >> 4 == slot => return is_call(k),
            "STORE_FAST_LOAD_FAST" if arg & 15 == slot && !sets_attr(k) => return false,
            "STORE_FAST_STORE_FAST" | "DELETE_FAST" if arg >> 4 == slot || arg & 15 == slot => {
                return false
            }
            _ => {}
        }
    }
    false
}
