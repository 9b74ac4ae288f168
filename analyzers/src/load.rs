//! Capture files into one [`SpanTable`], streaming: the reader hands batches of spans
//! to the table builder, which keeps only columns.

use std::path::{Path, PathBuf};

use faultline_model::ReadError;
use faultline_model::read::{self, ReadOptions, ReadSummary};

use crate::table::{SpanTable, TableBuilder};

/// Which spans to keep, by time (ns since the epoch, inclusive start, exclusive end).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeFilter {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
}

impl TimeFilter {
    /// Whether a span from `start` to `end` overlaps the filter's range.
    pub fn keeps(&self, start: u64, end: u64) -> bool {
        let start = i64::try_from(start).unwrap_or(i64::MAX);
        let end = i64::try_from(end).unwrap_or(i64::MAX);
        self.since_ns.is_none_or(|since| end >= since)
            && self.until_ns.is_none_or(|until| start < until)
    }
}

/// One input's reading summary.
#[derive(Debug)]
pub struct Input {
    pub path: PathBuf,
    pub summary: ReadSummary,
    /// Spans left out by the time filter.
    pub filtered: u64,
}

/// Reads every file into one table.
pub fn load(
    paths: &[PathBuf],
    options: &ReadOptions,
    filter: TimeFilter,
) -> Result<(SpanTable, Vec<Input>), ReadError> {
    let mut builder = TableBuilder::new();
    let mut inputs = Vec::new();
    for path in paths {
        let (summary, filtered) = load_into(&mut builder, path, options, filter)?;
        inputs.push(Input {
            path: path.clone(),
            summary,
            filtered,
        });
    }
    Ok((builder.finish(), inputs))
}

fn load_into(
    builder: &mut TableBuilder,
    path: &Path,
    options: &ReadOptions,
    filter: TimeFilter,
) -> Result<(ReadSummary, u64), ReadError> {
    let mut filtered = 0u64;
    let summary = read::read_path(path, options, &mut |mut batch| {
        if filter.since_ns.is_some() || filter.until_ns.is_some() {
            let before = batch.len();
            batch.retain(|span| filter.keeps(span.start_ns, span.end_ns));
            filtered += (before - batch.len()) as u64;
        }
        builder.push_batch(batch);
    })?;
    Ok((summary, filtered))
}
