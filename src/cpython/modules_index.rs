//! Which modules `sys.modules` holds, by name, kept across a session's snapshots: a lookup by
//! name (`twisted.internet.defer`, `threading`) would otherwise decode every key of the dict,
//! each in a page of its own, in every snapshot, mostly to find a module the program never
//! imported. The index is trusted only while the dict's keys table is the same object with
//! the same number of entries used (an insertion appends an entry or makes a new table), for
//! at most `MAX_AGE`; a name it finds is checked against the entry it points at. It reads
//! memory only through `DictReader` (which `Objects` implements).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::Result;

/// What the index reads of a dict (`Objects` gives it).
pub trait DictReader {
    /// The keys table and its used entries, if the dict is combined (values in the table).
    fn combined_table(&self, dict: usize) -> Result<Option<(usize, i64)>>;
    /// Every used entry of a keys table as (index, key, value).
    fn table_entries(&self, keys: usize) -> Result<Vec<(usize, usize, usize)>>;
    /// Entry `i` of a keys table as (key, value); `None` past its used entries.
    fn entry_at(&self, keys: usize, i: usize) -> Result<Option<(usize, usize)>>;
    /// A str key's text.
    fn key_text(&self, key: usize) -> Option<String>;
    /// The value under `name`, by scanning the dict.
    fn scan(&self, dict: usize, name: &str) -> Result<Option<usize>>;
}

/// How long an index is trusted without being rebuilt (a table freed and another made at the
/// same address with as many entries would otherwise hide a new module this long at most).
const MAX_AGE: Duration = Duration::from_secs(1);

/// `sys.modules`' keys by name, as of one keys table.
#[derive(Default, Debug)]
pub struct ModulesIndex {
    /// Kept across snapshots (`kept`); a one-off view scans the dict instead.
    kept: bool,
    /// The keys table, its used entries, and when the index was built.
    table: Option<(usize, i64, Instant)>,
    /// Each module name's entry: its index in the table and its key object.
    names: HashMap<String, (usize, usize)>,
}

impl ModulesIndex {
    /// An index to keep across a session's snapshots.
    pub fn kept() -> ModulesIndex {
        ModulesIndex {
            kept: true,
            ..ModulesIndex::default()
        }
    }

    /// The value `sys.modules` (the dict at `modules`) maps `name` to. `None` if it holds no
    /// such key; `Err` where the dict cannot be read.
    pub fn get(
        &mut self,
        objs: &impl DictReader,
        modules: usize,
        name: &str,
    ) -> Result<Option<usize>> {
        let Some((keys, used)) = objs.combined_table(modules)?.filter(|_| self.kept) else {
            return objs.scan(modules, name);
        };
        let current = self
            .table
            .is_some_and(|(k, u, at)| k == keys && u == used && at.elapsed() < MAX_AGE);
        if !current {
            self.names.clear();
            for (i, key, _) in objs.table_entries(keys)? {
                if let Some(s) = objs.key_text(key) {
                    self.names.insert(s, (i, key));
                }
            }
            self.table = Some((keys, used, Instant::now()));
        }
        let Some(&(i, key)) = self.names.get(name) else {
            return Ok(None);
        };
        match objs.entry_at(keys, i)? {
            Some((k, value)) if k == key => Ok((value != 0).then_some(value)),
            // The entry changed under the index: ask the dict itself, and rebuild next time.
            _ => {
                self.table = None;
                objs.scan(modules, name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpython::for_version;
    use crate::cpython::objects::Objects;
    use crate::memory::FakeMemory;

    /// A 3.12 `str` (compact ASCII) at `at`.
    fn put_str(mem: &mut FakeMemory, at: usize, s: &str) {
        mem.put(at, &vec![0u8; 48 + s.len()]);
        mem.put_u64s(at + 16, &[s.len() as u64]);
        mem.write(at + 32, &[(1 << 2) | (1 << 5) | (1 << 6), 0, 0, 0]);
        mem.write(at + 40, s.as_bytes());
    }

    const DICT: usize = 0x1000;
    const KEYS: usize = 0x2000;
    /// Entries of a 3.12 unicode keys table with 8 index bytes: {key, value} from +40.
    const ENTRIES: usize = KEYS + 40;

    fn set_entry(mem: &mut FakeMemory, i: usize, key: usize, value: usize) {
        mem.put_u64s(ENTRIES + 16 * i, &[key as u64, value as u64]);
    }

    #[test]
    fn the_index_follows_insertions_deletions_and_replaced_values() {
        let mut mem = FakeMemory::new();
        mem.put(KEYS, &[0u8; 40 + 16 * 8]);
        mem.write(KEYS + 9, &[3, 1]); // 8 index bytes, unicode keys
        mem.put_u64s(KEYS + 24, &[2]); // entries used
        mem.put(DICT, &[0u8; 48]);
        mem.put_u64s(DICT + 32, &[KEYS as u64, 0]);
        for (at, name) in [(0x3000, "sys"), (0x3100, "_thread"), (0x3200, "twisted")] {
            put_str(&mut mem, at, name);
        }
        set_entry(&mut mem, 0, 0x3000, 0xa000);
        set_entry(&mut mem, 1, 0x3100, 0xb000);
        let layout = for_version(3, 12, 1).unwrap();
        let mut index = ModulesIndex::kept();
        let get = |mem: &FakeMemory, index: &mut ModulesIndex, name: &str| {
            index.get(&Objects::new(mem, &layout), DICT, name).unwrap()
        };
        assert_eq!(get(&mem, &mut index, "_thread"), Some(0xb000));
        assert_eq!(get(&mem, &mut index, "twisted"), None);
        // Imported since: a new entry appended.
        set_entry(&mut mem, 2, 0x3200, 0xc000);
        mem.put_u64s(KEYS + 24, &[3]);
        assert_eq!(get(&mem, &mut index, "twisted"), Some(0xc000));
        // Deleted in place (the count of used entries stays): the entry says so.
        set_entry(&mut mem, 1, 0, 0);
        assert_eq!(get(&mem, &mut index, "_thread"), None);
        // Replaced in place: the entry's new value.
        set_entry(&mut mem, 0, 0x3000, 0xd000);
        assert_eq!(get(&mem, &mut index, "sys"), Some(0xd000));
        // A one-off index scans the dict each time and finds the same.
        let mut once = ModulesIndex::default();
        assert_eq!(get(&mem, &mut once, "twisted"), Some(0xc000));
        assert_eq!(get(&mem, &mut once, "_thread"), None);
    }
}
