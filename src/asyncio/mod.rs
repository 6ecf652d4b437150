//! asyncio, read from outside: event loops per thread (polling or running which step), every
//! task of every loop with its suspended await stack and what it waits for, and the
//! `asyncio.Lock`s tasks hold through `async with`. Offsets are in `cpython::layout`
//! (`AsyncioOffsets`); on 3.14+ they are those the target publishes (`.AsyncioDebug`, found
//! by the caller), checked on live objects (`check`) before anything is built on them.
//! Everything is read through `Memory`, nothing runs in the target.
//!
//! One file per question; this one only names them and what the rest of the crate may use:
//! - `view`: one snapshot's asyncio part put together (the entry point, `read`);
//! - `offsets`: which offsets this process is read with (3.14+'s published ones, the table's);
//! - `check`: whether a set of 3.14+ offsets holds on live objects;
//! - `registry`: which tasks exist and which one each loop runs (3.8-3.13's module sets,
//!   3.14+'s per-thread lists);
//! - `loops`: which loop each thread runs and what it does now;
//! - `tasks`: one task's fields, name and stack;
//! - `chain`: a task's await chain, coroutine by coroutine;
//! - `waits`: what a suspended task waits for;
//! - `locks`: the `asyncio.Lock`s tasks hold and wait for;
//! - `acquired`: those a task holds past a bare `await X.acquire()`;
//! - `reader`: what one snapshot's reading shares (the `Reader`);
//! - `cache`: what is kept between snapshots of one process;
//! - `types`, `facts`: what a type object and a frame's code tell, decoded once;
//! - `ids`: how task and loop ids are spelled.

mod acquired;
mod cache;
mod chain;
mod check;
mod facts;
mod ids;
mod locks;
mod loops;
mod offsets;
mod reader;
mod registry;
mod tasks;
mod types;
mod view;
mod waits;

pub use cache::AsyncioCache;
pub use chain::{
    await_chains, await_chains_showing, await_chains_until, with_chains, ChainLink, Chains,
};
pub use ids::{loop_id, task_id, with_hex};
pub use offsets::SectionLookup;
pub use view::{read, AsyncView};
