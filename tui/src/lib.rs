//! faultline's terminal UI: watch an incident as it happens, inject faults into the
//! demo cluster, follow the diagnosis, rewind.
//!
//! ```text
//!  sources (source.rs: OTLP receiver, capture replay, cluster poller) ──► Input ─┐
//!  terminal keys (crossterm EventStream, keys.rs) ──────────────────────► Action ├─► App::update (app.rs) ─► Effects ─► run.rs
//!  analysis (analysis.rs, blocking pool, every second) ──────────────────────────┘        │
//!                                                      ui/ (`impl Widget for &App`) ◄──────┘
//! ```
//!
//! State and update live apart from rendering (STYLE.md): `app.rs` holds no ratatui
//! type; `ui/` only draws; `run.rs` is the one `select!` loop that does I/O.
//! `playbook.rs` is the playbook pane's state: a faultline-playbooks `Run` judged on
//! each analysis and cluster poll, its remedies carried out through the `Control`.

pub mod analysis;
pub mod app;
pub mod calls;
pub mod cluster;
pub mod critical;
pub mod keys;
pub mod playbook;
pub mod run;
pub mod signals;
pub mod source;
pub mod store;
pub mod topology;
pub mod ui;

pub use app::{Action, App, Effect, View};
pub use run::{Control, Outcome, Tui, TuiError};
