//! The quorum KV's network shell: the node side of [`crate::kv`] (the pure core).
//!
//! ```text
//!  PUT /kv/k?w=W ─► write(): version = HLC ─► WriteRound ──spawn one task per replica──┐
//!       ▲                                         ▲                                      │ local: spawn_blocking(apply)
//!       └─ answer once Decided (W acks / W lost)  └──── (target, reply) over a channel ◄─┘ peer: PUT http://node-j/kv-replica/k
//!                                                  the driver keeps going after the answer:      (through the agent)
//!                                                  late acks = replication lag, failures =
//!                                                  stand-in (sloppy quorum) or a hint kept here
//!  GET /kv/k?r=R ─► read(): ReadRound ── GET /kv-replica/k on all N ─► answer after R; read repair; late newer copy = stale read
//!  handoff loop (every 500 ms): hints held here ─► PUT /kv-replica/k on the replica they are for ─► remove delivered
//! ```
//!
//! What the shell owes the core (see [`crate::kv`]) and where it is paid:
//! - versions minted by [`Hlc::new_version`] after observing the client's `after`
//!   version ([`write`]); every version received is observed ([`read`], the replica
//!   handler in [`api`]), and a replica refuses a write whose version fails `observe`
//!   (409 `clock_drift`, counted per origin node);
//! - a replica acknowledges only after [`ReplicaStore::apply`] returned (fsync'd);
//! - reads go to all N replicas, so late answers are repaired and reveal stale reads.
//!
//! **Sloppy quorum and hints.** A replica whose request fails (connection refused,
//! timeout, 5xx — not a 409 refusal) is replaced by the next node of the key's preference
//! list beyond the N replicas, which stores the write as a hint for it
//! ([`WriteRound::stand_in`]). When there is no such node — always in a 3-node cluster,
//! where N is the whole ring — the coordinator keeps the hint itself (as Cassandra's
//! coordinators do); that hint does not count toward W, but it brings the replica up to
//! date once it is back, so that "hint backlog 0 everywhere" means every write reached
//! every reachable replica it was meant for. A write refused with 503 may still have been
//! stored by the replicas that acked (and be delivered by hints): like a timeout, its fate
//! is unknown to the client, never "definitely not written".
//!
//! **Commit wait.** Versions have millisecond resolution and each node has its own
//! logical counter, so two writes minted in the same millisecond on different nodes are
//! ordered by counter and node id, not by when they happened: a write acknowledged in the
//! millisecond its version was minted could lose, under LWW, to a write a client started
//! *after* that acknowledgement. So an acknowledged write is answered only once this
//! node's clock has passed its version's millisecond (at most [`COMMIT_WAIT_MAX`]; a
//! version further ahead means a skewed clock, and that anomaly is left visible). Any
//! write invoked after the answer, on a node whose clock is not behind ours, then gets a
//! higher version: LWW follows real time. The history checker in `tests/kv.rs` relies on
//! it (real-time order between acknowledged writes).
//!
//! **Fault hooks.** The node's clock offset (`PUT /admin/faults`) is read into the HLC
//! every time the clock is used, and the disk delay into the replica store before every
//! write, so neither can drift out of sync with the hooks.
//!
//! Telemetry (PRODUCT.md §4): each client operation ends with an event carrying `kv.n`,
//! `kv.r`/`kv.w`, `kv.replicas_acked`, `kv.version`, `correlation.id`; a stale read is a
//! warning with `kv.stale = true`. Counters and replication lag: [`stats`].

pub mod api;
pub mod stats;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName};
use opentelemetry::trace::TraceContextExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{Node, NodeConfig};
use crate::kv::{
    ClockDrift, Hint, Hlc, NodeId, QuorumError, QuorumPolicy, ReadOutcome, ReadRound, ReplicaStore,
    Ring, StoreError, SystemClock, Version, Versioned, WriteOutcome, WriteRound, WriteStep,
    WriteTarget,
};
use crate::raft::node_name;
use crate::telemetry;
use stats::{KvStats, KvStatus, OpKind, OpOutcome};

/// Replicas per key (PRODUCT.md §3); fewer only when the cluster is smaller.
pub const REPLICAS: usize = 3;
/// How long one replica request (write, read, hint, repair) may take.
pub const REPLICA_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the handoff loop looks for hints to deliver.
pub const HANDOFF_INTERVAL: Duration = Duration::from_millis(500);
/// Hints sent to one replica per handoff round.
const HANDOFF_BATCH: usize = 128;
/// The longest a write's answer waits for the clock to pass its version (commit wait).
pub const COMMIT_WAIT_MAX: Duration = Duration::from_millis(5);
/// Keys travel as one URL path segment; keep them reasonable.
pub const MAX_KEY_BYTES: usize = 512;
/// The replica store's file in the node's data directory.
pub const STORE_FILE: &str = "kv.redb";
/// Headers copied from a client's request onto the replica calls it causes, so the
/// agents continue the client's trace and correlation id.
const PROPAGATED: [&str; 5] = [
    "traceparent",
    "tracestate",
    "baggage",
    "x-correlation-id",
    "x-request-id",
];

/// Whether stand-ins count toward W (`PUT /admin/quorum {"policy": …}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Dynamo's choice: a stand-in holding a hint counts; writes stay available.
    #[default]
    Sloppy,
    /// Only the key's N preferred replicas count: R + W > N overlap holds.
    Strict,
}

impl Policy {
    fn core(self) -> QuorumPolicy {
        match self {
            Policy::Sloppy => QuorumPolicy::Sloppy,
            Policy::Strict => QuorumPolicy::Strict,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Policy::Sloppy => "sloppy",
            Policy::Strict => "strict",
        }
    }
}

/// The quorum defaults requests use when they name no `r` / `w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuorumSettings {
    pub n: usize,
    pub r: usize,
    pub w: usize,
    pub policy: Policy,
}

/// A change to [`QuorumSettings`]; absent fields stay as they are.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumUpdate {
    pub r: Option<usize>,
    pub w: Option<usize>,
    pub policy: Option<Policy>,
}

/// Why a KV request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    ClockDrift(#[from] ClockDrift),
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<QuorumError> for KvError {
    fn from(e: QuorumError) -> Self {
        KvError::Invalid(e.to_string())
    }
}

/// What a replica answers to a write (`PUT /kv-replica/{key}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaAck {
    /// The write is now the replica's newest copy (false: it held this or a newer one).
    pub newer: bool,
    /// The version held before (`None` for a hint, or a key the replica did not have).
    pub previous: Option<Version>,
}

/// What a replica answers to a read (`GET /kv-replica/{key}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaCopy {
    pub versioned: Option<Versioned>,
}

/// The trace and correlation headers of the client request a replica call serves, and
/// the trace context of the span that serves it (the parent of the spans its background
/// work emits: `kv.replicate`, `kv.stale_read`).
#[derive(Debug, Clone, Default)]
pub struct Propagation {
    headers: HeaderMap,
    cx: opentelemetry::Context,
}

impl Propagation {
    /// The propagated headers of `headers`, with the trace continuing from the current
    /// span when it is exported.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut propagated = HeaderMap::new();
        for &name in &PROPAGATED {
            if let Some(value) = headers.get(name) {
                propagated.insert(HeaderName::from_static(name), value.clone());
            }
        }
        let span = tracing::Span::current();
        telemetry::inject(&span, &mut propagated);
        Propagation {
            headers: propagated,
            cx: span.context(),
        }
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.headers(self.headers.clone())
    }

    /// A span for work this request left behind, in the request's trace.
    fn child(&self, span: &tracing::Span) {
        if self.cx.span().span_context().is_valid() {
            let _ = span.set_parent(self.cx.clone());
        }
    }

    /// The correlation id, for telemetry (`x-correlation-id`, else `x-request-id`).
    fn correlation_id(&self) -> &str {
        ["x-correlation-id", "x-request-id"]
            .iter()
            .find_map(|&want| self.headers.get(want).and_then(|v| v.to_str().ok()))
            .unwrap_or("")
    }
}

/// A client write (`PUT` or `DELETE /kv/{key}`).
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub key: String,
    /// `None`: delete (a tombstone).
    pub value: Option<String>,
    /// W for this request; `None`: the node's default.
    pub w: Option<usize>,
    /// A version the client saw; the new write is ordered after it.
    pub after: Option<Version>,
}

/// How a client write ended: `outcome.succeeded` says whether W replicas acked.
#[derive(Debug, Clone)]
pub struct WriteAnswer {
    pub version: Version,
    pub outcome: WriteOutcome,
    pub n: usize,
    pub w: usize,
}

/// How a client read ended.
#[derive(Debug, Clone)]
pub struct ReadAnswer {
    pub outcome: ReadOutcome,
    pub n: usize,
    pub r: usize,
    pub latency: Duration,
}

/// A replica's answer, as the coordinator sees it.
#[derive(Debug)]
enum Reply<T> {
    Ok(T),
    /// The replica is up and said no (409: clock drift). Not a reason for a hint.
    Refused(String),
    /// No usable answer: refused connection, timeout, 5xx, partition.
    Failed(String),
}

/// A node's KV: its replica store, its clock, its quorum defaults and its counters.
pub struct Kv {
    id: NodeId,
    ring: Ring,
    n: usize,
    store: Arc<ReplicaStore>,
    /// Never held across an `.await`.
    hlc: Mutex<Hlc>,
    clock_offset_ms: Arc<AtomicI64>,
    disk_delay_ms: Arc<AtomicU64>,
    settings: Mutex<QuorumSettings>,
    pub stats: KvStats,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv")
            .field("id", &self.id)
            .field("n", &self.n)
            .field("store", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl Kv {
    /// Opens `data_dir/kv.redb`; the ring holds every member with the default vnodes.
    pub fn open(
        config: &NodeConfig,
        clock_offset_ms: Arc<AtomicI64>,
        disk_delay_ms: Arc<AtomicU64>,
    ) -> Result<Kv, StoreError> {
        let store = ReplicaStore::open(config.data_dir.join(STORE_FILE))?;
        let ring = Ring::with_nodes(config.members.iter().copied());
        let n = REPLICAS.min(ring.len()).max(1);
        let quorum = 2.min(n);
        Ok(Kv {
            id: config.id,
            n,
            ring,
            store: Arc::new(store),
            hlc: Mutex::new(Hlc::new(config.id, Arc::new(SystemClock))),
            clock_offset_ms,
            disk_delay_ms,
            settings: Mutex::new(QuorumSettings {
                n,
                r: quorum,
                w: quorum,
                policy: Policy::Sloppy,
            }),
            stats: KvStats::default(),
        })
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// The key's N replicas, in preference order.
    pub fn replicas(&self, key: &str) -> Vec<NodeId> {
        self.ring.replicas(key, self.n)
    }

    /// The clock, with the node's clock-offset hook applied.
    fn clock(&self) -> MutexGuard<'_, Hlc> {
        let mut hlc = self.hlc.lock().unwrap_or_else(PoisonError::into_inner);
        hlc.set_offset_ms(self.clock_offset_ms.load(Ordering::Relaxed));
        hlc
    }

    pub fn settings(&self) -> QuorumSettings {
        *self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the defaults; R and W must be within 1..=N.
    pub fn update_settings(&self, update: QuorumUpdate) -> Result<QuorumSettings, KvError> {
        for (name, value) in [("r", update.r), ("w", update.w)] {
            if let Some(v) = value {
                self.check_quorum(name, v)?;
            }
        }
        let mut settings = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        settings.r = update.r.unwrap_or(settings.r);
        settings.w = update.w.unwrap_or(settings.w);
        settings.policy = update.policy.unwrap_or(settings.policy);
        Ok(*settings)
    }

    fn check_quorum(&self, name: &str, value: usize) -> Result<usize, KvError> {
        if (1..=self.n).contains(&value) {
            Ok(value)
        } else {
            Err(KvError::Invalid(format!(
                "{name}={value} is impossible with N={} replicas per key (use 1..={})",
                self.n, self.n
            )))
        }
    }

    fn check_key(key: &str) -> Result<(), KvError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(KvError::Invalid(format!(
                "a key is 1 to {MAX_KEY_BYTES} bytes, this one is {}",
                key.len()
            )));
        }
        Ok(())
    }

    /// Runs `f` on the replica store off the async runtime, with the disk-delay hook
    /// applied to any write it makes.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReplicaStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, KvError> {
        let store = Arc::clone(&self.store);
        store.set_write_delay(Duration::from_millis(
            self.disk_delay_ms.load(Ordering::Relaxed),
        ));
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| KvError::Internal(format!("the storage task failed: {e}")))?
            .map_err(KvError::from)
    }

    /// Stores a write in this node's replica (or, with `hint_for`, as a hint for that
    /// replica). Durable when it returns.
    async fn store_locally(
        &self,
        key: &str,
        versioned: &Versioned,
        hint_for: Option<NodeId>,
    ) -> Result<ReplicaAck, KvError> {
        let (key, versioned) = (key.to_owned(), versioned.clone());
        self.blocking(move |store| match hint_for {
            Some(replica) => store
                .add_hint(replica, &key, &versioned)
                .map(|()| ReplicaAck {
                    newer: true,
                    previous: None,
                }),
            None => store.apply(&key, &versioned).map(|applied| ReplicaAck {
                newer: applied.newer,
                previous: applied.previous,
            }),
        })
        .await
    }

    async fn get_locally(&self, key: &str) -> Result<Option<Versioned>, KvError> {
        let key = key.to_owned();
        self.blocking(move |store| store.get(&key)).await
    }

    /// Observes a version a replica received; `Err` means refuse it.
    fn observe(&self, version: &Version) -> Result<(), ClockDrift> {
        let observed = self.clock().observe_version(version).map(|_| ());
        if let Err(drift) = &observed {
            self.stats.drift_refused(version.node);
            tracing::warn!(
                kv.version = %version,
                origin = %node_name(version.node),
                ahead_by_ms = drift.ahead_by_ms,
                "refused a KV version beyond the clock-drift bound"
            );
        }
        observed
    }

    /// Waits until this node's physical clock has passed `version`'s millisecond (see
    /// "Commit wait" in the module docs).
    async fn commit_wait(&self, version: Version) {
        let wait = commit_wait(version, self.clock().physical_ms());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The KV section of `/status`.
    pub async fn status(&self) -> KvStatus {
        let backlog = match self.blocking(|store| store.hint_backlog()).await {
            Ok(backlog) => backlog,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the hint backlog");
                Default::default()
            }
        };
        let (hlc, clock_drift_rejections, clock_offset_ms) = {
            let clock = self.clock();
            (
                clock.last().to_string(),
                clock.drift_rejections(),
                clock.offset_ms(),
            )
        };
        let settings = self.settings();
        KvStatus {
            n: self.n,
            r: settings.r,
            w: settings.w,
            policy: settings.policy.name(),
            hints_pending: backlog.values().sum(),
            hint_backlog: backlog
                .into_iter()
                .map(|(node, count)| (node_name(node), count))
                .collect(),
            hlc,
            clock_offset_ms,
            clock_drift_rejections,
            stats: self.stats.snapshot(),
        }
    }
}

/// How long an acknowledged write of `version` waits before its answer when the
/// coordinator's physical clock reads `now_ms`: until the clock is past the version's
/// millisecond, at most [`COMMIT_WAIT_MAX`].
fn commit_wait(version: Version, now_ms: u64) -> Duration {
    let ahead = version
        .ts
        .physical_ms
        .saturating_add(1)
        .saturating_sub(now_ms);
    Duration::from_millis(ahead).min(COMMIT_WAIT_MAX)
}

/// `key` as one URL path segment: everything but RFC 3986's unreserved bytes escaped.
pub(crate) fn path_segment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Writes `versioned` to replica `target` (this node: directly), or a hint for
/// `hint_for` on it.
async fn replica_put(
    node: &Node,
    target: NodeId,
    key: &str,
    versioned: &Versioned,
    hint_for: Option<NodeId>,
    ctx: &Propagation,
) -> Reply<ReplicaAck> {
    if target == node.config.id {
        return match node.kv.store_locally(key, versioned, hint_for).await {
            Ok(ack) => Reply::Ok(ack),
            Err(e) => Reply::Failed(e.to_string()),
        };
    }
    let mut path = format!("/kv-replica/{}", path_segment(key));
    if let Some(replica) = hint_for {
        path.push_str(&format!("?hint_for={replica}"));
    }
    let name = node_name(target);
    let Some(url) = node.config.route.url(&name, &path) else {
        return Reply::Failed(format!("no route to {name}"));
    };
    let request = ctx.apply(
        node.client
            .put(url)
            .timeout(REPLICA_TIMEOUT)
            .json(versioned),
    );
    call(request, &name).await
}

/// Reads replica `target`'s copy of `key` (this node: directly).
async fn replica_get(
    node: &Node,
    target: NodeId,
    key: &str,
    ctx: &Propagation,
) -> Reply<Option<Versioned>> {
    if target == node.config.id {
        return match node.kv.get_locally(key).await {
            Ok(copy) => Reply::Ok(copy),
            Err(e) => Reply::Failed(e.to_string()),
        };
    }
    let name = node_name(target);
    let path = format!("/kv-replica/{}", path_segment(key));
    let Some(url) = node.config.route.url(&name, &path) else {
        return Reply::Failed(format!("no route to {name}"));
    };
    let request = ctx.apply(node.client.get(url).timeout(REPLICA_TIMEOUT));
    match call::<ReplicaCopy>(request, &name).await {
        Reply::Ok(copy) => Reply::Ok(copy.versioned),
        Reply::Refused(why) => Reply::Refused(why),
        Reply::Failed(why) => Reply::Failed(why),
    }
}

async fn call<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    name: &str,
) -> Reply<T> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Reply::Failed(format!("{name}: {e}")),
    };
    let status = response.status();
    if status.is_success() {
        return match response.json::<T>().await {
            Ok(answer) => Reply::Ok(answer),
            Err(e) => Reply::Failed(format!("{name}: unreadable answer: {e}")),
        };
    }
    let body = response.text().await.unwrap_or_default();
    let why = format!("{name} answered {status}: {}", body.trim());
    if status == reqwest::StatusCode::CONFLICT {
        Reply::Refused(why)
    } else {
        Reply::Failed(why)
    }
}

/// Coordinates a client write: answers once W replicas acked (or W is out of reach) and
/// leaves a task behind that follows the rest of the replicas.
pub async fn write(
    node: &Arc<Node>,
    request: WriteRequest,
    ctx: Propagation,
) -> Result<WriteAnswer, KvError> {
    let kind = if request.value.is_some() {
        OpKind::Put
    } else {
        OpKind::Delete
    };
    let answer = coordinate_write(node, request, ctx).await;
    let outcome = match &answer {
        Ok(a) if a.outcome.succeeded => OpOutcome::Ok,
        Ok(_) => OpOutcome::Unavailable,
        Err(KvError::Invalid(_)) => OpOutcome::Invalid,
        Err(KvError::ClockDrift(_)) => OpOutcome::ClockDrift,
        Err(KvError::Storage(_) | KvError::Internal(_)) => OpOutcome::Error,
    };
    node.kv.stats.op(kind, outcome);
    answer
}

async fn coordinate_write(
    node: &Arc<Node>,
    request: WriteRequest,
    ctx: Propagation,
) -> Result<WriteAnswer, KvError> {
    let kv = &node.kv;
    Kv::check_key(&request.key)?;
    let settings = kv.settings();
    let w = kv.check_quorum("w", request.w.unwrap_or(settings.w))?;
    let preference = kv.ring.preference_list(&request.key, kv.ring.len());
    let (replicas, spares) = preference.split_at(kv.n.min(preference.len()));
    let version = {
        let mut clock = kv.clock();
        if let Some(after) = &request.after {
            clock.observe_version(after)?;
        }
        clock.new_version()
    };
    let round =
        WriteRound::new(version, replicas, w, Instant::now())?.with_policy(settings.policy.core());
    let (answer_tx, answer_rx) = oneshot::channel();
    let write = Write {
        node: Arc::clone(node),
        key: request.key.into(),
        versioned: Arc::new(Versioned {
            value: request.value,
            version,
        }),
        ctx: Arc::new(ctx),
        capacity: preference.len(),
    };
    tokio::spawn(write.drive(round, spares.to_vec(), answer_tx));
    let outcome = answer_rx.await.map_err(|_| {
        KvError::Internal("the write ended without deciding (a bug: please report it)".into())
    })?;
    if outcome.succeeded {
        kv.commit_wait(version).await;
    }
    Ok(WriteAnswer {
        version,
        outcome,
        n: replicas.len(),
        w,
    })
}

/// One write in flight: everything its replica tasks need.
struct Write {
    node: Arc<Node>,
    key: Arc<str>,
    versioned: Arc<Versioned>,
    ctx: Arc<Propagation>,
    /// Most attempts the round can make (each node at most once): the channel's size.
    capacity: usize,
}

impl Write {
    /// Sends to every replica, feeds the replies to the round, answers the client once
    /// decided, and follows the remaining replicas to the end.
    async fn drive(
        self,
        mut round: WriteRound,
        spares: Vec<NodeId>,
        answer: oneshot::Sender<WriteOutcome>,
    ) {
        let kv = &self.node.kv;
        let (tx, mut rx) = mpsc::channel(self.capacity.max(1));
        for target in round.targets() {
            self.attempt(&tx, target);
        }
        let mut spares = spares.into_iter();
        let mut answer = Some(answer);
        let mut owed_replication = false;
        // The replication beyond W, from the answer to the last replica: where the KV's
        // replication lag lives.
        let mut replicate: Option<tracing::Span> = None;
        while !round.is_complete() {
            // Every attempt sends exactly once and `tx` lives here, so this only waits.
            let Some((target, reply)) = rx.recv().await else {
                break;
            };
            let now = Instant::now();
            let step = match reply {
                Reply::Ok(ack) => round.on_ack(target.node, ack.previous, now),
                Reply::Refused(why) => {
                    tracing::debug!(kv.key = %self.key, %why, "a replica refused a write");
                    round.on_failure(target.node, now)
                }
                Reply::Failed(why) => {
                    tracing::debug!(kv.key = %self.key, %why, "a replica write failed");
                    let replica = target.stand_in_for.unwrap_or(target.node);
                    match spares.next() {
                        Some(stand_in) => {
                            let step = round.stand_in(replica, stand_in, now);
                            if step.is_ok() {
                                self.attempt(
                                    &tx,
                                    WriteTarget {
                                        node: stand_in,
                                        stand_in_for: Some(replica),
                                    },
                                );
                            }
                            step
                        }
                        None => {
                            self.keep_hint(replica).await;
                            round.on_failure(target.node, now)
                        }
                    }
                }
            };
            match step {
                Ok(WriteStep::Decided(outcome)) => {
                    let summary = round.summary();
                    if outcome.succeeded && !round.is_complete() {
                        kv.stats.replication_pending();
                        owed_replication = true;
                        let span = tracing::info_span!(
                            "kv.replicate",
                            kv.key = &*self.key,
                            kv.version = %round.version(),
                            kv.n = summary.n,
                            kv.w = summary.w,
                            kv.replicas_acked = Empty,
                            kv.replication.lag_ms = Empty,
                            correlation.id = self.ctx.correlation_id(),
                            otel.status_code = Empty,
                            error.type = Empty,
                        );
                        self.ctx.child(&span);
                        replicate = Some(span);
                    }
                    tracing::debug!(
                        kv.key = %self.key,
                        kv.n = summary.n,
                        kv.w = summary.w,
                        kv.replicas_acked = outcome.acked,
                        kv.version = %round.version(),
                        correlation.id = self.ctx.correlation_id(),
                        succeeded = outcome.succeeded,
                        "write answered"
                    );
                    if let Some(answer) = answer.take() {
                        // The client may have gone away; the write goes on regardless.
                        let _ = answer.send(outcome);
                    }
                }
                Ok(WriteStep::LateAck { node, lag }) => kv.stats.late_ack(node, lag),
                Ok(WriteStep::Waiting | WriteStep::AfterDecision) => {}
                Err(e) => {
                    // The round refused a step the shell should never produce; give up on
                    // that node rather than wait for it forever.
                    tracing::warn!(kv.key = %self.key, error = %e, "write round refused a step");
                    let _ = round.on_failure(target.node, now);
                }
            }
        }
        if owed_replication {
            kv.stats.replication_done();
        }
        let summary = round.summary();
        if let Some(span) = replicate {
            span.record("kv.replicas_acked", summary.acked);
            if let Some(lag) = summary.max_replication_lag {
                span.record("kv.replication.lag_ms", lag.as_secs_f64() * 1e3);
            }
            if summary.acked < summary.n {
                span.record("otel.status_code", "error");
                span.record("error.type", "replica_unreachable");
            }
        }
        if let Some(newer) = summary.superseded_by {
            tracing::info!(
                kv.key = %self.key,
                kv.version = %round.version(),
                superseded_by = %newer,
                "a replica already held a newer version"
            );
        }
    }

    fn attempt(&self, tx: &mpsc::Sender<(WriteTarget, Reply<ReplicaAck>)>, target: WriteTarget) {
        let (node, key, versioned, ctx, tx) = (
            Arc::clone(&self.node),
            Arc::clone(&self.key),
            Arc::clone(&self.versioned),
            Arc::clone(&self.ctx),
            tx.clone(),
        );
        tokio::spawn(async move {
            let reply = replica_put(
                &node,
                target.node,
                &key,
                &versioned,
                target.stand_in_for,
                &ctx,
            )
            .await;
            // The channel has room for every attempt of the round.
            let _ = tx.send((target, reply)).await;
        });
    }

    /// No stand-in is left for `replica`: keep the write here as a hint for it (not
    /// counted toward W), for the handoff loop to deliver.
    async fn keep_hint(&self, replica: NodeId) {
        let kv = &self.node.kv;
        if replica == kv.id {
            return;
        }
        match kv
            .store_locally(&self.key, &self.versioned, Some(replica))
            .await
        {
            Ok(_) => kv.stats.hint_stored(),
            Err(e) => tracing::warn!(
                kv.key = %self.key,
                replica = %node_name(replica),
                error = %e,
                "cannot keep a hint"
            ),
        }
    }
}

/// Coordinates a client read: all N replicas are asked, the newest of the first R is the
/// answer; a task stays behind to repair replicas found behind and to notice stale reads.
pub async fn read(
    node: &Arc<Node>,
    key: String,
    r: Option<usize>,
    ctx: Propagation,
) -> Result<ReadAnswer, KvError> {
    let answer = coordinate_read(node, key, r, ctx).await;
    let outcome = match &answer {
        Ok(ReadAnswer {
            outcome: ReadOutcome::Answered { newest, .. },
            ..
        }) => {
            if newest.as_ref().is_some_and(|v| !v.is_tombstone()) {
                OpOutcome::Ok
            } else {
                OpOutcome::NotFound
            }
        }
        Ok(_) => OpOutcome::Unavailable,
        Err(KvError::Invalid(_)) => OpOutcome::Invalid,
        Err(KvError::ClockDrift(_)) => OpOutcome::ClockDrift,
        Err(KvError::Storage(_) | KvError::Internal(_)) => OpOutcome::Error,
    };
    node.kv.stats.op(OpKind::Get, outcome);
    answer
}

async fn coordinate_read(
    node: &Arc<Node>,
    key: String,
    r: Option<usize>,
    ctx: Propagation,
) -> Result<ReadAnswer, KvError> {
    let kv = &node.kv;
    Kv::check_key(&key)?;
    let r = kv.check_quorum("r", r.unwrap_or(kv.settings().r))?;
    let replicas = kv.replicas(&key);
    let round = ReadRound::new(&replicas, r, Instant::now())?;
    let (answer_tx, answer_rx) = oneshot::channel();
    let read = Read {
        node: Arc::clone(node),
        key: key.into(),
        ctx: Arc::new(ctx),
    };
    tokio::spawn(read.drive(round, replicas.clone(), answer_tx));
    let (outcome, latency) = answer_rx.await.map_err(|_| {
        KvError::Internal("the read ended without an answer (a bug: please report it)".into())
    })?;
    Ok(ReadAnswer {
        outcome,
        n: replicas.len(),
        r,
        latency,
    })
}

struct Read {
    node: Arc<Node>,
    key: Arc<str>,
    ctx: Arc<Propagation>,
}

impl Read {
    async fn drive(
        self,
        mut round: ReadRound,
        replicas: Vec<NodeId>,
        answer: oneshot::Sender<(ReadOutcome, Duration)>,
    ) {
        let kv = &self.node.kv;
        let (tx, mut rx) = mpsc::channel(replicas.len().max(1));
        for &target in &replicas {
            let (node, key, ctx, tx) = (
                Arc::clone(&self.node),
                Arc::clone(&self.key),
                Arc::clone(&self.ctx),
                tx.clone(),
            );
            tokio::spawn(async move {
                let reply = replica_get(&node, target, &key, &ctx).await;
                let _ = tx.send((target, reply)).await;
            });
        }
        drop(tx);
        let mut answer = Some(answer);
        while let Some((target, reply)) = rx.recv().await {
            let now = Instant::now();
            let step = match reply {
                Reply::Ok(copy) => {
                    if let Some(copy) = &copy {
                        // Observed for causality; a copy beyond the drift bound is still
                        // data (the HLC counts the rejection).
                        let _ = kv.clock().observe_version(&copy.version);
                    }
                    round.on_response(target, copy, now)
                }
                Reply::Refused(_) | Reply::Failed(_) => round.on_failure(target, now),
            };
            let step = match step {
                Ok(step) => step,
                Err(e) => {
                    tracing::warn!(kv.key = %self.key, error = %e, "read round refused a reply");
                    continue;
                }
            };
            if let Some(outcome) = step.answer {
                let newest = match &outcome {
                    ReadOutcome::Answered { newest, .. } => {
                        newest.as_ref().map(|v| v.version.to_string())
                    }
                    ReadOutcome::Failed { .. } => None,
                };
                tracing::debug!(
                    kv.key = %self.key,
                    kv.n = round.n(),
                    kv.r = round.r(),
                    kv.version = newest.as_deref().unwrap_or(""),
                    correlation.id = self.ctx.correlation_id(),
                    "read answered"
                );
                if let Some(answer) = answer.take() {
                    let latency = round.latency().unwrap_or_default();
                    let _ = answer.send((outcome, latency));
                }
            }
            if let Some(stale) = step.stale {
                kv.stats.stale_read();
                let span = tracing::info_span!(
                    "kv.stale_read",
                    kv.key = &*self.key,
                    kv.stale = true,
                    kv.version = stale.returned.map(|v| v.to_string()).unwrap_or_default(),
                    kv.newer_version = %stale.newer,
                    kv.replica = node_name(stale.replica),
                    correlation.id = self.ctx.correlation_id(),
                );
                self.ctx.child(&span);
                drop(span);
                tracing::warn!(
                    kv.key = %self.key,
                    kv.stale = true,
                    kv.version = %stale.returned.map(|v| v.to_string()).unwrap_or_default(),
                    newer = %stale.newer,
                    replica = %node_name(stale.replica),
                    correlation.id = self.ctx.correlation_id(),
                    "stale read: a replica held a newer version than the answer"
                );
            }
            if !step.repairs.is_empty() {
                kv.stats.read_repairs(step.repairs.len());
                for repair in step.repairs {
                    let (node, key, ctx) = (
                        Arc::clone(&self.node),
                        Arc::clone(&self.key),
                        Arc::clone(&self.ctx),
                    );
                    tokio::spawn(async move {
                        let reply =
                            replica_put(&node, repair.node, &key, &repair.versioned, None, &ctx)
                                .await;
                        if let Reply::Refused(why) | Reply::Failed(why) = reply {
                            tracing::debug!(kv.key = %key, %why, "read repair failed");
                        }
                    });
                }
            }
        }
    }
}

/// Starts the hinted-handoff loop; it ends when the node is dropped.
pub(super) fn spawn_handoff(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HANDOFF_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { return };
            handoff(&node).await;
        }
    });
}

/// One handoff round: for each replica this node holds hints for, try one; if it
/// arrives, send the rest of the batch and forget what was delivered.
pub async fn handoff(node: &Arc<Node>) {
    let kv = &node.kv;
    let backlog = match kv.blocking(|store| store.hint_backlog()).await {
        Ok(backlog) => backlog,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the hint backlog");
            return;
        }
    };
    let ctx = Propagation::default();
    for &target in backlog.keys() {
        let hints = match kv
            .blocking(move |store| store.hints_for(target, HANDOFF_BATCH))
            .await
        {
            Ok(hints) => hints,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read hints");
                continue;
            }
        };
        let Some((first, rest)) = hints.split_first() else {
            continue;
        };
        // A replica still down costs one request per round, not a batch.
        if !matches!(
            replica_put(node, target, &first.key, &first.versioned, None, &ctx).await,
            Reply::Ok(_)
        ) {
            continue;
        }
        let mut delivered: Vec<Hint> = vec![first.clone()];
        let mut sends = tokio::task::JoinSet::new();
        for hint in rest.iter().cloned() {
            let node = Arc::clone(node);
            sends.spawn(async move {
                let reply = replica_put(
                    &node,
                    target,
                    &hint.key,
                    &hint.versioned,
                    None,
                    &Propagation::default(),
                )
                .await;
                (hint, matches!(reply, Reply::Ok(_)))
            });
        }
        while let Some(sent) = sends.join_next().await {
            if let Ok((hint, true)) = sent {
                delivered.push(hint);
            }
        }
        match kv
            .blocking(move |store| store.remove_hints(target, &delivered))
            .await
        {
            Ok(removed) => kv.stats.hints_delivered(removed),
            Err(e) => tracing::warn!(error = %e, "cannot forget delivered hints"),
        }
    }
}
