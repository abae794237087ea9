//! `aurora alert list|test`: the alert rules and notifiers the config defines, and one
//! evaluation of a rule with what each notifier would be sent (nothing is sent).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::alerts::engine::{plain, RuleState};
use crate::alerts::notify::{Notifier, Origin};
use crate::alerts::source::{self, Measure, MetricSource};

use super::session::Session;
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct AlertArgs {
    #[command(subcommand)]
    action: AlertAction,
}

#[derive(Debug, Subcommand)]
enum AlertAction {
    /// The rules (the config's and its rule files') and the notifiers
    List,
    /// Evaluate a rule once and print what would be sent; nothing is sent. A metric rule
    /// reads the metrics of the `aurora serve` the config names
    Test {
        /// The rule's name
        rule: String,
    },
}

pub async fn run(global: &GlobalArgs, args: AlertArgs) -> Result<ExitCode> {
    let config = super::session::load_config(global)?;
    crate::rbac::require("alert.view", "")?;
    let rules = match crate::alerts::load_rules(&config.alerts) {
        Ok(r) => r,
        Err(diags) => {
            eprint!("{}", crate::config::render_all(&diags, None));
            bail!("{} problem(s) in the alert rules", diags.len());
        }
    };
    match args.action {
        AlertAction::List => {
            if rules.is_empty() {
                println!("no alert rules (add them under `alerts.rules` or `alerts.rule_files`)");
            }
            for r in &rules {
                let what = match (&r.query, &r.metric) {
                    (Some(q), _) => format!(
                        "query {}",
                        q.split_whitespace().collect::<Vec<_>>().join(" ")
                    ),
                    (None, Some(m)) => format!("metric {m}"),
                    _ => String::new(),
                };
                let every = r.interval.unwrap_or(config.alerts.evaluation_interval);
                println!(
                    "{}  {} {} for {} every {}; notify {}",
                    r.name,
                    what,
                    r.condition.trim(),
                    humantime::format_duration(r.for_),
                    humantime::format_duration(every),
                    if r.notify.is_empty() {
                        "every notifier".to_string()
                    } else {
                        r.notify.join(", ")
                    }
                );
            }
            for (name, n) in &config.alerts.notifiers {
                let kind = match n {
                    crate::config::NotifierConfig::Webhook(_) => "webhook",
                    crate::config::NotifierConfig::Alertmanager(_) => "alertmanager",
                    crate::config::NotifierConfig::Slack(_) => "slack",
                    crate::config::NotifierConfig::Pagerduty(_) => "pagerduty",
                    crate::config::NotifierConfig::Email(_) => "email",
                };
                println!("notifier {name}: {kind}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AlertAction::Test { rule } => {
            let Some(found) = rules.iter().find(|r| r.name == rule).cloned() else {
                let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
                bail!(
                    "no alert rule named `{rule}`; the rules are: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                );
            };
            test_rule(global, config, found).await
        }
    }
}

async fn test_rule(
    global: &GlobalArgs,
    config: crate::config::Config,
    rule: crate::config::AlertRule,
) -> Result<ExitCode> {
    let mut notifiers = Vec::new();
    for (name, n) in &config.alerts.notifiers {
        if rule.notify.is_empty() || rule.notify.contains(name) {
            notifiers.push(Notifier::from_config(name, n).map_err(anyhow::Error::msg)?);
        }
    }
    let serve = config.serve.clone();
    let interval = rule.interval.unwrap_or(config.alerts.evaluation_interval);
    let Some(mut state) = RuleState::new(rule.clone()) else {
        bail!("rule `{}` has a condition Aurora cannot read", rule.name);
    };
    let Some(measure) = state.measure() else {
        bail!("rule `{}` measures nothing", rule.name);
    };
    // A metric rule reads the daemon's metrics: the numbers live in that process.
    let metrics = match &measure {
        Measure::Metric(_) => {
            let client = crate::serve::client::DaemonClient::for_config(&serve)?;
            match client.metrics_text().await {
                Ok(text) => MetricSource::Text(text.into()),
                Err(e) => bail!(
                    "rule `{}` reads Aurora's metrics, which `aurora serve` keeps: {e}",
                    rule.name
                ),
            }
        }
        Measure::Query(_) => MetricSource::Here,
    };
    let session = Session::open_with(global, config).await?;
    // A rule's query runs as the user's own would: inside their roles, with their row filters.
    let measure = match measure {
        Measure::Query(sql) => {
            match crate::rbac::query("alert.view", &sql, &session.warehouse.settings().database) {
                Ok(run) => Measure::Query(run),
                Err(denied) => {
                    session.close().await;
                    return Err(denied.into());
                }
            }
        }
        other => other,
    };
    let samples = source::measure(&measure, &session.warehouse, &metrics, interval)
        .await
        .map_err(anyhow::Error::msg);
    session.close().await;
    let samples = samples?;
    println!(
        "rule {}: {} value(s); condition {}",
        rule.name,
        samples.len(),
        rule.condition.trim()
    );
    let condition = crate::alerts::Condition::parse(&rule.condition);
    for s in &samples {
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let meets = condition.is_some_and(|c| c.holds(s.value));
        println!(
            "  {:>12}  {:<10}  {}",
            plain(s.value),
            if meets { "meets it" } else { "does not" },
            labels.join(" ")
        );
    }
    // As if every sample that meets the condition had held for `for` already.
    let now = jiff::Timestamp::now();
    let mut fired = state.step(&samples, now, Duration::MAX);
    if fired.is_empty() && !rule.for_.is_zero() {
        let later = now
            .checked_add(jiff::SignedDuration::try_from(rule.for_).unwrap_or_default())
            .unwrap_or(now);
        fired = state.step(&samples, later, Duration::MAX);
    }
    if fired.is_empty() {
        println!("nothing fires: no value meets the condition");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} alert(s) would fire{}",
        fired.len(),
        if rule.for_.is_zero() {
            String::new()
        } else {
            format!(
                " once the condition has held for {}",
                humantime::format_duration(rule.for_)
            )
        }
    );
    if notifiers.is_empty() {
        println!("no notifier would be told (define some under `alerts.notifiers`)");
    }
    let origin = Origin::here(format!("http://{}", serve.listen));
    for n in &notifiers {
        for p in n.preview(&fired, &origin) {
            println!("\n--- {} ({})\n{}", p.notifier, p.target, p.body);
        }
    }
    Ok(ExitCode::SUCCESS)
}
