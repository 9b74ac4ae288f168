//! Live analysis: the analyzers run over the store's recent spans, off the UI loop.
//!
//! ```text
//!  tick ─► (no analysis in flight?) ─► batches(store) ─► Arc'd batches (no copy)
//!        ─► spawn_blocking: TableBuilder ─► SpanTable ─► analyze (demo/production thresholds)
//!        ─► Action::Analysis { at_ns, report, calls (the service map's graph) }
//! ```
//!
//! The detectors are pure (ARCHITECTURE.md): the same spans give the same report,
//! live, replayed, or from `faultline analyze`.

use std::sync::Arc;

use faultline_analyzers::report::{Report, analyze, baseline_share_until, profile_for};
use faultline_analyzers::table::TableBuilder;
use faultline_analyzers::{SpanTable, Thresholds};

use crate::app::Action;
use crate::calls::call_graph;
use crate::store::{Batch, SpanStore};

/// How much recent data each analysis looks at while all is quiet.
pub const WINDOW_NS: u64 = 120 * 1_000_000_000;
/// How far back an analysis reaches at most during an incident (see
/// `App::analysis_from`).
pub const MAX_WINDOW_NS: u64 = 600 * 1_000_000_000;

/// The store's batches, shared (cheap: one `Arc` each); [`run`] picks the window's
/// spans out of them on the blocking pool, so the UI loop never scans spans.
pub fn batches(store: &SpanStore) -> Vec<Batch> {
    store.batches().cloned().collect()
}

/// What the app keeps of one analysis: the report and the window's call graph (the
/// service map), computed together from one table.
/// The spans analysed are those ending in `(window.from_ns, window.until_ns]`.
pub fn action(batches: &[Batch], window: Window, thresholds: Option<&Thresholds>) -> Action {
    let table = table(batches, window.from_ns, window.until_ns);
    Action::Analysis {
        at_ns: window.until_ns,
        report: Arc::new(report(&table, window, thresholds)),
        calls: Arc::new(call_graph(&table)),
    }
}

/// What one analysis looks at (see `App::analysis_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ns: u64,
    pub until_ns: u64,
    /// During an incident: the last moment known to be healthy. The detectors compare
    /// against a baseline at the window's start (a share of it, `baseline_share`);
    /// this makes that share end here, so the baseline is the healthy time before the
    /// incident however short it was, not a quarter of the window that slides into
    /// the incident as it goes on.
    pub baseline_until_ns: Option<u64>,
}

impl Window {
    /// The last `span` up to `until`, with the usual baseline.
    pub fn last(span_ns: u64, until_ns: u64) -> Window {
        Window {
            from_ns: until_ns.saturating_sub(span_ns),
            until_ns,
            baseline_until_ns: None,
        }
    }
}

/// The window's spans as a table.
fn table(batches: &[Batch], from: u64, until_ns: u64) -> SpanTable {
    let mut builder = TableBuilder::new();
    for batch in batches {
        for span in batch.spans.iter() {
            if span.end_ns > from && span.end_ns <= until_ns {
                builder.push(span);
            }
        }
    }
    builder.finish()
}

fn report(table: &SpanTable, window: Window, thresholds: Option<&Thresholds>) -> Report {
    let mut thresholds = match thresholds {
        Some(thresholds) => thresholds.clone(),
        None => Thresholds::for_profile(profile_for(table)),
    };
    let ns = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
    if let Some(share) = window.baseline_until_ns.and_then(|healthy| {
        baseline_share_until(ns(window.from_ns), ns(window.until_ns), ns(healthy))
    }) {
        thresholds.baseline_share = share;
    }
    analyze(table, &thresholds, Vec::new())
}
