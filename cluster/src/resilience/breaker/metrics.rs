//! What a breaker has done, as a snapshot (for `/status` JSON) and as Prometheus text
//! (for `/metrics`).
//!
//! ```text
//!  Breaker::snapshot() ─► BreakerSnapshot ─┬─► serde JSON
//!                                          └─► render_breakers(out, &[("node", …)], …)
//!      faultline_circuit_breaker_state{name,state}              1 for the current state, else 0
//!      faultline_circuit_breaker_transitions_total{name,state}  transitions into each state
//!      faultline_circuit_breaker_calls_total{name,outcome}      success | failure | rejected
//! ```

use serde::Serialize;

use super::BreakerState;
use crate::resilience::exposition::{Kind, family};

/// A breaker's state and counters at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    pub name: String,
    pub state: BreakerState,
    /// Transitions into each state since start.
    pub transitions: StateCounts,
    pub calls: BreakerCalls,
    /// Failures in a row so far (closed state).
    pub consecutive_failures: u32,
    /// Calls and failures in the failure-rate window now (closed state).
    pub window_calls: u32,
    pub window_failures: u32,
}

/// One count per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub closed: u64,
    pub open: u64,
    pub half_open: u64,
}

impl StateCounts {
    pub fn get(&self, state: BreakerState) -> u64 {
        match state {
            BreakerState::Closed => self.closed,
            BreakerState::Open => self.open,
            BreakerState::HalfOpen => self.half_open,
        }
    }
}

/// Calls by what became of them. Cancelled calls (dropped before they ended) are in
/// none of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BreakerCalls {
    /// Admitted and classified a success.
    pub succeeded: u64,
    /// Admitted and classified a failure.
    pub failed: u64,
    /// Refused without calling the dependency.
    pub rejected: u64,
}

/// Writes the breakers' metrics; `labels` (e.g. `[("node", "node-1")]`) go first on
/// every sample.
pub fn render_breakers(out: &mut String, labels: &[(&str, &str)], breakers: &[BreakerSnapshot]) {
    family(
        out,
        "circuit_breaker_state",
        Kind::Gauge,
        "1 for the state a circuit breaker is in, 0 for the others.",
        labels,
        breakers.iter().flat_map(|b| {
            BreakerState::ALL.map(|state| {
                let row = vec![("name", b.name.as_str()), ("state", state.as_str())];
                (row, u64::from(b.state == state))
            })
        }),
    );
    family(
        out,
        "circuit_breaker_transitions_total",
        Kind::Counter,
        "Circuit breaker transitions into each state.",
        labels,
        breakers.iter().flat_map(|b| {
            BreakerState::ALL.map(|state| {
                let row = vec![("name", b.name.as_str()), ("state", state.as_str())];
                (row, b.transitions.get(state))
            })
        }),
    );
    family(
        out,
        "circuit_breaker_calls_total",
        Kind::Counter,
        "Calls through a circuit breaker: success and failure as classified, rejected without calling.",
        labels,
        breakers.iter().flat_map(|b| {
            [
                ("success", b.calls.succeeded),
                ("failure", b.calls.failed),
                ("rejected", b.calls.rejected),
            ]
            .map(|(outcome, n)| (vec![("name", b.name.as_str()), ("outcome", outcome)], n))
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakers_render_state_transitions_and_calls() {
        let snapshot = BreakerSnapshot {
            name: "payments".into(),
            state: BreakerState::Open,
            transitions: StateCounts {
                closed: 1,
                open: 2,
                half_open: 1,
            },
            calls: BreakerCalls {
                succeeded: 10,
                failed: 7,
                rejected: 3,
            },
            consecutive_failures: 0,
            window_calls: 0,
            window_failures: 0,
        };
        let mut out = String::new();
        render_breakers(&mut out, &[("node", "node-1")], &[snapshot]);
        let expected = [
            "# TYPE faultline_circuit_breaker_state gauge",
            r#"faultline_circuit_breaker_state{node="node-1",name="payments",state="closed"} 0"#,
            r#"faultline_circuit_breaker_state{node="node-1",name="payments",state="open"} 1"#,
            r#"faultline_circuit_breaker_state{node="node-1",name="payments",state="half_open"} 0"#,
            "# TYPE faultline_circuit_breaker_transitions_total counter",
            r#"faultline_circuit_breaker_transitions_total{node="node-1",name="payments",state="open"} 2"#,
            r#"faultline_circuit_breaker_calls_total{node="node-1",name="payments",outcome="failure"} 7"#,
            r#"faultline_circuit_breaker_calls_total{node="node-1",name="payments",outcome="rejected"} 3"#,
        ];
        for line in expected {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
        assert_eq!(out.lines().filter(|l| !l.starts_with('#')).count(), 9);
    }
}
