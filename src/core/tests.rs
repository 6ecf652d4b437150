//! Fake cores built byte by byte: what the parser reads from them, and that random or cut
//! bytes give an error, never a panic.

use super::notes::tests::{note, nt_file, prpsinfo, prstatus};
use super::notes::{NT_FILE, NT_PRPSINFO, NT_PRSTATUS};
use super::*;
use crate::memory::ReadMemory;
use proptest::prelude::*;

/// A core: ELF header, program headers (one note segment, then `loads` as (vaddr, bytes,
/// memsz)), the notes, then each segment's bytes.
fn fake_core(notes: &[u8], loads: &[(u64, Vec<u8>, u64)]) -> Vec<u8> {
    let phnum = 1 + loads.len();
    let mut data_at = 64 + 56 * phnum as u64;
    let mut out = vec![0u8; 64];
    out[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1]);
    out[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    out[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    out[52..54].copy_from_slice(&64u16.to_le_bytes());
    out[54..56].copy_from_slice(&56u16.to_le_bytes());
    out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    let mut ph = |ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
        for v in [ty, flags] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [off, vaddr, 0, filesz, memsz, 1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    ph(PT_NOTE, 4, data_at, 0, notes.len() as u64, 0);
    data_at += notes.len() as u64;
    for (vaddr, bytes, memsz) in loads {
        ph(PT_LOAD, 6, data_at, *vaddr, bytes.len() as u64, *memsz);
        data_at += bytes.len() as u64;
    }
    out.extend_from_slice(notes);
    for (_, bytes, _) in loads {
        out.extend_from_slice(bytes);
    }
    out
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("gridlock-fakecore-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn sample_notes(lib: &str) -> Vec<u8> {
    let mut n = note(
        b"CORE",
        NT_PRPSINFO,
        &prpsinfo(4242, "python3", "python3 app.py"),
    );
    n.extend(note(
        b"CORE",
        NT_PRSTATUS,
        &prstatus(4242, 202, [0x10_0000, 0x189, 0]),
    ));
    n.extend(note(b"CORE", NT_PRSTATUS, &prstatus(4243, -1, [0; 3])));
    n.extend(note(
        b"CORE",
        NT_FILE,
        &nt_file(&[(0x20_0000, 0x20_1000, 1, lib)]),
    ));
    n
}

#[test]
fn reads_threads_memory_and_mapped_files_of_a_fake_core() {
    let lib_bytes: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    let lib = write_temp("lib.so", &lib_bytes);
    let notes = sample_notes(lib.to_str().unwrap());
    let heap: Vec<u8> = (0..64).collect();
    // The heap is in the core; the library's page is left out (filesz 0).
    let bytes = fake_core(
        &notes,
        &[
            (0x10_0000, heap.clone(), 64),
            (0x20_0000, Vec::new(), 0x1000),
        ],
    );
    let path = write_temp("core", &bytes);
    let core = Core::open(&path, &CoreOptions::default()).unwrap();
    assert_eq!(core.process.pid, 4242);
    assert_eq!(core.process.args, "python3 app.py");
    let tids: Vec<i32> = core.threads.iter().map(|t| t.tid).collect();
    assert_eq!(tids, vec![4242, 4243]);
    let k = attach::kernel_thread(&core.threads[0]);
    assert_eq!(k.state, 'S');
    assert_eq!(
        k.syscall.as_ref().unwrap().futex_wait_addr(),
        Some(0x10_0000)
    );
    assert_eq!(attach::kernel_thread(&core.threads[1]).state, 'R');
    assert_eq!(
        core.memory.bytes(0x10_0010, 4).unwrap(),
        vec![16, 17, 18, 19]
    );
    // From the file at page offset 1.
    assert_eq!(core.memory.u8(0x20_0000).unwrap(), lib_bytes[4096]);
    assert!(
        core.memory.u8(0x30_0000).is_err(),
        "unmapped: an error, not zero"
    );
    let maps = core.maps();
    assert!(maps
        .iter()
        .any(|m| m.start == 0x20_0000 && m.offset == 4096 && m.inode != 0));
    assert!(maps.iter().any(|m| m.start == 0x10_0000 && m.inode == 0));
    // The same file under a sysroot that does not hold it: opened nowhere, reads fail.
    let rooted = Core::open(
        &path,
        &CoreOptions {
            sysroot: Some("/nonexistent-root".into()),
            executable: None,
        },
    )
    .unwrap();
    assert!(rooted.files[0].missing.is_some());
    assert!(rooted.memory.u8(0x20_0000).is_err());
    let _ = std::fs::remove_file(lib);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_stack_the_core_holds_as_zeros_reads_as_lost_not_as_zeros() {
    // Both sample threads' stack pointers are 0x7ff0_0000: in a segment of zeros (a writer
    // that could not read it), then in one whose bytes above the stack pointer are real.
    let notes = sample_notes("/nonexistent");
    let stack_at = 0x7fef_f000;
    let zeros = fake_core(&notes, &[(stack_at, vec![0; 8192], 8192)]);
    let path = write_temp("zero-stack", &zeros);
    let core = Core::open(&path, &CoreOptions::default()).unwrap();
    assert_eq!(core.lost_stacks, vec![4242, 4243]);
    let err = core.memory.u64(0x7ff0_0000).unwrap_err().to_string();
    assert!(err.contains("could not read"), "{err}");
    assert!(!core.memory.read_dumped(stack_at, &mut [0u8; 8]));

    let mut real = vec![0u8; 8192];
    real[0x1000 + 0x48] = 0x42; // a return address's byte, just above the stack pointer
    let dumped = fake_core(&notes, &[(stack_at, real, 8192)]);
    let path2 = write_temp("real-stack", &dumped);
    let core = Core::open(&path2, &CoreOptions::default()).unwrap();
    assert!(core.lost_stacks.is_empty());
    assert_eq!(core.memory.u8(0x7ff0_0048).unwrap(), 0x42);
    assert_eq!(core.memory.u8(0x7ff0_0000).unwrap(), 0);
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path2);
}

#[test]
fn truncated_random_and_non_core_files_are_one_sentence_errors() {
    let notes = sample_notes("/nonexistent");
    let bytes = fake_core(&notes, &[(0x10_0000, vec![1; 4096], 4096)]);
    let cut = write_temp("cut", &bytes[..bytes.len() - 100]);
    let err = Core::open(&cut, &CoreOptions::default()).unwrap_err();
    assert!(matches!(err, Error::BadCore { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    let exe = Core::open(Path::new("/proc/self/exe"), &CoreOptions::default()).unwrap_err();
    assert!(exe.to_string().contains("not a core"), "{exe}");
    let empty = write_temp("empty", &[]);
    let err = Core::open(&empty, &CoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not an ELF core"), "{err}");
    let zstd = write_temp("zst", &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    assert!(Core::open(&zstd, &CoreOptions::default()).is_err());
    for p in [cut, empty, zstd] {
        let _ = std::fs::remove_file(p);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes, and a real-shaped core cut or corrupted anywhere: an error or a core,
    /// never a panic; a core that opens answers reads without panicking.
    #[test]
    fn parser_never_panics(
        random in proptest::collection::vec(any::<u8>(), 0..2048),
        cut in 0usize..1200,
        flips in proptest::collection::vec((0usize..1200, any::<u8>()), 0..8),
    ) {
        let path = write_temp(&format!("prop-{}", cut), &random);
        let _ = Core::open(&path, &CoreOptions::default());
        let mut bytes = fake_core(&sample_notes("/nonexistent"), &[(0x10_0000, vec![7; 256], 256)]);
        for (at, b) in flips {
            if at < bytes.len() {
                bytes[at] = b;
            }
        }
        bytes.truncate(cut.min(bytes.len()));
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(core) = Core::open(&path, &CoreOptions::default()) {
            let _ = core.maps();
            let _ = core.memory.u64(0x10_0000);
            let _ = core.check_build_id("/nonexistent");
        }
        let _ = std::fs::remove_file(path);
    }

    /// Note bytes alone, random: parsed or refused, never a panic.
    #[test]
    fn note_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        if let Ok(list) = notes::parse_notes(&bytes) {
            for n in list {
                let _ = notes::parse_prstatus(n.desc);
                let _ = notes::parse_prpsinfo(n.desc);
                let _ = notes::parse_nt_file(n.desc);
                let _ = notes::parse_auxv(n.desc);
            }
        }
        let _ = notes::parse_nt_file(&bytes);
    }
}
