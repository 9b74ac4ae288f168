//! At-least-once queues with visibility timeouts and a dead-letter queue.
//!
//! ```text
//!                 enqueue (idempotent by message id)
//!                    │
//!                    ▼            receive: delivery_count += 1, new receipt
//!   NAME    ┌──► [visible FIFO] ───────────────────────────► [in flight until now+visibility] ──ack──► gone
//!           │        ▲   │                                        │            │
//!           │        │   │ delivery_count ≥ max_deliveries        │ timeout    │ nack(delay)
//!           │        │   │ (checked when it would be             ▼            ▼
//!           │        │   │  delivered again)            visible again   [delayed until now+delay]
//!           │        └───┼────────────────────────────────────────┴────────────┘
//!           │            ▼
//!   NAME.dlq│     [visible FIFO] ── receive/ack/nack as above, never dead-lettered again
//!           └──────── redrive: delivery count reset, back of NAME's FIFO
//! ```
//!
//! A queue `NAME` always comes with its dead-letter queue `NAME.dlq`; together they are a
//! *family* sharing a configuration, message ids and counters. Names ending in `.dlq`
//! cannot be created or enqueued to directly; every message in a DLQ came from its queue.
//!
//! **Messages.** Each message has a client-chosen id, unique within the family while the
//! message lives and for [`limits::DEDUP_WINDOW_MS`] after it is acked or purged: an
//! enqueue with a known id is a duplicate (`duplicate: true`, nothing changes, the body is
//! not compared), so a client may retry an enqueue whose response it never saw.
//!
//! **Receive** returns up to `max` visible messages in FIFO order (by when they entered the
//! queue: a message whose visibility timeout expired, or that was nacked, keeps its place
//! ahead of younger ones). Each delivery gets a [`Receipt`]: the message id plus a
//! *delivery number* unique within the family (strictly increasing). The message stays
//! invisible until `now + visibility`. A receipt is valid until the message is delivered
//! again, nacked, dead-lettered, redriven or purged — in particular an ack after the
//! visibility timeout still succeeds if nobody has received the message since (as in
//! SQS); an ack with an older receipt is refused with [`QueueError::StaleReceipt`], which
//! says what happened to the message. Acking twice with the same receipt is fine (the
//! second reports `duplicate: true`): a client may retry an ack.
//!
//! **Dead-lettering.** A message may be delivered at most `max_deliveries` times. When a
//! receive finds a visible message that has already been delivered that often, it moves
//! it to `NAME.dlq` instead of delivering it, with a [`DeadLetterRecord`] (when, how many
//! deliveries, and the last failure: a nack with its reason, or a visibility timeout and
//! the consumer that let it lapse); the receive reports it in `dead_lettered`. Messages in
//! a DLQ are never dead-lettered again. **Redrive** moves visible DLQ messages to the back
//! of `NAME` with the delivery count reset to 0.
//!
//! **Time** is the state machine's (see `sm`); nothing happens on a timer. Expired
//! visibility is noticed by the next receive (or redrive) of that queue, and by stats and
//! peek, which count such a message as visible.
//!
//! **Cost.** Per queue: messages by FIFO position (`BTreeMap`), a visible set ordered by
//! position, and a pending set of in-flight and delayed messages ordered by deadline. A
//! receive costs O((expired + returned + dead-lettered) · log n), however many messages
//! are in flight; ack and nack cost O(log n). One receive returns at most `max` messages
//! and [`limits::MAX_RECEIVE_BYTES`] of bodies (at least one message if any is visible),
//! and dead-letters at most [`limits::MAX_DEAD_LETTERS_PER_RECEIVE`] messages (the rest go
//! on the next receive), so no single log entry does unbounded work.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    DEFAULT_MAX_DELIVERIES, DEFAULT_VISIBILITY_TIMEOUT_MS, SmError, check_len, check_name, limits,
};

const DLQ_SUFFIX: &str = ".dlq";

/// A queue's settings (shared by its dead-letter queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Deliveries after which a message is dead-lettered instead of delivered again.
    pub max_deliveries: u32,
    /// How long a received message stays invisible unless the receive says otherwise.
    pub visibility_timeout_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            visibility_timeout_ms: DEFAULT_VISIBILITY_TIMEOUT_MS,
        }
    }
}

/// Proof of one delivery, needed to ack or nack it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Receipt {
    pub message_id: String,
    /// Unique within the queue and its DLQ, increasing with every delivery. Not the
    /// message's delivery count (that is [`Delivery::delivery_count`]).
    pub delivery: u64,
}

/// One message handed to a consumer by a receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub message_id: String,
    pub body: String,
    pub receipt: Receipt,
    /// How many times this message has been delivered from this queue, this one included
    /// (1 on the first delivery). Reset by a redrive.
    pub delivery_count: u32,
    /// When it entered this queue (enqueue, dead-lettering or redrive).
    pub enqueued_at_ms: u64,
    /// When it was first enqueued, before any dead-lettering or redrive.
    pub first_enqueued_at_ms: u64,
    /// When it becomes visible again unless acked or nacked.
    pub visible_until_ms: u64,
    /// How many times it has been redriven from the DLQ.
    pub redrive_count: u32,
}

/// The last delivery of a message that did not end in an ack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryFailure {
    /// The consumer neither acked nor nacked before the visibility timeout.
    VisibilityExpired { consumer: String, at_ms: u64 },
    /// The consumer gave it back.
    Nacked {
        consumer: String,
        at_ms: u64,
        reason: Option<String>,
    },
}

impl fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryFailure::VisibilityExpired { consumer, at_ms } => write!(
                f,
                "consumer `{consumer}` let its visibility timeout expire at {at_ms} ms"
            ),
            DeliveryFailure::Nacked {
                consumer,
                at_ms,
                reason,
            } => {
                write!(f, "consumer `{consumer}` nacked it at {at_ms} ms")?;
                match reason {
                    Some(r) => write!(f, ": {r}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Why and when a message was moved to the dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    pub at_ms: u64,
    /// Deliveries it had when dead-lettered (= the queue's `max_deliveries`).
    pub deliveries: u32,
    pub max_deliveries: u32,
    pub last_failure: Option<DeliveryFailure>,
}

impl fmt::Display for DeadLetterRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dead-lettered at {} ms after {} deliveries without an ack (max_deliveries {})",
            self.at_ms, self.deliveries, self.max_deliveries
        )?;
        match &self.last_failure {
            Some(last) => write!(f, "; last: {last}"),
            None => Ok(()),
        }
    }
}

/// A message a receive moved to the dead-letter queue instead of delivering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterNotice {
    pub message_id: String,
    pub record: DeadLetterRecord,
}

/// Where a message is, from the point of view of one queue of its family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Visible,
    InFlight {
        delivery: u64,
        consumer: String,
        until_ms: u64,
    },
    Delayed {
        until_ms: u64,
    },
    /// Moved from `NAME` to `NAME.dlq`.
    DeadLettered {
        at_ms: u64,
    },
    /// Moved from `NAME.dlq` back to `NAME`.
    Redriven {
        at_ms: u64,
    },
    Acked {
        at_ms: u64,
    },
    Purged {
        at_ms: u64,
    },
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageStatus::Visible => write!(f, "visible, waiting for a receive"),
            MessageStatus::InFlight {
                delivery,
                consumer,
                until_ms,
            } => write!(
                f,
                "in flight as delivery {delivery} to `{consumer}` until {until_ms} ms"
            ),
            MessageStatus::Delayed { until_ms } => {
                write!(f, "nacked, invisible until {until_ms} ms")
            }
            MessageStatus::DeadLettered { at_ms } => {
                write!(f, "in the dead-letter queue since {at_ms} ms")
            }
            MessageStatus::Redriven { at_ms } => {
                write!(f, "redriven back to its queue at {at_ms} ms")
            }
            MessageStatus::Acked { at_ms } => write!(f, "acked at {at_ms} ms"),
            MessageStatus::Purged { at_ms } => write!(f, "purged at {at_ms} ms"),
        }
    }
}

/// The result of an enqueue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueOutcome {
    pub queue: String,
    pub message_id: String,
    /// The id was already known: nothing changed.
    pub duplicate: bool,
    /// Where the message is now (for a duplicate: where the first copy is).
    pub status: MessageStatus,
    /// The enqueue created the queue (with the default configuration).
    pub created_queue: bool,
}

/// The result of a receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveOutcome {
    pub queue: String,
    pub messages: Vec<Delivery>,
    /// Messages this receive moved to the DLQ instead of delivering.
    pub dead_lettered: Vec<DeadLetterNotice>,
}

/// The result of an ack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckOutcome {
    pub queue: String,
    pub message_id: String,
    /// The deliveries it took.
    pub delivery_count: u32,
    /// Time from first enqueue to this ack (end-to-end latency).
    pub age_ms: u64,
    /// This receipt had already been acked (a retried ack): nothing changed.
    pub duplicate: bool,
}

/// The result of a nack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NackOutcome {
    pub queue: String,
    pub message_id: String,
    pub delivery_count: u32,
    pub visible_at_ms: u64,
}

/// The result of a redrive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedriveOutcome {
    /// The dead-letter queue messages were moved from.
    pub from: String,
    /// The queue they were moved to.
    pub to: String,
    /// Ids moved, in their new FIFO order.
    pub message_ids: Vec<String>,
    /// Messages left in the DLQ (in flight ones, or beyond `max`).
    pub remaining: u64,
}

/// The result of a purge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeOutcome {
    pub queue: String,
    pub purged: u64,
}

/// A message as shown by a peek.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageInfo {
    pub message_id: String,
    pub body: String,
    pub status: MessageStatus,
    pub delivery_count: u32,
    pub enqueued_at_ms: u64,
    pub first_enqueued_at_ms: u64,
    pub redrive_count: u32,
    pub last_failure: Option<DeliveryFailure>,
    /// Set while in the DLQ (and kept, as history, after a redrive).
    pub dead_letter: Option<DeadLetterRecord>,
}

/// Counts for one queue or DLQ at one time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneStats {
    /// All messages held: visible + in flight + delayed.
    pub depth: u64,
    /// Receivable now (the backlog).
    pub visible: u64,
    pub in_flight: u64,
    /// Nacked with a delay not yet over.
    pub delayed: u64,
    /// Age of the oldest message held (since it entered this queue): consumer lag.
    pub oldest_age_ms: Option<u64>,
}

/// Running totals of one queue or DLQ's deliveries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneTotals {
    pub delivered: u64,
    /// Deliveries of a message already delivered before (delivery count > 1).
    pub redelivered: u64,
    pub acked: u64,
    pub nacked: u64,
    /// Deliveries whose visibility timeout expired without an ack or nack.
    pub visibility_expired: u64,
}

/// Running totals of a queue family since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTotals {
    /// Messages accepted (duplicates excluded).
    pub enqueued: u64,
    /// Enqueues refused as duplicates of a known id.
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub redriven: u64,
    /// Messages removed by purges (either queue).
    pub purged: u64,
    pub main: LaneTotals,
    pub dlq: LaneTotals,
}

/// Stats of one queue and its DLQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    pub queue: String,
    pub dlq: String,
    pub config: QueueConfig,
    pub created_at_ms: u64,
    pub main: LaneStats,
    pub dead_letter: LaneStats,
    pub totals: QueueTotals,
}

/// Why a queue operation was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum QueueError {
    #[error("queue `{queue}` does not exist (create it, or enqueue to it, first)")]
    NotFound { queue: String },
    #[error(
        "queue `{queue}` already exists with max_deliveries {} and visibility_timeout_ms {}, not {} and {}",
        existing.max_deliveries, existing.visibility_timeout_ms,
        requested.max_deliveries, requested.visibility_timeout_ms
    )]
    ConfigConflict {
        queue: String,
        existing: QueueConfig,
        requested: QueueConfig,
    },
    #[error("`{queue}` is the dead-letter queue of `{parent}`: it cannot be {action} directly")]
    IsDeadLetterQueue {
        queue: String,
        parent: String,
        action: String,
    },
    #[error("redrive moves messages out of a dead-letter queue: did you mean `{queue}.dlq`?")]
    NotDeadLetterQueue { queue: String },
    #[error("queue `{queue}` is full: it holds {limit} messages (with its DLQ)")]
    Full { queue: String, limit: u64 },
    #[error("no message `{message_id}` in queue `{queue}` (never enqueued, or gone for a while)")]
    UnknownMessage { queue: String, message_id: String },
    #[error(
        "receipt for delivery {delivery} of message `{message_id}` in `{queue}` is stale: the message is now {status}"
    )]
    StaleReceipt {
        queue: String,
        message_id: String,
        delivery: u64,
        status: MessageStatus,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LaneKind {
    Main,
    Dlq,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MessageState {
    Visible,
    InFlight {
        delivery: u64,
        consumer: String,
        until_ms: u64,
    },
    Delayed {
        until_ms: u64,
    },
}

impl MessageState {
    /// The deadline at which a pending message becomes visible again.
    fn due_ms(&self) -> Option<u64> {
        match self {
            MessageState::Visible => None,
            MessageState::InFlight { until_ms, .. } | MessageState::Delayed { until_ms } => {
                Some(*until_ms)
            }
        }
    }

    /// The status as of `now`: a pending message past its deadline is visible.
    fn status(&self, now: u64) -> MessageStatus {
        match self {
            MessageState::Visible => MessageStatus::Visible,
            s if s.due_ms().is_some_and(|due| due <= now) => MessageStatus::Visible,
            MessageState::InFlight {
                delivery,
                consumer,
                until_ms,
            } => MessageStatus::InFlight {
                delivery: *delivery,
                consumer: consumer.clone(),
                until_ms: *until_ms,
            },
            MessageState::Delayed { until_ms } => MessageStatus::Delayed {
                until_ms: *until_ms,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StoredMessage {
    id: String,
    body: String,
    /// FIFO position, unique within the family; a new one on every lane change.
    seq: u64,
    enqueued_at_ms: u64,
    first_enqueued_at_ms: u64,
    /// Deliveries from the current lane.
    delivery_count: u32,
    state: MessageState,
    last_failure: Option<DeliveryFailure>,
    dead_letter: Option<DeadLetterRecord>,
    redrive_count: u32,
    redriven_at_ms: Option<u64>,
}

impl StoredMessage {
    fn info(&self, now: u64) -> MessageInfo {
        MessageInfo {
            message_id: self.id.clone(),
            body: self.body.clone(),
            status: self.state.status(now),
            delivery_count: self.delivery_count,
            enqueued_at_ms: self.enqueued_at_ms,
            first_enqueued_at_ms: self.first_enqueued_at_ms,
            redrive_count: self.redrive_count,
            last_failure: self.last_failure.clone(),
            dead_letter: self.dead_letter.clone(),
        }
    }
}

/// Indexes over one lane's messages; derived, never serialized.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LaneIndex {
    /// Positions of visible messages: the FIFO.
    visible: BTreeSet<u64>,
    /// `(deadline, position)` of in-flight and delayed messages.
    pending: BTreeSet<(u64, u64)>,
    in_flight: usize,
    delayed: usize,
}

impl LaneIndex {
    fn add(&mut self, seq: u64, state: &MessageState) {
        match state {
            MessageState::Visible => {
                self.visible.insert(seq);
            }
            MessageState::InFlight { until_ms, .. } => {
                self.pending.insert((*until_ms, seq));
                self.in_flight += 1;
            }
            MessageState::Delayed { until_ms } => {
                self.pending.insert((*until_ms, seq));
                self.delayed += 1;
            }
        }
    }

    fn remove(&mut self, seq: u64, state: &MessageState) {
        match state {
            MessageState::Visible => {
                self.visible.remove(&seq);
            }
            MessageState::InFlight { until_ms, .. } => {
                self.pending.remove(&(*until_ms, seq));
                self.in_flight -= 1;
            }
            MessageState::Delayed { until_ms } => {
                self.pending.remove(&(*until_ms, seq));
                self.delayed -= 1;
            }
        }
    }
}

/// One queue (`NAME` or `NAME.dlq`): messages by FIFO position plus indexes.
/// Serialized as the list of its messages; the indexes are rebuilt on load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Lane {
    messages: BTreeMap<u64, StoredMessage>,
    index: LaneIndex,
}

impl Lane {
    fn insert(&mut self, message: StoredMessage) {
        self.index.add(message.seq, &message.state);
        self.messages.insert(message.seq, message);
    }

    fn remove(&mut self, seq: u64) -> Option<StoredMessage> {
        let message = self.messages.remove(&seq)?;
        self.index.remove(seq, &message.state);
        Some(message)
    }

    fn set_state(&mut self, seq: u64, state: MessageState) {
        if let Some(message) = self.messages.get_mut(&seq) {
            self.index.remove(seq, &message.state);
            self.index.add(seq, &state);
            message.state = state;
        }
    }

    /// Makes every pending message whose deadline is `<= now` visible again; returns how
    /// many of them were in flight (visibility timeouts).
    fn promote_due(&mut self, now: u64) -> u64 {
        let mut expired = 0;
        while let Some(&(due, seq)) = self.index.pending.first() {
            if due > now {
                break;
            }
            let Some(message) = self.messages.get_mut(&seq) else {
                // Unreachable while the index is consistent; drop the dangling entry.
                self.index.pending.remove(&(due, seq));
                continue;
            };
            if let MessageState::InFlight { consumer, .. } = &message.state {
                message.last_failure = Some(DeliveryFailure::VisibilityExpired {
                    consumer: consumer.clone(),
                    at_ms: due,
                });
                expired += 1;
            }
            self.index.remove(seq, &message.state);
            message.state = MessageState::Visible;
            self.index.visible.insert(seq);
        }
        expired
    }

    fn stats(&self, now: u64) -> LaneStats {
        let mut visible = self.index.visible.len();
        let mut in_flight = self.index.in_flight;
        let mut delayed = self.index.delayed;
        for (_, seq) in self.index.pending.range(..=(now, u64::MAX)) {
            match self.messages.get(seq).map(|m| &m.state) {
                Some(MessageState::InFlight { .. }) => in_flight -= 1,
                Some(MessageState::Delayed { .. }) => delayed -= 1,
                _ => continue,
            }
            visible += 1;
        }
        LaneStats {
            depth: self.messages.len() as u64,
            visible: visible as u64,
            in_flight: in_flight as u64,
            delayed: delayed as u64,
            oldest_age_ms: self
                .messages
                .values()
                .next()
                .map(|m| now.saturating_sub(m.enqueued_at_ms)),
        }
    }
}

impl Serialize for Lane {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.messages.values())
    }
}

impl<'de> Deserialize<'de> for Lane {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let messages = Vec::<StoredMessage>::deserialize(deserializer)?;
        let mut lane = Lane::default();
        for message in messages {
            if lane.messages.contains_key(&message.seq) {
                return Err(serde::de::Error::custom(format!(
                    "two messages at queue position {}",
                    message.seq
                )));
            }
            lane.insert(message);
        }
        Ok(lane)
    }
}

/// What happened to a message that left the family, remembered for deduplication and to
/// answer a retried ack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Tombstone {
    at_ms: u64,
    fate: Fate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Fate {
    Acked {
        delivery: u64,
        delivery_count: u32,
        age_ms: u64,
    },
    Purged,
}

impl Tombstone {
    fn status(&self) -> MessageStatus {
        match self.fate {
            Fate::Acked { .. } => MessageStatus::Acked { at_ms: self.at_ms },
            Fate::Purged => MessageStatus::Purged { at_ms: self.at_ms },
        }
    }
}

/// What a receipt refers to.
enum ReceiptMatch<'a> {
    /// The message at this position is in flight under this receipt.
    InFlight(u64),
    /// This receipt was acked already (the ack is being retried).
    AlreadyAcked(&'a Tombstone),
}

/// A queue and its dead-letter queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FamilySnapshot")]
struct QueueFamily {
    name: String,
    config: QueueConfig,
    created_at_ms: u64,
    main: Lane,
    dlq: Lane,
    tombstones: BTreeMap<String, Tombstone>,
    next_seq: u64,
    next_delivery: u64,
    totals: QueueTotals,
    /// Live message id → (lane, position). Derived.
    #[serde(skip)]
    ids: BTreeMap<String, (LaneKind, u64)>,
    /// `(forget at, id)` of tombstones. Derived.
    #[serde(skip)]
    tombstone_expiry: BTreeSet<(u64, String)>,
}

/// The serialized form of a [`QueueFamily`]: everything but the derived indexes.
#[derive(Deserialize)]
struct FamilySnapshot {
    name: String,
    config: QueueConfig,
    created_at_ms: u64,
    main: Lane,
    dlq: Lane,
    tombstones: BTreeMap<String, Tombstone>,
    next_seq: u64,
    next_delivery: u64,
    totals: QueueTotals,
}

impl TryFrom<FamilySnapshot> for QueueFamily {
    type Error = String;

    fn try_from(s: FamilySnapshot) -> Result<Self, String> {
        let mut family = QueueFamily {
            name: s.name,
            config: s.config,
            created_at_ms: s.created_at_ms,
            main: s.main,
            dlq: s.dlq,
            tombstones: s.tombstones,
            next_seq: s.next_seq,
            next_delivery: s.next_delivery,
            totals: s.totals,
            ids: BTreeMap::new(),
            tombstone_expiry: BTreeSet::new(),
        };
        for (kind, lane) in [(LaneKind::Main, &family.main), (LaneKind::Dlq, &family.dlq)] {
            for (&seq, m) in &lane.messages {
                if seq >= family.next_seq {
                    return Err(format!(
                        "queue `{}`: message `{}` at position {seq} beyond next position {}",
                        family.name, m.id, family.next_seq
                    ));
                }
                if let MessageState::InFlight { delivery, .. } = m.state
                    && delivery >= family.next_delivery
                {
                    return Err(format!(
                        "queue `{}`: message `{}` delivery {delivery} beyond next delivery {}",
                        family.name, m.id, family.next_delivery
                    ));
                }
                if family.ids.insert(m.id.clone(), (kind, seq)).is_some()
                    || family.tombstones.contains_key(&m.id)
                {
                    return Err(format!(
                        "queue `{}`: message id `{}` appears twice",
                        family.name, m.id
                    ));
                }
            }
        }
        for (id, t) in &family.tombstones {
            family
                .tombstone_expiry
                .insert((forget_at(t.at_ms), id.clone()));
        }
        Ok(family)
    }
}

fn forget_at(at_ms: u64) -> u64 {
    at_ms.saturating_add(limits::DEDUP_WINDOW_MS)
}

impl QueueFamily {
    fn new(name: String, config: QueueConfig, now: u64) -> Self {
        Self {
            name,
            config,
            created_at_ms: now,
            main: Lane::default(),
            dlq: Lane::default(),
            tombstones: BTreeMap::new(),
            next_seq: 0,
            next_delivery: 1,
            totals: QueueTotals::default(),
            ids: BTreeMap::new(),
            tombstone_expiry: BTreeSet::new(),
        }
    }

    fn lane(&self, kind: LaneKind) -> &Lane {
        match kind {
            LaneKind::Main => &self.main,
            LaneKind::Dlq => &self.dlq,
        }
    }

    fn lane_mut(&mut self, kind: LaneKind) -> &mut Lane {
        match kind {
            LaneKind::Main => &mut self.main,
            LaneKind::Dlq => &mut self.dlq,
        }
    }

    fn lane_totals_mut(&mut self, kind: LaneKind) -> &mut LaneTotals {
        match kind {
            LaneKind::Main => &mut self.totals.main,
            LaneKind::Dlq => &mut self.totals.dlq,
        }
    }

    fn lane_name(&self, kind: LaneKind) -> String {
        match kind {
            LaneKind::Main => self.name.clone(),
            LaneKind::Dlq => format!("{}{DLQ_SUFFIX}", self.name),
        }
    }

    fn message_count(&self) -> usize {
        self.main.messages.len() + self.dlq.messages.len()
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Forgets tombstones older than the deduplication window.
    fn forget_tombstones(&mut self, now: u64) {
        while let Some((at, _)) = self.tombstone_expiry.first() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.tombstone_expiry.pop_first() {
                self.tombstones.remove(&id);
            }
        }
    }

    fn bury(&mut self, id: String, now: u64, fate: Fate) {
        self.tombstone_expiry.insert((forget_at(now), id.clone()));
        self.tombstones.insert(id, Tombstone { at_ms: now, fate });
    }

    /// Where message `id` is, seen from lane `from`.
    fn status(&self, id: &str, from: LaneKind, now: u64) -> Option<MessageStatus> {
        if let Some(&(kind, seq)) = self.ids.get(id) {
            let m = self.lane(kind).messages.get(&seq)?;
            return Some(match (from, kind) {
                (LaneKind::Main, LaneKind::Dlq) => MessageStatus::DeadLettered {
                    at_ms: m.dead_letter.as_ref().map_or(m.enqueued_at_ms, |d| d.at_ms),
                },
                (LaneKind::Dlq, LaneKind::Main) if m.redriven_at_ms.is_some() => {
                    MessageStatus::Redriven {
                        at_ms: m.redriven_at_ms.unwrap_or(m.enqueued_at_ms),
                    }
                }
                _ => m.state.status(now),
            });
        }
        self.tombstones.get(id).map(Tombstone::status)
    }

    fn enqueue(&mut self, id: String, body: String, now: u64) -> Result<EnqueueOutcome, SmError> {
        self.forget_tombstones(now);
        if let Some(status) = self.status(&id, LaneKind::Main, now) {
            self.totals.duplicates += 1;
            return Ok(EnqueueOutcome {
                queue: self.name.clone(),
                message_id: id,
                duplicate: true,
                status,
                created_queue: false,
            });
        }
        if self.message_count() >= limits::MAX_MESSAGES_PER_QUEUE {
            return Err(QueueError::Full {
                queue: self.name.clone(),
                limit: limits::MAX_MESSAGES_PER_QUEUE as u64,
            }
            .into());
        }
        let seq = self.next_seq();
        self.ids.insert(id.clone(), (LaneKind::Main, seq));
        self.main.insert(StoredMessage {
            id: id.clone(),
            body,
            seq,
            enqueued_at_ms: now,
            first_enqueued_at_ms: now,
            delivery_count: 0,
            state: MessageState::Visible,
            last_failure: None,
            dead_letter: None,
            redrive_count: 0,
            redriven_at_ms: None,
        });
        self.totals.enqueued += 1;
        Ok(EnqueueOutcome {
            queue: self.name.clone(),
            message_id: id,
            duplicate: false,
            status: MessageStatus::Visible,
            created_queue: false,
        })
    }

    /// Moves the main-lane message at `seq` to the DLQ.
    fn dead_letter(&mut self, seq: u64, now: u64) -> Option<DeadLetterNotice> {
        let mut m = self.main.remove(seq)?;
        let record = DeadLetterRecord {
            at_ms: now,
            deliveries: m.delivery_count,
            max_deliveries: self.config.max_deliveries,
            last_failure: m.last_failure.clone(),
        };
        let new_seq = self.next_seq();
        m.seq = new_seq;
        m.enqueued_at_ms = now;
        m.delivery_count = 0;
        m.state = MessageState::Visible;
        m.dead_letter = Some(record.clone());
        m.last_failure = None;
        self.ids.insert(m.id.clone(), (LaneKind::Dlq, new_seq));
        let message_id = m.id.clone();
        self.dlq.insert(m);
        self.totals.dead_lettered += 1;
        Some(DeadLetterNotice { message_id, record })
    }

    fn receive(
        &mut self,
        kind: LaneKind,
        consumer: &str,
        max: usize,
        visibility_ms: u64,
        now: u64,
    ) -> ReceiveOutcome {
        self.forget_tombstones(now);
        let expired = self.lane_mut(kind).promote_due(now);
        self.lane_totals_mut(kind).visibility_expired += expired;
        let until_ms = now.saturating_add(visibility_ms);
        let mut messages = Vec::new();
        let mut dead_lettered = Vec::new();
        let mut bytes = 0usize;
        while messages.len() < max && dead_lettered.len() < limits::MAX_DEAD_LETTERS_PER_RECEIVE {
            let lane = self.lane(kind);
            let Some(&seq) = lane.index.visible.first() else {
                break;
            };
            let Some((delivery_count, size)) = lane
                .messages
                .get(&seq)
                .map(|m| (m.delivery_count, m.body.len()))
            else {
                // Unreachable while the index is consistent; drop the dangling entry.
                self.lane_mut(kind).index.visible.remove(&seq);
                continue;
            };
            if kind == LaneKind::Main && delivery_count >= self.config.max_deliveries {
                dead_lettered.extend(self.dead_letter(seq, now));
                continue;
            }
            // Bound the response; the first message always goes (it fits MAX_BODY_BYTES).
            bytes = bytes.saturating_add(size);
            if !messages.is_empty() && bytes > limits::MAX_RECEIVE_BYTES {
                break;
            }
            let delivery = self.next_delivery;
            self.next_delivery += 1;
            let lane = self.lane_mut(kind);
            lane.set_state(
                seq,
                MessageState::InFlight {
                    delivery,
                    consumer: consumer.to_owned(),
                    until_ms,
                },
            );
            let Some(m) = lane.messages.get_mut(&seq) else {
                continue;
            };
            m.delivery_count = m.delivery_count.saturating_add(1);
            let delivered = Delivery {
                message_id: m.id.clone(),
                body: m.body.clone(),
                receipt: Receipt {
                    message_id: m.id.clone(),
                    delivery,
                },
                delivery_count: m.delivery_count,
                enqueued_at_ms: m.enqueued_at_ms,
                first_enqueued_at_ms: m.first_enqueued_at_ms,
                visible_until_ms: until_ms,
                redrive_count: m.redrive_count,
            };
            let totals = self.lane_totals_mut(kind);
            totals.delivered += 1;
            if delivered.delivery_count > 1 {
                totals.redelivered += 1;
            }
            messages.push(delivered);
        }
        ReceiveOutcome {
            queue: self.lane_name(kind),
            messages,
            dead_lettered,
        }
    }

    /// Finds the in-flight message `receipt` names in lane `kind`, or explains why not.
    fn find_receipt(
        &self,
        kind: LaneKind,
        receipt: &Receipt,
        now: u64,
    ) -> Result<ReceiptMatch<'_>, QueueError> {
        let stale = |status| QueueError::StaleReceipt {
            queue: self.lane_name(kind),
            message_id: receipt.message_id.clone(),
            delivery: receipt.delivery,
            status,
        };
        if let Some(&(lane, seq)) = self.ids.get(&receipt.message_id)
            && lane == kind
            && let Some(m) = self.lane(kind).messages.get(&seq)
            && let MessageState::InFlight { delivery, .. } = m.state
            && delivery == receipt.delivery
        {
            return Ok(ReceiptMatch::InFlight(seq));
        }
        if let Some(t) = self.tombstones.get(&receipt.message_id)
            && let Fate::Acked { delivery, .. } = t.fate
            && delivery == receipt.delivery
        {
            return Ok(ReceiptMatch::AlreadyAcked(t));
        }
        match self.status(&receipt.message_id, kind, now) {
            Some(status) => Err(stale(status)),
            None => Err(QueueError::UnknownMessage {
                queue: self.lane_name(kind),
                message_id: receipt.message_id.clone(),
            }),
        }
    }

    fn ack(&mut self, kind: LaneKind, receipt: &Receipt, now: u64) -> Result<AckOutcome, SmError> {
        self.forget_tombstones(now);
        let seq = match self.find_receipt(kind, receipt, now)? {
            ReceiptMatch::InFlight(seq) => seq,
            ReceiptMatch::AlreadyAcked(tombstone) => {
                let (delivery_count, age_ms) = match tombstone.fate {
                    Fate::Acked {
                        delivery_count,
                        age_ms,
                        ..
                    } => (delivery_count, age_ms),
                    Fate::Purged => (0, 0),
                };
                return Ok(AckOutcome {
                    queue: self.lane_name(kind),
                    message_id: receipt.message_id.clone(),
                    delivery_count,
                    age_ms,
                    duplicate: true,
                });
            }
        };
        let Some(m) = self.lane_mut(kind).remove(seq) else {
            return Err(QueueError::UnknownMessage {
                queue: self.lane_name(kind),
                message_id: receipt.message_id.clone(),
            }
            .into());
        };
        self.ids.remove(&m.id);
        let age_ms = now.saturating_sub(m.first_enqueued_at_ms);
        self.bury(
            m.id.clone(),
            now,
            Fate::Acked {
                delivery: receipt.delivery,
                delivery_count: m.delivery_count,
                age_ms,
            },
        );
        self.lane_totals_mut(kind).acked += 1;
        Ok(AckOutcome {
            queue: self.lane_name(kind),
            message_id: m.id,
            delivery_count: m.delivery_count,
            age_ms,
            duplicate: false,
        })
    }

    fn nack(
        &mut self,
        kind: LaneKind,
        receipt: &Receipt,
        delay_ms: u64,
        reason: Option<String>,
        now: u64,
    ) -> Result<NackOutcome, SmError> {
        self.forget_tombstones(now);
        let seq = match self.find_receipt(kind, receipt, now)? {
            ReceiptMatch::InFlight(seq) => seq,
            ReceiptMatch::AlreadyAcked(tombstone) => {
                return Err(QueueError::StaleReceipt {
                    queue: self.lane_name(kind),
                    message_id: receipt.message_id.clone(),
                    delivery: receipt.delivery,
                    status: tombstone.status(),
                }
                .into());
            }
        };
        let visible_at_ms = now.saturating_add(delay_ms);
        let lane = self.lane_mut(kind);
        let consumer = match lane.messages.get(&seq).map(|m| &m.state) {
            Some(MessageState::InFlight { consumer, .. }) => consumer.clone(),
            _ => String::new(),
        };
        let state = if delay_ms == 0 {
            MessageState::Visible
        } else {
            MessageState::Delayed {
                until_ms: visible_at_ms,
            }
        };
        lane.set_state(seq, state);
        let Some(m) = lane.messages.get_mut(&seq) else {
            return Err(QueueError::UnknownMessage {
                queue: self.lane_name(kind),
                message_id: receipt.message_id.clone(),
            }
            .into());
        };
        m.last_failure = Some(DeliveryFailure::Nacked {
            consumer,
            at_ms: now,
            reason,
        });
        let delivery_count = m.delivery_count;
        self.lane_totals_mut(kind).nacked += 1;
        Ok(NackOutcome {
            queue: self.lane_name(kind),
            message_id: receipt.message_id.clone(),
            delivery_count,
            visible_at_ms,
        })
    }

    fn redrive(&mut self, max: usize, now: u64) -> RedriveOutcome {
        self.forget_tombstones(now);
        let expired = self.dlq.promote_due(now);
        self.totals.dlq.visibility_expired += expired;
        let mut message_ids = Vec::new();
        while message_ids.len() < max {
            let Some(&seq) = self.dlq.index.visible.first() else {
                break;
            };
            let Some(mut m) = self.dlq.remove(seq) else {
                self.dlq.index.visible.remove(&seq);
                continue;
            };
            let new_seq = self.next_seq();
            m.seq = new_seq;
            m.enqueued_at_ms = now;
            m.delivery_count = 0;
            m.state = MessageState::Visible;
            m.last_failure = None;
            m.redrive_count = m.redrive_count.saturating_add(1);
            m.redriven_at_ms = Some(now);
            self.ids.insert(m.id.clone(), (LaneKind::Main, new_seq));
            message_ids.push(m.id.clone());
            self.main.insert(m);
            self.totals.redriven += 1;
        }
        RedriveOutcome {
            from: self.lane_name(LaneKind::Dlq),
            to: self.lane_name(LaneKind::Main),
            message_ids,
            remaining: self.dlq.messages.len() as u64,
        }
    }

    fn purge(&mut self, kind: LaneKind, now: u64) -> PurgeOutcome {
        self.forget_tombstones(now);
        let lane = std::mem::take(self.lane_mut(kind));
        let purged = lane.messages.len() as u64;
        for m in lane.messages.into_values() {
            self.ids.remove(&m.id);
            self.bury(m.id, now, Fate::Purged);
        }
        self.totals.purged += purged;
        PurgeOutcome {
            queue: self.lane_name(kind),
            purged,
        }
    }

    fn stats(&self, now: u64) -> QueueStats {
        QueueStats {
            queue: self.lane_name(LaneKind::Main),
            dlq: self.lane_name(LaneKind::Dlq),
            config: self.config,
            created_at_ms: self.created_at_ms,
            main: self.main.stats(now),
            dead_letter: self.dlq.stats(now),
            totals: self.totals.clone(),
        }
    }

    #[cfg(test)]
    fn check_invariants(&self) -> Result<(), String> {
        let name = &self.name;
        let mut ids = BTreeMap::new();
        for (kind, lane) in [(LaneKind::Main, &self.main), (LaneKind::Dlq, &self.dlq)] {
            let mut index = LaneIndex::default();
            for (&seq, m) in &lane.messages {
                if seq != m.seq || seq >= self.next_seq {
                    return Err(format!("{name}: message {} at wrong position {seq}", m.id));
                }
                if ids.insert(m.id.clone(), (kind, seq)).is_some() {
                    return Err(format!("{name}: id {} twice", m.id));
                }
                if self.tombstones.contains_key(&m.id) {
                    return Err(format!("{name}: id {} both live and buried", m.id));
                }
                if kind == LaneKind::Main && m.delivery_count > self.config.max_deliveries {
                    return Err(format!(
                        "{name}: {} delivered {} times, max {}",
                        m.id, m.delivery_count, self.config.max_deliveries
                    ));
                }
                if kind == LaneKind::Dlq && m.dead_letter.is_none() {
                    return Err(format!("{name}: {} in DLQ without a record", m.id));
                }
                index.add(seq, &m.state);
            }
            if index != lane.index {
                return Err(format!("{name}: {kind:?} index out of date"));
            }
        }
        if ids != self.ids {
            return Err(format!("{name}: id index out of date"));
        }
        let expiry: BTreeSet<_> = self
            .tombstones
            .iter()
            .map(|(id, t)| (forget_at(t.at_ms), id.clone()))
            .collect();
        if expiry != self.tombstone_expiry {
            return Err(format!("{name}: tombstone index out of date"));
        }
        let t = &self.totals;
        let live = self.message_count() as u64;
        if t.enqueued != live + t.main.acked + t.dlq.acked + t.purged {
            return Err(format!(
                "{name}: conservation broken: enqueued {} != live {live} + acked {} + dlq acked {} + purged {}",
                t.enqueued, t.main.acked, t.dlq.acked, t.purged
            ));
        }
        Ok(())
    }
}

/// All queue families, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Queues {
    families: BTreeMap<String, QueueFamily>,
}

/// Checks a queue name's characters and length (the name ends up in metric labels).
fn check_queue_name(queue: &str) -> Result<(), SmError> {
    if queue.is_empty() {
        return Err(SmError::invalid("queue name", "must not be empty"));
    }
    check_len("queue name", queue, limits::MAX_QUEUE_NAME_BYTES)?;
    if let Some(c) = queue
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(SmError::invalid(
            "queue name",
            format!("`{queue}` contains {c:?}; use ASCII letters, digits and - _ . :"),
        ));
    }
    Ok(())
}

/// Splits `NAME.dlq` into `(NAME, Dlq)` and `NAME` into `(NAME, Main)`.
fn resolve(queue: &str) -> Result<(&str, LaneKind), SmError> {
    check_queue_name(queue)?;
    match queue.strip_suffix(DLQ_SUFFIX) {
        Some("") => Err(SmError::invalid(
            "queue name",
            "`.dlq` alone is not a queue name",
        )),
        Some(parent) => Ok((parent, LaneKind::Dlq)),
        None => Ok((queue, LaneKind::Main)),
    }
}

fn check_visibility(field: &str, ms: u64, min: u64) -> Result<(), SmError> {
    if ms < min || ms > limits::MAX_VISIBILITY_MS {
        return Err(SmError::invalid(
            field,
            format!(
                "must be between {min} and {} ms (12 h), got {ms}",
                limits::MAX_VISIBILITY_MS
            ),
        ));
    }
    Ok(())
}

fn check_batch(field: &str, n: u32, limit: u32) -> Result<usize, SmError> {
    if n == 0 || n > limit {
        return Err(SmError::invalid(
            field,
            format!("must be between 1 and {limit}, got {n}"),
        ));
    }
    Ok(n as usize)
}

impl Queues {
    fn family(&self, parent: &str, queue: &str) -> Result<&QueueFamily, SmError> {
        self.families.get(parent).ok_or_else(|| {
            QueueError::NotFound {
                queue: queue.to_owned(),
            }
            .into()
        })
    }

    fn family_mut(&mut self, parent: &str, queue: &str) -> Result<&mut QueueFamily, SmError> {
        self.families.get_mut(parent).ok_or_else(|| {
            QueueError::NotFound {
                queue: queue.to_owned(),
            }
            .into()
        })
    }

    fn refuse_dlq(queue: &str, parent: &str, action: &str) -> SmError {
        QueueError::IsDeadLetterQueue {
            queue: queue.to_owned(),
            parent: parent.to_owned(),
            action: action.to_owned(),
        }
        .into()
    }

    pub(crate) fn create(
        &mut self,
        queue: String,
        max_deliveries: Option<u32>,
        visibility_timeout_ms: Option<u64>,
        now: u64,
    ) -> Result<(String, bool, QueueConfig), SmError> {
        let (parent, kind) = resolve(&queue)?;
        if kind == LaneKind::Dlq {
            return Err(Self::refuse_dlq(&queue, parent, "created"));
        }
        let defaults = QueueConfig::default();
        let config = QueueConfig {
            max_deliveries: max_deliveries.unwrap_or(defaults.max_deliveries),
            visibility_timeout_ms: visibility_timeout_ms.unwrap_or(defaults.visibility_timeout_ms),
        };
        if config.max_deliveries == 0 || config.max_deliveries > limits::MAX_DELIVERIES_LIMIT {
            return Err(SmError::invalid(
                "max_deliveries",
                format!(
                    "must be between 1 and {}, got {}",
                    limits::MAX_DELIVERIES_LIMIT,
                    config.max_deliveries
                ),
            ));
        }
        check_visibility("visibility_timeout_ms", config.visibility_timeout_ms, 1)?;
        if let Some(existing) = self.families.get(&queue) {
            if existing.config != config {
                return Err(QueueError::ConfigConflict {
                    queue,
                    existing: existing.config,
                    requested: config,
                }
                .into());
            }
            return Ok((queue, false, config));
        }
        if self.families.len() >= limits::MAX_QUEUES {
            return Err(SmError::limit("queues", limits::MAX_QUEUES));
        }
        self.families
            .insert(queue.clone(), QueueFamily::new(queue.clone(), config, now));
        Ok((queue, true, config))
    }

    pub(crate) fn enqueue(
        &mut self,
        queue: &str,
        message_id: String,
        body: String,
        now: u64,
    ) -> Result<EnqueueOutcome, SmError> {
        let (parent, kind) = resolve(queue)?;
        if kind == LaneKind::Dlq {
            return Err(Self::refuse_dlq(queue, parent, "enqueued to"));
        }
        check_name("message id", &message_id)?;
        check_len("message body", &body, limits::MAX_BODY_BYTES)?;
        let created_queue = !self.families.contains_key(queue);
        if created_queue {
            self.create(queue.to_owned(), None, None, now)?;
        }
        let mut outcome = self
            .family_mut(parent, queue)?
            .enqueue(message_id, body, now)?;
        outcome.created_queue = created_queue;
        Ok(outcome)
    }

    pub(crate) fn receive(
        &mut self,
        queue: &str,
        consumer: &str,
        max: u32,
        visibility_ms: Option<u64>,
        now: u64,
    ) -> Result<ReceiveOutcome, SmError> {
        let (parent, kind) = resolve(queue)?;
        check_name("consumer", consumer)?;
        let max = check_batch("max", max, limits::MAX_RECEIVE_BATCH)?;
        if let Some(ms) = visibility_ms {
            check_visibility("visibility_ms", ms, 1)?;
        }
        let family = self.family_mut(parent, queue)?;
        let visibility_ms = visibility_ms.unwrap_or(family.config.visibility_timeout_ms);
        Ok(family.receive(kind, consumer, max, visibility_ms, now))
    }

    fn check_receipt(receipt: &Receipt) -> Result<(), SmError> {
        check_name("receipt message id", &receipt.message_id)
    }

    pub(crate) fn ack(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        now: u64,
    ) -> Result<AckOutcome, SmError> {
        let (parent, kind) = resolve(queue)?;
        Self::check_receipt(receipt)?;
        self.family_mut(parent, queue)?.ack(kind, receipt, now)
    }

    pub(crate) fn nack(
        &mut self,
        queue: &str,
        receipt: &Receipt,
        delay_ms: u64,
        reason: Option<String>,
        now: u64,
    ) -> Result<NackOutcome, SmError> {
        let (parent, kind) = resolve(queue)?;
        Self::check_receipt(receipt)?;
        check_visibility("delay_ms", delay_ms, 0)?;
        if let Some(reason) = &reason {
            check_len("nack reason", reason, limits::MAX_REASON_BYTES)?;
        }
        self.family_mut(parent, queue)?
            .nack(kind, receipt, delay_ms, reason, now)
    }

    pub(crate) fn redrive(
        &mut self,
        queue: &str,
        max: u32,
        now: u64,
    ) -> Result<RedriveOutcome, SmError> {
        let (parent, kind) = resolve(queue)?;
        if kind == LaneKind::Main {
            return Err(QueueError::NotDeadLetterQueue {
                queue: queue.to_owned(),
            }
            .into());
        }
        let max = check_batch("max", max, limits::MAX_REDRIVE_BATCH)?;
        Ok(self.family_mut(parent, queue)?.redrive(max, now))
    }

    pub(crate) fn purge(&mut self, queue: &str, now: u64) -> Result<PurgeOutcome, SmError> {
        let (parent, kind) = resolve(queue)?;
        Ok(self.family_mut(parent, queue)?.purge(kind, now))
    }

    pub(crate) fn peek(
        &self,
        queue: &str,
        max: usize,
        now: u64,
    ) -> Result<Vec<MessageInfo>, SmError> {
        let (parent, kind) = resolve(queue)?;
        let lane = self.family(parent, queue)?.lane(kind);
        Ok(lane
            .messages
            .values()
            .take(max)
            .map(|m| m.info(now))
            .collect())
    }

    pub(crate) fn stats(&self, now: u64) -> Vec<QueueStats> {
        self.families.values().map(|f| f.stats(now)).collect()
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        for (name, family) in &self.families {
            if *name != family.name {
                return Err(format!("family {name} is named {}", family.name));
            }
            family.check_invariants()?;
        }
        Ok(())
    }
}
