//! A planted password never comes out: not on stdout or stderr (debug logs included), not in
//! `--json` output, status files, the audit log or config diagnostics, whichever way it was
//! given (flag, file, environment, config file). The harness's server has a passwordless user,
//! so every command below is refused by the server: the password was sent, and the refusal is
//! what must not repeat it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

fn planted() -> String {
    format!("planted-s3cret-{}", std::process::id())
}

fn home(label: &str) -> PathBuf {
    common::fresh_data_dir(&format!("secrets-{label}"))
}

/// `aurora ARGS` with its data directory (audit log, status files, logs) under `dir`.
fn aurora(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = common::aurora_command();
    cmd.env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_STATE_HOME", dir.join("state"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run aurora")
}

/// Every byte a command printed, and every file it left under `dir`.
fn assert_nowhere(secret: &str, dir: &Path, outputs: &[(&str, &Output)]) {
    for (what, o) in outputs {
        for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(secret),
                "{what}: the password is in its {stream}:\n{text}"
            );
        }
    }
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                // The test's own files hold the password on purpose.
                if path.file_name().is_some_and(|n| n != "input") {
                    stack.push(path);
                }
            } else {
                files += 1;
                let bytes = std::fs::read(&path).unwrap_or_default();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "the password is in {}",
                    path.display()
                );
            }
        }
    }
    // The audit log at least was written and read.
    assert!(files > 0, "no files under {}", dir.display());
}

fn refused(o: &Output) {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot log in"), "{err}");
}

#[test]
fn a_password_never_reaches_output_files_or_logs() {
    let secret = planted();
    let dir = home("everywhere");
    let input = dir.join("input");
    std::fs::create_dir_all(&input).unwrap();
    let file = input.join("password");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let file = file.to_str().unwrap();
    let url = common::url();

    let from_file = aurora(
        &dir,
        &["--url", &url, "--password-file", file, "query", "SELECT 1"],
        &[],
    );
    refused(&from_file);
    let debug = aurora(
        &dir,
        &[
            "-vv",
            "--url",
            &url,
            "--password-file",
            file,
            "query",
            "SELECT 1",
            "--format",
            "json",
        ],
        &[],
    );
    refused(&debug);
    let on_command_line = aurora(
        &dir,
        &["--url", &url, "--password", &secret, "query", "SELECT 1"],
        &[],
    );
    refused(&on_command_line);
    let warning = String::from_utf8_lossy(&on_command_line.stderr);
    assert!(warning.contains("can be read by other users"), "{warning}");
    assert!(
        !String::from_utf8_lossy(&from_file.stderr).contains("can be read by other users"),
        "a password from a file is not warned about"
    );
    let from_env = aurora(
        &dir,
        &["--url", &url, "query", "SELECT 1"],
        &[("AURORA_CLICKHOUSE_PASSWORD", &secret)],
    );
    refused(&from_env);

    // In the config file: used, warned about when others can read the file, masked when a
    // diagnostic shows its line.
    let config = input.join("config.yaml");
    std::fs::write(
        &config,
        format!("clickhouse:\n  url: {url}\n  password: {secret}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config_arg = config.to_str().unwrap();
    let in_config = aurora(&dir, &["--config", config_arg, "query", "SELECT 1"], &[]);
    refused(&in_config);
    assert!(
        String::from_utf8_lossy(&in_config.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&in_config.stderr)
    );
    let bad_config = input.join("bad.yaml");
    std::fs::write(
        &bad_config,
        format!("clickhouse:\n  url: {url}\n  password: [{secret}]\n"),
    )
    .unwrap();
    let check = aurora(
        &dir,
        &["config", "check", bad_config.to_str().unwrap()],
        &[],
    );
    assert!(!check.status.success());
    let shown = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(shown.contains("bad.yaml:3:"), "{shown}");
    assert!(shown.contains("password: ***"), "{shown}");

    // A pipeline that cannot log in: its status file and `--json` status.
    let csv = input.join("rows.csv");
    std::fs::write(&csv, "id\n1\n2\n").unwrap();
    let pipeline = input.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "pipelines:\n  - name: leak_check\n    source:\n      csv:\n        path: {}\n    \
             mapping:\n      columns:\n        id: {{type: UInt64}}\n    sink:\n      \
             table: default.leak_check\n      create: if_missing\n      order_by: [id]\n",
            csv.display()
        ),
    )
    .unwrap();
    let state = dir.join("pipelines");
    let state_arg = state.to_str().unwrap();
    let run = aurora(
        &dir,
        &[
            "--url",
            &url,
            "--password-file",
            file,
            "pipeline",
            "run",
            pipeline.to_str().unwrap(),
            "--state-dir",
            state_arg,
            "--json",
        ],
        &[],
    );
    assert!(!run.status.success());
    let status = aurora(
        &dir,
        &["pipeline", "status", "--state-dir", state_arg, "--json"],
        &[],
    );

    let audit = aurora(&dir, &["audit", "tail", "-n", "100", "--json"], &[]);
    let records = String::from_utf8_lossy(&audit.stdout).lines().count();
    assert!(records >= 5, "{records} audit records");
    assert_nowhere(
        &secret,
        &dir,
        &[
            ("--password-file", &from_file),
            ("-vv", &debug),
            ("--password", &on_command_line),
            ("AURORA_CLICKHOUSE_PASSWORD", &from_env),
            ("clickhouse.password", &in_config),
            ("config check", &check),
            ("pipeline run", &run),
            ("pipeline status", &status),
            ("audit tail", &audit),
        ],
    );
}
