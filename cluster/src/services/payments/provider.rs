//! [`Payments`]: the simulated provider's shared state and its one async operation,
//! [`Payments::charge`]. The HTTP routes (`api.rs`) only translate to and from it.
//!
//! ```text
//!  charge ─► slots.enter ──(Overloaded)──────────────────────────────► 503, counted
//!              │ queue_wait
//!              ▼
//!            decide(settings, rng) ─► sleep(service_time) ─► leave slot ─┬─ fails ─► 500, counted
//!                                                                        └─ ledger.settle ─► ok | duplicate, counted
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;
use tokio::time::Instant;

use super::latency::LatencyHistogram;
use super::ledger::{DEFAULT_LEDGER_LIMIT, Ledger, LedgerStats, Payment, Settlement, payment_id};
use super::model::{Charge, Outcome, Totals, decide};
use super::settings::{InvalidSettings, PaymentsSettings, PaymentsUpdate};
use super::slots::{Overloaded, Slots};

/// The simulated payment provider, shared by its routes.
#[derive(Debug)]
pub struct Payments {
    /// Locked before `slots`' own state when both are (updates), never after.
    settings: Mutex<PaymentsSettings>,
    slots: Slots,
    ledger: Mutex<Ledger>,
    rng: Mutex<StdRng>,
    /// Drawn at start: part of every payment id.
    instance: u32,
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    totals: Totals,
    latency: LatencyHistogram,
    minted: u64,
}

/// A charge that was served and succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    pub payment: Payment,
    /// The idempotency key was known: `payment` is the first one made under it.
    pub duplicate: bool,
    /// How long the charge waited for a slot.
    pub queue_wait: Duration,
}

/// A charge that was not paid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    #[error("the payment failed (simulated: error_rate {error_rate}); nothing was charged")]
    Failed {
        /// The setting in force when the charge was served (`Display` of an `f64`).
        error_rate: String,
        queue_wait: Duration,
    },
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentsStatus {
    pub settings: PaymentsSettings,
    pub in_service: u32,
    pub waiting: u32,
    /// Slots still to retire after capacity was lowered while they were in use.
    pub draining: u32,
    pub totals: Totals,
    pub idempotency: LedgerStats,
    /// Arrival to answer, for served charges.
    pub latency: LatencyHistogram,
}

impl Payments {
    /// A provider with `settings`; `seed` fixes its service times, failures and
    /// payment ids (tests), `None` draws a seed.
    pub fn new(
        settings: PaymentsSettings,
        seed: Option<u64>,
    ) -> Result<Arc<Payments>, InvalidSettings> {
        Payments::with_ledger_limit(settings, seed, DEFAULT_LEDGER_LIMIT)
    }

    /// [`Payments::new`] remembering at most `ledger_limit` idempotency keys.
    pub fn with_ledger_limit(
        settings: PaymentsSettings,
        seed: Option<u64>,
        ledger_limit: usize,
    ) -> Result<Arc<Payments>, InvalidSettings> {
        settings.validate()?;
        let mut rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        };
        Ok(Arc::new(Payments {
            settings: Mutex::new(settings),
            slots: Slots::new(settings.capacity, settings.queue_limit),
            ledger: Mutex::new(Ledger::new(ledger_limit)),
            instance: rng.random(),
            rng: Mutex::new(rng),
            counters: Mutex::new(Counters::default()),
        }))
    }

    pub fn settings(&self) -> PaymentsSettings {
        *lock(&self.settings)
    }

    /// Validates and applies `update`; a new capacity takes effect at once (see
    /// `slots.rs` for a lowered one while slots are in use). Returns the settings now
    /// in force.
    pub fn update(&self, update: &PaymentsUpdate) -> Result<PaymentsSettings, InvalidSettings> {
        let mut settings = lock(&self.settings);
        let updated = settings.updated(update)?;
        self.slots.resize(updated.capacity, updated.queue_limit);
        *settings = updated;
        Ok(updated)
    }

    /// Serves one charge: waits for a slot, holds it for the service time, then fails
    /// or pays (once per idempotency key). Dropping the future gives up its place in
    /// line or its slot.
    pub async fn charge(&self, charge: Charge) -> Result<Charged, ChargeError> {
        let arrived = Instant::now();
        let slot = match self.slots.enter().await {
            Ok(slot) => slot,
            Err(overloaded) => {
                self.count(Outcome::Overloaded, None);
                return Err(overloaded.into());
            }
        };
        let queue_wait = arrived.elapsed();
        let settings = self.settings();
        let decision = decide(&settings, &mut *lock(&self.rng));
        tokio::time::sleep(decision.service_time).await;
        drop(slot);
        if decision.fails {
            self.count(Outcome::Error, Some(arrived.elapsed()));
            return Err(ChargeError::Failed {
                error_rate: settings.error_rate.to_string(),
                queue_wait,
            });
        }
        let Settlement { payment, duplicate } =
            lock(&self.ledger).settle(&charge.idempotency_key, || Payment {
                payment_id: payment_id(self.instance, self.mint()),
                order_id: charge.order_id.clone(),
                amount_cents: charge.amount_cents,
            });
        let outcome = if duplicate {
            Outcome::Duplicate
        } else {
            Outcome::Ok
        };
        self.count(outcome, Some(arrived.elapsed()));
        Ok(Charged {
            payment,
            duplicate,
            queue_wait,
        })
    }

    /// Counts a request refused before it was served (a bad body or header).
    pub fn count_invalid(&self) {
        self.count(Outcome::Invalid, None);
    }

    pub fn status(&self) -> PaymentsStatus {
        let slots = self.slots.snapshot();
        let idempotency = lock(&self.ledger).stats();
        let counters = lock(&self.counters);
        PaymentsStatus {
            settings: self.settings(),
            in_service: slots.in_service,
            waiting: slots.waiting,
            draining: slots.draining,
            totals: counters.totals,
            idempotency,
            latency: counters.latency.clone(),
        }
    }

    fn count(&self, outcome: Outcome, served_in: Option<Duration>) {
        let mut counters = lock(&self.counters);
        counters.totals.count(outcome);
        if let Some(latency) = served_in {
            counters.latency.record(latency);
        }
    }

    fn mint(&self) -> u64 {
        let mut counters = lock(&self.counters);
        counters.minted += 1;
        counters.minted
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; a poisoned lock guards consistent state.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
