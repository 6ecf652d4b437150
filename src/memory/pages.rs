//! The page cache of one snapshot of a live process: which parts of the target's memory a
//! snapshot has read, kept so that every read of the same bytes in that snapshot sees the
//! same value, and fetched in as few kernel calls and as few copied bytes as can be.
//!
//! A read that misses fetches its whole page (`pread` of `/proc/PID/mem`). At its end a
//! snapshot remembers which 256-byte blocks of each page it used; the next one begins by
//! fetching exactly those blocks, in one `process_vm_readv` call for up to `IOV_MAX` ranges.
//! (Every page fetched ahead is used again: measured on a 21-thread target, 143 pages a
//! snapshot, none unused; the kernel's cost is pinning each page, the copy is the rest.)
//! A busy target's snapshots read mostly the same places (thread states, frames, code, the
//! locks' objects), and copying whole pages was most of the cost of reading them (measured:
//! `_copy_to_iter` a quarter of a snapshot's CPU with whole pages). A block filled later in
//! the snapshot (a page read whole after its blocks were fetched) never changes a block
//! already served. It reads nothing of gridlock but the cost split's counter.

use std::cell::Cell;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::addr_map::AddrMap;

pub(super) const PAGE: usize = 4096;
const BLOCK: usize = 256;
/// A set of a page's blocks (bit `i`: bytes `i * BLOCK ..`).
type Blocks = u16;
const BLOCKS: usize = PAGE / BLOCK;
/// All blocks of a page.
const WHOLE: Blocks = Blocks::MAX;
/// At most this many pages of the last snapshot are fetched ahead when a snapshot begins.
const PREFETCH_MAX: usize = 2048;
/// `process_vm_readv` takes at most `IOV_MAX` ranges per call.
const IOV_MAX: usize = 1024;

struct Page {
    bytes: Box<[u8]>,
    /// The blocks read (bit `i`: bytes `i * BLOCK ..`).
    valid: Blocks,
    /// The blocks this snapshot served.
    used: Blocks,
}

#[derive(Default)]
pub(super) struct PageCache {
    /// Pages of the current snapshot (`None`: not readable); `None` between snapshots.
    pages: Option<AddrMap<Option<Page>>>,
    /// Page buffers of earlier snapshots, reused (no allocation or zeroing per page).
    spare: Vec<Box<[u8]>>,
    /// The blocks the last snapshot used, by page.
    last: Vec<(usize, Blocks)>,
    /// The last snapshot's map of pages, emptied: reused with its capacity (no rehashing
    /// while a snapshot's 150 pages go in).
    spare_map: AddrMap<Option<Page>>,
    /// Whether `process_vm_readv` was refused or is missing (seccomp): pages are then read
    /// one at a time for the rest of the session.
    no_vm_readv: Cell<bool>,
}

/// The blocks of a page that bytes `from..from + len` touch (`len` > 0).
fn blocks(from: usize, len: usize) -> Blocks {
    let first = from / BLOCK;
    let last = (from + len - 1) / BLOCK;
    let upto = if last >= BLOCKS - 1 {
        WHOLE
    } else {
        (1 << (last + 1)) - 1
    };
    upto & !((1 << first) - 1)
}

impl PageCache {
    /// Start a snapshot: fetch the blocks the last one used.
    pub(super) fn begin(&mut self, pid: i32) {
        let mut pages = std::mem::take(&mut self.spare_map);
        let wanted = std::mem::take(&mut self.last);
        if !self.no_vm_readv.get() && !wanted.is_empty() {
            self.prefetch(pid, &wanted, &mut pages);
        }
        self.pages = Some(pages);
    }

    /// End a snapshot: remember the blocks it used, keep its buffers.
    pub(super) fn end(&mut self) {
        let Some(mut pages) = self.pages.take() else {
            return;
        };
        self.last.clear();
        for (base, page) in pages.drain() {
            let Some(page) = page else { continue };
            if page.used != 0 && self.last.len() < PREFETCH_MAX {
                self.last.push((base, page.used));
            }
            self.spare.push(page.bytes);
        }
        self.spare_map = pages;
    }

    pub(super) fn release_spare(&mut self) {
        self.spare = Vec::new();
        self.spare_map = AddrMap::default();
    }

    /// Drop the pages holding `addr..addr + len` from this snapshot: their next reads fetch
    /// them again. (Blocks already served may then change: asked for by a reader that saw a
    /// running thread's memory halfway through a change, where the older view is the wrong one.)
    pub(super) fn forget(&mut self, addr: usize, len: usize) {
        let Some(pages) = self.pages.as_mut() else {
            return;
        };
        let first = addr & !(PAGE - 1);
        let last = addr.saturating_add(len.max(1) - 1) & !(PAGE - 1);
        let mut base = first;
        loop {
            if let Some(Some(page)) = pages.remove(&base) {
                self.spare.push(page.bytes);
            }
            if base >= last {
                break;
            }
            base += PAGE;
        }
    }

    fn buffer(&mut self) -> Box<[u8]> {
        self.spare
            .pop()
            .unwrap_or_else(|| vec![0u8; PAGE].into_boxed_slice())
    }

    /// Serve a read from the cache, fetching what it lacks; false when a page cannot be read
    /// whole (the caller's direct read then reports the precise error) or outside a snapshot.
    pub(super) fn read(&mut self, file: &File, addr: usize, buf: &mut [u8]) -> bool {
        if self.pages.is_none() {
            return false;
        }
        let mut done = 0;
        while done < buf.len() {
            let at = addr.wrapping_add(done);
            let base = at & !(PAGE - 1);
            let from = at - base;
            let n = (PAGE - from).min(buf.len() - done);
            let want = blocks(from, n);
            // The common case first: a page already there with the blocks wanted (one lookup).
            match self.pages.as_mut().and_then(|p| p.get_mut(&base)) {
                Some(Some(page)) if page.valid & want == want => {
                    page.used |= want;
                    buf[done..done + n].copy_from_slice(&page.bytes[from..from + n]);
                    done += n;
                    continue;
                }
                Some(None) => return false,
                _ => {}
            }
            if !self.fill(file, base) {
                return false;
            }
            let Some(Some(page)) = self.pages.as_mut().and_then(|p| p.get_mut(&base)) else {
                return false;
            };
            page.used |= want;
            buf[done..done + n].copy_from_slice(&page.bytes[from..from + n]);
            done += n;
        }
        true
    }

    /// Read the page at `base` whole, keeping the blocks already there as they were served.
    fn fill(&mut self, file: &File, base: usize) -> bool {
        let mut fresh = self.buffer();
        crate::cost_split::memory_read();
        let ok = matches!(file.read_at(&mut fresh, base as u64), Ok(n) if n == PAGE);
        let pages = self.pages.as_mut().expect("in a snapshot");
        match pages.get_mut(&base) {
            Some(Some(page)) if ok => {
                for i in (0..BLOCKS).filter(|i| page.valid & (1 << i) == 0) {
                    let r = i * BLOCK..(i + 1) * BLOCK;
                    page.bytes[r.clone()].copy_from_slice(&fresh[r]);
                }
                page.valid = WHOLE;
                self.spare.push(fresh);
            }
            Some(Some(_)) => self.spare.push(fresh),
            _ if ok => {
                pages.insert(
                    base,
                    Some(Page {
                        bytes: fresh,
                        valid: WHOLE,
                        used: 0,
                    }),
                );
            }
            _ => {
                pages.insert(base, None);
                self.spare.push(fresh);
            }
        }
        ok
    }

    /// Fetch the `wanted` blocks of each page, as many ranges per call as the kernel takes.
    /// A range that cannot be read (unmapped since) is skipped: read on demand, its page
    /// reports its own error. The call checks the same permission as opening
    /// `/proc/PID/mem` did (`PTRACE_MODE_ATTACH_REALCREDS`).
    fn prefetch(
        &mut self,
        pid: i32,
        wanted: &[(usize, Blocks)],
        pages: &mut AddrMap<Option<Page>>,
    ) {
        let mut fetched: Vec<Page> = Vec::with_capacity(wanted.len());
        // Per range: the page it fills (index in `fetched`), its blocks, local and remote.
        let mut ranges: Vec<(usize, Blocks, libc::iovec, libc::iovec)> = Vec::new();
        for &(base, used) in wanted {
            let mut bytes = self.buffer();
            let mut i = 0;
            while i < BLOCKS {
                if used & (1 << i) == 0 {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < BLOCKS && used & (1 << i) != 0 {
                    i += 1;
                }
                let (off, len) = (start * BLOCK, (i - start) * BLOCK);
                let mask = blocks(off, len);
                let local = libc::iovec {
                    // SAFETY (of the later call): the buffer is owned by `fetched` and not
                    // moved (a boxed slice) until the calls are done.
                    iov_base: bytes[off..].as_mut_ptr().cast(),
                    iov_len: len,
                };
                let remote = libc::iovec {
                    iov_base: (base + off) as *mut libc::c_void,
                    iov_len: len,
                };
                ranges.push((fetched.len(), mask, local, remote));
            }
            fetched.push(Page {
                bytes,
                valid: 0,
                used: 0,
            });
        }
        let mut start = 0;
        while start < ranges.len() {
            let end = (start + IOV_MAX).min(ranges.len());
            let local: Vec<libc::iovec> = ranges[start..end].iter().map(|r| r.2).collect();
            let remote: Vec<libc::iovec> = ranges[start..end].iter().map(|r| r.3).collect();
            crate::cost_split::memory_read();
            // SAFETY: each local range lies in a page buffer of `fetched`, alive and unmoved
            // for the call; the remote ranges are only read, by the kernel, which checks them.
            let n = unsafe {
                libc::process_vm_readv(
                    pid,
                    local.as_ptr(),
                    local.len() as libc::c_ulong,
                    remote.as_ptr(),
                    remote.len() as libc::c_ulong,
                    0,
                )
            };
            if n < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error();
                if matches!(errno, Some(libc::ENOSYS | libc::EPERM)) {
                    self.no_vm_readv.set(true);
                    break;
                }
                if errno == Some(libc::EFAULT) {
                    // The first range faults (unmapped since): skip it, fetch the rest.
                    start += 1;
                    continue;
                }
                break;
            }
            // Ranges are filled in order up to the first that faults.
            let mut left = n as usize;
            let mut next = end;
            for (k, r) in ranges[start..end].iter().enumerate() {
                if left < r.2.iov_len {
                    next = start + k + 1;
                    break;
                }
                left -= r.2.iov_len;
                fetched[r.0].valid |= r.1;
            }
            start = next;
        }
        for (page, &(base, _)) in fetched.into_iter().zip(wanted) {
            if page.valid == 0 {
                self.spare.push(page.bytes);
            } else {
                pages.insert(base, Some(page));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_bytes_touched() {
        assert_eq!(blocks(0, 1), 0b1);
        assert_eq!(blocks(0, BLOCK), 0b1);
        assert_eq!(blocks(BLOCK - 1, 2), 0b11);
        assert_eq!(blocks(2 * BLOCK, 8), 0b100);
        assert_eq!(blocks(PAGE - 96, 96), 1 << (BLOCKS - 1));
        assert_eq!(blocks(0, PAGE), WHOLE);
        // From the second block's second byte to the end of the last but one block.
        assert_eq!(blocks(BLOCK + 1, PAGE - 2 * BLOCK - 1), (WHOLE >> 1) & !1);
        assert_eq!(blocks(BLOCK + 1, PAGE - BLOCK - 1), WHOLE & !1);
    }
}
