//! Test harness: one real private ClickHouse server per test binary, started through Aurora's
//! own server manager in a fresh data directory. The server is tied to a thread that lives as
//! long as the test process, so the kernel stops it (SIGTERM) when the tests are done.
#![allow(dead_code)]

pub mod certs;
pub mod cluster;
pub mod current;
pub mod oidc;
pub mod sqldb;
pub mod syslog;
pub mod tansu;

use std::path::PathBuf;
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use aurora::warehouse::local_server::{ensure_running, LocalServer, LocalServerOptions};
use aurora::warehouse::{ConnectionSettings, Warehouse};

static SERVER: OnceLock<LocalServer> = OnceLock::new();

/// A data directory that outlives the test (the server writes to it until the process ends).
/// Those of earlier runs (untouched for 12 hours, longer than any run takes) are removed on
/// the first call, so repeated `make test` runs do not fill the disk.
pub fn fresh_data_dir(label: &str) -> PathBuf {
    static PRUNED: OnceLock<()> = OnceLock::new();
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clickhouse");
    std::fs::create_dir_all(&base).expect("create test data base dir");
    PRUNED.get_or_init(|| prune_older_than(&base, Duration::from_secs(12 * 3600)));
    tempfile::Builder::new()
        .prefix(&format!("{label}-"))
        .tempdir_in(base)
        .expect("create test data dir")
        .keep()
}

/// Removes the entries of `dir` not modified for `age`.
fn prune_older_than(dir: &std::path::Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed > age);
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts a server whose lifetime is bound to the test process.
pub fn start_bound_server(opts: LocalServerOptions) -> LocalServer {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut opts = opts;
        opts.die_with_parent = true;
        let _ = tx.send(ensure_running(&opts));
        // PR_SET_PDEATHSIG fires when this thread ends: keep it alive with the process.
        loop {
            std::thread::park();
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => panic!("cannot start the test ClickHouse server: {e}"),
        Err(e) => panic!("the test ClickHouse server did not start: {e}"),
    }
}

/// The shared server of this test binary.
pub fn server() -> &'static LocalServer {
    SERVER.get_or_init(|| {
        let mut opts = LocalServerOptions::new(fresh_data_dir("shared"));
        opts.startup_timeout = Duration::from_secs(60);
        start_bound_server(opts)
    })
}

pub fn url() -> String {
    server().url()
}

pub async fn warehouse() -> Warehouse {
    Warehouse::connect(ConnectionSettings::new(url()))
        .await
        .expect("connect to the test server")
}

/// A database name unique to one test, so tests running in parallel never collide.
pub async fn scratch_database(warehouse: &Warehouse, name: &str) -> String {
    let db = format!("t_{name}");
    warehouse
        .execute(&format!("DROP DATABASE IF EXISTS {db}"))
        .await
        .expect("drop scratch db");
    warehouse
        .execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create scratch db");
    db
}

/// A loopback URL on which nothing listens (the port was free a moment ago).
pub fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port();
    format!("http://127.0.0.1:{port}")
}

/// The `aurora` binary, isolated from the developer's own config and environment: no
/// `AURORA_*` variables, an empty config file (built-in defaults), no colours.
pub fn aurora_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_aurora"));
    for var in [
        "AURORA_CONFIG",
        "AURORA_CLICKHOUSE_URL",
        "AURORA_CLICKHOUSE_USER",
        "AURORA_CLICKHOUSE_PASSWORD",
        "AURORA_CLICKHOUSE_DATABASE",
        "AURORA_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AURORA_CONFIG", empty_config())
        .env("NO_COLOR", "1");
    cmd
}

/// An empty config file, so a test runs on the built-in defaults.
pub fn empty_config() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("empty-config.yaml");
    if !path.exists() {
        std::fs::write(&path, "").expect("write empty config");
    }
    path
}

/// The `.yaml` files of a fixture directory, sorted, by relative path (so goldens hold the
/// file names exactly as a user would type them); panics when there are none.
pub fn yaml_fixtures(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("read a fixture entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// The first cell of a query's result as text; panics on a query error.
pub async fn scalar(warehouse: &Warehouse, sql: &str) -> String {
    let r = warehouse
        .query(sql, &aurora::warehouse::QueryOptions::unrestricted())
        .await
        .expect("scalar query");
    r.rows[0][0].to_string()
}

/// A count from `sql`, or 0 while the query fails (e.g. the table does not exist yet).
pub async fn count(warehouse: &Warehouse, sql: &str) -> u64 {
    warehouse
        .query(sql, &aurora::warehouse::QueryOptions::default())
        .await
        .map(|r| r.rows[0][0].to_string().parse().unwrap_or(0))
        .unwrap_or(0)
}

/// The default model as `scripts/setup` installs it (the same place `tests/models.rs` checks).
pub fn default_model_path() -> PathBuf {
    let file = &aurora::assistant::catalog::catalog()
        .expect("the model catalog")
        .default_entry()
        .file;
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".local/share")
        });
    let path = data.join("aurora/models").join(file);
    assert!(
        path.is_file(),
        "{} is missing; run scripts/setup",
        path.display()
    );
    path
}

/// A free loopback port (bound, then released for the process under test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// A UDP port on loopback that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// An HTTP client for the tests' own requests (reqwest is built without a TLS provider of
/// its own: ring, as in Aurora).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// Spawns `cmd` (output discarded) and SIGKILLs it as soon as `reached` says so, so the kill
/// lands wherever the process happens to be. Returns whether it was still running then.
pub async fn run_and_kill_when<F, Fut>(cmd: &mut std::process::Command, mut reached: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn aurora");
    loop {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        if reached().await {
            let _ = child.kill();
            let _ = child.wait();
            return true;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// A query's body over plain HTTP/1.0 from a loopback port (harnesses run before any async
/// runtime).
pub fn http_query(port: u16, sql: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default())
}

/// `values` as records of one CSV stream (offsets 0, 1, …), prepared by `sink` as a pipeline
/// would prepare them.
pub fn prepared(
    sink: &aurora::ingest::sinks::clickhouse::ClickHouseSink,
    values: impl IntoIterator<Item = serde_json::Value>,
) -> Vec<aurora::ingest::sinks::clickhouse::PreparedRecord> {
    let preparer = sink.preparer();
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            preparer.prepare(aurora::ingest::record::SourceRecord {
                source_id: std::sync::Arc::from("csv:x.csv#0"),
                offset: i as u64,
                raw: v.to_string(),
                payload: Ok(v.into()),
            })
        })
        .collect()
}
