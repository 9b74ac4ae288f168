//! Evaluating a step's check against what is known: an analysis (of a capture, of the
//! live cluster's recording, of the TUI's store) and, live, the nodes' `/status`.
//!
//! ```text
//!  Check { probe, present, scope } ─┐
//!  Observation { report, recent_from, status } ─┴─► evaluate ─► CheckResult { outcome, subject, value, detail, evidence }
//! ```
//!
//! Pure: no I/O, no clock. The same observation gives the same result, which is what
//! lets a capture's playbook run be tested and the TUI re-evaluate steps on each
//! analysis.

use std::collections::BTreeMap;

use faultline_analyzers::diagnosis::Diagnosis;
use faultline_analyzers::report::Report;
use faultline_analyzers::{Finding, Subject};
use faultline_model::TraceId;

use crate::cluster::{ClusterSnapshot, Health};
use crate::format::{Check, Comparison, Probe, Scope, StatusFact};

/// How much of the end of the data counts as "now" for checks scoped `recent`: what
/// is still going on (a capture's last seconds; live, after the remedies settled).
pub const RECENT_NS: i64 = 5_000_000_000;

/// What a check is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The analysis of the incident: for a capture, the whole of it; live, the time from
    /// before the incident's onset until now.
    pub report: &'a Report,
    /// Findings whose window ends after this (ns since the epoch) are "recent": still
    /// going on at the end of the data.
    pub recent_from_ns: i64,
    /// The nodes' `/status`, when a live cluster is attached.
    pub status: Option<&'a ClusterSnapshot>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// It could not be evaluated here (a live-only fact on a capture).
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Unknown => "unknown",
        }
    }

    /// The outcome marked for people: `✓ pass`, `✗ fail`, `? unknown` (the word says
    /// it where the mark or its colour does not show).
    pub fn mark(self) -> &'static str {
        match self {
            Outcome::Pass => "✓ pass",
            Outcome::Fail => "✗ fail",
            Outcome::Unknown => "? unknown",
        }
    }
}

/// A check's result, with what was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub outcome: Outcome,
    /// The subject the probe found (a node, an edge, a queue…), for `bind`.
    pub subject: Option<String>,
    /// The number the probe looked at (a figure, a confidence, a status fact).
    pub value: Option<f64>,
    /// What was seen, in a sentence.
    pub detail: String,
    /// Traces that show it.
    pub evidence: Vec<TraceId>,
}

/// Evaluates `check` against `observation`; `bindings` fill `{name}` in its subject.
pub fn evaluate(
    check: &Check,
    observation: &Observation<'_>,
    bindings: &BTreeMap<String, String>,
) -> CheckResult {
    let found = match &check.probe {
        Probe::Diagnosis { kind, top } => {
            let diagnoses = &observation.report.diagnoses;
            let hit = diagnoses.iter().enumerate().find(|(rank, d)| {
                d.kind == *kind
                    && (!*top || *rank == 0)
                    && (check.scope == Scope::Incident || recent_diagnosis(d, observation))
            });
            match hit {
                Some((rank, d)) => Found::Yes(diagnosis_seen(rank, d)),
                None => Found::No(match diagnoses.first() {
                    Some(first) => format!(
                        "no {} diagnosis{}; the top one is {} ({:.0} %)",
                        kind.as_str(),
                        if *top { " ranked first" } else { "" },
                        first.title,
                        first.confidence * 100.0
                    ),
                    None => format!("no {} diagnosis: nothing abnormal", kind.as_str()),
                }),
            }
        }
        Probe::Finding {
            kind,
            severity,
            subject,
            figure,
        } => {
            let wanted = subject.as_deref().map(|s| fill(s, bindings));
            let mut hits: Vec<(&Finding, Option<f64>)> = observation
                .report
                .findings
                .iter()
                .filter(|f| f.kind == *kind && f.severity >= *severity)
                .filter(|f| {
                    wanted
                        .as_deref()
                        .is_none_or(|w| subject_matches(&f.subject, w))
                })
                .filter(|f| {
                    check.scope == Scope::Incident || f.window.end_ns > observation.recent_from_ns
                })
                .map(|f| (f, figure.as_ref().and_then(|c| figure_of(f, c))))
                .filter(|(_, value)| {
                    figure
                        .as_ref()
                        .is_none_or(|c| value.is_some_and(|v| c.op.holds(v, c.value)))
                })
                .collect();
            hits.sort_by(|a, b| {
                b.0.severity
                    .cmp(&a.0.severity)
                    .then(b.1.unwrap_or(0.0).total_cmp(&a.1.unwrap_or(0.0)))
            });
            match hits.first() {
                Some((f, value)) => Found::Yes(finding_seen(f, *value)),
                None => {
                    let mut what = format!("no {} finding", kind.as_str());
                    if *severity > faultline_analyzers::Severity::Info {
                        what.push_str(&format!(" at {severity} or above"));
                    }
                    if let Some(w) = &wanted {
                        what.push_str(&format!(" about {w}"));
                    }
                    if let Some(c) = figure {
                        what.push_str(&format!(" with {} {} {}", c.name, c.op.as_str(), c.value));
                    }
                    if check.scope == Scope::Recent {
                        what.push_str(" still going on at the end");
                    }
                    Found::No(what)
                }
            }
        }
        Probe::Status { fact, compare } => match observation.status {
            None => Found::Unknown(format!(
                "{} is known only from a live cluster (`--cluster`)",
                fact.as_str()
            )),
            Some(status) => status_fact(status, *fact, compare),
        },
    };
    match found {
        Found::Yes(seen) => CheckResult {
            outcome: if check.present {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            subject: seen.subject,
            value: seen.value,
            detail: seen.detail,
            evidence: seen.evidence,
        },
        Found::No(detail) => CheckResult {
            outcome: if check.present {
                Outcome::Fail
            } else {
                Outcome::Pass
            },
            subject: None,
            value: None,
            detail,
            evidence: Vec::new(),
        },
        Found::Unknown(detail) => CheckResult {
            outcome: Outcome::Unknown,
            subject: None,
            value: None,
            detail,
            evidence: Vec::new(),
        },
    }
}

enum Found {
    Yes(Seen),
    No(String),
    Unknown(String),
}

struct Seen {
    subject: Option<String>,
    value: Option<f64>,
    detail: String,
    evidence: Vec<TraceId>,
}

fn recent_diagnosis(diagnosis: &Diagnosis, observation: &Observation<'_>) -> bool {
    diagnosis.findings.iter().any(|&i| {
        observation
            .report
            .findings
            .get(i)
            .is_some_and(|f| f.window.end_ns > observation.recent_from_ns)
    })
}

fn diagnosis_seen(rank: usize, diagnosis: &Diagnosis) -> Seen {
    let cause = diagnosis.root_causes.first();
    let mut detail = format!(
        "{} (ranked {}, {:.0} % confidence, {})",
        diagnosis.title,
        rank + 1,
        diagnosis.confidence * 100.0,
        diagnosis.severity
    );
    if let Some(cause) = cause {
        detail.push_str(&format!(
            "; root cause {} at {}: {}",
            cause.kind, cause.target, cause.because
        ));
    }
    Seen {
        subject: cause.map(|c| c.target.clone()),
        value: Some(diagnosis.confidence),
        detail,
        evidence: diagnosis.evidence.clone(),
    }
}

fn finding_seen(finding: &Finding, value: Option<f64>) -> Seen {
    let figures: Vec<String> = finding
        .figures
        .iter()
        .take(4)
        .map(|f| format!("{} {}{}", f.name, short(f.value), unit(f.unit)))
        .collect();
    let mut detail = format!(
        "{} ({}): {}",
        finding.summary,
        finding.severity,
        subject_name(&finding.subject)
    );
    if !figures.is_empty() {
        detail.push_str(&format!("; {}", figures.join(", ")));
    }
    Seen {
        subject: Some(subject_name(&finding.subject)),
        value: value.or_else(|| finding.figures.first().map(|f| f.value)),
        detail,
        evidence: finding.evidence.clone(),
    }
}

fn unit(unit: &str) -> String {
    match unit {
        "" => String::new(),
        "%" | "×" => unit.to_owned(),
        "x" => "×".to_owned(),
        // A flag: its 0 or 1 says it.
        "bool" => String::new(),
        other => format!(" {other}"),
    }
}

/// A number shortly: integers as such, others with two decimals at most.
pub fn short(value: f64) -> String {
    if (value.fract() == 0.0 && value.abs() < 1e15) || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// A subject as a remedy's target names it: a queue or key without its prefix.
pub fn subject_name(subject: &Subject) -> String {
    match subject {
        Subject::Queue(name) | Subject::Key(name) => name.clone(),
        other => other.to_string(),
    }
}

fn subject_matches(subject: &Subject, wanted: &str) -> bool {
    subject_name(subject) == wanted || subject.involves(wanted) || subject.to_string() == wanted
}

fn figure_of(finding: &Finding, comparison: &Comparison) -> Option<f64> {
    finding
        .figures
        .iter()
        .find(|f| f.name == comparison.name)
        .map(|f| f.value)
}

fn status_fact(status: &ClusterSnapshot, fact: StatusFact, compare: &Comparison) -> Found {
    let (value, subject, what) = match fact {
        StatusFact::NodesDown => {
            let down: Vec<&str> = status
                .nodes
                .iter()
                .filter(|n| matches!(n.health, Health::Down(_)))
                .map(|n| n.name.as_str())
                .collect();
            let what = if down.is_empty() {
                "every node answers".to_owned()
            } else {
                format!("{} not answering", down.join(", "))
            };
            (
                Some(down.len() as f64),
                (!down.is_empty()).then(|| down.join(",")),
                what,
            )
        }
        StatusFact::NodesUp => {
            let up = status
                .nodes
                .iter()
                .filter(|n| n.health == Health::Up)
                .count();
            (
                Some(up as f64),
                None,
                format!("{up} of {} nodes up with a leader", status.nodes.len()),
            )
        }
        StatusFact::Leaders => {
            let mut leaders: Vec<&str> = status
                .nodes
                .iter()
                .filter(|n| n.health == Health::Up)
                .filter_map(|n| n.leader.as_deref())
                .collect();
            leaders.sort_unstable();
            leaders.dedup();
            let what = match leaders.as_slice() {
                [] => "no node knows a leader".to_owned(),
                [one] => format!("leader {one}"),
                many => format!("nodes disagree on the leader: {}", many.join(", ")),
            };
            (
                Some(leaders.len() as f64),
                (!leaders.is_empty()).then(|| leaders.join(",")),
                what,
            )
        }
        StatusFact::DlqDepth => {
            let depth = status.dlq_depth();
            (
                depth.map(|d| d as f64),
                None,
                format!(
                    "{} dead letters",
                    depth.map_or("unknown".to_owned(), |d| d.to_string())
                ),
            )
        }
        StatusFact::QueueDepth => {
            let depth = status.queue_depth();
            (
                depth.map(|d| d as f64),
                None,
                format!(
                    "{} messages waiting",
                    depth.map_or("unknown".to_owned(), |d| d.to_string())
                ),
            )
        }
        StatusFact::ReplicationLagS => {
            let lag = status.max_lag_s();
            (
                lag,
                None,
                format!(
                    "worst follower lag {}",
                    lag.map_or("unknown".to_owned(), |l| format!("{} s", short(l)))
                ),
            )
        }
    };
    let Some(value) = value else {
        return Found::Unknown(format!("{what}: no node reported {}", fact.as_str()));
    };
    let detail = format!(
        "{what} ({} = {}, wanted {} {})",
        fact.as_str(),
        short(value),
        compare.op.as_str(),
        short(compare.value)
    );
    if compare.op.holds(value, compare.value) {
        Found::Yes(Seen {
            subject,
            value: Some(value),
            detail,
            evidence: Vec::new(),
        })
    } else {
        Found::No(detail)
    }
}

/// `text` with `{name}` replaced by its binding (unknown names are left as written).
pub fn fill(text: &str, bindings: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if let Some(stripped) = after.strip_prefix('{') {
            out.push('{');
            rest = stripped;
            continue;
        }
        match after.find('}') {
            Some(close) if bindings.contains_key(&after[..close]) => {
                out.push_str(&bindings[&after[..close]]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("}}", "}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use faultline_analyzers::finding::{Figure, FindingKind, Window};
    use faultline_analyzers::{Profile, Severity};

    use super::*;
    use crate::cluster::NodeState;
    use crate::format::Op;

    fn finding(kind: FindingKind, subject: Subject, end_ns: i64, figures: Vec<Figure>) -> Finding {
        Finding {
            kind,
            severity: Severity::Critical,
            subject,
            window: Window {
                start_ns: 0,
                end_ns,
            },
            onset_ns: Some(0),
            summary: format!("{} seen", kind.as_str()),
            figures,
            evidence: Vec::new(),
            detector: "test",
        }
    }

    fn report(findings: Vec<Finding>) -> Report {
        let diagnoses = faultline_analyzers::diagnosis::diagnose(&findings);
        Report {
            inputs: Vec::new(),
            spans: 0,
            traces: 0,
            services: Vec::new(),
            start_ns: Some(0),
            end_ns: Some(100),
            profile: Profile::Demo,
            window_ns: 1,
            focus: None,
            diagnoses,
            findings,
        }
    }

    fn check(probe: Probe, present: bool, scope: Scope) -> Check {
        Check {
            probe,
            present,
            scope,
        }
    }

    fn amplification(op: Op, value: f64) -> Probe {
        Probe::Finding {
            kind: FindingKind::RetryAmplification,
            severity: Severity::Warning,
            subject: Some("{edge}".to_owned()),
            figure: Some(Comparison {
                name: "amplification".to_owned(),
                op,
                value,
            }),
        }
    }

    #[test]
    fn finding_checks_match_kind_subject_figure_and_scope() {
        let report = report(vec![finding(
            FindingKind::RetryAmplification,
            Subject::Edge("worker".into(), "payments".into()),
            60,
            vec![Figure::new("amplification", 5.5, "×")],
        )]);
        let observation = Observation {
            report: &report,
            recent_from_ns: 90,
            status: None,
        };
        let mut bindings = BTreeMap::new();
        bindings.insert("edge".to_owned(), "worker->payments".to_owned());
        let result = evaluate(
            &check(amplification(Op::Ge, 3.0), true, Scope::Incident),
            &observation,
            &bindings,
        );
        assert_eq!(result.outcome, Outcome::Pass);
        assert_eq!(result.subject.as_deref(), Some("worker->payments"));
        assert_eq!(result.value, Some(5.5));
        assert!(
            result.detail.contains("amplification 5.50×"),
            "{}",
            result.detail
        );
        // The figure is below the bar.
        let result = evaluate(
            &check(amplification(Op::Ge, 6.0), true, Scope::Incident),
            &observation,
            &bindings,
        );
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(
            result.detail.contains("amplification >= 6"),
            "{}",
            result.detail
        );
        // Another edge.
        bindings.insert("edge".to_owned(), "gateway->faultline-node".to_owned());
        let result = evaluate(
            &check(amplification(Op::Ge, 3.0), true, Scope::Incident),
            &observation,
            &bindings,
        );
        assert_eq!(result.outcome, Outcome::Fail);
        // Over before the recent part: absent there, so a verification passes.
        bindings.insert("edge".to_owned(), "worker->payments".to_owned());
        let result = evaluate(
            &check(amplification(Op::Ge, 3.0), false, Scope::Recent),
            &observation,
            &bindings,
        );
        assert_eq!(result.outcome, Outcome::Pass, "{}", result.detail);
        let late = Observation {
            recent_from_ns: 50,
            ..observation
        };
        let result = evaluate(
            &check(amplification(Op::Ge, 3.0), false, Scope::Recent),
            &late,
            &bindings,
        );
        assert_eq!(result.outcome, Outcome::Fail);
    }

    #[test]
    fn diagnosis_checks_bind_the_root_cause() {
        let report = report(vec![finding(
            FindingKind::NodeDown,
            Subject::Node("node-2".into()),
            60,
            vec![Figure::new("silent", 14.0, "s")],
        )]);
        let observation = Observation {
            report: &report,
            recent_from_ns: 90,
            status: None,
        };
        let Some(top) = report.diagnoses.first() else {
            panic!("no diagnosis from a node_down finding")
        };
        let probe = Probe::Diagnosis {
            kind: top.kind,
            top: true,
        };
        let result = evaluate(
            &check(probe.clone(), true, Scope::Incident),
            &observation,
            &BTreeMap::new(),
        );
        assert_eq!(result.outcome, Outcome::Pass, "{}", result.detail);
        assert_eq!(result.subject.as_deref(), Some("node-2"));
        let result = evaluate(
            &check(probe, true, Scope::Recent),
            &observation,
            &BTreeMap::new(),
        );
        assert_eq!(result.outcome, Outcome::Fail, "over by the recent part");
        let other = Probe::Diagnosis {
            kind: faultline_analyzers::diagnosis::IncidentKind::RetryStorm,
            top: false,
        };
        let result = evaluate(
            &check(other, true, Scope::Incident),
            &observation,
            &BTreeMap::new(),
        );
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(
            result.detail.contains("the top one is"),
            "{}",
            result.detail
        );
    }

    #[test]
    fn status_facts_need_a_live_cluster() {
        let report = report(Vec::new());
        let probe = Probe::Status {
            fact: StatusFact::NodesDown,
            compare: Comparison {
                name: String::new(),
                op: Op::Eq,
                value: 0.0,
            },
        };
        let capture = Observation {
            report: &report,
            recent_from_ns: 0,
            status: None,
        };
        let result = evaluate(
            &check(probe.clone(), true, Scope::Recent),
            &capture,
            &BTreeMap::new(),
        );
        assert_eq!(result.outcome, Outcome::Unknown);
        let mut up = NodeState::unknown("node-1", Health::Up);
        up.leader = Some("node-1".to_owned());
        let status = ClusterSnapshot {
            at_ns: 0,
            nodes: vec![
                up,
                NodeState::unknown("node-2", Health::Down("refused".to_owned())),
            ],
        };
        let live = Observation {
            status: Some(&status),
            ..capture
        };
        let result = evaluate(&check(probe, true, Scope::Recent), &live, &BTreeMap::new());
        assert_eq!(result.outcome, Outcome::Fail);
        assert!(
            result.detail.contains("node-2 not answering"),
            "{}",
            result.detail
        );
    }

    #[test]
    fn fill_replaces_bindings_and_keeps_the_rest() {
        let mut bindings = BTreeMap::new();
        bindings.insert("node".to_owned(), "node-3".to_owned());
        assert_eq!(
            fill("restart {node} ({other}) {{x}}", &bindings),
            "restart node-3 ({other}) {x}"
        );
    }
}
