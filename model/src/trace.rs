//! Trace assembly: spans grouped by trace id and linked into parent/child trees.
//!
//! ```text
//!  spans ─► group by trace id ─► drop identical duplicates ─► resolve parents ─► Trace
//!                                 (counted)                    orphans kept and flagged,
//!                                                              shared client/server ids nested,
//!                                                              cycles broken and flagged
//! ```
//!
//! Real captures are messy, and assembly never loses a span over it:
//! - **Orphans** (parent not in the capture: sampled out, lost, or still in flight)
//!   become roots of their own subtree and are flagged.
//! - **Duplicate span ids**: an exact repeat (the same span exported twice, as in
//!   Jaeger's `otlp2jaeger` fixture) is dropped and counted. A client and a server span
//!   sharing one id is Zipkin's "shared span" convention: the server is nested under
//!   the client, and children of that id hang under the server. Any other clash keeps
//!   every span and is flagged; children attach to the first.
//! - **Cycles** (A's parent is B, B's parent is A) are broken at the earliest span, which
//!   becomes a root, so walking a tree always ends.
//! - **Children outside their parent's time** are flagged: a sign of clock skew between
//!   hosts, or of asynchronous work that outlives its caller.
//!
//! The algorithm runs on [`SpanKey`]s — the few fields of a span it needs — so that
//! `faultline inspect` can check a capture far larger than memory would hold as spans.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::span::{Span, SpanId, SpanKind, TraceId};

/// What assembly needs to know of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanKey {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    /// A hash of the span's content: equal fingerprints and ids mean an exact repeat.
    pub fingerprint: u64,
}

impl SpanKey {
    pub fn of(span: &Span) -> Self {
        let mut h = DefaultHasher::new();
        span.name.hash(&mut h);
        span.service_name().hash(&mut h);
        span.parent_span_id.hash(&mut h);
        (span.kind as u8).hash(&mut h);
        span.start_ns.hash(&mut h);
        span.end_ns.hash(&mut h);
        span.attributes.len().hash(&mut h);
        span.events.len().hash(&mut h);
        SpanKey {
            trace_id: span.trace_id,
            span_id: span.span_id,
            parent: span.parent_span_id,
            kind: span.kind,
            start_ns: span.start_ns,
            end_ns: span.end_ns,
            fingerprint: h.finish(),
        }
    }
}

/// Something structurally wrong (or unusual) in a trace. Indices are into the trace's
/// span list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceProblem {
    /// The span names a parent that is not in the capture.
    Orphan { span: usize, missing_parent: SpanId },
    /// Several different spans share one id (and are not a client/server pair).
    DuplicateSpanId { span_id: SpanId, spans: Vec<usize> },
    /// Exact repeats of a span were dropped.
    RepeatedSpan { span_id: SpanId, dropped: usize },
    /// The span starts before or ends after its parent.
    ChildOutsideParent {
        span: usize,
        parent: usize,
        early_ns: u64,
        late_ns: u64,
    },
    /// Following parents from this span comes back to it; the link was cut here.
    Cycle { span: usize },
}

/// The tree of one trace, as indices into its span list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Structure {
    /// Resolved parent of each span (`None` for roots and orphans).
    pub parent: Vec<Option<usize>>,
    /// Children of each span, by start time.
    pub children: Vec<Vec<usize>>,
    /// Spans without a resolved parent: true roots first, then orphans, each by start time.
    pub roots: Vec<usize>,
    pub problems: Vec<TraceProblem>,
}

impl Structure {
    pub fn orphans(&self) -> impl Iterator<Item = (usize, SpanId)> + '_ {
        self.problems.iter().filter_map(|p| match p {
            TraceProblem::Orphan {
                span,
                missing_parent,
            } => Some((*span, *missing_parent)),
            _ => None,
        })
    }

    /// Depth of each span below its root (roots are 0).
    pub fn depths(&self) -> Vec<usize> {
        let mut depth = vec![0; self.parent.len()];
        let mut stack: Vec<usize> = self.roots.clone();
        while let Some(i) = stack.pop() {
            for &c in &self.children[i] {
                depth[c] = depth[i] + 1;
                stack.push(c);
            }
        }
        depth
    }
}

/// A trace: its spans (exact repeats removed) and their tree.
#[derive(Debug, Clone)]
pub struct Trace {
    pub trace_id: TraceId,
    pub spans: Vec<Span>,
    pub structure: Structure,
}

impl Trace {
    /// The trace's first true root, else its earliest orphan.
    pub fn root(&self) -> Option<&Span> {
        self.structure.roots.first().map(|&i| &self.spans[i])
    }

    pub fn start_ns(&self) -> u64 {
        self.spans.iter().map(|s| s.start_ns).min().unwrap_or(0)
    }

    pub fn end_ns(&self) -> u64 {
        self.spans.iter().map(|s| s.end_ns).max().unwrap_or(0)
    }
}

/// Groups spans into traces (in order of each trace's first span) and assembles each.
pub fn assemble(spans: impl IntoIterator<Item = Span>) -> Vec<Trace> {
    let mut order: Vec<TraceId> = Vec::new();
    let mut by_trace: HashMap<TraceId, Vec<Span>> = HashMap::new();
    for span in spans {
        by_trace
            .entry(span.trace_id)
            .or_insert_with(|| {
                order.push(span.trace_id);
                Vec::new()
            })
            .push(span);
    }
    order
        .into_iter()
        .filter_map(|id| by_trace.remove(&id).map(|spans| assemble_one(id, spans)))
        .collect()
}

/// Assembles the spans of one trace (all with trace id `trace_id`).
pub fn assemble_one(trace_id: TraceId, spans: Vec<Span>) -> Trace {
    let keys: Vec<SpanKey> = spans.iter().map(SpanKey::of).collect();
    let (kept, repeats) = drop_repeats(&keys);
    let spans: Vec<Span> = if kept.len() == spans.len() {
        spans
    } else {
        let mut keep = vec![false; spans.len()];
        kept.iter().for_each(|&i| keep[i] = true);
        spans
            .into_iter()
            .zip(keep)
            .filter_map(|(s, k)| k.then_some(s))
            .collect()
    };
    let kept_keys: Vec<SpanKey> = kept.iter().map(|&i| keys[i]).collect();
    let mut structure = structure(&kept_keys);
    structure.problems.extend(repeats);
    Trace {
        trace_id,
        spans,
        structure,
    }
}

/// Indices of the spans to keep, and the exact repeats that were left out.
pub fn drop_repeats(keys: &[SpanKey]) -> (Vec<usize>, Vec<TraceProblem>) {
    let mut seen: HashMap<(SpanId, u64), usize> = HashMap::with_capacity(keys.len());
    let mut kept = Vec::with_capacity(keys.len());
    let mut dropped: Vec<(SpanId, usize)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        match seen.entry((key.span_id, key.fingerprint)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
                kept.push(i);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                match dropped.iter_mut().find(|(id, _)| *id == key.span_id) {
                    Some((_, n)) => *n += 1,
                    None => dropped.push((key.span_id, 1)),
                }
            }
        }
    }
    let problems = dropped
        .into_iter()
        .map(|(span_id, dropped)| TraceProblem::RepeatedSpan { span_id, dropped })
        .collect();
    (kept, problems)
}

/// Builds the tree of one trace's spans (no exact repeats; see [`drop_repeats`]).
pub fn structure(keys: &[SpanKey]) -> Structure {
    let n = keys.len();
    let mut problems = Vec::new();
    let mut by_id: HashMap<SpanId, Vec<usize>> = HashMap::with_capacity(n);
    for (i, key) in keys.iter().enumerate() {
        by_id.entry(key.span_id).or_default().push(i);
    }

    // Which span children of an id attach to, and parents forced by shared ids.
    let mut owner: HashMap<SpanId, usize> = HashMap::with_capacity(by_id.len());
    let mut forced_parent: HashMap<usize, usize> = HashMap::new();
    let mut clashes: Vec<(SpanId, Vec<usize>)> = Vec::new();
    for (&id, idx) in &by_id {
        if let [only] = idx[..] {
            owner.insert(id, only);
            continue;
        }
        let client = idx
            .iter()
            .copied()
            .find(|&i| keys[i].kind == SpanKind::Client);
        let server = idx
            .iter()
            .copied()
            .find(|&i| keys[i].kind == SpanKind::Server);
        match (client, server, idx.len()) {
            (Some(c), Some(s), 2) => {
                forced_parent.insert(s, c);
                owner.insert(id, s);
            }
            _ => {
                owner.insert(id, idx[0]);
                clashes.push((id, idx.clone()));
            }
        }
    }
    clashes.sort_by_key(|(_, idx)| idx[0]);
    problems.extend(
        clashes
            .into_iter()
            .map(|(span_id, spans)| TraceProblem::DuplicateSpanId { span_id, spans }),
    );

    let mut parent: Vec<Option<usize>> = vec![None; n];
    for (i, key) in keys.iter().enumerate() {
        if let Some(&p) = forced_parent.get(&i) {
            parent[i] = Some(p);
            continue;
        }
        let Some(pid) = key.parent else { continue };
        match owner.get(&pid) {
            Some(&p) if p != i => parent[i] = Some(p),
            Some(_) => problems.push(TraceProblem::Cycle { span: i }),
            None => problems.push(TraceProblem::Orphan {
                span: i,
                missing_parent: pid,
            }),
        }
    }

    break_cycles(&mut parent, keys, &mut problems);

    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for i in 0..n {
        match parent[i] {
            Some(p) => {
                children[p].push(i);
                let (child, par) = (&keys[i], &keys[p]);
                let early_ns = par.start_ns.saturating_sub(child.start_ns);
                let late_ns = child.end_ns.saturating_sub(par.end_ns);
                if early_ns > 0 || late_ns > 0 {
                    problems.push(TraceProblem::ChildOutsideParent {
                        span: i,
                        parent: p,
                        early_ns,
                        late_ns,
                    });
                }
            }
            None => roots.push(i),
        }
    }
    for list in &mut children {
        list.sort_by_key(|&c| (keys[c].start_ns, c));
    }
    // True roots (no parent named) before orphans, each by start time.
    roots.sort_by_key(|&r| (keys[r].parent.is_some(), keys[r].start_ns, r));
    Structure {
        parent,
        children,
        roots,
        problems,
    }
}

/// Cuts every parent cycle at its earliest-starting span.
fn break_cycles(parent: &mut [Option<usize>], keys: &[SpanKey], problems: &mut Vec<TraceProblem>) {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; parent.len()];
    for start in 0..parent.len() {
        let mut path = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            match state[i] {
                2 => break,
                1 => {
                    // `i` is on the current path: the cycle is path[pos..].
                    let pos = path.iter().position(|&p| p == i).unwrap_or(0);
                    let cut = path[pos..]
                        .iter()
                        .copied()
                        .min_by_key(|&c: &usize| (keys[c].start_ns, c))
                        .unwrap_or(i);
                    parent[cut] = None;
                    problems.push(TraceProblem::Cycle { span: cut });
                    break;
                }
                _ => {
                    state[i] = 1;
                    path.push(i);
                    at = parent[i];
                }
            }
        }
        for p in path {
            state[p] = 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8, parent: Option<u8>, kind: SpanKind, start: u64, end: u64) -> SpanKey {
        SpanKey {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent: parent.map(|p| SpanId([p; 8])),
            kind,
            start_ns: start,
            end_ns: end,
            fingerprint: u64::from(id) * 1000 + start,
        }
    }

    #[test]
    fn builds_a_tree_with_children_in_time_order() {
        let keys = [
            key(3, Some(1), SpanKind::Client, 50, 60),
            key(1, None, SpanKind::Server, 0, 100),
            key(2, Some(1), SpanKind::Client, 10, 20),
        ];
        let s = structure(&keys);
        assert_eq!(s.roots, vec![1]);
        assert_eq!(s.children[1], vec![2, 0]);
        assert_eq!(s.parent, vec![Some(1), None, Some(1)]);
        assert_eq!(s.depths(), vec![1, 0, 1]);
        assert!(s.problems.is_empty());
    }

    #[test]
    fn orphans_are_kept_as_flagged_roots_after_true_roots() {
        let keys = [
            key(2, Some(9), SpanKind::Server, 0, 10),
            key(1, None, SpanKind::Server, 5, 50),
        ];
        let s = structure(&keys);
        assert_eq!(
            s.roots,
            vec![1, 0],
            "true root first, even though the orphan starts earlier"
        );
        assert_eq!(s.orphans().collect::<Vec<_>>(), vec![(0, SpanId([9; 8]))]);
    }

    #[test]
    fn shared_client_server_ids_nest_server_under_client() {
        // Zipkin: the server reuses the client's id; the server's child names that id.
        let keys = [
            key(1, None, SpanKind::Server, 0, 100),
            key(2, Some(1), SpanKind::Client, 10, 90),
            key(2, Some(1), SpanKind::Server, 20, 80),
            key(3, Some(2), SpanKind::Client, 30, 40),
        ];
        let s = structure(&keys);
        assert_eq!(s.parent, vec![None, Some(0), Some(1), Some(2)]);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
    }

    #[test]
    fn other_id_clashes_keep_both_and_are_flagged() {
        let keys = [
            key(1, None, SpanKind::Server, 0, 100),
            key(2, Some(1), SpanKind::Internal, 10, 20),
            key(2, Some(1), SpanKind::Internal, 30, 40),
        ];
        let s = structure(&keys);
        assert_eq!(s.parent, vec![None, Some(0), Some(0)]);
        assert_eq!(
            s.problems,
            vec![TraceProblem::DuplicateSpanId {
                span_id: SpanId([2; 8]),
                spans: vec![1, 2]
            }]
        );
    }

    #[test]
    fn exact_repeats_are_dropped_and_counted() {
        let a = key(1, None, SpanKind::Server, 0, 100);
        let b = key(2, Some(1), SpanKind::Client, 10, 20);
        let (kept, problems) = drop_repeats(&[a, b, a, a]);
        assert_eq!(kept, vec![0, 1]);
        assert_eq!(
            problems,
            vec![TraceProblem::RepeatedSpan {
                span_id: SpanId([1; 8]),
                dropped: 2
            }]
        );
    }

    #[test]
    fn cycles_are_cut_at_the_earliest_span() {
        let keys = [
            key(1, Some(2), SpanKind::Internal, 5, 10),
            key(2, Some(1), SpanKind::Internal, 1, 10),
        ];
        let s = structure(&keys);
        assert_eq!(s.roots, vec![1]);
        assert_eq!(s.parent, vec![Some(1), None]);
        assert!(s.problems.contains(&TraceProblem::Cycle { span: 1 }));
        let self_parent = structure(&[key(1, Some(1), SpanKind::Internal, 0, 1)]);
        assert_eq!(self_parent.roots, vec![0]);
        assert_eq!(self_parent.problems, vec![TraceProblem::Cycle { span: 0 }]);
    }

    #[test]
    fn children_outside_parent_time_are_flagged_with_amounts() {
        let keys = [
            key(1, None, SpanKind::Server, 100, 200),
            key(2, Some(1), SpanKind::Client, 90, 230),
        ];
        let s = structure(&keys);
        assert_eq!(
            s.problems,
            vec![TraceProblem::ChildOutsideParent {
                span: 1,
                parent: 0,
                early_ns: 10,
                late_ns: 30
            }]
        );
    }

    #[test]
    fn assemble_groups_by_trace_in_first_seen_order() {
        let t1 = TraceId([1; 16]);
        let t2 = TraceId([2; 16]);
        let mk = |t, s: u8, p: Option<u8>| {
            let mut span = Span::new(t, SpanId([s; 8]), format!("op{s}"));
            span.parent_span_id = p.map(|p| SpanId([p; 8]));
            span
        };
        let traces = assemble(vec![
            mk(t2, 1, None),
            mk(t1, 1, None),
            mk(t2, 2, Some(1)),
            mk(t2, 2, Some(1)),
        ]);
        assert_eq!(
            traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(),
            vec![t2, t1]
        );
        assert_eq!(traces[0].spans.len(), 2, "the exact repeat is dropped");
        assert_eq!(traces[0].root().map(|s| s.name.as_str()), Some("op1"));
        assert_eq!(traces[0].structure.children[0], vec![1]);
    }
}
