//! The zero-configuration demo. `sample` loads a week of an online shop's clickstream into
//! `demo.events`; `LiveDemo` then keeps that shop open: a generator (`generator`) produces its
//! visitors' events into Kafka (`broker`, librdkafka's mock cluster in this process) and a
//! `Supervisor` runs the `demo-clickstream` pipeline from Kafka into the same `demo.events`,
//! with a dead-letter table for what the generator spoils on purpose. Both front ends use it:
//! `aurora demo --headless` prints its progress, the TUI shows it in its Pipelines view.
//!
//! Every run is fresh: a new broker, a new topic (so the table's exactly-once bookkeeping from
//! earlier runs, keyed by topic and partition, never matches this run's offsets), a new
//! consumer group and a private state directory.

pub mod broker;
pub mod generator;
pub mod sample;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::KafkaConfig;
use crate::ingest::pipeline::{check_str, Pipeline, Source};
use crate::ingest::sinks::clickhouse::{OFFSET_COLUMN, SOURCE_COLUMN};
use crate::ingest::supervisor::{PipelineSnapshot, Supervisor, SupervisorError};
use crate::warehouse::{Warehouse, WarehouseError};

use self::broker::MockKafka;
use self::generator::{ClickstreamOptions, ClickstreamProducer, GeneratorCounts};

pub use self::sample::{load_sample, SAMPLE_QUERY};

/// The demo pipeline, embedded; `LiveDemo` fills in the brokers and topic of the run.
pub const PIPELINE_PRESET: &str = include_str!("../../presets/pipelines/demo-clickstream.yaml");
pub const PIPELINE_NAME: &str = "demo-clickstream";
pub const EVENTS_TABLE: &str = "demo.events";
/// The assistant config a user of the demo shop would write (`assets/demo/assistant.yaml`).
const ASSISTANT_CONFIG: &str = include_str!("../../assets/demo/assistant.yaml");

/// Adds the demo data's synonyms (`assets/demo/assistant.yaml`) to an assistant config, under
/// any the user wrote for the same keys.
/// The demo's dashboards for the workspace: the clickstream (the `web-events` template fitted
/// to `demo.events` as any table would be) and the pipeline (`aurora-pipelines`). A template
/// that cannot be fitted is left out, with why in the log.
pub async fn dashboards(warehouse: &Warehouse) -> Vec<(String, crate::dashboards::Dashboard)> {
    use crate::dashboards::{bind, library, timerange};
    let templates = library::builtin_templates();
    let template = |name: &str| {
        templates
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.dashboard)
    };
    let mut out = Vec::new();
    let events = async {
        let schema = warehouse.schema(false).await.ok()?;
        let table = schema.table("demo.events", "demo")?.clone();
        let profile = crate::warehouse::profile::profile(warehouse, &table)
            .await
            .ok()?;
        let t = template("web-events")?;
        let fit = bind::fit("web-events", t, &table, &profile, &Default::default()).ok()?;
        fit.fits
            .then(|| bind::deploy(t, &fit, &table, &profile, timerange::now()))
    };
    match events.await {
        Some(mut d) => {
            // The live stream: a short range, refreshed often.
            d.time.from = "now-15m".into();
            d.time.to = "now".into();
            d.refresh = Some(Duration::from_secs(5));
            out.push(("demo-clickstream".to_owned(), d));
        }
        None => tracing::warn!("the demo's clickstream dashboard could not be fitted"),
    }
    if let Some(t) = template("aurora-pipelines") {
        let mut d = t.clone();
        d.template = None;
        d.refresh = Some(Duration::from_secs(5));
        out.push(("demo-pipeline".to_owned(), d));
    }
    out
}

pub fn add_assistant_config(config: &mut crate::config::AssistantConfig) {
    #[derive(serde::Deserialize)]
    struct DemoAssistant {
        synonyms: indexmap::IndexMap<String, Vec<String>>,
    }
    match serde_yaml::from_str::<DemoAssistant>(ASSISTANT_CONFIG) {
        Ok(demo) => {
            for (key, words) in demo.synonyms {
                config.synonyms.entry(key).or_insert(words);
            }
        }
        // The file is embedded: a broken one is caught by the test below, never by a user.
        Err(e) => tracing::warn!("assets/demo/assistant.yaml: {e}"),
    }
}
pub const REJECTED_TABLE: &str = "demo.events_rejected";

/// Partitions of the demo topic: several, so the pipeline's lag shows per partition.
const PARTITIONS: i32 = 4;
/// How long shutting down waits for the pipeline to store what was produced.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("creating the demo schema failed at:\n{statement}\n{error}")]
    Schema {
        statement: String,
        error: WarehouseError,
    },
    #[error("table {0} does not exist; load the sample data set first (`aurora demo` does)")]
    MissingTable(String),
    #[error("the demo's Kafka: {0}")]
    Kafka(String),
    #[error("the demo pipeline preset does not load (a bug):\n{0}")]
    Preset(String),
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error("cannot create the demo's state directory {path}: {error}")]
    StateDir {
        path: PathBuf,
        error: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveDemoOptions {
    /// Events per second at an average hour of the day.
    pub rate_per_sec: f64,
    /// Seeds the generator; `None`: from the clock.
    pub seed: Option<u64>,
    /// Where the pipeline keeps its status; `None`: a temporary directory, removed at the end.
    pub state_dir: Option<PathBuf>,
}

impl Default for LiveDemoOptions {
    fn default() -> Self {
        Self {
            rate_per_sec: 200.0,
            seed: None,
            state_dir: None,
        }
    }
}

/// How a live demo ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveDemoReport {
    pub generated: GeneratorCounts,
    /// The demo pipeline's last snapshot.
    pub pipeline: PipelineSnapshot,
    pub brokers: String,
    pub topic: String,
}

/// The running live demo: broker, generator and pipeline. End it with `shutdown`.
pub struct LiveDemo {
    supervisor: Arc<Supervisor>,
    generator: ClickstreamProducer,
    broker: MockKafka,
    brokers: String,
    topic: String,
    state_dir: PathBuf,
    /// The state directory is a temporary one of this run, removed at the end.
    own_state_dir: bool,
}

impl LiveDemo {
    /// Starts the broker, the pipeline into `demo.events` and the generator. The sample must
    /// be loaded (`load_sample`): the pipeline writes into its table.
    pub async fn start(
        warehouse: Arc<Warehouse>,
        options: LiveDemoOptions,
    ) -> Result<LiveDemo, DemoError> {
        add_bookkeeping_columns(&warehouse).await?;
        let run_millis = unix_millis();
        let topic = format!("clickstream-{run_millis}");
        let broker = {
            let topic = topic.clone();
            tokio::task::spawn_blocking(move || MockKafka::start(&topic, PARTITIONS))
                .await
                .map_err(|e| DemoError::Kafka(format!("the broker start task failed: {e}")))??
        };
        let brokers = broker.bootstrap_servers().to_string();
        let pipeline = demo_pipeline(&brokers, &topic, run_millis)?;
        let (state_dir, own_state_dir) = match options.state_dir {
            Some(dir) => (dir, false),
            None => (
                std::env::temp_dir()
                    .join(format!("aurora-demo-{}-{run_millis}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&state_dir).map_err(|error| DemoError::StateDir {
            path: state_dir.clone(),
            error,
        })?;
        // Only this run's broker: the user's `kafka.properties` (SASL for their own cluster,
        // say) do not apply to it.
        let kafka = KafkaConfig {
            brokers: vec![brokers.clone()],
            client_id: "aurora-demo".into(),
            properties: Default::default(),
        };
        let supervisor = Supervisor::new(warehouse, kafka, state_dir.clone());
        supervisor.start(pipeline, state_dir.clone())?;
        let generator = match ClickstreamProducer::start(
            &brokers,
            &topic,
            ClickstreamOptions {
                rate_per_sec: options.rate_per_sec,
                seed: options.seed.unwrap_or(run_millis),
                // Unique across runs (a run makes far fewer than a million events per
                // millisecond between its start and the next run's), and far above the
                // sample's ids.
                first_event_id: run_millis.saturating_mul(1_000_000),
                ..ClickstreamOptions::default()
            },
        ) {
            Ok(g) => g,
            Err(e) => {
                supervisor.shutdown().await;
                return Err(e);
            }
        };
        Ok(LiveDemo {
            supervisor,
            generator,
            broker,
            brokers,
            topic,
            state_dir,
            own_state_dir,
        })
    }

    /// The supervisor running the demo pipeline, for pause, resume and restart.
    pub fn supervisor(&self) -> Arc<Supervisor> {
        self.supervisor.clone()
    }

    /// The broker's bootstrap address (`127.0.0.1:PORT`), reachable by other clients too.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn generator_counts(&self) -> GeneratorCounts {
        self.generator.counts()
    }

    /// The demo pipeline's current snapshot.
    pub fn pipeline(&self) -> PipelineSnapshot {
        self.supervisor.snapshot(PIPELINE_NAME).unwrap_or_default()
    }

    /// Stops the generator, lets a running pipeline store what was produced (up to a few
    /// seconds), stops the pipeline and the broker.
    pub async fn shutdown(self) -> LiveDemoReport {
        let LiveDemo {
            supervisor,
            generator,
            broker,
            brokers,
            topic,
            state_dir,
            own_state_dir,
        } = self;
        let generated = tokio::task::spawn_blocking(move || generator.stop())
            .await
            .unwrap_or_default();
        drain(&supervisor, generated.produced).await;
        supervisor.shutdown().await;
        let pipeline = supervisor.snapshot(PIPELINE_NAME).unwrap_or_default();
        // The consumer is gone; the broker can go.
        let _ = tokio::task::spawn_blocking(move || broker.stop()).await;
        if own_state_dir {
            let _ = std::fs::remove_dir_all(&state_dir);
        }
        LiveDemoReport {
            generated,
            pipeline,
            brokers,
            topic,
        }
    }
}

/// Waits until the pipeline has dealt with `produced` messages (stored or dead-lettered), or
/// stopped running, or `DRAIN_TIMEOUT` passed: the totals then add up at the end.
async fn drain(supervisor: &Supervisor, produced: u64) {
    let mut snapshots = supervisor.subscribe();
    let done = |all: &[PipelineSnapshot]| {
        all.iter()
            .find(|s| s.status.name == PIPELINE_NAME)
            .is_none_or(|s| {
                !s.is_running() || s.status.rows_written + s.status.dead_lettered >= produced
            })
    };
    let waited = tokio::time::timeout(DRAIN_TIMEOUT, async {
        loop {
            if done(&snapshots.borrow_and_update()) {
                return;
            }
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    if waited.is_err() {
        tracing::warn!("the demo pipeline had not stored everything produced after {DRAIN_TIMEOUT:?}; stopping it anyway");
    }
}

/// The embedded demo pipeline, reading `topic` on `brokers`.
fn demo_pipeline(brokers: &str, topic: &str, run_millis: u64) -> Result<Pipeline, DemoError> {
    let mut pipelines = check_str("demo-clickstream.yaml", PIPELINE_PRESET)
        .map_err(|d| DemoError::Preset(crate::config::render_all(&d, Some(PIPELINE_PRESET))))?;
    let mut pipeline = pipelines
        .pop()
        .ok_or_else(|| DemoError::Preset("it defines no pipeline".into()))?;
    let Source::Kafka(kafka) = &mut pipeline.source else {
        return Err(DemoError::Preset("its source is not Kafka".into()));
    };
    kafka.brokers = vec![brokers.to_string()];
    kafka.topic = Some(topic.to_string());
    kafka.topics.clear();
    kafka.group = Some(format!("aurora-demo-{run_millis}"));
    Ok(pipeline)
}

/// `demo.events` as the sample creates it has no exactly-once bookkeeping columns; the live
/// pipeline needs them. Added once; the assistant and the tour leave `_aurora_*` columns out.
pub async fn add_bookkeeping_columns(warehouse: &Warehouse) -> Result<(), DemoError> {
    let missing = missing_bookkeeping(warehouse).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let adds: Vec<String> = missing
        .iter()
        .map(|column| {
            if *column == SOURCE_COLUMN {
                format!("ADD COLUMN {column} String DEFAULT ''")
            } else {
                format!("ADD COLUMN {column} UInt64 DEFAULT 0")
            }
        })
        .collect();
    let alter = format!("ALTER TABLE {EVENTS_TABLE} {}", adds.join(", "));
    if let Err(e) = warehouse.execute(&alter).await {
        // Another demo may have added them at the same moment.
        if !missing_bookkeeping(warehouse).await?.is_empty() {
            return Err(e.into());
        }
    }
    Ok(())
}

async fn missing_bookkeeping(warehouse: &Warehouse) -> Result<Vec<&'static str>, DemoError> {
    let schema = warehouse.schema(true).await?;
    let table = schema
        .table(EVENTS_TABLE, "demo")
        .ok_or_else(|| DemoError::MissingTable(EVENTS_TABLE.into()))?;
    Ok([SOURCE_COLUMN, OFFSET_COLUMN]
        .into_iter()
        .filter(|c| !table.columns.iter().any(|col| col.name == *c))
        .collect())
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_brings_its_synonyms_under_the_users() {
        let mut config = crate::config::Config::default().assistant;
        config.synonyms.insert(
            "demo.events.event_type = purchase".into(),
            vec!["order".into()],
        );
        add_assistant_config(&mut config);
        assert_eq!(
            config.synonyms["demo.events.event_type = purchase"],
            ["order"]
        );
        let mut config = crate::config::Config::default().assistant;
        add_assistant_config(&mut config);
        assert!(config.synonyms["demo.events.event_type = purchase"].contains(&"sold".into()));
    }

    #[test]
    fn the_preset_becomes_this_runs_pipeline() {
        let p = demo_pipeline("127.0.0.1:1234", "clickstream-7", 7).unwrap();
        assert_eq!(p.name, PIPELINE_NAME);
        assert_eq!(p.sink.table, EVENTS_TABLE);
        assert_eq!(
            p.dead_letter.as_ref().map(|d| d.table.as_str()),
            Some(REJECTED_TABLE)
        );
        assert_eq!(p.delivery, crate::ingest::pipeline::Delivery::ExactlyOnce);
        let Source::Kafka(k) = &p.source else {
            panic!("a Kafka source")
        };
        assert_eq!(k.brokers, ["127.0.0.1:1234"]);
        assert_eq!(k.topic.as_deref(), Some("clickstream-7"));
        assert_eq!(k.group.as_deref(), Some("aurora-demo-7"));
    }
}
