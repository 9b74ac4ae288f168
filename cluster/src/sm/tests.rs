//! Unit tests of the state machine: one scenario per behaviour the module docs promise.

use super::*;

/// Unwraps the expected `Response` variant or fails with the actual response.
macro_rules! expect {
    ($response:expr, $variant:path) => {
        match $response {
            $variant(inner) => inner,
            other => panic!("expected {}, got {other:?}", stringify!($variant)),
        }
    };
}

/// A state machine driven at a settable time; every step checks the internal invariants.
struct Sim {
    sm: StateMachine,
    now: u64,
}

impl Sim {
    fn new() -> Self {
        Sim {
            sm: StateMachine::new(),
            now: 1_000_000,
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    fn apply(&mut self, op: Op) -> Response {
        let response = self.sm.apply(Command::new(self.now, op));
        self.sm.check_invariants().unwrap();
        response
    }

    fn error(&mut self, op: Op) -> SmError {
        expect!(self.apply(op), Response::Error)
    }

    fn put(&mut self, key: &str, value: &str) -> WriteOutcome {
        expect!(
            self.apply(Op::Put {
                key: key.into(),
                value: value.into()
            }),
            Response::Written
        )
    }

    fn get(&self, key: &str) -> Option<Entry> {
        expect!(
            self.sm.query(&Query::Get { key: key.into() }),
            QueryResponse::Value
        )
    }

    fn acquire(&mut self, name: &str, holder: &str, ttl_ms: u64) -> Response {
        self.apply(Op::AcquireLease {
            name: name.into(),
            holder: holder.into(),
            ttl_ms,
        })
    }

    fn fenced_put(&mut self, key: &str, value: &str, lease: &str, token: u64) -> Response {
        self.apply(Op::FencedPut {
            key: key.into(),
            value: value.into(),
            lease: lease.into(),
            token,
        })
    }

    fn create(&mut self, queue: &str, max_deliveries: u32, visibility_ms: u64) {
        let r = self.apply(Op::CreateQueue {
            queue: queue.into(),
            max_deliveries: Some(max_deliveries),
            visibility_timeout_ms: Some(visibility_ms),
        });
        assert!(
            matches!(r, Response::QueueCreated { created: true, .. }),
            "{r:?}"
        );
    }

    fn enqueue(&mut self, queue: &str, id: &str) -> EnqueueOutcome {
        expect!(
            self.apply(Op::Enqueue {
                queue: queue.into(),
                message_id: id.into(),
                body: format!("body of {id}"),
            }),
            Response::Enqueued
        )
    }

    fn receive(&mut self, queue: &str, max: u32) -> ReceiveOutcome {
        expect!(
            self.apply(Op::Receive {
                queue: queue.into(),
                consumer: "worker-1".into(),
                max,
                visibility_ms: None,
            }),
            Response::Received
        )
    }

    fn ids(&mut self, queue: &str, max: u32) -> Vec<String> {
        self.receive(queue, max)
            .messages
            .into_iter()
            .map(|d| d.message_id)
            .collect()
    }

    fn ack(&mut self, queue: &str, receipt: &Receipt) -> Response {
        self.apply(Op::Ack {
            queue: queue.into(),
            receipt: receipt.clone(),
        })
    }

    fn nack(&mut self, queue: &str, receipt: &Receipt, delay_ms: u64, reason: &str) -> Response {
        self.apply(Op::Nack {
            queue: queue.into(),
            receipt: receipt.clone(),
            delay_ms,
            reason: Some(reason.into()),
        })
    }

    fn stats(&self, queue: &str) -> QueueStats {
        self.sm
            .stats(self.now)
            .queues
            .into_iter()
            .find(|q| q.queue == queue)
            .unwrap()
    }
}

fn invalid_field(e: &SmError) -> &str {
    match e {
        SmError::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

// ---------------------------------------------------------------- metadata

#[test]
fn put_get_delete_with_revisions() {
    let mut s = Sim::new();
    let w1 = s.put("a", "1");
    assert_eq!((w1.revision, w1.previous), (1, None));
    let w2 = s.put("a", "2");
    assert_eq!((w2.revision, w2.previous.as_deref()), (2, Some("1")));
    assert_eq!(
        s.get("a"),
        Some(Entry {
            value: "2".into(),
            revision: 2
        })
    );

    let d = expect!(s.apply(Op::Delete { key: "a".into() }), Response::Deleted);
    assert_eq!((d.previous.as_deref(), d.revision), (Some("2"), 3));
    assert_eq!(s.get("a"), None);
    // Deleting an absent key changes nothing, not even the revision.
    let d = expect!(s.apply(Op::Delete { key: "a".into() }), Response::Deleted);
    assert_eq!((d.previous, d.revision), (None, 3));
}

#[test]
fn compare_and_set_compares_values_and_absence() {
    let mut s = Sim::new();
    let cas = |expected: Option<&str>, new: Option<&str>| Op::CompareAndSet {
        key: "leader".into(),
        expected: expected.map(Into::into),
        new: new.map(Into::into),
    };
    // Create only if absent.
    let c = expect!(s.apply(cas(None, Some("n1"))), Response::Cas);
    assert!(c.swapped);
    assert_eq!(c.current.unwrap().value, "n1");
    // Again: now present, so the mismatch reports the current value.
    let c = expect!(s.apply(cas(None, Some("n2"))), Response::Cas);
    assert!(!c.swapped);
    assert_eq!(c.current.unwrap().value, "n1");
    // Wrong expectation.
    let c = expect!(s.apply(cas(Some("n9"), Some("n2"))), Response::Cas);
    assert!(!c.swapped);
    assert_eq!(s.get("leader").unwrap().value, "n1");
    // Right expectation; then delete by CAS.
    assert!(expect!(s.apply(cas(Some("n1"), Some("n2"))), Response::Cas).swapped);
    let c = expect!(s.apply(cas(Some("n2"), None)), Response::Cas);
    assert!(c.swapped && c.current.is_none());
    assert_eq!(s.get("leader"), None);
}

#[test]
fn list_returns_keys_with_prefix_in_order() {
    let mut s = Sim::new();
    for k in ["svc/b", "svc/a", "svd/x", "sv", "svc/c"] {
        s.put(k, k);
    }
    let entries = expect!(
        s.sm.query(&Query::List {
            prefix: "svc/".into(),
            limit: 2
        }),
        QueryResponse::Entries
    );
    let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["svc/a", "svc/b"]);
    let e = expect!(
        s.sm.query(&Query::List {
            prefix: String::new(),
            limit: 0
        }),
        QueryResponse::Error
    );
    assert_eq!(invalid_field(&e), "limit");
}

#[test]
fn bad_metadata_input_is_refused_without_change() {
    let mut s = Sim::new();
    let e = s.error(Op::Put {
        key: String::new(),
        value: "v".into(),
    });
    assert_eq!(invalid_field(&e), "key");
    assert!(e.to_string().contains("must not be empty"), "{e}");
    let e = s.error(Op::Put {
        key: "k\u{7}".into(),
        value: "v".into(),
    });
    assert!(e.to_string().contains("control character"), "{e}");
    let e = s.error(Op::Put {
        key: "k".into(),
        value: "x".repeat(limits::MAX_VALUE_BYTES + 1),
    });
    assert_eq!(invalid_field(&e), "value");
    let e = s.error(Op::Put {
        key: "k".repeat(limits::MAX_NAME_BYTES + 1),
        value: "v".into(),
    });
    assert!(e.to_string().contains("the limit is 256"), "{e}");
    assert_eq!(s.sm.stats(0).metadata_keys, 0);
    assert_eq!(s.sm.stats(0).metadata_revision, 0);
}

// ---------------------------------------------------------------- time

#[test]
fn time_never_moves_backwards() {
    let mut s = Sim::new();
    let t0 = s.now;
    let grant = expect!(s.acquire("l", "a", 1_000), Response::Lease);
    assert_eq!(grant.expires_at_ms, t0 + 1_000);
    // A new leader with a clock 10 s behind proposes: the state machine keeps its time,
    // so the lease does not get 10 s more life and its expiry still counts.
    s.now = t0 + 2_000;
    let r = s.apply(Op::Put {
        key: "k".into(),
        value: "v".into(),
    });
    assert!(!r.is_error());
    s.now = t0 - 10_000;
    let grant = expect!(s.acquire("l", "b", 1_000), Response::Lease);
    assert_eq!(s.sm.clock_ms(), t0 + 2_000);
    assert_eq!(
        grant.expires_at_ms,
        t0 + 3_000,
        "measured from the SM's time"
    );
    assert!(!grant.extended);
}

// ---------------------------------------------------------------- leases

#[test]
fn lease_contention_reports_the_holder_and_expiry() {
    let mut s = Sim::new();
    let a = expect!(s.acquire("gateway", "node-1", 5_000), Response::Lease);
    s.advance(1_000);
    let e = expect!(s.acquire("gateway", "node-2", 5_000), Response::Error);
    assert_eq!(
        e,
        SmError::Lease(LeaseError::Held {
            lease: "gateway".into(),
            holder: "node-1".into(),
            token: a.token,
            expires_at_ms: a.expires_at_ms,
            remaining_ms: 4_000,
        })
    );
    assert!(e.to_string().contains("held by `node-1`"), "{e}");
}

#[test]
fn tokens_strictly_increase_across_all_leases() {
    let mut s = Sim::new();
    let mut last = 0;
    for (name, holder) in [("a", "x"), ("b", "x"), ("a", "x"), ("c", "y")] {
        let g = expect!(s.acquire(name, holder, 1_000), Response::Lease);
        if g.extended {
            // Re-acquiring a lease one holds keeps the token (retry-safe).
            assert_eq!((name, g.token), ("a", 1));
        } else {
            assert!(g.token > last, "{} after {last}", g.token);
            last = g.token;
        }
    }
    assert_eq!(last, 3);
    // After expiry the same holder gets a fresh, larger token.
    s.advance(1_000);
    let g = expect!(s.acquire("a", "x", 1_000), Response::Lease);
    assert!(!g.extended);
    assert_eq!(g.token, 4);
    assert_eq!(s.sm.stats(s.now).last_fencing_token, 4);
}

#[test]
fn renew_extends_only_a_live_lease_of_its_holder() {
    let mut s = Sim::new();
    let g = expect!(s.acquire("l", "a", 1_000), Response::Lease);
    s.advance(900);
    let r = expect!(
        s.apply(Op::RenewLease {
            name: "l".into(),
            holder: "a".into(),
            token: g.token
        }),
        Response::Lease
    );
    assert_eq!(r.expires_at_ms, s.now + 1_000);
    assert_eq!(r.token, g.token);

    // Wrong token or holder.
    let e = s.error(Op::RenewLease {
        name: "l".into(),
        holder: "b".into(),
        token: g.token,
    });
    assert!(
        matches!(e, SmError::Lease(LeaseError::NotHolder { .. })),
        "{e:?}"
    );

    // Expired: lost, even though nobody else took it.
    s.advance(1_000);
    let e = s.error(Op::RenewLease {
        name: "l".into(),
        holder: "a".into(),
        token: g.token,
    });
    assert!(
        matches!(e, SmError::Lease(LeaseError::Expired { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("acquire it again"), "{e}");
    let info = expect!(
        s.sm.query(&Query::Lease {
            name: "l".into(),
            now_ms: 0
        }),
        QueryResponse::Lease
    )
    .unwrap();
    assert!(!info.live);
    assert_eq!(s.sm.stats(s.now).leases_live, 0);
    assert_eq!(s.sm.stats(s.now).leases_known, 1);

    let e = s.error(Op::RenewLease {
        name: "nope".into(),
        holder: "a".into(),
        token: 1,
    });
    assert!(
        matches!(e, SmError::Lease(LeaseError::Unknown { .. })),
        "{e:?}"
    );
}

#[test]
fn release_frees_the_lease_and_is_retry_safe() {
    let mut s = Sim::new();
    let g = expect!(s.acquire("l", "a", 10_000), Response::Lease);
    let release = |holder: &str, token| Op::ReleaseLease {
        name: "l".into(),
        holder: holder.into(),
        token,
    };
    let e = s.error(release("b", g.token));
    assert!(
        matches!(e, SmError::Lease(LeaseError::NotHolder { .. })),
        "{e:?}"
    );
    assert_eq!(
        s.apply(release("a", g.token)),
        Response::LeaseReleased {
            name: "l".into(),
            was_live: true
        }
    );
    // Retried release: fine, nothing held.
    assert_eq!(
        s.apply(release("a", g.token)),
        Response::LeaseReleased {
            name: "l".into(),
            was_live: false
        }
    );
    // Free for someone else at once, with a new token.
    let b = expect!(s.acquire("l", "b", 10_000), Response::Lease);
    assert!(b.token > g.token);
    // The old holder's release no longer applies.
    let e = s.error(release("a", g.token));
    assert!(
        matches!(e, SmError::Lease(LeaseError::NotHolder { .. })),
        "{e:?}"
    );
}

#[test]
fn bad_lease_input_is_refused() {
    let mut s = Sim::new();
    let e = expect!(s.acquire("l", "a", 0), Response::Error);
    assert_eq!(invalid_field(&e), "ttl_ms");
    let e = expect!(
        s.acquire("l", "a", limits::MAX_LEASE_TTL_MS + 1),
        Response::Error
    );
    assert!(e.to_string().contains("24 h"), "{e}");
    let e = expect!(s.acquire("", "a", 10), Response::Error);
    assert_eq!(invalid_field(&e), "lease name");
    let e = expect!(s.acquire("l", "", 10), Response::Error);
    assert_eq!(invalid_field(&e), "holder");
    assert_eq!(s.sm.stats(s.now).leases_known, 0);
    // A huge now cannot overflow the expiry.
    s.now = u64::MAX - 5;
    let g = expect!(s.acquire("l", "a", 1_000), Response::Lease);
    assert_eq!(g.expires_at_ms, u64::MAX);
}

// ---------------------------------------------------------------- fencing

/// The partition-leader scenario: the old holder is paused past its lease, a new holder
/// takes over and writes; the old holder wakes up and writes with its old token.
#[test]
fn stale_leader_writes_are_fenced() {
    let mut s = Sim::new();
    let old = expect!(s.acquire("shard-1", "node-1", 3_000), Response::Lease);
    assert!(
        !s.fenced_put("owner", "node-1", "shard-1", old.token)
            .is_error()
    );

    s.advance(5_000); // node-1 paused; its lease expires
    let new = expect!(s.acquire("shard-1", "node-2", 3_000), Response::Lease);
    assert!(new.token > old.token);
    assert!(
        !s.fenced_put("owner", "node-2", "shard-1", new.token)
            .is_error()
    );

    let e = expect!(
        s.fenced_put("owner", "node-1 again", "shard-1", old.token),
        Response::Error
    );
    assert_eq!(
        e,
        SmError::Lease(LeaseError::StaleToken {
            lease: "shard-1".into(),
            presented: old.token,
            latest: new.token,
            holder: Some("node-2".into()),
        })
    );
    assert!(e.to_string().contains("fenced write refused"), "{e}");
    assert_eq!(s.get("owner").unwrap().value, "node-2");
}

#[test]
fn fencing_checks_tokens_not_liveness() {
    let mut s = Sim::new();
    let g = expect!(s.acquire("l", "a", 1_000), Response::Lease);
    s.advance(5_000);
    // Lapsed, but no successor: no newer writer to protect, the write is accepted.
    assert!(!s.fenced_put("k", "v", "l", g.token).is_error());
    // A token from another lease (larger, never issued for `l`) is refused.
    let other = expect!(s.acquire("m", "a", 1_000), Response::Lease);
    let e = expect!(s.fenced_put("k", "w", "l", other.token), Response::Error);
    assert!(
        matches!(e, SmError::Lease(LeaseError::TokenNotIssued { .. })),
        "{e:?}"
    );
    let e = expect!(s.fenced_put("k", "w", "nope", 1), Response::Error);
    assert!(
        matches!(e, SmError::Lease(LeaseError::Unknown { .. })),
        "{e:?}"
    );
    // Bad input is reported before the token is looked at.
    let e = expect!(s.fenced_put("", "w", "l", g.token), Response::Error);
    assert_eq!(invalid_field(&e), "key");
    assert_eq!(s.get("k").unwrap().value, "v");
}

// ---------------------------------------------------------------- queues: setup

#[test]
fn create_is_idempotent_and_validates() {
    let mut s = Sim::new();
    s.create("jobs", 3, 1_000);
    let r = s.apply(Op::CreateQueue {
        queue: "jobs".into(),
        max_deliveries: Some(3),
        visibility_timeout_ms: Some(1_000),
    });
    assert!(
        matches!(r, Response::QueueCreated { created: false, .. }),
        "{r:?}"
    );
    let e = s.error(Op::CreateQueue {
        queue: "jobs".into(),
        max_deliveries: None,
        visibility_timeout_ms: None,
    });
    assert!(
        matches!(e, SmError::Queue(QueueError::ConfigConflict { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("max_deliveries 3"), "{e}");

    let create = |name: &str, max: Option<u32>, vis: Option<u64>| Op::CreateQueue {
        queue: name.into(),
        max_deliveries: max,
        visibility_timeout_ms: vis,
    };
    let e = s.error(create("jobs.dlq", None, None));
    assert!(e.to_string().contains("dead-letter queue of `jobs`"), "{e}");
    assert_eq!(
        invalid_field(&s.error(create("", None, None))),
        "queue name"
    );
    assert_eq!(
        invalid_field(&s.error(create("a b", None, None))),
        "queue name"
    );
    assert_eq!(
        invalid_field(&s.error(create(".dlq", None, None))),
        "queue name"
    );
    assert_eq!(
        invalid_field(&s.error(create("q", Some(0), None))),
        "max_deliveries"
    );
    assert_eq!(
        invalid_field(&s.error(create("q", None, Some(0)))),
        "visibility_timeout_ms"
    );
    assert_eq!(
        invalid_field(&s.error(create("q", None, Some(limits::MAX_VISIBILITY_MS + 1)))),
        "visibility_timeout_ms"
    );
    assert_eq!(s.sm.stats(0).queues.len(), 1);
}

#[test]
fn enqueue_creates_the_queue_with_defaults() {
    let mut s = Sim::new();
    let e = s.enqueue("orders", "m1");
    assert!(e.created_queue && !e.duplicate);
    assert_eq!(e.status, MessageStatus::Visible);
    let stats = s.stats("orders");
    assert_eq!(stats.config, QueueConfig::default());
    assert_eq!(stats.config.max_deliveries, 5);
    assert_eq!(stats.config.visibility_timeout_ms, 30_000);
    assert_eq!(stats.dlq, "orders.dlq");
    assert!(!s.enqueue("orders", "m2").created_queue);

    let e = s.error(Op::Enqueue {
        queue: "orders.dlq".into(),
        message_id: "m3".into(),
        body: String::new(),
    });
    assert!(
        matches!(e, SmError::Queue(QueueError::IsDeadLetterQueue { .. })),
        "{e:?}"
    );
    let e = s.error(Op::Enqueue {
        queue: "orders".into(),
        message_id: String::new(),
        body: String::new(),
    });
    assert_eq!(invalid_field(&e), "message id");
    let e = s.error(Op::Enqueue {
        queue: "orders".into(),
        message_id: "big".into(),
        body: "x".repeat(limits::MAX_BODY_BYTES + 1),
    });
    assert_eq!(invalid_field(&e), "message body");
}

#[test]
fn operations_on_a_missing_queue_say_so() {
    let mut s = Sim::new();
    let e = expect!(
        s.apply(Op::Receive {
            queue: "nope".into(),
            consumer: "c".into(),
            max: 1,
            visibility_ms: None
        }),
        Response::Error
    );
    assert_eq!(
        e,
        SmError::Queue(QueueError::NotFound {
            queue: "nope".into()
        })
    );
    let e = s.error(Op::Purge {
        queue: "nope.dlq".into(),
    });
    assert!(e.to_string().contains("`nope.dlq` does not exist"), "{e}");
}

// ---------------------------------------------------------------- queues: delivery

#[test]
fn enqueue_is_idempotent_by_message_id() {
    let mut s = Sim::new();
    s.enqueue("q", "m1");
    let dup = s.enqueue("q", "m1");
    assert!(dup.duplicate);
    assert_eq!(s.ids("q", 10), ["m1"]);
    // While in flight, a retried enqueue says where the first copy is.
    let dup = s.enqueue("q", "m1");
    assert!(
        matches!(dup.status, MessageStatus::InFlight { .. }),
        "{dup:?}"
    );
    let stats = s.stats("q");
    assert_eq!((stats.totals.enqueued, stats.totals.duplicates), (1, 2));
    assert_eq!(stats.main.depth, 1);
}

#[test]
fn acked_ids_are_remembered_for_the_dedup_window() {
    let mut s = Sim::new();
    s.enqueue("q", "m1");
    let d = s.receive("q", 1).messages.remove(0);
    expect!(s.ack("q", &d.receipt), Response::Acked);
    s.advance(limits::DEDUP_WINDOW_MS - 1);
    let dup = s.enqueue("q", "m1");
    assert!(dup.duplicate);
    assert!(matches!(dup.status, MessageStatus::Acked { .. }), "{dup:?}");
    s.advance(1);
    // Window over: the id is new again.
    assert!(!s.enqueue("q", "m1").duplicate);
    assert_eq!(s.ids("q", 10), ["m1"]);
}

#[test]
fn receive_is_fifo_and_hides_messages_until_the_timeout() {
    let mut s = Sim::new();
    s.create("q", 5, 1_000);
    for id in ["m1", "m2", "m3"] {
        s.enqueue("q", id);
    }
    let first = s.receive("q", 2);
    assert_eq!(first.queue, "q");
    let got: Vec<_> = first
        .messages
        .iter()
        .map(|d| d.message_id.as_str())
        .collect();
    assert_eq!(got, ["m1", "m2"]);
    let d = &first.messages[0];
    assert_eq!(d.body, "body of m1");
    assert_eq!(d.delivery_count, 1);
    assert_eq!(d.visible_until_ms, s.now + 1_000);
    assert_ne!(first.messages[0].receipt, first.messages[1].receipt);

    assert_eq!(s.ids("q", 10), ["m3"]);
    assert!(s.ids("q", 10).is_empty());
    let stats = s.stats("q");
    assert_eq!((stats.main.visible, stats.main.in_flight), (0, 3));

    s.advance(999);
    assert!(s.ids("q", 10).is_empty());
    s.advance(1);
    // All three timed out: visible again in enqueue order, delivery count 2.
    let again = s.receive("q", 10);
    let got: Vec<_> = again
        .messages
        .iter()
        .map(|d| (d.message_id.as_str(), d.delivery_count))
        .collect();
    assert_eq!(got, [("m1", 2), ("m2", 2), ("m3", 2)]);
    let t = s.stats("q").totals.main;
    assert_eq!(
        (t.delivered, t.redelivered, t.visibility_expired),
        (6, 3, 3)
    );
}

#[test]
fn a_receive_visibility_overrides_the_queue_default() {
    let mut s = Sim::new();
    s.create("q", 5, 30_000);
    s.enqueue("q", "m1");
    let r = expect!(
        s.apply(Op::Receive {
            queue: "q".into(),
            consumer: "c".into(),
            max: 1,
            visibility_ms: Some(10),
        }),
        Response::Received
    );
    assert_eq!(r.messages[0].visible_until_ms, s.now + 10);
    s.advance(10);
    assert_eq!(s.ids("q", 1), ["m1"]);
}

#[test]
fn ack_removes_and_retried_ack_is_harmless() {
    let mut s = Sim::new();
    s.enqueue("q", "m1");
    s.advance(40);
    let d = s.receive("q", 1).messages.remove(0);
    s.advance(60);
    let a = expect!(s.ack("q", &d.receipt), Response::Acked);
    assert_eq!((a.delivery_count, a.age_ms, a.duplicate), (1, 100, false));
    let again = expect!(s.ack("q", &d.receipt), Response::Acked);
    assert!(again.duplicate);
    assert_eq!(again.delivery_count, 1);
    let stats = s.stats("q");
    assert_eq!((stats.main.depth, stats.totals.main.acked), (0, 1));
    assert_eq!(stats.main.oldest_age_ms, None);
}

#[test]
fn stale_receipts_are_refused_with_the_reason() {
    let mut s = Sim::new();
    s.create("q", 5, 1_000);
    s.enqueue("q", "m1");
    let first = s.receive("q", 1).messages.remove(0);
    s.advance(1_000);
    let second = s.receive("q", 1).messages.remove(0);
    assert!(second.receipt.delivery > first.receipt.delivery);
    assert_eq!(second.delivery_count, 2);

    let e = expect!(s.ack("q", &first.receipt), Response::Error);
    match &e {
        SmError::Queue(QueueError::StaleReceipt {
            delivery, status, ..
        }) => {
            assert_eq!(*delivery, first.receipt.delivery);
            assert!(
                matches!(status, MessageStatus::InFlight { delivery, .. } if *delivery == second.receipt.delivery),
                "{status:?}"
            );
        }
        other => panic!("expected StaleReceipt, got {other:?}"),
    }
    assert!(e.to_string().contains("is stale"), "{e}");
    // The current receipt still works.
    expect!(s.ack("q", &second.receipt), Response::Acked);
    // A receipt for a message that never existed.
    let e = expect!(
        s.ack(
            "q",
            &Receipt {
                message_id: "ghost".into(),
                delivery: 1
            }
        ),
        Response::Error
    );
    assert!(
        matches!(e, SmError::Queue(QueueError::UnknownMessage { .. })),
        "{e:?}"
    );
    // Acked with another receipt: the old one stays stale.
    let e = expect!(s.ack("q", &first.receipt), Response::Error);
    assert!(e.to_string().contains("acked at"), "{e}");
}

#[test]
fn ack_after_the_timeout_succeeds_until_redelivered() {
    let mut s = Sim::new();
    s.create("q", 5, 1_000);
    s.enqueue("q", "m1");
    let d = s.receive("q", 1).messages.remove(0);
    s.advance(5_000);
    // Visible again (stats count it) but nobody took it: the slow consumer may still ack.
    assert_eq!(s.stats("q").main.visible, 1);
    let a = expect!(s.ack("q", &d.receipt), Response::Acked);
    assert!(!a.duplicate);
    assert!(s.ids("q", 1).is_empty());
}

#[test]
fn nack_makes_a_message_visible_after_the_delay_and_keeps_its_place() {
    let mut s = Sim::new();
    s.create("q", 5, 30_000);
    s.enqueue("q", "m1");
    s.enqueue("q", "m2");
    let d = s.receive("q", 1).messages.remove(0);
    let n = expect!(
        s.nack("q", &d.receipt, 500, "payments timed out"),
        Response::Nacked
    );
    assert_eq!((n.visible_at_ms, n.delivery_count), (s.now + 500, 1));
    let stats = s.stats("q");
    assert_eq!((stats.main.visible, stats.main.delayed), (1, 1));
    // The nacked receipt is spent.
    let e = expect!(s.ack("q", &d.receipt), Response::Error);
    assert!(e.to_string().contains("nacked, invisible until"), "{e}");
    s.advance(499);
    assert!(s.stats("q").main.delayed == 1);
    s.advance(1);
    // m1 is older than m2: it comes first again.
    let r = s.receive("q", 10);
    let got: Vec<_> = r
        .messages
        .iter()
        .map(|d| (d.message_id.as_str(), d.delivery_count))
        .collect();
    assert_eq!(got, [("m1", 2), ("m2", 1)]);
    // Nack with no delay: visible at once.
    let m1 = &r.messages[0];
    expect!(s.nack("q", &m1.receipt, 0, "retry"), Response::Nacked);
    assert_eq!(s.ids("q", 10), ["m1"]);

    let e = s.error(Op::Nack {
        queue: "q".into(),
        receipt: m1.receipt.clone(),
        delay_ms: limits::MAX_VISIBILITY_MS + 1,
        reason: None,
    });
    assert_eq!(invalid_field(&e), "delay_ms");
}

#[test]
fn receive_validates_its_input() {
    let mut s = Sim::new();
    s.enqueue("q", "m1");
    let receive = |max, visibility_ms, consumer: &str| Op::Receive {
        queue: "q".into(),
        consumer: consumer.into(),
        max,
        visibility_ms,
    };
    assert_eq!(invalid_field(&s.error(receive(0, None, "c"))), "max");
    assert_eq!(
        invalid_field(&s.error(receive(limits::MAX_RECEIVE_BATCH + 1, None, "c"))),
        "max"
    );
    assert_eq!(
        invalid_field(&s.error(receive(1, Some(0), "c"))),
        "visibility_ms"
    );
    assert_eq!(invalid_field(&s.error(receive(1, None, ""))), "consumer");
    // Nothing was delivered by the refused receives.
    assert_eq!(s.stats("q").main.visible, 1);
}

// ---------------------------------------------------------------- queues: DLQ

#[test]
fn a_message_delivered_max_deliveries_times_is_dead_lettered() {
    let mut s = Sim::new();
    s.create("jobs", 2, 1_000);
    s.enqueue("jobs", "poison");
    s.enqueue("jobs", "ok");
    // Delivery 1: the worker nacks it with a reason.
    let r = s.receive("jobs", 1);
    let d1 = &r.messages[0];
    expect!(
        s.nack("jobs", &d1.receipt, 0, "malformed job"),
        Response::Nacked
    );
    // Delivery 2: the worker crashes (visibility timeout).
    let r = s.receive("jobs", 1);
    assert_eq!(r.messages[0].delivery_count, 2);
    let crashed = r.messages[0].receipt.clone();
    s.advance(1_000);
    // The next receive dead-letters it instead of a third delivery, and delivers `ok`.
    let r = s.receive("jobs", 10);
    assert_eq!(r.messages.len(), 1);
    assert_eq!(r.messages[0].message_id, "ok");
    assert_eq!(r.dead_lettered.len(), 1);
    let notice = &r.dead_lettered[0];
    assert_eq!(notice.message_id, "poison");
    assert_eq!(
        notice.record,
        DeadLetterRecord {
            at_ms: s.now,
            deliveries: 2,
            max_deliveries: 2,
            last_failure: Some(DeliveryFailure::VisibilityExpired {
                consumer: "worker-1".into(),
                at_ms: s.now,
            }),
        }
    );
    assert!(
        notice
            .record
            .to_string()
            .contains("after 2 deliveries without an ack"),
        "{}",
        notice.record
    );
    // The crashed worker's receipt now says where the message went.
    let e = expect!(s.ack("jobs", &crashed), Response::Error);
    assert!(
        e.to_string().contains("in the dead-letter queue since"),
        "{e}"
    );
    // A retried enqueue of the poison message is still a duplicate.
    let dup = s.enqueue("jobs", "poison");
    assert!(dup.duplicate);
    assert!(
        matches!(dup.status, MessageStatus::DeadLettered { .. }),
        "{dup:?}"
    );

    let stats = s.stats("jobs");
    assert_eq!(stats.totals.dead_lettered, 1);
    assert_eq!((stats.dead_letter.depth, stats.dead_letter.visible), (1, 1));
    assert_eq!(stats.main.in_flight, 1);

    // The DLQ can be inspected without receiving.
    let peeked = expect!(
        s.sm.query(&Query::Peek {
            queue: "jobs.dlq".into(),
            max: 10,
            now_ms: 0
        }),
        QueryResponse::Messages
    );
    assert_eq!(peeked.len(), 1);
    assert_eq!(peeked[0].message_id, "poison");
    assert_eq!(peeked[0].body, "body of poison");
    assert_eq!(peeked[0].dead_letter.as_ref(), Some(&notice.record));
}

#[test]
fn a_nack_reason_is_kept_in_the_dead_letter_record() {
    let mut s = Sim::new();
    s.create("jobs", 1, 1_000);
    s.enqueue("jobs", "m");
    let d = s.receive("jobs", 1).messages.remove(0);
    expect!(
        s.nack("jobs", &d.receipt, 0, "schema mismatch"),
        Response::Nacked
    );
    let r = s.receive("jobs", 1);
    assert!(r.messages.is_empty());
    let record = &r.dead_lettered[0].record;
    assert!(
        record
            .to_string()
            .ends_with("nacked it at 1000000 ms: schema mismatch"),
        "{record}"
    );
}

#[test]
fn dlq_messages_can_be_consumed_but_are_never_dead_lettered_again() {
    let mut s = Sim::new();
    s.create("jobs", 1, 100);
    s.enqueue("jobs", "m");
    s.receive("jobs", 1);
    s.advance(100);
    assert_eq!(s.receive("jobs", 1).dead_lettered.len(), 1);
    for round in 1..=5 {
        let r = s.receive("jobs.dlq", 1);
        assert_eq!(r.queue, "jobs.dlq");
        assert_eq!(r.messages[0].delivery_count, round);
        s.advance(100);
    }
    let d = s.receive("jobs.dlq", 1).messages.remove(0);
    // Acking on the wrong queue name is refused; on the DLQ it works.
    assert!(s.ack("jobs", &d.receipt).is_error());
    expect!(s.ack("jobs.dlq", &d.receipt), Response::Acked);
    let stats = s.stats("jobs");
    assert_eq!(stats.dead_letter.depth, 0);
    assert_eq!((stats.totals.dlq.delivered, stats.totals.dlq.acked), (6, 1));
}

#[test]
fn redrive_moves_dlq_messages_back_with_the_count_reset() {
    let mut s = Sim::new();
    s.create("jobs", 1, 100);
    for id in ["a", "b", "c"] {
        s.enqueue("jobs", id);
    }
    s.receive("jobs", 10);
    s.advance(100);
    s.enqueue("jobs", "d");
    let r = s.receive("jobs", 10);
    assert_eq!(r.dead_lettered.len(), 3);
    assert_eq!(r.messages[0].message_id, "d");
    // One DLQ message is being inspected: redrive leaves it.
    let inspected = s.receive("jobs.dlq", 1).messages.remove(0);
    assert_eq!(inspected.message_id, "a");

    let e = s.error(Op::Redrive {
        queue: "jobs".into(),
        max: 10,
    });
    assert!(e.to_string().contains("did you mean `jobs.dlq`"), "{e}");
    let e = s.error(Op::Redrive {
        queue: "jobs.dlq".into(),
        max: 0,
    });
    assert_eq!(invalid_field(&e), "max");

    let out = expect!(
        s.apply(Op::Redrive {
            queue: "jobs.dlq".into(),
            max: 10
        }),
        Response::Redriven
    );
    assert_eq!((out.from.as_str(), out.to.as_str()), ("jobs.dlq", "jobs"));
    assert_eq!(out.message_ids, ["b", "c"]);
    assert_eq!(out.remaining, 1);
    // The inspector's receipt in the DLQ still works; b and c are deliverable again.
    s.advance(10);
    let r = s.receive("jobs", 10);
    let got: Vec<_> = r
        .messages
        .iter()
        .map(|d| (d.message_id.as_str(), d.delivery_count, d.redrive_count))
        .collect();
    assert_eq!(got, [("b", 1, 1), ("c", 1, 1)]);
    assert_eq!(r.messages[0].enqueued_at_ms, s.now - 10);
    assert!(r.messages[0].first_enqueued_at_ms < r.messages[0].enqueued_at_ms);
    expect!(s.ack("jobs.dlq", &inspected.receipt), Response::Acked);
    let stats = s.stats("jobs");
    assert_eq!(stats.totals.redriven, 2);
    assert_eq!(stats.dead_letter.depth, 0);
}

#[test]
fn purge_removes_everything_in_one_queue() {
    let mut s = Sim::new();
    s.create("q", 1, 100);
    for id in ["a", "b", "c"] {
        s.enqueue("q", id);
    }
    let held = s.receive("q", 1).messages.remove(0);
    s.advance(100);
    s.receive("q", 1); // a → DLQ, b delivered
    let p = expect!(s.apply(Op::Purge { queue: "q".into() }), Response::Purged);
    assert_eq!((p.queue.as_str(), p.purged), ("q", 2));
    let stats = s.stats("q");
    assert_eq!((stats.main.depth, stats.dead_letter.depth), (0, 1));
    assert_eq!(stats.totals.purged, 2);
    // A purged id is a duplicate within the window; its receipt is stale.
    assert!(s.enqueue("q", "c").duplicate);
    let e = expect!(s.ack("q", &held.receipt), Response::Error);
    assert!(e.to_string().contains("in the dead-letter queue"), "{e}");
    let p = expect!(
        s.apply(Op::Purge {
            queue: "q.dlq".into()
        }),
        Response::Purged
    );
    assert_eq!(p.purged, 1);
}

// ---------------------------------------------------------------- stats

#[test]
fn stats_report_depths_lag_and_totals() {
    let mut s = Sim::new();
    s.put("k", "v");
    expect!(s.acquire("l", "a", 1_000), Response::Lease);
    s.create("q", 5, 1_000);
    s.enqueue("q", "m1");
    s.advance(100);
    s.enqueue("q", "m2");
    s.enqueue("q", "m3");
    s.advance(50);
    s.receive("q", 1);

    let stats = s.sm.stats(s.now + 10);
    assert_eq!(stats.as_of_ms, s.now + 10);
    assert_eq!(
        (stats.metadata_keys, stats.leases_live, stats.leases_known),
        (1, 1, 1)
    );
    let q = &stats.queues[0];
    assert_eq!(
        q.main,
        LaneStats {
            depth: 3,
            visible: 2,
            in_flight: 1,
            delayed: 0,
            oldest_age_ms: Some(160),
        }
    );
    assert_eq!(q.dead_letter, LaneStats::default());
    // Asked for a time past the visibility timeout: the in-flight message counts as
    // visible, though nothing moved (stats are read-only).
    let later = s.sm.stats(s.now + 1_000);
    assert_eq!(
        (later.queues[0].main.visible, later.queues[0].main.in_flight),
        (3, 0)
    );
    assert_eq!(later.leases_live, 0);
    // An earlier time than the state machine's is not honoured.
    assert_eq!(s.sm.stats(0).as_of_ms, s.now);
}

// ---------------------------------------------------------------- snapshots

fn busy_state() -> Sim {
    let mut s = Sim::new();
    s.put("a", "1");
    s.put("b", "2");
    let g = expect!(s.acquire("l", "a", 10_000), Response::Lease);
    assert!(!s.fenced_put("c", "3", "l", g.token).is_error());
    s.create("jobs", 2, 500);
    for i in 0..10 {
        s.enqueue("jobs", &format!("m{i}"));
    }
    let r = s.receive("jobs", 4);
    expect!(s.ack("jobs", &r.messages[0].receipt), Response::Acked);
    expect!(
        s.nack("jobs", &r.messages[1].receipt, 200, "later"),
        Response::Nacked
    );
    s.advance(600);
    s.receive("jobs", 3);
    s.advance(600);
    s.receive("jobs", 10);
    s.enqueue("other", "x");
    s
}

#[test]
fn snapshot_round_trips_exactly() {
    let mut s = busy_state();
    assert!(
        s.stats("jobs").dead_letter.depth > 0,
        "the state exercises the DLQ"
    );
    let bytes = s.sm.to_snapshot().unwrap();
    let restored = StateMachine::from_snapshot(&bytes).unwrap();
    assert_eq!(restored, s.sm);
    restored.check_invariants().unwrap();
    assert_eq!(restored.to_snapshot().unwrap(), bytes, "canonical bytes");
    assert_eq!(restored.digest(), s.sm.digest());

    // Both continue identically.
    let mut twin = Sim {
        sm: restored,
        now: s.now,
    };
    for sim in [&mut s, &mut twin] {
        sim.advance(1_000);
        sim.receive("jobs", 10);
        sim.receive("jobs.dlq", 10);
        sim.enqueue("jobs", "m0");
    }
    assert_eq!(twin.sm, s.sm);
}

#[test]
fn digest_tells_states_apart() {
    let a = busy_state();
    let mut b = busy_state();
    assert_eq!(a.sm.digest(), b.sm.digest());
    b.put("a", "1");
    assert_ne!(a.sm.digest(), b.sm.digest());
}

#[test]
fn bad_snapshots_are_errors() {
    let s = busy_state();
    let bytes = s.sm.to_snapshot().unwrap();
    let text = String::from_utf8(bytes).unwrap();

    let e = StateMachine::from_snapshot(b"{\"format\":2,\"state\":{}}").unwrap_err();
    assert!(matches!(e, SnapshotError::Malformed(_)), "{e}");
    let e =
        StateMachine::from_snapshot(text.replacen("\"format\":1", "\"format\":9", 1).as_bytes())
            .unwrap_err();
    assert!(e.to_string().contains("format 9 is not supported"), "{e}");
    let e = StateMachine::from_snapshot(&text.as_bytes()[..text.len() / 2]).unwrap_err();
    assert!(matches!(e, SnapshotError::Malformed(_)), "{e}");
    // Consistent JSON, inconsistent state: a message id duplicated in both queues.
    let e = StateMachine::from_snapshot(text.replace("\"id\":\"m9\"", "\"id\":\"m8\"").as_bytes())
        .unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");
}

// ---------------------------------------------------------------- wire format

#[test]
fn commands_and_responses_survive_json() {
    let ops = vec![
        Op::Put {
            key: "k".into(),
            value: "v".into(),
        },
        Op::CompareAndSet {
            key: "k".into(),
            expected: None,
            new: Some("v".into()),
        },
        Op::AcquireLease {
            name: "l".into(),
            holder: "h".into(),
            ttl_ms: 5,
        },
        Op::Nack {
            queue: "q".into(),
            receipt: Receipt {
                message_id: "m".into(),
                delivery: 3,
            },
            delay_ms: 1,
            reason: None,
        },
    ];
    for op in ops {
        let c = Command::new(42, op);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), c);
    }
    let json = serde_json::to_string(&Command::new(
        7,
        Op::Enqueue {
            queue: "q".into(),
            message_id: "m".into(),
            body: "b".into(),
        },
    ))
    .unwrap();
    assert_eq!(
        json,
        r#"{"now_ms":7,"op":{"enqueue":{"queue":"q","message_id":"m","body":"b"}}}"#
    );

    let mut s = busy_state();
    s.advance(1_000);
    let main = Response::Received(s.receive("jobs", 10));
    let dlq = Response::Received(s.receive("jobs.dlq", 10));
    for r in [main, dlq] {
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), r);
    }
    let peek = s.sm.query(&Query::Peek {
        queue: "jobs.dlq".into(),
        max: 10,
        now_ms: 0,
    });
    let messages = match &peek {
        QueryResponse::Messages(m) => m,
        other => panic!("expected messages, got {other:?}"),
    };
    assert!(messages.iter().all(|m| m.dead_letter.is_some()) && !messages.is_empty());
    let json = serde_json::to_string(&peek).unwrap();
    assert_eq!(serde_json::from_str::<QueryResponse>(&json).unwrap(), peek);
    let e = Response::Error(SmError::Queue(QueueError::StaleReceipt {
        queue: "q".into(),
        message_id: "m".into(),
        delivery: 1,
        status: MessageStatus::Visible,
    }));
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), e);
}

#[test]
fn one_receive_returns_a_bounded_number_of_bytes() {
    let mut s = Sim::new();
    let big = "x".repeat(limits::MAX_BODY_BYTES);
    for i in 0..20 {
        s.apply(Op::Enqueue {
            queue: "q".into(),
            message_id: format!("m{i}"),
            body: big.clone(),
        });
    }
    let per_receive = limits::MAX_RECEIVE_BYTES / limits::MAX_BODY_BYTES;
    assert_eq!(s.receive("q", 100).messages.len(), per_receive);
    assert_eq!(s.receive("q", 100).messages.len(), 20 - per_receive);
}

#[test]
fn one_receive_dead_letters_a_bounded_number_of_messages() {
    let mut s = Sim::new();
    s.create("q", 1, 10);
    let n = limits::MAX_DEAD_LETTERS_PER_RECEIVE + 5;
    for i in 0..n {
        // Unchecked: checking every index after each of these steps would be quadratic.
        s.sm.apply(Command::new(
            s.now,
            Op::Enqueue {
                queue: "q".into(),
                message_id: format!("m{i}"),
                body: String::new(),
            },
        ));
    }
    assert_eq!(s.receive("q", 1000).messages.len(), 1000);
    assert_eq!(s.receive("q", 1000).messages.len(), 5);
    s.advance(10);
    let r = s.receive("q", 10);
    assert!(r.messages.is_empty());
    assert_eq!(r.dead_lettered.len(), limits::MAX_DEAD_LETTERS_PER_RECEIVE);
    assert_eq!(s.stats("q").main.visible, 5);
    assert_eq!(s.receive("q", 10).dead_lettered.len(), 5);
    assert_eq!(s.stats("q").dead_letter.depth, n as u64);
}

/// A queue whose messages are nearly all in flight still hands out the one visible
/// message, and counts the rest as in flight. (That a receive costs nothing per in-flight
/// message follows from the index structure, argued in the `queue` module docs.)
#[test]
fn receive_with_many_in_flight_finds_the_few_visible_ones() {
    let mut s = Sim::new();
    s.create("q", 5, 60_000);
    for i in 0..5_000 {
        s.sm.apply(Command::new(
            s.now,
            Op::Enqueue {
                queue: "q".into(),
                message_id: format!("m{i:05}"),
                body: String::new(),
            },
        ));
    }
    for _ in 0..5 {
        s.sm.apply(Command::new(
            s.now,
            Op::Receive {
                queue: "q".into(),
                consumer: "c".into(),
                max: 1000,
                visibility_ms: None,
            },
        ));
    }
    s.enqueue("q", "late");
    let stats = s.stats("q");
    assert_eq!((stats.main.in_flight, stats.main.visible), (5_000, 1));
    assert_eq!(s.ids("q", 1000), ["late"]);
}
