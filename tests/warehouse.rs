//! The ClickHouse layer against a real server started by Aurora's own manager: typed results,
//! limits, cancellation, streaming, dry runs, schema introspection, error decoding, and each
//! server quirk listed in ARCHITECTURE.md.

mod common;

use std::time::Duration;

use aurora::warehouse::value::Value;
use aurora::warehouse::{
    ConnectionSettings, OverflowMode, QueryOptions, Warehouse, WarehouseError,
};

fn server_code(err: &WarehouseError) -> Option<u32> {
    err.server().map(|e| e.code)
}

#[tokio::test]
async fn uint64_and_other_integers_survive_exactly() {
    let w = common::warehouse().await;
    let r = w
        .query(
            "SELECT toUInt64(18446744073709551615) AS u64max, toInt64(-9223372036854775808) AS i64min, \
             toUInt32(4294967295) AS u32max, toInt8(-128) AS i8",
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.columns[0].type_name, "UInt64");
    assert_eq!(r.rows[0][0], Value::UInt(u64::MAX));
    assert_eq!(r.rows[0][1], Value::Int(i64::MIN));
    assert_eq!(r.rows[0][2], Value::UInt(4_294_967_295));
    assert_eq!(r.rows[0][3], Value::Int(-128));
}

#[tokio::test]
async fn values_keep_their_types() {
    let w = common::warehouse().await;
    let r = w
        .query(
            "SELECT toDecimal64(1234.5, 3) AS d, toFloat64(1) / 0 AS inf, 0 / 0 AS nan, \
             'tab\there \"quoted\" é' AS s, toDate('2024-02-29') AS day, \
             toDateTime('2024-02-29 13:14:15') AS ts, CAST(NULL AS Nullable(String)) AS n, \
             [1, 2, 3] AS arr, ['a', NULL] AS narr, toNullable(7) AS nn",
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let row = &r.rows[0];
    assert_eq!(row[0], Value::Decimal("1234.500".into()));
    assert!(matches!(row[1], Value::Float(f) if f.is_infinite() && f > 0.0));
    assert!(matches!(row[2], Value::Float(f) if f.is_nan()));
    assert_eq!(row[3], Value::String("tab\there \"quoted\" é".into()));
    assert_eq!(row[4], Value::Date("2024-02-29".into()));
    assert_eq!(row[5], Value::DateTime("2024-02-29 13:14:15".into()));
    assert_eq!(row[6], Value::Null);
    assert_eq!(
        row[7],
        Value::Array(vec![Value::UInt(1), Value::UInt(2), Value::UInt(3)].into())
    );
    assert_eq!(
        row[8],
        Value::Array(vec![Value::String("a".into()), Value::Null].into())
    );
    assert_eq!(row[9], Value::UInt(7));
    assert!(r.columns[6].data_type.is_nullable());
}

#[tokio::test]
async fn error_in_mid_result_is_an_error_not_garbage_rows() {
    // Without wait_end_of_query=1 the server has already sent rows with HTTP 200 when
    // throwIf fires, and appends the exception text to the body.
    let w = common::warehouse().await;
    // Past the server's response buffer (about 1 MB), so rows are on the wire before the error.
    let sql = "SELECT throwIf(number = 3000000) AS x FROM system.numbers LIMIT 4000000";
    // The quirk itself, seen without Aurora's setting: HTTP 200 and the exception text
    // appended after rows that were already sent.
    let raw = reqwest::Client::new()
        .post(format!("{}/", common::url()))
        .body(format!("{sql} FORMAT TSV"))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 200);
    let body = raw.text().await.unwrap();
    assert!(body.starts_with("0\n") && body.contains("Code: 395"));
    let err = w
        .query(
            sql,
            &QueryOptions {
                max_result_rows: None,
                ..QueryOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(395), "{err}");
}

#[tokio::test]
async fn syntax_error_carries_code_and_position() {
    let w = common::warehouse().await;
    let err = w
        .query("SELECT 1 FROM system.one WHER 1", &QueryOptions::default())
        .await
        .unwrap_err();
    let e = err.server().expect("a server error");
    assert_eq!(e.code, 62);
    let pos = e.position.expect("a position");
    assert!(
        "SELECT 1 FROM system.one WHER 1"[pos..].starts_with("WHER")
            || "SELECT 1 FROM system.one WHER 1"[pos..].starts_with("1"),
        "position {pos}"
    );
    assert!(err.hint().is_some());
}

#[tokio::test]
async fn unknown_table_is_decoded() {
    let w = common::warehouse().await;
    let err = w
        .query("SELECT * FROM no_such_table", &QueryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(60), "{err}");
    assert!(err.to_string().contains("no_such_table"));
}

#[tokio::test]
async fn read_only_mode_refuses_writes_but_allows_limits() {
    let w = common::warehouse().await;
    let err = w
        .query(
            "CREATE TABLE default.should_not_exist (a UInt8) ENGINE = Memory",
            &QueryOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(164), "{err}");
    assert!(err.hint().unwrap_or_default().contains("--write"));
    // readonly=2 still accepts per-query settings sent as URL parameters.
    let r = w
        .query(
            "SELECT 1",
            &QueryOptions {
                settings: vec![("max_threads".into(), "1".into())],
                ..QueryOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 1);
}

#[tokio::test]
async fn max_result_rows_truncates_exactly_and_says_so() {
    let w = common::warehouse().await;
    let opts = QueryOptions {
        max_result_rows: Some(10),
        ..QueryOptions::default()
    };
    let r = w
        .query("SELECT number FROM system.numbers LIMIT 100000", &opts)
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 10);
    assert!(r.stats.truncated);
    assert_eq!(r.rows[9][0], Value::UInt(9));

    let exact = w
        .query("SELECT number FROM system.numbers LIMIT 10", &opts)
        .await
        .unwrap();
    assert_eq!(exact.rows.len(), 10);
    assert!(!exact.stats.truncated);

    let err = w
        .query(
            "SELECT number FROM system.numbers LIMIT 100000",
            &QueryOptions {
                overflow: OverflowMode::Throw,
                ..opts
            },
        )
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(396), "{err}");
}

#[tokio::test]
async fn max_execution_time_stops_long_queries() {
    let w = common::warehouse().await;
    let err = w
        .query(
            "SELECT count() FROM system.numbers WHERE number % 3 = 7",
            &QueryOptions {
                max_execution_time: Some(Duration::from_secs(1)),
                ..QueryOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(server_code(&err), Some(159), "{err}");
}

#[tokio::test]
async fn a_running_query_can_be_cancelled_by_id() {
    let w = std::sync::Arc::new(common::warehouse().await);
    let query_id = format!("cancel-test-{}", uuid::Uuid::new_v4());
    let runner = {
        let w = w.clone();
        let opts = QueryOptions {
            query_id: Some(query_id.clone()),
            max_execution_time: Some(Duration::from_secs(60)),
            ..QueryOptions::default()
        };
        tokio::spawn(async move {
            w.query(
                "SELECT count() FROM system.numbers WHERE number % 3 = 7",
                &opts,
            )
            .await
        })
    };
    // Wait until the server lists the query, then kill it.
    let mut seen = false;
    for _ in 0..100 {
        let r = w
            .query(
                &format!("SELECT count() FROM system.processes WHERE query_id = '{query_id}'"),
                &QueryOptions::default(),
            )
            .await
            .unwrap();
        if r.rows[0][0] == Value::UInt(1) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the query never showed up in system.processes");
    w.cancel(&query_id).await.unwrap();
    let outcome = runner.await.unwrap();
    assert!(
        matches!(outcome, Err(WarehouseError::Cancelled { query_id: ref id }) if *id == query_id),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn large_results_stream_in_chunks() {
    let w = common::warehouse().await;
    let mut stream = w
        .query_stream(
            "SELECT number, toString(number) AS s FROM system.numbers LIMIT 1000000",
            &QueryOptions {
                max_result_rows: None,
                ..QueryOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(stream.columns().len(), 2);
    let (mut chunks, mut total, mut next) = (0, 0u64, 0u64);
    while let Some(chunk) = stream.next_chunk().await.unwrap() {
        chunks += 1;
        for row in &chunk {
            assert_eq!(row[0], Value::UInt(next));
            next += 1;
        }
        total += chunk.len() as u64;
    }
    assert_eq!(total, 1_000_000);
    assert!(chunks > 10, "only {chunks} chunks");
    let stats = stream.stats();
    assert_eq!(stats.result_rows, 1_000_000);
    assert!(stats.rows_read.unwrap_or(0) >= 1_000_000, "{stats:?}");
    assert!(stats.bytes_read.is_some());
    assert!(!stats.truncated);
}

#[tokio::test]
async fn dry_run_checks_without_running() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "dry_run").await;
    w.execute(&format!(
        "CREATE TABLE {db}.t (a UInt32, b String) ENGINE = MergeTree ORDER BY a"
    ))
    .await
    .unwrap();
    let ok = w
        .dry_run(&format!("SELECT b, count() AS c FROM {db}.t GROUP BY b;"))
        .await
        .unwrap();
    if !w.capabilities().explain {
        let names: Vec<_> = ok.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(ok.columns[1].type_name, "UInt64");
    }
    let unknown_column = w
        .dry_run(&format!("SELECT nope FROM {db}.t"))
        .await
        .unwrap_err();
    assert_eq!(server_code(&unknown_column), Some(47), "{unknown_column}");
    let bad_group = w
        .dry_run(&format!("SELECT a, b FROM {db}.t GROUP BY a"))
        .await
        .unwrap_err();
    assert_eq!(server_code(&bad_group), Some(215), "{bad_group}");
    // A dry run of a write is refused, and nothing was written.
    let write = w
        .dry_run(&format!("INSERT INTO {db}.t VALUES (1, 'x')"))
        .await;
    assert!(write.is_err());
    let count = w
        .query(
            &format!("SELECT count() FROM {db}.t"),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(count.rows[0][0], Value::UInt(0));
}

#[tokio::test]
async fn schema_introspection_reports_keys_sizes_and_comments() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "schema").await;
    w.execute(&format!(
        "CREATE TABLE {db}.events (ts DateTime COMMENT 'event time', id UInt64, kind String DEFAULT 'view') \
         ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (kind, ts)"
    ))
    .await
    .unwrap();
    w.insert_formatted(
        &format!("{db}.events"),
        "TabSeparated",
        "2024-01-01 00:00:00\t1\tview\n2024-02-01 00:00:00\t2\tbuy\n",
    )
    .await
    .unwrap();
    let schema = w.schema(true).await.unwrap();
    assert!(schema.databases.contains(&db));
    assert!(!schema.databases.iter().any(|d| d == "system"));
    let t = schema.table(&format!("{db}.events"), "default").unwrap();
    assert_eq!(t.engine, "MergeTree");
    assert_eq!(t.partition_key, "toYYYYMM(ts)");
    assert_eq!(t.sorting_key, "kind, ts");
    assert_eq!(t.total_rows, 2);
    assert!(t.total_bytes > 0);
    let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["ts", "id", "kind"]);
    let ts = &t.columns[0];
    assert_eq!(ts.comment, "event time");
    assert!(ts.in_partition_key && ts.in_sorting_key);
    let kind = &t.columns[2];
    assert_eq!(kind.default_kind, "DEFAULT");
    assert!(kind.in_sorting_key && !kind.in_partition_key);
    assert!(!t.columns[1].in_sorting_key);
    assert!(schema
        .similar_tables("event")
        .iter()
        .any(|n| n.ends_with(".events")));
}

#[tokio::test]
async fn capabilities_match_what_the_server_actually_does() {
    let w = common::warehouse().await;
    let caps = w.capabilities().clone();
    let works = |sql: &'static str| {
        let w = &w;
        async move { w.query(sql, &QueryOptions::unrestricted()).await.is_ok() }
    };
    assert_eq!(
        works("SELECT toStartOfInterval(now(), INTERVAL 1 hour)").await,
        caps.to_start_of_interval
    );
    assert_eq!(
        works("SELECT number FROM numbers(3) ORDER BY number WITH FILL").await,
        caps.with_fill
    );
    assert_eq!(
        works("SELECT toDateTime64(now(), 3)").await,
        caps.datetime64
    );
    assert_eq!(works("EXPLAIN SELECT 1").await, caps.explain);
    assert_eq!(
        works("SELECT sum(number) OVER () FROM numbers(2)").await,
        caps.window_functions
    );
    assert_eq!(works("SELECT toInt128(1)").await, caps.int128);
    assert_eq!(
        works(
            "SELECT count() FROM numbers(3) AS a JOIN numbers(3) AS b ON a.number = b.number \
             JOIN numbers(3) AS c ON a.number = c.number"
        )
        .await,
        caps.multiple_joins
    );
    let lc = w
        .query(
            "CREATE TEMPORARY TABLE lc_probe (s LowCardinality(String)) ENGINE = Memory",
            &QueryOptions::unrestricted(),
        )
        .await;
    assert_eq!(lc.is_err(), caps.low_cardinality_needs_flag, "{lc:?}");
}

#[tokio::test]
async fn typed_client_works_with_this_servers_quirks() {
    // On 18.16 the crate must not validate rows (no RowBinaryWithNamesAndTypes) and must not
    // ask for compressed responses; on newer servers both are on.
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Row {
        n: u64,
        s: String,
    }
    let w = common::warehouse().await;
    let rows = w
        .typed_client()
        .query("SELECT number AS n, toString(number) AS s FROM system.numbers LIMIT 3")
        .fetch_all::<Row>()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[2].n, rows[2].s.as_str()), (2, "2"));
}

#[tokio::test]
async fn unreachable_server_is_one_clear_sentence() {
    let url = common::closed_port_url();
    let err = Warehouse::connect(ConnectionSettings::new(&url))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, WarehouseError::Connect { .. }), "{err:?}");
    assert!(
        text.contains(&url) && text.contains("connection refused"),
        "{text}"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_database_are_explained() {
    let mut settings = ConnectionSettings::new(common::url());
    settings.password = "wrong".into();
    let err = Warehouse::connect(settings).await.unwrap_err();
    let e = err.server().expect("server error");
    assert!(e.is_auth_failure(), "{err}");
    assert!(err.to_string().contains("cannot log in"), "{err}");
    assert!(err.hint().unwrap_or_default().contains("password"));

    let mut settings = ConnectionSettings::new(common::url());
    settings.database = "no_such_db".into();
    let err = Warehouse::connect(settings).await.unwrap_err();
    assert_eq!(server_code(&err), Some(81), "{err}");
    assert!(err.to_string().contains("no_such_db"));
}

#[tokio::test]
async fn not_a_clickhouse_port_is_detected() {
    // A plain TCP listener that answers HTTP with a non-ClickHouse page.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot here!")
                .await;
        }
    });
    let err = Warehouse::connect(ConnectionSettings::new(format!("http://127.0.0.1:{port}")))
        .await
        .unwrap_err();
    assert!(matches!(err, WarehouseError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("ClickHouse HTTP port"), "{err}");
}

#[tokio::test]
async fn old_servers_get_no_compressed_responses_and_no_row_validation() {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct One {
        n: u8,
    }
    let w = common::warehouse().await;
    let caps = w.capabilities().clone();
    let plain = || {
        clickhouse::Client::default()
            .with_url(common::url())
            .with_setting("wait_end_of_query", "1")
    };
    // What Aurora avoids: on servers without these features, a compressed response comes
    // back empty, and the crate's row validation asks for a format the server lacks.
    let compressed = reqwest::Client::new()
        .post(format!("{}/?compress=1", common::url()))
        .body("SELECT toUInt8(1) AS n FORMAT RowBinary")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        !compressed.is_empty(),
        caps.compressed_responses,
        "compressed responses vs capability"
    );
    let validated = plain()
        .with_validation(true)
        .with_compression(clickhouse::Compression::None)
        .query("SELECT toUInt8(1) AS n")
        .fetch_all::<One>()
        .await;
    assert_eq!(
        validated.is_ok(),
        caps.row_binary_with_names_and_types,
        "row validation vs capability"
    );
    // And what Aurora does instead works on every server.
    let rows = w
        .typed_client()
        .query("SELECT toUInt8(1) AS n")
        .fetch_all::<One>()
        .await
        .unwrap();
    assert_eq!(rows[0].n, 1);
}

/// Join inference on a real server: the keys a column's sampled values fall into decide the
/// joins names leave open. `flights.carrier` and `flights.tailnum` (plain names in one table's
/// key) and `flights.dest` (no shared name at all) join by their values; `sales.store` joins
/// `stores.store` as an integer of the key's own name; `cars.name` (a key) and
/// `airports.name` (an attribute) share a name but no values and do not join.
#[tokio::test]
async fn join_paths_come_from_key_names_and_sampled_values() {
    use aurora::assistant::joins;
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "joins").await;
    for ddl in [
        "airlines (carrier String, name String) ORDER BY carrier",
        "airports (faa String, name String) ORDER BY faa",
        "planes (tailnum String, seats UInt16) ORDER BY tailnum",
        "cars (name String, hp UInt16) ORDER BY name",
        "flights (day Date, carrier String, tailnum Nullable(String), \
         dest String, seats UInt16) ORDER BY day",
        "stores (store UInt32, city String) ORDER BY store",
        "sales (day Date, store UInt32, amount UInt32) ORDER BY day",
    ] {
        w.execute(
            &format!("CREATE TABLE {db}.{ddl}").replace(") ORDER", ") ENGINE = MergeTree ORDER"),
        )
        .await
        .unwrap_or_else(|e| panic!("{ddl}: {e}"));
    }
    for insert in [
        "airlines VALUES ('AA', 'American'), ('UA', 'United'), ('DL', 'Delta'), ('B6', 'JetBlue')",
        "airports VALUES ('JFK', 'John F Kennedy Intl'), ('LGA', 'La Guardia'), \
         ('ORD', 'Chicago Ohare Intl'), ('SFO', 'San Francisco Intl')",
        "planes VALUES ('N101', 150), ('N102', 180), ('N103', 120), ('N104', 200)",
        "cars VALUES ('amc rebel', 150), ('ford torino', 140), ('La Guardia', 90), ('plymouth', 95)",
        "flights VALUES ('2024-01-01', 'AA', 'N101', 'ORD', 150), ('2024-01-01', 'UA', 'N102', 'SFO', 180), \
         ('2024-01-02', 'DL', 'N103', 'LGA', 120), ('2024-01-02', 'B6', NULL, 'JFK', 200)",
        "stores VALUES (1, 'Oslo'), (2, 'Bergen'), (3, 'Trondheim'), (4, 'Tromso')",
        "sales VALUES ('2024-01-01', 1, 10), ('2024-01-01', 2, 20), ('2024-01-02', 3, 30), \
         ('2024-01-02', 4, 4)",
    ] {
        w.execute(&format!("INSERT INTO {db}.{insert}"))
            .await
            .unwrap_or_else(|e| panic!("{insert}: {e}"));
    }
    let mut schema = (*w.schema(true).await.expect("schema")).clone();
    schema.tables.retain(|t| t.database == db);
    let mut graph = joins::by_names(&schema);
    joins::by_values(&w, &schema, &mut graph)
        .await
        .expect("sample values");
    let mut found: Vec<String> = graph
        .relationships
        .iter()
        .map(|r| format!("{} ({:?})", r.condition(), r.found_by))
        .collect();
    found.sort();
    let t = |s: &str| s.replace("DB", &db);
    assert_eq!(
        found,
        vec![
            t("DB.flights.carrier = DB.airlines.carrier (Values)"),
            t("DB.flights.dest = DB.airports.faa (Values)"),
            t("DB.flights.tailnum = DB.planes.tailnum (Values)"),
            t("DB.sales.store = DB.stores.store (Values)"),
        ]
    );
}
