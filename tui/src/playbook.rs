//! The playbook pane's run: a playbook (faultline-playbooks) followed live, its steps
//! judged on each analysis and cluster poll as they arrive.
//!
//! ```text
//!  Action::Analysis / Action::Cluster ─► App ─► Observation { newest report, its end − 5 s, newest /status }
//!      ─► PlaybookPane::observe ─► evaluate(current step's check) ─┬─ record it (Run::checked), go on
//!                                                                   └─ or keep waiting (confirmation, verification)
//!  keys: n ─► accept (the waiting result is final) · Enter ─► confirm ─► Effect::Remedy ─► Action::Remedied
//!        ─► remedied (Run::remedied) · s ─► Declined
//! ```
//!
//! The rules are those of `faultline playbook run` against a live cluster, in data
//! time instead of the wall clock (no clock here: time is the data's): the first step
//! (the confirmation) and verification steps record only a pass and otherwise keep
//! waiting; a verification after a remedy is not judged before the playbook's
//! `settle` has passed since, and gives its failing result once `verify_within` has
//! passed since it was first judged; every other check is recorded at once and the
//! run follows its branch.

use faultline_playbooks::check::{CheckResult, Observation, Outcome, evaluate};
use faultline_playbooks::{Entry, Next, Playbook, RemedyOutcome, Run};

/// A playbook being followed, and what it waits for.
#[derive(Debug, Clone)]
pub struct PlaybookPane {
    pub run: Run,
    /// Data time the run started (ns since the epoch).
    pub started_ns: u64,
    /// The current check's latest result while it is not recorded yet.
    pub waiting: Option<Waiting>,
    /// Data time the last remedy was applied: verification waits for it to settle.
    pub remedy_applied_ns: Option<u64>,
    /// The verification step being judged, and the data time it was first judged.
    pub verify_started: Option<(usize, u64)>,
    /// A remedy was confirmed and the cluster has not answered yet.
    pub remedy_pending: bool,
    /// The step whose details are shown; follows the run as it moves.
    pub selected: usize,
    /// Where the last transcript went (`Ok(path)`) or why it could not be written.
    pub transcript: Option<Result<String, String>>,
}

/// A check's result that is not final yet, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub step: usize,
    pub result: CheckResult,
    /// Data time of the observation it came from.
    pub at_ns: u64,
    pub reason: Wait,
}

/// Why the current check's result is not recorded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The first step records only a pass (`n` takes what is seen instead).
    Confirmation,
    /// A remedy was applied: verification is judged from this data time on.
    Settling { until_ns: u64 },
    /// Verification re-checks until it passes or this data time passes.
    Verifying { until_ns: u64 },
}

/// What the list shows for a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// Not reached (yet).
    Pending,
    /// The step being worked on.
    Now,
    Checked(Outcome),
    Applied,
    Declined,
    /// A remedy that could not run here (no cluster).
    Skipped,
    /// A remedy that was tried and failed.
    Failed,
    /// The run ended without reaching it.
    NotRun,
}

impl PlaybookPane {
    pub fn new(playbook: Playbook, started_ns: u64) -> PlaybookPane {
        PlaybookPane {
            run: Run::new(playbook),
            started_ns,
            waiting: None,
            remedy_applied_ns: None,
            verify_started: None,
            remedy_pending: false,
            selected: 0,
            transcript: None,
        }
    }

    pub fn playbook(&self) -> &Playbook {
        self.run.playbook()
    }

    /// Judges the current step (and the ones after it, while this observation decides
    /// them) against `observation`, made at data time `at_ns`.
    pub fn observe(&mut self, observation: &Observation<'_>, at_ns: u64) {
        let before = self.run.current();
        self.waiting = None;
        while let Next::Check { step, verify, .. } = self.run.next() {
            let Some(check) = self.run.step(step).check.clone() else {
                break;
            };
            let result = evaluate(&check, observation, self.run.bindings());
            match self.wait(step, verify, result.outcome, at_ns) {
                Some(reason) => {
                    self.waiting = Some(Waiting {
                        step,
                        result,
                        at_ns,
                        reason,
                    });
                    break;
                }
                None => self.record(result, at_ns),
            }
        }
        self.follow(before);
    }

    /// Why a result of step `step` is not recorded now, if it is not.
    fn wait(&mut self, step: usize, verify: bool, outcome: Outcome, at_ns: u64) -> Option<Wait> {
        if verify {
            let settle = nanos(self.playbook().settle);
            if let Some(applied) = self.remedy_applied_ns {
                let until_ns = applied.saturating_add(settle);
                if at_ns < until_ns {
                    return Some(Wait::Settling { until_ns });
                }
            }
            let started = match self.verify_started {
                Some((s, started)) if s == step => started,
                _ => {
                    self.verify_started = Some((step, at_ns));
                    at_ns
                }
            };
            let until_ns = started.saturating_add(nanos(self.playbook().verify_within));
            (outcome != Outcome::Pass && at_ns < until_ns).then_some(Wait::Verifying { until_ns })
        } else if step == 0 {
            (outcome != Outcome::Pass).then_some(Wait::Confirmation)
        } else {
            None
        }
    }

    fn record(&mut self, result: CheckResult, at_ns: u64) {
        self.run.checked(result, Some(ns_i64(at_ns)));
        self.waiting = None;
        self.verify_started = None;
    }

    /// `n`: the waiting result is final. Whether there was one.
    pub fn accept(&mut self) -> bool {
        let before = self.run.current();
        let Some(waiting) = self.waiting.take() else {
            return false;
        };
        match self.run.next() {
            Next::Check { step, .. } if step == waiting.step => {
                self.record(waiting.result, waiting.at_ns);
                self.follow(before);
                true
            }
            _ => false,
        }
    }

    /// Records what became of the current remedy, at data time `at_ns`.
    pub fn remedied(&mut self, outcome: RemedyOutcome, at_ns: u64) {
        let before = self.run.current();
        if matches!(outcome, RemedyOutcome::Applied(_)) {
            self.remedy_applied_ns = Some(at_ns);
        }
        self.remedy_pending = false;
        self.run.remedied(outcome, Some(ns_i64(at_ns)));
        self.follow(before);
    }

    /// The remedy due now, if the run waits for one: (step, action, target, why).
    pub fn remedy_due(
        &self,
    ) -> Option<(usize, faultline_playbooks::Action, Option<String>, String)> {
        match self.run.next() {
            Next::Remedy {
                step,
                action,
                target,
                why,
            } => Some((step, action, target, why)),
            _ => None,
        }
    }

    /// The selection moves to the step the run moved to (or, once it is over, the
    /// step that decided it).
    fn follow(&mut self, before: Option<usize>) {
        let now = self.run.current();
        if now == before {
            return;
        }
        self.selected = match now {
            Some(step) => step,
            None => self.last_step().unwrap_or(self.selected),
        };
    }

    /// The step of the log's last entry.
    fn last_step(&self) -> Option<usize> {
        self.run.log().last().map(Entry::step)
    }

    /// What the list shows for step `index`.
    pub fn state(&self, index: usize) -> StepState {
        if self.run.current() == Some(index) {
            return StepState::Now;
        }
        let last = self
            .run
            .log()
            .iter()
            .rev()
            .find(|entry| entry.step() == index);
        match last {
            Some(Entry::Checked { result, .. }) => StepState::Checked(result.outcome),
            Some(Entry::Remedied { outcome, .. }) => match outcome {
                RemedyOutcome::Applied(_) => StepState::Applied,
                RemedyOutcome::Declined => StepState::Declined,
                RemedyOutcome::Skipped(_) => StepState::Skipped,
                RemedyOutcome::Failed(_) => StepState::Failed,
            },
            None if self.run.conclusion().is_some() => StepState::NotRun,
            None => StepState::Pending,
        }
    }

    /// Step `index`'s latest recorded check: its result and meaning.
    pub fn checked(&self, index: usize) -> Option<(&CheckResult, &str)> {
        self.run.log().iter().rev().find_map(|entry| match entry {
            Entry::Checked {
                step,
                result,
                meaning,
                ..
            } if *step == index => Some((result, meaning.as_str())),
            _ => None,
        })
    }

    /// Step `index`'s latest remedy outcome.
    pub fn remedy_outcome(&self, index: usize) -> Option<&RemedyOutcome> {
        self.run.log().iter().rev().find_map(|entry| match entry {
            Entry::Remedied { step, outcome, .. } if *step == index => Some(outcome),
            _ => None,
        })
    }
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn ns_i64(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
