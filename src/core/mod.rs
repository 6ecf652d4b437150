//! A core dump of a CPython process: what its ELF headers and notes say (threads and their
//! registers, the process, the mapped files, the auxiliary vector) and its memory, read
//! through the crate's `ReadMemory` so the CPython readers work on it unchanged. The file is
//! untrusted input: every count, size and offset is checked before use, and a core that is
//! not one, is cut short or is corrupt is one `Error::BadCore`, never a panic. The binaries a
//! core maps are found under `--sysroot` (or `--executable`) and checked against the build
//! ids the core kept. Compressed cores (systemd-coredump) are unpacked first (`compressed`).
//! `attach` turns a core into a target the snapshot reads like a live one.

pub mod attach;
pub mod buildid;
pub mod compressed;
pub mod memory;
pub mod notes;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use goblin::container::{Container, Ctx};
use goblin::elf::header::{EM_X86_64, ET_CORE};
use goblin::elf::program_header::{ProgramHeader, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE};
use goblin::elf::section_header::SectionHeader;
use goblin::elf::Elf;

use crate::error::{Error, Result};
use crate::target::procfs::Mapping;
use memory::{Backing, PagedFile};
pub use memory::{CoreMemory, Segment};
pub use notes::{CoreError, CoreThread, FileMapping, ProcessInfo, Registers};

/// More segments than any process has (`vm.max_map_count` is 65530 by default).
const MAX_SEGMENTS: usize = 1 << 20;
/// Notes of a 10 000-thread process are a few MiB.
const MAX_NOTE_SEGMENT: u64 = 256 << 20;
const ELF_HEADER: usize = 64;
/// `e_phnum`'s escape value: the count is in section header 0's `sh_info`.
const PN_XNUM: u16 = 0xffff;
/// How far above a thread's stack pointer the core must hold a non-zero byte for its stack
/// to count as dumped: a live stack has return addresses within a few hundred bytes of it.
const STACK_PROBE: u64 = 16 << 10;

/// Where to find the binaries a core names.
#[derive(Debug, Clone, Default)]
pub struct CoreOptions {
    /// The dumped process's executable, when it is not at its path (under the sysroot).
    pub executable: Option<PathBuf>,
    /// The root the dumped process saw as `/` (a container's or a chroot's).
    pub sysroot: Option<PathBuf>,
}

/// One file a core maps, and where gridlock found it.
#[derive(Debug, Clone)]
pub struct MappedFile {
    /// The path as the dumped process saw it.
    pub path: String,
    /// Where gridlock reads it.
    pub host: PathBuf,
    /// Why it could not be opened.
    pub missing: Option<String>,
}

#[derive(Debug)]
pub struct Core {
    pub path: PathBuf,
    pub process: ProcessInfo,
    pub threads: Vec<CoreThread>,
    pub auxv: Vec<(u64, u64)>,
    /// `NT_FILE`'s mappings, in the core's order.
    pub mappings: Vec<FileMapping>,
    /// Every distinct file of `mappings`, indexed as `CoreMemory` indexes them.
    pub files: Vec<MappedFile>,
    pub segments: Vec<Segment>,
    /// The executable's path as the process saw it (the file mapped at `AT_ENTRY`).
    pub executable: Option<String>,
    pub memory: CoreMemory,
    /// Threads whose stack the core holds as zeros only: whoever wrote it could not read
    /// those pages (gdb's gcore gives up on a whole mapping at its first unreadable page,
    /// such as a guard page glibc installs inside a thread's stack). Those segments read
    /// as unreadable, not as zeros.
    pub lost_stacks: Vec<i32>,
}

impl Core {
    /// Read the core at `path` (a plain ELF core, or one systemd-coredump compressed).
    pub fn open(path: &Path, options: &CoreOptions) -> Result<Core> {
        let bad = |reason: String| Error::BadCore {
            path: path.display().to_string(),
            reason,
        };
        let file = File::open(path).map_err(|e| bad(format!("it cannot be opened ({e})")))?;
        let file = compressed::plain(file, path).map_err(bad)?;
        let core = PagedFile::new(file).map_err(|e| bad(e.to_string()))?;
        Core::parse(path, core, options).map_err(|CoreError::Malformed(reason)| bad(reason))
    }

    fn parse(path: &Path, core: PagedFile, options: &CoreOptions) -> Result<Core, CoreError> {
        let bad = |s: String| CoreError::Malformed(s);
        let len = core.len();
        let read = |at: u64, n: usize| -> Result<Vec<u8>, CoreError> {
            let mut buf = vec![0u8; n];
            if core.read(at, &mut buf) {
                Ok(buf)
            } else {
                Err(bad(format!(
                    "it is truncated: {n} bytes at offset {at:#x} lie past its end ({len} bytes)"
                )))
            }
        };
        let head = read(0, ELF_HEADER)
            .map_err(|_| bad(format!("it is not an ELF core file ({len} bytes)")))?;
        let header = Elf::parse_header(&head)
            .map_err(|_| bad("it is not an ELF core file (no ELF header)".into()))?;
        if header.e_type != ET_CORE {
            return Err(bad("it is an ELF file but not a core dump".into()));
        }
        if header.container().ok() != Some(Container::Big)
            || header.e_machine != EM_X86_64
            || !header.endianness().is_ok_and(|e| e.is_little())
        {
            return Err(bad("it is not a core of an x86-64 process".into()));
        }
        let ctx = Ctx::new(Container::Big, goblin::container::Endian::Little);
        let entry = ProgramHeader::size(ctx);
        if header.e_phentsize as usize != entry {
            return Err(bad(format!(
                "its program headers are {} bytes each, not {entry}",
                header.e_phentsize
            )));
        }
        let mut count = header.e_phnum as usize;
        if header.e_phnum == PN_XNUM {
            let first = read(header.e_shoff, SectionHeader::size(ctx))?;
            let sh = SectionHeader::parse(&first, 0, 1, ctx).map_err(|e| bad(e.to_string()))?;
            count = sh.first().map(|s| s.sh_info as usize).unwrap_or(0);
        }
        if count == 0 || count > MAX_SEGMENTS {
            return Err(bad(format!("it has {count} program headers")));
        }
        let table = read(header.e_phoff, count * entry)?;
        let headers =
            ProgramHeader::parse(&table, 0, count, ctx).map_err(|e| bad(e.to_string()))?;

        let mut process = None;
        let mut threads = Vec::new();
        let mut auxv = Vec::new();
        let mut mappings = Vec::new();
        let mut segments = Vec::new();
        for ph in &headers {
            match ph.p_type {
                PT_NOTE => {
                    if ph.p_filesz > MAX_NOTE_SEGMENT {
                        return Err(bad(format!("a note segment of {} bytes", ph.p_filesz)));
                    }
                    let bytes = read(ph.p_offset, ph.p_filesz as usize)?;
                    for note in notes::parse_notes(&bytes)? {
                        if note.name != b"CORE" {
                            continue;
                        }
                        match note.kind {
                            notes::NT_PRSTATUS => threads.push(notes::parse_prstatus(note.desc)?),
                            notes::NT_PRPSINFO => process = Some(notes::parse_prpsinfo(note.desc)?),
                            notes::NT_FILE => mappings = notes::parse_nt_file(note.desc)?,
                            notes::NT_AUXV => auxv = notes::parse_auxv(note.desc),
                            _ => {}
                        }
                    }
                }
                PT_LOAD => {
                    let in_file = ph.p_offset.checked_add(ph.p_filesz);
                    if in_file.is_none_or(|end| end > len) {
                        return Err(bad(format!(
                            "it is truncated: the segment at {:#x} needs bytes up to offset {:#x} \
                             but the file has {len}",
                            ph.p_vaddr,
                            ph.p_offset.saturating_add(ph.p_filesz)
                        )));
                    }
                    if ph.p_filesz > ph.p_memsz || ph.p_vaddr.checked_add(ph.p_memsz).is_none() {
                        return Err(bad(format!("the segment at {:#x} is corrupt", ph.p_vaddr)));
                    }
                    segments.push(Segment {
                        vaddr: ph.p_vaddr,
                        memsz: ph.p_memsz,
                        filesz: ph.p_filesz,
                        offset: ph.p_offset,
                        flags: ph.p_flags,
                    });
                }
                _ => {}
            }
        }
        if threads.is_empty() {
            return Err(bad("it has no thread status note (NT_PRSTATUS)".into()));
        }
        let process = process.unwrap_or_else(|| ProcessInfo {
            pid: threads[0].tid,
            ..ProcessInfo::default()
        });
        segments.sort_by_key(|s| s.vaddr);
        if segments.windows(2).any(|w| w[0].end() > w[1].vaddr) {
            return Err(bad("its segments overlap".into()));
        }

        let entry_point = auxv
            .iter()
            .find(|(k, _)| *k == notes::AT_ENTRY)
            .map(|(_, v)| *v);
        let executable = entry_point.and_then(|at| {
            mappings
                .iter()
                .find(|m| m.start <= at && at < m.end)
                .map(|m| m.path.clone())
        });
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut files = Vec::new();
        let mut opened = Vec::new();
        for m in &mappings {
            if index.contains_key(&m.path) {
                continue;
            }
            let host = match (&options.executable, &executable) {
                (Some(exe), Some(path)) if *path == m.path => exe.clone(),
                _ => host_path(options.sysroot.as_deref(), &m.path),
            };
            let missing = match File::open(&host).and_then(PagedFile::new) {
                Ok(f) => {
                    index.insert(m.path.clone(), opened.len());
                    opened.push(f);
                    None
                }
                Err(e) => Some(e.to_string()),
            };
            files.push(MappedFile {
                path: m.path.clone(),
                host,
                missing,
            });
        }
        let backings = mappings
            .iter()
            .map(|m| Backing {
                start: m.start,
                end: m.end,
                offset: m.offset,
                file: index.get(&m.path).copied(),
            })
            .collect();
        let mut memory = CoreMemory::new(process.pid, core, segments.clone(), backings, opened);
        let lost_stacks: Vec<i32> = threads
            .iter()
            .filter(|t| memory.dumped_zeros(t.registers.rsp, STACK_PROBE) == Some(true))
            .map(|t| t.tid)
            .collect();
        for t in threads.iter().filter(|t| lost_stacks.contains(&t.tid)) {
            memory.forget(t.registers.rsp);
        }
        Ok(Core {
            path: path.to_path_buf(),
            process,
            threads,
            auxv,
            mappings,
            files,
            segments,
            executable,
            memory,
            lost_stacks,
        })
    }

    /// The process's memory map as `/proc/PID/maps` would have listed it: every file mapping
    /// of `NT_FILE` and every other segment (anonymous memory), by address. Files get a
    /// made-up device and inode (one per path) so that mappings of one file are grouped.
    pub fn maps(&self) -> Vec<Mapping> {
        let mut inodes: BTreeMap<&str, u64> = BTreeMap::new();
        let perms = |start: u64| {
            let flags = self
                .segments
                .iter()
                .find(|s| s.vaddr <= start && start < s.end())
                .map(|s| s.flags)
                .unwrap_or(PF_R);
            let bit = |b: u32, c: char| if flags & b != 0 { c } else { '-' };
            format!("{}{}{}p", bit(PF_R, 'r'), bit(PF_W, 'w'), bit(PF_X, 'x'))
        };
        let mut maps: Vec<Mapping> = self
            .mappings
            .iter()
            .map(|m| {
                let next = inodes.len() as u64 + 1;
                let inode = *inodes.entry(m.path.as_str()).or_insert(next);
                Mapping {
                    start: m.start as usize,
                    end: m.end as usize,
                    perms: perms(m.start),
                    offset: m.offset,
                    device: "core".into(),
                    inode,
                    path: m.path.clone(),
                }
            })
            .collect();
        for s in &self.segments {
            if self
                .mappings
                .iter()
                .any(|m| m.start <= s.vaddr && s.vaddr < m.end)
            {
                continue;
            }
            maps.push(Mapping {
                start: s.vaddr as usize,
                end: s.end() as usize,
                perms: perms(s.vaddr),
                offset: 0,
                device: "00:00".into(),
                inode: 0,
                path: String::new(),
            });
        }
        maps.sort_by_key(|m| m.start);
        maps
    }

    /// Where gridlock reads the file the process mapped at `path`.
    pub fn file(&self, path: &str) -> Option<&MappedFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Check the file gridlock reads for `path` against the build id the core kept of it
    /// (the first page of its mapping, when the core holds it). `Ok(false)`: the core kept
    /// no build id to check against.
    pub fn check_build_id(&self, path: &str) -> Result<bool> {
        let Some(file) = self.file(path) else {
            return Ok(false);
        };
        let Some(first) = self
            .mappings
            .iter()
            .find(|m| m.path == path && m.offset == 0)
        else {
            return Ok(false);
        };
        let span = first.end - first.start;
        let dumped = |at: u64, n: usize| {
            let end = at.checked_add(n as u64)?;
            if end > span {
                return None;
            }
            let mut buf = vec![0u8; n];
            self.memory
                .read_dumped(first.start + at, &mut buf)
                .then_some(buf)
        };
        let Some(kept) = buildid::build_id(&dumped) else {
            return Ok(false);
        };
        let on_disk = File::open(&file.host).ok().and_then(|f| {
            let len = f.metadata().ok()?.len();
            let read = |at: u64, n: usize| {
                use std::os::unix::fs::FileExt;
                let end = at.checked_add(n as u64)?;
                if end > len {
                    return None;
                }
                let mut buf = vec![0u8; n];
                f.read_exact_at(&mut buf, at).ok().map(|_| buf)
            };
            buildid::build_id(&read)
        });
        if on_disk.as_deref() == Some(&kept[..]) {
            return Ok(true);
        }
        let theirs = match on_disk {
            Some(id) => format!("build id {}", buildid::hex(&id)),
            None => "no build id".into(),
        };
        Err(Error::BadCore {
            path: self.path.display().to_string(),
            reason: format!(
                "the process mapped {path} (build id {}) but {} is another build ({theirs}): \
                 give the matching files with --sysroot or --executable",
                buildid::hex(&kept),
                file.host.display()
            ),
        })
    }
}

/// `path` as seen from inside `sysroot`. A path already under the sysroot is kept: a core
/// taken from outside the root (gdb's gcore from the host) names the files as the host sees them.
pub fn host_path(sysroot: Option<&Path>, path: &str) -> PathBuf {
    match sysroot {
        Some(root) if !Path::new(path).starts_with(root) => root.join(path.trim_start_matches('/')),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests;
