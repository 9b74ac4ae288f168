//! The retry policy as tower layers over a fake dependency: resend counts, backoff,
//! timeouts, the budget, and settings switched while running. Time is tokio's paused
//! clock, so elapsed times are exact.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer as _, Service, ServiceBuilder, ServiceExt as _};

use super::*;
use crate::resilience::testing::{Behaviour, Dependency, Job};
use crate::resilience::{
    AttemptTimedOut, BoxError, BreakerOpen, BreakerState, ErrorsOnly, HttpFailures,
};

const MS: Duration = Duration::from_millis(1);

/// `max_attempts`; backoff 100 ms doubling, capped at 1 s, no jitter; no timeout; no budget.
fn settings(max_attempts: u32) -> RetrySettings {
    RetrySettings {
        max_attempts,
        timeout: TimeoutSettings {
            enabled: false,
            after_ms: 500,
        },
        backoff: BackoffSettings {
            enabled: true,
            base_ms: 100,
            cap_ms: 1_000,
            jitter: false,
        },
        budget: BudgetSettings {
            enabled: false,
            ..BudgetSettings::default()
        },
    }
}

fn stack(
    policy: &RetryPolicy,
    dependency: &Dependency,
) -> impl Service<Job, Response = u32, Error = BoxError> + Clone {
    ServiceBuilder::new()
        .layer(policy.layer(ErrorsOnly))
        .layer(policy.timeout_layer())
        .service(dependency.service())
}

/// Calls job `id`; the result and how long it took.
async fn call<S>(service: &S, id: u32) -> (Result<u32, BoxError>, Duration)
where
    S: Service<Job, Response = u32, Error = BoxError> + Clone,
{
    let started = Instant::now();
    let result = service.clone().oneshot(Job::new(id)).await;
    (result, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn failed_attempts_are_retried_with_their_resend_count_after_exponential_backoff() {
    let policy = RetryPolicy::new("payments", settings(3)).unwrap();
    let dependency = Dependency::new(Behaviour::FailUntilResend(2));
    let (result, elapsed) = call(&stack(&policy, &dependency), 7).await;
    assert_eq!(result.unwrap(), 7);
    assert_eq!(dependency.seen(), [(7, 0), (7, 1), (7, 2)]);
    assert_eq!(elapsed, 300 * MS, "100 ms, then 200 ms");
    let s = policy.snapshot();
    assert_eq!(
        (s.requests, s.attempts, s.retries, s.attempts_exhausted),
        (1, 3, 2, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_attempt_s_error_is_returned_when_attempts_run_out() {
    let policy = RetryPolicy::new("payments", settings(3)).unwrap();
    let dependency = Dependency::new(Behaviour::Fail);
    let (result, _) = call(&stack(&policy, &dependency), 1).await;
    assert_eq!(result.unwrap_err().to_string(), "job 1 failed");
    assert_eq!(dependency.calls(), 3);
    let s = policy.snapshot();
    assert_eq!((s.attempts, s.retries, s.attempts_exhausted), (3, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn backoff_jitter_and_max_attempts_switch_while_running() {
    let policy = RetryPolicy::seeded("payments", settings(4), 42).unwrap();
    let dependency = Dependency::new(Behaviour::Fail);
    let service = stack(&policy, &dependency);
    assert_eq!(call(&service, 1).await.1, 700 * MS, "100 + 200 + 400 ms");

    let mut s = policy.settings();
    s.backoff.enabled = false;
    policy.update(s).unwrap();
    assert_eq!(
        call(&service, 2).await.1,
        Duration::ZERO,
        "a storm: retries at once"
    );
    assert_eq!(dependency.calls(), 8);

    s.backoff.enabled = true;
    s.backoff.jitter = true;
    policy.update(s).unwrap();
    let jittered = call(&service, 3).await.1;
    assert!(
        jittered > Duration::ZERO && jittered < 700 * MS,
        "{jittered:?}"
    );

    s.max_attempts = 1;
    policy.update(s).unwrap();
    call(&service, 4).await.0.unwrap_err();
    assert_eq!(dependency.calls(), 13);
    let snapshot = policy.snapshot();
    assert_eq!(
        (
            snapshot.requests,
            snapshot.attempts,
            snapshot.attempts_exhausted
        ),
        (4, 13, 4)
    );
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_cuts_slow_attempts_and_can_be_switched_off() {
    let mut s = settings(2);
    s.timeout.enabled = true;
    s.backoff.enabled = false;
    let policy = RetryPolicy::new("payments", s).unwrap();
    let dependency = Dependency::new(Behaviour::Slow(Duration::from_secs(2)));
    let service = stack(&policy, &dependency);
    let (result, elapsed) = call(&service, 1).await;
    let error = result.unwrap_err();
    assert_eq!(
        error.downcast_ref::<AttemptTimedOut>(),
        Some(&AttemptTimedOut { after: 500 * MS })
    );
    assert_eq!(elapsed, 1_000 * MS, "two attempts of 500 ms");
    assert_eq!(policy.snapshot().timeouts, 2);

    s.timeout.enabled = false;
    policy.update(s).unwrap();
    let (result, elapsed) = call(&service, 2).await;
    assert_eq!(result.unwrap(), 2);
    assert_eq!(elapsed, Duration::from_secs(2));
    assert_eq!(policy.snapshot().timeouts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_spent_budget_refuses_retries_until_it_refills_or_is_switched_off() {
    let mut s = settings(5);
    s.backoff.enabled = false;
    // Only the minimum: 1 retry per second over a 1 s window.
    s.budget = BudgetSettings {
        enabled: true,
        ratio: 0.0,
        min_per_sec: 1,
        window_secs: 1,
    };
    let policy = RetryPolicy::new("payments", s).unwrap();
    let dependency = Dependency::new(Behaviour::Fail);
    let service = stack(&policy, &dependency);
    call(&service, 1).await.0.unwrap_err();
    assert_eq!(dependency.calls(), 2, "one retry, then the budget is spent");
    call(&service, 2).await.0.unwrap_err();
    assert_eq!(dependency.calls(), 3, "no retry at all");
    assert_eq!(policy.snapshot().budget_exhausted, 2);

    tokio::time::advance(Duration::from_secs(2)).await;
    call(&service, 3).await.0.unwrap_err();
    assert_eq!(
        dependency.calls(),
        5,
        "the window moved on: one retry again"
    );

    s.budget.enabled = false;
    policy.update(s).unwrap();
    call(&service, 4).await.0.unwrap_err();
    assert_eq!(dependency.calls(), 10, "no budget: all 5 attempts");
    let snapshot = policy.snapshot();
    assert_eq!(
        (
            snapshot.requests,
            snapshot.attempts,
            snapshot.retries,
            snapshot.budget_exhausted
        ),
        (4, 10, 6, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn the_budget_earns_retries_as_a_ratio_of_calls() {
    let mut s = settings(5);
    s.backoff.enabled = false;
    s.budget = BudgetSettings {
        enabled: true,
        ratio: 0.5,
        min_per_sec: 0,
        window_secs: 10,
    };
    let policy = RetryPolicy::new("payments", s).unwrap();
    let dependency = Dependency::new(Behaviour::Fail);
    let service = stack(&policy, &dependency);
    for id in 0..10 {
        call(&service, id).await.0.unwrap_err();
    }
    // Every call deposits one token and a retry costs two: 5 retries for 10 calls.
    let snapshot = policy.snapshot();
    assert_eq!(
        (snapshot.requests, snapshot.retries, snapshot.attempts),
        (10, 5, 15)
    );
}

#[tokio::test(start_paused = true)]
async fn http_requests_tell_the_callee_their_resend_count() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let dependency = {
        let seen = seen.clone();
        tower::service_fn(move |request: http::Request<String>| {
            let header = request
                .headers()
                .get(RESEND_COUNT_HEADER)
                .map(|v| v.to_str().unwrap().to_owned());
            let extension = request.extensions().get::<ResendCount>().copied();
            let mut seen = seen.lock().unwrap();
            seen.push((header, extension));
            let status = if seen.len() < 3 { 503 } else { 200 };
            let mut response = http::Response::new(());
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            std::future::ready(Ok::<_, BoxError>(response))
        })
    };
    let policy = RetryPolicy::new("payments", settings(3)).unwrap();
    let service = policy.layer(HttpFailures).layer(dependency);
    let request = http::Request::post("http://127.0.0.1:9/pay")
        .body("order=1".to_owned())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (None, None),
            (Some("1".to_owned()), Some(ResendCount(1))),
            (Some("2".to_owned()), Some(ResendCount(2))),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_guard_s_refusal_is_not_retried() {
    let refusing = tower::service_fn(|_job: Job| {
        let open = BreakerOpen {
            name: "payments".into(),
            state: BreakerState::Open,
            retry_in: None,
        };
        std::future::ready(Err::<u32, BoxError>(open.into()))
    });
    let policy = RetryPolicy::new("payments", settings(5)).unwrap();
    let error = policy
        .layer(ErrorsOnly)
        .layer(refusing)
        .oneshot(Job::new(1))
        .await
        .unwrap_err();
    assert!(error.is::<BreakerOpen>());
    let s = policy.snapshot();
    assert_eq!((s.attempts, s.retries), (1, 0));
}

#[test]
fn bad_settings_are_refused_and_leave_the_policy_as_it_was() {
    let policy = RetryPolicy::new("payments", settings(3)).unwrap();
    let mut bad = settings(3);
    bad.max_attempts = 0;
    assert!(policy.update(bad).is_err());
    assert_eq!(policy.settings(), settings(3));
    assert!(RetryPolicy::new("payments", bad).is_err());
}
