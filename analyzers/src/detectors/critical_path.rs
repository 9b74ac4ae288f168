//! Critical path per trace, aggregated per service: where end-to-end time goes, and
//! where it moved to.
//!
//! ```text
//!  trace ─► root ─► walk back from its end: the child that finished last before the
//!           cursor is on the path; time between is the parent's own ─► per-service
//!           critical time ─► share per service, baseline traces vs later traces
//! ```
//!
//! **Symptom**: requests got slower end to end, and one service now accounts for most
//! of the time on their critical path.
//! **Rule**: the critical path of a trace is computed as Jaeger's critical-path view
//! does (from the root's end, repeatedly descend into the child that ended last before
//! the cursor; the gaps are the parent's self time). Summed per service over traces
//! starting in the baseline and over later ones, a service whose share of critical
//! time rose by at least 25 points while traces got at least twice as long is a
//! warning; the top service of the later traces is always reported as info.

use std::collections::HashMap;

use crate::detector::{Context, Detector};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::index::NO_ROW;

#[derive(Debug, Default)]
pub struct CriticalPath;

/// Critical time (ns) per service for one group of traces.
#[derive(Debug, Default)]
struct Tally {
    per_service: HashMap<u32, i64>,
    total: i64,
    traces: u64,
    /// (trace end-to-end ns, root row) of the slowest traces.
    slowest: Vec<(i64, u32)>,
}

impl Tally {
    fn share(&self, service: u32) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.per_service.get(&service).copied().unwrap_or(0) as f64 / self.total as f64
    }

    fn mean_ms(&self) -> f64 {
        if self.traces == 0 {
            return 0.0;
        }
        self.total as f64 / self.traces as f64 / 1e6
    }
}

impl Detector for CriticalPath {
    fn name(&self) -> &'static str {
        "critical-path"
    }

    fn symptom(&self) -> &'static str {
        "end-to-end time moved onto one service's part of the critical path"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let table = cx.table;
        let index = cx.index();
        let proxies = &cx.calls().proxies;
        let baseline_end = cx.window_start(cx.baseline_windows());
        // Per root operation (service, name): traces of one kind of request are
        // compared with each other, not with background work.
        let mut tallies: HashMap<(u32, u32), (Tally, Tally)> = HashMap::new();
        let mut children: Vec<Vec<u32>> = Vec::new();
        for rows in index.trace_rows() {
            // Children per row of this trace, by local position.
            let position: HashMap<u32, usize> =
                rows.iter().enumerate().map(|(i, &r)| (r, i)).collect();
            children.clear();
            children.resize(rows.len(), Vec::new());
            let mut root = None;
            for &row in rows {
                match index.parent_row[row as usize] {
                    NO_ROW => {
                        if root.is_none_or(|r: u32| {
                            table.start_ns[row as usize] < table.start_ns[r as usize]
                        }) {
                            root = Some(row);
                        }
                    }
                    parent => {
                        if let Some(&p) = position.get(&parent) {
                            children[p].push(row);
                        }
                    }
                }
            }
            let Some(root) = root else { continue };
            // Traces rooted in a proxy are infrastructure chatter (heartbeats through
            // a sidecar), not requests anyone waits for.
            if proxies.contains(&table.service[root as usize]) {
                continue;
            }
            // Requests that cross services are where a critical path says something;
            // a trace within one service (replication between its own nodes) is not.
            let root_service = table.service[root as usize];
            if !rows.iter().any(|&r| {
                let service = table.service[r as usize];
                service != root_service && !proxies.contains(&service)
            }) {
                continue;
            }
            let key = (table.service[root as usize], table.name[root as usize]);
            let (before, after) = tallies.entry(key).or_default();
            let tally = if table.start_ns[root as usize] < baseline_end {
                before
            } else {
                after
            };
            let length = walk(table, &position, &children, root, tally);
            tally.total += length;
            tally.traces += 1;
            tally.slowest.push((length, root));
        }
        // The operation where most end-to-end time goes since the baseline.
        let Some(((root_service, root_name), (before, mut after))) = tallies
            .into_iter()
            .max_by_key(|((service, name), (_, after))| (after.total, *service, *name))
        else {
            return Vec::new();
        };
        if after.traces == 0 || after.total == 0 {
            return Vec::new();
        }
        let operation = format!("{} {}", table.str(root_service), table.str(root_name));
        let (top, top_time) = after
            .per_service
            .iter()
            .max_by_key(|&(&s, &t)| (t, std::cmp::Reverse(s)))
            .map(|(&s, &t)| (s, t))
            .unwrap_or((0, 0));
        let share_after = after.share(top);
        let share_before = before.share(top);
        let slower = before.traces > 0 && after.mean_ms() >= before.mean_ms() * 2.0;
        let moved = before.traces > 0 && share_after - share_before >= 0.25;
        let severity = if moved && slower {
            Severity::Warning
        } else {
            Severity::Info
        };
        after.slowest.sort_by_key(|&(t, _)| std::cmp::Reverse(t));
        let service = table.str(top).to_owned();
        let summary = if before.traces > 0 {
            format!(
                "{service} holds {:.0} % of the critical path of `{operation}` traces since the baseline ({:.0} % before); they average {:.0} ms end to end against {:.0} ms.",
                share_after * 100.0,
                share_before * 100.0,
                after.mean_ms(),
                before.mean_ms()
            )
        } else {
            format!(
                "{service} holds {:.0} % of the critical path of `{operation}` traces ({:.0} ms of {:.0} ms on average).",
                share_after * 100.0,
                top_time as f64 / after.traces as f64 / 1e6,
                after.mean_ms()
            )
        };
        vec![Finding {
            kind: FindingKind::CriticalPath,
            severity,
            subject: Subject::Service(service),
            window: Window {
                start_ns: baseline_end.min(cx.end_ns),
                end_ns: cx.end_ns,
            },
            onset_ns: None,
            summary,
            figures: vec![
                Figure::new("share", share_after, "ratio"),
                Figure::new("baseline_share", share_before, "ratio"),
                Figure::new("mean_trace", after.mean_ms(), "ms"),
                Figure::new("baseline_mean_trace", before.mean_ms(), "ms"),
            ],
            evidence: cx.evidence(after.slowest.iter().map(|&(_, r)| r)),
            detector: "critical-path",
        }]
    }
}

/// Adds the critical path below `root` to `tally`; returns the root's duration.
fn walk(
    table: &crate::table::SpanTable,
    position: &HashMap<u32, usize>,
    children: &[Vec<u32>],
    root: u32,
    tally: &mut Tally,
) -> i64 {
    let length = table.duration_ns(root);
    // (span, cursor): the span's part of the path ends at the cursor.
    let mut stack = vec![(root, table.end_ns[root as usize])];
    while let Some((span, end)) = stack.pop() {
        let start = table.start_ns[span as usize];
        let Some(&p) = position.get(&span) else {
            continue;
        };
        let mut kids: Vec<u32> = children[p].clone();
        kids.sort_by_key(|&k| std::cmp::Reverse(table.end_ns[k as usize]));
        let mut cursor = end;
        let mut own = 0;
        for kid in kids {
            let (k_start, k_end) = (table.start_ns[kid as usize], table.end_ns[kid as usize]);
            if k_start >= cursor || k_end <= start {
                continue;
            }
            let k_end = k_end.min(cursor);
            own += cursor - k_end;
            stack.push((kid, k_end));
            cursor = k_start.max(start);
        }
        own += (cursor - start).max(0);
        *tally
            .per_service
            .entry(table.service[span as usize])
            .or_default() += own;
    }
    length
}
