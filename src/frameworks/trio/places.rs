//! Whose code a frame of a trio task runs (trio's, anyio's or the program's) and which of
//! trio's functions, where that tells what the task waits on: decided from a code object's
//! file and name alone (once per code object by the caller), reading nothing.

use crate::model::short_file;

/// Whose code a frame runs: trio's, anyio's or the program's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Trio,
    Anyio,
    Program,
}

/// Which of trio's functions a frame of trio's runs, where it tells what a task waits on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// `trio.sleep`, `sleep_until`, `sleep_forever`.
    Sleep,
    /// A wait in the I/O manager (`_io_*.py`).
    Io,
    /// A nursery waiting for its children (`_nested_child_finished`).
    NurseryWait,
    /// A primitive's `acquire`, `acquire_on_behalf_of` or `wait` (`_sync.py`).
    Primitive,
    /// `ParkingLot.park`.
    Park,
    /// A memory channel's `send` or `receive`.
    Channel,
    Other,
}

impl Role {
    pub(super) fn of(filename: &str, qualname: &str) -> Role {
        let function = qualname.rsplit('.').next().unwrap_or("");
        match (short_file(filename), function) {
            ("_timeouts.py", "sleep" | "sleep_until" | "sleep_forever") => Role::Sleep,
            (f, _) if f.starts_with("_io_") => Role::Io,
            ("_run.py", "_nested_child_finished") => Role::NurseryWait,
            ("_sync.py", "acquire" | "acquire_on_behalf_of" | "wait") => Role::Primitive,
            ("_parking_lot.py", "park") => Role::Park,
            ("_channel.py", "send" | "receive") => Role::Channel,
            _ => Role::Other,
        }
    }
}

/// One of trio's own files (`trio/_sync.py`, `trio/_core/_run.py`): every module of the
/// package is private (`_` first), so a program under a directory named `trio` is not one.
pub(super) fn in_trio(filename: &str) -> bool {
    filename.contains("/trio/_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trio_functions_that_tell_a_wait_are_told_by_file_and_name() {
        let lib = "/venv/lib/python3.12/site-packages/trio";
        for (file, name, role) in [
            ("_sync.py", "Event.wait", Role::Primitive),
            (
                "_sync.py",
                "CapacityLimiter.acquire_on_behalf_of",
                Role::Primitive,
            ),
            ("_sync.py", "Lock.release", Role::Other),
            (
                "_core/_io_epoll.py",
                "EpollIOManager.wait_readable",
                Role::Io,
            ),
            ("_timeouts.py", "sleep_forever", Role::Sleep),
            ("_timeouts.py", "fail_after", Role::Other),
            ("_core/_parking_lot.py", "ParkingLot.park", Role::Park),
            ("_channel.py", "MemoryReceiveChannel.receive", Role::Channel),
            (
                "_core/_run.py",
                "Nursery._nested_child_finished",
                Role::NurseryWait,
            ),
            ("_core/_run.py", "unrolled_run", Role::Other),
        ] {
            let path = format!("{lib}/{file}");
            assert!(in_trio(&path), "{path}");
            assert!(Role::of(&path, name) == role, "{path} {name}");
        }
        // A program's own module under a directory named trio is not trio's.
        assert!(!in_trio("/home/me/trio/app.py"));
    }
}
