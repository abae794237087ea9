//! The private server manager against the real ClickHouse binary: start, reuse by a later
//! run, stop, recovery from a stale state file, and the errors a user sees when the binary is
//! missing or the server cannot start.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use aurora::warehouse::local_server::{
    self, ensure_running, LocalServerError, LocalServerOptions, ServerState, ServerStatus,
};

fn options(label: &str) -> LocalServerOptions {
    let mut opts = LocalServerOptions::new(common::fresh_data_dir(label));
    opts.startup_timeout = Duration::from_secs(60);
    opts
}

fn pid_alive(pid: i32) -> bool {
    // Zombies count as gone: the server was our child and may not be reaped yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn start_reuse_stop() {
    let opts = options("lifecycle");
    let first = ensure_running(&opts).unwrap();
    assert!(first.started_here);
    assert_eq!(
        local_server::status(&opts.data_dir),
        ServerStatus::Running(first.state.clone())
    );
    // Config and logs live in the data directory.
    assert!(opts.data_dir.join("etc/config.xml").exists());
    assert!(opts.data_dir.join("log").is_dir());

    // A later run finds the live server through the state file and reuses it.
    let second = ensure_running(&opts).unwrap();
    assert!(!second.started_here);
    assert_eq!(second.state, first.state);

    let stopped = local_server::stop(&opts.data_dir).unwrap();
    assert_eq!(stopped.map(|s| s.pid), Some(first.state.pid));
    assert!(
        !pid_alive(first.state.pid),
        "server still running after stop"
    );
    assert_eq!(
        local_server::status(&opts.data_dir),
        ServerStatus::NotRunning
    );
    // Stopping again is not an error.
    assert_eq!(local_server::stop(&opts.data_dir).unwrap(), None);

    // The data survives a restart (same data directory).
    let third = ensure_running(&opts).unwrap();
    assert!(third.started_here);
    local_server::stop(&opts.data_dir).unwrap();
}

#[test]
fn stale_state_after_a_crash_is_replaced() {
    let opts = options("stale");
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    // What a crashed run leaves: a state file naming a process that no longer exists, and
    // a port that nothing answers on.
    let stale = ServerState {
        pid: 999_999_999,
        http_port: 1,
        tcp_port: 2,
        binary: PathBuf::from("/usr/sbin/clickhouse-server"),
        data_dir: opts.data_dir.clone(),
        pinned: false,
    };
    std::fs::write(
        opts.data_dir.join("aurora-server.json"),
        serde_json::to_string(&stale).unwrap(),
    )
    .unwrap();
    assert_eq!(
        local_server::status(&opts.data_dir),
        ServerStatus::Stale(stale.clone())
    );
    let server = ensure_running(&opts).unwrap();
    assert!(server.started_here);
    assert_ne!(server.state.pid, stale.pid);
    local_server::stop(&opts.data_dir).unwrap();
}

#[test]
fn state_naming_an_unrelated_live_process_is_not_trusted() {
    // After a reboot the recorded pid may belong to something else; its port may be taken by
    // another program. Aurora must start its own server on new ports.
    let opts = options("recycled");
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = squatter.local_addr().unwrap().port();
    let state = ServerState {
        pid: std::process::id() as i32,
        http_port: taken_port,
        tcp_port: taken_port,
        binary: PathBuf::from("/usr/sbin/clickhouse-server"),
        data_dir: opts.data_dir.clone(),
        pinned: false,
    };
    std::fs::write(
        opts.data_dir.join("aurora-server.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    let server = ensure_running(&opts).unwrap();
    assert!(server.started_here);
    assert_ne!(server.state.http_port, taken_port);
    assert_ne!(server.state.pid, std::process::id() as i32);
    local_server::stop(&opts.data_dir).unwrap();
}

#[test]
fn missing_binary_says_how_to_install_one() {
    let mut opts = options("missing");
    opts.binary = Some(PathBuf::from("/nonexistent/bin/clickhouse"));
    let err = ensure_running(&opts).unwrap_err();
    assert!(matches!(err, LocalServerError::BadBinary { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("apt-get install clickhouse-server"), "{text}");
    assert!(text.contains("AURORA_CLICKHOUSE_URL"), "{text}");
}

#[test]
fn a_server_that_fails_to_start_is_quoted_from_its_log() {
    // A stand-in binary that fails the way a broken install does: an error line, exit 1.
    let opts_dir = common::fresh_data_dir("failing");
    let fake = opts_dir.join("clickhouse-server");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Application: DB::Exception: Cannot open file /nope: Permission denied' >&2\nexit 70\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut opts = LocalServerOptions::new(opts_dir.join("data"));
    opts.binary = Some(fake);
    let err = ensure_running(&opts).unwrap_err();
    assert!(
        matches!(err, LocalServerError::ExitedDuringStartup { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("Cannot open file /nope: Permission denied"),
        "{text}"
    );
    assert!(text.contains("exit status: 70"), "{text}");
}

#[test]
fn a_server_that_never_answers_times_out_with_its_log() {
    let opts_dir = common::fresh_data_dir("silent");
    let fake = opts_dir.join("clickhouse-server");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'still loading metadata' >&2\nexec sleep 30\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut opts = LocalServerOptions::new(opts_dir.join("data"));
    opts.binary = Some(fake);
    opts.startup_timeout = Duration::from_secs(2);
    let err = ensure_running(&opts).unwrap_err();
    assert!(
        matches!(err, LocalServerError::StartupTimeout { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("still loading metadata"), "{err}");
    // The hung process was cleaned up, and no state file claims it.
    assert_eq!(
        local_server::status(&opts.data_dir),
        ServerStatus::NotRunning
    );
}

#[test]
fn a_port_taken_during_startup_is_retried_on_new_ports() {
    // Between Aurora picking a free port and the server binding it, another program can take
    // it. A wrapper fails the first start the way ClickHouse does then, and runs the real
    // server afterwards.
    let real = local_server::find_binary(None).unwrap();
    let dir = common::fresh_data_dir("port-race");
    let counter = dir.join("starts");
    let wrapper = dir.join("clickhouse-server");
    let real_cmd = match &real {
        local_server::ServerBinary::Single(p) => format!("{} server", p.display()),
        local_server::ServerBinary::Dedicated(p) => p.display().to_string(),
    };
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho x >> {counter}\nif [ $(wc -l < {counter}) -eq 1 ]; then\n  echo 'Net Exception: Address already in use: 127.0.0.1:8123' >&2\n  exit 70\nfi\nexec {real_cmd} \"$@\"\n",
            counter = counter.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut opts = LocalServerOptions::new(dir.join("data"));
    opts.binary = Some(wrapper);
    opts.startup_timeout = Duration::from_secs(60);
    let server = ensure_running(&opts).unwrap();
    assert!(server.started_here);
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap().lines().count(),
        2
    );
    local_server::stop(&opts.data_dir).unwrap();
}
