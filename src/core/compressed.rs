//! Cores as systemd-coredump stores them: compressed whole with zstd, lz4 or xz
//! (`/var/lib/systemd/coredump/core.*.zst`). Recognised by their magic bytes, never by name,
//! and unpacked (pure-Rust decoders) into an unnamed temporary file that disappears with
//! gridlock; the unpacked size is bounded. A plain core is passed through untouched.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const LZ4: &[u8] = &[0x04, 0x22, 0x4d, 0x18];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// Larger than any core gridlock is asked to read; a file that unpacks to more is refused
/// rather than allowed to fill the disk.
const MAX_UNPACKED: u64 = 64 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Zstd,
    Lz4,
    Xz,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
            Compression::Xz => "xz",
        }
    }
}

/// The compression a file's first bytes announce, if any.
pub fn compression(head: &[u8]) -> Option<Compression> {
    [
        (ZSTD, Compression::Zstd),
        (LZ4, Compression::Lz4),
        (XZ, Compression::Xz),
    ]
    .into_iter()
    .find(|(magic, _)| head.starts_with(magic))
    .map(|(_, c)| c)
}

/// `file` itself when it is not compressed, else its unpacked bytes in a temporary file; or
/// why it cannot be read (one clause).
pub fn plain(file: File, _path: &Path) -> Result<File, String> {
    let mut head = [0u8; 8];
    let n = file.read_at(&mut head, 0).map_err(|e| e.to_string())?;
    match compression(&head[..n]) {
        None => Ok(file),
        Some(kind) => unpack(file, kind).map_err(|e| {
            format!(
                "it is compressed with {} and cannot be unpacked ({e})",
                kind.name()
            )
        }),
    }
}

fn unpack(file: File, kind: Compression) -> std::io::Result<File> {
    let mut out = Bounded {
        file: unnamed_temp_file()?,
        written: 0,
    };
    let mut input = BufReader::new(file);
    match kind {
        Compression::Zstd => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(&mut input)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            std::io::copy(&mut d, &mut out)?;
        }
        Compression::Lz4 => {
            let mut d = lz4_flex::frame::FrameDecoder::new(input);
            std::io::copy(&mut d, &mut out)?;
        }
        Compression::Xz => {
            lzma_rs::xz_decompress(&mut input, &mut out)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
    }
    let mut file = out.file;
    file.flush()?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// A file in the temporary folder, unlinked at once: it lives as long as gridlock holds it.
fn unnamed_temp_file() -> std::io::Result<File> {
    let dir = std::env::temp_dir();
    for n in 0..100u32 {
        let path = dir.join(format!(".gridlock-core-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                std::fs::remove_file(&path)?;
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

/// A writer that refuses to grow past `MAX_UNPACKED`.
struct Bounded {
    file: File,
    written: u64,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > MAX_UNPACKED {
            return Err(std::io::Error::other(format!(
                "it unpacks to more than {} GiB",
                MAX_UNPACKED >> 30
            )));
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn unpacks_what_the_tools_packed_and_refuses_garbage() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 7) as u8).collect();
        let dir = std::env::temp_dir();
        let plain_path = dir.join(format!("gridlock-pack-{}", std::process::id()));
        std::fs::write(&plain_path, &data).unwrap();
        for (tool, ext) in [("zstd", "zst"), ("lz4", "lz4"), ("xz", "xz")] {
            let packed = plain_path.with_extension(ext);
            let ok = std::process::Command::new(tool)
                .args(["-q", "-f", "-c"])
                .arg(&plain_path)
                .stdout(File::create(&packed).unwrap())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("note: {tool} is not installed: its unpacking is not tested");
                continue;
            }
            let mut got = Vec::new();
            plain(File::open(&packed).unwrap(), &packed)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert!(got == data, "{tool}: {} bytes back", got.len());
            // Cut in half: an error, not a panic.
            let bytes = std::fs::read(&packed).unwrap();
            std::fs::write(&packed, &bytes[..bytes.len() / 2]).unwrap();
            assert!(
                plain(File::open(&packed).unwrap(), &packed).is_err(),
                "{tool}"
            );
            let _ = std::fs::remove_file(&packed);
        }
        let junk = plain_path.with_extension("junk");
        let mut bytes = ZSTD.to_vec();
        bytes.extend([0xffu8; 64]);
        std::fs::write(&junk, &bytes).unwrap();
        assert!(plain(File::open(&junk).unwrap(), &junk).is_err());
        let _ = std::fs::remove_file(junk);
        let _ = std::fs::remove_file(plain_path);
    }
}
