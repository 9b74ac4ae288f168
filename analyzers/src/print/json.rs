//! JSON for machines: the report as it is, pretty-printed, one document.
//!
//! The shape is the `Report` type's (serde): `inputs`, `spans`, `traces`, `services`,
//! `start_ns`/`end_ns`, `profile`, `window_ns`, `diagnoses` (best first; `findings`
//! in each are indices into the top-level `findings`) and `findings` (most severe
//! first). Times are nanoseconds since the epoch; trace ids are 32 hex digits.

use std::io;

use super::Printer;
use crate::report::Report;

#[derive(Debug)]
pub struct Json<W> {
    out: W,
}

impl<W: io::Write> Json<W> {
    pub fn new(out: W) -> Self {
        Json { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: io::Write> Printer for Json<W> {
    fn print(&mut self, report: &Report) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.out, report)?;
        writeln!(self.out)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::print::tests::{START, storm};

    #[test]
    fn the_report_as_json() {
        let mut printer = Json::new(Vec::new());
        printer.print(&storm()).unwrap();
        let text = String::from_utf8(printer.into_inner()).unwrap();
        assert!(text.ends_with("}\n"));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["spans"], 12_345);
        assert_eq!(json["traces"], 678);
        assert_eq!(json["profile"], "demo");
        assert_eq!(json["start_ns"], START);
        assert_eq!(json["inputs"][0]["path"], "samples/storm.jsonl.zst");
        let top = &json["diagnoses"][0];
        assert_eq!(top["kind"], "retry_storm");
        assert_eq!(top["severity"], "critical");
        assert_eq!(top["playbook"], "retry-storm");
        assert_eq!(top["root_causes"][0]["target"], "gateway->payments");
        assert_eq!(top["findings"], serde_json::json!([0, 1]));
        let finding = &json["findings"][0];
        assert_eq!(finding["kind"], "retry_amplification");
        assert_eq!(finding["subject"], "gateway->payments");
        assert_eq!(finding["evidence"][0], "ab".repeat(16));
        assert_eq!(finding["figures"][0]["name"], "amplification");
        assert_eq!(json["findings"].as_array().unwrap().len(), 3);
    }
}
