//! Recorded client histories: what each client asked, when, and what it was told.
//!
//! ```text
//!  client tasks ──invoke(process, op)──► Recorder ──history()──► History ──► checkers
//!       ▲                                 (Arc<Mutex<Vec<Operation>>>)   │
//!       └── Pending ──ok(ret) / fail() / info() / drop ──┘               ├─► JSON lines (save / load)
//!                                                                        └─► Display (printed on failure)
//! ```
//!
//! An [`Operation`] is one client call: the client ([`ProcessId`]), the monotonic time it
//! was invoked and the time it completed (ns since the recorder started), the operation
//! itself and its [`Outcome`]:
//!
//! - `ok(result)`: it happened, and this is what the system answered;
//! - `fail`: it definitely did not happen (the system said so before doing anything);
//! - `info`: unknown — the client timed out or lost the connection. It may have taken
//!   effect at any moment after its invocation, even after the client gave up, so the
//!   checkers treat its completion time as +∞. When in doubt, record `info`: calling a
//!   maybe-applied operation `fail` makes a checker report violations that are not there.
//!
//! Times are taken inside the recorder: the invocation time before the request is sent,
//! the completion time after the answer arrived, so an operation's real effect always
//! lies inside its recorded interval.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The client (logical process) that issued an operation. A process issues one
/// operation at a time.
pub type ProcessId = u64;

/// What the client learned about an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome<R> {
    /// It happened, with this result.
    Ok(R),
    /// It definitely did not happen.
    Fail,
    /// Unknown: it may or may not have happened, at any time after its invocation.
    Info,
}

/// One client call in a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation<Op, Ret> {
    /// Position of the operation in its history (order of invocation when recorded).
    pub id: usize,
    pub process: ProcessId,
    /// Monotonic ns (since the recorder started) just before the request was sent.
    pub invoke_ns: u64,
    /// Monotonic ns just after the answer arrived, or when the client gave up (`info`).
    /// `None` only for an operation still in flight when the history was taken.
    pub complete_ns: Option<u64>,
    pub op: Op,
    pub outcome: Outcome<Ret>,
}

impl<Op, Ret> Operation<Op, Ret> {
    /// The completion time the checkers use: `None` means +∞ (an `info` operation, or
    /// one still in flight).
    pub fn return_ns(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Info => None,
            Outcome::Ok(_) | Outcome::Fail => {
                // A completion before the invocation can only come from a hand-made
                // history; clamp it so the interval stays well formed.
                self.complete_ns.map(|t| t.max(self.invoke_ns))
            }
        }
    }

    /// Real-time order: `self` completed before `other` was invoked, so every correct
    /// execution applies `self` first.
    pub fn precedes<O, R>(&self, other: &Operation<O, R>) -> bool {
        self.return_ns().is_some_and(|t| t < other.invoke_ns)
    }

    /// The result, if the outcome is `ok`.
    pub fn ok(&self) -> Option<&Ret> {
        match &self.outcome {
            Outcome::Ok(r) => Some(r),
            Outcome::Fail | Outcome::Info => None,
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_))
    }

    pub fn is_fail(&self) -> bool {
        matches!(self.outcome, Outcome::Fail)
    }

    pub fn is_info(&self) -> bool {
        matches!(self.outcome, Outcome::Info)
    }
}

/// Formats monotonic ns as seconds with µs precision: `12.345678s`.
pub(crate) struct Seconds(pub(crate) u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}s",
            self.0 / 1_000_000_000,
            (self.0 % 1_000_000_000) / 1_000
        )
    }
}

/// One line per operation: `#12 p3 [1.203456s, 1.517000s] write(x, 5) → ok`.
impl<Op: fmt::Display, Ret: fmt::Display> fmt::Display for Operation<Op, Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} p{} [{}, ",
            self.id,
            self.process,
            Seconds(self.invoke_ns)
        )?;
        match self.complete_ns {
            Some(t) => write!(f, "{}]", Seconds(t))?,
            None => f.write_str("in flight]")?,
        }
        write!(f, " {} → ", self.op)?;
        match &self.outcome {
            Outcome::Ok(r) => write!(f, "{r}"),
            Outcome::Fail => f.write_str("fail"),
            Outcome::Info => f.write_str("info (unknown: may take effect at any later time)"),
        }
    }
}

/// Why a history could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("history i/o: {0}")]
    Io(#[from] io::Error),
    #[error("history line {line}: {source}")]
    Parse {
        line: usize,
        source: serde_json::Error,
    },
    #[error("history line {line}: {reason}")]
    Invalid { line: usize, reason: String },
}

/// A recorded history, in invocation order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History<Op, Ret> {
    ops: Vec<Operation<Op, Ret>>,
}

impl<Op, Ret> Default for History<Op, Ret> {
    fn default() -> Self {
        Self { ops: Vec::new() }
    }
}

impl<Op, Ret> History<Op, Ret> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ops(&self) -> &[Operation<Op, Ret>] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Operation<Op, Ret>> {
        self.ops.iter()
    }

    /// The operation with this id, if any.
    pub fn get(&self, id: usize) -> Option<&Operation<Op, Ret>> {
        match self.ops.get(id) {
            Some(op) if op.id == id => Some(op),
            _ => self.ops.iter().find(|op| op.id == id),
        }
    }

    /// Appends an operation, giving it the next id. Returns the id.
    pub fn push(
        &mut self,
        process: ProcessId,
        invoke_ns: u64,
        complete_ns: Option<u64>,
        op: Op,
        outcome: Outcome<Ret>,
    ) -> usize {
        let id = self.ops.len();
        self.ops.push(Operation {
            id,
            process,
            invoke_ns,
            complete_ns,
            op,
            outcome,
        });
        id
    }

    /// Appends a completed `ok` operation (for hand-written histories in tests).
    pub fn push_ok(
        &mut self,
        process: ProcessId,
        invoke_ns: u64,
        complete_ns: u64,
        op: Op,
        ret: Ret,
    ) -> usize {
        self.push(process, invoke_ns, Some(complete_ns), op, Outcome::Ok(ret))
    }

    /// Appends an operation that definitely did not happen.
    pub fn push_fail(
        &mut self,
        process: ProcessId,
        invoke_ns: u64,
        complete_ns: u64,
        op: Op,
    ) -> usize {
        self.push(process, invoke_ns, Some(complete_ns), op, Outcome::Fail)
    }

    /// Appends an operation whose outcome is unknown.
    pub fn push_info(&mut self, process: ProcessId, invoke_ns: u64, op: Op) -> usize {
        self.push(process, invoke_ns, None, op, Outcome::Info)
    }

    /// Counts of `(ok, fail, info)` outcomes.
    pub fn outcome_counts(&self) -> (usize, usize, usize) {
        self.ops
            .iter()
            .fold((0, 0, 0), |(ok, fail, info), op| match op.outcome {
                Outcome::Ok(_) => (ok + 1, fail, info),
                Outcome::Fail => (ok, fail + 1, info),
                Outcome::Info => (ok, fail, info + 1),
            })
    }
}

impl<Op, Ret> From<Vec<Operation<Op, Ret>>> for History<Op, Ret> {
    fn from(ops: Vec<Operation<Op, Ret>>) -> Self {
        Self { ops }
    }
}

impl<'a, Op, Ret> IntoIterator for &'a History<Op, Ret> {
    type Item = &'a Operation<Op, Ret>;
    type IntoIter = std::slice::Iter<'a, Operation<Op, Ret>>;

    fn into_iter(self) -> Self::IntoIter {
        self.ops.iter()
    }
}

impl<Op: Serialize, Ret: Serialize> History<Op, Ret> {
    /// Writes one JSON object per line.
    pub fn write_jsonl<W: Write>(&self, mut out: W) -> Result<(), HistoryError> {
        for op in &self.ops {
            serde_json::to_writer(&mut out, op).map_err(io::Error::from)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    /// Saves the history as JSON lines (one operation per line).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), HistoryError> {
        let path = path.as_ref();
        let file_err = |source| HistoryError::File {
            path: path.to_owned(),
            source,
        };
        let file = File::create(path).map_err(file_err)?;
        self.write_jsonl(BufWriter::new(file)).map_err(|e| match e {
            HistoryError::Io(source) => file_err(source),
            other => other,
        })
    }
}

impl<Op: DeserializeOwned, Ret: DeserializeOwned> History<Op, Ret> {
    /// Reads JSON lines written by [`History::write_jsonl`]; blank lines are skipped.
    /// Ids must be unique and intervals well formed.
    pub fn read_jsonl<R: BufRead>(input: R) -> Result<Self, HistoryError> {
        let mut ops: Vec<Operation<Op, Ret>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (index, line) in input.lines().enumerate() {
            let line_no = index + 1;
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Operation<Op, Ret> =
                serde_json::from_str(&line).map_err(|source| HistoryError::Parse {
                    line: line_no,
                    source,
                })?;
            let invalid = |reason: String| HistoryError::Invalid {
                line: line_no,
                reason,
            };
            if !seen.insert(op.id) {
                return Err(invalid(format!("duplicate operation id {}", op.id)));
            }
            match (op.complete_ns, &op.outcome) {
                (None, Outcome::Ok(_) | Outcome::Fail) => {
                    return Err(invalid(format!(
                        "operation #{} is completed but has no complete_ns",
                        op.id
                    )));
                }
                (Some(c), _) if c < op.invoke_ns => {
                    return Err(invalid(format!(
                        "operation #{} completes at {c} ns, before its invocation at {} ns",
                        op.id, op.invoke_ns
                    )));
                }
                _ => {}
            }
            ops.push(op);
        }
        Ok(Self { ops })
    }

    /// Loads a history saved by [`History::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref();
        let file_err = |source| HistoryError::File {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(file_err)?;
        Self::read_jsonl(BufReader::new(file)).map_err(|e| match e {
            HistoryError::Io(source) => file_err(source),
            other => other,
        })
    }
}

/// A header line with the counts, then one line per operation in invocation order.
impl<Op: fmt::Display, Ret: fmt::Display> fmt::Display for History<Op, Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ok, fail, info) = self.outcome_counts();
        writeln!(
            f,
            "history: {} operations ({ok} ok, {fail} fail, {info} info)",
            self.ops.len()
        )?;
        let mut order: Vec<&Operation<Op, Ret>> = self.ops.iter().collect();
        order.sort_by_key(|op| (op.invoke_ns, op.id));
        for op in order {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// Records a history from many concurrent clients.
///
/// Cloning is cheap (an `Arc`); each client task holds a clone. Recording an operation
/// costs two short critical sections (invoke, complete) on one mutex, which is noise
/// next to a network round trip.
///
/// ```
/// use faultline_cluster::check::{Recorder, Outcome};
/// let recorder: Recorder<&str, u32> = Recorder::new();
/// let call = recorder.invoke(1, "read x");
/// call.ok(7);
/// let timed_out = recorder.invoke(2, "write x");
/// drop(timed_out); // never completed: recorded as info
/// let history = recorder.history();
/// assert_eq!(history.ops()[0].outcome, Outcome::Ok(7));
/// assert_eq!(history.ops()[1].outcome, Outcome::Info);
/// ```
pub struct Recorder<Op, Ret> {
    shared: Arc<Shared<Op, Ret>>,
}

struct Shared<Op, Ret> {
    origin: Instant,
    ops: Mutex<Vec<Operation<Op, Ret>>>,
}

impl<Op, Ret> Shared<Op, Ret> {
    fn lock(&self) -> MutexGuard<'_, Vec<Operation<Op, Ret>>> {
        // A client that panicked mid-record leaves a consistent Vec behind (every write
        // is a single push or field store), so a poisoned lock is safe to keep using.
        self.ops.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn complete(&self, id: usize, outcome: Outcome<Ret>) {
        let mut ops = self.lock();
        let now = self.now_ns();
        if let Some(op) = ops.get_mut(id) {
            op.complete_ns = Some(now);
            op.outcome = outcome;
        }
    }
}

impl<Op, Ret> Clone for Recorder<Op, Ret> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Op, Ret> Default for Recorder<Op, Ret> {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared {
                origin: Instant::now(),
                ops: Mutex::new(Vec::new()),
            }),
        }
    }
}

impl<Op, Ret> fmt::Debug for Recorder<Op, Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("operations", &self.shared.lock().len())
            .finish()
    }
}

impl<Op, Ret> Recorder<Op, Ret> {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the invocation of `op` by `process` and returns the handle to complete it.
    /// Call this just before sending the request.
    pub fn invoke(&self, process: ProcessId, op: Op) -> Pending<Op, Ret> {
        let mut ops = self.shared.lock();
        let id = ops.len();
        let invoke_ns = self.shared.now_ns();
        ops.push(Operation {
            id,
            process,
            invoke_ns,
            complete_ns: None,
            op,
            outcome: Outcome::Info,
        });
        Pending {
            shared: Some(Arc::clone(&self.shared)),
            id,
        }
    }

    /// Number of operations recorded so far (including those in flight).
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of the history. Operations still in flight appear as `info` with no
    /// completion time.
    pub fn history(&self) -> History<Op, Ret>
    where
        Op: Clone,
        Ret: Clone,
    {
        History {
            ops: self.shared.lock().clone(),
        }
    }
}

/// An invoked operation waiting for its outcome. Dropping it without completing
/// records `info` (the client gave up: the operation may still take effect).
#[must_use = "complete the operation with ok, fail or info; dropping it records info"]
pub struct Pending<Op, Ret> {
    shared: Option<Arc<Shared<Op, Ret>>>,
    id: usize,
}

impl<Op, Ret> fmt::Debug for Pending<Op, Ret> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("id", &self.id).finish()
    }
}

impl<Op, Ret> Pending<Op, Ret> {
    /// The id the operation has in the history.
    pub fn id(&self) -> usize {
        self.id
    }

    /// It happened, with this result. Call this just after the answer arrived.
    pub fn ok(mut self, ret: Ret) {
        self.finish(Outcome::Ok(ret));
    }

    /// It definitely did not happen.
    pub fn fail(mut self) {
        self.finish(Outcome::Fail);
    }

    /// Unknown: timed out, connection lost, or an ambiguous error.
    pub fn info(mut self) {
        self.finish(Outcome::Info);
    }

    fn finish(&mut self, outcome: Outcome<Ret>) {
        if let Some(shared) = self.shared.take() {
            shared.complete(self.id, outcome);
        }
    }
}

impl<Op, Ret> Drop for Pending<Op, Ret> {
    fn drop(&mut self) {
        self.finish(Outcome::Info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History<String, u32> {
        let mut h = History::new();
        h.push_ok(1, 10, 20, "read".to_owned(), 3);
        h.push_fail(2, 15, 25, "write".to_owned());
        h.push_info(3, 17, "cas".to_owned());
        h
    }

    #[test]
    fn recorder_records_outcomes_and_times() {
        let recorder: Recorder<&str, u32> = Recorder::new();
        let a = recorder.invoke(1, "a");
        let b = recorder.invoke(2, "b");
        let c = recorder.invoke(3, "c");
        let d = recorder.invoke(4, "d");
        b.fail();
        a.ok(5);
        drop(c);
        let snapshot = recorder.history();
        d.info();
        let h = recorder.history();
        let ops = h.ops();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].outcome, Outcome::Ok(5));
        assert_eq!(ops[1].outcome, Outcome::Fail);
        assert_eq!(ops[2].outcome, Outcome::Info);
        assert!(
            ops[2].complete_ns.is_some(),
            "a dropped call records when the client gave up"
        );
        assert_eq!(ops[3].outcome, Outcome::Info);
        assert!(ops.windows(2).all(|w| w[0].invoke_ns <= w[1].invoke_ns));
        for op in ops {
            assert!(op.complete_ns.is_some_and(|c| c >= op.invoke_ns));
        }
        assert_eq!(
            snapshot.ops()[3].complete_ns,
            None,
            "in flight at snapshot time"
        );
        assert_eq!(ops[1].return_ns(), ops[1].complete_ns);
        assert_eq!(ops[2].return_ns(), None, "info completes at +inf");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recorder_is_shared_by_concurrent_tasks() {
        let recorder: Recorder<u64, u64> = Recorder::new();
        let mut tasks = Vec::new();
        for p in 0..8u64 {
            let r = recorder.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100 {
                    let call = r.invoke(p, i);
                    tokio::task::yield_now().await;
                    call.ok(i * 2);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let h = recorder.history();
        assert_eq!(h.len(), 800);
        for (i, op) in h.iter().enumerate() {
            assert_eq!(op.id, i);
            assert_eq!(op.ok(), Some(&(op.op * 2)));
        }
        // Each process is sequential: its operations do not overlap.
        for p in 0..8 {
            let mine: Vec<_> = h.iter().filter(|o| o.process == p).collect();
            assert!(mine.windows(2).all(|w| w[0].precedes(w[1])));
        }
    }

    #[test]
    fn jsonl_round_trip() {
        let h = sample();
        let mut buf = Vec::new();
        h.write_jsonl(&mut buf).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains(r#""outcome":{"ok":3}"#),
            "{text}"
        );
        let back: History<String, u32> = History::read_jsonl(&buf[..]).unwrap();
        assert_eq!(back, h);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        h.save(&path).unwrap();
        assert_eq!(History::<String, u32>::load(&path).unwrap(), h);
    }

    #[test]
    fn load_reports_line_and_reason() {
        let bad = "{\"id\":0,\"process\":1,\"invoke_ns\":5,\"complete_ns\":6,\"op\":\"x\",\"outcome\":\"fail\"}\n\nnot json\n";
        match History::<String, u32>::read_jsonl(bad.as_bytes()) {
            Err(HistoryError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a parse error, got {other:?}"),
        }
        let backwards = "{\"id\":0,\"process\":1,\"invoke_ns\":5,\"complete_ns\":4,\"op\":\"x\",\"outcome\":\"fail\"}\n";
        let err = History::<String, u32>::read_jsonl(backwards.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("line 1") && err.to_string().contains("before its invocation"),
            "{err}"
        );
        let dup = "{\"id\":0,\"process\":1,\"invoke_ns\":5,\"complete_ns\":null,\"op\":\"x\",\"outcome\":\"info\"}\n\
                   {\"id\":0,\"process\":1,\"invoke_ns\":5,\"complete_ns\":null,\"op\":\"x\",\"outcome\":\"info\"}\n";
        let err = History::<String, u32>::read_jsonl(dup.as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("duplicate"),
            "{err}"
        );
        let missing = History::<String, u32>::load("/nonexistent/h.jsonl").unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/h.jsonl"),
            "{missing}"
        );
    }

    #[test]
    fn display_is_one_line_per_operation() {
        let text = sample().to_string();
        assert!(
            text.starts_with("history: 3 operations (1 ok, 1 fail, 1 info)"),
            "{text}"
        );
        assert!(
            text.contains("#0 p1 [0.000000s, 0.000000s] read → 3"),
            "{text}"
        );
        assert!(
            text.contains("#1 p2 [0.000000s, 0.000000s] write → fail"),
            "{text}"
        );
        assert!(
            text.contains("#2 p3 [0.000000s, in flight] cas → info"),
            "{text}"
        );
        assert_eq!(Seconds(1_234_567_891).to_string(), "1.234567s");
    }
}
