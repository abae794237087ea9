//! A current ClickHouse engine for tests: chdb (ClickHouse 26.x in-process, from PyPI,
//! installed by `scripts/setup --for-tests` into `~/.cache/aurora/chdb`) behind the tests' own
//! minimal HTTP front, `tests/fixtures/current_server/chdb_http.py`. This is a harness: the
//! engine (parsing, types, formats, functions) is ClickHouse's, the HTTP layer is not; see the
//! script for what it does and does not do. One per test binary, stopped with the process.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

static URL: OnceLock<String> = OnceLock::new();

fn python() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let python = PathBuf::from(home).join(".cache/aurora/chdb/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `scripts/setup --for-tests` (it installs chdb)",
        python.display()
    );
    python
}

/// The harness's URL, started on first use.
pub fn url() -> &'static str {
    URL.get_or_init(|| {
        let port = super::free_port();
        let dir = super::fresh_data_dir("chdb");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/current_server/chdb_http.py");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let log = std::fs::File::create(dir.join("harness.log")).expect("harness log");
            let mut cmd = Command::new(python());
            cmd.arg(&script)
                .arg(port.to_string())
                .arg(dir.join("data"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("harness log"))
                .stderr(log);
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                use std::os::unix::process::CommandExt;
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                        .map_err(std::io::Error::from)
                });
            }
            let _ = tx.send(cmd.spawn().map(drop).map_err(|e| e.to_string()));
            // PR_SET_PDEATHSIG fires when this thread ends: keep it alive with the process.
            loop {
                std::thread::park();
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the harness thread answers")
            .unwrap_or_else(|e| panic!("cannot start the chdb harness: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if super::http_query(port, "SELECT 1").is_ok_and(|b| b.trim() == "1") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the chdb harness did not answer within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        format!("http://127.0.0.1:{port}")
    })
}
