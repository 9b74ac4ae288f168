//! `faultline playbook list | show NAME | run [NAME] (--file CAPTURE… | --cluster FILE)`.
//!
//! ```text
//!  Library (built-in + --playbooks DIR) ─► list / show
//!  run: Run::next() ─┬─ Check ─► Source::observe ─► evaluate ─► print ─► Run::checked
//!                    ├─ Remedy ─► ask (or --yes) ─► Source::remedy ─► print ─► Run::remedied
//!                    └─ Done ─► verdict ─► Markdown transcript ─► exit 0 | 1
//!  Source::Capture: the capture analysed once; remedies are named, not run.
//!  Source::Live: the cluster's recording (its last minutes, from before the incident's
//!                onset) analysed at each check, /status polled; remedies act on the
//!                cluster (faultline_cluster::remedies); verification waits for them to
//!                settle and re-checks until it passes or its time is up.
//! ```

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use faultline_analyzers::diagnosis::IncidentKind;
use faultline_analyzers::load::{TimeFilter, load};
use faultline_analyzers::report::{Report, analyze, baseline_share_until, profile_for};
use faultline_analyzers::{Profile, Thresholds};
use faultline_cluster::remedies;
use faultline_cluster::supervisor::{Cluster, ClusterFile};
use faultline_model::read::ReadOptions;
use faultline_playbooks::check::RECENT_NS;
use faultline_playbooks::cluster::ClusterSnapshot;
use faultline_playbooks::transcript::{self, RunInfo};
use faultline_playbooks::{
    Action, Entry, Library, Next, Observation, Outcome, Playbook, RemedyOutcome, Run, Verdict,
    evaluate,
};

use crate::fmt::OutputFormat;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum PlaybookCommand {
    /// The playbooks: name, the incidents each handles, title.
    List(ListArgs),
    /// A playbook in full: what the incident is, then each step.
    Show(ShowArgs),
    /// Follow a playbook's steps against a capture or a running demo cluster, and write
    /// a Markdown transcript of what was checked and done.
    Run(RunArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LibraryArg {
    /// A directory of your own playbooks (`NAME.toml`), added to the built-in ones; a
    /// file named like a built-in playbook replaces it.
    #[arg(long, value_name = "DIR", env = "FAULTLINE_PLAYBOOKS")]
    playbooks: Option<PathBuf>,
}

impl LibraryArg {
    pub(crate) fn library(&self) -> anyhow::Result<Library> {
        Ok(match &self.playbooks {
            Some(dir) => Library::with_dir(dir)?,
            None => Library::builtin()?,
        })
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    library: LibraryArg,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The playbook (`faultline playbook list`).
    name: String,
    #[command(flatten)]
    library: LibraryArg,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The playbook; without it, the one of the top diagnosis.
    name: Option<String>,
    /// Capture file(s) to check against (remedies are named, not run).
    #[arg(
        long,
        value_name = "CAPTURE",
        required_unless_present = "cluster",
        conflicts_with = "cluster"
    )]
    file: Vec<PathBuf>,
    /// A running demo cluster's `cluster.json`: checks read its recording and its
    /// nodes' /status; remedies act on it.
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// Apply every remedy without asking.
    #[arg(long)]
    yes: bool,
    /// Where to write the Markdown transcript (default: the cluster's `transcripts/`
    /// directory, or `playbook-NAME-TIME.md` here for a capture).
    #[arg(long, value_name = "FILE")]
    transcript: Option<PathBuf>,
    /// Live: keep re-checking the first step (the confirmation) for up to this long,
    /// for a run started as the incident begins.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    wait: Option<Duration>,
    /// Thresholds: `auto` takes the demo's for captures of the demo cluster.
    #[arg(long, value_enum, default_value_t = ProfileArg::Auto)]
    profile: ProfileArg,
    #[command(flatten)]
    library: LibraryArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProfileArg {
    Auto,
    Demo,
    Production,
}

pub(crate) fn run(command: PlaybookCommand) -> anyhow::Result<ExitCode> {
    match command {
        PlaybookCommand::List(args) => list(&args),
        PlaybookCommand::Show(args) => show(&args),
        PlaybookCommand::Run(args) => run_playbook(args),
    }
}

fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let library = args.library.library()?;
    match args.format {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = library
                .all()
                .map(|(p, origin)| {
                    serde_json::json!({
                        "name": p.name,
                        "title": p.title,
                        "handles": p.handles.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                        "steps": p.steps.len(),
                        "origin": origin,
                    })
                })
                .collect();
            out(&format!("{}\n", serde_json::to_string_pretty(&items)?));
        }
        OutputFormat::Text => {
            let width = library.names().iter().map(|n| n.len()).max().unwrap_or(0);
            let mut text = String::new();
            for (playbook, origin) in library.all() {
                let handles: Vec<&str> = playbook.handles.iter().map(|k| k.as_str()).collect();
                text.push_str(&format!(
                    "{:width$}  {}  ({}; {} steps{})\n",
                    playbook.name,
                    playbook.title,
                    handles.join(", "),
                    playbook.steps.len(),
                    if origin == "built-in" {
                        String::new()
                    } else {
                        format!("; from {origin}")
                    }
                ));
            }
            text.push_str("\nfaultline playbook show NAME · faultline playbook run NAME --file CAPTURE | --cluster FILE\n");
            out(&text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn find<'l>(library: &'l Library, name: &str) -> anyhow::Result<&'l Playbook> {
    library.get(name).with_context(|| {
        format!(
            "no playbook {name:?}; there are: {}",
            library.names().join(", ")
        )
    })
}

fn show(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let library = args.library.library()?;
    let playbook = find(&library, &args.name)?;
    out(&describe(playbook));
    Ok(ExitCode::SUCCESS)
}

/// A playbook as readable text (Markdown).
fn describe(playbook: &Playbook) -> String {
    let mut text = format!("# {} ({})\n\n", playbook.title, playbook.name);
    let handles: Vec<&str> = playbook.handles.iter().map(|k| k.as_str()).collect();
    text.push_str(&format!("Handles: {}\n\n", handles.join(", ")));
    text.push_str(&wrap(&playbook.summary, 88));
    text.push_str("\n\n## Steps\n");
    for (i, step) in playbook.steps.iter().enumerate() {
        let kind = if step.verify {
            " (verification)"
        } else if step.remedy.is_some() {
            " (remedy)"
        } else {
            ""
        };
        text.push_str(&format!(
            "\n### {}. {}{kind}  [{}]\n\n",
            i + 1,
            step.title,
            step.id
        ));
        text.push_str(&format!("Look: {}\n", wrap(&step.look, 88)));
        if let Some(check) = &step.check {
            text.push_str(&format!(
                "Check: {}\n",
                check.describe(&std::collections::BTreeMap::new())
            ));
            text.push_str(&format!("  pass: {}\n", wrap(&step.pass, 88)));
            text.push_str(&format!("  fail: {}\n", wrap(&step.fail, 88)));
            let branch = |b: &faultline_playbooks::Branch| match b {
                faultline_playbooks::Branch::Next => "next step".to_owned(),
                faultline_playbooks::Branch::Stop => "stop".to_owned(),
                faultline_playbooks::Branch::Step(id) => format!("step {id}"),
            };
            if step.on_pass != faultline_playbooks::Branch::Next
                || step.on_fail != faultline_playbooks::Branch::Next
            {
                text.push_str(&format!(
                    "  then: on pass {}, on fail {}\n",
                    branch(&step.on_pass),
                    branch(&step.on_fail)
                ));
            }
        }
        if let Some(remedy) = &step.remedy {
            text.push_str(&format!(
                "Remedy: {}{} (asks first)\n  {}\n",
                remedy.action,
                remedy
                    .target
                    .as_deref()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default(),
                wrap(&remedy.why, 88)
            ));
        }
    }
    text
}

fn wrap(text: &str, width: usize) -> String {
    let mut lines = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
        lines.push(String::new());
    }
    lines.pop();
    lines.join("\n  ").trim_end().to_owned()
}

/// Where checks get their data from, and remedies go.
enum Source {
    Capture { report: Arc<Report> },
    Live(Box<Live>),
}

/// What one observation saw.
struct Observed {
    report: Arc<Report>,
    status: Option<ClusterSnapshot>,
    recent_from_ns: i64,
}

/// Live: the span of recording analysed before an incident is known.
const LIVE_WINDOW_NS: i64 = 120_000_000_000;
/// Live: the healthy time kept before an incident's onset (the baseline).
const LEAD_NS: i64 = 60_000_000_000;
/// Live: left out after the load first started (warm-up).
const STARTUP_NS: i64 = 3_000_000_000;
/// Live: the longest window analysed.
const MAX_WINDOW_NS: i64 = 600_000_000_000;
/// Live: between re-checks of a verification or a confirmation being waited for.
const RECHECK: Duration = Duration::from_secs(5);

struct Live {
    dir: PathBuf,
    file: ClusterFile,
    recording: PathBuf,
    http: reqwest::Client,
    poller: reqwest::Client,
    profile: ProfileArg,
    /// Once an incident is seen: where the analysed window starts and the baseline ends.
    incident: Option<(i64, i64)>,
    /// The kinds the playbook handles (to find the incident's onset).
    kinds: Vec<IncidentKind>,
}

fn thresholds(profile: ProfileArg, table: &faultline_analyzers::SpanTable) -> Thresholds {
    Thresholds::for_profile(match profile {
        ProfileArg::Auto => profile_for(table),
        ProfileArg::Demo => Profile::Demo,
        ProfileArg::Production => Profile::Production,
    })
}

fn now_ns() -> i64 {
    i64::try_from(faultline_playbooks::cluster::now_ns()).unwrap_or(i64::MAX)
}

impl Live {
    fn open(path: &Path, profile: ProfileArg) -> anyhow::Result<Live> {
        let file = ClusterFile::read(path)?;
        let dir = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let Some(telemetry) = &file.telemetry else {
            bail!(
                "the cluster in {} keeps no recording of its spans (it was started with --otlp, --no-record, or by `faultline demo` with the TUI attached, where the TUI's playbook pane runs playbooks); live checks need them",
                dir.display()
            );
        };
        let recording = telemetry.path.clone();
        Ok(Live {
            dir,
            file,
            recording,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()?,
            poller: faultline_playbooks::cluster::client(Duration::from_secs(2))?,
            profile,
            incident: None,
            kinds: Vec::new(),
        })
    }

    /// The recording's parts that may hold spans from `from_ns` on (a part last written
    /// before then holds nothing of it).
    fn parts_since(&self, from_ns: i64) -> anyhow::Result<Vec<PathBuf>> {
        let parts = faultline_model::write::recording_parts(&self.recording)
            .with_context(|| format!("listing {}", self.recording.display()))?;
        let from_time =
            std::time::UNIX_EPOCH + Duration::from_nanos(u64::try_from(from_ns).unwrap_or(0));
        let parts: Vec<PathBuf> = parts
            .into_iter()
            .filter(|p| {
                std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= from_time)
            })
            .collect();
        if parts.is_empty() {
            bail!(
                "{} holds nothing recent: is the cluster's recorder running (`faultline demo status`)?",
                self.recording.display()
            );
        }
        Ok(parts)
    }

    /// The recording from `from_ns` on, analysed with the baseline ending at `healthy`.
    fn analyse(&self, from_ns: i64, healthy: Option<i64>) -> anyhow::Result<Report> {
        let options = ReadOptions {
            // The newest part is being written: its last line may be incomplete.
            lenient: true,
            ..ReadOptions::default()
        };
        let filter = TimeFilter {
            since_ns: Some(from_ns),
            until_ns: None,
        };
        let parts = self.parts_since(from_ns)?;
        let table = match load(&parts, &options, filter) {
            Ok((table, _)) => table,
            // A rotation removed a listed part while it was read: list again, once.
            Err(_) if parts.iter().any(|p| !p.exists()) => {
                load(&self.parts_since(from_ns)?, &options, filter)
                    .with_context(|| format!("reading {}", self.recording.display()))?
                    .0
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", self.recording.display()));
            }
        };
        let mut thresholds = thresholds(self.profile, &table);
        if let (Some(healthy), Some((_, end))) = (healthy, table.time_range())
            && let Some(share) = baseline_share_until(from_ns, end, healthy)
        {
            thresholds.baseline_share = share;
        }
        Ok(analyze(&table, &thresholds, Vec::new()))
    }

    /// The earliest time worth analysing: not the cluster's start-up, before its load
    /// began (a few seconds after it, so the first requests' warm-up is left out too).
    fn serving_since_ns(&self) -> i64 {
        self.file.serving_since_ms.map_or(0, |ms| {
            i64::try_from(ms).unwrap_or(0) * 1_000_000 + STARTUP_NS
        })
    }

    async fn observe(&mut self) -> anyhow::Result<Observed> {
        let now = now_ns();
        let report = match self.incident {
            Some((from, healthy)) => self.analyse(from, Some(healthy))?,
            None => {
                let report =
                    self.analyse((now - LIVE_WINDOW_NS).max(self.serving_since_ns()), None)?;
                let onset = report
                    .diagnoses
                    .iter()
                    .find(|d| self.kinds.contains(&d.kind))
                    .and_then(|d| d.onset_ns);
                match onset {
                    Some(onset) => {
                        let from = (onset - LEAD_NS)
                            .max(now - MAX_WINDOW_NS)
                            .max(self.serving_since_ns().min(onset - 2_000_000_000));
                        self.incident = Some((from, onset - 1_000_000_000));
                        self.analyse(from, Some(onset - 1_000_000_000))?
                    }
                    None => report,
                }
            }
        };
        let status =
            faultline_playbooks::cluster::poll(&self.poller, &crate::cmd::tui::targets(&self.file))
                .await;
        let recent_from_ns = report.end_ns.unwrap_or(now) - RECENT_NS;
        Ok(Observed {
            report: Arc::new(report),
            status: Some(status),
            recent_from_ns,
        })
    }

    async fn remedy(&mut self, action: Action, target: Option<&str>) -> RemedyOutcome {
        match self.apply(action, target).await {
            Ok(done) => RemedyOutcome::Applied(done),
            Err(error) => RemedyOutcome::Failed(format!("{error:#}")),
        }
    }

    async fn apply(&mut self, action: Action, target: Option<&str>) -> anyhow::Result<String> {
        let exe = std::env::current_exe().context("locating the faultline binary")?;
        let mut cluster = Cluster::attach(&self.dir, exe)?;
        let done = apply_remedy(&mut cluster, &self.http, &self.dir, action, target).await;
        self.file = cluster.detach();
        done
    }
}

/// Carries out a playbook's remedy on a demo cluster (also the TUI's, through its
/// `Control`): `dir` is the cluster's state directory, where parked dead letters go.
pub(crate) async fn apply_remedy(
    cluster: &mut Cluster,
    http: &reqwest::Client,
    dir: &Path,
    action: Action,
    target: Option<&str>,
) -> anyhow::Result<String> {
    let target = target.unwrap_or_default();
    let done = match action {
        Action::RestartNode => remedies::restart_nodes(cluster, target),
        Action::ClearNetworkFaults => remedies::clear_network_faults(cluster, http).await,
        Action::ClearNodeFaults => remedies::clear_node_faults(cluster, http, target).await,
        Action::SaneRetries => remedies::sane_retries(cluster, http).await,
        Action::TightenBreaker => remedies::tighten_breaker(cluster, http).await,
        Action::ShedLoad => remedies::shed_load(cluster),
        Action::ParkDeadLetters => {
            remedies::park_dead_letters(cluster, http, target, &dir.join("parked")).await
        }
        Action::RedriveDeadLetters => remedies::redrive_dead_letters(cluster, http, target).await,
        Action::RestoreQuorum => remedies::restore_quorum(cluster, http).await,
        Action::RestoreWorkers => remedies::restore_workers(cluster, http).await,
    };
    Ok(done?)
}

impl Source {
    fn live(&self) -> bool {
        matches!(self, Source::Live(_))
    }

    async fn observe(&mut self) -> anyhow::Result<Observed> {
        match self {
            Source::Capture { report } => Ok(Observed {
                report: report.clone(),
                status: None,
                recent_from_ns: report.end_ns.unwrap_or(0) - RECENT_NS,
            }),
            Source::Live(live) => live.observe().await,
        }
    }
}

fn run_playbook(args: RunArgs) -> anyhow::Result<ExitCode> {
    let library = args.library.library()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started_ns = now_ns();
    let (mut source, description) = match &args.cluster {
        Some(path) => (
            Source::Live(Box::new(Live::open(path, args.profile)?)),
            format!("live cluster `{}`", path.display()),
        ),
        None => {
            let (table, _) = load(&args.file, &ReadOptions::default(), TimeFilter::default())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let report = analyze(&table, &thresholds(args.profile, &table), Vec::new());
            let names: Vec<String> = args.file.iter().map(|p| p.display().to_string()).collect();
            (
                Source::Capture {
                    report: Arc::new(report),
                },
                format!("capture `{}`", names.join("`, `")),
            )
        }
    };
    let playbook = match &args.name {
        Some(name) => find(&library, name)?.clone(),
        None => {
            let observed = runtime.block_on(source.observe())?;
            let Some(top) = observed.report.diagnoses.first() else {
                bail!(
                    "nothing to diagnose in {description}, so no playbook to choose: name one (`faultline playbook list`)"
                );
            };
            let playbook = library
                .for_incident(top.kind)
                .with_context(|| format!("no playbook handles {} (name one)", top.kind.as_str()))?;
            out(&format!(
                "top diagnosis: {} → playbook {}\n",
                top.title, playbook.name
            ));
            playbook.clone()
        }
    };
    if let Source::Live(live) = &mut source {
        live.kinds = playbook.handles.clone();
    }
    out(&format!(
        "playbook {}: {}\nagainst {description}{}\n\n",
        playbook.name,
        playbook.title,
        if source.live() {
            if args.yes {
                " (remedies applied without asking: --yes)"
            } else {
                " (asking before each remedy)"
            }
        } else {
            " (a capture: remedies are named, not run)"
        }
    ));
    let mut run = Run::new(playbook.clone());
    let result = runtime.block_on(drive(&mut run, &mut source, &args));
    let ended_ns = now_ns();
    let info = RunInfo {
        source: description,
        started_ns,
        ended_ns,
        live: source.live(),
    };
    let markdown = transcript::markdown(&run, &info);
    let path = match &args.transcript {
        Some(path) => path.clone(),
        None => {
            let file = transcript::file_name(&playbook.name, started_ns);
            match &source {
                Source::Live(live) => live.dir.join("transcripts").join(file),
                Source::Capture { .. } => PathBuf::from(format!("playbook-{file}")),
            }
        }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, markdown).with_context(|| format!("writing {}", path.display()))?;
    result?;
    let Some(conclusion) = run.conclusion() else {
        bail!("the run stopped before it concluded");
    };
    out(&format!(
        "\nverdict: {}: {}\ntranscript: {}\n",
        conclusion.verdict.as_str(),
        conclusion.summary,
        path.display()
    ));
    Ok(match conclusion.verdict {
        Verdict::Resolved | Verdict::NotThisIncident => ExitCode::SUCCESS,
        Verdict::NotResolved | Verdict::Inconclusive => ExitCode::from(1),
    })
}

/// Runs the playbook to its end, printing each step as it is done.
async fn drive(run: &mut Run, source: &mut Source, args: &RunArgs) -> anyhow::Result<()> {
    let playbook = run.playbook().clone();
    let mut last_applied: Option<Instant> = None;
    let mut first = true;
    loop {
        match run.next() {
            Next::Check { step, verify, .. } => {
                let Some(check) = &run.step(step).check else {
                    bail!("step {} has no check", run.step(step).id);
                };
                out(&format!("{:>2}. {}\n", step + 1, run.step(step).title));
                // Live: a verification after a remedy waits for it to settle, and is
                // re-checked until it passes or its time is up; a confirmation may be
                // waited for (--wait).
                let patience = if source.live() && verify && run.acted() {
                    if let Some(applied) = last_applied {
                        let ready = applied + playbook.settle;
                        let now = Instant::now();
                        if ready > now {
                            out(&format!(
                                "    waiting {}s for the remedies to settle…\n",
                                (ready - now).as_secs()
                            ));
                            tokio::time::sleep(ready - now).await;
                        }
                    }
                    playbook.verify_within
                } else if source.live() && first {
                    args.wait.unwrap_or(Duration::ZERO)
                } else {
                    Duration::ZERO
                };
                let deadline = Instant::now() + patience;
                let mut tries = 0;
                let (result, at_ns) = loop {
                    tries += 1;
                    let observed = source.observe().await?;
                    let observation = Observation {
                        report: &observed.report,
                        recent_from_ns: observed.recent_from_ns,
                        status: observed.status.as_ref(),
                    };
                    let result = evaluate(check, &observation, run.bindings());
                    if result.outcome == Outcome::Pass || Instant::now() + RECHECK > deadline {
                        break (result, observed.report.end_ns);
                    }
                    if tries == 1 {
                        out(&format!(
                            "    not yet ({}); re-checking every {}s for up to {}s\n",
                            result.detail,
                            RECHECK.as_secs(),
                            patience.as_secs()
                        ));
                    }
                    tokio::time::sleep(RECHECK).await;
                };
                run.checked(result, at_ns);
                first = false;
                print_last(run);
            }
            Next::Remedy {
                step,
                action,
                target,
                why,
            } => {
                let title = &run.step(step).title;
                let target_words = target
                    .as_deref()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default();
                out(&format!(
                    "{:>2}. {title}\n    remedy: {action}{target_words}\n    why: {}\n",
                    step + 1,
                    wrap(&why, 84).replace("\n  ", "\n         ")
                ));
                let outcome = match source {
                    Source::Capture { .. } => RemedyOutcome::Skipped(
                        "not run: this is a capture, a record of the past".to_owned(),
                    ),
                    Source::Live(live) => {
                        if args.yes || ask(&format!("    apply {action}{target_words}? [y/N] "))? {
                            let outcome = live.remedy(action, target.as_deref()).await;
                            if matches!(outcome, RemedyOutcome::Applied(_)) {
                                last_applied = Some(Instant::now());
                            }
                            outcome
                        } else {
                            RemedyOutcome::Declined
                        }
                    }
                };
                let at_ns = source.live().then(now_ns);
                run.remedied(outcome, at_ns);
                print_last(run);
            }
            Next::Done(_) => return Ok(()),
        }
    }
}

/// Asks on the terminal; with no terminal to ask on, the answer is no.
fn ask(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        out("    no terminal to ask on: not applied (use --yes to apply remedies unattended)\n");
        return Ok(false);
    }
    out(question);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn print_last(run: &Run) {
    match run.log().last() {
        Some(Entry::Checked {
            result, meaning, ..
        }) => {
            out(&format!(
                "    {}\n      seen:  {}\n      means: {}\n",
                result.outcome.mark(),
                wrap(&result.detail, 80).replace("\n  ", "\n             "),
                wrap(meaning, 80).replace("\n  ", "\n             ")
            ));
            if let Some(id) = result.evidence.first() {
                out(&format!("      trace: {id}\n"));
            }
        }
        Some(Entry::Remedied { outcome, .. }) => {
            let line = match outcome {
                RemedyOutcome::Applied(what) => format!("    ⚙ applied: {what}"),
                RemedyOutcome::Declined => "    – declined".to_owned(),
                RemedyOutcome::Skipped(why) => format!("    – {why}"),
                RemedyOutcome::Failed(why) => format!("    ✗ FAILED: {why}"),
            };
            out(&format!("{line}\n"));
        }
        None => {}
    }
}
