//! The playbooks' remedies (`faultline_cluster::remedies`) against a real demo cluster:
//! each one is applied after the damage it undoes, and its effect is read back from
//! the processes' own admin APIs; bad targets are refused with a clear error. (The
//! end-to-end runs in tests/playbooks.rs show three of them healing real incidents.)
//!
//! One demo cluster at a time (2 cores): the test holds [`ONE_DEMO_AT_A_TIME`].
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::faultline;
use faultline_cluster::remedies;
use faultline_cluster::supervisor::Cluster;
use reqwest::Method;
use serde_json::{Value, json};

static ONE_DEMO_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

async fn get(http: &reqwest::Client, url: String) -> Value {
    Cluster::admin(http, Method::GET, url, None).await.unwrap()
}

async fn put(http: &reqwest::Client, url: String, body: Value) {
    Cluster::admin(http, Method::PUT, url, Some(body))
        .await
        .unwrap();
}

#[test]
fn each_remedy_undoes_its_damage_on_the_real_processes() {
    let _one = ONE_DEMO_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("demo");
    let _down = common::DemoDown(dir.clone());
    let output = faultline()
        .args(["demo", "up", "--rate", "10", "--no-record", "--dir"])
        .arg(&dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "demo up: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut cluster = Cluster::attach(&dir, env!("CARGO_BIN_EXE_faultline").into()).unwrap();
    let http = common::client(Duration::from_secs(10));
    let runtime = common::runtime();
    let members = cluster.file().members.clone();
    let workers: Vec<String> = members
        .iter()
        .map(|m| m.worker.as_ref().unwrap().addr.to_string())
        .collect();

    runtime.block_on(async {
        // A slow disk and a skewed clock on node-2, put right.
        let faults = format!("http://{}/admin/faults", members[1].api);
        put(
            &http,
            faults.clone(),
            json!({"disk_delay_ms": 300, "clock_offset_ms": 2000}),
        )
        .await;
        let said = remedies::clear_node_faults(&cluster, &http, "node-2")
            .await
            .unwrap();
        assert!(said.contains("node-2"), "{said}");
        let now = get(&http, faults).await;
        assert_eq!(
            (
                now["disk_delay_ms"].as_u64(),
                now["clock_offset_ms"].as_i64()
            ),
            (Some(0), Some(0)),
            "{now}"
        );

        // R=1, W=1 everywhere, back to quorums.
        for m in &members {
            put(
                &http,
                format!("http://{}/admin/quorum", m.api),
                json!({"r": 1, "w": 1}),
            )
            .await;
        }
        remedies::restore_quorum(&cluster, &http).await.unwrap();
        for m in &members {
            let quorum = get(&http, format!("http://{}/admin/quorum", m.api)).await;
            assert_eq!(
                (quorum["r"].as_u64(), quorum["w"].as_u64()),
                (Some(2), Some(2)),
                "{}: {quorum}",
                m.name
            );
        }

        // The retry-storm settings (6 attempts, no backoff, budget or breaker), bounded.
        for worker in &workers {
            let url = format!("http://{worker}/admin/resilience");
            let mut storm = get(&http, url.clone()).await;
            storm["retry"]["max_attempts"] = json!(6);
            storm["retry"]["backoff"]["enabled"] = json!(false);
            storm["retry"]["backoff"]["jitter"] = json!(false);
            storm["retry"]["budget"]["enabled"] = json!(false);
            storm["breaker"]["consecutive_failures"]["enabled"] = json!(false);
            storm["breaker"]["failure_rate"]["enabled"] = json!(false);
            put(&http, url, storm).await;
        }
        remedies::sane_retries(&cluster, &http).await.unwrap();
        remedies::tighten_breaker(&cluster, &http).await.unwrap();
        for worker in &workers {
            let s = get(&http, format!("http://{worker}/admin/resilience")).await;
            assert_eq!(s["retry"]["max_attempts"], 3, "{s}");
            assert_eq!(s["retry"]["backoff"]["enabled"], true, "{s}");
            assert_eq!(s["retry"]["backoff"]["jitter"], true, "{s}");
            assert_eq!(s["retry"]["budget"]["enabled"], true, "{s}");
            assert_eq!(
                s["breaker"]["consecutive_failures"],
                json!({"enabled": true, "threshold": 3}),
                "{s}"
            );
            assert_eq!(s["breaker"]["failure_rate"]["enabled"], true, "{s}");
            assert_eq!(s["breaker"]["failure_rate"]["threshold"], 0.5, "{s}");
        }

        // Paused, slowed workers receive again at full speed.
        for worker in &workers {
            put(
                &http,
                format!("http://{worker}/admin/worker"),
                json!({"paused": true, "processing_delay_ms": 3000}),
            )
            .await;
        }
        remedies::restore_workers(&cluster, &http).await.unwrap();
        for worker in &workers {
            let status = get(&http, format!("http://{worker}/status")).await;
            assert_eq!(
                (
                    status["paused"].as_bool(),
                    status["processing_delay_ms"].as_u64()
                ),
                (Some(false), Some(0)),
                "{status}"
            );
        }

        // A toxic on every agent, all removed.
        for m in &members {
            Cluster::admin(
                &http,
                Method::POST,
                format!("http://{}/toxics", m.agent_admin),
                Some(json!({"type": "latency", "latency_ms": 50})),
            )
            .await
            .unwrap();
        }
        remedies::clear_network_faults(&cluster, &http)
            .await
            .unwrap();
        for m in &members {
            let toxics = get(&http, format!("http://{}/toxics", m.agent_admin)).await;
            assert_eq!(toxics["toxics"], json!([]), "{}: {toxics}", m.name);
        }

        // Dead letters: an empty DLQ parks and redrives nothing; an unknown queue is an error.
        // The queue exists once the gateways enqueued their first order.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let status = get(&http, format!("http://{}/status", members[0].api)).await;
            let queues = status["state_machine"]["queues"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if queues.iter().any(|q| q["queue"] == "payments") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no payments queue after 60 s: {status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let parked = state.path().join("parked");
        let said = remedies::park_dead_letters(&cluster, &http, "queue payments", &parked)
            .await
            .unwrap();
        assert!(said.contains("payments.dlq was empty"), "{said}");
        remedies::redrive_dead_letters(&cluster, &http, "payments")
            .await
            .unwrap();
        let error = remedies::park_dead_letters(&cluster, &http, "no-such-queue", &parked)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("no-such-queue"), "{error}");
    });

    // A killed node started again; one that runs is left alone; a wrong name refused.
    cluster.kill_node(3).unwrap();
    let said = remedies::restart_nodes(&mut cluster, "node-3").unwrap();
    assert_eq!(said, "started node-3");
    let said = remedies::restart_nodes(&mut cluster, "node-1,node-3").unwrap();
    assert_eq!(said, "node-1, node-3 already running");
    let error = remedies::restart_nodes(&mut cluster, "node-9")
        .unwrap_err()
        .to_string();
    assert!(error.contains("node-9"), "{error}");
    runtime
        .block_on(cluster.wait_healthy(&http, Duration::from_secs(60)))
        .unwrap();

    // The load halved, and running.
    let rate = cluster.file().load.as_ref().unwrap().rate;
    let said = remedies::shed_load(&mut cluster).unwrap();
    assert!(said.contains("from 10 to 5"), "{said}");
    assert_eq!(cluster.file().load.as_ref().unwrap().rate, rate / 2.0);
    let pid = cluster.file().load_pid.unwrap();
    assert!(cluster.file().is_running(pid));
    let _ = cluster.detach();
}
