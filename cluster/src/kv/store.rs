//! A replica's durable storage: the versioned values it holds, and the hints it keeps for
//! replicas that were down.
//!
//! ```text
//!   write/repair ──► apply(key, versioned) ──► kv.data     key ─► newest Versioned (LWW)
//!   stand-in write ► add_hint(for, key, v) ──► kv.hints    (for_node, key) ─► newest Versioned
//!                                               kv.hint_counts  for_node ─► backlog
//!   handoff loop:   hints_for(node, limit) ──► send ──► remove_hints(node, delivered)
//! ```
//!
//! One [redb] file per replica. `apply` keeps a write only if its version is newer than
//! the stored one ([`Versioned::merge`]), so applying is idempotent and order-insensitive:
//! repairs, retries and handoffs can be re-sent freely. Tombstones are stored like values
//! (they must beat late older writes); there is no tombstone GC in the demo.
//!
//! ## Durability
//!
//! Every mutating call is one redb write transaction committed with
//! [`Durability::Immediate`] — redb's default, set explicitly here — which `fsync`s
//! before `commit` returns. So when a call returns `Ok`, the write survives `kill -9`
//! and power loss (as far as the disk honours `fsync`), and only then may the shell
//! acknowledge it to the coordinator. `Durability::None` would be faster but an
//! acknowledgement would then be a lie, and "no acknowledged write is lost" is exactly
//! what the demo's history checker proves. Commits are one-phase with checksums (redb's
//! default); two-phase commit only defends against an adversary controlling page flush
//! order, and quick-repair (faster reopen after a crash, slower commits) is not worth it
//! at the demo's data sizes. A test crashes a child process with `abort()` right after
//! writes were acknowledged and checks every one of them is on disk.
//!
//! [`ReplicaStore::apply_batch`] commits many writes under one `fsync` (read repair,
//! hint delivery).
//!
//! Hints are keyed by `(for_node, key)`, so a replica down for a long time accumulates at
//! most one hint per key (the newest), and the backlog per node is capped
//! ([`ReplicaStore::with_hint_limit`]): past it `add_hint` fails and the stand-in write
//! counts as failed — bounded, and visible, rather than an unbounded disk.
//!
//! All calls block (disk I/O, and `fsync` while committing); the async shell runs them
//! on `spawn_blocking`. The store is `Send + Sync`; redb serializes writers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::hlc::HlcTimestamp;
use super::version::{NodeId, Version, Versioned};

const DATA_NAME: &str = "kv.data";
const HINTS_NAME: &str = "kv.hints";
const DATA: TableDefinition<&str, &[u8]> = TableDefinition::new(DATA_NAME);
const HINTS: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new(HINTS_NAME);
const HINT_COUNTS: TableDefinition<u64, u64> = TableDefinition::new("kv.hint_counts");

/// What [`ReplicaStore::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The write was newer than what the replica held, and is now stored.
    pub newer: bool,
    /// The version held before, if any. When `newer` is false this is the version that
    /// won: equal to the write's (a re-delivery) or greater (the write was superseded).
    pub previous: Option<Version>,
}

/// A write held by a stand-in for a replica that was unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub for_node: NodeId,
    pub key: String,
    pub versioned: Versioned,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("KV store {path}: {source}")]
    Storage {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("KV store {path}: corrupt record in table {table} for key {key:?}: {reason}")]
    Corrupt {
        path: PathBuf,
        table: &'static str,
        key: String,
        reason: &'static str,
    },
    #[error(
        "KV store {path}: hint backlog for node {node} is full ({limit} hints); \
         the stand-in write is refused until hints are delivered"
    )]
    HintBacklogFull {
        path: PathBuf,
        node: NodeId,
        limit: u64,
    },
}

/// A replica's durable key-value store. See the module docs.
#[derive(Debug)]
pub struct ReplicaStore {
    db: Database,
    path: PathBuf,
    hint_limit_per_node: u64,
    /// The slow-disk fault hook, in ms, applied to every commit.
    write_delay_ms: AtomicU64,
}

impl ReplicaStore {
    pub const DEFAULT_HINT_LIMIT_PER_NODE: u64 = 100_000;

    /// Opens the store at `path`, creating the file if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|e| storage(&path, e))?;
        let store = Self {
            db,
            path,
            hint_limit_per_node: Self::DEFAULT_HINT_LIMIT_PER_NODE,
            write_delay_ms: AtomicU64::new(0),
        };
        // Create the tables up front so that readers never meet a missing table.
        store.write(|txn| {
            txn.open_table(DATA)?;
            txn.open_table(HINTS)?;
            txn.open_table(HINT_COUNTS)?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Caps the hints kept for any one node (at least 1).
    pub fn with_hint_limit(mut self, limit_per_node: u64) -> Self {
        self.hint_limit_per_node = limit_per_node.max(1);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The slow-disk fault hook: every commit waits `delay` first (while holding the
    /// write lock, as a slow `fsync` would, so writes queue behind it).
    pub fn set_write_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.write_delay_ms.store(ms, Ordering::Relaxed);
    }

    pub fn write_delay(&self) -> Duration {
        Duration::from_millis(self.write_delay_ms.load(Ordering::Relaxed))
    }

    /// Stores `versioned` under `key` if it is newer than what is held (LWW); durable
    /// when this returns.
    pub fn apply(&self, key: &str, versioned: &Versioned) -> Result<Applied, StoreError> {
        let mut applied = self.apply_batch([(key, versioned)])?;
        // apply_batch returns one result per input, and there was one input.
        applied
            .pop()
            .ok_or_else(|| self.corrupt(DATA_NAME, key, "apply lost its result"))
    }

    /// [`ReplicaStore::apply`] for many writes, committed together (one `fsync`).
    /// Results are in input order.
    pub fn apply_batch<'a>(
        &self,
        writes: impl IntoIterator<Item = (&'a str, &'a Versioned)>,
    ) -> Result<Vec<Applied>, StoreError> {
        self.write(|txn| {
            let mut table = txn.open_table(DATA)?;
            let mut results = Vec::new();
            for (key, versioned) in writes {
                let previous = match table.get(key)? {
                    Some(raw) => Some(self.decode(DATA_NAME, key, raw.value())?.version),
                    None => None,
                };
                let newer = previous.is_none_or(|p| versioned.version > p);
                if newer {
                    table.insert(key, encode(versioned).as_slice())?;
                }
                results.push(Applied { newer, previous });
            }
            Ok(results)
        })
    }

    /// The newest copy of `key` this replica holds (possibly a tombstone).
    pub fn get(&self, key: &str) -> Result<Option<Versioned>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.storage(e))?;
        let table = txn.open_table(DATA).map_err(|e| self.storage(e))?;
        match table.get(key).map_err(|e| self.storage(e))? {
            Some(raw) => Ok(Some(self.decode(DATA_NAME, key, raw.value())?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` entries in key order, starting after `after` (for paging through
    /// the replica's contents: checks, debugging, anti-entropy).
    pub fn scan(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Versioned)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.storage(e))?;
        let table = txn.open_table(DATA).map_err(|e| self.storage(e))?;
        let range = match after {
            Some(after) => {
                table.range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
            None => table.range::<&str>(..),
        }
        .map_err(|e| self.storage(e))?;
        let mut out = Vec::new();
        for entry in range.take(limit) {
            let (k, v) = entry.map_err(|e| self.storage(e))?;
            let key = k.value().to_owned();
            let versioned = self.decode(DATA_NAME, &key, v.value())?;
            out.push((key, versioned));
        }
        Ok(out)
    }

    /// Keeps `versioned` for `for_node` until it can be delivered. Only the newest hint
    /// per `(for_node, key)` is kept. Fails with [`StoreError::HintBacklogFull`] when the
    /// node's backlog is at the limit and this is a new key.
    pub fn add_hint(
        &self,
        for_node: NodeId,
        key: &str,
        versioned: &Versioned,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            let mut hints = txn.open_table(HINTS)?;
            let existing = match hints.get((for_node, key))? {
                Some(raw) => Some(self.decode(HINTS_NAME, key, raw.value())?.version),
                None => None,
            };
            match existing {
                Some(held) if held >= versioned.version => return Ok(()),
                Some(_) => {}
                None => {
                    let mut counts = txn.open_table(HINT_COUNTS)?;
                    let count = counts.get(for_node)?.map_or(0, |c| c.value());
                    if count >= self.hint_limit_per_node {
                        return Err(StoreError::HintBacklogFull {
                            path: self.path.clone(),
                            node: for_node,
                            limit: self.hint_limit_per_node,
                        }
                        .into());
                    }
                    counts.insert(for_node, count + 1)?;
                }
            }
            hints.insert((for_node, key), encode(versioned).as_slice())?;
            Ok(())
        })
    }

    /// Up to `limit` hints waiting for `node`, in key order.
    pub fn hints_for(&self, node: NodeId, limit: usize) -> Result<Vec<Hint>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.storage(e))?;
        let table = txn.open_table(HINTS).map_err(|e| self.storage(e))?;
        let range = table
            .range::<(u64, &str)>((node, "")..)
            .map_err(|e| self.storage(e))?;
        let mut out = Vec::new();
        for entry in range {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(|e| self.storage(e))?;
            let (for_node, key) = k.value();
            if for_node != node {
                break;
            }
            let versioned = self.decode(HINTS_NAME, key, v.value())?;
            out.push(Hint {
                for_node,
                key: key.to_owned(),
                versioned,
            });
        }
        Ok(out)
    }

    /// Forgets hints for `node` that were delivered. A hint is removed only if the held
    /// hint is not newer than the delivered one (a newer hint may have arrived while the
    /// old one was in flight; it stays for the next round). Returns how many were removed.
    pub fn remove_hints(&self, node: NodeId, delivered: &[Hint]) -> Result<u64, StoreError> {
        self.write(|txn| {
            let mut hints = txn.open_table(HINTS)?;
            let mut removed = 0u64;
            for hint in delivered.iter().filter(|h| h.for_node == node) {
                let held = match hints.get((node, hint.key.as_str()))? {
                    Some(raw) => Some(self.decode(HINTS_NAME, &hint.key, raw.value())?.version),
                    None => None,
                };
                if held.is_some_and(|held| held <= hint.versioned.version) {
                    hints.remove((node, hint.key.as_str()))?;
                    removed += 1;
                }
            }
            if removed > 0 {
                let mut counts = txn.open_table(HINT_COUNTS)?;
                let count = counts.get(node)?.map_or(0, |c| c.value());
                let left = count.saturating_sub(removed);
                if left == 0 {
                    counts.remove(node)?;
                } else {
                    counts.insert(node, left)?;
                }
            }
            Ok(removed)
        })
    }

    /// Hints waiting, per node (only nodes with a backlog appear). For `/status`.
    pub fn hint_backlog(&self) -> Result<BTreeMap<NodeId, u64>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.storage(e))?;
        let table = txn.open_table(HINT_COUNTS).map_err(|e| self.storage(e))?;
        let mut out = BTreeMap::new();
        for entry in table.iter().map_err(|e| self.storage(e))? {
            let (node, count) = entry.map_err(|e| self.storage(e))?;
            out.insert(node.value(), count.value());
        }
        Ok(out)
    }

    /// Runs `f` in a write transaction and commits it durably.
    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<T, TxnError>,
    ) -> Result<T, StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.storage(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.storage(e))?;
        let value = match f(&txn) {
            Ok(value) => value,
            // Dropping the transaction aborts it.
            Err(TxnError::Store(e)) => return Err(e),
            Err(TxnError::Redb(e)) => return Err(self.storage(e)),
        };
        let delay = self.write_delay();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        txn.commit().map_err(|e| self.storage(e))?;
        Ok(value)
    }

    fn decode(&self, table: &'static str, key: &str, raw: &[u8]) -> Result<Versioned, StoreError> {
        decode(raw).map_err(|reason| self.corrupt(table, key, reason))
    }

    fn corrupt(&self, table: &'static str, key: &str, reason: &'static str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            reason,
        }
    }

    fn storage(&self, e: impl Into<redb::Error>) -> StoreError {
        storage(&self.path, e)
    }
}

fn storage(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    StoreError::Storage {
        path: path.to_path_buf(),
        source: Box::new(e.into()),
    }
}

/// Errors inside a write transaction: redb's own, or ours (decoding, limits).
enum TxnError {
    Redb(redb::Error),
    Store(StoreError),
}

impl From<StoreError> for TxnError {
    fn from(e: StoreError) -> Self {
        TxnError::Store(e)
    }
}

macro_rules! txn_error_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for TxnError {
            fn from(e: $t) -> Self {
                TxnError::Redb(e.into())
            }
        }
    )*};
}
txn_error_from_redb!(redb::StorageError, redb::TableError);

// Record layout, little-endian, 22-byte header then the value's UTF-8 bytes:
//   [format = 1][physical_ms u64][logical u32][node u64][tag: 0 tombstone | 1 value][value…]
// A format byte first so that the layout can evolve without guessing.
const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 4 + 8 + 1;

fn encode(v: &Versioned) -> Vec<u8> {
    let value = v.value.as_deref().unwrap_or("").as_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + value.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&v.version.ts.physical_ms.to_le_bytes());
    out.extend_from_slice(&v.version.ts.logical.to_le_bytes());
    out.extend_from_slice(&v.version.node.to_le_bytes());
    out.push(u8::from(v.value.is_some()));
    out.extend_from_slice(value);
    out
}

fn decode(raw: &[u8]) -> Result<Versioned, &'static str> {
    let (header, value) = raw
        .split_at_checked(HEADER_LEN)
        .ok_or("record shorter than its header")?;
    let [format, rest @ ..] = header else {
        return Err("record shorter than its header");
    };
    if *format != FORMAT_V1 {
        return Err("unknown record format");
    }
    let (physical, rest) = rest.split_at(8);
    let (logical, rest) = rest.split_at(4);
    let (node, tag) = rest.split_at(8);
    // The slices have exactly the array lengths by construction of HEADER_LEN.
    let physical_ms = u64::from_le_bytes(physical.try_into().map_err(|_| "bad header")?);
    let logical = u32::from_le_bytes(logical.try_into().map_err(|_| "bad header")?);
    let node = u64::from_le_bytes(node.try_into().map_err(|_| "bad header")?);
    let value = match tag {
        [0] if value.is_empty() => None,
        [0] => return Err("tombstone with a value"),
        [1] => Some(
            std::str::from_utf8(value)
                .map_err(|_| "value is not UTF-8")?
                .to_owned(),
        ),
        _ => return Err("unknown value tag"),
    };
    Ok(Versioned {
        value,
        version: Version {
            ts: HlcTimestamp {
                physical_ms,
                logical,
            },
            node,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::version::tests::{arb_versioned, version};
    use proptest::prelude::*;
    use std::io::Write as _;

    fn open(dir: &tempfile::TempDir) -> ReplicaStore {
        ReplicaStore::open(dir.path().join("kv.redb")).unwrap()
    }

    fn v(value: &str, physical_ms: u64, node: NodeId) -> Versioned {
        Versioned::value(value, version(physical_ms, 0, node))
    }

    #[test]
    fn apply_keeps_only_newer_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        assert_eq!(store.get("k").unwrap(), None);

        let first = v("a", 10, 1);
        assert_eq!(
            store.apply("k", &first).unwrap(),
            Applied {
                newer: true,
                previous: None
            }
        );
        let newer = v("b", 20, 2);
        assert_eq!(
            store.apply("k", &newer).unwrap(),
            Applied {
                newer: true,
                previous: Some(first.version)
            }
        );
        // Older: refused, and the winner is reported.
        assert_eq!(
            store.apply("k", &first).unwrap(),
            Applied {
                newer: false,
                previous: Some(newer.version)
            }
        );
        // Re-delivery of the same write: not newer, previous == its own version.
        assert_eq!(
            store.apply("k", &newer).unwrap(),
            Applied {
                newer: false,
                previous: Some(newer.version)
            }
        );
        assert_eq!(store.get("k").unwrap(), Some(newer.clone()));

        // Same timestamp, higher node id wins.
        let tie = v("c", 20, 3);
        assert!(store.apply("k", &tie).unwrap().newer);
        assert_eq!(store.get("k").unwrap(), Some(tie));
    }

    #[test]
    fn tombstones_are_stored_and_beat_late_older_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.apply("k", &v("a", 10, 1)).unwrap();
        let del = Versioned::tombstone(version(20, 0, 1));
        assert!(store.apply("k", &del).unwrap().newer);
        assert!(!store.apply("k", &v("late", 15, 2)).unwrap().newer);
        assert_eq!(store.get("k").unwrap(), Some(del));
    }

    #[test]
    fn data_and_hints_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let value = v("order {\"id\":1} ✓", 10, 1);
        let hint = v("for-3", 11, 1);
        {
            let store = open(&dir);
            store.apply("order-1", &value).unwrap();
            store.add_hint(3, "order-2", &hint).unwrap();
        }
        let store = open(&dir);
        assert_eq!(store.get("order-1").unwrap(), Some(value));
        assert_eq!(store.hint_backlog().unwrap(), BTreeMap::from([(3, 1)]));
        assert_eq!(
            store.hints_for(3, 10).unwrap(),
            vec![Hint {
                for_node: 3,
                key: "order-2".into(),
                versioned: hint
            }]
        );
    }

    /// Not a test on its own: the child process of `acknowledged_writes_survive_a_crash`.
    #[test]
    #[ignore = "run by acknowledged_writes_survive_a_crash in a child process"]
    fn crash_child() {
        let Some(path) = std::env::var_os("FAULTLINE_KV_CRASH_DB") else {
            return;
        };
        let store = ReplicaStore::open(path).unwrap();
        let mut out = std::io::stdout().lock();
        for i in 0..40u64 {
            let key = format!("k{i}");
            store.apply(&key, &v(&format!("v{i}"), 100 + i, 1)).unwrap();
            if i % 4 == 0 {
                store.add_hint(2, &key, &v("h", 100 + i, 1)).unwrap();
            }
            // Acknowledge only after apply returned, as the replica's shell does.
            writeln!(out, "acked {i}").unwrap();
            out.flush().unwrap();
        }
        // Die without running destructors or closing the database, like kill -9.
        std::process::abort();
    }

    #[test]
    fn acknowledged_writes_survive_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.redb");
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "kv::store::tests::crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .args(["--test-threads", "1"])
            .env("FAULTLINE_KV_CRASH_DB", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !output.status.success(),
            "the child should have aborted: {stdout}"
        );
        let acked: Vec<u64> = stdout
            .lines()
            .filter_map(|l| l.split("acked ").nth(1)?.parse().ok())
            .collect();
        assert_eq!(acked.len(), 40, "child output: {stdout}");

        let store = ReplicaStore::open(&path).unwrap();
        for i in acked {
            let got = store.get(&format!("k{i}")).unwrap();
            assert_eq!(got, Some(v(&format!("v{i}"), 100 + i, 1)), "k{i} lost");
        }
        assert_eq!(store.hint_backlog().unwrap(), BTreeMap::from([(2, 10)]));
    }

    #[test]
    fn apply_batch_reports_in_input_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.apply("b", &v("b1", 50, 1)).unwrap();
        let (a, b_old, c) = (v("a", 1, 1), v("b0", 10, 1), v("c", 1, 1));
        let results = store
            .apply_batch([("a", &a), ("b", &b_old), ("c", &c), ("a", &a)])
            .unwrap();
        let newer: Vec<bool> = results.iter().map(|r| r.newer).collect();
        assert_eq!(newer, [true, false, true, false]);
        assert_eq!(results[1].previous, Some(version(50, 0, 1)));
        assert_eq!(results[3].previous, Some(a.version));
    }

    #[test]
    fn scan_pages_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        for key in ["c", "a", "d", "b"] {
            store.apply(key, &v(key, 1, 1)).unwrap();
        }
        let page = |after, limit| -> Vec<String> {
            store
                .scan(after, limit)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(page(None, 2), ["a", "b"]);
        assert_eq!(page(Some("b"), 10), ["c", "d"]);
        assert!(page(Some("d"), 10).is_empty());
    }

    #[test]
    fn hints_keep_the_newest_per_key_and_stay_per_node() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.add_hint(2, "k", &v("old", 10, 1)).unwrap();
        store.add_hint(2, "k", &v("new", 20, 1)).unwrap();
        store.add_hint(2, "k", &v("older", 5, 1)).unwrap();
        store.add_hint(2, "j", &v("j", 1, 1)).unwrap();
        store.add_hint(3, "k", &v("for-3", 1, 1)).unwrap();
        store.add_hint(1, "z", &v("for-1", 1, 1)).unwrap();

        assert_eq!(
            store.hint_backlog().unwrap(),
            BTreeMap::from([(1, 1), (2, 2), (3, 1)])
        );
        let for_2 = store.hints_for(2, 10).unwrap();
        let keys: Vec<_> = for_2
            .iter()
            .map(|h| (h.key.as_str(), h.versioned.value.as_deref()))
            .collect();
        assert_eq!(keys, [("j", Some("j")), ("k", Some("new"))]);
        assert!(for_2.iter().all(|h| h.for_node == 2));
        assert_eq!(store.hints_for(2, 1).unwrap().len(), 1);
        assert!(store.hints_for(9, 10).unwrap().is_empty());
        assert_eq!(store.hints_for(u64::MAX, 10).unwrap(), vec![]);
    }

    #[test]
    fn delivered_hints_are_removed_unless_a_newer_one_arrived() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.add_hint(2, "a", &v("a", 10, 1)).unwrap();
        store.add_hint(2, "b", &v("b", 10, 1)).unwrap();
        store.add_hint(3, "a", &v("a", 10, 1)).unwrap();
        let in_flight = store.hints_for(2, 10).unwrap();
        // While delivering, a newer write for "b" is hinted.
        store.add_hint(2, "b", &v("b2", 30, 1)).unwrap();

        assert_eq!(store.remove_hints(2, &in_flight).unwrap(), 1);
        let left = store.hints_for(2, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].versioned, v("b2", 30, 1));
        assert_eq!(
            store.hint_backlog().unwrap(),
            BTreeMap::from([(2, 1), (3, 1)])
        );
        // Hints for another node are not touched, even if passed by mistake.
        assert_eq!(
            store
                .remove_hints(2, &store.hints_for(3, 10).unwrap())
                .unwrap(),
            0
        );
        // Removing twice is harmless.
        assert_eq!(store.remove_hints(2, &in_flight).unwrap(), 0);

        assert_eq!(store.remove_hints(2, &left).unwrap(), 1);
        assert_eq!(store.hint_backlog().unwrap(), BTreeMap::from([(3, 1)]));
    }

    #[test]
    fn hint_backlog_is_bounded_per_node() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).with_hint_limit(2);
        store.add_hint(2, "a", &v("a", 1, 1)).unwrap();
        store.add_hint(2, "b", &v("b", 1, 1)).unwrap();
        let err = store.add_hint(2, "c", &v("c", 1, 1)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::HintBacklogFull {
                    node: 2,
                    limit: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("hint backlog for node 2 is full"),
            "{err}"
        );
        // Replacing an existing hint and other nodes still work.
        store.add_hint(2, "a", &v("a2", 5, 1)).unwrap();
        store.add_hint(3, "c", &v("c", 1, 1)).unwrap();
        assert_eq!(
            store.hint_backlog().unwrap(),
            BTreeMap::from([(2, 2), (3, 1)])
        );
        // The refused write left nothing behind.
        assert_eq!(store.hints_for(2, 10).unwrap().len(), 2);
    }

    #[test]
    fn write_delay_slows_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        store.set_write_delay(Duration::from_millis(30));
        assert_eq!(store.write_delay(), Duration::from_millis(30));
        let start = std::time::Instant::now();
        store.apply("k", &v("a", 1, 1)).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(30));
        store.set_write_delay(Duration::ZERO);
        assert_eq!(store.write_delay(), Duration::ZERO);
    }

    #[test]
    fn a_second_open_of_the_same_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _store = open(&dir);
        let err = ReplicaStore::open(dir.path().join("kv.redb")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("kv.redb"), "{msg}");
    }

    #[test]
    fn corrupt_records_are_reported_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        {
            let txn = store.db.begin_write().unwrap();
            txn.open_table(DATA)
                .unwrap()
                .insert("bad", [9u8, 1, 2].as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let err = store.get("bad").unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { key, table: "kv.data", .. } if key == "bad"),
            "{err}"
        );
        assert!(store.apply("bad", &v("x", 1, 1)).is_err());
    }

    #[test]
    fn decode_rejects_malformed_records() {
        let good = encode(&v("x", 1, 1));
        assert!(decode(&good).is_ok());
        assert_eq!(decode(&good[..5]), Err("record shorter than its header"));
        let mut bad_tag = good.clone();
        bad_tag[HEADER_LEN - 1] = 7;
        assert_eq!(decode(&bad_tag), Err("unknown value tag"));
        let mut bad_tomb = good.clone();
        bad_tomb[HEADER_LEN - 1] = 0;
        assert_eq!(decode(&bad_tomb), Err("tombstone with a value"));
        let mut bad_utf8 = encode(&v("", 1, 1));
        bad_utf8.push(0xff);
        assert_eq!(decode(&bad_utf8), Err("value is not UTF-8"));
        let mut bad_format = good;
        bad_format[0] = 2;
        assert_eq!(decode(&bad_format), Err("unknown record format"));
    }

    proptest! {
        #[test]
        fn records_round_trip(x in arb_versioned()) {
            prop_assert_eq!(decode(&encode(&x)), Ok(x));
        }

        #[test]
        fn decode_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode(&raw);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Applying writes in any order, with duplicates, leaves the LWW winner.
        #[test]
        fn store_converges_to_the_lww_winner(
            writes in proptest::collection::vec(arb_versioned(), 1..12),
            seed in any::<u64>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = open(&dir);
            let mut shuffled = writes.clone();
            shuffled.extend(writes.iter().take(3).cloned());
            // A cheap deterministic shuffle from the seed.
            let len = shuffled.len();
            for i in 0..len {
                let j = (seed.rotate_left(i as u32) as usize ^ i) % len;
                shuffled.swap(i, j);
            }
            store.apply_batch(shuffled.iter().map(|w| ("k", w))).unwrap();
            let expected = writes.into_iter().reduce(Versioned::merge);
            prop_assert_eq!(store.get("k").unwrap(), expected);
        }
    }
}
