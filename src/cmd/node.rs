//! `faultline node`: one demo-cluster member (Raft, state machine, status) as a process.
//!
//! ```text
//!  agent inbound ─► --listen (this node's API)      this node ─► --via (agent outbound) ─► peers by name
//!  data: --data DIR (Raft log, snapshot)             --init: make node-1..node-N the cluster on first start
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use faultline_cluster::node::{Node, NodeConfig};
use faultline_cluster::raft::{NodeId, Route};
use tokio::net::TcpListener;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// This node's Raft id: node N is `node-N` to its peers.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=9))]
    id: NodeId,
    /// Cluster size: members are node-1 … node-N.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// The node's API. Port 0 picks a free port (printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The sidecar agent's outbound listener: peers are called through it, by name.
    #[arg(long, value_name = "ADDR", conflicts_with = "peers")]
    via: Option<SocketAddr>,
    /// Without an agent: a JSON file mapping peer names to their API addresses,
    /// {"node-2": "127.0.0.1:7002"}.
    #[arg(long, value_name = "FILE")]
    peers: Option<PathBuf>,
    /// Where the Raft log and snapshot live (created if missing).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Make node-1 … node-N the cluster if it has no membership yet (give it to one node).
    #[arg(long)]
    init: bool,
    /// Export the node's spans (Raft, queue, KV operations) to this OTLP/gRPC endpoint,
    /// e.g. http://127.0.0.1:4317. Without it nothing is exported.
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.id <= args.nodes,
        "--id {} is not a member of a {}-node cluster (ids are 1 to {})",
        args.id,
        args.nodes,
        args.nodes
    );
    let route = match (args.via, &args.peers) {
        (Some(agent), _) => Route::Via(agent),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let peers: HashMap<String, SocketAddr> =
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{}: expected {{\"node-2\": \"127.0.0.1:7002\", …}}",
                        path.display()
                    )
                })?;
            Route::Direct(peers)
        }
        (None, None) => anyhow::bail!(
            "say how to reach the peers: --via AGENT_OUTBOUND_ADDR, or --peers FILE without an agent"
        ),
    };
    let config = NodeConfig {
        id: args.id,
        members: (1..=args.nodes).collect(),
        data_dir: args.data,
        route,
        initialize: args.init,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let name = faultline_cluster::raft::node_name(args.id);
    let telemetry = runtime.block_on(async {
        faultline_cluster::telemetry::init("faultline-node", &name, args.otlp.as_deref())
    })?;
    let served = runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let node = Node::start(config).await?;
        eprintln!("faultline node: {}", node.describe(addr));
        node.serve(listener, crate::cmd::record::stop_signal(None))
            .await
            .context("serving the node API")?;
        eprintln!("faultline node: stopped");
        anyhow::Ok(ExitCode::SUCCESS)
    });
    // Outside async code, with the runtime (and its gRPC client) still alive.
    telemetry.shutdown();
    served
}
