//! Which shared locations a code object writes, and which locks guard each write lexically
//! (the `with` blocks around it, an `X.acquire()` ... `X.release()` span): decoded once per code
//! object. Also whether a frame at one instruction can still reach a write with the names it
//! resolves through still bound as they are now. It reads no memory and names no object.

use super::bytecode::{
    self, evaluate_before, writes_in, CodeNames, ExceptionEntry, Instruction, Path, Root,
    WriteTarget,
};
use super::layout::Dialect;

/// A lock expression guarding a write: `self.lock` for `with self.lock:`. `path` is `None`
/// where the expression is not a name chain (`with self.lock_for(key):`): the guard is unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub path: Option<Path>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeWrite {
    /// Index of the instruction that writes.
    pub index: usize,
    pub line: Option<u32>,
    pub target: WriteTarget,
    /// Innermost first.
    pub guards: Vec<Guard>,
}

/// A function this code names in order to call it: `register` (a global) or `meter.add`
/// (a method looked up on `meter`), with the locks guarding that point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCall {
    pub index: usize,
    /// The object the method is looked up on; `None` for a global function.
    pub receiver: Option<Path>,
    pub name: String,
    pub guards: Vec<Guard>,
}

/// Every write of one code object, with what reachability needs.
#[derive(Debug, Clone, Default)]
pub struct CodeWrites {
    pub writes: Vec<CodeWrite>,
    pub calls: Vec<CodeCall>,
    /// Loops as (first instruction, backward jump) index pairs.
    loops: Vec<(usize, usize)>,
    /// Instructions that bind a name a path can start from.
    rebinds: Vec<(usize, Root)>,
    /// Exception handlers' code, as index ranges: run only while an exception is handled.
    handlers: Vec<(usize, usize)>,
}

/// Decode a code object's writes. `lines[i]` is the line of instruction `i`.
pub fn decode(
    minor: u8,
    instructions: &[Instruction],
    exception_table: &[ExceptionEntry],
    names: &CodeNames,
    module_level: bool,
    lines: &[Option<u32>],
) -> CodeWrites {
    let mut writes = Vec::new();
    let owner_branches = owner_branches(minor, instructions, names);
    // One source line at a time: augmented assignments are recognised within their line.
    let mut start = 0;
    while start < instructions.len() {
        let mut end = start + 1;
        while end < instructions.len() && lines.get(end) == lines.get(start) {
            end += 1;
        }
        for (index, target) in writes_in(
            Dialect(minor),
            instructions,
            start..end,
            start,
            names,
            module_level,
        ) {
            if under_construction(instructions, names, index, &target) {
                continue;
            }
            if owner_branches.iter().any(|&(s, e)| s < index && index < e) {
                continue;
            }
            writes.push(CodeWrite {
                index,
                line: lines.get(index).copied().flatten(),
                target,
                guards: Vec::new(),
            });
        }
        start = end;
    }
    let spans = acquire_spans(minor, instructions, names);
    let with_spans = if minor <= 10 {
        with_spans_by_setup(minor, instructions, names)
    } else {
        Vec::new()
    };
    let guards_at = |index: usize| -> Vec<Guard> {
        let mut guards = if minor >= 11 {
            withs_by_exception_table(minor, instructions, exception_table, names, index)
        } else {
            with_spans
                .iter()
                .rev()
                .filter(|(s, e, _)| *s < index && index < *e)
                .map(|(_, _, g)| g.clone())
                .collect()
        };
        guards.extend(
            spans
                .iter()
                .filter(|(s, e, _)| *s < index && index < *e)
                .map(|(_, _, g)| g.clone()),
        );
        guards
    };
    for w in &mut writes {
        w.guards = guards_at(w.index);
    }
    let calls = callees(minor, instructions, names, module_level)
        .into_iter()
        .map(|(index, receiver, name)| CodeCall {
            index,
            receiver,
            name,
            guards: guards_at(index),
        })
        .collect();
    CodeWrites {
        writes,
        calls,
        loops: loops(minor, instructions),
        rebinds: rebinds(minor, instructions, names, module_level),
        handlers: handlers(minor, instructions, exception_table),
    }
}

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
fn owner_branches(
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

/// The code of exception handlers (`except` bodies, the exceptional copy of a `finally`):
/// from a handler's entry to its first `POP_EXCEPT` or re-raise. 3.11+: handler entries are
/// exception-table targets; 3.8-3.10: `SETUP_FINALLY` targets.
fn handlers(
    minor: u8,
    instructions: &[Instruction],
    entries: &[ExceptionEntry],
) -> Vec<(usize, usize)> {
    let mut starts: Vec<usize> = if minor >= 11 {
        entries
            .iter()
            .filter_map(|e| bytecode::index_at(instructions, e.target))
            .filter(|&i| instructions[i].name == "PUSH_EXC_INFO")
            .collect()
    } else {
        instructions
            .iter()
            .filter(|ins| ins.name == "SETUP_FINALLY")
            .filter_map(|ins| {
                // Relative jump from the next instruction; bytes before 3.10.
                let delta = if minor == 10 {
                    ins.arg as usize
                } else {
                    ins.arg as usize / 2
                };
                bytecode::index_at(instructions, ins.next + delta)
            })
            // 3.8 runs a `finally` body on the normal path too, falling into it.
            .filter(|&i| i == 0 || instructions[i - 1].name != "BEGIN_FINALLY")
            .collect()
    };
    starts.sort_unstable();
    starts.dedup();
    starts
        .into_iter()
        .filter_map(|s| {
            let end = (s..instructions.len()).find(|&i| {
                matches!(
                    instructions[i].name,
                    "POP_EXCEPT" | "RERAISE" | "END_FINALLY" | "RAISE_VARARGS"
                )
            })?;
            Some((s, end))
        })
        .collect()
}

/// Whether a write sets an attribute of a local bound to a call's result earlier in this code
/// (`job = Job(); job.state = "new"`) that has not been used since except to set attributes:
/// the object is still being built, and no other thread can have seen it.
fn under_construction(
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

fn guard_at(minor: u8, instructions: &[Instruction], at: usize, names: &CodeNames) -> Guard {
    let sym = evaluate_before(minor, instructions, at, names)
        .and_then(|st| st.into_iter().flatten().last());
    Guard {
        path: sym.as_ref().and_then(|s| s.path.clone()),
        text: sym.map(|s| s.text),
    }
}

/// 3.11+: the `with` statements whose cleanup handlers cover the instruction, following
/// handlers outward as the interpreter would on an exception.
fn withs_by_exception_table(
    minor: u8,
    instructions: &[Instruction],
    entries: &[ExceptionEntry],
    names: &CodeNames,
    index: usize,
) -> Vec<Guard> {
    let mut out = Vec::new();
    let mut unit = instructions[index].offset;
    let mut visited = Vec::new();
    while let Some(entry) = bytecode::covering(entries, unit) {
        if visited.contains(&entry.target) || visited.len() > 64 {
            break;
        }
        visited.push(entry.target);
        if bytecode::is_with_cleanup(Dialect(minor), instructions, entry.target) {
            if let Some(s) = bytecode::with_statement_for_handler(
                Dialect(minor),
                instructions,
                entries,
                entry.target,
            ) {
                if bytecode::is_with_entry(Dialect(minor), instructions, s) {
                    out.push(guard_at(minor, instructions, s, names));
                }
            }
        }
        unit = entry.target;
    }
    out
}

/// 3.8-3.10: each `SETUP_WITH` and the handler it jumps to bound its body, as
/// (statement, handler) instruction indices with the guard.
fn with_spans_by_setup(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
) -> Vec<(usize, usize, Guard)> {
    let mut out = Vec::new();
    for (s, ins) in instructions.iter().enumerate() {
        if ins.name != "SETUP_WITH" {
            continue;
        }
        // Relative jump from the next instruction; bytes before 3.10.
        let delta = if minor == 10 {
            ins.arg as usize
        } else {
            ins.arg as usize / 2
        };
        let Some(end) = bytecode::index_at(instructions, ins.next + delta) else {
            continue;
        };
        out.push((s, end, guard_at(minor, instructions, s, names)));
    }
    out
}

/// `X.acquire()` ... `X.release()` in one code object: from each acquire to the first release
/// of the same expression after it (the normal path of a `try: ... finally: X.release()`).
fn acquire_spans(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
) -> Vec<(usize, usize, Guard)> {
    // Found at the method lookup, not the call: the call's arguments can be anything
    // (`X.acquire(timeout=-1 if d is None else d)`), the lookup is on a name chain.
    let calls: Vec<(usize, String, Guard)> = instructions
        .iter()
        .enumerate()
        .filter_map(|(k, ins)| {
            let arg = ins.arg as usize;
            let idx = match ins.name {
                "LOAD_METHOD" => arg,
                "LOAD_ATTR" if minor >= 12 => arg >> 1,
                "LOAD_ATTR" => arg,
                _ => return None,
            };
            let method = names.names.get(idx)?;
            if !matches!(method.as_str(), "acquire" | "release") {
                return None;
            }
            let receiver = evaluate_before(minor, instructions, k, names)
                .and_then(|st| st.into_iter().last().flatten())?;
            Some((
                k,
                method.clone(),
                Guard {
                    text: Some(receiver.text),
                    path: receiver.path,
                },
            ))
        })
        .collect();
    let mut out = Vec::new();
    for (a, method, guard) in &calls {
        if method != "acquire" {
            continue;
        }
        let end = calls
            .iter()
            .find(|(r, m, g)| r > a && m == "release" && g.text == guard.text)
            .map(|(r, _, _)| *r)
            .unwrap_or(instructions.len());
        out.push((*a, end, guard.clone()));
    }
    out
}

/// Functions named to be called: a global (`LOAD_GLOBAL`, or `LOAD_NAME` at module level)
/// or a method lookup (`LOAD_METHOD`, 3.12+ `LOAD_ATTR` with its method bit) on a name chain.
fn callees(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    module_level: bool,
) -> Vec<(usize, Option<Path>, String)> {
    let mut out = Vec::new();
    for (k, ins) in instructions.iter().enumerate() {
        let arg = ins.arg as usize;
        let (name, method) = match ins.name {
            "LOAD_GLOBAL" if minor >= 11 => (names.names.get(arg >> 1), false),
            "LOAD_GLOBAL" => (names.names.get(arg), false),
            "LOAD_NAME" if module_level => (names.names.get(arg), false),
            "LOAD_METHOD" => (names.names.get(arg), true),
            "LOAD_ATTR" if minor >= 12 && arg & 1 == 1 => (names.names.get(arg >> 1), true),
            _ => continue,
        };
        let Some(name) = name.cloned() else {
            continue;
        };
        if !method {
            out.push((k, None, name));
            continue;
        }
        let receiver = evaluate_before(minor, instructions, k, names)
            .and_then(|st| st.into_iter().last().flatten())
            .and_then(|s| s.path);
        if let Some(receiver) = receiver {
            out.push((k, Some(receiver), name));
        }
    }
    out
}

/// The instruction a jump goes to, for jumps that go backward.
fn backward_target(minor: u8, ins: &Instruction) -> Option<usize> {
    bytecode::jump_target(minor, ins).filter(|&t| t <= ins.offset)
}

fn loops(minor: u8, instructions: &[Instruction]) -> Vec<(usize, usize)> {
    instructions
        .iter()
        .enumerate()
        .filter_map(|(j, ins)| {
            let t = backward_target(minor, ins)?;
            Some((bytecode::index_at(instructions, t)?, j))
        })
        .collect()
}

fn rebinds(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    module_level: bool,
) -> Vec<(usize, Root)> {
    let local = |i: usize| names.locals.get(i).cloned();
    let mut out = Vec::new();
    for (k, ins) in instructions.iter().enumerate() {
        let arg = ins.arg as usize;
        let mut push = |r: Option<Root>| {
            if let Some(r) = r {
                out.push((k, r));
            }
        };
        match ins.name {
            "STORE_FAST" | "DELETE_FAST" | "STORE_FAST_MAYBE_NULL" => {
                push(local(arg).map(Root::Local))
            }
            "STORE_FAST_STORE_FAST" => {
                push(local(arg >> 4).map(Root::Local));
                push(local(arg & 15).map(Root::Local));
            }
            "STORE_FAST_LOAD_FAST" => push(local(arg >> 4).map(Root::Local)),
            "STORE_DEREF" | "DELETE_DEREF" => {
                let n = if minor >= 11 {
                    names.locals.get(arg)
                } else {
                    names.cells.get(arg)
                };
                push(n.cloned().map(Root::Deref))
            }
            "STORE_GLOBAL" | "DELETE_GLOBAL" => {
                push(names.names.get(arg).cloned().map(Root::Global))
            }
            "STORE_NAME" | "DELETE_NAME" if module_level => {
                push(names.names.get(arg).cloned().map(Root::Global))
            }
            _ => {}
        }
    }
    out
}

impl CodeWrites {
    fn rebound(&self, root: &Root, from: usize, to: usize) -> bool {
        self.rebinds
            .iter()
            .any(|(k, r)| r == root && from <= *k && *k < to)
    }

    /// Whether a frame whose current instruction is `at` can still make `w` with the names its
    /// target and guards start from bound as they are now: `w` lies ahead of `at`, or in a
    /// loop around `at`, and no instruction on the way binds those names again.
    pub fn reachable(&self, at: usize, w: &CodeWrite) -> bool {
        let mut roots: Vec<&Root> = Vec::new();
        match &w.target {
            WriteTarget::Global(_) => {}
            WriteTarget::Attr { object, .. } => roots.push(&object.root),
            WriteTarget::Item { container, .. } => roots.push(&container.root),
        }
        roots.extend(
            w.guards
                .iter()
                .filter_map(|g| g.path.as_ref().map(|p| &p.root)),
        );
        self.reachable_index(at, w.index, &roots)
    }

    /// `reachable`, for a call.
    pub fn reachable_call(&self, at: usize, c: &CodeCall) -> bool {
        let mut roots: Vec<&Root> = c.receiver.iter().map(|p| &p.root).collect();
        roots.extend(
            c.guards
                .iter()
                .filter_map(|g| g.path.as_ref().map(|p| &p.root)),
        );
        self.reachable_index(at, c.index, &roots)
    }

    fn reachable_index(&self, at: usize, index: usize, roots: &[&Root]) -> bool {
        // A handler's code runs only while its exception is handled: not from outside it.
        let inside = |i: usize| {
            self.handlers
                .iter()
                .filter(|(s, e)| *s <= i && i <= *e)
                .copied()
                .collect::<Vec<_>>()
        };
        let here = inside(at);
        if inside(index).iter().any(|h| !here.contains(h)) {
            return false;
        }
        let clear = |spans: &[(usize, usize)]| {
            !roots
                .iter()
                .any(|r| spans.iter().any(|(a, b)| self.rebound(r, *a, *b)))
        };
        if index >= at {
            return clear(&[(at + 1, index)]);
        }
        // Behind the current instruction: only through a loop around both, the tightest first.
        self.loops
            .iter()
            .filter(|(t, j)| *t <= index && *j >= at)
            .min_by_key(|(t, j)| j - t)
            .is_some_and(|(t, j)| clear(&[(at + 1, j + 1), (*t, index)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::bytecode::tests::assemble;
    use crate::cpython::opcodes;

    #[test]
    fn a_write_under_setup_with_is_guarded_and_reachable_through_the_loop() {
        // 3.9: while True: with self.lock: self.n = 1   (then jump back to the top)
        let t = &opcodes::V3_9;
        let ops = [
            ("LOAD_FAST", 0),         // 0  self
            ("LOAD_ATTR", 0),         // 1  .lock
            ("SETUP_WITH", 8),        // 2  handler at unit 3 + 4 = 7 (bytes/2)
            ("POP_TOP", 0),           // 3
            ("LOAD_CONST", 1),        // 4
            ("LOAD_FAST", 0),         // 5  self
            ("STORE_ATTR", 1),        // 6  .n
            ("WITH_EXCEPT_START", 0), // 7
            ("JUMP_ABSOLUTE", 0),     // 8  back to 0
        ];
        let ins = bytecode::decode(t, &assemble(t, &ops));
        let names = CodeNames {
            names: vec!["lock".into(), "n".into()],
            locals: vec!["self".into()],
            cells: vec![],
            consts: vec!["None".into(), "1".into()],
        };
        let lines = vec![Some(1); ins.len()];
        let cw = decode(9, &ins, &[], &names, false, &lines);
        assert_eq!(cw.writes.len(), 1, "{:?}", cw.writes);
        let w = &cw.writes[0];
        assert_eq!(w.index, 6);
        assert_eq!(w.guards.len(), 1);
        assert_eq!(w.guards[0].text.as_deref(), Some("self.lock"));
        assert!(cw.reachable(0, w), "ahead");
        assert!(cw.reachable(8, w), "through the loop");
    }

    #[test]
    fn a_rebound_local_makes_a_write_unreachable_with_its_current_value() {
        // 3.12: for item in items: item.done = 1
        let t = &opcodes::V3_12;
        let ops = [
            ("LOAD_FAST", 1),     // 0 items
            ("GET_ITER", 0),      // 1
            ("FOR_ITER", 5),      // 2
            ("STORE_FAST", 0),    // 3 item
            ("LOAD_CONST", 1),    // 4
            ("LOAD_FAST", 0),     // 5 item
            ("STORE_ATTR", 0),    // 6 .done
            ("JUMP_BACKWARD", 0), // 7 (target patched below)
        ];
        let mut ins = bytecode::decode(t, &assemble(t, &ops));
        // Jump back to FOR_ITER.
        ins[7].arg = (ins[7].next - ins[2].offset) as u32;
        let names = CodeNames {
            names: vec!["done".into()],
            locals: vec!["item".into(), "items".into()],
            cells: vec![],
            consts: vec!["None".into(), "1".into()],
        };
        let lines = vec![Some(1); ins.len()];
        let cw = decode(12, &ins, &[], &names, false, &lines);
        let w = &cw.writes[0];
        assert!(cw.reachable(4, w), "between the binding and the write");
        assert!(!cw.reachable(7, w), "the next iteration binds `item` again");
        assert!(!cw.reachable(1, w), "`item` is bound on the way");
    }

    #[test]
    fn a_slice_deletion_is_a_write_and_an_append_only_adds() {
        // 3.12: results.append(item); del results[:500]
        let t = &opcodes::V3_12;
        let ops = [
            ("LOAD_GLOBAL", 0),   // 0 results
            ("LOAD_ATTR", 3),     // 1 .append (method)
            ("LOAD_FAST", 0),     // 2 item
            ("CALL", 1),          // 3
            ("POP_TOP", 0),       // 4
            ("LOAD_GLOBAL", 0),   // 5 results
            ("LOAD_CONST", 0),    // 6 None
            ("LOAD_CONST", 1),    // 7 500
            ("BUILD_SLICE", 2),   // 8
            ("DELETE_SUBSCR", 0), // 9
        ];
        let ins = bytecode::decode(t, &assemble(t, &ops));
        let names = CodeNames {
            names: vec!["results".into(), "append".into()],
            locals: vec!["item".into()],
            cells: vec![],
            consts: vec!["None".into(), "500".into()],
        };
        let lines: Vec<Option<u32>> = (0..ins.len())
            .map(|i| Some(if i < 5 { 1 } else { 2 }))
            .collect();
        let cw = decode(12, &ins, &[], &names, false, &lines);
        let targets: Vec<&WriteTarget> = cw.writes.iter().map(|w| &w.target).collect();
        let results = Path {
            root: Root::Global("results".into()),
            attrs: vec![],
        };
        assert_eq!(
            targets,
            [
                &WriteTarget::Item {
                    container: results.clone(),
                    adds_or_takes: true
                },
                &WriteTarget::Item {
                    container: results,
                    adds_or_takes: false
                }
            ]
        );
    }

    #[test]
    fn a_write_only_the_owner_can_make_is_not_a_shared_write() {
        // 3.12: me = threading.get_ident()
        //       if self._writer == me: self.entries += 1      (the owner's re-entry)
        //       self.total = 1                                 (anyone)
        let t = &opcodes::V3_12;
        let ops = [
            ("LOAD_GLOBAL", 1),       // 0 threading (+ NULL)
            ("LOAD_ATTR", 2),         // 1 .get_ident
            ("CALL", 0),              // 2
            ("STORE_FAST", 1),        // 3 me
            ("LOAD_FAST", 0),         // 4 self
            ("LOAD_ATTR", 4),         // 5 ._writer
            ("LOAD_FAST", 1),         // 6 me
            ("COMPARE_OP", 40),       // 7 ==
            ("POP_JUMP_IF_FALSE", 0), // 8 (target patched below)
            ("LOAD_FAST", 0),         // 9 self
            ("COPY", 1),              // 10
            ("LOAD_ATTR", 6),         // 11 .entries
            ("LOAD_CONST", 1),        // 12 1
            ("BINARY_OP", 13),        // 13 +=
            ("SWAP", 2),              // 14
            ("STORE_ATTR", 3),        // 15 .entries
            ("LOAD_CONST", 1),        // 16 1
            ("LOAD_FAST", 0),         // 17 self
            ("STORE_ATTR", 4),        // 18 .total
        ];
        let mut ins = bytecode::decode(t, &assemble(t, &ops));
        ins[8].arg = (ins[16].offset - ins[8].next) as u32;
        let names = CodeNames {
            names: vec![
                "threading".into(),
                "get_ident".into(),
                "_writer".into(),
                "entries".into(),
                "total".into(),
            ],
            locals: vec!["self".into(), "me".into()],
            cells: vec![],
            consts: vec!["None".into(), "1".into()],
        };
        let lines: Vec<Option<u32>> = (0..ins.len())
            .map(|i| {
                Some(match i {
                    0..=3 => 1,
                    4..=8 => 2,
                    9..=15 => 3,
                    _ => 4,
                })
            })
            .collect();
        let cw = decode(12, &ins, &[], &names, false, &lines);
        let written: Vec<String> = cw
            .writes
            .iter()
            .map(|w| match &w.target {
                WriteTarget::Attr { attr, .. } => attr.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(written, ["total"]);
    }

    /// `co_code`, `co_exceptiontable` and per-instruction lines of
    /// `def add_locked(self, n):\n    with self.lock:\n        self.value += n`, as compiled by
    /// Debian's CPython 3.14.10 and 3.15.2: the `with` is entered through `LOAD_SPECIAL`.
    const ADD_LOCKED_314: [u8; 154] = [
        128, 0, 86, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 59, 1, 95, 1,
        117, 2, 117, 3, 95, 0, 52, 0, 0, 0, 0, 0, 0, 0, 31, 0, 86, 0, 59, 1, 80, 2, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 86, 1, 44, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 117, 2,
        110, 1, 0, 0, 0, 0, 0, 0, 0, 0, 82, 0, 82, 0, 82, 0, 52, 3, 0, 0, 0, 0, 0, 0, 31, 0, 82, 0,
        35, 0, 32, 0, 43, 0, 39, 0, 0, 0, 0, 0, 0, 0, 103, 2, 0, 0, 28, 0, 105, 2, 31, 0, 29, 0,
        31, 0, 31, 0, 31, 0, 82, 0, 35, 0, 59, 3, 29, 0, 105, 1,
    ];
    const ADD_LOCKED_314_TABLE: [u8; 9] = [149, 26, 57, 5, 185, 11, 65, 10, 9];
    const ADD_LOCKED_315: [u8; 156] = [
        128, 0, 0, 0, 85, 0, 79, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 57, 1,
        94, 1, 116, 2, 116, 3, 94, 0, 50, 0, 0, 0, 0, 0, 0, 0, 29, 0, 85, 0, 57, 1, 79, 2, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 85, 1, 42, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        116, 2, 109, 1, 0, 0, 0, 0, 0, 0, 0, 0, 80, 7, 80, 7, 80, 7, 50, 3, 0, 0, 0, 0, 0, 0, 29,
        0, 80, 7, 33, 0, 30, 0, 41, 0, 37, 0, 0, 0, 0, 0, 0, 0, 102, 2, 0, 0, 26, 0, 104, 2, 29, 0,
        27, 0, 29, 0, 29, 0, 29, 0, 80, 7, 33, 0, 57, 3, 27, 0, 104, 1,
    ];
    const ADD_LOCKED_315_TABLE: [u8; 9] = [150, 26, 58, 5, 186, 11, 65, 11, 9];
    const ADD_LOCKED_LINES: [Option<u32>; 40] = {
        let mut l = [Some(4); 40];
        l[0] = Some(3);
        let mut i = 10;
        while i < 17 {
            l[i] = Some(5);
            i += 1;
        }
        l[37] = None;
        l[38] = None;
        l[39] = None;
        l
    };

    #[test]
    fn a_314_with_block_entered_through_load_special_guards_its_body() {
        let names = CodeNames {
            names: vec!["lock".into(), "value".into()],
            locals: vec!["self".into(), "n".into()],
            cells: vec![],
            consts: vec!["None".into()],
        };
        for (minor, t, code, table) in [
            (
                14u8,
                &opcodes::V3_14,
                &ADD_LOCKED_314[..],
                &ADD_LOCKED_314_TABLE[..],
            ),
            (
                15,
                &opcodes::V3_15,
                &ADD_LOCKED_315[..],
                &ADD_LOCKED_315_TABLE[..],
            ),
        ] {
            let ins = bytecode::decode(t, code);
            assert_eq!(ins.len(), ADD_LOCKED_LINES.len(), "3.{minor}");
            let entries = bytecode::exception_table(table);
            let cw = decode(minor, &ins, &entries, &names, false, &ADD_LOCKED_LINES);
            assert_eq!(cw.writes.len(), 1, "3.{minor}: {:?}", cw.writes);
            let w = &cw.writes[0];
            assert_eq!(ins[w.index].name, "STORE_ATTR", "3.{minor}");
            assert_eq!(w.line, Some(5));
            assert_eq!(
                w.target,
                WriteTarget::Attr {
                    object: Path {
                        root: Root::Local("self".into()),
                        attrs: vec![],
                    },
                    attr: "value".into(),
                },
                "3.{minor}"
            );
            assert_eq!(w.guards.len(), 1, "3.{minor}: {:?}", w.guards);
            assert_eq!(w.guards[0].text.as_deref(), Some("self.lock"), "3.{minor}");
            assert!(
                cw.reachable(0, w),
                "3.{minor}: ahead of the function's entry"
            );
        }
    }

    #[test]
    fn a_315_mutator_call_with_a_common_constant_argument_is_a_write() {
        // `def f(key): results.append(None); registry[key] = None` (two lines) by 3.15.2:
        // `None` is loaded with LOAD_COMMON_CONSTANT.
        let t = &opcodes::V3_15;
        let code = [
            128, 0, 0, 0, 91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 79, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 80, 7, 50, 1, 0, 0, 0, 0, 0, 0, 29, 0, 80, 7, 91, 4, 0, 0, 0, 0, 0,
            0, 0, 0, 85, 0, 36, 0, 0, 0, 80, 7, 33, 0,
        ];
        let lines = [2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4].map(Some);
        let names = CodeNames {
            names: vec!["results".into(), "append".into(), "registry".into()],
            locals: vec!["key".into()],
            cells: vec![],
            consts: vec!["None".into()],
        };
        let ins = bytecode::decode(t, &code);
        assert_eq!(ins.len(), lines.len());
        let cw = decode(15, &ins, &[], &names, false, &lines);
        let containers: Vec<String> = cw
            .writes
            .iter()
            .map(|w| match &w.target {
                WriteTarget::Item { container, .. } => container.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(containers, ["results", "registry"]);
    }

    #[test]
    fn a_borrowed_load_ends_construction_on_314() {
        // `job = Job(i); job.state = "queued"; q.put(job); job.payload = 1` by 3.14.10: the
        // first store is construction, the one after `job` was handed to `q.put` is not.
        let t = &opcodes::V3_14;
        let code = [
            128, 0, 92, 1, 0, 0, 0, 0, 0, 0, 0, 0, 86, 1, 52, 1, 0, 0, 0, 0, 0, 0, 112, 2, 82, 0,
            86, 2, 110, 1, 0, 0, 0, 0, 0, 0, 0, 0, 86, 0, 80, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 86, 2, 52, 1, 0, 0, 0, 0, 0, 0, 31, 0, 94, 1, 86, 2, 110, 3, 0, 0,
            0, 0, 0, 0, 0, 0, 82, 1, 35, 0,
        ];
        let lines = [6, 7, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10].map(Some);
        let names = CodeNames {
            names: vec!["Job".into(), "state".into(), "put".into(), "payload".into()],
            locals: vec!["q".into(), "i".into(), "job".into()],
            cells: vec![],
            consts: vec!["'queued'".into(), "None".into()],
        };
        let ins = bytecode::decode(t, &code);
        assert_eq!(ins.len(), lines.len());
        let cw = decode(14, &ins, &[], &names, false, &lines);
        let attrs: Vec<&str> = cw
            .writes
            .iter()
            .filter_map(|w| match &w.target {
                WriteTarget::Attr { attr, .. } => Some(attr.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(attrs, ["payload"]);
    }

    #[test]
    fn an_augmented_subscript_on_314_writes_its_container() {
        // `def f(k): box.data[k] += 1` by 3.14.10: `COPY 2; COPY 2` duplicates both operands.
        let t = &opcodes::V3_14;
        let code = [
            128, 0, 92, 0, 0, 0, 0, 0, 0, 0, 0, 0, 80, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 86, 0, 59, 2, 59, 2, 44, 26, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 94, 1, 44, 13,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 117, 3, 117, 2, 38, 0, 0, 0, 82, 1, 35, 0,
        ];
        let lines = [3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4].map(Some);
        let names = CodeNames {
            names: vec!["box".into(), "data".into()],
            locals: vec!["k".into()],
            cells: vec![],
            consts: vec!["1".into(), "None".into()],
        };
        let ins = bytecode::decode(t, &code);
        assert_eq!(ins.len(), lines.len());
        let cw = decode(14, &ins, &[], &names, false, &lines);
        assert_eq!(cw.writes.len(), 1, "{:?}", cw.writes);
        assert_eq!(
            cw.writes[0].target,
            WriteTarget::Item {
                container: Path {
                    root: Root::Global("box".into()),
                    attrs: vec!["data".into()],
                },
                adds_or_takes: false,
            }
        );
    }

    #[test]
    fn an_attribute_argument_is_not_the_method_called() {
        // 3.12: items.append(job.result)
        let t = &opcodes::V3_12;
        let ops = [
            ("LOAD_GLOBAL", 0), // 0 items
            ("LOAD_ATTR", 3),   // 1 .append (method)
            ("LOAD_FAST", 0),   // 2 job
            ("LOAD_ATTR", 4),   // 3 .result (plain)
            ("CALL", 1),        // 4
            ("POP_TOP", 0),     // 5
        ];
        let ins = bytecode::decode(t, &assemble(t, &ops));
        let names = CodeNames {
            names: vec!["items".into(), "append".into(), "result".into()],
            locals: vec!["job".into()],
            cells: vec![],
            consts: vec!["None".into()],
        };
        let lines = vec![Some(1); ins.len()];
        let cw = decode(12, &ins, &[], &names, false, &lines);
        let targets: Vec<&WriteTarget> = cw.writes.iter().map(|w| &w.target).collect();
        assert_eq!(
            targets,
            [&WriteTarget::Item {
                container: Path {
                    root: Root::Global("items".into()),
                    attrs: vec![],
                },
                adds_or_takes: true
            }]
        );
    }
}
