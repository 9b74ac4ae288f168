//! What the KV shell counts, and how `/status` and `/metrics` show it.
//!
//! ```text
//!  coordinator ── ops by kind and outcome ─────────┐
//!  write driver ─ late acks (replication lag) ─────┤
//!               └ writes answered, replicas owed ──┤  KvStats ──► KvStatus (JSON, /status)
//!  read driver ── stale reads, read repairs ───────┤          └─► faultline_kv_* (Prometheus, /metrics)
//!  replica ────── drift refusals by origin ────────┤
//!  handoff loop ─ hints stored / delivered ────────┘
//! ```
//!
//! **Replication lag** is measured where Dynamo-style replication creates it: a write is
//! answered once W replicas acknowledged, and each later ack is one lag sample — the time
//! from the client's answer to that replica's ack (`WriteStep::LateAck`). Per replica we
//! keep the last sample, the mean, the maximum over the last minute and a histogram.
//! Writes whose replicas beyond W have not answered yet are a gauge
//! (`writes_pending_replication`): a replica that never acks (down, partitioned) shows
//! there and in the hint backlog, not as a lag sample.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use faultline_model::prometheus::{family, sample};
use serde::Serialize;

use crate::kv::NodeId;
use crate::raft::node_name;

/// Upper bounds of the replication-lag histogram, in ms (Prometheus `le`, in seconds).
const LAG_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000];

/// The window of `max_ms`: long enough for a scrape every 15 s to see every spike.
const LAG_WINDOW: Duration = Duration::from_secs(60);

/// Samples kept per replica for the windowed maximum (bounded, whatever the write rate;
/// only the samples that can still be the maximum are kept — a monotonic deque).
const LAG_WINDOW_SAMPLES: usize = 1_024;

/// A client-facing operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Put,
    Delete,
    Get,
}

/// How a client-facing operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpOutcome {
    /// Written with W acks, or read with R answers (found).
    Ok,
    /// Read with R answers: no such key, or a tombstone.
    NotFound,
    /// W or R could no longer be reached.
    Unavailable,
    /// Refused before anything was sent (bad key, bad quorum, bad version).
    Invalid,
    /// The version the client handed back is too far in the future.
    ClockDrift,
    /// This node's own storage failed.
    Error,
}

/// A replica-internal operation (`/kv-replica`), as this node served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaOpKind {
    /// A write, read repair or hint delivery applied to this replica.
    Write,
    /// A write stored here as a hint for another replica (sloppy quorum).
    Hint,
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaOpOutcome {
    Ok,
    /// Refused: the version was beyond the clock-drift bound.
    ClockDrift,
    /// Refused: the hint backlog for the target is full.
    Limit,
    Error,
}

#[derive(Debug, Default)]
struct PeerLag {
    last: Duration,
    sum: Duration,
    count: u64,
    /// Per bucket of [`LAG_BUCKETS_MS`] (not cumulative; the renderer sums).
    buckets: [u64; LAG_BUCKETS_MS.len()],
    /// Decreasing lags with their times: the front is the window's maximum.
    window: VecDeque<(Instant, Duration)>,
}

impl PeerLag {
    fn record(&mut self, lag: Duration, at: Instant) {
        self.last = lag;
        self.sum = self.sum.saturating_add(lag);
        self.count += 1;
        let ms = lag.as_secs_f64() * 1e3;
        if let Some(i) = LAG_BUCKETS_MS.iter().position(|&b| ms <= b as f64) {
            self.buckets[i] += 1;
        }
        while self.window.back().is_some_and(|&(_, l)| l <= lag) {
            self.window.pop_back();
        }
        if self.window.len() >= LAG_WINDOW_SAMPLES {
            self.window.pop_front();
        }
        self.window.push_back((at, lag));
    }

    fn max_in_window(&mut self, now: Instant) -> Duration {
        while self
            .window
            .front()
            .is_some_and(|&(t, _)| now.saturating_duration_since(t) > LAG_WINDOW)
        {
            self.window.pop_front();
        }
        self.window.front().map_or(Duration::ZERO, |&(_, l)| l)
    }
}

#[derive(Debug, Default)]
struct Counters {
    ops: BTreeMap<(OpKind, OpOutcome), u64>,
    replica_ops: BTreeMap<(ReplicaOpKind, ReplicaOpOutcome), u64>,
    lag: BTreeMap<NodeId, PeerLag>,
    /// Replica writes refused for clock drift, by the node that minted the version.
    drift_by_origin: BTreeMap<NodeId, u64>,
    stale_reads: u64,
    read_repairs: u64,
    hints_stored: u64,
    hints_delivered: u64,
}

/// The KV shell's counters. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct KvStats {
    counters: Mutex<Counters>,
    /// Writes answered to the client whose remaining replicas have not all answered.
    pending_replication: AtomicU64,
}

impl KvStats {
    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn op(&self, kind: OpKind, outcome: OpOutcome) {
        *self.counters().ops.entry((kind, outcome)).or_default() += 1;
    }

    pub fn replica_op(&self, kind: ReplicaOpKind, outcome: ReplicaOpOutcome) {
        *self
            .counters()
            .replica_ops
            .entry((kind, outcome))
            .or_default() += 1;
    }

    /// One replication-lag sample: `replica` acknowledged `lag` after the client's answer.
    pub fn late_ack(&self, replica: NodeId, lag: Duration) {
        self.counters()
            .lag
            .entry(replica)
            .or_default()
            .record(lag, Instant::now());
    }

    pub fn drift_refused(&self, origin: NodeId) {
        *self.counters().drift_by_origin.entry(origin).or_default() += 1;
    }

    pub fn stale_read(&self) {
        self.counters().stale_reads += 1;
    }

    pub fn read_repairs(&self, count: usize) {
        self.counters().read_repairs += count as u64;
    }

    pub fn hint_stored(&self) {
        self.counters().hints_stored += 1;
    }

    pub fn hints_delivered(&self, count: u64) {
        self.counters().hints_delivered += count;
    }

    pub fn replication_pending(&self) {
        self.pending_replication.fetch_add(1, Ordering::Relaxed);
    }

    pub fn replication_done(&self) {
        // Paired with `replication_pending`; saturating so a bug cannot wrap the gauge.
        let _ = self
            .pending_replication
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }

    /// The figures for `/status`.
    pub(super) fn snapshot(&self) -> StatsSnapshot {
        let now = Instant::now();
        let mut counters = self.counters();
        let replication_lag = counters
            .lag
            .iter_mut()
            .map(|(&node, lag)| ReplicaLag {
                replica: node_name(node),
                samples: lag.count,
                last_ms: ms(lag.last),
                avg_ms: if lag.count == 0 {
                    0.0
                } else {
                    ms(lag.sum) / lag.count as f64
                },
                max_ms: ms(lag.max_in_window(now)),
                sum_seconds: lag.sum.as_secs_f64(),
                buckets: lag.buckets,
            })
            .collect();
        StatsSnapshot {
            operations: counters
                .ops
                .iter()
                .map(|(&(op, outcome), &count)| OpCount { op, outcome, count })
                .collect(),
            replica_operations: counters
                .replica_ops
                .iter()
                .map(|(&(op, outcome), &count)| ReplicaOpCount { op, outcome, count })
                .collect(),
            replication_lag,
            writes_pending_replication: self.pending_replication.load(Ordering::Relaxed),
            stale_reads: counters.stale_reads,
            read_repairs: counters.read_repairs,
            hints_stored: counters.hints_stored,
            hints_delivered: counters.hints_delivered,
            clock_drift_refusals: counters
                .drift_by_origin
                .iter()
                .map(|(&node, &count)| (node_name(node), count))
                .collect(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The counters' part of [`KvStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct StatsSnapshot {
    pub operations: Vec<OpCount>,
    pub replica_operations: Vec<ReplicaOpCount>,
    /// Per replica this node coordinated writes to and heard from after answering.
    pub replication_lag: Vec<ReplicaLag>,
    /// Writes answered (W acks) whose other replicas have not answered yet.
    pub writes_pending_replication: u64,
    /// Reads this node answered with a version older than a replica turned out to hold.
    pub stale_reads: u64,
    /// Read-repair writes sent.
    pub read_repairs: u64,
    /// Hints this node took for replicas it could not reach (as stand-in or coordinator).
    pub hints_stored: u64,
    pub hints_delivered: u64,
    /// Replica writes this node refused because their version was too far ahead of its
    /// clock, by the node that minted the version (the skewed one, or — if every peer
    /// is named — this node is behind).
    pub clock_drift_refusals: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpCount {
    pub op: OpKind,
    pub outcome: OpOutcome,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaOpCount {
    pub op: ReplicaOpKind,
    pub outcome: ReplicaOpOutcome,
    pub count: u64,
}

/// Replication lag of one replica, as this node (coordinating writes) measured it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaLag {
    pub replica: String,
    pub samples: u64,
    pub last_ms: f64,
    pub avg_ms: f64,
    /// The largest sample of the last 60 s.
    pub max_ms: f64,
    #[serde(skip)]
    sum_seconds: f64,
    #[serde(skip)]
    buckets: [u64; LAG_BUCKETS_MS.len()],
}

/// The KV section of `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct KvStatus {
    /// Replicas per key.
    pub n: usize,
    /// Default read and write quorums (`PUT /admin/quorum`).
    pub r: usize,
    pub w: usize,
    /// `sloppy` (stand-ins count toward W) or `strict`.
    pub policy: &'static str,
    /// Hints held here, per replica they are for.
    pub hint_backlog: BTreeMap<String, u64>,
    /// The sum of `hint_backlog`.
    pub hints_pending: u64,
    /// The latest HLC timestamp this node issued or observed.
    pub hlc: String,
    pub clock_offset_ms: i64,
    /// Every timestamp the HLC refused (replica writes, read answers, client versions).
    pub clock_drift_rejections: u64,
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

const PREFIX: &str = "faultline_";

fn seconds(s: f64) -> String {
    format!("{s:.6}")
}

/// Appends the `faultline_kv_*` families to a node's Prometheus text.
pub fn render(status: &KvStatus, node: &str, out: &mut String) {
    let s = &status.stats;
    // One sample labelled with the node only.
    let single = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
        family(out, PREFIX, name, kind, help);
        sample(out, PREFIX, name, &[("node", node)], value);
    };
    // One sample per (label value, count).
    let per = |out: &mut String,
               name: &str,
               label: &str,
               help: &str,
               kind: &str,
               rows: &mut dyn Iterator<Item = (&str, u64)>| {
        family(out, PREFIX, name, kind, help);
        for (value, count) in rows {
            sample(out, PREFIX, name, &[("node", node), (label, value)], count);
        }
    };
    // One sample per (op, outcome, count).
    let by_outcome = |out: &mut String,
                      name: &str,
                      help: &str,
                      rows: &mut dyn Iterator<Item = (&str, &str, u64)>| {
        family(out, PREFIX, name, "counter", help);
        for (op, outcome, count) in rows {
            sample(
                out,
                PREFIX,
                name,
                &[("node", node), ("op", op), ("outcome", outcome)],
                count,
            );
        }
    };
    single(
        out,
        "kv_clock_drift_rejections_total",
        "counter",
        "Timestamps the node's hybrid logical clock refused as too far ahead (all sources).",
        status.clock_drift_rejections,
    );
    per(
        out,
        "kv_clock_drift_refusals_total",
        "origin",
        "Replica writes refused for clock drift, by the node that minted the version.",
        "counter",
        &mut s.clock_drift_refusals.iter().map(|(n, c)| (n.as_str(), *c)),
    );
    single(
        out,
        "kv_hints_delivered_total",
        "counter",
        "Hinted writes delivered to the replica they were held for.",
        s.hints_delivered,
    );
    per(
        out,
        "kv_hints_pending",
        "replica",
        "Hinted writes held by this node for a replica, not yet delivered.",
        "gauge",
        &mut status.hint_backlog.iter().map(|(n, c)| (n.as_str(), *c)),
    );
    single(
        out,
        "kv_hints_stored_total",
        "counter",
        "Writes this node stored as hints for replicas it could not reach.",
        s.hints_stored,
    );
    by_outcome(
        out,
        "kv_operations_total",
        "Client KV operations coordinated by this node, by kind and outcome.",
        &mut s
            .operations
            .iter()
            .map(|o| (o.op.label(), o.outcome.label(), o.count)),
    );
    single(
        out,
        "kv_quorum_read",
        "gauge",
        "Default R: replicas a read waits for.",
        status.r as u64,
    );
    single(
        out,
        "kv_quorum_write",
        "gauge",
        "Default W: replicas a write waits for.",
        status.w as u64,
    );
    single(
        out,
        "kv_read_repairs_total",
        "counter",
        "Read-repair writes sent to replicas found behind by a read.",
        s.read_repairs,
    );
    by_outcome(
        out,
        "kv_replica_operations_total",
        "Replica-internal operations this node served, by kind and outcome.",
        &mut s
            .replica_operations
            .iter()
            .map(|o| (o.op.label(), o.outcome.label(), o.count)),
    );
    family(
        out,
        PREFIX,
        "kv_replication_lag_max_seconds",
        "gauge",
        "Largest replication lag of a replica over the last 60 s (ack after the client's answer).",
    );
    for lag in &s.replication_lag {
        sample(
            out,
            PREFIX,
            "kv_replication_lag_max_seconds",
            &[("node", node), ("replica", &lag.replica)],
            seconds(lag.max_ms / 1e3),
        );
    }
    family(
        out,
        PREFIX,
        "kv_replication_lag_seconds",
        "histogram",
        "Replication lag: time from a write's answer to the client to a later replica's ack.",
    );
    for lag in &s.replication_lag {
        let bounds = LAG_BUCKETS_MS.iter().map(|&b| seconds(b as f64 / 1e3));
        let mut cumulative = 0;
        let counts = lag.buckets.iter().map(|&c| {
            cumulative += c;
            cumulative
        });
        let infinity = std::iter::once(("+Inf".to_owned(), lag.samples));
        for (le, count) in bounds.zip(counts).chain(infinity) {
            let labels = [
                ("node", node),
                ("replica", lag.replica.as_str()),
                ("le", &le),
            ];
            sample(
                out,
                PREFIX,
                "kv_replication_lag_seconds_bucket",
                &labels,
                count,
            );
        }
        let labels = [("node", node), ("replica", lag.replica.as_str())];
        sample(
            out,
            PREFIX,
            "kv_replication_lag_seconds_sum",
            &labels,
            seconds(lag.sum_seconds),
        );
        sample(
            out,
            PREFIX,
            "kv_replication_lag_seconds_count",
            &labels,
            lag.samples,
        );
    }
    single(
        out,
        "kv_stale_reads_total",
        "counter",
        "Reads answered with an older version than a replica turned out to hold (kv.stale).",
        s.stale_reads,
    );
    single(
        out,
        "kv_writes_pending_replication",
        "gauge",
        "Writes answered to the client whose replicas beyond W have not all answered yet.",
        s.writes_pending_replication,
    );
}

/// Label values: the same snake_case names serde gives the variants in `/status`.
trait Label {
    fn label(&self) -> &'static str;
}

impl Label for OpKind {
    fn label(&self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Delete => "delete",
            OpKind::Get => "get",
        }
    }
}

impl Label for OpOutcome {
    fn label(&self) -> &'static str {
        match self {
            OpOutcome::Ok => "ok",
            OpOutcome::NotFound => "not_found",
            OpOutcome::Unavailable => "unavailable",
            OpOutcome::Invalid => "invalid",
            OpOutcome::ClockDrift => "clock_drift",
            OpOutcome::Error => "error",
        }
    }
}

impl Label for ReplicaOpKind {
    fn label(&self) -> &'static str {
        match self {
            ReplicaOpKind::Write => "write",
            ReplicaOpKind::Hint => "hint",
            ReplicaOpKind::Read => "read",
        }
    }
}

impl Label for ReplicaOpOutcome {
    fn label(&self) -> &'static str {
        match self {
            ReplicaOpOutcome::Ok => "ok",
            ReplicaOpOutcome::ClockDrift => "clock_drift",
            ReplicaOpOutcome::Limit => "limit",
            ReplicaOpOutcome::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_windowed_maximum_keeps_the_largest_recent_sample() {
        let mut lag = PeerLag::default();
        let t0 = Instant::now();
        lag.record(Duration::from_millis(30), t0);
        lag.record(Duration::from_millis(50), t0 + Duration::from_secs(1));
        lag.record(Duration::from_millis(10), t0 + Duration::from_secs(2));
        assert_eq!(
            lag.max_in_window(t0 + Duration::from_secs(3)),
            Duration::from_millis(50)
        );
        // 50 ms leaves the window; 10 ms is what remains.
        assert_eq!(
            lag.max_in_window(t0 + Duration::from_secs(62)),
            Duration::from_millis(10)
        );
        assert_eq!(lag.count, 3);
        assert_eq!(lag.last, Duration::from_millis(10));
        // 10 → bucket le=10, 30 → le=50, 50 → le=50.
        assert_eq!(lag.buckets[3], 1);
        assert_eq!(lag.buckets[5], 2);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut lag = PeerLag::default();
        let t0 = Instant::now();
        // Increasing samples each evict the previous one; decreasing ones pile up.
        for i in 0..(LAG_WINDOW_SAMPLES as u64 + 100) {
            lag.record(Duration::from_millis(100_000 - i), t0);
        }
        assert!(lag.window.len() <= LAG_WINDOW_SAMPLES);
    }

    #[test]
    fn metrics_render_histograms_counters_and_gauges() {
        let stats = KvStats::default();
        stats.op(OpKind::Put, OpOutcome::Ok);
        stats.op(OpKind::Get, OpOutcome::NotFound);
        stats.replica_op(ReplicaOpKind::Hint, ReplicaOpOutcome::Limit);
        stats.late_ack(2, Duration::from_millis(7));
        stats.late_ack(2, Duration::from_millis(700));
        stats.stale_read();
        stats.drift_refused(3);
        stats.replication_pending();
        stats.replication_pending();
        stats.replication_done();
        let status = KvStatus {
            n: 3,
            r: 2,
            w: 2,
            policy: "sloppy",
            hint_backlog: BTreeMap::from([("node-3".to_owned(), 4)]),
            hints_pending: 4,
            hlc: "1.0".to_owned(),
            clock_offset_ms: 0,
            clock_drift_rejections: 1,
            stats: stats.snapshot(),
        };
        let mut out = String::new();
        render(&status, "node-1", &mut out);
        for line in [
            "faultline_kv_operations_total{node=\"node-1\",op=\"put\",outcome=\"ok\"} 1",
            "faultline_kv_operations_total{node=\"node-1\",op=\"get\",outcome=\"not_found\"} 1",
            "faultline_kv_replica_operations_total{node=\"node-1\",op=\"hint\",outcome=\"limit\"} 1",
            "faultline_kv_replication_lag_seconds_bucket{node=\"node-1\",replica=\"node-2\",le=\"0.010000\"} 1",
            "faultline_kv_replication_lag_seconds_bucket{node=\"node-1\",replica=\"node-2\",le=\"1.000000\"} 2",
            "faultline_kv_replication_lag_seconds_bucket{node=\"node-1\",replica=\"node-2\",le=\"+Inf\"} 2",
            "faultline_kv_replication_lag_seconds_count{node=\"node-1\",replica=\"node-2\"} 2",
            "faultline_kv_replication_lag_seconds_sum{node=\"node-1\",replica=\"node-2\"} 0.707000",
            "faultline_kv_replication_lag_max_seconds{node=\"node-1\",replica=\"node-2\"} 0.700000",
            "faultline_kv_hints_pending{node=\"node-1\",replica=\"node-3\"} 4",
            "faultline_kv_stale_reads_total{node=\"node-1\"} 1",
            "faultline_kv_clock_drift_refusals_total{node=\"node-1\",origin=\"node-3\"} 1",
            "faultline_kv_writes_pending_replication{node=\"node-1\"} 1",
            "faultline_kv_quorum_write{node=\"node-1\"} 2",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line} in:\n{out}");
        }
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["replication_lag"][0]["avg_ms"], 353.5);
        assert_eq!(json["replication_lag"][0]["max_ms"], 700.0);
        assert!(json["replication_lag"][0].get("buckets").is_none());
        assert_eq!(json["writes_pending_replication"], 1);
        assert_eq!(json["operations"][0]["op"], "put");
    }

    #[test]
    fn labels_match_the_status_json_names() {
        fn check<T: Label + Serialize>(values: &[T]) {
            for v in values {
                assert_eq!(serde_json::to_value(v).unwrap(), v.label());
            }
        }
        check(&[OpKind::Put, OpKind::Delete, OpKind::Get]);
        check(&[
            OpOutcome::Ok,
            OpOutcome::NotFound,
            OpOutcome::Unavailable,
            OpOutcome::Invalid,
            OpOutcome::ClockDrift,
            OpOutcome::Error,
        ]);
        check(&[
            ReplicaOpKind::Write,
            ReplicaOpKind::Hint,
            ReplicaOpKind::Read,
        ]);
        check(&[
            ReplicaOpOutcome::Ok,
            ReplicaOpOutcome::ClockDrift,
            ReplicaOpOutcome::Limit,
            ReplicaOpOutcome::Error,
        ]);
    }
}
