//! The TUI's state and its one way to change: [`App::update`] with an [`Action`].
//!
//! ```text
//!  key (keys.rs) ─┐
//!  Input ─────────┼─► Action ─► App::update (pure: no I/O, no clock) ─► Vec<Effect> ─► the shell (run.rs)
//!  tick ──────────┘                   │
//!                                     └─► state read by the views (ui/, `impl Widget for &App`)
//! ```
//!
//! Nothing here knows ratatui: the views read this state and draw it. Time is data
//! time (span timestamps and poll times, ns since the epoch): live it follows the
//! newest data, paused it stays where the time cursor was put.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use faultline_analyzers::report::Report;
use faultline_dashboards::{Dashboard, Level, Profile};
use faultline_model::{Span, TraceId};
use faultline_playbooks::check::{Observation, RECENT_NS};
use faultline_playbooks::transcript::{self, RunInfo};
use faultline_playbooks::{Library, RemedyOutcome};

use crate::calls::CallGraph;
use crate::cluster::ClusterSnapshot;
use crate::playbook::PlaybookPane;
use crate::signals::{Signal, Signals};
use crate::store::{SpanStore, TraceSummary};
use crate::topology::Topology;

/// Default span cap (PRODUCT.md §6: stays responsive at a million spans).
pub const DEFAULT_CAP: usize = 1_000_000;
/// Cluster snapshots and analyses kept for the time cursor.
const HISTORY: usize = 3600;
/// Seconds of healthy traffic the diagnosis wants before a fault goes in: its
/// detectors compare the incident with the time before it.
pub const BASELINE_S: u64 = 10;
/// Messages kept for the log line.
const MESSAGES: usize = 50;

/// The signal levels that go with the analyzers' thresholds of the same name.
pub fn levels_for(profile: faultline_analyzers::Profile) -> Profile {
    match profile {
        faultline_analyzers::Profile::Demo => Profile::Demo,
        faultline_analyzers::Profile::Production => Profile::Production,
    }
}

/// The views, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    Overview,
    Signals,
    Map,
    Traces,
    Diagnoses,
    Faults,
    Playbook,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Overview,
        View::Signals,
        View::Map,
        View::Traces,
        View::Diagnoses,
        View::Faults,
        View::Playbook,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Overview => "overview",
            View::Signals => "signals",
            View::Map => "map",
            View::Traces => "traces",
            View::Diagnoses => "diagnoses",
            View::Faults => "faults",
            View::Playbook => "playbook",
        }
    }

    pub fn parse(text: &str) -> Option<View> {
        View::ALL
            .into_iter()
            .find(|v| v.title() == text || (text.len() >= 2 && v.title().starts_with(text)))
    }

    fn index(self) -> usize {
        View::ALL.iter().position(|&v| v == self).unwrap_or(0)
    }
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// `/`: typing the traces filter.
    Filter,
    /// `:`: typing a command.
    Command(String),
    /// `?`: the help overlay.
    Help,
    /// Asked to confirm an injection, a heal or a remedy (Enter/y confirms, Esc/n
    /// cancels).
    Confirm(Effect),
}

/// Where the live spans and state come from (shown in the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// The demo cluster, with its OTLP receiver.
    Demo,
    /// An embedded OTLP receiver on this address.
    Otlp(String),
    /// A capture replayed.
    Replay(String),
}

/// A capture's replay: where it is, how fast, paused or not.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayState {
    /// Data time reached, ns since the epoch.
    pub position_ns: u64,
    pub speed: f64,
    pub paused: bool,
    pub finished: bool,
}

/// A fault the faults view offers (the catalog's scenarios and single toxics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultItem {
    /// What the control is told to inject (`leader-crash`, `toxic:latency:node-2`…).
    pub id: String,
    pub title: String,
    /// What it does to the cluster.
    pub description: String,
    /// The diagnosis it should lead to (scenarios).
    pub expect: Option<String>,
}

/// The shell's work that `update` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Quit,
    Inject(String),
    Heal(String),
    HealAll,
    /// Pause (true) or resume the replay.
    ReplayPause(bool),
    ReplaySpeed(u32),
    /// Apply a playbook's remedy to the cluster (through the `Control`).
    Remedy {
        action: faultline_playbooks::Action,
        target: Option<String>,
    },
    /// Write a playbook run's Markdown transcript as `NAME-<UTC time>.md`.
    Transcript {
        name: String,
        markdown: String,
    },
}

/// Everything that changes the state.
#[derive(Debug, Clone)]
pub enum Action {
    // Navigation.
    NextView,
    PrevView,
    Show(View),
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Enter,
    Back,
    Quit,
    Help,
    // Typing (filter and command line).
    StartFilter,
    StartCommand,
    Type(char),
    Erase,
    Submit,
    // The time cursor.
    TogglePause,
    Step(i64),
    Live,
    Faster,
    Slower,
    // Faults.
    Heal,
    HealAll,
    Confirm(bool),
    // Data.
    Spans(Vec<Span>),
    Cluster(ClusterSnapshot),
    Analysis {
        at_ns: u64,
        report: Arc<Report>,
        /// The service map's call graph of the same window.
        calls: Arc<CallGraph>,
    },
    /// The analysis could not finish (it panicked); why.
    AnalysisFailed(String),
    Replay(ReplayState),
    Faults(Vec<FaultItem>),
    /// A fault was injected (Ok: its label) or refused (Err: why).
    Injected {
        id: String,
        result: Result<String, String>,
    },
    /// A fault was healed (an empty id: every fault in effect).
    Healed {
        id: String,
        result: Result<String, String>,
    },
    Message(String),
    // The playbook pane.
    /// `p` in the diagnoses view: the selected diagnosis's playbook, from the start.
    OpenPlaybook,
    /// `n`: the current step's latest result is final (a confirmation that will not
    /// come, a verification not worth waiting out).
    AcceptResult,
    /// `s`: the remedy due is declined.
    SkipRemedy,
    /// `w`: write the run's transcript.
    WriteTranscript,
    /// A remedy was carried out (Ok: what was done) or failed (Err: why).
    Remedied {
        action: faultline_playbooks::Action,
        target: Option<String>,
        result: Result<String, String>,
    },
    /// The transcript was written (Ok: where) or not (Err: why).
    TranscriptWritten(Result<String, String>),
}

/// The time cursor: follow the newest data, or stay at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Live,
    At(u64),
}

/// The traces view's state.
#[derive(Debug, Clone, Default)]
pub struct TracesState {
    pub filter: String,
    /// Index into the filtered list, newest first.
    pub selected: usize,
    /// The trace whose waterfall is open, and the selected span row in it.
    pub open: Option<TraceId>,
    pub span_selected: usize,
}

/// The faults view's state.
#[derive(Debug, Clone, Default)]
pub struct FaultsState {
    pub items: Vec<FaultItem>,
    pub selected: usize,
    /// Ids in effect (injected and not healed), with their labels.
    pub active: Vec<(String, String)>,
    /// Ids asked for and not answered yet.
    pub pending: BTreeSet<String>,
    /// Whether faults can be injected at all (a cluster is attached).
    pub available: bool,
}

/// The whole state. See the module docs.
#[derive(Debug)]
pub struct App {
    pub source: SourceKind,
    pub profile: Profile,
    pub dashboard: Dashboard,
    pub store: SpanStore,
    pub signals: Signals,
    pub topology: Topology,
    /// Cluster snapshots, oldest first.
    pub cluster: VecDeque<ClusterSnapshot>,
    /// Analyses, oldest first, by the data time they cover up to.
    pub analyses: VecDeque<(u64, Arc<Report>)>,
    /// The service map's call graph of each analysis, likewise.
    pub call_graphs: VecDeque<(u64, Arc<CallGraph>)>,
    pub view: View,
    pub mode: Mode,
    pub cursor: Cursor,
    pub traces: TracesState,
    /// The diagnoses view's selected row.
    pub diagnosis_selected: usize,
    pub faults: FaultsState,
    pub replay: Option<ReplayState>,
    /// Status messages, oldest first, with the data time they came at.
    pub messages: VecDeque<(u64, String)>,
    /// Whether the cluster is still starting (`faultline demo`).
    pub starting: bool,
    /// Analyses look at nothing before this data time: when `faultline demo`'s
    /// cluster first had a leader (its start-up — catching up, first elections — is
    /// not an incident). 0: no floor.
    pub analysis_floor_ns: u64,
    /// The data time of the newest analysis that found no incident: during an
    /// incident, analyses keep reaching back before it (see [`App::analysis_from`]).
    pub last_quiet_ns: Option<u64>,
    /// How much data an analysis looks at while all is quiet
    /// ([`WINDOW_NS`](crate::analysis::WINDOW_NS) unless changed).
    pub analysis_window_ns: u64,
    /// The playbooks (built-in), or why they would not load.
    pub library: Result<Library, String>,
    /// The playbook being followed (the playbook view).
    pub playbook: Option<PlaybookPane>,
    /// Whether a `Control` is attached: remedies act on a cluster. Without one they are
    /// recorded as not run.
    pub control: bool,
    pub quit: bool,
}

impl App {
    pub fn new(source: SourceKind, profile: Profile, cap: usize) -> App {
        App {
            source,
            profile,
            dashboard: Dashboard::builtin(),
            store: SpanStore::new(cap),
            signals: Signals::new(),
            topology: Topology::default(),
            cluster: VecDeque::new(),
            analyses: VecDeque::new(),
            call_graphs: VecDeque::new(),
            view: View::Overview,
            mode: Mode::Normal,
            cursor: Cursor::Live,
            traces: TracesState::default(),
            diagnosis_selected: 0,
            faults: FaultsState::default(),
            replay: None,
            messages: VecDeque::new(),
            starting: false,
            analysis_floor_ns: 0,
            last_quiet_ns: None,
            analysis_window_ns: crate::analysis::WINDOW_NS,
            library: Library::builtin().map_err(|e| e.to_string()),
            playbook: None,
            control: false,
            quit: false,
        }
    }

    /// The data time the views show: the newest data when live, else the cursor.
    pub fn now_ns(&self) -> u64 {
        match self.cursor {
            Cursor::At(at) => at,
            Cursor::Live => self.latest_ns(),
        }
    }

    /// The newest data time: spans, polls, replay position.
    pub fn latest_ns(&self) -> u64 {
        let polled = self.cluster.back().map_or(0, |c| c.at_ns);
        let replayed = self.replay.as_ref().map_or(0, |r| r.position_ns);
        self.store.latest_ns().max(polled).max(replayed)
    }

    pub fn is_live(&self) -> bool {
        self.cursor == Cursor::Live
    }

    /// The cluster snapshot in force at the time shown.
    pub fn cluster_now(&self) -> Option<&ClusterSnapshot> {
        let at = self.now_ns();
        self.cluster.iter().rev().find(|c| c.at_ns <= at)
    }

    /// A node's inbound requests and errors per second at the time shown, from its
    /// agent's counters in the last two polls.
    pub fn agent_rates(&self, node: &str) -> Option<(f64, f64)> {
        let at = self.now_ns();
        let mut polls = self.cluster.iter().rev().filter(|c| c.at_ns <= at);
        let (now, before) = (polls.next()?, polls.next()?);
        let counts = |c: &ClusterSnapshot| c.nodes.iter().find(|n| n.name == node)?.agent;
        let (a, b) = (counts(now)?, counts(before)?);
        let seconds = now.at_ns.checked_sub(before.at_ns)? as f64 / 1e9;
        if seconds <= 0.0 || a.requests < b.requests {
            return None; // a restarted agent starts its counters again
        }
        Some((
            (a.requests - b.requests) as f64 / seconds,
            a.errors.saturating_sub(b.errors) as f64 / seconds,
        ))
    }

    /// The analysis in force at the time shown.
    pub fn analysis_now(&self) -> Option<&Arc<Report>> {
        let at = self.now_ns();
        self.analyses
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .map(|(_, r)| r)
    }

    /// What an analysis up to `until_ns` looks at. While all is quiet: the last
    /// `analysis_window_ns`. During an incident: from that much before its onset (at
    /// most [`MAX_WINDOW_NS`](crate::analysis::MAX_WINDOW_NS) back), with the baseline
    /// ending at the onset, so that the detectors compare with the healthy time before
    /// the incident instead of a share of a window that slides into it. Never before
    /// the floor (the demo cluster's start-up).
    pub fn analysis_window(&self, until_ns: u64) -> crate::analysis::Window {
        use crate::analysis::MAX_WINDOW_NS;
        let window = self.analysis_window_ns;
        let sliding = until_ns.saturating_sub(window);
        // The incident in force: the top diagnosis of the latest analysis up to here.
        // Its onset (a second early, detectors see it a window late) is where the
        // healthy time ends; without one, the last analysis that found nothing.
        let top = self
            .analyses
            .iter()
            .rev()
            .find(|(t, _)| *t <= until_ns)
            .and_then(|(_, r)| r.diagnoses.first());
        let onset = top
            .and_then(|d| d.onset_ns)
            .and_then(|onset| u64::try_from(onset).ok())
            .map(|onset| onset.saturating_sub(1_000_000_000));
        let quiet = match top {
            Some(_) => onset.or(self.last_quiet_ns),
            None => None,
        }
        .filter(|&quiet| quiet < until_ns);
        let from = match quiet {
            Some(quiet) => quiet
                .saturating_sub(window)
                .max(until_ns.saturating_sub(MAX_WINDOW_NS))
                .min(sliding),
            None => sliding,
        }
        .max(self.analysis_floor_ns);
        crate::analysis::Window {
            from_ns: from,
            until_ns,
            baseline_until_ns: quiet.filter(|&q| q > from),
        }
    }

    /// Under `faultline demo`, while fewer than [`BASELINE_S`] seconds of healthy
    /// traffic have been seen: how many (the faults view warns before injecting).
    pub fn baseline_short_s(&self) -> Option<u64> {
        if self.source != SourceKind::Demo {
            return None;
        }
        if self.starting || self.analysis_floor_ns == 0 {
            return Some(0);
        }
        let seen = self.latest_ns().saturating_sub(self.analysis_floor_ns) / 1_000_000_000;
        (seen < BASELINE_S).then_some(seen)
    }

    /// The call graph of the analysis in force at the time shown.
    pub fn calls_now(&self) -> Option<&Arc<CallGraph>> {
        let at = self.now_ns();
        self.call_graphs
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .map(|(_, g)| g)
    }

    /// A signal's level at the time shown, from the dashboards' definitions.
    pub fn level(&self, signal: Signal, value: f64) -> Level {
        self.dashboard
            .panel(signal.id())
            .map_or(Level::Ok, |p| p.levels(self.profile).level(value))
    }

    /// The traces the list shows, newest first: started by the time shown and matching
    /// the filter (see [`matches`]).
    pub fn visible_traces(&self) -> Vec<&TraceSummary> {
        self.visible_trace_iter().collect()
    }

    fn visible_trace_iter(&self) -> impl Iterator<Item = &TraceSummary> {
        let at = self.now_ns();
        let filter = Filter::parse(&self.traces.filter);
        self.store
            .traces()
            .rev()
            .filter(move |t| t.start_ns <= at && filter.matches(t))
    }

    /// The spans of the open trace, in waterfall order (depth-first from the roots,
    /// children by start time), with their depth.
    pub fn waterfall(&self) -> Vec<(usize, &Span)> {
        let Some(id) = self.traces.open else {
            return Vec::new();
        };
        waterfall(self.store.trace_spans(&id))
    }

    fn message(&mut self, text: String) {
        let at = self.latest_ns();
        self.messages.push_back((at, text));
        while self.messages.len() > MESSAGES {
            self.messages.pop_front();
        }
    }

    fn list_len(&self) -> usize {
        match self.view {
            // Counted, not built: the frame that follows builds what it shows.
            View::Traces => match self.traces.open {
                Some(id) => self.store.trace(&id).map_or(0, TraceSummary::span_count),
                None => self.visible_trace_iter().count(),
            },
            View::Diagnoses => self.analysis_now().map_or(0, |r| r.diagnoses.len()),
            View::Faults => self.faults.items.len(),
            View::Playbook => self
                .playbook
                .as_ref()
                .map_or(0, |p| p.playbook().steps.len()),
            _ => 0,
        }
    }

    fn selected_mut(&mut self) -> Option<&mut usize> {
        match self.view {
            View::Traces if self.traces.open.is_some() => Some(&mut self.traces.span_selected),
            View::Traces => Some(&mut self.traces.selected),
            View::Diagnoses => Some(&mut self.diagnosis_selected),
            View::Faults => Some(&mut self.faults.selected),
            View::Playbook => self.playbook.as_mut().map(|p| &mut p.selected),
            _ => None,
        }
    }

    fn move_selection(&mut self, delta: i64) {
        let len = self.list_len();
        if let Some(selected) = self.selected_mut() {
            let last = len.saturating_sub(1) as i64;
            *selected = (*selected as i64 + delta).clamp(0, last.max(0)) as usize;
        }
    }

    /// Applies one action; returns the I/O the shell must do. Pure: no I/O, no clock.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        let mut effects = Vec::new();
        match action {
            Action::NextView => self.view = View::ALL[(self.view.index() + 1) % View::ALL.len()],
            Action::PrevView => {
                self.view = View::ALL[(self.view.index() + View::ALL.len() - 1) % View::ALL.len()];
            }
            Action::Show(view) => self.view = view,
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-10),
            Action::PageDown => self.move_selection(10),
            Action::Top => self.move_selection(i64::MIN / 2),
            Action::Bottom => self.move_selection(i64::MAX / 2),
            Action::Enter => effects.extend(self.enter()),
            Action::Back => self.back(),
            Action::Quit => {
                self.quit = true;
                effects.push(Effect::Quit);
            }
            Action::Help => {
                self.mode = if self.mode == Mode::Help {
                    Mode::Normal
                } else {
                    Mode::Help
                };
            }
            Action::StartFilter => {
                self.view = View::Traces;
                self.traces.open = None;
                self.mode = Mode::Filter;
            }
            Action::StartCommand => self.mode = Mode::Command(String::new()),
            Action::Type(c) => match &mut self.mode {
                Mode::Filter => {
                    self.traces.filter.push(c);
                    self.traces.selected = 0;
                }
                Mode::Command(line) => line.push(c),
                _ => {}
            },
            Action::Erase => match &mut self.mode {
                Mode::Filter => {
                    self.traces.filter.pop();
                    self.traces.selected = 0;
                }
                Mode::Command(line) => {
                    line.pop();
                }
                _ => {}
            },
            Action::Submit => match std::mem::take(&mut self.mode) {
                Mode::Command(line) => effects.extend(self.command(&line)),
                Mode::Confirm(effect) => effects.push(effect),
                _ => {}
            },
            Action::TogglePause => effects.extend(self.toggle_pause()),
            Action::Step(seconds) => {
                let now = self.now_ns();
                let earliest = self.store.earliest_ns().unwrap_or(now);
                let target = if seconds < 0 {
                    now.saturating_sub(seconds.unsigned_abs() * 1_000_000_000)
                        .max(earliest)
                } else {
                    now.saturating_add(seconds as u64 * 1_000_000_000)
                };
                self.cursor = if target >= self.latest_ns() {
                    Cursor::Live
                } else {
                    Cursor::At(target)
                };
            }
            Action::Live => self.cursor = Cursor::Live,
            Action::Faster | Action::Slower => {
                if let Some(replay) = &self.replay {
                    let speed = replay.speed.round().max(1.0) as u32;
                    let speed = if matches!(action, Action::Faster) {
                        (speed * 2).min(64)
                    } else {
                        (speed / 2).max(1)
                    };
                    effects.push(Effect::ReplaySpeed(speed));
                }
            }
            Action::Heal => {
                if let Some(item) = self.faults.items.get(self.faults.selected)
                    && self.faults.active.iter().any(|(id, _)| *id == item.id)
                {
                    self.mode = Mode::Confirm(Effect::Heal(item.id.clone()));
                }
            }
            Action::HealAll => {
                if !self.faults.active.is_empty() {
                    self.mode = Mode::Confirm(Effect::HealAll);
                }
            }
            Action::Confirm(yes) => {
                if let Mode::Confirm(effect) = std::mem::take(&mut self.mode)
                    && yes
                {
                    match &effect {
                        Effect::Inject(id) | Effect::Heal(id) => {
                            self.faults.pending.insert(id.clone());
                        }
                        Effect::Remedy { .. } => {
                            if let Some(pane) = &mut self.playbook {
                                pane.remedy_pending = true;
                            }
                        }
                        _ => {}
                    }
                    effects.push(effect);
                }
            }
            Action::Spans(spans) => {
                for span in &spans {
                    self.signals.observe(span);
                    self.topology.observe(span);
                }
                self.store.push(spans);
            }
            Action::Cluster(snapshot) => {
                let second = i64::try_from(snapshot.at_ns / 1_000_000_000).unwrap_or(i64::MAX);
                self.signals
                    .observe_cluster(second, snapshot.dlq_depth(), snapshot.max_lag_s());
                if self.starting && snapshot.leader().is_some() {
                    self.starting = false;
                    self.analysis_floor_ns = snapshot.at_ns;
                }
                self.cluster.push_back(snapshot);
                while self.cluster.len() > HISTORY {
                    self.cluster.pop_front();
                }
                self.tick_playbook();
            }
            Action::Analysis {
                at_ns,
                report,
                calls,
            } => {
                if report.diagnoses.is_empty() && self.last_quiet_ns.is_none_or(|q| q < at_ns) {
                    self.last_quiet_ns = Some(at_ns);
                }
                self.call_graphs.push_back((at_ns, calls));
                while self.call_graphs.len() > HISTORY {
                    self.call_graphs.pop_front();
                }
                // Levels follow the thresholds the analysis used (demo or production).
                self.profile = levels_for(report.profile);
                self.analyses.push_back((at_ns, report));
                while self.analyses.len() > HISTORY {
                    self.analyses.pop_front();
                }
                self.tick_playbook();
            }
            Action::Replay(state) => self.replay = Some(state),
            Action::Faults(items) => {
                self.faults.available = !items.is_empty();
                self.faults.items = items;
            }
            Action::Injected { id, result } => {
                self.faults.pending.remove(&id);
                match result {
                    Ok(label) => {
                        self.message(format!("injected {id}: {label}"));
                        self.faults.active.push((id, label));
                    }
                    Err(why) => self.message(format!("could not inject {id}: {why}")),
                }
            }
            Action::Healed { id, result } => {
                self.faults.pending.remove(&id);
                match result {
                    Ok(label) if id.is_empty() => {
                        self.faults.active.clear();
                        self.message(format!("healed everything {label}"));
                    }
                    Ok(_) => {
                        self.faults.active.retain(|(a, _)| *a != id);
                        self.message(format!("healed {id}"));
                    }
                    Err(why) => self.message(format!("could not heal {id}: {why}")),
                }
            }
            Action::Message(text) => self.message(text),
            Action::AnalysisFailed(why) => self.message(format!("the analysis failed: {why}")),
            Action::OpenPlaybook => self.open_selected_playbook(),
            Action::AcceptResult => self.accept_result(),
            Action::SkipRemedy => self.skip_remedy(),
            Action::WriteTranscript => effects.extend(self.write_transcript()),
            Action::Remedied {
                action,
                target,
                result,
            } => self.remedied(action, target, result),
            Action::TranscriptWritten(result) => {
                match &result {
                    Ok(path) => self.message(format!("transcript written to {path}")),
                    Err(why) => self.message(format!("could not write the transcript: {why}")),
                }
                if let Some(pane) = &mut self.playbook {
                    pane.transcript = Some(result);
                }
            }
        }
        effects
    }

    /// Judges the playbook's current step against the newest analysis and cluster
    /// poll (the run follows the data as it arrives, whatever the time cursor shows).
    fn tick_playbook(&mut self) {
        let Some(pane) = &mut self.playbook else {
            return;
        };
        let Some((at_ns, report)) = self.analyses.iter().max_by_key(|(at, _)| *at) else {
            return;
        };
        let end_ns = report
            .end_ns
            .unwrap_or_else(|| i64::try_from(*at_ns).unwrap_or(i64::MAX));
        let observation = Observation {
            report,
            recent_from_ns: end_ns.saturating_sub(RECENT_NS),
            status: self.cluster.back(),
        };
        pane.observe(&observation, *at_ns);
    }

    /// Starts playbook `name` from its first step, in the playbook view.
    fn open_playbook(&mut self, name: &str) {
        let playbook = match &self.library {
            Ok(library) => match library.get(name) {
                Some(playbook) => playbook.clone(),
                None => {
                    let names = library.names().join(", ");
                    self.message(format!("no playbook {name:?}; there are: {names}"));
                    return;
                }
            },
            Err(why) => {
                self.message(format!("the playbooks did not load: {why}"));
                return;
            }
        };
        let restarted = self
            .playbook
            .as_ref()
            .is_some_and(|p| p.playbook().name == playbook.name);
        self.message(format!(
            "playbook {}: {}{}",
            playbook.name,
            playbook.title,
            if restarted { " (restarted)" } else { "" }
        ));
        // Started at the moment shown (live: the newest data).
        self.playbook = Some(PlaybookPane::new(playbook, self.now_ns()));
        self.view = View::Playbook;
        self.tick_playbook();
    }

    /// `p` in the diagnoses view.
    fn open_selected_playbook(&mut self) {
        if self.view != View::Diagnoses {
            return;
        }
        let kind = self.analysis_now().and_then(|report| {
            let last = report.diagnoses.len().checked_sub(1)?;
            report
                .diagnoses
                .get(self.diagnosis_selected.min(last))
                .map(|d| d.kind)
        });
        let Some(kind) = kind else {
            self.message("no diagnosis selected: nothing to open a playbook for".to_owned());
            return;
        };
        let name = match &self.library {
            Ok(library) => library.for_incident(kind).map(|p| p.name.clone()),
            Err(_) => Some(kind.playbook().to_owned()),
        };
        match name {
            Some(name) => self.open_playbook(&name),
            None => self.message(format!("no playbook handles {}", kind.as_str())),
        }
    }

    /// `n`: the waiting step's latest result is final; the run goes on with the newest
    /// data.
    fn accept_result(&mut self) {
        let Some(pane) = &mut self.playbook else {
            return;
        };
        if pane.accept() {
            self.tick_playbook();
        } else {
            self.message("no result is waiting to be taken".to_owned());
        }
    }

    /// `s`: the remedy due is declined.
    fn skip_remedy(&mut self) {
        let at = self.latest_ns();
        let Some(pane) = &mut self.playbook else {
            return;
        };
        let Some((_, action, _, _)) = pane.remedy_due() else {
            self.message("no remedy is due".to_owned());
            return;
        };
        if pane.remedy_pending {
            self.message("the remedy is being applied: wait for the cluster's answer".to_owned());
            return;
        }
        pane.remedied(RemedyOutcome::Declined, at);
        self.message(format!("remedy {action} declined"));
        self.tick_playbook();
    }

    /// Enter in the playbook view: ask before applying the remedy due (on its step, or
    /// on a step with nothing to open); on a done check, open its first evidence trace.
    fn playbook_enter(&mut self) {
        let at = self.latest_ns();
        let Some(pane) = &self.playbook else {
            self.message("no playbook running: `p` in the diagnoses view opens one".to_owned());
            return;
        };
        let due = pane.remedy_due();
        let on_remedy = due
            .as_ref()
            .is_some_and(|(step, ..)| *step == pane.selected);
        let evidence = pane
            .checked(pane.selected)
            .and_then(|(result, _)| result.evidence.first().copied());
        let pending = pane.remedy_pending;
        // On the remedy's own step the remedy comes first; elsewhere, evidence to open.
        let remedy = due.filter(|_| on_remedy || evidence.is_none());
        match (remedy, evidence) {
            (Some((_, action, target, _)), _) => {
                if pending {
                    self.message(
                        "the remedy is being applied: wait for the cluster's answer".to_owned(),
                    );
                } else if self.control {
                    self.mode = Mode::Confirm(Effect::Remedy { action, target });
                } else {
                    let what = match &self.source {
                        SourceKind::Replay(_) => "this session replays a capture",
                        _ => "this session only receives telemetry",
                    };
                    let outcome = RemedyOutcome::Skipped(format!(
                        "no cluster attached: {what}; `faultline demo` runs remedies"
                    ));
                    if let Some(pane) = &mut self.playbook {
                        pane.remedied(outcome, at);
                    }
                    self.message(format!("remedy {action} not run: no cluster attached"));
                    self.tick_playbook();
                }
            }
            (None, Some(id)) if self.store.trace(&id).is_some() => {
                self.view = View::Traces;
                self.traces.open = Some(id);
                self.traces.span_selected = 0;
            }
            (None, Some(_)) => self.message("its evidence trace is no longer held".to_owned()),
            (None, None) => self.message("nothing to open on this step".to_owned()),
        }
    }

    /// A remedy's result from the cluster: recorded if the run still waits for it.
    fn remedied(
        &mut self,
        action: faultline_playbooks::Action,
        target: Option<String>,
        result: Result<String, String>,
    ) {
        let at = self.latest_ns();
        let on = target.map(|t| format!(" on {t}")).unwrap_or_default();
        match &result {
            Ok(done) => self.message(format!("remedy {action}{on} applied: {done}")),
            Err(why) => self.message(format!("remedy {action}{on} FAILED: {why}")),
        }
        let Some(pane) = &mut self.playbook else {
            return;
        };
        let awaited = pane.remedy_pending
            && pane
                .remedy_due()
                .is_some_and(|(_, due, _, _)| due == action);
        if !awaited {
            // The run it was for was restarted meanwhile; the message says what happened.
            return;
        }
        let outcome = match result {
            Ok(done) => RemedyOutcome::Applied(done),
            Err(why) => RemedyOutcome::Failed(why),
        };
        pane.remedied(outcome, at);
        self.tick_playbook();
    }

    /// `w`: the run's Markdown transcript, for the shell to write. Its times are data
    /// times (live, the moments things happened; replayed, the capture's).
    fn write_transcript(&mut self) -> Vec<Effect> {
        let Some(pane) = &self.playbook else {
            self.message("no playbook running: nothing to write".to_owned());
            return Vec::new();
        };
        let source = match &self.source {
            SourceKind::Demo => "live demo cluster".to_owned(),
            SourceKind::Otlp(addr) => format!("OTLP received on {addr}"),
            SourceKind::Replay(path) => format!("capture `{path}`, replayed"),
        };
        let info = RunInfo {
            source,
            started_ns: i64::try_from(pane.started_ns).unwrap_or(i64::MAX),
            ended_ns: i64::try_from(self.latest_ns()).unwrap_or(i64::MAX),
            live: self.control,
        };
        vec![Effect::Transcript {
            name: pane.playbook().name.clone(),
            markdown: transcript::markdown(&pane.run, &info),
        }]
    }

    fn toggle_pause(&mut self) -> Vec<Effect> {
        let pause = self.is_live();
        self.cursor = if pause {
            Cursor::At(self.latest_ns())
        } else {
            Cursor::Live
        };
        match &self.replay {
            Some(replay) if !replay.finished => vec![Effect::ReplayPause(pause)],
            _ => Vec::new(),
        }
    }

    fn enter(&mut self) -> Vec<Effect> {
        match self.view {
            View::Traces if self.traces.open.is_none() => {
                let id = self
                    .visible_traces()
                    .get(self.traces.selected)
                    .map(|t| t.trace_id);
                if let Some(id) = id {
                    self.traces.open = Some(id);
                    self.traces.span_selected = 0;
                }
            }
            View::Diagnoses => {
                // The selected diagnosis's first evidence trace, opened in the waterfall.
                let trace = self.analysis_now().and_then(|report| {
                    let diagnosis = report.diagnoses.get(self.diagnosis_selected)?;
                    diagnosis.evidence.first().copied()
                });
                match trace {
                    Some(id) if self.store.trace(&id).is_some() => {
                        self.view = View::Traces;
                        self.traces.open = Some(id);
                        self.traces.span_selected = 0;
                    }
                    Some(_) => self.message("its evidence trace is no longer held".to_owned()),
                    None => self.message("this diagnosis names no trace".to_owned()),
                }
            }
            View::Faults => {
                if !self.faults.available {
                    self.message("faults need a cluster: run `faultline demo`".to_owned());
                } else if let Some(item) = self.faults.items.get(self.faults.selected) {
                    self.mode = Mode::Confirm(Effect::Inject(item.id.clone()));
                }
            }
            View::Playbook => self.playbook_enter(),
            _ => {}
        }
        Vec::new()
    }

    fn back(&mut self) {
        if self.mode != Mode::Normal {
            self.mode = Mode::Normal;
        } else if self.view == View::Traces && self.traces.open.is_some() {
            self.traces.open = None;
        } else if self.view == View::Traces && !self.traces.filter.is_empty() {
            self.traces.filter.clear();
            self.traces.selected = 0;
        } else if !self.is_live() {
            self.cursor = Cursor::Live;
        }
    }

    /// `:` commands: a view's name, `q`/`quit`, `live`, `inject NAME`, `heal [NAME]`,
    /// `speed N`, `filter TEXT`, `playbook [NAME]`.
    fn command(&mut self, line: &str) -> Vec<Effect> {
        let mut words = line.split_whitespace();
        let Some(head) = words.next() else {
            return Vec::new();
        };
        let rest: Vec<&str> = words.collect();
        match (head, rest.as_slice()) {
            ("q" | "quit", []) => return self.update(Action::Quit),
            ("live", []) => self.cursor = Cursor::Live,
            ("help", []) => self.mode = Mode::Help,
            ("inject", [name]) => {
                if self.faults.items.iter().any(|f| f.id == *name) {
                    self.faults.pending.insert((*name).to_owned());
                    return vec![Effect::Inject((*name).to_owned())];
                }
                self.message(format!("no fault {name:?} (the faults view lists them)"));
            }
            ("heal", []) => return vec![Effect::HealAll],
            ("heal", [name]) => return vec![Effect::Heal((*name).to_owned())],
            ("speed", [n]) => match n.trim_end_matches('x').parse::<u32>() {
                Ok(speed) if (1..=64).contains(&speed) && self.replay.is_some() => {
                    return vec![Effect::ReplaySpeed(speed)];
                }
                _ => self.message("speed: 1 to 64, while replaying a capture".to_owned()),
            },
            ("playbook", [name]) => self.open_playbook(name),
            ("filter", words) => {
                self.view = View::Traces;
                self.traces.open = None;
                self.traces.filter = words.join(" ");
                self.traces.selected = 0;
            }
            (name, []) if View::parse(name).is_some() => {
                if let Some(view) = View::parse(name) {
                    self.view = view;
                }
            }
            _ => self.message(format!("unknown command :{line} (? lists them)")),
        }
        Vec::new()
    }
}

/// The traces filter: whitespace-separated terms, all of which must match. `error`
/// (or `err`) keeps traces with an error; `svc:NAME` (or `service:NAME`) a service;
/// a hex string a trace id prefix; anything else a correlation id, service or root
/// operation containing it.
#[derive(Debug, Default)]
pub struct Filter {
    terms: Vec<Term>,
}

#[derive(Debug)]
enum Term {
    Error,
    Service(String),
    Text(String),
}

impl Filter {
    pub fn parse(text: &str) -> Filter {
        let terms = text
            .split_whitespace()
            .map(|word| {
                let lower = word.to_lowercase();
                if lower == "error" || lower == "err" {
                    Term::Error
                } else if let Some(name) = lower
                    .strip_prefix("svc:")
                    .or_else(|| lower.strip_prefix("service:"))
                {
                    Term::Service(name.to_owned())
                } else {
                    Term::Text(lower)
                }
            })
            .collect();
        Filter { terms }
    }

    pub fn matches(&self, trace: &TraceSummary) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Error => trace.errors > 0,
            Term::Service(name) => trace.services.iter().any(|s| s.eq_ignore_ascii_case(name)),
            Term::Text(text) => {
                hex_prefix(&trace.trace_id, text)
                    || trace
                        .correlation_id
                        .as_deref()
                        .is_some_and(|c| contains_ignore_case(c, text))
                    || trace.services.iter().any(|s| contains_ignore_case(s, text))
                    || trace
                        .root
                        .as_ref()
                        .is_some_and(|(_, name)| contains_ignore_case(name, text))
            }
        })
    }
}

/// Whether `id` in lower-case hex starts with `prefix`, without formatting it (the
/// filter runs over every trace held on each frame).
fn hex_prefix(id: &TraceId, prefix: &str) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if prefix.len() > 32 {
        return false;
    }
    prefix.bytes().enumerate().all(|(i, c)| {
        let byte = id.0[i / 2];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0xf };
        HEX[usize::from(nibble)] == c
    })
}

/// Whether `haystack` contains `needle` (already lower-case), ignoring ASCII case,
/// without allocating.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    // Most of what is searched (ids, service names) is lower-case already: std's
    // substring search answers those, and only text with capitals is compared byte
    // by byte.
    if haystack.contains(needle) {
        return true;
    }
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    h.iter().any(u8::is_ascii_uppercase) && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Depth-first order from the roots (spans whose parent is absent), children by start.
pub fn waterfall(mut spans: Vec<&Span>) -> Vec<(usize, &Span)> {
    spans.sort_by_key(|s| (s.start_ns, s.end_ns));
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id).collect();
    let mut out = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, &Span)> = spans
        .iter()
        .rev()
        .filter(|s| s.parent_span_id.is_none_or(|p| !ids.contains(&p)))
        .map(|s| (0, *s))
        .collect();
    let mut seen = std::collections::HashSet::new();
    while let Some((depth, span)) = stack.pop() {
        if !seen.insert(span.span_id) {
            continue; // a duplicate id or a cycle: shown once
        }
        out.push((depth, span));
        stack.extend(
            spans
                .iter()
                .rev()
                .filter(|c| c.parent_span_id == Some(span.span_id))
                .map(|c| (depth + 1, *c)),
        );
    }
    // Spans caught in a cycle with no root are still shown.
    for span in spans {
        if !seen.contains(&span.span_id) {
            seen.insert(span.span_id);
            out.push((0, span));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc as StdArc;

    use faultline_model::{Resource, SpanId};

    use super::*;

    fn span(trace: u8, id: u8, parent: Option<u8>, start_s: u64, error: bool) -> Span {
        let mut span = Span::new(TraceId([trace; 16]), SpanId([id; 8]), format!("op{id}"));
        span.parent_span_id = parent.map(|p| SpanId([p; 8]));
        span.resource = StdArc::new(Resource::with_service(if id == 1 { "api" } else { "db" }));
        span.start_ns = start_s * 1_000_000_000;
        span.end_ns = span.start_ns + 500_000_000;
        if error {
            span.status.code = faultline_model::StatusCode::Error;
        }
        span
    }

    fn app() -> App {
        let mut app = App::new(SourceKind::Otlp("test".to_owned()), Profile::Demo, 1000);
        app.update(Action::Spans(vec![
            span(1, 1, None, 100, false),
            span(1, 2, Some(1), 100, false),
            span(2, 1, None, 110, false),
            span(2, 2, Some(1), 110, true),
            span(3, 1, None, 120, false),
        ]));
        app
    }

    #[test]
    fn pausing_and_stepping_move_the_time_shown_and_past_the_end_is_live() {
        let mut app = app();
        assert_eq!(app.now_ns(), 120_500_000_000);
        app.update(Action::TogglePause);
        assert_eq!(app.cursor, Cursor::At(120_500_000_000));
        app.update(Action::Step(-10));
        assert_eq!(app.now_ns(), 110_500_000_000);
        // Traces started after the cursor are not listed yet.
        assert_eq!(app.visible_traces().len(), 2);
        app.update(Action::Step(-1000));
        assert_eq!(
            app.now_ns(),
            100_000_000_000,
            "not before the earliest span"
        );
        app.update(Action::Step(60));
        assert!(app.is_live());
        app.update(Action::TogglePause);
        app.update(Action::Back);
        assert!(app.is_live(), "Esc returns to live");
    }

    #[test]
    fn the_filter_narrows_the_list_and_esc_clears_it() {
        let mut app = app();
        app.update(Action::StartFilter);
        assert_eq!(app.view, View::Traces);
        for c in "error".chars() {
            app.update(Action::Type(c));
        }
        let shown: Vec<TraceId> = app.visible_traces().iter().map(|t| t.trace_id).collect();
        assert_eq!(shown, [TraceId([2; 16])]);
        app.update(Action::Submit);
        assert_eq!(app.mode, Mode::Normal);
        app.update(Action::Back);
        assert!(app.traces.filter.is_empty());
        assert_eq!(app.visible_traces().len(), 3);
        // A trace id prefix; then a service.
        app.traces.filter = "0303".to_owned();
        assert_eq!(app.visible_traces().len(), 1);
        app.traces.filter = "svc:DB".to_owned();
        assert_eq!(app.visible_traces().len(), 2);
    }

    #[test]
    fn enter_opens_the_selected_trace_as_a_waterfall_and_esc_closes_it() {
        let mut app = app();
        app.update(Action::Show(View::Traces));
        app.update(Action::Down);
        app.update(Action::Enter);
        assert_eq!(
            app.traces.open,
            Some(TraceId([2; 16])),
            "newest first: row 1 is trace 2"
        );
        let rows: Vec<(usize, u8)> = app
            .waterfall()
            .iter()
            .map(|(d, s)| (*d, s.span_id.0[0]))
            .collect();
        assert_eq!(rows, [(0, 1), (1, 2)]);
        app.update(Action::Bottom);
        assert_eq!(app.traces.span_selected, 1);
        app.update(Action::Back);
        assert_eq!(app.traces.open, None);
    }

    #[test]
    fn injecting_asks_first_then_tracks_the_fault_until_healed() {
        let mut app = app();
        let item = FaultItem {
            id: "leader-crash".to_owned(),
            title: "leader-crash".to_owned(),
            description: "kill the leader".to_owned(),
            expect: None,
        };
        app.update(Action::Show(View::Faults));
        assert!(app.update(Action::Enter).is_empty());
        assert_eq!(app.mode, Mode::Normal, "no cluster, no confirmation");
        app.update(Action::Faults(vec![item]));
        assert!(app.update(Action::Enter).is_empty());
        assert_eq!(
            app.mode,
            Mode::Confirm(Effect::Inject("leader-crash".to_owned()))
        );
        assert!(app.update(Action::Confirm(false)).is_empty());
        app.update(Action::Enter);
        let effects = app.update(Action::Confirm(true));
        assert_eq!(effects, [Effect::Inject("leader-crash".to_owned())]);
        assert!(app.faults.pending.contains("leader-crash"));
        app.update(Action::Injected {
            id: "leader-crash".to_owned(),
            result: Ok("node_crash at node-1".to_owned()),
        });
        assert!(app.faults.pending.is_empty());
        assert_eq!(app.faults.active.len(), 1);
        app.update(Action::Heal);
        assert_eq!(
            app.update(Action::Confirm(true)),
            [Effect::Heal("leader-crash".to_owned())]
        );
        app.update(Action::Healed {
            id: String::new(),
            result: Ok(String::new()),
        });
        assert!(app.faults.active.is_empty());
    }

    #[test]
    fn commands_switch_views_inject_and_report_what_they_do_not_know() {
        let mut app = app();
        app.update(Action::StartCommand);
        for c in "diag".chars() {
            app.update(Action::Type(c));
        }
        app.update(Action::Submit);
        assert_eq!(app.view, View::Diagnoses);
        app.update(Action::StartCommand);
        for c in "inject nope".chars() {
            app.update(Action::Type(c));
        }
        assert!(app.update(Action::Submit).is_empty());
        assert!(app.messages.back().unwrap().1.contains("no fault"));
        app.update(Action::StartCommand);
        app.update(Action::Type('q'));
        assert_eq!(app.update(Action::Submit), [Effect::Quit]);
        assert!(app.quit);
    }

    #[test]
    fn the_demo_warns_before_injecting_until_it_has_a_baseline() {
        let mut app = app();
        assert_eq!(
            app.baseline_short_s(),
            None,
            "only the demo's cluster is ours to break"
        );
        app.source = SourceKind::Demo;
        app.starting = true;
        assert_eq!(app.baseline_short_s(), Some(0));
        app.starting = false;
        app.analysis_floor_ns = 117_000_000_000;
        assert_eq!(
            app.baseline_short_s(),
            Some(3),
            "120.5 s − 117 s of healthy traffic"
        );
        app.analysis_floor_ns = 100_000_000_000;
        assert_eq!(app.baseline_short_s(), None);
        app.analysis_floor_ns = 117_000_000_000;
        app.update(Action::Faults(vec![FaultItem {
            id: "leader-crash".to_owned(),
            title: "leader-crash".to_owned(),
            description: "kill the leader".to_owned(),
            expect: None,
        }]));
        app.update(Action::Show(View::Faults));
        app.update(Action::Enter);
        let screen = crate::ui::drawn(&app, 80, 24);
        assert!(screen.contains("Only 3 s of healthy traffic"), "{screen}");
    }

    #[test]
    fn text_matches_ignore_case_and_trace_ids_match_by_prefix() {
        assert!(contains_ignore_case("GET /orders/{id}", "get /ord"));
        assert!(contains_ignore_case("payments", "men"));
        assert!(!contains_ignore_case("payments", "gateway"));
        assert!(contains_ignore_case("", ""));
        assert!(!contains_ignore_case("", "x"));
        let id = TraceId([0xab; 16]);
        assert!(hex_prefix(&id, "abab"));
        assert!(!hex_prefix(&id, "abb"));
        assert!(!hex_prefix(&id, &"a".repeat(33)));
    }

    #[test]
    fn the_waterfall_survives_cycles_and_missing_parents() {
        let mut a = span(9, 1, Some(2), 0, false);
        let mut b = span(9, 2, Some(1), 0, false);
        a.start_ns = 5;
        b.start_ns = 6;
        let orphan = span(9, 3, Some(7), 1, false);
        let rows = waterfall(vec![&a, &b, &orphan]);
        assert_eq!(rows.len(), 3, "every span shown once");
    }
}
