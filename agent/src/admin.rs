//! The agent's admin API: where an operator (or `faultline`) reads the agent's metrics
//! and status and adds, lists and removes toxics.
//!
//! ```text
//!  operator / Prometheus ──HTTP──► [admin listener] ─► authorize (Bearer token, if set)
//!                                                          │
//!        GET  /metrics ◄── Metrics::render ◄───────────────┤
//!        GET  /status  ◄── node, version, uptime, Metrics::latency_report
//!        GET, POST, DELETE /toxics[/{id}] ──► Arc<Mutex<Toxics>> ◄── the proxy's toxics layer
//! ```
//!
//! A thin shell over two pure cores: the [`Toxics`] registry, shared with the proxy's
//! data path behind a std `Mutex` that is held for one registry call and never across an
//! `.await`, and the [`Metrics`] registry. JSON is parsed and rendered here with
//! `serde_json` (axum's `json` feature is left off to keep the build small).
//!
//! | method and path | success | errors |
//! |---|---|---|
//! | `GET /metrics` | 200 `text/plain; version=0.0.4; charset=utf-8` | |
//! | `GET /status` | 200 `{"node", "version", "uptime_seconds", "active_toxics", "latency"}` | |
//! | `GET /toxics` | 200 `{"toxics": [ … ]}` | |
//! | `POST /toxics` | 201 the toxic with its `id`, `Location: /toxics/t-N` | 400 invalid toxic, 413 body over [`MAX_BODY_BYTES`], 415 not `application/json` |
//! | `DELETE /toxics/{id}` | 200 the removed toxic | 400 malformed id, 404 no such toxic |
//! | `DELETE /toxics` | 200 `{"removed": n}` | |
//! | anything else | | 404 unknown path, 405 (with `Allow`) wrong method |
//! | any but `GET /metrics`, with a token set | | 401 missing or wrong `Authorization: Bearer` |
//!
//! Every error is JSON, `{"error": "<message>"}`, and the listener keeps serving after it.
//!
//! # Safe by default
//!
//! The admin API can break the node's traffic, so it binds 127.0.0.1 unless the operator
//! sets a token: [`check_bind`] refuses any other address without one (PRODUCT.md §8).
//! With a token, every request must carry `Authorization: Bearer <token>` (compared in
//! constant time), **except `GET /metrics`**. Metrics are read-only counters with no
//! toxic parameters and no secrets, and scrapers are commonly configured once for a whole
//! fleet without per-target credentials; requiring the token there would push operators
//! to paste the token that can inject faults into every Prometheus config, which is the
//! worse trade. `/status` names the node and its version, so it stays behind the token.

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::metrics::{Metrics, SeriesLatency};
use crate::toxics::{ToxicId, ToxicSpec, Toxics};

/// The largest request body the admin API reads. A toxic is a few hundred bytes; a
/// partition over many peers stays far below this.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The content type of `/metrics`: the Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the admin API cannot be started as configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A non-loopback bind address without a token: anyone who can reach it could
    /// inject faults.
    #[error(
        "refusing to serve the admin API on {addr} without a token: it is not a loopback \
         address, so anyone who can reach it could inject faults into this node's traffic. \
         Pass `--admin-token <TOKEN>` (clients then send `Authorization: Bearer <TOKEN>`), \
         or bind the admin API to 127.0.0.1 or [::1]"
    )]
    NonLoopbackWithoutToken { addr: SocketAddr },
}

/// Refuses to serve the admin API on a non-loopback address unless a token is set.
///
/// An empty token counts as no token (an unset environment variable must not open the
/// API). IPv4-mapped loopback (`::ffff:127.0.0.1`) counts as loopback.
pub fn check_bind(addr: SocketAddr, token: Option<&str>) -> Result<(), AdminError> {
    let has_token = token.is_some_and(|token| !token.is_empty());
    if has_token || addr.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(AdminError::NonLoopbackWithoutToken { addr })
    }
}

/// The admin token. Its `Debug` does not print it, so it never lands in a log.
#[derive(Clone)]
struct Token(Arc<str>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The admin API's state, cheap to clone into every handler.
#[derive(Debug, Clone)]
pub struct Admin {
    toxics: Arc<Mutex<Toxics>>,
    metrics: Metrics,
    node: Arc<str>,
    version: Arc<str>,
    token: Option<Token>,
    started: Instant,
}

impl Admin {
    /// An admin API over the agent's toxics (shared with its proxy) and metrics, for
    /// the node `node`, reporting `version` (the agent's `CARGO_PKG_VERSION`) in
    /// `/status`. No token: serve it on loopback only (see [`check_bind`]). Uptime
    /// counts from this call.
    pub fn new(
        toxics: Arc<Mutex<Toxics>>,
        metrics: Metrics,
        node: impl Into<String>,
        version: impl Into<String>,
    ) -> Admin {
        Admin {
            toxics,
            metrics,
            node: Arc::from(node.into()),
            version: Arc::from(version.into()),
            token: None,
            started: Instant::now(),
        }
    }

    /// Requires `Authorization: Bearer <token>` on every request but `GET /metrics`.
    /// `None` or an empty token leaves the API open (loopback only, per [`check_bind`]).
    pub fn with_token(mut self, token: Option<String>) -> Admin {
        self.token = token
            .filter(|token| !token.is_empty())
            .map(|token| Token(Arc::from(token)));
        self
    }

    /// The toxics registry this API edits.
    pub fn toxics(&self) -> &Arc<Mutex<Toxics>> {
        &self.toxics
    }

    /// The metrics this API serves.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The routes, with authorization, JSON errors for unknown paths and wrong methods.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/status", get(status))
            .route(
                "/toxics",
                get(list_toxics).post(add_toxic).delete(clear_toxics),
            )
            .route("/toxics/{id}", delete(remove_toxic))
            // Must follow the routes: it is installed on the routes present.
            .method_not_allowed_fallback(method_not_allowed)
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(self.clone(), authorize))
            .with_state(self.clone())
    }

    /// Serves the admin API on `listener` until `shutdown` completes.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    fn lock_toxics(&self) -> MutexGuard<'_, Toxics> {
        // A poisoned lock means a thread panicked while holding it. Every registry
        // mutation is a single `Vec` push, remove or clear (after validation), so a panic
        // cannot leave the registry half-updated; recovering keeps both the admin API and
        // the data path working instead of turning one panic into a dead agent.
        self.toxics.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// ------------------------------------------------------------------------- responses

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(err) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not render the response as JSON: {err}"),
        ),
    }
}

/// A request refused with `{"error": message}`; kept small so that `Result`s carrying
/// it stay cheap (a `Response` is over 100 bytes).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_response(self.status, self.message)
    }
}

/// `{"error": message}` with `status`.
fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    // A `Value` with a string member renders without failing.
    let body = serde_json::json!({ "error": message.into() }).to_string();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

// ------------------------------------------------------------------- authorization

async fn authorize(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let Some(token) = &admin.token else {
        return next.run(request).await;
    };
    let scrape = matches!(*request.method(), Method::GET | Method::HEAD)
        && request.uri().path() == "/metrics";
    if scrape {
        return next.run(request).await;
    }
    match bearer(request.headers()) {
        Some(presented) if constant_time_eq(presented, token.0.as_bytes()) => {
            next.run(request).await
        }
        presented => {
            let message = if presented.is_some() {
                "invalid admin token"
            } else {
                "missing admin token: send `Authorization: Bearer <token>`"
            };
            let mut response = error_response(StatusCode::UNAUTHORIZED, message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"faultline-agent\""),
            );
            response
        }
    }
}

/// The credentials of an `Authorization: Bearer <token>` header (scheme case-insensitive,
/// RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let credentials = value.get(7..)?.trim_ascii();
    (!credentials.is_empty()).then_some(credentials)
}

/// Compares without an early exit on the first differing byte, so the response time
/// does not reveal how much of a guess was right. Only the length can leak.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

// ------------------------------------------------------------------------- handlers

async fn metrics(State(admin): State<Admin>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(METRICS_CONTENT_TYPE),
        )],
        admin.metrics.render(),
    )
        .into_response()
}

/// The `/status` body.
#[derive(Debug, Serialize)]
struct Status<'a> {
    node: &'a str,
    version: &'a str,
    uptime_seconds: u64,
    active_toxics: usize,
    latency: Vec<SeriesLatency>,
}

async fn status(State(admin): State<Admin>) -> Response {
    let active_toxics = admin.lock_toxics().len();
    let body = Status {
        node: &admin.node,
        version: &admin.version,
        uptime_seconds: admin.started.elapsed().as_secs(),
        active_toxics,
        latency: admin.metrics.latency_report(),
    };
    json_response(StatusCode::OK, &body)
}

async fn list_toxics(State(admin): State<Admin>) -> Response {
    // Rendered under the lock: at most `MAX_TOXICS` small objects, and no copy.
    let toxics = admin.lock_toxics();
    json_response(StatusCode::OK, &*toxics)
}

async fn add_toxic(State(admin): State<Admin>, headers: HeaderMap, body: Body) -> Response {
    if let Err(refusal) = require_json(&headers) {
        return refusal.into_response();
    }
    let bytes = match read_body(&headers, body).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal.into_response(),
    };
    let added = ToxicSpec::from_json(&bytes).and_then(|spec| admin.lock_toxics().add(spec));
    match added {
        Ok(toxic) => {
            let mut response = json_response(StatusCode::CREATED, &toxic);
            if let Ok(location) = HeaderValue::try_from(format!("/toxics/{}", toxic.id())) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(err) => error_response(StatusCode::BAD_REQUEST, err.to_string()),
    }
}

async fn remove_toxic(
    State(admin): State<Admin>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(id) = match id {
        Ok(id) => id,
        Err(rejection) => return error_response(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let id: ToxicId = match id.parse() {
        Ok(id) => id,
        Err(err) => return error_response(StatusCode::BAD_REQUEST, err.to_string()),
    };
    let removed = admin.lock_toxics().remove(id);
    match removed {
        Some(toxic) => json_response(StatusCode::OK, &toxic),
        None => error_response(StatusCode::NOT_FOUND, format!("no toxic {id}")),
    }
}

async fn clear_toxics(State(admin): State<Admin>) -> Response {
    let removed = {
        let mut toxics = admin.lock_toxics();
        let removed = toxics.len();
        toxics.clear();
        removed
    };
    json_response(StatusCode::OK, &serde_json::json!({ "removed": removed }))
}

async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        format!(
            "no such path {}: the admin API serves /metrics, /status, /toxics and /toxics/{{id}}",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

// --------------------------------------------------------------------- request bodies

/// Accepts `application/json`, with parameters (`; charset=utf-8`), in any case.
fn require_json(headers: &HeaderMap) -> Result<(), Refusal> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.split(';').next().unwrap_or(value).trim());
    match media_type {
        Some(media_type) if media_type.eq_ignore_ascii_case("application/json") => Ok(()),
        Some(other) => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected `Content-Type: application/json`, got `{other}`"),
        )),
        None => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected `Content-Type: application/json`, got none",
        )),
    }
}

/// Reads the whole body, up to [`MAX_BODY_BYTES`]. A declared `Content-Length` over the
/// cap is refused before reading; a chunked body is cut off when it passes the cap.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(err) => Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("could not read the request body: {err}"),
        )),
    }
}
