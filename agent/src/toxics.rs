//! Toxics: the faults (Toxiproxy style) the agent applies to its node's traffic.
//!
//! This is the pure core: a registry that the admin API edits and that decides, per
//! request, what the proxy does. No sockets, no clock, no sleeping; the async shell
//! executes the [`Decision`] (like openraft's `Engine` emits commands that a runtime
//! runs).
//!
//! ```text
//!  admin API ── POST / DELETE / GET ──► Toxics (add, remove, clear, list)
//!                                          │
//!  request ─► RequestFacts { direction, peer, path } ─► Toxics::decide(rng)
//!                                          │
//!            Decision { delay, bandwidth, terminal, activations }
//!                │         │          │          └─► metrics (never spans)
//!                │         │          └─► partition / reset / blackhole / error status
//!                │         └─► pacing_delay per body chunk
//!                └─► sleep, then forward (or perform the terminal effect)
//! ```
//!
//! # JSON
//!
//! A toxic is one flat object: `type` picks the kind, the scope and the kind's
//! parameters sit beside it, all snake_case. Unknown fields are rejected, so a typo is
//! an error rather than a silently ignored setting; `null` reads as absent.
//!
//! | field | for | meaning |
//! |---|---|---|
//! | `type` | all, required | `latency`, `error`, `reset`, `blackhole`, `bandwidth`, `partition` |
//! | `name` | all | a label for listings |
//! | `direction` | all | `inbound` or `outbound`; absent: both |
//! | `peer` | all but partition | only this peer (inbound: the caller's node, outbound: the target); absent: any peer |
//! | `route` | all | exact path, or a prefix ending in `*` (`/orders*`); absent: any path |
//! | `probability` | all | 0.0..=1.0, default 1.0, rolled per matching request |
//! | `latency_ms`, `jitter_ms` | latency | delay = latency ± uniform jitter, floored at 0; jitter default 0; each ≤ 3 600 000 |
//! | `status` | error | 400..=599 |
//! | `bytes_per_sec` | bandwidth | > 0 |
//! | `peers` | partition | non-empty list of distinct peer names |
//!
//! ```json
//! {"type": "latency", "latency_ms": 200, "jitter_ms": 50,
//!  "direction": "outbound", "peer": "node-2", "probability": 0.5}
//! {"type": "error", "status": 503, "direction": "inbound", "route": "/orders*",
//!  "probability": 0.3, "name": "flaky orders"}
//! {"type": "partition", "peers": ["node-1", "node-2"]}
//! ```
//!
//! The registry adds an `id` (`t-1`, `t-2`, …; never reused) when it lists a toxic;
//! `GET` answers `{"toxics": [{"id": "t-1", "type": "latency", …}, …]}` in insertion
//! order. A request body carrying an `id` is refused.
//!
//! # Decisions
//!
//! Every matching toxic rolls its probability independently. Fired latencies add up,
//! the lowest fired bandwidth cap applies, and of the fired terminal effects the
//! strongest wins: partition > reset > blackhole > error (ties: the toxic added first).
//! A partition refuses the exchange at once, without a response (see
//! [`Terminal::Partition`]); it matches a request whose peer is in its list, in the
//! directions it is scoped to, so one toxic without a `direction` cuts both ways.
//!
//! ```
//! use faultline_agent::toxics::{Direction, RequestFacts, Terminal, ToxicSpec, Toxics};
//! use rand::{SeedableRng, rngs::StdRng};
//!
//! let mut toxics = Toxics::new();
//! let spec = ToxicSpec::from_json(br#"{"type":"partition","peers":["node-3"]}"#)?;
//! let toxic = toxics.add(spec)?;
//! assert_eq!(toxic.id().to_string(), "t-1");
//!
//! let request = RequestFacts { direction: Direction::Outbound, peer: Some("node-3"), path: "/raft/vote" };
//! let decision = toxics.decide(&request, &mut StdRng::seed_from_u64(7));
//! assert_eq!(decision.terminal, Some(Terminal::Partition));
//! # Ok::<(), faultline_agent::toxics::ToxicError>(())
//! ```

mod error;
mod pacing;
mod registry;
mod spec;
#[cfg(test)]
mod tests;

pub use crate::Direction;
pub use error::ToxicError;
pub use pacing::{pacing_chunk_size, pacing_delay};
pub use registry::{Activation, Decision, MAX_TOXICS, RequestFacts, Terminal, Toxics};
pub use spec::{MAX_DELAY_MS, Toxic, ToxicId, ToxicKind, ToxicSpec, ToxicType};
