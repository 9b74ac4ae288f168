//! Linearizability checking: does some total order of the operations, consistent with
//! real time, explain every result under a sequential model?
//!
//! ```text
//!  History<Op, Output> ──partition (P-compositionality)──► one sub-history per key
//!        │                                                     │
//!        │      Model { init, step, partition }                ▼
//!        └───────────────────────────────────────► Wing & Gong / Lowe search, memoized
//!                                                  on (linearized set, state), budgeted
//!                                                              │
//!                                   Linearizable │ Violation (shortest failing prefix,
//!                                                │   culprit, a witness order) │ Unknown
//! ```
//!
//! **Algorithm.** Porcupine's (Athalye, 2017): Wing & Gong's search (1993) with Lowe's
//! memoization (2017). Calls and returns are put in one list ordered by time (a call
//! sorts before a return at the same instant: touching intervals count as concurrent,
//! which can only hide a violation, never invent one). A configuration is the set of
//! calls linearized so far plus the model state; its candidates are the calls ahead of
//! the first pending return. A candidate whose result the model accepts is lifted out of
//! the list (dancing links) and the search descends; when no candidate is left it
//! backtracks. Configurations are memoized so none is explored twice — this is what makes
//! typical histories near-linear, and the worst case (many concurrent operations)
//! exponential, hence the budget and the [`Verdict::Unknown`] answer.
//!
//! **Unknown outcomes.** An `info` call (or one still pending at a prefix cut) has an
//! unknown result and returns at +∞: it may take effect anywhere after its invocation,
//! or never. These *optional* calls live in a second list and never block the search:
//! it succeeds once every *mandatory* call (known result) is placed. `fail` calls are
//! dropped (they did not happen), and so are optional calls the model calls read-only
//! or [unobservable](Model::unobservable). Optional calls are what make searches
//! expensive, so on top of Porcupine:
//!
//! - **dominance**: a configuration is skipped if one with the same mandatory set and
//!   state but a subset of its optional calls was explored (leaving optional calls out
//!   is always allowed), not only on exact repeats;
//! - **reordering**: right after optional calls, a candidate whose effect does not depend
//!   on them is skipped — applying it before them gives a dominating configuration;
//! - **forced reads**: a read-only call that is valid now is placed now with no
//!   alternative tried (moving a state-preserving call earlier never invalidates an
//!   order), which removes the blow-up from interleavings of concurrent reads;
//! - mandatory candidates are tried before optional ones, so the configuration without
//!   an optional call is explored before (and then dominates) the ones with it;
//! - **useful optional calls only**: where the mandatory candidates are exhausted, an
//!   optional call is tried only if it enables a blocked candidate (tried first: usually
//!   the timed-out write that a read observed) or changes what a non-[blind](Model::is_blind)
//!   candidate would do — anything else leads to a configuration with nothing to try.
//!   Hundreds of timed-out writes then cost little, where each would otherwise be tried
//!   at every backtrack.
//!
//! Each of these only prunes configurations that another explored configuration covers;
//! the proptests compare the verdicts against a brute-force search.
//!
//! **Cost.** Proving a history linearizable follows one mostly-greedy path: near-linear.
//! Proving a violation means exhausting every configuration, which grows with the
//! concurrency and, sharply, with the number of unknown outcomes that could explain a
//! result (a timed-out write can explain any failed CAS). Long histories with many
//! timeouts and a violation may therefore come back [`Verdict::Unknown`]; raise
//! [`Config::max_steps`] or split the history into more keys.
//!
//! **P-compositionality.** A history is linearizable iff each per-object sub-history is
//! (Herlihy & Wing, locality), so a map of registers is checked one key at a time.
//!
//! **Explanations.** The search notes the furthest return any order got to (Porcupine's
//! longest partial linearization); no order gets past it. Then (unless
//! [`Config::explain`] is off) the checker binary-searches the shortest prefix of the
//! partition's history, cut just after a return, that is not linearizable — starting at
//! that furthest return, so an early violation in a long history stays cheap to explain.
//! Prefixes of a linearizable history are linearizable, so the search is sound. The
//! operation whose return ends that prefix is the culprit: everything up to just before
//! it completed is linearizable (a witness order is shown, operations still pending there
//! marked `*`), and no order accommodates its result.
//!
//! The search engine lives in `linearizable/search.rs`; this file holds the API, the
//! reports and the [`RegisterMap`] model.

mod search;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use self::search::{Call, Found, explain, search};
use super::history::{History, Operation};

/// A sequential specification. The checker asks one question: from `state`, can
/// operation `op` produce `output` — and if so, what is the next state?
///
/// A model is deterministic: for a given state, operation and (possibly unknown)
/// output, there is at most one next state.
pub trait Model {
    /// The operation with its arguments, as recorded by the client.
    type Op: Clone + fmt::Debug;
    /// What the system answered.
    type Output: Clone + fmt::Debug;
    /// The state of one partition (e.g. one register of a map). Hashed for memoization,
    /// so keep it small.
    type State: Clone + Eq + Hash + fmt::Debug;
    /// Which independent object an operation touches (e.g. its key).
    type Partition: Clone + Ord + fmt::Debug;

    /// The state of every partition before any operation.
    fn init(&self) -> Self::State;

    /// The object `op` touches. Operations on different partitions never constrain each
    /// other; a model without independent objects returns a constant.
    fn partition(&self, op: &Self::Op) -> Self::Partition;

    /// Applies `op` to `state`. `output` is `None` when the outcome is unknown (`info`):
    /// the model then applies the operation as it would have executed. Returns `None`
    /// when `output` is impossible from `state`.
    fn step(
        &self,
        state: &Self::State,
        op: &Self::Op,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// True if `op` cannot change the state when it answers `output` (`None`: unknown
    /// output). Such calls are dropped when their outcome is unknown, and placed as soon
    /// as they are valid (see [`check_with`]); a model that says `false` is only slower.
    fn is_read_only(&self, op: &Self::Op, output: Option<&Self::Output>) -> bool {
        let _ = (op, output);
        false
    }

    /// True if `op` answering `output` is valid in every state and leads to the same
    /// next state from all of them (a blind write). Lets the search skip timed-out calls
    /// that nothing pending could observe; a model that says `false` is only slower.
    fn is_blind(&self, op: &Self::Op, output: Option<&Self::Output>) -> bool {
        let _ = (op, output);
        false
    }

    /// Which unknown-outcome operations (`None` output) of one partition nothing else in
    /// it could tell apart from never having happened, so the search may leave them out.
    /// Pending operations are what make a search expensive: each one can be placed
    /// anywhere after its invocation. The default keeps everything.
    fn unobservable(&self, ops: &[(&Self::Op, Option<&Self::Output>)]) -> Vec<bool> {
        vec![false; ops.len()]
    }
}

/// An operation of a history checked against `M`.
pub type ModelOperation<M> = Operation<<M as Model>::Op, <M as Model>::Output>;

/// Search limits. Both bound one partition's search; the checker answers
/// [`Verdict::Unknown`] for that partition rather than running on.
#[derive(Clone, Debug)]
pub struct Config {
    /// Steps of the search (one model step each). Typical histories need a few per
    /// operation; a step costs 0.1–0.5 µs in a release build (about 10× that in debug).
    pub max_steps: u64,
    /// Memory for the memo table, in bytes (estimated).
    pub max_memo_bytes: usize,
    /// On a violation, find the shortest failing prefix and a witness (up to ~log2(n)
    /// more searches, each under the same limits).
    pub explain: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_steps: 10_000_000,
            max_memo_bytes: 256 << 20,
            explain: true,
        }
    }
}

/// The overall answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// At least one partition has no valid linearization.
    NotLinearizable,
    /// No violation found, but some partition exhausted its budget.
    Unknown,
}

/// The result of [`check`].
#[derive(Clone, Debug)]
pub struct Report<M: Model> {
    /// Operations searched (`fail` and read-only `info` operations are not).
    pub operations: usize,
    /// Operations dropped before the search: `fail`, and `info` read-only ones.
    pub dropped: usize,
    pub partitions: usize,
    /// Search steps over all partitions (explanation searches not included).
    pub steps: u64,
    pub violations: Vec<Violation<M>>,
    pub undecided: Vec<Undecided<M>>,
}

impl<M: Model> Report<M> {
    pub fn verdict(&self) -> Verdict {
        if !self.violations.is_empty() {
            Verdict::NotLinearizable
        } else if !self.undecided.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Linearizable
        }
    }

    pub fn is_linearizable(&self) -> bool {
        self.verdict() == Verdict::Linearizable
    }
}

/// A partition the search gave up on.
#[derive(Clone, Debug)]
pub struct Undecided<M: Model> {
    pub partition: M::Partition,
    pub operations: usize,
    pub steps: u64,
    pub limit: Limit,
}

/// Which budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Steps,
    Memory,
}

/// One operation of a witness order, with the state after it.
#[derive(Clone, Debug)]
pub struct LinearizedOp<M: Model> {
    pub op: ModelOperation<M>,
    /// The operation had not returned at the cut: it was placed with an unknown result.
    pub pending: bool,
    pub state_after: M::State,
}

/// A partition with no valid linearization, explained.
#[derive(Clone, Debug)]
pub struct Violation<M: Model> {
    pub partition: M::Partition,
    /// Operations searched in this partition.
    pub partition_ops: usize,
    /// The operation whose return ends the shortest non-linearizable prefix: no order
    /// of what came before accommodates its result. `None` if the explanation search ran
    /// out of budget or was disabled.
    pub culprit: Option<ModelOperation<M>>,
    /// Operations in the shortest non-linearizable prefix.
    pub prefix_ops: usize,
    /// The operation whose return no order tried by the search got past (Porcupine's
    /// "longest partial linearization" ends just before it). Cheap to find, so always
    /// there; the culprit is at or before it.
    pub stuck_at: Option<ModelOperation<M>>,
    /// A valid order of everything up to just before the culprit returned.
    pub witness: Vec<LinearizedOp<M>>,
    /// Operations of the partition whose interval overlaps the culprit's.
    pub concurrent: Vec<ModelOperation<M>>,
}

/// Checks `history` with the default [`Config`].
pub fn check<M: Model>(model: &M, history: &History<M::Op, M::Output>) -> Report<M> {
    check_with(model, history, &Config::default())
}

/// Checks `history` against `model`, one partition at a time.
pub fn check_with<M: Model>(
    model: &M,
    history: &History<M::Op, M::Output>,
    config: &Config,
) -> Report<M> {
    let mut partitions: BTreeMap<M::Partition, Vec<&ModelOperation<M>>> = BTreeMap::new();
    let mut dropped = 0;
    for op in history {
        if op.is_fail() || (op.return_ns().is_none() && model.is_read_only(&op.op, None)) {
            dropped += 1;
            continue;
        }
        partitions
            .entry(model.partition(&op.op))
            .or_default()
            .push(op);
    }
    let mut report = Report {
        operations: history.len() - dropped,
        dropped,
        partitions: partitions.len(),
        steps: 0,
        violations: Vec::new(),
        undecided: Vec::new(),
    };
    for (partition, ops) in partitions {
        let calls: Vec<Call<'_, M>> = ops.iter().map(|op| Call::whole(op)).collect();
        let search = search(model, &calls, config);
        report.steps += search.steps;
        match search.result {
            Found::Linearizable(_) => {}
            Found::Exhausted(limit) => report.undecided.push(Undecided {
                partition,
                operations: ops.len(),
                steps: search.steps,
                limit,
            }),
            Found::Violation => {
                let stuck_at = search
                    .furthest
                    .and_then(|id| ops.iter().find(|op| op.id == id));
                let explained = if config.explain {
                    explain(model, &ops, search.furthest, config)
                } else {
                    None
                };
                let violation = explained.unwrap_or_else(|| Violation {
                    partition: partition.clone(),
                    partition_ops: ops.len(),
                    culprit: None,
                    prefix_ops: ops.len(),
                    stuck_at: None,
                    witness: Vec::new(),
                    concurrent: Vec::new(),
                });
                report.violations.push(Violation {
                    partition,
                    stuck_at: stuck_at.map(|op| (*op).clone()),
                    ..violation
                });
            }
        }
    }
    report
}

/// How many witness steps and concurrent operations a report prints.
const SHOWN: usize = 12;

impl<M> fmt::Display for Violation<M>
where
    M: Model,
    M::Op: fmt::Display,
    M::Output: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "partition {:?}: not linearizable ({} operations)",
            self.partition, self.partition_ops
        )?;
        let Some(culprit) = &self.culprit else {
            if let Some(stuck) = &self.stuck_at {
                writeln!(f, "  no order gets past the return of: {stuck}")?;
            }
            return writeln!(
                f,
                "  (no shortest failing prefix: explanation disabled or out of budget)"
            );
        };
        writeln!(f, "  cannot linearize: {culprit}")?;
        writeln!(
            f,
            "  shortest failing prefix: {} of {} operations (cut just after this return)",
            self.prefix_ops, self.partition_ops
        )?;
        if self.witness.is_empty() {
            writeln!(
                f,
                "  nothing precedes it: its result is impossible from the initial state"
            )?;
        } else {
            let skip = self.witness.len().saturating_sub(SHOWN);
            writeln!(
                f,
                "  everything before it is linearizable, e.g. in this order{}:",
                if skip > 0 {
                    format!(" (last {SHOWN} of {})", self.witness.len())
                } else {
                    String::new()
                }
            )?;
            for step in &self.witness[skip..] {
                let mark = if step.pending { "*" } else { " " };
                writeln!(f, "   {mark}{}  ⇒ {:?}", step.op, step.state_after)?;
            }
            if self.witness.iter().any(|s| s.pending) {
                writeln!(
                    f,
                    "   (* pending at that point: placed with its result unknown)"
                )?;
            }
        }
        if self.concurrent.is_empty() {
            writeln!(f, "  concurrent with #{}: none", culprit.id)?;
        } else {
            writeln!(
                f,
                "  concurrent with #{} ({}):",
                culprit.id,
                self.concurrent.len()
            )?;
            for op in self.concurrent.iter().take(SHOWN) {
                writeln!(f, "    {op}")?;
            }
            if self.concurrent.len() > SHOWN {
                writeln!(f, "    … {} more", self.concurrent.len() - SHOWN)?;
            }
        }
        Ok(())
    }
}

impl<M> fmt::Display for Report<M>
where
    M: Model,
    M::Op: fmt::Display,
    M::Output: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match self.verdict() {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "NOT LINEARIZABLE",
            Verdict::Unknown => "UNKNOWN (search budget exhausted)",
        };
        writeln!(
            f,
            "linearizability: {verdict}: {} operations in {} partitions ({} dropped: fail or info reads), {} search steps",
            self.operations, self.partitions, self.dropped, self.steps
        )?;
        for v in &self.violations {
            write!(f, "{v}")?;
        }
        for u in &self.undecided {
            writeln!(
                f,
                "partition {:?}: undecided after {} steps over {} operations ({} limit)",
                u.partition,
                u.steps,
                u.operations,
                match u.limit {
                    Limit::Steps => "step",
                    Limit::Memory => "memory",
                }
            )?;
        }
        Ok(())
    }
}

/// A map of registers: the Raft store's metadata, as the tests drive it. Each key is an
/// independent register (its own partition), initially absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterMap;

/// An operation on a [`RegisterMap`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum RegisterOp {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: String,
    },
    /// Sets `new` if the current value is `expected` (`None`: the key is absent).
    Cas {
        key: String,
        expected: Option<String>,
        new: String,
    },
    Delete {
        key: String,
    },
}

impl RegisterOp {
    pub fn key(&self) -> &str {
        match self {
            Self::Read { key }
            | Self::Write { key, .. }
            | Self::Cas { key, .. }
            | Self::Delete { key } => key,
        }
    }
}

/// What a [`RegisterMap`] answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterRet {
    /// The value read (`None`: absent).
    Read(Option<String>),
    Written,
    /// Whether the compare-and-set applied.
    Cas(bool),
    Deleted,
}

struct Maybe<'a>(&'a Option<String>);

impl fmt::Display for Maybe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => f.write_str(v),
            None => f.write_str("∅"),
        }
    }
}

impl fmt::Display for RegisterOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { key } => write!(f, "read({key})"),
            Self::Write { key, value } => write!(f, "write({key}, {value})"),
            Self::Cas { key, expected, new } => {
                write!(f, "cas({key}, {} → {new})", Maybe(expected))
            }
            Self::Delete { key } => write!(f, "delete({key})"),
        }
    }
}

impl fmt::Display for RegisterRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(v) => write!(f, "{}", Maybe(v)),
            Self::Written | Self::Deleted => f.write_str("ok"),
            Self::Cas(applied) => write!(f, "{applied}"),
        }
    }
}

impl Model for RegisterMap {
    type Op = RegisterOp;
    type Output = RegisterRet;
    type State = Option<String>;
    type Partition = String;

    fn init(&self) -> Option<String> {
        None
    }

    fn partition(&self, op: &RegisterOp) -> String {
        op.key().to_owned()
    }

    fn step(
        &self,
        state: &Option<String>,
        op: &RegisterOp,
        output: Option<&RegisterRet>,
    ) -> Option<Option<String>> {
        match (op, output) {
            (RegisterOp::Read { .. }, None) => Some(state.clone()),
            (RegisterOp::Read { .. }, Some(RegisterRet::Read(v))) => {
                (v == state).then(|| state.clone())
            }
            (RegisterOp::Write { value, .. }, None | Some(RegisterRet::Written)) => {
                Some(Some(value.clone()))
            }
            (RegisterOp::Cas { expected, new, .. }, None) => Some(if state == expected {
                Some(new.clone())
            } else {
                state.clone()
            }),
            (RegisterOp::Cas { expected, new, .. }, Some(RegisterRet::Cas(true))) => {
                (state == expected).then(|| Some(new.clone()))
            }
            (RegisterOp::Cas { expected, .. }, Some(RegisterRet::Cas(false))) => {
                (state != expected).then(|| state.clone())
            }
            (RegisterOp::Delete { .. }, None | Some(RegisterRet::Deleted)) => Some(None),
            // A result of the wrong kind for the operation: impossible in any state.
            _ => None,
        }
    }

    fn is_read_only(&self, op: &RegisterOp, output: Option<&RegisterRet>) -> bool {
        matches!(
            (op, output),
            (RegisterOp::Read { .. }, _) | (RegisterOp::Cas { .. }, Some(RegisterRet::Cas(false)))
        )
    }

    fn is_blind(&self, op: &RegisterOp, output: Option<&RegisterRet>) -> bool {
        matches!(
            (op, output),
            (RegisterOp::Write { .. }, None | Some(RegisterRet::Written))
                | (RegisterOp::Delete { .. }, None | Some(RegisterRet::Deleted))
        )
    }

    /// A write, delete or CAS with an unknown outcome is unobservable when no `ok` read
    /// returns the value it would leave, no CAS that may have applied expects that value,
    /// and no CAS reported `false`. Proof sketch: in any valid order that contains it,
    /// the operations between it and the next overwrite can only be reads of its value
    /// (none), CASes expecting its value (none), failed CASes (none), or unknown-outcome
    /// operations that were no-ops there and can be dropped too; so removing it leaves a
    /// valid order.
    fn unobservable(&self, ops: &[(&RegisterOp, Option<&RegisterRet>)]) -> Vec<bool> {
        let mut seen: HashSet<Option<&str>> = HashSet::new();
        for (op, output) in ops {
            match (op, output) {
                (RegisterOp::Read { .. }, Some(RegisterRet::Read(v))) => {
                    seen.insert(v.as_deref());
                }
                (RegisterOp::Cas { .. }, Some(RegisterRet::Cas(false))) => {
                    return vec![false; ops.len()];
                }
                (RegisterOp::Cas { expected, .. }, _) => {
                    seen.insert(expected.as_deref());
                }
                _ => {}
            }
        }
        ops.iter()
            .map(|(op, output)| {
                output.is_none()
                    && match op {
                        RegisterOp::Read { .. } => false,
                        RegisterOp::Write { value, .. } => !seen.contains(&Some(value.as_str())),
                        RegisterOp::Cas { new, .. } => !seen.contains(&Some(new.as_str())),
                        RegisterOp::Delete { .. } => !seen.contains(&None),
                    }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
