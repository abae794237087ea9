//! The History view: past questions and queries, newest first, with outcome and time;
//! favourites marked. Enter reruns, e edits, f marks a favourite.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::{draw_block, panel, placeholder};
use crate::tui::action::Action;
use crate::tui::app::State;
use crate::tui::history::Outcome;
use crate::tui::layout;
use crate::tui::widgets::sql;

pub fn draw(frame: &mut Frame, body: Rect, state: &State) {
    let theme = &state.theme;
    let history = &state.history;
    let entries = &history.history.entries;
    if history.listed.is_empty() {
        let block = panel(" History ", true, theme);
        let inner = draw_block(frame, body, block);
        let text = if entries.is_empty() {
            "Nothing yet: questions and queries you run appear here."
        } else {
            "No entry matches the filter (Esc clears it)."
        };
        placeholder(frame, inner, text, theme.muted);
        return;
    }
    let areas = layout::list_and_detail(body);
    let rows: Vec<Row> = history
        .listed
        .iter()
        .filter_map(|&i| entries.get(i))
        .map(|e| {
            let (outcome, style) = match &e.outcome {
                Outcome::Rows { rows, elapsed_ms } => {
                    (format!("{rows} rows · {elapsed_ms} ms"), theme.success)
                }
                Outcome::Failed(_) => ("failed".to_string(), theme.danger),
            };
            let text = e
                .question
                .clone()
                .unwrap_or_else(|| e.sql.split_whitespace().collect::<Vec<_>>().join(" "));
            Row::new(vec![
                Cell::from(if e.favourite { "★" } else { " " }).style(theme.warning),
                Cell::from(super::clock(e.at * 1000)).style(theme.muted),
                Cell::from(text).style(if e.question.is_some() {
                    theme.text
                } else {
                    theme.accent
                }),
                Cell::from(outcome).style(style),
            ])
        })
        .collect();
    let keys = &state.keymap;
    let title = format!(
        " History ({}) · {} reruns · {} edits · {} favourite ",
        history.listed.len(),
        keys.key_for(Action::Select),
        keys.key_for(Action::EditSql),
        keys.key_for(Action::ToggleFavourite)
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(1),
            Constraint::Length(8),
            Constraint::Min(10),
            Constraint::Length(22),
        ],
    )
    .header(Row::new(
        ["", "time", "question or SQL", "outcome"].map(|h| Cell::from(h).style(theme.header)),
    ))
    .row_highlight_style(theme.selection)
    .block(panel(title, true, theme));
    let mut table_state = TableState::default().with_selected(Some(history.selected));
    frame.render_stateful_widget(table, areas.list, &mut table_state);

    let Some(entry) = history
        .listed
        .get(history.selected)
        .and_then(|&i| entries.get(i))
    else {
        return;
    };
    let mut lines = sql::highlight(&entry.sql, theme);
    if let Outcome::Failed(reason) = &entry.outcome {
        lines.push(Line::raw(""));
        lines.push(Line::styled(reason.clone(), theme.danger));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel(" SQL ", false, theme)),
        areas.detail,
    );
}
