//! `faultline bench cluster`: operations per second of a local demo cluster — real
//! `faultline node` and `faultline agent` processes — under closed-loop clients.
//!
//! ```text
//!  C clients ─► random node's agent inbound ─► node (followers forward to the leader) ─► Raft
//!  queue phase: enqueue, then receive up to 10 and ack each
//! ```
//!
//! Every request takes the path users' requests take (through the agents, tracing on),
//! so the figures include the sidecars' cost.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use faultline_cluster::sm::{Op, Response};
use faultline_cluster::supervisor::{Cluster, ClusterSpec};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::fmt::OutputFormat;

#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
    nodes: u64,
    /// Concurrent closed-loop clients.
    #[arg(long, default_value_t = 16)]
    clients: u64,
    /// How long each phase runs.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// OTLP endpoint for the agents' spans (default: none listening, spans dropped).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9")]
    otlp: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(Debug, Serialize)]
struct OpFigures {
    op: &'static str,
    count: u64,
    errors: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Latencies (µs) of successful calls, and the count of failed ones.
#[derive(Debug)]
struct Tally {
    latency: Histogram<u64>,
    errors: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // Auto-resizing, 3 significant digits: creation cannot fail.
            latency: Histogram::new(3)
                .unwrap_or_else(|_| unreachable!("3 significant digits are valid")),
            errors: 0,
        }
    }

    fn record(&mut self, elapsed: Duration, ok: bool) {
        if ok {
            let micros = u64::try_from(elapsed.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            // An auto-resizing histogram takes any value.
            let _ = self.latency.record(micros);
        } else {
            self.errors += 1;
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.errors += other.errors;
        let _ = self.latency.add(&other.latency);
    }

    fn figures(&self, op: &'static str, seconds: f64) -> OpFigures {
        let h = &self.latency;
        let (count, p50, p99) = (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        OpFigures {
            op,
            count,
            errors: self.errors,
            per_second: count as f64 / seconds,
            p50_ms: p50 as f64 / 1000.0,
            p99_ms: p99 as f64 / 1000.0,
        }
    }
}

async fn call(client: &reqwest::Client, node: std::net::SocketAddr, op: &Op) -> Option<Response> {
    let response = client
        .post(format!("http://{node}/sm/ops"))
        .json(op)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// One client: enqueue a message, receive up to 10, ack each; until `stop`.
async fn queue_client(
    id: u64,
    nodes: Vec<std::net::SocketAddr>,
    stop: Arc<AtomicBool>,
) -> [Tally; 3] {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let mut tallies = [Tally::new(), Tally::new(), Tally::new()];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let node = nodes[(n as usize + id as usize) % nodes.len()];
        let started = Instant::now();
        let enqueue = Op::Enqueue {
            queue: "bench".to_owned(),
            message_id: format!("c{id}-{n}"),
            body: "x".repeat(64),
        };
        let ok = matches!(
            call(&client, node, &enqueue).await,
            Some(Response::Enqueued(_))
        );
        tallies[0].record(started.elapsed(), ok);

        let started = Instant::now();
        let receive = Op::Receive {
            queue: "bench".to_owned(),
            consumer: format!("c{id}"),
            max: 10,
            visibility_ms: None,
        };
        let received = call(&client, node, &receive).await;
        tallies[1].record(started.elapsed(), received.is_some());
        if let Some(Response::Received(outcome)) = received {
            for delivery in outcome.messages {
                let started = Instant::now();
                let ack = Op::Ack {
                    queue: "bench".to_owned(),
                    receipt: delivery.receipt,
                };
                let ok = matches!(call(&client, node, &ack).await, Some(Response::Acked(_)));
                tallies[2].record(started.elapsed(), ok);
            }
        }
    }
    tallies
}

pub(crate) fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::up(ClusterSpec {
        nodes: args.nodes,
        dir: dir.path().to_owned(),
        exe: std::env::current_exe()?,
        otlp: Some(args.otlp.clone()),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = runtime.block_on(async {
        let admin = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        cluster
            .wait_healthy(&admin, Duration::from_secs(30))
            .await
            .with_context(|| format!("logs in {}", dir.path().join("logs").display()))?;
        let nodes: Vec<_> = cluster
            .file()
            .members
            .iter()
            .map(|m| m.agent_inbound)
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let clients: Vec<_> = (0..args.clients)
            .map(|id| tokio::spawn(queue_client(id, nodes.clone(), Arc::clone(&stop))))
            .collect();
        tokio::time::sleep(args.duration).await;
        stop.store(true, Ordering::Relaxed);
        let mut totals = [Tally::new(), Tally::new(), Tally::new()];
        for client in clients {
            for (total, tally) in totals.iter_mut().zip(client.await?.iter()) {
                total.merge(tally);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let [enqueue, receive, ack] = totals;
        anyhow::Ok(vec![
            enqueue.figures("queue enqueue", seconds),
            receive.figures("queue receive (≤10)", seconds),
            ack.figures("queue ack", seconds),
        ])
    })?;
    cluster.down();
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&figures)?),
        OutputFormat::Text => {
            println!(
                "{} nodes behind agents, {} clients, {:?} per phase (each request to a random node; followers forward):",
                args.nodes, args.clients, args.duration
            );
            println!(
                "{:<22} {:>10} {:>8} {:>10} {:>9} {:>9}",
                "operation", "count", "errors", "per s", "p50 ms", "p99 ms"
            );
            for f in &figures {
                println!(
                    "{:<22} {:>10} {:>8} {:>10.0} {:>9.2} {:>9.2}",
                    f.op, f.count, f.errors, f.per_second, f.p50_ms, f.p99_ms
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
