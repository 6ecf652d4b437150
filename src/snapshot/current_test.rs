//! Which test is the target running? pytest's `PYTEST_CURRENT_TEST`, read from the target's own
//! `os.environ` in its memory (`/proc/PID/environ` only holds the environment it started with),
//! else the innermost unittest `TestCase` method on a thread's stack. It may not run code in
//! the target; the strings it returns come from the target and are bounded and cleaned, never
//! trusted. Unreadable memory means no test name, never an error.

use std::time::{Duration, Instant};

use crate::cpython::objects::Objects;
use crate::cpython::threads::{RawThread, Walker};
use crate::model::{CurrentTest, TestSource};

/// The variable pytest sets for each phase of each test (`path::name (call)`).
const PYTEST_VAR: &[u8] = b"PYTEST_CURRENT_TEST";
/// How often to look for `os.environ` again in a process that has not imported `os` (yet).
const RETRY: Duration = Duration::from_millis(100);
/// Bounds against torn reads and hostile values.
const MAX_ENV: usize = 1 << 12;
const MAX_LEN: usize = 1024;

/// Where `os.environ._data` is, cached per target (the dict lives as long as the process).
#[derive(Debug, Default)]
pub struct TestCache {
    env_data: Option<usize>,
    last_lookup: Option<Instant>,
}

impl TestCache {
    fn env_data(&mut self, objs: &Objects, interp: usize) -> Option<usize> {
        if let Some(d) = self.env_data {
            if objs.type_is(d, "dict") {
                return Some(d);
            }
            self.env_data = None;
        }
        if self.last_lookup.is_some_and(|t| t.elapsed() < RETRY) {
            return None;
        }
        self.last_lookup = Some(Instant::now());
        self.env_data = find_env_data(objs, interp);
        self.env_data
    }
}

/// `sys.modules['os'].environ._data`: on POSIX a dict of bytes keys and values, kept in step
/// with `putenv` by `os._Environ.__setitem__`.
fn find_env_data(objs: &Objects, interp: usize) -> Option<usize> {
    let os = objs.sys_module_dict(interp, "os").ok()??;
    let environ = objs.dict_get(os, "environ").ok()??;
    let data = objs.attr(environ, "_data").ok()??;
    objs.type_is(data, "dict").then_some(data)
}

/// The test the target is running now, if it says.
pub fn read(
    walker: &Walker,
    interp: usize,
    raw: &[RawThread],
    cache: &mut TestCache,
) -> Option<CurrentTest> {
    let objs = &walker.objs;
    if let Some(value) = cache
        .env_data(objs, interp)
        .and_then(|d| pytest_value(objs, d))
    {
        return Some(from_pytest(&value));
    }
    unittest_on_stack(walker, raw)
}

/// The value of `PYTEST_CURRENT_TEST` in `os.environ._data`, if set.
fn pytest_value(objs: &Objects, data: usize) -> Option<String> {
    let entries = objs.dict_entries(data).ok()?;
    for (key, value) in entries.into_iter().take(MAX_ENV) {
        // The length first: one read rules out almost every key.
        if objs
            .mem
            .i64(key + crate::cpython::layout::common::VAR_SIZE)
            .ok()
            != Some(PYTEST_VAR.len() as i64)
            || !objs.type_is(key, "bytes")
        {
            continue;
        }
        if objs.bytes_object(key).ok()?.as_slice() != PYTEST_VAR || !objs.type_is(value, "bytes") {
            continue;
        }
        let bytes = objs.bytes_object(value).ok()?;
        return Some(clean(&String::from_utf8_lossy(
            &bytes[..bytes.len().min(MAX_LEN)],
        )));
    }
    None
}

/// `tests/test_x.py::TestY::test_z[1] (call)`: pytest's node id and phase, and the JUnit
/// names pytest's own `--junitxml` gives it (`tests.test_x.TestY`, `test_z[1]`).
pub fn from_pytest(value: &str) -> CurrentTest {
    let (node, phase) = match value.rsplit_once(" (") {
        Some((node, rest)) if rest.ends_with(')') => {
            (node, Some(rest.trim_end_matches(')').to_string()))
        }
        _ => (value, None),
    };
    let mut parts: Vec<&str> = node.split("::").collect();
    let function = if parts.len() > 1 {
        parts.pop().unwrap_or_default().to_string()
    } else {
        node.to_string()
    };
    let path = parts.first().copied().unwrap_or_default();
    let mut class = vec![path.trim_end_matches(".py").replace('/', ".")];
    class.extend(parts.iter().skip(1).map(|s| s.to_string()));
    CurrentTest {
        name: node.to_string(),
        classname: class.join("."),
        function,
        phase,
        source: TestSource::OsEnviron,
    }
}

/// The innermost frame of any thread that is a test method (`test*`) of a `unittest.TestCase`
/// (its `self`'s type has `TestCase` in its MRO): `module.Class.test_method`.
fn unittest_on_stack(walker: &Walker, raw: &[RawThread]) -> Option<CurrentTest> {
    let objs = &walker.objs;
    for frame in raw.iter().flat_map(|t| t.frames.iter()) {
        let method = frame.code.name.rsplit('.').next().unwrap_or_default();
        if !method.starts_with("test") {
            continue;
        }
        let Some(this) = walker.local(frame, "self") else {
            continue;
        };
        let Ok(mro) = objs.type_mro_names(this) else {
            continue;
        };
        if !mro.iter().skip(1).any(|n| n == "TestCase") {
            continue;
        }
        let class = clean(&mro[0]);
        let module = objs
            .type_module(this)
            .map(|m| clean(&m))
            .unwrap_or_else(|| module_of_file(&frame.code.filename));
        let method = clean(method);
        let classname = format!("{module}.{class}");
        return Some(CurrentTest {
            name: format!("{classname}.{method}"),
            classname,
            function: method,
            phase: None,
            source: TestSource::Stack,
        });
    }
    None
}

/// `test_x` for `/path/to/test_x.py`: the module a test file is imported as, when the class does
/// not say.
fn module_of_file(file: &str) -> String {
    clean(
        crate::model::short_file(file)
            .trim_end_matches(".py")
            .trim_end_matches(".pyc"),
    )
}

/// A string from the target, made safe to print: control characters dropped, length bounded.
fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pytest_node_id_gives_junit_names_like_pytest_does() {
        let t = from_pytest("tests/unit/test_bank.py::TestMoves::test_cycle[2-x] (call)");
        assert_eq!(
            t.name,
            "tests/unit/test_bank.py::TestMoves::test_cycle[2-x]"
        );
        assert_eq!(t.classname, "tests.unit.test_bank.TestMoves");
        assert_eq!(t.function, "test_cycle[2-x]");
        assert_eq!(t.phase.as_deref(), Some("call"));
        let f = from_pytest("test_a.py::test_b (setup)");
        assert_eq!(
            (f.classname.as_str(), f.function.as_str()),
            ("test_a", "test_b")
        );
        assert_eq!(f.phase.as_deref(), Some("setup"));
    }

    #[test]
    fn a_value_pytest_would_not_write_is_kept_whole() {
        let t = from_pytest("garbage");
        assert_eq!(
            (t.name.as_str(), t.function.as_str()),
            ("garbage", "garbage")
        );
        assert_eq!(t.phase, None);
        assert_eq!(clean("a\u{1b}[31mb\n"), "a[31mb");
    }
}
