//! RowBinary against JSONEachRow on the real server: the same records through two sinks, one
//! writing RowBinary and one forced to JSONEachRow, into twin tables of every type the binary
//! writer handles, must read back identically, edge values included. And a table RowBinary
//! cannot serve (a column a row may leave to the server) falls back to JSONEachRow.

mod common;

use std::sync::Arc;

use aurora::ingest::pipeline::check_str;
use aurora::ingest::sinks::clickhouse::{ClickHouseSink, RowFormat};
use aurora::warehouse::{QueryOptions, Warehouse};
use serde_json::{json, Value};

const COLUMNS: &str = "
    i8 Int8, i16 Int16, i32 Int32, i64 Int64,
    u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64,
    f32 Float32, f64 Float64,
    s String, fs FixedString(4), lc LowCardinality(String), ns Nullable(String),
    d Date, dt DateTime,
    d9 Decimal(9, 2), d18 Decimal(18, 4), d38 Decimal(38, 10),
    uuid UUID, nu Nullable(UInt32),
    arr Array(String), arrn Array(Nullable(Int16)),
    _aurora_source String, _aurora_offset UInt64";

fn records() -> Vec<Value> {
    vec![
        json!({"i8": -128, "i16": -32768, "i32": -2147483648i64, "i64": i64::MIN,
               "u8": 255, "u16": 65535, "u32": 4294967295u64, "u64": u64::MAX,
               "f32": 1.5, "f64": -0.1, "s": "héllo, \"wörld\"\n\ttab", "fs": "ab",
               "lc": "x", "ns": null, "d": "1970-01-01", "dt": "1970-01-01 00:00:00",
               "d9": "-9999999.99", "d18": "12345678901234.5678",
               "d38": "-1234567890123456789012345678.0123456789",
               "uuid": "61f0c404-5cb3-11e7-907b-a6006ad3dba0", "nu": 7,
               "arr": ["a", "", "ç"], "arrn": [1, null, -3]}),
        json!({"i8": 127, "i16": 32767, "i32": 2147483647, "i64": i64::MAX,
               "u8": "0", "u16": 0, "u32": "12", "u64": 0,
               "f32": "inf", "f64": "nan", "s": "", "fs": "abcd", "lc": "", "ns": "z",
               "d": "2105-12-31", "dt": "2106-02-07 06:28:15", "d9": 0, "d18": "-0.0001",
               "d38": 1, "uuid": "00000000-0000-0000-0000-000000000000", "nu": null,
               "arr": [], "arrn": []}),
        json!({"i8": "-1", "i16": 1, "i32": 0, "i64": "-9000000000",
               "u8": true, "u16": 1, "u32": 1, "u64": "18446744073709551614",
               "f32": -3.25e10, "f64": 1e300, "s": "日本語", "fs": "", "lc": "y", "ns": "",
               "d": "2020-02-29T23:59:59Z", "dt": "2024-06-01T12:34:56+02:00", "d9": 12.5,
               "d18": 7, "d38": "0.0000000001", "uuid": "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
               "nu": "4294967295", "arr": ["one"], "arrn": [null]}),
    ]
}

async fn sink(table: &str, format: &str) -> ClickHouseSink {
    let yaml = format!(
        "pipelines:
  - name: {table}
    source: {{csv: {{path: x.csv}}}}
    sink: {{table: {table}, format: {format}}}
"
    );
    let pipeline = check_str("p.yaml", &yaml).unwrap().remove(0);
    ClickHouseSink::prepare(Arc::new(common::warehouse().await), &pipeline)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"))
}

async fn rows(w: &Warehouse, table: &str) -> Vec<Vec<String>> {
    let r = w
        .query(
            &format!("SELECT * FROM {table} ORDER BY _aurora_offset"),
            &QueryOptions::unrestricted(),
        )
        .await
        .unwrap();
    r.rows
        .iter()
        .map(|row| row.iter().map(|v| v.to_string()).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn row_binary_stores_exactly_what_json_each_row_stores() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "formats").await;
    let mut opts = QueryOptions::unrestricted();
    opts.settings
        .push(("allow_experimental_low_cardinality_type".into(), "1".into()));
    for t in ["binary", "json"] {
        w.query(
            &format!("CREATE TABLE {db}.{t} ({COLUMNS}) ENGINE = MergeTree ORDER BY tuple()"),
            &opts,
        )
        .await
        .unwrap();
    }
    let binary = sink(&format!("{db}.binary"), "auto").await;
    let json = sink(&format!("{db}.json"), "json_each_row").await;
    assert_eq!(binary.format(), RowFormat::RowBinary);
    assert_eq!(json.format(), RowFormat::JsonEachRow);
    let values = records();
    for (sink, name) in [(&binary, "binary"), (&json, "json")] {
        let records = common::prepared(sink, values.clone());
        for r in &records {
            assert!(r.row.is_ok(), "{name}: {:?}", r.row);
        }
        let refused = sink.insert_prepared(&records).await.unwrap();
        assert!(refused.is_empty(), "{name}: {refused:?}");
    }
    let (b, j) = (
        rows(&w, &format!("{db}.binary")).await,
        rows(&w, &format!("{db}.json")).await,
    );
    assert_eq!(b.len(), values.len());
    assert_eq!(b, j);
    // Spot checks that the comparison is not between two equally wrong tables.
    assert_eq!(b[0][3], i64::MIN.to_string());
    assert_eq!(b[0][7], u64::MAX.to_string());
    assert_eq!(b[0][10], "héllo, \"wörld\"\n\ttab");
    assert_eq!(b[0][16], "-9999999.99");
    assert_eq!(b[0][19], "61f0c404-5cb3-11e7-907b-a6006ad3dba0");
    assert_eq!(b[2][15], "2024-06-01 10:34:56");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_left_to_its_default_keeps_json_each_row() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "formats_default").await;
    w.execute(&format!(
        "CREATE TABLE {db}.t (id UInt64, at DateTime DEFAULT now(), \
         _aurora_source String, _aurora_offset UInt64) ENGINE = MergeTree ORDER BY id"
    ))
    .await
    .unwrap();
    let sink = sink(&format!("{db}.t"), "auto").await;
    assert_eq!(sink.format(), RowFormat::JsonEachRow);
    let records = common::prepared(&sink, [json!({"id": 1})]);
    assert!(sink.insert_prepared(&records).await.unwrap().is_empty());
    assert_eq!(
        common::scalar(&w, &format!("SELECT count() FROM {db}.t")).await,
        "1"
    );
}
