use faultline_model::receiver::{Received, ReceiverConfig, receiver};
use faultline_model::w3c::{CorrelationId, CorrelationSource};
use faultline_model::{SpanKind, StatusCode};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};

use super::*;

fn hop(trace: u8, span: u8, parent: Option<u8>, sampled: bool) -> HopContext {
    HopContext {
        trace_id: faultline_model::TraceId([trace; 16]),
        span_id: faultline_model::SpanId([span; 8]),
        parent_span_id: parent.map(|p| faultline_model::SpanId([p; 8])),
        sampled,
        tracestate: "vendor=abc".into(),
        correlation_id: CorrelationId::parse("order-42").unwrap(),
        correlation_source: CorrelationSource::CorrelationHeader,
        restarted: None,
    }
}

fn span(hop: HopContext, kind: ProxySpanKind, error: Option<&str>) -> ProxySpan {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    ProxySpan {
        hop,
        kind,
        name: "POST /orders".into(),
        start,
        end: start + Duration::from_millis(12),
        attributes: vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new(
                "http.response.status_code",
                if error.is_some() { 502 } else { 201 },
            ),
        ],
        error: error.map(str::to_owned),
    }
}

/// The value of an unlabelled counter in the Prometheus text.
fn counter(metrics: &Metrics, name: &str) -> u64 {
    let text = metrics.render();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
}

#[tokio::test]
async fn spans_reach_an_otlp_receiver_with_the_hops_exact_ids() {
    let (otlp, mut output) = receiver(ReceiverConfig::default());
    let serving = otlp.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = serving.addr;

    let metrics = Metrics::new();
    let exporter =
        otlp_exporter(&format!("http://{addr}"), "node-1", Duration::from_secs(5)).unwrap();
    let (sink, exporting) = start(exporter, ExportConfig::default(), metrics.clone());
    sink.record(span(hop(1, 2, Some(9), true), ProxySpanKind::Server, None));
    sink.record(span(
        hop(1, 3, Some(2), true),
        ProxySpanKind::Client,
        Some("upstream refused the connection"),
    ));
    sink.record(span(hop(4, 5, None, false), ProxySpanKind::Server, None));
    drop(sink);
    exporting.shutdown().await;

    let mut got = Vec::new();
    while got.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), output.recv()).await {
            Ok(Some(Received::Spans(spans))) => got.extend(spans),
            other => panic!("expected spans, got {other:?}"),
        }
    }
    drop(serving);
    got.sort_by_key(|s| s.span_id);
    let (server, client) = (&got[0], &got[1]);
    assert_eq!(got.len(), 2, "the unsampled span is not exported");
    assert_eq!(server.trace_id, faultline_model::TraceId([1; 16]));
    assert_eq!(
        server.span_id,
        faultline_model::SpanId([2; 8]),
        "the id forwarded in traceparent"
    );
    assert_eq!(server.parent_span_id, Some(faultline_model::SpanId([9; 8])));
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.parent_span_id, Some(server.span_id));
    assert_eq!(server.trace_state, "vendor=abc");
    assert_eq!(server.duration_ns(), 12_000_000);
    assert_eq!(
        server.attributes.get_str("correlation.id"),
        Some("order-42")
    );
    assert_eq!(
        server.attributes.get_i64("http.response.status_code"),
        Some(201)
    );
    assert_eq!(client.status.code, StatusCode::Error);
    assert_eq!(client.status.message, "upstream refused the connection");
    assert_eq!(
        server.resource.attributes.get_str("faultline.node"),
        Some("node-1")
    );
    assert!(server.resource.attributes.get_str("service.name").is_some());
    assert_eq!(server.scope.name, "faultline-agent");
    assert_eq!(counter(&metrics, "faultline_agent_spans_exported_total"), 2);
    assert_eq!(counter(&metrics, "faultline_agent_spans_dropped_total"), 0);
}

/// An exporter that never finishes, like a collector that stopped answering; it says
/// when an export has begun.
#[derive(Debug)]
struct Stuck(std::sync::Arc<tokio::sync::Notify>);

impl SpanExporter for Stuck {
    fn export(
        &self,
        _batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.notify_one();
        std::future::pending()
    }
}

#[tokio::test]
async fn a_stuck_exporter_never_blocks_the_request_path_and_drops_are_counted() {
    let metrics = Metrics::new();
    let began = std::sync::Arc::new(tokio::sync::Notify::new());
    let config = ExportConfig {
        queue_capacity: 4,
        batch_size: 1,
        interval: Duration::from_secs(60),
    };
    let (sink, _exporting) = start(Stuck(began.clone()), config, metrics.clone());
    // The batcher takes the first span into its export, which never ends.
    sink.record(span(hop(1, 1, None, true), ProxySpanKind::Server, None));
    began.notified().await;
    // Every further record returns at once: 4 fit in the queue, the rest are dropped.
    for i in 0..1000u16 {
        sink.record(span(
            hop(1, (i % 200) as u8 + 2, None, true),
            ProxySpanKind::Server,
            None,
        ));
    }
    assert_eq!(
        counter(&metrics, "faultline_agent_spans_dropped_total"),
        1000 - 4
    );
}

/// An exporter whose collector refuses everything.
#[derive(Debug)]
struct Failing;

impl SpanExporter for Failing {
    fn export(
        &self,
        _batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        std::future::ready(Err(OTelSdkError::InternalFailure(
            "collector said no".into(),
        )))
    }
}

#[tokio::test]
async fn failed_exports_count_as_dropped() {
    let metrics = Metrics::new();
    let (sink, exporting) = start(Failing, ExportConfig::default(), metrics.clone());
    for i in 0..7 {
        sink.record(span(hop(1, i + 1, None, true), ProxySpanKind::Client, None));
    }
    drop(sink);
    exporting.shutdown().await;
    assert_eq!(counter(&metrics, "faultline_agent_spans_dropped_total"), 7);
    assert_eq!(counter(&metrics, "faultline_agent_spans_exported_total"), 0);
}
