//! Rate, errors and duration of a service's HTTP routes, for its `/metrics`.
//!
//! ```text
//!  request ─► track (axum middleware) ─► handler ─► response
//!                 └─ route, method, status code, seconds ─► Red ─► render ─► Prometheus text
//! ```
//!
//! Durations go into the services' fixed-bucket [`LatencyHistogram`] (5 ms to 60 s); `/status`, `/metrics` and `/admin/*`
//! are not counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use faultline_model::prometheus::{family, sample};

use super::latency::LatencyHistogram;

/// Route, method, status code.
type SeriesKey = (String, String, u16);

/// One service's request metrics; cheap to clone.
#[derive(Debug, Clone)]
pub struct Red {
    service: &'static str,
    series: Arc<Mutex<BTreeMap<SeriesKey, LatencyHistogram>>>,
}

impl Red {
    pub fn new(service: &'static str) -> Self {
        Red {
            service,
            series: Arc::default(),
        }
    }

    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default()
            .record(took);
    }

    /// Requests answered so far with a status in `range`, over every route.
    pub fn count(&self, range: std::ops::RangeInclusive<u16>) -> u64 {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((_, _, status), _)| range.contains(status))
            .map(|(_, s)| s.count())
            .sum()
    }

    /// Appends the `faultline_http_server_*` families, labelled with `instance`.
    pub fn render(&self, out: &mut String, instance: &str) {
        const PREFIX: &str = "faultline_http_server_";
        let series = self
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        family(
            out,
            PREFIX,
            "requests_total",
            "counter",
            "Requests answered, by route, method and status code.",
        );
        for ((route, method, status), s) in &series {
            let code = status.to_string();
            let labels = [
                ("service", self.service),
                ("instance", instance),
                ("route", route.as_str()),
                ("method", method.as_str()),
                ("code", code.as_str()),
            ];
            sample(out, PREFIX, "requests_total", &labels, s.count());
        }
        family(
            out,
            PREFIX,
            "request_duration_seconds",
            "histogram",
            "Time from the request's arrival to its answer, by route and method.",
        );
        let mut merged: BTreeMap<(&str, &str), LatencyHistogram> = BTreeMap::new();
        for ((route, method, _), s) in &series {
            merged.entry((route, method)).or_default().merge(s);
        }
        for ((route, method), s) in &merged {
            for (le, cumulative) in s.cumulative_buckets() {
                let labels = [
                    ("service", self.service),
                    ("instance", instance),
                    ("route", *route),
                    ("method", *method),
                    ("le", le),
                ];
                sample(
                    out,
                    PREFIX,
                    "request_duration_seconds_bucket",
                    &labels,
                    cumulative,
                );
            }
            let labels = [
                ("service", self.service),
                ("instance", instance),
                ("route", *route),
                ("method", *method),
            ];
            sample(
                out,
                PREFIX,
                "request_duration_seconds_sum",
                &labels,
                s.sum_seconds(),
            );
            sample(
                out,
                PREFIX,
                "request_duration_seconds_count",
                &labels,
                s.count(),
            );
        }
    }
}

/// Axum middleware (`route_layer` with the [`Red`] as state): times every request of a
/// counted route.
pub async fn track(State(red): State<Red>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(route) =
        route.filter(|r| !(r == "/status" || r == "/metrics" || r.starts_with("/admin/")))
    else {
        return next.run(request).await;
    };
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    red.observe(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let red = Red::new("gateway");
        red.observe("/orders", "POST", 201, Duration::from_millis(3));
        red.observe("/orders", "POST", 201, Duration::from_millis(200));
        red.observe("/orders", "POST", 503, Duration::from_secs(20));
        let mut out = String::new();
        red.render(&mut out, "node-1");
        assert!(out.contains(
            r#"faultline_http_server_requests_total{service="gateway",instance="node-1",route="/orders",method="POST",code="201"} 2"#
        ));
        assert!(out.contains(r#"le="0.005"} 1"#), "{out}");
        assert!(out.contains(r#"le="0.25"} 2"#), "{out}");
        assert!(out.contains(r#"le="10"} 2"#), "{out}");
        assert!(out.contains(r#"le="+Inf"} 3"#), "{out}");
        assert!(out.contains(r#"request_duration_seconds_count{service="gateway",instance="node-1",route="/orders",method="POST"} 3"#));
        assert_eq!(red.count(500..=599), 1);
    }
}
