//! The supervisor: runs several pipelines in this process and lets a front end pause, resume
//! and restart them. Each run of a pipeline is one `engine::run` with its own cancellation
//! token and status `watch`; a relay task per run folds that status into one shared `watch` of
//! snapshots (latest value wins, in the order the pipelines were started), which the TUI's
//! Pipelines view and the headless demo read. Pausing cancels the engine, which stores what it
//! had read and saves its position; resuming starts a new run from that position, so a pause
//! neither loses nor repeats a record.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::KafkaConfig;
use crate::ingest::engine::{self, PipelineRun, PipelineState, PipelineStatus};
use crate::ingest::pipeline::Pipeline;
use crate::warehouse::Warehouse;

/// One pipeline as a front end shows it.
/// Serialised as the control API sends it: `{"status": {...}, "recent_errors": [...],
/// "controllable": .., "paused": ..}` (nested, not flattened: serde's flatten loses numbers
/// with `arbitrary_precision`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PipelineSnapshot {
    pub status: PipelineStatus,
    /// The last errors (Unix seconds, message), oldest first, at most `RECENT_ERRORS`.
    pub recent_errors: Vec<(u64, String)>,
    /// True when this process runs it, so pause/resume/restart apply; false for a pipeline
    /// another process runs, read from its status file.
    pub controllable: bool,
    /// Paused by the user (the engine was stopped after storing what it had read).
    pub paused: bool,
}

impl PipelineSnapshot {
    /// Running in the sense of `Supervisor::running`: started, not paused, not ended.
    pub fn is_running(&self) -> bool {
        !self.paused && !is_ended(&self.status.state)
    }

    /// One word for the state: starting, running, retrying, paused, failed, finished or
    /// stopped (paused wins over the stopped run it leaves).
    pub fn state_name(&self) -> &'static str {
        if self.paused {
            return "paused";
        }
        self.status.state.name()
    }
}

pub const RECENT_ERRORS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineControl {
    Pause,
    Resume,
    Restart,
}

impl PipelineControl {
    /// The control's name in the API's paths and in audit records: pause, resume, restart.
    pub fn verb(self) -> &'static str {
        match self {
            PipelineControl::Pause => "pause",
            PipelineControl::Resume => "resume",
            PipelineControl::Restart => "restart",
        }
    }
}

/// Records a pipeline action (`pipeline.start`, `pipeline.pause`, ...) in the audit log.
fn audit(verb: &str, name: &str, error: Option<&str>) -> Result<(), SupervisorError> {
    audit_by(verb, name, error, None)
}

/// [`audit`], done by `actor` (None: this process's user).
fn audit_by(
    verb: &str,
    name: &str,
    error: Option<&str>,
    actor: Option<&crate::audit::Actor>,
) -> Result<(), SupervisorError> {
    let event =
        crate::audit::Event::new(format!("pipeline.{verb}"), name, crate::audit::Outcome::Ok);
    let event = match actor {
        Some(a) => event.by(a),
        None => event,
    };
    let event = match error {
        Some(e) => event.failed(e),
        None => event,
    };
    crate::audit::record(event).map_err(|e| SupervisorError::Audit(e.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no pipeline named `{0}` runs in this process")]
    Unknown(String),
    #[error("a pipeline named `{0}` already runs in this process; pipeline names must be unique")]
    Duplicate(String),
    #[error("the pipelines of this process are shutting down")]
    ShutDown,
    #[error("{0}; the action is refused because it could not be recorded")]
    Audit(String),
    #[error(transparent)]
    Denied(#[from] crate::rbac::Denied),
}

/// A pipeline the supervisor owns: what it runs from, and its current run if any.
struct Supervised {
    pipeline: Pipeline,
    base_dir: PathBuf,
    run: Option<RunHandle>,
}

/// One `engine::run` of a pipeline.
struct RunHandle {
    cancel: CancellationToken,
    /// Ends after the engine ended and its last status was folded into the snapshots.
    relay: JoinHandle<()>,
}

pub struct Supervisor {
    snapshots: watch::Sender<Vec<PipelineSnapshot>>,
    warehouse: Arc<Warehouse>,
    kafka: KafkaConfig,
    state_dir: PathBuf,
    /// In start order, the same order (and index) as the snapshots.
    pipelines: Mutex<Vec<Supervised>>,
    /// One control or shutdown at a time: a pause waits for the engine to drain, and a resume
    /// racing it must not start a second run beside the draining one.
    control_lock: tokio::sync::Mutex<()>,
    shut_down: AtomicBool,
}

impl Supervisor {
    pub fn new(warehouse: Arc<Warehouse>, kafka: KafkaConfig, state_dir: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            snapshots: watch::channel(Vec::new()).0,
            warehouse,
            kafka,
            state_dir,
            pipelines: Mutex::new(Vec::new()),
            control_lock: tokio::sync::Mutex::new(()),
            shut_down: AtomicBool::new(false),
        })
    }

    /// Starts `pipeline` on background tasks (of the current Tokio runtime); relative paths in
    /// it resolve against `base_dir`.
    pub fn start(
        self: &Arc<Self>,
        pipeline: Pipeline,
        base_dir: PathBuf,
    ) -> Result<(), SupervisorError> {
        // The flag is read under the list's lock, which `shutdown` holds when it sets it: a
        // start racing a shutdown either lands before it (and is stopped) or is refused.
        let mut pipelines = self.lock_pipelines();
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(SupervisorError::ShutDown);
        }
        if pipelines.iter().any(|p| p.pipeline.name == pipeline.name) {
            return Err(SupervisorError::Duplicate(pipeline.name));
        }
        crate::rbac::require("pipeline.control", &pipeline.name)?;
        audit("start", &pipeline.name, None)?;
        let initial = PipelineStatus {
            name: pipeline.name.clone(),
            ..PipelineStatus::default()
        };
        // The snapshot goes in before the run starts, so its relay finds it.
        self.snapshots.send_modify(|all| {
            all.push(PipelineSnapshot {
                status: initial.clone(),
                controllable: true,
                ..PipelineSnapshot::default()
            });
        });
        let run = self.launch(&pipeline, &base_dir, initial);
        pipelines.push(Supervised {
            pipeline,
            base_dir,
            run: Some(run),
        });
        Ok(())
    }

    /// Every pipeline of this process, updated as their statuses change.
    pub fn subscribe(&self) -> watch::Receiver<Vec<PipelineSnapshot>> {
        self.snapshots.subscribe()
    }

    /// The current snapshot of the pipeline called `name`.
    pub fn snapshot(&self, name: &str) -> Option<PipelineSnapshot> {
        self.snapshots
            .borrow()
            .iter()
            .find(|s| s.status.name == name)
            .cloned()
    }

    /// Pause stores what the pipeline has read and stops it (a no-op unless it runs); resume
    /// starts it again from where it stopped (a no-op while it runs); restart stops it if it
    /// runs and starts it again, also after it failed or finished. Returns once the change is
    /// done: a pause waits for the engine to drain.
    pub async fn control(
        self: &Arc<Self>,
        name: &str,
        control: PipelineControl,
    ) -> Result<(), SupervisorError> {
        self.control_as(name, control, &crate::rbac::current())
            .await
    }

    /// [`control`](Self::control) asked by the user of `access`, who needs `pipeline.control`;
    /// the audit record names that user.
    pub async fn control_as(
        self: &Arc<Self>,
        name: &str,
        control: PipelineControl,
        access: &crate::rbac::Access,
    ) -> Result<(), SupervisorError> {
        let _one_at_a_time = self.control_lock.lock().await;
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(SupervisorError::ShutDown);
        }
        let index = self.index_of(name)?;
        if let Err(denied) = access.allow("pipeline.control", name) {
            crate::rbac::record_denial(&denied, Some(&access.actor));
            return Err(denied.into());
        }
        crate::audit::check_writable().map_err(|e| SupervisorError::Audit(e.to_string()))?;
        let current = self
            .snapshots
            .borrow()
            .get(index)
            .cloned()
            .unwrap_or_default();
        match control {
            PipelineControl::Pause => {
                if !current.is_running() {
                    return Ok(());
                }
                // Shown at once: the drain that follows may take a batch's time.
                self.set_paused(index, true);
                self.stop(index).await;
            }
            PipelineControl::Resume => {
                if current.is_running() {
                    return Ok(());
                }
                self.stop(index).await;
                self.relaunch(index);
            }
            PipelineControl::Restart => {
                self.stop(index).await;
                self.relaunch(index);
            }
        }
        audit_by(control.verb(), name, None, Some(&access.actor))
    }

    /// How many pipelines are running (not paused, failed, finished or stopped).
    pub fn running(&self) -> usize {
        self.snapshots
            .borrow()
            .iter()
            .filter(|s| s.is_running())
            .count()
    }

    /// The connection the pipelines write through.
    pub fn warehouse(&self) -> Arc<Warehouse> {
        self.warehouse.clone()
    }

    /// Every pipeline this supervisor owns, with the directory its relative paths resolve
    /// against, in start order.
    pub fn definitions(&self) -> Vec<(Pipeline, PathBuf)> {
        self.lock_pipelines()
            .iter()
            .map(|p| (p.pipeline.clone(), p.base_dir.clone()))
            .collect()
    }

    /// Stops the pipeline called `name` (after it stored what it had read) and forgets it,
    /// for a reload that removed or changed it. Its saved position stays, so a pipeline of
    /// the same name started later continues from it.
    pub async fn remove(&self, name: &str) -> Result<(), SupervisorError> {
        let _one_at_a_time = self.control_lock.lock().await;
        if self.shut_down.load(Ordering::SeqCst) {
            return Err(SupervisorError::ShutDown);
        }
        let index = self.index_of(name)?;
        self.stop(index).await;
        self.lock_pipelines().remove(index);
        self.snapshots.send_modify(|all| {
            all.retain(|s| s.status.name != name);
        });
        audit("stop", name, None)
    }

    /// Stops every pipeline after it stored what it had read, and waits for all of them.
    /// Later `start` and `control` calls are refused.
    pub async fn shutdown(&self) {
        let _one_at_a_time = self.control_lock.lock().await;
        let runs: Vec<RunHandle> = {
            let mut pipelines = self.lock_pipelines();
            self.shut_down.store(true, Ordering::SeqCst);
            pipelines
                .iter_mut()
                .filter_map(|p| {
                    let run = p.run.take()?;
                    // Stopping goes on whatever the log says: a shutdown is not refused.
                    if let Err(e) = audit("stop", &p.pipeline.name, None) {
                        tracing::warn!("{e}");
                    }
                    Some(run)
                })
                .collect()
        };
        // All drain at the same time; then wait for each.
        for run in &runs {
            run.cancel.cancel();
        }
        for run in runs {
            if let Err(e) = run.relay.await {
                tracing::warn!("a pipeline's status relay ended abnormally: {e}");
            }
        }
    }

    /// Where the pipeline called `name` is in the list (and the snapshots).
    fn index_of(&self, name: &str) -> Result<usize, SupervisorError> {
        self.lock_pipelines()
            .iter()
            .position(|p| p.pipeline.name == name)
            .ok_or_else(|| SupervisorError::Unknown(name.to_string()))
    }

    fn lock_pipelines(&self) -> MutexGuard<'_, Vec<Supervised>> {
        // The lock is only held for short bookkeeping that cannot leave the list half-changed,
        // so a panic elsewhere while holding it leaves nothing to repair.
        self.pipelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_paused(&self, index: usize, paused: bool) {
        self.snapshots.send_modify(|all| {
            if let Some(s) = all.get_mut(index) {
                s.paused = paused;
            }
        });
    }

    /// Cancels the pipeline's current run, if any, and waits until it has stored what it read
    /// and its last status is in the snapshots.
    async fn stop(&self, index: usize) {
        let run = self
            .lock_pipelines()
            .get_mut(index)
            .and_then(|p| p.run.take());
        if let Some(run) = run {
            run.cancel.cancel();
            if let Err(e) = run.relay.await {
                tracing::warn!("a pipeline's status relay ended abnormally: {e}");
            }
        }
    }

    /// Starts a new run of a stopped pipeline; its counters carry on from the last run.
    fn relaunch(&self, index: usize) {
        let last = self
            .snapshots
            .borrow()
            .get(index)
            .map(|s| s.status.clone())
            .unwrap_or_default();
        let initial = PipelineStatus {
            state: PipelineState::Starting,
            rows_per_sec: 0.0,
            bytes_per_sec: 0.0,
            ..last
        };
        self.snapshots.send_modify(|all| {
            if let Some(s) = all.get_mut(index) {
                s.paused = false;
                s.status = initial.clone();
            }
        });
        let mut pipelines = self.lock_pipelines();
        if let Some(p) = pipelines.get_mut(index) {
            let run = self.launch(&p.pipeline, &p.base_dir, initial);
            p.run = Some(run);
        }
    }

    /// Spawns one engine run and the relay that folds its statuses into the pipeline's
    /// snapshot.
    fn launch(
        &self,
        pipeline: &Pipeline,
        base_dir: &std::path::Path,
        initial: PipelineStatus,
    ) -> RunHandle {
        let cancel = CancellationToken::new();
        let (status_tx, mut status_rx) = watch::channel(initial);
        let run = PipelineRun {
            pipeline: pipeline.clone(),
            kafka: self.kafka.clone(),
            base_dir: base_dir.to_path_buf(),
            state_dir: self.state_dir.clone(),
            warehouse: self.warehouse.clone(),
        };
        let engine = tokio::spawn(engine::run(run, cancel.clone(), status_tx));
        let snapshots = self.snapshots.clone();
        let name = pipeline.name.clone();
        let relay = tokio::spawn(async move {
            // By name: a reload may remove pipelines before this one, which moves it.
            let fold = |status: PipelineStatus| {
                snapshots.send_modify(|all| {
                    if let Some(s) = all.iter_mut().find(|s| s.status.name == name) {
                        absorb(s, status, crate::ingest::unix_now());
                    }
                });
            };
            // Ends once the engine has dropped its sender, after its last value was seen.
            while status_rx.changed().await.is_ok() {
                let status = status_rx.borrow_and_update().clone();
                fold(status);
            }
            let last = match engine.await {
                Ok(status) => status,
                Err(e) => {
                    let reason = format!("the pipeline task crashed: {e}");
                    PipelineStatus {
                        state: PipelineState::Failed(reason.clone()),
                        last_error: Some(reason),
                        ..status_rx.borrow().clone()
                    }
                }
            };
            fold(last);
        });
        RunHandle { cancel, relay }
    }
}

/// Whether a run in this state has ended (on its own or on request).
fn is_ended(state: &PipelineState) -> bool {
    matches!(
        state,
        PipelineState::Failed(_) | PipelineState::Finished | PipelineState::Stopped
    )
}

/// The trouble a state reports, if any.
fn trouble(state: &PipelineState) -> Option<&str> {
    match state {
        PipelineState::Retrying(reason) | PipelineState::Failed(reason) => Some(reason),
        _ => None,
    }
}

/// Takes a pipeline's new status into its snapshot, and records a new error in
/// `recent_errors`: a changed `last_error`, or trouble (retrying, failed) that was not there
/// before. A status that repeats the same trouble adds nothing.
fn absorb(snapshot: &mut PipelineSnapshot, status: PipelineStatus, now: u64) {
    let previous = &snapshot.status;
    let changed_error = status
        .last_error
        .as_ref()
        .filter(|e| previous.last_error.as_ref() != Some(*e));
    let new_trouble = trouble(&status.state).filter(|r| trouble(&previous.state) != Some(*r));
    if let Some(message) = changed_error.map(String::as_str).or(new_trouble) {
        snapshot.recent_errors.push((now, message.to_string()));
        let excess = snapshot.recent_errors.len().saturating_sub(RECENT_ERRORS);
        snapshot.recent_errors.drain(..excess);
    }
    snapshot.status = status;
}

/// Pipelines run by other processes (`aurora pipeline run`), from their status files.
pub fn external_snapshots(state_dir: &std::path::Path) -> Vec<PipelineSnapshot> {
    crate::ingest::engine::read_statuses(state_dir)
        .into_iter()
        .map(|status| PipelineSnapshot {
            status,
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: PipelineState, last_error: Option<&str>) -> PipelineStatus {
        PipelineStatus {
            name: "p".into(),
            state,
            last_error: last_error.map(str::to_string),
            ..PipelineStatus::default()
        }
    }

    fn messages(s: &PipelineSnapshot) -> Vec<&str> {
        s.recent_errors.iter().map(|(_, m)| m.as_str()).collect()
    }

    #[test]
    fn progress_without_trouble_records_no_error() {
        let mut s = PipelineSnapshot::default();
        absorb(&mut s, status(PipelineState::Starting, None), 1);
        let mut running = status(PipelineState::Running, None);
        running.rows_written = 10;
        absorb(&mut s, running.clone(), 2);
        assert!(s.recent_errors.is_empty());
        assert_eq!(s.status, running);
    }

    #[test]
    fn a_new_error_is_recorded_once_with_its_time() {
        let mut s = PipelineSnapshot::default();
        let retrying = status(PipelineState::Retrying("down".into()), Some("down"));
        absorb(&mut s, retrying.clone(), 5);
        // The same trouble reported again (a lag update while retrying) is not a new error.
        absorb(&mut s, retrying, 6);
        assert_eq!(s.recent_errors, vec![(5, "down".to_string())]);
        // Recovered, then the same trouble again: a second occurrence.
        absorb(&mut s, status(PipelineState::Running, Some("down")), 7);
        absorb(
            &mut s,
            status(PipelineState::Retrying("down".into()), Some("down")),
            8,
        );
        assert_eq!(messages(&s), ["down", "down"]);
        assert_eq!(s.recent_errors[1].0, 8);
    }

    #[test]
    fn failing_with_the_reason_it_was_retrying_for_adds_nothing() {
        let mut s = PipelineSnapshot::default();
        absorb(
            &mut s,
            status(PipelineState::Retrying("x".into()), Some("x")),
            1,
        );
        absorb(
            &mut s,
            status(PipelineState::Failed("x".into()), Some("x")),
            2,
        );
        assert_eq!(messages(&s), ["x"]);
        absorb(
            &mut s,
            status(PipelineState::Failed("y".into()), Some("y")),
            3,
        );
        assert_eq!(messages(&s), ["x", "y"]);
    }

    #[test]
    fn a_changed_last_error_counts_even_while_running() {
        let mut s = PipelineSnapshot::default();
        absorb(&mut s, status(PipelineState::Running, Some("a")), 1);
        absorb(&mut s, status(PipelineState::Running, Some("b")), 2);
        absorb(&mut s, status(PipelineState::Running, Some("b")), 3);
        assert_eq!(messages(&s), ["a", "b"]);
    }

    #[test]
    fn only_the_last_errors_are_kept_oldest_first() {
        let mut s = PipelineSnapshot::default();
        for i in 0..(RECENT_ERRORS as u64 + 5) {
            let e = format!("error {i}");
            absorb(&mut s, status(PipelineState::Running, Some(&e)), i);
        }
        assert_eq!(s.recent_errors.len(), RECENT_ERRORS);
        assert_eq!(s.recent_errors[0], (5, "error 5".to_string()));
        assert_eq!(
            s.recent_errors.last(),
            Some(&(
                RECENT_ERRORS as u64 + 4,
                format!("error {}", RECENT_ERRORS + 4)
            ))
        );
    }

    #[test]
    fn a_snapshot_survives_the_control_apis_json() {
        let mut s = PipelineSnapshot {
            status: status(PipelineState::Retrying("down".into()), Some("down")),
            recent_errors: vec![(7, "down".into())],
            controllable: true,
            paused: false,
        };
        s.status.rows_written = 12;
        s.status.rows_per_sec = 2.5;
        s.status.lag.insert("kafka:t:0".into(), 3);
        s.status.last_batch_latency = Some(std::time::Duration::from_millis(7));
        let text = serde_json::to_string(&s).expect("serialised");
        let back: PipelineSnapshot = serde_json::from_str(&text).expect("read back");
        assert_eq!(back, s);
    }

    #[test]
    fn running_means_started_and_neither_paused_nor_ended() {
        let snap = |state, paused| PipelineSnapshot {
            status: status(state, None),
            paused,
            controllable: true,
            ..PipelineSnapshot::default()
        };
        assert!(snap(PipelineState::Starting, false).is_running());
        assert!(snap(PipelineState::Running, false).is_running());
        assert!(snap(PipelineState::Retrying("x".into()), false).is_running());
        // Paused while still draining: already not running.
        assert!(!snap(PipelineState::Running, true).is_running());
        assert!(!snap(PipelineState::Stopped, true).is_running());
        assert!(!snap(PipelineState::Stopped, false).is_running());
        assert!(!snap(PipelineState::Finished, false).is_running());
        assert!(!snap(PipelineState::Failed("x".into()), false).is_running());
    }
}
