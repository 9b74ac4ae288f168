//! The quorum key-value store: leaderless, Dynamo style (DeCandia et al., "Dynamo:
//! Amazon's Highly Available Key-value Store", SOSP 2007).
//!
//! Any node coordinates any request. The key's replicas come from a consistent-hash
//! ring; the coordinator sends the request to all N of them and answers the client once
//! W (writes) or R (reads) replied. There is no leader and no consensus: replicas
//! reconcile by **last-writer-wins** on versions from a hybrid logical clock, read
//! repair fixes the replicas a read found behind, and hinted handoff delivers the writes
//! a down replica missed.
//!
//! ```text
//!                      ring.rs: key ─► preference list [B, A, C | D, E …]
//!                                                      N replicas │ stand-ins
//!  PUT key ─► coordinator ─ hlc.rs: version = (HLC ts, node) ─┐
//!                           quorum.rs: WriteRound ◄───────────┤ acks / failures / stand_in
//!                             │ W acked ─► 200 to the client  │
//!                             └ later acks ─► replication lag │
//!                                                             ▼
//!                 replica: store.rs  apply(key, versioned)  (LWW, fsync'd before the ack)
//!                 stand-in: store.rs add_hint(for, key, v) ─► handoff loop ─► replica
//!
//!  GET key ─► coordinator ─ quorum.rs: ReadRound ◄─ copies from all N replicas
//!                             │ R replied ─► newest copy to the client
//!                             ├ older/missing copies ─► read repair (apply on the replica)
//!                             └ newer copy after the answer ─► kv.stale = true
//! ```
//!
//! Everything here is synchronous and deterministic except [`ReplicaStore`] (disk).
//! The HTTP shell (elsewhere) does the sending, the timeouts, the telemetry and the
//! handoff loop. What the shell owes this core:
//! - mint each write's version with [`Hlc::new_version`] (after observing any version
//!   the client sent back, so a client's writes are ordered even across coordinators);
//! - [`Hlc::observe`] every version it receives, and on a replica refuse a write whose
//!   version fails `observe` with [`ClockDrift`] (report it: that is the clock-skew
//!   signal);
//! - acknowledge a replica write only after [`ReplicaStore::apply`] returned;
//! - send reads to all N replicas, so that late answers reveal stale reads and get
//!   repaired.
//!
//! Telemetry attributes (PRODUCT.md §4): `kv.n`, `kv.r`, `kv.w`, `kv.replicas_acked`
//! ([`WriteSummary::acked`]), `kv.version` ([`Version`]'s `Display`), `kv.stale`
//! ([`ReadRound::stale`]).
//!
//! Guarantees and their limits: with R + W > N under [`QuorumPolicy::Strict`] a read
//! answered after a write was acknowledged sees it (proptest in `quorum`). Under the
//! default sloppy quorum, the same holds once hints are delivered. LWW follows real time
//! only for writes further apart than the clocks' drift (bounded by
//! [`Hlc::DEFAULT_MAX_DRIFT`]); concurrent writes to one key are resolved, not merged.

mod hlc;
mod quorum;
mod ring;
mod store;
mod version;

pub use hlc::{ClockDrift, Hlc, HlcTimestamp, ManualClock, PhysicalClock, SystemClock};
pub use quorum::{
    QuorumError, QuorumPolicy, ReadOutcome, ReadRound, ReadStep, Repair, StaleRead, WriteOutcome,
    WriteRound, WriteStep, WriteSummary, WriteTarget,
};
pub use ring::Ring;
pub use store::{Applied, Hint, ReplicaStore, StoreError};
pub use version::{NodeId, ParseVersionError, Version, Versioned};
