//! The fuzz targets' seed corpus (`fuzz/corpus/<target>/`), run as ordinary tests: every
//! seed goes through exactly the function its cargo-fuzz target calls. New crashers
//! found by fuzzing are added to the corpus, so they stay fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::path::PathBuf;

use faultline_model::Format;
use faultline_model::fuzzing;

fn run_corpus(target: &str, check: impl Fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    seeds.sort();
    assert!(
        seeds.len() >= 5,
        "{target}: only {} seeds in {}",
        seeds.len(),
        dir.display()
    );
    for seed in seeds {
        let data = std::fs::read(&seed).unwrap();
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)))
        {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: seed {} failed: {message}", seed.display());
        }
    }
}

#[test]
fn traceparent_corpus() {
    run_corpus("traceparent", fuzzing::fuzz_traceparent);
}

#[test]
fn tracestate_corpus() {
    run_corpus("tracestate", fuzzing::fuzz_tracestate);
}

#[test]
fn baggage_corpus() {
    run_corpus("baggage", fuzzing::fuzz_baggage);
}

#[test]
fn otlp_json_corpus() {
    run_corpus("otlp_json", |d| {
        fuzzing::read_capture(Some(Format::OtlpJson), d)
    });
}

#[test]
fn otlp_proto_corpus() {
    run_corpus("otlp_proto", |d| {
        fuzzing::read_capture(Some(Format::OtlpProto), d)
    });
}

#[test]
fn jaeger_corpus() {
    run_corpus("jaeger", |d| {
        fuzzing::read_capture(Some(Format::JaegerJson), d)
    });
}

#[test]
fn zipkin_corpus() {
    run_corpus("zipkin", |d| {
        fuzzing::read_capture(Some(Format::ZipkinJson), d)
    });
}

#[test]
fn detect_corpus() {
    run_corpus("detect", |d| fuzzing::read_capture(None, d));
}
