//! The applied state: the pure [`crate::sm::StateMachine`] in memory, snapshots on disk.
//!
//! ```text
//!  openraft ─apply(entries)─► StateMachineStore ─► sm::StateMachine::apply (pure, deterministic)
//!           ─build_snapshot─► JSON file (temp, fsync, rename): the log before it can be purged
//!  node HTTP API ─► Applied (shared, read-locked) ─► sm::StateMachine::query / stats
//! ```
//!
//! The state machine lives in memory; on restart it is rebuilt from the last snapshot
//! plus the log entries after it, which openraft re-applies up to the committed index
//! it saved (`save_committed`). So only the log and the snapshot need be durable.

use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};

use super::{NodeId, Reply, TypeConfig};
use crate::sm::StateMachine;

/// What has been applied, shared with the HTTP API for reads.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub state: StateMachine,
    pub last_applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// A read handle on the applied state.
#[derive(Debug, Clone)]
pub struct AppliedView(Arc<RwLock<Applied>>);

impl AppliedView {
    pub fn read(&self) -> RwLockReadGuard<'_, Applied> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A snapshot: its metadata and the state machine's snapshot bytes. On disk, one line
/// of JSON metadata, a newline, then the bytes as they are.
#[derive(Debug)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// openraft's state machine: applies entries, builds and installs snapshots.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    applied: Arc<RwLock<Applied>>,
    snapshot_path: PathBuf,
    /// Makes snapshot ids unique within this process's life.
    snapshot_count: u64,
}

impl StateMachineStore {
    /// Opens the state machine, restoring the snapshot at `snapshot_path` if there is one.
    pub fn open(snapshot_path: &Path) -> Result<Self, StorageError<NodeId>> {
        let applied = match read_snapshot(snapshot_path)? {
            Some(stored) => decode_applied(&stored)?,
            None => Applied::default(),
        };
        Ok(StateMachineStore {
            applied: Arc::new(RwLock::new(applied)),
            snapshot_path: snapshot_path.to_owned(),
            snapshot_count: 0,
        })
    }

    pub fn view(&self) -> AppliedView {
        AppliedView(Arc::clone(&self.applied))
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.applied.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn decode_applied(stored: &StoredSnapshot) -> Result<Applied, StorageError<NodeId>> {
    let state = StateMachine::from_snapshot(&stored.data)
        .map_err(|e| StorageIOError::read_snapshot(Some(stored.meta.signature()), &e))?;
    Ok(Applied {
        state,
        last_applied: stored.meta.last_log_id,
        membership: stored.meta.last_membership.clone(),
    })
}

fn read_snapshot(path: &Path) -> Result<Option<StoredSnapshot>, StorageError<NodeId>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageIOError::read_snapshot(None, &e).into()),
    };
    let Some(newline) = bytes.iter().position(|&b| b == b'\n') else {
        let e = std::io::Error::other(format!("{}: no metadata line", path.display()));
        return Err(StorageIOError::read_snapshot(None, &e).into());
    };
    let meta: SnapshotMeta<NodeId, BasicNode> = serde_json::from_slice(&bytes[..newline])
        .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
    Ok(Some(StoredSnapshot {
        meta,
        data: bytes[newline + 1..].to_vec(),
    }))
}

/// Writes the snapshot so that a crash leaves either the old file or the new one.
fn write_snapshot(path: &Path, stored: &StoredSnapshot) -> Result<(), AnyError> {
    let mut bytes = serde_json::to_vec(&stored.meta).map_err(|e| AnyError::new(&e))?;
    bytes.push(b'\n');
    bytes.extend_from_slice(&stored.data);
    let temp = path.with_extension("tmp");
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    written.map_err(|e| AnyError::new(&e))
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (data, last_applied, membership) = {
            let applied = self.applied.read().unwrap_or_else(PoisonError::into_inner);
            let data = applied
                .state
                .to_snapshot()
                .map_err(|e| StorageIOError::read_state_machine(&e))?;
            (data, applied.last_applied, applied.membership.clone())
        };
        let snapshot_id = match last_applied {
            Some(last) => format!("{}-{}-{}", last.leader_id, last.index, self.snapshot_count),
            None => format!("--{}", self.snapshot_count),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let path = self.snapshot_path.clone();
        let signature = meta.signature();
        let stored =
            tokio::task::spawn_blocking(move || write_snapshot(&path, &stored).map(|()| stored))
                .await
                .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &e))?
                .map_err(|e| StorageIOError::write_snapshot(Some(signature), e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let applied = self.applied.read().unwrap_or_else(PoisonError::into_inner);
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self.write_lock();
        let mut replies = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let reply = match entry.payload {
                EntryPayload::Blank => Reply(None),
                EntryPayload::Normal(command) => Reply(Some(applied.state.apply(command))),
                EntryPayload::Membership(membership) => {
                    applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Reply(None)
                }
            };
            replies.push(reply);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_count += 1;
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let applied = decode_applied(&stored)?;
        let path = self.snapshot_path.clone();
        let signature = meta.signature();
        let stored =
            tokio::task::spawn_blocking(move || write_snapshot(&path, &stored).map(|()| stored))
                .await
                .map_err(|e| StorageIOError::write_snapshot(Some(signature.clone()), &e))?
                .map_err(|e| StorageIOError::write_snapshot(Some(signature), e))?;
        drop(stored);
        *self.write_lock() = applied;
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let path = self.snapshot_path.clone();
        let stored = tokio::task::spawn_blocking(move || read_snapshot(&path))
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))??;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
