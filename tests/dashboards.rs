//! Dashboards as a user meets them: files checked with every problem located (goldens in
//! tests/fixtures/dashboards), templates fitted to tables no template was written for,
//! deployed and run once on the real server, exported for Grafana and checked against
//! Grafana's published dashboard schema.
//! `UPDATE_EXPECT=1 cargo test --test dashboards` rewrites the goldens; review the diff.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use aurora::dashboards::check::check_str;
use aurora::dashboards::library::{builtin_templates, BUILTIN};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    common::yaml_fixtures(&Path::new("tests/fixtures/dashboards").join(kind))
}

#[test]
fn valid_files_read_and_invalid_ones_report_every_problem_in_place() {
    for path in fixtures("valid") {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(d) = check_str(&path.display().to_string(), &text) {
            panic!("{}", aurora::config::render_all(&d, Some(&text)));
        }
    }
    for path in fixtures("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let diags =
            check_str(&path.display().to_string(), &text).expect_err("invalid fixture read");
        let report = aurora::config::render_all(&diags, Some(&text));
        let expected_path = path.with_extension("expected");
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&expected_path, &report).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (UPDATE_EXPECT=1 writes it)",
                expected_path.display()
            )
        });
        assert_eq!(report, expected, "{}", path.display());
    }
}

/// Runs `aurora` against the test server with its dashboards beside `config`.
fn aurora(config: &Path, args: &[&str]) -> Output {
    let url = common::url();
    let mut cmd = common::aurora_command();
    cmd.env("AURORA_CONFIG", config)
        .arg("--url")
        .arg(&url)
        .args(args);
    cmd.output().expect("run aurora")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A config file in a fresh directory, so deployed dashboards land in `<dir>/dashboards`.
fn fresh_config(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("dashboards-{label}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "").unwrap();
    config
}

/// Tables of the shapes people keep, with names and words no template was written for, and
/// rows in the last hour so `now-1h` ranges hold data.
const FIXTURE_TABLES: &[(&str, &str, &str)] = &[
    (
        "service_log",
        "ts DateTime, severity String, component String, text String",
        "SELECT now() - number % 3000, ['debug', 'info', 'warn', 'ERROR'][number % 4 + 1], \
         concat('svc-', toString(number % 5)), concat('request ', toString(number % 40), ' finished after a while') \
         FROM numbers(4000)",
    ),
    (
        "api_calls",
        "started DateTime, elapsed_ms Float64, http_status UInt16, route String, instance String",
        "SELECT now() - number % 3000, (number % 97) * 1.5, [200, 200, 201, 404, 500, 503][number % 6 + 1], \
         concat('/v1/items/', toString(number % 12)), concat('node-', toString(number % 3)) FROM numbers(5000)",
    ),
    (
        "greenhouse",
        "read_at DateTime, station String, humidity Float32",
        "SELECT now() - number * 7, concat('st-', toString(number % 8)), 40 + (number % 30) FROM numbers(3000)",
    ),
    (
        "sales",
        "sold_at DateTime, buyer_id UInt64, amount Decimal(12, 2), store String",
        "SELECT now() - number * 11, number % 300, toDecimal64((number % 500) / 7, 2), \
         ['north', 'south', 'east'][number % 3 + 1] FROM numbers(3000)",
    ),
    (
        "visits",
        "event_time DateTime, action String, visitor_id UInt64, page_path String, browser String",
        "SELECT now() - number % 3000, ['view', 'click', 'scroll', 'signup'][number % 4 + 1], number % 700, \
         concat('/p/', toString(number % 20)), ['firefox', 'chrome', 'safari'][number % 3 + 1] FROM numbers(6000)",
    ),
    // Nothing time-like, nothing to group by: only the overview fits.
    ("codes", "id UInt64, label String", "SELECT number, concat('label-', toString(number)) FROM numbers(500)"),
];

/// The template `aurora dashboard suggest` must rank first for each fixture table.
const BEST_FIT: &[(&str, &str)] = &[
    ("service_log", "app-logs"),
    ("api_calls", "request-metrics"),
    ("greenhouse", "sensor-readings"),
    ("sales", "orders-revenue"),
    ("visits", "web-events"),
    ("codes", "table-overview"),
];

async fn load_fixture_tables() -> String {
    let warehouse = common::warehouse().await;
    let db = common::scratch_database(&warehouse, "dashboards").await;
    for (name, columns, rows) in FIXTURE_TABLES {
        let order = columns.split(' ').next().unwrap();
        warehouse
            .execute(&format!(
                "CREATE TABLE {db}.{name} ({columns}) ENGINE = MergeTree ORDER BY {order}"
            ))
            .await
            .unwrap();
        warehouse
            .execute(&format!("INSERT INTO {db}.{name} {rows}"))
            .await
            .unwrap();
    }
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_fits_deploys_and_runs_without_a_panel_error() {
    let db = load_fixture_tables().await;
    // The demo's sample data, where every template that fits it is deployed; the fixture
    // tables hold the shapes the demo has not (logs, requests, sensors).
    aurora::cli::demo::load_sample(&common::warehouse().await, false)
        .await
        .expect("load the demo sample");
    let config = fresh_config("deploy");

    // Suggestions rank the fitting template first, with the binding and its reasons.
    let o = aurora(&config, &["dashboard", "suggest", "--json", "--all"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ours: Vec<&serde_json::Value> = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["table"].as_str().unwrap().starts_with(&format!("{db}.")))
        .collect();
    let demo: Vec<&serde_json::Value> = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["table"].as_str().unwrap().starts_with("demo."))
        .collect();
    assert!(!demo.is_empty(), "{}", text(&o));
    for (table, best) in BEST_FIT {
        let entry = ours
            .iter()
            .find(|t| t["table"] == format!("{db}.{table}"))
            .unwrap_or_else(|| panic!("no suggestions for {table}: {}", text(&o)));
        assert_eq!(
            entry["suggestions"][0]["template"], *best,
            "{table}: {entry:#}"
        );
        for slot in entry["suggestions"][0]["slots"].as_array().unwrap() {
            let reasons = slot["reasons"].as_array().unwrap();
            assert_eq!(
                slot["column"].is_null(),
                reasons.is_empty(),
                "{table}: {slot:#}"
            );
        }
    }
    let log = ours
        .iter()
        .find(|t| t["table"] == format!("{db}.service_log"))
        .unwrap();
    let slots = &log["suggestions"][0]["slots"];
    let column = |slot: &str| {
        slots
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slot"] == slot)
            .map(|s| s["column"].clone())
    };
    assert_eq!(column("level"), Some("severity".into()), "{log:#}");
    assert_eq!(column("time"), Some("ts".into()));
    assert_eq!(column("message"), Some("text".into()));

    // Deploy every template on a table it fits, then run every panel once.
    let mut deployed = Vec::new();
    for entry in builtin_templates() {
        let spec = entry.dashboard.template.as_ref().unwrap();
        let table = if spec.table.is_some() {
            None
        } else {
            let fits = |t: &&&serde_json::Value| {
                t["suggestions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["template"] == entry.name.as_str())
            };
            // A demo table it fits, else the fixture table it fits best, else any it fits.
            let fitting = demo
                .iter()
                .find(fits)
                .or_else(|| {
                    ours.iter()
                        .find(|t| t["suggestions"][0]["template"] == entry.name.as_str())
                })
                .or_else(|| {
                    ours.iter().find(|t| {
                        t["suggestions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|s| s["template"] == entry.name.as_str())
                    })
                });
            Some(
                fitting.unwrap_or_else(|| panic!("no fixture table fits {}", entry.name))["table"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        };
        let mut args = vec!["dashboard", "deploy", entry.name.as_str()];
        if let Some(t) = &table {
            args.extend(["--table", t.as_str()]);
        }
        let o = aurora(&config, &args);
        assert!(o.status.success(), "{}: {}", entry.name, text(&o));
        let name = String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("show it: aurora dashboard show "))
            .and_then(|l| l.strip_suffix(" --once"))
            .unwrap_or_else(|| panic!("{}", text(&o)))
            .to_owned();
        deployed.push(name);
    }
    assert_eq!(deployed.len(), BUILTIN.len());
    // The event, order, user, breakdown, overview and time-series templates run on the demo.
    let on_demo = deployed.iter().filter(|n| n.contains("-demo-")).count();
    assert!(on_demo >= 5, "{deployed:?}");
    assert!(
        deployed.contains(&"web-events-demo-events".to_owned()),
        "{deployed:?}"
    );
    for name in &deployed {
        let o = aurora(
            &config,
            &["dashboard", "show", name, "--once", "--width", "100"],
        );
        let out = text(&o);
        assert!(o.status.success(), "{name}: {out}");
        assert!(!out.contains("error:"), "{name}: {out}");
        let o = aurora(&config, &["dashboard", "show", name, "--json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
        let states: Vec<&str> = v["panels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["state"].as_str().unwrap())
            .collect();
        assert!(
            states
                .iter()
                .all(|s| *s == "data" || *s == "text" || *s == "left_out"),
            "{name}: {states:?}"
        );
        // The live check agrees with the run.
        let path = config
            .parent()
            .unwrap()
            .join("dashboards")
            .join(format!("{name}.yaml"));
        let o = aurora(&config, &["dashboard", "validate", path.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", text(&o));
    }

    // The logs dashboard shows its data: levels counted, the error share computed.
    let o = aurora(
        &config,
        &[
            "dashboard",
            "show",
            &format!("app-logs-{db}-service_log"),
            "--once",
        ],
    );
    let shown = text(&o);
    assert!(
        shown.contains("ERROR") && shown.contains("Error rate"),
        "{shown}"
    );
    assert!(
        shown.contains("25.00%"),
        "a quarter of the lines are errors: {shown}"
    );
    // A variable narrows every panel that uses it.
    let o = aurora(
        &config,
        &[
            "dashboard",
            "show",
            &format!("app-logs-{db}-service_log"),
            "--once",
            "--var",
            "level=warn",
        ],
    );
    let shown = text(&o);
    assert!(o.status.success(), "{shown}");
    assert!(shown.contains("level=warn"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_again_never_overwrites_an_edited_file_silently() {
    let warehouse = common::warehouse().await;
    let db = common::scratch_database(&warehouse, "redeploy").await;
    warehouse
        .execute(&format!(
            "CREATE TABLE {db}.m (ts DateTime, v Float64) ENGINE = MergeTree ORDER BY ts"
        ))
        .await
        .unwrap();
    warehouse
        .execute(&format!(
            "INSERT INTO {db}.m SELECT now() - number, number FROM numbers(100)"
        ))
        .await
        .unwrap();
    let config = fresh_config("redeploy");
    let table = format!("{db}.m");
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "dashboard",
            "deploy",
            "time-series",
            "--table",
            table.as_str(),
        ];
        args.extend(extra);
        aurora(&config, &args)
    };
    let o = deploy(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let path = config
        .parent()
        .unwrap()
        .join("dashboards")
        .join(format!("time-series-{db}-m.yaml"));
    assert!(path.exists(), "{}", text(&o));
    let o = deploy(&[]);
    assert!(
        o.status.success() && text(&o).contains("unchanged"),
        "{}",
        text(&o)
    );
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("refresh: 1m", "refresh: 5m");
    std::fs::write(&path, &edited).unwrap();
    let o = deploy(&[]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("exists and differs"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    let o = deploy(&["--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(path.with_extension("yaml.bak")).unwrap(),
        edited
    );

    // Choosing a column that cannot play the role is refused with the reason.
    let o = deploy(&["--bind", "time=v", "--name", "other"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("`v` cannot be the time of slot `time`"),
        "{}",
        text(&o)
    );
    // A template that does not fit says which role is missing.
    let o = aurora(
        &config,
        &["dashboard", "deploy", "app-logs", "--table", &table],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("nothing fits `level` (a status column)"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_the_server_refuses_shows_its_error_and_the_others_still_run() {
    let config = fresh_config("refused");
    let file = config.parent().unwrap().join("broken.yaml");
    std::fs::write(
        &file,
        "\
title: Broken
panels:
  - title: Fine
    type: stat
    grid: {x: 0, y: 0, w: 12, h: 4}
    query: SELECT 1 AS one
  - title: Refused
    type: stat
    grid: {x: 12, y: 0, w: 12, h: 4}
    query: SELECT no_such_column FROM system.one
",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = aurora(&config, &["dashboard", "show", f, "--once"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("1 of 2 panels failed"), "{out}");
    assert!(
        out.contains("── Refused") && out.contains("error: ClickHouse error 47"),
        "{out}"
    );
    assert!(out.contains("── Fine"), "{out}");
    // The live check names the panel and the server's complaint.
    let o = aurora(&config, &["dashboard", "validate", f]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("panel `Refused`: ClickHouse error 47"),
        "{}",
        text(&o)
    );
}

/// Grafana's importer consumes these before reading the dashboard model.
fn strip_sharing_keys(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|k, _| !k.starts_with("__"));
    }
    v
}

#[test]
fn exports_pass_grafanas_published_dashboard_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/grafana/dashboard.v11.6.jsonschema.json").unwrap(),
    )
    .unwrap();
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles");
    let mut dashboards: Vec<(String, aurora::dashboards::Dashboard)> = fixtures("valid")
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            (
                path.display().to_string(),
                check_str("f.yaml", &text).unwrap(),
            )
        })
        .filter(|(_, d)| d.template.is_none())
        .collect();
    // Every built-in template, its slots filled with a stand-in: the JSON's shape is what
    // matters here (deployments run on the server in the test above).
    for entry in builtin_templates() {
        let mut d = entry.dashboard.clone();
        d.template = None;
        for p in &mut d.panels {
            p.query = p
                .query
                .as_ref()
                .map(|q| q.replace("{{", "x_").replace("}}", ""));
        }
        dashboards.push((entry.name.clone(), d));
    }
    for (name, d) in dashboards {
        let json = aurora::dashboards::grafana::export(&d);
        assert_eq!(
            json["__inputs"][0]["pluginId"],
            "grafana-clickhouse-datasource"
        );
        let errors: Vec<String> = validator
            .iter_errors(&strip_sharing_keys(json.clone()))
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_provisioning_folder_has_a_provider_a_datasource_and_the_dashboard() {
    let config = fresh_config("provisioning");
    let out_dir = config.parent().unwrap().join("grafana");
    let o = aurora(
        &config,
        &[
            "dashboard",
            "export",
            "server-health",
            "--grafana-provisioning",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let provider =
        std::fs::read_to_string(out_dir.join("provisioning/dashboards/aurora.yaml")).unwrap();
    assert!(provider.contains("type: file"), "{provider}");
    let datasource =
        std::fs::read_to_string(out_dir.join("provisioning/datasources/clickhouse.yaml")).unwrap();
    assert!(
        datasource.contains("type: grafana-clickhouse-datasource"),
        "{datasource}"
    );
    assert!(
        datasource.contains("password: $CLICKHOUSE_PASSWORD"),
        "no secret is written: {datasource}"
    );
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("dashboards/server-health.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        dashboard["panels"][0]["datasource"]["uid"],
        "aurora-clickhouse"
    );
    assert!(dashboard.get("__inputs").is_none());
}

/// Each published dashboard: how many of its panels must import, and a reason that must be
/// given for one that does not.
const GRAFANA_FIXTURES: &[(&str, usize, &str)] = &[
    ("system-dashboards.json", 40, ""),
    ("query-analysis.json", 10, ""),
    ("otel-logs-explorer.json", 2, ""),
    (
        "delta_deltaColumns_increase_increaseColumns.json",
        0,
        "rewrites the whole query",
    ),
    ("logs_volume_histogram_782.json", 4, ""),
    ("template-variable-test-dashboard.json", 10, ""),
];

#[test]
fn real_grafana_dashboards_import_with_a_report_and_survive_the_round_trip() {
    use aurora::dashboards::grafana::export;
    use aurora::dashboards::grafana_import::import;
    for (file, at_least, reason) in GRAFANA_FIXTURES {
        let path = Path::new("tests/fixtures/grafana/import").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let report = match import(&text) {
            Ok(r) => r,
            Err(e) if *at_least == 0 => {
                // Nothing translatable: the error names what was found.
                assert!(
                    e.to_string().contains("ClickHouse") || e.to_string().contains(reason),
                    "{file}: {e}"
                );
                continue;
            }
            Err(e) => panic!("{file}: {e}"),
        };
        let imported: Vec<_> = report
            .panels
            .iter()
            .filter(|p| p.skipped.is_none())
            .collect();
        assert!(imported.len() >= *at_least, "{file}: {:#?}", report.panels);
        if !reason.is_empty() {
            assert!(
                report
                    .panels
                    .iter()
                    .any(|p| p.skipped.as_deref().is_some_and(|s| s.contains(reason))),
                "{file}: {:#?}",
                report.panels
            );
        }
        for p in report.panels.iter().filter(|p| p.skipped.is_some()) {
            assert!(!p.skipped.as_deref().unwrap().is_empty(), "{file}: {p:?}");
        }
        // What imports is a valid dashboard file.
        let yaml = serde_yaml::to_string(&report.dashboard).unwrap();
        if let Err(d) = check_str(file, &yaml) {
            panic!("{file}:\n{}", aurora::config::render_all(&d, Some(&yaml)));
        }
        // The round trip keeps every panel's title, type, place and query.
        let again = import(&serde_json::to_string(&export(&report.dashboard)).unwrap()).unwrap();
        let shape = |d: &aurora::dashboards::Dashboard| {
            d.panels
                .iter()
                .map(|p| (p.title.clone(), p.kind, p.grid, p.query.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&again.dashboard), shape(&report.dashboard), "{file}");
        assert_eq!(
            again.dashboard.variables, report.dashboard.variables,
            "{file}"
        );
    }
}

#[test]
fn import_writes_a_file_that_runs_and_reports_what_it_left_out() {
    let config = fresh_config("import");
    let o = aurora(
        &config,
        &[
            "dashboard",
            "import",
            "tests/fixtures/grafana/import/logs_volume_histogram_782.json",
        ],
    );
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("panels imported"), "{out}");
    assert!(out.contains("✓"), "{out}");
    let o = aurora(
        &config,
        &[
            "dashboard",
            "import",
            "tests/fixtures/grafana/import/delta_deltaColumns_increase_increaseColumns.json",
        ],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("none of its panels could be translated")
            && text(&o).contains("rewrites the whole query"),
        "{}",
        text(&o)
    );
    let not = config.parent().unwrap().join("not-a-dashboard.json");
    std::fs::write(&not, "{\"apiVersion\": 1, \"datasources\": []}").unwrap();
    let o = aurora(&config, &["dashboard", "import", not.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(
            "not a Grafana dashboard: no `panels` or `rows`; its keys are apiVersion, datasources"
        ),
        "{}",
        text(&o)
    );
    // A dashboard of our own exported and imported runs against the server.
    let exported = config.parent().unwrap().join("table-storage.json");
    let o = aurora(
        &config,
        &[
            "dashboard",
            "export",
            "table-storage",
            "--grafana",
            "-o",
            exported.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = aurora(
        &config,
        &[
            "dashboard",
            "import",
            exported.to_str().unwrap(),
            "--name",
            "storage-again",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = aurora(&config, &["dashboard", "show", "storage-again", "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("Largest tables"), "{}", text(&o));
}
