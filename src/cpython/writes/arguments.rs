//! Which expressions a call passes as its arguments: for the function or method a code object
//! looks up at one instruction (`take` in `take(q)`, `self._drain` in `self._drain()`), the
//! name chains its call's positional and keyword arguments are (`take(self.jobs)`,
//! `take(q=jobs)`), so a callee's parameters can be resolved in the caller's frame. It reads
//! no memory; a call it cannot follow (`*args`, `**kwargs`) gives `None`, and an argument that
//! is no name chain gives `None` for that argument.

use crate::cpython::bytecode::{evaluate_before, CodeNames, Instruction, Path};

/// How far past its lookup a call instruction is looked for (its arguments' loads).
const MAX_CALL_DISTANCE: usize = 64;

/// What one call passes, each argument a name chain or `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallArguments {
    pub positional: Vec<Option<Path>>,
    /// By keyword, in call order.
    pub keywords: Vec<(String, Option<Path>)>,
}

impl CallArguments {
    /// Every argument, positional first.
    pub fn all(&self) -> impl Iterator<Item = &Option<Path>> {
        self.positional
            .iter()
            .chain(self.keywords.iter().map(|(_, p)| p))
    }
}

/// The arguments of the call of what `instructions[lookup]` loads (named `name`); `None` if
/// that call is not found or passes `*args` / `**kwargs`.
pub(super) fn call_arguments(
    minor: u8,
    instructions: &[Instruction],
    names: &CodeNames,
    lookup: usize,
    name: &str,
) -> Option<CallArguments> {
    let end = instructions.len().min(lookup + MAX_CALL_DISTANCE);
    for j in lookup + 1..end {
        let ins = &instructions[j];
        // 3.11's PRECALL comes first with the same count. The keyword names are a constant
        // tuple: named by KW_NAMES before the call (3.11-3.12), or loaded onto the stack
        // right before CALL_KW (3.13+) / CALL_FUNCTION_KW (3.8-3.10).
        let (keywords_const, on_stack) = match ins.name {
            "CALL" | "CALL_METHOD" | "CALL_FUNCTION" | "PRECALL" => {
                let mut k = j - 1;
                if instructions[k].name == "PRECALL" && k > lookup {
                    k -= 1;
                }
                let kw = &instructions[k];
                ((kw.name == "KW_NAMES").then_some(kw.arg as usize), false)
            }
            "CALL_KW" | "CALL_FUNCTION_KW" => {
                let load = &instructions[j - 1];
                if load.name != "LOAD_CONST" {
                    return None;
                }
                (Some(load.arg as usize), true)
            }
            "CALL_FUNCTION_EX" => return None,
            _ => continue,
        };
        let Some(stack) = evaluate_before(minor, instructions, j, names) else {
            continue;
        };
        let argc = ins.arg as usize;
        let top = stack.len() - usize::from(on_stack);
        if top <= argc || stack.is_empty() {
            continue;
        }
        let (below, args) = stack[..top].split_at(top - argc);
        let callable = below.iter().rev().find_map(|s| s.as_ref());
        let named = callable.is_some_and(|c| {
            c.text == name
                || c.text
                    .strip_suffix(name)
                    .is_some_and(|head| head.ends_with('.'))
        });
        if !named {
            continue;
        }
        let keyword_names: &[String] = match keywords_const {
            Some(c) => names.const_strings.get(c)?,
            None => &[],
        };
        if keyword_names.len() > argc {
            return None;
        }
        let paths: Vec<Option<Path>> = args
            .iter()
            .map(|a| a.as_ref().and_then(|s| s.path.clone()))
            .collect();
        let (positional, by_keyword) = paths.split_at(argc - keyword_names.len());
        return Some(CallArguments {
            positional: positional.to_vec(),
            keywords: keyword_names
                .iter()
                .cloned()
                .zip(by_keyword.iter().cloned())
                .collect(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::bytecode::Root;

    fn code(ops: &[(&'static str, u32)]) -> Vec<Instruction> {
        ops.iter()
            .enumerate()
            .map(|(i, &(name, arg))| Instruction {
                offset: i,
                name,
                arg,
                next: i + 1,
            })
            .collect()
    }

    /// `take`, `jobs`; `self`, `flag`; consts `None`, `('q',)`, `('block',)`.
    fn names() -> CodeNames {
        CodeNames {
            names: vec!["take".into(), "jobs".into()],
            locals: vec!["self".into(), "flag".into()],
            cells: vec![],
            consts: vec!["None".into(), "…".into(), "…".into()],
            const_strings: vec![vec![], vec!["q".into()], vec!["block".into()]],
        }
    }

    fn self_jobs() -> Option<Path> {
        Some(Path {
            root: Root::Local("self".into()),
            attrs: vec!["jobs".into()],
        })
    }

    fn flag() -> Option<Path> {
        Some(Path {
            root: Root::Local("flag".into()),
            attrs: vec![],
        })
    }

    #[test]
    fn a_keyword_argument_is_bound_by_name_in_every_dialect() {
        // `take(q=self.jobs)`
        let v310 = code(&[
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("LOAD_CONST", 1),
            ("CALL_FUNCTION_KW", 1),
        ]);
        let v311 = code(&[
            ("PUSH_NULL", 0),
            ("LOAD_GLOBAL", 0),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 1),
            ("KW_NAMES", 1),
            ("PRECALL", 1),
            ("CALL", 1),
        ]);
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("KW_NAMES", 1),
            ("CALL", 1),
        ]);
        let v313 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_CONST", 1),
            ("CALL_KW", 1),
        ]);
        let lookup = |ins: &[Instruction]| ins.iter().position(|i| i.name == "LOAD_GLOBAL");
        for (minor, ins) in [(10u8, v310), (11, v311), (12, v312), (13, v313)] {
            let args = call_arguments(minor, &ins, &names(), lookup(&ins).unwrap(), "take");
            assert_eq!(
                args,
                Some(CallArguments {
                    positional: vec![],
                    keywords: vec![("q".into(), self_jobs())],
                }),
                "3.{minor}"
            );
        }
    }

    #[test]
    fn positional_and_keyword_arguments_are_told_apart() {
        // `take(self.jobs, block=flag)` (3.12, 3.13)
        let v312 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_FAST", 1),
            ("KW_NAMES", 2),
            ("CALL", 2),
        ]);
        let v313 = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_FAST", 1),
            ("LOAD_CONST", 2),
            ("CALL_KW", 2),
        ]);
        for (minor, ins) in [(12u8, v312), (13, v313)] {
            let args = call_arguments(minor, &ins, &names(), 0, "take").unwrap();
            assert_eq!(args.positional, vec![self_jobs()], "3.{minor}");
            assert_eq!(args.keywords, vec![("block".into(), flag())], "3.{minor}");
            assert_eq!(args.all().count(), 2);
        }
    }

    #[test]
    fn star_args_and_unknown_keyword_names_are_not_followed() {
        // `take(*flag)` (3.12)
        let star = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 1),
            ("CALL_FUNCTION_EX", 0),
        ]);
        assert_eq!(call_arguments(12, &star, &names(), 0, "take"), None);
        // A keyword-names constant that is not a tuple of strings (a torn read).
        let torn = code(&[
            ("LOAD_GLOBAL", 1),
            ("LOAD_FAST", 0),
            ("LOAD_ATTR", 2),
            ("LOAD_CONST", 0),
            ("CALL_KW", 1),
        ]);
        let mut bad = names();
        bad.const_strings.clear();
        assert_eq!(call_arguments(13, &torn, &bad, 0, "take"), None);
        // More keyword names than arguments.
        let short = code(&[("LOAD_GLOBAL", 1), ("KW_NAMES", 1), ("CALL", 0)]);
        assert_eq!(call_arguments(12, &short, &names(), 0, "take"), None);
    }
}
