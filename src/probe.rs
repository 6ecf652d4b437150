//! Reading gridlock's opt-in in-target probe (`probes/gridlock_probe`) from outside.
//!
//! The probe keeps plain Python data in its module's globals: `_held` (who holds each
//! primitive, where and in which order) and `_edges` (every "held A, then took B" pair of the
//! run). gridlock reaches the module through `sys.modules` and parses those dicts and tuples
//! with its own object readers: nothing runs in the target. What the probe says is a claim;
//! `snapshot` checks it against the lock objects' memory before using it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cpython::objects::Objects;
use crate::error::{Error, Result};

/// The probe module's name in `sys.modules`.
pub const MODULE: &str = "gridlock_probe";
/// `tp_name` prefix of the probe's Lock/RLock wrappers (their `_lock` is the real lock).
pub const WRAPPER_PREFIX: &str = "_GridlockProbe";
/// How a process note saying the probe is missing begins.
pub const MISSING: &str = "the probe asked for with --probe did not load here";
/// How often to look for the module again in a process that has not loaded it (yet).
const RETRY: Duration = Duration::from_millis(100);
/// Bounds against torn reads: far above what a sane program holds at once.
const MAX_HELD: usize = 1 << 14;

/// One acquisition the probe saw and has not seen released.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeHold {
    /// `id()` of the primitive: the `_thread.lock`/`_thread.RLock` inside a wrapper, the
    /// `Semaphore`, or the `asyncio.Lock`/`Semaphore`.
    pub key: usize,
    /// Thread ident (`threading.get_ident()`) of the owner, or of the thread running its task.
    pub ident: u64,
    pub site: String,
    /// Global acquisition sequence number: a thread's holds in acquisition order.
    pub seq: u64,
    /// `id()` of the owning asyncio task, if any.
    pub task: Option<usize>,
}

/// "Thread `ident` held `first` (taken at `first_site`) when it took `then`."
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeEdge {
    pub first: usize,
    pub then: usize,
    /// The probe's serial numbers of the two primitives: addresses can be reused by later
    /// locks, serials cannot.
    pub first_serial: u64,
    pub then_serial: u64,
    pub ident: u64,
    pub first_site: String,
    pub then_site: String,
}

#[derive(Debug, Clone, Default)]
pub struct ProbeState {
    pub holds: Vec<ProbeHold>,
    pub edges: Vec<ProbeEdge>,
}

/// Where the probe module's globals are, cached per target.
#[derive(Debug, Default)]
pub struct ProbeCache {
    md_dict: Option<usize>,
    last_lookup: Option<Instant>,
}

impl ProbeCache {
    /// The probe module's `__dict__`, if the target loaded it.
    pub fn module_dict(&mut self, objs: &Objects, interp: usize) -> Option<usize> {
        if let Some(d) = self.md_dict {
            if objs.type_name(d).ok().as_deref() == Some("dict") {
                return Some(d);
            }
            self.md_dict = None;
        }
        if self.last_lookup.is_some_and(|t| t.elapsed() < RETRY) {
            return None;
        }
        self.last_lookup = Some(Instant::now());
        self.md_dict = find_module_dict(objs, interp).ok().flatten();
        self.md_dict
    }
}

/// `sys.modules['gridlock_probe'].__dict__`, through the interpreter state.
pub fn find_module_dict(objs: &Objects, interp: usize) -> Result<Option<usize>> {
    objs.sys_module_dict(interp, MODULE)
}

/// Parse the probe's tables. Malformed entries (a read torn by a concurrent update) are
/// skipped, not guessed at.
pub fn read(objs: &Objects, md_dict: usize) -> Result<ProbeState> {
    let mut state = ProbeState::default();
    if let Some(held) = objs.dict_get(md_dict, "_held")? {
        for (_, value) in objs.dict_entries(held)?.into_iter().take(MAX_HELD) {
            match objs.type_name(value)?.as_str() {
                "tuple" => state.holds.extend(hold(objs, value)),
                "list" => {
                    for e in objs.list_items(value)? {
                        state.holds.extend(hold(objs, e));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(edges) = objs.dict_get(md_dict, "_edges")? {
        for (key, value) in objs.dict_entries(edges)? {
            if let Some(e) = edge(objs, key, value) {
                state.edges.push(e);
            }
        }
    }
    Ok(state)
}

fn int(objs: &Objects, obj: usize) -> Option<i64> {
    objs.int(obj).ok()
}

fn site(objs: &Objects, func: usize, file: usize, line: usize) -> Option<String> {
    let file = objs.str(file).ok()?;
    let short = crate::model::short_file(&file);
    Some(format!(
        "{} {}:{}",
        objs.str(func).ok()?,
        short,
        int(objs, line)?
    ))
}

/// `(owner_ident, function, file, line, seq, serial, key[, id(task)])`
fn hold(objs: &Objects, entry: usize) -> Option<ProbeHold> {
    let items = objs.tuple_items(entry).ok()?;
    if items.len() < 7 || objs.type_name(entry).ok()? != "tuple" {
        return None;
    }
    let task = items
        .get(7)
        .and_then(|t| int(objs, *t))
        .filter(|t| *t != 0)
        .map(|t| t as usize);
    Some(ProbeHold {
        key: int(objs, items[6])? as usize,
        ident: int(objs, items[0])? as u64,
        site: site(objs, items[1], items[2], items[3])?,
        seq: int(objs, items[4])? as u64,
        task,
    })
}

/// key `(serial_a, serial_b)`, value `(id_a, id_b, ident, func_a, file_a, line_a, func_b, file_b, line_b)`
fn edge(objs: &Objects, key: usize, value: usize) -> Option<ProbeEdge> {
    let k = objs.tuple_items(key).ok()?;
    let v = objs.tuple_items(value).ok()?;
    if k.len() != 2 || v.len() != 9 {
        return None;
    }
    Some(ProbeEdge {
        first: int(objs, v[0])? as usize,
        then: int(objs, v[1])? as usize,
        first_serial: int(objs, k[0])? as u64,
        then_serial: int(objs, k[1])? as u64,
        ident: int(objs, v[2])? as u64,
        first_site: site(objs, v[3], v[4], v[5])?,
        then_site: site(objs, v[6], v[7], v[8])?,
    })
}

/// The real lock inside one of the probe's wrappers (the object itself otherwise).
pub fn unwrap(objs: &Objects, obj: usize) -> usize {
    match objs.type_name(obj) {
        Ok(t) if t.starts_with(WRAPPER_PREFIX) => {
            objs.attr(obj, "_lock").ok().flatten().unwrap_or(obj)
        }
        _ => obj,
    }
}

pub fn is_probe_file(file: &str) -> bool {
    file.contains("/gridlock_probe/")
}

/// The probe's sources, built into gridlock so `gridlock run --probe` works wherever the
/// binary is installed.
const SOURCES: [(&str, &str); 3] = [
    (
        "lib/gridlock_probe/__init__.py",
        include_str!("../probes/gridlock_probe/__init__.py"),
    ),
    (
        "lib/gridlock_probe/__main__.py",
        include_str!("../probes/gridlock_probe/__main__.py"),
    ),
    (
        "boot/sitecustomize.py",
        include_str!("../probes/boot/sitecustomize.py"),
    ),
];

/// Write the probe to a private folder (once per content) and return the two folders to put
/// first on `PYTHONPATH`: the boot folder (its `sitecustomize` installs the probe when
/// `GRIDLOCK_PROBE=1`) and the folder holding the `gridlock_probe` package.
pub fn materialize() -> Result<Vec<PathBuf>> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    SOURCES.hash(&mut h);
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let root = std::env::temp_dir().join(format!("gridlock-probe-{uid}-{:016x}", h.finish()));
    let ready = root.join("boot/sitecustomize.py");
    if !ready.exists() {
        // Build next to it and rename, so concurrent runs never see half-written files.
        let tmp = root.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for (path, text) in SOURCES {
            let p = tmp.join(path);
            std::fs::create_dir_all(p.parent().unwrap())?;
            std::fs::write(&p, text)?;
        }
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
            if !ready.exists() {
                return Err(Error::Layout(format!(
                    "cannot write the probe to {}",
                    root.display()
                )));
            }
        }
    }
    Ok(vec![root.join("boot"), root.join("lib")])
}

/// The `PYTHONPATH` entries that carry the probe folders `materialize` wrote into CMD: each
/// folder as this host names it, then the same folder through `/proc/<gridlock's pid>/root`.
/// That link leads to gridlock's own root from any root that has `/proc` mounted, so a
/// command that changes its root (`chroot ROOT python ...`) still finds the probe; the host
/// names come first for a process that may not follow the link (another user's).
pub fn python_path(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let via_proc = PathBuf::from(format!("/proc/{}/root", std::process::id()));
    let mut path = dirs.to_vec();
    for d in dirs {
        path.push(via_proc.join(d.strip_prefix("/").unwrap_or(d)));
    }
    path
}

/// Why the probe that `run --probe` asked for is not loaded in process `pid`, and what to do,
/// as one note for its report. `dirs` are the folders `materialize` wrote.
pub fn missing_note(pid: i32, dirs: &[PathBuf]) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let vars: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    let var = |name: &str| {
        let prefix = format!("{name}=");
        vars.iter()
            .find_map(|v| v.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let boot = dirs
        .first()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let why = if var("GRIDLOCK_PROBE").as_deref() != Some("1") {
        "its environment lacks gridlock's GRIDLOCK_PROBE=1 and PYTHONPATH (the command started \
         it with an environment of its own)"
            .to_string()
    } else if !python_path(dirs)
        .iter()
        .filter(|d| d.ends_with("boot"))
        .any(|d| {
            // As the process sees it: through its own root.
            let inside = Path::new(&format!("/proc/{pid}/root"))
                .join(d.strip_prefix("/").unwrap_or(d))
                .join("sitecustomize.py");
            inside.exists()
        })
    {
        format!(
            "the probe's folder {boot} is not visible from its root, nor through /proc/{}/root \
             (no /proc mounted there, or another PID namespace)",
            std::process::id()
        )
    } else {
        "Python did not run the probe's sitecustomize (started with -I, -S or -E, or the \
         PYTHONPATH was replaced)"
            .to_string()
    };
    format!(
        "{MISSING}: {why}; lock owners come from \
         memory alone. To load it, install the py-gridlock wheel (it carries gridlock_probe) in \
         this Python's environment and start the program with `python -m gridlock_probe`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_folders_come_as_the_host_names_them_then_through_gridlocks_root() {
        let dirs = vec![PathBuf::from("/tmp/p/boot"), PathBuf::from("/tmp/p/lib")];
        let me = std::process::id();
        assert_eq!(
            python_path(&dirs),
            vec![
                PathBuf::from("/tmp/p/boot"),
                PathBuf::from("/tmp/p/lib"),
                PathBuf::from(format!("/proc/{me}/root/tmp/p/boot")),
                PathBuf::from(format!("/proc/{me}/root/tmp/p/lib")),
            ]
        );
    }

    #[test]
    fn a_process_without_gridlocks_environment_is_told_apart() {
        // This test process never had GRIDLOCK_PROBE=1.
        let note = missing_note(std::process::id() as i32, &[PathBuf::from("/nonexistent")]);
        assert!(note.starts_with(MISSING), "{note}");
        assert!(note.contains("environment lacks"), "{note}");
        assert!(note.contains("python -m gridlock_probe"), "{note}");
    }
}
