//! Hybrid logical clock (HLC): the source of write versions.
//!
//! An HLC timestamp is `(physical_ms, logical)`. The physical part stays close to the
//! node's wall clock, so versions mean something to a human reading a trace; the logical
//! counter orders events that fall in the same millisecond, and the update rule on
//! receive makes the clock *causal*: a timestamp minted after a message was received is
//! greater than the timestamp that message carried, even if the sender's wall clock is
//! ahead of ours. The algorithm is the one of Kulkarni, Demirbas et al., "Logical
//! Physical Clocks and Consistent Snapshots in Globally Distributed Databases" (2014),
//! figure 5, with `l` = `physical_ms` and `c` = `logical`.
//!
//! ```text
//!   pt = source.now_ms() + offset_ms          (offset: the "clock-skew" fault hook)
//!
//!   now():            l' = max(l, pt);  c = (l' == l) ? c + 1 : 0;  l = l'
//!   observe(m):       l' = max(l, m.l, pt)
//!                     c  = l'==l==m.l ? max(c, m.c)+1 : l'==l ? c+1 : l'==m.l ? m.c+1 : 0
//! ```
//!
//! Who calls what: a coordinator mints a write's [`Version`] with [`Hlc::new_version`];
//! every node that receives a version (a replica applying a write, a coordinator reading
//! responses, a node receiving a hint) feeds it to [`Hlc::observe`]. A client that wants
//! its next write to be ordered after one it already saw — even through another
//! coordinator — passes the version it got back, and the coordinator observes it before
//! minting the new one.
//!
//! ## Bounding a runaway clock
//!
//! Plain HLC adopts any remote timestamp that is ahead, so one node whose wall clock is
//! an hour fast drags every clock it talks to an hour forward, and its writes win LWW
//! against everything written in that hour. [`Hlc::observe`] therefore **rejects** a
//! remote timestamp whose physical part is more than `max_drift` ahead of our own
//! physical time (CockroachDB's `--max-offset` rule, default 500 ms there and here):
//! the clock is left unchanged and the caller gets a [`ClockDrift`] error to report
//! (the replica refuses the write, the telemetry shows which peer is skewed and by how
//! much). Rejecting, not clamping: a version is the identity of a write, so clamping our
//! clock would still let the far-future write win LWW; refusing it is the only way to
//! bound the damage. As a consequence `l - pt <= max_drift` holds on every node at all
//! times (a proptest checks it), and LWW matches real-time order for writes more than
//! `max_drift` apart.
//!
//! Which node is skewed? One whose clock runs *ahead* is reported by every peer it
//! writes to; one whose clock runs *behind* by more than `max_drift` sees every peer as
//! ahead and reports all of them (and refuses their writes as a replica). Either way
//! the odd one out is the node named in everyone's reports, or the node reporting
//! everyone — the telemetry should carry both ends ([`ClockDrift::node`] and the peer).
//!
//! The clock is a plain value (`&mut self`); a node shares it behind a mutex. Physical
//! time comes from a [`PhysicalClock`], so tests and simulations drive it by hand.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::version::{NodeId, Version};

/// A point on the hybrid logical clock. Ordered by `physical_ms`, then `logical`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HlcTimestamp {
    /// Milliseconds since the Unix epoch (of the node's possibly offset wall clock).
    pub physical_ms: u64,
    /// Orders events within one `physical_ms`.
    pub logical: u32,
}

impl fmt::Display for HlcTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.physical_ms, self.logical)
    }
}

impl HlcTimestamp {
    /// The next timestamp in the total order, used when the logical counter would overflow.
    fn successor(self) -> HlcTimestamp {
        match self.logical.checked_add(1) {
            Some(logical) => HlcTimestamp {
                physical_ms: self.physical_ms,
                logical,
            },
            // 2^32 events in one millisecond: borrow the next millisecond. Still strictly
            // monotonic; `physical_ms` runs one ms ahead until the wall clock catches up.
            None => HlcTimestamp {
                physical_ms: self.physical_ms.saturating_add(1),
                logical: 0,
            },
        }
    }
}

/// Where physical time comes from.
pub trait PhysicalClock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl PhysicalClock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock set before 1970 reads as the epoch; the HLC stays monotonic regardless.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to: for tests and deterministic simulations.
/// Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(now_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now_ms)))
    }

    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            })
            .ok();
    }
}

impl PhysicalClock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A remote timestamp too far ahead of our physical clock to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "remote clock is {ahead_by_ms} ms ahead of node {node}'s physical time {local_physical_ms} \
     (remote timestamp {remote}, max drift {max_drift_ms} ms): timestamp rejected"
)]
pub struct ClockDrift {
    /// The node whose clock rejected the timestamp.
    pub node: NodeId,
    pub remote: HlcTimestamp,
    pub local_physical_ms: u64,
    pub ahead_by_ms: u64,
    pub max_drift_ms: u64,
}

const DEFAULT_MAX_DRIFT_MS: u64 = 500;

/// One node's hybrid logical clock.
///
/// Deliberately not `Clone`: two copies on one node could mint the same version for two
/// different writes, and "one version, one write" is what makes LWW merges safe.
#[derive(Debug)]
pub struct Hlc {
    node: NodeId,
    source: Arc<dyn PhysicalClock>,
    offset_ms: i64,
    max_drift_ms: u64,
    last: HlcTimestamp,
    drift_rejections: u64,
}

impl Hlc {
    /// CockroachDB's default maximum clock offset; generous for nodes on one machine.
    pub const DEFAULT_MAX_DRIFT: Duration = Duration::from_millis(DEFAULT_MAX_DRIFT_MS);

    pub fn new(node: NodeId, source: Arc<dyn PhysicalClock>) -> Self {
        Self {
            node,
            source,
            offset_ms: 0,
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
            last: HlcTimestamp::default(),
            drift_rejections: 0,
        }
    }

    /// An HLC on the operating system's clock.
    pub fn system(node: NodeId) -> Self {
        Self::new(node, Arc::new(SystemClock))
    }

    /// How far ahead of our physical time a remote timestamp may be (see the module docs).
    pub fn with_max_drift(mut self, max_drift: Duration) -> Self {
        self.max_drift_ms = u64::try_from(max_drift.as_millis()).unwrap_or(u64::MAX);
        self
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The clock-skew fault hook: shift this node's physical time by `offset_ms`
    /// (negative = behind). The HLC never goes backwards: setting a negative offset
    /// makes the clock run on its logical counter until physical time catches up.
    pub fn set_offset_ms(&mut self, offset_ms: i64) {
        self.offset_ms = offset_ms;
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    pub fn max_drift(&self) -> Duration {
        Duration::from_millis(self.max_drift_ms)
    }

    /// Remote timestamps rejected by [`Hlc::observe`] so far (a counter for `/metrics`).
    pub fn drift_rejections(&self) -> u64 {
        self.drift_rejections
    }

    /// The latest timestamp issued or observed, without advancing the clock.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }

    /// This node's physical time: the source's wall clock plus the injected offset.
    pub fn physical_ms(&self) -> u64 {
        self.source.now_ms().saturating_add_signed(self.offset_ms)
    }

    /// A new timestamp for a local or send event; strictly greater than every timestamp
    /// this clock issued or observed before.
    pub fn now(&mut self) -> HlcTimestamp {
        let pt = self.physical_ms();
        self.last = if pt > self.last.physical_ms {
            HlcTimestamp {
                physical_ms: pt,
                logical: 0,
            }
        } else {
            self.last.successor()
        };
        self.last
    }

    /// A fresh version for a write coordinated by this node.
    pub fn new_version(&mut self) -> Version {
        Version {
            ts: self.now(),
            node: self.node,
        }
    }

    /// Update on receive: after this, [`Hlc::now`] returns timestamps greater than
    /// `remote`. Returns the clock's new value, or [`ClockDrift`] — leaving the clock
    /// untouched — when `remote` is more than the max drift ahead of our physical time.
    pub fn observe(&mut self, remote: HlcTimestamp) -> Result<HlcTimestamp, ClockDrift> {
        let pt = self.physical_ms();
        let ahead_by_ms = remote.physical_ms.saturating_sub(pt);
        if ahead_by_ms > self.max_drift_ms {
            self.drift_rejections += 1;
            return Err(ClockDrift {
                node: self.node,
                remote,
                local_physical_ms: pt,
                ahead_by_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        let old = self.last;
        let l = old.physical_ms.max(remote.physical_ms).max(pt);
        let candidate = HlcTimestamp {
            physical_ms: l,
            logical: 0,
        };
        self.last = if l == old.physical_ms && l == remote.physical_ms {
            old.max(remote).successor()
        } else if l == old.physical_ms {
            old.successor()
        } else if l == remote.physical_ms {
            remote.successor()
        } else {
            candidate
        };
        Ok(self.last)
    }

    /// [`Hlc::observe`] for a version carried by a message.
    pub fn observe_version(&mut self, version: &Version) -> Result<HlcTimestamp, ClockDrift> {
        self.observe(version.ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: u64 = 1_700_000_000_000;

    fn manual(node: NodeId) -> (Hlc, ManualClock) {
        let clock = ManualClock::new(T0);
        (Hlc::new(node, Arc::new(clock.clone())), clock)
    }

    fn ts(physical_ms: u64, logical: u32) -> HlcTimestamp {
        HlcTimestamp {
            physical_ms,
            logical,
        }
    }

    #[test]
    fn now_follows_physical_time_and_counts_within_a_millisecond() {
        let (mut hlc, clock) = manual(1);
        assert_eq!(hlc.now(), ts(T0, 0));
        assert_eq!(hlc.now(), ts(T0, 1));
        assert_eq!(hlc.now(), ts(T0, 2));
        clock.advance(Duration::from_millis(3));
        assert_eq!(hlc.now(), ts(T0 + 3, 0));
    }

    #[test]
    fn never_goes_backwards_when_the_wall_clock_does() {
        let (mut hlc, clock) = manual(1);
        let before = hlc.now();
        clock.set(T0 - 10_000);
        let after = hlc.now();
        assert!(after > before);
        assert_eq!(after, ts(T0, 1));
    }

    #[test]
    fn negative_offset_runs_on_the_logical_counter_until_caught_up() {
        let (mut hlc, clock) = manual(1);
        hlc.now();
        hlc.set_offset_ms(-50);
        assert_eq!(hlc.physical_ms(), T0 - 50);
        assert_eq!(hlc.now(), ts(T0, 1));
        clock.advance(Duration::from_millis(51));
        assert_eq!(hlc.now(), ts(T0 + 1, 0));
    }

    #[test]
    fn positive_offset_moves_physical_time_forward() {
        let (mut hlc, _clock) = manual(1);
        hlc.set_offset_ms(2_000);
        assert_eq!(hlc.now(), ts(T0 + 2_000, 0));
        assert_eq!(hlc.offset_ms(), 2_000);
    }

    #[test]
    fn observe_cases_of_the_paper() {
        // Remote ahead (within drift): adopt its physical part, logical = remote's + 1.
        let (mut hlc, _clock) = manual(1);
        hlc.now();
        assert_eq!(hlc.observe(ts(T0 + 100, 7)), Ok(ts(T0 + 100, 8)));
        // Same physical on both sides: max of the counters + 1.
        assert_eq!(hlc.observe(ts(T0 + 100, 3)), Ok(ts(T0 + 100, 9)));
        assert_eq!(hlc.observe(ts(T0 + 100, 20)), Ok(ts(T0 + 100, 21)));
        // Remote behind: local counter + 1.
        assert_eq!(hlc.observe(ts(T0 - 5, 99)), Ok(ts(T0 + 100, 22)));

        // Physical time ahead of both: reset the counter.
        let (mut hlc, clock) = manual(2);
        clock.advance(Duration::from_millis(10));
        assert_eq!(hlc.observe(ts(T0, 4)), Ok(ts(T0 + 10, 0)));
    }

    #[test]
    fn timestamps_after_a_receive_are_greater_than_the_message() {
        let (mut a, _ca) = manual(1);
        let (mut b, cb) = manual(2);
        cb.set(T0 - 300); // b's wall clock lags by 300 ms
        let sent = a.now();
        b.observe(sent).unwrap();
        let next = b.now();
        assert!(next > sent);
        assert!(b.new_version() > Version { ts: sent, node: 1 });
    }

    #[test]
    fn a_timestamp_beyond_the_max_drift_is_rejected_and_reported() {
        let (mut hlc, _clock) = manual(3);
        let before = hlc.now();
        let far = ts(T0 + 10_000, 0);
        let err = hlc.observe(far).unwrap_err();
        assert_eq!(
            err,
            ClockDrift {
                node: 3,
                remote: far,
                local_physical_ms: T0,
                ahead_by_ms: 10_000,
                max_drift_ms: 500,
            }
        );
        assert!(err.to_string().contains("10000 ms ahead"), "{err}");
        assert_eq!(
            hlc.last(),
            before,
            "a rejected timestamp leaves the clock alone"
        );
        assert_eq!(hlc.drift_rejections(), 1);
        // Exactly at the bound is accepted.
        assert_eq!(hlc.observe(ts(T0 + 500, 0)), Ok(ts(T0 + 500, 1)));
        assert_eq!(hlc.drift_rejections(), 1);
    }

    #[test]
    fn a_skewed_node_cannot_drag_a_healthy_one_forward() {
        let (mut skewed, _c1) = manual(1);
        let (mut healthy, _c2) = manual(2);
        skewed.set_offset_ms(60_000);
        let v = skewed.new_version();
        assert!(healthy.observe_version(&v).is_err());
        assert_eq!(healthy.now(), ts(T0, 0));
    }

    #[test]
    fn max_drift_is_configurable() {
        let (hlc, _clock) = manual(1);
        let mut hlc = hlc.with_max_drift(Duration::from_secs(5));
        assert_eq!(hlc.max_drift(), Duration::from_secs(5));
        assert!(hlc.observe(ts(T0 + 4_000, 0)).is_ok());
        assert!(hlc.observe(ts(T0 + 6_000, 0)).is_err());
    }

    #[test]
    fn logical_overflow_borrows_the_next_millisecond() {
        let (mut hlc, _clock) = manual(1);
        hlc.observe(ts(T0, u32::MAX)).unwrap();
        // observe itself overflowed: m.c + 1 spills into the next ms.
        assert_eq!(hlc.last(), ts(T0 + 1, 0));
        assert_eq!(hlc.now(), ts(T0 + 1, 1));
    }

    #[test]
    fn system_clock_is_near_now() {
        let mut hlc = Hlc::system(1);
        let t = hlc.now();
        assert!(t.physical_ms > T0, "{t}");
        assert_eq!(hlc.node(), 1);
    }

    #[derive(Debug, Clone)]
    enum Event {
        Tick(u64),
        Now,
        Observe(i64, u32),
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0u64..20).prop_map(Event::Tick),
            Just(Event::Now),
            (-2_000i64..2_000, 0u32..5).prop_map(|(d, c)| Event::Observe(d, c)),
        ]
    }

    proptest! {
        /// Monotonic, causal, and bounded: the three properties the KV relies on.
        #[test]
        fn hlc_is_monotonic_causal_and_bounded(events in proptest::collection::vec(arb_event(), 1..200)) {
            let (mut hlc, clock) = manual(1);
            let mut prev = hlc.last();
            for e in events {
                match e {
                    Event::Tick(ms) => clock.advance(Duration::from_millis(ms)),
                    Event::Now => {
                        let t = hlc.now();
                        prop_assert!(t > prev);
                        prev = t;
                    }
                    Event::Observe(delta, c) => {
                        let remote = ts(clock.now_ms().saturating_add_signed(delta), c);
                        match hlc.observe(remote) {
                            Ok(t) => {
                                prop_assert!(t > prev);
                                prop_assert!(t > remote);
                                prev = t;
                            }
                            Err(_) => prop_assert_eq!(hlc.last(), prev),
                        }
                    }
                }
                prop_assert!(hlc.last().physical_ms <= hlc.physical_ms() + 500);
            }
        }
    }
}
