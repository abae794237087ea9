//! `aurora size`: what a workload needs (ClickHouse vCPU, memory and disk, Kafka partitions,
//! Aurora daemons, batch size and flush interval), each figure with the rule it came from.
//! Pure arithmetic over [`Workload`]; the command fills the workload from flags, a running
//! pipeline's measured rates, or a table's measured compression.

use serde::Serialize;

/// What the user expects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub events_per_second: f64,
    /// Uncompressed, as the source sends it (a JSON message, a CSV line).
    pub bytes_per_event: f64,
    pub retention_days: f64,
    /// Copies of the data (ClickHouse replicas).
    pub replicas: u32,
    pub queries_per_second: f64,
    /// Raw bytes ÷ stored bytes; `None`: the documented default.
    pub compression: Option<f64>,
}

/// One figure and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    /// How it was computed, with the numbers put in.
    pub how: String,
    /// The documented guidance or measurement it rests on.
    pub source: &'static str,
}

/// ClickHouse's estimate for observability data: 1 vCPU per 10 MB/s of sustained
/// (uncompressed) ingest, and for queries 1 vCPU per query per second plus 1 per 10 MB/s;
/// storage assumes 10× compression.
pub const CLICKSTACK: &str = "ClickHouse docs, \"Estimating resources\" (ClickStack): 1 vCPU per \
10 MB/s of sustained ingest; 1 vCPU per 1 QPS and per 10 MB/s for queries; 10x compression \
assumed (clickhouse.com/docs/use-cases/observability/clickstack/estimating-resources)";
pub const STORAGE: &str = "ClickHouse docs, installation \"Estimating storage requirements\": \
volume x compression coefficient x replicas; clickstream typically compresses 6-10x";
pub const MEMORY: &str = "ClickHouse docs, \"Usage recommendations\" (operations/tips): up to \
~200 GB of compressed data, as much RAM as data; more data and interactive queries, 128 GB or \
more; under 16 GB of RAM expect memory errors, 32 GB or more recommended";
pub const BATCH: &str = "ClickHouse docs, \"Bulk inserts\": batches of at least 1,000 rows, \
ideally 10,000-100,000, and around one insert per second";
pub const PARTITIONS: &str = "Confluent, \"How to choose the number of topics/partitions in a \
Kafka cluster\" (J. Rao): partitions >= max(t/p, t/c) for target throughput t and per-partition \
produce p and consume c throughput; tens of MB/s per partition is typical (10 MB/s assumed)";
pub const AURORA_RATE: &str = "Aurora's bench/ingest (docs/testing.md, 2026-11-24): about 5.7 us \
of CPU per event stored (perf), i.e. about 175,000 events/s per core; daemons sized at 50% of \
2 cores";
pub const HEADROOM: &str = "Aurora's assumption: merges rewrite parts and need free space, so \
disks are sized to stay below 80% full";

/// Aurora's measured rate: events stored per second per core (see [`AURORA_RATE`]).
pub const AURORA_EVENTS_PER_CORE: f64 = 175_000.0;
/// Cores a daemon is sized for, and the share of them it should use at the target rate.
const DAEMON_CORES: f64 = 2.0;
const DAEMON_UTILISATION: f64 = 0.5;
const DEFAULT_COMPRESSION: f64 = 10.0;
const MB: f64 = 1_000_000.0;
const GB: f64 = 1_000_000_000.0;
const PARTITION_MB_PER_S: f64 = 10.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sizing {
    pub workload: Workload,
    pub figures: Vec<Figure>,
}

impl Sizing {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.figures
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value)
    }
}

fn round_up(x: f64) -> f64 {
    x.max(0.0).ceil()
}

/// Every figure for `w`.
pub fn size(w: &Workload) -> Sizing {
    let mut figures = Vec::new();
    let compression = w
        .compression
        .filter(|c| *c > 0.0)
        .unwrap_or(DEFAULT_COMPRESSION);
    let replicas = f64::from(w.replicas.max(1));
    let raw_mb_s = w.events_per_second * w.bytes_per_event / MB;
    let raw_gb_day = w.events_per_second * w.bytes_per_event * 86_400.0 / GB;
    figures.push(Figure {
        name: "ingest_mb_per_second",
        value: raw_mb_s,
        unit: "MB/s",
        how: format!(
            "{} events/s x {} bytes",
            w.events_per_second, w.bytes_per_event
        ),
        source: "your workload",
    });
    let stored_gb = raw_gb_day * w.retention_days / compression;
    figures.push(Figure {
        name: "clickhouse_data_gb_per_replica",
        value: stored_gb,
        unit: "GB",
        how: format!(
            "{raw_gb_day:.1} GB/day raw x {} days / {compression}x compression{}",
            w.retention_days,
            if w.compression.is_some() {
                " (given or measured)"
            } else {
                " (default: ClickHouse's ClickStack estimate)"
            }
        ),
        source: STORAGE,
    });
    let disk = stored_gb / 0.8;
    figures.push(Figure {
        name: "clickhouse_disk_gb_per_replica",
        value: round_up(disk),
        unit: "GB",
        how: format!("{stored_gb:.1} GB / 0.8"),
        source: HEADROOM,
    });
    figures.push(Figure {
        name: "clickhouse_disk_gb_total",
        value: round_up(disk) * replicas,
        unit: "GB",
        how: format!("{} GB x {replicas} replica(s)", round_up(disk)),
        source: STORAGE,
    });
    let ingest_cpu = raw_mb_s / 10.0;
    let query_cpu = w.queries_per_second + raw_mb_s / 10.0;
    let vcpu = round_up(ingest_cpu + query_cpu).max(2.0);
    figures.push(Figure {
        name: "clickhouse_vcpu_per_replica",
        value: vcpu,
        unit: "vCPU",
        how: format!(
            "ingest {raw_mb_s:.1} MB/s / 10 = {ingest_cpu:.1}; queries {} QPS + {raw_mb_s:.1} / 10 = \
             {query_cpu:.1}; at least 2",
            w.queries_per_second
        ),
        source: CLICKSTACK,
    });
    let ram = if stored_gb <= 200.0 {
        stored_gb.max(32.0)
    } else {
        128.0
    };
    figures.push(Figure {
        name: "clickhouse_ram_gb_per_replica",
        value: round_up(ram),
        unit: "GB",
        how: if stored_gb <= 200.0 {
            format!("{stored_gb:.1} GB of data fits in RAM; at least 32")
        } else {
            format!("{stored_gb:.0} GB of data is more than 200 GB: 128")
        },
        source: MEMORY,
    });
    let per_daemon = AURORA_EVENTS_PER_CORE * DAEMON_CORES * DAEMON_UTILISATION;
    let daemons = round_up(w.events_per_second / per_daemon).max(1.0);
    figures.push(Figure {
        name: "aurora_daemons",
        value: daemons,
        unit: "daemons",
        how: format!(
            "{} events/s / ({AURORA_EVENTS_PER_CORE} x {DAEMON_CORES} cores x {DAEMON_UTILISATION}); \
             add one for failover",
            w.events_per_second
        ),
        source: AURORA_RATE,
    });
    let by_throughput = round_up(raw_mb_s / PARTITION_MB_PER_S);
    // Each daemon needs partitions of its own; a multiple of the daemons spreads them evenly.
    let partitions = (by_throughput.max(daemons) / daemons).ceil() * daemons;
    figures.push(Figure {
        name: "kafka_partitions",
        value: partitions,
        unit: "partitions",
        how: format!(
            "max({raw_mb_s:.1} MB/s / {PARTITION_MB_PER_S} MB/s = {by_throughput}, {daemons} daemon(s)), \
             rounded up to a multiple of the daemons"
        ),
        source: PARTITIONS,
    });
    let per_daemon_rate = w.events_per_second / daemons;
    // Around one insert per second per daemon, and at least 10,000 rows when the rate allows
    // waiting for them (up to 10 s).
    let flush = if per_daemon_rate > 0.0 {
        (10_000.0 / per_daemon_rate).clamp(1.0, 10.0)
    } else {
        10.0
    };
    let batch = (per_daemon_rate * flush).clamp(1_000.0, 100_000.0);
    figures.push(Figure {
        name: "batch_max_rows",
        value: round_up(batch),
        unit: "rows",
        how: format!(
            "{per_daemon_rate:.0} events/s per daemon x {flush:.1} s, within 1,000-100,000"
        ),
        source: BATCH,
    });
    figures.push(Figure {
        name: "batch_max_wait_seconds",
        value: (flush * 10.0).round() / 10.0,
        unit: "s",
        how: "one insert per second, or longer (up to 10 s) to gather 10,000 rows".into(),
        source: BATCH,
    });
    Sizing {
        workload: w.clone(),
        figures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            events_per_second: 50_000.0,
            bytes_per_event: 500.0,
            retention_days: 30.0,
            replicas: 2,
            queries_per_second: 5.0,
            compression: None,
        }
    }

    #[test]
    fn figures_match_the_hand_calculation() {
        let s = size(&workload());
        // 50,000 x 500 B = 25 MB/s; 2,160 GB/day raw; 30 days / 10x = 6,480 GB per replica.
        assert_eq!(s.get("ingest_mb_per_second"), Some(25.0));
        assert!((s.get("clickhouse_data_gb_per_replica").expect("data") - 6480.0).abs() < 1e-6);
        // 6,480 / 0.8 = 8,100 GB per replica; x2 replicas.
        assert_eq!(s.get("clickhouse_disk_gb_per_replica"), Some(8100.0));
        assert_eq!(s.get("clickhouse_disk_gb_total"), Some(16200.0));
        // Ingest 25 / 10 = 2.5; queries 5 + 2.5 = 7.5; 10 vCPU.
        assert_eq!(s.get("clickhouse_vcpu_per_replica"), Some(10.0));
        // More than 200 GB of data: 128 GB.
        assert_eq!(s.get("clickhouse_ram_gb_per_replica"), Some(128.0));
        // 50,000 / 175,000 = 0.29: one daemon.
        assert_eq!(s.get("aurora_daemons"), Some(1.0));
        // 25 MB/s / 10 = 3 partitions (rounded up), a multiple of 1 daemon.
        assert_eq!(s.get("kafka_partitions"), Some(3.0));
        // 50,000 events/s in one daemon: one insert per second, capped at 100,000 rows.
        assert_eq!(s.get("batch_max_rows"), Some(50_000.0));
        assert_eq!(s.get("batch_max_wait_seconds"), Some(1.0));
    }

    #[test]
    fn a_small_workload_gets_the_floors_and_longer_batches() {
        let s = size(&Workload {
            events_per_second: 500.0,
            bytes_per_event: 200.0,
            retention_days: 7.0,
            replicas: 1,
            queries_per_second: 0.5,
            compression: Some(8.0),
        });
        // 0.1 MB/s; 8.64 GB/day raw x 7 / 8 = 7.56 GB.
        assert!((s.get("clickhouse_data_gb_per_replica").expect("data") - 7.56).abs() < 1e-9);
        assert_eq!(s.get("clickhouse_disk_gb_per_replica"), Some(10.0));
        assert_eq!(s.get("clickhouse_vcpu_per_replica"), Some(2.0));
        assert_eq!(s.get("clickhouse_ram_gb_per_replica"), Some(32.0));
        assert_eq!(s.get("kafka_partitions"), Some(1.0));
        // 500/s: 10 s to gather 5,000 rows (the 10 s cap).
        assert_eq!(s.get("batch_max_wait_seconds"), Some(10.0));
        assert_eq!(s.get("batch_max_rows"), Some(5_000.0));
    }

    #[test]
    fn a_large_stream_needs_several_daemons_and_partitions_spread_over_them() {
        let s = size(&Workload {
            events_per_second: 1_000_000.0,
            bytes_per_event: 300.0,
            retention_days: 1.0,
            replicas: 1,
            queries_per_second: 0.0,
            compression: None,
        });
        // 1,000,000 / 175,000 = 5.7: 6 daemons; 300 MB/s / 10 = 30 partitions, a multiple of 6.
        assert_eq!(s.get("aurora_daemons"), Some(6.0));
        assert_eq!(s.get("kafka_partitions"), Some(30.0));
        assert_eq!(s.get("batch_max_rows"), Some(100_000.0));
        assert!(s
            .figures
            .iter()
            .all(|f| !f.source.is_empty() && !f.how.is_empty()));
    }
}
