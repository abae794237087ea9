//! MySQL and MariaDB tables as a source, through `mysql_async` (see `sql` for the copy itself).
//!
//! Rows are rendered by the server with `JSON_OBJECT`, so numbers and decimals keep their
//! digits and times come as text. The session is read-only and in UTC, so `TIMESTAMP` columns
//! read the same whatever the server's time zone.

use std::time::Duration;

use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Params, Value};

use crate::ingest::pipeline::SqlSource;
use crate::ingest::sources::sql::{self, Bound, Database, Row, SqlSourceError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one page query may take before the connection counts as broken.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The kinds of cursor column, each with its own SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CursorKind {
    Integer,
    DateTime,
    Date,
}

impl CursorKind {
    fn of(ty: ColumnType) -> Option<Self> {
        use ColumnType::*;
        Some(match ty {
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG => Self::Integer,
            MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_TIMESTAMP2 => Self::DateTime,
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Self::Date,
            _ => return None,
        })
    }

    /// The column's value as a position (a signed integer).
    fn position(self, column: &str) -> String {
        match self {
            Self::Integer => format!("CAST({column} AS SIGNED)"),
            Self::DateTime => {
                format!("TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', {column})")
            }
            Self::Date => format!("DATEDIFF({column}, DATE'1970-01-01')"),
        }
    }

    /// A position (the `?` parameter) as a value of the column's type, so that the comparison
    /// can use an index on the column.
    fn value(self) -> &'static str {
        match self {
            Self::Integer => "?",
            Self::DateTime => "TIMESTAMPADD(MICROSECOND, ?, TIMESTAMP'1970-01-01 00:00:00.000000')",
            Self::Date => "DATE_ADD(DATE'1970-01-01', INTERVAL ? DAY)",
        }
    }
}

pub struct Mysql {
    opts: Opts,
    shown: String,
    inner: String,
    cursor_name: String,
    connection: Option<Connection>,
}

struct Connection {
    conn: Conn,
    kind: CursorKind,
    /// `JSON_OBJECT('a', q.a, ...)` over every column of the source's rows.
    object: String,
}

impl Mysql {
    /// Parses the DSN; connects on the first fetch.
    pub fn new(spec: &SqlSource) -> Result<Self, SqlSourceError> {
        let mut opts = Opts::from_url(&spec.dsn).map_err(|e| {
            SqlSourceError::Fatal(format!(
                "`{}` is not a MySQL connection URL (mysql://user:password@host:port/database): {e}",
                sql::redact(&spec.dsn)
            ))
        })?;
        if let Some(tls) = spec.tls_settings().map_err(SqlSourceError::Fatal)? {
            // rustls with the server's certificate and name verified: the built-in web roots
            // plus `ca_file`.
            let mut ssl = mysql_async::SslOpts::default();
            if let Some(ca) = tls.ca_file {
                ssl = ssl.with_root_certs(vec![ca.into()]);
            }
            if let Some((cert, key)) = tls.client_identity {
                ssl = ssl.with_client_identity(Some(mysql_async::ClientIdentity::new(
                    cert.into(),
                    key.into(),
                )));
            }
            opts = mysql_async::OptsBuilder::from_opts(opts)
                .ssl_opts(Some(ssl))
                .into();
        }
        Ok(Self {
            opts,
            shown: sql::redact(&spec.dsn),
            inner: sql::inner_query(spec, quote),
            cursor_name: spec.cursor.clone(),
            connection: None,
        })
    }

    /// The stream name of this source: `mysql:<database>/<table or query>`.
    pub fn source_id(&self, spec: &SqlSource) -> String {
        sql::source_id("mysql", self.opts.db_name().unwrap_or("mysql"), spec)
    }

    async fn connect(&mut self) -> Result<&mut Connection, SqlSourceError> {
        if self.connection.is_none() {
            let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(self.opts.clone()))
                .await
                .map_err(|_| {
                    SqlSourceError::Transient(format!(
                        "cannot connect to {}: no answer within {CONNECT_TIMEOUT:?}",
                        self.shown
                    ))
                })?
                .map_err(|e| classify(e, &format!("cannot connect to {}", self.shown)))?;
            for setting in [
                "SET time_zone = '+00:00'",
                "SET SESSION TRANSACTION READ ONLY",
            ] {
                conn.query_drop(setting)
                    .await
                    .map_err(|e| classify(e, "cannot set up the MySQL session"))?;
            }
            let probe = format!("SELECT * FROM ({}) AS q LIMIT 0", self.inner);
            let result = conn
                .query_iter(probe)
                .await
                .map_err(|e| classify(e, "the source's rows cannot be read"))?;
            let columns = result.columns().map(|c| c.to_vec()).unwrap_or_default();
            result
                .drop_result()
                .await
                .map_err(|e| classify(e, "the source's rows cannot be read"))?;
            let cursor = columns
                .iter()
                .find(|c| c.name_str().eq_ignore_ascii_case(&self.cursor_name))
                .ok_or_else(|| {
                    let names: Vec<String> =
                        columns.iter().map(|c| c.name_str().into_owned()).collect();
                    let hint = crate::config::did_you_mean(
                        &self.cursor_name,
                        names.iter().map(String::as_str),
                    )
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                    SqlSourceError::Fatal(format!(
                        "the source's rows have no cursor column `{}` (they have {}){hint}",
                        self.cursor_name,
                        names.join(", ")
                    ))
                })?;
            let kind = CursorKind::of(cursor.column_type()).ok_or_else(|| {
                SqlSourceError::Fatal(format!(
                    "cursor column `{}` has type {:?}; use an integer, DATETIME, TIMESTAMP or DATE column",
                    self.cursor_name,
                    cursor.column_type()
                ))
            })?;
            let object = columns
                .iter()
                .map(|c| {
                    let name = c.name_str();
                    format!("{}, q.{}", quote_str(&name), quote(&name))
                })
                .collect::<Vec<_>>()
                .join(", ");
            self.connection = Some(Connection {
                conn,
                kind,
                object: format!("JSON_OBJECT({object})"),
            });
        }
        self.connection
            .as_mut()
            .ok_or_else(|| SqlSourceError::Transient("not connected".into()))
    }
}

impl Database for Mysql {
    async fn fetch(
        &mut self,
        bound: Bound,
        limit: Option<u64>,
    ) -> Result<Vec<Row>, SqlSourceError> {
        self.connect().await?;
        let Self {
            connection: Some(connection),
            inner,
            cursor_name,
            ..
        } = self
        else {
            return Err(SqlSourceError::Transient("not connected".into()));
        };
        let cursor = format!("q.{}", quote(cursor_name));
        let kind = connection.kind;
        let (filter, value) = match bound {
            Bound::Start => (format!("{cursor} IS NOT NULL"), None),
            Bound::After(v) => (format!("{cursor} > {}", kind.value()), Some(v)),
            Bound::From(v) => (format!("{cursor} >= {}", kind.value()), Some(v)),
            Bound::Equal(v) => (format!("{cursor} = {}", kind.value()), Some(v)),
        };
        let mut params = Vec::new();
        if let Some(v) = value {
            params.push(Value::UInt(v));
        }
        let limit = match limit {
            Some(l) => {
                params.push(Value::UInt(l));
                " LIMIT ?"
            }
            None => "",
        };
        let sql = format!(
            "SELECT {}, {} FROM ({inner}) AS q WHERE {filter} ORDER BY {cursor}{limit}",
            connection.object,
            kind.position(&cursor)
        );
        let params = if params.is_empty() {
            Params::Empty
        } else {
            Params::Positional(params)
        };
        let rows: Vec<(String, i64)> =
            tokio::time::timeout(QUERY_TIMEOUT, connection.conn.exec(sql, params))
                .await
                .map_err(|_| {
                    SqlSourceError::Transient(format!(
                        "MySQL did not answer within {QUERY_TIMEOUT:?}"
                    ))
                })?
                .map_err(|e| classify(e, "reading the source failed"))?;
        Ok(rows
            .into_iter()
            .map(|(json, cursor)| Row { json, cursor })
            .collect())
    }

    fn disconnect(&mut self) {
        self.connection = None;
    }
}

/// A MySQL identifier, quoted.
fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A MySQL string literal.
fn quote_str(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Whether an error is worth retrying, with the server's own words.
fn classify(e: mysql_async::Error, context: &str) -> SqlSourceError {
    match e {
        mysql_async::Error::Server(server) => {
            let text = format!("{context}: {} (error {})", server.message, server.code);
            // Lock waits, deadlocks, too many connections, shutting down, read-only replica
            // catching up: waiting helps. Anything else (no such table, access denied) not.
            if matches!(server.code, 1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013) {
                SqlSourceError::Transient(text)
            } else {
                SqlSourceError::Fatal(text)
            }
        }
        mysql_async::Error::Url(e) => SqlSourceError::Fatal(format!("{context}: {e}")),
        other => {
            let text = without_repeats(&other);
            sql::untrusted_certificate(context, &text)
                .unwrap_or_else(|| SqlSourceError::Transient(format!("{context}: {text}")))
        }
    }
}

/// An error's text with a part repeated by nested wrappers said once
/// (`Input/output error: Input/output error: Connection refused`).
fn without_repeats(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

/// Live checks for `aurora pipeline validate`: the database answers and the cursor column
/// can be used.
pub async fn check(spec: &SqlSource) -> Vec<String> {
    let mut db = match Mysql::new(spec) {
        Ok(db) => db,
        Err(e) => return vec![e.to_string()],
    };
    let problems = match db.connect().await {
        Ok(_) => Vec::new(),
        Err(e) => vec![e.to_string()],
    };
    if let Some(c) = db.connection.take() {
        let _ = c.conn.disconnect().await;
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_error_texts_are_said_once() {
        assert_eq!(
            without_repeats(&"Input/output error: Input/output error: Connection refused"),
            "Input/output error: Connection refused"
        );
    }

    #[test]
    fn identifiers_and_names_are_quoted() {
        assert_eq!(quote("a`b"), "`a``b`");
        assert_eq!(quote_str("it's \\"), "'it''s \\\\'");
        assert_eq!(
            CursorKind::DateTime.position("q.`t`"),
            "TIMESTAMPDIFF(MICROSECOND, TIMESTAMP'1970-01-01 00:00:00', q.`t`)"
        );
    }

    #[test]
    fn source_ids_name_the_database_and_table() {
        let spec = SqlSource {
            dsn: "mysql://root:pw@127.0.0.1:3306/shop".into(),
            table: Some("orders".into()),
            query: None,
            cursor: "id".into(),
            follow: true,
            poll_interval: Duration::from_secs(1),
            page_rows: 10,
            tls: None,
        };
        let db = Mysql::new(&spec).unwrap();
        assert_eq!(db.source_id(&spec), "mysql:shop/orders");
        let mut bad = spec.clone();
        bad.dsn = "postgres://x:secret@h/db".into();
        let err = Mysql::new(&bad).err().unwrap().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
