//! Retry policy: per-attempt timeout, exponential backoff with full jitter, max attempts
//! and a retry budget — each switchable while running through the shared
//! [`RetryPolicy`] handle, so the demo can provoke a retry storm (backoff, jitter and
//! budget off) and end it again.
//!
//! ```text
//!  RetrySettings (JSON) ─► RetryPolicy (shared handle: settings, TpsBudget, jitter, counters)
//!                             ├─► layer(classifier) = tower::retry::RetryLayer<RetryOn<C>>
//!                             │        └─ decide() (pure) per attempt; resend count on the request
//!                             ├─► timeout_layer() = AttemptTimeoutLayer (inside the breaker)
//!                             └─► snapshot() ─► render_retries ─► /metrics
//! ```
//!
//! The request type implements [`Resendable`]: `http::Request<B>` with a cloneable body
//! does, carrying the attempt number as the [`ResendCount`] extension and the
//! [`RESEND_COUNT_HEADER`] header, for the callee's `http.request.resend_count`.
//!
//! Refusals by a breaker or bulkhead ([`crate::resilience::BreakerOpen`],
//! [`crate::resilience::BulkheadFull`]) are never retried.

mod decide;
mod metrics;
mod policy;
mod request;
mod settings;
#[cfg(test)]
mod tests;
mod timeout;

pub use decide::{AttemptOutcome, Decision, backoff_ceiling_ms, backoff_delay, decide};
pub use metrics::{RetrySnapshot, render_retries};
pub use policy::{Backoff, RetryOn, RetryPolicy};
pub use request::{RESEND_COUNT_HEADER, ResendCount, Resendable};
pub use settings::{BackoffSettings, BudgetSettings, RetrySettings, TimeoutSettings};
pub use timeout::{AttemptTimeout, AttemptTimeoutLayer};
