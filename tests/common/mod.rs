//! Running the real `faultline` binary in tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

/// A `faultline record` process listening on a free loopback port.
pub struct Recorder {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Recorder {
    pub fn start(out: &Path, extra: &[&str]) -> Recorder {
        let mut child = faultline()
            .args(["record", "--listen", "127.0.0.1:0", "--out"])
            .arg(out)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn faultline record");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("faultline record did not report its address");
            };
            if let Some(rest) = line.strip_prefix("faultline record: listening on ") {
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                return Recorder {
                    child,
                    addr,
                    stderr: rx,
                };
            }
        }
    }

    /// Sends `signal` (e.g. "INT") and waits for the process to exit; returns its status
    /// and everything it printed on stderr since start-up.
    pub fn stop(mut self, signal: &str) -> (ExitStatus, String) {
        self::signal(&self.child, signal);
        let status = wait(&mut self.child, Duration::from_secs(30));
        let mut text = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            text.push_str(&line);
            text.push('\n');
        }
        (status, text)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `signal` (e.g. "INT") to a child process.
pub fn signal(child: &Child, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{signal} failed");
}

pub fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The seed of a randomized test: `FAULTLINE_SEED` when set (to rerun a failure), else random.
pub fn seed() -> u64 {
    std::env::var("FAULTLINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random)
}

/// A 3-node demo cluster (nodes behind their agents) with its state in `dir`.
pub fn start_cluster(dir: &Path) -> faultline_cluster::supervisor::Cluster {
    // Nothing listens there: the processes count their spans as dropped.
    cluster(dir, "http://127.0.0.1:9", false)
}

/// A 3-node demo cluster with its state in `dir`, every process exporting to `otlp`;
/// with `services`, the gateways, workers and payments too.
pub fn cluster(dir: &Path, otlp: &str, services: bool) -> faultline_cluster::supervisor::Cluster {
    faultline_cluster::supervisor::Cluster::up(faultline_cluster::supervisor::ClusterSpec {
        nodes: 3,
        dir: dir.to_owned(),
        exe: env!("CARGO_BIN_EXE_faultline").into(),
        otlp: Some(otlp.to_owned()),
        services,
    })
    .unwrap()
}

/// An HTTP client for the cluster's APIs (no proxy) giving up after `timeout`.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// What an error answer from `POST /sm/ops` says about whether the operation took effect.
#[derive(Debug)]
pub enum Refusal {
    /// Refused before it reached Raft, or applied as a refusal that changed nothing.
    Definite,
    /// It may have been proposed, and may yet commit: unknown.
    Unknown,
}

/// One state-machine operation through `node` (an agent's inbound listener).
pub async fn send_op(
    client: &reqwest::Client,
    node: SocketAddr,
    op: &faultline_cluster::sm::Op,
) -> Result<faultline_cluster::sm::Response, Refusal> {
    let response = client
        .post(format!("http://{node}/sm/ops"))
        .json(op)
        .send()
        .await
        .map_err(|_| Refusal::Unknown)?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(|_| Refusal::Unknown)?;
    if status.is_success() {
        return serde_json::from_value(body).map_err(|_| Refusal::Unknown);
    }
    match body["error"].as_str() {
        // Refused by a node that knew no leader, or by a follower the request was
        // forwarded to: never proposed (node/api.rs).
        Some("no_leader" | "not_leader") => Err(Refusal::Definite),
        // Committed, but refused by the state machine, which left the state unchanged
        // (a stale receipt, bad input, a full queue).
        Some("conflict" | "invalid" | "limit") => Err(Refusal::Definite),
        // `raft` (503), `forward_failed` (502), or the agent's own answer when its node
        // is down: the operation may have been proposed.
        _ => Err(Refusal::Unknown),
    }
}

/// `promtool check metrics` (Debian package `prometheus`, which `.ci/run` installs) on an
/// exposition: no errors and no lint findings. Skipped, saying so, where promtool is not
/// on PATH — unless `FAULTLINE_REQUIRE_PROMTOOL=1`.
pub fn promtool_check(exposition: &str) {
    use std::io::Write as _;
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(_) if std::env::var("FAULTLINE_REQUIRE_PROMTOOL").as_deref() != Ok("1") => {
            eprintln!("SKIPPED: promtool is not on PATH (Debian package prometheus)");
            return;
        }
        Err(e) => panic!("FAULTLINE_REQUIRE_PROMTOOL=1 but promtool cannot run: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{exposition}"
    );
}

/// Runs `faultline demo down --dir DIR` when dropped, so that a failing test leaves no
/// demo cluster behind.
pub struct DemoDown(pub std::path::PathBuf);

impl Drop for DemoDown {
    fn drop(&mut self) {
        let _ = faultline()
            .args(["demo", "down", "--dir"])
            .arg(&self.0)
            .stdin(Stdio::null())
            .output();
    }
}

/// A two-thread runtime for the cluster tests' clients.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Where clients reach each node of `cluster`: its agent's inbound listener.
pub fn agents(cluster: &faultline_cluster::supervisor::Cluster) -> Vec<SocketAddr> {
    cluster
        .file()
        .members
        .iter()
        .map(|m| m.agent_inbound)
        .collect()
}
