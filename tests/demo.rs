//! `faultline demo up|status|down` as a user runs them: the cluster comes up healthy
//! with its services and load, `status` sees it, and `down` leaves no process behind —
//! also when `demo up` itself was killed halfway through starting the cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::faultline;
use faultline_cluster::supervisor::{ClusterFile, group_members};

fn demo(args: &[&str], dir: &Path) -> std::process::Output {
    faultline()
        .arg("demo")
        .args(args)
        .arg("--dir")
        .arg(dir)
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
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let _down = common::DemoDown(state.clone());
    let up = demo(&["up", "--rate", "5"], &state);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(up.status.success(), "{stderr}");
    assert!(stderr.contains("nodes healthy in"), "{stderr}");

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
}

#[test]
fn demo_down_cleans_up_after_a_killed_demo_up() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let _down = common::DemoDown(state.clone());
    let mut up = faultline()
        .args(["demo", "up", "--rate", "0", "--dir"])
        .arg(&state)
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
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let _down = common::DemoDown(state.clone());
    assert!(run(&["up", "--rate", "0"]).status.success());
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
