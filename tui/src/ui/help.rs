//! The help overlay (`?`): every key (keys.rs), every `:` command (`App::command`)
//! and the filter syntax (`app::Filter`), in two columns that fit 80×24.
//!
//! ```text
//!  ┌ help ─────────────────────────────────────────┐
//!  │ keys                   │ commands             │
//!  │                        │ filter               │
//!  └ Esc closes ────────────────────────────────────┘
//! ```
//!
//! The tables below are checked against keys.rs's module doc and `App::command`'s doc
//! by a test, so a key added there and not here fails the build's tests.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span as Part};
use ratatui::widgets::{Block, Paragraph, Widget};

use super::{bold, dim, popup};
use crate::app::App;

/// (keys, what they do); an empty key continues the line above.
const KEYS: &[(&str, &str)] = &[
    ("?", "this help (Esc closes)"),
    (": /", "command line / filter"),
    ("Tab Shift-Tab", "next / previous view"),
    ("1–7", "a view by number"),
    ("j k ↓ ↑", "move in a list"),
    ("g G PgDn PgUp", "first / last, a page"),
    ("Enter", "open trace / evidence,"),
    ("", "inject, apply a remedy"),
    ("Esc", "back, then to live"),
    ("Space", "pause / resume (replay)"),
    ("[ ] ← → { }", "time cursor ∓1 s, ∓10 s"),
    ("L", "back to live"),
    ("+ -", "replay faster / slower"),
    ("f h H", "faults; heal one / all"),
    ("p", "the diagnosis's playbook"),
    ("n", "take the waiting result"),
    ("s w", "skip remedy; transcript"),
    ("q Ctrl-C", "quit"),
];

const COMMANDS: &[(&str, &str)] = &[
    (":overview :signals :map", ""),
    (":traces :diagnoses :faults", ""),
    (":playbook [NAME]", "open a playbook"),
    (":q :quit", "quit"),
    (":help", "this help"),
    (":live", "back to live"),
    (":inject NAME", "inject a fault"),
    (":heal [NAME]", "heal one, or all"),
    (":speed N", "replay speed 1–64"),
    (":filter TEXT", "filter the traces"),
];

const FILTER: &[(&str, &str)] = &[
    ("error", "traces with an error"),
    ("svc:NAME", "traces through a service"),
    ("4bf92f", "a trace id prefix"),
    ("other text", "correlation id, service"),
    ("", "or root operation"),
];

/// Width of the key column.
const KEY_WIDTH: usize = 14;

pub(super) fn render(_app: &App, area: Rect, buf: &mut Buffer) {
    let left = KEYS.len();
    let right = COMMANDS.len() + FILTER.len() + 3;
    let height = (left.max(right) + 2) as u16;
    let rect = popup(area, 100, height, buf);
    let block = Block::bordered()
        .title(Line::styled(" help: keys · commands · filter ", bold()))
        .title_bottom(Line::styled(" Esc, ? or q closes ", bold()));
    let inner = block.inner(rect);
    block.render(rect, buf);
    let [keys, _, rest] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(inner);
    Paragraph::new(table(KEYS)).render(keys, buf);
    let mut lines = vec![Line::styled("commands (type : first)", bold())];
    lines.extend(table(COMMANDS));
    lines.push(Line::raw(""));
    lines.push(Line::styled("filter (/ or :filter): all terms", bold()));
    lines.extend(table(FILTER));
    Paragraph::new(lines).render(rest, buf);
}

fn table(rows: &[(&'static str, &'static str)]) -> Vec<Line<'static>> {
    rows.iter()
        .map(|&(key, what)| {
            Line::from(vec![
                // A key as wide as the column still keeps a space before its text.
                Part::styled(
                    if key.chars().count() < KEY_WIDTH {
                        format!("{key:<KEY_WIDTH$}")
                    } else {
                        format!("{key} ")
                    },
                    bold(),
                ),
                Part::styled(what, dim()),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use faultline_dashboards::Profile;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::app::{Action, SourceKind, View};

    fn help_screen(width: u16, height: u16) -> String {
        let mut app = App::new(SourceKind::Demo, Profile::Demo, 10);
        app.update(Action::Help);
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| frame.render_widget(&app, frame.area()))
            .unwrap();
        terminal.backend().to_string()
    }

    /// The backticked keys in the first column of keys.rs's module doc table.
    fn documented_keys() -> Vec<String> {
        let mut keys = Vec::new();
        for line in include_str!("../keys.rs").lines() {
            let Some(row) = line.strip_prefix("//! | ") else {
                continue;
            };
            let first = row.split(" | ").next().unwrap_or("");
            keys.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
        }
        keys
    }

    /// The backticked commands in `App::command`'s doc.
    fn documented_commands() -> Vec<String> {
        let source = include_str!("../app.rs");
        let start = source.find("/// `:` commands").unwrap();
        let doc: String = source[start..]
            .lines()
            .take_while(|l| l.trim_start().starts_with("///"))
            .collect::<Vec<_>>()
            .join(" ");
        doc.split('`')
            .skip(1)
            .step_by(2)
            .filter(|c| *c != ":")
            .flat_map(|c| c.split('/'))
            .map(|c| format!(":{c}"))
            .collect()
    }

    #[test]
    fn every_documented_key_and_command_is_listed_and_fits_80_by_24() {
        let keys = documented_keys();
        assert!(keys.len() > 15, "the keys.rs table was read: {keys:?}");
        let commands = documented_commands();
        assert!(
            commands.contains(&":heal [NAME]".to_owned()),
            "{commands:?}"
        );
        let views = View::ALL.iter().map(|v| format!(":{}", v.title()));
        let filter = ["error", "svc:NAME", "trace id prefix", "correlation id"];
        for (width, height) in [(80, 24), (160, 48)] {
            let screen = help_screen(width, height);
            for wanted in keys
                .iter()
                .cloned()
                .chain(commands.iter().cloned())
                .chain(views.clone())
                .chain(filter.iter().map(|s| (*s).to_owned()))
            {
                assert!(
                    screen.contains(&wanted),
                    "{wanted:?} missing at {width}×{height}:\n{screen}"
                );
            }
        }
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        for (w, h) in [(1, 1), (20, 5), (30, 8)] {
            help_screen(w, h);
        }
    }
}
