//! Trace context and correlation id propagation, as a tower layer (the shape of
//! linkerd2-proxy's `trace-context` service).
//!
//! ```text
//!  request ─► read traceparent, tracestate, baggage, x-correlation-id / x-request-id
//!          ─► this hop: a fresh span id, in the incoming trace or (if none is usable) a new one
//!          ─► rewrite the headers for the next hop, record a `HopContext` in the extensions
//!          ─► inner service (the span layer reads the HopContext; the proxy forwards)
//! ```
//!
//! The rules are W3C Trace Context Level 2 and Baggage, implemented in
//! `faultline_model::w3c`; this layer only applies them to HTTP requests:
//! - the forwarded `traceparent` carries this hop's span id as its parent-id, so the next
//!   service's span is a child of the agent's span;
//! - an absent, invalid or duplicated `traceparent` restarts the trace here and drops
//!   `tracestate`; a valid one keeps its trace id, sampled flag and `tracestate`;
//! - the correlation id (from `x-correlation-id`, else `x-request-id`, else baggage, else
//!   generated) is written to `x-correlation-id` and to the `correlation.id` baggage
//!   member, keeping the other members.

use std::task::{Context, Poll};

use faultline_model::w3c::{
    BAGGAGE_HEADER, Baggage, CORRELATION_HEADER, CorrelationId, CorrelationSource,
    TRACEPARENT_HEADER, TRACESTATE_HEADER, extract_trace_context, resolve_correlation,
};
use faultline_model::{SpanId, TraceId};
use http::{HeaderMap, HeaderValue, Request};
use tower::{Layer, Service};

/// A header value that is not visible ASCII stands in as this, which no W3C grammar
/// accepts: such a header is treated as present but invalid, never as absent.
const UNREADABLE: &str = "\u{7f}";

/// What propagation decided for one request. The span layer reads it from the request's
/// extensions to record the hop's span; it never carries fault-injection facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopContext {
    pub trace_id: TraceId,
    /// This hop's span: the parent-id written into the forwarded `traceparent`.
    pub span_id: SpanId,
    /// The caller's span, when the incoming `traceparent` was used.
    pub parent_span_id: Option<SpanId>,
    pub sampled: bool,
    /// The `tracestate` forwarded (empty when there is none).
    pub tracestate: String,
    pub correlation_id: CorrelationId,
    pub correlation_source: CorrelationSource,
    /// Why an incoming `traceparent` was not used, when the trace restarted here.
    pub restarted: Option<String>,
}

/// Adds [`Propagation`] to a service.
#[derive(Debug, Clone, Copy)]
pub struct PropagationLayer {
    sampled_if_new: bool,
}

impl PropagationLayer {
    /// `sampled_if_new`: the sampled flag of traces that start at this hop.
    pub fn new(sampled_if_new: bool) -> Self {
        PropagationLayer { sampled_if_new }
    }
}

impl<S> Layer<S> for PropagationLayer {
    type Service = Propagation<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Propagation {
            inner,
            sampled_if_new: self.sampled_if_new,
        }
    }
}

/// Rewrites the propagation headers of each request; see the module docs.
#[derive(Debug, Clone)]
pub struct Propagation<S> {
    inner: S,
    sampled_if_new: bool,
}

impl<S, B> Service<Request<B>> for Propagation<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let hop = propagate(request.headers_mut(), self.sampled_if_new);
        request.extensions_mut().insert(hop);
        self.inner.call(request)
    }
}

/// Applies propagation to `headers` in place and returns what it decided. Pure apart
/// from the random ids; exposed for callers that are not tower services.
pub fn propagate(headers: &mut HeaderMap, sampled_if_new: bool) -> HopContext {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or(UNREADABLE)))
        .collect();
    let incoming = extract_trace_context(pairs.iter().copied());
    let correlation = resolve_correlation(pairs.iter().copied());
    let baggage_lines: Vec<&str> = pairs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(BAGGAGE_HEADER))
        .map(|(_, value)| *value)
        .collect();
    // Lenient: a malformed member drops only itself, not the rest of the caller's baggage.
    let (mut baggage, _) = Baggage::parse_headers_lenient(baggage_lines);
    // A full baggage (64 members or 8 KiB) keeps what it has; the header still carries the id.
    let _ = correlation.id.set_in_baggage(&mut baggage);

    let next = incoming.next_hop(sampled_if_new);
    let parent_span_id = incoming.context.as_ref().map(|c| c.traceparent.parent_id());
    let tracestate = next.tracestate.to_string();
    set(headers, TRACEPARENT_HEADER, &next.traceparent.to_string());
    if tracestate.is_empty() {
        headers.remove(TRACESTATE_HEADER);
    } else {
        set(headers, TRACESTATE_HEADER, &tracestate);
    }
    let baggage_text = baggage.to_string();
    if baggage_text.is_empty() {
        headers.remove(BAGGAGE_HEADER);
    } else {
        set(headers, BAGGAGE_HEADER, &baggage_text);
    }
    set(headers, CORRELATION_HEADER, correlation.id.as_str());

    HopContext {
        trace_id: next.traceparent.trace_id(),
        span_id: next.traceparent.parent_id(),
        parent_span_id,
        sampled: next.traceparent.sampled(),
        tracestate,
        correlation_id: correlation.id,
        correlation_source: correlation.source,
        restarted: incoming.traceparent_error.map(|e| e.to_string()),
    }
}

/// Replaces every value of `name` with `value`. The values written here come from the
/// W3C formatters and validated correlation ids, all visible ASCII; anything else would
/// be a bug, and the header is then left out rather than sent malformed.
fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(name, value);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests;
