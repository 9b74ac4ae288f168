//! Elections: how often the Raft cluster elects, who leads, whether two members act as
//! leader at once, and whether the Raft links slowed down all together.
//!
//! ```text
//!  raft.election spans ──► campaigns ──► isolated candidates (futile runs) ─┐
//!                                   └──► elections ──► peak per window ─────┴─► ElectionRate
//!  raft.term + raft.leader_id ──► leader per term ──► changes ───────────────► LeaderChange
//!  raft.append_entries (client) ──► leadership per (node, term) ──► overlap ─► TwoLeaders
//!  Raft client spans per link ──► p90 per window vs baseline ──► many slow ──► LatencyRise
//! ```
//!
//! **Symptom**: leader flapping (an election storm), a leader change, a deposed leader
//! that keeps acting as one, Raft messages slowed down on every link.
//!
//! **Rule**: every campaign (`raft.election` span) after the cluster's first leader is
//! an election, counted over a sliding window of `election_rate_window_ms` and compared
//! with `elections_per_minute_warning` / `_critical`; a rate needs two elections (one is
//! a leader change, reported as such). Campaigns nobody answered, three or more in a row
//! by one node while no other node held an election, are not the cluster electing but a
//! candidate cut off from a majority: they are reported apart, and the election that
//! ends such a run (the candidate's return, whose inflated term deposes the leader, or
//! the majority's) counts once. The cluster forming at the start of the capture is no
//! election to count. A new leader for a higher term is a leader change. A node that
//! keeps sending appends for its term after another node started leading a higher one
//! is a second leader. Raft client spans whose p90 rises above `latency_factor` × the
//! baseline p90 (and `latency_min_rise_ms` above it) on two or more links, at least
//! half of those in use, are a Raft-link slowdown.
//!
//! **Where it comes from**: the etcd mixin's `etcdHighNumberOfLeaderChanges` (leader
//! changes over a 15-minute window) and Consul's `raft.state.candidate` counter for the
//! rate; the disruptive rejoin of a partitioned server is Ongaro's thesis §9.6 (the
//! reason for Pre-Vote); a stale leader of an older term is the Raft paper's §5.1
//! (terms fence it); the link signal is its timing requirement of §5.6 (broadcast time
//! ≪ election timeout: elections follow when RPCs approach the timeout).

use std::collections::HashMap;

use faultline_model::SpanKind;

use super::reachability::{episode_end_ns, episodes};
use super::replication::integer;
use crate::detector::{Context, Detector};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::table::{Cell, SpanTable, Sparse};

/// Unanswered campaigns in a row that make a node an isolated candidate.
const ISOLATED_RUN: usize = 3;
/// How long after an isolated run (in the candidate's own campaign lengths, its
/// election timeout) the elections its return forces are attributed to it.
const REJOIN_TIMEOUTS: i64 = 4;
/// Appends a deposed leader must keep sending after its successor started for the
/// overlap to be two leaders rather than one last heartbeat in flight.
const TWO_LEADERS_MIN_APPENDS: usize = 5;
/// Raft RPCs a link needs in a window for its p90 to be judged.
const LINK_MIN_CALLS: usize = 3;

#[derive(Debug, Default)]
pub struct Elections;

impl Detector for Elections {
    fn name(&self) -> &'static str {
        "election"
    }

    fn symptom(&self) -> &'static str {
        "Raft leader flapping, leader changes, two leaders at once, slow Raft links"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let table = cx.table;
        if table.attribute("raft.node_id").is_empty() {
            return Vec::new();
        }
        let raft = Raft::read(table);
        let mut findings = Vec::new();
        let leaders = raft.leaders_by_term(table);
        let changes = leader_changes(&leaders);
        findings.extend(raft.election_rate(cx, &leaders, &changes));
        findings.extend(raft.leader_change(cx, &changes));
        findings.extend(raft.two_leaders(cx));
        findings.extend(slow_links(cx));
        findings
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Won,
    Lost,
    /// The span ended with no outcome: the candidate heard back from nobody.
    Unanswered,
}

/// One `raft.election` span: a node campaigning for a term.
#[derive(Debug, Clone, Copy)]
struct Campaign {
    node: i64,
    term: i64,
    start_ns: i64,
    end_ns: i64,
    outcome: Outcome,
    row: u32,
}

/// The appends one node sent as leader of one term.
#[derive(Debug, Default)]
struct Leadership {
    node: i64,
    term: i64,
    /// Start of every append, and of the successful ones, ascending.
    starts: Vec<i64>,
    successes: Vec<i64>,
    rows: Vec<u32>,
}

/// Who led a term, and from when.
#[derive(Debug, Clone, Copy)]
struct TermLeader {
    term: i64,
    leader: i64,
    first_ns: i64,
    row: u32,
}

/// A new leader for a higher term.
#[derive(Debug, Clone, Copy)]
struct Change {
    from: TermLeader,
    to: TermLeader,
}

/// A node that campaigned again and again without an answer.
#[derive(Debug, Clone)]
struct IsolatedRun {
    node: i64,
    campaigns: usize,
    first_term: i64,
    last_term: i64,
    start_ns: i64,
    end_ns: i64,
}

#[derive(Debug)]
struct Raft {
    campaigns: Vec<Campaign>,
    leaderships: Vec<Leadership>,
    /// Instance name per Raft node id (the instance its spans mostly come from).
    names: HashMap<i64, u32>,
}

/// The `raft.leader_id` and `raft.term` cells of a row, as stored.
type LeaderTermCells = (Cell, Cell);

/// An integer attribute, also when written as text (the demo's `raft.*` spans do).
fn int(table: &SpanTable, column: &Sparse, row: u32) -> Option<i64> {
    integer(table, column.get(row)?)
}

impl Raft {
    fn read(table: &SpanTable) -> Raft {
        let election = table.strings.find("raft.election");
        let append = table.strings.find("raft.append_entries");
        let won = table.strings.find("won");
        let lost = table.strings.find("lost");
        let outcomes = table.attribute("raft.election.outcome");
        let node_ids = table.attribute("raft.node_id");
        let terms = table.attribute("raft.term");

        // One pass over the Raft spans. Consecutive rows mostly share a node, an
        // instance and a term, so the last lookups are remembered.
        let mut seen: HashMap<(i64, u32), u32> = HashMap::new();
        let mut campaigns = Vec::new();
        let mut leaderships: Vec<Leadership> = Vec::new();
        let mut leadership_index: HashMap<(i64, i64), usize> = HashMap::new();
        let mut last_node: Option<(Cell, Option<i64>)> = None;
        let mut last_leadership: Option<((i64, i64), usize)> = None;
        let mut pending_seen: Option<((i64, u32), u32)> = None;
        for (row, cell) in node_ids.iter() {
            let r = row as usize;
            let node = match last_node {
                Some((c, node)) if c == cell => node,
                _ => {
                    let node = integer(table, cell);
                    last_node = Some((cell, node));
                    node
                }
            };
            let Some(node) = node else {
                continue;
            };
            if table.instance[r] != 0 {
                match &mut pending_seen {
                    Some((key, count)) if *key == (node, table.instance[r]) => *count += 1,
                    _ => {
                        if let Some((key, count)) =
                            pending_seen.replace(((node, table.instance[r]), 1))
                        {
                            *seen.entry(key).or_default() += count;
                        }
                    }
                }
            }
            let name = Some(table.name[r]);
            if name == election {
                let Some(term) = int(table, terms, row) else {
                    continue;
                };
                let outcome = match outcomes.get(row).and_then(Cell::as_str) {
                    Some(o) if Some(o) == won => Outcome::Won,
                    Some(o) if Some(o) == lost => Outcome::Lost,
                    _ => Outcome::Unanswered,
                };
                campaigns.push(Campaign {
                    node,
                    term,
                    start_ns: table.start_ns[r],
                    end_ns: table.end_ns[r],
                    outcome,
                    row,
                });
            } else if name == append && table.kind[r] == SpanKind::Client {
                let Some(term) = int(table, terms, row) else {
                    continue;
                };
                let index = match last_leadership {
                    Some((key, index)) if key == (node, term) => index,
                    _ => {
                        let index = *leadership_index.entry((node, term)).or_insert_with(|| {
                            leaderships.push(Leadership {
                                node,
                                term,
                                ..Leadership::default()
                            });
                            leaderships.len() - 1
                        });
                        last_leadership = Some(((node, term), index));
                        index
                    }
                };
                let leadership = &mut leaderships[index];
                leadership.starts.push(table.start_ns[r]);
                if !table.error[r] {
                    leadership.successes.push(table.start_ns[r]);
                }
                leadership.rows.push(row);
            }
        }
        if let Some((key, count)) = pending_seen {
            *seen.entry(key).or_default() += count;
        }
        let mut names: HashMap<i64, (u32, u32)> = HashMap::new();
        for ((node, instance), count) in seen {
            let best = names.entry(node).or_insert((instance, 0));
            if count > best.1 || (count == best.1 && instance < best.0) {
                *best = (instance, count);
            }
        }
        campaigns.sort_by_key(|c| (c.start_ns, c.node));
        for leadership in &mut leaderships {
            let mut order: Vec<usize> = (0..leadership.starts.len()).collect();
            order.sort_by_key(|&i| leadership.starts[i]);
            leadership.rows = order.iter().map(|&i| leadership.rows[i]).collect();
            leadership.starts.sort_unstable();
            leadership.successes.sort_unstable();
        }
        leaderships.sort_by_key(|l| (l.term, l.node));
        Raft {
            campaigns,
            leaderships,
            names: names
                .into_iter()
                .map(|(node, (instance, _))| (node, instance))
                .collect(),
        }
    }

    fn name(&self, table: &SpanTable, node: i64) -> String {
        match self.names.get(&node) {
            Some(&instance) => table.str(instance).to_owned(),
            None => format!("raft node {node}"),
        }
    }

    /// The leader of each term, from every span that names one (a lost election's span
    /// names the leader its candidate last knew, not the term's, so it is left out).
    fn leaders_by_term(&self, table: &SpanTable) -> Vec<TermLeader> {
        let election = table.strings.find("raft.election");
        let won = table.strings.find("won");
        let outcomes = table.attribute("raft.election.outcome");
        let term_column = table.attribute("raft.term");
        let mut terms: HashMap<i64, TermLeader> = HashMap::new();
        let mut keep_earliest = |seen: TermLeader| {
            let entry = terms.entry(seen.term).or_insert(seen);
            if seen.first_ns < entry.first_ns {
                *entry = seen;
            }
        };
        // Rows of one term and leader come in runs: fold each run before the map.
        let mut pending: Option<TermLeader> = None;
        let mut last_cells: Option<(LeaderTermCells, Option<(i64, i64)>)> = None;
        for (row, cell) in table.attribute("raft.leader_id").iter() {
            let r = row as usize;
            if Some(table.name[r]) == election
                && (won.is_none() || outcomes.get(row).and_then(Cell::as_str) != won)
            {
                continue;
            }
            let Some(term_cell) = term_column.get(row) else {
                continue;
            };
            let parsed = match last_cells {
                Some((cells, parsed)) if cells == (cell, term_cell) => parsed,
                _ => {
                    let parsed = integer(table, cell).zip(integer(table, term_cell));
                    last_cells = Some(((cell, term_cell), parsed));
                    parsed
                }
            };
            let Some((leader, term)) = parsed else {
                continue;
            };
            let seen = TermLeader {
                term,
                leader,
                first_ns: table.start_ns[r],
                row,
            };
            match &mut pending {
                Some(p) if p.term == term && p.leader == leader => {
                    if seen.first_ns < p.first_ns {
                        *p = seen;
                    }
                }
                _ => {
                    if let Some(done) = pending.replace(seen) {
                        keep_earliest(done);
                    }
                }
            }
        }
        if let Some(done) = pending {
            keep_earliest(done);
        }
        let mut leaders: Vec<TermLeader> = terms.into_values().collect();
        leaders.sort_by_key(|l| l.term);
        leaders
    }

    /// Runs of unanswered campaigns by one node while nobody else held an election.
    fn isolated_runs(&self) -> (Vec<IsolatedRun>, Vec<bool>) {
        let mut futile = vec![false; self.campaigns.len()];
        let mut runs = Vec::new();
        let mut nodes: Vec<i64> = self.campaigns.iter().map(|c| c.node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        for node in nodes {
            let mine: Vec<usize> = (0..self.campaigns.len())
                .filter(|&i| self.campaigns[i].node == node)
                .collect();
            let mut i = 0;
            while i < mine.len() {
                let mut j = i;
                while j < mine.len() && self.campaigns[mine[j]].outcome == Outcome::Unanswered {
                    j += 1;
                }
                if j - i >= ISOLATED_RUN {
                    let first = self.campaigns[mine[i]];
                    let last = self.campaigns[mine[j - 1]];
                    let contested = self.campaigns.iter().any(|c| {
                        c.node != node
                            && c.outcome != Outcome::Unanswered
                            && c.start_ns < last.end_ns
                            && c.end_ns > first.start_ns
                    });
                    if !contested {
                        for &k in &mine[i..j] {
                            futile[k] = true;
                        }
                        runs.push(IsolatedRun {
                            node,
                            campaigns: j - i,
                            first_term: first.term,
                            last_term: last.term,
                            start_ns: first.start_ns,
                            end_ns: last.end_ns,
                        });
                    }
                }
                i = j.max(i + 1);
            }
        }
        (runs, futile)
    }

    fn election_rate(
        &self,
        cx: &Context<'_>,
        leaders: &[TermLeader],
        changes: &[Change],
    ) -> Option<Finding> {
        let table = cx.table;
        let (isolated, futile) = self.isolated_runs();
        // The cluster forming at the start of the capture is not an election to count.
        let first_leader_ns = leaders.iter().map(|l| l.first_ns).min().unwrap_or(i64::MAX);
        let baseline_end = cx.window_start(cx.baseline_windows());
        let startup = |c: &Campaign| c.start_ns <= first_leader_ns && c.start_ns < baseline_end;

        // The elections an isolated candidate's return forces: from its last unanswered
        // campaign until a leader is elected, within a few of its election timeouts.
        let mut rejoin: Vec<Option<usize>> = vec![None; self.campaigns.len()];
        for (index, run) in isolated.iter().enumerate() {
            let timeout = (run.end_ns - run.start_ns) / run.campaigns.max(1) as i64;
            let last_start = run.end_ns - timeout;
            let until = run.end_ns + REJOIN_TIMEOUTS * timeout;
            for (i, c) in self.campaigns.iter().enumerate() {
                if futile[i] || rejoin[i].is_some() || c.start_ns < last_start || c.start_ns > until
                {
                    continue;
                }
                rejoin[i] = Some(index);
                if c.outcome == Outcome::Won {
                    break;
                }
            }
        }

        // (time, campaign) of every counted election; a rejoin counts once.
        let mut elections: Vec<(i64, usize)> = Vec::new();
        let mut rejoins_counted = vec![false; isolated.len()];
        for (i, c) in self.campaigns.iter().enumerate() {
            if futile[i] || startup(c) {
                continue;
            }
            match rejoin[i] {
                Some(run) if rejoins_counted[run] => continue,
                Some(run) => rejoins_counted[run] = true,
                None => {}
            }
            elections.push((c.start_ns, i));
        }
        if elections.is_empty() && isolated.is_empty() {
            return None;
        }

        // The busiest stretch of `election_rate_window_ms`.
        let span_ns = ((cx.thresholds.election_rate_window_ms * 1e6) as i64).max(1);
        let (mut best, mut first) = (0, 0);
        let mut i = 0;
        for j in 0..elections.len() {
            while i < j && elections[j].0 - elections[i].0 >= span_ns {
                i += 1;
            }
            if j + 1 - i > best {
                best = j + 1 - i;
                first = i;
            }
        }
        let peak = &elections[first..first + best];
        let minutes = span_ns as f64 / 60e9;
        let per_minute = best as f64 / minutes;
        let severity = if best >= 2 && per_minute >= cx.thresholds.elections_per_minute_critical {
            Severity::Critical
        } else if best >= 2 && per_minute >= cx.thresholds.elections_per_minute_warning {
            Severity::Warning
        } else {
            Severity::Info
        };

        // Every campaign in the peak's time span (a rejoin's and its split votes too).
        let (from_ns, to_ns) = match (peak.first(), peak.last()) {
            (Some(&(start, _)), Some(&(_, last))) => {
                let end = self.campaigns[last].end_ns;
                let burst_end = self
                    .campaigns
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| rejoin[*i].is_some() && rejoin[*i] == rejoin[last])
                    .map(|(_, c)| c.end_ns)
                    .max()
                    .unwrap_or(end);
                (start, burst_end.max(end))
            }
            _ => (
                isolated
                    .iter()
                    .map(|r| r.start_ns)
                    .min()
                    .unwrap_or(cx.start_ns),
                isolated.iter().map(|r| r.end_ns).max().unwrap_or(cx.end_ns),
            ),
        };
        let in_peak: Vec<&Campaign> = self
            .campaigns
            .iter()
            .enumerate()
            .filter(|(i, c)| !futile[*i] && c.start_ns >= from_ns && c.start_ns <= to_ns)
            .map(|(_, c)| c)
            .collect();
        let mut terms: Vec<i64> = in_peak.iter().map(|c| c.term).collect();
        terms.sort_unstable();
        terms.dedup();
        let mut candidates: Vec<String> = Vec::new();
        for c in &in_peak {
            let name = self.name(table, c.node);
            if !candidates.contains(&name) {
                candidates.push(name);
            }
        }
        candidates.sort();
        let changes_in_peak = changes
            .iter()
            .filter(|c| c.to.first_ns >= from_ns && c.to.first_ns <= to_ns + cx.window_ns)
            .count();
        let leader_after = leaders
            .iter()
            .filter(|l| l.first_ns <= to_ns + cx.window_ns)
            .max_by_key(|l| l.term);
        let futile_campaigns: usize = isolated.iter().map(|r| r.campaigns).sum();

        let mut summary = if best >= 2 {
            format!(
                "{} {best} elections within {:.1} s by {} ({per_minute:.0} a minute over {:.0} s; \
                 warning at {:.0}, critical at {:.0}), terms {}→{}{}",
                if severity == Severity::Info {
                    "a few elections:"
                } else {
                    "election storm:"
                },
                (to_ns - from_ns) as f64 / 1e9,
                candidates.join(", "),
                cx.thresholds.election_rate_window_ms / 1000.0,
                cx.thresholds.elections_per_minute_warning,
                cx.thresholds.elections_per_minute_critical,
                terms.first().copied().unwrap_or(0),
                terms.last().copied().unwrap_or(0),
                match leader_after {
                    Some(l) => format!(", {} leading after", self.name(table, l.leader)),
                    None => ", no leader after".to_owned(),
                },
            )
        } else if best == 1 {
            format!(
                "one election after startup ({}{}): not a storm",
                match (terms.first(), terms.last()) {
                    (Some(a), Some(b)) if a != b => format!("terms {a}→{b}"),
                    (Some(a), _) => format!("term {a}"),
                    _ => "no term".to_owned(),
                },
                match leader_after {
                    Some(l) => format!(", {} elected", self.name(table, l.leader)),
                    None => String::new(),
                },
            )
        } else {
            "no election held by the cluster".to_owned()
        };
        for (index, run) in isolated.iter().enumerate() {
            summary.push_str(&format!(
                "; {} campaigned {} times without an answer (terms {}–{}, {:.1} s): it could not \
                 reach a majority{}",
                self.name(table, run.node),
                run.campaigns,
                run.first_term,
                run.last_term,
                (run.end_ns - run.start_ns) as f64 / 1e9,
                if rejoins_counted[index] {
                    " until the election that followed (counted once)"
                } else {
                    ""
                },
            ));
        }
        let evidence_rows: Vec<u32> = in_peak.iter().map(|c| c.row).collect();
        Some(Finding {
            kind: FindingKind::ElectionRate,
            severity,
            subject: Subject::Cluster,
            window: Window {
                start_ns: from_ns,
                end_ns: to_ns.max(from_ns),
            },
            onset_ns: peak.first().map(|&(start, _)| start),
            summary,
            figures: vec![
                Figure::new("elections", best as f64, "elections"),
                Figure::new("elections_per_minute", per_minute, "/min"),
                Figure::new("terms", terms.len() as f64, "terms"),
                Figure::new("leader_changes", changes_in_peak as f64, "changes"),
                Figure::new("futile_campaigns", futile_campaigns as f64, "campaigns"),
            ],
            evidence: cx.evidence(evidence_rows),
            detector: "election",
        })
    }

    /// One finding for a single leader change, one summarising finding for several.
    fn leader_change(&self, cx: &Context<'_>, changes: &[Change]) -> Option<Finding> {
        let table = cx.table;
        let (first, last) = (changes.first()?, changes.last()?);
        // Without a leader: from the old leader's last append that got through to the
        // new leader's first sign.
        let leaderless_ms = |change: &Change| {
            self.leaderships
                .iter()
                .filter(|l| l.node == change.from.leader && l.term == change.from.term)
                .filter_map(|l| {
                    let before = l.successes.partition_point(|&s| s < change.to.first_ns);
                    before.checked_sub(1).map(|i| l.successes[i])
                })
                .max()
                .map(|last_ok| (change.to.first_ns - last_ok).max(0) as f64 / 1e6)
        };
        let new_leader = self.name(table, last.to.leader);
        let mut figures = vec![
            Figure::new("changes", changes.len() as f64, "changes"),
            Figure::new("term", last.to.term as f64, "term"),
        ];
        let summary = if changes.len() == 1 {
            let leaderless = leaderless_ms(first);
            if let Some(ms) = leaderless {
                figures.push(Figure::new("leaderless", ms, "ms"));
            }
            format!(
                "leader changed from {} (term {}) to {new_leader} (term {}){}",
                self.name(table, first.from.leader),
                first.from.term,
                first.to.term,
                match leaderless {
                    Some(ms) => format!(", about {ms:.0} ms without a leader"),
                    None => String::new(),
                },
            )
        } else {
            let mut path = self.name(table, first.from.leader);
            for change in changes {
                path.push_str(&format!(
                    " → {} (term {})",
                    self.name(table, change.to.leader),
                    change.to.term
                ));
            }
            format!(
                "leader changed {} times in {:.1} s: {path}",
                changes.len(),
                (last.to.first_ns - first.to.first_ns) as f64 / 1e9,
            )
        };
        Some(Finding {
            kind: FindingKind::LeaderChange,
            severity: Severity::Warning,
            subject: Subject::Node(new_leader),
            window: Window {
                start_ns: first.to.first_ns,
                end_ns: last.to.first_ns.max(first.to.first_ns),
            },
            onset_ns: Some(first.to.first_ns),
            summary,
            figures,
            evidence: cx.evidence(changes.iter().map(|c| c.to.row)),
            detector: "election",
        })
    }

    /// A leader of an older term that keeps sending appends after a newer term's leader
    /// started: two nodes acting as leader at once.
    fn two_leaders(&self, cx: &Context<'_>) -> Vec<Finding> {
        let table = cx.table;
        let mut findings = Vec::new();
        for old in &self.leaderships {
            let successor = self.leaderships.iter().find_map(|new| {
                if new.term <= old.term || new.node == old.node {
                    return None;
                }
                let (&since, &until) = (new.starts.first()?, new.starts.last()?);
                let from = old.starts.partition_point(|&s| s < since);
                let to = old.starts.partition_point(|&s| s <= until);
                (to.saturating_sub(from) >= TWO_LEADERS_MIN_APPENDS).then_some((new, from, to))
            });
            let Some((new, from, to)) = successor else {
                continue;
            };
            let appends = to - from;
            let since = new.starts.first().copied().unwrap_or(cx.start_ns);
            let until = old.starts[to - 1];
            let succeeded = old
                .successes
                .partition_point(|&s| s <= until)
                .saturating_sub(old.successes.partition_point(|&s| s < since));
            let (old_name, new_name) = (self.name(table, old.node), self.name(table, new.node));
            // A deposed leader whose appends fail is fenced by its term and cannot
            // commit; one whose appends are still accepted is a real split brain.
            let severity = if 2 * succeeded > appends {
                Severity::Critical
            } else {
                Severity::Warning
            };
            findings.push(Finding {
                kind: FindingKind::TwoLeaders,
                severity,
                subject: Subject::Nodes(vec![old_name.clone(), new_name.clone()]),
                window: Window {
                    start_ns: since,
                    end_ns: until.max(since),
                },
                onset_ns: Some(since),
                summary: format!(
                    "two leaders at once: {old_name} kept acting as leader of term {} for {:.1} s \
                     after {new_name} started leading term {} ({appends} appends, {succeeded} \
                     accepted{})",
                    old.term,
                    (until - since) as f64 / 1e9,
                    new.term,
                    if severity == Severity::Warning {
                        ": the old leader is cut off and cannot commit"
                    } else {
                        ": followers still accept the old leader"
                    },
                ),
                figures: vec![
                    Figure::new("overlap", (until - since) as f64 / 1e9, "s"),
                    Figure::new("stale_appends", appends as f64, "appends"),
                    Figure::new("stale_appends_accepted", succeeded as f64, "appends"),
                    Figure::new("old_term", old.term as f64, "term"),
                    Figure::new("new_term", new.term as f64, "term"),
                ],
                evidence: cx.evidence(old.rows[from..to].iter().copied()),
                detector: "election",
            });
        }
        findings
    }
}

/// New leaders of higher terms, in term order (a node re-elected is no change).
fn leader_changes(leaders: &[TermLeader]) -> Vec<Change> {
    let mut changes = Vec::new();
    for pair in leaders.windows(2) {
        if pair[1].leader != pair[0].leader && pair[1].first_ns >= pair[0].first_ns {
            changes.push(Change {
                from: pair[0],
                to: pair[1],
            });
        }
    }
    changes
}

/// p90 of `values` (sorted in place).
fn p90(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let rank = ((values.len() as f64 * 0.9).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Raft RPCs (client spans of Raft members) slowing down on many links at once.
fn slow_links(cx: &Context<'_>) -> Vec<Finding> {
    let table = cx.table;
    let windows = cx.windows();
    let baseline = cx.baseline_windows().min(windows);
    // (link, window, duration ms, row) of every Raft client span.
    let mut rpcs: Vec<((u32, u32), usize, f64, u32)> = Vec::new();
    for (row, _) in table.attribute("raft.node_id").iter() {
        let r = row as usize;
        if table.kind[r] != SpanKind::Client {
            continue;
        }
        let link = (table.instance[r], table.peer[r]);
        let w = cx.window_of(table.start_ns[r]);
        rpcs.push((link, w, table.duration_ns(row) as f64 / 1e6, row));
    }
    if rpcs.is_empty() {
        return Vec::new();
    }
    let mut base: Vec<f64> = rpcs
        .iter()
        .filter(|rpc| rpc.1 < baseline)
        .map(|rpc| rpc.2)
        .collect();
    if base.len() < LINK_MIN_CALLS {
        return Vec::new();
    }
    let base_p90 = p90(&mut base);
    let threshold =
        (base_p90 * cx.thresholds.latency_factor).max(base_p90 + cx.thresholds.latency_min_rise_ms);

    rpcs.sort_unstable_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)).then(a.2.total_cmp(&b.2)));
    let mut links_used = vec![0usize; windows];
    let mut links_slow = vec![0usize; windows];
    let mut window_p90 = vec![f64::NAN; windows];
    let mut slowest: Vec<Vec<u32>> = vec![Vec::new(); windows];
    let mut start = 0;
    let mut all_in_window: Vec<f64> = Vec::new();
    while start < rpcs.len() {
        let (link, w) = (rpcs[start].0, rpcs[start].1);
        let mut end = start;
        while end < rpcs.len() && rpcs[end].0 == link && rpcs[end].1 == w {
            end += 1;
        }
        let group = &rpcs[start..end];
        if group.len() >= LINK_MIN_CALLS {
            links_used[w] += 1;
            let mut durations: Vec<f64> = group.iter().map(|rpc| rpc.2).collect();
            if p90(&mut durations) > threshold {
                links_slow[w] += 1;
                if let Some(rpc) = group.last() {
                    slowest[w].push(rpc.3);
                }
            }
        }
        all_in_window.extend(group.iter().map(|rpc| rpc.2));
        if rpcs.get(end).is_none_or(|next| next.1 != w) {
            window_p90[w] = p90(&mut all_in_window);
            all_in_window.clear();
        }
        start = end;
    }
    let slow: Vec<bool> = (0..windows)
        .map(|w| links_slow[w] >= 2 && 2 * links_slow[w] >= links_used[w])
        .collect();
    let mut findings = Vec::new();
    for run in episodes(&slow, baseline) {
        let worst = run
            .clone()
            .map(|w| window_p90[w])
            .filter(|p| p.is_finite())
            .fold(0.0, f64::max);
        let links = run.clone().map(|w| links_slow[w]).max().unwrap_or(0);
        let used = run.clone().map(|w| links_used[w]).max().unwrap_or(0);
        let in_run: Vec<&((u32, u32), usize, f64, u32)> =
            rpcs.iter().filter(|rpc| run.contains(&rpc.1)).collect();
        let failed = in_run
            .iter()
            .filter(|rpc| table.error[rpc.3 as usize])
            .count();
        let failed_share = 100.0 * failed as f64 / in_run.len().max(1) as f64;
        let onset_ns = cx.window_start(run.start);
        let end_ns = episode_end_ns(cx, &run);
        findings.push(Finding {
            kind: FindingKind::LatencyRise,
            severity: Severity::Warning,
            subject: Subject::RaftLinks,
            window: Window {
                start_ns: onset_ns,
                end_ns,
            },
            onset_ns: Some(onset_ns),
            summary: format!(
                "Raft messages slowed on {links} of {used} links at once: p90 {worst:.0} ms \
                 against {base_p90:.1} ms before, {failed_share:.0} % of them failing, for \
                 {:.1} s; past the election timeout this deposes leaders",
                (end_ns - onset_ns) as f64 / 1e9,
            ),
            figures: vec![
                Figure::new("p90", worst, "ms"),
                Figure::new("baseline_p90", base_p90, "ms"),
                Figure::new("slow_links", links as f64, "links"),
                Figure::new("links", used as f64, "links"),
                Figure::new("failed_share", failed_share, "%"),
            ],
            evidence: cx.evidence(run.clone().flat_map(|w| slowest[w].iter().copied())),
            detector: "election",
        });
    }
    findings
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

    /// A Raft cluster's spans, with the demo's habit of writing numbers as text.
    #[derive(Default)]
    struct Cluster {
        spans: Vec<Span>,
        next: u64,
    }

    impl Cluster {
        fn span(&mut self, node: i64, name: &str, at_ms: u64, duration_ms: u64) -> &mut Span {
            let mut resource = Resource::with_service("faultline-node");
            resource
                .attributes
                .insert("faultline.node", format!("node-{node}"));
            self.next += 1;
            let mut trace = [0u8; 16];
            trace[..8].copy_from_slice(&self.next.to_be_bytes());
            let mut span = Span::new(TraceId(trace), SpanId(self.next.to_be_bytes()), name);
            span.start_ns = T0 + at_ms * MS;
            span.end_ns = span.start_ns + duration_ms * MS;
            span.resource = Arc::new(resource);
            span.attributes.insert("raft.node_id", node.to_string());
            self.spans.push(span);
            let last = self.spans.len() - 1;
            &mut self.spans[last]
        }

        fn campaign(&mut self, node: i64, term: i64, at_ms: u64, outcome: Option<&str>) {
            let span = self.span(node, "raft.election", at_ms, 400);
            span.kind = SpanKind::Internal;
            span.attributes.insert("raft.term", term.to_string());
            if let Some(outcome) = outcome {
                span.attributes.insert("raft.election.outcome", outcome);
                if outcome == "won" {
                    span.attributes.insert("raft.leader_id", node.to_string());
                }
            }
        }

        /// Appends from `leader` (term `term`) to its two peers every 100 ms over
        /// `from_ms..to_ms`, each taking `duration_ms`.
        fn appends(
            &mut self,
            leader: i64,
            term: i64,
            from_ms: u64,
            to_ms: u64,
            duration_ms: u64,
            failing: bool,
        ) {
            for at in (from_ms..to_ms).step_by(100) {
                for peer in (1..=3).filter(|&p| p != leader) {
                    let span = self.span(leader, "raft.append_entries", at, duration_ms);
                    span.kind = SpanKind::Client;
                    span.attributes.insert("raft.term", term.to_string());
                    span.attributes.insert("raft.leader_id", leader.to_string());
                    span.attributes.insert("raft.peer_id", peer.to_string());
                    span.attributes
                        .insert("server.address", format!("node-{peer}"));
                    if failing {
                        span.status.code = StatusCode::Error;
                    }
                }
            }
        }

        fn check(&self) -> Vec<Finding> {
            let table = from_spans(&self.spans);
            let thresholds = Thresholds::demo();
            let cx = Context::new(&table, &thresholds);
            Elections.check(&cx)
        }

        /// node-1 elected at the start, leading for `until_ms`.
        fn started(until_ms: u64) -> Cluster {
            let mut cluster = Cluster::default();
            cluster.campaign(1, 1, 0, Some("won"));
            cluster.appends(1, 1, 10, until_ms, 2, false);
            cluster
        }
    }

    fn of(findings: &[Finding], kind: FindingKind) -> Vec<&Finding> {
        findings.iter().filter(|f| f.kind == kind).collect()
    }

    #[test]
    fn repeated_elections_are_a_critical_storm() {
        let mut cluster = Cluster::started(30_000);
        cluster.campaign(3, 2, 16_400, None);
        cluster.campaign(3, 3, 16_850, Some("lost"));
        cluster.campaign(1, 3, 16_950, Some("lost"));
        cluster.campaign(1, 4, 17_400, Some("won"));
        let findings = cluster.check();
        let rate = of(&findings, FindingKind::ElectionRate);
        assert_eq!(rate.len(), 1, "{findings:#?}");
        assert_eq!(rate[0].severity, Severity::Critical);
        assert_eq!(rate[0].figure("elections"), Some(4.0));
        // node-1 led before and after: no leader change.
        assert!(of(&findings, FindingKind::LeaderChange).is_empty());
    }

    #[test]
    fn one_election_is_a_leader_change_not_a_storm() {
        let mut cluster = Cluster::started(10_000);
        cluster.campaign(2, 2, 11_000, Some("won"));
        cluster.appends(2, 2, 11_010, 30_000, 2, false);
        let findings = cluster.check();
        let rate = of(&findings, FindingKind::ElectionRate);
        assert_eq!(rate.len(), 1);
        assert_eq!(rate[0].severity, Severity::Info);
        let change = of(&findings, FindingKind::LeaderChange);
        assert_eq!(change.len(), 1);
        assert_eq!(change[0].subject, Subject::Node("node-2".to_owned()));
        assert!(
            change[0]
                .summary
                .contains("node-1 (term 1) to node-2 (term 2)")
        );
        assert!(of(&findings, FindingKind::TwoLeaders).is_empty());
    }

    #[test]
    fn a_deposed_leader_still_sending_appends_is_a_second_leader() {
        let mut cluster = Cluster::started(10_000);
        cluster.appends(1, 1, 10_000, 25_000, 1, true);
        cluster.campaign(2, 2, 11_000, Some("won"));
        cluster.appends(2, 2, 11_010, 30_000, 2, false);
        let findings = cluster.check();
        let two = of(&findings, FindingKind::TwoLeaders);
        assert_eq!(two.len(), 1, "{findings:#?}");
        assert_eq!(
            two[0].subject,
            Subject::Nodes(vec!["node-1".to_owned(), "node-2".to_owned()])
        );
        assert_eq!(two[0].severity, Severity::Warning);
    }

    #[test]
    fn a_cut_off_candidate_is_not_a_storm() {
        let mut cluster = Cluster::started(30_000);
        for k in 0..20 {
            cluster.campaign(2, 2 + k, 11_000 + k as u64 * 450, None);
        }
        let findings = cluster.check();
        let rate = of(&findings, FindingKind::ElectionRate);
        assert_eq!(rate.len(), 1);
        assert_eq!(rate[0].severity, Severity::Info);
        assert_eq!(rate[0].figure("futile_campaigns"), Some(20.0));
        assert!(of(&findings, FindingKind::LeaderChange).is_empty());
    }

    #[test]
    fn raft_messages_slowing_on_every_link_is_a_latency_rise() {
        let mut cluster = Cluster::started(10_000);
        cluster.appends(1, 1, 10_000, 25_000, 80, true);
        let findings = cluster.check();
        let slow = of(&findings, FindingKind::LatencyRise);
        assert_eq!(slow.len(), 1, "{findings:#?}");
        assert_eq!(slow[0].subject, Subject::RaftLinks);
    }

    #[test]
    fn one_slow_follower_is_not_the_raft_links() {
        let mut cluster = Cluster::started(30_000);
        for at in (10_000..25_000).step_by(100) {
            let span = cluster.span(1, "raft.append_entries", at, 80);
            span.kind = SpanKind::Client;
            span.attributes.insert("raft.term", "1");
            span.attributes.insert("server.address", "node-2");
        }
        assert!(of(&cluster.check(), FindingKind::LatencyRise).is_empty());
    }

    #[test]
    fn a_healthy_cluster_and_a_cluster_without_raft_have_no_findings() {
        assert!(Cluster::started(30_000).check().is_empty());
        let mut plain = Cluster::default();
        for at in 0..100 {
            plain.span(1, "GET /", at * 100, 1).attributes = Default::default();
        }
        assert!(plain.check().is_empty());
    }
}
