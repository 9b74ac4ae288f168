//! Reading captures in the subcommands that take `FILE...`: a progress bar over the
//! input bytes, and the message a failed read ends with.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use faultline_model::read::ReadErrorKind;
use faultline_model::{Format, ReadError, ReadOptions};

/// Inputs smaller than this read in a moment; a bar would only flicker.
const LARGE_INPUT: u64 = 64 << 20;

/// The bytes on disk of `files` (those that can be read; the read reports the others).
pub(crate) fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// Read options for `files` with a shared byte counter for the progress display, and
/// the total it counts towards.
pub(crate) fn options(
    files: &[PathBuf],
    lenient: bool,
    format: Option<Format>,
) -> (ReadOptions, Arc<AtomicU64>, u64) {
    let progress = Arc::new(AtomicU64::new(0));
    let options = ReadOptions {
        lenient,
        format,
        progress: Some(progress.clone()),
        threads: 0,
    };
    (options, progress, total_bytes(files))
}

/// Whether a read of `total` bytes gets a progress display on stderr.
pub(crate) fn shows_progress(total: u64) -> bool {
    total >= LARGE_INPUT && std::io::stderr().is_terminal()
}

/// A progress bar over input bytes, drawn only on a terminal and only for large inputs.
pub(crate) struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    /// Starts drawing `progress` (advanced by the reader) against `total` bytes.
    pub(crate) fn start(total: u64, progress: Arc<AtomicU64>) -> Self {
        if !shows_progress(total) {
            return ProgressBar {
                bar: None,
                ticker: None,
            };
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} reading {bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        let shown = bar.clone();
        let ticker = std::thread::spawn(move || {
            while !shown.is_finished() {
                shown.set_position(progress.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        ProgressBar {
            bar: Some(bar),
            ticker: Some(ticker),
        }
    }

    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if let Some(ticker) = self.ticker {
            let _ = ticker.join();
        }
    }
}

/// A spinner with a message for work after the read (analysis), on the same terms as
/// the bar: large inputs, stderr a terminal.
pub(crate) struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    pub(crate) fn start(total: u64, message: &'static str) -> Self {
        if !shows_progress(total) {
            return Spinner(None);
        }
        let spinner = indicatif::ProgressBar::new_spinner().with_message(message);
        spinner.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(spinner))
    }

    pub(crate) fn finish(self) {
        if let Some(spinner) = self.0 {
            spinner.finish_and_clear();
        }
    }
}

/// The message for a read that failed: the error (file, line or offset, reason), and
/// the way past a bad record when it was one.
pub(crate) fn read_failed(error: &ReadError, lenient: bool) -> anyhow::Error {
    let bad_record = matches!(
        error.kind,
        ReadErrorKind::Syntax { .. } | ReadErrorKind::Invalid(_) | ReadErrorKind::Truncated(_)
    );
    let hint = if bad_record && !lenient {
        " (--lenient skips bad records and lists them)"
    } else {
        ""
    };
    anyhow::anyhow!("{error}{hint}")
}

/// `--input-format NAME`.
pub(crate) fn parse_format(name: &str) -> Result<Format, String> {
    Format::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        format!("unknown format {name:?}; one of {}", names.join(", "))
    })
}
