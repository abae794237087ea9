//! Key bindings: the defaults below, with `ui.keymap` (`action: key` or `action: "k, up"`)
//! read over them one action at a time. Problems in the user's map are all collected and shown
//! in the workspace, which goes on with the default binding of each broken entry.

use std::collections::BTreeMap;
use std::fmt;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// A key with its modifiers, as written in the config (`ctrl-e`, `G`, `pagedown`, `?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    code: KeyCodeName,
    ctrl: bool,
    alt: bool,
}

/// `KeyCode` without the variants a terminal cannot bind; ordered so keymaps print stably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyCodeName {
    Char(char),
    F(u8),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Delete,
    Insert,
}

const NAMED: &[(&str, KeyCodeName)] = &[
    ("enter", KeyCodeName::Enter),
    ("esc", KeyCodeName::Esc),
    ("tab", KeyCodeName::Tab),
    ("shift-tab", KeyCodeName::BackTab),
    ("backspace", KeyCodeName::Backspace),
    ("up", KeyCodeName::Up),
    ("down", KeyCodeName::Down),
    ("left", KeyCodeName::Left),
    ("right", KeyCodeName::Right),
    ("pageup", KeyCodeName::PageUp),
    ("pagedown", KeyCodeName::PageDown),
    ("home", KeyCodeName::Home),
    ("end", KeyCodeName::End),
    ("delete", KeyCodeName::Delete),
    ("insert", KeyCodeName::Insert),
    ("space", KeyCodeName::Char(' ')),
];

impl Key {
    pub fn from_event(event: &KeyEvent) -> Option<Self> {
        let code = match event.code {
            KeyCode::Char(c) => KeyCodeName::Char(c),
            KeyCode::F(n) => KeyCodeName::F(n),
            KeyCode::Enter => KeyCodeName::Enter,
            KeyCode::Esc => KeyCodeName::Esc,
            KeyCode::Tab => KeyCodeName::Tab,
            KeyCode::BackTab => KeyCodeName::BackTab,
            KeyCode::Backspace => KeyCodeName::Backspace,
            KeyCode::Up => KeyCodeName::Up,
            KeyCode::Down => KeyCodeName::Down,
            KeyCode::Left => KeyCodeName::Left,
            KeyCode::Right => KeyCodeName::Right,
            KeyCode::PageUp => KeyCodeName::PageUp,
            KeyCode::PageDown => KeyCodeName::PageDown,
            KeyCode::Home => KeyCodeName::Home,
            KeyCode::End => KeyCodeName::End,
            KeyCode::Delete => KeyCodeName::Delete,
            KeyCode::Insert => KeyCodeName::Insert,
            _ => return None,
        };
        // Shift is part of the character (`G`, `?`); for other keys only BackTab carries it.
        Some(Key {
            code,
            ctrl: event.modifiers.contains(KeyModifiers::CONTROL),
            alt: event.modifiers.contains(KeyModifiers::ALT),
        })
    }

    /// Parses `q`, `G`, `ctrl-e`, `alt-enter`, `f1`, `pagedown`, `space`, `shift-tab`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rest = text.trim();
        let (mut ctrl, mut alt) = (false, false);
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let lower = rest.to_ascii_lowercase();
        let code = if let Some((_, code)) = NAMED.iter().find(|(n, _)| *n == lower) {
            *code
        } else if let Some(n) = lower
            .strip_prefix('f')
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| (1..=12).contains(n))
        {
            KeyCodeName::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                // Terminals report ctrl-letters as lower case.
                (Some(c), None) if ctrl => KeyCodeName::Char(c.to_ascii_lowercase()),
                (Some(c), None) => KeyCodeName::Char(c),
                _ => {
                    return Err(format!(
                        "`{text}` is not a key; write a character (`q`, `G`, `?`), a name \
                         (enter, esc, tab, shift-tab, up, pagedown, home, space, f1…), \
                         optionally after `ctrl-` or `alt-`"
                    ))
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    /// Keys that act as commands even while typing in a text box.
    pub fn works_while_typing(self) -> bool {
        self.ctrl
            || self.alt
            || matches!(
                self.code,
                KeyCodeName::F(_) | KeyCodeName::Esc | KeyCodeName::Tab | KeyCodeName::BackTab
            )
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCodeName::Char(' ') => f.write_str("space"),
            KeyCodeName::Char(c) => write!(f, "{c}"),
            KeyCodeName::F(n) => write!(f, "f{n}"),
            code => {
                let name = NAMED
                    .iter()
                    .find(|(_, c)| *c == code)
                    .map_or("?", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

const DEFAULTS: &[(Action, &str)] = &[
    (Action::Quit, "q, ctrl-c"),
    (Action::ToggleHelp, "?, f1"),
    (Action::NextView, "tab"),
    (Action::PreviousView, "shift-tab"),
    (Action::ShowAsk, "1"),
    (Action::ShowPipelines, "2"),
    (Action::ShowSchema, "3"),
    (Action::ShowHistory, "4"),
    (Action::ShowDashboards, "5"),
    (Action::StartFilter, "/"),
    (Action::Back, "esc"),
    (Action::MoveUp, "k, up"),
    (Action::MoveDown, "j, down"),
    (Action::MoveLeft, "h, left"),
    (Action::MoveRight, "l, right"),
    (Action::PageUp, "pageup, ctrl-b"),
    (Action::PageDown, "pagedown, ctrl-f"),
    (Action::GoToTop, "g, home"),
    (Action::GoToBottom, "G, end"),
    (Action::Select, "enter"),
    (Action::FocusQuestion, "i"),
    (Action::EditSql, "e"),
    (Action::OpenEditor, "ctrl-e"),
    (Action::RunSql, "ctrl-r"),
    (Action::ToggleChart, "c"),
    (Action::CycleChart, "v"),
    (Action::ExportResult, "x, ctrl-s"),
    (Action::ClearConversation, "ctrl-l"),
    (Action::PausePipeline, "p"),
    (Action::ResumePipeline, "r"),
    (Action::RestartPipeline, "R"),
    (Action::ReplayDeadLetters, "d"),
    (Action::ToggleFavourite, "f"),
    (Action::AcceptAnswer, "a"),
    (Action::DeployDashboard, "D"),
    (Action::ZoomPanel, "z"),
    (Action::NextTimeRange, "t"),
    (Action::PreviousTimeRange, "T"),
    (Action::NextVariable, "n"),
    (Action::NextVariableValue, "]"),
    (Action::PreviousVariableValue, "["),
];

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: BTreeMap<Key, Action>,
}

impl Keymap {
    /// The defaults with `overrides` (action name → keys) applied; every problem is returned,
    /// and a broken entry keeps its default.
    pub fn new(overrides: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut keys: BTreeMap<Action, Vec<Key>> = BTreeMap::new();
        for (action, spec) in DEFAULTS {
            // The defaults are checked by a unit test; a parse failure cannot happen here.
            let parsed = spec.split(", ").filter_map(|k| Key::parse(k).ok());
            keys.insert(*action, parsed.collect());
        }
        let mut problems = Vec::new();
        for (name, spec) in overrides {
            let Some(action) = Action::from_name(name) else {
                let names: Vec<String> = Action::ALL.iter().map(|a| a.name()).collect();
                let hint = crate::config::did_you_mean(name, names.iter().map(String::as_str))
                    .map(|s| format!(", did you mean `{s}`?"))
                    .unwrap_or_default();
                problems.push(format!("ui.keymap: unknown action `{name}`{hint}"));
                continue;
            };
            let parsed: Result<Vec<Key>, String> = spec
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(Key::parse)
                .collect();
            match parsed {
                Ok(list) if !list.is_empty() => {
                    keys.insert(action, list);
                }
                Ok(_) => problems.push(format!("ui.keymap.{name}: no key given")),
                Err(e) => problems.push(format!("ui.keymap.{name}: {e}")),
            }
        }
        // Defaults first, then the user's keys over them: a key the user binds is theirs even
        // when a default had it.
        let overridden: Vec<Action> = overrides
            .keys()
            .filter_map(|name| Action::from_name(name))
            .collect();
        let mut bindings = BTreeMap::new();
        for (action, list) in keys.iter().filter(|(a, _)| !overridden.contains(a)) {
            for key in list {
                bindings.insert(*key, *action);
            }
        }
        for (action, list) in keys.iter().filter(|(a, _)| overridden.contains(a)) {
            for key in list {
                if let Some(other) = bindings.insert(*key, *action) {
                    if other != *action && overridden.contains(&other) {
                        problems.push(format!(
                            "ui.keymap: `{key}` is bound to both `{}` and `{}`; `{}` wins",
                            other.name(),
                            action.name(),
                            action.name()
                        ));
                    }
                }
            }
        }
        for action in Action::ALL {
            if !bindings.values().any(|a| a == action) {
                problems.push(format!(
                    "ui.keymap: `{}` has no key left (yours took its default); bind it to another",
                    action.name()
                ));
            }
        }
        (Self { bindings }, problems)
    }

    pub fn action(&self, event: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(event)?;
        self.bindings.get(&key).copied()
    }

    /// The action of `event` if it acts while typing in a text box.
    pub fn action_while_typing(&self, event: &KeyEvent) -> Option<Action> {
        let key = Key::from_event(event)?;
        if key.works_while_typing() {
            self.bindings.get(&key).copied()
        } else {
            None
        }
    }

    /// The first key bound to `action`, for hints in titles (`p`, `ctrl-l`).
    pub fn key_for(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|(_, a)| **a == action)
            .map_or_else(|| "(unbound)".to_string(), |(k, _)| k.to_string())
    }

    /// The keys bound to `action`, as the help shows them (`k, up`).
    pub fn keys_for(&self, action: Action) -> String {
        let keys: Vec<String> = self
            .bindings
            .iter()
            .filter(|(_, a)| **a == action)
            .map(|(k, _)| k.to_string())
            .collect();
        keys.join(", ")
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Self::new(&BTreeMap::new()).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn defaults_parse_and_cover_every_action() {
        for (action, spec) in DEFAULTS {
            for key in spec.split(", ") {
                Key::parse(key).unwrap_or_else(|e| panic!("{action:?}: {e}"));
            }
        }
        let map = Keymap::default();
        for action in Action::ALL {
            assert!(!map.keys_for(*action).is_empty(), "{action:?} has no key");
        }
    }

    #[test]
    fn keys_match_terminal_events() {
        let map = Keymap::default();
        let ctrl = KeyModifiers::CONTROL;
        let shift = KeyModifiers::SHIFT;
        assert_eq!(
            map.action(&event(KeyCode::Char('c'), ctrl)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&event(KeyCode::Char('G'), shift)),
            Some(Action::GoToBottom)
        );
        assert_eq!(
            map.action(&event(KeyCode::BackTab, shift)),
            Some(Action::PreviousView)
        );
        assert_eq!(map.action(&event(KeyCode::Char('x'), ctrl)), None);
        // While typing, `q` is a letter and Ctrl-E still opens the editor.
        assert_eq!(
            map.action_while_typing(&event(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            map.action_while_typing(&event(KeyCode::Char('e'), ctrl)),
            Some(Action::OpenEditor)
        );
    }

    #[test]
    fn overrides_replace_one_action_and_report_every_problem() {
        let overrides: BTreeMap<String, String> = [
            ("quit".to_string(), "ctrl-q".to_string()),
            ("toggle_chrt".to_string(), "c".to_string()),
            ("go_to_top".to_string(), "ctrl-".to_string()),
            ("show_ask".to_string(), "2".to_string()),
        ]
        .into();
        let (map, problems) = Keymap::new(&overrides);
        assert_eq!(
            map.action(&event(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action(&event(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(map.keys_for(Action::GoToTop), "g, home");
        assert_eq!(
            map.action(&event(KeyCode::Char('2'), KeyModifiers::NONE)),
            Some(Action::ShowAsk),
            "the user's binding wins over a default"
        );
        assert_eq!(problems.len(), 3, "{problems:#?}");
        for expected in [
            "did you mean `toggle_chart`",
            "`ctrl-` is not a key",
            "`show_pipelines` has no key left",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(expected)),
                "{expected}: {problems:#?}"
            );
        }
    }
}
