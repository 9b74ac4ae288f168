#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `promtool check metrics` (Debian package `prometheus`) accepts the agent's
//! `/metrics` output with no lint findings.
//!
//! Skipped with a message when `promtool` is not on PATH, unless
//! `FAULTLINE_REQUIRE_PROMTOOL=1` (CI), where a missing promtool is a failure.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Duration;

use faultline_agent::metrics::{Direction, Limits, Metrics, RequestLabels, StatusClass};
use faultline_agent::toxics::ToxicType;

/// A registry like a busy demo agent's: several routes and peers, every status class,
/// retries, faults of every kind, spans, folded routes and peers, requests in flight.
fn realistic_registry() -> (Metrics, Vec<faultline_agent::metrics::InFlightGuard>) {
    let metrics = Metrics::with_limits(Limits {
        max_routes: 6,
        max_peers: 3,
        max_series: 512,
    });
    let routes = [
        "/kv/{key}",
        "/raft/append_entries",
        "/raft/request_vote",
        "/queue/{name}/messages",
        "/health",
        "/path with \"quotes\" and \\ backslash",
        "/kv/extra-1",
        "/kv/extra-2",
    ];
    let peers = [
        Some("node-1"),
        Some("node-2"),
        None,
        Some("node-3"),
        Some("node-4"),
    ];
    let mut n = 0u64;
    for direction in Direction::ALL {
        for route in routes {
            for peer in peers {
                for class in StatusClass::ALL {
                    n += 1;
                    let latency = Duration::from_micros(n * n * 37 % 12_000_000);
                    metrics.record_request(
                        &RequestLabels {
                            direction,
                            route,
                            peer,
                        },
                        class,
                        latency,
                        n.is_multiple_of(7),
                    );
                }
            }
        }
        for (i, kind) in ToxicType::ALL.into_iter().enumerate() {
            for _ in 0..i {
                metrics.fault_activation(kind, direction);
            }
        }
    }
    metrics.spans_exported(12_345);
    metrics.spans_dropped(17);
    let guards = vec![
        metrics.start(Direction::Inbound, Some("node-1")),
        metrics.start(Direction::Outbound, Some("node-2")),
        metrics.start(Direction::Outbound, None),
    ];
    (metrics, guards)
}

#[test]
fn promtool_check_metrics_passes_without_lint_warnings() {
    let Some(promtool) = find_promtool() else {
        if std::env::var("FAULTLINE_REQUIRE_PROMTOOL").as_deref() == Ok("1") {
            panic!(
                "promtool is not on PATH and FAULTLINE_REQUIRE_PROMTOOL=1 (install the Debian package `prometheus`)"
            );
        }
        eprintln!(
            "SKIPPED: promtool is not on PATH (Debian package `prometheus`); set FAULTLINE_REQUIRE_PROMTOOL=1 to make this a failure"
        );
        return;
    };

    let (metrics, _guards) = realistic_registry();
    let text = metrics.render();
    // The registry really exercises what promtool should see.
    for needle in [
        "le=\"+Inf\"",
        "status_class=\"error\"",
        "route=\"other\"",
        "peer=\"other\"",
        "peer=\"unknown\"",
        "\\\"quotes\\\"",
        "faultline_agent_in_flight_requests{direction=\"outbound\",peer=\"unknown\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }

    let path = std::env::temp_dir().join(format!(
        "faultline-agent-metrics-{}.prom",
        std::process::id()
    ));
    std::fs::write(&path, &text).unwrap();
    let output = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(File::open(&path).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "promtool check metrics failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    // promtool prints lint problems (and exits 3 for them in recent versions); a
    // clean run prints nothing.
    assert!(
        stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool reported problems:\nstdout: {stdout}\nstderr: {stderr}"
    );
}

fn find_promtool() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file())
}
