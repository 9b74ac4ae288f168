//! Jaeger JSON: what Jaeger's query API returns (`{"data": [trace, …]}`), a single trace
//! object as the Jaeger UI saves it, and a bare array of spans with their process inline
//! (or of traces).
//!
//! ```text
//!  {"data": [trace, trace, …], "total", …}  ─┐ one trace at a time:
//!  {"traceID", "spans", "processes"}         ─┤ its spans, one batch per trace
//!  [span, span, …]  (process inline)         ─┘ or chunks of 1024 spans
//!        └─► serde_json streaming: each array element is buffered raw, then decoded,
//!            so a bad element is skipped (lenient) without losing the stream
//! ```
//!
//! The mapping follows the OpenTelemetry Collector's Jaeger translator
//! (`pkg/translator/jaeger/jaegerproto_to_traces.go` in opentelemetry-collector-contrib):
//!
//! | Jaeger | span model |
//! |---|---|
//! | `traceID`, `spanID` (1–32 / 1–16 hex digits, left-padded) | ids; invalid or all-zero rejects the span |
//! | first `CHILD_OF` reference in the same trace (else `parentSpanID`) | parent |
//! | every other reference | link with `opentracing.ref_type` = `child_of` / `follows_from` |
//! | `startTime`, `duration` (µs) | `start_ns`, `end_ns` |
//! | `flags` bit 0 (sampled) | `flags` bit 0 (W3C sampled) |
//! | tag `span.kind` | kind (tag removed) |
//! | tag `error` = true (bool or "true") | status Error, message from `otel.status_description` or `http.status_message` |
//! | tags `otel.status_code` / `otel.status_description` | status (tags removed) |
//! | tag `http.status_code` when neither is set | status Error for 5xx, and for 4xx unless a server span |
//! | tags `otel.scope.name` / `otel.library.name` (+ `.version`) | scope (tags removed) |
//! | tag `w3c.tracestate` | trace state (tag removed) |
//! | other tags, typed (`string`, `bool`, `int64` also as a string, `float64`, `binary` as base64) | attributes, names unchanged |
//! | `logs` `[{timestamp µs, fields}]` | events named by the `event` field, else `log` |
//! | process `serviceName` / `tags` | resource `service.name` / attributes, one shared `Arc` per distinct process |
//!
//! `warnings` are accepted and dropped, as the Collector drops them. A span whose
//! `processID` names no process keeps an empty resource (`unknown_service`).
//!
//! A record (`ReadSummary::records`) is one element of the document: a trace, or one
//! span of a bare span array.
//!
//! The helpers in the last part of this file are shared with the Zipkin reader, which
//! streams the same way and meets the same ids and structural tags.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::json::{
    ArraySeed, Elements, end_of_stream, null_default, parse_element, skip_bom, stop_with,
};
use super::{Location, ReadError, ReadErrorKind, Reading};
use crate::read::Format;
use crate::span::{
    Attributes, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId, Value, decode_hex_into,
};

pub(crate) fn read(input: &mut dyn BufRead, reading: &mut Reading<'_>) -> Result<(), ReadError> {
    skip_bom(input).map_err(|e| reading.error(Location::Input, ReadErrorKind::Io(e)))?;
    let mut stop = None;
    let result = {
        let mut reader = JaegerReader::new(reading);
        let mut de = serde_json::Deserializer::from_reader(input);
        let result = de
            .deserialize_any(Document {
                reader: &mut reader,
                stop: &mut stop,
            })
            .and_then(|()| de.end());
        // Spans decoded before a problem are good; a lenient read keeps them.
        reader.flush();
        result
    };
    end_of_stream(result, stop, reading, Format::JaegerJson)
}

/// The decoding state of one read.
struct JaegerReader<'s, 'r> {
    reading: &'s mut Reading<'r>,
    resources: Resources,
    scopes: Scopes,
    /// Spans of a bare span array, waiting for a full chunk.
    pending: Vec<Span>,
}

impl<'s, 'r> JaegerReader<'s, 'r> {
    fn new(reading: &'s mut Reading<'r>) -> Self {
        JaegerReader {
            reading,
            resources: Resources::default(),
            scopes: Scopes::default(),
            pending: Vec::new(),
        }
    }

    fn flush(&mut self) {
        let spans = std::mem::take(&mut self.pending);
        self.reading.emit(spans);
    }

    fn reject(&mut self, location: Location, reason: String) -> Result<(), ReadError> {
        let error = self.reading.error(location, ReadErrorKind::Invalid(reason));
        self.reading.skip(error)
    }

    /// One trace: its spans (each decoded on its own, so one bad span costs only itself)
    /// and the processes they point at.
    fn trace(
        &mut self,
        location: Location,
        spans: &[&RawValue],
        processes: Option<&RawValue>,
    ) -> Result<(), ReadError> {
        self.reading.summary.records += 1;
        let processes = match processes.map(parse_element::<HashMap<String, ProcessJson>>) {
            None => HashMap::new(),
            Some(Ok(processes)) => processes,
            Some(Err(reason)) => return self.reject(location, format!("processes: {reason}")),
        };
        let mut resources = HashMap::with_capacity(processes.len());
        for (id, process) in processes {
            match self.resource(process) {
                Ok(resource) => resources.insert(id, resource),
                Err(reason) => return self.reject(location, format!("processes.{id}.{reason}")),
            };
        }
        self.flush();
        let mut converted = Vec::with_capacity(spans.len());
        let mut rejected = Vec::new();
        for (i, raw) in spans.iter().enumerate() {
            match parse_element::<SpanJson<'_>>(raw).and_then(|s| self.span(s, &resources)) {
                Ok(span) => converted.push(span),
                Err(reason) => rejected.push(format!("spans[{i}]: {reason}")),
            }
        }
        self.reading.emit(converted);
        for reason in rejected {
            self.reject(location, reason)?;
        }
        Ok(())
    }

    fn resource(&mut self, process: ProcessJson) -> Result<Arc<Resource>, String> {
        let mut attributes = Attributes::new();
        if !process.service_name.is_empty() && process.service_name != NO_SERVICE_NAME {
            attributes
                .0
                .push(KeyValue::new("service.name", process.service_name));
        }
        for (i, tag) in process.tags.into_iter().enumerate() {
            let kv = convert_tag(tag).map_err(|e| format!("tags[{i}]: {e}"))?;
            attributes.insert(kv.key, kv.value);
        }
        Ok(self.resources.share(Resource {
            attributes,
            ..Resource::default()
        }))
    }

    fn span(
        &mut self,
        span: SpanJson<'_>,
        processes: &HashMap<String, Arc<Resource>>,
    ) -> Result<Span, String> {
        let trace_id = parse_trace_id(&span.trace_id).map_err(|e| format!("traceID: {e}"))?;
        let span_id = parse_span_id(&span.span_id).map_err(|e| format!("spanID: {e}"))?;

        let mut parent = None;
        let mut links = Vec::new();
        for (i, r) in span.references.into_iter().enumerate() {
            let ref_trace =
                parse_trace_id(&r.trace_id).map_err(|e| format!("references[{i}].traceID: {e}"))?;
            let Some(ref_span) = parse_parent_id(Some(&r.span_id))
                .map_err(|e| format!("references[{i}].spanID: {e}"))?
            else {
                continue; // an all-zero reference points nowhere
            };
            let child_of = r.ref_type.eq_ignore_ascii_case("CHILD_OF");
            if child_of && parent.is_none() && ref_trace == trace_id {
                parent = Some(ref_span);
                continue;
            }
            let ref_type = if child_of { "child_of" } else { "follows_from" };
            links.push(Link {
                trace_id: ref_trace,
                span_id: ref_span,
                attributes: Attributes(vec![KeyValue::new("opentracing.ref_type", ref_type)]),
                ..Link::default()
            });
        }
        if parent.is_none() {
            parent = parse_parent_id(span.parent_span_id.as_deref())
                .map_err(|e| format!("parentSpanID: {e}"))?;
        }

        let mut attributes = Attributes::new();
        for (i, tag) in span.tags.into_iter().enumerate() {
            let kv = convert_tag(tag).map_err(|e| format!("tags[{i}]: {e}"))?;
            attributes.insert(kv.key, kv.value);
        }
        let kind = take(&mut attributes, "span.kind")
            .and_then(|v| SpanKind::from_name(&v.to_string()))
            .unwrap_or_default();
        let status = jaeger_status(&mut attributes, kind);
        let scope = take_scope(&mut attributes, &mut self.scopes);
        let trace_state = take_trace_state(&mut attributes);

        let mut events = Vec::with_capacity(span.logs.len());
        for (i, log) in span.logs.into_iter().enumerate() {
            let mut fields = Attributes::new();
            for (j, tag) in log.fields.into_iter().enumerate() {
                let kv = convert_tag(tag).map_err(|e| format!("logs[{i}].fields[{j}]: {e}"))?;
                fields.insert(kv.key, kv.value);
            }
            let name =
                take(&mut fields, "event").map_or_else(|| "log".to_owned(), |v| v.to_string());
            events.push(Event {
                time_ns: micros_to_ns(log.timestamp),
                name,
                attributes: fields,
                dropped_attributes_count: 0,
            });
        }

        // An inline process wins over `processID`, as in the Collector.
        let resource = match (span.process, span.process_id) {
            (Some(process), _) => self.resource(process).map_err(|e| format!("process.{e}"))?,
            (None, Some(id)) => match processes.get(&id) {
                Some(resource) => Arc::clone(resource),
                None => self.resources.unknown(),
            },
            (None, None) => self.resources.unknown(),
        };

        let start_ns = micros_to_ns(span.start_time);
        Ok(Span {
            trace_id,
            span_id,
            parent_span_id: parent,
            trace_state,
            // Jaeger's bit 0 is "sampled", like W3C's; its debug bit has no W3C meaning.
            flags: u32::from(span.flags & 1 == 1),
            name: span.operation_name,
            kind,
            start_ns,
            end_ns: start_ns.saturating_add(micros_to_ns(span.duration)),
            attributes,
            dropped_attributes_count: 0,
            events,
            dropped_events_count: 0,
            links,
            dropped_links_count: 0,
            status,
            resource,
            scope,
        })
    }
}

impl Elements for JaegerReader<'_, '_> {
    /// An element of `data` (a trace) or of a bare array (a span, or a trace).
    fn element(&mut self, n: u64, raw: &RawValue) -> Result<(), ReadError> {
        let location = Location::Element(n);
        let mut element = match parse_element::<SpanJson<'_>>(raw) {
            Ok(element) => element,
            Err(reason) => return self.reject(location, reason),
        };
        if let Some(spans) = element.spans.take() {
            return self.trace(location, &spans, element.processes);
        }
        self.reading.summary.records += 1;
        match self.span(element, &HashMap::new()) {
            Ok(span) => {
                self.pending.push(span);
                if self.pending.len() >= CHUNK_SPANS {
                    self.flush();
                }
                Ok(())
            }
            Err(reason) => self.reject(location, reason),
        }
    }
}

/// The document: `{"data": [...]}`, one trace object, or a bare array.
struct Document<'a, 's, 'r> {
    reader: &'a mut JaegerReader<'s, 'r>,
    stop: &'a mut Option<ReadError>,
}

impl<'de> Visitor<'de> for Document<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Jaeger JSON document ({\"data\": [...]}, a trace, or an array of spans)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        ArraySeed {
            elements: self.reader,
            stop: self.stop,
            what: "an array of Jaeger spans",
        }
        .visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // The query API wraps traces in `data` next to `total`, `limit`, `offset` and
        // `errors`; a saved trace has `spans` and `processes`, in either order.
        let mut spans: Option<Vec<Box<RawValue>>> = None;
        let mut processes: Option<Box<RawValue>> = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "data" => map.next_value_seed(ArraySeed {
                    elements: &mut *self.reader,
                    stop: &mut *self.stop,
                    what: "an array of Jaeger traces",
                })?,
                "spans" => spans = map.next_value()?,
                "processes" => processes = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(spans) = spans {
            let spans: Vec<&RawValue> = spans.iter().map(|s| &**s).collect();
            if let Err(e) = self
                .reader
                .trace(Location::Input, &spans, processes.as_deref())
            {
                return Err(stop_with(self.stop, e));
            }
        }
        Ok(())
    }
}

/// `error`, then `otel.status_code`, then `http.status_code`: the Collector's order.
fn jaeger_status(attributes: &mut Attributes, kind: SpanKind) -> Status {
    if attributes.get("error").and_then(Value::as_bool) == Some(true) {
        take(attributes, "error");
        take(attributes, OTEL_STATUS_CODE);
        let message = take(attributes, OTEL_STATUS_DESCRIPTION)
            .or_else(|| attributes.get(HTTP_STATUS_MESSAGE).cloned())
            .map(|v| v.to_string())
            .unwrap_or_default();
        return Status {
            code: StatusCode::Error,
            message,
        };
    }
    if let Some(status) = take_otel_status(attributes) {
        return status;
    }
    let Some(http) = attributes.get_i64("http.status_code") else {
        return Status::default();
    };
    // OpenTelemetry's HTTP rule: 4xx is the client's fault, so not a server error.
    let code = match http {
        100..=399 => StatusCode::Unset,
        400..=499 if kind == SpanKind::Server => StatusCode::Unset,
        _ => StatusCode::Error,
    };
    if code == StatusCode::Unset {
        return Status::default();
    }
    let message = attributes
        .get(HTTP_STATUS_MESSAGE)
        .map(|v| v.to_string())
        .unwrap_or_default();
    Status { code, message }
}

/// A typed Jaeger tag (`{"key", "type", "value"}`); without a known type, the JSON type
/// decides.
fn convert_tag(tag: TagJson) -> Result<KeyValue, String> {
    let kind = tag.kind.to_ascii_lowercase();
    let value = typed_value(&kind, tag.value)
        .map_err(|value| format!("{:?}: {value} is not a valid {kind} value", tag.key))?;
    Ok(KeyValue {
        key: tag.key,
        value,
    })
}

/// The value of a tag of type `kind`, or back the scalar that does not fit it.
fn typed_value(kind: &str, value: Scalar) -> Result<Value, Scalar> {
    Ok(match (kind, value) {
        (_, Scalar::Null) => Value::Empty,
        ("string", value) => Value::Str(value.into_text()),
        ("bool", Scalar::Bool(b)) => Value::Bool(b),
        ("bool", Scalar::Str(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(Scalar::Str(s)),
        },
        // int64 travels as a string where JavaScript would lose precision.
        ("int64", Scalar::Int(i)) => Value::Int(i),
        ("int64", Scalar::Str(s)) => match s.trim().parse() {
            Ok(i) => Value::Int(i),
            Err(_) => return Err(Scalar::Str(s)),
        },
        ("int64", Scalar::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => Value::Int(f as i64),
        ("float64", Scalar::Float(f)) => Value::Double(f),
        ("float64", Scalar::Int(i)) => Value::Double(i as f64),
        ("float64", Scalar::UInt(u)) => Value::Double(u as f64),
        ("float64", Scalar::Str(s)) => match s.trim().parse() {
            Ok(f) => Value::Double(f),
            Err(_) => return Err(Scalar::Str(s)),
        },
        ("binary", Scalar::Str(s)) => match decode_base64(&s) {
            Some(bytes) => Value::Bytes(bytes),
            None => return Err(Scalar::Str(s)),
        },
        ("bool" | "int64" | "float64" | "binary", value) => return Err(value),
        (_, Scalar::Str(s)) => Value::Str(s),
        (_, Scalar::Bool(b)) => Value::Bool(b),
        (_, Scalar::Int(i)) => Value::Int(i),
        (_, Scalar::UInt(u)) => Value::Str(u.to_string()),
        (_, Scalar::Float(f)) => Value::Double(f),
    })
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(text.as_bytes()).ok())
}

// ---------------------------------------------------------------------------------------
// The JSON shapes. Unknown fields (`warnings`, `total`, …) are ignored.

/// A span, or (when `spans` is present) a whole trace: a bare array may hold either.
#[derive(Deserialize)]
#[serde(expecting = "a Jaeger span or trace object")]
struct SpanJson<'a> {
    #[serde(default, rename = "traceID", alias = "traceId", borrow)]
    trace_id: Cow<'a, str>,
    #[serde(default, rename = "spanID", alias = "spanId", borrow)]
    span_id: Cow<'a, str>,
    #[serde(default, rename = "parentSpanID", alias = "parentSpanId", borrow)]
    parent_span_id: Option<Cow<'a, str>>,
    #[serde(default, rename = "operationName", deserialize_with = "null_default")]
    operation_name: String,
    #[serde(default, borrow, deserialize_with = "null_default")]
    references: Vec<ReferenceJson<'a>>,
    #[serde(default, rename = "startTime", deserialize_with = "de_unsigned")]
    start_time: u64,
    #[serde(default, deserialize_with = "de_unsigned")]
    duration: u64,
    #[serde(default, deserialize_with = "null_default")]
    tags: Vec<TagJson>,
    #[serde(default, deserialize_with = "null_default")]
    logs: Vec<LogJson>,
    #[serde(default, deserialize_with = "de_unsigned")]
    flags: u64,
    #[serde(default, rename = "processID", alias = "processId")]
    process_id: Option<String>,
    #[serde(default)]
    process: Option<ProcessJson>,
    /// Only on a trace: its spans, each decoded separately.
    #[serde(default, borrow)]
    spans: Option<Vec<&'a RawValue>>,
    /// Only on a trace: `{"p1": {"serviceName", "tags"}, …}`.
    #[serde(default, borrow)]
    processes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(expecting = "a reference object {refType, traceID, spanID}")]
struct ReferenceJson<'a> {
    #[serde(default, rename = "refType", deserialize_with = "null_default")]
    ref_type: String,
    #[serde(default, rename = "traceID", alias = "traceId", borrow)]
    trace_id: Cow<'a, str>,
    #[serde(default, rename = "spanID", alias = "spanId", borrow)]
    span_id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(expecting = "a process object {serviceName, tags}")]
struct ProcessJson {
    #[serde(default, rename = "serviceName", deserialize_with = "null_default")]
    service_name: String,
    #[serde(default, deserialize_with = "null_default")]
    tags: Vec<TagJson>,
}

#[derive(Deserialize)]
#[serde(expecting = "a log object {timestamp, fields}")]
struct LogJson {
    #[serde(default, deserialize_with = "de_unsigned")]
    timestamp: u64,
    #[serde(default, deserialize_with = "null_default")]
    fields: Vec<TagJson>,
}

#[derive(Deserialize)]
#[serde(expecting = "a tag object {key, type, value}")]
struct TagJson {
    #[serde(default, deserialize_with = "null_default")]
    key: String,
    #[serde(
        default,
        rename = "type",
        alias = "vType",
        deserialize_with = "null_default"
    )]
    kind: String,
    #[serde(default)]
    value: Scalar,
}

/// A JSON scalar, kept as it came until the tag's declared type says what it means.
#[derive(Default)]
enum Scalar {
    #[default]
    Null,
    Str(String),
    Bool(bool),
    Int(i64),
    /// Above `i64::MAX`.
    UInt(u64),
    Float(f64),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::Str(s) => s,
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("null"),
            Scalar::Str(s) => write!(f, "{s:?}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::UInt(u) => write!(f, "{u}"),
            Scalar::Float(x) => write!(f, "{x}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(i64::try_from(v).map_or(Scalar::UInt(v), Scalar::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
}

// ---------------------------------------------------------------------------------------
// Shared with the Zipkin reader: streaming, ids, structural tags, number decoders.

/// How many spans of a flat array (Zipkin, or Jaeger spans without a trace around them)
/// go into one batch.
pub(super) const CHUNK_SPANS: usize = 1024;

/// The service name the Collector's Jaeger and Zipkin exporters write for a resource
/// that has none; its receivers read it back as "no service name", and so do we.
pub(super) const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

pub(super) const OTEL_STATUS_CODE: &str = "otel.status_code";
pub(super) const OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";
const HTTP_STATUS_MESSAGE: &str = "http.status_message";

/// A trace id as Jaeger and Zipkin write it: up to 32 hex digits, shorter forms padded
/// with leading zeros (both projects' parsers accept them; 16 digits is the common
/// 64-bit form), not all zero.
pub(super) fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    let mut id = [0u8; 16];
    decode_padded(text, &mut id)?;
    let id = TraceId(id);
    if !id.is_valid() {
        return Err(format!("all-zero trace id {} is invalid", shown(text)));
    }
    Ok(id)
}

/// A span id: up to 16 hex digits, padded with leading zeros, not all zero.
pub(super) fn parse_span_id(text: &str) -> Result<SpanId, String> {
    let mut id = [0u8; 8];
    decode_padded(text, &mut id)?;
    let id = SpanId(id);
    if !id.is_valid() {
        return Err(format!("all-zero span id {} is invalid", shown(text)));
    }
    Ok(id)
}

/// A parent span id: absent, empty or all zero means "no parent".
pub(super) fn parse_parent_id(text: Option<&str>) -> Result<Option<SpanId>, String> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => {
            let mut id = [0u8; 8];
            decode_padded(text, &mut id)?;
            let id = SpanId(id);
            Ok(id.is_valid().then_some(id))
        }
    }
}

fn decode_padded(text: &str, out: &mut [u8]) -> Result<(), String> {
    let digits = out.len() * 2;
    if text.is_empty() {
        return Err("missing".into());
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("{}: {bad:?} is not a hex digit", shown(text)));
    }
    if text.len() > digits {
        return Err(format!(
            "{}: {} hex digits, at most {digits} allowed",
            shown(text),
            text.len()
        ));
    }
    let mut padded = [b'0'; 32];
    padded[digits - text.len()..digits].copy_from_slice(text.as_bytes());
    // Only ASCII hex digits were copied in, so this is valid UTF-8 of the right length.
    let padded = std::str::from_utf8(&padded[..digits]).map_err(|e| e.to_string())?;
    decode_hex_into(padded, out).map_err(|e| e.to_string())
}

/// Input text quoted for an error message, cut short if long.
fn shown(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{:?}…", &text[..at]),
        None => format!("{text:?}"),
    }
}

pub(super) fn micros_to_ns(micros: u64) -> u64 {
    micros.saturating_mul(1000)
}

/// Removes the attribute `key`, keeping the others in order.
pub(super) fn take(attributes: &mut Attributes, key: &str) -> Option<Value> {
    let at = attributes.0.iter().position(|kv| kv.key == key)?;
    Some(attributes.0.remove(at).value)
}

/// `otel.status_code` (`OK`, `ERROR`, or the proto's `STATUS_CODE_ERROR` spelling) with
/// `otel.status_description`, both removed, as the OpenTelemetry exporters write them.
pub(super) fn take_otel_status(attributes: &mut Attributes) -> Option<Status> {
    let code = take(attributes, OTEL_STATUS_CODE)?;
    let message = take(attributes, OTEL_STATUS_DESCRIPTION).map(|v| v.to_string());
    Some(Status {
        code: StatusCode::from_name(&code.to_string()).unwrap_or_default(),
        message: message.unwrap_or_default(),
    })
}

/// The instrumentation scope from `otel.scope.name` (or the older `otel.library.name`)
/// and its version; the tags are removed. Without a name the tags stay as they are.
pub(super) fn take_scope(attributes: &mut Attributes, scopes: &mut Scopes) -> Arc<Scope> {
    let name = take(attributes, "otel.scope.name");
    let library = take(attributes, "otel.library.name");
    let Some(name) = name.or(library) else {
        return scopes.get("", "");
    };
    let version = take(attributes, "otel.scope.version");
    let library_version = take(attributes, "otel.library.version");
    let version = version
        .or(library_version)
        .map(|v| v.to_string())
        .unwrap_or_default();
    scopes.get(&name.to_string(), &version)
}

/// W3C `tracestate`, which OpenTelemetry's Jaeger and Zipkin exporters put in a tag.
pub(super) fn take_trace_state(attributes: &mut Attributes) -> String {
    take(attributes, "w3c.tracestate")
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// How many distinct resources (or scopes) a read remembers for sharing; past that, new
/// ones still work but are not shared, so a hostile file cannot grow the cache forever.
const MAX_REMEMBERED: usize = 4096;
/// How many variants of one service (or scope name) are compared before giving up.
const MAX_PER_NAME: usize = 64;

/// Shares one `Arc<Resource>` between all spans of the same process or service.
#[derive(Debug, Default)]
pub(super) struct Resources {
    by_service: HashMap<String, Vec<Arc<Resource>>>,
    remembered: usize,
    unknown: Arc<Resource>,
}

impl Resources {
    /// The shared resource equal to `resource`.
    pub(super) fn share(&mut self, resource: Resource) -> Arc<Resource> {
        let service = resource.attributes.get_str("service.name").unwrap_or("");
        let found = self
            .by_service
            .get(service)
            .and_then(|b| b.iter().find(|r| ***r == resource));
        if let Some(found) = found {
            return Arc::clone(found);
        }
        let shared = Arc::new(resource);
        if self.remembered < MAX_REMEMBERED {
            let service = shared
                .attributes
                .get_str("service.name")
                .unwrap_or("")
                .to_owned();
            let bucket = self.by_service.entry(service).or_default();
            if bucket.len() < MAX_PER_NAME {
                bucket.push(Arc::clone(&shared));
                self.remembered += 1;
            }
        }
        shared
    }

    /// The resource holding only `service.name` (Zipkin's whole resource).
    pub(super) fn for_service(&mut self, name: &str) -> Arc<Resource> {
        if name.is_empty() || name == NO_SERVICE_NAME {
            return self.unknown();
        }
        let found = self
            .by_service
            .get(name)
            .and_then(|b| b.iter().find(|r| r.attributes.len() == 1));
        match found {
            Some(found) => Arc::clone(found),
            None => self.share(Resource::with_service(name)),
        }
    }

    /// The empty resource, for spans that name no service.
    pub(super) fn unknown(&self) -> Arc<Resource> {
        Arc::clone(&self.unknown)
    }
}

/// Shares one `Arc<Scope>` per name and version.
#[derive(Debug, Default)]
pub(super) struct Scopes {
    by_name: HashMap<String, Vec<Arc<Scope>>>,
    remembered: usize,
    none: Arc<Scope>,
}

impl Scopes {
    pub(super) fn get(&mut self, name: &str, version: &str) -> Arc<Scope> {
        if name.is_empty() && version.is_empty() {
            return Arc::clone(&self.none);
        }
        if let Some(found) = self
            .by_name
            .get(name)
            .and_then(|b| b.iter().find(|s| s.version == version))
        {
            return Arc::clone(found);
        }
        let scope = Arc::new(Scope {
            name: name.to_owned(),
            version: version.to_owned(),
            ..Scope::default()
        });
        if self.remembered < MAX_REMEMBERED {
            let bucket = self.by_name.entry(name.to_owned()).or_default();
            if bucket.len() < MAX_PER_NAME {
                bucket.push(Arc::clone(&scope));
                self.remembered += 1;
            }
        }
        scope
    }
}

/// A non-negative integer (microseconds, flags, a port) as a JSON number or a decimal
/// string; `null` is zero. Fractional numbers, which some producers write for
/// microseconds, are truncated.
pub(super) fn de_unsigned<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(UnsignedVisitor)
}

struct UnsignedVisitor;

impl Visitor<'_> for UnsignedVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer")
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.is_finite() && (0.0..1.8e19).contains(&v) {
            Ok(v.trunc() as u64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests;
