#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report
//! `faultline bench generate` and `bench questions` as the DuckDB comparison
//! (bench/duckdb/compare.py) runs them: a deterministic capture, and answers as JSON.

mod common;

use common::faultline;

#[test]
fn generate_is_deterministic_and_questions_answer_it_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |name: &str, extra: &[&str]| {
        let path = dir.path().join(name);
        let out = faultline()
            .args([
                "bench", "generate", "--spans", "3000", "--batch", "100", "--out",
            ])
            .arg(&path)
            .args(extra)
            .output()
            .unwrap();
        (path, out)
    };
    let (a, out) = generate("a.jsonl", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (b, _) = generate("b.jsonl", &[]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (_, refused) = generate("a.jsonl", &[]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "an existing file needs --force"
    );
    let (_, other_seed) = generate("a.jsonl", &["--seed", "7", "--force"]);
    assert!(other_seed.status.success());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    let out = faultline()
        .args(["bench", "questions", "--format", "json", "--runs", "2"])
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["spans"], 3000);
    assert_eq!(report["runs"], 2);
    assert!(report["total_seconds"].as_f64().unwrap() > 0.0);

    let minutes = report["answers"]["service_minutes"].as_array().unwrap();
    let mut services: Vec<&str> = minutes
        .iter()
        .map(|m| m["service"].as_str().unwrap())
        .collect();
    services.dedup();
    assert_eq!(
        services,
        ["faultline-node", "gateway", "payments", "worker"]
    );
    let calls: u64 = minutes.iter().map(|m| m["calls"].as_u64().unwrap()).sum();
    assert!(
        (1000..3000).contains(&calls),
        "{calls} server and consumer spans"
    );

    let edges = report["answers"]["edges"].as_array().unwrap();
    let pairs: Vec<(&str, &str)> = edges
        .iter()
        .map(|e| (e["caller"].as_str().unwrap(), e["callee"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("gateway", "faultline-node"),
            ("worker", "faultline-node"),
            ("worker", "payments")
        ]
    );
    for edge in edges {
        assert!(edge["attempts"].as_u64() >= edge["logical_calls"].as_u64());
    }
}
