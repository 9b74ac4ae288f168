//! The Raft queue under real faults: three `faultline node` processes, each behind a
//! `faultline agent`, with producers enqueueing unique messages and consumers receiving,
//! acking, sometimes nacking and sometimes forgetting them, through random nodes.
//!
//! ```text
//!  producers ─enqueue(id)──► agent-i ─► node-i ─(forward)─► leader ─► Raft log
//!  consumers ─receive/ack/nack─┘              fault: kill -9 / partition at the agents
//!  after healing: drain(queue), drain(queue.dlq) ──► History ──► check_queue
//! ```
//!
//! One cluster, one scenario per fault, each on its own queue with its own history:
//! `kill -9` of a follower (restarted), `kill -9` of the leader (restarted), a follower
//! cut off from its peers (a minority partition, healed), and the leader cut off from
//! its peers (healed). After each, the clients stop, the cluster is healthy again, the
//! queue and then its dead-letter queue are received from until nothing is left, and
//! `check::queue::check_queue` proves that no acknowledged enqueue was lost
//! (at-least-once: duplicates are counted, not errors). Two further invariants hold for
//! any correct Raft queue and are asserted too: an acknowledged ack sticks (no delivery
//! after it), and delivery counts grow along real time (no committed receive undone).
//!
//! Every 10th message (the 3rd, 13th, ... of each producer, so some come early) is a
//! "poison" message its consumers always nack, so the dead-letter path (max_deliveries,
//! `NAME.dlq`) is exercised under the faults as well.
//! On failure the test prints its seed, the report and the history (saved to a file when
//! long); rerun a seed with `FAULTLINE_SEED=N`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Refusal, agents, client, runtime, seed, send_op, start_cluster};
use faultline_cluster::check::failure_report;
use faultline_cluster::check::history::{History, Pending, Recorder};
use faultline_cluster::check::queue::{
    Delivery, QueueOp, QueueReport, QueueRet, Source, check_queue,
};
use faultline_cluster::sm::{MessageStatus, Op, Query, QueryResponse, Receipt, Response};
use faultline_cluster::supervisor::Cluster;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// Short, so that deliveries lost to a fault (or forgotten) come back within a scenario.
const VISIBILITY_MS: u64 = 1000;
/// Poison messages are dead-lettered after this many deliveries.
const MAX_DELIVERIES: u32 = 3;
const POISON: &str = "poison";
/// The process id of the final drains in the histories.
const DRAINER: u64 = 0;
/// An operation takes ~100 ms on a loaded 2-core machine (an fsync per Raft append, debug
/// builds): several clients of each kind keep the load up.
const PRODUCERS: u64 = 4;
const CONSUMERS: u64 = 6;
/// Work a scenario must have done, or it proves nothing.
const MIN_ENQUEUED: usize = 60;
const MIN_ACKED: usize = 40;

type QueueHistory = Recorder<QueueOp, QueueRet>;

/// The checker's view of delivered messages.
fn deliveries(messages: &[faultline_cluster::sm::Delivery]) -> Vec<Delivery> {
    messages
        .iter()
        .map(|d| Delivery {
            id: d.message_id.clone(),
            delivery_count: d.delivery_count,
        })
        .collect()
}

fn pause(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

/// One producer: unique message ids (every 10th a poison message) to random nodes until
/// `stop`. An enqueue whose outcome is unknown is usually retried with the same id, as a
/// real producer would: the queue deduplicates by id.
async fn producer(
    process: u64,
    seed: u64,
    queue: String,
    nodes: Vec<SocketAddr>,
    history: QueueHistory,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(process));
    let client = client(Duration::from_millis(1500));
    let mut counter = 0u64;
    let mut retry: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let id = retry.take().unwrap_or_else(|| {
            counter += 1;
            format!("p{process}-{counter}")
        });
        let poison = id
            .rsplit('-')
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n % 10 == 3);
        let body = if poison { POISON } else { "work" };
        let node = nodes[rng.random_range(0..nodes.len())];
        let pending = history.invoke(process, QueueOp::Enqueue { id: id.clone() });
        let op = Op::Enqueue {
            queue: queue.clone(),
            message_id: id.clone(),
            body: body.to_owned(),
        };
        match send_op(&client, node, &op).await {
            Ok(Response::Enqueued(_)) => pending.ok(QueueRet::Enqueued),
            Err(Refusal::Definite) => {
                pending.fail();
                pause(50).await;
            }
            _ => {
                pending.info();
                if rng.random_bool(0.7) {
                    retry = Some(id);
                }
                pause(50).await;
            }
        }
        pause(rng.random_range(0..15)).await;
    }
}

/// Acks or nacks one delivery, retrying an unknown outcome (a retried ack or nack with the
/// same receipt is harmless).
async fn settle(
    client: &reqwest::Client,
    node: SocketAddr,
    process: u64,
    history: &QueueHistory,
    queue: &str,
    receipt: &Receipt,
    nack: Option<u64>,
) {
    for _ in 0..3 {
        let id = receipt.message_id.clone();
        let (record, op): (QueueOp, Op) = match nack {
            None => (
                QueueOp::Ack { id },
                Op::Ack {
                    queue: queue.to_owned(),
                    receipt: receipt.clone(),
                },
            ),
            Some(delay_ms) => (
                QueueOp::Nack { id },
                Op::Nack {
                    queue: queue.to_owned(),
                    receipt: receipt.clone(),
                    delay_ms,
                    reason: Some("test consumer gave it back".to_owned()),
                },
            ),
        };
        let pending: Pending<QueueOp, QueueRet> = history.invoke(process, record);
        match send_op(client, node, &op).await {
            Ok(Response::Acked(_)) => return pending.ok(QueueRet::Acked),
            Ok(Response::Nacked(_)) => return pending.ok(QueueRet::Nacked),
            Err(Refusal::Definite) => {
                // Most often a stale receipt: the visibility timeout ran out during the
                // fault and the message went to someone else. Nothing to retry.
                return pending.fail();
            }
            _ => {
                pending.info();
                pause(50).await;
            }
        }
    }
}

/// One consumer: receives batches from random nodes until `stop`; acks most messages,
/// nacks some (and every poison message), and forgets a few, so they come back when
/// their visibility timeout runs out.
async fn consumer(
    process: u64,
    seed: u64,
    queue: String,
    nodes: Vec<SocketAddr>,
    history: QueueHistory,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(process));
    let client = client(Duration::from_millis(1500));
    let name = format!("consumer-{process}");
    while !stop.load(Ordering::Relaxed) {
        let node = nodes[rng.random_range(0..nodes.len())];
        let pending = history.invoke(process, QueueOp::Receive);
        let op = Op::Receive {
            queue: queue.clone(),
            consumer: name.clone(),
            max: rng.random_range(1..=5),
            visibility_ms: None,
        };
        let outcome = match send_op(&client, node, &op).await {
            Ok(Response::Received(outcome)) => {
                pending.ok(QueueRet::Received(deliveries(&outcome.messages)));
                outcome
            }
            Err(Refusal::Definite) => {
                pending.fail();
                pause(50).await;
                continue;
            }
            _ => {
                // The receive may have taken messages: they come back after the
                // visibility timeout.
                pending.info();
                pause(50).await;
                continue;
            }
        };
        if outcome.messages.is_empty() {
            pause(20).await;
        }
        for delivery in &outcome.messages {
            let node = nodes[rng.random_range(0..nodes.len())];
            let roll = rng.random_range(0..100);
            let nack = if delivery.body == POISON || roll < 10 {
                Some(rng.random_range(0..200))
            } else if roll < 15 {
                // Forgotten: neither acked nor nacked.
                continue;
            } else {
                None
            };
            settle(
                &client,
                node,
                process,
                &history,
                &queue,
                &delivery.receipt,
                nack,
            )
            .await;
        }
    }
}

async fn peek(
    client: &reqwest::Client,
    node: SocketAddr,
    lane: &str,
) -> Option<Vec<(String, MessageStatus)>> {
    let query = Query::Peek {
        queue: lane.to_owned(),
        max: 10_000,
        now_ms: 0,
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
        QueryResponse::Messages(messages) => Some(
            messages
                .into_iter()
                .map(|m| (m.message_id, m.status))
                .collect(),
        ),
        _ => None,
    }
}

/// The final drain of one lane (`queue` or its DLQ), recorded as one operation: receives
/// with a long visibility until nothing is left but what the drain itself holds, as a
/// linearizable peek confirms. A drain receive whose answer was lost may still have taken
/// messages; the peek finds those in flight to the drain and they count as drained too.
/// Returns how many messages it found, and how many of them only the peek found.
async fn drain(
    client: &reqwest::Client,
    node: SocketAddr,
    queue: &str,
    from: Source,
    history: &QueueHistory,
) -> (usize, usize) {
    const DRAIN: &str = "final-drain";
    let lane = match from {
        Source::Queue => queue.to_owned(),
        Source::DeadLetter => format!("{queue}.dlq"),
    };
    let pending = history.invoke(DRAINER, QueueOp::Drain { from });
    let mut drained: Vec<Delivery> = Vec::new();
    let started = Instant::now();
    let mut last = String::from("nothing tried yet");
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "draining {lane}: not done within 15 s: {last}"
        );
        let op = Op::Receive {
            queue: lane.clone(),
            consumer: DRAIN.to_owned(),
            max: 100,
            visibility_ms: Some(600_000),
        };
        match send_op(client, node, &op).await {
            Ok(Response::Received(outcome)) if !outcome.messages.is_empty() => {
                drained.extend(deliveries(&outcome.messages));
                continue;
            }
            Ok(Response::Received(_)) => {}
            other => {
                last = format!("receive: {other:?}");
                pause(200).await;
                continue;
            }
        }
        let Some(left) = peek(client, node, &lane).await else {
            last = "peek failed".to_owned();
            pause(200).await;
            continue;
        };
        let held_by_drain = |status: &MessageStatus| matches!(status, MessageStatus::InFlight { consumer, .. } if consumer == DRAIN);
        let waiting: Vec<_> = left.iter().filter(|(_, s)| !held_by_drain(s)).collect();
        if waiting.is_empty() {
            let known: HashSet<&str> = drained.iter().map(|d| d.id.as_str()).collect();
            let unrecorded: Vec<Delivery> = left
                .iter()
                .filter(|(id, _)| !known.contains(id.as_str()))
                .map(|(id, _)| Delivery {
                    id: id.clone(),
                    delivery_count: 0,
                })
                .collect();
            let found_by_peek = unrecorded.len();
            drained.extend(unrecorded);
            let found = drained.len();
            pending.ok(QueueRet::Drained(drained));
            return (found, found_by_peek);
        }
        // In flight to a stopped consumer, or nacked with a delay: visible soon.
        last = format!(
            "{} messages not yet visible, e.g. {:?}",
            waiting.len(),
            waiting[0]
        );
        pause(200).await;
    }
}

async fn leader_index(cluster: &Cluster, client: &reqwest::Client) -> usize {
    let leader = cluster
        .wait_healthy(client, Duration::from_secs(30))
        .await
        .unwrap();
    leader.trim_start_matches("node-").parse().unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    KillFollower,
    KillLeader,
    PartitionFollower,
    PartitionLeader,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillFollower => "kill-follower",
            Fault::KillLeader => "kill-leader",
            Fault::PartitionFollower => "partition-follower",
            Fault::PartitionLeader => "partition-leader",
        }
    }

    /// Injects the fault in the middle of the load, and heals it.
    async fn inject(self, cluster: &mut Cluster, admin: &reqwest::Client) {
        let leader = leader_index(cluster, admin).await;
        let follower = if leader == 1 { 2 } else { 1 };
        match self {
            Fault::KillFollower | Fault::KillLeader => {
                let victim = if matches!(self, Fault::KillLeader) {
                    leader
                } else {
                    follower
                };
                eprintln!("  kill -9 node-{victim} (leader node-{leader})");
                cluster.kill_node(victim).unwrap();
                pause(2000).await;
                eprintln!("  restart node-{victim}");
                cluster.start_node(victim).unwrap();
            }
            Fault::PartitionFollower | Fault::PartitionLeader => {
                let victim = if matches!(self, Fault::PartitionLeader) {
                    leader
                } else {
                    follower
                };
                eprintln!("  partition node-{victim} from its peers (leader node-{leader})");
                cluster.partition(victim, admin).await.unwrap();
                pause(2500).await;
                eprintln!("  heal");
                cluster.heal(admin).await.unwrap();
            }
        }
    }
}

/// Acknowledged enqueues (distinct ids) and acknowledged acks so far.
fn work_done(history: &History<QueueOp, QueueRet>) -> (usize, usize) {
    let mut enqueued = HashSet::new();
    let mut acked = 0;
    for op in history.iter().filter(|op| op.is_ok()) {
        match &op.op {
            QueueOp::Enqueue { id } => {
                enqueued.insert(id.as_str());
            }
            QueueOp::Ack { .. } => acked += 1,
            _ => {}
        }
    }
    (enqueued.len(), acked)
}

/// What one scenario measured, for the summary.
struct Measured {
    report: QueueReport,
    ops: (usize, usize, usize),
    acks: usize,
    /// Messages the final drains found in the queue and in its DLQ.
    drained: (usize, usize),
    found_by_peek: usize,
}

/// Producers and consumers on a fresh queue while `fault` strikes and heals; then the
/// drains, and the check.
async fn scenario(
    seed: u64,
    fault: Fault,
    cluster: &mut Cluster,
    admin: &reqwest::Client,
) -> Measured {
    let name = fault.name();
    let queue = format!("orders-{name}");
    let nodes = agents(cluster);
    let leader = leader_index(cluster, admin).await;
    let create = Op::CreateQueue {
        queue: queue.clone(),
        max_deliveries: Some(MAX_DELIVERIES),
        visibility_timeout_ms: Some(VISIBILITY_MS),
    };
    let mut attempts = 0;
    loop {
        match send_op(admin, nodes[leader - 1], &create).await {
            Ok(Response::QueueCreated { .. }) => break,
            // Creating is idempotent: retrying after an unknown outcome is harmless.
            other if attempts < 10 => {
                attempts += 1;
                eprintln!("  creating {queue}: {other:?}; retrying");
                pause(200).await;
            }
            other => panic!("{name}: creating {queue}: {other:?}"),
        }
    }
    let history = QueueHistory::new();
    let stop = Arc::new(AtomicBool::new(false));
    // Distinct seeds per scenario and per process; consumers are processes 11.. .
    let clients_seed = seed.wrapping_add(1000 * fault as u64);
    let mut clients = Vec::new();
    for p in 1..=PRODUCERS {
        clients.push(tokio::spawn(producer(
            p,
            clients_seed,
            queue.clone(),
            nodes.clone(),
            history.clone(),
            Arc::clone(&stop),
        )));
    }
    for p in 11..11 + CONSUMERS {
        clients.push(tokio::spawn(consumer(
            p,
            clients_seed,
            queue.clone(),
            nodes.clone(),
            history.clone(),
            Arc::clone(&stop),
        )));
    }
    pause(1000).await;
    fault.inject(cluster, admin).await;
    // Load goes on after healing: at least a second, and until the scenario has done
    // enough work to mean something (this machine's speed varies with what else runs).
    let healed = Instant::now();
    loop {
        pause(250).await;
        let (enqueued, acked) = work_done(&history.history());
        let enough = enqueued >= MIN_ENQUEUED && acked >= MIN_ACKED;
        let waited = healed.elapsed();
        if (enough && waited >= Duration::from_secs(1)) || waited >= Duration::from_secs(8) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let leader = leader_index(cluster, admin).await;
    // Deliveries the consumers left in flight become visible again.
    pause(VISIBILITY_MS + 200).await;
    let node = nodes[leader - 1];
    eprintln!("  healthy again, leader node-{leader}; draining");
    let (left, queue_peeked) = drain(admin, node, &queue, Source::Queue, &history).await;
    let (dead, dlq_peeked) = drain(admin, node, &queue, Source::DeadLetter, &history).await;
    let found_by_peek = queue_peeked + dlq_peeked;

    let history = history.history();
    let report = check_queue(&history);
    let (_, acks) = work_done(&history);
    let fail = |what: &str| -> String {
        let saved =
            std::env::temp_dir().join(format!("faultline-queue-history-{name}-{seed}.jsonl"));
        format!(
            "{name}: {what}\n{}",
            failure_report(seed, &report, &history, Some(&saved))
        )
    };
    if !report.is_ok() {
        panic!(
            "{}",
            fail("an acknowledged message was lost, or one appeared from nowhere")
        );
    }
    assert!(
        report.duplicates.iter().all(|d| !d.after_ack),
        "{}",
        fail("a message was delivered after an acknowledged ack of it")
    );
    assert!(
        report.count_regressions.is_empty(),
        "{}",
        fail("a delivery count went backwards: a committed receive was undone")
    );
    assert!(
        report.enqueued >= MIN_ENQUEUED && acks >= MIN_ACKED,
        "{}",
        fail(&format!(
            "too little work to mean anything: {} acknowledged enqueues, {acks} acks",
            report.enqueued
        ))
    );
    let (_, failed, unknown) = history.outcome_counts();
    assert!(
        failed + unknown > 0,
        "{}",
        fail("no client noticed the fault: was it injected?")
    );
    assert!(
        report.dead_lettered >= 1,
        "{}",
        fail("no poison message reached the dead-letter queue: that path was not exercised")
    );
    Measured {
        ops: history.outcome_counts(),
        report,
        acks,
        drained: (left, dead),
        found_by_peek,
    }
}

#[test]
fn no_acknowledged_queue_message_is_lost_under_kills_and_partitions() {
    let seed = seed();
    eprintln!("seed {seed} (rerun with FAULTLINE_SEED={seed})");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(dir.path());
    runtime().block_on(async {
        let admin = client(Duration::from_millis(1500));
        leader_index(&cluster, &admin).await;
        for fault in [
            Fault::KillFollower,
            Fault::KillLeader,
            Fault::PartitionFollower,
            Fault::PartitionLeader,
        ] {
            let at = Instant::now();
            eprintln!("{}:", fault.name());
            let outcome = scenario(seed, fault, &mut cluster, &admin).await;
            let (ok, fail, info) = outcome.ops;
            let r = &outcome.report;
            eprintln!(
                "  {:.1} s; {} operations ({ok} ok, {fail} failed, {info} unknown), {} acks",
                at.elapsed().as_secs_f64(),
                ok + fail + info,
                outcome.acks
            );
            eprintln!(
                "  {} enqueued, {} delivered more than once ({} extra deliveries), {} dead-lettered; drained {} from the queue and {} from its DLQ ({} found only by the drain's peek)",
                r.enqueued,
                r.duplicates.len(),
                r.extra_deliveries(),
                r.dead_lettered,
                outcome.drained.0,
                outcome.drained.1,
                outcome.found_by_peek
            );
            for line in r.to_string().lines() {
                eprintln!("  {line}");
            }
        }
    });
    eprintln!("all scenarios in {:.1} s", started.elapsed().as_secs_f64());
    cluster.down();
}
