//! Hostile input, property-based (issue 17, point 5): valid configs, pipelines, dashboards and
//! Grafana files, broken by random edits (lines deleted, repeated, swapped, re-indented or cut
//! short; values replaced by YAML and JSON oddities; stray characters), go through the same
//! checks the commands use. None may panic, and every problem must be located: a line and a
//! column inside the file. A Grafana file that still imports must give a dashboard that reads
//! back. `AURORA_FUZZ_CASES` sets the cases per kind (default 200 here; `scripts/fuzz-inputs`
//! runs 2,500 per kind, 10,000 in all, and prints the figures).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use aurora::config::Diagnostic;

/// Values that have broken YAML and JSON readers somewhere.
const ODDITIES: &[&str] = &[
    "",
    "null",
    "~",
    "-1",
    "1e999",
    "18446744073709551616",
    "-9223372036854775809",
    "[",
    "]",
    "{",
    "}",
    "[1, 2",
    "\"unterminated",
    "'",
    "&anchor",
    "*alias",
    "!!binary eA==",
    "!custom x",
    "\t",
    "é漢字🙂",
    "0x1F",
    "yes",
    ".nan",
    "- item",
    "{a: [b, {c: d}]}",
    ": :",
    "%YAML 1.2",
    "---",
    "...",
    "<<: *x",
    "? complex",
    "\"\\u0000\"",
    "|",
    ">-",
    "0o17",
    "2026-13-45",
    "1h 30x",
    "http://[::1",
    "\u{feff}",
    "\r",
];

/// One random edit of a file's lines.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Repeat(usize),
    Swap(usize, usize),
    Indent(usize, bool),
    Value(usize, usize),
    Insert(usize, usize),
    CutAt(usize),
    Char(usize, usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<usize>();
    prop_oneof![
        at.prop_map(Edit::Delete),
        at.prop_map(Edit::Repeat),
        (at, at).prop_map(|(a, b)| Edit::Swap(a, b)),
        (at, any::<bool>()).prop_map(|(a, more)| Edit::Indent(a, more)),
        (at, 0..ODDITIES.len()).prop_map(|(a, v)| Edit::Value(a, v)),
        (at, 0..ODDITIES.len()).prop_map(|(a, v)| Edit::Insert(a, v)),
        at.prop_map(Edit::CutAt),
        (at, at, any::<char>()).prop_map(|(a, b, c)| Edit::Char(a, b, c)),
    ]
}

/// `text` with `edits` applied, in order.
fn broken(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match *e {
            Edit::Delete(i) => {
                lines.remove(i % n);
            }
            Edit::Repeat(i) => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Edit::Swap(a, b) => lines.swap(a % n, b % n),
            Edit::Indent(i, more) => {
                let line = &mut lines[i % n];
                if more {
                    line.insert_str(0, "  ");
                } else {
                    *line = line.strip_prefix("  ").unwrap_or(line).to_string();
                }
            }
            Edit::Value(i, v) => {
                let line = &mut lines[i % n];
                let key = line.split_once(':').map(|(k, _)| k.to_string());
                *line = match key {
                    Some(key) => format!("{key}: {}", ODDITIES[v]),
                    None => ODDITIES[v].to_string(),
                };
            }
            Edit::Insert(i, v) => lines.insert(i % (n + 1), format!("x{i}: {}", ODDITIES[v])),
            Edit::CutAt(i) => {
                let all = lines.join("\n");
                let mut at = i % (all.len() + 1);
                while !all.is_char_boundary(at) {
                    at -= 1;
                }
                lines = all[..at].lines().map(str::to_string).collect();
            }
            Edit::Char(i, j, c) => {
                let line = &mut lines[i % n];
                let chars: Vec<char> = line.chars().collect();
                let at = j % (chars.len() + 1);
                *line = chars[..at]
                    .iter()
                    .chain(std::iter::once(&c))
                    .chain(&chars[at..])
                    .collect();
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Every diagnostic points at a line and column inside `text` (the line after the last, for
/// "unexpected end").
fn located(diags: &[Diagnostic], text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count().max(1);
    for d in diags {
        prop_assert!(
            d.line >= 1 && d.line <= lines + 1 && d.column >= 1,
            "not located: {}\n--- input ---\n{text}",
            d.one_line()
        );
    }
    Ok(())
}

/// A check's result as a verdict: accepted, or refused with every problem located.
fn verdict<T>(checked: Result<T, Vec<Diagnostic>>, text: &str) -> Result<Verdict, TestCaseError> {
    match checked {
        Ok(_) => Ok(Verdict::Accepted),
        Err(diags) => {
            prop_assert!(!diags.is_empty());
            located(&diags, text)?;
            Ok(Verdict::Located)
        }
    }
}

fn cases() -> u32 {
    std::env::var("AURORA_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// What a check made of a broken file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Still valid (an edit that changed nothing that matters, or a value the checks accept).
    Accepted,
    /// Refused, every problem with its line and column.
    Located,
    /// Refused as a whole (a JSON document that is not a Grafana dashboard).
    WholeFile,
}

/// Runs `check` on `cases()` broken versions of the seeds and prints how they ended.
fn run(seeds: &[&str], check: impl Fn(&str) -> Result<Verdict, TestCaseError>) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let counts = std::cell::RefCell::new([0u32; 3]);
    let strategy = (0..seeds.len(), proptest::collection::vec(edit(), 1..6));
    let result = runner.run(&strategy, |(seed, edits)| {
        let text = broken(seeds[seed], &edits);
        let verdict = check(&text)?;
        counts.borrow_mut()[verdict as usize] += 1;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let [accepted, located, whole] = *counts.borrow();
    eprintln!(
        "{} cases: 0 panics; {located} refused with every problem located, {whole} refused as a \
         whole, {accepted} still valid",
        cases()
    );
}

#[test]
fn broken_configs_are_refused_with_located_problems() {
    let seeds = [
        aurora::config::DEFAULTS_YAML,
        include_str!("fixtures/valid/full.yaml"),
        include_str!("fixtures/valid/pipelines.yaml"),
        include_str!("fixtures/valid/remote_tls.yaml"),
    ];
    run(&seeds, |text| {
        let diags = aurora::config::check_str("fuzz.yaml", text);
        located(&diags, text)?;
        Ok(if diags.is_empty() {
            Verdict::Accepted
        } else {
            Verdict::Located
        })
    });
}

#[test]
fn broken_pipelines_are_refused_with_located_problems() {
    let seeds = [
        include_str!("../presets/pipelines/csv-files.yaml"),
        include_str!("../presets/pipelines/kafka-json.yaml"),
        include_str!("../presets/pipelines/postgres-table.yaml"),
        include_str!("../presets/pipelines/mysql-table.yaml"),
        include_str!("../presets/pipelines/demo-clickstream.yaml"),
    ];
    run(&seeds, |text| {
        verdict(aurora::ingest::pipeline::check_str("fuzz.yaml", text), text)
    });
}

#[test]
fn broken_dashboards_are_refused_with_located_problems() {
    let seeds = [
        include_str!("../presets/dashboards/web-events.yaml"),
        include_str!("../presets/dashboards/orders-revenue.yaml"),
        include_str!("../presets/dashboards/server-health.yaml"),
        include_str!("../presets/dashboards/aurora-pipelines.yaml"),
    ];
    run(&seeds, |text| {
        verdict(
            aurora::dashboards::check::check_str("fuzz.yaml", text),
            text,
        )
    });
}

#[test]
fn broken_grafana_files_import_or_say_where_they_break() {
    let seeds = [
        include_str!("fixtures/grafana/import/query-analysis.json"),
        include_str!("fixtures/grafana/import/template-variable-test-dashboard.json"),
        include_str!("fixtures/grafana/import/otel-logs-explorer.json"),
    ];
    use aurora::dashboards::grafana_import::{import, ImportError};
    run(&seeds, |text| match import(text) {
        Ok(report) => {
            // What imports must read back as a dashboard.
            let yaml = aurora::dashboards::suggest::file_text(&report.dashboard, "fuzz")
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Err(d) = aurora::dashboards::check::check_str("imported.yaml", &yaml) {
                return Err(TestCaseError::fail(format!(
                    "an import does not read back: {}\n{yaml}",
                    aurora::config::render_all(&d, Some(&yaml))
                )));
            }
            Ok(Verdict::Accepted)
        }
        Err(ImportError::NotJson(why)) => {
            prop_assert!(why.contains("line") && why.contains("column"), "{why}");
            Ok(Verdict::Located)
        }
        Err(_) => Ok(Verdict::WholeFile),
    });
}
