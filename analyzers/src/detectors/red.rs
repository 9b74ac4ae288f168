//! RED (rate, errors, duration) per service and per call edge, with onset detection
//! against a baseline.
//!
//! ```text
//!  incoming spans per service ─┐                 ┌─► LatencyRise (p99 vs baseline p99)
//!  calls per edge (calls.rs) ──┴─► per window ───┤
//!        (polars group-by: count, errors, p50, p99) └─► ErrorRise (rate vs baseline rate)
//! ```
//!
//! **Symptom**: a service or a call edge got slower or started failing.
//! **Rule**: the first windows of the capture (`baseline_share`) are the baseline; a
//! window is abnormal when its p99 exceeds both `latency_factor` × the baseline p99
//! and the baseline plus `latency_min_rise_ms`, or when its error rate exceeds the
//! baseline's by `error_rate_rise`; windows with fewer than `min_calls` calls are not
//! judged. The onset is the first abnormal window followed by another within two
//! windows (a rise that sticks, not a blip). This is the shape of multi-window SLO
//! burn alerts (Google SRE workbook, ch. 5) with the baseline standing in for the SLO.
//! Two abnormal windows make a warning; a p99 four times the baseline or an error rate
//! of 20 % over three windows is critical.

use std::collections::HashMap;

use polars::prelude::{DataFrame, IntoLazy, PolarsResult, QuantileMethod, col, len, lit};

use crate::detector::{Context, Detector, onset};
use crate::finding::{Figure, Finding, FindingKind, Severity, Subject, Window};
use crate::index::is_incoming;

#[derive(Debug, Default)]
pub struct Red;

/// One subject's signal, window by window.
#[derive(Debug, Clone)]
pub struct Series {
    pub subject: Subject,
    pub calls: Vec<u64>,
    pub errors: Vec<u64>,
    /// p50 and p99 of durations in ms (NaN for a window without calls).
    pub p50_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
    /// Per window, the slowest row and the first failing row (evidence).
    pub slowest: Vec<Option<u32>>,
    pub failing: Vec<Option<u32>>,
}

impl Series {
    fn new(subject: Subject, windows: usize) -> Self {
        Series {
            subject,
            calls: vec![0; windows],
            errors: vec![0; windows],
            p50_ms: vec![f64::NAN; windows],
            p99_ms: vec![f64::NAN; windows],
            slowest: vec![None; windows],
            failing: vec![None; windows],
        }
    }

    /// Baseline p99 (median of the baseline windows' p99s) and error rate.
    pub fn baseline(&self, windows: usize) -> Baseline {
        let mut p99s: Vec<f64> = self.p99_ms[..windows]
            .iter()
            .zip(&self.calls[..windows])
            .filter(|&(p, &n)| !p.is_nan() && n > 0)
            .map(|(&p, _)| p)
            .collect();
        p99s.sort_by(f64::total_cmp);
        let calls: u64 = self.calls[..windows].iter().sum();
        let errors: u64 = self.errors[..windows].iter().sum();
        Baseline {
            p99_ms: p99s.get(p99s.len() / 2).copied(),
            error_rate: if calls == 0 {
                0.0
            } else {
                errors as f64 / calls as f64
            },
            calls,
        }
    }

    pub fn error_rate(&self, window: usize) -> f64 {
        match self.calls[window] {
            0 => 0.0,
            n => self.errors[window] as f64 / n as f64,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub p99_ms: Option<f64>,
    pub error_rate: f64,
    pub calls: u64,
}

/// RED series for every service and every edge.
#[derive(Debug, Clone, Default)]
pub struct RedSeries {
    pub services: Vec<Series>,
    pub edges: Vec<Series>,
}

impl RedSeries {
    pub fn build(cx: &Context<'_>) -> RedSeries {
        // A failure here can only be a polars bug on well-formed columns; analysis goes
        // on without RED rather than failing as a whole.
        build(cx).unwrap_or_default()
    }

    /// The series of `subject`, if it has one.
    pub fn get(&self, subject: &Subject) -> Option<&Series> {
        self.services
            .iter()
            .chain(&self.edges)
            .find(|series| &series.subject == subject)
    }
}

fn build(cx: &Context<'_>) -> PolarsResult<RedSeries> {
    let table = cx.table;
    let calls = cx.calls();

    // Services: their incoming spans, proxies left out.
    let service_rows: Vec<u32> = (0..table.len() as u32)
        .filter(|&row| {
            let r = row as usize;
            is_incoming(table.kind[r]) && !calls.proxies.contains(&table.service[r])
        })
        .collect();
    let service_keys: Vec<u32> = service_rows
        .iter()
        .map(|&row| table.service[row as usize])
        .collect();
    let services = aggregate(cx, &service_rows, &service_keys)?
        .into_iter()
        .map(|(key, series)| {
            let mut series = series;
            series.subject = Subject::Service(table.str(key).to_owned());
            series
        });

    // Edges: caller-side calls.
    let mut edge_ids: HashMap<(u32, u32), u32> = HashMap::new();
    let mut edge_names: Vec<(u32, u32)> = Vec::new();
    // Calls a service makes to itself (peers of one cluster) are the reachability
    // detector's: per instance, not per service.
    let (edge_rows, edge_keys): (Vec<u32>, Vec<u32>) = (0..calls.len())
        .filter(|&i| calls.caller[i] != calls.callee[i])
        .map(|i| {
            let (caller, callee) = (calls.caller[i], calls.callee[i]);
            let key = *edge_ids.entry((caller, callee)).or_insert_with(|| {
                edge_names.push((caller, callee));
                edge_names.len() as u32 - 1
            });
            (calls.row[i], key)
        })
        .unzip();
    let edges = aggregate(cx, &edge_rows, &edge_keys)?
        .into_iter()
        .map(|(key, mut series)| {
            let (caller, callee) = edge_names[key as usize];
            series.subject =
                Subject::Edge(table.str(caller).to_owned(), table.str(callee).to_owned());
            series
        });

    let mut red = RedSeries {
        services: services.collect(),
        edges: edges.collect(),
    };
    red.services.sort_by(|a, b| a.subject.cmp(&b.subject));
    red.edges.sort_by(|a, b| a.subject.cmp(&b.subject));
    Ok(red)
}

/// Per key and window: calls, errors, p50, p99 (polars), plus evidence rows.
fn aggregate(cx: &Context<'_>, rows: &[u32], keys: &[u32]) -> PolarsResult<Vec<(u32, Series)>> {
    let table = cx.table;
    let windows = cx.windows();
    let window: Vec<u32> = rows
        .iter()
        .map(|&row| cx.window_of(table.start_ns[row as usize]) as u32)
        .collect();
    let duration: Vec<f64> = rows
        .iter()
        .map(|&row| table.duration_ns(row) as f64 / 1e6)
        .collect();
    let error: Vec<bool> = rows.iter().map(|&row| table.error[row as usize]).collect();
    let frame = DataFrame::new_infer_height(vec![
        polars::prelude::Column::new("key".into(), keys),
        polars::prelude::Column::new("window".into(), &window),
        polars::prelude::Column::new("duration_ms".into(), duration),
        polars::prelude::Column::new("error".into(), error),
    ])?;
    let stats = frame
        .lazy()
        .group_by([col("key"), col("window")])
        .agg([
            len().alias("calls"),
            col("error").sum().alias("errors"),
            col("duration_ms")
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("p50"),
            col("duration_ms")
                .quantile(lit(0.99), QuantileMethod::Linear)
                .alias("p99"),
        ])
        .collect()?;
    let key = stats.column("key")?.u32()?;
    let window_col = stats.column("window")?.u32()?;
    let calls = stats
        .column("calls")?
        .cast(&polars::prelude::DataType::UInt64)?;
    let calls = calls.u64()?;
    let errors = stats
        .column("errors")?
        .cast(&polars::prelude::DataType::UInt64)?;
    let errors = errors.u64()?;
    let p50 = stats.column("p50")?.f64()?;
    let p99 = stats.column("p99")?.f64()?;

    let mut by_key: HashMap<u32, Series> = HashMap::new();
    for i in 0..stats.height() {
        let (Some(k), Some(w)) = (key.get(i), window_col.get(i)) else {
            continue;
        };
        let series = by_key
            .entry(k)
            .or_insert_with(|| Series::new(Subject::Cluster, windows));
        let w = w as usize;
        if w >= windows {
            continue;
        }
        series.calls[w] = calls.get(i).unwrap_or(0);
        series.errors[w] = errors.get(i).unwrap_or(0);
        series.p50_ms[w] = p50.get(i).unwrap_or(f64::NAN);
        series.p99_ms[w] = p99.get(i).unwrap_or(f64::NAN);
    }
    for (i, &row) in rows.iter().enumerate() {
        let Some(series) = by_key.get_mut(&keys[i]) else {
            continue;
        };
        let w = window[i] as usize;
        if series.slowest[w].is_none_or(|s| table.duration_ns(s) < table.duration_ns(row)) {
            series.slowest[w] = Some(row);
        }
        if table.error[row as usize] && series.failing[w].is_none() {
            series.failing[w] = Some(row);
        }
    }
    Ok(by_key.into_iter().collect())
}

/// Which windows of `series` are abnormal for latency and for errors.
#[derive(Debug)]
pub struct Judgement {
    pub slow: Vec<bool>,
    pub very_slow: Vec<bool>,
    pub failing: Vec<bool>,
    pub failing_hard: Vec<bool>,
    pub baseline: Baseline,
}

pub fn judge(cx: &Context<'_>, series: &Series) -> Judgement {
    let t = cx.thresholds;
    let base_windows = cx.baseline_windows();
    let baseline = series.baseline(base_windows);
    let n = series.calls.len();
    let mut judgement = Judgement {
        slow: vec![false; n],
        very_slow: vec![false; n],
        failing: vec![false; n],
        failing_hard: vec![false; n],
        baseline,
    };
    for w in 0..n {
        if series.calls[w] < t.min_calls {
            continue;
        }
        if let Some(base) = baseline.p99_ms {
            let p99 = series.p99_ms[w];
            let floor = base + t.latency_min_rise_ms;
            judgement.slow[w] = p99 > (base * t.latency_factor).max(floor);
            judgement.very_slow[w] = p99 > (base * 4.0).max(floor);
        }
        let rate = series.error_rate(w);
        judgement.failing[w] = rate > baseline.error_rate + t.error_rate_rise;
        judgement.failing_hard[w] = judgement.failing[w] && rate >= 0.2;
    }
    judgement
}

impl Detector for Red {
    fn name(&self) -> &'static str {
        "red"
    }

    fn symptom(&self) -> &'static str {
        "a service or call edge got slower or started failing, against its own baseline"
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let red = cx.red();
        let base = cx.baseline_windows();
        let mut findings = Vec::new();
        for series in red.services.iter().chain(&red.edges) {
            let judgement = judge(cx, series);
            if let Some(finding) = latency_finding(cx, series, &judgement, base) {
                findings.push(finding);
            }
            if let Some(finding) = error_finding(cx, series, &judgement, base) {
                findings.push(finding);
            }
        }
        findings
    }
}

fn what(subject: &Subject) -> String {
    match subject {
        Subject::Edge(from, to) => format!("Calls from {from} to {to}"),
        other => format!("Requests to {other}"),
    }
}

fn latency_finding(
    cx: &Context<'_>,
    series: &Series,
    judgement: &Judgement,
    base: usize,
) -> Option<Finding> {
    let start = onset(&judgement.slow, base)?;
    let abnormal: Vec<usize> = (start..judgement.slow.len())
        .filter(|&w| judgement.slow[w])
        .collect();
    if abnormal.len() < 2 && start + 1 < judgement.slow.len() {
        return None;
    }
    let end = *abnormal.last()?;
    let very = (start..=end).filter(|&w| judgement.very_slow[w]).count();
    let severity = if very >= 3 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let peak = abnormal
        .iter()
        .map(|&w| series.p99_ms[w])
        .fold(f64::NAN, f64::max);
    let baseline = judgement.baseline.p99_ms.unwrap_or(f64::NAN);
    let mut slowest: Vec<u32> = abnormal.iter().filter_map(|&w| series.slowest[w]).collect();
    slowest.sort_by_key(|&row| std::cmp::Reverse(cx.table.duration_ns(row)));
    let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
    Some(Finding {
        kind: FindingKind::LatencyRise,
        severity,
        subject: series.subject.clone(),
        window: Window {
            start_ns: cx.window_start(start),
            end_ns: cx.window_start(end) + cx.window_ns,
        },
        onset_ns: Some(cx.window_start(start)),
        summary: format!(
            "{} got slower: p99 {peak:.0} ms against {baseline:.0} ms before, from +{onset_s:.0} s, in {} of {} windows since.",
            what(&series.subject),
            abnormal.len(),
            judgement.slow.len() - start,
        ),
        figures: vec![
            Figure::new("p99", peak, "ms"),
            Figure::new("baseline_p99", baseline, "ms"),
            Figure::new("ratio", peak / baseline, "x"),
            Figure::new("abnormal_windows", abnormal.len() as f64, ""),
        ],
        evidence: cx.evidence(slowest),
        detector: "red",
    })
}

fn error_finding(
    cx: &Context<'_>,
    series: &Series,
    judgement: &Judgement,
    base: usize,
) -> Option<Finding> {
    let start = onset(&judgement.failing, base)?;
    let abnormal: Vec<usize> = (start..judgement.failing.len())
        .filter(|&w| judgement.failing[w])
        .collect();
    let errors: u64 = abnormal.iter().map(|&w| series.errors[w]).sum();
    if errors < 2 || (abnormal.len() < 2 && start + 1 < judgement.failing.len()) {
        return None;
    }
    let end = *abnormal.last()?;
    let hard = abnormal
        .iter()
        .filter(|&&w| judgement.failing_hard[w])
        .count();
    let severity = if hard >= 3 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let calls: u64 = abnormal.iter().map(|&w| series.calls[w]).sum();
    let rate = errors as f64 / calls.max(1) as f64;
    let onset_s = (cx.window_start(start) - cx.start_ns) as f64 / 1e9;
    Some(Finding {
        kind: FindingKind::ErrorRise,
        severity,
        subject: series.subject.clone(),
        window: Window {
            start_ns: cx.window_start(start),
            end_ns: cx.window_start(end) + cx.window_ns,
        },
        onset_ns: Some(cx.window_start(start)),
        summary: format!(
            "{} are failing: {:.0} % errors ({errors} of {calls}) against {:.1} % before, from +{onset_s:.0} s.",
            what(&series.subject),
            rate * 100.0,
            judgement.baseline.error_rate * 100.0,
        ),
        figures: vec![
            Figure::new("error_rate", rate, "ratio"),
            Figure::new(
                "baseline_error_rate",
                judgement.baseline.error_rate,
                "ratio",
            ),
            Figure::new("errors", errors as f64, ""),
            Figure::new("abnormal_windows", abnormal.len() as f64, ""),
        ],
        evidence: cx.evidence(abnormal.iter().filter_map(|&w| series.failing[w])),
        detector: "red",
    })
}
