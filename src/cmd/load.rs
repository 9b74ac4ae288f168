//! `faultline load`: open-loop traffic against the demo's gateways, with a client-side
//! history for the KV checkers. The decisions are `faultline_cluster::load`'s; this is
//! the clock, the tasks and the printing.
//!
//! ```text
//!  Arrivals ─► sleep until the arrival ─► Planner::next ─┬─ fewer than --max-in-flight in flight ─► task: GatewayClient::send
//!                                                        └─ else: shed (counted, not sent)               │ Done
//!  Tally, latency histograms, Planner::acknowledged ◄──────────────────────────────────────────────────────┘
//!  --duration / Ctrl-C / SIGTERM ─► no new arrivals; in-flight requests get --timeout + 1 s (at most 3 s) to end,
//!                                   then are abandoned (recorded info) ─► history saved ─► summary
//! ```

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use faultline_cluster::load::{
    ArrivalProcess, Arrivals, GatewayClient, HistoryFile, Latency, Mix, Op, OrderHistory, Planner,
    Request, Run, Tally, Target,
};
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cmd::record::stop_signal;
use crate::fmt::OutputFormat;

/// The longest the requests in flight get to end after the stop: within the 5 s a
/// supervisor (`faultline demo`) waits after SIGTERM, so the history is always saved.
/// Those still running are recorded `info`, which is always safe.
const MAX_DRAIN: Duration = Duration::from_secs(3);

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A gateway, HOST:PORT. Repeat for several: requests rotate over them.
    #[arg(long = "target", value_name = "ADDR", required = true)]
    targets: Vec<String>,
    /// Requests per second, scheduled by the clock whether or not earlier ones answered.
    #[arg(long, value_name = "R", default_value_t = 20.0)]
    rate: f64,
    /// How arrivals are spread: random gaps averaging 1/R (poisson) or exactly 1/R apart.
    #[arg(long, value_enum, value_name = "PROCESS", default_value_t = ArrivalsArg::Poisson)]
    arrivals: ArrivalsArg,
    /// Stop after this long (30s, 5m); default: at Ctrl-C or SIGTERM.
    #[arg(long, value_name = "D", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Fraction of requests that are POST /orders; the rest GET an order this run created.
    #[arg(long, value_name = "F", default_value_t = 0.3)]
    post_share: f64,
    /// Fraction of GETs aimed at one single order (the hot-key scenario).
    #[arg(long, value_name = "F", default_value_t = 0.0)]
    hot_key_share: f64,
    /// An order is read from this long after its POST was answered.
    #[arg(long, value_name = "N", default_value_t = 0)]
    read_delay_ms: u64,
    /// GETs choose among this many most recently created (readable) orders.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    read_recent: u32,
    /// Per request, answer included: past it the request counts as a timeout.
    #[arg(long, value_name = "D", default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Requests in flight at most; an arrival beyond it is not sent and counts as shed.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: u32,
    /// Write every order write and read here (JSON lines, History<KvOp, KvRet>) for the
    /// KV checkers.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Export a client span per request to this OTLP/gRPC endpoint (service `load`).
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Seed of the arrival times and the operation mix (default: random, printed).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// The summary at the end, for people or machines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ArrivalsArg {
    Poisson,
    Uniform,
}

/// Everything the run needs, validated.
struct Plan {
    targets: Vec<Target>,
    arrivals: Arrivals,
    planner: Planner,
    client: GatewayClient,
    history: Option<OrderHistory>,
    max_in_flight: usize,
    duration: Option<Duration>,
    /// How long in-flight requests may take to end after the stop.
    drain: Duration,
}

/// One request ended (sent by its task to the loop).
struct Done {
    op: Op,
    latency: Duration,
    error: Option<String>,
    /// An order now known to be stored, and when (since the start).
    written: Option<(String, Duration)>,
}

/// What the loop counted.
struct Counted {
    tally: Tally,
    latencies: [Histogram<u64>; 2],
    planner: Planner,
}

impl Counted {
    fn account(&mut self, done: Done) {
        self.tally.completed(done.op, done.error.as_deref());
        if done.error.is_none() {
            let micros = u64::try_from(done.latency.as_micros()).unwrap_or(u64::MAX);
            // An auto-resizing histogram takes any value.
            let _ = self.latencies[done.op.index()].record(micros.max(1));
        }
        if let Some((id, at)) = done.written {
            self.planner.acknowledged(id, at);
        }
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let targets = args
        .targets
        .iter()
        .map(|t| t.parse::<Target>())
        .collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!args.timeout.is_zero(), "--timeout must be longer than 0");
    let seed = args
        .seed
        .unwrap_or_else(faultline_cluster::load::fresh_seed);
    let process = match args.arrivals {
        ArrivalsArg::Poisson => ArrivalProcess::Poisson,
        ArrivalsArg::Uniform => ArrivalProcess::Uniform,
    };
    let arrivals = Arrivals::new(args.rate, process, seed)?;
    let mix = Mix {
        post_share: args.post_share,
        hot_key_share: args.hot_key_share,
        read_delay: Duration::from_millis(args.read_delay_ms),
        read_recent: args.read_recent as usize,
    }
    .validate()?;
    let unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run_tag = faultline_cluster::load::run_tag(seed, unix_ns);
    if let Some(path) = &args.history {
        // Fail now rather than after a long run.
        File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let plan = Plan {
        arrivals,
        planner: Planner::new(mix, run_tag.clone(), seed),
        client: GatewayClient::new(args.timeout)?,
        history: args.history.as_ref().map(|_| OrderHistory::new()),
        max_in_flight: args.max_in_flight as usize,
        duration: args.duration,
        drain: (args.timeout + Duration::from_secs(1)).min(MAX_DRAIN),
        targets: targets.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let telemetry = runtime.block_on(async {
        faultline_cluster::telemetry::init("load", "load", args.otlp.as_deref())
    })?;
    let names: Vec<String> = targets.iter().map(Target::to_string).collect();
    eprintln!(
        "faultline load: run {run_tag} (seed {seed}), {}/s to {}; {}",
        args.rate,
        names.join(", "),
        match args.duration {
            Some(d) => format!("for {}", humantime::format_duration(d)),
            None => "Ctrl-C to stop".to_owned(),
        }
    );
    let history = plan.history.clone();
    let (counted, elapsed) = runtime.block_on(drive(plan));
    let run = Run {
        run: run_tag,
        seed,
        targets: names,
        rate: args.rate,
        arrival_process: process,
        elapsed_s: elapsed.as_secs_f64(),
    };
    let result = report(&args, counted, history, run);
    // Outside async code, with the runtime (and its gRPC client) still alive.
    telemetry.shutdown();
    result
}

/// Saves the history and prints the summary.
fn report(
    args: &Args,
    counted: Counted,
    history: Option<OrderHistory>,
    run: Run,
) -> anyhow::Result<ExitCode> {
    let mut summary = counted.tally.summary(run);
    for op in Op::ALL {
        summary.ops[op.index()].latency = latency(&counted.latencies[op.index()]);
    }
    if let (Some(path), Some(history)) = (&args.history, history) {
        let history = history.history();
        history.save(path)?;
        let (ok, fail, info) = history.outcome_counts();
        summary.history = Some(HistoryFile {
            path: path.display().to_string(),
            operations: history.len(),
            ok,
            fail,
            info,
        });
    }
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        OutputFormat::Text => print!("{summary}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn latency(h: &Histogram<u64>) -> Option<Latency> {
    let ms = |micros: u64| micros as f64 / 1000.0;
    (!h.is_empty()).then(|| Latency {
        p50_ms: ms(h.value_at_quantile(0.5)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    })
}

/// The open loop: one arrival after another on the clock, until the stop; then the
/// requests in flight get `plan.drain` to end. Returns the counts and the time from the
/// start to the stop.
async fn drive(plan: Plan) -> (Counted, Duration) {
    let Plan {
        targets,
        mut arrivals,
        planner,
        client,
        history,
        max_in_flight,
        duration,
        drain,
    } = plan;
    // Auto-resizing, 3 significant digits: creation cannot fail.
    let histogram =
        || Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits are valid"));
    let mut counted = Counted {
        tally: Tally::new(),
        latencies: [histogram(), histogram()],
        planner,
    };
    let targets: Arc<[Target]> = targets.into();
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let stop = stop_signal(duration);
    tokio::pin!(stop);
    'arrivals: loop {
        let due = start + arrivals.next_offset();
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break 'arrivals,
                Some(done) = done_rx.recv() => counted.account(done),
                () = tokio::time::sleep_until(due) => break,
            }
        }
        while tasks.try_join_next().is_some() {}
        let planned = counted.planner.next(start.elapsed());
        let op = planned.op();
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            counted.tally.shed(op);
            continue;
        };
        counted.tally.sent(op);
        // `targets` is not empty (clap requires one), so the index is in range.
        let target = targets[(planned.seq % targets.len() as u64) as usize].clone();
        let (client, history, done_tx) = (client.clone(), history.clone(), done_tx.clone());
        tasks.spawn(async move {
            let begun = Instant::now();
            let verdict = client.send(&target, &planned, history.as_ref()).await;
            let latency = begun.elapsed();
            let written = match &planned.request {
                Request::Create(order) if verdict.written => {
                    Some((order.order_id.clone(), start.elapsed()))
                }
                Request::Create(_) | Request::Read(_) => None,
            };
            drop(slot);
            let _ = done_tx.send(Done {
                op,
                latency,
                error: verdict.error,
                written,
            });
        });
    }
    let elapsed = start.elapsed();
    // The loop's own sender: once the tasks have dropped theirs, `recv` says so.
    drop(done_tx);
    let deadline = Instant::now() + drain;
    let interrupted = stop_signal(None);
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            biased;
            () = &mut interrupted => break,
            done = tokio::time::timeout_at(deadline, done_rx.recv()) => match done {
                Ok(Some(done)) => counted.account(done),
                Ok(None) | Err(_) => break,
            },
        }
    }
    // Whatever is still in flight is abandoned: its history entry stays `info`.
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    (counted, elapsed)
}
