//! Starting, killing, pausing and partitioning a local cluster of real processes: one
//! `faultline node` and one `faultline agent` per member, on 127.0.0.1.
//!
//! ```text
//!  client ─► agent-i inbound ─► node-i API
//!  node-i ─► agent-i outbound ─(Host: node-j)─► agent-j inbound ─► node-j API
//!  state dir: cluster.json (addresses, pids) · peers.json · node-i/ (data) · logs/
//! ```
//!
//! Every address is chosen up front (the OS picks free ports, which are released for
//! the processes to bind) because each process must know the others' before it starts.
//! Faults made here are real: SIGKILL, SIGSTOP/SIGCONT, and partitions as toxics on the
//! agents. Dropping a [`Cluster`] kills everything it started.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::raft::node_name;

/// How long [`Cluster::down`] lets processes exit on SIGTERM before killing them.
pub const DOWN_GRACE: Duration = Duration::from_secs(5);

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Members (3 or 5).
    pub nodes: u64,
    /// The state directory: data, logs, the cluster file.
    pub dir: PathBuf,
    /// The `faultline` binary.
    pub exe: PathBuf,
    /// OTLP/gRPC endpoint for the agents' and nodes' spans (`None`: the agents'
    /// default; the nodes export nothing).
    pub otlp: Option<String>,
}

/// One member's processes and addresses, as the cluster file records them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberEntry {
    pub name: String,
    pub raft_id: u64,
    /// The node's own API (behind its agent).
    pub api: SocketAddr,
    /// Where clients and peers reach the node: the agent's inbound listener.
    pub agent_inbound: SocketAddr,
    pub agent_outbound: SocketAddr,
    pub agent_admin: SocketAddr,
    pub node_pid: Option<u32>,
    pub agent_pid: Option<u32>,
    pub data_dir: PathBuf,
}

/// `cluster.json`: what the TUI and other commands read to find the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterFile {
    pub members: Vec<MemberEntry>,
}

impl ClusterFile {
    pub fn read(path: &Path) -> Result<ClusterFile, SupervisorError> {
        let text = std::fs::read_to_string(path).map_err(|source| SupervisorError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| SupervisorError::ClusterFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a cluster file: {reason}")]
    ClusterFile { path: String, reason: String },
    #[error("no member {0} (members are numbered from 1)")]
    NoSuchMember(usize),
    #[error("agent {agent} refused {action}: {reason}")]
    Agent {
        agent: String,
        action: String,
        reason: String,
    },
    #[error("the cluster was not healthy within {0:?}: {1}")]
    NotHealthy(Duration, String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SupervisorError {
    let what = what.into();
    move |source| SupervisorError::Io { what, source }
}

/// A running local cluster. Dropping it kills every process it started.
#[derive(Debug)]
pub struct Cluster {
    spec: ClusterSpec,
    file: ClusterFile,
    nodes: Vec<Option<Child>>,
    agents: Vec<Option<Child>>,
}

/// `n` free loopback addresses, chosen by the OS and released for processes to bind.
pub fn free_ports(n: usize) -> Result<Vec<SocketAddr>, SupervisorError> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(io("choosing free ports"))?;
    listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<_, _>>()
        .map_err(io("choosing free ports"))
}

impl Cluster {
    /// Starts every agent, then every node (node-1 initializes the cluster).
    pub fn up(spec: ClusterSpec) -> Result<Cluster, SupervisorError> {
        let n = usize::try_from(spec.nodes).unwrap_or(0);
        std::fs::create_dir_all(spec.dir.join("logs"))
            .map_err(io(format!("creating {}", spec.dir.display())))?;
        let ports = free_ports(4 * n)?;
        let members: Vec<MemberEntry> = (0..n)
            .map(|i| MemberEntry {
                name: node_name(i as u64 + 1),
                raft_id: i as u64 + 1,
                api: ports[4 * i],
                agent_inbound: ports[4 * i + 1],
                agent_outbound: ports[4 * i + 2],
                agent_admin: ports[4 * i + 3],
                node_pid: None,
                agent_pid: None,
                data_dir: spec.dir.join(node_name(i as u64 + 1)),
            })
            .collect();
        let peers: serde_json::Map<String, serde_json::Value> = members
            .iter()
            .map(|m| (m.name.clone(), m.agent_inbound.to_string().into()))
            .collect();
        let peers_path = spec.dir.join("peers.json");
        std::fs::write(&peers_path, serde_json::Value::Object(peers).to_string())
            .map_err(io(format!("writing {}", peers_path.display())))?;
        let mut cluster = Cluster {
            spec,
            file: ClusterFile { members },
            nodes: (0..n).map(|_| None).collect(),
            agents: (0..n).map(|_| None).collect(),
        };
        for i in 1..=n {
            cluster.start_agent(i)?;
        }
        for i in 1..=n {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    pub fn file(&self) -> &ClusterFile {
        &self.file
    }

    /// Member `i` (1-based).
    pub fn member(&self, i: usize) -> Result<&MemberEntry, SupervisorError> {
        i.checked_sub(1)
            .and_then(|index| self.file.members.get(index))
            .ok_or(SupervisorError::NoSuchMember(i))
    }

    pub fn len(&self) -> usize {
        self.file.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.file.members.is_empty()
    }

    fn log(&self, name: &str) -> Result<std::fs::File, SupervisorError> {
        let path = self.spec.dir.join("logs").join(name);
        std::fs::File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))
    }

    fn write_file(&self) -> Result<(), SupervisorError> {
        let path = self.spec.dir.join("cluster.json");
        let temp = self.spec.dir.join("cluster.json.tmp");
        let json =
            serde_json::to_vec_pretty(&self.file).map_err(|e| SupervisorError::ClusterFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        std::fs::write(&temp, json).map_err(io(format!("writing {}", temp.display())))?;
        std::fs::rename(&temp, &path).map_err(io(format!("writing {}", path.display())))
    }

    /// Starts member `i`'s agent (if it is not running).
    pub fn start_agent(&mut self, i: usize) -> Result<(), SupervisorError> {
        let m = self.member(i)?.clone();
        if self.agents[i - 1].is_some() {
            return Ok(());
        }
        let mut command = Command::new(&self.spec.exe);
        command
            .args(["agent", "--node", &m.name])
            .args(["--upstream", &m.api.to_string()])
            .args(["--inbound", &m.agent_inbound.to_string()])
            .args(["--outbound", &m.agent_outbound.to_string()])
            .args(["--admin", &m.agent_admin.to_string()])
            .arg("--peers")
            .arg(self.spec.dir.join("peers.json"))
            .arg("--access-log")
            .arg(
                self.spec
                    .dir
                    .join("logs")
                    .join(format!("agent-{}.access.log", m.raft_id)),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log(&format!("agent-{}.log", m.raft_id))?);
        if let Some(otlp) = &self.spec.otlp {
            command.args(["--otlp", otlp]);
        }
        let child = command
            .spawn()
            .map_err(io(format!("starting {}'s agent", m.name)))?;
        self.file.members[i - 1].agent_pid = Some(child.id());
        self.agents[i - 1] = Some(child);
        self.write_file()
    }

    /// Starts member `i`'s node (if it is not running).
    pub fn start_node(&mut self, i: usize) -> Result<(), SupervisorError> {
        let m = self.member(i)?.clone();
        if self.nodes[i - 1].is_some() {
            return Ok(());
        }
        let mut command = Command::new(&self.spec.exe);
        command
            .args(["node", "--id", &m.raft_id.to_string()])
            .args(["--nodes", &self.len().to_string()])
            .args(["--listen", &m.api.to_string()])
            .args(["--via", &m.agent_outbound.to_string()])
            .arg("--data")
            .arg(&m.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log(&format!("node-{}.log", m.raft_id))?);
        if let Some(otlp) = &self.spec.otlp {
            command.args(["--otlp", otlp]);
        }
        if m.raft_id == 1 {
            command.arg("--init");
        }
        let child = command
            .spawn()
            .map_err(io(format!("starting {}", m.name)))?;
        self.file.members[i - 1].node_pid = Some(child.id());
        self.nodes[i - 1] = Some(child);
        self.write_file()
    }

    /// `kill -9` member `i`'s node.
    pub fn kill_node(&mut self, i: usize) -> Result<(), SupervisorError> {
        let name = self.member(i)?.name.clone();
        if let Some(mut child) = self.nodes[i - 1].take() {
            child.kill().map_err(io(format!("killing {name}")))?;
            let _ = child.wait();
        }
        self.file.members[i - 1].node_pid = None;
        self.write_file()
    }

    /// SIGSTOP (`pause: true`) or SIGCONT member `i`'s node: a process that stops
    /// answering without dying, as in a long GC pause or a stalled VM.
    pub fn pause_node(&mut self, i: usize, pause: bool) -> Result<(), SupervisorError> {
        let m = self.member(i)?;
        let Some(pid) = m.node_pid else {
            return Ok(());
        };
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .map_err(io(format!("signalling {}", m.name)))?;
        if status.success() {
            Ok(())
        } else {
            Err(SupervisorError::Io {
                what: format!("kill {signal} {pid} ({})", m.name),
                source: std::io::Error::other(status.to_string()),
            })
        }
    }

    /// Cuts member `i` off from every other member, in both directions, at its agent.
    /// Clients can still reach it; its peers cannot.
    pub async fn partition(
        &self,
        i: usize,
        client: &reqwest::Client,
    ) -> Result<(), SupervisorError> {
        let m = self.member(i)?;
        let others: Vec<&str> = self
            .file
            .members
            .iter()
            .filter(|o| o.name != m.name)
            .map(|o| o.name.as_str())
            .collect();
        let toxic = serde_json::json!({"type": "partition", "peers": others});
        self.agent_request(
            m,
            client
                .post(format!("http://{}/toxics", m.agent_admin))
                .json(&toxic),
            "a partition",
        )
        .await
    }

    /// Removes every toxic from every agent.
    pub async fn heal(&self, client: &reqwest::Client) -> Result<(), SupervisorError> {
        for m in &self.file.members {
            self.agent_request(
                m,
                client.delete(format!("http://{}/toxics", m.agent_admin)),
                "clearing toxics",
            )
            .await?;
        }
        Ok(())
    }

    async fn agent_request(
        &self,
        m: &MemberEntry,
        request: reqwest::RequestBuilder,
        action: &str,
    ) -> Result<(), SupervisorError> {
        let refused = |reason: String| SupervisorError::Agent {
            agent: m.name.clone(),
            action: action.to_owned(),
            reason,
        };
        let response = request.send().await.map_err(|e| refused(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            Err(refused(format!("{status}: {}", body.trim())))
        }
    }

    /// Waits until every running node names the same leader, which answers a
    /// linearizable read through its agent.
    pub async fn wait_healthy(
        &self,
        client: &reqwest::Client,
        limit: Duration,
    ) -> Result<String, SupervisorError> {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < limit {
            match self.leader_agreed(client).await {
                Ok(leader) => return Ok(leader),
                Err(why) => last = why,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(SupervisorError::NotHealthy(limit, last))
    }

    async fn leader_agreed(&self, client: &reqwest::Client) -> Result<String, String> {
        let mut leader: Option<String> = None;
        for (index, m) in self.file.members.iter().enumerate() {
            if self.nodes[index].is_none() {
                continue;
            }
            let status: serde_json::Value = client
                .get(format!("http://{}/status", m.agent_inbound))
                .send()
                .await
                .map_err(|e| format!("{}: {e}", m.name))?
                .json()
                .await
                .map_err(|e| format!("{}: {e}", m.name))?;
            let named = status["leader"].as_str().map(str::to_owned);
            match (&leader, named) {
                (_, None) => return Err(format!("{} knows no leader", m.name)),
                (None, Some(n)) => leader = Some(n),
                (Some(l), Some(n)) if *l != n => {
                    return Err(format!("{} names {n}, another node names {l}", m.name));
                }
                _ => {}
            }
        }
        let leader = leader.ok_or("no node is running")?;
        let any = self
            .file
            .members
            .iter()
            .enumerate()
            .find(|(i, _)| self.nodes[*i].is_some())
            .map(|(_, m)| m.agent_inbound)
            .ok_or("no node is running")?;
        let read = serde_json::json!({"get": {"key": "faultline/health"}});
        let response = client
            .post(format!("http://{any}/sm/query"))
            .json(&read)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(leader)
        } else {
            Err(format!("a linearizable read got {}", response.status()))
        }
    }

    /// Stops every process: SIGTERM, so that each flushes its telemetry, then SIGKILL
    /// for any still running after [`DOWN_GRACE`] (the demo's state is on disk either way).
    pub fn down(mut self) {
        let grace = DOWN_GRACE;
        let children = self.nodes.iter_mut().chain(self.agents.iter_mut());
        let running: Vec<Child> = children.filter_map(Option::take).collect();
        for child in &running {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + grace;
        for mut child in running {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill_all(&mut self) {
        for child in self.nodes.iter_mut().chain(self.agents.iter_mut()) {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
