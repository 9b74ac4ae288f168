//! The three policies of one dependency, together: their handles, their settings as one
//! JSON document, their metrics, and the layer that stacks them in the order that makes
//! each count what it should.
//!
//! ```text
//!  ResilienceLayer::layer(inner) =
//!    Bulkhead ─► Retry ─► Breaker ─► AttemptTimeout ─► inner
//!    │           │        │          └ innermost: a timed-out attempt is a failure the breaker sees
//!    │           │        └ inside retry: every attempt is judged, and an open breaker ends the retries
//!    │           └ inside the bulkhead: a call holds one slot through all its attempts
//!    └ outermost: bounds the calls in progress, so a retry storm cannot take every task
//! ```

use serde::{Deserialize, Serialize};
use tower::Layer;

use super::breaker::{BreakerService, render_breakers};
use super::bulkhead::{BulkheadService, render_bulkheads};
use super::retry::{AttemptTimeout, RetryOn, render_retries};
use super::{
    Breaker, BreakerSettings, BreakerSnapshot, Bulkhead, BulkheadSettings, BulkheadSnapshot,
    RetryPolicy, RetrySettings, SettingsError,
};
use crate::resilience::retry::RetrySnapshot;

/// The settings of one dependency's policies, e.g. for `PUT /admin/resilience`:
///
/// ```json
/// {"breaker": {"open_ms": 5000}, "retry": {"max_attempts": 3}, "bulkhead": {"max_concurrent": 16}}
/// ```
///
/// Absent parts and fields take their defaults; unknown ones are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResilienceSettings {
    pub breaker: BreakerSettings,
    pub retry: RetrySettings,
    pub bulkhead: BulkheadSettings,
}

impl ResilienceSettings {
    /// Parses and validates settings from JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, SettingsError> {
        let settings: ResilienceSettings = serde_json::from_slice(json)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.breaker.validate()?;
        self.retry.validate()?;
        self.bulkhead.validate()
    }
}

/// The handles of one dependency's breaker, retry policy and bulkhead (all named after
/// the dependency). Cloning shares them.
#[derive(Debug, Clone)]
pub struct Resilience {
    pub breaker: Breaker,
    pub retry: RetryPolicy,
    pub bulkhead: Bulkhead,
}

/// Every counter of one dependency's policies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResilienceSnapshot {
    pub breaker: BreakerSnapshot,
    pub retry: RetrySnapshot,
    pub bulkhead: BulkheadSnapshot,
}

impl Resilience {
    /// The policies for calls to `dependency` (e.g. `payments`).
    pub fn new(
        dependency: &str,
        settings: ResilienceSettings,
    ) -> Result<Resilience, SettingsError> {
        Ok(Resilience {
            breaker: Breaker::new(dependency, settings.breaker)?,
            retry: RetryPolicy::new(dependency, settings.retry)?,
            bulkhead: Bulkhead::new(dependency, settings.bulkhead)?,
        })
    }

    pub fn settings(&self) -> ResilienceSettings {
        ResilienceSettings {
            breaker: self.breaker.settings(),
            retry: self.retry.settings(),
            bulkhead: self.bulkhead.settings(),
        }
    }

    /// Validates all three parts first, so bad settings change nothing, then applies them.
    pub fn update(&self, settings: ResilienceSettings) -> Result<(), SettingsError> {
        settings.validate()?;
        self.breaker.update(settings.breaker)?;
        self.retry.update(settings.retry)?;
        self.bulkhead.update(settings.bulkhead)
    }

    pub fn snapshot(&self) -> ResilienceSnapshot {
        ResilienceSnapshot {
            breaker: self.breaker.snapshot(),
            retry: self.retry.snapshot(),
            bulkhead: self.bulkhead.snapshot(),
        }
    }

    /// The whole stack as one layer; `classifier` decides failures for both the breaker
    /// and the retry policy.
    pub fn layer<C: Clone>(&self, classifier: C) -> ResilienceLayer<C> {
        ResilienceLayer {
            resilience: self.clone(),
            classifier,
        }
    }
}

/// Writes the metrics of every dependency's policies (each family once); `labels` go
/// first on every sample.
pub fn render_resilience(
    out: &mut String,
    labels: &[(&str, &str)],
    snapshots: &[ResilienceSnapshot],
) {
    let breakers: Vec<_> = snapshots.iter().map(|s| s.breaker.clone()).collect();
    let retries: Vec<_> = snapshots.iter().map(|s| s.retry.clone()).collect();
    let bulkheads: Vec<_> = snapshots.iter().map(|s| s.bulkhead.clone()).collect();
    render_breakers(out, labels, &breakers);
    render_retries(out, labels, &retries);
    render_bulkheads(out, labels, &bulkheads);
}

/// Bulkhead ─► Retry ─► Breaker ─► AttemptTimeout ─► the service it wraps.
#[derive(Debug, Clone)]
pub struct ResilienceLayer<C> {
    resilience: Resilience,
    classifier: C,
}

/// The service [`ResilienceLayer`] builds.
pub type ResilienceService<S, C> =
    BulkheadService<tower::retry::Retry<RetryOn<C>, BreakerService<AttemptTimeout<S>, C>>>;

impl<S, C: Clone> Layer<S> for ResilienceLayer<C> {
    type Service = ResilienceService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        let r = &self.resilience;
        let attempt = r.retry.timeout_layer().layer(inner);
        let guarded = r.breaker.layer(self.classifier.clone()).layer(attempt);
        let retried = r.retry.layer(self.classifier.clone()).layer(guarded);
        r.bulkhead.layer().layer(retried)
    }
}

#[cfg(test)]
mod tests;
