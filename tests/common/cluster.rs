//! A real ClickHouse cluster on loopback for the cluster-sink tests: one ZooKeeper (Debian's
//! `zookeeper` package, installed by `scripts/setup --for-tests`) and two ClickHouse servers,
//! each started through Aurora's own server manager. The servers know two clusters:
//!
//! - `two_shards`: server 1 is shard 1, server 2 is shard 2 (one replica each);
//! - `one_shard`: a single shard whose two replicas are server 1 and server 2
//!   (`internal_replication`, for ReplicatedMergeTree).
//!
//! Macros: `{shard}` is 1 or 2 and `{replica}` is `r1` or `r2`. Everything is stopped by the
//! kernel when the test process ends.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use aurora::warehouse::local_server::{LocalServer, LocalServerOptions};

use super::{fresh_data_dir, start_bound_server};

const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

pub struct TestCluster {
    pub servers: Vec<LocalServer>,
    pub zookeeper_port: u16,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

/// The cluster of this test binary, started on first use.
pub fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        let zookeeper_port = start_bound_zookeeper();
        let servers: Vec<LocalServer> = (1..=2)
            .map(|n| {
                let dir = fresh_data_dir(&format!("cluster-{n}"));
                write_config_d(&dir, "aurora-test-node.xml", &node_xml(zookeeper_port, n));
                let mut opts = LocalServerOptions::new(dir);
                opts.startup_timeout = STARTUP_TIMEOUT;
                start_bound_server(opts)
            })
            .collect();
        // The clusters name the servers' TCP ports, known only now; ClickHouse reloads
        // `remote_servers` while it runs.
        let clusters = clusters_xml(&servers);
        for server in &servers {
            write_config_d(
                &server.state.data_dir,
                "aurora-test-clusters.xml",
                &clusters,
            );
        }
        for server in &servers {
            wait_for_clusters(server);
        }
        TestCluster {
            servers,
            zookeeper_port,
        }
    })
}

impl TestCluster {
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(LocalServer::url).collect()
    }
}

fn write_config_d(data_dir: &Path, name: &str, xml: &str) {
    let dir = data_dir.join("etc/config.d");
    std::fs::create_dir_all(&dir).expect("create config.d");
    // Written whole, then renamed, so the server never reloads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, xml).expect("write a config.d file");
    std::fs::rename(&tmp, dir.join(name)).expect("rename a config.d file");
}

/// What a server needs to be a replica: ZooKeeper, the distributed DDL queue, its macros and
/// a port the other replica fetches parts from.
fn node_xml(zookeeper_port: u16, n: usize) -> String {
    let interserver_port = super::free_port();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
    <zookeeper>
        <node><host>127.0.0.1</host><port>{zookeeper_port}</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
    <macros><shard>{n}</shard><replica>r{n}</replica></macros>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>{interserver_port}</interserver_http_port>
</yandex>
"#
    )
}

fn clusters_xml(servers: &[LocalServer]) -> String {
    let replica = |s: &LocalServer| {
        format!(
            "<replica><host>127.0.0.1</host><port>{}</port></replica>",
            s.state.tcp_port
        )
    };
    let shards: String = servers
        .iter()
        .map(|s| format!("<shard>{}</shard>", replica(s)))
        .collect();
    let replicas: String = servers.iter().map(replica).collect();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
    <remote_servers>
        <two_shards>{shards}</two_shards>
        <one_shard><shard><internal_replication>true</internal_replication>{replicas}</shard></one_shard>
    </remote_servers>
</yandex>
"#
    )
}

/// Waits until the server lists both clusters (its config reloader runs every few seconds).
fn wait_for_clusters(server: &LocalServer) {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let sql = "SELECT count() FROM system.clusters WHERE cluster IN ('two_shards', 'one_shard')";
    loop {
        let answer = super::http_query(server.state.http_port, sql).unwrap_or_default();
        if answer.trim() == "4" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server {} did not load the test clusters (system.clusters says {answer:?})",
            server.url()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Starts a standalone ZooKeeper on a free port, bound to the test process's lifetime.
fn start_bound_zookeeper() -> u16 {
    assert!(
        Path::new(ZOOKEEPER_JAR).is_file(),
        "{ZOOKEEPER_JAR} is missing: run `scripts/setup --for-tests` (Debian's zookeeper package)"
    );
    let port = super::free_port();
    let dir = fresh_data_dir("zookeeper");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let log = std::fs::File::create(dir.join("zookeeper.log")).expect("zookeeper log");
        let mut cmd = Command::new("java");
        cmd.args(["-Xmx256m", "-Dzookeeper.admin.enableServer=false"])
            .args(["-cp", &format!("/etc/zookeeper/conf:{ZOOKEEPER_JAR}")])
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(port.to_string())
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("zookeeper log"))
            .stderr(log);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let started = cmd.spawn().map_err(|e| format!("cannot start java: {e}"));
        let _ = tx.send(started.map(drop));
        // PR_SET_PDEATHSIG fires when this thread ends: keep it alive with the process.
        loop {
            std::thread::park();
        }
    });
    rx.recv_timeout(STARTUP_TIMEOUT)
        .expect("the ZooKeeper thread answers")
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "ZooKeeper did not listen on port {port} within {STARTUP_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    port
}
