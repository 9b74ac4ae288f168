#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

// The traces, diagnoses, faults and help views on recorded samples, at both sizes:
// snapshots of what a user sees, plus the facts each screen must show.

use faultline_tui::app::{Action, App, Effect, Mode, View};
use faultline_tui::critical::critical_path;
use faultline_tui::store::is_error;

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

fn type_filter(app: &mut App, text: &str) {
    app.update(Action::StartFilter);
    for c in text.chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Submit);
}

/// The trace list's data rows: screen lines whose first cells hold a start time.
fn list_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter(|line| {
            let cells: Vec<char> = line.chars().skip(4).take(12).collect();
            cells.len() == 12
                && cells[2] == ':'
                && cells[5] == ':'
                && cells[8] == '.'
                && cells.iter().filter(|c| c.is_ascii_digit()).count() == 9
        })
        .collect()
}

#[test]
fn trace_list_newest_first_with_errors_written_out() {
    let mut app = common::app_from_sample("leader-crash", 8);
    app.update(Action::Show(View::Traces));
    app.update(Action::Down);
    let screens = snapshots("trace_list", &app);
    let visible = app.visible_traces();
    for screen in &screens {
        assert!(screen.contains(&format!("traces · {} (newest first)", visible.len())));
        let rows = list_rows(screen);
        assert!(rows.len() > 10, "{screen}");
        // The second row is the selected one.
        assert!(rows[1].contains('▶') && !rows[0].contains('▶'), "{screen}");
        // Rows with errors say so in text, and the others are there too.
        assert!(rows.iter().any(|r| r.contains("ERR ")), "{screen}");
        assert!(rows.iter().any(|r| !r.contains("ERR ")), "{screen}");
    }
    // The newest trace is on top, with its trace id prefix.
    let newest = visible[0].trace_id.to_string();
    assert!(list_rows(&screens[0])[0].contains(&newest[..8]));
}

#[test]
fn the_error_filter_keeps_only_traces_with_errors() {
    let mut app = common::app_from_sample("leader-crash", 8);
    app.update(Action::Show(View::Traces));
    let all = app.visible_traces().len();
    type_filter(&mut app, "error");
    assert_eq!(app.mode, Mode::Normal);
    let errors = app.visible_traces().len();
    assert!(errors > 0 && errors < all, "{errors} of {all}");
    let screens = snapshots("trace_list_error", &app);
    for screen in &screens {
        assert!(
            screen.contains(&format!("{errors} match /error")),
            "{screen}"
        );
        let rows = list_rows(screen);
        assert!(!rows.is_empty(), "{screen}");
        for row in rows {
            assert!(row.contains("ERR "), "a row without errors: {row}");
        }
    }
}

#[test]
fn waterfall_marks_the_critical_path_and_details_the_selected_span() {
    let mut app = common::app_from_sample("leader-crash", 8);
    app.update(Action::Show(View::Traces));
    // A request from the load generator through the gateway to the cluster, failing.
    type_filter(&mut app, "svc:load svc:gateway error");
    app.update(Action::Enter);
    let open = app.traces.open.expect("a trace is open");
    let rows = app.waterfall();
    assert!(rows.len() >= 3, "{} spans", rows.len());
    let path = critical_path(&rows);
    assert!(path.len() >= 2, "{path:?}");
    // Select the first failing span.
    let failing = rows.iter().position(|(_, s)| is_error(s)).unwrap();
    let selected = rows[failing].1.span_id;
    for _ in 0..failing {
        app.update(Action::Down);
    }
    let screens = snapshots("waterfall", &app);
    for (screen, &(width, _)) in screens.iter().zip(&common::SIZES) {
        assert!(
            screen.contains(&format!("trace {}", &open.to_string()[..7])),
            "{screen}"
        );
        assert!(screen.contains("◆ critical path"), "{screen}");
        assert!(screen.contains(&selected.to_string()), "{screen}");
        assert!(screen.contains("span details"), "{screen}");
        assert!(screen.contains("ERR"), "{screen}");
        // Beside the waterfall when wide, below it when narrow.
        let top = screen.lines().find(|l| l.contains("span details")).unwrap();
        assert_eq!(top.contains("trace "), width >= 120, "{screen}");
    }
    // At 160×48 the whole trace shows: every critical span is marked (plus the legend).
    let marked = screens[1].lines().filter(|l| l.contains("◆ ")).count();
    assert_eq!(marked, path.len() + 1, "{path:?}:\n{}", screens[1]);
    // Esc goes back to the filtered list.
    app.update(Action::Back);
    assert!(app.traces.open.is_none());
}

#[test]
fn diagnoses_of_a_leader_crash_name_the_lost_leader() {
    let mut app = common::app_from_sample("leader-crash", 8);
    app.update(Action::Show(View::Diagnoses));
    let report = app.analysis_now().unwrap().clone();
    let top = &report.diagnoses[0];
    let screens = snapshots("diagnoses_leader_crash", &app);
    for screen in &screens {
        assert!(screen.contains("#1 Leader loss"), "{screen}");
        assert!(screen.contains("node-1"), "{screen}");
        assert!(screen.contains("CRITICAL"), "{screen}");
        assert!(screen.contains("node_crash node-1"), "{screen}");
        assert!(screen.contains("leader-loss"), "{screen}");
        assert!(
            screen.contains("Enter: open the first evidence trace"),
            "{screen}"
        );
    }
    assert!(screens[1].contains("playbook leader-loss: p opens it"));
    assert!(screens[1].contains(&top.evidence[0].to_string()));
    // Enter opens the first evidence trace in the waterfall.
    app.update(Action::Enter);
    assert_eq!(app.view, View::Traces);
    assert_eq!(app.traces.open, Some(top.evidence[0]));
}

#[test]
fn diagnoses_of_a_retry_storm_expand_the_selected_one() {
    let mut app = common::app_from_sample("retry-storm", 8);
    app.update(Action::Show(View::Diagnoses));
    app.update(Action::Down);
    let report = app.analysis_now().unwrap().clone();
    assert!(report.diagnoses.len() >= 2);
    let second = &report.diagnoses[1];
    let screens = snapshots("diagnoses_retry_storm", &app);
    for screen in &screens {
        assert!(screen.contains("Retry storm"), "{screen}");
        assert!(
            screen.contains(&format!("#2 {}", second.kind.title())),
            "{screen}"
        );
        assert!(screen.contains("▶ 2"), "{screen}");
    }
}

#[test]
fn faults_menu_lists_the_offer_and_what_is_in_effect() {
    let mut app = common::app_from_sample("leader-crash", 8);
    app.update(Action::Show(View::Faults));
    let screens = snapshots("faults", &app);
    for screen in &screens {
        for item in common::fault_items() {
            assert!(
                screen.contains(&item.title),
                "{} missing:\n{screen}",
                item.title
            );
        }
        assert!(
            screen.contains("expect: leader loss → election → recovery"),
            "{screen}"
        );
        assert!(
            screen.contains("Enter inject · h heal selected · H heal all"),
            "{screen}"
        );
        assert!(screen.contains("none: the cluster runs clean"), "{screen}");
    }

    // Enter asks first.
    app.update(Action::Down);
    app.update(Action::Enter);
    assert_eq!(
        app.mode,
        Mode::Confirm(Effect::Inject("retry-storm".to_owned()))
    );
    for screen in snapshots("faults_confirm", &app) {
        assert!(screen.contains("Inject retry-storm?"), "{screen}");
        assert!(screen.contains("[y/Enter] yes"), "{screen}");
    }

    // Confirmed: pending until the control answers, then in effect.
    let effects = app.update(Action::Confirm(true));
    assert_eq!(effects, [Effect::Inject("retry-storm".to_owned())]);
    assert!(common::render(&app, 80, 24).contains("injecting…"));
    app.update(Action::Injected {
        id: "retry-storm".to_owned(),
        result: Ok("payments +300 ms, retries without budget".to_owned()),
    });
    for screen in snapshots("faults_in_effect", &app) {
        assert!(screen.contains("retry-storm  [IN EFFECT]"), "{screen}");
        assert!(screen.contains("retry-storm: payments +300 ms"), "{screen}");
        assert!(!screen.contains("injecting…"), "{screen}");
    }
}

#[test]
fn faults_without_a_cluster_say_how_to_get_one() {
    let mut app = common::app_from_sample("retry-storm", 8);
    app.update(Action::Faults(Vec::new()));
    app.update(Action::Show(View::Faults));
    for screen in snapshots("faults_unavailable", &app) {
        assert!(
            screen.contains("Faults need a running demo cluster"),
            "{screen}"
        );
        assert!(screen.contains("faultline demo"), "{screen}");
    }
}

#[test]
fn help_overlay_lists_keys_commands_and_the_filter() {
    let mut app = common::app_from_sample("leader-crash", 8);
    app.update(Action::Show(View::Traces));
    app.update(Action::Help);
    assert_eq!(app.mode, Mode::Help);
    for screen in snapshots("help", &app) {
        for wanted in [
            ":inject NAME",
            ":heal [NAME]",
            ":speed N",
            "svc:NAME",
            "Ctrl-C",
            "Esc",
        ] {
            assert!(screen.contains(wanted), "{wanted} missing:\n{screen}");
        }
    }
}
