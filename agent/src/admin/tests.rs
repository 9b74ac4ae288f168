//! The admin API over real sockets on 127.0.0.1 (port 0), driven with reqwest, plus the
//! pure helpers (bind check, bearer parsing, constant-time comparison).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::Direction;
use crate::metrics::{RequestLabels, StatusClass};

const TOKEN: &str = "s3cret-admin-token";

struct Running {
    addr: SocketAddr,
    admin: Admin,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(token: Option<&str>) -> Running {
    let admin = Admin::new(
        Arc::new(Mutex::new(Toxics::new())),
        Metrics::new(),
        "node-1",
        "9.8.7",
    )
    .with_token(token.map(str::to_owned));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = admin.clone();
    let server = tokio::spawn(async move {
        server
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });
    Running {
        addr,
        admin,
        client: reqwest::Client::new(),
        stop: Some(stop),
        server: Some(server),
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    async fn post_json(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// After a bad request the listener must still answer a good one.
    async fn assert_still_serving(&self) {
        let response = self.get("/toxics").await;
        assert_eq!(response.status(), 200);
        let body = json_body(response).await;
        assert!(body["toxics"].is_array(), "{body}");
    }
}

/// reqwest without its `json` feature: parse the body with serde_json, after checking
/// that the API labelled it JSON.
async fn json_body(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{}",
        response.url()
    );
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

async fn expect_error(response: reqwest::Response, status: u16, message: &str) {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(json_body(response).await, json!({ "error": message }));
}

const LATENCY: &str =
    r#"{"type":"latency","latency_ms":200,"jitter_ms":50,"direction":"outbound","peer":"node-2"}"#;
const PARTITION: &str = r#"{"type":"partition","peers":["node-3"]}"#;

// ------------------------------------------------------------------------ toxics

#[tokio::test]
async fn add_list_delete_clear_round_trip() {
    let running = start(None).await;

    let empty = json_body(running.get("/toxics").await).await;
    assert_eq!(empty, json!({ "toxics": [] }));

    let response = running.post_json("/toxics", LATENCY).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["location"], "/toxics/t-1");
    let latency = json_body(response).await;
    assert_eq!(latency["id"], "t-1");
    assert_eq!(latency["type"], "latency");
    assert_eq!(latency["latency_ms"], 200);
    assert_eq!(latency["jitter_ms"], 50);
    assert_eq!(latency["direction"], "outbound");
    assert_eq!(latency["peer"], "node-2");

    let response = running.post_json("/toxics", PARTITION).await;
    assert_eq!(response.status(), 201);
    let partition = json_body(response).await;
    assert_eq!(partition["id"], "t-2");
    assert_eq!(partition["peers"], json!(["node-3"]));

    // Insertion order, and the exact objects POST answered with.
    let listed = json_body(running.get("/toxics").await).await;
    assert_eq!(
        listed,
        json!({ "toxics": [latency.clone(), partition.clone()] })
    );
    // The proxy sees what the API added: it is the same registry.
    assert_eq!(running.admin.toxics().lock().unwrap().len(), 2);

    let response = running.delete("/toxics/t-1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await, latency);
    let listed = json_body(running.get("/toxics").await).await;
    assert_eq!(listed, json!({ "toxics": [partition] }));

    expect_error(running.delete("/toxics/t-1").await, 404, "no toxic t-1").await;

    // Ids are never reused.
    let third = json_body(running.post_json("/toxics", LATENCY).await).await;
    assert_eq!(third["id"], "t-3");

    let response = running.delete("/toxics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await, json!({ "removed": 2 }));
    assert_eq!(
        json_body(running.get("/toxics").await).await,
        json!({ "toxics": [] })
    );
    assert!(running.admin.toxics().lock().unwrap().is_empty());

    let response = running.delete("/toxics").await;
    assert_eq!(json_body(response).await, json!({ "removed": 0 }));
}

#[tokio::test]
async fn invalid_toxics_get_400_with_the_registry_message() {
    let running = start(None).await;
    let cases = [
        (
            r#"{"type":"boom"}"#,
            "unknown toxic type `boom`: expected one of latency, error, reset, blackhole, bandwidth, partition",
        ),
        (
            r#"{"id":"t-1","type":"reset"}"#,
            "`id` is assigned by the agent; leave it out",
        ),
        (
            r#"{"type":"error","status":200}"#,
            "`status` must be an HTTP error status in 400..=599, got 200",
        ),
        (
            r#"{"type":"partition","peers":[]}"#,
            "`peers` of a partition toxic must list at least one peer",
        ),
    ];
    for (body, message) in cases {
        expect_error(running.post_json("/toxics", body).await, 400, message).await;
        running.assert_still_serving().await;
    }

    for body in ["{not json", ""] {
        let response = running.post_json("/toxics", body).await;
        assert_eq!(response.status(), 400);
        let error = json_body(response).await;
        let message = error["error"].as_str().unwrap();
        assert!(message.starts_with("malformed toxic JSON: "), "{message}");
        running.assert_still_serving().await;
    }

    // Nothing was added by any of it.
    assert_eq!(
        json_body(running.get("/toxics").await).await,
        json!({ "toxics": [] })
    );
}

#[tokio::test]
async fn delete_by_id_answers_400_for_a_malformed_id_and_404_for_an_absent_one() {
    let running = start(None).await;
    for (id, found) in [
        ("abc", "abc"),
        ("t-", "t-"),
        ("t-+1", "t-+1"),
        ("T-1", "T-1"),
    ] {
        let message =
            format!("`{found}` is not a toxic id (expected `t-` and a number, e.g. `t-1`)");
        expect_error(
            running.delete(&format!("/toxics/{id}")).await,
            400,
            &message,
        )
        .await;
        running.assert_still_serving().await;
    }
    expect_error(running.delete("/toxics/t-9").await, 404, "no toxic t-9").await;
    running.assert_still_serving().await;
}

// ---------------------------------------------------------------- request bodies

#[tokio::test]
async fn post_requires_a_json_content_type() {
    let running = start(None).await;

    let response = running
        .client
        .post(running.url("/toxics"))
        .header("content-type", "text/plain")
        .body(PARTITION)
        .send()
        .await
        .unwrap();
    expect_error(
        response,
        415,
        "expected `Content-Type: application/json`, got `text/plain`",
    )
    .await;
    running.assert_still_serving().await;

    let response = running
        .client
        .post(running.url("/toxics"))
        .body(PARTITION)
        .send()
        .await
        .unwrap();
    expect_error(
        response,
        415,
        "expected `Content-Type: application/json`, got none",
    )
    .await;
    running.assert_still_serving().await;

    // `application/jsonx` is another media type, not JSON with a suffix.
    let response = running
        .client
        .post(running.url("/toxics"))
        .header("content-type", "application/jsonx")
        .body(PARTITION)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    // Parameters and case are allowed.
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let response = running
            .client
            .post(running.url("/toxics"))
            .header("content-type", content_type)
            .body(PARTITION)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{content_type}");
    }
    assert_eq!(running.admin.toxics().lock().unwrap().len(), 2);
}

#[tokio::test]
async fn bodies_over_the_cap_get_413_and_the_cap_itself_is_accepted() {
    let running = start(None).await;

    // Exactly the cap: a valid toxic padded with whitespace is read and added.
    let mut at_cap = String::from(r#"{"type":"reset"}"#);
    at_cap.push_str(&" ".repeat(MAX_BODY_BYTES - at_cap.len()));
    assert_eq!(at_cap.len(), MAX_BODY_BYTES);
    let response = running.post_json("/toxics", at_cap.clone()).await;
    assert_eq!(response.status(), 201);

    // One byte more, declared in Content-Length: refused before reading.
    let over = format!("{at_cap} ");
    expect_error(
        running.post_json("/toxics", over).await,
        413,
        "request body is larger than 65536 bytes",
    )
    .await;
    running.assert_still_serving().await;
    assert_eq!(running.admin.toxics().lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_chunked_body_over_the_cap_gets_413() {
    let running = start(None).await;
    // reqwest cannot send a chunked body without its `stream` feature: write HTTP/1.1
    // by hand. Two chunks that together pass the cap, with no Content-Length.
    let chunk = " ".repeat(40 * 1024);
    let mut request = format!(
        "POST /toxics HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        running.addr
    );
    for _ in 0..2 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");

    let mut stream = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with(r#"{"error":"request body is larger than 65536 bytes"}"#),
        "{response}"
    );
    running.assert_still_serving().await;
}

// -------------------------------------------------------------- paths and methods

#[tokio::test]
async fn unknown_paths_get_404_json_and_wrong_methods_405_json() {
    let running = start(None).await;

    for path in ["/nope", "/toxics/t-1/extra", "/"] {
        let message = format!(
            "no such path {path}: the admin API serves /metrics, /status, /toxics and /toxics/{{id}}"
        );
        expect_error(running.get(path).await, 404, &message).await;
        running.assert_still_serving().await;
    }

    let cases = [
        (reqwest::Method::POST, "/status", "GET,HEAD"),
        (reqwest::Method::DELETE, "/metrics", "GET,HEAD"),
        (reqwest::Method::PUT, "/toxics", "GET,HEAD,POST,DELETE"),
        (reqwest::Method::GET, "/toxics/t-1", "DELETE"),
    ];
    for (method, path, allow) in cases {
        let response = running
            .client
            .request(method.clone(), running.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let message = format!("{method} is not allowed on {path}");
        assert_eq!(json_body(response).await, json!({ "error": message }));
        running.assert_still_serving().await;
    }
}

// ---------------------------------------------------------------- metrics, status

#[tokio::test]
async fn metrics_are_prometheus_text_with_the_recorded_requests() {
    let running = start(None).await;
    let labels = RequestLabels {
        direction: Direction::Inbound,
        route: "/kv/{key}",
        peer: Some("node-2"),
    };
    let metrics = running.admin.metrics();
    metrics.record_request(
        &labels,
        StatusClass::Success,
        Duration::from_millis(3),
        false,
    );
    metrics.record_request(
        &labels,
        StatusClass::Success,
        Duration::from_millis(4),
        false,
    );

    let response = running.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.lines().any(|line| line
            == r#"faultline_agent_requests_total{direction="inbound",peer="node-2",route="/kv/{key}",status_class="2xx"} 2"#),
        "{text}"
    );
    assert_eq!(text, metrics.render());
}

#[tokio::test]
async fn status_reports_node_version_uptime_toxics_and_latency() {
    let running = start(None).await;
    let labels = RequestLabels {
        direction: Direction::Outbound,
        route: "/raft/vote",
        peer: Some("node-3"),
    };
    running.admin.metrics().record_request(
        &labels,
        StatusClass::Success,
        Duration::from_millis(5),
        false,
    );
    assert_eq!(running.post_json("/toxics", PARTITION).await.status(), 201);

    let status = json_body(running.get("/status").await).await;
    assert_eq!(status["node"], "node-1");
    assert_eq!(status["version"], "9.8.7");
    assert_eq!(status["active_toxics"], 1);
    // Freshly started: well under a minute, and a whole number of seconds.
    assert!(status["uptime_seconds"].as_u64().unwrap() < 60, "{status}");
    let latency = status["latency"].as_array().unwrap();
    assert_eq!(latency.len(), 1, "{status}");
    assert_eq!(latency[0]["direction"], "outbound");
    assert_eq!(latency[0]["route"], "/raft/vote");
    assert_eq!(latency[0]["peer"], "node-3");
    assert_eq!(latency[0]["latency"]["count"], 1);
}

// ------------------------------------------------------------------------- token

#[tokio::test]
async fn with_a_token_every_request_but_metrics_needs_it() {
    let running = start(Some(TOKEN)).await;
    let missing = "missing admin token: send `Authorization: Bearer <token>`";

    let response = running.get("/toxics").await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"faultline-agent\""
    );
    expect_error(response, 401, missing).await;

    let wrong_same_length = "x".repeat(TOKEN.len());
    let refused = [
        (
            Some(format!("Bearer {wrong_same_length}")),
            "invalid admin token",
        ),
        (Some("Bearer s3cret".to_owned()), "invalid admin token"),
        (Some(format!("Bearer {TOKEN}x")), "invalid admin token"),
        (Some(format!("Basic {TOKEN}")), missing),
        (Some(TOKEN.to_owned()), missing),
        (Some("Bearer ".to_owned()), missing),
    ];
    for (authorization, message) in refused {
        let mut request = running.client.get(running.url("/status"));
        if let Some(authorization) = &authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.unwrap();
        expect_error(response, 401, message).await;
    }

    // Refused before routing: unauthenticated callers learn nothing about paths or
    // methods, and cannot change anything.
    expect_error(running.get("/nope").await, 401, missing).await;
    expect_error(running.delete("/toxics").await, 401, missing).await;
    expect_error(running.post_json("/toxics", PARTITION).await, 401, missing).await;
    assert!(running.admin.toxics().lock().unwrap().is_empty());

    // The right token, scheme in any case.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = running
            .client
            .get(running.url("/toxics"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let response = running
        .client
        .post(running.url("/toxics"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(PARTITION)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(running.admin.toxics().lock().unwrap().len(), 1);

    // Prometheus scrapes without credentials.
    let response = running.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[tokio::test]
async fn without_a_token_no_authorization_is_needed() {
    let running = start(None).await;
    assert_eq!(running.get("/status").await.status(), 200);
    // An empty token is no token.
    let running = start(Some("")).await;
    assert_eq!(running.get("/status").await.status(), 200);
}

#[test]
fn the_token_is_not_in_debug_output() {
    let admin = Admin::new(
        Arc::new(Mutex::new(Toxics::new())),
        Metrics::new(),
        "n",
        "v",
    )
    .with_token(Some(TOKEN.to_owned()));
    let debug = format!("{admin:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("Token(<redacted>)"), "{debug}");
}

#[test]
fn check_bind_allows_loopback_and_requires_a_token_elsewhere() {
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    for loopback in [
        "127.0.0.1:9901",
        "127.3.2.1:0",
        "[::1]:9901",
        "[::ffff:127.0.0.1]:9901",
    ] {
        assert!(check_bind(addr(loopback), None).is_ok(), "{loopback}");
        assert!(
            check_bind(addr(loopback), Some(TOKEN)).is_ok(),
            "{loopback}"
        );
    }
    for exposed in ["0.0.0.0:9901", "[::]:9901", "10.0.0.7:9901"] {
        for token in [None, Some("")] {
            let err = check_bind(addr(exposed), token).unwrap_err();
            let AdminError::NonLoopbackWithoutToken { addr: refused } = err;
            assert_eq!(refused, addr(exposed));
            let message = err.to_string();
            assert!(message.contains("--admin-token"), "{message}");
            assert!(
                message.starts_with(&format!(
                    "refusing to serve the admin API on {exposed} without a token"
                )),
                "{message}"
            );
        }
        assert!(check_bind(addr(exposed), Some(TOKEN)).is_ok(), "{exposed}");
    }
}

#[test]
fn bearer_credentials_are_parsed_strictly() {
    let headers = |value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    };
    assert_eq!(bearer(&headers("Bearer abc")), Some(&b"abc"[..]));
    assert_eq!(bearer(&headers("bEaReR   abc  ")), Some(&b"abc"[..]));
    assert_eq!(bearer(&headers("Bearer")), None);
    assert_eq!(bearer(&headers("Bearer ")), None);
    assert_eq!(bearer(&headers("Bearerabc")), None);
    assert_eq!(bearer(&headers("Basic abc")), None);
    assert_eq!(bearer(&HeaderMap::new()), None);
}

#[test]
fn constant_time_eq_compares_whole_values() {
    assert!(constant_time_eq(b"token", b"token"));
    assert!(constant_time_eq(b"", b""));
    assert!(!constant_time_eq(b"token", b"tokeN"));
    assert!(!constant_time_eq(b"token", b"Token"));
    assert!(!constant_time_eq(b"token", b"token2"));
    assert!(!constant_time_eq(b"token", b"toke"));
}

// ---------------------------------------------------------------------- shutdown

#[tokio::test]
async fn serve_returns_when_shutdown_completes() {
    let mut running = start(None).await;
    assert_eq!(running.get("/status").await.status(), 200);
    let stop = running.stop.take().unwrap();
    let server = running.server.take().unwrap();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
