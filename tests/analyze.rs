#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
//! `faultline analyze` as a user runs it: on the recorded samples, on broken inputs,
//! with time windows, a focus and `--fail-on`. Which diagnosis each sample must get is
//! pinned elsewhere; these tests check the command's shape and contract.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::faultline;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn analyze(args: &[&str]) -> Output {
    faultline()
        .arg("analyze")
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run faultline analyze")
}

fn storm() -> String {
    sample("retry-storm.jsonl.zst").display().to_string()
}

fn baseline() -> String {
    sample("baseline-1.jsonl.zst").display().to_string()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let out = analyze(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// The storm's JSON report, read once for all the tests that compare against it (a
/// debug build takes seconds per read).
fn storm_json() -> &'static serde_json::Value {
    static REPORT: OnceLock<serde_json::Value> = OnceLock::new();
    REPORT.get_or_init(|| json(&[&storm()]))
}

/// The storm's text report with `--fail-on warning`, run once.
fn storm_text() -> &'static Output {
    static OUTPUT: OnceLock<Output> = OnceLock::new();
    OUTPUT.get_or_init(|| analyze(&["--fail-on", "warning", &storm()]))
}

/// A capture of one span of service `shop`, in OTLP JSON lines.
const ONE_SPAN: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}]},"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"GET /","kind":2,"startTimeUnixNano":"1767323045000000000","endTimeUnixNano":"1767323045100000000"}]}]}]}"#;

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn json_has_the_report_shape() {
    let report = storm_json();
    let spans = report["spans"].as_u64().unwrap();
    assert!(spans > 10_000, "{spans} spans");
    assert_eq!(report["inputs"][0]["spans"].as_u64(), Some(spans));
    assert_eq!(report["inputs"][0]["format"], "otlp-json");
    assert!(
        report["inputs"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("retry-storm.jsonl.zst")
    );
    assert_eq!(
        report["profile"], "demo",
        "the demo cluster's capture gets the demo profile"
    );
    assert!(report["traces"].as_u64().unwrap() > 0);
    let services: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(services.contains(&"payments"), "{services:?}");
    assert!(report["start_ns"].as_i64().unwrap() < report["end_ns"].as_i64().unwrap());

    let findings = report["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for finding in findings {
        for key in ["kind", "severity", "subject", "summary", "detector"] {
            assert!(finding[key].is_string(), "{key} in {finding}");
        }
        assert!(finding["figures"].is_array());
        for id in finding["evidence"].as_array().unwrap() {
            let id = id.as_str().unwrap();
            assert_eq!(id.len(), 32, "trace ids are 32 hex digits: {id}");
        }
    }
    let diagnoses = report["diagnoses"].as_array().unwrap();
    assert!(
        !diagnoses.is_empty(),
        "a retry storm is diagnosed as something"
    );
    for diagnosis in diagnoses {
        assert!(diagnosis["title"].is_string());
        let confidence = diagnosis["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence));
        assert!(diagnosis["playbook"].is_string());
        assert!(!diagnosis["root_causes"].as_array().unwrap().is_empty());
        for index in diagnosis["findings"].as_array().unwrap() {
            let index = index.as_u64().unwrap() as usize;
            assert!(
                index < findings.len(),
                "finding indices point into findings"
            );
        }
    }
    // Best first.
    let confidences: Vec<f64> = diagnoses
        .iter()
        .map(|d| d["confidence"].as_f64().unwrap())
        .collect();
    assert!(
        confidences.windows(2).all(|w| w[0] >= w[1]),
        "{confidences:?}"
    );
}

#[test]
fn fail_on_warning_fails_the_storm_and_passes_the_healthy_baseline() {
    let storm_run = storm_text();
    assert_eq!(storm_run.status.code(), Some(1), "{}", stderr(storm_run));
    assert!(
        stdout(storm_run).contains("CRITICAL"),
        "the report is printed anyway"
    );
    let baseline_run = analyze(&["--fail-on", "warning", &baseline()]);
    let text = stdout(&baseline_run);
    assert_eq!(baseline_run.status.code(), Some(0), "{text}");
    assert!(
        text.contains("HEALTHY     The capture looks healthy"),
        "{text}"
    );
    assert!(!text.contains("root cause"), "{text}");
}

#[test]
fn text_and_markdown_lead_with_the_summary() {
    let report = storm_json();
    let top = &report["diagnoses"][0];
    let title = top["title"].as_str().unwrap();
    let playbook = top["playbook"].as_str().unwrap();
    let cause = &top["root_causes"][0];

    let text = stdout(storm_text());
    // A pipe is not a terminal: --color auto means none here.
    assert!(!text.contains('\x1b'), "no colour codes");
    assert!(text.contains(title), "{text}");
    assert!(text.contains(&format!(
        "root cause  {} at {}",
        cause["kind"].as_str().unwrap(),
        cause["target"].as_str().unwrap()
    )));
    assert!(text.contains("confidence  "));
    assert!(text.contains("from the capture start"));
    assert!(text.contains(&format!("faultline playbook show {playbook}")));
    assert!(text.find(title).unwrap() < text.find("Findings (").unwrap());
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "too wide: {line}");
    }

    // Without --fail-on, findings never fail the command.
    let out = analyze(&["--format", "markdown", &storm()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let markdown = stdout(&out);
    assert!(markdown.starts_with(&format!("# Incident analysis: {title}\n")));
    assert!(markdown.contains(&format!("| Diagnosis | **{title}** |")));
    assert!(markdown.contains(&format!("`faultline playbook show {playbook}`")));
    assert!(markdown.contains("## Findings"));
    assert!(!markdown.contains('\x1b'));
}

#[test]
fn a_missing_file_is_an_input_error_naming_it() {
    let out = analyze(&["/nonexistent/capture.jsonl"]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("/nonexistent/capture.jsonl"), "{message}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn a_garbage_file_is_an_input_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"resourceSpans\": [ this is not json\n").unwrap();
    let out = analyze(&[garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("garbage.json"), "{message}");
    assert!(message.contains("--lenient"), "{message}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["--format", "yaml", "x"],
        vec!["--fail-on", "loud", "x"],
        vec!["--since", "yesterday", "x"],
        vec![],
    ] {
        let out = analyze(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = analyze(&[
        "--since",
        "2026-01-01T00:00:10Z",
        "--until",
        "2026-01-01T00:00:00Z",
        &storm(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--since must be earlier than --until"));
}

#[test]
fn since_and_until_narrow_the_window() {
    let all = storm_json();
    let spans = all["spans"].as_u64().unwrap();
    let start = all["start_ns"].as_i64().unwrap();

    let narrow = json(&["--since", "+10s", "--until", "+20s", &storm()]);
    let kept = narrow["spans"].as_u64().unwrap();
    assert!(kept > 0 && kept < spans, "{kept} of {spans}");
    assert_eq!(narrow["inputs"][0]["filtered"].as_u64(), Some(spans - kept));
    // Spans overlapping the window are kept: none starts at or after its end, none
    // ends before its start.
    assert!(narrow["start_ns"].as_i64().unwrap() < start + 20_000_000_000);
    assert!(narrow["end_ns"].as_i64().unwrap() >= start + 10_000_000_000);

    // Absolute times filter while reading, with the same result as the offsets.
    let at = |ns: i64| {
        humantime::format_rfc3339_nanos(
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64),
        )
        .to_string()
    };
    let since = at(start + 10_000_000_000);
    let until = at(start + 20_000_000_000);
    let absolute = json(&["--since", &since, "--until", &until, &storm()]);
    assert_eq!(absolute["spans"], narrow["spans"]);
    assert_eq!(absolute["start_ns"], narrow["start_ns"]);
    assert_eq!(
        absolute["inputs"][0]["filtered"],
        narrow["inputs"][0]["filtered"]
    );
}

#[test]
fn service_focuses_the_findings() {
    let all = storm_json();
    let out = analyze(&["--format", "json", "--service", "worker", &storm()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let focused: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(focused["focus"], "worker");
    assert_eq!(focused["spans"], all["spans"], "the capture is the same");
    assert!(all.get("focus").is_none());
    let findings = focused["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "the storm's worker has findings");
    assert!(findings.len() < all["findings"].as_array().unwrap().len());
    for finding in findings {
        let subject = finding["subject"].as_str().unwrap();
        assert!(subject.contains("worker"), "{subject}");
    }
}

#[test]
fn an_unknown_service_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("one.jsonl");
    std::fs::write(&capture, format!("{ONE_SPAN}\n")).unwrap();
    let out = analyze(&["--service", "no-such-service", capture.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("no-such-service"), "{message}");
    assert!(message.contains("services: shop"), "{message}");
    let out = analyze(&["--service", "shop", capture.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn lenient_skips_bad_records_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("half-broken.jsonl");
    std::fs::write(&capture, format!("{ONE_SPAN}\n{{not json\n")).unwrap();
    let path = capture.to_str().unwrap();

    let strict = analyze(&[path]);
    assert_eq!(strict.status.code(), Some(2));
    assert!(
        stderr(&strict).contains("half-broken.jsonl:2:"),
        "{}",
        stderr(&strict)
    );

    let report = json(&["--lenient", path]);
    assert_eq!(report["inputs"][0]["skipped"], 1);
    assert_eq!(report["spans"], 1);
    assert_eq!(report["services"], serde_json::json!(["shop"]));
    assert_eq!(report["profile"], "production");
    let text = stdout(&analyze(&["--lenient", path]));
    assert!(
        text.contains("(otlp-json, 1 span, 1 bad record skipped)"),
        "{text}"
    );
}
