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
//!   an optional call is explored before (and then dominates) the ones with it.
//!
//! Each of these only prunes configurations that another explored configuration covers;
//! the proptests compare the verdicts against a brute-force search.
//!
//! **P-compositionality.** A history is linearizable iff each per-object sub-history is
//! (Herlihy & Wing, locality), so a map of registers is checked one key at a time.
//!
//! **Explanations.** On a violation the checker binary-searches the shortest prefix of the
//! partition's history (cut just after a return) that is not linearizable. Prefixes of a
//! linearizable history are linearizable, so the search is sound. The operation whose
//! return ends that prefix is the culprit: everything up to just before it completed is
//! linearizable (a witness order is shown, operations still pending there marked `*`),
//! and no order accommodates its result.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use serde::{Deserialize, Serialize};

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
            max_steps: 5_000_000,
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
                let explained = if config.explain {
                    explain(model, &ops, config)
                } else {
                    None
                };
                report.violations.push(explained.map_or_else(
                    || Violation {
                        partition: partition.clone(),
                        partition_ops: ops.len(),
                        culprit: None,
                        prefix_ops: ops.len(),
                        witness: Vec::new(),
                        concurrent: Vec::new(),
                    },
                    |e| Violation {
                        partition: partition.clone(),
                        partition_ops: ops.len(),
                        ..e
                    },
                ));
            }
        }
    }
    report
}

/// One operation as the search sees it.
struct Call<'h, M: Model> {
    op: &'h ModelOperation<M>,
    /// `None`: unknown result (info, or still pending at a prefix cut).
    output: Option<&'h M::Output>,
    invoke: u64,
    /// `None`: +∞.
    ret: Option<u64>,
}

impl<M: Model> Clone for Call<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: Model> Copy for Call<'_, M> {}

impl<'h, M: Model> Call<'h, M> {
    fn whole(op: &'h ModelOperation<M>) -> Self {
        let ret = op.return_ns();
        // An `ok` without a completion time is malformed; treat it as unknown.
        let output = ret.and(op.ok());
        Self {
            op,
            output,
            invoke: op.invoke_ns,
            ret,
        }
    }

    fn pending(op: &'h ModelOperation<M>) -> Self {
        Self {
            op,
            output: None,
            invoke: op.invoke_ns,
            ret: None,
        }
    }
}

/// Events (calls and returns) in list order: by time, a call before a return at the same
/// instant, +∞ returns last.
fn event_order<M: Model>(calls: &[Call<'_, M>]) -> Vec<(usize, bool)> {
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(calls.len() * 2);
    for (i, c) in calls.iter().enumerate() {
        events.push((c.invoke, false, i));
        events.push((c.ret.unwrap_or(u64::MAX), true, i));
    }
    // (time, is_return, index): `false` < `true` puts calls first at equal times; an +∞
    // return (u64::MAX) sorts after every finite event.
    events.sort_unstable();
    events
        .into_iter()
        .map(|(_, is_return, i)| (i, is_return))
        .collect()
}

enum Found<S> {
    /// A witness: (call index, state after), in linearization order.
    Linearizable(Vec<(usize, S)>),
    Violation,
    Exhausted(Limit),
}

struct Search<S> {
    result: Found<S>,
    steps: u64,
}

const NIL: usize = usize::MAX;

/// A doubly linked list over nodes `1..`, with a head sentinel at 0, from which nodes
/// are unlinked and relinked in reverse order (dancing links: an unlinked node keeps its
/// own pointers, so relinking is O(1)).
struct Links {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl Links {
    /// A list of `len` nodes in order 1, 2, …, len.
    fn chain(len: usize) -> Self {
        let next = (0..=len)
            .map(|n| if n == len { NIL } else { n + 1 })
            .collect();
        let prev = (0..=len).map(|n| n.wrapping_sub(1)).collect();
        Self { next, prev }
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        if n != NIL {
            self.prev[n] = node;
        }
    }
}

/// What the search walks. Mandatory calls (known result) and their returns form the
/// main list, in event order; optional calls (unknown result: they return at +∞ and may
/// never take effect) form a second list, in invocation order. Node payloads are indexed
/// by node; `pos` is the position in the overall event order.
struct Lists {
    main: Links,
    main_call: Vec<usize>,
    main_is_return: Vec<bool>,
    main_pos: Vec<usize>,
    /// Per main call node: its return node.
    main_return: Vec<usize>,
    optional: Links,
    optional_call: Vec<usize>,
    optional_pos: Vec<usize>,
    /// Per call: (is optional, its call node).
    node_of: Vec<(bool, usize)>,
}

impl Lists {
    fn new<M: Model>(calls: &[Call<'_, M>]) -> Self {
        let (mut main_call, mut main_is_return, mut main_pos) = (vec![NIL], vec![false], vec![0]);
        let (mut optional_call, mut optional_pos) = (vec![NIL], vec![0]);
        let mut node_of = vec![(false, NIL); calls.len()];
        let mut return_node = vec![NIL; calls.len()];
        for (pos, (i, is_return)) in event_order(calls).into_iter().enumerate() {
            match (calls[i].ret.is_none(), is_return) {
                (true, true) => {}
                (true, false) => {
                    node_of[i] = (true, optional_call.len());
                    optional_call.push(i);
                    optional_pos.push(pos);
                }
                (false, _) => {
                    let node = main_call.len();
                    if is_return {
                        return_node[i] = node;
                    } else {
                        node_of[i] = (false, node);
                    }
                    main_call.push(i);
                    main_is_return.push(is_return);
                    main_pos.push(pos);
                }
            }
        }
        let mut main_return = vec![NIL; main_call.len()];
        for (i, &(is_optional, node)) in node_of.iter().enumerate() {
            if !is_optional {
                main_return[node] = return_node[i];
            }
        }
        Self {
            main: Links::chain(main_call.len() - 1),
            main_call,
            main_is_return,
            main_pos,
            main_return,
            optional: Links::chain(optional_call.len() - 1),
            optional_call,
            optional_pos,
            node_of,
        }
    }

    /// Takes a linearized call (and its return) out of the lists.
    fn lift(&mut self, call: usize) {
        match self.node_of[call] {
            (true, node) => self.optional.unlink(node),
            (false, node) => {
                self.main.unlink(node);
                self.main.unlink(self.main_return[node]);
            }
        }
    }

    /// Undoes the matching [`Lists::lift`] (lifts are undone in reverse order).
    fn unlift(&mut self, call: usize) {
        match self.node_of[call] {
            (true, node) => self.optional.relink(node),
            (false, node) => {
                self.main.relink(self.main_return[node]);
                self.main.relink(node);
            }
        }
    }

    fn advance(&self, cursor: Cursor) -> Cursor {
        match cursor {
            Cursor::Main(node) => Cursor::Main(self.main.next[node]),
            Cursor::Optional { node, frontier } => Cursor::Optional {
                node: self.optional.next[node],
                frontier,
            },
            Cursor::Start | Cursor::Exhausted => Cursor::Exhausted,
        }
    }
}

/// Where a configuration stands in trying its candidates. The candidates are the
/// mandatory calls ahead of the first pending return in the main list, and the optional
/// calls invoked before that return (`frontier`, an event position). Walking the lists
/// lazily matters: on the way to a valid order most configurations try one candidate.
#[derive(Clone, Copy)]
enum Cursor {
    /// Just entered: look for a forced move first.
    Start,
    Main(usize),
    Optional {
        node: usize,
        frontier: usize,
    },
    /// Nothing (more) to try here.
    Exhausted,
}

/// A fixed-size bitset.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn is_subset_of(&self, other: &Bits) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }
    fn bytes(&self) -> usize {
        self.0.len() * 8 + 16
    }

    /// The set as a memo key: the number of leading all-ones words, then the words up
    /// to the last non-zero one. With bits assigned in invocation order, a linearized set
    /// is a prefix plus a few calls around the frontier, so the key stays a few words
    /// long however long the history.
    fn key(&self) -> SetKey {
        let full = self.0.iter().take_while(|w| **w == u64::MAX).count();
        let end = self
            .0
            .iter()
            .rposition(|w| *w != 0)
            .map_or(0, |last| last + 1)
            .max(full);
        SetKey {
            full: full as u32,
            rest: self.0[full..end].into(),
        }
    }
}

/// A compact, exact form of a [`Bits`] (see [`Bits::key`]).
#[derive(Clone, PartialEq, Eq, Hash)]
struct SetKey {
    full: u32,
    rest: Box<[u64]>,
}

/// A fast non-cryptographic hasher (FxHash's mixing) for the memo's bitsets.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A state explored with some mandatory set, and the minimal optional sets it was
/// explored with (an antichain).
type Explored<S> = (S, Vec<Bits>);

/// Configurations already explored. A configuration is (linearized mandatory calls,
/// linearized optional calls, state).
///
/// Besides exact repeats, a configuration is skipped when an explored one has the same
/// mandatory set and state and a *subset* of its optional calls: whatever completes the
/// larger one completes the smaller one too, by leaving those optional calls out. Without
/// this, every subset of timed-out writes is a distinct configuration. (Soundness, by
/// induction on the length of the shortest completion: the dominating configuration is
/// explored, or will be, and is at least as close to a completion.)
struct Memo<S> {
    /// Mandatory set → (state, minimal optional sets explored with it: an antichain).
    table: HashMap<SetKey, Vec<Explored<S>>, BuildHasherDefault<MixHasher>>,
    bytes: usize,
}

impl<S: Eq + Clone> Memo<S> {
    fn new() -> Self {
        Self {
            table: HashMap::default(),
            bytes: 0,
        }
    }

    /// Records the configuration unless an explored one dominates it; true if recorded.
    fn visit(&mut self, mandatory: &Bits, optional: &Bits, state: &S) -> bool {
        let key = mandatory.key();
        let entry_bytes = std::mem::size_of::<Explored<S>>() + optional.bytes();
        let Some(states) = self.table.get_mut(&key) else {
            self.bytes += key.rest.len() * 8 + std::mem::size_of::<SetKey>() + entry_bytes + 32;
            self.table
                .insert(key, vec![(state.clone(), vec![optional.clone()])]);
            return true;
        };
        match states.iter_mut().find(|(s, _)| s == state) {
            Some((_, sets)) => {
                if sets.iter().any(|o| o.is_subset_of(optional)) {
                    return false;
                }
                sets.retain(|o| !optional.is_subset_of(o));
                sets.push(optional.clone());
                self.bytes += optional.bytes();
            }
            None => {
                states.push((state.clone(), vec![optional.clone()]));
                self.bytes += entry_bytes;
            }
        }
        true
    }
}

/// The calls linearized so far: mandatory and optional ones in separate bitsets.
struct Linearized {
    mandatory: Bits,
    optional: Bits,
    /// Per call: (is optional, its bit).
    bit: Vec<(bool, usize)>,
}

impl Linearized {
    fn new<M: Model>(calls: &[Call<'_, M>]) -> Self {
        // Bits in invocation order, so that linearized sets have short keys.
        let mut order: Vec<usize> = (0..calls.len()).collect();
        order.sort_by_key(|&i| (calls[i].invoke, i));
        let (mut mandatory, mut optional) = (0, 0);
        let mut bit = vec![(false, 0); calls.len()];
        for i in order {
            let is_optional = calls[i].ret.is_none();
            let counter = if is_optional {
                &mut optional
            } else {
                &mut mandatory
            };
            bit[i] = (is_optional, *counter);
            *counter += 1;
        }
        Self {
            mandatory: Bits::new(mandatory),
            optional: Bits::new(optional),
            bit,
        }
    }

    fn mark(&mut self, call: usize, on: bool) {
        let (is_optional, bit) = self.bit[call];
        let bits = if is_optional {
            &mut self.optional
        } else {
            &mut self.mandatory
        };
        if on { bits.set(bit) } else { bits.clear(bit) }
    }
}

/// Wing & Gong / Lowe search over one partition, leaving out the unknown-outcome calls
/// the model calls unobservable.
fn search<M: Model>(model: &M, calls: &[Call<'_, M>], config: &Config) -> Search<M::State> {
    let view: Vec<(&M::Op, Option<&M::Output>)> =
        calls.iter().map(|c| (&c.op.op, c.output)).collect();
    let unobservable = model.unobservable(&view);
    let kept: Vec<usize> = (0..calls.len())
        .filter(|&i| {
            calls[i].ret.is_some()
                || !(model.is_read_only(&calls[i].op.op, None)
                    || unobservable.get(i).copied().unwrap_or(false))
        })
        .collect();
    if kept.len() == calls.len() {
        return search_all(model, calls, config);
    }
    let subset: Vec<Call<'_, M>> = kept.iter().map(|&i| calls[i]).collect();
    let mut found = search_all(model, &subset, config);
    if let Found::Linearizable(order) = &mut found.result {
        for (i, _) in order.iter_mut() {
            *i = kept[*i];
        }
    }
    found
}

/// One step of the search path: the call linearized, the state before it, and where the
/// configuration it left stood (to resume there on backtracking).
struct Frame<S> {
    call: usize,
    before: S,
    resume: Cursor,
}

fn search_all<M: Model>(model: &M, calls: &[Call<'_, M>], config: &Config) -> Search<M::State> {
    let mut lists = Lists::new(calls);
    let mut linearized = Linearized::new(calls);
    let read_only: Vec<bool> = calls
        .iter()
        .map(|c| model.is_read_only(&c.op.op, c.output))
        .collect();
    let mut memo: Memo<M::State> = Memo::new();
    let mut path: Vec<Frame<M::State>> = Vec::new();
    let mut state = model.init();
    let mut steps = 0u64;
    let mut cursor = Cursor::Start;
    loop {
        if steps > config.max_steps {
            return Search {
                result: Found::Exhausted(Limit::Steps),
                steps,
            };
        }
        let candidate = match cursor {
            Cursor::Start => {
                // A read-only call that is valid now is a forced move: moving it earlier
                // in any valid order keeps the order valid (it changes no state, and it
                // may already go next), so this configuration is exactly as good as the
                // one after it and no alternative needs trying.
                let mut node = lists.main.next[0];
                let mut forced = None;
                while node != NIL && !lists.main_is_return[node] {
                    let i = lists.main_call[node];
                    if read_only[i] {
                        steps += 1;
                        if let Some(after) = model.step(&state, &calls[i].op.op, calls[i].output) {
                            forced = Some((i, after));
                            break;
                        }
                    }
                    node = lists.main.next[node];
                }
                if let Some((i, after)) = forced {
                    linearized.mark(i, true);
                    if memo.visit(&linearized.mandatory, &linearized.optional, &after) {
                        let before = std::mem::replace(&mut state, after);
                        path.push(Frame {
                            call: i,
                            before,
                            resume: Cursor::Exhausted,
                        });
                        lists.lift(i);
                    } else {
                        // Explored before (or being explored higher up): nothing new here.
                        linearized.mark(i, false);
                        cursor = Cursor::Exhausted;
                    }
                    continue;
                }
                if node == NIL {
                    // No mandatory call left; the optional ones may never have happened.
                    break;
                }
                // Mandatory calls first, then optional ones: a configuration without an
                // optional call is then explored before its supersets, which the memo skips.
                cursor = Cursor::Main(lists.main.next[0]);
                continue;
            }
            Cursor::Main(node) if !lists.main_is_return[node] => {
                let i = lists.main_call[node];
                if read_only[i] {
                    // Invalid here, or it would have been forced.
                    cursor = lists.advance(cursor);
                    continue;
                }
                i
            }
            Cursor::Main(node) => {
                let frontier = lists.main_pos[node];
                cursor = Cursor::Optional {
                    node: lists.optional.next[0],
                    frontier,
                };
                continue;
            }
            Cursor::Optional { node, frontier }
                if node != NIL && lists.optional_pos[node] < frontier =>
            {
                lists.optional_call[node]
            }
            Cursor::Optional { .. } | Cursor::Exhausted => {
                // Every candidate tried: backtrack.
                let Some(frame) = path.pop() else {
                    return Search {
                        result: Found::Violation,
                        steps,
                    };
                };
                state = frame.before;
                linearized.mark(frame.call, false);
                lists.unlift(frame.call);
                cursor = lists.advance(frame.resume);
                continue;
            }
        };
        steps += 1;
        let call = &calls[candidate];
        let fresh = model
            .step(&state, &call.op.op, call.output)
            .filter(|after| {
                // Right after optional calls, a candidate whose effect does not depend on
                // them gives a configuration dominated by applying it before them (same
                // mandatory set and state, fewer optional calls), which is a candidate there
                // too: skip it.
                !path
                    .iter()
                    .rev()
                    .take_while(|f| calls[f.call].ret.is_none())
                    .any(|f| {
                        model.step(&f.before, &call.op.op, call.output).as_ref() == Some(after)
                    })
            });
        let Some(after) = fresh else {
            cursor = lists.advance(cursor);
            continue;
        };
        linearized.mark(candidate, true);
        if !memo.visit(&linearized.mandatory, &linearized.optional, &after) {
            linearized.mark(candidate, false);
            cursor = lists.advance(cursor);
            continue;
        }
        if memo.bytes > config.max_memo_bytes {
            return Search {
                result: Found::Exhausted(Limit::Memory),
                steps,
            };
        }
        let before = std::mem::replace(&mut state, after);
        path.push(Frame {
            call: candidate,
            before,
            resume: cursor,
        });
        lists.lift(candidate);
        cursor = Cursor::Start;
    }
    // The path holds the order; the state after entry k is the state before entry k + 1.
    let mut afters: Vec<M::State> = path.iter().skip(1).map(|f| f.before.clone()).collect();
    afters.push(state);
    let witness = path
        .iter()
        .zip(afters)
        .map(|(f, after)| (f.call, after))
        .collect();
    Search {
        result: Found::Linearizable(witness),
        steps,
    }
}

/// The parts of a [`Violation`] found by the prefix search.
fn explain<M: Model>(
    model: &M,
    ops: &[&ModelOperation<M>],
    config: &Config,
) -> Option<Violation<M>> {
    let whole: Vec<Call<'_, M>> = ops.iter().map(|op| Call::whole(op)).collect();
    let order = event_order(&whole);
    // Positions (in event order) of the finite returns: the candidate cut points.
    let cuts: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(_, (i, is_return))| *is_return && whole[*i].ret.is_some())
        .map(|(pos, _)| pos)
        .collect();
    // The prefix that ends with the return at `order[cut]` (inclusive): calls invoked
    // before the cut; those returning after it are pending.
    let prefix = |cut: Option<usize>| -> Vec<Call<'_, M>> {
        let Some(cut) = cut else { return Vec::new() };
        let mut returned = vec![false; whole.len()];
        let mut invoked = vec![false; whole.len()];
        for &(i, is_return) in &order[..=cut] {
            if is_return {
                returned[i] = true;
            } else {
                invoked[i] = true;
            }
        }
        (0..whole.len())
            .filter(|&i| invoked[i])
            .map(|i| {
                if returned[i] {
                    Call::whole(ops[i])
                } else {
                    Call::pending(ops[i])
                }
            })
            .collect()
    };
    // Smallest k such that the prefix ending at cuts[k] is not linearizable. The whole
    // history failed, so k exists (k = cuts.len() - 1 at worst).
    let (mut lo, mut hi) = (0usize, cuts.len().checked_sub(1)?);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match search(model, &prefix(Some(cuts[mid])), config).result {
            Found::Violation => hi = mid,
            Found::Linearizable(_) => lo = mid + 1,
            Found::Exhausted(_) => return None,
        }
    }
    let failing = prefix(Some(cuts[lo]));
    let culprit = ops[order[cuts[lo]].0];
    // The witness: everything invoked before the culprit returned, except the culprit
    // itself (dropping a pending call keeps a prefix linearizable). A return always
    // follows its call, so `cuts[lo] >= 1`.
    let before: Vec<Call<'_, M>> = prefix(cuts[lo].checked_sub(1))
        .into_iter()
        .filter(|c| c.op.id != culprit.id)
        .collect();
    let witness = match search(model, &before, config).result {
        Found::Linearizable(order) => order
            .into_iter()
            .map(|(i, state_after)| LinearizedOp {
                op: before[i].op.clone(),
                pending: before[i].ret.is_none(),
                state_after,
            })
            .collect(),
        Found::Violation | Found::Exhausted(_) => Vec::new(),
    };
    let culprit_end = culprit.return_ns().unwrap_or(u64::MAX);
    let concurrent = ops
        .iter()
        .filter(|op| op.id != culprit.id)
        .filter(|op| {
            op.invoke_ns <= culprit_end && op.return_ns().is_none_or(|r| r >= culprit.invoke_ns)
        })
        .map(|op| (*op).clone())
        .collect();
    Some(Violation {
        partition: model.partition(&culprit.op),
        partition_ops: ops.len(),
        culprit: Some(culprit.clone()),
        prefix_ops: failing.len(),
        witness,
        concurrent,
    })
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
            return writeln!(f, "  (no explanation: the prefix search ran out of budget)");
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
