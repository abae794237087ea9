//! The life of an alert: each evaluation of a rule gives samples; a sample that meets the
//! condition starts `pending`, becomes `firing` once it has held for the rule's `for`, and
//! `resolved` when it no longer holds (or its series is gone). Alerts are told apart by a
//! fingerprint of their labels, stable across evaluations and restarts. Notifications go
//! out when an alert fires, when it resolves, and again every `repeat_interval` while it
//! fires.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::source::{Measure, Sample, Selector};
use super::Condition;
use crate::config::AlertRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// What a notifier is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub rule: String,
    pub fingerprint: String,
    pub status: Status,
    /// `alertname` (the rule), the rule's labels, and the sample's.
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub value: f64,
    pub starts_at: Timestamp,
    /// When it resolved; `None` while it fires.
    pub ends_at: Option<Timestamp>,
}

/// An alert as `/api/v1/alerts` and the workspace show it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ActiveAlert {
    pub rule: String,
    pub fingerprint: String,
    /// `pending` or `firing`.
    pub state: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub value: f64,
    /// Since when it has been in this state (RFC 3339).
    pub since: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Pending {
        since: Timestamp,
    },
    Firing {
        since: Timestamp,
        last_sent: Timestamp,
    },
}

#[derive(Debug, Clone)]
struct Active {
    labels: BTreeMap<String, String>,
    value: f64,
    summary: String,
    phase: Phase,
}

/// One rule and its alerts.
#[derive(Debug, Clone)]
pub struct RuleState {
    pub rule: AlertRule,
    condition: Condition,
    active: BTreeMap<String, Active>,
}

/// A stable identity for an alert: its labels, hashed (16 hex digits, like Alertmanager's).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for (k, v) in labels {
        hash.update(k.as_bytes());
        hash.update([0xff]);
        hash.update(v.as_bytes());
        hash.update([0xfe]);
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `{{ value }}`, `{{ $value }}`, `{{ labels.NAME }}` and `{{ $labels.NAME }}` filled in.
pub fn render_summary(template: &str, labels: &BTreeMap<String, String>, value: f64) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let inner = rest[open + 2..open + close].trim();
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        if inner == "value" {
            out.push_str(&plain(value));
        } else if let Some(name) = inner.strip_prefix("labels.") {
            out.push_str(labels.get(name).map_or("", String::as_str));
        } else {
            out.push_str(&rest[open..open + close + 2]);
        }
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    out
}

impl RuleState {
    /// `None` for a rule whose condition or metric does not parse (the checks refuse those
    /// before anything starts).
    pub fn new(rule: AlertRule) -> Option<Self> {
        let condition = Condition::parse(&rule.condition)?;
        Some(Self {
            rule,
            condition,
            active: BTreeMap::new(),
        })
    }

    pub fn measure(&self) -> Option<Measure> {
        match (&self.rule.query, &self.rule.metric) {
            (Some(q), _) => Some(Measure::Query(q.clone())),
            (None, Some(m)) => Selector::parse(m).ok().map(Measure::Metric),
            (None, None) => None,
        }
    }

    fn labels_of(&self, sample: &Sample) -> BTreeMap<String, String> {
        let mut labels = sample.labels.clone();
        labels.extend(self.rule.labels.clone());
        labels.insert("alertname".into(), self.rule.name.clone());
        labels
    }

    fn summary_of(&self, labels: &BTreeMap<String, String>, value: f64) -> String {
        match &self.rule.summary {
            Some(t) => render_summary(t, labels, value),
            None => format!(
                "{} is {} (condition {})",
                self.rule.name,
                plain(value),
                self.rule.condition.trim()
            ),
        }
    }

    /// Takes one evaluation's samples at `now`; returns the notifications it causes.
    pub fn step(&mut self, samples: &[Sample], now: Timestamp, repeat: Duration) -> Vec<Alert> {
        let mut out = Vec::new();
        let hold = self.rule.for_;
        let mut seen = std::collections::BTreeSet::new();
        for sample in samples.iter().filter(|s| self.condition.holds(s.value)) {
            let labels = self.labels_of(sample);
            let print = fingerprint(&labels);
            seen.insert(print.clone());
            let summary = self.summary_of(&labels, sample.value);
            let entry = self.active.entry(print.clone()).or_insert(Active {
                labels: labels.clone(),
                value: sample.value,
                summary: summary.clone(),
                phase: Phase::Pending { since: now },
            });
            entry.value = sample.value;
            entry.summary = summary;
            let notify = match entry.phase {
                Phase::Pending { since } if elapsed(since, now) >= hold => {
                    entry.phase = Phase::Firing {
                        since: now,
                        last_sent: now,
                    };
                    true
                }
                Phase::Firing { since, last_sent } if elapsed(last_sent, now) >= repeat => {
                    entry.phase = Phase::Firing {
                        since,
                        last_sent: now,
                    };
                    true
                }
                _ => false,
            };
            if notify {
                out.push(self.alert(&print, Status::Firing, now));
            }
        }
        let gone: Vec<String> = self
            .active
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for print in gone {
            if matches!(self.active[&print].phase, Phase::Firing { .. }) {
                out.push(self.alert(&print, Status::Resolved, now));
            }
            self.active.remove(&print);
        }
        out
    }

    /// Every firing alert, resolved now (the rule was removed or the daemon stops).
    pub fn resolve_all(&mut self, now: Timestamp) -> Vec<Alert> {
        let firing: Vec<String> = self
            .active
            .iter()
            .filter(|(_, a)| matches!(a.phase, Phase::Firing { .. }))
            .map(|(k, _)| k.clone())
            .collect();
        let out = firing
            .iter()
            .map(|print| self.alert(print, Status::Resolved, now))
            .collect();
        self.active.clear();
        out
    }

    fn alert(&self, print: &str, status: Status, now: Timestamp) -> Alert {
        let a = &self.active[print];
        let starts_at = match a.phase {
            Phase::Pending { since } | Phase::Firing { since, .. } => since,
        };
        Alert {
            rule: self.rule.name.clone(),
            fingerprint: print.to_string(),
            status,
            labels: a.labels.clone(),
            summary: a.summary.clone(),
            value: a.value,
            starts_at,
            ends_at: (status == Status::Resolved).then_some(now),
        }
    }

    /// Every firing alert as a notification (for notifiers that want each evaluation).
    pub fn firing_alerts(&self, now: Timestamp) -> Vec<Alert> {
        self.active
            .iter()
            .filter(|(_, a)| matches!(a.phase, Phase::Firing { .. }))
            .map(|(print, _)| self.alert(print, Status::Firing, now))
            .collect()
    }

    /// Pending and firing alerts, for the API.
    pub fn active(&self) -> Vec<ActiveAlert> {
        self.active
            .iter()
            .map(|(print, a)| {
                let (state, since) = match a.phase {
                    Phase::Pending { since } => ("pending", since),
                    Phase::Firing { since, .. } => ("firing", since),
                };
                ActiveAlert {
                    rule: self.rule.name.clone(),
                    fingerprint: print.clone(),
                    state: state.into(),
                    labels: a.labels.clone(),
                    summary: a.summary.clone(),
                    value: a.value,
                    since: since.to_string(),
                }
            })
            .collect()
    }

    pub fn firing(&self) -> usize {
        self.active
            .values()
            .filter(|a| matches!(a.phase, Phase::Firing { .. }))
            .count()
    }
}

/// A value as a person reads it in a message: `600`, `2.5`, `0.0012`.
pub fn plain(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    to.duration_since(from).try_into().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(condition: &str, hold: Duration) -> AlertRule {
        AlertRule {
            name: "lag".into(),
            query: Some("SELECT 1".into()),
            metric: None,
            condition: condition.into(),
            for_: hold,
            interval: None,
            labels: [("severity".to_string(), "warning".to_string())].into(),
            summary: Some("{{ $labels.pipeline }} lags {{ value }}".into()),
            notify: Vec::new(),
        }
    }

    fn sample(pipeline: &str, value: f64) -> Sample {
        Sample {
            labels: [("pipeline".to_string(), pipeline.to_string())].into(),
            value,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a time")
    }

    const REPEAT: Duration = Duration::from_secs(3600);

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut r = RuleState::new(rule("> 100", Duration::from_secs(60))).expect("a rule");
        assert!(r.step(&[sample("a", 500.0)], at(0), REPEAT).is_empty());
        assert_eq!(r.active()[0].state, "pending");
        assert!(r.step(&[sample("a", 500.0)], at(30), REPEAT).is_empty());
        let fired = r.step(&[sample("a", 600.0)], at(60), REPEAT);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].status, Status::Firing);
        assert_eq!(fired[0].summary, "a lags 600");
        assert_eq!(fired[0].labels["alertname"], "lag");
        assert_eq!(fired[0].labels["severity"], "warning");
        assert_eq!(r.firing(), 1);
        // Still firing: nothing new until the repeat interval.
        assert!(r.step(&[sample("a", 700.0)], at(120), REPEAT).is_empty());
        assert_eq!(r.step(&[sample("a", 700.0)], at(3660), REPEAT).len(), 1);
        let resolved = r.step(&[sample("a", 5.0)], at(3700), REPEAT);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, Status::Resolved);
        assert_eq!(resolved[0].fingerprint, fired[0].fingerprint);
        assert_eq!(resolved[0].ends_at, Some(at(3700)));
        assert!(r.active().is_empty());
    }

    #[test]
    fn a_pending_alert_that_stops_holding_is_forgotten_silently() {
        let mut r = RuleState::new(rule("> 100", Duration::from_secs(60))).expect("a rule");
        r.step(&[sample("a", 500.0)], at(0), REPEAT);
        assert!(r.step(&[sample("a", 1.0)], at(30), REPEAT).is_empty());
        assert!(r.active().is_empty());
        // Pending starts over.
        r.step(&[sample("a", 500.0)], at(40), REPEAT);
        assert!(r.step(&[sample("a", 500.0)], at(90), REPEAT).is_empty());
        assert_eq!(r.step(&[sample("a", 500.0)], at(100), REPEAT).len(), 1);
    }

    #[test]
    fn each_series_is_its_own_alert_with_a_stable_fingerprint() {
        let mut r = RuleState::new(rule("> 0", Duration::ZERO)).expect("a rule");
        let fired = r.step(&[sample("a", 1.0), sample("b", 2.0)], at(0), REPEAT);
        assert_eq!(fired.len(), 2);
        assert_ne!(fired[0].fingerprint, fired[1].fingerprint);
        let again = RuleState::new(rule("> 0", Duration::ZERO))
            .expect("a rule")
            .step(&[sample("a", 9.0)], at(5), REPEAT);
        assert_eq!(again[0].fingerprint, fired[0].fingerprint, "stable");
        // b's series is gone: it resolves; a keeps firing quietly.
        let changed = r.step(&[sample("a", 1.0)], at(10), REPEAT);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].labels["pipeline"], "b");
        assert_eq!(changed[0].status, Status::Resolved);
        let all = r.resolve_all(at(20));
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].labels["pipeline"], "a");
    }

    #[test]
    fn summaries_fill_in_value_and_labels_and_keep_the_rest() {
        let labels = [("pipeline".to_string(), "orders".to_string())].into();
        assert_eq!(
            render_summary(
                "{{labels.pipeline}}: {{ $value }} {{ other }} {{",
                &labels,
                2.5
            ),
            "orders: 2.5 {{ other }} {{"
        );
    }
}
