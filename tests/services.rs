//! The demo services on a real cluster: three nodes and agents, a gateway and a worker
//! per node, and payments, all exporting to a live `faultline record`.
//!
//! Orders posted to the gateways get paid by the workers (one trace from the order's
//! POST to the charge at payments); a malformed job ends in `payments.dlq` after its
//! deliveries; payments failing every charge opens the workers' circuit breakers;
//! payments healing closes them again, and a redrive of the DLQ gets every order paid.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::Recorder;
use faultline_model::read::{ReadOptions, read_all};
use serde_json::{Value, json};

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(()) => return,
            Err(last) if started.elapsed() > limit => {
                panic!("{what}: not within {limit:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn text(http: &reqwest::Client, url: String) -> Result<String, String> {
    let response = http.get(&url).send().await.map_err(|e| e.to_string())?;
    response.text().await.map_err(|e| e.to_string())
}

#[test]
fn orders_get_paid_poison_is_dead_lettered_and_breakers_follow_payments() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("services.jsonl");
    let recorder = Recorder::start(&capture, &[]);
    let cluster = common::cluster(
        &dir.path().join("cluster"),
        &format!("http://{}", recorder.addr),
        true,
    );
    let http = common::client(Duration::from_secs(5));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let gateways = cluster.gateways();
    let payments = cluster.file().payments.clone().unwrap().addr;
    let workers: Vec<_> = cluster
        .file()
        .members
        .iter()
        .map(|m| m.worker.clone().unwrap().addr)
        .collect();

    runtime.block_on(async {
        cluster
            .wait_healthy(&http, Duration::from_secs(20))
            .await
            .unwrap();

        // Orders through every gateway get paid.
        let mut ids = Vec::new();
        for n in 0..9 {
            let id = format!("order-{n}");
            let gateway = gateways[n % gateways.len()];
            wait_until("an order accepted", Duration::from_secs(15), || {
                let (http, id) = (http.clone(), id.clone());
                async move {
                    let response = http
                        .post(format!("http://{gateway}/orders"))
                        .header("x-correlation-id", &id)
                        .json(&json!({"amount_cents": 1000 + n, "customer": "c-1"}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    let status = response.status();
                    let body: Value = response.json().await.map_err(|e| e.to_string())?;
                    if status == 201 && body["order_id"] == id.as_str() {
                        Ok(())
                    } else {
                        Err(format!("{status} {body}"))
                    }
                }
            })
            .await;
            ids.push(id);
        }
        for id in &ids {
            let gateway = gateways[0];
            wait_until("the order paid", Duration::from_secs(30), || {
                let (http, id) = (http.clone(), id.clone());
                async move {
                    let body = text(&http, format!("http://{gateway}/orders/{id}")).await?;
                    let order: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
                    if order["payment"]["status"] == "paid" && order["order"]["id"] == id.as_str()
                    {
                        Ok(())
                    } else {
                        Err(body)
                    }
                }
            })
            .await;
        }

        // Every service's /metrics is valid Prometheus exposition, with traffic in it.
        let gateway_metrics = text(&http, format!("http://{}/metrics", gateways[0])).await.unwrap();
        let worker_metrics = text(&http, format!("http://{}/metrics", workers[0])).await.unwrap();
        let payments_metrics = text(&http, format!("http://{payments}/metrics")).await.unwrap();
        for exposition in [&gateway_metrics, &worker_metrics, &payments_metrics] {
            common::promtool_check(exposition);
        }

        // A malformed job is nacked until the queue dead-letters it.
        let node = cluster.member(1).unwrap().agent_inbound;
        let poison = http
            .post(format!("http://{node}/sm/ops"))
            .json(&json!({"enqueue": {"queue": "payments", "message_id": "poison-1", "body": "{not json"}}))
            .send()
            .await
            .unwrap();
        assert!(poison.status().is_success());
        wait_until("the poison job in payments.dlq", Duration::from_secs(30), || {
            let http = http.clone();
            async move {
                let body = http
                    .post(format!("http://{node}/sm/query"))
                    .json(&json!({"peek": {"queue": "payments.dlq", "max": 10}}))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .text()
                    .await
                    .map_err(|e| e.to_string())?;
                if body.contains("poison-1") { Ok(()) } else { Err(body) }
            }
        })
        .await;

        // Payments fails everything: the workers' breakers open.
        let failing = http
            .put(format!("http://{payments}/admin/payments"))
            .json(&json!({"error_rate": 1.0}))
            .send()
            .await
            .unwrap();
        assert!(failing.status().is_success(), "{:?}", failing.text().await);
        for n in 0..12 {
            let gateway = gateways[n % gateways.len()];
            let _ = http
                .post(format!("http://{gateway}/orders"))
                .header("x-correlation-id", format!("doomed-{n}"))
                .json(&json!({"amount_cents": 5, "customer": "c-2"}))
                .send()
                .await;
        }
        let open = r#"state="open"} 1"#;
        wait_until("a worker's breaker open", Duration::from_secs(30), || {
            let (http, workers) = (http.clone(), workers.clone());
            async move {
                for worker in workers {
                    let metrics = text(&http, format!("http://{worker}/metrics")).await?;
                    if metrics
                        .lines()
                        .any(|l| l.starts_with("faultline_circuit_breaker_state") && l.ends_with(open))
                    {
                        return Ok(());
                    }
                }
                Err("no breaker open yet".to_owned())
            }
        })
        .await;

        // Payments heals. Jobs that ran out of deliveries meanwhile are in the DLQ: a
        // redrive (the playbook's remedy) brings them back, and every doomed order is
        // paid in the end.
        http.put(format!("http://{payments}/admin/payments"))
            .json(&json!({"error_rate": 0.0}))
            .send()
            .await
            .unwrap();
        // New orders are the trial calls that close the breakers; then the DLQ is
        // redriven (what an operator does once the dependency is back).
        for n in 0..6 {
            let gateway = gateways[n % gateways.len()];
            let id = format!("fresh-{n}");
            let _ = http
                .post(format!("http://{gateway}/orders"))
                .header("x-correlation-id", &id)
                .json(&json!({"amount_cents": 7, "customer": "c-3"}))
                .send()
                .await;
            wait_until("a fresh order paid after healing", Duration::from_secs(60), || {
                let (http, id) = (http.clone(), id.clone());
                async move {
                    let body = text(&http, format!("http://{gateway}/orders/{id}")).await?;
                    if body.contains(r#""status":"paid""#) { Ok(()) } else { Err(body) }
                }
            })
            .await;
        }
        wait_until("no breaker open any more", Duration::from_secs(60), || {
            let (http, workers) = (http.clone(), workers.clone());
            async move {
                for worker in workers {
                    let metrics = text(&http, format!("http://{worker}/metrics")).await?;
                    // Half-open is fine: an idle breaker closes on its next trials.
                    if metrics.lines().any(|l| {
                        l.starts_with("faultline_circuit_breaker_state")
                            && l.contains(r#"state="open""#)
                            && l.ends_with(" 1")
                    }) {
                        return Err(metrics);
                    }
                }
                Ok(())
            }
        })
        .await;
        // Jobs that were still cycling when payments healed may reach the DLQ after a
        // redrive: like an operator, redrive again until every doomed order is paid.
        for n in 0..12 {
            let gateway = gateways[0];
            let id = format!("doomed-{n}");
            wait_until("a doomed order paid after healing", Duration::from_secs(60), || {
                let (http, id) = (http.clone(), id.clone());
                async move {
                    let body = text(&http, format!("http://{gateway}/orders/{id}")).await?;
                    if body.contains(r#""status":"paid""#) {
                        return Ok(());
                    }
                    let redriven = http
                        .post(format!("http://{node}/sm/ops"))
                        .json(&json!({"redrive": {"queue": "payments.dlq", "max": 1000}}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !redriven.status().is_success() {
                        return Err(redriven.text().await.unwrap_or_default());
                    }
                    Err(body)
                }
            })
            .await;
        }
    });
    cluster.down();
    let (status, stderr) = recorder.stop("INT");
    assert!(status.success(), "{stderr}");

    // One trace from the order's POST at the gateway to the charge at payments.
    let (spans, _) = read_all(&capture, &ReadOptions::default()).unwrap();
    let post = spans
        .iter()
        .find(|s| {
            s.resource.service_name() == "gateway"
                && s.attributes.get_str("order.id") == Some("order-3")
                && s.name.starts_with("POST")
        })
        .expect("the gateway's span of order-3");
    let trace: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id == post.trace_id)
        .collect();
    let services: HashSet<&str> = trace.iter().map(|s| s.resource.service_name()).collect();
    for service in [
        "gateway",
        "faultline-agent",
        "faultline-node",
        "worker",
        "payments",
    ] {
        assert!(
            services.contains(service),
            "{service} in the order's trace: {services:?}"
        );
    }
    assert!(trace.iter().any(|s| s.name == "process payments"));
    assert!(trace.iter().any(|s| s.name == "POST /charge"));
    // The breaker's state changes are span events.
    assert!(spans.iter().any(|s| {
        s.events
            .iter()
            .any(|e| e.name == "circuit_breaker.state_change")
    }));
}
