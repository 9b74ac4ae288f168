//! The KV's HTTP routes: client-facing (`/kv/{key}`, any node coordinates), replica-
//! internal (`/kv-replica/{key}`, what coordinators and the handoff loop call), and the
//! runtime quorum defaults (`/admin/quorum`).
//!
//! Errors are JSON like the rest of the node's API: `{"error": KIND, "message": TEXT}`.
//! Kinds: `invalid` (400), `not_found` (404), `clock_drift` (409: a version too far
//! ahead of this node's clock), `unavailable` (503: R or W replicas out of reach — for a
//! write, the replicas that acked keep it, so its fate is unknown), `limit` (507: a
//! stand-in's hint backlog is full), `storage` / `internal` (500).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Json, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::json;

use super::stats::{OpKind, OpOutcome, ReplicaOpKind, ReplicaOpOutcome};
use super::{
    KvError, Propagation, QuorumUpdate, ReadAnswer, ReplicaCopy, WriteAnswer, WriteRequest,
};
use crate::kv::{NodeId, ReadOutcome, StoreError, Version, Versioned};
use crate::node::Node;
use crate::node::api::error;
use crate::node::spans::SYSTEM;
use crate::telemetry::{self, ErrorType};
use opentelemetry::KeyValue;

/// The KV's routes, merged into the node's router.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route(
            "/kv/{key}",
            put(put_value).get(get_value).delete(delete_value),
        )
        .route("/kv-replica/{key}", put(replica_write).get(replica_read))
        .route("/admin/quorum", put(set_quorum).get(get_quorum))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteParams {
    w: Option<usize>,
    /// A version the client saw (`PHYSICAL.LOGICAL@NODE`); the write is ordered after it.
    after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadParams {
    r: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicaParams {
    /// Store the write as a hint for this replica (this node is its stand-in).
    hint_for: Option<NodeId>,
}

fn invalid(message: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

/// A client request refused before it was coordinated: counted, then answered 400.
fn refuse(node: &Node, kind: OpKind, message: impl std::fmt::Display) -> Response {
    node.kv.stats.op(kind, OpOutcome::Invalid);
    invalid(message)
}

fn kv_error(e: &KvError) -> Response {
    match e {
        KvError::Invalid(_) => invalid(e),
        KvError::ClockDrift(_) => error(StatusCode::CONFLICT, "clock_drift", e),
        KvError::Storage(StoreError::HintBacklogFull { .. }) => {
            error(StatusCode::INSUFFICIENT_STORAGE, "limit", e)
        }
        KvError::Storage(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e),
        KvError::Internal(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e),
    }
}

async fn put_value(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<WriteParams>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value = match String::from_utf8(body.to_vec()) {
        Ok(value) => value,
        Err(e) => {
            return refuse(
                &node,
                OpKind::Put,
                format!("the value must be UTF-8 text: {e}"),
            );
        }
    };
    write(node, key, params, &headers, Some(value)).await
}

async fn delete_value(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<WriteParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    write(node, key, params, &headers, None).await
}

async fn write(
    node: Arc<Node>,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<WriteParams>, QueryRejection>,
    headers: &HeaderMap,
    value: Option<String>,
) -> Response {
    let kind = if value.is_some() {
        OpKind::Put
    } else {
        OpKind::Delete
    };
    let Path(key) = match key {
        Ok(key) => key,
        Err(e) => return refuse(&node, kind, e.body_text()),
    };
    let Query(params) = match params {
        Ok(params) => params,
        Err(e) => return refuse(&node, kind, e.body_text()),
    };
    let after = match params.after.as_deref().map(str::parse::<Version>) {
        None => None,
        Some(Ok(version)) => Some(version),
        Some(Err(e)) => return refuse(&node, kind, e),
    };
    let deleted = value.is_none();
    let span = describe(if deleted { "delete" } else { "put" }, &key);
    let request = WriteRequest {
        key: key.clone(),
        value,
        w: params.w,
        after,
    };
    match super::write(&node, request, Propagation::from_headers(headers)).await {
        Ok(answer) => {
            telemetry::set_all(
                &span,
                vec![
                    KeyValue::new("kv.n", answer.n as i64),
                    KeyValue::new("kv.w", answer.w as i64),
                    KeyValue::new("kv.replicas_acked", answer.outcome.acked as i64),
                    KeyValue::new("kv.version", answer.version.to_string()),
                ],
            );
            write_answer(&key, &answer, deleted)
        }
        Err(e) => kv_error(&e),
    }
}

/// Names the current (server) span after the client operation and says what it is on.
fn describe(operation: &'static str, key: &str) -> tracing::Span {
    let span = tracing::Span::current();
    telemetry::rename(&span, format!("kv.{operation}"));
    telemetry::set_all(
        &span,
        vec![
            KeyValue::new("db.system.name", SYSTEM),
            KeyValue::new("db.operation.name", operation),
            KeyValue::new("kv.key", key.to_owned()),
        ],
    );
    span
}

fn write_answer(key: &str, answer: &WriteAnswer, deleted: bool) -> Response {
    let outcome = &answer.outcome;
    if outcome.succeeded {
        Json(json!({
            "key": key,
            "deleted": deleted,
            "version": answer.version,
            "version_text": answer.version.to_string(),
            "replicas_acked": outcome.acked,
            "n": answer.n,
            "w": answer.w,
            "latency_ms": outcome.latency.as_secs_f64() * 1e3,
        }))
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Extension(ErrorType("unavailable")),
            Json(json!({
                "error": "unavailable",
                "message": format!(
                    "W={} of N={} replicas cannot be reached ({} acked, {} failed); \
                     the replicas that acked keep the write, so it may still appear",
                    answer.w, answer.n, outcome.acked, outcome.failed
                ),
                "version": answer.version,
                "version_text": answer.version.to_string(),
                "replicas_acked": outcome.acked,
                "n": answer.n,
                "w": answer.w,
            })),
        )
            .into_response()
    }
}

async fn get_value(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<ReadParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Path(key) = match key {
        Ok(key) => key,
        Err(e) => return refuse(&node, OpKind::Get, e.body_text()),
    };
    let Query(params) = match params {
        Ok(params) => params,
        Err(e) => return refuse(&node, OpKind::Get, e.body_text()),
    };
    let span = describe("get", &key);
    match super::read(
        &node,
        key.clone(),
        params.r,
        Propagation::from_headers(&headers),
    )
    .await
    {
        Ok(answer) => {
            let (responded, version) = match &answer.outcome {
                ReadOutcome::Answered { newest, responded } => {
                    (*responded, newest.as_ref().map(|v| v.version.to_string()))
                }
                ReadOutcome::Failed { responded, .. } => (*responded, None),
            };
            let mut attributes = vec![
                KeyValue::new("kv.n", answer.n as i64),
                KeyValue::new("kv.r", answer.r as i64),
                KeyValue::new("kv.replicas_responded", responded as i64),
            ];
            if let Some(version) = version {
                attributes.push(KeyValue::new("kv.version", version));
            }
            telemetry::set_all(&span, attributes);
            read_answer(&key, &answer)
        }
        Err(e) => kv_error(&e),
    }
}

fn read_answer(key: &str, answer: &ReadAnswer) -> Response {
    let latency_ms = answer.latency.as_secs_f64() * 1e3;
    match &answer.outcome {
        ReadOutcome::Answered {
            newest:
                Some(Versioned {
                    value: Some(value),
                    version,
                }),
            responded,
        } => Json(json!({
            "key": key,
            "value": value,
            "version": version,
            "version_text": version.to_string(),
            "replicas_responded": responded,
            "n": answer.n,
            "r": answer.r,
            "latency_ms": latency_ms,
        }))
        .into_response(),
        ReadOutcome::Answered { newest, responded } => {
            let deleted_by = newest.as_ref().map(|v| v.version);
            (
                StatusCode::NOT_FOUND,
                Json(json!({
                    "error": "not_found",
                    "message": match deleted_by {
                        Some(v) => format!("{key:?} was deleted (version {v})"),
                        None => format!("no replica of the {responded} that answered holds {key:?}"),
                    },
                    "version": deleted_by,
                    "replicas_responded": responded,
                    "n": answer.n,
                    "r": answer.r,
                })),
            )
                .into_response()
        }
        ReadOutcome::Failed { responded, failed } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Extension(ErrorType("unavailable")),
            Json(json!({
                "error": "unavailable",
                "message": format!(
                    "R={} of N={} replicas cannot be reached ({responded} answered, {failed} failed)",
                    answer.r, answer.n
                ),
                "replicas_responded": responded,
                "n": answer.n,
                "r": answer.r,
            })),
        )
            .into_response(),
    }
}

/// A coordinator's write (or read repair, or hint delivery) to this replica, or — with
/// `hint_for` — a hint this node keeps as a stand-in. Acknowledged only once durable.
async fn replica_write(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<ReplicaParams>, QueryRejection>,
    body: Result<Json<Versioned>, JsonRejection>,
) -> Response {
    let (Path(key), Query(params), Json(versioned)) = match (key, params, body) {
        (Ok(key), Ok(params), Ok(body)) => (key, params, body),
        (Err(e), _, _) => return invalid(e.body_text()),
        (_, Err(e), _) => return invalid(e.body_text()),
        (_, _, Err(e)) => return invalid(e.body_text()),
    };
    let kind = if params.hint_for.is_some() {
        ReplicaOpKind::Hint
    } else {
        ReplicaOpKind::Write
    };
    let kv = &node.kv;
    if let Err(drift) = kv.observe(&versioned.version) {
        kv.stats.replica_op(kind, ReplicaOpOutcome::ClockDrift);
        return kv_error(&KvError::ClockDrift(drift));
    }
    match kv.store_locally(&key, &versioned, params.hint_for).await {
        Ok(ack) => {
            kv.stats.replica_op(kind, ReplicaOpOutcome::Ok);
            if params.hint_for.is_some() {
                kv.stats.hint_stored();
            }
            Json(ack).into_response()
        }
        Err(e) => {
            let outcome = match e {
                KvError::Storage(StoreError::HintBacklogFull { .. }) => ReplicaOpOutcome::Limit,
                _ => ReplicaOpOutcome::Error,
            };
            kv.stats.replica_op(kind, outcome);
            kv_error(&e)
        }
    }
}

/// This replica's copy of a key, for a coordinator's read.
async fn replica_read(
    State(node): State<Arc<Node>>,
    key: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(key) = match key {
        Ok(key) => key,
        Err(e) => return invalid(e.body_text()),
    };
    let kv = &node.kv;
    match kv.get_locally(&key).await {
        Ok(versioned) => {
            kv.stats
                .replica_op(ReplicaOpKind::Read, ReplicaOpOutcome::Ok);
            Json(ReplicaCopy { versioned }).into_response()
        }
        Err(e) => {
            kv.stats
                .replica_op(ReplicaOpKind::Read, ReplicaOpOutcome::Error);
            kv_error(&e)
        }
    }
}

async fn set_quorum(
    State(node): State<Arc<Node>>,
    update: Result<Json<QuorumUpdate>, JsonRejection>,
) -> Response {
    let Json(update) = match update {
        Ok(update) => update,
        Err(e) => return invalid(e.body_text()),
    };
    match node.kv.update_settings(update) {
        Ok(settings) => Json(settings).into_response(),
        Err(e) => kv_error(&e),
    }
}

async fn get_quorum(State(node): State<Arc<Node>>) -> Response {
    Json(node.kv.settings()).into_response()
}
