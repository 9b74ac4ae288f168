//! How good the diagnoses are, measured on labelled captures (`faultline bench
//! diagnose DIR`).
//!
//! ```text
//!  NAME.jsonl.zst ──► SpanTable ──► analyze (whole capture) ──► top-1 / top-3 kind and cause
//!  NAME.labels.json ─┘      └──► replay: prefixes of spans ended by t, t += step
//!                                   └──► first t where the top diagnosis is right
//! ```
//!
//! The labels are read here, never by the detectors: this module is the examiner.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Thresholds;
use crate::diagnosis::{Diagnosis, IncidentKind, RootCause};
use crate::finding::Severity;
use crate::report::analyze;
use crate::table::SpanTable;

/// The ground truth of a capture (`NAME.labels.json`), as far as scoring needs it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Labels {
    pub scenario: String,
    #[serde(default)]
    pub root_cause: Option<LabelledCause>,
    #[serde(default)]
    pub injected_at_ms: Option<i64>,
    #[serde(default)]
    pub healed_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LabelledCause {
    pub kind: String,
    pub target: String,
}

/// The incident each scenario of the demo's fault catalog should be diagnosed as.
/// Baselines (no injection) expect no diagnosis at all.
pub fn expected_kind(scenario: &str) -> Option<IncidentKind> {
    Some(match scenario {
        "partition-minority" | "partition-leader" => IncidentKind::NetworkPartition,
        "leader-crash" => IncidentKind::LeaderLoss,
        "election-storm" => IncidentKind::ElectionStorm,
        "quorum-loss" => IncidentKind::QuorumLoss,
        "slow-follower" => IncidentKind::ReplicationLag,
        "retry-storm" => IncidentKind::RetryStorm,
        "cascading-failure" => IncidentKind::CascadingFailure,
        "poison-pill" => IncidentKind::PoisonMessages,
        "consumer-lag" => IncidentKind::ConsumerLag,
        "stale-reads" => IncidentKind::StaleReads,
        "clock-skew" => IncidentKind::ClockSkew,
        "hot-key" => IncidentKind::HotPartition,
        _ => return None,
    })
}

/// Whether a candidate names the labelled root cause: the same kind, and the same
/// target — as sets for lists of nodes (`node-1,node-2`), or the label's words leading
/// the candidate's (a label that cannot know the exact key says `kv key`, the
/// candidate `kv key order:42`).
pub fn cause_matches(candidate: &RootCause, label: &LabelledCause) -> bool {
    if candidate.kind != label.kind {
        return false;
    }
    let normal = |s: &str| {
        s.trim()
            .to_ascii_lowercase()
            .replace(" ,", ",")
            .replace(", ", ",")
    };
    let (got, want) = (normal(&candidate.target), normal(&label.target));
    if got == want {
        return true;
    }
    let set = |s: &str| {
        let mut items: Vec<String> = s.split(',').map(|i| i.trim().to_owned()).collect();
        items.sort();
        items
    };
    if want.contains(',') && set(&got) == set(&want) {
        return true;
    }
    got.strip_prefix(&want)
        .is_some_and(|rest| rest.starts_with(' '))
}

/// One capture's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureScore {
    pub capture: String,
    pub scenario: String,
    pub expected_kind: Option<IncidentKind>,
    pub expected_cause: Option<String>,
    /// The whole capture's top three diagnoses: kind and first root cause.
    pub top: Vec<(IncidentKind, String)>,
    /// 1-based rank of the expected kind among the diagnoses, if present.
    pub kind_rank: Option<usize>,
    /// 1-based rank of the first diagnosis whose root causes include the labelled one.
    pub cause_rank: Option<usize>,
    /// For baselines: whether no diagnosis (nor finding) reached warning.
    pub clean: Option<bool>,
    /// Replay: ms from the injection to the first prefix whose top diagnosis has the
    /// right kind and root cause.
    pub first_correct_ms: Option<i64>,
    /// Replay: prefixes before the injection that had a diagnosis at warning or above.
    pub false_alarms_before_injection: u32,
    pub replay_steps: u32,
}

impl CaptureScore {
    pub fn kind_top1(&self) -> bool {
        self.kind_rank == Some(1)
    }

    pub fn kind_top3(&self) -> bool {
        self.kind_rank.is_some_and(|r| r <= 3)
    }

    pub fn cause_top1(&self) -> bool {
        self.cause_rank == Some(1)
    }

    pub fn cause_top3(&self) -> bool {
        self.cause_rank.is_some_and(|r| r <= 3)
    }
}

fn ranks(
    diagnoses: &[Diagnosis],
    kind: Option<IncidentKind>,
    cause: Option<&LabelledCause>,
) -> (Option<usize>, Option<usize>) {
    let kind_rank = kind.and_then(|k| diagnoses.iter().position(|d| d.kind == k).map(|i| i + 1));
    let cause_rank = cause.and_then(|c| {
        diagnoses
            .iter()
            .position(|d| d.root_causes.iter().any(|rc| cause_matches(rc, c)))
            .map(|i| i + 1)
    });
    (kind_rank, cause_rank)
}

fn is_clean(report: &crate::report::Report) -> bool {
    report.worst().is_none_or(|s| s < Severity::Warning)
        && report
            .diagnoses
            .iter()
            .all(|d| d.severity < Severity::Warning)
}

/// Scores one capture: the whole of it, then a replay in `step_ns` steps.
pub fn score(
    capture: &str,
    table: &SpanTable,
    labels: &Labels,
    thresholds: &Thresholds,
    step_ns: i64,
) -> CaptureScore {
    let expected_kind = expected_kind(&labels.scenario);
    let cause = labels.root_cause.as_ref();
    let report = analyze(table, thresholds, Vec::new());
    let (kind_rank, cause_rank) = ranks(&report.diagnoses, expected_kind, cause);
    let top = report
        .diagnoses
        .iter()
        .take(3)
        .map(|d| {
            (
                d.kind,
                d.root_causes
                    .first()
                    .map(|c| format!("{} {}", c.kind, c.target))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let clean = expected_kind.is_none().then(|| is_clean(&report));

    // Replay: what a live engine would have said at each step.
    let mut first_correct_ms = None;
    let mut false_alarms = 0;
    let mut steps = 0;
    if let Some((start, end)) = table.time_range() {
        let injected_ns = labels.injected_at_ms.map(|ms| ms * 1_000_000);
        let mut order: Vec<u32> = (0..table.len() as u32).collect();
        order.sort_unstable_by_key(|&r| table.end_ns[r as usize]);
        let mut cut = start + step_ns;
        while cut <= end + step_ns {
            steps += 1;
            let upto = order.partition_point(|&r| table.end_ns[r as usize] <= cut);
            let mut rows = order[..upto].to_vec();
            rows.sort_unstable();
            let prefix = table.select(&rows);
            let report = analyze(&prefix, thresholds, Vec::new());
            let before_injection = injected_ns.is_none_or(|i| cut < i);
            if before_injection
                && report
                    .diagnoses
                    .iter()
                    .any(|d| d.severity >= Severity::Warning)
            {
                false_alarms += 1;
            }
            if let (Some(injected), Some(kind), Some(cause)) = (injected_ns, expected_kind, cause)
                && cut >= injected
                && first_correct_ms.is_none()
                && report.diagnoses.first().is_some_and(|d| {
                    d.kind == kind
                        && d.root_causes
                            .first()
                            .is_some_and(|c| cause_matches(c, cause))
                })
            {
                first_correct_ms = Some((cut - injected) / 1_000_000);
            }
            if first_correct_ms.is_some() && !before_injection && expected_kind.is_some() {
                break;
            }
            cut += step_ns;
        }
    }
    CaptureScore {
        capture: capture.to_owned(),
        scenario: labels.scenario.clone(),
        expected_kind,
        expected_cause: cause.map(|c| format!("{} {}", c.kind, c.target)),
        top,
        kind_rank,
        cause_rank,
        clean,
        first_correct_ms,
        false_alarms_before_injection: false_alarms,
        replay_steps: steps,
    }
}

/// All captures' scores and the totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    pub captures: Vec<CaptureScore>,
    /// Labelled incidents (captures with an expected kind).
    pub incidents: usize,
    pub kind_top1: f64,
    pub kind_top3: f64,
    pub cause_top1: f64,
    pub cause_top3: f64,
    pub baselines: usize,
    pub baselines_clean: usize,
    /// Over incidents diagnosed correctly during the replay.
    pub median_first_correct_ms: Option<i64>,
    pub max_first_correct_ms: Option<i64>,
    pub never_correct: usize,
}

impl Accuracy {
    pub fn of(captures: Vec<CaptureScore>) -> Accuracy {
        let incidents: Vec<&CaptureScore> = captures
            .iter()
            .filter(|c| c.expected_kind.is_some())
            .collect();
        let share = |pass: fn(&CaptureScore) -> bool| {
            if incidents.is_empty() {
                0.0
            } else {
                incidents.iter().filter(|c| pass(c)).count() as f64 / incidents.len() as f64
            }
        };
        let mut times: Vec<i64> = incidents
            .iter()
            .filter_map(|c| c.first_correct_ms)
            .collect();
        times.sort_unstable();
        let baselines: Vec<&CaptureScore> = captures.iter().filter(|c| c.clean.is_some()).collect();
        Accuracy {
            incidents: incidents.len(),
            kind_top1: share(CaptureScore::kind_top1),
            kind_top3: share(CaptureScore::kind_top3),
            cause_top1: share(CaptureScore::cause_top1),
            cause_top3: share(CaptureScore::cause_top3),
            baselines: baselines.len(),
            baselines_clean: baselines.iter().filter(|c| c.clean == Some(true)).count(),
            median_first_correct_ms: times.get(times.len() / 2).copied(),
            max_first_correct_ms: times.last().copied(),
            never_correct: incidents
                .iter()
                .filter(|c| c.first_correct_ms.is_none())
                .count(),
            captures,
        }
    }
}

/// The labelled captures in `dir`: every `NAME.labels.json` with its capture.
pub fn labelled_captures(dir: &Path) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".labels.json") else {
            continue;
        };
        let capture = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&format!("{stem}.")) && !n.ends_with(".labels.json")
                })
            });
        if let Some(capture) = capture {
            found.push((capture, path));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(kind: &'static str, target: &str) -> RootCause {
        RootCause {
            kind,
            target: target.to_owned(),
            score: 1.0,
            because: String::new(),
        }
    }

    fn label(kind: &str, target: &str) -> LabelledCause {
        LabelledCause {
            kind: kind.to_owned(),
            target: target.to_owned(),
        }
    }

    #[test]
    fn causes_match_by_kind_and_target() {
        assert!(cause_matches(
            &cause("node_crash", "node-1"),
            &label("node_crash", "node-1")
        ));
        assert!(!cause_matches(
            &cause("node_crash", "node-2"),
            &label("node_crash", "node-1")
        ));
        assert!(!cause_matches(
            &cause("network_partition", "node-1"),
            &label("node_crash", "node-1")
        ));
        assert!(cause_matches(
            &cause("quorum_loss", "node-2,node-1"),
            &label("quorum_loss", "node-1, node-2")
        ));
        assert!(cause_matches(
            &cause("hot_key", "kv key order:42"),
            &label("hot_key", "kv key")
        ));
        assert!(!cause_matches(
            &cause("hot_key", "kv keys"),
            &label("hot_key", "kv key")
        ));
        assert!(cause_matches(
            &cause("retry_storm", "worker->payments"),
            &label("retry_storm", "worker->payments")
        ));
    }
}
