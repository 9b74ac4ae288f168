//! Where Prometheus finds faultline's processes: a scrape configuration with a static
//! target list, or `file_sd` target groups for a Prometheus that is already running.
//!
//! ```text
//!  [Target { job, addr, labels }] ─┬─► scrape_config: global (the profile's intervals),
//!                                  │   rule_files, scrape_configs: a job per kind, static_configs
//!                                  └─► file_sd: [{ targets, labels: { job, … } }]
//! ```
//!
//! The caller says what runs where (the binary reads a demo cluster's `cluster.json`);
//! nothing here knows the cluster's types. Agents are labelled with the `node` they
//! front, because their metrics carry no node of their own; nodes and services label
//! their series themselves, and a target label of the same name would rename theirs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::yaml::{list, quoted};
use crate::{PromDuration, Timing};

/// Which scrape job a target belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Job {
    /// Agents' admin listeners: `faultline_agent_*`.
    Agents,
    /// Nodes' APIs: `faultline_raft_*`, `faultline_queue_*`, `faultline_kv_*`.
    Nodes,
    /// Gateways, workers and payments: RED, resilience, worker and provider metrics.
    Services,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Agents, Job::Nodes, Job::Services];

    /// The `job` label.
    pub fn name(self) -> &'static str {
        match self {
            Job::Agents => "faultline-agents",
            Job::Nodes => "faultline-nodes",
            Job::Services => "faultline-services",
        }
    }
}

/// One `/metrics` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub job: Job,
    /// `host:port`.
    pub addr: String,
    /// Target labels added to every series scraped from it.
    pub labels: BTreeMap<String, String>,
}

impl Target {
    pub fn new(job: Job, addr: impl Into<String>) -> Target {
        Target {
            job,
            addr: addr.into(),
            labels: BTreeMap::new(),
        }
    }

    pub fn with_label(mut self, name: &str, value: &str) -> Target {
        self.labels.insert(name.to_owned(), value.to_owned());
        self
    }
}

/// A target group: one job, one label set, its addresses in the order given.
struct Group<'a> {
    job: Job,
    labels: &'a BTreeMap<String, String>,
    addrs: Vec<&'a str>,
}

/// The targets grouped by job (agents, nodes, services) and label set, each group's
/// addresses in the order given.
fn groups(targets: &[Target]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for job in Job::ALL {
        for target in targets.iter().filter(|t| t.job == job) {
            match groups
                .iter_mut()
                .find(|g| g.job == job && *g.labels == target.labels)
            {
                Some(group) => group.addrs.push(&target.addr),
                None => groups.push(Group {
                    job,
                    labels: &target.labels,
                    addrs: vec![&target.addr],
                }),
            }
        }
    }
    groups
}

/// `file_sd` target groups (JSON) for `targets`: the `job` label set per group, so one
/// `file_sd_configs` job serves agents, nodes and services alike.
pub fn file_sd(targets: &[Target]) -> Value {
    Value::Array(
        groups(targets)
            .into_iter()
            .map(|group| {
                let mut labels = Map::new();
                labels.insert("job".to_owned(), json!(group.job.name()));
                for (name, value) in group.labels {
                    labels.insert(name.clone(), json!(value));
                }
                json!({ "targets": group.addrs, "labels": labels })
            })
            .collect(),
    )
}

/// A Prometheus configuration (YAML) scraping `targets` at the profile's intervals and
/// loading `rule_files`. `source` says where the targets came from (a comment).
pub fn scrape_config(
    targets: &[Target],
    timing: &Timing,
    rule_files: &[String],
    source: &str,
) -> String {
    let timeout = timing.scrape_interval.min(PromDuration::from_secs(10));
    let mut out = format!(
        "# Prometheus configuration for faultline's processes, made by `faultline dashboards\n\
         # export` from {source}. A demo cluster's ports change with every `demo up`:\n\
         # export again then. Check with `promtool check config FILE`.\n"
    );
    out.push_str("global:\n");
    let _ = writeln!(
        out,
        "  scrape_interval: {}",
        quoted(&timing.scrape_interval.to_string())
    );
    let _ = writeln!(out, "  scrape_timeout: {}", quoted(&timeout.to_string()));
    let _ = writeln!(
        out,
        "  evaluation_interval: {}",
        quoted(&timing.evaluation_interval.to_string())
    );
    if !rule_files.is_empty() {
        out.push_str("rule_files:\n");
        for file in rule_files {
            let _ = writeln!(out, "  - {}", quoted(file));
        }
    }
    let groups = groups(targets);
    if groups.is_empty() {
        out.push_str("scrape_configs: []\n");
        return out;
    }
    out.push_str("scrape_configs:\n");
    for job in Job::ALL {
        let mut of_job = groups.iter().filter(|g| g.job == job).peekable();
        if of_job.peek().is_none() {
            continue;
        }
        let _ = writeln!(out, "  - job_name: {}", quoted(job.name()));
        out.push_str("    static_configs:\n");
        for group in of_job {
            let _ = writeln!(
                out,
                "      - targets: {}",
                list(group.addrs.iter().copied())
            );
            if !group.labels.is_empty() {
                out.push_str("        labels:\n");
                for (name, value) in group.labels {
                    let _ = writeln!(out, "          {}: {}", quoted(name), quoted(value));
                }
            }
        }
    }
    out
}
