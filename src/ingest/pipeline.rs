//! Pipeline definitions: the YAML a user writes to move records from a source into a
//! ClickHouse table. One file may hold several pipelines under `pipelines:`. Files are read
//! with the same diagnostics as the main config (every problem at once, with line and column),
//! against the JSON schema derived from these structs, then checked for what a schema cannot
//! say (unique names, a mapping that can create the table it is asked to create, ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Diagnostic;

/// A pipeline file: one or more pipelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    #[schemars(length(min = 1))]
    pub pipelines: Vec<Pipeline>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Unique name: it keys the pipeline's progress, so renaming it starts over.
    #[schemars(length(min = 1), regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub name: String,
    // serde_yaml writes enums as YAML tags by default; pipelines use the plain `kafka: {...}`.
    #[serde(with = "serde_yaml::with::singleton_map")]
    #[schemars(with = "Source")]
    pub source: Source,
    #[serde(default)]
    pub mapping: Mapping,
    pub sink: Sink,
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub dead_letter: Option<DeadLetter>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// `add_columns`: a top-level field the table has no column for becomes a new Nullable
    /// column (type inferred from the batch's values, `ALTER TABLE ... ADD COLUMN`). `none`
    /// (default): such a field is ignored or rejected, as `mapping.unmapped` says.
    #[serde(default)]
    pub evolve: Evolve,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Evolve {
    #[default]
    None,
    AddColumns,
}

/// Where records come from: exactly one of `kafka`, `csv`, `postgres`, `mysql`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    Kafka(KafkaSource),
    Csv(CsvSource),
    Postgres(SqlSource),
    Mysql(SqlSource),
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Kafka(_) => "kafka",
            Source::Csv(_) => "csv",
            Source::Postgres(_) => "postgres",
            Source::Mysql(_) => "mysql",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    #[default]
    Json,
    Csv,
    Tsv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    #[default]
    Earliest,
    Latest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    /// Bootstrap brokers; empty: `kafka.brokers` from the main config.
    #[serde(default)]
    pub brokers: Vec<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    /// Consumer group; default `aurora-<pipeline name>`.
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub format: RecordFormat,
    #[serde(default)]
    pub start: StartFrom,
    /// librdkafka settings (security, SASL, ...), passed through unchanged.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Raise it (with a new `group`) after the topics were deleted and recreated: positions
    /// become `kafka:<topic>:<partition>@<epoch>`, so the new topics' offsets are not taken
    /// for the old ones' rows.
    #[serde(default)]
    pub epoch: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    /// A file or a glob (`data/*.csv`); relative to the pipeline file.
    #[schemars(length(min = 1))]
    pub path: String,
    #[serde(default = "yes")]
    pub header: bool,
    #[serde(default = "comma")]
    #[schemars(length(min = 1, max = 1))]
    pub delimiter: String,
    /// Keep reading as the files grow (and pick up new files matching the glob).
    #[serde(default)]
    pub follow: bool,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = "aurora-duration"))]
    pub poll_interval: Duration,
    /// What to do when a file being read is truncated or rewritten in place: `fail` (stop
    /// the pipeline and say so) or `reread` (read it again from its start as a new file).
    #[serde(default)]
    pub on_truncate: OnTruncate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnTruncate {
    #[default]
    Fail,
    Reread,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlSource {
    /// Connection string, e.g. `postgres://user@host/db`.
    #[schemars(length(min = 1))]
    pub dsn: String,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    /// An ever-increasing column (id, updated_at) that marks how far the copy has got: an
    /// integer, timestamp or date column. `exactly_once` needs its values to be unique.
    #[schemars(length(min = 1))]
    pub cursor: String,
    /// After copying what is there, keep polling for new rows (`false`: stop at the end).
    #[serde(default = "yes")]
    pub follow: bool,
    #[serde(default = "default_poll", with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = "aurora-duration"))]
    pub poll_interval: Duration,
    /// Rows fetched per query.
    #[serde(default = "default_page_rows")]
    #[schemars(range(min = 1))]
    pub page_rows: u64,
    /// TLS to the database, the server's certificate and name verified. Without this section
    /// the connection is unencrypted, unless a PostgreSQL DSN says `sslmode=require`.
    #[serde(default)]
    pub tls: Option<SqlTls>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlTls {
    /// `require` (the default): TLS, or no connection; `disable`: no TLS.
    #[serde(default)]
    pub mode: SqlTlsMode,
    /// PEM certificates of the CA that signed the server's certificate, trusted besides the
    /// system's roots; relative to the pipeline file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for servers that ask for one, with its key.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqlTlsMode {
    #[default]
    Require,
    Disable,
}

impl SqlSource {
    /// The same source with its TLS files' paths made absolute against `base`.
    pub fn with_base(&self, base: &Path) -> SqlSource {
        let mut spec = self.clone();
        if let Some(tls) = &mut spec.tls {
            for path in [
                &mut tls.ca_file,
                &mut tls.client_cert_file,
                &mut tls.client_key_file,
            ]
            .into_iter()
            .flatten()
            {
                *path = crate::config::resolve_path(base, path);
            }
        }
        spec
    }

    /// The TLS settings for this source's connection, or None for an unencrypted one.
    pub fn tls_settings(&self) -> Result<Option<crate::warehouse::settings::TlsSettings>, String> {
        let Some(tls) = self.tls.as_ref().filter(|t| t.mode == SqlTlsMode::Require) else {
            return Ok(None);
        };
        let client_identity = match (&tls.client_cert_file, &tls.client_key_file) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            _ => {
                return Err(
                    "`tls.client_cert_file` and `tls.client_key_file` go together: \
                            give both, or neither"
                        .into(),
                )
            }
        };
        Ok(Some(crate::warehouse::settings::TlsSettings {
            ca_file: tls.ca_file.clone(),
            insecure_skip_verify: false,
            client_identity,
        }))
    }
}

/// How records become rows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Target column → where its value comes from. Empty: every top-level field of the record
    /// goes to the column of the same name.
    /// In the file's order, which is also the column order of a table Aurora creates.
    #[serde(default)]
    pub columns: indexmap::IndexMap<String, ColumnSource>,
    #[serde(default)]
    pub unmapped: Unmapped,
}

/// `column: field.path`, or a mapping with `from`, `type`, `default`, `convert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ColumnSource {
    Field(#[schemars(length(min = 1))] String),
    Spec(ColumnSpec),
}

impl ColumnSource {
    pub fn spec(&self, column: &str) -> ColumnSpec {
        match self {
            ColumnSource::Field(path) => ColumnSpec {
                from: Some(path.clone()),
                ..ColumnSpec::default()
            },
            ColumnSource::Spec(spec) => ColumnSpec {
                from: spec.from.clone().or_else(|| Some(column.to_string())),
                ..spec.clone()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Dotted path into the record (`user.id`, `items.0.sku`); default: the column's name.
    #[serde(default)]
    pub from: Option<String>,
    /// ClickHouse type, needed when the sink creates the table.
    #[serde(default, rename = "type")]
    pub column_type: Option<String>,
    /// Used when the field is missing or null (as it would appear in the record).
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    pub default: Option<serde_yaml::Value>,
    #[serde(default)]
    pub convert: Option<Convert>,
}

/// Built-in conversions applied before the value is coerced into the column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Convert {
    /// Unix time in seconds → DateTime.
    UnixSeconds,
    /// Unix time in milliseconds → DateTime.
    UnixMillis,
    /// Text → number.
    Number,
    Lower,
    Upper,
    /// Any value (a sub-object, say) → its JSON text.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unmapped {
    /// Fields no column asks for are dropped.
    #[default]
    Ignore,
    /// A record with a field no column asks for goes to the dead-letter table.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sink {
    /// `table` or `database.table`.
    #[schemars(length(min = 1))]
    pub table: String,
    #[serde(default)]
    pub create: CreatePolicy,
    /// ORDER BY of a table Aurora creates (column names or expressions).
    #[serde(default)]
    pub order_by: Vec<String>,
    /// PARTITION BY of a table Aurora creates, e.g. `toYYYYMM(event_time)`.
    #[serde(default)]
    pub partition_by: Option<String>,
    #[serde(default)]
    pub batch: BatchPolicy,
    /// A ClickHouse cluster rather than one server: through a Distributed table, or to the
    /// shards directly (docs/pipelines.md#clusters).
    #[serde(default)]
    pub cluster: Option<ClusterSink>,
    /// How rows are sent: `auto` (RowBinary where the table's types and the mapping allow
    /// it, else JSONEachRow) or `json_each_row`.
    #[serde(default)]
    pub format: InsertFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InsertFormat {
    #[default]
    Auto,
    JsonEachRow,
}

/// How a sink writes to a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSink {
    /// The cluster as the servers' `remote_servers` names it. With `create: if_missing` and no
    /// `shards`, Aurora creates `<table>_local` on every shard and the Distributed `table`
    /// over them, `ON CLUSTER` (which needs ZooKeeper).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub name: Option<String>,
    /// Write each shard's `table` directly instead of through a Distributed table: one entry
    /// per shard, its URL or the list of its replicas' URLs (the first that answers is used).
    #[serde(default)]
    pub shards: Vec<ShardSpec>,
    /// The column whose value picks a record's shard. Without it, the record's source
    /// position does: evenly, and the same shard on every retry.
    #[serde(default)]
    pub sharding_key: Option<String>,
    /// Tables Aurora creates are ReplicatedMergeTree, at
    /// `/clickhouse/tables/{shard}/<database>/<table>` with replica `{replica}` (the servers
    /// need ZooKeeper and those macros).
    #[serde(default)]
    pub replicated: bool,
}

/// One shard of a cluster sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ShardSpec {
    /// The shard's server, e.g. `http://ch-1:8123`.
    Server(String),
    /// The shard's replicas, tried in order.
    Replicas(Vec<String>),
}

impl ShardSpec {
    pub fn urls(&self) -> &[String] {
        match self {
            ShardSpec::Server(url) => std::slice::from_ref(url),
            ShardSpec::Replicas(urls) => urls,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CreatePolicy {
    /// The table must exist.
    #[default]
    Never,
    /// Create it from the mapping's types if it does not exist.
    IfMissing,
}

/// When a batch is sent: whichever limit is reached first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchPolicy {
    #[serde(default = "default_max_rows")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_rows: u64,
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 1024))]
    pub max_bytes: u64,
    #[serde(default = "default_max_wait", with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = "aurora-duration"))]
    pub max_wait: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            max_rows: default_max_rows(),
            max_bytes: default_max_bytes(),
            max_wait: default_max_wait(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Nothing lost; after a crash some records may be written twice.
    AtLeastOnce,
    /// Nothing lost and nothing written twice, also across crashes (see docs/pipelines.md).
    #[default]
    ExactlyOnce,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// Table for records that cannot be written, with the reason; created if missing.
    #[schemars(length(min = 1))]
    pub table: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_initial_backoff", with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = "aurora-duration"))]
    pub initial_backoff: Duration,
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    #[schemars(with = "String", extend("format" = "aurora-duration"))]
    pub max_backoff: Duration,
    /// How many times a ClickHouse error Aurora does not know to be temporary is retried
    /// before the pipeline fails with it: a number, or `forever`. Known temporary errors
    /// (network, timeouts, too many parts, memory limit, read-only replica, ...) are always
    /// retried; known permanent ones (missing table, bad credentials) never are.
    #[serde(default)]
    pub unknown_errors: Attempts,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            unknown_errors: Attempts::default(),
        }
    }
}

/// A number of attempts, or `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Attempts {
    Times(u32),
    Forever(ForeverWord),
}

/// The word `forever`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForeverWord {
    Forever,
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts::Times(5)
    }
}

impl Attempts {
    /// Whether `failures` failures in a row leave room for another attempt.
    pub fn allows_retry_after(self, failures: u32) -> bool {
        match self {
            Attempts::Times(n) => failures <= n,
            Attempts::Forever(_) => true,
        }
    }
}

fn yes() -> bool {
    true
}
fn comma() -> String {
    ",".into()
}
fn default_page_rows() -> u64 {
    10_000
}
fn default_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_max_rows() -> u64 {
    50_000
}
fn default_max_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_max_wait() -> Duration {
    Duration::from_secs(1)
}
fn default_initial_backoff() -> Duration {
    Duration::from_millis(200)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(30)
}

/// A pipeline file read from disk, with where it was read from (relative paths in it, like a
/// CSV source's, are relative to that file).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPipelines {
    pub path: PathBuf,
    pub pipelines: Vec<Pipeline>,
}

/// Reads and checks one pipeline file; every problem comes back at once.
pub fn load_file(path: &Path) -> Result<LoadedPipelines, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::error(
            name.clone(),
            0,
            0,
            format!("cannot read the pipeline file: {e}"),
        )]
    })?;
    let pipelines = check_str(&name, &text)?;
    Ok(LoadedPipelines {
        path: path.to_path_buf(),
        pipelines,
    })
}

/// Parses pipeline YAML and runs the checks a schema cannot express.
pub fn check_str(name: &str, text: &str) -> Result<Vec<Pipeline>, Vec<Diagnostic>> {
    let file: PipelineFile = crate::config::parse_document(name, text)?;
    let mut diags = Vec::new();
    let at = |needle: &str| locate(text, needle);
    let mut seen = BTreeMap::new();
    for p in &file.pipelines {
        let (line, column) = at(&format!("name: {}", p.name));
        if let Some(first) = seen.insert(p.name.clone(), line) {
            diags.push(
                Diagnostic::error(
                    name,
                    line,
                    column,
                    format!("a second pipeline named `{}`", p.name),
                )
                .with_hint(format!(
                    "names must be unique; the first is on line {first}"
                )),
            );
        }
        match &p.source {
            Source::Kafka(k) => {
                let topics = k.topics.len() + usize::from(k.topic.is_some());
                if topics == 0 {
                    let (line, column) = at("kafka:");
                    diags.push(
                        Diagnostic::error(
                            name,
                            line,
                            column,
                            format!("pipeline `{}` names no Kafka topic", p.name),
                        )
                        .with_hint("add `topic: NAME` (or `topics: [A, B]`)"),
                    );
                }
            }
            Source::Postgres(s) | Source::Mysql(s) => {
                if s.table.is_some() == s.query.is_some() {
                    let (line, column) = at("dsn:");
                    diags.push(
                        Diagnostic::error(
                            name,
                            line,
                            column,
                            format!(
                                "pipeline `{}` needs exactly one of `table` and `query`",
                                p.name
                            ),
                        )
                        .with_hint(
                            "`table: orders` copies a table; `query: SELECT ...` a query's rows",
                        ),
                    );
                }
            }
            Source::Csv(_) => {}
        }
        if let Some(cluster) = &p.sink.cluster {
            check_cluster(name, text, p, cluster, &mut diags);
        }
        if p.sink.create == CreatePolicy::IfMissing {
            let untyped: Vec<&str> = p
                .mapping
                .columns
                .iter()
                .filter(|(column, source)| source.spec(column).column_type.is_none())
                .map(|(column, _)| column.as_str())
                .collect();
            let (line, column) = at("create:");
            if p.mapping.columns.is_empty() {
                diags.push(
                    Diagnostic::error(
                        name,
                        line,
                        column,
                        format!(
                            "pipeline `{}` asks to create `{}` but its mapping lists no columns",
                            p.name, p.sink.table
                        ),
                    )
                    .with_hint("list the columns under `mapping.columns` with a `type` each"),
                );
            } else if !untyped.is_empty() {
                diags.push(
                    Diagnostic::error(name, line, column, format!(
                        "pipeline `{}` asks to create `{}` but these columns have no `type`: {}",
                        p.name,
                        p.sink.table,
                        untyped.join(", ")
                    ))
                    .with_hint("give each column a ClickHouse type, e.g. `user_id: {from: user.id, type: UInt64}`"),
                );
            }
            if p.sink.order_by.is_empty() {
                diags.push(
                    Diagnostic::error(
                        name,
                        line,
                        column,
                        format!(
                            "pipeline `{}` asks to create `{}` without `order_by`",
                            p.name, p.sink.table
                        ),
                    )
                    .with_hint("choose the sorting key, e.g. `order_by: [event_time]`"),
                );
            }
        }
    }
    if diags.is_empty() {
        Ok(file.pipelines)
    } else {
        diags.sort_by_key(|d| (d.line, d.column));
        Err(diags)
    }
}

/// What a cluster sink needs beyond its schema.
fn check_cluster(
    name: &str,
    text: &str,
    p: &Pipeline,
    cluster: &ClusterSink,
    diags: &mut Vec<Diagnostic>,
) {
    let (line, column) = locate(text, "cluster:");
    let mut problem = |message: String, hint: &str| {
        diags.push(Diagnostic::error(name, line, column, message).with_hint(hint.to_string()));
    };
    if cluster.name.is_none() && cluster.shards.is_empty() {
        problem(
            format!(
                "pipeline `{}`: `sink.cluster` names neither a cluster nor shards",
                p.name
            ),
            "give `name:` (the cluster in the servers' remote_servers, writing through the \
             Distributed `table`) or `shards:` (a URL per shard, written directly)",
        );
    }
    if cluster.shards.iter().any(|s| s.urls().is_empty()) {
        problem(
            format!(
                "pipeline `{}`: a shard in `sink.cluster.shards` lists no server",
                p.name
            ),
            "give each shard a URL, or a list of its replicas' URLs",
        );
    }
    if let Some(key) = &cluster.sharding_key {
        if !p.mapping.columns.is_empty() && !p.mapping.columns.contains_key(key) {
            problem(
                format!(
                    "pipeline `{}`: the sharding key `{key}` is not a column of the mapping",
                    p.name
                ),
                "name one of `mapping.columns`, or leave `sharding_key` out to spread records by position",
            );
        }
    }
    if p.evolve == Evolve::AddColumns {
        let (line, column) = locate(text, "evolve:");
        diags.push(
            Diagnostic::error(
                name,
                line,
                column,
                format!(
                    "pipeline `{}`: `evolve: add_columns` does not work with a cluster sink yet",
                    p.name
                ),
            )
            .with_hint("add the columns with `ALTER TABLE ... ON CLUSTER`, or remove `evolve`"),
        );
    }
}

/// 1-based line and column of the first occurrence of `needle`, for checks made after
/// parsing; the start of the file when it does not occur verbatim.
fn locate(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, line)| {
            line.find(needle)
                .map(|c| (i + 1, line[..c].chars().count() + 1))
        })
        .unwrap_or((1, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
pipelines:
  - name: clicks
    source:
      csv:
        path: data/*.csv
    mapping:
      columns:
        ts: {from: time, type: DateTime, convert: unix_seconds}
        user_id: {from: user.id, type: UInt64}
        country: {from: geo.country, type: String, default: XX, convert: upper}
    sink:
      table: demo.clicks
      create: if_missing
      order_by: [ts]
    dead_letter:
      table: demo.clicks_dlq
";

    fn render(diags: &[Diagnostic], text: &str) -> String {
        crate::config::render_all(diags, Some(text))
    }

    #[test]
    fn a_good_file_loads_with_defaults_filled_in() {
        let p = check_str("p.yaml", GOOD).unwrap();
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.delivery, Delivery::ExactlyOnce);
        assert_eq!(p.sink.batch.max_rows, 50_000);
        let Source::Csv(csv) = &p.source else {
            panic!("csv source expected")
        };
        assert!(csv.header && csv.delimiter == "," && !csv.follow);
        let spec = p.mapping.columns["country"].spec("country");
        assert_eq!(spec.convert, Some(Convert::Upper));
        assert_eq!(spec.from.as_deref(), Some("geo.country"));
        assert_eq!(spec.default, Some(serde_yaml::Value::String("XX".into())));
    }

    #[test]
    fn cluster_sinks_are_checked() {
        let with = |cluster: &str, extra: &str| {
            GOOD.replace(
                "      order_by: [ts]\n",
                &format!("      order_by: [ts]\n      cluster: {cluster}\n{extra}"),
            )
        };
        let text = with(
            "{shards: [http://a:8123, [http://b1:8123, http://b2:8123]], sharding_key: user_id}",
            "",
        );
        let p = check_str("p.yaml", &text).unwrap();
        let cluster = p[0].sink.cluster.as_ref().unwrap();
        assert_eq!(
            cluster.shards[1].urls(),
            ["http://b1:8123", "http://b2:8123"]
        );

        let text = with("{}", "    evolve: add_columns\n");
        let out = render(&check_str("p.yaml", &text).unwrap_err(), &text);
        assert!(out.contains("names neither a cluster nor shards"), "{out}");
        assert!(
            out.contains("does not work with a cluster sink yet"),
            "{out}"
        );
        assert!(
            out.contains("p.yaml:15:7: error: pipeline `clicks`: `sink.cluster`"),
            "{out}"
        );
        assert!(
            out.contains("p.yaml:16:5: error: pipeline `clicks`: `evolve"),
            "{out}"
        );

        let text = with("{name: c, sharding_key: userid, shards: [[]]}", "");
        let out = render(&check_str("p.yaml", &text).unwrap_err(), &text);
        assert!(
            out.contains("the sharding key `userid` is not a column"),
            "{out}"
        );
        assert!(out.contains("lists no server"), "{out}");
    }

    #[test]
    fn shorthand_mapping_and_default_from() {
        let text = GOOD.replace("{from: user.id, type: UInt64}", "user.id");
        let p = check_str("p.yaml", &text);
        // create: if_missing needs a type for every column.
        let diags = p.unwrap_err();
        let out = render(&diags, &text);
        assert!(
            out.contains("these columns have no `type`: user_id"),
            "{out}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = "\
pipelines:
  - name: clicks
    source:
      kafak:
        topic: x
    sink:
      tabel: t
      batch: {max_rows: 0}
    delivery: exactly_twice
";
        let diags = check_str("bad.yaml", text).unwrap_err();
        let out = render(&diags, text);
        assert!(
            out.contains("bad.yaml:4:7: error: unknown source `kafak`"),
            "{out}"
        );
        assert!(out.contains("did you mean `kafka`"), "{out}");
        assert!(out.contains("did you mean `table`"), "{out}");
        // The misspelling explains the missing `table`; it is not reported twice.
        assert!(!out.contains("missing `table`"), "{out}");
        assert!(out.contains("exactly_twice"), "{out}");
        assert!(out.contains("max_rows"), "{out}");
    }

    #[test]
    fn missing_required_keys_are_named() {
        let text = "pipelines:\n  - name: x\n    sink: {table: t}\n";
        let out = render(&check_str("m.yaml", text).unwrap_err(), text);
        assert!(
            out.contains("m.yaml:2:5: error: missing `source` in `pipelines[0]`"),
            "{out}"
        );
    }

    #[test]
    fn semantic_checks() {
        let text = "\
pipelines:
  - name: a
    source: {kafka: {}}
    sink: {table: t}
  - name: a
    source: {postgres: {dsn: 'postgres://x', cursor: id}}
    sink: {table: t}
";
        let diags = check_str("s.yaml", text).unwrap_err();
        let out = render(&diags, text);
        assert!(out.contains("names no Kafka topic"), "{out}");
        assert!(out.contains("a second pipeline named `a`"), "{out}");
        assert!(out.contains("exactly one of `table` and `query`"), "{out}");
    }
}
