//! Thresholds: every number a detector compares against, in one place.
//!
//! Defaults follow common alerting practice (PRODUCT.md §7: replication lag above 30 s
//! warning, above 5 min critical; quorum failures above 1 % critical; a partition
//! lasting over 60 s critical; over 3 elections per hour warning). The demo runs a whole incident in
//! a few seconds, so [`Profile::Demo`] scales the time-based levels down by
//! [`DEMO_TIME_SCALE`] and is chosen automatically for captures of the demo cluster.

use serde::{Deserialize, Serialize};

/// The demo compresses an hour of production behaviour into about a minute, and a
/// "lasting" condition into about a second.
pub const DEMO_TIME_SCALE: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Production,
    Demo,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Production => "production",
            Profile::Demo => "demo",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub profile: Profile,
    /// Width of the windows signals are bucketed into; `None` picks one from the
    /// capture's length (about 60 windows, at least 1 s).
    pub window_ns: Option<i64>,
    /// Share of the capture (from its start) that serves as the baseline for onsets.
    pub baseline_share: f64,
    /// A window's p99 above this multiple of the baseline p99 is a latency rise.
    pub latency_factor: f64,
    /// ... and at least this much above it (ms), so that 1 ms → 3 ms is not news.
    pub latency_min_rise_ms: f64,
    /// An error rate above the baseline's by this much (absolute share) is a rise.
    pub error_rate_rise: f64,
    /// Calls in a window below which its rates are not trusted.
    pub min_calls: u64,
    /// Attempts per logical call on an edge: warning and critical levels.
    pub retry_warning: f64,
    pub retry_critical: f64,
    /// Elections per minute: warning and critical.
    pub elections_per_minute_warning: f64,
    pub elections_per_minute_critical: f64,
    /// The sliding window elections are counted over (the etcd mixin's 15 minutes).
    pub election_rate_window_ms: f64,
    /// Replication lag (ms): warning and critical.
    pub replication_lag_warning_ms: f64,
    pub replication_lag_critical_ms: f64,
    /// Share of requests failing for want of a quorum that is critical.
    pub quorum_failure_share: f64,
    /// ... when it lasts this long (ms): shorter refusals are an election's cost. Not
    /// scaled for the demo: its elections take as long as production's (about a
    /// second) and a storm chains a few.
    pub quorum_failure_sustain_ms: f64,
    /// A partition lasting this long (ms) is critical.
    pub partition_critical_ms: f64,
    /// A child span starting before its parent or ending after it by more than this
    /// (ms) counts as clock skew.
    pub clock_skew_ms: f64,
    /// An offset above this (ms) is critical: the hybrid logical clocks' maximum drift,
    /// beyond which replicas refuse the node's versions (a cluster constant, not scaled).
    pub clock_skew_critical_ms: f64,
    /// Share of a node's reads that were stale, under overlapping quorums, that is
    /// critical. A few are a warning: with overlapping quorums a stale read needs a
    /// write in flight or one that failed half-way, so some come with any write
    /// failures; a quarter of the reads is a store no longer answering consistently.
    pub stale_read_share_critical: f64,
    /// Message age at ack (ms) above which the consumers are lagging.
    pub consumer_lag_warning_ms: f64,
    pub consumer_lag_critical_ms: f64,
    /// A key taking this share of its keyspace's operations is hot.
    pub hot_key_share: f64,
    /// ... with at least this many operations.
    pub hot_key_min_ops: u64,
    /// Deliveries of one message after which it is called poison.
    pub poison_deliveries: i64,
    /// Messages dead-lettered per minute on one queue (in its worst window) that is
    /// critical; any dead letter at all is a warning.
    pub dead_letters_critical_per_minute: f64,
    /// A hot key's share of its keyspace above which it is critical.
    pub hot_key_critical_share: f64,
}

impl Thresholds {
    pub fn production() -> Self {
        Thresholds {
            profile: Profile::Production,
            window_ns: None,
            baseline_share: 0.25,
            latency_factor: 2.0,
            latency_min_rise_ms: 50.0,
            error_rate_rise: 0.05,
            min_calls: 5,
            retry_warning: 1.5,
            retry_critical: 2.5,
            elections_per_minute_warning: 3.0 / 60.0,
            elections_per_minute_critical: 12.0 / 60.0,
            election_rate_window_ms: 900_000.0,
            replication_lag_warning_ms: 30_000.0,
            replication_lag_critical_ms: 300_000.0,
            quorum_failure_share: 0.01,
            quorum_failure_sustain_ms: 60_000.0,
            partition_critical_ms: 60_000.0,
            clock_skew_ms: 100.0,
            clock_skew_critical_ms: 500.0,
            stale_read_share_critical: 0.25,
            consumer_lag_warning_ms: 60_000.0,
            consumer_lag_critical_ms: 600_000.0,
            hot_key_share: 0.3,
            hot_key_min_ops: 100,
            poison_deliveries: 3,
            dead_letters_critical_per_minute: 10.0,
            hot_key_critical_share: 0.6,
        }
    }

    /// The production levels with time scaled by [`DEMO_TIME_SCALE`].
    pub fn demo() -> Self {
        let production = Thresholds::production();
        let scale = DEMO_TIME_SCALE;
        Thresholds {
            profile: Profile::Demo,
            elections_per_minute_warning: production.elections_per_minute_warning * scale,
            elections_per_minute_critical: production.elections_per_minute_critical * scale,
            election_rate_window_ms: production.election_rate_window_ms / scale,
            quorum_failure_sustain_ms: 3_000.0,
            replication_lag_warning_ms: production.replication_lag_warning_ms / scale,
            replication_lag_critical_ms: production.replication_lag_critical_ms / scale,
            partition_critical_ms: production.partition_critical_ms / scale,
            consumer_lag_warning_ms: production.consumer_lag_warning_ms / scale,
            consumer_lag_critical_ms: production.consumer_lag_critical_ms / scale,
            // A hot key of the demo gets about 15 operations a second: two seconds' worth.
            hot_key_min_ops: 30,
            dead_letters_critical_per_minute: production.dead_letters_critical_per_minute * scale,
            ..production
        }
    }

    pub fn for_profile(profile: Profile) -> Self {
        match profile {
            Profile::Production => Thresholds::production(),
            Profile::Demo => Thresholds::demo(),
        }
    }
}

/// Why a thresholds file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdsError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("expected a JSON object of threshold names and values")]
    NotAnObject,
    #[error("unknown threshold `{name}`; known: {known}")]
    Unknown { name: String, known: String },
}

impl Thresholds {
    /// These thresholds with the values named in `json` (an object, e.g.
    /// `{"retry_critical": 3.0}`) replaced; unknown names are refused, not ignored.
    pub fn with_overrides(&self, json: &str) -> Result<Thresholds, ThresholdsError> {
        let overrides: serde_json::Value = serde_json::from_str(json)?;
        let serde_json::Value::Object(overrides) = overrides else {
            return Err(ThresholdsError::NotAnObject);
        };
        let mut merged = serde_json::to_value(self)?;
        let Some(fields) = merged.as_object_mut() else {
            return Err(ThresholdsError::NotAnObject);
        };
        for (name, value) in overrides {
            if !fields.contains_key(&name) {
                let known: Vec<&str> = fields.keys().map(String::as_str).collect();
                return Err(ThresholdsError::Unknown {
                    name,
                    known: known.join(", "),
                });
            }
            fields.insert(name, value);
        }
        Ok(serde_json::from_value(merged)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_named_values_and_refuse_unknown_names() {
        let demo = Thresholds::demo();
        let changed = demo
            .with_overrides(r#"{"retry_critical": 4.0, "window_ns": 2000000000}"#)
            .unwrap();
        assert_eq!(changed.retry_critical, 4.0);
        assert_eq!(changed.window_ns, Some(2_000_000_000));
        assert_eq!(changed.retry_warning, demo.retry_warning);
        assert!(matches!(
            demo.with_overrides(r#"{"retry_critcal": 4.0}"#),
            Err(ThresholdsError::Unknown { .. })
        ));
        assert!(matches!(
            demo.with_overrides("[1]"),
            Err(ThresholdsError::NotAnObject)
        ));
        assert!(matches!(
            demo.with_overrides(r#"{"retry_critical": "high"}"#),
            Err(ThresholdsError::Json(_))
        ));
    }
}
