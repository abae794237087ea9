//! `aurora serve` as an operator runs it: a real Prometheus server scrapes it and sees the
//! rows a pipeline wrote; the control API refuses requests without the token and pauses and
//! resumes a pipeline without losing a record; SIGHUP applies a good config and keeps the
//! running one when the new one is bad; a taken port and an open address without a token
//! are refused with the fix.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurora::warehouse::{QueryOptions, Warehouse};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A response's body as JSON (`Null` when it is not).
trait JsonBody {
    async fn json_body(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_body(self) -> serde_json::Value {
        let text = self.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or_default()
    }
}

/// A running `aurora serve`, its stderr collected; stopped with SIGTERM when dropped.
struct Daemon {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(config: &Path, data: &Path, state: &Path, port: u16, token: Option<&str>) -> Self {
        let mut cmd = common::aurora_command();
        cmd.env("AURORA_CONFIG", config)
            .env("XDG_DATA_HOME", data)
            .env_remove("AURORA_SERVE_TOKEN")
            .args(["--url", &common::url(), "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--state-dir")
            .arg(state)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("AURORA_SERVE_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("start aurora serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().expect("log");
                l.push_str(&line);
                l.push('\n');
            }
        });
        Self { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for /ready to say yes.
    async fn wait_ready(&mut self) {
        let client = common::http_client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("aurora serve exited with {status}:\n{}", self.log());
            }
            if let Ok(r) = client.get(self.url("/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "never ready:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM, then the exit status and everything it logged.
    fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Give the log reader a moment to take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.log());
            }
            assert!(Instant::now() < deadline, "did not stop:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A config with `pipelines` (YAML list items) reading CSV files in `dir` into `db`.
fn write_config(dir: &Path, db: &str, pipelines: &[&str]) -> PathBuf {
    let mut text = String::from("pipelines:\n");
    for name in pipelines {
        text.push_str(&format!(
            "  - name: {name}\n    source: {{csv: {{path: {name}.csv, follow: true, poll_interval: 100ms}}}}\n    \
             mapping: {{columns: {{n: {{type: UInt32}}}}}}\n    \
             sink: {{table: {db}.{name}, create: if_missing, order_by: [n], batch: {{max_wait: 100ms}}}}\n"
        ));
    }
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("write the config");
    path
}

fn write_rows(path: &Path, from: u32, to: u32, header: bool) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the CSV file");
    if header {
        writeln!(file, "n").expect("write");
    }
    for n in from..to {
        writeln!(file, "{n}").expect("write");
    }
}

async fn count(w: &Warehouse, table: &str) -> u64 {
    let r = w
        .query(
            &format!("SELECT count() FROM {table}"),
            &QueryOptions::default(),
        )
        .await;
    match r {
        Ok(r) => r.rows[0][0].to_string().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

async fn wait_count(w: &Warehouse, table: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = count(w, table).await;
        if n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{table} has {n} rows, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// POSTs to the daemon's `path`, with `token` when given.
async fn post(d: &Daemon, path: &str, token: Option<&str>) -> reqwest::Response {
    let request = common::http_client().post(d.url(path));
    let request = match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    };
    request.send().await.expect("a response")
}

async fn metrics_text(d: &Daemon) -> String {
    common::http_client()
        .get(d.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

async fn pipelines(d: &Daemon) -> serde_json::Value {
    common::http_client()
        .get(d.url("/api/v1/pipelines"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("the pipeline list")
        .json_body()
        .await
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list["pipelines"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["status"]["name"].as_str().expect("a name").to_string())
        .collect()
}

/// Prometheus' answer to an instant query, as (labels, value) pairs.
async fn prometheus_query(port: u16, query: &str) -> Vec<(serde_json::Value, f64)> {
    let Ok(response) = common::http_client()
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", query)])
        .send()
        .await
    else {
        return Vec::new();
    };
    let body = response.json_body().await;
    body["data"]["result"]
        .as_array()
        .map(|results| {
            results
                .iter()
                .map(|r| {
                    let value = r["value"][1]
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(f64::NAN);
                    (r["metric"].clone(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_the_daemon_and_sees_the_rows_a_pipeline_wrote() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "serve_prom").await;
    let dir = common::fresh_data_dir("serve-prom");
    write_rows(&dir.join("clicks.csv"), 0, 500, true);
    let config = write_config(&dir, &db, &["clicks"]);
    let port = common::free_port();
    let mut daemon = Daemon::start(&config, &dir, &dir.join("state"), port, Some(TOKEN));
    daemon.wait_ready().await;
    wait_count(&w, &format!("{db}.clicks"), 500).await;

    let prom_port = common::free_port();
    let prom_dir = dir.join("prometheus");
    std::fs::create_dir_all(&prom_dir).expect("a Prometheus directory");
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s}}\nscrape_configs:\n  - job_name: aurora\n    \
             static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        ),
    )
    .expect("write the Prometheus config");
    let mut prometheus = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            prom_dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            prom_dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Prometheus (scripts/setup --for-tests installs it)");

    // What Prometheus scraped matches what ClickHouse holds.
    let stored = count(&w, &format!("{db}.clicks")).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let scraped = loop {
        let r = prometheus_query(
            prom_port,
            "aurora_pipeline_rows_written_total{job=\"aurora\",pipeline=\"clicks\"}",
        )
        .await;
        if let Some((_, v)) = r.first() {
            if *v as u64 == stored {
                break *v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw {stored} rows: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(scraped as u64, 500);
    let up = prometheus_query(prom_port, "up{job=\"aurora\"}").await;
    assert_eq!(up.first().map(|(_, v)| *v), Some(1.0), "{up:?}");
    let running = prometheus_query(
        prom_port,
        "aurora_pipeline_state{pipeline=\"clicks\",state=\"running\"}",
    )
    .await;
    assert_eq!(running.first().map(|(_, v)| *v), Some(1.0), "{running:?}");
    let read = prometheus_query(prom_port, "aurora_pipeline_records_read_total").await;
    assert_eq!(read.first().map(|(_, v)| *v), Some(500.0), "{read:?}");
    let _ = prometheus.kill();
    let _ = prometheus.wait();

    // The exposition itself: OpenMetrics, with the process's own series.
    let response = common::http_client()
        .get(daemon.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/openmetrics-text")));
    let text = response.text().await.expect("text");
    for series in [
        "aurora_build_info{version=",
        "process_resident_memory_bytes ",
        "aurora_pipeline_batch_duration_seconds_bucket{",
        "aurora_pipeline_last_success_timestamp_seconds{pipeline=\"clicks\"}",
        "aurora_config_last_reload_successful 1",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    assert!(
        !text.to_lowercase().contains("select"),
        "SQL text in a label:\n{text}"
    );

    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("draining pipelines"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_needs_the_token_and_pauses_and_resumes_without_losing_rows() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "serve_control").await;
    let dir = common::fresh_data_dir("serve-control");
    let csv = dir.join("orders.csv");
    write_rows(&csv, 0, 100, true);
    let config = write_config(&dir, &db, &["orders"]);
    let mut daemon = Daemon::start(
        &config,
        &dir,
        &dir.join("state"),
        common::free_port(),
        Some(TOKEN),
    );
    daemon.wait_ready().await;
    let table = format!("{db}.orders");
    wait_count(&w, &table, 100).await;
    let client = common::http_client();

    // No token, a wrong one: 401, and the refusal is logged with where it came from.
    let r = post(&daemon, "/api/v1/pipelines/orders/pause", None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = post(
        &daemon,
        "/api/v1/pipelines/orders/pause",
        Some("not-the-token-at-all"),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.expect("text").contains("wrong token"));
    let r = client
        .get(daemon.url("/api/v1/pipelines"))
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), 401);
    // The metrics and health need none.
    let r = client
        .get(daemon.url("/health"))
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), 200);

    // Paused: rows appended meanwhile wait in the file; resumed: every one arrives once.
    let r = post(&daemon, "/api/v1/pipelines/orders/pause", Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    let body = r.json_body().await;
    assert_eq!(body["pipeline"]["paused"], true, "{body}");
    let list = pipelines(&daemon).await;
    assert_eq!(list["pipelines"][0]["paused"], true, "{list}");
    write_rows(&csv, 100, 150, false);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(count(&w, &table).await, 100, "a paused pipeline wrote");
    let r = post(&daemon, "/api/v1/pipelines/orders/resume", Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    wait_count(&w, &table, 150).await;
    let r = post(&daemon, "/api/v1/pipelines/orders/restart", Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    write_rows(&csv, 150, 160, false);
    wait_count(&w, &table, 160).await;
    let distinct = w
        .query(
            &format!("SELECT uniqExact(n) FROM {table}"),
            &QueryOptions::default(),
        )
        .await
        .expect("distinct");
    assert_eq!(distinct.rows[0][0].to_string(), "160");

    // Unknown pipeline or action: 404 with what there is.
    let r = post(&daemon, "/api/v1/pipelines/nope/pause", Some(TOKEN)).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("text").contains("there are: orders"));
    let r = post(&daemon, "/api/v1/pipelines/orders/explode", Some(TOKEN)).await;
    assert_eq!(r.status(), 404);

    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("control request refused: no bearer token"),
        "{log}"
    );
    assert!(
        log.contains("control request refused: a wrong token"),
        "{log}"
    );
    assert!(log.contains("remote=127.0.0.1"), "{log}");
    assert!(log.contains("path=/api/v1/pipelines/orders/pause"), "{log}");
    assert!(!log.contains(TOKEN), "the token was logged:\n{log}");
    assert!(!log.contains("not-the-token-at-all"), "{log}");
}

/// With roles, each caller of the control API acts as its own user: a client bound to a role
/// that may only view lists the pipelines but is refused a pause (403, the rule named, the
/// denial recorded as that client's), while the daemon's own user, an admin, pauses.
#[tokio::test(flavor = "multi_thread")]
async fn the_control_api_gives_each_client_only_what_its_role_allows() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "serve_rbac").await;
    let dir = common::fresh_data_dir("serve-rbac");
    write_rows(&dir.join("orders.csv"), 0, 10, true);
    let config = write_config(&dir, &db, &["orders"]);
    let viewer_token = "viewer-token-0123456789abcdef";
    std::fs::write(dir.join("viewer.token"), format!("{viewer_token}\n")).unwrap();
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "serve:\n  clients:\n    dash-bot: {{token_file: viewer.token, groups: [watchers]}}\n\
         rbac:\n  roles:\n    watcher: {{actions: [pipeline.view]}}\n    admin: {{actions: [\"*\"], databases: [\"*\"]}}\n  \
         bindings:\n    - {{group: watchers, roles: [watcher]}}\n    - {{user: {me}, roles: [admin]}}\n"
    ));
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(
        &config,
        &dir,
        &dir.join("state"),
        common::free_port(),
        Some(TOKEN),
    );
    daemon.wait_ready().await;
    let client = common::http_client();

    let r = client
        .get(daemon.url("/api/v1/pipelines"))
        .bearer_auth(viewer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(names(&r.json_body().await), ["orders"]);
    let r = post(
        &daemon,
        "/api/v1/pipelines/orders/pause",
        Some(viewer_token),
    )
    .await;
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("`pipeline.control` is not an action of dash-bot"),
        "{body}"
    );
    assert!(body.contains("watcher"), "{body}");
    let r = client
        .get(daemon.url("/api/v1/alerts"))
        .bearer_auth(viewer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "alerts need alert.view");
    assert_eq!(pipelines(&daemon).await["pipelines"][0]["paused"], false);

    let r = post(&daemon, "/api/v1/pipelines/orders/pause", Some(TOKEN)).await;
    assert_eq!(r.status(), 200);
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(viewer_token), "a token was logged:\n{log}");

    let records: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.join("aurora/audit/audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let denied = records
        .iter()
        .find(|r| r["outcome"] == "denied" && r["action"] == "pipeline.control")
        .unwrap_or_else(|| panic!("no denial recorded: {records:#?}"));
    assert_eq!(denied["actor"]["user"], "dash-bot");
    assert_eq!(denied["actor"]["via"], "token");
    assert_eq!(denied["resource"], "orders");
    let paused = records
        .iter()
        .find(|r| r["action"] == "pipeline.pause")
        .expect("the admin's pause is recorded");
    assert_eq!(paused["actor"]["user"], me.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_good_config_and_keeps_the_running_one_on_a_bad_one() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "serve_reload").await;
    let dir = common::fresh_data_dir("serve-reload");
    write_rows(&dir.join("a.csv"), 0, 10, true);
    write_rows(&dir.join("b.csv"), 0, 20, true);
    let config = write_config(&dir, &db, &["a"]);
    let mut daemon = Daemon::start(
        &config,
        &dir,
        &dir.join("state"),
        common::free_port(),
        Some(TOKEN),
    );
    daemon.wait_ready().await;
    assert_eq!(names(&pipelines(&daemon).await), ["a"]);

    // A good new config: pipeline b starts, a keeps running untouched.
    write_config(&dir, &db, &["a", "b"]);
    daemon.signal("HUP");
    wait_count(&w, &format!("{db}.b"), 20).await;
    assert_eq!(names(&pipelines(&daemon).await), ["a", "b"]);

    // A bad one: reported, every problem with its place, and nothing changes.
    std::fs::write(
        &config,
        "pipelines:\n  - name: a\n    source: {csv: {path: a.csv}}\n    sink: {tabel: x}\n",
    )
    .expect("write");
    daemon.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !daemon.log().contains("the running one is kept") {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        daemon.log().contains("did you mean `table`"),
        "{}",
        daemon.log()
    );
    assert_eq!(names(&pipelines(&daemon).await), ["a", "b"]);
    let metrics = metrics_text(&daemon).await;
    assert!(
        metrics.contains("aurora_config_last_reload_successful 0"),
        "{metrics}"
    );

    // b removed: it stops and its series go.
    write_config(&dir, &db, &["a"]);
    daemon.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while names(&pipelines(&daemon).await) != ["a"] {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = metrics_text(&daemon).await;
    assert!(!metrics.contains("pipeline=\"b\""), "{metrics}");
    assert!(
        metrics.contains("aurora_config_last_reload_successful 1"),
        "{metrics}"
    );
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("reloaded: added b"), "{log}");
    assert!(log.contains("removed b"), "{log}");
}

#[test]
fn a_taken_port_and_an_open_address_without_a_token_are_refused_with_the_fix() {
    let dir = common::fresh_data_dir("serve-refused");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("address").port();
    let o = common::aurora_command()
        .env("XDG_DATA_HOME", &dir)
        .env_remove("AURORA_SERVE_TOKEN")
        .args(["--url", &common::url(), "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("run aurora serve");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("already in use"), "{stderr}");

    let o = common::aurora_command()
        .env("XDG_DATA_HOME", &dir)
        .env_remove("AURORA_SERVE_TOKEN")
        .args(["--url", &common::url(), "serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("run aurora serve");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("AURORA_SERVE_TOKEN"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_https_the_workspace_client_lists_and_controls_the_pipelines() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "serve_tls").await;
    let dir = common::fresh_data_dir("serve-tls");
    // A self-signed certificate for 127.0.0.1, as one machine's daemon would have.
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl (scripts/setup installs it)");
    assert!(status.success());
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).expect("write the token");
    write_rows(&dir.join("events.csv"), 0, 30, true);
    let config = write_config(&dir, &db, &["events"]);
    let port = common::free_port();
    let mut text = std::fs::read_to_string(&config).expect("the config");
    text.push_str(&format!(
        "serve:\n  listen: 127.0.0.1:{port}\n  token_file: token\n  tls: {{cert_file: cert.pem, key_file: key.pem}}\n"
    ));
    std::fs::write(&config, text).expect("write the config");
    let daemon = Daemon::start(&config, &dir, &dir.join("state"), port, None);
    wait_count(&w, &format!("{db}.events"), 30).await;

    // The client the workspace uses, from the same config: HTTPS, the certificate trusted,
    // the token from the file.
    let loaded = aurora::config::load(Some(&config)).expect("the config loads");
    let client =
        aurora::serve::client::DaemonClient::for_config(&loaded.config.serve).expect("a client");
    assert_eq!(client.url(), format!("https://127.0.0.1:{port}"));
    client.probe().await.expect("the daemon answers over HTTPS");
    let list = client.pipelines().await.expect("the pipelines");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status.name, "events");
    let paused = client
        .control("events", aurora::ingest::supervisor::PipelineControl::Pause)
        .await
        .expect("paused");
    assert!(paused.paused);

    // Plain HTTP on the same port gets no answer.
    let plain = common::http_client()
        .get(daemon.url("/health"))
        .send()
        .await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
    let (code, log) = daemon.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!("listening on https://127.0.0.1:{port}")),
        "{log}"
    );
}
