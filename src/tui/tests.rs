//! State tests (messages into `update`, assertions on the state and commands) and whole-screen
//! snapshots (`TestBackend` at 80×24 and 120×40, fixed clock, fixture data).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::app::{
    update, AnswerReport, AskFocus, Command, JobOutput, ModelStatus, Msg, Phase, State, View,
};
use super::fixtures;
use super::history::{History, HistoryEntry, Outcome};
use super::keymap::Keymap;
use super::theme::{ColorDepth, Theme};
use super::ui;
use crate::assistant::suggest::Suggestion;
use crate::ingest::engine::{PipelineState, PipelineStatus};
use crate::ingest::supervisor::{PipelineControl, PipelineSnapshot};
use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};
use crate::warehouse::value::Value;

/// 2026-11-24 14:05:09 UTC.
const NOW_MS: u64 = 1_795_961_109_000;

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typed(state: &mut State, text: &str) {
    for c in text.chars() {
        update(state, key(KeyCode::Char(c)));
    }
}

fn state() -> State {
    let mut state = State::new(
        Theme::dark(ColorDepth::TrueColor),
        Keymap::default(),
        "private 127.0.0.1:38211".into(),
        "18.16.1".into(),
    );
    state.model = ModelStatus::Ready("qwen2.5-coder-0.5b-instruct-q4_k_m".into());
    update(&mut state, Msg::Tick { now: NOW_MS });
    state
}

fn column(name: &str, type_name: &str, comment: &str, sorting: bool) -> ColumnInfo {
    ColumnInfo {
        in_partition_key: name == "event_time",
        in_sorting_key: sorting,
        in_primary_key: sorting,
        ..crate::assistant::linking::tests::column(name, type_name, comment)
    }
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema {
        databases: vec!["demo".into()],
        tables: vec![
            TableInfo {
                database: "demo".into(),
                name: "events".into(),
                engine: "MergeTree".into(),
                partition_key: "toYYYYMMDD(event_time)".into(),
                sorting_key: "event_type, event_time".into(),
                primary_key: "event_type, event_time".into(),
                total_rows: 52_113,
                total_bytes: 1_234_567,
                columns: vec![
                    column(
                        "event_time",
                        "DateTime",
                        "when the event happened (UTC)",
                        true,
                    ),
                    column(
                        "event_type",
                        "LowCardinality(String)",
                        "page_view, add_to_cart or purchase",
                        true,
                    ),
                    column(
                        "country",
                        "LowCardinality(String)",
                        "ISO country code",
                        false,
                    ),
                    column("revenue", "Decimal(10, 2)", "purchase amount in EUR", false),
                ],
            },
            TableInfo {
                database: "demo".into(),
                name: "products".into(),
                engine: "MergeTree".into(),
                partition_key: String::new(),
                sorting_key: "product_id".into(),
                primary_key: "product_id".into(),
                total_rows: 40,
                total_bytes: 2_048,
                columns: vec![
                    column("product_id", "String", "product code", true),
                    column("name", "String", "product name", false),
                ],
            },
        ],
    })
}

fn suggestions() -> Vec<Suggestion> {
    vec![
        Suggestion {
            table: "demo.events".into(),
            question: "How many events per minute over the last hour?".into(),
            sql: "SELECT toStartOfMinute(event_time) AS minute, count() FROM demo.events GROUP BY minute ORDER BY minute".into(),
        },
        Suggestion {
            table: "demo.events".into(),
            question: "Top 10 values of country".into(),
            sql: "SELECT country, count() AS n FROM demo.events GROUP BY country ORDER BY n DESC LIMIT 10".into(),
        },
    ]
}

fn snapshots() -> Vec<PipelineSnapshot> {
    let running = PipelineStatus {
        name: "demo-clickstream".into(),
        state: PipelineState::Running,
        rows_written: 48_210,
        bytes_written: 9_876_543,
        dead_lettered: 41,
        batches: 97,
        last_batch_rows: 512,
        last_batch_latency: Some(Duration::from_millis(38)),
        lag: BTreeMap::from([
            ("kafka:clickstream:0".to_string(), 12),
            ("kafka:clickstream:1".to_string(), 3),
        ]),
        rows_per_sec: 231.4,
        updated_at: NOW_MS / 1000,
        ..PipelineStatus::default()
    };
    let paused = PipelineStatus {
        name: "orders-csv".into(),
        state: PipelineState::Stopped,
        rows_written: 1_000,
        updated_at: NOW_MS / 1000,
        ..PipelineStatus::default()
    };
    vec![
        PipelineSnapshot {
            status: running,
            recent_errors: vec![(
                NOW_MS / 1000 - 60,
                "row 17: `revenue`: cannot read `abc` as Decimal(10, 2)".into(),
            )],
            controllable: true,
            paused: false,
        },
        PipelineSnapshot {
            status: paused,
            recent_errors: Vec::new(),
            controllable: true,
            paused: true,
        },
    ]
}

fn history() -> History {
    let mut history = History::default();
    history.push(HistoryEntry {
        question: Some("How many purchases per country?".into()),
        sql: "SELECT country, countIf(event_type = 'purchase') AS purchases FROM demo.events GROUP BY country".into(),
        outcome: Outcome::Rows { rows: 12, elapsed_ms: 8 },
        at: NOW_MS / 1000 - 600,
        favourite: true,
    });
    history.push(HistoryEntry {
        question: None,
        sql: "SELECT * FROM demo.nope".into(),
        outcome: Outcome::Failed("Code: 60. Table demo.nope doesn't exist".into()),
        at: NOW_MS / 1000 - 300,
        favourite: false,
    });
    history
}

/// A workspace with every view filled.
fn full_state() -> State {
    let mut state = state();
    update(&mut state, Msg::Schema(Ok((schema(), suggestions()))));
    // Ninety seconds of pipeline snapshots, one sparkline sample per second.
    for i in 0..90u64 {
        let mut snapshots = snapshots();
        snapshots[0].status.rows_per_sec = 150.0 + ((i * 37) % 120) as f64;
        update(&mut state, Msg::Pipelines(snapshots));
        update(
            &mut state,
            Msg::Tick {
                now: NOW_MS - (89 - i) * 1000,
            },
        );
    }
    state.set_history(history());
    state
}

fn answer(state: &mut State, question: &str) {
    typed(state, question);
    let commands = update(state, key(KeyCode::Enter));
    let Some(Command::Ask { job, .. }) = commands.last().cloned() else {
        panic!("expected an Ask command, got {commands:?}");
    };
    for piece in [" toStartOfHour(event_time) AS hour,", " count() AS events"] {
        update(state, Msg::Job(job, JobOutput::Token(piece.into())));
    }
    let sql = "SELECT toStartOfHour(event_time) AS hour, count() AS events, sum(revenue) AS revenue FROM demo.events GROUP BY hour ORDER BY hour";
    update(
        state,
        Msg::Job(
            job,
            JobOutput::Answer(Ok(AnswerReport {
                sql: Some(sql.into()),
                failure: None,
                attempts: vec![super::app::AttemptLine {
                    sql: sql.into(),
                    error: None,
                    ..Default::default()
                }],
                result: Some(fixtures::hourly()),
                generation: Duration::from_millis(1400),
                unsure: Vec::new(),
            })),
        ),
    );
}

fn render(state: &State, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, state)).unwrap();
    terminal
}

#[test]
fn a_question_streams_sql_then_shows_rows_and_is_remembered() {
    let mut state = full_state();
    assert_eq!(state.ask.focus, AskFocus::Question);
    typed(&mut state, "events per hour");
    let commands = update(&mut state, key(KeyCode::Enter));
    let Some(Command::Ask {
        job,
        question,
        conversation,
    }) = commands.last().cloned()
    else {
        panic!("{commands:?}");
    };
    assert_eq!(question, "events per hour");
    assert_eq!(conversation, None);
    assert!(matches!(
        state.ask.phase,
        Phase::Generating { attempt: 1, .. }
    ));
    update(
        &mut state,
        Msg::Job(job, JobOutput::Token(" count()".into())),
    );
    assert_eq!(state.ask.sql.lines().join("\n"), "SELECT count()");
    // A retry starts the SQL afresh and counts the attempt.
    let retry = format!(
        "{}Unknown column `cnt`",
        crate::assistant::ask::ATTEMPT_SEPARATOR
    );
    update(&mut state, Msg::Job(job, JobOutput::Token(retry)));
    assert!(matches!(
        state.ask.phase,
        Phase::Generating { attempt: 2, .. }
    ));
    assert_eq!(
        state.ask.retry_reason.as_deref(),
        Some("Unknown column `cnt`")
    );
    let screen = render(&state, 120, 40).backend().to_string();
    assert!(
        screen.contains("attempt 1 refused: Unknown column `cnt`"),
        "{screen}"
    );
    assert_eq!(state.ask.sql.lines().join("\n"), "SELECT");
    // Output of an older job is dropped.
    update(
        &mut state,
        Msg::Job(job + 100, JobOutput::Token(" stale".into())),
    );
    assert_eq!(state.ask.sql.lines().join("\n"), "SELECT");

    let mut state = full_state();
    answer(&mut state, "events per hour");
    assert_eq!(state.ask.phase, Phase::Done);
    assert_eq!(
        state.ask.result.as_ref().map(|r| r.visible_rows()),
        Some(24)
    );
    assert!(state.ask.chart.is_some(), "an hourly result is a series");
    assert_eq!(state.ask.focus, AskFocus::Result);
    let newest = state.history.history.entries.last().unwrap();
    assert_eq!(newest.question.as_deref(), Some("events per hour"));
    assert_eq!(
        newest.outcome,
        Outcome::Rows {
            rows: 24,
            elapsed_ms: 12
        }
    );
    // The next question refines this one, until the conversation is cleared.
    update(&mut state, key(KeyCode::Char('i')));
    typed(&mut state, "only DE");
    let commands = update(&mut state, key(KeyCode::Enter));
    let Some(Command::Ask {
        conversation: Some(c),
        ..
    }) = commands.last()
    else {
        panic!("{commands:?}");
    };
    assert_eq!(
        c.last().map(|t| t.question.as_str()),
        Some("events per hour")
    );
    update(&mut state, ctrl('l'));
    assert!(state.ask.conversation.turns.is_empty());
}

#[test]
fn a_new_question_cancels_the_running_one() {
    let mut state = full_state();
    typed(&mut state, "first");
    let Some(Command::Ask { job: first, .. }) = update(&mut state, key(KeyCode::Enter)).pop()
    else {
        panic!()
    };
    typed(&mut state, "second");
    let commands = update(&mut state, key(KeyCode::Enter));
    assert_eq!(commands.first(), Some(&Command::Cancel(first)));
    assert!(matches!(commands.last(), Some(Command::Ask { question, .. }) if question == "second"));
    // Esc cancels the current one too.
    let Some(Command::Ask { job: second, .. }) = commands.last().cloned() else {
        panic!()
    };
    assert_eq!(
        update(&mut state, key(KeyCode::Esc)),
        vec![Command::Cancel(second)]
    );
    assert_eq!(state.ask.phase, Phase::Failed("cancelled".into()));
}

#[test]
fn sql_typed_in_the_question_box_runs_as_written_and_edits_run_as_written() {
    let mut state = full_state();
    typed(&mut state, "SELECT 1");
    let commands = update(&mut state, key(KeyCode::Enter));
    assert!(
        matches!(&commands[..], [Command::RunSql { sql, .. }] if sql == "SELECT 1"),
        "{commands:?}"
    );
    // In the result pane, `e` edits the SQL; Enter runs the edited text.
    update(&mut state, key(KeyCode::Esc));
    update(&mut state, key(KeyCode::Char('e')));
    assert_eq!(state.ask.focus, AskFocus::Sql);
    typed(&mut state, "0");
    assert!(state.ask.sql_edited);
    let commands = update(&mut state, key(KeyCode::Enter));
    assert!(
        matches!(&commands[..], [_, Command::RunSql { sql, .. }] | [Command::RunSql { sql, .. }] if sql == "SELECT 10"),
        "{commands:?}"
    );
    // Ctrl-E hands the SQL to the editor, and what comes back replaces it.
    let commands = update(&mut state, ctrl('e'));
    assert_eq!(commands, vec![Command::OpenEditor("SELECT 10".into())]);
    update(&mut state, Msg::EditorClosed(Ok("SELECT 2\n".into())));
    assert_eq!(state.ask.sql.lines().join("\n"), "SELECT 2");
}

/// The SQL box offers the names that complete the word being typed: tables after `FROM`,
/// then the named table's columns and the server's functions; ↓ chooses, Tab inserts, Esc
/// closes, and Tab without the list still switches views.
#[test]
fn the_sql_box_completes_names_as_they_are_typed() {
    let mut state = full_state();
    update(
        &mut state,
        Msg::Functions(vec!["count".into(), "COUNT".into(), "countIf".into()]),
    );
    typed(&mut state, "SELECT 1");
    update(&mut state, key(KeyCode::Enter));
    update(&mut state, key(KeyCode::Esc));
    update(&mut state, key(KeyCode::Char('e')));
    assert_eq!(state.ask.focus, AskFocus::Sql);
    update(&mut state, key(KeyCode::Backspace));
    assert_eq!(
        state.ask.completion, None,
        "nothing to complete after `SELECT `"
    );
    typed(&mut state, "count() FROM demo.ev");
    let names = |state: &State| -> Vec<String> {
        let c = state.ask.completion.as_ref().expect("a completion list");
        c.items.iter().map(|i| i.text.clone()).collect()
    };
    assert_eq!(names(&state), ["events"]);
    let screen = render(&state, 120, 40).backend().to_string();
    assert!(screen.contains("Tab inserts"), "{screen}");
    update(&mut state, key(KeyCode::Tab));
    assert_eq!(state.view, View::Ask, "Tab took the name");
    assert_eq!(
        state.ask.sql.lines().join("\n"),
        "SELECT count() FROM demo.events"
    );
    assert_eq!(state.ask.completion, None);
    typed(&mut state, " WHERE co");
    assert_eq!(names(&state), ["country", "count", "countIf"]);
    update(&mut state, key(KeyCode::Down));
    update(&mut state, key(KeyCode::Tab));
    assert_eq!(
        state.ask.sql.lines().join("\n"),
        "SELECT count() FROM demo.events WHERE count"
    );
    typed(&mut state, "I");
    assert_eq!(names(&state), ["countIf"]);
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(state.ask.completion, None);
    assert_eq!(state.ask.focus, AskFocus::Sql, "Esc closed only the list");
    update(&mut state, key(KeyCode::Tab));
    assert_ne!(state.view, View::Ask, "without the list Tab switches views");
}

/// `a` keeps a right answer as an example: the model's query, or the user's correction of
/// it (edited and run), under the question it answers; from History, an entry that answered
/// a question and returned rows. Nothing to keep is said, not done.
#[test]
fn a_confirmed_answer_or_its_correction_is_kept_as_an_example() {
    let mut state = full_state();
    update(&mut state, key(KeyCode::Esc));
    assert!(update(&mut state, key(KeyCode::Char('a'))).is_empty());
    update(&mut state, key(KeyCode::Char('i')));
    answer(&mut state, "events per hour");
    let keep = |state: &mut State| update(state, key(KeyCode::Char('a')));
    let sql = "SELECT toStartOfHour(event_time) AS hour, count() AS events, sum(revenue) AS revenue FROM demo.events GROUP BY hour ORDER BY hour";
    assert_eq!(
        keep(&mut state),
        [Command::KeepExample {
            question: "events per hour".into(),
            sql: sql.into()
        }]
    );
    // Corrected by hand and run: the correction is kept for the same question.
    update(&mut state, key(KeyCode::Char('e')));
    for _ in 0.." ORDER BY hour".len() {
        update(&mut state, key(KeyCode::Backspace));
    }
    let commands = update(&mut state, key(KeyCode::Enter));
    let Some(Command::RunSql {
        job,
        sql: corrected,
    }) = commands.last().cloned()
    else {
        panic!("{commands:?}");
    };
    update(
        &mut state,
        Msg::Job(job, JobOutput::Query(Ok(fixtures::hourly()))),
    );
    assert_eq!(
        keep(&mut state),
        [Command::KeepExample {
            question: "events per hour".into(),
            sql: corrected
        }]
    );
    update(
        &mut state,
        Msg::Kept(Ok("/data/assistant-history.jsonl".into())),
    );
    let screen = render(&state, 120, 40).backend().to_string();
    assert!(screen.contains("kept as an example"), "{screen}");
    // From History: the answered question, not a failed query.
    update(&mut state, key(KeyCode::Char('4')));
    let entry = |state: &State, question: Option<&str>, failed: bool| {
        state.history.listed.iter().position(|&i| {
            let e = &state.history.history.entries[i];
            e.question.as_deref() == question && matches!(e.outcome, Outcome::Failed(_)) == failed
        })
    };
    // The correction's own entry is the user's query (no question); the answer's has one.
    state.history.selected = entry(&state, None, false).expect("the corrected query");
    assert!(update(&mut state, key(KeyCode::Char('a'))).is_empty());
    state.history.selected = entry(&state, Some("events per hour"), false).expect("the answer");
    let kept = update(&mut state, key(KeyCode::Char('a')));
    let failed = state
        .history
        .listed
        .iter()
        .position(|&i| matches!(state.history.history.entries[i].outcome, Outcome::Failed(_)));
    assert!(
        matches!(&kept[..], [Command::KeepExample { question, .. }] if question == "events per hour"),
        "{kept:?}"
    );
    state.history.selected = failed.expect("a failed entry");
    assert!(update(&mut state, key(KeyCode::Char('a'))).is_empty());
}

#[test]
fn question_history_walks_with_up_and_down() {
    let mut state = full_state();
    for q in ["one", "two"] {
        typed(&mut state, q);
        update(&mut state, key(KeyCode::Enter));
        assert_eq!(
            state.ask.focus,
            AskFocus::Question,
            "the box stays open while answering"
        );
    }
    update(&mut state, key(KeyCode::Up));
    assert_eq!(state.ask.question.lines().join(""), "two");
    update(&mut state, key(KeyCode::Up));
    assert_eq!(state.ask.question.lines().join(""), "one");
    update(&mut state, key(KeyCode::Up));
    update(&mut state, key(KeyCode::Up));
    // The saved history comes before this session's questions, and the walk stops there.
    assert_eq!(
        state.ask.question.lines().join(""),
        "How many purchases per country?"
    );
    for _ in 0..3 {
        update(&mut state, key(KeyCode::Down));
    }
    assert_eq!(
        state.ask.question.lines().join(""),
        "",
        "past the newest is empty"
    );
}

#[test]
fn views_switch_by_number_and_tab_and_keys_type_in_boxes() {
    let mut state = full_state();
    // In the question box, `2` is a character…
    typed(&mut state, "2");
    assert_eq!(state.view, View::Ask);
    // …Tab switches views anywhere, and number keys once out of the box.
    update(&mut state, key(KeyCode::Tab));
    assert_eq!(state.view, View::Pipelines);
    update(&mut state, key(KeyCode::Char('4')));
    assert_eq!(state.view, View::History);
    update(
        &mut state,
        Msg::Key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
    );
    assert_eq!(state.view, View::Schema);
    update(&mut state, key(KeyCode::Char('?')));
    assert!(state.help);
    update(&mut state, key(KeyCode::Char('x')));
    assert!(!state.help, "any key closes the help");
}

#[test]
fn quitting_asks_while_pipelines_run() {
    let mut state = full_state();
    update(&mut state, key(KeyCode::Tab));
    assert!(update(&mut state, key(KeyCode::Char('q'))).is_empty());
    assert!(state.confirm_quit);
    update(&mut state, key(KeyCode::Char('n')));
    assert!(!state.confirm_quit && !state.quitting);
    update(&mut state, ctrl('c'));
    assert_eq!(
        update(&mut state, key(KeyCode::Char('y'))),
        vec![Command::Quit]
    );
    assert!(state.quitting);
    // Without running pipelines, q quits at once; SIGTERM always does.
    let mut state = state_without_pipelines();
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(
        update(&mut state, key(KeyCode::Char('q'))),
        vec![Command::Quit]
    );
    let mut state = full_state();
    assert_eq!(update(&mut state, Msg::Terminate), vec![Command::Quit]);
}

#[test]
fn a_daemons_pipelines_keep_running_when_the_workspace_quits() {
    // The same running pipelines, but in `aurora serve`: quitting does not stop them, so it
    // does not ask.
    let mut state = full_state();
    state.pipelines.daemon = Some("http://127.0.0.1:9464".into());
    assert!(state.pipelines.rows.iter().any(|r| r.snapshot.is_running()));
    update(&mut state, key(KeyCode::Tab));
    assert_eq!(
        update(&mut state, key(KeyCode::Char('q'))),
        vec![Command::Quit]
    );
}

#[test]
fn a_daemon_that_stops_answering_is_said_once_and_its_return_too() {
    let mut state = full_state();
    state.pipelines.daemon = Some("http://127.0.0.1:9464".into());
    update(
        &mut state,
        Msg::DaemonTrouble(Some(
            "the daemon at http://127.0.0.1:9464 cannot be reached".into(),
        )),
    );
    assert!(state
        .notice
        .as_ref()
        .is_some_and(|n| n.text.contains("cannot be reached")));
    update(&mut state, Msg::DaemonTrouble(None));
    assert!(state
        .notice
        .as_ref()
        .is_some_and(|n| n.text.contains("answers again")));
    assert!(state.pipelines.daemon_error.is_none());
}

#[test]
fn firing_alerts_of_the_daemon_show_in_a_bar_until_a_notice_covers_it() {
    use crate::alerts::engine::ActiveAlert;
    let alert = |rule: &str, state: &str| ActiveAlert {
        rule: rule.into(),
        fingerprint: "f".into(),
        state: state.into(),
        labels: Default::default(),
        summary: format!("{rule} is bad"),
        value: 1.0,
        since: "2026-12-07T10:00:00Z".into(),
    };
    assert_eq!(crate::tui::ui::alert_bar(&[alert("lag", "pending")]), None);
    let mut state = full_state();
    state.notice = None;
    update(
        &mut state,
        Msg::Alerts(vec![alert("no_orders", "firing"), alert("lag", "pending")]),
    );
    let screen = render(&state, 120, 40).backend().to_string();
    assert!(
        screen.contains("▲ 1 alert firing: no_orders: no_orders is bad"),
        "{screen}"
    );
    assert!(screen.contains("▲ 1 firing ·"), "{screen}");
}

fn state_without_pipelines() -> State {
    let mut state = state();
    update(&mut state, Msg::Schema(Ok((schema(), suggestions()))));
    state
}

fn notice_text(state: &State) -> String {
    state
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

fn replayed(name: &str, dry_run: bool, report: crate::ingest::replay::ReplayReport) -> Msg {
    Msg::Replayed {
        name: name.into(),
        dry_run,
        result: Ok(report),
    }
}

#[test]
fn d_counts_the_dead_letters_that_pass_then_replays_them() {
    use crate::ingest::replay::ReplayReport;
    let mut state = full_state();
    update(&mut state, key(KeyCode::Tab));
    let dry = Command::ReplayDeadLetters {
        name: "demo-clickstream".into(),
        dry_run: true,
    };
    assert_eq!(
        update(&mut state, key(KeyCode::Char('d'))),
        vec![dry.clone()]
    );
    // One replay at a time.
    assert_eq!(update(&mut state, key(KeyCode::Char('d'))), vec![]);
    let mut failing = std::collections::BTreeMap::new();
    failing.insert("cannot parse \"x\" as UInt64".to_string(), 2);
    let counted = ReplayReport {
        examined: 40,
        passing: 38,
        still_failing: failing.clone(),
        ..ReplayReport::default()
    };
    update(&mut state, replayed("demo-clickstream", true, counted));
    let notice = notice_text(&state);
    assert!(notice.contains("38 of 40 dead letters pass"), "{notice}");
    assert!(notice.contains("press d again"), "{notice}");
    // Pressed again: for real.
    assert_eq!(
        update(&mut state, key(KeyCode::Char('d'))),
        vec![Command::ReplayDeadLetters {
            name: "demo-clickstream".into(),
            dry_run: false,
        }]
    );
    update(
        &mut state,
        replayed(
            "demo-clickstream",
            false,
            ReplayReport {
                examined: 40,
                passing: 38,
                written: 38,
                removed: 38,
                still_failing: failing,
                ..ReplayReport::default()
            },
        ),
    );
    let notice = notice_text(&state);
    assert!(
        notice.contains("replayed 38 dead letters: 38 written, 0 already in the table, 38 removed; 2 still failing (most often: cannot parse"),
        "{notice}"
    );
    // The offer is used up, and moving to another pipeline never inherits one.
    assert_eq!(update(&mut state, key(KeyCode::Char('d'))), vec![dry]);
    update(
        &mut state,
        replayed(
            "demo-clickstream",
            true,
            ReplayReport {
                examined: 3,
                passing: 3,
                ..ReplayReport::default()
            },
        ),
    );
    update(&mut state, key(KeyCode::Char('j')));
    assert_eq!(
        update(&mut state, key(KeyCode::Char('d'))),
        vec![Command::ReplayDeadLetters {
            name: "orders-csv".into(),
            dry_run: true,
        }]
    );
    // A failure is said as it is.
    update(
        &mut state,
        Msg::Replayed {
            name: "orders-csv".into(),
            dry_run: true,
            result: Err("pipeline `orders-csv` has no `dead_letter` table".into()),
        },
    );
    let notice = notice_text(&state);
    assert!(
        notice.contains("replay: pipeline `orders-csv` has no"),
        "{notice}"
    );
}

#[test]
fn pipeline_keys_send_controls_for_the_selected_pipeline() {
    let mut state = full_state();
    update(&mut state, key(KeyCode::Tab));
    assert_eq!(
        update(&mut state, key(KeyCode::Char('p'))),
        vec![Command::ControlPipeline {
            name: "demo-clickstream".into(),
            control: PipelineControl::Pause
        }]
    );
    update(&mut state, key(KeyCode::Char('j')));
    assert_eq!(
        update(&mut state, key(KeyCode::Char('r'))),
        vec![Command::ControlPipeline {
            name: "orders-csv".into(),
            control: PipelineControl::Resume
        }]
    );
    // Rates become the sparkline's history, one sample a second; a paused pipeline's is 0.
    assert_eq!(state.pipelines.rows[0].rates.len(), 90);
    assert_eq!(state.pipelines.rows[1].rates.len(), 90);
    assert!(state.pipelines.rows[1].rates.iter().all(|r| *r == 0));
    let mut later = snapshots();
    later[0].status.rows_per_sec = 400.0;
    update(&mut state, Msg::Pipelines(later));
    update(&mut state, Msg::Tick { now: NOW_MS + 400 });
    assert_eq!(
        state.pipelines.rows[0].rates.len(),
        90,
        "same second: no sample"
    );
    update(&mut state, Msg::Tick { now: NOW_MS + 1000 });
    assert_eq!(state.pipelines.rows[0].rates.back(), Some(&400));
    // Pipelines of other processes are shown but not controlled.
    let mut external = snapshots();
    for s in &mut external {
        s.controllable = false;
    }
    update(&mut state, Msg::Pipelines(external));
    assert!(update(&mut state, key(KeyCode::Char('R'))).is_empty());
    assert!(state
        .notice
        .as_ref()
        .unwrap()
        .text
        .contains("another process"));
}

#[test]
fn schema_filter_and_sample_and_history_rerun() {
    let mut state = full_state();
    update(&mut state, key(KeyCode::Esc));
    update(&mut state, key(KeyCode::Char('3')));
    assert_eq!(state.schema.listed.len(), 2);
    update(&mut state, key(KeyCode::Char('/')));
    typed(&mut state, "prod");
    assert_eq!(state.schema.listed.len(), 1);
    update(&mut state, key(KeyCode::Enter));
    assert_eq!(
        state.selected_table().map(|t| t.name.as_str()),
        Some("products")
    );
    let commands = update(&mut state, key(KeyCode::Enter));
    let [Command::SampleTable {
        job,
        database,
        table,
    }] = &commands[..]
    else {
        panic!("{commands:?}")
    };
    assert_eq!((database.as_str(), table.as_str()), ("demo", "products"));
    let sample = Arc::new(fixtures::result(
        &[("product_id", "String")],
        vec![vec![Value::String("P1".into())]],
    ));
    update(&mut state, Msg::Sample(*job, Ok(sample)));
    assert!(state.schema.sample.is_some());
    update(&mut state, key(KeyCode::Esc));
    update(&mut state, key(KeyCode::Esc));
    assert_eq!(state.schema.listed.len(), 2, "Esc clears the filter");

    update(&mut state, key(KeyCode::Char('4')));
    // Newest first: the failed query, then the favourite.
    update(&mut state, key(KeyCode::Char('j')));
    let commands = update(&mut state, key(KeyCode::Char('f')));
    assert_eq!(commands, vec![Command::SaveHistory]);
    assert!(!state.history.history.entries[0].favourite);
    let commands = update(&mut state, key(KeyCode::Enter));
    assert!(
        matches!(&commands[..], [Command::RunSql { sql, .. }] if sql.contains("countIf")),
        "{commands:?}"
    );
    assert_eq!(state.view, View::Ask);
}

#[test]
fn a_failed_answer_lists_every_attempt() {
    let mut state = full_state();
    typed(&mut state, "revenue by planet");
    let Some(Command::Ask { job, .. }) = update(&mut state, key(KeyCode::Enter)).pop() else {
        panic!()
    };
    update(
        &mut state,
        Msg::Job(
            job,
            JobOutput::Answer(Ok(AnswerReport {
                sql: None,
                failure: Some("no valid SQL after 2 attempts".into()),
                attempts: vec![
                    super::app::AttemptLine {
                        sql: "SELECT planet FROM demo.events".into(),
                        error: Some("unknown column `planet`".into()),
                        ..Default::default()
                    },
                    super::app::AttemptLine {
                        sql: "SELECT plnet FROM demo.events".into(),
                        error: Some("unknown column `plnet`".into()),
                        fixes: vec!["`planet` is not a column: used `plnet`".into()],
                    },
                ],
                result: None,
                generation: Duration::from_millis(900),
                unsure: Vec::new(),
            })),
        ),
    );
    assert_eq!(
        state.ask.phase,
        Phase::Failed("no valid SQL after 2 attempts".into())
    );
    let screen = render(&state, 100, 30).backend().to_string();
    assert!(screen.contains("unknown column `plnet`"), "{screen}");
    assert!(
        screen.contains("fitted: `planet` is not a column: used `plnet`"),
        "{screen}"
    );
    assert!(matches!(
        state.history.history.entries.last().map(|e| &e.outcome),
        Some(Outcome::Failed(_))
    ));
}

#[test]
fn an_answer_says_what_was_fitted_to_the_question() {
    let mut state = full_state();
    answer(&mut state, "events per hour");
    let plain = render(&state, 160, 40).backend().to_string();
    assert!(!plain.contains("fitted to the question"), "{plain}");
    state.ask.attempts[0].fixes = vec!["`hr` is not a column: used `hour`".into()];
    let screen = render(&state, 160, 40).backend().to_string();
    assert!(
        screen.contains(
            "✓ done · SQL written in 1.4 s · fitted to the question: `hr` is not a column"
        ),
        "{screen}"
    );
}

#[test]
fn an_unsure_answer_says_so_before_anything_else() {
    let mut state = full_state();
    answer(&mut state, "events per hour");
    state.ask.unsure = vec!["2 of 4 candidate queries return these rows".into()];
    state.ask.attempts[0].fixes = vec!["`hr` is not a column: used `hour`".into()];
    let screen = render(&state, 200, 40).backend().to_string();
    assert!(
        screen.contains(
            "✓ done · SQL written in 1.4 s · unsure: 2 of 4 candidate queries return these rows · fitted"
        ),
        "{screen}"
    );
}

#[test]
fn tiny_terminals_and_resize_storms_do_not_panic() {
    let mut state = full_state();
    answer(&mut state, "events per hour");
    for (w, h) in [
        (20, 6),
        (1, 1),
        (0, 0),
        (39, 11),
        (40, 12),
        (200, 60),
        (80, 24),
    ] {
        update(&mut state, Msg::Resize(w, h));
        for view in ["1", "2", "3", "4"] {
            update(&mut state, key(KeyCode::Esc));
            update(&mut state, key(KeyCode::Char(view.chars().next().unwrap())));
            render(&state, w, h);
        }
    }
    update(&mut state, Msg::Resize(20, 6));
    let screen = render(&state, 20, 6).backend().to_string();
    assert!(screen.contains("Terminal too"), "{screen}");
}

#[test]
fn a_million_rows_and_odd_cells_render() {
    let mut state = full_state();
    let rows: Vec<Vec<Value>> = (0..1_000_000u64)
        .map(|i| {
            vec![
                Value::UInt(i),
                if i % 7 == 0 {
                    Value::Null
                } else {
                    Value::String("🦀 données 数据".into())
                },
            ]
        })
        .collect();
    let result = Arc::new(fixtures::result(
        &[("n", "UInt64"), ("s", "Nullable(String)")],
        rows,
    ));
    typed(&mut state, "SELECT n, s FROM big");
    let Some(Command::RunSql { job, .. }) = update(&mut state, key(KeyCode::Enter)).pop() else {
        panic!()
    };
    update(&mut state, Msg::Job(job, JobOutput::Query(Ok(result))));
    update(&mut state, key(KeyCode::Char('G')));
    let screen = render(&state, 120, 40).backend().to_string();
    assert!(screen.contains("999999"), "{screen}");
    let long = "x".repeat(10_000) + "\n\ttab";
    let odd = Arc::new(fixtures::result(
        &[("s", "String")],
        vec![vec![Value::String(long.into())]],
    ));
    let job = rerun(&mut state);
    update(&mut state, Msg::Job(job, JobOutput::Query(Ok(odd))));
    render(&state, 80, 24);
    let empty = Arc::new(fixtures::result(&[("s", "String")], Vec::new()));
    let job = rerun(&mut state);
    update(&mut state, Msg::Job(job, JobOutput::Query(Ok(empty))));
    render(&state, 80, 24);
    let job = rerun(&mut state);
    update(
        &mut state,
        Msg::Job(job, JobOutput::Query(Err("Code: 62. Syntax error".into()))),
    );
    let screen = render(&state, 80, 24).backend().to_string();
    assert!(screen.contains("Syntax error"), "{screen}");
}

/// `e` then Enter: runs the SQL box again; returns the job.
fn rerun(state: &mut State) -> super::app::JobId {
    update(state, key(KeyCode::Char('e')));
    match update(state, key(KeyCode::Enter)).pop() {
        Some(Command::RunSql { job, .. }) => job,
        other => panic!("{other:?}"),
    }
}

macro_rules! snapshot_views {
    ($($name:ident: $setup:expr;)*) => {$(
        #[test]
        fn $name() {
            let state = $setup;
            for (w, h) in [(80, 24), (120, 40)] {
                let terminal = render(&state, w, h);
                insta::assert_snapshot!(format!("{}_{w}x{h}", stringify!($name)), terminal.backend());
            }
        }
    )*};
}

snapshot_views! {
    screen_ask_suggestions: {
        let mut s = full_state();
        update(&mut s, key(KeyCode::Esc));
        s
    };
    screen_ask_result: {
        let mut s = full_state();
        answer(&mut s, "events per hour");
        s
    };
    screen_ask_chart: {
        let mut s = full_state();
        answer(&mut s, "events per hour");
        update(&mut s, key(KeyCode::Char('c')));
        s
    };
    screen_pipelines: {
        let mut s = full_state();
        update(&mut s, key(KeyCode::Tab));
        s
    };
    screen_schema: {
        let mut s = full_state();
        update(&mut s, key(KeyCode::Esc));
        update(&mut s, key(KeyCode::Char('3')));
        s
    };
    screen_history: {
        let mut s = full_state();
        update(&mut s, key(KeyCode::Esc));
        update(&mut s, key(KeyCode::Char('4')));
        s
    };
    screen_help: {
        let mut s = full_state();
        update(&mut s, key(KeyCode::Esc));
        update(&mut s, key(KeyCode::Char('?')));
        s
    };
}

#[test]
fn questions_that_start_like_sql_go_to_the_model() {
    use super::app::looks_like_sql;
    for sql in [
        "SELECT 1",
        "select count() from demo.events",
        "WITH 1 AS x SELECT x",
        "SHOW TABLES",
        "DESCRIBE demo.events",
        "SELECT number FROM system.numbers LIMIT 1 BY number",
    ] {
        assert!(looks_like_sql(sql), "{sql}");
    }
    for question in [
        "Show revenue by country",
        "Describe the events table",
        "with returns too",
        "select the top 5 countries by revenue",
        "explain why purchases dropped",
        "How many events?",
    ] {
        assert!(!looks_like_sql(question), "{question}");
    }
}

#[test]
fn hints_follow_the_users_keymap() {
    let mut state = full_state();
    let overrides = BTreeMap::from([("pause_pipeline".to_string(), "z".to_string())]);
    state.keymap = Keymap::new(&overrides).0;
    update(&mut state, key(KeyCode::Tab));
    let screen = render(&state, 120, 40).backend().to_string();
    assert!(screen.contains("z pause"), "{screen}");
    assert_eq!(
        update(&mut state, key(KeyCode::Char('z'))),
        vec![Command::ControlPipeline {
            name: "demo-clickstream".into(),
            control: PipelineControl::Pause
        }]
    );
    assert!(update(&mut state, key(KeyCode::Char('p'))).is_empty());
}

#[test]
fn a_resize_storm_keeps_every_view_drawable() {
    let mut state = full_state();
    answer(&mut state, "events per hour");
    // A deterministic storm: 600 sizes from 0×0 to 250×80, each drawn in every view.
    let mut seed = 0x9E37_79B9_u32;
    for i in 0..600u32 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let (w, h) = ((seed % 251) as u16, ((seed >> 8) % 81) as u16);
        update(&mut state, Msg::Resize(w, h));
        state.view = View::ALL[i as usize % View::ALL.len()];
        update(&mut state, key(KeyCode::Char('G')));
        render(&state, w, h);
    }
}

fn shop_dashboard() -> crate::dashboards::Dashboard {
    crate::dashboards::check::check_str(
        "shop.yaml",
        "\
title: Shop
time: {from: now-24h, to: now}
refresh: 10s
variables:
  - {name: country, type: custom, values: [DE, FR], include_all: true}
panels:
  - title: Events
    type: stat
    grid: {x: 0, y: 0, w: 8, h: 4}
    thresholds: [{value: 1000, color: warning}]
    query: SELECT count() FROM demo.events WHERE $__timeFilter(event_time)
  - title: Revenue
    type: gauge
    grid: {x: 8, y: 0, w: 8, h: 4}
    min: 0
    max: 5000
    query: SELECT sum(revenue) FROM demo.events
  - title: Broken
    type: stat
    grid: {x: 16, y: 0, w: 8, h: 4}
    query: SELECT nope FROM demo.events
  - title: Events per hour
    type: timeseries
    grid: {x: 0, y: 4, w: 16, h: 8}
    query: SELECT $__timeInterval(event_time) AS t, count() FROM demo.events WHERE $__conditionalAll(country IN (${country:singlequote}), $country) GROUP BY t
  - title: By country
    type: table
    grid: {x: 16, y: 4, w: 8, h: 8}
    query: SELECT country, count() AS events FROM demo.events GROUP BY country
",
    )
    .unwrap()
}

/// Opens the shop dashboard and answers every panel: data, one server error.
fn open_dashboard(state: &mut State) -> Vec<(super::app::JobId, String)> {
    update(
        state,
        Msg::Dashboards(vec![("shop".into(), shop_dashboard())], Vec::new()),
    );
    // Out of the question box, where digits are typed.
    state.ask.focus = AskFocus::Result;
    update(state, key(KeyCode::Char('5')));
    let commands = update(state, key(KeyCode::Enter));
    commands
        .into_iter()
        .filter_map(|c| match c {
            Command::RunDashboardQuery { job, sql } => Some((job, sql)),
            _ => None,
        })
        .collect()
}

fn answer_panels(state: &mut State, runs: &[(super::app::JobId, String)]) {
    for (job, sql) in runs {
        let result = if sql.contains("nope") {
            Err("ClickHouse error 47: Unknown identifier: nope".to_string())
        } else if sql.contains("sum(revenue)") {
            Ok(Arc::new(fixtures::result(
                &[("revenue", "Float64")],
                vec![vec![Value::Float(3120.5)]],
            )))
        } else if sql.contains("count() FROM") && !sql.contains("GROUP BY") {
            Ok(Arc::new(fixtures::result(
                &[("events", "UInt64")],
                vec![vec![Value::UInt(1520)], vec![Value::UInt(1310)]],
            )))
        } else if sql.contains("GROUP BY country") {
            Ok(Arc::new(fixtures::result(
                &[("country", "String"), ("events", "UInt64")],
                vec![
                    vec![Value::String("DE".into()), Value::UInt(700)],
                    vec![Value::String("FR".into()), Value::UInt(500)],
                ],
            )))
        } else {
            Ok(fixtures::hourly())
        };
        update(
            state,
            Msg::DashboardQuery {
                job: *job,
                sql: sql.clone(),
                result,
            },
        );
    }
}

fn runs_in(commands: &[Command]) -> Vec<(super::app::JobId, String)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::RunDashboardQuery { job, sql } => Some((*job, sql.clone())),
            _ => None,
        })
        .collect()
}

fn cancels_in(commands: &[Command]) -> usize {
    commands
        .iter()
        .filter(|c| matches!(c, Command::Cancel(_)))
        .count()
}

#[test]
fn a_dashboard_refreshes_its_panels_latest_wins_and_leaving_cancels() {
    let mut state = state();
    let runs = open_dashboard(&mut state);
    assert_eq!(runs.len(), 5, "every panel starts at once: {runs:?}");
    assert!(runs.iter().all(|(_, sql)| !sql.contains("$__")), "{runs:?}");
    assert!(
        runs[3].1.contains("1=1"),
        "All drops the filter: {}",
        runs[3].1
    );
    assert!(runs_in(&update(
        &mut state,
        Msg::Tick {
            now: NOW_MS + 5_000
        }
    ))
    .is_empty());
    answer_panels(&mut state, &runs);
    let open = state.dashboards.open.as_ref().unwrap();
    assert!(open.panels[2]
        .error
        .as_deref()
        .unwrap()
        .contains("Unknown identifier"));
    assert!(open
        .panels
        .iter()
        .enumerate()
        .all(|(i, p)| i == 2 || p.data.is_some()));
    // Ten seconds after they started, every panel is due again…
    let again = runs_in(&update(
        &mut state,
        Msg::Tick {
            now: NOW_MS + 11_000,
        },
    ));
    assert_eq!(again.len(), 5, "{again:?}");
    // …and a query still running is never stacked, however long it takes.
    assert!(runs_in(&update(
        &mut state,
        Msg::Tick {
            now: NOW_MS + 40_000
        }
    ))
    .is_empty());
    // A new variable value cancels what runs and asks again with the filter.
    let commands = update(&mut state, key(KeyCode::Char(']')));
    assert_eq!(cancels_in(&commands), 5, "{commands:?}");
    let filtered = runs_in(&commands)
        .into_iter()
        .find(|(_, sql)| sql.contains("country IN"))
        .unwrap();
    assert!(filtered.1.contains("country IN ('DE')"), "{}", filtered.1);
    // A late answer of a cancelled query is dropped.
    let before = state.dashboards.open.as_ref().unwrap().panels[0].updated_at;
    update(
        &mut state,
        Msg::Tick {
            now: NOW_MS + 41_000,
        },
    );
    answer_panels(&mut state, &again);
    assert_eq!(
        state.dashboards.open.as_ref().unwrap().panels[0].updated_at,
        before
    );
    // Leaving the view cancels the dashboard's queries; coming back starts them again.
    let commands = update(&mut state, key(KeyCode::Char('1')));
    assert_eq!(cancels_in(&commands), 5, "{commands:?}");
    let open = state.dashboards.open.as_ref().unwrap();
    assert!(open.panels.iter().all(|p| p.in_flight.is_none()));
    assert_eq!(
        runs_in(&update(&mut state, key(KeyCode::Char('5')))).len(),
        5
    );
    // Esc closes the dashboard and cancels them.
    let commands = update(&mut state, key(KeyCode::Esc));
    assert_eq!(cancels_in(&commands), 5);
    assert!(state.dashboards.open.is_none());
}

#[test]
fn dashboard_keys_zoom_pause_range_and_take_sql_to_ask() {
    let mut state = state();
    let runs = open_dashboard(&mut state);
    answer_panels(&mut state, &runs);
    update(&mut state, key(KeyCode::Char('z')));
    assert!(state.dashboards.open.as_ref().unwrap().zoomed);
    update(&mut state, key(KeyCode::Esc));
    let open = state.dashboards.open.as_ref().unwrap();
    assert!(!open.zoomed, "Esc leaves the zoom first");
    update(&mut state, key(KeyCode::Char('p')));
    assert!(
        update(
            &mut state,
            Msg::Tick {
                now: NOW_MS + 60_000
            }
        )
        .is_empty(),
        "paused"
    );
    let commands = update(&mut state, key(KeyCode::Char('t')));
    assert!(
        commands
            .iter()
            .all(|c| !matches!(c, Command::RunDashboardQuery { .. })),
        "still paused"
    );
    assert_eq!(
        state.dashboards.open.as_ref().unwrap().time_range().from,
        "now-5m"
    );
    let commands = update(&mut state, key(KeyCode::Char('r')));
    assert_eq!(
        commands
            .iter()
            .filter(|c| matches!(c, Command::RunDashboardQuery { .. }))
            .count(),
        5,
        "r refreshes once while paused: {commands:?}"
    );
    update(&mut state, key(KeyCode::Char('l')));
    update(&mut state, key(KeyCode::Char('j')));
    update(&mut state, key(KeyCode::Char('e')));
    assert_eq!(state.view, View::Ask);
    assert_eq!(state.ask.focus, AskFocus::Sql);
    assert!(super::app::looks_like_sql(&state.ask.sql.lines().join(" ")));
}

#[test]
fn screen_dashboards() {
    let mut state = state();
    let runs = open_dashboard(&mut state);
    answer_panels(&mut state, &runs);
    update(
        &mut state,
        Msg::Tick {
            now: NOW_MS + 4_000,
        },
    );
    for (w, h) in [(80, 24), (120, 40)] {
        update(&mut state, Msg::Resize(w, h));
        let screen = render(&state, w, h).backend().to_string();
        insta::assert_snapshot!(format!("screen_dashboards_{w}x{h}"), screen);
    }
    update(&mut state, key(KeyCode::Char('z')));
    let screen = render(&state, 80, 24).backend().to_string();
    assert!(
        screen.contains("Events") && screen.contains("1.5k"),
        "{screen}"
    );
    update(&mut state, key(KeyCode::Esc));
    update(&mut state, key(KeyCode::Esc));
    let screen = render(&state, 80, 24).backend().to_string();
    insta::assert_snapshot!("screen_dashboards_list_80x24", screen);
}

#[test]
fn the_schema_view_lists_fitting_dashboards_and_d_deploys_and_opens_one() {
    let mut state = full_state();
    state.ask.focus = AskFocus::Result;
    let commands = update(&mut state, key(KeyCode::Char('3')));
    let Some(Command::FitDashboards {
        job,
        database,
        table,
    }) = commands
        .iter()
        .find(|c| matches!(c, Command::FitDashboards { .. }))
        .cloned()
    else {
        panic!("no FitDashboards in {commands:?}");
    };
    assert_eq!(format!("{database}.{table}"), "demo.events");
    // Moving to another table cancels the question about the first (latest wins).
    let commands = update(&mut state, key(KeyCode::Char('j')));
    assert!(commands.contains(&Command::Cancel(job)), "{commands:?}");
    let Some(Command::FitDashboards { job, .. }) = commands.last().cloned() else {
        panic!("{commands:?}");
    };
    let fit = crate::dashboards::bind::Fit {
        template: "category-breakdown".into(),
        table: "demo.products".into(),
        score: 40,
        fits: true,
        table_named: None,
        slots: Vec::new(),
        panels: 4,
        panels_total: 5,
    };
    update(
        &mut state,
        Msg::DashboardFits {
            job,
            table: "demo.products".into(),
            result: Ok(vec![fit]),
        },
    );
    let screen = render(&state, 120, 40).backend().to_string();
    assert!(
        screen.contains("category-breakdown 40") && screen.contains("D deploys"),
        "{screen}"
    );
    let commands = update(&mut state, key(KeyCode::Char('D')));
    assert_eq!(
        commands,
        vec![Command::DeployDashboard {
            database: "demo".into(),
            table: "products".into()
        }]
    );
    let commands = update(
        &mut state,
        Msg::Deployed(Ok(Box::new((
            "shop".into(),
            shop_dashboard(),
            "/tmp/shop.yaml".into(),
        )))),
    );
    assert_eq!(state.view, View::Dashboards);
    assert_eq!(state.dashboards.open.as_ref().unwrap().name, "shop");
    assert_eq!(
        commands
            .iter()
            .filter(|c| matches!(c, Command::RunDashboardQuery { .. }))
            .count(),
        5,
        "{commands:?}"
    );
}

#[test]
fn a_dashboard_named_at_start_opens_once_the_list_is_read() {
    let mut state = state();
    state.dashboards.open_at_start = Some("shop".into());
    let commands = update(
        &mut state,
        Msg::Dashboards(vec![("shop".into(), shop_dashboard())], Vec::new()),
    );
    assert_eq!(state.view, View::Dashboards);
    assert_eq!(state.dashboards.open.as_ref().unwrap().name, "shop");
    assert_eq!(runs_in(&commands).len(), 5, "{commands:?}");
}

#[test]
fn the_demos_first_dashboard_opens_on_the_first_visit_only() {
    let mut state = state();
    state.dashboards.open_on_first_visit = Some("shop".into());
    state.ask.focus = AskFocus::Result;
    let commands = update(&mut state, key(KeyCode::Char('5')));
    assert_eq!(commands, vec![Command::LoadDashboards]);
    let commands = update(
        &mut state,
        Msg::Dashboards(vec![("shop".into(), shop_dashboard())], Vec::new()),
    );
    assert_eq!(state.dashboards.open.as_ref().unwrap().name, "shop");
    assert_eq!(runs_in(&commands).len(), 5);
    // Closed, it stays closed on the next visit.
    update(&mut state, key(KeyCode::Esc));
    update(&mut state, key(KeyCode::Char('1')));
    update(&mut state, key(KeyCode::Char('5')));
    assert!(state.dashboards.open.is_none());
}

#[test]
fn aurora_pipelines_in_a_panel_query_are_the_pipelines_the_workspace_sees() {
    let mut state = state();
    update(&mut state, Msg::Pipelines(snapshots()));
    let d = crate::dashboards::check::check_str(
        "p.yaml",
        "title: P\npanels:\n  - {title: R, type: stat, grid: {x: 0, y: 0, w: 6, h: 4}, query: SELECT sum(rows_per_sec) FROM $__aurora_pipelines}\n",
    )
    .unwrap();
    update(
        &mut state,
        Msg::Dashboards(vec![("p".into(), d)], Vec::new()),
    );
    state.ask.focus = AskFocus::Result;
    update(&mut state, key(KeyCode::Char('5')));
    let runs = runs_in(&update(&mut state, key(KeyCode::Enter)));
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0].1.contains("'demo-clickstream' AS name"),
        "{}",
        runs[0].1
    );
    assert!(!runs[0].1.contains("$__"), "{}", runs[0].1);
}

/// Random key sequences (letters, any character, Enter, Esc, Tab, arrows, paging, function
/// keys, with Ctrl, Alt and Shift) on the workspace with a schema, pipelines, history and an
/// answered question, drawn at random sizes down to 1×1 along the way: nothing panics.
/// `AURORA_FUZZ_CASES` sets the number of sequences (default 200).
#[test]
fn random_keys_never_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let codes = prop_oneof![
        any::<char>().prop_map(KeyCode::Char),
        proptest::char::range('0', 'z').prop_map(KeyCode::Char),
        Just(KeyCode::Enter),
        Just(KeyCode::Esc),
        Just(KeyCode::Tab),
        Just(KeyCode::BackTab),
        Just(KeyCode::Backspace),
        Just(KeyCode::Delete),
        Just(KeyCode::Up),
        Just(KeyCode::Down),
        Just(KeyCode::Left),
        Just(KeyCode::Right),
        Just(KeyCode::PageUp),
        Just(KeyCode::PageDown),
        Just(KeyCode::Home),
        Just(KeyCode::End),
        (1u8..13).prop_map(KeyCode::F),
    ];
    let modifiers = prop_oneof![
        4 => Just(KeyModifiers::NONE),
        1 => Just(KeyModifiers::CONTROL),
        1 => Just(KeyModifiers::ALT),
        1 => Just(KeyModifiers::SHIFT),
    ];
    let step = (
        codes,
        modifiers,
        proptest::option::of((1u16..140, 1u16..50)),
    );
    let cases = std::env::var("AURORA_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(step, 1..60), |steps| {
        let mut state = full_state();
        answer(&mut state, "events per hour");
        for (code, modifiers, draw) in steps {
            update(&mut state, Msg::Key(KeyEvent::new(code, modifiers)));
            if let Some((width, height)) = draw {
                render(&state, width, height);
            }
        }
        render(&state, 80, 24);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!("{cases} key sequences: 0 panics");
}
