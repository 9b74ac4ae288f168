//! One series' latencies: exact Prometheus bucket counters and sum for `/metrics`,
//! and an hdr histogram for quantiles in `/status` (see the parent module for why both).

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Upper bounds of the `faultline_agent_request_duration_seconds` buckets, as the `le`
/// label values, ascending (the `+Inf` bucket follows them). The usual Prometheus
/// client defaults shifted to 1 ms … 10 s: proxied calls between demo nodes take
/// milliseconds, and a blackhole holds until the caller's timeout (seconds).
pub const BUCKET_BOUNDS_SECONDS: [&str; 13] = [
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10",
];

/// The same bounds in nanoseconds, so that a latency is compared exactly.
const BUCKET_BOUNDS_NANOS: [u128; 13] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// hdr range: 1 µs … 60 s at 3 significant digits (values are recorded in µs; longer
/// latencies are clamped to 60 s in the quantiles, not in the buckets or the sum).
const HDR_LOWEST_US: u64 = 1;
const HDR_HIGHEST_US: u64 = 60_000_000;
const HDR_SIGFIG: u8 = 3;

/// Latency quantiles in microseconds, accurate to hdr's 3 significant digits (each is
/// the highest value equivalent to the recorded one at that resolution).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LatencyQuantiles {
    /// Requests recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest recorded (clamped to 60 s).
    pub max_us: u64,
}

#[derive(Debug)]
pub(super) struct Latency {
    /// Non-cumulative: `buckets[i]` counts latencies in `(bound[i-1], bound[i]]`;
    /// latencies above the last bound are only in `count`.
    buckets: [u64; 13],
    count: u64,
    sum_nanos: u128,
    /// `None` only if hdr rejected the constant bounds above, which it does not (a test
    /// checks it); an `Option` keeps the data path free of `expect`. Counts are `u32`
    /// to halve the footprint (about 68 KiB); hdr saturates them rather than wrapping.
    hdr: Option<Histogram<u32>>,
}

impl Latency {
    pub(super) fn new() -> Latency {
        Latency {
            buckets: [0; 13],
            count: 0,
            sum_nanos: 0,
            hdr: Histogram::new_with_bounds(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_SIGFIG).ok(),
        }
    }

    pub(super) fn record(&mut self, latency: Duration) {
        let nanos = latency.as_nanos();
        // The first bound >= the latency: Prometheus buckets are `le` (inclusive).
        let bucket = BUCKET_BOUNDS_NANOS.partition_point(|&bound| bound < nanos);
        if let Some(count) = self.buckets.get_mut(bucket) {
            *count = count.saturating_add(1);
        }
        self.count = self.count.saturating_add(1);
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
        if let Some(hdr) = &mut self.hdr {
            hdr.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// Cumulative counts at each bound of [`BUCKET_BOUNDS_SECONDS`] (the `+Inf`
    /// bucket is [`Latency::count`]).
    pub(super) fn cumulative_buckets(&self) -> [u64; 13] {
        let mut cumulative = self.buckets;
        let mut running = 0u64;
        for count in &mut cumulative {
            running = running.saturating_add(*count);
            *count = running;
        }
        cumulative
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    pub(super) fn sum_nanos(&self) -> u128 {
        self.sum_nanos
    }

    pub(super) fn quantiles(&self) -> LatencyQuantiles {
        match &self.hdr {
            Some(hdr) if !hdr.is_empty() => LatencyQuantiles {
                count: self.count,
                p50_us: hdr.value_at_quantile(0.50),
                p90_us: hdr.value_at_quantile(0.90),
                p99_us: hdr.value_at_quantile(0.99),
                max_us: hdr.max(),
            },
            _ => LatencyQuantiles {
                count: self.count,
                ..LatencyQuantiles::default()
            },
        }
    }

    #[cfg(test)]
    pub(super) fn has_hdr(&self) -> bool {
        self.hdr.is_some()
    }
}
