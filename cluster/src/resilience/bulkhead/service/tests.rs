//! The bulkhead's limit, bounded wait and runtime changes, on tokio's paused clock, and
//! as a tower layer over `tower_test` mocks.

use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer as _, Service as _, ServiceExt as _};

use super::*;

fn bulkhead(max_concurrent: u32, max_wait_ms: u64) -> Bulkhead {
    Bulkhead::new(
        "payments",
        BulkheadSettings {
            max_concurrent,
            max_wait_ms,
        },
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_refuses_at_once_and_a_release_frees_a_slot() {
    let b = bulkhead(2, 0);
    let first = b.acquire().await.unwrap();
    let _second = b.acquire().await.unwrap();
    let started = Instant::now();
    let full = b.acquire().await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(
        full,
        BulkheadFull {
            name: "payments".into(),
            limit: 2,
            waited: Duration::ZERO
        }
    );
    assert_eq!(b.snapshot().in_use, 2);
    drop(first);
    assert!(b.try_acquire().is_some());
    let s = b.snapshot();
    assert_eq!((s.in_use, s.admitted, s.rejected), (1, 3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_is_refused_after_the_bounded_wait() {
    let b = bulkhead(1, 100);
    let _held = b.acquire().await.unwrap();
    let started = Instant::now();
    let full = b.acquire().await.unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    assert_eq!(full.waited, Duration::from_millis(100));
    assert_eq!(b.snapshot().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_takes_the_slot_released_during_its_wait() {
    let b = bulkhead(1, 100);
    let held = b.acquire().await.unwrap();
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(40)).await;
        drop(held);
    });
    let started = Instant::now();
    let permit = b.acquire().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(40));
    releaser.await.unwrap();
    assert_eq!(b.snapshot().in_use, 1);
    drop(permit);
    assert_eq!(b.snapshot().in_use, 0);
}

#[tokio::test(start_paused = true)]
async fn the_limit_changes_while_calls_are_in_flight() {
    let b = bulkhead(1, 1_000);
    let first = b.acquire().await.unwrap();
    // Raising the limit wakes a waiting call at once.
    let raiser = {
        let b = b.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            b.update(BulkheadSettings {
                max_concurrent: 2,
                max_wait_ms: 0,
            })
            .unwrap();
        })
    };
    let started = Instant::now();
    let second = b.acquire().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(10));
    raiser.await.unwrap();
    // Lowering it keeps both calls in flight and refuses new ones until enough finish.
    b.update(BulkheadSettings {
        max_concurrent: 1,
        max_wait_ms: 0,
    })
    .unwrap();
    assert_eq!(b.snapshot().in_use, 2);
    assert!(b.try_acquire().is_none());
    drop(first);
    assert!(b.try_acquire().is_none(), "1 in use, limit 1");
    drop(second);
    assert!(b.try_acquire().is_some());
    assert!(
        b.update(BulkheadSettings {
            max_concurrent: 0,
            max_wait_ms: 0
        })
        .is_err()
    );
    assert_eq!(b.settings().max_concurrent, 1);
}

#[tokio::test]
async fn as_a_layer_it_refuses_the_call_beyond_the_limit_without_calling_the_service() {
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    let b = bulkhead(2, 0);
    let mut service = b.layer().layer(mock);
    let one = service.ready().await.unwrap().call(1);
    let two = service.ready().await.unwrap().call(2);
    let three = service.ready().await.unwrap().call(3);
    let refused = three.await.unwrap_err();
    assert!(refused.is::<BulkheadFull>(), "{refused}");
    let (request, reply) = handle.next_request().await.unwrap();
    assert_eq!(request, 1);
    reply.send_response(10);
    assert_eq!(one.await.unwrap(), 10);
    // The slot of call 1 is free again.
    let four = service.ready().await.unwrap().call(4);
    let (request, reply) = handle.next_request().await.unwrap();
    assert_eq!(request, 2);
    reply.send_response(20);
    let (request, reply) = handle.next_request().await.unwrap();
    assert_eq!(request, 4);
    reply.send_response(40);
    assert_eq!((two.await.unwrap(), four.await.unwrap()), (20, 40));
    let s = b.snapshot();
    assert_eq!((s.in_use, s.admitted, s.rejected), (0, 3, 1));
}

#[tokio::test(start_paused = true)]
async fn as_a_layer_a_call_waits_for_a_slot_within_the_bound() {
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    let b = bulkhead(1, 500);
    let mut service = b.layer().layer(mock);
    let one = service.ready().await.unwrap().call(1);
    let two = tokio::spawn(service.ready().await.unwrap().call(2));
    let (_, reply) = handle.next_request().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    reply.send_response(10);
    assert_eq!(one.await.unwrap(), 10);
    let (request, reply) = handle.next_request().await.unwrap();
    assert_eq!(request, 2);
    reply.send_response(20);
    assert_eq!(two.await.unwrap().unwrap(), 20);
    assert_eq!(b.snapshot().rejected, 0);
}
