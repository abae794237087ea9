//! The monitoring presets in `presets/monitoring/` pass the checks of the tools that read
//! them (promtool for the rules, their unit tests and the Prometheus config, amtool for the
//! Alertmanager config, Grafana's published JSON schema for the dashboard), and every Aurora
//! metric they name is one Aurora exposes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn presets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/monitoring")
}

/// Runs a checker in the presets folder and insists it succeeds.
fn check(program: &str, args: &[&str]) -> String {
    let o = Command::new(program)
        .args(args)
        .current_dir(presets())
        .output()
        .unwrap_or_else(|e| panic!("{program} ({e}); scripts/setup --for-tests installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{program} {args:?}:\n{text}");
    text
}

#[test]
fn the_prometheus_rules_pass_promtool_and_their_own_unit_tests() {
    let out = check("promtool", &["check", "rules", "prometheus-rules.yml"]);
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    let out = check("promtool", &["test", "rules", "prometheus-rules.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    check("promtool", &["check", "config", "prometheus.yml"]);
}

#[test]
fn a_rule_test_that_expects_the_wrong_thing_fails() {
    // The unit tests can fail: the same tests with one expectation changed do.
    let dir = tempfile::tempdir().expect("a directory");
    std::fs::copy(
        presets().join("prometheus-rules.yml"),
        dir.path().join("prometheus-rules.yml"),
    )
    .expect("copy the rules");
    let tests = std::fs::read_to_string(presets().join("prometheus-rules.test.yml"))
        .expect("the rule tests");
    let broken = tests.replacen("severity: critical", "severity: info", 1);
    assert_ne!(broken, tests, "the tests name a severity");
    std::fs::write(dir.path().join("prometheus-rules.test.yml"), broken).expect("write");
    let o = Command::new("promtool")
        .args(["test", "rules", "prometheus-rules.test.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool");
    assert!(!o.status.success(), "a wrong expectation passed");
}

#[test]
fn the_alertmanager_example_passes_amtool() {
    let out = check("amtool", &["check-config", "alertmanager.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_grafana_dashboard_fits_grafanas_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/grafana/dashboard.v11.6.jsonschema.json"),
        )
        .expect("the schema"),
    )
    .expect("JSON");
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(presets().join("grafana-aurora.json")).expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let errors: Vec<String> = validator
        .iter_errors(&dashboard)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(dashboard["uid"], "aurora-overview");
    // Panels fit the 24-column grid and have unique ids.
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let grid = &panel["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().expect("x"),
            grid["w"].as_u64().expect("w"),
        );
        assert!(x + w <= 24, "{panel}");
        assert!(ids.insert(panel["id"].as_u64().expect("an id")), "{panel}");
    }
}

/// Every `aurora_…` or `process_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("aurora_") || w.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_metric_the_presets_name_is_one_aurora_exposes() {
    // A family is written only once it has a series: give every one of them one.
    use aurora::metrics::{Metrics, NotifierLabels, RuleLabels, Stage};
    let m = aurora::metrics::global();
    let p = Metrics::labels("preset-check");
    for family in [
        &m.records_read,
        &m.rows,
        &m.bytes,
        &m.dead_lettered,
        &m.already_stored,
        &m.batches,
        &m.retries,
    ] {
        family.get_or_create(&p).inc();
    }
    m.error("preset-check", Stage::Source);
    m.set_lag("preset-check", "kafka:t:0", 1);
    m.last_success.get_or_create(&p).set(1.0);
    m.set_state("preset-check", "running");
    m.batch_seconds.get_or_create(&p).observe(0.1);
    m.batch_rows.get_or_create(&p).observe(10.0);
    m.query_done(true);
    m.question_done("answered");
    let rule = RuleLabels { rule: "r".into() };
    m.alerts_firing.get_or_create(&rule).set(0);
    m.alert_evaluations.get_or_create(&rule).inc();
    m.alert_evaluation_failures.get_or_create(&rule).inc();
    m.notifications
        .get_or_create(&NotifierLabels {
            notifier: "n".into(),
            outcome: "failed",
        })
        .inc();
    // Every family as it is written on /metrics: counters with _total, histograms by name
    // and with their _bucket, _sum and _count.
    let exposition = aurora::metrics::render();
    let mut exposed = BTreeSet::new();
    for line in exposition.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            match kind {
                "counter" => {
                    exposed.insert(format!("{name}_total"));
                }
                "histogram" => {
                    // Descriptions name the family itself.
                    for suffix in ["", "_bucket", "_sum", "_count"] {
                        exposed.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    exposed.insert(name.to_string());
                }
            }
        }
    }
    assert!(
        exposed.contains("aurora_pipeline_rows_written_total"),
        "{exposed:?}"
    );
    for file in [
        "prometheus-rules.yml",
        "prometheus-rules.test.yml",
        "grafana-aurora.json",
    ] {
        let text = std::fs::read_to_string(presets().join(file)).expect("the preset");
        let unknown: Vec<String> = metric_names(&text)
            .into_iter()
            .filter(|n| !exposed.contains(n))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics Aurora does not expose: {unknown:?}"
        );
    }
}
