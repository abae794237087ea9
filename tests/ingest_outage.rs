//! ClickHouse going away in the middle of a stream: the pipeline reports `retrying`, waits with
//! backoff, and once the server is back stores everything exactly once.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use aurora::warehouse::local_server::LocalServerOptions;
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse};

#[tokio::test(flavor = "multi_thread")]
async fn clickhouse_outage_mid_stream_is_retried_and_nothing_is_lost() {
    // A server of its own, so stopping it does not disturb other tests.
    let dir = common::fresh_data_dir("outage");
    let mut opts = LocalServerOptions::new(dir.join("ch"));
    opts.startup_timeout = Duration::from_secs(60);
    let server = common::start_bound_server(opts.clone());
    let url = server.url();
    let w = Warehouse::connect(ConnectionSettings::new(&url))
        .await
        .unwrap();

    std::fs::create_dir_all(dir.join("data")).unwrap();
    let rows = 60_000u64;
    let mut csv = String::from("id\n");
    for id in 0..rows {
        csv.push_str(&format!("{id}\n"));
    }
    std::fs::write(dir.join("data/ids.csv"), csv).unwrap();
    std::fs::write(
        dir.join("pipeline.yaml"),
        "pipelines:
  - name: outage
    source: {csv: {path: data/ids.csv}}
    mapping: {columns: {id: {type: UInt64}}}
    sink:
      table: outage.ids
      create: if_missing
      order_by: [id]
      batch: {max_rows: 1000, max_wait: 50ms}
    retry: {initial_backoff: 100ms, max_backoff: 1s}
",
    )
    .unwrap();
    let child = common::aurora_command()
        .args(["--url", &url, "pipeline", "run"])
        .arg(dir.join("pipeline.yaml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait for the stream to be under way, then take the server down hard.
    for _ in 0..600 {
        if common::count(&w, "SELECT count() FROM outage.ids").await >= 5_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = server.state.pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Back on the same ports: the config Aurora wrote names them.
    let config = opts.data_dir.join("etc/config.xml");
    let binary = aurora::warehouse::local_server::find_binary(None).unwrap();
    let mut cmd = match &binary {
        aurora::warehouse::local_server::ServerBinary::Single(p) => {
            let mut c = Command::new(p);
            c.arg("server");
            c
        }
        aurora::warehouse::local_server::ServerBinary::Dedicated(p) => Command::new(p),
    };
    let mut restarted = cmd
        .arg(format!("--config-file={}", config.display()))
        .current_dir(&opts.data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("retrying in"),
        "the outage was never noticed:\n{stderr}"
    );
    let stats = w
        .query(
            "SELECT count(), uniqExact(id), sum(id) FROM outage.ids",
            &QueryOptions::default(),
        )
        .await
        .unwrap();
    let texts: Vec<String> = stats.rows[0].iter().map(|v| v.to_string()).collect();
    assert_eq!(
        texts,
        [
            rows.to_string(),
            rows.to_string(),
            (rows * (rows - 1) / 2).to_string()
        ]
    );
    let _ = restarted.kill();
    let _ = restarted.wait();
}
