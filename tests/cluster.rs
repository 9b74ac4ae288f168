//! The demo cluster under real faults: three `faultline node` processes, each behind a
//! `faultline agent`, driven by concurrent clients whose histories are checked.
//!
//! Faults, in order: `kill -9` of a follower (restarted), `kill -9` of the leader
//! (restarted), and the leader cut off from its peers by partition toxics at its agent
//! (healed). Checked: the Raft store is linearizable; no acknowledged queue message is
//! lost. On failure the test prints its seed and the history (also saved to a file);
//! rerun a seed with `FAULTLINE_SEED=N`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Refusal, client, seed, send_op, start_cluster};
use faultline_cluster::check::history::Recorder;
use faultline_cluster::check::linearizable::{RegisterMap, RegisterOp, RegisterRet, check};
use faultline_cluster::sm::{Op, Query, QueryResponse, Response};
use faultline_cluster::supervisor::Cluster;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

async fn read(
    client: &reqwest::Client,
    node: std::net::SocketAddr,
    key: &str,
) -> Option<Option<String>> {
    let query = Query::Get {
        key: key.to_owned(),
    };
    let response = client
        .post(format!("http://{node}/sm/query"))
        .json(&query)
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    match response.json::<QueryResponse>().await.ok()? {
        QueryResponse::Value(entry) => Some(entry.map(|e| e.value)),
        _ => None,
    }
}

/// One client process: random reads, writes and compare-and-sets on three keys, each
/// to a random node's agent, until `stop`.
async fn register_client(
    process: u64,
    seed: u64,
    nodes: Vec<std::net::SocketAddr>,
    history: Recorder<RegisterOp, RegisterRet>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(process));
    let client = client(Duration::from_millis(1500));
    let mut counter = 0u64;
    while !stop.load(Ordering::Relaxed) {
        counter += 1;
        let key = ["a", "b", "c"][rng.random_range(0..3)].to_owned();
        let node = nodes[rng.random_range(0..nodes.len())];
        let value = format!("{process}-{counter}");
        match rng.random_range(0..10) {
            0..4 => {
                let pending = history.invoke(process, RegisterOp::Read { key: key.clone() });
                match read(&client, node, &key).await {
                    Some(value) => pending.ok(RegisterRet::Read(value)),
                    // A read that failed changed nothing.
                    None => pending.fail(),
                }
            }
            4..7 => {
                let pending = history.invoke(
                    process,
                    RegisterOp::Write {
                        key: key.clone(),
                        value: value.clone(),
                    },
                );
                match send_op(&client, node, &Op::Put { key, value }).await {
                    Ok(Response::Written(_)) => pending.ok(RegisterRet::Written),
                    Err(Refusal::Definite) => pending.fail(),
                    _ => pending.info(),
                }
            }
            _ => {
                // Compare against a value this client may have written.
                let expected = (rng.random_bool(0.3))
                    .then(|| format!("{process}-{}", counter.saturating_sub(1)));
                let pending = history.invoke(
                    process,
                    RegisterOp::Cas {
                        key: key.clone(),
                        expected: expected.clone(),
                        new: value.clone(),
                    },
                );
                let op = Op::CompareAndSet {
                    key,
                    expected,
                    new: Some(value),
                };
                match send_op(&client, node, &op).await {
                    Ok(Response::Cas(outcome)) => pending.ok(RegisterRet::Cas(outcome.swapped)),
                    Err(Refusal::Definite) => pending.fail(),
                    _ => pending.info(),
                }
            }
        }
    }
}

async fn leader_index(cluster: &Cluster, client: &reqwest::Client) -> usize {
    let leader = cluster
        .wait_healthy(client, Duration::from_secs(30))
        .await
        .unwrap();
    leader.trim_start_matches("node-").parse().unwrap()
}

#[test]
fn the_raft_store_is_linearizable_under_kills_and_a_partition() {
    let seed = seed();
    eprintln!("seed {seed} (rerun with FAULTLINE_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(dir.path());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let history = Recorder::<RegisterOp, RegisterRet>::new();
    runtime.block_on(async {
        let admin = client(Duration::from_millis(1500));
        leader_index(&cluster, &admin).await;
        let nodes: Vec<_> = cluster
            .file()
            .members
            .iter()
            .map(|m| m.agent_inbound)
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (1..=4)
            .map(|p| {
                tokio::spawn(register_client(
                    p,
                    seed,
                    nodes.clone(),
                    history.clone(),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));
        pause(1500).await;

        let leader = leader_index(&cluster, &admin).await;
        let follower = if leader == 1 { 2 } else { 1 };
        eprintln!("kill -9 follower node-{follower}");
        cluster.kill_node(follower).unwrap();
        pause(1500).await;
        cluster.start_node(follower).unwrap();
        pause(1500).await;

        let leader = leader_index(&cluster, &admin).await;
        eprintln!("kill -9 leader node-{leader}");
        cluster.kill_node(leader).unwrap();
        pause(2000).await;
        cluster.start_node(leader).unwrap();
        pause(1500).await;

        let leader = leader_index(&cluster, &admin).await;
        eprintln!("partition leader node-{leader} from its peers");
        cluster.partition(leader, &admin).await.unwrap();
        pause(3000).await;
        cluster.heal(&admin).await.unwrap();
        pause(1500).await;

        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.await.unwrap();
        }
        leader_index(&cluster, &admin).await;
    });
    let history = history.history();
    let (ok, fail, info) = history.outcome_counts();
    eprintln!(
        "history: {} operations ({ok} ok, {fail} failed, {info} unknown)",
        history.len()
    );
    assert!(
        ok > 50,
        "too few operations completed to mean anything: {ok}"
    );
    let report = check(&RegisterMap, &history);
    if !report.is_linearizable() {
        let saved = std::env::temp_dir().join(format!("faultline-history-{seed}.jsonl"));
        let _ = history.save(&saved);
        panic!(
            "not linearizable (seed {seed}; history saved to {}):\n{report}\n\nhistory:\n{history}",
            saved.display()
        );
    }
    cluster.down();
}
