//! Which offsets a process's asyncio is read with: on 3.14+ those its `.AsyncioDebug`
//! section publishes, else gridlock's own table's for the one build they were verified on,
//! either only once checked on live objects (`check`); on 3.8-3.13 the table's as they are.
//! It decides and notes why; it reads no task itself.

use std::collections::HashMap;

use crate::cpython::asyncio_debug;
use crate::cpython::layout::{AsyncioOffsets, CurrentTask, RunningLoop, TaskRegistry};
use crate::cpython::threads::RawThread;

use super::cache::Resolution;
use super::check;
use super::reader::Reader;

/// Snapshots in a row whose live check of the asyncio offsets must fail before they are
/// given up.
const CHECK_TRIES: u32 = 3;

/// What looking for the target's published asyncio offsets found: the binary holding the
/// section and its bytes, no such section, or why the binaries could not be read.
pub type SectionLookup = Result<Option<(String, Vec<u8>)>, String>;

/// The offsets a target's `.AsyncioDebug` section publishes, from what looking for it found,
/// or why there are none.
fn published_offsets(
    layout: &crate::cpython::Layout,
    found: SectionLookup,
) -> Result<AsyncioOffsets, String> {
    let section = asyncio_debug::SECTION;
    match found {
        Ok(Some((binary, bytes))) => asyncio_debug::parse(&bytes)
            .and_then(|d| asyncio_debug::offsets(layout, &d))
            .map_err(|e| format!("{binary}: {e}")),
        Ok(None) => Err(format!(
            "no {section} section was found in the target's _asyncio module or interpreter binary"
        )),
        Err(e) => Err(format!("its {section} section could not be read ({e})")),
    }
}

/// gridlock's own offsets for this build, when it is one they were verified on; else the
/// note that turns asyncio off, saying `why` the published ones are not used.
fn table_offsets(layout: &crate::cpython::Layout, why: &str) -> Result<AsyncioOffsets, String> {
    match (&layout.asyncio_published, layout.asyncio) {
        (Some(p), Some(offs)) if p.table_build => Ok(offs),
        (p, _) => Err(format!(
            "asyncio tasks and event loops not read: {why}; CPython {} is not a build whose asyncio offsets gridlock has verified ({})",
            layout.version,
            p.as_ref().map(|p| p.table_builds.as_str()).unwrap_or("none")
        )),
    }
}

impl Reader<'_, '_, '_> {
    /// The offsets to read this process's asyncio with: on 3.14+ those its `.AsyncioDebug`
    /// section publishes, else (section missing, unreadable or failing the live check) the
    /// table's when this exact build is the one they were verified on, checked the same way;
    /// else none (asyncio off, with a note). `None` also while nothing can be trusted.
    pub(super) fn resolve(
        &mut self,
        interp: usize,
        raw: &[RawThread],
        globals: &HashMap<String, usize>,
        section: &mut dyn FnMut() -> SectionLookup,
    ) -> Option<AsyncioOffsets> {
        let layout = self.walker.objs.layout;
        let unresolved = matches!(self.cache.resolution, Resolution::Unresolved);
        if layout.asyncio_published.is_some() && unresolved && !globals.contains_key("_CTask") {
            // asyncio without its C accelerator (or still importing it, before its section
            // is mapped): no C task exists and no thread-state field is in use, so only the
            // pure-Python registries are read, with no offset that needs the section.
            return Some(AsyncioOffsets {
                registry: TaskRegistry::ModuleSets,
                current_task: CurrentTask::ModuleDict,
                running_loop: RunningLoop::NotInThreadState,
                ..self.offs
            });
        }
        loop {
            match std::mem::take(&mut self.cache.resolution) {
                Resolution::Trusted(o) => {
                    self.cache.resolution = Resolution::Trusted(o);
                    return Some(o);
                }
                Resolution::Off => {
                    self.cache.resolution = Resolution::Off;
                    return None;
                }
                Resolution::Unresolved => {
                    if layout.asyncio_published.is_none() {
                        self.cache.resolution = Resolution::Trusted(self.offs);
                        continue;
                    }
                    self.cache.resolution = match published_offsets(layout, section()) {
                        Ok(offs) => Resolution::Checking { offs, table: false },
                        Err(why) => self.fallback(why),
                    };
                }
                Resolution::Checking { offs, table } => {
                    let task_type = globals.get("Task").copied();
                    let objs = &self.walker.objs;
                    let verdict =
                        check::check(objs, &mut self.types, &offs, interp, raw, task_type);
                    if !matches!(verdict, check::Verdict::Fails(_)) {
                        self.cache.check_failures = 0;
                    }
                    match verdict {
                        check::Verdict::Holds => {
                            if let Some(why) = self.cache.table_because.take() {
                                self.cache.notes.push(format!(
                                    "asyncio read with gridlock's own offsets for CPython {} (checked on live tasks): {why}",
                                    layout.version
                                ));
                            }
                            self.cache.resolution = Resolution::Trusted(offs);
                            return Some(offs);
                        }
                        check::Verdict::NoTaskYet => {
                            self.cache.resolution = Resolution::Checking { offs, table };
                            return Some(offs);
                        }
                        check::Verdict::Fails(_) if self.cache.check_failures + 1 < CHECK_TRIES => {
                            // Not read this time; checked again at the next snapshot.
                            self.cache.check_failures += 1;
                            self.cache.resolution = Resolution::Checking { offs, table };
                            return None;
                        }
                        check::Verdict::Fails(why) if table => {
                            let first = self.cache.table_because.take().unwrap_or_default();
                            self.cache.notes.push(format!(
                                "asyncio tasks and event loops not read: {first}; gridlock's own offsets for CPython {} fail a check on live objects too ({why})",
                                layout.version
                            ));
                            self.cache.resolution = Resolution::Off;
                        }
                        check::Verdict::Fails(why) => {
                            self.cache.check_failures = 0;
                            self.cache.resolution = self.fallback(format!(
                                "the offsets its {} section publishes fail a check on live objects ({why})",
                                asyncio_debug::SECTION
                            ));
                        }
                    }
                }
            }
        }
    }

    /// The table's offsets, to be checked, when this build is the one they were verified
    /// on; else asyncio off with a note saying `why`.
    pub(super) fn fallback(&mut self, why: String) -> Resolution {
        match table_offsets(self.walker.objs.layout, &why) {
            Ok(offs) => {
                self.cache.table_because = Some(why);
                Resolution::Checking { offs, table: true }
            }
            Err(note) => {
                self.cache.notes.push(note);
                Resolution::Off
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::asyncio_debug::test_layout_314;

    /// 3.14.10's `.AsyncioDebug`, as bytes.
    fn section_314() -> Vec<u8> {
        [
            168u64, 136, 96, 108, 109, 128, 152, 225864, 10880, 936, 864, 872, 880,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
    }

    #[test]
    fn a_found_section_gives_offsets_and_a_missing_one_says_why() {
        let layout = test_layout_314(10);
        let found = Ok(Some(("/usr/lib/_asyncio.so".to_string(), section_314())));
        let o = published_offsets(&layout, found).unwrap();
        assert!(matches!(
            o.registry,
            TaskRegistry::ThreadLists { node: 152, .. }
        ));
        let err = published_offsets(&layout, Ok(None)).unwrap_err();
        assert!(err.contains("no .AsyncioDebug section"), "{err}");
        let short = Ok(Some(("/x/_asyncio.so".to_string(), vec![0u8; 40])));
        let err = published_offsets(&layout, short).unwrap_err();
        assert!(err.starts_with("/x/_asyncio.so: "), "{err}");
    }

    #[test]
    fn the_table_stands_in_only_on_the_build_it_was_verified_on() {
        assert!(table_offsets(&test_layout_314(10), "no section").is_ok());
        let note = table_offsets(&test_layout_314(11), "no section").unwrap_err();
        assert_eq!(
            note,
            "asyncio tasks and event loops not read: no section; CPython 3.14.11 is not a build whose asyncio offsets gridlock has verified (3.14.10, 3.15.2)"
        );
    }
}
