//! The Ask view: question box, status line, SQL (highlighted, or the editor when focused) and
//! the result as a table or chart, or the suggestions before the first result.

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{draw_block, fit, panel, placeholder};
use crate::tui::action::Action;
use crate::tui::app::{AskFocus, Phase, State};
use crate::tui::completion::Completion;
use crate::tui::layout;
use crate::tui::widgets::chart::ResultChart;
use crate::tui::widgets::result_table::ResultTable;
use crate::tui::widgets::sql;

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

pub fn draw(frame: &mut Frame, body: Rect, state: &State) {
    let ask = &state.ask;
    let theme = &state.theme;
    let areas = layout::ask(body, ask.sql.lines());

    let focused = ask.focus == AskFocus::Question;
    let block = panel(
        " Ask a question, or type SQL to run it as written ",
        focused,
        theme,
    );
    let inner = draw_block(frame, areas.question, block);
    if ask.question.is_empty() && !focused {
        frame.render_widget(
            Line::styled(
                format!(
                    "press {} to type a question",
                    state.keymap.key_for(Action::FocusQuestion)
                ),
                theme.muted,
            ),
            inner,
        );
    } else {
        frame.render_widget(&ask.question, inner);
    }

    let status = status_line(state);
    let used = status.width() as u16;
    frame.render_widget(status, areas.context);
    if let Some(turn) = ask.conversation.last() {
        // What a follow-up refines, right-aligned in the room the status leaves.
        let room = usize::from(areas.context.width.saturating_sub(used + 2));
        let forget = format!(
            " ({} forgets) ",
            state.keymap.key_for(Action::ClearConversation)
        );
        let fixed = "refining: ".len() + forget.len();
        if room > fixed + 8 {
            let question = fit(&turn.question, room - fixed, false).0.into_owned();
            let refining = Line::from(vec![
                Span::styled("refining: ", theme.muted),
                Span::styled(question, theme.accent),
                Span::styled(forget, theme.muted),
            ])
            .alignment(Alignment::Right);
            frame.render_widget(refining, areas.context);
        }
    }

    let sql_focused = ask.focus == AskFocus::Sql;
    let title = if ask.sql_edited {
        " SQL (edited: Enter runs it as written) "
    } else {
        " SQL "
    };
    let block = panel(title, sql_focused, theme);
    let inner = draw_block(frame, areas.sql, block);
    if sql_focused {
        frame.render_widget(&ask.sql, inner);
    } else {
        let text = ask.sql.lines().join("\n");
        frame.render_widget(
            Paragraph::new(sql::highlight(&text, theme)).wrap(Wrap { trim: false }),
            inner,
        );
    }

    draw_result(frame, areas.result, state);
    if let (true, Some(completion)) = (sql_focused, &ask.completion) {
        draw_completion(frame, inner, ask.sql.cursor(), completion, state);
    }
}

/// Names shown at most at once in the completion list.
const COMPLETION_ROWS: usize = 8;

/// The completion list under the word being typed (above it when there is no room below),
/// drawn over whatever is there.
fn draw_completion(
    frame: &mut Frame,
    sql_area: Rect,
    (row, col): (usize, usize),
    completion: &Completion,
    state: &State,
) {
    let theme = &state.theme;
    let screen = frame.area();
    let rows = completion.items.len().min(COMPLETION_ROWS);
    let label = |item: &crate::tui::completion::Item| {
        if item.detail.is_empty() {
            item.kind.label().to_string()
        } else {
            item.detail.clone()
        }
    };
    // Sized to the names in view, so one long name further down does not widen the list.
    let first = completion.selected.saturating_sub(rows.saturating_sub(1));
    let shown = &completion.items[first..(first + rows).min(completion.items.len())];
    let name_width = shown
        .iter()
        .map(|i| i.text.chars().count())
        .max()
        .unwrap_or(0);
    let label_width = shown
        .iter()
        .map(|i| label(i).chars().count())
        .max()
        .unwrap_or(0)
        .min(24);
    let title = " Tab inserts · ↑↓ · Esc ";
    let width = (name_width + label_width + 5)
        .max(title.chars().count() + 2)
        .min(usize::from(screen.width)) as u16;
    let height = rows as u16 + 2;
    let word_start = col.saturating_sub(completion.typed_chars) as u16;
    let x = (sql_area.x + word_start).min(screen.right().saturating_sub(width));
    let below = sql_area.y + row as u16 + 1;
    let y = if below + height <= screen.bottom() {
        below
    } else {
        (sql_area.y + row as u16).saturating_sub(height)
    };
    let area = Rect::new(x, y, width, height).intersection(screen);
    let items: Vec<ListItem> = shown
        .iter()
        .map(|item| {
            let name = format!("{:<name_width$}  ", item.text);
            let detail = fit(&label(item), label_width, false).0.into_owned();
            ListItem::new(Line::from(vec![
                Span::styled(name, theme.text),
                Span::styled(detail, theme.muted),
            ]))
        })
        .collect();
    frame.render_widget(Clear, area);
    let block = panel(title, true, theme);
    let inner = draw_block(frame, area, block);
    let mut list_state = ListState::default().with_selected(Some(completion.selected - first));
    frame.render_stateful_widget(
        List::new(items).highlight_style(theme.selection),
        inner,
        &mut list_state,
    );
}

fn status_line(state: &State) -> Line<'static> {
    let ask = &state.ask;
    let theme = &state.theme;
    let spinner = SPINNER[(state.ticks % SPINNER.len() as u64) as usize];
    let since = |started: u64| state.now.saturating_sub(started) as f64 / 1000.0;
    match &ask.phase {
        Phase::Idle => Line::styled(
            format!(
                " Enter asks · Esc goes to the result · {} shows every key",
                state.keymap.key_for(Action::ToggleHelp)
            ),
            theme.muted,
        ),
        Phase::Generating {
            attempt,
            started_ms,
        } => {
            let mut spans = vec![
                Span::styled(format!(" {spinner} "), theme.accent),
                Span::styled(
                    format!(
                        "writing SQL (attempt {attempt}) · {:.1} s · Esc cancels",
                        since(*started_ms)
                    ),
                    theme.text,
                ),
            ];
            // A retry says why the last attempt was refused (the server's or the checker's
            // words), so the user sees the repair happen.
            if let Some(why) = &ask.retry_reason {
                spans.push(Span::styled(
                    format!(" · attempt {} refused: {why}", attempt.saturating_sub(1)),
                    theme.warning,
                ));
            }
            Line::from(spans)
        }
        Phase::Running { started_ms } => Line::from(vec![
            Span::styled(format!(" {spinner} "), theme.accent),
            Span::styled(
                format!("running · {:.1} s · Esc cancels", since(*started_ms)),
                theme.text,
            ),
        ]),
        Phase::Done => {
            let mut text = String::from(" ✓ done");
            if let Some(g) = ask.generation_time {
                text.push_str(&format!(" · SQL written in {:.1} s", g.as_secs_f64()));
            }
            let retries = ask.attempts.len().saturating_sub(1);
            if retries > 0 {
                text.push_str(&format!(" after {retries} repair(s)"));
            }
            let mut spans = vec![Span::styled(text, theme.success)];
            // Doubt first: it is what the user must not miss.
            if !ask.unsure.is_empty() {
                spans.push(Span::styled(
                    format!(" · unsure: {}", ask.unsure.join("; ")),
                    theme.warning,
                ));
            }
            let fixes = ask.attempts.last().map_or(&[][..], |a| &a.fixes[..]);
            if !fixes.is_empty() {
                spans.push(Span::styled(
                    format!(" · fitted to the question: {}", fixes.join("; ")),
                    theme.muted,
                ));
            }
            Line::from(spans)
        }
        Phase::Failed(_) => Line::styled(" ✗ failed (details below)", theme.danger),
    }
}

fn draw_result(frame: &mut Frame, area: Rect, state: &State) {
    let ask = &state.ask;
    let theme = &state.theme;
    let focused = ask.focus == AskFocus::Result;
    if let Phase::Failed(reason) = &ask.phase {
        let mut lines = vec![Line::styled(reason.clone(), theme.danger), Line::raw("")];
        for (i, attempt) in ask.attempts.iter().enumerate() {
            lines.push(Line::styled(format!("attempt {}:", i + 1), theme.header));
            lines.extend(sql::highlight(&attempt.sql, theme));
            for fix in &attempt.fixes {
                lines.push(Line::styled(format!("  fitted: {fix}"), theme.muted));
            }
            if let Some(error) = &attempt.error {
                lines.push(Line::styled(format!("  → {error}"), theme.warning));
            }
        }
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(panel(" Error ", focused, theme)),
            area,
        );
        return;
    }
    if let Some(view) = &ask.result {
        match (&ask.chart, ask.show_chart) {
            (Some(set), true) => {
                let keys = &state.keymap;
                let title = format!(
                    " Chart ({}) · {}: table · {}: kind ",
                    ask.chart_kind.name(),
                    keys.key_for(Action::ToggleChart),
                    keys.key_for(Action::CycleChart)
                );
                let block = panel(title, focused, theme);
                let inner = draw_block(frame, area, block);
                frame.render_widget(
                    ResultChart {
                        set,
                        kind: ask.chart_kind,
                        theme,
                    },
                    inner,
                );
            }
            _ => {
                let chart_hint = format!(" · {}: chart", state.keymap.key_for(Action::ToggleChart));
                let hint = if ask.chart.is_some() {
                    chart_hint.as_str()
                } else {
                    ""
                };
                let title = format!(" Result · {}{hint} ", view.summary());
                let block = panel(title, focused, theme);
                let inner = draw_block(frame, area, block);
                frame.render_widget(
                    ResultTable {
                        view,
                        theme,
                        focused,
                    },
                    inner,
                );
            }
        }
        return;
    }
    let title = format!(
        " Suggestions · {} runs one ",
        state.keymap.key_for(Action::Select)
    );
    let block = panel(title, focused, theme);
    if ask.suggestions.is_empty() {
        let inner = draw_block(frame, area, block);
        placeholder(
            frame,
            inner,
            "Ask about your data, e.g. “How many events per hour today?”",
            theme.muted,
        );
        return;
    }
    let items: Vec<ListItem> = ask
        .suggestions
        .iter()
        .map(|s| {
            ListItem::new(Line::from(vec![
                Span::styled(format!("{:<18} ", s.table), theme.muted),
                Span::styled(s.question.clone(), theme.text),
            ]))
        })
        .collect();
    let list = List::new(items).block(block);
    let list = if focused {
        list.highlight_style(theme.selection)
    } else {
        list
    };
    // A fresh list state each frame: the offset follows the selection without being stored.
    let mut list_state = ListState::default().with_selected(Some(ask.selected_suggestion));
    frame.render_stateful_widget(list, area, &mut list_state);
}
