//! Which bytes a named ELF section holds, and where a few exported symbols lie, in the
//! binaries a target maps, read from the files themselves (through `/proc/PID/root`, so a
//! target in another root is read from its own files; `/proc/PID/map_files` when the path no
//! longer leads to the mapped file). Only the ELF header, the section header table, the
//! section-name table, the program headers and the section asked for (or the dynamic symbol
//! table and its strings) are read, each bounded, never the whole file; a section is read once
//! per mapped file for all the processes that map it. What the bytes mean is not known here.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Mutex;

use goblin::container::{Container, Ctx};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};
use goblin::elf::section_header::{SectionHeader, SHN_XINDEX, SHT_DYNSYM, SHT_NOBITS};
use goblin::elf::sym::Sym;
use goblin::elf::Elf;
use goblin::strtab::Strtab;

use super::procfs::Mapping;

/// More section headers than any real binary has (CPython's: about 40).
const MAX_SECTIONS: usize = 4096;
/// The section-name table of a binary with `MAX_SECTIONS` long names.
const MAX_NAMES: usize = 1 << 20;
const ELF_HEADER: usize = 64;
/// More program headers than any real binary has (CPython's: about 12).
const MAX_PROGRAM_HEADERS: usize = 256;
/// A dynamic symbol table, or its strings, far larger than libpython's (about 100 KiB each).
const MAX_DYNAMIC_SYMBOLS: usize = 64 << 20;

/// A named section found in a mapped binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The binary's path as the target maps it.
    pub binary: String,
    pub bytes: Vec<u8>,
}

/// Sections already looked for, per mapped file (device, inode) and section name: the
/// processes of a tree that map one binary share one read of it (a file is replaced by a new
/// inode when a package is upgraded; only a read that worked is kept).
type SectionKey = (String, u64, String);
static SECTIONS_READ: Mutex<BTreeMap<SectionKey, Option<Vec<u8>>>> = Mutex::new(BTreeMap::new());

/// Why a binary's section could not be read (one sentence, for a note).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SectionError {
    #[error("{binary}: cannot be opened ({reason})")]
    Open { binary: String, reason: String },
    #[error("{binary}: {reason}")]
    Malformed { binary: String, reason: String },
}

/// The first of the binaries mapped in `maps` whose file name `wanted` accepts that has a
/// section `name`, with at most `max_len` bytes. `Ok(None)`: none of them has it.
pub fn find_in_maps(
    pid: i32,
    maps: &[Mapping],
    wanted: &dyn Fn(&str) -> bool,
    name: &str,
    max_len: usize,
) -> Result<Option<Section>, SectionError> {
    let mut first_error = None;
    for m in mapped_binaries(maps, wanted) {
        let key = (m.device.clone(), m.inode, name.to_string());
        let known = SECTIONS_READ
            .lock()
            .ok()
            .and_then(|read| read.get(&key).cloned());
        let found = match known {
            Some(bytes) => Ok(bytes),
            None => open_mapped(pid, m).and_then(|f| {
                read_section(&f, name, max_len).map_err(|reason| SectionError::Malformed {
                    binary: m.path.clone(),
                    reason,
                })
            }),
        };
        if let (Ok(bytes), Ok(mut read)) = (&found, SECTIONS_READ.lock()) {
            read.insert(key, bytes.clone());
        }
        match found {
            Ok(Some(bytes)) => {
                return Ok(Some(Section {
                    binary: m.path.clone(),
                    bytes,
                }))
            }
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// The mappings of file offset 0 of the files mapped in `maps` whose file name `wanted`
/// accepts, one per file (device, inode).
pub fn mapped_binaries<'m>(
    maps: &'m [Mapping],
    wanted: &'m dyn Fn(&str) -> bool,
) -> impl Iterator<Item = &'m Mapping> {
    let mut seen: Vec<(&str, u64)> = Vec::new();
    maps.iter()
        .filter(|m| m.inode != 0 && m.offset == 0)
        .filter(move |m| {
            let file_name = m.path.rsplit('/').next().unwrap_or(&m.path);
            let key = (m.device.as_str(), m.inode);
            if !wanted(file_name) || seen.contains(&key) {
                return false;
            }
            seen.push(key);
            true
        })
}

/// The file mapped at `m`: the path inside the target's root when it still is that file
/// (same inode), else the kernel's link to the mapping itself.
pub fn open_mapped(pid: i32, m: &Mapping) -> Result<File, SectionError> {
    let in_root = format!("/proc/{pid}/root{}", m.path);
    if let Ok(f) = File::open(&in_root) {
        if f.metadata().map(|md| md.ino() == m.inode).unwrap_or(false) {
            return Ok(f);
        }
    }
    let link = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
    File::open(&link).map_err(|e| SectionError::Open {
        binary: m.path.clone(),
        reason: e.to_string(),
    })
}

/// `len` bytes of `f` at `at`, refusing a range past the end of the file.
fn read_at(f: &File, at: u64, len: usize, file_len: u64) -> Result<Vec<u8>, String> {
    at.checked_add(len as u64)
        .filter(|end| *end <= file_len)
        .ok_or_else(|| format!("{len} bytes at {at:#x} lie past the end of the file"))?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, at).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// The bytes of section `name` of the ELF file `f`, or `None` when it has no such section.
pub fn read_section(f: &File, name: &str, max_len: usize) -> Result<Option<Vec<u8>>, String> {
    with_image(f, |image| image.section(name, max_len))
}

/// `body` over the ELF image of file `f`, whose headers are read first.
fn with_image<T>(f: &File, body: impl FnOnce(&Image) -> Result<T, String>) -> Result<T, String> {
    let file_len = f.metadata().map_err(|e| e.to_string())?.len();
    let read = |at: u64, len: usize| read_at(f, at, len, file_len);
    let head = read(0, ELF_HEADER).map_err(|_| "not an ELF file".to_string())?;
    body(&Image::parse(&head, file_len, &read)?)
}

/// An ELF image's headers and section table, with the reader of its bytes.
struct Image<'a> {
    header: goblin::elf::Header,
    ctx: Ctx,
    sections: Vec<SectionHeader>,
    /// The section-name table.
    names: Option<Vec<u8>>,
    read: &'a dyn Fn(u64, usize) -> Result<Vec<u8>, String>,
}

impl<'a> Image<'a> {
    fn parse(
        head: &[u8],
        file_len: u64,
        read: &'a dyn Fn(u64, usize) -> Result<Vec<u8>, String>,
    ) -> Result<Image<'a>, String> {
        let header = Elf::parse_header(head).map_err(|e| format!("not an ELF file ({e})"))?;
        let container = header.container().map_err(|e| e.to_string())?;
        let endian = header.endianness().map_err(|e| e.to_string())?;
        if container != Container::Big {
            return Err("not a 64-bit ELF file".into());
        }
        let ctx = Ctx::new(container, endian);
        let mut image = Image {
            header,
            ctx,
            sections: Vec::new(),
            names: None,
            read,
        };
        let count = header.e_shnum as usize;
        if header.e_shoff == 0 || count == 0 {
            return Ok(image);
        }
        if count > MAX_SECTIONS || header.e_shentsize as usize != SectionHeader::size(ctx) {
            return Err(format!(
                "unexpected section header table ({count} entries of {} bytes)",
                header.e_shentsize
            ));
        }
        if header.e_shoff >= file_len {
            return Err("section header table past the end of the file".into());
        }
        let table = read(header.e_shoff, count * SectionHeader::size(ctx))?;
        image.sections =
            SectionHeader::parse_from(&table, 0, count, ctx).map_err(|e| e.to_string())?;
        let names_index = header.e_shstrndx as usize;
        if names_index == SHN_XINDEX as usize {
            return Err("extended section-name index not supported".into());
        }
        let names = image
            .sections
            .get(names_index)
            .ok_or("no section-name table")?;
        let names_len = names.sh_size as usize;
        if names_len > MAX_NAMES {
            return Err(format!("section-name table of {names_len} bytes"));
        }
        image.names = Some(read(names.sh_offset, names_len)?);
        Ok(image)
    }

    fn named(&self, name: &str) -> Option<&SectionHeader> {
        let bytes = self.names.as_ref()?;
        let strtab = Strtab::parse(bytes, 0, bytes.len(), 0).ok()?;
        self.sections
            .iter()
            .find(|s| strtab.get_at(s.sh_name) == Some(name))
    }

    /// The bytes of section `name`, at most `max_len`, or `None` when there is none.
    fn section(&self, name: &str, max_len: usize) -> Result<Option<Vec<u8>>, String> {
        match self.named(name) {
            Some(sh) => self.contents(sh, name, max_len).map(Some),
            None => Ok(None),
        }
    }

    /// The bytes of section `sh` (called `what` in errors), at most `max_len` of them.
    fn contents(&self, sh: &SectionHeader, what: &str, max_len: usize) -> Result<Vec<u8>, String> {
        if sh.sh_type == SHT_NOBITS {
            return Err(format!("section {what} has no bytes in the file"));
        }
        let len = sh.sh_size as usize;
        if len > max_len {
            return Err(format!(
                "section {what} is {len} bytes, more than the {max_len} expected"
            ));
        }
        (self.read)(sh.sh_offset, len)
    }

    /// What to add to a virtual address of the image to find it in a process that maps the
    /// image's start (file offset 0) at `mapped_at`.
    fn load_bias(&self, mapped_at: u64) -> Result<u64, String> {
        let count = self.header.e_phnum as usize;
        if count == 0 || count > MAX_PROGRAM_HEADERS {
            return Err(format!("{count} program headers"));
        }
        let size = ProgramHeader::size(self.ctx);
        let table = (self.read)(self.header.e_phoff, count * size)?;
        let headers =
            ProgramHeader::parse(&table, 0, count, self.ctx).map_err(|e| e.to_string())?;
        let first = headers
            .iter()
            .filter(|p| p.p_type == PT_LOAD)
            .min_by_key(|p| p.p_offset)
            .ok_or("no loadable segment")?;
        if first.p_offset != 0 {
            return Err("the first loadable segment does not start the file".into());
        }
        const PAGE: u64 = 4096;
        Ok(mapped_at.wrapping_sub(first.p_vaddr & !(PAGE - 1)))
    }

    /// The values of the defined dynamic symbols among `wanted`.
    fn dynamic_symbols(&self, wanted: &[&str]) -> Result<Vec<(String, u64)>, String> {
        let Some(dynsym) = self.sections.iter().find(|s| s.sh_type == SHT_DYNSYM) else {
            return Ok(Vec::new());
        };
        let strings = self
            .sections
            .get(dynsym.sh_link as usize)
            .ok_or("the dynamic symbol table names no string table")?;
        let table = self.contents(dynsym, ".dynsym", MAX_DYNAMIC_SYMBOLS)?;
        let names = self.contents(strings, ".dynstr", MAX_DYNAMIC_SYMBOLS)?;
        let count = table.len() / Sym::size(self.ctx.container);
        let symbols = goblin::elf::sym::Symtab::parse(&table, 0, count, self.ctx)
            .map_err(|e| e.to_string())?;
        let strtab = Strtab::parse(&names, 0, names.len(), 0).map_err(|e| e.to_string())?;
        Ok(symbols
            .iter()
            .filter(|sym| sym.st_shndx != 0 && sym.st_value != 0)
            .filter_map(|sym| {
                let name = strtab.get_at(sym.st_name)?;
                wanted
                    .contains(&name)
                    .then(|| (name.to_string(), sym.st_value))
            })
            .collect())
    }
}

/// Where the defined dynamic symbols among `wanted` lie in process `pid`, which maps the
/// binary of `m` (its mapping of file offset 0).
pub fn exported_symbols(
    pid: i32,
    m: &Mapping,
    wanted: &[&str],
) -> Result<Vec<(String, usize)>, SectionError> {
    let malformed = |reason: String| SectionError::Malformed {
        binary: m.path.clone(),
        reason,
    };
    let f = open_mapped(pid, m)?;
    exported_symbols_in(&f, m.start, wanted).map_err(malformed)
}

/// Where the defined dynamic symbols among `wanted` of the ELF file `f` lie when its start
/// (file offset 0) is mapped at `mapped_at`.
pub fn exported_symbols_in(
    f: &File,
    mapped_at: usize,
    wanted: &[&str],
) -> Result<Vec<(String, usize)>, String> {
    with_image(f, |image| {
        let bias = image.load_bias(mapped_at as u64)?;
        Ok(image
            .dynamic_symbols(wanted)?
            .into_iter()
            .map(|(name, value)| (name, value.wrapping_add(bias) as usize))
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ELF image: header, then `sections` (name, bytes) laid
    /// out one after another, a section-name table and the section header table.
    fn elf_with(sections: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = vec![0u8; ELF_HEADER];
        let mut names = vec![0u8];
        let mut placed = Vec::new();
        for (name, bytes) in sections {
            let name_at = names.len();
            names.extend_from_slice(name.as_bytes());
            names.push(0);
            placed.push((name_at as u32, out.len() as u64, bytes.len() as u64));
            out.extend_from_slice(bytes);
        }
        let shstrtab_name = names.len() as u32;
        names.extend_from_slice(b".shstrtab\0");
        let names_at = out.len() as u64;
        out.extend_from_slice(&names);
        let shoff = out.len() as u64;
        let mut sh = |name: u32, ty: u32, off: u64, size: u64| {
            let mut e = Vec::with_capacity(64);
            e.extend_from_slice(&name.to_le_bytes());
            e.extend_from_slice(&ty.to_le_bytes());
            e.extend_from_slice(&0u64.to_le_bytes()); // flags
            e.extend_from_slice(&0u64.to_le_bytes()); // addr
            e.extend_from_slice(&off.to_le_bytes());
            e.extend_from_slice(&size.to_le_bytes());
            e.extend_from_slice(&[0u8; 24]); // link, info, addralign, entsize
            out.extend_from_slice(&e);
        };
        sh(0, 0, 0, 0);
        for (name, off, size) in &placed {
            sh(*name, 1, *off, *size); // PROGBITS
        }
        sh(shstrtab_name, 3, names_at, names.len() as u64);
        let count = placed.len() as u16 + 2;
        // e_ident: magic, 64-bit, little-endian, version 1.
        out[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
        out[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
        out[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        out[20..24].copy_from_slice(&1u32.to_le_bytes());
        out[40..48].copy_from_slice(&shoff.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        out[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        out[60..62].copy_from_slice(&count.to_le_bytes());
        out[62..64].copy_from_slice(&(count - 1).to_le_bytes()); // e_shstrndx
        out
    }

    fn lookup(image: &[u8], name: &str, max: usize) -> Result<Option<Vec<u8>>, String> {
        let len = image.len() as u64;
        let read = |at: u64, n: usize| {
            let at = at as usize;
            image
                .get(at..at.checked_add(n).ok_or("overflow")?)
                .map(|b| b.to_vec())
                .ok_or_else(|| format!("{n} bytes at {at:#x} lie past the end of the file"))
        };
        Image::parse(&image[..ELF_HEADER], len, &read)?.section(name, max)
    }

    #[test]
    fn finds_a_named_section_and_only_that_one() {
        let image = elf_with(&[(".data", &[9; 16]), (".AsyncioDebug", &[1, 2, 3, 4])]);
        assert_eq!(
            lookup(&image, ".AsyncioDebug", 64).unwrap(),
            Some(vec![1, 2, 3, 4])
        );
        assert_eq!(lookup(&image, ".PyRuntime", 64).unwrap(), None);
    }

    #[test]
    fn refuses_oversized_and_truncated_sections() {
        let image = elf_with(&[(".AsyncioDebug", &[7; 200])]);
        let err = lookup(&image, ".AsyncioDebug", 104).unwrap_err();
        assert!(err.contains("200 bytes"), "{err}");
        // Cut the file inside the section header table.
        let shoff = u64::from_le_bytes(image[40..48].try_into().unwrap()) as usize;
        let cut = &image[..shoff + 10];
        assert!(lookup(cut, ".AsyncioDebug", 4096).is_err());
        // Not an ELF file at all.
        let junk = vec![0u8; 128];
        assert!(lookup(&junk, ".AsyncioDebug", 4096).is_err());
    }

    #[test]
    fn finds_an_exported_symbol_where_this_process_has_it() {
        let pid = std::process::id() as i32;
        let maps =
            super::super::procfs::parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap());
        let libc_start = maps
            .iter()
            .find(|m| m.offset == 0 && m.path.rsplit('/').next().unwrap().starts_with("libc.so"))
            .expect("this test binary maps libc");
        let got = exported_symbols(pid, libc_start, &["getpid", "no_such_symbol"]).unwrap();
        assert!(!got.is_empty());
        for (name, address) in got {
            assert_eq!(name, "getpid");
            assert_eq!(address, libc::getpid as *const () as usize);
        }
    }

    #[test]
    fn a_binary_mapped_by_many_processes_is_read_once() {
        let image = elf_with(&[(".AsyncioDebug", &[6; 8])]);
        let path = std::env::temp_dir().join(format!("gridlock-elf-once-{}", std::process::id()));
        std::fs::write(&path, &image).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino();
        let m = Mapping {
            start: 0x1000,
            end: 0x2000,
            perms: "r--p".into(),
            offset: 0,
            device: "fe:01".into(),
            inode,
            path: path.to_string_lossy().into_owned(),
        };
        let pid = std::process::id() as i32;
        let any = |_: &str| true;
        let first = find_in_maps(pid, std::slice::from_ref(&m), &any, ".AsyncioDebug", 64);
        // Gone from disk: a second process mapping the same file is answered from the first read.
        std::fs::remove_file(&path).unwrap();
        let second = find_in_maps(pid, &[m], &any, ".AsyncioDebug", 64);
        assert_eq!(first.unwrap().unwrap().bytes, vec![6; 8]);
        assert_eq!(second.unwrap().unwrap().bytes, vec![6; 8]);
    }

    #[test]
    fn reads_the_section_from_a_real_file() {
        let image = elf_with(&[(".AsyncioDebug", &[5; 104])]);
        let dir = std::env::temp_dir().join(format!("gridlock-elf-{}", std::process::id()));
        std::fs::write(&dir, &image).unwrap();
        let f = File::open(&dir).unwrap();
        let got = read_section(&f, ".AsyncioDebug", 4096);
        let _ = std::fs::remove_file(&dir);
        assert_eq!(got.unwrap(), Some(vec![5; 104]));
    }
}
