//! Readers for the CPython objects gridlock needs: type names, str, int, tuple, dict,
//! instance attributes. Every read goes through `Memory`; nothing runs in the target.

use super::layout::{common::*, InstanceDict, VersionLayout};
use crate::error::{Error, Result};
use crate::target::memory::Memory;

/// `PyTypeObject.tp_flags` (the same offset on 3.8-3.13) and its int-subclass bit.
const TP_FLAGS: usize = 168;
const TPFLAGS_LONG_SUBCLASS: u64 = 1 << 24;

/// Bounds against torn or hostile reads.
const MAX_STR: usize = 4096;
const MAX_ITEMS: usize = 1 << 16;

pub struct Objects<'a> {
    pub mem: &'a Memory,
    pub layout: &'static dyn VersionLayout,
}

impl<'a> Objects<'a> {
    pub fn new(mem: &'a Memory, layout: &'static dyn VersionLayout) -> Self {
        Objects { mem, layout }
    }

    pub fn type_of(&self, obj: usize) -> Result<usize> {
        self.mem.ptr(obj + OB_TYPE)
    }

    /// `tp_name` of the object's type, e.g. `_thread.lock`, `Condition`, `builtin_function_or_method`.
    pub fn type_name(&self, obj: usize) -> Result<String> {
        let ty = self.type_of(obj)?;
        let name = self.mem.ptr(ty + TP_NAME)?;
        let raw = self.mem.bytes(name, 128)?;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
    }

    pub fn is_none(&self, obj: usize) -> bool {
        self.type_name(obj)
            .map(|t| t == "NoneType")
            .unwrap_or(false)
    }

    pub fn str(&self, obj: usize) -> Result<String> {
        let offs = self.layout.offsets();
        let len = self.mem.i64(obj + STR_LENGTH)?;
        if !(0..=MAX_STR as i64).contains(&len) {
            return Err(Error::Layout(format!(
                "implausible str length {len} at {obj:#x}"
            )));
        }
        let len = len as usize;
        let state = self.mem.u32_at(obj + STR_STATE)?;
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
        let raw = self.mem.bytes(data, len * kind)?;
        Ok(match kind {
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

    /// A Python int (or int subclass, bool included) that fits in 64 bits. Anything else is
    /// an error: an int's fields read from another object (a list) would give a wrong number.
    pub fn int(&self, obj: usize) -> Result<i64> {
        let flags = self.mem.u64(self.type_of(obj)? + TP_FLAGS)?;
        if flags & TPFLAGS_LONG_SUBCLASS == 0 {
            return Err(Error::Layout(format!("{obj:#x} is not an int")));
        }
        let (ndigits, negative) = if self.layout.offsets().int_lv_tag {
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
        Ok((if negative { -value } else { value }) as i64)
    }

    pub fn tuple_items(&self, obj: usize) -> Result<Vec<usize>> {
        self.array(obj + TUPLE_ITEMS, self.mem.i64(obj + VAR_SIZE)?)
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
        let keys = self.mem.ptr(dict + 32)?;
        let values = self.mem.ptr(dict + 40)?;
        let values = if values == 0 {
            None
        } else if self.layout.minor() >= 13 {
            Some(values + 8)
        } else {
            Some(values)
        };
        self.keys_items(keys, values)
    }

    /// Walk a dict-keys object; `values` is the split-table values array, if any.
    fn keys_items(&self, keys: usize, values: Option<usize>) -> Result<Vec<(String, usize)>> {
        Ok(self
            .entries_with(keys, values)?
            .into_iter()
            .filter_map(|(k, v)| Some((self.str(k).ok()?, v)))
            .collect())
    }

    fn raw_entries(&self, keys: usize) -> Result<Vec<(usize, usize)>> {
        self.entries_with(keys, None)
    }

    /// (key, value) object pairs of a dict-keys object; `values` is a split table's values.
    fn entries_with(&self, keys: usize, values: Option<usize>) -> Result<Vec<(usize, usize)>> {
        let minor = self.layout.minor();
        let (entries, nentries, entry_size, key_off) = if minor <= 10 {
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
        if !(0..=MAX_ITEMS as i64).contains(&nentries) {
            return Err(Error::Layout("implausible dict entry count".into()));
        }
        let raw = self.mem.bytes(entries, nentries as usize * entry_size)?;
        let mut out = Vec::new();
        for (i, entry) in raw.chunks_exact(entry_size).enumerate() {
            let key = u64::from_le_bytes(entry[key_off..key_off + 8].try_into().unwrap()) as usize;
            if key == 0 {
                continue;
            }
            let value = match values {
                Some(v) => self.mem.ptr(v + 8 * i)?,
                None => u64::from_le_bytes(entry[key_off + 8..key_off + 16].try_into().unwrap())
                    as usize,
            };
            if value != 0 {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    /// All (key, value) object pairs of a combined-table dict, whatever the key type.
    pub fn dict_entries(&self, dict: usize) -> Result<Vec<(usize, usize)>> {
        let keys = self.mem.ptr(dict + 32)?;
        if self.mem.ptr(dict + 40)? != 0 {
            return Err(Error::Layout("split-table dict with non-str keys".into()));
        }
        self.raw_entries(keys)
    }

    pub fn dict_get(&self, dict: usize, key: &str) -> Result<Option<usize>> {
        Ok(self
            .dict_items(dict)?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v))
    }

    /// All instance attributes of a Python object (empty for objects without a `__dict__`).
    pub fn instance_attrs(&self, obj: usize) -> Result<Vec<(String, usize)>> {
        let ty = self.type_of(obj)?;
        match self.layout.offsets().instance_dict {
            InstanceDict::DictOffset => {
                let off = self.mem.i64(ty + TP_DICTOFFSET)?;
                if off <= 0 {
                    return Ok(Vec::new());
                }
                let dict = self.mem.ptr(obj + off as usize)?;
                if dict == 0 {
                    return Ok(Vec::new());
                }
                self.dict_items(dict)
            }
            InstanceDict::Managed311 => {
                let dict = self.mem.ptr(obj - 24)?;
                if dict != 0 {
                    return self.dict_items(dict);
                }
                let values = self.mem.ptr(obj - 32)?;
                self.cached_keys_items(ty, 872, values)
            }
            InstanceDict::Managed312 => {
                let tagged = self.mem.ptr(obj - 24)?;
                if tagged & 1 == 1 {
                    self.cached_keys_items(ty, 880, tagged + 1)
                } else if tagged != 0 {
                    self.dict_items(tagged)
                } else {
                    Ok(Vec::new())
                }
            }
            InstanceDict::Managed313 => {
                let dict = self.mem.ptr(obj - 24)?;
                if dict != 0 {
                    return self.dict_items(dict);
                }
                let basic = self.mem.i64(ty + TP_BASICSIZE)? as usize;
                self.cached_keys_items(ty, 880, obj + basic + 8)
            }
        }
    }

    fn cached_keys_items(
        &self,
        ty: usize,
        cached_keys_off: usize,
        values: usize,
    ) -> Result<Vec<(String, usize)>> {
        if values == 0 {
            return Ok(Vec::new());
        }
        let keys = self.mem.ptr(ty + cached_keys_off)?;
        if keys == 0 {
            return Ok(Vec::new());
        }
        self.keys_items(keys, Some(values))
    }

    pub fn attr(&self, obj: usize, name: &str) -> Result<Option<usize>> {
        Ok(self
            .instance_attrs(obj)?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v))
    }
}

impl Memory {
    pub fn u32_at(&self, addr: usize) -> Result<u32> {
        Ok(self.i32(addr)? as u32)
    }
}
