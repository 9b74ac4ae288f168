//! The storage against openraft's own conformance suite, and what `kill -9` needs:
//! a reopened log and snapshot hold what was written.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use openraft::storage::{RaftLogStorage as _, RaftStateMachine as _};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder as _, StorageError,
    StorageIOError, Vote,
};
use tempfile::TempDir;

use super::*;
use crate::sm::{Command, Op};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let log = LogStore::open(&dir.path().join("log.redb"), Arc::new(AtomicU64::new(0)))
            .map_err(|e| StorageIOError::write(&e))?;
        let sm = StateMachineStore::open(&dir.path().join("snapshot"))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn the_storage_passes_openraft_s_suite() {
    Suite::test_all(Builder).unwrap();
}

fn entry(term: u64, index: u64, op: Op) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
        payload: EntryPayload::Normal(Command::new(1_000 * index, op)),
    }
}

#[tokio::test]
async fn a_reopened_store_has_the_vote_the_log_and_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("log.redb");
    let snapshot_path = dir.path().join("snapshot");
    {
        let mut log = LogStore::open(&log_path, Arc::new(AtomicU64::new(0))).unwrap();
        log.save_vote(&Vote::new_committed(3, 1)).await.unwrap();
        let entries: Vec<_> = (1..=5)
            .map(|i| {
                entry(
                    3,
                    i,
                    Op::Put {
                        key: format!("k{i}"),
                        value: format!("v{i}"),
                    },
                )
            })
            .collect();
        // `append` wants a flush callback only openraft can make; write directly.
        log.write(entries.clone()).await.unwrap();
        let mut sm = StateMachineStore::open(&snapshot_path).unwrap();
        sm.apply(entries).await.unwrap();
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let mut log = LogStore::open(&log_path, Arc::new(AtomicU64::new(0))).unwrap();
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new_committed(3, 1))
    );
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id.map(|l| l.index), Some(5));
    let mut sm = StateMachineStore::open(&snapshot_path).unwrap();
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(5));
    let view = sm.view();
    let value = view.read().state.query(&crate::sm::Query::Get {
        key: "k4".to_owned(),
    });
    assert!(format!("{value:?}").contains("v4"), "{value:?}");
}
