//! Jaeger and Zipkin files written by those projects' own tools (`../shared/interop`,
//! outside the repo: these tests skip with a message where it is absent).
//!
//! Expected counts were derived with a separate Python script over the raw JSON (span
//! elements counted, trace ids left-padded to 32 digits before counting, service names
//! from `processes` / inline `process` / `localEndpoint`, `unknown_service` where none),
//! not with faultline's reader.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use faultline_model::read::{ReadOptions, read_all};
use faultline_model::trace::assemble;
use faultline_model::{Compression, Format, Span, SpanId, SpanKind, StatusCode, TraceId, Value};

struct Expect {
    file: &'static str,
    format: Format,
    spans: usize,
    traces: usize,
    /// Jaeger traces (a bare span array: spans), Zipkin spans.
    records: u64,
    services: &'static [&'static str],
}

const FILES: &[Expect] = &[
    Expect {
        file: "jaeger-json/jaeger-anonymizer-trace_success.json",
        format: Format::JaegerJson,
        spans: 2,
        traces: 1,
        records: 2,
        services: &["16af988c443cff37", "3c220036602f839e"],
    },
    // The same span twice: the reader keeps both, assembly drops the exact repeat.
    Expect {
        file: "jaeger-json/jaeger-otlp2jaeger-out.json",
        format: Format::JaegerJson,
        spans: 2,
        traces: 1,
        records: 1,
        services: &["telemetrygen"],
    },
    Expect {
        file: "jaeger-json/jaeger-ui_01.json",
        format: Format::JaegerJson,
        spans: 5,
        traces: 1,
        records: 1,
        services: &["service-x", "service-y"],
    },
    Expect {
        file: "zipkin-json/zipkin-envoy.json",
        format: Format::ZipkinJson,
        spans: 1,
        traces: 1,
        records: 1,
        services: &["unknown_service"],
    },
    Expect {
        file: "zipkin-json/zipkin-messaging-kafka.json",
        format: Format::ZipkinJson,
        spans: 28,
        traces: 1,
        records: 28,
        services: &["servicea", "serviceb"],
    },
    Expect {
        file: "zipkin-json/zipkin-simple-db-p6.json",
        format: Format::ZipkinJson,
        spans: 5,
        traces: 1,
        records: 5,
        services: &["bootifulmeters"],
    },
    Expect {
        file: "zipkin-json/zipkin-skew.json",
        format: Format::ZipkinJson,
        spans: 4,
        traces: 1,
        records: 4,
        services: &["servicea", "serviceb"],
    },
    Expect {
        file: "zipkin-json/zipkin-yelp.json",
        format: Format::ZipkinJson,
        spans: 16,
        traces: 1,
        records: 16,
        services: &[
            "mobile_api",
            "routing",
            "spectre",
            "unknown",
            "yelp-main",
            "yelp_main/api_proxy",
        ],
    },
];

fn read(dir: &Path, file: &str) -> Vec<Span> {
    read_all(&dir.join(file), &ReadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

fn span<'a>(spans: &'a [Span], id: &str) -> &'a Span {
    let id = SpanId::from_hex(id).unwrap();
    spans
        .iter()
        .find(|s| s.span_id == id)
        .unwrap_or_else(|| panic!("no span {id}"))
}

fn id(hex: &str) -> Option<SpanId> {
    Some(SpanId::from_hex(hex).unwrap())
}

#[test]
fn every_jaeger_and_zipkin_interop_file_reads_with_the_right_counts() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    for expect in FILES {
        let (spans, summary) = read_all(&dir.join(expect.file), &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", expect.file));
        assert_eq!(summary.format, expect.format, "{}", expect.file);
        assert_eq!(summary.compression, Compression::None, "{}", expect.file);
        assert_eq!(spans.len(), expect.spans, "{}: spans", expect.file);
        assert_eq!(
            summary.spans as usize, expect.spans,
            "{}: summary.spans",
            expect.file
        );
        assert_eq!(summary.records, expect.records, "{}: records", expect.file);
        assert_eq!(summary.skipped, 0, "{}", expect.file);
        let traces: BTreeSet<TraceId> = spans.iter().map(|s| s.trace_id).collect();
        assert_eq!(traces.len(), expect.traces, "{}: traces", expect.file);
        let services: BTreeSet<&str> = spans.iter().map(|s| s.service_name()).collect();
        assert_eq!(
            services.into_iter().collect::<Vec<_>>(),
            expect.services,
            "{}",
            expect.file
        );
    }
    let expected: Vec<&str> = FILES.iter().map(|e| e.file).collect();
    common::assert_all_files_expected(&dir, &["jaeger-json", "zipkin-json"], &expected);
}

#[test]
fn anonymizer_spans_carry_their_process_inline() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "jaeger-json/jaeger-anonymizer-trace_success.json");
    let server = span(&spans, "7606ddfe69932d34");
    assert_eq!(
        server.trace_id.to_string(),
        "00000000000000002be38093ead7a083",
        "64-bit id widened"
    );
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.parent_span_id, id("492770a15935810f"));
    assert_eq!(server.duration_ns(), 267_037_000);
    assert_eq!(server.flags, 1);
    let client = span(&spans, "7bd66f09ba90ea3d");
    assert_eq!(client.parent_span_id, id("7606ddfe69932d34"));
    assert_eq!(client.kind, SpanKind::Client);
    // `{"key":"error","type":"bool","value":"true"}`: a bool written as a string.
    assert_eq!(client.status.code, StatusCode::Error);
    assert!(client.attributes.is_empty());
    assert_eq!(client.service_name(), "3c220036602f839e");
}

#[test]
fn otlp2jaeger_output_maps_structural_tags_back() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "jaeger-json/jaeger-otlp2jaeger-out.json");
    let s = &spans[0];
    assert_eq!(s.trace_id.to_string(), "83a9efd15c1c98a977e0711cc93ee28b");
    assert_eq!(s.parent_span_id, id("909541b92cf05311"));
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.duration_ns(), 123_000);
    assert_eq!(s.start_ns, 1_706_678_909_209_712_000);
    assert_eq!(s.scope.name, "telemetrygen");
    let keys: Vec<&str> = s.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["net.peer.ip", "peer.service"],
        "structural tags removed, others kept as named"
    );
    assert!(Arc::ptr_eq(&spans[0].resource, &spans[1].resource));
    assert!(Arc::ptr_eq(&spans[0].scope, &spans[1].scope));
    // The repeat is dropped by assembly, leaving one span whose parent is outside the file.
    let traces = assemble(spans);
    assert_eq!(traces[0].spans.len(), 1);
    assert_eq!(traces[0].structure.orphans().count(), 1);
}

#[test]
fn jaeger_ui_fixture_types_references_and_logs() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "jaeger-json/jaeger-ui_01.json");
    assert!(
        spans
            .iter()
            .all(|s| s.trace_id.to_string() == "00000000000000000000000000000001")
    );
    // Two spans share id 2: a logged one and one with typed tags.
    let logged = &spans[0];
    assert_eq!(
        logged.span_id,
        SpanId::from_hex("0000000000000002").unwrap()
    );
    let names: Vec<&str> = logged.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["some-event", "log"]);
    assert_eq!(logged.events[1].attributes.get_str("x"), Some("y"));
    assert_eq!(logged.events[0].time_ns, 1_485_467_191_639_875_000);
    let tagged = &spans[1];
    assert_eq!(tagged.status.code, StatusCode::Error);
    assert_eq!(tagged.attributes.get("peer.ipv4"), Some(&Value::Int(23456)));
    assert_eq!(
        tagged.attributes.get("temperature"),
        Some(&Value::Double(72.5))
    );
    assert_eq!(
        tagged.attributes.get("javascript_limit"),
        Some(&Value::Int(9_223_372_036_854_775_222))
    );
    assert_eq!(
        tagged.attributes.get("blob"),
        Some(&Value::Bytes(vec![0, 0, 0x30, 0x39]))
    );
    assert_eq!(tagged.service_name(), "service-x");

    let three = span(&spans, "0000000000000003");
    assert_eq!(three.parent_span_id, id("0000000000000002"));
    assert_eq!(three.service_name(), "service-y");
    let four = span(&spans, "0000000000000004");
    assert_eq!(
        four.parent_span_id,
        id("0000000000000002"),
        "the first CHILD_OF in the same trace"
    );
    assert_eq!(four.links.len(), 2);
    assert_eq!(
        four.links[0].trace_id,
        TraceId::from_hex("00000000000000ff").unwrap()
    );
    assert_eq!(
        four.links[0].attributes.get_str("opentracing.ref_type"),
        Some("child_of")
    );
    assert_eq!(
        four.links[1].attributes.get_str("opentracing.ref_type"),
        Some("follows_from")
    );
    let five = span(&spans, "0000000000000005");
    assert_eq!(five.parent_span_id, id("0000000000000004"));
    assert_eq!(five.duration_ns(), 4_000);
}

#[test]
fn zipkin_envoy_span_has_no_service_but_its_address() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "zipkin-json/zipkin-envoy.json");
    let s = &spans[0];
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.parent_span_id, None);
    assert_eq!(s.duration_ns(), 127_115_000);
    assert!(s.resource.attributes.is_empty());
    assert_eq!(
        s.attributes.get_str("network.local.address"),
        Some("169.254.65.45")
    );
    assert_eq!(
        s.attributes.get_str("http.status_code"),
        Some("200"),
        "tags keep their names"
    );
    assert_eq!(s.attributes.len(), 13);
}

#[test]
fn zipkin_kafka_kinds_errors_and_peers() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "zipkin-json/zipkin-messaging-kafka.json");
    let count = |kind| spans.iter().filter(|s| s.kind == kind).count();
    assert_eq!(
        (
            count(SpanKind::Producer),
            count(SpanKind::Consumer),
            count(SpanKind::Unspecified)
        ),
        (9, 7, 12)
    );
    let errors: Vec<(String, &str)> = spans
        .iter()
        .filter(|s| s.is_error())
        .map(|s| (s.span_id.to_string(), s.status.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            ("2f77d5b0b8e0de35".to_owned(), "some error"),
            ("4a64a63e4b58e665".to_owned(), "some error"),
            ("568b33e6af8a225a".to_owned(), "")
        ]
    );
    let peers = spans
        .iter()
        .filter(|s| s.attributes.get_str("service.peer.name") == Some("kafka"))
        .count();
    assert_eq!(peers, 16);
    let root = span(&spans, "0562809467078eab");
    assert_eq!((root.parent_span_id, root.duration_ns()), (None, 26_000));
    assert_eq!(
        span(&spans, "2f77d5b0b8e0de35").parent_span_id,
        id("b4a2a87ee7f003bc")
    );
    let servicea: Vec<&Span> = spans
        .iter()
        .filter(|s| s.service_name() == "servicea")
        .collect();
    assert!(
        servicea
            .iter()
            .all(|s| Arc::ptr_eq(&s.resource, &servicea[0].resource))
    );
}

#[test]
fn zipkin_db_client_and_server_endpoints() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "zipkin-json/zipkin-simple-db-p6.json");
    assert_eq!(
        spans.iter().filter(|s| s.kind == SpanKind::Client).count(),
        4
    );
    let server = span(&spans, "19f84f102048e047");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.parent_span_id, None);
    assert_eq!(server.duration_ns(), 252_016_000);
    assert_eq!(
        server.attributes.get_str("network.peer.address"),
        Some("::1")
    );
    assert_eq!(server.attributes.get_i64("net.peer.port"), Some(53367));
    assert_eq!(
        server.attributes.get_str("network.local.address"),
        Some("172.23.250.16")
    );
    let insert = span(&spans, "5d532ef6fed52445");
    assert_eq!(insert.parent_span_id, id("19f84f102048e047"));
    assert_eq!(
        insert.attributes.get_str("service.peer.name"),
        Some("app_db")
    );
}

#[test]
fn zipkin_shared_spans_keep_one_id_and_assemble_nested() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "zipkin-json/zipkin-skew.json");
    let shared: Vec<&Span> = spans
        .iter()
        .filter(|s| s.span_id == SpanId::from_hex("74280ae0c10d8062").unwrap())
        .collect();
    assert_eq!(shared.len(), 2);
    assert_eq!(
        (shared[0].kind, shared[0].service_name()),
        (SpanKind::Server, "serviceb")
    );
    assert_eq!(
        (shared[1].kind, shared[1].service_name()),
        (SpanKind::Client, "servicea")
    );
    assert_eq!(shared[0].parent_span_id, id("bf396325699c84bf"));
    assert!(
        shared[0]
            .attributes
            .iter()
            .all(|kv| kv.key == "network.local.address"),
        "no trace of `shared`"
    );

    let traces = assemble(spans);
    assert_eq!(traces.len(), 1);
    let t = &traces[0];
    assert_eq!(t.structure.roots.len(), 1);
    assert_eq!(t.root().map(|s| s.name.as_str()), Some("get"));
    assert_eq!(t.structure.orphans().count(), 0);
    // get (servicea) → post client (servicea) → post server (serviceb) → async.
    assert_eq!(t.structure.depths().into_iter().max(), Some(3));
}

#[test]
fn zipkin_yelp_shared_ids_annotations_and_services() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let spans = read(&dir, "zipkin-json/zipkin-yelp.json");
    let twice = |hex: &str| {
        spans
            .iter()
            .filter(|s| s.span_id == SpanId::from_hex(hex).unwrap())
            .count()
    };
    for hex in ["7a778764a0d0b594", "f5f268651b2a2b34", "668ed78ad94b35a1"] {
        assert_eq!(twice(hex), 2, "{hex}");
    }
    assert_eq!(
        spans.iter().filter(|s| s.kind == SpanKind::Client).count(),
        11
    );
    assert_eq!(
        spans.iter().filter(|s| s.kind == SpanKind::Server).count(),
        4
    );
    let proxy = spans
        .iter()
        .find(|s| s.service_name() == "yelp_main/api_proxy")
        .unwrap();
    assert_eq!(proxy.events.len(), 1);
    assert_eq!(proxy.events[0].name, "py_zipkin.logging_end");
    assert_eq!(proxy.events[0].time_ns, 1_571_896_375_355_436_000);
    assert_eq!(proxy.duration_ns(), 88_935_000);
    assert_eq!(proxy.attributes.get_i64("net.host.port"), Some(31523));
    let traces = assemble(spans);
    assert_eq!(traces[0].structure.roots.len(), 1);
    assert_eq!(traces[0].structure.orphans().count(), 0);
}

#[test]
fn gzip_compressed_captures_read_the_same() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    for file in [
        "zipkin-json/zipkin-yelp.json",
        "jaeger-json/jaeger-ui_01.json",
    ] {
        let plain = std::fs::read(dir.join(file)).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&plain).unwrap();
        let mut gz = tempfile::Builder::new()
            .suffix(".json.gz")
            .tempfile()
            .unwrap();
        gz.write_all(&encoder.finish().unwrap()).unwrap();
        gz.flush().unwrap();

        let (expected, plain_summary) = read_all(&dir.join(file), &ReadOptions::default()).unwrap();
        let (spans, summary) = read_all(gz.path(), &ReadOptions::default()).unwrap();
        assert_eq!(summary.compression, Compression::Gzip, "{file}");
        assert_eq!(summary.format, plain_summary.format, "{file}");
        assert_eq!(
            summary.bytes,
            plain.len() as u64,
            "{file}: decompressed bytes"
        );
        assert_eq!(spans, expected, "{file}");
    }
}
