//! Analysis of trace files written by other projects' tools (`../shared/interop/`,
//! outside the repo): every file analyses without error, and the OpenTelemetry Python
//! SDK capture's retried 503 is seen as a retry on the checkout → payment edge.
//!
//! Skips, saying so, where `../shared/interop` is absent (a failure under
//! `FAULTLINE_REQUIRE_INTEROP=1`, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use faultline_analyzers::load::{TimeFilter, load};
use faultline_analyzers::report::{analyze, profile_for};
use faultline_analyzers::{FindingKind, Profile, Severity, Subject, Thresholds};
use faultline_model::ReadOptions;

fn interop() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/interop");
    if dir.is_dir() {
        Some(dir)
    } else {
        // CI sets this: there, a missing corpus is a failure, not a skip.
        assert!(
            std::env::var("FAULTLINE_REQUIRE_INTEROP").as_deref() != Ok("1"),
            "FAULTLINE_REQUIRE_INTEROP=1 but {} is absent",
            dir.display()
        );
        eprintln!(
            "skipping: {} is absent (the interop corpus lives beside the repo)",
            dir.display()
        );
        None
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for format in std::fs::read_dir(dir).unwrap() {
        let format = format.unwrap().path();
        if format.is_dir() {
            for file in std::fs::read_dir(&format).unwrap() {
                found.push(file.unwrap().path());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_interop_file_analyses_without_a_diagnosis_it_cannot_back() {
    let Some(dir) = interop() else { return };
    let files = files(&dir);
    assert!(
        files.len() >= 15,
        "expected the interop corpus, found {files:?}"
    );
    for file in files {
        let (table, _) = load(
            std::slice::from_ref(&file),
            &ReadOptions::default(),
            TimeFilter::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!table.is_empty(), "{}: no spans", file.display());
        assert_eq!(
            profile_for(&table),
            Profile::Production,
            "{}",
            file.display()
        );
        let report = analyze(&table, &Thresholds::production(), Vec::new());
        // A handful of example traces hold no incident: nothing in them may be called
        // critical.
        assert!(
            report.worst().is_none_or(|s| s < Severity::Critical),
            "{}: {:#?}",
            file.display(),
            report.findings
        );
    }
}

#[test]
fn the_python_sdk_retry_is_a_retry_on_checkout_to_payment() {
    let Some(dir) = interop() else { return };
    for name in [
        "python-sdk-3-services.jsonl",
        "python-sdk-3-services-batched.jsonl",
    ] {
        let file = dir.join("otlp-json").join(name);
        let (table, _) = load(
            std::slice::from_ref(&file),
            &ReadOptions::default(),
            TimeFilter::default(),
        )
        .unwrap();
        let report = analyze(&table, &Thresholds::production(), Vec::new());
        let retries: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::RetryAmplification)
            .collect();
        assert_eq!(retries.len(), 1, "{name}: {:#?}", report.findings);
        assert_eq!(
            retries[0].subject,
            Subject::Edge("checkout".into(), "payment".into())
        );
        assert_eq!(retries[0].figure("attempts"), Some(2.0));
        assert_eq!(retries[0].figure("logical_calls"), Some(1.0));
        assert_eq!(
            retries[0].evidence.len(),
            1,
            "the retried call's trace is the evidence"
        );
    }
}
