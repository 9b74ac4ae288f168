//! `faultline demo up|status|down` as a user runs them: the cluster comes up healthy
//! with its services and load and its flight recorder, `status` sees it, every
//! process's spans reach the recording, and `down` leaves no process behind (the
//! recording finished, whole lines) — also when `demo up` itself was killed halfway
//! through starting the cluster.
//!
//! One demo cluster at a time (2 cores): each test holds [`ONE_DEMO_AT_A_TIME`].
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::faultline;
use faultline_cluster::supervisor::{ClusterFile, group_members};
use faultline_model::read::{ReadOptions, read_path};
use faultline_model::write::recording_parts;

static ONE_DEMO_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lock, also after another test failed while holding it.
fn one_demo() -> std::sync::MutexGuard<'static, ()> {
    ONE_DEMO_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The services whose spans the recording at `path` holds, and how many spans and
/// skipped records it has. `lenient` while it grows (its last line may be partial);
/// strict once it is finished.
fn recorded(path: &Path, lenient: bool) -> (BTreeSet<String>, u64, u64) {
    let options = ReadOptions {
        lenient,
        threads: 1,
        ..ReadOptions::default()
    };
    let mut services = BTreeSet::new();
    let (mut spans, mut skipped) = (0, 0);
    for part in recording_parts(path).unwrap() {
        let summary = match read_path(&part, &options, &mut |batch| {
            for span in batch {
                services.insert(span.resource.service_name().to_owned());
            }
        }) {
            Ok(summary) => summary,
            // Rotated away since the listing (only while it grows).
            Err(e) if lenient && !part.exists() => {
                eprintln!("{} vanished: {e}", part.display());
                continue;
            }
            Err(e) => panic!("reading {}: {e}", part.display()),
        };
        spans += summary.spans;
        skipped += summary.skipped;
    }
    (services, spans, skipped)
}

fn demo(args: &[&str], dir: &Path) -> std::process::Output {
    faultline()
        .arg("demo")
        .args(args)
        .arg("--dir")
        .arg(dir)
        // The recorder runs only when no endpoint is given.
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every process of the cluster recorded in `dir`, and every member of its group.
fn leftovers(dir: &Path) -> Vec<u32> {
    let file = ClusterFile::read(&dir.join("cluster.json")).unwrap();
    let mut left: Vec<u32> = file
        .pids()
        .into_iter()
        .filter(|&p| file.is_running(p))
        .collect();
    if let Some(group) = file.process_group {
        left.extend(group_members(group));
    }
    left
}

#[test]
fn demo_up_status_down_leaves_nothing_running() {
    let _one = one_demo();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let _down = common::DemoDown(state.clone());
    let up = demo(&["up", "--rate", "5"], &state);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "{stderr}");
    assert!(stderr.contains("nodes healthy in"), "{stderr}");

    // Without --otlp, a flight recorder runs and every process exports to it.
    let file = ClusterFile::read(&state.join("cluster.json")).unwrap();
    let telemetry = file
        .telemetry
        .clone()
        .expect("the cluster file names the recorder");
    let recording = state.join("telemetry").join("spans.jsonl");
    assert_eq!(telemetry.path, recording);
    assert_eq!(file.otlp.as_deref(), Some(telemetry.otlp.as_str()));
    assert!(telemetry.pid.is_some_and(|p| file.is_running(p)));
    assert_eq!(
        file.process_group, telemetry.pid,
        "started first, it leads the process group"
    );
    assert!(stderr.contains("recorded to"), "{stderr}");
    // The nodes, the agents, every service and the load: all of them export to it.
    let expected: BTreeSet<String> = [
        "faultline-agent",
        "faultline-node",
        "gateway",
        "load",
        "payments",
        "worker",
    ]
    .map(str::to_owned)
    .into();
    let started = Instant::now();
    let mut seen = BTreeSet::new();
    while !expected.is_subset(&seen) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "after 90 s the recording has spans from {seen:?} only, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
        seen = recorded(&recording, true).0;
    }

    let status = demo(&["status", "--format", "json"], &state);
    assert!(status.status.success());
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let members = report["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    for m in members {
        for part in [
            "node_running",
            "agent_running",
            "gateway_running",
            "worker_running",
        ] {
            assert_eq!(m[part], true, "{part} of {m}");
        }
    }
    assert_eq!(
        members.iter().filter(|m| m["role"] == "leader").count(),
        1,
        "{report}"
    );
    assert_eq!(report["payments_running"], true);
    assert_eq!(report["load_running"], true);
    let recorder = &report["telemetry"];
    assert_eq!(recorder["running"], true, "{report}");
    assert_eq!(recorder["path"], recording.to_str().unwrap());
    assert!(recorder["bytes"].as_u64().unwrap() > 0, "{report}");
    let text = demo(&["status"], &state);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("recorder: up") && text.contains("spans.jsonl"),
        "{text}"
    );

    // A second `up` on a running cluster refuses and changes nothing.
    let again = demo(&["up"], &state);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    let down = demo(&["down"], &state);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(leftovers(&state), Vec::<u32>::new());
    // The load wrote its history on the way out.
    assert!(state.join("history.jsonl").exists());
    // The recorder stopped last and finished its file: whole lines only, every one
    // readable strictly, and at least what was there while it ran.
    let bytes = std::fs::read(&recording).unwrap();
    assert_eq!(
        bytes.last(),
        Some(&b'\n'),
        "the recording ends with a whole line"
    );
    let (services, spans, skipped) = recorded(&recording, false);
    assert_eq!(skipped, 0);
    assert!(expected.is_subset(&services), "{services:?}");
    assert!(spans > 0);
    let summary = std::fs::read_to_string(state.join("logs").join("recorder.log")).unwrap();
    assert!(summary.contains("faultline record: wrote"), "{summary}");
}

#[test]
fn demo_down_cleans_up_after_a_killed_demo_up() {
    let _one = one_demo();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let _down = common::DemoDown(state.clone());
    let mut up = faultline()
        .args(["demo", "up", "--rate", "0", "--dir"])
        .arg(&state)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some processes are up, before it is done.
    let started = Instant::now();
    loop {
        let recorded = ClusterFile::read(&state.join("cluster.json"))
            .map(|f| f.pids().len())
            .unwrap_or(0);
        if recorded >= 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "demo up started nothing"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(!leftovers(&state).is_empty(), "its processes outlive it");

    let down = demo(&["down"], &state);
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(leftovers(&state), Vec::<u32>::new());
}

#[test]
fn a_renamed_binary_still_sees_and_stops_its_cluster() {
    let _one = one_demo();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let renamed = dir.path().join("fl-2");
    let exe = Path::new(env!("CARGO_BIN_EXE_faultline"));
    if std::fs::hard_link(exe, &renamed).is_err() {
        std::fs::copy(exe, &renamed).unwrap();
    }
    let run = |args: &[&str]| {
        std::process::Command::new(&renamed)
            .arg("demo")
            .args(args)
            .arg("--dir")
            .arg(&state)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let _down = common::DemoDown(state.clone());
    // Also the cluster without a flight recorder.
    assert!(run(&["up", "--rate", "0", "--no-record"]).status.success());
    let file = ClusterFile::read(&state.join("cluster.json")).unwrap();
    assert_eq!((file.telemetry, file.otlp), (None, None));
    let status = run(&["status", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        report["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["node_running"] == true && m["agent_running"] == true),
        "{report}"
    );
    assert!(run(&["down"]).status.success());
    assert_eq!(leftovers(&state), Vec::<u32>::new());
}
