//! `_Py_DebugOffsets`, the table CPython 3.13+ publishes at the start of `_PyRuntime` for
//! out-of-process tools: a cookie, the version, the `free_threaded` flag, then packed
//! uint64 offsets whose order depends on the version (`internal/pycore_debug_offsets.h`,
//! `pycore_runtime.h` on 3.13). This file reads and names them; it does not build a layout.

use crate::error::{Error, Result};
use crate::memory::ReadMemory;

const COOKIE: &[u8; 8] = b"xdebugpy";
const HEADER: usize = 24;

/// One section of the struct: its name and its fields, in order.
type Section = (&'static str, &'static [&'static str]);
type Spec = &'static [Section];

// Sections, each written once; a version lists the ones it has, in order.
const RUNTIME: Section = (
    "runtime_state",
    &["size", "finalizing", "interpreters_head"],
);
const INTERP_313: Section = (
    "interpreter_state",
    &[
        "size",
        "id",
        "next",
        "threads_head",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
    ],
);
const INTERP_314: Section = (
    "interpreter_state",
    &[
        "size",
        "id",
        "next",
        "threads_head",
        "threads_main",
        "gc",
        "imports_modules",
        "sysdict",
        "builtins",
        "ceval_gil",
        "gil_runtime_state",
        "gil_runtime_state_enabled",
        "gil_runtime_state_locked",
        "gil_runtime_state_holder",
        "code_object_generation",
        "tlbc_generation",
    ],
);
const TSTATE_313: Section = (
    "thread_state",
    &[
        "size",
        "prev",
        "next",
        "interp",
        "current_frame",
        "thread_id",
        "native_thread_id",
        "datastack_chunk",
        "status",
    ],
);
const TSTATE_315: Section = (
    "thread_state",
    &[
        "size",
        "prev",
        "next",
        "interp",
        "current_frame",
        "base_frame",
        "last_profiled_frame",
        "last_profiled_frame_seq",
        "thread_id",
        "native_thread_id",
        "datastack_chunk",
        "status",
        "holds_gil",
        "gil_requested",
        "current_exception",
        "exc_state",
    ],
);
const ERR_STACKITEM: Section = ("err_stackitem", &["exc_value"]);
const FRAME_313: Section = (
    "interpreter_frame",
    &[
        "size",
        "previous",
        "executable",
        "instr_ptr",
        "localsplus",
        "owner",
    ],
);
const FRAME_314: Section = (
    "interpreter_frame",
    &[
        "size",
        "previous",
        "executable",
        "instr_ptr",
        "localsplus",
        "owner",
        "stackpointer",
        "tlbc_index",
    ],
);
const CODE_313: Section = (
    "code_object",
    &[
        "size",
        "filename",
        "name",
        "qualname",
        "linetable",
        "firstlineno",
        "argcount",
        "localsplusnames",
        "localspluskinds",
        "co_code_adaptive",
    ],
);
const CODE_314: Section = (
    "code_object",
    &[
        "size",
        "filename",
        "name",
        "qualname",
        "linetable",
        "firstlineno",
        "argcount",
        "localsplusnames",
        "localspluskinds",
        "co_code_adaptive",
        "co_tlbc",
    ],
);
const PYOBJECT: Section = ("pyobject", &["size", "ob_type"]);
const TYPE_313: Section = ("type_object", &["size", "tp_name", "tp_repr", "tp_flags"]);
const TYPE_315: Section = (
    "type_object",
    &[
        "size",
        "tp_name",
        "tp_repr",
        "tp_flags",
        "tp_basicsize",
        "tp_dictoffset",
    ],
);
const HEAP_TYPE: Section = ("heap_type_object", &["size", "ht_cached_keys"]);
const TUPLE: Section = ("tuple_object", &["size", "ob_item", "ob_size"]);
const LIST: Section = ("list_object", &["size", "ob_item", "ob_size"]);
const SET: Section = ("set_object", &["size", "used", "table", "mask"]);
const DICT: Section = ("dict_object", &["size", "ma_keys", "ma_values"]);
const FLOAT: Section = ("float_object", &["size", "ob_fval"]);
const LONG: Section = ("long_object", &["size", "lv_tag", "ob_digit"]);
const BYTES: Section = ("bytes_object", &["size", "ob_size", "ob_sval"]);
const UNICODE_313: Section = (
    "unicode_object",
    &["size", "state", "length", "asciiobject_size"],
);
const UNICODE_315: Section = (
    "unicode_object",
    &[
        "size",
        "state",
        "length",
        "asciiobject_size",
        "compactunicodeobject_size",
    ],
);
const GC_313: Section = ("gc", &["size", "collecting"]);
const GC_315: Section = (
    "gc",
    &[
        "size",
        "collecting",
        "frame",
        "generation_stats_size",
        "generation_stats",
    ],
);
const GEN: Section = (
    "gen_object",
    &["size", "gi_name", "gi_iframe", "gi_frame_state"],
);
const LLIST: Section = ("llist_node", &["next", "prev"]);
const DEBUGGER: Section = (
    "debugger_support",
    &[
        "eval_breaker",
        "remote_debugger_support",
        "remote_debugging_enabled",
        "debugger_pending_call",
        "debugger_script_path",
        "debugger_script_path_size",
    ],
);

/// 3.13 (pycore_runtime.h).
const V313: Spec = &[
    RUNTIME,
    INTERP_313,
    TSTATE_313,
    FRAME_313,
    CODE_313,
    PYOBJECT,
    TYPE_313,
    TUPLE,
    LIST,
    DICT,
    FLOAT,
    LONG,
    BYTES,
    UNICODE_313,
    GC_313,
];
/// 3.14 (pycore_debug_offsets.h).
pub(crate) const V314: Spec = &[
    RUNTIME,
    INTERP_314,
    TSTATE_313,
    FRAME_314,
    CODE_314,
    PYOBJECT,
    TYPE_313,
    TUPLE,
    LIST,
    SET,
    DICT,
    FLOAT,
    LONG,
    BYTES,
    UNICODE_313,
    GC_313,
    GEN,
    LLIST,
    DEBUGGER,
];
/// 3.15 (pycore_debug_offsets.h).
const V315: Spec = &[
    RUNTIME,
    INTERP_314,
    TSTATE_315,
    ERR_STACKITEM,
    FRAME_314,
    CODE_314,
    PYOBJECT,
    TYPE_315,
    HEAP_TYPE,
    TUPLE,
    LIST,
    SET,
    DICT,
    FLOAT,
    LONG,
    BYTES,
    UNICODE_315,
    GC_315,
    GEN,
    LLIST,
    DEBUGGER,
];

/// The offsets a target published, by `section.field`.
#[derive(Debug, Clone)]
pub struct DebugOffsets {
    /// `PY_VERSION_HEX`.
    pub version: u64,
    pub free_threaded: bool,
    /// Read with a newer interpreter's field order than any this file knows.
    pub newer_than_known: bool,
    values: Vec<(&'static str, &'static str, u64)>,
}

impl DebugOffsets {
    pub fn major(&self) -> u64 {
        (self.version >> 24) & 0xff
    }
    pub fn minor(&self) -> u64 {
        (self.version >> 16) & 0xff
    }
    pub fn micro(&self) -> u64 {
        (self.version >> 8) & 0xff
    }

    /// The offset `section.field`, if this version publishes it.
    pub fn get(&self, section: &str, field: &str) -> Option<usize> {
        self.values
            .iter()
            .find(|(s, f, _)| *s == section && *f == field)
            .map(|(_, _, v)| *v as usize)
    }

    /// Replace a value (for unit tests that need a real size).
    #[cfg(test)]
    pub(crate) fn set(&mut self, section: &str, field: &str, value: u64) {
        if let Some(v) = self
            .values
            .iter_mut()
            .find(|(s, f, _)| *s == section && *f == field)
        {
            v.2 = value;
        }
    }

    /// Like `get`, for a field every supported version publishes.
    pub fn need(&self, section: &str, field: &str) -> Result<usize> {
        self.get(section, field).ok_or_else(|| {
            Error::Layout(format!("the target's debug offsets lack {section}.{field}"))
        })
    }
}

/// Whether `_PyRuntime` at `runtime` starts with the debug offsets' cookie.
pub fn present(mem: &dyn ReadMemory, runtime: usize) -> bool {
    let mut cookie = [0u8; 8];
    mem.read_into(runtime, &mut cookie).is_ok() && &cookie == COOKIE
}

/// Read the debug offsets at the start of `_PyRuntime`.
pub fn read(mem: &dyn ReadMemory, runtime: usize) -> Result<DebugOffsets> {
    let mut head = [0u8; HEADER];
    mem.read_into(runtime, &mut head)?;
    if &head[..8] != COOKIE {
        return Err(Error::Layout(
            "no debug offsets at `_PyRuntime` (the cookie is missing)".into(),
        ));
    }
    let version = u64::from_le_bytes(head[8..16].try_into().unwrap());
    let free_threaded = u64::from_le_bytes(head[16..24].try_into().unwrap()) != 0;
    let minor = (version >> 16) & 0xff;
    let (spec, newer_than_known) = match minor {
        13 => (V313, false),
        14 => (V314, false),
        15 => (V315, false),
        m if m > 15 => (V315, true),
        m => {
            return Err(Error::Layout(format!(
                "debug offsets of an unexpected version 3.{m}"
            )))
        }
    };
    let count: usize = spec.iter().map(|(_, f)| f.len()).sum();
    let raw = mem.bytes(runtime + HEADER, count * 8)?;
    let mut words = raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()));
    let mut values = Vec::with_capacity(count);
    for (section, fields) in spec {
        for field in *fields {
            values.push((*section, *field, words.next().unwrap_or(0)));
        }
    }
    Ok(DebugOffsets {
        version,
        free_threaded,
        newer_than_known,
        values,
    })
}

/// A fake `_PyRuntime` at 0x10000 whose debug offsets hold, for each field, 1000 + its
/// position (for unit tests).
#[cfg(test)]
pub(crate) fn fake_runtime(
    version: u64,
    spec: Spec,
    free_threaded: bool,
) -> crate::memory::FakeMemory {
    let count: usize = spec.iter().map(|(_, f)| f.len()).sum();
    let mut words = vec![u64::from_le_bytes(*COOKIE), version, free_threaded as u64];
    words.extend((0..count as u64).map(|i| 1000 + i));
    let mut m = crate::memory::FakeMemory::new();
    m.put_u64s(0x10000, &words);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::FakeMemory;

    /// A fake `_PyRuntime` whose debug offsets hold, for each field, its own position.
    fn fake(version: u64, spec: Spec) -> FakeMemory {
        fake_runtime(version, spec, false)
    }

    #[test]
    fn a_newer_version_is_attempted_with_a_note_and_free_threaded_is_refused() {
        use crate::cpython::{layout_for, Refusal};
        let m = fake_runtime(0x031000a0, V315, false);
        let layout = layout_for(&m, 3, 16, 0, Some(0x10000)).unwrap();
        assert!(
            layout
                .notes
                .iter()
                .any(|n| n.contains("newer than the newest tested")),
            "{:?}",
            layout.notes
        );
        let m = fake_runtime(0x030e0af0, V314, true);
        assert_eq!(
            layout_for(&m, 3, 14, 10, Some(0x10000)).unwrap_err(),
            Refusal::FreeThreaded("3.14.10".into())
        );
        let plain = layout_for(
            &fake_runtime(0x030e0af0, V314, false),
            3,
            14,
            10,
            Some(0x10000),
        );
        assert!(plain.unwrap().notes.is_empty());
    }

    #[test]
    fn section_starts_match_the_headers() {
        // Byte offsets of sections inside the struct, as the headers' offsetof gives them
        // (../shared/FACTS-cpython-314.md, "_Py_DebugOffsets").
        for (version, spec, checks) in [
            (
                0x030d12f0u64,
                V313,
                &[
                    ("thread_state", 152usize),
                    ("interpreter_frame", 224),
                    ("code_object", 272),
                    ("unicode_object", 536),
                    ("gc", 568),
                ][..],
            ),
            (
                0x030e0af0,
                V314,
                &[
                    ("thread_state", 176),
                    ("interpreter_frame", 248),
                    ("code_object", 312),
                    ("gen_object", 664),
                    ("debugger_support", 712),
                ][..],
            ),
            (
                0x030f02f0,
                V315,
                &[
                    ("thread_state", 176),
                    ("err_stackitem", 304),
                    ("interpreter_frame", 312),
                    ("heap_type_object", 528),
                    ("gen_object", 792),
                    ("debugger_support", 840),
                ][..],
            ),
        ] {
            let d = read(&fake(version, spec), 0x10000).unwrap();
            for (section, at) in checks {
                let first = spec.iter().find(|(s, _)| s == section).unwrap().1[0];
                let index = d.get(section, first).unwrap() - 1000;
                assert_eq!(HEADER + index * 8, *at, "{section} of {version:#x}");
            }
        }
    }

    #[test]
    fn reads_version_flag_and_fields() {
        let mut m = fake(0x030e0af0, V314);
        m.write(0x10000 + 16, &1u64.to_le_bytes());
        let d = read(&m, 0x10000).unwrap();
        assert_eq!((d.major(), d.minor(), d.micro()), (3, 14, 10));
        assert!(d.free_threaded);
        assert!(!d.newer_than_known);
        // interpreters_head is the third runtime field.
        assert_eq!(d.get("runtime_state", "interpreters_head"), Some(1002));
        assert_eq!(d.get("type_object", "tp_basicsize"), None);
        let newer = read(&fake(0x03100000, V315), 0x10000).unwrap();
        assert!(newer.newer_than_known);
        assert!(read(&FakeMemory::new().put(0x10000, &[0; 32]).clone(), 0x10000).is_err());
    }
}
