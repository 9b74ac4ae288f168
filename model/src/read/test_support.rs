//! Shared by the readers' unit tests.

use super::{Format, ReadError, ReadErrorKind, ReadOptions, ReadSummary};
use crate::span::Span;

/// Reads `text` as `format` under the source name `name`; returns the spans, the
/// number of batches and the summary.
pub(super) fn read_as(
    format: Format,
    name: &str,
    text: &str,
    lenient: bool,
) -> Result<(Vec<Span>, usize, ReadSummary), ReadError> {
    let mut spans = Vec::new();
    let mut batches = 0;
    let options = ReadOptions {
        lenient,
        format: Some(format),
        ..ReadOptions::default()
    };
    let summary = super::read(name, text.as_bytes(), &options, &mut |batch| {
        batches += 1;
        spans.extend(batch);
    })?;
    Ok((spans, batches, summary))
}

/// A reader under test: `(text, lenient)` → spans, batches handed out, summary.
pub(super) type ReadText = fn(&str, bool) -> Result<(Vec<Span>, usize, ReadSummary), ReadError>;

/// Per seed file: its name, the outcome of a strict read (`ok`, or the kind of error it
/// ends with: `invalid`, `syntax`, `truncated`), then the spans and skipped records of
/// a lenient read.
pub(super) type Seed = (&'static str, &'static str, usize, u64);

fn outcome(result: &Result<(Vec<Span>, usize, ReadSummary), ReadError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => match e.kind {
            ReadErrorKind::Invalid(_) => "invalid",
            ReadErrorKind::Syntax { .. } => "syntax",
            ReadErrorKind::Truncated(_) => "truncated",
            _ => "other",
        },
    }
}

/// Each fuzz seed reads the way its name says. Checks every seed in `fuzz/corpus/<corpus>` against `seeds`; a seed without an entry
/// fails, so the corpus cannot grow untested.
pub(super) fn check_seeds(corpus: &str, seeds: &[Seed], read: ReadText) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(corpus);
    for &(file, strict, spans, skipped) in seeds {
        let text =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(outcome(&read(&text, false)), strict, "{file}");
        let (lenient, _, summary) = read(&text, true).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!((lenient.len(), summary.skipped), (spans, skipped), "{file}");
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            seeds.iter().any(|s| s.0 == name),
            "no expectations for seed {name}"
        );
    }
}
