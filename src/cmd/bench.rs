//! `faultline bench`: throughput figures that targets are checked against (PRODUCT.md
//! §8). Run them on a release build; numbers from a debug build mean little.
//!
//! - `bench read`: generates a capture of N synthetic spans in OTLP JSON lines and in
//!   framed OTLP protobuf, then times reading each (best and median of several runs).
//! - `bench receive`: starts the OTLP receiver on 127.0.0.1, has concurrent gRPC clients
//!   send pre-encoded requests, and times until every span has come out of its queue.
//! - `bench failover`: kills the Raft leader of a cluster of real node processes and
//!   times until a write is acknowledged again (`bench_failover.rs`).
//! - `bench generate` / `bench questions`: a synthetic capture with retries and an
//!   outage, and the time to answer per-service latency, error-rate and retry
//!   questions about a capture, for the comparison with DuckDB in `bench/duckdb/`
//!   (`bench_questions.rs`).
//! - `bench tui`: the TUI's frame time, input-to-frame latency and ingest rate with a
//!   full span store (`bench_tui.rs`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use faultline_model::read::{ReadOptions, read_path};
use faultline_model::receiver::{Received, ReceiverConfig, receiver};
use faultline_model::synth::Synth;
use faultline_model::write::{encode_framed, encode_line, to_export_request};
use prost::Message as _;
use serde::Serialize;

use crate::fmt::{self, OutputFormat};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Bench {
    /// Capture reading throughput (spans/s, MB/s) for OTLP JSON lines and OTLP protobuf.
    Read(ReadArgs),
    /// OTLP/gRPC ingest rate of the receiver, over loopback.
    Receive(ReceiveArgs),
    /// Time for a Raft cluster of `faultline node` processes to serve writes again after
    /// its leader is killed with SIGKILL.
    Failover(super::bench_failover::FailoverArgs),
    /// Operations per second of a local demo cluster (nodes behind agents).
    Cluster(super::bench_cluster::ClusterArgs),
    /// Write a synthetic capture (OTLP JSON lines) with retries, errors and an outage.
    Generate(super::bench_questions::GenerateArgs),
    /// Time loading a capture and answering per-service latency and error rate per
    /// minute and retry amplification per edge (the questions bench/duckdb asks DuckDB).
    Questions(super::bench_questions::QuestionsArgs),
    /// Accuracy of the diagnosis engine on labelled captures: top-1/top-3 incident kind
    /// and root cause, and the time from injection to the first correct diagnosis.
    Diagnose(super::bench_diagnose::DiagnoseArgs),
    /// Throughput of the whole analysis (read, table, detectors, diagnosis) on a capture.
    Analyze(super::bench_diagnose::AnalyzeArgs),
    /// TUI frame time per view, input-to-frame latency and ingest rate with N spans
    /// stored (target: frame ≤ 10 ms with 1 M spans).
    Tui(super::bench_tui::TuiArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReadArgs {
    /// Spans in the generated capture.
    #[arg(long, default_value_t = 1_000_000)]
    spans: usize,
    /// Spans per record (an SDK's batch exporter sends 512 by default).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Timed runs per format; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Keep the generated captures in DIR instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ReceiveArgs {
    /// Spans to send.
    #[arg(long, default_value_t = 1_000_000)]
    spans: usize,
    /// Spans per request.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Concurrent gRPC clients, each on its own connection.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

pub(crate) fn run(bench: Bench) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        eprintln!(
            "faultline bench: warning: this is a debug build; use `cargo run --release -- bench …`"
        );
    }
    match bench {
        Bench::Read(args) => bench_read(args),
        Bench::Receive(args) => bench_receive(args),
        Bench::Failover(args) => super::bench_failover::run(args),
        Bench::Cluster(args) => super::bench_cluster::run(args),
        Bench::Generate(args) => super::bench_questions::generate(args),
        Bench::Questions(args) => super::bench_questions::questions(args),
        Bench::Diagnose(args) => super::bench_diagnose::diagnose(args),
        Bench::Analyze(args) => super::bench_diagnose::analyze_throughput(args),
        Bench::Tui(args) => super::bench_tui::run(args),
    }
}

#[derive(Debug, Serialize)]
struct ReadResult {
    format: &'static str,
    file_bytes: u64,
    spans: u64,
    runs_ms: Vec<f64>,
    best_spans_per_sec: f64,
    best_mb_per_sec: f64,
    median_spans_per_sec: f64,
}

fn bench_read(args: ReadArgs) -> anyhow::Result<ExitCode> {
    if args.spans == 0 || args.batch == 0 || args.runs == 0 {
        bail!("--spans, --batch and --runs must be at least 1");
    }
    let temp;
    let dir: &Path = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir
        }
        None => {
            temp = tempfile::tempdir().context("creating a temporary directory")?;
            temp.path()
        }
    };
    let json = dir.join("bench.jsonl");
    let proto = dir.join("bench.binpb");
    eprintln!(
        "faultline bench: generating {} spans in {}",
        fmt::count(args.spans as u64),
        dir.display()
    );
    generate(&json, &proto, args.spans, args.batch)?;

    let mut results = Vec::new();
    for (path, name) in [(&json, "otlp-json"), (&proto, "otlp-proto-framed")] {
        let file_bytes = std::fs::metadata(path)?.len();
        let mut runs = Vec::new();
        let mut spans = 0;
        let mut bytes = 0;
        for _ in 0..args.runs {
            let started = Instant::now();
            let summary = read_path(path, &ReadOptions::default(), &mut |batch| drop(batch))
                .with_context(|| format!("reading {}", path.display()))?;
            runs.push(started.elapsed());
            spans = summary.spans;
            bytes = summary.bytes;
        }
        let mut sorted = runs.clone();
        sorted.sort();
        let best = sorted[0].as_secs_f64();
        let median = sorted[sorted.len() / 2].as_secs_f64();
        results.push(ReadResult {
            format: name,
            file_bytes,
            spans,
            runs_ms: runs.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
            best_spans_per_sec: spans as f64 / best,
            best_mb_per_sec: bytes as f64 / 1e6 / best,
            median_spans_per_sec: spans as f64 / median,
        });
    }
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        OutputFormat::Text => {
            println!(
                "{:<18} {:>10} {:>11} {:>14} {:>10} {:>16}",
                "format", "size", "spans", "best spans/s", "best MB/s", "median spans/s"
            );
            for r in &results {
                println!(
                    "{:<18} {:>10} {:>11} {:>14} {:>10.0} {:>16}",
                    r.format,
                    fmt::bytes(r.file_bytes),
                    fmt::count(r.spans),
                    fmt::count(r.best_spans_per_sec as u64),
                    r.best_mb_per_sec,
                    fmt::count(r.median_spans_per_sec as u64)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn generate(json: &Path, proto: &Path, spans: usize, batch: usize) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut synth = Synth::new(42);
    let mut json_out = std::io::BufWriter::new(std::fs::File::create(json)?);
    let mut proto_out = std::io::BufWriter::new(std::fs::File::create(proto)?);
    let mut buf = Vec::new();
    let mut left = spans;
    while left > 0 {
        let batch = synth.spans(batch.min(left));
        left -= batch.len();
        buf.clear();
        encode_line(&batch, &mut buf);
        json_out.write_all(&buf)?;
        buf.clear();
        encode_framed(&batch, &mut buf);
        proto_out.write_all(&buf)?;
    }
    json_out.flush()?;
    proto_out.flush()?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct ReceiveResult {
    spans: u64,
    requests: u64,
    request_bytes: u64,
    clients: usize,
    seconds: f64,
    spans_per_sec: f64,
    mb_per_sec: f64,
}

fn bench_receive(args: ReceiveArgs) -> anyhow::Result<ExitCode> {
    if args.spans == 0 || args.batch == 0 || args.clients == 0 {
        bail!("--spans, --batch and --clients must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(receive(&args))?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        OutputFormat::Text => println!(
            "received {} spans in {} requests ({}) from {} gRPC clients in {:.2} s: {} spans/s, {:.0} MB/s",
            fmt::count(result.spans),
            fmt::count(result.requests),
            fmt::bytes(result.request_bytes),
            result.clients,
            result.seconds,
            fmt::count(result.spans_per_sec as u64),
            result.mb_per_sec
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn receive(args: &ReceiveArgs) -> anyhow::Result<ReceiveResult> {
    eprintln!(
        "faultline bench: encoding {} spans",
        fmt::count(args.spans as u64)
    );
    let mut synth = Synth::new(7);
    let mut requests: Vec<Vec<Bytes>> = vec![Vec::new(); args.clients];
    let mut left = args.spans;
    let mut request_bytes = 0u64;
    let mut n = 0;
    while left > 0 {
        let batch = synth.spans(args.batch.min(left));
        left -= batch.len();
        let encoded = to_export_request(&batch).encode_to_vec();
        request_bytes += encoded.len() as u64;
        requests[n % args.clients].push(Bytes::from(encoded));
        n += 1;
    }

    let (receiver, mut output) = receiver(ReceiverConfig::default());
    let serving = receiver.spawn("127.0.0.1:0".parse()?).await?;
    let addr = serving.addr;
    let expected = args.spans as u64;
    let counter = tokio::spawn(async move {
        let mut got = 0u64;
        while got < expected {
            match output.recv().await {
                Some(Received::Spans(spans)) => got += spans.len() as u64,
                Some(_) => {}
                None => break,
            }
        }
        got
    });

    let mut clients = Vec::new();
    for _ in 0..args.clients {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        clients.push(channel);
    }
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for (channel, batch) in clients.into_iter().zip(requests) {
        senders.spawn(send_all(channel, batch));
    }
    while let Some(result) = senders.join_next().await {
        result??;
    }
    let got = tokio::time::timeout(Duration::from_secs(60), counter).await??;
    let seconds = started.elapsed().as_secs_f64();
    drop(serving);
    if got != expected {
        bail!("the receiver delivered {got} of {expected} spans");
    }
    Ok(ReceiveResult {
        spans: got,
        requests: n as u64,
        request_bytes,
        clients: args.clients,
        seconds,
        spans_per_sec: got as f64 / seconds,
        mb_per_sec: request_bytes as f64 / 1e6 / seconds,
    })
}

/// Sends pre-encoded requests one after another, retrying when told the queue is full.
async fn send_all(channel: tonic::transport::Channel, requests: Vec<Bytes>) -> anyhow::Result<()> {
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    for body in requests {
        loop {
            grpc.ready().await.context("gRPC channel")?;
            match grpc
                .unary(
                    tonic::Request::new(body.clone()),
                    path.clone(),
                    raw::RawCodec,
                )
                .await
            {
                Ok(_) => break,
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(status) => bail!("export failed: {status}"),
            }
        }
    }
    Ok(())
}

/// A gRPC codec that sends already-encoded protobuf, so the benchmark measures the
/// receiver rather than the client's encoder.
mod raw {
    use bytes::{BufMut as _, Bytes};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message as _;
    use tonic::Status;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Debug, Clone, Copy, Default)]
    pub(super) struct RawCodec;

    #[derive(Debug)]
    pub(super) struct RawEncoder;

    #[derive(Debug)]
    pub(super) struct ResponseDecoder;

    impl Codec for RawCodec {
        type Encode = Bytes;
        type Decode = ExportTraceServiceResponse;
        type Encoder = RawEncoder;
        type Decoder = ResponseDecoder;

        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }

        fn decoder(&mut self) -> ResponseDecoder {
            ResponseDecoder
        }
    }

    impl Encoder for RawEncoder {
        type Item = Bytes;
        type Error = Status;

        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for ResponseDecoder {
        type Item = ExportTraceServiceResponse;
        type Error = Status;

        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
            ExportTraceServiceResponse::decode(src)
                .map(Some)
                .map_err(|e| Status::internal(e.to_string()))
        }
    }
}
