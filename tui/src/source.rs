//! Where the TUI's data comes from. Each source is a task that sends [`Action`]s into
//! one bounded channel; none of them runs on the UI loop.
//!
//! ```text
//!  OTLP gRPC/HTTP ─► model::receiver (bounded queue, refuses when full) ─► otlp task ──┐
//!  capture file ─► reader thread ─► spans by end time ─► replay task (speed, pause) ───┼─► Inputs (bounded) ─► run.rs
//!  cluster /status ─► poll task (every second) ────────────────────────────────────────┘
//! ```
//!
//! The channel is bounded: when the UI falls behind, the sources wait, and the OTLP
//! receiver's own queue fills and refuses requests retryably (counted by the
//! receiver), so memory stays bounded and nothing is silently lost.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use faultline_model::Span;
use faultline_model::read::{ReadOptions, read_path};
use faultline_model::receiver::{Received, ReceiverConfig, Serving, receiver};
use tokio::sync::{mpsc, watch};

use crate::app::{Action, ReplayState};
use crate::cluster::{ClusterTargets, client, poll};

/// Actions queued for the UI loop at most.
pub const CHANNEL: usize = 1024;

/// The sending side of the UI loop's channel; cheap to clone.
#[derive(Debug, Clone)]
pub struct Inputs {
    tx: mpsc::Sender<Action>,
}

impl Inputs {
    pub fn channel() -> (Inputs, mpsc::Receiver<Action>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        (Inputs { tx }, rx)
    }

    /// Sends, waiting while the loop is behind. False once the UI has quit.
    pub async fn send(&self, action: Action) -> bool {
        self.tx.send(action).await.is_ok()
    }

    /// Sends from a thread outside the runtime, waiting likewise.
    pub fn blocking_send(&self, action: Action) -> bool {
        self.tx.blocking_send(action).is_ok()
    }
}

/// Serves OTLP (gRPC and HTTP on one port) and forwards received spans. The returned
/// handle stops the server when dropped.
pub async fn otlp(inputs: Inputs, addr: SocketAddr) -> std::io::Result<Serving> {
    let (server, mut received) = receiver(ReceiverConfig::default());
    let serving = server.spawn(addr).await?;
    tokio::spawn(async move {
        while let Some(item) = received.recv().await {
            if let Received::Spans(spans) = item
                && !inputs.send(Action::Spans(spans)).await
            {
                break;
            }
        }
    });
    Ok(serving)
}

/// Polls the cluster's nodes every `interval` until the UI quits.
pub fn poll_cluster(inputs: Inputs, targets: ClusterTargets, interval: Duration) {
    tokio::spawn(async move {
        let Ok(http) = client(interval.max(Duration::from_millis(500))) else {
            inputs
                .send(Action::Message("cannot build an HTTP client".to_owned()))
                .await;
            return;
        };
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let snapshot = poll(&http, &targets).await;
            if !inputs.send(Action::Cluster(snapshot)).await {
                break;
            }
        }
    });
}

/// How the replay is steered from the keyboard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayControl {
    pub paused: bool,
    pub speed: f64,
}

/// Replays a capture in data time: spans are handed over when the replay clock
/// passes their end, `speed` times faster than they happened. Returns the steering
/// handle. A capture that cannot be read becomes a message, not a crash.
pub fn replay(inputs: Inputs, path: PathBuf, speed: f64) -> watch::Sender<ReplayControl> {
    let (control, mut steer) = watch::channel(ReplayControl {
        paused: false,
        speed,
    });
    tokio::spawn(async move {
        let name = path.display().to_string();
        let read = tokio::task::spawn_blocking(move || {
            let mut spans: Vec<Span> = Vec::new();
            read_path(&path, &ReadOptions::default(), &mut |batch| {
                spans.extend(batch)
            })
            .map(|_| spans)
        })
        .await;
        let mut spans = match read {
            Ok(Ok(spans)) => spans,
            Ok(Err(error)) => {
                inputs
                    .send(Action::Message(format!("cannot replay: {error}")))
                    .await;
                return;
            }
            Err(error) => {
                inputs
                    .send(Action::Message(format!("cannot replay {name}: {error}")))
                    .await;
                return;
            }
        };
        spans.sort_by_key(|s| (s.end_ns, s.start_ns));
        let Some(first) = spans.first().map(|s| s.end_ns) else {
            inputs
                .send(Action::Message(format!("{name} holds no spans")))
                .await;
            return;
        };
        let total = spans.len();
        inputs
            .send(Action::Message(format!(
                "replaying {total} spans from {name}"
            )))
            .await;
        let step = Duration::from_millis(50);
        let mut ticks = tokio::time::interval(step);
        let mut position = first;
        let mut pending = spans.into_iter().peekable();
        loop {
            ticks.tick().await;
            let ReplayControl { paused, speed } = *steer.borrow_and_update();
            if !paused {
                position = position.saturating_add((step.as_nanos() as f64 * speed) as u64);
            }
            let mut batch = Vec::new();
            while let Some(span) = pending.next_if(|s| s.end_ns <= position) {
                batch.push(span);
            }
            let finished = pending.peek().is_none();
            if !batch.is_empty() && !inputs.send(Action::Spans(batch)).await {
                return;
            }
            let state = ReplayState {
                position_ns: position,
                speed,
                paused,
                finished,
            };
            if !inputs.send(Action::Replay(state)).await {
                return;
            }
            if finished {
                inputs
                    .send(Action::Message(format!("replay of {name} finished")))
                    .await;
                return;
            }
            if paused {
                // Wait for the keyboard instead of ticking.
                if steer.changed().await.is_err() {
                    return;
                }
            }
        }
    });
    control
}
