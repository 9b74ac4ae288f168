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

use faultline_analyzers::report::{Report, analyze, profile_for};
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
/// The spans analysed are those ending in `(from_ns, until_ns]`.
pub fn action(
    batches: &[Batch],
    from_ns: u64,
    until_ns: u64,
    thresholds: Option<&Thresholds>,
) -> Action {
    let table = table(batches, from_ns, until_ns);
    Action::Analysis {
        at_ns: until_ns,
        report: Arc::new(report(&table, thresholds)),
        calls: Arc::new(call_graph(&table)),
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

fn report(table: &SpanTable, thresholds: Option<&Thresholds>) -> Report {
    let auto;
    let thresholds = match thresholds {
        Some(thresholds) => thresholds,
        None => {
            auto = Thresholds::for_profile(profile_for(table));
            &auto
        }
    };
    analyze(table, thresholds, Vec::new())
}
