//! The Raft state machine: a pure, deterministic core. Commands in, responses out.
//!
//! ```text
//!  client ─► node HTTP API ─► openraft leader: stamp now_ms, append Command to the log
//!                                      │ (replicated, committed)
//!                                      ▼
//!            every replica, in log order:  StateMachine::apply(Command) ─► Response
//!                                                                             │
//!  linearizable read: leader read-index ─► wait applied ≥ index ─► StateMachine::query(&Query)
//! ```
//!
//! openraft calls [`StateMachine::apply`] with the same commands in the same order on
//! every replica, so this module must compute the same state everywhere: no I/O, no
//! clocks, no randomness, no iteration over hash maps (every map is a `BTreeMap`, which
//! also makes snapshots byte-identical across replicas, see [`StateMachine::digest`]).
//! The async shell around it (openraft storage, HTTP) is thin and lives elsewhere.
//!
//! # Time
//! The state machine has no clock of its own. The leader stamps each [`Command`] with its
//! wall-clock time (`now_ms`, ms since the Unix epoch) when it proposes it. The state
//! machine's time is `max(now_ms, time of every earlier command)`: a new leader whose clock
//! is behind cannot move time backwards (a lease cannot come back to life, a message cannot
//! become invisible again). The converse is the clock-skew lesson: a leader whose clock
//! runs *ahead* drags everyone's time forward, so leases expire early and messages become
//! visible early. Expiry is evaluated lazily against this time — nothing happens "when a
//! timer fires", only when a later command (or a query given a `now_ms`) looks.
//!
//! # The three stores
//! - **Metadata** ([`Op::Put`], [`Op::Delete`], [`Op::CompareAndSet`], [`Query::Get`],
//!   [`Query::List`]): string keys to string values. Every change bumps one global
//!   revision, returned with the write and stored with the entry.
//! - **Leases with fencing tokens** ([`Op::AcquireLease`], [`Op::RenewLease`],
//!   [`Op::ReleaseLease`], [`Op::FencedPut`]): see the `lease` module. Tokens come from
//!   one counter for the whole state machine, so they strictly increase across all leases.
//!   A fenced write carries the token its writer got; a write with an older token than
//!   the lease's latest is refused — a paused old holder (or an old leader) that wakes up
//!   after its lease moved cannot clobber the new holder's data.
//! - **Queues** ([`Op::CreateQueue`], [`Op::Enqueue`], [`Op::Receive`], [`Op::Ack`],
//!   [`Op::Nack`], [`Op::Redrive`], [`Op::Purge`]): at-least-once queues with visibility
//!   timeouts and a dead-letter queue `NAME.dlq`, like a quorum queue or SQS; see the
//!   `queue` module.
//!
//! # Errors
//! Bad input and refused operations are values ([`Response::Error`] with an [`SmError`]),
//! never panics: the same refusal happens on every replica and the state is unchanged by
//! a refused command (apart from the clock, which every command advances).
//!
//! # Snapshots
//! [`StateMachine`] is `Serialize + Deserialize` and round-trips exactly
//! ([`StateMachine::to_snapshot`], [`StateMachine::from_snapshot`] add a format version).
//! Indexes (the visible FIFO, the in-flight set ordered by deadline, message ids) are not
//! stored: they are rebuilt and checked on restore, so a snapshot is compact and a
//! corrupt one is refused with an error instead of producing an inconsistent state.

mod lease;
mod meta;
mod queue;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use lease::{LeaseError, LeaseGrant, LeaseInfo};
pub use meta::{CasOutcome, DeleteOutcome, Entry, WriteOutcome};
pub use queue::{
    AckOutcome, DeadLetterNotice, DeadLetterRecord, Delivery, DeliveryFailure, EnqueueOutcome,
    LaneStats, LaneTotals, MessageInfo, MessageStatus, NackOutcome, PurgeOutcome, QueueConfig,
    QueueError, QueueStats, QueueTotals, Receipt, ReceiveOutcome, RedriveOutcome,
};

use lease::LeaseTable;
use meta::MetaStore;
use queue::Queues;

/// Limits on input sizes and state growth. Everything the state machine stores is
/// bounded by these (PRODUCT.md §8, "bounded everything"); exceeding one is an error.
pub mod limits {
    /// Longest key, lease name, holder, consumer or message id, in bytes.
    pub const MAX_NAME_BYTES: usize = 256;
    /// Longest queue name, in bytes (it ends up in metric labels; `.dlq` is appended).
    pub const MAX_QUEUE_NAME_BYTES: usize = 128;
    /// Largest metadata value, in bytes.
    pub const MAX_VALUE_BYTES: usize = 64 * 1024;
    /// Largest message body, in bytes (SQS's limit).
    pub const MAX_BODY_BYTES: usize = 256 * 1024;
    /// Longest nack reason, in bytes.
    pub const MAX_REASON_BYTES: usize = 1024;
    /// Longest lease a holder may ask for (24 h).
    pub const MAX_LEASE_TTL_MS: u64 = 24 * 60 * 60 * 1000;
    /// Longest visibility timeout or nack delay (12 h, SQS's limit).
    pub const MAX_VISIBILITY_MS: u64 = 12 * 60 * 60 * 1000;
    /// Largest `max_deliveries` a queue may be configured with.
    pub const MAX_DELIVERIES_LIMIT: u32 = 1000;
    /// Most messages one receive may return.
    pub const MAX_RECEIVE_BATCH: u32 = 1000;
    /// Most body bytes one receive returns (it always returns at least one message).
    pub const MAX_RECEIVE_BYTES: usize = 4 * 1024 * 1024;
    /// Most messages one receive may move to the dead-letter queue.
    pub const MAX_DEAD_LETTERS_PER_RECEIVE: usize = 1000;
    /// Most messages one redrive may move (bounds the work of one log entry).
    pub const MAX_REDRIVE_BATCH: u32 = 10_000;
    /// Most entries one list or peek query may return.
    pub const MAX_QUERY_RESULTS: u32 = 10_000;
    /// Most queues (each with its dead-letter queue).
    pub const MAX_QUEUES: usize = 1024;
    /// Most messages held by one queue and its dead-letter queue together.
    pub const MAX_MESSAGES_PER_QUEUE: usize = 1_000_000;
    /// Most metadata keys.
    pub const MAX_META_KEYS: usize = 1_000_000;
    /// Most distinct lease names.
    pub const MAX_LEASES: usize = 100_000;
    /// How long an acked or purged message id is remembered, so that a client's retried
    /// enqueue is recognised as a duplicate (SQS FIFO's deduplication interval).
    pub const DEDUP_WINDOW_MS: u64 = 5 * 60 * 1000;
}

/// Deliveries after which a message is dead-lettered, unless the queue says otherwise.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// How long a received message stays invisible, unless the queue or receive says otherwise.
pub const DEFAULT_VISIBILITY_TIMEOUT_MS: u64 = 30_000;
/// Version written by [`StateMachine::to_snapshot`]; older or newer versions are refused.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// One entry of the Raft log: an operation and the leader's time when it was proposed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The proposing leader's wall-clock time, ms since the Unix epoch.
    pub now_ms: u64,
    pub op: Op,
}

impl Command {
    pub fn new(now_ms: u64, op: Op) -> Self {
        Self { now_ms, op }
    }
}

/// A state-changing operation. Names of fields are the wire names (snake_case JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Set `key` to `value`.
    Put { key: String, value: String },
    /// Remove `key` (not an error if absent).
    Delete { key: String },
    /// Set `key` to `new` (or remove it if `new` is `None`) only if its current value is
    /// `expected` (`None`: only if absent). A mismatch is not an error: `swapped: false`.
    CompareAndSet {
        key: String,
        expected: Option<String>,
        new: Option<String>,
    },
    /// Take lease `name` for `ttl_ms`; returns a fencing token. Re-acquiring a lease one
    /// already holds extends it and keeps the token (so a client retry is harmless).
    AcquireLease {
        name: String,
        holder: String,
        ttl_ms: u64,
    },
    /// Extend a held, unexpired lease by its original ttl from now.
    RenewLease {
        name: String,
        holder: String,
        token: u64,
    },
    /// Give a lease up early.
    ReleaseLease {
        name: String,
        holder: String,
        token: u64,
    },
    /// Put, accepted only if `token` is the latest token issued for `lease`.
    FencedPut {
        key: String,
        value: String,
        lease: String,
        token: u64,
    },
    /// Create a queue (and its `NAME.dlq`). Idempotent with the same configuration;
    /// `None` means the default ([`DEFAULT_MAX_DELIVERIES`], [`DEFAULT_VISIBILITY_TIMEOUT_MS`]).
    CreateQueue {
        queue: String,
        max_deliveries: Option<u32>,
        visibility_timeout_ms: Option<u64>,
    },
    /// Append a message; creates the queue with defaults if needed. Idempotent by
    /// `message_id` (a retry is reported as `duplicate: true` and changes nothing).
    Enqueue {
        queue: String,
        message_id: String,
        body: String,
    },
    /// Take up to `max` visible messages, oldest first, hiding them for `visibility_ms`
    /// (default: the queue's visibility timeout). `queue` may be `NAME.dlq`; it must
    /// exist ([`QueueError::NotFound`] otherwise, so a typo is not an empty queue).
    Receive {
        queue: String,
        consumer: String,
        max: u32,
        visibility_ms: Option<u64>,
    },
    /// Delete a received message. `queue` is the queue it was received from.
    Ack { queue: String, receipt: Receipt },
    /// Give a received message back, visible again after `delay_ms`. The optional reason
    /// is kept and shows up in the dead-letter record if the message ends up there.
    Nack {
        queue: String,
        receipt: Receipt,
        delay_ms: u64,
        reason: Option<String>,
    },
    /// Move up to `max` visible messages from `queue` (which must be `NAME.dlq`) back to
    /// `NAME`, with their delivery count reset.
    Redrive { queue: String, max: u32 },
    /// Remove every message of `queue` (`NAME` or `NAME.dlq`), in flight or not.
    Purge { queue: String },
}

impl Op {
    /// A short name for logs and metrics (`"enqueue"`, `"fenced_put"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Put { .. } => "put",
            Op::Delete { .. } => "delete",
            Op::CompareAndSet { .. } => "compare_and_set",
            Op::AcquireLease { .. } => "acquire_lease",
            Op::RenewLease { .. } => "renew_lease",
            Op::ReleaseLease { .. } => "release_lease",
            Op::FencedPut { .. } => "fenced_put",
            Op::CreateQueue { .. } => "create_queue",
            Op::Enqueue { .. } => "enqueue",
            Op::Receive { .. } => "receive",
            Op::Ack { .. } => "ack",
            Op::Nack { .. } => "nack",
            Op::Redrive { .. } => "redrive",
            Op::Purge { .. } => "purge",
        }
    }
}

/// The result of applying one [`Command`]. Refusals are [`Response::Error`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// [`Op::Put`] and [`Op::FencedPut`].
    Written(WriteOutcome),
    Deleted(DeleteOutcome),
    Cas(CasOutcome),
    /// [`Op::AcquireLease`] and [`Op::RenewLease`].
    Lease(LeaseGrant),
    /// [`Op::ReleaseLease`]: `was_live` is false if it had already expired or been released.
    LeaseReleased {
        name: String,
        was_live: bool,
    },
    QueueCreated {
        queue: String,
        created: bool,
        config: QueueConfig,
    },
    Enqueued(EnqueueOutcome),
    Received(ReceiveOutcome),
    Acked(AckOutcome),
    Nacked(NackOutcome),
    Redriven(RedriveOutcome),
    Purged(PurgeOutcome),
    Error(SmError),
}

impl Response {
    /// The refusal, if this is one.
    pub fn error(&self) -> Option<&SmError> {
        match self {
            Response::Error(e) => Some(e),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        self.error().is_some()
    }
}

/// Why a command or query was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum SmError {
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("too many {what}: the limit is {limit}")]
    LimitReached { what: String, limit: u64 },
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl SmError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        SmError::InvalidInput {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(what: &str, limit: usize) -> Self {
        SmError::LimitReached {
            what: what.to_owned(),
            limit: u64::try_from(limit).unwrap_or(u64::MAX),
        }
    }
}

/// Checks a free-form identifier (key, lease, holder, consumer, message id): non-empty,
/// at most [`limits::MAX_NAME_BYTES`], no control characters (they would corrupt logs
/// and the text formats of `/metrics`).
pub(crate) fn check_name(field: &str, value: &str) -> Result<(), SmError> {
    if value.is_empty() {
        return Err(SmError::invalid(field, "must not be empty"));
    }
    check_len(field, value, limits::MAX_NAME_BYTES)?;
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(SmError::invalid(
            field,
            format!("contains the control character {c:?}"),
        ));
    }
    Ok(())
}

pub(crate) fn check_len(field: &str, value: &str, max_bytes: usize) -> Result<(), SmError> {
    if value.len() > max_bytes {
        return Err(SmError::invalid(
            field,
            format!("is {} bytes long; the limit is {max_bytes}", value.len()),
        ));
    }
    Ok(())
}

/// A read served by [`StateMachine::query`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// The entry at `key`.
    Get { key: String },
    /// Up to `limit` entries whose key starts with `prefix`, in key order.
    List { prefix: String, limit: u32 },
    /// Lease `name` as seen at `now_ms` (or the state machine's time, if later).
    /// Over HTTP `now_ms` may be left out: the node sets it from its own clock.
    Lease {
        name: String,
        #[serde(default)]
        now_ms: u64,
    },
    /// [`StateMachine::stats`].
    Stats {
        #[serde(default)]
        now_ms: u64,
    },
    /// Up to `max` messages of `queue` (`NAME` or `NAME.dlq`) in FIFO order, without
    /// receiving them: for inspecting a dead-letter queue.
    Peek {
        queue: String,
        max: u32,
        #[serde(default)]
        now_ms: u64,
    },
}

/// The answer to a [`Query`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryResponse {
    Value(Option<Entry>),
    Entries(Vec<(String, Entry)>),
    Lease(Option<LeaseInfo>),
    Stats(SmStats),
    Messages(Vec<MessageInfo>),
    Error(SmError),
}

/// What `/status` and telemetry need, as of [`SmStats::as_of_ms`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmStats {
    /// The time the figures are computed for: `max(now_ms asked, state machine time)`.
    pub as_of_ms: u64,
    pub metadata_keys: u64,
    /// The metadata store's current revision (number of changes so far).
    pub metadata_revision: u64,
    /// Leases held and not expired.
    pub leases_live: u64,
    /// Lease names ever acquired (their latest token is kept for fencing).
    pub leases_known: u64,
    /// The last fencing token issued (0: none yet).
    pub last_fencing_token: u64,
    /// One entry per queue, in name order.
    pub queues: Vec<QueueStats>,
}

/// The replicated state. See the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    /// The latest `now_ms` seen (time never moves backwards).
    clock_ms: u64,
    meta: MetaStore,
    leases: LeaseTable,
    queues: Queues,
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u32,
    state: &'a StateMachine,
}

#[derive(Deserialize)]
struct SnapshotOwned {
    format: u32,
    state: StateMachine,
}

/// A snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("state machine snapshot format {found} is not supported (expected {expected})")]
    Format { found: u32, expected: u32 },
    #[error("state machine snapshot is malformed: {0}")]
    Malformed(#[from] serde_json::Error),
}

impl StateMachine {
    pub fn new() -> Self {
        Self::default()
    }

    /// The state machine's time: the latest `now_ms` of any applied command.
    pub fn clock_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Applies one committed command. Deterministic: the same commands in the same order
    /// give the same responses and the same state on every replica.
    pub fn apply(&mut self, command: Command) -> Response {
        self.clock_ms = self.clock_ms.max(command.now_ms);
        let now = self.clock_ms;
        let result = match command.op {
            Op::Put { key, value } => self.meta.put(key, value).map(Response::Written),
            Op::Delete { key } => self.meta.delete(&key).map(Response::Deleted),
            Op::CompareAndSet { key, expected, new } => self
                .meta
                .compare_and_set(key, expected, new)
                .map(Response::Cas),
            Op::AcquireLease {
                name,
                holder,
                ttl_ms,
            } => self
                .leases
                .acquire(name, holder, ttl_ms, now)
                .map(Response::Lease),
            Op::RenewLease {
                name,
                holder,
                token,
            } => self
                .leases
                .renew(&name, &holder, token, now)
                .map(Response::Lease),
            Op::ReleaseLease {
                name,
                holder,
                token,
            } => self
                .leases
                .release(&name, &holder, token, now)
                .map(|was_live| Response::LeaseReleased { name, was_live }),
            Op::FencedPut {
                key,
                value,
                lease,
                token,
            } => self
                .meta
                .check_put(&key, &value)
                .and_then(|()| self.leases.check_fence(&lease, token))
                .and_then(|()| self.meta.put(key, value))
                .map(Response::Written),
            Op::CreateQueue {
                queue,
                max_deliveries,
                visibility_timeout_ms,
            } => self
                .queues
                .create(queue, max_deliveries, visibility_timeout_ms, now)
                .map(|(queue, created, config)| Response::QueueCreated {
                    queue,
                    created,
                    config,
                }),
            Op::Enqueue {
                queue,
                message_id,
                body,
            } => self
                .queues
                .enqueue(&queue, message_id, body, now)
                .map(Response::Enqueued),
            Op::Receive {
                queue,
                consumer,
                max,
                visibility_ms,
            } => self
                .queues
                .receive(&queue, &consumer, max, visibility_ms, now)
                .map(Response::Received),
            Op::Ack { queue, receipt } => {
                self.queues.ack(&queue, &receipt, now).map(Response::Acked)
            }
            Op::Nack {
                queue,
                receipt,
                delay_ms,
                reason,
            } => self
                .queues
                .nack(&queue, &receipt, delay_ms, reason, now)
                .map(Response::Nacked),
            Op::Redrive { queue, max } => self
                .queues
                .redrive(&queue, max, now)
                .map(Response::Redriven),
            Op::Purge { queue } => self.queues.purge(&queue, now).map(Response::Purged),
        };
        result.unwrap_or_else(Response::Error)
    }

    /// Answers a read without changing anything.
    ///
    /// Linearizability is the caller's job: the shell must call this only on the leader,
    /// after confirming leadership with a read index (openraft `ensure_linearizable`) and
    /// waiting until this state machine has applied at least that index. Called on a
    /// follower, or before the read index is applied, it answers from a possibly stale
    /// state.
    pub fn query(&self, query: &Query) -> QueryResponse {
        match query {
            Query::Get { key } => match check_name("key", key) {
                Ok(()) => QueryResponse::Value(self.meta.get(key).cloned()),
                Err(e) => QueryResponse::Error(e),
            },
            Query::List { prefix, limit } => match check_query_limit(*limit) {
                Ok(limit) => QueryResponse::Entries(self.meta.list(prefix, limit)),
                Err(e) => QueryResponse::Error(e),
            },
            Query::Lease { name, now_ms } => match check_name("lease name", name) {
                Ok(()) => QueryResponse::Lease(self.leases.info(name, self.at(*now_ms))),
                Err(e) => QueryResponse::Error(e),
            },
            Query::Stats { now_ms } => QueryResponse::Stats(self.stats(*now_ms)),
            Query::Peek { queue, max, now_ms } => match check_query_limit(*max)
                .and_then(|max| self.queues.peek(queue, max, self.at(*now_ms)))
            {
                Ok(messages) => QueryResponse::Messages(messages),
                Err(e) => QueryResponse::Error(e),
            },
        }
    }

    /// Figures for `/status` and telemetry, as of `max(now_ms, clock_ms())`: a message
    /// whose visibility timeout has passed counts as visible even though it only moves
    /// on the queue's next receive. Likewise a message that has used up its deliveries
    /// counts in its queue until the next receive moves it to the DLQ.
    pub fn stats(&self, now_ms: u64) -> SmStats {
        let now = self.at(now_ms);
        SmStats {
            as_of_ms: now,
            metadata_keys: self.meta.len(),
            metadata_revision: self.meta.revision(),
            leases_live: self.leases.live(now),
            leases_known: self.leases.known(),
            last_fencing_token: self.leases.last_token(),
            queues: self.queues.stats(now),
        }
    }

    /// The whole state as bytes (JSON with a format version), for openraft snapshots.
    pub fn to_snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        Ok(serde_json::to_vec(&SnapshotRef {
            format: SNAPSHOT_FORMAT,
            state: self,
        })?)
    }

    /// Restores a state written by [`StateMachine::to_snapshot`], checking it for
    /// consistency (a corrupt snapshot is an error, never an inconsistent state).
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let snapshot: SnapshotOwned = serde_json::from_slice(bytes)?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format {
                found: snapshot.format,
                expected: SNAPSHOT_FORMAT,
            });
        }
        Ok(snapshot.state)
    }

    /// A 64-bit hash of the whole state (xxh3 of its canonical serialization). Replicas
    /// that applied the same log prefix have the same digest; checkers compare them.
    pub fn digest(&self) -> u64 {
        let mut hasher = DigestWriter(xxhash_rust::xxh3::Xxh3::new());
        // Serialization cannot fail: every map is keyed by strings and nothing custom
        // returns errors, so a failure here would be a bug; it then still yields a
        // (deterministic) digest of whatever was written.
        let _ = serde_json::to_writer(&mut hasher, self);
        hasher.0.digest()
    }

    fn at(&self, now_ms: u64) -> u64 {
        self.clock_ms.max(now_ms)
    }

    /// Test-only consistency check of every internal index and counter.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        self.queues.check_invariants()?;
        self.leases.check_invariants()
    }
}

fn check_query_limit(limit: u32) -> Result<usize, SmError> {
    if limit == 0 || limit > limits::MAX_QUERY_RESULTS {
        return Err(SmError::invalid(
            "limit",
            format!(
                "must be between 1 and {}, got {limit}",
                limits::MAX_QUERY_RESULTS
            ),
        ));
    }
    Ok(limit as usize)
}

struct DigestWriter(xxhash_rust::xxh3::Xxh3);

impl std::io::Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
