//! Writes to shared state (`record`'s race detection): the location by identity, how the
//! write was seen, the locks guarding it, and a race's per-thread side. It names no other part
//! of the document.

use serde::{Deserialize, Serialize};

/// A write to shared state seen in a sample: the location by identity and by name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct WriteAccess {
    pub location: Location,
    /// How the code names it: `counter`, `meter.value`, `Meter.value` (through `self`),
    /// `registry[...]`.
    pub name: String,
    /// Whether the name came through `self` (a reader prefers another thread's name).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub through_self: bool,
    /// The write's own line: `function file:line`.
    pub site: String,
    pub evidence: WriteEvidence,
    /// Locks of the `with` blocks (and `acquire()`...`release()` spans) around the write in
    /// its code, resolved in its frame: held when the write runs, whether or not held now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<GuardLock>,
    /// The write adds items to a container or takes one out (`append`, `appendleft`,
    /// `extend`, `extendleft`, `add`, `pop`, `popleft`, `popitem`): such writes from several
    /// threads lose and duplicate nothing in any order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adds_or_takes: bool,
    /// What the access does to the location: writes it (the default, left out of the JSON), or
    /// reads it to mutate the object it holds in place (`self.results.append(x)` reads
    /// `self.results`).
    #[serde(default, skip_serializing_if = "AccessKind::is_write")]
    pub access: AccessKind,
}

/// What an access does to its location. A closed set.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    /// Stores, deletes or mutates the location itself.
    #[default]
    Write,
    /// Loads the location's value to mutate that object in place (a mutator call or an item
    /// store on it): the mutation lands in whatever object the location held at the load.
    ReadThenMutate,
}

impl AccessKind {
    pub fn is_write(&self) -> bool {
        *self == AccessKind::Write
    }
}

/// A shared location by identity (addresses in the target, as hex).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A module global: the module's globals dict and the name.
    Global { globals: String, name: String },
    /// An attribute of one object. `type` is its class's address: an address reused by an
    /// object of another class is another location.
    Attr {
        object: String,
        #[serde(rename = "type")]
        class: String,
        attr: String,
    },
    /// Any item of one container (`container[key]`, `container.append(...)`).
    Item {
        container: String,
        #[serde(rename = "type")]
        class: String,
    },
}

impl Location {
    /// A stable id for findings: `global 0xGLOBALS:name`, `attr 0xOBJECT:name`, `item 0xCONTAINER`.
    pub fn id(&self) -> String {
        match self {
            Location::Global { globals, name } => format!("global {globals}:{name}"),
            Location::Attr { object, attr, .. } => format!("attr {object}:{attr}"),
            Location::Item { container, .. } => format!("item {container}"),
        }
    }
}

/// How a write was seen. A closed set.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum WriteEvidence {
    /// The innermost user frame's current line makes it.
    CurrentLine,
    /// A frame on the stack can still make it from where it is (ahead, or in a loop around
    /// its current instruction), with the names it uses bound as they are now.
    ReachableWrite,
    /// A user function a frame on the stack can still call makes it (one call deep: a global
    /// function or a method looked up on a name the frame has bound now, or a property's
    /// setter), with the callee's first parameter bound to that object.
    CalleeWrite,
}

impl WriteEvidence {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteEvidence::CurrentLine => "current_line",
            WriteEvidence::ReachableWrite => "reachable_write",
            WriteEvidence::CalleeWrite => "callee_write",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuardLock {
    pub lock: String,
    /// How the code names it (`self.lock`).
    pub name: Option<String>,
}

/// One writing thread's side of a `race`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RaceSide {
    pub thread: String,
    pub name: Option<String>,
    /// Where it writes: `function file:line`.
    pub sites: Vec<String>,
    /// Where it reads the location to mutate what it holds (`read_then_mutate` accesses),
    /// apart from its writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_sites: Vec<String>,
    /// Lock ids held (or guarding the write) at every sampled write of this thread.
    pub locks: Vec<String>,
    /// How the code names those locks, in the same order.
    pub lock_names: Vec<String>,
    pub samples: usize,
    /// How its writes were seen.
    pub evidence: Vec<WriteEvidence>,
}
