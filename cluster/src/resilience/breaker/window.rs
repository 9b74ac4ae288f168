//! The failure-rate sliding window: calls and failures over the last `length`, kept in
//! a fixed ring of buckets so memory does not grow with the call rate.
//!
//! ```text
//!  epoch ─┬────┬────┬────┬─ … ─┬────┬──► time      bucket index = (t − epoch) ÷ (length ÷ 10)
//!         │ b0 │ b1 │ b2 │     │ b9 │ b10 reuses slot 0, clearing b0
//!                      └── window at t = the 10 buckets ending with t's bucket
//! ```
//!
//! A call therefore counts from the moment it is recorded until the start of the tenth
//! bucket after its own: between 0.9 × and 1 × `length` later.

use std::time::{Duration, Instant};

/// Buckets per window.
pub(crate) const BUCKETS: usize = 10;

#[derive(Debug, Clone)]
pub(crate) struct Window {
    epoch: Instant,
    width: Duration,
    buckets: [Bucket; BUCKETS],
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket since the epoch this slot holds.
    index: u64,
    calls: u32,
    failures: u32,
}

/// Calls and failures in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
}

impl Window {
    /// An empty window of `length` starting at `epoch`.
    pub(crate) fn new(length: Duration, epoch: Instant) -> Window {
        // A zero width would divide by zero; validated settings never ask for one.
        let width = (length / BUCKETS as u32).max(Duration::from_nanos(1));
        Window {
            epoch,
            width,
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(elapsed / self.width.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one call at `now`.
    pub(crate) fn record(&mut self, now: Instant, failed: bool) {
        let index = self.index(now);
        let bucket = &mut self.buckets[(index % BUCKETS as u64) as usize];
        if bucket.index < index {
            *bucket = Bucket {
                index,
                calls: 0,
                failures: 0,
            };
        } else if bucket.index > index {
            // A call from a whole window before the slot's newest: it is out of the
            // window already (only possible if instants arrive out of order).
            return;
        }
        bucket.calls = bucket.calls.saturating_add(1);
        if failed {
            bucket.failures = bucket.failures.saturating_add(1);
        }
    }

    /// Calls and failures in the window ending at `now`.
    pub(crate) fn totals(&self, now: Instant) -> Totals {
        let newest = self.index(now);
        let oldest = newest.saturating_sub(BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|b| (oldest..=newest).contains(&b.index))
            .fold(Totals::default(), |t, b| Totals {
                calls: t.calls.saturating_add(b.calls),
                failures: t.failures.saturating_add(b.failures),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_call_counts_until_the_tenth_bucket_after_its_own_starts() {
        let epoch = Instant::now();
        // 1 s window: buckets of 100 ms.
        let mut w = Window::new(Duration::from_secs(1), epoch);
        w.record(epoch + 150 * MS, true); // bucket 1: [100, 200) ms
        w.record(epoch + 199 * MS, false);
        let at = |ms: u32| w.totals(epoch + ms * MS);
        assert_eq!(
            at(150),
            Totals {
                calls: 2,
                failures: 1
            }
        );
        // Bucket 10 starts at 1000 ms: the window is then buckets 1..=10 until 1100 ms.
        assert_eq!(
            at(1099),
            Totals {
                calls: 2,
                failures: 1
            }
        );
        assert_eq!(at(1100), Totals::default());
    }

    #[test]
    fn buckets_are_reused_and_old_counts_cleared() {
        let epoch = Instant::now();
        let mut w = Window::new(Duration::from_secs(1), epoch);
        w.record(epoch + 50 * MS, true); // bucket 0
        w.record(epoch + 1050 * MS, false); // bucket 10, same slot: bucket 0 is cleared
        assert_eq!(
            w.totals(epoch + 1050 * MS),
            Totals {
                calls: 1,
                failures: 0
            }
        );
        // Time far beyond: nothing left.
        assert_eq!(
            w.totals(epoch + Duration::from_secs(3600)),
            Totals::default()
        );
    }

    #[test]
    fn every_bucket_of_the_window_adds_up() {
        let epoch = Instant::now();
        let mut w = Window::new(Duration::from_secs(10), epoch);
        for second in 0..10 {
            w.record(epoch + Duration::from_secs(second), second % 2 == 0);
        }
        assert_eq!(
            w.totals(epoch + Duration::from_millis(9999)),
            Totals {
                calls: 10,
                failures: 5
            }
        );
        // At 10 s the call from second 0 has left.
        assert_eq!(
            w.totals(epoch + Duration::from_secs(10)),
            Totals {
                calls: 9,
                failures: 4
            }
        );
    }

    #[test]
    fn out_of_order_and_pre_epoch_instants_do_not_panic_or_corrupt() {
        let epoch = Instant::now() + Duration::from_secs(5);
        let mut w = Window::new(Duration::from_secs(1), epoch);
        // Before the epoch: bucket 0.
        w.record(epoch - Duration::from_secs(1), true);
        w.record(epoch + 1500 * MS, false); // bucket 15 in slot 5
        w.record(epoch + 500 * MS, true); // bucket 5, older than slot 5's bucket: dropped
        assert_eq!(
            w.totals(epoch + 1500 * MS),
            Totals {
                calls: 1,
                failures: 0
            }
        );
    }

    #[test]
    fn a_zero_length_window_is_clamped_instead_of_dividing_by_zero() {
        let epoch = Instant::now();
        let mut w = Window::new(Duration::ZERO, epoch);
        w.record(epoch, true);
        assert_eq!(
            w.totals(epoch),
            Totals {
                calls: 1,
                failures: 1
            }
        );
    }
}
