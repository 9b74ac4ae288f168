//! Raft RPCs over HTTP, through the node's sidecar agent.
//!
//! ```text
//!  openraft ─vote/append/snapshot─► RaftNetwork ─POST http://node-2/raft/append─► agent outbound ─► node-2's agent ─► node-2
//! ```
//!
//! Membership stores peers by *name* (`node-2`), never by address: with an agent the
//! request goes to the agent's outbound listener as an HTTP proxy request naming the
//! peer, and the agent routes it (so partitions and delays made at the agents act on
//! Raft too). Without an agent (`Route::Direct`) names are looked up in a table.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, EntryPayload, RaftMetrics};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::{NodeId, TypeConfig};
use crate::telemetry;

/// How this node reaches its peers.
#[derive(Debug, Clone)]
pub enum Route {
    /// Through the sidecar agent's outbound listener (an HTTP proxy that routes by name).
    Via(SocketAddr),
    /// Straight to each peer: name → address.
    Direct(HashMap<String, SocketAddr>),
}

impl Route {
    /// An HTTP client and the base URL for peer `name`.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(1));
        match self {
            Route::Via(agent) => builder
                .proxy(reqwest::Proxy::http(format!("http://{agent}"))?)
                .build(),
            Route::Direct(_) => builder.build(),
        }
    }

    /// The URL of `path` on peer `name`, or `None` for a name the route does not know.
    pub fn url(&self, name: &str, path: &str) -> Option<String> {
        match self {
            Route::Via(_) => Some(format!("http://{name}{path}")),
            Route::Direct(peers) => peers.get(name).map(|addr| format!("http://{addr}{path}")),
        }
    }
}

/// Raft's metrics, once Raft is running (the network exists before it does).
pub type MetricsSlot = Arc<OnceLock<watch::Receiver<RaftMetrics<NodeId, BasicNode>>>>;

/// Creates one connection object per peer; they share the HTTP client's pool.
#[derive(Debug, Clone)]
pub struct Network {
    route: Route,
    client: reqwest::Client,
    /// This node's clock offset (the clock-skew fault), for the age of entries.
    clock_offset_ms: Arc<AtomicI64>,
    metrics: MetricsSlot,
}

impl Network {
    pub fn new(route: Route, clock_offset_ms: Arc<AtomicI64>) -> Result<Self, reqwest::Error> {
        let client = route.client()?;
        Ok(Network {
            route,
            client,
            clock_offset_ms,
            metrics: MetricsSlot::default(),
        })
    }

    /// Where to put Raft's metrics once it runs.
    pub fn metrics_slot(&self) -> MetricsSlot {
        Arc::clone(&self.metrics)
    }

    /// This node's wall clock with the clock-offset fault applied (ms since the epoch).
    fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        real.saturating_add_signed(self.clock_offset_ms.load(Ordering::Relaxed))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        Connection {
            network: self.clone(),
            target,
            name: node.addr.clone(),
        }
    }
}

/// The way to one peer.
#[derive(Debug)]
pub struct Connection {
    network: Network,
    target: NodeId,
    /// The peer's name (what `BasicNode::addr` holds in this cluster).
    name: String,
}

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(url) = self.network.route.url(&self.name, path) else {
            let e = std::io::Error::other(format!("no route to peer {:?}", self.name));
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        };
        let mut headers = reqwest::header::HeaderMap::new();
        telemetry::inject(&tracing::Span::current(), &mut headers);
        let response = self
            .network
            .client
            .post(url)
            .timeout(option.hard_ttl())
            .headers(headers)
            .json(request)
            .send()
            .await
            .map_err(|e| {
                // No answer at all — refused, reset or dropped (a partition at the agents
                // drops the exchange) — is an unreachable peer, for which openraft backs
                // off instead of retrying at once: an isolated leader would otherwise
                // resend thousands of appends a second. A timeout stays a network error.
                if e.is_timeout() {
                    RPCError::Network(NetworkError::new(&e))
                } else {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let e = std::io::Error::other(format!("{status}: {}", body.trim()));
            // The agent answers 502 for a peer it cannot reach: back off as for a
            // refused connection.
            return Err(if status == reqwest::StatusCode::BAD_GATEWAY {
                RPCError::Unreachable(Unreachable::new(&e))
            } else {
                RPCError::Network(NetworkError::new(&e))
            });
        }
        let result: Result<Resp, RaftError<NodeId, E>> = response
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl Connection {
    /// The client span of an append carrying entries: who, how many, and how far behind
    /// the follower is — in entries (the leader's last index minus what the follower is
    /// known to hold) and in time (the age of the oldest entry sent, by the leader's clock).
    fn append_span(&self, request: &AppendEntriesRequest<TypeConfig>) -> tracing::Span {
        let leader = request.vote.leader_id();
        let prev = request.prev_log_id.map_or(0, |l| l.index);
        let last_log = self
            .network
            .metrics
            .get()
            .and_then(|m| m.borrow().last_log_index)
            .unwrap_or(0)
            .max(request.entries.last().map_or(0, |e| e.log_id.index));
        let oldest_ms = request.entries.iter().find_map(|e| match &e.payload {
            EntryPayload::Normal(command) => Some(command.now_ms),
            EntryPayload::Blank | EntryPayload::Membership(_) => None,
        });
        let lag_ms = oldest_ms.map(|at| self.network.now_ms().saturating_sub(at));
        tracing::info_span!(
            "raft.append_entries",
            otel.kind = "client",
            otel.status_code = Empty,
            error.type = Empty,
            raft.node_id = leader.node_id,
            raft.leader_id = leader.node_id,
            raft.term = leader.term,
            raft.peer_id = self.target,
            raft.entries = request.entries.len(),
            raft.prev_log_index = prev,
            raft.commit_index = request.leader_commit.map_or(0, |l| l.index),
            raft.lag.entries = last_log.saturating_sub(prev),
            raft.lag.ms = lag_ms,
            raft.match_index = Empty,
            raft.append.outcome = Empty,
            server.address = self.name.as_str(),
        )
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    /// Between retries to an unreachable peer: two heartbeats. openraft's default (500 ms)
    /// would leave a healed follower without heartbeats for longer than its election
    /// timeout (300–600 ms), so it would start an election right after every heal.
    fn backoff(&self) -> openraft::network::Backoff {
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(150)))
    }

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        if request.entries.is_empty() {
            // A heartbeat: not traced (the agents see it; a span per 75 ms per follower
            // would bury everything else).
            return self.call("/raft/append", &request, &option).await;
        }
        let span = self.append_span(&request);
        let result = self
            .call("/raft/append", &request, &option)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(AppendEntriesResponse::Success) => {
                if let Some(last) = request.entries.last() {
                    span.record("raft.match_index", last.log_id.index);
                }
            }
            Ok(AppendEntriesResponse::PartialSuccess(matched)) => {
                span.record("raft.match_index", matched.map_or(0, |l| l.index));
            }
            Ok(AppendEntriesResponse::Conflict) => {
                span.record("raft.append.outcome", "conflict");
            }
            Ok(AppendEntriesResponse::HigherVote(_)) => {
                span.record("raft.append.outcome", "higher_vote");
            }
            Err(e) => {
                span.record("otel.status_code", "error");
                span.record(
                    "error.type",
                    match e {
                        RPCError::Timeout(_) => "timeout",
                        RPCError::Unreachable(_) => "unreachable",
                        RPCError::PayloadTooLarge(_) => "payload_too_large",
                        RPCError::Network(_) => "network",
                        RPCError::RemoteError(_) => "remote",
                    },
                );
            }
        }
        result
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("/raft/snapshot", &request, &option).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("/raft/vote", &request, &option).await
    }
}
