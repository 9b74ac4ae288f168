//! `faultline bench cluster`: operations per second of a local demo cluster — real
//! `faultline node` and `faultline agent` processes — under closed-loop clients.
//!
//! ```text
//!  C clients ─► next node's agent inbound ─► node ─┬─ queue: followers forward to the leader ─► Raft
//!                                                   └─ KV: this node coordinates ─► N replicas (via agents)
//!  queue phase   enqueue, then receive up to 10 and ack each         --duration
//!  KV fill       PUT keys 0, 1, … of --kv-keys once each, in order   until done or --duration
//!  KV put phase  PUT a key the fill reached, uniformly; default W    --duration
//!  KV get phase  GET a key the fill reached, uniformly; default R    --duration
//! ```
//!
//! Every request takes the path users' requests take (through the agents, tracing on),
//! so the figures include the sidecars' cost. No failure is dropped: each operation
//! counts its errors by kind (transport failure, or status and the API's error kind).
//! Every key the timed phases draw was written by the fill, so a GET answered 404 is an
//! error (a write lost, or one whose fill PUT failed), not a miss.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use faultline_cluster::sm::{Op, Response};
use faultline_cluster::supervisor::{Cluster, ClusterSpec};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::fmt::OutputFormat;

#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=5))]
    nodes: u64,
    /// Concurrent closed-loop clients (in every phase).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    clients: u64,
    /// How long each timed phase runs (queue; KV put; KV get).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Measure one workload only (default: the queue, then the KV).
    #[arg(long, value_enum, value_name = "WORKLOAD")]
    only: Option<Workload>,
    /// KV key space. The fill writes the keys in order, for at most `--duration`; the
    /// timed KV phases draw uniformly from the keys it reached.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    kv_keys: u64,
    /// OTLP endpoint for the agents' and nodes' spans (default: none listening, spans
    /// dropped).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9")]
    otlp: String,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

/// The workloads a run can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// The Raft store's queue: enqueue, receive, ack.
    Queue,
    /// The leaderless quorum KV: PUT and GET.
    Kv,
}

/// Bytes of every queue message body and KV value.
const PAYLOAD_BYTES: usize = 64;

#[derive(Debug, Serialize)]
struct OpFigures {
    op: String,
    count: u64,
    errors: u64,
    /// Failures by kind: `timeout`, `connect`, `503 unavailable`, `404 not_found`, …
    error_kinds: BTreeMap<String, u64>,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Latencies (µs) of successful calls, and the failed ones counted by kind.
#[derive(Debug)]
struct Tally {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // Auto-resizing, 3 significant digits: creation cannot fail.
            latency: Histogram::new(3)
                .unwrap_or_else(|_| unreachable!("3 significant digits are valid")),
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, elapsed: Duration, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                let micros = u64::try_from(elapsed.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1);
                // An auto-resizing histogram takes any value.
                let _ = self.latency.record(micros);
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    fn merge(&mut self, other: &Tally) {
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        let _ = self.latency.add(&other.latency);
    }

    fn figures(&self, op: String, seconds: f64) -> OpFigures {
        let h = &self.latency;
        let (count, p50, p99) = (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        OpFigures {
            op,
            count,
            errors: self.errors.values().sum(),
            error_kinds: self.errors.clone(),
            per_second: count as f64 / seconds,
            p50_ms: p50 as f64 / 1000.0,
            p99_ms: p99 as f64 / 1000.0,
        }
    }
}

/// The node API's error body (`{"error": KIND, "message": …}`).
#[derive(Debug, Deserialize)]
struct ApiError {
    error: String,
}

/// A failed exchange, as an error kind short enough to count by.
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_decode() {
        "undecodable answer"
    } else {
        "transport"
    };
    kind.to_owned()
}

/// A non-2xx answer as an error kind: the status and the API's error kind
/// (`503 unavailable`), or the status alone for a body that is not the API's (an agent's
/// plain-text 502).
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    match response.json::<ApiError>().await {
        Ok(body) => format!("{status} {}", body.error),
        Err(_) => status.to_string(),
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// Runs `clients` closed-loop clients (`client(id, stop)`) and merges their tallies.
/// `stop` is raised once `duration` has passed; a client may also end earlier on its
/// own. Returns the tallies and the seconds until the last client ended.
async fn phase<const K: usize, F, Fut>(
    clients: u64,
    duration: Duration,
    client: F,
) -> anyhow::Result<([Tally; K], f64)>
where
    F: Fn(u64, Arc<AtomicBool>) -> Fut,
    Fut: Future<Output = [Tally; K]> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|id| tokio::spawn(client(id, Arc::clone(&stop))))
        .collect();
    let timer = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            tokio::time::sleep(duration).await;
            stop.store(true, Ordering::Relaxed);
        }
    });
    let mut totals: [Tally; K] = std::array::from_fn(|_| Tally::new());
    for handle in handles {
        for (total, tally) in totals.iter_mut().zip(handle.await?.iter()) {
            total.merge(tally);
        }
    }
    timer.abort();
    Ok((totals, started.elapsed().as_secs_f64()))
}

async fn call(client: &reqwest::Client, node: SocketAddr, op: &Op) -> Result<Response, String> {
    let response = client
        .post(format!("http://{node}/sm/ops"))
        .json(op)
        .send()
        .await
        .map_err(|e| transport(&e))?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    response.json().await.map_err(|e| transport(&e))
}

/// A 2xx answer of the wrong kind (the state machine's refusals come as 4xx).
fn unexpected(response: &Response) -> String {
    match response {
        Response::Error(_) => "state machine error".to_owned(),
        _ => "unexpected answer".to_owned(),
    }
}

/// One client: enqueue a message, receive up to 10, ack each; until `stop`.
async fn queue_client(id: u64, nodes: Arc<[SocketAddr]>, stop: Arc<AtomicBool>) -> [Tally; 3] {
    let client = http_client();
    let mut tallies = [Tally::new(), Tally::new(), Tally::new()];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let node = nodes[(n + id) as usize % nodes.len()];
        let started = Instant::now();
        let enqueue = Op::Enqueue {
            queue: "bench".to_owned(),
            message_id: format!("c{id}-{n}"),
            body: "x".repeat(PAYLOAD_BYTES),
        };
        let outcome = match call(&client, node, &enqueue).await {
            Ok(Response::Enqueued(_)) => Ok(()),
            Ok(other) => Err(unexpected(&other)),
            Err(kind) => Err(kind),
        };
        tallies[0].record(started.elapsed(), outcome);

        let started = Instant::now();
        let receive = Op::Receive {
            queue: "bench".to_owned(),
            consumer: format!("c{id}"),
            max: 10,
            visibility_ms: None,
        };
        let deliveries = match call(&client, node, &receive).await {
            Ok(Response::Received(outcome)) => {
                tallies[1].record(started.elapsed(), Ok(()));
                outcome.messages
            }
            Ok(other) => {
                tallies[1].record(started.elapsed(), Err(unexpected(&other)));
                Vec::new()
            }
            Err(kind) => {
                tallies[1].record(started.elapsed(), Err(kind));
                Vec::new()
            }
        };
        for delivery in deliveries {
            let started = Instant::now();
            let ack = Op::Ack {
                queue: "bench".to_owned(),
                receipt: delivery.receipt,
            };
            let outcome = match call(&client, node, &ack).await {
                Ok(Response::Acked(_)) => Ok(()),
                Ok(other) => Err(unexpected(&other)),
                Err(kind) => Err(kind),
            };
            tallies[2].record(started.elapsed(), outcome);
        }
    }
    tallies
}

/// The quorum defaults a node applies to requests naming no `r` / `w` (`GET /admin/quorum`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Quorum {
    n: usize,
    r: usize,
    w: usize,
    policy: String,
}

/// The nodes' quorum defaults, which the KV phases use; every node must agree.
async fn quorum(client: &reqwest::Client, nodes: &[SocketAddr]) -> anyhow::Result<Quorum> {
    let mut agreed: Option<Quorum> = None;
    for node in nodes {
        let url = format!("http://{node}/admin/quorum");
        let quorum: Quorum = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?
            .json()
            .await
            .with_context(|| format!("GET {url}: the answer"))?;
        match &agreed {
            Some(q) if *q != quorum => {
                bail!("nodes disagree on the quorum defaults: {q:?}, {quorum:?}")
            }
            Some(_) => {}
            None => agreed = Some(quorum),
        }
    }
    agreed.context("no node to ask for the quorum defaults")
}

/// What a KV client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KvOp {
    /// PUT each of its share of the key space once, then end.
    Fill,
    /// PUT uniformly chosen keys until `stop`.
    Put,
    /// GET uniformly chosen keys until `stop`.
    Get,
}

/// The fields of `PUT /kv/{key}`'s answer the bench checks.
#[derive(Debug, Deserialize)]
struct Written {
    w: usize,
}

/// The fields of `GET /kv/{key}`'s answer the bench checks.
#[derive(Debug, Deserialize)]
struct Read {
    value: String,
    r: usize,
}

fn key_url(node: SocketAddr, key: u64) -> String {
    format!("http://{node}/kv/bench-{key}")
}

async fn put(
    client: &reqwest::Client,
    node: SocketAddr,
    key: u64,
    value: String,
    w: usize,
) -> Result<(), String> {
    let response = client
        .put(key_url(node, key))
        .body(value)
        .send()
        .await
        .map_err(|e| transport(&e))?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let written: Written = response.json().await.map_err(|e| transport(&e))?;
    if written.w != w {
        return Err(format!("written with W={}", written.w));
    }
    Ok(())
}

async fn get(client: &reqwest::Client, node: SocketAddr, key: u64, r: usize) -> Result<(), String> {
    let response = client
        .get(key_url(node, key))
        .send()
        .await
        .map_err(|e| transport(&e))?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let read: Read = response.json().await.map_err(|e| transport(&e))?;
    if read.r != r {
        return Err(format!("read with R={}", read.r));
    }
    if read.value.len() != PAYLOAD_BYTES {
        return Err("not a value the bench wrote".to_owned());
    }
    Ok(())
}

/// SplitMix64 (Steele, Lea, Flood 2014): enough randomness to pick keys uniformly,
/// seeded per client and phase so that runs repeat.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` by multiply-shift (Lemire); the bias, n / 2^64, is negligible.
    fn below(&mut self, n: u64) -> u64 {
        // The product's high half is below `n`, so it fits in u64.
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// What the KV clients of a phase share.
#[derive(Debug)]
struct KvPlan {
    nodes: Arc<[SocketAddr]>,
    /// Keys `bench-0` … `bench-{keys - 1}`.
    keys: u64,
    quorum: Quorum,
    /// The fill's next key: handed out in order, so the keys the fill reached before its
    /// time ran out are a prefix, which the timed phases then draw from.
    next_fill: AtomicU64,
}

/// One KV client: `op` on keys of the plan's key space, each request to the next node,
/// until `stop` (or, filling, until no key is left).
async fn kv_client(id: u64, plan: Arc<KvPlan>, op: KvOp, stop: Arc<AtomicBool>) -> [Tally; 1] {
    let client = http_client();
    let mut tally = Tally::new();
    let mut rng = SplitMix64((id << 8) | op as u64);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = match op {
            KvOp::Fill => {
                let key = plan.next_fill.fetch_add(1, Ordering::Relaxed);
                if key >= plan.keys {
                    break;
                }
                key
            }
            KvOp::Put | KvOp::Get => rng.below(plan.keys),
        };
        n += 1;
        let node = plan.nodes[(n + id) as usize % plan.nodes.len()];
        let started = Instant::now();
        let outcome = match op {
            KvOp::Fill | KvOp::Put => {
                let value = format!("{:-<PAYLOAD_BYTES$}", format!("c{id}-{n}"));
                put(&client, node, key, value, plan.quorum.w).await
            }
            KvOp::Get => get(&client, node, key, plan.quorum.r).await,
        };
        tally.record(started.elapsed(), outcome);
    }
    [tally]
}

/// The queue phase: enqueue, receive and ack rows.
async fn queue_phase(
    args: &ClusterArgs,
    nodes: &Arc<[SocketAddr]>,
) -> anyhow::Result<Vec<OpFigures>> {
    let ([enqueue, receive, ack], seconds) = phase(args.clients, args.duration, |id, stop| {
        queue_client(id, Arc::clone(nodes), stop)
    })
    .await?;
    Ok(vec![
        enqueue.figures("queue enqueue".to_owned(), seconds),
        receive.figures("queue receive (≤10)".to_owned(), seconds),
        ack.figures("queue ack".to_owned(), seconds),
    ])
}

/// What the KV phases ran against, for the report.
#[derive(Debug)]
struct KvSetup {
    quorum: Quorum,
    /// Keys the fill wrote (or tried to), which the timed phases drew from.
    keys: u64,
}

async fn kv_phase(
    args: &ClusterArgs,
    plan: &Arc<KvPlan>,
    op: KvOp,
) -> anyhow::Result<(Tally, f64)> {
    let ([tally], seconds) = phase(args.clients, args.duration, |id, stop| {
        kv_client(id, Arc::clone(plan), op, stop)
    })
    .await?;
    Ok((tally, seconds))
}

/// The KV phases: fill (at most `--duration`), then timed PUTs, then timed GETs; one row
/// each.
async fn kv_phases(
    args: &ClusterArgs,
    nodes: &Arc<[SocketAddr]>,
    quorum: Quorum,
) -> anyhow::Result<(Vec<OpFigures>, KvSetup)> {
    let (w, r) = (quorum.w, quorum.r);
    let fill_plan = Arc::new(KvPlan {
        nodes: Arc::clone(nodes),
        keys: args.kv_keys,
        quorum,
        next_fill: AtomicU64::new(0),
    });
    let (fill, fill_seconds) = kv_phase(args, &fill_plan, KvOp::Fill).await?;
    // Every client has ended, so every key handed out was written or failed.
    let keys = fill_plan
        .next_fill
        .load(Ordering::Relaxed)
        .min(args.kv_keys);
    if keys == 0 {
        bail!("the KV fill reached no key in {:?}", args.duration);
    }
    let plan = Arc::new(KvPlan {
        nodes: Arc::clone(nodes),
        keys,
        quorum: fill_plan.quorum.clone(),
        next_fill: AtomicU64::new(keys),
    });
    let (puts, put_seconds) = kv_phase(args, &plan, KvOp::Put).await?;
    let (gets, get_seconds) = kv_phase(args, &plan, KvOp::Get).await?;
    let figures = vec![
        fill.figures(format!("kv put W={w} (fill)"), fill_seconds),
        puts.figures(format!("kv put W={w}"), put_seconds),
        gets.figures(format!("kv get R={r}"), get_seconds),
    ];
    let setup = KvSetup {
        quorum: plan.quorum.clone(),
        keys,
    };
    Ok((figures, setup))
}

pub(crate) fn run(args: ClusterArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::up(ClusterSpec {
        nodes: args.nodes,
        dir: dir.path().to_owned(),
        exe: std::env::current_exe()?,
        otlp: Some(args.otlp.clone()),
        services: false,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (figures, kv) = runtime.block_on(async {
        let admin = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        cluster
            .wait_healthy(&admin, Duration::from_secs(30))
            .await
            .with_context(|| format!("logs in {}", dir.path().join("logs").display()))?;
        let nodes: Arc<[SocketAddr]> = cluster
            .file()
            .members
            .iter()
            .map(|m| m.agent_inbound)
            .collect();
        let mut figures = Vec::new();
        if args.only != Some(Workload::Kv) {
            figures.extend(queue_phase(&args, &nodes).await?);
        }
        let mut kv = None;
        if args.only != Some(Workload::Queue) {
            let quorum = quorum(&admin, &nodes).await?;
            let (kv_figures, setup) = kv_phases(&args, &nodes, quorum).await?;
            figures.extend(kv_figures);
            kv = Some(setup);
        }
        anyhow::Ok((figures, kv))
    })?;
    cluster.down();
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&figures)?),
        OutputFormat::Text => print_text(&args, &figures, kv.as_ref()),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(args: &ClusterArgs, figures: &[OpFigures], kv: Option<&KvSetup>) {
    println!(
        "{} nodes behind agents, {} clients, {:?} per phase (requests rotate over the nodes; \
         queue: followers forward to the leader; KV: the node asked coordinates):",
        args.nodes, args.clients, args.duration
    );
    if let Some(KvSetup { quorum: q, keys }) = kv {
        let reached = if *keys == args.kv_keys {
            "all of them".to_owned()
        } else {
            format!("{keys}: the fill stopped after {:?}", args.duration)
        };
        println!(
            "KV: N={} R={} W={} ({}), {PAYLOAD_BYTES} B values; the fill writes keys in order, \
             then PUT and GET draw uniformly from those it reached (of {} keys, {reached})",
            q.n, q.r, q.w, q.policy, args.kv_keys
        );
    }
    println!(
        "{:<22} {:>10} {:>8} {:>10} {:>9} {:>9}",
        "operation", "count", "errors", "per s", "p50 ms", "p99 ms"
    );
    for f in figures {
        println!(
            "{:<22} {:>10} {:>8} {:>10.0} {:>9.2} {:>9.2}",
            f.op, f.count, f.errors, f.per_second, f.p50_ms, f.p99_ms
        );
    }
    for f in figures.iter().filter(|f| f.errors > 0) {
        let kinds: Vec<String> = f
            .error_kinds
            .iter()
            .map(|(kind, n)| format!("{kind} ×{n}"))
            .collect();
        println!("errors in {}: {}", f.op, kinds.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_reaches_every_key() {
        let mut rng = SplitMix64(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let key = rng.below(10);
            assert!(key < 10, "{key} out of 0..10");
            seen[key as usize] += 1;
        }
        // Uniform: each of 10 keys expects 1000 draws; 800 is more than 6 sigma below.
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }

    #[test]
    fn merged_tallies_keep_every_failure_by_kind() {
        let mut a = Tally::new();
        a.record(Duration::from_millis(2), Ok(()));
        a.record(Duration::ZERO, Err("503 unavailable".to_owned()));
        let mut b = Tally::new();
        b.record(Duration::from_millis(4), Ok(()));
        b.record(Duration::ZERO, Err("503 unavailable".to_owned()));
        b.record(Duration::ZERO, Err("timeout".to_owned()));
        a.merge(&b);
        let figures = a.figures("kv put".to_owned(), 1.0);
        assert_eq!(figures.count, 2);
        assert_eq!(figures.errors, 3);
        assert_eq!(figures.error_kinds["503 unavailable"], 2);
        assert_eq!(figures.error_kinds["timeout"], 1);
        assert!((1.9..=2.1).contains(&figures.p50_ms), "{}", figures.p50_ms);
    }
}
