//! The circuit breaker as a pure state machine: instants in, admissions and
//! transitions out. No clock, no locks, no telemetry — the shell ([`super::Breaker`])
//! supplies `now`, serializes access and reports what this returns.
//!
//! ```text
//!            failure trips a rule                    cool-down elapsed, next admit
//!  ┌────────┐  (consecutive or rate) ┌──────┐  ───────────────────────────► ┌───────────┐
//!  │ Closed │ ─────────────────────► │ Open │                               │ HalfOpen  │
//!  └────────┘                        └──────┘  ◄─────────────────────────── └───────────┘
//!       ▲                             rejects        a trial fails          admits `half_open_trials`
//!       └─────────────────────────────────────────────────────────────────── all trials succeed
//! ```
//!
//! Every admitted call gets a [`Permit`] that must come back with its [`Outcome`]
//! (cancelled calls too, so a half-open trial slot is never lost). A permit carries the
//! generation it was issued in; an outcome from before the latest transition (a slow call
//! admitted while closed, finishing after the breaker opened) changes nothing.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::settings::BreakerSettings;
use super::window::{Totals, Window};

/// The three states of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass; outcomes are counted against the trip rules.
    Closed,
    /// Calls are refused until the cool-down has passed.
    Open,
    /// A bounded number of trial calls pass; the rest are refused.
    HalfOpen,
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ];

    /// The name used in telemetry (`circuit_breaker.state`) and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransitionReason {
    /// Closed → open: this many failures in a row.
    ConsecutiveFailures { failures: u32 },
    /// Closed → open: the window held `failures` of `calls`.
    FailureRate { failures: u32, calls: u32 },
    /// Open → half-open.
    CoolDownElapsed,
    /// Half-open → open.
    TrialFailed,
    /// Half-open → closed.
    TrialsSucceeded { successes: u32 },
}

impl TransitionReason {
    /// The name used in telemetry (`circuit_breaker.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionReason::ConsecutiveFailures { .. } => "consecutive_failures",
            TransitionReason::FailureRate { .. } => "failure_rate",
            TransitionReason::CoolDownElapsed => "cool_down_elapsed",
            TransitionReason::TrialFailed => "trial_failed",
            TransitionReason::TrialsSucceeded { .. } => "trials_succeeded",
        }
    }
}

/// One change of state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: TransitionReason,
}

/// Leave to make one call; hand it back to [`CircuitBreaker::record`]. Not `Clone`: one
/// call, one outcome.
#[derive(Debug, PartialEq, Eq)]
pub struct Permit {
    generation: u64,
    state: BreakerState,
}

impl Permit {
    /// The state the call was admitted in (closed, or half-open for a trial call).
    pub fn state(&self) -> BreakerState {
        self.state
    }
}

/// What a call turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Dropped before it finished: counts for nothing, frees a trial slot.
    Cancelled,
}

/// The answer to [`CircuitBreaker::admit`].
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted(Permit),
    Rejected {
        state: BreakerState,
        /// While open: the rest of the cool-down.
        retry_in: Option<Duration>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Closed,
    Open { since: Instant },
    HalfOpen { admitted: u32, succeeded: u32 },
}

/// The state machine. Settings are expected to be validated
/// ([`BreakerSettings::validate`]); invalid ones do not panic.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    phase: Phase,
    /// Bumped by every transition; permits from older generations are ignored.
    generation: u64,
    consecutive_failures: u32,
    window: Window,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings, now: Instant) -> CircuitBreaker {
        CircuitBreaker {
            window: Window::new(settings.window(), now),
            settings,
            phase: Phase::Closed,
            generation: 0,
            consecutive_failures: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// Failures in a row so far (closed state).
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Calls and failures in the sliding window ending at `now` (closed state; the
    /// window starts empty at every transition).
    pub fn window_totals(&self, now: Instant) -> (u32, u32) {
        let Totals { calls, failures } = self.window.totals(now);
        (calls, failures)
    }

    /// Applies new settings. The window restarts if its length changed; an open
    /// breaker's cool-down is measured with the new length from when it opened.
    pub fn set_settings(&mut self, settings: BreakerSettings, now: Instant) {
        if settings.window() != self.settings.window() {
            self.window = Window::new(settings.window(), now);
        }
        self.settings = settings;
    }

    /// Asks to make a call at `now`. An open breaker whose cool-down has elapsed turns
    /// half-open first (the returned transition).
    /// Moves an open breaker whose cool-down is over to half-open — what the next call
    /// would do — so that an idle breaker does not report `open` long after it would
    /// let a trial through.
    pub fn poll(&mut self, now: Instant) -> Option<Transition> {
        let Phase::Open { since } = self.phase else {
            return None;
        };
        if now.saturating_duration_since(since) < self.settings.open_for() {
            return None;
        }
        Some(self.enter(
            Phase::HalfOpen {
                admitted: 0,
                succeeded: 0,
            },
            TransitionReason::CoolDownElapsed,
            now,
        ))
    }

    pub fn admit(&mut self, now: Instant) -> (Admission, Option<Transition>) {
        let mut transition = None;
        if let Phase::Open { since } = self.phase {
            let elapsed = now.saturating_duration_since(since);
            let open_for = self.settings.open_for();
            if elapsed < open_for {
                let rejected = Admission::Rejected {
                    state: BreakerState::Open,
                    retry_in: Some(open_for - elapsed),
                };
                return (rejected, None);
            }
            transition = Some(self.enter(
                Phase::HalfOpen {
                    admitted: 0,
                    succeeded: 0,
                },
                TransitionReason::CoolDownElapsed,
                now,
            ));
        }
        let admission = match &mut self.phase {
            Phase::HalfOpen { admitted, .. } if *admitted >= self.settings.half_open_trials => {
                Admission::Rejected {
                    state: BreakerState::HalfOpen,
                    retry_in: None,
                }
            }
            Phase::HalfOpen { admitted, .. } => {
                *admitted += 1;
                self.permit()
            }
            _ => self.permit(),
        };
        (admission, transition)
    }

    fn permit(&self) -> Admission {
        Admission::Admitted(Permit {
            generation: self.generation,
            state: self.state(),
        })
    }

    /// Records the outcome of an admitted call at `now`.
    pub fn record(&mut self, permit: Permit, outcome: Outcome, now: Instant) -> Option<Transition> {
        if permit.generation != self.generation {
            return None;
        }
        match (&mut self.phase, outcome) {
            (Phase::HalfOpen { admitted, .. }, Outcome::Cancelled) => {
                *admitted = admitted.saturating_sub(1);
                None
            }
            (_, Outcome::Cancelled) | (Phase::Open { .. }, _) => None,
            (Phase::Closed, Outcome::Success) => {
                self.consecutive_failures = 0;
                self.window.record(now, false);
                None
            }
            (Phase::Closed, Outcome::Failure) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.window.record(now, true);
                let reason = self.trip_reason(now)?;
                Some(self.enter(Phase::Open { since: now }, reason, now))
            }
            (Phase::HalfOpen { succeeded, .. }, Outcome::Success) => {
                *succeeded += 1;
                let successes = *succeeded;
                (successes >= self.settings.half_open_trials).then(|| {
                    self.enter(
                        Phase::Closed,
                        TransitionReason::TrialsSucceeded { successes },
                        now,
                    )
                })
            }
            (Phase::HalfOpen { .. }, Outcome::Failure) => Some(self.enter(
                Phase::Open { since: now },
                TransitionReason::TrialFailed,
                now,
            )),
        }
    }

    fn trip_reason(&self, now: Instant) -> Option<TransitionReason> {
        let consecutive = &self.settings.consecutive_failures;
        if consecutive.enabled && self.consecutive_failures >= consecutive.threshold {
            return Some(TransitionReason::ConsecutiveFailures {
                failures: self.consecutive_failures,
            });
        }
        let rate = &self.settings.failure_rate;
        if !rate.enabled {
            return None;
        }
        let Totals { calls, failures } = self.window.totals(now);
        let tripped =
            calls >= rate.minimum_calls && f64::from(failures) >= rate.threshold * f64::from(calls);
        tripped.then_some(TransitionReason::FailureRate { failures, calls })
    }

    fn enter(&mut self, phase: Phase, reason: TransitionReason, now: Instant) -> Transition {
        let from = self.state();
        self.phase = phase;
        self.generation += 1;
        // Each closed period judges the dependency afresh: failures from before an
        // outage must not trip the breaker again right after it recovered.
        self.consecutive_failures = 0;
        self.window = Window::new(self.settings.window(), now);
        Transition {
            from,
            to: self.state(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests;
