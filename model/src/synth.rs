//! Synthetic traces for benchmarks and tests: deterministic (seeded), shaped like the
//! demo cluster's traffic, with the semantic-convention attributes real instrumentation
//! writes. Never used as a capture of anything real.
//!
//! Two shapes:
//! - [`Synth::new`]: chains of client/server hops (gateway → worker → payments), the
//!   reader benchmarks' traffic. Its output is kept byte-identical across changes, so
//!   `bench read` figures stay comparable.
//! - [`Synth::incident`]: the demo's order and payment-job traces with retries, about
//!   1,500 spans per second of capture time (1 M spans: 11 minutes), and a payments
//!   outage from minute 3 to minute 6 that turns into a retry storm on the worker →
//!   payments edge — traffic for benchmark questions (latency, error rate, retry
//!   amplification) whose answers are not all the same.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::span::{Event, Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};

/// Generates traces of `spans_per_trace` spans each, starting at `start_ns`.
#[derive(Debug)]
pub struct Synth {
    rng: StdRng,
    resources: Vec<Arc<Resource>>,
    scope: Arc<Scope>,
    clock_ns: u64,
    /// The first trace's start: the incident window is measured from it.
    origin_ns: u64,
    shape: Shape,
    pub spans_per_trace: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Chain,
    Incident,
}

const SERVICES: [&str; 3] = ["gateway", "worker", "payments"];
const ROUTES: [&str; 4] = ["/orders", "/orders/{id}", "/jobs", "/charge"];

/// The incident shape's services, indexes into its resources (three instances each).
const GATEWAY: usize = 0;
const NODE: usize = 1;
const WORKER: usize = 2;
const PAYMENTS: usize = 3;
const INCIDENT_SERVICES: [&str; 4] = ["gateway", "faultline-node", "worker", "payments"];
/// Where payments fails, measured from the first trace (ns).
const OUTAGE_NS: std::ops::Range<u64> = 180_000_000_000..360_000_000_000;
/// Attempts the worker makes per charge (the first and up to three retries).
const CHARGE_ATTEMPTS: u16 = 4;

impl Synth {
    pub fn new(seed: u64) -> Self {
        let resources = SERVICES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut r = Resource::with_service(*name);
                r.attributes
                    .insert("service.instance.id", format!("node-{}", i + 1));
                r.attributes.insert("host.name", "127.0.0.1");
                Arc::new(r)
            })
            .collect();
        let scope = Arc::new(Scope {
            name: "faultline-synth".into(),
            version: "1".into(),
            ..Scope::default()
        });
        // A whole minute, so that per-minute figures start at a minute boundary.
        let origin_ns = 1_763_700_000_000_000_000;
        Synth {
            rng: StdRng::seed_from_u64(seed),
            resources,
            scope,
            clock_ns: origin_ns,
            origin_ns,
            shape: Shape::Chain,
            spans_per_trace: 8,
        }
    }

    /// Order and payment-job traces with retries and a payments outage (see the module
    /// documentation). `spans_per_trace` does not apply: a trace has as many spans as
    /// its calls and retries make.
    pub fn incident(seed: u64) -> Self {
        let mut synth = Synth::new(seed);
        synth.shape = Shape::Incident;
        synth.resources = INCIDENT_SERVICES
            .iter()
            .flat_map(|name| {
                (1..=3).map(move |node| {
                    let mut r = Resource::with_service(*name);
                    r.attributes
                        .insert("service.instance.id", format!("{name}-{node}"));
                    r.attributes
                        .insert("faultline.node", format!("node-{node}"));
                    Arc::new(r)
                })
            })
            .collect();
        synth
    }

    /// The spans of one trace, root first.
    pub fn trace(&mut self) -> Vec<Span> {
        match self.shape {
            Shape::Chain => self.chain_trace(),
            Shape::Incident => self.incident_trace(),
        }
    }

    /// A server root and a chain of client/server hops below it.
    fn chain_trace(&mut self) -> Vec<Span> {
        let trace_id = TraceId(self.rng.random());
        let start = self.clock_ns;
        self.clock_ns += self.rng.random_range(50_000..2_000_000);
        let correlation = format!("{:032x}", self.rng.random::<u128>());
        let mut spans: Vec<Span> = Vec::with_capacity(self.spans_per_trace);
        let total_ns = self.rng.random_range(2_000_000..80_000_000u64);
        for i in 0..self.spans_per_trace {
            let depth = i as u64;
            let span_id = SpanId(self.rng.random::<u64>().max(1).to_be_bytes());
            let service = (i / 2).min(SERVICES.len() - 1);
            let kind = match i {
                0 => SpanKind::Server,
                _ if i % 2 == 1 => SpanKind::Client,
                _ => SpanKind::Server,
            };
            let route = ROUTES[self.rng.random_range(0..ROUTES.len())];
            let mut span = Span::new(
                trace_id,
                span_id,
                format!("{} {route}", if i % 3 == 0 { "POST" } else { "GET" }),
            );
            span.parent_span_id = spans.last().map(|p| p.span_id);
            span.kind = kind;
            span.flags = 1;
            span.start_ns = start + depth * 100_000;
            span.end_ns = start
                + total_ns
                    .saturating_sub(depth * 150_000)
                    .max(depth * 100_000 + 50_000);
            span.resource = Arc::clone(&self.resources[service]);
            span.scope = Arc::clone(&self.scope);
            let failed = self.rng.random_bool(0.02);
            span.attributes.insert(
                "http.request.method",
                if i % 3 == 0 { "POST" } else { "GET" },
            );
            span.attributes.insert("http.route", route);
            span.attributes.insert(
                "http.response.status_code",
                if failed { 503i64 } else { 200 },
            );
            span.attributes.insert("server.address", "127.0.0.1");
            span.attributes.insert("server.port", 7000 + service as i64);
            span.attributes
                .insert("correlation.id", correlation.clone());
            if failed {
                span.status.code = StatusCode::Error;
                span.status.message = "upstream unavailable".into();
                span.attributes.insert("error.type", "503");
            }
            if kind == SpanKind::Client && self.rng.random_bool(0.1) {
                span.attributes.insert("http.request.resend_count", 1i64);
                span.events.push(Event {
                    time_ns: span.start_ns + 10_000,
                    name: "retry".into(),
                    ..Event::default()
                });
            }
            spans.push(span);
        }
        spans
    }

    /// An order (the gateway writes the order to the KV and enqueues a payment job on
    /// the node) or a payment job (the worker charges payments, retrying 503s, then
    /// acks or nacks the job on the node).
    fn incident_trace(&mut self) -> Vec<Span> {
        let trace_id = TraceId(self.rng.random());
        let start = self.clock_ns;
        // 0.4–6.8 ms between traces of 5–6 spans: about 1,500 spans per second.
        self.clock_ns += self.rng.random_range(400_000..6_800_000);
        let outage = OUTAGE_NS.contains(&(start - self.origin_ns));
        let node = self.rng.random_range(0..3);
        let mut t = Trace {
            id: trace_id,
            correlation: format!("{:032x}", self.rng.random::<u128>()),
            spans: Vec::with_capacity(8),
        };
        if self.rng.random_bool(0.6) {
            let root = self.span(
                &mut t,
                None,
                (GATEWAY, node),
                SpanKind::Server,
                "POST /orders",
                start,
            );
            http(&mut t.spans[root], "POST", "/orders");
            let mut at = start + self.latency(200_000);
            let key = self.rng.random_range(0..10_000u32);
            // The KV write, retried once on a 503.
            for attempt in 0..2 {
                let failed = self.rng.random_bool(0.004);
                at = self.call(
                    &mut t,
                    root,
                    (GATEWAY, node),
                    (NODE, node),
                    "PUT",
                    "/kv/{key}",
                    &format!("/kv/order:{key}"),
                    attempt,
                    failed,
                    at,
                    1_500_000,
                );
                if !failed {
                    break;
                }
                at += 5_000_000;
            }
            at = self.call(
                &mut t,
                root,
                (GATEWAY, node),
                (NODE, node),
                "POST",
                "/queues/{name}/messages",
                "/queues/payments/messages",
                0,
                false,
                at,
                2_500_000,
            );
            t.spans[root].end_ns = at + self.latency(100_000);
        } else {
            let root = self.span(
                &mut t,
                None,
                (WORKER, node),
                SpanKind::Consumer,
                "process payments",
                start,
            );
            let span = &mut t.spans[root];
            span.attributes.insert("messaging.system", "faultline");
            span.attributes
                .insert("messaging.operation.type", "process");
            span.attributes
                .insert("messaging.destination.name", "payments");
            let mut at = start + self.latency(300_000);
            let failure = if outage { 0.35 } else { 0.01 };
            let base = if outage { 30_000_000 } else { 8_000_000 };
            let mut charged = false;
            for attempt in 0..CHARGE_ATTEMPTS {
                let failed = self.rng.random_bool(failure);
                at = self.call(
                    &mut t,
                    root,
                    (WORKER, node),
                    (PAYMENTS, node),
                    "POST",
                    "/charge",
                    "/charge",
                    attempt,
                    failed,
                    at,
                    base,
                );
                if !failed {
                    charged = true;
                    break;
                }
                // Exponential backoff: 10, 20, 40 ms.
                at += 10_000_000 << attempt;
            }
            let (route, path) = if charged {
                ("/queues/{name}/ack", "/queues/payments/ack")
            } else {
                ("/queues/{name}/nack", "/queues/payments/nack")
            };
            at = self.call(
                &mut t,
                root,
                (WORKER, node),
                (NODE, node),
                "POST",
                route,
                path,
                0,
                false,
                at,
                1_000_000,
            );
            let span = &mut t.spans[root];
            span.end_ns = at + self.latency(100_000);
            if !charged {
                span.status.code = StatusCode::Error;
                span.status.message = "payment failed after retries".into();
                span.attributes.insert("error.type", "503");
            }
        }
        t.spans
    }

    /// One HTTP attempt from `caller` to `callee`: a client span under `parent` and the
    /// callee's server span under it. Returns when the client span ends.
    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        t: &mut Trace,
        parent: usize,
        caller: (usize, usize),
        callee: (usize, usize),
        method: &str,
        route: &str,
        path: &str,
        resend: u16,
        failed: bool,
        at: u64,
        base_ns: u64,
    ) -> u64 {
        let callee_name = INCIDENT_SERVICES[callee.0];
        let client = self.span(t, Some(parent), caller, SpanKind::Client, method, at);
        let server_start = at + self.latency(150_000);
        let server = self.span(
            t,
            Some(client),
            callee,
            SpanKind::Server,
            &format!("{method} {route}"),
            server_start,
        );
        let server_end = server_start + self.latency(base_ns);
        let client_end = server_end + self.latency(150_000);
        let status = if failed { 503 } else { 200 };
        for (index, end) in [(client, client_end), (server, server_end)] {
            let span = &mut t.spans[index];
            span.end_ns = end;
            http(span, method, route);
            span.attributes.insert("url.path", path);
            span.attributes
                .insert("http.response.status_code", status as i64);
            if failed {
                span.status.code = StatusCode::Error;
                span.status.message = "503 Service Unavailable".into();
                span.attributes.insert("error.type", "503");
            }
        }
        let span = &mut t.spans[client];
        span.attributes.insert("peer.service", callee_name);
        span.attributes
            .insert("server.address", format!("{callee_name}-{}", callee.1 + 1));
        span.attributes
            .insert("server.port", 7000 + callee.0 as i64);
        if resend > 0 {
            span.attributes
                .insert("http.request.resend_count", i64::from(resend));
        }
        client_end
    }

    /// A new span of `t` (its end is set by the caller); returns its index.
    fn span(
        &mut self,
        t: &mut Trace,
        parent: Option<usize>,
        (service, node): (usize, usize),
        kind: SpanKind,
        name: &str,
        start: u64,
    ) -> usize {
        let span_id = SpanId(self.rng.random::<u64>().max(1).to_be_bytes());
        let mut span = Span::new(t.id, span_id, name);
        span.parent_span_id = parent.map(|p| t.spans[p].span_id);
        span.kind = kind;
        span.flags = 1;
        span.start_ns = start;
        span.end_ns = start;
        span.resource = Arc::clone(&self.resources[service * 3 + node]);
        span.scope = Arc::clone(&self.scope);
        span.attributes
            .insert("correlation.id", t.correlation.clone());
        t.spans.push(span);
        t.spans.len() - 1
    }

    /// A latency around `base_ns` (half to one and a half times it), with a tail: one
    /// in fifty is 4 to 12 times slower.
    fn latency(&mut self, base_ns: u64) -> u64 {
        let ns = base_ns / 2 + self.rng.random_range(0..base_ns.max(1));
        if self.rng.random_bool(0.02) {
            ns * self.rng.random_range(4..12)
        } else {
            ns
        }
    }

    /// `n` spans in whole traces (the last trace may be cut short).
    pub fn spans(&mut self, n: usize) -> Vec<Span> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut trace = self.trace();
            trace.truncate(n - out.len());
            out.extend(trace);
        }
        out
    }
}

/// A trace being generated.
struct Trace {
    id: TraceId,
    correlation: String,
    spans: Vec<Span>,
}

fn http(span: &mut Span, method: &str, route: &str) {
    span.attributes.insert("http.request.method", method);
    span.attributes.insert("http.route", route);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::assemble;

    #[test]
    fn traces_are_well_formed_and_deterministic() {
        let a = Synth::new(7).spans(100);
        let b = Synth::new(7).spans(100);
        assert_eq!(a, b);
        let traces = assemble(a);
        assert_eq!(traces.len(), 13);
        for t in &traces {
            assert_eq!(t.structure.roots.len(), 1);
            assert!(
                t.structure.problems.is_empty(),
                "{:?}",
                t.structure.problems
            );
        }
    }

    #[test]
    fn incident_traffic_has_retries_and_an_outage() {
        let generate = || {
            let mut synth = Synth::incident(3);
            // Start 20 s before the outage, so that a test-sized capture covers both.
            synth.clock_ns = synth.origin_ns + OUTAGE_NS.start - 20_000_000_000;
            synth.spans(150_000)
        };
        let spans = generate();
        assert_eq!(spans, generate());
        let origin = Synth::incident(3).origin_ns;
        let resend = |s: &Span| s.attributes.get_i64("http.request.resend_count");
        let amplification = |outage: bool| {
            let attempts: Vec<&Span> = spans
                .iter()
                .filter(|s| {
                    s.kind == SpanKind::Client
                        && s.attributes.get_str("peer.service") == Some("payments")
                        && OUTAGE_NS.contains(&(s.start_ns - origin)) == outage
                })
                .collect();
            let first = attempts.iter().filter(|s| resend(s).is_none()).count();
            assert!(first > 1000, "{first}");
            attempts.len() as f64 / first as f64
        };
        // 1 % failures: ~1.01 attempts per charge; 35 % over up to four attempts:
        // 1 + .35 + .35² + .35³ ≈ 1.53.
        let (normal, outage) = (amplification(false), amplification(true));
        assert!((1.0..1.03).contains(&normal), "{normal}");
        assert!((1.45..1.6).contains(&outage), "{outage}");
        assert!(spans.iter().any(|s| resend(s) == Some(3)));
        let seconds = (spans[spans.len() - 1].start_ns - spans[0].start_ns) / 1_000_000_000;
        // About 1,500 spans per second.
        assert!((90..115).contains(&seconds), "{seconds} s");
        for t in &assemble(spans[..10_000].to_vec()) {
            assert_eq!(t.structure.roots.len(), 1);
            assert!(
                t.structure.problems.is_empty(),
                "{:?}",
                t.structure.problems
            );
        }
    }
}
