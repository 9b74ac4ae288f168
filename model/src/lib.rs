//! faultline's shared model: what every other crate speaks.
//!
//! ```text
//!  capture files ──► read ──┐
//!  OTLP over the wire ──► receiver ──┼──► Span ──► trace::assemble ──► analyzers, TUI
//!                                    └──► write (OTLP JSON lines: faultline's capture format)
//!  w3c: traceparent / tracestate / baggage / correlation ids, for the agent and the nodes
//! ```
//!
//! Nothing here knows about a UI, polars, or the demo cluster.

#[doc(hidden)]
pub mod fuzzing;
pub mod inspect;
pub mod prometheus;
pub mod read;
pub mod receiver;
pub mod span;
pub mod synth;
pub mod trace;
pub mod w3c;
pub mod write;

pub use read::{Compression, Format, Location, ReadError, ReadErrorKind, ReadOptions, ReadSummary};
pub use span::{
    Attributes, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId, Value,
};
