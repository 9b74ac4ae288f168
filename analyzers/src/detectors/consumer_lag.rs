//! Queue consumer lag: messages wait longer and longer before a consumer settles them.
//!
//! ```text
//!  enqueue ──► [ backlog: enqueued − acked − dead-lettered ] ──► receive ─► process ─► ack
//!               oldest waiting message ──┘                         self time │ calls below
//!  lag per window = max(age at ack, age of the oldest messages still waiting)
//!  why = consumers slowed (their own code, or their calls) │ consumers stopped or failing
//!        │ producers sped up
//! ```
//!
//! Rule: per queue and window, the lag is the highest `queue.age_ms` of the acks (time
//! from enqueue to ack), or the age of the messages still waiting at the window's end,
//! whichever is higher. A window lags when that is above `consumer_lag_warning_ms` and
//! `latency_factor` times the baseline's; the lag counts from its onset (a rise that
//! sticks). Critical above `consumer_lag_critical_ms`, or when the backlog also grew
//! over the lagging windows (the consumers are not keeping up and will not catch up by
//! themselves). The consumers' spans then tell why: none finished (stopped or hung);
//! most deliveries fail and come back; their processing time rose against the
//! baseline, split into self time and time in calls below them; or the producers sped
//! up. A consumer waiting on a slow dependency, or failing on it, is a symptom of that
//! dependency: warning only, with the dependency named. Enqueues whose HTTP request
//! never got an answer are not counted as waiting messages: nothing says they were
//! enqueued.
//!
//! Where it comes from: the two lag measures brokers and their monitors alert on, the
//! age of the oldest message (SQS `ApproximateAgeOfOldestMessage`, Kafka time lag) and
//! a backlog that grows while consumers commit (LinkedIn's Burrow: "lag increasing over
//! the window" is the consumer not keeping up).

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;

use faultline_model::SpanKind;

use crate::detector::{Context, Detector, onset};
use crate::detectors::dead_letters::{Outcome, delivery_outcomes};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::index::NO_ROW;
use crate::table::SpanTable;

#[derive(Debug, Default)]
pub struct ConsumerLag;

/// The waiting message whose age counts is the third-oldest: one or two messages whose
/// ack never reached the capture (a killed broker's unexported spans) must not read as
/// lag that grows for ever.
const OLDEST_COUNTED: usize = 3;

/// A consumer failure rate from which failing deliveries, not slowness, explain the lag.
const FAILING_SHARE: f64 = 0.5;

/// Producers this much faster than in the baseline explain a lag on their own.
const PRODUCERS_FASTER: f64 = 1.5;

impl Detector for ConsumerLag {
    fn name(&self) -> &'static str {
        "consumer-lag"
    }

    fn symptom(&self) -> &'static str {
        "messages wait longer and longer in a queue before consumers settle them"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(words) = Words::find(cx.table) else {
            return Vec::new();
        };
        let queues = collect(cx, &words);
        let consumers = if queues.values().any(|q| !q.consumers.is_empty()) {
            deliveries(cx, &queues)
        } else {
            HashMap::new()
        };
        let mut findings: Vec<Finding> = queues
            .iter()
            .filter_map(|(&queue, signals)| {
                let series = Series::build(cx, signals, &consumers);
                finding(cx, queue, signals, &series, &consumers)
            })
            .collect();
        findings.sort_by(|a, b| a.onset_ns.cmp(&b.onset_ns).then(a.subject.cmp(&b.subject)));
        findings
    }
}

/// Interned operation names and keys.
struct Words {
    /// Operation names and types that put a message on a queue.
    send: Vec<u32>,
    /// Operation names that settle a message for good.
    ack: Vec<u32>,
    dead_lettered: Option<u32>,
    message_id: Option<u32>,
}

impl Words {
    /// `None` when no span names a queue operation.
    fn find(table: &SpanTable) -> Option<Words> {
        if table.attribute("messaging.destination.name").is_empty() {
            return None;
        }
        let ids = |texts: &[&str]| -> Vec<u32> {
            texts.iter().filter_map(|t| table.strings.find(t)).collect()
        };
        Some(Words {
            // `send` is the type, `publish` its older name; `enqueue` the demo's name.
            send: ids(&["send", "publish", "enqueue"]),
            ack: ids(&["ack", "complete"]),
            dead_lettered: table.strings.find("dead_lettered"),
            message_id: table.strings.find("messaging.message.id"),
        })
    }
}

/// When a message was first enqueued and first settled (acked or dead-lettered).
#[derive(Debug, Clone, Copy, Default)]
struct Lifetime {
    enqueued_ns: Option<i64>,
    settled_ns: Option<i64>,
}

/// What the spans say about one queue.
#[derive(Debug, Default)]
struct Signals {
    messages: HashMap<u32, Lifetime>,
    /// One per acked message: (row, time, age at ack in ms when known).
    acks: Vec<(u32, i64, Option<f64>)>,
    /// Consumer spans that process this queue's messages.
    consumers: Vec<u32>,
}

fn collect(cx: &Context<'_>, words: &Words) -> HashMap<u32, Signals> {
    let table = cx.table;
    let operation_names = table.attribute("messaging.operation.name");
    let operation_types = table.attribute("messaging.operation.type");
    let message_ids = table.attribute("messaging.message.id");
    let ages = table.attribute("queue.age_ms");
    let http_methods = table.attribute("http.request.method");
    let mut queues: HashMap<u32, Signals> = HashMap::new();
    // (queue, message) → its entry in `acks`.
    let mut acked: HashMap<(u32, u32), usize> = HashMap::new();
    for (row, cell) in table.attribute("messaging.destination.name").iter() {
        let Some(queue) = cell.as_str() else { continue };
        let r = row as usize;
        if table.kind[r] == SpanKind::Consumer {
            queues.entry(queue).or_default().consumers.push(row);
            continue;
        }
        if table.error[r] {
            continue;
        }
        let Some(message) = message_ids.get(row).and_then(|c| c.as_str()) else {
            continue;
        };
        let name = operation_names.get(row).and_then(|c| c.as_str());
        let kind = operation_types.get(row).and_then(|c| c.as_str());
        let is = |set: &[u32], id: Option<u32>| id.is_some_and(|id| set.contains(&id));
        let end = table.end_ns[r];
        // An HTTP request to the broker that never got an answer (its caller gave up)
        // may not have enqueued anything: it must not count as a message waiting.
        let unanswered = table.http_status[r] == 0 && http_methods.get(row).is_some();
        if (is(&words.send, name) || is(&words.send, kind)) && !unanswered {
            let signals = queues.entry(queue).or_default();
            let life = signals.messages.entry(message).or_default();
            // A forwarded or retried enqueue ends later: the first end is the commit.
            life.enqueued_ns = Some(life.enqueued_ns.map_or(end, |t| t.min(end)));
        } else if is(&words.ack, name) {
            let signals = queues.entry(queue).or_default();
            let life = signals.messages.entry(message).or_default();
            life.settled_ns = Some(life.settled_ns.map_or(end, |t| t.min(end)));
            let age = ages.get(row).and_then(|c| c.as_f64());
            // The broker's own span carries the age; a forwarding node's copy does not.
            match acked.get(&(queue, message)) {
                None => {
                    acked.insert((queue, message), signals.acks.len());
                    signals.acks.push((row, end, age));
                }
                Some(&at) => {
                    let ack = &mut signals.acks[at];
                    if age.is_some() && ack.2.is_none() {
                        *ack = (row, ack.1.min(end), age);
                    }
                }
            }
        }
    }
    // Dead-lettered messages are settled too: they no longer wait.
    if let (Some(name), Some(id_key)) = (words.dead_lettered, words.message_id) {
        let destinations = table.attribute("messaging.destination.name");
        for event in table.events.iter().filter(|e| e.name == name) {
            let Some(queue) = destinations.get(event.row).and_then(|c| c.as_str()) else {
                continue;
            };
            let Some(message) = event
                .attributes
                .iter()
                .find(|&&(k, _)| k == id_key)
                .and_then(|&(_, c)| c.as_str())
            else {
                continue;
            };
            if let Some(signals) = queues.get_mut(&queue) {
                let life = signals.messages.entry(message).or_default();
                let at = event.time_ns;
                life.settled_ns = Some(life.settled_ns.map_or(at, |t| t.min(at)));
            }
        }
    }
    queues.retain(|_, q| !q.messages.is_empty());
    queues
}

/// One consumer span: how it ended, and its time spent in calls below it.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    outcome: Outcome,
    downstream_ns: i64,
    /// The callee it waited on longest (interned peer, or the call's name).
    waited_on: u32,
}

/// Outcome and child time of every consumer span, in one pass over the rows:
/// O(n log n).
fn deliveries(cx: &Context<'_>, queues: &HashMap<u32, Signals>) -> HashMap<u32, Delivery> {
    let table = cx.table;
    let index = cx.index();
    let rows: Vec<u32> = queues
        .values()
        .flat_map(|signals| signals.consumers.iter().copied())
        .collect();
    let mut is_consumer = vec![false; table.len()];
    for &row in &rows {
        is_consumer[row as usize] = true;
    }
    let outcomes = delivery_outcomes(cx, &rows);
    let mut deliveries: HashMap<u32, Delivery> = rows
        .iter()
        .zip(outcomes)
        .map(|(&row, outcome)| {
            let delivery = Delivery {
                outcome,
                downstream_ns: 0,
                waited_on: 0,
            };
            (row, delivery)
        })
        .collect();
    // (parent, start, end, row) of every direct child of a consumer span.
    let mut children: Vec<(u32, i64, i64, u32)> = Vec::new();
    for row in 0..table.len() {
        let parent = index.parent_row[row];
        if parent != NO_ROW && is_consumer[parent as usize] {
            let p = parent as usize;
            let start = table.start_ns[row].max(table.start_ns[p]);
            let end = table.end_ns[row].min(table.end_ns[p]);
            children.push((parent, start, end.max(start), row as u32));
        }
    }
    children.sort_unstable();
    let mut i = 0;
    while i < children.len() {
        let parent = children[i].0;
        let (mut downstream_ns, mut waited_on) = (0, 0);
        let mut longest = 0;
        let (mut covered_start, mut covered_end) = (children[i].1, children[i].1);
        while i < children.len() && children[i].0 == parent {
            let (_, start, end, row) = children[i];
            // Calls may overlap: count the time covered by at least one.
            if start > covered_end {
                downstream_ns += covered_end - covered_start;
                covered_start = start;
            }
            covered_end = covered_end.max(end);
            if end - start > longest {
                longest = end - start;
                let peer = table.peer[row as usize];
                waited_on = if peer != 0 {
                    peer
                } else {
                    table.name[row as usize]
                };
            }
            i += 1;
        }
        downstream_ns += covered_end - covered_start;
        if let Some(delivery) = deliveries.get_mut(&parent) {
            delivery.downstream_ns = downstream_ns;
            delivery.waited_on = waited_on;
        }
    }
    deliveries
}

/// One queue's signals per window.
#[derive(Debug)]
struct Series {
    enqueued: Vec<u32>,
    /// Highest age at ack, ms.
    age_at_ack: Vec<f64>,
    /// Age of the [`OLDEST_COUNTED`]th-oldest message waiting at the window's end, ms.
    waiting_age: Vec<f64>,
    /// Messages waiting at the window's end (of those whose enqueue is in the capture).
    backlog: Vec<usize>,
    /// Consumer spans ending in the window: count, failures, failures that came from
    /// below (see [`delivery_outcomes`]), total time and time in calls (ns).
    processed: Vec<u32>,
    failed: Vec<u32>,
    failed_downstream: Vec<u32>,
    processing_ns: Vec<i64>,
    downstream_ns: Vec<i64>,
}

impl Series {
    fn build(cx: &Context<'_>, signals: &Signals, consumers: &HashMap<u32, Delivery>) -> Series {
        let table = cx.table;
        let windows = cx.windows();
        let mut series = Series {
            enqueued: vec![0; windows],
            age_at_ack: vec![0.0; windows],
            waiting_age: vec![0.0; windows],
            backlog: vec![0; windows],
            processed: vec![0; windows],
            failed: vec![0; windows],
            failed_downstream: vec![0; windows],
            processing_ns: vec![0; windows],
            downstream_ns: vec![0; windows],
        };
        for &(_, at, age) in &signals.acks {
            if let Some(age) = age {
                let w = cx.window_of(at);
                series.age_at_ack[w] = series.age_at_ack[w].max(age);
            }
        }
        // Messages waiting at each window's end: a sweep over enqueues and settlements
        // in time order, keeping the waiting ones ordered by enqueue time.
        let mut changes: Vec<(i64, bool, i64, u32)> = Vec::new();
        for (&message, life) in &signals.messages {
            let Some(enqueued) = life.enqueued_ns else {
                continue;
            };
            series.enqueued[cx.window_of(enqueued)] += 1;
            let settled = life.settled_ns.unwrap_or(i64::MAX);
            if settled <= enqueued {
                continue;
            }
            changes.push((enqueued, true, enqueued, message));
            if settled != i64::MAX {
                changes.push((settled, false, enqueued, message));
            }
        }
        changes.sort_unstable();
        let mut waiting: BTreeSet<(i64, u32)> = BTreeSet::new();
        let mut next = 0;
        for w in 0..windows {
            let end = (cx.window_start(w) + cx.window_ns).min(cx.end_ns);
            while next < changes.len() && changes[next].0 <= end {
                let (_, enqueue, enqueued, message) = changes[next];
                if enqueue {
                    waiting.insert((enqueued, message));
                } else {
                    waiting.remove(&(enqueued, message));
                }
                next += 1;
            }
            series.backlog[w] = waiting.len();
            if let Some(&(enqueued, _)) = waiting.iter().nth(OLDEST_COUNTED - 1) {
                series.waiting_age[w] = (end - enqueued) as f64 / 1e6;
            }
        }
        for (&row, delivery) in signals
            .consumers
            .iter()
            .filter_map(|row| Some((row, consumers.get(row)?)))
        {
            let w = cx.window_of(table.end_ns[row as usize]);
            series.processed[w] += 1;
            series.processing_ns[w] += table.duration_ns(row);
            series.downstream_ns[w] += delivery.downstream_ns;
            match delivery.outcome {
                Outcome::Succeeded => {}
                Outcome::FailedOwn => series.failed[w] += 1,
                Outcome::FailedDownstream => {
                    series.failed[w] += 1;
                    series.failed_downstream[w] += 1;
                }
            }
        }
        series
    }

    fn lag_ms(&self, w: usize) -> f64 {
        self.age_at_ack[w].max(self.waiting_age[w])
    }
}

/// Sums over a range of windows.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    seconds: f64,
    enqueued: u64,
    processed: u64,
    failed: u64,
    failed_downstream: u64,
    processing_ns: i64,
    downstream_ns: i64,
}

impl Totals {
    fn over(cx: &Context<'_>, series: &Series, windows: std::ops::Range<usize>) -> Totals {
        let mut totals = Totals {
            seconds: windows.len() as f64 * cx.window_ns as f64 / 1e9,
            ..Totals::default()
        };
        for w in windows {
            totals.enqueued += u64::from(series.enqueued[w]);
            totals.processed += u64::from(series.processed[w]);
            totals.failed += u64::from(series.failed[w]);
            totals.failed_downstream += u64::from(series.failed_downstream[w]);
            totals.processing_ns += series.processing_ns[w];
            totals.downstream_ns += series.downstream_ns[w];
        }
        totals
    }

    fn enqueue_rate(&self) -> f64 {
        self.enqueued as f64 / self.seconds.max(1e-9)
    }

    /// Mean processing time per message, ms.
    fn processing_ms(&self) -> f64 {
        self.processing_ns as f64 / 1e6 / self.processed.max(1) as f64
    }

    fn downstream_ms(&self) -> f64 {
        self.downstream_ns as f64 / 1e6 / self.processed.max(1) as f64
    }

    fn self_ms(&self) -> f64 {
        self.processing_ms() - self.downstream_ms()
    }

    fn failure_rate(&self) -> f64 {
        self.failed as f64 / self.processed.max(1) as f64
    }
}

/// Why the consumers fall behind.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cause {
    /// Their own processing got slower.
    SlowerConsumers,
    /// They spend the extra time in calls to this callee.
    WaitingOn(u32),
    /// Most deliveries fail and come back; `true` when the failures come from below.
    Failing(bool),
    /// No consumer finished a message in the lagging windows.
    Stopped,
    /// No consumer finished a message, and the consuming service's calls to this
    /// callee got slower: (callee, mean ms, baseline mean ms).
    StuckOn(u32, f64, f64),
    ProducersFaster,
    Unknown,
}

impl Cause {
    /// Why the consumers of `signals` fall behind in `windows`, from their spans.
    fn of(
        cx: &Context<'_>,
        signals: &Signals,
        consumers: &HashMap<u32, Delivery>,
        before: &Totals,
        during: &Totals,
        windows: RangeInclusive<usize>,
    ) -> Cause {
        let th = cx.thresholds;
        let table = cx.table;
        let slowed = during.processed > 0
            && during.processing_ms() > th.latency_factor * before.processing_ms()
            && during.processing_ms() - before.processing_ms() > th.latency_min_rise_ms;
        if signals.consumers.is_empty() {
            if during.enqueue_rate() > PRODUCERS_FASTER * before.enqueue_rate() {
                Cause::ProducersFaster
            } else {
                Cause::Unknown
            }
        } else if during.processed == 0 {
            // Nothing finished: the calls the consumers made meanwhile may still tell.
            let service = consuming_service_id(table, &signals.consumers);
            match service.and_then(|service| slower_callee(cx, service, windows.clone())) {
                Some((callee, ms, baseline_ms)) => Cause::StuckOn(callee, ms, baseline_ms),
                None => Cause::Stopped,
            }
        } else if during.failure_rate() >= FAILING_SHARE {
            Cause::Failing(during.failed_downstream * 2 > during.failed)
        } else if slowed {
            let own_rise = during.self_ms() - before.self_ms();
            let downstream_rise = during.downstream_ms() - before.downstream_ms();
            if downstream_rise > own_rise {
                Cause::WaitingOn(main_callee(cx, signals, consumers, windows))
            } else {
                Cause::SlowerConsumers
            }
        } else if during.enqueue_rate() > PRODUCERS_FASTER * before.enqueue_rate() {
            Cause::ProducersFaster
        } else {
            Cause::Unknown
        }
    }

    /// The lag follows from a dependency: the finding about that one is the one to
    /// page on.
    fn is_downstream(self) -> bool {
        matches!(
            self,
            Cause::WaitingOn(_) | Cause::Failing(true) | Cause::StuckOn(..)
        )
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn finding(
    cx: &Context<'_>,
    queue: u32,
    signals: &Signals,
    series: &Series,
    consumers: &HashMap<u32, Delivery>,
) -> Option<Finding> {
    let th = cx.thresholds;
    let table = cx.table;
    let base = cx.baseline_windows();
    let windows = cx.windows();
    let baseline_lag = median(
        (0..base)
            .map(|w| series.lag_ms(w))
            .filter(|&l| l > 0.0)
            .collect(),
    );
    let abnormal: Vec<bool> = (0..windows)
        .map(|w| {
            let lag = series.lag_ms(w);
            lag > th.consumer_lag_warning_ms && lag > th.latency_factor * baseline_lag
        })
        .collect();
    let start = onset(&abnormal, base)?;
    let end = (start..windows).rev().find(|&w| abnormal[w])?;
    let peak_ms = (start..=end).map(|w| series.lag_ms(w)).fold(0.0, f64::max);
    let before = Totals::over(cx, series, 0..base);
    let during = Totals::over(cx, series, start..end + 1);
    let backlog_before = if start > 0 {
        series.backlog[start - 1]
    } else {
        0
    };
    // The backlog at its highest, and how fast it got there: after the cause goes away
    // the consumers drain it, which says nothing about how far behind they fell.
    let (peak_window, peak_backlog) = (start..=end)
        .map(|w| (w, series.backlog[w]))
        .max_by_key(|&(w, n)| (n, std::cmp::Reverse(w)))
        .unwrap_or((end, series.backlog[end]));
    let growth = peak_backlog as f64 - backlog_before as f64;
    let growth_rate = growth / ((peak_window + 1 - start) as f64 * cx.window_ns as f64 / 1e9);

    let cause = Cause::of(cx, signals, consumers, &before, &during, start..=end);
    let severity = if cause.is_downstream() {
        Severity::Warning
    } else if peak_ms >= th.consumer_lag_critical_ms || growth >= th.min_calls as f64 {
        Severity::Critical
    } else {
        Severity::Warning
    };

    let consumer = consuming_service(table, &signals.consumers);
    let queue_name = table.str(queue);
    let who = consumer.unwrap_or("Consumers");
    let why = match cause {
        Cause::SlowerConsumers => format!(
            "its own processing slowed: {:.0} ms per message against {:.0} ms, {:.0} ms of it in {who} itself",
            during.processing_ms(),
            before.processing_ms(),
            during.self_ms(),
        ),
        Cause::WaitingOn(callee) => format!(
            "it is waiting on {}: {:.0} ms of its {:.0} ms per message go to calls, against {:.0} ms before",
            table.str(callee),
            during.downstream_ms(),
            during.processing_ms(),
            before.downstream_ms(),
        ),
        Cause::Failing(below) => format!(
            "{:.0} % of deliveries fail {} and come back",
            during.failure_rate() * 100.0,
            if below {
                "on calls downstream"
            } else {
                "in the consumer"
            },
        ),
        Cause::Stopped => "no consumer finished a message since: they stopped or hang".to_owned(),
        Cause::StuckOn(callee, ms, baseline_ms) => format!(
            "no consumer finished a message since, and its calls to {} take {ms:.0} ms against {baseline_ms:.0} ms before",
            table.str(callee),
        ),
        Cause::ProducersFaster => format!(
            "producers sped up: {:.1} messages/s against {:.1}",
            during.enqueue_rate(),
            before.enqueue_rate(),
        ),
        Cause::Unknown => {
            "consumers are no slower and producers no faster: look at the broker".to_owned()
        }
    };
    let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
    let summary = format!(
        "{who} {} falling behind on queue {queue_name} since +{onset_s:.0} s: messages wait up to {} (against {} before), the backlog grew by {growth:.0} to {peak_backlog} ({growth_rate:.1}/s); {why}.",
        if consumer.is_some() { "is" } else { "are" },
        duration(peak_ms),
        duration(baseline_lag),
    );
    let mut figures = vec![
        Figure::new("age", peak_ms, "ms"),
        Figure::new("baseline_age", baseline_lag, "ms"),
        Figure::new("backlog", peak_backlog as f64, ""),
        Figure::new("backlog_before", backlog_before as f64, ""),
        Figure::new("backlog_growth", growth_rate, "/s"),
        Figure::new("enqueue_rate", during.enqueue_rate(), "/s"),
        Figure::new("baseline_enqueue_rate", before.enqueue_rate(), "/s"),
    ];
    if !signals.consumers.is_empty() {
        figures.extend([
            Figure::new(
                "processed_rate",
                during.processed as f64 / during.seconds,
                "/s",
            ),
            Figure::new("processing", during.processing_ms(), "ms"),
            Figure::new("baseline_processing", before.processing_ms(), "ms"),
            Figure::new("self", during.self_ms(), "ms"),
            Figure::new("baseline_self", before.self_ms(), "ms"),
            Figure::new("downstream", during.downstream_ms(), "ms"),
            Figure::new("baseline_downstream", before.downstream_ms(), "ms"),
            Figure::new("failure_rate", during.failure_rate(), "ratio"),
            // 1 when the lag follows from what the consumers call (the cause is below
            // them), 0 when it is theirs or the producers'.
            Figure::new(
                "downstream_cause",
                f64::from(u8::from(cause.is_downstream())),
                "",
            ),
        ]);
    }
    Some(Finding {
        kind: FindingKind::ConsumerLag,
        severity,
        subject: consumer.map_or_else(
            || Subject::Queue(queue_name.to_owned()),
            |service| Subject::Service(service.to_owned()),
        ),
        window: Window {
            start_ns: cx.window_start(start),
            end_ns: (cx.window_start(end) + cx.window_ns)
                .min(cx.end_ns.max(cx.window_start(end) + 1)),
        },
        onset_ns: Some(cx.window_start(start)),
        summary,
        figures,
        evidence: cx.evidence(evidence(cx, signals, start, end)),
        detector: "consumer-lag",
    })
}

/// `ms` for a reader: "850 ms", "3.4 s".
fn duration(ms: f64) -> String {
    if ms < 1_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1e3)
    }
}

/// The service most of the queue's consumer spans belong to.
fn consuming_service<'t>(table: &'t SpanTable, consumers: &[u32]) -> Option<&'t str> {
    consuming_service_id(table, consumers).map(|service| table.str(service))
}

fn consuming_service_id(table: &SpanTable, consumers: &[u32]) -> Option<u32> {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for &row in consumers {
        let service = table.service[row as usize];
        match counts.iter_mut().find(|(s, _)| *s == service) {
            Some((_, n)) => *n += 1,
            None => counts.push((service, 1)),
        }
    }
    let (service, _) = counts
        .into_iter()
        .max_by_key(|&(s, n)| (n, std::cmp::Reverse(s)))?;
    Some(service)
}

/// The callee whose calls from `service`, ending in `windows`, got the
/// most slower than in the baseline (by `latency_factor` and `latency_min_rise_ms`):
/// (callee, mean ms, baseline mean ms).
fn slower_callee(
    cx: &Context<'_>,
    service: u32,
    windows: RangeInclusive<usize>,
) -> Option<(u32, f64, f64)> {
    let table = cx.table;
    let base = cx.baseline_windows();
    // callee → (baseline calls, baseline ns, calls, ns)
    let mut calls: HashMap<u32, (u32, i64, u32, i64)> = HashMap::new();
    for row in 0..table.len() {
        let callee = table.peer[row];
        if table.service[row] != service || table.kind[row] != SpanKind::Client || callee == 0 {
            continue;
        }
        let w = cx.window_of(table.end_ns[row]);
        let entry = calls.entry(callee).or_default();
        if w < base {
            entry.0 += 1;
            entry.1 += table.duration_ns(row as u32);
        } else if windows.contains(&w) {
            entry.2 += 1;
            entry.3 += table.duration_ns(row as u32);
        }
    }
    let th = cx.thresholds;
    calls
        .into_iter()
        .filter(|&(_, (before, _, during, _))| before > 0 && during > 0)
        .map(|(callee, (before, before_ns, during, during_ns))| {
            let baseline_ms = before_ns as f64 / 1e6 / f64::from(before);
            let ms = during_ns as f64 / 1e6 / f64::from(during);
            (callee, ms, baseline_ms)
        })
        .filter(|&(_, ms, baseline_ms)| {
            ms > th.latency_factor * baseline_ms && ms - baseline_ms > th.latency_min_rise_ms
        })
        .max_by(|a, b| (a.1 - a.2).total_cmp(&(b.1 - b.2)).then(b.0.cmp(&a.0)))
}

/// The callee the consumers waited on longest in `windows`.
fn main_callee(
    cx: &Context<'_>,
    signals: &Signals,
    consumers: &HashMap<u32, Delivery>,
    windows: RangeInclusive<usize>,
) -> u32 {
    let mut waited: HashMap<u32, i64> = HashMap::new();
    for &row in &signals.consumers {
        let w = cx.window_of(cx.table.end_ns[row as usize]);
        if windows.contains(&w)
            && let Some(delivery) = consumers.get(&row)
        {
            *waited.entry(delivery.waited_on).or_default() += delivery.downstream_ns;
        }
    }
    waited
        .into_iter()
        .max_by_key(|&(callee, ns)| (ns, std::cmp::Reverse(callee)))
        .map_or(0, |(callee, _)| callee)
}

/// The slowest consumer spans of the lagging windows, then the oldest acks.
fn evidence(cx: &Context<'_>, signals: &Signals, start: usize, end: usize) -> Vec<u32> {
    let table = cx.table;
    let within = |at: i64| (start..=end).contains(&cx.window_of(at));
    let mut slowest: Vec<u32> = signals
        .consumers
        .iter()
        .copied()
        .filter(|&row| within(table.end_ns[row as usize]))
        .collect();
    slowest.sort_by_key(|&row| (std::cmp::Reverse(table.duration_ns(row)), row));
    slowest.truncate(crate::finding::MAX_EVIDENCE);
    let mut oldest: Vec<(u32, f64)> = signals
        .acks
        .iter()
        .filter(|&&(_, at, _)| within(at))
        .filter_map(|&(row, _, age)| Some((row, age?)))
        .collect();
    oldest.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    slowest.extend(oldest.into_iter().map(|(row, _)| row));
    slowest
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, SpanKind, TraceId};

    use super::*;
    use crate::config::Thresholds;

    const MS: i64 = 1_000_000;

    /// How the consumers behave from 10 s on.
    #[derive(Clone, Copy)]
    enum Fault {
        None,
        /// Their own code takes this long (ms).
        SlowSelf(i64),
        /// Their call to payments takes this long (ms).
        SlowCall(i64),
    }

    struct Spans {
        spans: Vec<Span>,
        next: u32,
    }

    impl Spans {
        fn span(
            &mut self,
            trace: u32,
            service: &str,
            name: &str,
            kind: SpanKind,
            start: i64,
            end: i64,
        ) -> &mut Span {
            self.next += 1;
            let mut trace_id = [0u8; 16];
            trace_id[..4].copy_from_slice(&trace.to_be_bytes());
            let mut span_id = [0u8; 8];
            span_id[..4].copy_from_slice(&self.next.to_be_bytes());
            let mut span = Span::new(TraceId(trace_id), SpanId(span_id), name);
            span.kind = kind;
            span.start_ns = start as u64;
            span.end_ns = end as u64;
            span.resource = Arc::new(Resource::with_service(service));
            self.spans.push(span);
            self.spans.last_mut().unwrap()
        }

        fn broker(
            &mut self,
            trace: u32,
            operation: &str,
            message: &str,
            at: i64,
            age_ms: Option<i64>,
        ) {
            let span = self.span(
                trace,
                "broker",
                &format!("{operation} jobs"),
                SpanKind::Server,
                at,
                at + MS,
            );
            span.attributes
                .insert("messaging.operation.name", operation);
            span.attributes.insert("messaging.destination.name", "jobs");
            span.attributes.insert("messaging.message.id", message);
            if let Some(age) = age_ms {
                span.attributes.insert("queue.age_ms", age);
            }
        }
    }

    /// Five messages a second for 20 s; one consumer at a time, so a slow consumer
    /// lets a backlog build.
    fn run(fault: Fault) -> Vec<Span> {
        let mut spans = Spans {
            spans: Vec::new(),
            next: 0,
        };
        let mut free_at = 0;
        for i in 0..100u32 {
            let message = format!("m-{i}");
            let enqueued = i64::from(i) * 200 * MS;
            spans.broker(i, "enqueue", &message, enqueued, None);
            let (own, call) = match fault {
                Fault::SlowSelf(ms) if enqueued >= 10_000 * MS => (ms, 20),
                Fault::SlowCall(ms) if enqueued >= 10_000 * MS => (10, ms),
                _ => (10, 20),
            };
            let start = (enqueued + 5 * MS).max(free_at);
            let end = start + (own + call) * MS;
            free_at = end;
            let process = spans.span(i, "worker", "process jobs", SpanKind::Consumer, start, end);
            process
                .attributes
                .insert("messaging.destination.name", "jobs");
            process
                .attributes
                .insert("messaging.message.id", message.as_str());
            let parent = process.span_id;
            let call_start = start + own * MS;
            let charge = spans.span(
                i,
                "worker",
                "POST /charge",
                SpanKind::Client,
                call_start,
                end,
            );
            charge.parent_span_id = Some(parent);
            charge.attributes.insert("server.address", "payments");
            spans.broker(
                i,
                "ack",
                &message,
                end + MS,
                Some((end + 2 * MS - enqueued) / MS),
            );
        }
        spans.spans
    }

    fn check(spans: &[Span]) -> Vec<Finding> {
        let table = crate::table::from_spans(spans);
        let thresholds = Thresholds::demo();
        ConsumerLag.check(&Context::new(&table, &thresholds))
    }

    #[test]
    fn consumers_whose_own_processing_slowed_lag_critically() {
        let found = check(&run(Fault::SlowSelf(600)));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::ConsumerLag);
        assert_eq!(f.subject, Subject::Service("worker".into()));
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.figure("age").unwrap_or_default() > 2_000.0, "{f:#?}");
        assert!(
            f.figure("backlog_growth").unwrap_or_default() > 0.5,
            "{f:#?}"
        );
        assert!(f.figure("self").unwrap_or_default() > 400.0, "{f:#?}");
        assert!(f.summary.contains("own processing slowed"), "{}", f.summary);
        assert!(f.summary.contains("queue jobs"), "{}", f.summary);
        // Lag shows within two windows of the change, before the slow ones ack.
        let onset = f.onset_ns.unwrap_or_default();
        assert!((10_000 * MS..=12_000 * MS).contains(&onset), "{onset}");
    }

    #[test]
    fn consumers_waiting_on_a_slow_dependency_lag_as_a_warning_that_names_it() {
        let found = check(&run(Fault::SlowCall(600)));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.summary.contains("waiting on payments"), "{}", f.summary);
        assert!(f.figure("downstream").unwrap_or_default() > 400.0, "{f:#?}");
        assert!(f.figure("self").unwrap_or(f64::MAX) < 50.0, "{f:#?}");
    }

    #[test]
    fn consumers_that_keep_up_do_not_lag() {
        assert!(check(&run(Fault::None)).is_empty());
        // Slower, but still well within the message rate: no backlog, no lag.
        assert!(check(&run(Fault::SlowSelf(100))).is_empty());
    }

    #[test]
    fn an_unanswered_enqueue_is_not_a_waiting_message() {
        let mut spans = run(Fault::None);
        // Forty enqueues whose callers gave up: no answer, and nothing enqueued.
        for i in 0..40u32 {
            let mut span = Span::new(TraceId([9; 16]), SpanId([9; 8]), "enqueue jobs");
            span.kind = SpanKind::Server;
            span.start_ns = (11_000 + u64::from(i) * 10) * 1_000_000;
            span.end_ns = span.start_ns + 2_000_000_000;
            span.attributes
                .insert("messaging.operation.name", "enqueue");
            span.attributes.insert("messaging.destination.name", "jobs");
            span.attributes
                .insert("messaging.message.id", format!("lost-{i}"));
            span.attributes.insert("http.request.method", "POST");
            spans.push(span);
        }
        assert!(check(&spans).is_empty(), "{:#?}", check(&spans));
    }

    /// The first 14 s of `run(fault)`, with no consumer finishing after 10 s: no
    /// consumer span, no ack; the consumers' calls end (or not) as `run` made them.
    fn hung(fault: Fault, calls: bool) -> Vec<Span> {
        let hung_from = 10_000 * MS as u64;
        run(fault)
            .into_iter()
            .filter(|span| span.end_ns < 14_000 * MS as u64)
            .filter(|span| {
                let late = span.end_ns >= hung_from;
                let consumer = span.kind == SpanKind::Consumer;
                let ack = span.name == "ack jobs";
                let call = span.kind == SpanKind::Client;
                !(late && (consumer || ack || (call && !calls)))
            })
            .collect()
    }

    #[test]
    fn consumers_that_finish_nothing_lag_critically_unless_their_calls_tell_why() {
        let found = check(&hung(Fault::SlowSelf(900), false));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, Severity::Critical);
        assert!(
            found[0].summary.contains("stopped or hang"),
            "{}",
            found[0].summary
        );

        let found = check(&hung(Fault::SlowCall(900), true));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(
            found[0].summary.contains("calls to payments take 900 ms"),
            "{}",
            found[0].summary
        );
    }
}
