//! The whole stack over a fake dependency: retries feeding the breaker, the breaker
//! ending retries, timeouts as failures, a retry storm switched on and off, and the
//! settings and metrics of all three policies. Time is tokio's paused clock.

use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer as _, Service, ServiceExt as _};

use super::*;
use crate::resilience::breaker::{BreakerCalls, StateCounts};
use crate::resilience::testing::{Behaviour, Dependency, Job};
use crate::resilience::{
    AttemptTimedOut, BoxError, BreakerOpen, BreakerState, BulkheadFull, ErrorsOnly,
};

const MS: Duration = Duration::from_millis(1);

/// Breaker: 5 failures in a row, open 10 s, 1 trial. Retry: 3 attempts, backoff 100 ms
/// doubling without jitter, 1 s timeout, no budget. Bulkhead: 4.
fn settings() -> ResilienceSettings {
    let mut s = ResilienceSettings::default();
    s.breaker.consecutive_failures.threshold = 5;
    s.breaker.failure_rate.enabled = false;
    s.breaker.open_ms = 10_000;
    s.breaker.half_open_trials = 1;
    s.retry.max_attempts = 3;
    s.retry.backoff.base_ms = 100;
    s.retry.backoff.jitter = false;
    s.retry.budget.enabled = false;
    s.bulkhead.max_concurrent = 4;
    s
}

async fn call<S>(service: &S, id: u32) -> (Result<u32, BoxError>, Duration)
where
    S: Service<Job, Response = u32, Error = BoxError> + Clone,
{
    let started = Instant::now();
    let result = service.clone().oneshot(Job::new(id)).await;
    (result, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn retries_open_the_breaker_which_then_rejects_fast_until_it_recovers() {
    let r = Resilience::new("payments", settings()).unwrap();
    let dependency = Dependency::new(Behaviour::Fail);
    let service = r.layer(ErrorsOnly).layer(dependency.service());

    // Call 1: three failed attempts, 100 + 200 ms apart.
    let (result, elapsed) = call(&service, 1).await;
    assert_eq!(result.unwrap_err().to_string(), "job 1 failed");
    assert_eq!(elapsed, 300 * MS);
    // Call 2: failures 4 and 5 open the breaker; its third attempt is refused, and the
    // refusal is what the caller gets.
    let (result, _) = call(&service, 2).await;
    assert!(result.unwrap_err().is::<BreakerOpen>());
    assert_eq!(r.breaker.state(), BreakerState::Open);
    assert_eq!(dependency.seen(), [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]);
    // Call 3: refused at once, not retried, the dependency untouched.
    let (result, elapsed) = call(&service, 3).await;
    assert!(result.unwrap_err().is::<BreakerOpen>());
    assert_eq!(elapsed, Duration::ZERO);
    assert_eq!(dependency.calls(), 5);

    let retry = r.retry.snapshot();
    assert_eq!(
        (
            retry.requests,
            retry.attempts,
            retry.retries,
            retry.attempts_exhausted
        ),
        (3, 7, 4, 1)
    );

    // The dependency recovers; after the cool-down one trial closes the breaker.
    dependency.set(Behaviour::Succeed);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(call(&service, 4).await.0.unwrap(), 4);
    assert_eq!(r.breaker.state(), BreakerState::Closed);
    let breaker = r.breaker.snapshot();
    assert_eq!(
        breaker.transitions,
        StateCounts {
            closed: 1,
            open: 1,
            half_open: 1
        }
    );
    assert_eq!(
        breaker.calls,
        BreakerCalls {
            succeeded: 1,
            failed: 5,
            rejected: 2
        }
    );
    assert_eq!(r.bulkhead.snapshot().in_use, 0);
}

#[tokio::test(start_paused = true)]
async fn timed_out_attempts_are_failures_the_breaker_counts() {
    let mut s = settings();
    s.breaker.consecutive_failures.threshold = 3;
    s.retry.timeout.after_ms = 100;
    s.retry.backoff.enabled = false;
    let r = Resilience::new("payments", s).unwrap();
    let dependency = Dependency::new(Behaviour::Slow(Duration::from_secs(5)));
    let service = r.layer(ErrorsOnly).layer(dependency.service());
    let (result, elapsed) = call(&service, 1).await;
    assert!(result.unwrap_err().is::<AttemptTimedOut>());
    assert_eq!(elapsed, 300 * MS);
    assert_eq!(r.retry.snapshot().timeouts, 3);
    assert_eq!(r.breaker.snapshot().calls.failed, 3);
    assert_eq!(r.breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn a_retry_storm_is_switched_on_and_calmed_while_running() {
    let mut s = settings();
    // No breaker, so only the retry settings shape the traffic.
    s.breaker.consecutive_failures.enabled = false;
    s.retry.budget = crate::resilience::retry::BudgetSettings {
        enabled: true,
        ratio: 0.2,
        min_per_sec: 0,
        window_secs: 10,
    };
    let r = Resilience::new("payments", s.clone()).unwrap();
    let dependency = Dependency::new(Behaviour::Fail);
    let service = r.layer(ErrorsOnly).layer(dependency.service());

    // The storm: 5 attempts per call, at once, no budget.
    let mut storm = s.clone();
    storm.retry.max_attempts = 5;
    storm.retry.backoff.enabled = false;
    storm.retry.budget.enabled = false;
    r.update(storm).unwrap();
    for id in 0..10 {
        assert_eq!(call(&service, id).await.1, Duration::ZERO);
    }
    assert_eq!(dependency.calls(), 50, "amplification 5");

    // Calm: the budget back on (it counted the storm's calls). 20 calls in the window
    // at 0.2 retries per call: 4 retries for the next 10 calls, the rest refused.
    r.update(s).unwrap();
    for id in 10..20 {
        call(&service, id).await.0.unwrap_err();
    }
    assert_eq!(dependency.calls(), 50 + 10 + 4, "amplification 1.4");
    let retry = r.retry.snapshot();
    assert_eq!(
        (retry.requests, retry.attempts, retry.retries),
        (20, 64, 40 + 4)
    );
    assert_eq!(retry.budget_exhausted, 9);
}

#[tokio::test(start_paused = true)]
async fn the_bulkhead_bounds_calls_in_progress_across_their_retries() {
    let mut s = settings();
    s.bulkhead.max_concurrent = 1;
    let r = Resilience::new("payments", s).unwrap();
    let dependency = Dependency::new(Behaviour::FailUntilResend(1));
    let mut service = r.layer(ErrorsOnly).layer(dependency.service());
    // The first call is between its attempts (in backoff) when the second arrives.
    let first = tokio::spawn(service.ready().await.unwrap().call(Job::new(1)));
    tokio::time::sleep(50 * MS).await;
    let (result, elapsed) = call(&service, 2).await;
    let full = result.unwrap_err();
    assert_eq!(
        full.downcast_ref::<BulkheadFull>().map(|f| f.limit),
        Some(1)
    );
    assert_eq!(elapsed, Duration::ZERO);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    assert_eq!(call(&service, 3).await.0.unwrap(), 3);
    let bulkhead = r.bulkhead.snapshot();
    assert_eq!(
        (bulkhead.admitted, bulkhead.rejected, bulkhead.in_use),
        (2, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn all_settings_go_through_one_validated_document() {
    let r = Resilience::new("payments", settings()).unwrap();
    let bad = ResilienceSettings::from_json(br#"{"breaker": {"failure_rate": {"threshold": 2}}}"#);
    assert_eq!(
        bad.unwrap_err().to_string(),
        "failure_rate.threshold = 2 is invalid: a failure rate above 0 and at most 1 (0.5 = half the calls fail)"
    );
    // An invalid part changes no part.
    let mut half_bad = settings();
    half_bad.breaker.open_ms = 1;
    half_bad.bulkhead.max_concurrent = 0;
    assert!(r.update(half_bad).is_err());
    assert_eq!(r.settings(), settings());

    let good = ResilienceSettings::from_json(
        br#"{"retry": {"max_attempts": 7, "budget": {"enabled": false}}, "bulkhead": {"max_concurrent": 2}}"#,
    )
    .unwrap();
    r.update(good.clone()).unwrap();
    assert_eq!(r.settings(), good);
    assert_eq!(r.retry.settings().max_attempts, 7);
    assert_eq!(r.bulkhead.snapshot().limit, 2);
}

#[tokio::test(start_paused = true)]
async fn every_policy_s_metrics_render_once_per_family() {
    let payments = Resilience::new("payments", settings()).unwrap();
    let ledger = Resilience::new("ledger", settings()).unwrap();
    let mut out = String::new();
    render_resilience(
        &mut out,
        &[("node", "node-1")],
        &[payments.snapshot(), ledger.snapshot()],
    );
    for family in [
        "faultline_circuit_breaker_state",
        "faultline_circuit_breaker_transitions_total",
        "faultline_circuit_breaker_calls_total",
        "faultline_retry_attempts_total",
        "faultline_retry_budget_exhausted_total",
        "faultline_bulkhead_in_use",
        "faultline_bulkhead_calls_total",
    ] {
        let header = format!("# TYPE {family} ");
        assert_eq!(out.matches(&header).count(), 1, "{family}");
    }
    assert!(out.contains(
        r#"faultline_circuit_breaker_state{node="node-1",name="ledger",state="closed"} 1"#
    ));
    assert!(out.contains(r#"faultline_bulkhead_limit{node="node-1",name="payments"} 4"#));
    let json = serde_json::to_value(payments.snapshot()).unwrap();
    assert_eq!(json["breaker"]["state"], "closed");
    assert_eq!(json["retry"]["settings"]["max_attempts"], 3);
}
