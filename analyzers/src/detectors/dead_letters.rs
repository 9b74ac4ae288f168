//! Dead letters and poison messages: messages a queue gave up on, and why.
//!
//! ```text
//!  enqueue ─► receive ─► process ✗ ─► nack ─► receive ─► process ✗ ─► … ─► dead_lettered
//!                        (fails at once, every delivery, same error)        └─► NAME.dlq
//!            DeadLetters: the queue moves messages to its DLQ
//!            PoisonMessage: the messages themselves are what fails
//! ```
//!
//! **Dead letters.** Rule: any message moved to a dead-letter queue is news: it will not
//! be processed until someone redrives it. Warning; critical when, in some window, the
//! queue dead-letters faster than `dead_letters_critical_per_minute`. Read from the
//! broker's `dead_lettered` span events (one per message, deduplicated by message id),
//! or its `queue.dead_lettered` count where a span has no events (docs/conventions.md).
//! From common practice: AWS and Azure recommend alarming on any message in a DLQ, and
//! on the rate at which they arrive.
//!
//! **Poison messages.** Rule: a message is poison when every delivery of it failed, the
//! consumer failed on its own (fast, with no failed call below its span, no open
//! circuit breaker, and an `error.type` that never came with a failed downstream call),
//! and it was delivered `poison_deliveries` times or dead-lettered. A message that
//! fails because a dependency times out or refuses it is not poison: it would succeed
//! once the dependency recovers. Critical when [`SEVERAL`] distinct messages are poison.
//! From the poison-message handling of message brokers (RabbitMQ's delivery limit,
//! SQS `maxReceiveCount`, NServiceBus's split of immediate retries and error queue):
//! a message that fails on every delivery is a property of the message, not of time.

use std::collections::{HashMap, HashSet};

use faultline_model::SpanKind;

use crate::detector::{Context, Detector};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::index::NO_ROW;
use crate::table::SpanTable;

#[derive(Debug, Default)]
pub struct DeadLetters;

/// Distinct poison messages on one queue from which it is critical: one bad message is
/// an annoyance; several mean a producer is sending what consumers cannot read.
const SEVERAL: usize = 3;

impl Detector for DeadLetters {
    fn name(&self) -> &'static str {
        "dead-letters"
    }

    fn symptom(&self) -> &'static str {
        "messages dead-lettered, or failing on every delivery (poison)"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let table = cx.table;
        let keys = Keys::find(table);
        let letters = dead_letters(table, &keys);
        let attempts = consumer_attempts(cx);
        let messages = messages(table, &attempts, &letters);
        // Everything by queue, in one pass each.
        let mut queues: HashMap<u32, Queue<'_>> = HashMap::new();
        for letter in &letters {
            queues.entry(letter.queue).or_default().letters.push(letter);
        }
        for attempt in attempts.iter().filter(|a| a.outcome == Outcome::Succeeded) {
            let queue = queues.entry(attempt.queue).or_default();
            queue.successes_ns.push(table.duration_ns(attempt.row));
        }
        for (&(queue, _), message) in &messages {
            queues.entry(queue).or_default().messages.push(message);
        }
        let mut findings = Vec::new();
        for (&queue, on_queue) in &queues {
            let name = table.str(queue);
            let dlq = on_queue
                .letters
                .iter()
                .find_map(|l| l.dlq)
                .map_or_else(|| format!("{name}.dlq"), |id| table.str(id).to_owned());
            findings.extend(dead_letter_finding(
                cx,
                name,
                &dlq,
                &on_queue.letters,
                &messages,
            ));
            let fast_ns = fast_failure(cx, &on_queue.successes_ns);
            let poison: Vec<&Message> = on_queue
                .messages
                .iter()
                .copied()
                .filter(|m| m.is_poison(cx.thresholds.poison_deliveries, fast_ns))
                .collect();
            findings.extend(poison_finding(cx, name, &dlq, poison));
        }
        findings.sort_by(|a, b| a.onset_ns.cmp(&b.onset_ns).then(a.subject.cmp(&b.subject)));
        findings
    }
}

/// One queue's dead letters (in time order), messages, and successful deliveries.
#[derive(Debug, Default)]
struct Queue<'a> {
    letters: Vec<&'a DeadLetter>,
    messages: Vec<&'a Message>,
    /// How long each successful delivery took, ns.
    successes_ns: Vec<i64>,
}

/// Interned keys and values the detector compares against.
struct Keys {
    dead_lettered: Option<u32>,
    message_id: Option<u32>,
    delivery_count: Option<u32>,
    destination: Option<u32>,
}

impl Keys {
    fn find(table: &SpanTable) -> Keys {
        let find = |text: &str| table.strings.find(text);
        Keys {
            dead_lettered: find("dead_lettered"),
            message_id: find("messaging.message.id"),
            delivery_count: find("queue.delivery_count"),
            destination: find("messaging.destination.name"),
        }
    }
}

/// One message moved to a dead-letter queue.
#[derive(Debug, Clone, Copy)]
struct DeadLetter {
    /// The queue it came from.
    queue: u32,
    /// The dead-letter queue, when the event names it.
    dlq: Option<u32>,
    message: Option<u32>,
    deliveries: Option<i64>,
    time_ns: i64,
    /// The broker span that moved it.
    row: u32,
}

/// Dead letters from the broker's events, then from counts on spans without events.
fn dead_letters(table: &SpanTable, keys: &Keys) -> Vec<DeadLetter> {
    let destinations = table.attribute("messaging.destination.name");
    let mut letters = Vec::new();
    let mut seen: HashSet<(u32, u32)> = HashSet::new();
    let mut rows_with_events: HashSet<u32> = HashSet::new();
    if let Some(name) = keys.dead_lettered {
        for event in table.events.iter().filter(|e| e.name == name) {
            let value = |key: Option<u32>| {
                let key = key?;
                event
                    .attributes
                    .iter()
                    .find(|&&(k, _)| k == key)
                    .map(|&(_, cell)| cell)
            };
            let dlq = value(keys.destination).and_then(|c| c.as_str());
            let queue = destinations
                .get(event.row)
                .and_then(|c| c.as_str())
                .or_else(|| source_of(table, dlq?));
            let Some(queue) = queue else { continue };
            rows_with_events.insert(event.row);
            let message = value(keys.message_id).and_then(|c| c.as_str());
            // A retried receive, or a forwarded copy of the broker's span, may repeat
            // an event: a message is dead-lettered once.
            if let Some(message) = message
                && !seen.insert((queue, message))
            {
                continue;
            }
            letters.push(DeadLetter {
                queue,
                dlq,
                message,
                deliveries: value(keys.delivery_count).and_then(|c| c.as_i64()),
                time_ns: event.time_ns,
                row: event.row,
            });
        }
    }
    for (row, cell) in table.attribute("queue.dead_lettered").iter() {
        let count = cell.as_i64().unwrap_or(0);
        if count <= 0 || rows_with_events.contains(&row) {
            continue;
        }
        let Some(queue) = destinations.get(row).and_then(|c| c.as_str()) else {
            continue;
        };
        for _ in 0..count.min(10_000) {
            letters.push(DeadLetter {
                queue,
                dlq: None,
                message: None,
                deliveries: None,
                time_ns: table.end_ns[row as usize],
                row,
            });
        }
    }
    letters.sort_by_key(|l| l.time_ns);
    letters
}

/// The source queue of a dead-letter queue `NAME.dlq`, when `NAME` is a known string.
fn source_of(table: &SpanTable, dlq: u32) -> Option<u32> {
    let source = table.str(dlq).strip_suffix(".dlq")?;
    table.strings.find(source)
}

/// Why a delivery failed, as far as the consumer's span tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    /// The consumer failed by itself: nothing below it failed.
    FailedOwn,
    /// A call below it failed, its breaker refused, or its error is one that comes
    /// with failed calls.
    FailedDownstream,
}

/// The outcome of each consumer span in `rows` (same order).
///
/// A failure is the consumer's own unless a call below its span failed or went
/// unanswered, its circuit breaker refused the call (`circuit_breaker.state` = `open`),
/// or its `error.type` is one that came with such a failure on some other delivery: a
/// consumer that reports it failed because of what it called, even when the call left
/// no span of its own.
pub(crate) fn delivery_outcomes(cx: &Context<'_>, rows: &[u32]) -> Vec<Outcome> {
    let table = cx.table;
    if !rows.iter().any(|&row| table.error[row as usize]) {
        return vec![Outcome::Succeeded; rows.len()];
    }
    let index = cx.index();
    let methods = table.attribute("http.request.method");
    // A client call without a status never got an answer (it timed out or was cut);
    // instrumentations do not all mark that as an error.
    let failed = |row: usize| {
        table.error[row]
            || (table.kind[row] == SpanKind::Client
                && table.http_status[row] == 0
                && methods.get(row as u32).is_some())
    };
    // Every span with a failure somewhere below it; each span is marked once, so the
    // walks up add up to O(n).
    let mut failed_below = vec![false; table.len()];
    for row in (0..table.len()).filter(|&row| failed(row)) {
        let mut parent = index.parent_row[row];
        while parent != NO_ROW && !failed_below[parent as usize] {
            failed_below[parent as usize] = true;
            parent = index.parent_row[parent as usize];
        }
    }
    let open = table.strings.find("open");
    let error_types = table.attribute("error.type");
    let breaker_states = table.attribute("circuit_breaker.state");
    let error_type = |row: u32| error_types.get(row).and_then(|c| c.as_str());
    let from_below = |row: u32| {
        failed_below[row as usize]
            || (open.is_some() && breaker_states.get(row).and_then(|c| c.as_str()) == open)
    };
    let mut downstream_errors: Vec<u32> = Vec::new();
    for &row in rows {
        if table.error[row as usize]
            && from_below(row)
            && let Some(kind) = error_type(row)
            && !downstream_errors.contains(&kind)
        {
            downstream_errors.push(kind);
        }
    }
    rows.iter()
        .map(|&row| {
            if !table.error[row as usize] {
                Outcome::Succeeded
            } else if from_below(row)
                || error_type(row).is_some_and(|k| downstream_errors.contains(&k))
            {
                Outcome::FailedDownstream
            } else {
                Outcome::FailedOwn
            }
        })
        .collect()
}

/// One delivery of a message to a consumer: its consumer span.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    queue: u32,
    message: u32,
    row: u32,
    outcome: Outcome,
    error_type: Option<u32>,
    /// `queue.delivery_count` of this delivery.
    delivery: Option<i64>,
}

/// The consumer spans (kind consumer) that name their queue and message.
fn consumer_attempts(cx: &Context<'_>) -> Vec<Attempt> {
    let table = cx.table;
    let messages = table.attribute("messaging.message.id");
    let destinations = table.attribute("messaging.destination.name");
    let consumers: Vec<(u32, u32, u32)> = messages
        .iter()
        .filter(|&(row, _)| table.kind[row as usize] == SpanKind::Consumer)
        .filter_map(|(row, cell)| {
            let queue = destinations.get(row)?.as_str()?;
            Some((row, queue, cell.as_str()?))
        })
        .collect();
    let rows: Vec<u32> = consumers.iter().map(|&(row, _, _)| row).collect();
    let outcomes = delivery_outcomes(cx, &rows);
    let error_types = table.attribute("error.type");
    let delivery_counts = table.attribute("queue.delivery_count");
    consumers
        .into_iter()
        .zip(outcomes)
        .map(|((row, queue, message), outcome)| Attempt {
            queue,
            message,
            row,
            outcome,
            error_type: error_types.get(row).and_then(|c| c.as_str()),
            delivery: delivery_counts.get(row).and_then(|c| c.as_i64()),
        })
        .collect()
}

/// What happened to one message over all its deliveries.
#[derive(Debug, Default)]
struct Message {
    /// Consumer spans, earliest first.
    attempts: Vec<u32>,
    /// How long each failed delivery took, ns.
    failure_ns: Vec<i64>,
    own_failures: u32,
    downstream_failures: u32,
    successes: u32,
    /// The highest delivery count seen (consumer spans, dead-letter events).
    deliveries: i64,
    dead_lettered: bool,
    error_type: Option<u32>,
}

impl Message {
    fn failures(&self) -> u32 {
        self.own_failures + self.downstream_failures
    }

    /// Failed on every delivery, mostly by itself and fast (within `fast_ns`, when the
    /// queue's successes tell what fast is), and often enough (or for good).
    fn is_poison(&self, poison_deliveries: i64, fast_ns: Option<i64>) -> bool {
        let failures = self.failures();
        self.successes == 0
            && self.own_failures * 2 > failures
            && (self.dead_lettered || self.deliveries.max(i64::from(failures)) >= poison_deliveries)
            && fast_ns.is_none_or(|fast| median(&self.failure_ns) <= fast)
    }
}

/// The longest a failure may take to count as failing fast on a queue: a multiple
/// (`latency_factor`) of its median successful delivery, when it has enough of them to
/// say (`min_calls`). A message that fails slowly is waiting on something.
fn fast_failure(cx: &Context<'_>, successes_ns: &[i64]) -> Option<i64> {
    if (successes_ns.len() as u64) < cx.thresholds.min_calls {
        return None;
    }
    Some((median(successes_ns) as f64 * cx.thresholds.latency_factor) as i64)
}

/// The median of `values` (the upper one of an even count); 0 when empty.
fn median(values: &[i64]) -> i64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// Messages by (queue, message id).
fn messages(
    table: &SpanTable,
    attempts: &[Attempt],
    letters: &[DeadLetter],
) -> HashMap<(u32, u32), Message> {
    let mut messages: HashMap<(u32, u32), Message> = HashMap::new();
    for attempt in attempts {
        let message = messages
            .entry((attempt.queue, attempt.message))
            .or_default();
        message.attempts.push(attempt.row);
        if attempt.outcome != Outcome::Succeeded {
            message.failure_ns.push(table.duration_ns(attempt.row));
        }
        message.deliveries = message.deliveries.max(attempt.delivery.unwrap_or(0));
        match attempt.outcome {
            Outcome::Succeeded => message.successes += 1,
            Outcome::FailedOwn => {
                message.own_failures += 1;
                message.error_type = message.error_type.or(attempt.error_type);
            }
            Outcome::FailedDownstream => message.downstream_failures += 1,
        }
    }
    for letter in letters {
        if let Some(id) = letter.message {
            let message = messages.entry((letter.queue, id)).or_default();
            message.dead_lettered = true;
            message.deliveries = message.deliveries.max(letter.deliveries.unwrap_or(0));
        }
    }
    for message in messages.values_mut() {
        message
            .attempts
            .sort_by_key(|&row| (table.start_ns[row as usize], row));
    }
    messages
}

fn dead_letter_finding(
    cx: &Context<'_>,
    queue: &str,
    dlq: &str,
    letters: &[&DeadLetter],
    messages: &HashMap<(u32, u32), Message>,
) -> Option<Finding> {
    let first = letters.first()?;
    let last = letters.last()?;
    let mut per_window = vec![0u32; cx.windows()];
    for letter in letters {
        per_window[cx.window_of(letter.time_ns)] += 1;
    }
    let window_minutes = cx.window_ns as f64 / 60e9;
    let peak = per_window.iter().copied().max().unwrap_or(0);
    let peak_per_minute = f64::from(peak) / window_minutes;
    let (first_window, last_window) = (cx.window_of(first.time_ns), cx.window_of(last.time_ns));
    let minutes = (last_window + 1 - first_window) as f64 * window_minutes;
    let count = letters.len();
    let per_minute = count as f64 / minutes;
    let baseline: u32 = per_window[..cx.baseline_windows()].iter().sum();
    let severity = if peak_per_minute >= cx.thresholds.dead_letters_critical_per_minute {
        Severity::Critical
    } else {
        Severity::Warning
    };
    // Why they were given up on, where the consumers' spans tell.
    let (mut own, mut downstream) = (0usize, 0usize);
    for letter in letters {
        let Some(message) = letter
            .message
            .and_then(|id| messages.get(&(letter.queue, id)))
        else {
            continue;
        };
        if message.own_failures > message.downstream_failures {
            own += 1;
        } else if message.downstream_failures > 0 {
            downstream += 1;
        }
    }
    let why = match (own, downstream) {
        (0, 0) => String::new(),
        (own, 0) => format!(" after failing on their own ({own})"),
        (0, downstream) => format!(" after failing on calls downstream ({downstream})"),
        (own, downstream) => {
            format!(" ({own} failing on their own, {downstream} failing on calls downstream)")
        }
    };
    let since_s = (first.time_ns - cx.start_ns) as f64 / 1e9;
    let deliveries = letters.iter().filter_map(|l| l.deliveries).max();
    let mut figures = vec![
        Figure::new("dead_letters", count as f64, ""),
        Figure::new("rate", per_minute, "/min"),
        Figure::new("peak_rate", peak_per_minute, "/min"),
        Figure::new("baseline_dead_letters", f64::from(baseline), ""),
        Figure::new("failed_own", own as f64, ""),
        Figure::new("failed_downstream", downstream as f64, ""),
    ];
    if let Some(deliveries) = deliveries {
        figures.push(Figure::new("deliveries", deliveries as f64, ""));
    }
    Some(Finding {
        kind: FindingKind::DeadLetters,
        severity,
        subject: Subject::Queue(queue.to_owned()),
        window: Window {
            start_ns: first.time_ns,
            end_ns: last.time_ns.max(first.time_ns + 1),
        },
        onset_ns: Some(first.time_ns),
        summary: format!(
            "Queue {queue} moved {count} message{} to {dlq} since +{since_s:.0} s ({per_minute:.0}/min, {peak_per_minute:.0}/min at the worst){why}; they will not be processed until redriven.",
            if count == 1 { "" } else { "s" },
        ),
        figures,
        // The consumer's last failed delivery shows why; the broker's span, that it moved.
        evidence: cx.evidence(letters.iter().map(|letter| {
            letter
                .message
                .and_then(|id| messages.get(&(letter.queue, id)))
                .and_then(|m| m.attempts.last().copied())
                .unwrap_or(letter.row)
        })),
        detector: "dead-letters",
    })
}

fn poison_finding(
    cx: &Context<'_>,
    queue: &str,
    dlq: &str,
    mut poison: Vec<&Message>,
) -> Option<Finding> {
    let table = cx.table;
    // Earliest first: the first delivery of each message is its evidence.
    poison.sort_by_key(|m| m.attempts.first().map(|&r| (table.start_ns[r as usize], r)));
    let first_row = *poison.first()?.attempts.first()?;
    let rows = || poison.iter().flat_map(|m| m.attempts.iter().copied());
    let start = rows().map(|r| table.start_ns[r as usize]).min()?;
    let end = rows().map(|r| table.end_ns[r as usize]).max()?;
    let deliveries: usize = poison.iter().map(|m| m.attempts.len()).sum();
    let dead_lettered = poison.iter().filter(|m| m.dead_lettered).count();
    let durations: Vec<i64> = rows().map(|r| table.duration_ns(r)).collect();
    let median_ms = median(&durations) as f64 / 1e6;
    let mut error_types: Vec<(u32, usize)> = Vec::new();
    for kind in poison.iter().filter_map(|m| m.error_type) {
        match error_types.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => error_types.push((kind, 1)),
        }
    }
    let error = error_types
        .iter()
        .max_by_key(|&&(_, n)| n)
        .map_or("an error", |&(kind, _)| table.str(kind));
    let count = poison.len();
    let severity = if count >= SEVERAL {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let since_s = (table.start_ns[first_row as usize] - cx.start_ns) as f64 / 1e9;
    let these = if count == 1 {
        "1 message".to_owned()
    } else {
        format!("{count} messages")
    };
    let fail = if count == 1 { "fails" } else { "fail" };
    Some(Finding {
        kind: FindingKind::PoisonMessage,
        severity,
        subject: Subject::Queue(queue.to_owned()),
        window: Window {
            start_ns: start,
            end_ns: end.max(start + 1),
        },
        onset_ns: Some(start),
        summary: format!(
            "{these} on queue {queue} {fail} on every delivery, at once ({error} in {median_ms:.0} ms), since +{since_s:.0} s: {deliveries} deliveries, {dead_lettered} dead-lettered to {dlq}; poison messages, inspect them there.",
        ),
        figures: vec![
            Figure::new("messages", count as f64, ""),
            Figure::new("deliveries", deliveries as f64, ""),
            Figure::new("dead_lettered", dead_lettered as f64, ""),
            Figure::new("failure_time", median_ms, "ms"),
        ],
        evidence: cx.evidence(poison.iter().filter_map(|m| m.attempts.first().copied())),
        detector: "dead-letters",
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Event, Resource, Span, SpanId, SpanKind, StatusCode, TraceId};

    use super::*;
    use crate::config::Thresholds;

    const MS: u64 = 1_000_000;

    struct Spans {
        spans: Vec<Span>,
        next: u32,
    }

    impl Spans {
        fn new() -> Self {
            Spans {
                spans: Vec::new(),
                next: 1,
            }
        }

        fn span(
            &mut self,
            service: &str,
            name: &str,
            kind: SpanKind,
            at_ms: u64,
            ms: u64,
        ) -> &mut Span {
            let n = self.next;
            self.next += 1;
            let mut trace = [0u8; 16];
            trace[..4].copy_from_slice(&n.to_be_bytes());
            let mut id = [0u8; 8];
            id[..4].copy_from_slice(&n.to_be_bytes());
            let mut span = Span::new(TraceId(trace), SpanId(id), name);
            span.kind = kind;
            span.start_ns = at_ms * MS;
            span.end_ns = (at_ms + ms) * MS;
            span.resource = Arc::new(Resource::with_service(service));
            self.spans.push(span);
            self.spans.last_mut().unwrap()
        }

        /// One delivery of `message` to the worker; `fails` with `error` after `ms`,
        /// and with a failed call to payments below it when `call_fails`.
        fn deliver(
            &mut self,
            message: &str,
            at_ms: u64,
            ms: u64,
            delivery: i64,
            error: Option<&str>,
            call_fails: bool,
        ) {
            let span = self.span("worker", "process jobs", SpanKind::Consumer, at_ms, ms);
            span.attributes.insert("messaging.destination.name", "jobs");
            span.attributes.insert("messaging.message.id", message);
            span.attributes.insert("queue.delivery_count", delivery);
            if let Some(error) = error {
                span.status.code = StatusCode::Error;
                span.attributes.insert("error.type", error);
            }
            let (trace, parent) = (span.trace_id, span.span_id);
            let n = self.next;
            let call = self.span(
                "worker",
                "POST /charge",
                SpanKind::Client,
                at_ms + 1,
                ms.saturating_sub(2),
            );
            call.trace_id = trace;
            call.parent_span_id = Some(parent);
            call.span_id = SpanId([
                0xcc,
                0,
                0,
                0,
                (n >> 24) as u8,
                (n >> 16) as u8,
                (n >> 8) as u8,
                n as u8,
            ]);
            call.attributes.insert("server.address", "payments");
            call.attributes.insert("http.request.method", "POST");
            if call_fails {
                call.status.code = StatusCode::Error;
            } else {
                call.attributes.insert("http.response.status_code", 200i64);
            }
        }

        /// The broker's receive that moved `message` to `jobs.dlq`.
        fn dead_letter(&mut self, message: &str, at_ms: u64) {
            let span = self.span("faultline-node", "receive jobs", SpanKind::Server, at_ms, 2);
            span.attributes.insert("messaging.destination.name", "jobs");
            span.attributes.insert("queue.dead_lettered", 1i64);
            let mut event = Event {
                time_ns: (at_ms + 1) * MS,
                name: "dead_lettered".into(),
                ..Event::default()
            };
            event.attributes.insert("messaging.message.id", message);
            event.attributes.insert("queue.delivery_count", 3i64);
            event
                .attributes
                .insert("messaging.destination.name", "jobs.dlq");
            span.events.push(event);
        }

        /// Healthy traffic: a message every 200 ms for `seconds`, processed in 50 ms.
        fn healthy(&mut self, seconds: u64) {
            for i in 0..seconds * 5 {
                self.deliver(&format!("ok-{i}"), i * 200, 50, 1, None, false);
            }
        }
    }

    fn check(spans: &Spans) -> Vec<Finding> {
        let table = crate::table::from_spans(&spans.spans);
        let thresholds = Thresholds::demo();
        DeadLetters.check(&Context::new(&table, &thresholds))
    }

    #[test]
    fn messages_failing_fast_on_every_delivery_are_poison() {
        let mut spans = Spans::new();
        spans.healthy(20);
        for m in 0..4u64 {
            let message = format!("bad-{m}");
            for delivery in 1..=3 {
                let at = 10_000 + m * 10 + (delivery as u64) * 100;
                // The consumer rejects it at once: no call below it.
                let span = spans.span("worker", "process jobs", SpanKind::Consumer, at, 5);
                span.attributes.insert("messaging.destination.name", "jobs");
                span.attributes
                    .insert("messaging.message.id", message.as_str());
                span.attributes.insert("queue.delivery_count", delivery);
                span.attributes.insert("error.type", "invalid_job");
                span.status.code = StatusCode::Error;
            }
            spans.dead_letter(&message, 10_400 + m);
        }
        let found = check(&spans);
        let poison = found.iter().find(|f| f.kind == FindingKind::PoisonMessage);
        let Some(poison) = poison else {
            panic!("no poison finding: {found:#?}")
        };
        assert_eq!(poison.severity, Severity::Critical);
        assert_eq!(poison.subject, Subject::Queue("jobs".into()));
        assert_eq!(poison.figure("messages"), Some(4.0));
        assert_eq!(poison.figure("deliveries"), Some(12.0));
        assert_eq!(poison.figure("dead_lettered"), Some(4.0));
        assert!(poison.summary.contains("invalid_job"), "{}", poison.summary);
        assert_eq!(poison.evidence.len(), 4);
        let letters = found.iter().find(|f| f.kind == FindingKind::DeadLetters);
        let Some(letters) = letters else {
            panic!("no dead letters: {found:#?}")
        };
        assert_eq!(letters.figure("dead_letters"), Some(4.0));
        assert_eq!(letters.figure("failed_own"), Some(4.0));
        assert!(letters.summary.contains("jobs.dlq"), "{}", letters.summary);
    }

    #[test]
    fn messages_failing_on_a_slow_dependency_are_dead_letters_not_poison() {
        let mut spans = Spans::new();
        spans.healthy(20);
        for m in 0..4u64 {
            let message = format!("late-{m}");
            for delivery in 1..=3 {
                let at = 10_000 + m * 10 + (delivery as u64) * 1_500;
                spans.deliver(
                    &message,
                    at,
                    1_200,
                    delivery,
                    Some("charge_failed"),
                    m % 2 == 0,
                );
            }
            spans.dead_letter(&message, 16_000 + m);
        }
        let found = check(&spans);
        assert!(
            found.iter().all(|f| f.kind != FindingKind::PoisonMessage),
            "{found:#?}"
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].kind, FindingKind::DeadLetters);
        assert_eq!(found[0].severity, Severity::Warning);
        assert_eq!(found[0].figure("failed_downstream"), Some(4.0));
    }

    #[test]
    fn a_dead_letter_count_without_events_still_counts() {
        let mut spans = Spans::new();
        let span = spans.span("broker", "receive jobs", SpanKind::Server, 1_000, 2);
        span.attributes.insert("messaging.destination.name", "jobs");
        span.attributes.insert("queue.dead_lettered", 2i64);
        let found = check(&spans);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].figure("dead_letters"), Some(2.0));
    }

    #[test]
    fn a_healthy_queue_is_not_news() {
        let mut spans = Spans::new();
        spans.healthy(20);
        // One transient failure that succeeds on redelivery.
        spans.deliver("flaky", 5_000, 5, 1, Some("invalid_job"), false);
        spans.deliver("flaky", 5_300, 50, 2, None, false);
        assert!(check(&spans).is_empty());
    }
}
