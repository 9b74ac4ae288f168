//! Spans back to OTLP protobuf: the request an exporter would send, and the
//! Collector's framed file form (4-byte big-endian length, then the message).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue as ProtoKeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;
use opentelemetry_proto::tonic::trace::v1::{self as proto, ResourceSpans, ScopeSpans};
use prost::Message;

use super::group;
use crate::span::{Attributes, Span, Value};

/// The `ExportTraceServiceRequest` carrying `spans`, grouped by resource and scope.
pub fn to_export_request(spans: &[Span]) -> ExportTraceServiceRequest {
    let resource_spans = group(spans)
        .into_iter()
        .map(|(resource, scopes)| ResourceSpans {
            resource: Some(ProtoResource {
                attributes: attributes(&resource.attributes),
                dropped_attributes_count: resource.dropped_attributes_count,
                ..ProtoResource::default()
            }),
            scope_spans: scopes
                .into_iter()
                .map(|(scope, spans)| ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: scope.name.clone(),
                        version: scope.version.clone(),
                        attributes: attributes(&scope.attributes),
                        dropped_attributes_count: scope.dropped_attributes_count,
                    }),
                    spans: spans.into_iter().map(span).collect(),
                    schema_url: scope.schema_url.clone(),
                })
                .collect(),
            schema_url: resource.schema_url.clone(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Appends `spans` to `out` as one length-framed message.
pub fn encode_framed(spans: &[Span], out: &mut Vec<u8>) {
    let message = to_export_request(spans);
    let len = message.encoded_len();
    // A batch over 4 GiB cannot be framed; callers write batches of a few MiB.
    let prefix = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&prefix.to_be_bytes());
    message.encode_raw(out);
}

fn span(s: &Span) -> proto::Span {
    proto::Span {
        trace_id: s.trace_id.0.to_vec(),
        span_id: s.span_id.0.to_vec(),
        trace_state: s.trace_state.clone(),
        parent_span_id: s.parent_span_id.map(|p| p.0.to_vec()).unwrap_or_default(),
        flags: s.flags,
        name: s.name.clone(),
        kind: s.kind as i32,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.end_ns,
        attributes: attributes(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .iter()
            .map(|e| proto::span::Event {
                time_unix_nano: e.time_ns,
                name: e.name.clone(),
                attributes: attributes(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .iter()
            .map(|l| proto::span::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: attributes(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count,
        status: Some(proto::Status {
            message: s.status.message.clone(),
            code: s.status.code as i32,
        }),
    }
}

fn attributes(list: &Attributes) -> Vec<ProtoKeyValue> {
    list.iter()
        .map(|kv| ProtoKeyValue {
            key: kv.key.clone(),
            value: Some(value(&kv.value)),
            ..ProtoKeyValue::default()
        })
        .collect()
}

fn value(v: &Value) -> AnyValue {
    let value = match v {
        Value::Empty => None,
        Value::Str(s) => Some(any_value::Value::StringValue(s.clone())),
        Value::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        Value::Int(i) => Some(any_value::Value::IntValue(*i)),
        Value::Double(d) => Some(any_value::Value::DoubleValue(*d)),
        Value::Bytes(b) => Some(any_value::Value::BytesValue(b.clone())),
        Value::Array(values) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: values.iter().map(value).collect(),
        })),
        Value::Map(entries) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: entries
                .iter()
                .map(|kv| ProtoKeyValue {
                    key: kv.key.clone(),
                    value: Some(value(&kv.value)),
                    ..ProtoKeyValue::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{Format, ReadOptions, read};
    use crate::synth::Synth;

    #[test]
    fn framed_protobuf_round_trips() {
        let a = Synth::new(5).spans(40);
        let b = Synth::new(6).spans(24);
        let mut bytes = Vec::new();
        encode_framed(&a, &mut bytes);
        encode_framed(&b, &mut bytes);
        let mut back = Vec::new();
        let summary = read("mem", &bytes[..], &ReadOptions::default(), &mut |s| {
            back.extend(s)
        })
        .unwrap();
        assert_eq!(summary.format, Format::OtlpProtoFramed);
        assert_eq!(summary.records, 2);
        // Grouping by resource reorders spans within a message; content must be equal.
        let key = |s: &Span| (s.trace_id, s.span_id);
        let mut expected = [a, b].concat();
        expected.sort_by_key(key);
        back.sort_by_key(key);
        assert_eq!(back.len(), expected.len());
        assert!(back == expected, "round trip changed a span");
    }

    #[test]
    fn truncated_frame_is_reported_with_its_offset() {
        let spans = Synth::new(5).spans(8);
        let mut bytes = Vec::new();
        encode_framed(&spans, &mut bytes);
        let first = bytes.len();
        encode_framed(&spans, &mut bytes);
        bytes.truncate(bytes.len() - 10);
        let err = read(
            "cap.binpb",
            &bytes[..],
            &ReadOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cap.binpb at byte {first}: input ends in the middle of a record: frame of {} bytes has only {}",
                bytes.len() - first - 4 + 10,
                bytes.len() - first - 4
            )
        );
        let lenient = ReadOptions {
            lenient: true,
            ..ReadOptions::default()
        };
        let mut n = 0;
        let summary = read("cap.binpb", &bytes[..], &lenient, &mut |s| n += s.len()).unwrap();
        assert_eq!((n, summary.skipped), (8, 1));
    }
}
