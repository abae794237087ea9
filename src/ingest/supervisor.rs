//! The supervisor: runs several pipelines in this process and lets a front end pause, resume
//! and restart them. Each pipeline runs on the engine (`engine::run`); their statuses are
//! merged into one `watch` of snapshots (latest value wins) that the TUI's Pipelines view reads.
//! INTERFACE ONLY: the implementation is being written (see the issue 5 work).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::KafkaConfig;
use crate::ingest::engine::PipelineStatus;
use crate::ingest::pipeline::Pipeline;
use crate::warehouse::Warehouse;

/// One pipeline as a front end shows it.
#[derive(Debug, Clone, Default, PartialEq)]
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

pub const RECENT_ERRORS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipelineControl {
    Pause,
    Resume,
    Restart,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no pipeline named `{0}` runs in this process")]
    Unknown(String),
}

pub struct Supervisor {
    snapshots: watch::Sender<Vec<PipelineSnapshot>>,
    #[allow(dead_code)]
    warehouse: Arc<Warehouse>,
    #[allow(dead_code)]
    kafka: KafkaConfig,
    #[allow(dead_code)]
    state_dir: PathBuf,
}

impl Supervisor {
    pub fn new(warehouse: Arc<Warehouse>, kafka: KafkaConfig, state_dir: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            snapshots: watch::channel(Vec::new()).0,
            warehouse,
            kafka,
            state_dir,
        })
    }

    /// Starts `pipeline` on background tasks; relative paths in it resolve against `base_dir`.
    pub fn start(self: &Arc<Self>, _pipeline: Pipeline, _base_dir: PathBuf) {}

    /// Every pipeline of this process, updated as their statuses change.
    pub fn subscribe(&self) -> watch::Receiver<Vec<PipelineSnapshot>> {
        self.snapshots.subscribe()
    }

    pub async fn control(
        self: &Arc<Self>,
        name: &str,
        _control: PipelineControl,
    ) -> Result<(), SupervisorError> {
        Err(SupervisorError::Unknown(name.to_string()))
    }

    /// How many pipelines are running (not paused, failed or finished).
    pub fn running(&self) -> usize {
        0
    }

    /// Stops every pipeline after it stored what it had read.
    pub async fn shutdown(&self) {}
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
