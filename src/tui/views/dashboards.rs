//! The Dashboards view's state and update logic: the list of dashboards, and the open one's
//! panels with when each reruns its query. Refreshes are latest-wins: a panel never has two
//! queries in flight, a result whose job is no longer the panel's is dropped, and leaving the
//! view or the dashboard cancels what runs. A panel keeps its last good data (with its age)
//! while it refreshes and shows its own error without touching the others.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::dashboards::macros::{self, Context, VariableValue};
use crate::dashboards::model::{Dashboard, PanelKind, TimeRange, VariableKind};
use crate::dashboards::run::ALL;
use crate::dashboards::timerange;
use crate::warehouse::{Capabilities, QueryResult};

use crate::tui::action::Action;
use crate::tui::app::{AskFocus, Command, JobId, Level, State, View};
use crate::tui::widgets::chart::SeriesSet;

/// The ranges `t` and `T` step through, after the dashboard's own.
pub const RANGES: [&str; 8] = [
    "now-5m", "now-15m", "now-1h", "now-6h", "now-24h", "now-7d", "now-30d", "now-90d",
];

#[derive(Debug, Default)]
pub struct DashboardsState {
    /// The dashboards on offer, by name: the user's files, and in the demo the demo's.
    pub entries: Vec<(String, Dashboard)>,
    pub loaded: bool,
    /// Files that could not be read, or why none could be loaded.
    pub problems: Vec<String>,
    pub selected: usize,
    pub open: Option<OpenDashboard>,
    /// The dashboard to open once the list is read (`aurora dashboard open NAME`).
    pub open_at_start: Option<String>,
    /// The dashboard the view opens on its first visit (the demo's clickstream), so it is one
    /// key away.
    pub open_on_first_visit: Option<String>,
}

/// A dashboard on screen.
#[derive(Debug)]
pub struct OpenDashboard {
    pub name: String,
    pub dashboard: Dashboard,
    pub caps: Capabilities,
    pub panels: Vec<PanelView>,
    pub focused: usize,
    pub zoomed: bool,
    pub paused: bool,
    /// Index into [`OpenDashboard::ranges`].
    pub range: usize,
    pub variables: Vec<VariableView>,
    pub variable_cursor: usize,
    /// `$__aurora_pipelines`, from the pipelines the workspace sees, when a panel uses it.
    pub pipelines: Option<String>,
    uses_pipelines: bool,
    /// What each running job is for.
    jobs: HashMap<JobId, Target>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Panel(usize),
    Variable(usize),
}

#[derive(Debug, Default)]
pub struct PanelView {
    /// The last good result and the SQL that produced it.
    pub data: Option<PanelData>,
    pub error: Option<String>,
    /// Set when the server lacks a table the panel `needs`.
    pub left_out: Option<String>,
    pub in_flight: Option<JobId>,
    /// Unix milliseconds when the last query started and when data last arrived.
    pub started_at: Option<u64>,
    pub updated_at: Option<u64>,
}

#[derive(Debug)]
pub struct PanelData {
    pub result: Arc<QueryResult>,
    /// The result read as series, for the chart panels.
    pub series: Option<SeriesSet>,
    pub sql: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariableView {
    pub name: String,
    pub include_all: bool,
    pub choices: Vec<String>,
    /// The chosen value: `All`, one of the choices, or a text box's text.
    pub value: String,
    /// A query variable whose choices are still loading.
    pub loading: bool,
}

/// What the Dashboards view asks the job runner to do.
#[derive(Debug, Clone, PartialEq)]
pub enum DashboardJob {
    Run { job: JobId, sql: String },
    Cancel(JobId),
}

impl OpenDashboard {
    pub fn new(name: String, dashboard: Dashboard, caps: Capabilities) -> Self {
        let uses_pipelines = dashboard
            .panels
            .iter()
            .filter_map(|p| p.query.as_deref())
            .any(|q| q.contains("$__aurora_pipelines"));
        let variables = dashboard
            .variables
            .iter()
            .map(|v| {
                let value = v
                    .default
                    .clone()
                    .or_else(|| v.include_all.then(|| ALL.to_owned()))
                    .or_else(|| v.values.first().cloned())
                    .unwrap_or_default();
                VariableView {
                    name: v.name.clone(),
                    include_all: v.include_all,
                    choices: v.values.clone(),
                    value,
                    loading: v.kind == VariableKind::Query,
                }
            })
            .collect();
        Self {
            panels: dashboard
                .panels
                .iter()
                .map(|_| PanelView::default())
                .collect(),
            name,
            dashboard,
            caps,
            focused: 0,
            zoomed: false,
            paused: false,
            range: 0,
            variables,
            variable_cursor: 0,
            pipelines: None,
            uses_pipelines,
            jobs: HashMap::new(),
        }
    }

    /// The dashboard's own range first, then the standard ones it is not.
    pub fn ranges(&self) -> Vec<TimeRange> {
        let own = self.dashboard.time.clone();
        let mut out = vec![own.clone()];
        out.extend(
            RANGES
                .iter()
                .filter(|r| !(own.from == **r && own.to == "now"))
                .map(|r| TimeRange {
                    from: (*r).to_owned(),
                    to: "now".to_owned(),
                }),
        );
        out
    }

    pub fn time_range(&self) -> TimeRange {
        let ranges = self.ranges();
        ranges[self.range.min(ranges.len() - 1)].clone()
    }

    /// How often panel `i` reruns: its own refresh, else the dashboard's; `None`: only when
    /// asked.
    pub fn interval(&self, i: usize) -> Option<Duration> {
        self.dashboard.panels[i].refresh.or(self.dashboard.refresh)
    }

    fn values(&self) -> BTreeMap<String, VariableValue> {
        self.variables
            .iter()
            .map(|v| {
                let value = if v.include_all && v.value == ALL {
                    VariableValue::All(v.choices.clone())
                } else {
                    VariableValue::One(v.value.clone())
                };
                (v.name.clone(), value)
            })
            .collect()
    }

    /// `sql` expanded for the current range at `now_ms`, with `max_points` on the time axis.
    pub fn expand(&self, sql: &str, now_ms: u64, max_points: u64) -> Result<String, String> {
        let now = (now_ms / 1000) as i64;
        let range = self.time_range();
        let from = timerange::resolve(&range.from, now).map_err(|e| e.to_string())?;
        let to = timerange::resolve(&range.to, now).map_err(|e| e.to_string())?;
        let variables = self.values();
        macros::expand(
            sql,
            &Context {
                from,
                to,
                interval_s: macros::interval_for(from, to, max_points),
                caps: &self.caps,
                variables: &variables,
                pipelines: self.pipelines.as_deref(),
            },
        )
        .map_err(|e| match e.hint() {
            Some(h) => format!("{e} ({h})"),
            None => e.to_string(),
        })
    }

    /// Whether panel `i` waits for a variable whose choices are loading.
    fn waits_for_variables(&self, i: usize) -> bool {
        let Some(query) = &self.dashboard.panels[i].query else {
            return false;
        };
        let used = macros::variables_used(query);
        self.variables
            .iter()
            .any(|v| v.loading && used.contains(&v.name))
    }

    /// Starts what is due at `now_ms`: variables' choices on first open, then every panel
    /// whose interval has passed and which has no query in flight. `next_job` hands out ids.
    pub fn schedule(
        &mut self,
        now_ms: u64,
        max_points: u64,
        next_job: &mut dyn FnMut() -> JobId,
    ) -> Vec<DashboardJob> {
        let mut out = Vec::new();
        for (i, v) in self.dashboard.variables.iter().enumerate() {
            let pending =
                self.variables[i].loading && !self.jobs.values().any(|t| *t == Target::Variable(i));
            if let (true, Some(query)) = (pending, &v.query) {
                // Variables use the ones before them; wait until those have choices.
                if self.variables[..i].iter().any(|v| v.loading) {
                    continue;
                }
                match self.expand(query, now_ms, max_points) {
                    Ok(sql) => {
                        let job = next_job();
                        self.jobs.insert(job, Target::Variable(i));
                        out.push(DashboardJob::Run { job, sql });
                    }
                    Err(_) => self.variables[i].loading = false,
                }
            }
        }
        if self.paused {
            return out;
        }
        for i in 0..self.panels.len() {
            let panel = &self.dashboard.panels[i];
            let view = &self.panels[i];
            if panel.kind == PanelKind::Text || view.in_flight.is_some() || view.left_out.is_some()
            {
                continue;
            }
            let due = match (view.started_at, self.interval(i)) {
                (None, _) => true,
                (Some(started), Some(every)) => {
                    now_ms.saturating_sub(started) >= every.as_millis() as u64
                }
                (Some(_), None) => false,
            };
            if !due || self.waits_for_variables(i) {
                continue;
            }
            let Some(query) = &panel.query else { continue };
            match self.expand(query, now_ms, max_points) {
                Ok(sql) => {
                    let job = next_job();
                    self.jobs.insert(job, Target::Panel(i));
                    let view = &mut self.panels[i];
                    view.in_flight = Some(job);
                    view.started_at = Some(now_ms);
                    out.push(DashboardJob::Run { job, sql });
                }
                Err(e) => {
                    let view = &mut self.panels[i];
                    view.started_at = Some(now_ms);
                    view.error = Some(e);
                }
            }
        }
        out
    }

    /// Applies a finished job; `false` when it was not this dashboard's (or no longer wanted).
    pub fn on_result(
        &mut self,
        job: JobId,
        sql: Option<String>,
        result: Result<Arc<QueryResult>, String>,
        now_ms: u64,
    ) -> bool {
        let Some(target) = self.jobs.remove(&job) else {
            return false;
        };
        match target {
            Target::Variable(i) => {
                let v = &mut self.variables[i];
                v.loading = false;
                if let Ok(result) = result {
                    v.choices = result
                        .rows
                        .iter()
                        .filter_map(|r| r.first().map(ToString::to_string))
                        .collect();
                    if !v.include_all && v.value.is_empty() {
                        v.value = v.choices.first().cloned().unwrap_or_default();
                    }
                }
                true
            }
            Target::Panel(i) => {
                let panel = &self.dashboard.panels[i];
                let view = &mut self.panels[i];
                if view.in_flight != Some(job) {
                    return false;
                }
                view.in_flight = None;
                match result {
                    Ok(result) => {
                        view.error = None;
                        view.updated_at = Some(now_ms);
                        view.data = Some(PanelData {
                            series: SeriesSet::detect(&result),
                            result,
                            sql: sql.unwrap_or_default(),
                        });
                    }
                    // A job this dashboard cancelled is dropped above; any other error,
                    // a server-side cancel included, stays in the panel.
                    Err(e) => match crate::dashboards::run::missing_needed_table(panel, &e) {
                        Some(table) => {
                            view.left_out = Some(format!("this server has no `{table}`"))
                        }
                        None => view.error = Some(e),
                    },
                }
                true
            }
        }
    }

    /// Cancels every running query (the view or the dashboard is being left), so nothing
    /// stale arrives and the panels are due again on return.
    pub fn cancel_all(&mut self) -> Vec<DashboardJob> {
        let jobs: Vec<JobId> = self.jobs.drain().map(|(job, _)| job).collect();
        for p in &mut self.panels {
            if p.in_flight.take().is_some() {
                p.started_at = None;
            }
        }
        jobs.into_iter().map(DashboardJob::Cancel).collect()
    }

    /// Every panel due now (a new range or variable value, or `r`); running queries are
    /// cancelled first, as their answers no longer fit.
    pub fn refresh_all(&mut self) -> Vec<DashboardJob> {
        let mut cancelled = Vec::new();
        for p in &mut self.panels {
            p.started_at = None;
            if let Some(job) = p.in_flight.take() {
                self.jobs.remove(&job);
                cancelled.push(DashboardJob::Cancel(job));
            }
        }
        cancelled
    }

    pub fn step_range(&mut self, forward: bool) -> Vec<DashboardJob> {
        let n = self.ranges().len();
        self.range = if forward {
            (self.range + 1) % n
        } else {
            (self.range + n - 1) % n
        };
        self.refresh_all()
    }

    /// The next choice of the variable under the cursor (`All` first where offered).
    pub fn step_variable(&mut self, forward: bool) -> Vec<DashboardJob> {
        let Some(v) = self.variables.get_mut(self.variable_cursor) else {
            return Vec::new();
        };
        let mut options: Vec<String> = Vec::new();
        if v.include_all {
            options.push(ALL.to_owned());
        }
        options.extend(v.choices.iter().cloned());
        if options.is_empty() {
            return Vec::new();
        }
        let at = options.iter().position(|o| *o == v.value).unwrap_or(0);
        let n = options.len();
        let next = if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        };
        v.value = options[next].clone();
        self.refresh_all()
    }

    /// Moves the focus to the panel nearest in the direction `(dx, dy)`, in grid terms.
    pub fn move_focus(&mut self, dx: i32, dy: i32) {
        let panels = &self.dashboard.panels;
        let Some(current) = panels.get(self.focused) else {
            return;
        };
        let centre = |g: &crate::dashboards::model::GridPos| {
            (
                i32::from(g.x) * 2 + i32::from(g.w),
                i32::from(g.y) * 2 + i32::from(g.h),
            )
        };
        let (cx, cy) = centre(&current.grid);
        let best = panels
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.focused)
            .filter_map(|(i, p)| {
                let (x, y) = centre(&p.grid);
                let (ddx, ddy) = (x - cx, y - cy);
                let ahead = ddx * dx + ddy * dy;
                (ahead > 0).then(|| {
                    // Straight ahead counts more than sideways.
                    let side = (ddx * dy).abs() + (ddy * dx).abs();
                    (ahead + 3 * side, i)
                })
            })
            .min();
        if let Some((_, i)) = best {
            self.focused = i;
        }
    }
}

/// The job runner's command for a dashboard job.
pub fn dashboard_command(job: DashboardJob) -> Command {
    match job {
        DashboardJob::Run { job, sql } => Command::RunDashboardQuery { job, sql },
        DashboardJob::Cancel(job) => Command::Cancel(job),
    }
}

/// Points a time axis gets: about one per two cells of a full-width panel.
fn max_points(width: u16) -> u64 {
    (u64::from(width) / 2).max(20)
}

/// Starts what is due on the open dashboard, while its view is on screen.
pub fn schedule_dashboard(state: &mut State) -> Vec<Command> {
    if state.view != View::Dashboards {
        return Vec::new();
    }
    let Some(mut open) = state.dashboards.open.take() else {
        return Vec::new();
    };
    let (now, points) = (state.now, max_points(state.width));
    if open.uses_pipelines {
        let statuses: Vec<_> = state
            .pipelines
            .rows
            .iter()
            .map(|r| r.snapshot.status.clone())
            .collect();
        open.pipelines = Some(crate::dashboards::aurora_state::pipelines_subquery(
            &statuses,
        ));
    }
    let jobs = open.schedule(now, points, &mut || state.job());
    state.dashboards.open = Some(open);
    jobs.into_iter().map(dashboard_command).collect()
}

/// Esc in the Dashboards view: out of the zoom, else close the dashboard (its queries are
/// cancelled) and return to the list.
pub fn dashboards_back(state: &mut State) -> Vec<Command> {
    let Some(open) = &mut state.dashboards.open else {
        return Vec::new();
    };
    if open.zoomed {
        open.zoomed = false;
        return Vec::new();
    }
    let cancelled = open.cancel_all();
    state.dashboards.open = None;
    cancelled.into_iter().map(dashboard_command).collect()
}

pub fn dashboards_action(state: &mut State, action: Action) -> Vec<Command> {
    let Some(open) = &mut state.dashboards.open else {
        let list = &mut state.dashboards;
        let len = list.entries.len();
        match action {
            Action::MoveUp => list.selected = list.selected.saturating_sub(1),
            Action::MoveDown => list.selected = (list.selected + 1).min(len.saturating_sub(1)),
            Action::GoToTop => list.selected = 0,
            Action::GoToBottom => list.selected = len.saturating_sub(1),
            Action::ResumePipeline => {
                list.loaded = false;
                return vec![Command::LoadDashboards];
            }
            Action::Select => {
                let Some((name, dashboard)) = list.entries.get(list.selected).cloned() else {
                    return Vec::new();
                };
                let caps = Capabilities::from_version(&state.server_version);
                state.dashboards.open = Some(OpenDashboard::new(name, dashboard, caps));
                return schedule_dashboard(state);
            }
            _ => {}
        }
        return Vec::new();
    };
    let jobs = match action {
        Action::MoveLeft => {
            open.move_focus(-1, 0);
            Vec::new()
        }
        Action::MoveRight => {
            open.move_focus(1, 0);
            Vec::new()
        }
        Action::MoveUp => {
            open.move_focus(0, -1);
            Vec::new()
        }
        Action::MoveDown => {
            open.move_focus(0, 1);
            Vec::new()
        }
        Action::ZoomPanel | Action::Select => {
            open.zoomed = !open.zoomed;
            Vec::new()
        }
        Action::PausePipeline => {
            open.paused = !open.paused;
            let text = if open.paused {
                "refresh paused: p resumes, r refreshes once"
            } else {
                "refresh resumed"
            };
            state.notify(Level::Info, text);
            Vec::new()
        }
        Action::ResumePipeline => {
            let mut jobs = open.refresh_all();
            if open.paused {
                // One refresh while paused, then paused again.
                open.paused = false;
                let now = state.now;
                let points = max_points(state.width);
                let mut open = state.dashboards.open.take();
                if let Some(o) = &mut open {
                    jobs.extend(o.schedule(now, points, &mut || state.job()));
                    o.paused = true;
                }
                state.dashboards.open = open;
            }
            jobs
        }
        Action::NextTimeRange => open.step_range(true),
        Action::PreviousTimeRange => open.step_range(false),
        Action::NextVariable => {
            if !open.variables.is_empty() {
                open.variable_cursor = (open.variable_cursor + 1) % open.variables.len();
            }
            Vec::new()
        }
        Action::NextVariableValue => open.step_variable(true),
        Action::PreviousVariableValue => open.step_variable(false),
        Action::EditSql => {
            let panel = open.focused;
            let sql = match (
                &open.panels[panel].data,
                &open.dashboard.panels[panel].query,
            ) {
                (Some(data), _) if !data.sql.is_empty() => Some(data.sql.clone()),
                (_, Some(query)) => open.expand(query, state.now, max_points(state.width)).ok(),
                _ => None,
            };
            let Some(sql) = sql else {
                state.notify(Level::Info, "this panel has no query");
                return Vec::new();
            };
            let cancelled = open.cancel_all();
            state.ask.set_sql(sql.trim_end());
            state.ask.sql_edited = true;
            state.ask.focus = AskFocus::Sql;
            state.view = View::Ask;
            state.notify(
                Level::Info,
                "the panel's SQL, with the macros expanded: Enter runs it",
            );
            return cancelled.into_iter().map(dashboard_command).collect();
        }
        _ => Vec::new(),
    };
    let mut commands: Vec<Command> = jobs.into_iter().map(dashboard_command).collect();
    commands.extend(schedule_dashboard(state));
    commands
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dashboard() -> Dashboard {
        crate::dashboards::check::check_str(
            "d.yaml",
            "\
title: D
refresh: 10s
variables:
  - {name: kind, type: query, query: SELECT DISTINCT kind FROM t, include_all: true}
panels:
  - title: A
    type: stat
    grid: {x: 0, y: 0, w: 12, h: 4}
    query: SELECT count() FROM t WHERE $__timeFilter(ts)
  - title: B
    type: bar
    grid: {x: 12, y: 0, w: 12, h: 4}
    refresh: 1m
    query: SELECT kind, count() FROM t WHERE $__conditionalAll(kind IN (${kind:singlequote}), $kind) GROUP BY kind
  - title: C
    type: table
    grid: {x: 0, y: 4, w: 24, h: 4}
    needs: [system.disks]
    query: SELECT * FROM system.disks
",
        )
        .unwrap()
    }

    fn open() -> (OpenDashboard, impl FnMut() -> JobId) {
        let mut next = 0;
        (
            OpenDashboard::new(
                "d".into(),
                dashboard(),
                Capabilities::from_version("18.16.1"),
            ),
            move || {
                next += 1;
                next
            },
        )
    }

    fn runs(jobs: &[DashboardJob]) -> Vec<(JobId, String)> {
        jobs.iter()
            .filter_map(|j| match j {
                DashboardJob::Run { job, sql } => Some((*job, sql.clone())),
                _ => None,
            })
            .collect()
    }

    fn result() -> Arc<QueryResult> {
        Arc::new(QueryResult::default())
    }

    #[test]
    fn panels_wait_for_their_variables_then_refresh_on_their_own_intervals() {
        let (mut d, mut next) = open();
        let first = runs(&d.schedule(1_000_000, 100, &mut next));
        // The variable's choices, and the panels that do not use it.
        assert_eq!(first.len(), 3, "{first:?}");
        assert!(first[0].1.starts_with("SELECT DISTINCT kind"));
        assert!(
            first[1].1.contains("toDateTime("),
            "macros expanded: {}",
            first[1].1
        );
        assert!(d.on_result(
            first[0].0,
            None,
            Ok(Arc::new(QueryResult::default())),
            1_000_100
        ));
        let second = runs(&d.schedule(1_000_200, 100, &mut next));
        assert_eq!(second.len(), 1);
        assert!(
            second[0].1.contains("1=1"),
            "All drops the condition: {}",
            second[0].1
        );
        // Nothing is due again before the intervals pass, and nothing in flight is stacked.
        assert!(runs(&d.schedule(1_005_000, 100, &mut next)).is_empty());
        let at_10s = runs(&d.schedule(1_010_000, 100, &mut next));
        assert!(at_10s.is_empty(), "A and C are still in flight: {at_10s:?}");
        assert!(d.on_result(first[1].0, Some("sql".into()), Ok(result()), 1_010_100));
        let later = runs(&d.schedule(1_020_100, 100, &mut next));
        assert_eq!(
            later.len(),
            1,
            "only A (10s) is due, B refreshes each minute: {later:?}"
        );
    }

    #[test]
    fn stale_results_are_dropped_and_errors_stay_in_their_panel() {
        let (mut d, mut next) = open();
        let first = runs(&d.schedule(0, 100, &mut next));
        let (a, c) = (first[1].0, first[2].0);
        // A new range cancels A's query; its late answer is dropped.
        let cancelled = d.step_range(true);
        assert!(cancelled.contains(&DashboardJob::Cancel(a)));
        assert!(!d.on_result(a, None, Ok(result()), 10));
        assert!(d.panels[0].data.is_none());
        // A missing `needs` table leaves the panel out; another error stays in its panel.
        let again = runs(&d.schedule(20, 100, &mut next));
        let c2 = again
            .iter()
            .find(|(_, sql)| sql.contains("system.disks"))
            .unwrap()
            .0;
        assert_ne!(c, c2);
        assert!(d.on_result(
            c2,
            None,
            Err("ClickHouse error 60: Table system.disks doesn't exist".into()),
            30
        ));
        assert_eq!(
            d.panels[2].left_out.as_deref(),
            Some("this server has no `system.disks`")
        );
        let a2 = again
            .iter()
            .find(|(_, sql)| sql.contains("count() FROM t WHERE"))
            .unwrap()
            .0;
        assert!(d.on_result(
            a2,
            None,
            Err("ClickHouse error 47: Unknown identifier".into()),
            40
        ));
        assert!(d.panels[0].error.is_some());
        assert!(d.panels[2].error.is_none() && d.panels[1].error.is_none());
        // Leaving cancels whatever still runs, and the panels are due on return.
        let leaving = d.cancel_all();
        assert!(leaving.iter().all(|j| matches!(j, DashboardJob::Cancel(_))));
        assert!(d.panels.iter().all(|p| p.in_flight.is_none()));
    }

    #[test]
    fn pause_variables_and_focus() {
        let (mut d, mut next) = open();
        d.paused = true;
        let jobs = runs(&d.schedule(0, 100, &mut next));
        assert_eq!(
            jobs.len(),
            1,
            "only the variable's choices load while paused"
        );
        d.variables[0].loading = false;
        d.variables[0].choices = vec!["a".into(), "b".into()];
        d.step_variable(true);
        assert_eq!(d.variables[0].value, "a");
        d.step_variable(false);
        assert_eq!(d.variables[0].value, ALL);
        d.move_focus(1, 0);
        assert_eq!(d.focused, 1);
        d.move_focus(0, 1);
        assert_eq!(d.focused, 2);
        d.move_focus(0, -1);
        assert!(d.focused < 2);
        assert_eq!(d.ranges()[1].from, "now-5m");
    }
}
