//! Which build of a binary this is: the GNU build id (`NT_GNU_BUILD_ID`) of an ELF image,
//! read through its program headers' `PT_NOTE` segments, whether the image is a file on disk
//! or the first page a core kept of a mapped binary. Every size is bounded; a malformed image
//! has no build id.

use goblin::container::{Container, Ctx};
use goblin::elf::program_header::{ProgramHeader, PT_NOTE};
use goblin::elf::Elf;

use super::notes;

const ELF_HEADER: usize = 64;
const MAX_PROGRAM_HEADERS: usize = 256;
/// Note segments of real binaries are a few hundred bytes.
const MAX_NOTE_SEGMENT: u64 = 64 << 10;

/// The build id of the image whose bytes at file offset `at` `read` returns (`None`: not
/// there), if it has one.
pub fn build_id(read: &dyn Fn(u64, usize) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    let head = read(0, ELF_HEADER)?;
    let header = Elf::parse_header(&head).ok()?;
    if header.container().ok()? != Container::Big {
        return None;
    }
    let ctx = Ctx::new(Container::Big, header.endianness().ok()?);
    let count = header.e_phnum as usize;
    if count == 0 || count > MAX_PROGRAM_HEADERS {
        return None;
    }
    let table = read(header.e_phoff, count * ProgramHeader::size(ctx))?;
    let headers = ProgramHeader::parse(&table, 0, count, ctx).ok()?;
    headers
        .iter()
        .filter(|p| p.p_type == PT_NOTE && p.p_filesz <= MAX_NOTE_SEGMENT)
        .find_map(|p| {
            let bytes = read(p.p_offset, p.p_filesz as usize)?;
            notes::build_id(&notes::parse_notes(&bytes).ok()?)
        })
}

/// A build id as tools print it.
pub fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_this_test_binarys_build_id_or_none_in_garbage() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let read = |at: u64, len: usize| {
            exe.get(at as usize..(at as usize).checked_add(len)?)
                .map(|b| b.to_vec())
        };
        // Rust binaries are linked with a build id on Debian's toolchain; either way no panic.
        if let Some(id) = build_id(&read) {
            assert!(id.len() >= 16, "{}", hex(&id));
        }
        let junk = vec![0x7fu8; 4096];
        let read_junk = |at: u64, len: usize| {
            junk.get(at as usize..(at as usize).checked_add(len)?)
                .map(|b| b.to_vec())
        };
        assert_eq!(build_id(&read_junk), None);
    }
}
