//! The critical path of a trace: the chain of spans that sets its end-to-end time.
//!
//! ```text
//!  App::waterfall() (depth-first rows) ──► critical_path ──► row indices, root first
//!                                                              └─► ui/traces.rs marks them
//! ```
//!
//! From the root, repeatedly step into the child that ends last: that child is what
//! its parent (and so the whole trace) waited for longest. This is the simple chain
//! form of Jaeger's critical-path view; the analyzers' `critical-path` detector walks
//! the full path (gaps and earlier children too) to share time out per service, which
//! the waterfall does not need: it only shows which spans the latency hangs on.

use faultline_model::Span;

/// Indices into `rows` (waterfall order: depth-first, each span followed by its
/// subtree) of the critical path, root first. Empty when `rows` is.
///
/// The root is the first span without a parent (the trace's real root); when every
/// span has a parent that is not held, the first row. Among children that end at the
/// same time the one shown first wins, so the path is stable from frame to frame.
pub fn critical_path(rows: &[(usize, &Span)]) -> Vec<usize> {
    if rows.is_empty() {
        return Vec::new();
    }
    let root = rows
        .iter()
        .position(|(depth, span)| *depth == 0 && span.parent_span_id.is_none())
        .unwrap_or(0);
    let mut path = vec![root];
    let mut current = root;
    loop {
        let depth = rows[current].0;
        let mut last: Option<usize> = None;
        // The subtree of `current` is the rows after it, until one is no deeper.
        for (index, (child_depth, child)) in rows.iter().enumerate().skip(current + 1) {
            if *child_depth <= depth {
                break;
            }
            if *child_depth == depth + 1
                && last.is_none_or(|best| child.end_ns > rows[best].1.end_ns)
            {
                last = Some(index);
            }
        }
        match last {
            Some(next) => {
                path.push(next);
                current = next;
            }
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use faultline_model::{SpanId, TraceId};

    use super::*;

    fn span(id: u8, parent: Option<u8>, start: u64, end: u64) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([id; 8]), format!("op{id}"));
        span.parent_span_id = parent.map(|p| SpanId([p; 8]));
        span.start_ns = start;
        span.end_ns = end;
        span
    }

    fn path_of(spans: &[Span]) -> Vec<u8> {
        let rows = crate::app::waterfall(spans.iter().collect());
        critical_path(&rows)
            .into_iter()
            .map(|i| rows[i].1.span_id.0[0])
            .collect()
    }

    #[test]
    fn follows_the_child_that_ends_last_at_every_level() {
        // 1 ─┬─ 2 (ends 50) ── 4 (ends 45)
        //    └─ 3 (ends 90) ─┬─ 5 (ends 60)
        //                    └─ 6 (ends 85) ── 7 (ends 80)
        let spans = [
            span(1, None, 0, 100),
            span(2, Some(1), 5, 50),
            span(4, Some(2), 10, 45),
            span(3, Some(1), 55, 90),
            span(5, Some(3), 56, 60),
            span(6, Some(3), 61, 85),
            span(7, Some(6), 62, 80),
        ];
        assert_eq!(path_of(&spans), [1, 3, 6, 7]);
    }

    #[test]
    fn a_long_early_child_loses_to_a_short_late_one() {
        // The long child starts first but the late one is what the root waited for.
        let spans = [
            span(1, None, 0, 100),
            span(2, Some(1), 1, 70),
            span(3, Some(1), 80, 99),
        ];
        assert_eq!(path_of(&spans), [1, 3]);
    }

    #[test]
    fn the_real_root_is_preferred_over_orphans() {
        // 9's parent was never received: it is shown at depth 0, before the root.
        let spans = [
            span(9, Some(8), 0, 500),
            span(1, None, 10, 100),
            span(2, Some(1), 20, 90),
        ];
        assert_eq!(path_of(&spans), [1, 2]);
    }

    #[test]
    fn odd_data_gives_a_path_and_no_panic() {
        assert!(critical_path(&[]).is_empty());
        // Only orphans: the first row is the root.
        assert_eq!(
            path_of(&[span(3, Some(7), 5, 6), span(4, Some(7), 1, 2)]),
            [4]
        );
        // Ends before starts, zero durations, equal ends (the first shown wins).
        let spans = [
            span(1, None, 100, 50),
            span(2, Some(1), 60, 60),
            span(3, Some(1), 70, 60),
        ];
        assert_eq!(path_of(&spans), [1, 2]);
        // A cycle without a root is still a path of one.
        assert_eq!(
            path_of(&[span(1, Some(2), 0, 1), span(2, Some(1), 0, 1)]),
            [1]
        );
    }
}
