//! `aurora size` as a user runs it: figures checked against a hand calculation, each with the
//! rule it came from, JSON for scripts, and a table's measured compression taken from the
//! server.

mod common;

fn size(args: &[&str]) -> (bool, String, String) {
    let o = common::aurora_command()
        .args(["--url", &common::url(), "size"])
        .args(args)
        .output()
        .expect("run aurora size");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn the_figures_are_the_hand_calculation_with_their_sources() {
    // 20,000 events/s x 1,000 bytes = 20 MB/s = 1,728 GB/day; 14 days / 10x = 2,419.2 GB per
    // replica, / 0.8 = 3,024 GB of disk, x 3 replicas = 9,072 GB; vCPU: 20/10 + (2 + 20/10) =
    // 6; RAM: more than 200 GB of data, 128 GB; partitions: 20 MB/s / 10 = 2.
    let (ok, out, err) = size(&[
        "--events-per-second",
        "20000",
        "--bytes-per-event",
        "1000",
        "--retention-days",
        "14",
        "--replicas",
        "3",
        "--queries-per-second",
        "2",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let figure = |name: &str| {
        json["figures"]
            .as_array()
            .expect("figures")
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name}: {json}"))
            .clone()
    };
    assert_eq!(figure("ingest_mb_per_second")["value"], 20.0);
    let data = figure("clickhouse_data_gb_per_replica")["value"]
        .as_f64()
        .expect("a number");
    assert!((data - 2419.2).abs() < 1e-6, "{data}");
    assert_eq!(figure("clickhouse_disk_gb_per_replica")["value"], 3024.0);
    assert_eq!(figure("clickhouse_disk_gb_total")["value"], 9072.0);
    assert_eq!(figure("clickhouse_vcpu_per_replica")["value"], 6.0);
    assert_eq!(figure("clickhouse_ram_gb_per_replica")["value"], 128.0);
    assert_eq!(figure("kafka_partitions")["value"], 2.0);
    assert_eq!(figure("aurora_daemons")["value"], 1.0);
    assert_eq!(figure("batch_max_rows")["value"], 20000.0);
    assert!(figure("clickhouse_vcpu_per_replica")["source"]
        .as_str()
        .is_some_and(|s| s.contains("1 vCPU per 10 MB/s")));

    let (ok, out, err) = size(&["--events-per-second", "20000", "--bytes-per-event", "1000"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("clickhouse_vcpu_per_replica"), "{out}");
    assert!(out.contains("[1] your workload"), "{out}");
    assert!(out.contains("Bulk inserts"), "{out}");
    assert!(out.contains("Confluent"), "{out}");

    let (ok, _, err) = size(&["--events-per-second", "0", "--bytes-per-event", "10"]);
    assert!(!ok);
    assert!(
        err.contains("--events-per-second must be a number above 0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tables_measured_compression_is_used() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "size_compression").await;
    w.execute(&format!(
        "CREATE TABLE {db}.t (n UInt64, s String) ENGINE = MergeTree ORDER BY n"
    ))
    .await
    .expect("create");
    w.execute(&format!(
        "INSERT INTO {db}.t SELECT number, concat('repeated text ', toString(number % 10)) FROM system.numbers LIMIT 200000"
    ))
    .await
    .expect("insert");
    let r = w
        .query(
            &format!(
                "SELECT sum(data_uncompressed_bytes) / sum(data_compressed_bytes) FROM system.parts \
                 WHERE active AND database = '{db}' AND table = 't'"
            ),
            &aurora::warehouse::QueryOptions::default(),
        )
        .await
        .expect("the ratio");
    let expected: f64 = r.rows[0][0].to_string().parse().expect("a number");
    assert!(expected > 1.5, "{expected}");
    let table = format!("{db}.t");
    let (ok, out, err) = size(&[
        "--events-per-second",
        "1000",
        "--bytes-per-event",
        "100",
        "--from-table",
        &table,
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let used = json["workload"]["compression"].as_f64().expect("a ratio");
    assert!((used - expected).abs() < 1e-6, "{used} vs {expected}");
}
