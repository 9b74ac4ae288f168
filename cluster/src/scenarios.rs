//! The fault catalog (PRODUCT.md §3): each scenario injects one fault into a running
//! demo cluster, says what it did and what the ground truth is, and knows how to undo it.
//!
//! ```text
//!  inject(cluster, name) ─► actions on agents (toxics), nodes (/admin/faults, /admin/quorum,
//!        │                  kill -9), services (/admin/payments, /admin/resilience,
//!        │                  /admin/worker), the queue (poison jobs), the load (restart)
//!        └─► Injected { labels: scenario, root cause (kind, target), injection time;
//!                       undo: what heal() replays to put everything back }
//! ```
//!
//! The labels are the ground truth for the analyzers' accuracy benchmark; they are
//! written beside a capture (`*.labels.json`), never into it. Nothing here marks the
//! cluster's own telemetry: the agents count toxic activations only in their metrics.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::supervisor::{Cluster, MemberEntry, SupervisorError};

/// One entry of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    /// What is done to the cluster.
    pub injection: &'static str,
    /// The diagnosis a correct analysis reaches.
    pub expected_diagnosis: &'static str,
    /// The ground truth's kind (`network_partition`, `node_crash`, …).
    pub root_cause_kind: &'static str,
}

/// Every scenario, in the order PRODUCT.md lists them.
pub const CATALOG: &[Scenario] = &[
    Scenario {
        name: "partition-minority",
        injection: "cut one follower off from its peers (partition toxics at its agent)",
        expected_diagnosis: "network partition (minority)",
        root_cause_kind: "network_partition",
    },
    Scenario {
        name: "partition-leader",
        injection: "cut the Raft leader off from its peers",
        expected_diagnosis: "partition; leader change; stale-leader writes fenced",
        root_cause_kind: "network_partition",
    },
    Scenario {
        name: "leader-crash",
        injection: "kill -9 the Raft leader (restarted on heal)",
        expected_diagnosis: "leader loss → election → recovery",
        root_cause_kind: "node_crash",
    },
    Scenario {
        name: "election-storm",
        injection: "delay half of all Raft messages by 350 ± 300 ms, above the election timeout",
        expected_diagnosis: "election storm (leader flapping)",
        root_cause_kind: "network_delay",
    },
    Scenario {
        name: "quorum-loss",
        injection: "kill -9 a majority of the nodes, the leader among them (restarted on heal)",
        expected_diagnosis: "quorum loss: writes refused",
        root_cause_kind: "quorum_loss",
    },
    Scenario {
        name: "slow-follower",
        injection: "add 300 ms to every durable write of one follower",
        expected_diagnosis: "replication lag → stale reads",
        root_cause_kind: "slow_disk",
    },
    Scenario {
        name: "retry-storm",
        injection: "payments slows (600 ms, 4 slots) while the workers retry 6 times without backoff, jitter, budget or breaker",
        expected_diagnosis: "retry storm at the worker→payments hop",
        root_cause_kind: "retry_storm",
    },
    Scenario {
        name: "cascading-failure",
        injection: "payments slows to 1.5 s with 4 slots; the workers' retries stay sane",
        expected_diagnosis: "cascading failure; first domino = payments",
        root_cause_kind: "dependency_slowdown",
    },
    Scenario {
        name: "poison-pill",
        injection: "enqueue 20 malformed payment jobs",
        expected_diagnosis: "poison messages → DLQ growth",
        root_cause_kind: "poison_message",
    },
    Scenario {
        name: "consumer-lag",
        injection: "slow every worker by 3 s per job",
        expected_diagnosis: "queue consumer lag / backlog growth",
        root_cause_kind: "consumer_lag",
    },
    Scenario {
        name: "stale-reads",
        injection: "set R=1, W=1 on every node and slow one replica's disk by 400 ms",
        expected_diagnosis: "consistency violation (stale reads)",
        root_cause_kind: "quorum_misconfiguration",
    },
    Scenario {
        name: "clock-skew",
        injection: "move one follower's clock 2 s ahead",
        expected_diagnosis: "clock skew; ordering anomalies",
        root_cause_kind: "clock_skew",
    },
    Scenario {
        name: "hot-key",
        injection: "restart the load with 90 % of its reads on one order",
        expected_diagnosis: "hot partition",
        root_cause_kind: "hot_key",
    },
];

/// The catalog entry called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    CATALOG.iter().find(|s| s.name == name)
}

/// The ground truth of one injection, as written to `*.labels.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    pub scenario: String,
    pub expected_diagnosis: String,
    pub root_cause: RootCause,
    /// What was done, in words.
    pub injection: String,
    /// Unix time in milliseconds.
    pub injected_at_ms: u64,
    pub healed_at_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCause {
    pub kind: String,
    /// What the fault was applied to: `node-2`, `payments`, `worker->payments`, …
    pub target: String,
}

/// One step that puts back what an injection changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// Remove every toxic from every agent.
    ClearToxics,
    /// Start these members' nodes again.
    StartNodes { members: Vec<usize> },
    /// Set a node's fault hooks back.
    Faults { member: usize, faults: Value },
    /// Set a node's quorum defaults back.
    Quorum { member: usize, quorum: Value },
    /// Set payments' settings back.
    Payments { settings: Value },
    /// Set a worker's resilience settings back.
    Resilience { member: usize, settings: Value },
    /// Set a worker's knobs back.
    WorkerKnobs { member: usize, knobs: Value },
    /// Restart the load as it was.
    Load { rate: f64, extra: Vec<String> },
}

/// A scenario in effect: its labels, and how to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injected {
    pub labels: Labels,
    pub undo: Vec<Undo>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("no scenario {0:?}; `faultline demo scenario list` shows them")]
    Unknown(String),
    #[error("{scenario} needs {what}")]
    Unsupported { scenario: String, what: String },
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What an injection needs to reach: the cluster and an HTTP client.
struct Ctx<'a> {
    cluster: &'a mut Cluster,
    http: &'a reqwest::Client,
}

impl Ctx<'_> {
    fn member(&self, i: usize) -> Result<MemberEntry, ScenarioError> {
        Ok(self.cluster.member(i)?.clone())
    }

    /// The leader's member number (1-based), once the cluster agrees on one.
    async fn leader(&self) -> Result<usize, ScenarioError> {
        let name = self
            .cluster
            .wait_healthy(self.http, std::time::Duration::from_secs(15))
            .await?;
        Ok(self
            .cluster
            .file()
            .members
            .iter()
            .position(|m| m.name == name)
            .map_or(1, |i| i + 1))
    }

    /// The first member that is not the leader.
    async fn follower(&self) -> Result<usize, ScenarioError> {
        let leader = self.leader().await?;
        Ok(if leader == 1 { 2 } else { 1 })
    }

    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> Result<Value, ScenarioError> {
        Ok(Cluster::admin(self.http, method, url, body).await?)
    }

    fn worker_addrs(&self) -> Vec<(usize, std::net::SocketAddr)> {
        self.cluster
            .file()
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.worker.as_ref().map(|w| (i + 1, w.addr)))
            .collect()
    }

    fn payments(&self, scenario: &str) -> Result<std::net::SocketAddr, ScenarioError> {
        self.cluster
            .file()
            .payments
            .as_ref()
            .map(|p| p.addr)
            .ok_or_else(|| ScenarioError::Unsupported {
                scenario: scenario.to_owned(),
                what: "the demo services (a cluster started by `demo up`)".to_owned(),
            })
    }

    /// Sets payments' settings; returns the undo step.
    async fn slow_payments(&self, scenario: &str, change: Value) -> Result<Undo, ScenarioError> {
        let payments = self.payments(scenario)?;
        let url = format!("http://{payments}/admin/payments");
        let before = self.call(Method::GET, url.clone(), None).await?;
        self.call(Method::PUT, url, Some(change)).await?;
        Ok(Undo::Payments { settings: before })
    }
}

/// Injects scenario `name` into `cluster`.
pub async fn inject(
    cluster: &mut Cluster,
    http: &reqwest::Client,
    name: &str,
) -> Result<Injected, ScenarioError> {
    let scenario = find(name).ok_or_else(|| ScenarioError::Unknown(name.to_owned()))?;
    let mut ctx = Ctx { cluster, http };
    let (target, undo) = apply(&mut ctx, scenario).await?;
    Ok(Injected {
        labels: Labels {
            scenario: scenario.name.to_owned(),
            expected_diagnosis: scenario.expected_diagnosis.to_owned(),
            root_cause: RootCause {
                kind: scenario.root_cause_kind.to_owned(),
                target,
            },
            injection: scenario.injection.to_owned(),
            injected_at_ms: now_ms(),
            healed_at_ms: None,
        },
        undo,
    })
}

async fn apply(ctx: &mut Ctx<'_>, s: &Scenario) -> Result<(String, Vec<Undo>), ScenarioError> {
    let name = s.name;
    match name {
        "partition-minority" | "partition-leader" => {
            let victim = if name == "partition-leader" {
                ctx.leader().await?
            } else {
                ctx.follower().await?
            };
            ctx.cluster.partition(victim, ctx.http).await?;
            Ok((ctx.member(victim)?.name, vec![Undo::ClearToxics]))
        }
        "leader-crash" => {
            let leader = ctx.leader().await?;
            ctx.cluster.kill_node(leader)?;
            Ok((
                ctx.member(leader)?.name,
                vec![Undo::StartNodes {
                    members: vec![leader],
                }],
            ))
        }
        "quorum-loss" => {
            let leader = ctx.leader().await?;
            let n = ctx.cluster.len();
            let mut victims = vec![leader];
            victims.extend((1..=n).filter(|&i| i != leader).take(n / 2));
            let mut names = Vec::new();
            for &v in &victims {
                ctx.cluster.kill_node(v)?;
                names.push(ctx.member(v)?.name);
            }
            Ok((names.join(","), vec![Undo::StartNodes { members: victims }]))
        }
        "election-storm" => {
            let toxic = json!({
                "type": "latency", "latency_ms": 350, "jitter_ms": 300,
                "route": "/raft/*", "probability": 0.5,
            });
            for m in ctx.cluster.file().members.clone() {
                ctx.call(
                    Method::POST,
                    format!("http://{}/toxics", m.agent_admin),
                    Some(toxic.clone()),
                )
                .await?;
            }
            Ok(("raft links".to_owned(), vec![Undo::ClearToxics]))
        }
        "slow-follower" | "clock-skew" => {
            let victim = ctx.follower().await?;
            let m = ctx.member(victim)?;
            let url = format!("http://{}/admin/faults", m.api);
            let before = ctx.call(Method::GET, url.clone(), None).await?;
            let change = if name == "slow-follower" {
                json!({"disk_delay_ms": 300})
            } else {
                json!({"clock_offset_ms": 2000})
            };
            ctx.call(Method::PUT, url, Some(change)).await?;
            Ok((
                m.name,
                vec![Undo::Faults {
                    member: victim,
                    faults: before,
                }],
            ))
        }
        "stale-reads" => {
            let mut undo = Vec::new();
            for (i, m) in ctx.cluster.file().members.clone().iter().enumerate() {
                let url = format!("http://{}/admin/quorum", m.api);
                let before = ctx.call(Method::GET, url.clone(), None).await?;
                ctx.call(Method::PUT, url, Some(json!({"r": 1, "w": 1})))
                    .await?;
                undo.push(Undo::Quorum {
                    member: i + 1,
                    quorum: json!({"r": before["r"], "w": before["w"]}),
                });
            }
            let lagging = ctx.follower().await?;
            let m = ctx.member(lagging)?;
            let url = format!("http://{}/admin/faults", m.api);
            let before = ctx.call(Method::GET, url.clone(), None).await?;
            ctx.call(Method::PUT, url, Some(json!({"disk_delay_ms": 400})))
                .await?;
            undo.push(Undo::Faults {
                member: lagging,
                faults: before,
            });
            Ok(("kv quorum (R=1, W=1)".to_owned(), undo))
        }
        "retry-storm" => {
            let mut undo = vec![
                ctx.slow_payments(name, json!({"latency_ms": 600, "capacity": 4}))
                    .await?,
            ];
            for (member, addr) in ctx.worker_addrs() {
                let url = format!("http://{addr}/admin/resilience");
                let before = ctx.call(Method::GET, url.clone(), None).await?;
                let mut storm = before.clone();
                storm["retry"]["max_attempts"] = json!(6);
                storm["retry"]["timeout"] = json!({"enabled": true, "after_ms": 300});
                storm["retry"]["backoff"]["enabled"] = json!(false);
                storm["retry"]["budget"]["enabled"] = json!(false);
                storm["breaker"]["consecutive_failures"]["enabled"] = json!(false);
                storm["breaker"]["failure_rate"]["enabled"] = json!(false);
                ctx.call(Method::PUT, url, Some(storm)).await?;
                undo.push(Undo::Resilience {
                    member,
                    settings: before,
                });
            }
            Ok(("worker->payments".to_owned(), undo))
        }
        "cascading-failure" => {
            let undo = ctx
                .slow_payments(name, json!({"latency_ms": 1500, "capacity": 4}))
                .await?;
            Ok(("payments".to_owned(), vec![undo]))
        }
        "poison-pill" => {
            ctx.payments(name)?;
            let m = ctx.member(1)?;
            for i in 0..20 {
                // Ids shaped like the gateway's: nothing in the capture may say "injected".
                let op = json!({"enqueue": {
                    "queue": crate::services::gateway::PAYMENTS_QUEUE,
                    "message_id": format!("o-{:016x}", rand::random::<u64>()),
                    "body": format!("{{\"order_id\": {i}, \"amount_c"),
                }});
                ctx.call(
                    Method::POST,
                    format!("http://{}/sm/ops", m.agent_inbound),
                    Some(op),
                )
                .await?;
            }
            // Nothing to undo: the messages end in the DLQ, which is the symptom.
            Ok((
                format!("queue {}", crate::services::gateway::PAYMENTS_QUEUE),
                Vec::new(),
            ))
        }
        "consumer-lag" => {
            ctx.payments(name)?;
            let mut undo = Vec::new();
            for (member, addr) in ctx.worker_addrs() {
                let url = format!("http://{addr}/admin/worker");
                let before = ctx
                    .call(Method::GET, format!("http://{addr}/status"), None)
                    .await?;
                ctx.call(Method::PUT, url, Some(json!({"processing_delay_ms": 3000})))
                    .await?;
                undo.push(Undo::WorkerKnobs {
                    member,
                    knobs: json!({"processing_delay_ms": before["processing_delay_ms"]}),
                });
            }
            Ok(("worker".to_owned(), undo))
        }
        "hot-key" => {
            let Some(load) = ctx.cluster.file().load.clone() else {
                return Err(ScenarioError::Unsupported {
                    scenario: name.to_owned(),
                    what: "the load running (`demo up --rate` above 0)".to_owned(),
                });
            };
            ctx.cluster.stop_load()?;
            let mut extra = load.extra.clone();
            extra.extend(["--hot-key-share".to_owned(), "0.9".to_owned()]);
            ctx.cluster.start_load(load.rate, &extra)?;
            // The load picks the hot order itself, so the ground truth can only say
            // "a kv key"; the accuracy bench accepts any candidate naming one.
            Ok((
                "kv key".to_owned(),
                vec![Undo::Load {
                    rate: load.rate,
                    extra: load.extra,
                }],
            ))
        }
        other => Err(ScenarioError::Unknown(other.to_owned())),
    }
}

/// Undoes `injected` (in reverse order) and stamps its heal time.
pub async fn heal(
    cluster: &mut Cluster,
    http: &reqwest::Client,
    injected: &mut Injected,
) -> Result<(), ScenarioError> {
    let ctx = Ctx { cluster, http };
    for undo in injected.undo.iter().rev() {
        match undo {
            Undo::ClearToxics => ctx.cluster.heal(http).await?,
            Undo::StartNodes { members } => {
                for &m in members {
                    ctx.cluster.start_node(m)?;
                }
            }
            Undo::Faults { member, faults } => {
                let m = ctx.member(*member)?;
                ctx.call(
                    Method::PUT,
                    format!("http://{}/admin/faults", m.api),
                    Some(faults.clone()),
                )
                .await?;
            }
            Undo::Quorum { member, quorum } => {
                let m = ctx.member(*member)?;
                ctx.call(
                    Method::PUT,
                    format!("http://{}/admin/quorum", m.api),
                    Some(quorum.clone()),
                )
                .await?;
            }
            Undo::Payments { settings } => {
                let payments = ctx.payments(&injected.labels.scenario)?;
                ctx.call(
                    Method::PUT,
                    format!("http://{payments}/admin/payments"),
                    Some(settings.clone()),
                )
                .await?;
            }
            Undo::Resilience { member, settings } => {
                if let Some((_, addr)) = ctx.worker_addrs().into_iter().find(|(m, _)| m == member) {
                    ctx.call(
                        Method::PUT,
                        format!("http://{addr}/admin/resilience"),
                        Some(settings.clone()),
                    )
                    .await?;
                }
            }
            Undo::WorkerKnobs { member, knobs } => {
                if let Some((_, addr)) = ctx.worker_addrs().into_iter().find(|(m, _)| m == member) {
                    ctx.call(
                        Method::PUT,
                        format!("http://{addr}/admin/worker"),
                        Some(knobs.clone()),
                    )
                    .await?;
                }
            }
            Undo::Load { rate, extra } => {
                ctx.cluster.stop_load()?;
                ctx.cluster.start_load(*rate, extra)?;
            }
        }
    }
    injected.labels.healed_at_ms = Some(now_ms());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_has_every_scenario_of_the_product_once() {
        let names: Vec<&str> = CATALOG.iter().map(|s| s.name).collect();
        let expected = [
            "partition-minority",
            "partition-leader",
            "leader-crash",
            "election-storm",
            "quorum-loss",
            "slow-follower",
            "retry-storm",
            "cascading-failure",
            "poison-pill",
            "consumer-lag",
            "stale-reads",
            "clock-skew",
            "hot-key",
        ];
        assert_eq!(names, expected);
        assert!(find("leader-crash").is_some());
        assert!(find("nope").is_none());
    }

    #[test]
    fn injected_round_trips_through_json() {
        let injected = Injected {
            labels: Labels {
                scenario: "leader-crash".to_owned(),
                expected_diagnosis: "x".to_owned(),
                root_cause: RootCause {
                    kind: "node_crash".to_owned(),
                    target: "node-1".to_owned(),
                },
                injection: "kill".to_owned(),
                injected_at_ms: 1,
                healed_at_ms: None,
            },
            undo: vec![
                Undo::StartNodes { members: vec![1] },
                Undo::ClearToxics,
                Undo::Load {
                    rate: 20.0,
                    extra: vec![],
                },
            ],
        };
        let text = serde_json::to_string(&injected).unwrap_or_default();
        let back: Injected = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(back, injected);
    }
}
