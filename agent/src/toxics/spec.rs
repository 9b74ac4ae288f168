//! The toxic model, its JSON form and its validation.
//!
//! ```text
//!  body ─► RawToxic (serde: syntax, unknown and duplicate fields)
//!       ─► ToxicSpec (shape: known type, the fields that type takes, JSON types)
//!       ─► ToxicSpec::validate (ranges and patterns; also run by `Toxics::add`)
//! ```
//!
//! Every field of the raw form is an untyped JSON value so that each type or range
//! error names its field (serde's own messages for a mistyped field do not).

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use http::StatusCode;
use serde::de::{self, Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::ToxicError;
use crate::Direction;

/// The largest `latency_ms` or `jitter_ms` accepted: one hour. A longer hold is what
/// `blackhole` is for; a larger number is almost always a typo.
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// The type of a toxic without its parameters: the `type` tag in JSON and the label
/// the metrics layer counts activations by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToxicType {
    Latency,
    Error,
    Reset,
    Blackhole,
    Bandwidth,
    Partition,
}

impl ToxicType {
    /// Every type, in the order the documentation lists them.
    pub const ALL: [ToxicType; 6] = [
        ToxicType::Latency,
        ToxicType::Error,
        ToxicType::Reset,
        ToxicType::Blackhole,
        ToxicType::Bandwidth,
        ToxicType::Partition,
    ];

    /// The JSON `type` tag, also the metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ToxicType::Latency => "latency",
            ToxicType::Error => "error",
            ToxicType::Reset => "reset",
            ToxicType::Blackhole => "blackhole",
            ToxicType::Bandwidth => "bandwidth",
            ToxicType::Partition => "partition",
        }
    }

    fn parse(s: &str) -> Option<ToxicType> {
        ToxicType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ToxicType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a toxic does to a request it fires on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToxicKind {
    /// Delay the request by `latency_ms` ± a uniform draw in `[-jitter_ms, +jitter_ms]`,
    /// never below zero.
    Latency { latency_ms: u64, jitter_ms: u64 },
    /// Answer with `status` (400..=599) without forwarding.
    Error { status: StatusCode },
    /// Close the connection without a response.
    Reset,
    /// Accept the request and never answer; the caller's timeout ends it.
    Blackhole,
    /// Throttle the response body to `bytes_per_sec`.
    Bandwidth { bytes_per_sec: NonZeroU64 },
    /// The listed peers are unreachable: exchanges with them are refused.
    Partition { peers: Vec<String> },
}

impl ToxicKind {
    /// The type tag of this kind.
    pub fn toxic_type(&self) -> ToxicType {
        match self {
            ToxicKind::Latency { .. } => ToxicType::Latency,
            ToxicKind::Error { .. } => ToxicType::Error,
            ToxicKind::Reset => ToxicType::Reset,
            ToxicKind::Blackhole => ToxicType::Blackhole,
            ToxicKind::Bandwidth { .. } => ToxicType::Bandwidth,
            ToxicKind::Partition { .. } => ToxicType::Partition,
        }
    }
}

/// A toxic as a client asks for it: everything but the id.
///
/// Built from JSON by [`ToxicSpec::from_json`] (or serde), or in code; either way
/// [`Toxics::add`](super::Toxics::add) validates it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicSpec {
    /// A human label, shown in listings only.
    pub name: Option<String>,
    /// `None` applies the toxic to both directions.
    pub direction: Option<Direction>,
    /// Only requests with this peer (inbound: the caller's node name, outbound: the
    /// target peer). `None` matches any peer, including an unknown one. Not allowed on a
    /// partition, whose peers are in its `peers` list.
    pub peer: Option<String>,
    /// Only requests whose path is exactly this, or starts with it if it ends in `*`.
    pub route: Option<String>,
    /// The chance, 0.0..=1.0, that the toxic fires on a matching request.
    pub probability: f64,
    pub kind: ToxicKind,
}

impl ToxicSpec {
    /// A spec for `kind` on every request of both directions, always firing.
    pub fn new(kind: ToxicKind) -> ToxicSpec {
        ToxicSpec {
            name: None,
            direction: None,
            peer: None,
            route: None,
            probability: 1.0,
            kind,
        }
    }

    /// Parses and validates an admin API request body. Never panics; a syntax error,
    /// an unknown or duplicated field comes back as [`ToxicError::Json`] with its line
    /// and column, every other problem as the variant naming the field and the rule.
    pub fn from_json(body: &[u8]) -> Result<ToxicSpec, ToxicError> {
        let raw: RawToxic = serde_json::from_slice(body).map_err(ToxicError::Json)?;
        raw.into_spec()
    }

    /// Checks the ranges and patterns that the types do not enforce.
    pub fn validate(&self) -> Result<(), ToxicError> {
        if let Some(name) = &self.name {
            non_empty("name", name)?;
        }
        if let Some(peer) = &self.peer {
            non_empty("peer", peer)?;
        }
        if let Some(route) = &self.route {
            validate_route(route)?;
        }
        // `contains` is false for NaN, so NaN is rejected too.
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(ToxicError::ProbabilityOutOfRange {
                value: self.probability,
            });
        }
        match &self.kind {
            ToxicKind::Latency {
                latency_ms,
                jitter_ms,
            } => {
                at_most("latency_ms", *latency_ms, MAX_DELAY_MS)?;
                at_most("jitter_ms", *jitter_ms, MAX_DELAY_MS)?;
                if *latency_ms == 0 && *jitter_ms == 0 {
                    return Err(ToxicError::NoEffect);
                }
            }
            ToxicKind::Error { status } => {
                if !(status.is_client_error() || status.is_server_error()) {
                    return Err(ToxicError::StatusOutOfRange {
                        value: i128::from(status.as_u16()),
                    });
                }
            }
            ToxicKind::Partition { peers } => {
                if self.peer.is_some() {
                    return Err(ToxicError::NotApplicable {
                        kind: ToxicType::Partition,
                        field: "peer",
                    });
                }
                if peers.is_empty() {
                    return Err(ToxicError::EmptyPartition);
                }
                for (i, peer) in peers.iter().enumerate() {
                    non_empty("peers", peer)?;
                    if peers[..i].contains(peer) {
                        return Err(ToxicError::DuplicatePeer { peer: peer.clone() });
                    }
                }
            }
            ToxicKind::Reset | ToxicKind::Blackhole | ToxicKind::Bandwidth { .. } => {}
        }
        Ok(())
    }

    /// Writes the flat JSON fields (after an `id`, for a [`Toxic`]).
    fn serialize_fields<M: SerializeMap>(&self, map: &mut M) -> Result<(), M::Error> {
        map.serialize_entry("type", self.kind.toxic_type().as_str())?;
        if let Some(name) = &self.name {
            map.serialize_entry("name", name)?;
        }
        if let Some(direction) = self.direction {
            map.serialize_entry("direction", direction.as_str())?;
        }
        if let Some(peer) = &self.peer {
            map.serialize_entry("peer", peer)?;
        }
        if let Some(route) = &self.route {
            map.serialize_entry("route", route)?;
        }
        map.serialize_entry("probability", &self.probability)?;
        match &self.kind {
            ToxicKind::Latency {
                latency_ms,
                jitter_ms,
            } => {
                map.serialize_entry("latency_ms", latency_ms)?;
                map.serialize_entry("jitter_ms", jitter_ms)?;
            }
            ToxicKind::Error { status } => map.serialize_entry("status", &status.as_u16())?,
            ToxicKind::Bandwidth { bytes_per_sec } => {
                map.serialize_entry("bytes_per_sec", bytes_per_sec)?;
            }
            ToxicKind::Partition { peers } => map.serialize_entry("peers", peers)?,
            ToxicKind::Reset | ToxicKind::Blackhole => {}
        }
        Ok(())
    }
}

impl Serialize for ToxicSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.serialize_fields(&mut map)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for ToxicSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawToxic::deserialize(deserializer)?
            .into_spec()
            .map_err(de::Error::custom)
    }
}

/// A toxic's id, assigned by the registry: `t-1`, `t-2`, … Ids are never reused, not
/// even after [`Toxics::clear`](super::Toxics::clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ToxicId(pub(super) u64);

impl fmt::Display for ToxicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t-{}", self.0)
    }
}

impl FromStr for ToxicId {
    type Err = ToxicError;

    /// Parses `t-` followed by decimal digits, as found in `DELETE /toxics/t-3`.
    fn from_str(s: &str) -> Result<ToxicId, ToxicError> {
        let invalid = || ToxicError::InvalidId {
            found: s.to_owned(),
        };
        let digits = s.strip_prefix("t-").ok_or_else(invalid)?;
        // `u64::from_str` accepts a leading `+`; an id never has one.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        digits.parse().map(ToxicId).map_err(|_| invalid())
    }
}

impl Serialize for ToxicId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A toxic in the registry: its id and its validated spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub(super) id: ToxicId,
    pub(super) spec: ToxicSpec,
}

impl Toxic {
    pub fn id(&self) -> ToxicId {
        self.id
    }

    pub fn spec(&self) -> &ToxicSpec {
        &self.spec
    }
}

impl Serialize for Toxic {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        self.spec.serialize_fields(&mut map)?;
        map.end()
    }
}

/// Reads a toxic as the admin API lists it (for clients of that API).
impl<'de> Deserialize<'de> for Toxic {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut raw = RawToxic::deserialize(deserializer)?;
        let id = match raw.id.take() {
            Some(Value::String(id)) => id.parse().map_err(de::Error::custom)?,
            Some(other) => {
                return Err(de::Error::custom(ToxicError::WrongType {
                    field: "id",
                    expected: "a string like `t-1`",
                    found: json_type(&other),
                }));
            }
            None => return Err(de::Error::missing_field("id")),
        };
        let spec = raw.into_spec().map_err(de::Error::custom)?;
        Ok(Toxic { id, spec })
    }
}

/// The JSON object as received. A JSON `null` reads as an absent field.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToxic {
    id: Option<Value>,
    #[serde(rename = "type")]
    toxic_type: Option<Value>,
    name: Option<Value>,
    direction: Option<Value>,
    peer: Option<Value>,
    route: Option<Value>,
    probability: Option<Value>,
    latency_ms: Option<Value>,
    jitter_ms: Option<Value>,
    status: Option<Value>,
    bytes_per_sec: Option<Value>,
    peers: Option<Value>,
}

impl RawToxic {
    fn into_spec(self) -> Result<ToxicSpec, ToxicError> {
        if self.id.is_some() {
            return Err(ToxicError::IdAssigned);
        }
        let toxic_type = match self.toxic_type {
            None => return Err(ToxicError::MissingType),
            Some(Value::String(s)) => {
                ToxicType::parse(&s).ok_or(ToxicError::UnknownType { found: s })?
            }
            Some(other) => {
                return Err(ToxicError::WrongType {
                    field: "type",
                    expected: "a string",
                    found: json_type(&other),
                });
            }
        };
        let fields = KindFields {
            toxic_type,
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            status: self.status,
            bytes_per_sec: self.bytes_per_sec,
            peers: self.peers,
        };
        let spec = ToxicSpec {
            name: self.name.map(|v| string("name", v)).transpose()?,
            direction: self.direction.map(direction).transpose()?,
            peer: self.peer.map(|v| string("peer", v)).transpose()?,
            route: self.route.map(|v| string("route", v)).transpose()?,
            probability: match self.probability {
                None => 1.0,
                Some(v) => number("probability", v)?,
            },
            kind: fields.into_kind()?,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// The type-specific fields of a raw toxic.
struct KindFields {
    toxic_type: ToxicType,
    latency_ms: Option<Value>,
    jitter_ms: Option<Value>,
    status: Option<Value>,
    bytes_per_sec: Option<Value>,
    peers: Option<Value>,
}

impl KindFields {
    fn into_kind(self) -> Result<ToxicKind, ToxicError> {
        let kind = self.toxic_type;
        // A field of another type is a mistake worth reporting, not ignoring.
        let present = [
            ("latency_ms", self.latency_ms.is_some(), ToxicType::Latency),
            ("jitter_ms", self.jitter_ms.is_some(), ToxicType::Latency),
            ("status", self.status.is_some(), ToxicType::Error),
            (
                "bytes_per_sec",
                self.bytes_per_sec.is_some(),
                ToxicType::Bandwidth,
            ),
            ("peers", self.peers.is_some(), ToxicType::Partition),
        ];
        if let Some((field, _, _)) = present.iter().find(|(_, p, owner)| *p && *owner != kind) {
            return Err(ToxicError::NotApplicable { kind, field });
        }
        let required = |field: &'static str, value: Option<Value>| {
            value.ok_or(ToxicError::MissingField { kind, field })
        };
        Ok(match kind {
            ToxicType::Latency => ToxicKind::Latency {
                latency_ms: non_negative("latency_ms", required("latency_ms", self.latency_ms)?)?,
                jitter_ms: match self.jitter_ms {
                    None => 0,
                    Some(v) => non_negative("jitter_ms", v)?,
                },
            },
            ToxicType::Error => {
                let value = integer("status", required("status", self.status)?)?;
                let status = u16::try_from(value)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .ok_or(ToxicError::StatusOutOfRange { value })?;
                ToxicKind::Error { status }
            }
            ToxicType::Reset => ToxicKind::Reset,
            ToxicType::Blackhole => ToxicKind::Blackhole,
            ToxicType::Bandwidth => {
                let value = integer(
                    "bytes_per_sec",
                    required("bytes_per_sec", self.bytes_per_sec)?,
                )?;
                let bytes_per_sec = u64::try_from(value).ok().and_then(NonZeroU64::new).ok_or(
                    ToxicError::NotPositive {
                        field: "bytes_per_sec",
                        value,
                    },
                )?;
                ToxicKind::Bandwidth { bytes_per_sec }
            }
            ToxicType::Partition => match required("peers", self.peers)? {
                Value::Array(items) => ToxicKind::Partition {
                    peers: items
                        .into_iter()
                        .map(|v| string("peers", v))
                        .collect::<Result<_, _>>()?,
                },
                other => {
                    return Err(ToxicError::WrongType {
                        field: "peers",
                        expected: "an array of peer names",
                        found: json_type(&other),
                    });
                }
            },
        })
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(field: &'static str, value: Value) -> Result<String, ToxicError> {
    match value {
        Value::String(s) => {
            non_empty(field, &s)?;
            Ok(s)
        }
        other => Err(ToxicError::WrongType {
            field,
            expected: "a string",
            found: json_type(&other),
        }),
    }
}

fn direction(value: Value) -> Result<Direction, ToxicError> {
    match string("direction", value)?.as_str() {
        "inbound" => Ok(Direction::Inbound),
        "outbound" => Ok(Direction::Outbound),
        other => Err(ToxicError::InvalidDirection {
            found: other.to_owned(),
        }),
    }
}

fn number(field: &'static str, value: Value) -> Result<f64, ToxicError> {
    match &value {
        Value::Number(n) => n.as_f64().ok_or(ToxicError::WrongType {
            field,
            expected: "a number",
            found: "a number out of range",
        }),
        other => Err(ToxicError::WrongType {
            field,
            expected: "a number",
            found: json_type(other),
        }),
    }
}

/// A JSON integer (serde_json holds any integer as an i64 or a u64; anything else,
/// including `200.0` and `1e3`, is a float).
fn integer(field: &'static str, value: Value) -> Result<i128, ToxicError> {
    match &value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else {
                Err(ToxicError::NotAnInteger {
                    field,
                    value: n.to_string(),
                })
            }
        }
        other => Err(ToxicError::WrongType {
            field,
            expected: "a whole number",
            found: json_type(other),
        }),
    }
}

fn non_negative(field: &'static str, value: Value) -> Result<u64, ToxicError> {
    let value = integer(field, value)?;
    u64::try_from(value).map_err(|_| ToxicError::Negative { field, value })
}

fn non_empty(field: &'static str, value: &str) -> Result<(), ToxicError> {
    if value.is_empty() {
        Err(ToxicError::Empty { field })
    } else {
        Ok(())
    }
}

fn at_most(field: &'static str, value: u64, max: u64) -> Result<(), ToxicError> {
    if value > max {
        Err(ToxicError::TooLarge {
            field,
            value: i128::from(value),
            max,
        })
    } else {
        Ok(())
    }
}

fn validate_route(route: &str) -> Result<(), ToxicError> {
    let invalid = |reason| ToxicError::RoutePattern {
        route: route.to_owned(),
        reason,
    };
    if !route.starts_with('/') {
        return Err(invalid("it must start with `/`"));
    }
    if route.find('*').is_some_and(|i| i != route.len() - 1) {
        return Err(invalid(
            "`*` is only allowed as the last character (a prefix match)",
        ));
    }
    Ok(())
}

/// How a route pattern matches a request path: exactly, or as a prefix when it ends
/// in `*` (`/orders*` matches `/orders`, `/orders/7` and `/ordersx`; `/orders/*`
/// does not match `/orders`).
pub(super) fn route_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == pattern,
    }
}
