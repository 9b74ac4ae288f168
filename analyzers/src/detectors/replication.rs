//! Replication lag, Raft and quorum KV: how far behind each follower or replica is, and
//! where the time goes.
//!
//! ```text
//!  leader   raft.append_entries (client: raft.peer_id, raft.lag.ms, raft.lag.entries) ─┐
//!             └─► (agents) ─► follower raft.append_entries (server: its work, fsync) ──┤ follower time
//!                                                                                       │ vs network
//!  coordinator kv.put ─┬─► client ─► (agents) ─► replica's server span (its write) ─────┘
//!                      ├─► client ─► …            the replica whose client span ends last
//!                      └─► kv.replicate (kv.replication.lag_ms)  is the one that lagged
//! ```
//!
//! **Symptom**: a Raft follower or a KV replica falls behind the leader or the writes'
//! coordinators, so it serves old data and a leader change onto it loses time.
//! **Rule**: per follower and window, the highest lag the leader reports for it
//! (`raft.lag.ms`: the age of the oldest entry it still has to send; only leaders of the
//! newest term seen count, a deposed leader's view is not the cluster's) and the highest
//! KV replication tail it causes (`kv.replication.lag_ms` of the writes whose last ack
//! it was, the coordinator itself when its own copy came last; a replica that never
//! acked counts the time until the coordinator gave up). A window is abnormal above
//! `replication_lag_warning_ms` (a window without observations keeps the level of the
//! one before); the onset is the first abnormal window that sticks (two of three).
//! Critical when the lag's p99 over the abnormal period passes
//! `replication_lag_critical_ms`. These are the replica-lag alert levels of common
//! practice that PRODUCT.md §7 adopts (> 30 s warning, > 5 min critical), scaled for the
//! demo.
//! **Where the time goes**: each leader→follower call is paired with the follower's own
//! server span below it (through any proxies). The follower's share of the round trip,
//! and whether the calls reached it at all, tell a slow follower (its disk, its CPU)
//! from a slow or cut network: the latency breakdown that Dapper-style tracing gives
//! every RPC (Sigelman et al., 2010).

use std::collections::HashMap;

use faultline_model::SpanKind;

use crate::detector::{Context, Detector, onset};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::index::Index;
use crate::table::{Cell, SpanTable};

#[derive(Debug, Default)]
pub struct ReplicationLag;

impl Detector for ReplicationLag {
    fn name(&self) -> &'static str {
        "replication"
    }

    fn symptom(&self) -> &'static str {
        "A Raft follower or KV replica falls behind, and whether its own work or the network is why."
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let mut samples = raft_samples(cx);
        samples.extend(kv_samples(cx));
        if samples.is_empty() {
            return Vec::new();
        }
        samples.sort_by_key(|s| (s.follower, s.window));
        samples
            .chunk_by(|a, b| a.follower == b.follower)
            .filter_map(|group| follower_finding(cx, group))
            .collect()
    }
}

/// Who is behind: an instance when the spans say which, else the Raft member id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Follower {
    Instance(u32),
    RaftMember(i64),
}

impl Follower {
    fn name(self, table: &SpanTable) -> String {
        match self {
            Follower::Instance(id) => table.str(id).to_owned(),
            Follower::RaftMember(id) => format!("raft member {id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Raft,
    Kv,
}

/// One observation of a follower's lag.
#[derive(Debug, Clone, Copy)]
struct Sample {
    follower: Follower,
    window: usize,
    source: Source,
    lag_ms: f64,
    /// `raft.lag.entries` (Raft only).
    entries: Option<i64>,
    /// The leader's (coordinator's) call to the follower.
    call: u32,
    /// The follower's own server span for that call, when it has one.
    handler: Option<u32>,
}

/// Proxy hops allowed between a call and the follower's span that handles it (the
/// demo has two: the caller's and the callee's sidecar).
const MAX_HOPS: usize = 4;

fn raft_samples(cx: &Context<'_>) -> Vec<Sample> {
    let table = cx.table;
    let Some(append) = table.strings.find("raft.append_entries") else {
        return Vec::new();
    };
    let lag_ms = table.attribute("raft.lag.ms");
    if lag_ms.is_empty() {
        return Vec::new();
    }
    let index = cx.index();
    let is_call = |row: u32| {
        table.name[row as usize] == append && table.kind[row as usize] == SpanKind::Client
    };
    // The follower's handling of each call (its server span, fsync included).
    let mut handler_of: HashMap<u32, u32> = HashMap::new();
    for row in 0..table.len() as u32 {
        if table.name[row as usize] == append
            && table.kind[row as usize] == SpanKind::Server
            && let Some(call) = ancestor(index, row, is_call)
        {
            handler_of.insert(call, row);
        }
    }
    // Raft member id → instance, from the members' own spans.
    let mut instance_of: HashMap<i64, u32> = HashMap::new();
    for (row, cell) in table.attribute("raft.node_id").iter() {
        let instance = table.instance[row as usize];
        if instance != 0
            && let Some(id) = integer(table, cell)
        {
            instance_of.entry(id).or_insert(instance);
        }
    }
    let peer_id = table.attribute("raft.peer_id");
    let entries = table.attribute("raft.lag.entries");
    // A leader that lost its term (deposed while cut off) goes on reporting its own
    // view of the followers until it learns of it: only the newest term seen so far
    // speaks for the cluster.
    let terms = table.attribute("raft.term");
    let term_of = |row: u32| terms.get(row).and_then(|cell| integer(table, cell));
    let mut newest = vec![i64::MIN; cx.windows()];
    for (row, _) in lag_ms.iter().filter(|&(row, _)| is_call(row)) {
        if let Some(term) = term_of(row) {
            let window = cx.window_of(table.start_ns[row as usize]);
            newest[window] = newest[window].max(term);
        }
    }
    for window in 1..newest.len() {
        newest[window] = newest[window].max(newest[window - 1]);
    }
    lag_ms
        .iter()
        .filter(|&(row, _)| is_call(row))
        .filter(|&(row, _)| {
            let window = cx.window_of(table.start_ns[row as usize]);
            term_of(row).is_none_or(|term| term >= newest[window])
        })
        .filter_map(|(row, lag)| {
            let member = peer_id.get(row).and_then(|cell| integer(table, cell));
            let follower = match (member.and_then(|id| instance_of.get(&id)), member) {
                (Some(&instance), _) => Follower::Instance(instance),
                (None, _) if table.peer[row as usize] != 0 => {
                    Follower::Instance(table.peer[row as usize])
                }
                (None, Some(id)) => Follower::RaftMember(id),
                (None, None) => return None,
            };
            Some(Sample {
                follower,
                window: cx.window_of(table.start_ns[row as usize]),
                source: Source::Raft,
                lag_ms: number(table, lag)?,
                entries: entries.get(row).and_then(|cell| integer(table, cell)),
                call: row,
                handler: handler_of.get(&row).copied(),
            })
        })
        .collect()
}

fn kv_samples(cx: &Context<'_>) -> Vec<Sample> {
    let table = cx.table;
    let Some(replicate) = table.strings.find("kv.replicate") else {
        return Vec::new();
    };
    let writes: Vec<u32> = ["kv.put", "kv.delete"]
        .iter()
        .filter_map(|name| table.strings.find(name))
        .collect();
    let index = cx.index();
    let is_write = |row: u32| writes.contains(&table.name[row as usize]);
    // A replica call: an outgoing span straight under a write, to a known address.
    let is_replica_call = |row: u32| {
        table.kind[row as usize] == SpanKind::Client
            && table.peer[row as usize] != 0
            && index.parent(row).is_some_and(is_write)
    };
    // The replica call of each write that ended last: the replica that acked last (or
    // never) is the one the write's replication waited for.
    let mut last_call: HashMap<u32, u32> = HashMap::new();
    // The replica's own server span for each call (of the write's service: not a proxy).
    let mut handler_of: HashMap<u32, u32> = HashMap::new();
    for row in 0..table.len() as u32 {
        let r = row as usize;
        if is_replica_call(row) {
            if let Some(write) = index.parent(row) {
                let last = last_call.entry(write).or_insert(row);
                if table.end_ns[r] > table.end_ns[*last as usize] {
                    *last = row;
                }
            }
        } else if table.kind[r] == SpanKind::Server
            && let Some(call) = ancestor(index, row, is_replica_call)
            && index
                .parent(call)
                .is_some_and(|write| table.service[write as usize] == table.service[r])
        {
            handler_of.insert(call, row);
        }
    }
    // The instance behind each address the calls went to, from the calls that arrived:
    // addresses need not be instance names.
    let mut instance_at: HashMap<u32, u32> = HashMap::new();
    for (&call, &handler) in &handler_of {
        let instance = table.instance[handler as usize];
        if instance != 0 {
            instance_at
                .entry(table.peer[call as usize])
                .and_modify(|known| *known = (*known).min(instance))
                .or_insert(instance);
        }
    }
    let reported = table.attribute("kv.replication.lag_ms");
    (0..table.len() as u32)
        .filter(|&row| table.name[row as usize] == replicate)
        .filter_map(|row| {
            let r = row as usize;
            let write = index.parent(row).filter(|&w| is_write(w))?;
            // A replica that never acked was behind for at least as long as the
            // coordinator waited for it.
            let waited = table.error[r].then(|| table.duration_ns(row) as f64 / 1e6);
            let lag_ms = match (reported.get(row).and_then(|c| number(table, c)), waited) {
                (Some(lag), Some(waited)) => lag.max(waited),
                (lag, waited) => lag.or(waited)?,
            };
            // The tail ends with the last ack. A remote replica's call ending then is
            // the laggard; when every remote call was over well before, the tail was
            // the coordinator's own copy, written locally with no call of its own:
            // then the whole tail is that node's own time.
            let tail_end = table.start_ns[r] + (lag_ms * 1e6) as i64;
            let slack = ((lag_ms * 1e6) as i64 / 10).max(1_000_000);
            let remote = last_call
                .get(&write)
                .copied()
                .filter(|&call| table.end_ns[call as usize] + slack >= tail_end);
            let (follower, call, handler) = match remote {
                Some(call) => {
                    let peer = table.peer[call as usize];
                    let instance = instance_at.get(&peer).copied().unwrap_or(peer);
                    (instance, call, handler_of.get(&call).copied())
                }
                None => (table.instance[write as usize], row, Some(row)),
            };
            (follower != 0).then_some(Sample {
                follower: Follower::Instance(follower),
                window: cx.window_of(table.start_ns[r]),
                source: Source::Kv,
                lag_ms,
                entries: None,
                call,
                handler,
            })
        })
        .collect()
}

/// A numeric attribute, also when written as text (the demo's Raft attributes are, as
/// are Jaeger's and Zipkin's numbers).
pub(crate) fn number(table: &SpanTable, cell: Cell) -> Option<f64> {
    cell.as_f64()
        .or_else(|| table.str(cell.as_str()?).trim().parse().ok())
}

pub(crate) fn integer(table: &SpanTable, cell: Cell) -> Option<i64> {
    cell.as_i64()
        .or_else(|| table.str(cell.as_str()?).trim().parse().ok())
}

/// The nearest ancestor of `row` (within [`MAX_HOPS`]) that `wanted` accepts.
fn ancestor(index: &Index, row: u32, wanted: impl Fn(u32) -> bool) -> Option<u32> {
    let mut current = index.parent(row);
    for _ in 0..MAX_HOPS {
        let parent = current?;
        if wanted(parent) {
            return Some(parent);
        }
        current = index.parent(parent);
    }
    None
}

/// The `q` quantile of `values` (sorted here), or `None` when empty.
pub(crate) fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) as f64 * q).round() as usize;
    values.get(rank).copied()
}

/// Where a follower's time goes during the lag, from the calls paired with its spans.
#[derive(Debug, Clone, Copy, Default)]
struct Breakdown {
    calls: usize,
    failed: usize,
    /// Calls whose handling by the follower is in the capture.
    reached: usize,
    /// Median time the follower spent handling a call (ms).
    follower_ms: Option<f64>,
    /// Median round trip minus the follower's time (ms).
    network_ms: Option<f64>,
    /// The follower's time over the round trips', summed over the paired calls.
    follower_share: Option<f64>,
}

fn breakdown<'a>(table: &SpanTable, samples: impl Iterator<Item = &'a Sample>) -> Breakdown {
    let mut b = Breakdown::default();
    let mut follower = Vec::new();
    let mut network = Vec::new();
    let (mut handled_ns, mut round_trip_ns) = (0i64, 0i64);
    for sample in samples {
        b.calls += 1;
        b.failed += usize::from(table.error[sample.call as usize]);
        if let Some(handler) = sample.handler {
            b.reached += 1;
            let handled = table.duration_ns(handler);
            let round_trip = table.duration_ns(sample.call).max(handled);
            handled_ns += handled;
            round_trip_ns += round_trip;
            follower.push(handled as f64 / 1e6);
            network.push((round_trip - handled) as f64 / 1e6);
        }
    }
    b.follower_ms = quantile(&mut follower, 0.5);
    b.network_ms = quantile(&mut network, 0.5);
    b.follower_share = (round_trip_ns > 0).then(|| handled_ns as f64 / round_trip_ns as f64);
    b
}

/// What the breakdown says about the cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The calls fail or never reach the follower.
    CutOff,
    /// The follower itself takes the time.
    FollowerSlow,
    /// The time is spent between the two.
    NetworkSlow,
    /// Calls reach it and are handled as fast as before.
    Unknown,
}

/// Whether `now` is clearly above `before` (twice it and a millisecond more), or above
/// `floor_ms` when there is no earlier figure.
fn slower(now: Option<f64>, before: Option<f64>, floor_ms: f64) -> bool {
    now.is_some_and(|now| before.map_or(now > floor_ms, |before| now > 2.0 * before + 1.0))
}

/// The follower is the bottleneck when it takes most of each round trip and clearly
/// more than before; the network when the rest of the round trip grew; calls that mostly
/// never reach it, or fail, mean a cut link or a dead process.
fn verdict(during: &Breakdown, before: &Breakdown) -> Verdict {
    if during.calls == 0 {
        return Verdict::Unknown;
    }
    let calls = during.calls as f64;
    if (during.reached as f64) < 0.5 * calls {
        Verdict::CutOff
    } else if during.follower_share.is_some_and(|share| share >= 0.5)
        && slower(during.follower_ms, before.follower_ms, 10.0)
    {
        Verdict::FollowerSlow
    } else if slower(during.network_ms, before.network_ms, 10.0) {
        Verdict::NetworkSlow
    } else if during.failed as f64 >= 0.25 * calls {
        Verdict::CutOff
    } else {
        Verdict::Unknown
    }
}

/// The most common `error.type` of the failed calls.
fn common_error<'t>(table: &'t SpanTable, samples: &[&Sample]) -> Option<&'t str> {
    let errors = table.attribute("error.type");
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for sample in samples.iter().filter(|s| table.error[s.call as usize]) {
        if let Some(id) = errors.get(sample.call).and_then(Cell::as_str) {
            match counts.iter_mut().find(|(known, _)| *known == id) {
                Some((_, n)) => *n += 1,
                None => counts.push((id, 1)),
            }
        }
    }
    counts
        .iter()
        .max_by_key(|&&(_, n)| n)
        .map(|&(id, _)| table.str(id))
}

fn follower_finding(cx: &Context<'_>, samples: &[Sample]) -> Option<Finding> {
    let table = cx.table;
    let t = cx.thresholds;
    let windows = cx.windows();
    let mut lagging: Vec<Option<bool>> = vec![None; windows];
    for sample in samples {
        let over = sample.lag_ms > t.replication_lag_warning_ms;
        lagging[sample.window] = Some(lagging[sample.window].unwrap_or(false) || over);
    }
    let start = onset(&held(&lagging), 0)?;
    let end = (start..windows).rev().find(|&w| lagging[w] == Some(true))?;
    let (during, before): (Vec<&Sample>, Vec<&Sample>) = samples
        .iter()
        .filter(|s| s.window <= end)
        .partition(|s| s.window >= start);
    let lag_of = |source: Source| -> Vec<f64> {
        during
            .iter()
            .filter(|s| s.source == source)
            .map(|s| s.lag_ms)
            .collect()
    };
    let (mut raft_lag, mut kv_lag) = (lag_of(Source::Raft), lag_of(Source::Kv));
    let raft_p99 = quantile(&mut raft_lag, 0.99);
    let raft_max = raft_lag.last().copied();
    let kv_p99 = quantile(&mut kv_lag, 0.99);
    let kv_max = kv_lag.last().copied();
    let lag_p99 = raft_p99.into_iter().chain(kv_p99).reduce(f64::max)?;
    let lag_max = raft_max.into_iter().chain(kv_max).reduce(f64::max)?;
    let entries = during.iter().filter_map(|s| s.entries).max();
    let severity = if lag_p99 > t.replication_lag_critical_ms {
        Severity::Critical
    } else {
        Severity::Warning
    };

    // The breakdown comes from Raft when the follower is a Raft member (one call per
    // append), else from the KV's replica writes.
    let source = if raft_p99.is_some() {
        Source::Raft
    } else {
        Source::Kv
    };
    let in_source: Vec<&Sample> = during
        .iter()
        .copied()
        .filter(|s| s.source == source)
        .collect();
    let now = breakdown(table, in_source.iter().copied());
    let then = breakdown(table, before.iter().copied().filter(|s| s.source == source));
    let verdict = verdict(&now, &then);

    let name = samples[0].follower.name(table);
    let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
    let behind = match (raft_p99, entries, kv_p99) {
        (Some(_), Some(entries), _) => format!(
            "{name} is {} behind the Raft leader ({entries} entries, p99 {})",
            seconds(lag_max),
            seconds(lag_p99)
        ),
        (Some(_), None, _) => format!(
            "{name} is {} behind the Raft leader (p99 {})",
            seconds(lag_max),
            seconds(lag_p99)
        ),
        (None, _, _) => format!(
            "{name} acknowledges KV replica writes up to {} late (p99 {})",
            seconds(lag_max),
            seconds(lag_p99)
        ),
    };
    let calls = match source {
        Source::Raft => "appends",
        Source::Kv => "replica writes",
    };
    let cause = match verdict {
        Verdict::CutOff => format!(
            "{} of {} {calls} sent to it failed{} and {} never reached it: the link to it or the node itself is failing, not its disk",
            now.failed,
            now.calls,
            common_error(table, &in_source).map_or_else(String::new, |error| format!(" ({error})")),
            now.calls - now.reached,
        ),
        Verdict::FollowerSlow => format!(
            "it takes {:.0} ms to handle each of the {calls} ({}), {:.0} % of the round trip: the time goes on {name} itself (its disk or CPU), not the network",
            now.follower_ms.unwrap_or(0.0),
            then.follower_ms.map_or_else(
                || "no earlier figure".to_owned(),
                |ms| format!("{ms:.1} ms before")
            ),
            now.follower_share.unwrap_or(0.0) * 100.0
        ),
        Verdict::NetworkSlow => format!(
            "{calls} take {:.0} ms on the way to and from {name} but only {:.0} ms on it: the time goes on the network",
            now.network_ms.unwrap_or(0.0),
            now.follower_ms.unwrap_or(0.0)
        ),
        Verdict::Unknown => format!(
            "the {calls} that reach it are handled in {:.0} ms as before, and {} of {} failed",
            now.follower_ms.unwrap_or(0.0),
            now.failed,
            now.calls
        ),
    };

    let mut figures = vec![
        Figure::new("lag_p99", lag_p99, "ms"),
        Figure::new("lag_max", lag_max, "ms"),
    ];
    if let Some(entries) = entries {
        figures.push(Figure::new("lag_entries", entries as f64, "entries"));
    }
    if let (Some(p99), Some(max)) = (raft_p99, raft_max) {
        figures.push(Figure::new("raft_lag_p99", p99, "ms"));
        figures.push(Figure::new("raft_lag_max", max, "ms"));
    }
    if let (Some(p99), Some(max)) = (kv_p99, kv_max) {
        figures.push(Figure::new("kv_lag_p99", p99, "ms"));
        figures.push(Figure::new("kv_lag_max", max, "ms"));
    }
    figures.push(Figure::new("calls", now.calls as f64, ""));
    figures.push(Figure::new(
        "reached_share",
        now.reached as f64 / now.calls.max(1) as f64,
        "ratio",
    ));
    figures.push(Figure::new(
        "failed_share",
        now.failed as f64 / now.calls.max(1) as f64,
        "ratio",
    ));
    if let Some(ms) = now.follower_ms {
        figures.push(Figure::new("follower_processing_p50", ms, "ms"));
    }
    if let Some(ms) = then.follower_ms {
        figures.push(Figure::new("baseline_follower_processing_p50", ms, "ms"));
    }
    if let Some(ms) = now.network_ms {
        figures.push(Figure::new("network_p50", ms, "ms"));
    }
    if let Some(share) = now.follower_share {
        figures.push(Figure::new("follower_share", share, "ratio"));
    }
    figures.push(Figure::new(
        "follower_bound",
        f64::from(u8::from(verdict == Verdict::FollowerSlow)),
        "bool",
    ));

    // Evidence: the follower's slowest handling when it is the bottleneck, else the
    // calls that saw the most lag.
    let mut telling: Vec<&Sample> = during.clone();
    if verdict == Verdict::FollowerSlow {
        telling.retain(|s| s.handler.is_some() && s.source == source);
        telling.sort_by_key(|s| std::cmp::Reverse(s.handler.map_or(0, |h| table.duration_ns(h))));
    } else {
        telling.sort_by(|a, b| b.lag_ms.total_cmp(&a.lag_ms));
    }

    Some(Finding {
        kind: FindingKind::ReplicationLag,
        severity,
        subject: Subject::Node(name),
        window: Window {
            start_ns: cx.window_start(start),
            end_ns: cx.window_start(end) + cx.window_ns,
        },
        onset_ns: Some(cx.window_start(start)),
        summary: format!("{behind} since +{onset_s:.0} s; {cause}."),
        figures,
        evidence: cx.evidence(telling.iter().map(|s| s.call)),
        detector: "replication",
    })
}

/// Windows without an observation keep the state of the one before, for up to
/// [`MAX_HELD_WINDOWS`]: a lag or a clock offset is a level that stays until a new
/// observation says otherwise, so a quiet window (or the newest, still filling) neither
/// breaks nor fakes a rise that sticks.
pub(crate) fn held(observed: &[Option<bool>]) -> Vec<bool> {
    let mut state = Vec::with_capacity(observed.len());
    let (mut last, mut quiet) = (false, 0);
    for &window in observed {
        match window {
            Some(abnormal) => {
                last = abnormal;
                quiet = 0;
            }
            None => {
                quiet += 1;
                if quiet > MAX_HELD_WINDOWS {
                    last = false;
                }
            }
        }
        state.push(last);
    }
    state
}

/// How long a level is held through windows without observations.
const MAX_HELD_WINDOWS: usize = 2;

/// A lag for people: "850 ms", "15.2 s".
fn seconds(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, SpanKind, StatusCode, TraceId, Value};

    use super::*;
    use crate::config::Thresholds;
    use crate::table::from_spans;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000_000 * MS;

    fn resource(node: &str) -> Arc<Resource> {
        let mut resource = Resource::with_service("faultline-node");
        resource.attributes.insert("faultline.node", node);
        Arc::new(resource)
    }

    fn span(trace: TraceId, id: u64, name: &str, start_ms: u64, end_ms: u64) -> Span {
        let mut span = Span::new(trace, SpanId(id.to_be_bytes()), name);
        span.start_ns = T0 + start_ms * MS;
        span.end_ns = T0 + end_ms * MS;
        span
    }

    /// One append from node-1 to node-2 at `at_ms`: the leader's client span (lag
    /// `lag_ms`, `round_trip_ms` long) and, when it arrived, node-2's server span
    /// (`handled_ms` long).
    fn append(
        n: u64,
        at_ms: u64,
        lag_ms: i64,
        round_trip_ms: u64,
        handled_ms: Option<u64>,
    ) -> Vec<Span> {
        let trace = TraceId([
            n as u8,
            (n >> 8) as u8,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
        ]);
        let mut call = span(
            trace,
            n * 2 + 1,
            "raft.append_entries",
            at_ms,
            at_ms + round_trip_ms,
        );
        call.kind = SpanKind::Client;
        call.resource = resource("node-1");
        call.attributes.insert("raft.node_id", Value::Int(1));
        call.attributes.insert("raft.peer_id", Value::Int(2));
        call.attributes.insert("raft.lag.ms", Value::Int(lag_ms));
        call.attributes
            .insert("raft.lag.entries", Value::Int(lag_ms / 50));
        call.attributes
            .insert("server.address", Value::from("node-2"));
        let mut spans = vec![];
        if let Some(handled) = handled_ms {
            let mut server = span(
                trace,
                n * 2 + 2,
                "raft.append_entries",
                at_ms,
                at_ms + handled,
            );
            server.kind = SpanKind::Server;
            server.parent_span_id = Some(call.span_id);
            server.resource = resource("node-2");
            server.attributes.insert("raft.node_id", Value::Int(2));
            spans.push(server);
        } else {
            call.status.code = StatusCode::Error;
            call.attributes
                .insert("error.type", Value::from("unreachable"));
        }
        spans.insert(0, call);
        spans
    }

    /// 10 s of healthy appends every 100 ms, then 5 s of `fault` appends.
    fn capture(fault: impl Fn(u64, u64) -> Vec<Span>) -> Vec<Span> {
        let mut spans = Vec::new();
        for i in 0..100 {
            spans.extend(append(i, i * 100, 2, 2, Some(1)));
        }
        for i in 100..150 {
            spans.extend(fault(i, i * 100));
        }
        spans
    }

    fn run(spans: &[Span]) -> Vec<Finding> {
        let table = from_spans(spans);
        let thresholds = Thresholds::demo();
        let cx = Context::new(&table, &thresholds);
        ReplicationLag.check(&cx)
    }

    #[test]
    fn a_slow_follower_is_named_and_its_own_time_shown() {
        // Lag grows 100 ms per append; node-2 spends 75 of each 76 ms itself.
        let spans = capture(|i, at| append(i, at, ((i - 99) * 100) as i64, 76, Some(75)));
        let found = run(&spans);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.subject, Subject::Node("node-2".into()));
        assert_eq!(f.severity, Severity::Warning, "p99 lag 4.9 s < 5 s");
        assert_eq!(f.figure("follower_bound"), Some(1.0));
        assert!(f.figure("follower_share").is_some_and(|s| s > 0.9));
        assert!(f.figure("baseline_follower_processing_p50") == Some(1.0));
        assert!(f.summary.contains("node-2 itself"), "{}", f.summary);
        let onset_s = (f.onset_ns.unwrap_or(0) - T0 as i64) as f64 / 1e9;
        assert!((10.0..=11.0).contains(&onset_s), "onset at {onset_s}");
    }

    #[test]
    fn a_cut_off_follower_is_not_called_slow() {
        let spans = capture(|i, at| append(i, at, ((i - 99) * 200) as i64, 1, None));
        let found = run(&spans);
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.severity, Severity::Critical, "lag reaches 10 s");
        assert_eq!(f.figure("reached_share"), Some(0.0));
        assert_eq!(f.figure("follower_bound"), Some(0.0));
        assert!(
            f.summary.contains("the link to it or the node itself"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_slow_network_is_told_from_a_slow_follower() {
        let spans = capture(|i, at| append(i, at, 900, 300, Some(1)));
        let found = run(&spans);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].figure("follower_bound"), Some(0.0));
        assert!(found[0].summary.contains("network"), "{}", found[0].summary);
    }

    #[test]
    fn healthy_followers_and_blips_give_nothing() {
        // One append far behind (a new leader probing), then healthy again.
        let spans = capture(|i, at| {
            let lag = if i == 120 { 15_000 } else { 3 };
            append(i, at, lag, 2, Some(1))
        });
        assert!(run(&spans).is_empty());
    }

    /// A write coordinated by `coordinator` at `at_ms`, replicated to the two other
    /// nodes; node-2 takes `slow_ms` to apply its copy (its own, when it coordinates).
    fn kv_write(n: u64, at_ms: u64, coordinator: &str, slow_ms: u64) -> Vec<Span> {
        let trace = TraceId([
            n as u8,
            (n >> 8) as u8,
            2,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
        ]);
        let id = n * 8;
        let mut put = span(trace, id, "kv.put", at_ms, at_ms + 2);
        put.kind = SpanKind::Server;
        put.resource = resource(coordinator);
        let mut spans = Vec::new();
        let mut tail = 1;
        for (k, replica) in ["node-1", "node-2", "node-3"].into_iter().enumerate() {
            if replica == coordinator {
                if replica == "node-2" {
                    tail = tail.max(slow_ms);
                }
                continue;
            }
            let took = if replica == "node-2" { slow_ms } else { 1 };
            tail = tail.max(took);
            let mut call = span(
                trace,
                id + 1 + 2 * k as u64,
                "PUT",
                at_ms + 1,
                at_ms + 1 + took,
            );
            call.kind = SpanKind::Client;
            call.parent_span_id = Some(put.span_id);
            call.resource = resource(coordinator);
            call.attributes.insert("server.address", replica);
            let mut handled = span(
                trace,
                id + 2 + 2 * k as u64,
                "PUT /kv-replica/{key}",
                at_ms + 1,
                at_ms + took,
            );
            handled.kind = SpanKind::Server;
            handled.parent_span_id = Some(call.span_id);
            handled.resource = resource(replica);
            spans.push(call);
            spans.push(handled);
        }
        let mut replicate = span(trace, id + 7, "kv.replicate", at_ms + 2, at_ms + 1 + tail);
        replicate.kind = SpanKind::Internal;
        replicate.parent_span_id = Some(put.span_id);
        replicate.resource = resource(coordinator);
        replicate
            .attributes
            .insert("kv.replication.lag_ms", (tail - 1) as f64);
        spans.push(replicate);
        spans.push(put);
        spans
    }

    #[test]
    fn a_slow_kv_replica_is_found_remote_or_local() {
        for coordinator in ["node-1", "node-2"] {
            let mut spans = Vec::new();
            for i in 0..150u64 {
                let slow = if i >= 100 { 800 } else { 1 };
                spans.extend(kv_write(i, i * 100, coordinator, slow));
            }
            let found = run(&spans);
            assert_eq!(found.len(), 1, "{coordinator}: {found:?}");
            let f = &found[0];
            assert_eq!(f.subject, Subject::Node("node-2".into()), "{coordinator}");
            assert_eq!(f.figure("kv_lag_max"), Some(799.0), "{coordinator}");
            assert_eq!(f.figure("follower_bound"), Some(1.0), "{}", f.summary);
            assert!(
                f.summary.contains("acknowledges KV replica writes"),
                "{}",
                f.summary
            );
        }
    }

    #[test]
    fn a_level_is_held_through_quiet_windows_but_not_forever() {
        let (t, f) = (Some(true), Some(false));
        assert_eq!(
            held(&[f, t, None, t, None, None, None, f]),
            [false, true, true, true, true, true, false, false]
        );
        assert_eq!(held(&[None, t, f, None]), [false, true, false, false]);
    }

    #[test]
    fn no_raft_or_kv_attributes_no_findings() {
        let spans: Vec<Span> = capture(|i, at| append(i, at, 9_000, 76, Some(75)))
            .into_iter()
            .map(|mut span| {
                span.name = "rpc".into();
                span
            })
            .collect();
        assert!(run(&spans).is_empty());
    }
}
