//! The retry policy's runtime settings: JSON an admin endpoint can `PUT`. Every part can
//! be switched off on its own while running — that is how the demo provokes a retry
//! storm (backoff, jitter and budget off, attempts up).
//!
//! ```json
//! {"max_attempts": 3,
//!  "timeout": {"enabled": true, "after_ms": 1000},
//!  "backoff": {"enabled": true, "base_ms": 50, "cap_ms": 2000, "jitter": true},
//!  "budget": {"enabled": true, "ratio": 0.2, "min_per_sec": 10, "window_secs": 10}}
//! ```
//!
//! Absent fields take their defaults (shown above); unknown fields are refused. A part
//! switched off keeps its values.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resilience::error::{MAX_MS, SettingsError, check};

/// How a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts per call, the first included (1 = never retry).
    pub max_attempts: u32,
    pub timeout: TimeoutSettings,
    pub backoff: BackoffSettings,
    pub budget: BudgetSettings,
}

/// A timeout on each attempt (not on the whole call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutSettings {
    pub enabled: bool,
    pub after_ms: u64,
}

/// The wait before retry n (n = 0 for the first retry): `min(cap, base · 2ⁿ)`, or with
/// `jitter` a uniformly random duration between 0 and that ("full jitter", AWS
/// Architecture Blog, "Exponential Backoff And Jitter", 2015). Switched off: retries
/// go out at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackoffSettings {
    pub enabled: bool,
    pub base_ms: u64,
    pub cap_ms: u64,
    pub jitter: bool,
}

/// The retry budget (tower's `TpsBudget`): retries allowed are `ratio` × the calls of the
/// last `window_secs`, plus `min_per_sec` per second. Calls are counted while the budget
/// is switched off, so switching it on judges the recent past.
///
/// tower keeps the ratio as whole calls per retry: a ratio r ≤ 1 allows one retry per
/// ⌊1/r⌋ calls (0.3 acts as ⅓).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSettings {
    pub enabled: bool,
    pub ratio: f32,
    pub min_per_sec: u32,
    pub window_secs: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 3,
            timeout: TimeoutSettings::default(),
            backoff: BackoffSettings::default(),
            budget: BudgetSettings::default(),
        }
    }
}

impl Default for TimeoutSettings {
    fn default() -> Self {
        TimeoutSettings {
            enabled: true,
            after_ms: 1_000,
        }
    }
}

impl Default for BackoffSettings {
    fn default() -> Self {
        BackoffSettings {
            enabled: true,
            base_ms: 50,
            cap_ms: 2_000,
            jitter: true,
        }
    }
}

impl Default for BudgetSettings {
    /// tower's own default budget.
    fn default() -> Self {
        BudgetSettings {
            enabled: true,
            ratio: 0.2,
            min_per_sec: 10,
            window_secs: 10,
        }
    }
}

impl RetrySettings {
    /// Parses and validates settings from JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, SettingsError> {
        let settings: RetrySettings = serde_json::from_slice(json)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value, including those of a part that is switched off. The budget's
    /// checks are the bounds tower's `TpsBudget::new` asserts, so it never panics.
    pub fn validate(&self) -> Result<(), SettingsError> {
        check(
            (1..=100).contains(&self.max_attempts),
            "max_attempts",
            self.max_attempts,
            "between 1 and 100 attempts (1 = no retries)",
        )?;
        check(
            (1..=MAX_MS).contains(&self.timeout.after_ms),
            "timeout.after_ms",
            self.timeout.after_ms,
            "a timeout between 1 ms and 3600000 ms (1 hour)",
        )?;
        let b = &self.backoff;
        check(
            (1..=MAX_MS).contains(&b.base_ms),
            "backoff.base_ms",
            b.base_ms,
            "a base between 1 ms and 3600000 ms (1 hour)",
        )?;
        check(
            b.cap_ms >= b.base_ms && b.cap_ms <= MAX_MS,
            "backoff.cap_ms",
            b.cap_ms,
            "a cap of at least backoff.base_ms and at most 3600000 ms (1 hour)",
        )?;
        let budget = &self.budget;
        check(
            budget.ratio.is_finite() && (0.0..=1000.0).contains(&budget.ratio),
            "budget.ratio",
            budget.ratio,
            "retries per call between 0 and 1000 (0.2 = one retry per five calls)",
        )?;
        check(
            budget.min_per_sec <= 1_000_000,
            "budget.min_per_sec",
            budget.min_per_sec,
            "at most 1000000 retries per second",
        )?;
        check(
            (1..=60).contains(&budget.window_secs),
            "budget.window_secs",
            budget.window_secs,
            "a window between 1 and 60 seconds",
        )
    }
}

impl TimeoutSettings {
    pub fn after(&self) -> Duration {
        Duration::from_millis(self.after_ms)
    }
}

impl BudgetSettings {
    /// Whether `other` needs a new budget (anything but `enabled` differs).
    pub(crate) fn same_budget(&self, other: &BudgetSettings) -> bool {
        self.ratio == other.ratio
            && self.min_per_sec == other.min_per_sec
            && self.window_secs == other.window_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        RetrySettings::from_json(json.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let settings = RetrySettings::default();
        settings.validate().unwrap();
        let json = serde_json::to_vec(&settings).unwrap();
        assert_eq!(RetrySettings::from_json(&json).unwrap(), settings);
    }

    #[test]
    fn a_storm_configuration_is_one_small_document() {
        let storm = RetrySettings::from_json(
            br#"{"max_attempts": 10, "backoff": {"enabled": false}, "budget": {"enabled": false}}"#,
        )
        .unwrap();
        assert_eq!(storm.max_attempts, 10);
        assert!(!storm.backoff.enabled && !storm.budget.enabled);
        assert!(storm.timeout.enabled && storm.backoff.jitter);
        assert_eq!(storm.backoff.base_ms, 50);
    }

    #[test]
    fn bad_values_are_refused_with_the_field_and_what_it_accepts() {
        assert_eq!(
            error(r#"{"max_attempts": 0}"#),
            "max_attempts = 0 is invalid: between 1 and 100 attempts (1 = no retries)"
        );
        assert_eq!(
            error(r#"{"backoff": {"base_ms": 100, "cap_ms": 50}}"#),
            "backoff.cap_ms = 50 is invalid: a cap of at least backoff.base_ms and at most 3600000 ms (1 hour)"
        );
        assert!(error(r#"{"timeout": {"after_ms": 0}}"#).starts_with("timeout.after_ms = 0 "));
        assert!(error(r#"{"backoff": {"base_ms": 0}}"#).starts_with("backoff.base_ms = 0 "));
        assert!(error(r#"{"budget": {"ratio": -0.1}}"#).starts_with("budget.ratio = -0.1 "));
        assert!(error(r#"{"budget": {"ratio": 1001}}"#).starts_with("budget.ratio = 1001 "));
        assert!(
            error(r#"{"budget": {"window_secs": 61}}"#).starts_with("budget.window_secs = 61 ")
        );
        assert!(error(r#"{"budget": {"window_secs": 0}}"#).starts_with("budget.window_secs = 0 "));
        assert!(
            error(r#"{"budget": {"min_per_sec": 1000001}}"#)
                .starts_with("budget.min_per_sec = 1000001 ")
        );
        let typo = error(r#"{"backoff": {"jiter": true}}"#);
        assert!(typo.contains("unknown field `jiter`"), "{typo}");
    }
}
