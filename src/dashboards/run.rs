//! Running a dashboard: resolving its time range and variables (a query variable's choices
//! come from its own query), expanding each panel's macros for the connected server, and
//! running the panels read-only with a time limit. A panel's failure is that panel's state;
//! it never stops the others. Panels whose `needs` tables the server lacks are left out with
//! the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::warehouse::{QueryOptions, QueryResult, Warehouse};

use super::macros::{self, Context, MacroError, VariableValue};
use super::model::{Dashboard, Panel, PanelKind, VariableKind};
use super::timerange;

/// The choice offered by a variable with `include_all`.
pub const ALL: &str = "All";
/// Rows a panel shows at most; a dashboard is for overviews, not exports.
pub const MAX_PANEL_ROWS: u64 = 1_000;
/// A panel query slower than this is stopped and shown as an error.
pub const PANEL_TIMEOUT: Duration = Duration::from_secs(30);

/// The moment and values one run of a dashboard sees.
#[derive(Debug, Clone)]
pub struct Frame {
    pub from: i64,
    pub to: i64,
    /// Points a time axis should have at most (the panel's width in a terminal).
    pub max_points: u64,
    pub variables: BTreeMap<String, VariableValue>,
    /// `$__aurora_pipelines`: the pipelines' state as a subquery.
    pub pipelines: Option<String>,
}

/// What became of one panel.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelState {
    Data {
        sql: String,
        result: QueryResult,
    },
    Text(String),
    /// The server refused the query, or it could not be expanded.
    Failed {
        sql: Option<String>,
        message: String,
        hint: Option<String>,
    },
    LeftOut {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Time(#[from] timerange::TimeError),
    #[error("variable `{name}`: {message}")]
    Variable { name: String, message: String },
    #[error("no variable `{0}` in this dashboard")]
    UnknownVariable(String),
}

/// The time range of `dashboard` at `now`.
pub fn time_range(dashboard: &Dashboard, now: i64) -> Result<(i64, i64), RunError> {
    Ok((
        timerange::resolve(&dashboard.time.from, now)?,
        timerange::resolve(&dashboard.time.to, now)?,
    ))
}

/// Resolves every variable in order: the user's `chosen` value, else the default, else `All`
/// where offered, else the first choice. Query variables run their query (which may use the
/// variables before them).
pub async fn resolve_variables(
    warehouse: &Warehouse,
    dashboard: &Dashboard,
    from: i64,
    to: i64,
    chosen: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, VariableValue>, RunError> {
    if let Some(unknown) = chosen
        .keys()
        .find(|k| !dashboard.variables.iter().any(|v| &v.name == *k))
    {
        return Err(RunError::UnknownVariable(unknown.clone()));
    }
    let mut values = BTreeMap::new();
    for v in &dashboard.variables {
        let choices: Vec<String> = match (v.kind, &v.query) {
            (VariableKind::Query, Some(query)) => {
                let frame = Frame {
                    from,
                    to,
                    max_points: 100,
                    variables: values.clone(),
                    pipelines: None,
                };
                let sql = expand(query, warehouse, &frame).map_err(|e| RunError::Variable {
                    name: v.name.clone(),
                    message: e.to_string(),
                })?;
                let sql = for_viewer(&sql, warehouse).map_err(|e| RunError::Variable {
                    name: v.name.clone(),
                    message: e.to_string(),
                })?;
                let result = warehouse.query(&sql, &panel_options()).await.map_err(|e| {
                    RunError::Variable {
                        name: v.name.clone(),
                        message: e.to_string(),
                    }
                })?;
                result
                    .rows
                    .iter()
                    .filter_map(|row| row.first().map(|cell| cell.to_string()))
                    .collect()
            }
            _ => v.values.clone(),
        };
        let wanted = chosen.get(&v.name).or(v.default.as_ref());
        let value = match wanted {
            Some(w) if v.include_all && w == ALL => VariableValue::All(choices),
            Some(w) => VariableValue::One(w.clone()),
            None if v.include_all => VariableValue::All(choices),
            None => VariableValue::One(choices.first().cloned().unwrap_or_default()),
        };
        values.insert(v.name.clone(), value);
    }
    Ok(values)
}

/// The SQL `sql` becomes on `warehouse`'s server for `frame`.
pub fn expand(sql: &str, warehouse: &Warehouse, frame: &Frame) -> Result<String, MacroError> {
    macros::expand(
        sql,
        &Context {
            from: frame.from,
            to: frame.to,
            interval_s: macros::interval_for(frame.from, frame.to, frame.max_points),
            caps: warehouse.capabilities(),
            variables: &frame.variables,
            pipelines: frame.pipelines.as_deref(),
        },
    )
}

/// `sql` as this process's user may run it for a dashboard (`dashboard.view` and the data
/// their roles may read, row filters applied), or why not. Not recorded: neither are refreshes.
pub fn for_viewer(sql: &str, warehouse: &Warehouse) -> Result<String, crate::rbac::Denied> {
    let access = crate::rbac::current();
    access.allow("dashboard.view", "")?;
    crate::rbac::sql::authorize(&access, sql, &warehouse.settings().database)
}

/// Limits every panel query runs with: read-only, a time limit, a row cap.
pub fn panel_options() -> QueryOptions {
    QueryOptions {
        readonly: true,
        max_execution_time: Some(PANEL_TIMEOUT),
        max_result_rows: Some(MAX_PANEL_ROWS),
        ..QueryOptions::default()
    }
}

/// The table of `panel`'s `needs` that a server message says is missing: the panel is then
/// left out, not failed. The workspace and the commands both judge by the message, so no
/// query of `system.tables` is needed before running.
pub fn missing_needed_table<'p>(panel: &'p Panel, message: &str) -> Option<&'p str> {
    let unknown_table = message.contains("error 60")
        || message.contains("doesn't exist")
        || message.contains("does not exist");
    if !unknown_table {
        return None;
    }
    panel
        .needs
        .iter()
        .find(|t| {
            message.contains(t.as_str())
                || t.rsplit('.').next().is_some_and(|n| message.contains(n))
        })
        .map(String::as_str)
}

/// A panel left out for the table it needs.
fn left_out(table: &str) -> PanelState {
    PanelState::LeftOut {
        reason: format!("this server has no `{table}`"),
    }
}

/// Runs one panel.
pub async fn run_panel(warehouse: &Warehouse, panel: &Panel, frame: &Frame) -> PanelState {
    if panel.kind == PanelKind::Text {
        return PanelState::Text(panel.text.clone().unwrap_or_default());
    }
    let Some(query) = &panel.query else {
        return PanelState::LeftOut {
            reason: "no query".into(),
        };
    };
    let sql = match expand(query, warehouse, frame) {
        Ok(sql) => sql,
        Err(e) => {
            return PanelState::Failed {
                sql: None,
                hint: e.hint(),
                message: e.to_string(),
            }
        }
    };
    let run = match for_viewer(&sql, warehouse) {
        Ok(run) => run,
        Err(denied) => {
            return PanelState::Failed {
                hint: None,
                message: denied.to_string(),
                sql: Some(sql),
            }
        }
    };
    match warehouse.query(&run, &panel_options()).await {
        Ok(result) => PanelState::Data { sql, result },
        Err(e) => match missing_needed_table(panel, &e.to_string()) {
            Some(table) => left_out(table),
            None => PanelState::Failed {
                hint: e.hint(),
                message: e.to_string(),
                sql: Some(sql),
            },
        },
    }
}

/// Runs every panel of `dashboard` once, a few at a time, in the dashboard's order.
pub async fn run_all(
    warehouse: &Warehouse,
    dashboard: &Dashboard,
    frame: &Frame,
) -> Vec<PanelState> {
    let runs = dashboard
        .panels
        .iter()
        .map(|p| run_panel(warehouse, p, frame));
    use futures_util::StreamExt;
    futures_util::stream::iter(runs).buffered(4).collect().await
}

/// Checks every panel's query on the server without running it (`DESCRIBE (query)`), with
/// the macros expanded for the current time range. Returns the panel index and problem.
pub async fn live_check(
    warehouse: &Warehouse,
    dashboard: &Dashboard,
    frame: &Frame,
) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (i, panel) in dashboard.panels.iter().enumerate() {
        let Some(query) = &panel.query else { continue };
        match expand(query, warehouse, frame) {
            Err(e) => problems.push((i, e.to_string())),
            Ok(sql) => {
                // Checked as a viewer would run it: a dry run too can show what lies outside
                // the user's roles.
                let sql = match for_viewer(&sql, warehouse) {
                    Ok(sql) => sql,
                    Err(denied) => {
                        problems.push((i, denied.to_string()));
                        continue;
                    }
                };
                let refused = warehouse.dry_run(&sql).await.err();
                // A table the panel marks as not on every server is no mistake in the file.
                if let Some(e) =
                    refused.filter(|e| missing_needed_table(panel, &e.to_string()).is_none())
                {
                    let mut message = e.to_string();
                    if let Some(hint) = e.hint() {
                        message.push_str(&format!(" (hint: {hint})"));
                    }
                    problems.push((i, message));
                }
            }
        }
    }
    problems
}
