//! The node's HTTP API (see the module docs of [`super`] for the routes).
//!
//! Errors are JSON: `{"error": KIND, "message": TEXT}` with, where it helps, the leader
//! to ask instead. Kinds: `no_leader` (503: no quorum, or an election under way),
//! `not_leader` (503: a forwarded request met a follower again), `raft` (503: Raft
//! could not commit or confirm leadership), `invalid` (400), `conflict` (409: the
//! state machine refused — a stale fencing token, a lease held by another, a stale
//! receipt), `limit` (507), `forward_failed` (502: the leader could not be reached).

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Json, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::{Node, spans};
use crate::raft::{NodeId, TypeConfig, node_name};
use crate::sm::{Command, Op, Query, QueryResponse, SmError};
use crate::telemetry::{self, ErrorType};

/// Marks a request one node forwarded to the leader; it is never forwarded again.
pub const FORWARDED_HEADER: &str = "x-faultline-forwarded";

/// Raft snapshots arrive in chunks of at most 3 MiB (openraft's default); leave room.
const RAFT_BODY_LIMIT: usize = 16 << 20;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/raft/vote", post(vote))
        .route("/raft/append", post(append))
        .route("/raft/snapshot", post(snapshot))
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT))
        .route("/sm/ops", post(op))
        .route("/sm/query", post(query))
        .route("/status", get(super::status::status))
        .route("/metrics", get(super::status::metrics))
        .route("/admin/faults", put(set_faults).get(get_faults))
        .merge(super::kv::api::routes())
        .route_layer(axum::middleware::from_fn(crate::telemetry::trace_requests))
        .with_state(node)
}

async fn vote(
    State(node): State<Arc<Node>>,
    Json(request): Json<VoteRequest<NodeId>>,
) -> impl IntoResponse {
    Json(node.member.raft.vote(request).await)
}

/// Appends from the leader. One carrying entries gets a server span (its duration
/// includes this node's fsync: where a slow disk shows); heartbeats are not traced.
async fn append(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Json(request): Json<AppendEntriesRequest<TypeConfig>>,
) -> impl IntoResponse {
    if request.entries.is_empty() {
        return Json(node.member.raft.append_entries(request).await);
    }
    let leader = request.vote.leader_id();
    let span = tracing::info_span!(
        "raft.append_entries",
        otel.kind = "server",
        otel.status_code = Empty,
        error.type = Empty,
        raft.node_id = node.config.id,
        raft.leader_id = leader.node_id,
        raft.term = leader.term,
        raft.entries = request.entries.len(),
        raft.prev_log_index = request.prev_log_id.map_or(0, |l| l.index),
        raft.commit_index = request.leader_commit.map_or(0, |l| l.index),
    );
    telemetry::continue_trace(&span, &headers);
    let result = node
        .member
        .raft
        .append_entries(request)
        .instrument(span.clone())
        .await;
    if let Err(e) = &result {
        span.record("otel.status_code", "error");
        span.record("error.type", "raft");
        tracing::warn!(parent: &span, error = %e, "append refused");
    }
    Json(result)
}

async fn snapshot(
    State(node): State<Arc<Node>>,
    Json(request): Json<InstallSnapshotRequest<TypeConfig>>,
) -> impl IntoResponse {
    Json(node.member.raft.install_snapshot(request).await)
}

/// An error answer.
pub fn error(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Extension(ErrorType(kind)),
        Json(json!({ "error": kind, "message": message.to_string() })),
    )
        .into_response()
}

fn sm_error(e: &SmError) -> Response {
    let (status, kind) = match e {
        SmError::InvalidInput { .. } => (StatusCode::BAD_REQUEST, "invalid"),
        SmError::LimitReached { .. } => (StatusCode::INSUFFICIENT_STORAGE, "limit"),
        SmError::Lease(_) | SmError::Queue(_) => (StatusCode::CONFLICT, "conflict"),
    };
    (
        status,
        Extension(ErrorType(kind)),
        Json(json!({ "error": kind, "message": e.to_string(), "detail": e })),
    )
        .into_response()
}

/// Applies one operation through Raft; a follower forwards it to the leader.
async fn op(State(node): State<Arc<Node>>, headers: HeaderMap, Json(op): Json<Op>) -> Response {
    let span = tracing::Span::current();
    let (name, attributes) = spans::describe(&op, node.config.id);
    telemetry::rename(&span, name);
    telemetry::set_all(&span, attributes);
    let command = Command::new(node.now_ms(), op);
    match node.member.raft.client_write(command.clone()).await {
        Ok(written) => match written.data.0 {
            Some(response) => {
                telemetry::set(&span, "raft.log_index", written.log_id.index as i64);
                telemetry::set(&span, "raft.term", written.log_id.leader_id.term as i64);
                spans::record_response(&span, &response);
                match response.error() {
                    Some(e) => sm_error(e),
                    None => Json(response).into_response(),
                }
            }
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "raft",
                "the entry was applied without a reply",
            ),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(to))) => {
            forward(&node, &headers, to.leader_id, "/sm/ops", &command.op).await
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "raft", e),
    }
}

/// A linearizable read: confirm leadership with a quorum, wait until the state machine
/// has applied everything committed before the read, then read. Followers forward.
async fn query(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Json(mut query): Json<Query>,
) -> Response {
    // Reads that depend on time use this node's clock, not the caller's.
    let now = node.now_ms();
    match &mut query {
        Query::Lease { now_ms, .. } | Query::Stats { now_ms } | Query::Peek { now_ms, .. } => {
            *now_ms = now;
        }
        Query::Get { .. } | Query::List { .. } => {}
    }
    let span = tracing::Span::current();
    let (name, attributes) = spans::describe_query(&query, node.config.id);
    telemetry::rename(&span, name);
    telemetry::set_all(&span, attributes);
    match node.member.raft.ensure_linearizable().await {
        Ok(_) => {
            let answer = node.member.applied.read().state.query(&query);
            match &answer {
                QueryResponse::Error(e) => sm_error(e),
                _ => Json(answer).into_response(),
            }
        }
        Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(to))) => {
            forward(&node, &headers, to.leader_id, "/sm/query", &query).await
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "raft", e),
    }
}

/// Sends a request this node cannot serve to the leader, once.
async fn forward<T: Serialize>(
    node: &Node,
    headers: &HeaderMap,
    leader: Option<NodeId>,
    path: &str,
    body: &T,
) -> Response {
    let Some(leader) = leader.filter(|&l| l != node.config.id) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_leader",
            format!(
                "{} knows no leader: no quorum, or an election is under way",
                node.name
            ),
        );
    };
    let leader_name = node_name(leader);
    if headers.contains_key(FORWARDED_HEADER) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "not_leader",
                "message": format!("{} is not the leader; ask {leader_name}", node.name),
                "leader": leader_name,
            })),
        )
            .into_response();
    }
    let Some(url) = node.config.route.url(&leader_name, path) else {
        return error(
            StatusCode::BAD_GATEWAY,
            "forward_failed",
            format!("no route to the leader {leader_name}"),
        );
    };
    // The caller's trace and correlation go along; the trace continues from this
    // node's span when it is exported.
    let mut propagated = HeaderMap::new();
    for name in ["traceparent", "tracestate", "baggage", "x-correlation-id"] {
        if let Some(value) = headers.get(name) {
            propagated.insert(name, value.clone());
        }
    }
    let span = tracing::Span::current();
    telemetry::set(&span, "raft.leader_id", leader as i64);
    telemetry::inject(&span, &mut propagated);
    let request = node
        .client
        .post(url)
        .header(FORWARDED_HEADER, node.name.as_str())
        .headers(propagated)
        .json(body);
    match request.send().await {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
            match response.bytes().await {
                Ok(bytes) => {
                    let mut answer = (status, bytes).into_response();
                    if let Some(content_type) = content_type {
                        answer
                            .headers_mut()
                            .insert(axum::http::header::CONTENT_TYPE, content_type);
                    }
                    answer
                }
                Err(e) => error(
                    StatusCode::BAD_GATEWAY,
                    "forward_failed",
                    format!("reading {leader_name}'s answer: {e}"),
                ),
            }
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            "forward_failed",
            format!("the leader {leader_name} could not be reached: {e}"),
        ),
    }
}

/// The supervisor's fault hooks (this API listens on loopback only).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Added before every durable write.
    pub disk_delay_ms: Option<u64>,
    /// Added to this node's clock (may be negative).
    pub clock_offset_ms: Option<i64>,
}

async fn set_faults(State(node): State<Arc<Node>>, Json(faults): Json<Faults>) -> Response {
    use std::sync::atomic::Ordering;
    if let Some(ms) = faults.disk_delay_ms {
        if ms > 60_000 {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "disk_delay_ms is at most 60000",
            );
        }
        node.hooks.disk_delay_ms.store(ms, Ordering::Relaxed);
    }
    if let Some(ms) = faults.clock_offset_ms {
        node.hooks.clock_offset_ms.store(ms, Ordering::Relaxed);
    }
    get_faults(State(node)).await.into_response()
}

async fn get_faults(State(node): State<Arc<Node>>) -> Json<Faults> {
    use std::sync::atomic::Ordering;
    Json(Faults {
        disk_delay_ms: Some(node.hooks.disk_delay_ms.load(Ordering::Relaxed)),
        clock_offset_ms: Some(node.hooks.clock_offset_ms.load(Ordering::Relaxed)),
    })
}
