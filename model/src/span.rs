//! The span model every part of faultline speaks.
//!
//! ```text
//!  capture readers ─┐
//!  OTLP receiver ───┼─► Span (this module) ─► trace assembly ─► analyzers / TUI / writer
//!  agent, nodes ────┘
//! ```
//!
//! It follows the OpenTelemetry data model closely enough that an OTLP span converts
//! without loss, and loosely enough that Jaeger and Zipkin spans fit too. Times are
//! nanoseconds since the Unix epoch. Resource and scope are shared between the spans
//! of one batch (`Arc`), since a capture repeats them for every span.

use std::fmt;
use std::sync::Arc;

/// A 16-byte trace id. The all-zero id is invalid in W3C and OTLP; it can still be
/// constructed so that readers can report it rather than lose it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id. The all-zero id is invalid.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

/// Why a hex id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("expected {expected} hex digits, found {found} characters")]
    Length { expected: usize, found: usize },
    #[error("'{0}' is not a hex digit")]
    NotHex(char),
}

/// Hex digit values by byte, `0xff` for "not a hex digit": three ids per span make this
/// a hot path of every text reader.
const HEX_VALUES: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

fn hex_value(byte: u8) -> Option<u8> {
    let value = HEX_VALUES[usize::from(byte)];
    (value != 0xff).then_some(value)
}

/// Decodes hex of either case into `out`; `text` must have exactly `2 * out.len()` digits.
pub(crate) fn decode_hex_into(text: &str, out: &mut [u8]) -> Result<(), IdError> {
    let bytes = text.as_bytes();
    if bytes.len() != out.len() * 2 {
        let found = text.chars().count();
        if found == out.len() * 2 {
            // Right length in characters, so some are multi-byte: name the first of them.
            let bad = text.chars().find(|c| !c.is_ascii_hexdigit()).unwrap_or('?');
            return Err(IdError::NotHex(bad));
        }
        return Err(IdError::Length {
            expected: out.len() * 2,
            found,
        });
    }
    // Report the first offending character as the user sees it, even if not ASCII.
    let not_hex = || IdError::NotHex(text.chars().find(|c| !c.is_ascii_hexdigit()).unwrap_or('?'));
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let hi = hex_value(pair[0]).ok_or_else(not_hex)?;
        let lo = hex_value(pair[1]).ok_or_else(not_hex)?;
        *slot = (hi << 4) | lo;
    }
    Ok(())
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = HEX_DIGITS[usize::from(b >> 4)];
        buf[2 * i + 1] = HEX_DIGITS[usize::from(b & 0xf)];
    }
    // Only ASCII hex digits were written, so this cannot fail; fall back to an error anyway.
    f.write_str(std::str::from_utf8(&buf[..bytes.len() * 2]).map_err(|_| fmt::Error)?)
}

impl TraceId {
    pub const INVALID: TraceId = TraceId([0; 16]);

    /// Parses 32 hex digits of either case. Jaeger and Zipkin also use 64-bit trace ids
    /// (16 digits); those are widened with leading zeros, as both projects do when they
    /// meet OTLP.
    pub fn from_hex(text: &str) -> Result<Self, IdError> {
        let mut id = [0u8; 16];
        match text.len() {
            16 => decode_hex_into(text, &mut id[8..])?,
            _ => decode_hex_into(text, &mut id)?,
        }
        Ok(TraceId(id))
    }

    /// From raw bytes as OTLP protobuf carries them; `None` unless exactly 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(TraceId)
    }

    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// A random, valid trace id (W3C level 2 "random" trace ids: all 16 bytes random).
    pub fn random() -> Self {
        loop {
            let id = TraceId(rand::random());
            if id.is_valid() {
                return id;
            }
        }
    }
}

impl SpanId {
    pub const INVALID: SpanId = SpanId([0; 8]);

    /// Parses 16 hex digits of either case.
    pub fn from_hex(text: &str) -> Result<Self, IdError> {
        let mut id = [0u8; 8];
        decode_hex_into(text, &mut id)?;
        Ok(SpanId(id))
    }

    /// From raw bytes as OTLP protobuf carries them; `None` unless exactly 8 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(SpanId)
    }

    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }

    /// A random, valid span id.
    pub fn random() -> Self {
        loop {
            let id = SpanId(rand::random());
            if id.is_valid() {
                return id;
            }
        }
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}
impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}
impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

/// OTLP span kinds (numbers as in the protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    #[default]
    Unspecified = 0,
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    /// From the OTLP enum number; unknown numbers become `Unspecified` (the protocol says
    /// receivers must tolerate values from newer versions).
    pub fn from_otlp(number: i64) -> Self {
        match number {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// From a name in any of the spellings found in the wild: `SPAN_KIND_SERVER`,
    /// `SERVER`, `server`.
    pub fn from_name(name: &str) -> Option<Self> {
        let bare = name.strip_prefix("SPAN_KIND_").unwrap_or(name);
        Some(match bare.to_ascii_lowercase().as_str() {
            "unspecified" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// OTLP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StatusCode {
    #[default]
    Unset = 0,
    Ok = 1,
    Error = 2,
}

impl StatusCode {
    pub fn from_otlp(number: i64) -> Self {
        match number {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// `STATUS_CODE_ERROR`, `ERROR`, `error`, …
    pub fn from_name(name: &str) -> Option<Self> {
        let bare = name.strip_prefix("STATUS_CODE_").unwrap_or(name);
        Some(match bare.to_ascii_lowercase().as_str() {
            "unset" => StatusCode::Unset,
            "ok" => StatusCode::Ok,
            "error" => StatusCode::Error,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

/// An attribute value: the OTLP `AnyValue`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// An `AnyValue` with nothing set (OTLP allows it; it means "empty").
    #[default]
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<KeyValue>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Integers, and strings holding integers (Jaeger and Zipkin carry numbers as text).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(d) => Some(*d),
            Value::Int(i) => Some(*i as f64),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Empty => Ok(()),
            Value::Str(s) => f.write_str(s),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d}"),
            Value::Bytes(b) => {
                use base64::Engine as _;
                f.write_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Value::Array(values) => {
                f.write_str("[")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, kv) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", kv.key, kv.value)?;
                }
                f.write_str("}")
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyValue {
    pub key: String,
    pub value: Value,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// An ordered attribute list. Lookups are linear: spans carry a handful of attributes,
/// and keeping input order makes a round trip through a capture file exact.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Attributes(pub Vec<KeyValue>);

impl Attributes {
    pub fn new() -> Self {
        Attributes(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// Sets `key`, replacing an existing value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value,
            None => self.0.push(KeyValue { key, value }),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeyValue> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<KeyValue> for Attributes {
    fn from_iter<I: IntoIterator<Item = KeyValue>>(iter: I) -> Self {
        Attributes(iter.into_iter().collect())
    }
}

/// A timestamped annotation on a span (OTLP event, Jaeger log, Zipkin annotation).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub time_ns: u64,
    pub name: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

/// A link to a span in this or another trace (e.g. producer → consumer).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// What produced the spans: `service.name` and friends.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
}

/// The OpenTelemetry default when a resource names no service.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

impl Resource {
    pub fn with_service(name: impl Into<String>) -> Self {
        Resource {
            attributes: Attributes(vec![KeyValue::new("service.name", name.into())]),
            ..Resource::default()
        }
    }

    /// `service.name`, or `unknown_service` as the OpenTelemetry spec prescribes.
    pub fn service_name(&self) -> &str {
        self.attributes
            .get_str("service.name")
            .unwrap_or(UNKNOWN_SERVICE)
    }
}

/// The instrumentation scope (library) that produced the spans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
}

/// One span. Field names follow OTLP.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span (OTLP's empty `parentSpanId`).
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    /// OTLP `flags`: W3C trace flags in bits 0–7, "has remote parent" bits 8–9.
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status: Status,
    pub resource: Arc<Resource>,
    pub scope: Arc<Scope>,
}

impl Span {
    /// A span with the given identity and everything else empty; handy in tests and in
    /// code that fills the fields one by one.
    pub fn new(trace_id: TraceId, span_id: SpanId, name: impl Into<String>) -> Self {
        Span {
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: name.into(),
            kind: SpanKind::Unspecified,
            start_ns: 0,
            end_ns: 0,
            attributes: Attributes::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Status::default(),
            resource: Arc::default(),
            scope: Arc::default(),
        }
    }

    pub fn service_name(&self) -> &str {
        self.resource.service_name()
    }

    /// Duration in nanoseconds; zero (not a wrap-around) when the end precedes the start.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_either_case_and_print_lowercase() {
        let id = TraceId::from_hex("5B8EFFF798038103D269B633813FC60C").unwrap();
        assert_eq!(id.to_string(), "5b8efff798038103d269b633813fc60c");
        assert_eq!(
            SpanId::from_hex("EEE19B7EC3C1B174").unwrap().to_string(),
            "eee19b7ec3c1b174"
        );
    }

    #[test]
    fn sixty_four_bit_trace_ids_are_widened() {
        let id = TraceId::from_hex("463ac35c9f6413ad").unwrap();
        assert_eq!(id.to_string(), "0000000000000000463ac35c9f6413ad");
    }

    #[test]
    fn bad_ids_are_reported() {
        assert_eq!(
            SpanId::from_hex("abc"),
            Err(IdError::Length {
                expected: 16,
                found: 3
            })
        );
        assert_eq!(
            SpanId::from_hex("zz00000000000000"),
            Err(IdError::NotHex('z'))
        );
        assert_eq!(
            SpanId::from_hex("000000000000000é"),
            Err(IdError::NotHex('é'))
        );
        assert_eq!(
            SpanId::from_hex("0000000000000é0"),
            Err(IdError::NotHex('é'))
        );
        assert!(
            !TraceId::from_hex("00000000000000000000000000000000")
                .unwrap()
                .is_valid()
        );
    }

    #[test]
    fn kinds_and_status_from_names() {
        assert_eq!(
            SpanKind::from_name("SPAN_KIND_SERVER"),
            Some(SpanKind::Server)
        );
        assert_eq!(SpanKind::from_name("CLIENT"), Some(SpanKind::Client));
        assert_eq!(SpanKind::from_name("producer"), Some(SpanKind::Producer));
        assert_eq!(SpanKind::from_name("sideways"), None);
        assert_eq!(SpanKind::from_otlp(99), SpanKind::Unspecified);
        assert_eq!(
            StatusCode::from_name("STATUS_CODE_ERROR"),
            Some(StatusCode::Error)
        );
    }

    #[test]
    fn service_name_defaults_per_spec() {
        assert_eq!(Resource::default().service_name(), "unknown_service");
        assert_eq!(Resource::with_service("gateway").service_name(), "gateway");
    }
}
