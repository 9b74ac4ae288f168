//! Zipkin v2 JSON: an array of spans, as Zipkin's `/api/v2/spans` accepts them and its
//! UI and API return them.
//!
//! ```text
//!  [span, span, …] ─► streamed one element at a time ─► chunks of 1024 spans ─► sink
//!                     (a bad element is skipped under lenient; the stream goes on)
//! ```
//!
//! The mapping follows the OpenTelemetry Collector's Zipkin v2 receiver
//! (`pkg/translator/zipkin/zipkinv2/to_translator.go` in opentelemetry-collector-contrib),
//! with its network semantic conventions as of the `EmitV1NetworkConventions` and
//! `DontEmitV0NetworkConventions` feature gates, on by default since their promotion to
//! beta (contrib PR #46961, after v0.150). Ports keep the older `net.*.port` names there.
//!
//! | Zipkin | span model |
//! |---|---|
//! | `traceId` (up to 32 hex digits, left-padded), `id` (up to 16) | ids; invalid or all-zero rejects the span |
//! | `parentId` | parent; empty, all-zero or equal to `id` means none |
//! | `kind` `CLIENT`/`SERVER`/`PRODUCER`/`CONSUMER` (else tag `span.kind`) | kind |
//! | `timestamp`, `duration` (µs) | `start_ns`, `end_ns` (no duration: end = start) |
//! | no `timestamp` (a late-reported span) | start 0, end = duration, and attribute `otel.zipkin.absentField.startTime` = true |
//! | `localEndpoint.serviceName` | resource `service.name`, one shared `Arc` per service |
//! | `localEndpoint.ipv4`/`ipv6`, `port` | `network.local.address`, `net.host.port` |
//! | `remoteEndpoint.serviceName` | `service.peer.name` |
//! | `remoteEndpoint.ipv4`/`ipv6`, `port` | `network.peer.address`, `net.peer.port` |
//! | tag `error` (any value) | status Error; its value, unless `true`, is the message and stays a tag |
//! | tags `otel.status_code` / `otel.status_description` | status (tags removed) |
//! | tags `otel.scope.name` / `otel.library.name` (+ `.version`) | scope (tags removed) |
//! | tag `w3c.tracestate` | trace state (tag removed) |
//! | other tags | string attributes, names unchanged |
//! | `annotations` `[{timestamp µs, value}]` | events named by the value |
//! | `debug`, `shared` | not kept |
//!
//! `shared: true` marks a server span that reuses its client's span id. Both spans are
//! kept with that one id; trace assembly nests the server under the client.
//!
//! Where this differs from the Collector, on purpose: tags named like resource attributes
//! stay on the span (the resource is per service, shared); `span.kind` is read in any
//! spelling, not only `internal`; an annotation's whole value is the event name (the
//! Collector splits it at `|`, its own encoding of event attributes).

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::jaeger::{
    CHUNK_SPANS, Resources, Scopes, de_unsigned, micros_to_ns, parse_parent_id, parse_span_id,
    parse_trace_id, take, take_otel_status, take_scope, take_trace_state,
};
use super::json::{ArraySeed, Elements, end_of_stream, null_default, parse_element, skip_bom};
use super::{Location, ReadError, ReadErrorKind, Reading};
use crate::read::Format;
use crate::span::{Attributes, Event, Span, SpanKind, Status, StatusCode};

/// The attribute the Collector sets on a span that came without a start time.
const START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";

pub(crate) fn read(input: &mut dyn BufRead, reading: &mut Reading<'_>) -> Result<(), ReadError> {
    skip_bom(input).map_err(|e| reading.error(Location::Input, ReadErrorKind::Io(e)))?;
    let mut stop = None;
    let result = {
        let mut reader = ZipkinReader::new(reading);
        let mut de = serde_json::Deserializer::from_reader(input);
        let seed = ArraySeed {
            elements: &mut reader,
            stop: &mut stop,
            what: "a JSON array of Zipkin v2 spans",
        };
        let result = de::DeserializeSeed::deserialize(seed, &mut de).and_then(|()| de.end());
        // Spans decoded before a problem are good; a lenient read keeps them.
        reader.flush();
        result
    };
    end_of_stream(result, stop, reading, Format::ZipkinJson)
}

/// The decoding state of one read.
struct ZipkinReader<'s, 'r> {
    reading: &'s mut Reading<'r>,
    resources: Resources,
    scopes: Scopes,
    pending: Vec<Span>,
}

impl<'s, 'r> ZipkinReader<'s, 'r> {
    fn new(reading: &'s mut Reading<'r>) -> Self {
        ZipkinReader {
            reading,
            resources: Resources::default(),
            scopes: Scopes::default(),
            pending: Vec::with_capacity(CHUNK_SPANS),
        }
    }

    fn flush(&mut self) {
        let spans = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK_SPANS));
        self.reading.emit(spans);
    }

    fn span(&mut self, span: SpanJson<'_>) -> Result<Span, String> {
        let trace_id = parse_trace_id(&span.trace_id).map_err(|e| format!("traceId: {e}"))?;
        let span_id = parse_span_id(&span.id).map_err(|e| format!("id: {e}"))?;
        let parent_span_id = parse_parent_id(span.parent_id.as_deref())
            .map_err(|e| format!("parentId: {e}"))?
            .filter(|parent| *parent != span_id);

        let mut attributes: Attributes = Attributes::new();
        for (key, value) in span.tags {
            attributes.insert(key, value);
        }
        let kind = match span.kind.as_deref() {
            Some(kind) if !kind.is_empty() => SpanKind::from_name(kind).unwrap_or_default(),
            _ => take(&mut attributes, "span.kind")
                .and_then(|v| SpanKind::from_name(&v.to_string()))
                .unwrap_or_default(),
        };
        let status = zipkin_status(&mut attributes);
        let scope = take_scope(&mut attributes, &mut self.scopes);
        let trace_state = take_trace_state(&mut attributes);

        let local = span.local_endpoint.unwrap_or_default();
        if let Some(address) = local.address() {
            attributes.insert("network.local.address", address.to_owned());
        }
        if local.port > 0 {
            attributes.insert("net.host.port", local.port);
        }
        if let Some(remote) = span.remote_endpoint {
            if !remote.service_name.is_empty() {
                attributes.insert("service.peer.name", remote.service_name.clone());
            }
            if let Some(address) = remote.address() {
                attributes.insert("network.peer.address", address.to_owned());
            }
            if remote.port > 0 {
                attributes.insert("net.peer.port", remote.port);
            }
        }

        let duration_ns = micros_to_ns(span.duration);
        let start_ns = micros_to_ns(span.timestamp);
        if span.timestamp == 0 {
            // Zipkin allows a span without a start (reported late, by another host); the
            // Collector keeps it at the epoch and marks it, so analyses can leave it out.
            attributes.insert(START_TIME_ABSENT, true);
        }

        let events = span
            .annotations
            .into_iter()
            .map(|a| Event {
                time_ns: micros_to_ns(a.timestamp),
                name: a.value,
                attributes: Attributes::new(),
                dropped_attributes_count: 0,
            })
            .collect();

        Ok(Span {
            trace_id,
            span_id,
            parent_span_id,
            trace_state,
            flags: 0,
            name: span.name,
            kind,
            start_ns,
            end_ns: start_ns.saturating_add(duration_ns),
            attributes,
            dropped_attributes_count: 0,
            events,
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status,
            resource: self.resources.for_service(&local.service_name),
            scope,
        })
    }
}

impl Elements for ZipkinReader<'_, '_> {
    fn element(&mut self, n: u64, raw: &RawValue) -> Result<(), ReadError> {
        let converted = parse_element::<SpanJson<'_>>(raw).and_then(|span| {
            self.reading.summary.records += 1;
            self.span(span)
        });
        match converted {
            Ok(span) => {
                self.pending.push(span);
                if self.pending.len() >= CHUNK_SPANS {
                    self.flush();
                }
                Ok(())
            }
            Err(reason) => {
                let error = self
                    .reading
                    .error(Location::Element(n), ReadErrorKind::Invalid(reason));
                self.reading.skip(error)
            }
        }
    }
}

/// `otel.status_code` first; then any `error` tag marks the span failed, as Zipkin's UI
/// does. Zipkin puts the error message in that tag; only a bare `true` is dropped.
fn zipkin_status(attributes: &mut Attributes) -> Status {
    let mut status = take_otel_status(attributes).unwrap_or_default();
    if let Some(error) = attributes.get("error") {
        let text = error.to_string();
        status.code = StatusCode::Error;
        if text == "true" {
            take(attributes, "error");
        } else if status.message.is_empty() {
            status.message = text;
        }
    }
    status
}

// ---------------------------------------------------------------------------------------
// The JSON shapes. Unknown fields (`debug`, `shared`, …) are ignored.

#[derive(Deserialize)]
#[serde(expecting = "a Zipkin v2 span object")]
struct SpanJson<'a> {
    #[serde(default, rename = "traceId", borrow)]
    trace_id: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default, rename = "parentId", borrow)]
    parent_id: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "null_default")]
    name: String,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "de_unsigned")]
    timestamp: u64,
    #[serde(default, deserialize_with = "de_unsigned")]
    duration: u64,
    #[serde(default, rename = "localEndpoint")]
    local_endpoint: Option<EndpointJson>,
    #[serde(default, rename = "remoteEndpoint")]
    remote_endpoint: Option<EndpointJson>,
    #[serde(default, deserialize_with = "null_default")]
    annotations: Vec<AnnotationJson>,
    #[serde(default, deserialize_with = "de_tags")]
    tags: Vec<(String, String)>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "an endpoint object {serviceName, ipv4, ipv6, port}")]
struct EndpointJson {
    #[serde(default, rename = "serviceName", deserialize_with = "null_default")]
    service_name: String,
    #[serde(default, deserialize_with = "null_default")]
    ipv4: String,
    #[serde(default, deserialize_with = "null_default")]
    ipv6: String,
    #[serde(default, deserialize_with = "de_port")]
    port: i64,
}

impl EndpointJson {
    /// The Collector writes IPv4, then IPv6 over it: IPv6 wins when both are given.
    fn address(&self) -> Option<&str> {
        [&self.ipv6, &self.ipv4]
            .into_iter()
            .find(|a| !a.is_empty())
            .map(String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(expecting = "an annotation object {timestamp, value}")]
struct AnnotationJson {
    #[serde(default, deserialize_with = "de_unsigned")]
    timestamp: u64,
    #[serde(default, deserialize_with = "null_default")]
    value: String,
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let port = de_unsigned(d)?;
    i64::try_from(port)
        .ok()
        .filter(|p| *p <= i64::from(u16::MAX))
        .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Unsigned(port), &"a port number"))
}

/// Zipkin tags are a string-to-string object; kept in input order. Numbers and booleans,
/// which some tracers write, become their text; `null` drops the tag.
fn de_tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    d.deserialize_any(TagsVisitor)
}

struct TagsVisitor;

impl<'de> Visitor<'de> for TagsVisitor {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string tags")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut tags = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some((key, TagText(value))) = map.next_entry::<String, TagText>()? {
            if let Some(value) = value {
                tags.push((key, value));
            }
        }
        Ok(tags)
    }
}

struct TagText(Option<String>);

impl<'de> Deserialize<'de> for TagText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TagTextVisitor)
    }
}

struct TagTextVisitor;

impl Visitor<'_> for TagTextVisitor {
    type Value = TagText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string tag value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<TagText, E> {
        Ok(TagText(None))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TagText, E> {
        Ok(TagText(Some(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<TagText, E> {
        Ok(TagText(Some(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<TagText, E> {
        Ok(TagText(Some(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<TagText, E> {
        Ok(TagText(Some(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<TagText, E> {
        Ok(TagText(Some(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<TagText, E> {
        Ok(TagText(Some(v.to_string())))
    }
}

#[cfg(test)]
mod tests;
