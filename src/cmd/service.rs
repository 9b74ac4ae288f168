//! `faultline service gateway|worker|payments`: the demo's services as processes
//! (docs/services.md). Gateways and workers reach their node — and payments — through
//! the node's agent (`--via`); payments is the third party, reached directly.
//!
//! ```text
//!  load ─► gateway (--listen) ─┐
//!  worker (admin: --listen) ───┴─► --via (agent-N outbound) ─► node-N, payments
//!  payments (--listen)
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use faultline_cluster::raft::{NodeId, Route, node_name};
use faultline_cluster::resilience::ResilienceSettings;
use faultline_cluster::services::node_client::NodeClient;
use faultline_cluster::services::payments::{Payments, PaymentsSettings};
use faultline_cluster::services::{self, gateway, payments, worker};
use faultline_cluster::telemetry;
use tokio::net::TcpListener;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Service {
    /// The order API: POST /orders, GET /orders/{id}.
    Gateway(OnNode),
    /// Consumes payment jobs and charges them at payments through retries, a circuit
    /// breaker and a bulkhead; --listen serves its admin API.
    Worker(WorkerArgs),
    /// The simulated third-party payment provider.
    Payments(PaymentsArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct OnNode {
    /// The node this instance runs on (its `service.instance.id`, and the node it calls).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=9))]
    node: NodeId,
    /// Where to serve. Port 0 picks a free port (printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The node's agent, outbound listener: the node and payments are called through it.
    #[arg(long, value_name = "ADDR")]
    via: SocketAddr,
    /// Export spans to this OTLP/gRPC endpoint (e.g. http://127.0.0.1:4317).
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    on: OnNode,
    /// Retry, breaker and bulkhead settings as JSON (a file); defaults otherwise.
    /// They can be changed at runtime with PUT /admin/resilience.
    #[arg(long, value_name = "FILE")]
    resilience: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PaymentsArgs {
    /// Where to serve. Port 0 picks a free port (printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Export spans to this OTLP/gRPC endpoint.
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Settings as JSON (a file: capacity, latency_ms, jitter_ms, error_rate,
    /// queue_limit); defaults otherwise. Changeable at runtime: PUT /admin/payments.
    #[arg(long, value_name = "FILE")]
    settings: Option<std::path::PathBuf>,
    /// Seed for latency jitter and injected failures (random otherwise).
    #[arg(long)]
    seed: Option<u64>,
}

pub(crate) fn run(service: Service) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (name, instance, otlp) = match &service {
        Service::Gateway(on) => ("gateway", node_name(on.node), on.otlp.clone()),
        Service::Worker(w) => ("worker", node_name(w.on.node), w.on.otlp.clone()),
        Service::Payments(p) => ("payments", "payments".to_owned(), p.otlp.clone()),
    };
    let telemetry =
        runtime.block_on(async { telemetry::init(name, &instance, otlp.as_deref()) })?;
    let served = runtime.block_on(serve(service));
    // Outside async code, with the runtime (and its gRPC client) still alive.
    telemetry.shutdown();
    served
}

async fn bind(addr: SocketAddr, name: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("{name}: cannot listen on {addr}"))?;
    eprintln!("faultline {name}: listening on {}", listener.local_addr()?);
    Ok(listener)
}

fn read_json(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

async fn serve(service: Service) -> anyhow::Result<ExitCode> {
    let stop = crate::cmd::record::stop_signal(None);
    match service {
        Service::Gateway(on) => {
            let node = NodeClient::new(Route::Via(on.via), node_name(on.node))?;
            let listener = bind(on.listen, "gateway").await?;
            let app = gateway::router(gateway::Gateway::new(node));
            services::serve(listener, app, stop)
                .await
                .context("serving the gateway")?;
        }
        Service::Worker(args) => {
            let settings = match &args.resilience {
                Some(path) => ResilienceSettings::from_json(&read_json(path)?)
                    .with_context(|| format!("{}", path.display()))?,
                None => ResilienceSettings::default(),
            };
            let node = NodeClient::new(Route::Via(args.on.via), node_name(args.on.node))?;
            let worker = worker::Worker::new(node, settings)
                .map_err(|e| anyhow::anyhow!("worker settings: {e}"))?;
            let listener = bind(args.on.listen, "worker").await?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            let consuming = tokio::spawn(Arc::clone(&worker).run(async move {
                let mut rx = rx;
                let _ = rx.wait_for(|stop| *stop).await;
            }));
            services::serve(listener, worker::router(worker), stop)
                .await
                .context("serving the worker's admin API")?;
            let _ = tx.send(true);
            let _ = consuming.await;
        }
        Service::Payments(args) => {
            let settings = match &args.settings {
                Some(path) => serde_json::from_slice::<PaymentsSettings>(&read_json(path)?)
                    .with_context(|| format!("{}", path.display()))?,
                None => PaymentsSettings::default(),
            };
            let payments = Payments::new(settings, args.seed)
                .map_err(|e| anyhow::anyhow!("payments settings: {e}"))?;
            let listener = bind(args.listen, "payments").await?;
            services::serve(listener, payments::router(payments), stop)
                .await
                .context("serving payments")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
