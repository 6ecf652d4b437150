//! What the notes of an x86-64 Linux ELF core say: each thread's registers (`NT_PRSTATUS`),
//! the process's name, command line and pid (`NT_PRPSINFO`), the mapped files (`NT_FILE`) and
//! the auxiliary vector (`NT_AUXV`). Pure functions over note bytes: every count, size and
//! offset is checked against the bytes at hand, so corrupt input is an error, never a panic.
//! It knows nothing of segments or memory reads.

/// Why a core's bytes cannot be taken for what they claim (becomes `Error::BadCore`).
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    Malformed(String),
}

pub const NT_PRSTATUS: u32 = 1;
pub const NT_PRPSINFO: u32 = 3;
pub const NT_AUXV: u32 = 6;
/// `NT_FILE`: "FILE" in ASCII.
pub const NT_FILE: u32 = 0x4649_4c45;
pub const NT_GNU_BUILD_ID: u32 = 3;

/// `AT_ENTRY`: the executable's entry point.
pub const AT_ENTRY: u64 = 9;

/// More mapped files than a real process has (the kernel's own limit is `vm.max_map_count`,
/// 65530 by default, and `NT_FILE` is capped far below the note budget).
const MAX_FILES: u64 = 1 << 20;

/// One note: owner name, type, contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    u32_at(b, at).map(|v| v as i32)
}

/// The notes of one `PT_NOTE` segment (4-byte aligned entries, as Linux writes them).
pub fn parse_notes(bytes: &[u8]) -> Result<Vec<Note<'_>>, CoreError> {
    let bad = |why: &str| CoreError::Malformed(format!("a note segment is corrupt ({why})"));
    let mut notes = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let (Some(namesz), Some(descsz), Some(kind)) = (
            u32_at(bytes, at),
            u32_at(bytes, at + 4),
            u32_at(bytes, at + 8),
        ) else {
            return Err(bad("a note header is cut short"));
        };
        let name_at = at + 12;
        let name_end = name_at
            .checked_add(namesz as usize)
            .ok_or_else(|| bad("name size"))?;
        let desc_at = align4(name_end).ok_or_else(|| bad("name size"))?;
        let desc_end = desc_at
            .checked_add(descsz as usize)
            .ok_or_else(|| bad("contents size"))?;
        let (Some(name), Some(desc)) = (bytes.get(name_at..name_end), bytes.get(desc_at..desc_end))
        else {
            return Err(bad("a note runs past the segment"));
        };
        // The name's terminating NUL is counted in its size.
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        notes.push(Note { name, kind, desc });
        at = align4(desc_end).ok_or_else(|| bad("contents size"))?;
    }
    Ok(notes)
}

/// x86-64 `struct user_regs_struct`, the registers a thread stopped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Registers {
    pub rip: u64,
    pub rsp: u64,
    /// The syscall the thread was in (`-1`: none).
    pub orig_rax: i64,
    pub rax: u64,
    /// A syscall's arguments in order: rdi, rsi, rdx, r10, r8, r9.
    pub args: [u64; 6],
    pub fs_base: u64,
}

/// One thread of the core (`NT_PRSTATUS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreThread {
    pub tid: i32,
    /// The signal that stopped it (the one that dumped the core, for the thread that took it).
    pub signal: i16,
    pub registers: Registers,
}

/// `struct elf_prstatus` on x86-64: `pr_cursig` at 12, `pr_pid` at 32, `pr_reg` at 112
/// (27 registers), 336 bytes in all.
const PRSTATUS_SIZE: usize = 336;
const PR_REG: usize = 112;

pub fn parse_prstatus(desc: &[u8]) -> Result<CoreThread, CoreError> {
    if desc.len() < PRSTATUS_SIZE {
        return Err(CoreError::Malformed(format!(
            "a thread's status note is {} bytes, not the {PRSTATUS_SIZE} of x86-64 Linux",
            desc.len()
        )));
    }
    let reg = |i: usize| u64_at(desc, PR_REG + 8 * i).unwrap_or(0);
    // user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax
    // rip cs eflags rsp ss fs_base gs_base ds es fs gs.
    let registers = Registers {
        rip: reg(16),
        rsp: reg(19),
        orig_rax: reg(15) as i64,
        rax: reg(10),
        args: [reg(14), reg(13), reg(12), reg(7), reg(9), reg(8)],
        fs_base: reg(21),
    };
    Ok(CoreThread {
        tid: i32_at(desc, 32).unwrap_or(0),
        signal: u32_at(desc, 12).map(|v| v as u16 as i16).unwrap_or(0),
        registers,
    })
}

/// The process as `NT_PRPSINFO` names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    /// The executable's name, at most 15 bytes (`comm`).
    pub name: String,
    /// The command line's first 80 bytes, arguments separated by spaces.
    pub args: String,
}

/// `struct elf_prpsinfo` on x86-64: `pr_pid` at 24, `pr_ppid` at 28, `pr_fname[16]` at 40,
/// `pr_psargs[80]` at 56: 136 bytes.
const PRPSINFO_SIZE: usize = 136;

pub fn parse_prpsinfo(desc: &[u8]) -> Result<ProcessInfo, CoreError> {
    if desc.len() < PRPSINFO_SIZE {
        return Err(CoreError::Malformed(format!(
            "the process note is {} bytes, not the {PRPSINFO_SIZE} of x86-64 Linux",
            desc.len()
        )));
    }
    let text = |from: usize, len: usize| {
        let raw = &desc[from..from + len];
        let end = raw.iter().position(|b| *b == 0).unwrap_or(len);
        String::from_utf8_lossy(&raw[..end]).trim_end().to_string()
    };
    Ok(ProcessInfo {
        pid: i32_at(desc, 24).unwrap_or(0),
        ppid: i32_at(desc, 28).unwrap_or(0),
        name: text(40, 16),
        args: text(56, 80),
    })
}

/// One file mapping of `NT_FILE`: `[start, end)` maps the file from byte `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

/// `NT_FILE`: count, page size, `count` (start, end, page offset) triples, then `count`
/// NUL-terminated paths.
pub fn parse_nt_file(desc: &[u8]) -> Result<Vec<FileMapping>, CoreError> {
    let bad = |why: &str| CoreError::Malformed(format!("the mapped-files note is corrupt ({why})"));
    let count = u64_at(desc, 0).ok_or_else(|| bad("cut short"))?;
    let page = u64_at(desc, 8).ok_or_else(|| bad("cut short"))?;
    if count > MAX_FILES || count.saturating_mul(24) > desc.len() as u64 {
        return Err(bad("more entries than it has bytes for"));
    }
    let count = count as usize;
    let mut names = desc[16 + 24 * count..].split(|b| *b == 0);
    let mut files = Vec::with_capacity(count);
    for i in 0..count {
        let at = 16 + 24 * i;
        let (start, end, pages) = (
            u64_at(desc, at).unwrap_or(0),
            u64_at(desc, at + 8).unwrap_or(0),
            u64_at(desc, at + 16).unwrap_or(0),
        );
        let name = names
            .next()
            .ok_or_else(|| bad("fewer paths than entries"))?;
        if end < start {
            return Err(bad("a mapping ends before it starts"));
        }
        files.push(FileMapping {
            start,
            end,
            offset: pages
                .checked_mul(page)
                .ok_or_else(|| bad("offset overflows"))?,
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Ok(files)
}

/// The auxiliary vector: (type, value) pairs up to `AT_NULL`.
pub fn parse_auxv(desc: &[u8]) -> Vec<(u64, u64)> {
    desc.chunks_exact(16)
        .map(|c| (u64_at(c, 0).unwrap_or(0), u64_at(c, 8).unwrap_or(0)))
        .take_while(|(kind, _)| *kind != 0)
        .collect()
}

/// The GNU build id among `notes`, if one is there.
pub fn build_id(notes: &[Note]) -> Option<Vec<u8>> {
    notes
        .iter()
        .find(|n| n.kind == NT_GNU_BUILD_ID && n.name == b"GNU")
        .map(|n| n.desc.to_vec())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One note as Linux lays it out.
    pub fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(name);
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(desc);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    pub fn prstatus(tid: i32, orig_rax: i64, args: [u64; 3]) -> Vec<u8> {
        let mut d = vec![0u8; PRSTATUS_SIZE];
        d[32..36].copy_from_slice(&tid.to_le_bytes());
        let mut put = |i: usize, v: u64| {
            d[PR_REG + 8 * i..PR_REG + 8 * i + 8].copy_from_slice(&v.to_le_bytes())
        };
        put(15, orig_rax as u64);
        put(14, args[0]);
        put(13, args[1]);
        put(12, args[2]);
        put(16, 0x401000);
        put(19, 0x7ff0_0000);
        d
    }

    pub fn prpsinfo(pid: i32, name: &str, args: &str) -> Vec<u8> {
        let mut d = vec![0u8; PRPSINFO_SIZE];
        d[24..28].copy_from_slice(&pid.to_le_bytes());
        d[40..40 + name.len()].copy_from_slice(name.as_bytes());
        d[56..56 + args.len()].copy_from_slice(args.as_bytes());
        d
    }

    pub fn nt_file(entries: &[(u64, u64, u64, &str)]) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        d.extend_from_slice(&4096u64.to_le_bytes());
        for (start, end, pages, _) in entries {
            for v in [start, end, pages] {
                d.extend_from_slice(&v.to_le_bytes());
            }
        }
        for (_, _, _, path) in entries {
            d.extend_from_slice(path.as_bytes());
            d.push(0);
        }
        d
    }

    #[test]
    fn reads_threads_process_files_and_auxv() {
        let mut seg = note(
            b"CORE",
            NT_PRPSINFO,
            &prpsinfo(42, "python3", "python3 x.py"),
        );
        seg.extend(note(
            b"CORE",
            NT_PRSTATUS,
            &prstatus(43, 202, [0x1000, 0x189, 0]),
        ));
        seg.extend(note(
            b"CORE",
            NT_FILE,
            &nt_file(&[(0x400000, 0x401000, 2, "/usr/bin/python3")]),
        ));
        let auxv: Vec<u8> = [AT_ENTRY, 0x401000, 0, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        seg.extend(note(b"CORE", NT_AUXV, &auxv));
        let notes = parse_notes(&seg).unwrap();
        assert_eq!(notes.len(), 4);
        assert_eq!(notes[0].name, b"CORE");
        let info = parse_prpsinfo(notes[0].desc).unwrap();
        assert_eq!((info.pid, info.name.as_str()), (42, "python3"));
        assert_eq!(info.args, "python3 x.py");
        let t = parse_prstatus(notes[1].desc).unwrap();
        assert_eq!(t.tid, 43);
        assert_eq!(t.registers.orig_rax, 202);
        assert_eq!(&t.registers.args[..3], &[0x1000, 0x189, 0]);
        let files = parse_nt_file(notes[2].desc).unwrap();
        assert_eq!(files[0].offset, 2 * 4096);
        assert_eq!(files[0].path, "/usr/bin/python3");
        assert_eq!(parse_auxv(notes[3].desc), vec![(AT_ENTRY, 0x401000)]);
    }

    #[test]
    fn refuses_short_and_lying_notes() {
        assert!(parse_prstatus(&[0u8; 100]).is_err());
        assert!(parse_prpsinfo(&[0u8; 10]).is_err());
        // Claims a million entries in 40 bytes.
        let mut lying = nt_file(&[(1, 2, 0, "a")]);
        lying[..8].copy_from_slice(&1_000_000u64.to_le_bytes());
        assert!(parse_nt_file(&lying).is_err());
        // A note whose contents run past the segment.
        let mut seg = note(b"CORE", NT_PRSTATUS, &[0u8; 16]);
        seg.truncate(seg.len() - 8);
        assert!(parse_notes(&seg).is_err());
        let mut huge = note(b"CORE", 1, &[]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_notes(&huge).is_err());
    }
}
