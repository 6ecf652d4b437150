//! One component per panel (gitui's idea): each file has its panel's state types, what
//! `app` calls to update that state, and a draw function that only reads it. Panels never
//! import `app` (the app holds their state and passes it in), nor each other.

pub mod findings;
pub mod graph;
pub mod loops;
pub mod processes;
pub mod threads;
