//! One module per subcommand: argument definitions and the wiring of library calls.

pub(crate) mod agent;
pub(crate) mod analyze;
pub(crate) mod bench;
pub(crate) mod bench_cluster;
pub(crate) mod bench_diagnose;
pub(crate) mod bench_failover;
pub(crate) mod bench_questions;
pub(crate) mod bench_tui;
pub(crate) mod dashboards;
pub(crate) mod demo;
pub(crate) mod inspect;
pub(crate) mod load;
pub(crate) mod node;
pub(crate) mod playbook;
pub(crate) mod record;
pub(crate) mod service;
pub(crate) mod tui;
