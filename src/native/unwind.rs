//! Native frames of a thread asleep in a syscall, read without stopping it: from the stack
//! pointer and program counter the kernel shows for the syscall, unwound over the target's
//! memory with the `.eh_frame` of the binaries it maps (`framehop`), each address named by
//! the function symbol of its binary that covers it (`.symtab`, else `.dynsym`, through
//! `object`). It reads the files it is handed and the target's memory through `ReadMemory`:
//! it opens nothing by path, knows no CPython (the caller says which frame to stop before)
//! and never stops or writes to a thread (a caller that stopped one hands its registers in).
//! Every file read and the frame count are bounded.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Range;
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder};
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, ReadCache, SymbolKind};

use crate::memory::ReadMemory;

/// The most frames one unwind yields (a blocked thread's C stack down to the eval loop is
/// about ten; a deep C stack is cut here).
pub const MAX_FRAMES: usize = 32;
/// The most stack words one unwind reads.
const MAX_STACK_READS: usize = 4096;
/// No unwind section or symbol table this large is read (libpython's are a few MiB at most).
const MAX_SECTION: u64 = 64 << 20;
/// The most function symbols kept of one binary.
const MAX_SYMBOLS: usize = 1 << 20;
const PAGE: u64 = 4096;

/// One binary the target maps, as the caller found it in the process's mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedBinary {
    /// The file's device and inode: its unwind data and symbols are read once per file.
    pub file: (String, u64),
    /// Its path as the target maps it (for the report).
    pub path: String,
    /// From the first to the last byte the file is mapped at.
    pub range: Range<u64>,
    /// Where the file's offset 0 is mapped.
    pub start_of_file: u64,
}

/// One native frame: the program counter (innermost) or a return address, and what covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub address: u64,
    /// The function symbol that covers the address, and how far into it the address lies.
    pub symbol: Option<Symbol>,
    /// The path of the binary the address lies in.
    pub module: Option<String>,
    /// Found by scanning the stack for a return address, not from unwind tables.
    pub scanned: bool,
}

/// What names an address: a function symbol and how far into it the address lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub offset: u64,
    /// The binary keeps only its exported symbols (`.dynsym`, no `.symtab`) and none covers
    /// the address: `name` is the nearest export before it, not the function itself (an
    /// internal one such as `__lll_lock_wait` lies past the exports around it).
    pub nearest_export: bool,
}

/// Where an unwind ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// At the frame the caller asked to stop before (the interpreter's eval loop).
    Stopped,
    /// The unwinder found the stack's root.
    Root,
    /// The unwind information or a stack read failed.
    Lost,
    /// `MAX_FRAMES` were read.
    Bounded,
}

#[derive(Debug, Clone)]
pub struct Unwound {
    pub frames: Vec<Frame>,
    pub end: End,
}

/// What one binary's file gives: unwind sections and function symbols.
struct BinaryInfo {
    eh_frame: Option<(Range<u64>, Arc<[u8]>)>,
    eh_frame_hdr: Option<(Range<u64>, Arc<[u8]>)>,
    text: Option<Range<u64>>,
    got: Option<Range<u64>>,
    /// The address the file's offset 0 is linked at (0 for shared objects and PIE).
    linked_at: u64,
    /// Function symbols by address: (address, size, name).
    symbols: Vec<(u64, u64, Arc<str>)>,
    /// Whether `symbols` are the exports alone (`.dynsym`: the file has no `.symtab`).
    exports_only: bool,
}

impl BinaryInfo {
    fn read(file: File) -> Option<BinaryInfo> {
        let cache = ReadCache::new(file);
        let obj = object::File::parse(&cache).ok()?;
        let section = |name: &str| {
            let s = obj.section_by_name(name)?;
            if s.size() > MAX_SECTION {
                return None;
            }
            let data: Arc<[u8]> = Arc::from(s.data().ok()?);
            Some((s.address()..s.address() + s.size(), data))
        };
        let range = |name: &str| {
            let s = obj.section_by_name(name)?;
            Some(s.address()..s.address() + s.size())
        };
        let linked_at = obj
            .segments()
            .filter_map(|s| {
                let (offset, _) = s.file_range();
                Some(s.address().checked_sub(offset)? & !(PAGE - 1))
            })
            .min()
            .unwrap_or(0);
        let mut symbols = Vec::new();
        let table_fits = |size: Option<u64>| size.is_some_and(|n| n <= MAX_SECTION);
        let symtab_fits = table_fits(obj.section_by_name(".symtab").map(|s| s.size()));
        let dynsym_fits = table_fits(obj.section_by_name(".dynsym").map(|s| s.size()));
        if symtab_fits {
            collect_functions(obj.symbols(), &mut symbols);
        }
        let exports_only = symbols.is_empty() && dynsym_fits;
        if exports_only {
            collect_functions(obj.dynamic_symbols(), &mut symbols);
        }
        symbols.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
        symbols.dedup_by_key(|s| s.0);
        Some(BinaryInfo {
            eh_frame: section(".eh_frame"),
            eh_frame_hdr: section(".eh_frame_hdr"),
            text: range(".text"),
            got: range(".got"),
            linked_at,
            symbols,
            exports_only,
        })
    }

    /// The function covering `svma` (an address as the file links it), and the offset into it.
    /// In a binary with exports alone, an address in `.text` that no export covers is named
    /// by the nearest export before it, marked so.
    fn symbol_at(&self, svma: u64) -> Option<Symbol> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= svma)
            .checked_sub(1)?;
        let (addr, size, name) = &self.symbols[i];
        let covered = svma - addr < *size;
        let in_text = self.text.as_ref().is_some_and(|t| t.contains(&svma));
        (covered || (self.exports_only && in_text)).then(|| Symbol {
            name: name.to_string(),
            offset: svma - addr,
            nearest_export: !covered,
        })
    }
}

fn collect_functions<'d, S: ObjectSymbol<'d>>(
    symbols: impl Iterator<Item = S>,
    out: &mut Vec<(u64, u64, Arc<str>)>,
) {
    for s in symbols.take(MAX_SYMBOLS) {
        if s.kind() != SymbolKind::Text || s.address() == 0 || s.size() == 0 {
            continue;
        }
        if let Ok(name) = s.name() {
            out.push((s.address(), s.size(), Arc::from(name)));
        }
    }
}

/// Unwind data and symbols of the binaries seen so far, by file, and the unwinder's rule
/// cache: kept across snapshots of a session.
#[derive(Default)]
pub struct Binaries {
    files: HashMap<(String, u64), Option<Arc<BinaryInfo>>>,
    cache: Option<Box<CacheX86_64>>,
    /// The unwinder of the last mapping list: snapshots of a process mostly see the same.
    built: Option<Built>,
}

/// The binaries of one process at one instant, ready to unwind its threads.
pub struct Process<'b> {
    unwinder: &'b UnwinderX86_64<Arc<[u8]>>,
    modules: &'b [(Range<u64>, u64, Arc<BinaryInfo>, String)],
    cache: &'b mut CacheX86_64,
}

/// An unwinder over one list of mapped binaries, kept while the process maps the same.
struct Built {
    mapped: Vec<MappedBinary>,
    unwinder: UnwinderX86_64<Arc<[u8]>>,
    modules: Vec<(Range<u64>, u64, Arc<BinaryInfo>, String)>,
}

impl Binaries {
    /// The process mapping `mapped`; `open` gives the file of a binary not read before
    /// (`None`: it cannot be read, and its frames stay unnamed and end the unwind).
    pub fn process(
        &mut self,
        mapped: &[MappedBinary],
        mut open: impl FnMut(&MappedBinary) -> Option<File>,
    ) -> Process<'_> {
        if self.built.as_ref().is_none_or(|b| b.mapped != mapped) {
            self.built = Some(self.build(mapped, &mut open));
        }
        let built = self.built.as_ref().expect("just built");
        Process {
            unwinder: &built.unwinder,
            modules: &built.modules,
            cache: self.cache.get_or_insert_with(Default::default),
        }
    }

    fn build(
        &mut self,
        mapped: &[MappedBinary],
        open: &mut impl FnMut(&MappedBinary) -> Option<File>,
    ) -> Built {
        let mut unwinder = UnwinderX86_64::new();
        let mut modules = Vec::new();
        for b in mapped {
            let info = self
                .files
                .entry(b.file.clone())
                .or_insert_with(|| open(b).and_then(BinaryInfo::read).map(Arc::new));
            let Some(info) = info.clone() else {
                continue;
            };
            let bias = b.start_of_file.wrapping_sub(info.linked_at);
            let sections = ExplicitModuleSectionInfo {
                base_svma: 0,
                text_svma: info.text.clone(),
                got_svma: info.got.clone(),
                eh_frame_svma: info.eh_frame.as_ref().map(|s| s.0.clone()),
                eh_frame: info.eh_frame.as_ref().map(|s| s.1.clone()),
                eh_frame_hdr_svma: info.eh_frame_hdr.as_ref().map(|s| s.0.clone()),
                eh_frame_hdr: info.eh_frame_hdr.as_ref().map(|s| s.1.clone()),
                ..Default::default()
            };
            unwinder.add_module(Module::new(b.path.clone(), b.range.clone(), bias, sections));
            modules.push((b.range.clone(), bias, info, b.path.clone()));
        }
        Built {
            mapped: mapped.to_vec(),
            unwinder,
            modules,
        }
    }
}

impl Process<'_> {
    /// The frames of a thread stopped at `pc` with stack pointer `sp`, innermost first, up
    /// to (not including) the first whose function `stop_before` accepts.
    ///
    /// The kernel gives no frame pointer; a frame whose unwind rule needs one (libffi's
    /// `ffi_call_unix64`, any frame-pointer frame no callee saved `rbp` for) is passed by
    /// scanning the stack above it for the first return address: a word pointing into a
    /// binary's `.text` just after a call instruction. The frame found so is marked `scanned`.
    pub fn unwind<M: ReadMemory + ?Sized>(
        &mut self,
        mem: &M,
        pc: u64,
        sp: u64,
        stop_before: &dyn Fn(&str) -> bool,
    ) -> Unwound {
        self.unwind_with_bp(mem, pc, sp, 0, stop_before)
    }

    /// As `unwind`, for a thread whose frame pointer `bp` is known too (its registers were
    /// read in a ptrace stop); 0 when not known.
    pub fn unwind_with_bp<M: ReadMemory + ?Sized>(
        &mut self,
        mem: &M,
        pc: u64,
        sp: u64,
        bp: u64,
        stop_before: &dyn Fn(&str) -> bool,
    ) -> Unwound {
        let mut reads = 0usize;
        let mut read_stack = |addr: u64| {
            reads += 1;
            if reads > MAX_STACK_READS {
                return Err(());
            }
            mem.u64(addr as usize).map_err(|_| ())
        };
        let mut regs = UnwindRegsX86_64::new(pc, sp, bp);
        let mut address = FrameAddress::from_instruction_pointer(pc);
        let mut scanned = false;
        let mut scans = 0;
        let mut frames = Vec::new();
        let end = loop {
            if frames.len() >= MAX_FRAMES {
                break End::Bounded;
            }
            let lookup = address.address_for_lookup();
            let module = self.modules.iter().find(|m| m.0.contains(&lookup));
            let symbol = module.and_then(|(_, bias, info, _)| {
                info.symbol_at(lookup.wrapping_sub(*bias)).map(|s| Symbol {
                    offset: s.offset + (address.address() - lookup),
                    ..s
                })
            });
            // The eval loop is recognised by its own symbol only, never by a nearest export.
            if symbol
                .as_ref()
                .is_some_and(|s| !s.nearest_export && stop_before(&s.name))
            {
                break End::Stopped;
            }
            frames.push(Frame {
                address: address.address(),
                symbol,
                module: module.map(|m| m.3.clone()),
                scanned,
            });
            scanned = false;
            let next = self
                .unwinder
                .unwind_frame(address, &mut regs, self.cache, &mut read_stack);
            // framehop ends at a frame-pointer frame whose `rbp` it does not know (0) as at
            // the stack's root: both are passed by a scan, while scans are left.
            // A return address outside every mapped binary is a rule misread (libffi's
            // `ffi_call_unix64` keeps its frame at `rbp+16`, not where a frame-pointer rule
            // looks): passed by a scan too.
            let ra = match next {
                Ok(Some(ra)) if self.in_a_binary(ra) => ra,
                Ok(_) | Err(_) if scans < MAX_SCANS => {
                    scans += 1;
                    let Some((ra, slot)) = self.scan_for_return(mem, regs.sp()) else {
                        break if matches!(next, Ok(None)) {
                            End::Root
                        } else {
                            End::Lost
                        };
                    };
                    // A frame-pointer frame keeps its caller's `rbp` just below the return address.
                    let bp = mem.u64(slot as usize - 8).unwrap_or(0);
                    regs = UnwindRegsX86_64::new(ra, slot + 8, bp);
                    scanned = true;
                    ra
                }
                Ok(None) => break End::Root,
                Ok(Some(_)) | Err(_) => break End::Lost,
            };
            match FrameAddress::from_return_address(ra) {
                Some(a) => address = a,
                None => break End::Lost,
            }
        };
        Unwound { frames, end }
    }

    fn in_a_binary(&self, address: u64) -> bool {
        self.modules.iter().any(|m| m.0.contains(&address))
    }

    /// The first word at or above `sp` (within `SCAN_WORDS`) that is a return address: it
    /// points into a mapped binary's `.text`, just after a call instruction.
    fn scan_for_return<M: ReadMemory + ?Sized>(&self, mem: &M, sp: u64) -> Option<(u64, u64)> {
        let mut words = [0u8; SCAN_WORDS * 8];
        mem.read_into(sp as usize, &mut words).ok()?;
        words.chunks_exact(8).enumerate().find_map(|(i, w)| {
            let value = u64::from_le_bytes(w.try_into().ok()?);
            let in_text = self.modules.iter().any(|(range, bias, info, _)| {
                range.contains(&value)
                    && info
                        .text
                        .as_ref()
                        .is_some_and(|t| t.contains(&value.wrapping_sub(*bias)))
            });
            (in_text && follows_a_call(mem, value)).then_some((value, sp + 8 * i as u64))
        })
    }
}

/// How many times one unwind may pass a frame by scanning, and how far it looks.
const MAX_SCANS: usize = 2;
const SCAN_WORDS: usize = 256;

/// Whether the code just before `ra` is an x86-64 call: `e8 rel32`, or `ff /2` with a
/// register or memory operand of 2 to 7 bytes.
fn follows_a_call<M: ReadMemory + ?Sized>(mem: &M, ra: u64) -> bool {
    let mut code = [0u8; 7];
    if mem.read_into(ra as usize - 7, &mut code).is_err() {
        return false;
    }
    if code[2] == 0xe8 {
        return true;
    }
    [5usize, 4, 1, 0]
        .iter()
        .any(|&at| code[at] == 0xff && code[at + 1] & 0x38 == 0x10)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test process unwinds itself from a known function: the frames name it.
    #[test]
    fn names_the_functions_of_the_own_process_from_their_binaries() {
        let pid = std::process::id();
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let mut mapped: Vec<MappedBinary> = Vec::new();
        for line in maps.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 6 || f[4] == "0" || !f[5].starts_with('/') {
                continue;
            }
            let (start, end) = f[0].split_once('-').unwrap();
            let (start, end) = (
                u64::from_str_radix(start, 16).unwrap(),
                u64::from_str_radix(end, 16).unwrap(),
            );
            let file = (f[3].to_string(), f[4].parse().unwrap());
            let offset = u64::from_str_radix(f[2], 16).unwrap();
            match mapped.iter_mut().find(|m| m.file == file) {
                Some(m) => m.range.end = m.range.end.max(end),
                None => mapped.push(MappedBinary {
                    file,
                    path: f[5].to_string(),
                    range: start..end,
                    start_of_file: start - offset,
                }),
            }
        }
        let mut binaries = Binaries::default();
        let mut process = binaries.process(&mapped, |m| File::open(&m.path).ok());
        // libc's `getpid` from its own address: one frame, named, at offset 0.
        let getpid = libc::getpid as *const () as usize as u64;
        let (_, _, info, _) = process
            .modules
            .iter()
            .find(|m| m.0.contains(&getpid))
            .expect("libc is mapped");
        let bias = process
            .modules
            .iter()
            .find(|m| m.0.contains(&getpid))
            .unwrap()
            .1;
        let named = info.symbol_at(getpid - bias).map(|s| s.name);
        assert!(
            named.as_deref().is_some_and(|n| n.contains("getpid")),
            "{named:?}"
        );
        // An unwind whose stack cannot be read ends lost, after the first frame.
        let empty = crate::memory::FakeMemory::new();
        let u = process.unwind(&empty, getpid, 0x1000, &|_| false);
        assert!(u.frames.len() <= 1 && u.end == End::Lost, "{u:?}");
        assert_eq!(
            u.frames[0].symbol.as_ref().map(|s| s.offset),
            Some(0),
            "{u:?}"
        );
        let u = process.unwind(&empty, getpid, 0x1000, &|n| n.contains("getpid"));
        assert_eq!(u.end, End::Stopped, "{u:?}");
        assert!(u.frames.is_empty());
    }

    /// A stripped libc (exports only: the host's and the Debian root's): an address past
    /// every export around it is named by the nearest export before it, marked so; an
    /// address an export covers is named exactly.
    #[test]
    fn names_internal_functions_of_a_stripped_libc_by_the_nearest_export() {
        let mut checked = 0;
        for path in [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/var/tmp/gridlock-sid/lib/x86_64-linux-gnu/libc.so.6",
        ] {
            let Ok(file) = File::open(path) else {
                eprintln!("note: no {path}: skipped");
                continue;
            };
            let info = BinaryInfo::read(file).expect("libc parses");
            if !info.exports_only {
                eprintln!("note: {path} keeps .symtab: nothing to fall back from");
                continue;
            }
            let text = info.text.clone().expect("libc has .text");
            // The first gap in .text between one export's end and the next export.
            let (addr, size, name) = info
                .symbols
                .windows(2)
                .find(|w| {
                    let end = w[0].0 + w[0].1;
                    end < w[1].0 && text.contains(&end)
                })
                .map(|w| w[0].clone())
                .expect("libc's .text has internal functions between its exports");
            let near = info.symbol_at(addr + size).expect("named");
            assert_eq!(near.name, &*name, "{path}");
            assert_eq!(near.offset, size, "{path}");
            assert!(near.nearest_export, "{path}");
            let exact = info.symbol_at(addr).expect("named");
            assert!(
                !exact.nearest_export && exact.offset == 0,
                "{path}: {exact:?}"
            );
            // Outside .text nothing is named.
            assert!(info.symbol_at(text.end + 0x10_0000).is_none(), "{path}");
            checked += 1;
        }
        assert!(checked > 0, "no stripped libc found");
    }
}
