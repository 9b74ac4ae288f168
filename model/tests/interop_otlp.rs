//! OTLP files written by other projects' tools (`../shared/interop`, outside the repo:
//! these tests skip with a message where it is absent). Expected counts were derived
//! with a separate Python script over the raw JSON, not with faultline's reader.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use faultline_model::read::{ReadOptions, read_all};
use faultline_model::trace::{TraceProblem, assemble};
use faultline_model::{Format, SpanId, SpanKind, StatusCode, TraceId};

struct Expect {
    file: &'static str,
    format: Format,
    spans: usize,
    traces: usize,
    services: &'static [&'static str],
}

const OTLP_FILES: &[Expect] = &[
    Expect {
        file: "otlp-json/jaeger-fixture-default.json",
        format: Format::OtlpJson,
        spans: 1,
        traces: 1,
        services: &["query11-service"],
    },
    Expect {
        file: "otlp-json/jaeger-fixture-example_trace.json",
        format: Format::OtlpJson,
        spans: 5,
        traces: 1,
        services: &[
            "example-service-1",
            "example-service-2",
            "example-service-3",
        ],
    },
    Expect {
        file: "otlp-json/jaeger-fixture-link_attributes_trace.json",
        format: Format::OtlpJson,
        spans: 1,
        traces: 1,
        services: &["query25-service"],
    },
    Expect {
        file: "otlp-json/jaeger-fixture-log_tags_trace.json",
        format: Format::OtlpJson,
        spans: 1,
        traces: 1,
        services: &["query02-service"],
    },
    Expect {
        file: "otlp-json/jaeger-fixture-multi_index_trace.json",
        format: Format::OtlpJson,
        spans: 2,
        traces: 1,
        services: &["query05-service"],
    },
    Expect {
        file: "otlp-json/jaeger-fixture-process_tags_trace.json",
        format: Format::OtlpJson,
        spans: 1,
        traces: 1,
        services: &["query03-service"],
    },
    Expect {
        file: "otlp-json/jaeger-fixture-scope_attributes_trace.json",
        format: Format::OtlpJson,
        spans: 1,
        traces: 1,
        services: &["query24-service"],
    },
    Expect {
        file: "otlp-json/jaeger-fixture-span_tags_trace.json",
        format: Format::OtlpJson,
        spans: 1,
        traces: 1,
        services: &["query01-service"],
    },
    // Two records of one span: the reader keeps both, assembly drops the exact repeat.
    Expect {
        file: "otlp-json/jaeger-otlp2jaeger-in.json",
        format: Format::OtlpJson,
        spans: 2,
        traces: 1,
        services: &["telemetrygen"],
    },
    Expect {
        file: "otlp-json/otel-proto-example-trace.json",
        format: Format::OtlpJson,
        spans: 1,
        traces: 1,
        services: &["my.service"],
    },
    Expect {
        file: "otlp-json/python-sdk-3-services-batched.jsonl",
        format: Format::OtlpJson,
        spans: 11,
        traces: 2,
        services: &["checkout", "frontend", "payment"],
    },
    Expect {
        file: "otlp-json/python-sdk-3-services.jsonl",
        format: Format::OtlpJson,
        spans: 11,
        traces: 2,
        services: &["checkout", "frontend", "payment"],
    },
    Expect {
        file: "otlp-proto/python-sdk-grpc-002.binpb",
        format: Format::OtlpProto,
        spans: 1,
        traces: 1,
        services: &["payment"],
    },
    Expect {
        file: "otlp-proto/python-sdk-http-001.binpb",
        format: Format::OtlpProto,
        spans: 1,
        traces: 1,
        services: &["payment"],
    },
];

fn check(dir: &Path, expect: &Expect) {
    let path = dir.join(expect.file);
    let (spans, summary) =
        read_all(&path, &ReadOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", expect.file));
    assert_eq!(summary.format, expect.format, "{}", expect.file);
    assert_eq!(spans.len(), expect.spans, "{}: spans", expect.file);
    assert_eq!(
        summary.spans as usize, expect.spans,
        "{}: summary.spans",
        expect.file
    );
    let traces: BTreeSet<TraceId> = spans.iter().map(|s| s.trace_id).collect();
    assert_eq!(traces.len(), expect.traces, "{}: traces", expect.file);
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service_name()).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        expect.services,
        "{}: services",
        expect.file
    );
    assert_eq!(summary.skipped, 0, "{}", expect.file);
}

#[test]
fn every_otlp_interop_file_reads_with_the_right_counts() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    for expect in OTLP_FILES {
        check(&dir, expect);
    }
    let expected: Vec<&str> = OTLP_FILES.iter().map(|e| e.file).collect();
    common::assert_all_files_expected(&dir, &["otlp-json", "otlp-proto"], &expected);
}

#[test]
fn proto_example_uppercase_ids_and_number_kinds() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let (spans, _) = read_all(
        &dir.join("otlp-json/otel-proto-example-trace.json"),
        &ReadOptions::default(),
    )
    .unwrap();
    let span = &spans[0];
    assert_eq!(
        span.trace_id.to_string(),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(
        span.parent_span_id,
        Some(SpanId::from_hex("eee19b7ec3c1b173").unwrap())
    );
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.duration_ns(), 1_000_000_000);
    assert_eq!(span.scope.name, "my.library");
    assert_eq!(
        span.scope.attributes.get_str("my.scope.attribute"),
        Some("some scope attribute")
    );
    // Its parent is not in the file: assembly keeps it as a flagged orphan.
    let traces = assemble(spans);
    assert_eq!(traces[0].structure.orphans().count(), 1);
}

#[test]
fn python_sdk_capture_assembles_across_three_services() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    for file in [
        "otlp-json/python-sdk-3-services.jsonl",
        "otlp-json/python-sdk-3-services-batched.jsonl",
    ] {
        let (spans, _) = read_all(&dir.join(file), &ReadOptions::default()).unwrap();
        let traces = assemble(spans);
        // The two files come from two runs of the SDK, so their ids differ.
        assert_eq!(traces.len(), 2, "{file}");
        let main = traces.iter().max_by_key(|t| t.spans.len()).unwrap();
        assert_eq!(main.spans.len(), 10, "{file}");
        assert_eq!(
            main.structure.roots.len(),
            1,
            "{file}: children before parents still link"
        );
        assert_eq!(main.root().map(|s| s.name.as_str()), Some("GET /checkout"));
        assert_eq!(main.structure.orphans().count(), 0);
        let depths = main.structure.depths();
        let db_depths: Vec<usize> = (0..main.spans.len())
            .filter(|&i| main.spans[i].name == "db.query")
            .map(|i| depths[i])
            .collect();
        assert_eq!(
            db_depths,
            vec![5, 5],
            "{file}: frontend→checkout→payment→db is five hops down"
        );
        // The retried call: one attempt failed with an error status.
        let errors = main
            .spans
            .iter()
            .filter(|s| s.status.code == StatusCode::Error)
            .count();
        assert_eq!(errors, 2, "{file}");
        // Remote-parent bits survive: 768 = has-remote-parent + is-remote.
        assert!(main.spans.iter().any(|s| s.flags == 768));
        let consumer = traces
            .iter()
            .flat_map(|t| &t.spans)
            .find(|s| s.kind == SpanKind::Consumer)
            .unwrap();
        assert_eq!(consumer.links.len(), 1, "{file}: producer→consumer link");
        assert_eq!(consumer.links[0].trace_id, main.trace_id);
    }
}

#[test]
fn duplicate_span_in_otlp2jaeger_is_dropped_by_assembly() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let (spans, _) = read_all(
        &dir.join("otlp-json/jaeger-otlp2jaeger-in.json"),
        &ReadOptions::default(),
    )
    .unwrap();
    let traces = assemble(spans);
    assert_eq!(traces[0].spans.len(), 1);
    let problems = &traces[0].structure.problems;
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, TraceProblem::RepeatedSpan { dropped: 1, .. })),
        "{problems:?}"
    );
}

#[test]
fn otlp_and_jaeger_renderings_of_one_trace_assemble_into_the_same_tree() {
    let Some(dir) = common::interop_dir() else {
        return;
    };
    let shape = |file: &str| {
        let (spans, _) =
            read_all(&dir.join(file), &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let traces = assemble(spans);
        traces
            .iter()
            .map(|t| {
                let edges: BTreeSet<(String, Option<String>, String, u64, u64)> = t
                    .spans
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let parent = t.structure.parent[i].map(|p| t.spans[p].span_id.to_string());
                        // Jaeger keeps microseconds: compare at that precision.
                        (
                            s.span_id.to_string(),
                            parent,
                            s.name.clone(),
                            s.start_ns / 1000,
                            s.duration_ns() / 1000,
                        )
                    })
                    .collect();
                (t.trace_id, t.structure.roots.len(), edges)
            })
            .collect::<Vec<_>>()
    };
    let otlp = shape("otlp-json/jaeger-otlp2jaeger-in.json");
    let jaeger = shape("jaeger-json/jaeger-otlp2jaeger-out.json");
    assert_eq!(otlp, jaeger);
}
