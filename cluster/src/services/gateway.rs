//! `gateway`: the demo's order API (docs/services.md). One per node; it keeps no state
//! of its own — orders live in the quorum KV, payment jobs in the Raft queue.
//!
//! ```text
//!  POST /orders ─► PUT /kv/order:{id} (W) ─► enqueue {order_id, amount_cents, trace} on `payments` ─► 201
//!                      └─ refused / no answer ─► 503 stage "kv"      └─ ─► 503 stage "enqueue"
//!  GET /orders/{id} ─► GET /kv/order:{id} (R) ─► GET /kv/payment:{id} ─► 200 {order, version, payment}
//! ```
//!
//! The order id is the client's `x-correlation-id` when valid (a client retry of one
//! logical order writes the same key and enqueues the same message id, which the queue
//! deduplicates), else a fresh one.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Json, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::node_client::{Call, NodeClient};
use super::red::{self, Red};
use crate::sm::Op;
use crate::telemetry::{self, ErrorType};

/// The queue payment jobs go to.
pub const PAYMENTS_QUEUE: &str = "payments";

/// How long the gateway waits for the node on each call.
const NODE_TIMEOUT: Duration = Duration::from_secs(2);

/// A new order, as the client sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub amount_cents: u64,
    pub customer: String,
}

/// An order as stored at `order:{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub amount_cents: u64,
    pub customer: String,
    pub status: String,
}

/// A payment job as enqueued: what the worker needs, and the trace it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Job {
    pub order_id: String,
    pub amount_cents: u64,
    /// The W3C `traceparent` of the request that created the job, so that its
    /// processing joins the order's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The gateway's shared state.
#[derive(Debug)]
pub struct Gateway {
    pub node: NodeClient,
    pub red: Red,
}

impl Gateway {
    pub fn new(node: NodeClient) -> Arc<Gateway> {
        Arc::new(Gateway {
            node,
            red: Red::new("gateway"),
        })
    }
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/orders", post(create))
        .route("/orders/{id}", get(read))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            gateway.red.clone(),
            red::track,
        ))
        .route_layer(axum::middleware::from_fn(telemetry::trace_requests))
        .with_state(gateway)
}

fn error(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Extension(ErrorType(kind)),
        Json(json!({ "error": kind, "message": message.to_string() })),
    )
        .into_response()
}

/// An order id: the client's correlation id when it can serve as one, else a new id.
fn order_id(headers: &HeaderMap) -> String {
    headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(
            || format!("o-{:016x}", rand::random::<u64>()),
            str::to_owned,
        )
}

async fn create(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Json<NewOrder>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid", e.body_text()),
    };
    let id = order_id(&headers);
    let span = tracing::Span::current();
    telemetry::set(&span, "order.id", id.clone());
    let order = Order {
        id: id.clone(),
        amount_cents: new.amount_cents,
        customer: new.customer,
        status: "pending".to_owned(),
    };
    let written = match gateway
        .node
        .kv_put(&format!("order:{id}"), &order, Some(&id), NODE_TIMEOUT)
        .await
    {
        Call::Ok(written) => written,
        other => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Extension(ErrorType("kv_unavailable")),
                Json(json!({
                    "error": "kv_unavailable",
                    "stage": "kv",
                    "order_id": id,
                    "message": format!("storing the order failed: {}", other.describe()),
                    "node_status": refused_status(&other),
                })),
            )
                .into_response();
        }
    };
    let mut carrier = reqwest::header::HeaderMap::new();
    telemetry::inject(&span, &mut carrier);
    let job = Job {
        order_id: id.clone(),
        amount_cents: order.amount_cents,
        traceparent: carrier
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let enqueue = Op::Enqueue {
        queue: PAYMENTS_QUEUE.to_owned(),
        message_id: id.clone(),
        body: serde_json::to_string(&job).unwrap_or_default(),
    };
    match gateway.node.op(&enqueue, Some(&id), NODE_TIMEOUT).await {
        Call::Ok(_) => (
            StatusCode::CREATED,
            Json(json!({
                "order_id": id,
                "version": written["version"],
                "version_text": written["version_text"],
                "w": written["w"],
                "replicas_acked": written["replicas_acked"],
            })),
        )
            .into_response(),
        other => (
            StatusCode::SERVICE_UNAVAILABLE,
            Extension(ErrorType("queue_unavailable")),
            Json(json!({
                "error": "queue_unavailable",
                "stage": "enqueue",
                "order_id": id,
                "version": written["version"],
                "message": format!(
                    "the order is stored but its payment job was not queued: {}",
                    other.describe()
                ),
            })),
        )
            .into_response(),
    }
}

/// The node's status code of a refusal, for the client to judge the outcome by.
fn refused_status<T>(call: &Call<T>) -> Option<u16> {
    match call {
        Call::Refused { status, .. } => Some(*status),
        Call::Ok(_) | Call::Failed(_) => None,
    }
}

async fn read(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let correlation = headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    telemetry::set(&tracing::Span::current(), "order.id", id.clone());
    let found = match gateway
        .node
        .kv_get(&format!("order:{id}"), correlation.as_deref(), NODE_TIMEOUT)
        .await
    {
        Call::Ok(found) => found,
        Call::Refused { status: 404, .. } => {
            return error(StatusCode::NOT_FOUND, "not_found", format!("no order {id}"));
        }
        other => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "kv_unavailable",
                format!("reading the order failed: {}", other.describe()),
            );
        }
    };
    let order: Option<Order> = found["value"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok());
    let Some(order) = order else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "corrupt",
            format!("order:{id} does not hold an order"),
        );
    };
    let payment = match gateway
        .node
        .kv_get(
            &format!("payment:{id}"),
            correlation.as_deref(),
            NODE_TIMEOUT,
        )
        .await
    {
        Call::Ok(found) => found["value"]
            .as_str()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    };
    Json(json!({
        "order": order,
        "version": found["version"],
        "version_text": found["version_text"],
        "r": found["r"],
        "payment": payment,
    }))
    .into_response()
}

async fn status(State(gateway): State<Arc<Gateway>>) -> Response {
    Json(json!({
        "service": "gateway",
        "node": gateway.node.node(),
        "requests": gateway.red.count(0..=999),
        "errors": gateway.red.count(500..=599),
    }))
    .into_response()
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let mut out = String::new();
    gateway.red.render(&mut out, gateway.node.node());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
