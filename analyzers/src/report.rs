//! The result of one analysis, as values: what was read, the diagnoses, the findings.
//! Printers (text, JSON, Markdown) render it; nothing here formats for a terminal.
//!
//! ```text
//!  SpanTable ──► analyze() ──► Report { summary of inputs, diagnoses, findings }
//!                                 └──► print::{text, json, markdown}
//! ```

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::{Profile, Thresholds};
use crate::detector::{Context, run_all};
use crate::detectors;
use crate::diagnosis::{Diagnosis, diagnose};
use crate::finding::{Finding, Severity};
use crate::table::SpanTable;

/// One input file, as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSummary {
    pub path: String,
    pub format: String,
    pub spans: u64,
    /// Records skipped as bad (with `--lenient`).
    pub skipped: u64,
    /// Spans left out by `--since`/`--until`.
    pub filtered: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub inputs: Vec<InputSummary>,
    pub spans: u64,
    pub traces: u64,
    pub services: Vec<String>,
    /// Time analysed (ns since the epoch); `None` when there were no spans.
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub profile: Profile,
    pub window_ns: i64,
    /// The service or node the findings were narrowed to ([`Report::focus`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus: Option<String>,
    /// Best first.
    pub diagnoses: Vec<Diagnosis>,
    /// Most severe first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The most severe finding's severity, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// Keeps only the findings about `service` (and the diagnoses they support).
    pub fn focus(&mut self, service: &str) {
        self.focus = Some(service.to_owned());
        let keep: Vec<bool> = self
            .findings
            .iter()
            .map(|f| f.subject.involves(service))
            .collect();
        let mut new_index = vec![usize::MAX; keep.len()];
        let mut next = 0;
        for (i, &k) in keep.iter().enumerate() {
            if k {
                new_index[i] = next;
                next += 1;
            }
        }
        let mut i = 0;
        self.findings.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        for diagnosis in &mut self.diagnoses {
            diagnosis.findings = diagnosis
                .findings
                .iter()
                .filter_map(|&f| (new_index[f] != usize::MAX).then_some(new_index[f]))
                .collect();
        }
        self.diagnoses.retain(|d| {
            !d.findings.is_empty() || d.root_causes.iter().any(|c| c.target.contains(service))
        });
    }
}

/// The profile that fits a table: the demo's when its spans come from the demo
/// cluster (its nodes' service name), production otherwise.
pub fn profile_for(table: &SpanTable) -> Profile {
    if table
        .strings
        .find("faultline-node")
        .is_some_and(|id| table.service.contains(&id))
    {
        Profile::Demo
    } else {
        Profile::Production
    }
}

/// The baseline share that makes the detectors' baseline end at `healthy_until_ns`
/// in a window from `from_ns` to `until_ns` (all ns since the epoch): for a window
/// that reaches back before an incident's onset, so that the baseline is the healthy
/// time before it however short that was, not a fixed share of the window that would
/// slide into the incident as it goes on. `None` when the moment is outside the window.
pub fn baseline_share_until(from_ns: i64, until_ns: i64, healthy_until_ns: i64) -> Option<f64> {
    (healthy_until_ns > from_ns && until_ns > from_ns).then(|| {
        ((healthy_until_ns - from_ns) as f64 / (until_ns - from_ns) as f64).clamp(0.05, 0.75)
    })
}

/// Runs every detector and the diagnosis engine over `table`.
pub fn analyze(table: &SpanTable, thresholds: &Thresholds, inputs: Vec<InputSummary>) -> Report {
    let cx = Context::new(table, thresholds);
    let findings = run_all(&detectors::all(), &cx);
    let diagnoses = diagnose(&findings);
    let services: BTreeSet<&str> = table.service.iter().map(|&s| table.str(s)).collect();
    let traces: BTreeSet<u32> = table.trace.iter().copied().collect();
    let range = table.time_range();
    Report {
        inputs,
        spans: table.len() as u64,
        traces: traces.len() as u64,
        services: services.into_iter().map(str::to_owned).collect(),
        start_ns: range.map(|r| r.0),
        end_ns: range.map(|r| r.1),
        profile: thresholds.profile,
        window_ns: cx.window_ns,
        focus: None,
        diagnoses,
        findings,
    }
}
