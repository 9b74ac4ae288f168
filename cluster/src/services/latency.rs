//! A latency histogram with fixed Prometheus buckets, exact to the microsecond: the
//! services' request durations (`red.rs`) and payments' time from a charge's arrival to
//! its answer. Fixed buckets for `/metrics`, count / mean / max for `/status`.
//!
//! ```text
//!  record(waited + served) ─► buckets (le) + count + sum + max
//!    ─► faultline_payments_request_duration_seconds_bucket{le="0.1"} …, _sum, _count
//!    ─► /status "latency": {"count", "mean_ms", "max_ms"}
//! ```
//!
//! Buckets run from 5 ms (one unloaded call's order) to 60 s (a long queue).

use std::time::Duration;

use serde::Serialize;

/// Bucket upper bounds as `le` label values, ascending; `+Inf` follows them.
pub const BUCKET_BOUNDS_SECONDS: [&str; 13] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60",
];

/// The same bounds in microseconds, compared exactly.
const BUCKET_BOUNDS_MICROS: [u64; 13] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000, 60_000_000,
];

/// Latencies, bucketed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(into = "LatencySummary")]
pub struct LatencyHistogram {
    /// Non-cumulative: `buckets[i]` counts latencies in `(bound[i-1], bound[i]]`;
    /// longer ones are only in `count`.
    buckets: [u64; 13],
    count: u64,
    sum_us: u64,
    max_us: u64,
}

/// What `/status` shows of the histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

impl From<LatencyHistogram> for LatencySummary {
    fn from(h: LatencyHistogram) -> Self {
        let mean_us = if h.count == 0 {
            0.0
        } else {
            h.sum_us as f64 / h.count as f64
        };
        LatencySummary {
            count: h.count,
            mean_ms: mean_us / 1000.0,
            max_ms: h.max_us as f64 / 1000.0,
        }
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // The first bound >= the latency: Prometheus buckets are `le` (inclusive).
        let bucket = BUCKET_BOUNDS_MICROS.partition_point(|&bound| bound < us);
        if let Some(n) = self.buckets.get_mut(bucket) {
            *n = n.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    /// `(le, cumulative count)` for each bound, then `+Inf` with the total.
    pub fn cumulative_buckets(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let mut running = 0u64;
        BUCKET_BOUNDS_SECONDS
            .iter()
            .zip(self.buckets)
            .map(move |(le, n)| {
                running = running.saturating_add(n);
                (*le, running)
            })
            .chain(std::iter::once(("+Inf", self.count)))
    }

    /// Adds `other`'s observations to these.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine = mine.saturating_add(theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the latencies in seconds, as Prometheus text (exact to the µs).
    pub fn sum_seconds(&self) -> String {
        format!("{}.{:06}", self.sum_us / 1_000_000, self.sum_us % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_agree_and_ascend() {
        for (text, us) in BUCKET_BOUNDS_SECONDS.iter().zip(BUCKET_BOUNDS_MICROS) {
            let seconds: f64 = text.parse().unwrap();
            assert_eq!((seconds * 1e6).round() as u64, us, "{text}");
        }
        assert!(BUCKET_BOUNDS_MICROS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn latencies_land_in_inclusive_buckets_and_accumulate() {
        let mut h = LatencyHistogram::default();
        for ms in [5, 6, 100, 100, 250, 61_000] {
            h.record(Duration::from_millis(ms));
        }
        h.record(Duration::from_micros(100_001));
        let buckets: Vec<_> = h.cumulative_buckets().collect();
        assert_eq!(buckets.len(), 14);
        assert_eq!(buckets[0], ("0.005", 1));
        assert_eq!(buckets[1], ("0.01", 2));
        assert_eq!(buckets[4], ("0.1", 4));
        assert_eq!(buckets[5], ("0.25", 6));
        assert_eq!(buckets[12], ("60", 6));
        assert_eq!(buckets[13], ("+Inf", 7));
        assert_eq!(h.count(), 7);
        assert_eq!(h.sum_seconds(), "61.561001");
        let summary = LatencySummary::from(h);
        assert_eq!(summary.max_ms, 61_000.0);
        assert!((summary.mean_ms - 61_561.001 / 7.0).abs() < 1e-9);
    }

    #[test]
    fn merging_adds_every_bucket_and_keeps_the_max() {
        let (mut a, mut b) = (LatencyHistogram::default(), LatencyHistogram::default());
        a.record(Duration::from_millis(5));
        b.record(Duration::from_millis(100));
        b.record(Duration::from_secs(2));
        a.merge(&b);
        let buckets: Vec<_> = a.cumulative_buckets().collect();
        assert_eq!(buckets[0], ("0.005", 1));
        assert_eq!(buckets[4], ("0.1", 2));
        assert_eq!(buckets[13], ("+Inf", 3));
        assert_eq!(a.sum_seconds(), "2.105000");
        assert_eq!(LatencySummary::from(a).max_ms, 2_000.0);
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        let json = serde_json::to_value(LatencyHistogram::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"count": 0, "mean_ms": 0.0, "max_ms": 0.0})
        );
    }
}
