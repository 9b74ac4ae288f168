//! Bulkhead: bounds how many calls to a dependency are in flight at once, so one slow
//! dependency cannot take every worker task with it. A call that finds it full is
//! refused at once, or after waiting up to `max_wait_ms` for a slot.
//!
//! ```text
//!  BulkheadSettings (JSON) ─► Bulkhead (shared: limit, in use, counters) ─► layer() ─► BulkheadService<S>
//!                                 ├─► acquire() / try_acquire() for code outside tower
//!                                 └─► snapshot() ─► render_bulkheads ─► /metrics
//! ```

mod metrics;
mod service;
mod settings;

pub use metrics::{BulkheadSnapshot, render_bulkheads};
pub use service::{Bulkhead, BulkheadLayer, BulkheadPermit, BulkheadService};
pub use settings::BulkheadSettings;
