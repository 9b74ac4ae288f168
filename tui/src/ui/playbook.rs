//! The playbook view: the playbook being followed, its steps ticking as the data comes
//! in, the selected step in full.
//!
//! ```text
//!  App.playbook (PlaybookPane) ─► status: verdict, or the step being worked on and what it waits for
//!                              ├─► steps: mark (✓ pass, ✗ fail, ? unknown, ▶ now, ⚙ applied, – declined…), title
//!                              └─► selected step: what was seen, what it means, what to look at, the check in
//!                                  words, evidence; for a remedy: action, target, why, the keys
//! ```
//!
//! Every mark is written as well as coloured. Enter applies the remedy due (after the
//! confirmation in ui/mod.rs) or opens a done check's evidence trace (`App::enter`).

use faultline_playbooks::check::{Outcome, fill};
use faultline_playbooks::format::{Check, Step};
use faultline_playbooks::{RemedyOutcome, Verdict};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span as Part};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::{bold, clock, dim, scroll, selected_style, short};
use crate::app::App;
use crate::playbook::{PlaybookPane, StepState, Wait};

/// From this width the details sit beside the list.
const SIDE_BY_SIDE: u16 = 140;
/// The most rows the step list takes when the details are below it.
const MAX_LIST_ROWS: u16 = 9;
/// Evidence ids shown.
const MAX_EVIDENCE: usize = 3;
/// Width of the mark column.
const MARK_WIDTH: usize = 11;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(pane) = &app.playbook else {
        render_none(app, area, buf);
        return;
    };
    let [status, rest] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    Paragraph::new(status_line(app, pane)).render(status, buf);
    let steps = u16::try_from(pane.playbook().steps.len()).unwrap_or(u16::MAX);
    let [list, details] = if area.width >= SIDE_BY_SIDE {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(rest)
    } else {
        Layout::vertical([
            Constraint::Max(steps.saturating_add(2).min(MAX_LIST_ROWS)),
            Constraint::Fill(1),
        ])
        .areas(rest)
    };
    render_list(app, pane, area.width >= SIDE_BY_SIDE, list, buf);
    render_details(app, pane, details, buf);
}

fn render_none(app: &App, area: Rect, buf: &mut Buffer) {
    let mut lines = vec![
        Line::styled("No playbook running.", bold()),
        Line::raw(""),
        Line::raw(
            "In the diagnoses view (5), `p` opens the selected diagnosis's playbook; \
             `:playbook NAME` opens any. Its steps are checked against each analysis as \
             it comes, remedies run after you confirm them, and `w` writes a transcript.",
        ),
        Line::raw(""),
    ];
    match &app.library {
        Ok(library) => lines.push(Line::from(vec![
            Part::styled("playbooks: ", dim()),
            Part::raw(library.names().join(", ")),
        ])),
        Err(why) => lines.push(Line::from(vec![
            Part::styled("The playbooks did not load: ", bold()),
            Part::raw(short(why, 600)),
        ])),
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(Line::styled(" playbook ", bold())))
        .render(area, buf);
}

/// The verdict once there is one; before, the step being worked on and what it waits
/// for.
fn status_line(app: &App, pane: &PlaybookPane) -> Line<'static> {
    if let Some(conclusion) = pane.run.conclusion() {
        return Line::from(vec![
            Part::raw(" verdict "),
            Part::styled(
                format!(" {} ", conclusion.verdict.as_str().to_uppercase()),
                verdict_style(conclusion.verdict).add_modifier(Modifier::REVERSED),
            ),
            Part::raw(format!(" {}", short(&conclusion.summary, 400))),
        ]);
    }
    let steps = pane.playbook().steps.len();
    let Some(current) = pane.run.current() else {
        return Line::raw("");
    };
    let state = if pane.remedy_pending {
        "applying the remedy: waiting for the cluster's answer".to_owned()
    } else if pane.remedy_due().is_some() {
        if app.control {
            "remedy due: Enter applies it (asks first), s skips it".to_owned()
        } else {
            "remedy due: no cluster attached, Enter records it as not run".to_owned()
        }
    } else {
        match &pane.waiting {
            None if app.analyses.is_empty() => "waiting for the first analysis".to_owned(),
            None => "checking".to_owned(),
            Some(waiting) => match waiting.reason {
                Wait::Confirmation => {
                    "waiting for the confirmation (n takes what is seen)".to_owned()
                }
                Wait::Settling { until_ns } => {
                    format!("letting the remedy settle until {}", clock(until_ns))
                }
                Wait::Verifying { until_ns } => {
                    format!("verifying until {} at the latest", clock(until_ns))
                }
            },
        }
    };
    Line::from(vec![
        Part::styled(
            format!(" ▶ step {} of {steps} ", current + 1),
            mark_style(StepState::Now),
        ),
        Part::raw(format!(
            " {} · started {}",
            short(&state, 200),
            clock(pane.started_ns)
        )),
    ])
}

fn verdict_style(verdict: Verdict) -> Style {
    match verdict {
        Verdict::Resolved => Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        Verdict::NotResolved => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Verdict::NotThisIncident | Verdict::Inconclusive => {
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD)
        }
    }
}

/// A step's mark, in words as well as colour.
fn mark(state: StepState) -> &'static str {
    match state {
        StepState::Pending => "·",
        StepState::Now => "▶ now",
        StepState::Checked(outcome) => outcome.mark(),
        StepState::Applied => "⚙ applied",
        StepState::Declined => "– declined",
        StepState::Skipped | StepState::NotRun => "– not run",
        StepState::Failed => "✗ FAILED",
    }
}

fn mark_style(state: StepState) -> Style {
    match state {
        StepState::Pending | StepState::Declined | StepState::Skipped | StepState::NotRun => dim(),
        StepState::Now => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        StepState::Checked(Outcome::Pass) | StepState::Applied => Style::new().fg(Color::Green),
        StepState::Checked(Outcome::Fail) | StepState::Failed => {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        }
        StepState::Checked(Outcome::Unknown) => Style::new().fg(Color::Yellow),
    }
}

fn render_list(app: &App, pane: &PlaybookPane, wide: bool, area: Rect, buf: &mut Buffer) {
    let playbook = pane.playbook();
    let hint = match &pane.transcript {
        Some(Ok(path)) => format!(" transcript: {} ", short(path, 200)),
        Some(Err(_)) => " transcript NOT written (see the message line) ".to_owned(),
        None => " w: write the transcript ".to_owned(),
    };
    let block = Block::bordered()
        .title(Line::styled(
            format!(
                " playbook · {} ({}) ",
                short(&playbook.title, 80),
                playbook.name
            ),
            bold(),
        ))
        .title_bottom(Line::styled(hint, dim()));
    let inner = block.inner(area);
    block.render(area, buf);
    let count = playbook.steps.len();
    if count == 0 {
        return;
    }
    let selected = pane.selected.min(count - 1);
    // Wide, each step has a second line: what it came to, or what it waits for.
    let per_step = if wide { 2 } else { 1 };
    let shown = scroll(
        selected,
        count,
        (usize::from(inner.height) / per_step).max(1),
    );
    let all_shown = shown.len() == count;
    let mut lines = Vec::new();
    for index in shown {
        let step = &playbook.steps[index];
        let state = pane.state(index);
        let kind = if step.verify {
            " · verify"
        } else if step.remedy.is_some() {
            " · remedy"
        } else {
            ""
        };
        let mut line = Line::from(vec![
            Part::styled(format!(" {:<MARK_WIDTH$}", mark(state)), mark_style(state)),
            Part::raw(format!("{:>2}. ", index + 1)),
            // Cut with an ellipsis rather than by the edge: the kind stays visible.
            Part::raw(short(
                &step.title,
                usize::from(inner.width).saturating_sub(MARK_WIDTH + 5 + kind.len()),
            )),
            Part::styled(kind, dim()),
        ]);
        if index == selected {
            line = line.style(selected_style());
        }
        lines.push(line);
        if wide {
            let indent = MARK_WIDTH + 5;
            let room = usize::from(inner.width).saturating_sub(indent);
            let outcome = outcome_line(app, pane, index).unwrap_or_default();
            lines.push(Line::styled(
                format!("{:indent$}{}", "", short(&one_line(&outcome), room)),
                dim(),
            ));
        }
    }
    let used = u16::try_from(lines.len()).unwrap_or(u16::MAX);
    let [steps, rest] =
        Layout::vertical([Constraint::Length(used), Constraint::Fill(1)]).areas(inner);
    Paragraph::new(lines).render(steps, buf);
    // Room to spare: what the incident is, for the reader.
    if all_shown && rest.height > 3 {
        let mut lines = vec![Line::raw(""), Line::styled("What this is", bold())];
        for paragraph in playbook.summary.split("\n\n") {
            lines.push(Line::raw(one_line(paragraph)));
        }
        let [_, text] =
            Layout::horizontal([Constraint::Length(1), Constraint::Fill(1)]).areas(rest);
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .render(text, buf);
    }
}

/// In a few words, what step `index` came to or waits for.
fn outcome_line(app: &App, pane: &PlaybookPane, index: usize) -> Option<String> {
    if let Some(waiting) = pane.waiting.as_ref().filter(|w| w.step == index) {
        return Some(format!("waiting: {}", waiting.result.detail));
    }
    if pane.run.current() == Some(index) && pane.remedy_due().is_some() {
        return Some(if pane.remedy_pending {
            "applying…".to_owned()
        } else if app.control {
            "remedy due: Enter applies it (asks first), s skips it".to_owned()
        } else {
            "remedy due: no cluster attached to run it".to_owned()
        });
    }
    if let Some(outcome) = pane.remedy_outcome(index) {
        return Some(match outcome {
            RemedyOutcome::Applied(done) => format!("applied: {done}"),
            RemedyOutcome::Declined => "declined".to_owned(),
            RemedyOutcome::Skipped(why) => format!("not run: {why}"),
            RemedyOutcome::Failed(why) => format!("FAILED: {why}"),
        });
    }
    pane.checked(index).map(|(_, meaning)| meaning.to_owned())
}

fn label(text: &'static str) -> Part<'static> {
    Part::styled(text, bold())
}

fn render_details(app: &App, pane: &PlaybookPane, area: Rect, buf: &mut Buffer) {
    let playbook = pane.playbook();
    let Some(index) = playbook
        .steps
        .len()
        .checked_sub(1)
        .map(|last| pane.selected.min(last))
    else {
        return;
    };
    let step = &playbook.steps[index];
    let bindings = pane.run.bindings();
    let state = pane.state(index);
    let waiting = pane.waiting.as_ref().filter(|w| w.step == index);
    // Placeholders the check's result fills: from the result waiting, else "…".
    let mut filled = bindings.clone();
    let result = waiting.map(|w| &w.result);
    for (name, value) in [
        ("subject", result.and_then(|r| r.subject.clone())),
        (
            "value",
            result
                .and_then(|r| r.value)
                .map(faultline_playbooks::check::short),
        ),
        ("detail", result.map(|r| r.detail.clone())),
    ] {
        filled.insert(name.to_owned(), value.unwrap_or_else(|| "…".to_owned()));
    }
    // The step's own binding, as a pass would make it.
    if let (Some(name), Some(subject)) = (&step.bind, result.and_then(|r| r.subject.clone())) {
        filled.entry(name.clone()).or_insert(subject);
    }
    let mut lines: Vec<Line> = Vec::new();
    let mut keys = String::new();
    // What happened, or is happening, first: it is what the user came to read.
    if let Some(waiting) = waiting {
        lines.push(Line::from(vec![
            label("waiting: "),
            Part::raw(short(&waiting.result.detail, 600)),
        ]));
        lines.push(Line::styled(
            match waiting.reason {
                Wait::Confirmation => {
                    "The confirmation is recorded when it passes; n takes this result instead."
                        .to_owned()
                }
                Wait::Settling { until_ns } => format!(
                    "A remedy was applied: judged from {} on (settle {} s); n takes this result now.",
                    clock(until_ns),
                    playbook.settle.as_secs()
                ),
                Wait::Verifying { until_ns } => format!(
                    "Re-checked on each analysis until it passes, or until {} (verify within {} s); n takes this result now.",
                    clock(until_ns),
                    playbook.verify_within.as_secs()
                ),
            },
            dim(),
        ));
        keys = " n: take this result ".to_owned();
    }
    if let Some((result, meaning)) = pane.checked(index) {
        lines.push(Line::from(vec![
            label("seen: "),
            Part::raw(short(&result.detail, 600)),
        ]));
        lines.push(Line::from(vec![
            label("means: "),
            Part::raw(short(&meaning, 800)),
        ]));
        if !result.evidence.is_empty() {
            let ids: Vec<String> = result
                .evidence
                .iter()
                .take(MAX_EVIDENCE)
                .map(ToString::to_string)
                .collect();
            let more = result.evidence.len().saturating_sub(MAX_EVIDENCE);
            let mut text = ids.join(" ");
            if more > 0 {
                text.push_str(&format!(" (+{more} more)"));
            }
            lines.push(Line::from(vec![label("evidence: "), Part::raw(text)]));
            keys = " Enter: open the first evidence trace ".to_owned();
        }
    }
    if let Some(remedy) = &step.remedy {
        let target = remedy.target.as_deref().map(|t| fill(t, bindings));
        lines.push(Line::from(vec![
            label("remedy: "),
            Part::styled(remedy.action.as_str(), bold()),
            Part::raw(
                target
                    .map(|t| format!(" on {}", short(&t, 200)))
                    .unwrap_or_default(),
            ),
        ]));
        if let Some(outcome) = pane.remedy_outcome(index) {
            let (word, text) = match outcome {
                RemedyOutcome::Applied(done) => ("applied: ", done.as_str()),
                RemedyOutcome::Declined => ("declined", ""),
                RemedyOutcome::Skipped(why) => ("not run: ", why.as_str()),
                RemedyOutcome::Failed(why) => ("FAILED: ", why.as_str()),
            };
            lines.push(Line::from(vec![label(word), Part::raw(short(&text, 600))]));
        }
        lines.push(Line::from(vec![
            label("why: "),
            Part::raw(short(&one_line(&fill(&remedy.why, bindings)), 1000)),
        ]));
        if pane.remedy_due().is_some_and(|(step, ..)| step == index) {
            keys = if pane.remedy_pending {
                " applying… ".to_owned()
            } else if app.control {
                " Enter: apply (asks first) · s: skip ".to_owned()
            } else {
                " no cluster attached: Enter records it as not run · s: skip ".to_owned()
            };
        }
    }
    lines.push(Line::from(vec![
        label("look: "),
        Part::raw(short(&one_line(&fill(&step.look, bindings)), 1000)),
    ]));
    if let Some(check) = &step.check {
        lines.push(Line::from(vec![
            label("check: "),
            Part::raw(check_words(check, step, bindings)),
        ]));
        if pane.checked(index).is_none() {
            lines.push(Line::from(vec![
                label("pass: "),
                Part::raw(short(&one_line(&fill(&step.pass, &filled)), 600)),
            ]));
            lines.push(Line::from(vec![
                label("fail: "),
                Part::raw(short(&one_line(&fill(&step.fail, &filled)), 600)),
            ]));
        }
    }
    // The step's state in words leads: prefixed to the first line, or on its own when
    // nothing happened there.
    let head = vec![Part::styled(mark(state), mark_style(state)), Part::raw(" ")];
    match state {
        StepState::Pending | StepState::NotRun => {
            let mut first = head;
            first.push(Part::styled(state_words(state), dim()));
            lines.insert(0, Line::from(first));
        }
        _ => {
            if let Some(first) = lines.first_mut() {
                let mut spans = head;
                spans.append(&mut first.spans);
                *first = Line::from(spans);
            }
        }
    }
    let mut block = Block::bordered().title(Line::styled(
        format!(" step {} · {} ", index + 1, short(&step.title, 120)),
        bold(),
    ));
    if !keys.is_empty() {
        block = block.title_bottom(Line::styled(keys, bold()));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(block)
        .render(area, buf);
}

/// A step where nothing happened, in words.
fn state_words(state: StepState) -> &'static str {
    match state {
        StepState::NotRun => "the run ended without reaching it",
        _ => "not reached yet",
    }
}

/// The check in words, its subject filled in with what earlier steps found.
fn check_words(
    check: &Check,
    step: &Step,
    bindings: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut text = check.describe(bindings);
    if let Some(name) = &step.bind {
        text.push_str(&format!("; what it finds is {{{name}}} from here on"));
    }
    text
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
