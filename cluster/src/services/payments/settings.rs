//! The provider's runtime settings: what `PUT /admin/payments` changes and
//! `GET /admin/payments` shows.
//!
//! ```text
//!  {"capacity": 8, "latency_ms": 40, "jitter_ms": 10, "error_rate": 0.0, "queue_limit": 512}
//!
//!  PaymentsUpdate (any subset) ─► PaymentsSettings::updated ─► validate ─► new settings | InvalidSettings
//! ```
//!
//! Absent fields take their defaults (shown above); unknown fields are refused, so a
//! typo in an admin command fails loudly instead of silently changing nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The most concurrent service slots the provider accepts.
pub const MAX_CAPACITY: u32 = 10_000;
/// The longest base service time, in milliseconds.
pub const MAX_LATENCY_MS: u64 = 60_000;
/// The most requests that may wait for a slot.
pub const MAX_QUEUE_LIMIT: u32 = 1_000_000;

/// How the simulated provider behaves: how many requests it serves at once, how long
/// each takes, how often it fails, and how many may wait.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSettings {
    /// Concurrent service slots; requests beyond them wait, first come first served.
    pub capacity: u32,
    /// Base service time of one request, holding its slot.
    pub latency_ms: u64,
    /// The service time is `latency_ms ± jitter_ms`, uniformly.
    pub jitter_ms: u64,
    /// Probability that a served request fails with `500 payment_failed`.
    pub error_rate: f64,
    /// Requests that may wait for a slot; beyond them, `503 overloaded` at once.
    pub queue_limit: u32,
}

impl Default for PaymentsSettings {
    fn default() -> Self {
        PaymentsSettings {
            capacity: 8,
            latency_ms: 40,
            jitter_ms: 10,
            error_rate: 0.0,
            queue_limit: 512,
        }
    }
}

/// A change to some of the settings (`PUT /admin/payments`); absent fields keep their
/// current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_limit: Option<u32>,
}

/// Settings that cannot be applied; the message names the field, the value given and
/// what the field accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value} is invalid: {expected}")]
pub struct InvalidSettings {
    pub field: &'static str,
    pub value: String,
    pub expected: String,
}

impl PaymentsSettings {
    /// The first rule these settings break, if any. Latency is checked before jitter so
    /// that the jitter's message quotes a valid latency.
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        let refuse = |field, value: &dyn std::fmt::Display, expected: String| {
            Err(InvalidSettings {
                field,
                value: value.to_string(),
                expected,
            })
        };
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return refuse(
                "capacity",
                &self.capacity,
                format!("between 1 and {MAX_CAPACITY} concurrent service slots"),
            );
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return refuse(
                "latency_ms",
                &self.latency_ms,
                format!("a service time of at most {MAX_LATENCY_MS} ms"),
            );
        }
        if self.jitter_ms > self.latency_ms {
            return refuse(
                "jitter_ms",
                &self.jitter_ms,
                format!(
                    "at most latency_ms ({} ms): the service time latency_ms ± jitter_ms cannot go below 0",
                    self.latency_ms
                ),
            );
        }
        // `contains` is false for NaN; infinities are outside the range.
        if !(0.0..=1.0).contains(&self.error_rate) {
            return refuse(
                "error_rate",
                &self.error_rate,
                "a finite probability between 0 and 1".to_owned(),
            );
        }
        if self.queue_limit > MAX_QUEUE_LIMIT {
            return refuse(
                "queue_limit",
                &self.queue_limit,
                format!(
                    "between 0 (refuse whenever every slot is busy) and {MAX_QUEUE_LIMIT} waiting requests"
                ),
            );
        }
        Ok(())
    }

    /// These settings with `update` applied, if the result is valid.
    pub fn updated(&self, update: &PaymentsUpdate) -> Result<PaymentsSettings, InvalidSettings> {
        let settings = PaymentsSettings {
            capacity: update.capacity.unwrap_or(self.capacity),
            latency_ms: update.latency_ms.unwrap_or(self.latency_ms),
            jitter_ms: update.jitter_ms.unwrap_or(self.jitter_ms),
            error_rate: update.error_rate.unwrap_or(self.error_rate),
            queue_limit: update.queue_limit.unwrap_or(self.queue_limit),
        };
        settings.validate()?;
        Ok(settings)
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(json: &str) -> String {
        let update: PaymentsUpdate = serde_json::from_str(json).unwrap();
        PaymentsSettings::default()
            .updated(&update)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_valid_and_absent_fields_take_them() {
        let defaults = PaymentsSettings::default();
        assert_eq!(defaults.validate(), Ok(()));
        let parsed: PaymentsSettings = serde_json::from_str(r#"{"capacity": 2}"#).unwrap();
        assert_eq!(
            parsed,
            PaymentsSettings {
                capacity: 2,
                ..defaults
            }
        );
        assert_eq!(defaults.latency(), Duration::from_millis(40));
    }

    #[test]
    fn an_update_changes_only_the_fields_it_names() {
        let update: PaymentsUpdate =
            serde_json::from_str(r#"{"error_rate": 0.25, "queue_limit": 0}"#).unwrap();
        let settings = PaymentsSettings::default().updated(&update).unwrap();
        assert_eq!(
            settings,
            PaymentsSettings {
                error_rate: 0.25,
                queue_limit: 0,
                ..PaymentsSettings::default()
            }
        );
        let empty = PaymentsSettings::default()
            .updated(&PaymentsUpdate::default())
            .unwrap();
        assert_eq!(empty, PaymentsSettings::default());
    }

    #[test]
    fn refusals_name_the_field_the_value_and_what_is_accepted() {
        assert_eq!(
            invalid(r#"{"capacity": 0}"#),
            "capacity = 0 is invalid: between 1 and 10000 concurrent service slots"
        );
        assert_eq!(
            invalid(r#"{"capacity": 10001}"#),
            "capacity = 10001 is invalid: between 1 and 10000 concurrent service slots"
        );
        assert_eq!(
            invalid(r#"{"latency_ms": 60001, "jitter_ms": 0}"#),
            "latency_ms = 60001 is invalid: a service time of at most 60000 ms"
        );
        assert_eq!(
            invalid(r#"{"latency_ms": 20, "jitter_ms": 21}"#),
            "jitter_ms = 21 is invalid: at most latency_ms (20 ms): the service time \
             latency_ms ± jitter_ms cannot go below 0"
        );
        assert_eq!(
            invalid(r#"{"error_rate": 1.5}"#),
            "error_rate = 1.5 is invalid: a finite probability between 0 and 1"
        );
        assert_eq!(
            invalid(r#"{"error_rate": -0.1}"#),
            "error_rate = -0.1 is invalid: a finite probability between 0 and 1"
        );
        assert!(invalid(r#"{"queue_limit": 1000001}"#).starts_with("queue_limit = 1000001 "));
        // Lowering the latency below the current jitter is refused too.
        assert!(invalid(r#"{"latency_ms": 5}"#).starts_with("jitter_ms = 10 "));
    }

    #[test]
    fn non_finite_error_rates_are_refused() {
        for rate in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let settings = PaymentsSettings {
                error_rate: rate,
                ..PaymentsSettings::default()
            };
            let e = settings.validate().unwrap_err();
            assert_eq!(e.field, "error_rate", "{rate}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<PaymentsUpdate>(r#"{"capacty": 3}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `capacty`"), "{e}");
        let e = serde_json::from_str::<PaymentsSettings>(r#"{"latency": 3}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `latency`"), "{e}");
    }
}
