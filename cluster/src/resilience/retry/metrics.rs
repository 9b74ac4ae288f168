//! What a retry policy has done, as a snapshot (for `/status` JSON, with the settings in
//! force) and as Prometheus text (counters only: the settings are what an operator
//! chose — or a scenario injected — and diagnosis must come from the signals).
//!
//! ```text
//!  faultline_retry_requests_total{name}            calls (first attempts)
//!  faultline_retry_attempts_total{name}            attempts sent; ÷ requests = retry amplification
//!  faultline_retry_retries_total{name}             retries scheduled
//!  faultline_retry_budget_exhausted_total{name}    retries the budget refused
//!  faultline_retry_attempts_exhausted_total{name}  calls that failed on their last allowed attempt
//!  faultline_retry_attempt_timeouts_total{name}    attempts cut by the per-attempt timeout
//! ```

use serde::Serialize;

use super::settings::RetrySettings;
use crate::resilience::exposition::{Kind, family};

/// A retry policy's counters and the settings in force.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrySnapshot {
    pub name: String,
    pub settings: RetrySettings,
    pub requests: u64,
    pub attempts: u64,
    pub retries: u64,
    pub budget_exhausted: u64,
    pub attempts_exhausted: u64,
    pub timeouts: u64,
}

/// A counter family: name, help, and how to read it from a snapshot.
type Counter = (&'static str, &'static str, fn(&RetrySnapshot) -> u64);

/// Writes the retry policies' counters; `labels` go first on every sample.
pub fn render_retries(out: &mut String, labels: &[(&str, &str)], policies: &[RetrySnapshot]) {
    let counters: [Counter; 6] = [
        (
            "retry_requests_total",
            "Calls made through a retry policy (first attempts).",
            |s| s.requests,
        ),
        (
            "retry_attempts_total",
            "Attempts sent, first attempts and retries; divided by the calls it is the retry amplification.",
            |s| s.attempts,
        ),
        ("retry_retries_total", "Retries scheduled.", |s| s.retries),
        (
            "retry_budget_exhausted_total",
            "Retries refused because the retry budget was spent.",
            |s| s.budget_exhausted,
        ),
        (
            "retry_attempts_exhausted_total",
            "Calls that failed on their last allowed attempt.",
            |s| s.attempts_exhausted,
        ),
        (
            "retry_attempt_timeouts_total",
            "Attempts cut by the per-attempt timeout.",
            |s| s.timeouts,
        ),
    ];
    for (name, help, value) in counters {
        family(
            out,
            name,
            Kind::Counter,
            help,
            labels,
            policies
                .iter()
                .map(|p| (vec![("name", p.name.as_str())], value(p))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_counters_render_per_policy() {
        let snapshot = RetrySnapshot {
            name: "payments".into(),
            settings: RetrySettings::default(),
            requests: 10,
            attempts: 25,
            retries: 15,
            budget_exhausted: 2,
            attempts_exhausted: 3,
            timeouts: 4,
        };
        let mut out = String::new();
        render_retries(&mut out, &[("node", "node-2")], &[snapshot]);
        for line in [
            "# TYPE faultline_retry_attempts_total counter",
            r#"faultline_retry_requests_total{node="node-2",name="payments"} 10"#,
            r#"faultline_retry_attempts_total{node="node-2",name="payments"} 25"#,
            r#"faultline_retry_retries_total{node="node-2",name="payments"} 15"#,
            r#"faultline_retry_budget_exhausted_total{node="node-2",name="payments"} 2"#,
            r#"faultline_retry_attempts_exhausted_total{node="node-2",name="payments"} 3"#,
            r#"faultline_retry_attempt_timeouts_total{node="node-2",name="payments"} 4"#,
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        assert!(
            !out.contains("max_attempts"),
            "settings stay out of /metrics"
        );
    }
}
