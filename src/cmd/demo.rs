//! `faultline demo`: the demo cluster with the TUI attached (src/cmd/tui.rs), and
//! `demo up|status|down|scenario|heal|record`: the demo cluster, headless.
//!
//! ```text
//!  demo up ─► Cluster::up_with (recorder, agents, nodes, payments, gateways, workers) ─► healthy? ─► load ─► detach
//!             state dir: cluster.json (addresses, pids) · peers.json · node-N/ · logs/ · history.jsonl
//!                        · telemetry/spans.jsonl (the flight recorder's, unless --otlp or --no-record)
//!  demo status ─► cluster.json ─► each process alive? · node /status · services /status · recording
//!  demo down ─► cluster.json ─► SIGTERM every recorded faultline process, SIGKILL after 5 s;
//!               the recorder last (it finishes its file)
//!  demo scenario NAME [--for D] ─► attach ─► scenarios::inject ─► scenarios.json (labels, undo) ─► heal after D
//!  demo heal ─► attach ─► undo every scenario in scenarios.json
//! ```
//!
//! `demo up` returns once the cluster is healthy and the load runs; the processes live
//! on, recorded in the cluster file, so `demo down` stops them even if whoever ran
//! `demo up` is gone.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use faultline_cluster::scenarios::{self, Injected};
use faultline_cluster::supervisor::{
    Cluster, ClusterFile, ClusterSpec, DOWN_GRACE, RecordSpec, stop_recorded,
};
use serde_json::{Value, json};

use crate::fmt::OutputFormat;

/// `faultline demo`: with no subcommand, the cluster with the TUI attached.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct DemoArgs {
    #[command(subcommand)]
    command: Option<Demo>,
    #[command(flatten)]
    attached: AttachedArgs,
}

/// The attached demo's options (`faultline demo` with no subcommand).
#[derive(Debug, clap::Args)]
struct AttachedArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = cluster_size)]
    nodes: u64,
    /// Load: orders per second across the gateways (0: no load).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Leave the cluster running when the TUI quits (`demo down` stops it).
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    common: crate::cmd::tui::CommonArgs,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Demo {
    /// Start the demo cluster (nodes, agents, services, load) and return once healthy.
    Up(UpArgs),
    /// Show what runs: processes, roles, leader, services.
    Status(StatusArgs),
    /// Stop every process of the demo cluster (also when `demo up` was killed).
    Down(DirArg),
    /// Inject a fault from the catalog (`demo scenario list` shows them).
    Scenario(ScenarioArgs),
    /// Undo every scenario in effect.
    Heal(DirArg),
    /// Run a fresh cluster headless with an embedded receiver, apply one scenario, and
    /// write the capture and its labels (NAME.jsonl.zst, NAME.labels.json).
    Record(RecordArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RecordArgs {
    /// The scenario (`demo scenario list`), or `baseline` for none.
    #[arg(long)]
    scenario: String,
    /// Seed of the load (arrivals, order mix).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long the fault stays in (the baseline: how long the middle part lasts).
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Healthy traffic before the injection, and after the heal.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Load: orders per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    #[arg(long, default_value_t = 3, value_parser = cluster_size)]
    nodes: u64,
    /// Directory for the capture and labels (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Base name of the files (default: the scenario).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ScenarioArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The scenario, or `list`.
    name: String,
    /// Heal it after this long (otherwise it stays until `demo heal`).
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DirArg {
    /// The demo's state directory (cluster file, data, logs).
    #[arg(long, value_name = "DIR", env = "FAULTLINE_DEMO_DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = cluster_size)]
    nodes: u64,
    /// Export every process's spans to this OTLP/gRPC endpoint (e.g. http://127.0.0.1:4317)
    /// instead of recording them in DIR/telemetry/.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp: Option<String>,
    /// Do not record the cluster's spans (without --otlp, a flight recorder writes them
    /// to DIR/telemetry/spans.jsonl: 64 MiB parts, the newest 4 kept).
    #[arg(long)]
    no_record: bool,
    /// Load: orders per second across the gateways (0: no load).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Give up if the cluster is not healthy within this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    dir: DirArg,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

fn cluster_size(text: &str) -> Result<u64, String> {
    match text {
        "3" => Ok(3),
        "5" => Ok(5),
        _ => Err("the demo cluster has 3 or 5 nodes".to_owned()),
    }
}

/// `$XDG_STATE_HOME/faultline/demo`, else `~/.local/state/faultline/demo`.
fn state_dir(arg: &DirArg) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &arg.dir {
        return Ok(dir.clone());
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .context("no state directory: give --dir (HOME and XDG_STATE_HOME are unset)")?;
    Ok(base.join("faultline").join("demo"))
}

fn cluster_file(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let Some(demo) = args.command else {
        let a = args.attached;
        let dir = state_dir(&a.dir)?;
        return crate::cmd::tui::demo(dir, a.nodes, a.rate, a.keep, &a.common);
    };
    match demo {
        Demo::Up(args) => up(args),
        Demo::Status(args) => status(args),
        Demo::Down(args) => down(&args),
        Demo::Scenario(args) => scenario(args),
        Demo::Heal(args) => heal(&args),
        Demo::Record(args) => record(args),
    }
}

fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let baseline = args.scenario == "baseline";
    if !baseline && scenarios::find(&args.scenario).is_none() {
        bail!(
            "no scenario {:?}; `faultline demo scenario list` shows them",
            args.scenario
        );
    }
    let name = args.name.clone().unwrap_or_else(|| args.scenario.clone());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let capture = args.out.join(format!("{name}.jsonl.zst"));
    let labels_path = args.out.join(format!("{name}.labels.json"));
    if capture.exists() {
        bail!("{} already exists", capture.display());
    }
    let state = tempfile::Builder::new()
        .prefix("faultline-record-")
        .tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let recording = runtime.block_on(crate::cmd::record::Recording::start(
        &["127.0.0.1:0".parse()?],
        &capture,
        crate::cmd::record::RecordingOptions::default(),
    ))?;
    let otlp = format!("http://{}", recording.addrs[0]);
    let started = Instant::now();
    let mut cluster = Cluster::up(ClusterSpec {
        nodes: args.nodes,
        dir: state.path().to_owned(),
        exe: std::env::current_exe().context("locating the faultline binary")?,
        otlp: Some(otlp),
        services: true,
    })?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    runtime.block_on(async {
        cluster.wait_healthy(&http, Duration::from_secs(60)).await?;
        wait_services(&http, cluster.file(), Duration::from_secs(60)).await
    })?;
    eprintln!(
        "faultline demo record: healthy in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    cluster.start_load(args.rate, &["--seed".to_owned(), args.seed.to_string()])?;
    let load_started_ms = scenarios::now_ms();
    std::thread::sleep(args.settle);
    let injected = if baseline {
        std::thread::sleep(args.duration);
        None
    } else {
        let mut injected =
            runtime.block_on(scenarios::inject(&mut cluster, &http, &args.scenario))?;
        eprintln!(
            "faultline demo record: injected {} ({}: {})",
            args.scenario, injected.labels.root_cause.kind, injected.labels.root_cause.target
        );
        std::thread::sleep(args.duration);
        runtime.block_on(scenarios::heal(&mut cluster, &http, &mut injected))?;
        eprintln!("faultline demo record: healed");
        Some(injected)
    };
    std::thread::sleep(args.settle);
    cluster.stop_load()?;
    let stopped_ms = scenarios::now_ms();
    // SIGTERM: every process flushes its spans to the receiver before exiting.
    cluster.down();
    let summary = runtime.block_on(recording.finish())?;
    let labels = json!({
        "scenario": args.scenario,
        "capture": capture.file_name().map(|n| n.to_string_lossy().into_owned()),
        "seed": args.seed,
        "nodes": args.nodes,
        "rate": args.rate,
        "load_started_ms": load_started_ms,
        "stopped_ms": stopped_ms,
        "expected_diagnosis": injected.as_ref().map(|i| i.labels.expected_diagnosis.clone()),
        "root_cause": injected.as_ref().map(|i| &i.labels.root_cause),
        "injection": injected.as_ref().map(|i| i.labels.injection.clone()),
        "injected_at_ms": injected.as_ref().map(|i| i.labels.injected_at_ms),
        "healed_at_ms": injected.as_ref().and_then(|i| i.labels.healed_at_ms),
        "spans": summary.file.spans,
    });
    std::fs::write(&labels_path, serde_json::to_vec_pretty(&labels)?)
        .with_context(|| format!("writing {}", labels_path.display()))?;
    eprintln!(
        "faultline demo record: {} spans in {}; labels in {}",
        summary.file.spans,
        capture.display(),
        labels_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The scenarios in effect, kept beside the cluster file so `demo heal` can undo them.
fn active_file(dir: &Path) -> PathBuf {
    dir.join("scenarios.json")
}

fn read_active(dir: &Path) -> anyhow::Result<Vec<Injected>> {
    let path = active_file(dir);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a scenario list", path.display()))
}

pub(crate) fn write_active(dir: &Path, active: &[Injected]) -> anyhow::Result<()> {
    let path = active_file(dir);
    std::fs::write(&path, serde_json::to_vec_pretty(active)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn attach(dir: &Path) -> anyhow::Result<(Cluster, tokio::runtime::Runtime, reqwest::Client)> {
    if !cluster_file(dir).exists() {
        bail!(
            "no demo cluster in {} (start one with `faultline demo up`)",
            dir.display()
        );
    }
    let cluster = Cluster::attach(
        dir,
        std::env::current_exe().context("locating the faultline binary")?,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    Ok((cluster, runtime, http))
}

fn scenario(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    if args.name == "list" {
        println!(
            "{:<20} {:<24} injection → expected diagnosis",
            "scenario", "root cause"
        );
        for s in scenarios::CATALOG {
            println!(
                "{:<20} {:<24} {} → {}",
                s.name, s.root_cause_kind, s.injection, s.expected_diagnosis
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if scenarios::find(&args.name).is_none() {
        bail!(
            "no scenario {:?}; `faultline demo scenario list` shows them",
            args.name
        );
    }
    let dir = state_dir(&args.dir)?;
    let (mut cluster, runtime, http) = attach(&dir)?;
    let mut active = read_active(&dir)?;
    let mut injected = runtime.block_on(scenarios::inject(&mut cluster, &http, &args.name))?;
    active.push(injected.clone());
    write_active(&dir, &active)?;
    eprintln!(
        "faultline demo: injected {} ({}: {})",
        injected.labels.scenario,
        injected.labels.root_cause.kind,
        injected.labels.root_cause.target
    );
    if let Some(duration) = args.duration {
        std::thread::sleep(duration);
        runtime.block_on(scenarios::heal(&mut cluster, &http, &mut injected))?;
        active.retain(|a| {
            a.labels.injected_at_ms != injected.labels.injected_at_ms
                || a.labels.scenario != injected.labels.scenario
        });
        write_active(&dir, &active)?;
        eprintln!(
            "faultline demo: healed {} after {}",
            injected.labels.scenario,
            humantime::format_duration(duration)
        );
    } else {
        eprintln!("  heal with: faultline demo heal --dir {}", dir.display());
    }
    println!("{}", serde_json::to_string_pretty(&injected.labels)?);
    let _ = cluster.detach();
    Ok(ExitCode::SUCCESS)
}

fn heal(args: &DirArg) -> anyhow::Result<ExitCode> {
    let dir = state_dir(args)?;
    let (mut cluster, runtime, http) = attach(&dir)?;
    let mut active = read_active(&dir)?;
    if active.is_empty() {
        eprintln!("faultline demo: no scenario in effect");
    }
    while let Some(mut injected) = active.pop() {
        runtime.block_on(scenarios::heal(&mut cluster, &http, &mut injected))?;
        write_active(&dir, &active)?;
        eprintln!("faultline demo: healed {}", injected.labels.scenario);
        println!("{}", serde_json::to_string(&injected.labels)?);
    }
    let _ = cluster.detach();
    Ok(ExitCode::SUCCESS)
}

/// Makes `dir` an empty state directory, refusing to touch one that is not a demo's or
/// whose cluster still runs.
pub(crate) fn fresh_state_dir(dir: &Path) -> anyhow::Result<()> {
    let file = cluster_file(dir);
    if file.exists() {
        let recorded = ClusterFile::read(&file)?;
        let alive = recorded
            .pids()
            .into_iter()
            .filter(|&p| recorded.is_running(p))
            .count();
        if alive > 0 {
            bail!(
                "a demo cluster is already running from {} ({alive} processes); \
                 stop it with `faultline demo down --dir {}`",
                dir.display(),
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    } else if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty and holds no demo cluster; choose another --dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let dir = state_dir(&args.dir)?;
    fresh_state_dir(&dir)?;
    let started = Instant::now();
    // Without an endpoint of their own, the processes export to a flight recorder, so
    // that the analyzers (`playbook run`, `analyze`) have the cluster's recent spans.
    let record = (args.otlp.is_none() && !args.no_record).then(|| RecordSpec::in_dir(&dir));
    let kept = record.as_ref().map(|r| {
        format!(
            "{} parts, {} older kept",
            crate::fmt::bytes(r.rotate_size),
            r.keep
        )
    });
    let mut cluster = Cluster::up_with(
        ClusterSpec {
            nodes: args.nodes,
            dir: dir.clone(),
            exe: std::env::current_exe().context("locating the faultline binary")?,
            otlp: args.otlp.clone(),
            services: true,
        },
        record,
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    let leader = runtime.block_on(async {
        let leader = cluster.wait_healthy(&http, args.timeout).await?;
        let left = args.timeout.saturating_sub(started.elapsed());
        wait_services(&http, cluster.file(), left).await?;
        anyhow::Ok(leader)
    })?;
    let healthy = started.elapsed();
    if args.rate > 0.0 {
        cluster.start_load(args.rate, &[])?;
    }
    let file = cluster.detach();
    eprintln!(
        "faultline demo: {} nodes healthy in {:.1} s (leader {leader}); state in {}",
        file.members.len(),
        healthy.as_secs_f64(),
        dir.display()
    );
    for m in &file.members {
        let gateway = m
            .gateway
            .as_ref()
            .map(|g| g.addr.to_string())
            .unwrap_or_default();
        eprintln!(
            "  {}: api via agent http://{}  gateway http://{gateway}  agent admin http://{}",
            m.name, m.agent_inbound, m.agent_admin
        );
    }
    if args.rate > 0.0 {
        eprintln!(
            "  load: {} orders/s, history in {}",
            args.rate,
            dir.join("history.jsonl").display()
        );
    }
    match (&file.telemetry, &file.otlp) {
        (Some(t), _) => eprintln!(
            "  spans: recorded to {} ({}) by a recorder at {}",
            t.path.display(),
            kept.unwrap_or_default(),
            t.otlp
        ),
        (None, Some(otlp)) => eprintln!("  spans: exported to {otlp}"),
        (None, None) => eprintln!("  spans: not recorded (--no-record)"),
    }
    eprintln!("  stop with: faultline demo down --dir {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// Waits until every gateway, worker and payments answers `/status`.
pub(crate) async fn wait_services(
    http: &reqwest::Client,
    file: &ClusterFile,
    limit: Duration,
) -> anyhow::Result<()> {
    let addrs: Vec<_> = file
        .members
        .iter()
        .flat_map(|m| [&m.gateway, &m.worker])
        .chain(std::iter::once(&file.payments))
        .filter_map(|e| e.as_ref().map(|e| e.addr))
        .collect();
    let started = Instant::now();
    for addr in addrs {
        loop {
            let ok = http
                .get(format!("http://{addr}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            if started.elapsed() > limit {
                bail!("the service at {addr} did not answer within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

fn down(args: &DirArg) -> anyhow::Result<ExitCode> {
    let dir = state_dir(args)?;
    let file = cluster_file(&dir);
    if !file.exists() {
        eprintln!("faultline demo: no demo cluster in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let recorded = ClusterFile::read(&file)?;
    let stopped = stop_recorded(&recorded, DOWN_GRACE);
    let left: Vec<u32> = recorded
        .pids()
        .into_iter()
        .filter(|&p| recorded.is_running(p))
        .collect();
    if !left.is_empty() {
        bail!("these processes would not stop: {left:?}");
    }
    eprintln!(
        "faultline demo: stopped {stopped} processes; logs and data stay in {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let dir = state_dir(&args.dir)?;
    let file = cluster_file(&dir);
    if !file.exists() {
        bail!(
            "no demo cluster in {} (start one with `faultline demo up`)",
            dir.display()
        );
    }
    let recorded = ClusterFile::read(&file)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()?;
    let report = runtime.block_on(collect_status(&http, &recorded));
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print_status(&report),
    }
    Ok(ExitCode::SUCCESS)
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    match http.get(&url).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

async fn collect_status(http: &reqwest::Client, file: &ClusterFile) -> Value {
    let alive = |pid: Option<u32>| pid.is_some_and(|p| file.is_running(p));
    let mut members = Vec::new();
    for m in &file.members {
        let node = if alive(m.node_pid) {
            get_json(http, format!("http://{}/status", m.api)).await
        } else {
            Value::Null
        };
        let service = |e: &Option<faultline_cluster::supervisor::ServiceEntry>| {
            e.as_ref().map(|e| (e.addr, alive(e.pid)))
        };
        let (gateway, worker) = (service(&m.gateway), service(&m.worker));
        let worker_status = match worker {
            Some((addr, true)) => get_json(http, format!("http://{addr}/status")).await,
            _ => Value::Null,
        };
        members.push(json!({
            "name": m.name,
            "node_running": alive(m.node_pid),
            "agent_running": alive(m.agent_pid),
            "gateway_running": gateway.map(|(_, a)| a),
            "worker_running": worker.map(|(_, a)| a),
            "role": node["role"],
            "term": node["term"],
            "leader": node["leader"],
            "commit_index": node["commit_index"],
            "worker": worker_status,
        }));
    }
    let payments = match &file.payments {
        Some(p) if alive(p.pid) => get_json(http, format!("http://{}/status", p.addr)).await,
        _ => Value::Null,
    };
    let telemetry = file.telemetry.as_ref().map(|t| {
        let files = faultline_model::write::recording_parts(&t.path).unwrap_or_default();
        // A part may be rotated away between the listing and here: it counts as gone.
        let bytes: u64 = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        json!({
            "running": alive(t.pid),
            "otlp": t.otlp,
            "path": t.path,
            "files": files.len(),
            "bytes": bytes,
        })
    });
    json!({
        "members": members,
        "payments": payments,
        "payments_running": file.payments.as_ref().map(|p| alive(p.pid)),
        "load_running": alive(file.load_pid),
        "otlp": file.otlp,
        "telemetry": telemetry,
    })
}

fn print_status(report: &Value) {
    let yes = |v: &Value| match v.as_bool() {
        Some(true) => "up",
        Some(false) => "DOWN",
        None => "-",
    };
    println!(
        "{:<8} {:<6} {:<6} {:<10} {:>5} {:<8} {:>8} {:<8} {:<8}",
        "member", "node", "agent", "role", "term", "leader", "commit", "gateway", "worker"
    );
    for m in report["members"].as_array().into_iter().flatten() {
        let text = |v: &Value| match v {
            Value::Null => "-".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!(
            "{:<8} {:<6} {:<6} {:<10} {:>5} {:<8} {:>8} {:<8} {:<8}",
            text(&m["name"]),
            yes(&m["node_running"]),
            yes(&m["agent_running"]),
            text(&m["role"]),
            text(&m["term"]),
            text(&m["leader"]),
            text(&m["commit_index"]),
            yes(&m["gateway_running"]),
            yes(&m["worker_running"]),
        );
    }
    println!(
        "payments: {}   load: {}",
        yes(&report["payments_running"]),
        yes(&report["load_running"])
    );
    let telemetry = &report["telemetry"];
    if telemetry.is_object() {
        let files = telemetry["files"].as_u64().unwrap_or(0);
        println!(
            "recorder: {}   {} ({} in {files} file{}) via {}",
            yes(&telemetry["running"]),
            telemetry["path"].as_str().unwrap_or("-"),
            crate::fmt::bytes(telemetry["bytes"].as_u64().unwrap_or(0)),
            if files == 1 { "" } else { "s" },
            telemetry["otlp"].as_str().unwrap_or("-"),
        );
    } else if let Some(otlp) = report["otlp"].as_str() {
        println!("spans: exported to {otlp}");
    } else {
        println!("spans: not recorded");
    }
}
