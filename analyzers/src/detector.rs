//! The one small trait every detector implements, and what detectors are given.
//!
//! ```text
//!  SpanTable + Thresholds ──► Context (index, windows: built once, shared)
//!                                 └──► Detector::check ──► Vec<Finding>
//! ```
//!
//! Detectors are pure: the same table and thresholds give the same findings, with no
//! I/O and no clock, so they run the same on a capture, on a replay and live.

use std::sync::OnceLock;

use faultline_model::TraceId;

use crate::calls::Calls;
use crate::config::Thresholds;
use crate::detectors::red::RedSeries;
use crate::finding::{Finding, MAX_EVIDENCE};
use crate::index::Index;
use crate::table::SpanTable;

pub trait Detector: Send + Sync {
    /// Short, stable, kebab-case (`retry-amplification`).
    fn name(&self) -> &'static str;
    /// The symptom it looks for, in one line.
    fn symptom(&self) -> &'static str;
    fn check(&self, cx: &Context<'_>) -> Vec<Finding>;
}

/// What every detector reads: the table, its trace index, the thresholds, and the
/// time windows signals are bucketed into.
#[derive(Debug)]
pub struct Context<'a> {
    pub table: &'a SpanTable,
    pub thresholds: &'a Thresholds,
    /// Start of the first window (the earliest span start).
    pub start_ns: i64,
    /// End of the analysed time (the latest span end).
    pub end_ns: i64,
    pub window_ns: i64,
    index: OnceLock<Index>,
    calls: OnceLock<Calls>,
    red: OnceLock<RedSeries>,
}

const SECOND_NS: i64 = 1_000_000_000;

impl<'a> Context<'a> {
    pub fn new(table: &'a SpanTable, thresholds: &'a Thresholds) -> Self {
        let (start_ns, end_ns) = table.time_range().unwrap_or((0, 0));
        let window_ns = thresholds.window_ns.unwrap_or_else(|| {
            let span = (end_ns - start_ns).max(1);
            (span / 60).max(SECOND_NS)
        });
        Context {
            table,
            thresholds,
            start_ns,
            end_ns,
            window_ns: window_ns.max(1),
            index: OnceLock::new(),
            calls: OnceLock::new(),
            red: OnceLock::new(),
        }
    }

    pub fn index(&self) -> &Index {
        self.index.get_or_init(|| Index::build(self.table))
    }

    /// Calls between services (sidecars looked through).
    pub fn calls(&self) -> &Calls {
        self.calls
            .get_or_init(|| Calls::build(self.table, self.index()))
    }

    /// RED series per service and per edge, shared by the detectors that need them.
    pub fn red(&self) -> &RedSeries {
        self.red.get_or_init(|| RedSeries::build(self))
    }

    /// Number of windows covering the analysed time.
    pub fn windows(&self) -> usize {
        ((self.end_ns - self.start_ns) / self.window_ns + 1).max(1) as usize
    }

    /// The window holding `ns` (clamped to the analysed time).
    pub fn window_of(&self, ns: i64) -> usize {
        let index = ((ns - self.start_ns).max(0) / self.window_ns) as usize;
        index.min(self.windows() - 1)
    }

    pub fn window_start(&self, window: usize) -> i64 {
        self.start_ns + window as i64 * self.window_ns
    }

    /// Windows that make up the baseline (at least 2, when there are that many).
    pub fn baseline_windows(&self) -> usize {
        let share = (self.windows() as f64 * self.thresholds.baseline_share).floor() as usize;
        share.max(2).min(self.windows())
    }

    /// Capture length in seconds (at least one window).
    pub fn seconds(&self) -> f64 {
        (self.end_ns - self.start_ns).max(self.window_ns) as f64 / SECOND_NS as f64
    }

    /// Up to [`MAX_EVIDENCE`] distinct trace ids of `rows`, in the order given.
    pub fn evidence(&self, rows: impl IntoIterator<Item = u32>) -> Vec<TraceId> {
        let mut ids: Vec<TraceId> = Vec::new();
        for row in rows {
            let id = self.table.trace_id(row);
            if !ids.contains(&id) {
                ids.push(id);
                if ids.len() == MAX_EVIDENCE {
                    break;
                }
            }
        }
        ids
    }
}

/// The first window from which `abnormal` holds in at least two of three consecutive
/// windows (or in the last window, if it is the last one): a rise that sticks, not a
/// blip. Windows before `from` are not considered.
pub fn onset(abnormal: &[bool], from: usize) -> Option<usize> {
    (from..abnormal.len()).find(|&w| {
        abnormal[w] && {
            let next = &abnormal[w + 1..abnormal.len().min(w + 3)];
            next.is_empty() || next.iter().any(|&a| a)
        }
    })
}

/// Runs every detector in `detectors` and returns their findings, most severe first.
pub fn run_all(detectors: &[Box<dyn Detector>], cx: &Context<'_>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = detectors.iter().flat_map(|d| d.check(cx)).collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.starts_ns().cmp(&b.starts_ns()))
            .then(a.kind.cmp(&b.kind))
            .then(a.subject.cmp(&b.subject))
    });
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onset_needs_a_rise_that_sticks() {
        let t = true;
        let f = false;
        assert_eq!(onset(&[f, t, f, f, t, t, f], 0), Some(4));
        assert_eq!(onset(&[f, t, f, t, f], 0), Some(1));
        assert_eq!(onset(&[f, f, f, f], 0), None);
        assert_eq!(onset(&[f, f, f, t], 0), Some(3));
        assert_eq!(onset(&[t, t, f, f], 2), None);
    }
}
