//! Why a toxic was refused. The admin API answers 400 with the `Display` text, so each
//! message names the field and the rule in words a user can act on.

use super::spec::ToxicType;

/// A toxic that cannot be added, or an admin request that cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToxicError {
    /// Not JSON, not an object, an unknown field (typos are caught here) or a duplicated
    /// one; serde_json's message carries the line and column.
    #[error("malformed toxic JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error(
        "missing `type`: expected one of latency, error, reset, blackhole, bandwidth, partition"
    )]
    MissingType,
    #[error(
        "unknown toxic type `{found}`: expected one of latency, error, reset, blackhole, bandwidth, partition"
    )]
    UnknownType { found: String },
    #[error("`id` is assigned by the agent; leave it out")]
    IdAssigned,
    #[error("a {kind} toxic needs `{field}`")]
    MissingField {
        kind: ToxicType,
        field: &'static str,
    },
    #[error("`{field}` does not apply to a {kind} toxic")]
    NotApplicable {
        kind: ToxicType,
        field: &'static str,
    },
    #[error("`{field}` must be {expected}, got {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("`{field}` must be a whole number (no fraction or exponent), got {value}")]
    NotAnInteger { field: &'static str, value: String },
    #[error("`{field}` must not be empty")]
    Empty { field: &'static str },
    #[error("`direction` must be `inbound` or `outbound`, got `{found}`")]
    InvalidDirection { found: String },
    #[error("`probability` must be between 0.0 and 1.0 inclusive, got {value}")]
    ProbabilityOutOfRange { value: f64 },
    #[error("`{field}` must not be negative, got {value}")]
    Negative { field: &'static str, value: i128 },
    #[error("`{field}` must be greater than 0, got {value}")]
    NotPositive { field: &'static str, value: i128 },
    #[error("`{field}` must be at most {max}, got {value}")]
    TooLarge {
        field: &'static str,
        value: i128,
        max: u64,
    },
    #[error("a latency toxic with `latency_ms` 0 and `jitter_ms` 0 has no effect")]
    NoEffect,
    #[error("`status` must be an HTTP error status in 400..=599, got {value}")]
    StatusOutOfRange { value: i128 },
    #[error("`peers` of a partition toxic must list at least one peer")]
    EmptyPartition,
    #[error("`peers` lists `{peer}` more than once")]
    DuplicatePeer { peer: String },
    #[error("`route` `{route}` is not a valid pattern: {reason}")]
    RoutePattern { route: String, reason: &'static str },
    #[error("the agent holds at most {max} toxics; remove some first")]
    TooManyToxics { max: usize },
    #[error("`{found}` is not a toxic id (expected `t-` and a number, e.g. `t-1`)")]
    InvalidId { found: String },
}
