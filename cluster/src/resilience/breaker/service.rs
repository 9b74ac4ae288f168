//! The breaker's shell: a shared handle around the state machine, and the tower layer
//! that asks it before every call and tells it every outcome.
//!
//! ```text
//!  call ─► Breaker::admit(now) ──rejected──► Err(BreakerOpen)        (inner never called)
//!              │ admitted: Permit (guarded: a dropped call hands it back as Cancelled)
//!              ▼
//!          inner.call ─► Classify ─► Breaker::finish(outcome, now)
//!
//!  every transition ─► span event `circuit_breaker.state_change` on the caller's span
//!                   ─► counters (snapshot → /metrics)
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanId, TraceContextExt as _};
use tower::{Layer, Service};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::BreakerState;
use super::machine::{Admission, CircuitBreaker, Outcome, Permit, Transition};
use super::metrics::{BreakerCalls, BreakerSnapshot, StateCounts};
use super::settings::BreakerSettings;
use crate::resilience::{BoxError, BoxFuture, BreakerOpen, Classify, SettingsError, now};

/// A named circuit breaker, shared by the services built from it and by whoever reads
/// its state or changes its settings. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Breaker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    machine: CircuitBreaker,
    transitions: [u64; 3],
    calls: BreakerCalls,
    annotated: Annotated,
}

/// The spans most recently given the breaker's attributes. OpenTelemetry spans append
/// attributes (a second `set_attribute` adds a duplicate key, and readers take the
/// first), so each span is annotated once: at its first call through the breaker.
#[derive(Debug)]
struct Annotated {
    spans: [SpanId; 64],
    next: usize,
}

impl Annotated {
    fn new() -> Annotated {
        Annotated {
            spans: [SpanId::INVALID; 64],
            next: 0,
        }
    }

    /// Whether `span` is not annotated yet (and now counts as annotated). A span that
    /// OpenTelemetry does not record has no id: annotating it is a no-op anyway.
    fn first_time(&mut self, span: SpanId) -> bool {
        if span == SpanId::INVALID {
            return true;
        }
        if self.spans.contains(&span) {
            return false;
        }
        self.spans[self.next] = span;
        self.next = (self.next + 1) % self.spans.len();
        true
    }
}

impl Breaker {
    /// A closed breaker named `name` (`circuit_breaker.name`), e.g. `payments`.
    pub fn new(
        name: impl Into<String>,
        settings: BreakerSettings,
    ) -> Result<Breaker, SettingsError> {
        settings.validate()?;
        Ok(Breaker {
            shared: Arc::new(Shared {
                name: name.into(),
                inner: Mutex::new(Inner {
                    machine: CircuitBreaker::new(settings, now()),
                    transitions: [0; 3],
                    calls: BreakerCalls::default(),
                    annotated: Annotated::new(),
                }),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The state now: an open breaker whose cool-down is over reads (and becomes)
    /// half-open.
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        let transition = inner.machine.poll(now());
        inner.count(transition.as_ref());
        inner.machine.state()
    }

    pub fn settings(&self) -> BreakerSettings {
        self.lock().machine.settings().clone()
    }

    /// Validates and applies new settings; the breaker keeps its state.
    pub fn update(&self, settings: BreakerSettings) -> Result<(), SettingsError> {
        settings.validate()?;
        self.lock().machine.set_settings(settings, now());
        Ok(())
    }

    /// The layer that puts this breaker in front of a service; `classifier` says which
    /// outcomes are failures.
    pub fn layer<C>(&self, classifier: C) -> BreakerLayer<C> {
        BreakerLayer {
            breaker: self.clone(),
            classifier: Arc::new(classifier),
        }
    }

    /// The counters and the current state.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let mut inner = self.lock();
        let transition = inner.machine.poll(now());
        inner.count(transition.as_ref());
        let (window_calls, window_failures) = inner.machine.window_totals(now());
        BreakerSnapshot {
            name: self.shared.name.clone(),
            state: inner.machine.state(),
            transitions: StateCounts {
                closed: inner.transitions[BreakerState::Closed.index()],
                open: inner.transitions[BreakerState::Open.index()],
                half_open: inner.transitions[BreakerState::HalfOpen.index()],
            },
            calls: inner.calls,
            consecutive_failures: inner.machine.consecutive_failures(),
            window_calls,
            window_failures,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state machine never panics while the lock is held, so a poisoned lock
        // still guards consistent state.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks to make a call; records any transition on `span`, and the breaker's name and
    /// the state the call met (admitted in, or refused by) if it is `span`'s first call.
    fn admit(&self, span: &Span) -> Result<Permit, BreakerOpen> {
        let span_id = span.context().span().span_context().span_id();
        let (admission, transition, annotate) = {
            let mut inner = self.lock();
            let (admission, transition) = inner.machine.admit(now());
            inner.count(transition.as_ref());
            if matches!(admission, Admission::Rejected { .. }) {
                inner.calls.rejected += 1;
            }
            let annotate = inner.annotated.first_time(span_id);
            (admission, transition, annotate)
        };
        if let Some(transition) = &transition {
            self.report(span, transition);
        }
        let met = match &admission {
            Admission::Admitted(permit) => permit.state(),
            Admission::Rejected { state, .. } => *state,
        };
        if annotate {
            span.set_attribute("circuit_breaker.name", self.shared.name.clone());
            span.set_attribute("circuit_breaker.state", met.as_str());
        }
        match admission {
            Admission::Admitted(permit) => Ok(permit),
            Admission::Rejected { state, retry_in } => Err(BreakerOpen {
                name: self.shared.name.clone(),
                state,
                retry_in,
            }),
        }
    }

    /// Hands back a call's permit with its outcome.
    fn finish(&self, permit: Permit, outcome: Outcome, span: &Span) {
        let transition = {
            let mut inner = self.lock();
            match outcome {
                Outcome::Success => inner.calls.succeeded += 1,
                Outcome::Failure => inner.calls.failed += 1,
                Outcome::Cancelled => {}
            }
            let transition = inner.machine.record(permit, outcome, now());
            inner.count(transition.as_ref());
            transition
        };
        if let Some(transition) = &transition {
            self.report(span, transition);
        }
    }

    /// A state change as an OpenTelemetry span event (PRODUCT.md §4: `circuit_breaker.*`,
    /// state transitions as span events) and a debug log line. Not an `info!` event: the
    /// OpenTelemetry layer would add that to the span as a second event.
    fn report(&self, span: &Span, transition: &Transition) {
        let name = self.shared.name.as_str();
        span.add_event(
            "circuit_breaker.state_change",
            vec![
                KeyValue::new("circuit_breaker.name", name.to_owned()),
                KeyValue::new("circuit_breaker.state", transition.to.as_str()),
                KeyValue::new("circuit_breaker.previous_state", transition.from.as_str()),
                KeyValue::new("circuit_breaker.reason", transition.reason.as_str()),
            ],
        );
        tracing::debug!(
            breaker = name,
            from = transition.from.as_str(),
            to = transition.to.as_str(),
            reason = transition.reason.as_str(),
            "circuit breaker state change"
        );
    }
}

impl Inner {
    fn count(&mut self, transition: Option<&Transition>) {
        if let Some(t) = transition {
            self.transitions[t.to.index()] += 1;
        }
    }
}

/// Hands the permit back as cancelled if the call's future is dropped before it ends.
#[derive(Debug)]
struct PermitGuard {
    breaker: Breaker,
    permit: Option<Permit>,
    span: Span,
}

impl PermitGuard {
    fn finish(mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            self.breaker.finish(permit, outcome, &self.span);
        }
    }
}

impl Drop for PermitGuard {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker.finish(permit, Outcome::Cancelled, &self.span);
        }
    }
}

/// Puts a [`Breaker`] in front of a service.
#[derive(Debug)]
pub struct BreakerLayer<C> {
    breaker: Breaker,
    classifier: Arc<C>,
}

impl<C> Clone for BreakerLayer<C> {
    fn clone(&self) -> Self {
        BreakerLayer {
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, C> Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// A service behind a circuit breaker: refused calls fail fast with [`BreakerOpen`].
#[derive(Debug)]
pub struct BreakerService<S, C> {
    inner: S,
    breaker: Breaker,
    classifier: Arc<C>,
}

impl<S: Clone, C> Clone for BreakerService<S, C> {
    fn clone(&self) -> Self {
        BreakerService {
            inner: self.inner.clone(),
            breaker: self.breaker.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, C, Req> Service<Req> for BreakerService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
    C: Classify<S::Response>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let span = Span::current();
        let permit = match self.breaker.admit(&span) {
            Ok(permit) => permit,
            Err(open) => return Box::pin(std::future::ready(Err(open.into()))),
        };
        let guard = PermitGuard {
            breaker: self.breaker.clone(),
            permit: Some(permit),
            span,
        };
        let call = self.inner.call(request);
        let classifier = self.classifier.clone();
        Box::pin(async move {
            let result = call.await.map_err(Into::into);
            let outcome = if classifier.is_failure(result.as_ref()) {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            guard.finish(outcome);
            result
        })
    }
}

#[cfg(test)]
mod tests;
