//! The dashboard's state. It changes only in `App::update`, in response to one event at a
//! time; views read it and never change it. Side effects (pausing the sampler, writing a
//! file, quitting) are returned as `Effect`s for the event loop to carry out.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{Event as Input, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::panels::threads::{self, SortKey, ThreadHistory, HISTORY_SECS};
use super::panels::{findings, graph};
use crate::model::{Document, Finding, FindingKind, Thread, ThreadState};

/// Everything that can change the state.
#[derive(Debug)]
pub enum Event {
    Input(Input),
    Sample(Box<Sample>),
    /// The target is gone: keep the last state on screen.
    TargetExited,
    /// A snapshot failed but the target is alive (it may have been mid-update).
    SamplerError(String),
    Tick(Tick),
    /// SIGINT/SIGTERM from outside.
    Signal(i32),
    Saved(Result<PathBuf, String>),
}

/// One sampled document and how sampling is going.
#[derive(Debug)]
pub struct Sample {
    pub doc: Document,
    /// Seconds since attaching, when the snapshot was taken.
    pub at: f64,
    /// The rate actually used, after adapting to the cost of a snapshot.
    pub rate: f64,
    /// What a snapshot of this target costs (CPU time of the sampling thread).
    pub cost: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Seconds since attaching.
    pub elapsed: f64,
    /// gridlock's own CPU use, percent of one core, over the last second or so.
    pub cpu: Option<f64>,
}

#[derive(Debug)]
pub enum Effect {
    Quit,
    Pause(bool),
    Locals(bool),
    Save(Box<Document>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Threads,
    Graph,
    Findings,
    Loops,
    Processes,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Threads,
        View::Graph,
        View::Findings,
        View::Loops,
        View::Processes,
    ];
    pub fn title(self) -> &'static str {
        match self {
            View::Threads => "Threads",
            View::Graph => "Graph",
            View::Findings => "Findings",
            View::Loops => "Loops",
            View::Processes => "Processes",
        }
    }
    fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Thread(String),
    Finding(String),
}

/// Per sample: whether some thread held the GIL, and whether some thread waited for it.
#[derive(Debug, Default)]
pub struct GilHistory {
    samples: VecDeque<(f64, bool, bool)>,
}

impl GilHistory {
    /// (share of samples with a holder, share of samples in which a thread waited for it).
    pub fn shares(&self) -> (f64, f64) {
        let n = self.samples.len().max(1) as f64;
        let held = self.samples.iter().filter(|s| s.1).count() as f64;
        let waited = self.samples.iter().filter(|s| s.2).count() as f64;
        (held / n, waited / n)
    }
}

pub struct App {
    pub pid: i32,
    pub doc: Option<Document>,
    pub view: View,
    pub detail: Option<Detail>,
    pub help: bool,
    pub filter: String,
    pub editing_filter: bool,
    pub sort: SortKey,
    /// Indexes into `doc.threads`, filtered and sorted.
    pub rows: Vec<usize>,
    /// Selected row per view.
    pub selected: [usize; 5],
    /// Scroll of the open detail (stack or report).
    pub detail_scroll: usize,
    /// The open finding's full report, one entry per line.
    pub report: Vec<String>,
    pub history: HashMap<String, ThreadHistory>,
    pub gil: GilHistory,
    /// Seconds since attaching (ticks and samples).
    pub elapsed: f64,
    /// When the newest sample was taken, seconds since attaching.
    pub now: f64,
    pub samples: usize,
    pub requested_rate: f64,
    pub rate: f64,
    pub cost: Duration,
    pub paused: bool,
    pub exited: bool,
    pub cpu: Option<f64>,
    pub tree: bool,
    pub locals: bool,
    known_findings: HashSet<String>,
    /// A finding appeared while another view was open (its kind, for the header).
    pub new_finding: Option<FindingKind>,
    /// One line for the footer: a saved file, an error.
    pub message: Option<String>,
    pub quit: bool,
}

impl App {
    pub fn new(pid: i32, rate: f64) -> App {
        App {
            pid,
            doc: None,
            view: View::Threads,
            detail: None,
            help: false,
            filter: String::new(),
            editing_filter: false,
            sort: SortKey::Interest,
            rows: Vec::new(),
            selected: [0; 5],
            detail_scroll: 0,
            report: Vec::new(),
            history: HashMap::new(),
            gil: GilHistory::default(),
            elapsed: 0.0,
            now: 0.0,
            samples: 0,
            requested_rate: rate,
            rate,
            cost: Duration::ZERO,
            paused: false,
            exited: false,
            cpu: None,
            tree: false,
            locals: false,
            known_findings: HashSet::new(),
            new_finding: None,
            message: None,
            quit: false,
        }
    }

    /// An app showing a recorded document, as if it were the first sample (for tests and
    /// for replaying a saved document).
    pub fn from_document(doc: Document) -> App {
        let mut app = App::new(doc.processes.first().map(|p| p.pid).unwrap_or(0), 10.0);
        let at = doc.window.seconds;
        let exited = doc.processes.iter().any(|p| p.exited);
        app.update(Event::Sample(Box::new(Sample {
            doc,
            at,
            rate: 10.0,
            cost: Duration::ZERO,
        })));
        app.elapsed = at;
        if exited {
            app.update(Event::TargetExited);
        }
        app
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Input(Input::Key(key)) if key.kind != KeyEventKind::Release => self.key(key),
            Event::Input(_) => Vec::new(),
            Event::Sample(s) => {
                self.sample(*s);
                Vec::new()
            }
            Event::TargetExited => {
                self.exited = true;
                if let Some(doc) = self.doc.as_mut() {
                    for p in &mut doc.processes {
                        p.exited = true;
                    }
                }
                Vec::new()
            }
            Event::SamplerError(e) => {
                self.message = Some(format!("sampling failed: {e}"));
                Vec::new()
            }
            Event::Tick(t) => {
                self.elapsed = t.elapsed;
                self.cpu = t.cpu.or(self.cpu);
                Vec::new()
            }
            Event::Signal(_) => {
                self.quit = true;
                vec![Effect::Quit]
            }
            Event::Saved(r) => {
                self.message = Some(match r {
                    Ok(p) => format!("saved the document to {}", p.display()),
                    Err(e) => format!("could not save the document: {e}"),
                });
                Vec::new()
            }
        }
    }

    fn sample(&mut self, s: Sample) {
        let Sample {
            doc,
            at,
            rate,
            cost,
        } = s;
        self.samples = doc.window.snapshots.max(self.samples + 1);
        self.rate = rate;
        self.cost = cost;
        self.now = at;
        self.elapsed = self.elapsed.max(at);
        let horizon = at - HISTORY_SECS;
        threads::record(&mut self.history, &doc, at);
        self.gil.samples.push_back((
            at,
            doc.threads.iter().any(|t| t.owns_gil),
            doc.threads.iter().any(|t| t.state == ThreadState::GilWait),
        ));
        while self.gil.samples.front().is_some_and(|s| s.0 < horizon) {
            self.gil.samples.pop_front();
        }
        let first = self.doc.is_none();
        for f in &doc.findings {
            if self.known_findings.insert(f.id.clone()) && !first && self.view != View::Findings {
                self.new_finding = Some(f.kind);
            }
        }
        let selected_thread = self.selected_thread().map(|t| t.id.clone());
        self.doc = Some(doc);
        self.refresh_rows();
        // Keep the same thread selected as rows move under it.
        if let Some(id) = selected_thread {
            if let Some(pos) = self.row_of(&id) {
                self.selected[View::Threads.index()] = pos;
            }
        }
        self.clamp_selection();
        if let Some(Detail::Finding(id)) = &self.detail {
            let id = id.clone();
            self.report = self.finding_report(&id);
        }
    }

    fn row_of(&self, id: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        self.rows.iter().position(|&i| doc.threads[i].id == id)
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c')) {
            self.quit = true;
            return vec![Effect::Quit];
        }
        if self.editing_filter {
            match key.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.refresh_rows();
            self.clamp_selection();
            return Vec::new();
        }
        if self.help {
            match key.code {
                KeyCode::Char('q') => {
                    self.quit = true;
                    return vec![Effect::Quit];
                }
                _ => self.help = false,
            }
            return Vec::new();
        }
        let mut effects = Vec::new();
        match key.code {
            KeyCode::Char('q') => {
                self.quit = true;
                effects.push(Effect::Quit);
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => self.switch(View::ALL[(self.view.index() + 1) % View::ALL.len()]),
            KeyCode::BackTab => {
                self.switch(View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()])
            }
            KeyCode::Char(c @ '1'..='5') => self.switch(View::ALL[c as usize - '1' as usize]),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-10),
            KeyCode::PageDown => self.move_by(10),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(-1_000_000),
            KeyCode::End | KeyCode::Char('G') => self.move_by(1_000_000),
            KeyCode::Enter => self.open_detail(),
            KeyCode::Esc => {
                if self.detail.take().is_some() {
                    if self.locals {
                        self.locals = false;
                        effects.push(Effect::Locals(false));
                    }
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refresh_rows();
                }
                self.detail_scroll = 0;
            }
            KeyCode::Char('/') => {
                self.switch(View::Threads);
                self.editing_filter = true;
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.refresh_rows();
            }
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                effects.push(Effect::Pause(self.paused));
            }
            KeyCode::Char('l') if matches!(self.detail, Some(Detail::Thread(_))) => {
                self.locals = !self.locals;
                effects.push(Effect::Locals(self.locals));
            }
            KeyCode::Char('d') => match &self.doc {
                Some(doc) => effects.push(Effect::Save(Box::new(doc.clone()))),
                None => self.message = Some("nothing sampled yet".into()),
            },
            _ => {}
        }
        effects
    }

    fn switch(&mut self, view: View) {
        self.view = view;
        self.detail = None;
        self.detail_scroll = 0;
        if view == View::Findings {
            self.new_finding = None;
        }
    }

    fn move_by(&mut self, delta: i64) {
        if self.detail.is_some() {
            self.detail_scroll = (self.detail_scroll as i64 + delta).max(0) as usize;
            return;
        }
        let len = self.list_len();
        let i = &mut self.selected[self.view.index()];
        *i = (*i as i64 + delta).clamp(0, len.saturating_sub(1) as i64) as usize;
    }

    /// How many selectable rows the current view has.
    pub fn list_len(&self) -> usize {
        let Some(doc) = &self.doc else { return 0 };
        match self.view {
            View::Threads => self.rows.len(),
            View::Findings => doc.findings.len(),
            View::Graph => graph::lines_len(doc),
            View::Loops => doc.tasks.len(),
            View::Processes => doc.processes.len(),
        }
    }

    fn clamp_selection(&mut self) {
        for v in View::ALL {
            let saved = self.view;
            self.view = v;
            let len = self.list_len();
            self.view = saved;
            let i = &mut self.selected[v.index()];
            *i = (*i).min(len.saturating_sub(1));
        }
    }

    pub fn selection(&self) -> usize {
        self.selected[self.view.index()]
    }

    pub fn selected_thread(&self) -> Option<&Thread> {
        let doc = self.doc.as_ref()?;
        let i = *self.rows.get(self.selected[View::Threads.index()])?;
        doc.threads.get(i)
    }

    pub fn selected_finding(&self) -> Option<&Finding> {
        self.doc
            .as_ref()?
            .findings
            .get(self.selected[View::Findings.index()])
    }

    fn open_detail(&mut self) {
        self.detail_scroll = 0;
        match self.view {
            View::Threads => {
                if let Some(t) = self.selected_thread() {
                    self.detail = Some(Detail::Thread(t.id.clone()));
                }
            }
            View::Findings => {
                if let Some(f) = self.selected_finding() {
                    let id = f.id.clone();
                    self.report = self.finding_report(&id);
                    self.detail = Some(Detail::Finding(id));
                }
            }
            _ => {}
        }
    }

    /// The text report (`gridlock dump`'s) of one finding, threads included.
    fn finding_report(&self, id: &str) -> Vec<String> {
        match &self.doc {
            Some(doc) => findings::report(doc, id),
            None => Vec::new(),
        }
    }

    fn refresh_rows(&mut self) {
        self.rows = match &self.doc {
            Some(doc) => threads::rows(doc, &self.filter, self.sort),
            None => Vec::new(),
        };
    }
}
