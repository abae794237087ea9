//! The engine: runs one pipeline as background tasks. The source runs on its own task and
//! sends records through a bounded channel, so a slow ClickHouse makes the source wait instead
//! of filling memory. The batcher cuts batches by rows, bytes and time, hands each to the sink,
//! and only after ClickHouse acknowledged it saves the source's position. Its state goes out on
//! a `watch` channel (latest value wins) for the CLI and the TUI.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::ingest::handover::{Handover, Revoke};
use crate::ingest::pipeline::{Delivery, Pipeline, Source};
use crate::ingest::queue::{self, RecordSender};
use crate::ingest::record::{Ack, SourceRecord};
use crate::ingest::sinks::clickhouse::{ClickHouseSink, KnownPositions, PreparedRecord, SinkError};
use crate::ingest::sources::csv::{self, CursorStore};
use crate::ingest::sources::kafka;
use crate::ingest::sources::mysql::Mysql;
use crate::ingest::sources::postgres::Postgres;
use crate::ingest::sources::{sql, HealthReporter, Warning, WarningReporter};
use crate::metrics::{self, Stage};
use crate::warehouse::Warehouse;

/// Records buffered between source and sink at most; the source blocks beyond this.
const CHANNEL_RECORDS: usize = 8_000;
/// Bytes buffered between source and sink at most (by `queue::weight`), whatever the records'
/// size: with the three batches (each at most `batch.max_bytes`) and librdkafka's prefetch,
/// this is what bounds a pipeline's memory while ClickHouse is slow or down.
const CHANNEL_BYTES: usize = 16 * 1024 * 1024;
/// Records the batcher takes from the channel at once.
const RECEIVE_BURST: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum PipelineState {
    #[default]
    Starting,
    Running,
    /// ClickHouse failed transiently; the batch is being retried.
    Retrying(String),
    /// Stopped by an error retrying cannot fix.
    Failed(String),
    /// The source has no more records (a CSV file read to its end) and all were stored.
    Finished,
    /// Stopped on request, after storing what had been read.
    Stopped,
}

impl PipelineState {
    /// The state in one word: starting, running, retrying, failed, finished or stopped.
    pub fn name(&self) -> &'static str {
        match self {
            PipelineState::Starting => "starting",
            PipelineState::Running => "running",
            PipelineState::Retrying(_) => "retrying",
            PipelineState::Failed(_) => "failed",
            PipelineState::Finished => "finished",
            PipelineState::Stopped => "stopped",
        }
    }
}

/// A pipeline's progress, published after every batch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PipelineStatus {
    pub name: String,
    pub state: PipelineState,
    pub rows_written: u64,
    pub bytes_written: u64,
    pub dead_lettered: u64,
    /// Records skipped because an earlier run had stored them (exactly-once resume).
    pub already_stored: u64,
    pub batches: u64,
    pub last_batch_rows: u64,
    #[serde(with = "humantime_serde")]
    pub last_batch_latency: Option<Duration>,
    /// Kafka: messages not yet consumed, per partition (`kafka:<topic>:<partition>`).
    #[serde(default)]
    pub lag: std::collections::BTreeMap<String, u64>,
    /// Rows and bytes stored per second over the last `RATE_WINDOW`.
    pub rows_per_sec: f64,
    pub bytes_per_sec: f64,
    pub last_error: Option<String>,
    /// Things that lost nothing but need a look (a file replaced or truncated, offsets that
    /// went back, records found stored that no restart explains), oldest first, at most
    /// `MAX_WARNINGS`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Columns schema evolution added to the table in this run (`name Type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_added: Vec<String>,
    /// The process running the pipeline, and when it last reported (Unix seconds).
    pub pid: u32,
    pub updated_at: u64,
}

/// Warnings a status keeps; older ones are in the log.
pub const MAX_WARNINGS: usize = 10;

impl PipelineStatus {
    /// Adds a warning, once: the same text again only moves it to the end.
    pub fn add_warning(&mut self, message: String) {
        self.warnings.retain(|w| *w != message);
        self.warnings.push(message);
        let excess = self.warnings.len().saturating_sub(MAX_WARNINGS);
        self.warnings.drain(..excess);
    }
}

/// Logs a warning, counts it and shows it in the status.
fn warning_reporter(status: Arc<watch::Sender<PipelineStatus>>) -> WarningReporter {
    Arc::new(move |warning: Warning| report_warning(&status, warning))
}

fn report_warning(status: &watch::Sender<PipelineStatus>, warning: Warning) {
    status.send_modify(|s| {
        tracing::warn!(pipeline = %s.name, kind = warning.kind, "{}", warning.message);
        metrics::global().warning(&s.name, warning.kind);
        s.add_warning(warning.message);
    });
}

/// How far back `rows_per_sec` looks.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Recent (time, rows, bytes) totals, for rates over a sliding window.
#[derive(Debug, Default)]
struct RateWindow {
    samples: std::collections::VecDeque<(Instant, u64, u64)>,
}

impl RateWindow {
    /// Adds the current totals and returns (rows/s, bytes/s) over the window.
    fn add(&mut self, now: Instant, rows: u64, bytes: u64) -> (f64, f64) {
        self.samples.push_back((now, rows, bytes));
        while self
            .samples
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) > RATE_WINDOW)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
        match self.samples.front() {
            Some(&(t, r, b)) if now > t => {
                let secs = now.duration_since(t).as_secs_f64();
                ((rows - r) as f64 / secs, (bytes - b) as f64 / secs)
            }
            _ => (0.0, 0.0),
        }
    }
}

/// Writes the status where `aurora pipeline status` reads it (write, then rename).
fn publish_file(path: &Path, status: &PipelineStatus) {
    let Ok(text) = serde_json::to_string_pretty(status) else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("json.tmp");
    if std::fs::write(&tmp, text).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// Writes the status file whenever the status changes (`retrying` during an outage as much as
/// progress), at most once a second: the file is for people and `aurora pipeline status`.
async fn publish_changes(mut changes: watch::Receiver<PipelineStatus>, path: PathBuf) {
    while changes.changed().await.is_ok() {
        let snapshot = changes.borrow_and_update().clone();
        publish_file(&path, &snapshot);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads the last published status of every pipeline under `state_dir`.
pub fn read_statuses(state_dir: &Path) -> Vec<PipelineStatus> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    let mut out: Vec<PipelineStatus> = entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join(STATUS_FILE)).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub const STATUS_FILE: &str = "status.json";

/// Where a pipeline keeps its saved positions: `<state_dir>/<pipeline name>/`.
pub fn pipeline_state_dir(state_dir: &Path, pipeline: &str) -> PathBuf {
    state_dir.join(pipeline)
}

/// The default state directory, e.g. `~/.local/share/aurora/pipelines`.
pub fn default_state_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "aurora")
        .map(|d| d.data_dir().join("pipelines"))
        .unwrap_or_else(|| std::env::temp_dir().join("aurora").join("pipelines"))
}

/// Everything one pipeline run needs.
pub struct PipelineRun {
    pub pipeline: Pipeline,
    /// The main config's `kafka` section: default brokers, client id and properties.
    pub kafka: crate::config::KafkaConfig,
    /// Directory of the pipeline file: relative source paths are relative to it.
    pub base_dir: PathBuf,
    pub state_dir: PathBuf,
    pub warehouse: Arc<Warehouse>,
}

/// Runs the pipeline until its source ends, `cancel` fires, or a fatal error. Publishes its
/// status on `status` throughout and returns the final one.
pub async fn run(
    run: PipelineRun,
    cancel: CancellationToken,
    status: watch::Sender<PipelineStatus>,
) -> PipelineStatus {
    let name = run.pipeline.name.clone();
    status.send_modify(|s| s.name = name.clone());
    let status = Arc::new(status);
    let status_file = pipeline_state_dir(&run.state_dir, &name).join(STATUS_FILE);
    let publisher = tokio::spawn(publish_changes(status.subscribe(), status_file.clone()));
    let outcome = run_inner(&run, &cancel, &status).await;
    // The last word is written below; a publish still in progress must not overwrite it.
    publisher.abort();
    let _ = publisher.await;
    if let Err(e) = &outcome {
        metrics::global().error(&name, e.stage());
    }
    status.send_modify(|s| match outcome {
        Ok(state) => s.state = state,
        Err(e) => {
            s.last_error = Some(e.to_string());
            s.state = PipelineState::Failed(e.to_string());
        }
    });
    status.send_modify(|s| {
        // An ended pipeline stores nothing more: its last window's rate would read as live.
        s.rows_per_sec = 0.0;
        s.bytes_per_sec = 0.0;
        s.pid = std::process::id();
        s.updated_at = crate::ingest::unix_now();
    });
    let last = status.borrow().clone();
    publish_file(&status_file, &last);
    tracing::info!(pipeline = %last.name, state = ?last.state, rows = last.rows_written, dead = last.dead_lettered, "pipeline ended");
    last
}

#[derive(Debug, thiserror::Error)]
enum EngineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Source(String),
    #[error("cannot read or save the positions of pipeline `{pipeline}` in {path}: {reason}")]
    Cursor {
        pipeline: String,
        path: PathBuf,
        reason: String,
    },
}

impl EngineError {
    fn stage(&self) -> Stage {
        match self {
            EngineError::Sink(_) => Stage::Sink,
            EngineError::Source(_) => Stage::Source,
            EngineError::Cursor { .. } => Stage::Position,
        }
    }
}

async fn run_inner(
    run: &PipelineRun,
    cancel: &CancellationToken,
    status: &Arc<watch::Sender<PipelineStatus>>,
) -> Result<PipelineState, EngineError> {
    let pipeline = &run.pipeline;
    let mut sink = ClickHouseSink::prepare(run.warehouse.clone(), pipeline).await?;
    let known_positions = KnownPositions::default();
    sink.set_known_positions(known_positions.clone());
    let (tx, mut rx) = queue::channel(CHANNEL_RECORDS, CHANNEL_BYTES);
    let source_cancel = cancel.child_token();
    let state_dir = pipeline_state_dir(&run.state_dir, &pipeline.name);
    // Kafka only: partitions a rebalance takes away are handed over through this.
    let mut handover: Option<Arc<Handover>> = None;
    let (source_task, positions) = match &pipeline.source {
        Source::Csv(spec) => {
            let spec = spec.clone();
            let pattern = crate::config::resolve_path(&run.base_dir, Path::new(&spec.path))
                .display()
                .to_string();
            let cursor_path = state_dir.join("cursors.json");
            let cursors = Arc::new(Mutex::new(open_cursors(
                &pipeline.name,
                &cursor_path,
                &known_positions,
            )?));
            let store = cursors.clone();
            let token = source_cancel.clone();
            let warn = warning_reporter(status.clone());
            let task = tokio::task::spawn_blocking(move || {
                csv::run(&spec, &pattern, store, tx, token, warn).map_err(|e| e.to_string())
            });
            (task, Positions::Files(cursors, cursor_path))
        }
        Source::Kafka(spec) => {
            let spec = spec.clone();
            let ctx = kafka::KafkaContext {
                pipeline: pipeline.name.clone(),
                default_brokers: run.kafka.brokers.clone(),
                client_id: run.kafka.client_id.clone(),
                default_properties: run.kafka.properties.clone(),
                exactly_once: pipeline.delivery == Delivery::ExactlyOnce,
                known_positions: known_positions.clone(),
            };
            let (ack_tx, ack_rx) = mpsc::unbounded_channel();
            let token = source_cancel.clone();
            let lag_status = status.clone();
            let lag_pipeline = pipeline.name.clone();
            let report_lag: kafka::LagReporter = Box::new(move |lag| {
                for (source, n) in &lag {
                    metrics::global().set_lag(&lag_pipeline, source, *n);
                }
                lag_status.send_modify(|s| s.lag = lag);
            });
            let report_health = health_reporter(status.clone());
            let warn = warning_reporter(status.clone());
            let shared = Arc::new(Handover::default());
            handover = Some(shared.clone());
            let task = tokio::spawn(async move {
                kafka::run(
                    &spec,
                    &ctx,
                    tx,
                    ack_rx,
                    token,
                    report_lag,
                    report_health,
                    shared,
                    warn,
                )
                .await
                .map_err(|e| e.to_string())
            });
            (task, Positions::Kafka(ack_tx))
        }
        Source::Postgres(spec) | Source::Mysql(spec) => {
            let spec = &spec.with_base(&run.base_dir);
            let cursor_path = state_dir.join("cursors.json");
            let cursors = Arc::new(Mutex::new(open_cursors(
                &pipeline.name,
                &cursor_path,
                &known_positions,
            )?));
            let exactly_once = pipeline.delivery == Delivery::ExactlyOnce;
            let token = source_cancel.clone();
            let health = health_reporter(status.clone());
            let source_error = |e: sql::SqlSourceError| EngineError::Source(e.to_string());
            let copy = |id: String| sql::CopyRun {
                saved: cursors.lock().ok().and_then(|c| c.saved(&id)),
                source_id: Arc::from(id),
                spec: spec.clone(),
                exactly_once,
            };
            let task = if let Source::Postgres(_) = &pipeline.source {
                let db = Postgres::new(spec).map_err(source_error)?;
                let copy = copy(db.source_id(spec));
                spawn_copy(db, copy, tx, token, health)
            } else {
                let db = Mysql::new(spec).map_err(source_error)?;
                let copy = copy(db.source_id(spec));
                spawn_copy(db, copy, tx, token, health)
            };
            (task, Positions::Files(cursors, cursor_path))
        }
    };
    status.send_modify(|s| {
        s.state = PipelineState::Running;
        s.pid = std::process::id();
        s.updated_at = crate::ingest::unix_now();
    });
    // The writer stores one batch while the next one is being collected; the queue between
    // them holds one batch, so at most three are in memory.
    let (batch_tx, mut batch_rx) = mpsc::channel::<ToWriter>(1);
    let preparer = sink.preparer();
    let writer = {
        let pipeline = pipeline.clone();
        let status = status.clone();
        let handover = handover.clone();
        tokio::spawn(async move {
            // However the writer ends, a revoke must not wait for it any more.
            let _close = handover.clone().map(CloseOnDrop);
            let mut rates = RateWindow::default();
            while let Some(message) = batch_rx.recv().await {
                let mut batch = match message {
                    ToWriter::Batch(batch) => batch,
                    ToWriter::Revoked(revoke) => {
                        // Every batch queued before the revoke is written: the new owner may
                        // read the partitions' high-water marks now, and when they come back
                        // here, the sink has to read them afresh.
                        sink.forget(&revoke.sources);
                        if let Some(h) = &handover {
                            h.finish(revoke.seq);
                        }
                        continue;
                    }
                };
                if let Some(h) = &handover {
                    // Records of partitions revoked since the batch was cut are the new
                    // owner's now: they were not committed, so it reads them again.
                    batch.retain(|r| !h.is_revoked(&r.source_id));
                }
                write_batch(&mut sink, &mut batch, &positions, &pipeline, &status).await?;
                let now = Instant::now();
                status.send_modify(|s| {
                    (s.rows_per_sec, s.bytes_per_sec) =
                        rates.add(now, s.rows_written, s.bytes_written);
                    s.pid = std::process::id();
                    s.updated_at = crate::ingest::unix_now();
                });
            }
            // Closing the ack channel tells a Kafka source that the last commit has been sent.
            drop(positions);
            Ok::<(), EngineError>(())
        })
    };
    let policy = &pipeline.sink.batch;
    let mut batch: Vec<PreparedRecord> = Vec::new();
    let mut batch_bytes: u64 = 0;
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut source_done = false;
    let mut stopping = false;
    let mut incoming: Vec<SourceRecord> = Vec::with_capacity(RECEIVE_BURST);
    loop {
        let full = batch.len() as u64 >= policy.max_rows || batch_bytes >= policy.max_bytes;
        let due = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
        if !batch.is_empty() && (full || due || source_done || stopping) {
            if batch_tx
                .send(ToWriter::Batch(std::mem::take(&mut batch)))
                .await
                .is_err()
            {
                // The writer stopped on an error; it is reported below.
                break;
            }
            batch_bytes = 0;
            deadline = None;
            continue;
        }
        if source_done {
            break;
        }
        if stopping && batch.is_empty() {
            break;
        }
        let wait =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        // Never more than the batch has room for, so `max_rows` holds exactly.
        let room = usize::try_from(policy.max_rows)
            .unwrap_or(usize::MAX)
            .saturating_sub(batch.len())
            .clamp(1, RECEIVE_BURST);
        tokio::select! {
            // Many records per wake-up: the select, its timer and the channel's
            // synchronisation then cost per burst, not per record.
            received = rx.recv_many(&mut incoming, room) => {
                if received == 0 {
                    source_done = true;
                } else if batch.is_empty() {
                    deadline = Some(tokio::time::Instant::now() + policy.max_wait);
                }
                for record in incoming.drain(..) {
                    let prepared = preparer.prepare(record);
                    batch_bytes += prepared.size_bytes() as u64;
                    batch.push(prepared);
                }
            },
            _ = tokio::time::sleep_until(wait), if deadline.is_some() => {}
            _ = async { if let Some(h) = &handover { h.requested.notified().await } }, if handover.is_some() => {
                let Some(revoke) = handover.as_ref().and_then(|h| h.take_pending()) else {
                    continue;
                };
                // The source is blocked in its rebalance callback, so everything it read is
                // in the channel now: take it, drop the revoked partitions' records, and let
                // the writer finish what it has before the partitions change hands.
                while let Some(record) = rx.try_recv() {
                    batch.push(preparer.prepare(record));
                }
                batch.retain(|r| !revoke.sources.iter().any(|s| **s == *r.source_id));
                batch_bytes = batch.iter().map(|r| r.size_bytes() as u64).sum();
                if batch.is_empty() {
                    deadline = None;
                }
                if batch_tx.send(ToWriter::Revoked(revoke)).await.is_err() {
                    break;
                }
            }
            _ = cancel.cancelled(), if !stopping => {
                // Stop reading; store what is already in hand, then end.
                stopping = true;
                source_cancel.cancel();
                while let Some(record) = rx.try_recv() {
                    let prepared = preparer.prepare(record);
                    batch_bytes += prepared.size_bytes() as u64;
                    batch.push(prepared);
                }
            }
        }
    }
    // Closing the channel releases a source blocked on a full channel during shutdown; what
    // it had not handed over is not acknowledged, so the next run reads it again.
    drop(rx);
    drop(batch_tx);
    let written = writer
        .await
        .map_err(|e| EngineError::Source(format!("the writer task failed: {e}")));
    if written.is_err() || matches!(written, Ok(Err(_))) {
        // Stop the source, whatever it is doing, before reporting the writer's error.
        source_cancel.cancel();
    }
    written??;
    let source_result = source_task
        .await
        .map_err(|e| EngineError::Source(format!("the source task failed: {e}")))?;
    if let Err(e) = source_result {
        return Err(EngineError::Source(format!(
            "pipeline `{}`: {e}",
            pipeline.name
        )));
    }
    Ok(if stopping {
        PipelineState::Stopped
    } else {
        PipelineState::Finished
    })
}

/// What the batcher hands the writer.
enum ToWriter {
    Batch(Vec<PreparedRecord>),
    /// Kafka partitions were revoked: finish what came before, then release them.
    Revoked(Revoke),
}

/// Closes a handover when dropped, so revokes stop waiting for a writer that is gone.
struct CloseOnDrop(Arc<Handover>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The saved positions of a pipeline, each of which the sink learns to expect records of.
fn open_cursors(
    pipeline: &str,
    path: &Path,
    known: &KnownPositions,
) -> Result<CursorStore, EngineError> {
    let store = CursorStore::open(path.to_path_buf()).map_err(|e| EngineError::Cursor {
        pipeline: pipeline.to_string(),
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    known
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(store.cursors().map(|(id, _)| id.to_string()));
    Ok(store)
}

/// Runs a SQL database copy on its own task.
fn spawn_copy<D: sql::Database + 'static>(
    mut db: D,
    copy: sql::CopyRun,
    tx: RecordSender,
    cancel: CancellationToken,
    health: HealthReporter,
) -> tokio::task::JoinHandle<Result<(), String>> {
    tokio::spawn(async move {
        sql::run(&mut db, copy, tx, cancel, health)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Shows a source's trouble (brokers or database unreachable) as `retrying`, and its
/// recovery as `running`.
fn health_reporter(status: Arc<watch::Sender<PipelineStatus>>) -> HealthReporter {
    Box::new(move |problem| {
        status.send_modify(|s| match problem {
            Some(e) => {
                metrics::global().error(&s.name, Stage::Source);
                s.state = PipelineState::Retrying(e.clone());
                s.last_error = Some(e);
            }
            None => {
                if matches!(s.state, PipelineState::Retrying(_)) {
                    s.state = PipelineState::Running;
                }
            }
        });
    })
}

/// Where a source's positions are saved once the sink has stored the records.
enum Positions {
    /// CSV: a cursor file written by the engine itself.
    Files(Arc<Mutex<CursorStore>>, PathBuf),
    /// Kafka: the source task commits the offsets to the consumer group.
    Kafka(mpsc::UnboundedSender<Vec<Ack>>),
}

impl Positions {
    fn save(&self, acks: &[Ack], pipeline: &str) -> Result<(), EngineError> {
        match self {
            Positions::Files(cursors, path) => cursors
                .lock()
                .map_err(|_| EngineError::Source("the cursor store lock is poisoned".into()))?
                .commit(acks)
                .map_err(|e| EngineError::Cursor {
                    pipeline: pipeline.to_string(),
                    path: path.clone(),
                    reason: e.to_string(),
                }),
            // A closed channel means the source already stopped; the next run re-reads from
            // the last commit and the sink's bookkeeping sorts it out.
            Positions::Kafka(tx) => {
                let _ = tx.send(acks.to_vec());
                Ok(())
            }
        }
    }
}

async fn write_batch(
    sink: &mut ClickHouseSink,
    batch: &mut Vec<PreparedRecord>,
    positions: &Positions,
    pipeline: &Pipeline,
    status: &watch::Sender<PipelineStatus>,
) -> Result<(), EngineError> {
    let started = Instant::now();
    let labels = metrics::Metrics::labels(&pipeline.name);
    let counters = metrics::global();
    counters
        .records_read
        .get_or_create(&labels)
        .inc_by(batch.len() as u64);
    counters
        .batch_rows
        .get_or_create(&labels)
        .observe(batch.len() as f64);
    let added = sink.evolve(batch).await?;
    if !added.is_empty() {
        let table = sink.table_name();
        for column in &added {
            tracing::info!(pipeline = %pipeline.name, "added column {column} to {table} (evolve: add_columns)");
        }
        counters
            .columns_added
            .get_or_create(&labels)
            .inc_by(added.len() as u64);
        status.send_modify(|s| s.columns_added.extend(added));
    }
    let outcome = sink
        .write(batch, |err, wait| {
            counters.retries.get_or_create(&labels).inc();
            counters.error(&pipeline.name, Stage::Sink);
            tracing::warn!(pipeline = %pipeline.name, "ClickHouse write failed, retrying in {wait:?}: {err}");
            status.send_modify(|s| {
                s.state = PipelineState::Retrying(err.to_string());
                s.last_error = Some(err.to_string());
            });
        })
        .await?;
    // Only now, with the batch stored, may the source's position move past it.
    positions.save(&outcome.acks, &pipeline.name)?;
    if !outcome.unexplained.is_empty() {
        let table = sink.table_name();
        for u in &outcome.unexplained {
            report_warning(
                status,
                Warning::new("unexplained_already_stored", u.describe(&table)),
            );
        }
    }
    let latency = started.elapsed();
    counters
        .last_success
        .get_or_create(&labels)
        .set(crate::ingest::unix_now() as f64);
    counters
        .rows
        .get_or_create(&labels)
        .inc_by(outcome.rows_written);
    counters
        .bytes
        .get_or_create(&labels)
        .inc_by(outcome.bytes_written);
    counters
        .dead_lettered
        .get_or_create(&labels)
        .inc_by(outcome.dead_lettered);
    counters
        .already_stored
        .get_or_create(&labels)
        .inc_by(outcome.already_stored);
    counters.batches.get_or_create(&labels).inc();
    counters
        .batch_seconds
        .get_or_create(&labels)
        .observe(latency.as_secs_f64());
    status.send_modify(|s| {
        s.state = PipelineState::Running;
        s.rows_written += outcome.rows_written;
        s.bytes_written += outcome.bytes_written;
        s.dead_lettered += outcome.dead_lettered;
        s.already_stored += outcome.already_stored;
        s.batches += 1;
        s.last_batch_rows = outcome.rows_written;
        s.last_batch_latency = Some(latency);
    });
    tracing::debug!(pipeline = %pipeline.name, rows = outcome.rows_written, dead = outcome.dead_lettered, ?latency, "batch stored");
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_measures_recent_progress_only() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        assert_eq!(w.add(t0, 0, 0), (0.0, 0.0));
        let (rows, bytes) = w.add(t0 + Duration::from_secs(2), 1000, 4000);
        assert!((rows - 500.0).abs() < 1e-6 && (bytes - 2000.0).abs() < 1e-6);
        // Much later, only the window's samples count.
        w.add(t0 + Duration::from_secs(30), 1000, 4000);
        let (rows, _) = w.add(t0 + Duration::from_secs(31), 2000, 8000);
        assert!(rows > 0.0 && rows <= 1000.0 + 1e-6, "{rows}");
    }
}
