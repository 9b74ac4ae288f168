//! The recorded captures in `samples/` (made by `scripts/record-samples.sh`): every
//! capture has its labels and reads cleanly, the labels agree with the catalog and with
//! the capture's time range, and no capture carries a fault-injection marker — the
//! diagnosis must come from the signals alone (PRODUCT.md §3).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::{Path, PathBuf};

use faultline_cluster::scenarios::CATALOG;
use faultline_model::read::{ReadOptions, read_all};
use faultline_model::span::{Span, Value};

fn samples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut captures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .collect();
    captures.sort();
    assert!(
        !captures.is_empty(),
        "samples/ holds no captures: run scripts/record-samples.sh"
    );
    captures
}

fn labels_of(capture: &Path) -> serde_json::Value {
    let name = capture.file_name().unwrap().to_string_lossy();
    let labels = capture.with_file_name(name.replace(".jsonl.zst", ".labels.json"));
    let text =
        std::fs::read_to_string(&labels).unwrap_or_else(|e| panic!("{}: {e}", labels.display()));
    serde_json::from_str(&text).unwrap()
}

/// Words that would give the fault away: how it was made, and every ground-truth kind.
fn markers() -> Vec<String> {
    let mut words: Vec<String> = [
        "toxic",
        "scenario",
        "inject",
        "chaos",
        "malformed",
        "disk_delay",
        "clock_offset",
    ]
    .iter()
    .map(|w| (*w).to_owned())
    .collect();
    words.extend(CATALOG.iter().map(|s| s.root_cause_kind.to_owned()));
    words.extend(CATALOG.iter().map(|s| s.name.to_owned()));
    words
}

fn push_attributes(attrs: &faultline_model::span::Attributes, out: &mut Vec<String>) {
    for kv in attrs.iter() {
        out.push(kv.key.clone());
        if let Value::Str(s) = &kv.value {
            out.push(s.clone());
        }
    }
}

fn strings_of(span: &Span) -> Vec<String> {
    let mut out = vec![span.name.clone()];
    push_attributes(&span.attributes, &mut out);
    push_attributes(&span.resource.attributes, &mut out);
    for event in &span.events {
        out.push(event.name.clone());
        push_attributes(&event.attributes, &mut out);
    }
    out
}

#[test]
fn every_catalog_scenario_and_two_baselines_are_recorded() {
    let scenarios: Vec<String> = samples()
        .iter()
        .map(|c| labels_of(c)["scenario"].as_str().unwrap().to_owned())
        .collect();
    for s in CATALOG {
        assert!(
            scenarios.iter().any(|r| r == s.name),
            "no sample of {}",
            s.name
        );
    }
    assert!(scenarios.iter().filter(|s| *s == "baseline").count() >= 2);
}

#[test]
fn samples_read_cleanly_agree_with_their_labels_and_carry_no_markers() {
    let markers = markers();
    for capture in samples() {
        let size = std::fs::metadata(&capture).unwrap().len();
        assert!(
            size < 8 << 20,
            "{} is {size} bytes: keep samples small",
            capture.display()
        );
        let labels = labels_of(&capture);
        let (spans, _) = read_all(&capture, &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", capture.display()));
        assert!(
            spans.len() > 1000,
            "{}: {} spans",
            capture.display(),
            spans.len()
        );
        assert_eq!(
            labels["spans"].as_u64(),
            Some(spans.len() as u64),
            "{}",
            capture.display()
        );

        let scenario = labels["scenario"].as_str().unwrap();
        if scenario == "baseline" {
            assert!(labels["root_cause"].is_null());
        } else {
            let entry = CATALOG.iter().find(|s| s.name == scenario).unwrap();
            assert_eq!(labels["root_cause"]["kind"], entry.root_cause_kind);
            // The fault happened inside the capture, with traffic on both sides.
            let first = spans.iter().map(|s| s.start_ns).min().unwrap() / 1_000_000;
            let last = spans.iter().map(|s| s.end_ns).max().unwrap() / 1_000_000;
            let injected = labels["injected_at_ms"].as_u64().unwrap();
            let healed = labels["healed_at_ms"].as_u64().unwrap();
            assert!(
                first < injected && injected < healed && healed < last,
                "{}",
                capture.display()
            );
        }

        for span in &spans {
            for text in strings_of(span) {
                let lower = text.to_lowercase();
                for marker in &markers {
                    assert!(
                        !lower.contains(marker.as_str()),
                        "{}: span {:?} of {} says {text:?}, which gives the fault away ({marker})",
                        capture.display(),
                        span.name,
                        span.resource.service_name()
                    );
                }
            }
        }
    }
}
