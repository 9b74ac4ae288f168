//! Decoding independent records (JSON lines, protobuf frames) on every core, in order.
//!
//! ```text
//!  caller thread: split records ─► chunk ─► [work queue] ─► worker 1..n: decode ─┐
//!       ▲                                                                         │
//!       └── apply in input order (emit, count, skip or fail) ◄── [results] ◄─────┘
//! ```
//!
//! Decoding is the expensive part and needs no shared state; applying an outcome to the
//! [`Reading`] (lenient skipping, counts, the caller's sink) stays on the calling thread
//! and in input order, so results are exactly those of a sequential read. At most
//! `MAX_OUTSTANDING` chunks are decoded or waiting at any time: memory stays bounded.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::{Location, ReadError, ReadErrorKind, Reading};
use crate::span::Span;

/// A record's bytes, or the reason it could not even be cut out of the input.
pub(crate) struct Record {
    pub(crate) location: Location,
    pub(crate) bytes: Result<Vec<u8>, ReadErrorKind>,
}

/// What decoding one record produced.
pub(crate) enum Outcome {
    /// Spans, and the reasons any of the record's spans were rejected.
    Spans {
        spans: Vec<Span>,
        rejected: Vec<String>,
    },
    /// A well-formed record holding no traces (OTLP metrics or logs).
    NonTrace,
    /// The record is unusable.
    Bad(Location, ReadErrorKind),
}

/// Records per chunk handed to a worker, and bytes at which a chunk is cut early.
const CHUNK_RECORDS: usize = 64;
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks in flight (being decoded, or decoded and waiting for their turn).
const MAX_OUTSTANDING: u64 = 8;

type Chunk = Vec<Record>;
type Decoded = Vec<(Location, Outcome)>;

/// Reads chunks with `next_record` and decodes them with `decode`, applying outcomes in
/// input order. `next_record` returns `Ok(None)` at the end of the input.
pub(crate) fn run(
    mut next_record: impl FnMut() -> Result<Option<Record>, ReadError>,
    decode: impl Fn(Location, &[u8]) -> Outcome + Sync,
    reading: &mut Reading<'_>,
) -> Result<(), ReadError> {
    let mut next_chunk = || -> Result<Option<Chunk>, ReadError> {
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < CHUNK_RECORDS && bytes < CHUNK_BYTES {
            match next_record()? {
                Some(record) => {
                    bytes += record.bytes.as_ref().map_or(0, Vec::len);
                    chunk.push(record);
                }
                None => break,
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    };
    let decode_chunk = |chunk: Chunk| -> Decoded {
        chunk
            .into_iter()
            .map(|record| {
                let outcome = match record.bytes {
                    Ok(bytes) => decode(record.location, &bytes),
                    Err(kind) => Outcome::Bad(record.location, kind),
                };
                (record.location, outcome)
            })
            .collect()
    };

    let workers = match reading.threads {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8),
        n => n,
    };
    if workers < 2 {
        while let Some(chunk) = next_chunk()? {
            for (location, outcome) in decode_chunk(chunk) {
                apply(location, outcome, reading)?;
            }
        }
        return Ok(());
    }

    std::thread::scope(|scope| {
        let (work_tx, work_rx) = mpsc::channel::<(u64, Chunk)>();
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::channel::<(u64, Decoded)>();
        for _ in 0..workers {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            let decode_chunk = &decode_chunk;
            scope.spawn(move || {
                loop {
                    // A poisoned lock means another worker panicked; the scope will
                    // propagate that panic, so this one just stops.
                    let next = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, chunk)) = next else { return };
                    if done_tx.send((seq, decode_chunk(chunk))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);

        let mut sent = 0u64;
        let mut applied = 0u64;
        let mut finished_reading = false;
        let mut waiting: BTreeMap<u64, Decoded> = BTreeMap::new();
        loop {
            while !finished_reading && sent - applied < MAX_OUTSTANDING {
                match next_chunk()? {
                    Some(chunk) => {
                        if work_tx.send((sent, chunk)).is_err() {
                            break;
                        }
                        sent += 1;
                    }
                    None => finished_reading = true,
                }
            }
            if applied == sent {
                return Ok(());
            }
            let Ok((seq, decoded)) = done_rx.recv() else {
                // Every worker is gone before finishing its work: one of them panicked,
                // and leaving the scope re-raises that panic.
                return Ok(());
            };
            waiting.insert(seq, decoded);
            while let Some(decoded) = waiting.remove(&applied) {
                for (location, outcome) in decoded {
                    apply(location, outcome, reading)?;
                }
                applied += 1;
            }
        }
        // Leaving the scope drops `work_tx`; idle workers see the channel close and end.
    })
}

/// Applies one decoded record to the read: emit, count, skip or fail.
pub(crate) fn apply(
    location: Location,
    outcome: Outcome,
    reading: &mut Reading<'_>,
) -> Result<(), ReadError> {
    match outcome {
        Outcome::Spans { spans, rejected } => {
            reading.summary.records += 1;
            reading.emit(spans);
            for reason in rejected {
                let error = reading.error(location, ReadErrorKind::Invalid(reason));
                reading.skip(error)?;
            }
            Ok(())
        }
        Outcome::NonTrace => {
            reading.summary.records += 1;
            reading.summary.non_trace_records += 1;
            Ok(())
        }
        Outcome::Bad(location, kind) => {
            let error = reading.error(location, kind);
            reading.skip(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::read::{Location, ReadOptions, read};
    use crate::span::Span;
    use crate::synth::Synth;
    use crate::write::{encode_framed, encode_line};

    /// 3,000 JSON lines (many chunks, more than the outstanding limit) with bad lines at
    /// known places.
    fn capture(bad_lines: &[u64]) -> (Vec<u8>, Vec<Span>) {
        let mut synth = Synth::new(9);
        let mut text = Vec::new();
        let mut good = Vec::new();
        for line in 1..=3000u64 {
            if bad_lines.contains(&line) {
                text.extend_from_slice(b"{\"resourceSpans\": [{]}\n");
            } else {
                let spans = synth.spans(2);
                encode_line(&spans, &mut text);
                good.extend(spans);
            }
        }
        (text, good)
    }

    #[test]
    fn parallel_decoding_keeps_input_order_and_lenient_locations() {
        let bad = [7, 1500, 2999];
        let (text, expected) = capture(&bad);
        let lenient = ReadOptions {
            lenient: true,
            ..ReadOptions::default()
        };
        let mut got = Vec::new();
        let summary = read("c.jsonl", &text[..], &lenient, &mut |b| got.extend(b)).unwrap();
        assert!(got == expected, "spans out of order or altered");
        assert_eq!((summary.records, summary.skipped), (2997, 3));
        let lines: Vec<Location> = summary.problems.iter().map(|p| p.location).collect();
        assert!(
            matches!(
                lines[..],
                [
                    Location::LineColumn(7, _),
                    Location::LineColumn(1500, _),
                    Location::LineColumn(2999, _)
                ]
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn strict_read_stops_at_the_first_bad_record_having_emitted_what_came_before() {
        let (text, expected) = capture(&[1200, 2500]);
        let mut got = Vec::new();
        let err = read("c.jsonl", &text[..], &ReadOptions::default(), &mut |b| {
            got.extend(b)
        })
        .unwrap_err();
        assert!(
            matches!(err.location, Location::LineColumn(1200, _)),
            "{err}"
        );
        assert_eq!(got.len(), 1199 * 2);
        assert!(got[..] == expected[..got.len()]);
    }

    #[test]
    fn any_number_of_threads_reads_the_same() {
        let (text, expected) = capture(&[100, 2000]);
        for threads in [1, 2, 3] {
            let options = ReadOptions {
                lenient: true,
                threads,
                ..ReadOptions::default()
            };
            let mut got = Vec::new();
            let summary = read("c.jsonl", &text[..], &options, &mut |b| got.extend(b)).unwrap();
            assert!(got == expected, "{threads} threads");
            assert_eq!(summary.skipped, 2);
        }
    }

    #[test]
    fn framed_protobuf_in_many_chunks() {
        let mut synth = Synth::new(10);
        let mut bytes = Vec::new();
        let mut expected = 0;
        for _ in 0..700 {
            let spans = synth.spans(3);
            expected += spans.len();
            encode_framed(&spans, &mut bytes);
        }
        let mut got = 0;
        let summary = read("c.binpb", &bytes[..], &ReadOptions::default(), &mut |b| {
            got += b.len()
        })
        .unwrap();
        assert_eq!((got, summary.records), (expected, 700));
    }
}
