#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

// The playbook view on recorded incidents, at both sizes: the diagnosis's playbook
// opened with `p` and followed against the analysis of the sample (no cluster: remedies
// can only be recorded as not run), and the remedy's confirmation when a cluster is
// attached. Snapshots for the look; the facts a user needs asserted in code.

use faultline_playbooks::check::Outcome;
use faultline_playbooks::{Action as Remedy, Entry};
use faultline_tui::app::{Action, App, Effect, Mode, View};

/// Renders `app` at both sizes, snapshots each as `{name}_{w}x{h}`, and returns the
/// two screens (80×24 first).
fn snapshots(name: &str, app: &App) -> Vec<String> {
    common::SIZES
        .iter()
        .map(|&(width, height)| {
            let text = common::render(app, width, height);
            insta::assert_snapshot!(format!("{name}_{width}x{height}"), text);
            text
        })
        .collect()
}

/// `sample` at +`after_s` s, its top diagnosis's playbook opened with `p`.
fn opened(sample: &str, after_s: u64) -> App {
    let mut app = common::app_from_sample(sample, after_s);
    app.update(Action::Show(View::Diagnoses));
    app.update(Action::OpenPlaybook);
    assert_eq!(app.view, View::Playbook);
    app
}

fn outcomes(app: &App) -> Vec<(usize, String)> {
    let pane = app.playbook.as_ref().unwrap();
    pane.run
        .log()
        .iter()
        .map(|entry| match entry {
            Entry::Checked { step, result, .. } => (*step, result.outcome.as_str().to_owned()),
            Entry::Remedied { step, outcome, .. } => (*step, format!("{outcome:?}")),
        })
        .collect()
}

#[test]
fn a_retry_storm_is_confirmed_measured_and_stops_at_the_remedy() {
    let app = opened("retry-storm", 8);
    let pane = app.playbook.as_ref().unwrap();
    assert_eq!(pane.playbook().name, "retry-storm");
    assert_eq!(pane.run.bindings()["edge"], "worker->payments");
    let (step, action, target, _) = pane.remedy_due().expect("a remedy is due");
    assert_eq!(action, Remedy::SaneRetries);
    assert_eq!(target.as_deref(), Some("worker->payments"));
    assert_eq!(pane.selected, step);
    let log = outcomes(&app);
    assert_eq!(log[0], (0, "pass".to_owned()), "{log:?}");
    assert_eq!(log[1], (1, "pass".to_owned()), "{log:?}");
    let screens = snapshots("playbook_retry-storm", &app);
    for screen in &screens {
        assert!(
            screen.contains("playbook · Runaway retry storm (retry-storm)"),
            "{screen}"
        );
        assert!(screen.contains("✓ pass"), "{screen}");
        assert!(screen.contains("▶ now"), "{screen}");
        assert!(
            screen.contains("remedy: sane_retries on worker->payments"),
            "{screen}"
        );
        assert!(screen.contains("no cluster attached"), "{screen}");
        assert!(screen.contains("7 playbook"), "{screen}");
    }
    // The wide screen has room for every step and the remedy's why.
    assert!(
        screens[1].contains("why: Turns on exponential backoff"),
        "{}",
        screens[1]
    );
    assert!(
        screens[1].contains("·           6. Attempts per call are back to normal"),
        "{}",
        screens[1]
    );
}

#[test]
fn with_a_cluster_the_remedy_is_confirmed_first() {
    let mut app = opened("retry-storm", 8);
    app.control = true;
    assert!(app.update(Action::Enter).is_empty());
    let asked = Effect::Remedy {
        action: Remedy::SaneRetries,
        target: Some("worker->payments".to_owned()),
    };
    assert_eq!(app.mode, Mode::Confirm(asked.clone()));
    let screens = snapshots("playbook_confirm", &app);
    for screen in &screens {
        assert!(
            screen.contains("Apply sane_retries on worker->payments?"),
            "{screen}"
        );
        assert!(screen.contains("[y/Enter] yes"), "{screen}");
    }
    assert_eq!(app.update(Action::Confirm(true)), [asked]);
}

#[test]
fn a_leader_loss_names_the_node_and_cannot_tell_live_facts_from_a_capture() {
    let mut app = opened("leader-crash", 8);
    let pane = app.playbook.as_ref().unwrap();
    assert_eq!(pane.playbook().name, "leader-loss");
    assert_eq!(pane.run.bindings()["node"], "node-1");
    let (_, action, target, _) = pane.remedy_due().expect("the restart is due");
    assert_eq!(
        (action, target.as_deref()),
        (Remedy::RestartNode, Some("node-1"))
    );
    // Is it still down? Only a live cluster can say: unknown, and the run goes on.
    let still_down = pane.playbook().step("still-down").unwrap().0;
    assert!(
        pane.run.log().iter().any(|e| matches!(
            e,
            Entry::Checked { step, result, .. } if *step == still_down && result.outcome == Outcome::Unknown
        )),
        "{:?}",
        outcomes(&app)
    );
    let screens = snapshots("playbook_leader-crash", &app);
    for screen in &screens {
        assert!(screen.contains("playbook · Leader loss"), "{screen}");
        assert!(screen.contains("? unknown"), "{screen}");
        assert!(
            screen.contains("remedy: restart_node on node-1"),
            "{screen}"
        );
    }
    // No cluster: Enter records the restart as not run; the verification then waits
    // (node-1 is still silent at the end of the data) and says what it sees.
    app.update(Action::Enter);
    let pane = app.playbook.as_ref().unwrap();
    assert!(pane.remedy_due().is_none());
    let waiting = pane.waiting.as_ref().expect("verification waits");
    assert_eq!(waiting.result.outcome, Outcome::Fail);
    let screens = snapshots("playbook_leader-crash_verifying", &app);
    for screen in &screens {
        assert!(screen.contains("– not run"), "{screen}");
        assert!(screen.contains("waiting: "), "{screen}");
        assert!(screen.contains("verifying until"), "{screen}");
    }
}

#[test]
fn without_a_run_the_view_says_how_to_start_one() {
    let mut app = common::app_from_sample("retry-storm", 8);
    app.update(Action::Show(View::Playbook));
    for (width, height) in common::SIZES {
        let screen = common::render(&app, width, height);
        assert!(screen.contains("No playbook running."), "{screen}");
        assert!(screen.contains("`p` opens the selected"), "{screen}");
    }
    let screen = common::render(&app, 160, 48);
    assert!(screen.contains("retry-storm"), "{screen}");
    // Tiny terminals do not panic.
    for (width, height) in [(1, 1), (20, 5), (30, 8)] {
        common::render(&app, width, height);
        common::render(&opened("leader-crash", 8), width, height);
    }
}
