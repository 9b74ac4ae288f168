//! The diagnosis engine: findings in, ranked incident diagnoses out.
//!
//! ```text
//!  findings ──► one rule per incident kind ──► candidates (score, root causes, why)
//!                                                └─► ranked by score, then onset
//! ```
//!
//! Each rule reads the findings that characterise its incident and, just as much, the
//! ones that would explain the symptoms better: an election storm is not the
//! diagnosis when a node is down (that is a leader loss), a cascade is not when the
//! edge into its first domino is amplifying retries (that is a retry storm). A rule
//! only fires on findings of warning severity or above, so a healthy capture yields
//! no diagnosis. Scores are in [0, 1]: how specific and how strong the evidence is.

use std::collections::BTreeSet;

use faultline_model::TraceId;
use serde::{Serialize, Serializer};

use crate::finding::{Finding, FindingKind, MAX_EVIDENCE, Severity, Subject};

/// The incidents faultline diagnoses; each has a playbook of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    NetworkPartition,
    SplitBrain,
    QuorumLoss,
    LeaderLoss,
    ElectionStorm,
    RetryStorm,
    CascadingFailure,
    DependencyDegradation,
    ReplicationLag,
    StaleReads,
    ConsumerLag,
    PoisonMessages,
    ClockSkew,
    HotPartition,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 14] = [
        IncidentKind::NetworkPartition,
        IncidentKind::SplitBrain,
        IncidentKind::QuorumLoss,
        IncidentKind::LeaderLoss,
        IncidentKind::ElectionStorm,
        IncidentKind::RetryStorm,
        IncidentKind::CascadingFailure,
        IncidentKind::DependencyDegradation,
        IncidentKind::ReplicationLag,
        IncidentKind::StaleReads,
        IncidentKind::ConsumerLag,
        IncidentKind::PoisonMessages,
        IncidentKind::ClockSkew,
        IncidentKind::HotPartition,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::NetworkPartition => "network_partition",
            IncidentKind::SplitBrain => "split_brain",
            IncidentKind::QuorumLoss => "quorum_loss",
            IncidentKind::LeaderLoss => "leader_loss",
            IncidentKind::ElectionStorm => "election_storm",
            IncidentKind::RetryStorm => "retry_storm",
            IncidentKind::CascadingFailure => "cascading_failure",
            IncidentKind::DependencyDegradation => "dependency_degradation",
            IncidentKind::ReplicationLag => "replication_lag",
            IncidentKind::StaleReads => "stale_reads",
            IncidentKind::ConsumerLag => "consumer_lag",
            IncidentKind::PoisonMessages => "poison_messages",
            IncidentKind::ClockSkew => "clock_skew",
            IncidentKind::HotPartition => "hot_partition",
        }
    }

    pub fn parse(text: &str) -> Option<IncidentKind> {
        IncidentKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The playbook that handles this incident (file name without extension).
    pub fn playbook(self) -> &'static str {
        match self {
            IncidentKind::NetworkPartition => "network-partition",
            IncidentKind::SplitBrain => "split-brain",
            IncidentKind::QuorumLoss => "quorum-loss",
            IncidentKind::LeaderLoss => "leader-loss",
            IncidentKind::ElectionStorm => "election-storm",
            IncidentKind::RetryStorm => "retry-storm",
            IncidentKind::CascadingFailure | IncidentKind::DependencyDegradation => {
                "cascading-failure"
            }
            IncidentKind::ReplicationLag => "replication-lag",
            IncidentKind::StaleReads => "stale-reads",
            IncidentKind::ConsumerLag => "consumer-lag",
            IncidentKind::PoisonMessages => "poison-messages",
            IncidentKind::ClockSkew => "clock-skew",
            IncidentKind::HotPartition => "hot-partition",
        }
    }

    /// How the incident is called in a sentence.
    pub fn title(self) -> &'static str {
        match self {
            IncidentKind::NetworkPartition => "Network partition",
            IncidentKind::SplitBrain => "Split brain: two leaders",
            IncidentKind::QuorumLoss => "Quorum loss: writes refused",
            IncidentKind::LeaderLoss => "Leader loss, election, recovery",
            IncidentKind::ElectionStorm => "Leader election storm",
            IncidentKind::RetryStorm => "Retry storm",
            IncidentKind::CascadingFailure => "Cascading failure",
            IncidentKind::DependencyDegradation => "Dependency degradation",
            IncidentKind::ReplicationLag => "Replication lag",
            IncidentKind::StaleReads => "Consistency violation: stale reads",
            IncidentKind::ConsumerLag => "Queue consumer lag",
            IncidentKind::PoisonMessages => "Poison messages, dead-letter queue growing",
            IncidentKind::ClockSkew => "Clock skew",
            IncidentKind::HotPartition => "Hot partition",
        }
    }
}

/// A candidate root cause: what is wrong, and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RootCause {
    /// `node_crash`, `network_partition`, `retry_storm`, … (the same vocabulary as
    /// the scenarios' ground truth).
    pub kind: &'static str,
    /// The node(s), service, edge (`a->b`), queue, key or setting.
    pub target: String,
    pub score: f64,
    /// Why this candidate, in one sentence.
    pub because: String,
}

/// One step of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moment {
    pub at_ns: i64,
    pub what: String,
}

/// A ranked explanation of what is going on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub kind: IncidentKind,
    pub title: String,
    pub severity: Severity,
    /// In [0, 1].
    pub confidence: f64,
    pub onset_ns: Option<i64>,
    /// Best first.
    pub root_causes: Vec<RootCause>,
    /// Plain sentences: what happened, why this diagnosis, what to do first.
    pub explanation: Vec<String>,
    pub timeline: Vec<Moment>,
    #[serde(serialize_with = "trace_ids")]
    pub evidence: Vec<TraceId>,
    pub playbook: &'static str,
    /// Indices into the report's findings.
    pub findings: Vec<usize>,
}

fn trace_ids<S: Serializer>(ids: &[TraceId], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(ids.iter().map(ToString::to_string))
}

/// The findings a rule looks at, with their indices.
struct Facts<'a> {
    findings: &'a [Finding],
}

impl<'a> Facts<'a> {
    /// Findings of `kind` at warning or above, strongest and earliest first.
    fn of(&self, kind: FindingKind) -> Vec<(usize, &'a Finding)> {
        let mut found: Vec<(usize, &Finding)> = self
            .findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind == kind && f.severity >= Severity::Warning)
            .collect();
        found.sort_by(|a, b| {
            b.1.severity
                .cmp(&a.1.severity)
                .then(a.1.starts_ns().cmp(&b.1.starts_ns()))
        });
        found
    }

    fn first(&self, kind: FindingKind) -> Option<(usize, &'a Finding)> {
        self.of(kind).into_iter().next()
    }

    fn has(&self, kind: FindingKind) -> bool {
        !self.of(kind).is_empty()
    }

    fn critical(&self, kind: FindingKind) -> Option<(usize, &'a Finding)> {
        self.first(kind)
            .filter(|(_, f)| f.severity == Severity::Critical)
    }
}

/// Builds a diagnosis from its supporting findings.
struct Draft<'a> {
    kind: IncidentKind,
    score: f64,
    title: String,
    causes: Vec<RootCause>,
    explanation: Vec<String>,
    support: Vec<(usize, &'a Finding)>,
}

impl<'a> Draft<'a> {
    fn new(kind: IncidentKind, score: f64, title: String) -> Self {
        Draft {
            kind,
            score,
            title,
            causes: Vec::new(),
            explanation: Vec::new(),
            support: Vec::new(),
        }
    }

    fn cause(
        mut self,
        kind: &'static str,
        target: impl Into<String>,
        score: f64,
        because: impl Into<String>,
    ) -> Self {
        self.causes.push(RootCause {
            kind,
            target: target.into(),
            score,
            because: because.into(),
        });
        self
    }

    fn say(mut self, sentence: impl Into<String>) -> Self {
        self.explanation.push(sentence.into());
        self
    }

    fn with(mut self, support: impl IntoIterator<Item = (usize, &'a Finding)>) -> Self {
        for item in support {
            if !self.support.iter().any(|(i, _)| *i == item.0) {
                self.support.push(item);
            }
        }
        self
    }

    fn finish(self) -> Diagnosis {
        let severity = self
            .support
            .iter()
            .map(|(_, f)| f.severity)
            .max()
            .unwrap_or(Severity::Info);
        let onset_ns = self.support.iter().map(|(_, f)| f.starts_ns()).min();
        let mut timeline: Vec<Moment> = self
            .support
            .iter()
            .map(|(_, f)| Moment {
                at_ns: f.starts_ns(),
                what: f.summary.clone(),
            })
            .collect();
        timeline.sort_by_key(|m| m.at_ns);
        let mut evidence: Vec<TraceId> = Vec::new();
        for (_, finding) in &self.support {
            for id in &finding.evidence {
                if evidence.len() < MAX_EVIDENCE && !evidence.contains(id) {
                    evidence.push(*id);
                }
            }
        }
        let mut findings: Vec<usize> = self.support.iter().map(|(i, _)| *i).collect();
        findings.sort_unstable();
        let mut causes = self.causes;
        causes.sort_by(|a, b| b.score.total_cmp(&a.score));
        Diagnosis {
            kind: self.kind,
            title: self.title,
            severity,
            confidence: self.score.clamp(0.0, 1.0),
            onset_ns,
            root_causes: causes,
            explanation: self.explanation,
            timeline,
            evidence,
            playbook: self.kind.playbook(),
            findings,
        }
    }
}

fn nodes_of(subject: &Subject) -> Vec<String> {
    match subject {
        Subject::Node(n) => vec![n.clone()],
        Subject::Nodes(nodes) => nodes.clone(),
        _ => Vec::new(),
    }
}

/// Ranks diagnoses from `findings` (as the detectors made them).
pub fn diagnose(findings: &[Finding]) -> Vec<Diagnosis> {
    let facts = Facts { findings };
    let mut drafts: Vec<Draft<'_>> = Vec::new();

    let down = facts.of(FindingKind::NodeDown);
    let down_nodes: BTreeSet<String> = down
        .iter()
        .flat_map(|(_, f)| nodes_of(&f.subject))
        .collect();
    let partition = facts.first(FindingKind::Partition);
    let quorum = facts.first(FindingKind::QuorumFailure);
    let elections = facts.first(FindingKind::ElectionRate);
    let leader_changes = facts.of(FindingKind::LeaderChange);
    let two_leaders = facts.first(FindingKind::TwoLeaders);

    // Quorum loss: a majority down, or writes refused for want of a quorum.
    if down_nodes.len() >= 2 {
        let nodes: Vec<String> = down_nodes.iter().cloned().collect();
        let target = nodes.join(",");
        let draft = Draft::new(
            IncidentKind::QuorumLoss,
            if quorum.is_some() { 0.95 } else { 0.85 },
            format!("Quorum loss: {} are down, writes are refused", nodes.join(" and ")),
        )
        .cause("quorum_loss", &target, 0.9, format!("{} stopped answering at about the same time; without them the cluster has no majority.", nodes.join(" and ")))
        .say(format!("{} nodes stopped emitting spans and refuse connections; a Raft cluster needs a majority to elect a leader and commit writes.", nodes.len()))
        .say("Bring the down nodes back (or restore their network) before anything else; do not add new members while the majority is missing.")
        .with(down.iter().copied())
        .with(quorum);
        drafts.push(draft);
    } else if let Some(q) = quorum.filter(|(_, f)| f.severity == Severity::Critical) {
        drafts.push(
            Draft::new(
                IncidentKind::QuorumLoss,
                0.6,
                "Quorum loss: writes refused".to_owned(),
            )
            .cause(
                "quorum_loss",
                q.1.subject.to_string(),
                0.5,
                q.1.summary.clone(),
            )
            .say(q.1.summary.clone())
            .with([q]),
        );
    }

    // Leader loss: one node down, followed by a leader change.
    if down_nodes.len() == 1 {
        let node = down_nodes.iter().next().cloned().unwrap_or_default();
        let changed = !leader_changes.is_empty() || elections.is_some();
        let mut draft = Draft::new(
            IncidentKind::LeaderLoss,
            if changed { 0.9 } else { 0.7 },
            format!("{node} went down; leader election and recovery"),
        )
        .cause("node_crash", &node, 0.9, format!("{node} stopped emitting spans while calls to it failed: the process is gone or hung, not cut off."))
        .say(format!("{node} went silent and its peers' calls to it fail (refused or timing out): the process crashed or hung. A node merely cut off would go on emitting spans."))
        .with(down.iter().copied())
        .with(leader_changes.iter().copied())
        .with(elections);
        if changed {
            draft = draft.say("The remaining nodes elected a new leader; clients retrying through other nodes recover once it serves.");
        } else {
            draft = draft.say("No leader change was seen: the node was a follower, or the capture ends before the election.");
        }
        drafts.push(draft.say("Restart the node (it rejoins and catches up from the log) and check why it died: OOM kill, panic, host."));
    }

    // Network partition: groups alive but unable to reach each other.
    if let Some((i, p)) = partition {
        let minority = nodes_of(&p.subject).join(",");
        let leader_cut = two_leaders.is_some() || !leader_changes.is_empty();
        let mut draft = Draft::new(
            IncidentKind::NetworkPartition,
            if p.severity == Severity::Critical {
                0.92
            } else {
                0.75
            },
            format!("Network partition: {minority} cut off"),
        )
        .cause("network_partition", &minority, 0.9, p.summary.clone())
        .say(p.summary.clone())
        .with([(i, p)])
        .with(facts.of(FindingKind::Unreachable));
        if leader_cut {
            draft = draft
                .say("The leader was on the cut-off side: the majority elected a new leader, and the old one cannot commit anything (its writes are fenced by the higher term).")
                .with(leader_changes.iter().copied())
                .with(two_leaders);
        }
        drafts.push(draft.say("Restore connectivity between the groups (network policy, firewall, routes); the minority catches up by itself once it can reach the leader."));
    } else if let Some(two) = two_leaders {
        drafts.push(
            Draft::new(
                IncidentKind::SplitBrain,
                0.6,
                "Two nodes acting as leader".to_owned(),
            )
            .cause(
                "network_partition",
                two.1.subject.to_string(),
                0.5,
                two.1.summary.clone(),
            )
            .say(two.1.summary.clone())
            .with([two]),
        );
    }

    // Raft messages slowing on most links at once: heartbeats late past the election
    // timeout are what starts a storm, so this is its earliest sign.
    let links = facts
        .of(FindingKind::LatencyRise)
        .into_iter()
        .find(|(_, f)| f.subject == Subject::RaftLinks);
    if elections.is_none()
        && let Some(l) = links
        && down_nodes.is_empty()
        && partition.is_none()
    {
        drafts.push(
            Draft::new(IncidentKind::ElectionStorm, 0.75, "Raft links slowed: leader elections at risk".to_owned())
                .cause("network_delay", "raft links", 0.75, l.1.summary.clone())
                .say(l.1.summary.clone())
                .say("When heartbeats arrive after the election timeout, followers start elections and leadership flaps; find what delays Raft traffic before it does.")
                .with([l]),
        );
    }

    // Election storm: repeated elections that no dead node or partition explains.
    if let Some(e) = elections {
        let explained = !down_nodes.is_empty() || partition.is_some();
        let score = match (e.1.severity, explained) {
            (Severity::Critical, false) => 0.9,
            (_, false) => 0.7,
            (_, true) => 0.3,
        };
        let mut draft = Draft::new(
            IncidentKind::ElectionStorm,
            score,
            "Leader election storm".to_owned(),
        )
        .say(e.1.summary.clone())
        .with([e])
        .with(leader_changes.iter().copied());
        if let Some(l) = links {
            draft = draft
                .cause("network_delay", "raft links", 0.85, l.1.summary.clone())
                .say("Raft messages are slow on many links at once: heartbeats arrive after the election timeout, so followers keep starting elections.")
                .with([l]);
        } else {
            draft = draft.cause("network_delay", "raft links", 0.5, "Elections repeat without a node down or a partition; the usual cause is heartbeats delayed past the election timeout.");
        }
        drafts.push(draft.say("Find what delays Raft traffic (network latency, CPU starvation, GC, disk stalls on the leader); raise the election timeout only once the cause is known."));
    }

    // Retry storm: an edge multiplying attempts.
    let retries = facts.of(FindingKind::RetryAmplification);
    let storm = retries
        .iter()
        .filter(|(_, f)| f.figure("starts_here").unwrap_or(1.0) > 0.5)
        .max_by(|a, b| {
            a.1.severity.cmp(&b.1.severity).then(
                a.1.figure("amplification")
                    .unwrap_or(0.0)
                    .total_cmp(&b.1.figure("amplification").unwrap_or(0.0)),
            )
        })
        .copied();
    if let Some((i, r)) = storm {
        let edge = r.subject.to_string();
        let callee = match &r.subject {
            Subject::Edge(_, to) => to.clone(),
            _ => String::new(),
        };
        let slow = facts
            .of(FindingKind::LatencyRise)
            .into_iter()
            .chain(facts.of(FindingKind::ErrorRise))
            .filter(|(_, f)| f.subject.involves(&callee));
        drafts.push(
            Draft::new(
                IncidentKind::RetryStorm,
                if r.severity == Severity::Critical { 0.93 } else { 0.65 },
                format!("Retry storm at the {edge} hop"),
            )
            .cause("retry_storm", &edge, 0.9, r.summary.clone())
            .say(r.summary.clone())
            .say(format!("Every slow or failed call to {callee} is sent again, so {callee} gets more load exactly when it can take the least; the retries, not the first slowdown, keep it down."))
            .say("Cap the retries: exponential backoff with jitter, a retry budget, and a circuit breaker on the caller; shed load at the edge if needed.")
            .with([(i, r)])
            .with(slow)
            .with(facts.of(FindingKind::BreakerOpen)),
        );
    }

    // Cascading failure: slowness spreading up the call graph from a first domino.
    if let Some((i, c)) = facts.first(FindingKind::CascadingFailure) {
        let domino = c.subject.to_string();
        let retried_into = storm.is_some_and(|(_, r)| {
            matches!(&r.subject, Subject::Edge(_, to) if to == &domino)
                && r.severity == Severity::Critical
        });
        // Trouble inside the store (a node down, a partition, lost quorum, elections,
        // lag, skew, a hot key) degrades every service above it: the cascade is then a
        // consequence, and the more specific diagnosis is the story.
        let cluster_trouble = [
            FindingKind::NodeDown,
            FindingKind::Partition,
            FindingKind::QuorumFailure,
            FindingKind::ElectionRate,
            FindingKind::TwoLeaders,
            FindingKind::ReplicationLag,
            FindingKind::StaleRead,
            FindingKind::ClockSkew,
            FindingKind::HotKey,
        ]
        .into_iter()
        .any(|kind| facts.has(kind));
        drafts.push(
            Draft::new(
                IncidentKind::CascadingFailure,
                if retried_into || cluster_trouble { 0.5 } else if c.severity == Severity::Critical { 0.88 } else { 0.7 },
                format!("Cascading failure; first domino: {domino}"),
            )
            .cause("dependency_slowdown", &domino, 0.85, c.summary.clone())
            .say(c.summary.clone())
            .say(format!("Fix or shed load on {domino} first; the services above it recover when it does. Breakers and timeouts on its callers keep the damage from spreading."))
            .with([(i, c)])
            .with(facts.of(FindingKind::BreakerOpen)),
        );
    }

    // Replication lag on one follower.
    for (i, lag) in facts.of(FindingKind::ReplicationLag) {
        let nodes = nodes_of(&lag.subject);
        if nodes.iter().any(|n| down_nodes.contains(n))
            || partition.is_some_and(|(_, p)| nodes.iter().any(|n| p.subject.involves(n)))
        {
            continue;
        }
        let node = lag.subject.to_string();
        let disk = lag.figure("follower_share").unwrap_or(0.0) >= 0.5;
        let (kind, because) = if disk {
            (
                "slow_disk",
                format!(
                    "Most of the replication time is spent inside {node} itself (its append and fsync), not on the network."
                ),
            )
        } else {
            (
                "network_delay",
                format!("The time is spent between the leader and {node}, not inside {node}."),
            )
        };
        // Repeated elections stall replication to every follower: the lag is then
        // their symptom.
        let storm =
            elections.is_some_and(|(_, e)| e.severity == Severity::Critical) || links.is_some();
        drafts.push(
            Draft::new(
                IncidentKind::ReplicationLag,
                match (lag.severity, storm) {
                    (_, true) => 0.5,
                    (Severity::Critical, false) => 0.85,
                    (_, false) => 0.7,
                },
                format!("Replication lag on {node}"),
            )
            .cause(kind, &node, 0.8, because)
            .say(lag.summary.clone())
            .say(format!("Reads served by {node} may be stale while it lags; check its disk latency and load before it falls far enough behind to need a snapshot."))
            .with([(i, lag)])
            .with(facts.of(FindingKind::StaleRead)),
        );
        break;
    }

    // Stale reads.
    if let Some((i, s)) = facts.first(FindingKind::StaleRead) {
        let misconfigured = matches!(s.subject, Subject::KvQuorum { .. });
        let mut draft = Draft::new(
            IncidentKind::StaleReads,
            if misconfigured { 0.93 } else { 0.6 },
            "Consistency violation: stale reads".to_owned(),
        )
        .say(s.summary.clone())
        .with([(i, s)]);
        draft = if misconfigured {
            draft
                .cause("quorum_misconfiguration", s.subject.to_string(), 0.9, "Read and write quorums do not overlap (R + W ≤ N), so a read can miss the latest acknowledged write.")
                .say("Set R + W > N (e.g. R=2, W=2 with N=3) and re-read the keys written meanwhile.")
        } else {
            draft.cause(
                "replication_lag",
                s.subject.to_string(),
                0.6,
                "Reads were answered by a replica that had not yet applied the latest write.",
            )
        };
        drafts.push(draft);
    }

    // Queue consumer lag.
    if let Some((i, c)) = facts.first(FindingKind::ConsumerLag) {
        let downstream = facts.has(FindingKind::CascadingFailure) || storm.is_some();
        let consumer = c.subject.to_string();
        drafts.push(
            Draft::new(
                IncidentKind::ConsumerLag,
                match (c.severity, downstream) {
                    (Severity::Critical, false) => 0.88,
                    (_, false) => 0.7,
                    (_, true) => 0.45,
                },
                format!("Queue consumer lag: {consumer} falls behind"),
            )
            .cause("consumer_lag", &consumer, 0.8, c.summary.clone())
            .say(c.summary.clone())
            .say("Scale or speed up the consumers (or slow the producers); watch the backlog and message age come down.")
            .with([(i, c)]),
        );
    }

    // Poison messages.
    if let Some((i, p)) = facts.first(FindingKind::PoisonMessage) {
        drafts.push(
            Draft::new(
                IncidentKind::PoisonMessages,
                if p.severity == Severity::Critical { 0.93 } else { 0.7 },
                format!("Poison messages on {}", p.subject),
            )
            .cause("poison_message", p.subject.to_string(), 0.9, p.summary.clone())
            .say(p.summary.clone())
            .say("Inspect the dead-lettered messages, fix the producer or the consumer's validation, then redrive the DLQ.")
            .with([(i, p)])
            .with(facts.of(FindingKind::DeadLetters)),
        );
    } else if let Some(d) = facts.critical(FindingKind::DeadLetters) {
        drafts.push(
            Draft::new(
                IncidentKind::PoisonMessages,
                0.5,
                format!("Dead-letter queue growing on {}", d.1.subject),
            )
            .cause(
                "poison_message",
                d.1.subject.to_string(),
                0.4,
                d.1.summary.clone(),
            )
            .say(d.1.summary.clone())
            .with([d]),
        );
    }

    // Clock skew.
    if let Some((i, s)) = facts.first(FindingKind::ClockSkew) {
        drafts.push(
            Draft::new(
                IncidentKind::ClockSkew,
                if s.severity == Severity::Critical { 0.92 } else { 0.6 },
                format!("Clock skew on {}", s.subject),
            )
            .cause("clock_skew", s.subject.to_string(), 0.9, s.summary.clone())
            .say(s.summary.clone())
            .say("Fix time sync on that host (chrony/NTP) and check the writes it versioned while skewed.")
            .with([(i, s)]),
        );
    }

    // Hot partition.
    if let Some((i, h)) = facts.first(FindingKind::HotKey) {
        drafts.push(
            Draft::new(
                IncidentKind::HotPartition,
                if h.severity == Severity::Critical {
                    0.85
                } else {
                    0.7
                },
                format!("Hot partition: {}", h.subject),
            )
            .cause("hot_key", h.subject.to_string(), 0.85, h.summary.clone())
            .say(h.summary.clone())
            .say(
                "Cache the key, spread it (key salting), or rate-limit the client that hammers it.",
            )
            .with([(i, h)]),
        );
    }

    // Anything left: a service got slow or started failing without a better story.
    if drafts.is_empty() {
        let mut symptoms: Vec<(usize, &Finding)> = facts
            .of(FindingKind::LatencyRise)
            .into_iter()
            .chain(facts.of(FindingKind::ErrorRise))
            .filter(|(_, f)| matches!(f.subject, Subject::Service(_) | Subject::Edge(..)))
            .collect();
        symptoms.sort_by_key(|(_, f)| f.starts_ns());
        if let Some(&(_, first)) = symptoms.first() {
            let target = match &first.subject {
                Subject::Edge(_, to) => to.clone(),
                other => other.to_string(),
            };
            drafts.push(
                Draft::new(
                    IncidentKind::DependencyDegradation,
                    0.4,
                    format!("{target} degraded"),
                )
                .cause("dependency_slowdown", &target, 0.4, first.summary.clone())
                .say(first.summary.clone())
                .with(symptoms),
            );
        }
    }

    let mut diagnoses: Vec<Diagnosis> = drafts.into_iter().map(Draft::finish).collect();
    diagnoses.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.onset_ns.cmp(&b.onset_ns))
            .then(a.kind.cmp(&b.kind))
    });
    diagnoses
}
