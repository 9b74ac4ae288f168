//! Live analysis: the analyzers run over the store's recent spans, off the UI loop.
//!
//! ```text
//!  tick ─► (no analysis in flight?) ─► batches(store) ─► Arc'd batches (no copy)
//!        ─► spawn_blocking: TableBuilder ─► SpanTable ─► analyze (demo/production thresholds)
//!        ─► Action::Analysis { at_ns, report }
//! ```
//!
//! The detectors are pure (ARCHITECTURE.md): the same spans give the same report,
//! live, replayed, or from `faultline analyze`.

use std::sync::Arc;

use faultline_analyzers::Thresholds;
use faultline_analyzers::report::{Report, analyze, profile_for};
use faultline_analyzers::table::TableBuilder;

use crate::store::{Batch, SpanStore};

/// How much recent data each analysis looks at.
pub const WINDOW_NS: u64 = 120 * 1_000_000_000;

/// The store's batches, shared (cheap: one `Arc` each); [`run`] picks the window's
/// spans out of them on the blocking pool, so the UI loop never scans spans.
pub fn batches(store: &SpanStore) -> Vec<Batch> {
    store.batches().cloned().collect()
}

/// Analyses the spans of `batches` that end in the window up to `until_ns`. Blocking:
/// call it from `spawn_blocking`.
/// `thresholds`: fixed ones, or `None` for the profile the data calls for (the demo's
/// when the demo cluster's nodes are in it, as `faultline analyze --profile auto`).
pub fn run(batches: &[Batch], until_ns: u64, thresholds: Option<&Thresholds>) -> Report {
    run_from(batches, 0, until_ns, thresholds)
}

/// [`run`] with nothing before `floor_ns` (see `App::analysis_floor_ns`).
pub fn run_from(
    batches: &[Batch],
    floor_ns: u64,
    until_ns: u64,
    thresholds: Option<&Thresholds>,
) -> Report {
    let from = until_ns.saturating_sub(WINDOW_NS).max(floor_ns);
    let mut builder = TableBuilder::new();
    for batch in batches {
        for span in batch.spans.iter() {
            if span.end_ns > from && span.end_ns <= until_ns {
                builder.push(span);
            }
        }
    }
    let table = builder.finish();
    let auto;
    let thresholds = match thresholds {
        Some(thresholds) => thresholds,
        None => {
            auto = Thresholds::for_profile(profile_for(&table));
            &auto
        }
    };
    analyze(&table, thresholds, Vec::new())
}

/// [`run_from`] behind an `Arc`, as the app keeps it.
pub fn run_shared(
    batches: &[Batch],
    floor_ns: u64,
    until_ns: u64,
    thresholds: Option<&Thresholds>,
) -> Arc<Report> {
    Arc::new(run_from(batches, floor_ns, until_ns, thresholds))
}
