//! Reading `traceparent` and `tracestate` together from a request's headers, with the
//! rules that tie them (W3C Trace Context Level 2 §3.3 and §4.1 Processing Model):
//!
//! ```text
//!  headers ──► traceparent: none ─────────────► start a trace, drop tracestate (§4.1.1)
//!              traceparent: invalid or twice ─► start a trace, drop tracestate (§4.1.2)
//!              traceparent: valid ──► tracestate valid ───► continue with both
//!                                     tracestate invalid ─► continue, tracestate dropped
//! ```

use super::traceparent::{TRACEPARENT_HEADER, TraceParent, TraceParentError};
use super::tracestate::{TRACESTATE_HEADER, TraceState, TraceStateError};

/// A traceparent with its tracestate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: TraceParent,
    pub tracestate: TraceState,
}

impl TraceContext {
    /// A new trace with an empty tracestate.
    pub fn new_trace(sampled: bool) -> Self {
        TraceContext {
            traceparent: TraceParent::new_trace(sampled),
            tracestate: TraceState::new(),
        }
    }
}

/// What came in on a request, and why anything was thrown away.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncomingContext {
    /// The incoming context if its traceparent was present and valid.
    pub context: Option<TraceContext>,
    /// Why a traceparent that was present was not used.
    pub traceparent_error: Option<TraceParentError>,
    /// Why a tracestate that came with a valid traceparent was dropped.
    pub tracestate_error: Option<TraceStateError>,
}

impl IncomingContext {
    /// The context for outgoing requests: the incoming trace with a new random parent id
    /// (§3.4 "Update parent-id") and the tracestate unchanged, or, if there is none, a new
    /// trace with an empty tracestate (§4.1.1 step 2; §3.4 "Restart trace": vendors
    /// SHOULD clean up tracestate).
    pub fn next_hop(&self, sampled_if_new: bool) -> TraceContext {
        match &self.context {
            Some(incoming) => TraceContext {
                traceparent: incoming.traceparent.child(),
                tracestate: incoming.tracestate.clone(),
            },
            None => TraceContext::new_trace(sampled_if_new),
        }
    }
}

/// Reads the trace context from (name, value) header pairs; names in any case
/// (§3.2.1 and §3.3.1: "ASCII case-insensitive").
pub fn extract_trace_context<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> IncomingContext {
    let mut traceparents = Vec::new();
    let mut tracestates = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(TRACEPARENT_HEADER) {
            traceparents.push(value);
        } else if name.eq_ignore_ascii_case(TRACESTATE_HEADER) {
            tracestates.push(value);
        }
    }
    let traceparent = match TraceParent::parse_headers(traceparents) {
        Ok(Some(traceparent)) => traceparent,
        // §3.3: "If the vendor failed to parse traceparent, it MUST NOT attempt to parse
        // tracestate"; §4.1.1 step 3: a tracestate without traceparent "MUST be discarded".
        Ok(None) => return IncomingContext::default(),
        Err(error) => {
            return IncomingContext {
                traceparent_error: Some(error),
                ..Default::default()
            };
        }
    };
    // §3.3: "failure to parse tracestate MUST NOT affect the parsing of traceparent".
    let (tracestate, tracestate_error) = match TraceState::parse_headers(tracestates) {
        Ok(tracestate) => (tracestate, None),
        Err(error) => (TraceState::new(), Some(error)),
    };
    IncomingContext {
        context: Some(TraceContext {
            traceparent,
            tracestate,
        }),
        traceparent_error: None,
        tracestate_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::TraceId;

    const VALID: &str = "00-12345678901234567890123456789012-1234567890123456-00";

    fn trace_id_of(incoming: &IncomingContext) -> Option<String> {
        incoming
            .context
            .as_ref()
            .map(|c| c.traceparent.trace_id().to_string())
    }

    #[test]
    fn both_headers_are_read() {
        let incoming =
            extract_trace_context([("traceparent", VALID), ("tracestate", "foo=1,bar=2")]);
        let context = incoming.context.unwrap();
        assert_eq!(
            context.traceparent.trace_id().to_string(),
            "12345678901234567890123456789012"
        );
        assert_eq!(context.tracestate.to_string(), "foo=1,bar=2");
    }

    #[test]
    fn header_names_are_case_insensitive() {
        for (tp, ts) in [
            ("TraceParent", "TraceState"),
            ("TrAcEpArEnT", "TrAcEsTaTe"),
            ("TRACEPARENT", "TRACESTATE"),
        ] {
            let incoming = extract_trace_context([(tp, VALID), (ts, "foo=1")]);
            let context = incoming.context.unwrap();
            assert_eq!(context.tracestate.get("foo"), Some("1"), "{tp} {ts}");
        }
    }

    #[test]
    fn misspelled_header_names_are_not_read() {
        // test_traceparent_header_name, test_tracestate_header_name
        assert_eq!(
            extract_trace_context([("trace-parent", VALID)]),
            IncomingContext::default()
        );
        assert_eq!(
            extract_trace_context([("trace.parent", VALID)]),
            IncomingContext::default()
        );
        let incoming = extract_trace_context([("traceparent", VALID), ("trace-state", "foo=1")]);
        assert!(incoming.context.unwrap().tracestate.is_empty());
    }

    #[test]
    fn tracestate_without_traceparent_is_discarded() {
        let incoming = extract_trace_context([("tracestate", "foo=1")]);
        assert_eq!(incoming, IncomingContext::default());
        let next = incoming.next_hop(false);
        assert!(next.tracestate.is_empty());
        assert!(next.traceparent.random_trace_id());
    }

    #[test]
    fn tracestate_is_not_parsed_when_traceparent_is_invalid() {
        let incoming = extract_trace_context([
            (
                "traceparent",
                "00-00000000000000000000000000000000-1234567890123456-01",
            ),
            ("tracestate", "foo=1"),
        ]);
        assert_eq!(incoming.context, None);
        assert_eq!(
            incoming.traceparent_error,
            Some(TraceParentError::ZeroTraceId)
        );
        assert_eq!(incoming.tracestate_error, None);
    }

    #[test]
    fn duplicated_traceparent_restarts_the_trace() {
        let incoming = extract_trace_context([
            (
                "traceparent",
                "00-12345678901234567890123456789011-1234567890123456-01",
            ),
            (
                "traceparent",
                "00-12345678901234567890123456789012-1234567890123456-01",
            ),
        ]);
        assert_eq!(
            incoming.traceparent_error,
            Some(TraceParentError::Duplicated { count: 2 })
        );
        let next = incoming.next_hop(true);
        assert_ne!(
            next.traceparent.trace_id(),
            TraceId::from_hex("12345678901234567890123456789011").unwrap()
        );
        assert_ne!(
            next.traceparent.trace_id(),
            TraceId::from_hex("12345678901234567890123456789012").unwrap()
        );
        assert!(next.traceparent.sampled());
    }

    #[test]
    fn invalid_tracestate_does_not_affect_traceparent() {
        let incoming =
            extract_trace_context([("traceparent", VALID), ("tracestate", "foo=1,FOO=2")]);
        assert_eq!(
            trace_id_of(&incoming).as_deref(),
            Some("12345678901234567890123456789012")
        );
        assert!(incoming.context.as_ref().unwrap().tracestate.is_empty());
        assert!(matches!(
            incoming.tracestate_error,
            Some(TraceStateError::InvalidMember { index: 1, .. })
        ));
    }

    #[test]
    fn tracestate_lines_are_combined_in_order() {
        let incoming = extract_trace_context([
            ("tracestate", "foo=1,bar=2"),
            ("traceparent", VALID),
            ("TraceState", "rojo=1,congo=2"),
            ("tracestate", "baz=3"),
        ]);
        assert_eq!(
            incoming.context.unwrap().tracestate.to_string(),
            "foo=1,bar=2,rojo=1,congo=2,baz=3"
        );
    }

    #[test]
    fn next_hop_continues_the_trace_with_a_new_parent_and_the_same_tracestate() {
        let incoming =
            extract_trace_context([("traceparent", VALID), ("tracestate", "congo=t61rcWkgMzE")]);
        let next = incoming.next_hop(true);
        assert_eq!(
            next.traceparent.trace_id().to_string(),
            "12345678901234567890123456789012"
        );
        assert_ne!(next.traceparent.parent_id().to_string(), "1234567890123456");
        // The incoming sampling decision (00) is kept; `sampled_if_new` is only for new traces.
        assert!(!next.traceparent.sampled());
        assert_eq!(next.tracestate.to_string(), "congo=t61rcWkgMzE");
    }

    #[test]
    fn no_headers_start_a_new_trace() {
        let incoming = extract_trace_context([]);
        assert_eq!(incoming, IncomingContext::default());
        let a = incoming.next_hop(false);
        let b = incoming.next_hop(false);
        assert_ne!(a.traceparent.parent_id(), b.traceparent.parent_id());
        assert!(!a.traceparent.sampled());
    }
}
