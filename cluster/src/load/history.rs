//! The load's client-side history: every order write and read, in the form the KV
//! checkers read ([`History<KvOp, KvRet>`]).
//!
//! ```text
//!  task: OrderHistory::write(seq, id) ──► Recorder::invoke  Write { key: "order:{id}", value: id, w: 2 }
//!        … request …
//!        Invoked::complete(&verdict) ──► ok(ret) | fail | info; the W/R the gateway reported
//!  end:  OrderHistory::history() ──► History with the reported W/R patched in ──► save (JSON lines)
//! ```
//!
//! Each arrival is its own process (its sequence number): in an open loop requests
//! overlap freely, and a process issues one operation at a time.
//!
//! The quorum is part of the operation, which is recorded before the request is sent,
//! while the gateway says which W or R it used only in its answer. The operation is
//! therefore invoked with [`DEFAULT_QUORUM`] and patched with the reported value when the
//! history is taken. Without a report (a timeout, an error body) the default stays: the
//! demo's nodes use W = R = 2 unless reconfigured.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::check::Outcome;
use crate::check::history::{History, Operation, Pending, ProcessId, Recorder};
use crate::check::kv::{KvOp, KvRet};

use super::judge::Verdict;

/// The W and R assumed when the gateway does not say: the demo nodes' defaults.
pub const DEFAULT_QUORUM: u8 = 2;

/// The KV key an order is stored under.
pub fn order_key(order_id: &str) -> String {
    format!("order:{order_id}")
}

/// Records the history; cheap to clone (one per request task).
#[derive(Debug, Clone, Default)]
pub struct OrderHistory {
    recorder: Recorder<KvOp, KvRet>,
    /// Operation id → the quorum the gateway reported.
    quorums: Arc<Mutex<HashMap<usize, u8>>>,
}

/// An operation sent and not yet answered. Dropping it records `info`.
#[derive(Debug)]
#[must_use = "complete it with the verdict; dropping it records info"]
pub struct Invoked {
    pending: Pending<KvOp, KvRet>,
    quorums: Arc<Mutex<HashMap<usize, u8>>>,
}

impl OrderHistory {
    pub fn new() -> OrderHistory {
        OrderHistory::default()
    }

    /// Call just before sending `POST /orders` for `order_id`.
    pub fn write(&self, process: ProcessId, order_id: &str) -> Invoked {
        self.invoke(
            process,
            KvOp::Write {
                key: order_key(order_id),
                value: order_id.to_owned(),
                w: DEFAULT_QUORUM,
            },
        )
    }

    /// Call just before sending `GET /orders/{order_id}`.
    pub fn read(&self, process: ProcessId, order_id: &str) -> Invoked {
        self.invoke(
            process,
            KvOp::Read {
                key: order_key(order_id),
                r: DEFAULT_QUORUM,
            },
        )
    }

    fn invoke(&self, process: ProcessId, op: KvOp) -> Invoked {
        Invoked {
            pending: self.recorder.invoke(process, op),
            quorums: Arc::clone(&self.quorums),
        }
    }

    /// The history so far (operations in flight appear as `info`), with the reported
    /// quorums.
    pub fn history(&self) -> History<KvOp, KvRet> {
        let quorums = self
            .quorums
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        with_quorums(self.recorder.history(), &quorums)
    }
}

impl Invoked {
    /// Records the verdict on the answer, just after it arrived.
    pub fn complete(self, verdict: &Verdict) {
        if let Some(q) = verdict.quorum {
            self.quorums
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(self.pending.id(), q);
        }
        match &verdict.outcome {
            Outcome::Ok(ret) => self.pending.ok(ret.clone()),
            Outcome::Fail => self.pending.fail(),
            Outcome::Info => self.pending.info(),
        }
    }
}

/// `history` with the W of writes and the R of reads replaced by `quorums` (by id).
fn with_quorums(
    history: History<KvOp, KvRet>,
    quorums: &HashMap<usize, u8>,
) -> History<KvOp, KvRet> {
    let ops: Vec<Operation<KvOp, KvRet>> = history
        .ops()
        .iter()
        .cloned()
        .map(|mut op| {
            if let Some(&q) = quorums.get(&op.id) {
                match &mut op.op {
                    KvOp::Write { w, .. } | KvOp::Delete { w, .. } => *w = q,
                    KvOp::Read { r, .. } => *r = q,
                }
            }
            op
        })
        .collect();
    History::from(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::kv::Version;
    use crate::load::judge::{self, Reply};
    use serde_json::json;

    #[test]
    fn writes_and_reads_are_recorded_with_keys_outcomes_and_reported_quorums() {
        let h = OrderHistory::new();
        let w = h.write(0, "o-a-0");
        let lost = h.write(1, "o-a-1");
        let r = h.read(2, "o-a-0");
        let in_flight = h.read(3, "o-a-0");
        w.complete(&judge::write(&Reply::Answered {
            status: 201,
            body: Some(json!({"version": "1700000000123.4@2", "w": 1})),
        }));
        lost.complete(&judge::write(&Reply::TimedOut));
        r.complete(&judge::read(
            "o-a-0",
            &Reply::Answered {
                status: 200,
                body: Some(json!({"order": {"id": "o-a-0"}, "version": "1700000000123.4@2"})),
            },
        ));
        let history = h.history();
        let ops = history.ops();
        assert_eq!(ops.len(), 4);
        assert_eq!(
            ops[0].op,
            KvOp::Write {
                key: "order:o-a-0".into(),
                value: "o-a-0".into(),
                w: 1
            },
            "the gateway's W replaces the default"
        );
        let v = Version {
            clock: (1_700_000_000_123 << 22) | 4,
            node: 2,
        };
        assert_eq!(ops[0].ok(), Some(&KvRet::Written { version: Some(v) }));
        assert_eq!(
            ops[1].op,
            KvOp::Write {
                key: "order:o-a-1".into(),
                value: "o-a-1".into(),
                w: DEFAULT_QUORUM
            }
        );
        assert!(ops[1].is_info());
        assert_eq!(
            ops[2].op,
            KvOp::Read {
                key: "order:o-a-0".into(),
                r: DEFAULT_QUORUM
            }
        );
        assert_eq!(
            ops[2].ok(),
            Some(&KvRet::Read {
                value: Some("o-a-0".into()),
                version: Some(v)
            })
        );
        assert!(ops[3].is_info() && ops[3].complete_ns.is_none());
        assert_eq!(
            ops.iter().map(|o| o.process).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        drop(in_flight);

        // The checkers accept it: the read saw the acknowledged write.
        let stale = crate::check::check_stale_reads(&h.history());
        assert_eq!((stale.reads, stale.stale), (1, 0));
        assert!(stale.unexplained.is_empty());
    }
}
