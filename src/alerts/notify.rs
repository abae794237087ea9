//! Where alerts go. Each notifier gets the alerts of one rule's evaluation that changed
//! (fired, resolved, or still firing at the repeat interval):
//!
//! - `webhook`: Alertmanager's webhook payload (version 4), so any receiver written for
//!   Alertmanager takes Aurora's alerts as they are;
//! - `alertmanager`: the alerts posted to an Alertmanager's API (`/api/v2/alerts`), which then
//!   groups, silences and routes them;
//! - `slack`: an incoming webhook's `text`;
//! - `pagerduty`: Events API v2, one event per alert, the fingerprint as `dedup_key`, and a
//!   `resolve` when it resolves;
//! - `email`: one message over SMTP.
//!
//! Secrets (webhook URLs, routing keys, passwords) come from environment variables or files
//! and are never logged. A delivery that fails is retried with exponential backoff, counted in
//! `aurora_notifications_total{outcome="failed"}` and logged; it never stops the daemon.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::engine::{Alert, Status};
use crate::config::{EmailTls, NotifierConfig};

/// A secret value, which prints as where it came from.
#[derive(Clone)]
pub struct Secret {
    value: String,
    origin: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<secret from {}>", self.origin)
    }
}

impl Secret {
    /// From `env` if named, else the first line of `file`; `what` names it in errors.
    pub fn resolve(
        what: &str,
        plain: Option<&str>,
        env: Option<&str>,
        file: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        if let Some(value) = plain {
            return Ok(Self {
                value: value.to_string(),
                origin: "the config".into(),
            });
        }
        if let Some(var) = env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Self {
                    value: v.trim().to_string(),
                    origin: format!("${var}"),
                }),
                _ => Err(format!(
                    "the environment variable ${var} ({what}) is not set"
                )),
            };
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {what} from {}: {e}", path.display()))?;
            let value = text.lines().next().unwrap_or("").trim().to_string();
            if value.is_empty() {
                return Err(format!("{} ({what}) is empty", path.display()));
            }
            return Ok(Self {
                value,
                origin: path.display().to_string(),
            });
        }
        Err(format!(
            "no {what}: give it as an environment variable (`*_env`) or a file (`*_file`)"
        ))
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Webhook { url: Secret },
    Alertmanager { url: String },
    Slack { url: Secret },
    PagerDuty { key: Secret, url: String },
    Email(Box<Email>),
}

#[derive(Debug, Clone)]
struct Email {
    host: String,
    port: u16,
    tls: EmailTls,
    from: String,
    to: Vec<String>,
    login: Option<(String, Secret)>,
}

/// One configured notifier, its secrets read.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub name: String,
    kind: Kind,
}

/// Where an alert links back to, and what its messages say it came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The daemon's address, e.g. `http://127.0.0.1:9464`.
    pub external_url: String,
    /// The machine, for PagerDuty's `source`.
    pub host: String,
}

/// A notification as it would be sent: where (secrets shown by origin) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub notifier: String,
    pub target: String,
    pub body: String,
}

impl Origin {
    /// Alerts that link to `external_url`, sent from this machine.
    pub fn here(external_url: String) -> Self {
        Self {
            external_url,
            host: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "aurora".into()),
        }
    }
}

impl Notifier {
    pub fn from_config(name: &str, config: &NotifierConfig) -> Result<Self, String> {
        let what = |s: &str| format!("notifier `{name}`'s {s}");
        let kind = match config {
            NotifierConfig::Webhook(c) => Kind::Webhook {
                url: Secret::resolve(
                    &what("URL"),
                    c.url.as_deref(),
                    c.url_env.as_deref(),
                    c.url_file.as_deref(),
                )?,
            },
            NotifierConfig::Alertmanager(c) => Kind::Alertmanager {
                url: c.url.trim_end_matches('/').to_string(),
            },
            NotifierConfig::Slack(c) => Kind::Slack {
                url: Secret::resolve(
                    &what("webhook URL"),
                    None,
                    c.url_env.as_deref(),
                    c.url_file.as_deref(),
                )?,
            },
            NotifierConfig::Pagerduty(c) => Kind::PagerDuty {
                key: Secret::resolve(
                    &what("routing key"),
                    None,
                    c.routing_key_env.as_deref(),
                    c.routing_key_file.as_deref(),
                )?,
                url: c.url.clone(),
            },
            NotifierConfig::Email(c) => {
                let (host, port) = c
                    .smtp
                    .rsplit_once(':')
                    .and_then(|(h, p)| {
                        Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?))
                    })
                    .ok_or_else(|| {
                        format!("notifier `{name}`: smtp is HOST:PORT, not `{}`", c.smtp)
                    })?;
                let login = match &c.username {
                    Some(user) => Some((
                        user.clone(),
                        Secret::resolve(
                            &what("SMTP password"),
                            None,
                            c.password_env.as_deref(),
                            c.password_file.as_deref(),
                        )?,
                    )),
                    None => None,
                };
                Kind::Email(Box::new(Email {
                    host,
                    port,
                    tls: c.tls,
                    from: c.from.clone(),
                    to: c.to.clone(),
                    login,
                }))
            }
        };
        Ok(Self {
            name: name.to_string(),
            kind,
        })
    }

    /// Alertmanager forgets an alert whose `endsAt` passed: it is sent again at every
    /// evaluation while it fires, as Prometheus does.
    pub fn wants_every_evaluation(&self) -> bool {
        matches!(self.kind, Kind::Alertmanager { .. })
    }

    /// What would be sent for `alerts`.
    pub fn preview(&self, alerts: &[Alert], origin: &Origin) -> Vec<Preview> {
        let preview = |target: String, body: Json| Preview {
            notifier: self.name.clone(),
            target,
            body: serde_json::to_string_pretty(&body).unwrap_or_default(),
        };
        match &self.kind {
            Kind::Webhook { url } => vec![preview(
                format!("POST {}", url.origin()),
                webhook_payload(&self.name, alerts, origin),
            )],
            Kind::Alertmanager { url } => vec![preview(
                format!("POST {url}/api/v2/alerts"),
                alertmanager_alerts(alerts, origin, Duration::from_secs(240)),
            )],
            Kind::Slack { url } => vec![preview(
                format!("POST {}", url.origin()),
                json!({ "text": slack_text(alerts) }),
            )],
            Kind::PagerDuty { key, url } => alerts
                .iter()
                .map(|a| {
                    let mut event = pagerduty_event(a, "ROUTING_KEY", origin);
                    event["routing_key"] = format!("<{}>", key.origin()).into();
                    preview(format!("POST {url}"), event)
                })
                .collect(),
            Kind::Email(e) => vec![Preview {
                notifier: self.name.clone(),
                target: format!("SMTP {}:{} to {}", e.host, e.port, e.to.join(", ")),
                body: format!(
                    "Subject: {}\n\n{}",
                    email_subject(alerts),
                    email_body(alerts, origin)
                ),
            }],
        }
    }

    /// Sends once; the error says what the receiver answered.
    async fn send(
        &self,
        http: &reqwest::Client,
        alerts: &[Alert],
        origin: &Origin,
        resend_window: Duration,
    ) -> Result<(), String> {
        match &self.kind {
            Kind::Webhook { url } => {
                post(
                    http,
                    &url.value,
                    &webhook_payload(&self.name, alerts, origin),
                )
                .await
            }
            Kind::Alertmanager { url } => {
                post(
                    http,
                    &format!("{url}/api/v2/alerts"),
                    &alertmanager_alerts(alerts, origin, resend_window),
                )
                .await
            }
            Kind::Slack { url } => {
                post(http, &url.value, &json!({ "text": slack_text(alerts) })).await
            }
            Kind::PagerDuty { key, url } => {
                for alert in alerts {
                    post(http, url, &pagerduty_event(alert, &key.value, origin)).await?;
                }
                Ok(())
            }
            Kind::Email(e) => send_email(e, alerts, origin).await,
        }
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &Json) -> Result<(), String> {
    let text = serde_json::to_string(body).map_err(|e| e.to_string())?;
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(text)
        .send()
        .await
        // The URL may be a secret (Slack's is): say what failed, not where.
        .map_err(|e| crate::serve::root_cause(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    Err(format!("HTTP {status}: {}", body.trim()))
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Alertmanager's "zero" time, which its webhook payload gives a firing alert's `endsAt`.
const NO_END: &str = "0001-01-01T00:00:00Z";

fn generator_url(alert: &Alert, origin: &Origin) -> String {
    format!(
        "{}/api/v1/alerts#{}",
        origin.external_url, alert.fingerprint
    )
}

/// The labels every alert of the group shares.
fn common(maps: impl Iterator<Item = BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut iter = maps;
    let Some(mut acc) = iter.next() else {
        return BTreeMap::new();
    };
    for m in iter {
        acc.retain(|k, v| m.get(k) == Some(v));
    }
    acc
}

fn annotations(alert: &Alert) -> BTreeMap<String, String> {
    [
        ("summary".to_string(), alert.summary.clone()),
        ("value".to_string(), super::engine::plain(alert.value)),
    ]
    .into()
}

/// Alertmanager's webhook payload, version 4, for one group (one rule's alerts).
pub fn webhook_payload(receiver: &str, alerts: &[Alert], origin: &Origin) -> Json {
    let status = if alerts.iter().any(|a| a.status == Status::Firing) {
        "firing"
    } else {
        "resolved"
    };
    let rule = alerts.first().map_or("", |a| a.rule.as_str());
    let group_labels: BTreeMap<String, String> =
        [("alertname".to_string(), rule.to_string())].into();
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{rule}\"}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common(alerts.iter().map(|a| a.labels.clone())),
        "commonAnnotations": common(alerts.iter().map(annotations)),
        "externalURL": origin.external_url,
        "alerts": alerts.iter().map(|a| json!({
            "status": match a.status { Status::Firing => "firing", Status::Resolved => "resolved" },
            "labels": a.labels,
            "annotations": annotations(a),
            "startsAt": rfc3339(a.starts_at),
            "endsAt": a.ends_at.map_or(NO_END.to_string(), rfc3339),
            "generatorURL": generator_url(a, origin),
            "fingerprint": a.fingerprint,
        })).collect::<Vec<_>>(),
    })
}

/// The body of `POST /api/v2/alerts`: a firing alert ends `resend_window` from now unless
/// it is sent again; a resolved one ended when it resolved.
fn alertmanager_alerts(alerts: &[Alert], origin: &Origin, resend_window: Duration) -> Json {
    let until = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(resend_window).unwrap_or_default())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    Json::Array(
        alerts
            .iter()
            .map(|a| {
                json!({
                    "labels": a.labels,
                    "annotations": annotations(a),
                    "startsAt": rfc3339(a.starts_at),
                    "endsAt": rfc3339(a.ends_at.unwrap_or(until)),
                    "generatorURL": generator_url(a, origin),
                })
            })
            .collect(),
    )
}

fn label_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn slack_text(alerts: &[Alert]) -> String {
    let firing = alerts.iter().filter(|a| a.status == Status::Firing).count();
    let rule = alerts.first().map_or("", |a| a.rule.as_str());
    let head = if firing > 0 {
        format!("*[FIRING:{firing}] {rule}*")
    } else {
        format!("*[RESOLVED] {rule}*")
    };
    let lines: Vec<String> = alerts
        .iter()
        .map(|a| {
            let word = match a.status {
                Status::Firing => "firing",
                Status::Resolved => "resolved",
            };
            format!("• {word}: {} (`{}`)", a.summary, label_text(&a.labels))
        })
        .collect();
    format!("{head}\n{}", lines.join("\n"))
}

/// PagerDuty's severities; a `severity` label picks one, else `error`.
fn pagerduty_severity(alert: &Alert) -> &'static str {
    match alert
        .labels
        .get("severity")
        .map(|s| s.to_lowercase())
        .as_deref()
    {
        Some("critical" | "page") => "critical",
        Some("warning" | "warn") => "warning",
        Some("info") => "info",
        _ => "error",
    }
}

fn pagerduty_event(alert: &Alert, key: &str, origin: &Origin) -> Json {
    match alert.status {
        Status::Firing => json!({
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": alert.fingerprint,
            "payload": {
                "summary": alert.summary.chars().take(1024).collect::<String>(),
                "source": origin.host,
                "severity": pagerduty_severity(alert),
                "timestamp": rfc3339(alert.starts_at),
                "component": "aurora",
                "custom_details": {
                    "labels": alert.labels,
                    "value": super::engine::plain(alert.value),
                },
            },
            "client": "Aurora",
            "client_url": generator_url(alert, origin),
        }),
        Status::Resolved => json!({
            "routing_key": key,
            "event_action": "resolve",
            "dedup_key": alert.fingerprint,
        }),
    }
}

fn email_subject(alerts: &[Alert]) -> String {
    let firing = alerts.iter().filter(|a| a.status == Status::Firing).count();
    let rule = alerts.first().map_or("", |a| a.rule.as_str());
    if firing > 0 {
        format!("[FIRING:{firing}] {rule}")
    } else {
        format!("[RESOLVED] {rule}")
    }
}

fn email_body(alerts: &[Alert], origin: &Origin) -> String {
    let mut out = String::new();
    for a in alerts {
        let word = match a.status {
            Status::Firing => "FIRING",
            Status::Resolved => "RESOLVED",
        };
        out.push_str(&format!(
            "{word}: {}\n  labels: {}\n  since: {}\n  fingerprint: {}\n\n",
            a.summary,
            label_text(&a.labels),
            rfc3339(a.starts_at),
            a.fingerprint
        ));
    }
    out.push_str(&format!(
        "Sent by aurora serve at {}\n",
        origin.external_url
    ));
    out
}

async fn send_email(e: &Email, alerts: &[Alert], origin: &Origin) -> Result<(), String> {
    use lettre::message::{header::ContentType, Mailbox};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let mut message = Message::builder()
        .from(
            e.from
                .parse::<Mailbox>()
                .map_err(|err| format!("`{}` is not an address: {err}", e.from))?,
        )
        .subject(email_subject(alerts))
        .header(ContentType::TEXT_PLAIN);
    for to in &e.to {
        message = message.to(to
            .parse::<Mailbox>()
            .map_err(|err| format!("`{to}` is not an address: {err}"))?);
    }
    let message = message
        .body(email_body(alerts, origin))
        .map_err(|err| err.to_string())?;
    let builder = match e.tls {
        EmailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host),
        EmailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host),
        EmailTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &e.host,
        )),
    }
    .map_err(|err| err.to_string())?;
    let mut builder = builder.port(e.port).timeout(Some(Duration::from_secs(30)));
    if let Some((user, password)) = &e.login {
        builder = builder.credentials(Credentials::new(user.clone(), password.value.clone()));
    }
    builder
        .build()
        .send(message)
        .await
        .map(drop)
        .map_err(|err| err.to_string())
}

/// Sends alerts to notifiers on background tasks, retrying each delivery with exponential
/// backoff.
#[derive(Clone)]
pub struct Dispatcher {
    notifiers: Arc<Vec<Notifier>>,
    http: reqwest::Client,
    origin: Origin,
    /// Attempts per delivery (the first included).
    pub attempts: usize,
    /// The first retry's wait; each next one doubles it, with jitter.
    pub first_backoff: Duration,
}

impl Dispatcher {
    pub fn new(notifiers: Vec<Notifier>, origin: Origin) -> Self {
        // reqwest is built without a TLS provider of its own: ring, as everywhere in Aurora.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        Self {
            notifiers: Arc::new(notifiers),
            http,
            origin,
            attempts: 5,
            first_backoff: Duration::from_secs(1),
        }
    }

    pub fn notifiers(&self) -> &[Notifier] {
        &self.notifiers
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Delivers `alerts` (one rule's) to the notifiers named in `only` (all when empty);
    /// `every_evaluation` marks a send that only notifiers wanting every evaluation get.
    /// Returns at once; the deliveries run on their own tasks.
    pub fn dispatch(
        &self,
        only: &[String],
        alerts: Vec<Alert>,
        every_evaluation: bool,
        resend_window: Duration,
    ) {
        if alerts.is_empty() {
            return;
        }
        let alerts = Arc::new(alerts);
        for (i, notifier) in self.notifiers.iter().enumerate() {
            if !only.is_empty() && !only.contains(&notifier.name) {
                continue;
            }
            if every_evaluation && !notifier.wants_every_evaluation() {
                continue;
            }
            let this = self.clone();
            let alerts = alerts.clone();
            tokio::spawn(async move {
                this.deliver(i, &alerts, resend_window).await;
            });
        }
    }

    /// One delivery with its retries; counts each attempt's outcome.
    async fn deliver(&self, index: usize, alerts: &[Alert], resend_window: Duration) {
        use backon::{ExponentialBuilder, Retryable};
        let notifier = &self.notifiers[index];
        let counter = |outcome: &'static str| {
            crate::metrics::global()
                .notifications
                .get_or_create(&crate::metrics::NotifierLabels {
                    notifier: notifier.name.clone(),
                    outcome,
                })
                .inc();
        };
        let policy = ExponentialBuilder::default()
            .with_min_delay(self.first_backoff)
            .with_max_delay(Duration::from_secs(60))
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter();
        let result = (|| async {
            notifier
                .send(&self.http, alerts, &self.origin, resend_window)
                .await
                .inspect_err(|_| counter("failed"))
        })
        .retry(policy)
        .notify(|e: &String, wait: Duration| {
            tracing::warn!(notifier = %notifier.name, "notification failed, retrying in {wait:?}: {e}");
        })
        .await;
        match result {
            Ok(()) => {
                counter("sent");
                tracing::info!(
                    notifier = %notifier.name,
                    rule = %alerts.first().map_or("", |a| a.rule.as_str()),
                    alerts = alerts.len(),
                    "notification sent"
                );
            }
            Err(e) => tracing::error!(
                notifier = %notifier.name,
                "notification given up after {} attempts: {e}",
                self.attempts
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(status: Status, pipeline: &str) -> Alert {
        Alert {
            rule: "lag".into(),
            fingerprint: "0123456789abcdef".into(),
            status,
            labels: [
                ("alertname".to_string(), "lag".to_string()),
                ("pipeline".to_string(), pipeline.to_string()),
                ("severity".to_string(), "critical".to_string()),
            ]
            .into(),
            summary: format!("{pipeline} lags"),
            value: 600.0,
            starts_at: jiff::Timestamp::from_second(1_800_000_000).expect("a time"),
            ends_at: (status == Status::Resolved)
                .then(|| jiff::Timestamp::from_second(1_800_000_600).expect("a time")),
        }
    }

    fn origin() -> Origin {
        Origin {
            external_url: "http://127.0.0.1:9464".into(),
            host: "box".into(),
        }
    }

    #[test]
    fn the_webhook_payload_is_alertmanagers_version_4() {
        let p = webhook_payload(
            "ops",
            &[alert(Status::Firing, "a"), alert(Status::Resolved, "b")],
            &origin(),
        );
        assert_eq!(p["version"], "4");
        assert_eq!(p["status"], "firing");
        assert_eq!(p["receiver"], "ops");
        assert_eq!(p["groupKey"], "{}:{alertname=\"lag\"}");
        assert_eq!(p["groupLabels"]["alertname"], "lag");
        assert_eq!(p["commonLabels"]["severity"], "critical");
        assert!(p["commonLabels"].get("pipeline").is_none());
        assert_eq!(p["alerts"][0]["endsAt"], NO_END);
        assert_eq!(p["alerts"][0]["startsAt"], "2027-01-15T08:00:00.000Z");
        assert_eq!(p["alerts"][1]["status"], "resolved");
        assert_eq!(p["alerts"][1]["endsAt"], "2027-01-15T08:10:00.000Z");
        assert_eq!(p["alerts"][0]["annotations"]["summary"], "a lags");
    }

    #[test]
    fn pagerduty_events_trigger_and_resolve_by_fingerprint() {
        let t = pagerduty_event(&alert(Status::Firing, "a"), "KEY", &origin());
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["dedup_key"], "0123456789abcdef");
        assert_eq!(t["payload"]["severity"], "critical");
        assert_eq!(t["payload"]["source"], "box");
        let r = pagerduty_event(&alert(Status::Resolved, "a"), "KEY", &origin());
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], "0123456789abcdef");
        assert!(r.get("payload").is_none());
    }

    #[test]
    fn secrets_print_as_their_origin() {
        let s = Secret {
            value: "https://hooks.slack.com/services/T/B/X".into(),
            origin: "$SLACK_URL".into(),
        };
        assert_eq!(format!("{s:?}"), "<secret from $SLACK_URL>");
        let err = Secret::resolve("a URL", None, Some("AURORA_TEST_NEVER_SET_VAR"), None)
            .expect_err("unset");
        assert!(err.contains("$AURORA_TEST_NEVER_SET_VAR"), "{err}");
    }

    #[test]
    fn slack_and_email_say_what_fired() {
        let alerts = [alert(Status::Firing, "a")];
        let text = slack_text(&alerts);
        assert!(text.starts_with("*[FIRING:1] lag*"), "{text}");
        assert!(text.contains("pipeline=a severity=critical"), "{text}");
        assert_eq!(
            email_subject(&[alert(Status::Resolved, "a")]),
            "[RESOLVED] lag"
        );
    }
}
