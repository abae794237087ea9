//! Every record's fate is written, dead-lettered, or an error the status and the log show; the
//! cases where an older engine skipped or re-read records silently, each with the real `aurora`
//! binary and a real ClickHouse: a CSV file replaced under its name, one truncated in place,
//! records another pipeline stored that this one has no position for, and a server error no
//! list names (retried a bounded number of times, then the pipeline fails with it), and a new
//! field becoming a column with `evolve: add_columns` (a later type conflict dead-lettered). Kafka
//! offsets that go back are in `ingest_kafka.rs`, with its brokers.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use aurora::warehouse::Warehouse;

/// A pipeline file in a scratch directory, run with its own state directory.
struct Case {
    dir: PathBuf,
    db: String,
    data: PathBuf,
}

impl Case {
    async fn new(name: &str) -> (Case, Warehouse) {
        let w = common::warehouse().await;
        let db = common::scratch_database(&w, name).await;
        let dir = common::fresh_data_dir(name);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let data = dir.join("data/orders.csv");
        (Case { dir, db, data }, w)
    }

    /// Writes pipeline `name` (source and extra settings given) and returns its file.
    fn pipeline(&self, name: &str, source_extra: &str, extra: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.yaml"));
        let db = &self.db;
        std::fs::write(
            &path,
            format!(
                "pipelines:
  - name: {name}
    source:
      csv:
        path: data/*.csv
{source_extra}
    mapping:
      columns:
        id: {{type: UInt64}}
        name: {{type: String}}
    sink:
      table: {db}.orders
      create: if_missing
      order_by: [id]
      batch: {{max_rows: 100, max_wait: 50ms}}
    dead_letter:
      table: {db}.orders_dlq
{extra}
"
            ),
        )
        .unwrap();
        path
    }

    fn run(&self, pipeline: &Path) -> Command {
        let mut cmd = common::aurora_command();
        cmd.args(["--url", &common::url(), "pipeline", "run"])
            .arg(pipeline)
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--json");
        cmd
    }
}

fn rows(first: u64, count: u64, name: &str) -> String {
    let mut text = String::from("id,name\n");
    for id in first..first + count {
        text.push_str(&format!("{id},{name} {id}\n"));
    }
    text
}

/// The run's final status (its first JSON line), asserting the exit status.
fn finished(o: &Output, success: bool) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.success(), success, "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(stdout.lines().next().unwrap_or("{}")).unwrap()
}

fn warnings(status: &serde_json::Value) -> Vec<String> {
    status["warnings"]
        .as_array()
        .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn stats(w: &Warehouse, db: &str) -> (String, String) {
    (
        common::scalar(w, &format!("SELECT count() FROM {db}.orders")).await,
        common::scalar(w, &format!("SELECT uniqExact(id) FROM {db}.orders")).await,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_file_replaced_under_its_name_is_read_from_its_start() {
    let (c, w) = Case::new("fates_replaced").await;
    let p = c.pipeline("replaced", "", "");
    std::fs::write(&c.data, rows(0, 500, "old")).unwrap();
    finished(&c.run(&p).output().unwrap(), true);
    assert_eq!(stats(&w, &c.db).await, ("500".into(), "500".into()));
    // The next export replaces the file: more rows, longer lines, so the old cursor points
    // into the middle of a record of the new file.
    std::fs::remove_file(&c.data).unwrap();
    std::fs::write(
        &c.data,
        rows(100_000, 900, "a much longer name than before"),
    )
    .unwrap();
    let status = finished(&c.run(&p).output().unwrap(), true);
    assert_eq!(stats(&w, &c.db).await, ("1400".into(), "1400".into()));
    assert_eq!(status["rows_written"], 900, "{status}");
    assert_eq!(status["dead_lettered"], 0, "{status}");
    let said = warnings(&status);
    assert!(
        said.iter()
            .any(|w| w.contains("was replaced by another file")),
        "{said:?}"
    );
    let sources = common::scalar(
        &w,
        &format!("SELECT uniqExact(_aurora_source) FROM {}.orders", c.db),
    )
    .await;
    assert_eq!(sources, "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_csv_file_stops_the_pipeline_or_is_reread_as_configured() {
    let (c, w) = Case::new("fates_truncated").await;
    let strict = c.pipeline("truncated", "", "");
    std::fs::write(&c.data, rows(0, 500, "row")).unwrap();
    finished(&c.run(&strict).output().unwrap(), true);
    // Cut in place to its first 100 rows (same inode, same head).
    let keep = rows(0, 100, "row").len() as u64;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&c.data)
        .unwrap()
        .set_len(keep)
        .unwrap();
    let o = c.run(&strict).output().unwrap();
    let status = finished(&o, false);
    let reason = status["state"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("was truncated or rewritten in place")
            && reason.contains("on_truncate: reread"),
        "{status}"
    );
    assert_eq!(stats(&w, &c.db).await, ("500".into(), "500".into()));

    // Same pipeline (same name, same saved positions), told to read it again.
    let reread = c.pipeline("truncated", "        on_truncate: reread", "");
    let status = finished(&c.run(&reread).output().unwrap(), true);
    assert_eq!(status["rows_written"], 100, "{status}");
    assert!(
        warnings(&status)
            .iter()
            .any(|w| w.contains("reading it again from its start")),
        "{status}"
    );
    assert_eq!(stats(&w, &c.db).await, ("600".into(), "500".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn records_stored_by_another_pipeline_are_a_warning_not_a_silent_skip() {
    let (c, w) = Case::new("fates_unexplained").await;
    std::fs::write(&c.data, rows(0, 1000, "row")).unwrap();
    let first = c.pipeline("first_copy", "", "");
    let status = finished(&c.run(&first).output().unwrap(), true);
    assert!(warnings(&status).is_empty(), "{status}");
    // A second pipeline over the same file into the same table: it has no saved position,
    // but the table holds a thousand records of its source (far more than a crash leaves).
    let second = c.pipeline("second_copy", "", "");
    let status = finished(&c.run(&second).output().unwrap(), true);
    assert_eq!(status["already_stored"], 1000, "{status}");
    let said = warnings(&status);
    assert!(
        said.iter()
            .any(|w| w.contains("already holds 1000 record(s)") && w.contains("no saved position")),
        "{said:?}"
    );
    assert_eq!(stats(&w, &c.db).await, ("1000".into(), "1000".into()));
    // `pipeline status` shows it too.
    let o = common::aurora_command()
        .args(["pipeline", "status", "--state-dir"])
        .arg(c.dir.join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("  warning: "), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_no_list_names_is_retried_as_often_as_configured_then_fails() {
    let (c, w) = Case::new("fates_unknown").await;
    std::fs::write(&c.data, rows(0, 10, "row")).unwrap();
    // A Merge table reads its tables but refuses writes with NOT_IMPLEMENTED (48): an error
    // that is on no list of temporary or permanent ones.
    for sql in [
        format!(
            "CREATE TABLE {}.parts (id UInt64, name String) ENGINE = MergeTree ORDER BY id",
            c.db
        ),
        format!(
            "CREATE TABLE {0}.orders (id UInt64, name String) ENGINE = Merge({0}, '^parts$')",
            c.db
        ),
    ] {
        w.execute(&sql).await.unwrap();
    }
    let p = c.pipeline(
        "unknown_error",
        "",
        "    delivery: at_least_once\n    retry: {initial_backoff: 50ms, max_backoff: 200ms, unknown_errors: 2}",
    );
    let mut child = c
        .run(&p)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Retried for ever, it would never end.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "still retrying after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = child.wait_with_output().unwrap();
    let status = finished(&o, false);
    let reason = status["state"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("3 time(s) in a row")
            && reason.contains("does not know to be temporary")
            && reason.contains("unknown_errors: forever")
            && reason.contains("48"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn new_fields_become_columns_with_evolve_and_a_type_conflict_is_dead_lettered() {
    let (c, w) = Case::new("fates_evolve").await;
    let p = c.pipeline("evolving", "", "    evolve: add_columns");
    std::fs::write(c.dir.join("data/a.csv"), rows(0, 50, "row")).unwrap();
    let mut b = String::from("id,name,price,coupon\n");
    for id in 50..80 {
        b.push_str(&format!("{id},row {id},{}.{:02},C{id}\n", id % 9, id % 100));
    }
    std::fs::write(c.dir.join("data/b.csv"), b).unwrap();
    let status = finished(&c.run(&p).output().unwrap(), true);
    assert_eq!(status["rows_written"], 80, "{status}");
    assert_eq!(
        status["columns_added"],
        // In the order of the fields' names.
        serde_json::json!(["coupon Nullable(String)", "price Nullable(Decimal(18, 2))"]),
        "{status}"
    );
    let types = common::scalar(
        &w,
        &format!(
            "SELECT arrayStringConcat(groupArray(type), ',') FROM system.columns \
             WHERE database = '{}' AND table = 'orders' AND name IN ('price', 'coupon')",
            c.db
        ),
    )
    .await;
    assert!(
        types.contains("Nullable(Decimal(18, 2))") && types.contains("Nullable(String)"),
        "{types}"
    );
    let stored = common::scalar(
        &w,
        &format!(
            "SELECT concat(toString(countIf(isNull(price))), '/', toString(sum(price)), '/', toString(countIf(coupon = 'C60'))) FROM {}.orders",
            c.db
        ),
    )
    .await;
    let sum: f64 = (50..80)
        .map(|id| (id % 9) as f64 + (id % 100) as f64 / 100.0)
        .sum();
    assert_eq!(stored, format!("50/{}/1", (sum * 100.0).round() / 100.0));

    // Later, text where the column holds numbers: that record goes to the dead letters.
    std::fs::write(
        c.dir.join("data/c.csv"),
        "id,name,price\n100,x,12.5\n101,y,twelve\n",
    )
    .unwrap();
    let status = finished(&c.run(&p).output().unwrap(), true);
    assert_eq!(status["rows_written"], 1, "{status}");
    assert_eq!(status["dead_lettered"], 1, "{status}");
    let reason = common::scalar(&w, &format!("SELECT error FROM {}.orders_dlq", c.db)).await;
    assert!(
        reason.contains("price") && reason.contains("twelve"),
        "{reason}"
    );

    // Without the option the field is left out, as `unmapped: ignore` says.
    let (plain, w) = Case::new("fates_no_evolve").await;
    let p = plain.pipeline("not_evolving", "", "");
    std::fs::write(plain.dir.join("data/b.csv"), "id,name,price\n1,x,2.5\n").unwrap();
    let status = finished(&plain.run(&p).output().unwrap(), true);
    assert_eq!(status["rows_written"], 1, "{status}");
    assert!(status.get("columns_added").is_none(), "{status}");
    let columns = common::scalar(
        &w,
        &format!(
            "SELECT count() FROM system.columns WHERE database = '{}' AND table = 'orders'",
            plain.db
        ),
    )
    .await;
    assert_eq!(columns, "4"); // id, name and the two bookkeeping columns
}

#[tokio::test(flavor = "multi_thread")]
async fn a_state_directory_started_afresh_does_not_take_a_new_file_for_an_old_one() {
    let (c, w) = Case::new("fates_fresh_state").await;
    let p = c.pipeline("fresh_state", "", "");
    std::fs::write(&c.data, rows(100, 400, "old")).unwrap();
    finished(&c.run(&p).output().unwrap(), true);
    // A new export with lines of the same lengths (so the same byte offsets), read by a run
    // whose saved positions are gone: its rows are new, not "already stored".
    std::fs::remove_file(&c.data).unwrap();
    std::fs::write(&c.data, rows(600, 400, "new")).unwrap();
    std::fs::remove_dir_all(c.dir.join("state")).unwrap();
    let status = finished(&c.run(&p).output().unwrap(), true);
    assert_eq!(status["rows_written"], 400, "{status}");
    assert_eq!(status["already_stored"], 0, "{status}");
    assert_eq!(stats(&w, &c.db).await, ("800".into(), "800".into()));
    // The same file read afresh is recognised, though: nothing is stored twice.
    std::fs::remove_dir_all(c.dir.join("state")).unwrap();
    let status = finished(&c.run(&p).output().unwrap(), true);
    assert_eq!(status["already_stored"], 400, "{status}");
    assert_eq!(stats(&w, &c.db).await, ("800".into(), "800".into()));
}

/// A pipeline over `data/*.csv` whose `name` column has `name_spec` as its mapping.
fn replay_pipeline(c: &Case, name_spec: &str) -> PathBuf {
    let path = c.dir.join("replayed.yaml");
    let db = &c.db;
    std::fs::write(
        &path,
        format!(
            "pipelines:
  - name: replayed
    source: {{csv: {{path: data/*.csv}}}}
    mapping:
      columns:
        id: {{type: UInt64}}
        name: {name_spec}
    sink: {{table: {db}.orders, create: if_missing, order_by: [id]}}
    dead_letter: {{table: {db}.orders_dlq}}
"
        ),
    )
    .unwrap();
    path
}

fn replay(c: &Case, pipeline: &Path, dry_run: bool) -> serde_json::Value {
    let mut cmd = common::aurora_command();
    cmd.args(["--url", &common::url(), "pipeline", "replay"])
        .arg(pipeline)
        .arg("--json");
    if dry_run {
        cmd.arg("--dry-run");
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = c;
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_replayed_through_the_fixed_mapping_exactly_once() {
    let (c, w) = Case::new("fates_replay").await;
    let mut text = String::from("id,name\n");
    for id in 0..10 {
        let name = if id % 4 == 1 {
            String::new()
        } else {
            format!("n{id}")
        };
        text.push_str(&format!("{id},{name}\n"));
    }
    std::fs::write(&c.data, text).unwrap();
    // Without a default, a record with no name is rejected.
    let strict = replay_pipeline(&c, "{type: String}");
    let status = finished(&c.run(&strict).output().unwrap(), true);
    assert_eq!(status["dead_lettered"], 3, "{status}");
    let report = replay(&c, &strict, true);
    assert_eq!(
        (report["examined"].as_u64(), report["passing"].as_u64()),
        (Some(3), Some(0)),
        "{report}"
    );

    // Fixed: a default for a missing name. A dry run changes nothing.
    let fixed = replay_pipeline(&c, "{type: String, default: unknown}");
    let report = replay(&c, &fixed, true);
    assert_eq!(
        (report["passing"].as_u64(), report["written"].as_u64()),
        (Some(3), Some(0)),
        "{report}"
    );
    let dlq = format!("SELECT count() FROM {}.orders_dlq", c.db);
    assert_eq!(common::count(&w, &dlq).await, 3);

    let report = replay(&c, &fixed, false);
    assert_eq!(
        (report["written"].as_u64(), report["removed"].as_u64()),
        (Some(3), Some(3)),
        "{report}"
    );
    assert_eq!(stats(&w, &c.db).await, ("10".into(), "10".into()));
    let unknown = format!("SELECT count() FROM {}.orders WHERE name = 'unknown'", c.db);
    assert_eq!(common::count(&w, &unknown).await, 3);
    // The removal is a mutation ClickHouse applies in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while common::count(&w, &dlq).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the dead letters were never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A replay that stopped between writing and removing: its records are in the table and
    // still dead-lettered. Replayed again, they are only removed, not written twice.
    w.execute(&format!(
        "INSERT INTO {0}.orders_dlq SELECT 'replayed', _aurora_source, _aurora_offset, \
         concat(toString(id), ','), 'e', now() FROM {0}.orders WHERE name = 'unknown' LIMIT 1",
        c.db
    ))
    .await
    .unwrap();
    let report = replay(&c, &fixed, false);
    assert_eq!(
        (
            report["written"].as_u64(),
            report["already_in_table"].as_u64(),
            report["removed"].as_u64()
        ),
        (Some(0), Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(stats(&w, &c.db).await, ("10".into(), "10".into()));
}
