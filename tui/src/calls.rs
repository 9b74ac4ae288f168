//! The service map's numbers: who calls whom over an analysis window, computed by the
//! analysis worker with the analyzers' own notion of a call.
//!
//! ```text
//!  the analysis window's SpanTable ──► Index ──► Calls (caller side, sidecars looked through)
//!      ──► CallGraph { (caller, callee) ─► Edge { calls, errors, retries, durations } }
//! ```

use std::collections::BTreeMap;

use faultline_analyzers::SpanTable;
use faultline_analyzers::calls::Calls;
use faultline_analyzers::index::Index;

/// Calls from one service to another over the window.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Edge {
    pub calls: u64,
    pub errors: u64,
    /// Attempts that were resends (`http.request.resend_count` ≥ 1).
    pub retries: u64,
    pub durations_ns: Vec<u64>,
}

impl Edge {
    pub fn p99_ns(&self) -> Option<u64> {
        let mut sorted = self.durations_ns.clone();
        sorted.sort_unstable();
        let rank = (sorted.len() * 99).div_ceil(100);
        sorted.get(rank.saturating_sub(1)).copied()
    }
}

/// The calls between services in one analysis window.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallGraph {
    /// (caller, callee) → calls.
    pub edges: BTreeMap<(String, String), Edge>,
    /// Services seen only as hops inside calls (sidecars).
    pub proxies: Vec<String>,
    pub traces: usize,
    /// How much time the window covers (`None`: no spans).
    pub span_ns: Option<u64>,
}

/// The call graph of `table`.
pub fn call_graph(table: &SpanTable) -> CallGraph {
    let mut graph = CallGraph::default();
    if table.is_empty() {
        return graph;
    }
    let index = Index::build(table);
    let calls = Calls::build(table, &index);
    graph.traces = table.trace_ids.len();
    graph.span_ns = table
        .time_range()
        .map(|(from, to)| u64::try_from(to.saturating_sub(from)).unwrap_or(0));
    graph.proxies = calls
        .proxies
        .iter()
        .map(|&s| table.str(s).to_owned())
        .collect();
    for ((&row, &caller), &callee) in calls.row.iter().zip(&calls.caller).zip(&calls.callee) {
        let r = row as usize;
        let edge = graph
            .edges
            .entry((table.str(caller).to_owned(), table.str(callee).to_owned()))
            .or_default();
        edge.calls += 1;
        edge.errors += u64::from(table.error.get(r).copied().unwrap_or(false));
        edge.retries += u64::from(table.resend.get(r).is_some_and(|&n| n > 0));
        edge.durations_ns
            .push(u64::try_from(table.duration_ns(row)).unwrap_or(0));
    }
    graph
}
