//! What an operator does to a demo cluster in trouble: the remedies the playbooks
//! name (PRODUCT.md §7), each a real action on the running processes.
//!
//! ```text
//!  restart_nodes ─► supervisor: start the node processes that are not running
//!  clear_network_faults ─► every agent: DELETE its toxics
//!  clear_node_faults ─► node /admin/faults: disk delay 0, clock offset 0
//!  sane_retries / tighten_breaker ─► every worker /admin/resilience (read, change, write)
//!  shed_load ─► restart the load at half its rate
//!  park_dead_letters ─► receive from NAME.dlq, append to a file (fsync), then ack each
//!  redrive_dead_letters ─► Op::Redrive
//!  restore_quorum ─► every node /admin/quorum: R=2, W=2
//!  restore_workers ─► every worker /admin/worker: no pause, no processing delay
//! ```
//!
//! Unlike `scenarios::heal`, none of these reads what was injected: they act on what
//! the playbook found, as an operator would.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};

use crate::scenarios::ScenarioError;
use crate::sm::{Op, Response};
use crate::supervisor::{Cluster, MemberEntry};

/// The consumer name dead letters are parked under (seen in the queue's telemetry).
const PARKING_CONSUMER: &str = "faultline-playbook";
/// Messages taken per receive while parking.
const PARK_BATCH: u32 = 50;
/// Most messages one park moves (the rest wait for the next run).
const PARK_MAX: usize = 10_000;

fn unsupported(what: impl Into<String>) -> ScenarioError {
    ScenarioError::Unsupported {
        scenario: "remedy".to_owned(),
        what: what.into(),
    }
}

fn member_named(cluster: &Cluster, name: &str) -> Result<(usize, MemberEntry), ScenarioError> {
    cluster
        .file()
        .members
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == name)
        .map(|(i, m)| (i + 1, m.clone()))
        .ok_or_else(|| {
            unsupported(format!(
                "a node called {name:?} (the cluster has {})",
                cluster
                    .file()
                    .members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Node names in `target`: `node-2`, `node-1,node-2`, or an edge or sentence naming
/// them (`node-3->node-1`).
fn node_names(cluster: &Cluster, target: &str) -> Vec<String> {
    cluster
        .file()
        .members
        .iter()
        .map(|m| m.name.clone())
        .filter(|name| {
            target
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .any(|word| word == name)
        })
        .collect()
}

/// Starts the named nodes whose process is not running; says which ones it started.
pub fn restart_nodes(cluster: &mut Cluster, target: &str) -> Result<String, ScenarioError> {
    let names = node_names(cluster, target);
    if names.is_empty() {
        return Err(unsupported(format!("a node name in {target:?}")));
    }
    let mut started = Vec::new();
    let mut running = Vec::new();
    for name in names {
        let (i, member) = member_named(cluster, &name)?;
        if member
            .node_pid
            .is_some_and(|pid| cluster.file().is_running(pid))
        {
            running.push(name);
        } else {
            cluster.start_node(i)?;
            started.push(name);
        }
    }
    let mut said = Vec::new();
    if !started.is_empty() {
        said.push(format!("started {}", started.join(", ")));
    }
    if !running.is_empty() {
        said.push(format!("{} already running", running.join(", ")));
    }
    Ok(said.join("; "))
}

/// Removes every toxic from every agent.
pub async fn clear_network_faults(
    cluster: &Cluster,
    http: &reqwest::Client,
) -> Result<String, ScenarioError> {
    cluster.heal(http).await?;
    Ok(format!(
        "removed the network faults of {} agents",
        cluster.file().members.len()
    ))
}

/// Puts a node's disk delay and clock offset back to zero.
pub async fn clear_node_faults(
    cluster: &Cluster,
    http: &reqwest::Client,
    target: &str,
) -> Result<String, ScenarioError> {
    let names = node_names(cluster, target);
    if names.is_empty() {
        return Err(unsupported(format!("a node name in {target:?}")));
    }
    let mut done = Vec::new();
    for name in names {
        let (_, member) = member_named(cluster, &name)?;
        let url = format!("http://{}/admin/faults", member.api);
        let before = Cluster::admin(http, Method::GET, url.clone(), None).await?;
        Cluster::admin(
            http,
            Method::PUT,
            url,
            Some(json!({"disk_delay_ms": 0, "clock_offset_ms": 0})),
        )
        .await?;
        done.push(format!("{name} (was {before})"));
    }
    Ok(format!(
        "disk and clock back to normal on {}",
        done.join(", ")
    ))
}

fn workers(cluster: &Cluster) -> Result<Vec<(String, std::net::SocketAddr)>, ScenarioError> {
    let workers: Vec<(String, std::net::SocketAddr)> = cluster
        .file()
        .members
        .iter()
        .filter_map(|m| {
            m.worker
                .as_ref()
                .map(|w| (format!("worker@{}", m.name), w.addr))
        })
        .collect();
    if workers.is_empty() {
        return Err(unsupported(
            "the demo services (a cluster started by `demo up`)",
        ));
    }
    Ok(workers)
}

/// Changes every worker's resilience settings with `change`; says what changed.
async fn each_worker_resilience(
    cluster: &Cluster,
    http: &reqwest::Client,
    change: impl Fn(&mut Value),
) -> Result<usize, ScenarioError> {
    let workers = workers(cluster)?;
    for (_, addr) in &workers {
        let url = format!("http://{addr}/admin/resilience");
        let mut settings = Cluster::admin(http, Method::GET, url.clone(), None).await?;
        change(&mut settings);
        Cluster::admin(http, Method::PUT, url, Some(settings)).await?;
    }
    Ok(workers.len())
}

/// Exponential backoff with full jitter, a retry budget, at most 3 attempts, and both
/// breaker rules, on every worker's calls to payments.
pub async fn sane_retries(
    cluster: &Cluster,
    http: &reqwest::Client,
) -> Result<String, ScenarioError> {
    let n = each_worker_resilience(cluster, http, |s| {
        let attempts = s["retry"]["max_attempts"].as_u64().unwrap_or(3).min(3);
        s["retry"]["max_attempts"] = json!(attempts);
        s["retry"]["backoff"]["enabled"] = json!(true);
        s["retry"]["backoff"]["jitter"] = json!(true);
        s["retry"]["budget"]["enabled"] = json!(true);
        s["breaker"]["consecutive_failures"]["enabled"] = json!(true);
        s["breaker"]["failure_rate"]["enabled"] = json!(true);
    })
    .await?;
    Ok(format!(
        "{n} workers: backoff with jitter, retry budget, at most 3 attempts, breaker on"
    ))
}

/// Breakers that trip sooner: after 3 failures in a row or half the calls failing.
pub async fn tighten_breaker(
    cluster: &Cluster,
    http: &reqwest::Client,
) -> Result<String, ScenarioError> {
    let n = each_worker_resilience(cluster, http, |s| {
        s["breaker"]["consecutive_failures"] = json!({"enabled": true, "threshold": 3});
        s["breaker"]["failure_rate"]["enabled"] = json!(true);
        s["breaker"]["failure_rate"]["threshold"] = json!(0.5);
    })
    .await?;
    Ok(format!(
        "{n} workers: breaker trips after 3 failures in a row or half the calls failing"
    ))
}

/// Restarts the load at half its rate.
pub fn shed_load(cluster: &mut Cluster) -> Result<String, ScenarioError> {
    let Some(load) = cluster.file().load.clone() else {
        return Err(unsupported("the load running (`demo up --rate` above 0)"));
    };
    let rate = load.rate / 2.0;
    cluster.stop_load()?;
    cluster.start_load(rate, &load.extra)?;
    Ok(format!(
        "load lowered from {} to {rate} orders/s",
        load.rate
    ))
}

/// Sends one state-machine op through member 1's agent (forwarded to the leader).
async fn op(cluster: &Cluster, http: &reqwest::Client, op: &Op) -> Result<Response, ScenarioError> {
    let member = cluster.member(1)?;
    let answer = Cluster::admin(
        http,
        Method::POST,
        format!("http://{}/sm/ops", member.agent_inbound),
        Some(serde_json::to_value(op).map_err(|e| unsupported(e.to_string()))?),
    )
    .await?;
    let response: Response = serde_json::from_value(answer.clone())
        .map_err(|e| unsupported(format!("an answer to {} (got {answer}: {e})", op.name())))?;
    if let Some(error) = response.error() {
        return Err(unsupported(format!("{} to succeed: {error:?}", op.name())));
    }
    Ok(response)
}

/// The queue's bare name: `payments` from `payments`, `queue payments` or
/// `payments.dlq`.
fn queue_name(target: &str) -> &str {
    let name = target.strip_prefix("queue ").unwrap_or(target).trim();
    name.strip_suffix(".dlq").unwrap_or(name)
}

/// Moves every dead letter of `target`'s DLQ into a JSON-lines file in `dir` (fsynced
/// before each ack, so nothing is lost), then acks it. Returns what it did.
pub async fn park_dead_letters(
    cluster: &Cluster,
    http: &reqwest::Client,
    target: &str,
    dir: &Path,
) -> Result<String, ScenarioError> {
    let dlq = format!("{}.dlq", queue_name(target));
    std::fs::create_dir_all(dir).map_err(|e| unsupported(format!("{}: {e}", dir.display())))?;
    let path: PathBuf = dir.join(format!("{dlq}-{}.jsonl", crate::scenarios::now_ms()));
    let mut parked = 0usize;
    let mut file: Option<std::fs::File> = None;
    while parked < PARK_MAX {
        let received = op(
            cluster,
            http,
            &Op::Receive {
                queue: dlq.clone(),
                consumer: PARKING_CONSUMER.to_owned(),
                max: PARK_BATCH,
                visibility_ms: Some(60_000),
            },
        )
        .await?;
        let Response::Received(outcome) = received else {
            return Err(unsupported(format!("a receive from {dlq}")));
        };
        if outcome.messages.is_empty() {
            break;
        }
        let out = match &mut file {
            Some(f) => f,
            None => file.insert(
                std::fs::File::create(&path)
                    .map_err(|e| unsupported(format!("{}: {e}", path.display())))?,
            ),
        };
        for message in &outcome.messages {
            let line = json!({
                "queue": dlq,
                "message_id": message.message_id,
                "body": message.body,
            });
            writeln!(out, "{line}").map_err(|e| unsupported(format!("{}: {e}", path.display())))?;
        }
        out.sync_all()
            .map_err(|e| unsupported(format!("{}: {e}", path.display())))?;
        for message in outcome.messages {
            op(
                cluster,
                http,
                &Op::Ack {
                    queue: dlq.clone(),
                    receipt: message.receipt,
                },
            )
            .await?;
            parked += 1;
        }
    }
    Ok(if parked == 0 {
        format!("{dlq} was empty: nothing to park")
    } else {
        format!(
            "parked {parked} dead letters of {dlq} in {}",
            path.display()
        )
    })
}

/// Moves the dead letters of `target` back to its main queue.
pub async fn redrive_dead_letters(
    cluster: &Cluster,
    http: &reqwest::Client,
    target: &str,
) -> Result<String, ScenarioError> {
    let dlq = format!("{}.dlq", queue_name(target));
    let response = op(
        cluster,
        http,
        &Op::Redrive {
            queue: dlq.clone(),
            max: 10_000,
        },
    )
    .await?;
    Ok(match response {
        Response::Redriven(outcome) => format!("redrove {outcome:?}"),
        other => format!("{dlq}: {other:?}"),
    })
}

/// R=2, W=2 on every node.
pub async fn restore_quorum(
    cluster: &Cluster,
    http: &reqwest::Client,
) -> Result<String, ScenarioError> {
    for member in &cluster.file().members {
        Cluster::admin(
            http,
            Method::PUT,
            format!("http://{}/admin/quorum", member.api),
            Some(json!({"r": 2, "w": 2})),
        )
        .await?;
    }
    Ok(format!(
        "R=2, W=2 on {} nodes",
        cluster.file().members.len()
    ))
}

/// Every worker receiving again with no added processing delay.
pub async fn restore_workers(
    cluster: &Cluster,
    http: &reqwest::Client,
) -> Result<String, ScenarioError> {
    let workers = workers(cluster)?;
    for (_, addr) in &workers {
        Cluster::admin(
            http,
            Method::PUT,
            format!("http://{addr}/admin/worker"),
            Some(json!({"paused": false, "processing_delay_ms": 0})),
        )
        .await?;
    }
    Ok(format!(
        "{} workers receiving, no processing delay",
        workers.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_taken_bare() {
        assert_eq!(queue_name("payments"), "payments");
        assert_eq!(queue_name("queue payments"), "payments");
        assert_eq!(queue_name("payments.dlq"), "payments");
    }
}
