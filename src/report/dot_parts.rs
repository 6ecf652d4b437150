//! The pieces `dot` and `dot_tasks` both draw with: DOT's quoting, the deadlocks' part of
//! the graph (drawn in red) and one labelled edge. Decides nothing about what is drawn.

use std::collections::HashSet;
use std::io::{self, Write};

use crate::model::{Document, FindingKind};

/// A DOT string: a label's line breaks (`\n` in the text given) become DOT's `\n`; a
/// backslash or quote from the data stays itself.
pub(super) fn quote(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// The style of what a deadlock's cycle goes through.
const HOT_STYLE: &str = ", color=red, penwidth=2";

/// The deadlocks' edges (from, to) and the nodes they join.
pub(super) struct Hot<'a> {
    edges: HashSet<(&'a str, &'a str)>,
    nodes: HashSet<&'a str>,
}

impl<'a> Hot<'a> {
    pub(super) fn of(doc: &'a Document) -> Self {
        let edges: HashSet<(&str, &str)> = doc
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::Deadlock)
            .flat_map(|f| f.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())))
            .collect();
        let nodes = edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
        Hot { edges, nodes }
    }

    /// A node's extra attributes: red in a deadlock, else none.
    pub(super) fn node(&self, id: &str) -> &'static str {
        if self.nodes.contains(id) {
            HOT_STYLE
        } else {
            ""
        }
    }

    /// An edge's extra attributes: red in a deadlock, else none.
    pub(super) fn edge(&self, from: &str, to: &str) -> &'static str {
        if self.edges.contains(&(from, to)) {
            HOT_STYLE
        } else {
            ""
        }
    }
}

/// One labelled edge, red where it is a deadlock's.
pub(super) fn edge<W: Write>(
    out: &mut W,
    hot: &Hot,
    from: &str,
    to: &str,
    label: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "  {} -> {} [label={}{}];",
        quote(from),
        quote(to),
        quote(label),
        hot.edge(from, to)
    )
}
