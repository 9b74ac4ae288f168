//! `faultline analyze FILE...`: captures in, a diagnosis out.
//!
//! ```text
//!  FILE... ──► load (time filter) ──► SpanTable ──► analyze ──► Report ──► focus?
//!                                                                  └──► text / JSON / Markdown
//! ```
//!
//! Exit codes: 0 ok, 1 a finding at or above `--fail-on`, 2 usage or input error.

use std::io::{self, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use faultline_analyzers::load::{Input, TimeFilter, load};
use faultline_analyzers::print::{Json, Markdown, Printer, Text};
use faultline_analyzers::report::{InputSummary, analyze, profile_for};
use faultline_analyzers::{Profile, Severity, SpanTable, Thresholds};
use faultline_model::Format;

use crate::reading;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Capture files (OTLP JSON or protobuf, Jaeger JSON, Zipkin v2 JSON; gzip or zstd).
    /// Several files are analysed together, as one capture.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// text for people, json for machines, markdown for incident documents.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Analyse only spans that end at or after T: an RFC 3339 time in UTC
    /// (2026-01-02T03:04:05Z) or an offset from the first span (+10s, +1m30s).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_hyphen_values = true)]
    since: Option<TimeArg>,
    /// Analyse only spans that start before T (same forms as --since).
    #[arg(long, value_name = "T", value_parser = parse_time, allow_hyphen_values = true)]
    until: Option<TimeArg>,
    /// Report only the findings about this service or node, and the diagnoses they support.
    #[arg(long, value_name = "S")]
    service: Option<String>,
    /// Exit with 1 when a finding is at or above this severity (info, warning, critical).
    #[arg(long = "fail-on", value_name = "SEVERITY", value_parser = parse_severity)]
    fail_on: Option<Severity>,
    /// Thresholds: the demo's (time-compressed) or production's; auto picks the demo's
    /// for captures of the demo cluster.
    #[arg(long, value_enum, default_value_t = ProfileChoice::Auto)]
    profile: ProfileChoice,
    /// A JSON object of thresholds to change from the profile's, e.g.
    /// `{"retry_critical": 3.0}` (names: docs/analyzers.md, or analyzers/src/config.rs).
    #[arg(long, value_name = "FILE")]
    thresholds: Option<PathBuf>,
    /// Skip unparseable records, counting them, instead of stopping at the first.
    #[arg(long)]
    lenient: bool,
    /// Read the files as this format instead of detecting it.
    #[arg(long = "input-format", value_name = "FORMAT", value_parser = reading::parse_format)]
    input_format: Option<Format>,
    /// Colour in text output: auto uses it when stdout is a terminal and NO_COLOR is unset.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProfileChoice {
    Auto,
    Demo,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// A point in time as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeArg {
    /// Nanoseconds since the epoch.
    At(i64),
    /// Nanoseconds after the capture's first span.
    After(i64),
}

impl TimeArg {
    /// The time in ns since the epoch, `start` being the first span's.
    fn resolve(self, start: i64) -> i64 {
        match self {
            TimeArg::At(ns) => ns,
            TimeArg::After(ns) => start.saturating_add(ns),
        }
    }
}

fn parse_time(text: &str) -> Result<TimeArg, String> {
    if let Some(offset) = text.strip_prefix('+') {
        let duration = humantime::parse_duration(offset)
            .map_err(|e| format!("{text:?} is not an offset such as +10s or +1m30s: {e}"))?;
        let ns = i64::try_from(duration.as_nanos())
            .map_err(|_| format!("{text:?} is too far from the start"))?;
        return Ok(TimeArg::After(ns));
    }
    let time = humantime::parse_rfc3339_weak(text).map_err(|e| {
        format!(
            "{text:?} is neither an RFC 3339 time in UTC (2026-01-02T03:04:05Z) nor an \
             offset from the first span (+10s): {e}"
        )
    })?;
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{text:?} is before 1970"))?;
    i64::try_from(since_epoch.as_nanos())
        .map(TimeArg::At)
        .map_err(|_| format!("{text:?} is too far in the future"))
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text)
        .ok_or_else(|| format!("unknown severity {text:?}; one of info, warning, critical"))
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (options, progress, total) = reading::options(&args.files, args.lenient, args.input_format);
    // Absolute bounds filter while reading, so that spans outside them are never held;
    // an offset needs the first span's time, so the table is filtered after the read.
    let offsets = matches!(args.since, Some(TimeArg::After(_)))
        || matches!(args.until, Some(TimeArg::After(_)));
    let while_reading = if offsets {
        TimeFilter::default()
    } else {
        TimeFilter {
            since_ns: args.since.map(|t| t.resolve(0)),
            until_ns: args.until.map(|t| t.resolve(0)),
        }
    };
    check_order(while_reading)?;
    let bar = reading::ProgressBar::start(total, progress);
    let loaded = load(&args.files, &options, while_reading);
    bar.finish();
    let (mut table, inputs) = loaded.map_err(|e| reading::read_failed(&e, args.lenient))?;
    let mut filtered: Vec<u64> = inputs.iter().map(|i| i.filtered).collect();
    if offsets && let Some((start, _)) = table.time_range() {
        let filter = TimeFilter {
            since_ns: args.since.map(|t| t.resolve(start)),
            until_ns: args.until.map(|t| t.resolve(start)),
        };
        check_order(filter)?;
        table = filter_after_read(&table, &inputs, filter, &mut filtered);
    }
    for input in &inputs {
        if let Some(first) = input.summary.problems.first() {
            eprintln!(
                "faultline analyze: {}: skipped {} bad records; the first: {first}",
                input.path.display(),
                input.summary.skipped
            );
        }
    }

    let profile = match args.profile {
        ProfileChoice::Auto => profile_for(&table),
        ProfileChoice::Demo => Profile::Demo,
        ProfileChoice::Production => Profile::Production,
    };
    let summaries = inputs
        .iter()
        .zip(&filtered)
        .map(|(input, &filtered)| InputSummary {
            path: input.path.display().to_string(),
            format: input.summary.format.as_str().to_owned(),
            spans: input.summary.spans,
            skipped: input.summary.skipped,
            filtered,
        })
        .collect();
    if let Some(service) = &args.service {
        check_known(&table, service)?;
    }
    let mut thresholds = Thresholds::for_profile(profile);
    if let Some(path) = &args.thresholds {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        thresholds = thresholds
            .with_overrides(&text)
            .with_context(|| format!("{}", path.display()))?;
    }
    let spinner = reading::Spinner::start(total, "analysing");
    let mut report = analyze(&table, &thresholds, summaries);
    spinner.finish();
    if let Some(service) = &args.service {
        report.focus(service);
    }

    let stdout = io::stdout().lock();
    let printed = match args.format {
        ReportFormat::Json => Json::new(stdout).print(&report),
        ReportFormat::Markdown => Markdown::new(stdout).print(&report),
        ReportFormat::Text => {
            let color = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            };
            Text::new(stdout).color(color).print(&report)
        }
    };
    match printed {
        // A reader that went away (`| head`) has what it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the report")?,
    }
    let failed = args
        .fail_on
        .is_some_and(|level| report.worst().is_some_and(|worst| worst >= level));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn check_order(filter: TimeFilter) -> anyhow::Result<()> {
    if let (Some(since), Some(until)) = (filter.since_ns, filter.until_ns)
        && since >= until
    {
        bail!("--since must be earlier than --until");
    }
    Ok(())
}

/// `table` without the spans `filter` leaves out, counting them per input. The reader
/// hands each file's spans over in turn, so input `i`'s rows are the `i`-th run of
/// `summary.spans` rows.
fn filter_after_read(
    table: &SpanTable,
    inputs: &[Input],
    filter: TimeFilter,
    filtered: &mut [u64],
) -> SpanTable {
    let mut kept = Vec::with_capacity(table.len());
    let mut row = 0usize;
    for (input, filtered) in inputs.iter().zip(filtered.iter_mut()) {
        let end = (row + input.summary.spans as usize).min(table.len());
        for r in row..end {
            let start = u64::try_from(table.start_ns[r]).unwrap_or(0);
            let stop = u64::try_from(table.end_ns[r]).unwrap_or(0);
            if filter.keeps(start, stop) {
                kept.push(r as u32);
            } else {
                *filtered += 1;
            }
        }
        row = end;
    }
    table.select(&kept)
}

/// Fails unless `name` is a service, a node (instance) or a called peer in the capture:
/// a misspelt name would otherwise look like a healthy service.
fn check_known(table: &SpanTable, name: &str) -> anyhow::Result<()> {
    let known = table.strings.find(name).is_some_and(|id| {
        table.service.contains(&id) || table.instance.contains(&id) || table.peer.contains(&id)
    });
    if known {
        return Ok(());
    }
    let mut services: Vec<&str> = table.service.iter().map(|&s| table.str(s)).collect();
    services.sort_unstable();
    services.dedup();
    bail!(
        "--service {name:?}: no service or node of that name in the capture (services: {})",
        if services.is_empty() {
            "none".to_owned()
        } else {
            services.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_offsets() {
        assert_eq!(
            parse_time("2026-01-02T03:04:05Z"),
            Ok(TimeArg::At(1_767_323_045_000_000_000))
        );
        assert_eq!(
            parse_time("2026-01-02T03:04:05.250Z"),
            Ok(TimeArg::At(1_767_323_045_250_000_000))
        );
        assert_eq!(parse_time("+10s"), Ok(TimeArg::After(10_000_000_000)));
        assert_eq!(parse_time("+1m30s"), Ok(TimeArg::After(90_000_000_000)));
        assert_eq!(parse_time("+250ms"), Ok(TimeArg::After(250_000_000)));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("+soon").is_err());
        assert_eq!(TimeArg::After(5).resolve(100), 105);
        assert_eq!(TimeArg::At(5).resolve(100), 5);
    }

    #[test]
    fn severities() {
        assert_eq!(parse_severity("warning"), Ok(Severity::Warning));
        assert_eq!(parse_severity("CRITICAL"), Ok(Severity::Critical));
        assert!(parse_severity("loud").is_err());
    }
}
