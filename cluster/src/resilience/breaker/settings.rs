//! The breaker's runtime settings: JSON an admin endpoint can `PUT`, validated before
//! they reach the state machine.
//!
//! ```json
//! {"consecutive_failures": {"enabled": true, "threshold": 5},
//!  "failure_rate": {"enabled": true, "threshold": 0.5, "minimum_calls": 20, "window_ms": 10000},
//!  "open_ms": 5000, "half_open_trials": 3}
//! ```
//!
//! Absent fields take their defaults (shown above); unknown fields are refused, so a
//! typo is an error rather than a silently ignored setting. A rule that is switched off
//! keeps its values, so switching it back on restores them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resilience::error::{MAX_MS, SettingsError, check};

use super::window::BUCKETS;

/// How a circuit breaker trips, how long it stays open and how it tests recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerSettings {
    /// Trip after this many failures in a row (closed state).
    pub consecutive_failures: ConsecutiveFailures,
    /// Trip when the failure rate over a sliding window reaches a threshold.
    pub failure_rate: FailureRate,
    /// The cool-down: how long the breaker stays open before admitting trial calls.
    pub open_ms: u64,
    /// Trial calls admitted while half-open; when all of them succeed the breaker
    /// closes, and the first failure reopens it.
    pub half_open_trials: u32,
}

/// Trip rule: `threshold` consecutive failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsecutiveFailures {
    pub enabled: bool,
    pub threshold: u32,
}

/// Trip rule: failures ÷ calls ≥ `threshold` over the last `window_ms`, once the window
/// holds at least `minimum_calls` calls.
///
/// The window is kept in 10 buckets of `window_ms / 10`, so a call leaves it between
/// 0.9 × and 1 × `window_ms` after it finished (bounded memory at any call rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailureRate {
    pub enabled: bool,
    /// 0 < threshold ≤ 1.
    pub threshold: f64,
    pub minimum_calls: u32,
    pub window_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            consecutive_failures: ConsecutiveFailures::default(),
            failure_rate: FailureRate::default(),
            open_ms: 5_000,
            half_open_trials: 3,
        }
    }
}

impl Default for ConsecutiveFailures {
    fn default() -> Self {
        ConsecutiveFailures {
            enabled: true,
            threshold: 5,
        }
    }
}

impl Default for FailureRate {
    fn default() -> Self {
        FailureRate {
            enabled: true,
            threshold: 0.5,
            minimum_calls: 20,
            window_ms: 10_000,
        }
    }
}

/// The largest count a setting accepts (thresholds, minimum calls).
const MAX_COUNT: u32 = 1_000_000;

impl BreakerSettings {
    /// Parses and validates settings from JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, SettingsError> {
        let settings: BreakerSettings = serde_json::from_slice(json)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value, including those of a rule that is switched off.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let c = &self.consecutive_failures;
        check(
            (1..=MAX_COUNT).contains(&c.threshold),
            "consecutive_failures.threshold",
            c.threshold,
            "between 1 and 1000000 failures",
        )?;
        let r = &self.failure_rate;
        check(
            r.threshold.is_finite() && r.threshold > 0.0 && r.threshold <= 1.0,
            "failure_rate.threshold",
            r.threshold,
            "a failure rate above 0 and at most 1 (0.5 = half the calls fail)",
        )?;
        check(
            (1..=MAX_COUNT).contains(&r.minimum_calls),
            "failure_rate.minimum_calls",
            r.minimum_calls,
            "between 1 and 1000000 calls",
        )?;
        check(
            (BUCKETS as u64..=MAX_MS).contains(&r.window_ms),
            "failure_rate.window_ms",
            r.window_ms,
            "a window between 10 ms and 3600000 ms (1 hour)",
        )?;
        check(
            (1..=MAX_MS).contains(&self.open_ms),
            "open_ms",
            self.open_ms,
            "a cool-down between 1 ms and 3600000 ms (1 hour)",
        )?;
        check(
            (1..=1000).contains(&self.half_open_trials),
            "half_open_trials",
            self.half_open_trials,
            "between 1 and 1000 trial calls",
        )
    }

    /// The cool-down.
    pub fn open_for(&self) -> Duration {
        Duration::from_millis(self.open_ms)
    }

    /// The failure-rate window's length.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.failure_rate.window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        BreakerSettings::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let settings = BreakerSettings::default();
        settings.validate().unwrap();
        let json = serde_json::to_vec(&settings).unwrap();
        assert_eq!(BreakerSettings::from_json(&json).unwrap(), settings);
    }

    #[test]
    fn absent_fields_take_defaults() {
        let s =
            BreakerSettings::from_json(br#"{"open_ms": 250, "failure_rate": {"enabled": false}}"#)
                .unwrap();
        assert_eq!(s.open_ms, 250);
        assert!(!s.failure_rate.enabled);
        assert_eq!(s.failure_rate.threshold, 0.5);
        assert_eq!(s.consecutive_failures, ConsecutiveFailures::default());
    }

    #[test]
    fn bad_values_are_refused_with_the_field_and_what_it_accepts() {
        assert_eq!(
            error(r#"{"open_ms": 0}"#),
            "open_ms = 0 is invalid: a cool-down between 1 ms and 3600000 ms (1 hour)"
        );
        assert_eq!(
            error(r#"{"failure_rate": {"threshold": 1.5}}"#),
            "failure_rate.threshold = 1.5 is invalid: a failure rate above 0 and at most 1 (0.5 = half the calls fail)"
        );
        assert!(
            error(r#"{"failure_rate": {"threshold": 0}}"#)
                .starts_with("failure_rate.threshold = 0 ")
        );
        assert!(
            error(r#"{"failure_rate": {"minimum_calls": 0}}"#)
                .starts_with("failure_rate.minimum_calls = 0 ")
        );
        assert!(
            error(r#"{"failure_rate": {"window_ms": 9}}"#)
                .starts_with("failure_rate.window_ms = 9 ")
        );
        assert!(
            error(r#"{"consecutive_failures": {"threshold": 0}}"#)
                .starts_with("consecutive_failures.threshold = 0 ")
        );
        assert!(error(r#"{"half_open_trials": 0}"#).starts_with("half_open_trials = 0 "));
        assert!(error(r#"{"open_ms": 3600001}"#).starts_with("open_ms = 3600001 "));
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        let typo = error(r#"{"open_msec": 10}"#);
        assert!(typo.contains("unknown field `open_msec`"), "{typo}");
        let negative = error(r#"{"open_ms": -1}"#);
        assert!(
            negative.starts_with("settings are not valid JSON"),
            "{negative}"
        );
    }
}
