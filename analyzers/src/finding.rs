//! Findings: what one detector saw, with the figures and traces that show it.
//!
//! ```text
//!  SpanTable ──► detectors ──► Finding { kind, severity, subject, window, figures, evidence }
//!                                   └──► diagnosis engine ──► Diagnosis
//! ```

use std::fmt;

use faultline_model::TraceId;
use serde::{Serialize, Serializer};

/// How loud a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "critical" | "crit" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    Service(String),
    /// A call edge, caller → callee.
    Edge(String, String),
    Node(String),
    /// Several nodes (a partition side, a majority).
    Nodes(Vec<String>),
    Queue(String),
    Key(String),
    /// The Raft links between the nodes, all of them.
    RaftLinks,
    /// The KV's quorum settings.
    KvQuorum {
        r: i64,
        w: i64,
        n: i64,
    },
    Cluster,
}

impl Subject {
    /// Whether this subject names `service` (as a service, an end of an edge or a node).
    pub fn involves(&self, service: &str) -> bool {
        match self {
            Subject::Service(s) | Subject::Node(s) | Subject::Queue(s) | Subject::Key(s) => {
                s == service
            }
            Subject::Edge(from, to) => from == service || to == service,
            Subject::Nodes(nodes) => nodes.iter().any(|n| n == service),
            Subject::RaftLinks | Subject::KvQuorum { .. } | Subject::Cluster => false,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Service(s) | Subject::Node(s) => f.write_str(s),
            Subject::Edge(from, to) => write!(f, "{from}->{to}"),
            Subject::Nodes(nodes) => f.write_str(&nodes.join(",")),
            Subject::Queue(q) => write!(f, "queue {q}"),
            Subject::Key(k) => write!(f, "kv key {k}"),
            Subject::RaftLinks => f.write_str("raft links"),
            // N is left out: it is the same on every key of the demo, and the ground
            // truth names the quorum by R and W.
            Subject::KvQuorum { r, w, .. } => write!(f, "kv quorum (R={r}, W={w})"),
            Subject::Cluster => f.write_str("cluster"),
        }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What kind of signal a finding reports; one or more per detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    LatencyRise,
    ErrorRise,
    RetryAmplification,
    CascadingFailure,
    CriticalPath,
    Unreachable,
    Partition,
    ElectionRate,
    LeaderChange,
    /// An instance stopped emitting spans while the others went on, and calls to it
    /// fail (a crash, a kill, a hung process).
    NodeDown,
    TwoLeaders,
    QuorumFailure,
    ReplicationLag,
    StaleRead,
    ConsumerLag,
    DeadLetters,
    PoisonMessage,
    ClockSkew,
    HotKey,
    BreakerOpen,
}

impl FindingKind {
    pub const ALL: [FindingKind; 20] = [
        FindingKind::LatencyRise,
        FindingKind::ErrorRise,
        FindingKind::RetryAmplification,
        FindingKind::CascadingFailure,
        FindingKind::CriticalPath,
        FindingKind::Unreachable,
        FindingKind::Partition,
        FindingKind::ElectionRate,
        FindingKind::LeaderChange,
        FindingKind::NodeDown,
        FindingKind::TwoLeaders,
        FindingKind::QuorumFailure,
        FindingKind::ReplicationLag,
        FindingKind::StaleRead,
        FindingKind::ConsumerLag,
        FindingKind::DeadLetters,
        FindingKind::PoisonMessage,
        FindingKind::ClockSkew,
        FindingKind::HotKey,
        FindingKind::BreakerOpen,
    ];

    /// The kind called `text` (its [`as_str`](Self::as_str) name).
    pub fn parse(text: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::LatencyRise => "latency_rise",
            FindingKind::ErrorRise => "error_rise",
            FindingKind::RetryAmplification => "retry_amplification",
            FindingKind::CascadingFailure => "cascading_failure",
            FindingKind::CriticalPath => "critical_path",
            FindingKind::Unreachable => "unreachable",
            FindingKind::Partition => "partition",
            FindingKind::ElectionRate => "election_rate",
            FindingKind::LeaderChange => "leader_change",
            FindingKind::NodeDown => "node_down",
            FindingKind::TwoLeaders => "two_leaders",
            FindingKind::QuorumFailure => "quorum_failure",
            FindingKind::ReplicationLag => "replication_lag",
            FindingKind::StaleRead => "stale_read",
            FindingKind::ConsumerLag => "consumer_lag",
            FindingKind::DeadLetters => "dead_letters",
            FindingKind::PoisonMessage => "poison_message",
            FindingKind::ClockSkew => "clock_skew",
            FindingKind::HotKey => "hot_key",
            FindingKind::BreakerOpen => "breaker_open",
        }
    }
}

/// A named number with its unit, e.g. `p99 = 1480 ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

impl Figure {
    pub fn new(name: &'static str, value: f64, unit: &'static str) -> Self {
        Figure { name, value, unit }
    }
}

/// A half-open time window in ns since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start_ns: i64,
    pub end_ns: i64,
}

/// What one detector saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub subject: Subject,
    /// When the signal was abnormal.
    pub window: Window,
    /// When it started to be, if the detector can tell (onset against the baseline).
    pub onset_ns: Option<i64>,
    /// One plain sentence.
    pub summary: String,
    pub figures: Vec<Figure>,
    /// Traces that show it, most telling first (at most [`MAX_EVIDENCE`]).
    #[serde(serialize_with = "trace_ids")]
    pub evidence: Vec<TraceId>,
    /// The detector that made it.
    pub detector: &'static str,
}

/// Traces kept as evidence per finding.
pub const MAX_EVIDENCE: usize = 5;

impl Finding {
    /// The figure called `name`.
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|figure| figure.name == name)
            .map(|figure| figure.value)
    }

    /// When the finding starts: its onset, else its window.
    pub fn starts_ns(&self) -> i64 {
        self.onset_ns.unwrap_or(self.window.start_ns)
    }
}

fn trace_ids<S: Serializer>(ids: &[TraceId], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(ids.iter().map(ToString::to_string))
}
