//! The demo cluster's own telemetry, end to end: three nodes and their agents export to
//! a live `faultline record`; a client calls through a follower with its own
//! `traceparent`; the leader is killed. The capture must hold one connected trace per
//! client request (agent and node spans alike) and the Raft, queue and KV spans with the
//! attributes `docs/conventions.md` promises.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::Recorder;
use faultline_model::read::{ReadOptions, read_all};
use faultline_model::span::Span;

const QUEUE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const KV_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn traceparent(trace: &str) -> String {
    format!("00-{trace}-00f067aa0ba902b7-01")
}

fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes.get_str(key)
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    span.attributes.get_i64(key)
}

/// Every span of `trace`, and a check that they form one tree rooted at the client's
/// (absent) parent span.
fn trace_of<'a>(spans: &'a [Span], trace: &str) -> Vec<&'a Span> {
    let in_trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id.to_string() == trace)
        .collect();
    let ids: HashMap<_, _> = in_trace.iter().map(|s| (s.span_id, *s)).collect();
    for span in &in_trace {
        let parent = span
            .parent_span_id
            .expect("every span has a parent: the client");
        let client_parent = parent.to_string() == "00f067aa0ba902b7";
        assert!(
            client_parent || ids.contains_key(&parent),
            "span {:?} ({}) has a parent not in the capture: the trace is broken",
            span.name,
            span.resource.service_name()
        );
    }
    in_trace
}

/// The spans, one per line, for failure messages.
fn listing(spans: &[&Span]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} {} {} parent={:?} {}",
                s.resource
                    .attributes
                    .get_str("faultline.node")
                    .unwrap_or("?"),
                s.resource.service_name(),
                s.span_id,
                s.parent_span_id.map(|p| p.to_string()),
                s.name
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nodes_export_raft_queue_and_kv_spans_in_the_clients_trace() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("cluster.jsonl");
    let recorder = Recorder::start(&capture, &[]);
    let mut cluster = common::cluster(
        &dir.path().join("cluster"),
        &format!("http://{}", recorder.addr),
        false,
    );
    let http = common::client(Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let old_leader = runtime.block_on(async {
        let leader = cluster
            .wait_healthy(&http, Duration::from_secs(20))
            .await
            .unwrap();
        let follower = cluster
            .file()
            .members
            .iter()
            .find(|m| m.name != leader)
            .unwrap()
            .agent_inbound;
        // Queue operations through a follower (forwarded to the leader), in one trace.
        let op = |body: serde_json::Value| {
            http.post(format!("http://{follower}/sm/ops"))
                .header("traceparent", traceparent(QUEUE_TRACE))
                .header("x-correlation-id", "order-42")
                .json(&body)
                .send()
        };
        let r = op(serde_json::json!({"create_queue": {"queue": "jobs", "max_deliveries": 2}}));
        assert!(r.await.unwrap().status().is_success());
        let r = op(serde_json::json!({"enqueue": {"queue": "jobs", "message_id": "m-1", "body": "pay 42"}}));
        assert!(r.await.unwrap().status().is_success());
        let r = op(serde_json::json!({"receive": {"queue": "jobs", "consumer": "worker", "max": 1, "visibility_ms": 50}}));
        let received: serde_json::Value = r.await.unwrap().json().await.unwrap();
        assert_eq!(received["received"]["messages"][0]["message_id"], "m-1", "{received}");
        // Not acked: after its visibility timeout it comes back, then is dead-lettered
        // (max_deliveries 2) by the third receive.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(80)).await;
            let r = op(serde_json::json!({"receive": {"queue": "jobs", "consumer": "worker", "max": 1, "visibility_ms": 50}}));
            assert!(r.await.unwrap().status().is_success());
        }
        // A KV write and read in another trace.
        let put = http
            .put(format!("http://{follower}/kv/user-7"))
            .header("traceparent", traceparent(KV_TRACE))
            .body("ada")
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{:?}", put.text().await);
        let get = http
            .get(format!("http://{follower}/kv/user-7"))
            .header("traceparent", traceparent(KV_TRACE))
            .send()
            .await
            .unwrap();
        assert!(get.status().is_success());
        // Spans leave each node every second: let the leader's go before it dies.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        leader
    });

    // Kill the leader: the others hold an election.
    let old = cluster
        .file()
        .members
        .iter()
        .position(|m| m.name == old_leader)
        .unwrap()
        + 1;
    cluster.kill_node(old).unwrap();
    let new_leader = runtime.block_on(async {
        cluster
            .wait_healthy(&http, Duration::from_secs(20))
            .await
            .unwrap()
    });
    assert_ne!(new_leader, old_leader);
    // A graceful stop: every process flushes its spans.
    cluster.down();
    let (status, stderr) = recorder.stop("INT");
    assert!(status.success(), "{stderr}");

    let (spans, _) = read_all(&capture, &ReadOptions::default()).unwrap();
    let nodes: Vec<&Span> = spans
        .iter()
        .filter(|s| s.resource.service_name() == "faultline-node")
        .collect();
    let all: Vec<&Span> = spans.iter().collect();
    assert!(
        !nodes.is_empty(),
        "the nodes exported spans:\n{}",
        listing(&all)
    );
    for span in &nodes {
        let node = span.resource.attributes.get_str("faultline.node").unwrap();
        assert!(node.starts_with("node-"), "{node}");
    }

    // The queue trace: agent spans and node spans in one tree, forwarded to the leader.
    let queue = trace_of(&spans, QUEUE_TRACE);
    let enqueue = queue
        .iter()
        .find(|s| s.name == "enqueue jobs")
        .unwrap_or_else(|| panic!("an `enqueue jobs` span in\n{}", listing(&queue)));
    assert_eq!(str_attr(enqueue, "messaging.system"), Some("faultline"));
    assert_eq!(str_attr(enqueue, "messaging.operation.type"), Some("send"));
    assert_eq!(
        str_attr(enqueue, "messaging.destination.name"),
        Some("jobs")
    );
    assert_eq!(str_attr(enqueue, "messaging.message.id"), Some("m-1"));
    assert_eq!(str_attr(enqueue, "correlation.id"), Some("order-42"));
    let on_leader: Vec<_> = queue
        .iter()
        .filter(|s| s.name == "enqueue jobs" && int_attr(s, "raft.log_index").is_some())
        .collect();
    assert_eq!(on_leader.len(), 1, "the leader applied it once");
    assert_eq!(
        on_leader[0].resource.attributes.get_str("faultline.node"),
        Some(old_leader.as_str())
    );
    assert!(
        queue
            .iter()
            .any(|s| s.resource.service_name() == "faultline-agent"),
        "the agents' spans are in the same trace"
    );
    let receives: Vec<_> = queue
        .iter()
        .filter(|s| s.name == "receive jobs" && int_attr(s, "raft.log_index").is_some())
        .collect();
    assert_eq!(receives.len(), 3);
    assert!(
        receives
            .iter()
            .any(|s| int_attr(s, "queue.delivery_count") == Some(2)),
        "the second delivery says so"
    );
    let dead = receives
        .iter()
        .find(|s| int_attr(s, "queue.dead_lettered") == Some(1))
        .expect("the third receive dead-lettered m-1");
    let event = dead
        .events
        .iter()
        .find(|e| e.name == "dead_lettered")
        .unwrap();
    assert_eq!(
        event.attributes.get_str("messaging.destination.name"),
        Some("jobs.dlq")
    );

    // The KV trace: the coordinator's span and the replicas' spans, one tree.
    let kv = trace_of(&spans, KV_TRACE);
    let put = kv
        .iter()
        .find(|s| s.name == "kv.put")
        .expect("a kv.put span");
    assert_eq!(int_attr(put, "kv.n"), Some(3));
    assert_eq!(int_attr(put, "kv.w"), Some(2));
    assert!(int_attr(put, "kv.replicas_acked").unwrap() >= 2);
    assert!(str_attr(put, "kv.version").is_some());
    assert_eq!(str_attr(put, "kv.key"), Some("user-7"));
    let replica_writes = kv
        .iter()
        .filter(|s| s.name == "PUT /kv-replica/{key}")
        .count();
    assert!(
        replica_writes >= 2,
        "replica writes on the other nodes: {replica_writes}"
    );
    let get = kv
        .iter()
        .find(|s| s.name == "kv.get")
        .expect("a kv.get span");
    assert_eq!(int_attr(get, "kv.r"), Some(2));
    assert_eq!(str_attr(get, "kv.version"), str_attr(put, "kv.version"));

    // Raft: replication with lag attributes, and the election after the kill.
    let appends: Vec<_> = nodes
        .iter()
        .filter(|s| s.name == "raft.append_entries")
        .collect();
    assert!(
        appends.iter().any(|s| int_attr(s, "raft.peer_id").is_some()
            && int_attr(s, "raft.lag.entries").is_some()
            && int_attr(s, "raft.match_index").is_some()),
        "leader-side append spans carry the follower and its lag"
    );
    let won: Vec<&Span> = nodes
        .iter()
        .copied()
        .filter(|s| {
            s.name == "raft.election" && str_attr(s, "raft.election.outcome") == Some("won")
        })
        .collect();
    assert!(
        won.iter()
            .any(
                |s| s.resource.attributes.get_str("faultline.node") == Some(new_leader.as_str())
                    && int_attr(s, "raft.term") > Some(1)
            ),
        "the new leader's election, after the first: {}",
        listing(&won)
    );
    let new_id: i64 = new_leader.trim_start_matches("node-").parse().unwrap();
    assert!(
        nodes.iter().any(
            |s| s.name == "raft.leader_change" && int_attr(s, "raft.leader_id") == Some(new_id)
        ),
        "the leader change is exported"
    );
    // Heartbeats and tool polls are not traced by the nodes.
    assert!(!nodes.iter().any(|s| s.name.contains("/status")
        || s.name.contains("/metrics")
        || (s.name == "raft.append_entries" && int_attr(s, "raft.entries") == Some(0))));
}
