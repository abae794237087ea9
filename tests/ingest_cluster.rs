//! Pipelines into a ClickHouse cluster, on two real servers on loopback with ZooKeeper
//! (tests/common/cluster.rs): through a Distributed table created `ON CLUSTER`; to the two
//! shards directly with SIGKILL at random moments (every id exactly once across the shards);
//! and to a replicated shard whose first replica is down, where a part sent twice is stored
//! once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use aurora::ingest::pipeline::check_str;
use aurora::ingest::sinks::clickhouse::ClickHouseSink;
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse};
use common::cluster::cluster;

async fn connect(url: &str) -> Warehouse {
    Warehouse::connect(ConnectionSettings::new(url))
        .await
        .expect("connect to a cluster server")
}

async fn stat(w: &Warehouse, sql: &str) -> Vec<u64> {
    let r = w
        .query(sql, &QueryOptions::unrestricted())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    r.rows[0]
        .iter()
        .map(|v| v.to_string().parse().unwrap_or(0))
        .collect()
}

/// `rows` CSV rows with ids `0..rows`; every 500th has a bad amount.
fn write_csv(path: &Path, rows: u64) -> (u64, u64) {
    let mut text = String::from("id,amount\n");
    let (mut good, mut sum) = (0, 0);
    for id in 0..rows {
        if id % 500 == 499 {
            text.push_str(&format!("{id},oops\n"));
        } else {
            text.push_str(&format!("{id},{}.5\n", id % 97));
            good += 1;
            sum += id;
        }
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    (good, sum)
}

struct Fixture {
    dir: PathBuf,
    pipeline: PathBuf,
    db: String,
}

impl Fixture {
    /// A CSV pipeline into `{db}.orders` with the given `cluster:` block.
    fn new(name: &str, cluster_yaml: &str, create: &str, max_rows: u64) -> Fixture {
        let dir = common::fresh_data_dir(name);
        let db = format!("t_{name}");
        let pipeline = dir.join("pipeline.yaml");
        std::fs::write(
            &pipeline,
            format!(
                "pipelines:
  - name: {name}
    source:
      csv:
        path: data/*.csv
    mapping:
      columns:
        id: {{type: UInt64}}
        amount: {{type: Float64}}
    sink:
      table: {db}.orders
      create: {create}
      order_by: [id]
      batch: {{max_rows: {max_rows}, max_wait: 100ms}}
      cluster: {cluster_yaml}
    delivery: exactly_once
    dead_letter:
      table: {db}.orders_dlq
"
            ),
        )
        .unwrap();
        Fixture { dir, pipeline, db }
    }

    fn run(&self) -> Command {
        let mut cmd = common::aurora_command();
        cmd.args(["--url", &cluster().urls()[0]]).args([
            "pipeline",
            "run",
            self.pipeline.to_str().unwrap(),
            "--state-dir",
            self.dir.join("state").to_str().unwrap(),
            "--json",
        ]);
        cmd
    }

    fn run_to_end(&self) {
        let o = self.run().output().expect("run aurora");
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Both servers' databases of this test, dropped first (a test may run again on a kept cluster).
async fn fresh_database(db: &str) -> Vec<Warehouse> {
    let mut servers = Vec::new();
    for url in cluster().urls() {
        let w = connect(&url).await;
        w.execute(&format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .unwrap();
        servers.push(w);
    }
    servers
}

#[tokio::test(flavor = "multi_thread")]
async fn through_a_distributed_table_created_on_the_cluster() {
    let f = Fixture::new(
        "cluster_distributed",
        "{name: two_shards, sharding_key: id}",
        "if_missing",
        1_000,
    );
    let servers = fresh_database(&f.db).await;
    let (good, sum) = write_csv(&f.dir.join("data/orders.csv"), 20_000);
    f.run_to_end();

    let engine = common::scalar(
        &servers[0],
        &format!(
            "SELECT engine FROM system.tables WHERE database = '{}' AND name = 'orders'",
            f.db
        ),
    )
    .await;
    assert_eq!(engine, "Distributed");
    // As soon as the run ends, every row is on its shard: the inserts were synchronous.
    let mut on_shards = 0;
    for w in &servers {
        let [n] = stat(w, &format!("SELECT count() FROM {}.orders_local", f.db)).await[..] else {
            unreachable!()
        };
        assert!(n > good / 4, "a shard holds only {n} of {good} rows");
        on_shards += n;
    }
    assert_eq!(on_shards, good);
    assert_eq!(
        stat(
            &servers[1],
            &format!(
                "SELECT count(), uniqExact(id), sum(id) FROM {}.orders",
                f.db
            )
        )
        .await,
        vec![good, good, sum]
    );
    // The bad rows are in the dead-letter table, on the pipeline's own server.
    assert_eq!(
        stat(
            &servers[0],
            &format!("SELECT count() FROM {}.orders_dlq", f.db)
        )
        .await,
        vec![20_000 / 500]
    );
}

/// Runs the pipeline and SIGKILLs it once the shards hold `target` rows together. Returns
/// whether it was still running then.
async fn run_and_kill(f: &Fixture, servers: &[Warehouse], target: u64) -> bool {
    let sql = format!("SELECT count() FROM {}.orders", f.db);
    common::run_and_kill_when(&mut f.run(), || async {
        let mut stored = 0;
        for w in servers {
            stored += common::count(w, &sql).await;
        }
        stored >= target
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn to_the_shards_directly_exactly_once_across_sigkills() {
    let urls = cluster().urls();
    let f = Fixture::new(
        "cluster_direct",
        &format!("{{shards: [{}, {}]}}", urls[0], urls[1]),
        "if_missing",
        500,
    );
    let servers = fresh_database(&f.db).await;
    let (good, sum) = write_csv(&f.dir.join("data/orders.csv"), 60_000);
    let mut kills = 0;
    for (i, eighths) in [1u64, 3, 4, 6].iter().enumerate() {
        if run_and_kill(&f, &servers, good * eighths / 8).await {
            kills += 1;
        }
        if i == 1 {
            // Without saved positions, only the shards' own bookkeeping prevents duplicates.
            let _ = std::fs::remove_dir_all(f.dir.join("state"));
        }
    }
    assert!(kills >= 3, "only {kills} runs were still going when killed");
    f.run_to_end();

    let mut totals = [0u64; 3];
    for w in &servers {
        let shard = stat(
            w,
            &format!(
                "SELECT count(), uniqExact(id), sum(id) FROM {}.orders",
                f.db
            ),
        )
        .await;
        assert!(
            shard[0] > good / 4,
            "a shard holds only {} of {good} rows",
            shard[0]
        );
        for (t, s) in totals.iter_mut().zip(&shard) {
            *t += s;
        }
    }
    // Distinct ids per shard add up to all ids only if no id is on both shards.
    assert_eq!(totals, [good, good, sum]);
    assert_eq!(
        stat(
            &servers[0],
            &format!("SELECT count(), uniqExact(offset) FROM {}.orders_dlq", f.db)
        )
        .await,
        vec![60_000 / 500, 60_000 / 500]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replicated_shard_with_a_replica_down_stores_a_part_sent_twice_once() {
    let urls = cluster().urls();
    let db = "t_cluster_replicated";
    let servers = fresh_database(db).await;
    for sql in [
        format!("CREATE DATABASE {db} ON CLUSTER one_shard"),
        format!(
            "CREATE TABLE {db}.orders ON CLUSTER one_shard (id UInt64, amount Float64, \
             _aurora_source String, _aurora_offset UInt64) \
             ENGINE = ReplicatedMergeTree('/clickhouse/tables/pair/{db}/orders', '{{replica}}') ORDER BY id"
        ),
    ] {
        servers[0].execute(&sql).await.unwrap();
    }
    // The shard's first replica does not answer; the second takes the writes.
    let yaml = format!(
        "pipelines:
  - name: replicated
    source: {{csv: {{path: x.csv}}}}
    sink:
      table: {db}.orders
      cluster: {{shards: [[{}, {}]]}}
    delivery: exactly_once
",
        common::closed_port_url(),
        urls[1]
    );
    let pipeline = check_str("p.yaml", &yaml).unwrap().remove(0);
    let sink = ClickHouseSink::prepare(Arc::new(connect(&urls[0]).await), &pipeline)
        .await
        .expect("the sink starts with one replica down");
    let records = common::prepared(
        &sink,
        (0..1_000u64).map(|id| serde_json::json!({"id": id, "amount": 1.5})),
    );
    // Sent twice, as after an acknowledgement lost on the way back: the replicated table
    // recognises the same bytes and keeps one copy.
    for _ in 0..2 {
        assert!(sink.insert_prepared(&records).await.unwrap().is_empty());
    }
    servers[0]
        .execute(&format!("SYSTEM SYNC REPLICA {db}.orders"))
        .await
        .unwrap();
    for w in &servers {
        assert_eq!(
            stat(
                w,
                &format!("SELECT count(), uniqExact(id) FROM {db}.orders")
            )
            .await,
            vec![1_000, 1_000]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shard_none_of_whose_replicas_answers_is_named() {
    let (a, b) = (common::closed_port_url(), common::closed_port_url());
    let yaml = format!(
        "pipelines:
  - name: unreachable
    source: {{csv: {{path: x.csv}}}}
    sink:
      table: t_cluster_unreachable.orders
      cluster: {{shards: [{}, [{a}, {b}]]}}
",
        cluster().urls()[0]
    );
    let pipeline = check_str("p.yaml", &yaml).unwrap().remove(0);
    let w = Arc::new(connect(&cluster().urls()[0]).await);
    w.execute("CREATE DATABASE IF NOT EXISTS t_cluster_unreachable")
        .await
        .unwrap();
    w.execute(
        "CREATE TABLE IF NOT EXISTS t_cluster_unreachable.orders (id UInt64, \
         _aurora_source String, _aurora_offset UInt64) ENGINE = MergeTree ORDER BY id",
    )
    .await
    .unwrap();
    let sink = ClickHouseSink::prepare(w, &pipeline).await.unwrap();
    let records = common::prepared(&sink, (0..20u64).map(|id| serde_json::json!({"id": id})));
    let err = sink
        .insert_prepared(&records)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "shard 2 of the cluster sink ({a}, {b}): no replica answers"
        )),
        "{err}"
    );
    assert!(err.contains("sink.cluster.shards"), "{err}");
}
