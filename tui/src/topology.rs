//! The cluster as its spans show it: which nodes speak, who leads, who can reach whom.
//! Used when no cluster is attached (a capture replayed, a foreign system over OTLP),
//! and for the reachability matrix in every case (the cluster's `/status` cannot say
//! which links work; calls between nodes can).
//!
//! ```text
//!  span of service faultline-node at instance A ──► node A seen at t, term
//!  raft.append_entries (client) from A ──────────► A led at t (term)
//!  client span A ─► server.address B (B a node) ──► per-second link counts A→B: calls, failures
//! ```

use std::collections::{BTreeMap, VecDeque};

use faultline_model::{Span, SpanKind};

use crate::store::is_error;

/// The service name the demo's nodes export under.
pub const NODE_SERVICE: &str = "faultline-node";
/// Services whose instance is a node's name (the node and its sidecar agent).
const NODE_SIDE: &[&str] = &[NODE_SERVICE, "faultline-agent"];
/// Seconds of link history kept (the matrix looks at the last [`LINK_WINDOW_S`]).
const LINK_KEEP_S: i64 = 1800;
/// The matrix's window.
pub const LINK_WINDOW_S: i64 = 10;

/// One node as the spans show it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeenNode {
    pub last_seen_ns: u64,
    pub term: Option<u64>,
    /// The last time it sent Raft appends (it led), and in which term.
    pub led_at_ns: Option<u64>,
    pub led_term: Option<u64>,
}

/// A link's state over the matrix window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// No calls seen.
    Unknown,
    /// Calls, under half failing.
    Ok,
    /// Half or more of the calls fail.
    Degraded,
    /// At least 90 % of at least 3 calls fail.
    Cut,
}

impl Link {
    /// A glyph that says it without colour.
    pub fn glyph(self) -> &'static str {
        match self {
            Link::Unknown => "·",
            Link::Ok => "ok",
            Link::Degraded => "~",
            Link::Cut => "×",
        }
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Topology {
    pub nodes: BTreeMap<String, SeenNode>,
    /// (second, from, to) → (calls, failures), oldest seconds first.
    links: VecDeque<(i64, String, String, u32, u32)>,
}

/// A number attribute; `Value::as_i64` also reads the ones the cluster writes as
/// strings (`raft.*`).
fn number(span: &Span, key: &str) -> Option<u64> {
    let value = span.attributes.get(key)?.as_i64()?;
    u64::try_from(value).ok()
}

fn instance(span: &Span) -> Option<&str> {
    span.resource
        .attributes
        .get_str("faultline.node")
        .or_else(|| span.resource.attributes.get_str("service.instance.id"))
}

impl Topology {
    pub fn observe(&mut self, span: &Span) {
        let service = span.service_name();
        if !NODE_SIDE.contains(&service) {
            return;
        }
        let Some(from) = instance(span) else {
            return;
        };
        if service == NODE_SERVICE {
            let node = self.nodes.entry(from.to_owned()).or_default();
            node.last_seen_ns = node.last_seen_ns.max(span.end_ns);
            if let Some(term) = number(span, "raft.term") {
                node.term = Some(node.term.map_or(term, |t| t.max(term)));
                if span.name == "raft.append_entries"
                    && span.kind == SpanKind::Client
                    && node.led_at_ns.is_none_or(|t| t <= span.end_ns)
                {
                    node.led_at_ns = Some(span.end_ns);
                    node.led_term = Some(term);
                }
            }
        }
        if span.kind != SpanKind::Client {
            return;
        }
        let Some(to) = span.attributes.get_str("server.address") else {
            return;
        };
        if to == from || !to.starts_with("node-") {
            return;
        }
        let failed = is_error(span);
        let second = i64::try_from(span.end_ns / 1_000_000_000).unwrap_or(i64::MAX);
        let slot = self
            .links
            .iter_mut()
            .rev()
            .take(64)
            .find(|(s, f, t, _, _)| *s == second && f == from && t == to);
        match slot {
            Some((_, _, _, calls, failures)) => {
                *calls += 1;
                *failures += u32::from(failed);
            }
            None => {
                self.links.push_back((
                    second,
                    from.to_owned(),
                    to.to_owned(),
                    1,
                    u32::from(failed),
                ));
            }
        }
        let newest = self.links.back().map_or(second, |l| l.0.max(second));
        while self
            .links
            .front()
            .is_some_and(|l| l.0 + LINK_KEEP_S < newest)
        {
            self.links.pop_front();
        }
    }

    /// Node names, sorted.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// The link from → to over the [`LINK_WINDOW_S`] seconds ending at `at_s`.
    pub fn link(&self, from: &str, to: &str, at_s: i64) -> Link {
        let (calls, failures) = self
            .links
            .iter()
            .filter(|(s, f, t, _, _)| {
                *s <= at_s && *s > at_s - LINK_WINDOW_S && f == from && t == to
            })
            .fold((0, 0), |(c, e), l| (c + l.3, e + l.4));
        if calls == 0 {
            Link::Unknown
        } else if calls >= 3 && f64::from(failures) >= 0.9 * f64::from(calls) {
            Link::Cut
        } else if 2 * failures >= calls {
            Link::Degraded
        } else {
            Link::Ok
        }
    }

    /// The node that most recently sent Raft appends, as of `at_ns`, with its term.
    pub fn leader(&self, at_ns: u64) -> Option<(&str, Option<u64>)> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.led_at_ns.is_some_and(|t| t <= at_ns))
            .max_by_key(|(_, n)| n.led_at_ns)
            .map(|(name, n)| (name.as_str(), n.led_term))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use faultline_model::{KeyValue, Resource, SpanId, TraceId};

    use super::*;

    fn span(service: &str, node: &str, name: &str, kind: SpanKind, end_s: u64) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), name);
        let mut resource = Resource::with_service(service);
        resource
            .attributes
            .0
            .push(KeyValue::new("faultline.node", node));
        span.resource = Arc::new(resource);
        span.kind = kind;
        span.end_ns = end_s * 1_000_000_000;
        span
    }

    #[test]
    fn leader_term_and_links_from_spans() {
        let mut topology = Topology::default();
        let mut append = span(
            NODE_SERVICE,
            "node-1",
            "raft.append_entries",
            SpanKind::Client,
            10,
        );
        append.attributes.insert("raft.term", "3");
        topology.observe(&append);
        for i in 0..4 {
            let mut call = span("faultline-agent", "node-1", "POST", SpanKind::Client, 10);
            call.attributes.insert("server.address", "node-2");
            call.attributes
                .insert("http.response.status_code", if i == 0 { 200 } else { 504 });
            topology.observe(&call);
            let mut call = span("faultline-agent", "node-1", "POST", SpanKind::Client, 10);
            call.attributes.insert("server.address", "node-3");
            call.attributes.insert("http.response.status_code", 200);
            topology.observe(&call);
        }
        assert_eq!(topology.leader(10_000_000_000), Some(("node-1", Some(3))));
        assert_eq!(topology.leader(9_000_000_000), None);
        assert_eq!(topology.link("node-1", "node-2", 10), Link::Degraded);
        assert_eq!(topology.link("node-1", "node-3", 10), Link::Ok);
        assert_eq!(topology.link("node-2", "node-1", 10), Link::Unknown);
        assert_eq!(topology.link("node-1", "node-3", 30), Link::Unknown);
        assert_eq!(topology.node_names(), ["node-1"]);
    }
}
