//! Shared by the view tests: an `App` fed from a recorded sample, and rendering into
//! ratatui's `TestBackend`.
//!
//! The sample is replayed the way the TUI replays a capture (spans in order of their
//! end, in batches), the time cursor is put a few seconds after the labelled
//! injection, and one analysis runs up to that moment, as the live loop would.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use faultline_analyzers::{Profile, Thresholds};
use faultline_dashboards::Profile as LevelProfile;
use faultline_model::read::{ReadOptions, read_all};
use faultline_tui::app::{Action, App, Cursor, FaultItem, SourceKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The two sizes every view is checked at (STYLE.md).
pub const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// The labelled injection time of a sample, ns since the epoch.
pub fn injected_ns(name: &str) -> u64 {
    let labels =
        std::fs::read_to_string(samples().join(format!("{name}.labels.json"))).expect("labels");
    let labels: serde_json::Value = serde_json::from_str(&labels).expect("labels JSON");
    labels["injected_at_ms"].as_u64().expect("injected_at_ms") * 1_000_000
}

/// An app holding `name`'s spans, paused `after_s` seconds after the injection, with
/// the analysis of the two minutes up to then.
pub fn app_from_sample(name: &str, after_s: u64) -> App {
    let path = samples().join(format!("{name}.jsonl.zst"));
    let (mut spans, _) = read_all(&path, &ReadOptions::default()).expect("the sample reads");
    spans.sort_by_key(|s| (s.end_ns, s.start_ns));
    let at = injected_ns(name) + after_s * 1_000_000_000;
    let mut app = App::new(
        SourceKind::Replay(format!("samples/{name}.jsonl.zst")),
        LevelProfile::Demo,
        faultline_tui::app::DEFAULT_CAP,
    );
    for chunk in spans.chunks(256) {
        app.update(Action::Spans(chunk.to_vec()));
    }
    app.update(Action::Faults(fault_items()));
    let batches = faultline_tui::analysis::batches(&app.store);
    app.update(faultline_tui::analysis::action(
        &batches,
        faultline_tui::analysis::Window::last(at, at),
        Some(&Thresholds::for_profile(Profile::Demo)),
    ));
    app.cursor = Cursor::At(at);
    app
}

/// A few entries of the faults menu, as the demo's control offers them.
pub fn fault_items() -> Vec<FaultItem> {
    vec![
        FaultItem {
            id: "leader-crash".to_owned(),
            title: "leader-crash".to_owned(),
            description: "kill -9 the Raft leader (restarted on heal)".to_owned(),
            expect: Some("leader loss → election → recovery".to_owned()),
        },
        FaultItem {
            id: "retry-storm".to_owned(),
            title: "retry-storm".to_owned(),
            description: "payments slows down while workers retry without budget".to_owned(),
            expect: Some("retry storm".to_owned()),
        },
        FaultItem {
            id: "toxic:latency:node-2".to_owned(),
            title: "latency 300 ms at node-2".to_owned(),
            description: "a single toxic: 300 ms added to every request node-2's agent forwards"
                .to_owned(),
            expect: None,
        },
    ]
}

/// The app drawn at `width`×`height`, as text.
pub fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
        .expect("draw");
    terminal.backend().to_string()
}
