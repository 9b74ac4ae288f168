#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

// The cluster views (overview, signals, map) on recorded incidents, at both sizes:
// insta snapshots for the look, plus the facts a user needs asserted in code so that
// a test fails for a real reason, not only on snapshot drift.

use faultline_dashboards::Profile;
use faultline_tui::app::{Action, App, Cursor, SourceKind, View};
use faultline_tui::cluster::{AgentCounts, ClusterSnapshot, Health, parse_status};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::Widget;

/// Renders `view` of `sample` at +8 s at both sizes, snapshots each, returns the texts.
fn snapshots(view: View, sample: &str) -> Vec<String> {
    let mut app = common::app_from_sample(sample, 8);
    app.view = view;
    common::SIZES
        .iter()
        .map(|&(w, h)| {
            let text = common::render(&app, w, h);
            insta::assert_snapshot!(format!("{}_{sample}_{w}x{h}", view.title()), text);
            text
        })
        .collect()
}

/// The line of `text` that mentions `needle` (for asserting on one row).
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

#[test]
fn overview_leader_crash_shows_the_crashed_leader_and_the_new_one() {
    for text in snapshots(View::Overview, "leader-crash") {
        // node-1, the leader in term 1, went silent; node-2 leads in term 2.
        let node_1 = line_with(&text, "│node-1");
        assert!(node_1.contains("silent"), "{node_1}");
        assert!(node_1.contains("led term 1"), "{node_1}");
        let node_2 = line_with(&text, "│node-2");
        assert!(
            node_2.contains("leader") && node_2.contains(" 2 "),
            "{node_2}"
        );
        assert!(text.contains("leader node-2 (term 2)"), "{text}");
        // The matrix (its rows hold the diagonal's —): node-2 and node-3 fail to reach
        // node-1 (the first column) and reach each other.
        for from in ["node-2", "node-3"] {
            let row = text
                .lines()
                .flat_map(|l| l.split('│'))
                .find(|box_row| box_row.starts_with(from) && box_row.contains('—'))
                .unwrap_or_else(|| panic!("no matrix row for {from} in\n{text}"));
            let cells: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cells[0], from, "{row}");
            assert!(
                ["~", "×"].contains(&cells[1]),
                "{from} → node-1 should fail: {row}"
            );
            assert!(cells[2..].iter().all(|c| ["ok", "—"].contains(c)), "{row}");
        }
        // The top diagnosis is in effect.
        assert!(text.contains("node-1 went down"), "{text}");
    }
}

#[test]
fn signals_leader_crash_shows_lag_critical_and_every_panel() {
    for text in snapshots(View::Signals, "leader-crash") {
        for title in [
            "p99",
            "error rate",
            "retry amplification",
            "replication lag",
            "DLQ depth",
            "elections",
        ] {
            assert!(text.contains(title), "{title} missing in\n{text}");
        }
        // The crashed node falls behind the new leader: 13.3 s, critical (demo: > 5 s).
        assert!(
            text.lines().any(|l| l.contains("13.3 s CRIT")
                || (l.contains("replication lag") && l.contains("13.3 s") && l.contains("CRIT"))),
            "{text}"
        );
        assert!(
            text.contains("no data"),
            "the DLQ has no data in this capture:\n{text}"
        );
    }
}

#[test]
fn signals_retry_storm_shows_p99_over_warning_lines_and_amplification() {
    for text in snapshots(View::Signals, "retry-storm") {
        assert!(text.contains("p99"), "{text}");
        assert!(text.contains("303 ms") || text.contains("305 ms"), "{text}");
        if text.lines().next().is_some_and(|l| l.chars().count() <= 82) {
            // One line per signal at 80 columns.
            let amplification = line_with(&text, "retry amplification");
            assert!(
                amplification.contains("CRIT"),
                "the worker → payments edge retries over 3×: {amplification}"
            );
        }
    }
}

#[test]
fn map_retry_storm_shows_worker_calling_payments_critically() {
    for text in snapshots(View::Map, "retry-storm") {
        let edge = line_with(&text, "└─► payments");
        assert!(edge.contains("CRIT"), "{edge}");
        assert!(edge.contains('×'), "retries amplify on this edge: {edge}");
        // worker is a caller on the left, payments under it.
        let worker = text
            .lines()
            .position(|l| l.contains("│worker "))
            .expect("worker row");
        let payments = text
            .lines()
            .position(|l| l.contains("└─► payments"))
            .expect("payments row");
        assert!(worker < payments, "{text}");
        assert!(text.contains("sidecar proxy"), "{text}");
    }
}

#[test]
fn map_leader_crash_shows_gateway_to_nodes_failing() {
    for text in snapshots(View::Map, "leader-crash") {
        let edge = line_with(&text, "─► faultline-node");
        assert!(edge.contains("CRIT"), "{edge}");
        assert!(text.contains("load"), "{text}");
        assert!(text.contains("node-1 is down"), "{text}");
    }
}

#[test]
fn an_empty_app_renders_every_cluster_view_at_any_size() {
    let mut app = App::new(
        SourceKind::Otlp("127.0.0.1:4318".to_owned()),
        Profile::Demo,
        10,
    );
    for view in [View::Overview, View::Signals, View::Map] {
        app.view = view;
        for (w, h) in [(1, 1), (20, 5), (80, 24), (160, 48), (300, 10), (10, 80)] {
            let text = common::render(&app, w, h);
            assert_eq!(text.lines().count(), usize::from(h), "{view:?} at {w}x{h}");
        }
        // Zero-sized (TestBackend cannot print those): straight into an empty buffer.
        for area in [Rect::ZERO, Rect::new(0, 0, 0, 10), Rect::new(0, 0, 10, 0)] {
            let mut buf = Buffer::empty(area);
            (&app).render(area, &mut buf);
        }
    }
    app.view = View::Overview;
    assert!(common::render(&app, 80, 24).contains("No nodes yet"));
    app.view = View::Signals;
    assert!(common::render(&app, 80, 24).contains("no data"));
    app.view = View::Map;
    assert!(common::render(&app, 80, 24).contains("No calls between services yet"));
}

#[test]
fn a_sample_renders_in_tiny_areas_and_far_from_its_data() {
    let mut app = common::app_from_sample("leader-crash", 8);
    for view in [View::Overview, View::Signals, View::Map] {
        app.view = view;
        for (w, h) in [(20, 5), (40, 10), (100, 24), (99, 30)] {
            common::render(&app, w, h);
        }
        // Before any data, and long after it.
        for at in [0, u64::MAX] {
            app.cursor = Cursor::At(at);
            common::render(&app, 80, 24);
        }
        app.cursor = Cursor::Live;
        common::render(&app, 160, 48);
    }
}

/// The map draws the call graph the analysis computed for its window (a frame does
/// no span work): its title gives that window's traces and span of time.
#[test]
fn the_map_shows_the_analysis_window() {
    let mut app = common::app_from_sample("retry-storm", 8);
    app.view = View::Map;
    let text = common::render(&app, 80, 24);
    let title = line_with(&text, "calls · last");
    let traces: usize = title
        .split(", ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no trace count in {title}"));
    let report = app.analysis_now().expect("an analysis");
    assert_eq!(traces as u64, report.traces, "{title}");
    assert_eq!(app.calls_now().map(|g| g.traces), Some(traces));
    // Rewound before the analysis: no graph yet, and the title says so.
    app.cursor = Cursor::At(1);
    let text = common::render(&app, 80, 24);
    assert!(text.contains("calls · analysing…"), "{text}");
}

/// With a cluster attached, the nodes' rows come from their `/status`: a node that does
/// not answer is DOWN with the reason, the others' role, term, leader and lag show.
#[test]
fn overview_with_a_cluster_attached_shows_status_rows() {
    let mut app = common::app_from_sample("leader-crash", 8);
    let at = app.now_ns();
    let leader = br#"{"role":"leader","term":2,"leader":"node-2","commit_index":412,
        "followers":[{"node":"node-1","lag_ms":8100},{"node":"node-3","lag_ms":3}],
        "state_machine":{"queues":[{"queue":"payments","main":{"depth":4},"dead_letter":{"depth":0}}]}}"#;
    let follower = br#"{"role":"follower","term":2,"leader":"node-2","commit_index":411}"#;
    let mut down = parse_status("node-1", b"");
    down.health = Health::Down("refused connection".to_owned());
    // Two polls a second apart: the agents' counters give requests and 5xx per second.
    let polled = |requests: u64, errors: u64| {
        let mut node_2 = parse_status("node-2", leader);
        node_2.agent = Some(AgentCounts {
            requests,
            errors,
            in_flight: 1,
        });
        vec![down.clone(), node_2, parse_status("node-3", follower)]
    };
    app.update(Action::Cluster(ClusterSnapshot {
        at_ns: at - 1_000_000_000,
        nodes: polled(1000, 10),
    }));
    app.update(Action::Cluster(ClusterSnapshot {
        at_ns: at,
        nodes: polled(1250, 40),
    }));
    assert_eq!(app.agent_rates("node-2"), Some((250.0, 30.0)));
    assert_eq!(app.agent_rates("node-3"), None, "no agent figures, no rate");
    app.update(Action::Injected {
        id: "leader-crash".to_owned(),
        result: Ok("node-1 killed".to_owned()),
    });
    app.cursor = Cursor::At(at);
    for (w, h) in common::SIZES {
        let text = common::render(&app, w, h);
        insta::assert_snapshot!(format!("overview_cluster_leader-crash_{w}x{h}"), text);
        let node_1 = line_with(&text, "│node-1 ");
        assert!(node_1.contains("DOWN: refused"), "{node_1}");
        let node_2 = line_with(&text, "│node-2 ");
        assert!(
            node_2.contains("leader") && node_2.contains("8.10s"),
            "{node_2}"
        );
        assert!(node_2.contains(" 250 "), "requests per second: {node_2}");
        if w >= 160 {
            assert!(node_2.contains(" 30 "), "5xx per second: {node_2}");
        }
        assert!(text.contains("leader node-2"), "{text}");
        assert!(
            text.contains("FAULT leader-crash (node-1 killed)"),
            "{text}"
        );
    }
}
