//! The errors the policies raise: their rejections (which callers handle, e.g. answer
//! 503 without touching the dependency) and bad settings (which an admin endpoint
//! answers with 400 and the message).

use std::time::Duration;

use super::breaker::BreakerState;

/// A call refused by a circuit breaker without reaching the dependency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct BreakerOpen {
    /// The breaker's name (`circuit_breaker.name`).
    pub name: String,
    /// `Open`, or `HalfOpen` when every trial call is already admitted.
    pub state: BreakerState,
    /// While open: how long until the breaker admits a trial call.
    pub retry_in: Option<Duration>,
}

impl BreakerOpen {
    fn describe(&self) -> String {
        match (self.state, self.retry_in) {
            (BreakerState::HalfOpen, _) => format!(
                "circuit breaker {:?} is half-open and its trial calls are taken: call refused",
                self.name
            ),
            (_, Some(wait)) => format!(
                "circuit breaker {:?} is open: call refused (trial calls in {} ms)",
                self.name,
                wait.as_millis()
            ),
            (_, None) => format!("circuit breaker {:?} is open: call refused", self.name),
        }
    }
}

/// A call refused by a full bulkhead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bulkhead {name:?} is full ({limit} concurrent calls): call refused after waiting {} ms",
    waited.as_millis()
)]
pub struct BulkheadFull {
    pub name: String,
    /// The limit when the call was refused.
    pub limit: u32,
    /// How long the call waited for a slot (0 without a wait).
    pub waited: Duration,
}

/// One attempt took longer than the retry policy's per-attempt timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attempt timed out after {} ms", after.as_millis())]
pub struct AttemptTimedOut {
    pub after: Duration,
}

/// Settings that cannot be applied; the message names the field and what it accepts.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{field} = {value} is invalid: {expected}")]
    Invalid {
        /// The field's JSON path, e.g. `failure_rate.threshold`.
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("settings are not valid JSON for this policy: {0}")]
    Json(#[from] serde_json::Error),
}

/// Checks `ok` for `field`; the error carries the value as given.
pub(crate) fn check(
    ok: bool,
    field: &'static str,
    value: impl std::fmt::Display,
    expected: &'static str,
) -> Result<(), SettingsError> {
    if ok {
        Ok(())
    } else {
        Err(SettingsError::Invalid {
            field,
            value: value.to_string(),
            expected,
        })
    }
}

/// The longest duration any setting accepts: one hour.
pub(crate) const MAX_MS: u64 = 3_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_say_what_happened_and_when_to_come_back() {
        let open = BreakerOpen {
            name: "payments".into(),
            state: BreakerState::Open,
            retry_in: Some(Duration::from_millis(1500)),
        };
        assert_eq!(
            open.to_string(),
            "circuit breaker \"payments\" is open: call refused (trial calls in 1500 ms)"
        );
        let half = BreakerOpen {
            state: BreakerState::HalfOpen,
            retry_in: None,
            ..open
        };
        assert!(half.to_string().contains("half-open"), "{half}");
        let full = BulkheadFull {
            name: "payments".into(),
            limit: 4,
            waited: Duration::from_millis(20),
        };
        assert_eq!(
            full.to_string(),
            "bulkhead \"payments\" is full (4 concurrent calls): call refused after waiting 20 ms"
        );
    }
}
