//! `aurora pipeline validate` and the shipped templates in `presets/pipelines/`: every template
//! passes the static checks, and the CSV one runs as written against sample data.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use aurora::warehouse::QueryOptions;

fn aurora(args: &[&str]) -> Output {
    common::aurora_command()
        .args(["--url", &common::url()])
        .args(args)
        .output()
        .expect("run aurora")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

fn presets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/pipelines")
}

#[test]
fn every_template_passes_the_static_checks() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(presets())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let args: Vec<&str> = ["pipeline", "validate", "--offline"]
        .into_iter()
        .chain(files.iter().map(|p| p.to_str().unwrap()))
        .collect();
    let o = aurora(&args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains(&format!("in {} file(s)", files.len())),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_csv_template_runs_as_written() {
    let w = common::warehouse().await;
    w.execute("DROP DATABASE IF EXISTS shop").await.unwrap();
    let dir = common::fresh_data_dir("template-csv");
    std::fs::copy(presets().join("csv-files.yaml"), dir.join("csv-files.yaml")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/orders-1.csv"),
        "order_id,created,customer,country,amount,coupon\n\
         1,1700000000,Ann,de,12.50,\n\
         2,1700003600,\"Bob, Jr.\",,7.00,WELCOME\n\
         3,not-a-time,Cy,fr,1.00,\n",
    )
    .unwrap();
    let file = dir.join("csv-files.yaml");
    let file = file.to_str().unwrap();

    // Live validation: the table does not exist yet but can be created from the mapping.
    let o = aurora(&["pipeline", "validate", file]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("ok: orders-csv"), "{out}");

    let state = dir.join("state");
    let o = aurora(&[
        "pipeline",
        "run",
        file,
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.contains("orders-csv: finished; 2 rows written"),
        "{out}"
    );
    assert!(out.contains("1 dead-lettered"), "{out}");
    let r = w
        .query(
            "SELECT order_id, customer, country, toString(amount), coupon FROM shop.orders ORDER BY order_id",
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let rows: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| {
                    if v.is_null() {
                        "NULL".into()
                    } else {
                        v.to_string()
                    }
                })
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        [
            ["1", "Ann", "DE", "12.50", "NULL"],
            ["2", "Bob, Jr.", "??", "7.00", "WELCOME"]
        ]
    );
    let r = w
        .query(
            "SELECT error FROM shop.orders_rejected",
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert!(
        r.rows[0][0].to_string().contains("not-a-time"),
        "{:?}",
        r.rows
    );
}

#[test]
fn validate_reports_file_and_server_problems() {
    let dir = common::fresh_data_dir("validate");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "pipelines:\n  - name: x\n    source: {csv: {path: '*.csv', delimter: ';'}}\n    sink: {table: t, batch: {max_rows: 0}}\n",
    )
    .unwrap();
    let o = aurora(&["pipeline", "validate", bad.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("bad.yaml:3:35: error: unknown field `delimter`"),
        "{err}"
    );
    assert!(err.contains("did you mean `delimiter`"), "{err}");
    assert!(err.contains("max_rows"), "{err}");
    assert!(err.contains("2 errors in"), "{err}");

    // Well-formed, but the table is missing and the CSV files too.
    let missing = dir.join("missing.yaml");
    std::fs::write(
        &missing,
        "pipelines:\n  - name: y\n    source: {csv: {path: 'nothing-*.csv'}}\n    sink: {table: default.no_such_table}\n",
    )
    .unwrap();
    let o = aurora(&["pipeline", "validate", missing.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("no file matches"), "{out}");
    assert!(
        out.contains("table default.no_such_table does not exist"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn init_from_csv_writes_a_pipeline_that_runs() {
    let w = common::warehouse().await;
    w.execute("DROP TABLE IF EXISTS default.visits")
        .await
        .unwrap();
    w.execute("DROP TABLE IF EXISTS default.visits_rejected")
        .await
        .unwrap();
    let dir = common::fresh_data_dir("init");
    let csv = dir.join("visits.csv");
    std::fs::write(
        &csv,
        "id,ts,page,duration,day\n1,1700000000,/home,1.5,2024-01-01\n2,1700000060,/cart,,2024-01-02\n",
    )
    .unwrap();
    let out = dir.join("visits.yaml");
    let o = aurora(&[
        "pipeline",
        "init",
        "--from-csv",
        csv.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(
        yaml.contains("ts: {type: \"DateTime\", convert: unix_seconds}"),
        "{yaml}"
    );
    assert!(
        yaml.contains("duration: {type: \"Nullable(Decimal(18, 1))\"}"),
        "{yaml}"
    );
    assert!(yaml.contains("day: {type: \"Date\"}"), "{yaml}");
    // It does not overwrite.
    let again = aurora(&[
        "pipeline",
        "init",
        "--from-csv",
        csv.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));

    let state = dir.join("state");
    let o = aurora(&[
        "pipeline",
        "run",
        out.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("visits: finished; 2 rows written"),
        "{stdout}"
    );
    let r = w
        .query(
            "SELECT toString(ts), duration FROM default.visits ORDER BY id",
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.rows[0][0].to_string(), "2023-11-14 22:13:20");
    assert!(r.rows[1][1].is_null());
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelines_listed_in_the_config_run_without_file_arguments() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "from_config").await;
    let dir = common::fresh_data_dir("from-config");
    std::fs::write(dir.join("a.csv"), "n\n1\n2\n").unwrap();
    std::fs::write(dir.join("b.csv"), "n\n10\n").unwrap();
    std::fs::write(
        dir.join("a.yaml"),
        format!(
            "pipelines:\n  - name: from_file\n    source: {{csv: {{path: a.csv}}}}\n    mapping: {{columns: {{n: {{type: UInt32}}}}}}\n    sink: {{table: {db}.a, create: if_missing, order_by: [n]}}\n"
        ),
    )
    .unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "pipelines:\n  - a.yaml\n  - name: inline\n    source: {{csv: {{path: b.csv}}}}\n    mapping: {{columns: {{n: {{type: UInt32}}}}}}\n    sink: {{table: {db}.b, create: if_missing, order_by: [n]}}\n"
        ),
    )
    .unwrap();
    let state = dir.join("state");
    let o = common::aurora_command()
        .env("AURORA_CONFIG", &config)
        .args(["--url", &common::url(), "pipeline", "run", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("from_file: finished; 2 rows written"),
        "{stdout}"
    );
    assert!(
        stdout.contains("inline: finished; 1 rows written"),
        "{stdout}"
    );

    // A mistake in an inline pipeline is reported with where it sits in the config.
    std::fs::write(
        &config,
        "pipelines:\n  - name: broken\n    source: {csv: {path: b.csv}}\n    sink: {tabel: x}\n",
    )
    .unwrap();
    let o = common::aurora_command()
        .env("AURORA_CONFIG", &config)
        .args(["--url", &common::url(), "pipeline", "validate", "--offline"])
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr.contains("config.yaml (pipelines[0])"), "{stderr}");
    assert!(stderr.contains("did you mean `table`"), "{stderr}");
}
