//! Incident playbooks as data, and the engine that runs them (PRODUCT.md §7).
//!
//! ```text
//!  playbooks/*.toml (embedded; or a directory of your own) ──► format.rs: Playbook (validated)
//!                                                                  │
//!  analysis (capture, live recording, TUI store) + /status ──► check.rs: evaluate(step's check)
//!                                                                  │
//!                              run.rs: Run (next → check | remedy | done) ◄── the caller acts
//!                                                                  │
//!                                           transcript.rs: the Markdown record of the run
//! ```
//!
//! The engine is pure: it neither reads data nor acts. The CLI (`faultline playbook
//! run`) and the TUI's playbook pane feed it observations and carry out the remedies
//! it names, after asking.

pub mod builtin;
pub mod check;
pub mod cluster;
pub mod format;
pub mod run;
pub mod transcript;

pub use builtin::{Library, LibraryError};
pub use check::{CheckResult, Observation, Outcome, evaluate};
pub use format::{Action, Branch, Check, Playbook, PlaybookError, Probe, Remedy, Scope, Step};
pub use run::{Conclusion, Entry, Next, RemedyOutcome, Run, Verdict, on_record};
