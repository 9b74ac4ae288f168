//! The retry policy's pure core: after an attempt, retry or stop — and how long to wait.
//!
//! ```text
//!  attempt outcome ─► success / refused ──────────────────────────► Done / Refused
//!                  └► failure ─► attempts left? ─no─► AttemptsExhausted
//!                                    │ yes
//!                                budget on? ─► withdraw ─refused─► BudgetExhausted
//!                                    │ ok / off
//!                                Retry { delay: backoff_delay(n) }
//! ```
//!
//! The attempt count is checked before the budget, so a call that may not retry anyway
//! does not spend a token.

use std::time::Duration;

use rand::Rng;
use tower::retry::budget::Budget;

use super::settings::{BackoffSettings, RetrySettings};

/// What one attempt turned into, as the retry policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Success,
    Failure,
    /// Refused by a breaker or bulkhead before reaching the dependency: retrying would
    /// only hammer the guard (and spend budget), so it is not retried.
    Refused,
}

/// Retry or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Done,
    Refused,
    AttemptsExhausted,
    BudgetExhausted,
    Retry { delay: Duration },
}

/// Decides after an attempt that was resend number `resends` (0 for the first attempt).
pub fn decide(
    settings: &RetrySettings,
    resends: u32,
    outcome: AttemptOutcome,
    budget: &impl Budget,
    rng: &mut impl Rng,
) -> Decision {
    match outcome {
        AttemptOutcome::Success => return Decision::Done,
        AttemptOutcome::Refused => return Decision::Refused,
        AttemptOutcome::Failure => {}
    }
    if resends.saturating_add(1) >= settings.max_attempts {
        return Decision::AttemptsExhausted;
    }
    if settings.budget.enabled && !budget.withdraw() {
        return Decision::BudgetExhausted;
    }
    Decision::Retry {
        delay: backoff_delay(&settings.backoff, resends, rng),
    }
}

/// The wait before retry `retry` (0 = the first retry): zero with backoff off, else
/// `min(cap, base · 2^retry)`, drawn uniformly from `[0, that]` (microsecond steps) with
/// jitter on.
pub fn backoff_delay(settings: &BackoffSettings, retry: u32, rng: &mut impl Rng) -> Duration {
    if !settings.enabled {
        return Duration::ZERO;
    }
    let ceiling_ms = backoff_ceiling_ms(settings, retry);
    if !settings.jitter {
        return Duration::from_millis(ceiling_ms);
    }
    let ceiling_us = ceiling_ms.saturating_mul(1_000);
    Duration::from_micros(rng.random_range(0..=ceiling_us))
}

/// `min(cap, base · 2^retry)` in milliseconds, without overflow for any `retry`.
pub fn backoff_ceiling_ms(settings: &BackoffSettings, retry: u32) -> u64 {
    let factor = 1u64.checked_shl(retry).unwrap_or(u64::MAX);
    settings.base_ms.saturating_mul(factor).min(settings.cap_ms)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::*;

    /// A budget with `tokens` withdrawals left.
    struct Tokens(Cell<u32>);

    impl Budget for Tokens {
        fn deposit(&self) {}

        fn withdraw(&self) -> bool {
            let left = self.0.get();
            self.0.set(left.saturating_sub(1));
            left > 0
        }
    }

    fn backoff(enabled: bool, jitter: bool) -> BackoffSettings {
        BackoffSettings {
            enabled,
            base_ms: 50,
            cap_ms: 2_000,
            jitter,
        }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(0x5eed)
    }

    #[test]
    fn exponential_backoff_doubles_from_the_base_up_to_the_cap() {
        let s = backoff(true, false);
        let delays: Vec<u64> = (0..8)
            .map(|n| backoff_delay(&s, n, &mut rng()).as_millis() as u64)
            .collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        for n in [63, 64, 1_000, u32::MAX] {
            assert_eq!(backoff_ceiling_ms(&s, n), 2_000, "retry {n}");
        }
    }

    #[test]
    fn without_backoff_retries_go_out_at_once_jitter_or_not() {
        for jitter in [false, true] {
            for n in 0..5 {
                assert_eq!(
                    backoff_delay(&backoff(false, jitter), n, &mut rng()),
                    Duration::ZERO
                );
            }
        }
    }

    /// Full jitter: every draw in [0, ceiling], spread over the whole range with a mean
    /// near half of it. Seeded, so it cannot flake; the margins are wide enough that any
    /// sound uniform generator passes.
    #[test]
    fn full_jitter_is_uniform_between_zero_and_the_exponential_ceiling() {
        let s = backoff(true, true);
        let mut rng = rng();
        const DRAWS: u32 = 10_000;
        for n in 0..8 {
            let ceiling = Duration::from_millis(backoff_ceiling_ms(&s, n));
            let draws: Vec<Duration> = (0..DRAWS).map(|_| backoff_delay(&s, n, &mut rng)).collect();
            assert!(
                draws.iter().all(|d| *d <= ceiling),
                "retry {n}: above {ceiling:?}"
            );
            let mean = draws.iter().sum::<Duration>() / DRAWS;
            let ratio = mean.as_secs_f64() / ceiling.as_secs_f64();
            assert!(
                (0.47..=0.53).contains(&ratio),
                "retry {n}: mean/ceiling {ratio}"
            );
            let mut deciles = [0u32; 10];
            for d in &draws {
                let decile = (d.as_secs_f64() / ceiling.as_secs_f64() * 10.0) as usize;
                deciles[decile.min(9)] += 1;
            }
            assert!(
                deciles.iter().all(|&c| (800..=1200).contains(&c)),
                "retry {n}: deciles {deciles:?}"
            );
        }
    }

    fn settings(max_attempts: u32, budget: bool) -> RetrySettings {
        let mut s = RetrySettings {
            max_attempts,
            ..RetrySettings::default()
        };
        s.budget.enabled = budget;
        s.backoff = backoff(true, false);
        s
    }

    #[test]
    fn successes_and_refusals_are_never_retried() {
        let budget = Tokens(Cell::new(10));
        let s = settings(5, true);
        assert_eq!(
            decide(&s, 0, AttemptOutcome::Success, &budget, &mut rng()),
            Decision::Done
        );
        assert_eq!(
            decide(&s, 0, AttemptOutcome::Refused, &budget, &mut rng()),
            Decision::Refused
        );
        assert_eq!(budget.0.get(), 10, "no token spent");
    }

    #[test]
    fn failures_are_retried_until_the_last_attempt_with_growing_delays() {
        let budget = Tokens(Cell::new(10));
        let s = settings(3, true);
        let decide = |resends| decide(&s, resends, AttemptOutcome::Failure, &budget, &mut rng());
        assert_eq!(
            decide(0),
            Decision::Retry {
                delay: Duration::from_millis(50)
            }
        );
        assert_eq!(
            decide(1),
            Decision::Retry {
                delay: Duration::from_millis(100)
            }
        );
        assert_eq!(decide(2), Decision::AttemptsExhausted);
        assert_eq!(budget.0.get(), 8, "the exhausted attempt spent no token");
        let once = settings(1, true);
        assert_eq!(
            super::decide(&once, 0, AttemptOutcome::Failure, &budget, &mut rng()),
            Decision::AttemptsExhausted
        );
    }

    #[test]
    fn an_empty_budget_refuses_retries_unless_the_budget_is_off() {
        let budget = Tokens(Cell::new(1));
        let on = settings(10, true);
        assert!(matches!(
            decide(&on, 0, AttemptOutcome::Failure, &budget, &mut rng()),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&on, 1, AttemptOutcome::Failure, &budget, &mut rng()),
            Decision::BudgetExhausted
        );
        let off = settings(10, false);
        assert!(matches!(
            decide(&off, 1, AttemptOutcome::Failure, &budget, &mut rng()),
            Decision::Retry { .. }
        ));
    }
}
