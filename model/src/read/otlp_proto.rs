//! OTLP protobuf: a raw `ExportTraceServiceRequest` (a request body as sent on the
//! wire) or the Collector file exporter's framed form, each message behind a 4-byte
//! big-endian length. Also the proto → [`Span`] conversion the receiver uses.

use std::io::{self, BufRead};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as ProtoKeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1 as proto;
use prost::Message;

use super::pipeline::{self, Outcome, Record};
use super::{Location, ReadError, ReadErrorKind, Reading, convert_otlp_nesting};
use crate::read::Format;
use crate::span::{
    Attributes, Event, KeyValue, Link, Resource, Scope, Span, SpanId, SpanKind, Status, StatusCode,
    TraceId, Value,
};

/// The largest frame a framed capture may declare. A length beyond this is almost
/// certainly not a frame (a corrupt or misdetected file), and allocating it would be
/// the reader's undoing.
const MAX_FRAME_BYTES: u32 = 256 * 1024 * 1024;

pub(crate) fn read_single(
    input: &mut dyn BufRead,
    reading: &mut Reading<'_>,
) -> Result<(), ReadError> {
    let mut body = Vec::new();
    input
        .read_to_end(&mut body)
        .map_err(|e| reading.error(Location::Input, ReadErrorKind::Io(e)))?;
    let location = Location::Offset(0);
    pipeline::apply(location, decode_message(location, &body), reading)
}

pub(crate) fn read_framed(
    input: &mut dyn BufRead,
    reading: &mut Reading<'_>,
) -> Result<(), ReadError> {
    let source = reading.source.to_owned();
    let mut offset = 0u64;
    let mut ended = false;
    // Cuts the next frame out of the input. A frame that cannot be cut (a torn length
    // or body, an absurd length) is the last record: there is no next frame to find.
    let next_record = move || -> Result<Option<Record>, ReadError> {
        if ended {
            return Ok(None);
        }
        let location = Location::Offset(offset);
        let io = |e| ReadError {
            source_name: source.clone(),
            location,
            kind: ReadErrorKind::Io(e),
        };
        let mut stop = |kind| {
            ended = true;
            Ok(Some(Record {
                location,
                bytes: Err(kind),
            }))
        };
        let mut prefix = [0u8; 4];
        match read_exact_or_eof(input, &mut prefix).map_err(io)? {
            0 => return Ok(None),
            4 => {}
            n => {
                return stop(ReadErrorKind::Truncated(format!(
                    "{n} of the 4 bytes of a frame length"
                )));
            }
        }
        let len = u32::from_be_bytes(prefix);
        if len > MAX_FRAME_BYTES {
            return stop(ReadErrorKind::Invalid(format!(
                "frame length {len} exceeds {MAX_FRAME_BYTES} bytes; not a framed OTLP capture?"
            )));
        }
        let mut body = vec![0; len as usize];
        let got = read_exact_or_eof(input, &mut body).map_err(io)?;
        if got < body.len() {
            return stop(ReadErrorKind::Truncated(format!(
                "frame of {len} bytes has only {got}"
            )));
        }
        offset += 4 + u64::from(len);
        Ok(Some(Record {
            location,
            bytes: Ok(body),
        }))
    };
    pipeline::run(next_record, decode_message, reading)
}

/// Like `read_exact`, but reports how many bytes it got when the input ends early.
fn read_exact_or_eof(input: &mut dyn BufRead, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn decode_message(location: Location, body: &[u8]) -> Outcome {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            let mut spans = Vec::new();
            let mut rejected = Vec::new();
            convert_request(request, &mut spans, &mut rejected);
            Outcome::Spans { spans, rejected }
        }
        Err(e) => Outcome::Bad(
            location,
            ReadErrorKind::Syntax {
                format: Format::OtlpProto,
                reason: e.to_string(),
            },
        ),
    }
}

/// Converts a decoded request into spans; spans that break the protocol's rules (ids of
/// the wrong length or all zero) are left out and described in `rejected`.
pub(crate) fn convert_request(
    request: ExportTraceServiceRequest,
    spans: &mut Vec<Span>,
    rejected: &mut Vec<String>,
) {
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

fn trace_id(bytes: &[u8]) -> Result<TraceId, String> {
    match TraceId::from_bytes(bytes) {
        Some(id) if id.is_valid() => Ok(id),
        Some(_) => Err("all-zero trace id is invalid".into()),
        None => Err(format!("trace id has {} bytes, expected 16", bytes.len())),
    }
}

fn span_id(bytes: &[u8]) -> Result<SpanId, String> {
    match SpanId::from_bytes(bytes) {
        Some(id) if id.is_valid() => Ok(id),
        Some(_) => Err("all-zero span id is invalid".into()),
        None => Err(format!("span id has {} bytes, expected 8", bytes.len())),
    }
}

fn convert_span(
    span: proto::Span,
    resource: &Arc<Resource>,
    scope: &Arc<Scope>,
) -> Result<Span, String> {
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        _ => {
            let id = SpanId::from_bytes(&span.parent_span_id).ok_or_else(|| {
                format!(
                    "parent span id has {} bytes, expected 8",
                    span.parent_span_id.len()
                )
            })?;
            id.is_valid().then_some(id)
        }
    };
    let mut links = Vec::with_capacity(span.links.len());
    for (i, link) in span.links.into_iter().enumerate() {
        links.push(Link {
            trace_id: trace_id(&link.trace_id).map_err(|e| format!("links[{i}]: {e}"))?,
            span_id: span_id(&link.span_id).map_err(|e| format!("links[{i}]: {e}"))?,
            trace_state: link.trace_state,
            attributes: convert_attributes(link.attributes),
            dropped_attributes_count: link.dropped_attributes_count,
            flags: link.flags,
        });
    }
    let status = span.status.unwrap_or_default();
    Ok(Span {
        trace_id: trace_id(&span.trace_id)?,
        span_id: span_id(&span.span_id)?,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind: SpanKind::from_otlp(i64::from(span.kind)),
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
            code: StatusCode::from_otlp(i64::from(status.code)),
            message: status.message,
        },
        resource: Arc::clone(resource),
        scope: Arc::clone(scope),
    })
}

pub(crate) fn convert_attributes(list: Vec<ProtoKeyValue>) -> Attributes {
    Attributes(
        list.into_iter()
            .map(|kv| KeyValue {
                key: kv.key,
                value: convert_value(kv.value),
            })
            .collect(),
    )
}

fn convert_value(value: Option<AnyValue>) -> Value {
    match value.and_then(|v| v.value) {
        None => Value::Empty,
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::Int(i),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(d),
        Some(any_value::Value::BytesValue(b)) => Value::Bytes(b),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(
            a.values
                .into_iter()
                .map(|v| convert_value(Some(v)))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(kv)) => Value::Map(convert_attributes(kv.values).0),
        // A string-table index only means something inside an OTLP profiles message.
        Some(any_value::Value::StringValueStrindex(_)) => Value::Empty,
    }
}
