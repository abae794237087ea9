//! Everything Aurora counts, in the Prometheus/OpenMetrics model: per pipeline (records read,
//! rows written, dead letters, retries, errors by stage, batch latency and size, lag, state),
//! and for the process (build, uptime, memory, queries run, questions asked, alerts and their
//! notifications). One registry per process ([`global`]); [`render`] gives the text
//! exposition format that `aurora serve` answers `/metrics` with.
//!
//! Names follow Prometheus' conventions: an `aurora_` prefix, base units (seconds, bytes),
//! `_total` on counters. Labels never carry SQL text or user names: only pipeline, source
//! stream, stage, state, outcome, rule and notifier names from the configuration.

use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    pub pipeline: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct StreamLabels {
    pub pipeline: String,
    /// The source stream, e.g. `kafka:events:3`.
    pub source: String,
}

/// Where in a pipeline an error happened.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Stage {
    /// Reading the source: a broker, a file, a database.
    Source,
    /// Writing to ClickHouse (each retried attempt counts).
    Sink,
    /// Saving the source position after a stored batch.
    Position,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Sink => "sink",
            Stage::Position => "position",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub pipeline: String,
    pub stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WarningLabels {
    pub pipeline: String,
    /// What happened, one of [`WARNING_KINDS`].
    pub kind: &'static str,
}

/// The kinds of pipeline warnings: a file replaced or truncated under a CSV source, a Kafka
/// partition whose offsets went back, records found stored that no restart explains.
pub const WARNING_KINDS: [&str; 4] = [
    "file_replaced",
    "file_truncated",
    "offsets_went_back",
    "unexplained_already_stored",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub pipeline: String,
    pub state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifierLabels {
    pub notifier: String,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// The states `aurora_pipeline_state` has one series for, one of them 1 at a time.
pub const PIPELINE_STATES: [&str; 7] = [
    "starting", "running", "retrying", "paused", "failed", "finished", "stopped",
];

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn rows_histogram() -> Histogram {
    // 1 .. ~1M rows
    Histogram::new(exponential_buckets(1.0, 4.0, 11))
}

pub struct Metrics {
    registry: Registry,
    pub records_read: Family<PipelineLabels, Counter>,
    pub rows: Family<PipelineLabels, Counter>,
    pub bytes: Family<PipelineLabels, Counter>,
    pub dead_lettered: Family<PipelineLabels, Counter>,
    pub already_stored: Family<PipelineLabels, Counter>,
    pub batches: Family<PipelineLabels, Counter>,
    pub retries: Family<PipelineLabels, Counter>,
    pub columns_added: Family<PipelineLabels, Counter>,
    errors: Family<StageLabels, Counter>,
    warnings: Family<WarningLabels, Counter>,
    lag: Family<StreamLabels, Gauge>,
    /// The streams `lag` has a series for, so a removed pipeline's can be dropped.
    lag_streams: std::sync::Mutex<std::collections::BTreeSet<StreamLabels>>,
    pub last_success: Family<PipelineLabels, FloatGauge>,
    pub state: Family<StateLabels, Gauge>,
    pub batch_seconds: Family<PipelineLabels, Histogram, fn() -> Histogram>,
    pub batch_rows: Family<PipelineLabels, Histogram, fn() -> Histogram>,
    queries: Family<OutcomeLabels, Counter>,
    questions: Family<OutcomeLabels, Counter>,
    pub alerts_firing: Family<RuleLabels, Gauge>,
    pub alert_evaluations: Family<RuleLabels, Counter>,
    pub alert_evaluation_failures: Family<RuleLabels, Counter>,
    pub notifications: Family<NotifierLabels, Counter>,
    pub config_reload_ok: Gauge,
    pub config_reload_time: FloatGauge,
    uptime: FloatGauge,
    start_time: FloatGauge,
    resident_memory: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let m = Self {
            registry: Registry::default(),
            records_read: Family::default(),
            rows: Family::default(),
            bytes: Family::default(),
            dead_lettered: Family::default(),
            already_stored: Family::default(),
            batches: Family::default(),
            retries: Family::default(),
            columns_added: Family::default(),
            errors: Family::default(),
            warnings: Family::default(),
            lag: Family::default(),
            lag_streams: std::sync::Mutex::default(),
            last_success: Family::default(),
            state: Family::default(),
            batch_seconds: Family::new_with_constructor(latency_histogram),
            batch_rows: Family::new_with_constructor(rows_histogram),
            queries: Family::default(),
            questions: Family::default(),
            alerts_firing: Family::default(),
            alert_evaluations: Family::default(),
            alert_evaluation_failures: Family::default(),
            notifications: Family::default(),
            config_reload_ok: Gauge::default(),
            config_reload_time: FloatGauge::default(),
            uptime: FloatGauge::default(),
            start_time: FloatGauge::default(),
            resident_memory: Gauge::default(),
        };
        let mut registry = Registry::default();
        // The process collector's standard names, unprefixed, so ready-made dashboards work.
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            m.start_time.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            m.resident_memory.clone(),
        );
        let aurora = registry.sub_registry_with_prefix("aurora");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        aurora.register("build_info", "Aurora's version, as a label", build);
        aurora.register(
            "uptime_seconds",
            "Seconds since the process started",
            m.uptime.clone(),
        );
        let counters: [(&str, &str, &Family<PipelineLabels, Counter>); 8] = [
            (
                "pipeline_records_read",
                "Records taken from the source and handed to the writer",
                &m.records_read,
            ),
            (
                "pipeline_rows_written",
                "Rows stored in the target table",
                &m.rows,
            ),
            (
                "pipeline_bytes_written",
                "Bytes of rows stored in the target table",
                &m.bytes,
            ),
            (
                "pipeline_dead_lettered",
                "Records sent to the dead-letter table, with their reason",
                &m.dead_lettered,
            ),
            (
                "pipeline_already_stored",
                "Records skipped because an earlier run had stored them",
                &m.already_stored,
            ),
            ("pipeline_batches", "Batches stored", &m.batches),
            (
                "pipeline_retries",
                "ClickHouse writes retried after a transient error",
                &m.retries,
            ),
            (
                "pipeline_columns_added",
                "Columns added to the target table by schema evolution (evolve: add_columns)",
                &m.columns_added,
            ),
        ];
        for (name, help, family) in counters {
            aurora.register(name, help, family.clone());
        }
        aurora.register(
            "pipeline_errors",
            "Errors by stage: source (reading), sink (writing to ClickHouse, each attempt), \
             position (saving the source position)",
            m.errors.clone(),
        );
        aurora.register(
            "pipeline_warnings",
            "Events that lose nothing but need a look, by kind: file_replaced, file_truncated, \
             offsets_went_back, unexplained_already_stored",
            m.warnings.clone(),
        );
        aurora.register(
            "pipeline_lag_records",
            "Records not yet consumed, per source stream (Kafka partition)",
            m.lag.clone(),
        );
        aurora.register(
            "pipeline_last_success_timestamp_seconds",
            "When the pipeline last stored a batch, since the Unix epoch",
            m.last_success.clone(),
        );
        aurora.register(
            "pipeline_state",
            "The pipeline's state: 1 for the current one of starting, running, retrying, \
             paused, failed, finished, stopped",
            m.state.clone(),
        );
        aurora.register(
            "pipeline_batch_duration_seconds",
            "Time to store one batch, retries included",
            m.batch_seconds.clone(),
        );
        aurora.register(
            "pipeline_batch_rows",
            "Records per batch handed to the writer",
            m.batch_rows.clone(),
        );
        aurora.register(
            "queries",
            "ClickHouse queries started, by outcome (ok, error)",
            m.queries.clone(),
        );
        aurora.register(
            "questions",
            "Questions asked of the assistant, by outcome (answered, failed, cancelled)",
            m.questions.clone(),
        );
        aurora.register(
            "alerts_firing",
            "1 while the alert rule fires",
            m.alerts_firing.clone(),
        );
        aurora.register(
            "alert_evaluations",
            "Evaluations of the alert rule",
            m.alert_evaluations.clone(),
        );
        aurora.register(
            "alert_evaluation_failures",
            "Evaluations of the alert rule that failed (the query or metric could not be read)",
            m.alert_evaluation_failures.clone(),
        );
        aurora.register(
            "notifications",
            "Alert notifications by notifier and outcome (sent, failed; each attempt)",
            m.notifications.clone(),
        );
        aurora.register(
            "config_last_reload_successful",
            "1 when the last configuration reload succeeded",
            m.config_reload_ok.clone(),
        );
        aurora.register(
            "config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully, since the Unix epoch",
            m.config_reload_time.clone(),
        );
        Self { registry, ..m }
    }

    pub fn labels(pipeline: &str) -> PipelineLabels {
        PipelineLabels {
            pipeline: pipeline.to_string(),
        }
    }

    /// Counts an error of `pipeline` at `stage`.
    pub fn error(&self, pipeline: &str, stage: Stage) {
        self.errors
            .get_or_create(&StageLabels {
                pipeline: pipeline.to_string(),
                stage: stage.name(),
            })
            .inc();
    }

    /// Counts a warning of `pipeline` (`kind` one of [`WARNING_KINDS`]).
    pub fn warning(&self, pipeline: &str, kind: &'static str) {
        self.warnings
            .get_or_create(&WarningLabels {
                pipeline: pipeline.to_string(),
                kind,
            })
            .inc();
    }

    /// Sets the one-hot `aurora_pipeline_state` of `pipeline` to `state` (one of
    /// [`PIPELINE_STATES`]).
    pub fn set_state(&self, pipeline: &str, state: &str) {
        for s in PIPELINE_STATES {
            self.state
                .get_or_create(&StateLabels {
                    pipeline: pipeline.to_string(),
                    state: s,
                })
                .set(i64::from(s == state));
        }
    }

    /// Drops every series of a pipeline that no longer exists (removed by a reload), so
    /// Prometheus sees it end instead of freezing at its last value.
    pub fn forget_pipeline(&self, pipeline: &str) {
        let labels = Self::labels(pipeline);
        for family in [
            &self.records_read,
            &self.rows,
            &self.bytes,
            &self.dead_lettered,
            &self.already_stored,
            &self.batches,
            &self.retries,
            &self.columns_added,
        ] {
            family.remove(&labels);
        }
        self.last_success.remove(&labels);
        self.batch_seconds.remove(&labels);
        self.batch_rows.remove(&labels);
        for s in PIPELINE_STATES {
            self.state.remove(&StateLabels {
                pipeline: pipeline.to_string(),
                state: s,
            });
        }
        for kind in WARNING_KINDS {
            self.warnings.remove(&WarningLabels {
                pipeline: pipeline.to_string(),
                kind,
            });
        }
        for stage in [Stage::Source, Stage::Sink, Stage::Position] {
            self.errors.remove(&StageLabels {
                pipeline: pipeline.to_string(),
                stage: stage.name(),
            });
        }
        // Lag series are keyed by stream too.
        let mut streams = self.lag_streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.retain(|l| {
            let stale = l.pipeline == pipeline;
            if stale {
                self.lag.remove(l);
            }
            !stale
        });
    }

    /// Sets the lag of one source stream of `pipeline`.
    pub fn set_lag(&self, pipeline: &str, source: &str, records: u64) {
        let labels = StreamLabels {
            pipeline: pipeline.to_string(),
            source: source.to_string(),
        };
        self.lag
            .get_or_create(&labels)
            .set(i64::try_from(records).unwrap_or(i64::MAX));
        let mut streams = self.lag_streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.insert(labels);
    }

    pub fn query_done(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.queries.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// `outcome`: answered, failed or cancelled.
    pub fn question_done(&self, outcome: &'static str) {
        self.questions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Every metric in the OpenMetrics text format, the process gauges read now.
pub fn render() -> String {
    let m = global();
    let up = crate::telemetry::since_process_start();
    m.uptime.set(up.as_secs_f64());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    m.start_time
        .set(now.saturating_sub(up).as_secs_f64().floor());
    if let Some(kib) = crate::telemetry::rss_kib() {
        m.resident_memory
            .set(i64::try_from(kib.saturating_mul(1024)).unwrap_or(i64::MAX));
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
    out
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_exposed_per_pipeline() {
        let m = global();
        let labels = Metrics::labels("unit-test");
        m.rows.get_or_create(&labels).inc_by(42);
        m.batch_seconds.get_or_create(&labels).observe(0.02);
        m.set_lag("unit-test", "kafka:t:0", 7);
        m.error("unit-test", Stage::Sink);
        m.set_state("unit-test", "retrying");
        let text = render();
        assert!(
            text.contains("aurora_pipeline_rows_written_total{pipeline=\"unit-test\"} 42"),
            "{text}"
        );
        assert!(text.contains("# TYPE aurora_pipeline_batch_duration_seconds histogram"));
        assert!(text.contains(
            "aurora_pipeline_lag_records{pipeline=\"unit-test\",source=\"kafka:t:0\"} 7"
        ));
        assert!(
            text.contains("aurora_pipeline_errors_total{pipeline=\"unit-test\",stage=\"sink\"} 1")
        );
        assert!(text.contains("aurora_pipeline_state{pipeline=\"unit-test\",state=\"retrying\"} 1"));
        assert!(text.contains("aurora_pipeline_state{pipeline=\"unit-test\",state=\"running\"} 0"));
        assert!(text.contains("aurora_build_info{version=\""), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_removed_pipeline_leaves_no_series() {
        let m = global();
        let labels = Metrics::labels("removed-test");
        m.rows.get_or_create(&labels).inc();
        m.set_state("removed-test", "running");
        m.set_lag("removed-test", "kafka:t:1", 3);
        assert!(render().contains("removed-test"));
        m.forget_pipeline("removed-test");
        let text = render();
        assert!(!text.contains("removed-test"), "{text}");
    }
}
