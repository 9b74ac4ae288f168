//! Resilience policies for calls to a dependency: the worker reaches `payments`
//! through them (PRODUCT.md §3). Each policy is a pure core (a state machine or a
//! decision function driven by explicit instants, testable without sockets or
//! sleeping) inside a thin tower shell.
//!
//! ```text
//!  caller ─► Bulkhead ─► Retry ─────────────► Breaker ─────────► AttemptTimeout ─► dependency
//!            │ limit,     │ RetryOn: classify,  │ CircuitBreaker   │ per attempt
//!            │ bounded    │ max attempts,       │ (pure) + span    │ (switchable)
//!            │ wait       │ TpsBudget, backoff  │ events + counts  │
//!            ▼            ▼ + full jitter       ▼                  ▼
//!        BulkheadFull   resend count ──► request (extension + x-faultline-resend-count)
//!                                       BreakerOpen          AttemptTimedOut
//!
//!  admin API ── PUT JSON ──► *Settings::from_json ─► handle.update(…)   (read per call)
//!  /metrics ◄── render_* ◄── handle.snapshot()
//! ```
//!
//! - [`breaker`]: circuit breaker (closed / open / half-open; consecutive failures or a
//!   failure rate over a sliding window); state changes become `circuit_breaker.state_change`
//!   span events.
//! - [`retry`]: per-attempt timeout, exponential backoff with full jitter, max attempts and
//!   a retry budget — each part switchable while running, so a retry storm can be provoked.
//! - [`bulkhead`]: bounds concurrent calls, rejects (after an optional bounded wait) when
//!   full; the limit changes at runtime.
//! - [`Resilience`]: the three handles and the layer that stacks them in the order above.
//!
//! Every handle is cheap to clone and shared: the services built from it and an admin
//! endpoint see the same settings and counters. Errors travel as [`BoxError`] (tower's
//! convention); the policies' own errors ([`BreakerOpen`], [`BulkheadFull`],
//! [`AttemptTimedOut`]) can be found with `downcast_ref`.
//!
//! What counts as a failure is one [`Classify`] shared by the breaker and the retry
//! policy: [`HttpFailures`] (errors and 5xx; 4xx are the caller's fault, not the
//! dependency's) or [`ErrorsOnly`], or a closure.
//!
//! ```
//! use faultline_cluster::resilience::{
//!     BoxError, HttpFailures, ResendCount, Resilience, ResilienceSettings, render_resilience,
//! };
//! use tower::{Layer as _, ServiceExt as _};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let payments = Resilience::new("payments", ResilienceSettings::default())?;
//! // The worker's HTTP client: each attempt arrives with its resend count.
//! let client = tower::service_fn(|request: http::Request<String>| async move {
//!     let resend = request.extensions().get::<ResendCount>().map_or(0, |c| c.0);
//!     Ok::<_, BoxError>(http::Response::new(format!("attempt {resend}")))
//! });
//! let service = payments.layer(HttpFailures).layer(client);
//! let response = service.oneshot(http::Request::new("order=1".to_owned())).await?;
//! assert_eq!(response.body(), "attempt 0");
//!
//! let mut metrics = String::new();
//! render_resilience(&mut metrics, &[("node", "node-1")], &[payments.snapshot()]);
//! assert!(metrics.contains(r#"faultline_retry_attempts_total{node="node-1",name="payments"} 1"#));
//! # Ok::<(), BoxError>(())
//! # })?;
//! # Ok::<(), BoxError>(())
//! ```

pub mod breaker;
pub mod bulkhead;
mod classify;
mod error;
mod exposition;
pub mod retry;
mod stack;
#[cfg(test)]
mod testing;

pub use breaker::{Breaker, BreakerSettings, BreakerSnapshot, BreakerState};
pub use bulkhead::{Bulkhead, BulkheadSettings, BulkheadSnapshot};
pub use classify::{Classify, ErrorsOnly, HttpFailures};
pub use error::{AttemptTimedOut, BreakerOpen, BulkheadFull, SettingsError};
pub use retry::{RESEND_COUNT_HEADER, ResendCount, Resendable, RetryPolicy, RetrySettings};
pub use stack::{
    Resilience, ResilienceLayer, ResilienceService, ResilienceSettings, ResilienceSnapshot,
    render_resilience,
};

/// The error type of the resilience services (tower's convention).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future type of the resilience services.
pub type BoxFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, BoxError>> + Send>>;

/// "Now" for the shells: tokio's clock, so that tests with paused time drive the cores.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
