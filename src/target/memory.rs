//! Read-only access to another process's memory through `/proc/PID/mem`.
//! Never writes, never stops the target: a positioned read per request.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Error, Result};

pub struct Memory {
    pid: i32,
    file: File,
}

impl Memory {
    pub fn open(pid: i32) -> Result<Memory> {
        match File::open(format!("/proc/{pid}/mem")) {
            Ok(file) => Ok(Memory { pid, file }),
            Err(e) => Err(match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ESRCH) => Error::NoSuchProcess { pid },
                Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                    pid,
                    hint: crate::error::permission_hint(),
                },
                _ => Error::Io(e),
            }),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn read_into(&self, addr: usize, buf: &mut [u8]) -> Result<()> {
        if addr == 0 {
            return Err(self.error(addr, buf.len(), std::io::Error::other("null pointer")));
        }
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], (addr + done) as u64) {
                Ok(0) => {
                    return Err(self.error(addr, buf.len(), std::io::Error::other("short read")))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if !std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
                        return Err(Error::TargetExited { pid: self.pid });
                    }
                    return Err(self.error(addr, buf.len(), e));
                }
            }
        }
        Ok(())
    }

    fn error(&self, addr: usize, len: usize, source: std::io::Error) -> Error {
        Error::Memory {
            pid: self.pid,
            addr,
            len,
            source,
        }
    }

    pub fn bytes(&self, addr: usize, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_into(addr, &mut buf)?;
        Ok(buf)
    }

    pub fn u64(&self, addr: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_into(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn ptr(&self, addr: usize) -> Result<usize> {
        Ok(self.u64(addr)? as usize)
    }

    pub fn i64(&self, addr: usize) -> Result<i64> {
        Ok(self.u64(addr)? as i64)
    }

    pub fn i32(&self, addr: usize) -> Result<i32> {
        let mut b = [0u8; 4];
        self.read_into(addr, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    pub fn u16(&self, addr: usize) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read_into(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub fn u8(&self, addr: usize) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_into(addr, &mut b)?;
        Ok(b[0])
    }
}
