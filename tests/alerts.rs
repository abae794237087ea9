//! Alert rules in `aurora serve`, with real receivers on loopback: a real Alertmanager
//! (Debian's `prometheus-alertmanager`) takes the alerts of the `alertmanager` notifier and
//! delivers them to a webhook receiver, whose payload has the same shape as the one Aurora's
//! own `webhook` notifier sends; Slack and PagerDuty payloads reach local receivers (trigger
//! and resolve by fingerprint); email reaches a real SMTP server (aiosmtpd, from PyPI); a
//! notifier that is down is retried, counted and logged while the daemon keeps running; bad
//! rules are refused, located, before anything starts; `aurora alert test` shows what would
//! be sent.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use axum::Router;

const TOKEN: &str = "alerts-test-token-0123456789";

/// What a local receiver was sent: (path, JSON body).
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// An HTTP receiver on loopback that keeps every JSON body POSTed to `/NAME`.
async fn receiver() -> (u16, Received) {
    let received: Received = Arc::default();
    let app = Router::new()
        .route(
            "/{name}",
            post(
                |State(r): State<Received>, UrlPath(name): UrlPath<String>, body: String| async move {
                    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                    r.lock().expect("received").push((name, json));
                    "ok"
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, received)
}

fn bodies(r: &Received, name: &str) -> Vec<serde_json::Value> {
    r.lock()
        .expect("received")
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, b)| b.clone())
        .collect()
}

async fn wait_until(what: &str, log: &Arc<Mutex<String>>, found: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !found() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; the daemon's log:\n{}",
            log.lock().expect("log")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Running {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path, dir: &Path, port: u16, env: &[(&str, &str)]) -> Running {
    let mut cmd = common::aurora_command();
    cmd.env("AURORA_CONFIG", config)
        .env("XDG_DATA_HOME", dir)
        .env("AURORA_SERVE_TOKEN", TOKEN)
        .args(["--url", &common::url(), "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start aurora serve");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = sink.lock().expect("log");
            l.push_str(&line);
            l.push('\n');
        }
    });
    Running { child, log }
}

fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_reach_a_real_alertmanager_and_every_notifier_fires_then_resolves() {
    let w = common::warehouse().await;
    let db = common::scratch_database(&w, "alerts_flow").await;
    w.execute(&format!(
        "CREATE TABLE {db}.flags (t UInt32, on UInt8) ENGINE = MergeTree ORDER BY t"
    ))
    .await
    .expect("create the table");
    let dir = common::fresh_data_dir("alerts-flow");
    let (rport, received) = receiver().await;

    // A real Alertmanager that routes everything to the receiver's /am at once.
    let am_port = common::free_port();
    std::fs::write(
        dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:{rport}/am\n        send_resolved: true\n"
        ),
    )
    .expect("write the Alertmanager config");
    let mut alertmanager = Command::new("prometheus-alertmanager")
        .arg(format!(
            "--config.file={}",
            dir.join("alertmanager.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start Alertmanager (scripts/setup --for-tests installs it)");

    std::fs::write(
        dir.join("slack.url"),
        format!("http://127.0.0.1:{rport}/slack\n"),
    )
    .expect("write the Slack URL");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "alerts:\n  rules:\n    - name: flag_on\n      query: SELECT argMax(on, t) AS value FROM {db}.flags\n      \
             condition: '> 0'\n      interval: 1s\n      labels: {{severity: critical}}\n      \
             summary: 'the flag is {{{{ value }}}}'\n  notifiers:\n    \
             am: {{alertmanager: {{url: 'http://127.0.0.1:{am_port}'}}}}\n    \
             hook: {{webhook: {{url: 'http://127.0.0.1:{rport}/hook'}}}}\n    \
             chat: {{slack: {{url_file: slack.url}}}}\n    \
             pager: {{pagerduty: {{routing_key_env: TEST_PD_KEY, url: 'http://127.0.0.1:{rport}/pd'}}}}\n"
        ),
    )
    .expect("write the config");
    let port = common::free_port();
    let daemon = serve(
        &config,
        &dir,
        port,
        &[("TEST_PD_KEY", "pd-routing-key-1234")],
    );
    let log = daemon.log.clone();

    // Nothing fires while the flag is off.
    w.execute(&format!("INSERT INTO {db}.flags VALUES (1, 0)"))
        .await
        .expect("insert");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(bodies(&received, "hook").is_empty(), "fired too early");

    w.execute(&format!("INSERT INTO {db}.flags VALUES (2, 1)"))
        .await
        .expect("insert");
    wait_until("the webhook notification", &log, || {
        !bodies(&received, "hook").is_empty()
    })
    .await;
    wait_until("Alertmanager's delivery", &log, || {
        !bodies(&received, "am").is_empty()
    })
    .await;
    wait_until("Slack and PagerDuty", &log, || {
        !bodies(&received, "slack").is_empty() && !bodies(&received, "pd").is_empty()
    })
    .await;

    let ours = &bodies(&received, "hook")[0];
    let theirs = &bodies(&received, "am")[0];
    // The same payload, as a receiver written for Alertmanager sees it.
    assert_eq!(keys(ours), keys(theirs), "ours: {ours}\ntheirs: {theirs}");
    assert_eq!(keys(&ours["alerts"][0]), keys(&theirs["alerts"][0]));
    assert_eq!(ours["version"], theirs["version"]);
    assert_eq!(ours["status"], "firing");
    assert_eq!(theirs["status"], "firing");
    assert_eq!(ours["alerts"][0]["labels"], theirs["alerts"][0]["labels"]);
    assert_eq!(theirs["alerts"][0]["labels"]["alertname"], "flag_on");
    assert_eq!(theirs["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(
        theirs["alerts"][0]["annotations"]["summary"],
        "the flag is 1"
    );
    let fingerprint = ours["alerts"][0]["fingerprint"]
        .as_str()
        .expect("a fingerprint")
        .to_string();

    let slack = &bodies(&received, "slack")[0];
    assert!(
        slack["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("*[FIRING:1] flag_on*") && t.contains("the flag is 1")),
        "{slack}"
    );
    let pd = &bodies(&received, "pd")[0];
    assert_eq!(pd["event_action"], "trigger", "{pd}");
    assert_eq!(pd["routing_key"], "pd-routing-key-1234");
    assert_eq!(pd["dedup_key"], fingerprint.as_str());
    assert_eq!(pd["payload"]["severity"], "critical");

    // The API and the metrics show it firing.
    let client = common::http_client();
    let alerts: serde_json::Value = serde_json::from_str(
        &client
            .get(format!("http://127.0.0.1:{port}/api/v1/alerts"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("alerts")
            .text()
            .await
            .expect("text"),
    )
    .expect("JSON");
    assert_eq!(alerts["alerts"][0]["state"], "firing", "{alerts}");
    assert_eq!(alerts["alerts"][0]["fingerprint"], fingerprint.as_str());

    // Off again: every notifier hears it resolved, PagerDuty by the same key.
    w.execute(&format!("INSERT INTO {db}.flags VALUES (3, 0)"))
        .await
        .expect("insert");
    wait_until("the resolved notifications", &log, || {
        bodies(&received, "hook")
            .iter()
            .any(|b| b["status"] == "resolved")
            && bodies(&received, "pd")
                .iter()
                .any(|b| b["event_action"] == "resolve")
            && bodies(&received, "am")
                .iter()
                .any(|b| b["status"] == "resolved")
    })
    .await;
    let resolve = bodies(&received, "pd")
        .into_iter()
        .find(|b| b["event_action"] == "resolve")
        .expect("a resolve event");
    assert_eq!(resolve["dedup_key"], fingerprint.as_str());
    let metrics = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("aurora_notifications_total{notifier=\"hook\",outcome=\"sent\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aurora_alerts_firing{rule=\"flag_on\"} 0"),
        "{metrics}"
    );
    let text = log.lock().expect("log").clone();
    assert!(text.contains("alert firing: the flag is 1"), "{text}");
    assert!(text.contains("alert resolved: the flag is 1"), "{text}");
    assert!(
        !text.contains("pd-routing-key-1234"),
        "a secret was logged:\n{text}"
    );
    assert!(!text.contains("/slack"), "a secret URL was logged:\n{text}");
    let _ = alertmanager.kill();
    let _ = alertmanager.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notifier_that_is_down_is_retried_counted_and_logged_and_the_daemon_keeps_running() {
    let dir = common::fresh_data_dir("alerts-down");
    let closed = common::free_port();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "alerts:\n  rules:\n    - name: always\n      query: SELECT 1 AS value\n      condition: '== 1'\n      interval: 1s\n  \
             notifiers:\n    gone: {{webhook: {{url: 'http://127.0.0.1:{closed}/nobody'}}}}\n"
        ),
    )
    .expect("write the config");
    let port = common::free_port();
    let daemon = serve(&config, &dir, port, &[]);
    let log = daemon.log.clone();
    let client = common::http_client();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = match client.get(&metrics_url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let failed = text
            .lines()
            .find(|l| {
                l.starts_with("aurora_notifications_total{notifier=\"gone\",outcome=\"failed\"}")
            })
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if failed >= 2.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed deliveries counted:\n{text}\n{}",
            log.lock().expect("log")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(log
        .lock()
        .expect("log")
        .contains("notification failed, retrying"));
    let health = client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn email_reaches_a_real_smtp_server() {
    let dir = common::fresh_data_dir("alerts-email");
    let smtp_port = common::free_port();
    let maildir = dir.join("mail");
    let mut smtp = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{smtp_port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd (scripts/setup --for-tests installs it)");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "alerts:\n  rules:\n    - name: mail_me\n      query: SELECT 7 AS value\n      condition: '> 5'\n      interval: 1s\n      \
             summary: 'seven is {{{{ value }}}}'\n  notifiers:\n    \
             mail: {{email: {{smtp: '127.0.0.1:{smtp_port}', tls: none, from: 'aurora@example.com', to: ['ops@example.com']}}}}\n"
        ),
    )
    .expect("write the config");
    let daemon = serve(&config, &dir, common::free_port(), &[]);
    let log = daemon.log.clone();
    wait_until("a message in the mailbox", &log, || {
        std::fs::read_dir(maildir.join("new")).is_ok_and(|d| d.count() > 0)
    })
    .await;
    let entry = std::fs::read_dir(maildir.join("new"))
        .expect("the mailbox")
        .next()
        .expect("a message")
        .expect("an entry");
    let message = std::fs::read_to_string(entry.path()).expect("the message");
    assert!(message.contains("Subject: [FIRING:1] mail_me"), "{message}");
    assert!(message.contains("seven is 7"), "{message}");
    assert!(message.contains("To: ops@example.com"), "{message}");
    let _ = smtp.kill();
    let _ = smtp.wait();
}

#[test]
fn bad_rules_and_notifiers_are_refused_located_before_anything_starts() {
    let dir = common::fresh_data_dir("alerts-bad");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "alerts:\n  rules:\n    - name: a\n      query: SELECT 1\n      condition: '>> 5'\n      notify: [pagr]\n  \
         notifiers:\n    pager: {pagerduty: {routing_key_env: X, routing_key_file: y}}\n",
    )
    .expect("write the config");
    let o = common::aurora_command()
        .env("AURORA_CONFIG", &config)
        .args(["--url", &common::url(), "serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("run aurora serve");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("config.yaml:5:18"), "{stderr}");
    assert!(stderr.contains("`>> 5` is not a condition"), "{stderr}");
    assert!(stderr.contains("no notifier named `pagr`"), "{stderr}");
    assert!(stderr.contains("did you mean `pager`?"), "{stderr}");
    assert!(
        stderr.contains("needs exactly one of routing_key_env or routing_key_file"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
    // `aurora config check` says the same.
    let o = common::aurora_command()
        .args(["config", "check"])
        .arg(&config)
        .output()
        .expect("run aurora config check");
    let stdout =
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("`>> 5` is not a condition"), "{stdout}");
}

#[test]
fn alert_test_evaluates_once_and_shows_what_each_notifier_would_get() {
    let dir = common::fresh_data_dir("alerts-test-cmd");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "alerts:\n  rules:\n    - name: shards\n      query: SELECT number AS shard, number * 10 AS value FROM system.numbers LIMIT 3\n      \
         condition: '>= 10'\n      for: 5m\n      summary: 'shard {{ labels.shard }} at {{ value }}'\n  \
         notifiers:\n    chat: {slack: {url_env: TEST_SLACK_URL}}\n",
    )
    .expect("write the config");
    let o = common::aurora_command()
        .env("AURORA_CONFIG", &config)
        .env("TEST_SLACK_URL", "https://hooks.example/secret-path")
        .args(["--url", &common::url(), "alert", "test", "shards"])
        .output()
        .expect("run aurora alert test");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("rule shards: 3 value(s)"), "{stdout}");
    assert!(stdout.contains("does not"), "{stdout}");
    assert!(
        stdout.contains("2 alert(s) would fire once the condition has held for 5m"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--- chat (POST $TEST_SLACK_URL)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shard 1 at 10") && stdout.contains("shard 2 at 20"),
        "{stdout}"
    );
    assert!(!stdout.contains("secret-path"), "{stdout}");
}
