//! Circuit breakers that opened: a caller gave up on one of its dependencies.
//!
//! ```text
//!  worker@node-1  closed ──open── (cool-down) ──half_open──closed
//!  worker@node-2  closed ────open──── half_open──open ── … ──► BreakerOpen worker→payments
//! ```
//!
//! Rule: every change of a breaker to `open` is an opening, read from the
//! `circuit_breaker.state_change` span events (docs/conventions.md) of the caller's
//! spans; a caller whose spans only carry the state their call met
//! (`circuit_breaker.state`) opens where a call meets `open` after one that did not.
//! A breaker stays open until its next state change, or until a call meets it in
//! another state (the `open` → `half_open` change of an idle breaker has no event).
//! Openings are summed per caller service and breaker over the caller's instances,
//! since each instance keeps a breaker of its own.
//!
//! Where the rule comes from: the circuit-breaker pattern (Nygard, *Release It!*;
//! Fowler's "CircuitBreaker"), whose libraries (Hystrix, Resilience4j, Polly) publish
//! state transitions as the signal to alert on: an opening means the dependency failed
//! or was too slow for as long as the breaker tolerates, and that calls to it are being
//! refused.

use std::collections::HashMap;

use crate::detector::{Context, Detector};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::table::{Cell, SpanTable};

#[derive(Debug, Default)]
pub struct BreakerState;

impl Detector for BreakerState {
    fn name(&self) -> &'static str {
        "breaker"
    }

    fn symptom(&self) -> &'static str {
        "a circuit breaker opened: a caller is refusing calls to a dependency"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(words) = Words::find(cx.table) else {
            return Vec::new();
        };
        let mut breakers: HashMap<BreakerKey, Vec<Change>> = HashMap::new();
        collect_events(cx.table, &words, &mut breakers);
        collect_calls(cx.table, &mut breakers);
        let mut findings: Vec<Finding> = group_by_caller(breakers)
            .into_iter()
            .filter_map(|(edge, instances)| finding(cx, &words, edge, instances))
            .collect();
        findings.sort_by_key(|f| f.onset_ns);
        findings
    }
}

/// The interned strings the detector compares against.
struct Words {
    state_change: Option<u32>,
    name_key: Option<u32>,
    state_key: Option<u32>,
    open: u32,
}

impl Words {
    /// `None` when no span mentions an open breaker: nothing can have opened.
    fn find(table: &SpanTable) -> Option<Words> {
        let strings = &table.strings;
        Some(Words {
            state_change: strings.find("circuit_breaker.state_change"),
            name_key: strings.find("circuit_breaker.name"),
            state_key: strings.find("circuit_breaker.state"),
            open: strings.find("open")?,
        })
    }
}

/// One breaker: a caller instance's breaker of a given name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BreakerKey {
    service: u32,
    instance: u32,
    name: u32,
}

/// What is known of a breaker's state at one moment.
#[derive(Debug, Clone, Copy)]
struct Change {
    time_ns: i64,
    /// The interned state (`open`, `half_open`, `closed`).
    state: u32,
    /// A recorded transition (an event), rather than the state a call met.
    transition: bool,
    /// The span that carries it.
    row: u32,
}

/// State-change events, on whichever span carried them.
fn collect_events(table: &SpanTable, words: &Words, out: &mut HashMap<BreakerKey, Vec<Change>>) {
    let (Some(state_change), Some(name_key), Some(state_key)) =
        (words.state_change, words.name_key, words.state_key)
    else {
        return;
    };
    for event in table.events.iter().filter(|e| e.name == state_change) {
        let value = |key: u32| {
            event
                .attributes
                .iter()
                .find(|&&(k, _)| k == key)
                .and_then(|&(_, cell)| cell.as_str())
        };
        let (Some(name), Some(state)) = (value(name_key), value(state_key)) else {
            continue;
        };
        let row = event.row as usize;
        let key = BreakerKey {
            service: table.service[row],
            instance: table.instance[row],
            name,
        };
        out.entry(key).or_default().push(Change {
            time_ns: event.time_ns,
            state,
            transition: true,
            row: event.row,
        });
    }
}

/// The state each call met, at the call's start.
fn collect_calls(table: &SpanTable, out: &mut HashMap<BreakerKey, Vec<Change>>) {
    let names = table.attribute("circuit_breaker.name");
    let states = table.attribute("circuit_breaker.state");
    for (row, cell) in names.iter() {
        let (Some(name), Some(state)) = (cell.as_str(), states.get(row).and_then(Cell::as_str))
        else {
            continue;
        };
        let r = row as usize;
        let key = BreakerKey {
            service: table.service[r],
            instance: table.instance[r],
            name,
        };
        out.entry(key).or_default().push(Change {
            time_ns: table.start_ns[r],
            state,
            transition: false,
            row,
        });
    }
}

/// How one breaker instance behaved.
#[derive(Debug, Default)]
struct Openings {
    /// Times it opened.
    opened_at: Vec<i64>,
    /// Total time open, ns.
    open_ns: i64,
    /// When it last closed (or half-opened), if it did after its last opening.
    last_left_open_ns: Option<i64>,
    still_open: bool,
    /// Calls refused because they met the breaker open.
    rejected: u64,
    /// Spans that carry an opening, then spans of refused calls.
    evidence: Vec<u32>,
}

/// Replays one breaker's changes in time order.
fn openings(changes: &mut [Change], open: u32, end_ns: i64) -> Openings {
    // At equal times the recorded transition goes first: a call that met `open` at the
    // instant its breaker opened is a refusal, not a second opening.
    changes.sort_by_key(|c| (c.time_ns, !c.transition));
    let has_events = changes.iter().any(|c| c.transition);
    let mut out = Openings::default();
    let mut refused = Vec::new();
    let mut open_since: Option<i64> = None;
    for change in changes.iter() {
        let is_open = change.state == open;
        if !change.transition && is_open {
            out.rejected += 1;
            refused.push(change.row);
        }
        // With events, a call only tells that the breaker is no longer open (the idle
        // `open` → `half_open` change has no event); without, calls are all there is.
        let opens = is_open && open_since.is_none() && (change.transition || !has_events);
        if opens {
            open_since = Some(change.time_ns);
            out.opened_at.push(change.time_ns);
            out.evidence.push(change.row);
        } else if !is_open && let Some(since) = open_since.take() {
            out.open_ns += change.time_ns - since;
            out.last_left_open_ns = Some(change.time_ns);
        }
    }
    if let Some(since) = open_since {
        out.open_ns += (end_ns - since).max(0);
        out.still_open = true;
    }
    out.evidence.extend(refused);
    out
}

/// (caller service, breaker name) → each instance's breaker changes.
fn group_by_caller(
    breakers: HashMap<BreakerKey, Vec<Change>>,
) -> HashMap<(u32, u32), Vec<Vec<Change>>> {
    let mut edges: HashMap<(u32, u32), Vec<Vec<Change>>> = HashMap::new();
    for (key, changes) in breakers {
        edges
            .entry((key.service, key.name))
            .or_default()
            .push(changes);
    }
    edges
}

fn finding(
    cx: &Context<'_>,
    words: &Words,
    (service, name): (u32, u32),
    instances: Vec<Vec<Change>>,
) -> Option<Finding> {
    let mut per_instance: Vec<Openings> = instances
        .into_iter()
        .map(|mut changes| openings(&mut changes, words.open, cx.end_ns))
        .filter(|o| !o.opened_at.is_empty())
        .collect();
    if per_instance.is_empty() {
        return None;
    }
    per_instance.sort_by_key(|o| o.opened_at.first().copied());
    let opens: usize = per_instance.iter().map(|o| o.opened_at.len()).sum();
    let first = per_instance
        .iter()
        .filter_map(|o| o.opened_at.first())
        .min()?;
    let last_open = per_instance
        .iter()
        .filter_map(|o| o.opened_at.last())
        .max()?;
    let still_open = per_instance.iter().filter(|o| o.still_open).count();
    let end = if still_open > 0 {
        cx.end_ns
    } else {
        per_instance
            .iter()
            .filter_map(|o| o.last_left_open_ns)
            .max()
            .unwrap_or(*last_open)
    };
    let longest_open_ns = per_instance.iter().map(|o| o.open_ns).max().unwrap_or(0);
    let rejected: u64 = per_instance.iter().map(|o| o.rejected).sum();
    let caller = cx.table.str(service);
    let dependency = cx.table.str(name);
    let since_s = (first - cx.start_ns) as f64 / 1e9;
    let instances_open = per_instance.len();
    let now = if still_open > 0 {
        format!(", still open on {still_open}")
    } else {
        String::new()
    };
    let summary = format!(
        "{caller}'s breaker to {dependency} opened {opens} time{} since +{since_s:.0} s on {instances_open} instance{}{now}, open {:.1} s at the longest, {rejected} calls refused: {dependency} is failing or too slow for {caller}.",
        plural(opens),
        plural(instances_open),
        longest_open_ns as f64 / 1e9,
    );
    // Openings first (one per instance, earliest first), then refused calls.
    let mut evidence: Vec<u32> = per_instance
        .iter()
        .flat_map(|o| o.evidence.first().copied())
        .collect();
    evidence.extend(per_instance.iter().flat_map(|o| o.evidence.iter().copied()));
    Some(Finding {
        kind: FindingKind::BreakerOpen,
        severity: Severity::Warning,
        subject: Subject::Edge(caller.to_owned(), dependency.to_owned()),
        window: Window {
            start_ns: *first,
            end_ns: end.max(*first + 1),
        },
        onset_ns: Some(*first),
        summary,
        figures: vec![
            Figure::new("opens", opens as f64, ""),
            Figure::new("instances", instances_open as f64, ""),
            Figure::new("time_open", longest_open_ns as f64 / 1e9, "s"),
            Figure::new("still_open", still_open as f64, ""),
            Figure::new("rejected_calls", rejected as f64, ""),
        ],
        evidence: cx.evidence(evidence),
        detector: "breaker",
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Event, KeyValue, Resource, Span, SpanId, SpanKind, TraceId};

    use super::*;
    use crate::config::Thresholds;

    const SECOND: u64 = 1_000_000_000;

    fn call(n: u8, node: &str, at_s: u64, state: &str, events: &[(f64, &str, &str)]) -> Span {
        let mut span = Span::new(TraceId([n; 16]), SpanId([n; 8]), "process payments");
        span.kind = SpanKind::Consumer;
        span.start_ns = at_s * SECOND;
        span.end_ns = at_s * SECOND + SECOND / 2;
        let mut resource = Resource::with_service("worker");
        resource
            .attributes
            .0
            .push(KeyValue::new("faultline.node", node));
        span.resource = Arc::new(resource);
        span.attributes.insert("circuit_breaker.name", "payments");
        span.attributes.insert("circuit_breaker.state", state);
        for &(at, new, previous) in events {
            let mut event = Event {
                time_ns: (at * SECOND as f64) as u64,
                name: "circuit_breaker.state_change".into(),
                ..Event::default()
            };
            event.attributes.insert("circuit_breaker.name", "payments");
            event.attributes.insert("circuit_breaker.state", new);
            event
                .attributes
                .insert("circuit_breaker.previous_state", previous);
            span.events.push(event);
        }
        span
    }

    fn check(spans: &[Span]) -> Vec<Finding> {
        let table = crate::table::from_spans(spans);
        let thresholds = Thresholds::demo();
        BreakerState.check(&Context::new(&table, &thresholds))
    }

    #[test]
    fn openings_are_counted_per_caller_over_its_instances() {
        let spans = vec![
            call(1, "node-1", 0, "closed", &[]),
            call(2, "node-1", 2, "closed", &[(2.4, "open", "closed")]),
            call(3, "node-1", 3, "open", &[]),
            call(4, "node-1", 5, "half_open", &[(5.0, "half_open", "open")]),
            call(5, "node-1", 6, "half_open", &[(6.2, "open", "half_open")]),
            call(6, "node-2", 4, "closed", &[(4.1, "open", "closed")]),
            // node-2's breaker went half-open while idle: no event, the call tells.
            call(7, "node-2", 8, "half_open", &[(8.3, "closed", "half_open")]),
            call(8, "node-1", 9, "half_open", &[]),
        ];
        let found = check(&spans);
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::BreakerOpen);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject, Subject::Edge("worker".into(), "payments".into()));
        assert_eq!(f.figure("opens"), Some(3.0));
        assert_eq!(f.figure("instances"), Some(2.0));
        assert_eq!(f.figure("rejected_calls"), Some(1.0));
        // node-1: 2.4 → 5.0 and 6.2 → 9.0; node-2: 4.1 → 8.0.
        let open = f.figure("time_open").unwrap_or_default();
        assert!((open - 5.4).abs() < 1e-6, "{open}");
        assert_eq!(f.onset_ns, Some(2_400_000_000));
        assert!(f.summary.contains("opened 3 times"), "{}", f.summary);
        assert_eq!(f.evidence[0], TraceId([2; 16]));
    }

    #[test]
    fn calls_alone_show_an_opening_when_there_are_no_events() {
        let spans = vec![
            call(1, "node-1", 0, "closed", &[]),
            call(2, "node-1", 1, "open", &[]),
            call(3, "node-1", 2, "open", &[]),
            call(4, "node-1", 3, "closed", &[]),
        ];
        let found = check(&spans);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].figure("opens"), Some(1.0));
        assert_eq!(found[0].figure("rejected_calls"), Some(2.0));
    }

    #[test]
    fn a_breaker_that_stays_closed_is_not_news() {
        let spans: Vec<Span> = (0..10)
            .map(|i| call(i + 1, "node-1", u64::from(i), "closed", &[]))
            .collect();
        assert!(check(&spans).is_empty());
        // And spans without breakers at all.
        let plain = vec![Span::new(TraceId([1; 16]), SpanId([1; 8]), "GET /")];
        assert!(check(&plain).is_empty());
    }
}
