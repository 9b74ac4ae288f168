//! `faultline agent`: the sidecar in front of one node.
//!
//! ```text
//!  callers ─► inbound listener ─► node (--upstream)
//!  node ─► outbound listener (Host: peer name) ─► peer's agent (--peers FILE)
//!  admin listener: /metrics, /status, /toxics          spans ─► OTLP (--otlp)
//!  access log: one JSON line per request ─► stdout (--access-log)
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use faultline_agent::Direction;
use faultline_agent::access_log::AccessLog;
use faultline_agent::admin::{Admin, check_bind};
use faultline_agent::export::{ExportConfig, otlp_exporter, start};
use faultline_agent::metrics::Metrics;
use faultline_agent::proxy::{Peers, Proxy, ProxyConfig};
use faultline_agent::toxics::Toxics;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The node this agent fronts, as peers files name it.
    #[arg(long, value_name = "NAME")]
    node: String,
    /// The node's own address: where inbound requests are forwarded.
    #[arg(long, value_name = "ADDR")]
    upstream: SocketAddr,
    /// Inbound listener (traffic for the node). Port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    inbound: SocketAddr,
    /// Outbound listener (the node's calls to peers, named by the Host header).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    outbound: SocketAddr,
    /// Admin listener: /metrics, /status, /toxics. Anything but loopback needs --admin-token.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    admin: SocketAddr,
    /// Bearer token for the admin API (required off loopback; /metrics stays open).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FAULTLINE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// JSON file mapping peer names to their agents' inbound addresses:
    /// {"node-2": "127.0.0.1:7102"}.
    #[arg(long, value_name = "FILE")]
    peers: Option<PathBuf>,
    /// OTLP/gRPC endpoint for the agent's spans.
    #[arg(
        long,
        value_name = "URL",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        default_value = "http://127.0.0.1:4317"
    )]
    otlp: String,
    /// Time allowed for the upstream's response headers.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    response_timeout: Duration,
    /// Longest a client may stall sending its request or reading its response.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    client_timeout: Duration,
    /// Access log, one JSON line per request: `-` for standard output, a file to append
    /// to, or `off`.
    #[arg(long, value_name = "FILE", default_value = "-")]
    access_log: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_bind(args.admin, args.admin_token.as_deref())?;
    let peers = match &args.peers {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Peers::from_json(&text).with_context(|| format!("{}", path.display()))?
        }
        None => Peers::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(agent(args, peers))
}

async fn agent(args: Args, peers: Peers) -> anyhow::Result<ExitCode> {
    let bind = |addr: SocketAddr, what: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} ({what})"))
    };
    let inbound = bind(args.inbound, "inbound").await?;
    let outbound = bind(args.outbound, "outbound").await?;
    let admin_listener = bind(args.admin, "admin").await?;

    let metrics = Metrics::new();
    let toxics = Arc::new(Mutex::new(Toxics::new()));
    let exporter = otlp_exporter(&args.otlp, &args.node, Duration::from_secs(10))
        .with_context(|| format!("OTLP exporter for {}", args.otlp))?;
    let (spans, exporting) = start(exporter, ExportConfig::default(), metrics.clone());
    let (access_log, logging) = match args.access_log.as_str() {
        "off" => (None, None),
        "-" => {
            let (log, writing) = AccessLog::stdout(metrics.clone())?;
            (Some(log), Some(writing))
        }
        path => {
            let (log, writing) = AccessLog::file(Path::new(path), metrics.clone())
                .with_context(|| format!("opening the access log {path}"))?;
            (Some(log), Some(writing))
        }
    };
    let mut config = ProxyConfig::new(args.node.clone(), args.upstream, peers);
    config.response_timeout = args.response_timeout;
    config.client_timeout = args.client_timeout;
    let proxy = Proxy::new(
        config,
        Arc::clone(&toxics),
        metrics.clone(),
        spans,
        access_log,
    );
    let admin = Admin::new(
        toxics,
        metrics,
        args.node.clone(),
        env!("CARGO_PKG_VERSION"),
    )
    .with_token(args.admin_token);

    eprintln!("faultline agent: node {} at {}", args.node, args.upstream);
    eprintln!(
        "faultline agent: inbound listening on {}",
        inbound.local_addr()?
    );
    eprintln!(
        "faultline agent: outbound listening on {}",
        outbound.local_addr()?
    );
    eprintln!(
        "faultline agent: admin listening on {}",
        admin_listener.local_addr()?
    );
    eprintln!("faultline agent: spans to {}", args.otlp);

    let (stop, stopped) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for (listener, direction) in [
        (inbound, Direction::Inbound),
        (outbound, Direction::Outbound),
    ] {
        let proxy = proxy.clone();
        let stopped = stopped.clone();
        tasks.spawn(async move { proxy.serve(listener, direction, stopped).await });
    }
    let mut admin_stopped = stopped.clone();
    tasks.spawn(async move {
        let shutdown = async move {
            let _ = admin_stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = admin.serve(admin_listener, shutdown).await {
            eprintln!("faultline agent: admin listener failed: {e}");
        }
    });
    crate::cmd::record::stop_signal(None).await;
    eprintln!("faultline agent: stopping");
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    // The proxy held the last span sinks and log handles; with them gone the batcher
    // and the log writer write out what they hold and end.
    drop(proxy);
    let _ = tokio::time::timeout(Duration::from_secs(5), exporting.shutdown()).await;
    if let Some(writing) = logging {
        let _ = tokio::task::spawn_blocking(move || writing.finish()).await;
    }
    Ok(ExitCode::SUCCESS)
}
