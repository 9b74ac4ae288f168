//! Stale reads in the quorum KV, and the quorum settings that allow them.
//!
//! ```text
//!  kv.get (kv.r, kv.n) ─┐  per window: smallest R read with,   ┌─► R + W ≤ N: KvQuorum (the cause)
//!  kv.put (kv.w, kv.n) ─┴► smallest W written with (kept until ─┤
//!                          the next window that says otherwise) └─► else: the node serving them
//!  kv.stale_read (kv.stale=true) ──────────────────────────────────┘
//! ```
//!
//! **Symptom**: a read returned an older version than another replica held.
//! **Rule**: a Dynamo-style store is strongly consistent for a key only when its read
//! and write quorums overlap, R + W > N (DeCandia et al., "Dynamo", SOSP 2007, §4.5;
//! Gifford's weighted voting, 1979). Reads and writes carry their R, W and N, so the
//! quorums in force are known window by window. Stale reads seen while R + W ≤ N are
//! the quorums' doing: one critical finding on the quorum settings. A switch to
//! non-overlapping quorums with no stale read seen yet is a warning (it is a change
//! from the overlapping quorums before); settings that never overlapped are info.
//! Stale reads despite overlapping quorums are put on the node that served them (its
//! copy was among the stale ones); with overlap they need a write in flight, one that
//! failed half-way or versions ordered wrongly. One or two are info, more a warning,
//! and critical once they are `stale_read_share_critical` of that node's reads.

use std::collections::HashMap;

use faultline_model::SpanKind;

use super::replication::integer;
use crate::detector::{Context, Detector, onset};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::table::SpanTable;

#[derive(Debug, Default)]
pub struct StaleReads;

impl Detector for StaleReads {
    fn name(&self) -> &'static str {
        "stale-reads"
    }

    fn symptom(&self) -> &'static str {
        "Reads return older versions than a replica holds, and quorums that let them."
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let table = cx.table;
        let stale = stale_reads(table);
        let quorums = Quorums::build(cx);
        let mut findings = Vec::new();
        let (under_weak, elsewhere): (Vec<u32>, Vec<u32>) = stale
            .iter()
            .partition(|&&row| quorums.weak_at(cx.window_of(table.start_ns[row as usize])));
        findings.extend(quorum_finding(cx, &quorums, &under_weak));
        findings.extend(node_findings(cx, &quorums, &elsewhere));
        findings
    }
}

/// The `kv.stale_read` spans that say the read was stale.
fn stale_reads(table: &SpanTable) -> Vec<u32> {
    let Some(name) = table.strings.find("kv.stale_read") else {
        return Vec::new();
    };
    let flag = table.attribute("kv.stale");
    (0..table.len() as u32)
        .filter(|&row| table.name[row as usize] == name)
        .filter(|&row| flag.get(row).and_then(|cell| cell.as_bool()) != Some(false))
        .collect()
}

/// R, W and N in force, window by window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quorum {
    r: i64,
    w: i64,
    n: i64,
}

impl Quorum {
    /// Read and write quorums need not share a replica.
    fn weak(self) -> bool {
        self.r + self.w <= self.n
    }
}

#[derive(Debug)]
struct Quorums {
    /// `None` until both a read and a write have said what they use.
    by_window: Vec<Option<Quorum>>,
    /// Reads per window and instance (the coordinator), for shares.
    reads: HashMap<(u32, usize), usize>,
}

impl Quorums {
    fn build(cx: &Context<'_>) -> Quorums {
        let table = cx.table;
        let windows = cx.windows();
        let mut r = vec![None::<i64>; windows];
        let mut w = vec![None::<i64>; windows];
        let mut n = vec![None::<i64>; windows];
        let mut reads = HashMap::new();
        let kv_n = table.attribute("kv.n");
        // The smallest quorum of a window: one request with R=1 is enough for a read
        // to miss a write.
        let mut note = |key: &str, column: &mut Vec<Option<i64>>, count_reads: bool| {
            for (row, cell) in table.attribute(key).iter() {
                if table.kind[row as usize] != SpanKind::Server {
                    continue;
                }
                let Some(value) = integer(table, cell) else {
                    continue;
                };
                let window = cx.window_of(table.start_ns[row as usize]);
                column[window] = Some(column[window].map_or(value, |v| v.min(value)));
                if let Some(replicas) = kv_n.get(row).and_then(|cell| integer(table, cell)) {
                    n[window] = Some(n[window].map_or(replicas, |v| v.max(replicas)));
                }
                if count_reads {
                    *reads
                        .entry((table.instance[row as usize], window))
                        .or_insert(0) += 1;
                }
            }
        };
        note("kv.r", &mut r, true);
        note("kv.w", &mut w, false);
        // Settings hold until a request says otherwise.
        let mut by_window = Vec::with_capacity(windows);
        let (mut last_r, mut last_w, mut last_n) = (None, None, None);
        for window in 0..windows {
            last_r = r[window].or(last_r);
            last_w = w[window].or(last_w);
            last_n = n[window].or(last_n);
            by_window.push(match (last_r, last_w, last_n) {
                (Some(r), Some(w), Some(n)) => Some(Quorum { r, w, n }),
                _ => None,
            });
        }
        Quorums { by_window, reads }
    }

    fn weak_at(&self, window: usize) -> bool {
        self.by_window
            .get(window)
            .copied()
            .flatten()
            .is_some_and(Quorum::weak)
    }
}

fn quorum_finding(cx: &Context<'_>, quorums: &Quorums, stale: &[u32]) -> Option<Finding> {
    let table = cx.table;
    let weak: Vec<bool> = (0..cx.windows()).map(|w| quorums.weak_at(w)).collect();
    let first_stale = stale.iter().map(|&row| table.start_ns[row as usize]).min();
    // With stale reads to show for it one weak window is enough; without, the weak
    // settings have to stick.
    let start = match first_stale {
        Some(_) => weak.iter().position(|&w| w)?,
        None => onset(&weak, 0)?,
    };
    let end = (start..weak.len()).rev().find(|&w| weak[w])?;
    let at = first_stale.map_or(start, |ns| cx.window_of(ns));
    let quorum = quorums.by_window[at].or(quorums.by_window[start])?;
    let overlapping_before = quorums.by_window[..start]
        .iter()
        .any(|q| q.is_some_and(|q| !q.weak()));
    let severity = if !stale.is_empty() {
        Severity::Critical
    } else if overlapping_before {
        Severity::Warning
    } else {
        Severity::Info
    };
    let Quorum { r, w, n } = quorum;
    let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
    let settings = format!(
        "reads use R={r} and writes W={w} of N={n} replicas since +{onset_s:.0} s, so read and write quorums need not overlap (R + W ≤ N) and a read can miss the latest write"
    );
    let summary = match (stale.len(), first_stale) {
        (0, _) => format!("KV {settings}; no stale read seen yet."),
        (count, Some(first)) => format!(
            "{count} stale KV reads from +{:.0} s: {settings}; set R + W > N (e.g. R=2, W=2).",
            (first - cx.start_ns) as f64 / 1e9
        ),
        (_, None) => return None,
    };
    let reads: usize = quorums
        .reads
        .iter()
        .filter(|&(&(_, window), _)| (start..=end).contains(&window))
        .map(|(_, &count)| count)
        .sum();
    Some(Finding {
        kind: FindingKind::StaleRead,
        severity,
        subject: Subject::KvQuorum { r, w, n },
        window: Window {
            start_ns: cx.window_start(start),
            end_ns: cx.window_start(end) + cx.window_ns,
        },
        onset_ns: Some(cx.window_start(start)),
        summary,
        figures: vec![
            Figure::new("stale_reads", stale.len() as f64, ""),
            Figure::new("reads", reads as f64, ""),
            Figure::new(
                "stale_share",
                stale.len() as f64 / reads.max(1) as f64,
                "ratio",
            ),
            Figure::new("r", r as f64, "replicas"),
            Figure::new("w", w as f64, "replicas"),
            Figure::new("n", n as f64, "replicas"),
        ],
        evidence: cx.evidence(stale.iter().copied()),
        detector: "stale-reads",
    })
}

/// Stale reads under overlapping quorums, by the node that served them.
fn node_findings(cx: &Context<'_>, quorums: &Quorums, stale: &[u32]) -> Vec<Finding> {
    let table = cx.table;
    let t = cx.thresholds;
    let mut by_node: Vec<(u32, u32)> = stale
        .iter()
        .map(|&row| (table.instance[row as usize], row))
        .filter(|&(instance, _)| instance != 0)
        .collect();
    by_node.sort_unstable();
    let reads = &quorums.reads;
    let mut findings = Vec::new();
    for group in by_node.chunk_by(|a, b| a.0 == b.0) {
        let instance = group[0].0;
        let rows: Vec<u32> = group.iter().map(|&(_, row)| row).collect();
        let mut seen = vec![false; cx.windows()];
        for &row in &rows {
            seen[cx.window_of(table.start_ns[row as usize])] = true;
        }
        let Some(start) = onset(&seen, 0) else {
            continue;
        };
        let Some(end) = (start..seen.len()).rev().find(|&w| seen[w]) else {
            continue;
        };
        let count = rows
            .iter()
            .filter(|&&row| cx.window_of(table.start_ns[row as usize]) >= start)
            .count();
        let served: usize = (start..=end)
            .map(|w| reads.get(&(instance, w)).copied().unwrap_or(0))
            .sum();
        let share = count as f64 / served.max(count).max(1) as f64;
        let severity = if count < 3 {
            Severity::Info
        } else if share >= t.stale_read_share_critical && count as u64 >= t.min_calls {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let node = table.str(instance).to_owned();
        let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
        let why = match newer_holder(table, &rows) {
            Some(holder) => format!(
                "the newer versions were on {holder}: writes that failed or were still in flight there, or versions its clock minted ahead"
            ),
            None => "the newer versions come from writes that failed or were still in flight, or are ordered wrongly (check the clocks)".to_owned(),
        };
        findings.push(Finding {
            kind: FindingKind::StaleRead,
            severity,
            subject: Subject::Node(node.clone()),
            window: Window {
                start_ns: cx.window_start(start),
                end_ns: cx.window_start(end) + cx.window_ns,
            },
            onset_ns: Some(cx.window_start(start)),
            summary: format!(
                "{node} served {count} stale KV reads ({:.1} % of its reads) since +{onset_s:.0} s although read and write quorums overlap: {why}.",
                share * 100.0
            ),
            figures: vec![
                Figure::new("stale_reads", count as f64, ""),
                Figure::new("reads", served as f64, ""),
                Figure::new("stale_share", share, "ratio"),
            ],
            evidence: cx.evidence(rows.iter().copied()),
            detector: "stale-reads",
        });
    }
    findings
}

/// The replica most often named as holding the newer version (`kv.replica`), when the
/// capture kept it.
fn newer_holder<'t>(table: &'t SpanTable, rows: &[u32]) -> Option<&'t str> {
    let holders = table.attribute("kv.replica");
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for id in rows.iter().filter_map(|&row| holders.get(row)?.as_str()) {
        match counts.iter_mut().find(|(known, _)| *known == id) {
            Some((_, n)) => *n += 1,
            None => counts.push((id, 1)),
        }
    }
    counts
        .iter()
        .max_by_key(|&&(_, n)| n)
        .map(|&(id, _)| table.str(id))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, SpanKind, TraceId, Value};

    use super::*;
    use crate::config::Thresholds;
    use crate::table::from_spans;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000_000 * MS;

    fn span(n: u64, name: &str, node: &str, at_ms: u64) -> Span {
        let trace = TraceId([
            (n >> 8) as u8,
            n as u8,
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
        let mut span = Span::new(trace, SpanId(n.to_be_bytes()), name);
        span.start_ns = T0 + at_ms * MS;
        span.end_ns = span.start_ns + MS;
        let mut resource = Resource::with_service("faultline-node");
        resource.attributes.insert("faultline.node", node);
        span.resource = Arc::new(resource);
        span
    }

    /// 20 s of traffic, a read and a write every 100 ms; from 10 s reads use `r` and
    /// writes `w`, and every `stale_every`-th read from then on is stale.
    fn capture(r: i64, w: i64, stale_every: Option<u64>) -> Vec<Span> {
        let mut spans = Vec::new();
        for i in 0..200 {
            let at = i * 100;
            let after = at >= 10_000;
            let node = ["node-1", "node-2", "node-3"][(i % 3) as usize];
            let mut get = span(i * 4, "kv.get", node, at);
            get.kind = SpanKind::Server;
            get.attributes.insert("kv.r", if after { r } else { 2 });
            get.attributes.insert("kv.n", 3i64);
            let mut put = span(i * 4 + 1, "kv.put", node, at + 50);
            put.kind = SpanKind::Server;
            put.attributes.insert("kv.w", if after { w } else { 2 });
            put.attributes.insert("kv.n", 3i64);
            if after && stale_every.is_some_and(|every| i % every == 0) {
                let mut stale = span(i * 4 + 2, "kv.stale_read", node, at + 1);
                stale.kind = SpanKind::Internal;
                stale.parent_span_id = Some(get.span_id);
                stale.trace_id = get.trace_id;
                stale.attributes.insert("kv.stale", Value::Bool(true));
                spans.push(stale);
            }
            spans.push(get);
            spans.push(put);
        }
        spans
    }

    fn run(spans: &[Span]) -> Vec<Finding> {
        let table = from_spans(spans);
        let thresholds = Thresholds::demo();
        let cx = Context::new(&table, &thresholds);
        StaleReads.check(&cx)
    }

    #[test]
    fn stale_reads_under_non_overlapping_quorums_blame_the_quorums() {
        let found = run(&capture(1, 1, Some(5)));
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        assert_eq!(f.subject, Subject::KvQuorum { r: 1, w: 1, n: 3 });
        assert_eq!(f.subject.to_string(), "kv quorum (R=1, W=1)");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.figure("stale_reads"), Some(20.0));
        let onset_s = (f.onset_ns.unwrap_or(0) - T0 as i64) as f64 / 1e9;
        assert!((10.0..11.0).contains(&onset_s), "onset at {onset_s}");
        assert!(f.summary.contains("R + W ≤ N"), "{}", f.summary);
    }

    #[test]
    fn a_switch_to_weak_quorums_warns_before_any_stale_read() {
        let found = run(&capture(1, 2, None));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].subject, Subject::KvQuorum { r: 1, w: 2, n: 3 });
        assert_eq!(found[0].severity, Severity::Warning);
    }

    #[test]
    fn stale_reads_under_overlapping_quorums_name_the_node() {
        // Every third read is node-1's: all stale reads are node-1's.
        let found = run(&capture(2, 2, Some(3)));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].subject, Subject::Node("node-1".into()));
        assert_eq!(
            found[0].severity,
            Severity::Critical,
            "all its reads are stale"
        );
    }

    #[test]
    fn overlapping_quorums_and_no_stale_reads_give_nothing() {
        assert!(run(&capture(2, 2, None)).is_empty());
        assert!(run(&capture(3, 1, None)).is_empty());
    }
}
