//! PostgreSQL tables as a source, through `tokio-postgres` (see `sql` for the copy itself).
//!
//! Rows are rendered by the server with `row_to_json`, so every PostgreSQL type arrives as the
//! JSON PostgreSQL itself would produce. The session is read-only and in UTC.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, Statement};

use crate::ingest::pipeline::SqlSource;
use crate::ingest::sources::sql::{self, Bound, Database, Row, SqlSourceError};

/// How long one page query may take before the connection counts as broken.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);

/// The kinds of cursor column, each with its own SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CursorKind {
    Integer,
    Timestamp,
    TimestampTz,
    Date,
}

impl CursorKind {
    fn of(ty: &Type) -> Option<Self> {
        Some(match *ty {
            Type::INT2 | Type::INT4 | Type::INT8 => Self::Integer,
            Type::TIMESTAMP => Self::Timestamp,
            Type::TIMESTAMPTZ => Self::TimestampTz,
            Type::DATE => Self::Date,
            _ => return None,
        })
    }

    /// The column's value as a position (bigint).
    fn position(self, column: &str) -> String {
        match self {
            Self::Integer => format!("{column}::bigint"),
            Self::Timestamp | Self::TimestampTz => {
                format!("(extract(epoch from {column}) * 1000000)::bigint")
            }
            Self::Date => format!("({column} - date '1970-01-01')::bigint"),
        }
    }

    /// A position (parameter `$1`, bigint) as a value of the column's type, so that the
    /// comparison can use an index on the column.
    fn value(self) -> &'static str {
        match self {
            Self::Integer => "$1::bigint",
            Self::Timestamp => "(timestamp '1970-01-01' + $1::bigint * interval '1 microsecond')",
            Self::TimestampTz => {
                "(timestamptz '1970-01-01 00:00:00+00' + $1::bigint * interval '1 microsecond')"
            }
            Self::Date => "(date '1970-01-01' + ($1::bigint)::int)",
        }
    }
}

pub struct Postgres {
    config: Config,
    /// TLS with the server verified, or None for a plain connection.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    shown: String,
    inner: String,
    cursor: String,
    connection: Option<Connection>,
}

struct Connection {
    client: Client,
    kind: CursorKind,
    /// Prepared page queries, by bound kind and whether they have a limit.
    statements: Vec<((u8, bool), Statement)>,
}

impl Postgres {
    /// Parses the DSN; connects on the first fetch.
    pub fn new(spec: &SqlSource) -> Result<Self, SqlSourceError> {
        let mut config = Config::from_str(&spec.dsn).map_err(|e| {
            SqlSourceError::Fatal(format!(
                "`{}` is not a PostgreSQL connection string: {e}",
                sql::redact(&spec.dsn)
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("aurora");
        let settings = spec.tls_settings().map_err(SqlSourceError::Fatal)?;
        let settings = match settings {
            Some(settings) => Some(settings),
            // The DSN's own `sslmode=require` is honoured with the default verification.
            None if config.get_ssl_mode() == SslMode::Require && spec.tls.is_none() => {
                Some(crate::warehouse::settings::TlsSettings::default())
            }
            None => None,
        };
        let tls = match settings {
            Some(settings) => {
                config.ssl_mode(SslMode::Require);
                let rustls = crate::warehouse::tls::client_config(&settings)
                    .map_err(|e| SqlSourceError::Fatal(e.to_string()))?;
                Some(tokio_postgres_rustls::MakeRustlsConnect::new(rustls))
            }
            None => {
                config.ssl_mode(SslMode::Disable);
                None
            }
        };
        Ok(Self {
            config,
            tls,
            shown: sql::redact(&spec.dsn),
            inner: sql::inner_query(spec, quote),
            cursor: format!("q.{}", quote(&spec.cursor)),
            connection: None,
        })
    }

    /// The stream name of this source: `postgres:<database>/<table or query>`.
    pub fn source_id(&self, spec: &SqlSource) -> String {
        let database = self
            .config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("postgres");
        sql::source_id("postgres", database, spec)
    }

    async fn connect(&mut self) -> Result<&mut Connection, SqlSourceError> {
        if self.connection.is_none() {
            let failed = |e: tokio_postgres::Error| {
                classify(&e, &format!("cannot connect to {}", self.shown))
            };
            let client = match &self.tls {
                Some(tls) => {
                    let (client, connection) =
                        self.config.connect(tls.clone()).await.map_err(failed)?;
                    tokio::spawn(drive(connection));
                    client
                }
                None => {
                    let (client, connection) = self.config.connect(NoTls).await.map_err(failed)?;
                    tokio::spawn(drive(connection));
                    client
                }
            };
            client
                .batch_execute(
                    "SET TIME ZONE 'UTC'; SET default_transaction_read_only = on; \
                     SET statement_timeout = '300s'",
                )
                .await
                .map_err(|e| classify(&e, "cannot set up the PostgreSQL session"))?;
            let probe = format!("SELECT {} FROM ({}) AS q LIMIT 0", self.cursor, self.inner);
            let statement = client
                .prepare(&probe)
                .await
                .map_err(|e| classify(&e, "the source's rows cannot be read"))?;
            let ty = statement
                .columns()
                .first()
                .map(|c| c.type_().clone())
                .unwrap_or(Type::UNKNOWN);
            let kind = CursorKind::of(&ty).ok_or_else(|| {
                SqlSourceError::Fatal(format!(
                    "cursor column {} has type {ty}; use an integer, timestamp or date column",
                    self.cursor
                ))
            })?;
            self.connection = Some(Connection {
                client,
                kind,
                statements: Vec::new(),
            });
        }
        self.connection
            .as_mut()
            .ok_or_else(|| SqlSourceError::Transient("not connected".into()))
    }
}

/// The page query for `bound` over `inner`, ordered by cursor column `c` (quoted, `q.`-prefixed).
fn page_sql(inner: &str, c: &str, kind: CursorKind, bound: Bound, limited: bool) -> String {
    let filter = match bound {
        Bound::Start => format!("{c} IS NOT NULL"),
        Bound::After(_) => format!("{c} > {}", kind.value()),
        Bound::From(_) => format!("{c} >= {}", kind.value()),
        Bound::Equal(_) => format!("{c} = {}", kind.value()),
    };
    let limit = match (limited, bound) {
        (false, _) => "",
        (true, Bound::Start) => " LIMIT $1",
        (true, _) => " LIMIT $2",
    };
    format!(
        "SELECT row_to_json(q)::text, {} FROM ({inner}) AS q WHERE {filter} ORDER BY {c}{limit}",
        kind.position(c),
    )
}

impl Database for Postgres {
    async fn fetch(
        &mut self,
        bound: Bound,
        limit: Option<u64>,
    ) -> Result<Vec<Row>, SqlSourceError> {
        self.connect().await?;
        let Self {
            connection: Some(connection),
            inner,
            cursor,
            ..
        } = self
        else {
            return Err(SqlSourceError::Transient("not connected".into()));
        };
        let key = (bound_key(bound), limit.is_some());
        let statement = match connection.statements.iter().find(|(k, _)| *k == key) {
            Some((_, s)) => s.clone(),
            None => {
                let sql = page_sql(inner, cursor, connection.kind, bound, limit.is_some());
                let s = connection
                    .client
                    .prepare(&sql)
                    .await
                    .map_err(|e| classify(&e, "the source's rows cannot be read"))?;
                connection.statements.push((key, s.clone()));
                s
            }
        };
        let value = match bound {
            Bound::Start => None,
            Bound::After(v) | Bound::From(v) | Bound::Equal(v) => Some(
                i64::try_from(v)
                    .map_err(|_| SqlSourceError::Fatal(format!("position {v} is out of range")))?,
            ),
        };
        let limit = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        if let Some(v) = &value {
            params.push(v);
        }
        if let Some(l) = &limit {
            params.push(l);
        }
        let rows =
            tokio::time::timeout(QUERY_TIMEOUT, connection.client.query(&statement, &params))
                .await
                .map_err(|_| {
                    SqlSourceError::Transient(format!(
                        "PostgreSQL did not answer within {QUERY_TIMEOUT:?}"
                    ))
                })?
                .map_err(|e| classify(&e, "reading the source failed"))?;
        rows.iter()
            .map(|r| {
                Ok(Row {
                    json: r
                        .try_get(0)
                        .map_err(|e| classify(&e, "reading a row failed"))?,
                    cursor: r
                        .try_get(1)
                        .map_err(|e| classify(&e, "reading a row failed"))?,
                })
            })
            .collect()
    }

    fn disconnect(&mut self) {
        self.connection = None;
    }
}

/// Which prepared statement a bound uses.
fn bound_key(bound: Bound) -> u8 {
    match bound {
        Bound::Start => 0,
        Bound::After(_) => 1,
        Bound::From(_) => 2,
        Bound::Equal(_) => 3,
    }
}

/// A PostgreSQL identifier, quoted.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether an error is worth retrying, with PostgreSQL's own words.
fn classify(e: &tokio_postgres::Error, context: &str) -> SqlSourceError {
    let Some(db) = e.as_db_error() else {
        // No answer from the server: I/O, a closed connection, a timeout.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        if let Some(refused) = sql::untrusted_certificate(context, &text) {
            return refused;
        }
        return SqlSourceError::Transient(format!("{context}: {text}"));
    };
    let mut text = format!("{context}: {}", db.message());
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" ({detail})"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    let code = db.code().code();
    // Shutdown, too many connections, out of resources, serialization conflicts, timeouts.
    let transient = code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57")
        || code.starts_with("40")
        || code == "55P03";
    if transient {
        SqlSourceError::Transient(text)
    } else {
        SqlSourceError::Fatal(text)
    }
}

/// Runs a connection's I/O until it ends.
async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::debug!("PostgreSQL connection ended: {e}");
    }
}

/// Live checks for `aurora pipeline validate`: the database answers and the cursor column
/// can be used.
pub async fn check(spec: &SqlSource) -> Vec<String> {
    let mut db = match Postgres::new(spec) {
        Ok(db) => db,
        Err(e) => return vec![e.to_string()],
    };
    match db.connect().await {
        Ok(_) => Vec::new(),
        Err(e) => vec![e.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SqlSource {
        SqlSource {
            dsn: "postgres://aurora:pw@localhost:5432/shop".into(),
            table: Some("orders".into()),
            query: None,
            cursor: "updated_at".into(),
            follow: true,
            poll_interval: Duration::from_secs(1),
            page_rows: 10,
            tls: None,
        }
    }

    #[test]
    fn page_queries_compare_on_the_column_and_order_by_it() {
        let pg = Postgres::new(&spec()).unwrap();
        assert_eq!(pg.source_id(&spec()), "postgres:shop/orders");
        let sql = page_sql(
            &pg.inner,
            &pg.cursor,
            CursorKind::TimestampTz,
            Bound::After(5),
            true,
        );
        assert_eq!(
            sql,
            "SELECT row_to_json(q)::text, (extract(epoch from q.\"updated_at\") * 1000000)::bigint \
             FROM (SELECT * FROM \"orders\") AS q \
             WHERE q.\"updated_at\" > (timestamptz '1970-01-01 00:00:00+00' + $1::bigint * interval '1 microsecond') \
             ORDER BY q.\"updated_at\" LIMIT $2"
        );
        let start = page_sql(
            &pg.inner,
            &pg.cursor,
            CursorKind::Integer,
            Bound::Start,
            true,
        );
        assert!(
            start
                .ends_with("WHERE q.\"updated_at\" IS NOT NULL ORDER BY q.\"updated_at\" LIMIT $1"),
            "{start}"
        );
    }

    #[test]
    fn bad_dsns_are_reported_without_the_password() {
        let mut s = spec();
        s.dsn = "postgres://u:topsecret@host:notaport/db".into();
        let err = Postgres::new(&s).err().unwrap().to_string();
        assert!(!err.contains("topsecret"), "{err}");
        assert!(err.contains("not a PostgreSQL connection string"), "{err}");
    }
}
