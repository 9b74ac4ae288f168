//! The routes end to end, in-process (`tower::ServiceExt::oneshot`) and on paused
//! tokio time, so service times and queueing delays are exact.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::*;
use crate::telemetry::ErrorType;

struct Answer {
    status: StatusCode,
    body: Value,
    error_type: Option<&'static str>,
    content_type: Option<String>,
    text: String,
}

fn settings(capacity: u32, latency_ms: u64) -> PaymentsSettings {
    PaymentsSettings {
        capacity,
        latency_ms,
        jitter_ms: 0,
        ..PaymentsSettings::default()
    }
}

fn serve(settings: PaymentsSettings) -> (Arc<Payments>, Router) {
    let payments = Payments::new(settings, Some(42)).unwrap();
    (payments.clone(), router(payments))
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let error_type = response.extensions().get::<ErrorType>().map(|e| e.0);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        body,
        error_type,
        content_type,
        text,
    }
}

fn charge(order_id: &str, key: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/charge").header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        request = request.header(IDEMPOTENCY_KEY_HEADER, key);
    }
    request
        .body(Body::from(
            json!({"order_id": order_id, "amount_cents": 1299}).to_string(),
        ))
        .unwrap()
}

fn put_settings(json: &str) -> Request<Body> {
    Request::put("/admin/payments")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json.to_owned()))
        .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// Starts `n` charges at the current instant, in order (each is in line before the
/// next starts); each answers with its status and the time from `start`.
fn charge_concurrently(
    router: &Router,
    n: usize,
    start: Instant,
) -> Vec<tokio::task::JoinHandle<(StatusCode, Value, Duration)>> {
    (0..n)
        .map(|i| {
            let router = router.clone();
            tokio::spawn(async move {
                let answer = send(&router, charge(&format!("order-{i}"), None)).await;
                (answer.status, answer.body, start.elapsed())
            })
        })
        .collect()
}

async fn join_all(
    handles: Vec<tokio::task::JoinHandle<(StatusCode, Value, Duration)>>,
) -> Vec<(StatusCode, Value, Duration)> {
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.unwrap());
    }
    answers
}

/// Lets spawned tasks run until `ready` holds, without letting paused time move.
async fn settle_until(payments: &Payments, ready: impl Fn(&PaymentsStatus) -> bool) {
    for _ in 0..1000 {
        if ready(&payments.status()) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never ready: {:?}", payments.status());
}

fn millis(answers: &[(StatusCode, Value, Duration)]) -> Vec<u128> {
    answers.iter().map(|(_, _, at)| at.as_millis()).collect()
}

#[tokio::test(start_paused = true)]
async fn past_capacity_charges_queue_first_come_first_served() {
    let (_, router) = serve(settings(2, 100));
    let start = Instant::now();
    let answers = join_all(charge_concurrently(&router, 6, start)).await;
    assert!(answers.iter().all(|(s, _, _)| *s == StatusCode::OK));
    assert_eq!(millis(&answers), [100, 100, 200, 200, 300, 300]);
    // Waiting time = queue position × service time / capacity, on a larger line too.
    let (_, router) = serve(settings(4, 50));
    let start = Instant::now();
    let answers = join_all(charge_concurrently(&router, 40, start)).await;
    let expected: Vec<u128> = (0..40).map(|i| (i / 4 + 1) * 50).collect();
    assert_eq!(millis(&answers), expected);
}

#[tokio::test(start_paused = true)]
async fn past_the_queue_limit_charges_are_refused_at_once() {
    let (payments, router) = serve(PaymentsSettings {
        queue_limit: 2,
        ..settings(1, 100)
    });
    let start = Instant::now();
    let answers = join_all(charge_concurrently(&router, 4, start)).await;
    let statuses: Vec<_> = answers.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    assert_eq!(millis(&answers), [100, 200, 300, 0]);
    assert_eq!(answers[3].1["error"], "overloaded");
    let message = answers[3].1["message"].as_str().unwrap();
    assert!(message.contains("2 waiting (queue_limit 2)"), "{message}");
    let totals = payments.status().totals;
    assert_eq!((totals.ok, totals.overloaded), (3, 1));

    // The refusal carries its error.type for the server span.
    let _busy = tokio::spawn({
        let router = router.clone();
        async move { send(&router, charge("slow", None)).await }
    });
    settle_until(&payments, |s| s.in_service == 1).await;
    send(&router, put_settings(r#"{"queue_limit": 0}"#)).await;
    let refused = send(&router, charge("refused", None)).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.error_type, Some("overloaded"));
}

#[tokio::test(start_paused = true)]
async fn at_error_rate_one_every_charge_fails_and_nothing_is_recorded() {
    let (payments, router) = serve(PaymentsSettings {
        error_rate: 1.0,
        ..settings(4, 30)
    });
    let start = Instant::now();
    let answers = join_all(charge_concurrently(&router, 8, start)).await;
    for (status, body, at) in &answers {
        assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"], "payment_failed");
        assert!(body["message"].as_str().unwrap().contains("error_rate 1"));
        assert!(at.as_millis() == 30 || at.as_millis() == 60, "{at:?}");
    }
    let failed = send(&router, charge("order-0", None)).await;
    assert_eq!(failed.error_type, Some("payment_failed"));
    let status = payments.status();
    assert_eq!((status.totals.error, status.totals.ok), (9, 0));
    assert_eq!(status.idempotency.entries, 0);
    // A failed charge paid nothing: its retry is a first payment, not a duplicate.
    send(&router, put_settings(r#"{"error_rate": 0}"#)).await;
    let retried = send(&router, charge("order-0", None)).await;
    assert_eq!(retried.status, StatusCode::OK);
    assert_eq!(retried.body["duplicate"], false);
}

#[tokio::test(start_paused = true)]
async fn raising_capacity_admits_waiting_charges_at_once() {
    let (payments, router) = serve(settings(1, 100));
    let start = Instant::now();
    let handles = charge_concurrently(&router, 4, start);
    settle_until(&payments, |s| s.in_service == 1 && s.waiting == 3).await;
    let raised = send(&router, put_settings(r#"{"capacity": 4}"#)).await;
    assert_eq!(raised.status, StatusCode::OK);
    assert_eq!(raised.body["capacity"], 4);
    // The waiters are admitted without time moving.
    settle_until(&payments, |s| s.in_service == 4 && s.waiting == 0).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(millis(&join_all(handles).await), [100, 100, 100, 100]);
}

#[tokio::test(start_paused = true)]
async fn lowering_capacity_in_use_lets_charges_finish_then_holds() {
    let (payments, router) = serve(settings(4, 100));
    let start = Instant::now();
    let mut handles = charge_concurrently(&router, 4, start);
    settle_until(&payments, |s| s.in_service == 4).await;
    let lowered = send(&router, put_settings(r#"{"capacity": 1}"#)).await;
    assert_eq!(lowered.status, StatusCode::OK);
    assert_eq!(payments.status().draining, 3);
    // Two more arrive: they wait for the one slot left, one after the other.
    handles.extend(charge_concurrently(&router, 2, start));
    settle_until(&payments, |s| s.waiting == 2).await;
    tokio::time::sleep_until(start + Duration::from_millis(150)).await;
    let status = payments.status();
    assert_eq!(
        (status.in_service, status.waiting, status.draining),
        (1, 1, 0)
    );
    assert_eq!(
        millis(&join_all(handles).await),
        [100, 100, 100, 100, 200, 300]
    );
    // And back up: the next two are served side by side.
    send(&router, put_settings(r#"{"capacity": 2}"#)).await;
    let again = Instant::now();
    assert_eq!(
        millis(&join_all(charge_concurrently(&router, 2, again)).await),
        [100, 100]
    );
}

#[tokio::test(start_paused = true)]
async fn a_repeated_idempotency_key_gets_the_first_payment() {
    let (payments, router) = serve(settings(2, 10));
    let first = send(&router, charge("order-1", Some("key-1"))).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["duplicate"], false);
    assert_eq!(first.body["order_id"], "order-1");
    let again = send(&router, charge("order-1", Some("key-1"))).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["payment_id"], first.body["payment_id"]);
    // Another key is another payment, even for the same order.
    let other = send(&router, charge("order-1", Some("key-2"))).await;
    assert_eq!(other.body["duplicate"], false);
    assert_ne!(other.body["payment_id"], first.body["payment_id"]);
    // Without the header the order id is the key.
    let plain = send(&router, charge("order-9", None)).await;
    let plain_again = send(&router, charge("order-9", None)).await;
    assert_eq!(plain_again.body["duplicate"], true);
    assert_eq!(plain_again.body["payment_id"], plain.body["payment_id"]);
    let totals = payments.status().totals;
    assert_eq!((totals.ok, totals.duplicate), (3, 2));
    // The same seed mints the same payment ids.
    let (_, twin) = serve(settings(2, 10));
    let twin_first = send(&twin, charge("order-1", Some("key-1"))).await;
    assert_eq!(twin_first.body["payment_id"], first.body["payment_id"]);
}

#[tokio::test(start_paused = true)]
async fn bad_requests_get_400_with_the_reason_and_never_reach_a_slot() {
    let (payments, router) = serve(settings(1, 10));
    let post = |content_type: Option<&str>, body: &str| {
        let mut request = Request::post("/charge");
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.body(Body::from(body.to_owned())).unwrap()
    };
    let json = Some("application/json");
    let cases = [
        (
            post(json, r#"{"order_id": 5, "amount_cents": 1}"#),
            "invalid type",
        ),
        (
            post(json, r#"{"order_id": "o"}"#),
            "missing field `amount_cents`",
        ),
        (
            post(json, r#"{"order_id": "o", "amount_cents": -1}"#),
            "invalid value",
        ),
        (post(json, "not json"), "expected"),
        (post(json, ""), "EOF"),
        (
            post(None, r#"{"order_id": "o", "amount_cents": 1}"#),
            "Content-Type",
        ),
        (
            post(json, r#"{"order_id": "", "amount_cents": 1}"#),
            "order_id must not be empty",
        ),
        (charge(&"x".repeat(300), None), "at most 256"),
        (charge("o", Some("")), "idempotency-key must not be empty"),
    ];
    let n = cases.len() as u64;
    for (request, reason) in cases {
        let answer = send(&router, request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{reason}");
        assert_eq!(answer.body["error"], "invalid", "{reason}");
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(reason), "{reason}: {message}");
    }
    let mut binary_key = charge("o", None);
    binary_key.headers_mut().insert(
        IDEMPOTENCY_KEY_HEADER,
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    );
    let answer = send(&router, binary_key).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body["message"],
        "idempotency-key must be visible ASCII"
    );
    let status = payments.status();
    assert_eq!(status.totals.invalid, n + 1);
    assert_eq!(status.latency.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn settings_are_shown_validated_and_changed_in_part() {
    let (payments, router) = serve(settings(2, 10));
    let shown = send(&router, get("/admin/payments")).await;
    assert_eq!(
        shown.body,
        json!({"capacity": 2, "latency_ms": 10, "jitter_ms": 0, "error_rate": 0.0, "queue_limit": 512})
    );
    let refused = send(&router, put_settings(r#"{"capacity": 0}"#)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body,
        json!({"error": "invalid", "message": "capacity = 0 is invalid: between 1 and 10000 concurrent service slots"})
    );
    let typo = send(&router, put_settings(r#"{"latency": 5}"#)).await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(
        typo.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `latency`")
    );
    let jitter = send(&router, put_settings(r#"{"jitter_ms": 11}"#)).await;
    assert_eq!(jitter.status, StatusCode::BAD_REQUEST);
    assert_eq!(payments.settings(), settings(2, 10));
    let changed = send(
        &router,
        put_settings(r#"{"latency_ms": 200, "jitter_ms": 20, "error_rate": 0.5}"#),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK);
    let expected = PaymentsSettings {
        jitter_ms: 20,
        error_rate: 0.5,
        ..settings(2, 200)
    };
    assert_eq!(changed.body, serde_json::to_value(expected).unwrap());
    assert_eq!(payments.settings(), expected);
}

#[tokio::test(start_paused = true)]
async fn status_reports_settings_occupancy_and_totals() {
    let (payments, router) = serve(settings(1, 100));
    let start = Instant::now();
    let handles = charge_concurrently(&router, 3, start);
    settle_until(&payments, |s| s.waiting == 2).await;
    let busy = send(&router, get("/status")).await;
    assert_eq!(busy.body["in_service"], 1);
    assert_eq!(busy.body["waiting"], 2);
    assert_eq!(busy.body["settings"]["capacity"], 1);
    join_all(handles).await;
    let idle = send(&router, get("/status")).await;
    assert_eq!(idle.body["in_service"], 0);
    assert_eq!(idle.body["totals"]["ok"], 3);
    assert_eq!(idle.body["idempotency"]["entries"], 3);
    assert_eq!(idle.body["latency"]["count"], 3);
    assert_eq!(idle.body["latency"]["mean_ms"], 200.0);
    assert_eq!(idle.body["latency"]["max_ms"], 300.0);
}

#[tokio::test(start_paused = true)]
async fn metrics_are_well_formed_prometheus_text() {
    let (payments, router) = serve(PaymentsSettings {
        queue_limit: 1,
        ..settings(1, 40)
    });
    // 2 ok, 1 overloaded, 1 duplicate, 1 invalid.
    join_all(charge_concurrently(&router, 3, Instant::now())).await;
    send(&router, charge("order-0", None)).await;
    send(&router, charge("", None)).await;
    let metrics = send(&router, get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = metrics.text;
    check_exposition(&text);
    for line in [
        "faultline_payments_requests_total{outcome=\"ok\"} 2",
        "faultline_payments_requests_total{outcome=\"error\"} 0",
        "faultline_payments_requests_total{outcome=\"overloaded\"} 1",
        "faultline_payments_requests_total{outcome=\"duplicate\"} 1",
        "faultline_payments_requests_total{outcome=\"invalid\"} 1",
        "faultline_payments_in_service 0",
        "faultline_payments_waiting 0",
        "faultline_payments_capacity 1",
        "faultline_payments_queue_limit 1",
        "faultline_payments_idempotency_keys 2",
        "faultline_payments_request_duration_seconds_bucket{le=\"0.05\"} 2",
        "faultline_payments_request_duration_seconds_bucket{le=\"0.1\"} 3",
        "faultline_payments_request_duration_seconds_bucket{le=\"+Inf\"} 3",
        "faultline_payments_request_duration_seconds_sum 0.160000",
        "faultline_payments_request_duration_seconds_count 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert_eq!(payments.status().totals.overloaded, 1);
    // promtool checks the live exposition in tests/services.rs.
}

/// The exposition's shape: HELP then TYPE once per family, before its samples; every
/// sample belongs to a declared family and has a numeric value; histogram buckets
/// ascend to `+Inf` = `_count`.
fn check_exposition(text: &str) {
    let mut declared: Vec<(String, String)> = Vec::new();
    let mut helped: Option<String> = None;
    let mut buckets: Vec<f64> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.is_empty(), "{line}");
            helped = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(helped.as_deref(), Some(name), "TYPE without HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(!declared.iter().any(|(n, _)| n == name), "twice: {line}");
            assert!(kind != "counter" || name.ends_with("_total"), "{line}");
            declared.push((name.to_owned(), kind.to_owned()));
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {line}"));
            assert!(value.is_finite() && value >= 0.0, "{line}");
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{line}"
            );
            let (family, kind) = declared.last().expect("a sample before any TYPE");
            if kind == "histogram" {
                let suffix = name.strip_prefix(family.as_str()).unwrap_or("");
                assert!(["_bucket", "_sum", "_count"].contains(&suffix), "{line}");
                if suffix == "_bucket" {
                    assert!(buckets.last().is_none_or(|&b| b <= value), "{line}");
                    buckets.push(value);
                }
                if suffix == "_count" {
                    assert_eq!(buckets.last(), Some(&value), "+Inf != count: {line}");
                }
            } else {
                assert_eq!(name, family, "{line}");
            }
            let labels = &series[name.len()..];
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "{line}"
            );
        }
    }
    assert!(text.contains("le=\"+Inf\""), "{text}");
}
