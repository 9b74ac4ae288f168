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
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, TypeConfig};

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

/// Creates one connection object per peer; they share the HTTP client's pool.
#[derive(Debug, Clone)]
pub struct Network {
    route: Route,
    client: reqwest::Client,
}

impl Network {
    pub fn new(route: Route) -> Result<Self, reqwest::Error> {
        let client = route.client()?;
        Ok(Network { route, client })
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
        let response = self
            .network
            .client
            .post(url)
            .timeout(option.hard_ttl())
            .json(request)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
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

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("/raft/append", &request, &option).await
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
