//! W3C Trace Context (Level 2), Baggage, and correlation ids: the headers that tie the
//! hops of one request together.
//!
//! ```text
//!   client ──► agent (proxy layer) ──► node ──► node ──► …
//!               │ extract_trace_context: traceparent + tracestate in
//!               │ resolve_correlation: x-correlation-id / x-request-id / baggage in
//!               │ mint a span id, rewrite traceparent (next_hop), put correlation.id in baggage
//!               ▼
//!            spans (trace id, parent id, attribute correlation.id) ──► captures ──► analyzers
//! ```
//!
//! The agent and the demo nodes propagate these headers; analyzers and the TUI read the
//! result from spans: trace and parent ids to build the tree, the `correlation.id`
//! attribute ([`SPAN_ATTRIBUTE`]) to group a logical request across restarted traces,
//! retries and dead-letter queues.
//!
//! Everything here is pure: `&str` in, values out, no HTTP types (header pairs are
//! `(name, value)` string slices), so the agent's tower layers and the tests share it.
//!
//! Section numbers (§) refer to https://www.w3.org/TR/trace-context-2/ (Level 2) and are
//! given with the section's title; baggage cites https://www.w3.org/TR/baggage/ by title.

mod baggage;
mod context;
mod correlation;
mod traceparent;
mod tracestate;

pub use baggage::{
    BAGGAGE_HEADER, Baggage, BaggageError, BaggageMember, BaggageMemberError, BaggagePart,
    BaggageProperty,
};
pub use context::{IncomingContext, TraceContext, extract_trace_context};
pub use correlation::{
    BAGGAGE_KEY, CORRELATION_HEADER, Correlation, CorrelationId, CorrelationIdError,
    CorrelationSource, REQUEST_ID_HEADER, RejectedCorrelationId, SPAN_ATTRIBUTE,
    resolve_correlation,
};
pub use traceparent::{
    TRACEPARENT_HEADER, TraceFlags, TraceParent, TraceParentError, TraceParentField,
};
pub use tracestate::{TRACESTATE_HEADER, TraceState, TraceStateError, TraceStateMemberError};

/// Strips optional whitespace (RFC 9110 §5.6.3 `OWS`: spaces and horizontal tabs).
fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// Fuzz target: any bytes as a `traceparent` value. What parses must format as a
/// version-00 header that parses to the same ids and flags. Panics only when that fails.
#[doc(hidden)]
pub fn fuzz_traceparent(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = TraceParent::parse(&text) else {
        return;
    };
    let formatted = parsed.to_string();
    assert_eq!(formatted.len(), 55, "formatted {formatted:?}");
    let reparsed = TraceParent::parse(&formatted);
    // Formatting downgrades the version to 00 (§3.2.4); everything else survives.
    let expected = TraceParent::new(parsed.trace_id(), parsed.parent_id(), parsed.flags());
    assert_eq!(
        reparsed, expected,
        "input {text:?}, formatted {formatted:?}"
    );
    assert_eq!(reparsed.map(|tp| tp.to_string()), Ok(formatted));
}

/// Fuzz target: any bytes as a `tracestate` value (also split into two header lines).
/// What parses must format to a header that parses to the same list.
#[doc(hidden)]
pub fn fuzz_tracestate(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(parsed) = TraceState::parse(&text) {
        let formatted = parsed.to_string();
        assert!(parsed.len() <= TraceState::MAX_MEMBERS);
        assert_eq!(formatted.len(), parsed.header_len());
        assert_eq!(
            TraceState::parse(&formatted).as_ref(),
            Ok(&parsed),
            "input {text:?}"
        );
    }
    // Header lines are joined with ',': splitting anywhere at a comma changes nothing.
    if let Some((first, second)) = text.split_once(',') {
        assert_eq!(
            TraceState::parse_headers([first, second]),
            TraceState::parse(&text)
        );
    }
}

/// Fuzz target: any bytes as a `baggage` value, strict and lenient. What parses must
/// format, within the limits, to a header that parses to the same members.
#[doc(hidden)]
pub fn fuzz_baggage(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (lenient, _) = Baggage::parse_lenient(&text);
    for parsed in [Baggage::parse(&text).ok(), Some(lenient)]
        .into_iter()
        .flatten()
    {
        let formatted = parsed.to_string();
        assert!(parsed.len() <= Baggage::MAX_MEMBERS);
        assert!(
            formatted.len() <= Baggage::MAX_BYTES,
            "{} bytes",
            formatted.len()
        );
        assert_eq!(formatted.len(), parsed.header_len());
        assert_eq!(
            Baggage::parse(&formatted).as_ref(),
            Ok(&parsed),
            "input {text:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic sweep through the fuzz hooks (the seed corpus is run by the
    /// fuzz crate's test): mutated versions of valid headers must never break an invariant.
    #[test]
    fn fuzz_hooks_hold_their_invariants_on_mutated_headers() {
        let seeds: [&[u8]; 6] = [
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff-x",
            b"rojo=00f067aa0ba902b7, congo=t61rcWkgMzE,,foo@bar= x",
            b"userId=Am%C3%A9lie;p;q=%20, serverNode = DF%2028,k=100%",
            b"a=1,b=%FF,c",
            b"",
        ];
        let replacements = [
            b'-', b',', b'=', b';', b'%', b' ', b'\t', b'A', b'0', b'f', 0xC3, b'@',
        ];
        for seed in seeds {
            for at in 0..seed.len().max(1) {
                for &byte in &replacements {
                    let mut input = seed.to_vec();
                    match input.get_mut(at) {
                        Some(slot) => *slot = byte,
                        None => input.push(byte),
                    }
                    fuzz_traceparent(&input);
                    fuzz_tracestate(&input);
                    fuzz_baggage(&input);
                }
            }
        }
    }

    #[test]
    fn fuzz_hooks_accept_garbage_without_panicking() {
        for input in [
            &b"\xff\xfe\x00"[..],
            b"-",
            b"00-",
            b",,,,",
            b"=;=;=",
            b"%%%",
            b"ff-",
        ] {
            fuzz_traceparent(input);
            fuzz_tracestate(input);
            fuzz_baggage(input);
        }
    }
}
