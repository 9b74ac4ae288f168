//! Writing the policies' snapshots as Prometheus text through the shared writer
//! (`faultline_model::prometheus`): one family, then one sample per policy, each with
//! the caller's labels (e.g. `node`) first.
//!
//! ```text
//!  family(out, "circuit_breaker_calls_total", Counter, help, &[("node","node-1")], rows)
//!    ─► # HELP … / # TYPE …
//!       faultline_circuit_breaker_calls_total{node="node-1",name="payments",outcome="success"} 12
//! ```

use faultline_model::prometheus;

pub(crate) const PREFIX: &str = "faultline_";

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

/// Writes family `name` and one sample per row (the row's own labels, its value).
pub(crate) fn family<'a>(
    out: &mut String,
    name: &str,
    kind: Kind,
    help: &str,
    common: &[(&'a str, &'a str)],
    rows: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, u64)>,
) {
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    prometheus::family(out, PREFIX, name, kind, help);
    for (own, value) in rows {
        let mut labels = common.to_vec();
        labels.extend(own);
        prometheus::sample(out, PREFIX, name, &labels, value);
    }
}
