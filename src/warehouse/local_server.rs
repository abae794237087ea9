//! The private ClickHouse server Aurora runs when no server URL is configured.
//!
//! It finds a ClickHouse binary, writes a minimal config into its own data directory, starts
//! the server on free loopback ports and records `pid` and ports in a state file, so a later
//! Aurora run reuses a live server instead of starting a second one. A `flock` on a lock file
//! serialises concurrent Aurora processes; the kernel drops it when a process dies, so a crash
//! never leaves a lock behind.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

const STATE_FILE: &str = "aurora-server.json";
const LOCK_FILE: &str = "aurora-server.lock";
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const LOG_TAIL_LINES: usize = 15;
const INSTALL_HINT: &str = "install one with `sudo apt-get install clickhouse-server` \
(Debian/Ubuntu), or put the official single `clickhouse` binary on PATH, or set \
`clickhouse.url` / AURORA_CLICKHOUSE_URL to use a server you already run";

#[derive(Debug, thiserror::Error)]
pub enum LocalServerError {
    #[error("no ClickHouse binary found (looked for {searched}); {INSTALL_HINT}")]
    BinaryNotFound { searched: String },
    #[error("the configured ClickHouse binary {path} does not exist or is not executable; {INSTALL_HINT}")]
    BadBinary { path: PathBuf },
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("the ClickHouse server exited during startup ({status}); last lines of its log ({log}):\n{tail}")]
    ExitedDuringStartup {
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("the ClickHouse server did not answer `SELECT 1` on {url} within {timeout:?}; last lines of its log ({log}):\n{tail}")]
    StartupTimeout {
        url: String,
        timeout: Duration,
        log: PathBuf,
        tail: String,
    },
    #[error("could not stop the ClickHouse server (pid {pid}): {reason}")]
    Stop { pid: i32, reason: String },
}

/// How Aurora should run its private server.
#[derive(Debug, Clone)]
pub struct LocalServerOptions {
    /// Explicit binary; `None` searches PATH and the Debian location.
    pub binary: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub startup_timeout: Duration,
    /// Ask the kernel to stop the server when the thread that started it exits (tests).
    pub die_with_parent: bool,
}

impl LocalServerOptions {
    pub fn new(data_dir: PathBuf) -> Self {
        // The server runs with the data directory as its working directory, and the paths in
        // its config must not depend on where Aurora was started: make them absolute.
        let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
        Self {
            binary: None,
            data_dir,
            startup_timeout: Duration::from_secs(30),
            die_with_parent: false,
        }
    }
}

/// The XDG data directory for the private server, e.g. `~/.local/share/aurora/clickhouse`.
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "aurora")
        .map(|dirs| dirs.data_dir().join("clickhouse"))
        .unwrap_or_else(|| std::env::temp_dir().join("aurora").join("clickhouse"))
}

/// A ClickHouse binary and how to invoke its server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerBinary {
    /// The official single binary: `clickhouse server --config-file=...`.
    Single(PathBuf),
    /// A dedicated server binary such as Debian's `/usr/sbin/clickhouse-server`.
    Dedicated(PathBuf),
}

impl ServerBinary {
    pub fn path(&self) -> &Path {
        match self {
            ServerBinary::Single(p) | ServerBinary::Dedicated(p) => p,
        }
    }

    fn command(&self, config: &Path) -> Command {
        let mut cmd = Command::new(self.path());
        if let ServerBinary::Single(_) = self {
            cmd.arg("server");
        }
        cmd.arg(format!("--config-file={}", config.display()));
        cmd
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn classify(path: PathBuf) -> ServerBinary {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "clickhouse" {
        ServerBinary::Single(path)
    } else {
        ServerBinary::Dedicated(path)
    }
}

/// Finds a server binary: the explicit one, else `clickhouse` then `clickhouse-server` on
/// PATH, else the Debian package's `/usr/sbin/clickhouse-server`.
pub fn find_binary(explicit: Option<&Path>) -> Result<ServerBinary, LocalServerError> {
    if let Some(path) = explicit {
        return if is_executable(path) {
            Ok(classify(path.to_path_buf()))
        } else {
            Err(LocalServerError::BadBinary {
                path: path.to_path_buf(),
            })
        };
    }
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for name in ["clickhouse", "clickhouse-server"] {
        if let Some(found) = path_dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
        {
            return Ok(classify(found));
        }
    }
    for fixed in ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse"] {
        let p = PathBuf::from(fixed);
        if is_executable(&p) {
            return Ok(classify(p));
        }
    }
    Err(LocalServerError::BinaryNotFound {
        searched: "`clickhouse` and `clickhouse-server` on PATH, /usr/sbin/clickhouse-server"
            .to_string(),
    })
}

/// What is written to the state file so later runs can find a live server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerState {
    pub pid: i32,
    pub http_port: u16,
    pub tcp_port: u16,
    pub binary: PathBuf,
    pub data_dir: PathBuf,
    /// Kept running until `aurora server stop` (set by `aurora server start` and the demo);
    /// otherwise the last Aurora command using the server stops it.
    #[serde(default)]
    pub pinned: bool,
}

impl ServerState {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

/// A running private server. `started_here` tells whether this process started it (and so
/// should stop it when done) or reused one from an earlier run.
#[derive(Debug, Clone)]
pub struct LocalServer {
    pub state: ServerState,
    pub started_here: bool,
}

impl LocalServer {
    pub fn url(&self) -> String {
        self.state.url()
    }

    pub fn error_log(&self) -> PathBuf {
        log_dir(&self.state.data_dir).join("clickhouse-server.err.log")
    }
}

/// Status of the private server in a data directory, for `aurora server status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStatus {
    Running(ServerState),
    /// The state file names a process that is gone (Aurora or the server crashed).
    Stale(ServerState),
    NotRunning,
}

fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STATE_FILE)
}

fn read_state(data_dir: &Path) -> Option<ServerState> {
    let text = fs::read_to_string(state_path(data_dir)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_state(state: &ServerState) -> Result<(), LocalServerError> {
    let path = state_path(&state.data_dir);
    let text = serde_json::to_string_pretty(state).unwrap_or_default();
    // Write then rename, so a crash never leaves a half-written state file.
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, text)
        .and_then(|_| fs::rename(&tmp, &path))
        .map_err(|source| LocalServerError::DataDir {
            path: state.data_dir.clone(),
            source,
        })
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM still means the process exists.
    match kill(Pid::from_raw(pid), None) {
        Ok(()) => !is_zombie(pid),
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// True when `pid` is a ClickHouse server started with this data directory's config: a pid
/// from a state file may have been recycled by an unrelated process after a reboot.
fn is_our_server(state: &ServerState) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{}/cmdline", state.pid)) else {
        // No procfs: trust liveness alone.
        return process_alive(state.pid);
    };
    let cmdline = String::from_utf8_lossy(&cmdline);
    let config = config_path(&state.data_dir);
    process_alive(state.pid) && cmdline.contains(&*config.to_string_lossy())
}

fn config_path(data_dir: &Path) -> PathBuf {
    data_dir.join("etc").join("config.xml")
}

/// Answers whether the server at `http_port` replies to `SELECT 1`, without an async runtime.
fn answers_select_1(http_port: u16) -> bool {
    use std::io::Write;
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], http_port)),
        Duration::from_millis(500),
    ) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        // HTTP/1.0 so the body arrives plain, not chunked.
        "GET /?query=SELECT%201 HTTP/1.0\r\nHost: 127.0.0.1:{http_port}\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let ok_status = response
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code == "200");
    ok_status
        && response
            .split_once("\r\n\r\n")
            .is_some_and(|(_, body)| body.trim() == "1")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn tail_lines(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("  (no log at {})", path.display());
    };
    // Logs can be large; the last 64 KiB always hold the lines we quote.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = all.len().saturating_sub(lines);
    if all.is_empty() {
        return "  (the log is empty)".to_string();
    }
    all[start..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn startup_log_tail(data_dir: &Path) -> (PathBuf, String) {
    let logs = log_dir(data_dir);
    let err_log = logs.join("clickhouse-server.err.log");
    let stdout_log = logs.join("stdout.log");
    let mut tail = tail_lines(&err_log, LOG_TAIL_LINES);
    let stdout_tail = tail_lines(&stdout_log, 5);
    if !stdout_tail.starts_with("  (") {
        tail.push_str("\n  -- stdout/stderr --\n");
        tail.push_str(&stdout_tail);
    }
    (err_log, tail)
}

fn config_xml(data_dir: &Path, http_port: u16, tcp_port: u16) -> String {
    let d = data_dir.display();
    let logs = log_dir(data_dir);
    let l = logs.display();
    // Only the keys every version from 18.16 to 26.x understands; everything on loopback.
    format!(
        r#"<?xml version="1.0"?>
<!-- Written by Aurora for its private server; rewritten on every start. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{l}/clickhouse-server.log</log>
        <errorlog>{l}/clickhouse-server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <!-- The private server keeps a history of the statements it received (with the user
         profile's log_queries), so a user can see what Aurora sent on their behalf, and the
         tests can prove it (e.g. that the SQL assistant only ever sent reads). Flushed every
         second; `SYSTEM FLUSH LOGS` flushes at once. -->
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>1000</flush_interval_milliseconds>
    </query_log>
</yandex>
"#
    )
}

const USERS_XML: &str = r#"<?xml version="1.0"?>
<!-- Written by Aurora: one passwordless user reachable from loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <!-- Record every statement in system.query_log (see config.xml). -->
            <log_queries>1</log_queries>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"#;

fn lock_data_dir(data_dir: &Path) -> Result<Flock<File>, LocalServerError> {
    let dir_err = |source| LocalServerError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(data_dir).map_err(dir_err)?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(LOCK_FILE))
        .map_err(dir_err)?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| dir_err(std::io::Error::from(errno)))
}

/// What the state file in `data_dir` says about the server.
pub fn status(data_dir: &Path) -> ServerStatus {
    match read_state(data_dir) {
        Some(state) if is_our_server(&state) => ServerStatus::Running(state),
        Some(state) => ServerStatus::Stale(state),
        None => ServerStatus::NotRunning,
    }
}

/// Returns a running private server: reuses a live one recorded in the state file, else
/// starts a new one. Blocks until it answers `SELECT 1` or `startup_timeout` passes.
pub fn ensure_running(opts: &LocalServerOptions) -> Result<LocalServer, LocalServerError> {
    let _lock = lock_data_dir(&opts.data_dir)?;
    if let Some(state) = read_state(&opts.data_dir) {
        if is_our_server(&state) {
            if wait_until_ready(&state, opts.startup_timeout) {
                return Ok(LocalServer {
                    state,
                    started_here: false,
                });
            }
            // Alive but deaf: it is wedged; replace it rather than fail forever.
            tracing::warn!(
                pid = state.pid,
                "private ClickHouse server not answering; restarting it"
            );
            terminate(state.pid)?;
        }
        let _ = fs::remove_file(state_path(&opts.data_dir));
    }
    let binary = find_binary(opts.binary.as_deref())?;
    // Free ports can be taken between our probe and the server's bind; retry with new ones.
    let mut last_err = None;
    for _ in 0..3 {
        match start(opts, &binary) {
            Ok(server) => return Ok(server),
            Err(LocalServerError::ExitedDuringStartup { status, log, tail })
                if tail.contains("Address already in use") =>
            {
                last_err = Some(LocalServerError::ExitedDuringStartup { status, log, tail });
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or(LocalServerError::BinaryNotFound {
        searched: String::new(),
    }))
}

fn wait_until_ready(state: &ServerState, timeout: Duration) -> bool {
    let deadline = Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    loop {
        if answers_select_1(state.http_port) {
            return true;
        }
        if Instant::now() >= deadline || !process_alive(state.pid) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start(
    opts: &LocalServerOptions,
    binary: &ServerBinary,
) -> Result<LocalServer, LocalServerError> {
    let data_dir = &opts.data_dir;
    let dir_err = |source| LocalServerError::DataDir {
        path: data_dir.clone(),
        source,
    };
    for sub in ["etc", "log", "data", "tmp", "user_files", "format_schemas"] {
        fs::create_dir_all(data_dir.join(sub)).map_err(dir_err)?;
    }
    let http_port = free_port().map_err(dir_err)?;
    let mut tcp_port = free_port().map_err(dir_err)?;
    if tcp_port == http_port {
        tcp_port = free_port().map_err(dir_err)?;
    }
    let config = config_path(data_dir);
    fs::write(&config, config_xml(data_dir, http_port, tcp_port)).map_err(dir_err)?;
    fs::write(data_dir.join("etc").join("users.xml"), USERS_XML).map_err(dir_err)?;
    // A fresh error log per start, so a startup failure quotes this attempt only.
    let logs = log_dir(data_dir);
    let _ = fs::remove_file(logs.join("clickhouse-server.err.log"));
    let stdout_log = File::create(logs.join("stdout.log")).map_err(dir_err)?;
    let stderr_log = stdout_log.try_clone().map_err(dir_err)?;

    let mut cmd = binary.command(&config);
    cmd.current_dir(data_dir)
        .stdin(Stdio::null())
        .stdout(stdout_log)
        .stderr(stderr_log)
        // Own process group: Ctrl-C in Aurora's terminal must not kill the server mid-write;
        // Aurora stops it itself, gracefully.
        .process_group(0);
    if opts.die_with_parent {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)
            });
        }
    }
    let mut child = cmd.spawn().map_err(|source| LocalServerError::Spawn {
        binary: binary.path().to_path_buf(),
        source,
    })?;
    let pid = child.id() as i32;
    let state = ServerState {
        pid,
        http_port,
        tcp_port,
        binary: binary.path().to_path_buf(),
        data_dir: data_dir.clone(),
        pinned: false,
    };
    // Recorded before the wait: if Aurora is interrupted now, the next run finds this server
    // (still starting, or up) by its state file instead of tripping over its lock.
    write_state(&state)?;
    let forget_state = || {
        let _ = fs::remove_file(state_path(data_dir));
    };
    let deadline = Instant::now()
        .checked_add(opts.startup_timeout)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            forget_state();
            let (log, tail) = startup_log_tail(data_dir);
            return Err(LocalServerError::ExitedDuringStartup {
                status: status.to_string(),
                log,
                tail,
            });
        }
        // The answer must come from our child: if it died, whatever answered on the port is
        // another program that took the port first.
        if answers_select_1(http_port) && matches!(child.try_wait(), Ok(None)) {
            break;
        }
        if Instant::now() >= deadline {
            let _ = terminate(pid);
            let _ = child.wait();
            forget_state();
            let (log, tail) = startup_log_tail(data_dir);
            return Err(LocalServerError::StartupTimeout {
                url: state.url(),
                timeout: opts.startup_timeout,
                log,
                tail,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The child handle is dropped without waiting: the server outlives this call, and a
    // reaper is not needed because `stop` works by pid and the state file.
    drop(child);
    Ok(LocalServer {
        state,
        started_here: true,
    })
}

/// Sends SIGTERM and waits for the process to exit, escalating to SIGKILL after a timeout.
fn terminate(pid: i32) -> Result<(), LocalServerError> {
    let target = Pid::from_raw(pid);
    match kill(target, Signal::SIGTERM) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Ok(()),
        Err(e) => {
            return Err(LocalServerError::Stop {
                pid,
                reason: e.to_string(),
            })
        }
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        reap(pid);
        if !process_alive(pid) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::warn!(
        pid,
        "ClickHouse did not stop within {STOP_TIMEOUT:?}; killing it"
    );
    let _ = kill(target, Signal::SIGKILL);
    std::thread::sleep(Duration::from_millis(200));
    reap(pid);
    Ok(())
}

/// Collects the exit status when the server is our own child, so it does not linger as a
/// zombie that still looks alive.
fn reap(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

/// Marks the running server of `data_dir` to keep running until `aurora server stop`.
pub fn pin(data_dir: &Path) -> Result<(), LocalServerError> {
    let _lock = lock_data_dir(data_dir)?;
    match read_state(data_dir) {
        Some(mut state) if !state.pinned => {
            state.pinned = true;
            write_state(&state)
        }
        _ => Ok(()),
    }
}

/// Stops the server of `data_dir` unless it is pinned: for the last command using a server
/// it started on demand.
pub fn stop_unless_pinned(data_dir: &Path) -> Result<Option<ServerState>, LocalServerError> {
    match read_state(data_dir) {
        Some(state) if state.pinned => Ok(None),
        _ => stop(data_dir),
    }
}

const LEASE_FILE: &str = "aurora-server.users";

/// A shared claim on the private server, held by every Aurora command that uses it. The
/// command that started the server stops it at the end only if no other command still holds
/// a lease, so one command never pulls the server from under another's running query.
#[derive(Debug)]
pub struct ServerLease {
    lock: Option<Flock<File>>,
    path: PathBuf,
}

fn open_lease_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// Takes a shared lease on the server of `data_dir` for as long as the value lives.
pub fn lease(data_dir: &Path) -> Result<ServerLease, LocalServerError> {
    let path = data_dir.join(LEASE_FILE);
    let err = |source| LocalServerError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(data_dir).map_err(err)?;
    let file = open_lease_file(&path).map_err(err)?;
    let lock = Flock::lock(file, FlockArg::LockShared)
        .map_err(|(_, errno)| err(std::io::Error::from(errno)))?;
    Ok(ServerLease {
        lock: Some(lock),
        path,
    })
}

impl ServerLease {
    /// Gives the lease up and says whether it was the last one (nobody else uses the server).
    pub fn release_is_last(mut self) -> bool {
        drop(self.lock.take());
        let Ok(file) = open_lease_file(&self.path) else {
            return false;
        };
        // Exclusive succeeds only when no other process holds a shared lease.
        Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok()
    }
}

/// Stops the private server of `data_dir` gracefully. Returns the state it stopped, if any.
pub fn stop(data_dir: &Path) -> Result<Option<ServerState>, LocalServerError> {
    let _lock = lock_data_dir(data_dir)?;
    let Some(state) = read_state(data_dir) else {
        return Ok(None);
    };
    if is_our_server(&state) {
        terminate(state.pid)?;
    }
    let _ = fs::remove_file(state_path(data_dir));
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_single_and_dedicated_binaries() {
        assert_eq!(
            classify(PathBuf::from("/opt/ch/clickhouse")),
            ServerBinary::Single(PathBuf::from("/opt/ch/clickhouse"))
        );
        assert_eq!(
            classify(PathBuf::from("/usr/sbin/clickhouse-server")),
            ServerBinary::Dedicated(PathBuf::from("/usr/sbin/clickhouse-server"))
        );
    }

    #[test]
    fn single_binary_gets_server_subcommand() {
        let cmd = ServerBinary::Single(PathBuf::from("/x/clickhouse")).command(Path::new("/c.xml"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().to_string())
            .collect();
        assert_eq!(args, ["server", "--config-file=/c.xml"]);
        let cmd = ServerBinary::Dedicated(PathBuf::from("/x/clickhouse-server"))
            .command(Path::new("/c.xml"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().to_string())
            .collect();
        assert_eq!(args, ["--config-file=/c.xml"]);
    }

    #[test]
    fn explicit_missing_binary_is_reported_with_install_hint() {
        let err = find_binary(Some(Path::new("/nonexistent/clickhouse"))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/clickhouse"), "{text}");
        assert!(text.contains("apt-get install clickhouse-server"), "{text}");
    }

    #[test]
    fn status_reports_stale_state_for_dead_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = ServerState {
            // pid_max is at most 2^22 on Linux, so this pid cannot exist.
            pid: 999_999_999,
            http_port: 1,
            tcp_port: 2,
            binary: PathBuf::from("/usr/sbin/clickhouse-server"),
            data_dir: dir.path().to_path_buf(),
            pinned: false,
        };
        write_state(&state).unwrap();
        assert_eq!(status(dir.path()), ServerStatus::Stale(state));
    }

    #[test]
    fn only_the_last_lease_holder_is_told_it_is_last() {
        let dir = tempfile::tempdir().unwrap();
        let first = lease(dir.path()).unwrap();
        let second = lease(dir.path()).unwrap();
        assert!(!first.release_is_last());
        assert!(second.release_is_last());
        // Released leases leave no lock behind.
        assert!(lease(dir.path()).unwrap().release_is_last());
    }

    #[test]
    fn tail_quotes_last_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        fs::write(&log, text).unwrap();
        let tail = tail_lines(&log, 3);
        assert_eq!(tail, "  line 38\n  line 39\n  line 40");
    }
}
