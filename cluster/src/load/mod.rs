//! `faultline load`: open-loop traffic against the demo's gateways, with a client-side
//! history that lets the KV checkers prove lost writes and stale reads.
//!
//! ```text
//!  seed ─► Arrivals (when) ──► the shell sleeps until each arrival, then ─┬─ in flight < max ─► spawn one task
//!  seed ─► Planner  (what) ──► POST a new order / GET a recent (or hot) one  └─ else ─► shed (counted)
//!             ▲                                                                     │
//!             │ orders known written           task: OrderHistory::write/read (invoke)
//!             │                                      GatewayClient (client span, traceparent, x-correlation-id)
//!             └─────────────── Verdict ◄── judge ◄── Reply (status + JSON body, or timeout / connect / transport)
//!                                 │                  │
//!                                 ▼                  ▼
//!                              Tally ─► Summary    History<KvOp, KvRet> ─► JSON lines (--history)
//! ```
//!
//! Pure cores, thin shell (STYLE.md): [`arrivals`], [`mix`], [`judge`], [`history`] and
//! [`tally`] are synchronous and deterministic given their inputs; [`client`] is the one
//! async piece here (the spans must come from this crate to be exported, see
//! [`crate::telemetry`]); the scheduling loop, signals and printing live in the binary
//! (`src/cmd/load.rs`).

pub mod arrivals;
pub mod client;
pub mod history;
pub mod judge;
pub mod mix;
pub mod tally;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use arrivals::{ArrivalProcess, Arrivals};
pub use client::GatewayClient;
pub use history::{DEFAULT_QUORUM, Invoked, OrderHistory, order_key};
pub use judge::{Reply, Verdict};
pub use mix::{Mix, NewOrder, OrderRead, Planned, Planner, Request, fresh_seed, run_tag};
pub use tally::{HistoryFile, Latency, OpSummary, Run, Summary, Tally};

/// The two operations the load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Op {
    /// `POST /orders`: a new order.
    CreateOrder,
    /// `GET /orders/{id}`: an order this run created.
    ReadOrder,
}

impl Op {
    pub const ALL: [Op; 2] = [Op::CreateOrder, Op::ReadOrder];

    /// The name of the operation's client span, and of its row in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateOrder => "POST /orders",
            Op::ReadOrder => "GET /orders/{id}",
        }
    }

    /// Position in [`Op::ALL`], for per-operation arrays.
    pub fn index(self) -> usize {
        match self {
            Op::CreateOrder => 0,
            Op::ReadOrder => 1,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a load cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("a rate of {rate} requests/s is not usable: expected more than 0 and at most {max}")]
    Rate { rate: f64, max: f64 },
    #[error("the {what} share {value} is not a fraction between 0 and 1")]
    Share { what: &'static str, value: f64 },
    #[error("reads need at least one recent order to choose from (got a window of 0)")]
    ReadWindow,
    #[error(
        "{text:?} is not a gateway address: {reason} (expected HOST:PORT, e.g. 127.0.0.1:8080)"
    )]
    Target { text: String, reason: &'static str },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// A gateway the load is sent to: `HOST:PORT` (an `http://` prefix is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As it goes in a URL (`127.0.0.1`, `[::1]`, `gw.local`).
    authority_host: String,
    /// As `server.address` records it (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `http://HOST:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.authority_host, self.port)
    }
}

impl FromStr for Target {
    type Err = LoadError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| LoadError::Target {
            text: text.to_owned(),
            reason,
        };
        let bare = text.trim();
        let bare = bare.strip_prefix("http://").unwrap_or(bare);
        let bare = bare.strip_suffix('/').unwrap_or(bare);
        if bare.contains('/') || bare.contains("://") {
            return Err(invalid("only an address, without a path or another scheme"));
        }
        let (host, port) = bare.rsplit_once(':').ok_or_else(|| invalid("no port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid("the port is not a number"))?;
        if port == 0 {
            return Err(invalid("port 0 is not a gateway's port"));
        }
        let plain = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if plain.is_empty() {
            return Err(invalid("no host"));
        }
        if plain.contains(':') && plain == host {
            return Err(invalid("an IPv6 address goes in brackets, [::1]:8080"));
        }
        Ok(Target {
            authority_host: host.to_owned(),
            host: plain.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.authority_host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_host_and_port() {
        let t: Target = "127.0.0.1:8080".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        assert_eq!(t.base_url(), "http://127.0.0.1:8080");
        let t: Target = "http://gw.local:81/".parse().unwrap();
        assert_eq!(t.to_string(), "gw.local:81");
        let t: Target = "[::1]:9000".parse().unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.base_url(), "http://[::1]:9000");
        for bad in [
            "127.0.0.1",
            ":80",
            "host:x",
            "host:0",
            "::1:80",
            "https://h:1",
            "h:1/orders",
        ] {
            let err = bad.parse::<Target>().unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn ops_have_span_names_and_indices() {
        assert_eq!(Op::CreateOrder.to_string(), "POST /orders");
        assert_eq!(Op::ReadOrder.name(), "GET /orders/{id}");
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
    }
}
