//! The audit log through the binary, against the harness's real ClickHouse: what commands
//! record, that each query's record joins `system.query_log` by its `query_id`, that
//! `aurora audit verify` finds an edited, a removed and a reordered record, and that an action
//! is refused when its record cannot be written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

fn scratch(label: &str) -> PathBuf {
    common::fresh_data_dir(&format!("audit-{label}"))
}

/// A config whose audit log is `log`, plus `extra` lines under `audit:`.
fn config(dir: &Path, log: &Path, extra: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, format!("audit:\n  path: {}\n{extra}", log.display())).unwrap();
    path
}

fn aurora(config: &Path, args: &[&str]) -> Output {
    common::aurora_command()
        .env("AURORA_CONFIG", config)
        .arg("--url")
        .arg(common::url())
        .args(args)
        .output()
        .expect("run aurora")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn records(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_are_recorded_and_join_the_query_log() {
    let dir = scratch("queries");
    let log = dir.join("log").join("audit.jsonl");
    let cfg = config(&dir, &log, "");
    let marker = format!("audit_marker_{}", std::process::id());
    let ok = aurora(
        &cfg,
        &[
            "query",
            &format!("SELECT '{marker}' AS m, number FROM system.numbers LIMIT 3"),
        ],
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let bad = aurora(&cfg, &["query", "SELECT * FROM no_such_table_for_audit"]);
    assert!(!bad.status.success());

    let all = records(&log);
    assert_eq!(all.len(), 2, "{all:#?}");
    let (first, second) = (&all[0], &all[1]);
    assert_eq!(first["action"], "query.run");
    assert_eq!(first["outcome"], "ok");
    assert_eq!(first["resource"], "system.numbers");
    assert_eq!(first["detail"]["rows"], 3);
    assert!(first["detail"]["sql"].as_str().unwrap().contains(&marker));
    assert_eq!(first["seq"], 1);
    assert_eq!(second["seq"], 2);
    assert_eq!(second["outcome"], "error");
    assert_eq!(second["resource"], "no_such_table_for_audit");
    assert!(
        second["detail"]["error"]
            .as_str()
            .unwrap()
            .contains("no_such_table_for_audit"),
        "{second}"
    );
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    assert_eq!(first["actor"]["user"], user.as_str());

    // The record's query_id is the server's: it finds the query in system.query_log.
    let w = common::warehouse().await;
    w.query(
        "SYSTEM FLUSH LOGS",
        &aurora::warehouse::QueryOptions::unrestricted(),
    )
    .await
    .expect("flush logs");
    let query_id = first["detail"]["query_id"].as_str().unwrap();
    let logged = common::scalar(
        &w,
        &format!(
            "SELECT any(query) FROM system.query_log WHERE query_id = '{query_id}' \
             AND toString(type) IN ('2', 'QueryFinish')"
        ),
    )
    .await;
    assert!(
        logged.contains(&marker),
        "query_log has {logged:?} for {query_id}"
    );

    // Read back by the binary.
    let tail = aurora(&cfg, &["audit", "tail", "-n", "1", "--json"]);
    let last: serde_json::Value = serde_json::from_slice(&tail.stdout).unwrap();
    assert_eq!(last["seq"], 2);
    let search = aurora(&cfg, &["audit", "search", "--outcome", "error"]);
    let found = text(&search.stdout);
    assert_eq!(found.lines().count(), 1, "{found}");
    assert!(found.contains("query.run") && found.contains("no_such_table_for_audit"));
    let none = aurora(&cfg, &["audit", "search", "--action", "pipeline"]);
    assert_eq!(text(&none.stdout), "");
    assert!(text(&none.stderr).contains("no records match"));
}

#[test]
fn verify_finds_an_edited_a_removed_and_a_reordered_record() {
    let dir = scratch("verify");
    let log = dir.join("audit.jsonl");
    let cfg = config(&dir, &log, "");
    for i in 0..5 {
        let out = aurora(&cfg, &["query", &format!("SELECT {i}")]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let intact = aurora(&cfg, &["audit", "verify"]);
    assert!(intact.status.success(), "{}", text(&intact.stdout));
    assert!(text(&intact.stdout).starts_with("chain intact: 5 record(s) in 1 file(s); head "));
    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    let check = |body: Vec<String>, expect: &str| {
        std::fs::write(&log, body.join("\n") + "\n").unwrap();
        let out = aurora(&cfg, &["audit", "verify"]);
        let report = text(&out.stdout);
        assert!(!out.status.success(), "{report}");
        assert!(report.contains(expect), "{report}");
        assert!(report.contains("chain BROKEN"), "{report}");
    };
    // Edited: a record's rows changed.
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[1] = edited[1].replace("\"rows\":1", "\"rows\":0");
    assert_ne!(edited[1], lines[1]);
    check(
        edited,
        "audit.jsonl:3: record 3's link does not match the line before it",
    );
    // Removed.
    let mut removed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    removed.remove(3);
    check(
        removed,
        "audit.jsonl:4: record 5 follows record 3: record 4 is missing",
    );
    // Reordered.
    let mut reordered: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    reordered.swap(2, 3);
    check(
        reordered,
        "record 3 follows record 4: records are out of order",
    );

    // Cut from the end: found against a head noted before.
    std::fs::write(&log, &original).unwrap();
    let head = text(&aurora(&cfg, &["audit", "head"]).stdout)
        .trim()
        .to_string();
    assert_eq!(head.len(), 64);
    std::fs::write(&log, lines[..4].join("\n") + "\n").unwrap();
    assert!(aurora(&cfg, &["audit", "verify"]).status.success());
    let cut = aurora(&cfg, &["audit", "verify", "--head", &head]);
    assert!(!cut.status.success());
    assert!(
        text(&cut.stdout).contains("is not in the chain"),
        "{}",
        text(&cut.stdout)
    );
    // JSON report.
    let json = aurora(&cfg, &["audit", "verify", "--json", "--head", &head]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["records"], 4);
    assert_eq!(report["expected_head_found"], false);
}

#[test]
fn an_action_whose_record_cannot_be_written_is_refused() {
    let dir = scratch("refused");
    // A directory where the log file should be: nothing can be appended to it.
    let log = dir.join("audit.jsonl");
    std::fs::create_dir_all(&log).unwrap();
    let cfg = config(&dir, &log, "");
    let marker = format!("refused_marker_{}", std::process::id());
    let out = aurora(&cfg, &["query", &format!("SELECT '{marker}'")]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cannot write the audit log"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!text(&out.stdout).contains(&marker));
    // Reads may go on when configured so, with a warning.
    let lenient = config(&dir, &log, "  allow_reads_unrecorded: true\n");
    let out = aurora(&lenient, &["-v", "query", &format!("SELECT '{marker}'")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&marker));
    assert!(
        text(&out.stderr).contains("unrecorded"),
        "{}",
        text(&out.stderr)
    );
    // Changes never do.
    let write = aurora(
        &lenient,
        &[
            "query",
            "--write",
            "CREATE TABLE IF NOT EXISTS default.audit_refused (x UInt8) ENGINE = Memory",
        ],
    );
    assert!(!write.status.success());
    assert!(text(&write.stderr).contains("cannot write the audit log"));
}

#[test]
fn queries_can_be_recorded_by_hash_only() {
    let dir = scratch("hash");
    let log = dir.join("audit.jsonl");
    let cfg = config(&dir, &log, "  sql: hash\n");
    let secret = format!("very_private_{}", std::process::id());
    let out = aurora(&cfg, &["query", &format!("SELECT '{secret}'")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = std::fs::read_to_string(&log).unwrap();
    assert!(!body.contains(&secret), "{body}");
    let record: serde_json::Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(record["detail"]["sql_sha256"].as_str().unwrap().len(), 64);
}

/// Records also go to a real syslog server (rsyslog on loopback), over UDP and over TCP: the
/// text it keeps is each record's line exactly, so its copy verifies as a chain too.
#[tokio::test(flavor = "multi_thread")]
async fn records_also_reach_a_real_syslog_server_over_udp_and_tcp() {
    let rsyslog = common::syslog::Rsyslog::start();
    let dir = scratch("syslog");
    let log = dir.join("log").join("audit.jsonl");
    for (protocol, port) in [("udp", rsyslog.udp), ("tcp", rsyslog.tcp)] {
        let cfg = config(
            &dir,
            &log,
            &format!("  syslog: {{address: \"127.0.0.1:{port}\", protocol: {protocol}}}\n"),
        );
        for n in 0..2 {
            let out = aurora(&cfg, &["query", &format!("SELECT {n} AS {protocol}_{n}")]);
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let denied = aurora(&cfg, &["query", "SELECT * FROM no_such_table_for_syslog"]);
        assert!(!denied.status.success());
    }
    let file: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(file.len(), 6);
    let received = rsyslog.messages(file.len());
    assert_eq!(received, file, "syslog kept other text than the file");
    // The copy is a chain of its own that verifies.
    let copy = dir.join("from-syslog.jsonl");
    std::fs::write(&copy, received.join("\n") + "\n").unwrap();
    let verify = common::aurora_command()
        .args(["audit", "verify", "--path"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stdout));

    // An address that is not one is refused where it is written.
    let bad = config(&dir, &log, "  syslog: {address: nowhere, protocol: tcp}\n");
    let out = common::aurora_command()
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(
        all.contains("audit.syslog.address: `nowhere` is not HOST:PORT"),
        "{all}"
    );
}
