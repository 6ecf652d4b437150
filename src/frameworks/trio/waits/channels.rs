//! Who holds a memory channel's other side, for the tasks that wait on it: the tasks whose
//! frames hold its open ends, when they account for every open one (`open_send_channels` or
//! `open_receive_channels` of its state); else an unknown holder. Read once every task's
//! chain is, since any task's frames may hold an end. Reads only; never guesses a holder.

use std::collections::HashMap;

use crate::cpython::threads::Walker;
use crate::model::Evidence;

use super::super::fields::Fields;
use super::{holder, TaskRead, Waits};

impl Waits {
    /// Whether a task waits on a channel: its holders are then read from every task's
    /// chain (`channel_holders`).
    pub(crate) fn waits_on_channels(&self) -> bool {
        !self.channels.is_empty()
    }

    /// Each channel's other side: the tasks whose frames (in `reads`, every task of the
    /// run) hold its open ends, when they account for every open one; else an unknown holder.
    pub(crate) fn channel_holders(
        &mut self,
        walker: &Walker,
        fields: &mut Fields,
        reads: &[TaskRead],
    ) {
        if self.channels.is_empty() {
            return;
        }
        let objs = &walker.objs;
        // Channel ends held in task frames, by (channel state, send side): (task, end).
        let mut ends: HashMap<(usize, bool), Vec<(usize, usize)>> = HashMap::new();
        for r in reads {
            for link in &r.chain {
                for (_, v) in walker.locals(&link.raw) {
                    let is_send = match objs.type_name_rc(v).as_deref() {
                        Ok("MemorySendChannel") => true,
                        Ok("MemoryReceiveChannel") => false,
                        _ => continue,
                    };
                    let Some(st) = fields.get(objs, v, "_state") else {
                        continue;
                    };
                    let closed = fields
                        .get(objs, v, "_closed")
                        .and_then(|c| objs.int(c).ok())
                        .unwrap_or(0)
                        != 0;
                    if !closed {
                        ends.entry((st, is_send)).or_default().push((r.addr, v));
                    }
                }
            }
        }
        for (state, send) in std::mem::take(&mut self.channels) {
            let found = ends.get(&(state, send)).cloned().unwrap_or_default();
            let open_field = if send {
                "open_send_channels"
            } else {
                "open_receive_channels"
            };
            let open = fields
                .get(objs, state, open_field)
                .and_then(|v| objs.int(v).ok());
            let mut distinct: Vec<usize> = found.iter().map(|(_, e)| *e).collect();
            distinct.sort_unstable();
            distinct.dedup();
            let mut tasks: Vec<usize> = found.iter().map(|(t, _)| *t).collect();
            tasks.sort_unstable();
            tasks.dedup();
            let holders = if open == Some(distinct.len() as i64) && !tasks.is_empty() {
                tasks
                    .iter()
                    .map(|t| holder(Some(self.task_id(*t)), Evidence::Memory))
                    .collect()
            } else {
                vec![holder(None, Evidence::Unknown)]
            };
            if let Some(p) = self.seen.get_mut(&state) {
                p.holders = holders;
            }
        }
    }
}
