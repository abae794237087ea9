//! Tables of SQL databases (PostgreSQL, MySQL/MariaDB) as sources, copied by a cursor column.
//!
//! The source reads rows in the order of an ever-increasing cursor column (an id, a sequence, an
//! `updated_at`), a page at a time: `WHERE cursor > last ORDER BY cursor LIMIT n`. Each row
//! becomes a JSON object (built by the database itself, so numbers, decimals and times keep
//! their text) whose position is the cursor value as an unsigned integer: the value for integer
//! columns, microseconds since 1970 for timestamps, days for dates. A page never ends in the
//! middle of a run of equal cursor values, so `> last` never skips rows that share a value.
//!
//! Positions are saved (per pipeline, in `cursors.json`) only once the sink stored the rows. A
//! restart reads again from the saved value inclusive (`>= saved`): in `exactly_once` mode the
//! sink recognises the rows it already holds; `at_least_once` stores that last value's rows
//! again. `exactly_once` needs unique cursor values, since the position is what identifies a
//! row; a repeated value stops the pipeline with an explanation rather than risk a loss.
//!
//! The database-specific parts (connecting, the SQL for each kind of cursor column, which
//! errors are worth retrying) are in `postgres` and `mysql`, behind [`Database`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::ingest::pipeline::SqlSource;
use crate::ingest::record::{Payload, SourceRecord};
use crate::ingest::sources::HealthReporter;

/// Which rows a query asks for, by encoded cursor value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Every row with a cursor value.
    Start,
    /// Cursor value greater than this.
    After(u64),
    /// Cursor value greater than or equal to this.
    From(u64),
    /// Exactly this cursor value.
    Equal(u64),
}

/// One row as the database rendered it: a JSON object and its cursor value.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub json: String,
    pub cursor: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SqlSourceError {
    /// Retrying cannot help: bad DSN, authentication, a missing table or column.
    #[error("{0}")]
    Fatal(String),
    /// The server is unreachable, restarting or overloaded: reconnect and retry.
    #[error("{0}")]
    Transient(String),
}

/// What the copy loop needs from a database.
pub trait Database: Send {
    /// Up to `limit` rows (all, if `None`) within `bound`, ordered by the cursor column.
    /// Connects (again) first if there is no open connection.
    fn fetch(
        &mut self,
        bound: Bound,
        limit: Option<u64>,
    ) -> impl Future<Output = Result<Vec<Row>, SqlSourceError>> + Send;

    /// Drops the connection, so that the next `fetch` opens a new one.
    fn disconnect(&mut self);
}

/// How long a retry waits at most.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How one run of the copy loop is set up.
pub struct CopyRun {
    pub spec: SqlSource,
    pub source_id: Arc<str>,
    /// The position saved by an earlier run, if any.
    pub saved: Option<u64>,
    pub exactly_once: bool,
}

/// Copies rows until the end (without `follow`) or until cancelled.
pub async fn run<D: Database>(
    db: &mut D,
    copy: CopyRun,
    tx: crate::ingest::queue::RecordSender,
    cancel: CancellationToken,
    health: HealthReporter,
) -> Result<(), SqlSourceError> {
    let limit = copy.spec.page_rows.max(1);
    let mut bound = copy.saved.map_or(Bound::Start, Bound::From);
    let mut last_sent: Option<u64> = None;
    let mut backoff = Duration::from_millis(500);
    let mut unhealthy = false;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let (rows, complete) = match next_page(db, bound, limit, &cancel).await {
            Ok(page) => {
                if unhealthy {
                    health(None);
                    unhealthy = false;
                }
                backoff = Duration::from_millis(500);
                page
            }
            Err(SqlSourceError::Transient(reason)) => {
                tracing::warn!(source = %copy.source_id, "cannot read the database, retrying in {backoff:?}: {reason}");
                health(Some(reason));
                unhealthy = true;
                db.disconnect();
                if sleep_or_cancel(backoff, &cancel).await {
                    return Ok(());
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(fatal) => return Err(fatal),
        };
        for row in rows {
            let offset = position(row.cursor, &copy.spec)?;
            if copy.exactly_once && last_sent == Some(offset) {
                return Err(SqlSourceError::Fatal(format!(
                    "cursor column `{}` is not unique (several rows have the value at position {offset}); \
                     exactly_once identifies rows by it, so choose a unique cursor (an id or sequence) \
                     or use `delivery: at_least_once`",
                    copy.spec.cursor
                )));
            }
            let payload = serde_json::from_str(&row.json)
                .map(Payload::Json)
                .map_err(|e| format!("the database returned invalid JSON: {e}"));
            let record = SourceRecord {
                source_id: copy.source_id.clone(),
                offset,
                payload,
                raw: row.json,
            };
            if tx.send(record).await.is_err() {
                // The pipeline is shutting down.
                return Ok(());
            }
            last_sent = Some(offset);
        }
        if let Some(last) = last_sent {
            bound = Bound::After(last);
        }
        if complete {
            if !copy.spec.follow {
                return Ok(());
            }
            if sleep_or_cancel(copy.spec.poll_interval, &cancel).await {
                return Ok(());
            }
        }
    }
}

/// The next page, and whether it reached the end of what the source holds now. A page never
/// ends inside a run of equal cursor values: a full page's last value may continue past it,
/// so those rows are left for the next page, and a value that fills a whole page is fetched
/// in full.
async fn next_page<D: Database>(
    db: &mut D,
    bound: Bound,
    limit: u64,
    cancel: &CancellationToken,
) -> Result<(Vec<Row>, bool), SqlSourceError> {
    let mut rows = cancellable(db.fetch(bound, Some(limit)), cancel).await?;
    if (rows.len() as u64) < limit {
        return Ok((rows, true));
    }
    let Some(last) = rows.last().map(|r| r.cursor) else {
        return Ok((rows, true));
    };
    match rows.iter().rposition(|r| r.cursor != last) {
        Some(i) => rows.truncate(i + 1),
        None => {
            if let Ok(value) = u64::try_from(last) {
                rows = cancellable(db.fetch(Bound::Equal(value), None), cancel).await?;
            }
            // (A negative value is not a position at all: the caller reports it.)
        }
    }
    Ok((rows, false))
}

/// Runs `fetch` unless `cancel` fires first (then: no rows, the loop ends).
async fn cancellable(
    fetch: impl Future<Output = Result<Vec<Row>, SqlSourceError>>,
    cancel: &CancellationToken,
) -> Result<Vec<Row>, SqlSourceError> {
    tokio::select! {
        rows = fetch => rows,
        _ = cancel.cancelled() => Ok(Vec::new()),
    }
}

/// Waits `wait`; true if cancelled meanwhile.
async fn sleep_or_cancel(wait: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = cancel.cancelled() => true,
    }
}

/// A cursor value as a record position; negative values cannot be positions.
fn position(cursor: i64, spec: &SqlSource) -> Result<u64, SqlSourceError> {
    u64::try_from(cursor).map_err(|_| {
        SqlSourceError::Fatal(format!(
            "cursor column `{}` holds a value before 1970 or below zero ({cursor}); \
             Aurora needs non-negative cursor values",
            spec.cursor
        ))
    })
}

/// A connection error that is the TLS handshake refusing the server's certificate: retrying
/// cannot help, so the source fails at once, saying what to set. None for other errors.
pub fn untrusted_certificate(context: &str, text: &str) -> Option<SqlSourceError> {
    text.contains("certificate").then(|| {
        SqlSourceError::Fatal(format!(
            "{context}: {text}; the server's TLS certificate is not trusted: set `tls.ca_file` to \
             the CA that signed it (PEM), or check that the DSN's host is a name the certificate \
             is for"
        ))
    })
}

/// A DSN fit for messages: the password replaced by `***`, even in a DSN that does not parse.
pub fn redact(dsn: &str) -> String {
    if let Some((scheme, rest)) = dsn.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        return match rest[..authority_end].rsplit_once('@') {
            Some((user_info, host)) => {
                let user = user_info.split(':').next().unwrap_or_default();
                let hidden = if user_info.contains(':') { ":***" } else { "" };
                format!("{scheme}://{user}{hidden}@{host}{}", &rest[authority_end..])
            }
            None => dsn.to_string(),
        };
    }
    // Key-value DSNs (`host=... password=...`): hide the password's value.
    dsn.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The rows a source reads: its `query`, or everything of its `table`, as SQL text that can
/// be wrapped as a subquery. `quote` quotes one identifier in the database's dialect.
pub fn inner_query(spec: &SqlSource, quote: impl Fn(&str) -> String) -> String {
    match (&spec.query, &spec.table) {
        (Some(query), _) => query.trim().trim_end_matches(';').trim_end().to_string(),
        (None, Some(table)) => {
            let name = table
                .split('.')
                .map(|part| quote(part.trim()))
                .collect::<Vec<_>>()
                .join(".");
            format!("SELECT * FROM {name}")
        }
        // Pipeline validation refuses this; an empty query makes the database say so anyway.
        (None, None) => String::new(),
    }
}

/// The stream name of a source: `<kind>:<database>/<table>`, or `/query` for a query.
pub fn source_id(kind: &str, database: &str, spec: &SqlSource) -> String {
    let what = match (&spec.query, &spec.table) {
        (None, Some(table)) => table.as_str(),
        _ => "query",
    };
    format!("{kind}:{database}/{what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table in memory: (cursor, payload), sorted by cursor.
    struct Fake {
        rows: Vec<(i64, &'static str)>,
        fetches: Vec<(Bound, Option<u64>)>,
        fail_next: Option<SqlSourceError>,
    }

    impl Database for Fake {
        async fn fetch(
            &mut self,
            bound: Bound,
            limit: Option<u64>,
        ) -> Result<Vec<Row>, SqlSourceError> {
            self.fetches.push((bound, limit));
            if let Some(e) = self.fail_next.take() {
                return Err(e);
            }
            let keep = |c: i64| match bound {
                Bound::Start => true,
                Bound::After(v) => c > v as i64,
                Bound::From(v) => c >= v as i64,
                Bound::Equal(v) => c == v as i64,
            };
            Ok(self
                .rows
                .iter()
                .filter(|(c, _)| keep(*c))
                .take(limit.map_or(usize::MAX, |l| l as usize))
                .map(|(c, j)| Row {
                    json: j.to_string(),
                    cursor: *c,
                })
                .collect())
        }
        fn disconnect(&mut self) {}
    }

    fn spec(page_rows: u64) -> SqlSource {
        SqlSource {
            dsn: "postgres://u:secret@h/db".into(),
            table: Some("t".into()),
            query: None,
            cursor: "id".into(),
            follow: false,
            poll_interval: Duration::from_millis(1),
            page_rows,
            tls: None,
        }
    }

    async fn copy(
        db: &mut Fake,
        spec: &SqlSource,
        saved: Option<u64>,
        exactly_once: bool,
    ) -> (Result<(), SqlSourceError>, Vec<SourceRecord>) {
        let (tx, mut rx) = crate::ingest::queue::channel(1000, 1 << 30);
        let result = run(
            db,
            CopyRun {
                spec: spec.clone(),
                source_id: Arc::from("postgres:db/t"),
                saved,
                exactly_once,
            },
            tx,
            CancellationToken::new(),
            Box::new(|_| {}),
        )
        .await;
        let mut out = Vec::new();
        while let Some(r) = rx.try_recv() {
            out.push(r);
        }
        (result, out)
    }

    #[tokio::test]
    async fn pages_never_split_equal_cursor_values() {
        // Page size 3; value 2 spans the first page boundary, value 5 fills a page by itself.
        let mut db = Fake {
            rows: vec![
                (1, "{\"a\":1}"),
                (2, "{\"a\":2}"),
                (2, "{\"a\":3}"),
                (2, "{\"a\":4}"),
                (5, "{\"a\":5}"),
                (5, "{\"a\":6}"),
                (5, "{\"a\":7}"),
                (5, "{\"a\":8}"),
                (9, "{\"a\":9}"),
            ],
            fetches: Vec::new(),
            fail_next: None,
        };
        let (result, records) = copy(&mut db, &spec(3), None, false).await;
        result.unwrap();
        let got: Vec<i64> = records
            .iter()
            .map(|r| {
                r.payload.clone().unwrap().into_json()["a"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(got, (1..=9).collect::<Vec<_>>());
        assert!(
            db.fetches.contains(&(Bound::Equal(5), None)),
            "{:?}",
            db.fetches
        );
        assert_eq!(records[0].raw, "{\"a\":1}");
        assert_eq!(records[8].offset, 9);
    }

    #[tokio::test]
    async fn a_restart_reads_from_the_saved_value_inclusive() {
        let mut db = Fake {
            rows: vec![(10, "{}"), (20, "{}"), (30, "{}")],
            fetches: Vec::new(),
            fail_next: None,
        };
        let (result, records) = copy(&mut db, &spec(100), Some(20), true).await;
        result.unwrap();
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            vec![20, 30]
        );
        assert_eq!(db.fetches[0].0, Bound::From(20));
    }

    #[tokio::test]
    async fn exactly_once_refuses_a_cursor_that_is_not_unique() {
        let mut db = Fake {
            rows: vec![(1, "{}"), (1, "{}")],
            fetches: Vec::new(),
            fail_next: None,
        };
        let (result, records) = copy(&mut db, &spec(100), None, true).await;
        let err = result.unwrap_err().to_string();
        assert!(err.contains("not unique"), "{err}");
        assert_eq!(records.len(), 1);
        // at_least_once copies both.
        let (result, records) = copy(&mut db, &spec(100), None, false).await;
        result.unwrap();
        assert_eq!(records.len(), 2);
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_fatal_ones_end_the_copy() {
        let mut db = Fake {
            rows: vec![(1, "{}")],
            fetches: Vec::new(),
            fail_next: Some(SqlSourceError::Transient("connection refused".into())),
        };
        let (result, records) = copy(&mut db, &spec(100), None, true).await;
        result.unwrap();
        assert_eq!(records.len(), 1);
        db.fail_next = Some(SqlSourceError::Fatal("no such table".into()));
        let (result, _) = copy(&mut db, &spec(100), None, true).await;
        assert_eq!(result.unwrap_err().to_string(), "no such table");
    }

    #[tokio::test]
    async fn negative_cursor_values_are_refused() {
        let mut db = Fake {
            rows: vec![(-1, "{}")],
            fetches: Vec::new(),
            fail_next: None,
        };
        let (result, _) = copy(&mut db, &spec(100), None, true).await;
        assert!(result.unwrap_err().to_string().contains("below zero"));
    }

    #[test]
    fn passwords_never_show_in_messages() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("host=h password=secret dbname=db"),
            "host=h password=*** dbname=db"
        );
    }

    #[test]
    fn tables_are_quoted_part_by_part_and_queries_lose_their_semicolon() {
        let quote = |s: &str| format!("\"{s}\"");
        let mut s = spec(1);
        s.table = Some("shop.orders".into());
        assert_eq!(inner_query(&s, quote), "SELECT * FROM \"shop\".\"orders\"");
        assert_eq!(source_id("postgres", "db", &s), "postgres:db/shop.orders");
        s.table = None;
        s.query = Some("SELECT 1 AS id;\n".into());
        assert_eq!(inner_query(&s, quote), "SELECT 1 AS id");
        assert_eq!(source_id("mysql", "db", &s), "mysql:db/query");
    }
}
