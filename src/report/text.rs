//! The human report: findings first, in the manner of jstack's "Found one Java-level
//! deadlock", each claim with its evidence in brackets; then every thread, most interesting first.

use std::io::{self, Write};

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

fn process_label(doc: &Document, pid: i32) -> String {
    match doc.processes.iter().find(|p| p.pid == pid) {
        Some(p) => format!(
            "process {pid} ({})",
            crate::analysis::detectors::short_cmd(p)
        ),
        None => format!("process {pid} (not Python or gone)"),
    }
}

/// A thread, a process (`PID:p`) or a resource: whatever a cross-process edge points at.
fn party_label(doc: &Document, id: &str) -> String {
    if let Some(pid) = id.strip_suffix(":p").and_then(|p| p.parse().ok()) {
        process_label(doc, pid)
    } else if doc.thread(id).is_some() || id.contains(":t:") {
        thread_label(doc, id)
    } else {
        lock_label(doc, id, None)
    }
}

fn thread_label(doc: &Document, id: &str) -> String {
    match doc.thread(id) {
        Some(t) if doc.processes.len() > 1 => {
            let name = t
                .name
                .clone()
                .map(|n| format!("\"{n}\""))
                .unwrap_or_else(|| format!("thread {}", t.thread_id));
            format!("{name} of {}", process_label(doc, t.pid))
        }
        Some(t) => {
            let name = t
                .name
                .clone()
                .map(|n| format!("\"{n}\""))
                .unwrap_or_else(|| format!("thread {}", t.thread_id));
            match t.native_id {
                Some(tid) => format!("{name} (tid {tid})"),
                None => name,
            }
        }
        None => format!("thread {}", id.rsplit(':').next().unwrap_or(id)),
    }
}

fn task_label(doc: &Document, id: &str) -> String {
    match doc.task(id) {
        Some(t) => format!(
            "task \"{}\" ({})",
            t.name.as_deref().unwrap_or("?"),
            t.coroutine.as_deref().unwrap_or("?")
        ),
        None => format!("task {}", id.rsplit(':').next().unwrap_or(id)),
    }
}

/// A thread or an asyncio task.
fn node_label(doc: &Document, id: &str) -> String {
    if id.contains(":task:") {
        task_label(doc, id)
    } else if id.contains(":loop:") {
        format!("event loop {}", id.rsplit(':').next().unwrap_or(id))
    } else {
        party_label(doc, id)
    }
}

fn lock_label(doc: &Document, id: &str, name: Option<&str>) -> String {
    match doc.lock(id) {
        Some(l) => {
            if let Some(sh) = &l.shared {
                let name = name
                    .map(str::to_string)
                    .or_else(|| l.names.first().map(|n| n.name.clone()));
                let what = match l.kind.as_str() {
                    "mp_lock" => "multiprocessing.Lock",
                    "mp_rlock" => "multiprocessing.RLock",
                    "mp_semaphore" => "multiprocessing.Semaphore",
                    "mp_condition" => "multiprocessing.Condition",
                    "children" => return format!("any child of process {} to exit", l.pid),
                    k => k,
                };
                let place = match (&sh.path, sh.offset) {
                    (Some(p), Some(off)) if l.kind != "pipe" && l.kind != "socket" => {
                        format!("{p} +{off:#x}")
                    }
                    (Some(p), _) => p.clone(),
                    _ => l.id.clone(),
                };
                return match name {
                    Some(n) if !n.starts_with("read ") && !n.starts_with("write ") => {
                        format!("{n} <{what} {place}>")
                    }
                    _ => format!("<{what} {place}>"),
                };
            }
            let kind = match l.kind.as_str() {
                "lock" => "_thread.lock",
                "rlock" => "_thread.RLock",
                "asyncio_lock" => "asyncio.Lock",
                k => k,
            };
            let name = name
                .map(str::to_string)
                .or_else(|| l.names.first().map(|n| n.name.clone()));
            match (name, &l.module) {
                (_, Some(m)) => format!("import lock of module {m} <{kind} {}>", l.address),
                (Some(n), None) => format!("{n} <{kind} {}>", l.address),
                (None, None) => format!("<{kind} {}>", l.address),
            }
        }
        None => id.to_string(),
    }
}

pub fn render<W: Write>(doc: &Document, style: &Style, mut out: W) -> io::Result<()> {
    let p = &doc.processes[0];
    if doc.processes.len() > 1 {
        writeln!(
            out,
            "{} · process tree of pid {} · {} Python processes · {} threads · window {:.1} s ({} snapshot{})",
            style.bold(&format!("gridlock {}", doc.tool.version)),
            p.pid,
            doc.processes.len(),
            doc.threads.len(),
            doc.window.seconds,
            doc.window.snapshots,
            if doc.window.snapshots == 1 { "" } else { "s" }
        )?;
        for q in &doc.processes {
            writeln!(
                out,
                "  pid {} (parent {}) · CPython {} · {}",
                q.pid,
                q.ppid.map(|x| x.to_string()).unwrap_or_else(|| "?".into()),
                q.python_version,
                if q.cmdline.is_empty() {
                    &q.name
                } else {
                    &q.cmdline
                }
            )?;
            for n in &q.notes {
                writeln!(out, "    note: {n}")?;
            }
        }
        writeln!(out)?;
        if doc.findings.is_empty() {
            writeln!(
                out,
                "No deadlock, stall or orphaned lock persisted over the window."
            )?;
            writeln!(out)?;
        }
        for f in &doc.findings {
            finding(doc, f, style, &mut out)?;
            writeln!(out)?;
        }
        return threads(doc, style, &mut out);
    }
    writeln!(
        out,
        "{} · pid {} · CPython {} · {} · {} threads · window {:.1} s ({} snapshot{})",
        style.bold(&format!("gridlock {}", doc.tool.version)),
        p.pid,
        p.python_version,
        if p.cmdline.is_empty() {
            &p.name
        } else {
            &p.cmdline
        },
        doc.threads.len(),
        doc.window.seconds,
        doc.window.snapshots,
        if doc.window.snapshots == 1 { "" } else { "s" }
    )?;
    for n in &p.notes {
        writeln!(out, "note: {n}")?;
    }
    writeln!(out)?;
    if doc.findings.is_empty() {
        writeln!(
            out,
            "No deadlock, stall, orphaned lock or event-loop block persisted over the window."
        )?;
        writeln!(out)?;
    }
    for f in &doc.findings {
        finding(doc, f, style, &mut out)?;
        writeln!(out)?;
    }
    loops(doc, style, &mut out)?;
    threads(doc, style, &mut out)?;
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
                let doing = match (&l.state[..], &l.step) {
                    ("step", Some(s)) => match (&s.task, &s.callback) {
                        (Some(t), _) => format!("running a step of {}", task_label(doc, t)),
                        (None, Some(cb)) => format!("running callback {cb}"),
                        _ => "running a callback".into(),
                    },
                    ("polling", _) => "polling (idle in the selector)".into(),
                    (s, _) => s.to_string(),
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
        for t in tasks.iter().take(SHOWN) {
            let waits = match &t.waits_for {
                Some(w) => {
                    let target = match (&w.target, w.kind.as_str()) {
                        (Some(x), "task") => node_label(doc, x),
                        (Some(x), "lock") => lock_label(doc, x, w.name.as_deref()),
                        (_, "gather") => format!(
                            "gather of {}",
                            w.targets
                                .iter()
                                .map(|x| node_label(doc, x))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        (_, k) => match &w.name {
                            Some(n) => format!("{k} {n}"),
                            None => k.to_string(),
                        },
                    };
                    format!("awaits {target} [{}]", w.evidence.as_str())
                }
                None if t.state == "running" => "running".into(),
                None => "scheduled (ready to run)".into(),
            };
            writeln!(
                out,
                "    {}{}  {}  {waits}",
                style.bold(&task_label(doc, &t.id)),
                if t.eager { " eager" } else { "" },
                t.address
            )?;
            holds_and_stack(doc, style, &t.holds, &t.frames, "        ", out)?;
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
    writeln!(out)?;
    match f.kind {
        FindingKind::Deadlock => {
            // Edges alternate: thread -waits_for-> lock -held_by-> thread, or thread -joins-> thread.
            let mut i = 0;
            while i < f.edges.len() {
                let e = &f.edges[i];
                if e.via == "waits_for" {
                    let waited = lock_label(doc, &e.to, e.name.as_deref());
                    edge_lines(
                        out,
                        style,
                        &style.bold(&node_label(doc, &e.from)),
                        "waits for",
                        &waited,
                        e,
                    )?;
                    if let Some(h) = f.edges.get(i + 1).filter(|h| h.via == "held_by") {
                        let named = h
                            .name
                            .as_deref()
                            .map(|n| format!(" as {n}"))
                            .unwrap_or_default();
                        if h.evidence == Evidence::Pipe || h.evidence == Evidence::Wait4 {
                            writeln!(
                                out,
                                "    {} by {}, which is not serving it  {}",
                                if h.evidence == Evidence::Pipe {
                                    "other end held"
                                } else {
                                    "child"
                                },
                                party_label(doc, &h.to),
                                style.dim(&format!("[{}]", h.evidence.as_str()))
                            )?;
                            i += 2;
                            while let Some(more) = f.edges.get(i).filter(|x| x.via == "held_by") {
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
                } else if e.via == "awaits" {
                    let awaited = node_label(doc, &e.to);
                    edge_lines(
                        out,
                        style,
                        &style.bold(&node_label(doc, &e.from)),
                        "awaits",
                        &awaited,
                        e,
                    )?;
                } else if e.via == "held_by" {
                    // A further holder of an OR-wait (knot).
                    writeln!(
                        out,
                        "    or by {}  {}",
                        party_label(doc, &e.to),
                        style.dim(&format!("[{}]", e.evidence.as_str()))
                    )?;
                } else if e.via == "waits_for_exit" {
                    let child = format!("{} to exit", party_label(doc, &e.to));
                    edge_lines(
                        out,
                        style,
                        &style.bold(&thread_label(doc, &e.from)),
                        "waits for",
                        &child,
                        e,
                    )?;
                } else if e.via == "joins" {
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
            for e in &f.edges {
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
                let verb = match e.via.as_str() {
                    "runs" => "runs",
                    "held_by" => "is held by",
                    "joins" => "joins",
                    "then_takes" => "is held while taking",
                    _ => "waits for",
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
    if let Some(a) = &f.advice {
        writeln!(out)?;
        writeln!(out, "  {a}")?;
    }
    Ok(())
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
                    if w.timed { " (with timeout)" } else { "" }
                )
            }
            None => t.state.as_str().to_string(),
        };
        writeln!(
            out,
            "  {}  {}  {what}",
            style.bold(&thread_label(doc, &t.id)),
            t.state.as_str()
        )?;
        holds_and_stack(doc, style, &t.holds, &t.frames, "      ", out)?;
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
