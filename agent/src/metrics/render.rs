//! The Prometheus text exposition format 0.0.4, written by hand (it is small, and
//! exactness matters more than generality): one `# HELP` and `# TYPE` per family,
//! families sorted by name, samples sorted by their label values, label names in
//! alphabetical order with `le` last, label values escaped.

use faultline_model::prometheus;

use super::latency::BUCKET_BOUNDS_SECONDS;
use super::{Direction, StatusClass};

const PREFIX: &str = "faultline_agent_";

/// Everything `render` prints, copied out of the registry so that formatting runs
/// without its lock. Series and in-flight cells arrive sorted.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) series: Vec<SeriesSnapshot>,
    pub(super) in_flight: Vec<(Direction, String, i64)>,
    pub(super) route_folds: u64,
    pub(super) peer_folds: u64,
    pub(super) fault_activations: [[u64; 6]; 2],
    pub(super) access_log_dropped: u64,
    pub(super) spans_dropped: u64,
    pub(super) spans_exported: u64,
}

#[derive(Debug)]
pub(super) struct SeriesSnapshot {
    pub(super) direction: Direction,
    pub(super) route: String,
    pub(super) peer: String,
    pub(super) requests: [u64; 6],
    pub(super) errors: u64,
    pub(super) retries: u64,
    /// Cumulative, one per bound.
    pub(super) buckets: [u64; 13],
    pub(super) count: u64,
    pub(super) sum_nanos: u128,
}

pub(super) fn render(snapshot: &Snapshot, out: &mut String) {
    // Families in name order.
    family(
        out,
        "access_log_dropped_total",
        "counter",
        "Access log lines dropped because the log writer fell behind.",
    );
    sample(
        out,
        "access_log_dropped_total",
        &[],
        snapshot.access_log_dropped,
    );

    family(
        out,
        "fault_activations_total",
        "counter",
        "Injected faults that took effect, by kind and direction.",
    );
    for direction in Direction::ALL {
        for kind in super::FAULT_KINDS {
            let value = snapshot.fault_activations[direction.index()][super::fault_index(kind)];
            sample(
                out,
                "fault_activations_total",
                &[("direction", direction.as_str()), ("kind", kind.as_str())],
                value,
            );
        }
    }

    family(
        out,
        "in_flight_requests",
        "gauge",
        "Requests being proxied now, by direction and peer.",
    );
    for (direction, peer, value) in &snapshot.in_flight {
        sample(
            out,
            "in_flight_requests",
            &[("direction", direction.as_str()), ("peer", peer)],
            value,
        );
    }

    family(
        out,
        "peer_labels_folded_total",
        "counter",
        "Requests whose peer label was replaced by \"other\" because the peer cap was reached.",
    );
    sample(out, "peer_labels_folded_total", &[], snapshot.peer_folds);

    family(
        out,
        "request_duration_seconds",
        "histogram",
        "Latency of proxied requests, by direction, peer and route.",
    );
    for series in &snapshot.series {
        let labels = series_labels(series);
        for (bound, cumulative) in BUCKET_BOUNDS_SECONDS.iter().zip(series.buckets) {
            sample(
                out,
                "request_duration_seconds_bucket",
                &[labels[0], labels[1], labels[2], ("le", bound)],
                cumulative,
            );
        }
        sample(
            out,
            "request_duration_seconds_bucket",
            &[labels[0], labels[1], labels[2], ("le", "+Inf")],
            series.count,
        );
        sample(
            out,
            "request_duration_seconds_sum",
            &labels,
            Seconds(series.sum_nanos),
        );
        sample(out, "request_duration_seconds_count", &labels, series.count);
    }

    family(
        out,
        "request_errors_total",
        "counter",
        "Proxied requests that failed (5xx or no response), by direction, peer and route.",
    );
    for series in &snapshot.series {
        sample(
            out,
            "request_errors_total",
            &series_labels(series),
            series.errors,
        );
    }

    family(
        out,
        "requests_total",
        "counter",
        "Proxied requests, by direction, peer, route and status class (error: no response).",
    );
    for series in &snapshot.series {
        let [direction, peer, route] = series_labels(series);
        for class in StatusClass::ALL {
            let value = series.requests[class.index()];
            // Only classes seen: every series has `request_errors_total` from zero
            // for error ratios, and six zero lines per series would be noise.
            if value > 0 {
                sample(
                    out,
                    "requests_total",
                    &[direction, peer, route, ("status_class", class.as_str())],
                    value,
                );
            }
        }
    }

    family(
        out,
        "retries_seen_total",
        "counter",
        "Proxied requests the caller marked as retries, by direction, peer and route.",
    );
    for series in &snapshot.series {
        sample(
            out,
            "retries_seen_total",
            &series_labels(series),
            series.retries,
        );
    }

    family(
        out,
        "route_labels_folded_total",
        "counter",
        "Requests whose route label was replaced by \"other\" because a cardinality cap was reached.",
    );
    sample(out, "route_labels_folded_total", &[], snapshot.route_folds);

    family(
        out,
        "spans_dropped_total",
        "counter",
        "Spans dropped because the export queue was full.",
    );
    sample(out, "spans_dropped_total", &[], snapshot.spans_dropped);

    family(
        out,
        "spans_exported_total",
        "counter",
        "Spans handed to the OTLP exporter.",
    );
    sample(out, "spans_exported_total", &[], snapshot.spans_exported);
}

fn series_labels(series: &SeriesSnapshot) -> [(&'static str, &str); 3] {
    [
        ("direction", series.direction.as_str()),
        ("peer", &series.peer),
        ("route", &series.route),
    ]
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    prometheus::family(out, PREFIX, name, kind, help);
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    prometheus::sample(out, PREFIX, name, labels, value);
}

/// Nanoseconds printed as exact decimal seconds (`1500000` → `0.0015`), so that
/// `_sum` has no float rounding.
pub(super) struct Seconds(pub(super) u128);

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = self.0 / 1_000_000_000;
        let frac = self.0 % 1_000_000_000;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}
