//! Rules evaluated on their intervals, one task each, inside `aurora serve`; their alerts'
//! states shared with the HTTP API; reloads that keep the state of unchanged rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::engine::{ActiveAlert, RuleState};
use super::notify::Dispatcher;
use super::source::{self, MetricSource};
use crate::config::{AlertRule, AlertsConfig};
use crate::metrics::RuleLabels;
use crate::warehouse::Warehouse;

/// Every rule's state, by rule name.
pub type States = Arc<Mutex<BTreeMap<String, RuleState>>>;

/// The running evaluations.
pub struct Alerting {
    states: States,
    warehouse: Arc<Warehouse>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

fn lock(states: &States) -> std::sync::MutexGuard<'_, BTreeMap<String, RuleState>> {
    states
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Alerting {
    pub fn new(warehouse: Arc<Warehouse>) -> Self {
        Self {
            states: Arc::default(),
            warehouse,
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// The states, for the API.
    pub fn states(&self) -> States {
        self.states.clone()
    }

    /// Runs `rules` from now on: unchanged rules keep their alerts; the firing alerts of
    /// removed or changed rules are resolved.
    pub fn apply(&mut self, rules: Vec<AlertRule>, config: &AlertsConfig, dispatcher: Dispatcher) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.cancel = CancellationToken::new();
        let now = jiff::Timestamp::now();
        {
            let mut states = lock(&self.states);
            let old = std::mem::take(&mut *states);
            for (name, mut state) in old {
                match rules.iter().find(|r| r.name == name) {
                    Some(rule) if *rule == state.rule => {
                        states.insert(name, state);
                    }
                    _ => {
                        let notify = state.rule.notify.clone();
                        dispatcher.dispatch(&notify, state.resolve_all(now), false, Duration::ZERO);
                        crate::metrics::global()
                            .alerts_firing
                            .remove(&RuleLabels { rule: name });
                    }
                }
            }
            for rule in &rules {
                if !states.contains_key(&rule.name) {
                    if let Some(state) = RuleState::new(rule.clone()) {
                        states.insert(rule.name.clone(), state);
                    }
                }
            }
        }
        for rule in rules {
            let interval = rule.interval.unwrap_or(config.evaluation_interval);
            let task = tokio::spawn(evaluate_forever(
                rule.name.clone(),
                self.states.clone(),
                self.warehouse.clone(),
                dispatcher.clone(),
                interval,
                config.repeat_interval,
                self.cancel.clone(),
            ));
            self.tasks.push(task);
        }
    }

    /// Stops evaluating (firing alerts stay as they are: a restart picks them up again).
    pub fn stop(&mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

/// Every active alert, firing first, then by rule.
pub fn active(states: &States) -> Vec<ActiveAlert> {
    let mut out: Vec<ActiveAlert> = lock(states).values().flat_map(RuleState::active).collect();
    out.sort_by(|a, b| (a.state != "firing", &a.rule).cmp(&(b.state != "firing", &b.rule)));
    out
}

/// One evaluation of `name`; returns the samples' count or why it failed.
pub async fn evaluate_once(
    name: &str,
    states: &States,
    warehouse: &Warehouse,
    dispatcher: &Dispatcher,
    interval: Duration,
    repeat: Duration,
) -> Result<usize, String> {
    let (measure, notify) = {
        let states = lock(states);
        let Some(state) = states.get(name) else {
            return Err(format!("no rule named `{name}`"));
        };
        (state.measure(), state.rule.notify.clone())
    };
    let measure = measure.ok_or_else(|| format!("rule `{name}` measures nothing"))?;
    let m = crate::metrics::global();
    let labels = RuleLabels {
        rule: name.to_string(),
    };
    m.alert_evaluations.get_or_create(&labels).inc();
    let samples = match source::measure(&measure, warehouse, &MetricSource::Here, interval).await {
        Ok(s) => s,
        Err(e) => {
            m.alert_evaluation_failures.get_or_create(&labels).inc();
            return Err(e);
        }
    };
    let now = jiff::Timestamp::now();
    let (changes, firing, count) = {
        let mut states = lock(states);
        let Some(state) = states.get_mut(name) else {
            return Ok(0);
        };
        let changes = state.step(&samples, now, repeat);
        let firing = state.firing_alerts(now);
        (changes, firing, state.firing())
    };
    m.alerts_firing
        .get_or_create(&labels)
        .set(i64::try_from(count).unwrap_or(i64::MAX));
    // Alertmanager forgets alerts not sent again within their window: four intervals, at
    // least four minutes, as Prometheus does.
    let window = (interval * 4).max(Duration::from_secs(240));
    for a in &changes {
        let status = match a.status {
            super::engine::Status::Firing => "firing",
            super::engine::Status::Resolved => "resolved",
        };
        tracing::info!(rule = %name, fingerprint = %a.fingerprint, "alert {status}: {}", a.summary);
    }
    let changed: std::collections::BTreeSet<String> =
        changes.iter().map(|a| a.fingerprint.clone()).collect();
    dispatcher.dispatch(&notify, changes, false, window);
    let again: Vec<_> = firing
        .into_iter()
        .filter(|a| !changed.contains(&a.fingerprint))
        .collect();
    dispatcher.dispatch(&notify, again, true, window);
    Ok(samples.len())
}

/// Where in its interval a rule is evaluated: a fraction of it fixed by the rule's name.
fn start_offset(name: &str, interval: Duration) -> Duration {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(name.as_bytes());
    let fraction = f64::from(u16::from_be_bytes([hash[0], hash[1]])) / 65_536.0;
    interval.mul_f64(fraction)
}

async fn evaluate_forever(
    name: String,
    states: States,
    warehouse: Arc<Warehouse>,
    dispatcher: Dispatcher,
    interval: Duration,
    repeat: Duration,
    cancel: CancellationToken,
) {
    let interval = interval.max(Duration::from_secs(1));
    // Rules start at offsets spread over their interval (fixed per rule name, as Prometheus
    // does), so twenty rules do not query the server at the same instant.
    tokio::select! {
        _ = tokio::time::sleep(start_offset(&name, interval)) => {}
        _ = cancel.cancelled() => return,
    }
    loop {
        if let Err(e) =
            evaluate_once(&name, &states, &warehouse, &dispatcher, interval, repeat).await
        {
            tracing::warn!(rule = %name, "alert rule not evaluated: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_start_spread_over_their_interval_and_always_at_the_same_offset() {
        let interval = Duration::from_secs(10);
        let offsets: Vec<Duration> = (0..20)
            .map(|i| start_offset(&format!("r{i}"), interval))
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        assert_eq!(start_offset("r1", interval), offsets[1]);
        // Spread: not all in the same second.
        let seconds: std::collections::BTreeSet<u64> =
            offsets.iter().map(Duration::as_secs).collect();
        assert!(seconds.len() >= 5, "{offsets:?}");
    }
}
