//! The workspace in a real terminal: the release binary (`AURORA_BIN`, which `make test`
//! builds; otherwise the test build) runs `aurora demo` inside tmux against the test server
//! and the default model. The test types like a user (`send-keys`) and reads the screen
//! (`capture-pane`): ask a question and see rows, switch to Pipelines and see a rate above
//! zero, open the help, quit, and check the terminal is back to the shell; and the same
//! check after SIGHUP and SIGTERM.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of the test's own (`-L`), without the user's `~/.tmux.conf`.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn start(label: &str, command: &str, width: u16, height: u16) -> Self {
        let session = format!("aurora-test-{label}-{}", std::process::id());
        let socket = session.clone();
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null"])
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(command)
            .status()
            .expect("tmux is installed by scripts/setup");
        assert!(status.success(), "tmux new-session failed");
        Self { socket, session }
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn literal(&self, text: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", &self.session, "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        let out = self
            .tmux()
            .args(["display-message", "-p", "-t", &self.session, format])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until `found` holds for the screen, or fails with the last screen.
    fn wait_for(&self, what: &str, timeout: Duration, found: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if found(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().args(["kill-server"]).status();
    }
}

fn binary() -> String {
    std::env::var("AURORA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_aurora").to_string())
}

/// The rows/s the Pipelines view shows for the demo pipeline.
fn demo_rate(screen: &str) -> Option<f64> {
    let line = screen
        .lines()
        .find(|l| l.contains("demo-clickstream") && l.contains("running"))?;
    let after = line.split("running").nth(1)?;
    let word = after.split_whitespace().next()?;
    let (number, scale) = match word.strip_suffix('k') {
        Some(n) => (n, 1000.0),
        None => (word, 1.0),
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// A shell command that runs aurora with `args` (test server, empty config, the given data
/// directory, the default model), then reports how it left the terminal: the exit status and
/// whether the line discipline is back in canonical (non-raw) mode.
fn aurora_in_shell(args: &str, data: &std::path::Path) -> String {
    format!(
        "sh -c 'env -u AURORA_LOG AURORA_CONFIG={} AURORA_CLICKHOUSE_URL={} \\
         XDG_DATA_HOME={} AURORA_MODEL={} TERM=xterm-256color {} {args}; \\
         echo \"aurora exited with $?\"; \\
         stty -a | tr \" \" \"\\n\" | grep -x -- \"-*icanon\"; exec sleep 600'",
        common::empty_config().display(),
        common::url(),
        data.display(),
        common::default_model_path().display(),
        binary()
    )
}

/// Waits for aurora to exit and checks it left the terminal as it found it.
fn assert_exited_and_restored(tmux: &Tmux) -> String {
    let screen = tmux.wait_for("aurora to exit", Duration::from_secs(60), |s| {
        s.contains("aurora exited with") && s.contains("icanon")
    });
    assert!(screen.contains("aurora exited with 0"), "{screen}");
    let after: Vec<&str> = screen
        .lines()
        .skip_while(|l| !l.contains("aurora exited with"))
        .collect();
    assert_eq!(
        after.get(1).map(|l| l.trim()),
        Some("icanon"),
        "raw mode is off:\n{screen}"
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    assert_eq!(
        tmux.display("#{cursor_flag}"),
        "1",
        "the cursor is visible again"
    );
    screen
}

#[test]
fn demo_in_a_real_terminal_asks_watches_helps_and_quits_cleanly() {
    // The history and the log go to a data directory of the test's own; the model is named
    // explicitly because it lives in the user's.
    let data = tempfile::tempdir().expect("a data directory");
    let command = aurora_in_shell("demo", data.path());
    let tmux = Tmux::start("demo", &command, 120, 40);
    tmux.wait_for("the Ask view", Duration::from_secs(120), |s| {
        s.contains("Ask a question") && s.contains("Suggestions")
    });
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the workspace uses the alternate screen"
    );

    tmux.literal("How many events are there?");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("a result", Duration::from_secs(180), |s| {
        s.contains("✓") || s.contains("failed")
    });
    assert!(screen.contains("✓"), "the question failed:\n{screen}");
    assert!(screen.contains("SELECT"), "{screen}");
    assert!(screen.contains("rows"), "{screen}");

    tmux.keys(&["2"]);
    tmux.wait_for("the demo pipeline's rate", Duration::from_secs(60), |s| {
        demo_rate(s).is_some_and(|r| r > 0.0)
    });

    tmux.keys(&["?"]);
    let help = tmux.wait_for("the help", Duration::from_secs(10), |s| {
        s.contains("Keys · Pipelines view")
    });
    assert!(help.contains("pause the pipeline"), "{help}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help to close", Duration::from_secs(10), |s| {
        !s.contains("Keys · Pipelines")
    });

    // The demo's dashboards, one key away: the clickstream's panels fill with data, and Esc
    // shows the others.
    tmux.keys(&["5"]);
    let screen = tmux.wait_for("the clickstream's panels", Duration::from_secs(60), |s| {
        s.contains("Events by event_type") && s.contains("purchase") && s.contains("Users")
    });
    assert!(!screen.contains("error"), "{screen}");
    tmux.keys(&["Escape"]);
    tmux.wait_for("the demo's dashboards", Duration::from_secs(20), |s| {
        s.contains("demo-clickstream") && s.contains("demo-pipeline")
    });

    // One key in the Schema view deploys the template that fits the table, and opens it.
    tmux.keys(&["3"]);
    tmux.wait_for(
        "the dashboards that fit demo.events",
        Duration::from_secs(60),
        |s| s.contains("demo.events") && s.contains("D deploys"),
    );
    tmux.keys(&["D"]);
    let screen = tmux.wait_for(
        "the deployed dashboard's data",
        Duration::from_secs(60),
        |s| s.contains("deployed:") && s.contains("— demo.events") && s.contains("purchase"),
    );
    assert!(screen.contains("deployed:"), "{screen}");
    tmux.keys(&["2"]);

    // Pipelines run, so quitting asks first.
    tmux.keys(&["q"]);
    tmux.wait_for("the quit question", Duration::from_secs(10), |s| {
        s.contains("Quit?")
    });
    tmux.keys(&["y"]);
    assert_exited_and_restored(&tmux);
    // The question is in the saved history, in the test's data directory.
    let history = std::fs::read_to_string(data.path().join("aurora/history.json"))
        .expect("the workspace saved its history");
    assert!(history.contains("How many events are there?"), "{history}");
}

#[test]
fn sighup_and_sigterm_leave_the_terminal_restored() {
    // Each signal at a few moments of the model's loading, which starts with the workspace:
    // the process must not exit while llama.cpp is still reading the model (its static
    // tables are destroyed on exit), so every run ends with status 0.
    let rounds = ["HUP", "TERM"]
        .into_iter()
        .flat_map(|signal| [0, 40, 120, 300].map(|delay_ms| (signal, delay_ms)));
    for (signal, delay_ms) in rounds {
        let data = tempfile::tempdir().expect("a data directory");
        let name = format!("{signal}{delay_ms}");
        let tmux = Tmux::start(&name, &aurora_in_shell("", data.path()), 100, 30);
        tmux.wait_for("the workspace", Duration::from_secs(60), |s| {
            s.contains("Ask a question")
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        // The shell's child is aurora, in the foreground as a user would run it.
        let shell = tmux.display("#{pane_pid}");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the shell's children");
        let pid = children.split_whitespace().next().expect("aurora runs");
        let status = Command::new("kill")
            .args([&format!("-{signal}"), pid])
            .status()
            .expect("kill");
        assert!(status.success());
        assert_exited_and_restored(&tmux);
    }
}

#[test]
fn the_workspace_pauses_and_resumes_a_pipeline_of_a_running_daemon() {
    // A daemon with one CSV pipeline, on a port of its own; the workspace finds it through
    // the same config (serve.listen) and its token through the same data directory.
    let dir = tempfile::tempdir().expect("a directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let mut csv = String::from("n\n");
    for n in 0..100 {
        csv.push_str(&format!("{n}\n"));
    }
    std::fs::write(dir.path().join("ticks.csv"), csv).expect("write the CSV");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "clickhouse: {{url: '{}'}}\nserve: {{listen: '127.0.0.1:{port}'}}\npipelines:\n  - name: ticks\n    \
             source: {{csv: {{path: ticks.csv, follow: true}}}}\n    \
             mapping: {{columns: {{n: {{type: UInt32}}}}}}\n    \
             sink: {{table: default.tmux_ticks, create: if_missing, order_by: [n]}}\n",
            common::url()
        ),
    )
    .expect("write the config");
    let data = dir.path().join("data");
    let mut daemon = KillOnDrop(
        Command::new(binary())
            .env("AURORA_CONFIG", &config)
            .env("XDG_DATA_HOME", &data)
            .env_remove("AURORA_SERVE_TOKEN")
            .env_remove("AURORA_CLICKHOUSE_URL")
            .args(["serve", "--state-dir"])
            .arg(dir.path().join("state"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aurora serve"),
    );
    let token_file = data.join("aurora/serve.token");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !token_file.is_file() {
        assert!(Instant::now() < deadline, "the daemon wrote no token");
        std::thread::sleep(Duration::from_millis(100));
    }

    let command = format!(
        "sh -c 'env -u AURORA_LOG -u AURORA_SERVE_TOKEN AURORA_CONFIG={} XDG_DATA_HOME={} \\
         AURORA_MODEL={} TERM=xterm-256color {}; exec sleep 600'",
        config.display(),
        data.display(),
        common::default_model_path().display(),
        binary()
    );
    let tmux = Tmux::start("daemon", &command, 120, 30);
    tmux.wait_for("the workspace", Duration::from_secs(60), |s| {
        s.contains("Ask a question")
    });
    // Tab: the question box has the focus.
    tmux.keys(&["Tab"]);
    let title = format!("Pipelines of aurora serve 127.0.0.1:{port}");
    tmux.wait_for("the daemon's pipeline", Duration::from_secs(30), |s| {
        s.contains(&title)
            && s.lines()
                .any(|l| l.contains("ticks") && l.contains("running"))
    });
    tmux.keys(&["p"]);
    tmux.wait_for("the pause", Duration::from_secs(30), |s| {
        s.contains("pipeline `ticks`: paused")
    });
    tmux.wait_for("the paused state", Duration::from_secs(10), |s| {
        s.lines()
            .any(|l| l.contains("ticks") && l.contains("paused"))
    });
    tmux.keys(&["r"]);
    tmux.wait_for("the resume", Duration::from_secs(30), |s| {
        s.contains("pipeline `ticks`: resumed")
    });
    tmux.wait_for("the running state", Duration::from_secs(10), |s| {
        s.lines()
            .any(|l| l.contains("ticks") && l.contains("running"))
    });
    tmux.keys(&["q"]);
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status();
    let status = daemon.0.wait().expect("the daemon ends");
    assert!(status.success(), "{status}");
}

/// A process that a failing test must not leave running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
