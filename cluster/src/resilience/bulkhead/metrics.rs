//! What a bulkhead is doing, as a snapshot (for `/status` JSON) and Prometheus text.
//!
//! ```text
//!  faultline_bulkhead_in_use{name}              calls holding a slot now
//!  faultline_bulkhead_limit{name}               the limit in force
//!  faultline_bulkhead_calls_total{name,outcome} admitted | rejected
//! ```

use serde::Serialize;

use crate::resilience::exposition::{Kind, family};

/// A bulkhead's occupancy and counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BulkheadSnapshot {
    pub name: String,
    pub limit: u32,
    pub in_use: u32,
    pub admitted: u64,
    pub rejected: u64,
}

/// Writes the bulkheads' metrics; `labels` go first on every sample.
pub fn render_bulkheads(out: &mut String, labels: &[(&str, &str)], bulkheads: &[BulkheadSnapshot]) {
    let by_name = |value: fn(&BulkheadSnapshot) -> u64| {
        bulkheads
            .iter()
            .map(move |b| (vec![("name", b.name.as_str())], value(b)))
    };
    family(
        out,
        "bulkhead_in_use",
        Kind::Gauge,
        "Calls holding a bulkhead slot.",
        labels,
        by_name(|b| u64::from(b.in_use)),
    );
    family(
        out,
        "bulkhead_limit",
        Kind::Gauge,
        "Concurrent calls a bulkhead allows.",
        labels,
        by_name(|b| u64::from(b.limit)),
    );
    family(
        out,
        "bulkhead_calls_total",
        Kind::Counter,
        "Calls a bulkhead admitted or rejected.",
        labels,
        bulkheads.iter().flat_map(|b| {
            [("admitted", b.admitted), ("rejected", b.rejected)]
                .map(|(outcome, n)| (vec![("name", b.name.as_str()), ("outcome", outcome)], n))
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulkheads_render_occupancy_and_calls() {
        let mut out = String::new();
        let snapshot = BulkheadSnapshot {
            name: "payments".into(),
            limit: 8,
            in_use: 3,
            admitted: 40,
            rejected: 5,
        };
        render_bulkheads(&mut out, &[], &[snapshot]);
        for line in [
            "# TYPE faultline_bulkhead_in_use gauge",
            r#"faultline_bulkhead_in_use{name="payments"} 3"#,
            r#"faultline_bulkhead_limit{name="payments"} 8"#,
            r#"faultline_bulkhead_calls_total{name="payments",outcome="admitted"} 40"#,
            r#"faultline_bulkhead_calls_total{name="payments",outcome="rejected"} 5"#,
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }
}
