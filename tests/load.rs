#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
//! `faultline load` end to end, against a fake gateway written here (the real one is
//! `faultline service gateway`): a small HTTP/1.1 server on 127.0.0.1 that answers
//! `POST /orders` and `GET /orders/{id}` as docs/services.md says, with KV versions, and
//! remembers every request it saw. The real binary runs for ~2 s; the checks are on
//! counts, ids and the history, never on precise timings.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Recorder, faultline, seed};
use faultline_cluster::check::{
    FinalRead, History, KvOp, KvRet, Outcome, Version, check_lost_writes, check_stale_reads,
};
use faultline_cluster::load::judge::check_version;
use faultline_model::read::{ReadOptions, read_all};
use faultline_model::span::SpanKind;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

/// How the fake gateway behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answers at once: 201 (every 7th POST from the 4th: 503 `stage: "kv"`), 200 / 404.
    Serve,
    /// Reads each request and never answers.
    Stall,
}

/// A request as the fake gateway received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    correlation: Option<String>,
    traceparent: Option<String>,
    /// The status it was answered with (`None`: stalled).
    status: Option<u16>,
}

/// An order the fake stored: its KV version (as the node's JSON) and the W it reported.
#[derive(Debug, Clone)]
struct Stored {
    version: Value,
    w: u64,
}

#[derive(Debug, Default)]
struct State {
    seen: Vec<Seen>,
    orders: HashMap<String, Stored>,
    posts: u64,
}

struct FakeGateway {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeGateway {
    fn start(mode: Mode) -> FakeGateway {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::clone(&state);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(connection(stream, mode, Arc::clone(&shared)));
            }
        });
        FakeGateway {
            addr,
            state,
            _runtime: runtime,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    fn orders(&self) -> HashMap<String, Stored> {
        self.state.lock().unwrap().orders.clone()
    }
}

/// One keep-alive HTTP/1.1 connection: requests with a `content-length` body (what
/// reqwest sends), answers with JSON.
async fn connection(stream: tokio::net::TcpStream, mode: Mode, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let correlation = headers.get("x-correlation-id").cloned();
        let mut seen = Seen {
            method: method.clone(),
            path: path.clone(),
            correlation: correlation.clone(),
            traceparent: headers.get("traceparent").cloned(),
            status: None,
        };
        if mode == Mode::Stall {
            state.lock().unwrap().seen.push(seen);
            // Hold the connection without answering (the client gives up first).
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        let (status, answer) = {
            let mut state = state.lock().unwrap();
            let answer = handle(&mut state, &method, &path, correlation.as_deref(), &body);
            seen.status = Some(answer.0);
            state.seen.push(seen);
            answer
        };
        let text = answer.to_string();
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            text.len()
        );
        if write.write_all(head.as_bytes()).await.is_err()
            || write.write_all(text.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// The gateway's API (docs/services.md), with made-up but well-formed KV versions.
fn handle(
    state: &mut State,
    method: &str,
    path: &str,
    correlation: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    match (method, path.strip_prefix("/orders")) {
        ("POST", Some("")) => {
            let new: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) => return (400, json!({"error": "invalid"})),
            };
            let valid = new["amount_cents"].as_u64().is_some()
                && new["customer"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("c-"));
            let Some(id) = correlation.filter(|_| valid) else {
                return (400, json!({"error": "invalid"}));
            };
            state.posts += 1;
            let n = state.posts;
            if n % 7 == 4 {
                return (
                    503,
                    json!({"error": "kv_unavailable", "stage": "kv", "order_id": id, "node_status": 503}),
                );
            }
            let version = json!({"ts": {"physical_ms": 1_700_000_000_000u64 + n, "logical": n % 5}, "node": 1 + n % 3});
            let w = 1 + n % 2;
            state.orders.insert(
                id.to_owned(),
                Stored {
                    version: version.clone(),
                    w,
                },
            );
            (
                201,
                json!({"order_id": id, "version": version, "w": w, "replicas_acked": w}),
            )
        }
        ("GET", Some(rest)) if rest.starts_with('/') => match state.orders.get(&rest[1..]) {
            Some(stored) => (
                200,
                json!({
                    "order": {"id": &rest[1..], "amount_cents": 1299, "customer": "c-1", "status": "pending"},
                    "version": stored.version,
                    "r": 1,
                    "payment": null,
                }),
            ),
            None => (404, json!({"error": "not_found", "message": "no order"})),
        },
        _ => (404, json!({"error": "not_found"})),
    }
}

fn run_load(gateway: SocketAddr, args: &[&str]) -> (Output, Value) {
    let seed = seed();
    let output = faultline()
        .args(["load", "--target", &gateway.to_string(), "--format", "json"])
        .args(["--seed", &seed.to_string()])
        .args(args)
        .output()
        .expect("run faultline load");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "seed {seed}: {stderr}");
    let summary = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "seed {seed}: the summary is not JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output, summary)
}

fn load_history(path: &Path) -> History<KvOp, KvRet> {
    History::load(path).unwrap()
}

fn packed(version: &Value) -> Version {
    check_version(serde_json::from_value(version.clone()).unwrap()).unwrap()
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn load_creates_and_reads_orders_and_keeps_a_checkable_history() {
    let gateway = FakeGateway::start(Mode::Serve);
    let dir = tempfile::tempdir().unwrap();
    let history_path = dir.path().join("history.jsonl");
    let (_, summary) = run_load(
        gateway.addr,
        &[
            "--rate",
            "50",
            "--duration",
            "2s",
            "--history",
            history_path.to_str().unwrap(),
        ],
    );
    let seen = gateway.seen();
    let orders = gateway.orders();
    let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
    let gets: Vec<&Seen> = seen.iter().filter(|s| s.method == "GET").collect();

    // The summary counts what the gateway saw and answered.
    let arrivals = count(&summary["arrivals"]);
    assert!(
        (40..=160).contains(&arrivals),
        "2 s at 50/s: {arrivals} arrivals\n{summary:#}"
    );
    assert_eq!(count(&summary["shed"]), 0, "{summary:#}");
    assert_eq!(count(&summary["sent"]), seen.len() as u64);
    let (post, get) = (&summary["ops"][0], &summary["ops"][1]);
    assert_eq!(post["op"], "POST /orders");
    assert_eq!(get["op"], "GET /orders/{id}");
    assert_eq!(count(&post["sent"]), posts.len() as u64);
    assert_eq!(count(&get["sent"]), gets.len() as u64);
    assert!(
        posts.len() >= 10 && gets.len() >= 20,
        "a 0.3 POST share: {} POSTs, {} GETs",
        posts.len(),
        gets.len()
    );
    let refused = posts.iter().filter(|s| s.status == Some(503)).count() as u64;
    assert!(refused > 0, "every 7th POST is refused");
    assert_eq!(count(&post["ok"]), orders.len() as u64);
    assert_eq!(
        post["error_kinds"],
        json!({"503 kv_unavailable": refused}),
        "{summary:#}"
    );
    assert_eq!(count(&get["ok"]), gets.len() as u64, "{summary:#}");
    assert_eq!(count(&get["errors"]), 0, "only stored orders are read");
    for op in [post, get] {
        assert_eq!(count(&op["unfinished"]), 0);
        let p50 = op["latency"]["p50_ms"].as_f64().unwrap();
        let p99 = op["latency"]["p99_ms"].as_f64().unwrap();
        assert!(0.0 < p50 && p50 <= p99, "{op}");
    }
    assert_eq!(count(&summary["history"]["operations"]), seen.len() as u64);

    // Correlation ids: every request has its own; a POST's is the order id.
    let ids: BTreeSet<&str> = seen
        .iter()
        .map(|s| {
            s.correlation
                .as_deref()
                .expect("x-correlation-id on every request")
        })
        .collect();
    assert_eq!(ids.len(), seen.len(), "correlation ids are unique");
    for get in &gets {
        let order = get.path.strip_prefix("/orders/").unwrap();
        assert!(
            orders.contains_key(order),
            "GET of an order never stored: {get:?}"
        );
        assert_ne!(get.correlation.as_deref(), Some(order));
    }

    // The history: one operation per request, the right keys, versions and quorums.
    let history = load_history(&history_path);
    assert_eq!(history.len(), seen.len());
    let post_ids: BTreeSet<&str> = posts
        .iter()
        .map(|s| s.correlation.as_deref().unwrap())
        .collect();
    let mut written: BTreeMap<String, (Version, u64)> = BTreeMap::new();
    let mut reads = 0;
    for op in history.iter() {
        match &op.op {
            KvOp::Write { key, value, w } => {
                assert_eq!(key, &format!("order:{value}"));
                assert!(post_ids.contains(value.as_str()), "{op:?}");
                match orders.get(value) {
                    Some(stored) => {
                        let version = packed(&stored.version);
                        assert_eq!(u64::from(*w), stored.w, "the W the gateway reported");
                        assert_eq!(
                            op.outcome,
                            Outcome::Ok(KvRet::Written {
                                version: Some(version)
                            })
                        );
                        written.insert(key.clone(), (version, op.complete_ns.unwrap()));
                    }
                    None => {
                        assert!(
                            op.is_info(),
                            "a 503 at the KV stage may have happened: {op:?}"
                        );
                        assert_eq!(*w, 2, "no W reported: the default");
                    }
                }
            }
            KvOp::Read { key, r } => {
                reads += 1;
                assert_eq!(*r, 1, "the R the gateway reported");
                let (version, write_done) = written
                    .get(key)
                    .unwrap_or_else(|| panic!("read of {key} before its write completed"));
                assert!(
                    op.invoke_ns > *write_done,
                    "reads go to acknowledged orders only"
                );
                assert_eq!(
                    op.outcome,
                    Outcome::Ok(KvRet::Read {
                        value: key.strip_prefix("order:").map(str::to_owned),
                        version: Some(*version),
                    })
                );
            }
            KvOp::Delete { .. } => panic!("the load deletes nothing: {op:?}"),
        }
    }
    assert_eq!(reads, gets.len());

    // And the checkers take it as it is: nothing stale, nothing lost.
    let stale = check_stale_reads(&history);
    assert_eq!((stale.reads, stale.stale), (gets.len(), 0), "{stale}");
    assert!(stale.unexplained.is_empty(), "{stale}");
    let finals: Vec<FinalRead> = post_ids
        .iter()
        .map(|id| FinalRead {
            key: format!("order:{id}"),
            value: orders.get(*id).map(|_| (*id).to_owned()),
            version: orders.get(*id).map(|s| packed(&s.version)),
            replica: None,
        })
        .collect();
    let lost = check_lost_writes(&history, &finals);
    assert!(lost.is_ok(), "{lost}");
    assert!(lost.acked_quorum_writes > 0, "{lost}");
}

#[test]
fn a_stalled_gateway_does_not_slow_arrivals_they_are_shed() {
    let gateway = FakeGateway::start(Mode::Stall);
    let dir = tempfile::tempdir().unwrap();
    let history_path = dir.path().join("history.jsonl");
    let (_, summary) = run_load(
        gateway.addr,
        &[
            "--rate",
            "50",
            "--arrivals",
            "uniform",
            "--duration",
            "2s",
            // Longer than the run: none of the first requests ends before the stop.
            "--timeout",
            "3s",
            "--max-in-flight",
            "10",
            "--history",
            history_path.to_str().unwrap(),
        ],
    );
    let arrivals = count(&summary["arrivals"]);
    assert!(
        arrivals >= 60,
        "arrivals kept their schedule while nothing answered: {arrivals}\n{summary:#}"
    );
    assert_eq!(count(&summary["sent"]), 10, "{summary:#}");
    assert_eq!(count(&summary["shed"]), arrivals - 10, "{summary:#}");
    // Nothing was ever written, so every arrival was a POST.
    let post = &summary["ops"][0];
    assert_eq!(post["error_kinds"], json!({"timeout": 10}), "{summary:#}");
    assert_eq!(post["latency"], Value::Null);
    assert_eq!(count(&summary["ops"][1]["arrivals"]), 0);
    assert_eq!(gateway.seen().len(), 10, "only the requests sent arrive");

    let history = load_history(&history_path);
    assert_eq!(history.len(), 10);
    assert!(
        history
            .iter()
            .all(|op| op.is_info() && matches!(op.op, KvOp::Write { .. })),
        "{history}"
    );
}

#[test]
fn each_request_is_a_load_client_span_whose_trace_reaches_the_gateway() {
    let gateway = FakeGateway::start(Mode::Serve);
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("load.jsonl");
    let recorder = Recorder::start(&capture, &[]);
    let otlp = format!("http://{}", recorder.addr);
    run_load(
        gateway.addr,
        &[
            "--rate",
            "20",
            "--arrivals",
            "uniform",
            "--duration",
            "1500ms",
            "--otlp",
            &otlp,
        ],
    );
    let (status, stderr) = recorder.stop("INT");
    assert!(status.success(), "{stderr}");
    let (spans, _) = read_all(&capture, &ReadOptions::default()).unwrap();
    let seen = gateway.seen();
    assert!(seen.len() >= 10, "{} requests", seen.len());
    let by_correlation: HashMap<&str, _> = spans
        .iter()
        .filter(|s| s.service_name() == "load")
        .map(|s| (s.attributes.get_str("correlation.id").unwrap(), s))
        .collect();
    assert_eq!(by_correlation.len(), seen.len(), "one span per request");
    for request in &seen {
        let correlation = request.correlation.as_deref().unwrap();
        let span = by_correlation[correlation];
        let (name, method) = if request.method == "POST" {
            ("POST /orders", "POST")
        } else {
            ("GET /orders/{id}", "GET")
        };
        assert_eq!(span.name, name);
        assert_eq!(span.kind, SpanKind::Client);
        assert_eq!(span.attributes.get_str("http.request.method"), Some(method));
        assert_eq!(
            span.attributes.get_str("url.full"),
            Some(format!("http://{}{}", gateway.addr, request.path).as_str())
        );
        assert_eq!(span.attributes.get_str("server.address"), Some("127.0.0.1"));
        assert_eq!(
            span.attributes.get_i64("server.port"),
            Some(i64::from(gateway.addr.port()))
        );
        let status = i64::from(request.status.unwrap());
        assert_eq!(
            span.attributes.get_i64("http.response.status_code"),
            Some(status)
        );
        let error = span.attributes.get_str("error.type");
        if status >= 400 {
            assert_eq!(error, Some(status.to_string().as_str()));
        } else {
            assert_eq!(error, None);
        }
        let traceparent = request.traceparent.as_deref().expect("traceparent sent");
        assert!(
            traceparent.starts_with(&format!("00-{}-{}-", span.trace_id, span.span_id)),
            "{traceparent} is not span {} of trace {}",
            span.span_id,
            span.trace_id
        );
    }
}
