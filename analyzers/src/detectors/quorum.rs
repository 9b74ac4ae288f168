//! Quorum failures: writes the store refused because it had no leader or no majority.
//!
//! ```text
//!  store server spans (kv.*, db.*, queue ops) ──► per member and window: writes,
//!        refused (503, no_leader, unavailable, acked < W), committed
//!  windows with refusals ──► episodes ─┬─► no majority of members commits ──► cluster
//!                                      │      (critical once it outlasts an election)
//!                                      ├─► refusals held by a minority   ──► those nodes
//!                                      └─► refusals spread, all commit   ──► cluster, info
//! ```
//!
//! **Symptom**: writes refused for want of a quorum (Raft without a leader or a majority,
//! a KV write that could not reach W replicas).
//!
//! **Rule**: a write request to the store (a KV put or delete, a database write, an
//! operation on a replicated queue) is *refused* when it fails with a 503, with
//! `error.type` `no_leader`/`not_leader`/`unavailable`/`no_quorum`, or with fewer
//! replicas acknowledged than its `kv.w`. A window with at least [`MIN_WRITES`] writes
//! of which at least `quorum_failure_share` are refused is abnormal, and abnormal
//! windows that stick make an episode. Within one, stretches where fewer than a
//! majority of the store's members (those seen in the baseline) commit are a cluster
//! quorum failure, critical when the stretch lasts `quorum_failure_sustain_ms` (shorter,
//! it is what an election costs: a warning). Otherwise, when a minority of members holds
//! [`CONCENTRATED_SHARE`] of the refusals, those members fail to reach the quorum the
//! others keep (a warning naming them: the cluster does what it must); refusals spread
//! over members that all still commit are information (an election in progress).
//!
//! **Where it comes from**: the quorum-failure alert of PRODUCT.md §7 (> 1 % of requests
//! refused is critical), Raft's rule that only a leader backed by a majority commits
//! (§5.2, §5.4), and Dynamo's W of N write quorum.

use std::collections::HashMap;
use std::ops::Range;

use faultline_model::SpanKind;

use super::reachability::{episode_end_ns, episodes, ongoing};
use super::replication::integer;
use crate::detector::{Context, Detector};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::index::NO_ROW;
use crate::table::SpanTable;

/// `db.operation.name` values that write.
const WRITE_OPERATIONS: &[&str] = &[
    "put",
    "delete",
    "insert",
    "update",
    "upsert",
    "set",
    "write",
    "remove",
    "replace",
    "merge",
    "append",
    "increment",
    "cas",
    "PUT",
    "DELETE",
    "INSERT",
    "UPDATE",
    "UPSERT",
    "SET",
    "MERGE",
    "REPLACE",
];
/// `error.type` values that say the store refused for want of a leader or quorum.
const REFUSALS: &[&str] = &["no_leader", "not_leader", "unavailable", "no_quorum"];
/// A member refusing at least this share of its writes in a window does not commit.
const REFUSING_SHARE: f64 = 0.5;
/// Share of an episode's refusals that, held by a minority of members, makes it theirs.
const CONCENTRATED_SHARE: f64 = 0.8;
/// Writes a window needs to be judged (a partial window with one refused write is no
/// verdict on the cluster).
const MIN_WRITES: u32 = 3;
/// Refused writes a window needs to be abnormal (episodes still need two windows of
/// them in three: a lone refusal is a blip).
const MIN_REFUSED: u32 = 1;

#[derive(Debug, Default)]
pub struct QuorumFailures;

impl Detector for QuorumFailures {
    fn name(&self) -> &'static str {
        "quorum"
    }

    fn symptom(&self) -> &'static str {
        "writes refused for want of a leader or a quorum"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let Some(writes) = Writes::count(cx) else {
            return Vec::new();
        };
        let baseline = cx.baseline_windows().min(writes.windows);
        let members: Vec<usize> = (0..writes.instances.len())
            .filter(|&i| (0..baseline).any(|w| writes.at(i, w).total > 0))
            .collect();
        if members.is_empty() {
            return Vec::new();
        }
        let majority = members.len() / 2 + 1;

        let mut abnormal = vec![false; writes.windows];
        let mut whole = vec![false; writes.windows];
        for w in 0..writes.windows {
            let all = writes.window(w);
            if all.total < MIN_WRITES
                || all.refused < MIN_REFUSED
                || f64::from(all.refused)
                    < cx.thresholds.quorum_failure_share * f64::from(all.total)
            {
                continue;
            }
            abnormal[w] = true;
            let committing = members
                .iter()
                .filter(|&&i| {
                    let at = writes.at(i, w);
                    at.committed > 0 && f64::from(at.refused) < REFUSING_SHARE * f64::from(at.total)
                })
                .count();
            whole[w] = committing < majority;
        }

        let mut findings = Vec::new();
        for run in episodes(&abnormal, baseline) {
            // Stretches in which no majority committed make it the cluster's failure.
            let stretches = episodes(&whole[..run.end], run.start);
            if !stretches.is_empty() {
                for stretch in stretches {
                    findings.push(writes.cluster_failure(cx, &members, stretch, Scope::Cluster));
                }
                continue;
            }
            // Otherwise: refusals concentrated on a minority of members, or spread out.
            match writes.concentrated(&run, majority) {
                Some(side) => findings.push(writes.minority_failure(cx, &side, run)),
                None => {
                    findings.push(writes.cluster_failure(cx, &members, run, Scope::Scattered));
                }
            }
        }
        findings
    }
}

/// Which kind of cluster-level episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Fewer than a majority of members commit.
    Cluster,
    /// Every member still commits; refusals are spread over them.
    Scattered,
}

/// Write requests of one member in one window.
#[derive(Debug, Clone, Copy)]
struct Tally {
    total: u32,
    refused: u32,
    committed: u32,
    /// The first refused request (evidence), or [`NO_ROW`].
    first_refused: u32,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            total: 0,
            refused: 0,
            committed: 0,
            first_refused: NO_ROW,
        }
    }
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.total += other.total;
        self.refused += other.refused;
        self.committed += other.committed;
        if self.first_refused == NO_ROW {
            self.first_refused = other.first_refused;
        }
    }
}

#[derive(Debug)]
struct Writes {
    /// Interned instance names of the store's members.
    instances: Vec<u32>,
    /// `tallies[instance * windows + w]`.
    tallies: Vec<Tally>,
    windows: usize,
    /// The store's service names, for the summary.
    services: Vec<u32>,
    /// Refusal reasons (interned `error.type`) seen per window, by count.
    reasons: Vec<HashMap<u32, u32>>,
}

impl Writes {
    /// Write requests to the store per member and window; `None` when the capture has
    /// no store spans at all.
    fn count(cx: &Context<'_>) -> Option<Writes> {
        let table = cx.table;
        let windows = cx.windows();
        let writes = ids(table, WRITE_OPERATIONS);
        let refusals = ids(table, REFUSALS);
        let operations = table.attribute("db.operation.name");
        let queue_operations = table.attribute("messaging.operation.name");
        if operations.is_empty() && queue_operations.is_empty() {
            return None;
        }
        let errors = table.attribute("error.type");
        let acked = table.attribute("kv.replicas_acked");
        let quorum = table.attribute("kv.w");

        let mut instance_index: HashMap<u32, usize> = HashMap::new();
        let mut result = Writes {
            instances: Vec::new(),
            tallies: Vec::new(),
            windows,
            services: Vec::new(),
            reasons: vec![HashMap::new(); windows],
        };
        // A database operation counts when it writes; every operation on a replicated
        // queue changes its state (a receive takes a lease), so all of them do.
        let rows = operations
            .iter()
            .filter(|(_, op)| op.as_str().is_some_and(|id| writes.contains(&id)))
            .map(|(row, _)| row)
            .chain(queue_operations.iter().map(|(row, _)| row));
        for row in rows {
            let r = row as usize;
            if table.kind[r] != SpanKind::Server || table.instance[r] == 0 {
                continue;
            }
            let instance = *instance_index.entry(table.instance[r]).or_insert_with(|| {
                result.instances.push(table.instance[r]);
                result
                    .tallies
                    .extend(std::iter::repeat_n(Tally::default(), windows));
                result.instances.len() - 1
            });
            if !result.services.contains(&table.service[r]) {
                result.services.push(table.service[r]);
            }
            let reason = errors.get(row).and_then(|cell| cell.as_str());
            let short_of_quorum = match (acked.get(row), quorum.get(row)) {
                (Some(acked), Some(w)) => {
                    matches!((integer(table, acked), integer(table, w)), (Some(a), Some(w)) if a < w)
                }
                _ => false,
            };
            let refused = table.error[r]
                && (table.http_status[r] == 503
                    || reason.is_some_and(|id| refusals.contains(&id))
                    || short_of_quorum);
            let w = cx.window_of(table.start_ns[r]);
            let tally = &mut result.tallies[instance * windows + w];
            tally.total += 1;
            if refused {
                tally.refused += 1;
                if tally.first_refused == NO_ROW {
                    tally.first_refused = row;
                }
                if let Some(id) = reason {
                    *result.reasons[w].entry(id).or_default() += 1;
                }
            } else if !table.error[r] {
                tally.committed += 1;
            }
        }
        (!result.instances.is_empty()).then_some(result)
    }

    fn at(&self, instance: usize, w: usize) -> Tally {
        self.tallies[instance * self.windows + w]
    }

    fn window(&self, w: usize) -> Tally {
        let mut all = Tally::default();
        for i in 0..self.instances.len() {
            all.add(&self.at(i, w));
        }
        all
    }

    fn over(&self, instances: impl Iterator<Item = usize> + Clone, run: &Range<usize>) -> Tally {
        let mut all = Tally::default();
        for w in run.clone() {
            for i in instances.clone() {
                all.add(&self.at(i, w));
            }
        }
        all
    }

    /// The fewest members that refused [`CONCENTRATED_SHARE`] of the writes refused over
    /// `run`, if they are fewer than a majority.
    fn concentrated(&self, run: &Range<usize>, majority: usize) -> Option<Vec<usize>> {
        let mut refused: Vec<(usize, u32)> = (0..self.instances.len())
            .map(|i| (i, self.over(std::iter::once(i), run).refused))
            .filter(|&(_, n)| n > 0)
            .collect();
        refused.sort_by_key(|&(i, n)| (std::cmp::Reverse(n), i));
        let total: u32 = refused.iter().map(|&(_, n)| n).sum();
        let mut side = Vec::new();
        let mut covered = 0;
        for (i, n) in refused {
            if f64::from(covered) >= CONCENTRATED_SHARE * f64::from(total) {
                break;
            }
            side.push(i);
            covered += n;
        }
        (!side.is_empty() && side.len() < majority).then_some(side)
    }

    /// Refused requests over `run`, a window at a time (evidence).
    fn refused_rows(&self, instances: &[usize], run: &Range<usize>) -> Vec<u32> {
        run.clone()
            .flat_map(|w| instances.iter().map(move |&i| self.at(i, w).first_refused))
            .filter(|&row| row != NO_ROW)
            .collect()
    }

    /// When the refusals began: the first refused request in the window before the
    /// run if it had any, else in the run's first window.
    fn onset_ns(&self, cx: &Context<'_>, instances: &[usize], run: &Range<usize>) -> i64 {
        let first = |w: usize| {
            instances
                .iter()
                .map(|&i| self.at(i, w).first_refused)
                .filter(|&row| row != NO_ROW)
                .map(|row| cx.table.start_ns[row as usize])
                .min()
        };
        run.start
            .checked_sub(1)
            .and_then(first)
            .or_else(|| first(run.start))
            .unwrap_or_else(|| cx.window_start(run.start))
    }

    fn names(&self, table: &SpanTable, instances: &[usize]) -> Vec<String> {
        let mut names: Vec<String> = instances
            .iter()
            .map(|&i| table.str(self.instances[i]).to_owned())
            .collect();
        names.sort();
        names
    }

    /// The refusal reasons over `run`, most frequent first: "no_leader, unavailable".
    fn reasons(&self, table: &SpanTable, run: &Range<usize>) -> String {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for (&id, &n) in self.reasons[run.clone()].iter().flatten() {
            *counts.entry(id).or_default() += n;
        }
        let mut reasons: Vec<(u32, u32)> = counts.into_iter().collect();
        reasons.sort_by_key(|&(id, n)| (std::cmp::Reverse(n), id));
        let names: Vec<&str> = reasons
            .iter()
            .take(3)
            .map(|&(id, _)| table.str(id))
            .collect();
        if names.is_empty() {
            "503".to_owned()
        } else {
            names.join(", ")
        }
    }

    fn cluster_failure(
        &self,
        cx: &Context<'_>,
        members: &[usize],
        run: Range<usize>,
        scope: Scope,
    ) -> Finding {
        let table = cx.table;
        let everyone: Vec<usize> = (0..self.instances.len()).collect();
        let all = self.over(everyone.iter().copied(), &run);
        let onset_ns = self.onset_ns(cx, &everyone, &run);
        let end_ns = episode_end_ns(cx, &run);
        let lasted_ms = (end_ns - onset_ns).max(0) as f64 / 1e6;
        let share = 100.0 * f64::from(all.refused) / f64::from(all.total.max(1));
        let sustained = lasted_ms >= cx.thresholds.quorum_failure_sustain_ms;
        let silent: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| self.over(std::iter::once(i), &run).total == 0)
            .collect();
        let refusing: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| {
                let at = self.over(std::iter::once(i), &run);
                at.total > 0 && f64::from(at.refused) >= REFUSING_SHARE * f64::from(at.total)
            })
            .collect();
        let store: Vec<&str> = self.services.iter().map(|&s| table.str(s)).collect();
        let (severity, summary) = match scope {
            Scope::Cluster => (
                if sustained {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                format!(
                    "quorum lost: {share:.0} % of {} write requests to {} refused ({}) for \
                     {:.1} s{}; no majority of its {} members commits{}{}",
                    all.total,
                    store.join(", "),
                    self.reasons(table, &run),
                    lasted_ms / 1000.0,
                    if ongoing(self.windows, &run) {
                        " and counting"
                    } else {
                        ""
                    },
                    members.len(),
                    if refusing.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ": {} {}",
                            self.names(table, &refusing).join(", "),
                            agree(refusing.len(), "refuses", "refuse"),
                        )
                    },
                    if silent.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} {}",
                            self.names(table, &silent).join(", "),
                            agree(silent.len(), "does not answer", "do not answer"),
                        )
                    },
                ),
            ),
            Scope::Scattered => (
                if sustained {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                format!(
                    "{share:.0} % of {} write requests to {} refused ({}) for {:.1} s, spread \
                     over members that all still commit (an election in progress, or replicas \
                     failing to acknowledge)",
                    all.total,
                    store.join(", "),
                    self.reasons(table, &run),
                    lasted_ms / 1000.0,
                ),
            ),
        };
        Finding {
            kind: FindingKind::QuorumFailure,
            severity,
            subject: Subject::Cluster,
            window: Window {
                start_ns: onset_ns,
                end_ns,
            },
            onset_ns: Some(onset_ns),
            summary,
            figures: vec![
                Figure::new("refused_share", share, "%"),
                Figure::new("writes", f64::from(all.total), "requests"),
                Figure::new("refused", f64::from(all.refused), "requests"),
                Figure::new("duration", lasted_ms / 1000.0, "s"),
                Figure::new("members_silent", silent.len() as f64, "members"),
            ],
            evidence: cx.evidence(self.refused_rows(&everyone, &run)),
            detector: "quorum",
        }
    }

    fn minority_failure(&self, cx: &Context<'_>, side: &[usize], run: Range<usize>) -> Finding {
        let table = cx.table;
        let refused = self.over(side.iter().copied(), &run);
        let rest: Vec<usize> = (0..self.instances.len())
            .filter(|i| !side.contains(i))
            .collect();
        let committed_elsewhere = self.over(rest.iter().copied(), &run).committed;
        let onset_ns = self.onset_ns(cx, side, &run);
        let end_ns = episode_end_ns(cx, &run);
        let lasted_s = (end_ns - onset_ns).max(0) as f64 / 1e9;
        let share = 100.0 * f64::from(refused.refused) / f64::from(refused.total.max(1));
        let names = self.names(table, side);
        Finding {
            kind: FindingKind::QuorumFailure,
            severity: Severity::Warning,
            subject: Subject::Nodes(names.clone()),
            window: Window {
                start_ns: onset_ns,
                end_ns,
            },
            onset_ns: Some(onset_ns),
            summary: format!(
                "only {} {} writes for want of a quorum ({share:.0} % of {} refused: {}) for \
                 {lasted_s:.1} s, while {} ({committed_elsewhere} writes)",
                names.join(", "),
                agree(names.len(), "refuses", "refuse"),
                refused.total,
                self.reasons(table, &run),
                match rest.len() {
                    0 => "nobody else commits".to_owned(),
                    n => format!(
                        "{} {}",
                        self.names(table, &rest).join(", "),
                        agree(n, "commits", "commit")
                    ),
                },
            ),
            figures: vec![
                Figure::new("refused_share", share, "%"),
                Figure::new("writes", f64::from(refused.total), "requests"),
                Figure::new("refused", f64::from(refused.refused), "requests"),
                Figure::new(
                    "committed_elsewhere",
                    f64::from(committed_elsewhere),
                    "requests",
                ),
                Figure::new("duration", lasted_s, "s"),
            ],
            evidence: cx.evidence(self.refused_rows(side, &run)),
            detector: "quorum",
        }
    }
}

/// The verb form for `n` subjects.
fn agree(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// Interned ids of those of `texts` the table has seen.
fn ids(table: &SpanTable, texts: &[&str]) -> Vec<u32> {
    texts.iter().filter_map(|t| table.strings.find(t)).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, SpanKind, StatusCode, TraceId};

    use super::*;
    use crate::config::Thresholds;
    use crate::table::from_spans;

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000_000 * MS;

    #[derive(Clone, Copy, PartialEq)]
    enum Answer {
        Commits,
        Refuses,
        Silent,
    }

    /// 20 s of KV puts, five a second at each of three nodes; from second 8 on,
    /// `answer` says what each node does with them.
    fn capture(answer: impl Fn(&str, u64) -> Answer) -> Vec<Finding> {
        let mut spans = Vec::new();
        let mut next = 0u64;
        for node in ["node-1", "node-2", "node-3"] {
            let mut resource = Resource::with_service("faultline-node");
            resource.attributes.insert("faultline.node", node);
            let resource = Arc::new(resource);
            for s in 0..20u64 {
                let answer = if s < 8 {
                    Answer::Commits
                } else {
                    answer(node, s)
                };
                if answer == Answer::Silent {
                    continue;
                }
                for i in 0..5 {
                    next += 1;
                    let mut trace = [0u8; 16];
                    trace[..8].copy_from_slice(&next.to_be_bytes());
                    let mut span = Span::new(TraceId(trace), SpanId(next.to_be_bytes()), "kv.put");
                    span.kind = SpanKind::Server;
                    span.start_ns = T0 + (s * 1000 + i * 190) * MS;
                    span.end_ns = span.start_ns + MS;
                    span.resource = resource.clone();
                    span.attributes.insert("db.system.name", "faultline");
                    span.attributes.insert("db.operation.name", "put");
                    span.attributes.insert("kv.w", 2i64);
                    if answer == Answer::Refuses {
                        span.status.code = StatusCode::Error;
                        span.attributes.insert("http.response.status_code", 503i64);
                        span.attributes.insert("error.type", "unavailable");
                        span.attributes.insert("kv.replicas_acked", 1i64);
                    } else {
                        span.attributes.insert("kv.replicas_acked", 2i64);
                    }
                    spans.push(span);
                }
            }
        }
        let table = from_spans(&spans);
        let thresholds = Thresholds::demo();
        let cx = Context::new(&table, &thresholds);
        QuorumFailures.check(&cx)
    }

    #[test]
    fn a_majority_gone_and_the_rest_refusing_is_a_critical_quorum_loss() {
        let findings = capture(|node, _| match node {
            "node-3" => Answer::Refuses,
            _ => Answer::Silent,
        });
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].subject, Subject::Cluster);
        assert_eq!(findings[0].severity, Severity::Critical);
        assert_eq!(findings[0].figure("refused_share"), Some(100.0));
        assert!(findings[0].summary.contains("node-1, node-2 do not answer"));
    }

    #[test]
    fn a_short_loss_is_what_an_election_costs_and_does_not_page() {
        // Two seconds without a quorum, then back: under the sustain time.
        let findings = capture(|_, s| {
            if s < 10 {
                Answer::Refuses
            } else {
                Answer::Commits
            }
        });
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].severity, Severity::Warning);
    }

    #[test]
    fn a_minority_refusing_while_the_majority_commits_names_the_minority() {
        let findings = capture(|node, _| {
            if node == "node-2" {
                Answer::Refuses
            } else {
                Answer::Commits
            }
        });
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(
            findings[0].subject,
            Subject::Nodes(vec!["node-2".to_owned()])
        );
        assert_eq!(findings[0].severity, Severity::Warning);
    }

    #[test]
    fn one_refused_window_is_a_blip() {
        let findings = capture(|node, s| {
            if node == "node-1" && s == 12 {
                Answer::Refuses
            } else {
                Answer::Commits
            }
        });
        assert!(findings.is_empty(), "{findings:#?}");
    }
}
