//! History checkers: what the cluster's fault tests use to prove it correct, independent
//! of how the cluster is built (in the manner of Jepsen's Knossos and Porcupine).
//!
//! ```text
//!  test clients ──invoke / ok | fail | info──► Recorder ──► History<Op, Ret> ──┬─► linearizable::check  (Raft store)
//!                                                  │                          ├─► queue::check_queue    (queues + DLQ)
//!                                                  └─► JSON lines on disk     ├─► kv::check_lost_writes (quorum KV, + final reads)
//!                                                                             └─► kv::check_stale_reads (quorum KV, measured)
//! ```
//!
//! A test records every client call with a [`Recorder`] (invocation and completion times,
//! the outcome), injects its faults, heals, reads the final state where a checker needs
//! it, and hands the [`History`] to a checker. Every report implements `Display`; on
//! failure a test prints its seed, the report and the history
//! ([`failure_report`] does all three).
//!
//! # Outcomes
//!
//! `ok(result)`: it happened. `fail`: it definitely did not happen. `info`: unknown — a
//! timeout or a lost connection; it may take effect at any time after its invocation,
//! even after the client gave up. Every checker treats `info` as "may or may not", so
//! recording `info` when in doubt is always safe, while recording `fail` for something
//! that might have happened produces false alarms.
//!
//! # What each checker proves, and what it does not
//!
//! | checker | proves | does not prove |
//! |---|---|---|
//! | [`linearizable`] | The recorded history of the Raft store is linearizable: some total order of the operations, consistent with real time, explains every result under the sequential model ([`RegisterMap`]: read, write, CAS, delete per key; other models plug in through [`Model`]). | Anything about operations not recorded; liveness (a store that refuses everything is linearizable); durability after the history ends. [`Verdict::Unknown`] means the search budget ran out — not a pass. |
//! | [`queue`] | At-least-once: every acknowledged enqueue was delivered or is still stored (queue or DLQ) at the final drain; nothing delivered that was not enqueued. Duplicates and delivery-count regressions are measured. | Ordering, exactly-once, visibility-timeout behaviour, the fate of `info` enqueues. |
//! | [`kv::check_lost_writes`] | No acknowledged write with W ≥ 2 is missing from the final (healed) state unless a concurrent or later write legitimately replaced it under last-writer-wins. The precise definitions are in [`kv`]. | Any read consistency; that replicas converged (divergence is reported, not judged); the fate of W < 2 writes (counted). |
//! | [`kv::check_stale_reads`] | Nothing — it measures: how many reads returned a value already overwritten by an acknowledged write, per R, with examples and how outdated. With R + W ≤ N these are allowed. | — |
//!
//! All checkers are pure functions of their input: no clocks, no randomness, no I/O.

pub mod history;
pub mod kv;
pub mod linearizable;
pub mod queue;

use std::fmt;
use std::path::Path;

use serde::Serialize;

pub use history::{History, HistoryError, Operation, Outcome, Pending, ProcessId, Recorder};
pub use kv::{
    FinalRead, KvOp, KvRet, LostWriteReport, StaleReadReport, Version, check_lost_writes,
    check_stale_reads,
};
pub use linearizable::{
    Config, Model, RegisterMap, RegisterOp, RegisterRet, Report, Verdict, Violation, check,
    check_with,
};
pub use queue::{Delivery, QueueOp, QueueReport, QueueRet, Source, check_queue};

/// Histories longer than this are saved to a file by [`failure_report`] rather than
/// printed.
pub const INLINE_HISTORY_OPS: usize = 200;

/// The message a failing test prints: the seed to reproduce with, the checker's report,
/// and the history — inline when short, otherwise saved as JSON lines to `save_to` (if
/// given) and referred to by path.
pub fn failure_report<Op, Ret>(
    seed: u64,
    report: &dyn fmt::Display,
    history: &History<Op, Ret>,
    save_to: Option<&Path>,
) -> String
where
    Op: Serialize + fmt::Display,
    Ret: Serialize + fmt::Display,
{
    let mut out = format!("seed: {seed}\n{report}");
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let saved = match save_to {
        Some(path) if history.len() > INLINE_HISTORY_OPS => Some(history.save(path).map(|()| path)),
        _ => None,
    };
    match saved {
        Some(Ok(path)) => {
            let (ok, fail, info) = history.outcome_counts();
            out.push_str(&format!(
                "history: {} operations ({ok} ok, {fail} fail, {info} info) saved to {}\n",
                history.len(),
                path.display()
            ));
        }
        Some(Err(e)) => {
            out.push_str(&format!("(could not save the history: {e})\n{history}"));
        }
        None => out.push_str(&history.to_string()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_report_inlines_short_histories_and_saves_long_ones() {
        let mut h: History<RegisterOp, RegisterRet> = History::new();
        h.push_ok(
            1,
            0,
            10,
            RegisterOp::Write {
                key: "x".into(),
                value: "1".into(),
            },
            RegisterRet::Written,
        );
        h.push_ok(
            2,
            20,
            30,
            RegisterOp::Read { key: "x".into() },
            RegisterRet::Read(None),
        );
        let report = check(&RegisterMap, &h);
        let text = failure_report(42, &report, &h, None);
        assert!(
            text.starts_with("seed: 42\nlinearizability: NOT LINEARIZABLE"),
            "{text}"
        );
        assert!(text.contains("history: 2 operations"), "{text}");
        assert!(
            text.contains("#1 p2 [0.000000s, 0.000000s] read(x) → ∅"),
            "{text}"
        );

        for i in 0..INLINE_HISTORY_OPS as u64 {
            h.push_ok(
                3,
                40 + i,
                41 + i,
                RegisterOp::Read { key: "y".into() },
                RegisterRet::Read(None),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let text = failure_report(7, &report, &h, Some(&path));
        assert!(
            text.contains(&format!("saved to {}", path.display())),
            "{text}"
        );
        assert!(!text.contains("read(y)"), "{text}");
        assert_eq!(History::<RegisterOp, RegisterRet>::load(&path).unwrap(), h);
    }
}
