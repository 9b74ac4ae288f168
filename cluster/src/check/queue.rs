//! At-least-once delivery for a queue: every acknowledged enqueue is delivered (or still
//! stored at the end), and nothing is delivered that nobody enqueued.
//!
//! ```text
//!  producers: enqueue(id) ─┐                          ┌─► lost: acked enqueue, never seen
//!  consumers: receive, ack ├─► History<QueueOp> ──► check_queue ─► unexpected: seen, never enqueued
//!  test end:  drain(queue), drain(dlq) ─┘             └─► duplicates, delivery-count regressions (measured)
//! ```
//!
//! **Rules.** For each message id:
//!
//! - *enqueued* if some enqueue of it is `ok`; *maybe enqueued* if its enqueues are only
//!   `info` (timed out: it may or may not be in the queue, so either way is fine);
//!   *not enqueued* if every enqueue `fail`ed or there is none.
//! - *seen* if an `ok` receive returned it, or a final drain (of the queue or of its
//!   dead-letter queue) found it. `info` receives prove nothing: the message, if taken,
//!   is not acknowledged and comes back after its visibility timeout.
//! - **lost** (an error): enqueued but never seen.
//! - **unexpected** (an error): seen but not enqueued or maybe enqueued, or first seen by a
//!   receive that completed before any enqueue of it was invoked.
//! - **duplicates** (measured, not an error): seen more than once. At-least-once allows
//!   them; a crash between delivery and ack, or a visibility timeout, causes them.
//!   A duplicate delivered after an `ok` ack of the same id completed is listed apart:
//!   it means an acknowledged ack did not stick.
//! - **delivery-count regressions** (measured): two `ok` receives of one id, the first
//!   completed before the second was invoked, yet the second reports a delivery count not
//!   greater than the first. The dead-letter decision rests on that count. (A redrive
//!   from the DLQ may legitimately reset it.)
//!
//! **What it proves.** No acknowledged enqueue was lost, for the ids and the moment of
//! the final drain. **What it does not.** Ordering (this is not a FIFO check), that
//! deliveries respected visibility timeouts, or anything about `info` enqueues. A history
//! without a final drain of the queue cannot tell lost from still queued:
//! [`QueueReport::is_ok`] is false until one is recorded.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::{History, Operation, Outcome};

/// A message id chosen by the producer (unique per logical message).
pub type MessageId = String;

/// Where a final drain read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Queue,
    DeadLetter,
}

/// A queue operation as a client issued it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum QueueOp {
    Enqueue {
        id: MessageId,
    },
    /// Take up to a batch of visible messages.
    Receive,
    Ack {
        id: MessageId,
    },
    Nack {
        id: MessageId,
    },
    /// At the end of a test, after healing: everything still stored in the queue or its
    /// dead-letter queue (read without consuming, or received until empty).
    Drain {
        from: Source,
    },
}

/// One delivered message and the delivery count the queue reported for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Delivery {
    pub id: MessageId,
    pub delivery_count: u32,
}

/// What the queue answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueRet {
    Enqueued,
    Received(Vec<Delivery>),
    Acked,
    Nacked,
    Drained(Vec<Delivery>),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Queue => "queue",
            Self::DeadLetter => "dlq",
        })
    }
}

impl fmt::Display for QueueOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enqueue { id } => write!(f, "enqueue({id})"),
            Self::Receive => f.write_str("receive"),
            Self::Ack { id } => write!(f, "ack({id})"),
            Self::Nack { id } => write!(f, "nack({id})"),
            Self::Drain { from } => write!(f, "drain({from})"),
        }
    }
}

fn write_deliveries(f: &mut fmt::Formatter<'_>, deliveries: &[Delivery]) -> fmt::Result {
    const SHOWN: usize = 8;
    f.write_str("[")?;
    for (i, d) in deliveries.iter().take(SHOWN).enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{}×{}", d.id, d.delivery_count)?;
    }
    if deliveries.len() > SHOWN {
        write!(f, ", … {} more", deliveries.len() - SHOWN)?;
    }
    f.write_str("]")
}

impl fmt::Display for QueueRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enqueued | Self::Acked | Self::Nacked => f.write_str("ok"),
            Self::Received(d) | Self::Drained(d) => write_deliveries(f, d),
        }
    }
}

/// An acknowledged enqueue that was never delivered nor found by the final drain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostMessage {
    pub id: MessageId,
    /// The `ok` enqueue (the first one, if the producer retried).
    pub enqueue: Operation<QueueOp, QueueRet>,
}

/// Why a delivered message was not expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnexpectedReason {
    NeverEnqueued,
    /// Every enqueue of it reported `fail`.
    EnqueueFailed,
    /// Delivered by a receive that completed before any enqueue of it was invoked.
    DeliveredBeforeEnqueue,
}

/// A delivered message that should not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnexpectedMessage {
    pub id: MessageId,
    pub reason: UnexpectedReason,
    /// The receive or drain that first returned it.
    pub seen_by: usize,
}

/// A message seen more than once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    pub id: MessageId,
    /// Times seen (receives and drains).
    pub deliveries: u32,
    /// Seen by a receive invoked after an `ok` ack of it had completed.
    pub after_ack: bool,
}

/// Two receives of one message whose delivery counts do not increase in real time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountRegression {
    pub id: MessageId,
    /// (receive op id, delivery count) of the earlier and of the later receive.
    pub earlier: (usize, u32),
    pub later: (usize, u32),
}

/// The verdict of [`check_queue`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueReport {
    /// Ids with an `ok` enqueue.
    pub enqueued: usize,
    /// Ids whose enqueues were all `info`: (seen, not seen).
    pub maybe_enqueued: (usize, usize),
    /// Ids whose enqueues all failed.
    pub enqueue_failed: usize,
    /// Distinct ids seen, and deliveries in all (receives plus drains).
    pub seen: usize,
    pub deliveries: usize,
    /// Distinct ids found by a drain of the dead-letter queue.
    pub dead_lettered: usize,
    /// Whether a final drain of the queue was recorded (`ok`).
    pub drained: bool,
    pub lost: Vec<LostMessage>,
    pub unexpected: Vec<UnexpectedMessage>,
    /// Sorted by id.
    pub duplicates: Vec<Duplicate>,
    pub count_regressions: Vec<CountRegression>,
}

impl QueueReport {
    /// No acknowledged message lost, none unexpected, and the final drain was recorded.
    pub fn is_ok(&self) -> bool {
        self.drained && self.lost.is_empty() && self.unexpected.is_empty()
    }

    /// Deliveries beyond the first, over all messages.
    pub fn extra_deliveries(&self) -> u64 {
        self.duplicates
            .iter()
            .map(|d| u64::from(d.deliveries - 1))
            .sum()
    }
}

#[derive(Default)]
struct Message<'h> {
    ok_enqueue: Option<&'h Operation<QueueOp, QueueRet>>,
    info_enqueue: bool,
    failed_enqueue: bool,
    first_enqueue_invoke: Option<u64>,
    /// (op id, invoke, return, delivery count, is a drain)
    seen: Vec<(usize, u64, u64, u32, bool)>,
    /// Completion of the first `ok` ack.
    acked_at: Option<u64>,
    dead_lettered: bool,
}

/// Checks at-least-once delivery (see the module docs for the rules).
pub fn check_queue(history: &History<QueueOp, QueueRet>) -> QueueReport {
    let mut messages: BTreeMap<&str, Message<'_>> = BTreeMap::new();
    let mut report = QueueReport::default();
    for op in history {
        match (&op.op, &op.outcome) {
            (QueueOp::Enqueue { id }, outcome) => {
                let m = messages.entry(id).or_default();
                m.first_enqueue_invoke = Some(
                    m.first_enqueue_invoke
                        .map_or(op.invoke_ns, |t| t.min(op.invoke_ns)),
                );
                match outcome {
                    Outcome::Ok(_) => {
                        if m.ok_enqueue.is_none_or(|e| op.invoke_ns < e.invoke_ns) {
                            m.ok_enqueue = Some(op);
                        }
                    }
                    Outcome::Info => m.info_enqueue = true,
                    Outcome::Fail => m.failed_enqueue = true,
                }
            }
            (QueueOp::Ack { id }, Outcome::Ok(_)) => {
                let m = messages.entry(id).or_default();
                if let Some(done) = op.return_ns() {
                    m.acked_at = Some(m.acked_at.map_or(done, |t| t.min(done)));
                }
            }
            (QueueOp::Receive, Outcome::Ok(QueueRet::Received(deliveries)))
            | (QueueOp::Drain { .. }, Outcome::Ok(QueueRet::Drained(deliveries))) => {
                let from = match op.op {
                    QueueOp::Drain { from } => Some(from),
                    _ => None,
                };
                report.drained |= from == Some(Source::Queue);
                let done = op.return_ns().unwrap_or(u64::MAX);
                for d in deliveries {
                    let m = messages.entry(&d.id).or_default();
                    m.seen
                        .push((op.id, op.invoke_ns, done, d.delivery_count, from.is_some()));
                    m.dead_lettered |= from == Some(Source::DeadLetter);
                    report.deliveries += 1;
                }
            }
            _ => {}
        }
    }
    for (id, m) in &mut messages {
        m.seen.sort_by_key(|s| (s.1, s.0));
        if m.ok_enqueue.is_some() {
            report.enqueued += 1;
        } else if m.info_enqueue {
            if m.seen.is_empty() {
                report.maybe_enqueued.1 += 1;
            } else {
                report.maybe_enqueued.0 += 1;
            }
        } else if m.failed_enqueue {
            report.enqueue_failed += 1;
        }
        if m.seen.is_empty() {
            if let Some(enqueue) = m.ok_enqueue {
                report.lost.push(LostMessage {
                    id: (*id).to_owned(),
                    enqueue: enqueue.clone(),
                });
            }
            continue;
        }
        report.seen += 1;
        report.dead_lettered += usize::from(m.dead_lettered);
        let first_seen = m.seen.iter().min_by_key(|s| (s.2, s.0)).map_or(0, |s| s.0);
        let reason = if m.ok_enqueue.is_none() && !m.info_enqueue {
            Some(if m.failed_enqueue {
                UnexpectedReason::EnqueueFailed
            } else {
                UnexpectedReason::NeverEnqueued
            })
        } else if m
            .seen
            .iter()
            .any(|s| m.first_enqueue_invoke.is_some_and(|e| s.2 < e))
        {
            Some(UnexpectedReason::DeliveredBeforeEnqueue)
        } else {
            None
        };
        if let Some(reason) = reason {
            report.unexpected.push(UnexpectedMessage {
                id: (*id).to_owned(),
                reason,
                seen_by: first_seen,
            });
        }
        if m.seen.len() > 1 {
            let after_ack = m
                .acked_at
                .is_some_and(|acked| m.seen.iter().any(|s| s.1 > acked));
            report.duplicates.push(Duplicate {
                id: (*id).to_owned(),
                deliveries: u32::try_from(m.seen.len()).unwrap_or(u32::MAX),
                after_ack,
            });
        }
        // Delivery counts must grow along real time. Receives of one id are few, so the
        // pairwise scan is cheap; the earliest-completing earlier receive with the
        // highest count is the one to compare against.
        let receives: Vec<_> = m.seen.iter().filter(|s| !s.4).collect();
        for later in &receives {
            let worst = receives
                .iter()
                .filter(|earlier| earlier.2 < later.1)
                .max_by_key(|earlier| (earlier.3, std::cmp::Reverse(earlier.0)));
            if let Some(earlier) = worst
                && later.3 <= earlier.3
            {
                report.count_regressions.push(CountRegression {
                    id: (*id).to_owned(),
                    earlier: (earlier.0, earlier.3),
                    later: (later.0, later.3),
                });
            }
        }
    }
    report
}

const SHOWN: usize = 10;

impl fmt::Display for UnexpectedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NeverEnqueued => "never enqueued",
            Self::EnqueueFailed => "every enqueue of it failed",
            Self::DeliveredBeforeEnqueue => "delivered before it was enqueued",
        })
    }
}

impl fmt::Display for QueueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_ok() {
            "ok"
        } else if !self.lost.is_empty() {
            "LOST MESSAGES"
        } else if !self.unexpected.is_empty() {
            "UNEXPECTED MESSAGES"
        } else {
            "NO FINAL DRAIN (lost and still queued cannot be told apart)"
        };
        writeln!(f, "queue at-least-once: {verdict}")?;
        writeln!(
            f,
            "  enqueues: {} acknowledged, {} unknown ({} delivered, {} not), {} failed",
            self.enqueued,
            self.maybe_enqueued.0 + self.maybe_enqueued.1,
            self.maybe_enqueued.0,
            self.maybe_enqueued.1,
            self.enqueue_failed
        )?;
        let after_ack = self.duplicates.iter().filter(|d| d.after_ack).count();
        writeln!(
            f,
            "  deliveries: {} of {} messages; {} delivered more than once ({} extra deliveries, {} after an acknowledged ack); {} dead-lettered",
            self.deliveries,
            self.seen,
            self.duplicates.len(),
            self.extra_deliveries(),
            after_ack,
            self.dead_lettered
        )?;
        if !self.lost.is_empty() {
            writeln!(f, "  lost ({}):", self.lost.len())?;
            for l in self.lost.iter().take(SHOWN) {
                writeln!(f, "    {}: {}", l.id, l.enqueue)?;
            }
            more(f, self.lost.len())?;
        }
        if !self.unexpected.is_empty() {
            writeln!(f, "  unexpected ({}):", self.unexpected.len())?;
            for u in self.unexpected.iter().take(SHOWN) {
                writeln!(
                    f,
                    "    {}: {} (first seen by #{})",
                    u.id, u.reason, u.seen_by
                )?;
            }
            more(f, self.unexpected.len())?;
        }
        if !self.duplicates.is_empty() {
            let mut worst: Vec<&Duplicate> = self.duplicates.iter().collect();
            worst.sort_by_key(|d| (!d.after_ack, std::cmp::Reverse(d.deliveries)));
            let shown: Vec<String> = worst
                .iter()
                .take(SHOWN)
                .map(|d| {
                    format!(
                        "{}×{}{}",
                        d.id,
                        d.deliveries,
                        if d.after_ack { " (after ack)" } else { "" }
                    )
                })
                .collect();
            writeln!(f, "  most delivered: {}", shown.join(", "))?;
        }
        if !self.count_regressions.is_empty() {
            writeln!(
                f,
                "  delivery-count regressions ({}):",
                self.count_regressions.len()
            )?;
            for r in self.count_regressions.iter().take(SHOWN) {
                writeln!(
                    f,
                    "    {}: #{} reported {}, then #{} reported {}",
                    r.id, r.earlier.0, r.earlier.1, r.later.0, r.later.1
                )?;
            }
            more(f, self.count_regressions.len())?;
        }
        Ok(())
    }
}

fn more(f: &mut fmt::Formatter<'_>, total: usize) -> fmt::Result {
    if total > SHOWN {
        writeln!(f, "    … {} more", total - SHOWN)?;
    }
    Ok(())
}

/// Counts of deliveries per id in a history, for tests that want to assert on them.
pub fn delivery_counts(history: &History<QueueOp, QueueRet>) -> HashMap<MessageId, u32> {
    let mut counts = HashMap::new();
    for op in history {
        if let Outcome::Ok(QueueRet::Received(d) | QueueRet::Drained(d)) = &op.outcome {
            for d in d {
                *counts.entry(d.id.clone()).or_insert(0) += 1;
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    type H = History<QueueOp, QueueRet>;

    fn enqueue(id: &str) -> QueueOp {
        QueueOp::Enqueue { id: id.to_owned() }
    }
    fn got(ids: &[(&str, u32)]) -> Vec<Delivery> {
        ids.iter()
            .map(|(id, n)| Delivery {
                id: (*id).to_owned(),
                delivery_count: *n,
            })
            .collect()
    }

    fn drained(h: &mut H, t: u64, queue: &[(&str, u32)], dlq: &[(&str, u32)]) {
        h.push_ok(
            9,
            t,
            t + 1,
            QueueOp::Drain {
                from: Source::Queue,
            },
            QueueRet::Drained(got(queue)),
        );
        h.push_ok(
            9,
            t + 2,
            t + 3,
            QueueOp::Drain {
                from: Source::DeadLetter,
            },
            QueueRet::Drained(got(dlq)),
        );
    }

    #[test]
    fn every_acked_message_delivered_is_ok() {
        let mut h = H::new();
        h.push_ok(1, 0, 10, enqueue("a"), QueueRet::Enqueued);
        h.push_ok(1, 20, 30, enqueue("b"), QueueRet::Enqueued);
        h.push_ok(
            2,
            40,
            50,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 1), ("b", 1)])),
        );
        h.push_ok(2, 60, 70, QueueOp::Ack { id: "a".into() }, QueueRet::Acked);
        h.push_ok(2, 60, 70, QueueOp::Ack { id: "b".into() }, QueueRet::Acked);
        drained(&mut h, 100, &[], &[]);
        let r = check_queue(&h);
        assert!(r.is_ok(), "{r}");
        assert_eq!((r.enqueued, r.seen, r.deliveries), (2, 2, 2));
        assert!(r.to_string().starts_with("queue at-least-once: ok"), "{r}");
    }

    #[test]
    fn acked_message_never_seen_is_lost() {
        let mut h = H::new();
        let lost = h.push_ok(1, 0, 10, enqueue("a"), QueueRet::Enqueued);
        h.push_ok(1, 20, 30, enqueue("b"), QueueRet::Enqueued);
        h.push_ok(
            2,
            40,
            50,
            QueueOp::Receive,
            QueueRet::Received(got(&[("b", 1)])),
        );
        drained(&mut h, 100, &[], &[]);
        let r = check_queue(&h);
        assert!(!r.is_ok());
        assert_eq!(r.lost.len(), 1);
        assert_eq!(r.lost[0].id, "a");
        assert_eq!(r.lost[0].enqueue.id, lost);
        let text = r.to_string();
        assert!(
            text.contains("LOST MESSAGES") && text.contains("a: #0 p1"),
            "{text}"
        );
    }

    #[test]
    fn drains_and_the_dead_letter_queue_count_as_delivered() {
        let mut h = H::new();
        h.push_ok(1, 0, 10, enqueue("a"), QueueRet::Enqueued);
        h.push_ok(1, 0, 10, enqueue("poison"), QueueRet::Enqueued);
        h.push_ok(
            2,
            20,
            30,
            QueueOp::Receive,
            QueueRet::Received(got(&[("poison", 1)])),
        );
        h.push_ok(
            2,
            40,
            50,
            QueueOp::Receive,
            QueueRet::Received(got(&[("poison", 2)])),
        );
        drained(&mut h, 100, &[("a", 0)], &[("poison", 3)]);
        let r = check_queue(&h);
        assert!(r.is_ok(), "{r}");
        assert_eq!(r.dead_lettered, 1);
        assert_eq!(
            r.duplicates,
            vec![Duplicate {
                id: "poison".into(),
                deliveries: 3,
                after_ack: false
            }]
        );
        assert_eq!(r.extra_deliveries(), 2);
    }

    #[test]
    fn without_a_final_drain_the_verdict_is_not_ok() {
        let mut h = H::new();
        h.push_ok(1, 0, 10, enqueue("a"), QueueRet::Enqueued);
        h.push_ok(
            2,
            20,
            30,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 1)])),
        );
        let r = check_queue(&h);
        assert!(r.lost.is_empty());
        assert!(!r.is_ok());
        assert!(r.to_string().contains("NO FINAL DRAIN"), "{r}");
    }

    #[test]
    fn unknown_enqueues_may_or_may_not_arrive() {
        let mut h = H::new();
        h.push_info(1, 0, enqueue("maybe-1"));
        h.push_info(1, 0, enqueue("maybe-2"));
        h.push_ok(
            2,
            20,
            30,
            QueueOp::Receive,
            QueueRet::Received(got(&[("maybe-1", 1)])),
        );
        // An info receive proves nothing either way.
        h.push_info(2, 40, QueueOp::Receive);
        drained(&mut h, 100, &[], &[]);
        let r = check_queue(&h);
        assert!(r.is_ok(), "{r}");
        assert_eq!(r.maybe_enqueued, (1, 1));
    }

    #[test]
    fn unexpected_messages_are_errors() {
        let mut h = H::new();
        h.push_fail(1, 0, 10, enqueue("failed"));
        h.push_ok(1, 100, 110, enqueue("late"), QueueRet::Enqueued);
        h.push_ok(
            2,
            20,
            30,
            QueueOp::Receive,
            QueueRet::Received(got(&[("failed", 1), ("ghost", 1), ("late", 1)])),
        );
        drained(&mut h, 200, &[], &[]);
        let r = check_queue(&h);
        assert!(!r.is_ok());
        let reasons: Vec<_> = r
            .unexpected
            .iter()
            .map(|u| (u.id.as_str(), u.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("failed", UnexpectedReason::EnqueueFailed),
                ("ghost", UnexpectedReason::NeverEnqueued),
                ("late", UnexpectedReason::DeliveredBeforeEnqueue),
            ]
        );
        assert_eq!(r.enqueue_failed, 1);
        assert!(
            r.to_string()
                .contains("ghost: never enqueued (first seen by #2)"),
            "{r}"
        );
    }

    #[test]
    fn retried_enqueue_counts_once_and_redelivery_after_ack_is_flagged() {
        let mut h = H::new();
        h.push_info(1, 0, enqueue("a"));
        h.push_ok(1, 20, 30, enqueue("a"), QueueRet::Enqueued);
        h.push_ok(
            2,
            40,
            50,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 1)])),
        );
        h.push_ok(2, 60, 70, QueueOp::Ack { id: "a".into() }, QueueRet::Acked);
        h.push_ok(
            3,
            80,
            90,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 2)])),
        );
        drained(&mut h, 200, &[], &[]);
        let r = check_queue(&h);
        assert!(r.is_ok(), "{r}");
        assert_eq!(r.enqueued, 1);
        assert_eq!(r.maybe_enqueued, (0, 0));
        assert_eq!(
            r.duplicates,
            vec![Duplicate {
                id: "a".into(),
                deliveries: 2,
                after_ack: true
            }]
        );
        assert!(r.to_string().contains("1 after an acknowledged ack"), "{r}");
    }

    #[test]
    fn delivery_counts_must_grow_in_real_time() {
        let mut h = H::new();
        h.push_ok(1, 0, 10, enqueue("a"), QueueRet::Enqueued);
        let first = h.push_ok(
            2,
            20,
            30,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 2)])),
        );
        // Concurrent with the first: no order, no regression.
        h.push_ok(
            3,
            25,
            35,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 1)])),
        );
        let later = h.push_ok(
            2,
            40,
            50,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 2)])),
        );
        drained(&mut h, 100, &[], &[]);
        let r = check_queue(&h);
        assert!(r.is_ok(), "regressions are measured, not errors: {r}");
        assert_eq!(
            r.count_regressions,
            vec![CountRegression {
                id: "a".into(),
                earlier: (first, 2),
                later: (later, 2)
            }]
        );
        assert!(
            r.to_string()
                .contains("a: #1 reported 2, then #3 reported 2"),
            "{r}"
        );
        assert_eq!(delivery_counts(&h).get("a"), Some(&3));
    }

    #[test]
    fn queue_history_round_trips_as_json_lines() {
        let mut h = H::new();
        h.push_ok(1, 0, 10, enqueue("a"), QueueRet::Enqueued);
        h.push_ok(
            2,
            20,
            30,
            QueueOp::Receive,
            QueueRet::Received(got(&[("a", 1)])),
        );
        let mut buf = Vec::new();
        h.write_jsonl(&mut buf).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.contains(r#""op":{"f":"enqueue","id":"a"}"#), "{text}");
        assert_eq!(H::read_jsonl(&buf[..]).unwrap(), h);
        assert!(h.to_string().contains("receive → [a×1]"), "{h}");
    }
}
