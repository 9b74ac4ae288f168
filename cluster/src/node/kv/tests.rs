//! The KV shell in one process: real nodes on 127.0.0.1 ports, peers reached directly
//! (`Route::Direct`, no agents), Raft started but never initialized (the KV does not
//! need it). The process-level fault tests are in `tests/kv.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::*;
use crate::raft::Route;

struct Running {
    node: Arc<Node>,
    stop: Option<oneshot::Sender<()>>,
}

/// `n` members; `start` says which of them run (the others refuse connections).
struct TestCluster {
    addrs: Vec<SocketAddr>,
    listeners: Vec<Option<std::net::TcpListener>>,
    running: Vec<Option<Running>>,
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl TestCluster {
    async fn new(n: u64, start: &[u64]) -> TestCluster {
        // Hold every port until its node starts, then hand the listener over.
        let listeners: Vec<std::net::TcpListener> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let mut cluster = TestCluster {
            addrs,
            listeners: listeners.into_iter().map(Some).collect(),
            running: (0..n).map(|_| None).collect(),
            dir: tempfile::tempdir().unwrap(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        // A member that is not running must refuse connections, not hang.
        for id in 1..=n {
            if !start.contains(&id) {
                cluster.listeners[index(id)] = None;
            }
        }
        for &id in start {
            cluster.start(id).await;
        }
        cluster
    }

    async fn start(&mut self, id: NodeId) {
        let listener = match self.listeners[index(id)].take() {
            Some(listener) => listener,
            None => std::net::TcpListener::bind(self.addrs[index(id)]).unwrap(),
        };
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let peers: HashMap<String, SocketAddr> = self
            .addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (node_name(i as u64 + 1), *a))
            .collect();
        let config = NodeConfig {
            id,
            members: (1..=self.addrs.len() as u64).collect(),
            data_dir: self.dir.path().join(node_name(id)),
            route: Route::Direct(peers),
            initialize: false,
        };
        let node = Node::start(config).await.unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(Arc::clone(&node).serve(listener, async {
            let _ = stopped.await;
        }));
        self.running[index(id)] = Some(Running {
            node,
            stop: Some(stop),
        });
    }

    fn node(&self, id: NodeId) -> &Arc<Node> {
        &self.running[index(id)].as_ref().unwrap().node
    }

    fn url(&self, id: NodeId, path: &str) -> String {
        format!("http://{}{path}", self.addrs[index(id)])
    }

    async fn put(&self, id: NodeId, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .client
            .put(self.url(id, path))
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn get(&self, id: NodeId, path: &str) -> (u16, Value) {
        let response = self.client.get(self.url(id, path)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn delete(&self, id: NodeId, path: &str) -> (u16, Value) {
        let response = self.client.delete(self.url(id, path)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Replica `id`'s own copy of `key`.
    async fn copy(&self, id: NodeId, key: &str) -> Option<Versioned> {
        self.node(id).kv.get_locally(key).await.unwrap()
    }

    async fn status(&self, id: NodeId) -> Value {
        self.get(id, "/status").await.1
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for running in self.running.iter_mut().flatten() {
            if let Some(stop) = running.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

fn index(id: NodeId) -> usize {
    usize::try_from(id - 1).unwrap()
}

/// Polls `check` until it holds (or fails the test after 10 s).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A key whose N replicas (of `members`) include `wanted` and exclude `unwanted`.
fn key_placed(members: u64, wanted: &[NodeId], unwanted: &[NodeId]) -> String {
    let ring = Ring::with_nodes(1..=members);
    (0..10_000)
        .map(|i| format!("key-{i}"))
        .find(|k| {
            let replicas = ring.replicas(k, REPLICAS);
            wanted.iter().all(|w| replicas.contains(w))
                && !unwanted.iter().any(|u| replicas.contains(u))
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_every_replica_and_reads_and_deletes_work() {
    let cluster = TestCluster::new(3, &[1, 2, 3]).await;
    // A key that needs escaping on its way to the replicas.
    let key = "orders/42 ü";
    let path = format!("/kv/{}", path_segment(key));
    let (status, body) = cluster.put(1, &format!("{path}?w=2"), "hello").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["n"], 3);
    assert_eq!(body["w"], 2);
    assert!(body["replicas_acked"].as_u64().unwrap() >= 2, "{body}");
    let version: Version = serde_json::from_value(body["version"].clone()).unwrap();
    assert_eq!(version.node, 1);
    assert_eq!(body["version_text"], version.to_string());

    // The third replica is written too, after the answer.
    let c = &cluster;
    for id in 1..=3 {
        eventually("every replica to hold the write", || async move {
            c.copy(id, key).await.map(|v| v.version) == Some(version)
        })
        .await;
    }

    let (status, body) = cluster.get(2, &format!("{path}?r=3")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], "hello");
    assert_eq!(body["version"], serde_json::to_value(version).unwrap());
    assert_eq!(body["replicas_responded"], 3);

    // A client that hands its version back gets a later one from any coordinator.
    let (status, body) = cluster
        .put(3, &format!("{path}?after={version}"), "again")
        .await;
    assert_eq!(status, 200, "{body}");
    let second: Version = serde_json::from_value(body["version"].clone()).unwrap();
    assert!(second > version);

    let (status, body) = cluster.delete(3, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], true);
    let (status, body) = cluster.get(1, &path).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    assert!(
        body["version"].is_object(),
        "the tombstone's version: {body}"
    );

    let (status, body) = cluster.get(1, "/kv/never-written").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["version"].is_null());

    let status = cluster.status(2).await;
    assert_eq!(status["kv"]["n"], 3);
    assert_eq!(status["kv"]["r"], 2);
    assert_eq!(status["kv"]["hints_pending"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors() {
    let cluster = TestCluster::new(3, &[1, 2, 3]).await;
    for (path, needle) in [
        ("/kv/k?w=4", "w=4 is impossible with N=3"),
        ("/kv/k?w=0", "w=0 is impossible"),
        ("/kv/k?after=yesterday", "is not a version"),
        ("/kv/k?x=1", "unknown field"),
    ] {
        let (status, body) = cluster.put(1, path, "v").await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "invalid");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{path}: {body}"
        );
    }
    let long = "k".repeat(MAX_KEY_BYTES + 1);
    let (status, body) = cluster.get(1, &format!("/kv/{long}")).await;
    assert_eq!(status, 400, "{body}");

    let response = cluster
        .client
        .put(cluster.url(1, "/kv/k"))
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    let response = cluster
        .client
        .put(cluster.url(1, "/kv-replica/k"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid");

    let status = cluster.status(1).await;
    let ops = status["kv"]["operations"].as_array().unwrap();
    assert!(
        ops.iter()
            .any(|o| o["op"] == "put" && o["outcome"] == "invalid" && o["count"] == 5),
        "{ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_defaults_change_at_runtime() {
    let cluster = TestCluster::new(3, &[1, 2, 3]).await;
    let response = cluster
        .client
        .put(cluster.url(1, "/admin/quorum"))
        .json(&json!({"r": 1, "w": 3, "policy": "strict"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"n": 3, "r": 1, "w": 3, "policy": "strict"}));

    let response = cluster
        .client
        .put(cluster.url(1, "/admin/quorum"))
        .json(&json!({"r": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let (_, body) = cluster.get(1, "/admin/quorum").await;
    assert_eq!(body["r"], 1, "a refused update changes nothing");

    let (status, body) = cluster.put(1, "/kv/q", "v").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["w"], 3);
    assert_eq!(body["replicas_acked"], 3, "W=3 waits for every replica");

    let status = cluster.status(1).await;
    assert_eq!(status["kv"]["w"], 3);
    assert_eq!(status["kv"]["policy"], "strict");
    let metrics = cluster
        .client
        .get(cluster.url(1, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("faultline_kv_quorum_write{node=\"node-1\"} 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_replica_gets_its_writes_from_the_coordinators_hint() {
    // Three nodes: N is the whole ring, so there is no stand-in; the coordinator keeps
    // the hint itself.
    let mut cluster = TestCluster::new(3, &[1, 2]).await;
    let (status, body) = cluster.put(1, "/kv/k1?w=2", "v1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replicas_acked"], 2);
    let (status, body) = cluster.put(1, "/kv/k1?w=3", "v2").await;
    assert_eq!(status, 503, "W=3 with one replica down: {body}");
    assert_eq!(body["error"], "unavailable");

    let c = &cluster;
    eventually("the coordinator to hold hints for node-3", || async move {
        c.status(1).await["kv"]["hint_backlog"]["node-3"] == 1
    })
    .await;
    let status = cluster.status(1).await;
    assert!(status["kv"]["hints_stored"].as_u64().unwrap() >= 2);

    cluster.start(3).await;
    let c = &cluster;
    eventually("the hint to be delivered", || async move {
        c.status(1).await["kv"]["hints_pending"] == 0
    })
    .await;
    // The newest write reached node-3 (hints keep only the newest per key), although
    // the client was told 503: the replicas that acked keep it.
    let copy = cluster.copy(3, "k1").await.unwrap();
    assert_eq!(copy.value.as_deref(), Some("v2"));
    assert!(
        cluster.status(1).await["kv"]["hints_delivered"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stand_in_takes_the_write_of_a_down_replica_and_hands_it_off() {
    // Five nodes: a key whose replicas include node-5, which is down, and not node-1
    // (the coordinator), so the sloppy quorum needs a stand-in.
    let key = key_placed(5, &[5], &[1]);
    let ring = Ring::with_nodes(1..=5);
    let preference = ring.preference_list(&key, 5);
    let stand_in = preference[3];
    let mut cluster = TestCluster::new(5, &[1, 2, 3, 4]).await;

    let (status, body) = cluster.put(1, &format!("/kv/{key}?w=3"), "sloppy").await;
    assert_eq!(status, 200, "W=3 reached through a stand-in: {body}");
    assert_eq!(body["replicas_acked"], 3);

    let c = &cluster;
    eventually("the stand-in to hold the hint", || async move {
        c.status(stand_in).await["kv"]["hint_backlog"]["node-5"] == 1
    })
    .await;
    assert!(
        cluster.copy(stand_in, &key).await.is_none(),
        "a hint is not data"
    );

    cluster.start(5).await;
    let c = &cluster;
    eventually("the stand-in to deliver the hint", || async move {
        c.status(stand_in).await["kv"]["hints_pending"] == 0
    })
    .await;
    assert_eq!(
        cluster.copy(5, &key).await.unwrap().value.as_deref(),
        Some("sloppy")
    );

    // Strict: the stand-in's ack no longer counts toward W.
    let coordinator = preference.iter().copied().find(|&n| n != 5).unwrap();
    let response = cluster
        .client
        .put(cluster.url(coordinator, "/admin/quorum"))
        .json(&json!({"policy": "strict"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let stop = cluster.running[4].as_mut().unwrap().stop.take().unwrap();
    let _ = stop.send(());
    let c = &cluster;
    eventually("node-5 to stop answering", || async move {
        c.client
            .get(c.url(5, "/status"))
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .is_err()
    })
    .await;
    let (status, body) = cluster
        .put(coordinator, &format!("/kv/{key}?w=3"), "strict")
        .await;
    assert_eq!(
        status, 503,
        "strict W=3 with a preferred replica down: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_coordinator_is_refused_and_named_by_the_replicas() {
    let cluster = TestCluster::new(3, &[1, 2, 3]).await;
    cluster
        .node(2)
        .hooks
        .clock_offset_ms
        .store(10_000, Ordering::Relaxed);
    let (status, body) = cluster.put(2, "/kv/skew?w=2", "future").await;
    assert_eq!(status, 503, "the other replicas refuse: {body}");
    for id in [1, 3] {
        let status = cluster.status(id).await;
        assert_eq!(
            status["kv"]["clock_drift_refusals"]["node-2"], 1,
            "{}",
            status["kv"]
        );
        assert_eq!(status["kv"]["clock_drift_rejections"], 1);
    }
    assert_eq!(cluster.status(2).await["kv"]["clock_offset_ms"], 10_000);
    // Refused is not down: no hints for a replica that said no.
    assert_eq!(cluster.status(2).await["kv"]["hints_pending"], 0);

    // A client handing back a version from the far future is refused too.
    let (status, body) = cluster
        .put(1, "/kv/skew?after=99999999999999.0@2", "x")
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "clock_drift");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_repair_replicas_behind_and_late_newer_copies_count_as_stale() {
    let cluster = TestCluster::new(3, &[1, 2, 3]).await;
    let key = "behind";
    let old = Versioned::value("old", cluster.node(1).kv.clock().new_version());
    let new = Versioned::value("new", cluster.node(2).kv.clock().new_version());
    // node-1 missed the newer write (as if it had been down).
    cluster
        .node(1)
        .kv
        .store_locally(key, &old, None)
        .await
        .unwrap();
    for id in [2, 3] {
        cluster
            .node(id)
            .kv
            .store_locally(key, &new, None)
            .await
            .unwrap();
    }
    // R=1 at node-1: its own (old) copy usually answers first.
    let (status, body) = cluster.get(1, &format!("/kv/{key}?r=1")).await;
    assert_eq!(status, 200, "{body}");
    let answered_old = body["value"] == "old";
    let c = &cluster;
    eventually("read repair to bring node-1 up to date", || async move {
        c.copy(1, key).await.map(|v| v.version) == Some(new.version)
    })
    .await;
    let kv = &cluster.status(1).await["kv"];
    assert_eq!(kv["read_repairs"], 1, "{kv}");
    // Stale if and only if the client got the old copy.
    let c = &cluster;
    eventually("the stale read to be counted", || async move {
        let stale = c.status(1).await["kv"]["stale_reads"].as_u64().unwrap();
        stale == u64::from(answered_old)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_are_ordered_in_real_time_across_coordinators() {
    // A write started after another was acknowledged gets a higher version, whichever
    // node coordinates it (HLC + commit wait; the history checker of tests/kv.rs relies
    // on it).
    let cluster = TestCluster::new(3, &[1, 2, 3]).await;
    let mut previous: Option<Version> = None;
    for i in 0..60u64 {
        let (status, body) = cluster
            .put(i % 3 + 1, "/kv/order?w=2", &i.to_string())
            .await;
        assert_eq!(status, 200, "{body}");
        let version: Version = serde_json::from_value(body["version"].clone()).unwrap();
        if let Some(previous) = previous {
            assert!(version > previous, "write {i}: {version} after {previous}");
        }
        previous = Some(version);
    }
}

#[test]
fn commit_wait_lasts_until_the_clock_passes_the_versions_millisecond() {
    let v = |physical_ms, logical| Version {
        ts: crate::kv::HlcTimestamp {
            physical_ms,
            logical,
        },
        node: 1,
    };
    // Minted in the current millisecond: wait for the next one.
    assert_eq!(commit_wait(v(1_000, 7), 1_000), Duration::from_millis(1));
    // The clock has moved on: no wait.
    assert_eq!(commit_wait(v(1_000, 0), 1_001), Duration::ZERO);
    assert_eq!(commit_wait(v(1_000, 0), 5_000), Duration::ZERO);
    // A version a little ahead (the HLC ran on a peer's timestamp): wait it out.
    assert_eq!(commit_wait(v(1_003, 0), 1_000), Duration::from_millis(4));
    // Far ahead means a skewed clock: bounded, and the anomaly stays visible.
    assert_eq!(commit_wait(v(9_000, 0), 1_000), COMMIT_WAIT_MAX);
    assert_eq!(commit_wait(v(u64::MAX, 0), 0), COMMIT_WAIT_MAX);
}

#[test]
fn keys_are_escaped_as_one_path_segment() {
    assert_eq!(path_segment("a-Z_0.~"), "a-Z_0.~");
    assert_eq!(path_segment("a/b c?d#%"), "a%2Fb%20c%3Fd%23%25");
    assert_eq!(path_segment("ü"), "%C3%BC");
}
