#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
//! `faultline bench tui` on a small store: every measurement is in the JSON, with
//! positive figures. No timing thresholds: a loaded machine would make them flake; the
//! target is checked by running the bench on a release build.

mod common;

use common::faultline;
use serde_json::Value;

fn positive(value: &Value, what: &str) -> f64 {
    let n = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(n > 0.0, "{what} = {n}, expected > 0");
    n
}

fn latency(value: &Value, what: &str, frames: u64) {
    assert_eq!(value["samples"], frames, "{what}: samples");
    let p50 = positive(&value["p50_ms"], &format!("{what} p50"));
    let p99 = positive(&value["p99_ms"], &format!("{what} p99"));
    let max = positive(&value["max_ms"], &format!("{what} max"));
    assert!(p50 <= p99 && p99 <= max, "{what}: {p50} ≤ {p99} ≤ {max}");
    assert!(value["meets_target"].is_boolean(), "{what}: meets_target");
}

#[test]
fn bench_tui_reports_every_measurement_as_json() {
    let out = faultline()
        .args([
            "bench", "tui", "--spans", "20000", "--frames", "5", "--format", "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["spans"], 20000);
    assert_eq!(r["frames_per_measurement"], 5);
    assert_eq!(r["width"], 160);
    assert_eq!(r["height"], 48);
    positive(&r["traces"], "traces");
    assert_eq!(r["target"]["frame_ms"], 10.0);
    assert_eq!(r["target"]["spans"], 1_000_000);
    assert_eq!(r["target"]["at_target_scale"], false);
    assert!(r["target"]["met"].is_boolean());

    assert_eq!(r["fill"]["spans"], 20000);
    positive(&r["fill"]["spans_per_sec"], "fill spans/s");

    // Every view, the waterfall, the filter and the help overlay.
    let frames = r["frames"].as_array().unwrap();
    let names: Vec<&str> = frames.iter().map(|f| f["name"].as_str().unwrap()).collect();
    for name in [
        "overview",
        "signals",
        "map",
        "traces",
        "diagnoses",
        "faults",
        "traces, waterfall open",
        "traces, filter \"error\"",
        "help overlay",
    ] {
        assert!(names.contains(&name), "no frame row {name:?} in {names:?}");
    }
    for f in frames {
        latency(f, f["name"].as_str().unwrap(), 5);
    }

    let inputs = r["input_to_frame"].as_array().unwrap();
    assert_eq!(inputs.len(), 6, "{inputs:?}");
    for i in inputs {
        assert!(!i["keys"].as_str().unwrap().is_empty());
        latency(i, i["name"].as_str().unwrap(), 5);
    }

    let ingest = &r["ingest"];
    assert_eq!(ingest["batch"], 1000);
    positive(&ingest["alone"]["spans"], "ingest alone spans");
    positive(&ingest["alone"]["spans_per_sec"], "ingest alone spans/s");
    positive(
        &ingest["while_rendering"]["spans"],
        "ingest while rendering spans",
    );
    positive(
        &ingest["while_rendering"]["spans_per_sec"],
        "ingest while rendering spans/s",
    );
    assert_eq!(ingest["frame_every_ms"], 16);
    latency(&ingest["frames"], "frames while ingesting", 5);
    // The store was at its cap: every span ingested pushed an old one out.
    let ingested = ingest["alone"]["spans"].as_u64().unwrap()
        + ingest["while_rendering"]["spans"].as_u64().unwrap();
    assert_eq!(ingest["evicted"], ingested);

    let analysis = &r["analysis"];
    positive(&analysis["window_spans"], "analysis window spans");
    positive(&analysis["batches_ms"], "analysis batches ms");
    positive(&analysis["run_ms"], "analysis ms");
    assert!(analysis["diagnoses"].is_u64());
}
