//! `faultline dashboards export`: the panels and alert levels (dashboards/panels.toml)
//! as a Grafana dashboard, Prometheus alerting rules, and — for a running demo
//! cluster, from its `cluster.json` — a Prometheus scrape configuration or `file_sd`
//! targets.
//!
//! ```text
//!  panels.toml (built in, or --panels) ─► faultline_dashboards::{grafana, rules} ─┐
//!  cluster.json (--cluster) ─► targets ─► faultline_dashboards::scrape ───────────┴─► files (written whole, then renamed)
//! ```
//!
//! The files are made anew on each run and replace what is there: they are outputs,
//! and a demo cluster's ports change with every `demo up`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use faultline_cluster::supervisor::ClusterFile;
use faultline_dashboards::grafana::{grafana_dashboard, uid};
use faultline_dashboards::rules::{alert_rules, rules_yaml};
use faultline_dashboards::scrape::{Job, Target, file_sd, scrape_config};
use faultline_dashboards::{Dashboard, Profile};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Dashboards {
    /// Write the Grafana dashboard, the Prometheus alerting rules, and a scrape
    /// configuration (or file_sd targets) for a running demo cluster.
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("outputs")
        .required(true)
        .multiple(true)
        .args(["grafana", "prometheus_rules", "prometheus_config", "prometheus_targets"])
))]
pub(crate) struct ExportArgs {
    /// Write the Grafana dashboard into DIR (created if missing) as faultline-PROFILE.json.
    #[arg(long, value_name = "DIR")]
    grafana: Option<PathBuf>,
    /// Write the Prometheus alerting rules (YAML) to FILE.
    #[arg(long, value_name = "FILE")]
    prometheus_rules: Option<PathBuf>,
    /// Write a Prometheus configuration scraping the cluster of --cluster to FILE (it
    /// loads the rules of --prometheus-rules when given).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    prometheus_config: Option<PathBuf>,
    /// Write the cluster's scrape targets as file_sd JSON to FILE, for a Prometheus
    /// with `file_sd_configs` that is already running.
    #[arg(long, value_name = "FILE", requires = "cluster")]
    prometheus_targets: Option<PathBuf>,
    /// A demo cluster's cluster.json, or its state directory (`demo up --dir`).
    #[arg(long, value_name = "CLUSTER_JSON")]
    cluster: Option<PathBuf>,
    /// Alert levels and timings: production, or the demo's compressed time.
    #[arg(long, value_enum, default_value_t = ProfileChoice::Production)]
    profile: ProfileChoice,
    /// Panels to export instead of the built-in ones (the format of dashboards/panels.toml).
    #[arg(long, value_name = "FILE")]
    panels: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProfileChoice {
    Production,
    Demo,
}

impl From<ProfileChoice> for Profile {
    fn from(choice: ProfileChoice) -> Profile {
        match choice {
            ProfileChoice::Production => Profile::Production,
            ProfileChoice::Demo => Profile::Demo,
        }
    }
}

pub(crate) fn run(command: Dashboards) -> anyhow::Result<ExitCode> {
    match command {
        Dashboards::Export(args) => export(&args),
    }
}

fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    if args.cluster.is_some()
        && args.prometheus_config.is_none()
        && args.prometheus_targets.is_none()
    {
        bail!("--cluster is only read for --prometheus-config or --prometheus-targets");
    }
    let profile = Profile::from(args.profile);
    let dashboard = match &args.panels {
        None => Dashboard::builtin(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Dashboard::parse(&text).with_context(|| format!("in {}", path.display()))?
        }
    };
    // Read the cluster first: a bad --cluster should leave nothing half-written.
    let cluster = match &args.cluster {
        Some(path) => Some(read_cluster(path)?),
        None => None,
    };
    let mut wrote = Vec::new();

    if let Some(dir) = &args.grafana {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.json", uid(profile)));
        let json = grafana_dashboard(&dashboard, profile);
        let mut text = serde_json::to_string_pretty(&json).context("encoding the dashboard")?;
        text.push('\n');
        write_whole(&path, &text)?;
        wrote.push(format!(
            "Grafana dashboard ({} panels, uid {}): {}",
            dashboard.panels.len(),
            uid(profile),
            path.display()
        ));
    }
    if let Some(path) = &args.prometheus_rules {
        let groups = alert_rules(&dashboard, profile);
        let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
        write_whole(path, &rules_yaml(&dashboard, profile))?;
        wrote.push(format!(
            "Prometheus alerting rules ({} groups, {rules} rules): {}",
            groups.len(),
            path.display()
        ));
    }
    if let Some((source, file)) = &cluster {
        let targets = targets(file);
        if let Some(path) = &args.prometheus_targets {
            let mut text =
                serde_json::to_string_pretty(&file_sd(&targets)).context("encoding targets")?;
            text.push('\n');
            write_whole(path, &text)?;
            wrote.push(format!(
                "Prometheus file_sd targets ({} endpoints): {}",
                targets.len(),
                path.display()
            ));
        }
        if let Some(path) = &args.prometheus_config {
            // Prometheus reads relative rule_files from the config's directory: give it
            // the absolute path.
            let rule_files = match &args.prometheus_rules {
                Some(rules) => vec![absolute(rules)?.display().to_string()],
                None => Vec::new(),
            };
            let text = scrape_config(
                &targets,
                dashboard.timing(profile),
                &rule_files,
                &source.display().to_string(),
            );
            write_whole(path, &text)?;
            wrote.push(format!(
                "Prometheus configuration ({} endpoints{}): {}",
                targets.len(),
                if rule_files.is_empty() {
                    ""
                } else {
                    ", loading the rules"
                },
                path.display()
            ));
        }
    }
    println!("faultline dashboards: {} profile", profile.as_str());
    for line in wrote {
        println!("  wrote {line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The cluster file at `path`, or in the directory `path`.
fn read_cluster(path: &Path) -> anyhow::Result<(PathBuf, ClusterFile)> {
    let path = if path.is_dir() {
        path.join("cluster.json")
    } else {
        path.to_owned()
    };
    if !path.exists() {
        bail!(
            "{} does not exist: give the cluster.json of a demo cluster, or its state directory",
            path.display()
        );
    }
    let file = ClusterFile::read(&path)?;
    if file.members.is_empty() {
        bail!("{} lists no cluster members", path.display());
    }
    Ok((path, file))
}

/// Every `/metrics` endpoint of the cluster: agents' admin listeners (labelled with
/// the node they front), nodes' APIs, gateways', workers' and payments' listeners.
fn targets(file: &ClusterFile) -> Vec<Target> {
    let mut targets = Vec::new();
    for m in &file.members {
        targets
            .push(Target::new(Job::Agents, m.agent_admin.to_string()).with_label("node", &m.name));
        targets.push(Target::new(Job::Nodes, m.api.to_string()));
    }
    let services = file
        .members
        .iter()
        .flat_map(|m| [&m.gateway, &m.worker])
        .chain(std::iter::once(&file.payments))
        .flatten();
    targets.extend(services.map(|s| Target::new(Job::Services, s.addr.to_string())));
    targets
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`, so a
/// Prometheus watching the file (file_sd) or reloading never reads half of it.
fn write_whole(path: &Path, text: &str) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let mut temporary = name.to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary);
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::rename(&temporary, path).with_context(|| {
        let _ = std::fs::remove_file(&temporary);
        format!("renaming {} to {}", temporary.display(), path.display())
    })
}
