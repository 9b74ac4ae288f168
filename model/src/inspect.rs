//! `faultline inspect`: the first look at a capture. What is in it (formats, spans,
//! traces, services, time range) and what is wrong with it (orphans, duplicate ids,
//! children outside their parents' time, unparseable records).
//!
//! ```text
//!  files ─► read (streaming) ─► per span: SpanKey + service + time ─► assemble keys ─► Report
//! ```
//!
//! Only [`SpanKey`]s are kept (about 64 bytes a span), so a capture much larger than
//! memory as spans can still be checked.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::read::{ReadError, ReadOptions, read_path};
use crate::span::TraceId;
use crate::trace::{SpanKey, TraceProblem, drop_repeats, structure};

/// How many examples of each problem kind the report names.
const EXAMPLES_PER_KIND: usize = 5;

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub format: &'static str,
    pub compression: &'static str,
    /// Bytes after decompression.
    pub bytes: u64,
    pub records: u64,
    pub spans: u64,
    /// Records or spans skipped as unparseable (with `--lenient`).
    pub skipped: u64,
    /// OTLP metrics or logs records in the file, passed over.
    pub non_trace_records: u64,
    /// The first errors behind `skipped`, as `file:line: reason`.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ProblemCounts {
    /// Spans whose parent is not in the capture.
    pub orphans: u64,
    /// Span ids used by several different spans (client/server sharing excepted).
    pub duplicate_span_ids: u64,
    /// Exact repeats of a span, dropped.
    pub repeated_spans: u64,
    /// Children starting before or ending after their parent.
    pub children_outside_parent: u64,
    /// Parent cycles, broken.
    pub cycles: u64,
    /// Records or spans that could not be read (see each file's errors).
    pub unparseable: u64,
}

impl ProblemCounts {
    pub fn total(&self) -> u64 {
        self.orphans
            + self.duplicate_span_ids
            + self.repeated_spans
            + self.children_outside_parent
            + self.cycles
            + self.unparseable
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProblemExample {
    pub kind: &'static str,
    pub trace_id: String,
    pub span_id: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub spans: u64,
    pub traces: u64,
    /// Spans per `service.name`.
    pub services: BTreeMap<String, u64>,
    /// Earliest start and latest end, ns since the epoch.
    pub start_ns: Option<u64>,
    pub end_ns: Option<u64>,
    pub problems: ProblemCounts,
    pub examples: Vec<ProblemExample>,
}

/// Inspects the files together (traces may continue across rotated files).
pub fn inspect(paths: &[impl AsRef<Path>], options: &ReadOptions) -> Result<Report, ReadError> {
    let mut by_trace: HashMap<TraceId, Vec<SpanKey>> = HashMap::new();
    let mut services: HashMap<String, u64> = HashMap::new();
    let mut start_ns: Option<u64> = None;
    let mut end_ns: Option<u64> = None;
    let mut files = Vec::new();
    let mut problems = ProblemCounts::default();
    for path in paths {
        let path = path.as_ref();
        let summary = read_path(path, options, &mut |batch| {
            for span in batch {
                match services.get_mut(span.service_name()) {
                    Some(n) => *n += 1,
                    None => {
                        services.insert(span.service_name().to_owned(), 1);
                    }
                }
                start_ns = Some(start_ns.map_or(span.start_ns, |s| s.min(span.start_ns)));
                end_ns = Some(end_ns.map_or(span.end_ns, |e| e.max(span.end_ns)));
                by_trace
                    .entry(span.trace_id)
                    .or_default()
                    .push(SpanKey::of(&span));
            }
        })?;
        problems.unparseable += summary.skipped;
        files.push(FileReport {
            path: path.to_owned(),
            format: summary.format.as_str(),
            compression: summary.compression.as_str(),
            bytes: summary.bytes,
            records: summary.records,
            spans: summary.spans,
            skipped: summary.skipped,
            non_trace_records: summary.non_trace_records,
            errors: summary.problems.iter().map(ToString::to_string).collect(),
        });
    }

    // Traces in a stable order, so that examples and output are reproducible.
    let mut traces: Vec<(TraceId, Vec<SpanKey>)> = by_trace.into_iter().collect();
    traces.sort_unstable_by_key(|(id, keys)| (keys.iter().map(|k| k.start_ns).min(), *id));
    let mut examples = Vec::new();
    let mut shown: HashMap<&'static str, usize> = HashMap::new();
    let mut spans = 0u64;
    for (trace_id, keys) in &traces {
        spans += keys.len() as u64;
        let (kept, repeats) = drop_repeats(keys);
        let kept_keys: Vec<SpanKey> = kept.iter().map(|&i| keys[i]).collect();
        let shape = structure(&kept_keys);
        for problem in repeats.iter().chain(&shape.problems) {
            let (kind, span, detail) = match problem {
                TraceProblem::Orphan {
                    span,
                    missing_parent,
                } => {
                    problems.orphans += 1;
                    (
                        "orphan",
                        kept_keys[*span].span_id,
                        format!("parent {missing_parent} is not in the capture"),
                    )
                }
                TraceProblem::DuplicateSpanId { span_id, spans } => {
                    problems.duplicate_span_ids += 1;
                    (
                        "duplicate span id",
                        *span_id,
                        format!("{} different spans share this id", spans.len()),
                    )
                }
                TraceProblem::RepeatedSpan { span_id, dropped } => {
                    problems.repeated_spans += *dropped as u64;
                    (
                        "repeated span",
                        *span_id,
                        format!("{dropped} exact repeat(s) dropped"),
                    )
                }
                TraceProblem::ChildOutsideParent {
                    span,
                    parent,
                    early_ns,
                    late_ns,
                } => {
                    problems.children_outside_parent += 1;
                    let (child, par) = (&kept_keys[*span], &kept_keys[*parent]);
                    let mut how = Vec::new();
                    if *early_ns > 0 {
                        how.push(format!("starts {} before", human_ns(*early_ns)));
                    }
                    if *late_ns > 0 {
                        how.push(format!("ends {} after", human_ns(*late_ns)));
                    }
                    (
                        "child outside parent",
                        child.span_id,
                        format!(
                            "{} span {} its parent, {} span {}",
                            child.kind.as_str(),
                            how.join(" and "),
                            par.kind.as_str(),
                            par.span_id
                        ),
                    )
                }
                TraceProblem::Cycle { span } => {
                    problems.cycles += 1;
                    (
                        "parent cycle",
                        kept_keys[*span].span_id,
                        "following parents loops back; cut here".into(),
                    )
                }
            };
            let count = shown.entry(kind).or_default();
            if *count < EXAMPLES_PER_KIND {
                *count += 1;
                examples.push(ProblemExample {
                    kind,
                    trace_id: trace_id.to_string(),
                    span_id: span.to_string(),
                    detail,
                });
            }
        }
    }
    Ok(Report {
        files,
        spans,
        traces: traces.len() as u64,
        services: services.into_iter().collect(),
        start_ns,
        end_ns,
        problems,
        examples,
    })
}

/// `1.5 ms`, `250 µs`, `0 ns`: durations as a person reads them.
pub fn human_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Span, SpanId};
    use crate::write::{CaptureFile, CaptureFileOptions};

    #[test]
    fn reports_counts_and_problems() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let mut spans = crate::synth::Synth::new(1).spans(16);
        // An orphan, an exact repeat, and a child that outlives its parent.
        let mut orphan = Span::new(spans[0].trace_id, SpanId([9; 8]), "late");
        orphan.parent_span_id = Some(SpanId([8; 8]));
        spans.push(orphan);
        spans.push(spans[3].clone());
        spans[2].end_ns = spans[1].end_ns + 5_000;
        let mut file = CaptureFile::create(&path, CaptureFileOptions::default()).unwrap();
        file.write_batch(&spans).unwrap();
        file.finish().unwrap();

        let report = inspect(&[&path], &ReadOptions::default()).unwrap();
        assert_eq!((report.spans, report.traces), (18, 2));
        assert_eq!(report.services.get("gateway"), Some(&4));
        assert_eq!(
            report.services.get("unknown_service"),
            Some(&1),
            "the orphan has no resource"
        );
        assert_eq!(report.files[0].format, "otlp-json");
        assert_eq!(
            report.problems,
            ProblemCounts {
                orphans: 1,
                repeated_spans: 1,
                children_outside_parent: 1,
                ..ProblemCounts::default()
            }
        );
        let outside = report
            .examples
            .iter()
            .find(|e| e.kind == "child outside parent")
            .unwrap();
        assert!(
            outside.detail.contains("ends 5.0 µs after"),
            "{}",
            outside.detail
        );
    }

    #[test]
    fn lenient_reports_unparseable_lines_with_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        let mut good = Vec::new();
        crate::write::encode_line(&crate::synth::Synth::new(2).spans(4), &mut good);
        let mut text = good;
        text.extend_from_slice(b"{\"resourceSpans\": [oops]}\n");
        crate::write::encode_line(&crate::synth::Synth::new(3).spans(4), &mut text);
        std::fs::write(&path, text).unwrap();

        let strict = inspect(&[&path], &ReadOptions::default()).unwrap_err();
        assert!(
            strict
                .to_string()
                .starts_with(&format!("{}:2:", path.display())),
            "{strict}"
        );

        let report = inspect(
            &[&path],
            &ReadOptions {
                lenient: true,
                ..ReadOptions::default()
            },
        )
        .unwrap();
        assert_eq!((report.spans, report.problems.unparseable), (8, 1));
        assert!(
            report.files[0].errors[0].contains(":2:"),
            "{:?}",
            report.files[0].errors
        );
    }
}
