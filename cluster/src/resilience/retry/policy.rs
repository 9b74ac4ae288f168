//! The retry policy's shell: a shared handle (settings read on every attempt, the retry
//! budget, the jitter source, the counters) and the `tower::retry::Policy` that applies
//! [`decide`] to each attempt.
//!
//! ```text
//!  tower::retry::Retry ─ clone_request(req) ─► RetryOn: count the attempt; first attempt → budget.deposit()
//!                      ─ retry(req, result) ─► classify ─► decide(settings, resends, budget, jitter)
//!                                                 │ Retry { delay } ─► req.set_resend_count(n + 1), sleep(delay)
//!                                                 └ otherwise ──────► the result goes back to the caller
//! ```
//!
//! tower calls `clone_request` once before every attempt it sends (the copy is what the
//! next retry sends), which is where attempts and calls are counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tower::retry::budget::{Budget as _, TpsBudget};
use tower::retry::{Policy, RetryLayer};

use super::decide::{AttemptOutcome, Decision, decide};
use super::metrics::RetrySnapshot;
use super::request::Resendable;
use super::settings::{BudgetSettings, RetrySettings};
use super::timeout::AttemptTimeoutLayer;
use crate::resilience::{BoxError, BreakerOpen, BulkheadFull, Classify, SettingsError};

/// A named retry policy, shared by the services built from it and by whoever reads its
/// counters or changes its settings. Cloning shares it.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    settings: RwLock<RetrySettings>,
    budget: RwLock<Arc<TpsBudget>>,
    jitter: Mutex<StdRng>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    budget_exhausted: AtomicU64,
    attempts_exhausted: AtomicU64,
    timeouts: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn budget(settings: &BudgetSettings) -> TpsBudget {
    // Validated settings are within every bound `TpsBudget::new` asserts.
    TpsBudget::new(
        std::time::Duration::from_secs(settings.window_secs),
        settings.min_per_sec,
        settings.ratio,
    )
}

impl RetryPolicy {
    /// A policy named `name` (the dependency, e.g. `payments`), with jitter drawn from a
    /// generator seeded by the OS.
    pub fn new(
        name: impl Into<String>,
        settings: RetrySettings,
    ) -> Result<RetryPolicy, SettingsError> {
        RetryPolicy::with_jitter(name, settings, StdRng::from_rng(&mut rand::rng()))
    }

    /// Like [`RetryPolicy::new`], with jitter drawn from a generator seeded by `seed`
    /// (reproducible runs and tests).
    pub fn seeded(
        name: impl Into<String>,
        settings: RetrySettings,
        seed: u64,
    ) -> Result<RetryPolicy, SettingsError> {
        RetryPolicy::with_jitter(name, settings, StdRng::seed_from_u64(seed))
    }

    fn with_jitter(
        name: impl Into<String>,
        settings: RetrySettings,
        jitter: StdRng,
    ) -> Result<RetryPolicy, SettingsError> {
        settings.validate()?;
        Ok(RetryPolicy {
            shared: Arc::new(Shared {
                name: name.into(),
                budget: RwLock::new(Arc::new(budget(&settings.budget))),
                settings: RwLock::new(settings),
                jitter: Mutex::new(jitter),
                counters: Counters::default(),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The settings in force (a copy; cheap).
    pub fn settings(&self) -> RetrySettings {
        *self
            .shared
            .settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Validates and applies new settings; the next attempt sees them. A budget whose
    /// ratio, minimum or window changed starts empty.
    pub fn update(&self, settings: RetrySettings) -> Result<(), SettingsError> {
        settings.validate()?;
        let mut current = self
            .shared
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !current.budget.same_budget(&settings.budget) {
            *self
                .shared
                .budget
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Arc::new(budget(&settings.budget));
        }
        *current = settings;
        Ok(())
    }

    /// The layer that retries calls through this policy; `classifier` says which
    /// outcomes are failures worth retrying. Put [`RetryPolicy::timeout_layer`] (and a
    /// breaker) inside it.
    pub fn layer<C>(&self, classifier: C) -> RetryLayer<RetryOn<C>> {
        RetryLayer::new(RetryOn {
            policy: self.clone(),
            classifier: Arc::new(classifier),
        })
    }

    /// The per-attempt timeout, as a layer to put inside [`RetryPolicy::layer`].
    pub fn timeout_layer(&self) -> AttemptTimeoutLayer {
        AttemptTimeoutLayer::new(self.clone())
    }

    /// The counters and the settings in force.
    pub fn snapshot(&self) -> RetrySnapshot {
        let c = &self.shared.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RetrySnapshot {
            name: self.shared.name.clone(),
            settings: self.settings(),
            requests: read(&c.requests),
            attempts: read(&c.attempts),
            retries: read(&c.retries),
            budget_exhausted: read(&c.budget_exhausted),
            attempts_exhausted: read(&c.attempts_exhausted),
            timeouts: read(&c.timeouts),
        }
    }

    pub(crate) fn count_timeout(&self) {
        bump(&self.shared.counters.timeouts);
    }

    fn budget(&self) -> Arc<TpsBudget> {
        self.shared
            .budget
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The `tower::retry::Policy` of a [`RetryPolicy`] with its classifier.
#[derive(Debug)]
pub struct RetryOn<C> {
    policy: RetryPolicy,
    classifier: Arc<C>,
}

impl<C> Clone for RetryOn<C> {
    fn clone(&self) -> Self {
        RetryOn {
            policy: self.policy.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// The policies' own rejections: the guard said no, the dependency was not asked.
fn refused(error: &BoxError) -> bool {
    error.is::<BreakerOpen>() || error.is::<BulkheadFull>()
}

impl<Req, Res, C> Policy<Req, Res, BoxError> for RetryOn<C>
where
    Req: Resendable,
    C: Classify<Res>,
{
    type Future = Backoff;

    fn retry(&mut self, request: &mut Req, result: &mut Result<Res, BoxError>) -> Option<Backoff> {
        let outcome = match result {
            Err(error) if refused(error) => AttemptOutcome::Refused,
            result if self.classifier.is_failure(result.as_ref()) => AttemptOutcome::Failure,
            _ => AttemptOutcome::Success,
        };
        let resends = request.resend_count();
        let settings = self.policy.settings();
        let budget = self.policy.budget();
        let decision = {
            let mut jitter = self
                .policy
                .shared
                .jitter
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            decide(&settings, resends, outcome, &*budget, &mut *jitter)
        };
        let counters = &self.policy.shared.counters;
        match decision {
            Decision::Retry { delay } => {
                bump(&counters.retries);
                request.set_resend_count(resends.saturating_add(1));
                Some(Backoff::after(delay))
            }
            Decision::AttemptsExhausted => {
                bump(&counters.attempts_exhausted);
                None
            }
            Decision::BudgetExhausted => {
                bump(&counters.budget_exhausted);
                None
            }
            Decision::Done | Decision::Refused => None,
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        let counters = &self.policy.shared.counters;
        bump(&counters.attempts);
        if request.resend_count() == 0 {
            // The budget earns by calls, retried or not (Finagle's and tower's model).
            bump(&counters.requests);
            self.policy.budget().deposit();
        }
        request.try_clone()
    }
}

/// The wait before a retry (none for a zero delay).
#[derive(Debug)]
pub struct Backoff {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Backoff {
    fn after(delay: std::time::Duration) -> Backoff {
        Backoff {
            sleep: (!delay.is_zero()).then(|| Box::pin(tokio::time::sleep(delay))),
        }
    }
}

impl Future for Backoff {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.sleep.as_mut() {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}
