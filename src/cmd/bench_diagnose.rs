//! `faultline bench diagnose DIR` (accuracy of the diagnosis engine on labelled
//! captures) and `faultline bench analyze FILE` (throughput of the whole analysis).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use faultline_analyzers::accuracy::{self, Accuracy, Labels};
use faultline_analyzers::load::{TimeFilter, load};
use faultline_analyzers::report::{analyze, profile_for};
use faultline_analyzers::{Profile, Thresholds};
use faultline_model::ReadOptions;

use crate::fmt::OutputFormat;

#[derive(Debug, clap::Args)]
pub(crate) struct DiagnoseArgs {
    /// A directory of captures with their `NAME.labels.json` (e.g. samples/).
    dir: PathBuf,
    /// Replay step: the engine is asked for a diagnosis every STEP of capture time.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    step: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

pub(crate) fn diagnose(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let captures = accuracy::labelled_captures(&args.dir)
        .with_context(|| format!("cannot list {}", args.dir.display()))?;
    if captures.is_empty() {
        anyhow::bail!(
            "{} holds no labelled captures (NAME.labels.json beside NAME.jsonl.zst)",
            args.dir.display()
        );
    }
    let step_ns = i64::try_from(args.step.as_nanos())
        .unwrap_or(i64::MAX)
        .max(1);
    let mut scores = Vec::new();
    for (capture, labels_path) in &captures {
        let text = std::fs::read_to_string(labels_path)
            .with_context(|| format!("cannot read {}", labels_path.display()))?;
        let labels: Labels = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a labels file", labels_path.display()))?;
        let (table, _) = load(
            std::slice::from_ref(capture),
            &ReadOptions::default(),
            TimeFilter::default(),
        )?;
        let thresholds = Thresholds::for_profile(profile_for(&table));
        let name = capture.file_name().map_or_else(
            || capture.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        if args.format == OutputFormat::Text {
            eprintln!("scoring {name} ({} spans)…", table.len());
        }
        scores.push(accuracy::score(
            &name,
            &table,
            &labels,
            &thresholds,
            step_ns,
        ));
    }
    let result = Accuracy::of(scores);
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        OutputFormat::Text => print!("{}", render(&result)),
    }
    Ok(ExitCode::SUCCESS)
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

fn render(result: &Accuracy) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<22} {:<4} {:<5} {:>10} {:>6}  top diagnosis",
        "capture", "expected", "kind", "cause", "first ok", "alarms"
    );
    for c in &result.captures {
        let mark = |rank: Option<usize>| match rank {
            Some(1) => "1".to_owned(),
            Some(r) => r.to_string(),
            None => "-".to_owned(),
        };
        let expected = c
            .expected_kind
            .map_or_else(|| "(none)".to_owned(), |k| k.as_str().to_owned());
        let (kind, cause) = match c.clean {
            Some(clean) => {
                let word = if clean { "clean" } else { "NOISY" };
                (word.to_owned(), String::new())
            }
            None => (mark(c.kind_rank), mark(c.cause_rank)),
        };
        let first = c.first_correct_ms.map_or_else(
            || "-".to_owned(),
            |ms| format!("{:.1} s", ms as f64 / 1000.0),
        );
        let top = c.top.first().map_or_else(
            || "(none)".to_owned(),
            |(k, cause)| format!("{} ({cause})", k.as_str()),
        );
        let _ = writeln!(
            out,
            "{:<20} {:<22} {:<4} {:<5} {:>10} {:>6}  {top}",
            c.scenario, expected, kind, cause, first, c.false_alarms_before_injection
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "incidents: {}   kind top-1 {}  top-3 {}   root cause top-1 {}  top-3 {}",
        result.incidents,
        percent(result.kind_top1),
        percent(result.kind_top3),
        percent(result.cause_top1),
        percent(result.cause_top3)
    );
    let seconds = |ms: Option<i64>| {
        ms.map_or_else(
            || "-".to_owned(),
            |ms| format!("{:.1} s", ms as f64 / 1000.0),
        )
    };
    let _ = writeln!(
        out,
        "first correct diagnosis after injection: median {}, max {}; never: {}",
        seconds(result.median_first_correct_ms),
        seconds(result.max_first_correct_ms),
        result.never_correct
    );
    let _ = writeln!(
        out,
        "baselines with nothing above info: {} of {}",
        result.baselines_clean, result.baselines
    );
    out
}

#[derive(Debug, clap::Args)]
pub(crate) struct AnalyzeArgs {
    /// The capture to analyse.
    file: PathBuf,
    /// Timed runs; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

pub(crate) fn analyze_throughput(args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .len();
    let mut runs = Vec::new();
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let (table, inputs) = load(
            std::slice::from_ref(&args.file),
            &ReadOptions::default(),
            TimeFilter::default(),
        )?;
        let loaded = started.elapsed();
        let profile = profile_for(&table);
        let report = analyze(&table, &Thresholds::for_profile(profile), Vec::new());
        let total = started.elapsed();
        let bytes = inputs.iter().map(|i| i.summary.bytes).sum::<u64>();
        runs.push((
            total,
            loaded,
            table.len(),
            bytes,
            report.findings.len(),
            profile,
        ));
    }
    runs.sort_by_key(|r| r.0);
    let (best, loaded, spans, bytes, findings, profile) = runs[0];
    let median = runs[runs.len() / 2].0;
    let secs = best.as_secs_f64().max(1e-9);
    println!(
        "{}: {spans} spans, {} on disk, {} decoded; {} profile; {findings} findings",
        args.file.display(),
        crate::fmt::bytes(size),
        crate::fmt::bytes(bytes),
        match profile {
            Profile::Demo => "demo",
            Profile::Production => "production",
        }
    );
    println!(
        "best of {}: {:.2} s (read + table {:.2} s, detectors + diagnosis {:.2} s); median {:.2} s",
        runs.len(),
        secs,
        loaded.as_secs_f64(),
        (best - loaded).as_secs_f64(),
        median.as_secs_f64()
    );
    println!(
        "throughput: {:.2} M spans/s, {:.0} MB/s decoded, {:.0} MB/s from disk",
        spans as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6,
        size as f64 / secs / 1e6
    );
    Ok(ExitCode::SUCCESS)
}
