//! The Schema view's update logic: the table list and its filter, a table's sample on Enter,
//! the dashboard templates that fit the selected table, and `D` deploying the best.

use crate::tui::action::Action;
use crate::tui::app::*;
use crate::tui::layout;
use crate::tui::widgets::result_table::ResultView;
use crate::warehouse::QueryResult;
use std::sync::Arc;

use super::ask::run_sql;
use super::move_selection;

/// Lists the tables matching the Schema view's filter.
pub(crate) fn relist_tables(state: &mut State) {
    let filter = state.filters[View::Schema.index()].to_lowercase();
    let schema = &mut state.schema;
    schema.listed = match &schema.schema {
        Some(s) => s
            .tables
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                filter.is_empty()
                    || t.qualified_name().to_lowercase().contains(&filter)
                    || t.columns
                        .iter()
                        .any(|c| c.name.to_lowercase().contains(&filter))
            })
            .map(|(i, _)| i)
            .collect(),
        None => Vec::new(),
    };
    schema.selected = schema.selected.min(schema.listed.len().saturating_sub(1));
}

pub(crate) fn schema_action(state: &mut State, action: Action) -> Vec<Command> {
    if state.schema.focus == SchemaFocus::Sample {
        let area = layout::sample_inner(state);
        if let Some(view) = &mut state.schema.sample {
            if action == Action::Select {
                return Vec::new();
            }
            move_in_table(view, action, area);
        }
        return Vec::new();
    }
    let schema = &mut state.schema;
    let before = schema.selected;
    if move_selection(&mut schema.selected, schema.listed.len(), action) {
        let mut commands = Vec::new();
        if schema.selected != before {
            schema.sample = None;
            schema.sample_error = None;
            // The sample of the table left behind must not land under the new one.
            if let Some(job) = schema.sample_job.take() {
                commands.push(Command::Cancel(job));
            }
        }
        commands.extend(request_fits(state));
        return commands;
    }
    match action {
        Action::Select => {
            let Some((database, table)) = state
                .selected_table()
                .map(|t| (t.database.clone(), t.name.clone()))
            else {
                return Vec::new();
            };
            let mut commands: Vec<Command> = state
                .schema
                .sample_job
                .take()
                .map(Command::Cancel)
                .into_iter()
                .collect();
            let job = state.job();
            state.schema.sample_job = Some(job);
            state.schema.sample_error = None;
            commands.push(Command::SampleTable {
                job,
                database,
                table,
            });
            return commands;
        }
        Action::DeployDashboard => {
            let Some((database, table)) = state
                .selected_table()
                .map(|t| (t.database.clone(), t.name.clone()))
            else {
                return Vec::new();
            };
            if state.schema.deploying {
                return Vec::new();
            }
            state.schema.deploying = true;
            state.notify(
                Level::Info,
                format!("deploying a dashboard on {database}.{table}…"),
            );
            return vec![Command::DeployDashboard { database, table }];
        }
        Action::RunSql => {
            // Runs the table's first suggestion in the Ask view.
            if let Some(s) = state.table_suggestions().first().copied().cloned() {
                state.view = View::Ask;
                state.ask.set_sql(&s.sql);
                return run_sql(state, s.sql, Some(s.question));
            }
        }
        _ => {}
    }
    Vec::new()
}

/// Asks which dashboard templates fit the selected table, unless that is known or asked;
/// a request for a table left behind is cancelled (latest wins).
pub(crate) fn request_fits(state: &mut State) -> Vec<Command> {
    let Some((database, table)) = state
        .selected_table()
        .map(|t| (t.database.clone(), t.name.clone()))
    else {
        return Vec::new();
    };
    let name = format!("{database}.{table}");
    let known = state.schema.fits.as_ref().is_some_and(|(t, _)| *t == name);
    let asked = state
        .schema
        .fits_job
        .as_ref()
        .is_some_and(|(_, t)| *t == name);
    if known || asked {
        return Vec::new();
    }
    let mut commands: Vec<Command> = state
        .schema
        .fits_job
        .take()
        .map(|(job, _)| Command::Cancel(job))
        .into_iter()
        .collect();
    let job = state.job();
    state.schema.fits_job = Some((job, name));
    commands.push(Command::FitDashboards {
        job,
        database,
        table,
    });
    commands
}

pub(crate) fn on_sample(state: &mut State, job: JobId, result: Result<Arc<QueryResult>, String>) {
    if state.schema.sample_job != Some(job) {
        return;
    }
    state.schema.sample_job = None;
    match result {
        Ok(result) => {
            state.schema.sample_filter.clear();
            state.schema.sample = Some(ResultView::new(result));
            state.schema.sample_error = None;
            state.schema.focus = SchemaFocus::Sample;
            keep_selections_visible(state);
        }
        Err(e) => state.schema.sample_error = Some(e),
    }
}
