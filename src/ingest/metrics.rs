//! Ingestion counters in the Prometheus/OpenMetrics model, per pipeline: what the status
//! snapshot shows as rates and totals, kept as monotonic counters that a scraper can turn into
//! rates itself. One registry per process ([`global`]); [`render`] gives the text exposition
//! format an HTTP endpoint serves.

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub pipeline: String,
    /// The source stream, e.g. `kafka:events:3`.
    pub source: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

pub struct IngestMetrics {
    registry: Registry,
    pub rows: Family<PipelineLabels, Counter>,
    pub bytes: Family<PipelineLabels, Counter>,
    pub dead_lettered: Family<PipelineLabels, Counter>,
    pub already_stored: Family<PipelineLabels, Counter>,
    pub batches: Family<PipelineLabels, Counter>,
    pub retries: Family<PipelineLabels, Counter>,
    pub lag: Family<StreamLabels, Gauge>,
    pub batch_seconds: Family<PipelineLabels, Histogram, fn() -> Histogram>,
}

impl IngestMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("aurora_ingest");
        let metrics = Self {
            registry: Registry::default(),
            rows: Family::default(),
            bytes: Family::default(),
            dead_lettered: Family::default(),
            already_stored: Family::default(),
            batches: Family::default(),
            retries: Family::default(),
            lag: Family::default(),
            batch_seconds: Family::new_with_constructor(latency_histogram),
        };
        registry.register(
            "rows",
            "Rows stored in the target table",
            metrics.rows.clone(),
        );
        registry.register(
            "bytes",
            "Bytes of rows stored in the target table",
            metrics.bytes.clone(),
        );
        registry.register(
            "dead_lettered",
            "Records sent to the dead-letter table",
            metrics.dead_lettered.clone(),
        );
        registry.register(
            "already_stored",
            "Records skipped because an earlier run had stored them",
            metrics.already_stored.clone(),
        );
        registry.register("batches", "Batches stored", metrics.batches.clone());
        registry.register(
            "retries",
            "ClickHouse writes retried after a transient error",
            metrics.retries.clone(),
        );
        registry.register(
            "lag",
            "Records not yet consumed, per source stream (Kafka partition)",
            metrics.lag.clone(),
        );
        registry.register(
            "batch_seconds",
            "Time to store one batch, retries included",
            metrics.batch_seconds.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    pub fn labels(pipeline: &str) -> PipelineLabels {
        PipelineLabels {
            pipeline: pipeline.to_string(),
        }
    }
}

/// The process's ingestion metrics.
pub fn global() -> &'static IngestMetrics {
    static METRICS: OnceLock<IngestMetrics> = OnceLock::new();
    METRICS.get_or_init(IngestMetrics::new)
}

/// Every metric in the OpenMetrics text format.
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &global().registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_exposed_per_pipeline() {
        let m = global();
        let labels = IngestMetrics::labels("unit-test");
        m.rows.get_or_create(&labels).inc_by(42);
        m.batch_seconds.get_or_create(&labels).observe(0.02);
        m.lag
            .get_or_create(&StreamLabels {
                pipeline: "unit-test".into(),
                source: "kafka:t:0".into(),
            })
            .set(7);
        let text = render();
        assert!(
            text.contains("aurora_ingest_rows_total{pipeline=\"unit-test\"} 42"),
            "{text}"
        );
        assert!(text.contains("# TYPE aurora_ingest_batch_seconds histogram"));
        assert!(text.contains("aurora_ingest_lag{pipeline=\"unit-test\",source=\"kafka:t:0\"} 7"));
        assert!(text.ends_with("# EOF\n"));
    }
}
