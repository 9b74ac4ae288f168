//! Two agents and two tiny upstreams on 127.0.0.1, ports chosen by the OS.

use std::sync::Mutex as StdMutex;

use axum::Router;
use axum::extract::Path;
use axum::http::HeaderMap as AxumHeaders;
use axum::routing::get;
use faultline_model::w3c::TraceParent;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::*;
use crate::access_log::AccessLog;
use crate::export::{ExportConfig, Exporting, start};
use crate::toxics::ToxicSpec;

/// Collects exported spans in memory.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<StdMutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

/// The size of `/huge`: more than loopback socket buffers hold.
const HUGE: usize = 48 << 20;

/// A tiny upstream: echoes the propagation headers it received as JSON; `/status/N`
/// answers N; `/slow` takes a second.
async fn upstream() -> SocketAddr {
    async fn echo(headers: AxumHeaders) -> String {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        serde_json::json!({
            "traceparent": get("traceparent"),
            "correlation": get("x-correlation-id"),
            "caller": get(CALLER_HEADER),
            "baggage": get("baggage"),
        })
        .to_string()
    }
    async fn status(Path(code): Path<u16>) -> StatusCode {
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
    async fn big() -> String {
        "x".repeat(20_000)
    }
    async fn upload(body: String) -> String {
        body.len().to_string()
    }
    async fn huge() -> Vec<u8> {
        vec![b'x'; HUGE]
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(1)).await;
        "slow"
    }
    let app = Router::new()
        .route("/echo", get(echo))
        .route("/status/{code}", get(status))
        .route("/slow", get(slow))
        .route("/big", get(big))
        .route("/huge", get(huge))
        .route("/upload", axum::routing::post(upload));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct Agent {
    inbound: SocketAddr,
    outbound: SocketAddr,
    toxics: Arc<Mutex<Toxics>>,
    metrics: Metrics,
    spans: Collect,
    _exporting: Exporting,
    _stop: watch::Sender<bool>,
}

async fn agent(
    node: &str,
    upstream: SocketAddr,
    peers: Peers,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> Agent {
    logging_agent(node, upstream, peers, tweak, None).await
}

async fn logging_agent(
    node: &str,
    upstream: SocketAddr,
    peers: Peers,
    tweak: impl FnOnce(&mut ProxyConfig),
    access_log: Option<AccessLog>,
) -> Agent {
    let mut config = ProxyConfig::new(node, upstream, peers);
    tweak(&mut config);
    let toxics = Arc::new(Mutex::new(Toxics::new()));
    let metrics = Metrics::new();
    let spans = Collect::default();
    let (sink, exporting) = start(
        spans.clone(),
        ExportConfig {
            interval: Duration::from_millis(20),
            ..ExportConfig::default()
        },
        metrics.clone(),
    );
    let proxy = Proxy::new(
        config,
        Arc::clone(&toxics),
        metrics.clone(),
        sink,
        access_log,
    );
    let inbound_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outbound_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (inbound, outbound) = (
        inbound_listener.local_addr().unwrap(),
        outbound_listener.local_addr().unwrap(),
    );
    let (stop, stopped) = watch::channel(false);
    for (listener, direction) in [
        (inbound_listener, Direction::Inbound),
        (outbound_listener, Direction::Outbound),
    ] {
        let proxy = proxy.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move { proxy.serve(listener, direction, stopped).await });
    }
    Agent {
        inbound,
        outbound,
        toxics,
        metrics,
        spans,
        _exporting: exporting,
        _stop: stop,
    }
}

impl Agent {
    fn add(&self, json: &str) {
        let spec = ToxicSpec::from_json(json.as_bytes()).unwrap();
        self.toxics.lock().unwrap().add(spec).unwrap();
    }

    /// Spans exported so far (the batcher flushes every 20 ms).
    async fn spans(&self, at_least: usize) -> Vec<SpanData> {
        for _ in 0..250 {
            let spans = self.spans.0.lock().unwrap().clone();
            if spans.len() >= at_least {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {at_least} spans exported");
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn json(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// node-1's agent (outbound) → node-2's agent (inbound) → node-2's service.
async fn two_nodes() -> (Agent, Agent) {
    let service_1 = upstream().await;
    let service_2 = upstream().await;
    let agent_2 = agent("node-2", service_2, Peers::default(), |_| {}).await;
    let mut peers = Peers::default();
    peers.insert("node-2", agent_2.inbound);
    let agent_1 = agent("node-1", service_1, peers, |_| {}).await;
    (agent_1, agent_2)
}

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

#[tokio::test]
async fn one_trace_across_two_hops_with_a_fresh_span_per_hop() {
    let (agent_1, agent_2) = two_nodes().await;
    let response = client()
        .get(format!("http://{}/echo", agent_1.outbound))
        .header("host", "node-2")
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .header("x-correlation-id", "order-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = json(response).await;
    let received = TraceParent::parse(seen["traceparent"].as_str().unwrap()).unwrap();
    assert_eq!(
        received.trace_id().to_string(),
        TRACE,
        "one trace id end to end"
    );
    assert_eq!(
        seen["correlation"], "order-42",
        "the correlation id survives"
    );
    assert_eq!(seen["caller"], "", "the caller header is for agents only");
    assert!(
        seen["baggage"]
            .as_str()
            .unwrap()
            .contains("correlation.id=order-42")
    );

    let client_span = agent_1.spans(1).await.remove(0);
    let server_span = agent_2.spans(1).await.remove(0);
    assert_eq!(
        client_span.span_kind,
        opentelemetry::trace::SpanKind::Client
    );
    assert_eq!(
        server_span.span_kind,
        opentelemetry::trace::SpanKind::Server
    );
    assert_eq!(
        client_span.parent_span_id.to_string(),
        PARENT,
        "the caller's span is the parent"
    );
    assert_eq!(
        server_span.parent_span_id,
        client_span.span_context.span_id(),
        "hop 2 under hop 1"
    );
    assert_eq!(
        received.parent_id().to_string(),
        server_span.span_context.span_id().to_string(),
        "the service's parent is the inbound agent's span"
    );
    let attr = |span: &SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(
        attr(&server_span, "client.address").as_deref(),
        Some("node-1"),
        "inbound knows its caller"
    );
    assert_eq!(
        attr(&client_span, "server.address").as_deref(),
        Some("node-2")
    );
    assert_eq!(
        attr(&client_span, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(&server_span, "correlation.id").as_deref(),
        Some("order-42")
    );
}

#[tokio::test]
async fn latency_toxic_shows_in_the_timings() {
    let (agent_1, _agent_2) = two_nodes().await;
    agent_1.add(r#"{"type":"latency","latency_ms":300,"direction":"outbound","peer":"node-2"}"#);
    let started = Instant::now();
    let response = client()
        .get(format!("http://{}/echo", agent_1.outbound))
        .header("host", "node-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert!(agent_1.metrics.render().contains(
        r#"faultline_agent_fault_activations_total{direction="outbound",kind="latency"} 1"#
    ));
}

#[tokio::test]
async fn error_toxic_answers_without_forwarding_at_its_rate() {
    let (agent_1, agent_2) = two_nodes().await;
    agent_2.add(r#"{"type":"error","status":503,"direction":"inbound","probability":0.3}"#);
    let mut errors = 0;
    let n = 200;
    for _ in 0..n {
        let response = client()
            .get(format!("http://{}/echo", agent_1.outbound))
            .header("host", "node-2")
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            503 => errors += 1,
            200 => {}
            other => panic!("unexpected {other}"),
        }
    }
    // Binomial(200, 0.3): mean 60, sd ≈ 6.5; ±5 sd cannot flake in practice.
    assert!((28..=92).contains(&errors), "{errors} errors of {n}");
}

#[tokio::test]
async fn partition_refuses_and_blackhole_hangs_until_the_caller_gives_up() {
    let (agent_1, agent_2) = two_nodes().await;
    agent_2.add(r#"{"type":"partition","peers":["node-1"]}"#);
    let refused = client()
        .get(format!("http://{}/echo", agent_1.outbound))
        .header("host", "node-2")
        .send()
        .await;
    // The inbound agent drops the connection; node-1's agent reports the peer unreachable.
    let response = refused.unwrap();
    assert_eq!(
        response.status(),
        502,
        "node-1's agent turns the dropped connection into a 502"
    );

    agent_2.toxics.lock().unwrap().clear();
    agent_2.add(r#"{"type":"blackhole","direction":"inbound"}"#);
    let started = Instant::now();
    let held = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap()
        .get(format!("http://{}/echo", agent_2.inbound))
        .send()
        .await;
    assert!(
        held.unwrap_err().is_timeout(),
        "held until the caller's timeout"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn reset_drops_the_connection_and_bandwidth_paces_the_body() {
    let service = upstream().await;
    let node = agent("node-5", service, Peers::default(), |_| {}).await;
    node.add(r#"{"type":"reset","route":"/echo"}"#);
    let reset = client()
        .get(format!("http://{}/echo", node.inbound))
        .send()
        .await;
    let error = reset.unwrap_err();
    assert!(!error.is_timeout(), "a reset is immediate: {error}");

    node.add(r#"{"type":"bandwidth","bytes_per_sec":20000,"route":"/big"}"#);
    let started = Instant::now();
    let body = client()
        .get(format!("http://{}/big", node.inbound))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), 20_000, "every byte arrives");
    // 20,000 bytes at 20,000 B/s: about a second, less at most one pacing chunk.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
    let text = node.metrics.render();
    assert!(
        text.contains(
            r#"faultline_agent_fault_activations_total{direction="inbound",kind="reset"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"faultline_agent_fault_activations_total{direction="inbound",kind="bandwidth"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_peers_and_dead_upstreams_get_clear_502s_with_error_spans() {
    let (agent_1, _agent_2) = two_nodes().await;
    let response = client()
        .get(format!("http://{}/echo", agent_1.outbound))
        .header("host", "node-9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("unknown peer \"node-9\": the peers file lists node-2"),
        "{body}"
    );

    let dead = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap(); // closed at once
    let lonely = agent("node-3", dead, Peers::default(), |_| {}).await;
    let response = client()
        .get(format!("http://{}/echo", lonely.inbound))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("is unreachable"));
    let span = lonely.spans(1).await.remove(0);
    let error_type = span
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "error.type")
        .map(|kv| kv.value.to_string());
    assert_eq!(error_type.as_deref(), Some("connection_refused"));
    assert!(matches!(
        span.status,
        opentelemetry::trace::Status::Error { .. }
    ));
}

#[tokio::test]
async fn slow_upstreams_time_out_as_504() {
    let service = upstream().await;
    let impatient = agent("node-4", service, Peers::default(), |c| {
        c.response_timeout = Duration::from_millis(200)
    })
    .await;
    let response = client()
        .get(format!("http://{}/slow", impatient.inbound))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
}

#[tokio::test]
async fn upstream_errors_pass_through_and_count_as_errors() {
    let (agent_1, _agent_2) = two_nodes().await;
    let response = client()
        .get(format!("http://{}/status/503", agent_1.outbound))
        .header("host", "node-2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let text = agent_1.metrics.render();
    assert!(text.contains(r#"faultline_agent_request_errors_total{direction="outbound",peer="node-2",route="/status/503"} 1"#), "{text}");
    let span = agent_1.spans(1).await.remove(0);
    assert!(matches!(
        span.status,
        opentelemetry::trace::Status::Error { .. }
    ));
}

#[test]
fn peers_files_are_checked() {
    let peers = Peers::from_json(r#"{"node-2": "127.0.0.1:7102"}"#).unwrap();
    assert_eq!(peers.get("node-2"), Some("127.0.0.1:7102".parse().unwrap()));
    let err = Peers::from_json(r#"{"node-2": "localhost"}"#).unwrap_err();
    assert!(
        err.to_string().contains("\"localhost\" is not an address"),
        "{err}"
    );
    assert!(Peers::from_json("[1]").is_err());
}

#[tokio::test]
async fn grpc_passes_through_over_http2() {
    use faultline_model::receiver::{Received, ReceiverConfig, receiver};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    // A real gRPC service as the node: faultline's own OTLP receiver.
    let (otlp, mut output) = receiver(ReceiverConfig::default());
    let serving = otlp.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let node = agent("node-6", serving.addr, Peers::default(), |_| {}).await;

    let mut client = TraceServiceClient::connect(format!("http://{}", node.inbound))
        .await
        .unwrap();
    let span = Span {
        trace_id: vec![7; 16],
        span_id: vec![8; 8],
        name: "through the agent".into(),
        ..Span::default()
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    client.export(request).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), output.recv()).await {
        Ok(Some(Received::Spans(spans))) => assert_eq!(spans[0].name, "through the agent"),
        other => panic!("expected the span, got {other:?}"),
    }
    let exported = node.spans(1).await.remove(0);
    let version = exported
        .attributes
        .iter()
        .find(|kv| kv.key.as_str() == "network.protocol.version");
    assert_eq!(version.map(|kv| kv.value.to_string()).as_deref(), Some("2"));
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// The caller's timeout ends a blackholed request, long before the agent's own limit:
/// the request is then recorded as abandoned, and stops counting as in flight.
#[tokio::test]
async fn a_blackholed_request_ends_when_its_caller_gives_up() {
    let service = upstream().await;
    let agent = agent("node-5", service, Peers::default(), |c| {
        c.blackhole_limit = Duration::from_secs(120)
    })
    .await;
    agent.add(r#"{"type":"blackhole","direction":"inbound"}"#);
    let gave_up = Instant::now();
    let held = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .get(format!("http://{}/echo", agent.inbound))
        .send()
        .await;
    assert!(held.unwrap_err().is_timeout());
    let span = agent.spans(1).await.remove(0);
    assert!(
        gave_up.elapsed() < Duration::from_secs(60),
        "recorded when the caller left, not at the blackhole limit"
    );
    assert_eq!(
        attribute(&span, "error.type").as_deref(),
        Some("client_disconnected")
    );
    assert_eq!(attribute(&span, "http.response.status_code"), None);
    let rendered = agent.metrics.render();
    assert!(
        rendered.contains(r#"faultline_agent_requests_total{direction="inbound",peer="unknown",route="/echo",status_class="error"} 1"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(
            r#"faultline_agent_in_flight_requests{direction="inbound",peer="unknown"} 0"#
        ),
        "no longer in flight:\n{rendered}"
    );
}

/// A client that sends half its body and stops: after the client timeout the agent
/// answers 408 and tells the upstream the request is off, then serves others.
#[tokio::test]
async fn a_stalled_request_body_gets_408_after_the_client_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let service = upstream().await;
    let agent = agent("node-6", service, Peers::default(), |c| {
        c.client_timeout = Duration::from_millis(300)
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(agent.inbound).await.unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nhost: node-6\r\ncontent-length: 100\r\n\r\nonly ten b",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(7).any(|w| w == b"stalled") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the agent answered within the test's patience"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("the request body stalled"), "{answer}");
    let span = agent.spans(1).await.remove(0);
    assert_eq!(
        attribute(&span, "error.type").as_deref(),
        Some("client_timeout")
    );

    // A whole body, sent at once, still goes through.
    let response = client()
        .post(format!("http://{}/upload", agent.inbound))
        .body("x".repeat(100))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "100");
}

/// A client that asks for a large response and never reads it is cut off once the
/// socket has accepted nothing for the client timeout.
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let service = upstream().await;
    let agent = agent("node-7", service, Peers::default(), |c| {
        c.client_timeout = Duration::from_millis(300)
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(agent.inbound).await.unwrap();
    stream
        .write_all(b"GET /huge HTTP/1.1\r\nhost: node-7\r\n\r\n")
        .await
        .unwrap();
    // Read nothing while the agent's writes stall, well past the limit.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the agent closed the connection");
    assert!(
        received < HUGE,
        "the connection was cut before the whole response ({received} of {HUGE} bytes)"
    );

    // The agent still serves.
    let response = client()
        .get(format!("http://{}/echo", agent.inbound))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Every request becomes one access log line carrying its trace and correlation ids.
#[tokio::test]
async fn the_access_log_has_a_line_per_request_with_its_ids() {
    #[derive(Clone, Default)]
    struct Lines(Arc<StdMutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let service = upstream().await;
    let (log, _writing) = AccessLog::start(Box::new(lines.clone()), Metrics::new()).unwrap();
    let agent = logging_agent("node-8", service, Peers::default(), |_| {}, Some(log)).await;
    agent.add(r#"{"type":"error","status":503,"direction":"inbound","route":"/status/*"}"#);
    let seen = json(
        client()
            .get(format!("http://{}/echo", agent.inbound))
            .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
            .header("x-request-id", "req-7")
            .header(RESEND_COUNT_HEADER, "2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let failed = client()
        .get(format!("http://{}/status/200", agent.inbound))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 503);
    agent.spans(2).await;

    // The writer takes waiting lines every 50 ms.
    let mut text = String::new();
    for _ in 0..200 {
        text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        if text.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{text}");
    let first = &entries[0];
    let forwarded = TraceParent::parse(seen["traceparent"].as_str().unwrap()).unwrap();
    assert_eq!(first["trace_id"], TRACE);
    assert_eq!(first["parent_span_id"], PARENT);
    assert_eq!(first["span_id"], forwarded.parent_id().to_string());
    assert_eq!(first["correlation_id"], "req-7");
    assert_eq!(first["resend_count"], 2);
    assert!(first["status"] == 200 && first["direction"] == "inbound");
    assert!(first["method"] == "GET" && first["path"] == "/echo");
    let second = &entries[1];
    assert_eq!(second["status"], 503);
    assert_eq!(second["error_type"], "503");
    assert!(
        !text.contains("error\"") && !text.contains("toxic"),
        "faults are never named in the log: {text}"
    );
}
