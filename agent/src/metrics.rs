//! RED metrics (rate, errors, duration) for the agent's proxied requests, served at
//! the admin `/metrics` in Prometheus text format 0.0.4.
//!
//! ```text
//!  metrics layer ──record_request / start──┐
//!  toxics layer ───fault_activation────────┼──► Metrics (pure, synchronous) ──render──► /metrics
//!  span exporter ──spans_dropped/exported──┤                          └──latency_report──► /status
//! ```
//!
//! This is the pure core; the tower layer that times requests and calls it lives
//! elsewhere. Nothing here does I/O or awaits.
//!
//! **Labels and cardinality.** A request series is keyed by `direction`, `route` and
//! `peer`; counters add `status_class`. Routes (templates or raw paths) and peers are
//! interned up to a cap ([`Limits`]); beyond it the value becomes `other`, and
//! every request so folded is counted (`faultline_agent_route_labels_folded_total`,
//! `faultline_agent_peer_labels_folded_total`). The number of latency series is capped
//! too, because each one owns an hdr histogram (about 68 KiB): a new series beyond
//! [`Limits::max_series`] is recorded under `route="other"` (a route fold). Memory is
//! therefore bounded by `(max_series + 2 × (max_peers + 2))` histograms.
//!
//! **Latency: a Prometheus histogram, plus exact quantiles on the side.**
//! `faultline_agent_request_duration_seconds` is exported as a histogram with fixed
//! buckets ([`BUCKET_BOUNDS_SECONDS`], 1 ms … 10 s) because histograms aggregate across
//! agents and are what `histogram_quantile` in dashboards and alert rules needs; a
//! summary's quantiles cannot be aggregated. The bucket counts and `_sum` are kept as
//! exact integer counters beside the hdr histogram rather than read back from it: hdr
//! merges values within 0.1 % of each other, so a latency just above a bound (2.501 ms
//! vs `le="0.0025"`) would be counted below it, and hdr keeps no sum. The hdr histogram
//! (1 µs … 60 s, 3 significant digits) answers exact-to-0.1 % quantiles (p50/p90/p99/max)
//! for the admin `/status` JSON via [`Metrics::latency_report`].
//!
//! **Concurrency.** One `std::sync::Mutex` guards the label interners and the series
//! map; a recording holds it for a few hash lookups and integer adds (allocation only
//! when a route, peer or series is first seen), never for I/O. Counters with no labels
//! to intern (fault activations, spans) are plain atomics, and the in-flight gauge is an
//! atomic cell the [`InFlightGuard`] decrements on drop without taking the lock.
//! `render` copies the counters out under the lock and formats after releasing it;
//! `latency_report` takes the lock once per series, so a scrape never stalls the data
//! path for long. The lock is not async-aware on purpose: it is never held across an
//! `.await`, and a std mutex is cheaper for such short sections.

mod latency;
mod render;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

use latency::Latency;

pub use crate::Direction;
use crate::toxics::ToxicType;
pub use latency::{BUCKET_BOUNDS_SECONDS, LatencyQuantiles};

/// The label value that folded routes and peers are reported under.
pub const OTHER: &str = "other";
/// The peer label value when the peer is not known.
pub const UNKNOWN_PEER: &str = "unknown";

/// The `status_class` label: the response's status class, or `error` when there was
/// no response at all (connection reset, timeout, upstream down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusClass {
    /// `1xx`
    Informational,
    /// `2xx`
    Success,
    /// `3xx`
    Redirection,
    /// `4xx`
    ClientError,
    /// `5xx`
    ServerError,
    /// `error`: no response.
    Error,
}

impl StatusClass {
    /// Every class, in label order.
    pub const ALL: [StatusClass; 6] = [
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirection,
        StatusClass::ClientError,
        StatusClass::ServerError,
        StatusClass::Error,
    ];

    /// The class of a response status.
    pub fn of(status: http::StatusCode) -> StatusClass {
        StatusClass::from_code(status.as_u16())
    }

    /// The class of a numeric status code. Codes outside 100–599 are not a response
    /// any HTTP client can interpret, so they count as `error`.
    pub fn from_code(code: u16) -> StatusClass {
        match code {
            100..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            500..=599 => StatusClass::ServerError,
            _ => StatusClass::Error,
        }
    }

    /// The `status_class` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::Error => "error",
        }
    }

    /// Whether the request counts as an error in RED terms (`5xx` or no response).
    pub fn is_error(self) -> bool {
        matches!(self, StatusClass::ServerError | StatusClass::Error)
    }

    fn index(self) -> usize {
        match self {
            StatusClass::Informational => 0,
            StatusClass::Success => 1,
            StatusClass::Redirection => 2,
            StatusClass::ClientError => 3,
            StatusClass::ServerError => 4,
            StatusClass::Error => 5,
        }
    }
}

/// Fault kinds in `kind` label order, and each kind's index into the counters.
const FAULT_KINDS: [ToxicType; 6] = [
    ToxicType::Bandwidth,
    ToxicType::Blackhole,
    ToxicType::Error,
    ToxicType::Latency,
    ToxicType::Partition,
    ToxicType::Reset,
];

fn fault_index(kind: ToxicType) -> usize {
    match kind {
        ToxicType::Bandwidth => 0,
        ToxicType::Blackhole => 1,
        ToxicType::Error => 2,
        ToxicType::Latency => 3,
        ToxicType::Partition => 4,
        ToxicType::Reset => 5,
    }
}

/// The labels of one proxied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLabels<'a> {
    /// Which listener the request came through.
    pub direction: Direction,
    /// The route template (`/kv/{key}`) when known, else the path.
    pub route: &'a str,
    /// The peer node's name; `None` is reported as `unknown`.
    pub peer: Option<&'a str>,
}

/// Cardinality caps. Values past a cap are folded into `other` and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Distinct route label values (besides `other`).
    pub max_routes: usize,
    /// Distinct peer label values (besides `other` and `unknown`).
    pub max_peers: usize,
    /// Request series (direction × route × peer), each holding an hdr histogram.
    pub max_series: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_routes: 200,
            max_peers: 64,
            max_series: 512,
        }
    }
}

/// The agent's metrics registry. Cheap to clone (an `Arc`); share one per agent.
#[derive(Debug, Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limits: Limits,
    state: Mutex<State>,
    /// Indexed by `[Direction::index][fault_index]`.
    fault_activations: [[AtomicU64; 6]; 2],
    access_log_dropped: AtomicU64,
    spans_dropped: AtomicU64,
    spans_exported: AtomicU64,
}

/// Everything behind the lock: label interners and per-series counters.
#[derive(Debug)]
struct State {
    routes: Interner,
    peers: Interner,
    series: HashMap<SeriesKey, Series>,
    in_flight: HashMap<(Direction, usize), Arc<AtomicI64>>,
    route_folds: u64,
    peer_folds: u64,
}

impl State {
    fn new(limits: Limits) -> State {
        State {
            routes: Interner::new(&[OTHER], limits.max_routes),
            peers: Interner::new(&[OTHER, UNKNOWN_PEER], limits.max_peers),
            series: HashMap::new(),
            in_flight: HashMap::new(),
            route_folds: 0,
            peer_folds: 0,
        }
    }

    fn peer_id(&mut self, peer: Option<&str>) -> usize {
        let (id, folded) = self.peers.intern(peer.unwrap_or(UNKNOWN_PEER));
        if folded {
            self.peer_folds = self.peer_folds.saturating_add(1);
        }
        id
    }

    /// The series a request is counted in, after folding routes and peers past the caps.
    fn series_key(&mut self, labels: &RequestLabels<'_>, max_series: usize) -> SeriesKey {
        let peer = self.peer_id(labels.peer);
        let (mut route, folded) = self.routes.intern(labels.route);
        if folded {
            self.route_folds = self.route_folds.saturating_add(1);
        }
        let key = SeriesKey {
            direction: labels.direction,
            route,
            peer,
        };
        if route != OTHER_ID && self.series.len() >= max_series && !self.series.contains_key(&key) {
            // Every series owns an hdr histogram; past the cap, fold the route so that
            // at most one extra series per direction and peer can appear.
            route = OTHER_ID;
            self.route_folds = self.route_folds.saturating_add(1);
        }
        SeriesKey { route, ..key }
    }
}

/// Id of `other` in both interners (reserved first).
const OTHER_ID: usize = 0;

/// Label values to small ids, so the hot path hashes a `&str` and allocates nothing
/// once a value has been seen.
#[derive(Debug)]
struct Interner {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, usize>,
    reserved: usize,
    cap: usize,
}

impl Interner {
    fn new(reserved: &[&str], cap: usize) -> Interner {
        let mut interner = Interner {
            names: Vec::new(),
            ids: HashMap::new(),
            reserved: reserved.len(),
            cap,
        };
        for name in reserved {
            interner.names.push((*name).into());
            interner
                .ids
                .insert((*name).into(), interner.names.len() - 1);
        }
        interner
    }

    /// The id of `name`, and whether it was folded into `other` because the cap is reached.
    fn intern(&mut self, name: &str) -> (usize, bool) {
        if let Some(&id) = self.ids.get(name) {
            return (id, false);
        }
        if self.names.len() - self.reserved >= self.cap {
            return (OTHER_ID, true);
        }
        let id = self.names.len();
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        (id, false)
    }

    fn name(&self, id: usize) -> &str {
        self.names.get(id).map_or(OTHER, |name| name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesKey {
    direction: Direction,
    route: usize,
    peer: usize,
}

/// Counters of one direction × route × peer.
#[derive(Debug)]
struct Series {
    /// Requests by `StatusClass::index`.
    requests: [u64; 6],
    retries: u64,
    latency: Latency,
}

impl Series {
    fn new() -> Series {
        Series {
            requests: [0; 6],
            retries: 0,
            latency: Latency::new(),
        }
    }

    fn errors(&self) -> u64 {
        StatusClass::ALL
            .iter()
            .filter(|class| class.is_error())
            .map(|class| self.requests[class.index()])
            .fold(0, u64::saturating_add)
    }
}

/// Keeps a request counted in `faultline_agent_in_flight_requests` until dropped
/// (including when the request's future is dropped or its task panics).
#[derive(Debug)]
#[must_use = "the request stops counting as in flight when the guard is dropped"]
pub struct InFlightGuard {
    cell: Arc<AtomicI64>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.cell.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Latency quantiles of one series, for the admin `/status` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesLatency {
    /// The `direction` label.
    pub direction: Direction,
    /// The `route` label (possibly `other`).
    pub route: String,
    /// The `peer` label (possibly `unknown` or `other`).
    pub peer: String,
    /// Quantiles from the hdr histogram.
    pub latency: LatencyQuantiles,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with the default [`Limits`].
    pub fn new() -> Metrics {
        Metrics::with_limits(Limits::default())
    }

    /// A registry with the given cardinality caps.
    pub fn with_limits(limits: Limits) -> Metrics {
        Metrics {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::new(State::new(limits)),
                fault_activations: Default::default(),
                access_log_dropped: AtomicU64::new(0),
                spans_dropped: AtomicU64::new(0),
                spans_exported: AtomicU64::new(0),
            }),
        }
    }

    /// The caps this registry folds label values at.
    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock is held can only interrupt a run of integer updates
        // (or an allocation) on already-valid values: the state stays well-formed, at
        // worst one request is partly counted. Carrying on beats losing every metric,
        // and the data path must never panic because of telemetry.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Count one finished request: its status class (or `error`), its latency, and
    /// whether the caller marked it as a retry (`http.request.resend_count` > 0 or a
    /// retry header).
    pub fn record_request(
        &self,
        labels: &RequestLabels<'_>,
        status: StatusClass,
        latency: Duration,
        retry: bool,
    ) {
        let max_series = self.shared.limits.max_series;
        let mut state = self.lock();
        let key = state.series_key(labels, max_series);
        let series = state.series.entry(key).or_insert_with(Series::new);
        let count = &mut series.requests[status.index()];
        *count = count.saturating_add(1);
        if retry {
            series.retries = series.retries.saturating_add(1);
        }
        series.latency.record(latency);
    }

    /// Count a request as in flight until the returned guard is dropped.
    pub fn start(&self, direction: Direction, peer: Option<&str>) -> InFlightGuard {
        let cell = {
            let mut state = self.lock();
            let peer = state.peer_id(peer);
            Arc::clone(state.in_flight.entry((direction, peer)).or_default())
        };
        cell.fetch_add(1, Ordering::Relaxed);
        InFlightGuard { cell }
    }

    /// Count one activation of an injected fault.
    pub fn fault_activation(&self, kind: ToxicType, direction: Direction) {
        self.shared.fault_activations[direction.index()][fault_index(kind)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Count spans dropped because the export path was full.
    pub fn spans_dropped(&self, n: u64) {
        self.shared.spans_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Count access log lines dropped because the log writer fell behind.
    pub fn access_log_dropped(&self, n: u64) {
        self.shared
            .access_log_dropped
            .fetch_add(n, Ordering::Relaxed);
    }

    /// Count spans handed to the exporter.
    pub fn spans_exported(&self, n: u64) {
        self.shared.spans_exported.fetch_add(n, Ordering::Relaxed);
    }

    /// Latency quantiles of one series, looked up without interning: `None` if the
    /// series has not been recorded (a folded route is found under `other`).
    pub fn latency_quantiles(&self, labels: &RequestLabels<'_>) -> Option<LatencyQuantiles> {
        let state = self.lock();
        let key = SeriesKey {
            direction: labels.direction,
            route: *state.routes.ids.get(labels.route)?,
            peer: *state.peers.ids.get(labels.peer.unwrap_or(UNKNOWN_PEER))?,
        };
        state
            .series
            .get(&key)
            .map(|series| series.latency.quantiles())
    }

    /// Latency quantiles of every series, sorted by direction, peer and route. Takes the
    /// lock once per series so that recording is never held up for the whole report.
    pub fn latency_report(&self) -> Vec<SeriesLatency> {
        let mut keys: Vec<(SeriesKey, SeriesLatency)> = {
            let state = self.lock();
            state
                .series
                .keys()
                .map(|key| {
                    let labels = SeriesLatency {
                        direction: key.direction,
                        route: state.routes.name(key.route).to_owned(),
                        peer: state.peers.name(key.peer).to_owned(),
                        latency: LatencyQuantiles::default(),
                    };
                    (*key, labels)
                })
                .collect()
        };
        keys.sort_by(|(_, a), (_, b)| {
            (a.direction, &a.peer, &a.route).cmp(&(b.direction, &b.peer, &b.route))
        });
        keys.into_iter()
            .filter_map(|(key, mut report)| {
                let quantiles = self.lock().series.get(&key)?.latency.quantiles();
                report.latency = quantiles;
                Some(report)
            })
            .collect()
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    /// [`Metrics::render`] into an existing buffer (appended).
    pub fn render_into(&self, out: &mut String) {
        render::render(&self.snapshot(), out);
    }

    /// Copies every counter out, so that formatting happens without the lock.
    fn snapshot(&self) -> render::Snapshot {
        let mut snapshot = {
            let state = self.lock();
            render::Snapshot {
                series: state
                    .series
                    .iter()
                    .map(|(key, series)| render::SeriesSnapshot {
                        direction: key.direction,
                        route: state.routes.name(key.route).to_owned(),
                        peer: state.peers.name(key.peer).to_owned(),
                        requests: series.requests,
                        errors: series.errors(),
                        retries: series.retries,
                        buckets: series.latency.cumulative_buckets(),
                        count: series.latency.count(),
                        sum_nanos: series.latency.sum_nanos(),
                    })
                    .collect(),
                in_flight: state
                    .in_flight
                    .iter()
                    .map(|((direction, peer), cell)| {
                        (
                            *direction,
                            state.peers.name(*peer).to_owned(),
                            cell.load(Ordering::Relaxed),
                        )
                    })
                    .collect(),
                route_folds: state.route_folds,
                peer_folds: state.peer_folds,
                fault_activations: [[0; 6]; 2],
                access_log_dropped: 0,
                spans_dropped: 0,
                spans_exported: 0,
            }
        };
        for direction in Direction::ALL {
            for kind in FAULT_KINDS {
                snapshot.fault_activations[direction.index()][fault_index(kind)] =
                    self.shared.fault_activations[direction.index()][fault_index(kind)]
                        .load(Ordering::Relaxed);
            }
        }
        snapshot.access_log_dropped = self.shared.access_log_dropped.load(Ordering::Relaxed);
        snapshot.spans_dropped = self.shared.spans_dropped.load(Ordering::Relaxed);
        snapshot.spans_exported = self.shared.spans_exported.load(Ordering::Relaxed);
        snapshot.series.sort_by(|a, b| {
            (a.direction, &a.peer, &a.route).cmp(&(b.direction, &b.peer, &b.route))
        });
        snapshot
            .in_flight
            .sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        snapshot
    }
}
