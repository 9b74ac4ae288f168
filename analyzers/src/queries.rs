//! The benchmark questions of issue 6, answered with polars over [`SpanTable::frame`]:
//! the same questions `bench/duckdb/questions.sql` asks DuckDB of the same capture, so
//! that the two answers can be compared and the two times set side by side.
//!
//! ```text
//!  SpanTable ──► frame() ──► lazy filter / group_by / quantile ──► Answers (sorted by name)
//! ```
//!
//! The definitions, which the SQL repeats word for word:
//!
//! - **Calls** of a service are its server and consumer spans (OTLP kinds 2 and 5): the
//!   requests and messages it handled. Client, producer and internal spans are left out,
//!   so a call is not counted once by the caller and again by the callee.
//! - **Minute**: `floor(start_ns / 60e9)`, minutes since the epoch, by the span's start.
//! - **Latency**: `end_ns - start_ns` (0 when the end precedes the start); p50 and p99
//!   by linear interpolation between the closest ranks (polars' `Linear`, DuckDB's
//!   `quantile_cont`, numpy's default), in milliseconds.
//! - **Error**: the span's status is error, or it is a server or client span with an
//!   HTTP status of 500 or more (the table's `error` column, see [`crate::table`]).
//! - **Edge**: (the caller's service, the callee) of a client span (kind 3), the callee
//!   being the table's `peer` (`peer.service`, else `server.address`, …; empty when the
//!   span names none).
//! - **Retry amplification** of an edge: attempts (client spans) ÷ logical calls (client
//!   spans whose `http.request.resend_count` is absent or 0), as OpenTelemetry's HTTP
//!   conventions mark retries.

use polars::prelude::{
    DataFrame, DataType, IntoLazy as _, PolarsError, QuantileMethod, col, len, lit,
};
use serde::Serialize;

use crate::table::{SpanTable, kind_number};
use faultline_model::SpanKind;

const NS_PER_MINUTE: i64 = 60_000_000_000;
const NS_PER_MS: f64 = 1e6;

/// One service in one minute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceMinute {
    pub service: String,
    /// Minutes since the epoch.
    pub minute: i64,
    pub calls: u64,
    pub errors: u64,
    /// `errors / calls`.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Retry amplification of one caller → callee edge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeRetries {
    pub caller: String,
    /// Empty when the client spans name no peer.
    pub callee: String,
    /// Client spans: every attempt, first or retry.
    pub attempts: u64,
    /// Attempts that were not retries (`http.request.resend_count` absent or 0).
    pub logical_calls: u64,
    /// `attempts / logical_calls`; `None` when every attempt was a retry (a capture that
    /// starts in the middle of a retry loop).
    pub amplification: Option<f64>,
}

/// Both answers, sorted by service and minute, and by caller and callee.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answers {
    pub service_minutes: Vec<ServiceMinute>,
    pub edges: Vec<EdgeRetries>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
    #[error("query result: column {column} has a missing value in row {row}")]
    Missing { column: &'static str, row: usize },
}

/// Answers both questions over `table`.
pub fn answer(table: &SpanTable) -> Result<Answers, QueryError> {
    let frame = table.frame()?;
    Ok(Answers {
        service_minutes: service_minutes(table, &frame)?,
        edges: retry_amplification(table, &frame)?,
    })
}

/// Calls, errors and latency per service and minute; `frame` is `table.frame()`.
pub fn service_minutes(
    table: &SpanTable,
    frame: &DataFrame,
) -> Result<Vec<ServiceMinute>, QueryError> {
    let kind = col("kind");
    let result = frame
        .clone()
        .lazy()
        .filter(
            kind.clone()
                .eq(lit(kind_number(SpanKind::Server)))
                .or(kind.eq(lit(kind_number(SpanKind::Consumer)))),
        )
        .group_by([
            col("service"),
            // The minute's first nanosecond: `start_ns` is never negative in the table
            // (it comes from an unsigned time), so the remainder is the floor's, and
            // plain arithmetic spares polars' `round_series` feature for `floor_div`.
            (col("start_ns") - col("start_ns") % lit(NS_PER_MINUTE)).alias("minute"),
        ])
        .agg([
            len().cast(DataType::UInt64).alias("calls"),
            col("error").cast(DataType::UInt64).sum().alias("errors"),
            col("duration_ns")
                .quantile(lit(0.5), QuantileMethod::Linear)
                .alias("p50"),
            col("duration_ns")
                .quantile(lit(0.99), QuantileMethod::Linear)
                .alias("p99"),
        ])
        .collect()?;

    let service = result.column("service")?.u32()?;
    let minute = result.column("minute")?.i64()?;
    let calls = result.column("calls")?.u64()?;
    let errors = result.column("errors")?.u64()?;
    let p50 = result.column("p50")?.f64()?;
    let p99 = result.column("p99")?.f64()?;
    let mut rows = Vec::with_capacity(result.height());
    for row in 0..result.height() {
        let calls = present(calls.get(row), "calls", row)?;
        let errors = present(errors.get(row), "errors", row)?;
        rows.push(ServiceMinute {
            service: table
                .str(present(service.get(row), "service", row)?)
                .to_owned(),
            minute: present(minute.get(row), "minute", row)? / NS_PER_MINUTE,
            calls,
            errors,
            error_rate: errors as f64 / calls as f64,
            p50_ms: present(p50.get(row), "p50", row)? / NS_PER_MS,
            p99_ms: present(p99.get(row), "p99", row)? / NS_PER_MS,
        });
    }
    rows.sort_by(|a, b| (&a.service, a.minute).cmp(&(&b.service, b.minute)));
    Ok(rows)
}

/// Attempts and logical calls per caller → callee edge; `frame` is `table.frame()`.
pub fn retry_amplification(
    table: &SpanTable,
    frame: &DataFrame,
) -> Result<Vec<EdgeRetries>, QueryError> {
    let result = frame
        .clone()
        .lazy()
        .filter(col("kind").eq(lit(kind_number(SpanKind::Client))))
        .group_by([col("service"), col("peer")])
        .agg([
            len().cast(DataType::UInt64).alias("attempts"),
            col("resend")
                .eq(lit(0u32))
                .cast(DataType::UInt64)
                .sum()
                .alias("logical"),
        ])
        .collect()?;

    let service = result.column("service")?.u32()?;
    let peer = result.column("peer")?.u32()?;
    let attempts = result.column("attempts")?.u64()?;
    let logical = result.column("logical")?.u64()?;
    let mut rows = Vec::with_capacity(result.height());
    for row in 0..result.height() {
        let attempts = present(attempts.get(row), "attempts", row)?;
        let logical_calls = present(logical.get(row), "logical", row)?;
        rows.push(EdgeRetries {
            caller: table
                .str(present(service.get(row), "service", row)?)
                .to_owned(),
            callee: table.str(present(peer.get(row), "peer", row)?).to_owned(),
            attempts,
            logical_calls,
            amplification: (logical_calls > 0).then(|| attempts as f64 / logical_calls as f64),
        });
    }
    rows.sort_by(|a, b| (&a.caller, &a.callee).cmp(&(&b.caller, &b.callee)));
    Ok(rows)
}

fn present<T>(value: Option<T>, column: &'static str, row: usize) -> Result<T, QueryError> {
    value.ok_or(QueryError::Missing { column, row })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_model::{Resource, Span, SpanId, StatusCode, TraceId};

    use super::*;
    use crate::table::from_spans;

    const MINUTE_0: u64 = 1_763_700_000_000_000_000;

    struct Make {
        resources: Vec<Arc<Resource>>,
        next: u64,
    }

    impl Make {
        fn new() -> Self {
            Make {
                resources: ["api", "db"]
                    .into_iter()
                    .map(|s| Arc::new(Resource::with_service(s)))
                    .collect(),
                next: 1,
            }
        }

        fn span(&mut self, service: usize, kind: SpanKind, start: u64, ms: u64) -> Span {
            let mut span = Span::new(TraceId([1; 16]), SpanId(self.next.to_be_bytes()), "op");
            self.next += 1;
            span.resource = self.resources[service].clone();
            span.kind = kind;
            span.start_ns = start;
            span.end_ns = start + ms * 1_000_000;
            span
        }
    }

    #[test]
    fn service_minutes_count_server_and_consumer_spans_with_linear_quantiles() {
        let mut make = Make::new();
        let mut spans = Vec::new();
        // api, minute 0: four server spans of 10, 20, 30, 40 ms, one a status error,
        // one a 503; a client span and an internal span that must not count.
        for (i, ms) in [40, 10, 30, 20].into_iter().enumerate() {
            let mut span = make.span(0, SpanKind::Server, MINUTE_0 + i as u64, ms);
            if i == 0 {
                span.status.code = StatusCode::Error;
            }
            if i == 1 {
                span.attributes.insert("http.response.status_code", 503i64);
            }
            spans.push(span);
        }
        spans.push(make.span(0, SpanKind::Client, MINUTE_0, 1000));
        spans.push(make.span(0, SpanKind::Internal, MINUTE_0, 1000));
        // api, minute 1 (by its start, though it ends in minute 2): a consumer span.
        spans.push(make.span(0, SpanKind::Consumer, MINUTE_0 + 119_999_999_999, 7));
        // db, minute 0: a server span whose 404 is no error.
        let mut span = make.span(1, SpanKind::Server, MINUTE_0 + 5, 3);
        span.attributes.insert("http.response.status_code", 404i64);
        spans.push(span);

        let answers = answer(&from_spans(&spans)).unwrap();
        let minute = (MINUTE_0 / 60_000_000_000) as i64;
        let got: Vec<_> = answers
            .service_minutes
            .iter()
            .map(|r| (r.service.as_str(), r.minute - minute, r.calls, r.errors))
            .collect();
        assert_eq!(got, [("api", 0, 4, 2), ("api", 1, 1, 0), ("db", 0, 1, 0)]);
        let api = &answers.service_minutes[0];
        assert_eq!(api.error_rate, 0.5);
        // Sorted 10, 20, 30, 40: p50 at rank 1.5 → 25; p99 at rank 2.97 → 39.7.
        assert!((api.p50_ms - 25.0).abs() < 1e-9, "{}", api.p50_ms);
        assert!((api.p99_ms - 39.7).abs() < 1e-9, "{}", api.p99_ms);
        assert_eq!(answers.service_minutes[1].p99_ms, 7.0);
    }

    #[test]
    fn retry_amplification_divides_attempts_by_first_attempts_per_edge() {
        let mut make = Make::new();
        let mut spans = Vec::new();
        let mut client = |service: usize, peer: Option<&str>, resend: Option<i64>| {
            let mut span = make.span(service, SpanKind::Client, MINUTE_0, 1);
            if let Some(peer) = peer {
                span.attributes.insert("server.address", "10.0.0.9");
                span.attributes.insert("peer.service", peer);
            }
            if let Some(resend) = resend {
                span.attributes.insert("http.request.resend_count", resend);
            }
            span
        };
        // api → db: two logical calls (one says resend_count 0), one retried twice.
        spans.push(client(0, Some("db"), None));
        spans.push(client(0, Some("db"), Some(1)));
        spans.push(client(0, Some("db"), Some(2)));
        spans.push(client(0, Some("db"), Some(0)));
        // api → (unnamed): one first attempt. db → cache: only a retry.
        spans.push(client(0, None, None));
        spans.push(client(1, Some("cache"), Some(1)));
        // Server spans are not attempts, whatever they say.
        let mut server = make.span(1, SpanKind::Server, MINUTE_0, 1);
        server.attributes.insert("http.request.resend_count", 1i64);
        spans.push(server);

        let edges = answer(&from_spans(&spans)).unwrap().edges;
        let got: Vec<_> = edges
            .iter()
            .map(|e| {
                (
                    e.caller.as_str(),
                    e.callee.as_str(),
                    e.attempts,
                    e.logical_calls,
                    e.amplification,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("api", "", 1, 1, Some(1.0)),
                ("api", "db", 4, 2, Some(2.0)),
                ("db", "cache", 1, 0, None),
            ]
        );
    }

    #[test]
    fn an_empty_table_has_no_answers() {
        let answers = answer(&SpanTable::default()).unwrap();
        assert!(answers.service_minutes.is_empty() && answers.edges.is_empty());
    }
}
