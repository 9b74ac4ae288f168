//! The engine: a playbook run as a state machine the caller drives.
//!
//! ```text
//!          ┌──────────── Run::next() ─────────────┐
//!          ▼                                      │
//!   Next::Check { step, scope } ─► caller observes, evaluate() ─► Run::checked(result)
//!   Next::Remedy { step, action, target } ─► caller asks, acts ─► Run::remedied(outcome)
//!   Next::Done(Conclusion)
//! ```
//!
//! The run does no I/O and reads no clock: the CLI drives it against a capture or a
//! live cluster (asking before each remedy), the TUI drives it from its analyses and
//! its confirmation dialog. Every result lands in the log, from which
//! [`crate::transcript`] writes the Markdown record.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::check::{CheckResult, Observation, Outcome, evaluate, fill};
use crate::format::{Action, Branch, Playbook, Scope, Step};

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Evaluate step `step`'s check (with [`crate::check::evaluate`] and
    /// [`Run::bindings`]) and hand the result to [`Run::checked`].
    Check {
        step: usize,
        scope: Scope,
        verify: bool,
    },
    /// Offer step `step`'s remedy, with its target filled in; report with
    /// [`Run::remedied`].
    Remedy {
        step: usize,
        action: Action,
        target: Option<String>,
        why: String,
    },
    Done(Conclusion),
}

/// What became of a remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemedyOutcome {
    /// Done; what was done.
    Applied(String),
    /// The user said no.
    Declined,
    /// Not possible here (a capture), and why.
    Skipped(String),
    /// Tried and failed; the error.
    Failed(String),
}

/// One line of the run's log.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Checked {
        step: usize,
        result: CheckResult,
        /// What the result means (the step's pass or fail text, filled in).
        meaning: String,
        /// Data time of the observation, ns since the epoch (when known).
        at_ns: Option<i64>,
    },
    Remedied {
        step: usize,
        action: Action,
        target: Option<String>,
        outcome: RemedyOutcome,
        at_ns: Option<i64>,
    },
}

impl Entry {
    /// The step this entry is about.
    pub fn step(&self) -> usize {
        match self {
            Entry::Checked { step, .. } | Entry::Remedied { step, .. } => *step,
        }
    }
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A verification step passed: the incident is over.
    Resolved,
    /// A verification step failed: it goes on.
    NotResolved,
    /// A check ruled the playbook's incident out.
    NotThisIncident,
    /// Nothing decided it (a verification that could not be evaluated, or a run cut
    /// short).
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Resolved => "resolved",
            Verdict::NotResolved => "not resolved",
            Verdict::NotThisIncident => "not this incident",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    pub verdict: Verdict,
    /// The meaning of the step that decided it.
    pub summary: String,
}

/// A run of one playbook (it keeps the playbook, shared: a run can live in the TUI's
/// state as long as it likes).
#[derive(Debug, Clone)]
pub struct Run {
    playbook: Arc<Playbook>,
    /// The step to do next; `None` once done.
    cursor: Option<usize>,
    /// Whether the cursor's check was done and its remedy is pending.
    remedy_due: bool,
    bindings: BTreeMap<String, String>,
    log: Vec<Entry>,
    conclusion: Option<Conclusion>,
    /// Steps visited, to stop a loop of branches.
    visits: usize,
}

/// Longest run, in steps visited: branches may go back, never forever.
const MAX_VISITS: usize = 64;

impl Run {
    pub fn new(playbook: impl Into<Arc<Playbook>>) -> Run {
        Run {
            playbook: playbook.into(),
            cursor: Some(0),
            remedy_due: false,
            bindings: BTreeMap::new(),
            log: Vec::new(),
            conclusion: None,
            visits: 0,
        }
    }

    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }

    pub fn bindings(&self) -> &BTreeMap<String, String> {
        &self.bindings
    }

    pub fn log(&self) -> &[Entry] {
        &self.log
    }

    /// The step being worked on.
    pub fn current(&self) -> Option<usize> {
        self.cursor
    }

    pub fn conclusion(&self) -> Option<&Conclusion> {
        self.conclusion.as_ref()
    }

    /// What to do now.
    pub fn next(&self) -> Next {
        if let Some(conclusion) = &self.conclusion {
            return Next::Done(conclusion.clone());
        }
        let Some(index) = self.cursor else {
            return Next::Done(self.final_conclusion());
        };
        let step = &self.playbook.steps[index];
        match (&step.check, &step.remedy) {
            (Some(check), _) if !self.remedy_due => Next::Check {
                step: index,
                scope: check.scope,
                verify: step.verify,
            },
            (_, Some(remedy)) => Next::Remedy {
                step: index,
                action: remedy.action,
                target: remedy.target.as_deref().map(|t| fill(t, &self.bindings)),
                why: fill(&remedy.why, &self.bindings),
            },
            // Validation gives every step a check or a remedy.
            _ => unreachable_step(),
        }
    }

    /// Records the current step's check result and moves on.
    pub fn checked(&mut self, result: CheckResult, at_ns: Option<i64>) {
        let Some(index) = self.cursor else {
            return;
        };
        let playbook = Arc::clone(&self.playbook);
        let step = &playbook.steps[index];
        if step.check.is_none() || self.remedy_due {
            return;
        }
        if let (Some(name), Some(subject), Outcome::Pass) =
            (&step.bind, &result.subject, result.outcome)
        {
            self.bindings.insert(name.clone(), subject.clone());
        }
        let mut local = self.bindings.clone();
        if let Some(subject) = &result.subject {
            local.insert("subject".to_owned(), subject.clone());
        }
        if let Some(value) = result.value {
            local.insert("value".to_owned(), crate::check::short(value));
        }
        local.insert("detail".to_owned(), result.detail.clone());
        let meaning = match result.outcome {
            Outcome::Pass => fill(&step.pass, &local),
            Outcome::Fail => fill(&step.fail, &local),
            Outcome::Unknown => format!("Could not tell: {}", result.detail),
        };
        let outcome = result.outcome;
        self.log.push(Entry::Checked {
            step: index,
            result,
            meaning: meaning.clone(),
            at_ns,
        });
        match outcome {
            Outcome::Pass if step.remedy.is_some() => self.remedy_due = true,
            Outcome::Pass => self.advance_after(index, &step.on_pass, Outcome::Pass, meaning),
            Outcome::Fail => self.advance_after(index, &step.on_fail, Outcome::Fail, meaning),
            // Unknown: go on as if nothing was learnt.
            Outcome::Unknown => self.advance(index, &Branch::Next),
        }
    }

    /// Records what became of the current step's remedy and moves on.
    pub fn remedied(&mut self, outcome: RemedyOutcome, at_ns: Option<i64>) {
        let Some(index) = self.cursor else {
            return;
        };
        let playbook = Arc::clone(&self.playbook);
        let step = &playbook.steps[index];
        let Some(remedy) = &step.remedy else {
            return;
        };
        self.log.push(Entry::Remedied {
            step: index,
            action: remedy.action,
            target: remedy.target.as_deref().map(|t| fill(t, &self.bindings)),
            outcome,
            at_ns,
        });
        self.remedy_due = false;
        self.advance(index, &step.on_pass);
    }

    /// Whether a remedy was applied in this run (live verification then waits for it
    /// to settle).
    pub fn acted(&self) -> bool {
        self.log.iter().any(|e| {
            matches!(
                e,
                Entry::Remedied {
                    outcome: RemedyOutcome::Applied(_),
                    ..
                }
            )
        })
    }

    fn advance_after(&mut self, index: usize, branch: &Branch, outcome: Outcome, meaning: String) {
        if *branch == Branch::Stop {
            let step = &self.playbook.steps[index];
            let verdict = match (step.verify, outcome) {
                (true, Outcome::Pass) => Verdict::Resolved,
                (true, _) => Verdict::NotResolved,
                (false, Outcome::Fail) => Verdict::NotThisIncident,
                (false, _) => self.final_conclusion().verdict,
            };
            self.conclusion = Some(Conclusion {
                verdict,
                summary: meaning,
            });
            self.cursor = None;
            return;
        }
        self.advance(index, branch);
    }

    fn advance(&mut self, index: usize, branch: &Branch) {
        self.visits += 1;
        self.remedy_due = false;
        self.cursor = match branch {
            Branch::Next => (index + 1 < self.playbook.steps.len()).then_some(index + 1),
            Branch::Step(id) => self.playbook.step(id).map(|(i, _)| i),
            Branch::Stop => None,
        };
        if self.visits >= MAX_VISITS && self.cursor.is_some() {
            self.conclusion = Some(Conclusion {
                verdict: Verdict::Inconclusive,
                summary: format!("stopped after {MAX_VISITS} steps: the playbook's branches loop"),
            });
            self.cursor = None;
        }
        if self.cursor.is_none() && self.conclusion.is_none() {
            self.conclusion = Some(self.final_conclusion());
        }
    }

    /// The verdict of a run that went off the end: its last verification decides.
    fn final_conclusion(&self) -> Conclusion {
        let last_verify = self.log.iter().rev().find_map(|e| match e {
            Entry::Checked {
                step,
                result,
                meaning,
                ..
            } if self.playbook.steps[*step].verify => Some((result.outcome, meaning)),
            _ => None,
        });
        match last_verify {
            Some((Outcome::Pass, meaning)) => Conclusion {
                verdict: Verdict::Resolved,
                summary: meaning.clone(),
            },
            Some((Outcome::Fail, meaning)) => Conclusion {
                verdict: Verdict::NotResolved,
                summary: meaning.clone(),
            },
            Some((Outcome::Unknown, meaning)) => Conclusion {
                verdict: Verdict::Inconclusive,
                summary: meaning.clone(),
            },
            None => Conclusion {
                verdict: Verdict::Inconclusive,
                summary: "the run ended before any verification".to_owned(),
            },
        }
    }

    /// The step at `index`.
    pub fn step(&self, index: usize) -> &Step {
        &self.playbook.steps[index]
    }
}

/// Runs `playbook` to its end against one observation of the past (a capture): every
/// check is evaluated against it, and every remedy is recorded as not run, with why.
pub fn on_record(playbook: &Playbook, observation: &Observation<'_>) -> Run {
    let mut run = Run::new(playbook.clone());
    let at_ns = observation.report.end_ns;
    loop {
        match run.next() {
            Next::Check { step, .. } => {
                let Some(check) = &run.step(step).check else {
                    break;
                };
                let result = evaluate(check, observation, run.bindings());
                run.checked(result, at_ns);
            }
            Next::Remedy { .. } => run.remedied(
                RemedyOutcome::Skipped(
                    "not run: this is a record of the past, not a live cluster".to_owned(),
                ),
                None,
            ),
            Next::Done(_) => break,
        }
    }
    run
}

/// Every step has a check or a remedy, and a remedy is due only on a step that has one.
fn unreachable_step() -> Next {
    Next::Done(Conclusion {
        verdict: Verdict::Inconclusive,
        summary: "internal: a remedy was due on a step without one".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PLAYBOOK: &str = r#"
title = "Leader loss"
handles = ["leader_loss"]
summary = "A node died."

[[step]]
id = "confirm"
title = "Confirm"
look = "Diagnoses."
check = { diagnosis = "leader_loss" }
bind = "node"
pass = "Leader {node} lost."
fail = "No leader loss."
on_fail = "stop"

[[step]]
id = "restart"
title = "Restart it"
look = "Overview."
check = { finding = "node_down", subject = "{node}" }
pass = "{node} is still down."
fail = "{node} is back."
on_fail = "verify"
remedy = { action = "restart_node", target = "{node}", why = "Bring {node} back." }

[[step]]
id = "verify"
title = "Verify"
look = "Overview."
check = { finding = "node_down", expect = "absent", scope = "recent" }
pass = "All nodes up."
fail = "Still down."
verify = true
"#;

    fn result(outcome: Outcome, subject: Option<&str>) -> CheckResult {
        CheckResult {
            outcome,
            subject: subject.map(str::to_owned),
            value: None,
            detail: "seen".to_owned(),
            evidence: Vec::new(),
        }
    }

    #[test]
    fn a_run_checks_binds_remedies_and_verifies() {
        let playbook = Playbook::parse("leader-loss", PLAYBOOK).unwrap();
        let mut run = Run::new(playbook);
        assert!(matches!(run.next(), Next::Check { step: 0, .. }));
        run.checked(result(Outcome::Pass, Some("node-2")), None);
        assert_eq!(run.bindings()["node"], "node-2");
        assert!(matches!(run.next(), Next::Check { step: 1, .. }));
        run.checked(result(Outcome::Pass, Some("node-2")), None);
        let Next::Remedy {
            action,
            target,
            why,
            ..
        } = run.next()
        else {
            panic!("{:?}", run.next())
        };
        assert_eq!(
            (action, target.as_deref()),
            (Action::RestartNode, Some("node-2"))
        );
        assert_eq!(why, "Bring node-2 back.");
        run.remedied(RemedyOutcome::Applied("started node-2".to_owned()), None);
        assert!(run.acted());
        assert!(matches!(
            run.next(),
            Next::Check {
                step: 2,
                verify: true,
                ..
            }
        ));
        run.checked(result(Outcome::Pass, None), None);
        let Next::Done(conclusion) = run.next() else {
            panic!()
        };
        assert_eq!(conclusion.verdict, Verdict::Resolved);
        assert_eq!(conclusion.summary, "All nodes up.");
        let Entry::Checked { meaning, .. } = &run.log()[0] else {
            panic!()
        };
        assert_eq!(meaning, "Leader node-2 lost.");
    }

    #[test]
    fn a_failed_confirmation_rules_the_incident_out() {
        let playbook = Playbook::parse("leader-loss", PLAYBOOK).unwrap();
        let mut run = Run::new(playbook);
        run.checked(result(Outcome::Fail, None), None);
        assert_eq!(
            run.next(),
            Next::Done(Conclusion {
                verdict: Verdict::NotThisIncident,
                summary: "No leader loss.".to_owned()
            })
        );
    }

    #[test]
    fn a_failed_check_branches_and_a_failed_verification_is_not_resolved() {
        let playbook = Playbook::parse("leader-loss", PLAYBOOK).unwrap();
        let mut run = Run::new(playbook);
        run.checked(result(Outcome::Pass, Some("node-1")), None);
        run.checked(result(Outcome::Fail, None), None);
        assert!(
            matches!(run.next(), Next::Check { step: 2, .. }),
            "on_fail went to verify"
        );
        assert!(!run.acted());
        run.checked(result(Outcome::Fail, Some("node-1")), None);
        let Next::Done(conclusion) = run.next() else {
            panic!()
        };
        assert_eq!(conclusion.verdict, Verdict::NotResolved);
    }

    #[test]
    fn declined_remedies_are_logged_and_the_run_goes_on() {
        let playbook = Playbook::parse("leader-loss", PLAYBOOK).unwrap();
        let mut run = Run::new(playbook);
        run.checked(result(Outcome::Pass, Some("node-3")), None);
        run.checked(result(Outcome::Pass, Some("node-3")), None);
        run.remedied(RemedyOutcome::Declined, None);
        assert!(!run.acted());
        assert!(matches!(
            run.log().last(),
            Some(Entry::Remedied {
                outcome: RemedyOutcome::Declined,
                ..
            })
        ));
        assert!(matches!(run.next(), Next::Check { step: 2, .. }));
    }

    #[test]
    fn unknown_results_go_on_and_an_unknown_verification_is_inconclusive() {
        let playbook = Playbook::parse("leader-loss", PLAYBOOK).unwrap();
        let mut run = Run::new(playbook);
        run.checked(result(Outcome::Pass, Some("node-3")), None);
        run.checked(result(Outcome::Unknown, None), None);
        run.checked(result(Outcome::Unknown, None), None);
        let Next::Done(conclusion) = run.next() else {
            panic!()
        };
        assert_eq!(conclusion.verdict, Verdict::Inconclusive);
    }
}
