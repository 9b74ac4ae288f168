//! Lost writes and stale reads in the quorum KV (leaderless, last-writer-wins by version).
//!
//! ```text
//!  clients: write(k, v, W), delete(k, W), read(k, R) ──► History<KvOp, KvRet> ──┬─► check_stale_reads ─► counts + examples
//!  after healing: every key read from all replicas ──► [FinalRead] ─────────────┴─► check_lost_writes ─► lost (W ≥ 2), unexplained
//! ```
//!
//! The quorum KV is not linearizable and does not try to be: concurrent writes race,
//! replicas lag, and with R + W ≤ N a read may miss the latest write. What it promises is
//! durability of acknowledged writes: once the failed node is back and replicas have
//! converged, a write acknowledged by W ≥ 2 replicas is either the final value or was
//! legitimately overwritten. This module states that promise precisely and checks it.
//!
//! # Definitions
//!
//! Operations on one key are compared in *real time*: `a` **precedes** `b` when `a`
//! completed before `b` was invoked. The initial (absent) value precedes everything. A
//! write *may have taken effect* if its outcome is `ok` or `info`; `fail` means it did not
//! (a client that cannot tell — e.g. fewer than W acks but some replica may have it — must
//! record `info`). A delete is a write of "absent".
//!
//! **Final value.** The final reads of a key (one per replica, or one with R = N) are
//! resolved by last-writer-wins: the highest version if every present value has one;
//! otherwise every distinct value read is a candidate (lenient, and the key is reported as
//! divergent — replicas that disagree after healing have not converged).
//!
//! **Survivors.** The writes that may have produced the final value: same value, and the
//! same version when both sides know it. The initial state survives if the final value is
//! absent with no version.
//!
//! **Superseded.** An acknowledged write `A` is *superseded* when some survivor does not
//! precede `A` — it was concurrent with `A` (either may win under LWW) or invoked after
//! `A` completed (it is later, so it should win). Note the condition is on the
//! *survivor*, not on any later write: if `A` was overwritten by a later write `B` whose
//! own outcome is unknown, but the final value is some write older than `A`, then `A` was
//! lost all the same.
//!
//! **Lost.** An acknowledged write that is not a survivor and not superseded: every
//! survivor precedes it (or there is none). Reported as an error when W ≥ 2, counted
//! when W < 2 (such writes may legitimately die with the one replica that took them).
//!
//! **Unexplained.** A final value no write could have produced: corruption, or a write
//! reported `fail` that took effect. An error.
//!
//! **Stale read.** An `ok` read returning a value whose every possible writer precedes
//! some *acknowledged* write that completed before the read was invoked: the read
//! returned a value that had already been overwritten by then. With R + W ≤ N these are
//! allowed; they are counted (per R) with examples and the time the value had been
//! outdated for, never reported as errors. A read of a value nobody wrote is counted as
//! unexplained.
//!
//! **Version inversions** (measured). Two acknowledged writes of a key with known
//! versions, the first preceding the second, where the second got the lower version: LWW
//! will keep the older one. This is what clock skew does to an HLC that is not fed the
//! versions it overwrites, and it explains lost writes when it happens.
//!
//! # What is not checked
//!
//! Read-your-writes, monotonic reads, and anything about `info` writes other than that
//! they may have happened. Lost writes are judged against the final state only: a write
//! lost and then rewritten with the same value (same version unknown) looks survived.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::history::{History, Operation, Outcome, Seconds};

pub type Key = String;
pub type Value = String;
/// A value as a replica stores it: `None` for absent, with its version if known.
pub type VersionedValue = (Option<Value>, Option<Version>);

/// A KV version: a hybrid-logical-clock timestamp and the node that assigned it,
/// compared lexicographically. `clock` is the HLC packed into one totally ordered `u64`
/// (e.g. physical ms << 16 | logical counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub clock: u64,
    pub node: u64,
}

/// A KV operation as a client issued it, with the quorum it asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum KvOp {
    Write { key: Key, value: Value, w: u8 },
    Delete { key: Key, w: u8 },
    Read { key: Key, r: u8 },
}

impl KvOp {
    pub fn key(&self) -> &str {
        match self {
            Self::Write { key, .. } | Self::Delete { key, .. } | Self::Read { key, .. } => key,
        }
    }
}

/// What the KV answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvRet {
    /// A write or delete was acknowledged, with the version it got if the KV said.
    Written { version: Option<Version> },
    /// The value read (`None`: absent or deleted) and its version, if any.
    Read {
        value: Option<Value>,
        version: Option<Version>,
    },
}

/// One key's value as read after healing, from one replica (or with R = N).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalRead {
    pub key: Key,
    pub value: Option<Value>,
    pub version: Option<Version>,
    /// Which replica answered, for the report.
    pub replica: Option<String>,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}@n{}", self.clock, self.node)
    }
}

/// `value@version`, `∅` for absent.
struct Shown<'a>(Option<&'a str>, Option<Version>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.unwrap_or("∅"))?;
        match self.1 {
            Some(v) => write!(f, " ({v})"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Write { key, value, w } => write!(f, "write({key}, {value}, W={w})"),
            Self::Delete { key, w } => write!(f, "delete({key}, W={w})"),
            Self::Read { key, r } => write!(f, "read({key}, R={r})"),
        }
    }
}

impl fmt::Display for KvRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Written { version: Some(v) } => write!(f, "ok ({v})"),
            Self::Written { version: None } => f.write_str("ok"),
            Self::Read { value, version } => write!(f, "{}", Shown(value.as_deref(), *version)),
        }
    }
}

impl fmt::Display for FinalRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {}",
            self.key,
            Shown(self.value.as_deref(), self.version)
        )?;
        match &self.replica {
            Some(r) => write!(f, " on {r}"),
            None => Ok(()),
        }
    }
}

type KvOperation = Operation<KvOp, KvRet>;

/// A write (or delete) that may have taken effect.
struct Write<'h> {
    op: &'h KvOperation,
    value: Option<&'h str>,
    w: u8,
    version: Option<Version>,
}

impl<'h> Write<'h> {
    fn from(op: &'h KvOperation) -> Option<Self> {
        let (value, w) = match &op.op {
            KvOp::Write { value, w, .. } => (Some(value.as_str()), *w),
            KvOp::Delete { w, .. } => (None, *w),
            KvOp::Read { .. } => return None,
        };
        let version = match &op.outcome {
            Outcome::Ok(KvRet::Written { version }) => *version,
            Outcome::Ok(_) | Outcome::Info => None,
            Outcome::Fail => return None,
        };
        Some(Self {
            op,
            value,
            w,
            version,
        })
    }

    fn acked(&self) -> bool {
        self.op.is_ok()
    }

    /// Could this write have produced `value` with `version`?
    fn produced(&self, value: Option<&str>, version: Option<Version>) -> bool {
        self.value == value
            && match (self.version, version) {
                (Some(mine), Some(seen)) => mine == seen,
                _ => true,
            }
    }
}

/// Who may have written a value: the initial state, or some writes (history op ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Writers {
    pub initial: bool,
    pub writes: Vec<usize>,
}

impl fmt::Display for Writers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.writes.iter().map(|id| format!("#{id}")).collect();
        if self.initial {
            parts.insert(0, "the initial state".to_owned());
        }
        if parts.is_empty() {
            f.write_str("no write")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// An acknowledged write missing from the final state with no legitimate reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostWrite {
    pub write: KvOperation,
    /// The resolved final value(s) of the key.
    pub final_values: Vec<VersionedValue>,
    /// The writes that may have produced it; all precede the lost write.
    pub final_writers: Writers,
}

/// A final value that no write could have produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unexplained {
    pub key: Key,
    pub value: Option<Value>,
    pub version: Option<Version>,
    /// Ids of `fail`ed writes of that value, if any (the KV reported failure but applied it).
    pub failed_writers: Vec<usize>,
}

/// Two acknowledged writes whose versions contradict their real-time order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInversion {
    pub key: Key,
    /// (op id, version) of the write that completed first, and of the later one.
    pub earlier: (usize, Version),
    pub later: (usize, Version),
}

/// The verdict of [`check_lost_writes`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostWriteReport {
    pub keys: usize,
    /// Acknowledged writes with W ≥ 2, and how they ended.
    pub acked_quorum_writes: usize,
    pub survived: usize,
    pub superseded: usize,
    /// Errors.
    pub lost: Vec<LostWrite>,
    pub unexplained: Vec<Unexplained>,
    /// Acknowledged writes (any W) to keys with no final read: not checked — an error,
    /// since the test forgot to read them back.
    pub unchecked: Vec<usize>,
    /// Acknowledged writes with W < 2 that were lost (allowed, measured).
    pub lost_below_quorum: usize,
    /// Keys whose replicas disagreed in the final reads: key → distinct (value, version).
    pub divergent: BTreeMap<Key, Vec<VersionedValue>>,
    pub version_inversions: Vec<VersionInversion>,
}

impl LostWriteReport {
    /// No acknowledged W ≥ 2 write lost, no unexplained value, every written key read back.
    pub fn is_ok(&self) -> bool {
        self.lost.is_empty() && self.unexplained.is_empty() && self.unchecked.is_empty()
    }
}

/// The writes of each key that may have taken effect (outcome `ok` or `info`), and the
/// `fail`ed ones apart.
struct KeyWrites<'h> {
    possible: BTreeMap<&'h str, Vec<Write<'h>>>,
    failed: HashMap<&'h str, Vec<&'h KvOperation>>,
}

fn writes_by_key(history: &History<KvOp, KvRet>) -> KeyWrites<'_> {
    let mut by_key = KeyWrites {
        possible: BTreeMap::new(),
        failed: HashMap::new(),
    };
    for op in history {
        if matches!(op.op, KvOp::Read { .. }) {
            continue;
        }
        match Write::from(op) {
            Some(w) => by_key.possible.entry(op.op.key()).or_default().push(w),
            None => by_key.failed.entry(op.op.key()).or_default().push(op),
        }
    }
    by_key
}

/// Checks that no acknowledged write with W ≥ 2 was lost (see the module docs).
pub fn check_lost_writes(
    history: &History<KvOp, KvRet>,
    final_reads: &[FinalRead],
) -> LostWriteReport {
    let KeyWrites {
        possible: writes,
        failed,
    } = writes_by_key(history);
    let mut finals: BTreeMap<&str, Vec<&FinalRead>> = BTreeMap::new();
    for read in final_reads {
        finals.entry(&read.key).or_default().push(read);
    }
    let mut report = LostWriteReport {
        keys: writes.len(),
        ..LostWriteReport::default()
    };
    let keys: BTreeSet<&str> = writes.keys().chain(finals.keys()).copied().collect();
    for key in &keys {
        let writes: &[Write<'_>] = writes.get(key).map_or(&[], Vec::as_slice);
        report
            .version_inversions
            .extend(version_inversions(key, writes));
        let quorum = |w: &&Write<'_>| w.acked() && w.w >= 2;
        report.acked_quorum_writes += writes.iter().filter(quorum).count();
        let Some(reads) = finals.get(key) else {
            report
                .unchecked
                .extend(writes.iter().filter(|w| w.acked()).map(|w| w.op.id));
            continue;
        };
        let mut distinct: Vec<(Option<&str>, Option<Version>)> = Vec::new();
        for r in reads {
            let seen = (r.value.as_deref(), r.version);
            if !distinct.contains(&seen) {
                distinct.push(seen);
            }
        }
        if distinct.len() > 1 {
            report.divergent.insert(
                (*key).to_owned(),
                distinct
                    .iter()
                    .map(|(v, ver)| (v.map(str::to_owned), *ver))
                    .collect(),
            );
        }
        // Last-writer-wins when every present value carries a version; otherwise keep
        // every candidate.
        let resolved: Vec<(Option<&str>, Option<Version>)> =
            if distinct.iter().all(|(v, ver)| v.is_none() || ver.is_some()) {
                let best = distinct.iter().map(|(_, ver)| *ver).max().flatten();
                distinct
                    .iter()
                    .filter(|(_, ver)| *ver == best)
                    .copied()
                    .collect()
            } else {
                distinct.clone()
            };
        let mut survivors = Writers {
            initial: false,
            writes: Vec::new(),
        };
        for &(value, version) in &resolved {
            let before = survivors.writes.len();
            survivors.writes.extend(
                writes
                    .iter()
                    .filter(|w| w.produced(value, version))
                    .map(|w| w.op.id),
            );
            let initial = value.is_none() && version.is_none();
            survivors.initial |= initial;
            if survivors.writes.len() == before && !initial {
                report.unexplained.push(Unexplained {
                    key: (*key).to_owned(),
                    value: value.map(str::to_owned),
                    version,
                    failed_writers: failed
                        .get(key)
                        .into_iter()
                        .flatten()
                        .filter(|op| match &op.op {
                            KvOp::Write { value: v, .. } => Some(v.as_str()) == value,
                            KvOp::Delete { .. } => value.is_none(),
                            KvOp::Read { .. } => false,
                        })
                        .map(|op| op.id)
                        .collect(),
                });
            }
        }
        let by_id: HashMap<usize, &Write<'_>> = writes.iter().map(|w| (w.op.id, w)).collect();
        for a in writes.iter().filter(|w| w.acked()) {
            let survived = survivors.writes.contains(&a.op.id);
            let superseded = !survived
                && survivors
                    .writes
                    .iter()
                    .any(|id| by_id.get(id).is_some_and(|s| !s.op.precedes(a.op)));
            if a.w >= 2 {
                if survived {
                    report.survived += 1;
                } else if superseded {
                    report.superseded += 1;
                }
            }
            if survived || superseded {
                continue;
            }
            if a.w < 2 {
                report.lost_below_quorum += 1;
                continue;
            }
            report.lost.push(LostWrite {
                write: a.op.clone(),
                final_values: resolved
                    .iter()
                    .map(|(v, ver)| (v.map(str::to_owned), *ver))
                    .collect(),
                final_writers: survivors.clone(),
            });
        }
    }
    report
}

/// Acknowledged writes with versions whose version order contradicts real time.
fn version_inversions(key: &str, writes: &[Write<'_>]) -> Vec<VersionInversion> {
    let mut acked: Vec<(&Write<'_>, Version)> = writes
        .iter()
        .filter(|w| w.acked())
        .filter_map(|w| w.version.map(|v| (w, v)))
        .collect();
    let mut by_completion = acked.clone();
    by_completion.sort_by_key(|(w, _)| w.op.return_ns());
    acked.sort_by_key(|(w, _)| w.op.invoke_ns);
    // Sweep: for each write in invocation order, the highest version among writes that
    // completed before it was invoked.
    let mut out = Vec::new();
    let mut done = 0;
    let mut highest: Option<(usize, Version)> = None;
    for (later, version) in &acked {
        while done < by_completion.len()
            && by_completion[done]
                .0
                .op
                .return_ns()
                .is_some_and(|t| t < later.op.invoke_ns)
        {
            let (w, v) = by_completion[done];
            if highest.is_none_or(|(_, h)| v > h) {
                highest = Some((w.op.id, v));
            }
            done += 1;
        }
        if let Some((earlier, high)) = highest
            && *version < high
        {
            out.push(VersionInversion {
                key: key.to_owned(),
                earlier: (earlier, high),
                later: (later.op.id, *version),
            });
        }
    }
    out
}

/// A read that returned an already-overwritten value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleRead {
    pub read: KvOperation,
    /// The acknowledged write that had overwritten the value before the read began.
    pub overwritten_by: usize,
    /// How long before the read's invocation that overwrite had completed (ns): a lower
    /// bound on how stale the value was.
    pub outdated_for_ns: u64,
}

/// The measurements of [`check_stale_reads`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaleReadReport {
    /// `ok` reads checked, and stale ones.
    pub reads: usize,
    pub stale: usize,
    /// Per R: (reads, stale).
    pub by_r: BTreeMap<u8, (usize, usize)>,
    pub max_outdated_ns: u64,
    /// The first stale reads, in history order (at most 20).
    pub examples: Vec<StaleRead>,
    /// Reads of a value no write could have produced (ids).
    pub unexplained: Vec<usize>,
}

impl StaleReadReport {
    pub fn stale_ratio(&self) -> f64 {
        if self.reads == 0 {
            0.0
        } else {
            self.stale as f64 / self.reads as f64
        }
    }
}

const EXAMPLES: usize = 20;

/// Counts stale reads (see the module docs); never an error by itself.
pub fn check_stale_reads(history: &History<KvOp, KvRet>) -> StaleReadReport {
    let writes = writes_by_key(history).possible;
    // Per key: acknowledged writes by invocation, with the suffix minimum of their
    // completion times (and which write), to answer "is there an acknowledged write
    // invoked after t that completed before u?" in O(log n).
    struct Acked {
        invokes: Vec<u64>,
        /// (completion, op id), minimum over this and every later entry.
        suffix_min: Vec<(u64, usize)>,
    }
    let acked: HashMap<&str, Acked> = writes
        .iter()
        .map(|(key, ws)| {
            let mut list: Vec<(u64, u64, usize)> = ws
                .iter()
                .filter_map(|w| {
                    w.op.return_ns()
                        .filter(|_| w.acked())
                        .map(|c| (w.op.invoke_ns, c, w.op.id))
                })
                .collect();
            list.sort_unstable();
            let mut suffix_min = vec![(u64::MAX, usize::MAX); list.len()];
            let mut best = (u64::MAX, usize::MAX);
            for (i, &(_, complete, id)) in list.iter().enumerate().rev() {
                best = best.min((complete, id));
                suffix_min[i] = best;
            }
            (
                *key,
                Acked {
                    invokes: list.iter().map(|e| e.0).collect(),
                    suffix_min,
                },
            )
        })
        .collect();
    let mut report = StaleReadReport::default();
    for op in history {
        let (KvOp::Read { key, r }, Outcome::Ok(KvRet::Read { value, version })) =
            (&op.op, &op.outcome)
        else {
            continue;
        };
        report.reads += 1;
        let entry = report.by_r.entry(*r).or_default();
        entry.0 += 1;
        // The read is stale only if *every* possible writer of its value had been
        // overwritten in time; the one that completed last decides. A writer with an
        // unknown outcome may have taken effect at any time, so it never is.
        let mut possible = value.is_none() && version.is_none(); // the initial state
        let mut unknown = false;
        let mut latest: Option<u64> = None; // None: only the initial state
        for w in writes.get(key.as_str()).into_iter().flatten() {
            if w.produced(value.as_deref(), *version) {
                possible = true;
                match w.op.return_ns() {
                    Some(t) => latest = latest.max(Some(t)),
                    None => unknown = true,
                }
            }
        }
        if !possible {
            report.unexplained.push(op.id);
            continue;
        }
        let Some(acked) = acked.get(key.as_str()).filter(|_| !unknown) else {
            continue;
        };
        // The first acknowledged write invoked after the writer completed (any, for the
        // initial state).
        let first_later = latest.map_or(0, |t| acked.invokes.partition_point(|&i| i <= t));
        let Some(&(complete, by)) = acked.suffix_min.get(first_later) else {
            continue;
        };
        if complete < op.invoke_ns {
            report.stale += 1;
            entry.1 += 1;
            let outdated = op.invoke_ns - complete;
            report.max_outdated_ns = report.max_outdated_ns.max(outdated);
            if report.examples.len() < EXAMPLES {
                report.examples.push(StaleRead {
                    read: op.clone(),
                    overwritten_by: by,
                    outdated_for_ns: outdated,
                });
            }
        }
    }
    report
}

const SHOWN: usize = 10;

impl fmt::Display for LostWriteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_ok() {
            "ok"
        } else if !self.lost.is_empty() {
            "LOST WRITES"
        } else if !self.unexplained.is_empty() {
            "UNEXPLAINED VALUES"
        } else {
            "UNCHECKED KEYS (written but never read back)"
        };
        writeln!(f, "kv lost writes: {verdict}")?;
        writeln!(
            f,
            "  {} keys; {} acknowledged writes with W ≥ 2: {} survived, {} superseded, {} lost; {} lost with W < 2 (allowed)",
            self.keys,
            self.acked_quorum_writes,
            self.survived,
            self.superseded,
            self.lost.len(),
            self.lost_below_quorum
        )?;
        for l in self.lost.iter().take(SHOWN) {
            let finals: Vec<String> = l
                .final_values
                .iter()
                .map(|(v, ver)| Shown(v.as_deref(), *ver).to_string())
                .collect();
            writeln!(f, "  lost: {}", l.write)?;
            writeln!(
                f,
                "        final value {} written by {}, which precede it",
                finals.join(" or "),
                l.final_writers
            )?;
        }
        more(f, self.lost.len())?;
        for u in self.unexplained.iter().take(SHOWN) {
            write!(
                f,
                "  unexplained: {} = {}",
                u.key,
                Shown(u.value.as_deref(), u.version)
            )?;
            if u.failed_writers.is_empty() {
                writeln!(f, ", written by no operation")?;
            } else {
                let ids: Vec<String> = u.failed_writers.iter().map(|id| format!("#{id}")).collect();
                writeln!(
                    f,
                    ", written only by operations reported failed: {}",
                    ids.join(", ")
                )?;
            }
        }
        more(f, self.unexplained.len())?;
        if !self.unchecked.is_empty() {
            writeln!(
                f,
                "  unchecked: {} acknowledged writes to keys with no final read",
                self.unchecked.len()
            )?;
        }
        if !self.divergent.is_empty() {
            writeln!(
                f,
                "  replicas disagree after healing on {} keys:",
                self.divergent.len()
            )?;
            for (key, values) in self.divergent.iter().take(SHOWN) {
                let shown: Vec<String> = values
                    .iter()
                    .map(|(v, ver)| Shown(v.as_deref(), *ver).to_string())
                    .collect();
                writeln!(f, "    {key}: {}", shown.join(" | "))?;
            }
        }
        if !self.version_inversions.is_empty() {
            writeln!(
                f,
                "  version inversions ({}): a later write got a lower version than an earlier one",
                self.version_inversions.len()
            )?;
            for v in self.version_inversions.iter().take(SHOWN) {
                writeln!(
                    f,
                    "    {}: #{} got {}, then #{} got {}",
                    v.key, v.earlier.0, v.earlier.1, v.later.0, v.later.1
                )?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for StaleReadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kv stale reads: {} of {} reads ({:.2}%), outdated by up to {}",
            self.stale,
            self.reads,
            100.0 * self.stale_ratio(),
            Seconds(self.max_outdated_ns)
        )?;
        for (r, (reads, stale)) in &self.by_r {
            writeln!(f, "  R={r}: {stale} of {reads}")?;
        }
        for s in self.examples.iter().take(SHOWN) {
            writeln!(
                f,
                "  stale: {} (overwritten by #{} {} earlier)",
                s.read,
                s.overwritten_by,
                Seconds(s.outdated_for_ns)
            )?;
        }
        if !self.unexplained.is_empty() {
            let ids: Vec<String> = self
                .unexplained
                .iter()
                .take(SHOWN)
                .map(|id| format!("#{id}"))
                .collect();
            writeln!(
                f,
                "  UNEXPLAINED: {} reads returned a value no write produced: {}",
                self.unexplained.len(),
                ids.join(", ")
            )?;
        }
        Ok(())
    }
}

fn more(f: &mut fmt::Formatter<'_>, total: usize) -> fmt::Result {
    if total > SHOWN {
        writeln!(f, "  … {} more", total - SHOWN)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
