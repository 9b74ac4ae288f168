//! The shell: the terminal, the one `select!` loop, and the effects `update` asks for.
//!
//! ```text
//!  loop select! (biased: keys first)
//!    ├─ crossterm EventStream ─► keys::action ─► App::update ─► draw now (input-to-frame)
//!    ├─ Inputs channel (sources, analyses, fault results) ─► App::update (drained in a batch)
//!    └─ tick (every 100 ms) ─► analysis due? spawn_blocking ─► draw if anything changed
//!  effects: Inject/Heal ─► Control (spawned task) ─► Action::Injected/Healed
//!           Remedy ─► Control::remedy (spawned task) ─► Action::Remedied
//!           Transcript ─► blocking pool: DIR/NAME-<UTC time>.md ─► Action::TranscriptWritten
//!           ReplayPause/Speed ─► the replay's watch channel · Quit ─► restore the terminal
//! ```
//!
//! The terminal is restored on every exit path: the normal one, an error, and a panic
//! (a hook restores it before the panic message prints); and when the terminal is
//! gone (SIGHUP), leaving never panics, so the caller can still clean up.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{Event, EventStream};
use faultline_analyzers::Thresholds;
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::{mpsc, watch};

use crate::analysis;
use crate::app::{Action, App, Effect, FaultItem};
use crate::source::{Inputs, ReplayControl};

/// A future a [`Control`] returns: `Ok(label)` or `Err(why)`.
pub type Outcome = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// What the faults view and the playbook pane act on: the demo cluster (the binary
/// implements it with the cluster crate, which the TUI does not depend on).
pub trait Control: Send + Sync + 'static {
    fn inject(self: Arc<Self>, id: String) -> Outcome;
    fn heal(self: Arc<Self>, id: String) -> Outcome;
    /// Heals everything in effect; `Ok` lists what was healed.
    fn heal_all(self: Arc<Self>) -> Outcome;
    /// Carries out a playbook's remedy; `Ok` says what was done.
    fn remedy(
        self: Arc<Self>,
        action: faultline_playbooks::Action,
        target: Option<String>,
    ) -> Outcome;
}

impl Analysis {
    fn finished(&mut self) {
        self.in_flight = false;
        if let Some(started) = self.last {
            self.took = started.elapsed();
        }
    }

    /// The time between analyses' starts: every [`ANALYSIS_EVERY`], or twice as long
    /// as the last one took, so that analysing never takes more than half a core
    /// from the processes being watched (the demo cluster runs on the same machine).
    fn pause(&self) -> Duration {
        ANALYSIS_EVERY.max(self.took * 2)
    }
}

/// How often analyses run at most (wall time), and the redraw tick.
const ANALYSIS_EVERY: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(100);
/// Actions applied per loop turn at most before drawing (keys stay responsive).
const BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// A TUI session: the app, its inputs, and what its effects act on.
pub struct Tui {
    pub app: App,
    inputs: Inputs,
    rx: mpsc::Receiver<Action>,
    control: Option<Arc<dyn Control>>,
    replay: Option<watch::Sender<ReplayControl>>,
    /// Fixed thresholds, or `None` to pick them per analysis from the data.
    thresholds: Option<Thresholds>,
    /// Where playbook transcripts are written.
    transcripts: PathBuf,
}

impl std::fmt::Debug for Tui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tui")
            .field("control", &self.control.is_some())
            .field("replay", &self.replay.is_some())
            .finish_non_exhaustive()
    }
}

impl Tui {
    pub fn new(app: App) -> Tui {
        let (inputs, rx) = Inputs::channel();
        Tui {
            app,
            inputs,
            rx,
            control: None,
            replay: None,
            thresholds: None,
            transcripts: PathBuf::from("."),
        }
    }

    /// Where sources send their actions.
    pub fn inputs(&self) -> Inputs {
        self.inputs.clone()
    }

    pub fn set_control(&mut self, control: Arc<dyn Control>, faults: Vec<FaultItem>) {
        self.control = Some(control);
        self.app.control = true;
        self.app.update(Action::Faults(faults));
    }

    /// A handle that becomes the fault control later (the cluster is still starting).
    pub fn set_control_later(&mut self, control: Arc<dyn Control>) {
        self.control = Some(control);
        self.app.control = true;
    }

    /// Where `w` in the playbook view writes transcripts (default: the current
    /// directory); created when first written to.
    pub fn set_transcripts(&mut self, dir: PathBuf) {
        self.transcripts = dir;
    }

    pub fn set_replay(&mut self, steer: watch::Sender<ReplayControl>) {
        self.replay = Some(steer);
    }

    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = Some(thresholds);
    }

    /// Takes over the terminal until the user quits; restores it on every path.
    ///
    /// Nothing on the way out may panic when the terminal is already gone (SIGHUP:
    /// every write fails): the caller still has a cluster to stop. So the panic hook
    /// restores with `try_restore` (ratatui's own hook prints failures with
    /// `eprintln!`, which panics inside the hook and aborts), and the terminal's drop
    /// (which `eprintln!`s a cursor it could not show) is skipped when that failed.
    pub async fn run(self) -> Result<App, TuiError> {
        let default_hook = std::panic::take_hook();
        let mut terminal = ratatui::try_init()?;
        std::panic::set_hook(Box::new(move |info| {
            let _ = ratatui::try_restore();
            default_hook(info);
        }));
        let result = self.run_in(&mut terminal).await;
        let gone = terminal.show_cursor().is_err();
        let _ = ratatui::try_restore();
        if gone {
            std::mem::forget(terminal);
        }
        result
    }

    async fn run_in(mut self, terminal: &mut DefaultTerminal) -> Result<App, TuiError> {
        let mut events = EventStream::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut analysis = Analysis::default();
        let mut dirty = true;
        terminal.draw(|frame| frame.render_widget(&self.app, frame.area()))?;
        loop {
            let mut draw_now = false;
            tokio::select! {
                biased;
                event = events.next() => match event {
                    Some(Ok(Event::Key(key))) => {
                        if let Some(action) = crate::keys::action(&self.app.mode, self.app.view, key) {
                            let effects = self.app.update(action);
                            self.apply(effects);
                        }
                        draw_now = true;
                    }
                    // The views lay themselves out per frame: a resize only redraws.
                    Some(Ok(Event::Resize(_, _))) => draw_now = true,
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(TuiError::Terminal(error)),
                    None => break,
                },
                Some(action) = self.rx.recv() => {
                    if matches!(action, Action::Analysis { .. } | Action::AnalysisFailed(_)) {
                        analysis.finished();
                    }
                    self.app.update(action);
                    for _ in 0..BATCH {
                        match self.rx.try_recv() {
                            Ok(action) => {
                                if matches!(action, Action::Analysis { .. } | Action::AnalysisFailed(_)) {
                                    analysis.finished();
                                }
                                self.app.update(action);
                            }
                            Err(_) => break,
                        }
                    }
                    dirty = true;
                }
                _ = tick.tick() => {
                    self.schedule_analysis(&mut analysis);
                    draw_now = dirty;
                }
            }
            if self.app.quit {
                break;
            }
            if draw_now {
                terminal.draw(|frame| frame.render_widget(&self.app, frame.area()))?;
                dirty = false;
            }
        }
        Ok(self.app)
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Quit => {}
                Effect::Inject(_) | Effect::Heal(_) | Effect::HealAll if self.control.is_none() => {
                    self.app.update(Action::Message(
                        "faults need a running demo cluster (`faultline demo`)".to_owned(),
                    ));
                }
                Effect::Inject(id) => self.control_task(id, true),
                Effect::Heal(id) => self.control_task(id, false),
                Effect::HealAll => self.control_task(String::new(), false),
                Effect::ReplayPause(paused) => {
                    if let Some(steer) = &self.replay {
                        steer.send_modify(|c| c.paused = paused);
                    }
                }
                Effect::ReplaySpeed(speed) => {
                    if let Some(steer) = &self.replay {
                        steer.send_modify(|c| c.speed = f64::from(speed));
                    }
                }
                Effect::Remedy { action, target } => self.remedy_task(action, target),
                Effect::Transcript { name, markdown } => self.transcript_task(name, markdown),
            }
        }
    }

    fn remedy_task(&mut self, action: faultline_playbooks::Action, target: Option<String>) {
        let Some(control) = self.control.clone() else {
            // The app records remedies as not run when no control is attached; this is
            // only reached if that changed under it.
            self.app.update(Action::Remedied {
                action,
                target,
                result: Err("no cluster attached".to_owned()),
            });
            return;
        };
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let result = control.remedy(action, target.clone()).await;
            inputs
                .send(Action::Remedied {
                    action,
                    target,
                    result,
                })
                .await;
        });
    }

    /// Writes a transcript on the blocking pool, named by the wall clock (the shell may
    /// read it; the app may not).
    fn transcript_task(&self, name: String, markdown: String) {
        let dir = self.transcripts.clone();
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let written =
                tokio::task::spawn_blocking(move || write_transcript(&dir, &name, &markdown))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
            inputs.send(Action::TranscriptWritten(written)).await;
        });
    }

    fn control_task(&self, id: String, inject: bool) {
        let Some(control) = self.control.clone() else {
            return;
        };
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let action = if inject {
                let result = control.inject(id.clone()).await;
                Action::Injected { id, result }
            } else if id.is_empty() {
                let result = control.heal_all().await;
                // An empty id: everything was healed.
                Action::Healed {
                    id: String::new(),
                    result,
                }
            } else {
                let result = control.heal(id.clone()).await;
                Action::Healed { id, result }
            };
            inputs.send(action).await;
        });
    }

    /// Starts an analysis on the blocking pool when one is due: live, every
    /// [`ANALYSIS_EVERY`] while new spans arrive; paused, once for the cursor's
    /// moment if no analysis covers it.
    fn schedule_analysis(&mut self, state: &mut Analysis) {
        if state.in_flight || self.app.store.is_empty() {
            return;
        }
        let at = self.app.now_ns();
        let due = if self.app.is_live() {
            state.last.is_none_or(|t| t.elapsed() >= state.pause())
                && state.received != self.app.store.received()
        } else {
            // The analysis shown is the newest at or before the cursor; one from more
            // than a second earlier is out of date for this moment.
            self.app
                .analyses
                .iter()
                .rev()
                .find(|(t, _)| *t <= at)
                .is_none_or(|(t, _)| at - t > 1_000_000_000)
        };
        if !due {
            return;
        }
        state.in_flight = true;
        state.last = Some(Instant::now());
        state.received = self.app.store.received();
        let batches = analysis::batches(&self.app.store);
        let window = self.app.analysis_window(at);
        let thresholds = self.thresholds.clone();
        let inputs = self.inputs.clone();
        tokio::spawn(async move {
            let analysed = tokio::task::spawn_blocking(move || {
                analysis::action(&batches, window, thresholds.as_ref())
            })
            .await;
            let action = match analysed {
                Ok(action) => action,
                Err(error) => Action::AnalysisFailed(error.to_string()),
            };
            inputs.send(action).await;
        });
    }
}

#[derive(Debug, Default)]
struct Analysis {
    in_flight: bool,
    /// How long the last analysis took (wall time).
    took: Duration,
    last: Option<Instant>,
    /// `store.received()` at the last analysis: nothing new, no new analysis.
    received: u64,
}

/// Writes `markdown` to `dir/NAME-<UTC time>.md`; the path written, or why not.
fn write_transcript(dir: &Path, name: &str, markdown: &str) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    // Said in full: "./x.md" does not tell where the TUI was started.
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let path = dir.join(faultline_playbooks::transcript::file_name(name, now));
    std::fs::write(&path, markdown).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn transcripts_are_named_by_playbook_and_utc_time_in_a_directory_made_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("transcripts");
        let path = write_transcript(&target, "retry-storm", "# Playbook run\n").unwrap();
        let file = Path::new(&path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // retry-storm-YYYYMMDDTHHMMSS.md
        let stamp = file
            .strip_prefix("retry-storm-")
            .and_then(|s| s.strip_suffix(".md"))
            .unwrap();
        assert_eq!(stamp.len(), 15, "{file}");
        assert_eq!(&stamp[8..9], "T", "{file}");
        assert!(
            stamp.chars().filter(char::is_ascii_digit).count() == 14,
            "{file}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# Playbook run\n");
        // A file where the directory should be: the error says where.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, "").unwrap();
        let error = write_transcript(&blocked, "x", "").unwrap_err();
        assert!(
            error.contains("creating") && error.contains("file"),
            "{error}"
        );
    }
}
