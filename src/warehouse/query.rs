//! The query runner: arbitrary SQL in, typed rows out, streamed chunk by chunk.
//!
//! Results are requested as `JSONCompact`, which every server version writes the same way and
//! which ends with the server's statistics (elapsed, rows and bytes read). A small scanner
//! splits the `data` array into one row at a time as bytes arrive, so a million-row result is
//! never held as one document. Limits (`readonly`, `max_execution_time`, `max_result_rows`)
//! travel as URL settings, never in a SQL `SETTINGS` clause the user's query might already have.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::client::Warehouse;
use super::error::{connect_error, Result, ServerError, WarehouseError};
use super::result::{Column, QueryResult, QueryStats};
use super::types::DataType;
use super::value::{decode_row, Value};

/// The longest an INSERT may take before Aurora gives up on the connection.
const INSERT_TIMEOUT: Duration = Duration::from_secs(60);

/// Rows handed out per chunk when streaming.
const CHUNK_ROWS: usize = 4096;

/// What to do when a result exceeds `max_result_rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowMode {
    /// Stop reading and return what was read, marked as truncated.
    #[default]
    Break,
    /// Fail the query.
    Throw,
}

/// Per-query limits and identity.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// Refuse writes and DDL (`readonly=2`: per-query settings stay allowed).
    pub readonly: bool,
    pub max_execution_time: Option<Duration>,
    pub max_result_rows: Option<u64>,
    pub overflow: OverflowMode,
    /// Set to cancel the query later with [`Warehouse::cancel`]; generated when `None`.
    pub query_id: Option<String>,
    /// Extra server settings, sent as URL parameters.
    pub settings: Vec<(String, String)>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            readonly: true,
            max_execution_time: Some(Duration::from_secs(30)),
            max_result_rows: Some(100_000),
            overflow: OverflowMode::Break,
            query_id: None,
            settings: Vec::new(),
        }
    }
}

impl QueryOptions {
    /// No limits and writes allowed: for Aurora's own DDL and data loading.
    pub fn unrestricted() -> Self {
        Self {
            readonly: false,
            max_execution_time: None,
            max_result_rows: None,
            ..Self::default()
        }
    }
}

/// The format named by a trailing `FORMAT name` clause, if the query has one. Aurora chooses
/// the wire format itself (`JSONCompact`), so such a query cannot be decoded.
pub fn own_format_clause(sql: &str) -> Option<&str> {
    let sql = trim_sql(sql);
    let mut words = sql.rsplitn(3, char::is_whitespace);
    let name = words.next()?;
    let keyword = words.next()?;
    let is_ident = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (keyword.eq_ignore_ascii_case("FORMAT") && is_ident).then_some(name)
}

/// `name` as a ClickHouse identifier, quoted.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// `name` as written in a query: bare when it is a plain identifier, quoted otherwise.
pub fn ident(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// Words that must be quoted to be read as a name by ClickHouse and by the SQL parser.
const RESERVED: [&str; 42] = [
    "ALL", "AND", "ANY", "ARRAY", "AS", "ASC", "BETWEEN", "BY", "CASE", "CAST", "CROSS", "DESC",
    "DISTINCT", "ELSE", "END", "EXCEPT", "FINAL", "FROM", "FULL", "GLOBAL", "GROUP", "HAVING",
    "IN", "INNER", "INTERVAL", "IS", "JOIN", "LEFT", "LIKE", "LIMIT", "NOT", "NULL", "ON", "OR",
    "ORDER", "PREWHERE", "RIGHT", "SELECT", "THEN", "UNION", "WHEN", "WHERE",
];

/// `name` as written in a query Aurora generates: bare when it is a plain identifier that is
/// not an SQL word, quoted otherwise (`order` and `from` are quoted).
pub fn sql_name(name: &str) -> String {
    if RESERVED.contains(&name.to_ascii_uppercase().as_str()) {
        quote_ident(name)
    } else {
        ident(name)
    }
}

/// A plain lower-case identifier made from any text ("Page views" → `page_views`): letters
/// and digits kept, everything else `_`, no leading or trailing `_`. Empty when `text` has
/// no letter or digit.
pub fn identifier_from(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

/// `text` as a ClickHouse string literal.
pub fn quote_str(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Removes trailing semicolons and whitespace, which ClickHouse's HTTP interface rejects when
/// the query is wrapped (`DESCRIBE (q;)`) and which users paste out of habit.
pub fn trim_sql(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

impl Warehouse {
    fn query_params(&self, opts: &QueryOptions, query_id: &str) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = vec![
            ("database".into(), self.settings().database.clone()),
            ("query_id".into(), query_id.to_string()),
            ("wait_end_of_query".into(), "1".into()),
            ("default_format".into(), "JSONCompact".into()),
            // Keep 64-bit integers exact and NaN/inf distinguishable from NULL.
            ("output_format_json_quote_64bit_integers".into(), "1".into()),
            ("output_format_json_quote_denormals".into(), "1".into()),
        ];
        if opts.readonly {
            params.push(("readonly".into(), "2".into()));
        }
        if let Some(t) = opts.max_execution_time {
            params.push(("max_execution_time".into(), t.as_secs().max(1).to_string()));
        }
        if let Some(rows) = opts.max_result_rows {
            // In break mode ask for one row more than the caller wants: receiving it is how
            // the stream knows, exactly, that the result was cut (see `RowStream::pull`).
            let (server_limit, mode) = match opts.overflow {
                OverflowMode::Break => (rows.saturating_add(1), "break"),
                OverflowMode::Throw => (rows, "throw"),
            };
            params.push(("max_result_rows".into(), server_limit.to_string()));
            params.push(("result_overflow_mode".into(), mode.into()));
        }
        params.extend(opts.settings.iter().cloned());
        params
    }

    /// Starts a query and returns a stream of its rows.
    pub async fn query_stream(&self, sql: &str, opts: &QueryOptions) -> Result<RowStream> {
        let started = self.start_query(sql, opts).await;
        crate::metrics::global().query_done(started.is_ok());
        started
    }

    async fn start_query(&self, sql: &str, opts: &QueryOptions) -> Result<RowStream> {
        let query_id = opts
            .query_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if let Some(format) = own_format_clause(sql) {
            return Err(WarehouseError::Settings(format!(
                "the query ends in its own `FORMAT {format}`; remove it and choose the output with --format"
            )));
        }
        let started = Instant::now();
        let settings = self.settings();
        let mut request = self
            .http()
            .post(format!("{}/", settings.url))
            .basic_auth(&settings.user, Some(settings.password.expose()))
            .query(&self.query_params(opts, &query_id))
            .body(trim_sql(sql).to_string());
        // With wait_end_of_query the first byte comes only when the query is done, so the
        // client waits as long as the server may run it, plus a margin to hear its error.
        let client_timeout = opts.max_execution_time.map(|t| t + Duration::from_secs(5));
        if let Some(t) = client_timeout {
            request = request.timeout(t);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                let _ = Box::pin(self.cancel(&query_id)).await;
                return Err(WarehouseError::Timeout {
                    url: settings.url.clone(),
                    timeout: client_timeout.unwrap_or_default(),
                });
            }
            Err(e) => return Err(self.transport_error(&e)),
        };
        let status = response.status();
        let summary = response
            .headers()
            .get("X-ClickHouse-Summary")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_summary);
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(self.server_error(&body, status.as_u16(), &query_id));
        }
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("application/json"))
            .unwrap_or(false);
        let mut stream = RowStream {
            body: Box::pin(response.bytes_stream()),
            scanner: JsonCompactScanner::default(),
            columns: Vec::new(),
            types: Vec::new(),
            pending: Vec::new(),
            raw: Vec::new(),
            is_json,
            finished: false,
            stats: QueryStats {
                query_id,
                ..QueryStats::default()
            },
            totals: None,
            summary,
            started,
            url: settings.url.clone(),
            max_result_rows: opts.max_result_rows,
        };
        // Read until the columns are known, so callers can draw a header before any row.
        stream.read_until_columns().await?;
        Ok(stream)
    }

    /// Runs a query and collects the whole result.
    pub async fn query(&self, sql: &str, opts: &QueryOptions) -> Result<QueryResult> {
        let mut stream = self.query_stream(sql, opts).await?;
        let mut rows = Vec::new();
        while let Some(chunk) = stream.next_chunk().await? {
            rows.extend(chunk);
        }
        Ok(QueryResult {
            columns: stream.columns().to_vec(),
            rows,
            totals: stream.totals().map(<[Value]>::to_vec),
            stats: stream.stats().clone(),
        })
    }

    /// Runs a statement that returns no rows (DDL, INSERT ... VALUES), writes allowed.
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.query(sql, &QueryOptions::unrestricted())
            .await
            .map(drop)
    }

    /// Inserts data already in a ClickHouse input format (e.g. `CSVWithNames`) into `table`.
    pub async fn insert_formatted(
        &self,
        table: &str,
        format: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<()> {
        self.insert_formatted_with(table, format, body, &[]).await
    }

    /// Like `insert_formatted`, with settings for this insert, sent as URL parameters (which
    /// every version reads; 18.16 refuses `INSERT ... SETTINGS`).
    pub async fn insert_formatted_with(
        &self,
        table: &str,
        format: &str,
        body: impl Into<reqwest::Body>,
        insert_settings: &[(&str, &str)],
    ) -> Result<()> {
        let settings = self.settings();
        let query_id = uuid::Uuid::new_v4().to_string();
        let response = self
            .http()
            .post(format!("{}/", settings.url))
            .basic_auth(&settings.user, Some(settings.password.expose()))
            .query(&[
                ("database", settings.database.as_str()),
                ("query_id", query_id.as_str()),
                ("wait_end_of_query", "1"),
                ("query", &format!("INSERT INTO {table} FORMAT {format}")),
            ])
            .query(insert_settings)
            // A server that stopped answering must not hang a pipeline forever: give up,
            // and let the caller retry (and re-check what was stored).
            .timeout(INSERT_TIMEOUT.max(settings.query_timeout))
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(self.server_error(&text, status.as_u16(), &query_id));
        }
        Ok(())
    }

    /// Asks the server to stop a running query.
    pub async fn cancel(&self, query_id: &str) -> Result<()> {
        self.query(
            &format!("KILL QUERY WHERE query_id = {} ASYNC", quote_str(query_id)),
            &QueryOptions::unrestricted(),
        )
        .await
        .map(drop)
    }

    /// Checks a query without running it: `EXPLAIN` where the server has it, otherwise
    /// `DESCRIBE (query)`, which reports unknown tables, columns and functions and GROUP BY
    /// errors, and returns the result's columns.
    pub async fn dry_run(&self, sql: &str) -> Result<DryRun> {
        let sql = trim_sql(sql);
        let opts = QueryOptions {
            readonly: true,
            ..QueryOptions::default()
        };
        // Newlines, so a trailing `-- comment` cannot swallow the closing parenthesis.
        let describe = self.query(&format!("DESCRIBE (\n{sql}\n)"), &opts).await;
        match describe {
            Ok(result) => Ok(DryRun {
                columns: result
                    .rows
                    .iter()
                    .filter_map(|row| match (row.first(), row.get(1)) {
                        (Some(Value::String(name)), Some(Value::String(ty))) => Some(Column {
                            name: name.to_string(),
                            type_name: ty.to_string(),
                            data_type: DataType::parse(ty)
                                .unwrap_or_else(|_| DataType::Other(ty.to_string())),
                        }),
                        _ => None,
                    })
                    .collect(),
            }),
            // Some valid queries cannot be wrapped (a trailing FORMAT or SETTINGS clause);
            // newer servers can check those with EXPLAIN instead.
            Err(WarehouseError::Server(e)) if e.code == 62 && self.capabilities().explain => {
                self.query(&format!("EXPLAIN\n{sql}"), &opts).await?;
                Ok(DryRun {
                    columns: Vec::new(),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> WarehouseError {
        if e.is_timeout() {
            WarehouseError::Timeout {
                url: self.settings().url.clone(),
                timeout: self.settings().query_timeout,
            }
        } else {
            connect_error(&self.settings().url, e)
        }
    }

    fn server_error(&self, body: &str, status: u16, query_id: &str) -> WarehouseError {
        match ServerError::parse(body, status) {
            Some(e) if e.code == 394 => WarehouseError::Cancelled {
                query_id: query_id.to_string(),
            },
            Some(e) => WarehouseError::Server(e),
            None => WarehouseError::Protocol {
                url: self.settings().url.clone(),
                detail: format!(
                    "HTTP {status}: {}",
                    body.chars().take(200).collect::<String>().trim()
                ),
            },
        }
    }
}

/// The result columns of a query checked by [`Warehouse::dry_run`] (empty when the server
/// checked it with `EXPLAIN`, which does not report them).
#[derive(Debug, Clone, PartialEq)]
pub struct DryRun {
    pub columns: Vec<Column>,
}

type BodyStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Rows of a running query, in chunks. Dropping it closes the connection.
pub struct RowStream {
    body: BodyStream,
    scanner: JsonCompactScanner,
    columns: Vec<Column>,
    types: Vec<DataType>,
    pending: Vec<Vec<Value>>,
    /// The body of a non-JSON answer (statements without a result).
    raw: Vec<u8>,
    is_json: bool,
    finished: bool,
    stats: QueryStats,
    totals: Option<Vec<Value>>,
    summary: Option<Summary>,
    started: Instant,
    url: String,
    max_result_rows: Option<u64>,
}

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream")
            .field("columns", &self.columns)
            .field("stats", &self.stats)
            .finish()
    }
}

impl RowStream {
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Final statistics; complete once `next_chunk` has returned `None`.
    pub fn stats(&self) -> &QueryStats {
        &self.stats
    }

    /// The totals row of a `WITH TOTALS` query; known once the stream has ended.
    pub fn totals(&self) -> Option<&[Value]> {
        self.totals.as_deref()
    }

    pub fn query_id(&self) -> &str {
        &self.stats.query_id
    }

    async fn read_until_columns(&mut self) -> Result<()> {
        while self.columns.is_empty() && !self.finished {
            self.pull().await?;
        }
        Ok(())
    }

    /// The next rows, or `None` at the end of the result.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<Vec<Value>>>> {
        while self.pending.len() < CHUNK_ROWS && !self.finished {
            self.pull().await?;
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        let take = self.pending.len().min(CHUNK_ROWS);
        let rest = self.pending.split_off(take);
        Ok(Some(std::mem::replace(&mut self.pending, rest)))
    }

    /// Reads one network chunk and turns what it completes into rows.
    async fn pull(&mut self) -> Result<()> {
        match self.body.next().await {
            Some(Ok(bytes)) => {
                if !self.is_json {
                    self.raw.extend_from_slice(&bytes);
                    return Ok(());
                }
                let mut rows = Vec::new();
                let mut meta = None;
                self.scanner
                    .feed(&bytes, &mut rows, &mut meta)
                    .map_err(|detail| self.protocol(detail))?;
                if let Some(meta) = meta {
                    self.set_columns(&meta)?;
                }
                for row in rows {
                    // `result_overflow_mode=break` stops at a block boundary, so the server
                    // may send a whole block past the limit; the caller asked for the limit.
                    if self
                        .max_result_rows
                        .is_some_and(|l| self.stats.result_rows >= l)
                    {
                        self.stats.truncated = true;
                        continue;
                    }
                    let text = String::from_utf8_lossy(&row);
                    let values = decode_row(&text, &self.types)
                        .map_err(|e| WarehouseError::Decode(e.to_string()))?;
                    self.pending.push(values);
                    self.stats.result_rows += 1;
                }
                Ok(())
            }
            Some(Err(e)) => Err(if e.is_timeout() {
                WarehouseError::Timeout {
                    url: self.url.clone(),
                    timeout: self.started.elapsed(),
                }
            } else {
                connect_error(&self.url, &e)
            }),
            None => self.finish(),
        }
    }

    fn set_columns(&mut self, meta: &[u8]) -> Result<()> {
        #[derive(serde::Deserialize)]
        struct Meta {
            meta: Vec<MetaColumn>,
        }
        #[derive(serde::Deserialize)]
        struct MetaColumn {
            name: String,
            #[serde(rename = "type")]
            type_name: String,
        }
        let parsed: Meta = serde_json::from_slice(meta)
            .map_err(|e| self.protocol(format!("cannot read the result's columns: {e}")))?;
        self.columns = parsed
            .meta
            .into_iter()
            .map(|c| Column {
                data_type: DataType::parse(&c.type_name)
                    .unwrap_or_else(|_| DataType::Other(c.type_name.clone())),
                name: c.name,
                type_name: c.type_name,
            })
            .collect();
        self.types = self.columns.iter().map(|c| c.data_type.clone()).collect();
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.finished = true;
        self.stats.elapsed = self.started.elapsed();
        if !self.is_json {
            let text = String::from_utf8_lossy(&self.raw);
            // An exception appended to a 200 body: only if the server ignored wait_end_of_query.
            if let Some(e) = ServerError::parse(&text, 200) {
                return Err(WarehouseError::Server(e));
            }
            if !text.trim().is_empty() {
                return Err(self.protocol(
                    "the answer is not JSON: remove the query's FORMAT clause (use --format instead)"
                        .into(),
                ));
            }
            return Ok(());
        }
        let trailer = match self.scanner.finish() {
            Ok(t) => t,
            Err(garbage) => {
                // A mid-result failure on servers that stream before finishing.
                let text = String::from_utf8_lossy(&garbage);
                return Err(match ServerError::parse(&text, 200) {
                    Some(e) => WarehouseError::Server(e),
                    None => self.protocol("the result ended in the middle of a row".into()),
                });
            }
        };
        #[derive(serde::Deserialize, Default)]
        struct Trailer<'a> {
            #[serde(default)]
            statistics: Option<Statistics>,
            #[serde(default, borrow)]
            totals: Option<&'a serde_json::value::RawValue>,
        }
        #[derive(serde::Deserialize)]
        struct Statistics {
            elapsed: f64,
            rows_read: u64,
            bytes_read: u64,
        }
        let trailer: Trailer = serde_json::from_slice(&trailer).unwrap_or_default();
        if let Some(raw) = trailer.totals {
            self.totals = Some(
                decode_row(raw.get(), &self.types)
                    .map_err(|e| WarehouseError::Decode(format!("totals row: {e}")))?,
            );
        }
        if let Some(s) = trailer.statistics {
            self.stats.server_elapsed = Duration::try_from_secs_f64(s.elapsed).ok();
            self.stats.rows_read = Some(s.rows_read);
            self.stats.bytes_read = Some(s.bytes_read);
        } else if let Some(summary) = &self.summary {
            self.stats.rows_read = Some(summary.read_rows);
            self.stats.bytes_read = Some(summary.read_bytes);
        }
        Ok(())
    }

    fn protocol(&self, detail: String) -> WarehouseError {
        WarehouseError::Protocol {
            url: self.url.clone(),
            detail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    read_rows: u64,
    read_bytes: u64,
}

fn parse_summary(header: &str) -> Option<Summary> {
    let v: serde_json::Value = serde_json::from_str(header).ok()?;
    let num = |k: &str| {
        v.get(k).and_then(|x| {
            x.as_u64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
    };
    Some(Summary {
        read_rows: num("read_rows")?,
        read_bytes: num("read_bytes")?,
    })
}

/// Splits a streamed `JSONCompact` document into its `meta` header, each row of its `data`
/// array, and the rest (rows count and statistics), without assuming any whitespace layout.
#[derive(Debug, Default)]
struct JsonCompactScanner {
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Inside the top-level `"data": [ ... ]`.
    in_data: bool,
    /// The document minus the rows: `{"meta":[...],"data":[],"rows":..,"statistics":{..}}`.
    skeleton: Vec<u8>,
    row: Vec<u8>,
    meta_sent: bool,
}

impl JsonCompactScanner {
    fn feed(
        &mut self,
        bytes: &[u8],
        rows: &mut Vec<Vec<u8>>,
        meta: &mut Option<Vec<u8>>,
    ) -> Result<(), String> {
        for &b in bytes {
            if self.in_string {
                self.push(b);
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.push(b);
                }
                b'{' | b'[' => {
                    if self.depth == 1 && b == b'[' && self.skeleton_ends_with_key(b"\"data\"") {
                        self.in_data = true;
                        self.skeleton.push(b);
                        self.depth += 1;
                        if !self.meta_sent {
                            let mut m = self.skeleton.clone();
                            m.extend_from_slice(b"]}");
                            *meta = Some(m);
                            self.meta_sent = true;
                        }
                        continue;
                    }
                    self.depth += 1;
                    self.push(b);
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        return Err("unbalanced brackets in the result".into());
                    }
                    self.depth -= 1;
                    if self.in_data && self.depth == 1 {
                        self.in_data = false;
                        self.skeleton.push(b);
                        continue;
                    }
                    self.push(b);
                    if self.in_data && self.depth == 2 {
                        rows.push(std::mem::take(&mut self.row));
                    }
                }
                _ => {
                    // Separators between rows belong to no row; anything else there (an
                    // exception appended mid-result) is kept for `finish` to report.
                    let separator = b == b',' || b.is_ascii_whitespace();
                    if !(self.in_data && self.depth == 2 && self.row.is_empty() && separator) {
                        self.push(b);
                    }
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, b: u8) {
        if self.in_data && self.depth >= 3 {
            self.row.push(b);
        } else if self.in_data && self.depth == 2 {
            // A scalar element directly in `data` would be malformed JSONCompact; keep it
            // in the row buffer so the decoder reports it.
            self.row.push(b);
        } else {
            self.skeleton.push(b);
        }
    }

    fn skeleton_ends_with_key(&self, key: &[u8]) -> bool {
        let trimmed = trim_end_ws(&self.skeleton);
        let Some(before_colon) = trimmed.strip_suffix(b":") else {
            return false;
        };
        trim_end_ws(before_colon).ends_with(key)
    }

    /// The skeleton if the document is complete, else everything after the last complete
    /// element (where an appended exception would be).
    fn finish(&mut self) -> Result<Vec<u8>, Vec<u8>> {
        if self.depth == 0 && !self.in_string && !self.skeleton.is_empty() {
            let text = String::from_utf8_lossy(&self.skeleton);
            if !text.contains("Code: ")
                || serde_json::from_slice::<serde_json::Value>(&self.skeleton).is_ok()
            {
                return Ok(std::mem::take(&mut self.skeleton));
            }
        }
        let mut rest = std::mem::take(&mut self.row);
        if rest.is_empty() {
            rest = std::mem::take(&mut self.skeleton);
        }
        Err(rest)
    }
}

fn trim_end_ws(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n\t\"meta\":\n\t[\n\t\t{\"name\": \"a\", \"type\": \"String\"}\n\t],\n\n\t\"data\":\n\t[\n\t\t[\"x]\\\"[\"],\n\t\t[\"y\"]\n\t],\n\n\t\"rows\": 2,\n\t\"statistics\": {\"elapsed\": 0.001, \"rows_read\": 2, \"bytes_read\": 16}\n}\n";

    fn scan_in_pieces(doc: &str, piece: usize) -> (Vec<String>, String, String) {
        let mut scanner = JsonCompactScanner::default();
        let mut rows = Vec::new();
        let mut meta = None;
        for chunk in doc.as_bytes().chunks(piece) {
            scanner.feed(chunk, &mut rows, &mut meta).unwrap();
        }
        let trailer = scanner.finish().unwrap();
        (
            rows.iter()
                .map(|r| String::from_utf8(r.clone()).unwrap())
                .collect(),
            String::from_utf8(meta.unwrap()).unwrap(),
            String::from_utf8(trailer).unwrap(),
        )
    }

    #[test]
    fn splits_rows_whatever_the_chunking() {
        for piece in [1, 2, 3, 7, 64, 4096] {
            let (rows, meta, trailer) = scan_in_pieces(DOC, piece);
            assert_eq!(rows, vec!["[\"x]\\\"[\"]", "[\"y\"]"], "piece {piece}");
            let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
            assert_eq!(meta["meta"][0]["name"], "a");
            let trailer: serde_json::Value = serde_json::from_str(&trailer).unwrap();
            assert_eq!(trailer["statistics"]["rows_read"], 2);
            assert_eq!(trailer["data"], serde_json::json!([]));
        }
    }

    #[test]
    fn appended_exception_is_not_a_complete_document() {
        let cut = &DOC[..DOC.find("[\"y\"]").unwrap()];
        let doc = format!("{cut}Code: 395, e.displayText() = DB::Exception: boom");
        let mut scanner = JsonCompactScanner::default();
        let (mut rows, mut meta) = (Vec::new(), None);
        scanner.feed(doc.as_bytes(), &mut rows, &mut meta).unwrap();
        let rest = scanner.finish().unwrap_err();
        assert!(String::from_utf8_lossy(&rest).contains("Code: 395"));
    }

    #[test]
    fn detects_a_trailing_format_clause() {
        assert_eq!(own_format_clause("SELECT 1 FORMAT JSON;"), Some("JSON"));
        assert_eq!(
            own_format_clause("select 1\nformat CSVWithNames"),
            Some("CSVWithNames")
        );
        assert_eq!(own_format_clause("SELECT format FROM t"), None);
        assert_eq!(own_format_clause("SELECT 'FORMAT JSON'"), None);
    }

    #[test]
    fn trims_semicolons() {
        assert_eq!(trim_sql("  SELECT 1 ;; \n"), "SELECT 1");
    }

    #[test]
    fn summary_header_parses_quoted_numbers() {
        assert_eq!(
            parse_summary(r#"{"read_rows":"10","read_bytes":"80","written_rows":"0"}"#),
            Some(Summary {
                read_rows: 10,
                read_bytes: 80
            })
        );
    }
}
