//! The capture writer: OTLP JSON lines, exactly as the OpenTelemetry Collector's file
//! exporter writes them — one `ExportTraceServiceRequest` per line, lowerCamelCase keys,
//! lowercase hex ids, 64-bit integers as strings, enums as numbers, default values
//! left out. This is faultline's own capture format: any OTLP tool can read it back.
//!
//! ```text
//!  spans ─► group by resource, then scope ─► {"resourceSpans":[…]}\n
//! ```

use std::io::{self, Write};
use std::sync::Arc;

use base64::Engine as _;

use crate::span::{Attributes, KeyValue, Resource, Scope, Span, Value};

mod file;
mod proto;

pub use file::{
    CaptureFile, CaptureFileOptions, CaptureFileSummary, compression_for, recording_parts,
};
pub use proto::{encode_framed, to_export_request};

/// Writes batches of spans as OTLP JSON lines. Each call writes whole lines with a
/// single `write_all`, so a reader never sees half a line from a writer that was
/// stopped cleanly between calls.
#[derive(Debug)]
pub struct CaptureWriter<W: Write> {
    out: W,
    line: Vec<u8>,
    bytes: u64,
    lines: u64,
    spans: u64,
}

impl<W: Write> CaptureWriter<W> {
    pub fn new(out: W) -> Self {
        CaptureWriter {
            out,
            line: Vec::with_capacity(64 * 1024),
            bytes: 0,
            lines: 0,
            spans: 0,
        }
    }

    /// Writes `spans` as one line. An empty batch writes nothing.
    pub fn write_batch(&mut self, spans: &[Span]) -> io::Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        self.line.clear();
        encode_line(spans, &mut self.line);
        self.out.write_all(&self.line)?;
        self.bytes += self.line.len() as u64;
        self.lines += 1;
        self.spans += spans.len() as u64;
        Ok(())
    }

    /// Bytes written so far (uncompressed, if `W` compresses).
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    pub fn lines_written(&self) -> u64 {
        self.lines
    }

    pub fn spans_written(&self) -> u64 {
        self.spans
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Spans grouped by resource, then by scope, in first-seen order: the shape of an
/// `ExportTraceServiceRequest`.
pub(crate) type Grouped<'a> = Vec<(&'a Arc<Resource>, Vec<(&'a Arc<Scope>, Vec<&'a Span>)>)>;

pub(crate) fn group(spans: &[Span]) -> Grouped<'_> {
    // Spans of one batch usually share their `Arc`s, so the pointer check settles almost
    // every comparison.
    let mut groups: Grouped<'_> = Vec::new();
    for span in spans {
        let resource_group = match groups
            .iter_mut()
            .position(|(r, _)| Arc::ptr_eq(r, &span.resource) || ***r == *span.resource)
        {
            Some(i) => &mut groups[i].1,
            None => {
                groups.push((&span.resource, Vec::new()));
                let last = groups.len() - 1;
                &mut groups[last].1
            }
        };
        match resource_group
            .iter_mut()
            .position(|(s, _)| Arc::ptr_eq(s, &span.scope) || ***s == *span.scope)
        {
            Some(i) => resource_group[i].1.push(span),
            None => resource_group.push((&span.scope, vec![span])),
        }
    }
    groups
}

/// Appends one JSON line (with its `\n`) holding `spans` to `out`.
pub fn encode_line(spans: &[Span], out: &mut Vec<u8>) {
    let groups = group(spans);
    out.extend_from_slice(b"{\"resourceSpans\":[");
    for (ri, (resource, scopes)) in groups.iter().enumerate() {
        comma(out, ri);
        let mut obj = Object::new(out);
        if !resource.attributes.is_empty() || resource.dropped_attributes_count > 0 {
            obj.key("resource");
            let mut r = Object::new(obj.out);
            r.attributes("attributes", &resource.attributes);
            r.number(
                "droppedAttributesCount",
                u64::from(resource.dropped_attributes_count),
            );
            r.out.push(b'}');
        }
        obj.key("scopeSpans");
        obj.out.push(b'[');
        for (si, (scope, spans)) in scopes.iter().enumerate() {
            comma(obj.out, si);
            let mut s = Object::new(obj.out);
            if !scope.name.is_empty()
                || !scope.version.is_empty()
                || !scope.attributes.is_empty()
                || scope.dropped_attributes_count > 0
            {
                s.key("scope");
                let mut sc = Object::new(s.out);
                sc.string("name", &scope.name);
                sc.string("version", &scope.version);
                sc.attributes("attributes", &scope.attributes);
                sc.number(
                    "droppedAttributesCount",
                    u64::from(scope.dropped_attributes_count),
                );
                sc.out.push(b'}');
            }
            s.key("spans");
            s.out.push(b'[');
            for (pi, span) in spans.iter().enumerate() {
                comma(s.out, pi);
                encode_span(span, s.out);
            }
            s.out.push(b']');
            s.string("schemaUrl", &scope.schema_url);
            s.out.push(b'}');
        }
        obj.out.push(b']');
        obj.string("schemaUrl", &resource.schema_url);
        obj.out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
}

fn encode_span(span: &Span, out: &mut Vec<u8>) {
    let mut o = Object::new(out);
    o.display("traceId", &span.trace_id);
    o.display("spanId", &span.span_id);
    o.string("traceState", &span.trace_state);
    if let Some(parent) = &span.parent_span_id {
        o.display("parentSpanId", parent);
    }
    o.number("flags", u64::from(span.flags));
    o.string("name", &span.name);
    o.number("kind", span.kind as u64);
    o.u64_string("startTimeUnixNano", span.start_ns);
    o.u64_string("endTimeUnixNano", span.end_ns);
    o.attributes("attributes", &span.attributes);
    o.number(
        "droppedAttributesCount",
        u64::from(span.dropped_attributes_count),
    );
    if !span.events.is_empty() {
        o.key("events");
        o.out.push(b'[');
        for (i, event) in span.events.iter().enumerate() {
            comma(o.out, i);
            let mut e = Object::new(o.out);
            e.u64_string("timeUnixNano", event.time_ns);
            e.string("name", &event.name);
            e.attributes("attributes", &event.attributes);
            e.number(
                "droppedAttributesCount",
                u64::from(event.dropped_attributes_count),
            );
            e.out.push(b'}');
        }
        o.out.push(b']');
    }
    o.number("droppedEventsCount", u64::from(span.dropped_events_count));
    if !span.links.is_empty() {
        o.key("links");
        o.out.push(b'[');
        for (i, link) in span.links.iter().enumerate() {
            comma(o.out, i);
            let mut l = Object::new(o.out);
            l.display("traceId", &link.trace_id);
            l.display("spanId", &link.span_id);
            l.string("traceState", &link.trace_state);
            l.attributes("attributes", &link.attributes);
            l.number(
                "droppedAttributesCount",
                u64::from(link.dropped_attributes_count),
            );
            l.number("flags", u64::from(link.flags));
            l.out.push(b'}');
        }
        o.out.push(b']');
    }
    o.number("droppedLinksCount", u64::from(span.dropped_links_count));
    // The Collector always writes `status`, `{}` when unset.
    o.key("status");
    let mut st = Object::new(o.out);
    st.string("message", &span.status.message);
    st.number("code", span.status.code as u64);
    st.out.push(b'}');
    o.out.push(b'}');
}

fn comma(out: &mut Vec<u8>, index: usize) {
    if index > 0 {
        out.push(b',');
    }
}

/// Writes the members of one JSON object (after its `{`), leaving out default values as
/// protobuf JSON does.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    members: usize,
}

impl<'a> Object<'a> {
    /// Opens an object (writes its `{`); the caller writes the closing `}`.
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, members: 0 }
    }

    fn key(&mut self, key: &str) {
        comma(self.out, self.members);
        self.members += 1;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.key(key);
            json_string(value, self.out);
        }
    }

    fn display(&mut self, key: &str, value: &dyn std::fmt::Display) {
        self.key(key);
        // Ids only: hex digits need no escaping.
        self.out.push(b'"');
        let _ = write!(self.out, "{value}");
        self.out.push(b'"');
    }

    /// A 64-bit integer: a string in protobuf JSON.
    fn u64_string(&mut self, key: &str, value: u64) {
        if value != 0 {
            self.key(key);
            let _ = write!(self.out, "\"{value}\"");
        }
    }

    /// A 32-bit integer or an enum: a bare number.
    fn number(&mut self, key: &str, value: u64) {
        if value != 0 {
            self.key(key);
            let _ = write!(self.out, "{value}");
        }
    }

    fn attributes(&mut self, key: &str, attributes: &Attributes) {
        if !attributes.is_empty() {
            self.key(key);
            key_values(&attributes.0, self.out);
        }
    }
}

fn key_values(list: &[KeyValue], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, kv) in list.iter().enumerate() {
        comma(out, i);
        out.extend_from_slice(b"{\"key\":");
        json_string(&kv.key, out);
        out.extend_from_slice(b",\"value\":");
        any_value(&kv.value, out);
        out.push(b'}');
    }
    out.push(b']');
}

fn any_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Empty => out.extend_from_slice(b"{}"),
        Value::Str(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            json_string(s, out);
            out.push(b'}');
        }
        Value::Bool(b) => {
            let _ = write!(out, "{{\"boolValue\":{b}}}");
        }
        Value::Int(i) => {
            let _ = write!(out, "{{\"intValue\":\"{i}\"}}");
        }
        Value::Double(d) => {
            out.extend_from_slice(b"{\"doubleValue\":");
            if d.is_nan() {
                out.extend_from_slice(b"\"NaN\"");
            } else if d.is_infinite() {
                out.extend_from_slice(if *d > 0.0 {
                    b"\"Infinity\""
                } else {
                    b"\"-Infinity\""
                });
            } else {
                // serde_json prints finite floats exactly (shortest round-trip form).
                let _ = serde_json::to_writer(&mut *out, d);
            }
            out.push(b'}');
        }
        Value::Bytes(b) => {
            out.extend_from_slice(b"{\"bytesValue\":\"");
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(b)
                    .as_bytes(),
            );
            out.extend_from_slice(b"\"}");
        }
        Value::Array(values) => {
            out.extend_from_slice(b"{\"arrayValue\":{");
            if !values.is_empty() {
                out.extend_from_slice(b"\"values\":[");
                for (i, v) in values.iter().enumerate() {
                    comma(out, i);
                    any_value(v, out);
                }
                out.push(b']');
            }
            out.extend_from_slice(b"}}");
        }
        Value::Map(entries) => {
            out.extend_from_slice(b"{\"kvlistValue\":{");
            if !entries.is_empty() {
                out.extend_from_slice(b"\"values\":");
                key_values(entries, out);
            }
            out.extend_from_slice(b"}}");
        }
    }
}

fn json_string(s: &str, out: &mut Vec<u8>) {
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{ReadOptions, read};
    use crate::span::{Event, Link, SpanId, SpanKind, StatusCode, TraceId};

    fn sample_spans() -> Vec<Span> {
        let resource = Arc::new(Resource::with_service("gateway"));
        let other = Arc::new(Resource {
            dropped_attributes_count: 4,
            ..Resource::with_service("payments")
        });
        let scope = Arc::new(Scope {
            name: "faultline".into(),
            version: "0.1".into(),
            ..Scope::default()
        });
        let trace = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        let mut root = Span::new(
            trace,
            SpanId::from_hex("b7ad6b7169203331").unwrap(),
            "POST /orders",
        );
        root.kind = SpanKind::Server;
        root.start_ns = 1_700_000_000_000_000_000;
        root.end_ns = 1_700_000_000_250_000_000;
        root.resource = Arc::clone(&resource);
        root.scope = Arc::clone(&scope);
        root.attributes.insert("http.request.method", "POST");
        root.attributes.insert("http.response.status_code", 503i64);
        root.attributes.insert("ratio", 0.25);
        root.attributes.insert("big", f64::INFINITY);
        root.attributes.insert("retried", true);
        root.attributes.insert("quote\"and\\slash\n", "ünïcode ✓");
        root.attributes.0.push(KeyValue {
            key: "nested".into(),
            value: Value::Array(vec![
                Value::Int(-1),
                Value::Bytes(vec![0, 255]),
                Value::Map(vec![KeyValue::new("k", "v")]),
            ]),
        });
        root.attributes.0.push(KeyValue {
            key: "empty".into(),
            value: Value::Empty,
        });
        root.status.code = StatusCode::Error;
        root.status.message = "upstream 503".into();
        root.events.push(Event {
            time_ns: 1_700_000_000_100_000_000,
            name: "retry".into(),
            ..Event::default()
        });
        let mut child = Span::new(
            trace,
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            "charge",
        );
        child.parent_span_id = Some(root.span_id);
        child.kind = SpanKind::Client;
        child.flags = 0x301;
        child.trace_state = "vendor=x".into();
        child.start_ns = 1_700_000_000_010_000_000;
        child.end_ns = 1_700_000_000_200_000_000;
        child.resource = other;
        child.scope = Arc::clone(&scope);
        child.links.push(Link {
            trace_id: trace,
            span_id: root.span_id,
            flags: 1,
            ..Link::default()
        });
        vec![root, child]
    }

    #[test]
    fn round_trips_through_the_reader() {
        let spans = sample_spans();
        let mut line = Vec::new();
        encode_line(&spans, &mut line);
        assert!(line.ends_with(b"\n"));
        assert_eq!(
            line.iter().filter(|b| **b == b'\n').count(),
            1,
            "one line per batch"
        );
        let mut back = Vec::new();
        read("mem", &line[..], &ReadOptions::default(), &mut |b| {
            back.extend(b)
        })
        .unwrap();
        assert_eq!(back, spans);
    }

    #[test]
    fn writes_the_collector_shape() {
        let spans = sample_spans();
        let mut line = Vec::new();
        encode_line(&spans, &mut line);
        let doc: serde_json::Value = serde_json::from_slice(&line).unwrap();
        let rs = doc["resourceSpans"].as_array().unwrap();
        assert_eq!(rs.len(), 2, "two services, two resources");
        let span = &rs[0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(span["status"]["code"], 2);
        assert!(
            span.get("parentSpanId").is_none(),
            "root spans carry no parent"
        );
        assert_eq!(span["attributes"][1]["value"]["intValue"], "503");
        let child = &rs[1]["scopeSpans"][0]["spans"][0];
        assert_eq!(
            rs[1]["resource"]["droppedAttributesCount"], 4,
            "uint32 is a JSON number"
        );
        assert_eq!(
            child["status"],
            serde_json::json!({}),
            "unset status is {{}}"
        );
        assert_eq!(child["flags"], 0x301);
    }

    #[test]
    fn non_finite_doubles_use_protobuf_json_names() {
        let mut span = sample_spans().remove(0);
        span.attributes = Attributes(vec![KeyValue::new("x", f64::NAN)]);
        let mut line = Vec::new();
        encode_line(&[span], &mut line);
        assert!(
            String::from_utf8(line.clone())
                .unwrap()
                .contains(r#"{"doubleValue":"NaN"}"#)
        );
        let mut back = Vec::new();
        read("mem", &line[..], &ReadOptions::default(), &mut |b| {
            back.extend(b)
        })
        .unwrap();
        assert!(
            back[0]
                .attributes
                .get("x")
                .and_then(Value::as_f64)
                .is_some_and(f64::is_nan)
        );
    }

    #[test]
    fn writer_counts_and_skips_empty_batches() {
        let mut w = CaptureWriter::new(Vec::new());
        w.write_batch(&[]).unwrap();
        w.write_batch(&sample_spans()).unwrap();
        assert_eq!((w.lines_written(), w.spans_written()), (1, 2));
        assert_eq!(w.bytes_written(), w.get_ref().len() as u64);
    }
}
