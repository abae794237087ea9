use super::*;

fn log_in(dir: &Path, max_file_size: u64) -> AuditLog {
    AuditLog::new(
        dir.join("audit").join("audit.jsonl"),
        max_file_size,
        Actor {
            user: "ana".into(),
            uid: Some(1000),
            via: "os".into(),
            groups: vec![],
        },
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aurora-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_events(log: &AuditLog, n: u64) {
    for i in 0..n {
        log.append(
            Event::new("query.run", "demo.events", Outcome::Ok)
                .with("rows", i)
                .with_sql("sql", &format!("SELECT {i}"), AuditSql::Full),
        )
        .unwrap();
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Five records written, then `tamper` applied to the file's lines; what `verify` says.
fn tampered(name: &str, tamper: impl FnOnce(&mut Vec<String>)) -> Vec<String> {
    let dir = scratch(name);
    let log = log_in(&dir, 1 << 20);
    write_events(&log, 5);
    let mut text = lines(log.path());
    tamper(&mut text);
    std::fs::write(log.path(), text.join("\n") + "\n").unwrap();
    messages(&verify(log.path(), None).unwrap())
}

fn messages(report: &VerifyReport) -> Vec<String> {
    report
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.line, p.message))
        .collect()
}

#[test]
fn records_chain_and_verify() {
    let dir = scratch("chain");
    let log = log_in(&dir, 1 << 20);
    write_events(&log, 5);
    let records = read_all(log.path()).unwrap();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(records[0].prev, GENESIS);
    let text = lines(log.path());
    assert_eq!(records[3].prev, line_hash(text[2].as_bytes()));
    assert_eq!(records[2].detail["sql"], "SELECT 2");
    assert_eq!(records[2].actor.user, "ana");
    let report = verify(log.path(), None).unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.records, 5);
    assert_eq!(
        report.head.as_deref(),
        Some(line_hash(text[4].as_bytes()).as_str())
    );
    // Owner only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(log.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(log.path().parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
}

#[test]
fn an_edited_record_is_found() {
    let found = tampered("edited", |text| {
        text[1] = text[1].replace("\"rows\":1", "\"rows\":1000");
    });
    assert_eq!(
        found,
        [
            "3: record 3's link does not match the line before it (record 2): that line was \
          edited, or lines between them were removed or moved"
        ]
    );
}

#[test]
fn a_removed_record_is_found() {
    let found = tampered("removed", |text| {
        text.remove(2);
    });
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(
        found[0],
        "3: record 4 follows record 2: record 3 is missing"
    );
    assert!(
        found[1].starts_with("3: record 4's link does not match"),
        "{found:?}"
    );
}

#[test]
fn reordered_records_are_found() {
    let found = tampered("reordered", |text| text.swap(1, 2));
    assert!(
        found
            .iter()
            .any(|m| m.contains("record 2 follows record 3: records are out of order")),
        "{found:?}"
    );
    // Every link from the moved lines on is broken.
    assert!(
        found.iter().filter(|m| m.contains("link")).count() >= 2,
        "{found:?}"
    );
}

#[test]
fn the_last_record_cut_off_is_found_only_against_a_noted_head() {
    let dir = scratch("truncated");
    let log = log_in(&dir, 1 << 20);
    write_events(&log, 5);
    let head = verify(log.path(), None).unwrap().head.unwrap();
    let mut text = lines(log.path());
    text.pop();
    std::fs::write(log.path(), text.join("\n") + "\n").unwrap();
    // The chain alone still holds...
    assert!(verify(log.path(), None).unwrap().intact());
    // ...but the noted head is gone.
    let report = verify(log.path(), Some(&head)).unwrap();
    assert_eq!(report.expected_head_found, Some(false));
    assert!(!report.intact());
    // An older head is still there.
    let older = line_hash(text[3].as_bytes());
    assert!(verify(log.path(), Some(&older)).unwrap().intact());
}

#[test]
fn the_chain_goes_on_across_rotated_files() {
    let dir = scratch("rotated");
    // Small files: every few records start a new one.
    let log = log_in(&dir, 600);
    write_events(&log, 12);
    let all = files(log.path()).unwrap();
    assert!(all.len() >= 3, "{all:?}");
    assert_eq!(all.last().unwrap(), log.path());
    let records = read_all(log.path()).unwrap();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    let report = verify(log.path(), None).unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.records, 12);
    // The first record of a later file links to the last line of the one before.
    let second = &all[1];
    let first_lines = lines(&all[0]);
    let second_first: Record = serde_json::from_str(&lines(second)[0]).unwrap();
    assert_eq!(
        second_first.prev,
        line_hash(first_lines.last().unwrap().as_bytes())
    );
    // Removing a whole middle file is found.
    std::fs::remove_file(second).unwrap();
    let found = messages(&verify(log.path(), None).unwrap());
    assert!(found.iter().any(|m| m.contains("missing")), "{found:?}");
}

#[test]
fn a_write_cut_short_is_reported_and_the_chain_goes_on() {
    let dir = scratch("torn");
    let log = log_in(&dir, 1 << 20);
    write_events(&log, 3);
    // A crash in the middle of a write leaves half a line.
    let mut f = OpenOptions::new().append(true).open(log.path()).unwrap();
    f.write_all(br#"{"seq":4,"time":"#).unwrap();
    drop(f);
    let record = log
        .append(Event::new("query.run", "x", Outcome::Ok))
        .unwrap();
    assert_eq!(record.seq, 4);
    let found = messages(&verify(log.path(), None).unwrap());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("4: not an audit record"), "{found:?}");
}

#[test]
fn processes_and_threads_share_one_chain() {
    let dir = scratch("shared");
    let log = log_in(&dir, 4096);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            // Each thread its own handle, as separate processes would have.
            let log = AuditLog::new(log.path().to_path_buf(), 4096, log.actor().clone());
            std::thread::spawn(move || write_events(&log, 25))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = verify(log.path(), None).unwrap();
    assert!(report.intact(), "{:?}", report.problems);
    assert_eq!(report.records, 100);
}

#[test]
fn queries_can_be_recorded_by_hash_only() {
    let event = Event::new("query.run", "t", Outcome::Ok).with_sql(
        "sql",
        "SELECT secret FROM t",
        AuditSql::Hash,
    );
    assert!(!event.detail.contains_key("sql"));
    let hash = event.detail["sql_sha256"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(!serde_json::to_string(&event.detail)
        .unwrap()
        .contains("secret"));
}

#[test]
fn an_unwritable_log_is_an_error_not_a_skip() {
    let dir = scratch("unwritable");
    // A directory where the file should be.
    let path = dir.join("audit.jsonl");
    std::fs::create_dir_all(&path).unwrap();
    let log = AuditLog::new(path, 1 << 20, Actor::os_user());
    assert!(log.check_writable().is_err());
    let err = log
        .append(Event::new("dashboard.deploy", "d", Outcome::Ok))
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot write the audit log"),
        "{err}"
    );
}
