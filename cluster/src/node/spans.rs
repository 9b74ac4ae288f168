//! What a state-machine operation's server span says about it (`docs/conventions.md`).
//!
//! Queue operations follow the OpenTelemetry messaging conventions from the broker's
//! side (`messaging.system = faultline`, `messaging.operation.name`, `.type`,
//! `messaging.destination.name`, `messaging.message.id`) plus `queue.delivery_count`
//! and a `dead_lettered` span event per message moved to the DLQ; the span is named
//! `"{operation} {queue}"`. Metadata and lease operations are `raft.{operation}` with
//! `db.system.name = faultline`, `db.operation.name` and `raft.key`. Every operation
//! carries `raft.node_id`, and once committed `raft.term` and `raft.log_index`.

use opentelemetry::KeyValue;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::raft::NodeId;
use crate::sm::{Op, Query, Response};

/// The system faultline's queues and stores report (`messaging.system`, `db.system.name`).
pub const SYSTEM: &str = "faultline";

/// The span name and attributes of `op`, known before it is applied.
pub fn describe(op: &Op, node: NodeId) -> (String, Vec<KeyValue>) {
    let name = op.name();
    let mut attributes = vec![KeyValue::new("raft.node_id", node as i64)];
    let queue_kind = match op {
        Op::CreateQueue { .. } => Some(Some("create")),
        Op::Enqueue { .. } | Op::Redrive { .. } => Some(Some("send")),
        Op::Receive { .. } => Some(Some("receive")),
        Op::Ack { .. } | Op::Nack { .. } => Some(Some("settle")),
        Op::Purge { .. } => Some(None),
        _ => None,
    };
    let span_name = match (queue_kind, op) {
        (
            Some(kind),
            Op::CreateQueue { queue, .. }
            | Op::Enqueue { queue, .. }
            | Op::Receive { queue, .. }
            | Op::Ack { queue, .. }
            | Op::Nack { queue, .. }
            | Op::Redrive { queue, .. }
            | Op::Purge { queue },
        ) => {
            attributes.push(KeyValue::new("messaging.system", SYSTEM));
            attributes.push(KeyValue::new("messaging.operation.name", name));
            if let Some(kind) = kind {
                attributes.push(KeyValue::new("messaging.operation.type", kind));
            }
            attributes.push(KeyValue::new("messaging.destination.name", queue.clone()));
            match op {
                Op::Enqueue { message_id, .. } => {
                    attributes.push(KeyValue::new("messaging.message.id", message_id.clone()));
                }
                Op::Ack { receipt, .. } | Op::Nack { receipt, .. } => attributes.push(
                    KeyValue::new("messaging.message.id", receipt.message_id.clone()),
                ),
                Op::Receive { consumer, .. } => {
                    attributes.push(KeyValue::new(
                        "messaging.consumer.group.name",
                        consumer.clone(),
                    ));
                }
                _ => {}
            }
            format!("{name} {queue}")
        }
        _ => {
            attributes.push(KeyValue::new("db.system.name", SYSTEM));
            attributes.push(KeyValue::new("db.operation.name", name));
            let key = match op {
                Op::Put { key, .. }
                | Op::Delete { key }
                | Op::CompareAndSet { key, .. }
                | Op::FencedPut { key, .. } => Some(key),
                Op::AcquireLease { name, .. }
                | Op::RenewLease { name, .. }
                | Op::ReleaseLease { name, .. } => Some(name),
                _ => None,
            };
            if let Some(key) = key {
                attributes.push(KeyValue::new("raft.key", key.clone()));
            }
            if let Op::FencedPut { token, lease, .. } = op {
                attributes.push(KeyValue::new("lease.name", lease.clone()));
                attributes.push(KeyValue::new("lease.fencing_token", *token as i64));
            }
            format!("raft.{name}")
        }
    };
    (span_name, attributes)
}

/// The span name and attributes of a linearizable read.
pub fn describe_query(query: &Query, node: NodeId) -> (String, Vec<KeyValue>) {
    let (name, key) = match query {
        Query::Get { key } => ("get", Some(key.as_str())),
        Query::List { prefix, .. } => ("list", Some(prefix.as_str())),
        Query::Lease { name, .. } => ("lease", Some(name.as_str())),
        Query::Stats { .. } => ("stats", None),
        Query::Peek { queue, .. } => ("peek", Some(queue.as_str())),
    };
    let mut attributes = vec![
        KeyValue::new("raft.node_id", node as i64),
        KeyValue::new("db.system.name", SYSTEM),
        KeyValue::new("db.operation.name", name),
    ];
    if let Some(key) = key {
        attributes.push(KeyValue::new("raft.key", key.to_owned()));
    }
    (format!("raft.query.{name}"), attributes)
}

/// Records `response` on `span`: delivery counts, dead-lettering, tokens.
pub fn record_response(span: &tracing::Span, response: &Response) {
    let set = |key: &'static str, value: opentelemetry::Value| span.set_attribute(key, value);
    match response {
        Response::Enqueued(e) => {
            set("queue.duplicate", e.duplicate.into());
        }
        Response::Received(r) => {
            set(
                "messaging.batch.message_count",
                (r.messages.len() as i64).into(),
            );
            if let [one] = r.messages.as_slice() {
                set("messaging.message.id", one.message_id.clone().into());
            }
            if let Some(max) = r.messages.iter().map(|m| m.delivery_count).max() {
                // A batch's highest count: the one that says "this keeps coming back".
                set("queue.delivery_count", i64::from(max).into());
            }
            if !r.dead_lettered.is_empty() {
                set("queue.dead_lettered", (r.dead_lettered.len() as i64).into());
            }
            for notice in &r.dead_lettered {
                span.add_event(
                    "dead_lettered",
                    vec![
                        KeyValue::new("messaging.message.id", notice.message_id.clone()),
                        KeyValue::new("queue.delivery_count", i64::from(notice.record.deliveries)),
                        KeyValue::new("messaging.destination.name", format!("{}.dlq", r.queue)),
                    ],
                );
            }
        }
        Response::Acked(a) => {
            set("queue.delivery_count", i64::from(a.delivery_count).into());
            set("queue.age_ms", (a.age_ms as i64).into());
        }
        Response::Nacked(n) => {
            set("queue.delivery_count", i64::from(n.delivery_count).into());
        }
        Response::Redriven(r) => {
            set(
                "messaging.batch.message_count",
                (r.message_ids.len() as i64).into(),
            );
        }
        Response::Purged(p) => {
            set("messaging.batch.message_count", (p.purged as i64).into());
        }
        Response::Lease(grant) => {
            set("lease.fencing_token", (grant.token as i64).into());
        }
        Response::Written(_)
        | Response::Deleted(_)
        | Response::Cas(_)
        | Response::LeaseReleased { .. }
        | Response::QueueCreated { .. }
        | Response::Error(_) => {}
    }
}
