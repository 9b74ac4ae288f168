//! The diagnosis on every labelled capture in `samples/`: the right incident kind and
//! root cause on top, pinned as an insta snapshot of the JSON report; nothing above
//! warning on the healthy baselines.
//!
//! A changed snapshot is a changed diagnosis: review it with `cargo insta review`
//! (or compare the `.snap.new` file) before accepting it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use faultline_analyzers::accuracy::{Labels, cause_matches, expected_kind, labelled_captures};
use faultline_analyzers::load::{TimeFilter, load};
use faultline_analyzers::report::{analyze, profile_for};
use faultline_analyzers::{Severity, Thresholds};
use faultline_model::ReadOptions;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

#[test]
fn every_sample_gets_the_right_top_diagnosis() {
    let captures = labelled_captures(&samples()).unwrap();
    assert!(
        captures.len() >= 15,
        "expected the 13 scenarios and 2 baselines in samples/"
    );
    let mut wrong = Vec::new();
    for (capture, labels_path) in captures {
        let labels: Labels =
            serde_json::from_str(&std::fs::read_to_string(&labels_path).unwrap()).unwrap();
        let (table, _) = load(
            std::slice::from_ref(&capture),
            &ReadOptions::default(),
            TimeFilter::default(),
        )
        .unwrap();
        let thresholds = Thresholds::for_profile(profile_for(&table));
        let report = analyze(&table, &thresholds, Vec::new());
        let name = labels_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".labels.json")
            .to_owned();

        match (expected_kind(&labels.scenario), &labels.root_cause) {
            (Some(kind), Some(cause)) => {
                let top = report.diagnoses.first();
                let kind_ok = top.is_some_and(|d| d.kind == kind);
                let cause_ok = top.is_some_and(|d| {
                    d.root_causes
                        .first()
                        .is_some_and(|c| cause_matches(c, cause))
                });
                if !kind_ok || !cause_ok {
                    wrong.push(format!(
                        "{name}: expected {} / {} {}, got {:?}",
                        kind.as_str(),
                        cause.kind,
                        cause.target,
                        top.map(|d| (
                            d.kind,
                            d.root_causes.first().map(|c| (c.kind, c.target.clone()))
                        ))
                    ));
                }
            }
            _ => {
                let loud: Vec<String> = report
                    .findings
                    .iter()
                    .filter(|f| f.severity > Severity::Warning)
                    .map(|f| f.summary.clone())
                    .collect();
                if !loud.is_empty() {
                    wrong.push(format!(
                        "{name} (healthy): findings above warning: {loud:#?}"
                    ));
                }
            }
        }

        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_suffix(name.clone());
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| {
            insta::assert_json_snapshot!(
                "report",
                serde_json::json!({
                    "spans": report.spans,
                    "traces": report.traces,
                    "profile": report.profile,
                    "diagnoses": report.diagnoses,
                    "findings": report.findings,
                })
            );
        });
    }
    assert!(wrong.is_empty(), "wrong diagnoses:\n{}", wrong.join("\n"));
}
