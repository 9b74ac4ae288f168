//! Retry amplification per call edge: attempts ÷ logical calls, and the hop where it
//! starts.
//!
//! ```text
//!  calls (calls.rs) ─► per edge and window: attempts, logical calls ─► amplification
//!                                                                      └─► RetryAmplification
//! ```
//!
//! **Symptom**: a caller sends its dependency several attempts per request, so a slow
//! or failing dependency receives more load exactly when it can least take it.
//! **Rule**: an attempt is a call on the edge; a logical call is an attempt with
//! `http.request.resend_count` absent or 0 (OpenTelemetry HTTP semantic conventions).
//! Where no span of the edge carries `resend_count`, sibling calls from one parent
//! span to the same address with the same name count as attempts of one logical call.
//! Amplification at or above `retry_warning` (1.5) in two windows is a warning, at or
//! above `retry_critical` (2.5) critical, and the edge with the highest amplification
//! whose caller is not itself receiving amplified traffic is where the storm starts
//! (AWS Builders' Library, "Timeouts, retries, and backoff with jitter": retries at
//! every layer multiply).

use std::collections::{HashMap, HashSet};

use crate::detector::{Context, Detector, onset};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};

#[derive(Debug, Default)]
pub struct RetryAmplification;

/// Attempts and logical calls per window of one edge.
#[derive(Debug, Clone)]
struct EdgeRetries {
    caller: u32,
    callee: u32,
    attempts: Vec<u64>,
    logical: Vec<u64>,
    /// Rows of retried attempts (evidence).
    retried: Vec<u32>,
}

impl Detector for RetryAmplification {
    fn name(&self) -> &'static str {
        "retry-amplification"
    }

    fn symptom(&self) -> &'static str {
        "callers send several attempts per request to a dependency (retry storm)"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let edges = edge_retries(cx);
        let t = cx.thresholds;
        let base = cx.baseline_windows();
        let mut findings = Vec::new();
        // Callees receiving amplified traffic, to find where a storm starts.
        let amplified_callees: HashSet<u32> = edges
            .iter()
            .filter(|e| amplification(&e.attempts, &e.logical) >= t.retry_warning)
            .map(|e| e.callee)
            .collect();
        for edge in &edges {
            let windows = edge.attempts.len();
            let per_window: Vec<f64> = (0..windows)
                .map(|w| ratio(edge.attempts[w], edge.logical[w]))
                .collect();
            let judged: Vec<bool> = (0..windows)
                .map(|w| edge.logical[w] >= t.min_calls.min(3))
                .collect();
            // Against the edge's own baseline: an edge that always sends 1.6 attempts
            // per call is a fact of its design (noted below), not an incident.
            let before = amplification(
                &edge.attempts[..base.min(windows)],
                &edge.logical[..base.min(windows)],
            );
            let level = t.retry_warning.max(before * 1.5);
            let warn: Vec<bool> = (0..windows)
                .map(|w| judged[w] && per_window[w] >= level)
                .collect();
            let total = amplification(&edge.attempts, &edge.logical);
            let subject = Subject::Edge(
                cx.table.str(edge.caller).to_owned(),
                cx.table.str(edge.callee).to_owned(),
            );
            let starts_here = !amplified_callees.contains(&edge.caller);
            let where_ = if starts_here {
                "this is where the amplification starts"
            } else {
                "its caller is itself receiving retried traffic, so retries multiply here"
            };
            let logical: u64 = edge.logical.iter().sum();
            let attempts: u64 = edge.attempts.iter().sum();
            let Some(start) = onset(&warn, 0) else {
                // Retries too few to judge by window: say so quietly, since a retried
                // call is worth knowing about when reading one trace.
                if attempts > logical && (total >= t.retry_warning || logical < t.min_calls) {
                    findings.push(Finding {
                        kind: FindingKind::RetryAmplification,
                        severity: Severity::Info,
                        subject: subject.clone(),
                        window: Window {
                            start_ns: cx.start_ns,
                            end_ns: cx.end_ns,
                        },
                        onset_ns: None,
                        summary: format!(
                            "Calls from {} to {} are retried: {attempts} attempts for {logical} calls ({total:.2}×), steadily.",
                            cx.table.str(edge.caller),
                            cx.table.str(edge.callee)
                        ),
                        figures: vec![
                            Figure::new("amplification", total, "x"),
                            Figure::new("attempts", attempts as f64, ""),
                            Figure::new("logical_calls", logical as f64, ""),
                        ],
                        evidence: cx.evidence(edge.retried.iter().copied()),
                        detector: "retry-amplification",
                    });
                }
                continue;
            };
            let abnormal: Vec<usize> = (start..windows).filter(|&w| warn[w]).collect();
            let end = abnormal.last().copied().unwrap_or(start);
            let fault_attempts: u64 = abnormal.iter().map(|&w| edge.attempts[w]).sum();
            let fault_logical: u64 = abnormal.iter().map(|&w| edge.logical[w]).sum();
            let during = ratio(fault_attempts, fault_logical);
            let critical = abnormal
                .iter()
                .filter(|&&w| per_window[w] >= t.retry_critical)
                .count();
            let severity = if critical >= 2
                || (critical >= 1 && abnormal.len() == 1 && start + 1 >= windows)
            {
                Severity::Critical
            } else if abnormal.len() >= 2 || start + 1 >= windows {
                Severity::Warning
            } else {
                Severity::Info
            };
            let seconds = (abnormal.len() as f64 * cx.window_ns as f64 / 1e9).max(1e-9);
            let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
            findings.push(Finding {
                kind: FindingKind::RetryAmplification,
                severity,
                subject,
                window: Window {
                    start_ns: cx.window_start(start),
                    end_ns: cx.window_start(end) + cx.window_ns,
                },
                onset_ns: Some(cx.window_start(start)),
                summary: format!(
                    "{} sends {during:.1} attempts per call to {} since +{onset_s:.0} s ({:.0} attempts/s; {before:.2}× before); {where_}.",
                    cx.table.str(edge.caller),
                    cx.table.str(edge.callee),
                    fault_attempts as f64 / seconds,
                ),
                figures: vec![
                    Figure::new("amplification", during, "x"),
                    Figure::new("baseline_amplification", before, "x"),
                    Figure::new("attempt_rate", fault_attempts as f64 / seconds, "/s"),
                    Figure::new("starts_here", if starts_here { 1.0 } else { 0.0 }, "bool"),
                ],
                evidence: cx.evidence(edge.retried.iter().copied()),
                detector: "retry-amplification",
            });
        }
        findings
    }
}

fn ratio(attempts: u64, logical: u64) -> f64 {
    if logical == 0 {
        if attempts == 0 { 1.0 } else { attempts as f64 }
    } else {
        attempts as f64 / logical as f64
    }
}

fn amplification(attempts: &[u64], logical: &[u64]) -> f64 {
    ratio(attempts.iter().sum(), logical.iter().sum())
}

/// Attempts and logical calls per edge and window.
fn edge_retries(cx: &Context<'_>) -> Vec<EdgeRetries> {
    let table = cx.table;
    let calls = cx.calls();
    let index = cx.index();
    let windows = cx.windows();
    // Edges where some attempt says it is a resend.
    let mut counted_by_resend: HashSet<(u32, u32)> = HashSet::new();
    for i in 0..calls.len() {
        if table.resend[calls.row[i] as usize] > 0 {
            counted_by_resend.insert((calls.caller[i], calls.callee[i]));
        }
    }
    let mut edges: HashMap<(u32, u32), EdgeRetries> = HashMap::new();
    // (parent row, name, peer, path) groups already counted, for edges without resend
    // counts: one parent calling two paths of one peer makes two calls, not a retry.
    let mut seen_groups: HashSet<(u32, u32, u32, u32)> = HashSet::new();
    let path = table.attribute("url.path");
    let route = table.attribute("http.route");
    for i in 0..calls.len() {
        let (caller, callee) = (calls.caller[i], calls.callee[i]);
        if caller == callee {
            continue;
        }
        let row = calls.row[i];
        let r = row as usize;
        let w = cx.window_of(table.start_ns[r]);
        let edge = edges
            .entry((caller, callee))
            .or_insert_with(|| EdgeRetries {
                caller,
                callee,
                attempts: vec![0; windows],
                logical: vec![0; windows],
                retried: Vec::new(),
            });
        edge.attempts[w] += 1;
        let first = if counted_by_resend.contains(&(caller, callee)) {
            table.resend[r] == 0
        } else {
            match index.parent(row) {
                Some(parent) => {
                    let target = path
                        .get(row)
                        .or_else(|| route.get(row))
                        .and_then(|cell| cell.as_str())
                        .unwrap_or(0);
                    seen_groups.insert((parent, table.name[r], table.peer[r], target))
                }
                None => true,
            }
        };
        if first {
            edge.logical[w] += 1;
        } else if edge.retried.len() < 64 {
            edge.retried.push(row);
        }
    }
    let mut edges: Vec<EdgeRetries> = edges.into_values().collect();
    edges.sort_by_key(|e| (e.caller, e.callee));
    edges
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{KeyValue, Resource, Span, SpanId, SpanKind, TraceId};

    use super::*;
    use crate::config::Thresholds;
    use crate::table::from_spans;

    fn span(
        trace: u8,
        id: u8,
        parent: Option<u8>,
        service: &Arc<Resource>,
        kind: SpanKind,
        start_ms: u64,
    ) -> Span {
        let mut span = Span::new(TraceId([trace; 16]), SpanId([id; 8]), "POST /pay");
        span.parent_span_id = parent.map(|p| SpanId([p; 8]));
        span.kind = kind;
        span.resource = service.clone();
        span.start_ns = start_ms * 1_000_000;
        span.end_ns = span.start_ns + 5_000_000;
        span
    }

    /// Traces where `checkout` calls `payment` `attempts` times per request.
    fn traces(attempts: u8, requests: u8, from_ms: u64) -> Vec<Span> {
        let checkout = Arc::new(Resource::with_service("checkout"));
        let payment = Arc::new(Resource::with_service("payment"));
        let mut spans = Vec::new();
        for t in 0..requests {
            let trace = t.wrapping_add(from_ms as u8);
            let start = from_ms + u64::from(t) * 200;
            spans.push(span(trace, 1, None, &checkout, SpanKind::Server, start));
            for a in 0..attempts {
                let mut client = span(
                    trace,
                    10 + a,
                    Some(1),
                    &checkout,
                    SpanKind::Client,
                    start + 1,
                );
                client
                    .attributes
                    .0
                    .push(KeyValue::new("server.address", "payment"));
                client
                    .attributes
                    .0
                    .push(KeyValue::new("http.request.resend_count", i64::from(a)));
                spans.push(client);
                spans.push(span(
                    trace,
                    50 + a,
                    Some(10 + a),
                    &payment,
                    SpanKind::Server,
                    start + 2,
                ));
            }
        }
        spans
    }

    fn findings(spans: &[Span]) -> Vec<Finding> {
        let table = from_spans(spans);
        let thresholds = Thresholds::demo();
        let cx = Context::new(&table, &thresholds);
        RetryAmplification.check(&cx)
    }

    #[test]
    fn a_storm_after_a_calm_baseline_is_critical_on_its_edge() {
        let mut spans = traces(1, 50, 0);
        spans.extend(traces(4, 50, 10_000));
        let found = findings(&spans);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(
            found[0].subject,
            Subject::Edge("checkout".into(), "payment".into())
        );
        assert!((found[0].figure("amplification").unwrap_or(0.0) - 4.0).abs() < 1e-9);
        // The onset is where the retries begin, not the capture's start.
        assert!(found[0].starts_ns() >= 10_000_000_000 - 1_000_000_000);
    }

    #[test]
    fn single_attempts_make_no_finding() {
        let spans = traces(1, 100, 0);
        assert!(findings(&spans).is_empty());
    }

    #[test]
    fn one_retried_call_is_mentioned_quietly() {
        let spans = traces(2, 1, 0);
        let found = findings(&spans);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, Severity::Info);
        assert!(
            found[0].summary.contains("2 attempts for 1 calls"),
            "{}",
            found[0].summary
        );
    }
}
