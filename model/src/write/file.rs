//! A capture on disk: OTLP JSON lines, compressed by the file's extension (`.gz`,
//! `.zst`), rotated by size, and made durable on close.
//!
//! Rotation follows the Collector's file exporter (lumberjack): the newest data is
//! always in the named file; when it reaches the size limit it is closed, fsynced and
//! renamed to a numbered sibling (`capture.jsonl` → `capture-000001.jsonl`), and a new
//! `capture.jsonl` is started. Reading the numbered files in order, then the named
//! one, gives the spans in arrival order.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::CaptureWriter;
use crate::read::Compression;
use crate::span::Span;

#[derive(Debug, Clone, Default)]
pub struct CaptureFileOptions {
    /// Rotate once the current file holds this many bytes (uncompressed JSON).
    pub rotate_bytes: Option<u64>,
}

/// What was written, for the summary the user sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureFileSummary {
    /// Every file written, oldest first; the named file last.
    pub files: Vec<PathBuf>,
    pub spans: u64,
    pub lines: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<File>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
            Sink::Zstd(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(buf),
            Sink::Gzip(w) => w.write_all(buf),
            Sink::Zstd(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

impl Sink {
    fn open(path: &Path, compression: Compression) -> io::Result<Self> {
        let file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        Ok(match compression {
            Compression::None => Sink::Plain(file),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            )),
            Compression::Zstd => Sink::Zstd(zstd::stream::write::Encoder::new(file, 3)?),
        })
    }

    /// Ends the compressed stream, flushes, and fsyncs the file.
    fn finish(self) -> io::Result<()> {
        let buffered = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Zstd(w) => w.finish()?,
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

/// A capture file being written. Call [`CaptureFile::finish`] to close it properly; a
/// file dropped without it is flushed on a best-effort basis but not fsynced.
pub struct CaptureFile {
    path: PathBuf,
    compression: Compression,
    options: CaptureFileOptions,
    writer: Option<CaptureWriter<Sink>>,
    summary: CaptureFileSummary,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("summary", &self.summary)
            .finish()
    }
}

/// The compression a capture path asks for by its extension.
pub fn compression_for(path: &Path) -> Compression {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Compression::Gzip,
        Some("zst" | "zstd") => Compression::Zstd,
        _ => Compression::None,
    }
}

impl CaptureFile {
    pub fn create(path: impl Into<PathBuf>, options: CaptureFileOptions) -> io::Result<Self> {
        let path = path.into();
        let compression = compression_for(&path);
        let writer = CaptureWriter::new(Sink::open(&path, compression)?);
        Ok(CaptureFile {
            path,
            compression,
            options,
            writer: Some(writer),
            summary: CaptureFileSummary::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one batch as one line. If the current file is already full, it is rotated
    /// first (rotating lazily never leaves an empty newest file behind).
    pub fn write_batch(&mut self, spans: &[Span]) -> io::Result<()> {
        if spans.is_empty() {
            return Ok(());
        }
        let full = match (&self.writer, self.options.rotate_bytes) {
            (Some(writer), Some(limit)) => writer.bytes_written() >= limit,
            _ => false,
        };
        if full {
            self.rotate()?;
        }
        match self.writer.as_mut() {
            Some(writer) => writer.write_batch(spans),
            None => Err(io::Error::other("capture file already finished")),
        }
    }

    /// Pushes buffered lines to the OS (not to disk; see [`CaptureFile::finish`]).
    pub fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    pub fn spans_written(&self) -> u64 {
        self.summary.spans + self.writer.as_ref().map_or(0, CaptureWriter::spans_written)
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some(writer) = self.writer.take() {
            self.summary.spans += writer.spans_written();
            self.summary.lines += writer.lines_written();
            self.summary.bytes += writer.bytes_written();
            writer.into_inner().finish()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.close_current()?;
        let numbered = numbered_sibling(&self.path, self.summary.files.len() + 1);
        fs::rename(&self.path, &numbered)?;
        self.summary.files.push(numbered);
        self.writer = Some(CaptureWriter::new(Sink::open(
            &self.path,
            self.compression,
        )?));
        Ok(())
    }

    /// Closes the capture: ends compression, fsyncs, and reports what was written.
    pub fn finish(mut self) -> io::Result<CaptureFileSummary> {
        self.close_current()?;
        let mut summary = std::mem::take(&mut self.summary);
        summary.files.push(self.path.clone());
        Ok(summary)
    }
}

impl Drop for CaptureFile {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.as_mut() {
            let _ = writer.flush();
        }
    }
}

/// `dir/capture.jsonl.gz`, 3 → `dir/capture-000003.jsonl.gz`.
fn numbered_sibling(path: &Path, n: usize) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, extensions) = match name.find('.') {
        Some(0) | None => (name.as_str(), ""),
        Some(dot) => name.split_at(dot),
    };
    path.with_file_name(format!("{stem}-{n:06}{extensions}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{ReadOptions, read_all};
    use crate::span::{SpanId, TraceId};

    fn spans(n: u8) -> Vec<Span> {
        (1..=n)
            .map(|i| Span::new(TraceId([i; 16]), SpanId([i; 8]), format!("op{i}")))
            .collect()
    }

    #[test]
    fn numbered_names_keep_all_extensions() {
        assert_eq!(
            numbered_sibling(Path::new("/x/cap.jsonl.gz"), 3),
            PathBuf::from("/x/cap-000003.jsonl.gz")
        );
        assert_eq!(
            numbered_sibling(Path::new("cap"), 12),
            PathBuf::from("cap-000012")
        );
    }

    #[test]
    fn compressed_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["c.jsonl", "c.jsonl.gz", "c.jsonl.zst"] {
            let path = dir.path().join(name);
            let mut file = CaptureFile::create(&path, CaptureFileOptions::default()).unwrap();
            file.write_batch(&spans(3)).unwrap();
            file.write_batch(&spans(2)).unwrap();
            let summary = file.finish().unwrap();
            assert_eq!(
                (summary.spans, summary.lines, summary.files.len()),
                (5, 2, 1)
            );
            let (back, read) = read_all(&path, &ReadOptions::default()).unwrap();
            assert_eq!(back.len(), 5, "{name}");
            assert_eq!(read.compression, compression_for(&path));
        }
    }

    #[test]
    fn rotates_by_size_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.jsonl");
        let mut file = CaptureFile::create(
            &path,
            CaptureFileOptions {
                rotate_bytes: Some(1000),
            },
        )
        .unwrap();
        for _ in 0..10 {
            file.write_batch(&spans(4)).unwrap();
        }
        let summary = file.finish().unwrap();
        assert!(summary.files.len() > 2, "{summary:?}");
        assert!(
            fs::metadata(&path).unwrap().len() > 0,
            "no empty newest file"
        );
        assert_eq!(summary.files.last(), Some(&path));
        let mut total = 0;
        for f in &summary.files {
            let (spans, _) = read_all(f, &ReadOptions::default()).unwrap();
            total += spans.len();
            let size = fs::metadata(f).unwrap().len();
            assert!(size < 1000 + 600, "{} is {size} bytes", f.display());
        }
        assert_eq!(total, 40);
        assert_eq!(summary.spans, 40);
    }
}
