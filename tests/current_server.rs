//! Aurora against a current ClickHouse engine (26.x): chdb behind the tests' own HTTP front
//! (tests/common/current.rs; a harness, its HTTP layer is not ClickHouse's). Capabilities'
//! choices for the version, the query runner decoding current types, RowBinary writes of
//! current types read back like JSONEachRow ones, and the dry run.

mod common;

use std::sync::Arc;

use aurora::ingest::pipeline::check_str;
use aurora::ingest::sinks::clickhouse::{ClickHouseSink, RowFormat};
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse};
use serde_json::{json, Value};

async fn current() -> Warehouse {
    Warehouse::connect(ConnectionSettings::new(common::current::url()))
        .await
        .expect("connect to the chdb harness")
}

#[tokio::test(flavor = "multi_thread")]
async fn capabilities_follow_the_current_version() {
    let w = current().await;
    let caps = w.capabilities();
    assert!(
        caps.version_text.starts_with("26."),
        "{}",
        caps.version_text
    );
    assert!(caps.explain && caps.datetime64 && caps.window_functions);
    assert!(caps.multiple_joins && caps.to_start_of_interval && caps.with_fill);
    assert!(caps.query_parameters && caps.insert_deduplication_token && caps.int128);
    assert!(caps.row_binary_with_names_and_types && caps.compressed_responses);
    assert!(!caps.low_cardinality_needs_flag);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_query_runner_decodes_current_types() {
    let w = current().await;
    let sql = "SELECT
        toDateTime64('2024-03-01 12:34:56.789', 3, 'Asia/Tokyo') AS dt64,
        toDate32('1950-06-01') AS d32,
        map('a', 1, 'b', 2) AS m,
        CAST((1, 'x'), 'Tuple(id UInt8, name String)') AS named,
        CAST('b', 'Enum8(\\'a\\' = 1, \\'b\\' = 2)') AS e,
        toIPv4('10.0.0.1') AS v4,
        toIPv6('2001:db8::1') AS v6,
        toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0') AS u,
        toInt128('-170141183460469231731687303715884105728') AS i128,
        toUInt256('115792089237316195423570985008687907853269984665640564039457584007913129639935') AS u256,
        toDecimal128('-12.3456789', 7) AS dec,
        true AS b,
        [NULL, 1] AS arr,
        CAST([(1, 'p')], 'Nested(k UInt8, v String)') AS nested,
        toLowCardinality(toNullable('lc')) AS lc";
    let r = w
        .query(sql, &QueryOptions::unrestricted())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let cells: Vec<(String, String, String)> = r
        .columns
        .iter()
        .zip(&r.rows[0])
        .map(|(c, v)| (c.name.clone(), c.type_name.clone(), format!("{v:?}")))
        .collect();
    let shown: Vec<(String, String)> = r
        .columns
        .iter()
        .zip(&r.rows[0])
        .map(|(c, v)| (c.name.clone(), v.to_string()))
        .collect();
    let get = |name: &str| {
        shown
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no column {name}: {cells:?}"))
    };
    assert_eq!(get("dt64"), "2024-03-01 12:34:56.789", "{cells:?}");
    assert_eq!(get("d32"), "1950-06-01");
    assert_eq!(get("e"), "b");
    assert_eq!(get("v4"), "10.0.0.1");
    assert_eq!(get("v6"), "2001:db8::1");
    assert_eq!(get("u"), "61f0c404-5cb3-11e7-907b-a6006ad3dba0");
    assert_eq!(get("i128"), "-170141183460469231731687303715884105728");
    assert_eq!(
        get("u256"),
        "115792089237316195423570985008687907853269984665640564039457584007913129639935"
    );
    assert_eq!(get("dec"), "-12.3456789");
    assert_eq!(get("b"), "true");
    assert_eq!(get("lc"), "lc");
    let debug = |name: &str| {
        cells
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, d)| d.clone())
            .unwrap()
    };
    assert!(debug("m").starts_with("Map("), "{cells:?}");
    assert!(debug("named").contains("Some(\"id\")"), "{cells:?}");
    assert!(debug("arr").starts_with("Array([Null, "), "{cells:?}");
    assert!(debug("nested").starts_with("Array([Tuple("), "{cells:?}");
}

const CURRENT_COLUMNS: &str = "
    id UInt64, dt64 DateTime64(3, 'UTC'), d32 Date32, flag Bool, v4 IPv4, v6 IPv6, u UUID,
    lc LowCardinality(Nullable(String)), arr Array(Nullable(Int16)), dec Decimal(38, 10),
    f Float32, s String,
    _aurora_source String, _aurora_offset UInt64";

fn records() -> Vec<Value> {
    vec![
        json!({"id": 1, "dt64": "2024-03-01 12:34:56.789", "d32": "1950-06-01", "flag": true,
               "v4": "10.0.0.1", "v6": "2001:db8::1", "u": "61f0c404-5cb3-11e7-907b-a6006ad3dba0",
               "lc": null, "arr": [null, -3], "dec": "-1234567890123456789012345678.0123456789",
               "f": "nan", "s": "ünïcode"}),
        json!({"id": 2, "dt64": "1900-01-01 00:00:00", "d32": "2299-12-31", "flag": 0,
               "v4": "255.255.255.255", "v6": "1.2.3.4", "u": "00000000-0000-0000-0000-000000000001",
               "lc": "x", "arr": [], "dec": 0, "f": -1.5, "s": ""}),
    ]
}

async fn sink(table: &str, format: &str) -> ClickHouseSink {
    let yaml = format!(
        "pipelines:
  - name: {}
    source: {{csv: {{path: x.csv}}}}
    sink: {{table: {table}, format: {format}}}
",
        table.replace('.', "-")
    );
    let pipeline = check_str("p.yaml", &yaml).unwrap().remove(0);
    ClickHouseSink::prepare(Arc::new(current().await), &pipeline)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn row_binary_writes_current_types_like_json_each_row() {
    let w = current().await;
    w.execute("CREATE DATABASE IF NOT EXISTS cur")
        .await
        .unwrap();
    for t in ["binary", "json"] {
        w.execute(&format!("DROP TABLE IF EXISTS cur.{t}"))
            .await
            .unwrap();
        w.execute(&format!(
            "CREATE TABLE cur.{t} ({CURRENT_COLUMNS}) ENGINE = MergeTree ORDER BY id"
        ))
        .await
        .unwrap();
    }
    let binary = sink("cur.binary", "auto").await;
    let json = sink("cur.json", "json_each_row").await;
    assert_eq!(binary.format(), RowFormat::RowBinary);
    assert_eq!(json.format(), RowFormat::JsonEachRow);
    for sink in [&binary, &json] {
        let prepared = common::prepared(sink, records());
        for p in &prepared {
            assert!(p.row.is_ok(), "{:?}", p.row);
        }
        assert_eq!(sink.insert_prepared(&prepared).await.unwrap(), vec![]);
    }
    let read = |t: &str| {
        let w = &w;
        let sql = format!("SELECT * FROM cur.{t} ORDER BY id");
        async move {
            let r = w.query(&sql, &QueryOptions::unrestricted()).await.unwrap();
            r.rows
                .iter()
                .map(|row| row.iter().map(|v| v.to_string()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        }
    };
    let (b, j) = (read("binary").await, read("json").await);
    assert_eq!(b.len(), 2);
    assert_eq!(b, j);
    assert_eq!(b[0][1], "2024-03-01 12:34:56.789");
    assert_eq!(b[0][9], "-1234567890123456789012345678.0123456789");
    assert_eq!(b[1][5], "::ffff:1.2.3.4");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dry_run_checks_queries_on_a_current_engine() {
    let w = current().await;
    let ok = w
        .dry_run("SELECT number, toStartOfInterval(now(), INTERVAL 5 MINUTE) FROM numbers(3)")
        .await
        .unwrap();
    assert_eq!(ok.columns.len(), 2);
    let err = w.dry_run("SELECT nope(1)").await.unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_sent_again_with_other_bytes_is_deduplicated_by_its_token() {
    let w = current().await;
    w.execute("CREATE DATABASE IF NOT EXISTS cur")
        .await
        .unwrap();
    w.execute("DROP TABLE IF EXISTS cur.dedup").await.unwrap();
    w.execute(
        "CREATE TABLE cur.dedup (id UInt64, note String, _aurora_source String, \
         _aurora_offset UInt64) ENGINE = MergeTree ORDER BY id \
         SETTINGS non_replicated_deduplication_window = 100",
    )
    .await
    .unwrap();
    let sink = sink("cur.dedup", "auto").await;
    // The same positions twice, the second time with other contents (as after a mapping
    // change): the token names the positions, so the server keeps the first part only.
    for note in ["first", "second"] {
        let prepared =
            common::prepared(&sink, (0..10u64).map(|id| json!({"id": id, "note": note})));
        assert_eq!(sink.insert_prepared(&prepared).await.unwrap(), vec![]);
    }
    let r = w
        .query(
            "SELECT count(), groupUniqArray(note) FROM cur.dedup",
            &QueryOptions::unrestricted(),
        )
        .await
        .unwrap();
    assert_eq!(r.rows[0][0].to_string(), "10");
    assert_eq!(r.rows[0][1].to_string(), "['first']");
}

/// `aurora rbac render` picks SQL for a current server, and ClickHouse 26's own parser reads
/// every statement it writes. (chdb has no access storage, so the roles cannot be created
/// and tried here: the users.xml form is the one tested for enforcement, on 18.16.)
#[tokio::test(flavor = "multi_thread")]
async fn rendered_role_sql_parses_on_a_current_server() {
    let dir = common::fresh_data_dir("rbac-current");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "audit: {{path: {}}}\nrbac:\n  roles:\n    analyst:\n      actions: [query]\n      databases: [shop]\n      tables: [web.events]\n      hide_columns: [shop.customers.email]\n      row_filters: {{shop.orders: \"country = 'DE' AND total > 0\"}}\n    admin: {{actions: [\"*\"], databases: [\"*\"]}}\n",
            dir.join("audit.jsonl").display()
        ),
    )
    .unwrap();
    let out = common::aurora_command()
        .env("AURORA_CONFIG", &config)
        .args(["--url", common::current::url(), "rbac", "render"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statements: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("--") && l.ends_with(';'))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(statements.len() >= 8, "{stdout}");
    assert!(stdout.contains("CREATE ROW POLICY"), "{stdout}");
    assert!(stdout.contains("REVOKE SELECT(email)"), "{stdout}");
    let w = current().await;
    for statement in statements {
        w.query(
            &format!("EXPLAIN AST {statement}"),
            &QueryOptions::unrestricted(),
        )
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}
