//! `payments`: the demo's simulated third-party payment provider (docs/services.md).
//! The worker charges orders here; its capacity, latency and error rate are the knobs
//! an incident drill turns (a slow or failing dependency, a retry storm that shows up
//! as duplicate idempotency keys).
//!
//! ```text
//!  worker ─► agent outbound ─► POST /charge ─► api ─► Payments::charge
//!                                                      │
//!     slots (FIFO semaphore, capacity, queue_limit) ◄──┤  wait for a slot: past capacity,
//!     decide (settings + seeded RNG): time, failure ◄──┤  latency grows as a queue's
//!     ledger (idempotency key → first payment)      ◄──┘
//!  PUT /admin/payments ─► PaymentsSettings::updated ─► slots.resize (at once, even in use)
//!  GET /status, GET /metrics ◄── Payments::status ◄── totals, latency histogram, ledger stats
//! ```
//!
//! Pure cores, thin shells: [`settings`], [`model`], [`ledger`] and [`latency`] are
//! synchronous and deterministic; `slots` and [`Payments`] own the waiting; [`api`]
//! only translates HTTP.

pub mod api;
/// The latency histogram lives with the other services' metrics.
pub use super::latency;
pub mod ledger;
pub mod metrics;
pub mod model;
mod provider;
pub mod settings;
mod slots;

#[cfg(test)]
mod tests;

pub use api::{IDEMPOTENCY_KEY_HEADER, router};
pub use ledger::{Payment, Settlement};
pub use model::{Charge, InvalidCharge, Outcome, Totals};
pub use provider::{ChargeError, Charged, Payments, PaymentsStatus};
pub use settings::{InvalidSettings, PaymentsSettings, PaymentsUpdate};
pub use slots::Overloaded;
