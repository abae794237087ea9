//! The typed configuration: what `load` hands to the CLI, the warehouse and (later) the TUI.
//! The JSON schema derived from these same structs is what `validate` walks user files against,
//! so every key, type and bound is declared exactly once, here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const KNOWN_THEMES: &[&str] = &["dark", "light", "high-contrast"];

// Non-standard `format` values; `validate` knows how to check them. They are deliberately not
// JSON Schema's own `duration`/`uri`, whose syntax differs from what we accept.
pub(crate) const FORMAT_DURATION: &str = "aurora-duration";
pub(crate) const FORMAT_HTTP_URL: &str = "aurora-http-url";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub clickhouse: ClickHouseConfig,
    pub kafka: KafkaConfig,
    pub assistant: AssistantConfig,
    pub pipelines: Vec<PipelineRef>,
    pub ui: UiConfig,
    pub serve: ServeConfig,
    pub alerts: AlertsConfig,
    pub audit: AuditConfig,
    pub rbac: RbacConfig,
    pub auth: AuthConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    // None: Aurora starts and manages its private local server.
    #[schemars(extend("format" = FORMAT_HTTP_URL))]
    pub url: Option<String>,
    pub user: String,
    pub password: String,
    // A file whose first line is the password (wins over `password`).
    pub password_file: Option<PathBuf>,
    pub database: String,
    pub tls: TlsConfig,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = FORMAT_DURATION))]
    pub query_timeout: Duration,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = FORMAT_DURATION))]
    pub connect_timeout: Duration,
    pub max_result_rows: u64,
    // `aurora query` refuses writes unless given --write.
    pub readonly: bool,
    pub local_server: LocalServerConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalServerConfig {
    // None: search PATH.
    pub binary: Option<PathBuf>,
    // None: the platform data directory.
    pub data_dir: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = FORMAT_DURATION))]
    pub startup_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: Vec<String>,
    pub client_id: String,
    // Passed to librdkafka untouched, so the keys are librdkafka's, not ours.
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistantConfig {
    pub backend: Backend,
    // A model catalog id or a path to a .gguf file; None: the catalog's default.
    pub model: Option<String>,
    // 0: pick from the number of cores.
    pub threads: u32,
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: u32,
    #[schemars(range(min = 1, max = 8))]
    pub candidates: u32,
    // Databases questions are asked about; empty: every database of the server.
    pub databases: Vec<String>,
    // Joins the schema cannot show by names or values.
    pub relationships: Vec<Relationship>,
    // Other words for columns (`db.table.column`) and values (`db.table.column = value`).
    pub synonyms: indexmap::IndexMap<String, Vec<String>>,
    pub openai: OpenAiConfig,
}

/// A join between two tables, each side as `database.table.column`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Relationship {
    #[schemars(length(min = 5))]
    pub from: String,
    #[schemars(length(min = 5))]
    pub to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Local,
    OpenAi,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    pub base_url: String,
    pub model: String,
    // The name of the variable holding the key, so the secret itself never sits in the file.
    pub api_key_env: String,
    pub grammar: GrammarField,
}

/// Whether requests to an OpenAI-compatible endpoint carry the assistant's GBNF grammar in
/// the `grammar` field llama.cpp's servers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GrammarField {
    /// Ask the endpoint once per process, with a request whose grammar allows one reply.
    Auto,
    /// Always send it (a llama.cpp server).
    Gbnf,
    /// Never send it (OpenAI and servers that refuse unknown fields).
    Off,
}

// The doc comment below becomes the schema's description, which `validate` shows as the hint
// when an item is neither a path nor a mapping.
/// Give each pipeline as the path of its YAML file (`- pipelines/orders.yaml`) or inline as a
/// mapping (`- name: orders`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PipelineRef {
    Path(#[schemars(length(min = 1))] PathBuf),
    // Left untyped until the ingestion work defines pipelines; the schema still insists on a
    // mapping so that a stray number or list is caught here.
    Inline(#[schemars(with = "serde_json::Map<String, serde_json::Value>")] serde_yaml::Value),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    #[schemars(extend("enum" = KNOWN_THEMES))]
    pub theme: String,
    // Action name to key, e.g. `quit: q`; merged over the default bindings one by one.
    pub keymap: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    // ADDRESS:PORT the daemon listens on.
    pub listen: String,
    // The environment variable holding the control API's token.
    pub token_env: String,
    // A file whose first line is the token; None: the variable, else a generated one.
    pub token_file: Option<PathBuf>,
    pub tls: ServeTlsConfig,
    // The daemon the workspace controls pipelines through; None: the one at `listen`.
    #[schemars(extend("format" = FORMAT_HTTP_URL))]
    pub url: Option<String>,
    // More callers of the control API, each known by its own token and acting as the user
    // it names (RBAC decides what that user may do).
    pub clients: BTreeMap<String, ServeClient>,
}

/// A caller of the control API: its token (first line of a file, or an environment variable)
/// and the groups it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeClient {
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub token_env: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeTlsConfig {
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    pub enabled: bool,
    // None: audit/audit.jsonl in Aurora's data directory.
    pub path: Option<PathBuf>,
    pub sql: AuditSql,
    // A file past this many bytes is set aside and the chain goes on in a new one.
    #[schemars(range(min = 1))]
    pub max_file_size: u64,
    // Whether queries and questions may go on when their record cannot be written.
    pub allow_reads_unrecorded: bool,
    // Each record also sent to a syslog server.
    pub syslog: AuditSyslog,
}

/// A syslog server the audit records are also sent to (RFC 5424; TCP with octet counting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSyslog {
    // HOST:PORT for udp and tcp, a socket path (e.g. /dev/log) for unix; None: no syslog.
    pub address: Option<String>,
    pub protocol: SyslogProtocol,
    pub facility: SyslogFacility,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    Udp,
    Tcp,
    Unix,
}

/// The syslog facilities an application may use for its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFacility {
    User,
    Auth,
    Authpriv,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl SyslogFacility {
    /// The facility's number (RFC 5424, table 1).
    pub fn code(self) -> u8 {
        match self {
            SyslogFacility::User => 1,
            SyslogFacility::Auth => 4,
            SyslogFacility::Authpriv => 10,
            SyslogFacility::Local0 => 16,
            SyslogFacility::Local1 => 17,
            SyslogFacility::Local2 => 18,
            SyslogFacility::Local3 => 19,
            SyslogFacility::Local4 => 20,
            SyslogFacility::Local5 => 21,
            SyslogFacility::Local6 => 22,
            SyslogFacility::Local7 => 23,
        }
    }
}

/// Sign-in with an OpenID provider (OAuth 2.0 device authorization grant).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    // The provider users sign in with (a key of `providers`); None: no sign-in, Aurora knows
    // its user as the OS user.
    pub provider: Option<String>,
    pub providers: BTreeMap<String, OidcProvider>,
}

/// An OpenID provider, found by its issuer's discovery document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    #[schemars(extend("format" = FORMAT_HTTP_URL))]
    pub issuer: String,
    pub client_id: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    // The claim holding the user's name, and the one holding their groups.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "offline_access"]
        .map(String::from)
        .to_vec()
}

fn default_user_claim() -> String {
    "preferred_username".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// Role-based access control: what each user may do and see. No roles: everything is
/// allowed, as before RBAC existed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RbacConfig {
    pub roles: BTreeMap<String, RoleConfig>,
    pub bindings: Vec<RoleBinding>,
    // The role of a user no binding names; None: such a user may do nothing.
    pub default_role: Option<String>,
}

/// One role: the actions it allows and the data it may read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RoleConfig {
    // Roles whose actions, data, hidden columns and row filters this one takes on.
    pub inherits: Vec<String>,
    // `query`, `query.write`, `ask`, `export`, `schema`, `dashboard.view`, `dashboard.edit`,
    // `dashboard.deploy`, `pipeline.view`, `pipeline.control`, `config`; `dashboard.*`, `*`.
    pub actions: Vec<String>,
    // Databases whose every table the role may read; `*`: all.
    pub databases: Vec<String>,
    // More tables, as `database.table` or `database.*`.
    pub tables: Vec<String>,
    // Columns the role may not read, as `database.table.column`.
    pub hide_columns: Vec<String>,
    // `database.table` to a condition its rows must meet, e.g. `country = 'DE'`.
    pub row_filters: BTreeMap<String, String>,
}

/// Gives roles to a user or to every member of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBinding {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub roles: Vec<String>,
}

/// How a query's text appears in audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditSql {
    Full,
    Hash,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    // How often a rule is evaluated unless it says otherwise.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = FORMAT_DURATION))]
    pub evaluation_interval: Duration,
    // A firing alert is notified again this often.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = FORMAT_DURATION))]
    pub repeat_interval: Duration,
    // Files of `rules: [...]`, besides the rules below.
    pub rule_files: Vec<PathBuf>,
    pub rules: Vec<AlertRule>,
    // Name to notifier; a rule's `notify` names some, else every one gets its alerts.
    // serde_yaml writes enums as YAML tags by default; notifiers use the plain `slack: {...}`.
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    #[schemars(with = "BTreeMap<String, NotifierConfig>")]
    pub notifiers: BTreeMap<String, NotifierConfig>,
}

/// One alert rule: a ClickHouse query (one alert per row, its numeric column `value` or the
/// last numeric one, the other columns as labels) or an Aurora metric (one alert per series),
/// compared with `condition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub metric: Option<String>,
    /// An operator and a number: `> 100`, `<= 0.5`, `== 0`, `!= 1`.
    pub condition: String,
    /// How long the condition must hold before the alert fires.
    #[serde(rename = "for", default, with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = FORMAT_DURATION))]
    pub for_: Duration,
    /// Evaluated this often; default `alerts.evaluation_interval`.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>", extend("format" = FORMAT_DURATION))]
    pub interval: Option<Duration>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A sentence with `{{ value }}` and `{{ labels.NAME }}` filled in.
    #[serde(default)]
    pub summary: Option<String>,
    /// Notifier names; empty: every notifier.
    #[serde(default)]
    pub notify: Vec<String>,
}

/// Where alerts go: exactly one of `webhook`, `alertmanager`, `slack`, `pagerduty`, `email`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum NotifierConfig {
    Webhook(WebhookNotifier),
    Alertmanager(AlertmanagerNotifier),
    Slack(SlackNotifier),
    Pagerduty(PagerDutyNotifier),
    Email(EmailNotifier),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotifier {
    /// The receiver's URL, when it is no secret; else `url_env` or `url_file`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_env: Option<String>,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerNotifier {
    /// The Alertmanager, e.g. http://127.0.0.1:9093.
    #[schemars(extend("format" = FORMAT_HTTP_URL))]
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackNotifier {
    /// The incoming webhook's URL is a secret: from this variable or this file.
    #[serde(default)]
    pub url_env: Option<String>,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyNotifier {
    /// The integration's routing key: from this variable or this file.
    #[serde(default)]
    pub routing_key_env: Option<String>,
    #[serde(default)]
    pub routing_key_file: Option<PathBuf>,
    #[serde(default = "pagerduty_url")]
    #[schemars(extend("format" = FORMAT_HTTP_URL))]
    pub url: String,
}

fn pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailNotifier {
    /// The SMTP server, HOST:PORT.
    #[schemars(length(min = 3))]
    pub smtp: String,
    #[serde(default)]
    pub tls: EmailTls,
    pub from: String,
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// How the SMTP connection is protected: `starttls` (port 587), `tls` (port 465), or `none`
/// (a relay on this machine only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    #[default]
    Starttls,
    Tls,
    None,
}
