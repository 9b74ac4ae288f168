//! The playbook format: TOML, one file per incident kind, checked on load.
//!
//! ```text
//!  NAME.toml ──toml──► Raw* (serde, unknown fields refused) ──validate──► Playbook { steps: [Step] }
//!                                                                  └──► PlaybookError { file, step, reason }
//! ```
//!
//! A step says what to look at, holds at most one check (evaluated by
//! [`crate::check`] against an analysis of a capture or the live cluster), what each
//! result means, where to go next, and optionally a remedy the demo can execute.
//! Steps marked `verify` judge whether the incident is over. docs/playbooks.md is the
//! reference for authors.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use faultline_analyzers::diagnosis::IncidentKind;
use faultline_analyzers::{FindingKind, Severity};
use serde::Deserialize;

/// A playbook, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    /// File name without extension; what `faultline playbook show` takes.
    pub name: String,
    pub title: String,
    /// The incident kinds it handles (the analyzers' diagnosis kinds).
    pub handles: Vec<IncidentKind>,
    /// What the incident is and why it happens, for the reader.
    pub summary: String,
    /// How long a remedy takes to show: verification is judged no earlier (live).
    pub settle: Duration,
    /// How long verification keeps re-checking before it says "not recovered" (live).
    pub verify_within: Duration,
    pub steps: Vec<Step>,
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Unique within the playbook; branches name it.
    pub id: String,
    pub title: String,
    /// What to look at, in the TUI and elsewhere.
    pub look: String,
    pub check: Option<Check>,
    /// Remember the check's subject under this name (`{name}` in later text).
    pub bind: Option<String>,
    /// What a passing check means (may use `{subject}`, `{value}`, bindings).
    pub pass: String,
    /// What a failing check means.
    pub fail: String,
    pub on_pass: Branch,
    pub on_fail: Branch,
    /// Run after a passing check (or, without a check, always), after confirmation.
    pub remedy: Option<Remedy>,
    /// This step judges whether the incident is over.
    pub verify: bool,
}

/// Where to go after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Branch {
    /// The next step in the file.
    Next,
    /// The step with this id.
    Step(String),
    /// End the run: this is not the incident the playbook handles (or nothing more can
    /// be done), with the step's meaning as the conclusion.
    Stop,
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// A diagnosis of this kind is among the ranked diagnoses (`top`: it is the first).
    Diagnosis { kind: IncidentKind, top: bool },
    /// A finding of this kind, at `severity` or above, optionally about `subject`;
    /// with `figure`, the finding's figure compared to a value.
    Finding {
        kind: FindingKind,
        severity: Severity,
        subject: Option<String>,
        figure: Option<Comparison>,
    },
    /// A fact only a live cluster can tell (its nodes' `/status`).
    Status {
        fact: StatusFact,
        compare: Comparison,
    },
}

/// `figure op value`, e.g. `amplification >= 3`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The figure's name (for a status fact: unused, empty).
    pub name: String,
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Eq => (left - right).abs() < 1e-9,
            Op::Ne => (left - right).abs() >= 1e-9,
        }
    }
}

/// Live facts from the nodes' `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFact {
    /// Nodes that did not answer.
    NodesDown,
    /// Nodes that answered and know a leader.
    NodesUp,
    /// Distinct leaders the answering nodes name.
    Leaders,
    /// Messages in the dead-letter queues (the leader's view).
    DlqDepth,
    /// Messages waiting in the main queues.
    QueueDepth,
    /// The worst follower lag a leader reports, seconds.
    ReplicationLagS,
}

impl StatusFact {
    pub const ALL: [StatusFact; 6] = [
        StatusFact::NodesDown,
        StatusFact::NodesUp,
        StatusFact::Leaders,
        StatusFact::DlqDepth,
        StatusFact::QueueDepth,
        StatusFact::ReplicationLagS,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusFact::NodesDown => "nodes_down",
            StatusFact::NodesUp => "nodes_up",
            StatusFact::Leaders => "leaders",
            StatusFact::DlqDepth => "dlq_depth",
            StatusFact::QueueDepth => "queue_depth",
            StatusFact::ReplicationLagS => "replication_lag_s",
        }
    }

    fn parse(text: &str) -> Option<StatusFact> {
        StatusFact::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// Which part of the data a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// The whole incident analysed: did this happen?
    #[default]
    Incident,
    /// Only its last seconds (live: after the remedies settled): is it still so?
    Recent,
}

/// A check: a probe, and whether it should find something.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub probe: Probe,
    /// `false`: the check passes when the probe finds nothing (`expect = "absent"`).
    pub present: bool,
    pub scope: Scope,
}

impl Check {
    /// The check in words, its subject filled in from `bindings`, e.g. "passes
    /// without a retry_amplification finding (warning or worse) about worker->payments,
    /// in the last 5 s of data".
    pub fn describe(&self, bindings: &std::collections::BTreeMap<String, String>) -> String {
        let what = match &self.probe {
            Probe::Diagnosis { kind, top } => format!(
                "a {} diagnosis{}",
                kind.as_str(),
                if *top { " ranked first" } else { "" }
            ),
            Probe::Finding {
                kind,
                severity,
                subject,
                figure,
            } => {
                let mut text = format!("a {} finding ({severity} or worse)", kind.as_str());
                if let Some(subject) = subject {
                    text.push_str(&format!(" about {}", crate::check::fill(subject, bindings)));
                }
                if let Some(c) = figure {
                    text.push_str(&format!(" with {} {} {}", c.name, c.op.as_str(), c.value));
                }
                text
            }
            Probe::Status { fact, compare } => format!(
                "{} {} {} in the nodes' /status (live only)",
                fact.as_str(),
                compare.op.as_str(),
                compare.value
            ),
        };
        let mut text = if self.present {
            format!("passes with {what}")
        } else {
            format!("passes without {what}")
        };
        if self.scope == Scope::Recent {
            text.push_str(&format!(
                ", in the last {} s of data",
                crate::check::RECENT_NS / 1_000_000_000
            ));
        }
        text
    }
}

/// A remedy the demo can execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start the named nodes' processes again.
    RestartNode,
    /// Remove every network fault (toxic) from every sidecar.
    ClearNetworkFaults,
    /// Put a node's disk and clock back to normal (the demo's "replace the disk",
    /// "resync NTP").
    ClearNodeFaults,
    /// Backoff with jitter, a retry budget, at most 3 attempts and both breaker
    /// rules, on the workers' calls to payments.
    SaneRetries,
    /// Trip the breaker rules to their strictest so calls to a failing dependency
    /// fail fast.
    TightenBreaker,
    /// Halve the load's rate.
    ShedLoad,
    /// Move dead letters to a file beside the cluster and delete them from the DLQ.
    ParkDeadLetters,
    /// Move dead letters back to their queue.
    RedriveDeadLetters,
    /// R and W back to quorums (2 of 3).
    RestoreQuorum,
    /// Undo worker slowdowns (processing delay, pause).
    RestoreWorkers,
}

impl Action {
    pub const ALL: [Action; 10] = [
        Action::RestartNode,
        Action::ClearNetworkFaults,
        Action::ClearNodeFaults,
        Action::SaneRetries,
        Action::TightenBreaker,
        Action::ShedLoad,
        Action::ParkDeadLetters,
        Action::RedriveDeadLetters,
        Action::RestoreQuorum,
        Action::RestoreWorkers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::RestartNode => "restart_node",
            Action::ClearNetworkFaults => "clear_network_faults",
            Action::ClearNodeFaults => "clear_node_faults",
            Action::SaneRetries => "sane_retries",
            Action::TightenBreaker => "tighten_breaker",
            Action::ShedLoad => "shed_load",
            Action::ParkDeadLetters => "park_dead_letters",
            Action::RedriveDeadLetters => "redrive_dead_letters",
            Action::RestoreQuorum => "restore_quorum",
            Action::RestoreWorkers => "restore_workers",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// Whether the action needs a target (a node, a queue).
    fn needs_target(self) -> bool {
        matches!(
            self,
            Action::RestartNode
                | Action::ClearNodeFaults
                | Action::ParkDeadLetters
                | Action::RedriveDeadLetters
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A remedy: an action, its target (may name bindings: `{node}`), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Remedy {
    pub action: Action,
    pub target: Option<String>,
    /// What it does and what it costs, shown before asking.
    pub why: String,
}

/// A playbook file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {reason}", step.as_ref().map(|s| format!(", step {s:?}")).unwrap_or_default())]
pub struct PlaybookError {
    pub file: String,
    pub step: Option<String>,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    title: String,
    handles: Vec<String>,
    summary: String,
    #[serde(default)]
    settle: Option<String>,
    #[serde(default)]
    verify_within: Option<String>,
    #[serde(rename = "step")]
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: String,
    title: String,
    look: String,
    #[serde(default)]
    check: Option<RawCheck>,
    #[serde(default)]
    bind: Option<String>,
    #[serde(default)]
    pass: Option<String>,
    #[serde(default)]
    fail: Option<String>,
    #[serde(default)]
    on_pass: Option<String>,
    #[serde(default)]
    on_fail: Option<String>,
    #[serde(default)]
    remedy: Option<RawRemedy>,
    #[serde(default)]
    verify: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(default)]
    diagnosis: Option<String>,
    #[serde(default)]
    top: bool,
    #[serde(default)]
    finding: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    figure: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    expect: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemedy {
    action: String,
    #[serde(default)]
    target: Option<String>,
    why: String,
}

impl Playbook {
    /// Parses and validates the playbook `name` (its file name without `.toml`).
    pub fn parse(name: &str, text: &str) -> Result<Playbook, PlaybookError> {
        let file = format!("{name}.toml");
        let error = |step: Option<&str>, reason: String| PlaybookError {
            file: file.clone(),
            step: step.map(str::to_owned),
            reason,
        };
        if !valid_id(name) {
            return Err(error(
                None,
                "a playbook's name is lowercase letters, digits and '-'".to_owned(),
            ));
        }
        let raw: RawPlaybook = toml::from_str(text).map_err(|e| error(None, e.to_string()))?;
        let mut handles = Vec::new();
        for kind in &raw.handles {
            handles.push(IncidentKind::parse(kind).ok_or_else(|| {
                error(
                    None,
                    format!(
                        "handles: unknown incident kind {kind:?} (one of {})",
                        IncidentKind::ALL.map(IncidentKind::as_str).join(", ")
                    ),
                )
            })?);
        }
        if handles.is_empty() {
            return Err(error(
                None,
                "handles: name at least one incident kind".to_owned(),
            ));
        }
        let duration = |field: &str, text: &Option<String>, default: u64| match text {
            None => Ok(Duration::from_secs(default)),
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| error(None, format!("{field}: {text:?} is not a duration: {e}"))),
        };
        let settle = duration("settle", &raw.settle, 15)?;
        let verify_within = duration("verify_within", &raw.verify_within, 60)?;
        if raw.steps.is_empty() {
            return Err(error(None, "a playbook needs at least one step".to_owned()));
        }
        let ids: Vec<&str> = raw.steps.iter().map(|s| s.id.as_str()).collect();
        let mut seen = HashSet::new();
        let mut bound: HashSet<String> = HashSet::new();
        let mut steps = Vec::new();
        for raw_step in &raw.steps {
            let id = raw_step.id.as_str();
            let error = |reason: String| error(Some(id), reason);
            if !valid_id(id) {
                return Err(error(
                    "an id is lowercase letters, digits and '-'".to_owned(),
                ));
            }
            if !seen.insert(id) {
                return Err(error("defined twice".to_owned()));
            }
            let branch = |field: &str, text: &Option<String>| -> Result<Branch, PlaybookError> {
                match text.as_deref() {
                    None | Some("next") => Ok(Branch::Next),
                    Some("stop") => Ok(Branch::Stop),
                    Some(target) if ids.contains(&target) && target != id => {
                        Ok(Branch::Step(target.to_owned()))
                    }
                    Some(target) => Err(error(format!(
                        "{field}: {target:?} is not another step's id, \"next\" or \"stop\""
                    ))),
                }
            };
            let on_pass = branch("on_pass", &raw_step.on_pass)?;
            let on_fail = branch("on_fail", &raw_step.on_fail)?;
            let check = raw_step
                .check
                .as_ref()
                .map(|c| check(c).map_err(&error))
                .transpose()?;
            let texts = [raw_step.pass.as_deref(), raw_step.fail.as_deref()];
            match (&check, texts) {
                (Some(_), [Some(_), Some(_)]) | (None, [None, None]) => {}
                (Some(_), _) => {
                    return Err(error(
                        "a step with a check says what passing and failing mean (pass, fail)"
                            .to_owned(),
                    ));
                }
                (None, _) => {
                    return Err(error("pass and fail need a check".to_owned()));
                }
            }
            if check.is_none() && (raw_step.on_fail.is_some() || raw_step.bind.is_some()) {
                return Err(error("on_fail and bind need a check".to_owned()));
            }
            if raw_step.verify && check.is_none() {
                return Err(error("a verify step needs a check".to_owned()));
            }
            if raw_step.verify && raw_step.remedy.is_some() {
                return Err(error(
                    "a verify step judges; put its remedy in a step before it".to_owned(),
                ));
            }
            let remedy = raw_step
                .remedy
                .as_ref()
                .map(|r| remedy(r).map_err(&error))
                .transpose()?;
            if check.is_none() && remedy.is_none() {
                return Err(error("a step needs a check or a remedy".to_owned()));
            }
            // Placeholders must name a binding made by an earlier step; a passing check's
            // meaning may also use the step's own.
            let own_bind = raw_step.bind.as_deref();
            let mut texts: Vec<(&str, bool)> = vec![(raw_step.look.as_str(), false)];
            texts.extend(raw_step.pass.as_deref().map(|t| (t, true)));
            texts.extend(raw_step.fail.as_deref().map(|t| (t, false)));
            if let Some(r) = &raw_step.remedy {
                texts.push((&r.why, true));
                texts.extend(r.target.as_deref().map(|t| (t, true)));
            }
            if let Some(c) = &raw_step.check {
                texts.extend(c.subject.as_deref().map(|t| (t, false)));
            }
            for (text, after_pass) in texts {
                for name in placeholders(text) {
                    let known = matches!(name, "subject" | "value" | "detail")
                        || bound.contains(name)
                        || (after_pass && own_bind == Some(name));
                    if !known {
                        return Err(error(format!(
                            "{{{name}}} is not bound by an earlier step's `bind`"
                        )));
                    }
                }
            }
            if let Some(name) = &raw_step.bind {
                if !valid_name(name) || matches!(name.as_str(), "subject" | "value" | "detail") {
                    return Err(error(format!(
                        "bind: {name:?} must be a name of lowercase letters, digits and '_', not subject/value/detail"
                    )));
                }
                bound.insert(name.clone());
            }
            steps.push(Step {
                id: id.to_owned(),
                title: raw_step.title.clone(),
                look: raw_step.look.trim().to_owned(),
                check,
                bind: raw_step.bind.clone(),
                pass: raw_step.pass.clone().unwrap_or_default().trim().to_owned(),
                fail: raw_step.fail.clone().unwrap_or_default().trim().to_owned(),
                on_pass,
                on_fail,
                remedy,
                verify: raw_step.verify,
            });
        }
        if !steps.iter().any(|s| s.verify) {
            return Err(error(
                None,
                "a playbook ends in verification: mark at least one step `verify = true`"
                    .to_owned(),
            ));
        }
        Ok(Playbook {
            name: name.to_owned(),
            title: raw.title,
            handles,
            summary: raw.summary.trim().to_owned(),
            settle,
            verify_within,
            steps,
        })
    }

    pub fn step(&self, id: &str) -> Option<(usize, &Step)> {
        self.steps.iter().enumerate().find(|(_, s)| s.id == id)
    }
}

fn check(raw: &RawCheck) -> Result<Check, String> {
    let probes = [
        raw.diagnosis.is_some(),
        raw.finding.is_some(),
        raw.status.is_some(),
    ];
    if probes.iter().filter(|p| **p).count() != 1 {
        return Err("a check names exactly one of diagnosis, finding or status".to_owned());
    }
    let comparison = |name: String| -> Result<Comparison, String> {
        let op = raw
            .op
            .as_deref()
            .ok_or("a comparison needs op (>, >=, <, <=, ==, !=) and value")?;
        let op =
            Op::parse(op).ok_or_else(|| format!("op: {op:?} is not >, >=, <, <=, == or !="))?;
        let value = raw.value.ok_or("a comparison needs a value")?;
        Ok(Comparison { name, op, value })
    };
    let probe = if let Some(kind) = &raw.diagnosis {
        if raw.finding.is_some()
            || raw.figure.is_some()
            || raw.op.is_some()
            || raw.severity.is_some()
        {
            return Err("a diagnosis check takes only `top`, `expect` and `scope`".to_owned());
        }
        Probe::Diagnosis {
            kind: IncidentKind::parse(kind).ok_or_else(|| {
                format!(
                    "diagnosis: unknown incident kind {kind:?} (one of {})",
                    IncidentKind::ALL.map(IncidentKind::as_str).join(", ")
                )
            })?,
            top: raw.top,
        }
    } else if let Some(kind) = &raw.finding {
        let kind = FindingKind::parse(kind).ok_or_else(|| {
            format!(
                "finding: unknown kind {kind:?} (one of {})",
                FindingKind::ALL.map(FindingKind::as_str).join(", ")
            )
        })?;
        let severity = match raw.severity.as_deref() {
            None => Severity::Warning,
            Some(text) => Severity::parse(text)
                .ok_or_else(|| format!("severity: {text:?} is not info, warning or critical"))?,
        };
        let figure = match &raw.figure {
            Some(name) => Some(comparison(name.clone())?),
            None if raw.op.is_some() || raw.value.is_some() => {
                return Err("op and value compare a `figure`: name it".to_owned());
            }
            None => None,
        };
        Probe::Finding {
            kind,
            severity,
            subject: raw.subject.clone(),
            figure,
        }
    } else {
        let text = raw.status.as_deref().unwrap_or_default();
        let fact = StatusFact::parse(text).ok_or_else(|| {
            format!(
                "status: unknown fact {text:?} (one of {})",
                StatusFact::ALL.map(StatusFact::as_str).join(", ")
            )
        })?;
        if raw.subject.is_some() || raw.figure.is_some() || raw.severity.is_some() {
            return Err("a status check takes op and value".to_owned());
        }
        Probe::Status {
            fact,
            compare: comparison(String::new())?,
        }
    };
    if raw.top && raw.diagnosis.is_none() {
        return Err("top applies to a diagnosis check".to_owned());
    }
    let present = match raw.expect.as_deref() {
        None | Some("present") => true,
        Some("absent") => false,
        Some(other) => {
            return Err(format!(
                "expect: {other:?} is not \"present\" or \"absent\""
            ));
        }
    };
    let scope = match raw.scope.as_deref() {
        None | Some("incident") => Scope::Incident,
        Some("recent") => Scope::Recent,
        Some(other) => {
            return Err(format!(
                "scope: {other:?} is not \"incident\" or \"recent\""
            ));
        }
    };
    Ok(Check {
        probe,
        present,
        scope,
    })
}

fn remedy(raw: &RawRemedy) -> Result<Remedy, String> {
    let action = Action::parse(&raw.action).ok_or_else(|| {
        format!(
            "remedy: unknown action {:?} (one of {})",
            raw.action,
            Action::ALL.map(Action::as_str).join(", ")
        )
    })?;
    if action.needs_target() && raw.target.is_none() {
        return Err(format!("remedy {action} needs a target"));
    }
    Ok(Remedy {
        action,
        target: raw.target.clone(),
        why: raw.why.trim().to_owned(),
    })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The `{name}` placeholders in `text` (`{{` is not one).
pub(crate) fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        if let Some(escaped) = after.strip_prefix('{') {
            rest = escaped;
            continue;
        }
        match after.find('}') {
            Some(close) if valid_name(&after[..close]) => {
                names.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = r#"
title = "Retry storm"
handles = ["retry_storm"]
summary = "Retries multiply load."

[[step]]
id = "confirm"
title = "Confirm"
look = "The diagnoses view."
check = { diagnosis = "retry_storm" }
pass = "Confirmed."
fail = "Not a retry storm."
on_fail = "stop"

[[step]]
id = "hop"
title = "Find the hop"
look = "The map."
check = { finding = "retry_amplification", figure = "amplification", op = ">=", value = 1.5 }
bind = "edge"
pass = "At {subject}: {value}."
fail = "No hop."

[[step]]
id = "fix"
title = "Sane retries"
look = "Worker settings for {edge}."
remedy = { action = "sane_retries", why = "Backoff and a budget." }

[[step]]
id = "verify"
title = "Back to normal"
look = "Signals."
check = { finding = "retry_amplification", expect = "absent", scope = "recent" }
pass = "Recovered."
fail = "Still amplifying."
verify = true
"#;

    #[test]
    fn a_playbook_parses_with_its_checks_branches_and_remedies() {
        let playbook = Playbook::parse("retry-storm", MINIMAL).unwrap();
        assert_eq!(playbook.handles, vec![IncidentKind::RetryStorm]);
        assert_eq!(playbook.steps.len(), 4);
        assert_eq!(playbook.steps[0].on_fail, Branch::Stop);
        assert_eq!(playbook.steps[0].on_pass, Branch::Next);
        let Some(Check {
            probe: Probe::Finding {
                figure: Some(c), ..
            },
            ..
        }) = &playbook.steps[1].check
        else {
            panic!("{:?}", playbook.steps[1].check)
        };
        assert_eq!(
            (c.name.as_str(), c.op, c.value),
            ("amplification", Op::Ge, 1.5)
        );
        assert_eq!(
            playbook.steps[2].remedy.as_ref().map(|r| r.action),
            Some(Action::SaneRetries)
        );
        let verify = playbook.steps[3].check.as_ref().unwrap();
        assert!(!verify.present);
        assert_eq!(verify.scope, Scope::Recent);
        assert_eq!(playbook.settle, Duration::from_secs(15));
    }

    fn refused(text: &str) -> String {
        Playbook::parse("x", text).unwrap_err().to_string()
    }

    #[test]
    fn mistakes_are_refused_naming_the_file_step_and_reason() {
        let cases = [
            (
                MINIMAL.replace("retry_amplification\", figure", "retry_amp\", figure"),
                "step \"hop\": finding: unknown kind \"retry_amp\"",
            ),
            (
                MINIMAL.replace("on_fail = \"stop\"", "on_fail = \"nowhere\""),
                "step \"confirm\": on_fail: \"nowhere\" is not another step's id",
            ),
            (
                MINIMAL.replace("id = \"hop\"", "id = \"confirm\""),
                "step \"confirm\": defined twice",
            ),
            (
                MINIMAL.replace("{edge}", "{node}"),
                "step \"fix\": {node} is not bound",
            ),
            (
                MINIMAL.replace("sane_retries", "reboot_everything"),
                "unknown action \"reboot_everything\"",
            ),
            (
                MINIMAL.replace("verify = true", ""),
                "mark at least one step `verify = true`",
            ),
            (
                MINIMAL.replace("op = \">=\"", "op = \"=>\""),
                "op: \"=>\" is not",
            ),
            (
                MINIMAL.replace("fail = \"No hop.\"", ""),
                "says what passing and failing mean",
            ),
            (
                MINIMAL.replace("expect = \"absent\"", "expect = \"gone\""),
                "expect: \"gone\"",
            ),
            (
                MINIMAL.replace("handles = [\"retry_storm\"]", "handles = [\"retry-storm\"]"),
                "unknown incident kind \"retry-storm\"",
            ),
            (
                MINIMAL.replace("title = \"Confirm\"", "title = \"Confirm\"\ncolour = 3"),
                "unknown field `colour`",
            ),
        ];
        for (text, expected) in cases {
            let error = refused(&text);
            assert!(error.starts_with("x.toml"), "{error}");
            assert!(error.contains(expected), "{expected:?} not in {error}");
        }
        assert!(Playbook::parse("Bad Name", MINIMAL).is_err());
    }

    #[test]
    fn checks_describe_themselves_with_bindings_filled_in() {
        let playbook = Playbook::parse("retry-storm", MINIMAL).unwrap();
        let mut bindings = std::collections::BTreeMap::new();
        bindings.insert("edge".to_owned(), "worker->payments".to_owned());
        let hop = playbook.steps[1].check.as_ref().unwrap();
        assert_eq!(
            hop.describe(&bindings),
            "passes with a retry_amplification finding (warning or worse) with amplification >= 1.5"
        );
        let verify = playbook.steps[3].check.as_ref().unwrap();
        assert_eq!(
            verify.describe(&bindings),
            "passes without a retry_amplification finding (warning or worse), in the last 5 s of data"
        );
    }

    #[test]
    fn placeholders_are_found_and_braces_escaped() {
        assert_eq!(
            placeholders("a {node} b {{literal}} {x_1} {not a name}"),
            vec!["node", "x_1"]
        );
    }

    #[test]
    fn operators_compare() {
        assert!(Op::Ge.holds(1.5, 1.5) && !Op::Gt.holds(1.5, 1.5));
        assert!(Op::Eq.holds(0.0, 0.0) && Op::Ne.holds(1.0, 0.0));
        assert!(Op::Lt.holds(1.0, 2.0) && Op::Le.holds(2.0, 2.0));
    }
}
