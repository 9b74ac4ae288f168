//! The playbook pane through `App::update`: opening, live ticking with the
//! confirmation, settle and verify_within rules, branching, remedies (confirmed,
//! answered, skipped, without a cluster), `n`, and the transcript effect.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use faultline_analyzers::Profile as AnalysisProfile;
use faultline_analyzers::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use faultline_analyzers::report::Report;
use faultline_dashboards::Profile;
use faultline_playbooks::check::Outcome;
use faultline_playbooks::{Action as Remedy, Playbook, RemedyOutcome, Verdict};

use super::*;
use crate::app::{Action, App, Effect, Mode, ReplayState, SourceKind, View};
use crate::cluster::{ClusterSnapshot, Health, NodeState};

const S: u64 = 1_000_000_000;
/// Data time at the start of each test.
const T0: u64 = 1_000 * S;

/// A retry-storm playbook small enough to follow by hand: confirm (binds the edge),
/// measure (fails over to verification below 3×), bound the retries, verify.
const PLAYBOOK: &str = r#"
title = "Retry storm (test)"
handles = ["retry_storm"]
summary = "Retries multiply load."
settle = "10s"
verify_within = "30s"

[[step]]
id = "confirm"
title = "Confirm"
look = "The diagnoses view."
check = { diagnosis = "retry_storm" }
bind = "edge"
pass = "A retry storm at {edge}."
fail = "No retry storm."
on_fail = "stop"

[[step]]
id = "hop"
title = "Measure"
look = "The map: {edge}."
check = { finding = "retry_amplification", subject = "{edge}", figure = "amplification", op = ">=", value = 3 }
pass = "{value} attempts per call."
fail = "Under 3 attempts per call."
on_fail = "verify"

[[step]]
id = "fix"
title = "Bound the retries"
look = "Worker settings for {edge}."
remedy = { action = "sane_retries", target = "{edge}", why = "Backoff and a budget on {edge}." }

[[step]]
id = "verify"
title = "Back to normal"
look = "Signals."
check = { finding = "retry_amplification", subject = "{edge}", expect = "absent", scope = "recent" }
pass = "Recovered."
fail = "Still amplifying."
verify = true
"#;

fn amplification(value: f64, end_ns: u64) -> Finding {
    Finding {
        kind: FindingKind::RetryAmplification,
        severity: Severity::Critical,
        subject: Subject::Edge("worker".into(), "payments".into()),
        window: Window {
            start_ns: 0,
            end_ns: end_ns as i64,
        },
        onset_ns: Some(0),
        summary: format!("{value}× attempts"),
        figures: vec![Figure::new("amplification", value, "×")],
        evidence: vec![faultline_model::TraceId([7; 16])],
        detector: "test",
    }
}

fn report(findings: Vec<Finding>, end_ns: u64) -> Arc<Report> {
    Arc::new(Report {
        inputs: Vec::new(),
        spans: 100,
        traces: 10,
        services: Vec::new(),
        start_ns: Some(0),
        end_ns: Some(end_ns as i64),
        profile: AnalysisProfile::Demo,
        window_ns: 1,
        focus: None,
        diagnoses: faultline_analyzers::diagnosis::diagnose(&findings),
        findings,
    })
}

/// The data moves on to `at_ns`, and an analysis up to then arrives.
fn analysis(app: &mut App, at_ns: u64, findings: Vec<Finding>) {
    app.update(Action::Replay(ReplayState {
        position_ns: at_ns,
        speed: 1.0,
        paused: false,
        finished: false,
    }));
    app.update(Action::Analysis {
        at_ns,
        report: report(findings, at_ns),
        calls: Default::default(),
    });
}

/// A storm going on at `at_ns`: amplification `value`, still recent.
fn storm(app: &mut App, at_ns: u64, value: f64) {
    analysis(app, at_ns, vec![amplification(value, at_ns)]);
}

/// An app following the test playbook, with (or without) a cluster control.
fn following(control: bool) -> App {
    let mut app = App::new(SourceKind::Demo, Profile::Demo, 100);
    app.control = control;
    app.playbook = Some(PlaybookPane::new(
        Playbook::parse("test-storm", PLAYBOOK).unwrap(),
        T0,
    ));
    app.view = View::Playbook;
    app
}

fn pane(app: &App) -> &PlaybookPane {
    app.playbook.as_ref().unwrap()
}

fn outcomes(app: &App) -> Vec<String> {
    pane(app)
        .run
        .log()
        .iter()
        .map(|e| match e {
            faultline_playbooks::Entry::Checked { step, result, .. } => {
                format!("{step}:{}", result.outcome.as_str())
            }
            faultline_playbooks::Entry::Remedied { step, outcome, .. } => {
                format!("{step}:{outcome:?}")
            }
        })
        .collect()
}

/// Up to the remedy: the storm confirmed and measured at 5×.
fn at_the_remedy(control: bool) -> App {
    let mut app = following(control);
    storm(&mut app, T0, 5.0);
    assert_eq!(outcomes(&app), ["0:pass", "1:pass"]);
    assert!(pane(&app).remedy_due().is_some());
    app
}

#[test]
fn the_confirmation_waits_for_a_pass_then_the_next_checks_are_decided_at_once() {
    let mut app = following(true);
    analysis(&mut app, T0, Vec::new());
    let waiting = pane(&app).waiting.clone().unwrap();
    assert_eq!((waiting.step, waiting.reason), (0, Wait::Confirmation));
    assert_eq!(waiting.result.outcome, Outcome::Fail);
    assert!(
        waiting.result.detail.contains("nothing abnormal"),
        "{}",
        waiting.result.detail
    );
    assert!(
        pane(&app).run.log().is_empty(),
        "a failing confirmation is not recorded"
    );
    // The storm shows up: confirmed, the edge bound, the measurement taken with the
    // same analysis, and the run stops at the remedy, which waits for the user.
    storm(&mut app, T0 + 2 * S, 5.0);
    assert_eq!(outcomes(&app), ["0:pass", "1:pass"]);
    assert_eq!(pane(&app).run.bindings()["edge"], "worker->payments");
    assert!(pane(&app).waiting.is_none());
    let (step, action, target, why) = pane(&app).remedy_due().unwrap();
    assert_eq!((step, action), (2, Remedy::SaneRetries));
    assert_eq!(target.as_deref(), Some("worker->payments"));
    assert_eq!(why, "Backoff and a budget on worker->payments.");
    assert_eq!(pane(&app).selected, 2, "the selection follows the run");
    assert_eq!(pane(&app).state(0), StepState::Checked(Outcome::Pass));
    assert_eq!(pane(&app).state(2), StepState::Now);
    assert_eq!(pane(&app).state(3), StepState::Pending);
    // More analyses do not move a run that waits for the user.
    storm(&mut app, T0 + 3 * S, 5.0);
    assert_eq!(outcomes(&app).len(), 2);
}

#[test]
fn a_failing_check_follows_its_branch() {
    let mut app = following(true);
    storm(&mut app, T0, 2.0);
    // 2× is under the 3× the measurement wants: on to verification, past the remedy.
    assert_eq!(outcomes(&app), ["0:pass", "1:fail"]);
    assert_eq!(pane(&app).run.current(), Some(3));
    // The verification is not recorded while it fails (the storm goes on) …
    let waiting = pane(&app).waiting.clone().unwrap();
    assert_eq!(
        waiting.reason,
        Wait::Verifying {
            until_ns: T0 + 30 * S
        }
    );
    // … and passes as soon as the amplification is over.
    // (Its last window ended more than 5 s before the data's end.)
    analysis(&mut app, T0 + 6 * S, vec![amplification(2.0, T0)]);
    assert_eq!(outcomes(&app), ["0:pass", "1:fail", "3:pass"]);
    let conclusion = pane(&app).run.conclusion().unwrap();
    assert_eq!(conclusion.verdict, Verdict::Resolved);
    assert_eq!(pane(&app).state(2), StepState::NotRun);
    assert_eq!(
        pane(&app).selected,
        3,
        "once over: the step that decided it"
    );
}

#[test]
fn enter_asks_before_a_remedy_and_yes_emits_it_for_the_control() {
    let mut app = at_the_remedy(true);
    assert!(app.update(Action::Enter).is_empty());
    let asked = Effect::Remedy {
        action: Remedy::SaneRetries,
        target: Some("worker->payments".to_owned()),
    };
    assert_eq!(app.mode, Mode::Confirm(asked.clone()));
    let screen = crate::ui::drawn(&app, 80, 24);
    assert!(
        screen.contains("Apply sane_retries on worker->payments?"),
        "{screen}"
    );
    // No: nothing happens, the remedy is still due.
    assert!(app.update(Action::Confirm(false)).is_empty());
    assert!(pane(&app).remedy_due().is_some() && !pane(&app).remedy_pending);
    app.update(Action::Enter);
    assert_eq!(app.update(Action::Confirm(true)), [asked]);
    assert!(pane(&app).remedy_pending);
    // While it is applied, Enter and s do nothing to the run.
    app.update(Action::Enter);
    app.update(Action::SkipRemedy);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(outcomes(&app).len(), 2);
}

#[test]
fn an_applied_remedy_settles_before_verification_is_judged() {
    let mut app = at_the_remedy(true);
    app.update(Action::Enter);
    app.update(Action::Confirm(true));
    let applied_at = T0 + 2 * S;
    app.update(Action::Replay(ReplayState {
        position_ns: applied_at,
        speed: 1.0,
        paused: false,
        finished: false,
    }));
    app.update(Action::Remedied {
        action: Remedy::SaneRetries,
        target: Some("worker->payments".to_owned()),
        result: Ok("jitter, budget, 3 attempts on 3 workers".to_owned()),
    });
    assert_eq!(pane(&app).remedy_applied_ns, Some(applied_at));
    assert_eq!(pane(&app).state(2), StepState::Applied);
    assert!(app.messages.back().unwrap().1.contains("applied"));
    // Clean data too soon after the remedy: not judged before it settled.
    analysis(&mut app, applied_at + 5 * S, vec![amplification(5.0, T0)]);
    assert_eq!(outcomes(&app).len(), 3);
    assert_eq!(
        pane(&app).waiting.as_ref().unwrap().reason,
        Wait::Settling {
            until_ns: applied_at + 10 * S
        }
    );
    analysis(&mut app, applied_at + 10 * S, vec![amplification(5.0, T0)]);
    assert_eq!(outcomes(&app).last().unwrap(), "3:pass");
    assert_eq!(
        pane(&app).run.conclusion().unwrap().verdict,
        Verdict::Resolved
    );
}

/// Enter, yes, and the cluster's answer to the sane_retries remedy on worker->payments.
fn confirm_and_answer(app: &mut App, result: Result<String, String>) {
    app.update(Action::Enter);
    app.update(Action::Confirm(true));
    app.update(Action::Remedied {
        action: Remedy::SaneRetries,
        target: Some("worker->payments".to_owned()),
        result,
    });
}

#[test]
fn verification_gives_up_after_verify_within() {
    let mut app = at_the_remedy(true);
    confirm_and_answer(&mut app, Ok("done".to_owned()));
    let applied_at = pane(&app).remedy_applied_ns.unwrap();
    // Settled at +10 s: judged from then on, for 30 s, while the storm goes on.
    let judged = applied_at + 10 * S;
    storm(&mut app, judged, 4.0);
    assert_eq!(
        pane(&app).waiting.as_ref().unwrap().reason,
        Wait::Verifying {
            until_ns: judged + 30 * S
        }
    );
    storm(&mut app, judged + 29 * S, 4.0);
    assert!(pane(&app).run.conclusion().is_none());
    storm(&mut app, judged + 30 * S, 4.0);
    assert_eq!(outcomes(&app).last().unwrap(), "3:fail");
    assert_eq!(
        pane(&app).run.conclusion().unwrap().verdict,
        Verdict::NotResolved
    );
}

#[test]
fn a_failed_remedy_is_recorded_and_verification_does_not_wait_to_settle() {
    let mut app = at_the_remedy(true);
    confirm_and_answer(&mut app, Err("worker-2: connection refused".to_owned()));
    assert_eq!(pane(&app).state(2), StepState::Failed);
    assert_eq!(pane(&app).remedy_applied_ns, None);
    assert!(app.messages.back().unwrap().1.contains("FAILED"));
    analysis(&mut app, T0 + S, vec![amplification(5.0, T0 - 10 * S)]);
    assert_eq!(outcomes(&app).last().unwrap(), "3:pass");
}

#[test]
fn s_declines_the_remedy_and_the_run_goes_on() {
    let mut app = at_the_remedy(true);
    assert!(app.update(Action::SkipRemedy).is_empty());
    assert_eq!(
        outcomes(&app),
        ["0:pass", "1:pass", "2:Declined"],
        "declined"
    );
    assert_eq!(pane(&app).state(2), StepState::Declined);
    assert_eq!(pane(&app).run.current(), Some(3));
    // Nothing was applied, so verification is judged at once (and waits: it fails).
    assert!(matches!(
        pane(&app).waiting.as_ref().unwrap().reason,
        Wait::Verifying { .. }
    ));
}

#[test]
fn without_a_control_enter_records_the_remedy_as_not_run() {
    let mut app = at_the_remedy(false);
    assert!(app.update(Action::Enter).is_empty());
    assert_eq!(app.mode, Mode::Normal, "nothing to ask: nothing can run");
    let Some(RemedyOutcome::Skipped(why)) = pane(&app).remedy_outcome(2) else {
        panic!("{:?}", outcomes(&app))
    };
    assert!(why.starts_with("no cluster attached: "), "{why}");
    assert_eq!(pane(&app).state(2), StepState::Skipped);
    assert_eq!(pane(&app).run.current(), Some(3));
}

#[test]
fn n_takes_the_waiting_result_as_final() {
    let mut app = following(true);
    assert!(app.update(Action::AcceptResult).is_empty());
    assert!(
        app.messages
            .back()
            .unwrap()
            .1
            .contains("no result is waiting")
    );
    analysis(&mut app, T0, Vec::new());
    app.update(Action::AcceptResult);
    assert_eq!(outcomes(&app), ["0:fail"]);
    let conclusion = pane(&app).run.conclusion().unwrap();
    assert_eq!(conclusion.verdict, Verdict::NotThisIncident);
    assert_eq!(conclusion.summary, "No retry storm.");
    // Past a verification being waited out, too.
    let mut app = following(true);
    storm(&mut app, T0, 2.0);
    assert_eq!(pane(&app).run.current(), Some(3));
    app.update(Action::AcceptResult);
    assert_eq!(
        pane(&app).run.conclusion().unwrap().verdict,
        Verdict::NotResolved
    );
}

#[test]
fn a_remedy_answer_for_a_restarted_run_is_only_reported() {
    let mut app = at_the_remedy(true);
    app.update(Action::Enter);
    app.update(Action::Confirm(true));
    // Started again meanwhile.
    app.playbook = Some(PlaybookPane::new(
        Playbook::parse("test-storm", PLAYBOOK).unwrap(),
        T0,
    ));
    storm(&mut app, T0 + S, 5.0);
    app.update(Action::Remedied {
        action: Remedy::SaneRetries,
        target: None,
        result: Ok("done".to_owned()),
    });
    assert_eq!(outcomes(&app), ["0:pass", "1:pass"]);
    assert!(app.messages.back().unwrap().1.contains("applied"));
}

#[test]
fn w_asks_the_shell_to_write_the_transcript_and_its_answer_is_shown() {
    let mut app = at_the_remedy(true);
    app.update(Action::SkipRemedy);
    let effects = app.update(Action::WriteTranscript);
    let [Effect::Transcript { name, markdown }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(name, "test-storm");
    assert!(
        markdown.starts_with("# Playbook run: Retry storm (test) (test-storm)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| Source | live demo cluster |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("remedy `sane_retries worker->payments` declined"),
        "{markdown}"
    );
    app.update(Action::TranscriptWritten(Ok(
        "/tmp/t/test-storm-20250101T000000.md".to_owned(),
    )));
    assert!(
        app.messages
            .back()
            .unwrap()
            .1
            .contains("transcript written to /tmp/t/")
    );
    let screen = crate::ui::drawn(&app, 160, 48);
    assert!(
        screen.contains("transcript: /tmp/t/test-storm-20250101T000000.md"),
        "{screen}"
    );
    app.update(Action::TranscriptWritten(Err("disk full".to_owned())));
    assert!(
        app.messages
            .back()
            .unwrap()
            .1
            .contains("could not write the transcript: disk full")
    );
    // Nothing to write without a run.
    let mut empty = App::new(SourceKind::Demo, Profile::Demo, 10);
    assert!(empty.update(Action::WriteTranscript).is_empty());
}

#[test]
fn p_opens_the_selected_diagnosiss_playbook_and_again_restarts_it() {
    let mut app = App::new(SourceKind::Demo, Profile::Demo, 100);
    storm(&mut app, T0, 5.0);
    app.update(Action::Show(View::Diagnoses));
    app.update(Action::OpenPlaybook);
    assert_eq!(app.view, View::Playbook);
    let first = pane(&app);
    assert_eq!(first.playbook().name, "retry-storm");
    assert_eq!(first.started_ns, T0);
    // Judged at once against the analysis in hand: the confirmation passed.
    assert!(matches!(
        first.run.log().first(),
        Some(faultline_playbooks::Entry::Checked { step: 0, result, .. }) if result.outcome == Outcome::Pass
    ));
    assert_eq!(first.run.bindings()["edge"], "worker->payments");
    let logged = first.run.log().len();
    assert!(logged >= 2, "{:?}", outcomes(&app));
    // Opening again restarts the run; so does :playbook NAME.
    app.update(Action::SkipRemedy);
    app.update(Action::Show(View::Diagnoses));
    app.update(Action::OpenPlaybook);
    assert_eq!(pane(&app).run.log().len(), logged);
    assert!(app.messages.back().unwrap().1.contains("(restarted)"));
    app.update(Action::StartCommand);
    for c in "playbook nope".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Submit);
    assert!(
        app.messages
            .back()
            .unwrap()
            .1
            .contains("no playbook \"nope\"; there are: ")
    );
    assert_eq!(pane(&app).playbook().name, "retry-storm", "the run goes on");
    // p means nothing outside the diagnoses view, nor without a diagnosis.
    let mut quiet = App::new(SourceKind::Demo, Profile::Demo, 100);
    analysis(&mut quiet, T0, Vec::new());
    quiet.update(Action::Show(View::Diagnoses));
    quiet.update(Action::OpenPlaybook);
    assert!(quiet.playbook.is_none());
    assert!(
        quiet
            .messages
            .back()
            .unwrap()
            .1
            .contains("no diagnosis selected")
    );
}

#[test]
fn enter_on_a_done_check_opens_its_evidence_trace_when_held() {
    let mut app = at_the_remedy(true);
    app.update(Action::Up);
    assert_eq!(pane(&app).selected, 1);
    // The evidence trace is not in the store.
    app.update(Action::Enter);
    assert_eq!(
        app.mode,
        Mode::Normal,
        "not the remedy: the selection is elsewhere"
    );
    assert!(app.messages.back().unwrap().1.contains("no longer held"));
    let mut span = faultline_model::Span::new(
        faultline_model::TraceId([7; 16]),
        faultline_model::SpanId([1; 8]),
        "charge".to_owned(),
    );
    span.start_ns = T0;
    span.end_ns = T0 + 1;
    app.update(Action::Spans(vec![span]));
    app.update(Action::Enter);
    assert_eq!(app.view, View::Traces);
    assert_eq!(app.traces.open, Some(faultline_model::TraceId([7; 16])));
}

/// A playbook whose confirmation is a live fact: it is judged on cluster polls too.
const LIVE: &str = r#"
title = "Node down (test)"
handles = ["leader_loss"]
summary = "A node died."

[[step]]
id = "down"
title = "A node is down"
look = "Overview."
check = { status = "nodes_down", op = ">=", value = 1 }
bind = "node"
pass = "{node} is down."
fail = "Every node answers."
on_fail = "stop"

[[step]]
id = "verify"
title = "Back"
look = "Overview."
check = { status = "nodes_down", op = "==", value = 0 }
pass = "All up."
fail = "Still down."
verify = true
"#;

fn poll(app: &mut App, at_ns: u64, down: bool) {
    let health = if down {
        Health::Down("refused".to_owned())
    } else {
        Health::Up
    };
    app.update(Action::Cluster(ClusterSnapshot {
        at_ns,
        nodes: vec![
            NodeState::unknown("node-1", Health::Up),
            NodeState::unknown("node-2", health),
        ],
    }));
}

#[test]
fn cluster_polls_tick_live_checks_and_without_a_cluster_they_cannot_tell() {
    let mut app = App::new(SourceKind::Demo, Profile::Demo, 100);
    app.playbook = Some(PlaybookPane::new(
        Playbook::parse("node-down", LIVE).unwrap(),
        T0,
    ));
    analysis(&mut app, T0, Vec::new());
    let waiting = pane(&app).waiting.clone().unwrap();
    assert_eq!(
        waiting.result.outcome,
        Outcome::Unknown,
        "no cluster polled yet"
    );
    poll(&mut app, T0 + S, false);
    assert_eq!(
        pane(&app).waiting.as_ref().unwrap().result.outcome,
        Outcome::Fail
    );
    poll(&mut app, T0 + 2 * S, true);
    assert_eq!(pane(&app).run.bindings()["node"], "node-2");
    assert_eq!(pane(&app).run.current(), Some(1));
    poll(&mut app, T0 + 3 * S, false);
    assert_eq!(
        pane(&app).run.conclusion().unwrap().verdict,
        Verdict::Resolved
    );
}
