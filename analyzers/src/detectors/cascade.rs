//! Cascading failure, with the first domino ranked along the dependency graph.
//!
//! ```text
//!  RED per service (red.rs) ─► abnormal services with onsets ─┐
//!  calls (calls.rs) ─────────► dependency graph (caller → callee) ─┴─► first domino
//! ```
//!
//! **Symptom**: several services degrade one after another, each because something it
//! calls did.
//! **Rule**: a service is affected when its latency or error rate rises against its
//! baseline (the RED rule). Among affected services connected by calls, the first
//! domino is an affected service none of whose own dependencies is affected (the
//! deepest), the earliest onset breaking ties; a cascade needs it and at least one
//! affected caller above it. Candidates are ranked by (deepest, earliest onset,
//! number of affected services upstream): the root-cause ranking of service
//! dependency graphs in, e.g., MicroRCA (Wu et al., NOMS 2020) and Sage (Gan et al.,
//! ASPLOS 2021), reduced to what traces alone can show.

use std::collections::{BTreeMap, BTreeSet};

use crate::detector::{Context, Detector, onset};
use crate::detectors::red::judge;
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};

#[derive(Debug, Default)]
pub struct CascadingFailure;

/// An affected service.
#[derive(Debug, Clone)]
struct Affected {
    onset: usize,
    critical: bool,
    /// p99 during / before, for the summary.
    p99_ms: f64,
    baseline_p99_ms: f64,
    error_rate: f64,
    evidence: Vec<u32>,
}

impl Detector for CascadingFailure {
    fn name(&self) -> &'static str {
        "cascading-failure"
    }

    fn symptom(&self) -> &'static str {
        "services degrade one after another along their calls; names the first domino"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let base = cx.baseline_windows();
        let table = cx.table;
        let mut affected: BTreeMap<String, Affected> = BTreeMap::new();
        for series in &cx.red().services {
            let Subject::Service(name) = &series.subject else {
                continue;
            };
            let judgement = judge(cx, series);
            let bad: Vec<bool> = (0..judgement.slow.len())
                .map(|w| judgement.slow[w] || judgement.failing[w])
                .collect();
            let Some(start) = onset(&bad, base) else {
                continue;
            };
            let abnormal: Vec<usize> = (start..bad.len()).filter(|&w| bad[w]).collect();
            if abnormal.len() < 2 && start + 1 < bad.len() {
                continue;
            }
            let critical = abnormal
                .iter()
                .filter(|&&w| judgement.very_slow[w] || judgement.failing_hard[w])
                .count()
                >= 2;
            let calls: u64 = abnormal.iter().map(|&w| series.calls[w]).sum();
            let errors: u64 = abnormal.iter().map(|&w| series.errors[w]).sum();
            affected.insert(
                name.clone(),
                Affected {
                    onset: start,
                    critical,
                    p99_ms: abnormal
                        .iter()
                        .map(|&w| series.p99_ms[w])
                        .fold(f64::NAN, f64::max),
                    baseline_p99_ms: judgement.baseline.p99_ms.unwrap_or(f64::NAN),
                    error_rate: errors as f64 / calls.max(1) as f64,
                    evidence: abnormal
                        .iter()
                        .filter_map(|&w| series.slowest[w].or(series.failing[w]))
                        .collect(),
                },
            );
        }
        if affected.len() < 2 {
            return Vec::new();
        }
        // Dependencies between services (self-calls and unresolved addresses left out).
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (caller, callee) in cx.calls().edges() {
            if caller != callee {
                deps.entry(table.str(caller).to_owned())
                    .or_default()
                    .insert(table.str(callee).to_owned());
            }
        }
        let callers_of = |service: &str| -> BTreeSet<String> {
            // Every service that reaches `service` through calls.
            let mut found = BTreeSet::new();
            let mut frontier = vec![service.to_owned()];
            while let Some(current) = frontier.pop() {
                for (caller, callees) in &deps {
                    if callees.contains(&current) && found.insert(caller.clone()) {
                        frontier.push(caller.clone());
                    }
                }
            }
            found
        };
        // Candidates: affected, no affected dependency, at least one affected caller.
        let mut candidates: Vec<(String, Vec<String>)> = affected
            .keys()
            .filter(|name| {
                deps.get(*name)
                    .is_none_or(|callees| callees.iter().all(|c| !affected.contains_key(c)))
            })
            .map(|name| {
                let upstream: Vec<String> = callers_of(name)
                    .into_iter()
                    .filter(|c| affected.contains_key(c))
                    .collect();
                (name.clone(), upstream)
            })
            .filter(|(_, upstream)| !upstream.is_empty())
            .collect();
        candidates.sort_by(|a, b| {
            affected[&a.0]
                .onset
                .cmp(&affected[&b.0].onset)
                .then(b.1.len().cmp(&a.1.len()))
                .then(a.0.cmp(&b.0))
        });
        let Some((domino, upstream)) = candidates.into_iter().next() else {
            return Vec::new();
        };
        let first = &affected[&domino];
        let mut upstream = upstream;
        upstream.sort_by_key(|s| affected[s].onset);
        let seconds = |w: usize| (cx.window_start(w) - cx.start_ns) as f64 / 1e9;
        let followers: Vec<String> = upstream
            .iter()
            .map(|s| format!("{s} (+{:.0} s)", seconds(affected[s].onset)))
            .collect();
        let how = if first.p99_ms > first.baseline_p99_ms * 2.0 {
            format!(
                "p99 {:.0} ms against {:.0} ms",
                first.p99_ms, first.baseline_p99_ms
            )
        } else {
            format!("{:.0} % errors", first.error_rate * 100.0)
        };
        let severity = if first.critical || upstream.iter().any(|s| affected[s].critical) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let end = cx.windows() - 1;
        let mut evidence = first.evidence.clone();
        for s in &upstream {
            evidence.extend(affected[s].evidence.iter().take(1));
        }
        vec![Finding {
            kind: FindingKind::CascadingFailure,
            severity,
            subject: Subject::Service(domino.clone()),
            window: Window {
                start_ns: cx.window_start(first.onset),
                end_ns: cx.window_start(end) + cx.window_ns,
            },
            onset_ns: Some(cx.window_start(first.onset)),
            summary: format!(
                "{domino} degraded first (+{:.0} s, {how}), and its callers followed: {}.",
                seconds(first.onset),
                followers.join(", ")
            ),
            figures: vec![
                Figure::new("affected_services", (upstream.len() + 1) as f64, ""),
                Figure::new("first_p99", first.p99_ms, "ms"),
                Figure::new("first_baseline_p99", first.baseline_p99_ms, "ms"),
                Figure::new("first_error_rate", first.error_rate, "ratio"),
            ],
            evidence: cx.evidence(evidence),
            detector: "cascading-failure",
        }]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{KeyValue, Resource, Span, SpanId, SpanKind, TraceId};

    use super::*;
    use crate::config::Thresholds;
    use crate::table::from_spans;

    /// gateway → worker → payments, one request every 100 ms for 30 s; from 10 s on,
    /// `slow` takes `extra_ms` longer (and so does everything above it).
    fn chain(slow: &str, extra_ms: u64) -> Vec<Span> {
        let names = ["gateway", "worker", "payments"];
        let resources: Vec<Arc<Resource>> = names
            .iter()
            .map(|n| Arc::new(Resource::with_service(*n)))
            .collect();
        let depth_of_slow = names.iter().position(|n| *n == slow).unwrap_or(names.len());
        let mut spans = Vec::new();
        for i in 0..300u64 {
            let start = i * 100_000_000;
            let extra = if start >= 10_000_000_000 {
                extra_ms * 1_000_000
            } else {
                0
            };
            let mut trace = [0u8; 16];
            trace[..8].copy_from_slice(&(i + 1).to_be_bytes());
            let mut parent = None;
            for (depth, resource) in resources.iter().enumerate() {
                // Each level's own work is 2 ms; the slow level and those above it
                // carry the extra time.
                let own = 2_000_000 * (names.len() - depth) as u64;
                let duration = own + if depth <= depth_of_slow { extra } else { 0 };
                let mut server =
                    Span::new(TraceId(trace), SpanId([depth as u8 * 2 + 1; 8]), "handle");
                server.kind = SpanKind::Server;
                server.parent_span_id = parent;
                server.resource = resource.clone();
                server.start_ns = start + depth as u64 * 100_000;
                server.end_ns = server.start_ns + duration;
                spans.push(server.clone());
                if let Some(callee) = names.get(depth + 1) {
                    let mut client =
                        Span::new(TraceId(trace), SpanId([depth as u8 * 2 + 2; 8]), "call");
                    client.kind = SpanKind::Client;
                    client.parent_span_id = Some(server.span_id);
                    client.resource = resource.clone();
                    client
                        .attributes
                        .0
                        .push(KeyValue::new("server.address", *callee));
                    client.start_ns = server.start_ns + 50_000;
                    client.end_ns = server.end_ns - 50_000;
                    parent = Some(client.span_id);
                    spans.push(client);
                }
            }
        }
        spans
    }

    fn check(spans: &[Span]) -> Vec<Finding> {
        let table = from_spans(spans);
        let thresholds = Thresholds::production();
        let cx = Context::new(&table, &thresholds);
        CascadingFailure.check(&cx)
    }

    #[test]
    fn the_deepest_degraded_service_is_the_first_domino() {
        let found = check(&chain("payments", 400));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].subject, Subject::Service("payments".into()));
        assert!(found[0].summary.contains("worker"), "{}", found[0].summary);
        assert!(found[0].summary.contains("gateway"), "{}", found[0].summary);
    }

    #[test]
    fn a_slow_middle_service_is_the_domino_not_its_healthy_dependency() {
        let found = check(&chain("worker", 400));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].subject, Subject::Service("worker".into()));
    }

    #[test]
    fn no_cascade_without_degradation() {
        assert!(check(&chain("payments", 0)).is_empty());
    }
}
