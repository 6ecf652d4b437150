//! Two rules of the crate's rooms. The import graph has no circle: every file under `src/`
//! is read (parsed with `syn`), each `crate::`, `super::`, `self::` or child-module path it names (in `use`s,
//! types, expressions, macros and attributes; test-only code left out) becomes an edge to the
//! file that defines the module it reaches, and a cycle among files fails the test, naming
//! each file of the circle and the path that makes each step. And no file under `src/` is
//! longer than 800 lines (the offenders are listed). It reads source only.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// A module path from the crate root (`["asyncio", "view"]`); the root is empty.
type ModPath = Vec<String>;

/// Every file module of `src/`: its module path and file. `main.rs` is another crate (the
/// binary, which sees the library as `gridlock::`), so it is left out.
fn file_modules(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: ModPath = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            match parts.last().map(String::as_str) {
                Some("main") if parts.len() == 1 => continue,
                Some("lib") if parts.len() == 1 => parts.clear(),
                Some("mod") => {
                    parts.pop();
                }
                _ => {}
            }
            out.insert(parts, path);
        }
    }
    out
}

/// One path a file names, before resolving: where it stands and its segments.
struct Named {
    /// The module the path is written in (the file's, plus inline modules).
    at: ModPath,
    segments: Vec<String>,
}

struct Collector {
    /// The file's module path, then inline modules entered.
    at: ModPath,
    /// Modules declared in this file (`mod x;` or `mod x { .. }`), by the module declaring them.
    children: BTreeSet<ModPath>,
    named: Vec<Named>,
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().split_whitespace().any(|t| t == "test"))
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match item {
        Const(i) => &i.attrs,
        Enum(i) => &i.attrs,
        ExternCrate(i) => &i.attrs,
        Fn(i) => &i.attrs,
        ForeignMod(i) => &i.attrs,
        Impl(i) => &i.attrs,
        Macro(i) => &i.attrs,
        Mod(i) => &i.attrs,
        Static(i) => &i.attrs,
        Struct(i) => &i.attrs,
        Trait(i) => &i.attrs,
        TraitAlias(i) => &i.attrs,
        Type(i) => &i.attrs,
        Union(i) => &i.attrs,
        Use(i) => &i.attrs,
        _ => &[],
    }
}

impl Collector {
    fn push(&mut self, segments: Vec<String>) {
        if !segments.is_empty() {
            self.named.push(Named {
                at: self.at.clone(),
                segments,
            });
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut s = prefix.clone();
                s.push(n.ident.to_string());
                self.push(s);
            }
            syn::UseTree::Rename(r) => {
                let mut s = prefix.clone();
                s.push(r.ident.to_string());
                self.push(s);
            }
            syn::UseTree::Glob(_) => self.push(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    /// Paths inside macro calls and attributes are tokens: `a :: b :: c` runs.
    fn tokens(&mut self, tokens: TokenStream) {
        let flat: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < flat.len() {
            match &flat[i] {
                TokenTree::Group(g) => {
                    self.tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(id) => {
                    let mut segments = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) =
                        (flat.get(j), flat.get(j + 1))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        match flat.get(j + 2) {
                            Some(TokenTree::Ident(next)) => segments.push(next.to_string()),
                            _ => break,
                        }
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.push(segments);
                    }
                    i = j.max(i + 1);
                }
                _ => i += 1,
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let mut child = self.at.clone();
        child.push(m.ident.to_string());
        self.children.insert(child.clone());
        if let Some((_, items)) = &m.content {
            let outer = std::mem::replace(&mut self.at, child);
            for item in items {
                self.visit_item(item);
            }
            self.at = outer;
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }

    /// `pub(in crate::x)` says who may see an item, not what it uses.
    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {}

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        self.tokens(m.tokens.clone());
    }

    fn visit_attribute(&mut self, a: &'ast syn::Attribute) {
        if let syn::Meta::List(l) = &a.meta {
            self.tokens(l.tokens.clone());
        }
    }
}

/// The file module a path reaches, if it is one of this crate's: the longest prefix of the
/// absolute module path that is a file.
fn resolve(
    named: &Named,
    children: &BTreeSet<ModPath>,
    files: &BTreeMap<ModPath, PathBuf>,
) -> Option<ModPath> {
    let s = &named.segments;
    let (mut base, rest): (ModPath, &[String]) = match s[0].as_str() {
        "crate" => (Vec::new(), &s[1..]),
        "self" => (named.at.clone(), &s[1..]),
        "super" => {
            let mut base = named.at.clone();
            let ups = s.iter().take_while(|x| *x == "super").count();
            for _ in 0..ups {
                base.pop()?;
            }
            (base, &s[ups..])
        }
        first => {
            let mut child = named.at.clone();
            child.push(first.to_string());
            if !children.contains(&child) {
                return None;
            }
            (named.at.clone(), &s[..])
        }
    };
    let mut found = None;
    for seg in rest {
        base.push(seg.clone());
        if files.contains_key(&base) {
            found = Some(base.clone());
        }
    }
    // Nothing deeper than where it starts is a file: the start's own file.
    found.or_else(|| {
        let mut start = base;
        start.truncate(start.len() - rest.len());
        while !files.contains_key(&start) {
            start.pop()?;
        }
        Some(start)
    })
}

fn name(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

/// Edges between files, each with the first path that makes it.
fn import_graph(src: &Path) -> BTreeMap<ModPath, BTreeMap<ModPath, String>> {
    let files = file_modules(src);
    let mut graph: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut c = Collector {
            at: module.clone(),
            children: BTreeSet::new(),
            named: Vec::new(),
        };
        for item in &ast.items {
            c.visit_item(item);
        }
        let edges = graph.entry(module.clone()).or_default();
        for n in &c.named {
            if let Some(to) = resolve(n, &c.children, &files) {
                if &to != module {
                    edges.entry(to).or_insert_with(|| n.segments.join("::"));
                }
            }
        }
    }
    graph
}

/// Each circle once: for every strongly connected group of files, one shortest cycle
/// through its first file.
fn cycles(graph: &BTreeMap<ModPath, BTreeMap<ModPath, String>>) -> Vec<Vec<ModPath>> {
    let reach = |from: &ModPath| -> BTreeSet<ModPath> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for to in graph.get(&m).into_iter().flat_map(|e| e.keys()) {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    };
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for start in graph.keys() {
        if done.contains(start) || !reach(start).contains(start) {
            continue;
        }
        // Its group: every file it reaches that reaches it back.
        for m in reach(start) {
            if reach(&m).contains(start) {
                done.insert(m);
            }
        }
        // Shortest way back to `start` (breadth first).
        let mut prev: BTreeMap<ModPath, ModPath> = BTreeMap::new();
        let mut queue = VecDeque::from([start.clone()]);
        'search: while let Some(m) = queue.pop_front() {
            for to in graph.get(&m).into_iter().flat_map(|e| e.keys()) {
                if to == start {
                    let mut cycle = vec![m.clone()];
                    let mut at = m.clone();
                    while let Some(p) = prev.get(&at) {
                        cycle.push(p.clone());
                        at = p.clone();
                    }
                    cycle.reverse();
                    if cycle[0] != *start {
                        cycle.insert(0, start.clone());
                    }
                    out.push(cycle);
                    break 'search;
                }
                if !prev.contains_key(to) && to != start {
                    prev.insert(to.clone(), m.clone());
                    queue.push_back(to.clone());
                }
            }
        }
    }
    out
}

/// Circles tolerated while they are being broken, each as the exact group of files that reach
/// each other. Any other circle fails, and so does a listed group that grew, shrank or is gone
/// (so this list only ever gets shorter). Empty: the last ones (`snapshot`'s children around its
/// `Builder`, and trio's `TaskRead`) were broken on issue 23.
const KNOWN: &[&[&str]] = &[];

/// Every group of files that reach each other (a strongly connected part of two or more).
fn groups(graph: &BTreeMap<ModPath, BTreeMap<ModPath, String>>) -> Vec<BTreeSet<ModPath>> {
    cycles(graph)
        .into_iter()
        .map(|cycle| {
            let start = &cycle[0];
            let reach = reachable(graph, start);
            reach
                .into_iter()
                .filter(|m| reachable(graph, m).contains(start))
                .collect()
        })
        .collect()
}

fn reachable(
    graph: &BTreeMap<ModPath, BTreeMap<ModPath, String>>,
    from: &ModPath,
) -> BTreeSet<ModPath> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.clone()];
    while let Some(m) = todo.pop() {
        for to in graph.get(&m).into_iter().flat_map(|e| e.keys()) {
            if seen.insert(to.clone()) {
                todo.push(to.clone());
            }
        }
    }
    seen
}

#[test]
fn the_import_graph_has_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    // The reader sees real edges: a few that must be there.
    let edge = |a: &str, b: &str| {
        let p = |s: &str| -> ModPath { s.split("::").map(String::from).collect() };
        graph.get(&p(a)).is_some_and(|e| e.contains_key(&p(b)))
    };
    assert!(
        edge("asyncio::view", "asyncio::reader"),
        "super:: paths are read"
    );
    assert!(edge("tui::views", "tui::app"), "use super:: trees are read");
    assert!(
        edge("snapshot", "asyncio"),
        "crate:: paths in expressions are read"
    );
    let known: Vec<BTreeSet<ModPath>> = KNOWN
        .iter()
        .map(|g| {
            g.iter()
                .map(|m| m.split("::").map(String::from).collect())
                .collect()
        })
        .collect();
    let found = cycles(&graph);
    let found_groups = groups(&graph);
    let mut report = Vec::new();
    for (cycle, group) in found.iter().zip(&found_groups) {
        if known.contains(group) {
            continue;
        }
        let steps: Vec<String> = cycle
            .iter()
            .zip(cycle.iter().cycle().skip(1))
            .map(|(a, b)| format!("{} -> {} (`{}`)", name(a), name(b), graph[a][b]))
            .collect();
        let members: Vec<String> = group.iter().map(name).collect();
        report.push(format!(
            "  {}
    (the files that reach each other: {})",
            steps.join(", "),
            members.join(", ")
        ));
    }
    for g in &known {
        if !found_groups.contains(g) {
            let members: Vec<String> = g.iter().map(name).collect();
            report.push(format!(
                "  the known circle among {} changed or is gone: update KNOWN",
                members.join(", ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "the import graph has circles:\n{}",
        report.join("\n")
    );
}

#[test]
fn a_circle_is_found_and_named() {
    let p = |s: &str| -> ModPath { s.split("::").map(String::from).collect() };
    let mut graph: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "a")] {
        graph
            .entry(p(a))
            .or_default()
            .insert(p(b), format!("crate::{b}"));
        graph.entry(p(b)).or_default();
    }
    assert_eq!(cycles(&graph), vec![vec![p("a"), p("b"), p("c")]]);
    graph.get_mut(&p("c")).unwrap().remove(&p("a"));
    assert!(cycles(&graph).is_empty());
}

/// Each room stays small enough to read: no file under `src/` is longer than this.
const MAX_LINES: usize = 800;

#[test]
fn no_source_file_exceeds_800_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("main.rs")];
    files.extend(file_modules(&src).into_values());
    let mut offenders: Vec<String> = files
        .iter()
        .map(|path| {
            let lines = std::fs::read_to_string(path).unwrap().lines().count();
            (lines, path)
        })
        .filter(|(lines, _)| *lines > MAX_LINES)
        .map(|(lines, path)| {
            format!(
                "  {} ({lines} lines)",
                path.strip_prefix(&src).unwrap().display()
            )
        })
        .collect();
    offenders.sort();
    assert!(
        files.len() > 50,
        "the walk sees the crate's files ({} found)",
        files.len()
    );
    assert!(
        offenders.is_empty(),
        "files over {MAX_LINES} lines (split them by question):\n{}",
        offenders.join("\n")
    );
}
