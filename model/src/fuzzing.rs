//! Entry points for the cargo-fuzz targets in `fuzz/` (one function per target), also
//! run over the seed corpus by `model/tests/fuzz_corpus.rs` as ordinary tests.
//!
//! Each takes arbitrary bytes and checks invariants that must hold for *any* input:
//! no panic, no hang, and what was read survives a write → read round trip.

use crate::read::{Format, ReadOptions, read};
use crate::span::Span;
use crate::trace::assemble;
use crate::write::encode_line;

pub use crate::w3c::{fuzz_baggage, fuzz_traceparent, fuzz_tracestate};

/// Reads `data` as `format` (or detects it), strictly and leniently. Whatever is read
/// must assemble into traces and survive being written as OTLP JSON and read back.
pub fn read_capture(format: Option<Format>, data: &[u8]) {
    for lenient in [false, true] {
        // One decoding thread: the same decode and apply code as the parallel path
        // (which has its own tests), without spawning threads for every input.
        let options = ReadOptions {
            lenient,
            format,
            threads: 1,
            ..ReadOptions::default()
        };
        let mut spans: Vec<Span> = Vec::new();
        let Ok(summary) = read("fuzz", data, &options, &mut |batch| spans.extend(batch)) else {
            continue;
        };
        assert_eq!(
            summary.spans as usize,
            spans.len(),
            "summary counts what was emitted"
        );
        let mut written = Vec::new();
        encode_line(&spans, &mut written);
        let mut again: Vec<Span> = Vec::new();
        let reread = read(
            "fuzz-rewritten",
            &written[..],
            &ReadOptions::default(),
            &mut |b| again.extend(b),
        );
        // Spans that were read were valid, so their rewrite must read back whole.
        assert!(
            reread.is_ok(),
            "rewritten capture does not read back: {reread:?}"
        );
        let mut rewritten = Vec::new();
        encode_line(&again, &mut rewritten);
        // Compared as bytes so that NaN attributes, which are unequal to themselves,
        // still compare equal.
        assert!(
            written == rewritten,
            "OTLP JSON round trip changed the spans"
        );
        let traces = assemble(spans);
        let total: usize = traces.iter().map(|t| t.spans.len()).sum();
        assert!(total <= again.len());
        for trace in &traces {
            // Every span is reachable from a root exactly once: no cycles, none lost.
            let mut seen = vec![false; trace.spans.len()];
            let mut stack = trace.structure.roots.clone();
            while let Some(i) = stack.pop() {
                assert!(!seen[i], "span reached twice");
                seen[i] = true;
                stack.extend(&trace.structure.children[i]);
            }
            assert!(seen.iter().all(|s| *s), "span not reachable from any root");
        }
    }
}
