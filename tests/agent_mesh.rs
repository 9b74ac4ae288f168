//! Two real `faultline agent` processes in a mesh, as the demo cluster will run them:
//!
//! ```text
//!  client ─► agent A inbound ─► node A ─(Host: node-b)─► agent A outbound ─► agent B inbound ─► node B
//!                 │                                            │                   │
//!                 └────────────── spans (OTLP/gRPC) ───────────┴───────────────────┴─► faultline record
//! ```
//!
//! The nodes are tiny HTTP/1.1 servers on threads. Node A does what an instrumented
//! service does: it calls node B through its agent, forwarding the `traceparent`,
//! `tracestate`, `baggage` and `x-correlation-id` it received, and answers with what it
//! saw plus node B's answer (node B answers with the headers it saw). Every port is
//! chosen by the OS. Timing assertions are lower bounds only; rates get binomial bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Recorder, faultline, wait};
use faultline_model::read::{ReadOptions, read_all};
use faultline_model::w3c::{Baggage, TraceParent};
use faultline_model::{Span, SpanKind};

// ---------------------------------------------------------------------- HTTP/1.1 client

/// A response as the client read it.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Vec<u8>,
}

/// One request on a fresh connection (`connection: close`), bounded by `timeout` from
/// connect to the last body byte. A timeout comes back as `ErrorKind::TimedOut`; a
/// connection closed before a whole response as `UnexpectedEof` (or the OS's reset).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Reply> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str("host: localhost\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(reply) = parse_reply(&buf, false)? {
            return Ok(reply);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out(timeout));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => return parse_reply(&buf, true).map(|r| r.expect("complete at EOF")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(timed_out(timeout));
            }
            Err(e) => return Err(e),
        }
    }
}

fn timed_out(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no whole response within {timeout:?}"),
    )
}

fn closed_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before a whole response",
    )
}

/// A whole response in `buf`, `None` if more bytes are needed. `eof`: no more will come.
fn parse_reply(buf: &[u8], eof: bool) -> io::Result<Option<Reply>> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if eof { Err(closed_early()) } else { Ok(None) };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad head {head}")))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let rest = &buf[end + 4..];
    let body = if chunked {
        dechunk(rest)
    } else if let Some(n) = content_length {
        (rest.len() >= n).then(|| rest[..n].to_vec())
    } else if eof {
        Some(rest.to_vec())
    } else {
        None
    };
    match body {
        Some(body) => Ok(Some(Reply { status, body })),
        None if eof => Err(closed_early()),
        None => Ok(None),
    }
}

/// A whole chunked body (trailers ignored), `None` if incomplete.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(rest, b"\r\n")?;
        let line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // The trailer section ends with an empty line.
            return (rest.starts_with(b"\r\n") || find(rest, b"\r\n\r\n").is_some())
                .then_some(body);
        }
        if rest.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------- HTTP/1.1 nodes

/// A request as a node received it; header names lowercased.
#[derive(Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Arc<dyn Fn(&Received) -> (u16, Vec<u8>) + Send + Sync>;

/// Serves `handler` on `listener`, a thread per connection, keep-alive as the agents'
/// pooled clients expect.
fn serve(listener: TcpListener, handler: Handler) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || serve_connection(stream, &*handler));
        }
    });
}

fn serve_connection(mut stream: TcpStream, handler: &dyn Fn(&Received) -> (u16, Vec<u8>)) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                break end;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let request = Received { path, headers };
        // GETs carry no body; skip one if a content-length says so.
        let length: usize = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..length);
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let (status, body) = handler(&request);
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&body).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

/// Node B: `/bytes/N` answers N bytes; anything else answers the path and every header
/// it received, one `b.<name>: <value>` line each. Counts the requests under `/work`.
fn node_b(listener: TcpListener, work_hits: Arc<AtomicUsize>) {
    serve(
        listener,
        Arc::new(move |request: &Received| {
            if let Some(n) = request.path.strip_prefix("/bytes/") {
                return (200, vec![b'x'; n.parse().unwrap()]);
            }
            if request.path.starts_with("/work") {
                work_hits.fetch_add(1, Ordering::SeqCst);
            }
            let mut body = format!("b.path: {}\n", request.path);
            for (name, value) in &request.headers {
                body.push_str(&format!("b.{name}: {value}\n"));
            }
            (200, body.into_bytes())
        }),
    );
}

/// The headers an instrumented service carries from its inbound request to its calls.
const PROPAGATED: [&str; 4] = ["traceparent", "tracestate", "baggage", "x-correlation-id"];

/// Node A: calls the same path on node B through its agent's outbound listener (peer
/// from `x-test-peer`, default `node-b`; timeout from `x-test-timeout-ms`, default 10 s)
/// and answers 200 with `a.<header>` lines for what it received, `down.*` lines for the
/// call (status or error, elapsed time, body length) and node B's own lines.
fn node_a(listener: TcpListener, outbound: SocketAddr) {
    serve(
        listener,
        Arc::new(move |request: &Received| {
            let mut body = String::new();
            for (name, value) in &request.headers {
                body.push_str(&format!("a.{name}: {value}\n"));
            }
            let peer = request.header("x-test-peer").unwrap_or("node-b");
            let timeout = Duration::from_millis(
                request
                    .header("x-test-timeout-ms")
                    .map_or(10_000, |v| v.parse().unwrap()),
            );
            let mut headers = vec![("host", peer)];
            for name in PROPAGATED {
                if let Some(value) = request.header(name) {
                    headers.push((name, value));
                }
            }
            let started = Instant::now();
            let result = http(outbound, "GET", &request.path, &headers, b"", timeout);
            body.push_str(&format!(
                "down.elapsed_ms: {}\n",
                started.elapsed().as_millis()
            ));
            match result {
                Ok(reply) => {
                    body.push_str(&format!("down.status: {}\n", reply.status));
                    body.push_str(&format!("down.body_len: {}\n", reply.body.len()));
                    if !request.path.starts_with("/bytes/") {
                        body.push_str(&String::from_utf8_lossy(&reply.body));
                    }
                }
                Err(e) => {
                    let kind = if e.kind() == io::ErrorKind::TimedOut {
                        "timeout"
                    } else {
                        "connection"
                    };
                    body.push_str(&format!("down.error: {kind}: {e}\n"));
                }
            }
            (200, body.into_bytes())
        }),
    );
}

// ------------------------------------------------------------------------------ agents

struct Agent {
    child: Child,
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
    /// Everything the agent printed on stderr, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(node: &str, upstream: SocketAddr, peers: Option<&Path>, otlp: SocketAddr) -> Agent {
    let mut command = faultline();
    command
        .args(["agent", "--node", node, "--upstream", &upstream.to_string()])
        .args(["--otlp", &format!("http://{otlp}")]);
    if let Some(peers) = peers {
        command.arg("--peers").arg(peers);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn faultline agent");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let kept = Arc::clone(&log);
    // Drains stderr for the agent's whole life, so that logging never blocks it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let (mut inbound, mut outbound, mut admin) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while inbound.is_none() || outbound.is_none() || admin.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "agent {node} did not report its addresses: {:?}",
                log.lock().unwrap()
            );
        };
        let addr = |what: &str| {
            line.strip_prefix(&format!("faultline agent: {what} listening on "))
                .map(|a| a.trim().parse::<SocketAddr>().unwrap())
        };
        inbound = inbound.or_else(|| addr("inbound"));
        outbound = outbound.or_else(|| addr("outbound"));
        admin = admin.or_else(|| addr("admin"));
    }
    Agent {
        child,
        inbound: inbound.unwrap(),
        outbound: outbound.unwrap(),
        admin: admin.unwrap(),
        log,
    }
}

const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Agent {
    /// Adds a toxic through the admin API; returns its id.
    fn add_toxic(&self, json: &str) -> String {
        let reply = http(
            self.admin,
            "POST",
            "/toxics",
            &[("content-type", "application/json")],
            json.as_bytes(),
            ADMIN_TIMEOUT,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&reply.body);
        assert_eq!(reply.status, 201, "adding {json}: {text}");
        let added: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        added["id"].as_str().unwrap().to_owned()
    }

    fn remove_toxic(&self, id: &str) {
        let reply = http(
            self.admin,
            "DELETE",
            &format!("/toxics/{id}"),
            &[],
            b"",
            ADMIN_TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }

    fn list_toxics(&self) -> Vec<serde_json::Value> {
        let reply = http(self.admin, "GET", "/toxics", &[], b"", ADMIN_TIMEOUT).unwrap();
        assert_eq!(reply.status, 200);
        let list: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        list["toxics"].as_array().unwrap().clone()
    }

    /// `DELETE /toxics`; returns how many were removed.
    fn clear_toxics(&self) -> u64 {
        let reply = http(self.admin, "DELETE", "/toxics", &[], b"", ADMIN_TIMEOUT).unwrap();
        assert_eq!(reply.status, 200);
        let cleared: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        cleared["removed"].as_u64().unwrap()
    }

    /// The value of one series of `/metrics`, 0 when absent.
    fn metric(&self, series: &str) -> f64 {
        let reply = http(self.admin, "GET", "/metrics", &[], b"", ADMIN_TIMEOUT).unwrap();
        assert_eq!(reply.status, 200);
        String::from_utf8_lossy(&reply.body)
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    /// A clean stop (SIGINT), which flushes the agent's spans.
    fn stop(&mut self) {
        common::signal(&self.child, "INT");
        let status = wait(&mut self.child, Duration::from_secs(20));
        assert!(status.success(), "{status}: {:?}", self.log.lock().unwrap());
    }
}

// -------------------------------------------------------------------------------- mesh

/// Node A and node B, each behind its own agent, spans to one recorder.
struct Mesh {
    // Field order is drop order: the agents are killed before the recorder.
    a: Agent,
    b: Agent,
    recorder: Option<Recorder>,
    capture: PathBuf,
    /// Requests under `/work` that reached node B.
    b_work_hits: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Mesh {
    fn start() -> Mesh {
        let dir = tempfile::tempdir().unwrap();
        let capture = dir.path().join("mesh.jsonl");
        let recorder = Recorder::start(&capture, &[]);

        // B first: A's peers file needs B's inbound address.
        let b_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let b_upstream = b_listener.local_addr().unwrap();
        let b_work_hits = Arc::new(AtomicUsize::new(0));
        node_b(b_listener, Arc::clone(&b_work_hits));
        let b = start_agent("node-b", b_upstream, None, recorder.addr);

        // `node-b-alias` is a second name for the same peer: a call that a toxic scoped
        // to `node-b` does not match.
        let peers = dir.path().join("peers-a.json");
        std::fs::write(
            &peers,
            format!(r#"{{"node-b": "{0}", "node-b-alias": "{0}"}}"#, b.inbound),
        )
        .unwrap();
        // Node A's port is bound before agent A starts; its handler needs agent A's
        // outbound address, known once agent A runs. Connections wait in the backlog.
        let a_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a_upstream = a_listener.local_addr().unwrap();
        let a = start_agent("node-a", a_upstream, Some(&peers), recorder.addr);
        node_a(a_listener, a.outbound);

        Mesh {
            a,
            b,
            recorder: Some(recorder),
            capture,
            b_work_hits,
            _dir: dir,
        }
    }

    /// client → agent A → node A → agent A outbound → agent B → node B. Returns what the
    /// nodes saw (`a.*`, `down.*`, `b.*`) and the client's elapsed time.
    fn call(&self, path: &str, headers: &[(&str, &str)]) -> (BTreeMap<String, String>, Duration) {
        call_node_a(self.a.inbound, path, headers)
            .unwrap_or_else(|e| panic!("{path}: {e}; {}", self.logs()))
    }

    /// A request straight to agent B's inbound listener, as a caller outside the mesh.
    fn call_b_directly(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> io::Result<Reply> {
        let mut all = vec![("host", "node-b")];
        all.extend_from_slice(headers);
        http(self.b.inbound, "GET", path, &all, b"", timeout)
    }

    fn logs(&self) -> String {
        format!(
            "agent A: {:?}\nagent B: {:?}",
            self.a.log.lock().unwrap(),
            self.b.log.lock().unwrap()
        )
    }

    /// Stops both agents cleanly (A first, so B's inbound connections from A's pool are
    /// gone), then the recorder, and reads the capture.
    fn finish(mut self) -> Vec<Span> {
        self.a.stop();
        self.b.stop();
        let (status, stderr) = self.recorder.take().unwrap().stop("INT");
        assert!(status.success(), "{stderr}");
        read_all(&self.capture, &ReadOptions::default()).unwrap().0
    }
}

/// [`Mesh::call`] given agent A's inbound address (a `Mesh` is not `Sync`).
fn call_node_a(
    inbound: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<(BTreeMap<String, String>, Duration)> {
    let mut all = vec![("host", "node-a")];
    all.extend_from_slice(headers);
    let started = Instant::now();
    let reply = http(inbound, "GET", path, &all, b"", Duration::from_secs(20))?;
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&reply.body);
    assert_eq!(reply.status, 200, "node A always answers 200: {text}");
    let seen = text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok((seen, elapsed))
}

fn node_of(span: &Span) -> &str {
    span.resource
        .attributes
        .get_str("faultline.node")
        .unwrap_or("?")
}

/// The three spans of one trace through the mesh: A's server span, A's client span (its
/// outbound listener), B's server span.
fn hop_spans<'a>(spans: &'a [Span], trace_id: &str) -> [&'a Span; 3] {
    let trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id.to_string() == trace_id)
        .collect();
    assert_eq!(trace.len(), 3, "three hops in trace {trace_id}: {trace:#?}");
    let pick = |kind: SpanKind, node: &str| {
        *trace
            .iter()
            .find(|s| s.kind == kind && node_of(s) == node)
            .unwrap_or_else(|| panic!("no {kind:?} span of {node} in {trace:#?}"))
    };
    [
        pick(SpanKind::Server, "node-a"),
        pick(SpanKind::Client, "node-a"),
        pick(SpanKind::Server, "node-b"),
    ]
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ------------------------------------------------------------------------------- tests

#[test]
fn one_trace_crosses_both_hops_with_a_fresh_span_id_per_hop() {
    let mesh = Mesh::start();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let (seen, _) = mesh.call(
        "/orders/7",
        &[
            ("traceparent", &format!("00-{trace}-{client_span}-01")),
            ("tracestate", "vendor=opaque"),
        ],
    );
    assert_eq!(seen["down.status"], "200", "{seen:#?}");
    let at_a = TraceParent::parse(&seen["a.traceparent"]).unwrap();
    let at_b = TraceParent::parse(&seen["b.traceparent"]).unwrap();
    // One trace id, the caller's, at both nodes.
    assert_eq!(at_a.trace_id().to_string(), trace);
    assert_eq!(at_b.trace_id().to_string(), trace);
    // A fresh parent-id per hop: never the caller's, never the previous hop's.
    assert_ne!(at_a.parent_id().to_string(), client_span);
    assert_ne!(at_b.parent_id().to_string(), client_span);
    assert_ne!(at_a.parent_id(), at_b.parent_id());
    assert!(at_a.sampled() && at_b.sampled(), "the sampled flag is kept");
    assert_eq!(seen["b.tracestate"], "vendor=opaque", "tracestate is kept");
    // The caller header is for the agents only; the nodes never see it.
    assert!(
        !seen.keys().any(|k| k.ends_with("x-faultline-caller")),
        "{seen:#?}"
    );
    assert_eq!(seen["b.host"], "node-b", "node B is named by Host");

    // No traceparent: agent A starts the trace, and both hops are in it.
    let (fresh, _) = mesh.call("/orders/8", &[]);
    let fresh_a = TraceParent::parse(&fresh["a.traceparent"]).unwrap();
    let fresh_b = TraceParent::parse(&fresh["b.traceparent"]).unwrap();
    assert_eq!(fresh_a.trace_id(), fresh_b.trace_id());
    assert_ne!(fresh_a.trace_id().to_string(), trace);
    assert_ne!(fresh_a.parent_id(), fresh_b.parent_id());

    let spans = mesh.finish();
    assert_eq!(spans.len(), 6, "three spans per request: {spans:#?}");

    let [a_server, a_client, b_server] = hop_spans(&spans, trace);
    // The chain by parent ids: client → A server → A client (outbound) → B server.
    assert_eq!(
        a_server.parent_span_id.map(|p| p.to_string()).as_deref(),
        Some(client_span)
    );
    assert_eq!(a_client.parent_span_id, Some(a_server.span_id));
    assert_eq!(b_server.parent_span_id, Some(a_client.span_id));
    // The ids the nodes saw are the spans' own: each node's span parent is its agent's.
    assert_eq!(a_server.span_id, at_a.parent_id());
    assert_eq!(b_server.span_id, at_b.parent_id());
    // Node A forwarded A's server context; its agent's client span is a new hop.
    assert_ne!(a_client.span_id, a_server.span_id);
    assert_ne!(a_client.span_id, b_server.span_id);
    for span in [a_server, a_client, b_server] {
        assert_eq!(span.attributes.get_str("url.path"), Some("/orders/7"));
        assert_eq!(
            span.attributes.get_i64("http.response.status_code"),
            Some(200)
        );
    }
    assert_eq!(
        a_client.attributes.get_str("server.address"),
        Some("node-b")
    );
    assert_eq!(
        b_server.attributes.get_str("client.address"),
        Some("node-a"),
        "agent B knows its caller from agent A's caller header"
    );
    // Causality in time (one clock on one machine): each hop lies within its parent.
    assert!(a_server.start_ns <= a_client.start_ns && a_client.end_ns <= a_server.end_ns);
    assert!(a_client.start_ns <= b_server.start_ns && b_server.end_ns <= a_client.end_ns);

    let [a_server, a_client, b_server] = hop_spans(&spans, &fresh_a.trace_id().to_string());
    assert_eq!(a_server.parent_span_id, None, "the trace starts at agent A");
    assert_eq!(a_client.parent_span_id, Some(a_server.span_id));
    assert_eq!(b_server.parent_span_id, Some(a_client.span_id));
}

#[test]
fn the_correlation_id_survives_both_hops_in_headers_baggage_and_spans() {
    let mesh = Mesh::start();
    // (header sent by the client, its value, trace id to find the spans by)
    let cases: [(Option<&str>, &str, &str); 3] = [
        (
            Some("x-correlation-id"),
            "order-42-abc",
            "11111111111111111111111111111111",
        ),
        (
            Some("x-request-id"),
            "req-7f3a9c",
            "22222222222222222222222222222222",
        ),
        (None, "", "33333333333333333333333333333333"),
    ];
    let mut expected = Vec::new();
    for (header, value, trace) in cases {
        let traceparent = format!("00-{trace}-0123456789abcdef-01");
        let mut headers = vec![("traceparent", traceparent.as_str())];
        if let Some(header) = header {
            headers.push((header, value));
            // Other baggage members travel alongside the id.
            headers.push(("baggage", "tenant=acme"));
        }
        let (seen, _) = mesh.call("/orders/9", &headers);
        assert_eq!(seen["down.status"], "200", "{seen:#?}");
        let id = match header {
            Some(_) => value.to_owned(),
            None => {
                // Generated at agent A: a UUID v4.
                let id = seen["a.x-correlation-id"].clone();
                assert_eq!(id.len(), 36, "{id}");
                assert_eq!(&id[14..15], "4", "{id}");
                id
            }
        };
        assert_eq!(seen["a.x-correlation-id"], id, "node A: {seen:#?}");
        assert_eq!(seen["b.x-correlation-id"], id, "node B: {seen:#?}");
        for node in ["a", "b"] {
            let baggage = Baggage::parse(&seen[&format!("{node}.baggage")]).unwrap();
            assert_eq!(baggage.get("correlation.id"), Some(id.as_str()), "{node}");
            if header.is_some() {
                assert_eq!(baggage.get("tenant"), Some("acme"), "{node}");
            }
        }
        expected.push((trace, id));
    }

    let spans = mesh.finish();
    for (trace, id) in expected {
        for span in hop_spans(&spans, trace) {
            assert_eq!(
                span.attributes.get_str("correlation.id"),
                Some(id.as_str()),
                "{span:#?}"
            );
        }
    }
}

#[test]
fn latency_on_the_peer_s_inbound_delays_the_call_and_its_spans() {
    const DELAY: Duration = Duration::from_millis(200);
    // Lower bounds are exact; comparisons with the baseline allow this much noise.
    const SLACK: Duration = Duration::from_millis(50);
    let mesh = Mesh::start();
    let traceparent = |trace: u32| format!("00-{trace:032x}-0123456789abcdef-01");
    mesh.call("/warm-up", &[]);

    let mut baseline = Duration::MAX;
    for trace in 1..=5 {
        let (seen, elapsed) = mesh.call("/orders/1", &[("traceparent", &traceparent(trace))]);
        assert_eq!(seen["down.status"], "200");
        baseline = baseline.min(elapsed);
    }

    mesh.b.add_toxic(&format!(
        r#"{{"type":"latency","latency_ms":{},"jitter_ms":0,"direction":"inbound","peer":"node-a"}}"#,
        DELAY.as_millis()
    ));
    let mut delayed = Duration::MAX;
    for trace in 101..=102 {
        let (seen, elapsed) = mesh.call("/orders/1", &[("traceparent", &traceparent(trace))]);
        assert_eq!(seen["down.status"], "200");
        assert!(elapsed >= DELAY, "end to end {}ms", ms(elapsed));
        let down: u64 = seen["down.elapsed_ms"].parse().unwrap();
        assert!(down >= 200, "node A's call to node B took {down}ms");
        delayed = delayed.min(elapsed);
    }
    assert!(
        delayed + SLACK >= baseline + DELAY,
        "baseline {}ms, with the toxic {}ms",
        ms(baseline),
        ms(delayed)
    );
    // A caller the toxic does not name is not delayed (no upper bound asserted; the
    // activation counter tells).
    let before = mesh
        .b
        .metric(r#"faultline_agent_fault_activations_total{direction="inbound",kind="latency"}"#);
    let direct = mesh
        .call_b_directly("/orders/2", &[], Duration::from_secs(10))
        .unwrap();
    assert_eq!(direct.status, 200);
    let after = mesh
        .b
        .metric(r#"faultline_agent_fault_activations_total{direction="inbound",kind="latency"}"#);
    assert_eq!((before, after), (2.0, 2.0));

    let spans = mesh.finish();
    let duration = |trace: u32, hop: usize| {
        Duration::from_nanos(hop_spans(&spans, &format!("{trace:032x}"))[hop].duration_ns())
    };
    // Every span on the delayed path holds the delay: B's server span where it was
    // injected, and the A spans that wait for it.
    for hop in 0..3 {
        let base = (1..=5).map(|t| duration(t, hop)).min().unwrap();
        for trace in 101..=102 {
            let span = duration(trace, hop);
            assert!(span >= DELAY, "hop {hop}: {}ms", ms(span));
            assert!(
                span + SLACK >= base + DELAY,
                "hop {hop}: baseline {}ms, with the toxic {}ms",
                ms(base),
                ms(span)
            );
        }
    }
}

#[test]
fn a_partition_refuses_the_partitioned_peer_only() {
    let mesh = Mesh::start();
    let activations = |agent: &Agent, direction: &str| {
        agent.metric(&format!(
            r#"faultline_agent_fault_activations_total{{direction="{direction}",kind="partition"}}"#
        ))
    };

    // Agent A's outbound side partitions node-b: node A's call gets no response at all.
    let id = mesh
        .a
        .add_toxic(r#"{"type":"partition","peers":["node-b"],"direction":"outbound"}"#);
    assert_eq!(mesh.a.list_toxics().len(), 1);
    let (seen, _) = mesh.call("/orders/1", &[]);
    assert!(
        seen.get("down.error")
            .is_some_and(|e| e.starts_with("connection:")),
        "a refused call, not a timeout: {seen:#?}"
    );
    assert!(!seen.contains_key("b.path"), "node B was not reached");
    assert_eq!(activations(&mesh.a, "outbound"), 1.0);
    // Not matching: another peer name through the same outbound listener (the same
    // agent B behind it), and the client's own inbound request to node A, pass.
    let (other, _) = mesh.call("/orders/2", &[("x-test-peer", "node-b-alias")]);
    assert_eq!(other["down.status"], "200", "{other:#?}");
    assert_eq!(other["b.path"], "/orders/2");
    mesh.a.remove_toxic(&id);
    assert!(mesh.a.list_toxics().is_empty());
    let (healed, _) = mesh.call("/orders/3", &[]);
    assert_eq!(healed["down.status"], "200", "{healed:#?}");

    // Agent B's inbound side partitions the caller node-a: agent B drops the exchange,
    // so agent A answers node A with a 502 and node B never sees the request.
    mesh.b
        .add_toxic(r#"{"type":"partition","peers":["node-a"],"direction":"inbound"}"#);
    let (seen, _) = mesh.call("/orders/4", &[]);
    assert_eq!(seen["down.status"], "502", "{seen:#?}");
    assert!(!seen.contains_key("b.path"), "node B was not reached");
    assert!(activations(&mesh.b, "inbound") >= 1.0);
    // Not matching: a caller with no node name, and a caller named otherwise.
    let timeout = Duration::from_secs(10);
    let anonymous = mesh.call_b_directly("/orders/5", &[], timeout).unwrap();
    assert_eq!(anonymous.status, 200);
    let other = mesh
        .call_b_directly("/orders/6", &[("x-faultline-caller", "node-c")], timeout)
        .unwrap();
    assert_eq!(other.status, 200);
    // The same direct call naming node-a is refused: no response, quickly (the client's
    // timeout is far away).
    let refused = mesh.call_b_directly("/orders/7", &[("x-faultline-caller", "node-a")], timeout);
    let error = refused.expect_err("a partitioned caller gets no response");
    assert_ne!(error.kind(), io::ErrorKind::TimedOut, "{error}");

    assert_eq!(mesh.b.clear_toxics(), 1);
    let (healed, _) = mesh.call("/orders/8", &[]);
    assert_eq!(healed["down.status"], "200", "{healed:#?}");
}

#[test]
fn a_blackhole_holds_the_call_until_the_caller_gives_up() {
    const CALLER_TIMEOUT: Duration = Duration::from_secs(1);
    let mesh = Mesh::start();
    mesh.b
        .add_toxic(r#"{"type":"blackhole","direction":"inbound","peer":"node-a"}"#);

    // Node A's call, with node A's own 1 s timeout: the timeout is what ends it.
    let (seen, elapsed) = mesh.call(
        "/orders/1",
        &[("x-test-timeout-ms", &CALLER_TIMEOUT.as_millis().to_string())],
    );
    assert!(
        seen.get("down.error")
            .is_some_and(|e| e.starts_with("timeout:")),
        "{seen:#?}"
    );
    let down: u64 = seen["down.elapsed_ms"].parse().unwrap();
    assert!(down >= 1000, "node A gave up after {down}ms");
    assert!(elapsed >= CALLER_TIMEOUT, "{}ms", ms(elapsed));

    // A direct caller named node-a, with its own 1 s timeout, likewise.
    let started = Instant::now();
    let held = mesh.call_b_directly(
        "/orders/2",
        &[("x-faultline-caller", "node-a")],
        CALLER_TIMEOUT,
    );
    let error = held.expect_err("a blackholed request gets no response");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
    assert!(started.elapsed() >= CALLER_TIMEOUT);

    // A caller the toxic does not name is answered (well within its timeout).
    let passed = mesh
        .call_b_directly("/orders/3", &[], Duration::from_secs(10))
        .unwrap();
    assert_eq!(passed.status, 200);
    assert_eq!(
        mesh.b.metric(
            r#"faultline_agent_fault_activations_total{direction="inbound",kind="blackhole"}"#
        ),
        2.0
    );
}

#[test]
fn an_error_toxic_answers_its_status_at_its_probability() {
    const REQUESTS: usize = 400;
    const P: f64 = 0.3;
    const THREADS: usize = 4;
    let mesh = Mesh::start();
    mesh.b.add_toxic(&format!(
        r#"{{"type":"error","status":503,"direction":"inbound","route":"/work*","probability":{P}}}"#
    ));

    let statuses: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let inbound = mesh.a.inbound;
                scope.spawn(move || {
                    (0..REQUESTS / THREADS)
                        .map(|i| {
                            let (seen, _) =
                                call_node_a(inbound, &format!("/work/{t}/{i}"), &[]).unwrap();
                            seen.get("down.status")
                                .cloned()
                                .unwrap_or_else(|| panic!("{seen:#?}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let errors = statuses.iter().filter(|s| *s == "503").count();
    let passed = statuses.iter().filter(|s| *s == "200").count();
    assert_eq!(errors + passed, REQUESTS, "only 200 and 503: {statuses:?}");
    // Binomial(400, 0.3): mean 120, σ ≈ 9.2; ±5σ fails a correct agent ~1 in 1.7 million.
    let n = REQUESTS as f64;
    let sigma = (n * P * (1.0 - P)).sqrt();
    let observed = errors as f64;
    assert!(
        (observed - n * P).abs() <= 5.0 * sigma,
        "{errors} of {REQUESTS} answered 503; expected {} ± {:.0}",
        n * P,
        5.0 * sigma
    );
    // The errors were answered by agent B itself: node B saw exactly the others, and
    // every answered error is one counted activation.
    assert_eq!(mesh.b_work_hits.load(Ordering::SeqCst), passed);
    assert_eq!(
        mesh.b
            .metric(r#"faultline_agent_fault_activations_total{direction="inbound",kind="error"}"#),
        observed
    );
    // Outside the toxic's route nothing fails.
    for i in 0..20 {
        let (seen, _) = mesh.call(&format!("/other/{i}"), &[]);
        assert_eq!(seen["down.status"], "200", "{seen:#?}");
    }
}

#[test]
fn a_bandwidth_cap_paces_the_response_body() {
    const BYTES: u64 = 20_000;
    const RATE: u64 = 40_000; // bytes per second: the body takes at least 0.5 s
    let floor = Duration::from_millis(BYTES * 1000 / RATE);
    let mesh = Mesh::start();
    let path = format!("/bytes/{BYTES}");
    let (seen, _) = mesh.call(&path, &[]);
    assert_eq!(seen["down.body_len"], BYTES.to_string());

    mesh.b.add_toxic(&format!(
        r#"{{"type":"bandwidth","bytes_per_sec":{RATE},"direction":"inbound"}}"#
    ));
    let (seen, elapsed) = mesh.call(&path, &[]);
    assert_eq!(seen["down.status"], "200", "{seen:#?}");
    assert_eq!(seen["down.body_len"], BYTES.to_string(), "the whole body");
    let down: u128 = seen["down.elapsed_ms"].parse().unwrap();
    assert!(down >= floor.as_millis(), "node A read it in {down}ms");
    assert!(elapsed >= floor, "{}ms", ms(elapsed));
}
