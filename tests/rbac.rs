//! Roles through the binary, against the harness's real ClickHouse: every headless front end
//! asks them (queries, the schema, dashboards, pipelines), a denial names its rule and is in
//! the audit log, row filters reach the server (its query log shows the filter), and
//! `aurora rbac render`'s users.xml, loaded into a private server of its own, makes that
//! server refuse the same reads and writes by itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use aurora::warehouse::local_server::LocalServerOptions;

fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

/// Roles over `db` (orders filtered to DE, customers without email) and `hidden`, bound so
/// that this process's user is `role`.
fn rules(db: &str, hidden: &str, role: &str) -> String {
    format!(
        r#"rbac:
  roles:
    viewer: {{actions: [dashboard.view, pipeline.view, schema], databases: [{db}]}}
    analyst:
      inherits: [viewer]
      actions: [query, ask]
      hide_columns: [{db}.customers.email]
      row_filters: {{{db}.orders: "country = 'DE'"}}
    reader: {{actions: [query], tables: [{db}.orders]}}
    admin: {{actions: ["*"], databases: ["*"]}}
  bindings:
    - {{user: {me}, roles: [{role}]}}
    - {{group: aurora-admins-{hidden}, roles: [admin]}}
  default_role: viewer
"#,
        me = me()
    )
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let log = dir.join("audit.jsonl");
    std::fs::write(&path, format!("audit:\n  path: {}\n{body}", log.display())).unwrap();
    path
}

fn aurora(config: &Path, url: &str, args: &[&str]) -> Output {
    common::aurora_command()
        .env("AURORA_CONFIG", config)
        .arg("--url")
        .arg(url)
        .args(args)
        .output()
        .expect("run aurora")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn denied_records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["outcome"] == "denied")
        .collect()
}

async fn tables(w: &aurora::warehouse::Warehouse, db: &str, hidden: &str) {
    for sql in [
        format!("CREATE TABLE {db}.orders (id UInt32, country String, total Float64) ENGINE = MergeTree ORDER BY id"),
        format!("INSERT INTO {db}.orders VALUES (1, 'DE', 10), (2, 'FR', 20), (3, 'DE', 30)"),
        format!("CREATE TABLE {db}.customers (id UInt32, name String, email String) ENGINE = MergeTree ORDER BY id"),
        format!("INSERT INTO {db}.customers VALUES (1, 'Ann', 'ann@example.com'), (2, 'Bo', 'bo@example.com')"),
        format!("CREATE TABLE {hidden}.salaries (id UInt32, amount UInt32) ENGINE = MergeTree ORDER BY id"),
        format!("INSERT INTO {hidden}.salaries VALUES (1, 100)"),
    ] {
        w.execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_headless_front_end_asks_the_roles_and_denials_name_their_rule() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "rbac_front").await;
    let hidden = common::scratch_database(&w, "rbac_front_hidden").await;
    tables(&w, &db, &hidden).await;
    let dir = common::fresh_data_dir("rbac-front");
    let cfg = write_config(&dir, &rules(&db, &hidden, "analyst"));
    let url = common::url();

    // Row filter: only the German orders come back, and the server ran the filter itself.
    let query_id = format!("rbac-{}", std::process::id());
    let out = aurora(
        &cfg,
        &url,
        &[
            "query",
            "--format",
            "csv",
            "--query-id",
            &query_id,
            &format!("SELECT id, country FROM {db}.orders ORDER BY id"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "id,country\n1,DE\n3,DE\n");
    w.execute("SYSTEM FLUSH LOGS").await.unwrap();
    let ran = common::scalar(
        &w,
        &format!("SELECT any(query) FROM system.query_log WHERE query_id = '{query_id}'"),
    )
    .await;
    assert!(ran.contains("country = 'DE'"), "the server ran: {ran}");

    // A table outside the roles, a hidden column, `*` over it: refused, the rule named.
    let outside = aurora(
        &cfg,
        &url,
        &[
            "query",
            &format!("SELECT sum(amount) FROM {hidden}.salaries"),
        ],
    );
    assert!(!outside.status.success());
    let err = text(&outside.stderr);
    assert!(
        err.contains(&format!("denied: table {hidden}.salaries is outside")),
        "{err}"
    );
    assert!(err.contains("rbac.bindings[0]"), "{err}");
    for sql in [
        format!("SELECT email FROM {db}.customers"),
        format!("SELECT c.name, c.email FROM {db}.customers AS c"),
        format!("SELECT * FROM {db}.customers"),
    ] {
        let out = aurora(&cfg, &url, &["query", &sql]);
        assert!(!out.status.success(), "{sql} ran");
        let err = text(&out.stderr);
        assert!(
            err.contains("rbac.roles.analyst.hide_columns"),
            "{sql}: {err}"
        );
        assert!(!text(&out.stdout).contains("example.com"), "{sql}");
    }
    let ok = aurora(
        &cfg,
        &url,
        &[
            "query",
            "--format",
            "csv",
            &format!("SELECT name FROM {db}.customers ORDER BY id"),
        ],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "name\nAnn\nBo\n");

    // A write needs `query.write`, which the analyst lacks.
    let write = aurora(
        &cfg,
        &url,
        &[
            "query",
            "--write",
            &format!("INSERT INTO {db}.orders VALUES (9, 'DE', 1)"),
        ],
    );
    assert!(!write.status.success());
    assert!(
        text(&write.stderr).contains("`query.write` is not an action"),
        "{}",
        text(&write.stderr)
    );

    // The schema shows only what the roles may read.
    let schema = aurora(&cfg, &url, &["schema", "--format", "json"]);
    assert!(schema.status.success(), "{}", text(&schema.stderr));
    let listed = text(&schema.stdout);
    assert!(listed.contains(&format!("\"{db}\"")), "{listed}");
    assert!(!listed.contains(&hidden), "{listed}");
    assert!(!listed.contains("\"email\""), "{listed}");

    // Every denial is in the audit log, with its reason.
    let denials = denied_records(&dir);
    assert!(denials.len() >= 5, "{denials:#?}");
    assert!(denials
        .iter()
        .any(|r| r["resource"] == format!("{hidden}.salaries") && r["action"] == "query"));
    assert!(denials
        .iter()
        .all(|r| r["detail"]["reason"].as_str().is_some()));

    // A role with only `query` on one table: dashboards, pipelines and the schema are refused.
    let reader_dir = common::fresh_data_dir("rbac-reader");
    let reader = write_config(&reader_dir, &rules(&db, &hidden, "reader"));
    for args in [
        vec!["pipeline", "status"],
        vec!["dashboard", "list"],
        vec!["schema"],
        vec!["alert", "list"],
    ] {
        let out = aurora(&reader, &url, &args);
        assert!(!out.status.success(), "{args:?} was allowed");
        assert!(
            text(&out.stderr).contains("is not an action of"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let joined = aurora(
        &reader,
        &url,
        &[
            "query",
            &format!("SELECT o.id FROM {db}.orders o JOIN {db}.customers c ON c.id = o.id"),
        ],
    );
    assert!(
        text(&joined.stderr).contains(&format!("table {db}.customers is outside")),
        "{}",
        text(&joined.stderr)
    );

    // An alert rule's query, tried by `alert test`, runs inside the roles with the row filter.
    let alert_dir = common::fresh_data_dir("rbac-alert");
    let alert_cfg = write_config(
        &alert_dir,
        &format!(
            "{}alerts:\n  rules:\n    - {{name: orders, query: \"SELECT count() AS value FROM {db}.orders\", condition: \"> 0\"}}\n",
            rules(&db, &hidden, "analyst").replace("actions: [query, ask]", "actions: [query, ask, alert.view]")
        ),
    );
    let tried = aurora(&alert_cfg, &url, &["alert", "test", "orders"]);
    assert!(tried.status.success(), "{}", text(&tried.stderr));
    let shown = text(&tried.stdout);
    assert!(
        shown.contains("  2  "),
        "the rule saw rows outside the filter: {shown}"
    );

    // `rbac check` answers for another user, who gets the default role.
    let check = aurora(
        &cfg,
        &url,
        &[
            "rbac",
            "check",
            "--user",
            "someone-else",
            "--action",
            "query",
        ],
    );
    assert!(!check.status.success());
    assert!(
        text(&check.stdout).contains("rbac.default_role"),
        "{}",
        text(&check.stdout)
    );
    let whoami = aurora(&cfg, &url, &["rbac", "whoami", "--json"]);
    let who: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(who["user"], me());
    assert_eq!(who["roles"][0]["name"], "analyst");
}

#[test]
fn rules_with_mistakes_are_refused_with_every_place_and_a_fix() {
    let dir = common::fresh_data_dir("rbac-bad");
    let cfg = write_config(
        &dir,
        "rbac:\n  roles:\n    viewer: {actions: [dashboard.veiw], inherits: [ghost]}\n  bindings:\n    - {user: ann, roles: [viewr]}\n",
    );
    let out = common::aurora_command()
        .args(["config", "check"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = text(&out.stdout) + &text(&out.stderr);
    for needle in [
        "config.yaml:5:",
        "unknown action `dashboard.veiw`",
        "there is no role `ghost`",
        "there is no role `viewr`",
        "the roles are: viewer",
    ] {
        assert!(all.contains(needle), "{needle} missing:\n{all}");
    }
}

/// Runs `sql` on `url` as `user`/`password` over HTTP; the body (data or the server's error).
async fn as_user(url: &str, user: &str, password: &str, sql: &str) -> String {
    common::http_client()
        .post(url)
        .query(&[("user", user), ("password", password)])
        .body(sql.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rendered_users_xml_makes_a_private_server_refuse_the_same_queries() {
    // A server of its own: its users change.
    let data = common::fresh_data_dir("rbac-render");
    let mut opts = LocalServerOptions::new(data.clone());
    opts.startup_timeout = Duration::from_secs(60);
    let server = common::start_bound_server(opts);
    let url = server.url();
    let w = aurora::warehouse::Warehouse::connect(aurora::warehouse::ConnectionSettings::new(
        url.clone(),
    ))
    .await
    .unwrap();
    let db = common::scratch_database(&w, "rbac_render").await;
    let hidden = common::scratch_database(&w, "rbac_render_hidden").await;
    tables(&w, &db, &hidden).await;

    let dir = common::fresh_data_dir("rbac-render-config");
    let cfg = write_config(&dir, &rules(&db, &hidden, "admin"));
    std::fs::write(dir.join("pw"), "s3cret-for-rbac\n").unwrap();
    let users_d = data.join("etc").join("users.d");
    std::fs::create_dir_all(&users_d).unwrap();
    let file = users_d.join("aurora-rbac.xml");
    let out = aurora(
        &cfg,
        &url,
        &[
            "rbac",
            "render",
            "--users-password-file",
            dir.join("pw").to_str().unwrap(),
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // What this server cannot enforce is said.
    let notes = text(&out.stderr);
    assert!(notes.contains("cannot hide columns"), "{notes}");
    assert!(notes.contains("no row filters"), "{notes}");

    // The server picks the file up by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = as_user(&url, "aurora_analyst", "s3cret-for-rbac", "SELECT 1").await;
        if answer.trim() == "1" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rendered user never worked: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The server's own checks: a database outside the role, a write, a wrong password.
    let outside = as_user(
        &url,
        "aurora_analyst",
        "s3cret-for-rbac",
        &format!("SELECT * FROM {hidden}.salaries"),
    )
    .await;
    assert!(outside.contains("Code: 291"), "{outside}");
    let write = as_user(
        &url,
        "aurora_analyst",
        "s3cret-for-rbac",
        &format!("INSERT INTO {db}.orders VALUES (7, 'DE', 1)"),
    )
    .await;
    assert!(write.contains("Code: 164"), "{write}");
    let inside = as_user(
        &url,
        "aurora_analyst",
        "s3cret-for-rbac",
        &format!("SELECT count() FROM {db}.orders"),
    )
    .await;
    assert_eq!(inside.trim(), "3");
    let wrong = as_user(&url, "aurora_analyst", "not-it", "SELECT 1").await;
    assert!(wrong.contains("Code: 193"), "{wrong}");
    // The same refusal through Aurora with no roles of its own: the server's word, not Aurora's.
    let plain_dir = common::fresh_data_dir("rbac-render-plain");
    let plain = write_config(&plain_dir, "");
    let through = common::aurora_command()
        .env("AURORA_CONFIG", &plain)
        .args(["--url", &url, "--user", "aurora_analyst", "--password-file"])
        .arg(dir.join("pw"))
        .args(["query", &format!("SELECT * FROM {hidden}.salaries")])
        .output()
        .unwrap();
    assert!(!through.status.success());
    let err = text(&through.stderr);
    assert!(
        err.contains("291") && !err.contains("denied: table"),
        "{err}"
    );
}
