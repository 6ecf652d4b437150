//! The human report: findings first, in the manner of jstack's "Found one Java-level
//! deadlock", each claim with its evidence in brackets; then every thread, most interesting first.

use std::io::{self, Write};

use super::labels::{lock_label, node_label, party_label, task_label, thread_label};
use crate::model::*;

pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.paint("1;33", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

pub fn render<W: Write>(doc: &Document, style: &Style, mut out: W) -> io::Result<()> {
    let doc = &*super::escape::document(doc);
    let tree = doc.processes.len() > 1;
    if tree {
        tree_header(doc, style, &mut out)?;
    } else {
        process_header(doc, style, &mut out)?;
    }
    writeln!(out)?;
    process_notes(doc, style, &mut out)?;
    let unmodelled = not_modelled(doc, style, &mut out)?;
    super::timing::idle_lines(doc, &mut out)?;
    if !incomplete(doc, style, &mut out)? && !unmodelled && doc.findings.is_empty() {
        // A tree's report lists no loops, so it makes no claim about them.
        let kinds = if tree {
            "deadlock, stall or orphaned lock"
        } else {
            "deadlock, stall, orphaned lock or event-loop block"
        };
        writeln!(out, "No {kinds} persisted over the window.")?;
        writeln!(out)?;
    }
    for f in &doc.findings {
        finding(doc, f, style, &mut out)?;
        writeln!(out)?;
    }
    if !tree {
        loops(doc, style, &mut out)?;
    }
    super::gil::gil_lines(doc, &mut out)?;
    threads(doc, style, &mut out)
}

/// The head of a process tree's report: the tree, then a line (and notes) per process.
fn tree_header<W: Write>(doc: &Document, style: &Style, out: &mut W) -> io::Result<()> {
    writeln!(
        out,
        "{} · process tree of pid {} · {} Python processes · {} · {}",
        style.bold(&format!("gridlock {}", doc.tool.version)),
        doc.processes[0].pid,
        doc.processes.len(),
        count(doc.threads.len(), "thread"),
        window(doc)
    )?;
    for q in &doc.processes {
        writeln!(
            out,
            "  pid {} (parent {}) · CPython {} · {}{}",
            q.pid,
            q.ppid.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
            q.python_version,
            command(q),
            q.current_test
                .as_ref()
                .map(|t| format!(" · test {}", t.describe()))
                .unwrap_or_default()
        )?;
        for n in &q.notes {
            writeln!(out, "    note: {n}")?;
        }
    }
    Ok(())
}

/// The head of one process's report: the process, its notes and the test it runs.
fn process_header<W: Write>(doc: &Document, style: &Style, out: &mut W) -> io::Result<()> {
    let p = &doc.processes[0];
    writeln!(
        out,
        "{} · {} · CPython {} · {} · {} · {}",
        style.bold(&format!("gridlock {}", doc.tool.version)),
        match &p.core {
            Some(core) => format!("core {core} of pid {}", p.pid),
            None => format!("pid {}", p.pid),
        },
        p.python_version,
        command(p),
        count(doc.threads.len(), "thread"),
        window(doc)
    )?;
    for n in &p.notes {
        writeln!(out, "note: {n}")?;
    }
    if let Some(test) = &p.current_test {
        writeln!(out, "test {}", test.describe())?;
    }
    Ok(())
}

/// One line per process that exited while recorded (what follows is what was seen before)
/// or has stopped threads (their waits were not used: a stopped process cannot make progress,
/// whatever it waits for).
fn process_notes<W: Write>(doc: &Document, style: &Style, out: &mut W) -> io::Result<()> {
    let mut any = false;
    for p in &doc.processes {
        if p.exited {
            writeln!(
                out,
                "{}  process {} exited during the recording: after its last snapshot at {} and before {}. What follows was recorded before it exited ({}).",
                style.yellow("EXITED"),
                p.pid,
                doc.window.ended,
                p.exited_at.as_deref().unwrap_or("the recording ended"),
                count(doc.window.snapshots, "snapshot"),
            )?;
            any = true;
        }
        let threads: Vec<&Thread> = doc.threads.iter().filter(|t| t.pid == p.pid).collect();
        let stopped = threads
            .iter()
            .filter(|t| t.state == ThreadState::Stopped)
            .count();
        if stopped == 0 {
            continue;
        }
        let who = if stopped == threads.len() {
            format!("process {} is stopped", p.pid)
        } else {
            let verb = if stopped == 1 { "is" } else { "are" };
            format!(
                "{} of process {} {verb} stopped",
                count(stopped, "thread"),
                p.pid
            )
        };
        writeln!(
            out,
            "{}  {who} (SIGSTOP or a debugger): a stopped process cannot make progress, so nothing is inferred from its waits.",
            style.yellow("STOPPED")
        )?;
        any = true;
    }
    if any {
        writeln!(out)?;
    }
    Ok(())
}

/// Tasks per event loop, like CPython 3.14's `python -m asyncio ps`.
fn loops<W: Write>(doc: &Document, style: &Style, out: &mut W) -> io::Result<()> {
    if doc.loops.is_empty() && doc.tasks.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}", style.bold("EVENT LOOPS AND TASKS"))?;
    let mut ids: Vec<&str> = doc.loops.iter().map(|l| l.id.as_str()).collect();
    for t in &doc.tasks {
        if !ids.contains(&t.loop_id.as_str()) {
            ids.push(&t.loop_id);
        }
    }
    for id in ids {
        let what = match doc.loops.iter().find(|l| l.id == id) {
            Some(l) => {
                let doing = match (l.state, &l.step) {
                    (LoopState::Step, Some(s)) => match (&s.task, &s.callback) {
                        (Some(t), _) => format!("running a step of {}", task_label(doc, t)),
                        (None, Some(cb)) => format!("running callback {cb}"),
                        _ => "running a callback".into(),
                    },
                    (LoopState::Polling, _) => "polling (idle in the selector)".into(),
                    (s, _) => s.as_str().to_string(),
                };
                format!(
                    "{} ({}) on {}: {doing}; {} ready",
                    node_label(doc, id),
                    l.kind,
                    l.thread
                        .as_deref()
                        .map(|t| thread_label(doc, t))
                        .unwrap_or_else(|| "?".into()),
                    l.ready.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
                )
            }
            None => format!("{} (no thread is running it)", node_label(doc, id)),
        };
        writeln!(out, "  {what}")?;
        let tasks: Vec<&Task> = doc.tasks.iter().filter(|t| t.loop_id == id).collect();
        const SHOWN: usize = 50;
        // A nursery's (or gather's) children under it, indented.
        for (t, depth) in super::task_tree::tree_order(&tasks).into_iter().take(SHOWN) {
            let indent = "  ".repeat(depth);
            let branch = if depth > 0 { "└ " } else { "" };
            let waits = match &t.waits_for {
                Some(w) => {
                    let target = match (&w.target, w.kind) {
                        (Some(x), TaskWaitKind::Task) => node_label(doc, x),
                        (Some(x), TaskWaitKind::Lock | TaskWaitKind::Semaphore)
                            if doc.lock(x).is_some() =>
                        {
                            lock_label(doc, x, w.name.as_deref())
                        }
                        (_, TaskWaitKind::Gather) => format!(
                            "gather of {}",
                            w.targets
                                .iter()
                                .map(|x| node_label(doc, x))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        (_, k) => super::labels::awaited_label(k, w),
                    };
                    format!("awaits {target} [{}]", w.evidence.as_str())
                }
                None if t.state == TaskState::Running => "running".into(),
                None => "scheduled (ready to run)".into(),
            };
            writeln!(
                out,
                "    {indent}{branch}{}{}  {}  {waits}",
                style.bold(&task_label(doc, &t.id)),
                if t.eager { " eager" } else { "" },
                t.address
            )?;
            let under = format!("        {indent}");
            holds_and_stack(doc, style, &t.holds, &t.frames, &under, out)?;
        }
        if tasks.len() > SHOWN {
            writeln!(
                out,
                "    … {} more tasks (all in --json)",
                tasks.len() - SHOWN
            )?;
        }
    }
    writeln!(out)?;
    Ok(())
}

fn finding<W: Write>(doc: &Document, f: &Finding, style: &Style, out: &mut W) -> io::Result<()> {
    let title = f.kind.as_str().to_uppercase().replace('_', " ");
    let head = if f.severity == Severity::Error {
        style.red(&title)
    } else {
        style.yellow(&title)
    };
    let persisted = if f.samples > 1 {
        format!(", seen in all {} snapshots", f.samples)
    } else {
        String::new()
    };
    writeln!(out, "{head}  {}{persisted}", f.summary)?;
    if let Some(test) = doc.finding_test(f) {
        writeln!(out, "  during test {}", test.describe())?;
    }
    writeln!(out)?;
    match f.kind {
        FindingKind::Deadlock => {
            // Edges alternate: thread -waits_for-> lock -held_by-> thread, or thread -joins-> thread.
            let mut i = 0;
            while i < f.edges.len() {
                let e = &f.edges[i];
                if e.via == EdgeVia::WaitsFor {
                    let waited = lock_label(doc, &e.to, e.name.as_deref());
                    edge_lines(
                        out,
                        style,
                        &style.bold(&node_label(doc, &e.from)),
                        "waits for",
                        &waited,
                        e,
                    )?;
                    if f.edges
                        .get(i + 1)
                        .is_some_and(|c| c.via == EdgeVia::CompletedBy)
                    {
                        i += 1;
                        let mut first = true;
                        while let Some(c) = f.edges.get(i).filter(|c| c.via == EdgeVia::CompletedBy)
                        {
                            let by = node_label(doc, &c.to);
                            let ev = style.dim(&format!("[{}]", c.evidence.as_str()));
                            match (&c.site, first) {
                                (Some(site), _) if c.evidence == Evidence::Deferred => writeln!(
                                    out,
                                    "    fired by {by}, whose code calls it next at {site}  {ev}"
                                )?,
                                (None, _) if c.evidence == Evidence::Deferred => {
                                    writeln!(out, "    fired when {by} returns  {ev}")?
                                }
                                (Some(site), _) => {
                                    writeln!(out, "    running on {by}, now at {site}  {ev}")?
                                }
                                (None, _) if c.to.contains(":task:") => {
                                    writeln!(out, "    computed by {by}  {ev}")?
                                }
                                (None, _) if c.evidence == Evidence::ReadyQueue => writeln!(
                                    out,
                                    "    set by a callback queued on the event loop of {by}  {ev}"
                                )?,
                                (None, true) => writeln!(
                                    out,
                                    "    queued in its pool, for any of its workers: {by}  {ev}"
                                )?,
                                (None, false) => writeln!(out, "      or {by}  {ev}")?,
                            }
                            first = false;
                            i += 1;
                        }
                        continue;
                    }
                    while let Some(d) = f.edges.get(i + 1).filter(|d| d.via == EdgeVia::DrainedBy) {
                        // The calls down to that `get`, as the queue's holder records them.
                        let path = doc
                            .lock(&d.from)
                            .and_then(|l| {
                                l.holders.iter().find(|h| h.thread.as_ref() == Some(&d.to))
                            })
                            .filter(|h| !h.call_path.is_empty())
                            .map(|h| format!(", through {}", h.call_path.join(" -> ")))
                            .unwrap_or_default();
                        writeln!(
                            out,
                            "    full; taken from only by {}, whose code calls get next at {}{path}  {}",
                            node_label(doc, &d.to),
                            d.site.as_deref().unwrap_or("an unknown site"),
                            style.dim(&format!("[{}]", d.evidence.as_str()))
                        )?;
                        i += 1;
                    }
                    if let Some(h) = f.edges.get(i + 1).filter(|h| h.via == EdgeVia::HeldBy) {
                        let named = h
                            .name
                            .as_deref()
                            .map(|n| format!(" as {n}"))
                            .unwrap_or_default();
                        if matches!(
                            h.evidence,
                            Evidence::Pipe | Evidence::Wait4 | Evidence::SockDiag
                        ) {
                            // A socket lock named by an address is a listener (`connect`).
                            let listener = h.evidence == Evidence::SockDiag
                                && doc
                                    .lock(&h.from)
                                    .is_some_and(crate::report::kernel::is_listener);
                            writeln!(
                                out,
                                "    {} by {}, which is not serving it  {}",
                                match h.evidence {
                                    Evidence::Wait4 => "child",
                                    _ if listener => "listening socket held",
                                    _ => "other end held",
                                },
                                party_label(doc, &h.to),
                                style.dim(&format!("[{}]", h.evidence.as_str()))
                            )?;
                            i += 2;
                            while let Some(more) =
                                f.edges.get(i).filter(|x| x.via == EdgeVia::HeldBy)
                            {
                                writeln!(
                                    out,
                                    "      and by {}  {}",
                                    party_label(doc, &more.to),
                                    style.dim(&format!("[{}]", more.evidence.as_str()))
                                )?;
                                i += 1;
                            }
                            continue;
                        }
                        writeln!(
                            out,
                            "    held by {}{named}, taken at {}  {}",
                            node_label(doc, &h.to),
                            h.site.as_deref().unwrap_or("an unknown site"),
                            style.dim(&format!("[{}]", h.evidence.as_str()))
                        )?;
                        i += 1;
                    }
                } else if e.via == EdgeVia::Awaits {
                    let awaited = node_label(doc, &e.to);
                    edge_lines(
                        out,
                        style,
                        &style.bold(&node_label(doc, &e.from)),
                        "awaits",
                        &awaited,
                        e,
                    )?;
                } else if e.via == EdgeVia::HeldBy {
                    // A further holder of an OR-wait (knot).
                    writeln!(
                        out,
                        "    or by {}  {}",
                        party_label(doc, &e.to),
                        style.dim(&format!("[{}]", e.evidence.as_str()))
                    )?;
                } else if e.via == EdgeVia::WaitsForExit {
                    let child = format!("{} to exit", party_label(doc, &e.to));
                    edge_lines(
                        out,
                        style,
                        &style.bold(&thread_label(doc, &e.from)),
                        "waits for",
                        &child,
                        e,
                    )?;
                } else if e.via == EdgeVia::Joins {
                    let joined = node_label(doc, &e.to);
                    edge_lines(
                        out,
                        style,
                        &style.bold(&node_label(doc, &e.from)),
                        "joins",
                        &joined,
                        e,
                    )?;
                }
                i += 1;
            }
        }
        _ => {
            for (i, e) in f.edges.iter().enumerate() {
                // A holder of the lock the edge before waits for: said as a deadlock says it.
                let waited = f.edges[..i]
                    .iter()
                    .rev()
                    .find(|p| !(p.via == EdgeVia::HeldBy && p.from == e.from))
                    .is_some_and(|w| w.via == EdgeVia::WaitsFor && w.to == e.from);
                if e.via == EdgeVia::HeldBy && waited {
                    let named = e
                        .name
                        .as_deref()
                        .map(|n| format!(" as {n}"))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "    held by {}{named}, taken at {}  {}",
                        node_label(doc, &e.to),
                        e.site.as_deref().unwrap_or("an unknown site"),
                        style.dim(&format!("[{}]", e.evidence.as_str()))
                    )?;
                    continue;
                }
                let target = if e.to.contains(":l:") || doc.lock(&e.to).is_some() {
                    lock_label(doc, &e.to, e.name.as_deref())
                } else if e.to.contains(":t:") || e.to.ends_with(":p") || e.to.contains(":task:") {
                    node_label(doc, &e.to)
                } else {
                    e.to.clone()
                };
                let from = if e.from.contains(":l:") {
                    lock_label(doc, &e.from, None)
                } else {
                    node_label(doc, &e.from)
                };
                let verb = match e.via {
                    EdgeVia::WaitsForExit | EdgeVia::HasThread | EdgeVia::Awaits => {
                        EdgeVia::WaitsFor.verb()
                    }
                    via => via.verb(),
                };
                edge_lines(out, style, &from, verb, &target, e)?;
            }
        }
    }
    if f.kind == FindingKind::LoopBlock && !f.stack.is_empty() {
        writeln!(out, "      stack seen doing it (innermost first):")?;
        for fr in f.stack.iter().take(12) {
            writeln!(
                out,
                "        {} ({}:{})",
                fr.function,
                short_file(&fr.file),
                fr.line
            )?;
        }
    }
    if let Some(h) = &f.histogram {
        let buckets: Vec<String> = h
            .buckets
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(le, n)| match le {
                Some(le) => format!("<= {:.0} ms: {n}", le * 1000.0),
                None => format!("longer: {n}"),
            })
            .collect();
        writeln!(
            out,
            "      {} blocks by {}, max {:.3} s, total {:.3} s ({})",
            h.count,
            h.culprit,
            h.max,
            h.total,
            buckets.join(", ")
        )?;
    }
    for note in &f.notes {
        writeln!(out, "  note: {note}")?;
    }
    if let Some(a) = &f.advice {
        writeln!(out)?;
        writeln!(out, "  {a}")?;
    }
    Ok(())
}

/// `1 thread`, `3 threads`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// The window a report covers: `window 1.0 s (3 snapshots)`.
fn window(doc: &Document) -> String {
    format!(
        "window {:.1} s ({})",
        doc.window.seconds,
        count(doc.window.snapshots, "snapshot")
    )
}

/// How a process was started: its command line, else its name.
fn command(p: &crate::model::Process) -> &str {
    if p.cmdline.is_empty() {
        &p.name
    } else {
        &p.cmdline
    }
}

/// The `INCOMPLETE` banner when some thread's kernel state could not be matched; whether it
/// was printed (a report that cannot say "nothing found").
fn incomplete<W: Write>(doc: &Document, style: &Style, out: &mut W) -> io::Result<bool> {
    let Some(summary) = doc.unmatched_summary() else {
        return Ok(false);
    };
    let mut chars = summary.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    writeln!(
        out,
        "{}  {}{}.",
        style.red("INCOMPLETE"),
        first.unwrap_or_default(),
        chars.as_str()
    )?;
    writeln!(out)?;
    Ok(true)
}

/// The `NOT MODELLED` line when threads sit in syscalls gridlock does not model, and the
/// `OWNERS UNKNOWN` line when they wait on a lock whose holders cannot be known; whether one
/// was printed (a report that cannot say "nothing found" about them).
fn not_modelled<W: Write>(doc: &Document, style: &Style, out: &mut W) -> io::Result<bool> {
    let mut any = false;
    if let Some(summary) = doc.unmodelled_summary() {
        writeln!(out, "{}  {summary}.", style.red("NOT MODELLED"))?;
        writeln!(out)?;
        any = true;
    }
    // Waits on a C rwlock held by readers glibc does not record.
    if let Some(summary) = doc.unowned_summary() {
        writeln!(out, "{}  {summary}.", style.red("OWNERS UNKNOWN"))?;
        writeln!(out)?;
        any = true;
    }
    // A trio run parked whole, some task of which waits with no recorded waker.
    if let Some(summary) = crate::analysis::trio_runs::unknown_waker_summary(doc) {
        writeln!(out, "{}  {summary}.", style.red("WAKER UNKNOWN"))?;
        writeln!(out)?;
        any = true;
    }
    Ok(any)
}

fn interest(t: &Thread) -> u8 {
    match (t.blocked, t.waits_for.is_some(), t.holds.is_empty()) {
        (true, _, false) => 0,
        (true, _, true) => 1,
        (false, true, _) => 2,
        _ => 3,
    }
}

fn threads<W: Write>(doc: &Document, style: &Style, out: &mut W) -> io::Result<()> {
    writeln!(out, "{}", style.bold("THREADS"))?;
    let mut order: Vec<&Thread> = doc.threads.iter().collect();
    order.sort_by_key(|t| interest(t));
    for t in order {
        let what = match &t.waits_for {
            Some(w) => {
                let target = match (w.kind, &w.target) {
                    (WaitKind::ChildExit, Some(p)) => format!("{} to exit", party_label(doc, p)),
                    (WaitKind::Input, _) => w.name.clone().unwrap_or_else(|| "input".into()),
                    (WaitKind::Join, Some(th)) => {
                        format!("thread {} (join)", thread_label(doc, th))
                    }
                    (WaitKind::Notify, Some(l)) => {
                        format!("notify on {}", lock_label(doc, l, w.name.as_deref()))
                    }
                    (_, Some(l)) => lock_label(doc, l, w.name.as_deref()),
                    _ => format!("futex {}", w.futex.as_deref().unwrap_or("?")),
                };
                format!(
                    "waits for {target} [{}]{}",
                    w.evidence.as_str(),
                    super::timing::wait_timing(w)
                )
            }
            None => match (&t.syscall_name, t.state) {
                (Some(call), ThreadState::Syscall) => format!("in {call}, not modelled"),
                _ => t.state.as_str().to_string(),
            },
        };
        writeln!(
            out,
            "  {}  {}  {what}",
            style.bold(&thread_label(doc, &t.id)),
            t.state.as_str()
        )?;
        if let Some(why) = &t.kernel_unmatched {
            writeln!(out, "      kernel state unknown: {why}")?;
        }
        holds_and_stack(doc, style, &t.holds, &t.frames, "      ", out)?;
        let stopped = t.native_frames_from == Some(NativeSource::PtraceStop);
        native_stack(style, &t.native_frames, stopped, "      ", out)?;
        for f in t.frames.iter().filter(|f| f.locals.is_some()) {
            writeln!(
                out,
                "      {} ({}:{})",
                f.function,
                short_file(&f.file),
                f.line
            )?;
            for l in f.locals.iter().flatten() {
                writeln!(out, "          {} = {}", l.name, l.repr)?;
            }
        }
    }
    Ok(())
}

/// A blocked thread's native frames, innermost (the syscall) first, 12 at most.
fn native_stack<W: Write>(
    style: &Style,
    frames: &[NativeFrame],
    stopped: bool,
    indent: &str,
    out: &mut W,
) -> io::Result<()> {
    if frames.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = frames.iter().take(12).map(NativeFrame::label).collect();
    let more = if frames.len() > 12 {
        format!("  <- … {} more", frames.len() - 12)
    } else {
        String::new()
    };
    // Frames read in a ptrace stop (`--native`) say so: the thread was held for them.
    let from = if stopped { " (ptrace stop)" } else { "" };
    let line = format!("native{from}: {}{more}", shown.join("  <-  "));
    writeln!(out, "{indent}{}", style.dim(&line))
}

/// What a thread or task holds, then its innermost frames (8 at most).
fn holds_and_stack<W: Write>(
    doc: &Document,
    style: &Style,
    holds: &[Hold],
    frames: &[Frame],
    indent: &str,
    out: &mut W,
) -> io::Result<()> {
    for h in holds {
        let since = h
            .site
            .as_deref()
            .map(|s| format!(" since {s}"))
            .unwrap_or_default();
        let lock = lock_label(doc, &h.lock, h.name.as_deref());
        writeln!(
            out,
            "{indent}holds {lock}{since}  [{}]",
            h.evidence.as_str()
        )?;
    }
    let stack: Vec<String> = frames
        .iter()
        .take(8)
        .map(|f| format!("{} ({}:{})", f.function, short_file(&f.file), f.line))
        .collect();
    if !stack.is_empty() {
        let more = if frames.len() > 8 {
            format!("  <- … {} more", frames.len() - 8)
        } else {
            String::new()
        };
        writeln!(out, "{indent}{}{more}", style.dim(&stack.join("  <-  ")))?;
    }
    Ok(())
}

/// One edge of a finding: `  FROM VERB  TO  [evidence]`, then where, when known.
fn edge_lines<W: Write>(
    out: &mut W,
    style: &Style,
    from: &str,
    verb: &str,
    to: &str,
    e: &Edge,
) -> io::Result<()> {
    writeln!(
        out,
        "  {from} {verb}  {to}  {}",
        style.dim(&format!("[{}]", e.evidence.as_str()))
    )?;
    if let Some(site) = &e.site {
        writeln!(out, "      at {site}")?;
    }
    Ok(())
}
