//! `/status` (JSON) and `/metrics` (Prometheus text): what this node knows of itself,
//! read locally and without Raft (so they answer even when the cluster cannot).
//!
//! Replication lag is only known to the leader: per follower, in entries (the
//! leader's last log index minus the follower's match index) and in time (how long
//! the oldest entry the follower lacks has existed).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use faultline_model::prometheus::{family, sample};
use serde::Serialize;

use super::Node;
use super::kv::stats::KvStatus;
use crate::raft::node_name;
use crate::raft::observe::ElectionCounts;
use crate::sm::SmStats;

/// `GET /status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub node: String,
    pub raft_id: u64,
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<String>,
    pub last_log_index: Option<u64>,
    /// The leader's commit index as this node knows it.
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub members: Vec<String>,
    /// Per follower, when this node leads.
    pub followers: Vec<FollowerStatus>,
    /// When this node leads: milliseconds since a quorum last acknowledged it.
    pub quorum_ack_age_ms: Option<u64>,
    pub elections: ElectionCounts,
    pub state_machine: SmStats,
    /// The quorum KV: quorum defaults, hint backlog, replication lag, stale reads.
    pub kv: KvStatus,
    pub uptime_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct FollowerStatus {
    pub node: String,
    pub match_index: Option<u64>,
    pub lag_entries: u64,
    pub lag_ms: u64,
}

pub use crate::raft::observe::role_name;

impl Status {
    pub async fn of(node: &Node) -> Status {
        let metrics = node.member.raft.metrics().borrow().clone();
        let committed = node
            .member
            .raft
            .with_raft_state(|state| state.committed.map(|c| c.index))
            .await
            .ok()
            .flatten();
        let last = metrics.last_log_index;
        let followers = metrics
            .replication
            .as_ref()
            .map(|replication| {
                replication
                    .iter()
                    .filter(|(id, _)| **id != node.config.id)
                    .map(|(id, matched)| {
                        let matched = matched.map(|m| m.index);
                        FollowerStatus {
                            node: node_name(*id),
                            match_index: matched,
                            lag_entries: last.unwrap_or(0).saturating_sub(matched.unwrap_or(0)),
                            lag_ms: u64::try_from(node.lag_time(matched, last).as_millis())
                                .unwrap_or(u64::MAX),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let members = metrics
            .membership_config
            .membership()
            .voter_ids()
            .map(node_name)
            .collect();
        let kv = node.kv.status().await;
        let applied = node.member.applied.read();
        Status {
            node: node.name.clone(),
            raft_id: node.config.id,
            role: role_name(metrics.state),
            term: metrics.current_term,
            leader: metrics.current_leader.map(node_name),
            last_log_index: last,
            commit_index: committed,
            applied_index: applied.last_applied.map(|l| l.index),
            members,
            followers,
            quorum_ack_age_ms: metrics.millis_since_quorum_ack,
            elections: node.elections.counts(),
            state_machine: applied.state.stats(node.now_ms()),
            kv,
            uptime_ms: u64::try_from(node.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

pub async fn status(State(node): State<Arc<Node>>) -> Json<Status> {
    Json(Status::of(&node).await)
}

const PREFIX: &str = "faultline_";

/// Renders the node's metrics in Prometheus text format 0.0.4.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    let node = status.node.as_str();
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        family(out, PREFIX, name, "gauge", help);
        sample(out, PREFIX, name, &[("node", node)], value);
    };
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        family(out, PREFIX, name, "counter", help);
        sample(out, PREFIX, name, &[("node", node)], value);
    };
    counter(
        &mut out,
        "raft_elections_started_total",
        "Elections this node started (as candidate).",
        status.elections.elections_started,
    );
    counter(
        &mut out,
        "raft_elections_won_total",
        "Elections this node won.",
        status.elections.elections_won,
    );
    counter(
        &mut out,
        "raft_elections_lost_total",
        "Elections this node lost.",
        status.elections.elections_lost,
    );
    family(
        &mut out,
        PREFIX,
        "raft_follower_lag_entries",
        "gauge",
        "Entries a follower lacks, as its leader sees it.",
    );
    for f in &status.followers {
        sample(
            &mut out,
            PREFIX,
            "raft_follower_lag_entries",
            &[("follower", &f.node), ("node", node)],
            f.lag_entries,
        );
    }
    family(
        &mut out,
        PREFIX,
        "raft_follower_lag_seconds",
        "gauge",
        "How long the oldest entry a follower lacks has existed, as its leader sees it.",
    );
    for f in &status.followers {
        sample(
            &mut out,
            PREFIX,
            "raft_follower_lag_seconds",
            &[("follower", &f.node), ("node", node)],
            seconds(f.lag_ms),
        );
    }
    gauge(
        &mut out,
        "raft_applied_index",
        "Highest log index applied to the state machine.",
        status.applied_index.unwrap_or(0),
    );
    gauge(
        &mut out,
        "raft_commit_index",
        "Highest log index known committed.",
        status.commit_index.unwrap_or(0),
    );
    gauge(
        &mut out,
        "raft_is_leader",
        "1 if this node is the Raft leader.",
        u64::from(status.role == "leader"),
    );
    counter(
        &mut out,
        "raft_leader_changes_total",
        "Changes of leader this node observed.",
        status.elections.leader_changes,
    );
    gauge(
        &mut out,
        "raft_last_log_index",
        "Highest index in this node's log.",
        status.last_log_index.unwrap_or(0),
    );
    gauge(&mut out, "raft_term", "Current Raft term.", status.term);

    let queues = &status.state_machine.queues;
    family(
        &mut out,
        PREFIX,
        "queue_dead_lettered_total",
        "counter",
        "Messages moved to the dead-letter queue.",
    );
    for q in queues {
        sample(
            &mut out,
            PREFIX,
            "queue_dead_lettered_total",
            &[("node", node), ("queue", &q.queue)],
            q.totals.dead_lettered,
        );
    }
    family(
        &mut out,
        PREFIX,
        "queue_depth",
        "gauge",
        "Messages held by a queue (visible, in flight or delayed); NAME.dlq is the dead-letter queue.",
    );
    for q in queues {
        sample(
            &mut out,
            PREFIX,
            "queue_depth",
            &[("node", node), ("queue", &q.dlq)],
            q.dead_letter.depth,
        );
        sample(
            &mut out,
            PREFIX,
            "queue_depth",
            &[("node", node), ("queue", &q.queue)],
            q.main.depth,
        );
    }
    family(
        &mut out,
        PREFIX,
        "queue_enqueued_total",
        "counter",
        "Messages enqueued (duplicates not counted).",
    );
    for q in queues {
        sample(
            &mut out,
            PREFIX,
            "queue_enqueued_total",
            &[("node", node), ("queue", &q.queue)],
            q.totals.enqueued,
        );
    }
    family(
        &mut out,
        PREFIX,
        "queue_in_flight",
        "gauge",
        "Messages received and not yet acked or returned.",
    );
    for q in queues {
        sample(
            &mut out,
            PREFIX,
            "queue_in_flight",
            &[("node", node), ("queue", &q.queue)],
            q.main.in_flight,
        );
    }
    family(
        &mut out,
        PREFIX,
        "queue_oldest_message_age_seconds",
        "gauge",
        "Age of the oldest message a queue holds: consumer lag.",
    );
    for q in queues {
        sample(
            &mut out,
            PREFIX,
            "queue_oldest_message_age_seconds",
            &[("node", node), ("queue", &q.queue)],
            seconds(q.main.oldest_age_ms.unwrap_or(0)),
        );
    }
    super::kv::stats::render(&status.kv, node, &mut out);
    out
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

pub async fn metrics(State(node): State<Arc<Node>>) -> impl IntoResponse {
    let status = Status::of(&node).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&status),
    )
}
