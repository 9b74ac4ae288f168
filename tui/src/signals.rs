//! The signals view's numbers: per-second series computed as spans arrive, plus what
//! the cluster's `/status` says when a cluster is attached.
//!
//! ```text
//!  spans ──► Signals::observe ──► Second { server spans, errors, latency histogram, attempts per edge,
//!                                          replication lag, dead-lettered, elections }
//!  cluster snapshot ──► Signals::observe_cluster ──► Second { DLQ depth, lag } (preferred when present)
//!  Signals::value(signal, second) / series(signal, end, width) ──► sparklines, levels (dashboards)
//! ```
//!
//! Everything comes from the telemetry conventions (docs/conventions.md), so a capture
//! replayed gives the same series as the live cluster did. The series are bounded:
//! the last [`KEEP_SECONDS`] seconds of data time.

use std::collections::VecDeque;

use faultline_model::{Span, SpanKind, Value};
use hdrhistogram::Histogram;

use crate::store::is_error;

/// Seconds of history kept (the sparklines and the time cursor go back this far).
pub const KEEP_SECONDS: usize = 1800;

/// One of the signals; `id()` is its panel id in the dashboards definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    P99,
    ErrorRate,
    RetryAmplification,
    ReplicationLag,
    DlqDepth,
    Elections,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::P99,
        Signal::ErrorRate,
        Signal::RetryAmplification,
        Signal::ReplicationLag,
        Signal::DlqDepth,
        Signal::Elections,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Signal::P99 => "p99",
            Signal::ErrorRate => "error_rate",
            Signal::RetryAmplification => "retry_amplification",
            Signal::ReplicationLag => "replication_lag",
            Signal::DlqDepth => "dlq_depth",
            Signal::Elections => "elections",
        }
    }
}

/// What one second of data time holds.
#[derive(Debug, Clone)]
struct Second {
    at: i64,
    server: u32,
    server_errors: u32,
    /// Server span durations in microseconds.
    latency: Option<Histogram<u32>>,
    /// Per call edge (caller service, callee address), hashed: attempts and first
    /// attempts. Amplification is per edge: the retrying edge's figure must not be
    /// diluted by the many edges that do not retry.
    edges: Vec<(u64, u32, u32)>,
    lag_s: Option<f64>,
    dead_lettered: u64,
    elections: u32,
    cluster_dlq: Option<u64>,
    cluster_lag_s: Option<f64>,
}

impl Second {
    fn new(at: i64) -> Second {
        Second {
            at,
            server: 0,
            server_errors: 0,
            latency: None,
            edges: Vec::new(),
            lag_s: None,
            dead_lettered: 0,
            elections: 0,
            cluster_dlq: None,
            cluster_lag_s: None,
        }
    }
}

/// The per-second series. See the module docs.
#[derive(Debug, Default)]
pub struct Signals {
    seconds: VecDeque<Second>,
    /// Dead-lettered messages counted in seconds already dropped from the window, so
    /// the span-derived DLQ total stays a session total.
    dead_lettered_before: u64,
}

/// Attempts an edge needs in a second for its amplification to count (one retried
/// call out of one is not a storm).
const MIN_EDGE_ATTEMPTS: u32 = 3;

/// The call edge of a client span: its service and the address it calls.
fn edge_key(span: &Span) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    span.service_name().hash(&mut hasher);
    span.attributes
        .get_str("server.address")
        .or_else(|| span.attributes.get_str("peer.service"))
        .hash(&mut hasher);
    hasher.finish()
}

/// A number attribute; the cluster writes some as strings (docs/conventions.md,
/// `raft.*`), which `Value::as_f64` reads too.
fn attribute(span: &Span, key: &str) -> Option<f64> {
    span.attributes.get(key).and_then(Value::as_f64)
}

impl Signals {
    pub fn new() -> Signals {
        Signals::default()
    }

    fn second_mut(&mut self, at: i64) -> Option<&mut Second> {
        let newest = self.seconds.back().map_or(at, |s| s.at);
        if at + (KEEP_SECONDS as i64) <= newest {
            return None; // older than the window
        }
        if self.seconds.is_empty() || at > newest {
            let from = if self.seconds.is_empty() {
                at
            } else {
                newest + 1
            };
            // A gap of more than the window starts afresh.
            let from = from.max(at - KEEP_SECONDS as i64 + 1);
            if self.seconds.back().is_some_and(|s| s.at < from - 1) {
                self.drop_all();
            }
            for t in from..=at {
                self.seconds.push_back(Second::new(t));
            }
            while self.seconds.len() > KEEP_SECONDS {
                if let Some(old) = self.seconds.pop_front() {
                    self.dead_lettered_before += old.dead_lettered;
                }
            }
        }
        let first = self.seconds.front()?.at;
        if at < first {
            // Earlier than anything held but inside the window: extend backwards.
            for t in (at..first).rev() {
                self.seconds.push_front(Second::new(t));
            }
        }
        let index = usize::try_from(at - self.seconds.front()?.at).ok()?;
        self.seconds.get_mut(index)
    }

    fn drop_all(&mut self) {
        self.dead_lettered_before += self.seconds.iter().map(|s| s.dead_lettered).sum::<u64>();
        self.seconds.clear();
    }

    /// Counts one span into the second it ended in.
    pub fn observe(&mut self, span: &Span) {
        let at = i64::try_from(span.end_ns / 1_000_000_000).unwrap_or(i64::MAX);
        let Some(second) = self.second_mut(at) else {
            return;
        };
        match span.kind {
            SpanKind::Server => {
                second.server += 1;
                if is_error(span) {
                    second.server_errors += 1;
                }
                let micros = (span.duration_ns() / 1000).max(1);
                let histogram = second.latency.get_or_insert_with(|| {
                    // 2 significant figures from 1 µs to an hour: a few KB per second.
                    #[allow(clippy::expect_used)]
                    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds")
                });
                histogram.saturating_record(micros);
            }
            SpanKind::Client
                if span.attributes.get("http.request.method").is_some()
                    || span.attributes.get("http.request.resend_count").is_some() =>
            {
                let edge = edge_key(span);
                let first = attribute(span, "http.request.resend_count").unwrap_or(0.0) < 1.0;
                match second.edges.iter_mut().find(|(e, _, _)| *e == edge) {
                    Some((_, attempts, firsts)) => {
                        *attempts += 1;
                        *firsts += u32::from(first);
                    }
                    None => second.edges.push((edge, 1, u32::from(first))),
                }
            }
            _ => {}
        }
        let lag_ms = [
            attribute(span, "raft.lag.ms"),
            attribute(span, "kv.replication.lag_ms"),
        ]
        .into_iter()
        .flatten()
        .fold(None, |worst: Option<f64>, v| {
            Some(worst.map_or(v, |w| w.max(v)))
        });
        if let Some(lag_ms) = lag_ms {
            let lag = lag_ms / 1000.0;
            second.lag_s = Some(second.lag_s.map_or(lag, |w| w.max(lag)));
        }
        if let Some(n) = attribute(span, "queue.dead_lettered") {
            second.dead_lettered += n.max(0.0) as u64;
        }
        if span.name == "raft.election" {
            second.elections += 1;
        }
    }

    /// What the cluster's `/status` said at `at` (seconds since the epoch).
    pub fn observe_cluster(&mut self, at: i64, dlq_depth: Option<u64>, lag_s: Option<f64>) {
        if let Some(second) = self.second_mut(at) {
            second.cluster_dlq = dlq_depth.or(second.cluster_dlq);
            second.cluster_lag_s = lag_s.or(second.cluster_lag_s);
        }
    }

    /// The newest second held.
    pub fn newest(&self) -> Option<i64> {
        self.seconds.back().map(|s| s.at)
    }

    fn index(&self, at: i64) -> Option<usize> {
        let first = self.seconds.front()?.at;
        let index = usize::try_from(at.checked_sub(first)?).ok()?;
        (index < self.seconds.len()).then_some(index)
    }

    /// The signal's value in second `at`; `None` when there is nothing to say (no
    /// server spans for p99, no attempts for amplification…).
    pub fn value(&self, signal: Signal, at: i64) -> Option<f64> {
        let index = self.index(at)?;
        let second = self.seconds.get(index)?;
        match signal {
            Signal::P99 => second
                .latency
                .as_ref()
                .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0),
            Signal::ErrorRate => (second.server > 0)
                .then(|| 100.0 * f64::from(second.server_errors) / f64::from(second.server)),
            Signal::RetryAmplification => second
                .edges
                .iter()
                .filter(|(_, attempts, firsts)| *firsts > 0 && *attempts >= MIN_EDGE_ATTEMPTS)
                .map(|(_, attempts, firsts)| f64::from(*attempts) / f64::from(*firsts))
                .fold(None, |worst, v| Some(worst.map_or(v, |w: f64| w.max(v)))),
            Signal::ReplicationLag => second.cluster_lag_s.or(second.lag_s),
            Signal::DlqDepth => second.cluster_dlq.map(|d| d as f64).or_else(|| {
                let so_far: u64 = self.seconds.range(..=index).map(|s| s.dead_lettered).sum();
                let total = self.dead_lettered_before + so_far;
                (total > 0).then_some(total as f64)
            }),
            Signal::Elections => {
                let from = index.saturating_sub(59);
                let count: u32 = self.seconds.range(from..=index).map(|s| s.elections).sum();
                Some(f64::from(count))
            }
        }
    }

    /// The `width` seconds ending at `end`, oldest first.
    pub fn series(&self, signal: Signal, end: i64, width: usize) -> Vec<Option<f64>> {
        let start = end - width as i64 + 1;
        (start..=end).map(|at| self.value(signal, at)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use faultline_model::{SpanId, TraceId};

    use super::*;

    fn server(end_s: u64, ms: u64, status: i64) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), "GET /");
        span.kind = SpanKind::Server;
        span.end_ns = end_s * 1_000_000_000;
        span.start_ns = span.end_ns - ms * 1_000_000;
        span.attributes.insert("http.response.status_code", status);
        span
    }

    #[test]
    fn p99_and_error_rate_per_second() {
        let mut signals = Signals::new();
        for i in 0..100 {
            signals.observe(&server(10, if i == 99 { 900 } else { 10 }, 200));
        }
        signals.observe(&server(11, 5, 503));
        signals.observe(&server(11, 5, 200));
        let p99 = signals.value(Signal::P99, 10).unwrap();
        assert!((9.0..=11.0).contains(&p99), "{p99}");
        assert_eq!(signals.value(Signal::ErrorRate, 10), Some(0.0));
        assert_eq!(signals.value(Signal::ErrorRate, 11), Some(50.0));
        assert_eq!(
            signals.series(Signal::ErrorRate, 11, 3),
            [None, Some(0.0), Some(50.0)]
        );
    }

    #[test]
    fn retries_lag_dead_letters_and_elections_come_from_their_attributes() {
        let mut signals = Signals::new();
        for resend in [0, 1, 2, 0] {
            let mut span = Span::new(TraceId([1; 16]), SpanId([2; 8]), "POST");
            span.kind = SpanKind::Client;
            span.end_ns = 5_000_000_000;
            span.attributes.insert("http.request.method", "POST");
            if resend > 0 {
                span.attributes.insert("http.request.resend_count", resend);
            }
            signals.observe(&span);
        }
        // Many first attempts on another edge do not dilute the retrying one.
        for _ in 0..20 {
            let mut span = Span::new(TraceId([1; 16]), SpanId([2; 8]), "GET");
            span.kind = SpanKind::Client;
            span.end_ns = 5_000_000_000;
            span.attributes.insert("http.request.method", "GET");
            span.attributes.insert("server.address", "node-2");
            signals.observe(&span);
        }
        let mut append = Span::new(TraceId([2; 16]), SpanId([3; 8]), "raft.append");
        append.end_ns = 5_000_000_000;
        append.attributes.insert("raft.lag.ms", "1500");
        signals.observe(&append);
        let mut receive = Span::new(TraceId([3; 16]), SpanId([4; 8]), "receive payments");
        receive.end_ns = 6_000_000_000;
        receive.attributes.insert("queue.dead_lettered", 2);
        signals.observe(&receive);
        let mut election = Span::new(TraceId([4; 16]), SpanId([5; 8]), "raft.election");
        election.end_ns = 6_000_000_000;
        signals.observe(&election);
        assert_eq!(signals.value(Signal::RetryAmplification, 5), Some(2.0));
        assert_eq!(signals.value(Signal::ReplicationLag, 5), Some(1.5));
        assert_eq!(signals.value(Signal::DlqDepth, 5), None);
        assert_eq!(signals.value(Signal::DlqDepth, 6), Some(2.0));
        assert_eq!(signals.value(Signal::Elections, 6), Some(1.0));
        signals.observe_cluster(6, Some(7), None);
        assert_eq!(signals.value(Signal::DlqDepth, 6), Some(7.0));
    }

    #[test]
    fn the_window_is_bounded_and_old_seconds_are_ignored() {
        let mut signals = Signals::new();
        signals.observe(&server(100, 1, 200));
        signals.observe(&server(100 + KEEP_SECONDS as u64 + 10, 1, 200));
        assert!(signals.value(Signal::ErrorRate, 100).is_none());
        signals.observe(&server(50, 1, 200));
        assert!(signals.seconds.len() <= KEEP_SECONDS);
    }
}
