//! The breaker as a tower layer: fast rejection, recovery after the cool-down, the
//! classifier, cancelled calls, counters, and the telemetry it leaves on spans. Time is
//! tokio's paused clock.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tower::{Layer as _, Service, ServiceExt as _};
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::resilience::HttpFailures;
use crate::resilience::breaker::{ConsecutiveFailures, FailureRate};

/// What the fake dependency does with a call.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    Refused,
    Hang,
}

/// A dependency answering as each request asks; counts the calls that reach it.
fn dependency(
    calls: Arc<AtomicU32>,
) -> impl Service<Reply, Response = http::Response<()>, Error = BoxError, Future: Send> + Clone {
    tower::service_fn(move |reply: Reply| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let result: Result<http::Response<()>, BoxError> = match reply {
                Reply::Status(status) => {
                    let mut response = http::Response::new(());
                    *response.status_mut() = http::StatusCode::from_u16(status)?;
                    Ok(response)
                }
                Reply::Refused => Err("connection refused".into()),
                Reply::Hang => std::future::pending().await,
            };
            result
        }
    })
}

/// Trips after `failures` in a row; open 1 s; `trials` half-open trials.
fn breaker(failures: u32, trials: u32) -> Breaker {
    Breaker::new(
        "payments",
        BreakerSettings {
            consecutive_failures: ConsecutiveFailures {
                enabled: true,
                threshold: failures,
            },
            failure_rate: FailureRate {
                enabled: false,
                ..FailureRate::default()
            },
            open_ms: 1_000,
            half_open_trials: trials,
        },
    )
    .unwrap()
}

async fn call<S>(service: &mut S, reply: Reply) -> Result<http::Response<()>, BoxError>
where
    S: Service<Reply, Response = http::Response<()>, Error = BoxError>,
{
    service.ready().await?.call(reply).await
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_fast_and_recovers_after_the_cool_down() {
    let calls = Arc::new(AtomicU32::new(0));
    let b = breaker(3, 1);
    let mut service = b.layer(HttpFailures).layer(dependency(calls.clone()));
    // 4xx are the caller's fault: they never trip the breaker.
    for _ in 0..5 {
        assert_eq!(
            call(&mut service, Reply::Status(404))
                .await
                .unwrap()
                .status(),
            404
        );
    }
    call(&mut service, Reply::Refused).await.unwrap_err();
    call(&mut service, Reply::Status(503)).await.unwrap();
    assert_eq!(b.state(), BreakerState::Closed);
    call(&mut service, Reply::Status(500)).await.unwrap();
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(calls.load(Ordering::SeqCst), 8);

    tokio::time::advance(Duration::from_millis(250)).await;
    let started = tokio::time::Instant::now();
    let error = call(&mut service, Reply::Status(200)).await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO);
    let open = error.downcast_ref::<BreakerOpen>().expect("a BreakerOpen");
    assert_eq!(
        *open,
        BreakerOpen {
            name: "payments".into(),
            state: BreakerState::Open,
            retry_in: Some(Duration::from_millis(750)),
        }
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        8,
        "the dependency was not called"
    );

    tokio::time::advance(Duration::from_millis(750)).await;
    assert_eq!(
        call(&mut service, Reply::Status(200))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(b.state(), BreakerState::Closed);

    let s = b.snapshot();
    assert_eq!(
        s.transitions,
        StateCounts {
            closed: 1,
            open: 1,
            half_open: 1
        }
    );
    assert_eq!(
        s.calls,
        BreakerCalls {
            succeeded: 6,
            failed: 3,
            rejected: 1
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_trial_call_dropped_before_it_ends_frees_its_slot() {
    let calls = Arc::new(AtomicU32::new(0));
    let b = breaker(1, 1);
    let mut service = b.layer(HttpFailures).layer(dependency(calls.clone()));
    call(&mut service, Reply::Refused).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(1)).await;
    // The only trial hangs, and its caller gives up on it.
    let hung =
        tokio::time::timeout(Duration::from_millis(10), call(&mut service, Reply::Hang)).await;
    assert!(hung.is_err());
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // Its slot is free again: the next call is the trial, and it closes the breaker.
    call(&mut service, Reply::Status(204)).await.unwrap();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().calls.rejected, 0);
}

#[tokio::test(start_paused = true)]
async fn settings_change_through_the_handle_and_bad_ones_are_refused() {
    let b = breaker(3, 1);
    let mut settings = b.settings();
    settings.open_ms = 0;
    let error = b.update(settings.clone()).unwrap_err();
    assert!(
        error.to_string().starts_with("open_ms = 0 is invalid"),
        "{error}"
    );
    settings.open_ms = 10;
    settings.consecutive_failures.threshold = 1;
    b.update(settings).unwrap();
    let mut service = b.layer(HttpFailures).layer(dependency(Arc::default()));
    call(&mut service, Reply::Refused).await.unwrap_err();
    assert_eq!(b.state(), BreakerState::Open);
    tokio::time::advance(Duration::from_millis(10)).await;
    call(&mut service, Reply::Status(200)).await.unwrap();
    assert_eq!(b.state(), BreakerState::Closed);
}

/// An exporter that keeps what it is given.
#[derive(Debug, Clone, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

/// `(state, previous_state, reason)` of each `circuit_breaker.state_change` on `span`.
fn state_changes(span: &SpanData) -> Vec<(String, String, String)> {
    span.events
        .events
        .iter()
        .filter(|e| e.name == "circuit_breaker.state_change")
        .map(|e| {
            let get = |key| attribute(&e.attributes, key).map(|v| v.as_str().into_owned());
            assert_eq!(get("circuit_breaker.name").as_deref(), Some("payments"));
            (
                get("circuit_breaker.state").unwrap(),
                get("circuit_breaker.previous_state").unwrap(),
                get("circuit_breaker.reason").unwrap(),
            )
        })
        .collect()
}

fn strings(changes: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    changes
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn transitions_are_span_events_and_spans_name_the_breaker_and_the_state_met() {
    let exported = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exported.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let b = breaker(2, 1);
    let service = b.layer(HttpFailures).layer(dependency(Arc::default()));
    let traced = |name: &'static str, replies: Vec<Reply>| {
        let mut service = service.clone();
        async move {
            for reply in replies {
                let _ = call(&mut service, reply).await;
            }
        }
        .instrument(tracing::info_span!("job", otel.name = name))
    };
    traced("tripping", vec![Reply::Refused, Reply::Status(502)]).await;
    traced("refused", vec![Reply::Status(200), Reply::Status(200)]).await;
    tokio::time::advance(Duration::from_secs(1)).await;
    traced("recovering", vec![Reply::Status(200)]).await;
    traced("quiet", vec![Reply::Status(200)]).await;
    provider.force_flush().unwrap();

    let spans = exported.0.lock().unwrap();
    let span = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
    // Each span carries the attributes once, with the state its first call met.
    let attributes = |name: &str| {
        let span = span(name);
        for key in ["circuit_breaker.name", "circuit_breaker.state"] {
            let count = span
                .attributes
                .iter()
                .filter(|kv| kv.key.as_str() == key)
                .count();
            assert_eq!(count, 1, "{key} on {name}");
        }
        let get = |key| {
            attribute(&span.attributes, key)
                .unwrap()
                .as_str()
                .into_owned()
        };
        (get("circuit_breaker.name"), get("circuit_breaker.state"))
    };
    let named = |state: &str| ("payments".to_owned(), state.to_owned());

    assert_eq!(
        state_changes(span("tripping")),
        strings(&[("open", "closed", "consecutive_failures")])
    );
    assert_eq!(attributes("tripping"), named("closed"));
    assert!(state_changes(span("refused")).is_empty());
    assert_eq!(attributes("refused"), named("open"));
    assert_eq!(
        state_changes(span("recovering")),
        strings(&[
            ("half_open", "open", "cool_down_elapsed"),
            ("closed", "half_open", "trials_succeeded"),
        ])
    );
    assert_eq!(attributes("recovering"), named("half_open"));
    assert!(state_changes(span("quiet")).is_empty());
    assert_eq!(attributes("quiet"), named("closed"));
    assert_eq!(b.snapshot().calls.rejected, 2);
}
