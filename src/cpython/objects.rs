//! Readers for the CPython objects gridlock needs: type names, str, int, tuple, dict,
//! instance attributes. Every read goes through `Memory`; nothing runs in the target.

use super::layout::{common::*, DictKeys, InstanceDict, Layout};
use crate::error::{Error, Result};
use crate::memory::{AddrMap, ReadMemory};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::rc::Rc;

/// `PyTypeObject.tp_flags` (the same offset on 3.8-3.13) and its int-subclass bit.
const TP_FLAGS: usize = 168;
const TPFLAGS_LONG_SUBCLASS: u64 = 1 << 24;
/// `Py_TPFLAGS_MANAGED_DICT` (3.11+).
const TPFLAGS_MANAGED_DICT: u64 = 1 << 4;
/// `Py_TPFLAGS_HEAPTYPE` (a class made by a `class` statement) and, on a metaclass,
/// `Py_TPFLAGS_TYPE_SUBCLASS` (its instances are types).
const TPFLAGS_HEAPTYPE: u64 = 1 << 9;
const TPFLAGS_TYPE_SUBCLASS: u64 = 1 << 31;

/// Bounds against torn or hostile reads.
const MAX_STR: usize = 4096;
const MAX_ITEMS: usize = 1 << 16;
/// Bytes of a `str` read at once: its head and up to 72 characters of an ASCII one.
const STR_READ: usize = 120;
const PAGE: usize = 4096;

/// A `member_descriptor`'s `d_member` (after `PyDescr_COMMON`), and the `PyMemberDef` fields
/// read from it: its `type` and `offset`, with the two object member types.
const MEMBER_DESCR_MEMBER: usize = 40;
const MEMBER_DEF_TYPE: usize = 8;
const MEMBER_DEF_OFFSET: usize = 16;
const MEMBER_T_OBJECT: i32 = 6;
const MEMBER_T_OBJECT_EX: i32 = 16;

/// Readers over one view of a target's memory (one snapshot). Type names and `str` values
/// are decoded once per view: the same few types and attribute names come up for every
/// thread, and within one view an address always holds the same object.
pub struct Objects<'a> {
    pub mem: &'a dyn ReadMemory,
    pub layout: &'a Layout,
    type_names: RefCell<AddrMap<Rc<str>>>,
    strs: RefCell<AddrMap<Rc<str>>>,
    /// Str-key lookups done in this view, by (keys table, split values or 0): the same
    /// globals and instance dicts are searched for the same names once per thread running
    /// the same code. A view is one snapshot, whose reads of the same bytes agree.
    found: RefCell<FxHashMap<(usize, usize), Vec<(Box<str>, Option<usize>)>>>,
    /// `sys.modules` by name, kept across snapshots by whoever adopts it.
    modules: RefCell<super::modules_index::ModulesIndex>,
}

impl<'a> Objects<'a> {
    pub fn new(mem: &'a dyn ReadMemory, layout: &'a Layout) -> Self {
        Objects {
            mem,
            layout,
            type_names: Default::default(),
            strs: Default::default(),
            found: Default::default(),
            modules: Default::default(),
        }
    }

    /// Reuse the `sys.modules` index of an earlier view of the same process.
    pub fn adopt_modules(&mut self, index: super::modules_index::ModulesIndex) {
        self.modules = RefCell::new(index);
    }

    pub fn take_modules(&mut self) -> super::modules_index::ModulesIndex {
        std::mem::take(self.modules.get_mut())
    }

    pub fn type_of(&self, obj: usize) -> Result<usize> {
        self.mem.ptr(obj + OB_TYPE)
    }

    /// `tp_name` of the object's type, e.g. `_thread.lock`, `Condition`, `builtin_function_or_method`.
    pub fn type_name(&self, obj: usize) -> Result<String> {
        Ok(self.type_name_rc(obj)?.to_string())
    }

    /// The type name shared with the view's cache (no copy).
    pub fn type_name_rc(&self, obj: usize) -> Result<Rc<str>> {
        let ty = self.type_of(obj)?;
        if let Some(name) = self.type_names.borrow().get(&ty) {
            return Ok(name.clone());
        }
        let name = self.mem.ptr(ty + TP_NAME)?;
        let raw = self.mem.bytes(name, 128)?;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        let name: Rc<str> = String::from_utf8_lossy(&raw[..end]).into();
        self.type_names.borrow_mut().insert(ty, name.clone());
        Ok(name)
    }

    /// Whether the object's type is named `name`.
    pub fn type_is(&self, obj: usize, name: &str) -> bool {
        self.type_name_rc(obj).is_ok_and(|t| &*t == name)
    }

    pub fn is_none(&self, obj: usize) -> bool {
        self.type_is(obj, "NoneType")
    }

    pub fn str(&self, obj: usize) -> Result<String> {
        Ok(self.str_rc(obj)?.to_string())
    }

    /// A `str` value shared with the view's cache (no copy).
    pub fn str_rc(&self, obj: usize) -> Result<Rc<str>> {
        if let Some(s) = self.strs.borrow().get(&obj) {
            return Ok(s.clone());
        }
        let s: Rc<str> = self.decode_str(obj)?.into();
        self.strs.borrow_mut().insert(obj, s.clone());
        Ok(s)
    }

    /// A `str` value decoded without keeping it in the view's cache: for values read once
    /// each (ten thousand trio tasks' names), where the cache would only grow.
    pub fn str_uncached(&self, obj: usize) -> Result<String> {
        if let Some(s) = self.strs.borrow().get(&obj) {
            return Ok(s.to_string());
        }
        self.decode_str(obj)
    }

    fn decode_str(&self, obj: usize) -> Result<String> {
        let offs = &self.layout.offsets;
        // The head and, for a short str, its characters in one read, within the head's page
        // (no page fetched for bytes past the str); where that read fails (the object ends a
        // mapping), each field is read alone.
        let mut buf = [0u8; STR_READ];
        let in_page = (PAGE - obj % PAGE).clamp(STR_STATE + 4, STR_READ);
        let head = &mut buf[..in_page];
        let whole = self.mem.read_into(obj, head).is_ok();
        let len = if whole {
            i64::from_le_bytes(head[STR_LENGTH..STR_LENGTH + 8].try_into().unwrap())
        } else {
            self.mem.i64(obj + STR_LENGTH)?
        };
        if !(0..=MAX_STR as i64).contains(&len) {
            return Err(Error::Layout(format!(
                "implausible str length {len} at {obj:#x}"
            )));
        }
        let len = len as usize;
        let state = if whole {
            u32::from_le_bytes(head[STR_STATE..STR_STATE + 4].try_into().unwrap())
        } else {
            self.mem.u32_at(obj + STR_STATE)?
        };
        let kind = ((state >> 2) & 7) as usize;
        let compact = state & (1 << 5) != 0;
        let ascii = state & (1 << 6) != 0;
        if !compact || !(1..=4).contains(&kind) || kind == 3 {
            return Err(Error::Layout(format!(
                "unsupported str representation at {obj:#x}"
            )));
        }
        let data = obj
            + if ascii {
                offs.str_ascii_data
            } else {
                offs.str_compact_data
            };
        let from = data - obj;
        let raw = match head.get(from..from + len * kind) {
            Some(bytes) if whole => bytes.to_vec(),
            _ => self.mem.bytes(data, len * kind)?,
        };
        Ok(match kind {
            // ASCII is UTF-8 as it is: no second copy.
            1 if ascii => String::from_utf8(raw)
                .unwrap_or_else(|e| e.as_bytes().iter().map(|b| *b as char).collect()),
            1 => raw.iter().map(|b| *b as char).collect(),
            2 => String::from_utf16_lossy(
                &raw.chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect::<Vec<_>>(),
            ),
            _ => raw
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])).unwrap_or('?')
                })
                .collect(),
        })
    }

    /// A Python int (or int subclass, bool included) that fits in 64 bits; a larger one is an
    /// error (never a wrapped value), and so is anything else: an int's fields read from
    /// another object (a list) would give a wrong number.
    pub fn int(&self, obj: usize) -> Result<i64> {
        let flags = self.mem.u64(self.type_of(obj)? + TP_FLAGS)?;
        if flags & TPFLAGS_LONG_SUBCLASS == 0 {
            return Err(Error::Layout(format!("{obj:#x} is not an int")));
        }
        let (ndigits, negative) = if self.layout.offsets.int_lv_tag {
            let tag = self.mem.u64(obj + 16)?;
            ((tag >> 3) as usize, tag & 3 == 2)
        } else {
            let size = self.mem.i64(obj + 16)?;
            (size.unsigned_abs() as usize, size < 0)
        };
        if ndigits > 3 {
            return Err(Error::Layout(format!("int too large at {obj:#x}")));
        }
        let mut value: u128 = 0;
        for i in (0..ndigits).rev() {
            value = (value << 30) | self.mem.u32_at(obj + 24 + 4 * i)? as u128;
        }
        let value = value as i128;
        i64::try_from(if negative { -value } else { value })
            .map_err(|_| Error::Layout(format!("int too large at {obj:#x}")))
    }

    pub fn tuple_items(&self, obj: usize) -> Result<Vec<usize>> {
        self.array(
            obj + self.layout.offsets.tuple_items,
            self.mem.i64(obj + VAR_SIZE)?,
        )
    }

    pub fn list_items(&self, obj: usize) -> Result<Vec<usize>> {
        let items = self.mem.ptr(obj + LIST_ITEMS)?;
        self.array(items, self.mem.i64(obj + VAR_SIZE)?)
    }

    fn array(&self, at: usize, len: i64) -> Result<Vec<usize>> {
        if !(0..=MAX_ITEMS as i64).contains(&len) {
            return Err(Error::Layout(format!("implausible length {len}")));
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let raw = self.mem.bytes(at, len as usize * 8)?;
        Ok(raw
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect())
    }

    pub fn tuple_strings(&self, obj: usize) -> Result<Vec<String>> {
        self.tuple_items(obj)?
            .into_iter()
            .map(|s| self.str(s))
            .collect()
    }

    pub fn bytes_object(&self, obj: usize) -> Result<Vec<u8>> {
        let len = self.mem.i64(obj + VAR_SIZE)?;
        if !(0..=(1 << 24)).contains(&len) {
            return Err(Error::Layout(format!("implausible bytes length {len}")));
        }
        self.mem.bytes(obj + BYTES_DATA, len as usize)
    }

    /// A short, human-readable rendering of a constant (for naming `forks[2]`, `locks['a']`).
    pub fn short_repr(&self, obj: usize) -> String {
        match self.type_name(obj).as_deref() {
            Ok("int") => self
                .int(obj)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| "…".into()),
            Ok("str") => self
                .str(obj)
                .map(|s| format!("{s:?}").replace('"', "'"))
                .unwrap_or_else(|_| "…".into()),
            Ok("NoneType") => "None".into(),
            _ => "…".into(),
        }
    }

    /// All (key, value) pairs of a dict whose keys are str (others are skipped).
    pub fn dict_items(&self, dict: usize) -> Result<Vec<(String, usize)>> {
        let (keys, values) = self.dict_parts(dict)?;
        self.keys_items(keys, values)
    }

    /// A dict's keys object and, for a split table, its values array. (Up to 3.10 an empty
    /// dict also has a non-NULL `ma_values`, pointing at a shared empty array.)
    fn dict_parts(&self, dict: usize) -> Result<(usize, Option<usize>)> {
        let keys = self.mem.ptr(dict + 32)?;
        let values = self.mem.ptr(dict + 40)?;
        let values = if values == 0 {
            None
        } else {
            Some(values + self.layout.offsets.dict_values_header)
        };
        Ok((keys, values))
    }

    /// Walk a dict-keys object; `values` is the split-table values array, if any.
    fn keys_items(&self, keys: usize, values: Option<usize>) -> Result<Vec<(String, usize)>> {
        Ok(self
            .entries_with(keys, values)?
            .into_iter()
            .filter_map(|(k, v)| Some((self.str(k).ok()?, v)))
            .collect())
    }

    /// The members of a `set` (mask +32, table +40 of {key, hash}; hash -1 marks a dummy).
    pub fn set_items(&self, set: usize) -> Result<Vec<usize>> {
        let mask = self.mem.i64(set + 32)?;
        if !(0..(1 << 22)).contains(&mask) {
            return Err(Error::Layout(format!("implausible set mask {mask}")));
        }
        let table = self.mem.ptr(set + 40)?;
        let raw = self.mem.bytes(table, (mask as usize + 1) * 16)?;
        Ok(raw
            .chunks_exact(16)
            .filter_map(|e| {
                let key = u64::from_le_bytes(e[..8].try_into().unwrap()) as usize;
                let hash = i64::from_le_bytes(e[8..].try_into().unwrap());
                (key != 0 && hash != -1).then_some(key)
            })
            .collect())
    }

    /// (key, value) object pairs of a dict-keys object; `values` is a split table's values.
    fn entries_with(&self, keys: usize, values: Option<usize>) -> Result<Vec<(usize, usize)>> {
        Ok(self
            .entries_indexed(keys, values)?
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect())
    }

    /// A dict's keys table and its used entries (`dk_nentries`), if its values are in the
    /// table (a combined dict, as `sys.modules`); `None` for a split one.
    pub fn combined_table(&self, dict: usize) -> Result<Option<(usize, i64)>> {
        let (keys, values) = self.dict_parts(dict)?;
        if values.is_some() {
            return Ok(None);
        }
        let (_, nentries, _, _) = self.table_shape(keys)?;
        Ok(Some((keys, nentries)))
    }

    /// The key and value of entry `i` of a combined keys table (either 0 where deleted);
    /// `None` past its used entries.
    pub fn entry_at(&self, keys: usize, i: usize) -> Result<Option<(usize, usize)>> {
        let (entries, nentries, entry_size, key_off) = self.table_shape(keys)?;
        if i as i64 >= nentries {
            return Ok(None);
        }
        let at = entries + i * entry_size + key_off;
        Ok(Some((self.mem.ptr(at)?, self.mem.ptr(at + 8)?)))
    }

    /// Where a keys table's entries start, how many are used, an entry's size and its key's
    /// offset in it.
    fn table_shape(&self, keys: usize) -> Result<(usize, i64, usize, usize)> {
        let shape = if self.layout.offsets.dict_keys == DictKeys::Sized {
            let size = self.mem.i64(keys + 8)?;
            let nentries = self.mem.i64(keys + 32)?;
            if !(0..=MAX_ITEMS as i64).contains(&size) {
                return Err(Error::Layout("implausible dict size".into()));
            }
            let index_bytes = match size {
                s if s <= 0xff => 1,
                s if s <= 0xffff => 2,
                s if s <= 0xffff_ffff => 4,
                _ => 8,
            };
            (
                keys + 40 + size as usize * index_bytes,
                nentries,
                24usize,
                8usize,
            )
        } else {
            let log2_index_bytes = self.mem.u8(keys + 9)?;
            let kind = self.mem.u8(keys + 10)?;
            let nentries = self.mem.i64(keys + 24)?;
            if log2_index_bytes > 24 {
                return Err(Error::Layout("implausible dict index size".into()));
            }
            let (entry_size, key_off) = if kind == 0 { (24, 8) } else { (16, 0) };
            (
                keys + 32 + (1usize << log2_index_bytes),
                nentries,
                entry_size,
                key_off,
            )
        };
        if !(0..=MAX_ITEMS as i64).contains(&shape.1) {
            return Err(Error::Layout("implausible dict entry count".into()));
        }
        Ok(shape)
    }

    /// Every used entry of a keys table as (index, key, value); `values` is a split table's
    /// values array, if any.
    pub fn entries_indexed(
        &self,
        keys: usize,
        values: Option<usize>,
    ) -> Result<Vec<(usize, usize, usize)>> {
        let (entries, nentries, entry_size, key_off) = self.table_shape(keys)?;
        let raw = self.mem.bytes(entries, nentries as usize * entry_size)?;
        let mut out = Vec::new();
        for (i, entry) in raw.chunks_exact(entry_size).enumerate() {
            let key = entry_word(entry, key_off);
            if key == 0 {
                continue;
            }
            let value = self.entry_value(values, i, entry, key_off)?;
            if value != 0 {
                out.push((i, key, value));
            }
        }
        Ok(out)
    }

    /// Entry `index`'s value: from a split table's `values` array when there is one, else the
    /// word after the entry's key.
    fn entry_value(
        &self,
        values: Option<usize>,
        index: usize,
        entry: &[u8],
        key_off: usize,
    ) -> Result<usize> {
        match values {
            Some(v) => self.mem.ptr(v + 8 * index),
            None => Ok(entry_word(entry, key_off + 8)),
        }
    }

    /// All (key, value) object pairs of a dict, whatever the key type.
    pub fn dict_entries(&self, dict: usize) -> Result<Vec<(usize, usize)>> {
        let (keys, values) = self.dict_parts(dict)?;
        self.entries_with(keys, values)
    }

    pub fn dict_get(&self, dict: usize, key: &str) -> Result<Option<usize>> {
        let (keys, values) = self.dict_parts(dict)?;
        self.find_key(keys, values, key)
    }

    /// The value under the str key `key` in a dict-keys object, comparing keys without
    /// copying them.
    fn find_key(&self, keys: usize, values: Option<usize>, key: &str) -> Result<Option<usize>> {
        let table = (keys, values.unwrap_or(0));
        if let Some(found) = self.found.borrow().get(&table).and_then(|names| {
            names
                .iter()
                .find_map(|(name, found)| (**name == *key).then_some(*found))
        }) {
            return Ok(found);
        }
        let found = self.scan_for_key(keys, values, key)?;
        self.found
            .borrow_mut()
            .entry(table)
            .or_default()
            .push((key.into(), found));
        Ok(found)
    }

    /// The first entry whose key is the str `key` and whose value is set: a value is read
    /// only for a matching key.
    fn scan_for_key(&self, keys: usize, values: Option<usize>, key: &str) -> Result<Option<usize>> {
        let (entries, nentries, entry_size, key_off) = self.table_shape(keys)?;
        let raw = self.mem.bytes(entries, nentries as usize * entry_size)?;
        let length = key.chars().count() as i64;
        for (i, entry) in raw.chunks_exact(entry_size).enumerate() {
            let k = entry_word(entry, key_off);
            // The length first: one cached read rules out most keys without decoding them.
            if k == 0
                || self.mem.i64(k + STR_LENGTH).ok() != Some(length)
                || !self.str_rc(k).is_ok_and(|s| &*s == key)
            {
                continue;
            }
            let value = self.entry_value(values, i, entry, key_off)?;
            if value != 0 {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// All instance attributes of a Python object (empty for objects without a `__dict__`).
    pub fn instance_attrs(&self, obj: usize) -> Result<Vec<(String, usize)>> {
        match self.instance_dict_parts(obj)? {
            Some((keys, values)) => self.keys_items(keys, values),
            None => Ok(Vec::new()),
        }
    }

    /// An object's attributes as (key object, value) pairs, keys not decoded: the name
    /// search reads many objects and decodes a key only where it names a lock. Empty for an
    /// object without attributes; instance dicts, 3.11+ managed dicts and inline values alike.
    pub fn instance_entries(&self, obj: usize) -> Result<Vec<(usize, usize)>> {
        match self.instance_dict_parts(obj)? {
            Some((keys, values)) => self.entries_with(keys, values),
            None => Ok(Vec::new()),
        }
    }

    /// Every module of `sys.modules` (through the interpreter state) as (name key object,
    /// module `__dict__`); entries that are not modules with a dict are left out.
    pub fn modules(&self, interp: usize) -> Result<Vec<(usize, usize)>> {
        let modules = self.mem.ptr(interp + self.layout.offsets.interp_modules)?;
        Ok(self
            .dict_entries(modules)?
            .into_iter()
            .filter(|(_, m)| self.type_is(*m, "module"))
            .filter_map(|(k, m)| {
                let dict = self.mem.ptr(m + MODULE_DICT).ok()?;
                (dict != 0 && self.type_is(dict, "dict")).then_some((k, dict))
            })
            .collect())
    }

    /// The namespace (`tp_dict`) of a class defined in Python (a heap type); `None` for
    /// anything else, built-in types included (their `tp_dict` may be NULL on 3.12+).
    pub fn class_dict(&self, obj: usize) -> Option<usize> {
        let meta_flags = self.mem.u64(self.type_of(obj).ok()? + TP_FLAGS).ok()?;
        if meta_flags & TPFLAGS_TYPE_SUBCLASS == 0 {
            return None;
        }
        let flags = self.mem.u64(obj + TP_FLAGS).ok()?;
        if flags & TPFLAGS_HEAPTYPE == 0 {
            return None;
        }
        let dict = self.mem.ptr(obj + TP_DICT).ok()?;
        (dict != 0 && self.type_is(dict, "dict")).then_some(dict)
    }

    /// `tp_name` of a type object (for a class found as a global: `InventoryService`).
    pub fn type_object_name(&self, ty: usize) -> Option<String> {
        let name = self.mem.ptr(ty + TP_NAME).ok()?;
        let raw = self.mem.bytes(name, 128).ok()?;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        Some(String::from_utf8_lossy(&raw[..end]).into_owned())
    }

    /// `sys.modules[name].__dict__`, through the interpreter state (`None` if not imported).
    pub fn sys_module_dict(&self, interp: usize, name: &str) -> Result<Option<usize>> {
        let modules = self.mem.ptr(interp + self.layout.offsets.interp_modules)?;
        let Some(module) = self.modules.borrow_mut().get(self, modules, name)? else {
            return Ok(None);
        };
        // A subclass of `module` (Celery's `LazyModule`) keeps the module's layout.
        let is_module = self.type_is(module, "module")
            || self
                .type_mro_names(module)
                .is_ok_and(|m| m.iter().any(|n| n == "module"));
        if !is_module {
            return Ok(None);
        }
        let dict = self.mem.ptr(module + MODULE_DICT)?;
        Ok(self.type_is(dict, "dict").then_some(dict))
    }

    /// The `tp_name`s of the object's type's MRO, the type itself first.
    pub fn type_mro_names(&self, obj: usize) -> Result<Vec<String>> {
        let mro = self.mem.ptr(self.type_of(obj)? + TP_MRO)?;
        if !self.type_is(mro, "tuple") {
            return Err(Error::Layout(format!("tp_mro at {mro:#x} is not a tuple")));
        }
        let items = self.tuple_items(mro)?;
        if items.len() > 64 {
            return Err(Error::Layout(format!(
                "implausible MRO length {}",
                items.len()
            )));
        }
        items
            .into_iter()
            .map(|ty| {
                let name = self.mem.ptr(ty + TP_NAME)?;
                let raw = self.mem.bytes(name, 128)?;
                let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
                Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
            })
            .collect()
    }

    /// `type(obj).__module__` of a class defined in Python (its namespace holds it as a str).
    pub fn type_module(&self, obj: usize) -> Option<String> {
        let dict = self.mem.ptr(self.type_of(obj).ok()? + TP_DICT).ok()?;
        if dict == 0 || !self.type_is(dict, "dict") {
            return None;
        }
        let module = self.dict_get(dict, "__module__").ok()??;
        self.type_is(module, "str").then(|| self.str(module).ok())?
    }

    /// Where instances of type `ty` keep the `__slots__` member `name`: the offset its
    /// `member_descriptor` (in the namespace of a class of the MRO) records for an object
    /// member. `None` when no class of the MRO declares it as such.
    pub fn slot_offset(&self, ty: usize, name: &str) -> Option<usize> {
        let mro = self.mem.ptr(ty + TP_MRO).ok()?;
        if !self.type_is(mro, "tuple") {
            return None;
        }
        let classes = self.tuple_items(mro).ok()?;
        for class in classes.into_iter().take(64) {
            let Some(dict) = self.class_dict(class) else {
                continue;
            };
            let Some(descr) = self.dict_get(dict, name).ok().flatten() else {
                continue;
            };
            if !self.type_is(descr, "member_descriptor") {
                return None;
            }
            let member = self.mem.ptr(descr + MEMBER_DESCR_MEMBER).ok()?;
            let kind = self.mem.i32(member + MEMBER_DEF_TYPE).ok()?;
            let offset = self.mem.i64(member + MEMBER_DEF_OFFSET).ok()?;
            // Only object members (T_OBJECT, T_OBJECT_EX), inside a plausible instance.
            let object = matches!(kind, MEMBER_T_OBJECT | MEMBER_T_OBJECT_EX);
            return (object && (16..1 << 16).contains(&offset)).then_some(offset as usize);
        }
        None
    }

    /// A `__slots__` member of `obj` (`None` when unset or not a slot of its class).
    pub fn slot(&self, obj: usize, name: &str) -> Option<usize> {
        let off = self.slot_offset(self.type_of(obj).ok()?, name)?;
        self.mem.ptr(obj + off).ok().filter(|v| *v != 0)
    }

    pub fn attr(&self, obj: usize, name: &str) -> Result<Option<usize>> {
        match self.instance_dict_parts(obj)? {
            Some((keys, values)) => self.find_key(keys, values, name),
            None => Ok(None),
        }
    }

    /// Where an object's attributes are: a keys object and, for split or inline values, the
    /// values array. `None` for an object without attributes.
    fn instance_dict_parts(&self, obj: usize) -> Result<Option<(usize, Option<usize>)>> {
        let ty = self.type_of(obj)?;
        let mut scheme = self.layout.offsets.instance_dict;
        // 3.11+: subclasses of C types that have their own dict slot (asyncio's
        // `_GatheringFuture` of `_asyncio.Future`) keep it at `tp_dictoffset`, not managed.
        if !matches!(scheme, InstanceDict::DictOffset)
            && self.mem.u64(ty + TP_FLAGS)? & TPFLAGS_MANAGED_DICT == 0
        {
            scheme = InstanceDict::DictOffset;
        }
        let dict =
            |d: usize| -> Result<Option<(usize, Option<usize>)>> { Ok(Some(self.dict_parts(d)?)) };
        // Inline or split values, described by the type's cached keys.
        let cached = |values: usize| -> Result<_> {
            if values == 0 {
                return Ok(None);
            }
            let keys = self.mem.ptr(ty + self.layout.offsets.ht_cached_keys)?;
            Ok((keys != 0).then_some((keys, Some(values))))
        };
        match scheme {
            InstanceDict::DictOffset => {
                let off = self.mem.i64(ty + TP_DICTOFFSET)?;
                if off <= 0 {
                    return Ok(None);
                }
                match self.mem.ptr(obj + off as usize)? {
                    0 => Ok(None),
                    d => dict(d),
                }
            }
            InstanceDict::Managed311 => match self.mem.ptr(obj - 24)? {
                0 => cached(self.mem.ptr(obj - 32)?),
                d => dict(d),
            },
            InstanceDict::Managed312 => {
                let tagged = self.mem.ptr(obj - 24)?;
                if tagged & 1 == 1 {
                    cached(tagged + 1)
                } else if tagged != 0 {
                    dict(tagged)
                } else {
                    Ok(None)
                }
            }
            InstanceDict::Managed313 => match self.mem.ptr(obj - 24)? {
                0 => {
                    let basic = self.mem.i64(ty + TP_BASICSIZE)? as usize;
                    cached(obj + basic + 8)
                }
                d => dict(d),
            },
        }
    }
}

/// The little-endian word at `at` in a dict entry read whole (`at` is a key or value slot of
/// the table's own entry layout, so it lies inside the entry).
fn entry_word(entry: &[u8], at: usize) -> usize {
    let mut word = [0u8; 8];
    word.copy_from_slice(&entry[at..at + 8]);
    u64::from_le_bytes(word) as usize
}

impl super::modules_index::DictReader for Objects<'_> {
    fn combined_table(&self, dict: usize) -> Result<Option<(usize, i64)>> {
        Objects::combined_table(self, dict)
    }
    fn table_entries(&self, keys: usize) -> Result<Vec<(usize, usize, usize)>> {
        self.entries_indexed(keys, None)
    }
    fn entry_at(&self, keys: usize, i: usize) -> Result<Option<(usize, usize)>> {
        Objects::entry_at(self, keys, i)
    }
    fn key_text(&self, key: usize) -> Option<String> {
        self.str_rc(key).ok().map(|s| s.to_string())
    }
    fn scan(&self, dict: usize, name: &str) -> Result<Option<usize>> {
        self.dict_get(dict, name)
    }
}
