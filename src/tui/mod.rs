//! The full-screen workspace (ratatui + crossterm). One task owns the `State`; key presses,
//! ticks, job results and pipeline snapshots arrive as messages on one channel, `app::update`
//! turns them into state changes and commands, `jobs` runs the commands in the background, and
//! `ui::draw` draws the state, only when something changed and at most ~30 times a second.
//! The terminal is restored on every way out: quit, error, panic, SIGTERM and SIGHUP.

pub mod action;
pub mod app;
pub mod completion;
#[cfg(test)]
pub mod fixtures;
pub mod history;
pub mod jobs;
pub mod keymap;
pub mod layout;
#[cfg(test)]
mod tests;
pub mod theme;
pub mod ui;
pub mod views;
pub mod widgets;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ratatui::crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use crate::assistant::ask::AskOptions;
use crate::config::Config;
use crate::ingest::supervisor::{external_snapshots, Supervisor};
use crate::warehouse::Warehouse;

use app::{Command, Level, ModelStatus, Msg, State};
use history::History;
use jobs::Jobs;
use keymap::Keymap;
use theme::{ColorDepth, Theme};

/// At most this many frames a second.
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// Ticks while something animates (spinner, elapsed time), and otherwise.
const FAST_TICK: Duration = Duration::from_millis(100);
const SLOW_TICK: Duration = Duration::from_secs(1);

/// What the workspace runs against.
pub struct TuiContext {
    pub warehouse: Arc<Warehouse>,
    pub config: Config,
    /// Shown in the status bar, e.g. `private 127.0.0.1:38211` or the server's URL.
    pub server_label: String,
    /// Where the pipelines the Pipelines view shows run.
    pub pipelines: PipelineHost,
    /// Tables of this database come first in the suggestions.
    pub focus_database: Option<String>,
    /// Where the user's dashboards are.
    pub dashboards: crate::dashboards::library::Dirs,
    /// Dashboards offered before the user's (the demo's).
    pub extra_dashboards: Vec<(String, crate::dashboards::Dashboard)>,
    /// A dashboard to open at start (`aurora dashboard open NAME`).
    pub open_dashboard: Option<String>,
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Puts the terminal back as it was. Safe to call more than once.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableBracketedPaste,
        LeaveAlternateScreen
    );
    let _ = execute!(std::io::stdout(), ratatui::crossterm::cursor::Show);
}

/// Restores the terminal when dropped, so an early return or error cannot leave it raw.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Set by the panic hook: the terminal was restored, so the loop must stop drawing and end.
static PANICKED: AtomicBool = AtomicBool::new(false);

fn init_terminal() -> anyhow::Result<(DefaultTerminal, TerminalGuard)> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, Ordering::Relaxed);
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode().context("cannot put the terminal in raw mode")?;
    let guard = TerminalGuard;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste
    )
    .context("cannot switch to the alternate screen")?;
    let terminal =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))
            .context("cannot start drawing on the terminal")?;
    Ok((terminal, guard))
}

/// Hands the terminal's input to `$EDITOR` and back: the reader stops polling when asked,
/// and says so, so that none of the editor's keys (or the terminal's answers to its queries)
/// reach the workspace.
#[derive(Default)]
struct InputGate {
    pause_requested: AtomicBool,
    reader_idle: AtomicBool,
}

impl InputGate {
    /// Asks the reader to stop and waits until it has (at most one poll interval).
    fn pause(&self) {
        self.pause_requested.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.reader_idle.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn resume(&self) {
        self.pause_requested.store(false, Ordering::SeqCst);
    }
}

/// Reads terminal input on its own thread until `stop`; pauses through `gate`.
fn spawn_input(tx: UnboundedSender<Msg>, gate: Arc<InputGate>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if gate.pause_requested.load(Ordering::SeqCst) {
                gate.reader_idle.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            gate.reader_idle.store(false, Ordering::SeqCst);
            match event::poll(Duration::from_millis(100)) {
                Ok(false) => continue,
                Ok(true) => {}
                Err(_) => {
                    let _ = tx.send(Msg::Terminate);
                    return;
                }
            }
            let msg = match event::read() {
                Ok(Event::Key(key)) if key.kind == event::KeyEventKind::Press => Msg::Key(key),
                Ok(Event::Paste(text)) => Msg::Paste(text),
                Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                Ok(_) => continue,
                Err(_) => Msg::Terminate,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
}

fn spawn_signals(tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let signal = crate::shutdown::interrupted().await;
        tracing::info!("{signal}: leaving the workspace");
        let _ = tx.send(Msg::Terminate);
    });
}

/// Where the workspace's pipelines run, which decides how it reads and steers them.
#[derive(Clone)]
pub enum PipelineHost {
    /// In this process (the demo's): the supervisor's own snapshots and controls.
    Here(Arc<Supervisor>),
    /// In an `aurora serve` daemon: its control API, polled once a second.
    Daemon(crate::serve::client::DaemonClient),
    /// In `aurora pipeline run` processes: the status files they write in this state
    /// directory, read only.
    Files(PathBuf),
}

/// Forwards pipeline snapshots: the supervisor's as they change, the daemon's or other
/// processes' status files once a second.
fn spawn_pipelines(tx: UnboundedSender<Msg>, host: PipelineHost) {
    tokio::spawn(async move {
        match host {
            PipelineHost::Here(supervisor) => {
                let mut changes = supervisor.subscribe();
                loop {
                    let snapshots = changes.borrow_and_update().clone();
                    if tx.send(Msg::Pipelines(snapshots)).is_err() {
                        return;
                    }
                    // At most once every 250 ms, however often batches land.
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            }
            PipelineHost::Daemon(daemon) => {
                let mut trouble: Option<String> = None;
                loop {
                    let now = match daemon.pipelines().await {
                        Ok(snapshots) => {
                            if tx.send(Msg::Pipelines(snapshots)).is_err() {
                                return;
                            }
                            None
                        }
                        Err(e) => Some(e.to_string()),
                    };
                    if let Ok(alerts) = daemon.alerts().await {
                        if tx.send(Msg::Alerts(alerts)).is_err() {
                            return;
                        }
                    }
                    // Said once when it starts and once when it ends, not every second.
                    if now != trouble {
                        trouble = now.clone();
                        if tx.send(Msg::DaemonTrouble(now)).is_err() {
                            return;
                        }
                    }
                    tokio::time::sleep(SLOW_TICK).await;
                }
            }
            PipelineHost::Files(state_dir) => loop {
                let dir = state_dir.clone();
                let snapshots = tokio::task::spawn_blocking(move || external_snapshots(&dir))
                    .await
                    .unwrap_or_default();
                if tx.send(Msg::Pipelines(snapshots)).is_err() {
                    return;
                }
                tokio::time::sleep(SLOW_TICK).await;
            },
        }
    });
}

/// Where frame timings go when `AURORA_FRAME_LOG` names a file (for `bench/tui`).
struct FrameLog {
    path: Option<PathBuf>,
    frames_us: Vec<u32>,
    first_written: bool,
}

impl FrameLog {
    fn from_env() -> Self {
        Self {
            path: std::env::var_os("AURORA_FRAME_LOG").map(PathBuf::from),
            frames_us: Vec::new(),
            first_written: false,
        }
    }

    fn frame(&mut self, took: Duration) {
        let Some(path) = &self.path else {
            return;
        };
        if !self.first_written {
            self.first_written = true;
            let since_start = crate::telemetry::since_process_start();
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(f, "first_frame_ms {}", since_start.as_millis());
            }
        }
        self.frames_us
            .push(took.as_micros().min(u128::from(u32::MAX)) as u32);
    }

    fn finish(&self) {
        let Some(path) = &self.path else {
            return;
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            for us in &self.frames_us {
                let _ = writeln!(f, "frame_us {us}");
            }
            let _ = writeln!(
                f,
                "peak_rss_kib {}",
                crate::telemetry::peak_rss_kib().unwrap_or(0)
            );
            let _ = writeln!(f, "rss_kib {}", crate::telemetry::rss_kib().unwrap_or(0));
        }
    }
}

/// Builds the state the workspace opens with: theme, keymap, history and the problems found
/// in them (shown on the notice line, never only logged), and where to save the history.
pub fn initial_state(
    config: &Config,
    server: String,
    version: String,
) -> (State, Vec<String>, Option<PathBuf>) {
    let mut problems = Vec::new();
    let (theme, theme_error) = Theme::load(&config.ui.theme, ColorDepth::detect());
    if let Some(e) = theme_error {
        problems.push(e.to_string());
    }
    let (keymap, keymap_problems) = Keymap::new(&config.ui.keymap);
    problems.extend(keymap_problems);
    let mut state = State::new(theme, keymap, server, version);
    // A history file that cannot be read is left alone: nothing is saved over it.
    let history_path = History::default_path().and_then(|path| match History::load(&path) {
        Ok(history) => {
            state.set_history(history);
            Some(path)
        }
        Err(e) => {
            problems.push(format!("{e}; this session's history will not be saved"));
            None
        }
    });
    (state, problems, history_path)
}

/// Runs the workspace until the user quits. The terminal is restored on every way out.
pub async fn run(ctx: TuiContext) -> anyhow::Result<()> {
    let version = ctx.warehouse.capabilities().version_text.clone();
    let (mut state, problems, history_path) =
        initial_state(&ctx.config, ctx.server_label.clone(), version);
    state.focus_database = ctx.focus_database.clone();
    state.dashboards.open_at_start = ctx.open_dashboard.clone();
    if let PipelineHost::Daemon(daemon) = &ctx.pipelines {
        state.pipelines.daemon = Some(daemon.url().to_string());
    }
    // The demo's first dashboard opens when its view is first shown.
    if ctx.open_dashboard.is_none() {
        state.dashboards.open_on_first_visit = ctx.extra_dashboards.first().map(|(n, _)| n.clone());
    }
    if !problems.is_empty() {
        state.notify(Level::Error, problems.join("; "));
    }
    let (tx, mut rx) = unbounded_channel::<Msg>();

    let assistant = match crate::assistant::backend_for(&ctx.config.assistant, None, None) {
        Ok(backend) => {
            let assistant =
                crate::assistant::configured(backend, ctx.warehouse.clone(), &ctx.config.assistant)
                    .with_history(crate::assistant::examples::load_default());
            state.model = ModelStatus::Ready(assistant.model_id());
            Ok(Arc::new(assistant))
        }
        Err(e) => {
            let why = e.to_string();
            state.model = ModelStatus::Missing("none (aurora model pull)".into());
            Err(why)
        }
    };
    let ask_options = AskOptions {
        max_attempts: ctx.config.assistant.max_attempts.max(1) as usize,
        candidates: ctx.config.assistant.candidates.max(1) as usize,
        max_result_rows: ctx.config.clickhouse.max_result_rows,
        max_execution_time: ctx.config.clickhouse.query_timeout,
        ..AskOptions::default()
    };
    let mut jobs = Jobs::new(
        ctx.warehouse.clone(),
        assistant,
        ctx.pipelines.clone(),
        jobs::query_options(&ctx.config),
        ask_options,
        history_path,
        tx.clone(),
    );
    jobs.warm_up();

    // Log lines must not land on the screen: to the log file, else nowhere.
    let logged = crate::telemetry::log_file_path()
        .ok_or_else(|| "no data directory".to_string())
        .and_then(|path| {
            crate::telemetry::log_to_file(&path).map_err(|e| format!("{}: {e}", path.display()))
        });
    if let Err(e) = logged {
        let _ = crate::telemetry::log_to_file(std::path::Path::new("/dev/null"));
        state.notify(Level::Warning, format!("no log this session ({e})"));
    }
    let (mut terminal, guard) = init_terminal()?;
    let gate = Arc::new(InputGate::default());
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(tx.clone(), gate.clone(), stop.clone());
    spawn_signals(tx.clone());
    spawn_pipelines(tx.clone(), ctx.pipelines.clone());
    jobs.load_schema();
    if ctx.open_dashboard.is_some() {
        jobs.load_dashboards(ctx.dashboards.clone(), ctx.extra_dashboards.clone());
    }

    let mut frames = FrameLog::from_env();
    let outcome = event_loop(
        &mut state,
        &mut terminal,
        &mut jobs,
        &mut rx,
        &tx,
        &gate,
        &mut frames,
        &DashboardSources {
            dirs: ctx.dashboards.clone(),
            extra: ctx.extra_dashboards.clone(),
        },
    )
    .await;
    // Every way out of the loop, errors included, ends here.
    stop.store(true, Ordering::Relaxed);
    jobs.cancel_all();
    frames.finish();
    drop(terminal);
    drop(guard);
    crate::telemetry::log_to_stderr();
    outcome
}

/// Where the Dashboards view's list comes from.
struct DashboardSources {
    dirs: crate::dashboards::library::Dirs,
    extra: Vec<(String, crate::dashboards::Dashboard)>,
}

#[allow(clippy::too_many_arguments)]
async fn event_loop(
    state: &mut State,
    terminal: &mut DefaultTerminal,
    jobs: &mut Jobs,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Msg>,
    tx: &UnboundedSender<Msg>,
    gate: &InputGate,
    frames: &mut FrameLog,
    sources: &DashboardSources,
) -> anyhow::Result<()> {
    let size = terminal.size().context("cannot read the terminal size")?;
    app::update(state, Msg::Resize(size.width, size.height));
    app::update(state, Msg::Tick { now: unix_millis() });

    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut next_tick = Instant::now();
    loop {
        if PANICKED.load(Ordering::Relaxed) {
            anyhow::bail!(
                "a background task of the workspace failed; its message is above and in the log"
            );
        }
        if dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME_INTERVAL) {
            let started = Instant::now();
            terminal
                .draw(|frame| ui::draw(frame, state))
                .context("cannot draw on the terminal")?;
            frames.frame(started.elapsed());
            last_draw = Some(Instant::now());
            dirty = false;
        }
        let tick_every = if state.animating() {
            FAST_TICK
        } else {
            SLOW_TICK
        };
        let wake = if dirty {
            // Something changed but the frame budget is spent: draw when it allows.
            last_draw.map_or(Instant::now(), |t| t + FRAME_INTERVAL)
        } else {
            next_tick
        };
        let first = tokio::select! {
            msg = rx.recv() => msg,
            _ = tokio::time::sleep_until(wake.into()) => None,
        };
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + tick_every;
            // A tick starts the dashboard panels that are due.
            for command in app::update(state, Msg::Tick { now: unix_millis() }) {
                run_command(jobs, command, sources);
            }
            dirty = true;
        }
        // Everything already waiting is applied before the next frame.
        let mut batch: Vec<Msg> = first.into_iter().collect();
        while let Ok(msg) = rx.try_recv() {
            batch.push(msg);
        }
        for msg in batch {
            dirty = true;
            for command in app::update(state, msg) {
                match command {
                    Command::Quit => {}
                    Command::OpenEditor(sql) => {
                        gate.pause();
                        let edited = edit_in_editor(terminal, &sql);
                        gate.resume();
                        terminal.clear().ok();
                        let _ = tx.send(Msg::EditorClosed(edited));
                    }
                    Command::Export { path } => {
                        let result = state.ask.result.as_ref().map(|v| v.result().clone());
                        jobs.export(result, path);
                    }
                    Command::SaveHistory => jobs.save_history(state.history.history.clone()),
                    other => run_command(jobs, other, sources),
                }
            }
        }
        if state.quitting {
            return Ok(());
        }
    }
}

fn run_command(jobs: &mut Jobs, command: Command, ctx: &DashboardSources) {
    match command {
        Command::LoadDashboards => jobs.load_dashboards(ctx.dirs.clone(), ctx.extra.clone()),
        Command::RunDashboardQuery { job, sql } => jobs.run_dashboard_query(job, sql),
        Command::FitDashboards {
            job,
            database,
            table,
        } => jobs.fit_dashboards(job, database, table, ctx.dirs.clone()),
        Command::DeployDashboard { database, table } => {
            jobs.deploy_dashboard(database, table, ctx.dirs.clone())
        }
        Command::Ask {
            job,
            question,
            conversation,
        } => jobs.ask(job, question, conversation),
        Command::RunSql { job, sql } => jobs.run_sql(job, sql, false),
        Command::Cancel(job) => jobs.cancel(job),
        Command::LoadSchema => jobs.load_schema(),
        Command::SampleTable {
            job,
            database,
            table,
        } => jobs.sample_table(job, &database, &table),
        Command::ControlPipeline { name, control } => jobs.control(name, control),
        Command::ReplayDeadLetters { name, dry_run } => jobs.replay(name, dry_run),
        Command::KeepExample { question, sql } => jobs.keep_example(question, sql),
        Command::Export { .. } | Command::SaveHistory | Command::OpenEditor(_) | Command::Quit => {}
    }
}

/// Hands the terminal to `$VISUAL`/`$EDITOR` (else `vi`) on a temporary file holding `sql`,
/// and returns the file's text when the editor exits successfully.
fn edit_in_editor(terminal: &mut DefaultTerminal, sql: &str) -> Result<String, String> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    // A new file nobody else can have prepared (no symlink to follow): `create_new`, with a
    // name that is not guessable ahead of time.
    let path = std::env::temp_dir().join(format!("aurora-{}.sql", uuid::Uuid::new_v4()));
    {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        file.write_all(sql.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    restore_terminal();
    let mut words = editor.split_whitespace();
    let program = words.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(words)
        .arg(&path)
        .status();
    let _ = enable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste
    );
    let _ = terminal.clear();
    let edited = match status {
        Ok(s) if s.success() => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Ok(s) => Err(format!("`{editor}` exited with {s}; the SQL is unchanged")),
        Err(e) => Err(format!(
            "cannot start the editor `{editor}` ({e}); set $EDITOR to one that is installed"
        )),
    };
    let _ = std::fs::remove_file(&path);
    edited
}
