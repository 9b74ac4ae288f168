//! The coordinator's decisions, as pure state machines fed replica responses as they
//! arrive. No sockets, no clocks of their own (the shell passes `Instant`s in), no
//! async: the HTTP shell sends the requests, feeds the answers in, and does what the
//! returned step says.
//!
//! ## Writes
//!
//! ```text
//!  client ─► coordinator: version = hlc.new_version()
//!            WriteRound::new(version, ring.replicas(key, N), W, now)
//!            send to every WriteRound::targets()          ┌─ on_ack / on_failure / stand_in
//!            replica responses ──────────────────────────►│  WriteStep::Decided(outcome)  ─► answer the client (once)
//!                                                         │  WriteStep::LateAck { lag }   ─► kv replication lag
//!                                                         └─ is_complete() ─► end the span (kv.replicas_acked …)
//! ```
//!
//! The client is answered as soon as W replicas acknowledged (success), or as soon as W
//! can no longer be reached (failure). The replicas beyond W keep being counted: the
//! time from the answer to each later ack is the **replication lag** of that replica,
//! the quantity the `slow-follower` and `stale-reads` scenarios move.
//!
//! **Sloppy quorum and hinted handoff** (Dynamo §4.6): when a preferred replica is down
//! (known in advance, or its request failed or timed out), the shell picks the next node
//! of the key's preference list that is not already in the round, and calls
//! [`WriteRound::stand_in`]`(down, next)`; it then sends the write to `next` as a *hint
//! for* `down` (`ReplicaStore::add_hint`), which a background loop delivers when `down`
//! is back. Under [`QuorumPolicy::Sloppy`] (Dynamo's choice, the default) a stand-in's
//! ack counts toward W: writes stay available through a node failure, at the price that
//! until the hint is delivered an R-read of the preferred replicas may not see the write
//! (R + W > N guarantees overlap with the *preferred* replicas only under
//! [`QuorumPolicy::Strict`]). Under `Strict`, stand-ins still receive hints (so the data
//! reaches N nodes) but only the preferred replicas count toward W. Call `stand_in`
//! *instead of* `on_failure` for a replica you are replacing, so the round does not
//! declare failure before the stand-in had its chance.
//!
//! A replica that already held a newer version acknowledges anyway (LWW: the write is
//! applied as "lost to a newer write"); the round records this as
//! [`WriteSummary::superseded_by`] so the shell can flag an ordering anomaly (e.g. a
//! coordinator whose clock is behind).
//!
//! ## Reads
//!
//! The shell sends the read to all N replicas (not just R: the late answers are how stale
//! reads are detected and how read repair reaches everyone) and feeds the responses to a
//! [`ReadRound`]. After R responses the newest copy is the answer. Every replica that
//! answered with an older copy, or none, gets a **read repair** (the newest copy, sent
//! after the client was answered; replicas apply it with LWW, so repeats are harmless).
//!
//! A **stale read** (telemetry: `kv.stale = true`) is a read whose answer was older than
//! the copy some contacted replica returned *after* the answer went out: the client was
//! given version V while a replica it asked held V' > V. This is observable by the
//! coordinator alone, needs no client history, and is exactly what R + W ≤ N (or a
//! sloppy write not yet handed off) allows. It can also fire for a write that raced the
//! read (V' minted after the read began); [`StaleRead`] carries both versions so an
//! analyzer can compare V' with the read's start time if it needs to tell them apart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::version::{NodeId, Version, Versioned};

/// Whether a stand-in's ack counts toward W. See the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QuorumPolicy {
    /// Dynamo: a stand-in holding a hint counts (writes stay available).
    #[default]
    Sloppy,
    /// Only the key's preferred replicas count (R + W > N overlap holds).
    Strict,
}

/// A request the round cannot accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    #[error("quorum of {required} is impossible with {replicas} replicas (needs 1..={replicas})")]
    InvalidQuorum { required: usize, replicas: usize },
    #[error("node {node} is already part of this request")]
    DuplicateReplica { node: NodeId },
    #[error("node {node} was not sent this request")]
    UnknownReplica { node: NodeId },
    #[error("replica {node} already acknowledged; it needs no stand-in")]
    AlreadyAcked { node: NodeId },
}

fn check_quorum(replicas: &[NodeId], required: usize) -> Result<(), QuorumError> {
    if required == 0 || required > replicas.len() {
        return Err(QuorumError::InvalidQuorum {
            required,
            replicas: replicas.len(),
        });
    }
    for (i, node) in replicas.iter().enumerate() {
        if replicas[..i].contains(node) {
            return Err(QuorumError::DuplicateReplica { node: *node });
        }
    }
    Ok(())
}

/// Where to send a write: to a preferred replica, or to a stand-in holding a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTarget {
    pub node: NodeId,
    /// `Some(replica)`: store the write as a hint for `replica`, not as data.
    pub stand_in_for: Option<NodeId>,
}

/// The client's answer to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    pub succeeded: bool,
    /// Acks counted toward W when the outcome was decided.
    pub acked: usize,
    /// Replicas that could no longer count when the outcome was decided.
    pub failed: usize,
    /// From the round's start to the decision: the client-visible latency.
    pub latency: Duration,
}

/// What a response changed, for the shell to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// Nothing to tell the client yet.
    Waiting,
    /// Answer the client now. Returned exactly once per round.
    Decided(WriteOutcome),
    /// A replica acknowledged after the client was answered, `lag` after the answer:
    /// one replication-lag sample.
    LateAck { node: NodeId, lag: Duration },
    /// A response after the answer that changes nothing the client sees (a failure, or a
    /// second ack for a replica already counted).
    AfterDecision,
}

/// The round's figures, for the span and metrics once [`WriteRound::is_complete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    pub n: usize,
    pub w: usize,
    /// Replicas (or their stand-ins) that acknowledged — `kv.replicas_acked`.
    pub acked: usize,
    /// Of which through a stand-in (hinted).
    pub acked_by_stand_ins: usize,
    pub failed: usize,
    pub pending: usize,
    /// The longest delay from the client's answer to a later ack.
    pub max_replication_lag: Option<Duration>,
    /// The newest version a replica already held that beat this write, if any.
    pub superseded_by: Option<Version>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptState {
    Pending,
    Acked { at: Instant },
    Failed,
}

#[derive(Debug, Clone)]
struct Attempt {
    node: NodeId,
    state: AttemptState,
}

/// One preferred replica and the attempts to reach it (itself, then any stand-ins).
#[derive(Debug, Clone)]
struct Slot {
    replica: NodeId,
    attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Acked,
    Pending,
    Failed,
}

impl Slot {
    fn state(&self, policy: QuorumPolicy) -> SlotState {
        let counts = |a: &&Attempt| policy == QuorumPolicy::Sloppy || a.node == self.replica;
        let mut attempts = self.attempts.iter().filter(counts);
        if attempts
            .clone()
            .any(|a| matches!(a.state, AttemptState::Acked { .. }))
        {
            SlotState::Acked
        } else if attempts.any(|a| a.state == AttemptState::Pending) {
            SlotState::Pending
        } else {
            SlotState::Failed
        }
    }
}

/// A write's progress toward W acknowledgements. See the module docs.
#[derive(Debug, Clone)]
pub struct WriteRound {
    version: Version,
    w: usize,
    policy: QuorumPolicy,
    started: Instant,
    slots: Vec<Slot>,
    decided: Option<(WriteOutcome, Instant)>,
    superseded_by: Option<Version>,
    max_lag: Option<Duration>,
}

impl WriteRound {
    /// A write of `version` to `replicas` (the key's N preferred replicas, distinct),
    /// answered once `w` of them acknowledged. Uses [`QuorumPolicy::Sloppy`].
    pub fn new(
        version: Version,
        replicas: &[NodeId],
        w: usize,
        started: Instant,
    ) -> Result<Self, QuorumError> {
        check_quorum(replicas, w)?;
        Ok(Self {
            version,
            w,
            policy: QuorumPolicy::default(),
            started,
            slots: replicas
                .iter()
                .map(|&replica| Slot {
                    replica,
                    attempts: vec![Attempt {
                        node: replica,
                        state: AttemptState::Pending,
                    }],
                })
                .collect(),
            decided: None,
            superseded_by: None,
            max_lag: None,
        })
    }

    pub fn with_policy(mut self, policy: QuorumPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn n(&self) -> usize {
        self.slots.len()
    }

    pub fn w(&self) -> usize {
        self.w
    }

    /// The first requests to send: one per preferred replica.
    pub fn targets(&self) -> Vec<WriteTarget> {
        self.slots
            .iter()
            .map(|s| WriteTarget {
                node: s.replica,
                stand_in_for: None,
            })
            .collect()
    }

    /// The client's answer, once decided.
    pub fn outcome(&self) -> Option<WriteOutcome> {
        self.decided.map(|(outcome, _)| outcome)
    }

    /// Every request has been answered (acked or failed): nothing more will arrive.
    pub fn is_complete(&self) -> bool {
        self.slots
            .iter()
            .flat_map(|s| &s.attempts)
            .all(|a| a.state != AttemptState::Pending)
    }

    /// `node` acknowledged the write (stored it, or, for a stand-in, stored the hint).
    /// `previous` is the version the replica held before (`Applied::previous`; `None`
    /// for a stand-in), used to notice that the write lost to a newer one.
    pub fn on_ack(
        &mut self,
        node: NodeId,
        previous: Option<Version>,
        at: Instant,
    ) -> Result<WriteStep, QuorumError> {
        let (slot, attempt) = self.find(node)?;
        let slot_was_acked = self.slots[slot].state(self.policy) == SlotState::Acked;
        let attempt = &mut self.slots[slot].attempts[attempt];
        if matches!(attempt.state, AttemptState::Acked { .. }) {
            return Ok(self.after_decision_or_waiting());
        }
        attempt.state = AttemptState::Acked { at };
        if let Some(previous) = previous.filter(|p| *p > self.version) {
            self.superseded_by = self.superseded_by.max(Some(previous));
        }
        let counted = self.slots[slot].state(self.policy) == SlotState::Acked && !slot_was_acked;
        match self.decided {
            Some((_, decided_at)) if counted => {
                let lag = at.saturating_duration_since(decided_at);
                self.max_lag = self.max_lag.max(Some(lag));
                Ok(WriteStep::LateAck { node, lag })
            }
            Some(_) => Ok(WriteStep::AfterDecision),
            None => Ok(self.decide(at)),
        }
    }

    /// The request to `node` failed (error, timeout, refused). To replace the replica
    /// with a stand-in, call [`WriteRound::stand_in`] instead.
    pub fn on_failure(&mut self, node: NodeId, at: Instant) -> Result<WriteStep, QuorumError> {
        let (slot, attempt) = self.find(node)?;
        let attempt = &mut self.slots[slot].attempts[attempt];
        if attempt.state == AttemptState::Pending {
            attempt.state = AttemptState::Failed;
        }
        Ok(self.decide(at))
    }

    /// Replace the attempt on `replica` (down, failed or timed out) with a write to
    /// `stand_in`, which will hold it as a hint for `replica`. `stand_in` must not
    /// already be part of this round. May be called again for the same `replica` if a
    /// stand-in fails too. Returns the step caused by giving up on the current attempt
    /// (only under [`QuorumPolicy::Strict`] can that decide the round).
    pub fn stand_in(
        &mut self,
        replica: NodeId,
        stand_in: NodeId,
        at: Instant,
    ) -> Result<WriteStep, QuorumError> {
        if self
            .slots
            .iter()
            .flat_map(|s| &s.attempts)
            .any(|a| a.node == stand_in)
        {
            return Err(QuorumError::DuplicateReplica { node: stand_in });
        }
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.replica == replica)
            .ok_or(QuorumError::UnknownReplica { node: replica })?;
        if slot
            .attempts
            .iter()
            .any(|a| matches!(a.state, AttemptState::Acked { .. }))
        {
            return Err(QuorumError::AlreadyAcked { node: replica });
        }
        for attempt in &mut slot.attempts {
            if attempt.state == AttemptState::Pending {
                attempt.state = AttemptState::Failed;
            }
        }
        slot.attempts.push(Attempt {
            node: stand_in,
            state: AttemptState::Pending,
        });
        Ok(self.decide(at))
    }

    /// Preferred replicas that have not acknowledged (directly): the ones a stand-in may
    /// be holding a hint for, or that are still lagging.
    pub fn lagging(&self) -> Vec<NodeId> {
        self.slots
            .iter()
            .filter(|s| {
                !s.attempts
                    .iter()
                    .any(|a| a.node == s.replica && matches!(a.state, AttemptState::Acked { .. }))
            })
            .map(|s| s.replica)
            .collect()
    }

    pub fn summary(&self) -> WriteSummary {
        let mut summary = WriteSummary {
            n: self.slots.len(),
            w: self.w,
            acked: 0,
            acked_by_stand_ins: 0,
            failed: 0,
            pending: 0,
            max_replication_lag: self.max_lag,
            superseded_by: self.superseded_by,
        };
        for slot in &self.slots {
            match slot.state(QuorumPolicy::Sloppy) {
                SlotState::Acked => {
                    summary.acked += 1;
                    let direct = slot.attempts.iter().any(|a| {
                        a.node == slot.replica && matches!(a.state, AttemptState::Acked { .. })
                    });
                    if !direct {
                        summary.acked_by_stand_ins += 1;
                    }
                }
                SlotState::Pending => summary.pending += 1,
                SlotState::Failed => summary.failed += 1,
            }
        }
        summary
    }

    fn find(&self, node: NodeId) -> Result<(usize, usize), QuorumError> {
        self.slots
            .iter()
            .enumerate()
            .find_map(|(i, s)| {
                s.attempts
                    .iter()
                    .position(|a| a.node == node)
                    .map(|j| (i, j))
            })
            .ok_or(QuorumError::UnknownReplica { node })
    }

    fn after_decision_or_waiting(&self) -> WriteStep {
        if self.decided.is_some() {
            WriteStep::AfterDecision
        } else {
            WriteStep::Waiting
        }
    }

    fn decide(&mut self, at: Instant) -> WriteStep {
        if self.decided.is_some() {
            return WriteStep::AfterDecision;
        }
        let (mut acked, mut failed) = (0, 0);
        for slot in &self.slots {
            match slot.state(self.policy) {
                SlotState::Acked => acked += 1,
                SlotState::Failed => failed += 1,
                SlotState::Pending => {}
            }
        }
        let reachable = self.slots.len() - failed;
        let succeeded = acked >= self.w;
        if !succeeded && reachable >= self.w {
            return WriteStep::Waiting;
        }
        let outcome = WriteOutcome {
            succeeded,
            acked,
            failed,
            latency: at.saturating_duration_since(self.started),
        };
        self.decided = Some((outcome, at));
        WriteStep::Decided(outcome)
    }
}

/// The client's answer to a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// R replicas answered; `newest` is the newest copy among them (`None`: none had the
    /// key; a tombstone means deleted — both are "not found" to the client).
    Answered {
        newest: Option<Versioned>,
        responded: usize,
    },
    /// R responses can no longer be gathered.
    Failed { responded: usize, failed: usize },
}

/// A replica to bring up to date with the newest copy seen by the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub node: NodeId,
    pub versioned: Versioned,
}

/// A response that arrived after the answer and held a newer version than the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleRead {
    /// The version the client was given (`None`: it was told "not found").
    pub returned: Option<Version>,
    /// The newer version a replica held.
    pub newer: Version,
    pub replica: NodeId,
}

/// What a response changed, for the shell to act on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadStep {
    /// Answer the client now. `Some` exactly once per round.
    pub answer: Option<ReadOutcome>,
    /// Read repairs to send now (already deduplicated against earlier steps).
    pub repairs: Vec<Repair>,
    /// This response proves the answer was stale.
    pub stale: Option<StaleRead>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Pending,
    Copy(Option<Versioned>),
    Failed,
}

/// A read's progress toward R responses, then its read repair. See the module docs.
#[derive(Debug, Clone)]
pub struct ReadRound {
    r: usize,
    started: Instant,
    replies: Vec<(NodeId, Reply)>,
    answer: Option<ReadOutcome>,
    latency: Option<Duration>,
    /// The newest copy seen so far, answered or not.
    newest: Option<Versioned>,
    /// For each responder: the version it holds, or was since sent as a repair (`None`:
    /// no copy). Only responders are repaired.
    known: BTreeMap<NodeId, Option<Version>>,
    stale: Option<StaleRead>,
}

impl ReadRound {
    /// A read sent to `replicas` (distinct; all N preferred replicas), answered after `r`
    /// responses.
    pub fn new(replicas: &[NodeId], r: usize, started: Instant) -> Result<Self, QuorumError> {
        check_quorum(replicas, r)?;
        Ok(Self {
            r,
            started,
            replies: replicas.iter().map(|&n| (n, Reply::Pending)).collect(),
            answer: None,
            latency: None,
            newest: None,
            known: BTreeMap::new(),
            stale: None,
        })
    }

    pub fn r(&self) -> usize {
        self.r
    }

    pub fn n(&self) -> usize {
        self.replies.len()
    }

    pub fn outcome(&self) -> Option<&ReadOutcome> {
        self.answer.as_ref()
    }

    /// From the round's start to the answer.
    pub fn latency(&self) -> Option<Duration> {
        self.latency
    }

    /// The first late response that proved the answer stale (`kv.stale`).
    pub fn stale(&self) -> Option<&StaleRead> {
        self.stale.as_ref()
    }

    /// The newest copy seen by the round, including late responses.
    pub fn newest(&self) -> Option<&Versioned> {
        self.newest.as_ref()
    }

    pub fn is_complete(&self) -> bool {
        self.replies.iter().all(|(_, r)| *r != Reply::Pending)
    }

    /// `node` answered with its copy (`None`: it has no copy of the key).
    pub fn on_response(
        &mut self,
        node: NodeId,
        copy: Option<Versioned>,
        at: Instant,
    ) -> Result<ReadStep, QuorumError> {
        let slot = self.slot(node)?;
        if self.replies[slot].1 != Reply::Pending {
            return Ok(ReadStep::default());
        }
        self.known.insert(node, copy.as_ref().map(|c| c.version));
        let newer_than_seen = match (&copy, &self.newest) {
            (Some(c), Some(n)) => c.version > n.version,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if newer_than_seen {
            self.newest.clone_from(&copy);
        }
        self.replies[slot].1 = Reply::Copy(copy);

        let mut step = ReadStep::default();
        match &self.answer {
            None => {
                step.answer = self.decide(at);
                if step.answer.is_some() {
                    step.repairs = self.repairs();
                }
            }
            Some(answer) => {
                if let (true, ReadOutcome::Answered { newest, .. }, Some(newer)) =
                    (newer_than_seen, answer, &self.newest)
                {
                    let returned = newest.as_ref().map(|v| v.version);
                    if returned < Some(newer.version) {
                        let stale = StaleRead {
                            returned,
                            newer: newer.version,
                            replica: node,
                        };
                        self.stale.get_or_insert(stale);
                        step.stale = Some(stale);
                    }
                }
                step.repairs = self.repairs();
            }
        }
        Ok(step)
    }

    /// The request to `node` failed or timed out.
    pub fn on_failure(&mut self, node: NodeId, at: Instant) -> Result<ReadStep, QuorumError> {
        let slot = self.slot(node)?;
        if self.replies[slot].1 == Reply::Pending {
            self.replies[slot].1 = Reply::Failed;
        }
        let mut step = ReadStep::default();
        if self.answer.is_none() {
            step.answer = self.decide(at);
        }
        Ok(step)
    }

    fn slot(&self, node: NodeId) -> Result<usize, QuorumError> {
        self.replies
            .iter()
            .position(|(n, _)| *n == node)
            .ok_or(QuorumError::UnknownReplica { node })
    }

    fn decide(&mut self, at: Instant) -> Option<ReadOutcome> {
        let responded = self
            .replies
            .iter()
            .filter(|(_, r)| matches!(r, Reply::Copy(_)))
            .count();
        let failed = self
            .replies
            .iter()
            .filter(|(_, r)| *r == Reply::Failed)
            .count();
        let answer = if responded >= self.r {
            ReadOutcome::Answered {
                newest: self.newest.clone(),
                responded,
            }
        } else if self.replies.len() - failed < self.r {
            ReadOutcome::Failed { responded, failed }
        } else {
            return None;
        };
        self.answer = Some(answer.clone());
        self.latency = Some(at.saturating_duration_since(self.started));
        Some(answer)
    }

    /// Repairs for every responder behind the newest copy that has not been sent it yet.
    fn repairs(&mut self) -> Vec<Repair> {
        let Some(newest) = &self.newest else {
            return Vec::new();
        };
        let mut repairs = Vec::new();
        for (node, held) in &mut self.known {
            if *held < Some(newest.version) {
                *held = Some(newest.version);
                repairs.push(Repair {
                    node: *node,
                    versioned: newest.clone(),
                });
            }
        }
        repairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::version::tests::version;
    use proptest::prelude::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn copy(value: &str, physical_ms: u64) -> Option<Versioned> {
        Some(Versioned::value(value, version(physical_ms, 0, 1)))
    }

    #[test]
    fn write_succeeds_at_w_acks_and_measures_lag_beyond_w() {
        let t0 = Instant::now();
        let v = version(100, 0, 1);
        let mut round = WriteRound::new(v, &[1, 2, 3], 2, t0).unwrap();
        assert_eq!(round.n(), 3);
        assert_eq!(round.w(), 2);
        assert_eq!(round.version(), v);
        assert_eq!(round.targets().len(), 3);
        assert!(round.targets().iter().all(|t| t.stand_in_for.is_none()));

        assert_eq!(round.on_ack(2, None, at(t0, 3)), Ok(WriteStep::Waiting));
        // A duplicate ack does not count twice.
        assert_eq!(round.on_ack(2, None, at(t0, 4)), Ok(WriteStep::Waiting));
        assert_eq!(round.outcome(), None);
        let outcome = WriteOutcome {
            succeeded: true,
            acked: 2,
            failed: 0,
            latency: Duration::from_millis(5),
        };
        assert_eq!(
            round.on_ack(1, None, at(t0, 5)),
            Ok(WriteStep::Decided(outcome))
        );
        assert_eq!(round.outcome(), Some(outcome));
        assert!(!round.is_complete());
        assert_eq!(round.lagging(), [3]);

        assert_eq!(
            round.on_ack(3, None, at(t0, 45)),
            Ok(WriteStep::LateAck {
                node: 3,
                lag: Duration::from_millis(40)
            })
        );
        assert!(round.is_complete());
        assert!(round.lagging().is_empty());
        let summary = round.summary();
        assert_eq!(summary.acked, 3);
        assert_eq!(summary.max_replication_lag, Some(Duration::from_millis(40)));
        assert_eq!(summary.superseded_by, None);
    }

    #[test]
    fn write_fails_as_soon_as_w_is_out_of_reach() {
        let t0 = Instant::now();
        let mut round = WriteRound::new(version(1, 0, 1), &[1, 2, 3], 2, t0).unwrap();
        assert_eq!(round.on_ack(1, None, t0), Ok(WriteStep::Waiting));
        assert_eq!(round.on_failure(2, t0), Ok(WriteStep::Waiting));
        let step = round.on_failure(3, at(t0, 9)).unwrap();
        assert_eq!(
            step,
            WriteStep::Decided(WriteOutcome {
                succeeded: false,
                acked: 1,
                failed: 2,
                latency: Duration::from_millis(9),
            })
        );
        assert!(round.is_complete());
        // The decision never changes, even if a replica given up on acks after all
        // (it did store the write: that is one more replication-lag sample).
        assert_eq!(
            round.on_ack(3, None, at(t0, 19)),
            Ok(WriteStep::LateAck {
                node: 3,
                lag: Duration::from_millis(10)
            })
        );
        assert!(!round.outcome().unwrap().succeeded);
    }

    #[test]
    fn w_equals_n_fails_on_the_first_failure() {
        let t0 = Instant::now();
        let mut round = WriteRound::new(version(1, 0, 1), &[1, 2, 3], 3, t0).unwrap();
        assert!(matches!(round.on_failure(2, t0), Ok(WriteStep::Decided(o)) if !o.succeeded));
    }

    #[test]
    fn rounds_reject_impossible_quorums_and_unknown_nodes() {
        let t0 = Instant::now();
        let v = version(1, 0, 1);
        assert_eq!(
            WriteRound::new(v, &[1, 2, 3], 4, t0).unwrap_err(),
            QuorumError::InvalidQuorum {
                required: 4,
                replicas: 3
            }
        );
        assert!(WriteRound::new(v, &[1, 2, 3], 0, t0).is_err());
        assert!(WriteRound::new(v, &[], 1, t0).is_err());
        assert_eq!(
            WriteRound::new(v, &[1, 2, 1], 2, t0).unwrap_err(),
            QuorumError::DuplicateReplica { node: 1 }
        );
        assert!(ReadRound::new(&[1, 2], 3, t0).is_err());
        assert!(ReadRound::new(&[1, 1], 1, t0).is_err());

        let mut round = WriteRound::new(v, &[1, 2, 3], 2, t0).unwrap();
        assert_eq!(
            round.on_ack(9, None, t0),
            Err(QuorumError::UnknownReplica { node: 9 })
        );
        assert_eq!(
            round.on_failure(9, t0),
            Err(QuorumError::UnknownReplica { node: 9 })
        );
        let mut read = ReadRound::new(&[1, 2, 3], 2, t0).unwrap();
        assert_eq!(
            read.on_response(9, None, t0),
            Err(QuorumError::UnknownReplica { node: 9 })
        );
        assert_eq!(
            read.on_failure(9, t0),
            Err(QuorumError::UnknownReplica { node: 9 })
        );
        assert!(
            QuorumError::InvalidQuorum {
                required: 4,
                replicas: 3
            }
            .to_string()
            .contains("needs 1..=3")
        );
    }

    #[test]
    fn a_stand_in_keeps_a_sloppy_write_available() {
        let t0 = Instant::now();
        let mut round = WriteRound::new(version(1, 0, 1), &[1, 2, 3], 2, t0).unwrap();
        // Node 2 is known down: its write goes to node 4 as a hint for 2.
        assert_eq!(round.stand_in(2, 4, t0), Ok(WriteStep::Waiting));
        assert_eq!(round.on_failure(3, t0), Ok(WriteStep::Waiting));
        assert_eq!(round.on_ack(1, None, t0), Ok(WriteStep::Waiting));
        assert!(matches!(round.on_ack(4, None, t0), Ok(WriteStep::Decided(o)) if o.succeeded));
        let summary = round.summary();
        assert_eq!(
            (summary.acked, summary.acked_by_stand_ins, summary.failed),
            (2, 1, 1)
        );
        // 2 holds nothing yet (its hint is on 4); 3 failed.
        assert_eq!(round.lagging(), [2, 3]);
        // Node 2 was only slow after all: its late ack is harmless.
        assert_eq!(round.on_ack(2, None, t0), Ok(WriteStep::AfterDecision));
        assert_eq!(round.lagging(), [3]);
    }

    #[test]
    fn a_stand_in_does_not_count_under_a_strict_quorum() {
        let t0 = Instant::now();
        let mut round = WriteRound::new(version(1, 0, 1), &[1, 2, 3], 2, t0)
            .unwrap()
            .with_policy(QuorumPolicy::Strict);
        assert_eq!(round.stand_in(2, 4, t0), Ok(WriteStep::Waiting));
        assert_eq!(round.on_ack(4, None, t0), Ok(WriteStep::Waiting));
        assert_eq!(round.on_ack(1, None, t0), Ok(WriteStep::Waiting));
        assert!(matches!(round.on_failure(3, t0), Ok(WriteStep::Decided(o)) if !o.succeeded));
        // The hint still reached 4, and the summary says so.
        assert_eq!(round.summary().acked_by_stand_ins, 1);
    }

    #[test]
    fn stand_ins_can_be_chained_and_are_validated() {
        let t0 = Instant::now();
        let mut round = WriteRound::new(version(1, 0, 1), &[1, 2, 3], 3, t0).unwrap();
        assert_eq!(round.stand_in(2, 4, t0), Ok(WriteStep::Waiting));
        // 4 is down too: try 5 for 2.
        assert_eq!(round.stand_in(2, 5, t0), Ok(WriteStep::Waiting));
        assert_eq!(
            round.stand_in(2, 3, t0),
            Err(QuorumError::DuplicateReplica { node: 3 })
        );
        assert_eq!(
            round.stand_in(2, 4, t0),
            Err(QuorumError::DuplicateReplica { node: 4 })
        );
        assert_eq!(
            round.stand_in(9, 6, t0),
            Err(QuorumError::UnknownReplica { node: 9 })
        );
        round.on_ack(1, None, t0).unwrap();
        assert_eq!(
            round.stand_in(1, 6, t0),
            Err(QuorumError::AlreadyAcked { node: 1 })
        );
        round.on_ack(3, None, t0).unwrap();
        assert!(matches!(round.on_ack(5, None, t0), Ok(WriteStep::Decided(o)) if o.succeeded));
        assert!(round.is_complete(), "2 and 4 were given up on");
    }

    #[test]
    fn a_write_that_lost_to_a_newer_one_is_reported() {
        let t0 = Instant::now();
        let mut round = WriteRound::new(version(10, 0, 1), &[1, 2, 3], 2, t0).unwrap();
        round.on_ack(1, Some(version(5, 0, 2)), t0).unwrap();
        round.on_ack(2, Some(version(12, 0, 2)), t0).unwrap();
        round.on_ack(3, Some(version(11, 0, 3)), t0).unwrap();
        assert_eq!(round.summary().superseded_by, Some(version(12, 0, 2)));
    }

    #[test]
    fn read_answers_the_newest_of_r_and_repairs_the_rest() {
        let t0 = Instant::now();
        let mut round = ReadRound::new(&[1, 2, 3], 2, t0).unwrap();
        assert_eq!(
            round.on_response(1, copy("old", 10), t0),
            Ok(ReadStep::default())
        );
        let step = round.on_response(2, copy("new", 20), at(t0, 7)).unwrap();
        assert_eq!(
            step.answer,
            Some(ReadOutcome::Answered {
                newest: copy("new", 20),
                responded: 2
            })
        );
        assert_eq!(
            step.repairs,
            [Repair {
                node: 1,
                versioned: copy("new", 20).unwrap()
            }]
        );
        assert_eq!(step.stale, None);
        assert_eq!(round.latency(), Some(Duration::from_millis(7)));

        // The third replica has no copy at all: it gets one, and the read was not stale.
        let late = round.on_response(3, None, t0).unwrap();
        assert_eq!(late.answer, None);
        assert_eq!(
            late.repairs,
            [Repair {
                node: 3,
                versioned: copy("new", 20).unwrap()
            }]
        );
        assert_eq!(late.stale, None);
        assert!(round.is_complete());
        assert_eq!(round.stale(), None);
    }

    #[test]
    fn a_newer_copy_after_the_answer_is_a_stale_read() {
        let t0 = Instant::now();
        let mut round = ReadRound::new(&[1, 2, 3], 1, t0).unwrap();
        let step = round.on_response(1, copy("old", 10), t0).unwrap();
        assert_eq!(
            step.answer,
            Some(ReadOutcome::Answered {
                newest: copy("old", 10),
                responded: 1
            })
        );
        assert!(step.repairs.is_empty());

        let late = round.on_response(2, copy("new", 20), t0).unwrap();
        let stale = StaleRead {
            returned: Some(version(10, 0, 1)),
            newer: version(20, 0, 1),
            replica: 2,
        };
        assert_eq!(late.stale, Some(stale));
        assert_eq!(
            late.repairs,
            [Repair {
                node: 1,
                versioned: copy("new", 20).unwrap()
            }]
        );
        assert_eq!(round.stale(), Some(&stale));
        assert_eq!(round.newest(), copy("new", 20).as_ref());

        // Equal to the newest: neither stale nor needing repair.
        let last = round.on_response(3, copy("new", 20), t0).unwrap();
        assert_eq!(last, ReadStep::default());
    }

    #[test]
    fn not_found_then_a_late_copy_is_stale_too() {
        let t0 = Instant::now();
        let mut round = ReadRound::new(&[1, 2, 3], 1, t0).unwrap();
        let step = round.on_response(3, None, t0).unwrap();
        assert_eq!(
            step.answer,
            Some(ReadOutcome::Answered {
                newest: None,
                responded: 1
            })
        );
        let late = round.on_response(1, copy("x", 5), t0).unwrap();
        assert_eq!(late.stale.map(|s| s.returned), Some(None));
        assert_eq!(late.repairs.len(), 1);
        assert_eq!(late.repairs[0].node, 3);
    }

    #[test]
    fn tombstones_are_repaired_like_values() {
        let t0 = Instant::now();
        let mut round = ReadRound::new(&[1, 2], 2, t0).unwrap();
        let del = Versioned::tombstone(version(30, 0, 2));
        round.on_response(1, copy("x", 5), t0).unwrap();
        let step = round.on_response(2, Some(del.clone()), t0).unwrap();
        assert_eq!(
            step.answer,
            Some(ReadOutcome::Answered {
                newest: Some(del.clone()),
                responded: 2
            })
        );
        assert_eq!(
            step.repairs,
            [Repair {
                node: 1,
                versioned: del
            }]
        );
    }

    #[test]
    fn read_fails_once_r_is_out_of_reach_and_nothing_found_needs_no_repair() {
        let t0 = Instant::now();
        let mut round = ReadRound::new(&[1, 2, 3], 2, t0).unwrap();
        assert_eq!(round.on_failure(1, t0).unwrap().answer, None);
        let step = round.on_failure(2, t0).unwrap();
        assert_eq!(
            step.answer,
            Some(ReadOutcome::Failed {
                responded: 0,
                failed: 2
            })
        );
        // A late copy after a failed read is repaired toward nobody else, and not "stale".
        let late = round.on_response(3, copy("x", 1), t0).unwrap();
        assert_eq!(late, ReadStep::default());

        let mut empty = ReadRound::new(&[1, 2, 3], 2, t0).unwrap();
        empty.on_response(1, None, t0).unwrap();
        let step = empty.on_response(2, None, t0).unwrap();
        assert_eq!(
            step.answer,
            Some(ReadOutcome::Answered {
                newest: None,
                responded: 2
            })
        );
        assert!(step.repairs.is_empty());
        // Duplicate responses are ignored.
        assert_eq!(
            empty.on_response(2, copy("x", 1), t0),
            Ok(ReadStep::default())
        );
    }

    #[test]
    fn sloppy_writes_can_be_missed_until_handoff() {
        // Documents the limit of the sloppy quorum: W=2 acked by 1 and a stand-in for 2;
        // an R=2 read answered by 2 and 3 misses the write, although R + W > N.
        let t0 = Instant::now();
        let mut write = WriteRound::new(version(50, 0, 1), &[1, 2, 3], 2, t0).unwrap();
        write.stand_in(2, 4, t0).unwrap();
        write.on_ack(1, None, t0).unwrap();
        assert!(matches!(write.on_ack(4, None, t0), Ok(WriteStep::Decided(o)) if o.succeeded));

        let mut read = ReadRound::new(&[1, 2, 3], 2, t0).unwrap();
        read.on_response(2, copy("before", 10), t0).unwrap();
        let step = read.on_response(3, copy("before", 10), t0).unwrap();
        assert_eq!(
            step.answer,
            Some(ReadOutcome::Answered {
                newest: copy("before", 10),
                responded: 2
            })
        );
        // ... and the late answer from 1 reveals it.
        assert!(
            read.on_response(1, copy("after", 50), t0)
                .unwrap()
                .stale
                .is_some()
        );
    }

    /// A quorum configuration with R + W > N, and the replicas' fates.
    fn arb_overlapping_quorum() -> impl Strategy<Value = (usize, usize, usize)> {
        (1usize..=5)
            .prop_flat_map(|n| (Just(n), 1..=n))
            .prop_flat_map(|(n, w)| {
                // r > n - w
                (Just(n), Just(w), (n - w + 1)..=n)
            })
    }

    proptest! {
        /// Under a strict quorum with R + W > N, a read answered after the write was
        /// acknowledged returns the write (or something newer), whatever the order of
        /// responses and whichever replicas fail.
        #[test]
        fn strict_overlapping_quorums_read_acknowledged_writes(
            (n, w, r) in arb_overlapping_quorum(),
            write_order in Just(()).prop_perturb(|_, mut rng| {
                let mut order: Vec<usize> = (0..5).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
                order
            }),
            write_fails in proptest::collection::vec(any::<bool>(), 5),
            late_applies in proptest::collection::vec(any::<bool>(), 5),
            read_order in Just(()).prop_perturb(|_, mut rng| {
                let mut order: Vec<usize> = (0..5).collect();
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
                order
            }),
            read_fails in proptest::collection::vec(any::<bool>(), 5),
        ) {
            let t0 = Instant::now();
            let replicas: Vec<NodeId> = (1..=n as u64).collect();
            let mut held: Vec<Option<Versioned>> = (0..n).map(|i| copy("old", i as u64)).collect();
            let write = Versioned::value("new", version(100, 0, 9));
            let mut round = WriteRound::new(write.version, &replicas, w, t0)
                .unwrap()
                .with_policy(QuorumPolicy::Strict);
            let mut outcome = None;
            for &i in write_order.iter().filter(|&&i| i < n) {
                let step = if write_fails[i] {
                    round.on_failure(replicas[i], t0).unwrap()
                } else {
                    held[i] = Versioned::merge_opt(held[i].take(), Some(write.clone()));
                    round.on_ack(replicas[i], None, t0).unwrap()
                };
                if let WriteStep::Decided(o) = step {
                    outcome = Some(o);
                    break;
                }
            }
            let outcome = outcome.expect("every replica answered, so the round decided");
            prop_assume!(outcome.succeeded);
            // Some replicas beyond W get the write later (replication lag), some never.
            for i in 0..n {
                if late_applies[i] && !write_fails[i] {
                    held[i] = Versioned::merge_opt(held[i].take(), Some(write.clone()));
                }
            }
            let mut read = ReadRound::new(&replicas, r, t0).unwrap();
            for &i in read_order.iter().filter(|&&i| i < n) {
                let step = if read_fails[i] {
                    read.on_failure(replicas[i], t0).unwrap()
                } else {
                    read.on_response(replicas[i], held[i].clone(), t0).unwrap()
                };
                if let Some(ReadOutcome::Answered { newest, .. }) = step.answer {
                    let got = newest.map(|v| v.version);
                    prop_assert!(got >= Some(write.version), "read {got:?} after acked {}", write.version);
                }
            }
        }

        /// Whatever arrives in whatever order, a write round decides exactly once, and
        /// its decision matches the counts.
        #[test]
        fn write_rounds_decide_once_and_consistently(
            n in 1usize..=5,
            w_seed in 0usize..5,
            events in proptest::collection::vec((0u64..7, 0u8..3), 0..30),
        ) {
            let t0 = Instant::now();
            let w = w_seed % n + 1;
            let replicas: Vec<NodeId> = (1..=n as u64).collect();
            let mut round = WriteRound::new(version(1, 0, 1), &replicas, w, t0).unwrap();
            let mut decisions = 0;
            for (node, kind) in events {
                let step = match kind {
                    0 => round.on_ack(node, None, t0),
                    1 => round.on_failure(node, t0),
                    _ => round.stand_in(node, node + 10, t0),
                };
                if let Ok(WriteStep::Decided(o)) = step {
                    decisions += 1;
                    if o.succeeded {
                        prop_assert!(o.acked >= w);
                    } else {
                        prop_assert!(o.acked < w);
                        prop_assert!(n - o.failed < w);
                    }
                }
            }
            prop_assert!(decisions <= 1);
            if round.is_complete() {
                prop_assert_eq!(decisions, 1, "a complete round has decided");
            }
        }

        /// Stale iff a copy newer than the answer arrived after it; and once everyone has
        /// responded, every responder holds or was sent the newest copy.
        #[test]
        fn read_rounds_flag_stale_reads_and_repair_everyone(
            n in 1usize..=5,
            r_seed in 0usize..5,
            copies in proptest::collection::vec(proptest::option::of(0u64..6), 5),
        ) {
            let t0 = Instant::now();
            let r = r_seed % n + 1;
            let replicas: Vec<NodeId> = (1..=n as u64).collect();
            let mut round = ReadRound::new(&replicas, r, t0).unwrap();
            let mut holds: BTreeMap<NodeId, Option<Version>> = BTreeMap::new();
            let mut answered: Option<Option<Version>> = None;
            let mut expect_stale = false;
            let mut saw_stale = false;
            for (i, &node) in replicas.iter().enumerate() {
                let c = copies[i].map(|p| Versioned::value("v", version(p, 0, 1)));
                let cv = c.as_ref().map(|c| c.version);
                holds.insert(node, cv);
                if answered.is_some_and(|returned| cv > returned) {
                    expect_stale = true;
                }
                let step = round.on_response(node, c, t0).unwrap();
                saw_stale |= step.stale.is_some();
                for repair in step.repairs {
                    let h = holds.get_mut(&repair.node).unwrap();
                    prop_assert!(*h < Some(repair.versioned.version), "useless repair");
                    *h = Some(repair.versioned.version);
                }
                if let Some(ReadOutcome::Answered { newest, .. }) = step.answer {
                    answered = Some(newest.map(|v| v.version));
                }
            }
            prop_assert!(answered.is_some());
            prop_assert_eq!(saw_stale, expect_stale);
            prop_assert_eq!(round.stale().is_some(), expect_stale);
            let newest = holds.values().max().copied().flatten();
            prop_assert!(holds.values().all(|h| *h == newest), "{holds:?}");
        }
    }
}
