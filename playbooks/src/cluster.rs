//! What the demo cluster says of itself: each node's `/status`, polled.
//!
//! ```text
//!  ClusterTargets (from the cluster file) ──► poll (reqwest, every interval, off the UI loop)
//!      ──► ClusterSnapshot { at, nodes: [NodeState { role, term, leader, health, lag, DLQ }] } ──► Input::Cluster
//! ```
//!
//! The TUI does not depend on the cluster crate: it reads the JSON the nodes serve,
//! taking only the fields it shows, so a newer node with more fields still parses.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// Where one node answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTarget {
    pub name: String,
    /// The node's `/status` URL.
    pub status_url: String,
    /// Its sidecar agent's `/metrics` URL (Prometheus text), if it has one.
    pub metrics_url: Option<String>,
}

/// The nodes to poll.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterTargets {
    pub nodes: Vec<NodeTarget>,
}

/// How a node answered its last poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Answered, and is a leader or follower with a known leader.
    Up,
    /// Answered, but knows no leader (election in progress, cut off).
    NoLeader,
    /// Did not answer (crashed, paused, unreachable); the reason.
    Down(String),
}

impl Health {
    pub fn label(&self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::NoLeader => "no leader",
            Health::Down(_) => "DOWN",
        }
    }
}

/// One node as its `/status` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    pub name: String,
    pub health: Health,
    pub role: Option<String>,
    pub term: Option<u64>,
    pub leader: Option<String>,
    pub commit_index: Option<u64>,
    /// When this node leads: the worst follower lag, in seconds.
    pub max_follower_lag_s: Option<f64>,
    /// Messages in dead-letter queues, as this node's state machine holds them.
    pub dlq_depth: Option<u64>,
    /// Messages waiting in the main queues.
    pub queue_depth: Option<u64>,
    pub elections_started: Option<u64>,
    pub stale_reads: Option<u64>,
    /// What its sidecar agent's `/metrics` counted of the requests it received.
    pub agent: Option<AgentCounts>,
}

/// An agent's inbound request counters (cumulative), from its `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentCounts {
    pub requests: u64,
    /// 5xx answers and requests that got no answer.
    pub errors: u64,
    pub in_flight: u64,
}

impl AgentCounts {
    /// Sums the inbound samples of `faultline_agent_requests_total`,
    /// `faultline_agent_request_errors_total` and `faultline_agent_in_flight_requests`
    /// in a Prometheus text exposition. Lines it does not know are skipped.
    pub fn parse(text: &str) -> AgentCounts {
        let mut counts = AgentCounts::default();
        for line in text.lines() {
            if line.starts_with('#') || !line.contains("direction=\"inbound\"") {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let value = if value.is_finite() && value > 0.0 {
                value as u64
            } else {
                0
            };
            let name = series.split('{').next().unwrap_or(series);
            match name {
                "faultline_agent_requests_total" => counts.requests += value,
                "faultline_agent_request_errors_total" => counts.errors += value,
                "faultline_agent_in_flight_requests" => counts.in_flight += value,
                _ => {}
            }
        }
        counts
    }
}

impl NodeState {
    /// A node of which only the health is known.
    pub fn unknown(name: &str, health: Health) -> NodeState {
        NodeState {
            name: name.to_owned(),
            health,
            role: None,
            term: None,
            leader: None,
            commit_index: None,
            max_follower_lag_s: None,
            dlq_depth: None,
            queue_depth: None,
            elections_started: None,
            stale_reads: None,
            agent: None,
        }
    }
}

/// Every node at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSnapshot {
    /// When the poll finished, ns since the epoch.
    pub at_ns: u64,
    pub nodes: Vec<NodeState>,
}

impl ClusterSnapshot {
    /// The leader most nodes that answered agree on.
    pub fn leader(&self) -> Option<&str> {
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for node in &self.nodes {
            if let (Health::Up, Some(leader)) = (&node.health, node.leader.as_deref()) {
                match votes.iter_mut().find(|(l, _)| *l == leader) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((leader, 1)),
                }
            }
        }
        votes.into_iter().max_by_key(|&(_, n)| n).map(|(l, _)| l)
    }

    /// The worst replication lag any leader reports, seconds.
    pub fn max_lag_s(&self) -> Option<f64> {
        self.nodes
            .iter()
            .filter_map(|n| n.max_follower_lag_s)
            .fold(None, |worst, v| Some(worst.map_or(v, |w: f64| w.max(v))))
    }

    /// DLQ depth as the leader's state machine holds it (else the largest reported).
    pub fn dlq_depth(&self) -> Option<u64> {
        self.leaders_view(|n| n.dlq_depth)
    }

    /// Messages waiting in the main queues, as the leader's state machine holds them
    /// (else the largest reported).
    pub fn queue_depth(&self) -> Option<u64> {
        self.leaders_view(|n| n.queue_depth)
    }

    fn leaders_view(&self, of: impl Fn(&NodeState) -> Option<u64>) -> Option<u64> {
        let leader = self.leader();
        self.nodes
            .iter()
            .find(|n| Some(n.name.as_str()) == leader)
            .and_then(&of)
            .or_else(|| self.nodes.iter().filter_map(&of).max())
    }
}

#[derive(Deserialize)]
struct StatusJson {
    role: Option<String>,
    term: Option<u64>,
    leader: Option<String>,
    commit_index: Option<u64>,
    #[serde(default)]
    followers: Vec<FollowerJson>,
    #[serde(default)]
    elections: Option<ElectionsJson>,
    #[serde(default)]
    state_machine: Option<Value>,
    #[serde(default)]
    kv: Option<Value>,
}

#[derive(Deserialize)]
struct FollowerJson {
    #[serde(default)]
    lag_ms: u64,
}

#[derive(Deserialize)]
struct ElectionsJson {
    elections_started: u64,
}

/// A node's state from its `/status` body; an unreadable body is a `Down` with the
/// reason, never a panic.
pub fn parse_status(name: &str, body: &[u8]) -> NodeState {
    let mut state = NodeState::unknown(name, Health::Up);
    let status: StatusJson = match serde_json::from_slice(body) {
        Ok(status) => status,
        Err(error) => {
            state.health = Health::Down(format!("unreadable /status: {error}"));
            return state;
        }
    };
    let lane = |lane: &str| -> Option<u64> {
        let queues = status.state_machine.as_ref()?.get("queues")?.as_array()?;
        Some(
            queues
                .iter()
                .filter_map(|q| q.get(lane)?.get("depth")?.as_u64())
                .sum(),
        )
    };
    state.dlq_depth = lane("dead_letter");
    state.queue_depth = lane("main");
    state.max_follower_lag_s = status
        .followers
        .iter()
        .map(|f| f.lag_ms as f64 / 1000.0)
        .fold(None, |worst, v| Some(worst.map_or(v, |w: f64| w.max(v))));
    state.stale_reads = status
        .kv
        .as_ref()
        .and_then(|kv| kv.get("stale_reads")?.as_u64());
    state.elections_started = status.elections.map(|e| e.elections_started);
    state.health = if status.leader.is_some() {
        Health::Up
    } else {
        Health::NoLeader
    };
    state.role = status.role;
    state.term = status.term;
    state.leader = status.leader;
    state.commit_index = status.commit_index;
    state
}

/// Polls every node once, concurrently; a node that does not answer within the
/// client's timeout is `Down`.
pub async fn poll(client: &reqwest::Client, targets: &ClusterTargets) -> ClusterSnapshot {
    let polls = targets.nodes.iter().map(|target| async move {
        let mut node = match client.get(&target.status_url).send().await {
            Ok(response) if response.status().is_success() => match response.bytes().await {
                Ok(body) => parse_status(&target.name, &body),
                Err(error) => down(&target.name, format!("reading /status: {error}")),
            },
            Ok(response) => down(
                &target.name,
                format!("/status answered {}", response.status()),
            ),
            Err(error) => down(&target.name, short_reason(&error)),
        };
        if let Some(url) = &target.metrics_url
            && let Ok(response) = client.get(url).send().await
            && response.status().is_success()
            && let Ok(text) = response.text().await
        {
            node.agent = Some(AgentCounts::parse(&text));
        }
        node
    });
    let nodes = futures_util::future::join_all(polls).await;
    ClusterSnapshot {
        at_ns: now_ns(),
        nodes,
    }
}

fn short_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "no answer (timeout)".to_owned()
    } else if error.is_connect() {
        "refused connection".to_owned()
    } else {
        error.to_string()
    }
}

fn down(name: &str, reason: String) -> NodeState {
    NodeState::unknown(name, Health::Down(reason))
}

/// Wall-clock time, ns since the epoch.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The client the poller uses: short timeouts, so a paused node shows as down
/// within one poll instead of stalling the view.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_leaders_status_gives_role_lag_and_queue_depths() {
        let body = br#"{"node":"node-1","role":"leader","term":4,"leader":"node-1","commit_index":90,
            "followers":[{"node":"node-2","lag_entries":3,"lag_ms":1200},{"node":"node-3","lag_entries":0,"lag_ms":0}],
            "elections":{"elections_started":2,"elections_won":2,"elections_lost":0,"leader_changes":2},
            "state_machine":{"queues":[{"queue":"payments","main":{"depth":5},"dead_letter":{"depth":2}}]},
            "kv":{"stale_reads":1},"new_field":true}"#;
        let node = parse_status("node-1", body);
        assert_eq!(node.health, Health::Up);
        assert_eq!(node.term, Some(4));
        assert_eq!(node.max_follower_lag_s, Some(1.2));
        assert_eq!((node.queue_depth, node.dlq_depth), (Some(5), Some(2)));
        assert_eq!(node.elections_started, Some(2));
        assert_eq!(node.stale_reads, Some(1));
        let snapshot = ClusterSnapshot {
            at_ns: 0,
            nodes: vec![
                node,
                parse_status("node-2", br#"{"role":"candidate","term":5}"#),
            ],
        };
        assert_eq!(snapshot.leader(), Some("node-1"));
        assert_eq!(snapshot.nodes[1].health, Health::NoLeader);
        assert_eq!(snapshot.dlq_depth(), Some(2));
    }

    #[test]
    fn agent_metrics_sum_the_inbound_series_only() {
        let text = "# HELP faultline_agent_requests_total Proxied requests\n\
            faultline_agent_requests_total{direction=\"inbound\",peer=\"-\",route=\"/kv\",status_class=\"2xx\"} 90\n\
            faultline_agent_requests_total{direction=\"inbound\",peer=\"-\",route=\"/kv\",status_class=\"5xx\"} 10\n\
            faultline_agent_requests_total{direction=\"outbound\",peer=\"node-2\",route=\"/raft\",status_class=\"2xx\"} 500\n\
            faultline_agent_request_errors_total{direction=\"inbound\",peer=\"-\",route=\"/kv\"} 10\n\
            faultline_agent_in_flight_requests{direction=\"inbound\"} 3\n\
            faultline_agent_requests_total{direction=\"inbound\"} not-a-number\n";
        let counts = AgentCounts::parse(text);
        assert_eq!(
            counts,
            AgentCounts {
                requests: 100,
                errors: 10,
                in_flight: 3
            }
        );
    }

    #[test]
    fn garbage_is_a_down_node_with_the_reason() {
        let node = parse_status("node-3", b"<html>");
        assert!(matches!(&node.health, Health::Down(r) if r.contains("unreadable")));
    }
}
