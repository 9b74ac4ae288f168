//! The Raft log and vote on disk (redb): what makes `kill -9` survivable.
//!
//! ```text
//!  openraft ─append/truncate/purge/save_vote/save_committed─► LogStore ─spawn_blocking─► redb (fsync per commit)
//!                                                               └─ disk delay hook (the slow-follower fault)
//! ```
//!
//! Every write is one redb write transaction with `Durability::Immediate`: when
//! `append` reports the entries flushed, they are on disk, so a vote or an entry this
//! node acknowledged survives a crash — Raft's safety depends on it. The one exception
//! is the committed index, a hint openraft can re-learn, which is written without fsync. Entries are stored
//! as JSON under their index (big-endian order in redb's `u64` keys keeps them sorted).
//! redb is blocking, so every call runs on tokio's blocking pool.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};
use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};

use super::{NodeId, TypeConfig};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

type Result<T> = std::result::Result<T, StorageError<NodeId>>;

/// The Raft log and vote of one node, in a redb file.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<Database>,
    /// Added before every write commits: the `disk delay` fault (milliseconds).
    disk_delay_ms: Arc<AtomicU64>,
}

impl LogStore {
    /// Opens (or creates) the log at `path`.
    pub fn open(
        path: &Path,
        disk_delay_ms: Arc<AtomicU64>,
    ) -> std::result::Result<Self, redb::Error> {
        let db = Database::create(path)?;
        // Create the tables, so that readers never meet a missing one.
        let tx = db.begin_write()?;
        tx.open_table(LOG)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(LogStore {
            db: Arc::new(db),
            disk_delay_ms,
        })
    }

    /// Runs a blocking redb job off the async workers.
    async fn blocking<T, F>(&self, job: F) -> std::result::Result<T, AnyError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> std::result::Result<T, redb::Error> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        match tokio::task::spawn_blocking(move || job(&db)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(AnyError::new(&e)),
            Err(e) => Err(AnyError::new(&e)),
        }
    }

    async fn delay_write(&self) {
        let ms = self.disk_delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// Stores one metadata value; `durable: false` skips the fsync (the value is then
    /// made durable by the next durable commit, or lost in a crash).
    async fn put_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
        durable: bool,
    ) -> std::result::Result<(), AnyError> {
        let bytes = serde_json::to_vec(value).map_err(|e| AnyError::new(&e))?;
        if durable {
            self.delay_write().await;
        }
        self.blocking(move |db| {
            let mut tx = db.begin_write()?;
            if !durable {
                tx.set_durability(redb::Durability::None)
                    .map_err(|e| redb::Error::Io(std::io::Error::other(e.to_string())))?;
            }
            tx.open_table(META)?.insert(key, bytes.as_slice())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn get_meta<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> std::result::Result<Option<T>, AnyError> {
        let bytes = self
            .blocking(move |db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(META)?;
                Ok(table.get(key)?.map(|v| v.value().to_vec()))
            })
            .await?;
        match bytes {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AnyError::new(&e)),
        }
    }

    /// The entry with the highest index, if any.
    async fn last_entry(&self) -> std::result::Result<Option<Entry<TypeConfig>>, AnyError> {
        let bytes = self
            .blocking(|db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(LOG)?;
                Ok(table.last()?.map(|(_, v)| v.value().to_vec()))
            })
            .await?;
        match bytes {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AnyError::new(&e)),
        }
    }

    /// Entries `[from, to)` from disk, decoded.
    async fn entries(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> std::result::Result<Vec<Entry<TypeConfig>>, AnyError> {
        let raw = self
            .blocking(move |db| {
                let tx = db.begin_read()?;
                let table = tx.open_table(LOG)?;
                let range = match to {
                    Some(to) => table.range(from..to)?,
                    None => table.range(from..)?,
                };
                let mut out = Vec::new();
                for item in range {
                    let (_, v) = item?;
                    out.push(v.value().to_vec());
                }
                Ok(out)
            })
            .await?;
        raw.iter()
            .map(|bytes| serde_json::from_slice(bytes).map_err(|e| AnyError::new(&e)))
            .collect()
    }
}

impl LogStore {
    /// Writes `entries` durably (one transaction, fsync) after the disk delay.
    pub(crate) async fn write(
        &self,
        entries: impl IntoIterator<Item = Entry<TypeConfig>>,
    ) -> Result<()> {
        let mut encoded = Vec::new();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry)
                .map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
            encoded.push((entry.log_id.index, bytes));
        }
        self.delay_write().await;
        self.blocking(move |db| {
            let tx = db.begin_write()?;
            {
                let mut table = tx.open_table(LOG)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(e).into())
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let from = match range.start_bound() {
        Bound::Included(&x) => x,
        Bound::Excluded(&x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&x) => x.checked_add(1),
        Bound::Excluded(&x) => Some(x),
        Bound::Unbounded => None,
    };
    (from, to)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let (from, to) = bounds(&range);
        self.entries(from, to)
            .await
            .map_err(|e| StorageIOError::read_logs(e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last_purged: Option<LogId<NodeId>> = self
            .get_meta(LAST_PURGED)
            .await
            .map_err(StorageIOError::read_logs)?;
        let last = self
            .last_entry()
            .await
            .map_err(StorageIOError::read_logs)?
            .map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        self.put_meta(VOTE, vote, true)
            .await
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.get_meta(VOTE)
            .await
            .map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        // Not fsynced: the committed index only spares re-deriving it after a restart
        // (openraft learns it again from the leader); losing the latest one is safe.
        self.put_meta(COMMITTED, &committed, false)
            .await
            .map_err(|e| StorageIOError::write(e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(self
            .get_meta::<Option<LogId<NodeId>>>(COMMITTED)
            .await
            .map_err(StorageIOError::read)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let written = self.write(entries).await;
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        let from = log_id.index;
        self.delay_write().await;
        self.blocking(move |db| {
            let tx = db.begin_write()?;
            tx.open_table(LOG)?.retain_in(from.., |_, _| false)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        let bytes = serde_json::to_vec(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        let through = log_id.index;
        self.blocking(move |db| {
            // The purge point first and in the same transaction: a crash never leaves
            // entries missing without the purge point that explains it.
            let tx = db.begin_write()?;
            tx.open_table(META)?.insert(LAST_PURGED, bytes.as_slice())?;
            tx.open_table(LOG)?.retain_in(..=through, |_, _| false)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_logs(e).into())
    }
}
