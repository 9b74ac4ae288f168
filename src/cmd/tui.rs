//! `faultline tui` and `faultline demo` (the demo cluster with the TUI attached).
//!
//! ```text
//!  faultline demo ─► OTLP receiver (127.0.0.1:0) ─► TUI on screen at once ("starting the cluster…")
//!                 └► thread: Cluster::up(otlp) ─► healthy ─► load ─► DemoControl ready ─► faults menu, poller
//!                 q ─► TUI restores the terminal ─► cluster down (or detached with --keep)
//!  faultline tui --otlp ADDR | --cluster FILE | --file CAPTURE [--speed N]
//! ```
//!
//! The TUI crate knows nothing of the cluster crate: [`DemoControl`] is the bridge
//! that turns the faults menu's choices into the catalog's scenarios and single agent
//! toxics, and the playbook pane's remedies into `faultline playbook run`'s
//! (`crate::cmd::playbook::apply_remedy`). Playbook transcripts go to the cluster's
//! `transcripts/` directory (`demo`, `tui --cluster`), else to the current directory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use faultline_analyzers::{Profile, Thresholds};
use faultline_cluster::scenarios::{self, Injected};
use faultline_cluster::supervisor::{Cluster, ClusterFile, ClusterSpec};
use faultline_tui::app::{Action, App, DEFAULT_CAP, FaultItem, SourceKind, levels_for};
use faultline_tui::cluster::{ClusterTargets, NodeTarget};
use faultline_tui::source::{self, Inputs};
use faultline_tui::{Control, Outcome, Tui};
use serde_json::json;
use tokio::sync::Mutex;

/// How often the cluster's `/status` is polled.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Receive OTLP (gRPC and HTTP on one port) on this address. The default when no
    /// source is given: 127.0.0.1:4317.
    #[arg(long, value_name = "ADDR")]
    otlp: Option<SocketAddr>,
    /// A demo cluster's file (`cluster.json` in its state directory): poll its nodes
    /// and offer its faults. The cluster keeps running when the TUI quits.
    #[arg(long, value_name = "FILE")]
    cluster: Option<PathBuf>,
    /// Replay a capture in time (any format `inspect` reads).
    #[arg(long, value_name = "CAPTURE")]
    file: Option<PathBuf>,
    /// Replay speed (1 to 64; `+`/`-` change it while replaying).
    #[arg(long, default_value_t = 1.0, value_parser = speed)]
    speed: f64,
    #[command(flatten)]
    common: CommonArgs,
}

/// What `tui` and the attached `demo` share.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CommonArgs {
    /// Spans held at most; the oldest are dropped (and counted) beyond it.
    #[arg(long, default_value_t = DEFAULT_CAP, value_name = "SPANS")]
    cap: usize,
    /// Thresholds for diagnoses and signal levels: `auto` picks the demo's when the
    /// demo cluster's nodes are in the data.
    #[arg(long, value_enum, default_value_t = ProfileArg::Auto)]
    profile: ProfileArg,
    #[command(flatten)]
    playbooks: crate::cmd::playbook::LibraryArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ProfileArg {
    Auto,
    Demo,
    Production,
}

fn speed(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('x').parse::<f64>() {
        Ok(s) if (1.0..=64.0).contains(&s) => Ok(s),
        _ => Err("a speed from 1 to 64".to_owned()),
    }
}

fn tui_for(source: SourceKind, common: &CommonArgs, demo: bool) -> anyhow::Result<Tui> {
    let fixed = match common.profile {
        ProfileArg::Demo => Some(Profile::Demo),
        ProfileArg::Production => Some(Profile::Production),
        ProfileArg::Auto if demo => Some(Profile::Demo),
        ProfileArg::Auto => None,
    };
    // Until an analysis says otherwise (auto), production levels.
    let levels = levels_for(fixed.unwrap_or(Profile::Production));
    let mut app = App::new(source, levels, common.cap.max(1));
    app.library = Ok(common.playbooks.library()?);
    let mut tui = Tui::new(app);
    if let Some(profile) = fixed {
        tui.set_thresholds(Thresholds::for_profile(profile));
    }
    Ok(tui)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// SIGTERM or SIGHUP (the terminal closed) quit the TUI the way `q` does, so that
/// the cluster is still shut down.
fn quit_on_signals(inputs: Inputs) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        inputs.send(Action::Quit).await;
    });
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    let source = match (&args.file, &args.cluster, args.otlp) {
        (Some(file), _, _) => SourceKind::Replay(file.display().to_string()),
        (None, Some(_), None) => SourceKind::Demo,
        (None, _, Some(addr)) => SourceKind::Otlp(addr.to_string()),
        (None, None, None) => SourceKind::Otlp("127.0.0.1:4317".to_owned()),
    };
    if let Some(file) = &args.file
        && !file.exists()
    {
        bail!("{}: no such file", file.display());
    }
    let mut tui = tui_for(source, &args.common, false)?;
    let inputs = tui.inputs();
    runtime.block_on(async {
        let _serving = match (args.otlp, &args.file, &args.cluster) {
            (Some(addr), _, _) => Some(bind_otlp(inputs.clone(), addr).await?),
            (None, None, None) => Some(bind_otlp(inputs.clone(), "127.0.0.1:4317".parse()?).await?),
            _ => None,
        };
        if let Some(file) = &args.file {
            tui.set_replay(source::replay(inputs.clone(), file.clone(), args.speed));
        }
        if let Some(path) = &args.cluster {
            let recorded = ClusterFile::read(path)?;
            let dir = path
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
            let cluster = Cluster::attach(&dir, std::env::current_exe()?)?;
            tui.set_transcripts(dir.join("transcripts"));
            let control = Arc::new(DemoControl::new(dir)?);
            let items = control.items(&recorded);
            *control.cluster.lock().await = Some(cluster);
            tui.set_control(control, items);
            source::poll_cluster(inputs.clone(), targets(&recorded), POLL);
        }
        quit_on_signals(inputs.clone());
        tui.run().await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn bind_otlp(
    inputs: Inputs,
    addr: SocketAddr,
) -> anyhow::Result<faultline_model::receiver::Serving> {
    source::otlp(inputs, addr)
        .await
        .with_context(|| format!("cannot receive OTLP on {addr}"))
}

/// The nodes to poll: each node's own API (the agent in front could be the fault).
pub(crate) fn targets(file: &ClusterFile) -> ClusterTargets {
    ClusterTargets {
        nodes: file
            .members
            .iter()
            .map(|m| NodeTarget {
                name: m.name.clone(),
                status_url: format!("http://{}/status", m.api),
                metrics_url: Some(format!("http://{}/metrics", m.agent_admin)),
            })
            .collect(),
    }
}

/// `faultline demo`: the cluster started in the background while the TUI is already
/// on screen; quitting stops it (unless `keep`).
pub(crate) fn demo(
    dir: PathBuf,
    nodes: u64,
    rate: f64,
    keep: bool,
    common: &CommonArgs,
) -> anyhow::Result<ExitCode> {
    crate::cmd::demo::fresh_state_dir(&dir)?;
    let runtime = runtime()?;
    let mut tui = tui_for(SourceKind::Demo, common, true)?;
    tui.app.starting = true;
    let inputs = tui.inputs();
    let control = Arc::new(DemoControl::new(dir.clone())?);
    let started = Instant::now();
    let (serving, starter) = runtime.block_on(async {
        let serving = bind_otlp(inputs.clone(), "127.0.0.1:0".parse()?).await?;
        let otlp = format!("http://{}", serving.addr);
        let starter = start_cluster(
            tokio::runtime::Handle::current(),
            inputs.clone(),
            control.clone(),
            ClusterSpec {
                nodes,
                dir: dir.clone(),
                exe: std::env::current_exe().context("locating the faultline binary")?,
                otlp: Some(otlp),
                services: true,
            },
            rate,
            started,
        );
        tui.set_control_later(control.clone());
        tui.set_transcripts(dir.join("transcripts"));
        quit_on_signals(inputs.clone());
        anyhow::Ok((serving, starter))
    })?;
    // A panic in the TUI must not leave the cluster running: ratatui's hook has
    // restored the terminal by the time it unwinds to here; stop the cluster, then
    // let the panic go on.
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(tui.run())));
    // The terminal is back; say what happens next on it (if it is still there: after
    // SIGHUP it is not, and the cluster must be stopped all the same).
    say("faultline demo: stopping…".to_owned());
    if starter.join().is_err() {
        say("faultline demo: the cluster's start-up thread panicked".to_owned());
    }
    let cluster = runtime.block_on(async { control.cluster.lock().await.take() });
    drop(serving);
    match cluster {
        Some(cluster) if keep => {
            let file = cluster.detach();
            say(format!(
                "faultline demo: the cluster runs on ({} nodes); stop it with `faultline demo down --dir {}`",
                file.members.len(),
                dir.display()
            ));
        }
        Some(cluster) => {
            cluster.down();
            say(format!(
                "faultline demo: cluster stopped; logs and data stay in {}",
                dir.display()
            ));
        }
        None => {}
    }
    match result {
        Ok(result) => {
            result?;
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a line to stderr, ignoring a terminal that is gone (`eprintln!` would
/// panic, and a shutdown must go on).
fn say(line: String) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Starts the cluster on a thread of its own (process spawning blocks), then hands
/// it to the control, the fault menu and the poller.
fn start_cluster(
    handle: tokio::runtime::Handle,
    inputs: Inputs,
    control: Arc<DemoControl>,
    spec: ClusterSpec,
    rate: f64,
    started: Instant,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let up = || -> anyhow::Result<Cluster> {
            let mut cluster = Cluster::up(spec)?;
            let http = control.http.clone();
            let leader = handle.block_on(async {
                let leader = cluster.wait_healthy(&http, Duration::from_secs(60)).await;
                if leader.is_ok() {
                    crate::cmd::demo::wait_services(&http, cluster.file(), Duration::from_secs(60))
                        .await?;
                }
                anyhow::Ok(leader?)
            });
            match leader {
                Ok(leader) => {
                    if rate > 0.0 {
                        cluster.start_load(rate, &[])?;
                    }
                    inputs.blocking_send(Action::Message(format!(
                        "{} nodes healthy in {:.1} s, leader {leader}; {rate} orders/s; state in {}",
                        cluster.len(),
                        started.elapsed().as_secs_f64(),
                        cluster.spec().dir.display()
                    )));
                    Ok(cluster)
                }
                Err(error) => {
                    cluster.down();
                    Err(error)
                }
            }
        };
        match up() {
            Ok(cluster) => {
                let items = control.items(cluster.file());
                let targets = targets(cluster.file());
                handle.block_on(async { *control.cluster.lock().await = Some(cluster) });
                inputs.blocking_send(Action::Faults(items));
                let _guard = handle.enter();
                source::poll_cluster(inputs, targets, POLL);
            }
            Err(error) => {
                inputs.blocking_send(Action::Message(format!(
                    "the demo cluster did not start: {error:#} (logs in its state directory)"
                )));
            }
        }
    })
}

/// The faults menu's bridge to the cluster: the catalog's scenarios, and single
/// toxics at one node's agent. What is in effect is also written to the state
/// directory's `scenarios.json`, so `faultline demo heal` from another shell works.
pub(crate) struct DemoControl {
    dir: PathBuf,
    http: reqwest::Client,
    cluster: Mutex<Option<Cluster>>,
    scenarios: Mutex<HashMap<String, Injected>>,
    /// Toxic menu id → (agent admin address, the agent's toxic id).
    toxics: Mutex<HashMap<String, (SocketAddr, String)>>,
}

impl std::fmt::Debug for DemoControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoControl")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The single toxics the menu offers per node: (kind, title, spec).
fn toxic_templates() -> [(&'static str, &'static str, serde_json::Value); 4] {
    [
        (
            "latency",
            "300 ms latency",
            json!({"type": "latency", "latency_ms": 300, "jitter_ms": 50, "direction": "inbound"}),
        ),
        (
            "errors",
            "50 % errors (503)",
            json!({"type": "error", "status": 503, "direction": "inbound", "probability": 0.5}),
        ),
        (
            "blackhole",
            "blackhole",
            json!({"type": "blackhole", "direction": "inbound"}),
        ),
        (
            "bandwidth",
            "20 kB/s bandwidth",
            json!({"type": "bandwidth", "bytes_per_sec": 20000}),
        ),
    ]
}

impl DemoControl {
    fn new(dir: PathBuf) -> anyhow::Result<DemoControl> {
        Ok(DemoControl {
            dir,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()?,
            cluster: Mutex::new(None),
            scenarios: Mutex::new(HashMap::new()),
            toxics: Mutex::new(HashMap::new()),
        })
    }

    fn items(&self, file: &ClusterFile) -> Vec<FaultItem> {
        let mut items: Vec<FaultItem> = scenarios::CATALOG
            .iter()
            .map(|s| FaultItem {
                id: s.name.to_owned(),
                title: s.name.to_owned(),
                description: s.injection.to_owned(),
                expect: Some(s.expected_diagnosis.to_owned()),
            })
            .collect();
        for m in &file.members {
            for (kind, title, _) in toxic_templates() {
                items.push(FaultItem {
                    id: format!("toxic:{kind}:{}", m.name),
                    title: format!("{title} at {}", m.name),
                    description: format!(
                        "a single toxic at {}'s agent: {title} on what it receives",
                        m.name
                    ),
                    expect: None,
                });
            }
        }
        items
    }

    fn save(&self, active: &HashMap<String, Injected>) -> Result<(), String> {
        let list: Vec<Injected> = active.values().cloned().collect();
        crate::cmd::demo::write_active(&self.dir, &list).map_err(|e| format!("{e:#}"))
    }

    async fn inject_now(&self, id: String) -> Result<String, String> {
        let mut guard = self.cluster.lock().await;
        let Some(cluster) = guard.as_mut() else {
            return Err("the cluster is still starting".to_owned());
        };
        if let Some(rest) = id.strip_prefix("toxic:") {
            let (kind, node) = rest
                .split_once(':')
                .ok_or("a toxic id is toxic:KIND:NODE")?;
            let (kind, node) = (kind.to_owned(), node.to_owned());
            let (_, title, spec) = toxic_templates()
                .into_iter()
                .find(|(k, _, _)| *k == kind)
                .ok_or_else(|| format!("no toxic {kind:?}"))?;
            let admin = cluster
                .file()
                .members
                .iter()
                .find(|m| m.name == node)
                .map(|m| m.agent_admin)
                .ok_or_else(|| format!("no node {node:?}"))?;
            let answer = Cluster::admin(
                &self.http,
                reqwest::Method::POST,
                format!("http://{admin}/toxics"),
                Some(spec),
            )
            .await
            .map_err(|e| e.to_string())?;
            let toxic_id = answer["id"]
                .as_str()
                .ok_or("the agent did not name the toxic")?
                .to_owned();
            self.toxics.lock().await.insert(id, (admin, toxic_id));
            return Ok(format!("{title} at {node}"));
        }
        if self.scenarios.lock().await.contains_key(&id) {
            return Err(format!("{id} is already in effect (heal it first)"));
        }
        let injected = scenarios::inject(cluster, &self.http, &id)
            .await
            .map_err(|e| e.to_string())?;
        let label = format!(
            "{} at {}",
            injected.labels.root_cause.kind, injected.labels.root_cause.target
        );
        let mut active = self.scenarios.lock().await;
        active.insert(id, injected);
        self.save(&active)?;
        Ok(label)
    }

    async fn heal_now(&self, id: String) -> Result<String, String> {
        if let Some((admin, toxic)) = self.toxics.lock().await.remove(&id) {
            Cluster::admin(
                &self.http,
                reqwest::Method::DELETE,
                format!("http://{admin}/toxics/{toxic}"),
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
            return Ok(String::new());
        }
        let mut guard = self.cluster.lock().await;
        let Some(cluster) = guard.as_mut() else {
            return Err("the cluster is still starting".to_owned());
        };
        let mut active = self.scenarios.lock().await;
        let Some(mut injected) = active.remove(&id) else {
            return Err(format!("{id} is not in effect"));
        };
        let result = scenarios::heal(cluster, &self.http, &mut injected).await;
        if let Err(error) = result {
            active.insert(id, injected);
            return Err(error.to_string());
        }
        self.save(&active)?;
        Ok(String::new())
    }
}

impl Control for DemoControl {
    fn inject(self: Arc<Self>, id: String) -> Outcome {
        Box::pin(async move { self.inject_now(id).await })
    }

    fn heal(self: Arc<Self>, id: String) -> Outcome {
        Box::pin(async move { self.heal_now(id).await })
    }

    fn heal_all(self: Arc<Self>) -> Outcome {
        let this = self;
        Box::pin(async move {
            let mut ids: Vec<String> = this.toxics.lock().await.keys().cloned().collect();
            ids.extend(this.scenarios.lock().await.keys().cloned());
            let mut healed = Vec::new();
            for id in ids {
                this.heal_now(id.clone()).await?;
                healed.push(id);
            }
            Ok(format!("({})", healed.join(", ")))
        })
    }

    fn remedy(
        self: Arc<Self>,
        action: faultline_playbooks::Action,
        target: Option<String>,
    ) -> Outcome {
        Box::pin(async move {
            let mut guard = self.cluster.lock().await;
            let Some(cluster) = guard.as_mut() else {
                return Err("the cluster is still starting".to_owned());
            };
            crate::cmd::playbook::apply_remedy(
                cluster,
                &self.http,
                &self.dir,
                action,
                target.as_deref(),
            )
            .await
            .map_err(|e| format!("{e:#}"))
        })
    }
}
