//! Markdown for incident documents (GitHub-flavoured: tables, code spans).
//!
//! ```text
//!  # title            the top diagnosis, or "no incident found"
//!  ## Summary         one table: diagnosis, severity, confidence, root cause, onset,
//!                     playbook, inputs, spans, services, time range, profile
//!  ## Root causes     ## Explanation     ## Timeline     ## Other diagnoses
//!  ## Findings        one row each
//!  ## Evidence        trace ids as code, per diagnosis and per finding
//! ```

use std::io;

use super::{
    Printer, count, duration, figures, healthy, healthy_sentence, input_details, moment, offset,
    percent, playbook_command, severity_counts, timestamp,
};
use crate::diagnosis::Diagnosis;
use crate::report::Report;

#[derive(Debug)]
pub struct Markdown<W> {
    out: W,
}

/// Text safe inside a table cell: no pipes, no line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Trace ids as code spans, comma-separated.
fn ids(ids: &[faultline_model::TraceId]) -> String {
    let codes: Vec<String> = ids.iter().map(|id| format!("`{id}`")).collect();
    codes.join(", ")
}

impl<W: io::Write> Markdown<W> {
    pub fn new(out: W) -> Self {
        Markdown { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn row(&mut self, cells: &[&str]) -> io::Result<()> {
        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
        writeln!(self.out, "| {} |", cells.join(" | "))
    }

    fn table_head(&mut self, names: &[&str]) -> io::Result<()> {
        self.row(names)?;
        writeln!(self.out, "|{}", "---|".repeat(names.len()))
    }

    fn title(&mut self, report: &Report) -> io::Result<()> {
        let title = if let Some(top) = report.diagnoses.first() {
            format!("Incident analysis: {}", top.title)
        } else if report.spans == 0 {
            "Analysis: no spans".to_owned()
        } else if healthy(report) {
            "Analysis: no incident found".to_owned()
        } else {
            "Analysis: findings without a diagnosis".to_owned()
        };
        writeln!(self.out, "# {title}\n")?;
        if report.spans == 0 {
            writeln!(
                self.out,
                "No spans to analyse: the inputs are empty or the time window leaves none.\n"
            )?;
        } else if healthy(report) {
            writeln!(self.out, "{}\n", healthy_sentence(report))?;
        } else if report.diagnoses.is_empty() {
            writeln!(
                self.out,
                "The findings at warning or above do not add up to a known incident; see \
                 [Findings](#findings).\n"
            )?;
        }
        Ok(())
    }

    fn summary(&mut self, report: &Report) -> io::Result<()> {
        writeln!(self.out, "## Summary\n")?;
        self.table_head(&["", ""])?;
        if let Some(top) = report.diagnoses.first() {
            self.row(&["Diagnosis", &format!("**{}**", top.title)])?;
            self.row(&["Severity", top.severity.as_str()])?;
            self.row(&["Confidence", &percent(top.confidence)])?;
            if let Some(cause) = top.root_causes.first() {
                self.row(&[
                    "Root cause",
                    &format!("`{}` at `{}`", cause.kind, cause.target),
                ])?;
            }
            if let Some(onset) = top.onset_ns {
                self.row(&["Onset", &moment(report, onset)])?;
            }
            self.row(&["Playbook", &format!("`{}`", playbook_command(top))])?;
        }
        let inputs: Vec<String> = report
            .inputs
            .iter()
            .map(|input| format!("`{}` ({})", input.path, input_details(input)))
            .collect();
        self.row(&["Inputs", &inputs.join("<br>")])?;
        self.row(&[
            "Spans",
            &format!("{} in {} traces", count(report.spans), count(report.traces)),
        ])?;
        self.row(&["Services", &report.services.join(", ")])?;
        if let (Some(start), Some(end)) = (report.start_ns, report.end_ns) {
            self.row(&[
                "Time range",
                &format!(
                    "{} → {} ({})",
                    timestamp(start),
                    timestamp(end),
                    duration(end - start)
                ),
            ])?;
        }
        if let Some(focus) = &report.focus {
            self.row(&["Focus", &format!("`{focus}`: only the findings about it")])?;
        }
        self.row(&["Profile", report.profile.as_str()])?;
        self.row(&["Findings", &severity_counts(&report.findings)])?;
        writeln!(self.out)
    }

    fn diagnosis(&mut self, report: &Report, top: &Diagnosis) -> io::Result<()> {
        if !top.root_causes.is_empty() {
            writeln!(self.out, "## Root causes\n")?;
            self.table_head(&["#", "Kind", "Target", "Score", "Why"])?;
            for (i, cause) in top.root_causes.iter().enumerate() {
                self.row(&[
                    &(i + 1).to_string(),
                    &format!("`{}`", cause.kind),
                    &format!("`{}`", cause.target),
                    &format!("{:.2}", cause.score),
                    &cause.because,
                ])?;
            }
            writeln!(self.out)?;
        }
        if !top.explanation.is_empty() {
            writeln!(self.out, "## Explanation\n")?;
            for sentence in &top.explanation {
                writeln!(self.out, "- {sentence}")?;
            }
            writeln!(self.out)?;
        }
        if !top.timeline.is_empty() {
            writeln!(self.out, "## Timeline\n")?;
            self.table_head(&["Time (UTC)", "From start", "What"])?;
            for moment in &top.timeline {
                self.row(&[
                    &timestamp(moment.at_ns),
                    &offset(report, moment.at_ns),
                    &moment.what,
                ])?;
            }
            writeln!(self.out)?;
        }
        Ok(())
    }

    fn others(&mut self, report: &Report) -> io::Result<()> {
        if report.diagnoses.len() < 2 {
            return Ok(());
        }
        writeln!(self.out, "## Other diagnoses\n")?;
        self.table_head(&[
            "#",
            "Diagnosis",
            "Severity",
            "Confidence",
            "Onset",
            "Playbook",
        ])?;
        for (rank, other) in report.diagnoses.iter().enumerate().skip(1) {
            let onset = other
                .onset_ns
                .map(|ns| offset(report, ns))
                .unwrap_or_default();
            self.row(&[
                &(rank + 1).to_string(),
                &other.title,
                other.severity.as_str(),
                &percent(other.confidence),
                &onset,
                &format!("`{}`", playbook_command(other)),
            ])?;
        }
        writeln!(self.out)
    }

    fn findings(&mut self, report: &Report) -> io::Result<()> {
        if report.findings.is_empty() {
            return Ok(());
        }
        writeln!(self.out, "## Findings\n")?;
        self.table_head(&["Severity", "Kind", "Subject", "From", "Summary", "Figures"])?;
        for finding in &report.findings {
            self.row(&[
                finding.severity.as_str(),
                &format!("`{}`", finding.kind.as_str()),
                &finding.subject.to_string(),
                &offset(report, finding.starts_ns()),
                &finding.summary,
                &figures(finding).join(", "),
            ])?;
        }
        writeln!(self.out)
    }

    fn evidence(&mut self, report: &Report) -> io::Result<()> {
        let top = report.diagnoses.first().filter(|d| !d.evidence.is_empty());
        let with_evidence: Vec<_> = report
            .findings
            .iter()
            .filter(|f| !f.evidence.is_empty())
            .collect();
        if top.is_none() && with_evidence.is_empty() {
            return Ok(());
        }
        writeln!(self.out, "## Evidence\n")?;
        if let Some(top) = top {
            writeln!(
                self.out,
                "Traces behind the diagnosis: {}\n",
                ids(&top.evidence)
            )?;
        }
        for finding in with_evidence {
            writeln!(
                self.out,
                "- {} `{}` on {}: {}",
                finding.severity,
                finding.kind.as_str(),
                finding.subject,
                ids(&finding.evidence)
            )?;
        }
        writeln!(self.out)
    }
}

impl<W: io::Write> Printer for Markdown<W> {
    fn print(&mut self, report: &Report) -> io::Result<()> {
        self.title(report)?;
        self.summary(report)?;
        if let Some(top) = report.diagnoses.first() {
            self.diagnosis(report, top)?;
        }
        self.others(report)?;
        self.findings(report)?;
        self.evidence(report)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::print::tests::{healthy, storm};

    fn render(report: &Report) -> String {
        let mut printer = Markdown::new(Vec::new());
        printer.print(report).unwrap();
        String::from_utf8(printer.into_inner()).unwrap()
    }

    #[test]
    fn an_incident_document() {
        let text = render(&storm());
        assert!(
            text.starts_with("# Incident analysis: Retry storm at the gateway->payments hop\n")
        );
        assert!(text.contains("| Diagnosis | **Retry storm at the gateway->payments hop** |"));
        assert!(text.contains("| Severity | critical |"));
        assert!(text.contains("| Confidence | 93 % |"));
        assert!(text.contains("| Root cause | `retry_storm` at `gateway->payments` |"));
        assert!(
            text.contains("| Onset | 2026-01-02T03:04:23.000Z (+18.0 s from the capture start) |")
        );
        assert!(text.contains("| Playbook | `faultline playbook show retry-storm` |"));
        assert!(
            text.contains("| Inputs | `samples/storm.jsonl.zst` (otlp-json, 12,345 spans, 2 bad")
        );
        assert!(text.contains("## Root causes\n\n| # | Kind | Target | Score | Why |\n|---|---|---|---|---|\n| 1 | `retry_storm` | `gateway->payments` | 0.90 |"));
        assert!(text.contains("## Explanation\n\n- gateway sends payments 3.2 attempts"));
        assert!(text.contains(
            "| 2026-01-02T03:04:23.000Z | +18.0 s | payments p99 rose from 40 ms to 1480 ms. |"
        ));
        assert!(text.contains("| 2 | Cascading failure; first domino: payments | warning | 50 % | +21.0 s | `faultline playbook show cascading-failure` |"));
        assert!(text.contains("| critical | `retry_amplification` | gateway->payments | +20.0 s | gateway sends payments 3.2 attempts per call (baseline 1.0). | amplification 3.20x, attempts 12,480, starts here yes |"));
        assert!(text.contains("| info | `clock_skew` | node-2 |"));
        assert!(text.contains(&format!(
            "Traces behind the diagnosis: `{}`, `{}`, `{}`",
            "ab".repeat(16),
            "cd".repeat(16),
            "ef".repeat(16)
        )));
        assert!(text.contains(&format!(
            "- warning `latency_rise` on payments: `{}`",
            "ef".repeat(16)
        )));
        // Sections in incident-doc order.
        let at = |needle: &str| text.find(needle).unwrap();
        assert!(at("## Summary") < at("## Root causes"));
        assert!(at("## Root causes") < at("## Explanation"));
        assert!(at("## Explanation") < at("## Timeline"));
        assert!(at("## Timeline") < at("## Other diagnoses"));
        assert!(at("## Other diagnoses") < at("## Findings"));
        assert!(at("## Findings") < at("## Evidence"));
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn pipes_in_cells_are_escaped() {
        let mut report = storm();
        report.findings[0].summary = "a | b".into();
        let text = render(&report);
        assert!(text.contains("| a \\| b |"));
    }

    #[test]
    fn a_healthy_capture() {
        let text = render(&healthy());
        assert!(text.starts_with("# Analysis: no incident found\n\nThe capture looks healthy"));
        assert!(text.contains("| Findings | 1 info |"));
        assert!(!text.contains("## Root causes"));
        assert!(!text.contains("## Evidence"));
        assert!(text.contains("| info | `clock_skew` | node-2 |"));
    }
}
