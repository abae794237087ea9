//! Kafka pipelines end to end against a real Kafka-protocol broker (librdkafka's mock cluster on
//! a loopback port) and a real ClickHouse: every event arrives exactly once, malformed messages
//! go to the dead-letter table, a restart resumes from the committed offsets, and a pipeline
//! process killed with SIGKILL mid-stream loses and duplicates nothing once restarted.

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
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;

/// Produces events with ids `first..first+count`; every 500th is not JSON.
fn produce(brokers: &str, topic: &str, first: u64, count: u64) -> u64 {
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
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    bad
}

/// Nothing the test produced may have been dropped by the mock's retention.
fn assert_nothing_dropped(brokers: &str, topic: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
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

fn pipeline_yaml(db: &str, brokers: &str, topic: &str) -> String {
    format!(
        "pipelines:
  - name: events_{db}
    source:
      kafka:
        brokers: [{brokers}]
        topic: {topic}
        group: aurora-test-{db}
        properties:
          session.timeout.ms: '6000'
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
async fn events_arrive_exactly_once_and_a_restart_resumes() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("events", PARTITIONS, 1).unwrap();
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "kafka_e2e").await;
    let bad = produce(&brokers, "events", 0, 20_000);
    assert_nothing_dropped(&brokers, "events");
    let yaml = pipeline_yaml(&db, &brokers, "events");

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
    produce(&brokers, "events", 20_000, 4_000);
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
async fn sigkill_mid_stream_loses_and_duplicates_nothing() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("crash", PARTITIONS, 1).unwrap();
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "kafka_crash").await;
    produce(&brokers, "crash", 0, 60_000);
    assert_nothing_dropped(&brokers, "crash");
    let dir = common::fresh_data_dir("kafka-crash");
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, pipeline_yaml(&db, &brokers, "crash")).unwrap();
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
            let yaml = pipeline_yaml(&db, &brokers, "crash").replace(
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
async fn validate_checks_brokers_and_topics() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("events", PARTITIONS, 1).unwrap();
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "kafka_validate").await;
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
    let (code, out) = validate(pipeline_yaml(&db, &brokers, "events"));
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = validate(pipeline_yaml(&db, &brokers, "evnets"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("topic `evnets` does not exist"), "{out}");
    assert!(out.contains("did you mean `events`"), "{out}");
    let dead = common::closed_port_url().replace("http://", "");
    let (code, out) = validate(pipeline_yaml(&db, &dead, "events"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("did not answer"), "{out}");

    // `pipeline init` samples the topic and proposes typed columns.
    produce(&brokers, "events", 0, 50);
    let o = common::aurora_command()
        .args([
            "pipeline",
            "init",
            "--from-kafka",
            "events",
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
    assert!(yaml.contains("topic: \"events\""), "{yaml}");
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
    let run = in_process(&pipeline_yaml(&db, &dead, "events")).await;
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
