//! `faultline bench failover`: how long a Raft cluster of real `faultline node`
//! processes takes to serve writes again after its leader is killed with SIGKILL.
//!
//! ```text
//!  start N nodes (127.0.0.1, direct peers) ─► wait for a leader that commits
//!  repeat: kill -9 the leader ─► poll the survivors: first reported leader (election),
//!          first acknowledged write (serving) ─► restart the victim, let it catch up
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use faultline_cluster::supervisor::free_ports;
use serde::Serialize;

use crate::fmt::OutputFormat;

#[derive(Debug, clap::Args)]
pub(crate) struct FailoverArgs {
    /// Leader kills to measure.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Cluster size (3 or 5).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
    nodes: u64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// The nodes, killed when dropped (no orphans, also on error).
struct Cluster {
    exe: std::path::PathBuf,
    dir: tempfile::TempDir,
    addrs: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    fn start(nodes: u64) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let addrs = free_ports(usize::try_from(nodes)?)?;
        let peers: serde_json::Map<String, serde_json::Value> = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| (format!("node-{}", i + 1), addr.to_string().into()))
            .collect();
        std::fs::write(dir.path().join("peers.json"), serde_json::to_vec(&peers)?)?;
        let mut cluster = Cluster {
            exe: std::env::current_exe()?,
            dir,
            addrs,
            children: Vec::new(),
        };
        for index in 0..nodes as usize {
            let child = cluster.spawn(index)?;
            cluster.children.push(Some(child));
        }
        Ok(cluster)
    }

    fn spawn(&self, index: usize) -> anyhow::Result<Child> {
        let id = index + 1;
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{id}.log")))?;
        let mut command = Command::new(&self.exe);
        command
            .args(["node", "--id", &id.to_string()])
            .args(["--nodes", &self.addrs.len().to_string()])
            .args(["--listen", &self.addrs[index].to_string()])
            .arg("--peers")
            .arg(self.dir.path().join("peers.json"))
            .arg("--data")
            .arg(self.dir.path().join(format!("node-{id}")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if id == 1 {
            command.arg("--init");
        }
        command
            .spawn()
            .with_context(|| format!("starting node-{id}"))
    }

    fn logs(&self) -> &Path {
        self.dir.path()
    }
}

#[derive(Debug, Serialize)]
struct Round {
    killed: String,
    /// Until a survivor reported itself leader.
    election_ms: f64,
    /// Until a write was acknowledged.
    serving_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    nodes: u64,
    rounds: Vec<Round>,
    serving_ms_median: f64,
    serving_ms_p90: f64,
    serving_ms_max: f64,
    election_ms_median: f64,
}

async fn status(client: &reqwest::Client, addr: SocketAddr) -> Option<serde_json::Value> {
    let response = client
        .get(format!("http://{addr}/status"))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

async fn write(client: &reqwest::Client, addr: SocketAddr, value: &str) -> bool {
    let op = serde_json::json!({"put": {"key": "bench/failover", "value": value}});
    matches!(
        client.post(format!("http://{addr}/sm/ops")).json(&op).send().await,
        Ok(r) if r.status().is_success()
    )
}

/// The index of the node that says it leads and can commit a write.
async fn settled_leader(
    client: &reqwest::Client,
    cluster: &Cluster,
    limit: Duration,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    while started.elapsed() < limit {
        for (index, addr) in cluster.addrs.iter().enumerate() {
            if let Some(s) = status(client, *addr).await
                && s["role"] == "leader"
                && write(client, *addr, "settle").await
            {
                // Everyone caught up: every node knows this leader and applied its writes.
                let commit = s["commit_index"].as_u64().unwrap_or(0);
                let mut all = true;
                for other in &cluster.addrs {
                    let caught_up = status(client, *other).await.is_some_and(|o| {
                        o["leader"] == s["node"] && o["applied_index"].as_u64() >= Some(commit)
                    });
                    all &= caught_up;
                }
                if all {
                    return Ok(index);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("no settled leader within {limit:?}")
}

pub(crate) fn run(args: FailoverArgs) -> anyhow::Result<ExitCode> {
    let mut cluster = Cluster::start(args.nodes)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rounds = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(300))
            .build()?;
        let mut rounds = Vec::new();
        for round in 0..args.rounds {
            let leader = settled_leader(&client, &cluster, Duration::from_secs(30))
                .await
                .with_context(|| format!("logs in {}", cluster.logs().display()))?;
            if let Some(mut child) = cluster.children[leader].take() {
                child.kill()?;
                child.wait()?;
            }
            let killed_at = Instant::now();
            let survivors: Vec<SocketAddr> = cluster
                .addrs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != leader)
                .map(|(_, a)| *a)
                .collect();
            let mut election = None;
            let serving = loop {
                if killed_at.elapsed() > Duration::from_secs(30) {
                    bail!("no new leader within 30 s of killing node-{}", leader + 1);
                }
                for addr in &survivors {
                    if election.is_none()
                        && let Some(s) = status(&client, *addr).await
                        && s["role"] == "leader"
                    {
                        election = Some(killed_at.elapsed());
                    }
                }
                if election.is_some() && write(&client, survivors[0], &round.to_string()).await {
                    break killed_at.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let election = election.unwrap_or(serving);
            eprintln!(
                "round {}: killed node-{}: leader after {:.0} ms, serving after {:.0} ms",
                round + 1,
                leader + 1,
                ms(election),
                ms(serving)
            );
            rounds.push(Round {
                killed: format!("node-{}", leader + 1),
                election_ms: ms(election),
                serving_ms: ms(serving),
            });
            cluster.children[leader] = Some(cluster.spawn(leader)?);
        }
        anyhow::Ok(rounds)
    })?;
    let mut serving: Vec<f64> = rounds.iter().map(|r| r.serving_ms).collect();
    let mut election: Vec<f64> = rounds.iter().map(|r| r.election_ms).collect();
    serving.sort_by(f64::total_cmp);
    election.sort_by(f64::total_cmp);
    let report = Report {
        nodes: args.nodes,
        serving_ms_median: quantile(&serving, 0.5),
        serving_ms_p90: quantile(&serving, 0.9),
        serving_ms_max: serving.last().copied().unwrap_or(0.0),
        election_ms_median: quantile(&election, 0.5),
        rounds,
    };
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => println!(
            "failover, {} nodes, {} leader kills (kill -9): new leader serving after median {:.0} ms, p90 {:.0} ms, max {:.0} ms (elected: median {:.0} ms)",
            report.nodes,
            report.rounds.len(),
            report.serving_ms_median,
            report.serving_ms_p90,
            report.serving_ms_max,
            report.election_ms_median
        ),
    }
    drop(cluster);
    Ok(ExitCode::SUCCESS)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
