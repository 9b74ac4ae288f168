//! Versions and versioned values: what replicas store and how two copies of a key are
//! reconciled.
//!
//! A [`Version`] is a hybrid-logical-clock timestamp plus the id of the node that
//! coordinated the write. Versions are totally ordered — timestamp first, node id as
//! the tie-break — so any two replicas that have seen the same set of writes agree on
//! the winner without talking to each other: **last writer wins** (LWW).
//!
//! ```text
//!   (ts 1700000000123.0, node 2)  <  (ts 1700000000123.1, node 1)  <  (ts 1700000000124.0, node 1)
//!        physical ms . logical            the logical counter orders events within one ms
//! ```
//!
//! A delete is a write like any other: a [`Versioned`] whose `value` is `None` (a
//! *tombstone*). It must win against older values that arrive late (through read repair
//! or hinted handoff), which is why deletes are stored and not simply removed.
//!
//! [`Versioned::merge`] is the whole conflict-resolution story; it is commutative,
//! associative and idempotent (proptests in this module), so replicas converge no matter
//! in which order, or how many times, writes and repairs reach them.

use serde::{Deserialize, Serialize};

use super::hlc::HlcTimestamp;

/// Identifies a node of the demo cluster. The same numbering as the Raft member ids.
pub type NodeId = u64;

/// The version of one write: when (hybrid logical clock) and where (coordinating node).
///
/// Ordered by `ts`, then by `node` — the field order matters for the derived `Ord`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    pub ts: HlcTimestamp,
    pub node: NodeId,
}

impl std::fmt::Display for Version {
    /// `physical.logical@node`, e.g. `1700000000123.4@2` — the form used for the
    /// `kv.version` telemetry attribute.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.ts, self.node)
    }
}

/// A [`Version`] written as text (its `Display` form) that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a version: expected PHYSICAL_MS.LOGICAL@NODE, e.g. 1700000000123.4@2")]
pub struct ParseVersionError {
    pub text: String,
}

impl std::str::FromStr for Version {
    type Err = ParseVersionError;

    /// The inverse of `Display`: `1700000000123.4@2`. Lets a client hand back the
    /// version it was given (so its next write is ordered after it, see `hlc`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = (|| {
            let (ts, node) = text.split_once('@')?;
            let (physical, logical) = ts.split_once('.')?;
            Some(Version {
                ts: HlcTimestamp {
                    physical_ms: physical.parse().ok()?,
                    logical: logical.parse().ok()?,
                },
                node: node.parse().ok()?,
            })
        })();
        parsed.ok_or_else(|| ParseVersionError {
            text: text.to_owned(),
        })
    }
}

/// A value (or a tombstone) together with the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Versioned {
    /// `None` is a tombstone: the key was deleted by the write `version`.
    ///
    /// Values are text: the demo stores JSON documents (orders) and its HTTP API is JSON.
    pub value: Option<String>,
    pub version: Version,
}

impl Versioned {
    pub fn value(value: impl Into<String>, version: Version) -> Self {
        Self {
            value: Some(value.into()),
            version,
        }
    }

    pub fn tombstone(version: Version) -> Self {
        Self {
            value: None,
            version,
        }
    }

    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Last-writer-wins: the copy with the greater version.
    ///
    /// Two copies with the same version are the same write (a version is minted once,
    /// by one coordinator), so which of them is returned does not matter; `self` is.
    pub fn merge(self, other: Versioned) -> Versioned {
        if other.version > self.version {
            other
        } else {
            self
        }
    }

    /// LWW over optional copies, where "no copy at all" loses to any write.
    pub fn merge_opt(a: Option<Versioned>, b: Option<Versioned>) -> Option<Versioned> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, None) => a,
            (None, b) => b,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn version(physical_ms: u64, logical: u32, node: NodeId) -> Version {
        Version {
            ts: HlcTimestamp {
                physical_ms,
                logical,
            },
            node,
        }
    }

    pub(crate) fn arb_version() -> impl Strategy<Value = Version> {
        // Small ranges so that ties on physical/logical (and so the node tie-break) happen.
        (0u64..5, 0u32..3, 0u64..4).prop_map(|(p, l, n)| version(p, l, n))
    }

    pub(crate) fn arb_versioned() -> impl Strategy<Value = Versioned> {
        // One version, one write: the value is a function of the version, so two copies
        // with equal versions are equal, as they are in the real system (a coordinator
        // mints each version once).
        arb_version().prop_map(|version| {
            let value = (version.ts.logical != 0).then(|| format!("v{version}"));
            Versioned { value, version }
        })
    }

    #[test]
    fn versions_order_by_timestamp_then_node() {
        assert!(version(10, 0, 9) < version(10, 1, 0));
        assert!(version(10, 5, 9) < version(11, 0, 0));
        assert!(version(10, 1, 1) < version(10, 1, 2));
        assert_eq!(version(10, 1, 2).to_string(), "10.1@2");
    }

    #[test]
    fn versions_parse_from_their_text_form() {
        let v = version(1_700_000_000_123, 4, 2);
        assert_eq!(v.to_string().parse::<Version>(), Ok(v));
        for bad in [
            "", "12", "12.3", "12@1", "a.1@2", "1.b@2", "1.2@c", "1.2@3@4", "-1.0@1",
        ] {
            assert_eq!(
                bad.parse::<Version>(),
                Err(ParseVersionError {
                    text: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn version_text_round_trips(p in any::<u64>(), l in any::<u32>(), n in any::<u64>()) {
            let v = version(p, l, n);
            prop_assert_eq!(v.to_string().parse::<Version>(), Ok(v));
        }
    }

    #[test]
    fn tombstone_wins_over_older_value_and_loses_to_newer() {
        let old = Versioned::value("a", version(1, 0, 1));
        let del = Versioned::tombstone(version(2, 0, 1));
        let new = Versioned::value("b", version(3, 0, 2));
        assert_eq!(old.clone().merge(del.clone()), del);
        assert_eq!(del.clone().merge(old), del);
        assert_eq!(del.merge(new.clone()), new);
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in arb_versioned(), b in arb_versioned()) {
            prop_assert_eq!(a.clone().merge(b.clone()), b.merge(a));
        }

        #[test]
        fn merge_is_associative(a in arb_versioned(), b in arb_versioned(), c in arb_versioned()) {
            prop_assert_eq!(
                a.clone().merge(b.clone()).merge(c.clone()),
                a.merge(b.merge(c))
            );
        }

        #[test]
        fn merge_is_idempotent(a in arb_versioned(), b in arb_versioned()) {
            let once = a.clone().merge(b.clone());
            prop_assert_eq!(once.clone().merge(b), once.clone());
            prop_assert_eq!(once.clone().merge(a), once);
        }

        #[test]
        fn merge_keeps_the_greatest_version(a in arb_versioned(), b in arb_versioned()) {
            let winner = a.clone().merge(b.clone());
            prop_assert_eq!(winner.version, a.version.max(b.version));
        }

        #[test]
        fn merge_opt_treats_missing_as_oldest(a in proptest::option::of(arb_versioned())) {
            prop_assert_eq!(Versioned::merge_opt(a.clone(), None), a.clone());
            prop_assert_eq!(Versioned::merge_opt(None, a.clone()), a);
        }
    }
}
