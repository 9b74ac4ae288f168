//! Capture readers: any supported trace file in, batches of [`Span`]s out.
//!
//! ```text
//!  file ─► decompress (gzip | zstd | none, by magic bytes)
//!       ─► detect format (by content, never by the file name)
//!       ─► otlp_json | otlp_proto | jaeger | zipkin  ──(batches)──► sink
//! ```
//!
//! Reading streams: a reader holds one record (a JSON line, a protobuf frame, one
//! Jaeger trace, one chunk of Zipkin spans) at a time, never the whole file, and hands
//! each batch to the caller's sink as soon as it is decoded.
//!
//! Errors name the source, the line (or byte offset, or element) and the reason. With
//! `lenient`, a bad record is skipped, counted and remembered instead of ending the read.

mod detect;
mod jaeger;
mod json;
mod otlp_json;
mod otlp_proto;
mod pipeline;
#[cfg(test)]
mod test_support;
mod zipkin;

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::span::{Resource, Scope, Span};

pub use detect::{Compression, Format};
pub(crate) use otlp_json::parse_export_request as parse_otlp_json_request;
pub(crate) use otlp_proto::convert_request as convert_otlp_proto_request;

/// How many skipped-record errors a lenient read keeps for reporting; the rest are
/// only counted.
pub const MAX_KEPT_PROBLEMS: usize = 100;

/// Where in the input something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The input as a whole (e.g. its format could not be recognised).
    Input,
    /// A 1-based line number.
    Line(u64),
    /// A 1-based line and column.
    LineColumn(u64, u64),
    /// A byte offset into the (decompressed) input.
    Offset(u64),
    /// The n-th (1-based) element of a top-level array or sequence of messages.
    Element(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Input => Ok(()),
            Location::Line(line) => write!(f, ":{line}"),
            Location::LineColumn(line, column) => write!(f, ":{line}:{column}"),
            Location::Offset(offset) => write!(f, " at byte {offset}"),
            Location::Element(n) => write!(f, " element {n}"),
        }
    }
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("unrecognised format: {0}")]
    UnknownFormat(String),
    #[error("malformed {format}: {reason}")]
    Syntax { format: Format, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("input ends in the middle of a record: {0}")]
    Truncated(String),
}

/// A reading error with the context a user needs to find the bad spot.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}{location}: {kind}")]
pub struct ReadError {
    pub source_name: String,
    pub location: Location,
    #[source]
    pub kind: ReadErrorKind,
}

/// Options for one read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Skip bad records (counting and remembering them) instead of failing.
    pub lenient: bool,
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Advanced by the number of input bytes (before decompression) consumed, for
    /// progress bars; shared with whoever draws them.
    pub progress: Option<Arc<AtomicU64>>,
    /// Threads decoding records (JSON lines, protobuf frames); 0 means one per core.
    /// The results are the same for any number.
    pub threads: usize,
}

/// What a read found, besides the spans themselves.
#[derive(Debug)]
pub struct ReadSummary {
    pub format: Format,
    pub compression: Compression,
    /// Bytes of input after decompression.
    pub bytes: u64,
    /// Records decoded: JSON lines or documents, protobuf messages, Jaeger traces,
    /// Zipkin spans.
    pub records: u64,
    pub spans: u64,
    /// Records (or spans) skipped as bad under `lenient`.
    pub skipped: u64,
    /// Well-formed records that carry no traces (OTLP metrics or logs in the same file).
    pub non_trace_records: u64,
    /// The first [`MAX_KEPT_PROBLEMS`] errors behind `skipped`.
    pub problems: Vec<ReadError>,
}

/// Reads the capture at `path`, calling `sink` with each batch of spans.
pub fn read_path(
    path: &Path,
    options: &ReadOptions,
    sink: &mut dyn FnMut(Vec<Span>),
) -> Result<ReadSummary, ReadError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| ReadError {
        source_name: name.clone(),
        location: Location::Input,
        kind: ReadErrorKind::Io(e),
    })?;
    read(&name, file, options, sink)
}

/// Reads a whole capture into memory; for small files and tests.
pub fn read_all(path: &Path, options: &ReadOptions) -> Result<(Vec<Span>, ReadSummary), ReadError> {
    let mut spans = Vec::new();
    let summary = read_path(path, options, &mut |batch| spans.extend(batch))?;
    Ok((spans, summary))
}

/// Reads a capture from any byte stream; `name` is used in error messages.
pub fn read(
    name: &str,
    input: impl Read,
    options: &ReadOptions,
    sink: &mut dyn FnMut(Vec<Span>),
) -> Result<ReadSummary, ReadError> {
    let io_error = |e: io::Error| ReadError {
        source_name: name.to_owned(),
        location: Location::Input,
        kind: ReadErrorKind::Io(e),
    };
    let input = ProgressReader {
        inner: input,
        progress: options.progress.clone(),
    };
    let mut raw = BufReader::with_capacity(256 * 1024, input);
    let compression = Compression::sniff(raw.fill_buf().map_err(io_error)?);
    let decompressed: Box<dyn Read> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(io_error)?)
        }
    };
    // Detection reads (consumes) the first bytes, then they are put back in front.
    let mut counted = CountingReader {
        inner: decompressed,
        count: 0,
    };
    let mut head = Vec::with_capacity(detect::PEEK_BYTES);
    (&mut counted)
        .take(detect::PEEK_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    let format = match options.format {
        Some(format) => format,
        None => Format::detect(&head).ok_or_else(|| ReadError {
            source_name: name.to_owned(),
            location: Location::Input,
            kind: ReadErrorKind::UnknownFormat(detect::describe_unknown(&head)),
        })?,
    };
    let mut input = BufReader::with_capacity(256 * 1024, io::Cursor::new(head).chain(counted));
    let mut reading = Reading {
        source: name,
        lenient: options.lenient,
        threads: options.threads,
        summary: ReadSummary {
            format,
            compression,
            bytes: 0,
            records: 0,
            spans: 0,
            skipped: 0,
            non_trace_records: 0,
            problems: Vec::new(),
        },
        sink,
    };
    match format {
        Format::OtlpJson => otlp_json::read(&mut input, &mut reading)?,
        Format::OtlpProto => otlp_proto::read_single(&mut input, &mut reading)?,
        Format::OtlpProtoFramed => otlp_proto::read_framed(&mut input, &mut reading)?,
        Format::JaegerJson => jaeger::read(&mut input, &mut reading)?,
        Format::ZipkinJson => zipkin::read(&mut input, &mut reading)?,
    }
    let mut summary = reading.summary;
    summary.bytes = input.get_ref().get_ref().1.count;
    Ok(summary)
}

/// The state of one read, handed to the format readers.
pub(crate) struct Reading<'a> {
    pub(crate) source: &'a str,
    pub(crate) lenient: bool,
    pub(crate) threads: usize,
    pub(crate) summary: ReadSummary,
    sink: &'a mut dyn FnMut(Vec<Span>),
}

impl Reading<'_> {
    /// Hands decoded spans to the caller.
    pub(crate) fn emit(&mut self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        self.summary.spans += spans.len() as u64;
        (self.sink)(spans);
    }

    pub(crate) fn error(&self, location: Location, kind: ReadErrorKind) -> ReadError {
        ReadError {
            source_name: self.source.to_owned(),
            location,
            kind,
        }
    }

    /// A record that cannot be used: the end of the read, unless lenient, where it is
    /// counted and (the first few) kept for the report.
    pub(crate) fn skip(&mut self, error: ReadError) -> Result<(), ReadError> {
        if !self.lenient {
            return Err(error);
        }
        self.summary.skipped += 1;
        if self.summary.problems.len() < MAX_KEPT_PROBLEMS {
            self.summary.problems.push(error);
        }
        Ok(())
    }
}

/// Counts the decompressed bytes that pass through, for MB/s figures and summaries.
struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Reports consumed input bytes to a shared counter.
struct ProgressReader<R> {
    inner: R,
    progress: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(progress) = &self.progress {
            progress.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Walks the resource → scope → span nesting shared by OTLP JSON and protobuf: each
/// resource and scope is built once and shared by its spans (`Arc`), every span is
/// converted, and a span that breaks the protocol's rules is left out with its path in
/// the request (`resourceSpans[0].scopeSpans[1].spans[2]: reason`).
pub(crate) fn convert_otlp_nesting<R, S, P>(
    resource_spans: Vec<R>,
    resource: impl Fn(R) -> (Resource, Vec<S>),
    scope: impl Fn(S) -> (Scope, Vec<P>),
    span: impl Fn(P, &Arc<Resource>, &Arc<Scope>) -> Result<Span, String>,
    spans: &mut Vec<Span>,
    rejected: &mut Vec<String>,
) {
    for (ri, rs) in resource_spans.into_iter().enumerate() {
        let (r, scope_spans) = resource(rs);
        let r = Arc::new(r);
        for (si, ss) in scope_spans.into_iter().enumerate() {
            let (s, scope_members) = scope(ss);
            let s = Arc::new(s);
            spans.reserve(scope_members.len());
            for (pi, p) in scope_members.into_iter().enumerate() {
                match span(p, &r, &s) {
                    Ok(converted) => spans.push(converted),
                    Err(reason) => rejected.push(format!(
                        "resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]: {reason}"
                    )),
                }
            }
        }
    }
}

/// Reads one line (up to and including `\n`) into `buf`, which is cleared first.
/// Returns `Ok(false)` at end of input. Lines need not be UTF-8 here; callers decide.
pub(crate) fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<bool> {
    buf.clear();
    Ok(input.read_until(b'\n', buf)? > 0)
}
