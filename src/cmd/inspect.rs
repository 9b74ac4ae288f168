//! `faultline inspect FILE...`: the first thing to run on a capture.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use faultline_model::Format;
use faultline_model::inspect::{Report, inspect};
use faultline_model::read::{ReadErrorKind, ReadOptions};

use crate::fmt::{self, OutputFormat};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Capture files (OTLP JSON or protobuf, Jaeger JSON, Zipkin v2 JSON; gzip or zstd).
    /// Several files are inspected together, as one capture.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Skip unparseable records, counting and listing them, instead of stopping at the first.
    #[arg(long)]
    lenient: bool,
    /// Read the files as this format instead of detecting it.
    #[arg(long = "input-format", value_name = "FORMAT", value_parser = parse_format)]
    input_format: Option<Format>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

fn parse_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        format!("unknown format {name:?}; one of {}", names.join(", "))
    })
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let total: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = Arc::new(AtomicU64::new(0));
    let options = ReadOptions {
        lenient: args.lenient,
        format: args.input_format,
        progress: Some(progress.clone()),
        threads: 0,
    };
    let bar = ProgressBar::start(total, progress);
    let report = inspect(&args.files, &options);
    bar.finish();
    let report = report.map_err(|e| {
        let bad_record = matches!(
            e.kind,
            ReadErrorKind::Syntax { .. } | ReadErrorKind::Invalid(_) | ReadErrorKind::Truncated(_)
        );
        let hint = if bad_record && !args.lenient {
            " (--lenient skips bad records and lists them)"
        } else {
            ""
        };
        anyhow::anyhow!("{e}{hint}")
    })?;
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        ),
        OutputFormat::Text => print!("{}", render(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar over input bytes, drawn only on a terminal and only for large inputs.
struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    fn start(total: u64, progress: Arc<AtomicU64>) -> Self {
        if total < 64 << 20 || !std::io::stderr().is_terminal() {
            return ProgressBar {
                bar: None,
                ticker: None,
            };
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} reading {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        let shown = bar.clone();
        let ticker = std::thread::spawn(move || {
            while !shown.is_finished() {
                shown.set_position(progress.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        ProgressBar {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if let Some(ticker) = self.ticker {
            let _ = ticker.join();
        }
    }
}

fn render(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for f in &report.files {
        let _ = writeln!(
            out,
            "{}  {}{}  {}  {}  {}{}{}",
            f.path.display(),
            f.format,
            if f.compression == "none" {
                String::new()
            } else {
                format!(", {}", f.compression)
            },
            fmt::bytes(f.bytes),
            fmt::plural(f.records, "record"),
            fmt::plural(f.spans, "span"),
            if f.skipped > 0 {
                format!("  {} skipped", fmt::count(f.skipped))
            } else {
                String::new()
            },
            if f.non_trace_records > 0 {
                format!(
                    "  {} metrics/logs records passed over",
                    fmt::count(f.non_trace_records)
                )
            } else {
                String::new()
            },
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "spans     {} in {}",
        fmt::count(report.spans),
        fmt::plural(report.traces, "trace")
    );
    let services: Vec<String> = report
        .services
        .iter()
        .map(|(name, n)| format!("{name} ({})", fmt::count(*n)))
        .collect();
    let _ = writeln!(
        out,
        "services  {}: {}",
        services.len(),
        if services.is_empty() {
            "none".into()
        } else {
            services.join(", ")
        }
    );
    match (report.start_ns, report.end_ns) {
        (Some(start), Some(end)) => {
            let _ = writeln!(
                out,
                "time      {} → {} ({})",
                fmt::timestamp(start),
                fmt::timestamp(end),
                fmt::duration(end.saturating_sub(start))
            );
        }
        _ => {
            let _ = writeln!(out, "time      no spans");
        }
    }
    let p = &report.problems;
    let parts: Vec<String> = [
        (p.unparseable, "unparseable records"),
        (p.orphans, "orphan spans (parent not in the capture)"),
        (p.duplicate_span_ids, "span ids shared by different spans"),
        (p.repeated_spans, "exact repeats dropped"),
        (
            p.children_outside_parent,
            "children outside their parent's time (clock skew or async work)",
        ),
        (p.cycles, "parent cycles"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{what}: {}", fmt::count(*n)))
    .collect();
    if parts.is_empty() {
        let _ = writeln!(out, "problems  none");
    } else {
        let _ = writeln!(out, "problems  {}", parts.join("\n          "));
        for f in &report.files {
            for e in &f.errors {
                let _ = writeln!(out, "  unparseable  {e}");
            }
        }
        for e in &report.examples {
            let _ = writeln!(
                out,
                "  {}  trace {} span {}: {}",
                e.kind, e.trace_id, e.span_id, e.detail
            );
        }
    }
    out
}
