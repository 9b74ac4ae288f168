//! The demo cluster: one `faultline node` process per node, each behind its sidecar
//! agent.
//!
//! ```text
//!  client ─► agent (inbound) ─► node HTTP API ─┬─► Raft (openraft): metadata, leases + fencing, queues + DLQ
//!                                              └─► quorum KV coordinator ─► replicas (via the agent's outbound)
//! ```
//!
//! Pure cores, thin shells (STYLE.md):
//! - [`sm`]: the Raft state machine — commands in, responses out, deterministic;
//! - [`kv`]: the quorum KV — ring, hybrid logical clock, versions, replica storage, quorum decisions;
//! - [`check`]: history checkers — linearizability, queue at-least-once, KV lost writes.

pub mod check;
pub mod kv;
pub mod load;
pub mod node;
pub mod raft;
pub mod remedies;
pub mod resilience;
pub mod scenarios;
pub mod services;
pub mod sm;
pub mod supervisor;
pub mod telemetry;
