//! `faultline inspect FILE...`: the first thing to run on a capture.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use faultline_model::Format;
use faultline_model::inspect::{Report, inspect};

use crate::fmt::{self, OutputFormat};
use crate::reading;

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
    #[arg(long = "input-format", value_name = "FORMAT", value_parser = reading::parse_format)]
    input_format: Option<Format>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (options, progress, total) = reading::options(&args.files, args.lenient, args.input_format);
    let bar = reading::ProgressBar::start(total, progress);
    let report = inspect(&args.files, &options);
    bar.finish();
    let report = report.map_err(|e| reading::read_failed(&e, args.lenient))?;
    match args.format {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("encoding the report")?
        ),
        OutputFormat::Text => print!("{}", render(&report)),
    }
    Ok(ExitCode::SUCCESS)
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
