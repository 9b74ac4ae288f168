//! Interop with a real client: the OpenTelemetry Python SDK (from PyPI) exports over
//! OTLP/gRPC and OTLP/HTTP to `faultline record`; the capture must hold exactly the
//! spans the SDK says it sent, with their parents.
//!
//! The SDK lives in a virtualenv that `.ci/run` creates at `.venv` (or point
//! `FAULTLINE_PYTHON` at another interpreter). Without it the test skips, saying so —
//! except under `FAULTLINE_REQUIRE_INTEROP=1` (CI), where a missing SDK is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use common::Recorder;
use faultline_model::read::{ReadOptions, read_all};

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("FAULTLINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let has_sdk = Command::new(&candidate)
        .args(["-c", "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_sdk {
        return Some(candidate);
    }
    if std::env::var("FAULTLINE_REQUIRE_INTEROP").as_deref() == Ok("1") {
        panic!(
            "FAULTLINE_REQUIRE_INTEROP=1 but {} has no OpenTelemetry SDK",
            candidate.display()
        );
    }
    eprintln!(
        "SKIPPED: no OpenTelemetry Python SDK at {} (run .ci/run, or set FAULTLINE_PYTHON)",
        candidate.display()
    );
    None
}

type Shape = BTreeMap<(String, String), (Option<String>, String, String, String)>;

fn export_and_compare(protocol: &str) {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(format!("{protocol}.jsonl"));
    let recorder = Recorder::start(&out, &[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/python_export.py");
    let run = Command::new(&python)
        .arg(&script)
        .args([
            "--protocol",
            protocol,
            "--endpoint",
            &format!("http://{}", recorder.addr),
        ])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "python exporter failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (status, stderr) = recorder.stop("INT");
    assert!(status.success(), "{stderr}");

    let mut sent: Shape = BTreeMap::new();
    for line in String::from_utf8(run.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        sent.insert(
            (s("trace_id").unwrap(), s("span_id").unwrap()),
            (
                s("parent_id"),
                s("name").unwrap(),
                s("service").unwrap(),
                s("kind").unwrap(),
            ),
        );
    }
    assert_eq!(sent.len(), 20, "5 requests × 4 spans");

    let (spans, _) = read_all(&out, &ReadOptions::default()).unwrap();
    assert_eq!(
        spans.len(),
        sent.len(),
        "{protocol}: exactly the spans sent, none twice"
    );
    let got: Shape = spans
        .iter()
        .map(|s| {
            (
                (s.trace_id.to_string(), s.span_id.to_string()),
                (
                    s.parent_span_id.map(|p| p.to_string()),
                    s.name.clone(),
                    s.service_name().to_owned(),
                    s.kind.as_str().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(got, sent, "{protocol}");

    // What the SDK put in beyond identity survives too.
    let server_error = spans.iter().find(|s| s.is_error()).unwrap();
    assert_eq!(server_error.status.message, "card declined");
    assert_eq!(server_error.events[0].name, "charged");
    assert_eq!(
        server_error.events[0]
            .attributes
            .get("amount")
            .and_then(|v| v.as_f64()),
        Some(12.5)
    );
    let producer = spans.iter().find(|s| s.name == "orders publish").unwrap();
    assert_eq!(producer.links.len(), 1);
    assert_eq!(
        producer.links[0].attributes.get_str("reason"),
        Some("audit")
    );
    assert!(
        spans
            .iter()
            .all(|s| s.end_ns >= s.start_ns && s.start_ns > 0)
    );
}

#[test]
fn python_sdk_over_grpc() {
    export_and_compare("grpc");
}

#[test]
fn python_sdk_over_http_protobuf() {
    export_and_compare("http");
}
