//! The registry of active toxics and the per-request decision.

use std::num::NonZeroU64;
use std::time::Duration;

use http::StatusCode;
use rand::Rng;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::ToxicError;
use super::spec::{Toxic, ToxicId, ToxicKind, ToxicSpec, ToxicType, route_matches};
use crate::Direction;

/// The most toxics one agent holds, so that a runaway script cannot make every
/// request scan an unbounded list.
pub const MAX_TOXICS: usize = 256;

/// The active toxics, in insertion order.
#[derive(Debug, Clone, Default)]
pub struct Toxics {
    toxics: Vec<Toxic>,
    /// The last id handed out; ids are never reused.
    last_id: u64,
}

/// What the proxy knows about a request when it asks for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub direction: Direction,
    /// Inbound: the caller's node name if known. Outbound: the target peer.
    pub peer: Option<&'a str>,
    /// The URI path, without the query string.
    pub path: &'a str,
}

/// What to do with one request. The shell waits `delay`, then performs `terminal` if
/// there is one, else forwards; any response body it sends (forwarded or the error
/// body) is paced to `bandwidth`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The sum of the fired latency toxics' delays.
    pub delay: Duration,
    /// The lowest cap among the fired bandwidth toxics.
    pub bandwidth: Option<NonZeroU64>,
    /// The strongest fired terminal effect, by [`Terminal`]'s precedence.
    pub terminal: Option<Terminal>,
    /// The toxics whose effect is in this decision: the fired latency toxics in
    /// registry order, then the bandwidth toxic that set the cap, then the terminal
    /// one. A toxic that fired but was overridden (a weaker terminal, a higher cap) is
    /// not listed. For metrics only: activations never go into spans.
    pub activations: Vec<Activation>,
}

impl Decision {
    /// True when the request passes untouched.
    pub fn is_pass_through(&self) -> bool {
        self.delay.is_zero() && self.bandwidth.is_none() && self.terminal.is_none()
    }
}

/// A toxic that acted on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    pub id: ToxicId,
    pub toxic_type: ToxicType,
}

/// An effect that ends the exchange instead of forwarding it. When several fire, the
/// strongest wins, in the order of the variants (partition > reset > blackhole >
/// error), and among equals the toxic added first: a partition means no connection, so
/// nothing else can happen; a reset or a hold are transport events that happen before
/// any HTTP answer could; an error status needs a working connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminal {
    /// The peer is unreachable. Refused like a disabled Toxiproxy proxy, not dropped
    /// like a Jepsen iptables rule: the shell writes no response and aborts at once
    /// (HTTP/1.1: close the connection; HTTP/2: reset the stream with
    /// `REFUSED_STREAM`), so callers see a connection error fast, as from a down peer.
    /// A partition that drops packets, so callers time out, is a peer-scoped
    /// `blackhole`.
    Partition,
    /// Close the connection (HTTP/2: reset the stream) without a response.
    Reset,
    /// Hold the request without answering until the caller gives up.
    Blackhole,
    /// Answer with this status without forwarding.
    Error(StatusCode),
}

impl Terminal {
    /// Higher wins.
    fn precedence(self) -> u8 {
        match self {
            Terminal::Partition => 3,
            Terminal::Reset => 2,
            Terminal::Blackhole => 1,
            Terminal::Error(_) => 0,
        }
    }
}

impl Toxics {
    pub fn new() -> Toxics {
        Toxics::default()
    }

    /// Validates `spec`, gives it the next id and appends it.
    pub fn add(&mut self, spec: ToxicSpec) -> Result<Toxic, ToxicError> {
        spec.validate()?;
        if self.toxics.len() >= MAX_TOXICS {
            return Err(ToxicError::TooManyToxics { max: MAX_TOXICS });
        }
        // 2^64 additions cannot happen in a process's lifetime.
        self.last_id += 1;
        let toxic = Toxic {
            id: ToxicId(self.last_id),
            spec,
        };
        self.toxics.push(toxic.clone());
        Ok(toxic)
    }

    /// Removes the toxic with this id, keeping the others' order.
    pub fn remove(&mut self, id: ToxicId) -> Option<Toxic> {
        let index = self.toxics.iter().position(|t| t.id == id)?;
        Some(self.toxics.remove(index))
    }

    pub fn get(&self, id: ToxicId) -> Option<&Toxic> {
        self.toxics.iter().find(|t| t.id == id)
    }

    /// Removes every toxic. Ids keep counting from where they were.
    pub fn clear(&mut self) {
        self.toxics.clear();
    }

    /// The toxics in insertion order.
    pub fn list(&self) -> &[Toxic] {
        &self.toxics
    }

    pub fn len(&self) -> usize {
        self.toxics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.toxics.is_empty()
    }

    /// Decides what to do with one request. Each toxic that matches the request rolls
    /// its probability independently (in registry order, so a seeded `rng` gives a
    /// reproducible decision); the fired ones combine as [`Decision`] describes.
    pub fn decide(&self, request: &RequestFacts<'_>, rng: &mut impl Rng) -> Decision {
        let mut decision = Decision::default();
        let mut bandwidth: Option<(NonZeroU64, Activation)> = None;
        let mut terminal: Option<(Terminal, Activation)> = None;
        for toxic in &self.toxics {
            if !matches(&toxic.spec, request) || !fires(toxic.spec.probability, rng) {
                continue;
            }
            let activation = Activation {
                id: toxic.id,
                toxic_type: toxic.spec.kind.toxic_type(),
            };
            let fired = match &toxic.spec.kind {
                ToxicKind::Latency {
                    latency_ms,
                    jitter_ms,
                } => {
                    let delay = sample_delay(*latency_ms, *jitter_ms, rng);
                    decision.delay = decision.delay.saturating_add(delay);
                    decision.activations.push(activation);
                    continue;
                }
                ToxicKind::Bandwidth { bytes_per_sec } => {
                    if bandwidth.is_none_or(|(cap, _)| *bytes_per_sec < cap) {
                        bandwidth = Some((*bytes_per_sec, activation));
                    }
                    continue;
                }
                ToxicKind::Error { status } => Terminal::Error(*status),
                ToxicKind::Reset => Terminal::Reset,
                ToxicKind::Blackhole => Terminal::Blackhole,
                ToxicKind::Partition { .. } => Terminal::Partition,
            };
            if terminal.is_none_or(|(kept, _)| fired.precedence() > kept.precedence()) {
                terminal = Some((fired, activation));
            }
        }
        if let Some((cap, activation)) = bandwidth {
            decision.bandwidth = Some(cap);
            decision.activations.push(activation);
        }
        if let Some((effect, activation)) = terminal {
            decision.terminal = Some(effect);
            decision.activations.push(activation);
        }
        decision
    }
}

/// The admin API's `GET` body: `{"toxics": [ … ]}`, in insertion order.
impl Serialize for Toxics {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut body = serializer.serialize_struct("Toxics", 1)?;
        body.serialize_field("toxics", &self.toxics)?;
        body.end()
    }
}

fn matches(spec: &ToxicSpec, request: &RequestFacts<'_>) -> bool {
    if spec.direction.is_some_and(|d| d != request.direction) {
        return false;
    }
    if spec
        .route
        .as_ref()
        .is_some_and(|route| !route_matches(route, request.path))
    {
        return false;
    }
    match &spec.kind {
        // A partition needs to know who is on the other side; an unknown caller is
        // not refused.
        ToxicKind::Partition { peers } => request
            .peer
            .is_some_and(|peer| peers.iter().any(|p| p == peer)),
        _ => match &spec.peer {
            Some(wanted) => request.peer == Some(wanted.as_str()),
            None => true,
        },
    }
}

/// Rolls a probability: 1.0 always fires and 0.0 never does, without drawing.
fn fires(probability: f64, rng: &mut impl Rng) -> bool {
    if probability >= 1.0 {
        true
    } else if probability <= 0.0 || probability.is_nan() {
        false
    } else {
        // Uniform in [0, 1), so exactly `probability` of the draws are below it.
        rng.random::<f64>() < probability
    }
}

/// `latency_ms` ± a uniform offset in `[-jitter_ms, +jitter_ms]`, at microsecond
/// resolution, floored at zero.
fn sample_delay(latency_ms: u64, jitter_ms: u64, rng: &mut impl Rng) -> Duration {
    let latency_us = i128::from(latency_ms) * 1000;
    let offset_us = if jitter_ms == 0 {
        0
    } else {
        let jitter_us = i128::from(jitter_ms) * 1000;
        rng.random_range(-jitter_us..=jitter_us)
    };
    let delay_us = (latency_us + offset_us).max(0);
    Duration::from_micros(u64::try_from(delay_us).unwrap_or(u64::MAX))
}
