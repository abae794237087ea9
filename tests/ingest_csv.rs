//! CSV pipelines end to end with the real `aurora` binary and a real ClickHouse: an exact copy
//! of a 120k-row file with bad rows dead-lettered, picking up rows appended later, follow mode
//! with a graceful SIGTERM, and SIGKILL at random moments with exactly-once and at-least-once
//! delivery.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aurora::warehouse::{QueryOptions, Warehouse};

fn aurora(args: &[&str]) -> Command {
    let mut cmd = common::aurora_command();
    cmd.args(["--url", &common::url()]).args(args);
    cmd
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().expect("run aurora")
}

/// Writes `rows` CSV rows with ids `first..first+rows`; every 1000th has a bad amount.
fn write_rows(file: &Path, first: u64, rows: u64, header: bool) -> u64 {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    let mut text = String::new();
    if header {
        text.push_str("id,ts,name,amount,note\n");
    }
    let mut bad = 0;
    for id in first..first + rows {
        // Five days of timestamps, so each batch spans several table partitions.
        let ts = 1_700_000_000 + id * 4;
        let amount = if id % 1000 == 999 {
            bad += 1;
            "not-a-number".to_string()
        } else {
            format!("{}.{:02}", id % 500, id % 100)
        };
        let note = if id % 7 == 0 {
            String::new()
        } else {
            format!("\"note, \"\"{id}\"\"\"")
        };
        text.push_str(&format!("{id},{ts},\"Name {id}\",{amount},{note}\n"));
    }
    f.write_all(text.as_bytes()).unwrap();
    bad
}

fn pipeline_yaml(dir: &Path, db: &str, delivery: &str, follow: bool, max_rows: u64) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    std::fs::write(
        &path,
        format!(
            "pipelines:
  - name: orders_{db}
    source:
      csv:
        path: data/*.csv
        follow: {follow}
        poll_interval: 50ms
    mapping:
      columns:
        id: {{type: UInt64}}
        ts: {{type: DateTime, convert: unix_seconds}}
        name: {{type: String}}
        amount: {{type: 'Decimal(10, 2)'}}
        note: {{type: Nullable(String)}}
    sink:
      table: {db}.orders
      create: if_missing
      order_by: [id]
      partition_by: toYYYYMMDD(ts)
      batch: {{max_rows: {max_rows}, max_wait: 100ms}}
    delivery: {delivery}
    dead_letter:
      table: {db}.orders_dlq
"
        ),
    )
    .unwrap();
    path
}

struct Fixture {
    dir: PathBuf,
    db: String,
    pipeline: PathBuf,
    state: PathBuf,
    data: PathBuf,
}

async fn fixture(name: &str, delivery: &str, follow: bool, max_rows: u64) -> (Fixture, Warehouse) {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, name).await;
    let dir = common::fresh_data_dir(name);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let pipeline = pipeline_yaml(&dir, &db, delivery, follow, max_rows);
    let f = Fixture {
        data: dir.join("data/orders.csv"),
        state: dir.join("state"),
        dir,
        db,
        pipeline,
    };
    (f, w)
}

impl Fixture {
    fn run(&self) -> Command {
        aurora(&[
            "pipeline",
            "run",
            self.pipeline.to_str().unwrap(),
            "--state-dir",
            self.state.to_str().unwrap(),
            "--json",
        ])
    }
}

/// count, distinct ids, sum of ids: together they show nothing lost and nothing doubled.
async fn table_stats(w: &Warehouse, db: &str) -> (u64, u64, u64) {
    let r = w
        .query(
            &format!("SELECT count(), uniqExact(id), sum(id) FROM {db}.orders"),
            &QueryOptions::unrestricted(),
        )
        .await
        .unwrap();
    let n = |i: usize| r.rows[0][i].to_string().parse::<u64>().unwrap();
    (n(0), n(1), n(2))
}

fn expected_good(first: u64, rows: u64) -> (u64, u64) {
    let good: Vec<u64> = (first..first + rows)
        .filter(|id| id % 1000 != 999)
        .collect();
    (good.len() as u64, good.iter().sum())
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_a_large_file_exactly_and_dead_letters_bad_rows() {
    let (f, w) = fixture("csv_copy", "exactly_once", false, 20_000).await;
    let bad = write_rows(&f.data, 0, 120_000, true);
    let o = output(&mut f.run());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(status["state"]["state"], "finished", "{status}");
    let (good, sum) = expected_good(0, 120_000);
    assert_eq!(table_stats(&w, &f.db).await, (good, good, sum));
    assert_eq!(status["rows_written"], good);
    assert_eq!(status["dead_lettered"], bad);
    // Values survive: quotes, commas, empty field → NULL, Decimal, DateTime from unix seconds.
    let row = w
        .query(
            &format!(
                "SELECT name, note, toString(amount), toString(ts) FROM {}.orders WHERE id = 1",
                f.db
            ),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let texts: Vec<String> = row.rows[0].iter().map(|v| v.to_string()).collect();
    assert_eq!(
        texts,
        ["Name 1", "note, \"1\"", "1.01", "2023-11-14 22:13:24"]
    );
    assert_eq!(
        common::scalar(
            &w,
            &format!(
                "SELECT count() FROM {}.orders WHERE id = 7 AND isNull(note)",
                f.db
            )
        )
        .await,
        "1"
    );
    // Every bad row is in the dead-letter table with its raw line and a reason.
    let dlq = w
        .query(
            &format!(
                "SELECT raw, error FROM {}.orders_dlq ORDER BY offset LIMIT 1",
                f.db
            ),
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        dlq.rows[0][0].to_string().starts_with("999,"),
        "{:?}",
        dlq.rows
    );
    assert!(
        dlq.rows[0][1].to_string().contains("not-a-number"),
        "{:?}",
        dlq.rows
    );
    assert_eq!(
        common::scalar(&w, &format!("SELECT count() FROM {}.orders_dlq", f.db)).await,
        bad.to_string()
    );

    // `pipeline status` reads what the run left behind.
    let o = output(&mut aurora(&[
        "pipeline",
        "status",
        "--state-dir",
        f.state.to_str().unwrap(),
    ]));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains(&format!("orders_{}: finished; {good} rows written", f.db)),
        "{text}"
    );

    // Rows appended later are picked up by the next run; nothing is copied twice.
    let more_bad = write_rows(&f.data, 120_000, 5_000, false);
    let o = output(&mut f.run());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (good, sum) = expected_good(0, 125_000);
    assert_eq!(table_stats(&w, &f.db).await, (good, good, sum));
    assert_eq!(
        common::scalar(&w, &format!("SELECT count() FROM {}.orders_dlq", f.db)).await,
        (bad + more_bad).to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn follow_mode_picks_up_growth_and_sigterm_drains() {
    let (f, w) = fixture("csv_follow", "exactly_once", true, 1_000).await;
    write_rows(&f.data, 0, 2_000, true);
    let mut child = f
        .run()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for_count = |target: u64| {
        let w = &w;
        let db = f.db.clone();
        async move {
            for _ in 0..300 {
                // The pipeline creates the table; until then there is nothing to count.
                let n: u64 = w
                    .query(
                        &format!("SELECT count() FROM {db}.orders"),
                        &QueryOptions::default(),
                    )
                    .await
                    .map(|r| r.rows[0][0].to_string().parse().unwrap_or(0))
                    .unwrap_or(0);
                if n >= target {
                    return n;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the table never reached {target} rows");
        }
    };
    let (good, _) = expected_good(0, 2_000);
    wait_for_count(good).await;
    write_rows(&f.data, 2_000, 1_000, false);
    let (good, sum) = expected_good(0, 3_000);
    wait_for_count(good).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    let _ = child.stdout.take();
    assert_eq!(table_stats(&w, &f.db).await, (good, good, sum));
}

/// Runs the pipeline and kills it with SIGKILL as soon as the table holds `target` rows (so
/// the kill lands mid-stream, wherever in the batch cycle the process happens to be). Returns
/// whether it was still running when killed.
async fn run_and_kill(f: &Fixture, w: &Warehouse, target: u64) -> bool {
    let sql = format!("SELECT count() FROM {}.orders", f.db);
    common::run_and_kill_when(&mut f.run(), || async {
        common::count(w, &sql).await >= target
    })
    .await
}

const CRASH_ROWS: u64 = 150_000;

async fn crash_test(name: &str, delivery: &str) -> (Warehouse, Fixture, u64, u64) {
    let (f, w) = fixture(name, delivery, false, 1_000).await;
    write_rows(&f.data, 0, CRASH_ROWS, true);
    let (good, sum) = expected_good(0, CRASH_ROWS);
    let mut kills = 0;
    // Kill points spread over the stream, at uneven distances.
    for (i, eighths) in [1u64, 2, 4, 5, 7].iter().enumerate() {
        if run_and_kill(&f, &w, good * eighths / 8).await {
            kills += 1;
        }
        if i == 2 {
            // Lose the saved positions too, as a wiped state directory would: the table's
            // own bookkeeping must still prevent duplicates.
            let _ = std::fs::remove_dir_all(&f.state);
        }
    }
    assert!(
        kills >= 4,
        "only {kills} runs were still going when killed; the test proves little"
    );
    // A killed run cannot say so itself; `pipeline status` notices the process is gone.
    let o = output(&mut aurora(&[
        "pipeline",
        "status",
        "--state-dir",
        f.state.to_str().unwrap(),
    ]));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        text.contains("is gone without stopping the pipeline"),
        "{text}"
    );
    let o = output(&mut f.run());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (w, f, good, sum)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_exactly_once() {
    let (w, f, good, sum) = crash_test("csv_crash_eo", "exactly_once").await;
    assert_eq!(table_stats(&w, &f.db).await, (good, good, sum));
    assert_eq!(
        common::scalar(
            &w,
            &format!(
                "SELECT count() - uniqExact(offset) FROM {}.orders_dlq",
                f.db
            )
        )
        .await,
        "0"
    );
    assert_eq!(
        common::scalar(
            &w,
            &format!("SELECT uniqExact(offset) FROM {}.orders_dlq", f.db)
        )
        .await,
        (CRASH_ROWS / 1000).to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_at_least_once() {
    let (w, f, good, sum) = crash_test("csv_crash_alo", "at_least_once").await;
    let (count, distinct, _) = table_stats(&w, &f.db).await;
    assert_eq!(distinct, good, "a record is missing");
    // Without bookkeeping, the replay after the wiped state writes rows again: this is what
    // the exactly-once test's equal counts are measured against.
    assert!(
        count > good,
        "expected duplicates in at_least_once mode, found none"
    );
    let distinct_sum = common::scalar(
        &w,
        &format!(
            "SELECT sum(id) FROM (SELECT DISTINCT id FROM {}.orders)",
            f.db
        ),
    )
    .await;
    assert_eq!(distinct_sum, sum.to_string());
    let _ = f.dir;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_bad_records_all_reach_the_dead_letter_table() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "csv_bad").await;
    let dir = common::fresh_data_dir("csv_bad");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    // Every third record is bad, in four different ways.
    let mut text = String::from("id,level,day,code\n");
    let mut bad = 0;
    for id in 0..30_000u64 {
        let line = match (id % 3, id % 4) {
            (0, 0) => format!("{id},300,2024-01-01,ab"), // out of range for UInt8
            (0, 1) => format!("{id},1,2024-02-30,ab"),   // no such date
            (0, 2) => ",1,2024-01-01,ab".to_string(),    // missing required id
            (0, _) => format!("{id},1,2024-01-01,toolong"), // too long for FixedString(2)
            _ => format!("{id},{},2024-01-{:02},ok", id % 200, id % 28 + 1),
        };
        if id % 3 == 0 {
            bad += 1;
        }
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(dir.join("data/mixed.csv"), text).unwrap();
    let pipeline = dir.join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "pipelines:
  - name: bad_{db}
    source: {{csv: {{path: data/mixed.csv}}}}
    mapping:
      columns:
        id: {{type: UInt64}}
        level: {{type: UInt8}}
        day: {{type: Date}}
        code: {{type: FixedString(2)}}
    sink: {{table: {db}.t, create: if_missing, order_by: [id]}}
    dead_letter: {{table: {db}.rejected}}
"
        ),
    )
    .unwrap();
    let o = output(&mut aurora(&[
        "pipeline",
        "run",
        pipeline.to_str().unwrap(),
        "--state-dir",
        dir.join("state").to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bad, 10_000);
    assert_eq!(
        common::scalar(&w, &format!("SELECT count() FROM {db}.t")).await,
        "20000"
    );
    assert_eq!(
        common::scalar(&w, &format!("SELECT count() FROM {db}.t WHERE id % 3 = 0")).await,
        "0"
    );
    assert_eq!(
        common::scalar(&w, &format!("SELECT count() FROM {db}.rejected")).await,
        "10000"
    );
    // Each kind of problem is named in plain words.
    for needle in [
        "out of range",
        "is not a date",
        "is null for column",
        "FixedString(2)",
    ] {
        let n = common::scalar(
            &w,
            &format!("SELECT count() FROM {db}.rejected WHERE position(error, '{needle}') > 0"),
        )
        .await;
        assert!(n.parse::<u64>().unwrap() > 2_000, "{needle}: {n}");
    }
}
