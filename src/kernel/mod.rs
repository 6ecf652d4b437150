//! Waits the kernel can explain, from `/proc` text: which syscall a thread is blocked in
//! (`syscalls`), file locks and who holds them (`file_locks`), what a read descriptor is
//! connected to (`input`), the peer of a local TCP connection (`sockets`). It knows no
//! Python and no snapshot: callers link what it finds.

pub mod file_locks;
pub mod input;
pub mod sockets;
pub mod syscalls;
