//! The per-attempt timeout: part of the retry policy (its settings switch it on and
//! off while running), but a layer of its own so it can sit *inside* the circuit
//! breaker — a timed-out attempt is then a failure the breaker counts.
//!
//! ```text
//!  Retry ─► Breaker ─► AttemptTimeout ─► dependency
//!                        │ settings().timeout read per attempt
//!                        └─ elapsed ─► Err(AttemptTimedOut), counted in the policy's snapshot
//! ```

use std::task::{Context, Poll};

use tower::{Layer, Service};

use super::policy::RetryPolicy;
use crate::resilience::{AttemptTimedOut, BoxError, BoxFuture};

/// Puts the retry policy's per-attempt timeout in front of a service.
#[derive(Debug, Clone)]
pub struct AttemptTimeoutLayer {
    policy: RetryPolicy,
}

impl AttemptTimeoutLayer {
    pub(crate) fn new(policy: RetryPolicy) -> AttemptTimeoutLayer {
        AttemptTimeoutLayer { policy }
    }
}

impl<S> Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;

    fn layer(&self, inner: S) -> AttemptTimeout<S> {
        AttemptTimeout {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// A service whose calls fail with [`AttemptTimedOut`] when they take longer than the
/// policy's `timeout.after_ms` (while `timeout.enabled`).
#[derive(Debug, Clone)]
pub struct AttemptTimeout<S> {
    inner: S,
    policy: RetryPolicy,
}

impl<S, Req> Service<Req> for AttemptTimeout<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let timeout = self.policy.settings().timeout;
        let call = self.inner.call(request);
        if !timeout.enabled {
            return Box::pin(async move { call.await.map_err(Into::into) });
        }
        let policy = self.policy.clone();
        let after = timeout.after();
        Box::pin(async move {
            match tokio::time::timeout(after, call).await {
                Ok(result) => result.map_err(Into::into),
                Err(_elapsed) => {
                    policy.count_timeout();
                    Err(AttemptTimedOut { after }.into())
                }
            }
        })
    }
}
