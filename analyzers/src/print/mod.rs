//! Printers: a [`Report`] in, text for people, JSON for machines or Markdown for an
//! incident document out, written to any `io::Write`.
//!
//! ```text
//!  analyze() ──► Report (values) ──► Text     ──► terminal (colour optional)
//!                                ├─► Json     ──► pipes, CI
//!                                └─► Markdown ──► incident docs
//! ```
//!
//! As in ripgrep's printers, the analysis never formats and the printers never
//! analyse: each one walks the same values and decides only how they look. The small
//! helpers below (times, offsets, figures, wrapping) are shared so that text and
//! Markdown say the same thing the same way.

mod json;
mod markdown;
mod text;

use std::io;
use std::time::{Duration, UNIX_EPOCH};

pub use json::Json;
pub use markdown::Markdown;
pub use text::Text;

use crate::diagnosis::Diagnosis;
use crate::finding::{Figure, Finding, Severity};
use crate::report::{InputSummary, Report};

/// Something that renders a report.
pub trait Printer {
    fn print(&mut self, report: &Report) -> io::Result<()>;
}

/// Nanoseconds since the epoch as RFC 3339 with milliseconds, UTC.
pub(crate) fn timestamp(ns: i64) -> String {
    // Spans before 1970 do not occur; clamping keeps the arithmetic total.
    let time = UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    humantime::format_rfc3339_millis(time).to_string()
}

/// `ns` relative to the start of the analysed time: `+20.1 s`.
pub(crate) fn offset(report: &Report, ns: i64) -> String {
    let start = report.start_ns.unwrap_or(ns);
    let seconds = (ns - start) as f64 / 1e9;
    if seconds < 0.0 {
        format!("-{:.1} s", -seconds)
    } else {
        format!("+{seconds:.1} s")
    }
}

/// An absolute time with its offset: `2026-01-02T03:04:23.000Z (+18.0 s from the
/// capture start)`; "the window start" when `--since`/`--until` left spans out, since
/// offsets count from the first span analysed.
pub(crate) fn moment(report: &Report, ns: i64) -> String {
    let origin = if report.inputs.iter().any(|i| i.filtered > 0) {
        "the window start"
    } else {
        "the capture start"
    };
    format!("{} ({} from {origin})", timestamp(ns), offset(report, ns))
}

/// A span of time as a person reads it (`1m 30s`), to the millisecond.
pub(crate) fn duration(ns: i64) -> String {
    let ms = u64::try_from(ns.max(0) / 1_000_000).unwrap_or(0);
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

/// `0.93` → `93 %`.
pub(crate) fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// `1234567` → `1,234,567`. (The binary's text output uses it too.)
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1, "record"` → `1 record`; `1200, "record"` → `1,200 records`.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", count(n))
    }
}

/// What was read from one input: `otlp-json, 12,345 spans, 2 bad records skipped`.
pub(crate) fn input_details(input: &InputSummary) -> String {
    let mut text = format!("{}, {}", input.format, plural(input.spans, "span"));
    if input.skipped > 0 {
        text.push_str(&format!(
            ", {} skipped",
            plural(input.skipped, "bad record")
        ));
    }
    if input.filtered > 0 {
        text.push_str(&format!(
            ", {} outside the time window",
            plural(input.filtered, "span")
        ));
    }
    text
}

/// A number with as many decimals as its size deserves.
fn number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    // Whole numbers and anything from 100 up: no decimals, thousands separated.
    if (value.fract() == 0.0 || magnitude >= 100.0) && magnitude < 1e15 {
        let whole = count(magnitude.round() as u64);
        return if value < 0.0 {
            format!("-{whole}")
        } else {
            whole
        };
    }
    if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A figure's value with its unit: `1,480 ms`, `3.20x`, `35 %`, `yes`.
pub(crate) fn figure_value(figure: &Figure) -> String {
    let value = figure.value;
    match figure.unit {
        "" => number(value),
        "ratio" => format!("{} %", number((value * 1000.0).round() / 10.0)),
        "%" => format!("{} %", number(value)),
        "x" => format!("{}x", number(value)),
        "bool" => (if value > 0.5 { "yes" } else { "no" }).to_owned(),
        unit if unit.starts_with('/') => format!("{}{unit}", number(value)),
        unit => format!("{} {unit}", number(value)),
    }
}

/// `name value` for each figure: `amplification 3.20x`.
pub(crate) fn figures(finding: &Finding) -> Vec<String> {
    finding
        .figures
        .iter()
        .map(|figure| format!("{} {}", figure.name.replace('_', " "), figure_value(figure)))
        .collect()
}

/// Counts of findings per severity, most severe first, leaving out the absent ones:
/// `2 critical, 1 warning`.
pub(crate) fn severity_counts(findings: &[Finding]) -> String {
    let parts: Vec<String> = [Severity::Critical, Severity::Warning, Severity::Info]
        .into_iter()
        .filter_map(|severity| {
            let n = findings.iter().filter(|f| f.severity == severity).count();
            (n > 0).then(|| format!("{n} {severity}"))
        })
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The findings at `severity`, in the report's order.
pub(crate) fn at(findings: &[Finding], severity: Severity) -> impl Iterator<Item = &Finding> {
    findings.iter().filter(move |f| f.severity == severity)
}

/// Whether the report has anything above info: otherwise the capture looks healthy.
pub(crate) fn healthy(report: &Report) -> bool {
    report.diagnoses.is_empty() && report.worst().is_none_or(|w| w <= Severity::Info)
}

/// What a report without anything above info says.
pub(crate) fn healthy_sentence(report: &Report) -> String {
    match &report.focus {
        Some(focus) => format!("{focus} looks healthy: no finding about it above info."),
        None => "The capture looks healthy: no finding above info.".to_owned(),
    }
}

/// The command that shows a diagnosis's playbook.
pub(crate) fn playbook_command(diagnosis: &Diagnosis) -> String {
    format!("faultline playbook show {}", diagnosis.playbook)
}

/// Splits `text` into lines of at most `width` characters at spaces (a word longer
/// than the width gets a line of its own). Runs of spaces inside a line are kept (they
/// align columns); at a break they go.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        let next = after.trim_start();
        let gap = &after[..after.len() - next.len()];
        // A line break inside the text is a space like any other.
        let gap = if gap.contains(['\n', '\r', '\t']) {
            " "
        } else {
            gap
        };
        words.push((word, gap));
        rest = next;
    }
    pack(words, width)
}

/// Lines of whole `items` joined by `separator`, at most `width` characters where an
/// item fits (a figure or an id is never split).
pub(crate) fn wrap_items(items: &[String], separator: &str, width: usize) -> Vec<String> {
    let words: Vec<(&str, &str)> = items
        .iter()
        .map(|item| (item.as_str(), separator))
        .collect();
    pack(words, width)
}

/// Packs (word, gap after it) greedily into lines.
fn pack(words: Vec<(&str, &str)>, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_width = 0;
    let mut gap = "";
    for (word, gap_after) in words {
        let word_width = word.chars().count();
        let gap_width = gap.chars().count();
        if line_width > 0 && line_width + gap_width + word_width > width {
            lines.push(std::mem::take(&mut line));
            line_width = 0;
        }
        if line_width > 0 {
            line.push_str(gap);
            line_width += gap_width;
        }
        line.push_str(word);
        line_width += word_width;
        gap = gap_after;
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
pub(crate) mod tests {
    //! A small hand-made report the printers' tests share.

    use faultline_model::TraceId;

    use super::*;
    use crate::config::Profile;
    use crate::diagnosis::{IncidentKind, Moment, RootCause};
    use crate::finding::{FindingKind, Subject, Window};

    /// 2026-01-02T03:04:05Z.
    pub(crate) const START: i64 = 1_767_323_045_000_000_000;
    const SECOND: i64 = 1_000_000_000;

    pub(crate) fn trace(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    fn finding(
        kind: FindingKind,
        severity: Severity,
        subject: Subject,
        at_s: i64,
        summary: &str,
        figures: Vec<Figure>,
        evidence: Vec<TraceId>,
    ) -> Finding {
        Finding {
            kind,
            severity,
            subject,
            window: Window {
                start_ns: START + at_s * SECOND,
                end_ns: START + (at_s + 10) * SECOND,
            },
            onset_ns: Some(START + at_s * SECOND),
            summary: summary.to_owned(),
            figures,
            evidence,
            detector: "test",
        }
    }

    /// A retry storm at gateway->payments (critical), payments' latency rise
    /// (warning), and a clock-skew note (info).
    pub(crate) fn storm() -> Report {
        let findings = vec![
            finding(
                FindingKind::RetryAmplification,
                Severity::Critical,
                Subject::Edge("gateway".into(), "payments".into()),
                20,
                "gateway sends payments 3.2 attempts per call (baseline 1.0).",
                vec![
                    Figure::new("amplification", 3.2, "x"),
                    Figure::new("attempts", 12_480.0, ""),
                    Figure::new("starts_here", 1.0, "bool"),
                ],
                vec![trace(0xab), trace(0xcd)],
            ),
            finding(
                FindingKind::LatencyRise,
                Severity::Warning,
                Subject::Service("payments".into()),
                18,
                "payments p99 rose from 40 ms to 1480 ms.",
                vec![
                    Figure::new("p99", 1480.0, "ms"),
                    Figure::new("error_rate", 0.125, "ratio"),
                ],
                vec![trace(0xef)],
            ),
            finding(
                FindingKind::ClockSkew,
                Severity::Info,
                Subject::Node("node-2".into()),
                2,
                "node-2's clock is 12 ms ahead of its callers'.",
                vec![],
                vec![],
            ),
        ];
        Report {
            inputs: vec![InputSummary {
                path: "samples/storm.jsonl.zst".into(),
                format: "otlp-json".into(),
                spans: 12_345,
                skipped: 2,
                filtered: 0,
            }],
            spans: 12_345,
            traces: 678,
            services: vec!["gateway".into(), "payments".into(), "worker".into()],
            start_ns: Some(START),
            end_ns: Some(START + 60 * SECOND),
            profile: Profile::Demo,
            window_ns: SECOND,
            focus: None,
            diagnoses: vec![
                Diagnosis {
                    kind: IncidentKind::RetryStorm,
                    title: "Retry storm at the gateway->payments hop".into(),
                    severity: Severity::Critical,
                    confidence: 0.93,
                    onset_ns: Some(START + 18 * SECOND),
                    root_causes: vec![RootCause {
                        kind: "retry_storm",
                        target: "gateway->payments".into(),
                        score: 0.9,
                        because: "gateway sends payments 3.2 attempts per call.".into(),
                    }],
                    explanation: vec![
                        "gateway sends payments 3.2 attempts per call (baseline 1.0).".into(),
                        "Every slow or failed call to payments is sent again, so payments gets \
                         more load exactly when it can take the least; the retries, not the \
                         first slowdown, keep it down."
                            .into(),
                    ],
                    timeline: vec![
                        Moment {
                            at_ns: START + 18 * SECOND,
                            what: "payments p99 rose from 40 ms to 1480 ms.".into(),
                        },
                        Moment {
                            at_ns: START + 20 * SECOND,
                            what: "gateway sends payments 3.2 attempts per call.".into(),
                        },
                    ],
                    evidence: vec![trace(0xab), trace(0xcd), trace(0xef)],
                    playbook: "retry-storm",
                    findings: vec![0, 1],
                },
                Diagnosis {
                    kind: IncidentKind::CascadingFailure,
                    title: "Cascading failure; first domino: payments".into(),
                    severity: Severity::Warning,
                    confidence: 0.5,
                    onset_ns: Some(START + 21 * SECOND),
                    root_causes: vec![RootCause {
                        kind: "dependency_slowdown",
                        target: "payments".into(),
                        score: 0.85,
                        because: "payments slowed first.".into(),
                    }],
                    explanation: vec!["payments slowed first.".into()],
                    timeline: vec![],
                    evidence: vec![],
                    playbook: "cascading-failure",
                    findings: vec![1],
                },
            ],
            findings,
        }
    }

    /// The same capture with nothing above info.
    pub(crate) fn healthy() -> Report {
        let mut report = storm();
        report.diagnoses.clear();
        report.findings.retain(|f| f.severity == Severity::Info);
        report
    }

    #[test]
    fn helpers() {
        assert_eq!(timestamp(START), "2026-01-02T03:04:05.000Z");
        let report = storm();
        assert_eq!(offset(&report, START + 20_100_000_000), "+20.1 s");
        assert_eq!(
            moment(&report, START + 2 * SECOND),
            "2026-01-02T03:04:07.000Z (+2.0 s from the capture start)"
        );
        let mut narrowed = storm();
        narrowed.inputs[0].filtered = 10;
        assert_eq!(
            moment(&narrowed, START),
            "2026-01-02T03:04:05.000Z (+0.0 s from the window start)"
        );
        assert_eq!(duration(90 * SECOND), "1m 30s");
        assert_eq!(percent(0.93), "93 %");
        assert_eq!(
            figures(&report.findings[0]),
            ["amplification 3.20x", "attempts 12,480", "starts here yes"]
        );
        assert_eq!(
            figures(&report.findings[1]),
            ["p99 1,480 ms", "error rate 12.5 %"]
        );
        assert_eq!(
            severity_counts(&report.findings),
            "1 critical, 1 warning, 1 info"
        );
        assert!(!super::healthy(&report));
        assert!(super::healthy(&healthy()));
        assert_eq!(wrap("aa bb cc dd", 5), ["aa bb", "cc dd"]);
        assert_eq!(wrap("a verylongword b", 4), ["a", "verylongword", "b"]);
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(plural(1, "record"), "1 record");
        assert_eq!(number(1840.4), "1,840");
        assert_eq!(number(-0.27), "-0.27");
        assert_eq!(number(47.83), "47.8");
        assert_eq!(number(-1500.0), "-1,500");
        assert_eq!(plural(1200, "record"), "1,200 records");
        assert_eq!(wrap("kind  subject  a b", 13), ["kind  subject", "a b"]);
        assert_eq!(wrap("one\ntwo", 20), ["one two"]);
        let items = [
            "p99 1 ms".to_owned(),
            "rate 12 %".to_owned(),
            "x 1".to_owned(),
        ];
        assert_eq!(
            wrap_items(&items, " · ", 20),
            ["p99 1 ms · rate 12 %", "x 1"]
        );
    }
}
