//! PostgreSQL and MariaDB pipelines end to end: real database servers started by the harness
//! (`common::sqldb`), the real `aurora` binary, a real ClickHouse. Each copies a 100k-row table
//! exactly, picks up rows added afterwards, resumes after SIGTERM and after SIGKILL without
//! losing or duplicating a row, and reports a bad cursor column in plain words.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aurora::warehouse::Warehouse;
use common::sqldb::{self, SqlServer};

/// Rows in the source table at the start.
const ROWS: u64 = 100_000;

/// One kind of source database: its server, and its SQL for the test table.
struct Db {
    server: &'static SqlServer,
    /// The pipeline's source key: `postgres` or `mysql`.
    kind: &'static str,
    create: &'static str,
    /// Inserts ids `{first}..={last}`.
    insert: fn(u64, u64) -> String,
}

fn postgres() -> Db {
    Db {
        server: sqldb::postgres(),
        kind: "postgres",
        create: "CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL, \
                 amount numeric(12,2), placed_at timestamptz NOT NULL, note text);",
        insert: |first, last| {
            format!(
                "INSERT INTO orders SELECT g, 'customer ' || (g % 1000), (g % 50000) / 100.0, \
                 timestamptz '2026-01-01 00:00:00+00' + g * interval '1 second' + (g % 1000) * interval '1 microsecond', \
                 CASE WHEN g % 7 = 0 THEN NULL ELSE 'note, \"' || g || '\"' END \
                 FROM generate_series({first}, {last}) g;"
            )
        },
    }
}

fn mariadb() -> Db {
    Db {
        server: sqldb::mariadb(),
        kind: "mysql",
        create:
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL, \
                 amount DECIMAL(12,2), placed_at DATETIME(6) NOT NULL, note TEXT, KEY (placed_at));",
        insert: |first, last| {
            format!(
                "INSERT INTO orders SELECT seq, CONCAT('customer ', seq % 1000), (seq % 50000) / 100, \
                 TIMESTAMP'2026-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq % 1000) MICROSECOND, \
                 IF(seq % 7 = 0, NULL, CONCAT('note, \"', seq, '\"')) FROM seq_{first}_to_{last};"
            )
        },
    }
}

/// A source database with the `orders` table holding ids `1..=rows`.
fn source_database(db: &Db, name: &str, rows: u64) -> String {
    db.server.create_database(name);
    db.server.sql(name, db.create);
    if rows > 0 {
        db.server.sql(name, &(db.insert)(1, rows));
    }
    db.server.dsn(name)
}

struct Fixture {
    dir: PathBuf,
    pipeline: PathBuf,
    ch_db: String,
}

impl Fixture {
    fn state(&self) -> String {
        self.dir.join("state").display().to_string()
    }

    fn log(&self) -> PathBuf {
        self.dir.join("aurora.log")
    }
}

async fn fixture(w: &Warehouse, name: &str, source: &str, delivery: &str) -> Fixture {
    let ch_db = common::scratch_database(w, name).await;
    let dir = common::fresh_data_dir(name);
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "pipelines:
  - name: {name}
    source:
{source}
    mapping:
      columns:
        id: {{type: UInt64}}
        customer: {{type: String}}
        amount: {{type: 'Decimal(12, 2)'}}
        placed_at: {{type: DateTime}}
        note: {{type: Nullable(String)}}
    sink:
      table: {ch_db}.orders
      create: if_missing
      order_by: [id]
      batch: {{max_rows: 20000, max_wait: 200ms}}
    delivery: {delivery}
"
        ),
    )
    .unwrap();
    Fixture {
        dir,
        pipeline,
        ch_db,
    }
}

fn source_yaml(kind: &str, dsn: &str, cursor: &str, follow: bool) -> String {
    format!(
        "      {kind}:
        dsn: {dsn}
        table: orders
        cursor: {cursor}
        follow: {follow}
        poll_interval: 100ms
        page_rows: 7000"
    )
}

fn run_command(f: &Fixture) -> Command {
    let mut cmd = common::aurora_command();
    cmd.args(["--url", &common::url(), "pipeline", "run"])
        .arg(&f.pipeline)
        .args(["--state-dir", &f.state()]);
    cmd
}

/// Starts `aurora pipeline run`; its log goes to `aurora.log` in the fixture's directory.
fn spawn(f: &Fixture) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(f.log())
        .unwrap();
    run_command(f)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start aurora pipeline run")
}

/// Stops a follow-mode run with SIGTERM; it must drain and exit 0.
fn terminate(f: &Fixture, mut child: Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        std::fs::read_to_string(f.log()).unwrap_or_default()
    );
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("aurora did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn wait_for_rows(w: &Warehouse, f: &Fixture, target: u64) {
    let sql = format!("SELECT count() FROM {}.orders", f.ch_db);
    let started = Instant::now();
    loop {
        let n = common::count(w, &sql).await;
        if n >= target {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {n} of {target} rows arrived; log:\n{}",
            std::fs::read_to_string(f.log()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (rows, distinct ids, sum of ids) in the ClickHouse table.
async fn stats(w: &Warehouse, f: &Fixture) -> (u64, u64, u64) {
    let text = common::scalar(
        w,
        &format!(
            "SELECT concat(toString(count()), ' ', toString(uniqExact(id)), ' ', toString(sum(id))) FROM {}.orders",
            f.ch_db
        ),
    )
    .await;
    let n: Vec<u64> = text.split(' ').map(|x| x.parse().unwrap()).collect();
    (n[0], n[1], n[2])
}

fn expected(rows: u64) -> (u64, u64, u64) {
    (rows, rows, rows * (rows + 1) / 2)
}

/// Every value survived the trip: amounts to the cent, times to the second, NULLs, text.
async fn assert_values_exact(w: &Warehouse, f: &Fixture, rows: u64) {
    let cents: u64 = (1..=rows).map(|g| g % 50_000).sum();
    let q = |sql: String| async move { common::scalar(w, &sql).await };
    let t = &f.ch_db;
    assert_eq!(
        q(format!(
            "SELECT toString(sum(toUInt64(round(toFloat64(amount) * 100)))) FROM {t}.orders"
        ))
        .await,
        cents.to_string()
    );
    assert_eq!(
        q(format!(
            "SELECT toString(toUInt32(max(placed_at))) FROM {t}.orders"
        ))
        .await,
        (1_767_225_600 + rows).to_string()
    );
    assert_eq!(
        q(format!(
            "SELECT toString(countIf(isNull(note))) FROM {t}.orders"
        ))
        .await,
        (rows / 7).to_string()
    );
    assert_eq!(
        q(format!(
            "SELECT concat(customer, '|', note) FROM {t}.orders WHERE id = 1002"
        ))
        .await,
        "customer 2|note, \"1002\""
    );
}

/// The whole story on one database: copy, pick up new rows, stop, resume, crash, resume.
async fn copy_follow_and_resume(db: Db, name: &str, cursor: &str) {
    let w = common::warehouse().await;
    let dsn = source_database(&db, name, ROWS);
    let f = fixture(
        &w,
        name,
        &source_yaml(db.kind, &dsn, cursor, true),
        "exactly_once",
    )
    .await;

    // The table is copied exactly, then rows added afterwards arrive too.
    let child = spawn(&f);
    wait_for_rows(&w, &f, ROWS).await;
    db.server.sql(name, &(db.insert)(ROWS + 1, ROWS + 1000));
    wait_for_rows(&w, &f, ROWS + 1000).await;
    terminate(&f, child);
    assert_eq!(stats(&w, &f).await, expected(ROWS + 1000));
    assert_values_exact(&w, &f, ROWS + 1000).await;

    // Rows added while no pipeline runs arrive on the next run, and nothing twice.
    db.server.sql(name, &(db.insert)(ROWS + 1001, ROWS + 2000));
    let child = spawn(&f);
    wait_for_rows(&w, &f, ROWS + 2000).await;
    terminate(&f, child);
    assert_eq!(stats(&w, &f).await, expected(ROWS + 2000));

    // SIGKILL in the middle of a large insert's copy, with the saved cursor wiped: the sink's
    // bookkeeping alone keeps the table exact.
    db.server.sql(name, &(db.insert)(ROWS + 2001, 2 * ROWS));
    let mut child = spawn(&f);
    wait_for_rows(&w, &f, ROWS + 30_000).await;
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(f.dir.join("state"));
    let child = spawn(&f);
    wait_for_rows(&w, &f, 2 * ROWS).await;
    // Give a (wrong) duplicate time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminate(&f, child);
    assert_eq!(stats(&w, &f).await, expected(2 * ROWS));
    assert_values_exact(&w, &f, 2 * ROWS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_table_copied_exactly_and_kept_up_to_date() {
    copy_follow_and_resume(postgres(), "pg_orders", "id").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_table_copied_exactly_and_kept_up_to_date() {
    // A DATETIME(6) cursor: positions are microseconds, so these unique times work.
    copy_follow_and_resume(mariadb(), "my_orders", "placed_at").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_timestamps_are_all_copied_at_least_once() {
    // 100 rows per timestamp, pages of 64 rows: runs of equal values cross every page boundary.
    let w = common::warehouse().await;
    let db = postgres();
    let name = "pg_ties";
    db.server.create_database(name);
    db.server.sql(
        name,
        "CREATE TABLE orders (id bigint, customer text, amount numeric(12,2), placed_at timestamptz, note text);
         INSERT INTO orders SELECT g, 'c', 1, timestamptz '2026-01-01 00:00:00+00' + (g / 100) * interval '1 second', 'n'
         FROM generate_series(1, 10000) g;",
    );
    let source = source_yaml(db.kind, &db.server.dsn(name), "placed_at", false)
        .replace("page_rows: 7000", "page_rows: 64");
    let f = fixture(&w, name, &source, "at_least_once").await;
    let out = run_command(&f).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stats(&w, &f).await, expected(10_000));

    // exactly_once cannot tell rows with the same cursor value apart: it stops and says why.
    let f = fixture(&w, "pg_ties_eo", &source, "exactly_once").await;
    let out = run_command(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cursor column `placed_at` is not unique"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_source_copies_its_rows() {
    let w = common::warehouse().await;
    let db = mariadb();
    let name = "my_query";
    let dsn = source_database(&db, name, 5000);
    let source = format!(
        "      mysql:
        dsn: {dsn}
        query: SELECT id, customer, amount, placed_at, note FROM orders WHERE id % 2 = 0;
        cursor: id
        follow: false"
    );
    let f = fixture(&w, name, &source, "exactly_once").await;
    let out = run_command(&f).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stats(&w, &f).await, (2500, 2500, 2 * 2500 * 2501 / 2));
}

fn validate(f: &Fixture) -> String {
    let out = common::aurora_command()
        .args(["--url", &common::url(), "pipeline", "validate"])
        .arg(&f.pipeline)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.success(), text.contains("ok: "), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_reaches_the_databases_and_names_bad_cursors() {
    let w = common::warehouse().await;
    let pg_dsn = source_database(&postgres(), "pg_validate", 10);
    let my_dsn = source_database(&mariadb(), "my_validate", 10);
    let closed = common::closed_port_url().replace("http://", "");
    let cases = [
        ("pg_validate_ok", "postgres", pg_dsn.clone(), "id", "ok: pg_validate_ok"),
        ("my_validate_ok", "mysql", my_dsn.clone(), "placed_at", "ok: my_validate_ok"),
        ("pg_validate_col", "postgres", pg_dsn.clone(), "idd", "column q.idd does not exist"),
        (
            "my_validate_col",
            "mysql",
            my_dsn.clone(),
            "placd_at",
            "no cursor column `placd_at` (they have id, customer, amount, placed_at, note); did you mean `placed_at`?",
        ),
        (
            "pg_validate_type",
            "postgres",
            pg_dsn,
            "customer",
            "has type text; use an integer, timestamp or date column",
        ),
        // A server that is not there, and a database that does not exist.
        (
            "pg_validate_gone",
            "postgres",
            format!("postgres://aurora@{closed}/x"),
            "id",
            "cannot connect to postgres://aurora@",
        ),
        (
            "my_validate_db",
            "mysql",
            my_dsn.replace("my_validate", "no_such_db"),
            "id",
            "Unknown database 'no_such_db'",
        ),
    ];
    for (name, kind, dsn, cursor, expected) in cases {
        let f = fixture(
            &w,
            name,
            &source_yaml(kind, &dsn, cursor, false),
            "exactly_once",
        )
        .await;
        let text = validate(&f);
        assert!(text.contains(expected), "{name}: {text}");
    }
}

/// TLS to the database with its certificate verified against the private CA in `ca_file`:
/// a user the server admits only over TLS, and one it admits only with a client certificate,
/// each copy the table. Without `ca_file` the certificate is untrusted and the source fails at
/// once saying so; with `mode: disable` the server itself turns the TLS-only user away.
async fn copies_over_tls(db: Db, name: &str) {
    let w = common::warehouse().await;
    let server = db.server;
    server.create_tls_users();
    source_database(&db, name, 1000);
    let tls = &server.tls;
    let ca = tls.join("ca.pem");
    let source = |user: &str, tls_yaml: &str| {
        format!(
            "{}\n        tls: {tls_yaml}",
            source_yaml(db.kind, &server.dsn_as(user, name), "id", false)
        )
    };
    let verified = format!("{{ca_file: {}}}", ca.display());
    let with_client = format!(
        "{{ca_file: {}, client_cert_file: {}, client_key_file: {}}}",
        ca.display(),
        tls.join("client.pem").display(),
        tls.join("client.key").display()
    );
    for (suffix, user, tls_yaml) in [
        ("tls", sqldb::TLS_ONLY_USER, &verified),
        ("cert", sqldb::TLS_CERT_USER, &with_client),
    ] {
        let f = fixture(
            &w,
            &format!("{name}_{suffix}"),
            &source(user, tls_yaml),
            "exactly_once",
        )
        .await;
        let out = run_command(&f).output().unwrap();
        assert!(
            out.status.success(),
            "{suffix}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stats(&w, &f).await, expected(1000), "{suffix}");
    }
    // The system's roots do not know the private CA: refused, with what to set.
    let f = fixture(
        &w,
        &format!("{name}_untrusted"),
        &source(sqldb::TLS_ONLY_USER, "{mode: require}"),
        "exactly_once",
    )
    .await;
    let text = validate(&f);
    assert!(
        text.contains("certificate is not trusted: set `tls.ca_file`"),
        "{text}"
    );
    let out = run_command(&f).output().unwrap();
    assert!(!out.status.success());
    // The server admits this user only over TLS.
    let f = fixture(
        &w,
        &format!("{name}_plain"),
        &source(sqldb::TLS_ONLY_USER, "{mode: disable}"),
        "exactly_once",
    )
    .await;
    let text = validate(&f);
    let refusal = match server.engine {
        sqldb::SqlEngine::Postgres => "no encryption",
        sqldb::SqlEngine::MariaDb => "Access denied for user 'tls_only'",
    };
    assert!(text.contains(refusal), "{text}");
    // A client certificate without its key is a setting error, said before connecting.
    let half = format!(
        "{{ca_file: {}, client_cert_file: {}}}",
        ca.display(),
        tls.join("client.pem").display()
    );
    let f = fixture(
        &w,
        &format!("{name}_half"),
        &source(sqldb::TLS_CERT_USER, &half),
        "exactly_once",
    )
    .await;
    let text = validate(&f);
    assert!(
        text.contains("`tls.client_cert_file` and `tls.client_key_file` go together"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_tls_with_verified_certificates() {
    copies_over_tls(postgres(), "pg_tls").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_over_tls_with_verified_certificates() {
    copies_over_tls(mariadb(), "my_tls").await;
}

/// The shipped PostgreSQL and MySQL templates run as written, with only the DSN changed.
#[tokio::test(flavor = "multi_thread")]
async fn the_sql_templates_run_as_written() {
    let w = common::warehouse().await;
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/pipelines");
    for (db, file, template_dsn, table) in [
        (
            postgres(),
            "postgres-table.yaml",
            "postgres://aurora@localhost:5432/shop",
            "pg_orders",
        ),
        (
            mariadb(),
            "mysql-table.yaml",
            "mysql://aurora@localhost:3306/shop",
            "mysql_orders",
        ),
    ] {
        let name = format!("tpl_{table}");
        db.server.create_database(&name);
        db.server.sql(
            &name,
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer varchar(40), total decimal(12,2), \
             status varchar(10), created_at timestamp);
             INSERT INTO orders VALUES (1, 'Ann', 12.50, 'paid', '2026-03-01 10:00:00'),
               (2, 'Bob', 7.25, NULL, '2026-03-01 11:30:00'), (3, 'Cy', 1.00, 'new', NULL);",
        );
        let text = std::fs::read_to_string(templates.join(file)).unwrap();
        assert!(text.contains(template_dsn), "{file} changed its DSN");
        let dir = common::fresh_data_dir(&name);
        let pipeline = dir.join(file);
        std::fs::write(&pipeline, text.replace(template_dsn, &db.server.dsn(&name))).unwrap();
        let f = Fixture {
            dir,
            pipeline,
            ch_db: "shop".into(),
        };
        let child = spawn(&f);
        let rows = format!("SELECT count() FROM shop.{table}");
        let rejected = format!("SELECT count() FROM shop.{table}_rejected");
        let started = Instant::now();
        while common::count(&w, &rows).await + common::count(&w, &rejected).await < 3 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{file}: rows did not arrive"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        terminate(&f, child);
        assert_eq!(
            common::scalar(
                &w,
                &format!(
                    "SELECT concat(toString(groupArray(customer)), toString(groupArray(status)), toString(sum(total)), toString(toUInt32(max(created_at)))) \
                     FROM (SELECT * FROM shop.{table} ORDER BY id)"
                )
            )
            .await,
            "['Ann','Bob']['paid','new']19.751772364600",
            "{file}"
        );
        // The row without a time cannot be stored (DateTime is not Nullable): dead-lettered.
        let error = common::scalar(&w, &format!("SELECT error FROM shop.{table}_rejected")).await;
        assert!(error.contains("created_at"), "{file}: {error}");
    }
}
