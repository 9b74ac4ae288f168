//! `worker`: consumes payment jobs and charges them at `payments` through the
//! resilience policies (docs/services.md). One per node.
//!
//! ```text
//!  loop: receive ≤ free bulkhead slots from `payments` (via the node) ─► per job, a task:
//!    "process payments" span (child of the order's trace) ─► parse ─✗─► nack "poison" (→ DLQ after max deliveries)
//!      └─► bulkhead ─► retry ─► breaker ─► attempt timeout ─► POST http://payments/charge (via the agent)
//!            ├─ 2xx ─► PUT /kv/payment:{id} ─► ack
//!            └─ failed / open / full ─► nack with a delay
//!  admin: PUT /admin/resilience · PUT /admin/worker {paused, processing_delay_ms} · /status · /metrics
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use faultline_model::prometheus::{family, sample};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, ServiceExt as _};
use tracing::Instrument as _;
use tracing::field::Empty;

use super::gateway::{Job, PAYMENTS_QUEUE};
use super::node_client::{Call, NodeClient};
use crate::resilience::{
    BoxError, BreakerState, HttpFailures, RESEND_COUNT_HEADER, ResendCount, Resilience,
    ResilienceSettings, render_resilience,
};
use crate::sm::Delivery;
use crate::sm::{Op, Response as SmResponse};
use crate::telemetry;

/// How many deliveries a job gets before it is dead-lettered to `payments.dlq`.
pub const MAX_DELIVERIES: u32 = 5;
/// How long a received job stays hidden from other workers: longer than a charge with
/// all its retries can take.
const VISIBILITY_MS: u64 = 15_000;
/// When a charge failed, the job comes back after this long.
const RETRY_LATER_MS: u64 = 1_000;
const NODE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest pause between receives when the queue is empty.
const IDLE_POLL_MAX: Duration = Duration::from_secs(1);
/// Between probes while the breaker is open.
const OPEN_BREAKER_PAUSE: Duration = Duration::from_millis(500);
/// The most jobs one receive asks for.
const BATCH: u32 = 10;

/// Runtime knobs (`PUT /admin/worker`), for the consumer-lag scenario.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerKnobs {
    /// Stop receiving (jobs in progress finish).
    pub paused: Option<bool>,
    /// Extra time spent on every job before charging, in ms (at most 60 000).
    pub processing_delay_ms: Option<u64>,
}

/// What the worker has done.
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    paid: AtomicU64,
    charge_failed: AtomicU64,
    poison: AtomicU64,
    receive_failed: AtomicU64,
    settle_failed: AtomicU64,
    in_progress: AtomicU64,
}

/// The worker's shared state.
#[derive(Debug)]
pub struct Worker {
    node: NodeClient,
    pub resilience: Resilience,
    paused: AtomicBool,
    processing_delay_ms: AtomicU64,
    /// Empty receives in a row (for the idle back-off).
    idle_polls: AtomicU32,
    counters: Counters,
}

impl Worker {
    pub fn new(node: NodeClient, settings: ResilienceSettings) -> Result<Arc<Worker>, BoxError> {
        Ok(Arc::new(Worker {
            node,
            resilience: Resilience::new("payments", settings)?,
            paused: AtomicBool::new(false),
            processing_delay_ms: AtomicU64::new(0),
            idle_polls: AtomicU32::new(0),
            counters: Counters::default(),
        }))
    }

    /// The receive loop; returns when `shutdown` resolves (jobs in progress are left to
    /// their visibility timeout).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let charge = self.charge_service();
        tokio::pin!(shutdown);
        let mut created = false;
        loop {
            let pause = if !created {
                created = self.create_queue().await;
                (!created).then_some(Duration::from_millis(500))
            } else if self.paused.load(Ordering::Relaxed) {
                Some(Duration::from_millis(200))
            } else {
                self.receive_batch(&charge).await
            };
            let Some(pause) = pause else { continue };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn create_queue(&self) -> bool {
        let op = Op::CreateQueue {
            queue: PAYMENTS_QUEUE.to_owned(),
            max_deliveries: Some(MAX_DELIVERIES),
            visibility_timeout_ms: Some(VISIBILITY_MS),
        };
        match self.node.op(&op, None, NODE_TIMEOUT).await {
            Call::Ok(_) => true,
            // Created earlier with another configuration (by an older run): use it.
            Call::Refused { status: 409, .. } => true,
            other => {
                tracing::warn!(error = %other.describe(), "cannot create the payments queue yet");
                false
            }
        }
    }

    /// One receive; `Some(pause)` when there was nothing to do.
    async fn receive_batch(self: &Arc<Self>, charge: &Charge) -> Option<Duration> {
        let snapshot = self.resilience.bulkhead.snapshot();
        let mut free = snapshot.limit.saturating_sub(snapshot.in_use);
        if free == 0 {
            return Some(Duration::from_millis(20));
        }
        // With the breaker open every charge would be refused at once, and each job
        // received would only burn one of its deliveries: take one job at a time, as a
        // probe that lets the breaker try half-open once its cool-down is over (and
        // while half-open, whose trials are few).
        let breaker_open = self.resilience.breaker.state() != BreakerState::Closed;
        if breaker_open {
            if snapshot.in_use > 0 {
                return Some(OPEN_BREAKER_PAUSE);
            }
            free = 1;
        }
        let op = Op::Receive {
            queue: PAYMENTS_QUEUE.to_owned(),
            consumer: self.node.node().to_owned(),
            max: free.min(BATCH),
            visibility_ms: Some(VISIBILITY_MS),
        };
        let deliveries = match self.node.op(&op, None, NODE_TIMEOUT).await {
            Call::Ok(SmResponse::Received(received)) => received.messages,
            Call::Ok(_) => Vec::new(),
            other => {
                self.counters.receive_failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %other.describe(), "receive failed");
                return Some(Duration::from_millis(250));
            }
        };
        if deliveries.is_empty() {
            // Every receive is a Raft write: an idle worker backs off, up to a second.
            let idle = self.idle_polls.fetch_add(1, Ordering::Relaxed).min(4);
            return Some(Duration::from_millis(100 << idle).min(IDLE_POLL_MAX));
        }
        self.idle_polls.store(0, Ordering::Relaxed);
        let pause = breaker_open.then_some(OPEN_BREAKER_PAUSE);
        for delivery in deliveries {
            self.counters.received.fetch_add(1, Ordering::Relaxed);
            self.counters.in_progress.fetch_add(1, Ordering::Relaxed);
            let (worker, charge) = (Arc::clone(self), charge.clone());
            tokio::spawn(async move {
                worker.process(delivery, charge).await;
                worker.counters.in_progress.fetch_sub(1, Ordering::Relaxed);
            });
        }
        pause
    }

    /// Processes one job in its own span, continuing the order's trace.
    async fn process(&self, delivery: Delivery, charge: Charge) {
        let span = tracing::info_span!(
            "process payments",
            otel.kind = "consumer",
            otel.status_code = Empty,
            error.type = Empty,
            messaging.system = crate::services::SYSTEM,
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = PAYMENTS_QUEUE,
            messaging.message.id = delivery.message_id.as_str(),
            queue.delivery_count = delivery.delivery_count,
            correlation.id = delivery.message_id.as_str(),
        );
        let job: Result<Job, _> = serde_json::from_str(&delivery.body);
        if let Ok(Job {
            traceparent: Some(parent),
            ..
        }) = &job
        {
            let mut carrier = http::HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(parent) {
                carrier.insert("traceparent", value);
                telemetry::continue_trace(&span, &carrier);
            }
        }
        self.handle(delivery, job, charge)
            .instrument(span.clone())
            .await;
    }

    async fn handle(
        &self,
        delivery: Delivery,
        job: Result<Job, serde_json::Error>,
        charge: Charge,
    ) {
        let span = tracing::Span::current();
        let id = delivery.message_id.clone();
        let job = match job {
            Ok(job) => job,
            Err(e) => {
                // A poison message: no retry of ours can fix it. Nack it at once; the
                // queue dead-letters it after MAX_DELIVERIES.
                self.counters.poison.fetch_add(1, Ordering::Relaxed);
                span.record("otel.status_code", "error");
                span.record("error.type", "invalid_job");
                self.settle(
                    &delivery,
                    Some(format!("poison: not a payment job: {e}")),
                    0,
                )
                .await;
                return;
            }
        };
        let delay = self.processing_delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let body =
            json!({ "order_id": job.order_id, "amount_cents": job.amount_cents }).to_string();
        let request = http::Request::builder()
            .method("POST")
            .uri("/charge")
            .header("content-type", "application/json")
            .header("idempotency-key", job.order_id.as_str())
            .body(body);
        let outcome = match request {
            Ok(request) => charge.oneshot(request).await,
            Err(e) => Err(BoxError::from(e)),
        };
        match outcome {
            Ok(response) if response.status().is_success() => {
                let payment: serde_json::Value =
                    serde_json::from_str(response.body()).unwrap_or_default();
                let record = json!({
                    "payment_id": payment["payment_id"],
                    "status": "paid",
                });
                match self
                    .node
                    .kv_put(&format!("payment:{id}"), &record, Some(&id), NODE_TIMEOUT)
                    .await
                {
                    Call::Ok(_) => {
                        self.counters.paid.fetch_add(1, Ordering::Relaxed);
                        self.settle(&delivery, None, 0).await;
                    }
                    other => {
                        span.record("otel.status_code", "error");
                        span.record("error.type", "kv_unavailable");
                        self.settle(
                            &delivery,
                            Some(format!(
                                "recording the payment failed: {}",
                                other.describe()
                            )),
                            RETRY_LATER_MS,
                        )
                        .await;
                    }
                }
            }
            outcome => {
                self.counters.charge_failed.fetch_add(1, Ordering::Relaxed);
                let why = match outcome {
                    Ok(response) => format!("payments answered {}", response.status()),
                    Err(e) => e.to_string(),
                };
                span.record("otel.status_code", "error");
                span.record("error.type", "charge_failed");
                self.settle(
                    &delivery,
                    Some(format!("charge failed: {why}")),
                    RETRY_LATER_MS,
                )
                .await;
            }
        }
    }

    /// Acks (`failure: None`) or nacks the delivery.
    async fn settle(&self, delivery: &Delivery, failure: Option<String>, delay_ms: u64) {
        let op = match failure {
            None => Op::Ack {
                queue: PAYMENTS_QUEUE.to_owned(),
                receipt: delivery.receipt.clone(),
            },
            Some(reason) => Op::Nack {
                queue: PAYMENTS_QUEUE.to_owned(),
                receipt: delivery.receipt.clone(),
                delay_ms,
                reason: Some(reason),
            },
        };
        if let Call::Refused { .. } | Call::Failed(_) = self
            .node
            .op(&op, Some(&delivery.message_id), NODE_TIMEOUT)
            .await
        {
            // The job comes back after its visibility timeout: at-least-once.
            self.counters.settle_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The call to payments, wrapped in the resilience policies.
    fn charge_service(&self) -> Charge {
        let http = self.node.http().clone();
        let url = self.node.route().url("payments", "/charge");
        let client = tower::service_fn(move |request: http::Request<String>| {
            let (http, url) = (http.clone(), url.clone());
            async move { charge_once(&http, url, request).await }
        });
        BoxCloneSyncService::new(self.resilience.layer(HttpFailures).layer(client))
    }

    pub fn update_knobs(&self, knobs: &WorkerKnobs) -> Result<(), String> {
        if let Some(ms) = knobs.processing_delay_ms {
            if ms > 60_000 {
                return Err("processing_delay_ms is at most 60000".to_owned());
            }
            self.processing_delay_ms.store(ms, Ordering::Relaxed);
        }
        if let Some(paused) = knobs.paused {
            self.paused.store(paused, Ordering::Relaxed);
        }
        Ok(())
    }

    fn status(&self) -> serde_json::Value {
        let c = &self.counters;
        json!({
            "service": "worker",
            "node": self.node.node(),
            "paused": self.paused.load(Ordering::Relaxed),
            "processing_delay_ms": self.processing_delay_ms.load(Ordering::Relaxed),
            "received": c.received.load(Ordering::Relaxed),
            "paid": c.paid.load(Ordering::Relaxed),
            "charge_failed": c.charge_failed.load(Ordering::Relaxed),
            "poison": c.poison.load(Ordering::Relaxed),
            "receive_failed": c.receive_failed.load(Ordering::Relaxed),
            "settle_failed": c.settle_failed.load(Ordering::Relaxed),
            "in_progress": c.in_progress.load(Ordering::Relaxed),
            "resilience": self.resilience.snapshot(),
        })
    }
}

/// The call to payments with its policies, cloned into every job's task (the clones
/// share the policies' state).
type Charge = BoxCloneSyncService<http::Request<String>, http::Response<String>, BoxError>;

/// One attempt at `POST /charge`, in a client span of its own (the retries show as
/// sibling spans with rising `http.request.resend_count`).
async fn charge_once(
    http: &reqwest::Client,
    url: Option<String>,
    request: http::Request<String>,
) -> Result<http::Response<String>, BoxError> {
    let resend = request.extensions().get::<ResendCount>().map_or(0, |c| c.0);
    let span = tracing::info_span!(
        "POST /charge",
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = "POST",
        server.address = "payments",
        http.request.resend_count = resend,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    let Some(url) = url else {
        return Err("no route to payments".into());
    };
    async {
        let mut headers = NodeClient::headers(None);
        for (name, value) in request.headers() {
            headers.insert(name.clone(), value.clone());
        }
        if resend > 0 {
            headers.insert(RESEND_COUNT_HEADER, http::HeaderValue::from(resend));
        }
        let sent = http
            .post(url)
            .headers(headers)
            .body(request.into_body())
            .send()
            .await;
        let span = tracing::Span::current();
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                span.record("otel.status_code", "error");
                span.record(
                    "error.type",
                    if e.is_timeout() { "timeout" } else { "connect" },
                );
                return Err(e.into());
            }
        };
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "error");
            span.record("error.type", status.as_u16());
        }
        let body = response.text().await?;
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        Ok(answer)
    }
    .instrument(span)
    .await
}

/// The worker's admin and status routes.
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route("/admin/resilience", put(set_resilience).get(get_resilience))
        .route("/admin/worker", put(set_knobs))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(worker)
}

fn invalid(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": "invalid", "message": message.to_string() })),
    )
        .into_response()
}

async fn set_resilience(State(worker): State<Arc<Worker>>, body: Bytes) -> Response {
    let settings = match ResilienceSettings::from_json(&body) {
        Ok(settings) => settings,
        Err(e) => return invalid(e),
    };
    match worker.resilience.update(settings) {
        Ok(()) => Json(worker.resilience.settings()).into_response(),
        Err(e) => invalid(e),
    }
}

async fn get_resilience(State(worker): State<Arc<Worker>>) -> Response {
    Json(worker.resilience.settings()).into_response()
}

async fn set_knobs(
    State(worker): State<Arc<Worker>>,
    body: Result<Json<WorkerKnobs>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(knobs) = match body {
        Ok(body) => body,
        Err(e) => return invalid(e.body_text()),
    };
    match worker.update_knobs(&knobs) {
        Ok(()) => Json(worker.status()).into_response(),
        Err(e) => invalid(e),
    }
}

async fn status(State(worker): State<Arc<Worker>>) -> Response {
    Json(worker.status()).into_response()
}

async fn metrics(State(worker): State<Arc<Worker>>) -> Response {
    let mut out = String::new();
    let node = worker.node.node();
    let c = &worker.counters;
    let prefix = "faultline_worker_";
    let counters = [
        (
            "jobs_received_total",
            "Jobs received from the queue.",
            &c.received,
        ),
        (
            "jobs_paid_total",
            "Jobs charged and recorded, then acked.",
            &c.paid,
        ),
        (
            "jobs_charge_failed_total",
            "Jobs whose charge failed (nacked to come back later).",
            &c.charge_failed,
        ),
        (
            "jobs_poison_total",
            "Jobs that were not valid payment jobs (nacked; dead-lettered after max deliveries).",
            &c.poison,
        ),
        (
            "receive_failed_total",
            "Receives from the queue that failed.",
            &c.receive_failed,
        ),
        (
            "settle_failed_total",
            "Acks and nacks that failed (the job comes back after its visibility timeout).",
            &c.settle_failed,
        ),
    ];
    for (name, help, value) in counters {
        family(&mut out, prefix, name, "counter", help);
        sample(
            &mut out,
            prefix,
            name,
            &[("node", node)],
            value.load(Ordering::Relaxed),
        );
    }
    family(
        &mut out,
        prefix,
        "jobs_in_progress",
        "gauge",
        "Jobs being processed now.",
    );
    sample(
        &mut out,
        prefix,
        "jobs_in_progress",
        &[("node", node)],
        c.in_progress.load(Ordering::Relaxed),
    );
    render_resilience(&mut out, &[("node", node)], &[worker.resilience.snapshot()]);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
