//! Every transition of the state machine, the sliding window's edges and the half-open
//! limits, on explicit instants (no clock, no sleeping).

use std::time::{Duration, Instant};

use super::*;
use crate::resilience::breaker::{ConsecutiveFailures, FailureRate};

const MS: Duration = Duration::from_millis(1);

/// Consecutive rule `consecutive`, rate rule `(threshold, minimum_calls, window_ms)`;
/// cool-down 1 s, 2 half-open trials.
fn settings(consecutive: Option<u32>, rate: Option<(f64, u32, u64)>) -> BreakerSettings {
    let s = BreakerSettings {
        consecutive_failures: ConsecutiveFailures {
            enabled: consecutive.is_some(),
            threshold: consecutive.unwrap_or(5),
        },
        failure_rate: rate.map_or(
            FailureRate {
                enabled: false,
                ..FailureRate::default()
            },
            |(threshold, minimum_calls, window_ms)| FailureRate {
                enabled: true,
                threshold,
                minimum_calls,
                window_ms,
            },
        ),
        open_ms: 1_000,
        half_open_trials: 2,
    };
    s.validate().unwrap();
    s
}

fn admit(b: &mut CircuitBreaker, at: Instant) -> Permit {
    match b.admit(at).0 {
        Admission::Admitted(permit) => permit,
        rejected => panic!("expected admission at {at:?}, got {rejected:?}"),
    }
}

fn call(b: &mut CircuitBreaker, at: Instant, outcome: Outcome) -> Option<Transition> {
    let permit = admit(b, at);
    b.record(permit, outcome, at)
}

fn fail(b: &mut CircuitBreaker, at: Instant) -> Option<Transition> {
    call(b, at, Outcome::Failure)
}

fn succeed(b: &mut CircuitBreaker, at: Instant) -> Option<Transition> {
    call(b, at, Outcome::Success)
}

/// A breaker opened at `t0` by 3 consecutive failures.
fn opened(t0: Instant) -> CircuitBreaker {
    let mut b = CircuitBreaker::new(settings(Some(3), None), t0);
    fail(&mut b, t0);
    fail(&mut b, t0);
    assert!(fail(&mut b, t0).is_some());
    assert_eq!(b.state(), BreakerState::Open);
    b
}

#[test]
fn a_closed_breaker_admits_and_successes_never_trip_it() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(Some(1), Some((0.1, 1, 1_000))), t0);
    for i in 0..100 {
        assert_eq!(succeed(&mut b, t0 + i * MS), None);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.window_totals(t0 + 99 * MS), (100, 0));
}

#[test]
fn consecutive_failures_trip_at_the_threshold_and_a_success_resets_the_count() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(Some(3), None), t0);
    assert_eq!(fail(&mut b, t0), None);
    assert_eq!(fail(&mut b, t0), None);
    assert_eq!(b.consecutive_failures(), 2);
    assert_eq!(succeed(&mut b, t0), None);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(fail(&mut b, t0), None);
    assert_eq!(fail(&mut b, t0), None);
    assert_eq!(
        fail(&mut b, t0),
        Some(Transition {
            from: BreakerState::Closed,
            to: BreakerState::Open,
            reason: TransitionReason::ConsecutiveFailures { failures: 3 },
        })
    );
}

#[test]
fn a_switched_off_rule_never_trips() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(None, None), t0);
    for _ in 0..1_000 {
        assert_eq!(fail(&mut b, t0), None);
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn the_failure_rate_needs_the_minimum_calls_and_trips_at_the_threshold() {
    let t0 = Instant::now();
    // Rate ≥ 0.5 over 10 s with at least 4 calls.
    let mut b = CircuitBreaker::new(settings(None, Some((0.5, 4, 10_000))), t0);
    // 3 failures: 100 % but below the minimum.
    for _ in 0..3 {
        assert_eq!(fail(&mut b, t0), None);
    }
    // 4th call a success: 3/4 = 75 %, but only failures are judged; nothing yet.
    assert_eq!(succeed(&mut b, t0), None);
    // 5th: a failure, 4/5 ≥ 0.5 with 5 ≥ 4 calls.
    assert_eq!(
        fail(&mut b, t0),
        Some(Transition {
            from: BreakerState::Closed,
            to: BreakerState::Open,
            reason: TransitionReason::FailureRate {
                failures: 4,
                calls: 5
            },
        })
    );
}

#[test]
fn a_rate_exactly_at_the_threshold_trips_and_just_below_does_not() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(None, Some((0.5, 4, 10_000))), t0);
    for _ in 0..3 {
        succeed(&mut b, t0);
    }
    // 1/4 and 2/5 are below 0.5.
    assert_eq!(fail(&mut b, t0), None);
    assert_eq!(fail(&mut b, t0), None);
    // 3/6 = 0.5 exactly.
    let t = fail(&mut b, t0).unwrap();
    assert_eq!(
        t.reason,
        TransitionReason::FailureRate {
            failures: 3,
            calls: 6
        }
    );
}

#[test]
fn failures_that_left_the_sliding_window_do_not_count() {
    let t0 = Instant::now();
    // 1 s window (buckets of 100 ms), rate ≥ 0.5, at least 4 calls.
    let mut b = CircuitBreaker::new(settings(None, Some((0.5, 4, 1_000))), t0);
    fail(&mut b, t0);
    fail(&mut b, t0);
    fail(&mut b, t0 + 50 * MS);
    // At 999 ms the window still holds bucket 0: 3 failures + this one → trips…
    let mut probe = b.clone();
    assert!(fail(&mut probe, t0 + 999 * MS).is_some());
    // …at 1000 ms (bucket 10) bucket 0 has left: 1 call only, below the minimum.
    assert_eq!(fail(&mut b, t0 + 1_000 * MS), None);
    assert_eq!(b.window_totals(t0 + 1_000 * MS), (1, 1));
    // With two successes beside it, a second failure makes 2 of 4: exactly the rate.
    succeed(&mut b, t0 + 1_050 * MS);
    succeed(&mut b, t0 + 1_050 * MS);
    assert!(fail(&mut b, t0 + 1_100 * MS).is_some());
}

#[test]
fn the_first_rule_met_is_the_reason_given() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(Some(2), Some((0.5, 2, 10_000))), t0);
    fail(&mut b, t0);
    let t = fail(&mut b, t0).unwrap();
    assert_eq!(
        t.reason,
        TransitionReason::ConsecutiveFailures { failures: 2 }
    );
}

#[test]
fn an_open_breaker_rejects_until_the_cool_down_has_passed() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    assert_eq!(
        b.admit(t0 + 400 * MS),
        (
            Admission::Rejected {
                state: BreakerState::Open,
                retry_in: Some(600 * MS)
            },
            None
        )
    );
    let just_before = t0 + 1_000 * MS - Duration::from_nanos(1);
    assert!(matches!(b.admit(just_before).0, Admission::Rejected { .. }));
    let (admission, transition) = b.admit(t0 + 1_000 * MS);
    let Admission::Admitted(permit) = admission else {
        panic!("{admission:?}")
    };
    assert_eq!(permit.state(), BreakerState::HalfOpen);
    assert_eq!(
        transition,
        Some(Transition {
            from: BreakerState::Open,
            to: BreakerState::HalfOpen,
            reason: TransitionReason::CoolDownElapsed,
        })
    );
}

#[test]
fn half_open_admits_only_its_trials_and_closes_when_all_succeed() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    let t1 = t0 + 1_000 * MS;
    let first = admit(&mut b, t1);
    let second = admit(&mut b, t1);
    assert_eq!(
        b.admit(t1),
        (
            Admission::Rejected {
                state: BreakerState::HalfOpen,
                retry_in: None
            },
            None
        )
    );
    assert_eq!(b.record(first, Outcome::Success, t1), None);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // The slot of a finished trial is not handed out again: 2 trials in all.
    assert!(matches!(b.admit(t1).0, Admission::Rejected { .. }));
    assert_eq!(
        b.record(second, Outcome::Success, t1),
        Some(Transition {
            from: BreakerState::HalfOpen,
            to: BreakerState::Closed,
            reason: TransitionReason::TrialsSucceeded { successes: 2 },
        })
    );
    assert_eq!(succeed(&mut b, t1), None);
}

#[test]
fn a_failed_trial_reopens_for_a_whole_new_cool_down() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    let t1 = t0 + 1_500 * MS;
    let ok = admit(&mut b, t1);
    let bad = admit(&mut b, t1);
    assert_eq!(
        b.record(bad, Outcome::Failure, t1),
        Some(Transition {
            from: BreakerState::HalfOpen,
            to: BreakerState::Open,
            reason: TransitionReason::TrialFailed,
        })
    );
    // The other trial's late success belongs to the old half-open period.
    assert_eq!(b.record(ok, Outcome::Success, t1), None);
    assert_eq!(b.state(), BreakerState::Open);
    assert!(matches!(
        b.admit(t1 + 999 * MS).0,
        Admission::Rejected {
            retry_in: Some(d),
            ..
        } if d == MS
    ));
    assert!(matches!(b.admit(t1 + 1_000 * MS).0, Admission::Admitted(_)));
}

#[test]
fn a_cancelled_trial_frees_its_slot() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    let t1 = t0 + 1_000 * MS;
    let a = admit(&mut b, t1);
    let _b = admit(&mut b, t1);
    assert!(matches!(b.admit(t1).0, Admission::Rejected { .. }));
    assert_eq!(b.record(a, Outcome::Cancelled, t1), None);
    let c = admit(&mut b, t1);
    assert_eq!(c.state(), BreakerState::HalfOpen);
}

#[test]
fn outcomes_from_before_a_transition_change_nothing() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(Some(2), None), t0);
    let slow = admit(&mut b, t0);
    let slower = admit(&mut b, t0);
    fail(&mut b, t0);
    fail(&mut b, t0);
    assert_eq!(b.state(), BreakerState::Open);
    // A slow call admitted while closed fails while open: no new cool-down.
    assert_eq!(b.record(slow, Outcome::Failure, t0 + 900 * MS), None);
    let t1 = t0 + 1_000 * MS;
    let trial = admit(&mut b, t1);
    // Another closed-era call succeeding while half-open is no trial.
    assert_eq!(b.record(slower, Outcome::Success, t1), None);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.record(trial, Outcome::Success, t1), None);
}

#[test]
fn closing_starts_a_clean_slate() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(Some(3), Some((0.5, 4, 60_000))), t0);
    succeed(&mut b, t0);
    fail(&mut b, t0);
    fail(&mut b, t0);
    fail(&mut b, t0);
    assert_eq!(b.state(), BreakerState::Open);
    let t1 = t0 + 1_000 * MS;
    succeed(&mut b, t1);
    succeed(&mut b, t1);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.window_totals(t1), (0, 0));
    // Two failures: neither rule sees the failures from before the outage.
    assert_eq!(fail(&mut b, t1), None);
    assert_eq!(fail(&mut b, t1), None);
    assert_eq!(b.consecutive_failures(), 2);
}

#[test]
fn a_cancelled_call_while_closed_counts_for_nothing() {
    let t0 = Instant::now();
    let mut b = CircuitBreaker::new(settings(Some(1), Some((0.1, 1, 1_000))), t0);
    assert_eq!(call(&mut b, t0, Outcome::Cancelled), None);
    assert_eq!(b.window_totals(t0), (0, 0));
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn new_settings_apply_at_once() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    // A shorter cool-down counts from when the breaker opened.
    let mut shorter = b.settings().clone();
    shorter.open_ms = 200;
    b.set_settings(shorter, t0 + 100 * MS);
    assert!(matches!(b.admit(t0 + 200 * MS).0, Admission::Admitted(_)));
    // A lower threshold applies to the next failure; a new window length restarts it.
    let mut b = CircuitBreaker::new(settings(Some(10), Some((0.9, 100, 1_000))), t0);
    fail(&mut b, t0);
    fail(&mut b, t0);
    let mut stricter = b.settings().clone();
    stricter.consecutive_failures.threshold = 3;
    stricter.failure_rate.window_ms = 2_000;
    b.set_settings(stricter, t0);
    assert_eq!(b.window_totals(t0), (0, 0));
    assert_eq!(b.consecutive_failures(), 2);
    assert!(fail(&mut b, t0).is_some());
}

#[test]
fn an_idle_open_breaker_reads_half_open_once_its_cool_down_is_over() {
    let t0 = Instant::now();
    let mut b = opened(t0);
    assert_eq!(b.poll(t0 + 999 * MS), None);
    assert_eq!(b.state(), BreakerState::Open);
    let moved = b.poll(t0 + 1_000 * MS).expect("the cool-down is over");
    assert_eq!(
        (moved.from, moved.to),
        (BreakerState::Open, BreakerState::HalfOpen)
    );
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // Polling again changes nothing; the trials then close it as usual.
    assert_eq!(b.poll(t0 + 1_001 * MS), None);
    succeed(&mut b, t0 + 1_002 * MS);
    assert!(succeed(&mut b, t0 + 1_003 * MS).is_some());
    assert_eq!(b.state(), BreakerState::Closed);
}
