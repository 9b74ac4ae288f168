//! Hot keys: one key takes a disproportionate share of its keyspace's operations, so
//! the replicas that hold it take the load while the others idle (a hot partition).
//!
//! ```text
//!  kv.get order:o-7 ┐                         order:o-7   ▁▁▁▁▁▁▁▁▇▇▇▇▇▇▇  share of "order"
//!  kv.get order:o-7 ├─► ops per key, per keyspace, per window ──► share now vs baseline
//!  kv.put order:o-9 ┘
//! ```
//!
//! Rule: a key is hot in a window when it takes more than `hot_key_share` of its
//! keyspace's operations and at least twice ([`ROSE`]) its share in the baseline; from
//! the onset (a rise that sticks) to its last hot window it must add up to
//! `hot_key_min_ops` operations at more than `hot_key_share`. Critical above
//! `hot_key_critical_share`. A keyspace is the key's prefix before its first `:` (the
//! `type:id` naming of Redis and memcached keys), or the whole store for keys without one.
//!
//! Where it comes from: hot-partition detection in partitioned stores compares a
//! partition key's share of the traffic with its fair share (DynamoDB's CloudWatch
//! Contributor Insights "most accessed keys", Cassandra's `nodetool toppartitions`,
//! Redis `--hotkeys`); the share must also have risen, or a key that was always popular
//! (a configuration record) would be reported for ever.
//!
//! Keys are read from [`KEY_ATTRIBUTES`]. OpenTelemetry has no key attribute for
//! key-value stores (`db.query.text` holds a whole command), so only the documented
//! `kv.key` is read; a key-bearing attribute of another store is one more entry there
//! (and in the table's kept attributes).

use faultline_model::SpanKind;
use std::collections::HashMap;

use crate::detector::{Context, Detector, onset};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::table::SpanTable;

#[derive(Debug, Default)]
pub struct HotKeys;

/// Span attributes that hold the key an operation touched.
pub const KEY_ATTRIBUTES: &[&str] = &["kv.key"];

/// A key's share must be at least this multiple of its baseline share to be news.
const ROSE: f64 = 2.0;

impl Detector for HotKeys {
    fn name(&self) -> &'static str {
        "hot-key"
    }

    fn symptom(&self) -> &'static str {
        "one key takes a disproportionate share of its keyspace's operations"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let table = cx.table;
        let ops = operations(table);
        if ops.is_empty() {
            return Vec::new();
        }
        let windows = cx.windows();
        let spaces = Keyspaces::of(table, &ops);
        // Operations per keyspace and window.
        let mut per_space = vec![vec![0u32; windows]; spaces.names.len()];
        // (key, window, row) per operation, grouped by key below.
        let mut by_key: Vec<(u32, u32, u32)> = Vec::with_capacity(ops.len());
        for &(row, key) in &ops {
            let w = cx.window_of(table.start_ns[row as usize]);
            per_space[spaces.of_key[&key] as usize][w] += 1;
            by_key.push((key, w as u32, row));
        }
        by_key.sort_unstable();
        let mut findings = Vec::new();
        for group in by_key.chunk_by(|a, b| a.0 == b.0) {
            if (group.len() as u64) < cx.thresholds.hot_key_min_ops {
                continue;
            }
            let key = group[0].0;
            let space = spaces.of_key[&key] as usize;
            let hot = HotKey {
                key,
                keyspace: spaces.names[space],
                ops: group,
                keyspace_ops: &per_space[space],
            };
            findings.extend(hot.finding(cx));
        }
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.onset_ns.cmp(&b.onset_ns))
                .then(a.subject.cmp(&b.subject))
        });
        findings
    }
}

/// (row, interned key) of every key operation: client and server spans, not the
/// internal work that follows one (a `kv.replicate` repeats its write's key).
fn operations(table: &SpanTable) -> Vec<(u32, u32)> {
    let mut ops = Vec::new();
    for attribute in KEY_ATTRIBUTES {
        for (row, cell) in table.attribute(attribute).iter() {
            if let Some(key) = cell.as_str()
                && matches!(
                    table.kind[row as usize],
                    SpanKind::Server | SpanKind::Client
                )
            {
                ops.push((row, key));
            }
        }
    }
    ops
}

/// Keyspaces by name, and each key's keyspace.
struct Keyspaces<'t> {
    names: Vec<&'t str>,
    of_key: HashMap<u32, u32>,
}

impl<'t> Keyspaces<'t> {
    fn of(table: &'t SpanTable, ops: &[(u32, u32)]) -> Keyspaces<'t> {
        let mut names: Vec<&'t str> = Vec::new();
        let mut ids: HashMap<&'t str, u32> = HashMap::new();
        let mut of_key: HashMap<u32, u32> = HashMap::new();
        for &(_, key) in ops {
            of_key.entry(key).or_insert_with(|| {
                let text = table.str(key);
                let space = text.split_once(':').map_or("", |(prefix, _)| prefix);
                *ids.entry(space).or_insert_with(|| {
                    names.push(space);
                    names.len() as u32 - 1
                })
            });
        }
        Keyspaces { names, of_key }
    }
}

/// One key's operations, with its keyspace's.
struct HotKey<'a> {
    key: u32,
    keyspace: &'a str,
    /// (key, window, row), in window order.
    ops: &'a [(u32, u32, u32)],
    keyspace_ops: &'a [u32],
}

impl HotKey<'_> {
    fn finding(&self, cx: &Context<'_>) -> Option<Finding> {
        let th = cx.thresholds;
        let windows = cx.windows();
        let base = cx.baseline_windows();
        let mut per_window = vec![0u32; windows];
        for &(_, w, _) in self.ops {
            per_window[w as usize] += 1;
        }
        let sum = |counts: &[u32]| counts.iter().map(|&n| u64::from(n)).sum::<u64>();
        let share = |ops: u64, of: u64| if of == 0 { 0.0 } else { ops as f64 / of as f64 };
        let baseline_share = share(sum(&per_window[..base]), sum(&self.keyspace_ops[..base]));
        let abnormal: Vec<bool> = (0..windows)
            .map(|w| {
                let of = u64::from(self.keyspace_ops[w]);
                let s = share(u64::from(per_window[w]), of);
                of >= th.min_calls && s > th.hot_key_share && s >= ROSE * baseline_share
            })
            .collect();
        let start = onset(&abnormal, base)?;
        let end = (start..windows).rev().find(|&w| abnormal[w])?;
        let ops = sum(&per_window[start..=end]);
        let of = sum(&self.keyspace_ops[start..=end]);
        let period_share = share(ops, of);
        if ops < th.hot_key_min_ops || period_share <= th.hot_key_share {
            return None;
        }
        let severity = if period_share > th.hot_key_critical_share {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let table = cx.table;
        let key = table.str(self.key);
        let seconds = (end + 1 - start) as f64 * cx.window_ns as f64 / 1e9;
        let rate = ops as f64 / seconds;
        let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
        let keyspace = if self.keyspace.is_empty() {
            "the store's".to_owned()
        } else {
            format!("the {} keyspace's", self.keyspace)
        };
        let summary = format!(
            "Key {key} takes {:.0} % of {keyspace} operations since +{onset_s:.0} s ({ops} of {of}, {rate:.0}/s) against {:.0} % before: a hot key, the replicas that hold it carry that load alone.",
            period_share * 100.0,
            baseline_share * 100.0,
        );
        let rows = self
            .ops
            .iter()
            .filter(|&&(_, w, _)| (start..=end).contains(&(w as usize)))
            .map(|&(_, _, row)| row);
        Some(Finding {
            kind: FindingKind::HotKey,
            severity,
            subject: Subject::Key(key.to_owned()),
            window: Window {
                start_ns: cx.window_start(start),
                end_ns: cx.window_start(end) + cx.window_ns,
            },
            onset_ns: Some(cx.window_start(start)),
            summary,
            figures: vec![
                Figure::new("ops", ops as f64, ""),
                Figure::new("share", period_share, "ratio"),
                Figure::new("rate", rate, "ops/s"),
                Figure::new("baseline_share", baseline_share, "ratio"),
                Figure::new("keyspace_ops", of as f64, ""),
            ],
            evidence: cx.evidence(rows),
            detector: "hot-key",
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, SpanKind, TraceId};

    use super::*;
    use crate::config::Thresholds;

    const MS: u64 = 1_000_000;

    /// One `kv.get` of `key` at `at_ms`.
    fn get(n: u32, at_ms: u64, key: &str) -> Span {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        let mut span = Span::new(TraceId(id), SpanId([1; 8]), "kv.get");
        span.kind = SpanKind::Server;
        span.start_ns = at_ms * MS;
        span.end_ns = at_ms * MS + 2 * MS;
        span.resource = Arc::new(Resource::with_service("faultline-node"));
        span.attributes.insert("kv.key", key);
        span
    }

    /// 20 ops a second for 20 s over 40 order keys; from 10 s on, `hot` of every ten
    /// go to `order:7`; `always` of every ten go to `order:1` all along.
    fn load(hot: u64, always: u64) -> Vec<Span> {
        (0..400u64)
            .map(|i| {
                let at = i * 50;
                let key = if at >= 10_000 && i % 10 < hot {
                    "order:7".to_owned()
                } else if i % 10 >= 10 - always {
                    "order:1".to_owned()
                } else {
                    format!("order:{}", i % 40)
                };
                get(i as u32, at, &key)
            })
            .collect()
    }

    fn check(spans: &[Span]) -> Vec<Finding> {
        let table = crate::table::from_spans(spans);
        let thresholds = Thresholds::demo();
        HotKeys.check(&Context::new(&table, &thresholds))
    }

    #[test]
    fn a_key_that_takes_most_of_its_keyspace_is_hot() {
        let found = check(&load(7, 0));
        assert_eq!(found.len(), 1, "{found:#?}");
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::HotKey);
        assert_eq!(f.subject, Subject::Key("order:7".into()));
        assert_eq!(f.severity, Severity::Critical);
        let share = f.figure("share").unwrap_or_default();
        assert!((0.65..0.8).contains(&share), "{share}");
        assert!(f.figure("baseline_share").unwrap_or(1.0) < 0.05);
        assert!(f.figure("ops").unwrap_or_default() >= 130.0);
        assert_eq!(f.onset_ns, Some(10_000 * MS as i64));
        assert!(f.summary.contains("order keyspace"), "{}", f.summary);
    }

    #[test]
    fn a_share_between_the_levels_is_a_warning() {
        let found = check(&load(4, 0));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].severity, Severity::Warning);
    }

    #[test]
    fn a_key_that_was_always_popular_or_an_even_spread_is_not_news() {
        // order:1 takes 40 % of the keyspace from the start: popular, not newly hot.
        assert!(check(&load(0, 4)).is_empty());
        assert!(check(&load(0, 0)).is_empty());
        // Internal spans repeat their operation's key and are not operations.
        let mut internal = load(7, 0);
        for span in &mut internal {
            span.kind = SpanKind::Internal;
        }
        assert!(check(&internal).is_empty());
    }
}
