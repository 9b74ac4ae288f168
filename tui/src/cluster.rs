//! What the demo cluster says of itself: each node's `/status`, polled. The parsing and
//! the poller live with the playbooks (their live checks read the same facts); the TUI
//! uses them from there.

pub use faultline_playbooks::cluster::*;
