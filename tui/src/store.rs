//! The span store: every span the TUI holds, bounded, with a summary per trace.
//!
//! ```text
//!  batches (receiver, replay) ──► SpanStore::push ──► batches: VecDeque<Arc<[Span]>>  (oldest evicted past the cap, counted)
//!                                        └──────────► traces: TraceId ─► TraceSummary (start, end, root, services, errors, correlation id)
//!                                                     order: traces by first arrival (the trace list)
//! ```
//!
//! Spans are kept in the batches they arrived in, behind `Arc`, so the analysis worker
//! takes a window of them without copying. Each span has a sequence number (its place
//! in arrival order); a trace's summary lists the sequence numbers of its spans, so the
//! waterfall finds them without scanning the store. Eviction is whole batches, oldest
//! first, until the store is back under its cap; every evicted span is counted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use faultline_model::{Span, SpanKind, TraceId};

/// The attribute and baggage keys a correlation id is read from (docs/conventions.md).
const CORRELATION_KEYS: &[&str] = &["correlation.id", "http.request.header.x-correlation-id"];

/// Whether a span counts as an error in the trace list and the waterfall: its status
/// says so, or it is an HTTP server or client span answered with a 5xx.
pub fn is_error(span: &Span) -> bool {
    span.is_error()
        || (matches!(span.kind, SpanKind::Server | SpanKind::Client)
            && span
                .attributes
                .get_i64("http.response.status_code")
                .is_some_and(|s| s >= 500))
}

/// The spans of one arrival, in arrival order.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Sequence number of `spans[0]`.
    pub first_seq: u64,
    pub spans: Arc<[Span]>,
}

/// What the trace list shows of a trace, kept up to date as its spans arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    /// Sequence numbers of its spans, in arrival order.
    pub seqs: Vec<u64>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The root span's service and name, once the root has arrived.
    pub root: Option<(Arc<str>, Arc<str>)>,
    /// Services in the trace, in order of first appearance.
    pub services: Vec<Arc<str>>,
    pub errors: u32,
    pub correlation_id: Option<Arc<str>>,
}

impl TraceSummary {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub fn span_count(&self) -> usize {
        self.seqs.len()
    }
}

/// The bounded span store. See the module docs.
#[derive(Debug)]
pub struct SpanStore {
    cap: usize,
    batches: VecDeque<Batch>,
    len: usize,
    next_seq: u64,
    dropped: u64,
    /// Summaries by first arrival, so that the trace list walks memory in order
    /// instead of hashing; an evicted trace's summary is left empty (no `seqs`) until
    /// it reaches the front.
    traces: VecDeque<TraceSummary>,
    /// The position (counted since the start) of `traces[0]`.
    base: u64,
    /// Where each held trace's summary is: its position.
    index: HashMap<TraceId, u64>,
    /// Service names, shared by the summaries.
    names: HashMap<String, Arc<str>>,
    /// The latest span end seen (ns since the epoch): the data's "now".
    latest_end_ns: u64,
    earliest_start_ns: u64,
}

impl SpanStore {
    /// A store that holds at most `cap` spans (at least one batch is always kept).
    pub fn new(cap: usize) -> SpanStore {
        SpanStore {
            cap: cap.max(1),
            batches: VecDeque::new(),
            len: 0,
            next_seq: 0,
            dropped: 0,
            traces: VecDeque::new(),
            base: 0,
            index: HashMap::new(),
            names: HashMap::new(),
            latest_end_ns: 0,
            earliest_start_ns: u64::MAX,
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Spans held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Spans evicted to stay under the cap, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Spans ever received.
    pub fn received(&self) -> u64 {
        self.next_seq
    }

    pub fn trace_count(&self) -> usize {
        self.index.len()
    }

    /// The latest span end seen, ns since the epoch (0 before any span).
    pub fn latest_ns(&self) -> u64 {
        self.latest_end_ns
    }

    /// The earliest span start held (None when empty).
    pub fn earliest_ns(&self) -> Option<u64> {
        (self.earliest_start_ns != u64::MAX).then_some(self.earliest_start_ns)
    }

    /// Adds a batch, evicting the oldest batches past the cap.
    pub fn push(&mut self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        let first_seq = self.next_seq;
        for (offset, span) in spans.iter().enumerate() {
            self.index(first_seq + offset as u64, span);
        }
        self.next_seq += spans.len() as u64;
        self.len += spans.len();
        self.batches.push_back(Batch {
            first_seq,
            spans: spans.into(),
        });
        while self.len > self.cap && self.batches.len() > 1 {
            self.evict_oldest();
        }
    }

    fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name);
        self.names.insert(name.to_owned(), shared.clone());
        shared
    }

    fn index(&mut self, seq: u64, span: &Span) {
        self.latest_end_ns = self.latest_end_ns.max(span.end_ns);
        self.earliest_start_ns = self.earliest_start_ns.min(span.start_ns);
        let service = self.name(span.service_name());
        let root = span
            .parent_span_id
            .is_none()
            .then(|| (service.clone(), Arc::<str>::from(span.name.as_str())));
        let correlation = CORRELATION_KEYS
            .iter()
            .find_map(|key| span.attributes.get_str(key))
            .map(Arc::<str>::from);
        let error = is_error(span);
        let position = match self.index.get(&span.trace_id) {
            Some(&position) => position,
            None => {
                let position = self.base + self.traces.len() as u64;
                self.index.insert(span.trace_id, position);
                self.traces.push_back(TraceSummary {
                    trace_id: span.trace_id,
                    seqs: Vec::new(),
                    start_ns: span.start_ns,
                    end_ns: span.end_ns,
                    root: None,
                    services: Vec::new(),
                    errors: 0,
                    correlation_id: None,
                });
                position
            }
        };
        let Some(summary) = self.traces.get_mut((position - self.base) as usize) else {
            return;
        };
        summary.seqs.push(seq);
        summary.start_ns = summary.start_ns.min(span.start_ns);
        summary.end_ns = summary.end_ns.max(span.end_ns);
        if root.is_some() {
            summary.root = root;
        }
        if !summary.services.contains(&service) {
            summary.services.push(service);
        }
        summary.errors += u32::from(error);
        if summary.correlation_id.is_none() {
            summary.correlation_id = correlation;
        }
    }

    fn evict_oldest(&mut self) {
        let Some(batch) = self.batches.pop_front() else {
            return;
        };
        self.len -= batch.spans.len();
        self.dropped += batch.spans.len() as u64;
        for (offset, span) in batch.spans.iter().enumerate() {
            let seq = batch.first_seq + offset as u64;
            let Some(&position) = self.index.get(&span.trace_id) else {
                continue;
            };
            if let Some(summary) = self.traces.get_mut((position - self.base) as usize) {
                summary.seqs.retain(|&s| s != seq);
                if summary.seqs.is_empty() {
                    self.index.remove(&span.trace_id);
                    summary.services = Vec::new();
                    summary.root = None;
                    summary.correlation_id = None;
                }
            }
        }
        while self.traces.front().is_some_and(|t| t.seqs.is_empty()) {
            self.traces.pop_front();
            self.base += 1;
        }
        self.earliest_start_ns = self
            .batches
            .iter()
            .flat_map(|b| b.spans.iter().map(|s| s.start_ns))
            .take(4096)
            .min()
            .unwrap_or(u64::MAX);
    }

    /// The span with sequence number `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<&Span> {
        let index = self
            .batches
            .partition_point(|b| b.first_seq + b.spans.len() as u64 <= seq);
        let batch = self.batches.get(index)?;
        let offset = seq.checked_sub(batch.first_seq)?;
        batch.spans.get(usize::try_from(offset).ok()?)
    }

    pub fn trace(&self, id: &TraceId) -> Option<&TraceSummary> {
        let position = *self.index.get(id)?;
        self.traces.get((position - self.base) as usize)
    }

    /// The spans of a trace still held, in arrival order.
    pub fn trace_spans(&self, id: &TraceId) -> Vec<&Span> {
        self.trace(id)
            .map(|t| t.seqs.iter().filter_map(|&s| self.get(s)).collect())
            .unwrap_or_default()
    }

    /// Every trace held, by first arrival (oldest first; `.rev()` for newest first).
    pub fn traces(&self) -> impl DoubleEndedIterator<Item = &TraceSummary> {
        self.traces.iter().filter(|t| !t.seqs.is_empty())
    }

    /// The batches held, oldest first (the analysis worker's input).
    pub fn batches(&self) -> impl DoubleEndedIterator<Item = &Batch> {
        self.batches.iter()
    }

    /// Every span held, oldest first.
    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.batches.iter().flat_map(|b| b.spans.iter())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use faultline_model::{Resource, SpanId};

    use super::*;

    fn span(trace: u8, id: u8, parent: Option<u8>, service: &str, start: u64) -> Span {
        let mut span = Span::new(TraceId([trace; 16]), SpanId([id; 8]), format!("op{id}"));
        span.parent_span_id = parent.map(|p| SpanId([p; 8]));
        span.resource = Arc::new(Resource::with_service(service));
        span.start_ns = start;
        span.end_ns = start + 10;
        span
    }

    #[test]
    fn summaries_follow_spans_as_they_arrive_in_any_order() {
        let mut store = SpanStore::new(100);
        store.push(vec![span(1, 2, Some(1), "db", 105)]);
        store.push(vec![
            span(1, 1, None, "api", 100),
            span(2, 3, None, "api", 200),
        ]);
        let t1 = store.trace(&TraceId([1; 16])).unwrap();
        assert_eq!(t1.span_count(), 2);
        assert_eq!((t1.start_ns, t1.end_ns), (100, 115));
        assert_eq!(t1.root.as_ref().map(|r| &*r.0), Some("api"));
        let services: Vec<&str> = t1.services.iter().map(|s| &**s).collect();
        assert_eq!(services, ["db", "api"]);
        assert_eq!(store.traces().count(), 2);
        assert_eq!(store.trace_spans(&TraceId([1; 16])).len(), 2);
        assert_eq!(store.get(2).unwrap().span_id, SpanId([3; 8]));
        assert!(store.get(3).is_none());
    }

    #[test]
    fn the_cap_evicts_oldest_batches_and_counts_every_dropped_span() {
        let mut store = SpanStore::new(4);
        for i in 0..5u8 {
            store.push(vec![span(i, 1, None, "a", 0), span(i, 2, Some(1), "a", 1)]);
        }
        assert_eq!(store.len(), 4);
        assert_eq!(store.dropped(), 6);
        assert_eq!(store.received(), 10);
        assert_eq!(store.trace_count(), 2);
        assert!(store.trace(&TraceId([0; 16])).is_none());
        assert_eq!(store.traces().next().unwrap().trace_id, TraceId([3; 16]));
        assert!(store.get(0).is_none());
        assert_eq!(store.get(9).unwrap().span_id, SpanId([2; 8]));
    }

    #[test]
    fn a_batch_larger_than_the_cap_is_kept_whole() {
        let mut store = SpanStore::new(1);
        store.push(vec![span(1, 1, None, "a", 0), span(1, 2, Some(1), "a", 1)]);
        assert_eq!(store.len(), 2);
        store.push(vec![span(2, 1, None, "a", 5)]);
        assert_eq!(store.len(), 1);
        assert_eq!(store.dropped(), 2);
    }
}
