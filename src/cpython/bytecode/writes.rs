//! Which shared locations the instructions of one source line write (stores, deletes,
//! augmented assignments, mutating method calls), each with its instruction. It decides
//! nothing about guards or reachability (`cpython::writes` does) and reads no memory.

use crate::cpython::layout::Dialect;

use super::decode::Instruction;
use super::eval::{evaluate_before, CodeNames, Path};

/// A write to possibly shared state found on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteTarget {
    /// `global counter; counter += 1`, or an assignment at module level.
    Global(String),
    /// `obj.attr = ...` / `obj.attr += ...`
    Attr { object: Path, attr: String },
    /// `container[key] = ...`, `container[key] += ...`, `del container[key]`, or a mutating
    /// method call. `adds_or_takes`: the call adds or takes items one by one (see
    /// [`ADD_OR_TAKE`]).
    Item {
        container: Path,
        adds_or_takes: bool,
    },
}

/// Mutating methods that add items to their container or take one out: calls of these from
/// several threads lose and duplicate nothing in any order (each is one atomic call under
/// the GIL; every item added is there, every item taken goes to one caller: a work list),
/// unlike a store, which replaces another thread's value, or a `remove`/`clear`/`del`, which
/// acts on what another thread may have changed.
pub const ADD_OR_TAKE: &[&str] = &[
    "append",
    "appendleft",
    "extend",
    "extendleft",
    "add",
    "pop",
    "popleft",
    "popitem",
];

/// Methods that mutate the container they are called on.
pub const MUTATORS: &[&str] = &[
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "update",
    "setdefault",
    "add",
    "discard",
    "popitem",
    "appendleft",
    "popleft",
    "extendleft",
    "sort",
    "reverse",
];

/// The writes made by the instructions in `range` (one source line) at or after `from` (the
/// current instruction: a write already done in this pass, or a with-block's exit code that
/// shares the line, is not a write in progress), decoded from bytecode, each with the index
/// of the instruction that makes it.
pub(in crate::cpython) fn writes_in(
    dialect: Dialect,
    instructions: &[Instruction],
    range: std::ops::Range<usize>,
    from: usize,
    names: &CodeNames,
    module_level: bool,
) -> Vec<(usize, WriteTarget)> {
    let minor = dialect.0;
    let mut out = Vec::new();
    let top_paths = |at: usize| -> Vec<Option<Path>> {
        evaluate_before(minor, instructions, at, names)
            .map(|st| st.into_iter().map(|s| s.and_then(|s| s.path)).collect())
            .unwrap_or_default()
    };
    // Augmented assignments duplicate the target before loading from it: find the duplication
    // inside the line and evaluate what was on the stack there.
    // The nearest duplication before the store: a line can hold several augmented assignments.
    let duplicated =
        |at: usize, is_dup: &dyn Fn(&Instruction) -> bool, depth: usize| -> Option<Path> {
            (range.start..at)
                .rev()
                .find(|&j| is_dup(&instructions[j]))
                // 3.11+ copies a subscript's two operands as `COPY 2; COPY 2`: take the first.
                .map(|j| j - usize::from(j > range.start && is_dup(&instructions[j - 1])))
                .and_then(|j| {
                    let st = top_paths(j);
                    st.len().checked_sub(depth).and_then(|k| st[k].clone())
                })
        };
    // A thread paused on the line's loop back edge is looping over the whole line.
    let looping = instructions
        .get(from)
        .map(|i| {
            matches!(
                i.name,
                "JUMP_BACKWARD" | "JUMP_BACKWARD_NO_INTERRUPT" | "JUMP_ABSOLUTE"
            )
        })
        .unwrap_or(false);
    let first = if looping {
        range.start
    } else {
        from.max(range.start)
    };
    for i in first..range.end {
        let ins = &instructions[i];
        let arg = ins.arg as usize;
        match ins.name {
            "STORE_GLOBAL" | "DELETE_GLOBAL" => {
                if let Some(n) = names.names.get(arg) {
                    out.push((i, WriteTarget::Global(n.clone())));
                }
            }
            "STORE_NAME" if module_level => {
                if let Some(n) = names.names.get(arg) {
                    out.push((i, WriteTarget::Global(n.clone())));
                }
            }
            "STORE_ATTR" | "DELETE_ATTR" => {
                let Some(attr) = names.names.get(arg).cloned() else {
                    continue;
                };
                let object = top_paths(i).last().cloned().flatten().or_else(|| {
                    duplicated(
                        i,
                        &|x: &Instruction| x.name == "DUP_TOP" || (x.name == "COPY" && x.arg == 1),
                        1,
                    )
                });
                if let Some(object) = object {
                    out.push((i, WriteTarget::Attr { object, attr }));
                }
            }
            "STORE_SUBSCR" | "DELETE_SUBSCR" => {
                let st = top_paths(i);
                // `container[key] = value` has the container second from the top; `del
                // container[key]` has it second too (under the key), with no value above.
                let container = st
                    .len()
                    .checked_sub(2)
                    .and_then(|k| st[k].clone())
                    .or_else(|| {
                        duplicated(
                            i,
                            &|x: &Instruction| {
                                x.name == "DUP_TOP_TWO" || (x.name == "COPY" && x.arg == 2)
                            },
                            2,
                        )
                    });
                if let Some(container) = container {
                    out.push((
                        i,
                        WriteTarget::Item {
                            container,
                            adds_or_takes: false,
                        },
                    ));
                }
            }
            "CALL" | "CALL_METHOD" | "CALL_FUNCTION" | "CALL_FUNCTION_KW" | "CALL_KW" => {
                let Some(mut stack) = evaluate_before(minor, instructions, i, names) else {
                    continue;
                };
                // The arguments sit above the callable (and, for keyword calls before 3.11
                // and from 3.13, a tuple of their names): an argument such as `x.y` in
                // `items.append(x.y)` is not the method called.
                let above = arg + matches!(ins.name, "CALL_FUNCTION_KW" | "CALL_KW") as usize;
                stack.truncate(stack.len().saturating_sub(above));
                let call = stack
                    .into_iter()
                    .rev()
                    .flatten()
                    .find(|s| s.receiver.is_some());
                if let Some(call) = call {
                    let method = call.text.rsplit('.').next().unwrap_or("");
                    if let (true, Some(container)) =
                        (MUTATORS.contains(&method), call.receiver_path)
                    {
                        out.push((
                            i,
                            WriteTarget::Item {
                                container,
                                adds_or_takes: ADD_OR_TAKE.contains(&method),
                            },
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}
