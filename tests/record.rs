//! `faultline record` and `faultline inspect` as a user runs them: real processes, real
//! sockets on 127.0.0.1, real signals.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;

use common::{Recorder, faultline};
use faultline_model::read::{ReadOptions, read_all};
use faultline_model::synth::Synth;
use faultline_model::write::to_export_request;
use faultline_model::{Span, SpanId, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

fn ids(spans: &[Span]) -> BTreeSet<(TraceId, SpanId, Option<SpanId>)> {
    spans
        .iter()
        .map(|s| (s.trace_id, s.span_id, s.parent_span_id))
        .collect()
}

fn send(addr: std::net::SocketAddr, batches: &[Vec<Span>]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        for batch in batches {
            let response = client
                .export(to_export_request(batch))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(response.partial_success, None);
        }
    });
}

#[test]
fn records_exactly_what_was_sent_and_stops_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("capture.jsonl.zst");
    let recorder = Recorder::start(&out, &[]);
    let mut synth = Synth::new(11);
    let batches: Vec<Vec<Span>> = (0..20).map(|_| synth.spans(50)).collect();
    send(recorder.addr, &batches);
    let (status, stderr) = recorder.stop("INT");
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("wrote 1,000 spans"), "{stderr}");

    let (spans, summary) = read_all(&out, &ReadOptions::default()).unwrap();
    assert_eq!(summary.compression, faultline_model::Compression::Zstd);
    let sent: Vec<Span> = batches.concat();
    assert_eq!(spans.len(), sent.len());
    assert_eq!(ids(&spans), ids(&sent), "parent links intact");
}

#[test]
fn rotates_and_stops_on_sigterm_without_losing_a_span() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cap.jsonl");
    let recorder = Recorder::start(&out, &["--rotate-size", "32KiB"]);
    let mut synth = Synth::new(12);
    let batches: Vec<Vec<Span>> = (0..30).map(|_| synth.spans(40)).collect();
    send(recorder.addr, &batches);
    let (status, stderr) = recorder.stop("TERM");
    assert!(status.success(), "{stderr}");

    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 3, "expected rotation, got {files:?}");
    let mut got = Vec::new();
    for f in &files {
        got.extend(read_all(f, &ReadOptions::default()).unwrap().0);
    }
    assert_eq!(ids(&got), ids(&batches.concat()));
    assert_eq!(got.len(), 1200);
}

#[test]
fn keep_bounds_the_parts_and_keeps_the_newest_spans() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cap.jsonl");
    // A part of an earlier recording: refused, then deleted with --force.
    let stale = dir.path().join("cap-000009.jsonl");
    std::fs::write(&stale, "").unwrap();
    let refused = faultline()
        .args([
            "record",
            "--listen",
            "127.0.0.1:0",
            "--rotate-size",
            "32KiB",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("earlier recording"));
    let recorder = Recorder::start(&out, &["--rotate-size", "32KiB", "--keep", "2", "--force"]);
    assert!(!stale.exists());
    let mut synth = Synth::new(13);
    let batches: Vec<Vec<Span>> = (0..30).map(|_| synth.spans(40)).collect();
    send(recorder.addr, &batches);
    let (status, stderr) = recorder.stop("TERM");
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("older parts (--keep)"), "{stderr}");

    let parts = faultline_model::write::recording_parts(&out).unwrap();
    let mut on_disk: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    on_disk.sort();
    assert_eq!(parts.len(), 3, "two older parts and the file: {parts:?}");
    assert_eq!(parts.last(), Some(&out));
    let mut listed = parts.clone();
    listed.sort();
    assert_eq!(on_disk, listed);
    let mut got = Vec::new();
    for f in &parts {
        got.extend(read_all(f, &ReadOptions::default()).unwrap().0);
    }
    // The oldest spans went with the deleted parts; the newest are all there.
    assert!(got.len() < 1200, "{}", got.len());
    let newest = batches.last().unwrap();
    assert!(ids(newest).is_subset(&ids(&got)));
}

#[test]
fn refuses_to_overwrite_a_capture_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("precious.jsonl");
    std::fs::write(&out, "keep me").unwrap();
    let output = faultline()
        .args(["record", "--listen", "127.0.0.1:0", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists (use --force"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
}

#[test]
fn duration_stops_recording_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("short.jsonl");
    let output = faultline()
        .args([
            "record",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "300ms",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["spans"], 0);
    assert_eq!(summary["receiver"]["requests"], 0);
    assert!(out.exists(), "an empty capture is still a capture");
}

#[test]
fn inspect_reports_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.jsonl.gz");
    let mut file = faultline_model::write::CaptureFile::create(&out, Default::default()).unwrap();
    file.write_batch(&Synth::new(3).spans(80)).unwrap();
    file.finish().unwrap();

    let text = faultline().arg("inspect").arg(&out).output().unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("otlp-json, gzip"), "{text}");
    assert!(text.contains("spans     80 in 10 traces"), "{text}");
    assert!(
        text.contains("services  3: gateway (20), payments (40), worker (20)"),
        "{text}"
    );
    assert!(text.contains("problems  none"), "{text}");

    let json = faultline()
        .args(["inspect", "--format", "json"])
        .arg(&out)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["traces"], 10);
    assert_eq!(report["files"][0]["format"], "otlp-json");
    assert_eq!(report["problems"]["orphans"], 0);
}

#[test]
fn inspect_names_the_file_and_line_of_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    let mut text = Vec::new();
    faultline_model::write::encode_line(&Synth::new(4).spans(8), &mut text);
    text.extend_from_slice(b"{\"resourceSpans\": [{\"scopeSpans\": 12}]}\n");
    std::fs::write(&bad, &text).unwrap();

    let strict = faultline().arg("inspect").arg(&bad).output().unwrap();
    assert_eq!(strict.status.code(), Some(2));
    let err = String::from_utf8_lossy(&strict.stderr);
    assert!(err.contains(&format!("{}:2:", bad.display())), "{err}");
    assert!(err.contains("--lenient"), "{err}");

    let lenient = faultline()
        .args(["inspect", "--lenient"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(lenient.status.success());
    let out = String::from_utf8_lossy(&lenient.stdout);
    assert!(out.contains("unparseable records: 1"), "{out}");
    assert!(out.contains("spans     8 in 1 trace\n"), "{out}");

    let missing = faultline()
        .args(["inspect", "/nonexistent/capture.jsonl"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&missing.stderr).contains("--lenient"));
}

#[test]
fn a_busy_port_fails_with_a_hint_and_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.jsonl");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let output = faultline()
        .args(["record", "--listen", &addr, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("pick another port with --listen"), "{err}");
    assert!(!out.exists(), "no empty capture left behind");
}
