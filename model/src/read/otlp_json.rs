//! OTLP JSON: the Collector's file exporter format (one `ExportTraceServiceRequest` per
//! line) and single pretty documents, as written in the wild.
//!
//! Lenient where the protocol and the Collector are: ids are hex of either case;
//! 64-bit integers come as strings or numbers; enums as numbers or names; keys in
//! lowerCamelCase or the proto's snake_case; unknown fields are ignored; `null` means
//! "not set". Lines holding metrics or logs are counted and passed over.
//!
//! Mode: if the first non-empty line is a whole JSON value the input is JSON lines,
//! read line by line (a bad line is skipped under `lenient`); otherwise it is a
//! stream of (pretty) documents read one at a time.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny};

use super::json::{null_default, without_position};
use super::pipeline::{self, Outcome, Record};
use super::{Location, ReadError, ReadErrorKind, Reading, convert_otlp_nesting, read_line};
use crate::read::Format;
use crate::span::{
    Attributes, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId, Value,
};

pub(crate) fn read(input: &mut dyn BufRead, reading: &mut Reading<'_>) -> Result<(), ReadError> {
    let mut line = Vec::with_capacity(64 * 1024);
    let mut line_no = 0u64;
    // Find the first non-empty line and decide the mode on it.
    loop {
        let more = read_line(input, &mut line).map_err(|e| io_error(reading, line_no + 1, e))?;
        if !more {
            return Ok(());
        }
        line_no += 1;
        if !is_blank(&line) {
            break;
        }
    }
    if let Err(e) = serde_json::from_slice::<ExportRequest<'_>>(&line)
        && e.is_eof()
    {
        // Not a whole value on one line: a pretty document. Hand the stream, first line
        // included, to the document reader; its line numbers count from 1 again.
        let rest = io::Cursor::new(std::mem::take(&mut line)).chain(input);
        return read_documents(rest, line_no, reading);
    }
    // JSON lines: every line is a record of its own, decoded in parallel.
    let mut first = Some(Record {
        location: Location::Line(line_no),
        bytes: Ok(line),
    });
    let source = reading.source.to_owned();
    // Lines of one capture are alike in size: start each buffer at the last one's size
    // rather than growing it by doubling, which copies every line several times.
    let mut capacity = 4096;
    let next_record = move || -> Result<Option<Record>, ReadError> {
        if let Some(record) = first.take() {
            return Ok(Some(record));
        }
        loop {
            let mut line = Vec::with_capacity(capacity);
            let more = read_line(input, &mut line).map_err(|e| ReadError {
                source_name: source.clone(),
                location: Location::Line(line_no + 1),
                kind: ReadErrorKind::Io(e),
            })?;
            if !more {
                return Ok(None);
            }
            line_no += 1;
            capacity = line.len().next_power_of_two().clamp(4096, 64 << 20);
            if !is_blank(&line) {
                return Ok(Some(Record {
                    location: Location::Line(line_no),
                    bytes: Ok(line),
                }));
            }
        }
    };
    pipeline::run(next_record, decode_line, reading)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn io_error(reading: &Reading<'_>, line: u64, e: io::Error) -> ReadError {
    reading.error(Location::Line(line), ReadErrorKind::Io(e))
}

fn syntax(e: &serde_json::Error) -> ReadErrorKind {
    ReadErrorKind::Syntax {
        format: Format::OtlpJson,
        reason: without_position(e),
    }
}

/// One JSON line: an `ExportTraceServiceRequest` (or a metrics/logs request).
fn decode_line(location: Location, line: &[u8]) -> Outcome {
    let line_no = match location {
        Location::Line(n) => n,
        _ => 0,
    };
    // Checking the line's UTF-8 once and parsing from `&str` spares serde_json a check
    // per string (7 % of a read). Invalid UTF-8 is rare: serde_json then finds and
    // describes it itself.
    let parsed = match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str::<ExportRequest<'_>>(text),
        Err(_) => serde_json::from_slice::<ExportRequest<'_>>(line),
    };
    match parsed {
        Ok(request) => outcome(request),
        Err(e) => {
            let kind = if e.is_eof() && !line.ends_with(b"\n") {
                ReadErrorKind::Truncated("the last line has no end (was the writer killed?)".into())
            } else {
                syntax(&e)
            };
            Outcome::Bad(Location::LineColumn(line_no, e.column() as u64), kind)
        }
    }
}

fn read_documents(
    input: impl Read,
    first_line: u64,
    reading: &mut Reading<'_>,
) -> Result<(), ReadError> {
    let line_offset = first_line - 1;
    let documents = serde_json::Deserializer::from_reader(io::BufReader::new(input))
        .into_iter::<ExportRequest<'_>>();
    for (index, document) in documents.enumerate() {
        match document {
            Ok(request) => pipeline::apply(
                Location::Element(index as u64 + 1),
                outcome(request),
                reading,
            )?,
            Err(e) => {
                let location =
                    Location::LineColumn(e.line() as u64 + line_offset, e.column() as u64);
                let kind = if e.is_eof() {
                    ReadErrorKind::Truncated("the document is not closed".into())
                } else if e.is_io() {
                    ReadErrorKind::Io(io::Error::other(e.to_string()))
                } else {
                    syntax(&e)
                };
                // A syntax error inside a document leaves no safe place to resume: the
                // rest of the stream cannot be trusted, so even a lenient read stops here.
                let error = reading.error(location, kind);
                reading.skip(error)?;
                return Ok(());
            }
        }
    }
    Ok(())
}

fn outcome(request: ExportRequest<'_>) -> Outcome {
    if request.resource_spans.is_empty()
        && (request.resource_metrics.is_some() || request.resource_logs.is_some())
    {
        return Outcome::NonTrace;
    }
    let mut spans = Vec::new();
    let mut rejected = Vec::new();
    convert_request(request, &mut spans, &mut rejected);
    Outcome::Spans { spans, rejected }
}

/// Parses an OTLP/HTTP JSON body. Returns the valid spans and, for each span that had
/// to be rejected, the reason (for the partial-success response).
pub(crate) fn parse_export_request(body: &[u8]) -> Result<(Vec<Span>, Vec<String>), String> {
    let request: ExportRequest<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut spans = Vec::new();
    let mut rejected = Vec::new();
    convert_request(request, &mut spans, &mut rejected);
    Ok((spans, rejected))
}

fn convert_request(request: ExportRequest<'_>, spans: &mut Vec<Span>, rejected: &mut Vec<String>) {
    convert_otlp_nesting(
        request.resource_spans,
        |rs| {
            let resource = match rs.resource {
                Some(r) => Resource {
                    attributes: convert_attributes(r.attributes),
                    dropped_attributes_count: r.dropped_attributes_count,
                    schema_url: rs.schema_url,
                },
                None => Resource {
                    schema_url: rs.schema_url,
                    ..Resource::default()
                },
            };
            (resource, rs.scope_spans)
        },
        |ss| {
            let scope = match ss.scope {
                Some(s) => Scope {
                    name: s.name,
                    version: s.version,
                    attributes: convert_attributes(s.attributes),
                    dropped_attributes_count: s.dropped_attributes_count,
                    schema_url: ss.schema_url,
                },
                None => Scope {
                    schema_url: ss.schema_url,
                    ..Scope::default()
                },
            };
            (scope, ss.spans)
        },
        convert_span,
        spans,
        rejected,
    );
}

fn convert_span(
    span: SpanJson<'_>,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
) -> Result<Span, String> {
    let trace_id = parse_trace_id(&span.trace_id).map_err(|e| format!("traceId: {e}"))?;
    let span_id = parse_span_id(&span.span_id).map_err(|e| format!("spanId: {e}"))?;
    let parent_span_id =
        parse_parent(span.parent_span_id.as_deref()).map_err(|e| format!("parentSpanId: {e}"))?;
    let mut links = Vec::with_capacity(span.links.len());
    for (i, link) in span.links.into_iter().enumerate() {
        links.push(Link {
            trace_id: parse_trace_id(&link.trace_id)
                .map_err(|e| format!("links[{i}].traceId: {e}"))?,
            span_id: parse_span_id(&link.span_id).map_err(|e| format!("links[{i}].spanId: {e}"))?,
            trace_state: link.trace_state,
            attributes: convert_attributes(link.attributes),
            dropped_attributes_count: link.dropped_attributes_count,
            flags: link.flags,
        });
    }
    let status = span.status.unwrap_or_default();
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind: span.kind,
        start_ns: span.start_time_unix_nano,
        end_ns: span.end_time_unix_nano,
        attributes: convert_attributes(span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .into_iter()
            .map(|e| Event {
                time_ns: e.time_unix_nano,
                name: e.name,
                attributes: convert_attributes(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count: span.dropped_links_count,
        status: Status {
            code: status.code,
            message: status.message,
        },
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
    })
}

/// A trace id as OTLP requires it: 32 hex digits, not all zero. (The 16-digit form that
/// [`TraceId::from_hex`] widens is a Jaeger/Zipkin habit, not OTLP.)
fn parse_trace_id(text: &str) -> Result<TraceId, String> {
    if text.len() != 32 {
        return Err(format!("expected 32 hex digits, found {:?}", text));
    }
    let id = TraceId::from_hex(text).map_err(|e| e.to_string())?;
    if !id.is_valid() {
        return Err("all-zero trace id is invalid".into());
    }
    Ok(id)
}

fn parse_span_id(text: &str) -> Result<SpanId, String> {
    let id = SpanId::from_hex(text).map_err(|e| e.to_string())?;
    if !id.is_valid() {
        return Err("all-zero span id is invalid".into());
    }
    Ok(id)
}

/// An absent, empty or all-zero parent means a root span.
fn parse_parent(text: Option<&str>) -> Result<Option<SpanId>, String> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => {
            let id = SpanId::from_hex(text).map_err(|e| e.to_string())?;
            Ok(id.is_valid().then_some(id))
        }
    }
}

pub(crate) fn convert_attributes(list: Vec<KeyValueJson>) -> Attributes {
    Attributes(list.into_iter().map(convert_key_value).collect())
}

fn convert_key_value(kv: KeyValueJson) -> KeyValue {
    KeyValue {
        key: kv.key,
        value: kv.value.map(convert_value).unwrap_or_default(),
    }
}

fn convert_value(v: AnyValueJson) -> Value {
    if let Some(s) = v.string_value {
        Value::Str(s)
    } else if let Some(b) = v.bool_value {
        Value::Bool(b)
    } else if let Some(i) = v.int_value {
        Value::Int(i)
    } else if let Some(d) = v.double_value {
        Value::Double(d)
    } else if let Some(bytes) = v.bytes_value {
        Value::Bytes(bytes)
    } else if let Some(array) = v.array_value {
        Value::Array(array.values.into_iter().map(convert_value).collect())
    } else if let Some(map) = v.kvlist_value {
        Value::Map(map.values.into_iter().map(convert_key_value).collect())
    } else {
        Value::Empty
    }
}

// ---------------------------------------------------------------------------------------
// The JSON shapes. Field names are lowerCamelCase with the proto's snake_case as alias.

#[derive(Deserialize)]
struct ExportRequest<'a> {
    #[serde(default, alias = "resource_spans", rename = "resourceSpans", borrow)]
    #[serde(deserialize_with = "null_default")]
    resource_spans: Vec<ResourceSpans<'a>>,
    #[serde(default, alias = "resource_metrics", rename = "resourceMetrics")]
    resource_metrics: Option<IgnoredAny>,
    #[serde(default, alias = "resource_logs", rename = "resourceLogs")]
    resource_logs: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ResourceSpans<'a> {
    #[serde(default)]
    resource: Option<ResourceJson>,
    #[serde(
        default,
        rename = "scopeSpans",
        alias = "scope_spans",
        alias = "instrumentationLibrarySpans",
        alias = "instrumentation_library_spans",
        borrow,
        deserialize_with = "null_default"
    )]
    scope_spans: Vec<ScopeSpans<'a>>,
    #[serde(
        default,
        rename = "schemaUrl",
        alias = "schema_url",
        deserialize_with = "null_default"
    )]
    schema_url: String,
}

#[derive(Deserialize)]
struct ResourceJson {
    #[serde(default, deserialize_with = "null_default")]
    attributes: Vec<KeyValueJson>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count"
    )]
    #[serde(deserialize_with = "de_u32")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
struct ScopeSpans<'a> {
    #[serde(
        default,
        alias = "instrumentationLibrary",
        alias = "instrumentation_library"
    )]
    scope: Option<ScopeJson>,
    #[serde(default, borrow, deserialize_with = "null_default")]
    spans: Vec<SpanJson<'a>>,
    #[serde(
        default,
        rename = "schemaUrl",
        alias = "schema_url",
        deserialize_with = "null_default"
    )]
    schema_url: String,
}

#[derive(Deserialize)]
struct ScopeJson {
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    version: String,
    #[serde(default, deserialize_with = "null_default")]
    attributes: Vec<KeyValueJson>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count"
    )]
    #[serde(deserialize_with = "de_u32")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
struct SpanJson<'a> {
    #[serde(default, rename = "traceId", alias = "trace_id", borrow)]
    trace_id: Cow<'a, str>,
    #[serde(default, rename = "spanId", alias = "span_id", borrow)]
    span_id: Cow<'a, str>,
    #[serde(
        default,
        rename = "traceState",
        alias = "trace_state",
        deserialize_with = "null_default"
    )]
    trace_state: String,
    #[serde(default, rename = "parentSpanId", alias = "parent_span_id", borrow)]
    parent_span_id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de_u32")]
    flags: u32,
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "de_kind")]
    kind: SpanKind,
    #[serde(default, rename = "startTimeUnixNano", alias = "start_time_unix_nano")]
    #[serde(deserialize_with = "de_u64")]
    start_time_unix_nano: u64,
    #[serde(default, rename = "endTimeUnixNano", alias = "end_time_unix_nano")]
    #[serde(deserialize_with = "de_u64")]
    end_time_unix_nano: u64,
    #[serde(default, deserialize_with = "null_default")]
    attributes: Vec<KeyValueJson>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count"
    )]
    #[serde(deserialize_with = "de_u32")]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "null_default")]
    events: Vec<EventJson>,
    #[serde(default, rename = "droppedEventsCount", alias = "dropped_events_count")]
    #[serde(deserialize_with = "de_u32")]
    dropped_events_count: u32,
    #[serde(default, borrow, deserialize_with = "null_default")]
    links: Vec<LinkJson<'a>>,
    #[serde(default, rename = "droppedLinksCount", alias = "dropped_links_count")]
    #[serde(deserialize_with = "de_u32")]
    dropped_links_count: u32,
    #[serde(default)]
    status: Option<StatusJson>,
}

#[derive(Deserialize)]
struct EventJson {
    #[serde(
        default,
        rename = "timeUnixNano",
        alias = "time_unix_nano",
        deserialize_with = "de_u64"
    )]
    time_unix_nano: u64,
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, deserialize_with = "null_default")]
    attributes: Vec<KeyValueJson>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count"
    )]
    #[serde(deserialize_with = "de_u32")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize)]
struct LinkJson<'a> {
    #[serde(default, rename = "traceId", alias = "trace_id", borrow)]
    trace_id: Cow<'a, str>,
    #[serde(default, rename = "spanId", alias = "span_id", borrow)]
    span_id: Cow<'a, str>,
    #[serde(
        default,
        rename = "traceState",
        alias = "trace_state",
        deserialize_with = "null_default"
    )]
    trace_state: String,
    #[serde(default, deserialize_with = "null_default")]
    attributes: Vec<KeyValueJson>,
    #[serde(
        default,
        rename = "droppedAttributesCount",
        alias = "dropped_attributes_count"
    )]
    #[serde(deserialize_with = "de_u32")]
    dropped_attributes_count: u32,
    #[serde(default, deserialize_with = "de_u32")]
    flags: u32,
}

#[derive(Deserialize, Default)]
struct StatusJson {
    #[serde(default, deserialize_with = "null_default")]
    message: String,
    #[serde(default, deserialize_with = "de_status_code")]
    code: StatusCode,
}

#[derive(Deserialize)]
pub(crate) struct KeyValueJson {
    #[serde(default, deserialize_with = "null_default")]
    key: String,
    #[serde(default)]
    value: Option<AnyValueJson>,
}

#[derive(Deserialize, Default)]
struct AnyValueJson {
    #[serde(default, rename = "stringValue", alias = "string_value")]
    string_value: Option<String>,
    #[serde(default, rename = "boolValue", alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(
        default,
        rename = "intValue",
        alias = "int_value",
        deserialize_with = "de_opt_i64"
    )]
    int_value: Option<i64>,
    #[serde(
        default,
        rename = "doubleValue",
        alias = "double_value",
        deserialize_with = "de_opt_f64"
    )]
    double_value: Option<f64>,
    #[serde(
        default,
        rename = "bytesValue",
        alias = "bytes_value",
        deserialize_with = "de_opt_bytes"
    )]
    bytes_value: Option<Vec<u8>>,
    #[serde(default, rename = "arrayValue", alias = "array_value")]
    array_value: Option<ArrayValueJson>,
    #[serde(
        default,
        rename = "kvlistValue",
        alias = "kvlist_value",
        alias = "kvListValue"
    )]
    kvlist_value: Option<KvListJson>,
}

#[derive(Deserialize)]
struct ArrayValueJson {
    #[serde(default, deserialize_with = "null_default")]
    values: Vec<AnyValueJson>,
}

#[derive(Deserialize)]
struct KvListJson {
    #[serde(default, deserialize_with = "null_default")]
    values: Vec<KeyValueJson>,
}

// ---------------------------------------------------------------------------------------
// Field decoders for the spellings the protocol allows.

/// A number that may come as a JSON number or as a decimal string (protobuf JSON writes
/// 64-bit integers as strings).
#[derive(Clone, Copy)]
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Null,
}

struct NumberVisitor;

impl<'de> de::Visitor<'de> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a number or a string holding a number")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Number::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number::Signed(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number::Float(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Null)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        let t = v.trim();
        if let Ok(u) = t.parse::<u64>() {
            return Ok(Number::Unsigned(u));
        }
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Number::Signed(i));
        }
        match t {
            "NaN" => Ok(Number::Float(f64::NAN)),
            "Infinity" => Ok(Number::Float(f64::INFINITY)),
            "-Infinity" => Ok(Number::Float(f64::NEG_INFINITY)),
            _ => t
                .parse::<f64>()
                .map(Number::Float)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

fn de_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match d.deserialize_any(NumberVisitor)? {
        Number::Unsigned(u) => Ok(u),
        Number::Null => Ok(0),
        Number::Signed(i) => Err(de::Error::invalid_value(
            de::Unexpected::Signed(i),
            &"an unsigned integer",
        )),
        Number::Float(f) => Err(de::Error::invalid_value(
            de::Unexpected::Float(f),
            &"an unsigned integer",
        )),
    }
}

fn de_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = de_u64(d)?;
    u32::try_from(v)
        .map_err(|_| de::Error::invalid_value(de::Unexpected::Unsigned(v), &"a 32-bit count"))
}

fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match d.deserialize_any(NumberVisitor)? {
        Number::Null => Ok(None),
        Number::Signed(i) => Ok(Some(i)),
        Number::Unsigned(u) => i64::try_from(u).map(Some).map_err(|_| {
            de::Error::invalid_value(de::Unexpected::Unsigned(u), &"a 64-bit signed integer")
        }),
        Number::Float(f) => Err(de::Error::invalid_value(
            de::Unexpected::Float(f),
            &"an integer",
        )),
    }
}

fn de_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match d.deserialize_any(NumberVisitor)? {
        Number::Null => None,
        Number::Float(f) => Some(f),
        Number::Signed(i) => Some(i as f64),
        Number::Unsigned(u) => Some(u as f64),
    })
}

fn de_opt_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let Some(text) = Option::<Cow<'de, str>>::deserialize(d)? else {
        return Ok(None);
    };
    // Protobuf JSON accepts standard and URL-safe base64, padded or not.
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|engine| engine.decode(text.as_bytes()).ok())
        .map(Some)
        .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(&text), &"base64 bytes"))
}

/// An enum given by number or by name.
enum EnumValue<'a> {
    Number(i64),
    Name(Cow<'a, str>),
    Null,
}

struct EnumVisitor;

impl<'de> de::Visitor<'de> for EnumVisitor {
    type Value = EnumValue<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an enum number or name")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(EnumValue::Number(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(EnumValue::Number(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(EnumValue::Null)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(EnumValue::Name(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(EnumValue::Name(Cow::Owned(v.to_owned())))
    }
}

fn de_kind<'de, D: Deserializer<'de>>(d: D) -> Result<SpanKind, D::Error> {
    match d.deserialize_any(EnumVisitor)? {
        EnumValue::Number(n) => Ok(SpanKind::from_otlp(n)),
        EnumValue::Null => Ok(SpanKind::Unspecified),
        EnumValue::Name(name) => SpanKind::from_name(&name).ok_or_else(|| {
            de::Error::invalid_value(
                de::Unexpected::Str(&name),
                &"a span kind such as SPAN_KIND_SERVER",
            )
        }),
    }
}

fn de_status_code<'de, D: Deserializer<'de>>(d: D) -> Result<StatusCode, D::Error> {
    match d.deserialize_any(EnumVisitor)? {
        EnumValue::Number(n) => Ok(StatusCode::from_otlp(n)),
        EnumValue::Null => Ok(StatusCode::Unset),
        EnumValue::Name(name) => StatusCode::from_name(&name).ok_or_else(|| {
            de::Error::invalid_value(
                de::Unexpected::Str(&name),
                &"a status code such as STATUS_CODE_ERROR",
            )
        }),
    }
}

#[cfg(test)]
mod tests;
