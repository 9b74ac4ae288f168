//! Calls between services: who called whom, seen from the caller's side, with
//! sidecar proxies looked through.
//!
//! ```text
//!  worker client ─► agent client ─► payments server        one call: worker → payments
//!  gateway client ─► agent-1 client ─► agent-2 server ─► node server
//!                                                           one call: gateway → faultline-node
//! ```
//!
//! A call is an outgoing span (client or producer) of an application service. Its
//! callee is the service of the first incoming span (server or consumer) below it that
//! is not a proxy; when the call failed before reaching anything (refused, timed out),
//! the callee comes from the span's `server.address`/`peer.service`, mapped to the
//! service that address answered as in the calls that did arrive.
//!
//! A **proxy service** is recognised by structure, not by name: most of its server
//! spans have a server child of another service (an inbound sidecar), or most of its
//! client spans have a client parent of another service (an outbound sidecar). Its
//! spans are hops inside calls, never callers or callees.

use std::collections::HashMap;

use faultline_model::SpanKind;

use crate::index::{Index, is_incoming, is_outgoing};
use crate::table::SpanTable;

/// Caller-side calls, one per outgoing span of a non-proxy service.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    /// The caller's outgoing span.
    pub row: Vec<u32>,
    pub caller: Vec<u32>,
    /// Interned name of the callee service (or of the address when unresolved).
    pub callee: Vec<u32>,
    /// Service ids (interned) that are proxies.
    pub proxies: Vec<u32>,
}

impl Calls {
    pub fn build(table: &SpanTable, index: &Index) -> Calls {
        let proxies = proxy_services(table, index);
        let is_proxy = |service: u32| proxies.contains(&service);
        // Callee of each caller span, from the incoming spans that arrived.
        let mut callee_of: HashMap<u32, u32> = HashMap::new();
        // peer address → (callee service → count), to name failed calls.
        let mut answered_as: HashMap<u32, HashMap<u32, u32>> = HashMap::new();
        for row in 0..table.len() as u32 {
            let r = row as usize;
            if !is_incoming(table.kind[r]) || is_proxy(table.service[r]) {
                continue;
            }
            // Walk up through proxy hops to the caller; remember the proxy's outgoing
            // hop nearest the caller, which stands for the call when the caller has no
            // client span of its own.
            let mut proxy_hop = None;
            let mut current = index.parent(row);
            while let Some(parent) = current {
                let p = parent as usize;
                if is_proxy(table.service[p]) {
                    if is_outgoing(table.kind[p]) {
                        proxy_hop = Some(parent);
                    }
                    current = index.parent(parent);
                    continue;
                }
                let call = if is_outgoing(table.kind[p]) {
                    Some(parent)
                } else {
                    proxy_hop
                };
                if let Some(call) = call
                    && table.service[p] != table.service[r]
                {
                    callee_of.insert(call, table.service[r]);
                    let peer = table.peer[call as usize];
                    if peer != 0 {
                        *answered_as
                            .entry(peer)
                            .or_default()
                            .entry(table.service[r])
                            .or_default() += 1;
                    }
                }
                break;
            }
        }
        let address_service: HashMap<u32, u32> = answered_as
            .into_iter()
            .filter_map(|(peer, services)| {
                let (service, _) = services.into_iter().max_by_key(|&(s, n)| (n, s))?;
                Some((peer, service))
            })
            .collect();
        let mut calls = Calls {
            proxies,
            ..Calls::default()
        };
        for row in 0..table.len() as u32 {
            let r = row as usize;
            if !is_outgoing(table.kind[r]) {
                continue;
            }
            // The caller: the span's own service, or for a proxy hop, the service of a
            // parent that is not itself a call (an uninstrumented client).
            let caller = if !calls.proxies.contains(&table.service[r]) {
                table.service[r]
            } else {
                match index.parent(row) {
                    Some(parent)
                        if !calls.proxies.contains(&table.service[parent as usize])
                            && !is_outgoing(table.kind[parent as usize]) =>
                    {
                        table.service[parent as usize]
                    }
                    _ => continue,
                }
            };
            let callee = match callee_of.get(&row) {
                Some(&callee) => callee,
                None => {
                    let peer = table.peer[r];
                    if peer == 0 {
                        continue;
                    }
                    address_service.get(&peer).copied().unwrap_or(peer)
                }
            };
            calls.row.push(row);
            calls.caller.push(caller);
            calls.callee.push(callee);
        }
        calls
    }

    pub fn len(&self) -> usize {
        self.row.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row.is_empty()
    }

    /// The distinct edges (caller, callee), sorted.
    pub fn edges(&self) -> Vec<(u32, u32)> {
        let mut edges: Vec<(u32, u32)> = self
            .caller
            .iter()
            .copied()
            .zip(self.callee.iter().copied())
            .collect();
        edges.sort_unstable();
        edges.dedup();
        edges
    }
}

/// Services that behave as proxies (see the module doc).
fn proxy_services(table: &SpanTable, index: &Index) -> Vec<u32> {
    // service → (spans of the kind considered, of which pass-through)
    let mut inbound: HashMap<u32, (u64, u64)> = HashMap::new();
    let mut outbound: HashMap<u32, (u64, u64)> = HashMap::new();
    for row in 0..table.len() as u32 {
        let r = row as usize;
        let service = table.service[r];
        match table.kind[r] {
            SpanKind::Server => inbound.entry(service).or_default().0 += 1,
            SpanKind::Client => {
                let entry = outbound.entry(service).or_default();
                entry.0 += 1;
                if let Some(parent) = index.parent(row) {
                    let p = parent as usize;
                    if table.kind[p] == SpanKind::Client && table.service[p] != service {
                        entry.1 += 1;
                    }
                }
            }
            _ => {}
        }
        // A server span under a server span of another service: the parent is an
        // inbound proxy hop.
        if table.kind[r] == SpanKind::Server
            && let Some(parent) = index.parent(row)
        {
            let p = parent as usize;
            if table.kind[p] == SpanKind::Server && table.service[p] != service {
                inbound.entry(table.service[p]).or_default().1 += 1;
            }
        }
    }
    let mostly = |(total, through): (u64, u64)| total >= 10 && through * 2 >= total;
    let mut proxies: Vec<u32> = inbound
        .iter()
        .filter(|&(_, &counts)| mostly(counts))
        .chain(outbound.iter().filter(|&(_, &counts)| mostly(counts)))
        .map(|(&service, _)| service)
        .collect();
    proxies.sort_unstable();
    proxies.dedup();
    proxies
}
