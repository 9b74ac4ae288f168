//! Election and leader-change telemetry, derived from openraft's metrics.
//!
//! openraft 0.9 emits no election events, and its metrics channel keeps only the latest
//! value, so rapid changes can merge. This observer compares each metrics value it
//! sees with the previous one and turns differences into events:
//!
//! ```text
//!  term rose while Candidate   ─► election started (term)
//!  Candidate → Leader           ─► election won  (term, duration)
//!  Candidate → Follower         ─► election lost (term, duration, the new leader if known)
//!  current_leader changed       ─► leader change (from, to, term)
//! ```
//!
//! A merged change still shows: a term that rose by two between two looks counts one
//! election started, and the leader change is still seen. Events go to `tracing` (and
//! from there to OTLP: an election is a `raft.election` span from its start to its
//! outcome) and to counters for `/metrics` and `/status`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use openraft::{RaftMetrics, ServerState};
use serde::Serialize;

use super::{NodeId, Raft};

/// Counters of what the observer saw.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ElectionCounts {
    pub elections_started: u64,
    pub elections_won: u64,
    pub elections_lost: u64,
    pub leader_changes: u64,
}

/// One event, as the observer emits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionEvent {
    Started {
        term: u64,
    },
    Won {
        term: u64,
    },
    Lost {
        term: u64,
        leader: Option<NodeId>,
    },
    LeaderChanged {
        from: Option<NodeId>,
        to: Option<NodeId>,
        term: u64,
    },
}

/// What the observer knows between two looks at the metrics.
#[derive(Debug, Default)]
pub struct Tracker {
    last: Option<(ServerState, u64, Option<NodeId>)>,
    pub counts: ElectionCounts,
}

impl Tracker {
    /// Compares `metrics` with the previous look; returns the events it implies.
    pub fn observe(
        &mut self,
        state: ServerState,
        term: u64,
        leader: Option<NodeId>,
    ) -> Vec<ElectionEvent> {
        let mut events = Vec::new();
        let Some((last_state, last_term, last_leader)) = self.last.replace((state, term, leader))
        else {
            // The first look: a node already campaigning has started an election.
            if state == ServerState::Candidate {
                events.push(ElectionEvent::Started { term });
                self.counts.elections_started += 1;
            }
            return events;
        };
        let campaigning = matches!(state, ServerState::Candidate | ServerState::Leader);
        if term > last_term && campaigning && last_state != ServerState::Leader {
            // A new term this node campaigns in (as candidate, or already won).
            events.push(ElectionEvent::Started { term });
            self.counts.elections_started += 1;
        }
        let was_candidate = last_state == ServerState::Candidate
            || events
                .iter()
                .any(|e| matches!(e, ElectionEvent::Started { .. }));
        if was_candidate && state == ServerState::Leader && last_state != ServerState::Leader {
            events.push(ElectionEvent::Won { term });
            self.counts.elections_won += 1;
        } else if last_state == ServerState::Candidate && state == ServerState::Follower {
            events.push(ElectionEvent::Lost { term, leader });
            self.counts.elections_lost += 1;
        }
        if leader != last_leader && leader.is_some() {
            events.push(ElectionEvent::LeaderChanged {
                from: last_leader,
                to: leader,
                term,
            });
            self.counts.leader_changes += 1;
        }
        events
    }
}

/// The observer's shared state: counters and the time of the last leader change.
#[derive(Debug, Clone, Default)]
pub struct Elections(Arc<Mutex<Tracker>>);

impl Elections {
    pub fn counts(&self) -> ElectionCounts {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts
            .clone()
    }
}

/// Watches `raft`'s metrics until it shuts down, emitting election events.
pub fn spawn(id: NodeId, raft: &Raft) -> Elections {
    let elections = Elections::default();
    let shared = elections.clone();
    let mut watch = raft.metrics();
    tokio::spawn(async move {
        let mut campaign: Option<(tracing::Span, Instant)> = None;
        loop {
            let (state, term, leader) = {
                let m: RaftMetrics<NodeId, _> = watch.borrow_and_update().clone();
                (m.state, m.current_term, m.current_leader)
            };
            let events = shared
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .observe(state, term, leader);
            for event in events {
                match event {
                    ElectionEvent::Started { term } => {
                        let span = tracing::info_span!(
                            "raft.election",
                            raft.node_id = id,
                            raft.term = term,
                            raft.election.outcome = tracing::field::Empty,
                            raft.leader_id = tracing::field::Empty,
                        );
                        tracing::info!(parent: &span, raft.node_id = id, raft.term = term, "election started");
                        campaign = Some((span, Instant::now()));
                    }
                    ElectionEvent::Won { term } => {
                        if let Some((span, started)) = campaign.take() {
                            span.record("raft.election.outcome", "won");
                            span.record("raft.leader_id", id);
                            tracing::info!(parent: &span, raft.node_id = id, raft.term = term,
                                elapsed_ms = started.elapsed().as_millis() as u64, "election won");
                        }
                    }
                    ElectionEvent::Lost { term, leader } => {
                        if let Some((span, started)) = campaign.take() {
                            span.record("raft.election.outcome", "lost");
                            if let Some(leader) = leader {
                                span.record("raft.leader_id", leader);
                            }
                            tracing::info!(parent: &span, raft.node_id = id, raft.term = term,
                                elapsed_ms = started.elapsed().as_millis() as u64, "election lost");
                        }
                    }
                    ElectionEvent::LeaderChanged { from, to, term } => {
                        // A moment, not an operation: a span that starts and ends here,
                        // so that it is exported (events need a span to live in).
                        let span = tracing::info_span!(
                            "raft.leader_change",
                            raft.node_id = id,
                            raft.term = term,
                            raft.leader_id = to,
                            raft.previous_leader_id = from,
                            raft.role = role_name(state),
                        );
                        tracing::info!(
                            parent: &span,
                            raft.node_id = id,
                            raft.term = term,
                            raft.leader_id = to,
                            raft.previous_leader_id = from,
                            "leader changed"
                        );
                    }
                }
            }
            if watch.changed().await.is_err() {
                return;
            }
        }
    });
    elections
}

/// `raft.role` as the conventions spell it.
pub fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_that_wins_counts_started_won_and_a_leader_change() {
        let mut t = Tracker::default();
        assert!(t.observe(ServerState::Follower, 1, Some(2)).is_empty());
        assert_eq!(
            t.observe(ServerState::Candidate, 2, None),
            vec![ElectionEvent::Started { term: 2 }]
        );
        assert_eq!(
            t.observe(ServerState::Leader, 2, Some(1)),
            vec![
                ElectionEvent::Won { term: 2 },
                ElectionEvent::LeaderChanged {
                    from: None,
                    to: Some(1),
                    term: 2
                }
            ]
        );
        assert_eq!(
            t.counts,
            ElectionCounts {
                elections_started: 1,
                elections_won: 1,
                elections_lost: 0,
                leader_changes: 1
            }
        );
    }

    #[test]
    fn a_node_first_seen_campaigning_counts_the_election() {
        let mut t = Tracker::default();
        assert_eq!(
            t.observe(ServerState::Candidate, 1, None),
            vec![ElectionEvent::Started { term: 1 }]
        );
        t.observe(ServerState::Leader, 1, Some(1));
        assert_eq!(t.counts.elections_started, 1);
        assert_eq!(t.counts.elections_won, 1);
    }

    #[test]
    fn a_merged_change_from_follower_straight_to_leader_still_counts() {
        let mut t = Tracker::default();
        t.observe(ServerState::Follower, 3, Some(2));
        let events = t.observe(ServerState::Leader, 5, Some(1));
        assert_eq!(
            events,
            vec![
                ElectionEvent::Started { term: 5 },
                ElectionEvent::Won { term: 5 },
                ElectionEvent::LeaderChanged {
                    from: Some(2),
                    to: Some(1),
                    term: 5
                }
            ]
        );
    }

    #[test]
    fn a_candidate_that_hears_a_new_leader_lost() {
        let mut t = Tracker::default();
        t.observe(ServerState::Follower, 1, Some(1));
        t.observe(ServerState::Candidate, 2, None);
        let events = t.observe(ServerState::Follower, 3, Some(3));
        assert_eq!(
            events,
            vec![
                ElectionEvent::Lost {
                    term: 3,
                    leader: Some(3)
                },
                ElectionEvent::LeaderChanged {
                    from: None,
                    to: Some(3),
                    term: 3
                }
            ]
        );
        assert_eq!(t.counts.elections_lost, 1);
    }

    #[test]
    fn a_follower_that_learns_of_a_new_leader_counts_only_the_change() {
        let mut t = Tracker::default();
        t.observe(ServerState::Follower, 1, Some(1));
        let events = t.observe(ServerState::Follower, 2, Some(2));
        assert_eq!(
            events,
            vec![ElectionEvent::LeaderChanged {
                from: Some(1),
                to: Some(2),
                term: 2
            }]
        );
        assert_eq!(t.counts.elections_started, 0);
    }
}
