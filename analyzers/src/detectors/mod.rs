//! One detector per file; [`all`] is the set an analysis runs.
//!
//! Generic detectors read OpenTelemetry semantic conventions and trace structure and
//! work on anyone's traces (RED, retries, cascades, critical path, reachability, clock
//! skew). The cluster-specific ones read the `raft.*`, `kv.*`, `queue.*` and
//! `messaging.*` attributes of docs/conventions.md and find nothing (rather than
//! something wrong) where those are absent.

pub mod breaker;
pub mod cascade;
pub mod clock_skew;
pub mod consumer_lag;
pub mod critical_path;
pub mod dead_letters;
pub mod election;
pub mod hot_key;
pub mod quorum;
pub mod reachability;
pub mod red;
pub mod replication;
pub mod retry;
pub mod stale_reads;

use crate::detector::Detector;

/// Every detector, in the order their findings are usually read.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(red::Red),
        Box::new(retry::RetryAmplification),
        Box::new(cascade::CascadingFailure),
        Box::new(critical_path::CriticalPath),
        Box::new(reachability::Reachability),
        Box::new(election::Elections),
        Box::new(quorum::QuorumFailures),
        Box::new(replication::ReplicationLag),
        Box::new(stale_reads::StaleReads),
        Box::new(clock_skew::ClockSkew),
        Box::new(hot_key::HotKeys),
        Box::new(consumer_lag::ConsumerLag),
        Box::new(dead_letters::DeadLetters),
        Box::new(breaker::BreakerState),
    ]
}
