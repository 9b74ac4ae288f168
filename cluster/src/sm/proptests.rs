//! Property tests: random operation sequences (with time jumps, clock skew, retries and
//! stale receipts) against the invariants the module docs promise.
//!
//! A sequence is generated as abstract [`Action`]s and turned into [`Command`]s by a
//! driver that feeds earlier responses back in (receipts to ack, tokens to fence with),
//! so acks and fenced writes hit real, stale and bogus receipts and tokens alike.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const QUEUES: [&str; 2] = ["a", "b"];

#[derive(Clone, Debug)]
enum Action {
    Advance(u64),
    /// A command stamped `behind` ms before the state machine's time (a slow new leader).
    Skewed {
        behind: u64,
    },
    Enqueue {
        queue: usize,
        id: u8,
    },
    Receive {
        queue: usize,
        dlq: bool,
        max: u32,
        visibility_ms: Option<u64>,
    },
    Ack {
        pick: usize,
        wrong_queue: bool,
    },
    Nack {
        pick: usize,
        delay_ms: u64,
    },
    Redrive {
        queue: usize,
        max: u32,
    },
    Purge {
        queue: usize,
        dlq: bool,
    },
    Acquire {
        lease: u8,
        holder: u8,
        ttl_ms: u64,
    },
    Renew {
        pick: usize,
    },
    Release {
        pick: usize,
    },
    FencedPut {
        pick: usize,
        key: u8,
    },
    Put {
        key: u8,
        value: u8,
    },
    Cas {
        key: u8,
        expected: Option<u8>,
        new: Option<u8>,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let queue = 0..QUEUES.len();
    prop_oneof![
        3 => (0u64..1_500).prop_map(Action::Advance),
        1 => (0u64..5_000).prop_map(|behind| Action::Skewed { behind }),
        6 => (queue.clone(), 0u8..16).prop_map(|(queue, id)| Action::Enqueue { queue, id }),
        6 => (queue.clone(), prop::bool::weighted(0.2), 1u32..4, prop::option::of(1u64..800))
            .prop_map(|(queue, dlq, max, visibility_ms)| Action::Receive { queue, dlq, max, visibility_ms }),
        4 => (any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(pick, wrong_queue)| Action::Ack { pick, wrong_queue }),
        2 => (any::<usize>(), prop_oneof![Just(0u64), 1u64..600])
            .prop_map(|(pick, delay_ms)| Action::Nack { pick, delay_ms }),
        1 => (queue.clone(), 1u32..4).prop_map(|(queue, max)| Action::Redrive { queue, max }),
        1 => (queue, prop::bool::ANY).prop_map(|(queue, dlq)| Action::Purge { queue, dlq }),
        2 => (0u8..3, 0u8..3, 1u64..2_000)
            .prop_map(|(lease, holder, ttl_ms)| Action::Acquire { lease, holder, ttl_ms }),
        1 => any::<usize>().prop_map(|pick| Action::Renew { pick }),
        1 => any::<usize>().prop_map(|pick| Action::Release { pick }),
        2 => (any::<usize>(), 0u8..3).prop_map(|(pick, key)| Action::FencedPut { pick, key }),
        1 => (0u8..3, 0u8..3).prop_map(|(key, value)| Action::Put { key, value }),
        1 => (0u8..3, prop::option::of(0u8..3), prop::option::of(0u8..3))
            .prop_map(|(key, expected, new)| Action::Cas { key, expected, new }),
    ]
}

fn body(id: &str) -> String {
    format!("payload of {id}")
}

/// What the driver has seen so far, and the model it checks the state machine against.
#[derive(Default)]
struct Driver {
    now: u64,
    /// Every receipt handed out, with the queue it came from.
    receipts: Vec<(String, Receipt)>,
    /// Every lease grant (fresh or extended), including stale ones.
    grants: Vec<LeaseGrant>,
    /// Latest token granted per lease, and the largest token ever granted.
    latest_token: BTreeMap<String, u64>,
    max_token: u64,
    /// Per family: id → number of accepted-and-not-yet-removed copies (must be 0 or 1).
    live: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per family: id → the latest delivery number handed out for it.
    latest_delivery: BTreeMap<String, BTreeMap<String, u64>>,
    max_now: u64,
}

fn family_of(queue: &str) -> &str {
    queue.strip_suffix(".dlq").unwrap_or(queue)
}

fn peek_ids(sm: &StateMachine, queue: &str) -> Vec<String> {
    match sm.query(&Query::Peek {
        queue: queue.into(),
        max: limits::MAX_QUERY_RESULTS,
        now_ms: 0,
    }) {
        QueryResponse::Messages(m) => m.into_iter().map(|m| m.message_id).collect(),
        QueryResponse::Error(SmError::Queue(QueueError::NotFound { .. })) => Vec::new(),
        other => panic!("peek {queue}: {other:?}"),
    }
}

impl Driver {
    fn command(&mut self, action: &Action, sm: &StateMachine) -> Command {
        let queue_name = |q: usize, dlq: bool| {
            if dlq {
                format!("{}.dlq", QUEUES[q])
            } else {
                QUEUES[q].to_owned()
            }
        };
        let receipt = |pick: usize, receipts: &[(String, Receipt)]| {
            if receipts.is_empty() {
                (
                    "a".to_owned(),
                    Receipt {
                        message_id: "m0".into(),
                        delivery: 1,
                    },
                )
            } else {
                receipts[pick % receipts.len()].clone()
            }
        };
        let op = match action {
            Action::Advance(ms) => {
                self.now += ms;
                Op::Delete { key: "tick".into() }
            }
            Action::Skewed { behind } => {
                return Command::new(
                    self.now.saturating_sub(*behind),
                    Op::Put {
                        key: "skewed".into(),
                        value: behind.to_string(),
                    },
                );
            }
            Action::Enqueue { queue, id } => {
                let id = format!("m{id}");
                Op::Enqueue {
                    queue: QUEUES[*queue].into(),
                    body: body(&id),
                    message_id: id,
                }
            }
            Action::Receive {
                queue,
                dlq,
                max,
                visibility_ms,
            } => Op::Receive {
                queue: queue_name(*queue, *dlq),
                consumer: format!("c{queue}"),
                max: *max,
                visibility_ms: *visibility_ms,
            },
            Action::Ack { pick, wrong_queue } => {
                let (mut queue, receipt) = receipt(*pick, &self.receipts);
                if *wrong_queue {
                    queue = if queue.ends_with(".dlq") {
                        family_of(&queue).to_owned()
                    } else {
                        format!("{queue}.dlq")
                    };
                }
                Op::Ack { queue, receipt }
            }
            Action::Nack { pick, delay_ms } => {
                let (queue, receipt) = receipt(*pick, &self.receipts);
                Op::Nack {
                    queue,
                    receipt,
                    delay_ms: *delay_ms,
                    reason: Some("flaky".into()),
                }
            }
            Action::Redrive { queue, max } => Op::Redrive {
                queue: queue_name(*queue, true),
                max: *max,
            },
            Action::Purge { queue, dlq } => {
                // The model learns what a purge removes from the queue's contents.
                let name = queue_name(*queue, *dlq);
                let family = self.live.entry(QUEUES[*queue].to_owned()).or_default();
                for id in peek_ids(sm, &name) {
                    *family.entry(id).or_default() -= 1;
                }
                Op::Purge { queue: name }
            }
            Action::Acquire {
                lease,
                holder,
                ttl_ms,
            } => Op::AcquireLease {
                name: format!("l{lease}"),
                holder: format!("h{holder}"),
                ttl_ms: *ttl_ms,
            },
            Action::Renew { pick } | Action::Release { pick } => {
                let g = self
                    .grants
                    .get(pick % self.grants.len().max(1))
                    .cloned()
                    .unwrap_or(LeaseGrant {
                        name: "l0".into(),
                        holder: "h0".into(),
                        token: 1,
                        ttl_ms: 1,
                        expires_at_ms: 0,
                        extended: false,
                    });
                if matches!(action, Action::Renew { .. }) {
                    Op::RenewLease {
                        name: g.name,
                        holder: g.holder,
                        token: g.token,
                    }
                } else {
                    Op::ReleaseLease {
                        name: g.name,
                        holder: g.holder,
                        token: g.token,
                    }
                }
            }
            Action::FencedPut { pick, key } => {
                let (lease, token) = match self.grants.get(pick % self.grants.len().max(1)) {
                    Some(g) => (g.name.clone(), g.token),
                    None => ("l0".to_owned(), 1),
                };
                Op::FencedPut {
                    key: format!("k{key}"),
                    value: format!("{lease}@{token}"),
                    lease,
                    token,
                }
            }
            Action::Put { key, value } => Op::Put {
                key: format!("k{key}"),
                value: format!("v{value}"),
            },
            Action::Cas { key, expected, new } => Op::CompareAndSet {
                key: format!("k{key}"),
                expected: expected.map(|v| format!("v{v}")),
                new: new.map(|v| format!("v{v}")),
            },
        };
        Command::new(self.now, op)
    }

    /// Learns from a response and checks it against the model.
    fn observe(&mut self, command: &Command, response: &Response) {
        self.max_now = self.max_now.max(command.now_ms);
        match (&command.op, response) {
            (
                Op::Enqueue {
                    queue, message_id, ..
                },
                Response::Enqueued(e),
            ) if !e.duplicate => {
                *self
                    .live
                    .entry(queue.clone())
                    .or_default()
                    .entry(message_id.clone())
                    .or_default() += 1;
            }
            (Op::Receive { queue, .. }, Response::Received(r)) => {
                let family = family_of(queue).to_owned();
                let mut last_enqueued = 0;
                for d in &r.messages {
                    assert_eq!(d.body, body(&d.message_id), "body intact");
                    assert_eq!(d.receipt.message_id, d.message_id);
                    assert!(d.delivery_count >= 1);
                    assert!(
                        d.enqueued_at_ms >= last_enqueued,
                        "FIFO within a receive: {r:?}"
                    );
                    last_enqueued = d.enqueued_at_ms;
                    let latest = self.latest_delivery.entry(family.clone()).or_default();
                    let previous = latest.insert(d.message_id.clone(), d.receipt.delivery);
                    assert!(
                        previous.is_none_or(|p| p < d.receipt.delivery),
                        "delivery numbers increase"
                    );
                    self.receipts.push((queue.clone(), d.receipt.clone()));
                }
                if queue.ends_with(".dlq") {
                    assert!(r.dead_lettered.is_empty(), "a DLQ never dead-letters");
                }
            }
            (Op::Ack { queue, receipt }, Response::Acked(a)) if !a.duplicate => {
                let family = family_of(queue);
                let latest = self
                    .latest_delivery
                    .get(family)
                    .and_then(|l| l.get(&receipt.message_id));
                assert_eq!(
                    latest,
                    Some(&receipt.delivery),
                    "only the latest delivery may be acked"
                );
                *self
                    .live
                    .entry(family.to_owned())
                    .or_default()
                    .entry(receipt.message_id.clone())
                    .or_default() -= 1;
            }
            (Op::AcquireLease { name, .. }, Response::Lease(g)) => {
                if !g.extended {
                    assert!(g.token > self.max_token, "tokens strictly increase");
                    self.max_token = g.token;
                    self.latest_token.insert(name.clone(), g.token);
                }
                self.grants.push(g.clone());
            }
            (Op::FencedPut { lease, token, .. }, Response::Written(_)) => {
                assert_eq!(
                    self.latest_token.get(lease),
                    Some(token),
                    "fenced write with a stale token accepted"
                );
            }
            (
                Op::FencedPut { lease, token, .. },
                Response::Error(SmError::Lease(LeaseError::StaleToken { .. })),
            ) => {
                assert!(
                    self.latest_token
                        .get(lease)
                        .is_some_and(|latest| token < latest)
                );
            }
            _ => {}
        }
    }

    /// Every accepted message is in exactly one place: visible, in flight or delayed in its
    /// queue, in its DLQ — or acked or purged (then in neither).
    fn check_no_loss(&self, sm: &StateMachine) {
        assert_eq!(sm.clock_ms(), self.max_now, "time is the max of all stamps");
        sm.check_invariants().unwrap();
        for queue in QUEUES {
            let mut held: BTreeMap<String, i64> = BTreeMap::new();
            for lane in [queue.to_owned(), format!("{queue}.dlq")] {
                for id in peek_ids(sm, &lane) {
                    *held.entry(id).or_default() += 1;
                }
            }
            let expected: BTreeMap<String, i64> = self
                .live
                .get(queue)
                .into_iter()
                .flatten()
                .filter(|(_, n)| **n != 0)
                .map(|(id, n)| (id.clone(), *n))
                .collect();
            assert_eq!(held, expected, "queue {queue}: held messages vs model");
        }
        for q in sm.stats(0).queues {
            for lane in [&q.main, &q.dead_letter] {
                assert_eq!(
                    lane.depth,
                    lane.visible + lane.in_flight + lane.delayed,
                    "{q:?}"
                );
            }
            assert!(q.main.depth + q.dead_letter.depth <= q.totals.enqueued);
        }
    }
}

/// Runs the driver over `actions`; returns the commands and responses.
fn drive(actions: &[Action]) -> (StateMachine, Vec<Command>, Vec<Response>) {
    let mut sm = StateMachine::new();
    let mut driver = Driver {
        now: 1_000,
        ..Driver::default()
    };
    let mut commands = Vec::new();
    let mut responses = Vec::new();
    let setup = Command::new(
        driver.now,
        Op::CreateQueue {
            queue: "a".into(),
            max_deliveries: Some(2),
            visibility_timeout_ms: Some(300),
        },
    );
    let response = sm.apply(setup.clone());
    driver.observe(&setup, &response);
    responses.push(response);
    commands.push(setup);
    for action in actions {
        let command = driver.command(action, &sm);
        let response = sm.apply(command.clone());
        driver.observe(&command, &response);
        driver.check_no_loss(&sm);
        commands.push(command);
        responses.push(response);
    }
    (sm, commands, responses)
}

fn replay(mut sm: StateMachine, commands: &[Command]) -> (StateMachine, Vec<Response>) {
    let responses = commands.iter().map(|c| sm.apply(c.clone())).collect();
    (sm, responses)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No message is lost or duplicated, stale receipts and tokens are refused, tokens
    /// increase, time is monotonic, indexes and counters stay consistent (checked after
    /// every command inside `drive`).
    #[test]
    fn random_histories_keep_every_invariant(actions in prop::collection::vec(action(), 1..200)) {
        drive(&actions);
    }
}

// Each case below also runs every check of `drive`; fewer cases keep the suite quick.
proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Replicas applying the same log agree on every response and on the state.
    #[test]
    fn applying_the_same_log_twice_gives_the_same_state(actions in prop::collection::vec(action(), 1..150)) {
        let (sm, commands, responses) = drive(&actions);
        let (again, again_responses) = replay(StateMachine::new(), &commands);
        prop_assert_eq!(&again_responses, &responses);
        prop_assert_eq!(again.digest(), sm.digest());
        prop_assert_eq!(again, sm);
    }

    /// A replica restored from a snapshot taken mid-log continues exactly like one that
    /// applied the whole log.
    #[test]
    fn snapshot_mid_log_then_continue_is_the_same(
        actions in prop::collection::vec(action(), 1..150),
        split in any::<prop::sample::Index>(),
    ) {
        let (sm, commands, responses) = drive(&actions);
        let k = split.index(commands.len() + 1);
        let (prefix, _) = replay(StateMachine::new(), &commands[..k]);
        let bytes = prefix.to_snapshot().unwrap();
        let restored = StateMachine::from_snapshot(&bytes).unwrap();
        prop_assert_eq!(&restored, &prefix);
        prop_assert_eq!(restored.to_snapshot().unwrap(), bytes);
        let (end, rest) = replay(restored, &commands[k..]);
        prop_assert_eq!(&rest[..], &responses[k..]);
        prop_assert_eq!(end, sm);
    }

    /// Arbitrary bytes never panic the snapshot reader.
    #[test]
    fn garbage_snapshots_are_errors_not_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = StateMachine::from_snapshot(&bytes);
    }
}

/// The generator must reach the interesting paths, or the properties above prove little:
/// count the outcomes over a fixed set of generated histories.
#[test]
fn generated_histories_reach_every_interesting_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(action(), 150);
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for _ in 0..64 {
        let actions = strategy.new_tree(&mut runner).unwrap().current();
        let (_, commands, responses) = drive(&actions);
        for (c, r) in commands.iter().zip(&responses) {
            let outcome = match (&c.op, r) {
                (Op::Enqueue { .. }, Response::Enqueued(e)) if e.duplicate => "duplicate enqueue",
                (_, Response::Received(r)) if !r.dead_lettered.is_empty() => "dead-lettered",
                (_, Response::Received(r)) if r.messages.iter().any(|d| d.delivery_count > 1) => {
                    "redelivered"
                }
                (_, Response::Acked(a)) if a.duplicate => "retried ack",
                (_, Response::Acked(_)) => "acked",
                (_, Response::Nacked(_)) => "nacked",
                (_, Response::Redriven(r)) if !r.message_ids.is_empty() => "redriven",
                (_, Response::Purged(p)) if p.purged > 0 => "purged",
                (Op::FencedPut { .. }, Response::Written(_)) => "fenced write accepted",
                (_, Response::Error(SmError::Lease(LeaseError::StaleToken { .. }))) => {
                    "fenced write refused"
                }
                (_, Response::Error(SmError::Lease(LeaseError::Held { .. }))) => "lease contended",
                (_, Response::Lease(g)) if g.extended => "lease extended",
                (_, Response::Error(SmError::Queue(QueueError::StaleReceipt { .. }))) => {
                    "stale receipt"
                }
                (_, Response::Cas(c)) if c.swapped => "cas swapped",
                _ => continue,
            };
            *seen.entry(outcome).or_default() += 1;
        }
    }
    let expected = [
        "duplicate enqueue",
        "dead-lettered",
        "redelivered",
        "retried ack",
        "acked",
        "nacked",
        "redriven",
        "purged",
        "fenced write accepted",
        "fenced write refused",
        "lease contended",
        "lease extended",
        "stale receipt",
        "cas swapped",
    ];
    for outcome in expected {
        assert!(
            seen.get(outcome).is_some_and(|n| *n >= 3),
            "{outcome} too rare: {seen:?}"
        );
    }
}
