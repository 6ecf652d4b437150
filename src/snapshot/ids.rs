//! Ids of threads and locks in the report contract: scoped by process, because a forked child
//! repeats its parent's thread idents and lock addresses. Only formatting; no reads.

pub fn thread_id(pid: i32, ident: u64) -> String {
    format!("{pid}:t:{ident}")
}

pub fn lock_id(pid: i32, addr: usize) -> String {
    format!("{pid}:l:{addr:#x}")
}
