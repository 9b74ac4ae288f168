//! How a service talks to its node: the KV and the queues over the node's HTTP API,
//! through the node's agent (the outbound listener routes `http://node-N/...`).
//!
//! ```text
//!  service ─► NodeClient ─(traceparent of the current span, x-correlation-id)─► agent-i outbound ─► node-i API
//! ```
//!
//! Answers are sorted into three kinds, because what a caller may conclude differs:
//! [`Call::Ok`] (2xx), [`Call::Refused`] (the node answered with an error: status, kind
//! and message), [`Call::Failed`] (no answer: connection, timeout, unreadable body).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::node::kv::path_segment;
use crate::raft::Route;
use crate::sm::{Op, Response};
use crate::telemetry;

/// The outcome of one call to the node.
#[derive(Debug)]
pub enum Call<T> {
    Ok(T),
    /// The node (or its agent) answered with an error.
    Refused {
        status: u16,
        /// The API's error kind (`no_leader`, `unavailable`, …), or `""`.
        kind: String,
        message: String,
    },
    /// No usable answer.
    Failed(String),
}

impl<T> Call<T> {
    /// A one-line description of a non-`Ok` outcome, for logs and error answers.
    pub fn describe(&self) -> String {
        match self {
            Call::Ok(_) => "ok".to_owned(),
            Call::Refused {
                status,
                kind,
                message,
            } => format!("{status} {kind}: {message}"),
            Call::Failed(why) => why.clone(),
        }
    }
}

/// A client of one node's API (this service's own node).
#[derive(Debug, Clone)]
pub struct NodeClient {
    route: Route,
    node: String,
    http: reqwest::Client,
}

impl NodeClient {
    /// A client for node `node` (`node-2`) reached by `route`.
    pub fn new(route: Route, node: impl Into<String>) -> Result<Self, reqwest::Error> {
        Ok(NodeClient {
            http: route.client()?,
            route,
            node: node.into(),
        })
    }

    /// The HTTP client (through the agent), for calls to other peers (`payments`).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The route, for URLs of other peers.
    pub fn route(&self) -> &Route {
        &self.route
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Headers for a call made on behalf of the current span.
    pub fn headers(correlation: Option<&str>) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        telemetry::inject(&tracing::Span::current(), &mut headers);
        if let Some(value) =
            correlation.and_then(|c| reqwest::header::HeaderValue::from_str(c).ok())
        {
            headers.insert("x-correlation-id", value);
        }
        headers
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: Result<reqwest::RequestBuilder, String>,
    ) -> Call<T> {
        let request = match request {
            Ok(request) => request,
            Err(why) => return Call::Failed(why),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Call::Failed(format!("{}: {e}", self.node)),
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return Call::Failed(format!("{}: reading the answer: {e}", self.node)),
        };
        if status.is_success() {
            return match serde_json::from_slice(&bytes) {
                Ok(answer) => Call::Ok(answer),
                Err(e) => Call::Failed(format!("{}: unreadable answer: {e}", self.node)),
            };
        }
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        Call::Refused {
            status: status.as_u16(),
            kind: body["error"].as_str().unwrap_or("").to_owned(),
            message: body["message"].as_str().map_or_else(
                || String::from_utf8_lossy(&bytes).trim().to_owned(),
                str::to_owned,
            ),
        }
    }

    fn url(&self, path: &str) -> Result<String, String> {
        self.route
            .url(&self.node, path)
            .ok_or_else(|| format!("no route to {}", self.node))
    }

    /// `PUT /kv/{key}` with the node's default W; the answer is the node's JSON.
    pub async fn kv_put(
        &self,
        key: &str,
        value: &impl Serialize,
        correlation: Option<&str>,
        timeout: Duration,
    ) -> Call<serde_json::Value> {
        let body = match serde_json::to_vec(value) {
            Ok(body) => body,
            Err(e) => return Call::Failed(format!("encoding {key}: {e}")),
        };
        let request = self.url(&format!("/kv/{}", path_segment(key))).map(|url| {
            self.http
                .put(url)
                .timeout(timeout)
                .headers(Self::headers(correlation))
                .body(body)
        });
        self.send(request).await
    }

    /// `GET /kv/{key}` with the node's default R.
    pub async fn kv_get(
        &self,
        key: &str,
        correlation: Option<&str>,
        timeout: Duration,
    ) -> Call<serde_json::Value> {
        let request = self.url(&format!("/kv/{}", path_segment(key))).map(|url| {
            self.http
                .get(url)
                .timeout(timeout)
                .headers(Self::headers(correlation))
        });
        self.send(request).await
    }

    /// `POST /sm/ops`: one state-machine operation (queues), forwarded to the leader.
    pub async fn op(
        &self,
        op: &Op,
        correlation: Option<&str>,
        timeout: Duration,
    ) -> Call<Response> {
        let request = self.url("/sm/ops").map(|url| {
            self.http
                .post(url)
                .timeout(timeout)
                .headers(Self::headers(correlation))
                .json(op)
        });
        self.send(request).await
    }
}
