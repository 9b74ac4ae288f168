//! Circuit breaker: stops calling a dependency that keeps failing, so callers fail fast
//! instead of queueing behind it, and probes it again after a cool-down.
//!
//! ```text
//!  BreakerSettings (JSON) ─► Breaker (shared handle) ─► layer(classifier) ─► BreakerService<S, C>
//!                                │ Mutex<CircuitBreaker>   (pure state machine, explicit instants)
//!                                ├─► snapshot() ─► render_breakers ─► /metrics
//!                                └─► transitions ─► span event circuit_breaker.state_change
//! ```
//!
//! Trip rules (either or both): `consecutive_failures.threshold` failures in a row, or a
//! failure rate ≥ `failure_rate.threshold` over a sliding window of `window_ms` holding at
//! least `minimum_calls` calls. Open for `open_ms`; then half-open, admitting
//! `half_open_trials` trial calls: all succeed → closed, one fails → open again.
//!
//! Telemetry (PRODUCT.md §4): every call sets `circuit_breaker.name` and
//! `circuit_breaker.state` (the state it was admitted or refused in) on the current span;
//! every transition adds the event `circuit_breaker.state_change` with
//! `circuit_breaker.name`, `circuit_breaker.state` (new), `circuit_breaker.previous_state`
//! and `circuit_breaker.reason` (`consecutive_failures`, `failure_rate`,
//! `cool_down_elapsed`, `trial_failed`, `trials_succeeded`) to the span of the call that
//! caused it.
//!
//! The open → half-open move happens when the first call after the cool-down arrives, so
//! a breaker nobody calls stays `open` in its snapshot.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use faultline_cluster::resilience::breaker::{Admission, BreakerSettings, BreakerState, CircuitBreaker, Outcome};
//!
//! let mut settings = BreakerSettings::default();
//! settings.consecutive_failures.threshold = 2;
//! let t0 = Instant::now();
//! let mut breaker = CircuitBreaker::new(settings, t0);
//! for _ in 0..2 {
//!     let (Admission::Admitted(permit), _) = breaker.admit(t0) else { unreachable!() };
//!     breaker.record(permit, Outcome::Failure, t0);
//! }
//! assert_eq!(breaker.state(), BreakerState::Open);
//! assert!(matches!(breaker.admit(t0).0, Admission::Rejected { .. }));
//! let (admission, transition) = breaker.admit(t0 + Duration::from_secs(5));
//! assert!(matches!(admission, Admission::Admitted(_)));
//! assert_eq!(transition.unwrap().to, BreakerState::HalfOpen);
//! ```

mod machine;
mod metrics;
mod service;
mod settings;
mod window;

pub use machine::{
    Admission, BreakerState, CircuitBreaker, Outcome, Permit, Transition, TransitionReason,
};
pub use metrics::{BreakerCalls, BreakerSnapshot, StateCounts, render_breakers};
pub use service::{Breaker, BreakerLayer, BreakerService};
pub use settings::{BreakerSettings, ConsecutiveFailures, FailureRate};
