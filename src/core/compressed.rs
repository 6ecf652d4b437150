//! Cores as systemd-coredump stores them: compressed whole with zstd, lz4 or xz
//! (`/var/lib/systemd/coredump/core.*.zst`). Recognised by their magic bytes, never by name.
//! A plain core is passed through untouched.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const LZ4: &[u8] = &[0x04, 0x22, 0x4d, 0x18];
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];

/// The compression a file's first bytes announce, if any.
pub fn compression(head: &[u8]) -> Option<&'static str> {
    [(ZSTD, "zstd"), (LZ4, "lz4"), (XZ, "xz")]
        .into_iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, name)| name)
}

/// `file` itself when it is not compressed; else the reason it cannot be read (one clause).
pub fn plain(file: File, _path: &Path) -> Result<File, String> {
    let mut head = [0u8; 8];
    let n = file.read_at(&mut head, 0).map_err(|e| e.to_string())?;
    match compression(&head[..n]) {
        None => Ok(file),
        Some(kind) => Err(format!(
            "it is compressed with {kind}; unpack it first (coredumpctl dump PID --output FILE)"
        )),
    }
}
