//! `faultline record`: an OTLP receiver whose output goes to a capture file.
//!
//! ```text
//!  OTLP gRPC/HTTP ─► receiver (bounded queue) ─► writer thread ─► CaptureFile (rotation, fsync)
//!  Ctrl-C / SIGTERM / --duration ─► stop listening ─► drain the queue ─► finish the file
//! ```
//!
//! Nothing acknowledged is dropped on a clean stop: servers finish in-flight requests,
//! the writer drains the queue, and the file is closed (compression ended, fsynced).
//! Lines are written whole; buffered lines reach the OS at least every second.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use faultline_model::receiver::{Received, ReceiverConfig, StatsSnapshot, bind, receiver};
use faultline_model::write::{CaptureFile, CaptureFileOptions, CaptureFileSummary};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::fmt::{self, OutputFormat};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (repeat for several); each serves OTLP/gRPC and OTLP/HTTP.
    /// Port 0 picks a free port; the bound address is printed.
    #[arg(long = "listen", value_name = "ADDR", default_values = ["127.0.0.1:4317", "127.0.0.1:4318"])]
    listen: Vec<SocketAddr>,
    /// Capture file to write: OTLP JSON lines, compressed if it ends in .gz or .zst.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    force: bool,
    /// Rotate when the file holds this much (uncompressed JSON), e.g. 256MiB; older
    /// parts are renamed FILE-000001…, the newest stays FILE.
    #[arg(long, value_name = "SIZE", value_parser = fmt::parse_size)]
    rotate_size: Option<u64>,
    /// With --rotate-size: keep at most N older parts, deleting the oldest when a
    /// rotation makes one more (the disk used stays within about (N + 1) × SIZE).
    #[arg(long, value_name = "N", requires = "rotate_size")]
    keep: Option<usize>,
    /// Requests that may wait for the writer; beyond it, clients are told to retry.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    queue: usize,
    /// Largest request accepted, after decompression.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = fmt::parse_size)]
    max_message_size: u64,
    /// Stop after this long (e.g. 30s, 5m) instead of waiting for Ctrl-C.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Format of the closing summary.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.out.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite it)",
            args.out.display()
        );
    }
    if args.rotate_size.is_some() {
        clear_old_parts(&args.out, args.force)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(record(args))
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct Summary {
    #[serde(flatten)]
    pub(crate) file: CaptureFileSummary,
    pub(crate) receiver: StatsSnapshot,
}

async fn record(args: Args) -> anyhow::Result<ExitCode> {
    let mut recording = Recording::start(
        &args.listen,
        &args.out,
        RecordingOptions {
            queue: args.queue,
            max_message_size: args.max_message_size,
            rotate_size: args.rotate_size,
            keep: args.keep,
        },
    )
    .await?;
    eprintln!(
        "faultline record: writing to {} (Ctrl-C to stop)",
        args.out.display()
    );
    let failed = tokio::select! {
        () = stop_signal(args.duration) => false,
        _ = recording.writer_done() => true,
    };
    if failed {
        eprintln!("faultline record: the capture writer stopped");
    }
    let summary = recording.finish().await?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        OutputFormat::Text => print_summary(&summary),
    }
    Ok(ExitCode::SUCCESS)
}

/// Numbered parts of an earlier recording to the same FILE would read as older (or,
/// numbered higher, as newer) parts of this one: refuse them, or with `--force` delete
/// them.
fn clear_old_parts(out: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let old: Vec<PathBuf> = match faultline_model::write::recording_parts(out) {
        Ok(files) => files.into_iter().filter(|f| f != out).collect(),
        // No directory yet: creating the file will say so.
        Err(_) => return Ok(()),
    };
    if old.is_empty() {
        return Ok(());
    }
    if !force {
        bail!(
            "{} and {} more parts of an earlier recording exist (use --force to delete them)",
            old[0].display(),
            old.len() - 1
        );
    }
    for part in &old {
        std::fs::remove_file(part).with_context(|| {
            format!("deleting {} (an earlier recording's part)", part.display())
        })?;
    }
    eprintln!(
        "faultline record: deleted {} parts of an earlier recording to {}",
        old.len(),
        out.display()
    );
    Ok(())
}

/// How a [`Recording`] receives and writes.
#[derive(Debug, Clone)]
pub(crate) struct RecordingOptions {
    pub(crate) queue: usize,
    pub(crate) max_message_size: u64,
    pub(crate) rotate_size: Option<u64>,
    /// Older parts kept (with `rotate_size`); `None`: all.
    pub(crate) keep: Option<usize>,
}

impl Default for RecordingOptions {
    fn default() -> Self {
        RecordingOptions {
            queue: 1024,
            max_message_size: 64 << 20,
            rotate_size: None,
            keep: None,
        }
    }
}

/// A receiver writing what arrives to a capture file, until [`Recording::finish`]
/// (used by `record` and by `demo record`, which embeds one).
pub(crate) struct Recording {
    /// The bound addresses (port 0 resolved).
    pub(crate) addrs: Vec<SocketAddr>,
    out: PathBuf,
    stop: watch::Sender<bool>,
    servers: JoinSet<std::io::Result<()>>,
    writer: Option<tokio::task::JoinHandle<std::io::Result<CaptureFileSummary>>>,
    stats: std::sync::Arc<faultline_model::receiver::ReceiverStats>,
}

impl Recording {
    /// Binds every address (before creating the file, so that a busy port leaves no
    /// empty capture behind), creates the capture and starts serving.
    pub(crate) async fn start(
        listen: &[SocketAddr],
        out: &std::path::Path,
        options: RecordingOptions,
    ) -> anyhow::Result<Recording> {
        let max_message_bytes = usize::try_from(options.max_message_size).unwrap_or(usize::MAX);
        let (receiver, output) = receiver(ReceiverConfig {
            queue_capacity: options.queue,
            max_message_bytes,
            ..ReceiverConfig::default()
        });
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for addr in listen {
            let (listener, local) = bind(*addr).await.map_err(|e| {
                let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                    " (another OTLP receiver or Collector is using it: stop it, or pick another port with --listen, e.g. 127.0.0.1:0)"
                } else {
                    ""
                };
                anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
            })?;
            eprintln!("faultline record: listening on {local} (OTLP gRPC and HTTP)");
            listeners.push(listener);
            addrs.push(local);
        }
        let file = CaptureFile::create(
            out,
            CaptureFileOptions {
                rotate_bytes: options.rotate_size,
                keep_parts: options.keep,
            },
        )
        .with_context(|| format!("cannot create {}", out.display()))?;
        let (stop, stopped) = watch::channel(false);
        let mut servers = JoinSet::new();
        for listener in listeners {
            let server = receiver.clone();
            let mut stopped = stopped.clone();
            servers.spawn(async move {
                server
                    .serve(listener, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            });
        }
        let stats = receiver.stats().clone();
        // From here only the servers hold the queue's senders: when they end, it closes.
        drop(receiver);
        let runtime = tokio::runtime::Handle::current();
        let writer = tokio::task::spawn_blocking(move || write_loop(file, output, runtime));
        Ok(Recording {
            addrs,
            out: out.to_owned(),
            stop,
            servers,
            writer: Some(writer),
            stats,
        })
    }

    /// Resolves when the writer has stopped on its own (a write error).
    pub(crate) async fn writer_done(&mut self) {
        match &mut self.writer {
            Some(writer) if !writer.is_finished() => {
                while !writer.is_finished() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            _ => {}
        }
    }

    /// Stops listening, lets in-flight requests finish, drains the queue and closes the
    /// file (compression ended, fsynced).
    pub(crate) async fn finish(mut self) -> anyhow::Result<Summary> {
        eprintln!("faultline record: stopping");
        let _ = self.stop.send(true);
        // In-flight requests finish; a client that holds its connection open past the
        // grace period is cut off, as a Collector would.
        let servers = &mut self.servers;
        let drained = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(result) = servers.join_next().await {
                if let Ok(Err(e)) = result {
                    eprintln!("faultline record: server error: {e}");
                }
            }
        })
        .await;
        if drained.is_err() {
            self.servers.abort_all();
            while self.servers.join_next().await.is_some() {}
        }
        let writer = self
            .writer
            .take()
            .context("the capture writer was already finished")?;
        let written = writer
            .await
            .context("capture writer stopped unexpectedly")?
            .with_context(|| format!("writing {}", self.out.display()))?;
        Ok(Summary {
            file: written,
            receiver: self.stats.snapshot(),
        })
    }
}

fn write_loop(
    mut file: CaptureFile,
    mut output: mpsc::Receiver<Received>,
    runtime: tokio::runtime::Handle,
) -> std::io::Result<CaptureFileSummary> {
    let mut failures_told = 0;
    loop {
        match runtime.block_on(tokio::time::timeout(Duration::from_secs(1), output.recv())) {
            Ok(Some(Received::Spans(spans))) => file.write_batch(&spans)?,
            // Not asked for; the receiver does not forward them.
            Ok(Some(Received::Metrics(_) | Received::Logs(_))) => {}
            Ok(None) => break,
            Err(_idle) => file.flush()?,
        }
        // Retention that fails does not stop the recording (the disk bound does, later);
        // say so when it happens, not only in the summary.
        if file.removal_failures() > failures_told {
            failures_told = file.removal_failures();
            let last = file.removal_errors().last().map_or("", String::as_str);
            eprintln!("faultline record: {last} (will retry at the next rotation)");
        }
    }
    file.finish()
}

/// Ctrl-C, SIGTERM, or the end of `--duration`.
pub(crate) async fn stop_signal(duration: Option<Duration>) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
        () = timer => {}
    }
}

fn print_summary(summary: &Summary) {
    let files: Vec<String> = summary
        .file
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let r = &summary.receiver;
    eprintln!(
        "faultline record: wrote {} spans in {} lines ({}) to {}",
        fmt::count(summary.file.spans),
        fmt::count(summary.file.lines),
        fmt::bytes(summary.file.bytes),
        files.join(", ")
    );
    if summary.file.parts_removed > 0 {
        eprintln!(
            "faultline record: deleted {} older parts (--keep)",
            fmt::count(summary.file.parts_removed)
        );
    }
    if summary.file.removal_failures > 0 {
        eprintln!(
            "faultline record: {} failed attempts to delete an older part: {}",
            fmt::count(summary.file.removal_failures),
            summary.file.removal_errors.join("; ")
        );
    }
    eprintln!(
        "faultline record: {} requests; {} spans rejected as invalid, {} refused while the queue was full, {} bad requests",
        fmt::count(r.requests),
        fmt::count(r.rejected_spans),
        fmt::count(r.refused_spans),
        fmt::count(r.bad_requests)
    );
}
