//! The bulkhead: a counting semaphore whose limit can change while calls are in flight
//! (tower's `ConcurrencyLimit` fixes its limit at construction), and the tower layer
//! that takes a slot for every call.
//!
//! ```text
//!  call ─► try_enter ─ slot ─────────────────────────────► inner.call ─► release on drop
//!              └ full ─► max_wait 0 ─► Err(BulkheadFull)
//!                        max_wait > 0 ─► wait for a release or a higher limit, until the deadline
//!  update(limit) ─► lower: calls in flight finish, new ones wait/refuse until in_use < limit
//!                   higher: waiting calls are woken
//! ```

use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tower::{Layer, Service, ServiceExt as _};

use super::metrics::BulkheadSnapshot;
use super::settings::BulkheadSettings;
use crate::resilience::{BoxError, BoxFuture, BulkheadFull, SettingsError};

/// A named bulkhead, shared by the services built from it and by whoever reads its
/// counters or changes its limit. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    state: Mutex<State>,
    /// Woken when a slot is released or the limit rises.
    freed: Notify,
}

#[derive(Debug)]
struct State {
    settings: BulkheadSettings,
    in_use: u32,
    admitted: u64,
    rejected: u64,
}

/// One slot of a bulkhead, released when dropped.
#[derive(Debug)]
pub struct BulkheadPermit {
    bulkhead: Bulkhead,
}

impl Drop for BulkheadPermit {
    fn drop(&mut self) {
        let mut state = self.bulkhead.lock();
        state.in_use = state.in_use.saturating_sub(1);
        drop(state);
        self.bulkhead.shared.freed.notify_waiters();
    }
}

impl Bulkhead {
    pub fn new(
        name: impl Into<String>,
        settings: BulkheadSettings,
    ) -> Result<Bulkhead, SettingsError> {
        settings.validate()?;
        Ok(Bulkhead {
            shared: Arc::new(Shared {
                name: name.into(),
                state: Mutex::new(State {
                    settings,
                    in_use: 0,
                    admitted: 0,
                    rejected: 0,
                }),
                freed: Notify::new(),
            }),
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn settings(&self) -> BulkheadSettings {
        self.lock().settings
    }

    /// Validates and applies new settings. Calls in flight keep their slots; a lower
    /// limit applies to the calls that come next.
    pub fn update(&self, settings: BulkheadSettings) -> Result<(), SettingsError> {
        settings.validate()?;
        self.lock().settings = settings;
        self.shared.freed.notify_waiters();
        Ok(())
    }

    /// The layer that puts this bulkhead in front of a service.
    pub fn layer(&self) -> BulkheadLayer {
        BulkheadLayer {
            bulkhead: self.clone(),
        }
    }

    pub fn snapshot(&self) -> BulkheadSnapshot {
        let state = self.lock();
        BulkheadSnapshot {
            name: self.shared.name.clone(),
            limit: state.settings.max_concurrent,
            in_use: state.in_use,
            admitted: state.admitted,
            rejected: state.rejected,
        }
    }

    /// A slot now, if one is free.
    pub fn try_acquire(&self) -> Option<BulkheadPermit> {
        let mut state = self.lock();
        if state.in_use >= state.settings.max_concurrent {
            return None;
        }
        state.in_use += 1;
        state.admitted += 1;
        Some(BulkheadPermit {
            bulkhead: self.clone(),
        })
    }

    /// A slot, waiting up to `max_wait_ms` for one; refused (and counted) after that.
    pub async fn acquire(&self) -> Result<BulkheadPermit, BulkheadFull> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        let wait = self.settings().max_wait();
        let started = tokio::time::Instant::now();
        let deadline = started + wait;
        loop {
            // Registered before looking again, so a release between the look and the
            // wait still wakes this call.
            let mut freed = pin!(self.shared.freed.notified());
            freed.as_mut().enable();
            if let Some(permit) = self.try_acquire() {
                return Ok(permit);
            }
            if wait.is_zero() || tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(self.refuse(started.elapsed()));
            }
        }
    }

    fn refuse(&self, waited: Duration) -> BulkheadFull {
        let mut state = self.lock();
        state.rejected += 1;
        BulkheadFull {
            name: self.shared.name.clone(),
            limit: state.settings.max_concurrent,
            waited,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned lock guards consistent state.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Puts a [`Bulkhead`] in front of a service.
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> BulkheadService<S> {
        BulkheadService {
            inner,
            bulkhead: self.bulkhead.clone(),
        }
    }
}

/// A service whose concurrent calls are bounded; refused calls fail with [`BulkheadFull`].
#[derive(Debug, Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        if let Some(permit) = self.bulkhead.try_acquire() {
            let call = self.inner.call(request);
            return Box::pin(async move {
                let result = call.await.map_err(Into::into);
                drop(permit);
                result
            });
        }
        if self.bulkhead.settings().max_wait_ms == 0 {
            let full = self.bulkhead.refuse(Duration::ZERO);
            return Box::pin(std::future::ready(Err(full.into())));
        }
        // Waiting: the service made ready for this call goes with it (tower's rule: the
        // instance polled ready is the one called); this handle keeps a fresh clone.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let bulkhead = self.bulkhead.clone();
        Box::pin(async move {
            let permit = bulkhead.acquire().await?;
            let result = inner
                .ready()
                .await
                .map_err(Into::into)?
                .call(request)
                .await
                .map_err(Into::into);
            drop(permit);
            result
        })
    }
}

#[cfg(test)]
mod tests;
