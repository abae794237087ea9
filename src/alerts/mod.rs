//! Alert rules: a ClickHouse query or one of Aurora's own metrics, a condition, a `for`
//! duration, labels and a summary; evaluated on an interval by `aurora serve`, each result
//! row or series one alert with a stable fingerprint, moving inactive → pending → firing →
//! resolved; changes go to the notifiers (an Alertmanager webhook payload, Alertmanager's
//! API, Slack, PagerDuty Events v2, email).
//!
//! Rules live in the config's `alerts.rules` or in files named by `alerts.rule_files`
//! (`rules: [...]`), checked like every other file: every problem at once, located.

pub mod engine;
pub mod notify;
pub mod service;
pub mod source;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use crate::config::{AlertRule, AlertsConfig, Diagnostic, PathStep};

/// A comparison with a threshold: `> 100`, `<= 0.5`, `== 0`, `!= 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub op: Op,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Condition {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (op, rest) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .into_iter()
        .find_map(|(word, op)| text.strip_prefix(word).map(|rest| (op, rest)))?;
        let threshold: f64 = rest.trim().parse().ok()?;
        threshold.is_finite().then_some(Self { op, threshold })
    }

    pub fn holds(&self, value: f64) -> bool {
        let t = self.threshold;
        match self.op {
            Op::Gt => value > t,
            Op::Ge => value >= t,
            Op::Lt => value < t,
            Op::Le => value <= t,
            Op::Eq => value == t,
            Op::Ne => value != t,
        }
    }
}

/// One located problem: where (a path into the document), what, and a fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: Vec<Step>,
    pub message: String,
    pub hint: Option<String>,
}

/// An owned step of a path into a document (a [`PathStep`] that outlives the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl Problem {
    /// The problem at its place in the document `map` describes.
    pub fn locate(&self, map: &crate::config::DocumentMap) -> Diagnostic {
        let path: Vec<PathStep> = self
            .path
            .iter()
            .map(|s| match s {
                Step::Key(k) => PathStep::Key(k),
                Step::Index(i) => PathStep::Index(*i),
            })
            .collect();
        map.error(map.position(&path), self.message.clone(), self.hint.clone())
    }
}

fn key(k: &str) -> Step {
    Step::Key(k.to_string())
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Every problem in `rules`, paths starting at `prefix` (e.g. `alerts.rules`), `notifiers`
/// being the names the config defines.
pub fn check_rules(
    rules: &[AlertRule],
    notifiers: &BTreeSet<String>,
    prefix: &[Step],
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |i: usize, field: Option<&str>| {
        let mut path = prefix.to_vec();
        path.push(Step::Index(i));
        if let Some(k) = field {
            path.push(key(k));
        }
        path
    };
    let mut seen = BTreeSet::new();
    for (i, rule) in rules.iter().enumerate() {
        if !is_identifier(&rule.name) {
            problems.push(Problem {
                path: at(i, Some("name")),
                message: format!("`{}` is not a rule name", rule.name),
                hint: Some("use letters, digits, `_`, `-` and `.`".into()),
            });
        } else if !seen.insert(rule.name.clone()) {
            problems.push(Problem {
                path: at(i, Some("name")),
                message: format!("a second rule named `{}`", rule.name),
                hint: Some("rule names must be unique: they name the alert".into()),
            });
        }
        match (&rule.query, &rule.metric) {
            (Some(_), Some(_)) => problems.push(Problem {
                path: at(i, Some("metric")),
                message: format!("rule `{}` has both a query and a metric", rule.name),
                hint: Some("keep one: `query` (ClickHouse SQL) or `metric` (Aurora's)".into()),
            }),
            (None, None) => problems.push(Problem {
                path: at(i, None),
                message: format!("rule `{}` has neither a query nor a metric", rule.name),
                hint: Some(
                    "add `query: SELECT ...` (one row per alert, a numeric column `value`) or \
                     `metric: aurora_pipeline_lag_records{pipeline=\"orders\"}`"
                        .into(),
                ),
            }),
            (None, Some(metric)) => {
                if let Err(e) = source::Selector::parse(metric) {
                    problems.push(Problem {
                        path: at(i, Some("metric")),
                        message: e,
                        hint: Some(
                            "write a metric name with optional label matchers, e.g. \
                             aurora_pipeline_state{state=\"failed\"}"
                                .into(),
                        ),
                    });
                }
            }
            (Some(query), None) => {
                if query.trim().is_empty() {
                    problems.push(Problem {
                        path: at(i, Some("query")),
                        message: format!("rule `{}` has an empty query", rule.name),
                        hint: None,
                    });
                }
            }
        }
        if Condition::parse(&rule.condition).is_none() {
            problems.push(Problem {
                path: at(i, Some("condition")),
                message: format!("`{}` is not a condition", rule.condition),
                hint: Some(
                    "write an operator and a number: `> 100`, `<= 0.5`, `== 0`, `!= 1`".into(),
                ),
            });
        }
        if rule.interval.is_some_and(|d| d.is_zero()) {
            problems.push(Problem {
                path: at(i, Some("interval")),
                message: "an evaluation interval of 0".into(),
                hint: Some("write a duration such as 30s or 1m (or leave it out)".into()),
            });
        }
        for (j, name) in rule.notify.iter().enumerate() {
            if !notifiers.contains(name) {
                let mut path = at(i, Some("notify"));
                path.push(Step::Index(j));
                let known: Vec<&str> = notifiers.iter().map(String::as_str).collect();
                problems.push(Problem {
                    path,
                    message: format!("no notifier named `{name}`"),
                    hint: Some(
                        match crate::config::did_you_mean(name, known.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None if known.is_empty() => {
                                "define it under `alerts.notifiers`".to_string()
                            }
                            None => format!("the notifiers are: {}", known.join(", ")),
                        },
                    ),
                });
            }
        }
    }
    problems
}

/// Every problem in the config's `alerts` section: its rules and its notifiers.
pub fn check_config(alerts: &AlertsConfig) -> Vec<Problem> {
    let names: BTreeSet<String> = alerts.notifiers.keys().cloned().collect();
    let mut problems = check_rules(&alerts.rules, &names, &[key("alerts"), key("rules")]);
    problems.extend(check_notifiers(alerts));
    problems
}

/// Each secret comes from exactly one place; an email login has a password.
fn check_notifiers(alerts: &AlertsConfig) -> Vec<Problem> {
    use crate::config::NotifierConfig as N;
    let mut problems = Vec::new();
    for (name, notifier) in &alerts.notifiers {
        let (kind, what, count) = match notifier {
            N::Webhook(n) => (
                "webhook",
                "url, url_env or url_file",
                usize::from(n.url.is_some())
                    + usize::from(n.url_env.is_some())
                    + usize::from(n.url_file.is_some()),
            ),
            N::Slack(n) => (
                "slack",
                "url_env or url_file",
                usize::from(n.url_env.is_some()) + usize::from(n.url_file.is_some()),
            ),
            N::Pagerduty(n) => (
                "pagerduty",
                "routing_key_env or routing_key_file",
                usize::from(n.routing_key_env.is_some())
                    + usize::from(n.routing_key_file.is_some()),
            ),
            N::Email(n) => {
                let passwords =
                    usize::from(n.password_env.is_some()) + usize::from(n.password_file.is_some());
                if n.username.is_some() && passwords != 1 || n.username.is_none() && passwords > 0 {
                    problems.push(Problem {
                        path: notifier_path(name, "email"),
                        message: format!(
                            "notifier `{name}`: a username needs exactly one of password_env or                              password_file (and a password needs a username)"
                        ),
                        hint: Some("the password itself never goes in the config".into()),
                    });
                }
                continue;
            }
            N::Alertmanager(_) => continue,
        };
        if count != 1 {
            problems.push(Problem {
                path: notifier_path(name, kind),
                message: format!("notifier `{name}` needs exactly one of {what} (it has {count})"),
                hint: Some(
                    "a secret URL or key comes from an environment variable or a file".into(),
                ),
            });
        }
    }
    problems
}

/// `alerts.notifiers.NAME.KIND`.
fn notifier_path(name: &str, kind: &str) -> Vec<Step> {
    vec![key("alerts"), key("notifiers"), key(name), key(kind)]
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rules: Vec<AlertRule>,
}

/// Every rule: the config's own, then those of each rule file, or every problem found (in
/// the files; the config's own were checked when it loaded).
pub fn load_rules(alerts: &AlertsConfig) -> Result<Vec<AlertRule>, Vec<Diagnostic>> {
    let notifiers: BTreeSet<String> = alerts.notifiers.keys().cloned().collect();
    let mut rules = alerts.rules.clone();
    let mut problems = Vec::new();
    for path in &alerts.rule_files {
        match load_rule_file(path, &notifiers) {
            Ok(more) => rules.extend(more),
            Err(diags) => problems.extend(diags),
        }
    }
    // Names are unique across files too.
    let mut seen = BTreeSet::new();
    for rule in &rules {
        if !seen.insert(rule.name.clone()) && problems.is_empty() {
            problems.push(Diagnostic::error(
                "alerts",
                0,
                0,
                format!(
                    "two alert rules are named `{}`; rule names must be unique",
                    rule.name
                ),
            ));
        }
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

fn load_rule_file(
    path: &Path,
    notifiers: &BTreeSet<String>,
) -> Result<Vec<AlertRule>, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::error(
            name.clone(),
            0,
            0,
            format!("cannot read the alert rule file: {e}"),
        )]
    })?;
    let (file, map) = crate::config::parse_document_mapped::<RuleFile>(&name, &text)?;
    let problems = check_rules(&file.rules, notifiers, &[key("rules")]);
    if problems.is_empty() {
        return Ok(file.rules);
    }
    Err(problems.iter().map(|p| p.locate(&map)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(name: &str) -> AlertRule {
        AlertRule {
            name: name.into(),
            query: Some("SELECT 1 AS value".into()),
            metric: None,
            condition: "> 0".into(),
            for_: std::time::Duration::ZERO,
            interval: None,
            labels: Default::default(),
            summary: None,
            notify: Vec::new(),
        }
    }

    #[test]
    fn conditions_parse_and_hold() {
        let c = Condition::parse(" >= 2.5").expect("a condition");
        assert!(c.holds(2.5) && c.holds(3.0) && !c.holds(2.0));
        assert!(Condition::parse("== 0").expect("eq").holds(0.0));
        assert!(Condition::parse("!=1").expect("ne").holds(2.0));
        assert!(Condition::parse("< -1").expect("lt").holds(-2.0));
        for bad in ["", "> ", ">> 1", "=> 1", "> x", "> inf", "1 >"] {
            assert!(Condition::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn every_problem_of_every_rule_is_found() {
        let notifiers: BTreeSet<String> = ["ops-slack".to_string()].into();
        let mut both = rule("both");
        both.metric = Some("aurora_pipeline_state".into());
        let mut neither = rule("neither");
        neither.query = None;
        let mut bad = rule("bad condition");
        bad.condition = ">> 5".into();
        bad.notify = vec!["ops-slak".into()];
        let problems = check_rules(
            &[rule("ok"), rule("ok"), both, neither, bad],
            &notifiers,
            &[key("rules")],
        );
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "a second rule named `ok`",
                "rule `both` has both a query and a metric",
                "rule `neither` has neither a query nor a metric",
                "`bad condition` is not a rule name",
                "`>> 5` is not a condition",
                "no notifier named `ops-slak`",
            ]
        );
        assert_eq!(
            problems[5].hint.as_deref(),
            Some("did you mean `ops-slack`?")
        );
        assert_eq!(
            problems[5].path,
            [key("rules"), Step::Index(4), key("notify"), Step::Index(0)]
        );
    }
}
