//! Access logs: one JSON line per request, written by a thread of its own.
//!
//! ```text
//!  request path ─► AccessLog::record ─push─► [bounded buffer] ─every 50 ms─► writer thread ─► stdout | file
//!                        │ full: drop, count (faultline_agent_access_log_dropped_total)
//! ```
//!
//! Like spans, the request path never waits on the log: a full buffer (a stalled pipe,
//! a slow disk) drops the line and counts it. The writer wakes on a timer rather than
//! per line, so a request costs a push under an uncontended lock, not a thread wake-up. Each line carries the request's trace,
//! span and correlation ids, so a log line leads to its trace and back. Fault
//! activations are never written here, for the same reason they stay out of spans:
//! a diagnosis must come from the signals, not from labels.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::metrics::Metrics;

/// Lines waiting for the writer; beyond this they are dropped and counted.
pub const QUEUE_CAPACITY: usize = 8192;
/// How often the writer takes the waiting lines.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// One request as the access log records it.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// When the request arrived (RFC 3339, UTC, milliseconds).
    pub time: String,
    pub node: &'a str,
    /// `inbound` (a request for this node) or `outbound` (this node calling a peer).
    pub direction: &'a str,
    /// The caller (inbound, when another agent called) or the peer called (outbound).
    pub peer: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    /// `1.1`, `2`, …
    pub protocol: &'a str,
    /// The status sent to the caller; absent when no response was sent.
    pub status: Option<u16>,
    pub duration_ms: f64,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub correlation_id: &'a str,
    /// The span's `error.type`, when the request failed.
    pub error_type: Option<&'a str>,
    /// `http.request.resend_count`, when the caller marked a retry.
    pub resend_count: Option<i64>,
}

impl Entry<'_> {
    pub fn time_of(at: SystemTime) -> String {
        humantime::format_rfc3339_millis(at).to_string()
    }

    pub fn duration_ms(elapsed: Duration) -> f64 {
        // Microsecond resolution is plenty for a log line and keeps it short.
        (elapsed.as_micros() as f64) / 1000.0
    }
}

/// Where the request path hands its log lines; cheap to clone.
#[derive(Debug, Clone)]
pub struct AccessLog {
    pending: Arc<Mutex<Vec<String>>>,
    metrics: Metrics,
}

/// The writer thread; [`Writing::finish`] writes out what is queued and ends it.
#[derive(Debug)]
pub struct Writing {
    thread: JoinHandle<()>,
}

impl AccessLog {
    /// Logs to `out` from a writer thread. The thread ends, after writing everything
    /// queued, once every `AccessLog` clone is dropped.
    pub fn start(out: Box<dyn Write + Send>, metrics: Metrics) -> io::Result<(Self, Writing)> {
        let pending = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("access-log".to_owned())
            .spawn(move || write_lines(&lines, out))?;
        Ok((AccessLog { pending, metrics }, Writing { thread }))
    }

    /// Logs to standard output.
    pub fn stdout(metrics: Metrics) -> io::Result<(Self, Writing)> {
        Self::start(Box::new(io::stdout()), metrics)
    }

    /// Appends to `path`, creating it if needed.
    pub fn file(path: &Path, metrics: Metrics) -> io::Result<(Self, Writing)> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Self::start(Box::new(file), metrics)
    }

    /// Queues one line without waiting; a full queue drops it and counts it.
    pub fn record(&self, entry: &Entry<'_>) {
        let line = match serde_json::to_string(entry) {
            Ok(line) => line,
            // Every field is a string or a number: this cannot fail, but if it ever
            // does the line is counted as dropped rather than lost silently.
            Err(_) => {
                self.metrics.access_log_dropped(1);
                return;
            }
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() < QUEUE_CAPACITY {
            pending.push(line);
        } else {
            drop(pending);
            self.metrics.access_log_dropped(1);
        }
    }
}

impl Writing {
    /// Waits for the writer to write out what is waiting and end (every `AccessLog`
    /// must be gone).
    pub fn finish(self) {
        let _ = self.thread.join();
    }
}

fn write_lines(pending: &Arc<Mutex<Vec<String>>>, out: Box<dyn Write + Send>) {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    let mut failed = false;
    let mut batch = Vec::new();
    loop {
        // Every `AccessLog` gone: this is the last round.
        let last = Arc::strong_count(pending) == 1;
        std::mem::swap(
            &mut batch,
            &mut *pending.lock().unwrap_or_else(PoisonError::into_inner),
        );
        let mut result = Ok(());
        for line in batch.drain(..) {
            if result.is_ok() {
                result = writeln!(out, "{line}");
            }
        }
        if result.is_ok() {
            result = out.flush();
        }
        if let Err(e) = result
            && !failed
        {
            // Said once; the agent keeps proxying without its log.
            eprintln!("faultline agent: cannot write the access log: {e}");
            failed = true;
        }
        if last {
            return;
        }
        std::thread::sleep(FLUSH_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn dropped(metrics: &Metrics) -> u64 {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("faultline_agent_access_log_dropped_total "))
            .unwrap()
            .parse()
            .unwrap()
    }

    fn entry(path: &str) -> Entry<'_> {
        Entry {
            time: Entry::time_of(SystemTime::UNIX_EPOCH + Duration::from_millis(1_500)),
            node: "node-1",
            direction: "inbound",
            peer: None,
            method: "GET",
            path,
            protocol: "1.1",
            status: Some(200),
            duration_ms: Entry::duration_ms(Duration::from_micros(1234)),
            trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
            span_id: "b7ad6b7169203331".to_owned(),
            parent_span_id: None,
            correlation_id: "order-42",
            error_type: None,
            resend_count: Some(2),
        }
    }

    #[test]
    fn lines_are_json_with_the_ids_and_every_line_arrives() {
        let out = Shared::default();
        let metrics = Metrics::new();
        let (log, writing) = AccessLog::start(Box::new(out.clone()), metrics.clone()).unwrap();
        for i in 0..100 {
            log.record(&entry(&format!("/orders/{i}")));
        }
        drop(log);
        writing.finish();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 100);
        let first = &lines[0];
        assert_eq!(first["time"], "1970-01-01T00:00:01.500Z");
        assert_eq!(first["path"], "/orders/0");
        assert_eq!(first["correlation_id"], "order-42");
        assert_eq!(first["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(first["duration_ms"], 1.234);
        assert_eq!(first["resend_count"], 2);
        assert!(first["status"] == 200 && first["error_type"].is_null());
        assert_eq!(lines[99]["path"], "/orders/99");
        assert_eq!(dropped(&metrics), 0);
    }

    /// A writer that never returns: the queue fills and the rest is dropped and counted,
    /// while `record` keeps returning at once.
    #[test]
    fn a_stalled_writer_drops_and_counts_instead_of_blocking() {
        struct Stuck(std::sync::mpsc::Receiver<()>);
        impl Write for Stuck {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                let _ = self.0.recv();
                Err(io::Error::other("released"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (release, stuck) = std::sync::mpsc::channel();
        let metrics = Metrics::new();
        let (log, writing) = AccessLog::start(Box::new(Stuck(stuck)), metrics.clone()).unwrap();
        let extra = 100;
        // The writer takes at most a burst before it blocks in `write`; everything past
        // the queue's capacity plus that burst must be counted as dropped.
        for _ in 0..(2 * QUEUE_CAPACITY + extra) {
            log.record(&entry("/x"));
        }
        let dropped = dropped(&metrics);
        assert!(
            dropped >= (extra as u64),
            "{dropped} dropped; at least {extra} expected"
        );
        drop(release);
        drop(log);
        writing.finish();
    }
}
