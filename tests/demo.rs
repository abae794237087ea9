//! The live demo end to end, against a real private ClickHouse server and the demo's own
//! in-process Kafka: `aurora demo --headless` as a user runs it stores live events next to the
//! sample week, each exactly once, with the malformed ones in the dead-letter table; and the
//! supervisor pauses, resumes and restarts the demo pipeline without losing or repeating an
//! event. Both tests share `demo.events`; each counts only its own run's rows (its topic).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aurora::demo::{self, LiveDemo, LiveDemoOptions, PIPELINE_NAME};
use aurora::ingest::engine::PipelineState;
use aurora::ingest::supervisor::{PipelineControl, PipelineSnapshot, SupervisorError};
use aurora::warehouse::Warehouse;

/// Loads the sample (and adds the bookkeeping columns) once, before any demo runs, so two
/// demos starting together never both load it.
async fn setup() -> Arc<Warehouse> {
    static SETUP: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let warehouse = Arc::new(common::warehouse().await);
    SETUP
        .get_or_init(|| async {
            demo::load_sample(&warehouse, false)
                .await
                .expect("load the sample");
            demo::add_bookkeeping_columns(&warehouse)
                .await
                .expect("add the bookkeeping columns");
        })
        .await;
    warehouse
}

/// Counts of one run's rows in `demo.events`: rows, distinct event ids, distinct positions.
async fn run_rows(warehouse: &Warehouse, topic: &str) -> (u64, u64, u64) {
    let sql = format!(
        "SELECT count(), uniqExact(event_id), uniqExact(_aurora_source, _aurora_offset) \
         FROM demo.events WHERE _aurora_source LIKE 'kafka:{topic}:%'"
    );
    let r = warehouse
        .query(&sql, &aurora::warehouse::QueryOptions::unrestricted())
        .await
        .expect("count the run's rows");
    let n = |i: usize| r.rows[0][i].to_string().parse::<u64>().unwrap();
    (n(0), n(1), n(2))
}

async fn run_rejected(warehouse: &Warehouse, topic: &str) -> u64 {
    common::count(
        warehouse,
        &format!(
            "SELECT count() FROM demo.events_rejected \
             WHERE pipeline = '{PIPELINE_NAME}' AND source LIKE 'kafka:{topic}:%'"
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_demo_stores_live_events_exactly_once_next_to_the_sample() {
    let warehouse = setup().await;
    let url = common::url();
    let output = tokio::task::spawn_blocking(move || {
        common::aurora_command()
            .args(["--url", &url, "demo", "--headless", "--duration", "10s"])
            .args(["--json", "--rate", "300", "--seed", "11"])
            .output()
            .expect("run aurora demo")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Progress every 5 s on stderr; stdout is the one JSON object.
    assert!(stderr.contains("] produced "), "{stderr}");
    let totals: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    let get = |key: &str| {
        totals[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {totals}"))
    };
    let (produced, malformed, stored, dead) = (
        get("produced"),
        get("malformed"),
        get("stored"),
        get("dead_lettered"),
    );
    assert_eq!(totals["state"], "stopped", "{totals}");
    assert!(stored > 0 && dead > 0, "{totals}");
    // The pipeline drained before stopping: every message is accounted for, once.
    assert_eq!(stored + dead, produced, "{totals}");
    assert_eq!(dead, malformed, "{totals}");
    assert_eq!(get("lag"), 0, "{totals}");

    let topic = totals["topic"].as_str().unwrap();
    let (rows, ids, positions) = run_rows(&warehouse, topic).await;
    assert_eq!((rows, ids, positions), (stored, stored, stored), "{totals}");
    assert_eq!(run_rejected(&warehouse, topic).await, dead);
    // Live events sit beside the sample week: new ids, current times; the sample is intact.
    let sample = common::count(
        &warehouse,
        "SELECT count() FROM demo.events WHERE _aurora_source = ''",
    )
    .await;
    assert_eq!(sample, 5000);
    let live_recent = common::count(
        &warehouse,
        &format!(
            "SELECT count() FROM demo.events WHERE _aurora_source LIKE 'kafka:{topic}:%' \
             AND event_id > 5000 AND event_time > now() - INTERVAL 10 MINUTE \
             AND event_type IN ('page_view', 'add_to_cart', 'purchase')"
        ),
    )
    .await;
    assert_eq!(live_recent, stored);
}

/// Polls the demo pipeline's snapshot until `done` holds (a minute at most).
async fn wait_for(
    demo: &LiveDemo,
    what: &str,
    done: impl Fn(&PipelineSnapshot) -> bool,
) -> PipelineSnapshot {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let snapshot = demo.pipeline();
        if done(&snapshot) {
            return snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {snapshot:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_resuming_and_restarting_the_demo_pipeline_loses_and_repeats_nothing() {
    let warehouse = setup().await;
    let demo = LiveDemo::start(
        warehouse.clone(),
        LiveDemoOptions {
            rate_per_sec: 400.0,
            seed: Some(5),
            state_dir: None,
        },
    )
    .await
    .expect("start the live demo");
    let supervisor = demo.supervisor();
    let topic = demo.topic().to_string();
    wait_for(&demo, "the first rows", |s| s.status.rows_written > 0).await;
    assert_eq!(supervisor.running(), 1);

    supervisor
        .control(PIPELINE_NAME, PipelineControl::Pause)
        .await
        .unwrap();
    let paused = demo.pipeline();
    assert!(paused.paused && paused.controllable, "{paused:?}");
    assert_eq!(paused.status.state, PipelineState::Stopped);
    assert_eq!(
        paused.status.rows_per_sec, 0.0,
        "a stopped pipeline shows no rate"
    );
    assert_eq!(supervisor.running(), 0);
    // Everything read before the pause was stored before it stopped.
    let stored_at_pause = paused.status.rows_written;
    assert_eq!(run_rows(&warehouse, &topic).await.0, stored_at_pause);
    // Pausing a paused pipeline changes nothing.
    supervisor
        .control(PIPELINE_NAME, PipelineControl::Pause)
        .await
        .unwrap();
    let produced_at_pause = demo.generator_counts().produced;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(demo.pipeline().status.rows_written, stored_at_pause);
    assert!(demo.generator_counts().produced > produced_at_pause);

    supervisor
        .control(PIPELINE_NAME, PipelineControl::Resume)
        .await
        .unwrap();
    assert!(!demo.pipeline().paused);
    assert_eq!(supervisor.running(), 1);
    // It picks up where it stopped: the backlog of the pause arrives.
    wait_for(&demo, "the backlog of the pause", |s| {
        s.status.rows_written + s.status.dead_lettered >= produced_at_pause
            && s.status.state == PipelineState::Running
    })
    .await;
    // Resuming a running pipeline changes nothing.
    supervisor
        .control(PIPELINE_NAME, PipelineControl::Resume)
        .await
        .unwrap();
    assert_eq!(demo.pipeline().status.state, PipelineState::Running);

    supervisor
        .control(PIPELINE_NAME, PipelineControl::Restart)
        .await
        .unwrap();
    // Includes the batch the stop stored; the new run has to store more.
    let before_restart = demo.pipeline().status.rows_written;
    wait_for(&demo, "rows after the restart", |s| {
        s.status.rows_written > before_restart && s.status.state == PipelineState::Running
    })
    .await;

    let unknown = supervisor
        .control("no-such-pipeline", PipelineControl::Pause)
        .await;
    assert!(
        matches!(unknown, Err(SupervisorError::Unknown(_))),
        "{unknown:?}"
    );

    let report = demo.shutdown().await;
    let status = &report.pipeline.status;
    assert_eq!(status.state, PipelineState::Stopped, "{report:?}");
    assert!(report.pipeline.recent_errors.is_empty(), "{report:?}");
    // Counters carried on across the three runs; every message produced is accounted for.
    assert_eq!(
        status.rows_written + status.dead_lettered,
        report.generated.produced,
        "{report:?}"
    );
    assert_eq!(status.dead_lettered, report.generated.malformed);
    let (rows, ids, positions) = run_rows(&warehouse, &topic).await;
    assert_eq!(rows, status.rows_written, "{report:?}");
    assert_eq!((ids, positions), (rows, rows), "no event stored twice");
    assert_eq!(run_rejected(&warehouse, &topic).await, status.dead_lettered);
    assert!(matches!(
        supervisor
            .control(PIPELINE_NAME, PipelineControl::Resume)
            .await,
        Err(SupervisorError::ShutDown)
    ));
}
