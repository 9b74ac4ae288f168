//! The sidecar agent: every node's inbound and outbound HTTP passes through it.
//!
//! ```text
//!  caller ─► [inbound listener] ─► propagation ─► metrics ─► toxics ─► node
//!  node   ─► [outbound listener] ─► propagation ─► metrics ─► toxics ─► peer's agent
//! ```
//!
//! Each concern is a tower layer or a pure core behind one, so that it is testable
//! without sockets (STYLE.md: "a proxy is a stack of layers"; "pure cores, thin shells"):
//! - [`propagation`]: W3C trace context and correlation ids, a fresh span id per hop;
//! - [`toxics`]: the fault engine (validated specs, a registry, per-request decisions);
//! - [`metrics`]: RED metrics and their Prometheus exposition;
//! - [`export`]: proxy spans to OTLP through a bounded queue that never blocks a request;
//! - [`admin`]: the admin API (`/metrics`, `/status`, `/toxics`), loopback unless a token;
//! - [`throttle`]: a bandwidth-capped response body;
//! - [`stall`]: limits on slow clients (a stalled request body, a response nobody reads);
//! - [`access_log`]: one JSON line per request, off the request path;
//! - [`proxy`]: the shell composing them — listeners, routing to peers, forwarding.

/// Which side of its node a request passed through the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Requests arriving for this node (the inbound listener).
    Inbound,
    /// This node's calls to its peers (the outbound listener).
    Outbound,
}

impl Direction {
    /// Every direction, in label order.
    pub const ALL: [Direction; 2] = [Direction::Inbound, Direction::Outbound];

    /// The spelling in JSON and in metric labels: `inbound`, `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// A dense index, for arrays of per-direction counters.
    pub(crate) fn index(self) -> usize {
        match self {
            Direction::Inbound => 0,
            Direction::Outbound => 1,
        }
    }
}

pub mod access_log;
pub mod admin;
pub mod export;
pub mod metrics;
pub mod propagation;
pub mod proxy;
pub mod stall;
pub mod throttle;
pub mod toxics;
