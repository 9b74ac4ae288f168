//! The bulkhead's runtime settings: JSON an admin endpoint can `PUT`.
//!
//! ```json
//! {"max_concurrent": 16, "max_wait_ms": 0}
//! ```
//!
//! Absent fields take their defaults (shown above); unknown fields are refused.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resilience::error::{SettingsError, check};

/// How many calls may be in flight at once, and how long a call may wait for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadSettings {
    pub max_concurrent: u32,
    /// 0: a call that finds the bulkhead full is refused at once.
    pub max_wait_ms: u64,
}

impl Default for BulkheadSettings {
    fn default() -> Self {
        BulkheadSettings {
            max_concurrent: 16,
            max_wait_ms: 0,
        }
    }
}

impl BulkheadSettings {
    /// Parses and validates settings from JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, SettingsError> {
        let settings: BulkheadSettings = serde_json::from_slice(json)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        check(
            (1..=100_000).contains(&self.max_concurrent),
            "max_concurrent",
            self.max_concurrent,
            "between 1 and 100000 concurrent calls",
        )?;
        check(
            self.max_wait_ms <= 60_000,
            "max_wait_ms",
            self.max_wait_ms,
            "a wait between 0 ms (refuse at once) and 60000 ms",
        )
    }

    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_validate_and_explain_refusals() {
        let s = BulkheadSettings::from_json(br#"{"max_concurrent": 4}"#).unwrap();
        assert_eq!(
            s,
            BulkheadSettings {
                max_concurrent: 4,
                max_wait_ms: 0
            }
        );
        let error = |json: &str| {
            BulkheadSettings::from_json(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error(r#"{"max_concurrent": 0}"#),
            "max_concurrent = 0 is invalid: between 1 and 100000 concurrent calls"
        );
        assert!(error(r#"{"max_wait_ms": 60001}"#).starts_with("max_wait_ms = 60001 "));
        assert!(error(r#"{"limit": 3}"#).contains("unknown field `limit`"));
    }
}
