//! `GET /metrics`: the provider's status as Prometheus text (format 0.0.4), through the
//! shared writer `faultline_model::prometheus`.
//!
//! ```text
//!  faultline_payments_requests_total{outcome}        ok | error | overloaded | duplicate | invalid
//!  faultline_payments_in_service                     requests holding a slot
//!  faultline_payments_waiting                        requests waiting for one
//!  faultline_payments_capacity, _queue_limit         the settings in force
//!  faultline_payments_idempotency_keys               keys the ledger remembers
//!  faultline_payments_idempotency_evictions_total    keys it forgot to stay bounded
//!  faultline_payments_request_duration_seconds       histogram: arrival to answer, served charges
//! ```

use faultline_model::prometheus::{family, sample};

use super::model::Outcome;
use super::provider::PaymentsStatus;

const PREFIX: &str = "faultline_";

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn render(status: &PaymentsStatus) -> String {
    let mut out = String::new();
    let scalar = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
        family(out, PREFIX, name, kind, help);
        sample(out, PREFIX, name, &[], value);
    };
    family(
        &mut out,
        PREFIX,
        "payments_requests_total",
        "counter",
        "Charges answered, by outcome.",
    );
    for outcome in Outcome::ALL {
        sample(
            &mut out,
            PREFIX,
            "payments_requests_total",
            &[("outcome", outcome.label())],
            status.totals.get(outcome),
        );
    }
    scalar(
        &mut out,
        "payments_in_service",
        "gauge",
        "Charges holding a service slot.",
        status.in_service.into(),
    );
    scalar(
        &mut out,
        "payments_waiting",
        "gauge",
        "Charges waiting for a service slot.",
        status.waiting.into(),
    );
    scalar(
        &mut out,
        "payments_capacity",
        "gauge",
        "Concurrent service slots.",
        status.settings.capacity.into(),
    );
    scalar(
        &mut out,
        "payments_queue_limit",
        "gauge",
        "Charges that may wait for a slot before the provider answers overloaded.",
        status.settings.queue_limit.into(),
    );
    scalar(
        &mut out,
        "payments_idempotency_keys",
        "gauge",
        "Idempotency keys remembered.",
        u64::try_from(status.idempotency.entries).unwrap_or(u64::MAX),
    );
    scalar(
        &mut out,
        "payments_idempotency_evictions_total",
        "counter",
        "Idempotency keys forgotten to keep the ledger bounded.",
        status.idempotency.evictions,
    );
    let latency = &status.latency;
    family(
        &mut out,
        PREFIX,
        "payments_request_duration_seconds",
        "histogram",
        "Time from a charge's arrival to its answer (waiting plus service), for served charges.",
    );
    for (le, count) in latency.cumulative_buckets() {
        sample(
            &mut out,
            PREFIX,
            "payments_request_duration_seconds_bucket",
            &[("le", le)],
            count,
        );
    }
    sample(
        &mut out,
        PREFIX,
        "payments_request_duration_seconds_sum",
        &[],
        latency.sum_seconds(),
    );
    sample(
        &mut out,
        PREFIX,
        "payments_request_duration_seconds_count",
        &[],
        latency.count(),
    );
    out
}
