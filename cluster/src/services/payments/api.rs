//! The provider's HTTP routes: a thin shell translating requests to [`Payments`] and
//! its answers to JSON.
//!
//! ```text
//!  POST /charge {"order_id", "amount_cents"} + idempotency-key? ─► Payments::charge
//!       200 {"payment_id", "order_id", "duplicate"} | 400 invalid | 500 payment_failed | 503 overloaded
//!  PUT  /admin/payments {any subset of the settings} ─► 200 settings | 400 invalid
//!  GET  /admin/payments ─► settings        GET /status ─► JSON        GET /metrics ─► Prometheus text
//! ```
//!
//! Errors are JSON like the node's: `{"error": KIND, "message": TEXT}`, with the kind
//! also put on the response for the server span's `error.type`. `/charge` spans carry
//! `payments.duplicate` and `payments.queue_wait_ms`.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Json, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use super::metrics;
use super::model::Charge;
use super::provider::{ChargeError, Payments};
use super::settings::PaymentsUpdate;
use crate::node::api::error;
use crate::telemetry;

/// The header naming a charge's idempotency key (its order id without one).
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The provider's routes, each traced by `telemetry::trace_requests` (which skips
/// `/status`, `/metrics` and `/admin/*`).
pub fn router(payments: Arc<Payments>) -> Router {
    Router::new()
        .route("/charge", post(charge))
        .route("/admin/payments", put(update_settings).get(get_settings))
        .route("/status", get(status))
        .route("/metrics", get(render_metrics))
        .route_layer(axum::middleware::from_fn(telemetry::trace_requests))
        .with_state(payments)
}

/// `POST /charge`'s body. Unknown fields are ignored: a caller may send its whole job.
#[derive(Debug, Deserialize)]
struct ChargeBody {
    order_id: String,
    amount_cents: u64,
}

/// `POST /charge`'s answer.
#[derive(Debug, Serialize)]
struct ChargeAnswer {
    payment_id: String,
    order_id: String,
    duplicate: bool,
}

fn invalid(message: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

async fn charge(
    State(payments): State<Arc<Payments>>,
    headers: HeaderMap,
    body: Result<Json<ChargeBody>, JsonRejection>,
) -> Response {
    let span = tracing::Span::current();
    let charge = match read_charge(&headers, body) {
        Ok(charge) => charge,
        Err(reason) => {
            payments.count_invalid();
            return invalid(reason);
        }
    };
    let answer = payments.charge(charge).await;
    let (duplicate, queue_wait) = match &answer {
        Ok(charged) => (charged.duplicate, charged.queue_wait),
        Err(ChargeError::Failed { queue_wait, .. }) => (false, *queue_wait),
        Err(ChargeError::Overloaded(_)) => (false, std::time::Duration::ZERO),
    };
    telemetry::set(&span, "payments.duplicate", duplicate);
    telemetry::set(
        &span,
        "payments.queue_wait_ms",
        queue_wait.as_secs_f64() * 1000.0,
    );
    match answer {
        Ok(charged) => Json(ChargeAnswer {
            payment_id: charged.payment.payment_id,
            order_id: charged.payment.order_id,
            duplicate: charged.duplicate,
        })
        .into_response(),
        Err(e @ ChargeError::Overloaded(_)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e)
        }
        Err(e @ ChargeError::Failed { .. }) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "payment_failed", e)
        }
    }
}

/// The charge a request asks for, or why it is refused (a 400).
fn read_charge(
    headers: &HeaderMap,
    body: Result<Json<ChargeBody>, JsonRejection>,
) -> Result<Charge, String> {
    let Json(body) = body.map_err(|e| e.body_text())?;
    let key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| "idempotency-key must be visible ASCII".to_owned())?
                .to_owned(),
        ),
    };
    Charge::new(body.order_id, body.amount_cents, key).map_err(|e| e.to_string())
}

async fn update_settings(
    State(payments): State<Arc<Payments>>,
    update: Result<Json<PaymentsUpdate>, JsonRejection>,
) -> Response {
    let Json(update) = match update {
        Ok(update) => update,
        Err(e) => return invalid(e.body_text()),
    };
    match payments.update(&update) {
        Ok(settings) => Json(settings).into_response(),
        Err(e) => invalid(e),
    }
}

async fn get_settings(State(payments): State<Arc<Payments>>) -> Response {
    Json(payments.settings()).into_response()
}

async fn status(State(payments): State<Arc<Payments>>) -> Response {
    Json(payments.status()).into_response()
}

async fn render_metrics(State(payments): State<Arc<Payments>>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&payments.status()),
    )
        .into_response()
}
