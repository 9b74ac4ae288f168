//! Rendering: `impl Widget for &App`. Reads the state, draws it; changes nothing.
//!
//! ```text
//!  ┌ header: source · time shown (LIVE / PAUSED) · spans held, dropped · top diagnosis ┐
//!  │ tabs: 1 overview 2 signals 3 map 4 traces 5 diagnoses 6 faults 7 playbook         │
//!  │ body: the view (overview.rs, signals.rs, map.rs, traces.rs, diagnoses.rs, faults.rs,│
//!  │       playbook.rs)                                                                 │
//!  │ message line: the latest message, or the filter / command being typed             │
//!  └ footer: the keys that work here                                                    ┘
//!    overlays: help (?), confirmation
//! ```
//!
//! Colour is never the only carrier of meaning: levels are also written (`WARN`,
//! `CRIT`), links drawn with glyphs (`ok`, `~`, `×`), and only the 16 basic colours
//! are used, so the views read the same on any terminal.

mod diagnoses;
mod faults;
mod help;
mod map;
mod overview;
mod playbook;
mod signals;
mod traces;

use faultline_dashboards::Level;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use crate::app::{App, Cursor, Effect, Mode, SourceKind, View};

/// The style of a level: colour plus weight (the text says it too).
pub(crate) fn level_style(level: Level) -> Style {
    match level {
        Level::Ok => Style::new().fg(Color::Green),
        Level::Warning => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        Level::Critical => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
    }
}

/// A level in words, for places where colour would otherwise carry it alone.
pub(crate) fn level_tag(level: Level) -> &'static str {
    match level {
        Level::Ok => "ok",
        Level::Warning => "WARN",
        Level::Critical => "CRIT",
    }
}

/// A data time as `HH:MM:SS.mmm` UTC.
pub(crate) fn clock(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// A duration in the unit that reads best: `850µs`, `12.3ms`, `4.20s`.
pub(crate) fn duration(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{}µs", ns / 1000)
    } else if ns < 1_000_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else {
        format!("{:.2}s", ns as f64 / 1e9)
    }
}

/// A count with k/M suffixes.
pub(crate) fn count(n: u64) -> String {
    if n < 10_000 {
        n.to_string()
    } else if n < 10_000_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else {
        format!("{:.1}M", n as f64 / 1e6)
    }
}

pub(crate) fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub(crate) fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

pub(crate) fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

/// `text` in exactly `width` columns: padded with spaces, or cut with `…`. Reads at
/// most `width + 1` characters of it (data strings can be huge) and blanks control
/// characters, which would move the terminal's cursor.
pub(crate) fn fit(text: &str, width: usize) -> String {
    let mut chars: Vec<char> = text
        .chars()
        .take(width.saturating_add(1))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.len() > width {
        chars.truncate(width.saturating_sub(1));
        if width > 0 {
            chars.push('…');
        }
    }
    let len = chars.len();
    chars.extend(std::iter::repeat_n(' ', width - len));
    chars.into_iter().collect()
}

/// [`fit`], right-aligned.
pub(crate) fn fit_right(text: &str, width: usize) -> String {
    let cut = fit(text, width);
    let trimmed = cut.trim_end();
    format!("{trimmed:>width$}")
}

/// The window of a list to show so that `selected` is visible in `height` rows.
pub(crate) fn scroll(selected: usize, len: usize, height: usize) -> std::ops::Range<usize> {
    if height == 0 || len == 0 {
        return 0..0;
    }
    let start = selected
        .saturating_sub(height.saturating_sub(1))
        .min(len.saturating_sub(height));
    start..(start + height).min(len)
}

/// `value` as at most `max` characters, an ellipsis ending a cut: data strings (span
/// attributes, ids) can be megabytes, and only what fits on screen is formatted.
pub(crate) fn short(value: &dyn std::fmt::Display, max: usize) -> String {
    struct Bounded {
        text: String,
        left: usize,
        cut: bool,
    }
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.left == 0 {
                    self.cut = true;
                    return Err(std::fmt::Error); // stops the formatting early
                }
                self.text.push(if c.is_control() { ' ' } else { c });
                self.left -= 1;
            }
            Ok(())
        }
    }
    let mut out = Bounded {
        text: String::new(),
        left: max,
        cut: false,
    };
    // An error here only means the text was cut.
    let _ = std::fmt::write(&mut out, format_args!("{value}"));
    if out.cut && max > 0 {
        out.text.pop();
        out.text.push('…');
    }
    out.text
}

/// The app drawn into a `width`×`height` test terminal, as text (the views' tests).
#[cfg(test)]
pub(crate) fn drawn(app: &App, width: u16, height: u16) -> String {
    #![allow(clippy::unwrap_used)]
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
        .unwrap();
    terminal.backend().to_string()
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [header, tabs, body, message, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        render_header(self, header, buf);
        render_tabs(self, tabs, buf);
        match self.view {
            View::Overview => overview::render(self, body, buf),
            View::Signals => signals::render(self, body, buf),
            View::Map => map::render(self, body, buf),
            View::Traces => traces::render(self, body, buf),
            View::Diagnoses => diagnoses::render(self, body, buf),
            View::Faults => faults::render(self, body, buf),
            View::Playbook => playbook::render(self, body, buf),
        }
        render_message(self, message, buf);
        render_footer(self, footer, buf);
        match &self.mode {
            Mode::Help => help::render(self, body, buf),
            Mode::Confirm(effect) => render_confirm(self, effect, body, buf),
            _ => {}
        }
    }
}

fn render_header(app: &App, area: Rect, buf: &mut Buffer) {
    let source = match &app.source {
        SourceKind::Demo => "demo cluster".to_owned(),
        SourceKind::Otlp(addr) => format!("OTLP {addr}"),
        SourceKind::Replay(path) => format!("replay {path}"),
    };
    let mut spans = vec![
        Span::styled(" faultline ", bold().add_modifier(Modifier::REVERSED)),
        Span::raw(format!(" {source} ")),
    ];
    let shown = app.now_ns();
    match app.cursor {
        Cursor::Live => spans.push(Span::styled(
            " LIVE ",
            Style::new().fg(Color::Green).add_modifier(Modifier::BOLD),
        )),
        Cursor::At(_) => spans.push(Span::styled(
            " PAUSED ",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        )),
    }
    if shown > 0 {
        spans.push(Span::raw(format!(" {} ", clock(shown))));
    }
    if let Some(replay) = &app.replay {
        let state = if replay.finished {
            "end".to_owned()
        } else if replay.paused {
            "paused".to_owned()
        } else {
            format!("{}x", replay.speed)
        };
        spans.push(Span::styled(format!("[replay {state}] "), dim()));
    }
    spans.push(Span::raw(format!(
        "│ {} spans ",
        count(app.store.len() as u64)
    )));
    if app.store.dropped() > 0 {
        spans.push(Span::styled(
            format!(
                "({} dropped: cap {}) ",
                count(app.store.dropped()),
                count(app.store.cap() as u64)
            ),
            Style::new().fg(Color::Yellow),
        ));
    }
    if app.starting {
        spans.push(Span::styled(
            "│ starting the cluster… ",
            Style::new().fg(Color::Yellow),
        ));
    } else if let Some(top) = app.analysis_now().and_then(|r| r.diagnoses.first()) {
        spans.push(Span::raw("│ "));
        spans.push(Span::styled(
            format!("{} ({:.0}%)", top.title, top.confidence * 100.0),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    } else if app.analysis_now().is_some() {
        spans.push(Span::styled("│ no incident", Style::new().fg(Color::Green)));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

fn render_tabs(app: &App, area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    for (i, view) in View::ALL.iter().enumerate() {
        let text = format!(" {} {} ", i + 1, view.title());
        if *view == app.view {
            spans.push(Span::styled(
                text,
                selected_style().add_modifier(Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(text));
        }
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

fn render_message(app: &App, area: Rect, buf: &mut Buffer) {
    let line = match &app.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("/", bold()),
            Span::raw(app.traces.filter.clone()),
            Span::styled("█", dim()),
        ]),
        Mode::Command(text) => Line::from(vec![
            Span::styled(":", bold()),
            Span::raw(text.clone()),
            Span::styled("█", dim()),
        ]),
        _ => match app.messages.back() {
            Some((at, text)) if *at > 0 => Line::from(vec![
                Span::styled(format!("{} ", clock(*at)), dim()),
                Span::raw(text.clone()),
            ]),
            Some((_, text)) => Line::from(text.clone()),
            None if !app.traces.filter.is_empty() => Line::from(vec![
                Span::styled("filter: ", dim()),
                Span::raw(app.traces.filter.clone()),
            ]),
            None => Line::default(),
        },
    };
    Paragraph::new(line).render(area, buf);
}

fn render_footer(app: &App, area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    for (key, what) in crate::keys::footer(&app.mode, app.view) {
        spans.push(Span::styled(
            format!(" {key} "),
            Style::new().add_modifier(Modifier::REVERSED),
        ));
        spans.push(Span::raw(format!(" {what} ")));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

/// A centred box of `width`×`height` inside `area`, cleared.
pub(crate) fn popup(area: Rect, width: u16, height: u16, buf: &mut Buffer) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    Clear.render(rect, buf);
    rect
}

fn render_confirm(app: &App, effect: &Effect, area: Rect, buf: &mut Buffer) {
    let question = match effect {
        Effect::Inject(id) => {
            let item = app.faults.items.iter().find(|f| f.id == *id);
            let what = item.map_or(String::new(), |f| f.description.clone());
            let mut text = format!("Inject {id}?\n{what}");
            if let Some(seconds) = app.baseline_short_s() {
                text.push_str(&format!(
                    "\nOnly {seconds} s of healthy traffic so far: the diagnosis compares \
                     with what came before; wait for {} s to give it a baseline.",
                    crate::app::BASELINE_S
                ));
            }
            text
        }
        Effect::Heal(id) => format!("Heal {id}?"),
        Effect::HealAll => "Heal every fault in effect?".to_owned(),
        Effect::Remedy { action, target } => {
            let on = target
                .as_deref()
                .map(|t| format!(" on {}", short(&t, 200)))
                .unwrap_or_default();
            let why = app
                .playbook
                .as_ref()
                .and_then(|p| p.remedy_due())
                .map(|(_, _, _, why)| why)
                .unwrap_or_default();
            format!("Apply {action}{on}?\n{}", short(&why, 800))
        }
        other => format!("{other:?}?"),
    };
    let height = if matches!(effect, Effect::Remedy { .. }) {
        16
    } else {
        10
    };
    let rect = popup(area, 64, height, buf);
    Paragraph::new(format!("{question}\n\n[y/Enter] yes   [n/Esc] no"))
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" confirm "))
        .render(rect, buf);
}
