//! The span table: a capture as columns, which is what every detector reads.
//!
//! ```text
//!  reader batches (Vec<Span>) ──► TableBuilder::push ──► SpanTable ──► Index (traces, parents)
//!                                   (spans dropped         │            └─► detectors
//!                                    after each batch)      └─► frame() ──► polars (RED, keys, …)
//! ```
//!
//! A span costs about 70 bytes here against a kilobyte or more as a [`Span`]: strings are
//! interned, trace ids become dense numbers, and of the attributes only the ones the
//! detectors read are kept (dense columns for the ones nearly every span has, sparse
//! columns for the rest, see [`KEPT_ATTRIBUTES`]). That is what lets a capture larger
//! than memory as spans stream through: the builder holds one batch of spans at a time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use faultline_model::{Resource, Span, SpanKind, StatusCode, TraceId, Value};
use polars::prelude::{Column, DataFrame, PolarsResult};

/// Attributes kept as sparse columns: the ones some detector reads. Everything else in
/// a span is dropped when it enters the table.
pub const KEPT_ATTRIBUTES: &[&str] = &[
    "http.request.method",
    "http.route",
    "url.path",
    "error.type",
    "rpc.service",
    "rpc.method",
    "db.system",
    "db.system.name",
    "db.operation.name",
    "messaging.system",
    "messaging.operation.type",
    "messaging.operation.name",
    "messaging.destination.name",
    "messaging.message.id",
    "messaging.batch.message_count",
    "queue.delivery_count",
    "queue.dead_lettered",
    "queue.age_ms",
    "raft.node_id",
    "raft.peer_id",
    "raft.term",
    "raft.role",
    "raft.leader_id",
    "raft.lag.entries",
    "raft.lag.ms",
    "raft.match_index",
    "raft.commit_index",
    "raft.election.outcome",
    "kv.key",
    "kv.stale",
    "kv.n",
    "kv.r",
    "kv.w",
    "kv.replicas_acked",
    "kv.replicas_responded",
    "kv.replication.lag_ms",
    "kv.version",
    "kv.replica",
    "kv.newer_version",
    "circuit_breaker.name",
    "circuit_breaker.state",
];

/// Resource attributes that name the instance (node, pod, host) a span ran on, most
/// specific first.
const INSTANCE_KEYS: &[&str] = &[
    "faultline.node",
    "service.instance.id",
    "k8s.pod.name",
    "host.name",
];

/// Span attributes that name the peer a client span calls, in order of preference
/// (semantic conventions first, then the older names other tools still write).
const PEER_KEYS: &[&str] = &[
    "peer.service",
    "server.address",
    "net.peer.name",
    "http.host",
    "db.system.name",
    "db.system",
    "messaging.system",
];

/// FxHash, rustc's hash: one rotate, xor and multiply per word. The builder hashes a
/// trace id, a resource, a name and several attribute keys and values per span, and
/// std's SipHash made that a sixth of building a table (measured with `perf` on `bench
/// questions`); flooding resistance buys nothing for a capture read offline.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

type FxBuild = BuildHasherDefault<FxHasher>;

impl FxHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply leaves the low bits, which pick the bucket, the weakest: fold the
        // high half in.
        self.hash ^ (self.hash >> 32)
    }
}

/// Interned strings: id 0 is always the empty string.
#[derive(Debug, Clone)]
pub struct Strings {
    texts: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32, FxBuild>,
}

impl Default for Strings {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        let mut ids = HashMap::with_hasher(FxBuild::default());
        ids.insert(empty.clone(), 0);
        Strings {
            texts: vec![empty],
            ids,
        }
    }
}

impl Strings {
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        let text: Arc<str> = Arc::from(text);
        self.texts.push(text.clone());
        self.ids.insert(text, id);
        id
    }

    /// The string behind `id`; the empty string for an id this table never gave out.
    pub fn get(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("", |text| text)
    }

    /// The id of `text` if it was ever interned.
    pub fn find(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }
}

/// One kept attribute value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// An interned string.
    Str(u32),
}

impl Cell {
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(i),
            Cell::Float(f) => Some(f as i64),
            Cell::Bool(_) | Cell::Str(_) => None,
        }
    }

    pub fn as_f64(self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(i as f64),
            Cell::Float(f) => Some(f),
            Cell::Bool(_) | Cell::Str(_) => None,
        }
    }

    pub fn as_bool(self) -> Option<bool> {
        match self {
            Cell::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_str(self) -> Option<u32> {
        match self {
            Cell::Str(id) => Some(id),
            _ => None,
        }
    }
}

/// A sparse column: the rows that have the attribute, in row order, and their values.
#[derive(Debug, Clone, Default)]
pub struct Sparse {
    pub rows: Vec<u32>,
    pub cells: Vec<Cell>,
}

impl Sparse {
    /// The value at `row`, if that row has one.
    pub fn get(&self, row: u32) -> Option<Cell> {
        self.rows
            .binary_search(&row)
            .ok()
            .map(|index| self.cells[index])
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, Cell)> + '_ {
        self.rows.iter().copied().zip(self.cells.iter().copied())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A span event, kept whole but interned.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub row: u32,
    pub name: u32,
    pub time_ns: i64,
    /// Interned key, value.
    pub attributes: Vec<(u32, Cell)>,
}

/// The capture as columns; row `i` of every dense column is span `i`.
#[derive(Debug, Clone, Default)]
pub struct SpanTable {
    pub strings: Strings,
    /// Distinct trace ids; `trace` holds indices into it.
    pub trace_ids: Vec<TraceId>,
    pub trace: Vec<u32>,
    /// Span ids as integers (big-endian bytes); 0 is "none" for `parent`.
    pub span_id: Vec<u64>,
    pub parent: Vec<u64>,
    pub service: Vec<u32>,
    /// The node, pod or host the span ran on (0 when the resource does not say).
    pub instance: Vec<u32>,
    pub name: Vec<u32>,
    pub kind: Vec<SpanKind>,
    pub start_ns: Vec<i64>,
    pub end_ns: Vec<i64>,
    /// Status error, or a 5xx HTTP status on a server or client span.
    pub error: Vec<bool>,
    /// `http.response.status_code` (or `rpc.grpc.status_code` + 1000 is not done: gRPC
    /// errors arrive as status errors); 0 when absent.
    pub http_status: Vec<u16>,
    /// `http.request.resend_count`: 0 for a first attempt or when absent.
    pub resend: Vec<u16>,
    /// Who a client or producer span calls (see [`PEER_KEYS`]); 0 when unknown.
    pub peer: Vec<u32>,
    /// Sparse kept attributes by key.
    pub attributes: HashMap<&'static str, Sparse>,
    pub events: Vec<EventRow>,
}

impl SpanTable {
    pub fn len(&self) -> usize {
        self.span_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.span_id.is_empty()
    }

    pub fn str(&self, id: u32) -> &str {
        self.strings.get(id)
    }

    pub fn trace_id(&self, row: u32) -> TraceId {
        self.trace_ids[self.trace[row as usize] as usize]
    }

    /// The sparse column for `key` (empty when no span has it or it is not kept).
    pub fn attribute(&self, key: &str) -> &Sparse {
        static EMPTY: Sparse = Sparse {
            rows: Vec::new(),
            cells: Vec::new(),
        };
        self.attributes.get(key).unwrap_or(&EMPTY)
    }

    /// The string value of `key` at `row`.
    pub fn attribute_str(&self, key: &str, row: u32) -> Option<&str> {
        let id = self.attribute(key).get(row)?.as_str()?;
        Some(self.str(id))
    }

    pub fn attribute_i64(&self, key: &str, row: u32) -> Option<i64> {
        self.attribute(key).get(row)?.as_i64()
    }

    /// `service` at `instance` when the instance is known ("faultline-node@node-1"),
    /// else the service alone.
    pub fn service_at(&self, row: u32) -> String {
        let service = self.str(self.service[row as usize]);
        match self.instance[row as usize] {
            0 => service.to_owned(),
            instance => format!("{service}@{}", self.str(instance)),
        }
    }

    /// The earliest start and the latest end, or `None` for an empty table.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let start = self.start_ns.iter().copied().min()?;
        let end = self.end_ns.iter().copied().max()?;
        Some((start, end))
    }

    pub fn duration_ns(&self, row: u32) -> i64 {
        (self.end_ns[row as usize] - self.start_ns[row as usize]).max(0)
    }

    /// A new table with only the rows `keep` says yes to (sparse columns and events
    /// follow); strings and trace ids are shared as they are.
    pub fn filter(&self, mut keep: impl FnMut(&SpanTable, u32) -> bool) -> SpanTable {
        let rows: Vec<u32> = (0..self.len() as u32).filter(|&r| keep(self, r)).collect();
        self.select(&rows)
    }

    /// A new table with `rows` (ascending) of this one.
    pub fn select(&self, rows: &[u32]) -> SpanTable {
        let mut new_row = vec![u32::MAX; self.len()];
        for (new, &old) in rows.iter().enumerate() {
            new_row[old as usize] = new as u32;
        }
        fn pick<T: Copy>(column: &[T], rows: &[u32]) -> Vec<T> {
            rows.iter().map(|&r| column[r as usize]).collect()
        }
        let attributes = self
            .attributes
            .iter()
            .map(|(&key, sparse)| {
                let mut kept = Sparse::default();
                for (row, cell) in sparse.iter() {
                    let new = new_row[row as usize];
                    if new != u32::MAX {
                        kept.rows.push(new);
                        kept.cells.push(cell);
                    }
                }
                (key, kept)
            })
            .collect();
        let events = self
            .events
            .iter()
            .filter_map(|event| {
                let new = new_row[event.row as usize];
                (new != u32::MAX).then(|| EventRow {
                    row: new,
                    ..event.clone()
                })
            })
            .collect();
        SpanTable {
            strings: self.strings.clone(),
            trace_ids: self.trace_ids.clone(),
            trace: pick(&self.trace, rows),
            span_id: pick(&self.span_id, rows),
            parent: pick(&self.parent, rows),
            service: pick(&self.service, rows),
            instance: pick(&self.instance, rows),
            name: pick(&self.name, rows),
            kind: pick(&self.kind, rows),
            start_ns: pick(&self.start_ns, rows),
            end_ns: pick(&self.end_ns, rows),
            error: pick(&self.error, rows),
            http_status: pick(&self.http_status, rows),
            resend: pick(&self.resend, rows),
            peer: pick(&self.peer, rows),
            attributes,
            events,
        }
    }

    /// The dense columns as a polars frame, for the aggregating detectors. Strings stay
    /// interned ids (`u32`); look them up with [`SpanTable::str`].
    pub fn frame(&self) -> PolarsResult<DataFrame> {
        let kind: Vec<u32> = self.kind.iter().map(|&k| kind_number(k)).collect();
        let status: Vec<u32> = self.http_status.iter().map(|&s| u32::from(s)).collect();
        let resend: Vec<u32> = self.resend.iter().map(|&s| u32::from(s)).collect();
        let duration: Vec<i64> = self
            .start_ns
            .iter()
            .zip(&self.end_ns)
            .map(|(start, end)| (end - start).max(0))
            .collect();
        DataFrame::new_infer_height(vec![
            Column::new("service".into(), &self.service),
            Column::new("instance".into(), &self.instance),
            Column::new("name".into(), &self.name),
            Column::new("kind".into(), kind),
            Column::new("start_ns".into(), &self.start_ns),
            Column::new("duration_ns".into(), duration),
            Column::new("error".into(), &self.error),
            Column::new("http_status".into(), status),
            Column::new("resend".into(), resend),
            Column::new("peer".into(), &self.peer),
        ])
    }
}

/// OTLP's number for a span kind.
pub fn kind_number(kind: SpanKind) -> u32 {
    match kind {
        SpanKind::Unspecified => 0,
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// Builds a [`SpanTable`] batch by batch.
#[derive(Debug, Default)]
pub struct TableBuilder {
    table: SpanTable,
    traces: HashMap<TraceId, u32, FxBuild>,
    /// Service and instance ids per resource, by the resource's address: a batch shares
    /// one `Arc<Resource>` among its spans. The `Arc` is held so that the address cannot
    /// be reused by another resource while it is a key; cleared after each batch.
    resources: HashMap<usize, (Arc<Resource>, u32, u32), FxBuild>,
    /// The sparse columns being built, by index in [`KEPT_ATTRIBUTES`] (empty until the
    /// first span); they move into `table.attributes` at [`TableBuilder::finish`].
    kept: Vec<Sparse>,
}

/// The index of each of [`KEPT_ATTRIBUTES`], for one hash lookup per attribute instead
/// of a comparison with each kept key.
fn kept_index() -> &'static HashMap<&'static str, usize, FxBuild> {
    static INDEX: OnceLock<HashMap<&'static str, usize, FxBuild>> = OnceLock::new();
    INDEX.get_or_init(|| {
        KEPT_ATTRIBUTES
            .iter()
            .enumerate()
            .map(|(index, &key)| (key, index))
            .collect()
    })
}

impl TableBuilder {
    pub fn new() -> Self {
        TableBuilder::default()
    }

    pub fn push_batch(&mut self, batch: Vec<Span>) {
        for span in &batch {
            self.push(span);
        }
        self.resources.clear();
    }

    pub fn push(&mut self, span: &Span) {
        let table = &mut self.table;
        let row = table.span_id.len() as u32;
        let trace = match self.traces.get(&span.trace_id) {
            Some(&index) => index,
            None => {
                let index = table.trace_ids.len() as u32;
                table.trace_ids.push(span.trace_id);
                self.traces.insert(span.trace_id, index);
                index
            }
        };
        let &mut (_, service, instance) = self
            .resources
            .entry(Arc::as_ptr(&span.resource) as usize)
            .or_insert_with(|| {
                let service = table.strings.intern(span.resource.service_name());
                let instance = INSTANCE_KEYS
                    .iter()
                    .find_map(|key| span.resource.attributes.get_str(key))
                    .map_or(0, |name| table.strings.intern(name));
                (span.resource.clone(), service, instance)
            });
        table.trace.push(trace);
        table.span_id.push(u64::from_be_bytes(span.span_id.0));
        table
            .parent
            .push(span.parent_span_id.map_or(0, |id| u64::from_be_bytes(id.0)));
        table.service.push(service);
        table.instance.push(instance);
        let name = table.strings.intern(&span.name);
        table.name.push(name);
        table.kind.push(span.kind);
        let start = i64::try_from(span.start_ns).unwrap_or(i64::MAX);
        let end = i64::try_from(span.end_ns).unwrap_or(i64::MAX);
        table.start_ns.push(start);
        table.end_ns.push(end.max(start));

        let status = span
            .attributes
            .get("http.response.status_code")
            .or_else(|| span.attributes.get("http.status_code"))
            .and_then(Value::as_i64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0);
        table.http_status.push(status);
        let error = span.status.code == StatusCode::Error
            || (status >= 500 && matches!(span.kind, SpanKind::Server | SpanKind::Client));
        table.error.push(error);
        let resend = span
            .attributes
            .get("http.request.resend_count")
            .and_then(Value::as_i64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0);
        table.resend.push(resend);
        let peer = if matches!(span.kind, SpanKind::Client | SpanKind::Producer) {
            PEER_KEYS
                .iter()
                .find_map(|key| span.attributes.get_str(key))
                .map_or(0, |peer| table.strings.intern(peer))
        } else {
            0
        };
        table.peer.push(peer);

        if self.kept.is_empty() {
            self.kept = vec![Sparse::default(); KEPT_ATTRIBUTES.len()];
        }
        let kept_index = kept_index();
        for kv in span.attributes.iter() {
            let Some(&index) = kept_index.get(kv.key.as_str()) else {
                continue;
            };
            if let (Some(cell), Some(sparse)) = (
                cell(&mut table.strings, &kv.value),
                self.kept.get_mut(index),
            ) {
                sparse.rows.push(row);
                sparse.cells.push(cell);
            }
        }
        for event in &span.events {
            let name = table.strings.intern(&event.name);
            let attributes = event
                .attributes
                .iter()
                .filter_map(|kv| {
                    let value = cell(&mut table.strings, &kv.value)?;
                    Some((table.strings.intern(&kv.key), value))
                })
                .collect();
            table.events.push(EventRow {
                row,
                name,
                time_ns: i64::try_from(event.time_ns).unwrap_or(i64::MAX),
                attributes,
            });
        }
    }

    pub fn finish(mut self) -> SpanTable {
        for (&key, sparse) in KEPT_ATTRIBUTES.iter().zip(self.kept) {
            if !sparse.is_empty() {
                self.table.attributes.insert(key, sparse);
            }
        }
        self.table
    }
}

fn cell(strings: &mut Strings, value: &Value) -> Option<Cell> {
    Some(match value {
        Value::Int(i) => Cell::Int(*i),
        Value::Double(d) => Cell::Float(*d),
        Value::Bool(b) => Cell::Bool(*b),
        Value::Str(s) => Cell::Str(strings.intern(s)),
        Value::Empty | Value::Bytes(_) | Value::Array(_) | Value::Map(_) => return None,
    })
}

/// A table straight from spans (tests, small inputs).
pub fn from_spans<'a>(spans: impl IntoIterator<Item = &'a Span>) -> SpanTable {
    let mut builder = TableBuilder::new();
    for span in spans {
        builder.push(span);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use faultline_model::SpanId;

    use super::*;

    #[test]
    fn kept_attributes_become_sparse_columns_and_strings_are_interned_once() {
        let resource = Arc::new(Resource::with_service("api"));
        let spans: Vec<Span> = (0..4u8)
            .map(|i| {
                let mut span = Span::new(TraceId([i % 2 + 1; 16]), SpanId([i + 1; 8]), "GET /x");
                span.resource = resource.clone();
                span.attributes.insert("not.kept", "dropped");
                if i % 2 == 1 {
                    span.attributes.insert("http.route", "/x");
                    span.attributes.insert("kv.n", 3i64);
                }
                span
            })
            .collect();
        let table = from_spans(&spans);
        assert_eq!(table.len(), 4);
        assert_eq!(table.trace_ids.len(), 2);
        assert_eq!(table.trace, [0, 1, 0, 1]);
        let mut keys: Vec<&str> = table.attributes.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["http.route", "kv.n"]);
        assert_eq!(table.attribute("http.route").rows, [1, 3]);
        assert_eq!(table.attribute_str("http.route", 3), Some("/x"));
        assert_eq!(table.attribute_i64("kv.n", 1), Some(3));
        assert_eq!(table.attribute_i64("kv.n", 2), None);
        assert!(table.attribute("not.kept").is_empty());
        assert_eq!(table.name, [table.name[0]; 4]);
        assert_eq!(table.str(table.name[0]), "GET /x");
        assert_eq!(table.strings.find("dropped"), None);
        assert_eq!(table.strings.find(""), Some(0));
    }
}
