//! The metadata store: string keys to string values, for cluster metadata (who is the
//! gateway's configured quorum, which worker owns which shard, ...).
//!
//! Every change (put, fenced put, delete of a present key, successful compare-and-set)
//! bumps one global `revision`, and each entry remembers the revision that last wrote it,
//! so a reader can tell two writes of the same value apart. Reads are served by
//! [`super::StateMachine::query`] (linearizable when the shell uses a read index).
//!
//! Compare-and-set compares *values* (`None` meaning "absent"), which is what a history
//! checker models as a register; a mismatch is an answer (`swapped: false` with the
//! current entry), not an error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{SmError, check_len, check_name, limits};

/// A stored value and the revision that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub value: String,
    pub revision: u64,
}

/// The result of a put or an accepted fenced put.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOutcome {
    pub key: String,
    /// The revision of this write.
    pub revision: u64,
    /// The value it replaced.
    pub previous: Option<String>,
}

/// The result of a delete.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteOutcome {
    pub key: String,
    /// The removed value (`None`: the key was absent and nothing changed).
    pub previous: Option<String>,
    /// The store's revision after the delete.
    pub revision: u64,
}

/// The result of a compare-and-set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasOutcome {
    pub key: String,
    /// Whether the expected value matched and the new one was written.
    pub swapped: bool,
    /// The entry after the operation (on a mismatch: the value that did not match).
    pub current: Option<Entry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MetaStore {
    entries: BTreeMap<String, Entry>,
    revision: u64,
}

impl MetaStore {
    pub(crate) fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub(crate) fn list(&self, prefix: &str, limit: usize) -> Vec<(String, Entry)> {
        self.entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    /// Validates a put without doing it (fenced puts check input before the token).
    pub(crate) fn check_put(&self, key: &str, value: &str) -> Result<(), SmError> {
        check_name("key", key)?;
        check_len("value", value, limits::MAX_VALUE_BYTES)?;
        if !self.entries.contains_key(key) && self.entries.len() >= limits::MAX_META_KEYS {
            return Err(SmError::limit("metadata keys", limits::MAX_META_KEYS));
        }
        Ok(())
    }

    pub(crate) fn put(&mut self, key: String, value: String) -> Result<WriteOutcome, SmError> {
        self.check_put(&key, &value)?;
        self.revision += 1;
        let previous = self
            .entries
            .insert(
                key.clone(),
                Entry {
                    value,
                    revision: self.revision,
                },
            )
            .map(|e| e.value);
        Ok(WriteOutcome {
            key,
            revision: self.revision,
            previous,
        })
    }

    pub(crate) fn delete(&mut self, key: &str) -> Result<DeleteOutcome, SmError> {
        check_name("key", key)?;
        let previous = self.entries.remove(key).map(|e| e.value);
        if previous.is_some() {
            self.revision += 1;
        }
        Ok(DeleteOutcome {
            key: key.to_owned(),
            previous,
            revision: self.revision,
        })
    }

    pub(crate) fn compare_and_set(
        &mut self,
        key: String,
        expected: Option<String>,
        new: Option<String>,
    ) -> Result<CasOutcome, SmError> {
        check_name("key", &key)?;
        if let Some(expected) = &expected {
            check_len("expected value", expected, limits::MAX_VALUE_BYTES)?;
        }
        if let Some(new) = &new {
            self.check_put(&key, new)?;
        }
        let current = self.entries.get(&key);
        if current.map(|e| e.value.as_str()) != expected.as_deref() {
            return Ok(CasOutcome {
                current: current.cloned(),
                key,
                swapped: false,
            });
        }
        match new {
            Some(value) => {
                self.put(key.clone(), value)?;
            }
            None => {
                self.delete(&key)?;
            }
        }
        Ok(CasOutcome {
            current: self.entries.get(&key).cloned(),
            key,
            swapped: true,
        })
    }
}
