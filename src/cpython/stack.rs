//! One thread's frames, read whole from a process that keeps running: the walk of its frame
//! chain, and the reads again of a walk that met the thread halfway through a call. It knows
//! the frame layouts only through `Offsets`; it never stops the target (a pause here is
//! gridlock's own).

use super::layout::{InstructionPointer, Offsets, TopFrame};
use super::threads::{RawFrame, Walker, MAX_FRAMES};
use crate::error::{Error, Result};
use std::time::Duration;

/// Reads of one thread's stack before a cut walk is kept.
const STACK_READS: u32 = 8;
/// The pause before the first read again, doubled before each next one (a thread preempted
/// halfway through a call stays there until it runs again: reads in quick succession met
/// the same cut stack one time in four). At most 12.7 ms in all, for a thread cut every time.
const FIRST_PAUSE: Duration = Duration::from_micros(100);
/// The pauses one snapshot may take in all: past it a cut stack is kept as read (many
/// threads cut at once, or a chain cut for good, never hold a snapshot long).
const PAUSES_PER_SNAPSHOT: Duration = Duration::from_millis(25);

/// One walk of a thread's frames.
struct Walk {
    frames: Vec<RawFrame>,
    /// Whether it stopped short as a thread halfway through a call leaves its chain: at
    /// memory it cannot read, or at a null link before the chain's true end (the thread
    /// state's base frame, 3.15+; an entry frame the interpreter owns, 3.12-3.14, where
    /// every thread's chain ends at one). Reading again may find it whole.
    cut: bool,
    /// Why it stopped early, where memory failed (unreadable, or a chain with no end).
    ended: Option<Error>,
    /// Where it read the links it followed (address, length): what a new walk reads again.
    read_at: Vec<(usize, usize)>,
}

/// The bytes from a frame's start that hold every field a walk reads of it.
fn frame_head_len(offs: &Offsets) -> usize {
    let instruction = match offs.frame_instruction {
        InstructionPointer::LastiBytes(off)
        | InstructionPointer::LastiUnits(off)
        | InstructionPointer::Pointer(off) => off,
    };
    [
        offs.frame_back,
        offs.frame_code,
        offs.frame_owner.unwrap_or(0),
        instruction,
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
        + 8
}

impl<'a> Walker<'a> {
    /// A thread's innermost frame, and the places its link was read from.
    fn top_frame(&self, tstate: usize) -> Result<(usize, Vec<(usize, usize)>)> {
        let mem = self.objs.mem;
        match self.objs.layout.offsets.tstate_top_frame {
            TopFrame::Direct(off) => Ok((mem.ptr(tstate + off)?, vec![(tstate + off, 8)])),
            TopFrame::ViaCframe(cframe, current) => {
                let cf = mem.ptr(tstate + cframe)?;
                let mut read_at = vec![(tstate + cframe, 8)];
                if cf == 0 {
                    return Ok((0, read_at));
                }
                read_at.push((cf + current, 8));
                Ok((mem.ptr(cf + current)?, read_at))
            }
        }
    }

    /// A thread's frames, innermost first. A running thread pushes and pops frames while
    /// they are read: 3.11 and 3.12 point the thread state at a new C frame before setting
    /// its current frame, and 3.14 a call from C makes its frame current before linking it
    /// to its caller. A walk that meets memory it cannot read, or a chain that ends short of
    /// its entry frame (or, 3.15+, its thread state's base frame), is read again from fresh
    /// pages after a short pause, up to `STACK_READS` times in all (measured on a thread
    /// calling Python from C without pause: one read in ten was cut on 3.12, 3.14 and 3.15).
    /// A frame that still cannot be read ends the walk: the frames read before it are kept
    /// (a core whose writer lost a thread's C stack still shows the Python frames above the
    /// shim frame that lived there).
    pub fn frames(&mut self, tstate: usize) -> Result<Vec<RawFrame>> {
        let _frames = crate::cost_split::span(crate::cost_split::Phase::Frames);
        let mut walk = self.walk(tstate);
        for again in 0..STACK_READS - 1 {
            let pause = FIRST_PAUSE * (1 << again);
            if !walk.cut
                || self.paused + pause > PAUSES_PER_SNAPSHOT
                || !self.objs.mem.reread(&walk.read_at)
            {
                break;
            }
            std::thread::sleep(pause);
            self.paused += pause;
            walk = self.walk(tstate);
        }
        match walk.ended {
            Some(e) if walk.frames.is_empty() => Err(e),
            _ => Ok(walk.frames),
        }
    }

    /// One walk of a thread's frames from its innermost.
    fn walk(&mut self, tstate: usize) -> Walk {
        let offs = self.objs.layout.offsets;
        let mem = self.objs.mem;
        let mut walk = Walk {
            frames: Vec::new(),
            cut: false,
            ended: None,
            read_at: Vec::new(),
        };
        let mut frame = match self.top_frame(tstate) {
            Ok((frame, read_at)) => {
                walk.read_at = read_at;
                frame
            }
            Err(e) => {
                walk.read_at.push((tstate, 1));
                walk.ended = Some(e);
                walk.cut = true;
                return walk;
            }
        };
        // The frame head: every field the walk reads of a frame lies in it.
        let head = frame_head_len(&offs);
        let shims = offs.frame_owner.zip(offs.frame_shim_owner);
        let mut seen = 0;
        let mut at_shim = false;
        let mut frame_seen_last = 0;
        while frame != 0 {
            if seen == MAX_FRAMES {
                // Deep, or a loop: bounded, not cut (reading again finds the same).
                walk.ended = Some(Error::Layout("frame chain does not end".into()));
                return walk;
            }
            seen += 1;
            frame_seen_last = frame;
            walk.read_at.push((frame, head));
            let back = match mem.ptr(frame + offs.frame_back) {
                Ok(back) => back,
                Err(e) => {
                    walk.ended = Some(e);
                    break;
                }
            };
            at_shim = false;
            if let Some((owner, shim)) = shims {
                // 3.12+: frames owned by the C stack (or the interpreter) are shims.
                match mem.u8(frame + owner) {
                    Ok(o) if o >= shim => {
                        at_shim = true;
                        frame = back;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        walk.ended = Some(e);
                        break;
                    }
                }
            }
            let code_addr = match mem.ptr(frame + offs.frame_code) {
                Ok(code) => self.slot_object(code),
                Err(e) => {
                    walk.ended = Some(e);
                    break;
                }
            };
            let code = match self.code(code_addr) {
                Ok(code) => code,
                Err(_) => {
                    // 3.13: `f_executable` of a shim is not a code object.
                    frame = back;
                    continue;
                }
            };
            if code.name == "__init__" && code.filename == "__init__" {
                // The interpreter's own init-cleanup shim (`_Py_InitCleanup`, 3.13+), run
                // between `Class(...)` and its `__init__`: no Python code of anyone's.
                frame = back;
                continue;
            }
            let instr = self.instruction(frame, code_addr);
            walk.frames.push(RawFrame {
                addr: frame,
                code,
                instr,
            });
            frame = back;
        }
        // Where a thread's chain ends: its thread state's base frame (3.15+), an entry frame
        // (3.12-3.14), any frame before. No frame at all is no call halfway either.
        let at_end = frame_seen_last == 0
            || match offs.tstate_base_frame {
                Some(base) => mem
                    .ptr(tstate + base)
                    .is_ok_and(|base| base == frame_seen_last),
                None => shims.is_none() || at_shim,
            };
        walk.cut = walk.ended.is_some() || !at_end;
        walk
    }
}

#[cfg(test)]
mod tests;
