//! Bandwidth pacing for a capped response body: pure arithmetic, the shell sleeps.
//!
//! The body is paced against its start: after `sent` bytes, a chunk of `n` more may go
//! once `(sent + n) / bytes_per_sec` seconds have passed. A transfer of `B` bytes thus
//! takes `B / bytes_per_sec` seconds whatever the chunking, and time lost to a slow
//! reader is not paid twice (the schedule is absolute, not a sleep per chunk).

use std::num::NonZeroU64;
use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// How long to wait, `elapsed` after the first byte was due, before sending the next
/// `next` bytes when `sent` bytes have gone already. Zero when the body is behind its
/// schedule. Rounded up to the nanosecond, so the cap is never exceeded.
pub fn pacing_delay(
    bytes_per_sec: NonZeroU64,
    sent: u64,
    elapsed: Duration,
    next: u64,
) -> Duration {
    let bytes = u128::from(sent) + u128::from(next);
    let rate = u128::from(bytes_per_sec.get());
    let due = (bytes * NANOS_PER_SEC).div_ceil(rate);
    let wait = due.saturating_sub(elapsed.as_nanos());
    // Beyond u64::MAX seconds (only for absurd inputs) the wait is effectively forever.
    let secs = u64::try_from(wait / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // Below 10^9, so the cast cannot truncate.
    let nanos = (wait % NANOS_PER_SEC) as u32;
    Duration::new(secs, nanos)
}

/// The chunk size to split a capped body into: a tenth of a second's worth, between
/// 1 byte and 64 KiB, so that the pacing is smooth at low rates and cheap at high ones.
/// Without splitting, one large upstream chunk would wait long and then burst.
pub fn pacing_chunk_size(bytes_per_sec: NonZeroU64) -> usize {
    const MAX_CHUNK: u64 = 64 * 1024;
    let chunk = (bytes_per_sec.get() / 10).clamp(1, MAX_CHUNK);
    // At most 64 KiB, which fits any usize the agent runs on.
    usize::try_from(chunk).unwrap_or(1)
}
