//! The search engine behind [`check_with`](super::check_with): Wing & Gong's search with
//! Lowe's memoization, over one partition, plus the prefix search that explains a
//! violation. The rules it adds to Porcupine's are described in the parent module.
//!
//! ```text
//!  calls ──► Lists (main: mandatory calls + returns, by time; optional: unknown outcomes)
//!                │
//!                ▼
//!  search_all: configuration = (linearized set, state) ──► candidates ──► model.step
//!      ▲   forced reads · mandatory first · useful optional calls (order_optional)   │
//!      └──── backtrack ◄── Memo (dominance) ◄── reordering rule ◄────────────────────┘
//! ```

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use super::{Config, Limit, LinearizedOp, Model, ModelOperation, Violation};

/// One operation as the search sees it.
pub(super) struct Call<'h, M: Model> {
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
    pub(super) fn whole(op: &'h ModelOperation<M>) -> Self {
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

pub(super) enum Found<S> {
    /// A witness: (call index, state after), in linearization order.
    Linearizable(Vec<(usize, S)>),
    Violation,
    Exhausted(Limit),
}

pub(super) struct Search<S> {
    pub(super) result: Found<S>,
    pub(super) steps: u64,
    /// The op id of the mandatory call whose return was the furthest any configuration
    /// got to: no order the search tried passed it.
    pub(super) furthest: Option<usize>,
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
            Cursor::Optional(i) => Cursor::Optional(i + 1),
            Cursor::Start | Cursor::Exhausted => Cursor::Exhausted,
        }
    }
}

/// Where a configuration stands in trying its candidates: first the mandatory calls
/// ahead of the first pending return in the main list (walked lazily: on the way to a
/// valid order most configurations try one candidate), then the optional calls invoked
/// before that return, in the order [`order_optional`] gives.
#[derive(Clone, Copy)]
enum Cursor {
    /// Just entered: look for a forced move first.
    Start,
    Main(usize),
    /// An index into the configuration's ordered optional candidates.
    Optional(usize),
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
        // The multiply leaves the low bits weak, and hashbrown indexes buckets with them:
        // mix everything down (SplitMix64's finalizer).
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
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
pub(super) fn search<M: Model>(
    model: &M,
    calls: &[Call<'_, M>],
    config: &Config,
) -> Search<M::State> {
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
    /// The configuration's ordered optional candidates, once it got to them.
    optional: Vec<usize>,
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
    let mut facts = OptionalFacts::new(model, calls, &mut steps);
    // (event position, op id) of the furthest pending return reached.
    let mut reach: Option<(usize, usize)> = None;
    let mut cursor = Cursor::Start;
    let furthest = |reach: Option<(usize, usize)>| reach.map(|(_, id)| id);
    // The current configuration's ordered optional candidates (see `Cursor::Optional`).
    let mut optional: Vec<usize> = Vec::new();
    loop {
        if steps > config.max_steps {
            return Search {
                result: Found::Exhausted(Limit::Steps),
                steps,
                furthest: furthest(reach),
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
                            optional: Vec::new(),
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
                if reach.is_none_or(|(pos, _)| lists.main_pos[node] > pos) {
                    reach = Some((lists.main_pos[node], calls[lists.main_call[node]].op.id));
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
                optional =
                    order_optional(model, calls, &lists, &mut facts, node, &state, &mut steps);
                cursor = Cursor::Optional(0);
                continue;
            }
            Cursor::Optional(i) if i < optional.len() => optional[i],
            Cursor::Optional(_) | Cursor::Exhausted => {
                // Every candidate tried: backtrack.
                let Some(frame) = path.pop() else {
                    return Search {
                        result: Found::Violation,
                        steps,
                        furthest: furthest(reach),
                    };
                };
                state = frame.before;
                optional = frame.optional;
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
                furthest: furthest(reach),
            };
        }
        let before = std::mem::replace(&mut state, after);
        path.push(Frame {
            call: candidate,
            before,
            resume: cursor,
            optional: std::mem::take(&mut optional),
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
        furthest: furthest(reach),
    }
}

/// The optional calls worth trying from a configuration `K` whose main walk stopped at
/// the return node `frontier` (every mandatory candidate is invalid or explored), in the
/// order to try them.
///
/// After an optional call `X`, the only candidates the search pursues are those whose
/// result differs from what they would give right now (the reordering rule), so `X` is
/// worth trying only if it
/// - *enables* a mandatory candidate that is invalid now — tried first: usually the
///   timed-out write a read observed; or
/// - changes the result of some non-blind candidate (see [`Model::is_blind`]: a blind
///   call gives the same result from every state, so `X` cannot matter to it).
///
/// Every other optional call leads to a configuration with nothing to try, so it is
/// skipped; with only blind writes pending, that removes all but the enablers. Without
/// this, a history with hundreds of timed-out writes tries each of them wherever the
/// search backtracks.
fn order_optional<M: Model>(
    model: &M,
    calls: &[Call<'_, M>],
    lists: &Lists,
    facts: &mut OptionalFacts<M::State>,
    frontier: usize,
    state: &M::State,
    steps: &mut u64,
) -> Vec<usize> {
    let step = |c: usize, from: &M::State, steps: &mut u64| {
        *steps += 1;
        model.step(from, &calls[c].op.op, calls[c].output)
    };
    // Mandatory candidates: the blocked ones, and the valid non-blind ones with their
    // result now.
    let (mut blocked, mut non_blind) = (Vec::new(), Vec::new());
    let mut node = lists.main.next[0];
    while node != frontier && node != NIL {
        let c = lists.main_call[node];
        match step(c, state, steps) {
            None => blocked.push(c),
            Some(now) if !facts.blind[c] => non_blind.push((c, now)),
            Some(_) => {}
        }
        node = lists.main.next[node];
    }
    facts.phase += 1;
    let frontier_pos = lists.main_pos[frontier];
    let (mut optional, mut optional_non_blind) = (Vec::new(), Vec::new());
    let mut node = lists.optional.next[0];
    while node != NIL && lists.optional_pos[node] < frontier_pos {
        let c = lists.optional_call[node];
        optional.push(c);
        facts.present[c] = facts.phase;
        if !facts.blind[c] {
            optional_non_blind.push(c);
        }
        node = lists.optional.next[node];
    }
    let (mut enabling, mut other) = (Vec::new(), Vec::new());
    for &x in &optional {
        let after = match &facts.after[x] {
            Some(after) => after.clone(),
            None => match step(x, state, steps) {
                Some(after) => after,
                None => continue,
            },
        };
        if after == *state {
            // A no-op here: dominated by this configuration itself.
            continue;
        }
        if blocked.iter().any(|&b| step(b, &after, steps).is_some()) {
            enabling.push(x);
            continue;
        }
        // Does `x` change what some non-blind candidate would do? (An optional one that
        // leaves `after` unchanged is dominated by the configuration right after `x`.)
        let changes = |c: usize, now: Option<&M::State>, steps: &mut u64| {
            step(c, &after, steps).is_some_and(|then| {
                !(calls[c].ret.is_none() && then == after) && now != Some(&then)
            })
        };
        let changes_optional = |c: usize, steps: &mut u64| {
            let now = step(c, state, steps);
            changes(c, now.as_ref(), steps)
        };
        let live = non_blind
            .iter()
            .any(|(c, now)| changes(*c, Some(now), steps))
            || if facts.blind[x] {
                // Precomputed: the optional calls that change the state `x` leaves.
                facts.observers[x]
                    .iter()
                    .filter(|&&c| facts.present[c] == facts.phase)
                    .any(|&c| changes_optional(c, steps))
            } else {
                optional_non_blind
                    .iter()
                    .filter(|&&c| c != x)
                    .any(|&c| changes_optional(c, steps))
            };
        if live {
            other.push(x);
        }
    }
    enabling.extend(other);
    enabling
}

/// What [`order_optional`] precomputes once per search: for each blind optional call,
/// the state it leaves (the same from every state) and the non-blind optional calls that
/// change that state — the only optional calls that could observe it.
struct OptionalFacts<S> {
    blind: Vec<bool>,
    after: Vec<Option<S>>,
    observers: Vec<Vec<usize>>,
    /// `present[c] == phase`: `c` is an optional candidate in the current phase.
    present: Vec<u64>,
    phase: u64,
}

impl<S: Clone + Eq> OptionalFacts<S> {
    fn new<M: Model<State = S>>(model: &M, calls: &[Call<'_, M>], steps: &mut u64) -> Self {
        let init = model.init();
        let blind: Vec<bool> = calls
            .iter()
            .map(|c| model.is_blind(&c.op.op, c.output))
            .collect();
        let optional = |c: usize| calls[c].ret.is_none();
        let after: Vec<Option<S>> = (0..calls.len())
            .map(|c| {
                (blind[c] && optional(c)).then(|| {
                    *steps += 1;
                    model.step(&init, &calls[c].op.op, calls[c].output)
                })?
            })
            .collect();
        let watchers: Vec<usize> = (0..calls.len())
            .filter(|&c| optional(c) && !blind[c])
            .collect();
        let observers = after
            .iter()
            .map(|after| {
                let Some(after) = after else {
                    return Vec::new();
                };
                watchers
                    .iter()
                    .copied()
                    .filter(|&c| {
                        *steps += 1;
                        model
                            .step(after, &calls[c].op.op, calls[c].output)
                            .is_some_and(|then| then != *after)
                    })
                    .collect()
            })
            .collect();
        Self {
            blind,
            after,
            observers,
            present: vec![0; calls.len()],
            phase: 0,
        }
    }
}

/// The parts of a [`Violation`] found by the prefix search.
pub(super) fn explain<M: Model>(
    model: &M,
    ops: &[&ModelOperation<M>],
    furthest: Option<usize>,
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
    // The explanation may cost at most four searches' budget in all.
    let mut left = config.max_steps.saturating_mul(4);
    let mut bounded = |calls: &[Call<'_, M>]| {
        let limits = Config {
            max_steps: left.min(config.max_steps),
            ..config.clone()
        };
        let found = search(model, calls, &limits);
        left = left.saturating_sub(found.steps);
        found.result
    };
    // Smallest k such that the prefix ending at cuts[k] is not linearizable. The whole
    // history failed, so k exists (k = cuts.len() - 1 at worst).
    let (mut lo, mut hi) = (0usize, cuts.len().checked_sub(1)?);
    // The whole search got no further than `furthest`'s return: try the prefix ending
    // there first. If the violation is early in a long history, every later probe is then
    // short (failing probes are exhaustive searches, the expensive kind).
    let stuck = furthest.and_then(|id| cuts.iter().position(|&pos| ops[order[pos].0].id == id));
    if let Some(k) = stuck.filter(|&k| k < hi) {
        match bounded(&prefix(Some(cuts[k]))) {
            Found::Violation => hi = k,
            Found::Linearizable(_) => lo = k + 1,
            Found::Exhausted(_) => return None,
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match bounded(&prefix(Some(cuts[mid]))) {
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
    let witness = match bounded(&before) {
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
        stuck_at: None,
        witness,
        concurrent,
    })
}
