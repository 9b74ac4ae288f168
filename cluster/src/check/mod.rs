//! History checkers (being written).

pub mod history;
pub mod linearizable;

pub use history::{History, HistoryError, Operation, Outcome, Pending, ProcessId, Recorder};
