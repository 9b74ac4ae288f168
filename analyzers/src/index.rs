//! Trace structure over a [`SpanTable`]: which rows form a trace and each row's
//! parent row. Calls between services are built on it in `calls.rs`.
//!
//! ```text
//!  SpanTable ──► Index { traces: row ranges, parent_row } ──► structural detectors
//!                                                                    (retries, cascades,
//!                                                                     critical path, skew)
//! ```
//!
//! Built once per analysis in O(n log n); rows whose parent is not in the capture are
//! roots of their own.

use std::collections::HashMap;
use std::ops::Range;

use faultline_model::SpanKind;

use crate::table::SpanTable;

/// No row (a root span, or a parent outside the capture).
pub const NO_ROW: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
pub struct Index {
    /// Rows ordered by (trace, start).
    pub order: Vec<u32>,
    /// One range of `order` per trace present.
    pub traces: Vec<Range<usize>>,
    /// The parent's row for every row, or [`NO_ROW`].
    pub parent_row: Vec<u32>,
}

impl Index {
    pub fn build(table: &SpanTable) -> Index {
        let mut order: Vec<u32> = (0..table.len() as u32).collect();
        order
            .sort_unstable_by_key(|&row| (table.trace[row as usize], table.start_ns[row as usize]));
        let mut traces = Vec::new();
        let mut parent_row = vec![NO_ROW; table.len()];
        let mut by_id: HashMap<u64, u32> = HashMap::new();
        let mut begin = 0;
        while begin < order.len() {
            let trace = table.trace[order[begin] as usize];
            let mut end = begin;
            while end < order.len() && table.trace[order[end] as usize] == trace {
                end += 1;
            }
            by_id.clear();
            for &row in &order[begin..end] {
                // Zipkin-style shared ids (client and server spans with one id): the
                // first one (the client, which starts earlier) is the one children of
                // the id hang from only if no later span claims it; keep the first.
                by_id.entry(table.span_id[row as usize]).or_insert(row);
            }
            for &row in &order[begin..end] {
                let parent = table.parent[row as usize];
                if parent != 0
                    && let Some(&p) = by_id.get(&parent)
                    && p != row
                {
                    parent_row[row as usize] = p;
                }
            }
            traces.push(begin..end);
            begin = end;
        }
        Index {
            order,
            traces,
            parent_row,
        }
    }

    pub fn parent(&self, row: u32) -> Option<u32> {
        match self.parent_row[row as usize] {
            NO_ROW => None,
            parent => Some(parent),
        }
    }

    /// The rows of each trace.
    pub fn trace_rows(&self) -> impl Iterator<Item = &[u32]> + '_ {
        self.traces.iter().map(|range| &self.order[range.clone()])
    }
}

/// Whether a span is an outgoing call (client or producer).
pub fn is_outgoing(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Client | SpanKind::Producer)
}

/// Whether a span is the receiving end of a call (server or consumer).
pub fn is_incoming(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Server | SpanKind::Consumer)
}
