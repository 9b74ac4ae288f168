//! faultline's judgement: spans in, ranked diagnoses out.
//!
//! ```text
//!  capture files ──► load ──► SpanTable (columns) ──► Context ──► detectors ──► findings
//!  OTLP receiver ──► TableBuilder ─┘                                                │
//!                                                      diagnosis engine ◄────────────┘
//!                                                            │
//!                                          Report ──► text / JSON / Markdown printers
//! ```
//!
//! polars lives in this crate and nowhere else (`SpanTable::frame`, the aggregating
//! detectors and the benchmark queries).

pub mod accuracy;
pub mod calls;
pub mod config;
pub mod detector;
pub mod detectors;
pub mod diagnosis;
pub mod finding;
pub mod index;
pub mod load;
pub mod print;
pub mod queries;
pub mod report;
pub mod table;

pub use config::{Profile, Thresholds};
pub use detector::{Context, Detector};
pub use finding::{Finding, FindingKind, Severity, Subject};
pub use table::SpanTable;
