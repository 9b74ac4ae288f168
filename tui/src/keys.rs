//! Keys to actions, by mode (PRODUCT.md §6: k9s and tokio-console conventions).
//!
//! | key | action |
//! |---|---|
//! | `?` | help overlay |
//! | `:` | command line (`:traces`, `:inject leader-crash`, `:heal`, `:speed 4`, `:q`) |
//! | `/` | filter traces (trace id, correlation id, `svc:NAME`, `error`) |
//! | `Tab` / `Shift-Tab`, `1`–`7` | next / previous view, a view by number |
//! | `j` `k` `↓` `↑`, `g` `G`, `PgDn` `PgUp` | move in a list |
//! | `Enter` | open (trace → waterfall, diagnosis → its evidence trace, fault → inject, playbook step → apply its remedy or open its evidence) |
//! | `Esc` | back (close overlay, waterfall, filter; return to live) |
//! | `Space` | pause / resume the live view (and a replay) |
//! | `[` `]`, `{` `}` | time cursor 1 s / 10 s back, forward |
//! | `L` | back to live |
//! | `+` `-` | replay faster / slower |
//! | `f` | the faults view; there `h` heals the selected fault, `H` heals all |
//! | `p` | in the diagnoses view: open the selected diagnosis's playbook (again: restart it) |
//! | `n` | in the playbook view: take the waiting step's latest result as final |
//! | `s` | in the playbook view: skip (decline) the remedy due |
//! | `w` | in the playbook view: write the run's Markdown transcript |
//! | `q`, `Ctrl-C` | quit |

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::{Action, Mode, View};

/// The action a key asks for in `mode`, if any.
pub fn action(mode: &Mode, view: View, key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Filter | Mode::Command(_) => typing(key),
        Mode::Help => match key.code {
            KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::Enter => Some(Action::Back),
            _ => None,
        },
        Mode::Confirm(_) => match key.code {
            KeyCode::Enter | KeyCode::Char('y' | 'Y') => Some(Action::Confirm(true)),
            KeyCode::Esc | KeyCode::Char('n' | 'N' | 'q') => Some(Action::Confirm(false)),
            _ => None,
        },
        Mode::Normal => normal(view, key),
    }
}

fn typing(key: KeyEvent) -> Option<Action> {
    match key.code {
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Backspace => Some(Action::Erase),
        KeyCode::Char(c) => Some(Action::Type(c)),
        _ => None,
    }
}

fn normal(view: View, key: KeyEvent) -> Option<Action> {
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char(':') => Action::StartCommand,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Tab => Action::NextView,
        KeyCode::BackTab => Action::PrevView,
        KeyCode::Char(c @ '1'..='7') => Action::Show(View::ALL[usize::from(c as u8 - b'1')]),
        KeyCode::Char('f') => Action::Show(View::Faults),
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::Enter => Action::Enter,
        KeyCode::Esc => Action::Back,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('[') | KeyCode::Left => Action::Step(-1),
        KeyCode::Char(']') | KeyCode::Right => Action::Step(1),
        KeyCode::Char('{') => Action::Step(-10),
        KeyCode::Char('}') => Action::Step(10),
        KeyCode::Char('L') => Action::Live,
        KeyCode::Char('+' | '=') => Action::Faster,
        KeyCode::Char('-') => Action::Slower,
        KeyCode::Char('h') if view == View::Faults => Action::Heal,
        KeyCode::Char('H') if view == View::Faults => Action::HealAll,
        KeyCode::Char('p') if view == View::Diagnoses => Action::OpenPlaybook,
        KeyCode::Char('n') if view == View::Playbook => Action::AcceptResult,
        KeyCode::Char('s') if view == View::Playbook => Action::SkipRemedy,
        KeyCode::Char('w') if view == View::Playbook => Action::WriteTranscript,
        _ => return None,
    })
}

/// The keys the footer shows for a view: (key, what), shortest first.
pub fn footer(mode: &Mode, view: View) -> Vec<(&'static str, &'static str)> {
    match mode {
        Mode::Filter => vec![("Enter", "apply"), ("Esc", "clear"), ("⌫", "erase")],
        Mode::Command(_) => vec![("Enter", "run"), ("Esc", "cancel")],
        Mode::Help => vec![("Esc", "close")],
        Mode::Confirm(_) => vec![("y/Enter", "confirm"), ("n/Esc", "cancel")],
        Mode::Normal => {
            let mut keys = vec![("?", "help"), ("Tab", "view"), ("q", "quit")];
            match view {
                View::Traces => keys.extend([("/", "filter"), ("Enter", "open"), ("Esc", "back")]),
                View::Diagnoses => keys.extend([("p", "playbook"), ("Enter", "evidence")]),
                View::Playbook => keys.extend([
                    ("Enter", "apply"),
                    ("s", "skip"),
                    ("n", "accept"),
                    ("w", "transcript"),
                ]),
                View::Faults => {
                    keys.extend([("Enter", "inject"), ("h", "heal"), ("H", "heal all")])
                }
                _ => keys.push(("f", "faults")),
            }
            keys.extend([("Space", "pause"), ("[ ]", "step"), (":", "command")]);
            keys
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_same_key_means_different_things_by_mode() {
        let q = key(KeyCode::Char('q'));
        assert!(matches!(
            action(&Mode::Normal, View::Overview, q),
            Some(Action::Quit)
        ));
        assert!(matches!(
            action(&Mode::Filter, View::Traces, q),
            Some(Action::Type('q'))
        ));
        assert!(matches!(
            action(&Mode::Help, View::Traces, q),
            Some(Action::Back)
        ));
        let h = key(KeyCode::Char('h'));
        assert!(action(&Mode::Normal, View::Overview, h).is_none());
        assert!(matches!(
            action(&Mode::Normal, View::Faults, h),
            Some(Action::Heal)
        ));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(matches!(
            action(&Mode::Filter, View::Traces, ctrl_c),
            Some(Action::Quit)
        ));
        assert!(matches!(
            action(&Mode::Normal, View::Overview, key(KeyCode::Char('4'))),
            Some(Action::Show(View::Traces))
        ));
        assert!(matches!(
            action(&Mode::Normal, View::Overview, key(KeyCode::Char('7'))),
            Some(Action::Show(View::Playbook))
        ));
    }

    #[test]
    fn playbook_keys_work_where_they_mean_something() {
        let p = key(KeyCode::Char('p'));
        assert!(matches!(
            action(&Mode::Normal, View::Diagnoses, p),
            Some(Action::OpenPlaybook)
        ));
        assert!(action(&Mode::Normal, View::Traces, p).is_none());
        let n = key(KeyCode::Char('n'));
        assert!(matches!(
            action(&Mode::Normal, View::Playbook, n),
            Some(Action::AcceptResult)
        ));
        // In the confirmation, n is no.
        let confirm = Mode::Confirm(crate::app::Effect::HealAll);
        assert!(matches!(
            action(&confirm, View::Playbook, n),
            Some(Action::Confirm(false))
        ));
        assert!(matches!(
            action(&Mode::Normal, View::Playbook, key(KeyCode::Char('s'))),
            Some(Action::SkipRemedy)
        ));
        assert!(matches!(
            action(&Mode::Normal, View::Playbook, key(KeyCode::Char('w'))),
            Some(Action::WriteTranscript)
        ));
        let footer = footer(&Mode::Normal, View::Playbook);
        for wanted in ["Enter", "s", "n", "w"] {
            assert!(footer.iter().any(|(k, _)| *k == wanted), "{footer:?}");
        }
    }
}
