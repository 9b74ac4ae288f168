//! Every scenario of the fault catalog on a real demo cluster (nodes, agents, services,
//! load), through the commands a user runs: `demo up`, `demo scenario NAME`, `demo
//! heal`. After each injection its effect must show in the cluster's own `/status` or
//! metrics; after healing the cluster must be healthy again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure report

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::faultline;
use faultline_cluster::supervisor::{Cluster, ClusterFile};
use serde_json::{Value, json};

fn demo(args: &[&str], dir: &Path) -> String {
    let out = faultline()
        .arg("demo")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Probe {
    file: ClusterFile,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Probe {
    fn new(dir: &Path) -> Probe {
        Probe {
            file: ClusterFile::read(&dir.join("cluster.json")).unwrap(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn get(&self, url: String) -> Value {
        self.runtime.block_on(async {
            match self.http.get(&url).send().await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        })
    }

    fn text(&self, url: String) -> String {
        self.runtime.block_on(async {
            match self.http.get(&url).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        })
    }

    fn post(&self, url: String, body: Value) -> (u16, Value) {
        self.runtime.block_on(async {
            match self.http.post(&url).json(&body).send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.json().await.unwrap_or(Value::Null))
                }
                Err(_) => (0, Value::Null),
            }
        })
    }

    fn statuses(&self) -> Vec<Value> {
        self.file
            .members
            .iter()
            .map(|m| self.get(format!("http://{}/status", m.api)))
            .collect()
    }

    fn node_status(&self, name: &str) -> Value {
        let m = self.file.members.iter().find(|m| m.name == name).unwrap();
        self.get(format!("http://{}/status", m.api))
    }

    /// The queue stats of `payments`, from a linearizable read through any node.
    fn payments_queue(&self) -> Value {
        for m in &self.file.members {
            let (status, stats) = self.post(
                format!("http://{}/sm/query", m.agent_inbound),
                json!({"stats": {}}),
            );
            if status == 200
                && let Some(q) = stats["stats"]["queues"]
                    .as_array()
                    .and_then(|qs| qs.iter().find(|q| q["queue"] == "payments"))
            {
                return q.clone();
            }
        }
        Value::Null
    }

    fn workers_metric(&self, prefix: &str) -> u64 {
        self.file
            .members
            .iter()
            .filter_map(|m| m.worker.as_ref())
            .map(|w| {
                self.text(format!("http://{}/metrics", w.addr))
                    .lines()
                    .filter(|l| l.starts_with(prefix))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64
            })
            .sum()
    }

    fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&Probe) -> Result<(), String>,
    ) {
        let started = Instant::now();
        loop {
            match check(self) {
                Ok(()) => return,
                Err(last) if started.elapsed() > limit => {
                    panic!("{what}: not within {limit:?}; last: {last}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn leader(&self) -> Option<String> {
        let statuses = self.statuses();
        let leaders: Vec<&str> = statuses
            .iter()
            .filter(|s| s["role"] == "leader")
            .filter_map(|s| s["node"].as_str())
            .collect();
        (leaders.len() == 1).then(|| leaders[0].to_owned())
    }

    /// Healthy: one leader that every node names and that serves a linearizable read.
    fn healthy(&self, dir: &Path) {
        let cluster = Cluster::attach(dir, env!("CARGO_BIN_EXE_faultline").into()).unwrap();
        self.runtime
            .block_on(cluster.wait_healthy(&self.http, Duration::from_secs(30)))
            .unwrap();
        let _ = cluster.detach();
    }
}

fn inject(dir: &Path, name: &str) -> Value {
    eprintln!("scenario {name}");
    serde_json::from_str(&demo(&["scenario", name], dir)).unwrap()
}

#[test]
fn every_scenario_shows_its_effect_and_heals() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo");
    let _down = common::DemoDown(state.clone());
    demo(&["up", "--rate", "15"], &state);
    let probe = Probe::new(&state);
    let long = Duration::from_secs(30);

    // leader-crash: the survivors elect another leader.
    let old = probe.leader().unwrap();
    let labels = inject(&state, "leader-crash");
    assert_eq!(labels["root_cause"]["target"], old.as_str());
    probe.wait_for("a new leader", long, |p| match p.leader() {
        Some(l) if l != old => Ok(()),
        other => Err(format!("{other:?}")),
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // partition-minority: the cut-off follower's agent refuses its peers.
    let labels = inject(&state, "partition-minority");
    let victim = labels["root_cause"]["target"].as_str().unwrap().to_owned();
    let agent = probe
        .file
        .members
        .iter()
        .find(|m| m.name == victim)
        .unwrap()
        .agent_admin;
    probe.wait_for("partition activations at the victim's agent", long, |p| {
        let metrics = p.text(format!("http://{agent}/metrics"));
        if metrics
            .lines()
            .any(|l| l.contains("fault_activations_total") && l.contains(r#"kind="partition""#))
        {
            Ok(())
        } else {
            Err("none yet".to_owned())
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // partition-leader: the majority elects a new leader.
    let old = probe.leader().unwrap();
    inject(&state, "partition-leader");
    probe.wait_for("the majority names a new leader", long, |p| {
        let named: Vec<String> = p
            .statuses()
            .iter()
            .filter(|s| s["node"] != old.as_str())
            .filter_map(|s| s["leader"].as_str().map(str::to_owned))
            .collect();
        if named.len() == 2 && named.iter().all(|l| *l != old) {
            Ok(())
        } else {
            Err(format!("{named:?}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // election-storm: elections keep starting.
    let started = |p: &Probe| -> u64 {
        p.statuses()
            .iter()
            .filter_map(|s| s["elections"]["elections_started"].as_u64())
            .sum()
    };
    let before = started(&probe);
    inject(&state, "election-storm");
    probe.wait_for("repeated elections", Duration::from_secs(45), |p| {
        let now = started(p);
        if now >= before + 2 {
            Ok(())
        } else {
            Err(format!("{before} → {now}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // quorum-loss: the survivor refuses writes.
    let labels = inject(&state, "quorum-loss");
    let dead = labels["root_cause"]["target"].as_str().unwrap().to_owned();
    let survivor = probe
        .file
        .members
        .iter()
        .find(|m| !dead.split(',').any(|d| d == m.name))
        .unwrap()
        .agent_inbound;
    probe.wait_for("writes refused without a quorum", long, |p| {
        let (status, body) = p.post(
            format!("http://{survivor}/sm/ops"),
            json!({"put": {"key": "probe", "value": "x"}}),
        );
        if status == 503 || status == 0 {
            Ok(())
        } else {
            Err(format!("{status} {body}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // slow-follower: the leader sees that follower lag.
    let labels = inject(&state, "slow-follower");
    let victim = labels["root_cause"]["target"].as_str().unwrap().to_owned();
    probe.wait_for("replication lag on the slow follower", long, |p| {
        let leader = p.leader().ok_or("no leader")?;
        let status = p.node_status(&leader);
        let lag = status["followers"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["node"] == victim.as_str()))
            .map(|f| f["lag_ms"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        if lag > 0 {
            Ok(())
        } else {
            Err(format!("{}", status["followers"]))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // retry-storm: the workers retry, many times.
    let before = probe.workers_metric("faultline_retry_retries_total");
    inject(&state, "retry-storm");
    probe.wait_for("a burst of retries", long, |p| {
        let now = p.workers_metric("faultline_retry_retries_total");
        if now >= before + 20 {
            Ok(())
        } else {
            Err(format!("{before} → {now}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // cascading-failure: payments queues up.
    let payments = probe.file.payments.clone().unwrap().addr;
    inject(&state, "cascading-failure");
    probe.wait_for("requests waiting at payments", long, |p| {
        let status = p.get(format!("http://{payments}/status"));
        let busy =
            status["in_service"].as_u64().unwrap_or(0) + status["waiting"].as_u64().unwrap_or(0);
        if busy >= 4 {
            Ok(())
        } else {
            Err(format!("{status}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // poison-pill: the DLQ fills.
    inject(&state, "poison-pill");
    probe.wait_for("messages in payments.dlq", Duration::from_secs(60), |p| {
        let q = p.payments_queue();
        let depth = q["dead_letter"]["depth"].as_u64().unwrap_or(0);
        if depth > 0 {
            Ok(())
        } else {
            Err(format!("{q}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // consumer-lag: the backlog grows.
    inject(&state, "consumer-lag");
    probe.wait_for("a backlog in payments", long, |p| {
        let q = p.payments_queue();
        let depth = q["main"]["depth"].as_u64().unwrap_or(0);
        if depth >= 5 {
            Ok(())
        } else {
            Err(format!("{q}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // stale-reads: reads return older versions than a replica holds.
    let stale = |p: &Probe| -> u64 {
        p.statuses()
            .iter()
            .filter_map(|s| s["kv"]["stale_reads"].as_u64())
            .sum()
    };
    let before = stale(&probe);
    inject(&state, "stale-reads");
    let mut n = 0;
    probe.wait_for("stale reads", Duration::from_secs(45), |p| {
        // Besides the load's reads, read-after-write through every other node: with
        // R=1, W=1 the lagging replica answers first with nothing.
        n += 1;
        let members = &p.file.members;
        let writer = &members[n % members.len()];
        let key = format!("probe-{n}");
        p.runtime.block_on(async {
            let _ = p
                .http
                .put(format!("http://{}/kv/{key}", writer.agent_inbound))
                .body("v")
                .send()
                .await;
            for reader in members.iter().filter(|m| m.name != writer.name) {
                let _ = p
                    .http
                    .get(format!("http://{}/kv/{key}", reader.agent_inbound))
                    .send()
                    .await;
            }
        });
        let now = stale(p);
        if now > before {
            Ok(())
        } else {
            Err(format!("{before} → {now}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // clock-skew: the skewed node's clock shows the offset, and replicas refuse its
    // versions as too far ahead.
    let labels = inject(&state, "clock-skew");
    let victim = labels["root_cause"]["target"].as_str().unwrap().to_owned();
    probe.wait_for("the skewed clock seen", long, |p| {
        let skewed = p.node_status(&victim)["kv"]["clock_offset_ms"]
            .as_i64()
            .unwrap_or(0);
        let refused: u64 = p
            .statuses()
            .iter()
            .filter_map(|s| s["kv"]["clock_drift_rejections"].as_u64())
            .sum();
        if skewed == 2000 && refused > 0 {
            Ok(())
        } else {
            Err(format!("offset {skewed}, refusals {refused}"))
        }
    });
    demo(&["heal"], &state);
    probe.healthy(&state);

    // hot-key: the load runs again, now aiming at one order.
    inject(&state, "hot-key");
    let file = ClusterFile::read(&state.join("cluster.json")).unwrap();
    let load = file.load.clone().unwrap();
    assert!(
        load.extra.contains(&"--hot-key-share".to_owned()),
        "{load:?}"
    );
    assert!(file.load_pid.is_some_and(|p| file.is_running(p)));
    demo(&["heal"], &state);
    let file = ClusterFile::read(&state.join("cluster.json")).unwrap();
    assert!(file.load.unwrap().extra.is_empty());
    probe.healthy(&state);
}
