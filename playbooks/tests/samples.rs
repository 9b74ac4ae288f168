//! Every built-in playbook run on the project's own labelled captures (`samples/`):
//! on each incident's capture, its playbook confirms the incident, names the root
//! cause the labels name, and sees the recovery at the end of the capture; on the
//! healthy baselines, every playbook rules its incident out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use faultline_analyzers::Thresholds;
use faultline_analyzers::load::{TimeFilter, load};
use faultline_analyzers::report::{Report, analyze, profile_for};
use faultline_model::read::ReadOptions;
use faultline_playbooks::{Entry, Library, Observation, Outcome, Verdict, on_record};

/// How much of a capture's end counts as "now" for verification steps.
const RECENT_NS: i64 = 5_000_000_000;

/// Each sample and the playbook its incident calls for.
const CASES: &[(&str, &str)] = &[
    ("partition-minority", "network-partition"),
    ("partition-leader", "network-partition"),
    ("partition-leader", "split-brain"),
    ("leader-crash", "leader-loss"),
    ("election-storm", "election-storm"),
    ("quorum-loss", "quorum-loss"),
    ("slow-follower", "replication-lag"),
    ("retry-storm", "retry-storm"),
    ("cascading-failure", "cascading-failure"),
    ("poison-pill", "poison-messages"),
    ("consumer-lag", "consumer-lag"),
    ("stale-reads", "stale-reads"),
    ("clock-skew", "clock-skew"),
    ("hot-key", "hot-partition"),
];

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

fn analysed(name: &str) -> Report {
    let path = samples().join(format!("{name}.jsonl.zst"));
    let (table, _) = load(&[path], &ReadOptions::default(), TimeFilter::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    analyze(
        &table,
        &Thresholds::for_profile(profile_for(&table)),
        Vec::new(),
    )
}

fn observation(report: &Report) -> Observation<'_> {
    Observation {
        report,
        recent_from_ns: report.end_ns.unwrap_or(0) - RECENT_NS,
        status: None,
    }
}

fn label_target(name: &str) -> String {
    let text = std::fs::read_to_string(samples().join(format!("{name}.labels.json"))).unwrap();
    let labels: serde_json::Value = serde_json::from_str(&text).unwrap();
    labels["root_cause"]["target"].as_str().unwrap().to_owned()
}

#[test]
fn every_incident_kind_with_a_sample_is_covered() {
    let library = Library::builtin().unwrap();
    for (_, playbook) in CASES {
        assert!(library.get(playbook).is_some(), "{playbook}");
    }
    let mut covered: Vec<&str> = CASES.iter().map(|(_, p)| *p).collect();
    covered.sort_unstable();
    covered.dedup();
    let mut all = library.names();
    all.sort_unstable();
    assert_eq!(covered, all, "every built-in playbook is run on a sample");
}

#[test]
fn each_playbook_confirms_its_incident_names_the_cause_and_sees_the_recovery() {
    let library = Library::builtin().unwrap();
    let mut failures = Vec::new();
    let mut last: Option<(&str, Report)> = None;
    for (sample, name) in CASES {
        if last.as_ref().is_none_or(|(s, _)| s != sample) {
            last = Some((sample, analysed(sample)));
        }
        let report = &last.as_ref().unwrap().1;
        let playbook = library.get(name).unwrap();
        let run = on_record(playbook, &observation(report));
        let conclusion = run.conclusion().unwrap();
        let transcript = run
            .log()
            .iter()
            .map(|e| match e {
                Entry::Checked {
                    step,
                    result,
                    meaning,
                    ..
                } => format!(
                    "  {} {}: {} | {}",
                    run.step(*step).id,
                    result.outcome.as_str(),
                    result.detail,
                    meaning
                ),
                Entry::Remedied { step, outcome, .. } => {
                    format!("  {} remedy {outcome:?}", run.step(*step).id)
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let confirmed = matches!(
            run.log().first(),
            Some(Entry::Checked { result, .. }) if result.outcome == Outcome::Pass
        );
        let target = label_target(sample);
        let named = run
            .bindings()
            .values()
            .any(|v| v == &target || (target == "kv key" && v.starts_with("kv key")));
        if !confirmed || !named || conclusion.verdict != Verdict::Resolved {
            failures.push(format!(
                "{name} on {sample}: confirmed {confirmed}, root cause {target:?} named {named} (bound {:?}), verdict {:?}: {}\n{transcript}",
                run.bindings(),
                conclusion.verdict,
                conclusion.summary
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn on_healthy_baselines_every_playbook_rules_its_incident_out() {
    let library = Library::builtin().unwrap();
    let mut failures = Vec::new();
    for sample in ["baseline-1", "baseline-2"] {
        let report = analysed(sample);
        for (playbook, _) in library.all() {
            let run = on_record(playbook, &observation(&report));
            let conclusion = run.conclusion().unwrap();
            if conclusion.verdict != Verdict::NotThisIncident {
                failures.push(format!(
                    "{} on {sample}: {:?}: {}",
                    playbook.name, conclusion.verdict, conclusion.summary
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
