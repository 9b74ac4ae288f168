//! `faultline`: the one binary. Each subcommand wires the library crates together; the
//! logic lives in the crates (see ARCHITECTURE.md).
//!
//! Exit codes: 0 ok, 1 findings at or above `--fail-on` (analysis commands), 2 usage or
//! input error (clap also exits 2 on bad arguments).

mod cmd;
mod fmt;
mod reading;

use std::process::ExitCode;

/// faultline allocates many small strings per span on every core (decoding captures,
/// receiving OTLP); mimalloc's thread-local free lists cut the time glibc's malloc spent
/// on cross-thread frees and consolidation, which was over 40 % of a read (measured
/// with `perf` on `faultline inspect`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version,
    about = "Debug distributed-system incidents from traces, replication lag, retry storms, DLQs and elections.",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The sidecar: a tracing, fault-injecting HTTP proxy in front of one node.
    Agent(cmd::agent::Args),
    /// One demo-cluster member: Raft with queues and leases, behind its agent.
    Node(cmd::node::Args),
    /// The demo cluster with the TUI attached; `demo up|status|down|scenario|heal`
    /// for the cluster headless.
    Demo(cmd::demo::DemoArgs),
    /// The terminal UI over live OTLP, a demo cluster's file, or a capture replayed.
    Tui(cmd::tui::Args),
    /// One of the demo's services: gateway, worker or payments.
    #[command(subcommand)]
    Service(cmd::service::Service),
    /// Open-loop traffic against the demo's gateways, with a client-side history.
    Load(cmd::load::Args),
    /// Receive OTLP (gRPC and HTTP) and write what arrives to a capture file.
    Record(cmd::record::Args),
    /// Describe capture files: formats, spans, traces, services, time range, problems.
    Inspect(cmd::inspect::Args),
    /// Diagnose captures: the likely incident, its root cause and onset, the findings
    /// and the traces that show them.
    Analyze(cmd::analyze::Args),
    /// Panels and alert rules for Grafana and Prometheus: `dashboards export`.
    #[command(subcommand)]
    Dashboards(cmd::dashboards::Dashboards),
    /// Incident playbooks: list them, read one, or follow one step by step against a
    /// capture or a running demo cluster.
    #[command(subcommand)]
    Playbook(cmd::playbook::PlaybookCommand),
    /// Benchmarks: capture reading, OTLP ingest, failover, cluster, analysis questions.
    #[command(subcommand)]
    Bench(cmd::bench::Bench),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent(args) => cmd::agent::run(args),
        Command::Node(args) => cmd::node::run(args),
        Command::Service(service) => cmd::service::run(service),
        Command::Demo(demo) => cmd::demo::run(demo),
        Command::Tui(args) => cmd::tui::run(args),
        Command::Load(args) => cmd::load::run(args),
        Command::Record(args) => cmd::record::run(args),
        Command::Inspect(args) => cmd::inspect::run(args),
        Command::Analyze(args) => cmd::analyze::run(args),
        Command::Dashboards(command) => cmd::dashboards::run(command),
        Command::Playbook(command) => cmd::playbook::run(command),
        Command::Bench(bench) => cmd::bench::run(bench),
    };
    match result {
        Ok(code) => code,
        // Exit code 1 is reserved for "findings at or above --fail-on"; anything that
        // stopped the command from doing its job is 2.
        Err(error) => {
            // Not `eprintln!`: it panics when stderr is gone (a closed terminal).
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "faultline: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
