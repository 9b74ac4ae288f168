//! `faultline playbook list|show|run` as a user runs them: on the project's captures,
//! and live against a running demo cluster, where the leader-crash, retry-storm and
//! poison-pill incidents are each healed by their playbook run with `--yes`, as judged
//! by the playbook's own verification step — and checked once more from outside.
//!
//! One thing at a time (2 cores): every test holds [`ONE_AT_A_TIME`] — a capture's
//! analysis running beside a live cluster starves it, and the live diagnosis with it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::faultline;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The lock, also after another test failed while holding it.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn run(args: &[&str]) -> Output {
    faultline()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn list_and_show_describe_every_builtin_playbook() {
    let _one = one_at_a_time();
    let output = run(&["playbook", "list", "--format", "json"]);
    assert!(output.status.success(), "{}", text(&output));
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "network-partition",
        "split-brain",
        "quorum-loss",
        "leader-loss",
        "election-storm",
        "retry-storm",
        "cascading-failure",
        "replication-lag",
        "stale-reads",
        "consumer-lag",
        "poison-messages",
        "clock-skew",
        "hot-partition",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
        let output = run(&["playbook", "show", name]);
        assert!(output.status.success(), "{}", text(&output));
        let shown = String::from_utf8_lossy(&output.stdout);
        assert!(
            shown.contains("## Steps") && shown.contains("(verification)"),
            "{shown}"
        );
    }
    let output = run(&["playbook", "show", "no-such-playbook"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("no playbook \"no-such-playbook\"") && error.contains("retry-storm"),
        "{error}"
    );
}

#[test]
fn run_on_a_capture_picks_the_playbook_reaches_its_verdict_and_writes_the_transcript() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("poison.md");
    let capture = samples().join("poison-pill.jsonl.zst");
    let output = run(&[
        "playbook",
        "run",
        "--file",
        capture.to_str().unwrap(),
        "--transcript",
        transcript.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("→ playbook poison-messages"), "{stdout}");
    assert!(stdout.contains("not run: this is a capture"), "{stdout}");
    assert!(stdout.contains("verdict: resolved"), "{stdout}");
    let markdown = std::fs::read_to_string(&transcript).unwrap();
    assert!(markdown.starts_with("# Playbook run: "), "{markdown}");
    assert!(markdown.contains("| Verdict | **resolved**"), "{markdown}");
    assert!(
        markdown.contains("park_dead_letters payments"),
        "{markdown}"
    );

    // A healthy capture: the playbook rules its incident out, and that is not a failure.
    let output = run(&[
        "playbook",
        "run",
        "retry-storm",
        "--file",
        samples().join("baseline-1.jsonl.zst").to_str().unwrap(),
        "--transcript",
        dir.path().join("baseline.md").to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("verdict: not this incident"));

    // Not a capture: a clear error, exit 2.
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "{\"hello\": 1}").unwrap();
    let output = run(&[
        "playbook",
        "run",
        "retry-storm",
        "--file",
        bogus.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bogus.json"),
        "{}",
        text(&output)
    );
}

/// A demo cluster of the test's own, stopped when dropped. Fields drop in order: the
/// cluster is stopped (it needs its state directory) before the directory goes, and
/// both before the next test may start one.
struct Demo {
    dir: PathBuf,
    _down: common::DemoDown,
    _state: tempfile::TempDir,
    _one: std::sync::MutexGuard<'static, ()>,
}

impl Demo {
    fn up() -> Demo {
        let one = one_at_a_time();
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("demo");
        let down = common::DemoDown(dir.clone());
        let output = faultline()
            .args(["demo", "up", "--rate", "20", "--dir"])
            .arg(&dir)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "demo up: {}", text(&output));
        // Healthy traffic first: the detectors' baseline.
        std::thread::sleep(Duration::from_secs(20));
        Demo {
            _one: one,
            _state: state,
            dir,
            _down: down,
        }
    }

    fn inject(&self, scenario: &str) {
        let output = faultline()
            .args(["demo", "scenario", scenario, "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{scenario}: {}", text(&output));
    }

    /// Runs the playbook with `--yes`; returns its output and transcript.
    fn heal_with(&self, playbook: &str) -> (Output, String) {
        let transcript = self.dir.join(format!("{playbook}.md"));
        let output = faultline()
            .args([
                "playbook",
                "run",
                playbook,
                "--yes",
                "--wait",
                "120s",
                "--cluster",
            ])
            .arg(self.dir.join("cluster.json"))
            .arg("--transcript")
            .arg(&transcript)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let markdown = std::fs::read_to_string(&transcript).unwrap_or_default();
        (output, markdown)
    }

    fn status(&self) -> serde_json::Value {
        let output = faultline()
            .args(["demo", "status", "--format", "json", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)))
    }
}

/// Asserts the playbook's verdict was "resolved" by its verification step, after the
/// named remedy was applied.
fn assert_healed(playbook: &str, remedy: &str, output: &Output, markdown: &str) {
    let all = format!("{}\n--- transcript\n{markdown}", text(output));
    assert!(output.status.success(), "{playbook}: {all}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("verdict: resolved"),
        "{playbook}: {all}"
    );
    assert!(markdown.contains("| Verdict | **resolved**"), "{all}");
    assert!(
        markdown.contains(&format!("remedy `{remedy}")) && markdown.contains(" applied |"),
        "{playbook}: the remedy {remedy} was not applied: {all}"
    );
    assert!(markdown.contains("(verification: ✓ pass)"), "{all}");
}

#[test]
fn leader_crash_is_healed_by_the_leader_loss_playbook() {
    let demo = Demo::up();
    demo.inject("leader-crash");
    let (output, markdown) = demo.heal_with("leader-loss");
    assert_healed("leader-loss", "restart_node", &output, &markdown);
    // From outside: every node runs again and they agree on a leader.
    let status = demo.status();
    let members = status["members"]
        .as_array()
        .expect("members in demo status");
    assert!(
        members.iter().all(|m| m["node_running"] == true),
        "not every node runs: {status:#}"
    );
}

#[test]
fn retry_storm_is_healed_by_its_playbook() {
    let demo = Demo::up();
    demo.inject("retry-storm");
    let (output, markdown) = demo.heal_with("retry-storm");
    assert_healed("retry-storm", "sane_retries", &output, &markdown);
}

#[test]
fn poison_pill_is_healed_by_the_poison_messages_playbook() {
    let demo = Demo::up();
    demo.inject("poison-pill");
    let (output, markdown) = demo.heal_with("poison-messages");
    assert_healed("poison-messages", "park_dead_letters", &output, &markdown);
    // The dead letters were kept, not thrown away: one line each in the parked file.
    let parked: Vec<PathBuf> = std::fs::read_dir(demo.dir.join("parked"))
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    let lines: usize = parked
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    assert!(
        lines >= 20,
        "20 poison messages parked, found {lines} in {parked:?}"
    );
}
