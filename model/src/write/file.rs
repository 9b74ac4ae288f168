//! A capture on disk: OTLP JSON lines, compressed by the file's extension (`.gz`,
//! `.zst`), rotated by size, and made durable on close.
//!
//! Rotation follows the Collector's file exporter (lumberjack): the newest data is
//! always in the named file; when it reaches the size limit it is closed, fsynced and
//! renamed to a numbered sibling (`capture.jsonl` → `capture-000001.jsonl`), and a new
//! `capture.jsonl` is started. Reading the numbered files in order, then the named
//! one, gives the spans in arrival order ([`recording_parts`] lists them so).
//!
//! Retention (`keep_parts`) bounds the disk a long recording takes: when a rotation
//! leaves more than N numbered parts, the oldest are deleted, so at most N + 1 files of
//! about `rotate_bytes` each remain. A part that cannot be deleted is counted, its error
//! kept for the summary, and retried at the next rotation.
//!
//! ```text
//!  keep_parts = 2:  write ─► capture.jsonl ─(full)─► capture-000003.jsonl
//!                   capture-000001.jsonl  deleted
//!                   capture-000002.jsonl, capture-000003.jsonl, capture.jsonl  remain
//! ```

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
    /// With `rotate_bytes`: keep at most this many older (numbered) parts, deleting the
    /// oldest when a rotation makes one more. `None` keeps every part.
    pub keep_parts: Option<usize>,
}

/// Removal errors kept for the summary; beyond it they are only counted.
const MAX_KEPT_REMOVAL_ERRORS: usize = 100;

/// What was written, for the summary the user sees.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureFileSummary {
    /// Every file that holds the capture, oldest first; the named file last. Parts
    /// deleted by retention (`keep_parts`) are not listed.
    pub files: Vec<PathBuf>,
    /// Spans, lines and uncompressed bytes written, deleted parts included.
    pub spans: u64,
    pub lines: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
    /// Older parts deleted by retention.
    pub parts_removed: u64,
    /// Failed attempts to delete an older part (each is retried at the next rotation).
    pub removal_failures: u64,
    /// The first of those failures, as `PATH: reason`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removal_errors: Vec<String>,
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
    /// Rotations so far: the number of the newest numbered part.
    rotations: usize,
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
            rotations: 0,
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

    /// Failed attempts so far to delete an older part (see `keep_parts`).
    pub fn removal_failures(&self) -> u64 {
        self.summary.removal_failures
    }

    /// The first failures behind [`CaptureFile::removal_failures`], as `PATH: reason`.
    pub fn removal_errors(&self) -> &[String] {
        &self.summary.removal_errors
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
        // Numbered by rotation, not by the parts left: a deleted part's number is never
        // reused, so the numbers keep telling the parts' order.
        self.rotations += 1;
        let numbered = numbered_sibling(&self.path, self.rotations);
        fs::rename(&self.path, &numbered)?;
        self.summary.files.push(numbered);
        self.writer = Some(CaptureWriter::new(Sink::open(
            &self.path,
            self.compression,
        )?));
        self.remove_excess_parts();
        Ok(())
    }

    /// Deletes the oldest parts beyond `keep_parts`. Until [`CaptureFile::finish`],
    /// `summary.files` holds exactly the numbered parts, oldest first.
    fn remove_excess_parts(&mut self) {
        let Some(keep) = self.options.keep_parts else {
            return;
        };
        let excess = self.summary.files.len().saturating_sub(keep);
        let mut failed = Vec::new();
        for part in self.summary.files.drain(..excess).collect::<Vec<_>>() {
            match fs::remove_file(&part) {
                Ok(()) => self.summary.parts_removed += 1,
                // Someone else removed it: it takes no disk any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.summary.removal_failures += 1;
                    if self.summary.removal_errors.len() < MAX_KEPT_REMOVAL_ERRORS {
                        self.summary
                            .removal_errors
                            .push(format!("cannot delete {}: {e}", part.display()));
                    }
                    failed.push(part);
                }
            }
        }
        // Still on disk: still the oldest, tried again at the next rotation.
        self.summary.files.splice(0..0, failed);
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
    let (stem, extensions) = stem_and_extensions(path);
    path.with_file_name(format!("{stem}-{n:06}{extensions}"))
}

/// `capture.jsonl.gz` → (`capture`, `.jsonl.gz`); a leading dot is part of the stem.
fn stem_and_extensions(path: &Path) -> (String, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.find('.') {
        Some(0) | None => (name, String::new()),
        Some(dot) => {
            let (stem, extensions) = name.split_at(dot);
            (stem.to_owned(), extensions.to_owned())
        }
    }
}

/// The files of a (possibly rotated) recording at `path`, oldest first: the numbered
/// parts `FILE-000001…` in order, then `path` itself if it exists. Reading them in this
/// order gives the spans in arrival order; the last minutes are at the end.
///
/// A recording that is still being written may rotate between this listing and the
/// read: the named file may then already hold newer data than listed, and with
/// retention the oldest listed part may be gone (`NotFound`) — a reader following a live
/// recording should skip a part that vanished. An empty list means nothing was
/// recorded there; a directory that cannot be read is an error.
pub fn recording_parts(path: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let (stem, extensions) = stem_and_extensions(path);
    let prefix = format!("{stem}-");
    let mut parts: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let number = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(extensions.as_str()))
            .filter(|digits| digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok());
        if let Some(number) = number {
            parts.push((number, dir.join(name)));
        }
    }
    parts.sort_unstable();
    let mut files: Vec<PathBuf> = parts.into_iter().map(|(_, path)| path).collect();
    if path.exists() {
        files.push(path.to_owned());
    }
    Ok(files)
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
                keep_parts: None,
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

    /// Names of `dir`'s files, sorted.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// One span per batch, named `batch{i}`: which batches a file holds tells where the
    /// data went.
    fn batch(i: u32) -> Vec<Span> {
        let id = i.to_be_bytes();
        let mut trace = [0u8; 16];
        trace[12..].copy_from_slice(&id);
        let mut span = [0u8; 8];
        span[4..].copy_from_slice(&id);
        vec![Span::new(TraceId(trace), SpanId(span), format!("batch{i}"))]
    }

    fn names_in(path: &Path) -> Vec<String> {
        let (spans, _) = read_all(path, &ReadOptions::default()).unwrap();
        spans.iter().map(|s| s.name.to_string()).collect()
    }

    #[test]
    fn keeps_at_most_n_older_parts_and_the_newest_data_in_the_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.jsonl");
        // A limit below one line: every batch after the first rotates first, so batch
        // i ends up alone in a file and rotation k makes part k.
        let mut file = CaptureFile::create(
            &path,
            CaptureFileOptions {
                rotate_bytes: Some(1),
                keep_parts: Some(2),
            },
        )
        .unwrap();
        for i in 1..=3 {
            file.write_batch(&batch(i)).unwrap();
        }
        // Two rotations: nothing deleted yet.
        assert_eq!(
            listing(dir.path()),
            ["spans-000001.jsonl", "spans-000002.jsonl", "spans.jsonl"]
        );
        for i in 4..=6 {
            file.write_batch(&batch(i)).unwrap();
        }
        file.flush().unwrap();
        // Five rotations, keep 2: parts 1–3 are gone, numbers are not reused.
        assert_eq!(
            listing(dir.path()),
            ["spans-000004.jsonl", "spans-000005.jsonl", "spans.jsonl"]
        );
        assert_eq!(names_in(&path), ["batch6"], "the newest data is in FILE");
        assert_eq!(names_in(&dir.path().join("spans-000005.jsonl")), ["batch5"]);
        assert_eq!(names_in(&dir.path().join("spans-000004.jsonl")), ["batch4"]);
        assert_eq!(
            recording_parts(&path).unwrap(),
            [
                dir.path().join("spans-000004.jsonl"),
                dir.path().join("spans-000005.jsonl"),
                path.clone()
            ]
        );
        let summary = file.finish().unwrap();
        assert_eq!(summary.files, recording_parts(&path).unwrap());
        assert_eq!(
            (summary.spans, summary.lines),
            (6, 6),
            "deleted parts count"
        );
        assert_eq!((summary.parts_removed, summary.removal_failures), (3, 0));
    }

    #[test]
    fn keep_zero_leaves_only_the_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.jsonl.zst");
        let options = CaptureFileOptions {
            rotate_bytes: Some(1),
            keep_parts: Some(0),
        };
        let mut file = CaptureFile::create(&path, options).unwrap();
        for i in 1..=4 {
            file.write_batch(&batch(i)).unwrap();
        }
        let summary = file.finish().unwrap();
        assert_eq!(listing(dir.path()), ["spans.jsonl.zst"]);
        assert_eq!(names_in(&path), ["batch4"]);
        assert_eq!(summary.parts_removed, 3);
    }

    #[test]
    fn a_part_that_cannot_be_deleted_is_counted_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spans.jsonl");
        let mut file = CaptureFile::create(
            &path,
            CaptureFileOptions {
                rotate_bytes: Some(1),
                keep_parts: Some(1),
            },
        )
        .unwrap();
        file.write_batch(&batch(1)).unwrap();
        file.write_batch(&batch(2)).unwrap();
        // Part 1 becomes something `remove_file` refuses (a non-empty directory), so
        // the next rotation fails to delete it.
        let part1 = dir.path().join("spans-000001.jsonl");
        fs::remove_file(&part1).unwrap();
        fs::create_dir(&part1).unwrap();
        fs::write(part1.join("pinned"), b"x").unwrap();
        file.write_batch(&batch(3)).unwrap();
        assert_eq!(file.removal_failures(), 1);
        assert!(
            file.removal_errors()[0].contains("spans-000001.jsonl"),
            "{:?}",
            file.removal_errors()
        );
        // Oldest first: part 2 is kept, not deleted in the stuck part's place.
        assert!(dir.path().join("spans-000002.jsonl").exists());
        // Once it can go, the next rotation deletes it.
        fs::remove_dir_all(&part1).unwrap();
        fs::write(&part1, b"").unwrap();
        file.write_batch(&batch(4)).unwrap();
        let summary = file.finish().unwrap();
        assert_eq!(listing(dir.path()), ["spans-000003.jsonl", "spans.jsonl"]);
        assert_eq!(summary.removal_failures, 1);
        assert_eq!(summary.parts_removed, 2);
    }

    #[test]
    fn recording_parts_lists_numbered_parts_in_order_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "spans.jsonl",
            "spans-000010.jsonl",
            "spans-000002.jsonl",
            "spans-1000000.jsonl",
            // Not parts of this recording:
            "spans-12.jsonl",
            "spans-000003.jsonl.gz",
            "spans-00000x.jsonl",
            "other-000001.jsonl",
            "spans.jsonl.tmp",
        ] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        let path = dir.path().join("spans.jsonl");
        let names: Vec<String> = recording_parts(&path)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "spans-000002.jsonl",
                "spans-000010.jsonl",
                "spans-1000000.jsonl",
                "spans.jsonl"
            ]
        );
        // Nothing recorded yet: empty. No directory: an error.
        assert!(
            recording_parts(&dir.path().join("none.jsonl"))
                .unwrap()
                .is_empty()
        );
        assert!(recording_parts(&dir.path().join("no/such.jsonl")).is_err());
    }
}
