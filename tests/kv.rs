//! The quorum KV under real faults: three `faultline node` processes, each behind a
//! `faultline agent`, with concurrent clients writing unique values at W=2.
//!
//! - `kill -9` of a node (restarted), and a minority partition made at the agents
//!   (healed): once hints are delivered (hint backlog 0 on every node), every key is read
//!   from all replicas (R=3) and `check::kv::check_lost_writes` proves that no write
//!   acknowledged with W=2 was lost; the replicas' own copies then agree (read repair).
//! - A slow replica (disk-delay hook) with R=1, W=1: stale reads show up in `/metrics`
//!   and in the client history, and the replica's lag in the replication-lag figures.
//!
//! On failure a test prints its seed, the report and the history (saved to a file when
//! long); rerun a seed with `FAULTLINE_SEED=N`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{agents, client, runtime, seed, start_cluster};
use faultline_cluster::check::{
    FinalRead, KvOp, KvRet, Recorder, Version as CheckVersion, check_lost_writes,
    check_stale_reads, failure_report,
};
use faultline_cluster::kv::Version;
use faultline_cluster::supervisor::Cluster;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

const KEYS: [&str; 5] = ["k1", "k2", "k3", "k4", "k5"];

/// The checker's version: the HLC packed into one ordered `u64`.
fn check_version(v: Version) -> CheckVersion {
    assert!(
        v.ts.logical < 1 << 22,
        "logical counter too large to pack: {v}"
    );
    CheckVersion {
        clock: (v.ts.physical_ms << 22) | u64::from(v.ts.logical),
        node: v.node,
    }
}

async fn status(client: &reqwest::Client, node: SocketAddr) -> Option<Value> {
    let response = client
        .get(format!("http://{node}/status"))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(why) if started.elapsed() > limit => {
                panic!("{what}: not within {limit:?}: {why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Every node answers `/status` through its agent.
async fn wait_up(client: &reqwest::Client, nodes: &[SocketAddr]) {
    for &node in nodes {
        wait_for("a node to answer", Duration::from_secs(15), || async move {
            status(client, node)
                .await
                .map(|_| ())
                .ok_or_else(|| format!("{node} does not answer /status yet"))
        })
        .await;
    }
}

/// One client: unique values to random keys at W=2 through random nodes, until `stop`.
async fn writer(
    process: u64,
    seed: u64,
    nodes: Vec<SocketAddr>,
    history: Recorder<KvOp, KvRet>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(process));
    let client = client(Duration::from_secs(3));
    let mut counter = 0u64;
    while !stop.load(Ordering::Relaxed) {
        counter += 1;
        let key = KEYS[rng.random_range(0..KEYS.len())];
        let node = nodes[rng.random_range(0..nodes.len())];
        let value = format!("p{process}-{counter}");
        let pending = history.invoke(
            process,
            KvOp::Write {
                key: key.to_owned(),
                value: value.clone(),
                w: 2,
            },
        );
        let sent = client
            .put(format!("http://{node}/kv/{key}?w=2"))
            .header("x-correlation-id", format!("kv-{process}-{counter}"))
            .body(value)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(_) => {
                pending.info();
                continue;
            }
        };
        let status = response.status().as_u16();
        let body: Option<Value> = response.json().await.ok();
        match (status, body) {
            (200, Some(body)) => match serde_json::from_value::<Version>(body["version"].clone()) {
                Ok(version) => pending.ok(KvRet::Written {
                    version: Some(check_version(version)),
                }),
                Err(_) => pending.info(),
            },
            // Refused before anything was written.
            (400, _) => pending.fail(),
            // 503: fewer than W acks, but the replicas that acked keep the write; 502:
            // the agent could not reach its node (which may have died mid-request).
            _ => pending.info(),
        }
    }
}

/// Waits until no node holds hints (the failed node got everything it missed), then
/// reads every key from all replicas (R=3), then each replica's own copy once read
/// repair has made them agree.
async fn final_reads(client: &reqwest::Client, cluster: &Cluster) -> Vec<FinalRead> {
    let nodes = agents(cluster);
    for &node in &nodes {
        wait_for(
            "the hint backlog to drain",
            Duration::from_secs(15),
            || async move {
                let status = status(client, node)
                    .await
                    .ok_or_else(|| format!("{node} does not answer"))?;
                match status["kv"]["hints_pending"].as_u64() {
                    Some(0) => Ok(()),
                    _ => Err(format!(
                        "{}: hint backlog {}",
                        status["node"], status["kv"]["hint_backlog"]
                    )),
                }
            },
        )
        .await;
    }
    let mut reads = Vec::new();
    for key in KEYS {
        let node = nodes[0];
        let read = wait_for("an R=3 read", Duration::from_secs(10), || async move {
            let response = client
                .get(format!("http://{node}/kv/{key}?r=3"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.map_err(|e| e.to_string())?;
            match status {
                200 => Ok(FinalRead {
                    key: key.to_owned(),
                    value: body["value"].as_str().map(str::to_owned),
                    version: Some(check_version(
                        serde_json::from_value(body["version"].clone())
                            .map_err(|e| e.to_string())?,
                    )),
                    replica: None,
                }),
                404 => Ok(FinalRead {
                    key: key.to_owned(),
                    value: None,
                    version: serde_json::from_value::<Option<Version>>(body["version"].clone())
                        .map_err(|e| e.to_string())?
                        .map(check_version),
                    replica: None,
                }),
                _ => Err(format!("{status}: {body}")),
            }
        })
        .await;
        reads.push(read);
    }
    // Read repair sent the newest copy to every replica behind: their own copies agree.
    for (i, &node) in nodes.iter().enumerate() {
        for expected in reads.clone() {
            let key = expected.key.clone();
            let replica = format!("node-{}", i + 1);
            let copy = wait_for(
                "read repair to reach every replica",
                Duration::from_secs(10),
                || {
                    let (key, replica, expected) = (key.clone(), replica.clone(), &expected);
                    async move {
                        let body: Value = client
                            .get(format!("http://{node}/kv-replica/{key}"))
                            .send()
                            .await
                            .map_err(|e| e.to_string())?
                            .json()
                            .await
                            .map_err(|e| e.to_string())?;
                        let copy = &body["versioned"];
                        let version =
                            serde_json::from_value::<Option<Version>>(copy["version"].clone())
                                .map_err(|e| e.to_string())?
                                .map(check_version);
                        let read = FinalRead {
                            key: key.clone(),
                            value: copy["value"].as_str().map(str::to_owned),
                            version,
                            replica: Some(replica.clone()),
                        };
                        if read.version == expected.version {
                            Ok(read)
                        } else {
                            Err(format!(
                                "{replica} holds {read} for {key}, R=3 read {expected}"
                            ))
                        }
                    }
                },
            )
            .await;
            reads.push(copy);
        }
    }
    reads
}

/// Total hints delivered, over every node.
async fn hints_delivered(client: &reqwest::Client, cluster: &Cluster) -> u64 {
    let mut total = 0;
    for node in agents(cluster) {
        let status = status(client, node).await.unwrap();
        total += status["kv"]["hints_delivered"].as_u64().unwrap();
    }
    total
}

/// Writers run while `fault` injects and heals; then the history is checked.
fn no_acknowledged_write_is_lost(name: &str, fault: Fault) {
    let seed = seed();
    eprintln!("{name}: seed {seed} (rerun with FAULTLINE_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(dir.path());
    let history = Recorder::<KvOp, KvRet>::new();
    let (finals, delivered) = runtime().block_on(async {
        let admin = client(Duration::from_secs(3));
        let nodes = agents(&cluster);
        wait_up(&admin, &nodes).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (1..=4)
            .map(|p| {
                tokio::spawn(writer(
                    p,
                    seed,
                    nodes.clone(),
                    history.clone(),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
        pause(1000).await;
        let victim = usize::try_from(seed % 3).unwrap() + 1;
        match fault {
            Fault::Kill => {
                eprintln!("kill -9 node-{victim}");
                cluster.kill_node(victim).unwrap();
                pause(1500).await;
                eprintln!("restart node-{victim}");
                cluster.start_node(victim).unwrap();
                wait_up(&admin, &nodes).await;
            }
            Fault::Partition => {
                eprintln!("partition node-{victim} from its peers");
                cluster.partition(victim, &admin).await.unwrap();
                pause(2000).await;
                eprintln!("heal");
                cluster.heal(&admin).await.unwrap();
            }
        }
        pause(1000).await;
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        let finals = final_reads(&admin, &cluster).await;
        (finals, hints_delivered(&admin, &cluster).await)
    });
    let history = history.history();
    let (ok, fail, info) = history.outcome_counts();
    eprintln!(
        "{name}: {} writes ({ok} acknowledged, {fail} refused, {info} unknown), {delivered} hints delivered",
        history.len()
    );
    let report = check_lost_writes(&history, &finals);
    let saved = std::env::temp_dir().join(format!("faultline-kv-history-{name}-{seed}.jsonl"));
    if !report.is_ok() || !report.divergent.is_empty() {
        panic!(
            "{name}: acknowledged writes lost, or replicas diverged\n{}",
            failure_report(seed, &report, &history, Some(&saved))
        );
    }
    eprintln!("{report}");
    assert!(
        report.acked_quorum_writes >= 20,
        "too few acknowledged writes to mean anything: {report}"
    );
    assert!(
        delivered > 0,
        "the fault left no hint to deliver: the handoff path was not exercised"
    );
    cluster.down();
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill,
    Partition,
}

#[test]
fn no_acknowledged_write_is_lost_when_a_node_is_killed_and_restarted() {
    no_acknowledged_write_is_lost("kill", Fault::Kill);
}

#[test]
fn no_acknowledged_write_is_lost_under_a_minority_partition() {
    no_acknowledged_write_is_lost("partition", Fault::Partition);
}

/// The value of one sample line of Prometheus text (`name{labels} value`).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn stale_reads_and_replication_lag_are_measurable_with_a_slow_replica() {
    let seed = seed();
    eprintln!("seed {seed} (rerun with FAULTLINE_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster(dir.path());
    let history = Recorder::<KvOp, KvRet>::new();
    let metrics = runtime().block_on(async {
        let admin = client(Duration::from_secs(3));
        let nodes = agents(&cluster);
        wait_up(&admin, &nodes).await;
        for &node in &nodes {
            let response = admin
                .put(format!("http://{node}/admin/quorum"))
                .json(&json!({"r": 1, "w": 1}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
        // node-3's disk is slow: it acks writes 300 ms late, and reads its old copies.
        let slow = nodes[2];
        let response = admin
            .put(format!("http://{slow}/admin/faults"))
            .json(&json!({"disk_delay_ms": 300}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);

        let mut rng = StdRng::seed_from_u64(seed);
        for i in 0..20u64 {
            let key = KEYS[rng.random_range(0..KEYS.len())];
            let value = format!("v{i}");
            let pending = history.invoke(
                1,
                KvOp::Write {
                    key: key.to_owned(),
                    value: value.clone(),
                    w: 1,
                },
            );
            let response = admin
                .put(format!("http://{}/kv/{key}", nodes[0]))
                .body(value)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["w"], 1, "the runtime default applies: {body}");
            let version: Version = serde_json::from_value(body["version"].clone()).unwrap();
            pending.ok(KvRet::Written {
                version: Some(check_version(version)),
            });

            // Read it back at the slow node, R=1: its own copy answers first.
            let pending = history.invoke(
                2,
                KvOp::Read {
                    key: key.to_owned(),
                    r: 1,
                },
            );
            let response = admin
                .get(format!("http://{slow}/kv/{key}"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            let version = serde_json::from_value::<Option<Version>>(body["version"].clone())
                .unwrap()
                .map(check_version);
            match status {
                200 => pending.ok(KvRet::Read {
                    value: body["value"].as_str().map(str::to_owned),
                    version,
                }),
                404 => pending.ok(KvRet::Read {
                    value: None,
                    version,
                }),
                _ => panic!("read: {status} {body}"),
            }
        }
        // A client's trace and correlation id travel on the replica calls it causes:
        // node-3's agent logs its outbound /kv-replica calls with the client's ids.
        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let response = admin
            .get(format!("http://{slow}/kv/{}", KEYS[0]))
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .header("x-correlation-id", "kv-propagation-probe")
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success() || response.status().as_u16() == 404);
        let log = dir.path().join("logs").join("agent-3.access.log");
        let replica_calls = wait_for(
            "the replica calls in node-3's agent access log",
            Duration::from_secs(10),
            || {
                let log = log.clone();
                async move {
                    let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
                    let calls: Vec<Value> = text
                        .lines()
                        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                        .filter(|l| {
                            l["direction"] == "outbound"
                                && l["correlation_id"] == "kv-propagation-probe"
                        })
                        .collect();
                    // The read goes to both other replicas.
                    if calls.len() >= 2 {
                        Ok(calls)
                    } else {
                        Err(format!("{} outbound calls with the probe's id", calls.len()))
                    }
                }
            },
        )
        .await;
        for call in &replica_calls {
            assert!(
                call["path"].as_str().unwrap().contains("/kv-replica/"),
                "{call}"
            );
            assert_eq!(call["trace_id"], trace_id, "{call}");
        }

        // The late copies from the fast replicas have arrived by now (or soon).
        let metrics_of = |node: SocketAddr| {
            let admin = admin.clone();
            async move {
                admin
                    .get(format!("http://{node}/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        };
        let slow_metrics = wait_for("stale reads in /metrics", Duration::from_secs(10), || {
            let fetch = metrics_of(slow);
            async move {
                let text = fetch.await;
                match metric(&text, "faultline_kv_stale_reads_total{node=\"node-3\"}") {
                    Some(n) if n >= 1.0 => Ok(text),
                    other => Err(format!("stale reads: {other:?}")),
                }
            }
        })
        .await;
        let coordinator_metrics = wait_for(
            "node-3's replication lag in node-1's /metrics",
            Duration::from_secs(10),
            || {
                let fetch = metrics_of(nodes[0]);
                async move {
                    let text = fetch.await;
                    let series = "faultline_kv_replication_lag_max_seconds{node=\"node-1\",replica=\"node-3\"}";
                    match metric(&text, series) {
                        Some(lag) if lag >= 0.2 => Ok(text),
                        other => Err(format!("{series} = {other:?}")),
                    }
                }
            },
        )
        .await;
        let status = status(&admin, nodes[0]).await.unwrap();
        eprintln!("node-1 kv status: {}", status["kv"]);
        (slow_metrics, coordinator_metrics)
    });
    let history = history.history();
    let report = check_stale_reads(&history);
    eprintln!("{report}");
    assert!(
        report.stale >= 1,
        "the client history shows no stale read\n{}",
        failure_report(seed, &report, &history, None)
    );
    common::promtool_check(&metrics.0);
    common::promtool_check(&metrics.1);
    cluster.down();
}
