//! The TUI's sources as real tasks: a capture replayed, OTLP over HTTP, a bad file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use faultline_tui::app::Action;
use faultline_tui::source::{self, Inputs};
use tokio::sync::mpsc;

async fn next(rx: &mut mpsc::Receiver<Action>) -> Action {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("an action within 30 s")
        .expect("the source is still there")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_hands_over_every_span_in_end_order_pauses_and_finishes() {
    let (inputs, mut rx) = Inputs::channel();
    let path = common::samples().join("leader-crash.jsonl.zst");
    let steer = source::replay(inputs, path, 64.0);
    let (mut spans, mut last_end, mut paused_once) = (0usize, 0u64, false);
    loop {
        match next(&mut rx).await {
            Action::Spans(batch) => {
                for span in &batch {
                    assert!(span.end_ns >= last_end, "spans arrive in end order");
                    last_end = span.end_ns;
                }
                spans += batch.len();
            }
            Action::Replay(state) if state.finished => break,
            Action::Replay(state) => {
                assert!(state.position_ns >= last_end);
                if !paused_once && spans > 1000 {
                    paused_once = true;
                    steer.send_modify(|c| c.paused = true);
                    // Paused: at most the turn in progress arrives, then nothing.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    while rx.try_recv().is_ok() {}
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    assert!(rx.try_recv().is_err(), "nothing arrives while paused");
                    steer.send_modify(|c| c.paused = false);
                }
            }
            Action::Message(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(paused_once);
    let labels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::samples().join("leader-crash.labels.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        spans as u64,
        labels["spans"].as_u64().unwrap(),
        "every span, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_capture_becomes_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "these are not spans\n").unwrap();
    let (inputs, mut rx) = Inputs::channel();
    let _steer = source::replay(inputs, path, 1.0);
    match next(&mut rx).await {
        Action::Message(text) => assert!(text.contains("notes.txt"), "{text}"),
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_over_http_arrives_as_spans() {
    let (inputs, mut rx) = Inputs::channel();
    let serving = source::otlp(inputs, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let body = serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "GET /cart", "kind": 2,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"
        }]}]
    }]});
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{}/v1/traces", serving.addr))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    match next(&mut rx).await {
        Action::Spans(spans) => {
            assert_eq!(spans.len(), 1);
            assert_eq!(spans[0].service_name(), "shop");
        }
        other => panic!("expected spans, got {other:?}"),
    }
}
