//! `faultline agent` as a user runs it: a real process in front of a tiny upstream,
//! configured through its admin API, exporting spans to a real `faultline record`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Recorder, faultline, promtool_check, wait};
use faultline_model::read::{ReadOptions, read_all};

/// A minimal HTTP/1.1 upstream answering `ok` to everything, on its own thread.
fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                // Serve requests on this connection until it closes.
                loop {
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    seen.drain(..end);
                    if stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

struct Agent {
    child: Child,
    inbound: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(upstream: SocketAddr, otlp: SocketAddr, access_log: &std::path::Path) -> Agent {
    let mut child = faultline()
        .args([
            "agent",
            "--node",
            "node-1",
            "--upstream",
            &upstream.to_string(),
        ])
        .args(["--otlp", &format!("http://{otlp}")])
        .arg("--access-log")
        .arg(access_log)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut inbound, mut admin) = (None, None);
    while inbound.is_none() || admin.is_none() {
        let line = lines.next().expect("agent exited early").unwrap();
        let addr = |prefix: &str| {
            line.strip_prefix(prefix)
                .map(|a| a.trim().parse::<SocketAddr>().unwrap())
        };
        inbound = inbound.or_else(|| addr("faultline agent: inbound listening on "));
        admin = admin.or_else(|| addr("faultline agent: admin listening on "));
    }
    std::thread::spawn(move || for _ in lines {});
    Agent {
        child,
        inbound: inbound.unwrap(),
        admin: admin.unwrap(),
    }
}

#[test]
fn the_agent_proxies_injects_faults_and_exports_clean_spans() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("agent.jsonl");
    let recorder = Recorder::start(&capture, &[]);
    let access_log = dir.path().join("access.log");
    let mut agent = start_agent(upstream(), recorder.addr, &access_log);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();

    runtime.block_on(async {
        let added = http
            .post(format!("http://{}/toxics", agent.admin))
            .header("content-type", "application/json")
            .body(r#"{"type":"latency","latency_ms":150,"direction":"inbound"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), 201);

        let started = Instant::now();
        let response = http
            .get(format!("http://{}/orders/7", agent.inbound))
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .header("x-correlation-id", "order-7")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "the latency toxic applied"
        );

        let metrics = http
            .get(format!("http://{}/metrics", agent.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(
                r#"faultline_agent_fault_activations_total{direction="inbound",kind="latency"} 1"#
            ),
            "{metrics}"
        );
        promtool_check(&metrics);
    });

    // A clean stop flushes the agent's spans; then the recorder closes its capture.
    common::signal(&agent.child, "INT");
    assert!(wait(&mut agent.child, Duration::from_secs(20)).success());
    let (status, stderr) = recorder.stop("INT");
    assert!(status.success(), "{stderr}");

    let (spans, _) = read_all(&capture, &ReadOptions::default()).unwrap();
    assert_eq!(spans.len(), 1, "one server span for one request");
    let span = &spans[0];

    // The access log line leads to the same span, with the correlation id.
    let log = std::fs::read_to_string(&access_log).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(lines[0]["span_id"], span.span_id.to_string());
    assert_eq!(lines[0]["trace_id"], span.trace_id.to_string());
    assert_eq!(lines[0]["correlation_id"], "order-7");
    assert_eq!(lines[0]["path"], "/orders/7");
    assert!(lines[0]["duration_ms"].as_f64().unwrap() >= 150.0);
    assert_eq!(
        span.trace_id.to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(
        span.parent_span_id.map(|p| p.to_string()).as_deref(),
        Some("b7ad6b7169203331")
    );
    assert_eq!(span.kind, faultline_model::SpanKind::Server);
    assert_eq!(span.attributes.get_str("url.path"), Some("/orders/7"));
    assert_eq!(
        span.attributes.get_i64("http.response.status_code"),
        Some(200)
    );
    assert_eq!(
        span.resource.attributes.get_str("faultline.node"),
        Some("node-1")
    );
    assert!(
        span.duration_ns() >= 150_000_000,
        "the injected delay is in the timing"
    );
    // Diagnosis must come from the signals: no attribute names the injected fault.
    for kv in span.attributes.iter() {
        let text = format!("{} {}", kv.key, kv.value).to_lowercase();
        assert!(
            !text.contains("toxic") && !text.contains("fault") && !text.contains("latency"),
            "{text}"
        );
    }
}

#[test]
fn the_admin_api_is_loopback_only_without_a_token() {
    let output = faultline()
        .args([
            "agent",
            "--node",
            "n",
            "--upstream",
            "127.0.0.1:9",
            "--admin",
            "0.0.0.0:0",
        ])
        .env_remove("FAULTLINE_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--admin-token"), "{err}");
}
