//! The live analysis as the TUI runs it, replayed over a recorded sample: every two
//! seconds of data time, the spans arrived by then are analysed from
//! `App::analysis_from`. Once the leader-crash is diagnosed, the diagnosis must hold
//! until the heal: the window keeps the healthy time before the incident as its
//! baseline instead of sliding into the incident.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use faultline_analyzers::{Profile, Thresholds};
use faultline_dashboards::Profile as LevelProfile;
use faultline_model::read::{ReadOptions, read_all};
use faultline_tui::analysis;

/// The sliding window of this test: shorter than the incident, so that a window that
/// slid along with time would lose its healthy baseline before the heal.
const WINDOW_S: u64 = 8;
use faultline_tui::app::{Action, App, SourceKind};

#[test]
fn a_diagnosis_holds_through_the_incident_and_the_window_keeps_its_baseline() {
    let name = "leader-crash";
    let (mut spans, _) = read_all(
        &common::samples().join(format!("{name}.jsonl.zst")),
        &ReadOptions::default(),
    )
    .unwrap();
    spans.sort_by_key(|s| s.end_ns);
    let injected = common::injected_ns(name);
    let labels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::samples().join(format!("{name}.labels.json"))).unwrap(),
    )
    .unwrap();
    let healed = labels["healed_at_ms"].as_u64().unwrap() * 1_000_000;
    let thresholds = Thresholds::for_profile(Profile::Demo);
    // A short sliding window, so that the incident outlasts it within this sample.
    let mut app = App::new(SourceKind::Demo, LevelProfile::Demo, 1_000_000);
    app.analysis_window_ns = WINDOW_S * 1_000_000_000;
    let first = spans[0].end_ns;
    let mut pending = spans.into_iter().peekable();
    let mut at = first;
    let mut first_correct = None;
    while at < healed {
        at += 2_000_000_000;
        let mut batch = Vec::new();
        while let Some(span) = pending.next_if(|s| s.end_ns <= at) {
            batch.push(span);
        }
        app.update(Action::Spans(batch));
        let window = app.analysis_window(at);
        app.update(analysis::action(
            &analysis::batches(&app.store),
            window,
            Some(&thresholds),
        ));
        let top = app
            .analysis_now()
            .and_then(|r| r.diagnoses.first().cloned());
        if at < injected {
            assert!(top.is_none(), "before the injection: {top:?}");
            assert_eq!(
                (window.from_ns, window.baseline_until_ns),
                (at.saturating_sub(app.analysis_window_ns), None),
                "quiet: the window slides"
            );
            continue;
        }
        match (&top, first_correct) {
            (Some(d), _) if d.playbook == "leader-loss" => {
                first_correct.get_or_insert(at);
                // The window reaches back before the injection.
                assert!(
                    window.from_ns < injected,
                    "the window reaches back before it"
                );
                let healthy = window
                    .baseline_until_ns
                    .expect("a baseline during the incident");
                assert!(healthy < injected, "the baseline ends before the injection");
            }
            (other, Some(since)) => panic!(
                "the diagnosis flipped {} s after it was first right: {other:?}",
                (at - since) / 1_000_000_000
            ),
            (_, None) => {}
        }
    }
    let first_correct = first_correct.expect("leader loss is diagnosed before the heal");
    eprintln!(
        "first correct after {:.1} s",
        (first_correct - injected) as f64 / 1e9
    );
}
