//! The History view's update logic: rerun, edit or ask again an entry, mark favourites, keep
//! an answered question as an example.

use crate::tui::action::Action;
use crate::tui::app::*;
use crate::tui::history::{HistoryEntry, Outcome};

use super::ask::{ask_question, run_sql};
use super::move_selection;

pub(crate) fn history_action(state: &mut State, action: Action) -> Vec<Command> {
    let history = &mut state.history;
    if move_selection(&mut history.selected, history.listed.len(), action) {
        return Vec::new();
    }
    let selected = history.listed.get(history.selected).copied();
    match action {
        Action::AcceptAnswer => {
            let entry = selected.and_then(|i| history.history.entries.get(i));
            match entry {
                Some(HistoryEntry {
                    question: Some(question),
                    sql,
                    outcome: Outcome::Rows { .. },
                    ..
                }) => {
                    return vec![Command::KeepExample {
                        question: question.clone(),
                        sql: sql.clone(),
                    }]
                }
                Some(_) => state.notify(
                    Level::Info,
                    "only a question whose query returned rows can be kept as an example",
                ),
                None => {}
            }
        }
        Action::ToggleFavourite => {
            if let Some(entry) = selected.and_then(|i| history.history.entries.get_mut(i)) {
                entry.favourite = !entry.favourite;
                return vec![Command::SaveHistory];
            }
        }
        Action::Select | Action::RunSql | Action::EditSql => {
            let Some(entry) = selected
                .and_then(|i| history.history.entries.get(i))
                .cloned()
            else {
                return Vec::new();
            };
            state.view = View::Ask;
            if entry.sql.trim().is_empty() {
                // A question that never got SQL: ask it again.
                if let Some(q) = entry.question {
                    return ask_question(state, q);
                }
                return Vec::new();
            }
            state.ask.set_sql(&entry.sql);
            if action == Action::EditSql {
                state.ask.sql_edited = true;
                state.ask.focus = AskFocus::Sql;
                return Vec::new();
            }
            return run_sql(state, entry.sql, entry.question);
        }
        _ => {}
    }
    Vec::new()
}
