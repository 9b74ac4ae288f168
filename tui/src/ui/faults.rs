//! The faults view: the menu of faults the demo cluster's control offers, which are in
//! effect, which are on their way in or out.
//!
//! ```text
//!  App.faults.items ──► one entry each: title, what it does, the diagnosis to expect
//!  App.faults.active ─► IN EFFECT (with the control's label)
//!  App.faults.pending ► injecting… / healing… (asked, not answered yet)
//! ```
//!
//! Enter asks to inject the selected fault, `h` to heal it, `H` to heal all; each is
//! confirmed in a popup first (ui/mod.rs).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span as Part};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::{bold, dim, scroll, selected_style, short};
use crate::app::{App, FaultItem};

/// Lines per fault in the menu.
const ENTRY_LINES: usize = 3;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let faults = &app.faults;
    if !faults.available {
        Paragraph::new(vec![
            Line::styled("Faults need a running demo cluster.", bold()),
            Line::raw(""),
            Line::raw(
                "This session has no cluster to inject into (it replays a capture or receives OTLP). \
                 Start one with `faultline demo`: it runs the cluster, this TUI and its fault menu \
                 (leader crash, partitions, retry storm, poison messages…).",
            ),
        ])
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(Line::styled(" faults · unavailable ", bold())))
        .render(area, buf);
        return;
    }
    let [menu, effect] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(in_effect_height(app)),
    ])
    .areas(area);
    render_menu(app, menu, buf);
    render_in_effect(app, effect, buf);
}

/// The in-effect box: a line per active or pending fault, at least one, at most six.
fn in_effect_height(app: &App) -> u16 {
    let pending_only = app
        .faults
        .pending
        .iter()
        .filter(|id| !app.faults.active.iter().any(|(a, _)| a == *id))
        .count();
    (app.faults.active.len() + pending_only).clamp(1, 6) as u16 + 2
}

/// A fault's label if it is in effect, and whether an answer about it is awaited.
fn state_of<'a>(app: &'a App, item: &FaultItem) -> (Option<&'a str>, bool) {
    let active = app
        .faults
        .active
        .iter()
        .find(|(id, _)| *id == item.id)
        .map(|(_, label)| label.as_str());
    (active, app.faults.pending.contains(&item.id))
}

fn render_menu(app: &App, area: Rect, buf: &mut Buffer) {
    let faults = &app.faults;
    let block = Block::bordered()
        .title(Line::styled(
            format!(
                " faults · {} offered · {} in effect ",
                faults.items.len(),
                faults.active.len()
            ),
            bold(),
        ))
        .title_bottom(Line::styled(
            " Enter inject · h heal selected · H heal all (each asks to confirm) ",
            bold(),
        ));
    let inner = block.inner(area);
    block.render(area, buf);
    if faults.items.is_empty() {
        Paragraph::new("The cluster offers no faults.").render(inner, buf);
        return;
    }
    let selected = faults.selected.min(faults.items.len() - 1);
    let entries = (usize::from(inner.height) / ENTRY_LINES).max(1);
    let mut lines = Vec::new();
    for index in scroll(selected, faults.items.len(), entries) {
        let item = &faults.items[index];
        let (active, pending) = state_of(app, item);
        let mark = if index == selected { "▶ " } else { "  " };
        let mut first = vec![
            Part::raw(mark),
            Part::styled(short(&item.title, 80), bold()),
        ];
        if item.title != item.id {
            first.push(Part::styled(format!("  ({})", short(&item.id, 60)), dim()));
        }
        // The label is in the box below; the row says the state in words.
        let state = match (active, pending) {
            (Some(_), true) => Some(("  healing…", Style::new().fg(Color::Yellow))),
            (None, true) => Some(("  injecting…", Style::new().fg(Color::Yellow))),
            (Some(_), false) => Some((
                "  [IN EFFECT]",
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            )),
            (None, false) => None,
        };
        if let Some((word, style)) = state {
            first.push(Part::styled(word, style));
        }
        let mut first = Line::from(first);
        if index == selected {
            first = first.style(selected_style());
        }
        lines.push(first);
        lines.push(Line::from(vec![
            Part::raw("    "),
            Part::raw(short(&item.description, 300)),
        ]));
        lines.push(Line::from(vec![
            Part::styled("    expect: ", dim()),
            match &item.expect {
                Some(expect) => Part::raw(short(expect, 200)),
                None => Part::styled("no particular diagnosis", dim()),
            },
        ]));
    }
    Paragraph::new(lines).render(inner, buf);
}

fn render_in_effect(app: &App, area: Rect, buf: &mut Buffer) {
    let faults = &app.faults;
    let mut lines: Vec<Line> = Vec::new();
    for (id, label) in &faults.active {
        let state = if faults.pending.contains(id) {
            "healing…"
        } else {
            "in effect"
        };
        lines.push(Line::from(vec![
            Part::styled(format!("  {state:<10} "), bold()),
            Part::raw(short(id, 60)),
            Part::styled(format!(": {}", short(label, 200)), dim()),
        ]));
    }
    for id in &faults.pending {
        if !faults.active.iter().any(|(a, _)| a == id) {
            lines.push(Line::from(vec![
                Part::styled(format!("  {:<10} ", "injecting…"), bold()),
                Part::raw(short(id, 60)),
            ]));
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled("  none: the cluster runs clean", dim()));
    }
    Paragraph::new(lines)
        .block(Block::bordered().title(Line::styled(" in effect ", bold())))
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use faultline_dashboards::Profile;

    use super::*;
    use crate::app::{Action, SourceKind, View};

    fn text(app: &App, width: u16, height: u16) -> String {
        crate::ui::drawn(app, width, height)
    }

    fn item(id: &str) -> FaultItem {
        FaultItem {
            id: id.to_owned(),
            title: format!("{id} ✗ 東京"),
            description: "d".repeat(10_000),
            expect: None,
        }
    }

    #[test]
    fn without_a_cluster_it_says_how_to_get_one() {
        let mut app = App::new(SourceKind::Replay("x".to_owned()), Profile::Demo, 10);
        app.update(Action::Show(View::Faults));
        let screen = text(&app, 80, 24);
        assert!(screen.contains("faultline demo"), "{screen}");
        text(&app, 20, 5);
    }

    #[test]
    fn active_and_pending_faults_are_written_out() {
        let mut app = App::new(SourceKind::Demo, Profile::Demo, 10);
        app.update(Action::Show(View::Faults));
        app.update(Action::Faults(
            (0..40).map(|i| item(&format!("f{i}"))).collect(),
        ));
        app.faults
            .active
            .push(("f0".to_owned(), "node-1 killed".to_owned()));
        app.faults.pending.insert("f1".to_owned());
        app.faults.pending.insert("f0".to_owned());
        let screen = text(&app, 160, 48);
        assert!(screen.contains("healing…"), "{screen}");
        assert!(screen.contains("injecting…"), "{screen}");
        assert!(screen.contains("node-1 killed"), "{screen}");
        app.faults.selected = 1000; // past the end: the last one is shown
        let screen = text(&app, 80, 24);
        assert!(screen.contains("▶ f39"), "{screen}");
        for (w, h) in [(1, 1), (20, 5), (30, 8)] {
            text(&app, w, h);
        }
    }
}
