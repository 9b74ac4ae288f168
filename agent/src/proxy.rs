//! The proxy shell: listeners, routing and forwarding around the agent's pure parts.
//!
//! ```text
//!  inbound listener  ─► handle(Inbound)  ─► upstream: this agent's node
//!  outbound listener ─► handle(Outbound) ─► upstream: the named peer's agent (inbound listener)
//!
//!  handle: propagate ─► in-flight gauge ─► toxics.decide ─► delay ─► terminal effect | forward
//!          ─► metrics + span (off the request path) ─► response body (bandwidth-capped if asked)
//! ```
//!
//! **Routing.** The node calls its peers through the outbound listener and names the peer
//! in the request's authority: the `Host` header (HTTP/1.1), `:authority` (HTTP/2), or an
//! absolute-form URI as sent to an HTTP proxy — `http://node-2/orders`. The peers file
//! maps each name to that peer's agent; a name it does not list gets a 502 saying so.
//! The outbound agent tells the peer's inbound agent who is calling with the
//! `x-faultline-caller` header (stripped before the node sees it), so that inbound
//! toxics can match the caller — partitions need it.
//!
//! **Retries.** A caller marks a retry with `x-faultline-resend-count: N` (N ≥ 1); the
//! span records it as `http.request.resend_count` and metrics count it as a retry seen.
//!
//! **Faults.** Delays are slept before forwarding; `error` answers with the status and a
//! generic body (never naming the fault); `reset` and `partition` drop the connection
//! (HTTP/1.1) or reset the stream (HTTP/2); `blackhole` holds the request until the
//! caller gives up (bounded by `blackhole_limit`, then reset). Activations go to
//! metrics only, never into spans.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use opentelemetry::KeyValue;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Direction;
use crate::access_log::{AccessLog, Entry};
use crate::export::{ProxySpan, ProxySpanKind, SpanSink};
use crate::metrics::{InFlightGuard, Metrics, RequestLabels, StatusClass};
use crate::propagation::{HopContext, propagate};
use crate::stall::{ClientStalled, StalledBody, WriteStall};
use crate::toxics::{RequestFacts, Terminal, Toxics};

/// The header an outbound agent uses to tell the peer's inbound agent who calls.
pub const CALLER_HEADER: &str = "x-faultline-caller";
/// The header a caller sets on a retried request: the attempt number, 1 for the first retry.
pub const RESEND_COUNT_HEADER: &str = "x-faultline-resend-count";

type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body the proxy hands to hyper.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// Peer name → that peer's agent (its inbound listener).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers(HashMap<String, SocketAddr>);

/// Why a peers file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    #[error("peers file is not a JSON object of name → \"host:port\": {0}")]
    Json(#[from] serde_json::Error),
    #[error("peer {name:?}: {address:?} is not an address such as 127.0.0.1:7002")]
    Address { name: String, address: String },
}

impl Peers {
    /// Parses `{"node-2": "127.0.0.1:7102", …}`.
    pub fn from_json(text: &str) -> Result<Self, PeersError> {
        let raw: HashMap<String, String> = serde_json::from_str(text)?;
        let mut peers = HashMap::with_capacity(raw.len());
        for (name, address) in raw {
            let Ok(addr) = address.parse::<SocketAddr>() else {
                return Err(PeersError::Address { name, address });
            };
            peers.insert(name, addr);
        }
        Ok(Peers(peers))
    }

    pub fn get(&self, name: &str) -> Option<SocketAddr> {
        self.0.get(name).copied()
    }

    pub fn insert(&mut self, name: impl Into<String>, addr: SocketAddr) {
        self.0.insert(name.into(), addr);
    }

    fn names(&self) -> String {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        names.join(", ")
    }
}

/// How one agent proxies.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The node this agent fronts (its name in peers files).
    pub node: String,
    /// Where inbound requests go: the node itself.
    pub upstream: SocketAddr,
    pub peers: Peers,
    /// The sampled flag of traces that start at this agent.
    pub sampled_if_new: bool,
    /// Time allowed for connecting to the upstream.
    pub connect_timeout: Duration,
    /// Time allowed until the upstream's response headers arrive.
    pub response_timeout: Duration,
    /// Longest a client may stall: sending its request headers (HTTP/1.1), sending
    /// its request body, or reading its response. A stall, not a total.
    pub client_timeout: Duration,
    /// Longest a blackholed request is held, when its caller never gives up, before its
    /// connection is reset.
    pub blackhole_limit: Duration,
}

impl ProxyConfig {
    pub fn new(node: impl Into<String>, upstream: SocketAddr, peers: Peers) -> Self {
        ProxyConfig {
            node: node.into(),
            upstream,
            peers,
            sampled_if_new: true,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(30),
            client_timeout: Duration::from_secs(30),
            blackhole_limit: Duration::from_secs(300),
        }
    }
}

/// A request was dropped on purpose (reset, partition, an exhausted blackhole): hyper
/// closes the connection, or resets the HTTP/2 stream, instead of answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the agent")]
pub struct Dropped;

/// The proxy: cheap to clone into every connection.
#[derive(Debug, Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: ProxyConfig,
    http1: Client<HttpConnector, ProxyBody>,
    http2: Client<HttpConnector, ProxyBody>,
    access_log: Option<AccessLog>,
    /// The URI authority of the upstream and of every peer, built once.
    authorities: HashMap<SocketAddr, http::uri::Authority>,
    toxics: Arc<Mutex<Toxics>>,
    metrics: Metrics,
    spans: SpanSink,
}

impl Proxy {
    pub fn new(
        config: ProxyConfig,
        toxics: Arc<Mutex<Toxics>>,
        metrics: Metrics,
        spans: SpanSink,
        access_log: Option<AccessLog>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let http1 = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector.clone());
        // gRPC and other HTTP/2 callers stay on HTTP/2 (cleartext, prior knowledge).
        let http2 = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        let authorities = std::iter::once(config.upstream)
            .chain(config.peers.0.values().copied())
            .filter_map(|addr| {
                http::uri::Authority::try_from(addr.to_string())
                    .ok()
                    .map(|a| (addr, a))
            })
            .collect();
        Proxy {
            shared: Arc::new(Shared {
                config,
                http1,
                http2,
                toxics,
                metrics,
                spans,
                access_log,
                authorities,
            }),
        }
    }

    /// Serves one listener until `shutdown` turns true; open connections are then given
    /// a moment to finish and closed.
    pub async fn serve(
        &self,
        listener: TcpListener,
        direction: Direction,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.shared.config.client_timeout)
            .max_buf_size(64 * 1024);
        builder.http2().max_header_list_size(64 * 1024);
        let builder = Arc::new(builder);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    // Accept errors (out of file descriptors, a reset before accept) are
                    // per-connection; the listener keeps serving.
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let proxy = self.clone();
                    let proxy_limit = self.shared.config.client_timeout;
                    let builder = Arc::clone(&builder);
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let proxy = proxy.clone();
                            async move { proxy.handle(direction, request).await }
                        });
                        // A connection that ends badly (a reset, a slow client timing
                        // out) concerns that connection only.
                        let stream = WriteStall::new(stream, proxy_limit);
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        connections.abort_all();
    }

    /// One request through the agent.
    pub async fn handle(
        &self,
        direction: Direction,
        mut request: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Dropped> {
        let shared = &*self.shared;
        let started = SystemTime::now();
        let clock = Instant::now();

        // Who is on the other side, and where the request goes.
        let (peer, target) = match direction {
            Direction::Inbound => {
                let caller = header_str(request.headers(), CALLER_HEADER).map(str::to_owned);
                request.headers_mut().remove(CALLER_HEADER);
                (caller, Ok(shared.config.upstream))
            }
            Direction::Outbound => {
                let name = authority_host(&request).map(str::to_owned);
                let target = match &name {
                    Some(name) => shared.config.peers.get(name).ok_or_else(|| {
                        format!(
                            "unknown peer {name:?}: the peers file lists {}",
                            shared.config.peers.names()
                        )
                    }),
                    None => Err(
                        "no peer named: set the Host header (or the URI authority) to a peer name"
                            .to_owned(),
                    ),
                };
                (name, target)
            }
        };
        let resend_count = header_str(request.headers(), RESEND_COUNT_HEADER)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|n| *n > 0);
        let hop = propagate(request.headers_mut(), shared.config.sampled_if_new);

        // From here on the exchange is recorded exactly once: when it ends, or, if the
        // caller goes away first (hyper then drops this future), when it is dropped.
        let mut exchange = Exchange {
            shared: Arc::clone(&self.shared),
            _in_flight: shared.metrics.start(direction, peer.as_deref()),
            direction,
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            version: request.version(),
            peer,
            resend_count,
            hop: Some(hop),
            started,
            clock,
        };

        let decision = shared
            .toxics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .decide(
                &RequestFacts {
                    direction,
                    peer: exchange.peer.as_deref(),
                    path: &exchange.path,
                },
                &mut rand::rng(),
            );
        for activation in &decision.activations {
            shared
                .metrics
                .fault_activation(activation.toxic_type, direction);
        }
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
        }

        let outcome: Result<Response<ProxyBody>, Failure> = match decision.terminal {
            Some(Terminal::Reset | Terminal::Partition) => Err(Failure::Dropped),
            Some(Terminal::Blackhole) => {
                // Usually the caller gives up first: hyper sees its connection close
                // (or its stream reset) and drops this future, and `Exchange` records
                // the request as abandoned.
                tokio::time::sleep(shared.config.blackhole_limit).await;
                Err(Failure::Dropped)
            }
            Some(Terminal::Error(status)) => {
                Ok(plain(status, status.canonical_reason().unwrap_or("error")))
            }
            None => match target {
                Err(message) => Err(Failure::Upstream(
                    StatusCode::BAD_GATEWAY,
                    "unknown_peer",
                    message,
                )),
                Ok(addr) => {
                    self.forward(direction, exchange.peer.as_deref(), addr, request)
                        .await
                }
            },
        };

        exchange.end(match &outcome {
            Ok(response) => Ending::Answered(response.status()),
            Err(Failure::Dropped) => Ending::Dropped,
            Err(Failure::Upstream(status, kind, message)) => Ending::Failed(*status, kind, message),
        });

        match outcome {
            Ok(mut response) => {
                if let Some(cap) = decision.bandwidth {
                    response =
                        response.map(|body| crate::throttle::Throttled::new(body, cap).boxed());
                }
                Ok(response)
            }
            Err(Failure::Dropped) => Err(Dropped),
            Err(Failure::Upstream(status, _, message)) => Ok(plain(status, &message)),
        }
    }

    async fn forward(
        &self,
        direction: Direction,
        peer: Option<&str>,
        addr: SocketAddr,
        request: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, Failure> {
        let shared = &*self.shared;
        let limit = shared.config.client_timeout;
        let mut request = request.map(|body| StalledBody::new(body, limit).boxed());
        let path_and_query = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        let authority = match shared.authorities.get(&addr) {
            Some(authority) => authority.clone(),
            None => http::uri::Authority::try_from(addr.to_string()).map_err(|e| {
                Failure::Upstream(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    format!("cannot address {addr}: {e}"),
                )
            })?,
        };
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| {
                Failure::Upstream(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("cannot forward this request: {e}"),
                )
            })?;
        *request.uri_mut() = uri;
        let version = request.version();
        strip_hop_by_hop(request.headers_mut(), version);
        if direction == Direction::Outbound
            && let Ok(node) = http::HeaderValue::from_str(&shared.config.node)
        {
            request.headers_mut().insert(CALLER_HEADER, node);
        }
        let client = if request.version() == Version::HTTP_2 {
            &shared.http2
        } else {
            &shared.http1
        };
        let target = match peer {
            Some(peer) if direction == Direction::Outbound => format!("peer {peer} ({addr})"),
            _ => format!("upstream {addr}"),
        };
        match tokio::time::timeout(shared.config.response_timeout, client.request(request)).await {
            Err(_) => Err(Failure::Upstream(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "{target} did not answer within {:?}",
                    shared.config.response_timeout
                ),
            )),
            Ok(Err(e)) if ClientStalled::in_chain(&e).is_some() => Err(Failure::Upstream(
                StatusCode::REQUEST_TIMEOUT,
                "client_timeout",
                format!("the request body stalled for more than {limit:?}"),
            )),
            Ok(Err(e)) => {
                let kind = if e.is_connect() {
                    "connection_refused"
                } else {
                    "upstream_error"
                };
                Err(Failure::Upstream(
                    StatusCode::BAD_GATEWAY,
                    kind,
                    format!("{target} is unreachable: {e}"),
                ))
            }
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers, parts.version);
                Ok(Response::from_parts(
                    parts,
                    body.map_err(|e| Box::new(e) as BoxError).boxed(),
                ))
            }
        }
    }
}

/// Why a request got no upstream response.
enum Failure {
    /// Dropped on purpose: no response at all.
    Dropped,
    /// Answered by the agent itself: status, `error.type`, message for the caller.
    Upstream(StatusCode, &'static str, String),
}

/// How a request ended, as spans, metrics and the access log record it.
enum Ending<'a> {
    /// A response went to the caller (the upstream's, or an injected error status).
    Answered(StatusCode),
    /// The agent answered for an upstream it could not use: status, `error.type`, why.
    Failed(StatusCode, &'static str, &'a str),
    /// The agent dropped the connection (reset, partition, an exhausted blackhole).
    Dropped,
    /// The caller went away before an answer (it timed out, or was cancelled).
    Abandoned,
}

/// One request in flight: everything needed to record it once it ends.
struct Exchange {
    shared: Arc<Shared>,
    _in_flight: InFlightGuard,
    direction: Direction,
    method: http::Method,
    path: String,
    version: Version,
    peer: Option<String>,
    resend_count: Option<i64>,
    /// Taken by the one recording.
    hop: Option<HopContext>,
    started: SystemTime,
    clock: Instant,
}

impl Exchange {
    /// Records the request in metrics, as a span, and in the access log.
    fn end(&mut self, ending: Ending<'_>) {
        let Some(hop) = self.hop.take() else { return };
        let shared = &*self.shared;
        let direction = self.direction;
        let elapsed = self.clock.elapsed();
        let (status_class, status, error_type, error_message): (_, _, _, Option<String>) =
            match ending {
                Ending::Answered(status) => {
                    let error = status.is_server_error().then(|| status.as_str().to_owned());
                    (StatusClass::of(status), Some(status), error, None)
                }
                Ending::Dropped => (
                    StatusClass::from_code(0),
                    None,
                    Some("connection_reset".to_owned()),
                    Some("the connection was dropped".to_owned()),
                ),
                Ending::Abandoned => (
                    StatusClass::from_code(0),
                    None,
                    Some("client_disconnected".to_owned()),
                    Some("the caller went away before the response".to_owned()),
                ),
                Ending::Failed(status, kind, message) => (
                    StatusClass::of(status),
                    Some(status),
                    Some(kind.to_owned()),
                    Some(message.to_owned()),
                ),
            };
        let labels = RequestLabels {
            direction,
            route: &self.path,
            peer: self.peer.as_deref(),
        };
        shared
            .metrics
            .record_request(&labels, status_class, elapsed, self.resend_count.is_some());

        if let Some(log) = &shared.access_log {
            log.record(&Entry {
                time: Entry::time_of(self.started),
                node: &shared.config.node,
                direction: direction.as_str(),
                peer: self.peer.as_deref(),
                method: self.method.as_str(),
                path: &self.path,
                protocol: protocol_version(self.version),
                status: status.map(|s| s.as_u16()),
                duration_ms: Entry::duration_ms(elapsed),
                trace_id: hop.trace_id.to_string(),
                span_id: hop.span_id.to_string(),
                parent_span_id: hop.parent_span_id.map(|id| id.to_string()),
                correlation_id: hop.correlation_id.as_str(),
                error_type: error_type.as_deref(),
                resend_count: self.resend_count,
            });
        }

        let mut attributes = vec![
            KeyValue::new("http.request.method", self.method.as_str().to_owned()),
            KeyValue::new("url.path", self.path.clone()),
            KeyValue::new("network.protocol.version", protocol_version(self.version)),
            KeyValue::new(
                "server.address",
                match direction {
                    Direction::Inbound => shared.config.node.clone(),
                    Direction::Outbound => self.peer.clone().unwrap_or_default(),
                },
            ),
        ];
        if let Some(status) = status {
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
        }
        if let Some(error_type) = &error_type {
            attributes.push(KeyValue::new("error.type", error_type.clone()));
        }
        if let Some(n) = self.resend_count {
            attributes.push(KeyValue::new("http.request.resend_count", n));
        }
        if direction == Direction::Inbound
            && let Some(caller) = &self.peer
        {
            attributes.push(KeyValue::new("client.address", caller.clone()));
        }
        shared.spans.record(ProxySpan {
            hop,
            kind: match direction {
                Direction::Inbound => ProxySpanKind::Server,
                Direction::Outbound => ProxySpanKind::Client,
            },
            name: self.method.as_str().to_owned(),
            start: self.started,
            end: self.started + elapsed,
            attributes,
            error: error_message.or_else(|| error_type.map(|status| format!("HTTP {status}"))),
        });
    }
}

impl Drop for Exchange {
    /// The future handling the request was dropped before it ended: the caller left.
    fn drop(&mut self) {
        self.end(Ending::Abandoned);
    }
}

fn plain(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never: Infallible| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The peer a request names: the URI's authority (absolute form, HTTP/2) or `Host`.
fn authority_host<B>(request: &Request<B>) -> Option<&str> {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| header_str(request.headers(), header::HOST.as_str()))?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                host
            } else {
                authority
            }
        });
    (!host.is_empty()).then_some(host)
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Removes the headers that concern one connection only (RFC 9110 §7.6.1). gRPC's
/// `te: trailers` is end-to-end on HTTP/2 and is kept there.
fn strip_hop_by_hop(headers: &mut HeaderMap, version: Version) {
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if version != Version::HTTP_2 {
        headers.remove(header::TE);
    }
}

#[cfg(test)]
mod tests;
