//! The Ask view's update logic: a question or SQL submitted, the model's streamed answer and
//! its attempts, a query's rows as a table or chart, history records, and keeping a confirmed
//! answer as an example.

use std::sync::Arc;

use crate::tui::action::Action;
use crate::tui::app::*;
use crate::tui::history::{HistoryEntry, Outcome};
use crate::tui::layout;
use crate::tui::widgets::chart::{ChartKind, SeriesSet};
use crate::tui::widgets::result_table::ResultView;
use crate::warehouse::QueryResult;

use super::move_selection;

pub(crate) fn submit_question(state: &mut State) -> Vec<Command> {
    let text = text_of(&state.ask.question).trim().to_string();
    if text.is_empty() {
        return Vec::new();
    }
    if state.ask.question_history.last() != Some(&text) {
        state.ask.question_history.push(text.clone());
    }
    state.ask.history_cursor = None;
    state.ask.question = text_box("");
    if looks_like_sql(&text) {
        state.ask.set_sql(&text);
        state.ask.asked = None;
        return run_sql(state, text, None);
    }
    ask_question(state, text)
}

pub(crate) fn ask_question(state: &mut State, question: String) -> Vec<Command> {
    let mut commands = cancel_current(state);
    let job = state.job();
    let conversation =
        (!state.ask.conversation.turns.is_empty()).then(|| state.ask.conversation.clone());
    state.ask.job = Some(job);
    state.ask.asked = Some(question.clone());
    state.ask.last_question = Some(question.clone());
    state.ask.phase = Phase::Generating {
        attempt: 1,
        started_ms: state.now,
    };
    state.ask.set_sql(crate::assistant::prompt::ANSWER_PREFIX);
    state.ask.sql_edited = false;
    state.ask.attempts.clear();
    state.ask.generation_time = None;
    state.ask.retry_reason = None;
    commands.push(Command::Ask {
        job,
        question,
        conversation,
    });
    commands
}

pub(crate) fn cancel_current(state: &mut State) -> Vec<Command> {
    match state.ask.job.take() {
        Some(job)
            if matches!(
                state.ask.phase,
                Phase::Generating { .. } | Phase::Running { .. }
            ) =>
        {
            vec![Command::Cancel(job)]
        }
        _ => Vec::new(),
    }
}

pub(crate) fn run_sql_box(state: &mut State) -> Vec<Command> {
    let sql = text_of(&state.ask.sql).trim().to_string();
    if sql.is_empty() {
        return Vec::new();
    }
    // SQL changed by hand is the user's own query, not the answer to the question.
    let question = if state.ask.sql_edited {
        None
    } else {
        state.ask.asked.clone()
    };
    state.ask.asked = question.clone();
    run_sql(state, sql, question)
}

pub(crate) fn run_sql(state: &mut State, sql: String, question: Option<String>) -> Vec<Command> {
    let mut commands = cancel_current(state);
    let job = state.job();
    state.ask.job = Some(job);
    state.ask.asked = question;
    state.ask.phase = Phase::Running {
        started_ms: state.now,
    };
    state.ask.attempts.clear();
    state.ask.generation_time = None;
    state.ask.focus = AskFocus::Result;
    state.ask.running_sql = Some(sql.clone());
    commands.push(Command::RunSql { job, sql });
    commands
}

/// `a` in the Ask view: the question and the SQL whose rows are shown, which may be the
/// model's answer or the user's correction of it.
pub(crate) fn accept_answer(state: &mut State) -> Vec<Command> {
    let ask = &state.ask;
    let question = ask.asked.clone().or_else(|| ask.last_question.clone());
    match (
        question,
        ask.shown_sql.clone().filter(|_| ask.result.is_some()),
    ) {
        (Some(question), Some(sql)) => vec![Command::KeepExample { question, sql }],
        (None, _) => {
            state.notify(
                Level::Info,
                "no question to keep this query for: ask one first",
            );
            Vec::new()
        }
        (Some(_), None) => {
            state.notify(
                Level::Info,
                "nothing to keep yet: no query has returned rows",
            );
            Vec::new()
        }
    }
}

pub(crate) fn ask_action(state: &mut State, action: Action) -> Vec<Command> {
    if action == Action::AcceptAnswer {
        return accept_answer(state);
    }
    let viewport = layout::result_inner(state);
    let ask = &mut state.ask;
    let showing_suggestions = ask.shows_suggestions();
    match action {
        Action::EditSql => {
            if matches!(ask.phase, Phase::Generating { .. }) {
                state.notify(Level::Info, "the model is still writing; Esc cancels it");
            } else {
                ask.focus = AskFocus::Sql;
            }
        }
        Action::RunSql => return run_sql_box(state),
        Action::ToggleChart => {
            if ask.chart.is_some() {
                ask.show_chart = !ask.show_chart;
            } else {
                state.notify(
                    Level::Info,
                    "no chart: the result is not a series (a time or ordinal column and numbers)",
                );
            }
        }
        Action::CycleChart => {
            if ask.chart.is_some() {
                ask.chart_kind = ask.chart_kind.next();
                ask.show_chart = true;
            }
        }
        Action::ExportResult => {
            if ask.result.is_some() {
                ask.export = Some(text_box("aurora-result.csv"));
            } else {
                state.notify(Level::Info, "nothing to export yet");
            }
        }
        Action::Select if showing_suggestions => {
            if let Some(s) = ask.suggestions.get(ask.selected_suggestion).cloned() {
                ask.set_sql(&s.sql);
                return run_sql(state, s.sql, Some(s.question));
            }
        }
        _ if showing_suggestions => {
            move_selection(&mut ask.selected_suggestion, ask.suggestions.len(), action);
        }
        _ => {
            if let Some(view) = &mut ask.result {
                move_in_table(view, action, viewport);
            }
        }
    }
    Vec::new()
}

pub(crate) fn on_job(state: &mut State, job: JobId, output: JobOutput) -> Vec<Command> {
    // Latest wins: output of a question or query that was replaced is dropped.
    if state.ask.job != Some(job) {
        return Vec::new();
    }
    match output {
        JobOutput::Token(piece) => {
            if let Some(why) = piece.strip_prefix(crate::assistant::ask::ATTEMPT_SEPARATOR) {
                if let Phase::Generating { attempt, .. } = &mut state.ask.phase {
                    *attempt += 1;
                }
                state.ask.retry_reason = (!why.is_empty()).then(|| why.to_string());
                state.ask.set_sql(crate::assistant::prompt::ANSWER_PREFIX);
            } else {
                state.ask.sql.move_cursor(tui_textarea::CursorMove::Bottom);
                state.ask.sql.move_cursor(tui_textarea::CursorMove::End);
                state.ask.sql.insert_str(piece);
            }
        }
        JobOutput::Answer(Ok(report)) => {
            state.ask.job = None;
            state.ask.sql_edited = false;
            state.ask.attempts = report.attempts;
            state.ask.generation_time = Some(report.generation);
            state.ask.unsure = report.unsure;
            let question = state.ask.asked.clone().unwrap_or_default();
            if let Some(sql) = &report.sql {
                state.ask.set_sql(sql);
                state.ask.conversation.push(&question, sql);
            }
            state.ask.shown_sql = report.sql.clone().filter(|_| report.result.is_some());
            match (report.result, report.failure) {
                (Some(result), _) => {
                    state.ask.phase = Phase::Done;
                    record(state, &question, report.sql.as_deref(), Ok(&result));
                    show_result(state, result);
                }
                (None, failure) => {
                    let reason = failure.unwrap_or_else(|| "no query was accepted".into());
                    record(state, &question, report.sql.as_deref(), Err(&reason));
                    state.ask.phase = Phase::Failed(reason);
                }
            }
            return vec![Command::SaveHistory];
        }
        JobOutput::Answer(Err(e)) => {
            state.ask.job = None;
            let question = state.ask.asked.clone().unwrap_or_default();
            record(state, &question, None, Err(&e));
            state.ask.phase = Phase::Failed(e);
            return vec![Command::SaveHistory];
        }
        JobOutput::Query(result) => {
            state.ask.job = None;
            let sql = state
                .ask
                .running_sql
                .take()
                .unwrap_or_else(|| text_of(&state.ask.sql));
            let question = state.ask.asked.clone();
            state.ask.shown_sql = result.is_ok().then(|| sql.clone());
            match result {
                Ok(result) => {
                    state.ask.phase = Phase::Done;
                    record_query(state, question, &sql, Ok(&result));
                    show_result(state, result);
                }
                Err(e) => {
                    record_query(state, question, &sql, Err(&e));
                    state.ask.phase = Phase::Failed(e);
                }
            }
            return vec![Command::SaveHistory];
        }
    }
    Vec::new()
}

pub(crate) fn show_result(state: &mut State, result: Arc<QueryResult>) {
    let chart = SeriesSet::detect(&result);
    let area = layout::result_inner(state);
    state.ask.chart_kind = chart
        .as_ref()
        .map_or(ChartKind::Line, |set| set.default_kind_for(area));
    state.ask.show_chart = false;
    state.ask.chart = chart;
    let mut view = ResultView::new(result);
    let filter = &state.filters[View::Ask.index()];
    if !filter.is_empty() {
        view.set_filter(filter);
    }
    state.ask.result = Some(view);
    state.ask.focus = AskFocus::Result;
    keep_selections_visible(state);
}

pub(crate) fn record(
    state: &mut State,
    question: &str,
    sql: Option<&str>,
    outcome: Result<&QueryResult, &str>,
) {
    let question = (!question.is_empty()).then(|| question.to_string());
    record_query(state, question, sql.unwrap_or(""), outcome);
}

pub(crate) fn record_query(
    state: &mut State,
    question: Option<String>,
    sql: &str,
    outcome: Result<&QueryResult, &str>,
) {
    let outcome = match outcome {
        Ok(result) => Outcome::Rows {
            rows: result.rows.len() as u64,
            elapsed_ms: result.stats.elapsed.as_millis() as u64,
        },
        Err(e) => Outcome::Failed(e.to_string()),
    };
    state.history.history.push(HistoryEntry {
        question,
        sql: sql.to_string(),
        outcome,
        at: state.now / 1000,
        favourite: false,
    });
    state.relist_history();
}
