//! Config files as users write them: every file in tests/fixtures/valid must load cleanly with
//! its values in the resulting `Config`, and every file in tests/fixtures/invalid must produce
//! exactly the report stored beside it in `NAME.expected`.
//! `UPDATE_EXPECT=1 cargo test --test config_fixtures` rewrites those goldens; review the diff.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aurora::config::{self, Backend, Config, ConfigError, PipelineRef};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    common::yaml_fixtures(&Path::new("tests/fixtures").join(kind))
}

fn load(path: &Path) -> Config {
    match config::load(Some(path)) {
        Ok(loaded) => {
            assert_eq!(loaded.source.as_deref(), Some(path));
            loaded.config
        }
        Err(e) => panic!("{} should load:\n{e}", path.display()),
    }
}

fn valid(name: &str) -> Config {
    load(&Path::new("tests/fixtures/valid").join(name))
}

#[test]
fn valid_fixtures_have_no_diagnostics() {
    for path in fixtures("valid") {
        let diags = config::check_file(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            diags.is_empty(),
            "{}",
            config::render_all(&diags, Some(&text))
        );
        load(&path);
    }
}

#[test]
fn minimal_file_is_all_defaults() {
    assert_eq!(valid("minimal.yaml"), Config::default());
}

#[test]
fn full_file_sets_every_section() {
    let c = valid("full.yaml");
    let ch = &c.clickhouse;
    assert_eq!(
        ch.url.as_deref(),
        Some("https://clickhouse.internal.example.com:8443")
    );
    assert_eq!(ch.password, "s3cret: with colon");
    assert_eq!(ch.tls.ca_file, Some(PathBuf::from("/etc/aurora/ca.pem")));
    assert_eq!(ch.query_timeout, Duration::from_secs(120));
    assert_eq!(ch.connect_timeout, Duration::from_millis(1500));
    assert_eq!(ch.max_result_rows, 250_000);
    assert!(!ch.readonly);
    assert_eq!(ch.local_server.startup_timeout, Duration::from_secs(90));
    assert_eq!(
        ch.local_server.data_dir,
        Some(PathBuf::from("/var/lib/aurora/clickhouse"))
    );
    assert_eq!(c.kafka.brokers.len(), 2);
    assert_eq!(c.kafka.client_id, "aurora-analytics");
    // Unquoted numbers and booleans arrive as the strings librdkafka expects.
    assert_eq!(c.kafka.properties["session.timeout.ms"], "45000");
    assert_eq!(c.kafka.properties["enable.auto.commit"], "false");
    assert_eq!(c.assistant.backend, Backend::OpenAi);
    assert_eq!(c.assistant.model.as_deref(), Some("qwen2.5-coder-7b"));
    assert_eq!((c.assistant.threads, c.assistant.max_attempts), (8, 5));
    assert_eq!(c.assistant.candidates, 2);
    assert_eq!(c.assistant.databases, ["shop", "web"]);
    assert_eq!(c.assistant.relationships[0].to, "shop.customers.id");
    assert_eq!(
        c.assistant.synonyms["shop.events.event_type = purchase"],
        ["buy", "sold"]
    );
    assert_eq!(c.assistant.openai.api_key_env, "AURORA_OPENAI_KEY");
    assert_eq!(
        c.pipelines,
        [PipelineRef::Path(
            "/etc/aurora/pipelines/orders.yaml".into()
        )]
    );
    assert_eq!(c.ui.theme, "high-contrast");
    assert_eq!(c.ui.keymap["run_query"], "ctrl-enter");
}

#[test]
fn remote_tls_file_overrides_only_what_it_sets() {
    let c = valid("remote_tls.yaml");
    let defaults = Config::default();
    assert_eq!(
        c.clickhouse.url.as_deref(),
        Some("https://abc123.eu-west-1.aws.clickhouse.cloud:8443")
    );
    assert_eq!(c.clickhouse.user, "aurora_ro");
    assert_eq!(
        c.clickhouse.tls.ca_file,
        Some(PathBuf::from("/etc/ssl/private-ca.pem"))
    );
    assert!(!c.clickhouse.tls.insecure_skip_verify);
    assert_eq!(c.clickhouse.connect_timeout, Duration::from_secs(10));
    assert_eq!(
        c.clickhouse.query_timeout,
        defaults.clickhouse.query_timeout
    );
    assert_eq!(c.clickhouse.database, "default");
    assert_eq!(c.kafka, defaults.kafka);
}

#[test]
fn pipelines_by_path_and_inline() {
    let c = valid("pipelines.yaml");
    assert_eq!(c.pipelines.len(), 3);
    // Relative paths are taken from the config file's directory.
    assert_eq!(
        c.pipelines[0],
        PipelineRef::Path("tests/fixtures/valid/pipelines/clickstream.yaml".into())
    );
    assert_eq!(
        c.pipelines[1],
        PipelineRef::Path("/srv/aurora/pipelines/orders.yaml".into())
    );
    let PipelineRef::Inline(inline) = &c.pipelines[2] else {
        panic!("expected an inline pipeline, got {:?}", c.pipelines[2]);
    };
    assert_eq!(inline["name"], "page_views");
    assert_eq!(inline["source"]["topic"], "page_views");
    assert_eq!(inline["batch"]["rows"], 10000);
}

#[test]
fn custom_theme_and_keymap() {
    let c = valid("ui_custom.yaml");
    assert_eq!(c.ui.theme, "light");
    assert_eq!(c.ui.keymap["quit"], "ctrl-c");
    assert_eq!(c.ui.keymap["help"], "?");
    assert_eq!(c.ui.keymap.len(), 3);
}

#[test]
fn invalid_fixtures_match_their_goldens() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v != "0");
    let mut mismatches = Vec::new();
    for path in fixtures("invalid") {
        let diagnostics = config::check_file(&path);
        assert!(!diagnostics.is_empty(), "{} passed", path.display());

        // Loading must refuse the file with the very same report.
        match config::load(Some(&path)) {
            Err(ConfigError::Invalid {
                diagnostics: from_load,
            }) => {
                assert_eq!(from_load, diagnostics, "{}", path.display())
            }
            other => panic!("{}: expected Invalid, got {other:?}", path.display()),
        }

        let rendered = format!("{}\n", ConfigError::Invalid { diagnostics });
        let golden = path.with_extension("expected");
        if update {
            std::fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != rendered {
            mismatches.push(format!(
                "--- {} (expected)\n{expected}+++ actual\n{rendered}",
                golden.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\nrerun with UPDATE_EXPECT=1 to accept",
        mismatches.join("\n")
    );
}

#[test]
fn every_golden_has_its_fixture() {
    let dir = Path::new("tests/fixtures/invalid");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") {
            assert!(
                path.with_extension("yaml").exists(),
                "stale golden {}",
                path.display()
            );
        }
    }
}

#[test]
fn five_problems_are_reported_together_in_file_order() {
    let diags = config::check_file(Path::new("tests/fixtures/invalid/five_problems.yaml"));
    let found: Vec<(usize, usize)> = diags.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(found, [(3, 8), (4, 18), (6, 12), (8, 17), (10, 3)]);
}
