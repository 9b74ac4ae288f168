//! Text for people at a terminal: what was read, then the verdict, then the evidence.
//!
//! ```text
//!  header    inputs, spans, traces, services, time range, profile
//!  summary   top diagnosis: severity, title, root cause, confidence, onset, playbook,
//!            explanation, evidence traces   (or: the capture looks healthy)
//!  others    the other diagnoses, one line each
//!  findings  by severity: subject, summary, figures, evidence traces; info compactly
//! ```
//!
//! Colour is optional and never the only carrier of a signal: every severity is also
//! written as a word. Lines are wrapped to the printer's width (100 by default).

use std::io;

use super::{
    Printer, at, count, duration, figures, healthy, healthy_sentence, input_details, moment,
    offset, percent, playbook_command, severity_counts, timestamp, wrap, wrap_items,
};
use crate::diagnosis::Diagnosis;
use crate::finding::{Finding, Severity};
use crate::report::Report;

/// Width of the label column (`root cause  `) and of the severity column.
const LABEL: usize = 12;

#[derive(Debug)]
pub struct Text<W> {
    out: W,
    color: bool,
    width: usize,
}

#[derive(Debug, Clone, Copy)]
enum Style {
    Bold,
    Dim,
    Critical,
    Warning,
    Info,
    Good,
}

impl Style {
    fn ansi(self) -> &'static str {
        match self {
            Style::Bold => "1",
            Style::Dim => "2",
            Style::Critical => "1;31",
            Style::Warning => "1;33",
            Style::Info => "36",
            Style::Good => "1;32",
        }
    }

    fn of(severity: Severity) -> Style {
        match severity {
            Severity::Critical => Style::Critical,
            Severity::Warning => Style::Warning,
            Severity::Info => Style::Info,
        }
    }
}

impl<W: io::Write> Text<W> {
    /// A printer without colour, wrapping at 100 columns.
    pub fn new(out: W) -> Self {
        Text {
            out,
            color: false,
            width: 100,
        }
    }

    /// Whether to use ANSI colours.
    pub fn color(mut self, on: bool) -> Self {
        self.color = on;
        self
    }

    /// Where to wrap lines (at least 40 columns).
    pub fn width(mut self, columns: usize) -> Self {
        self.width = columns.max(40);
        self
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("\x1b[{}m{text}\x1b[0m", style.ansi())
        } else {
            text.to_owned()
        }
    }

    /// `text` wrapped to the width, the first line after `first` (already
    /// `indent` columns wide once painted), the others indented by `indent`.
    fn hanging(&mut self, first: &str, indent: usize, text: &str) -> io::Result<()> {
        let lines = wrap(text, self.width.saturating_sub(indent));
        self.lines(first, indent, &lines)
    }

    /// Whole `items` (figures, trace ids) joined by `separator`, wrapped like
    /// [`Text::hanging`].
    fn items(
        &mut self,
        first: &str,
        indent: usize,
        items: &[String],
        separator: &str,
    ) -> io::Result<()> {
        let lines = wrap_items(items, separator, self.width.saturating_sub(indent));
        self.lines(first, indent, &lines)
    }

    fn lines(&mut self, first: &str, indent: usize, lines: &[String]) -> io::Result<()> {
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                writeln!(self.out, "{first}{line}")?;
            } else {
                writeln!(self.out, "{:indent$}{line}", "")?;
            }
        }
        Ok(())
    }

    /// `label` in the label column, then `text` wrapped beside it.
    fn field(&mut self, label: &str, text: &str) -> io::Result<()> {
        let first = self.paint(Style::Dim, &format!("{label:<LABEL$}"));
        self.hanging(&first, LABEL, text)
    }

    /// A severity word padded to the label column, coloured.
    fn severity(&self, severity: Severity) -> String {
        let word = severity.as_str().to_ascii_uppercase();
        self.paint(Style::of(severity), &format!("{word:<LABEL$}"))
    }

    fn header(&mut self, report: &Report) -> io::Result<()> {
        for (i, input) in report.inputs.iter().enumerate() {
            let text = format!("{} ({})", input.path, input_details(input));
            self.field(if i == 0 { "inputs" } else { "" }, &text)?;
        }
        self.field(
            "spans",
            &format!("{} in {} traces", count(report.spans), count(report.traces)),
        )?;
        let services = if report.services.is_empty() {
            "none".to_owned()
        } else {
            format!("{}: {}", report.services.len(), report.services.join(", "))
        };
        self.field("services", &services)?;
        let time = match (report.start_ns, report.end_ns) {
            (Some(start), Some(end)) => format!(
                "{} → {} ({})",
                timestamp(start),
                timestamp(end),
                duration(end - start)
            ),
            _ => "no spans".to_owned(),
        };
        self.field("time", &time)?;
        if let Some(focus) = &report.focus {
            self.field(
                "focus",
                &format!("{focus}: only the findings about it and the diagnoses they support"),
            )?;
        }
        self.field(
            "profile",
            &format!(
                "{}, signals in {} windows",
                report.profile.as_str(),
                duration(report.window_ns)
            ),
        )
    }

    fn summary(&mut self, report: &Report) -> io::Result<()> {
        if report.spans == 0 {
            let word = self.paint(Style::Warning, &format!("{:<LABEL$}", "NO DATA"));
            return self.hanging(
                &word,
                LABEL,
                "No spans to analyse: the inputs are empty or the time window leaves none.",
            );
        }
        if let Some(top) = report.diagnoses.first() {
            return self.diagnosis(report, top);
        }
        if healthy(report) {
            let word = self.paint(Style::Good, &format!("{:<LABEL$}", "HEALTHY"));
            return self.hanging(&word, LABEL, &healthy_sentence(report));
        }
        let loud = report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            .count();
        let word = self.paint(Style::Warning, &format!("{:<LABEL$}", "UNCLEAR"));
        self.hanging(
            &word,
            LABEL,
            &format!(
                "No diagnosis: {loud} findings at warning or above do not add up to a known \
                 incident; read them below."
            ),
        )
    }

    fn diagnosis(&mut self, report: &Report, top: &Diagnosis) -> io::Result<()> {
        let first = self.severity(top.severity);
        let title: Vec<String> = wrap(&top.title, self.width - LABEL)
            .iter()
            .map(|line| self.paint(Style::Bold, line))
            .collect();
        self.lines(&first, LABEL, &title)?;
        for (i, cause) in top.root_causes.iter().enumerate() {
            let text = if top.root_causes.len() == 1 {
                format!("{} at {}", cause.kind, cause.target)
            } else {
                format!(
                    "{} at {} (score {:.2})",
                    cause.kind, cause.target, cause.score
                )
            };
            self.field(if i == 0 { "root cause" } else { "" }, &text)?;
        }
        self.field("confidence", &percent(top.confidence))?;
        if let Some(onset) = top.onset_ns {
            self.field("onset", &moment(report, onset))?;
        }
        self.field("playbook", &playbook_command(top))?;
        if !top.explanation.is_empty() {
            writeln!(self.out)?;
            for sentence in &top.explanation {
                self.hanging("  - ", 4, sentence)?;
            }
        }
        if !top.evidence.is_empty() {
            writeln!(self.out)?;
            let ids: Vec<String> = top.evidence.iter().map(ToString::to_string).collect();
            let label = self.paint(Style::Dim, &format!("{:<LABEL$}", "traces"));
            self.items(&label, LABEL, &ids, " ")?;
        }
        Ok(())
    }

    fn others(&mut self, report: &Report) -> io::Result<()> {
        if report.diagnoses.len() < 2 {
            return Ok(());
        }
        writeln!(self.out)?;
        let heading = self.paint(Style::Bold, "Other diagnoses");
        writeln!(self.out, "{heading}")?;
        for (rank, other) in report.diagnoses.iter().enumerate().skip(1) {
            let first = format!("  {:>2}. {}", rank + 1, self.severity(other.severity));
            let mut text = format!("{:>4}  {}", percent(other.confidence), other.title);
            if let Some(onset) = other.onset_ns {
                text.push_str(&format!(", from {}", offset(report, onset)));
            }
            self.hanging(&first, 6 + LABEL, &text)?;
        }
        Ok(())
    }

    fn findings(&mut self, report: &Report) -> io::Result<()> {
        if report.findings.is_empty() {
            return Ok(());
        }
        writeln!(self.out)?;
        let heading = self.paint(
            Style::Bold,
            &format!("Findings ({})", severity_counts(&report.findings)),
        );
        writeln!(self.out, "{heading}")?;
        // Within a severity, the findings behind the top diagnosis come first: they are
        // the evidence for the summary just read.
        let behind_top: &[usize] = report.diagnoses.first().map_or(&[], |d| &d.findings);
        for severity in [Severity::Critical, Severity::Warning] {
            let (mut first, rest): (Vec<_>, Vec<_>) = report
                .findings
                .iter()
                .enumerate()
                .filter(|(_, f)| f.severity == severity)
                .partition(|(i, _)| behind_top.contains(i));
            first.extend(rest);
            for (_, finding) in first {
                self.finding(report, finding)?;
            }
        }
        let mut infos = at(&report.findings, Severity::Info).peekable();
        if infos.peek().is_some() {
            writeln!(self.out)?;
        }
        for finding in infos {
            let first = self.severity(finding.severity);
            let text = format!(
                "{}  {}  {}",
                finding.kind.as_str(),
                finding.subject,
                finding.summary
            );
            self.hanging(&first, LABEL, &text)?;
        }
        Ok(())
    }

    fn finding(&mut self, report: &Report, finding: &Finding) -> io::Result<()> {
        writeln!(self.out)?;
        let first = self.severity(finding.severity);
        let kind = finding.kind.as_str();
        let heading = format!(
            "{kind}  {}  from {}",
            finding.subject,
            offset(report, finding.starts_ns())
        );
        let mut lines = wrap(&heading, self.width - LABEL);
        // The kind, the first word, in bold (painted after wrapping: escapes take no room).
        if let Some(line) = lines.first_mut()
            && let Some(rest) = line.strip_prefix(kind)
        {
            *line = format!("{}{rest}", self.paint(Style::Bold, kind));
        }
        self.lines(&first, LABEL, &lines)?;
        let indent = format!("{:LABEL$}", "");
        self.hanging(&indent, LABEL, &finding.summary)?;
        let figures = figures(finding);
        if !figures.is_empty() {
            self.items(&indent, LABEL, &figures, " · ")?;
        }
        if !finding.evidence.is_empty() {
            let ids: Vec<String> = finding.evidence.iter().map(ToString::to_string).collect();
            let label = self.paint(Style::Dim, "traces ");
            self.items(&format!("{indent}{label}"), LABEL + 7, &ids, " ")?;
        }
        Ok(())
    }
}

impl<W: io::Write> Printer for Text<W> {
    fn print(&mut self, report: &Report) -> io::Result<()> {
        self.header(report)?;
        writeln!(self.out)?;
        self.summary(report)?;
        self.others(report)?;
        self.findings(report)?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::print::tests::{healthy, storm};

    fn render(report: &Report, color: bool) -> String {
        let mut printer = Text::new(Vec::new()).color(color);
        printer.print(report).unwrap();
        String::from_utf8(printer.into_inner()).unwrap()
    }

    #[test]
    fn summary_first_then_findings() {
        let text = render(&storm(), false);
        assert!(!text.contains('\x1b'), "no colour codes when colour is off");
        assert!(text.contains("samples/storm.jsonl.zst (otlp-json, 12,345 spans, 2 bad records"));
        assert!(text.contains("12,345 in 678 traces"));
        assert!(text.contains("3: gateway, payments, worker"));
        assert!(text.contains("2026-01-02T03:04:05.000Z → 2026-01-02T03:05:05.000Z (1m)"));
        assert!(text.contains("demo, signals in 1s windows"));
        assert!(text.contains("CRITICAL    Retry storm at the gateway->payments hop"));
        assert!(text.contains("root cause  retry_storm at gateway->payments\n"));
        assert!(text.contains("confidence  93 %"));
        assert!(
            text.contains("onset       2026-01-02T03:04:23.000Z (+18.0 s from the capture start)")
        );
        assert!(text.contains("playbook    faultline playbook show retry-storm"));
        assert!(text.contains("  - Every slow or failed call to payments"));
        assert!(text.contains(&format!("traces      {}", "ab".repeat(16))));
        assert!(text.contains(
            "   2. WARNING     50 %  Cascading failure; first domino: payments, from +21.0 s"
        ));
        assert!(text.contains("Findings (1 critical, 1 warning, 1 info)"));
        assert!(text.contains("CRITICAL    retry_amplification  gateway->payments  from +20.0 s"));
        assert!(text.contains("amplification 3.20x · attempts 12,480 · starts here yes"));
        assert!(text.contains("p99 1,480 ms · error rate 12.5 %"));
        assert!(text.contains("INFO        clock_skew  node-2  node-2's clock is 12 ms ahead"));
        // Summary before findings, critical before warning before info.
        let at = |needle: &str| text.find(needle).unwrap();
        assert!(at("root cause") < at("Other diagnoses"));
        assert!(at("Other diagnoses") < at("Findings ("));
        assert!(at("retry_amplification") < at("latency_rise"));
        assert!(at("latency_rise") < at("clock_skew"));
        // The top diagnosis's findings lead their severity group.
        let mut report = storm();
        report.findings.swap(0, 1);
        report.findings[0].severity = Severity::Critical;
        report.diagnoses[0].findings = vec![1];
        let text = render(&report, false);
        assert!(text.find("retry_amplification").unwrap() < text.find("latency_rise").unwrap());
        report.diagnoses[0].findings = vec![0];
        let text = render(&report, false);
        assert!(text.find("latency_rise").unwrap() < text.find("retry_amplification").unwrap());
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "too wide: {line}");
        }
    }

    #[test]
    fn wraps_long_sentences_with_a_hanging_indent() {
        let mut printer = Text::new(Vec::new()).width(60);
        printer.print(&storm()).unwrap();
        let text = String::from_utf8(printer.into_inner()).unwrap();
        for line in text.lines() {
            // Trace ids are single words and may not fit; everything else must.
            if !line.contains("abababab")
                && !line.contains("cdcdcdcd")
                && !line.contains("efefefef")
            {
                assert!(line.chars().count() <= 60, "too wide: {line}");
            }
        }
        assert!(text.contains("  - Every slow or failed call to payments is sent again,"));
        assert!(text.contains("sent again, so\n    payments gets more load"));
    }

    #[test]
    fn colour_marks_severities_but_the_words_stay() {
        let text = render(&storm(), true);
        assert!(text.contains("\x1b[1;31mCRITICAL    \x1b[0m"));
        assert!(text.contains("\x1b[1;33mWARNING     \x1b[0m"));
        assert!(text.contains("\x1b[36mINFO        \x1b[0m"));
        assert!(text.contains("\x1b[1mRetry storm at the gateway->payments hop\x1b[0m"));
    }

    #[test]
    fn a_healthy_capture_says_so_and_lists_info_compactly() {
        let text = render(&healthy(), false);
        assert!(text.contains("HEALTHY     The capture looks healthy: no finding above info."));
        assert!(text.contains("Findings (1 info)"));
        assert!(text.contains("INFO        clock_skew  node-2  node-2's clock is 12 ms ahead"));
        assert!(!text.contains("root cause"));
        assert!(!text.contains("CRITICAL"));
        assert!(!text.contains("traces  "));
    }

    #[test]
    fn a_focus_is_named() {
        let mut report = storm();
        report.focus("payments");
        let text = render(&report, false);
        assert!(text.contains("focus       payments: only the findings about it"));
        report.findings.retain(|f| f.severity == Severity::Info);
        report.diagnoses.clear();
        let text = render(&report, false);
        assert!(
            text.contains("HEALTHY     payments looks healthy: no finding about it above info.")
        );
    }

    #[test]
    fn warnings_without_a_diagnosis_are_not_called_healthy() {
        let mut report = storm();
        report.diagnoses.clear();
        let text = render(&report, false);
        assert!(!text.contains("HEALTHY"));
        assert!(text.contains("UNCLEAR     No diagnosis: 2 findings at warning or above"));
    }

    #[test]
    fn no_spans_is_not_healthy_either() {
        let mut report = healthy();
        report.spans = 0;
        report.findings.clear();
        report.start_ns = None;
        report.end_ns = None;
        let text = render(&report, false);
        assert!(text.contains("time        no spans"));
        assert!(text.contains("NO DATA     No spans to analyse"));
        assert!(!text.contains("HEALTHY"));
    }
}
