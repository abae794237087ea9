//! Aurora's configuration: one YAML file, found via `--config`, `AURORA_CONFIG` or the platform
//! config directory, checked against the schema derived from `model` (every problem reported at
//! once, with file:line:column), deep-merged over the embedded `defaults.yaml` (which doubles
//! as the documented reference), and handed to the CLI and warehouse as a typed `Config`.

mod diagnostic;
mod model;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use marked_yaml::Node;
use serde_yaml::Value as Yaml;

pub use diagnostic::{render_all, summary, Diagnostic, Severity};
pub use model::{
    AlertRule, AlertmanagerNotifier, AlertsConfig, AssistantConfig, AuditConfig, AuditSql,
    AuditSyslog, AuthConfig, Backend, ClickHouseConfig, Config, EmailNotifier, EmailTls,
    GrammarField, KafkaConfig, LocalServerConfig, NotifierConfig, OidcProvider, OpenAiConfig,
    PagerDutyNotifier, PipelineRef, RbacConfig, RoleBinding, RoleConfig, ServeClient, ServeConfig,
    ServeTlsConfig, SlackNotifier, SyslogFacility, SyslogProtocol, TlsConfig, UiConfig,
    WebhookNotifier, KNOWN_THEMES,
};
pub(crate) use validate::did_you_mean;

use yaml::{Pos, SourceFile};

/// The commented reference of every setting, which is also the defaults everything merges over.
pub const DEFAULTS_YAML: &str = include_str!("defaults.yaml");
/// The file name diagnostics about the embedded defaults carry.
pub const DEFAULTS_NAME: &str = "<defaults>";
pub const ENV_CONFIG: &str = "AURORA_CONFIG";

/// `config.yaml` in the platform config directory (`~/.config/aurora/` on Linux).
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "aurora").map(|d| d.config_dir().join("config.yaml"))
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    // The file that was read; None when running on the defaults alone.
    pub source: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", describe_io(.path, .source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", describe_invalid(.diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

// No "error:" of its own: callers print this after their own `error: ` prefix.
fn describe_io(path: &Path, source: &std::io::Error) -> String {
    let mut out = format!(
        "{}: cannot read the configuration file: {source}",
        path.display()
    );
    if source.kind() == std::io::ErrorKind::NotFound {
        let default =
            default_path().map_or("the default file".into(), |p| format!("{}", p.display()));
        out.push_str(&format!(
            "\n  = help: check the path given with --config or {ENV_CONFIG}; without either, \
             Aurora reads {default} if it exists and otherwise runs on its defaults"
        ));
    }
    out
}

fn describe_invalid(diagnostics: &[Diagnostic]) -> String {
    format!(
        "{}\n{}",
        render_all(diagnostics, None),
        summary(diagnostics)
    )
}

/// The configuration Aurora runs with. `path` wins over `AURORA_CONFIG`, which wins over the
/// default location; a file named by either of the first two must exist, while a missing
/// default file just means "run on the defaults".
pub fn load(path: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let env = std::env::var_os(ENV_CONFIG).map(PathBuf::from);
    let default = default_path();
    load_from(choose_source(
        path,
        env.as_deref(),
        default.as_deref().filter(|p| p.exists()),
    ))
}

// Explicit arguments instead of reading the environment, so precedence can be tested without
// tests racing on process-wide variables.
fn choose_source(
    explicit: Option<&Path>,
    env: Option<&Path>,
    existing_default: Option<&Path>,
) -> Option<PathBuf> {
    explicit
        .or(env.filter(|p| !p.as_os_str().is_empty()))
        .or(existing_default)
        .map(Path::to_path_buf)
}

fn load_from(source: Option<PathBuf>) -> Result<LoadedConfig, ConfigError> {
    let Some(path) = source else {
        let config =
            defaults()
                .map(|d| d.config.clone())
                .map_err(|diags| ConfigError::Invalid {
                    diagnostics: diags.to_vec(),
                })?;
        return Ok(LoadedConfig {
            config,
            source: None,
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    let mut config = evaluate(&path.display().to_string(), &text)
        .map_err(|diagnostics| ConfigError::Invalid { diagnostics })?;
    resolve_paths(&mut config, path.parent().unwrap_or(Path::new("")));
    Ok(LoadedConfig {
        config,
        source: Some(path),
    })
}

/// A path written in a file Aurora reads, as it means it: `~/` is the home directory, and a
/// relative path is relative to that file's directory `base`, not to wherever Aurora runs.
pub fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    let home = directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf());
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

fn resolve_paths(config: &mut Config, base: &Path) {
    let resolve = |p: &mut PathBuf| *p = resolve_path(base, p);
    let ch = &mut config.clickhouse;
    let serve = &mut config.serve;
    let optional = [
        &mut ch.password_file,
        &mut ch.tls.ca_file,
        &mut ch.local_server.binary,
        &mut ch.local_server.data_dir,
        &mut serve.token_file,
        &mut serve.tls.cert_file,
        &mut serve.tls.key_file,
        &mut config.audit.path,
    ];
    for p in optional.into_iter().flatten() {
        resolve(p);
    }
    for p in &mut config.alerts.rule_files {
        resolve(p);
    }
    for client in config.serve.clients.values_mut() {
        if let Some(p) = &mut client.token_file {
            resolve(p);
        }
    }
    for notifier in config.alerts.notifiers.values_mut() {
        let file = match notifier {
            NotifierConfig::Webhook(n) => &mut n.url_file,
            NotifierConfig::Slack(n) => &mut n.url_file,
            NotifierConfig::Pagerduty(n) => &mut n.routing_key_file,
            NotifierConfig::Email(n) => &mut n.password_file,
            NotifierConfig::Alertmanager(_) => continue,
        };
        if let Some(p) = file {
            resolve(p);
        }
    }
    for pipeline in &mut config.pipelines {
        if let PipelineRef::Path(p) = pipeline {
            resolve(p);
        }
    }
    // `assistant.model` is a catalog id, a file name in the models directory, or a path;
    // only a path with a directory part is relative to the file.
    if let Some(model) = &mut config.assistant.model {
        if model.contains('/') && !model.starts_with('~') {
            *model = resolve_path(base, Path::new(model.as_str()))
                .display()
                .to_string();
        }
    }
}

/// Every problem in the file at `path`, or none if Aurora would load it. Pure apart from
/// reading the file.
pub fn check_file(path: &Path) -> Vec<Diagnostic> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => check_str(&name, &text),
        Err(e) => vec![Diagnostic::error(
            name,
            0,
            0,
            format!("cannot read the configuration file: {e}"),
        )],
    }
}

/// Every problem in `text` (named `name` in the diagnostics), or none if it would load.
pub fn check_str(name: &str, text: &str) -> Vec<Diagnostic> {
    evaluate(name, text).err().unwrap_or_default()
}

/// The JSON schema files are checked against, e.g. for editor integration.
pub fn json_schema() -> serde_json::Value {
    schema().clone()
}

fn schema() -> &'static serde_json::Value {
    static SCHEMA: OnceLock<serde_json::Value> = OnceLock::new();
    SCHEMA.get_or_init(|| schemars::schema_for!(Config).to_value())
}

struct Defaults {
    tree: Node,
    value: Yaml,
    config: Config,
}

// Parsed once: the same checks as for a user file, so a defect in defaults.yaml shows up as
// ordinary diagnostics (and fails the unit test that guards it).
fn defaults() -> Result<&'static Defaults, &'static [Diagnostic]> {
    static DEFAULTS: OnceLock<Result<Defaults, Vec<Diagnostic>>> = OnceLock::new();
    DEFAULTS
        .get_or_init(|| {
            let (tree, value) = read_document(DEFAULTS_NAME, DEFAULTS_YAML, None)?;
            let defaults_doc = Located {
                name: DEFAULTS_NAME,
                text: DEFAULTS_YAML,
                tree: &tree,
            };
            let config = into_config(value.clone(), &defaults_doc, None)?;
            Ok(Defaults {
                tree,
                value,
                config,
            })
        })
        .as_ref()
        .map_err(Vec::as_slice)
}

impl Default for Config {
    fn default() -> Self {
        match defaults() {
            Ok(d) => d.config.clone(),
            // defaults.yaml is compiled in and checked by a unit test, so this is a build
            // defect, not a user error; there is no other source of defaults to fall back on.
            Err(diags) => panic!(
                "the embedded defaults.yaml is invalid:\n{}",
                render_all(diags, None)
            ),
        }
    }
}

macro_rules! default_from_config {
    ($($ty:ty => $($field:ident).+;)*) => {$(
        impl Default for $ty {
            fn default() -> Self {
                Config::default().$($field).+
            }
        }
    )*};
}

default_from_config! {
    ClickHouseConfig => clickhouse;
    TlsConfig => clickhouse.tls;
    LocalServerConfig => clickhouse.local_server;
    KafkaConfig => kafka;
    AssistantConfig => assistant;
    OpenAiConfig => assistant.openai;
    UiConfig => ui;
}

struct Located<'a> {
    name: &'a str,
    text: &'a str,
    tree: &'a Node,
}

/// The marked tree and schema-typed value of one document, or all its problems, sorted.
fn read_document(
    name: &str,
    text: &str,
    defaults: Option<&Yaml>,
) -> Result<(Node, Yaml), Vec<Diagnostic>> {
    read_document_with(name, text, schema(), defaults)
}

fn read_document_with(
    name: &str,
    text: &str,
    schema: &serde_json::Value,
    defaults: Option<&Yaml>,
) -> Result<(Node, Yaml), Vec<Diagnostic>> {
    let src = SourceFile::new(name, text);
    let tree = yaml::parse(&src).map_err(|d| vec![*d])?;
    let mut diags: Vec<Diagnostic> = yaml::extra_documents(&src).into_iter().collect();
    diags.extend(yaml::duplicate_keys(&src, &tree));
    let (value, problems) = validate::validate(&src, &tree, schema, defaults);
    diags.extend(problems);
    if diags.is_empty() {
        Ok((tree, value))
    } else {
        diags.sort_by_key(|d| (d.line, d.column));
        Err(diags)
    }
}

/// Reads any other YAML document Aurora accepts (pipeline files, ...) with the same checks
/// and diagnostics as the main config: every problem at once, each at its line and column,
/// validated against the JSON schema derived from `T`. No defaults are merged in: serde's own
/// `#[serde(default)]`s apply.
pub fn parse_document<T>(name: &str, text: &str) -> Result<T, Vec<Diagnostic>>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema,
{
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let schema = schemars::schema_for!(T).to_value();
    let (_tree, value) = read_document_with(name, text, &schema, None)?;
    serde_yaml::from_value(value).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        vec![Diagnostic::error(
            name.to_string(),
            line,
            column,
            e.to_string(),
        )]
    })
}

/// A document read by [`parse_document_mapped`]: it still knows where each value was
/// written, so checks made after parsing (names used twice, references between values) can
/// point at the right line and column.
pub struct DocumentMap {
    name: String,
    text: String,
    tree: Node,
}

/// One step of a path into a document: a mapping key or a list index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStep<'a> {
    Key(&'a str),
    Index(usize),
}

impl DocumentMap {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 1-based line and column of the value at `path`, or of the nearest enclosing value
    /// the file does write (a default filled in by serde has no place of its own).
    pub fn position(&self, path: &[PathStep]) -> (usize, usize) {
        let src = SourceFile::new(&self.name, &self.text);
        let segs: Vec<yaml::Seg> = path
            .iter()
            .map(|s| match s {
                PathStep::Key(k) => yaml::Seg::Key((*k).to_owned()),
                PathStep::Index(i) => yaml::Seg::Index(*i),
            })
            .collect();
        for len in (0..=segs.len()).rev() {
            if let Some((key, node)) = yaml::lookup(&self.tree, &segs[..len]) {
                let pos = match (node, key) {
                    (Node::Scalar(_), Some(k)) if len == segs.len() => {
                        // A block scalar (`query: |`) starts at its indicator; point at the
                        // key, which a reader finds first.
                        let value = src.node_pos(node);
                        if value.line == yaml::scalar_pos(k).line {
                            value
                        } else {
                            yaml::scalar_pos(k)
                        }
                    }
                    _ => src.node_pos(node),
                };
                return (pos.line, pos.column);
            }
        }
        (1, 1)
    }

    /// Where `needle` first occurs at or after the value at `path` (a macro inside a
    /// query, say); the value's own place when it is not found there.
    pub fn position_of_text(&self, path: &[PathStep], needle: &str) -> (usize, usize) {
        let (line, column) = self.position(path);
        for (i, text) in self.text.lines().enumerate().skip(line.saturating_sub(1)) {
            let from = if i + 1 == line {
                text.char_indices()
                    .nth(column.saturating_sub(1))
                    .map_or(text.len(), |(b, _)| b)
            } else {
                0
            };
            if let Some(b) = text.get(from..).and_then(|rest| rest.find(needle)) {
                return (i + 1, text[..from + b].chars().count() + 1);
            }
        }
        (line, column)
    }

    /// An error on the `width` characters at `(line, column)`.
    pub fn error_on(
        &self,
        (line, column): (usize, usize),
        width: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let src = SourceFile::new(&self.name, &self.text);
        src.diagnostic_with_width(Pos { line, column }, width, message.into(), hint)
    }

    /// An error at `(line, column)` of this document, showing its source line.
    pub fn error(
        &self,
        (line, column): (usize, usize),
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let src = SourceFile::new(&self.name, &self.text);
        src.diagnostic(Pos { line, column }, message.into(), hint)
    }
}

/// [`parse_document`], keeping the positions of the values for later checks.
pub fn parse_document_mapped<T>(name: &str, text: &str) -> Result<(T, DocumentMap), Vec<Diagnostic>>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema,
{
    let value = parse_document::<T>(name, text)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let tree = yaml::parse(&SourceFile::new(name, text)).map_err(|d| vec![*d])?;
    Ok((
        value,
        DocumentMap {
            name: name.to_owned(),
            text: text.to_owned(),
            tree,
        },
    ))
}

fn evaluate(name: &str, text: &str) -> Result<Config, Vec<Diagnostic>> {
    // Some Windows editors start files with a byte-order mark, which YAML would otherwise
    // glue onto the first key.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let defaults = defaults().map_err(<[Diagnostic]>::to_vec)?;
    let (tree, value) = read_document(name, text, Some(&defaults.value))?;
    let merged = merge(defaults.value.clone(), value);
    let user = Located {
        name,
        text,
        tree: &tree,
    };
    let defaults_doc = Located {
        name: DEFAULTS_NAME,
        text: DEFAULTS_YAML,
        tree: &defaults.tree,
    };
    into_config(merged, &user, Some(&defaults_doc))
}

/// `over` on top of `base`: mappings merge key by key, anything else replaces.
fn merge(base: Yaml, over: Yaml) -> Yaml {
    match (base, over) {
        (Yaml::Mapping(mut base), Yaml::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) => {
                        let old = std::mem::take(slot);
                        *slot = merge(old, value);
                    }
                    None => {
                        base.insert(key, value);
                    }
                }
            }
            Yaml::Mapping(base)
        }
        (_, over) => over,
    }
}

// The validator should leave serde nothing to object to; should it miss something, the serde
// error still becomes a diagnostic at the setting it concerns.
fn into_config(
    merged: Yaml,
    user: &Located,
    defaults: Option<&Located>,
) -> Result<Config, Vec<Diagnostic>> {
    match serde_yaml::from_value::<Config>(merged.clone()) {
        Ok(config) => {
            let mut problems = crate::alerts::check_config(&config.alerts);
            problems.extend(serve_problems(&config.serve));
            if let Err(rbac) = crate::rbac::Policy::compile(&config.rbac) {
                problems.extend(rbac);
            }
            problems.extend(auth_problems(&config.auth));
            problems.extend(syslog_problems(&config.audit.syslog));
            if problems.is_empty() {
                return Ok(config);
            }
            // The problems are in the user's file: the defaults have no rules or notifiers.
            let map = DocumentMap {
                name: user.name.to_owned(),
                text: user.text.to_owned(),
                tree: user.tree.clone(),
            };
            Err(problems.iter().map(|p| p.locate(&map)).collect())
        }
        Err(err) => Err(vec![locate_serde_error(&merged, &err, user, defaults)]),
    }
}

/// `audit.syslog.address` must be HOST:PORT, or a socket path for `unix`.
fn syslog_problems(syslog: &crate::config::AuditSyslog) -> Vec<crate::alerts::Problem> {
    use crate::alerts::{Problem, Step};
    match crate::audit::syslog::check_address(syslog) {
        Ok(()) => Vec::new(),
        Err(message) => vec![Problem {
            path: vec![
                Step::Key("audit".into()),
                Step::Key("syslog".into()),
                Step::Key("address".into()),
            ],
            message: format!("audit.syslog.address: {message}"),
            hint: Some(
                "HOST:PORT for udp and tcp (e.g. 127.0.0.1:514), a socket path for unix".into(),
            ),
        }],
    }
}

/// `auth.provider` must name one of `auth.providers`.
fn auth_problems(auth: &AuthConfig) -> Vec<crate::alerts::Problem> {
    use crate::alerts::{Problem, Step};
    match &auth.provider {
        Some(name) if !auth.providers.contains_key(name) => vec![Problem {
            path: vec![Step::Key("auth".into()), Step::Key("provider".into())],
            message: format!("there is no provider `{name}` under auth.providers"),
            hint: Some(if auth.providers.is_empty() {
                "add it under auth.providers with its issuer and client_id".into()
            } else {
                format!(
                    "the providers are: {}",
                    auth.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        }],
        _ => Vec::new(),
    }
}

/// `serve.tls` needs both files or neither.
fn serve_problems(serve: &ServeConfig) -> Vec<crate::alerts::Problem> {
    use crate::alerts::{Problem, Step};
    let tls = &serve.tls;
    if tls.cert_file.is_some() == tls.key_file.is_some() {
        return Vec::new();
    }
    let missing = if tls.cert_file.is_none() {
        "cert_file"
    } else {
        "key_file"
    };
    vec![Problem {
        path: vec![Step::Key("serve".into()), Step::Key("tls".into())],
        message: format!("serve.tls has one file without the other: `{missing}` is missing"),
        hint: Some("give both cert_file and key_file for HTTPS, or neither for HTTP".into()),
    }]
}

fn locate_serde_error(
    merged: &Yaml,
    err: &serde_yaml::Error,
    user: &Located,
    defaults: Option<&Located>,
) -> Diagnostic {
    // serde_yaml knows positions only when reading text, so re-read the merged value as text
    // to learn which setting failed, then find that setting in the user's file or the defaults.
    let text = serde_yaml::to_string(merged).unwrap_or_default();
    let text_err = serde_yaml::from_str::<Config>(&text).err();
    let message = strip_location(&text_err.as_ref().unwrap_or(err).to_string());
    let path = text_err
        .as_ref()
        .and_then(serde_yaml::Error::location)
        .and_then(|loc| {
            let src = SourceFile::new("", &text);
            let tree = yaml::parse(&src).ok()?;
            let at = Pos {
                line: loc.line(),
                column: loc.column(),
            };
            Some(yaml::path_at(&tree, &src, at))
        })
        .unwrap_or_default();
    let message = format!("invalid configuration: {message}");
    for doc in std::iter::once(user).chain(defaults) {
        for len in (1..=path.len()).rev() {
            if let Some((key, node)) = yaml::lookup(doc.tree, &path[..len]) {
                let src = SourceFile::new(doc.name, doc.text);
                let pos = match (node, key) {
                    (Node::Scalar(s), Some(k)) if s.as_str().is_empty() => yaml::scalar_pos(k),
                    _ => src.node_pos(node),
                };
                return src.diagnostic(pos, message, None);
            }
        }
    }
    Diagnostic::error(user.name, 0, 0, message)
}

// serde_yaml appends " at line L column C" of the text it read, which is not the user's file.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i)
            if message[i + 9..]
                .split(" column ")
                .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) =>
        {
            message[..i].to_owned()
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn eval(text: &str) -> Config {
        match evaluate("t.yaml", text) {
            Ok(c) => c,
            Err(diags) => panic!("{}", render_all(&diags, Some(text))),
        }
    }

    #[test]
    fn embedded_defaults_validate_clean_and_round_trip() {
        assert!(check_str(DEFAULTS_NAME, DEFAULTS_YAML).is_empty());
        let config = Config::default();
        assert_eq!(config.clickhouse.url, None);
        assert_eq!(config.clickhouse.query_timeout, Duration::from_secs(30));
        assert_eq!(config.clickhouse.max_result_rows, 100_000);
        assert_eq!(config.kafka.brokers, ["localhost:9092"]);
        assert_eq!(config.assistant.backend, Backend::Local);
        assert_eq!(config.ui.theme, "dark");

        let written = serde_yaml::to_string(&config).unwrap();
        assert_eq!(eval(&written), config);
    }

    #[test]
    fn defaults_document_every_key() {
        fn walk(v: &serde_json::Value, schema: &serde_json::Value, node: &Node, path: String) {
            let mut schema = schema;
            while let Some(r) = schema.get("$ref").and_then(|r| r.as_str()) {
                schema = &v["$defs"][r.trim_start_matches("#/$defs/")];
            }
            let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
                return;
            };
            let map = node.as_mapping().unwrap();
            for (name, child) in props {
                let Some(value) = map.get_node(name.as_str()) else {
                    panic!("defaults.yaml lacks `{path}{name}`");
                };
                walk(v, child, value, format!("{path}{name}."));
            }
        }
        let root = schema();
        walk(root, root, &defaults().unwrap().tree, String::new());
    }

    #[test]
    fn empty_and_comment_only_files_are_all_defaults() {
        for text in ["", "\n", "# nothing yet\n", "---\n", "{}"] {
            assert_eq!(eval(text), Config::default(), "{text:?}");
        }
    }

    #[test]
    fn serve_tls_with_one_file_is_refused_where_it_is_written() {
        let err = evaluate("t.yaml", "serve:\n  tls:\n    cert_file: c.pem\n")
            .expect_err("one file only");
        assert_eq!(err.len(), 1);
        assert_eq!((err[0].line, err[0].column), (3, 5));
        assert!(
            err[0].message.contains("`key_file` is missing"),
            "{}",
            err[0].message
        );
    }

    #[test]
    fn user_values_override_and_untouched_defaults_stay() {
        let config = eval(
            "clickhouse:\n  url: http://db:8123\n  tls:\n    insecure_skip_verify: true\n\
             kafka:\n  brokers: [a:1, b:2]\n  properties:\n    session.timeout.ms: 45000\n\
             ui:\n  keymap:\n    quit: q\n",
        );
        let defaults = Config::default();
        assert_eq!(config.clickhouse.url.as_deref(), Some("http://db:8123"));
        assert!(config.clickhouse.tls.insecure_skip_verify);
        assert_eq!(
            config.clickhouse.tls.ca_file,
            defaults.clickhouse.tls.ca_file
        );
        assert_eq!(config.clickhouse.user, "default");
        assert_eq!(config.clickhouse.query_timeout, Duration::from_secs(30));
        // Lists replace rather than append.
        assert_eq!(config.kafka.brokers, ["a:1", "b:2"]);
        assert_eq!(config.kafka.client_id, "aurora");
        assert_eq!(config.kafka.properties["session.timeout.ms"], "45000");
        assert_eq!(config.ui.keymap["quit"], "q");
        assert_eq!(config.ui.theme, "dark");
        assert_eq!(config.assistant, defaults.assistant);
    }

    #[test]
    fn mappings_merge_key_by_key_at_every_depth() {
        let base: Yaml = serde_yaml::from_str("a: {x: 1, y: {p: 1, q: 2}}\nl: [1, 2]\n").unwrap();
        let over: Yaml = serde_yaml::from_str("a: {y: {q: 3}, z: 4}\nl: [9]\n").unwrap();
        let want: Yaml =
            serde_yaml::from_str("a: {x: 1, y: {p: 1, q: 3}, z: 4}\nl: [9]\n").unwrap();
        assert_eq!(merge(base, over), want);
    }

    #[test]
    fn empty_sections_keep_their_defaults_but_null_means_null_where_allowed() {
        let config =
            eval("kafka:\nclickhouse:\n  # url: http://x:8123\nassistant:\n  model: null\n");
        assert_eq!(config.kafka, Config::default().kafka);
        assert_eq!(config.clickhouse, Config::default().clickhouse);
        assert_eq!(config.assistant.model, None);
    }

    #[test]
    fn explicit_path_beats_env_beats_existing_default() {
        let (flag, env, default) = (
            Path::new("f.yaml"),
            Path::new("e.yaml"),
            Path::new("d.yaml"),
        );
        let pick = |f, e, d| choose_source(f, e, d);
        assert_eq!(
            pick(Some(flag), Some(env), Some(default)).as_deref(),
            Some(flag)
        );
        assert_eq!(pick(None, Some(env), Some(default)).as_deref(), Some(env));
        assert_eq!(
            pick(None, Some(Path::new("")), Some(default)).as_deref(),
            Some(default)
        );
        assert_eq!(pick(None, None, Some(default)).as_deref(), Some(default));
        assert_eq!(pick(None, None, None), None);
    }

    #[test]
    fn no_file_means_defaults_and_a_missing_named_file_is_an_error() {
        let loaded = load_from(None).unwrap();
        assert_eq!(loaded.source, None);
        assert_eq!(loaded.config, Config::default());

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let err = load_from(Some(missing.clone())).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }));
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("{}: cannot read", missing.display())),
            "{shown}"
        );
        assert!(shown.contains("--config"), "{shown}");
    }

    #[test]
    fn relative_paths_are_resolved_against_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        std::fs::write(
            &file,
            "clickhouse:\n  tls:\n    ca_file: certs/ca.pem\n  local_server:\n    binary: /opt/ch/clickhouse\n\
             pipelines:\n  - p/orders.yaml\n  - name: inline\n",
        )
        .unwrap();
        let loaded = load_from(Some(file.clone())).unwrap();
        let c = &loaded.config;
        assert_eq!(
            c.clickhouse.tls.ca_file,
            Some(dir.path().join("certs/ca.pem"))
        );
        assert_eq!(
            c.clickhouse.local_server.binary,
            Some(PathBuf::from("/opt/ch/clickhouse"))
        );
        assert_eq!(
            c.pipelines[0],
            PipelineRef::Path(dir.path().join("p/orders.yaml"))
        );
        assert!(matches!(&c.pipelines[1], PipelineRef::Inline(v) if v["name"] == "inline"));
        assert_eq!(loaded.source, Some(file));
    }

    #[test]
    fn invalid_error_renders_every_diagnostic_and_a_count() {
        let diagnostics = check_str("c.yaml", "ui:\n  theme: neon\nkafak: {}\n");
        let shown = ConfigError::Invalid { diagnostics }.to_string();
        assert!(
            shown.contains("c.yaml:2:10: error: unknown value `neon`"),
            "{shown}"
        );
        assert!(shown.contains("3 | kafak: {}"), "{shown}");
        assert!(shown.ends_with("\n2 errors in c.yaml"), "{shown}");
    }

    #[test]
    fn leftover_serde_errors_still_point_at_the_setting() {
        let text = "clickhouse:\n  user: bob\n  max_result_rows: lots\n";
        let src = SourceFile::new("u.yaml", text);
        let tree = yaml::parse(&src).unwrap();
        // Bypass the validator to simulate a gap in it.
        let user: Yaml = serde_yaml::from_str(text).unwrap();
        let merged = merge(defaults().unwrap().value.clone(), user);
        let d = defaults().unwrap();
        let defaults_doc = Located {
            name: DEFAULTS_NAME,
            text: DEFAULTS_YAML,
            tree: &d.tree,
        };
        let user_doc = Located {
            name: "u.yaml",
            text,
            tree: &tree,
        };
        let diags = into_config(merged, &user_doc, Some(&defaults_doc)).unwrap_err();
        assert_eq!(
            (diags[0].file.as_str(), diags[0].line, diags[0].column),
            ("u.yaml", 3, 20)
        );
        assert!(
            diags[0].message.contains("invalid type"),
            "{}",
            diags[0].message
        );
        assert!(
            !diags[0].message.contains(" at line "),
            "{}",
            diags[0].message
        );
    }
}
