//! The receiver over real sockets on 127.0.0.1: a tonic gRPC client and reqwest.

use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan};

use super::*;

fn proto_span(trace: u8, id: u8, parent: Option<u8>) -> ProtoSpan {
    ProtoSpan {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: format!("op-{id}"),
        kind: 2,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_000,
        ..ProtoSpan::default()
    }
}

fn request(spans: Vec<ProtoSpan>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("checkout".into())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            schema_url: String::new(),
        }],
    }
}

struct Running {
    addr: SocketAddr,
    receiver: Receiver,
    output: mpsc::Receiver<Received>,
    _serving: Serving,
}

async fn start(config: ReceiverConfig) -> Running {
    let (receiver, output) = super::receiver(config);
    let serving = receiver
        .spawn("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Running {
        addr: serving.addr,
        receiver,
        output,
        _serving: serving,
    }
}

async fn next_spans(output: &mut mpsc::Receiver<Received>) -> Vec<Span> {
    match tokio::time::timeout(Duration::from_secs(5), output.recv()).await {
        Ok(Some(Received::Spans(spans))) => spans,
        other => panic!("expected spans, got {other:?}"),
    }
}

async fn grpc_client(addr: SocketAddr) -> TraceServiceClient<tonic::transport::Channel> {
    TraceServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

#[tokio::test]
async fn grpc_export_delivers_spans_with_parents() {
    let mut running = start(ReceiverConfig::default()).await;
    let mut client = grpc_client(running.addr).await;
    let response = client
        .export(request(vec![
            proto_span(1, 1, None),
            proto_span(1, 2, Some(1)),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.partial_success, None);
    let spans = next_spans(&mut running.output).await;
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[1].parent_span_id, Some(spans[0].span_id));
    assert_eq!(spans[0].service_name(), "checkout");
    assert_eq!(running.receiver.stats().snapshot().accepted_spans, 2);
}

#[tokio::test]
async fn grpc_accepts_gzip_and_zstd() {
    let mut running = start(ReceiverConfig::default()).await;
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut client = grpc_client(running.addr).await.send_compressed(encoding);
        client
            .export(request(vec![proto_span(7, 1, None)]))
            .await
            .unwrap();
        assert_eq!(next_spans(&mut running.output).await.len(), 1);
    }
}

#[tokio::test]
async fn invalid_spans_are_rejected_as_partial_success() {
    let mut running = start(ReceiverConfig::default()).await;
    let mut bad = proto_span(1, 2, None);
    bad.trace_id = vec![0; 16];
    let mut short = proto_span(1, 3, None);
    short.span_id = vec![1, 2, 3];
    let response = grpc_client(running.addr)
        .await
        .export(request(vec![proto_span(1, 1, None), bad, short]))
        .await
        .unwrap()
        .into_inner();
    let partial = response.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial.error_message.contains("all-zero trace id"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.contains("span id has 3 bytes"),
        "{}",
        partial.error_message
    );
    assert_eq!(next_spans(&mut running.output).await.len(), 1);
    let stats = running.receiver.stats().snapshot();
    assert_eq!((stats.accepted_spans, stats.rejected_spans), (1, 2));
}

#[tokio::test]
async fn oversized_grpc_message_gets_an_error_and_the_receiver_keeps_serving() {
    let mut running = start(ReceiverConfig {
        max_message_bytes: 2048,
        ..ReceiverConfig::default()
    })
    .await;
    let mut client = grpc_client(running.addr).await;
    let mut big = proto_span(1, 1, None);
    big.name = "x".repeat(4096);
    let status = client.export(request(vec![big])).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("too large"),
        "{}",
        status.message()
    );
    client
        .export(request(vec![proto_span(1, 2, None)]))
        .await
        .unwrap();
    assert_eq!(next_spans(&mut running.output).await.len(), 1);
}

#[tokio::test]
async fn full_queue_refuses_with_retryable_errors_and_counts() {
    let running = start(ReceiverConfig {
        queue_capacity: 1,
        ..ReceiverConfig::default()
    })
    .await;
    let mut client = grpc_client(running.addr).await;
    client
        .export(request(vec![proto_span(1, 1, None)]))
        .await
        .unwrap();
    // Nobody reads the queue: the second request finds it full.
    let status = client
        .export(request(vec![
            proto_span(1, 2, None),
            proto_span(1, 3, None),
        ]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let http = reqwest::Client::new()
        .post(format!("http://{}/v1/traces", running.addr))
        .header("content-type", "application/x-protobuf")
        .body(request(vec![proto_span(1, 4, None)]).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(http.status(), 503);
    assert_eq!(http.headers().get("retry-after").unwrap(), "1");
    let stats = running.receiver.stats().snapshot();
    assert_eq!((stats.accepted_spans, stats.refused_spans), (1, 3));
}

async fn post(
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        req = req.header("content-encoding", encoding);
    }
    req.send().await.unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn http_protobuf_and_json_with_and_without_gzip() {
    let mut running = start(ReceiverConfig::default()).await;
    let body = request(vec![proto_span(2, 1, None)]).encode_to_vec();
    let response = post(
        running.addr,
        "/v1/traces",
        "application/x-protobuf",
        None,
        body.clone(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let decoded = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(decoded.partial_success, None);
    assert_eq!(next_spans(&mut running.output).await[0].name, "op-1");

    let response = post(
        running.addr,
        "/v1/traces",
        "application/x-protobuf",
        Some("gzip"),
        gzip(&body),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(next_spans(&mut running.output).await.len(), 1);

    let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
        {"traceId":"0AF7651916CD43DD8448EB211C80319C","spanId":"b7ad6b7169203331","name":"GET /","kind":"SPAN_KIND_SERVER","startTimeUnixNano":"5","endTimeUnixNano":9},
        {"traceId":"00000000000000000000000000000000","spanId":"b7ad6b7169203332","name":"bad"}]}]}]}"#;
    let response = post(
        running.addr,
        "/v1/traces",
        "application/json; charset=utf-8",
        Some("gzip"),
        gzip(json),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json_body().await;
    assert_eq!(body["partialSuccess"]["rejectedSpans"], "1");
    let spans = next_spans(&mut running.output).await;
    assert_eq!(
        (spans.len(), spans[0].end_ns, spans[0].kind),
        (1, 9, crate::SpanKind::Server)
    );
}

#[tokio::test]
async fn http_errors_use_the_protocol_status_body() {
    let running = start(ReceiverConfig {
        max_message_bytes: 1024,
        ..ReceiverConfig::default()
    })
    .await;
    let addr = running.addr;

    let response = post(addr, "/v1/traces", "text/plain", None, b"hi".to_vec()).await;
    assert_eq!(response.status(), 415);

    let response = post(
        addr,
        "/v1/traces",
        "application/x-protobuf",
        None,
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(response.status(), 400);
    let status = RpcStatus::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert!(
        status.message.contains("malformed OTLP protobuf"),
        "{}",
        status.message
    );

    let response = post(
        addr,
        "/v1/traces",
        "application/json",
        None,
        b"{\"resourceSpans\": [".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json_body().await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("malformed OTLP JSON")
    );

    let response = post(
        addr,
        "/v1/traces",
        "application/x-protobuf",
        None,
        vec![0; 4096],
    )
    .await;
    assert_eq!(response.status(), 413);

    // A small gzip body that expands past the limit is caught after decompression.
    let bomb = gzip(&vec![b' '; 64 * 1024]);
    assert!(bomb.len() < 1024);
    let response = post(addr, "/v1/traces", "application/json", Some("gzip"), bomb).await;
    assert_eq!(response.status(), 413);

    let response = post(
        addr,
        "/v1/traces",
        "application/json",
        Some("br"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 415);

    // Still serving, and every bad request was counted.
    let response = post(addr, "/v1/traces", "application/json", None, b"{}".to_vec()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(running.receiver.stats().snapshot().bad_requests, 6);
}

#[tokio::test]
async fn metrics_and_logs_are_acknowledged_and_kept_on_request() {
    let mut running = start(ReceiverConfig {
        keep_metrics: true,
        ..ReceiverConfig::default()
    })
    .await;
    let metrics = ExportMetricsServiceRequest::default().encode_to_vec();
    let response = post(
        running.addr,
        "/v1/metrics",
        "application/x-protobuf",
        None,
        metrics,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(matches!(
        running.output.recv().await,
        Some(Received::Metrics(_))
    ));
    let response = post(
        running.addr,
        "/v1/logs",
        "application/json",
        None,
        b"{\"resourceLogs\":[]}".to_vec(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = post(
        running.addr,
        "/v1/logs",
        "application/x-protobuf",
        None,
        vec![0xff, 0xff],
    )
    .await;
    assert_eq!(response.status(), 400);
    let stats = running.receiver.stats().snapshot();
    assert_eq!((stats.metrics_requests, stats.logs_requests), (1, 2));
    assert!(
        running.output.try_recv().is_err(),
        "logs are not kept unless asked"
    );
}

/// reqwest without its `json` feature: parse the body with serde_json.
trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}
