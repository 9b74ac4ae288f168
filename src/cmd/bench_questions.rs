//! `faultline bench generate` and `bench questions`: faultline's half of the side-by-side
//! benchmark against DuckDB (issue 6; the other half and the comparison are in
//! `bench/duckdb/`).
//!
//! ```text
//!  bench generate ──► Synth::incident ──► FILE (OTLP JSON lines)
//!  bench questions FILE ──► analyzers::load (read + table) ──► analyzers::queries ──► answers, times
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use faultline_analyzers::load::{TimeFilter, load};
use faultline_analyzers::queries::{self, Answers};
use faultline_model::read::ReadOptions;
use faultline_model::synth::Synth;
use faultline_model::write::{CaptureFile, CaptureFileOptions};
use serde::Serialize;

use crate::fmt::{self, OutputFormat};

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    /// Spans to write.
    #[arg(long, default_value_t = 1_000_000)]
    spans: usize,
    /// Spans per line (an SDK's batch exporter sends 512 by default).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Seed of the generator: the same seed and sizes give the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The capture to write: OTLP JSON lines, compressed if the name ends in `.gz` or
    /// `.zst`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct QuestionsArgs {
    /// The capture to ask (any format and compression faultline reads).
    file: PathBuf,
    /// Timed runs; the fastest is reported.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

pub(crate) fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    if args.spans == 0 || args.batch == 0 {
        bail!("--spans and --batch must be at least 1");
    }
    if args.out.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite it)",
            args.out.display()
        );
    }
    let started = Instant::now();
    let mut synth = Synth::incident(args.seed);
    let mut file = CaptureFile::create(&args.out, CaptureFileOptions::default())
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut left = args.spans;
    while left > 0 {
        let batch = synth.spans(args.batch.min(left));
        left -= batch.len();
        file.write_batch(&batch)
            .with_context(|| format!("writing {}", args.out.display()))?;
    }
    let summary = file
        .finish()
        .with_context(|| format!("closing {}", args.out.display()))?;
    eprintln!(
        "faultline bench: wrote {} spans in {} lines ({}) to {} in {:.1} s",
        fmt::count(summary.spans),
        fmt::count(summary.lines),
        fmt::bytes(summary.bytes),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `--format json` prints: the figures, then the answers the harness compares.
#[derive(Debug, Serialize)]
struct QuestionsReport {
    file: PathBuf,
    file_bytes: u64,
    spans: u64,
    /// Reading the file and building the span table.
    load_seconds: f64,
    /// `SpanTable::frame` and both queries.
    query_seconds: f64,
    total_seconds: f64,
    mb_per_sec: f64,
    spans_per_sec: f64,
    runs: usize,
    answers: Answers,
}

pub(crate) fn questions(args: QuestionsArgs) -> anyhow::Result<ExitCode> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let file_bytes = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let mut best: Option<(Duration, Duration)> = None;
    let mut last = None;
    for _ in 0..args.runs {
        let started = Instant::now();
        let (table, inputs) = load(
            std::slice::from_ref(&args.file),
            &ReadOptions::default(),
            TimeFilter::default(),
        )?;
        let loaded = started.elapsed();
        let answers = queries::answer(&table)?;
        let answered = started.elapsed() - loaded;
        if best.is_none_or(|(l, q)| loaded + answered < l + q) {
            best = Some((loaded, answered));
        }
        let spans = inputs.iter().map(|input| input.summary.spans).sum::<u64>();
        // The table is dropped outside the timed part of the next run.
        drop(table);
        last = Some((spans, answers));
    }
    // At least one run, checked above.
    let (Some((load_time, query_time)), Some((spans, answers))) = (best, last) else {
        bail!("no run");
    };
    let total = (load_time + query_time).as_secs_f64();
    let report = QuestionsReport {
        file: args.file,
        file_bytes,
        spans,
        load_seconds: load_time.as_secs_f64(),
        query_seconds: query_time.as_secs_f64(),
        total_seconds: total,
        mb_per_sec: file_bytes as f64 / 1e6 / total,
        spans_per_sec: spans as f64 / total,
        runs: args.runs,
        answers,
    };
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print_text(&report),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(report: &QuestionsReport) {
    println!(
        "{}: {} spans, {}",
        report.file.display(),
        fmt::count(report.spans),
        fmt::bytes(report.file_bytes)
    );
    println!(
        "load (read + table) {:.3} s, queries {:.3} s, total {:.3} s: {:.0} MB/s, {} spans/s{}",
        report.load_seconds,
        report.query_seconds,
        report.total_seconds,
        report.mb_per_sec,
        fmt::count(report.spans_per_sec as u64),
        if report.runs > 1 {
            format!(" (best of {})", report.runs)
        } else {
            String::new()
        }
    );
    println!();
    println!(
        "{:<20} {:<17} {:>9} {:>8} {:>7} {:>9} {:>9}",
        "service", "minute (UTC)", "calls", "errors", "err %", "p50 ms", "p99 ms"
    );
    for row in &report.answers.service_minutes {
        let minute = u64::try_from(row.minute).unwrap_or(0) * 60_000_000_000;
        println!(
            "{:<20} {:<17} {:>9} {:>8} {:>7.2} {:>9.3} {:>9.3}",
            row.service,
            // "2025-11-21T04:40:00.000Z" → "2025-11-21T04:40".
            fmt::timestamp(minute).get(..16).unwrap_or_default(),
            fmt::count(row.calls),
            fmt::count(row.errors),
            row.error_rate * 100.0,
            row.p50_ms,
            row.p99_ms
        );
    }
    println!();
    println!(
        "{:<20} {:<24} {:>10} {:>14} {:>14}",
        "caller", "callee", "attempts", "logical calls", "amplification"
    );
    for edge in &report.answers.edges {
        println!(
            "{:<20} {:<24} {:>10} {:>14} {:>14}",
            edge.caller,
            if edge.callee.is_empty() {
                "(unnamed)"
            } else {
                &edge.callee
            },
            fmt::count(edge.attempts),
            fmt::count(edge.logical_calls),
            edge.amplification
                .map_or_else(|| "-".to_owned(), |a| format!("{a:.3}"))
        );
    }
}
