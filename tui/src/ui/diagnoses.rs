//! The diagnoses view: the analysis in force at the time shown, ranked, the selected
//! diagnosis expanded.
//!
//! ```text
//!  App::analysis_now() ─► Report.diagnoses (best first) ─► list: rank, severity, confidence, title,
//!                      │                                         kind, onset, top root cause, playbook
//!                      └─► diagnosis_selected ─► details: explanation, root causes, evidence, timeline
//! ```
//!
//! Severity is written out (`CRITICAL`, `WARNING`), not only coloured. Enter on a
//! diagnosis opens its first evidence trace in the traces view (`App::enter`); `p` opens
//! its playbook in the playbook view.

use faultline_analyzers::diagnosis::Diagnosis;
use faultline_analyzers::finding::Severity;
use faultline_analyzers::report::Report;
use faultline_dashboards::Level;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span as Part};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::{bold, clock, dim, level_style, scroll, selected_style, short};
use crate::app::App;

/// Lines per diagnosis in the list.
const ENTRY_LINES: usize = 3;
/// Timeline moments and evidence ids shown (the rest are counted).
const MAX_MOMENTS: usize = 12;
const MAX_EVIDENCE: usize = 5;
/// From this width the details sit beside the list.
const SIDE_BY_SIDE: u16 = 140;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(report) = app.analysis_now() else {
        Paragraph::new(
            "analysing… the first analysis comes within a second or two of the first spans.",
        )
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(Line::styled(" diagnoses ", bold())))
        .render(area, buf);
        return;
    };
    if report.diagnoses.is_empty() {
        render_no_incident(report, area, buf);
        return;
    }
    let count = report.diagnoses.len();
    let selected = app.diagnosis_selected.min(count - 1);
    let list_height = u16::try_from(count * ENTRY_LINES + 2).unwrap_or(u16::MAX);
    let [list, details] = if area.width >= SIDE_BY_SIDE {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area)
    } else {
        // The list takes what it needs, up to two entries; the details the rest.
        Layout::vertical([
            Constraint::Max(list_height.min(2 * ENTRY_LINES as u16 + 2)),
            Constraint::Fill(1),
        ])
        .areas(area)
    };
    render_list(report, selected, list, buf);
    render_details(&report.diagnoses[selected], selected, details, buf);
}

fn severity_word(severity: Severity) -> (&'static str, Level) {
    match severity {
        Severity::Critical => ("CRITICAL", Level::Critical),
        Severity::Warning => ("WARNING", Level::Warning),
        Severity::Info => ("info", Level::Ok),
    }
}

fn render_no_incident(report: &Report, area: Rect, buf: &mut Buffer) {
    let below = report
        .findings
        .iter()
        .filter(|f| f.severity < Severity::Warning)
        .count();
    let above = report.findings.len() - below;
    let mut lines = vec![
        Line::styled("no incident", bold()),
        Line::raw(""),
        Line::raw(format!(
            "{} spans in {} traces analysed: no diagnosis.",
            report.spans, report.traces
        )),
    ];
    if below > 0 {
        lines.push(Line::raw(format!(
            "{below} finding{} below warning (info), not an incident.",
            if below == 1 { "" } else { "s" }
        )));
    }
    if above > 0 {
        lines.push(Line::raw(format!(
            "{above} warning finding{} that match no incident (`faultline analyze` lists them).",
            if above == 1 { "" } else { "s" }
        )));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(Line::styled(" diagnoses ", bold())))
        .render(area, buf);
}

fn render_list(report: &Report, selected: usize, area: Rect, buf: &mut Buffer) {
    let count = report.diagnoses.len();
    let block = Block::bordered().title(Line::styled(
        format!(" diagnoses · {count} ranked, best first · ↑↓ select "),
        bold(),
    ));
    let inner = block.inner(area);
    block.render(area, buf);
    let entries = usize::from(inner.height) / ENTRY_LINES;
    let mut lines = Vec::new();
    for index in scroll(selected, count, entries.max(1)) {
        let diagnosis = &report.diagnoses[index];
        let (word, level) = severity_word(diagnosis.severity);
        let mark = if index == selected { "▶" } else { " " };
        let mut first = Line::from(vec![
            Part::raw(format!("{mark}{:>2} ", index + 1)),
            Part::styled(format!("{word:<8}"), level_style(level)),
            Part::raw(format!(" {:>3.0}%  ", diagnosis.confidence * 100.0)),
            Part::styled(short(&diagnosis.title, 200), bold()),
        ]);
        if index == selected {
            first = first.style(selected_style());
        }
        let second = Line::from(vec![
            Part::raw("     "),
            Part::styled(diagnosis.kind.title(), dim()),
            Part::raw(" · onset "),
            Part::raw(onset(diagnosis)),
        ]);
        let mut third = vec![Part::raw("     ")];
        if let Some(cause) = diagnosis.root_causes.first() {
            third.push(Part::raw(format!(
                "{} {} ({:.2}) · ",
                cause.kind,
                short(&cause.target, 40),
                cause.score
            )));
        }
        third.push(Part::raw("playbook "));
        third.push(Part::styled(diagnosis.playbook, bold()));
        lines.extend([first, second, Line::from(third)]);
    }
    Paragraph::new(lines).render(inner, buf);
}

fn onset(diagnosis: &Diagnosis) -> String {
    diagnosis
        .onset_ns
        .and_then(|ns| u64::try_from(ns).ok())
        .map_or("unknown".to_owned(), clock)
}

fn render_details(diagnosis: &Diagnosis, index: usize, area: Rect, buf: &mut Buffer) {
    // Severity, confidence, onset and title are on the list entry beside or above.
    let heading = |text: &'static str| Line::styled(text, bold());
    let mut lines = vec![Line::from(vec![
        Part::styled("playbook ", dim()),
        Part::styled(diagnosis.playbook, bold()),
        Part::raw(": p opens it"),
    ])];
    for sentence in &diagnosis.explanation {
        lines.push(Line::raw(format!("• {}", short(sentence, 600))));
    }
    lines.push(heading("Root causes (best first)"));
    for cause in &diagnosis.root_causes {
        let mut parts = vec![
            Part::raw(format!("  {:.2} ", cause.score)),
            Part::styled(
                format!("{} {}", cause.kind, short(&cause.target, 80)),
                bold(),
            ),
        ];
        // Often the explanation's first sentence already: not said twice.
        if !cause.because.is_empty() && !diagnosis.explanation.contains(&cause.because) {
            parts.push(Part::raw(format!(": {}", short(&cause.because, 400))));
        }
        lines.push(Line::from(parts));
    }
    if diagnosis.root_causes.is_empty() {
        lines.push(Line::styled("  none named", dim()));
    }
    lines.push(heading("Evidence traces"));
    if diagnosis.evidence.is_empty() {
        lines.push(Line::styled("  none: this diagnosis names no trace", dim()));
    } else {
        let ids: Vec<String> = diagnosis
            .evidence
            .iter()
            .take(MAX_EVIDENCE)
            .map(ToString::to_string)
            .collect();
        let mut text = format!("  {}", ids.join(" "));
        if diagnosis.evidence.len() > MAX_EVIDENCE {
            text.push_str(&format!(
                " (+{} more)",
                diagnosis.evidence.len() - MAX_EVIDENCE
            ));
        }
        lines.push(Line::raw(text));
    }
    lines.push(heading("Timeline"));
    for moment in diagnosis.timeline.iter().take(MAX_MOMENTS) {
        let at = u64::try_from(moment.at_ns).map_or("?".to_owned(), clock);
        lines.push(Line::from(vec![
            Part::styled(format!("  {at} "), dim()),
            Part::raw(short(&moment.what, 400)),
        ]));
    }
    if diagnosis.timeline.len() > MAX_MOMENTS {
        lines.push(Line::styled(
            format!("  … {} more", diagnosis.timeline.len() - MAX_MOMENTS),
            dim(),
        ));
    }
    let hint = if diagnosis.evidence.is_empty() {
        " no evidence trace to open ".to_owned()
    } else {
        " Enter: open the first evidence trace ".to_owned()
    };
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::bordered()
                .title(Line::styled(
                    format!(" #{} {} ", index + 1, diagnosis.kind.title()),
                    bold(),
                ))
                .title_bottom(Line::styled(hint, bold())),
        )
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use faultline_analyzers::Profile as AnalysisProfile;
    use faultline_analyzers::diagnosis::{IncidentKind, Moment, RootCause};
    use faultline_analyzers::finding::{Finding, FindingKind, Subject, Window};
    use faultline_dashboards::Profile;
    use faultline_model::TraceId;

    use super::*;
    use crate::app::{Action, SourceKind, View};

    fn text(app: &App, width: u16, height: u16) -> String {
        crate::ui::drawn(app, width, height)
    }

    fn report(diagnoses: Vec<Diagnosis>, findings: Vec<Finding>) -> Arc<Report> {
        Arc::new(Report {
            inputs: Vec::new(),
            spans: 10,
            traces: 2,
            services: Vec::new(),
            start_ns: None,
            end_ns: None,
            profile: AnalysisProfile::Demo,
            window_ns: 0,
            focus: None,
            diagnoses,
            findings,
        })
    }

    fn info_finding() -> Finding {
        Finding {
            kind: FindingKind::CriticalPath,
            severity: Severity::Info,
            subject: Subject::Cluster,
            window: Window {
                start_ns: 0,
                end_ns: 1,
            },
            onset_ns: None,
            summary: "fine".to_owned(),
            figures: Vec::new(),
            evidence: Vec::new(),
            detector: "critical-path",
        }
    }

    fn odd_diagnosis() -> Diagnosis {
        Diagnosis {
            kind: IncidentKind::ClockSkew,
            title: "Skew ✗ 東京 ".repeat(200),
            severity: Severity::Warning,
            confidence: f64::NAN,
            onset_ns: Some(-5),
            root_causes: vec![RootCause {
                kind: "clock_skew",
                target: "x".repeat(10_000),
                score: 2.0,
                because: String::new(),
            }],
            explanation: vec!["a\nb".to_owned(); 50],
            timeline: (0..100)
                .map(|i| Moment {
                    at_ns: i64::MIN + i,
                    what: "tick".to_owned(),
                })
                .collect(),
            evidence: vec![TraceId([1; 16]); 9],
            playbook: "clock-skew",
            findings: vec![99],
        }
    }

    #[test]
    fn before_the_first_analysis_it_says_it_is_analysing() {
        let mut app = App::new(SourceKind::Demo, Profile::Demo, 10);
        app.update(Action::Show(View::Diagnoses));
        assert!(text(&app, 80, 24).contains("analysing…"));
        for (w, h) in [(1, 1), (20, 5)] {
            text(&app, w, h);
        }
    }

    #[test]
    fn no_diagnosis_says_no_incident_and_counts_findings_below_warning() {
        let mut app = App::new(SourceKind::Demo, Profile::Demo, 10);
        app.update(Action::Show(View::Diagnoses));
        app.update(Action::Analysis {
            at_ns: 0,
            report: report(Vec::new(), vec![info_finding(), info_finding()]),
            calls: Default::default(),
        });
        let screen = text(&app, 80, 24);
        assert!(screen.contains("no incident"), "{screen}");
        assert!(screen.contains("2 findings below warning"), "{screen}");
    }

    #[test]
    fn odd_diagnoses_render_at_any_size() {
        let mut app = App::new(SourceKind::Demo, Profile::Demo, 10);
        app.update(Action::Show(View::Diagnoses));
        app.update(Action::Analysis {
            at_ns: 0,
            report: report(vec![odd_diagnosis(); 30], Vec::new()),
            calls: Default::default(),
        });
        app.diagnosis_selected = 100; // past the end: the last one is shown
        for (w, h) in [(1, 1), (20, 5), (30, 8), (80, 24), (160, 48)] {
            text(&app, w, h);
        }
        let screen = text(&app, 160, 48);
        assert!(screen.contains("#30 Clock skew"), "{screen}");
        assert!(
            screen.contains("Enter: open the first evidence trace"),
            "{screen}"
        );
    }
}
