//! Clock skew: an instance whose clock disagrees with the others', estimated from many
//! observations rather than one.
//!
//! ```text
//!  client span on A ──► server span on B, outside it ──► B's offset to A (centred) ─┐
//!      (per window, per pair of instances: median; B skewed when most peers agree) ├─► ClockSkew
//!  kv.put on B minting "PHYSICAL.LOGICAL@NODE" ──► PHYSICAL − the span's own time ─┘   per instance
//! ```
//!
//! **Symptom**: one node's clock is off, so its timestamps, leases and versions are.
//! **Rule, from trace structure** (any system): a server span lies inside the client
//! span that called it, unless the two hosts' clocks disagree. For each cross-instance
//! client → server pair the server's offset is estimated as Jaeger's clock-skew adjuster
//! does (`model/adjuster/clockskew.go`, after Zipkin's `CorrectForClockSkew`): the shift
//! that centres the server span in its client span, splitting the network time evenly.
//! Per window and pair of instances the median of those shifts is the offset between
//! them, trusted when it exceeds `clock_skew_ms` and most of the pair's spans do lie
//! outside their parents. An instance is skewed when it is skewed against most of its
//! peers (with fewer than two peers nobody can tell whose clock is wrong).
//! **Rule, from hybrid logical clocks** (the demo's KV): a version's physical part is
//! the minting node's clock, so the versions a node mints on its own writes
//! (`kv.put`/`kv.delete`, `kv.version` = `PHYSICAL_MS.LOGICAL@NODE`) lie within the span
//! that minted them; the lower quartile of how far ahead they are, per window, is the
//! node's offset (a quartile, so that the occasional version merely carried forward
//! from a skewed peer's does not count). HLC replicas refuse versions more than their
//! maximum drift ahead (Kulkarni et al., "Logical Physical Clocks", 2014, §3), which
//! makes that drift (`clock_skew_critical_ms`) the critical level.
//! The onset is the first skewed window that sticks (two of three).

use std::collections::HashMap;

use faultline_model::SpanKind;

use super::replication::{held, integer, quantile};
use crate::detector::{Context, Detector, onset};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};

#[derive(Debug, Default)]
pub struct ClockSkew;

impl Detector for ClockSkew {
    fn name(&self) -> &'static str {
        "clock-skew"
    }

    fn symptom(&self) -> &'static str {
        "An instance's clock is off against its peers' (spans outside their callers, versions ahead)."
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let mut offsets = hlc_offsets(cx);
        offsets.extend(span_offsets(cx));
        if offsets.is_empty() {
            return Vec::new();
        }
        offsets.sort_by_key(|o| (o.instance, o.window));
        offsets
            .chunk_by(|a, b| a.instance == b.instance)
            .filter_map(|windows| instance_finding(cx, windows))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Versions minted ahead of the minting span.
    Hlc,
    /// Server spans outside their client spans.
    Spans,
}

/// One instance's estimated offset in one window.
#[derive(Debug, Clone)]
struct WindowOffset {
    instance: u32,
    window: usize,
    source: Source,
    /// Whether the window shows skew (windows that show none are kept: they end it).
    skewed: bool,
    /// The estimate (ms, positive: the instance's clock is ahead).
    offset_ms: f64,
    /// Observations behind it.
    observations: usize,
    /// Writes refused among them (HLC only).
    refused: usize,
    /// Rows that show it, most telling first.
    rows: Vec<u32>,
}

const MS: f64 = 1e6;

/// The physical part (ms) and node of a `PHYSICAL.LOGICAL@NODE` version.
fn parse_version(version: &str) -> Option<(i64, &str)> {
    let (clock, node) = version.split_once('@')?;
    let physical = clock
        .split_once('.')
        .map_or(clock, |(physical, _)| physical);
    Some((physical.parse().ok()?, node))
}

fn hlc_offsets(cx: &Context<'_>) -> Vec<WindowOffset> {
    let table = cx.table;
    let t = cx.thresholds;
    let writes: Vec<u32> = ["kv.put", "kv.delete"]
        .iter()
        .filter_map(|name| table.strings.find(name))
        .collect();
    if writes.is_empty() {
        return Vec::new();
    }
    // Raft member id → instance, to check that a version's node is the span's own.
    let mut instance_of: HashMap<i64, u32> = HashMap::new();
    for (row, cell) in table.attribute("raft.node_id").iter() {
        let instance = table.instance[row as usize];
        if instance != 0
            && let Some(id) = integer(table, cell)
        {
            instance_of.entry(id).or_insert(instance);
        }
    }
    // (instance, window, offset ms, row)
    let mut minted: Vec<(u32, usize, f64, u32)> = Vec::new();
    for (row, cell) in table.attribute("kv.version").iter() {
        let r = row as usize;
        let instance = table.instance[r];
        if instance == 0 || !writes.contains(&table.name[r]) {
            continue;
        }
        let Some((physical_ms, node)) = cell.as_str().and_then(|id| parse_version(table.str(id)))
        else {
            continue;
        };
        let minted_here = node
            .parse::<i64>()
            .ok()
            .and_then(|id| instance_of.get(&id))
            .is_none_or(|&owner| owner == instance);
        if !minted_here {
            continue;
        }
        // Within the span (its start floored to the version's millisecond) is no skew.
        let earliest = table.start_ns[r].div_euclid(1_000_000);
        let latest = table.end_ns[r].div_euclid(1_000_000) + 1;
        let ahead = physical_ms - physical_ms.clamp(earliest, latest);
        minted.push((instance, cx.window_of(table.start_ns[r]), ahead as f64, row));
    }
    minted.sort_by_key(|&(instance, window, _, row)| (instance, window, row));
    let mut offsets = Vec::new();
    for group in minted.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        if group.len() < 2 {
            // One version can be one carried forward from a peer's: not enough.
            continue;
        }
        let mut values: Vec<f64> = group.iter().map(|m| m.2).collect();
        let (Some(low), Some(high), Some(median)) = (
            quantile(&mut values, 0.25),
            quantile(&mut values, 0.75),
            quantile(&mut values, 0.5),
        ) else {
            continue;
        };
        // Most of the window's versions have to be off the same way.
        let skewed = low > t.clock_skew_ms || high < -t.clock_skew_ms;
        let mut rows: Vec<(bool, f64, u32)> = group
            .iter()
            .map(|&(_, _, ahead, row)| (table.error[row as usize], ahead.abs(), row))
            .collect();
        // Refused writes first, then the furthest ahead.
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
        offsets.push(WindowOffset {
            instance: group[0].0,
            window: group[0].1,
            source: Source::Hlc,
            skewed,
            offset_ms: median,
            observations: group.len(),
            refused: rows.iter().filter(|r| r.0).count(),
            rows: rows.iter().map(|r| r.2).collect(),
        });
    }
    offsets
}

/// Observations of one pair of instances in one window, oriented from `a` to `b`
/// (`a` < `b`): how far `b`'s clock is ahead of `a`'s.
#[derive(Debug, Clone, Copy)]
struct PairObservation {
    window: usize,
    a: u32,
    b: u32,
    offset_ms: f64,
    outside: bool,
    row: u32,
}

/// Observations of one pair needed before its median means anything.
const MIN_PAIR_OBSERVATIONS: usize = 3;

fn span_offsets(cx: &Context<'_>) -> Vec<WindowOffset> {
    let table = cx.table;
    let t = cx.thresholds;
    let index = cx.index();
    let mut observations: Vec<PairObservation> = Vec::new();
    for row in 0..table.len() as u32 {
        let c = row as usize;
        if table.kind[c] != SpanKind::Server {
            continue;
        }
        let Some(parent) = index.parent(row) else {
            continue;
        };
        let p = parent as usize;
        let (client, server) = (table.instance[p], table.instance[c]);
        // A client that gave up (an error) leaves its server span running on: not skew.
        if table.kind[p] != SpanKind::Client
            || client == 0
            || server == 0
            || client == server
            || table.error[p]
        {
            continue;
        }
        let (client_ns, server_ns) = (table.duration_ns(parent), table.duration_ns(row));
        if server_ns > client_ns {
            // It cannot fit whatever the clocks say (durations do not depend on them).
            continue;
        }
        let centred = table.start_ns[p] + (client_ns - server_ns) / 2;
        let offset_ms = (table.start_ns[c] - centred) as f64 / MS;
        let outside = table.start_ns[c] < table.start_ns[p] || table.end_ns[c] > table.end_ns[p];
        let (a, b, offset_ms) = if client < server {
            (client, server, offset_ms)
        } else {
            (server, client, -offset_ms)
        };
        observations.push(PairObservation {
            window: cx.window_of(table.start_ns[p]),
            a,
            b,
            offset_ms,
            outside,
            row,
        });
    }
    observations.sort_by_key(|o| (o.window, o.a, o.b, o.row));

    let mut offsets = Vec::new();
    for in_window in observations.chunk_by(|x, y| x.window == y.window) {
        // Per pair: (a, b, median offset of b to a, skewed?, rows outside).
        let mut pairs: Vec<(u32, u32, f64, bool, Vec<u32>)> = Vec::new();
        for pair in in_window.chunk_by(|x, y| (x.a, x.b) == (y.a, y.b)) {
            if pair.len() < MIN_PAIR_OBSERVATIONS {
                continue;
            }
            let mut values: Vec<f64> = pair.iter().map(|o| o.offset_ms).collect();
            let Some(median) = quantile(&mut values, 0.5) else {
                continue;
            };
            let outside: Vec<u32> = pair.iter().filter(|o| o.outside).map(|o| o.row).collect();
            let skewed = median.abs() > t.clock_skew_ms && 2 * outside.len() >= pair.len();
            pairs.push((pair[0].a, pair[0].b, median, skewed, outside));
        }
        let mut instances: Vec<u32> = pairs.iter().flat_map(|p| [p.0, p.1]).collect();
        instances.sort_unstable();
        instances.dedup();
        for instance in instances {
            // This instance's offset against each peer, and whether it is skewed.
            let against: Vec<(f64, bool, &Vec<u32>)> = pairs
                .iter()
                .filter(|p| p.0 == instance || p.1 == instance)
                .map(|p| {
                    let offset = if p.1 == instance { p.2 } else { -p.2 };
                    (offset, p.3, &p.4)
                })
                .collect();
            if against.len() < 2 {
                // Against a single peer nobody can tell whose clock is wrong.
                continue;
            }
            let mut off: Vec<f64> = against.iter().filter(|p| p.1).map(|p| p.0).collect();
            let same_sign = off.iter().all(|&o| o > 0.0) || off.iter().all(|&o| o < 0.0);
            let skewed = 2 * off.len() > against.len() && same_sign;
            if !skewed {
                off = against.iter().map(|p| p.0).collect();
            }
            let Some(offset_ms) = quantile(&mut off, 0.5) else {
                continue;
            };
            offsets.push(WindowOffset {
                instance,
                window: in_window[0].window,
                source: Source::Spans,
                skewed,
                offset_ms,
                observations: against.iter().map(|p| p.2.len()).sum(),
                refused: 0,
                rows: against
                    .iter()
                    .filter(|p| p.1)
                    .flat_map(|p| p.2.iter().copied())
                    .collect(),
            });
        }
    }
    offsets
}

fn instance_finding(cx: &Context<'_>, windows: &[WindowOffset]) -> Option<Finding> {
    let table = cx.table;
    let t = cx.thresholds;
    let mut observed: Vec<Option<bool>> = vec![None; cx.windows()];
    for w in windows {
        observed[w.window] = Some(observed[w.window].unwrap_or(false) || w.skewed);
    }
    let skewed = held(&observed);
    let start = onset(&skewed, 0)?;
    let end = (start..skewed.len())
        .rev()
        .find(|&w| observed[w] == Some(true))?;
    let during: Vec<&WindowOffset> = windows
        .iter()
        .filter(|w| w.skewed && (start..=end).contains(&w.window))
        .collect();
    let offset_of = |source: Source| {
        let mut values: Vec<f64> = during
            .iter()
            .filter(|w| w.source == source)
            .map(|w| w.offset_ms)
            .collect();
        quantile(&mut values, 0.5)
    };
    let (hlc, spans) = (offset_of(Source::Hlc), offset_of(Source::Spans));
    // Spans give the instance's clock against its peers'; versions give its HLC's
    // against its own spans (the same clock in most systems, so that the versions rule
    // fires when the HLC alone is off, as in the demo). The peers' view comes first.
    let offset = spans.or(hlc)?;
    let severity = if offset.abs() > t.clock_skew_critical_ms {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let count = |source: Source, field: fn(&WindowOffset) -> usize| -> usize {
        during
            .iter()
            .filter(|w| w.source == source)
            .map(|w| field(w))
            .sum()
    };
    let versions = count(Source::Hlc, |w| w.observations);
    let refused = count(Source::Hlc, |w| w.refused);
    let outside = count(Source::Spans, |w| w.rows.len());

    let instance = table.str(windows[0].instance).to_owned();
    let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
    let direction = |ms: f64| if ms >= 0.0 { "ahead of" } else { "behind" };
    let mut evidence_from = Vec::new();
    let mut how = Vec::new();
    if let Some(hlc) = hlc {
        how.push(format!(
            "the KV versions it mints are {} {} its own spans' time{}",
            amount(hlc),
            direction(hlc),
            if refused > 0 {
                format!(", and {refused} of its {versions} writes were refused")
            } else {
                String::new()
            }
        ));
    }
    if spans.is_some() {
        how.push(format!(
            "{outside} of its calls with other instances lie outside their caller's span"
        ));
    }
    for source in [Source::Hlc, Source::Spans] {
        evidence_from.extend(
            during
                .iter()
                .filter(|w| w.source == source)
                .flat_map(|w| w.rows.iter().copied()),
        );
    }
    let mut figures = vec![Figure::new("offset", offset, "ms")];
    if let Some(hlc) = hlc {
        figures.push(Figure::new("hlc_offset", hlc, "ms"));
        figures.push(Figure::new("versions_skewed", versions as f64, ""));
        figures.push(Figure::new("writes_refused", refused as f64, ""));
    }
    if let Some(spans) = spans {
        figures.push(Figure::new("span_offset", spans, "ms"));
        figures.push(Figure::new("spans_outside_parent", outside as f64, ""));
    }
    figures.push(Figure::new(
        "skewed_windows",
        (start..=end).filter(|&w| observed[w] == Some(true)).count() as f64,
        "",
    ));
    Some(Finding {
        kind: FindingKind::ClockSkew,
        severity,
        subject: Subject::Node(instance.clone()),
        window: Window {
            start_ns: cx.window_start(start),
            end_ns: cx.window_start(end) + cx.window_ns,
        },
        onset_ns: Some(cx.window_start(start)),
        summary: format!(
            "{instance}'s clock is {} {} the others' since +{onset_s:.0} s: {}; fix its time sync (NTP, chrony).",
            amount(offset),
            direction(offset),
            how.join("; ")
        ),
        figures,
        evidence: cx.evidence(evidence_from),
        detector: "clock-skew",
    })
}

/// An offset for people: "350 ms", "2.0 s" (without its sign).
fn amount(ms: f64) -> String {
    let ms = ms.abs();
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, StatusCode, TraceId};

    use super::*;
    use crate::config::Thresholds;
    use crate::table::from_spans;

    const NS_PER_MS: u64 = 1_000_000;
    const T0_MS: u64 = 1_700_000_000_000;

    fn span(trace: u64, id: u64, name: &str, node: &str, start_ms: u64, end_ms: u64) -> Span {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&trace.to_be_bytes());
        t[15] = 3;
        let mut span = Span::new(TraceId(t), SpanId(id.to_be_bytes()), name);
        span.start_ns = (T0_MS + start_ms) * NS_PER_MS;
        span.end_ns = (T0_MS + end_ms) * NS_PER_MS;
        let mut resource = Resource::with_service("faultline-node");
        resource.attributes.insert("faultline.node", node);
        span.resource = Arc::new(resource);
        span
    }

    fn run(spans: &[Span]) -> Vec<Finding> {
        let table = from_spans(spans);
        let thresholds = Thresholds::demo();
        let cx = Context::new(&table, &thresholds);
        ClockSkew.check(&cx)
    }

    /// 20 s of writes on every node every 100 ms; from 10 s node-2's versions are
    /// `ahead_ms` ahead of its spans and refused.
    fn writes(ahead_ms: u64) -> Vec<Span> {
        let mut spans = Vec::new();
        for i in 0..200u64 {
            let at = i * 100;
            for (k, node) in ["node-1", "node-2", "node-3"].into_iter().enumerate() {
                let n = i * 3 + k as u64;
                let mut put = span(n, n, "kv.put", node, at, at + 2);
                put.kind = SpanKind::Server;
                let skewed = node == "node-2" && at >= 10_000;
                let physical = T0_MS + at + 1 + if skewed { ahead_ms } else { 0 };
                put.attributes
                    .insert("kv.version", format!("{physical}.0@{}", k + 1));
                if skewed && ahead_ms > 500 {
                    put.status.code = StatusCode::Error;
                }
                spans.push(put);
            }
        }
        spans
    }

    #[test]
    fn versions_minted_ahead_show_the_node_clock() {
        let found = run(&writes(2000));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.subject, Subject::Node("node-2".into()));
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.figure("offset").is_some_and(|o| (o - 1999.0).abs() < 5.0),
            "{f:?}"
        );
        assert_eq!(f.figure("writes_refused"), Some(100.0));
        let onset_s = (f.onset_ns.unwrap_or(0) / 1_000_000 - T0_MS as i64) as f64 / 1e3;
        assert!((10.0..11.0).contains(&onset_s), "onset at {onset_s}");
    }

    #[test]
    fn a_small_offset_is_a_warning_and_none_is_nothing() {
        let found = run(&writes(300));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(run(&writes(0)).is_empty());
    }

    #[test]
    fn a_version_carried_forward_now_and_then_is_not_skew() {
        let mut spans = writes(0);
        // Every 10th write of node-1 carries a version 300 ms ahead (merged from a peer).
        for (i, s) in spans.iter_mut().enumerate() {
            if i % 30 == 0 {
                let physical = s.start_ns / NS_PER_MS + 300;
                s.attributes.insert("kv.version", format!("{physical}.0@1"));
            }
        }
        assert!(run(&spans).is_empty());
    }

    /// node-1 and node-3 call each other and node-2 every 50 ms (a 10 ms client span,
    /// an 8 ms server span); from 10 s node-2's spans are stamped `skew_ms` late.
    fn calls(skew_ms: u64) -> Vec<Span> {
        let nodes = ["node-1", "node-2", "node-3"];
        let mut spans = Vec::new();
        let mut id = 0;
        for i in 0..400u64 {
            let at = i * 50;
            for (from, to) in [(0, 1), (1, 2), (2, 0), (1, 0)] {
                id += 2;
                let mut client = span(id, id, "GET", nodes[from], at, at + 10);
                client.kind = SpanKind::Client;
                let shift = if to == 1 && at >= 10_000 { skew_ms } else { 0 };
                let back = if from == 1 && at >= 10_000 {
                    skew_ms
                } else {
                    0
                };
                let start = at + 1 + shift;
                let mut server = span(id, id + 1, "GET", nodes[to], start, start + 8);
                if back > 0 {
                    // node-2 is the caller: its own span is late, not the server's.
                    client.start_ns += back * NS_PER_MS;
                    client.end_ns += back * NS_PER_MS;
                }
                server.kind = SpanKind::Server;
                server.parent_span_id = Some(client.span_id);
                spans.push(client);
                spans.push(server);
            }
        }
        spans
    }

    #[test]
    fn servers_outside_their_callers_name_the_skewed_instance() {
        let found = run(&calls(400));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.subject, Subject::Node("node-2".into()));
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.figure("span_offset")
                .is_some_and(|o| (o - 400.0).abs() < 5.0),
            "{f:?}"
        );
    }

    #[test]
    fn servers_inside_their_callers_are_not_skew() {
        assert!(run(&calls(0)).is_empty());
    }
}
