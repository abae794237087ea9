//! Kafka pipelines end to end against a real Kafka-protocol broker and a real ClickHouse: every
//! event arrives exactly once, malformed messages go to the dead-letter table, a restart resumes
//! from the committed offsets, and a pipeline process killed with SIGKILL mid-stream loses and
//! duplicates nothing once restarted. Each scenario runs on two tiers: librdkafka's mock cluster
//! in this process (`_on_mock`) and an independent broker process, tansu or the brokers in
//! `AURORA_TEST_KAFKA_BROKERS` (`_on_tansu`, see `common::tansu`).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use aurora::config::KafkaConfig;
use aurora::ingest::engine::{self, PipelineRun, PipelineState, PipelineStatus};
use aurora::ingest::pipeline::check_str;
use aurora::warehouse::{QueryOptions, Warehouse};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DefaultProducerContext, Producer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;

/// Produces events with ids `first..first+count`; every 500th is not JSON.
fn produce(brokers: &str, topic: &str, first: u64, count: u64) -> u64 {
    produce_steadily(brokers, topic, first, count, Duration::ZERO)
}

/// Like `produce`, with a `pause` after every 250 events to spread them over time.
fn produce_steadily(brokers: &str, topic: &str, first: u64, count: u64, pause: Duration) -> u64 {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // The mock keeps at most 100k message sets per partition: batch them.
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut bad = 0;
    for id in first..first + count {
        let payload = if id % 500 == 499 {
            bad += 1;
            format!("{{broken json {id}")
        } else {
            format!(
                r#"{{"id": {id}, "ts": {}, "user": {{"name": "u{}"}}, "amount": "{}.{:02}"}}"#,
                1_700_000_000_000u64 + id * 1000,
                id % 97,
                id % 300,
                id % 100
            )
        };
        let key = id.to_string();
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&payload)) {
                Ok(()) => break,
                Err((_, _)) => producer.poll(Duration::from_millis(10)),
            }
        }
        if !pause.is_zero() && (id - first) % 250 == 249 {
            std::thread::sleep(pause);
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
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
async fn sigkill_mid_stream_loses_and_duplicates_nothing_on_mock() {
    sigkill_mid_stream_loses_and_duplicates_nothing(Kafka::mock()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_stream_loses_and_duplicates_nothing_on_tansu() {
    sigkill_mid_stream_loses_and_duplicates_nothing(Kafka::tansu()).await;
}

async fn sigkill_mid_stream_loses_and_duplicates_nothing(kafka: Kafka) {
    let brokers = kafka.brokers();
    let topic = kafka.topic("crash").await;
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, &format!("kafka_crash_{}", kafka.tier())).await;
    produce(&brokers, &topic, 0, 60_000);
    kafka.assert_nothing_dropped(&topic);
    let dir = common::fresh_data_dir("kafka-crash");
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, kafka.pipeline_yaml(&db, &topic)).unwrap();
    let spawn = || {
        common::aurora_command()
            .args(["--url", &common::url(), "pipeline", "run"])
            .arg(&file)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (good, sum) = expected(0, 60_000);
    let mut kills = 0;
    for (round, eighths) in [1u64, 3, 5, 6].into_iter().enumerate() {
        if round == 2 {
            // Lose the committed offsets too (a new group, as after offsets expired): the
            // group re-reads everything and only the table's bookkeeping prevents duplicates.
            let yaml = kafka.pipeline_yaml(&db, &topic).replace(
                &format!("aurora-test-{db}"),
                &format!("aurora-test-{db}-again"),
            );
            std::fs::write(&file, yaml).unwrap();
        }
        let mut child = spawn();
        wait_until(
            &w,
            &format!("SELECT count() FROM {db}.events"),
            good * eighths / 8,
        )
        .await;
        if matches!(child.try_wait(), Ok(None)) {
            kills += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(kills >= 3, "only {kills} kills landed mid-stream");
    // The last run goes to the end, then is stopped like a service.
    let mut child = spawn();
    wait_until(&w, &format!("SELECT count() FROM {db}.events"), good).await;
    // Let it finish the dead letters too, then stop it gracefully.
    let (_, bad) = (0, 60_000 / 500);
    wait_until(&w, &format!("SELECT count() FROM {db}.events_dlq"), bad).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(stats(&w, &db).await, (good, good, sum));
    assert_eq!(
        common::count(
            &w,
            &format!("SELECT count() - uniqExact(offset, source) FROM {db}.events_dlq")
        )
        .await,
        0
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

/// `pipeline init` samples the topic and proposes typed columns.
async fn pipeline_init_samples_a_topic(kafka: Kafka) {
    let brokers = kafka.brokers();
    let topic = kafka.topic("events").await;
    produce(&brokers, &topic, 0, 50);
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
