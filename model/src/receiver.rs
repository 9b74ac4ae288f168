//! The OTLP receiver: what faultline listens with for spans from the demo's nodes and
//! agents, and from any OpenTelemetry-instrumented application.
//!
//! ```text
//!  OTLP/gRPC  (h2c)   TraceService/Export ─┐
//!  OTLP/HTTP  POST /v1/traces (proto|json) ├─► decode ─► validate ─► bounded queue ─► Received
//!             POST /v1/metrics, /v1/logs  ─┘   (gzip, zstd)  (partial      (full: refuse,
//!                                                             success)      count, retryable)
//! ```
//!
//! One listener serves both protocols (gRPC is told apart by its content type), so a
//! client pointed at either the gRPC or the HTTP port convention finds us.
//!
//! Protocol behaviour, per the OTLP specification:
//! - spans with invalid ids are rejected individually and reported in the response's
//!   `partial_success` (the rest of the request is accepted);
//! - a full queue refuses the whole request with a *retryable* error (gRPC
//!   `UNAVAILABLE`, HTTP 503 with `Retry-After`), so a well-behaved exporter retries
//!   rather than losing data; refusals are counted;
//! - an oversized message gets the protocol's own error (gRPC: tonic's `OUT_OF_RANGE`
//!   "message length too large"; HTTP: 413) and the receiver keeps serving;
//! - HTTP errors carry a `google.rpc.Status` body in the request's content type.
//!
//! Metrics and logs are acknowledged and counted; they are forwarded (protobuf only)
//! when the caller asks for them, since faultline reads metrics from `/metrics` today.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tonic::codec::CompressionEncoding;

use crate::read::{convert_otlp_proto_request, parse_otlp_json_request};
use crate::span::Span;

/// What the receiver hands on.
#[derive(Debug)]
pub enum Received {
    Spans(Vec<Span>),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Requests (of any size) that may wait in the queue before new ones are refused.
    pub queue_capacity: usize,
    /// Largest request body accepted, after decompression.
    pub max_message_bytes: usize,
    /// Forward metrics requests (protobuf encoded) instead of only counting them.
    pub keep_metrics: bool,
    /// Forward logs requests (protobuf encoded) instead of only counting them.
    pub keep_logs: bool,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            queue_capacity: 1024,
            // The Collector's default gRPC limit is 4 MiB; batches from busy services
            // exceed it, and faultline is meant to take what a Collector would forward.
            max_message_bytes: 64 * 1024 * 1024,
            keep_metrics: false,
            keep_logs: false,
        }
    }
}

/// Counters, readable at any time while the receiver runs.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    pub requests: AtomicU64,
    pub accepted_spans: AtomicU64,
    /// Spans rejected as invalid (reported to the client as partial success).
    pub rejected_spans: AtomicU64,
    /// Spans in requests refused because the queue was full (the client was told to retry).
    pub refused_spans: AtomicU64,
    /// Requests that could not be decoded or were too large.
    pub bad_requests: AtomicU64,
    pub metrics_requests: AtomicU64,
    pub logs_requests: AtomicU64,
}

/// A plain copy of [`ReceiverStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub accepted_spans: u64,
    pub rejected_spans: u64,
    pub refused_spans: u64,
    pub bad_requests: u64,
    pub metrics_requests: u64,
    pub logs_requests: u64,
}

impl ReceiverStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: get(&self.requests),
            accepted_spans: get(&self.accepted_spans),
            rejected_spans: get(&self.rejected_spans),
            refused_spans: get(&self.refused_spans),
            bad_requests: get(&self.bad_requests),
            metrics_requests: get(&self.metrics_requests),
            logs_requests: get(&self.logs_requests),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// The receiving side, cheap to clone into every handler.
#[derive(Debug, Clone)]
pub struct Receiver {
    config: Arc<ReceiverConfig>,
    stats: Arc<ReceiverStats>,
    queue: mpsc::Sender<Received>,
}

/// Creates a receiver and the queue its output arrives on.
pub fn receiver(config: ReceiverConfig) -> (Receiver, mpsc::Receiver<Received>) {
    let (queue, output) = mpsc::channel(config.queue_capacity.max(1));
    let receiver = Receiver {
        config: Arc::new(config),
        stats: Arc::new(ReceiverStats::default()),
        queue,
    };
    (receiver, output)
}

/// Why a request was turned away.
enum Refusal {
    QueueFull,
    Closed,
}

impl Receiver {
    pub fn stats(&self) -> &Arc<ReceiverStats> {
        &self.stats
    }

    /// Validates and enqueues decoded spans; returns the partial-success report.
    fn accept_spans(
        &self,
        spans: Vec<Span>,
        rejected: Vec<String>,
    ) -> Result<Option<ExportTracePartialSuccess>, Refusal> {
        let accepted = spans.len() as u64;
        if accepted > 0 {
            match self.queue.try_send(Received::Spans(spans)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    bump(&self.stats.refused_spans, accepted + rejected.len() as u64);
                    return Err(Refusal::QueueFull);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(Refusal::Closed),
            }
        }
        bump(&self.stats.accepted_spans, accepted);
        if rejected.is_empty() {
            return Ok(None);
        }
        bump(&self.stats.rejected_spans, rejected.len() as u64);
        let shown: Vec<&str> = rejected.iter().take(3).map(String::as_str).collect();
        let more = rejected.len().saturating_sub(shown.len());
        let mut error_message = shown.join("; ");
        if more > 0 {
            error_message.push_str(&format!("; and {more} more"));
        }
        Ok(Some(ExportTracePartialSuccess {
            rejected_spans: rejected.len() as i64,
            error_message,
        }))
    }

    fn forward(&self, item: Received) -> Result<(), Refusal> {
        self.queue.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Refusal::QueueFull,
            mpsc::error::TrySendError::Closed(_) => Refusal::Closed,
        })
    }

    /// The axum router serving OTLP/gRPC and OTLP/HTTP.
    pub fn router(&self) -> Router {
        let limit = self.config.max_message_bytes;
        let trace = TraceServiceServer::new(self.clone())
            .max_decoding_message_size(limit)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let metrics = MetricsServiceServer::new(self.clone())
            .max_decoding_message_size(limit)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let logs = LogsServiceServer::new(self.clone())
            .max_decoding_message_size(limit)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let grpc = tonic::service::Routes::new(trace)
            .add_service(metrics)
            .add_service(logs)
            .into_axum_router();
        let http = Router::new()
            .route("/v1/traces", post(http_traces))
            .route("/v1/metrics", post(http_metrics))
            .route("/v1/logs", post(http_logs))
            // The limit is enforced in `read_body`, after decompression, with OTLP's answer.
            .layer(DefaultBodyLimit::disable())
            .with_state(self.clone());
        grpc.merge(http)
    }

    /// Serves on `listener` until `shutdown` completes; in-flight requests finish first.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// A receiver serving in the background (see [`Receiver::spawn`]); dropping it stops
/// the server gracefully.
#[derive(Debug)]
pub struct Serving {
    /// The bound address (the real port when port 0 was asked for).
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped; then there is nothing to tell.
            let _ = stop.send(());
        }
    }
}

impl Receiver {
    /// Binds `addr` and serves on a background task until the returned handle is dropped.
    /// For embedding a receiver: benchmarks, tests, and (later) the TUI.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<Serving> {
        let (listener, addr) = bind(addr).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = self.clone();
        tokio::spawn(async move {
            // Serving ends only on shutdown; an accept-loop I/O error ends it early, and
            // the owner then sees its requests fail.
            let _ = server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Serving {
            addr,
            stop: Some(stop),
        })
    }
}

/// Binds `addr` (port 0 picks a free port) and reports the bound address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

// ------------------------------------------------------------------------------ gRPC

fn refusal_status(refusal: Refusal) -> tonic::Status {
    match refusal {
        Refusal::QueueFull => {
            tonic::Status::unavailable("faultline receiver queue is full; retry later")
        }
        Refusal::Closed => tonic::Status::unavailable("faultline receiver is shutting down"),
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        bump(&self.stats.requests, 1);
        let mut spans = Vec::new();
        let mut rejected = Vec::new();
        convert_otlp_proto_request(request.into_inner(), &mut spans, &mut rejected);
        let partial_success = self.accept_spans(spans, rejected).map_err(refusal_status)?;
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        bump(&self.stats.metrics_requests, 1);
        if self.config.keep_metrics {
            self.forward(Received::Metrics(request.into_inner()))
                .map_err(refusal_status)?;
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        bump(&self.stats.logs_requests, 1);
        if self.config.keep_logs {
            self.forward(Received::Logs(request.into_inner()))
                .map_err(refusal_status)?;
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

// ------------------------------------------------------------------------------ HTTP

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body of every OTLP/HTTP error response.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// An OTLP/HTTP error: status code plus a `google.rpc.Status` body.
fn error_response(
    status: StatusCode,
    grpc_code: tonic::Code,
    message: String,
    encoding: Encoding,
) -> Response {
    let body = match encoding {
        Encoding::Protobuf => RpcStatus {
            code: grpc_code as i32,
            message,
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": grpc_code as i32, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}

fn refusal_response(refusal: Refusal, encoding: Encoding) -> Response {
    let message = match refusal {
        Refusal::QueueFull => "faultline receiver queue is full; retry later",
        Refusal::Closed => "faultline receiver is shutting down",
    };
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        tonic::Code::Unavailable,
        message.into(),
        encoding,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Checks the content type and reads the (decompressed) body within the size limit.
async fn read_body(
    receiver: &Receiver,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, Vec<u8>), Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        _ => {
            bump(&receiver.stats.bad_requests, 1);
            let message = format!(
                "unsupported content type {content_type:?}: OTLP/HTTP takes application/x-protobuf or application/json"
            );
            return Err(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
                message,
                Encoding::Protobuf,
            ));
        }
    };
    let limit = receiver.config.max_message_bytes;
    let too_large = |what: &str| {
        bump(&receiver.stats.bad_requests, 1);
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            tonic::Code::ResourceExhausted,
            format!("{what} exceeds the receiver's limit of {limit} bytes"),
            encoding,
        )
    };
    let raw: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large("request body"))?;
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let decoder: Box<dyn Read + '_> = match content_encoding.as_str() {
        "identity" | "" => return Ok((encoding, raw.to_vec())),
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(&raw[..])),
        "zstd" => match zstd::stream::read::Decoder::new(&raw[..]) {
            Ok(d) => Box::new(d),
            Err(e) => return Err(bad_request(receiver, format!("zstd: {e}"), encoding)),
        },
        other => {
            bump(&receiver.stats.bad_requests, 1);
            return Err(error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
                format!("unsupported content encoding {other:?}: use gzip, zstd or none"),
                encoding,
            ));
        }
    };
    // Read one byte past the limit to tell "exactly at the limit" from "over it",
    // without letting a compression bomb expand beyond it.
    let mut decoded = Vec::new();
    if let Err(e) = decoder.take(limit as u64 + 1).read_to_end(&mut decoded) {
        return Err(bad_request(
            receiver,
            format!("cannot decompress the body ({content_encoding}): {e}"),
            encoding,
        ));
    }
    if decoded.len() > limit {
        return Err(too_large("decompressed request body"));
    }
    Ok((encoding, decoded))
}

fn bad_request(receiver: &Receiver, message: String, encoding: Encoding) -> Response {
    bump(&receiver.stats.bad_requests, 1);
    error_response(
        StatusCode::BAD_REQUEST,
        tonic::Code::InvalidArgument,
        message,
        encoding,
    )
}

fn ok_response(encoding: Encoding, response: &ExportTraceServiceResponse) -> Response {
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => match &response.partial_success {
            None => b"{}".to_vec(),
            Some(p) => serde_json::json!({
                "partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(),
                    "errorMessage": p.error_message,
                }
            })
            .to_string()
            .into_bytes(),
        },
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}

async fn http_traces(State(receiver): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    bump(&receiver.stats.requests, 1);
    let (encoding, bytes) = match read_body(&receiver, &headers, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let decoded = match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(&bytes[..])
            .map(|request| {
                let mut spans = Vec::new();
                let mut rejected = Vec::new();
                convert_otlp_proto_request(request, &mut spans, &mut rejected);
                (spans, rejected)
            })
            .map_err(|e| format!("malformed OTLP protobuf: {e}")),
        Encoding::Json => {
            parse_otlp_json_request(&bytes).map_err(|e| format!("malformed OTLP JSON: {e}"))
        }
    };
    let (spans, rejected) = match decoded {
        Ok(decoded) => decoded,
        Err(message) => return bad_request(&receiver, message, encoding),
    };
    match receiver.accept_spans(spans, rejected) {
        Ok(partial_success) => {
            ok_response(encoding, &ExportTraceServiceResponse { partial_success })
        }
        Err(refusal) => refusal_response(refusal, encoding),
    }
}

/// Metrics and logs over HTTP: checked for well-formedness, counted, forwarded when kept.
async fn http_other(receiver: Receiver, headers: HeaderMap, body: Body, metrics: bool) -> Response {
    let (counter, keep) = if metrics {
        (
            &receiver.stats.metrics_requests,
            receiver.config.keep_metrics,
        )
    } else {
        (&receiver.stats.logs_requests, receiver.config.keep_logs)
    };
    bump(counter, 1);
    let (encoding, bytes) = match read_body(&receiver, &headers, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let item = match (encoding, metrics) {
        (Encoding::Protobuf, true) => ExportMetricsServiceRequest::decode(&bytes[..])
            .map(Received::Metrics)
            .map(Some),
        (Encoding::Protobuf, false) => ExportLogsServiceRequest::decode(&bytes[..])
            .map(Received::Logs)
            .map(Some),
        (Encoding::Json, _) => match serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
            Ok(_) => Ok(None),
            Err(e) => return bad_request(&receiver, format!("malformed OTLP JSON: {e}"), encoding),
        },
    };
    match item {
        Err(e) => bad_request(&receiver, format!("malformed OTLP protobuf: {e}"), encoding),
        Ok(Some(item)) if keep => match receiver.forward(item) {
            Ok(()) => ok_response(encoding, &ExportTraceServiceResponse::default()),
            Err(refusal) => refusal_response(refusal, encoding),
        },
        // An empty Export*ServiceResponse encodes the same for every signal.
        Ok(_) => ok_response(encoding, &ExportTraceServiceResponse::default()),
    }
}

async fn http_metrics(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    http_other(receiver, headers, body, true).await
}

async fn http_logs(State(receiver): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    http_other(receiver, headers, body, false).await
}

#[cfg(test)]
mod tests;
