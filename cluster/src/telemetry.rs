//! The node's telemetry: `tracing` spans exported as OpenTelemetry spans over OTLP/gRPC
//! (tracing-opentelemetry + opentelemetry-otlp), log lines on stderr, and the W3C
//! trace-context glue between HTTP headers and spans.
//!
//! ```text
//!  request headers ─extract─► server span ─► handler spans/attributes ─► OpenTelemetryLayer ─► batch ─► OTLP endpoint
//!  (traceparent from the agent)     │                                     (faultline_cluster spans only)
//!                                   └─inject─► traceparent on calls to peers (through the agent outbound)
//!  events (info and up) ─► stderr (FAULTLINE_LOG=target=level,…)
//! ```
//!
//! Only this crate's spans are exported: openraft's own spans are internal detail and
//! would bury the ones a diagnosis needs. The attribute names are documented in
//! `docs/conventions.md`.

use std::str::FromStr as _;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, Registry};

/// The environment variable that sets what is logged on stderr, as `target=level` pairs
/// (`info`, `faultline_cluster=debug,openraft=info`).
pub const LOG_ENV: &str = "FAULTLINE_LOG";

const DEFAULT_LOG: &str = "warn,faultline_cluster=info";

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(
        "{LOG_ENV}={value:?} is not a log filter (expected e.g. \"info,openraft=warn\"): {source}"
    )]
    Filter {
        value: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("a tracing subscriber is already installed in this process")]
    AlreadyInstalled,
}

/// The installed telemetry; [`Telemetry::shutdown`] flushes the spans still queued.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is queued and stops. Call it outside async code (it blocks) while
    /// the runtime that built the exporter is still alive.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("faultline: flushing spans at shutdown failed: {e}");
        }
    }
}

/// Installs this process's subscriber: log lines to stderr, and — with `otlp` — spans to
/// that OTLP/gRPC endpoint (`http://127.0.0.1:4317`) with the resource `service.name`
/// (`OTEL_SERVICE_NAME`, else `service`), `service.instance.id` and `faultline.node` =
/// `node`. Must be called inside a tokio runtime that outlives the returned handle (the
/// gRPC client lives on it).
pub fn init(service: &str, node: &str, otlp: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let filter_text = std::env::var(LOG_ENV).unwrap_or_else(|_| DEFAULT_LOG.to_owned());
    let log_filter = Targets::from_str(&filter_text).map_err(|source| TelemetryError::Filter {
        value: filter_text.clone(),
        source,
    })?;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_filter(log_filter);
    let Some(endpoint) = otlp else {
        Registry::default()
            .with(logs)
            .try_init()
            .map_err(|_| TelemetryError::AlreadyInstalled)?;
        return Ok(Telemetry { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    // Spans leave every second (the SDK's default is 5 s) so that a live view is
    // current; `OTEL_BSP_SCHEDULE_DELAY` still wins when set.
    let mut batch = BatchConfigBuilder::default();
    if std::env::var_os("OTEL_BSP_SCHEDULE_DELAY").is_none() {
        batch = batch.with_scheduled_delay(Duration::from_secs(1));
    }
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch.build())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource(service, node))
        .build();
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("faultline-cluster"))
        .with_location(false)
        .with_threads(false)
        // busy_ns/idle_ns per span: noise in every capture.
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(Targets::new().with_target("faultline_cluster", tracing::Level::INFO));
    Registry::default()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry {
        provider: Some(provider),
    })
}

fn resource(service: &str, node: &str) -> Resource {
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.instance.id", node.to_owned()))
        .with_attribute(KeyValue::new("faultline.node", node.to_owned()));
    // The builder reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; only when neither
    // names the service is `service` used.
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if named {
        builder.build()
    } else {
        builder.with_service_name(service.to_owned()).build()
    }
}

struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderWriter<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the trace named by `headers`' `traceparent` (and keeps their
/// `tracestate`); without a valid one the span starts a trace.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderReader(headers));
    if parent.span().span_context().is_valid() {
        // Fails only for a span the OpenTelemetry layer does not see (not exporting).
        let _ = span.set_parent(parent);
    }
}

/// Writes `span`'s context as `traceparent`/`tracestate` into `headers`, replacing what
/// is there; leaves them alone when the span is not exported (no OTLP endpoint), so the
/// caller's own trace context still travels.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderWriter(headers));
    }
}

/// Renames `span` (once started, tracing-opentelemetry ignores `otel.name` records):
/// a handler names its request's span after the operation it turned out to be.
pub fn rename(span: &tracing::Span, name: impl Into<std::borrow::Cow<'static, str>>) {
    span.context().span().update_name(name.into());
}

/// Sets an attribute on `span` (an attribute not declared when the span was created).
pub fn set(
    span: &tracing::Span,
    key: impl Into<opentelemetry::Key>,
    value: impl Into<opentelemetry::Value>,
) {
    span.set_attribute(key, value);
}

/// Sets every attribute of `attributes` on `span`.
pub fn set_all(span: &tracing::Span, attributes: Vec<KeyValue>) {
    for attribute in attributes {
        span.set_attribute(attribute.key, attribute.value);
    }
}

/// Routes whose requests get a server span here. Raft appends are traced by their
/// handler only when they carry entries (heartbeats would bury everything else);
/// `/status`, `/metrics` and `/admin/*` are polled by tools and not traced.
fn traced(route: &str) -> bool {
    !(route == "/raft/append"
        || route == "/status"
        || route == "/metrics"
        || route.starts_with("/admin/"))
}

/// Axum middleware (a `route_layer`): one server span per request of a traced route,
/// continuing the caller's trace, with the HTTP attributes and — set by the handler —
/// the operation's. A 5xx or an `error.type` marks the span as an error.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(route) = route.filter(|r| traced(r)) else {
        return next.run(request).await;
    };
    let method = request.method().as_str().to_owned();
    let correlation = request
        .headers()
        .get("x-correlation-id")
        .or_else(|| request.headers().get("x-request-id"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "http.server",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method.as_str(),
        http.route = route.as_str(),
        url.path = request.uri().path(),
        http.response.status_code = Empty,
        error.type = Empty,
    );
    continue_trace(&span, request.headers());
    if !correlation.is_empty() {
        set(&span, "correlation.id", correlation);
    }
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "error");
        // The handler may have named the error already (`no_leader`, …); the status
        // code is the fallback the HTTP conventions prescribe.
        let named = response
            .extensions()
            .get::<ErrorType>()
            .map(|e| e.0.to_owned());
        span.record(
            "error.type",
            named.unwrap_or_else(|| status.as_u16().to_string()),
        );
    } else if let Some(e) = response.extensions().get::<ErrorType>() {
        span.record("error.type", e.0);
    }
    response
}

/// Put on an error response by a handler: the `error.type` its server span records.
#[derive(Debug, Clone, Copy)]
pub struct ErrorType(pub &'static str);
