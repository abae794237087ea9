//! The `aurora` binary as a user runs it: real server, real process, stdout/stderr/exit code.

mod common;

use std::path::Path;
use std::process::Output;

fn aurora(args: &[&str]) -> Output {
    aurora_env(args, &[])
}

fn aurora_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::aurora_command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run aurora")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn assert_no_panic(o: &Output) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

fn query(sql: &str, format: &str) -> Output {
    let url = common::url();
    aurora(&["--url", &url, "query", sql, "--format", format])
}

#[test]
fn json_output_is_stable_and_exact() {
    let o = query(
        "SELECT toUInt64(18446744073709551615) AS big, toDecimal32(2.5, 2) AS d, 'x' AS s, CAST(NULL AS Nullable(UInt8)) AS n",
        "json",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    // Exact digits, not a float approximation.
    assert!(
        text.contains("[18446744073709551615,\"2.50\",\"x\",null]"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["meta"][0]["name"], "big");
    assert_eq!(v["meta"][0]["type"], "UInt64");
    assert_eq!(v["meta"][3]["type"], "Nullable(UInt8)");
    assert_eq!(v["rows"], 1);
    assert_eq!(v["truncated"], false);
    assert!(v["statistics"]["elapsed_seconds"].is_number());
    assert!(v["statistics"]["query_id"].is_string());
    assert!(v["statistics"]["rows_read"].is_number());
}

#[test]
fn csv_tsv_and_table_formats() {
    let sql =
        "SELECT number AS n, concat('a,b', toString(number)) AS s FROM system.numbers LIMIT 2";
    let csv = query(sql, "csv");
    assert_eq!(stdout(&csv), "n,s\n0,\"a,b0\"\n1,\"a,b1\"\n");
    let tsv = query("SELECT 'tab\there' AS s", "tsv");
    assert_eq!(stdout(&tsv), "s\ntab\\there\n");
    let table = query(sql, "table");
    let text = stdout(&table);
    assert!(
        text.contains("a,b1") && text.contains("2 rows in set"),
        "{text}"
    );
}

#[test]
fn sql_from_stdin_and_file() {
    let url = common::url();
    let dir = common::fresh_data_dir("sqlfile");
    let file = dir.join("q.sql");
    std::fs::write(&file, "SELECT 40 + 2 AS answer;\n").unwrap();
    let o = aurora(&[
        "--url",
        &url,
        "query",
        "--file",
        file.to_str().unwrap(),
        "--format",
        "tsv",
    ]);
    assert_eq!(stdout(&o), "answer\n42\n", "{}", stderr(&o));
    let mut child = common::aurora_command()
        .args(["--url", &url, "query", "-", "--format", "tsv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT 7 AS seven")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "seven\n7\n");
}

#[test]
fn syntax_error_shows_code_position_and_hint() {
    let o = query("SELECT 1\nFROM system.one\nWHERE (1", "table");
    assert_eq!(o.status.code(), Some(1));
    assert_no_panic(&o);
    let err = stderr(&o);
    assert!(err.starts_with("error: ClickHouse error 62"), "{err}");
    assert!(err.contains("3 | WHERE (1"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn writes_need_write_flag() {
    let url = common::url();
    let o = aurora(&[
        "--url",
        &url,
        "query",
        "CREATE DATABASE IF NOT EXISTS cli_write_test",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--write"), "{}", stderr(&o));
    let o = aurora(&[
        "--url",
        &url,
        "query",
        "--write",
        "CREATE DATABASE IF NOT EXISTS cli_write_test",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Ok."), "{}", stdout(&o));
}

#[test]
fn dry_run_checks_only() {
    let url = common::url();
    let o = aurora(&[
        "--url",
        &url,
        "query",
        "--dry-run",
        "SELECT number AS n FROM system.numbers",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("n  UInt64"), "{}", stdout(&o));
    let o = aurora(&[
        "--url",
        &url,
        "query",
        "--dry-run",
        "SELECT nope FROM system.one",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error 47"), "{}", stderr(&o));
}

#[test]
fn connection_problems_are_one_sentence_with_a_hint() {
    let url = common::closed_port_url();
    let o = aurora(&["--url", &url, "query", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_no_panic(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&url) && err.contains("connection refused"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let o = aurora_env(
        &["query", "SELECT 1"],
        &[
            ("AURORA_CLICKHOUSE_URL", &common::url()),
            ("AURORA_CLICKHOUSE_PASSWORD", "nope"),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot log in"), "{}", stderr(&o));

    let o = aurora(&[
        "--url",
        &common::url(),
        "--database",
        "nowhere",
        "query",
        "SELECT 1",
    ]);
    assert!(
        stderr(&o).contains("database `nowhere` does not exist"),
        "{}",
        stderr(&o)
    );

    let o = aurora(&["--url", "localhost:8123", "query", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("http://HOST:8123"), "{}", stderr(&o));
}

#[test]
fn flags_beat_env() {
    // A dead URL in the environment loses against a working one on the command line.
    let o = aurora_env(
        &[
            "--url",
            &common::url(),
            "query",
            "SELECT 1 AS one",
            "--format",
            "tsv",
        ],
        &[("AURORA_CLICKHOUSE_URL", "http://127.0.0.1:1")],
    );
    assert_eq!(stdout(&o), "one\n1\n", "{}", stderr(&o));
}

#[test]
fn demo_loads_sample_data_and_schema_describes_it() {
    let url = common::url();
    let o = aurora(&["--url", &url, "demo", "--tour"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("demo.events"), "{text}");
    assert!(text.contains("7 rows in set"), "{text}");
    // Idempotent: a second run does not load twice.
    let again = aurora(&["--url", &url, "demo", "--tour"]);
    assert!(
        stdout(&again).contains("already loaded"),
        "{}",
        stdout(&again)
    );
    let count = aurora(&[
        "--url",
        &url,
        "query",
        "SELECT count() FROM demo.events",
        "--format",
        "tsv",
    ]);
    assert_eq!(stdout(&count), "count()\n5000\n");

    let o = aurora(&["--url", &url, "schema"]);
    assert!(stdout(&o).contains("demo.events") && stdout(&o).contains("MergeTree"));
    let o = aurora(&["--url", &url, "schema", "demo.events", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["sorting_key"], "event_type, event_time");
    assert_eq!(v["total_rows"], 5000);
    let o = aurora(&["--url", &url, "schema", "demo.event"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("did you mean `demo.events`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn demo_without_a_terminal_points_to_headless_and_tour() {
    // The tests' stdout is a pipe: the full-screen workspace cannot open.
    let o = aurora(&["--url", &common::closed_port_url(), "demo"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("needs a terminal")
            && err.contains("--headless --duration")
            && err.contains("--tour"),
        "{err}"
    );
    assert_no_panic(&o);
    // The headless options need --headless.
    let o = aurora(&["demo", "--duration", "5s"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--headless"), "{}", stderr(&o));
    let o = aurora(&["demo", "--headless", "--rate", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("between 0.1 and 20000"),
        "{}",
        stderr(&o)
    );
}

fn write_config(dir: &Path, body: &str) -> String {
    let path = dir.join("config.yaml");
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().to_string()
}

/// A config whose private server lives in a data directory of its own.
fn private_server_config(label: &str) -> String {
    let dir = common::fresh_data_dir(label);
    write_config(
        &dir,
        &format!(
            "clickhouse:\n  local_server:\n    data_dir: {}/ch\n",
            dir.display()
        ),
    )
}

#[test]
fn server_start_status_stop_and_local_queries() {
    let config = private_server_config("cli-server");
    let env = [("AURORA_CONFIG", config.as_str())];
    let o = aurora_env(&["server", "status"], &env);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).starts_with("stopped"), "{}", stdout(&o));

    // No URL anywhere: a query starts the private server and stops it again afterwards.
    let o = aurora_env(&["query", "SELECT 1 AS one", "--format", "tsv"], &env);
    assert_eq!(stdout(&o), "one\n1\n", "{}", stderr(&o));
    assert_eq!(
        aurora_env(&["server", "status"], &env).status.code(),
        Some(3)
    );

    let o = aurora_env(&["server", "start"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("started"), "{}", stdout(&o));
    let o = aurora_env(&["server", "start"], &env);
    assert!(stdout(&o).contains("already running"), "{}", stdout(&o));
    let o = aurora_env(&["server", "status", "--json"], &env);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["state"], "running");
    let pid = v["pid"].as_i64().unwrap();
    // A query reuses the running server and leaves it running.
    let o = aurora_env(&["query", "SELECT 2 AS two", "--format", "tsv"], &env);
    assert_eq!(stdout(&o), "two\n2\n");
    let o = aurora_env(&["server", "status", "--json"], &env);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["pid"].as_i64(), Some(pid));

    let o = aurora_env(&["server", "stop"], &env);
    assert!(stdout(&o).contains(&format!("pid {pid}")), "{}", stdout(&o));
    assert_eq!(
        aurora_env(&["server", "status"], &env).status.code(),
        Some(3)
    );
}

#[test]
fn missing_clickhouse_binary_is_explained() {
    let dir = common::fresh_data_dir("cli-nobinary");
    let config = write_config(
        &dir,
        &format!(
            "clickhouse:\n  local_server:\n    binary: /nonexistent/clickhouse\n    data_dir: {}/ch\n",
            dir.display()
        ),
    );
    let o = aurora_env(&["query", "SELECT 1"], &[("AURORA_CONFIG", &config)]);
    assert_eq!(o.status.code(), Some(1));
    assert_no_panic(&o);
    assert!(
        stderr(&o).contains("apt-get install clickhouse-server"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn config_check_reports_every_problem() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let bad = fixtures.join("invalid/five_problems.yaml");
    let o = aurora(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.matches(": error: ").count() >= 5, "{err}");
    let good = fixtures.join("valid/full.yaml");
    let o = aurora(&["config", "check", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every command that loads config shows the same diagnostics.
    let o = aurora(&["--config", bad.to_str().unwrap(), "query", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).matches(": error: ").count() >= 5,
        "{}",
        stderr(&o)
    );
}

#[test]
fn overview_help_and_completions() {
    let o = aurora(&[]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("aurora query"));
    let o = aurora(&["--help"]);
    assert!(stdout(&o).contains("AURORA_CLICKHOUSE_URL"));
    let o = aurora(&["completions", "bash"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("complete -F"));
}

#[test]
fn own_format_clause_and_utf8_positions_are_handled() {
    let o = query("SELECT 1 FORMAT JSON", "table");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
    // A syntax error after multi-byte text: the caret must not split a character.
    let o = query("  SELECT 'ééééé' WHER é", "table");
    assert_eq!(o.status.code(), Some(1));
    assert_no_panic(&o);
    assert!(stderr(&o).contains("error 62"), "{}", stderr(&o));
}

/// Polls `check` every 100 ms for up to 60 s.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn status_json(env: &[(&str, &str)]) -> serde_json::Value {
    serde_json::from_str(&stdout(&aurora_env(&["server", "status", "--json"], env))).unwrap()
}

fn spawn_long_query(env: &[(&str, &str)], query_id: &str) -> std::process::Child {
    let mut cmd = common::aurora_command();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args([
        "query",
        "SELECT count() FROM system.numbers WHERE number % 7 = 99",
        "--timeout",
        "120s",
        "--query-id",
        query_id,
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap()
}

fn query_running(url: &str, query_id: &str) -> bool {
    let o = aurora(&[
        "--url",
        url,
        "query",
        &format!("SELECT count() FROM system.processes WHERE query_id = '{query_id}'"),
        "--format",
        "tsv",
    ]);
    stdout(&o).ends_with("\n1\n")
}

fn sigterm(child: &std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

#[test]
fn sigterm_cancels_the_query_and_the_last_user_stops_an_on_demand_server() {
    let config = private_server_config("cli-sigterm");
    let env = [("AURORA_CONFIG", config.as_str())];

    // First command starts the server on demand; a second one reuses it.
    let first = spawn_long_query(&env, "sigterm-first");
    wait_for("the server", || status_json(&env)["state"] == "running");
    let url = status_json(&env)["url"].as_str().unwrap().to_string();
    wait_for("the first query", || query_running(&url, "sigterm-first"));
    let second = spawn_long_query(&env, "sigterm-second");
    wait_for("the second query", || query_running(&url, "sigterm-second"));

    // The starter goes away: its query is killed, the other command keeps the server.
    sigterm(&first);
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cancelled by SIGTERM"));
    wait_for("the first query to be killed", || {
        !query_running(&url, "sigterm-first")
    });
    assert_eq!(status_json(&env)["state"], "running");
    assert!(query_running(&url, "sigterm-second"));

    // The last user going away stops the on-demand server.
    sigterm(&second);
    let out = second.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(status_json(&env)["state"], "stopped");
}

#[test]
fn with_totals_shows_the_totals_row() {
    let sql =
        "SELECT number % 2 AS k, count() AS c FROM numbers(10) GROUP BY k WITH TOTALS ORDER BY k";
    let table = stdout(&query(sql, "table"));
    assert!(table.contains("Totals:"), "{table}");
    assert!(
        table.contains("| 10 |") || table.contains(" 10 |"),
        "{table}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&query(sql, "json"))).unwrap();
    assert_eq!(json["totals"], serde_json::json!([0, 10]));
    assert_eq!(json["rows"], 2);
}
