//! Proxy spans out of the request path: a bounded queue, a batching task, and the
//! OpenTelemetry OTLP exporter.
//!
//! ```text
//!  request path ─► SpanSink::record ─try_send─► [bounded queue] ─► batcher task ─► SpanExporter (OTLP)
//!                        │ full: drop, count                    (512 spans or 1 s)   │ error: count as dropped
//!                        └──────────────────────────► Metrics: spans_dropped / spans_exported
//! ```
//!
//! The request path never waits on telemetry (STYLE.md: "a full sink drops and counts").
//! Spans are built here rather than by an SDK tracer because their ids are already
//! decided by propagation: the hop's span id is the parent-id written into the forwarded
//! `traceparent`, and the exported span must carry exactly that id. The exporter is
//! `opentelemetry_otlp::SpanExporter` (gRPC); the resource honours the standard
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` variables.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind as OtelKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter, SpanLinks};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::propagation::HopContext;

/// One request as the agent saw it: a server span (inbound) or a client span (outbound).
#[derive(Debug, Clone)]
pub struct ProxySpan {
    pub hop: HopContext,
    pub kind: ProxySpanKind,
    /// `METHOD route`, per the HTTP semantic conventions' span naming.
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Semantic-convention attributes (`http.*`, `server.*`, `error.type`, …).
    pub attributes: Vec<KeyValue>,
    /// Set when the request failed (5xx, no response): the span's error status message.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySpanKind {
    /// A request arriving for the node (the inbound listener).
    Server,
    /// A call from the node to a peer (the outbound listener).
    Client,
}

/// Where the request path hands its spans; cheap to clone into every connection.
#[derive(Debug, Clone)]
pub struct SpanSink {
    queue: mpsc::Sender<ProxySpan>,
    metrics: Metrics,
}

impl SpanSink {
    /// Queues `span` for export without waiting. Unsampled spans are not exported (the
    /// caller asked for none); when the queue is full the span is dropped and counted.
    pub fn record(&self, span: ProxySpan) {
        if !span.hop.sampled {
            return;
        }
        if self.queue.try_send(span).is_err() {
            self.metrics.spans_dropped(1);
        }
    }
}

/// How spans are batched and exported.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Spans waiting for the exporter; beyond it they are dropped and counted.
    pub queue_capacity: usize,
    /// Spans per export call.
    pub batch_size: usize,
    /// A partial batch is exported after this long.
    pub interval: Duration,
}

impl Default for ExportConfig {
    fn default() -> Self {
        // The OpenTelemetry SDK's batch processor defaults: 2048 queued, 512 per batch;
        // a shorter interval than its 5 s so that a live view sees spans promptly.
        ExportConfig {
            queue_capacity: 2048,
            batch_size: 512,
            interval: Duration::from_secs(1),
        }
    }
}

/// The OTLP/gRPC exporter for `endpoint` (e.g. `http://127.0.0.1:4317`), with the agent's
/// resource: `service.name` (from `OTEL_SERVICE_NAME`, else `faultline-agent`) and the
/// node it fronts. Must be called inside a tokio runtime.
pub fn otlp_exporter(
    endpoint: &str,
    node: &str,
    timeout: Duration,
) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(timeout)
        .build()?;
    exporter.set_resource(&resource(node));
    Ok(exporter)
}

fn resource(node: &str) -> Resource {
    let builder =
        Resource::builder().with_attribute(KeyValue::new("faultline.node", node.to_owned()));
    // The builder reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; only when neither
    // names the service is the agent's own name used.
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if named {
        builder.build()
    } else {
        builder.with_service_name("faultline-agent").build()
    }
}

/// The running batcher. Dropping every [`SpanSink`] and calling [`Exporting::shutdown`]
/// flushes what is queued.
#[derive(Debug)]
pub struct Exporting {
    task: JoinHandle<()>,
}

impl Exporting {
    /// Waits for the batcher to export what is queued and stop. Every `SpanSink` must be
    /// dropped first, or this waits for them.
    pub async fn shutdown(self) {
        // A panicked batcher has nothing left to flush; its panic is not ours to re-raise.
        let _ = self.task.await;
    }
}

/// Starts the batching task (inside a tokio runtime) and returns the sink to record into.
pub fn start<E>(exporter: E, config: ExportConfig, metrics: Metrics) -> (SpanSink, Exporting)
where
    E: SpanExporter + 'static,
{
    let (queue, mut incoming) = mpsc::channel(config.queue_capacity.max(1));
    let sink = SpanSink {
        queue,
        metrics: metrics.clone(),
    };
    let batch_size = config.batch_size.max(1);
    let task = tokio::spawn(async move {
        let exporter = exporter;
        let scope = InstrumentationScope::builder("faultline-agent")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let mut batch: Vec<SpanData> = Vec::with_capacity(batch_size);
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                received = incoming.recv() => match received {
                    Some(span) => {
                        batch.push(to_span_data(span, &scope));
                        if batch.len() >= batch_size {
                            flush(&exporter, &mut batch, &metrics).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => flush(&exporter, &mut batch, &metrics).await,
            }
        }
        flush(&exporter, &mut batch, &metrics).await;
        // The exporter's shutdown may block; keep it off the runtime's worker threads.
        let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
    });
    (sink, Exporting { task })
}

async fn flush<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, metrics: &Metrics) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let n = spans.len() as u64;
    // The OTLP exporter retries retryable failures itself; what still fails is lost.
    match exporter.export(spans).await {
        Ok(()) => metrics.spans_exported(n),
        Err(_) => metrics.spans_dropped(n),
    }
}

fn to_span_data(span: ProxySpan, scope: &InstrumentationScope) -> SpanData {
    let hop = &span.hop;
    let flags = if hop.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    // The tracestate came through the W3C parser; an OpenTelemetry parse failure would
    // only mean an empty one on the exported span, never a lost span.
    let trace_state = hop.tracestate.parse::<TraceState>().unwrap_or_default();
    let context = SpanContext::new(
        TraceId::from_bytes(hop.trace_id.0),
        SpanId::from_bytes(hop.span_id.0),
        flags,
        false,
        trace_state,
    );
    let mut attributes = span.attributes;
    attributes.push(KeyValue::new(
        faultline_model::w3c::SPAN_ATTRIBUTE,
        hop.correlation_id.as_str().to_owned(),
    ));
    SpanData {
        span_context: context,
        parent_span_id: hop
            .parent_span_id
            .map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.0)),
        parent_span_is_remote: hop.parent_span_id.is_some(),
        span_kind: match span.kind {
            ProxySpanKind::Server => OtelKind::Server,
            ProxySpanKind::Client => OtelKind::Client,
        },
        name: Cow::Owned(span.name),
        start_time: span.start,
        end_time: span.end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match span.error {
            Some(message) => Status::error(message),
            None => Status::Unset,
        },
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests;
