//! Kafka pipelines end to end against a real Kafka-protocol broker and a real ClickHouse, at
//! the sizes the ingestion issue accepts: a million events arrive exactly once; 10,000 bad
//! messages among 30,000 all reach the dead-letter table with their reason; `aurora pipeline
//! run` killed with SIGKILL at five random moments of a 500k-event stream loses nothing, and
//! duplicates nothing in `exactly_once` mode. Also: a restart resumes from the committed
//! offsets, two processes share a group. Each scenario runs on two tiers: librdkafka's mock
//! cluster in this process (`_on_mock`) and an independent broker process, tansu or the brokers
//! in `AURORA_TEST_KAFKA_BROKERS` (`_on_tansu`, see `common::tansu`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurora::config::KafkaConfig;
use aurora::ingest::engine::{self, PipelineRun, PipelineState, PipelineStatus};
use aurora::ingest::pipeline::{check_str, Delivery};
use aurora::warehouse::{QueryOptions, Warehouse};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;

/// One event as the test pipeline maps it, in compact JSON. The timestamp moves 100 s every
/// 100 ids (11 days over a million ids, so batches span several table partitions) rather
/// than with every id: repeated digits compress, and the mock keeps at most 5 MiB of
/// compressed message sets per partition.
fn event(id: u64) -> String {
    format!(
        r#"{{"id":{id},"ts":{},"user":{{"name":"u{}"}},"amount":"{}.{:02}"}}"#,
        1_700_000_000_000u64 + id / 100 * 100_000,
        id % 97,
        id % 300,
        id % 100
    )
}

/// A producer that batches and compresses hard: 250k events per mock partition fit in its
/// 5 MiB only as large lz4 message sets (measured: about 290k of `event` fit, unkeyed).
struct EventProducer {
    producer: BaseProducer,
    topic: String,
}

impl EventProducer {
    fn new(brokers: &str, topic: &str) -> Self {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("compression.type", "lz4")
            .set("linger.ms", "50")
            .set("batch.num.messages", "100000")
            .set("batch.size", "1000000")
            .create()
            .expect("producer");
        EventProducer {
            producer,
            topic: topic.to_string(),
        }
    }

    /// Sends `payload` to the partition of `id` (ids go round the partitions, no keys: keys
    /// cost room in the mock).
    fn send(&self, id: u64, payload: &str) {
        let partition = (id % PARTITIONS as u64) as i32;
        let mut record = BaseRecord::<(), str>::to(&self.topic)
            .payload(payload)
            .partition(partition);
        loop {
            match self.producer.send(record) {
                Ok(()) => return,
                Err((_, back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
            }
        }
    }

    fn flush(&self) {
        self.producer.flush(Duration::from_secs(60)).expect("flush");
    }
}

/// Produces events with ids `first..first+count`; every 500th is not JSON.
fn produce(brokers: &str, topic: &str, first: u64, count: u64) -> u64 {
    produce_steadily(brokers, topic, first, count, Duration::ZERO)
}

/// Like `produce`, with a `pause` after every 250 events to spread them over time.
fn produce_steadily(brokers: &str, topic: &str, first: u64, count: u64, pause: Duration) -> u64 {
    let producer = EventProducer::new(brokers, topic);
    let mut bad = 0;
    for id in first..first + count {
        if id % 500 == 499 {
            bad += 1;
            producer.send(id, &format!("{{broken json {id}"));
        } else {
            producer.send(id, &event(id));
        }
        if !pause.is_zero() && (id - first) % 250 == 249 {
            std::thread::sleep(pause);
            producer.producer.poll(Duration::ZERO);
        }
    }
    producer.flush();
    bad
}

/// The broker a scenario runs against.
enum Kafka {
    /// Tier 1: librdkafka's mock cluster, inside this process.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// Tier 2: an independent broker process.
    Real(&'static common::tansu::Broker),
}

impl Kafka {
    fn mock() -> Self {
        Kafka::Mock(MockCluster::new(1).expect("mock cluster"))
    }

    fn tansu() -> Self {
        Kafka::Real(common::tansu::tansu())
    }

    /// The tier's short name, for scratch database names.
    fn tier(&self) -> &'static str {
        match self {
            Kafka::Mock(_) => "mock",
            Kafka::Real(_) => "tansu",
        }
    }

    fn brokers(&self) -> String {
        match self {
            Kafka::Mock(cluster) => cluster.bootstrap_servers(),
            Kafka::Real(broker) => broker.bootstrap_servers().to_string(),
        }
    }

    fn timeouts(&self) -> GroupTimeouts {
        match self {
            Kafka::Mock(_) => DEFAULT_TIMEOUTS,
            Kafka::Real(broker) => GroupTimeouts {
                session: broker.session_timeout(),
                heartbeat: broker.session_timeout() / 3,
            },
        }
    }

    /// The test pipeline, reading `topic` from this broker.
    fn pipeline_yaml(&self, db: &str, topic: &str) -> String {
        pipeline_yaml(db, &self.brokers(), topic, self.timeouts())
    }

    /// A new topic with `PARTITIONS` partitions named after `name`; returns its actual name
    /// (unique on a shared broker).
    async fn topic(&self, name: &str) -> String {
        match self {
            Kafka::Mock(cluster) => {
                cluster
                    .create_topic(name, PARTITIONS, 1)
                    .expect("create mock topic");
                name.to_string()
            }
            Kafka::Real(broker) => broker.create_topic(name, PARTITIONS).await,
        }
    }

    /// Nothing the test produced may have been dropped by the broker's retention (the mock
    /// keeps at most 5 MiB / 100k message sets per partition and silently drops the oldest).
    fn assert_nothing_dropped(&self, topic: &str) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("group.id", "watermark-check")
            .create()
            .unwrap();
        for p in 0..PARTITIONS {
            let (low, _) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap();
            assert_eq!(low, 0, "partition {p} lost its oldest messages");
        }
    }
}

/// A consumer group's timeouts in the test pipelines. A member that crashed keeps its partitions
/// until its session expires, so each restart in a crash test waits that long.
#[derive(Debug, Clone, Copy)]
struct GroupTimeouts {
    session: Duration,
    heartbeat: Duration,
}

/// A 6 s session, the shortest most Kafka brokers accept, and librdkafka's default heartbeat.
const DEFAULT_TIMEOUTS: GroupTimeouts = GroupTimeouts {
    session: Duration::from_secs(6),
    heartbeat: Duration::from_secs(3),
};

fn pipeline_yaml(db: &str, brokers: &str, topic: &str, timeouts: GroupTimeouts) -> String {
    let session_ms = timeouts.session.as_millis();
    let heartbeat_ms = timeouts.heartbeat.as_millis();
    format!(
        "pipelines:
  - name: events_{db}
    source:
      kafka:
        brokers: [{brokers}]
        topic: {topic}
        group: aurora-test-{db}
        properties:
          session.timeout.ms: '{session_ms}'
          heartbeat.interval.ms: '{heartbeat_ms}'
    mapping:
      columns:
        id: {{type: UInt64}}
        ts: {{type: DateTime, convert: unix_millis}}
        user: {{from: user.name, type: String}}
        amount: {{type: 'Decimal(10, 2)'}}
    sink:
      table: {db}.events
      create: if_missing
      order_by: [id]
      partition_by: toYYYYMMDD(ts)
      batch: {{max_rows: 2000, max_wait: 100ms}}
    delivery: exactly_once
    dead_letter:
      table: {db}.events_dlq
"
    )
}

async fn wait_until(w: &Warehouse, sql: &str, target: u64) {
    for _ in 0..600 {
        if common::count(w, sql).await >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{sql}` never reached {target}");
}

fn expected(first: u64, n: u64) -> (u64, u64) {
    let good: Vec<u64> = (first..first + n).filter(|id| id % 500 != 499).collect();
    (good.len() as u64, good.iter().sum())
}

async fn stats(w: &Warehouse, db: &str) -> (u64, u64, u64) {
    let r = w
        .query(
            &format!("SELECT count(), uniqExact(id), sum(id) FROM {db}.events"),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let n = |i: usize| r.rows[0][i].to_string().parse::<u64>().unwrap();
    (n(0), n(1), n(2))
}

/// `yaml` with `from` replaced by `to`; `from` must be there, so a changed template cannot
/// silently turn a test into a different one.
fn edit(yaml: &str, from: &str, to: &str) -> String {
    assert!(yaml.contains(from), "`{from}` is not in:\n{yaml}");
    yaml.replace(from, to)
}

/// An `aurora pipeline run` process (the real binary) with its own state directory
/// `<dir>/<name>`; its log (`-v`) goes to `<dir>/<name>.log`, across restarts.
struct PipelineProcess {
    child: std::process::Child,
    log: PathBuf,
}

impl PipelineProcess {
    fn spawn(dir: &Path, name: &str, yaml: &str) -> Self {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = common::aurora_command()
            .args(["--url", &common::url(), "-v", "pipeline", "run"])
            .arg(&file)
            .arg("--state-dir")
            .arg(dir.join(name))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        PipelineProcess { child, log }
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The end of its log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- {} (last lines) ---\n{tail}", self.log.display())
    }

    /// Waits until `sql` counts at least `target`; fails if the process ends or time runs out.
    async fn wait_for(&mut self, w: &Warehouse, sql: &str, target: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let n = common::count(w, sql).await;
            if n >= target {
                return;
            }
            assert!(
                self.running(),
                "the pipeline exited with `{sql}` at {n} of {target}\n{}",
                self.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "`{sql}` reached only {n} of {target} in {timeout:?}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no draining, no last commit.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as a service manager stops it: it must drain, commit and exit 0.
    fn stop(mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}\n{}", self.log_tail());
    }
}

/// The first pipeline of `yaml`, ready to run in this process with a fresh state directory.
async fn in_process(yaml: &str) -> PipelineRun {
    PipelineRun {
        pipeline: check_str("test.yaml", yaml).unwrap().remove(0),
        kafka: KafkaConfig {
            brokers: vec![],
            client_id: "aurora-test".into(),
            properties: Default::default(),
        },
        base_dir: PathBuf::from("."),
        state_dir: common::fresh_data_dir("kafka-state"),
        warehouse: Arc::new(common::warehouse().await),
    }
}

/// Runs the pipeline in this process until the table holds `target` rows, then stops it the
/// way SIGTERM does and returns its final status.
async fn run_until(yaml: &str, w: &Warehouse, db: &str, target: u64) -> PipelineStatus {
    let run = in_process(yaml).await;
    let cancel = CancellationToken::new();
    let (tx, rx) = watch::channel(PipelineStatus::default());
    let task = tokio::spawn(engine::run(run, cancel.clone(), tx));
    wait_until(w, &format!("SELECT count() FROM {db}.events"), target).await;
    cancel.cancel();
    let status = task.await.unwrap();
    assert_eq!(status.state, PipelineState::Stopped, "{status:?}");
    drop(rx);
    status
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_exactly_once_and_a_restart_resumes_on_mock() {
    events_arrive_exactly_once_and_a_restart_resumes(Kafka::mock()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_exactly_once_and_a_restart_resumes_on_tansu() {
    events_arrive_exactly_once_and_a_restart_resumes(Kafka::tansu()).await;
}

async fn events_arrive_exactly_once_and_a_restart_resumes(kafka: Kafka) {
    let brokers = kafka.brokers();
    let topic = kafka.topic("events").await;
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, &format!("kafka_e2e_{}", kafka.tier())).await;
    let bad = produce(&brokers, &topic, 0, 20_000);
    kafka.assert_nothing_dropped(&topic);
    let yaml = kafka.pipeline_yaml(&db, &topic);

    let (good, sum) = expected(0, 20_000);
    let status = run_until(&yaml, &w, &db, good).await;
    assert_eq!(stats(&w, &db).await, (good, good, sum));
    // Lag is measured for every partition it was assigned.
    assert_eq!(status.lag.len(), PARTITIONS as usize, "{status:?}");
    // Everything was consumed before it stopped: nothing left behind.
    assert_eq!(status.lag.values().sum::<u64>(), 0, "{status:?}");
    wait_until(&w, &format!("SELECT count() FROM {db}.events_dlq"), bad).await;
    assert_eq!(
        status.dead_lettered + status.rows_written,
        20_000,
        "{status:?}"
    );
    let reason = w
        .query(
            &format!("SELECT error, raw FROM {db}.events_dlq LIMIT 1"),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        reason.rows[0][0].to_string().contains("not valid JSON"),
        "{:?}",
        reason.rows
    );
    assert!(reason.rows[0][1].to_string().starts_with("{broken json"));
    let source = w
        .query(
            &format!("SELECT DISTINCT _aurora_source FROM {db}.events ORDER BY 1"),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(source.rows.len(), PARTITIONS as usize);

    // More events; a new run resumes from the group's committed offsets.
    produce(&brokers, &topic, 20_000, 4_000);
    let (good, sum) = expected(0, 24_000);
    let status = run_until(&yaml, &w, &db, good).await;
    assert_eq!(stats(&w, &db).await, (good, good, sum));
    // Committed offsets, not the bookkeeping, did the work: at most a batch per partition
    // was read again.
    assert!(
        status.already_stored <= 2_000 * PARTITIONS as u64,
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_events_arrive_exactly_once_on_mock() {
    a_million_events_arrive_exactly_once(Kafka::mock()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_million_events_arrive_exactly_once_on_tansu() {
    a_million_events_arrive_exactly_once(Kafka::tansu()).await;
}

const MILLION: u64 = 1_000_000;

/// 1,000,000 JSON events on a 4-partition topic, consumed by `aurora pipeline run` while they
/// are produced, arrive exactly once.
async fn a_million_events_arrive_exactly_once(kafka: Kafka) {
    let started = Instant::now();
    let brokers = kafka.brokers();
    let topic = kafka.topic("million").await;
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, &format!("kafka_million_{}", kafka.tier())).await;
    let dir = common::fresh_data_dir("kafka-million");
    // The shipped batch policy (50k rows, 1 s), not the small batches of the other tests.
    let yaml = edit(
        &kafka.pipeline_yaml(&db, &topic),
        "      batch: {max_rows: 2000, max_wait: 100ms}\n",
        "",
    );
    let producer = {
        let (brokers, topic) = (brokers.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            let producer = EventProducer::new(&brokers, &topic);
            for id in 0..MILLION {
                producer.send(id, &event(id));
            }
            producer.flush();
        })
    };
    let mut run = PipelineProcess::spawn(&dir, "run", &yaml);
    producer.await.unwrap();
    let produced = started.elapsed();
    kafka.assert_nothing_dropped(&topic);
    let count = format!("SELECT count() FROM {db}.events");
    run.wait_for(&w, &count, MILLION, Duration::from_secs(600))
        .await;
    run.stop();
    assert_eq!(
        stats(&w, &db).await,
        (MILLION, MILLION, MILLION * (MILLION - 1) / 2)
    );
    let per_partition = w
        .query(
            &format!(
                "SELECT _aurora_source, count(), uniqExact(id) FROM {db}.events \
                 GROUP BY _aurora_source ORDER BY 1"
            ),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let per_partition: Vec<(String, String)> = per_partition
        .rows
        .iter()
        .map(|r| (r[1].to_string(), r[2].to_string()))
        .collect();
    let quarter = (MILLION / PARTITIONS as u64).to_string();
    assert_eq!(
        per_partition,
        vec![(quarter.clone(), quarter); PARTITIONS as usize]
    );
    let statuses = engine::read_statuses(&dir.join("run"));
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let status = &statuses[0];
    assert_eq!(status.state, PipelineState::Stopped, "{status:?}");
    assert_eq!(
        (
            status.rows_written,
            status.already_stored,
            status.dead_lettered
        ),
        (MILLION, 0, 0),
        "{status:?}"
    );
    assert_eq!(status.lag.len(), PARTITIONS as usize, "{status:?}");
    assert_eq!(status.lag.values().sum::<u64>(), 0, "{status:?}");
    eprintln!(
        "{MILLION} events on {}: produced in {produced:?}, stored in {:?}",
        kafka.tier(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_five_random_moments_exactly_once_on_mock() {
    sigkill_at_five_random_moments(Kafka::mock(), Delivery::ExactlyOnce).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_five_random_moments_exactly_once_on_tansu() {
    sigkill_at_five_random_moments(Kafka::tansu(), Delivery::ExactlyOnce).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_five_random_moments_at_least_once_on_mock() {
    sigkill_at_five_random_moments(Kafka::mock(), Delivery::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_five_random_moments_at_least_once_on_tansu() {
    sigkill_at_five_random_moments(Kafka::tansu(), Delivery::AtLeastOnce).await;
}

/// Deterministic pseudo-random numbers (SplitMix64): a failing run is repeated with the seed
/// it printed.
struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded from `AURORA_TEST_SEED`, else from the clock.
    fn from_env_or_clock() -> Self {
        let seed = std::env::var("AURORA_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos() as u64
            });
        eprintln!("AURORA_TEST_SEED={seed}");
        SplitMix64(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `range`.
    fn within(&mut self, range: std::ops::Range<u64>) -> u64 {
        range.start + self.next() % (range.end - range.start)
    }
}

const CRASH_EVENTS: u64 = 500_000;
const KILLS: u64 = 5;

/// `aurora pipeline run` is killed with SIGKILL at five random moments of a 500k-event
/// stream (while it is still being produced, at first) and restarted each time. Each kill
/// lands when the table has reached a random row count, one in each fifth of 5%..90% of the
/// stream, so wherever the process is in its batch cycle. Exactly-once: every id once.
/// At-least-once: no id missing, and duplicates, which show the kills caught stored batches
/// whose offsets were not committed yet.
async fn sigkill_at_five_random_moments(kafka: Kafka, delivery: Delivery) {
    let started = Instant::now();
    let mut rng = SplitMix64::from_env_or_clock();
    let brokers = kafka.brokers();
    let topic = kafka.topic("crash").await;
    let w = common::warehouse().await;
    let mode = match delivery {
        Delivery::ExactlyOnce => "eo",
        Delivery::AtLeastOnce => "alo",
    };
    let db = common::scratch_database(&w, &format!("kafka_crash_{mode}_{}", kafka.tier())).await;
    let dir = common::fresh_data_dir("kafka-crash");
    let yaml = kafka.pipeline_yaml(&db, &topic);
    let mut yaml = match delivery {
        Delivery::ExactlyOnce => yaml,
        Delivery::AtLeastOnce => edit(&yaml, "delivery: exactly_once", "delivery: at_least_once"),
    };
    // Produced over several seconds: the first runs are killed while events still arrive.
    let producer = {
        let (brokers, topic) = (brokers.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            produce_steadily(&brokers, &topic, 0, CRASH_EVENTS, Duration::from_millis(3))
        })
    };
    let (good, sum) = expected(0, CRASH_EVENTS);
    let count = format!("SELECT count() FROM {db}.events");
    let slot = good * 85 / 100 / KILLS;
    let mut kills = Vec::new();
    let duplicates = format!("SELECT count() - uniqExact(id) FROM {db}.events");
    let mut i = 0;
    loop {
        // At-least-once must show duplicates, which only a kill between a stored batch and
        // its offset commit makes: up to three kills more until one did.
        if i >= KILLS
            && (delivery == Delivery::ExactlyOnce
                || i >= KILLS + 3
                || common::count(&w, &duplicates).await > 0)
        {
            break;
        }
        if delivery == Delivery::ExactlyOnce && i == 3 {
            // Lose the committed offsets too (a new group, as after offsets expired): the
            // group re-reads everything and only the table's bookkeeping prevents duplicates.
            // (At-least-once would store it all again; its duplicates must come from the kills.)
            yaml = edit(
                &yaml,
                &format!("group: aurora-test-{db}"),
                &format!("group: aurora-test-{db}-again"),
            );
        }
        // On the mock, an extra kill is certain to catch uncommitted batches: the broker
        // refuses every offset commit from here until the kill, so whatever is stored in
        // between is re-read after the restart. (Random kills alone can miss the gap between
        // a batch's insert and its commit, which is well under a millisecond.)
        let refusing_commits = match &kafka {
            Kafka::Mock(cluster) if delivery == Delivery::AtLeastOnce && i >= KILLS => {
                let refusals =
                    [RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE; 10_000];
                cluster.request_errors(RDKafkaApiKey::OffsetCommit, &refusals);
                Some(cluster)
            }
            _ => None,
        };
        let threshold = if i < KILLS {
            good * 5 / 100 + rng.within(i * slot..(i + 1) * slot)
        } else {
            let stored = common::count(&w, &count).await;
            (stored + rng.within(1..slot / 4)).min(good - 1)
        };
        i += 1;
        let mut run = PipelineProcess::spawn(&dir, "run", &yaml);
        loop {
            let n = common::count(&w, &count).await;
            if n >= threshold {
                assert!(
                    run.running(),
                    "run {i} ended on its own\n{}",
                    run.log_tail()
                );
                run.kill();
                kills.push((threshold, n, started.elapsed()));
                if let Some(cluster) = refusing_commits {
                    cluster.clear_request_errors(RDKafkaApiKey::OffsetCommit);
                }
                break;
            }
            assert!(
                run.running(),
                "run {i} ended on its own\n{}",
                run.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let bad = producer.await.unwrap();
    kafka.assert_nothing_dropped(&topic);
    eprintln!("kills (threshold, rows seen, at): {kills:?}");
    // The last run goes to the end, then is stopped like a service.
    let mut run = PipelineProcess::spawn(&dir, "run", &yaml);
    let timeout = Duration::from_secs(300);
    let distinct = format!("SELECT uniqExact(id) FROM {db}.events");
    run.wait_for(&w, &distinct, good, timeout).await;
    let dead = format!("SELECT uniqExact(source, offset) FROM {db}.events_dlq");
    run.wait_for(&w, &dead, bad, timeout).await;
    run.stop();
    let (rows, ids, id_sum) = stats(&w, &db).await;
    let duplicated_dead = common::count(
        &w,
        &format!("SELECT count() - uniqExact(source, offset) FROM {db}.events_dlq"),
    )
    .await;
    eprintln!(
        "{} {delivery:?}: {rows} rows for {ids} ids, {duplicated_dead} repeated dead letters, \
         {:?}",
        kafka.tier(),
        started.elapsed()
    );
    assert_eq!(common::count(&w, &dead).await, bad);
    match delivery {
        Delivery::ExactlyOnce => {
            assert_eq!((rows, ids, id_sum), (good, good, sum));
            assert_eq!(duplicated_dead, 0);
        }
        Delivery::AtLeastOnce => {
            assert_eq!(ids, good, "an event is missing");
            let distinct_sum = common::scalar(
                &w,
                &format!("SELECT sum(id) FROM (SELECT DISTINCT id FROM {db}.events)"),
            )
            .await;
            assert_eq!(distinct_sum, sum.to_string(), "an event is missing");
            assert!(
                rows > good,
                "no duplicates in at_least_once mode: the kills never caught a stored batch \
                 before its offsets were committed, so this test proved little"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_bad_records_reach_the_dead_letter_table_on_mock() {
    ten_thousand_bad_records_reach_the_dead_letter_table(Kafka::mock()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_bad_records_reach_the_dead_letter_table_on_tansu() {
    ten_thousand_bad_records_reach_the_dead_letter_table(Kafka::tansu()).await;
}

/// Every third of 30,000 messages is bad in one of four ways, each with its own words in the
/// dead-letter table: not JSON, a field of the wrong type, a number out of the column's range,
/// a required field missing.
const BAD_KINDS: [&str; 4] = [
    "not valid JSON",
    "is not a number",
    "is out of range",
    "missing required field `id`",
];

/// The message for `id`, and whether it is bad.
fn good_or_bad(id: u64) -> (String, bool) {
    let good = event(id);
    if !id.is_multiple_of(3) {
        return (good, false);
    }
    let bad = match (id / 3) % 4 {
        0 => good[..good.len() / 2].to_string(),
        1 => edit(&good, r#""amount":""#, r#""amount":"lots of "#),
        2 => edit(&good, &format!(r#""id":{id}"#), &format!(r#""id":-{id}"#)),
        _ => edit(&good, &format!(r#""id":{id}"#), &format!(r#""order":{id}"#)),
    };
    (bad, true)
}

async fn ten_thousand_bad_records_reach_the_dead_letter_table(kafka: Kafka) {
    const EVENTS: u64 = 30_000;
    let started = Instant::now();
    let topic = kafka.topic("mixed").await;
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, &format!("kafka_bad_{}", kafka.tier())).await;
    let dir = common::fresh_data_dir("kafka-bad");
    let producer = EventProducer::new(&kafka.brokers(), &topic);
    let (mut good, mut good_sum, mut bad) = (0, 0, 0);
    for id in 0..EVENTS {
        let (payload, is_bad) = good_or_bad(id);
        producer.send(id, &payload);
        if is_bad {
            bad += 1;
        } else {
            good += 1;
            good_sum += id;
        }
    }
    producer.flush();
    assert_eq!((good, bad), (20_000, 10_000));
    kafka.assert_nothing_dropped(&topic);
    let mut run = PipelineProcess::spawn(&dir, "run", &kafka.pipeline_yaml(&db, &topic));
    let timeout = Duration::from_secs(120);
    run.wait_for(
        &w,
        &format!("SELECT count() FROM {db}.events"),
        good,
        timeout,
    )
    .await;
    let dead = format!("SELECT count() FROM {db}.events_dlq");
    run.wait_for(&w, &dead, bad, timeout).await;
    run.stop();
    assert_eq!(stats(&w, &db).await, (good, good, good_sum));
    let stray = format!("SELECT count() FROM {db}.events WHERE id % 3 = 0");
    assert_eq!(common::count(&w, &stray).await, 0);
    assert_eq!(common::count(&w, &dead).await, bad);
    // Each bad message once, as it arrived, with its position and the pipeline's name.
    let distinct = format!(
        "SELECT uniqExact(source, offset) + uniqExact(raw) FROM {db}.events_dlq \
         WHERE pipeline = 'events_{db}' AND startsWith(source, 'kafka:{topic}:')"
    );
    assert_eq!(common::count(&w, &distinct).await, 2 * bad);
    for needle in BAD_KINDS {
        let n = common::count(
            &w,
            &format!("SELECT count() FROM {db}.events_dlq WHERE position(error, '{needle}') > 0"),
        )
        .await;
        assert_eq!(n, bad / 4, "`{needle}`");
    }
    eprintln!(
        "{} bad records on {}: {:?}",
        bad,
        kafka.tier(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_checks_brokers_and_topics_on_mock() {
    validate_checks_brokers_and_topics(Kafka::mock()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_checks_brokers_and_topics_on_tansu() {
    validate_checks_brokers_and_topics(Kafka::tansu()).await;
}

async fn validate_checks_brokers_and_topics(kafka: Kafka) {
    let topic = kafka.topic("events").await;
    // Tier-2 topic names carry a suffix; the typo keeps it, so the topic stays the nearest name.
    let typo = topic.replacen("events", "evnets", 1);
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, &format!("kafka_validate_{}", kafka.tier())).await;
    let dir = common::fresh_data_dir("kafka-validate");
    let validate = |yaml: String| {
        let file = dir.join("p.yaml");
        std::fs::write(&file, yaml).unwrap();
        let o = common::aurora_command()
            .args(["--url", &common::url(), "pipeline", "validate"])
            .arg(&file)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (code, out) = validate(kafka.pipeline_yaml(&db, &topic));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = validate(kafka.pipeline_yaml(&db, &typo));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("topic `{typo}` does not exist")),
        "{out}"
    );
    assert!(out.contains(&format!("did you mean `{topic}`")), "{out}");
    let dead = common::closed_port_url().replace("http://", "");
    let (code, out) = validate(pipeline_yaml(&db, &dead, &topic, kafka.timeouts()));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("did not answer"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_init_samples_a_topic_on_mock() {
    pipeline_init_samples_a_topic(Kafka::mock()).await;
}

// tansu answers a group's first JoinGroup only after about half the session timeout (measured:
// 3.1 s at 6 s, 1.1 s at 1.5 s, 23 s at librdkafka's default 45 s); `pipeline init` samples by
// joining a group with the default session timeout and gives up after 15 s.
#[tokio::test(flavor = "multi_thread")]
async fn pipeline_init_samples_a_topic_on_tansu() {
    pipeline_init_samples_a_topic(Kafka::tansu()).await;
}

/// `pipeline init` samples the topic and proposes typed columns. The start, middle and end
/// of each partition are sampled, so a field that only goes NULL late in the topic (after the
/// 1,600th event here, where sampling the first few hundred would see none) is Nullable.
async fn pipeline_init_samples_a_topic(kafka: Kafka) {
    let brokers = kafka.brokers();
    let topic = kafka.topic("events").await;
    let producer = EventProducer::new(&brokers, &topic);
    for id in 0..2_000u64 {
        let coupon = if id < 1_600 {
            format!("\"C{id}\"")
        } else {
            "null".to_string()
        };
        let event = event(id);
        let open = event.strip_suffix('}').unwrap();
        producer.send(id, &format!(r#"{open},"coupon":{coupon}}}"#));
    }
    producer.flush();
    let o = common::aurora_command()
        .args([
            "pipeline",
            "init",
            "--from-kafka",
            &topic,
            "--brokers",
            &brokers,
        ])
        .output()
        .unwrap();
    let yaml = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{yaml}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(yaml.contains(&format!("topic: \"{topic}\"")), "{yaml}");
    assert!(yaml.contains("id: {type: \"UInt64\"}"), "{yaml}");
    assert!(
        yaml.contains("user_name: {from: \"user.name\", type: \"String\"}"),
        "{yaml}"
    );
    assert!(
        yaml.contains("ts: {type: \"DateTime\", convert: unix_millis}"),
        "{yaml}"
    );
    // tansu reports a partition's end offset as 1 when it was written in one batch, so the
    // middle and end windows start at its beginning there: only the mock shows the late NULLs.
    if let Kafka::Mock(_) = kafka {
        assert!(
            yaml.contains("coupon: {type: \"Nullable(String)\"}"),
            "{yaml}"
        );
    }
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("from the start, middle and end of 4 partition(s)"),
        "{stderr}"
    );
    // Each column says how sure its type is.
    assert!(
        yaml.contains("        # a value in all 600 sampled records"),
        "{yaml}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_brokers_show_as_retrying() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "kafka_down").await;
    let dead = common::closed_port_url().replace("http://", "");
    let run = in_process(&pipeline_yaml(&db, &dead, "events", DEFAULT_TIMEOUTS)).await;
    let cancel = CancellationToken::new();
    let (tx, mut rx) = watch::channel(PipelineStatus::default());
    let task = tokio::spawn(engine::run(run, cancel.clone(), tx));
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let PipelineState::Retrying(reason) = &rx.borrow_and_update().state {
                return reason.clone();
            }
            if rx.changed().await.is_err() {
                return String::new();
            }
        }
    })
    .await
    .expect("the pipeline never reported the brokers as down");
    assert!(seen.contains(&dead), "{seen}");
    cancel.cancel();
    let status = task.await.unwrap();
    assert_eq!(status.state, PipelineState::Stopped, "{status:?}");
}

/// Two `aurora pipeline run` processes in one consumer group share a 4-partition topic while
/// events are produced; the second joins mid-stream, so partitions move between them. The table
/// must end with every id exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_in_one_group_store_every_event_once_on_tansu() {
    let kafka = Kafka::tansu();
    let brokers = kafka.brokers();
    let topic = kafka.topic("shared").await;
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "kafka_two_tansu").await;
    let dir = common::fresh_data_dir("kafka-two");
    // The first process holds its batches for 4 s, so when the second one joins, the first has
    // records of the partitions it loses in hand, unwritten and uncommitted: written after the
    // handover, they would duplicate what the new owner reads again from the committed offset.
    let yaml = kafka.pipeline_yaml(&db, &topic);
    let holding = yaml.replace(
        "batch: {max_rows: 2000, max_wait: 100ms}",
        "batch: {max_rows: 1000000, max_wait: 4s}",
    );
    assert_ne!(holding, yaml);
    // Two hosts, as far as Aurora can tell: each process has its own state directory.
    let spawn = |name: &str, yaml: &str| {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, yaml).unwrap();
        common::aurora_command()
            .args(["--url", &common::url(), "pipeline", "run"])
            .arg(&file)
            .arg("--state-dir")
            .arg(dir.join(name))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
            .spawn()
            .unwrap()
    };
    const TOTAL: u64 = 40_000;
    const FIRST: u64 = 2_000;
    let first = spawn("a", &holding);
    produce(&brokers, &topic, 0, FIRST);
    wait_until(&w, &format!("SELECT count() FROM {db}.events"), 1).await;
    // The rest arrives steadily over ~8 s, so the rebalance that the second process's join
    // causes (about 3 s on tansu) lands while batches are in flight, and both then share the
    // work.
    let producer = {
        let (brokers, topic) = (brokers.clone(), topic.clone());
        tokio::task::spawn_blocking(move || {
            produce_steadily(
                &brokers,
                &topic,
                FIRST,
                TOTAL - FIRST,
                Duration::from_millis(50),
            )
        })
    };
    let second = spawn("b", &yaml);
    producer.await.unwrap();
    let (good, sum) = expected(0, TOTAL);
    let bad = TOTAL / 500;
    wait_until(&w, &format!("SELECT uniqExact(id) FROM {db}.events"), good).await;
    wait_until(&w, &format!("SELECT count() FROM {db}.events_dlq"), bad).await;
    // Let any late duplicate land before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for child in [&first, &second] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
    }
    for mut child in [first, second] {
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
    let duplicates = w
        .query(
            &format!(
                "SELECT _aurora_source, count() - uniqExact(id) FROM {db}.events \
                 GROUP BY _aurora_source HAVING count() > uniqExact(id) ORDER BY 1"
            ),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        stats(&w, &db).await,
        (good, good, sum),
        "duplicates per partition: {:?}",
        duplicates.rows
    );
    assert_eq!(
        common::count(
            &w,
            &format!("SELECT count() - uniqExact(offset, source) FROM {db}.events_dlq")
        )
        .await,
        0
    );
    // Both took part.
    for name in ["a", "b"] {
        let statuses = engine::read_statuses(&dir.join(name));
        let written: u64 = statuses.iter().map(|s| s.rows_written).sum();
        assert!(written > 0, "process {name} stored nothing: {statuses:?}");
    }
}

/// The shipped Kafka template runs as written, with only its brokers changed: nested fields,
/// conversions, defaults, a sub-object as JSON text, and a bad event dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn the_kafka_template_runs_as_written() {
    let kafka = Kafka::mock();
    let brokers = kafka.brokers();
    let topic = kafka.topic("clickstream").await;
    let w = common::warehouse().await;
    w.execute("DROP DATABASE IF EXISTS analytics")
        .await
        .unwrap();
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/pipelines/kafka-json.yaml"),
    )
    .unwrap();
    assert!(template.contains("brokers: [localhost:9092]"));
    let dir = common::fresh_data_dir("kafka-template");
    let file = dir.join("kafka-json.yaml");
    std::fs::write(
        &file,
        template.replace(
            "brokers: [localhost:9092]",
            &format!("brokers: ['{brokers}']"),
        ),
    )
    .unwrap();
    let producer = EventProducer::new(&brokers, &topic);
    producer.send(
        0,
        r#"{"ts":1767225600000,"user":{"id":7},"type":"PageView","geo":{"country":"DE"},"props":{"path":"/a","ms":12}}"#,
    );
    producer.send(
        1,
        r#"{"ts":1767225660500,"user":{"id":8},"type":"Purchase","revenue":19.99,"props":{}}"#,
    );
    producer.send(
        2,
        r#"{"ts":1767225600000,"user":{"id":"nobody"},"type":"x"}"#,
    );
    producer.flush();
    let mut child = common::aurora_command()
        .args(["--url", &common::url(), "pipeline", "run"])
        .arg(&file)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(&w, "SELECT count() FROM analytics.events", 2).await;
    wait_until(&w, "SELECT count() FROM analytics.events_rejected", 1).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        common::scalar(
            &w,
            "SELECT arrayStringConcat(groupArray(concat(toString(toUInt32(event_time)), ' ', toString(user_id), ' ', \
             event_type, ' ', country, ' ', toString(revenue), ' ', properties)), ' | ') \
             FROM (SELECT * FROM analytics.events ORDER BY user_id)"
        )
        .await,
        "1767225600 7 pageview DE 0.00 {\"ms\":12,\"path\":\"/a\"} | 1767225660 8 purchase ?? 19.99 {}"
    );
    let error = common::scalar(&w, "SELECT error FROM analytics.events_rejected").await;
    assert!(error.contains("user_id"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_that_go_back_stop_exactly_once_and_warn_at_least_once_on_mock() {
    offsets_that_go_back(Kafka::mock()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_that_go_back_stop_exactly_once_and_warn_at_least_once_on_tansu() {
    offsets_that_go_back(Kafka::tansu()).await;
}

/// Joins `group` and commits `offset` for every partition of `topic`, as no consumer of it
/// would: beyond the partitions' ends.
fn commit_for_group(brokers: &str, group: &str, topic: &str, offset: i64) {
    use rdkafka::consumer::CommitMode;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumer.assignment().map_or(0, |a| a.count()) < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "never got the partitions");
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(offset))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    consumer.unsubscribe();
}

/// Runs the pipeline in this process until it ends on its own (it must, within a minute).
async fn run_to_its_end(yaml: &str) -> PipelineStatus {
    let run = in_process(yaml).await;
    let (tx, _rx) = watch::channel(PipelineStatus::default());
    let task = tokio::spawn(engine::run(run, CancellationToken::new(), tx));
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the pipeline did not stop within 60 s")
        .unwrap()
}

/// A topic deleted and recreated looks to its consumer group like this: the committed offsets
/// lie beyond the partitions' ends, and what the broker serves starts again below them. The
/// table holds rows at those positions from before, which exactly-once bookkeeping would take
/// for the new records and skip as "already stored".
async fn offsets_that_go_back(kafka: Kafka) {
    let brokers = kafka.brokers();
    let topic = kafka.topic("recreated").await;
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, &format!("kafka_back_{}", kafka.tier())).await;
    produce(&brokers, &topic, 0, 2_000);
    let yaml = kafka.pipeline_yaml(&db, &topic);
    let (good, _) = expected(0, 2_000);
    run_until(&yaml, &w, &db, good).await;
    commit_for_group(&brokers, &format!("aurora-test-{db}"), &topic, 1_000_000);

    let status = run_to_its_end(&yaml).await;
    let PipelineState::Failed(reason) = &status.state else {
        panic!("exactly_once went on: {status:?}");
    };
    assert!(
        // Said when the first message comes from below the committed offset, or (on a
        // broker that serves nothing there instead of resetting) from the partition's end.
        (reason.contains("below the group's committed offset 1000000")
            || reason.contains("committed offset 1000000 is beyond the partition's end"))
            && reason.contains("`epoch`")
            && reason.contains("new `group`"),
        "{reason}"
    );
    assert_eq!(status.already_stored, 0, "{status:?}");
    assert_eq!(
        common::count(&w, &format!("SELECT count() FROM {db}.events")).await,
        good
    );

    // At least once: the records are stored as they come, with a warning saying why.
    let yaml = edit(&yaml, "delivery: exactly_once", "delivery: at_least_once");
    let status = run_until(&yaml, &w, &db, 2 * good).await;
    assert!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("committed offset")),
        "{status:?}"
    );

    // The way on for exactly-once: a new epoch and group read the new topic in full.
    let yaml = edit(
        &edit(&yaml, "delivery: at_least_once", "delivery: exactly_once"),
        &format!("group: aurora-test-{db}"),
        &format!("group: aurora-test-{db}-2\n        epoch: 2"),
    );
    run_until(&yaml, &w, &db, 3 * good).await;
    let epochs = common::scalar(
        &w,
        &format!("SELECT countIf(endsWith(_aurora_source, '@2')) FROM {db}.events"),
    )
    .await;
    assert_eq!(epochs, good.to_string());
}
