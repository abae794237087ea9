//! Test harness: one real private PostgreSQL and one MariaDB server per test binary, each in a
//! fresh directory on a free loopback port, for the ingestion sources that read from them. Tests
//! set up their tables through the servers' own command-line clients (`sql()`).
//!
//! Like the ClickHouse server in `mod.rs`, each server is started from a thread that is parked for
//! the rest of the process, with PR_SET_PDEATHSIG set, so the kernel stops it when the tests end.
//! Directories left by earlier runs are removed once the process that owned them is gone.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

static POSTGRES: OnceLock<SqlServer> = OnceLock::new();
static MARIADB: OnceLock<SqlServer> = OnceLock::new();

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// A new port is tried this many times when the chosen one was taken before the server bound it.
const PORT_ATTEMPTS: usize = 3;
/// `sun_path` holds 108 bytes; PostgreSQL adds `/.s.PGSQL.65535.lock` to the socket directory.
const MAX_SOCKET_DIR_BYTES: usize = 80;
/// The user PostgreSQL runs as when the tests run as root (it refuses to run as root).
const UNPRIVILEGED_USER: &str = "nobody";
const POSTGRES_USER: &str = "aurora";
const MARIADB_USER: &str = "root";
/// A user that can connect only over TLS.
pub const TLS_ONLY_USER: &str = "tls_only";
/// A user that can connect only with the client certificate in `SqlServer::tls`.
pub const TLS_CERT_USER: &str = "cert_only";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlEngine {
    Postgres,
    MariaDb,
}

/// A running test server, reachable over TCP on 127.0.0.1 without a password.
#[derive(Debug)]
pub struct SqlServer {
    pub engine: SqlEngine,
    pub port: u16,
    /// The user every DSN and `sql()` connects as: `aurora` (PostgreSQL) or `root` (MariaDB).
    pub user: &'static str,
    /// Holds the data directory (`data/`), the Unix socket and the server's log (`server.log`).
    pub dir: PathBuf,
    /// The server's TLS files (see `certs::make`): `ca.pem` signed its certificate and
    /// `client.pem`/`client.key`, a client certificate for the user `cert_only`.
    pub tls: PathBuf,
    pub pid: u32,
    client: PathBuf,
}

/// The shared PostgreSQL server of this test binary: user `aurora`, trust authentication.
pub fn postgres() -> &'static SqlServer {
    POSTGRES.get_or_init(|| start_bound(SqlEngine::Postgres))
}

/// The shared MariaDB server of this test binary: user `root` with an empty password.
pub fn mariadb() -> &'static SqlServer {
    MARIADB.get_or_init(|| start_bound(SqlEngine::MariaDb))
}

impl SqlServer {
    /// `postgres://aurora@127.0.0.1:PORT/DB` or `mysql://root@127.0.0.1:PORT/DB`.
    pub fn dsn(&self, database: &str) -> String {
        self.dsn_as(self.user, database)
    }

    /// The DSN for another user of the server.
    pub fn dsn_as(&self, user: &str, database: &str) -> String {
        let scheme = match self.engine {
            SqlEngine::Postgres => "postgres",
            SqlEngine::MariaDb => "mysql",
        };
        format!("{scheme}://{user}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates the users `TLS_ONLY_USER` and `TLS_CERT_USER` (if missing), with every right.
    pub fn create_tls_users(&self) {
        let script = match self.engine {
            SqlEngine::Postgres => format!(
                "DO $$ BEGIN \
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TLS_ONLY_USER}') THEN \
                 CREATE ROLE {TLS_ONLY_USER} LOGIN SUPERUSER; END IF; \
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{TLS_CERT_USER}') THEN \
                 CREATE ROLE {TLS_CERT_USER} LOGIN SUPERUSER; END IF; END $$;\n"
            ),
            SqlEngine::MariaDb => format!(
                "CREATE USER IF NOT EXISTS '{TLS_ONLY_USER}'@'127.0.0.1' REQUIRE SSL;\n\
                 GRANT ALL ON *.* TO '{TLS_ONLY_USER}'@'127.0.0.1';\n\
                 CREATE USER IF NOT EXISTS '{TLS_CERT_USER}'@'127.0.0.1' \
                 REQUIRE SUBJECT '/CN={TLS_CERT_USER}';\n\
                 GRANT ALL ON *.* TO '{TLS_CERT_USER}'@'127.0.0.1';\n"
            ),
        };
        self.sql(self.maintenance_database(), &script);
    }

    /// Creates `name` afresh (dropping an older one), so a test always starts from empty.
    pub fn create_database(&self, name: &str) {
        let script = match self.engine {
            SqlEngine::Postgres => {
                let name = quote_identifier(name, '"');
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE);\nCREATE DATABASE {name};\n")
            }
            SqlEngine::MariaDb => {
                let name = quote_identifier(name, '`');
                format!("DROP DATABASE IF EXISTS {name};\nCREATE DATABASE {name};\n")
            }
        };
        self.sql(self.maintenance_database(), &script);
    }

    /// Runs a script of one or more statements through the server's command-line client and
    /// returns what it printed: one line per row, tab-separated columns, no headers, without the
    /// final newline. Stops at the first error and panics with the client's message.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        self.try_sql(database, sql)
            .unwrap_or_else(|e| panic!("{:?} on {database}: {e}\nscript:\n{sql}", self.engine))
    }

    /// Like `sql()`, for a test that expects the script to fail: the client's error message.
    pub fn try_sql(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.client_command(database);
        run_with_input(&mut cmd, sql).map(|out| out.trim_end_matches('\n').to_string())
    }

    /// The last `lines` lines of the server's log, for a failing test's message.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.dir.join("server.log"), lines)
    }

    fn maintenance_database(&self) -> &'static str {
        match self.engine {
            SqlEngine::Postgres => "postgres",
            SqlEngine::MariaDb => "mysql",
        }
    }

    fn client_command(&self, database: &str) -> Command {
        client_command(self.engine, &self.client, self.port, database)
    }
}

/// Starts a server from a thread that lives as long as the process: PR_SET_PDEATHSIG fires when
/// the thread that spawned the child ends, so the server stops exactly when the tests do.
fn start_bound(engine: SqlEngine) -> SqlServer {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("{engine:?}-server"))
        .spawn(move || {
            // A panic is handed to the caller, so its message names what went wrong.
            let _child = match std::panic::catch_unwind(|| start(engine)) {
                Ok((server, child)) => {
                    let _ = tx.send(Ok(server));
                    child
                }
                Err(panic) => {
                    let _ = tx.send(Err(panic));
                    return;
                }
            };
            loop {
                std::thread::park();
            }
        })
        .expect("spawn the server thread");
    match rx.recv_timeout(STARTUP_TIMEOUT * 2) {
        Ok(Ok(server)) => server,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => panic!("the test {engine:?} server did not start: {e}"),
    }
}

fn start(engine: SqlEngine) -> (SqlServer, Child) {
    let began = Instant::now();
    let binaries = match engine {
        SqlEngine::Postgres => postgres_binaries(),
        SqlEngine::MariaDb => mariadb_binaries(),
    };
    // PostgreSQL refuses to run as root; MariaDB runs as root when told to (`--user=root`).
    let run_as = match engine {
        SqlEngine::Postgres if effective_uid() == 0 => Some(unprivileged_user()),
        _ => None,
    };
    let dir = fresh_server_dir(engine, run_as);
    let data_dir = dir.join("data");
    initialize(engine, &binaries, &data_dir, run_as);
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).expect("create the TLS directory");
    super::certs::make(&tls, TLS_CERT_USER);
    if let Some((uid, gid)) = run_as {
        // PostgreSQL reads its key only when the server's own user owns it, mode 0600.
        for entry in std::fs::read_dir(&tls).unwrap().flatten() {
            std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid)).unwrap();
        }
        std::os::unix::fs::chown(&tls, Some(uid), Some(gid)).unwrap();
    }
    std::fs::set_permissions(tls.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    if engine == SqlEngine::Postgres {
        // Users that may connect only over TLS, and only with a client certificate.
        let hba = data_dir.join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        std::fs::write(
            &hba,
            format!(
                "hostnossl all {TLS_ONLY_USER} 127.0.0.1/32 reject\n\
                 hostssl all {TLS_CERT_USER} 127.0.0.1/32 cert\n\
                 hostnossl all {TLS_CERT_USER} 127.0.0.1/32 reject\n{rest}"
            ),
        )
        .expect("write pg_hba.conf");
    }

    for attempt in 1..=PORT_ATTEMPTS {
        let port = free_port();
        let log_path = dir.join("server.log");
        let log = File::create(&log_path).expect("create the server log");
        let mut cmd = server_command(engine, &binaries.server, &dir, port);
        cmd.current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        if let Some((uid, gid)) = run_as {
            cmd.uid(uid).gid(gid);
        }
        die_with_parent(&mut cmd, engine);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binaries.server.display()));
        match wait_until_ready(engine, &binaries.client, port, &mut child) {
            Ok(()) => {
                let server = SqlServer {
                    engine,
                    port,
                    user: match engine {
                        SqlEngine::Postgres => POSTGRES_USER,
                        SqlEngine::MariaDb => MARIADB_USER,
                    },
                    dir,
                    tls,
                    pid: child.id(),
                    client: binaries.client,
                };
                eprintln!(
                    "test {engine:?} server ready on port {port} in {:.1?} ({})",
                    began.elapsed(),
                    server.dir.display()
                );
                return (server, child);
            }
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = tail(&log_path, 30);
                if attempt < PORT_ATTEMPTS && log.contains("Address already in use") {
                    continue;
                }
                panic!(
                    "the test {engine:?} server ({}) did not start: {reason}\n{}:\n{log}",
                    binaries.server.display(),
                    log_path.display()
                );
            }
        }
    }
    unreachable!("every attempt either returns or panics")
}

struct Binaries {
    /// initdb / mariadb-install-db.
    init: PathBuf,
    server: PathBuf,
    client: PathBuf,
}

/// The newest Debian-packaged PostgreSQL (`/usr/lib/postgresql/<major>/bin`), else whatever is on
/// PATH. Binaries elsewhere on PATH (e.g. /usr/local/bin) may belong to another build.
fn postgres_binaries() -> Binaries {
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major);
    if let Some((_, bin)) = debian {
        let psql = bin.join("psql");
        return Binaries {
            init: bin.join("initdb"),
            server: bin.join("postgres"),
            client: if psql.is_file() {
                psql
            } else {
                find_binary(&["psql"], "postgresql-client")
            },
        };
    }
    Binaries {
        init: find_binary(&["initdb"], "postgresql"),
        server: find_binary(&["postgres"], "postgresql"),
        client: find_binary(&["psql"], "postgresql-client"),
    }
}

fn mariadb_binaries() -> Binaries {
    Binaries {
        init: find_binary(
            &["mariadb-install-db", "mysql_install_db"],
            "mariadb-server",
        ),
        server: find_binary(&["mariadbd", "mysqld"], "mariadb-server"),
        client: find_binary(&["mariadb", "mysql"], "mariadb-client"),
    }
}

/// The first of `names` found in PATH or the sbin directories (not on a normal user's PATH).
fn find_binary(names: &[&str], package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "none of {names:?} found: install the Debian package `{package}` (scripts/setup)"
            )
        })
}

fn initialize(engine: SqlEngine, binaries: &Binaries, data_dir: &Path, run_as: Option<(u32, u32)>) {
    let mut cmd = Command::new(&binaries.init);
    match engine {
        SqlEngine::Postgres => {
            cmd.arg("-D")
                .arg(data_dir)
                .args(["-U", POSTGRES_USER, "--auth=trust", "--encoding=UTF8"])
                .args(["--no-locale", "--no-sync", "--no-instructions"]);
        }
        SqlEngine::MariaDb => {
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data_dir.display()))
                .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
                // Passed on to the bootstrap server: smaller files than the 96 MiB default log.
                .args(mariadb_storage_options());
            if effective_uid() == 0 {
                cmd.arg("--user=root");
            }
        }
    }
    if let Some(parent) = data_dir.parent() {
        cmd.current_dir(parent);
    }
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binaries.init.display()));
    if !out.status.success() {
        panic!(
            "{} failed ({}):\n{}\n{}",
            binaries.init.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn mariadb_storage_options() -> [&'static str; 2] {
    [
        "--innodb-log-file-size=16M",
        "--innodb-buffer-pool-size=64M",
    ]
}

fn server_command(engine: SqlEngine, server: &Path, dir: &Path, port: u16) -> Command {
    let mut cmd = Command::new(server);
    let data_dir = dir.join("data");
    match engine {
        SqlEngine::Postgres => {
            cmd.arg("-D").arg(&data_dir).arg("-k").arg(dir);
            cmd.args(["-p", &port.to_string()]);
            // Throwaway data: durability only costs time.
            for setting in [
                "listen_addresses=127.0.0.1",
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "ssl=on",
            ] {
                cmd.args(["-c", setting]);
            }
            let tls = dir.join("tls");
            for (setting, file) in [
                ("ssl_cert_file", "cert.pem"),
                ("ssl_key_file", "key.pem"),
                ("ssl_ca_file", "ca.pem"),
            ] {
                cmd.args(["-c", &format!("{setting}={}", tls.join(file).display())]);
            }
        }
        SqlEngine::MariaDb => {
            cmd.arg("--no-defaults")
                .arg(format!("--datadir={}", data_dir.display()))
                .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
                .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
                .arg(format!("--port={port}"))
                .args([
                    "--bind-address=127.0.0.1",
                    // Grants are for 127.0.0.1, and a reverse lookup may hang without DNS.
                    "--skip-name-resolve",
                    "--innodb-flush-log-at-trx-commit=0",
                    "--sync-binlog=0",
                    // Debian's config sets utf8mb4, which --no-defaults skips.
                    "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_general_ci",
                    // Lets a recursive CTE generate test rows (the default stops at 1000).
                    "--max-recursive-iterations=100000000",
                ])
                .arg(format!("--ssl-ca={}", dir.join("tls/ca.pem").display()))
                .arg(format!("--ssl-cert={}", dir.join("tls/cert.pem").display()))
                .arg(format!("--ssl-key={}", dir.join("tls/key.pem").display()))
                .args(mariadb_storage_options());
            if effective_uid() == 0 {
                cmd.arg("--user=root");
            }
        }
    }
    cmd
}

/// PR_SET_PDEATHSIG: the kernel signals the server when the spawning thread ends. PostgreSQL's
/// fast shutdown is SIGINT (SIGTERM would wait for clients to disconnect).
fn die_with_parent(cmd: &mut Command, engine: SqlEngine) {
    let signal = match engine {
        SqlEngine::Postgres => Signal::SIGINT,
        SqlEngine::MariaDb => Signal::SIGTERM,
    };
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent. The
    // closure runs after std's setuid, which would otherwise clear the death signal again.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)?;
            // The parent may have exited before the death signal was armed.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::other("the test process is gone"));
            }
            Ok(())
        });
    }
}

fn wait_until_ready(
    engine: SqlEngine,
    client: &Path,
    port: u16,
    child: &mut Child,
) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let database = match engine {
        SqlEngine::Postgres => "postgres",
        SqlEngine::MariaDb => "mysql",
    };
    let mut last_error = String::new();
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the server exited ({status})"));
        }
        let mut probe = client_command(engine, client, port, database);
        match run_with_input(&mut probe, "SELECT 1;") {
            Ok(out) if out.trim() == "1" => return Ok(()),
            Ok(out) => last_error = format!("unexpected answer {out:?}"),
            Err(e) => last_error = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "not ready after {STARTUP_TIMEOUT:?}; last client error: {last_error}"
    ))
}

fn client_command(engine: SqlEngine, client: &Path, port: u16, database: &str) -> Command {
    let mut cmd = Command::new(client);
    let port = port.to_string();
    match engine {
        SqlEngine::Postgres => {
            cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"])
                .args(["-h", "127.0.0.1", "-p", &port, "-U", POSTGRES_USER])
                .args(["-d", database, "-f", "-"]);
            for var in ["PGSERVICE", "PGOPTIONS", "PGSSLMODE", "PGPASSWORD"] {
                cmd.env_remove(var);
            }
            cmd.env("PGCONNECT_TIMEOUT", "5");
        }
        SqlEngine::MariaDb => {
            // --no-defaults must come first.
            cmd.args(["--no-defaults", "--batch", "-N"])
                .args(["--protocol=tcp", "-h", "127.0.0.1", "-P", &port])
                .args(["-u", MARIADB_USER, "--default-character-set=utf8mb4"])
                .args(["--connect-timeout=5", database]);
            cmd.env_remove("MYSQL_PWD");
        }
    }
    cmd
}

/// Runs `cmd` with `input` on stdin; its stdout, or its stderr as the error.
fn run_with_input(cmd: &mut Command, input: &str) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    // Written from another thread: a client may print before it has read the whole script.
    let out = std::thread::scope(|scope| {
        scope.spawn(move || {
            // A client that stops early (on an error) closes the pipe; its stderr says why.
            let _ = stdin.write_all(input.as_bytes());
        });
        child.wait_with_output()
    })
    .map_err(|e| format!("waiting for {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{} ({}): {}",
            Path::new(cmd.get_program()).display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// A new directory for one server, under CARGO_TARGET_TMPDIR when the server can reach it there
/// and the socket path stays short, else under the system temp directory.
fn fresh_server_dir(engine: SqlEngine, run_as: Option<(u32, u32)>) -> PathBuf {
    let kind = match engine {
        SqlEngine::Postgres => "postgres",
        SqlEngine::MariaDb => "mariadb",
    };
    let preferred = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(kind);
    let fallback = std::env::temp_dir()
        .join(format!("aurora-tests-{}", effective_uid()))
        .join(kind);
    let usable = |base: &Path| {
        // `<base>/<kind>-XXXXXX`: tempfile adds 6 random characters.
        if base.as_os_str().len() + kind.len() + 8 > MAX_SOCKET_DIR_BYTES
            || std::fs::create_dir_all(base).is_err()
        {
            return false;
        }
        if run_as.is_some() {
            // Fails harmlessly on a base another user made.
            let _ = std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755));
        }
        run_as.is_none() || others_can_traverse(base)
    };
    let base = [preferred, fallback]
        .into_iter()
        .find(|base| usable(base))
        .expect("no usable directory for the test server under CARGO_TARGET_TMPDIR or /tmp");
    remove_abandoned_dirs(&base);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{kind}-"))
        .tempdir_in(&base)
        .expect("create the test server directory")
        .keep();
    std::fs::write(dir.join(OWNER_FILE), std::process::id().to_string())
        .expect("record the owning test process");
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .expect("hand the test server directory to the unprivileged user");
    }
    dir
}

/// Names the test process a server directory belongs to.
const OWNER_FILE: &str = "owner.pid";

/// Deletes server directories whose test process has exited (their servers died with it).
fn remove_abandoned_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(owner) = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|pid| pid.trim().parse::<i32>().ok())
        else {
            continue;
        };
        let owner = nix::unistd::Pid::from_raw(owner);
        if nix::sys::signal::kill(owner, None) == Err(nix::errno::Errno::ESRCH) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Whether a user who is neither owner nor group member can reach `path` (execute on every
/// directory up to and including it).
fn others_can_traverse(path: &Path) -> bool {
    let Ok(path) = std::path::absolute(path) else {
        return false;
    };
    path.ancestors().all(|dir| {
        std::fs::metadata(dir)
            .map(|meta| meta.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// The uid and primary gid of `nobody` from /etc/passwd (65534 on Debian and Ubuntu).
fn unprivileged_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.first() != Some(&UNPRIVILEGED_USER) {
                return None;
            }
            Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
        })
        .unwrap_or((65534, 65534))
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { nix::libc::geteuid() }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

fn quote_identifier(name: &str, quote: char) -> String {
    let doubled = format!("{quote}{quote}");
    format!("{quote}{}{quote}", name.replace(quote, &doubled))
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
