//! The job runner: carries out `Command`s on background tasks and reports back with `Msg`s.
//! Jobs never touch the state. A question or query can be cancelled by its `JobId`; the app
//! drops results of jobs that are no longer current.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::assistant::ask::{AskOptions, Assistant, WARM_TABLES};
use crate::assistant::conversation::Conversation;
use crate::assistant::suggest;
use crate::dashboards;
use crate::dashboards::library::{self, Dirs};
use crate::dashboards::Dashboard;
use crate::ingest::supervisor::PipelineControl;

use super::PipelineHost;
use crate::output::{render, OutputFormat};
use crate::warehouse::{OverflowMode, QueryOptions, QueryResult, Warehouse};

use super::app::{AnswerReport, AttemptLine, JobId, JobOutput, Msg};
use super::history::History;

/// Suggested questions per table in the Ask view's list.
const SUGGESTIONS_PER_TABLE: usize = 3;
/// Rows shown by Enter on a table in the Schema view.
const SAMPLE_ROWS: u64 = 100;

pub struct Jobs {
    pub warehouse: Arc<Warehouse>,
    /// `Err` holds why the assistant is unavailable (no model, bad endpoint).
    pub assistant: Result<Arc<Assistant>, String>,
    pub pipelines: PipelineHost,
    pub query_options: QueryOptions,
    pub ask_options: AskOptions,
    pub tx: UnboundedSender<Msg>,
    /// Cancellation of the jobs still running; each job removes itself when it ends.
    running: Arc<Mutex<HashMap<JobId, CancellationToken>>>,
    /// The latest history to save; one writer task saves them in turn.
    history_tx: Option<watch::Sender<Option<History>>>,
    /// Stops the assistant's warm-up when the first question is asked.
    warm_up: CancellationToken,
}

/// Removes a finished job from `Jobs::running`.
struct JobDone {
    running: Arc<Mutex<HashMap<JobId, CancellationToken>>>,
    job: JobId,
}

impl Drop for JobDone {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.job);
        }
    }
}

impl Jobs {
    pub fn new(
        warehouse: Arc<Warehouse>,
        assistant: Result<Arc<Assistant>, String>,
        pipelines: PipelineHost,
        query_options: QueryOptions,
        ask_options: AskOptions,
        history_path: Option<PathBuf>,
        tx: UnboundedSender<Msg>,
    ) -> Self {
        Self {
            warehouse,
            assistant,
            pipelines,
            query_options,
            ask_options,
            history_tx: history_path.map(|path| spawn_history_writer(path, tx.clone())),
            tx,
            running: Arc::new(Mutex::new(HashMap::new())),
            warm_up: CancellationToken::new(),
        }
    }

    /// Evaluates the prompt prefixes of the largest tables in the background, while the user
    /// looks around, so that the first question on one of them is answered sooner.
    pub fn warm_up(&self) {
        let Ok(assistant) = self.assistant.clone() else {
            return;
        };
        let cancel = self.warm_up.clone();
        tokio::spawn(async move {
            match assistant.warm_up(WARM_TABLES, cancel).await {
                Ok(warmed) => {
                    tracing::debug!("assistant: {} table prompts evaluated ahead", warmed.len())
                }
                Err(e) => tracing::debug!("assistant warm-up stopped: {e}"),
            }
        });
    }

    /// A token to cancel `job`, and a guard the job keeps until it ends.
    fn token(&mut self, job: JobId) -> (CancellationToken, JobDone) {
        let token = CancellationToken::new();
        if let Ok(mut running) = self.running.lock() {
            running.insert(job, token.clone());
        }
        let done = JobDone {
            running: self.running.clone(),
            job,
        };
        (token, done)
    }

    pub fn cancel(&mut self, job: JobId) {
        let token = self.running.lock().ok().and_then(|mut r| r.remove(&job));
        if let Some(token) = token {
            token.cancel();
        }
    }

    pub fn cancel_all(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            for (_, token) in running.drain() {
                token.cancel();
            }
        }
    }

    pub fn ask(&mut self, job: JobId, question: String, conversation: Option<Conversation>) {
        // A question goes first: the warm-up does not hold the model any longer.
        self.warm_up.cancel();
        let tx = self.tx.clone();
        let assistant = match &self.assistant {
            Ok(a) => a.clone(),
            Err(why) => {
                let _ = tx.send(Msg::Job(job, JobOutput::Answer(Err(why.clone()))));
                return;
            }
        };
        let (cancel, done) = self.token(job);
        let options = self.ask_options.clone();
        let (token_tx, mut token_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let forward = tx.clone();
        tokio::spawn(async move {
            while let Some(piece) = token_rx.recv().await {
                if forward
                    .send(Msg::Job(job, JobOutput::Token(piece)))
                    .is_err()
                {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            let _done = done;
            let may = tokio::task::spawn_blocking(|| {
                crate::rbac::require("ask", "").map_err(|d| d.to_string())?;
                crate::audit::may_read().map_err(|e| e.with_hint())
            });
            if let Ok(Err(why)) = may.await {
                let _ = tx.send(Msg::Job(job, JobOutput::Answer(Err(why))));
                return;
            }
            let answer = assistant
                .ask(
                    &question,
                    conversation.as_ref(),
                    &options,
                    Some(token_tx),
                    cancel,
                )
                .await;
            let recorded = match &answer {
                Ok(a) => crate::audit::record_in_background(crate::audit::ask_event(a), true).await,
                Err(e) => {
                    let event = crate::audit::Event::new("ask", "", crate::audit::Outcome::Error)
                        .with("question", question.as_str())
                        .with("error", e.to_string());
                    crate::audit::record_in_background(event, true).await
                }
            };
            if let Err(why) = recorded {
                let _ = tx.send(Msg::Job(job, JobOutput::Answer(Err(why))));
                return;
            }
            let report = answer
                .map(|a| AnswerReport {
                    unsure: a.doubts(),
                    sql: a.sql,
                    failure: a.failure,
                    attempts: a
                        .attempts
                        .into_iter()
                        .map(|t| AttemptLine {
                            sql: t.sql,
                            error: t.error,
                            fixes: t.fixes,
                        })
                        .collect(),
                    result: a.result.map(Arc::new),
                    generation: a.timings.generation,
                })
                .map_err(|e| e.to_string());
            let _ = tx.send(Msg::Job(job, JobOutput::Answer(report)));
        });
    }

    pub fn run_sql(&mut self, job: JobId, sql: String, sample: bool) {
        let (cancel, done) = self.token(job);
        let warehouse = self.warehouse.clone();
        let options = self.query_options.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _done = done;
            let result = audited_query(&warehouse, &sql, options, cancel).await;
            let msg = if sample {
                Msg::Sample(job, result)
            } else {
                Msg::Job(job, JobOutput::Query(result))
            };
            let _ = tx.send(msg);
        });
    }

    /// A dashboard panel's or variable's query, with the panels' limits; cancellable.
    pub fn run_dashboard_query(&mut self, job: JobId, sql: String) {
        let (cancel, done) = self.token(job);
        let warehouse = self.warehouse.clone();
        let options = crate::dashboards::run::panel_options();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _done = done;
            // Refreshes are not recorded, so neither are their denials: the panel says why.
            let result = match crate::dashboards::run::for_viewer(&sql, &warehouse) {
                Ok(run) => cancellable_query(&warehouse, &run, options, cancel).await,
                Err(denied) => Err(denied.to_string()),
            };
            let _ = tx.send(Msg::DashboardQuery { job, sql, result });
        });
    }

    /// The templates (built in and the user's) that fit `database.table`, best first.
    pub fn fit_dashboards(&mut self, job: JobId, database: String, table: String, dirs: Dirs) {
        let (cancel, done) = self.token(job);
        let warehouse = self.warehouse.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let _done = done;
            let name = format!("{database}.{table}");
            let work = async {
                let (t, templates) =
                    table_and_templates(&warehouse, &database, &table, &dirs).await?;
                dashboards::suggest::for_table(&warehouse, &templates, &t)
                    .await
                    .map(|(_, fits)| fits)
                    .map_err(|e| e.to_string())
            };
            let result = tokio::select! {
                r = work => r,
                _ = cancel.cancelled() => return,
            };
            let _ = tx.send(Msg::DashboardFits {
                job,
                table: name,
                result,
            });
        });
    }

    /// Deploys the best-fitting template on `database.table` into the user's dashboards,
    /// never over a file they edited.
    pub fn deploy_dashboard(&self, database: String, table: String, dirs: Dirs) {
        let warehouse = self.warehouse.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let name = format!("{database}.{table}");
            let result = async {
                let resource = name.clone();
                tokio::task::spawn_blocking(move || {
                    crate::rbac::require("dashboard.deploy", &resource).map_err(|d| d.to_string())
                })
                .await
                .map_err(|e| e.to_string())??;
                let (t, templates) =
                    table_and_templates(&warehouse, &database, &table, &dirs).await?;
                let (file, d) =
                    dashboards::suggest::deploy_best(&warehouse, &templates, &t).await?;
                let command = format!("D on {name} in the workspace's Schema view");
                let text =
                    dashboards::suggest::file_text(&d, &command).map_err(|e| e.to_string())?;
                let event = crate::audit::Event::new(
                    "dashboard.deploy",
                    file.as_str(),
                    crate::audit::Outcome::Ok,
                )
                .with("table", name.as_str());
                let (file, path) = crate::audit::change(event, || {
                    dashboards::suggest::write_unique(&dirs.dashboards, &file, &text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", dirs.dashboards.display()))
                })
                .map_err(|e| format!("{e:#}"))?;
                Ok(Box::new((file, d, path)))
            }
            .await;
            let _ = tx.send(Msg::Deployed(result));
        });
    }

    /// The user's dashboards (files in `dirs`), after `extra` ones (the demo's).
    pub fn load_dashboards(&self, dirs: Dirs, extra: Vec<(String, Dashboard)>) {
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let (entries, problems) = library::dashboards(&dirs);
            let mut all = extra;
            all.extend(entries.into_iter().map(|e| (e.name, e.dashboard)));
            let problems = problems.iter().map(|d| d.one_line()).collect();
            let _ = tx.send(Msg::Dashboards(all, problems));
        });
    }

    pub fn sample_table(&mut self, job: JobId, database: &str, table: &str) {
        use crate::warehouse::query::ident;
        let (cancel, done) = self.token(job);
        let warehouse = self.warehouse.clone();
        let options = self.query_options.clone();
        let tx = self.tx.clone();
        let (database, table) = (database.to_string(), table.to_string());
        tokio::spawn(async move {
            let _done = done;
            // A table with columns the user may not read is sampled without them.
            let hidden = crate::rbac::current()
                .table(&database, &table)
                .map(|t| t.hidden)
                .unwrap_or_default();
            let mut columns = "*".to_string();
            if !hidden.is_empty() {
                if let Ok(schema) = warehouse.schema(false).await {
                    if let Some(t) = schema.table(&format!("{database}.{table}"), "") {
                        let visible: Vec<String> = t
                            .columns
                            .iter()
                            .filter(|c| !hidden.contains(&c.name))
                            .map(|c| ident(&c.name))
                            .collect();
                        if !visible.is_empty() {
                            columns = visible.join(", ");
                        }
                    }
                }
            }
            let sql = format!(
                "SELECT {columns} FROM {}.{} LIMIT {SAMPLE_ROWS}",
                ident(&database),
                ident(&table)
            );
            let result = audited_query(&warehouse, &sql, options, cancel).await;
            let _ = tx.send(Msg::Sample(job, result));
        });
    }

    pub fn load_schema(&self) {
        let warehouse = self.warehouse.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let access = crate::rbac::current();
            let loaded = match access.allow("schema", "") {
                Ok(()) => warehouse.schema(true).await.map_err(|e| e.to_string()),
                Err(denied) => Err(denied.to_string()),
            };
            // Only what the user's roles may read.
            let loaded = loaded.map(crate::rbac::visible);
            let msg = loaded.map(|schema| {
                let suggestions = suggest::for_schema(
                    &schema,
                    warehouse.capabilities(),
                    SUGGESTIONS_PER_TABLE,
                    &warehouse.settings().database,
                );
                (schema, suggestions)
            });
            let loaded = msg.is_ok();
            let _ = tx.send(Msg::Schema(msg));
            // For completion in the SQL box; without them it offers names and keywords.
            if loaded {
                match crate::assistant::ask::server_functions(&warehouse).await {
                    Ok(names) => {
                        let _ = tx.send(Msg::Functions(names));
                    }
                    Err(e) => tracing::debug!("no function names for completion: {e}"),
                }
            }
        });
    }

    pub fn control(&self, name: String, control: PipelineControl) {
        let tx = self.tx.clone();
        let host = self.pipelines.clone();
        tokio::spawn(async move {
            let result = match host {
                PipelineHost::Here(supervisor) => supervisor
                    .control(&name, control)
                    .await
                    .map_err(|e| e.to_string()),
                PipelineHost::Daemon(daemon) => daemon
                    .control(&name, control)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                PipelineHost::Files(_) => Err("no pipeline runs in this process".into()),
            };
            let _ = tx.send(Msg::PipelineControlled {
                name,
                control,
                result,
            });
        });
    }

    /// Replays the dead letters of the pipeline `name` of this process (a dry run only counts).
    pub fn replay(&self, name: String, dry_run: bool) {
        let tx = self.tx.clone();
        let host = self.pipelines.clone();
        tokio::spawn(async move {
            let result = match host {
                PipelineHost::Here(supervisor) => {
                    let definition = supervisor
                        .definitions()
                        .into_iter()
                        .find(|(p, _)| p.name == name);
                    let allowed = tokio::task::spawn_blocking({
                        let name = name.clone();
                        move || crate::rbac::require("pipeline.control", &name)
                    })
                    .await;
                    match (definition, allowed) {
                        (_, Ok(Err(denied))) => Err(denied.to_string()),
                        (_, Err(e)) => Err(format!("the access check failed: {e}")),
                        (Some((pipeline, base_dir)), Ok(Ok(()))) => {
                            crate::ingest::replay::replay(
                                supervisor.warehouse(),
                                &pipeline,
                                &base_dir,
                                None,
                                dry_run,
                            )
                            .await
                        }
                        (None, Ok(Ok(()))) => {
                            Err(format!("no pipeline `{name}` runs in this process"))
                        }
                    }
                }
                PipelineHost::Daemon(_) | PipelineHost::Files(_) => {
                    Err(crate::tui::views::pipelines::replay_elsewhere(&name))
                }
            };
            let _ = tx.send(Msg::Replayed {
                name,
                dry_run,
                result,
            });
        });
    }

    /// Writes `result` to `path` (`~/` is the home directory, a relative path is relative to
    /// the directory Aurora was started in), in the format its extension names.
    pub fn export(&self, result: Option<Arc<QueryResult>>, path: PathBuf) {
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let path = absolute_export_path(&path);
            let rows = result.as_ref().map_or(0, |r| r.rows.len() as u64);
            if let Err(denied) = crate::rbac::require("export", &path.display().to_string()) {
                let _ = tx.send(Msg::Exported(Err(denied.to_string())));
                return;
            }
            let outcome = crate::audit::check_writable()
                .map_err(|e| e.with_hint())
                .and_then(|()| export_to(result.as_deref(), &path));
            let event = crate::audit::Event::new(
                "export",
                path.display().to_string(),
                crate::audit::Outcome::Ok,
            )
            .with("rows", rows);
            let event = match &outcome {
                Ok(()) => event,
                Err(e) => event.failed(e),
            };
            let recorded = crate::audit::record(event).map_err(|e| e.to_string());
            let outcome = outcome.and(recorded).map(|()| path);
            let _ = tx.send(Msg::Exported(outcome));
        });
    }

    /// Keeps a confirmed answer as an example: in the examples file, and at once for the
    /// running assistant's later questions.
    pub fn keep_example(&self, question: String, sql: String) {
        let tx = self.tx.clone();
        let assistant = self.assistant.clone().ok();
        tokio::task::spawn_blocking(move || {
            let example = crate::assistant::prompt::Example { question, sql };
            let kept = match crate::assistant::examples::default_path() {
                Some(path) => crate::assistant::examples::append(&path, &example)
                    .map(|()| path.display().to_string())
                    .map_err(|e| format!("cannot keep the example in {}: {e}", path.display())),
                None => Err("no data directory to keep examples in".into()),
            };
            if let (Ok(_), Some(assistant)) = (&kept, assistant) {
                assistant.remember(example);
            }
            let _ = tx.send(Msg::Kept(kept));
        });
    }

    /// Saves `history` soon; a newer save replaces one not yet written.
    pub fn save_history(&self, history: History) {
        if let Some(tx) = &self.history_tx {
            tx.send_replace(Some(history));
        }
    }
}

/// One task writes the history file, always the latest version, one write at a time.
/// The table `database.table` as the schema knows it, and every template (built in and the
/// user's) to fit to it.
async fn table_and_templates(
    warehouse: &Warehouse,
    database: &str,
    table: &str,
    dirs: &Dirs,
) -> Result<(crate::warehouse::schema::TableInfo, Vec<library::Entry>), String> {
    let name = format!("{database}.{table}");
    let schema = crate::rbac::visible(warehouse.schema(false).await.map_err(|e| e.to_string())?);
    let t = schema
        .table(&name, database)
        .ok_or_else(|| format!("no table {name}"))?
        .clone();
    Ok((t, library::templates(dirs).0))
}

/// Runs `sql` until it ends or `cancel` fires; a cancelled query is stopped on the server
/// too (`KILL QUERY` by its id).
async fn cancellable_query(
    warehouse: &Warehouse,
    sql: &str,
    mut options: QueryOptions,
    cancel: CancellationToken,
) -> Result<Arc<QueryResult>, String> {
    let query_id = options
        .query_id
        .get_or_insert_with(|| uuid::Uuid::new_v4().to_string())
        .clone();
    tokio::select! {
        r = warehouse.query(sql, &options) => r.map(Arc::new).map_err(|e| e.to_string()),
        _ = cancel.cancelled() => {
            let _ = warehouse.cancel(&query_id).await;
            Err("cancelled".to_string())
        }
    }
}

/// [`cancellable_query`] with its audit record: checked before it runs, written when it ends;
/// the rows are withheld if the record cannot be written.
async fn audited_query(
    warehouse: &Warehouse,
    sql: &str,
    mut options: QueryOptions,
    cancel: CancellationToken,
) -> Result<Arc<QueryResult>, String> {
    let database = warehouse.settings().database.clone();
    let text = sql.to_string();
    let may = tokio::task::spawn_blocking(move || {
        let sql = crate::rbac::query("query", &text, &database).map_err(|d| d.to_string())?;
        crate::audit::may_read().map_err(|e| e.with_hint())?;
        Ok::<_, String>(sql)
    })
    .await;
    let sql = &match may {
        Ok(Ok(sql)) => sql,
        Ok(Err(why)) => return Err(why),
        Err(e) => return Err(format!("the access check failed: {e}")),
    };
    let query_id = uuid::Uuid::new_v4().to_string();
    options.query_id = Some(query_id.clone());
    let started = std::time::Instant::now();
    let result = cancellable_query(warehouse, sql, options, cancel).await;
    let event = crate::audit::query_event("query.run", sql, Some(&query_id))
        .with("ms", started.elapsed().as_millis() as u64);
    let event = match &result {
        Ok(r) => event.with("rows", r.stats.result_rows),
        Err(e) => event.failed(e),
    };
    crate::audit::record_in_background(event, true).await?;
    result
}

fn spawn_history_writer(path: PathBuf, tx: UnboundedSender<Msg>) -> watch::Sender<Option<History>> {
    let (history_tx, mut history_rx) = watch::channel::<Option<History>>(None);
    tokio::spawn(async move {
        while history_rx.changed().await.is_ok() {
            let Some(history) = history_rx.borrow_and_update().clone() else {
                continue;
            };
            let path = path.clone();
            let saved =
                tokio::task::spawn_blocking(move || history.save(&path).map_err(|e| (path, e)))
                    .await;
            if let Ok(Err((path, e))) = saved {
                let _ = tx.send(Msg::HistorySaveFailed(format!(
                    "cannot save the history to {}: {e}",
                    path.display()
                )));
            }
        }
    });
    history_tx
}

fn absolute_export_path(path: &std::path::Path) -> PathBuf {
    let expanded = match (path.strip_prefix("~"), directories::BaseDirs::new()) {
        (Ok(rest), Some(dirs)) => dirs.home_dir().join(rest),
        _ => path.to_path_buf(),
    };
    std::path::absolute(&expanded).unwrap_or(expanded)
}

fn export_to(result: Option<&QueryResult>, path: &std::path::Path) -> Result<(), String> {
    let result = result.ok_or("nothing to export")?;
    let format = match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "csv" => OutputFormat::Csv,
        Some(e) if e == "json" => OutputFormat::Json,
        Some(e) if e == "tsv" => OutputFormat::Tsv,
        _ => {
            return Err(format!(
                "cannot tell the format of {}: end the name with .csv, .json or .tsv",
                path.display()
            ))
        }
    };
    // Never over an existing file: a second export with the suggested name must not silently
    // replace the first.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{} exists; export again with another name", path.display())
            }
            _ => format!("cannot write {}: {e}", path.display()),
        })?;
    let mut out = std::io::BufWriter::new(file);
    render(result, format, &mut out)
        .and_then(|()| std::io::Write::flush(&mut out))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The limits for queries run from the workspace.
pub fn query_options(config: &crate::config::Config) -> QueryOptions {
    QueryOptions {
        readonly: config.clickhouse.readonly,
        max_execution_time: Some(config.clickhouse.query_timeout),
        max_result_rows: Some(config.clickhouse.max_result_rows),
        overflow: OverflowMode::Break,
        ..QueryOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::value::Value;

    #[test]
    fn export_picks_the_format_from_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let result = crate::tui::fixtures::result(
            &[("n", "UInt64"), ("name", "String")],
            vec![vec![Value::UInt(1), Value::String("a,b".into())]],
        );
        let csv = dir.path().join("out.csv");
        export_to(Some(&result), &csv).unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.contains("\"a,b\""), "{text}");
        let json = dir.path().join("out.JSON");
        export_to(Some(&result), &json).unwrap();
        let parsed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(parsed["rows"], 1);
        let again = export_to(Some(&result), &csv).unwrap_err();
        assert!(again.contains("exists"), "{again}");
        assert_eq!(
            absolute_export_path(std::path::Path::new("~/x.csv")),
            directories::BaseDirs::new()
                .unwrap()
                .home_dir()
                .join("x.csv")
        );
        assert!(absolute_export_path(std::path::Path::new("x.csv")).is_absolute());
        let err = export_to(Some(&result), &dir.path().join("out.xlsx")).unwrap_err();
        assert!(err.contains(".csv, .json or .tsv"), "{err}");
        assert!(export_to(None, &csv).is_err());
    }
}
