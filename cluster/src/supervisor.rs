//! Starting, killing, pausing and partitioning a local cluster of real processes: one
//! `faultline node` and one `faultline agent` per member, on 127.0.0.1; optionally a
//! flight recorder (`faultline record`) that every process exports its spans to.
//!
//! ```text
//!  client ─► agent-i inbound ─► node-i API
//!  node-i ─► agent-i outbound ─(Host: node-j)─► agent-j inbound ─► node-j API
//!  every process ─OTLP─► recorder (started first, stopped last) ─► telemetry/spans.jsonl
//!  state dir: cluster.json (addresses, pids) · peers.json · node-i/ (data) · logs/ · telemetry/
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

/// How long the flight recorder may take, after every other process has stopped, to
/// drain what they sent and finish its file before it is killed.
pub const RECORDER_GRACE: Duration = Duration::from_secs(15);

/// How long [`Cluster::up_with`] waits for the flight recorder to listen.
const RECORDER_START: Duration = Duration::from_secs(20);

/// The payments provider's name among the agents' peers.
pub const PAYMENTS: &str = "payments";

/// A flight recorder for the cluster: `faultline record` as one more process, which
/// every other process exports its spans to (see [`Cluster::up_with`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSpec {
    /// The recording: uncompressed OTLP JSON lines, so that it can be read while it
    /// grows. Older parts are `FILE-000001…` beside it
    /// (`faultline_model::write::recording_parts` lists them in order).
    pub path: PathBuf,
    /// Rotate when the file holds this many bytes.
    pub rotate_size: u64,
    /// Older parts kept: the recording takes at most about `(keep + 1) × rotate_size`.
    pub keep: usize,
}

impl RecordSpec {
    /// Where the demo records: `DIR/telemetry/spans.jsonl`.
    pub fn in_dir(dir: &Path) -> RecordSpec {
        RecordSpec {
            path: dir.join("telemetry").join("spans.jsonl"),
            rotate_size: 64 << 20,
            keep: 3,
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Members (3 or 5).
    pub nodes: u64,
    /// The state directory: data, logs, the cluster file.
    pub dir: PathBuf,
    /// The `faultline` binary.
    pub exe: PathBuf,
    /// OTLP/gRPC endpoint for every process's spans (`None`: the agents' default; the
    /// nodes and services export nothing — unless a flight recorder is started, see
    /// [`Cluster::up_with`]).
    pub otlp: Option<String>,
    /// Also start the demo services: a gateway and a worker per node, and payments.
    pub services: bool,
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
    /// This node's gateway (with services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<ServiceEntry>,
    /// This node's worker: its admin API (with services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<ServiceEntry>,
}

/// The services every member runs (with services).
#[derive(Debug, Clone, Copy)]
enum MemberService {
    Gateway,
    Worker,
}

impl MemberService {
    fn name(self) -> &'static str {
        match self {
            MemberService::Gateway => "gateway",
            MemberService::Worker => "worker",
        }
    }
}

/// How the load was started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadEntry {
    pub rate: f64,
    #[serde(default)]
    pub extra: Vec<String>,
}

/// One service process: where it listens, and its pid while running.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServiceEntry {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
}

/// The flight recorder, as the cluster file records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TelemetryEntry {
    /// Its OTLP endpoint (gRPC and HTTP on one port): what every process exports to.
    pub otlp: String,
    /// The recording; older parts are `FILE-000001…` beside it.
    pub path: PathBuf,
    pub pid: Option<u32>,
}

/// `cluster.json`: what the TUI and other commands read to find the cluster.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterFile {
    pub members: Vec<MemberEntry>,
    /// The payments provider (with services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payments: Option<ServiceEntry>,
    /// The load generator's pid while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_pid: Option<u32>,
    /// The OTLP endpoint the processes export to (restarted ones too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<String>,
    /// The load's rate and extra flags, to restart it the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadEntry>,
    /// The process group every process of the cluster runs in (the first one started
    /// leads it): stopping the group leaves no process behind, even one started just
    /// before its supervisor died and never recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_group: Option<u32>,
    /// The flight recorder every process exports to (when the cluster records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryEntry>,
    /// When the load first started (Unix ms): the cluster was healthy then, and the
    /// telemetry before it is start-up, not a baseline to compare an incident with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_since_ms: Option<u64>,
}

impl ClusterFile {
    /// Whether `pid` is one of this cluster's processes, alive: a live process in the
    /// cluster's process group (a reused pid is in another group), or — for a file
    /// without a group — a live `faultline`.
    pub fn is_running(&self, pid: u32) -> bool {
        match (self.process_group, stat(pid)) {
            (_, None) => false,
            (_, Some(('Z', _))) => false,
            (Some(group), Some((_, pgrp))) => pgrp == group,
            (None, Some(_)) => is_faultline(pid),
        }
    }

    /// Every process the file records as started, services and load first, the flight
    /// recorder last.
    pub fn pids(&self) -> Vec<u32> {
        let services = self
            .members
            .iter()
            .flat_map(|m| [&m.gateway, &m.worker])
            .chain(std::iter::once(&self.payments))
            .filter_map(|e| e.as_ref().and_then(|e| e.pid));
        self.load_pid
            .into_iter()
            .chain(services)
            .chain(self.members.iter().filter_map(|m| m.node_pid))
            .chain(self.members.iter().filter_map(|m| m.agent_pid))
            .chain(self.telemetry.as_ref().and_then(|t| t.pid))
            .collect()
    }
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
    #[error("{method} {url} failed: {reason}")]
    Admin {
        method: String,
        url: String,
        reason: String,
    },
    #[error("the cluster was not healthy within {0:?}: {1}")]
    NotHealthy(Duration, String),
    #[error("the flight recorder (faultline record) {reason}; its log: {}", log.display())]
    Recorder { reason: String, log: PathBuf },
    #[error("{0}")]
    InvalidSpec(String),
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
    gateways: Vec<Option<Child>>,
    workers: Vec<Option<Child>>,
    payments: Option<Child>,
    load: Option<Child>,
    /// The flight recorder: started first, stopped last.
    recorder: Option<Child>,
}

fn signal_pid(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM to every child, then SIGKILL to any still running after `grace`.
fn terminate(children: Vec<Child>, grace: Duration) {
    for child in &children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + grace;
    for mut child in children {
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Stops the processes a cluster file records — also when the supervisor that started
/// them is gone: SIGTERM to the cluster's process group (and to every recorded pid),
/// then SIGKILL after `grace` to whatever is left. Only processes that are still a
/// `faultline` are signalled by pid (a pid may have been reused). Returns how many
/// processes were running.
///
/// The flight recorder is stopped last, once every process that exports to it has
/// exited (so their final spans reach it), with SIGTERM so that it finishes its file;
/// it is killed only after [`RECORDER_GRACE`].
pub fn stop_recorded(file: &ClusterFile, grace: Duration) -> usize {
    let recorder = file
        .telemetry
        .as_ref()
        .and_then(|t| t.pid)
        .filter(|&pid| file.is_running(pid));
    let running = |file: &ClusterFile| -> Vec<u32> {
        let mut pids: Vec<u32> = file
            .pids()
            .into_iter()
            .filter(|&pid| file.is_running(pid))
            .collect();
        if let Some(group) = file.process_group {
            pids.extend(group_members(group));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    };
    // Every process but the recorder: those that export to it.
    let exporters = |file: &ClusterFile| -> Vec<u32> {
        let mut pids = running(file);
        pids.retain(|&pid| Some(pid) != recorder);
        pids
    };
    let first = running(file);
    // The load first, so that it does not count the cluster's shutdown as failures and
    // writes its history while the cluster still answers.
    if let Some(pid) = file.load_pid.filter(|&p| file.is_running(p)) {
        stop_one(file, pid, grace);
    }
    let signal = |sig: &str, target: String| {
        let _ = Command::new("kill")
            .args([sig, "--", &target])
            .stderr(Stdio::null())
            .status();
    };
    let everything = |sig: &str| {
        if let Some(group) = file.process_group.filter(|&g| !group_members(g).is_empty()) {
            signal(sig, format!("-{group}"));
        }
        for pid in running(file) {
            signal(sig, pid.to_string());
        }
    };
    // With a recorder in the group, the group cannot be signalled as one: each of the
    // others is, by pid (the group's members included, so unrecorded ones go too).
    let all_but_recorder = |sig: &str| match recorder {
        None => everything(sig),
        Some(_) => {
            for pid in exporters(file) {
                signal(sig, pid.to_string());
            }
        }
    };
    all_but_recorder("-TERM");
    let deadline = Instant::now() + grace;
    while !exporters(file).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    all_but_recorder("-KILL");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !exporters(file).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(pid) = recorder {
        stop_one(file, pid, RECORDER_GRACE);
    }
    if !running(file).is_empty() {
        everything("-KILL");
        let deadline = Instant::now() + Duration::from_secs(2);
        while !running(file).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    first.len()
}

/// SIGTERM to one recorded process, SIGKILL if it is still running after `grace`.
fn stop_one(file: &ClusterFile, pid: u32, grace: Duration) {
    signal_pid("-TERM", pid);
    let deadline = Instant::now() + grace;
    while file.is_running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if file.is_running(pid) {
        signal_pid("-KILL", pid);
    }
}

/// A process's state letter and process group, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp …`: comm may hold spaces; fields follow the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgrp = fields.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// The live (not zombie) processes of process group `group`, from `/proc`.
pub fn group_members(group: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|(state, pgrp)| state != 'Z' && pgrp == group))
        .collect()
}

/// Whether `pid` is a live (not zombie) `faultline` process (by the name it was run
/// as). [`ClusterFile::is_running`] is the better test for a cluster's processes: it
/// also knows a renamed binary by its process group.
pub fn is_faultline(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z')
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
            cmd.split(|&b| b == 0).next().is_some_and(|exe| {
                exe.ends_with(b"faultline") || exe.ends_with(b"faultline (deleted)")
            })
        })
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
    /// Starts every agent, then every node (node-1 initializes the cluster), then — with
    /// services — payments and each node's gateway and worker.
    pub fn up(spec: ClusterSpec) -> Result<Cluster, SupervisorError> {
        Cluster::up_with(spec, None)
    }

    /// [`Cluster::up`], with a flight recorder when `record` is given: `faultline record`
    /// is started first (so that no process's first spans are lost), in the cluster's
    /// process group, and once it listens every process exports to it — restarted ones
    /// too, as the cluster file's `otlp` names it. `spec.otlp` must then be `None`.
    pub fn up_with(
        mut spec: ClusterSpec,
        record: Option<RecordSpec>,
    ) -> Result<Cluster, SupervisorError> {
        if let (Some(otlp), Some(_)) = (&spec.otlp, &record) {
            return Err(SupervisorError::InvalidSpec(format!(
                "the cluster exports to {otlp}: it cannot also export to a flight recorder"
            )));
        }
        let n = usize::try_from(spec.nodes).unwrap_or(0);
        std::fs::create_dir_all(spec.dir.join("logs"))
            .map_err(io(format!("creating {}", spec.dir.display())))?;
        let per_member = if spec.services { 6 } else { 4 };
        let ports = free_ports(per_member * n + 1 + usize::from(record.is_some()))?;
        let recorder = record.map(|record| (record, ports[per_member * n + 1]));
        if let Some((_, addr)) = &recorder {
            spec.otlp = Some(format!("http://{addr}"));
        }
        let service = |addr: SocketAddr| ServiceEntry { addr, pid: None };
        let members: Vec<MemberEntry> = (0..n)
            .map(|i| {
                let at = per_member * i;
                MemberEntry {
                    name: node_name(i as u64 + 1),
                    raft_id: i as u64 + 1,
                    api: ports[at],
                    agent_inbound: ports[at + 1],
                    agent_outbound: ports[at + 2],
                    agent_admin: ports[at + 3],
                    node_pid: None,
                    agent_pid: None,
                    data_dir: spec.dir.join(node_name(i as u64 + 1)),
                    gateway: spec.services.then(|| service(ports[at + 4])),
                    worker: spec.services.then(|| service(ports[at + 5])),
                }
            })
            .collect();
        let payments = spec.services.then(|| service(ports[per_member * n]));
        let mut peers: serde_json::Map<String, serde_json::Value> = members
            .iter()
            .map(|m| (m.name.clone(), m.agent_inbound.to_string().into()))
            .collect();
        if let Some(payments) = &payments {
            // The third party is reached straight from each agent, without a sidecar.
            peers.insert(PAYMENTS.to_owned(), payments.addr.to_string().into());
        }
        let peers_path = spec.dir.join("peers.json");
        std::fs::write(&peers_path, serde_json::Value::Object(peers).to_string())
            .map_err(io(format!("writing {}", peers_path.display())))?;
        let otlp = spec.otlp.clone();
        let mut cluster = Cluster {
            spec,
            file: ClusterFile {
                members,
                payments,
                load_pid: None,
                otlp,
                load: None,
                process_group: None,
                telemetry: None,
                serving_since_ms: None,
            },
            nodes: (0..n).map(|_| None).collect(),
            agents: (0..n).map(|_| None).collect(),
            gateways: (0..n).map(|_| None).collect(),
            workers: (0..n).map(|_| None).collect(),
            payments: None,
            load: None,
            recorder: None,
        };
        if let Some((record, addr)) = &recorder {
            cluster.start_recorder(record, *addr)?;
        }
        for i in 1..=n {
            cluster.start_agent(i)?;
        }
        for i in 1..=n {
            cluster.start_node(i)?;
        }
        if cluster.spec.services {
            cluster.start_payments()?;
            for i in 1..=n {
                cluster.start_gateway(i)?;
                cluster.start_worker(i)?;
            }
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

    /// Starts the flight recorder (the first process: it leads the process group) and
    /// waits until it accepts connections on `addr` and has created its file (it binds
    /// first, so a listening recorder could still fail to create the file and exit).
    fn start_recorder(
        &mut self,
        record: &RecordSpec,
        addr: SocketAddr,
    ) -> Result<(), SupervisorError> {
        if let Some(parent) = record.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        // An earlier recording there is replaced (`--force`); removing it first lets its
        // reappearance tell that the new recorder created its file.
        match std::fs::remove_file(&record.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("replacing {}", record.path.display()))(e));
            }
            _ => {}
        }
        let log = self.spec.dir.join("logs").join("recorder.log");
        let mut command = Command::new(&self.spec.exe);
        command
            .args(["record", "--listen", &addr.to_string()])
            .arg("--out")
            .arg(&record.path)
            .args(["--rotate-size", &record.rotate_size.to_string()])
            .args(["--keep", &record.keep.to_string()])
            // A recording left by an earlier cluster in the same place is replaced.
            .arg("--force")
            .stdin(Stdio::null())
            // Its closing summary.
            .stdout(self.log("recorder.out")?)
            .stderr(self.log("recorder.log")?);
        let child = self
            .spawn(&mut command)
            .map_err(io("starting the flight recorder (faultline record)"))?;
        self.file.telemetry = Some(TelemetryEntry {
            otlp: format!("http://{addr}"),
            path: record.path.clone(),
            pid: Some(child.id()),
        });
        self.recorder = Some(child);
        self.write_file()?;
        let started = Instant::now();
        loop {
            if record.path.exists()
                && std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if let Some(recorder) = &mut self.recorder
                && let Ok(Some(status)) = recorder.try_wait()
            {
                self.recorder = None;
                return Err(SupervisorError::Recorder {
                    reason: format!("exited ({status}) before it listened on {addr}"),
                    log,
                });
            }
            if started.elapsed() > RECORDER_START {
                return Err(SupervisorError::Recorder {
                    reason: format!("did not listen on {addr} within {RECORDER_START:?}"),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
        let child = self
            .spawn(&mut command)
            .map_err(io(format!("starting {}'s agent", m.name)))?;
        self.file.members[i - 1].agent_pid = Some(child.id());
        self.agents[i - 1] = Some(child);
        self.write_file()
    }

    /// Starts member `i`'s node (if it is not running).
    pub fn start_node(&mut self, i: usize) -> Result<(), SupervisorError> {
        let m = self.member(i)?.clone();
        if self.nodes[i - 1].is_some() || m.node_pid.is_some_and(|p| self.file.is_running(p)) {
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
        let child = self
            .spawn(&mut command)
            .map_err(io(format!("starting {}", m.name)))?;
        self.file.members[i - 1].node_pid = Some(child.id());
        self.nodes[i - 1] = Some(child);
        self.write_file()
    }

    /// Spawns `command` in the cluster's process group (the first process starts it),
    /// recording the group before anything else can be started.
    fn spawn(&mut self, command: &mut Command) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt as _;
        let group = self
            .file
            .process_group
            .map_or(0, |g| i32::try_from(g).unwrap_or(0));
        let child = command.process_group(group).spawn()?;
        if self.file.process_group.is_none() {
            self.file.process_group = Some(child.id());
            self.write_file().map_err(std::io::Error::other)?;
        }
        Ok(child)
    }

    fn service_command(&self, args: &[&str], log: &str) -> Result<Command, SupervisorError> {
        let mut command = Command::new(&self.spec.exe);
        command
            .arg("service")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log(log)?);
        if let Some(otlp) = &self.spec.otlp {
            command.args(["--otlp", otlp]);
        }
        Ok(command)
    }

    /// Starts payments (if it is not running).
    pub fn start_payments(&mut self) -> Result<(), SupervisorError> {
        let Some(entry) = self.file.payments.clone() else {
            return Ok(());
        };
        if self.payments.is_some() {
            return Ok(());
        }
        let mut command = self.service_command(
            &["payments", "--listen", &entry.addr.to_string()],
            "payments.log",
        )?;
        let child = self.spawn(&mut command).map_err(io("starting payments"))?;
        if let Some(p) = &mut self.file.payments {
            p.pid = Some(child.id());
        }
        self.payments = Some(child);
        self.write_file()
    }

    /// Starts member `i`'s gateway (if it is not running).
    pub fn start_gateway(&mut self, i: usize) -> Result<(), SupervisorError> {
        self.start_member_service(i, MemberService::Gateway)
    }

    /// Starts member `i`'s worker (if it is not running).
    pub fn start_worker(&mut self, i: usize) -> Result<(), SupervisorError> {
        self.start_member_service(i, MemberService::Worker)
    }

    fn start_member_service(
        &mut self,
        i: usize,
        service: MemberService,
    ) -> Result<(), SupervisorError> {
        let m = self.member(i)?.clone();
        let (entry, running) = match service {
            MemberService::Gateway => (&m.gateway, &self.gateways[i - 1]),
            MemberService::Worker => (&m.worker, &self.workers[i - 1]),
        };
        let Some(entry) = entry else {
            return Ok(());
        };
        if running.is_some() {
            return Ok(());
        }
        let name = service.name();
        let mut command = self.service_command(
            &[
                name,
                "--node",
                &m.raft_id.to_string(),
                "--listen",
                &entry.addr.to_string(),
                "--via",
                &m.agent_outbound.to_string(),
            ],
            &format!("{name}-{}.log", m.raft_id),
        )?;
        let child = self
            .spawn(&mut command)
            .map_err(io(format!("starting {}'s {name}", m.name)))?;
        let member = &mut self.file.members[i - 1];
        let (recorded, slot) = match service {
            MemberService::Gateway => (&mut member.gateway, &mut self.gateways[i - 1]),
            MemberService::Worker => (&mut member.worker, &mut self.workers[i - 1]),
        };
        if let Some(recorded) = recorded {
            recorded.pid = Some(child.id());
        }
        *slot = Some(child);
        self.write_file()
    }

    /// Starts `faultline load` against every gateway at `rate` requests/s, writing its
    /// client history to `history.jsonl` in the state directory (a restarted load to
    /// `history-2.jsonl`, …).
    pub fn start_load(&mut self, rate: f64, extra: &[String]) -> Result<(), SupervisorError> {
        if self.load.is_some() || self.file.load_pid.is_some_and(|p| self.file.is_running(p)) {
            return Ok(());
        }
        let mut command = Command::new(&self.spec.exe);
        command.arg("load").args(extra);
        for gateway in self.gateways() {
            command.args(["--target", &gateway.to_string()]);
        }
        command
            .args(["--rate", &rate.to_string()])
            .arg("--history")
            .arg(self.next_history())
            .stdin(Stdio::null())
            .stdout(self.log("load.out")?)
            .stderr(self.log("load.log")?);
        if let Some(otlp) = &self.spec.otlp {
            command.args(["--otlp", otlp]);
        }
        let child = self.spawn(&mut command).map_err(io("starting the load"))?;
        self.file.load_pid = Some(child.id());
        self.file.load = Some(LoadEntry {
            rate,
            extra: extra.to_vec(),
        });
        self.file
            .serving_since_ms
            .get_or_insert_with(crate::scenarios::now_ms);
        self.load = Some(child);
        self.write_file()
    }

    /// Where the next load run writes its history: `history.jsonl`, then (a load
    /// restarted, e.g. by the hot-key scenario) `history-2.jsonl`, … — never over an
    /// earlier run's.
    fn next_history(&self) -> PathBuf {
        let first = self.spec.dir.join("history.jsonl");
        if !first.exists() && self.file.load.is_none() {
            return first;
        }
        (2..)
            .map(|k| self.spec.dir.join(format!("history-{k}.jsonl")))
            .find(|p| !p.exists())
            .unwrap_or(first)
    }

    /// Stops the load (SIGTERM: it writes its history and summary), waiting up to
    /// [`DOWN_GRACE`].
    pub fn stop_load(&mut self) -> Result<(), SupervisorError> {
        if let Some(child) = self.load.take() {
            terminate(vec![child], DOWN_GRACE);
        } else if let Some(pid) = self.file.load_pid.filter(|&p| self.file.is_running(p)) {
            stop_one(&self.file, pid, DOWN_GRACE);
        }
        self.file.load_pid = None;
        self.write_file()
    }

    /// Takes control of a cluster started earlier (by `demo up`, which has returned),
    /// from its state directory: processes are known by the pids in its cluster file.
    pub fn attach(dir: &Path, exe: PathBuf) -> Result<Cluster, SupervisorError> {
        let file = ClusterFile::read(&dir.join("cluster.json"))?;
        let n = file.members.len();
        let spec = ClusterSpec {
            nodes: n as u64,
            dir: dir.to_owned(),
            exe,
            otlp: file.otlp.clone(),
            services: file.payments.is_some(),
        };
        Ok(Cluster {
            spec,
            file,
            nodes: (0..n).map(|_| None).collect(),
            agents: (0..n).map(|_| None).collect(),
            gateways: (0..n).map(|_| None).collect(),
            workers: (0..n).map(|_| None).collect(),
            payments: None,
            load: None,
            recorder: None,
        })
    }

    /// Leaves every process running and forgets them (for `demo up`, which returns
    /// while the cluster runs on; `demo down` stops it from the cluster file).
    pub fn detach(mut self) -> ClusterFile {
        for child in self.children() {
            child.take();
        }
        self.recorder.take();
        self.file.clone()
    }

    /// The gateways' addresses (with services).
    pub fn gateways(&self) -> Vec<SocketAddr> {
        self.file
            .members
            .iter()
            .filter_map(|m| m.gateway.as_ref().map(|g| g.addr))
            .collect()
    }

    /// `kill -9` member `i`'s node.
    pub fn kill_node(&mut self, i: usize) -> Result<(), SupervisorError> {
        let name = self.member(i)?.name.clone();
        if let Some(mut child) = self.nodes[i - 1].take() {
            child.kill().map_err(io(format!("killing {name}")))?;
            let _ = child.wait();
        } else if let Some(pid) = self.file.members[i - 1]
            .node_pid
            .filter(|&p| is_faultline(p))
        {
            // Attached: not our child; SIGKILL by pid and wait until it is gone.
            signal_pid("-KILL", pid);
            let deadline = Instant::now() + Duration::from_secs(5);
            while is_faultline(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
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

    /// Sends a JSON admin request (`PUT`/`POST`/`DELETE` with an optional body) to
    /// `url` and returns the JSON answer, or says why it failed.
    pub async fn admin(
        client: &reqwest::Client,
        method: reqwest::Method,
        url: String,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, SupervisorError> {
        let mut request = client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let refused = |reason: String| SupervisorError::Admin {
            url: url.clone(),
            method: method.to_string(),
            reason,
        };
        let response = request.send().await.map_err(|e| refused(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| refused(e.to_string()))?;
        if !status.is_success() {
            return Err(refused(format!("{status}: {}", text.trim())));
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
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

    /// Whether member `index` (0-based)'s node runs: our child, or (attached) a live pid.
    fn node_running(&self, index: usize) -> bool {
        self.nodes[index].is_some()
            || self.file.members[index]
                .node_pid
                .is_some_and(|p| self.file.is_running(p))
    }

    async fn leader_agreed(&self, client: &reqwest::Client) -> Result<String, String> {
        let mut leader: Option<String> = None;
        for (index, m) in self.file.members.iter().enumerate() {
            if !self.node_running(index) {
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
            .find(|(i, _)| self.node_running(*i))
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
    /// The flight recorder goes last, once the others are gone, with [`RECORDER_GRACE`]
    /// to finish its file.
    pub fn down(mut self) {
        let running: Vec<Child> = self.children().filter_map(Option::take).collect();
        terminate(running, DOWN_GRACE);
        if let Some(recorder) = self.recorder.take() {
            terminate(vec![recorder], RECORDER_GRACE);
        }
    }

    /// Every process slot but the flight recorder's: services first (they depend on the
    /// nodes), then nodes, then agents.
    fn children(&mut self) -> impl Iterator<Item = &mut Option<Child>> {
        std::iter::once(&mut self.load)
            .chain(self.gateways.iter_mut())
            .chain(self.workers.iter_mut())
            .chain(std::iter::once(&mut self.payments))
            .chain(self.nodes.iter_mut())
            .chain(self.agents.iter_mut())
    }

    fn kill_all(&mut self) {
        let recorder = self.recorder.take();
        for mut child in self.children().filter_map(Option::take).chain(recorder) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failure report
    use super::*;

    fn spec(dir: &Path, exe: &str, otlp: Option<&str>) -> ClusterSpec {
        ClusterSpec {
            nodes: 3,
            dir: dir.to_owned(),
            exe: exe.into(),
            otlp: otlp.map(str::to_owned),
            services: false,
        }
    }

    #[test]
    fn a_recorder_that_exits_at_once_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        // `false` exits before listening, like a recorder that cannot bind.
        let err = Cluster::up_with(
            spec(dir.path(), "false", None),
            Some(RecordSpec::in_dir(dir.path())),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, SupervisorError::Recorder { .. }) && text.contains("exited"),
            "{text}"
        );
        assert!(text.contains("recorder.log"), "{text}");
        // It was recorded as started, so nothing it started is forgotten.
        let file = ClusterFile::read(&dir.path().join("cluster.json")).unwrap();
        assert!(file.telemetry.is_some_and(|t| t.pid.is_some()));
        assert!(file.members.iter().all(|m| m.agent_pid.is_none()));
    }

    #[test]
    fn recording_and_an_endpoint_of_ones_own_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let err = Cluster::up_with(
            spec(dir.path(), "false", Some("http://127.0.0.1:4317")),
            Some(RecordSpec::in_dir(dir.path())),
        )
        .unwrap_err();
        assert!(matches!(err, SupervisorError::InvalidSpec(_)), "{err}");
    }

    #[test]
    fn a_cluster_file_without_telemetry_still_reads() {
        let old = r#"{"members": [], "otlp": "http://127.0.0.1:4317", "process_group": 7}"#;
        let file: ClusterFile = serde_json::from_str(old).unwrap();
        assert_eq!(file.telemetry, None);
        let text = serde_json::to_string(&file).unwrap();
        assert!(!text.contains("telemetry"), "{text}");
        let recorded = ClusterFile {
            telemetry: Some(TelemetryEntry {
                otlp: "http://127.0.0.1:5000".to_owned(),
                path: "/d/telemetry/spans.jsonl".into(),
                pid: Some(42),
            }),
            ..file
        };
        // The recorder is recorded as started, last.
        assert_eq!(recorded.pids().last(), Some(&42));
        let back: ClusterFile =
            serde_json::from_str(&serde_json::to_string(&recorded).unwrap()).unwrap();
        assert_eq!(back, recorded);
    }
}
