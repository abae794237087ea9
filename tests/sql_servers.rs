//! The PostgreSQL and MariaDB servers of the test harness start, accept multi-statement scripts
//! through their clients and hold a realistic amount of data.
mod common;

use common::sqldb;

#[test]
fn postgres_holds_100k_rows() {
    let pg = sqldb::postgres();
    pg.create_database("harness_pg");
    let count = pg.sql(
        "harness_pg",
        "CREATE TABLE events (id bigint PRIMARY KEY, name text NOT NULL, at timestamptz);
         INSERT INTO events
             SELECT g, 'event ' || g, now() - g * interval '1 second'
             FROM generate_series(1, 100000) AS g;
         SELECT count(*) FROM events;",
    );
    assert_eq!(count, "100000");
    assert_eq!(
        pg.dsn("harness_pg"),
        format!("postgres://aurora@127.0.0.1:{}/harness_pg", pg.port)
    );
}

#[test]
fn mariadb_holds_100k_rows() {
    let db = sqldb::mariadb();
    db.create_database("harness_my");
    let count = db.sql(
        "harness_my",
        "CREATE TABLE events (id bigint PRIMARY KEY, name varchar(64) NOT NULL, at datetime);
         INSERT INTO events
             WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 100000)
             SELECT n, concat('event ', n), now() - INTERVAL n SECOND FROM g;
         SELECT count(*) FROM events;",
    );
    assert_eq!(count, "100000");
    assert_eq!(
        db.dsn("harness_my"),
        format!("mysql://root@127.0.0.1:{}/harness_my", db.port)
    );
}

#[test]
fn a_failing_script_reports_the_client_error() {
    for server in [sqldb::postgres(), sqldb::mariadb()] {
        server.create_database("harness_errors");
        let err = server
            .try_sql(
                "harness_errors",
                "SELECT 1;\nSELECT * FROM no_such_table;\nSELECT 2;",
            )
            .expect_err("the script must fail");
        assert!(err.contains("no_such_table"), "{err}");
    }
}
