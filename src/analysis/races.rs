//! Race candidates by sampled lockset (after Eraser): per sample, the shared location each
//! thread is writing on its current line, and the locks it holds. A location written by two or
//! more threads whose lock sets have an empty intersection is a `race` finding.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::*;
use crate::snapshot::Snapshot;

#[derive(Debug, Default, Clone)]
struct PerThread {
    name: Option<String>,
    sites: BTreeSet<String>,
    /// Locks held at every sampled write (intersection so far).
    lockset: Option<BTreeSet<String>>,
    samples: usize,
}

#[derive(Debug, Default)]
struct Location {
    name: String,
    threads: BTreeMap<String, PerThread>,
    /// Locks held at every sampled write by any thread.
    common: Option<BTreeSet<String>>,
}

#[derive(Default)]
pub struct RaceTracker {
    locations: BTreeMap<String, Location>,
    lock_names: BTreeMap<String, String>,
}

impl RaceTracker {
    pub fn observe(&mut self, snap: &Snapshot) {
        for t in &snap.threads {
            let held: BTreeSet<String> = t.holds.iter().map(|h| h.lock.clone()).collect();
            for w in &t.writes {
                let loc = self
                    .locations
                    .entry(w.location.clone())
                    .or_insert_with(|| Location {
                        name: w.name.clone(),
                        ..Location::default()
                    });
                let per = loc.threads.entry(t.id.clone()).or_default();
                per.name = t.name.clone();
                per.sites.insert(w.site.clone());
                per.samples += 1;
                per.lockset = Some(match per.lockset.take() {
                    None => held.clone(),
                    Some(s) => s.intersection(&held).cloned().collect(),
                });
                loc.common = Some(match loc.common.take() {
                    None => held.clone(),
                    Some(s) => s.intersection(&held).cloned().collect(),
                });
            }
            for h in &t.holds {
                if let Some(n) = &h.name {
                    self.lock_names
                        .entry(h.lock.clone())
                        .or_insert_with(|| n.clone());
                }
            }
        }
    }

    pub fn findings(&self, pid: i32) -> Vec<Finding> {
        let mut out = Vec::new();
        for (id, loc) in &self.locations {
            if loc.threads.len() < 2 || !loc.common.as_ref().map(|c| c.is_empty()).unwrap_or(false)
            {
                continue;
            }
            let lock_list = |s: &Option<BTreeSet<String>>| -> String {
                let names: Vec<String> = s
                    .iter()
                    .flatten()
                    .map(|l| {
                        self.lock_names
                            .get(l)
                            .cloned()
                            .unwrap_or_else(|| l.rsplit(':').next().unwrap_or(l).to_string())
                    })
                    .collect();
                if names.is_empty() {
                    "no lock".into()
                } else {
                    names.join(", ")
                }
            };
            let parts: Vec<String> = loc
                .threads
                .iter()
                .map(|(tid, p)| {
                    let who = p
                        .name
                        .as_deref()
                        .map(|n| format!("\"{n}\""))
                        .unwrap_or_else(|| tid.clone());
                    let sites: Vec<&str> = p.sites.iter().map(String::as_str).collect();
                    format!(
                        "{who} at {} holding {} ({} samples)",
                        sites.join(", "),
                        lock_list(&p.lockset),
                        p.samples
                    )
                })
                .collect();
            let samples = loc.threads.values().map(|p| p.samples).sum();
            let mut locks: BTreeSet<String> = BTreeSet::new();
            for p in loc.threads.values() {
                locks.extend(p.lockset.iter().flatten().cloned());
            }
            out.push(Finding {
                id: format!("race:{id}"),
                kind: FindingKind::Race,
                severity: FindingKind::Race.severity(),
                first_seen: String::new(),
                last_seen: String::new(),
                samples,
                summary: format!("{} is written by {} threads with no lock in common: {}", loc.name, loc.threads.len(), parts.join("; ")),
                threads: loc.threads.keys().cloned().collect(),
                tasks: Vec::new(),
                processes: vec![pid],
                locks: locks.into_iter().collect(),
                edges: loc
                    .threads
                    .iter()
                    .flat_map(|(tid, p)| {
                        p.sites.iter().map(move |s| Edge {
                            from: tid.clone(),
                            to: id.clone(),
                            via: EdgeVia::Writes,
                            evidence: Evidence::ValueStack,
                            site: Some(s.clone()),
                            name: None,
                        })
                    })
                    .collect(),
                advice: Some("Guard every write to this location with the same lock (or confine it to one thread).".into()),
                duration: None, ongoing: None, loop_id: None, culprit: None, stack: Vec::new(), histogram: None,
                knot: false,
            });
        }
        out
    }
}
