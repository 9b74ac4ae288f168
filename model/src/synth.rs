//! Synthetic traces for benchmarks and tests: deterministic (seeded), shaped like the
//! demo cluster's traffic — a gateway calling a worker calling payments, with the
//! semantic-convention attributes real instrumentation writes. Never used as a capture
//! of anything real.

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
    pub spans_per_trace: usize,
}

const SERVICES: [&str; 3] = ["gateway", "worker", "payments"];
const ROUTES: [&str; 4] = ["/orders", "/orders/{id}", "/jobs", "/charge"];

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
        Synth {
            rng: StdRng::seed_from_u64(seed),
            resources,
            scope,
            clock_ns: 1_763_700_000_000_000_000,
            spans_per_trace: 8,
        }
    }

    /// The spans of one trace: a server root and a chain of client/server hops below it.
    pub fn trace(&mut self) -> Vec<Span> {
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
}
