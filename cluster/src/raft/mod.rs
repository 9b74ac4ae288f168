//! The Raft shell around openraft: types, durable storage, the HTTP network, and the
//! election telemetry openraft does not emit itself.
//!
//! ```text
//!  node API ─client_write(Command)─► openraft::Raft ─► LogStore (redb, fsync) ─► StateMachineStore (sm::StateMachine)
//!                                        │  ▲
//!                          RaftNetwork ──┘  └── POST /raft/{vote,append,snapshot} from peers
//!  metrics watch ─► ElectionObserver ─► election / leader-change events and counters
//! ```
//!
//! **Timeouts.** Heartbeats every 75 ms, elections after 300–600 ms of silence. A
//! follower refuses votes while its leader's lease (the election timeout) runs, so a
//! killed leader is replaced after one to two election timeouts plus a vote round;
//! `faultline bench failover` measures it.
//!
//! **Linearizable reads** use openraft's read-index (`ensure_linearizable`): the leader
//! confirms with a quorum that it is still leader, waits until its state machine has
//! applied up to the commit index it had when the read arrived, then reads locally.
//! We chose read-index over leader leases because a lease is only as safe as the
//! bound on clock drift between nodes — and the clock-skew and pause scenarios break
//! exactly that bound. Read-index costs one heartbeat round per read, which is cheap
//! on loopback.

// openraft's error types (StorageError, ConfigError…) are large by design; they travel
// only on failure paths, never per request.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod observe;
pub mod state_machine;

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};

use openraft::{BasicNode, Config, SnapshotPolicy};
use serde::{Deserialize, Serialize};

pub use log_store::LogStore;
pub use network::{Network, Route};
pub use state_machine::{Applied, AppliedView, StateMachineStore};

/// A node's Raft id: `node-3` is 3.
pub type NodeId = u64;

/// What one log entry's application returned: `None` for blank and membership entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply(pub Option<crate::sm::Response>);

openraft::declare_raft_types!(
    /// The cluster's Raft types: state-machine commands in, replies out, nodes by name.
    pub TypeConfig:
        D = crate::sm::Command,
        R = Reply,
        NodeId = NodeId,
        Node = BasicNode,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;

/// The name peers use for node `id` (and what membership stores as its address).
pub fn node_name(id: NodeId) -> String {
    format!("node-{id}")
}

/// Raft timing and compaction.
pub fn config() -> Result<Arc<Config>, openraft::ConfigError> {
    let config = Config {
        cluster_name: "faultline-demo".to_owned(),
        heartbeat_interval: 75,
        election_timeout_min: 300,
        election_timeout_max: 600,
        // Compact the log every 5 000 entries, keeping 1 000 behind the snapshot so a
        // briefly lagging follower catches up from the log, not a snapshot.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5_000),
        max_in_snapshot_log_to_keep: 1_000,
        ..Config::default()
    };
    Ok(Arc::new(config.validate()?))
}

/// Everything a running Raft member is made of.
#[derive(Clone)]
pub struct Member {
    pub id: NodeId,
    pub raft: Raft,
    pub applied: AppliedView,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a Raft member could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the Raft log {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: redb::Error,
    },
    #[error("cannot restore the Raft snapshot: {0}")]
    Snapshot(#[from] openraft::StorageError<NodeId>),
    #[error("invalid Raft configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("cannot build the HTTP client for Raft: {0}")]
    Client(#[from] reqwest::Error),
    #[error("openraft failed to start: {0}")]
    Raft(#[from] openraft::error::Fatal<NodeId>),
}

/// Opens (or creates) member `id`'s storage in `dir` and starts Raft.
pub async fn start(
    id: NodeId,
    dir: &Path,
    route: Route,
    disk_delay_ms: Arc<AtomicU64>,
    clock_offset_ms: Arc<AtomicI64>,
) -> Result<Member, StartError> {
    let log_path = dir.join("raft-log.redb");
    let log = LogStore::open(&log_path, disk_delay_ms).map_err(|source| StartError::Log {
        path: log_path.display().to_string(),
        source,
    })?;
    let state_machine = StateMachineStore::open(&dir.join("raft-snapshot.json"))?;
    let applied = state_machine.view();
    let network = Network::new(route, clock_offset_ms)?;
    let metrics = network.metrics_slot();
    let raft = Raft::new(id, config()?, network, log, state_machine).await?;
    // The network reads the leader's log position for its replication-lag telemetry.
    let _ = metrics.set(raft.metrics());
    Ok(Member { id, raft, applied })
}

/// Makes `members` the cluster, if it has no membership yet. Safe to call on every
/// start: a cluster that is already initialized is left alone.
pub async fn initialize(raft: &Raft, members: &[NodeId]) -> Result<bool, String> {
    let nodes: std::collections::BTreeMap<NodeId, BasicNode> = members
        .iter()
        .map(|&id| (id, BasicNode::new(node_name(id))))
        .collect();
    match raft.initialize(nodes).await {
        Ok(()) => Ok(true),
        Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
