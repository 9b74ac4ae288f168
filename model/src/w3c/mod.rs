//! W3C Trace Context (Level 2), Baggage, and correlation ids.
