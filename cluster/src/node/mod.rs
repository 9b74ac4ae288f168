//! `faultline node`: one cluster member as a process — Raft, the state machine's API,
//! `/status` and `/metrics` — behind its sidecar agent.
//!
//! ```text
//!  agent inbound ─► axum router ─┬─ POST /raft/{vote,append,snapshot}  (peers' Raft RPCs)
//!                                ├─ POST /sm/ops      (a state-machine operation; followers forward to the leader)
//!                                ├─ POST /sm/query    (a linearizable read: read-index on the leader)
//!                                ├─ PUT|GET|DELETE /kv/{key}, /kv-replica/{key}, /admin/quorum  (the quorum KV: kv/)
//!                                ├─ GET  /status      (JSON)       GET /metrics (Prometheus text)
//!                                └─ PUT  /admin/faults (disk delay, clock offset: the supervisor's hooks)
//!  peers ◄─ agent outbound ◄─ reqwest (proxy = the agent; peers named node-N)
//! ```
//!
//! **Writes on a follower** are forwarded to the leader (through the agents, so a
//! partition between them shows), marked with `x-faultline-forwarded` so that a
//! request is forwarded at most once. Forwarding never applies an operation twice:
//! openraft answers `ForwardToLeader` only for a write this node never proposed (it was
//! not leader) or one whose entry a new leader truncated (never committed); an entry
//! still in the log is answered when it is applied, whoever the leader is by then. With no leader known the answer is 503 with
//! `no_leader`: that is what quorum loss looks like from outside.

pub mod api;
pub mod kv;
pub mod spans;
pub mod status;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

use crate::raft::observe::Elections;
use crate::raft::{self, Member, NodeId, Route};

/// How one node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Every member's id (1..=n), this node included.
    pub members: Vec<NodeId>,
    /// Where Raft's log, snapshot and the KV replica live.
    pub data_dir: PathBuf,
    /// How peers are reached.
    pub route: Route,
    /// Whether this node makes `members` the cluster on first start.
    pub initialize: bool,
}

/// Runtime fault hooks, set by the supervisor through `PUT /admin/faults`.
#[derive(Debug, Default)]
pub struct Hooks {
    /// Added before every durable write (Raft log, KV replica).
    pub disk_delay_ms: Arc<AtomicU64>,
    /// Added to this node's wall clock (HLC and Raft command timestamps).
    pub clock_offset_ms: Arc<AtomicI64>,
}

/// Everything the HTTP API needs, shared by all requests.
pub struct Node {
    pub config: NodeConfig,
    pub name: String,
    pub member: Member,
    pub elections: Elections,
    pub hooks: Hooks,
    /// The quorum KV: this node's replica, and the coordinator of client requests.
    pub kv: kv::Kv,
    pub client: reqwest::Client,
    pub started: Instant,
    /// When each recent last-log index was first seen: for replication lag in time.
    log_times: Mutex<VecDeque<(u64, Instant)>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Raft(#[from] raft::StartError),
    #[error("cannot initialize the cluster: {0}")]
    Initialize(String),
    #[error(transparent)]
    Kv(#[from] crate::kv::StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// How many (index, first seen) samples are kept for replication lag in time.
const LOG_TIMES_KEPT: usize = 4096;

impl Node {
    /// Opens storage, starts Raft (and initializes the cluster if asked).
    pub async fn start(config: NodeConfig) -> Result<Arc<Node>, NodeError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let hooks = Hooks::default();
        let kv = kv::Kv::open(
            &config,
            Arc::clone(&hooks.clock_offset_ms),
            Arc::clone(&hooks.disk_delay_ms),
        )?;
        let member = raft::start(
            config.id,
            &config.data_dir,
            config.route.clone(),
            Arc::clone(&hooks.disk_delay_ms),
            Arc::clone(&hooks.clock_offset_ms),
        )
        .await?;
        if config.initialize {
            raft::initialize(&member.raft, &config.members)
                .await
                .map_err(NodeError::Initialize)?;
        }
        let elections = raft::observe::spawn(config.id, &member.raft);
        let client = config.route.client()?;
        let node = Arc::new(Node {
            name: raft::node_name(config.id),
            config,
            member,
            elections,
            hooks,
            kv,
            client,
            started: Instant::now(),
            log_times: Mutex::new(VecDeque::new()),
        });
        node.watch_log_times();
        kv::spawn_handoff(&node);
        Ok(node)
    }

    /// This node's wall clock, with the clock-offset fault applied (ms since the epoch).
    pub fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        let offset = self.hooks.clock_offset_ms.load(Ordering::Relaxed);
        let shifted = i128::try_from(real).unwrap_or(i128::MAX) + i128::from(offset);
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    }

    /// Records when each new last-log index appears, from Raft's metrics.
    fn watch_log_times(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        let mut watch = self.member.raft.metrics();
        tokio::spawn(async move {
            loop {
                let last = watch.borrow_and_update().last_log_index;
                let Some(node) = node.upgrade() else { return };
                if let Some(last) = last {
                    let mut times = node
                        .log_times
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if times.back().is_none_or(|&(i, _)| i < last) {
                        times.push_back((last, Instant::now()));
                        if times.len() > LOG_TIMES_KEPT {
                            times.pop_front();
                        }
                    }
                }
                drop(node);
                if watch.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// How long a follower whose log matches through `matched` has been behind: the
    /// age of the oldest index it lacks (zero when it has everything).
    pub fn lag_time(&self, matched: Option<u64>, last: Option<u64>) -> Duration {
        let (Some(last), matched) = (last, matched.unwrap_or(0)) else {
            return Duration::ZERO;
        };
        if matched >= last {
            return Duration::ZERO;
        }
        let times = self
            .log_times
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The first sample past `matched` is when the first missing entry appeared.
        times
            .iter()
            .find(|&&(i, _)| i > matched)
            .or(times.front())
            .map_or(Duration::ZERO, |&(_, at)| at.elapsed())
    }

    /// Serves the API on `listener` until `shutdown` completes, then stops Raft.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = api::router(Arc::clone(&self));
        // Small request/response exchanges: without TCP_NODELAY, Nagle's algorithm and
        // delayed ACKs add up to 40 ms to a reply written in two pieces.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = self.member.raft.shutdown().await;
        served
    }

    /// The address of the API once bound, for messages.
    pub fn describe(&self, addr: SocketAddr) -> String {
        format!(
            "{} (Raft id {}) listening on {addr}",
            self.name, self.config.id
        )
    }
}
