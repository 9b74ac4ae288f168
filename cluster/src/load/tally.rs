//! Counting what the load did, and the summary printed at the end.
//!
//! ```text
//!  arrival ─► shed(op) | sent(op)      answer ─► completed(op, error kind)
//!                         └──────────── Tally ─► summary(…) ─► Summary ─┬─ Display (text)
//!  latencies (hdrhistogram, in the shell) ─► OpSummary::latency ────────┘  └─ Serialize (JSON)
//! ```
//!
//! Every arrival is accounted for: it is shed (the in-flight limit was reached, so it was
//! not sent), or sent and then answered ok, answered with an error (by kind), or still
//! unfinished when the run stopped waiting. Nothing is dropped silently.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{ArrivalProcess, Op};

/// Counts per operation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    ops: [OpCounts; 2],
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct OpCounts {
    shed: u64,
    sent: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally::default()
    }

    /// An arrival not sent: too many requests in flight.
    pub fn shed(&mut self, op: Op) {
        self.ops[op.index()].shed += 1;
    }

    pub fn sent(&mut self, op: Op) {
        self.ops[op.index()].sent += 1;
    }

    /// A sent request ended: ok (`error` is `None`) or with this kind of error.
    pub fn completed(&mut self, op: Op, error: Option<&str>) {
        let counts = &mut self.ops[op.index()];
        match error {
            None => counts.ok += 1,
            Some(kind) => *counts.errors.entry(kind.to_owned()).or_default() += 1,
        }
    }

    /// Requests sent and not yet ended.
    pub fn in_flight(&self) -> u64 {
        self.ops
            .iter()
            .map(|c| c.sent - c.ok - c.errors.values().sum::<u64>())
            .sum()
    }

    /// The summary of the run, without latencies (the shell adds them).
    pub fn summary(&self, run: Run) -> Summary {
        let ops = Op::ALL
            .iter()
            .map(|&op| {
                let c = &self.ops[op.index()];
                let errors = c.errors.values().sum::<u64>();
                OpSummary {
                    op: op.name().to_owned(),
                    arrivals: c.sent + c.shed,
                    sent: c.sent,
                    shed: c.shed,
                    ok: c.ok,
                    errors,
                    error_kinds: c.errors.clone(),
                    unfinished: c.sent - c.ok - errors,
                    latency: None,
                }
            })
            .collect::<Vec<_>>();
        let total = |f: fn(&OpSummary) -> u64| ops.iter().map(f).sum();
        Summary {
            arrivals: total(|o| o.arrivals),
            sent: total(|o| o.sent),
            shed: total(|o| o.shed),
            run,
            ops,
            history: None,
        }
    }
}

/// How the run was set up and how long it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// The tag in the run's ids (`o-{run}-{n}`).
    pub run: String,
    pub seed: u64,
    pub targets: Vec<String>,
    /// Requests per second asked for.
    pub rate: f64,
    pub arrival_process: ArrivalProcess,
    /// Seconds from the first arrival to the stop.
    pub elapsed_s: f64,
}

/// What `faultline load` reports at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub run: Run,
    pub arrivals: u64,
    pub sent: u64,
    pub shed: u64,
    pub ops: Vec<OpSummary>,
    /// Where the history went, when one was kept.
    pub history: Option<HistoryFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpSummary {
    pub op: String,
    pub arrivals: u64,
    pub sent: u64,
    /// Not sent: the in-flight limit was reached.
    pub shed: u64,
    pub ok: u64,
    pub errors: u64,
    /// `timeout`, `connect`, `transport`, `503 kv_unavailable`, `404 not_found`, …
    pub error_kinds: BTreeMap<String, u64>,
    /// Still in flight when the run stopped waiting (recorded `info`).
    pub unfinished: u64,
    /// Of the ok answers; `None` when there were none.
    pub latency: Option<Latency>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryFile {
    pub path: String,
    pub operations: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run = &self.run;
        let per_second = if run.elapsed_s > 0.0 {
            self.sent as f64 / run.elapsed_s
        } else {
            0.0
        };
        let targets = match run.targets.as_slice() {
            [one] => one.clone(),
            many => format!("{} gateways", many.len()),
        };
        writeln!(
            f,
            "load {} (seed {}): {:.1}s at {}/s ({}) against {targets}",
            run.run,
            run.seed,
            run.elapsed_s,
            run.rate,
            match run.arrival_process {
                ArrivalProcess::Poisson => "poisson",
                ArrivalProcess::Uniform => "uniform",
            }
        )?;
        writeln!(
            f,
            "{} arrivals: {} sent ({per_second:.1}/s), {} shed (in-flight limit)",
            self.arrivals, self.sent, self.shed
        )?;
        writeln!(
            f,
            "{:<18} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
            "op", "sent", "ok", "errors", "shed", "p50 ms", "p99 ms"
        )?;
        for op in &self.ops {
            let (p50, p99) = match op.latency {
                Some(l) => (format!("{:.2}", l.p50_ms), format!("{:.2}", l.p99_ms)),
                None => ("-".to_owned(), "-".to_owned()),
            };
            writeln!(
                f,
                "{:<18} {:>8} {:>8} {:>8} {:>8} {p50:>10} {p99:>10}",
                op.op, op.sent, op.ok, op.errors, op.shed
            )?;
        }
        for op in &self.ops {
            let mut kinds: Vec<String> = op
                .error_kinds
                .iter()
                .map(|(kind, n)| format!("{kind} ×{n}"))
                .collect();
            if op.unfinished > 0 {
                kinds.push(format!("unfinished at stop ×{}", op.unfinished));
            }
            if !kinds.is_empty() {
                writeln!(f, "  {} errors: {}", op.op, kinds.join(", "))?;
            }
        }
        if let Some(h) = &self.history {
            writeln!(
                f,
                "history: {} operations ({} ok, {} fail, {} info) in {}",
                h.operations, h.ok, h.fail, h.info, h.path
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            run: "3f9a1c2b".into(),
            seed: 42,
            targets: vec!["127.0.0.1:8080".into()],
            rate: 20.0,
            arrival_process: ArrivalProcess::Poisson,
            elapsed_s: 2.0,
        }
    }

    #[test]
    fn every_arrival_is_accounted_for() {
        let mut t = Tally::new();
        for _ in 0..3 {
            t.sent(Op::CreateOrder);
        }
        t.shed(Op::CreateOrder);
        t.completed(Op::CreateOrder, None);
        t.completed(Op::CreateOrder, Some("503 kv_unavailable"));
        t.sent(Op::ReadOrder);
        t.completed(Op::ReadOrder, Some("404 not_found"));
        assert_eq!(t.in_flight(), 1);
        let s = t.summary(run());
        assert_eq!((s.arrivals, s.sent, s.shed), (5, 4, 1));
        let post = &s.ops[0];
        assert_eq!(post.op, "POST /orders");
        assert_eq!(
            (
                post.arrivals,
                post.sent,
                post.shed,
                post.ok,
                post.errors,
                post.unfinished
            ),
            (4, 3, 1, 1, 1, 1)
        );
        assert_eq!(post.error_kinds["503 kv_unavailable"], 1);
        assert_eq!(s.ops[1].error_kinds["404 not_found"], 1);
    }

    #[test]
    fn text_and_json_summaries() {
        let mut t = Tally::new();
        t.sent(Op::CreateOrder);
        t.completed(Op::CreateOrder, None);
        t.sent(Op::ReadOrder);
        t.completed(Op::ReadOrder, Some("timeout"));
        t.sent(Op::ReadOrder);
        t.shed(Op::ReadOrder);
        let mut s = t.summary(run());
        s.ops[0].latency = Some(Latency {
            p50_ms: 1.25,
            p99_ms: 9.5,
            max_ms: 12.0,
        });
        s.history = Some(HistoryFile {
            path: "h.jsonl".into(),
            operations: 3,
            ok: 1,
            fail: 1,
            info: 1,
        });
        let text = s.to_string();
        for expected in [
            "load 3f9a1c2b (seed 42): 2.0s at 20/s (poisson) against 127.0.0.1:8080",
            "4 arrivals: 3 sent (1.5/s), 1 shed",
            "POST /orders              1        1        0        0       1.25       9.50",
            "GET /orders/{id}          2        0        1        1          -          -",
            "  GET /orders/{id} errors: timeout ×1, unfinished at stop ×1",
            "history: 3 operations (1 ok, 1 fail, 1 info) in h.jsonl",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in\n{text}");
        }
        assert!(!text.contains("POST /orders errors"), "{text}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["run"], "3f9a1c2b");
        assert_eq!(json["arrival_process"], "poisson");
        assert_eq!(json["shed"], 1);
        assert_eq!(json["ops"][1]["error_kinds"]["timeout"], 1);
        assert_eq!(json["ops"][0]["latency"]["p99_ms"], 9.5);
        assert_eq!(json["history"]["operations"], 3);
    }
}
