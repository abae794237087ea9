//! The workspace's state and its one update function. Messages (keys, ticks, job results,
//! pipeline snapshots) go in; the state changes and commands for background jobs come out.
//! Nothing here does I/O or reads a clock: time arrives with `Msg::Tick`, so tests can replay
//! any sequence of messages and get the same state.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Size;
use tui_textarea::TextArea;

use super::completion::{complete, Completion};

use crate::assistant::conversation::Conversation;
use crate::assistant::suggest::Suggestion;
use crate::dashboards::bind::Fit;
use crate::dashboards::Dashboard;
use crate::ingest::supervisor::{PipelineControl, PipelineSnapshot};
use crate::warehouse::schema::Schema;
use crate::warehouse::QueryResult;

use super::action::Action;
use super::history::History;
use super::keymap::Keymap;
use super::layout;
use super::theme::Theme;
use super::views::ask::{ask_action, cancel_current, on_job, run_sql_box, submit_question};
use super::views::dashboards::DashboardsState;
pub use super::views::dashboards::{
    dashboard_command, dashboards_action, dashboards_back, schedule_dashboard,
};
use super::views::history::history_action;
use super::views::pipelines::{
    on_daemon_trouble, on_pipelines, on_replayed, pipelines_action, sample_rates,
};
use super::views::schema::{on_sample, relist_tables, request_fits, schema_action};
use super::widgets::chart::{ChartKind, SeriesSet};
use super::widgets::result_table::ResultView;

/// Identifies a background job; results of a job that is no longer current are dropped.
pub type JobId = u64;

/// How many samples of rows/s each pipeline keeps for its sparkline (one per second).
pub const RATE_HISTORY: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Ask,
    Pipelines,
    Schema,
    History,
    Dashboards,
}

impl View {
    pub const ALL: [View; 5] = [
        View::Ask,
        View::Pipelines,
        View::Schema,
        View::History,
        View::Dashboards,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::Ask => "Ask",
            View::Pipelines => "Pipelines",
            View::Schema => "Schema",
            View::History => "History",
            View::Dashboards => "Dashboards",
        }
    }

    pub(crate) fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

/// Where keys go in the Ask view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskFocus {
    Question,
    Sql,
    /// The result table, chart, or the suggestions when there is no result yet.
    Result,
}

/// What the Ask view is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    /// The model is writing; `attempt` counts from 1.
    Generating {
        attempt: usize,
        started_ms: u64,
    },
    Running {
        started_ms: u64,
    },
    Done,
    Failed(String),
}

/// One attempt of the assistant as the Ask view lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptLine {
    pub sql: String,
    pub error: Option<String>,
    /// What was fitted to the question before the checks (`assistant::shape`).
    pub fixes: Vec<String>,
}

/// What a finished question brought back.
#[derive(Debug, Clone)]
pub struct AnswerReport {
    pub sql: Option<String>,
    pub failure: Option<String>,
    pub attempts: Vec<AttemptLine>,
    pub result: Option<Arc<QueryResult>>,
    pub generation: Duration,
    /// Why the answer may be wrong though it ran (candidates that disagree, a question that
    /// names nothing in the schema); empty when nothing says so.
    pub unsure: Vec<String>,
}

pub struct AskState {
    pub focus: AskFocus,
    pub question: TextArea<'static>,
    /// Past questions, oldest first; ↑/↓ walk them.
    pub question_history: Vec<String>,
    pub(crate) history_cursor: Option<usize>,
    pub sql: TextArea<'static>,
    /// The SQL box was changed by hand since the last answer.
    pub sql_edited: bool,
    /// The question being answered or last answered.
    pub asked: Option<String>,
    pub phase: Phase,
    pub job: Option<JobId>,
    pub attempts: Vec<AttemptLine>,
    pub result: Option<ResultView>,
    pub chart: Option<SeriesSet>,
    pub chart_kind: ChartKind,
    pub show_chart: bool,
    pub suggestions: Vec<Suggestion>,
    pub selected_suggestion: usize,
    /// Earlier exchanges a follow-up refines; cleared with `clear_conversation`.
    pub conversation: Conversation,
    /// The export path being typed, when exporting.
    pub export: Option<TextArea<'static>>,
    pub generation_time: Option<Duration>,
    /// The SQL of the query running now, as sent (the box may be edited meanwhile).
    pub running_sql: Option<String>,
    /// Why the model's previous attempt was refused, while it writes the next.
    pub retry_reason: Option<String>,
    /// Why the last answer may be wrong though it ran (see `AnswerReport::unsure`).
    pub unsure: Vec<String>,
    /// Names that complete the word at the SQL box's cursor, while they are shown.
    pub completion: Option<Completion>,
    /// The server's function names, for completion (empty until read).
    pub functions: Vec<String>,
    /// The last question asked, kept when its SQL is edited and run (a correction).
    pub last_question: Option<String>,
    /// The SQL whose rows the result shows.
    pub shown_sql: Option<String>,
}

impl AskState {
    /// Replaces the SQL box's text (an answer, a suggestion, a history entry); the completion
    /// list of the old text goes with it.
    pub fn set_sql(&mut self, text: &str) {
        self.sql = text_box(text);
        self.completion = None;
    }

    /// True when the result area lists the suggestions (no result and no error to show), so
    /// that keys act on what is on screen.
    pub fn shows_suggestions(&self) -> bool {
        self.result.is_none() && !matches!(self.phase, Phase::Failed(_))
    }
}

impl Default for AskState {
    fn default() -> Self {
        Self {
            focus: AskFocus::Question,
            question: text_box(""),
            question_history: Vec::new(),
            history_cursor: None,
            sql: text_box(""),
            sql_edited: false,
            asked: None,
            phase: Phase::Idle,
            job: None,
            attempts: Vec::new(),
            result: None,
            chart: None,
            chart_kind: ChartKind::Line,
            show_chart: false,
            suggestions: Vec::new(),
            selected_suggestion: 0,
            conversation: Conversation::default(),
            export: None,
            generation_time: None,
            unsure: Vec::new(),
            running_sql: None,
            retry_reason: None,
            completion: None,
            functions: Vec::new(),
            last_question: None,
            shown_sql: None,
        }
    }
}

/// A pipeline row with the rate history its sparkline draws.
#[derive(Debug, Clone, Default)]
pub struct PipelineRow {
    pub snapshot: PipelineSnapshot,
    pub rates: VecDeque<u64>,
}

impl PipelineRow {
    pub fn rate(&self) -> f64 {
        self.snapshot.status.rows_per_sec.max(0.0)
    }
}

#[derive(Default)]
pub struct PipelinesState {
    pub rows: Vec<PipelineRow>,
    pub selected: usize,
    /// A control sent and not yet answered, shown in the detail pane.
    pub pending: Option<(String, PipelineControl)>,
    /// False when the pipelines shown belong to other processes (read from status files).
    pub controllable: bool,
    /// The `aurora serve` daemon the pipelines run in, when they do (its URL).
    pub daemon: Option<String>,
    /// Why the daemon cannot be read right now.
    pub daemon_error: Option<String>,
    /// The daemon's pending and firing alerts, firing first.
    pub alerts: Vec<crate::alerts::engine::ActiveAlert>,
    /// The pipeline whose dead letters a dry run found passing: the same key again replays
    /// them for real.
    pub replay_offer: Option<String>,
    /// A replay running, for this pipeline.
    pub replaying: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFocus {
    Tables,
    Sample,
}

pub struct SchemaState {
    pub schema: Option<Arc<Schema>>,
    pub error: Option<String>,
    /// Index into `schema.tables` of each listed table (after the filter).
    pub listed: Vec<usize>,
    pub selected: usize,
    pub focus: SchemaFocus,
    pub sample: Option<ResultView>,
    pub sample_job: Option<JobId>,
    pub sample_error: Option<String>,
    /// The `/` filter on the sample's rows (the view's own filter is on the table list).
    pub sample_filter: String,
    /// The dashboard templates that fit the selected table (`database.table`), best first.
    pub fits: Option<(String, Result<Vec<Fit>, String>)>,
    /// The job reading them, and for which table.
    pub fits_job: Option<(JobId, String)>,
    /// A one-key deploy running.
    pub deploying: bool,
}

impl Default for SchemaState {
    fn default() -> Self {
        Self {
            schema: None,
            error: None,
            listed: Vec::new(),
            selected: 0,
            focus: SchemaFocus::Tables,
            sample: None,
            sample_job: None,
            sample_error: None,
            sample_filter: String::new(),
            fits: None,
            fits_job: None,
            deploying: false,
        }
    }
}

#[derive(Default)]
pub struct HistoryState {
    pub history: History,
    /// Indices into `history.entries`, newest first, after the filter.
    pub listed: Vec<usize>,
    pub selected: usize,
}

/// The `/` filter being typed, for the list or table of the view it was started in.
pub struct FilterInput {
    pub view: View,
    pub text: TextArea<'static>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// A one-line message in the status area, until the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub level: Level,
}

/// What the status bar says about the model.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    Ready(String),
    Missing(String),
}

pub struct State {
    pub view: View,
    /// Terminal size, for layouts computed in `update` (page sizes, scrolling).
    pub width: u16,
    pub height: u16,
    /// Unix milliseconds of the last tick; the only clock rendering uses.
    pub now: u64,
    pub ticks: u64,
    pub help: bool,
    pub confirm_quit: bool,
    pub quitting: bool,
    pub theme: Theme,
    pub keymap: Keymap,
    pub notice: Option<Notice>,
    pub server: String,
    pub server_version: String,
    pub model: ModelStatus,
    pub ask: AskState,
    pub pipelines: PipelinesState,
    pub schema: SchemaState,
    pub history: HistoryState,
    pub dashboards: DashboardsState,
    pub filter: Option<FilterInput>,
    /// The filter last applied per view (kept after the prompt closes).
    pub filters: [String; 5],
    /// A database whose tables come first in suggestions (the demo's `demo`).
    pub focus_database: Option<String>,
    next_job: JobId,
}

/// Everything the workspace reacts to.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Paste(String),
    Resize(u16, u16),
    /// Once a second (and more often while something animates), with the wall clock in Unix
    /// milliseconds.
    Tick {
        now: u64,
    },
    Pipelines(Vec<PipelineSnapshot>),
    /// The daemon stopped answering (why), or answers again (`None`).
    DaemonTrouble(Option<String>),
    /// The daemon's pending and firing alerts.
    Alerts(Vec<crate::alerts::engine::ActiveAlert>),
    Job(JobId, JobOutput),
    /// The rows of a table the Schema view asked to see.
    Sample(JobId, Result<Arc<QueryResult>, String>),
    Schema(Result<(Arc<Schema>, Vec<Suggestion>), String>),
    /// The server's function names, for completion in the SQL box.
    Functions(Vec<String>),
    /// The dashboards on offer (name, dashboard), and files that could not be read.
    Dashboards(Vec<(String, Dashboard)>, Vec<String>),
    /// The templates that fit a table, best first (job, `database.table`).
    DashboardFits {
        job: JobId,
        table: String,
        result: Result<Vec<Fit>, String>,
    },
    /// A one-key deploy wrote this dashboard (name, dashboard, file).
    Deployed(Result<Box<(String, Dashboard, PathBuf)>, String>),
    /// A dashboard panel's or variable's query finished.
    DashboardQuery {
        job: JobId,
        sql: String,
        result: Result<Arc<QueryResult>, String>,
    },
    /// An answer kept as an example (where), or why it could not be.
    Kept(Result<String, String>),
    EditorClosed(Result<String, String>),
    PipelineControlled {
        name: String,
        control: PipelineControl,
        result: Result<(), String>,
    },
    Replayed {
        name: String,
        dry_run: bool,
        result: Result<crate::ingest::replay::ReplayReport, String>,
    },
    Exported(Result<PathBuf, String>),
    HistorySaveFailed(String),
    /// SIGTERM, SIGHUP or the input closing: quit without asking.
    Terminate,
}

#[derive(Debug)]
pub enum JobOutput {
    /// A piece of SQL as the model writes it, or `ATTEMPT_SEPARATOR`.
    Token(String),
    Answer(Result<AnswerReport, String>),
    Query(Result<Arc<QueryResult>, String>),
}

/// Work for the job runner; results come back as `Msg`s.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ask {
        job: JobId,
        question: String,
        conversation: Option<Conversation>,
    },
    RunSql {
        job: JobId,
        sql: String,
    },
    /// Stop a generation or query that is no longer wanted.
    Cancel(JobId),
    LoadDashboards,
    FitDashboards {
        job: JobId,
        database: String,
        table: String,
    },
    /// Deploy the best-fitting template on the table and write its file.
    DeployDashboard {
        database: String,
        table: String,
    },
    /// A dashboard panel's or variable's query, with the panel limits.
    RunDashboardQuery {
        job: JobId,
        sql: String,
    },
    LoadSchema,
    SampleTable {
        job: JobId,
        database: String,
        table: String,
    },
    Export {
        path: PathBuf,
    },
    ControlPipeline {
        name: String,
        control: PipelineControl,
    },
    ReplayDeadLetters {
        name: String,
        dry_run: bool,
    },
    SaveHistory,
    OpenEditor(String),
    /// Keep a confirmed question and its SQL as an example (`assistant::examples`).
    KeepExample {
        question: String,
        sql: String,
    },
    Quit,
}

pub(crate) fn text_box(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut area = if lines.is_empty() {
        TextArea::default()
    } else {
        TextArea::new(lines)
    };
    area.set_cursor_line_style(ratatui::style::Style::default());
    area.move_cursor(tui_textarea::CursorMove::Bottom);
    area.move_cursor(tui_textarea::CursorMove::End);
    area
}

pub(crate) fn text_of(area: &TextArea<'_>) -> String {
    area.lines().join("\n")
}

/// Text that is SQL rather than a question, to run as written without the model: it starts
/// with a query keyword and parses as SQL (or has a query's shape). "Show revenue by country"
/// and "with returns too" start like SQL but are not, so they go to the model.
pub fn looks_like_sql(text: &str) -> bool {
    let mut words = text.split_whitespace().map(str::to_ascii_lowercase);
    let first = words.next().unwrap_or_default();
    let keyword = match first.as_str() {
        "select" | "with" | "describe" | "desc" | "explain" | "exists" => true,
        // sqlparser reads `SHOW anything` as a variable; only ClickHouse's own SHOW forms count.
        "show" => matches!(
            words.next().as_deref(),
            Some(
                "tables"
                    | "databases"
                    | "create"
                    | "columns"
                    | "processlist"
                    | "dictionaries"
                    | "grants"
                    | "users"
                    | "settings"
                    | "functions"
            )
        ),
        _ => first.starts_with("select("),
    };
    if !keyword {
        return false;
    }
    let parses =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::ClickHouseDialect {}, text)
            .is_ok_and(|statements| statements.len() == 1);
    // ClickHouse syntax sqlparser does not know (`WITH 1 AS x SELECT`, `LIMIT 1 BY`, `ARRAY
    // JOIN`) still counts when the text has the shape of a query: a FROM, and a SELECT.
    let words: Vec<String> = text
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let has = |word: &str| words.iter().any(|w| w == word);
    parses
        || (matches!(first.as_str(), "select" | "with")
            && has("select")
            && (has("from") || first == "with"))
}

impl State {
    pub fn new(theme: Theme, keymap: Keymap, server: String, server_version: String) -> Self {
        Self {
            view: View::Ask,
            width: 80,
            height: 24,
            now: 0,
            ticks: 0,
            help: false,
            confirm_quit: false,
            quitting: false,
            theme,
            keymap,
            notice: None,
            server,
            server_version,
            model: ModelStatus::Missing("not loaded".into()),
            ask: AskState::default(),
            pipelines: PipelinesState::default(),
            schema: SchemaState::default(),
            history: HistoryState::default(),
            dashboards: DashboardsState::default(),
            filter: None,
            filters: Default::default(),
            focus_database: None,
            next_job: 0,
        }
    }

    pub fn set_history(&mut self, history: History) {
        self.ask.question_history = history
            .entries
            .iter()
            .filter_map(|e| e.question.clone())
            .collect();
        self.history.history = history;
        self.relist_history();
    }

    pub(crate) fn job(&mut self) -> JobId {
        self.next_job += 1;
        self.next_job
    }

    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            level,
        });
    }

    /// True while something on screen moves (spinner), so ticks come faster.
    pub fn animating(&self) -> bool {
        matches!(
            self.ask.phase,
            Phase::Generating { .. } | Phase::Running { .. }
        ) || self.schema.sample_job.is_some()
    }

    /// Pipelines running anywhere (this process or others), for the status bar.
    pub fn active_pipelines(&self) -> usize {
        self.pipelines
            .rows
            .iter()
            .filter(|r| r.snapshot.is_running())
            .count()
    }

    /// Pipelines this process runs, which quitting stops.
    /// Pipelines that stop when the workspace quits: this process's own (not a daemon's,
    /// which keeps running them).
    pub fn running_pipelines(&self) -> usize {
        if self.pipelines.daemon.is_some() {
            return 0;
        }
        self.pipelines
            .rows
            .iter()
            .filter(|r| r.snapshot.controllable && r.snapshot.is_running())
            .count()
    }

    /// True when keys go to a text box rather than to the keymap.
    fn typing(&self) -> bool {
        self.filter.is_some()
            || self.ask.export.is_some()
            || (self.view == View::Ask
                && matches!(self.ask.focus, AskFocus::Question | AskFocus::Sql))
    }
}

/// Applies one message; returns the commands it needs run.
pub fn update(state: &mut State, msg: Msg) -> Vec<Command> {
    match msg {
        Msg::Key(key) => on_key(state, key),
        Msg::Paste(text) => {
            // The SQL box keeps the lines (a `--` comment must end where it ended); the
            // one-line boxes get spaces.
            let multi_line = state.filter.is_none()
                && state.ask.export.is_none()
                && state.view == View::Ask
                && state.ask.focus == AskFocus::Sql;
            let text = if multi_line {
                text.replace("\r\n", "\n")
            } else {
                text.replace(['\r', '\n'], " ")
            };
            if let Some(area) = focused_text_box(state) {
                area.insert_str(text);
            }
            if multi_line {
                state.ask.sql_edited = true;
            }
            if let Some(filter) = &state.filter {
                let (view, text) = (filter.view, text_of(&filter.text));
                apply_filter(state, view, text);
            }
            Vec::new()
        }
        Msg::Resize(w, h) => {
            state.width = w;
            state.height = h;
            keep_selections_visible(state);
            Vec::new()
        }
        Msg::Tick { now } => {
            let previous = std::mem::replace(&mut state.now, now);
            state.ticks += 1;
            sample_rates(state, previous);
            schedule_dashboard(state)
        }
        Msg::Pipelines(snapshots) => {
            on_pipelines(state, snapshots);
            Vec::new()
        }
        Msg::DaemonTrouble(trouble) => {
            on_daemon_trouble(state, trouble);
            Vec::new()
        }
        Msg::Alerts(alerts) => {
            state.pipelines.alerts = alerts;
            Vec::new()
        }
        Msg::Job(job, output) => on_job(state, job, output),
        Msg::Sample(job, result) => {
            on_sample(state, job, result);
            Vec::new()
        }
        Msg::Schema(Ok((schema, mut suggestions))) => {
            if let Some(db) = &state.focus_database {
                let prefix = format!("{db}.");
                // Stable: the order within each group stays the suggester's.
                suggestions.sort_by_key(|s| !s.table.starts_with(&prefix));
            }
            state.schema.schema = Some(schema);
            state.schema.error = None;
            state.ask.suggestions = suggestions;
            relist_tables(state);
            if state.view == View::Schema {
                request_fits(state)
            } else {
                Vec::new()
            }
        }
        Msg::Schema(Err(e)) => {
            state.schema.error = Some(e);
            Vec::new()
        }
        Msg::Functions(names) => {
            state.ask.functions = names;
            Vec::new()
        }
        Msg::Dashboards(entries, problems) => {
            state.dashboards.entries = entries;
            state.dashboards.loaded = true;
            if !problems.is_empty() {
                state.notify(Level::Warning, problems.join("; "));
            }
            state.dashboards.problems = problems;
            let len = state.dashboards.entries.len();
            state.dashboards.selected = state.dashboards.selected.min(len.saturating_sub(1));
            let wanted = state.dashboards.open_at_start.take();
            match wanted.and_then(|w| state.dashboards.entries.iter().position(|(n, _)| *n == w)) {
                Some(i) => {
                    state.dashboards.selected = i;
                    let mut commands = show(state, View::Dashboards);
                    commands.extend(dashboards_action(state, Action::Select));
                    commands
                }
                None => Vec::new(),
            }
        }
        Msg::DashboardFits { job, table, result } => {
            if state
                .schema
                .fits_job
                .as_ref()
                .is_some_and(|(j, _)| *j == job)
            {
                state.schema.fits_job = None;
                state.schema.fits = Some((table, result));
            }
            Vec::new()
        }
        Msg::Deployed(result) => {
            state.schema.deploying = false;
            match result {
                Ok(deployed) => {
                    let (name, dashboard, path) = *deployed;
                    state.notify(
                        Level::Info,
                        format!("deployed: {} (edit it freely)", path.display()),
                    );
                    let mut commands: Vec<Command> = match &mut state.dashboards.open {
                        Some(open) => open
                            .cancel_all()
                            .into_iter()
                            .map(dashboard_command)
                            .collect(),
                        None => Vec::new(),
                    };
                    let entries = &mut state.dashboards.entries;
                    entries.retain(|(n, _)| *n != name);
                    entries.push((name.clone(), dashboard.clone()));
                    state.dashboards.selected = entries.len() - 1;
                    let caps = crate::warehouse::Capabilities::from_version(&state.server_version);
                    state.dashboards.open = Some(super::views::dashboards::OpenDashboard::new(
                        name, dashboard, caps,
                    ));
                    commands.extend(show(state, View::Dashboards));
                    commands
                }
                Err(e) => {
                    state.notify(Level::Error, format!("cannot deploy: {e}"));
                    Vec::new()
                }
            }
        }
        Msg::DashboardQuery { job, sql, result } => {
            let now = state.now;
            if let Some(open) = &mut state.dashboards.open {
                open.on_result(job, Some(sql), result, now);
            }
            // A variable's choices may let waiting panels start.
            schedule_dashboard(state)
        }
        Msg::Kept(Ok(_)) => {
            state.notify(
                Level::Info,
                "kept as an example: later questions on these tables see it",
            );
            Vec::new()
        }
        Msg::Kept(Err(e)) => {
            state.notify(Level::Error, e);
            Vec::new()
        }
        Msg::EditorClosed(Ok(sql)) => {
            state.ask.set_sql(sql.trim_end());
            state.ask.sql_edited = true;
            state.ask.focus = AskFocus::Sql;
            state.notify(Level::Info, "SQL from the editor; Enter runs it");
            Vec::new()
        }
        Msg::EditorClosed(Err(e)) => {
            state.notify(Level::Error, e);
            Vec::new()
        }
        Msg::PipelineControlled {
            name,
            control,
            result,
        } => {
            if state
                .pipelines
                .pending
                .as_ref()
                .is_some_and(|(n, _)| *n == name)
            {
                state.pipelines.pending = None;
            }
            let done = match control {
                PipelineControl::Pause => "paused",
                PipelineControl::Resume => "resumed",
                PipelineControl::Restart => "restarted",
            };
            match result {
                Ok(()) => state.notify(Level::Info, format!("pipeline `{name}`: {done}")),
                Err(e) => state.notify(Level::Error, format!("pipeline `{name}`: {e}")),
            }
            Vec::new()
        }
        Msg::Replayed {
            name,
            dry_run,
            result,
        } => {
            on_replayed(state, name, dry_run, result);
            Vec::new()
        }
        Msg::Exported(Ok(path)) => {
            state.notify(Level::Info, format!("exported to {}", path.display()));
            Vec::new()
        }
        Msg::Exported(Err(e)) | Msg::HistorySaveFailed(e) => {
            state.notify(Level::Error, e);
            Vec::new()
        }
        Msg::Terminate => {
            state.quitting = true;
            vec![Command::Quit]
        }
    }
}

fn focused_text_box(state: &mut State) -> Option<&mut TextArea<'static>> {
    if let Some(filter) = &mut state.filter {
        return Some(&mut filter.text);
    }
    if let Some(export) = &mut state.ask.export {
        return Some(export);
    }
    if state.view != View::Ask {
        return None;
    }
    match state.ask.focus {
        AskFocus::Question => Some(&mut state.ask.question),
        AskFocus::Sql => Some(&mut state.ask.sql),
        AskFocus::Result => None,
    }
}

fn on_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    if state.confirm_quit {
        return match key.code {
            KeyCode::Char('y' | 'Y' | 'q') | KeyCode::Enter => quit(state),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => quit(state),
            _ => {
                state.confirm_quit = false;
                Vec::new()
            }
        };
    }
    if state.help {
        // Any key only closes the help: `q` pressed to close it must not quit.
        state.help = false;
        return Vec::new();
    }
    if let Some(commands) = on_completion_key(state, &key) {
        return commands;
    }
    if state.typing() {
        if let Some(action) = state.keymap.action_while_typing(&key) {
            return apply(state, action);
        }
        return on_typing_key(state, key);
    }
    match state.keymap.action(&key) {
        Some(action) => apply(state, action),
        None => Vec::new(),
    }
}

/// A key in a text box: Enter submits, ↑/↓ walk the question history, the rest edits.
fn on_typing_key(state: &mut State, key: KeyEvent) -> Vec<Command> {
    let alt_enter = key.code == KeyCode::Enter && key.modifiers.contains(KeyModifiers::ALT);
    if let Some(filter) = &mut state.filter {
        if key.code == KeyCode::Enter {
            state.filter = None;
            return Vec::new();
        }
        filter.text.input(key);
        let text = text_of(&filter.text);
        let view = filter.view;
        apply_filter(state, view, text);
        return Vec::new();
    }
    if let Some(export) = &mut state.ask.export {
        if key.code == KeyCode::Enter {
            let path = text_of(export).trim().to_string();
            state.ask.export = None;
            if path.is_empty() {
                return Vec::new();
            }
            return vec![Command::Export {
                path: PathBuf::from(path),
            }];
        }
        export.input(key);
        return Vec::new();
    }
    match state.ask.focus {
        AskFocus::Question => match key.code {
            KeyCode::Enter => submit_question(state),
            KeyCode::Up => {
                walk_history(state, -1);
                Vec::new()
            }
            KeyCode::Down => {
                walk_history(state, 1);
                Vec::new()
            }
            _ => {
                state.ask.question.input(key);
                state.ask.history_cursor = None;
                Vec::new()
            }
        },
        AskFocus::Sql if key.code == KeyCode::Enter && !alt_enter => run_sql_box(state),
        AskFocus::Sql => {
            let key = if alt_enter {
                KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)
            } else {
                key
            };
            let typed = matches!(key.code, KeyCode::Char(_) | KeyCode::Backspace);
            if state.ask.sql.input(key) {
                state.ask.sql_edited = true;
            }
            if typed {
                refresh_completion(state);
            } else {
                state.ask.completion = None;
            }
            Vec::new()
        }
        AskFocus::Result => Vec::new(),
    }
}

/// Tab takes the chosen name, ↑/↓ choose, Esc closes the list; other keys go on to the box
/// (and the list follows what is typed).
fn on_completion_key(state: &mut State, key: &KeyEvent) -> Option<Vec<Command>> {
    let open = state.view == View::Ask
        && state.ask.focus == AskFocus::Sql
        && state.filter.is_none()
        && state.ask.export.is_none();
    if !open {
        state.ask.completion = None;
        return None;
    }
    let completion = state.ask.completion.as_mut()?;
    match key.code {
        KeyCode::Tab => {
            let completion = state.ask.completion.take()?;
            let item = completion.chosen()?;
            for _ in 0..completion.typed_chars {
                state.ask.sql.delete_char();
            }
            state.ask.sql.insert_str(&item.text);
            state.ask.sql_edited = true;
        }
        KeyCode::Down => completion.step(1),
        KeyCode::Up => completion.step(-1),
        KeyCode::Esc => state.ask.completion = None,
        _ => return None,
    }
    Some(Vec::new())
}

/// The names that complete the word at the SQL box's cursor, from the schema and the server's
/// functions.
fn refresh_completion(state: &mut State) {
    let Some(schema) = state.schema.schema.clone() else {
        state.ask.completion = None;
        return;
    };
    let (row, col) = state.ask.sql.cursor();
    let lines = state.ask.sql.lines();
    let mut cursor = 0;
    for line in &lines[..row.min(lines.len())] {
        cursor += line.len() + 1;
    }
    if let Some(line) = lines.get(row) {
        cursor += line.chars().take(col).map(char::len_utf8).sum::<usize>();
    }
    let text = lines.join("\n");
    state.ask.completion = complete(&schema, &state.ask.functions, &text, cursor);
}

fn walk_history(state: &mut State, step: isize) {
    let ask = &mut state.ask;
    let len = ask.question_history.len();
    if len == 0 {
        return;
    }
    let next = match (ask.history_cursor, step < 0) {
        (None, true) => Some(len - 1),
        (None, false) => None,
        (Some(0), true) => Some(0),
        (Some(i), true) => Some(i - 1),
        (Some(i), false) if i + 1 < len => Some(i + 1),
        (Some(_), false) => None,
    };
    ask.history_cursor = next;
    let text = next.map_or("", |i| ask.question_history[i].as_str());
    ask.question = text_box(text);
}

fn quit(state: &mut State) -> Vec<Command> {
    state.confirm_quit = false;
    state.quitting = true;
    vec![Command::Quit]
}

/// Applies a keymap action in the current view.
pub fn apply(state: &mut State, action: Action) -> Vec<Command> {
    match action {
        Action::Quit => {
            if state.running_pipelines() > 0 {
                state.confirm_quit = true;
                Vec::new()
            } else {
                quit(state)
            }
        }
        Action::ToggleHelp => {
            state.help = !state.help;
            Vec::new()
        }
        Action::NextView | Action::PreviousView => {
            let step = if action == Action::NextView {
                1
            } else {
                View::ALL.len() - 1
            };
            let next = View::ALL[(state.view.index() + step) % View::ALL.len()];
            show(state, next)
        }
        Action::ShowAsk => show(state, View::Ask),
        Action::ShowPipelines => show(state, View::Pipelines),
        Action::ShowSchema => show(state, View::Schema),
        Action::ShowHistory => show(state, View::History),
        Action::ShowDashboards => show(state, View::Dashboards),
        Action::StartFilter if state.view == View::Pipelines => {
            state.notify(Level::Info, "the pipelines list has no filter");
            Vec::new()
        }
        Action::StartFilter if state.view == View::Dashboards => {
            state.notify(Level::Info, "the dashboards list has no filter");
            Vec::new()
        }
        Action::StartFilter => {
            let view = state.view;
            let current = if view == View::Schema && state.schema.focus == SchemaFocus::Sample {
                &state.schema.sample_filter
            } else {
                &state.filters[view.index()]
            };
            let text = text_box(current);
            state.filter = Some(FilterInput { view, text });
            Vec::new()
        }
        Action::Back => back(state),
        Action::ClearConversation => {
            state.ask.conversation.clear();
            state.notify(
                Level::Info,
                "conversation cleared: the next question starts afresh",
            );
            Vec::new()
        }
        Action::OpenEditor if state.view == View::Ask => {
            vec![Command::OpenEditor(text_of(&state.ask.sql))]
        }
        Action::FocusQuestion => {
            state.view = View::Ask;
            state.ask.focus = AskFocus::Question;
            Vec::new()
        }
        _ => match state.view {
            View::Ask => ask_action(state, action),
            View::Pipelines => pipelines_action(state, action),
            View::Schema => schema_action(state, action),
            View::History => history_action(state, action),
            View::Dashboards => dashboards_action(state, action),
        },
    }
}

fn show(state: &mut State, view: View) -> Vec<Command> {
    let mut commands = Vec::new();
    if state.view == View::Dashboards && view != View::Dashboards {
        // Leaving the view stops its queries; the panels refresh again on return.
        if let Some(open) = &mut state.dashboards.open {
            commands.extend(open.cancel_all().into_iter().map(dashboard_command));
        }
    }
    state.view = view;
    state.filter = None;
    if view == View::Schema && state.schema.schema.is_none() {
        commands.push(Command::LoadSchema);
    }
    if view == View::Schema {
        commands.extend(request_fits(state));
    }
    if view == View::Dashboards {
        if let Some(first) = state.dashboards.open_on_first_visit.take() {
            state.dashboards.open_at_start = Some(first);
        }
        if !state.dashboards.loaded {
            commands.push(Command::LoadDashboards);
        }
        if state.dashboards.loaded && state.dashboards.open.is_none() {
            let wanted = state.dashboards.open_at_start.take();
            if let Some(i) =
                wanted.and_then(|w| state.dashboards.entries.iter().position(|(n, _)| *n == w))
            {
                state.dashboards.selected = i;
                commands.extend(dashboards_action(state, Action::Select));
                return commands;
            }
        }
        commands.extend(schedule_dashboard(state));
    }
    commands
}

fn back(state: &mut State) -> Vec<Command> {
    if state.filter.is_some() {
        state.filter = None;
        return Vec::new();
    }
    if state.ask.export.is_some() {
        state.ask.export = None;
        return Vec::new();
    }
    // A running question or query is what Esc stops first, whatever else is on screen.
    if state.view == View::Ask {
        let cancelled = cancel_current(state);
        if !cancelled.is_empty() {
            state.ask.phase = Phase::Failed("cancelled".into());
            state.ask.running_sql = None;
            state.ask.focus = AskFocus::Result;
            return cancelled;
        }
    }
    let sample_filtered = state.view == View::Schema
        && state.schema.focus == SchemaFocus::Sample
        && !state.schema.sample_filter.is_empty();
    if sample_filtered {
        apply_filter(state, View::Schema, String::new());
        return Vec::new();
    }
    let index = state.view.index();
    if !state.filters[index].is_empty() {
        state.filters[index].clear();
        if let (View::Ask, Some(result)) = (state.view, &mut state.ask.result) {
            result.set_filter("");
        }
        relist_tables(state);
        state.relist_history();
        return Vec::new();
    }
    match state.view {
        View::Ask => {
            state.ask.focus = AskFocus::Result;
            Vec::new()
        }
        View::Schema => {
            state.schema.focus = SchemaFocus::Tables;
            Vec::new()
        }
        View::Dashboards => dashboards_back(state),
        _ => Vec::new(),
    }
}

fn apply_filter(state: &mut State, view: View, text: String) {
    match view {
        View::Ask => {
            if let Some(result) = &mut state.ask.result {
                result.set_filter(&text);
            }
        }
        // The sample's rows, or the list of tables: never both with one text.
        View::Schema if state.schema.focus == SchemaFocus::Sample => {
            if let Some(sample) = &mut state.schema.sample {
                sample.set_filter(&text);
            }
            state.schema.sample_filter = text;
            return;
        }
        View::Schema | View::Pipelines | View::History | View::Dashboards => {}
    }
    state.filters[view.index()] = text;
    relist_tables(state);
    state.relist_history();
}

pub(crate) fn move_in_table(view: &mut ResultView, action: Action, area: Size) {
    view.set_viewport(area);
    let viewport = view.body_rows(area.height);
    match action {
        Action::MoveDown => view.move_down(1),
        Action::MoveUp => view.move_up(1),
        Action::PageDown => view.page_down(viewport),
        Action::PageUp => view.page_up(viewport),
        Action::GoToTop => view.top(),
        Action::GoToBottom => view.bottom(),
        Action::MoveLeft => view.scroll_left(),
        Action::MoveRight => view.scroll_right(),
        _ => return,
    }
    view.ensure_visible(viewport);
}

pub(crate) fn keep_selections_visible(state: &mut State) {
    let area = layout::result_inner(state);
    if let Some(view) = &mut state.ask.result {
        view.set_viewport(area);
        view.ensure_visible(view.body_rows(area.height));
    }
    let area = layout::sample_inner(state);
    if let Some(view) = &mut state.schema.sample {
        view.set_viewport(area);
        view.ensure_visible(view.body_rows(area.height));
    }
}

impl State {
    /// The table selected in the Schema view.
    pub fn selected_table(&self) -> Option<&crate::warehouse::schema::TableInfo> {
        let schema = self.schema.schema.as_ref()?;
        let index = *self.schema.listed.get(self.schema.selected)?;
        schema.tables.get(index)
    }

    /// The suggestions for the table selected in the Schema view.
    pub fn table_suggestions(&self) -> Vec<&Suggestion> {
        let Some(table) = self.selected_table() else {
            return Vec::new();
        };
        let name = table.qualified_name();
        self.ask
            .suggestions
            .iter()
            .filter(|s| s.table == name)
            .collect()
    }

    pub(crate) fn relist_history(&mut self) {
        let filter = self.filters[View::History.index()].to_lowercase();
        let entries = &self.history.history.entries;
        self.history.listed = (0..entries.len())
            .rev()
            .filter(|&i| {
                let e = &entries[i];
                filter.is_empty()
                    || e.sql.to_lowercase().contains(&filter)
                    || e.question
                        .as_deref()
                        .is_some_and(|q| q.to_lowercase().contains(&filter))
            })
            .collect();
        self.history.selected = self
            .history
            .selected
            .min(self.history.listed.len().saturating_sub(1));
    }
}
