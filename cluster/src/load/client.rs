//! One request to a gateway: the HTTP exchange, its client span, and its place in the
//! history. The one async piece of the load's core; everything it decides is in
//! [`judge`].
//!
//! ```text
//!  Planned ─► OrderHistory::write/read (invoke) ─► span "POST /orders" | "GET /orders/{id}" (otel.kind client)
//!               ─► headers: x-correlation-id, traceparent (when exporting) ─► gateway
//!               ◄─ status + JSON body | timeout | connect | transport ─► Reply ─► judge ─► Verdict
//!               ─► span: http.response.status_code, error.type; history: ok | fail | info
//! ```
//!
//! The spans are made here, in this crate, because the telemetry exports
//! `faultline_cluster` spans only ([`crate::telemetry`]). Each request is the root of its
//! own trace; the gateway continues it.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::json;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::history::OrderHistory;
use super::judge::{self, Reply, Verdict};
use super::mix::{NewOrder, OrderRead, Planned, Request};
use super::{LoadError, Target};
use crate::telemetry;

/// Sends the load's requests; cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
}

impl GatewayClient {
    /// A client whose every request, body included, gives up after `timeout`.
    pub fn new(timeout: Duration) -> Result<GatewayClient, LoadError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(timeout)
            .build()
            .map_err(LoadError::Client)?;
        Ok(GatewayClient { http })
    }

    /// Sends `planned` to `target`, records it in `history` when one is kept, and
    /// returns what the answer means.
    pub async fn send(
        &self,
        target: &Target,
        planned: &Planned,
        history: Option<&OrderHistory>,
    ) -> Verdict {
        match &planned.request {
            Request::Create(order) => {
                let invoked = history.map(|h| h.write(planned.seq, &order.order_id));
                let verdict = judge::write(&self.create(target, order).await);
                if let Some(invoked) = invoked {
                    invoked.complete(&verdict);
                }
                verdict
            }
            Request::Read(read) => {
                let invoked = history.map(|h| h.read(planned.seq, &read.order_id));
                let verdict = judge::read(&read.order_id, &self.read(target, read).await);
                if let Some(invoked) = invoked {
                    invoked.complete(&verdict);
                }
                verdict
            }
        }
    }

    async fn create(&self, target: &Target, order: &NewOrder) -> Reply {
        let url = format!("{}/orders", target.base_url());
        let span = tracing::info_span!(
            "POST /orders",
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = "POST",
            url.full = url.as_str(),
            server.address = target.host.as_str(),
            server.port = target.port,
            http.response.status_code = Empty,
            error.type = Empty,
            correlation.id = order.order_id.as_str(),
            order.id = order.order_id.as_str(),
        );
        let request = self.http.post(&url).json(&json!({
            "amount_cents": order.amount_cents,
            "customer": order.customer,
        }));
        exchange(request, &order.order_id, span).await
    }

    async fn read(&self, target: &Target, read: &OrderRead) -> Reply {
        let url = format!("{}/orders/{}", target.base_url(), read.order_id);
        let span = tracing::info_span!(
            "GET /orders/{id}",
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = "GET",
            url.full = url.as_str(),
            server.address = target.host.as_str(),
            server.port = target.port,
            http.response.status_code = Empty,
            error.type = Empty,
            correlation.id = read.correlation_id.as_str(),
            order.id = read.order_id.as_str(),
        );
        exchange(self.http.get(&url), &read.correlation_id, span).await
    }
}

/// Sends `request` under `span` with the correlation id and trace context, and notes
/// the outcome on the span.
async fn exchange(
    request: reqwest::RequestBuilder,
    correlation_id: &str,
    span: tracing::Span,
) -> Reply {
    let mut headers = HeaderMap::new();
    // The planner's ids are ASCII letters, digits and dashes: always a valid value.
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        headers.insert("x-correlation-id", value);
    }
    telemetry::inject(&span, &mut headers);
    let reply = async {
        let response = match request.headers(headers).send().await {
            Ok(response) => response,
            Err(e) => return failed(&e),
        };
        let status = response.status().as_u16();
        // The status alone is an answer: a body cut short still tells what happened.
        let body = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(_) => None,
        };
        Reply::Answered { status, body }
    }
    .instrument(span.clone())
    .await;
    note(&span, &reply);
    reply
}

fn failed(e: &reqwest::Error) -> Reply {
    if e.is_timeout() {
        Reply::TimedOut
    } else if e.is_connect() {
        Reply::Unreachable
    } else {
        Reply::Broken
    }
}

/// The HTTP client-span conventions: the status code, and for a 4xx/5xx or no answer
/// an error status with `error.type` (the status code, or `timeout` / `connect` /
/// `transport`).
fn note(span: &tracing::Span, reply: &Reply) {
    let error = match reply {
        Reply::Answered { status, .. } => {
            span.record("http.response.status_code", *status);
            (*status >= 400).then(|| status.to_string())
        }
        Reply::TimedOut => Some("timeout".to_owned()),
        Reply::Unreachable => Some("connect".to_owned()),
        Reply::Broken => Some("transport".to_owned()),
    };
    if let Some(kind) = error {
        span.record("otel.status_code", "error");
        span.record("error.type", kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_gateway_is_a_connect_error_and_the_write_is_info() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let target: Target = format!("127.0.0.1:{port}").parse().unwrap();
        let client = GatewayClient::new(Duration::from_secs(2)).unwrap();
        let history = OrderHistory::new();
        let planned = Planned {
            seq: 7,
            request: Request::Create(NewOrder {
                order_id: "o-t-7".into(),
                amount_cents: 100,
                customer: "c-1".into(),
            }),
        };
        let verdict = client.send(&target, &planned, Some(&history)).await;
        assert_eq!(verdict.error.as_deref(), Some("connect"));
        let h = history.history();
        assert_eq!(h.len(), 1);
        assert!(h.ops()[0].is_info() && h.ops()[0].complete_ns.is_some());
        assert_eq!(h.ops()[0].process, 7);
    }
}
