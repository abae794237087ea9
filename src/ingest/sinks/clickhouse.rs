//! The ClickHouse sink: turns a batch of source records into one `INSERT ... FORMAT
//! JSONEachRow`, sends records that cannot be written to the dead-letter table with the reason,
//! and reports the batch as stored only once ClickHouse has acknowledged it.
//!
//! Exactly-once on every server version (18.16 has no insert deduplication for plain
//! MergeTree): each row carries its source position in two bookkeeping columns,
//! `_aurora_source` and `_aurora_offset`. When a source stream's first record arrives, the sink
//! reads the highest offset already stored for it (target and dead-letter tables; so a Kafka
//! partition assigned later is looked up too). Records at or below it may have been written
//! by an earlier run that crashed before its source position was saved, so for those the sink
//! asks which offsets are already present and skips them; records above it are new. A batch
//! whose insert failed half-way (a crash or a dropped connection after some partitions were
//! written) is re-checked the same way before it is retried.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::ingest::pipeline::{CreatePolicy, Delivery, Pipeline, RetryPolicy};
use crate::ingest::record::{Ack, SourceRecord};
use crate::ingest::transform::{TargetColumn, Transform};
use crate::warehouse::query::{quote_ident, quote_str};
use crate::warehouse::types::DataType;
use crate::warehouse::value::{push_json_string, Value};
use crate::warehouse::{QueryOptions, Warehouse, WarehouseError};

pub const SOURCE_COLUMN: &str = "_aurora_source";
pub const OFFSET_COLUMN: &str = "_aurora_offset";

/// Why the sink could not do its work, and whether waiting can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying: network, timeouts, an overloaded server.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: missing table, wrong password, incompatible schema.
    #[error("{0}")]
    Fatal(String),
}

impl SinkError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Transient(_))
    }
}

/// What an insert error means for the rows in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorClass {
    /// Some row's data is bad: split the batch to find it.
    Data,
    Transient,
    Fatal,
}

fn classify(err: &WarehouseError) -> ErrorClass {
    match err {
        WarehouseError::Server(e) => match e.code {
            // Parse and conversion failures caused by a row's values.
            6 | 26 | 27 | 32 | 38 | 41 | 53 | 69 | 70 | 72 | 117 | 131 | 190 | 349 | 395 | 469 => {
                ErrorClass::Data
            }
            // The table, the database or our rights are gone: waiting will not bring them back.
            16 | 44 | 47 | 60 | 62 | 81 | 164 | 192 | 193 | 497 | 516 => ErrorClass::Fatal,
            _ => ErrorClass::Transient,
        },
        WarehouseError::Settings(_) | WarehouseError::LocalServer(_) => ErrorClass::Fatal,
        _ => ErrorClass::Transient,
    }
}

fn sink_error(err: &WarehouseError) -> SinkError {
    match classify(err) {
        ErrorClass::Fatal => SinkError::Fatal(err.to_string()),
        _ => SinkError::Transient(err.to_string()),
    }
}

/// `db.table` with both parts quoted; an unqualified name lives in `default_db`.
pub fn qualified(table: &str, default_db: &str) -> (String, String) {
    match table.split_once('.') {
        Some((db, t)) => (db.to_string(), t.to_string()),
        None => (default_db.to_string(), table.to_string()),
    }
}

fn quoted_table((db, t): &(String, String)) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(t))
}

/// What one `write` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteOutcome {
    pub rows_written: u64,
    pub bytes_written: u64,
    pub dead_lettered: u64,
    /// Records skipped because an earlier run had already stored them.
    pub already_stored: u64,
    /// Per source, the highest offset now durably stored.
    pub acks: Vec<Ack>,
}

/// A record turned into what the sink will send: its JSON line for the target table, or why
/// it cannot be stored. Prepared as records arrive, so the parsed record is dropped early and a
/// batch holds compact lines rather than parsed documents.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRecord {
    pub source_id: Arc<str>,
    pub offset: u64,
    /// `INSERT ... FORMAT JSONEachRow` line, or the reason the record is rejected.
    pub row: Result<String, String>,
    /// The record as it arrived, for the dead-letter table.
    pub raw: String,
}

impl PreparedRecord {
    /// Roughly what the record weighs in memory and on the wire.
    pub fn size_bytes(&self) -> usize {
        self.row.as_ref().map_or(0, String::len) + self.raw.len()
    }
}

/// Turns source records into prepared ones; cheap to clone, so it can run where records
/// arrive while the sink writes elsewhere.
#[derive(Debug, Clone)]
pub struct RecordPreparer {
    transform: Transform,
    bookkeeping: bool,
}

impl RecordPreparer {
    pub fn prepare(&self, record: SourceRecord) -> PreparedRecord {
        let SourceRecord {
            source_id,
            offset,
            payload,
            raw,
        } = record;
        let row = payload.and_then(|payload| {
            let mut line = String::with_capacity(raw.len() + 64);
            line.push('{');
            let wrote = self
                .transform
                .apply_into(&payload, &mut line)
                .map_err(|e| e.to_string())?;
            if self.bookkeeping {
                if wrote {
                    line.push(',');
                }
                line.push('"');
                line.push_str(SOURCE_COLUMN);
                line.push_str("\":");
                push_json_string(&mut line, &source_id);
                let _ = write!(line, ",\"{OFFSET_COLUMN}\":{offset}");
            }
            line.push('}');
            Ok(line)
        });
        PreparedRecord {
            source_id,
            offset,
            row,
            raw,
        }
    }
}

/// A record that goes to the dead-letter table.
struct DeadRecord<'a> {
    record: &'a PreparedRecord,
    reason: String,
}

pub struct ClickHouseSink {
    warehouse: Arc<Warehouse>,
    pipeline: String,
    table: (String, String),
    dead_letter: Option<(String, String)>,
    delivery: Delivery,
    transform: Transform,
    /// The target table has the bookkeeping columns.
    bookkeeping: bool,
    /// Per source: offsets at or below this may already be stored and must be checked.
    uncertain_up_to: HashMap<Arc<str>, u64>,
    /// Sources whose stored offsets have been looked up.
    known_sources: HashSet<Arc<str>>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ClickHouseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSink")
            .field("pipeline", &self.pipeline)
            .field("table", &self.table)
            .finish()
    }
}

impl ClickHouseSink {
    /// Checks (and if asked, creates) the target and dead-letter tables, builds the transform
    /// from the table's real columns and reads how far earlier runs got.
    pub async fn prepare(
        warehouse: Arc<Warehouse>,
        pipeline: &Pipeline,
    ) -> Result<Self, SinkError> {
        let default_db = warehouse.settings().database.clone();
        let table = qualified(&pipeline.sink.table, &default_db);
        let exactly_once = pipeline.delivery == Delivery::ExactlyOnce;
        let schema = warehouse.schema(true).await.map_err(|e| sink_error(&e))?;
        let exists = schema
            .table(&format!("{}.{}", table.0, table.1), &default_db)
            .is_some();
        if !exists {
            match pipeline.sink.create {
                CreatePolicy::IfMissing => create_table(&warehouse, pipeline, &table).await?,
                CreatePolicy::Never => {
                    let similar = schema.similar_tables(&format!("{}.{}", table.0, table.1));
                    let hint = if similar.is_empty() {
                        "create it, or set `sink.create: if_missing` with typed columns".to_string()
                    } else {
                        format!("did you mean {}?", similar.join(" or "))
                    };
                    return Err(SinkError::Fatal(format!(
                        "pipeline `{}`: table {}.{} does not exist; {hint}",
                        pipeline.name, table.0, table.1
                    )));
                }
            }
        }
        // Read again only when the table was just created.
        let schema = if exists {
            schema
        } else {
            warehouse.schema(true).await.map_err(|e| sink_error(&e))?
        };
        let info = schema
            .table(&format!("{}.{}", table.0, table.1), &default_db)
            .ok_or_else(|| {
                SinkError::Fatal(format!(
                    "table {}.{} disappeared while starting",
                    table.0, table.1
                ))
            })?;
        let has = |name: &str| info.columns.iter().any(|c| c.name == name);
        let bookkeeping = has(SOURCE_COLUMN) && has(OFFSET_COLUMN);
        if exactly_once && !bookkeeping {
            return Err(SinkError::Fatal(format!(
                "pipeline `{}`: exactly_once delivery needs two bookkeeping columns in {}.{}; add them with\n  \
                 ALTER TABLE {} ADD COLUMN {SOURCE_COLUMN} String DEFAULT '', ADD COLUMN {OFFSET_COLUMN} UInt64 DEFAULT 0\n\
                 or set `delivery: at_least_once`",
                pipeline.name,
                table.0,
                table.1,
                quoted_table(&table)
            )));
        }
        let columns = target_columns(info);
        let transform = Transform::new(&pipeline.mapping, &columns).map_err(|problems| {
            SinkError::Fatal(format!(
                "pipeline `{}`: the mapping does not fit {}.{}:\n  - {}",
                pipeline.name,
                table.0,
                table.1,
                problems.join("\n  - ")
            ))
        })?;
        let dead_letter = match &pipeline.dead_letter {
            Some(d) => {
                let dl = qualified(&d.table, &default_db);
                create_dead_letter_table(&warehouse, &dl).await?;
                Some(dl)
            }
            None => None,
        };
        Ok(Self {
            warehouse,
            pipeline: pipeline.name.clone(),
            table,
            dead_letter,
            delivery: pipeline.delivery,
            transform,
            bookkeeping,
            uncertain_up_to: HashMap::new(),
            retry: pipeline.retry.clone(),
            known_sources: HashSet::new(),
        })
    }

    /// What turns source records into rows for this sink's table.
    pub fn preparer(&self) -> RecordPreparer {
        RecordPreparer {
            transform: self.transform.clone(),
            bookkeeping: self.bookkeeping,
        }
    }

    /// Learns, once per source stream, the highest offset earlier runs stored (target and
    /// dead-letter tables). Done lazily, so a Kafka partition assigned after a rebalance is
    /// looked up when its first record arrives.
    async fn learn_sources(&mut self, records: &[PreparedRecord]) -> Result<(), SinkError> {
        let new: Vec<Arc<str>> = records
            .iter()
            .map(|r| &r.source_id)
            .filter(|s| !self.known_sources.contains(*s))
            .collect::<HashSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let list = new
            .iter()
            .map(|s| quote_str(s))
            .collect::<Vec<_>>()
            .join(", ");
        let mut queries = vec![format!(
            "SELECT {SOURCE_COLUMN}, max({OFFSET_COLUMN}) FROM {} WHERE {SOURCE_COLUMN} IN ({list}) GROUP BY {SOURCE_COLUMN}",
            quoted_table(&self.table)
        )];
        if let Some(dl) = &self.dead_letter {
            queries.push(format!(
                "SELECT source, max(offset) FROM {} WHERE pipeline = {} AND source IN ({list}) GROUP BY source",
                quoted_table(dl),
                quote_str(&self.pipeline)
            ));
        }
        for sql in queries {
            let result = self
                .warehouse
                .query(&sql, &QueryOptions::unrestricted())
                .await
                .map_err(|e| sink_error(&e))?;
            for row in result.rows {
                if let (Some(Value::String(source)), Some(Value::UInt(max))) =
                    (row.first(), row.get(1))
                {
                    let entry = self
                        .uncertain_up_to
                        .entry(Arc::from(&**source))
                        .or_insert(0);
                    *entry = (*entry).max(*max);
                }
            }
        }
        self.known_sources.extend(new);
        Ok(())
    }

    /// Forgets what the sink learnt about these source streams (Kafka partitions handed to
    /// another process), so that their stored offsets are looked up again if they come back.
    pub fn forget(&mut self, sources: &[String]) {
        for s in sources {
            self.known_sources.remove(s.as_str());
            self.uncertain_up_to.remove(s.as_str());
        }
    }

    /// Writes one batch. Returns once every record is stored in the target or dead-letter
    /// table; transient failures are retried with backoff (reported through `on_retry`).
    pub async fn write(
        &mut self,
        records: &[PreparedRecord],
        mut on_retry: impl FnMut(&SinkError, Duration),
    ) -> Result<WriteOutcome, SinkError> {
        let mut backoff = self.retry.initial_backoff;
        loop {
            match self.try_write(records).await {
                Ok(outcome) => return Ok(outcome),
                Err(SinkError::Fatal(e)) => return Err(SinkError::Fatal(e)),
                Err(err) => {
                    // Part of the batch may be stored now: check it record by record next time.
                    if self.delivery == Delivery::ExactlyOnce {
                        for r in records {
                            let entry =
                                self.uncertain_up_to.entry(r.source_id.clone()).or_insert(0);
                            *entry = (*entry).max(r.offset);
                        }
                    }
                    let wait = jitter(backoff);
                    on_retry(&err, wait);
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                }
            }
        }
    }

    async fn try_write(&mut self, records: &[PreparedRecord]) -> Result<WriteOutcome, SinkError> {
        let mut outcome = WriteOutcome::default();
        if self.delivery == Delivery::ExactlyOnce {
            self.learn_sources(records).await?;
        }
        let stored = self.already_stored(records).await?;
        let mut rows: Vec<(usize, &str)> = Vec::with_capacity(records.len());
        let mut dead: Vec<DeadRecord> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if stored.contains(&(record.source_id.clone(), record.offset)) {
                outcome.already_stored += 1;
                continue;
            }
            match &record.row {
                Ok(line) => rows.push((i, line)),
                Err(reason) => dead.push(DeadRecord {
                    record,
                    reason: reason.clone(),
                }),
            }
        }
        // Bad rows the server refuses are found by splitting, then dead-lettered too.
        let refused = self.insert_rows(&rows, &mut outcome).await?;
        for (i, reason) in refused {
            if let Some(record) = records.get(i) {
                dead.push(DeadRecord { record, reason });
            }
        }
        self.insert_dead(&dead).await?;
        outcome.dead_lettered = dead.len() as u64;
        let mut acks: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        for r in records {
            let e = acks.entry(r.source_id.clone()).or_insert(r.offset);
            *e = (*e).max(r.offset);
        }
        outcome.acks = acks
            .into_iter()
            .map(|(source_id, offset)| Ack { source_id, offset })
            .collect();
        Ok(outcome)
    }

    /// The (source, offset) pairs of `records` an earlier attempt already stored.
    async fn already_stored(
        &self,
        records: &[PreparedRecord],
    ) -> Result<HashSet<(Arc<str>, u64)>, SinkError> {
        let mut found = HashSet::new();
        if self.delivery != Delivery::ExactlyOnce {
            return Ok(found);
        }
        let mut ranges: BTreeMap<Arc<str>, (u64, u64)> = BTreeMap::new();
        for r in records {
            let Some(&limit) = self.uncertain_up_to.get(&r.source_id) else {
                continue;
            };
            if r.offset <= limit {
                let e = ranges
                    .entry(r.source_id.clone())
                    .or_insert((r.offset, r.offset));
                e.0 = e.0.min(r.offset);
                e.1 = e.1.max(r.offset);
            }
        }
        for (source, (lo, hi)) in ranges {
            let mut sql = vec![format!(
                "SELECT {OFFSET_COLUMN} FROM {} WHERE {SOURCE_COLUMN} = {} AND {OFFSET_COLUMN} BETWEEN {lo} AND {hi}",
                quoted_table(&self.table),
                quote_str(&source)
            )];
            if let Some(dl) = &self.dead_letter {
                sql.push(format!(
                    "SELECT offset FROM {} WHERE pipeline = {} AND source = {} AND offset BETWEEN {lo} AND {hi}",
                    quoted_table(dl),
                    quote_str(&self.pipeline),
                    quote_str(&source)
                ));
            }
            for q in sql {
                let result = self
                    .warehouse
                    .query(&q, &QueryOptions::unrestricted())
                    .await
                    .map_err(|e| sink_error(&e))?;
                for row in result.rows {
                    if let Some(Value::UInt(offset)) = row.first() {
                        found.insert((source.clone(), *offset));
                    }
                }
            }
        }
        Ok(found)
    }

    /// Inserts `rows` (index into the batch, JSON line) as one INSERT. If the server refuses
    /// the data, halves the set until the refused rows are isolated and returns them with the
    /// server's message, so one bad row never blocks or drops the rest.
    async fn insert_rows(
        &self,
        rows: &[(usize, &str)],
        outcome: &mut WriteOutcome,
    ) -> Result<Vec<(usize, String)>, SinkError> {
        let mut refused = Vec::new();
        let mut pending: Vec<&[(usize, &str)]> = vec![rows];
        while let Some(part) = pending.pop() {
            if part.is_empty() {
                continue;
            }
            let mut body = String::with_capacity(part.iter().map(|(_, l)| l.len() + 1).sum());
            for (_, line) in part {
                body.push_str(line);
                body.push('\n');
            }
            let bytes = body.len() as u64;
            match self
                .warehouse
                .insert_formatted(&quoted_table(&self.table), "JSONEachRow", body)
                .await
            {
                Ok(()) => {
                    outcome.rows_written += part.len() as u64;
                    outcome.bytes_written += bytes;
                }
                Err(e) if classify(&e) == ErrorClass::Data => {
                    if let [(i, _)] = part {
                        refused.push((*i, format!("ClickHouse refused the row: {e}")));
                    } else {
                        let (a, b) = part.split_at(part.len() / 2);
                        pending.push(b);
                        pending.push(a);
                    }
                }
                Err(e) => return Err(sink_error(&e)),
            }
        }
        Ok(refused)
    }

    async fn insert_dead(&self, dead: &[DeadRecord<'_>]) -> Result<(), SinkError> {
        if dead.is_empty() {
            return Ok(());
        }
        let Some(dl) = &self.dead_letter else {
            return Err(SinkError::Fatal(format!(
                "pipeline `{}`: {} record(s) cannot be written (first: {}) and no `dead_letter` table is configured",
                self.pipeline,
                dead.len(),
                dead[0].reason
            )));
        };
        let now = crate::ingest::unix_now();
        let mut body = String::new();
        for d in dead {
            let row = serde_json::json!({
                "pipeline": self.pipeline,
                "source": d.record.source_id.as_ref(),
                "offset": d.record.offset,
                "raw": d.record.raw,
                "error": d.reason,
                // Quoted digits: every server version reads a DateTime from them.
            "at": now.to_string(),
            });
            body.push_str(&row.to_string());
            body.push('\n');
        }
        self.warehouse
            .insert_formatted(&quoted_table(dl), "JSONEachRow", body)
            .await
            .map_err(|e| sink_error(&e))
    }
}

/// The columns a pipeline can write: not MATERIALIZED/ALIAS, not the bookkeeping pair.
fn target_columns(info: &crate::warehouse::schema::TableInfo) -> Vec<TargetColumn> {
    info.columns
        .iter()
        .filter(|c| c.default_kind != "MATERIALIZED" && c.default_kind != "ALIAS")
        .filter(|c| c.name != SOURCE_COLUMN && c.name != OFFSET_COLUMN)
        .map(|c| TargetColumn {
            name: c.name.clone(),
            data_type: DataType::parse(&c.type_name)
                .unwrap_or_else(|_| DataType::Other(c.type_name.clone())),
            has_server_default: !c.default_kind.is_empty(),
        })
        .collect()
}

/// Checks a pipeline's sink against the live server without changing anything: the table
/// exists (or will be created from typed columns), the mapping fits its columns, exactly-once
/// has its bookkeeping columns. Returns the problems as sentences; empty means ready.
pub async fn check(warehouse: &Warehouse, pipeline: &Pipeline) -> Result<Vec<String>, SinkError> {
    let default_db = warehouse.settings().database.clone();
    let table = qualified(&pipeline.sink.table, &default_db);
    let name = format!("{}.{}", table.0, table.1);
    let schema = warehouse.schema(true).await.map_err(|e| sink_error(&e))?;
    let mut problems = Vec::new();
    let columns = match schema.table(&name, &default_db) {
        Some(info) => {
            let has = |c: &str| info.columns.iter().any(|col| col.name == c);
            if pipeline.delivery == Delivery::ExactlyOnce
                && !(has(SOURCE_COLUMN) && has(OFFSET_COLUMN))
            {
                problems.push(format!(
                    "table {name} lacks the exactly-once bookkeeping columns; add them with                      `ALTER TABLE {} ADD COLUMN {SOURCE_COLUMN} String DEFAULT '', ADD COLUMN {OFFSET_COLUMN} UInt64 DEFAULT 0`                      or set `delivery: at_least_once`",
                    quoted_table(&table)
                ));
            }
            target_columns(info)
        }
        None if pipeline.sink.create == CreatePolicy::IfMissing => pipeline
            .mapping
            .columns
            .iter()
            .filter_map(|(column, source)| {
                let ty = source.spec(column).column_type?;
                Some(TargetColumn {
                    name: column.clone(),
                    data_type: DataType::parse(&ty).unwrap_or(DataType::Other(ty)),
                    has_server_default: false,
                })
            })
            .collect(),
        None => {
            let similar = schema.similar_tables(&name);
            problems.push(if similar.is_empty() {
                format!("table {name} does not exist; create it, or set `sink.create: if_missing`")
            } else {
                format!(
                    "table {name} does not exist; did you mean {}?",
                    similar.join(" or ")
                )
            });
            return Ok(problems);
        }
    };
    if let Err(mapping_problems) = Transform::new(&pipeline.mapping, &columns) {
        problems.extend(mapping_problems);
    }
    Ok(problems)
}

/// Full jitter within [d/2, d], so many pipelines retrying at once do not hit the server in
/// lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let fraction = 0.5 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(fraction)
}

async fn create_table(
    warehouse: &Warehouse,
    pipeline: &Pipeline,
    table: &(String, String),
) -> Result<(), SinkError> {
    let mut columns: Vec<String> = pipeline
        .mapping
        .columns
        .iter()
        .filter_map(|(name, source)| {
            source
                .spec(name)
                .column_type
                .map(|t| format!("{} {}", quote_ident(name), t.trim()))
        })
        .collect();
    columns.push(format!("{SOURCE_COLUMN} String"));
    columns.push(format!("{OFFSET_COLUMN} UInt64"));
    let partition = pipeline
        .sink
        .partition_by
        .as_ref()
        .map(|p| format!(" PARTITION BY {p}"))
        .unwrap_or_default();
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) ENGINE = MergeTree{partition} ORDER BY ({})",
        quoted_table(table),
        columns.join(", "),
        pipeline.sink.order_by.join(", ")
    );
    execute_ddl(
        warehouse,
        &format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(&table.0)),
    )
    .await?;
    execute_ddl(warehouse, &sql).await
}

async fn create_dead_letter_table(
    warehouse: &Warehouse,
    table: &(String, String),
) -> Result<(), SinkError> {
    execute_ddl(
        warehouse,
        &format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(&table.0)),
    )
    .await?;
    execute_ddl(
        warehouse,
        &format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline String, source String, offset UInt64, \
             raw String, error String, at DateTime) ENGINE = MergeTree ORDER BY (pipeline, source, offset)",
            quoted_table(table)
        ),
    )
    .await
}

async fn execute_ddl(warehouse: &Warehouse, sql: &str) -> Result<(), SinkError> {
    let mut opts = QueryOptions::unrestricted();
    if warehouse.capabilities().low_cardinality_needs_flag {
        opts.settings
            .push(("allow_experimental_low_cardinality_type".into(), "1".into()));
    }
    warehouse
        .query(sql, &opts)
        .await
        .map(drop)
        .map_err(|e| sink_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_match_serde_json() {
        for text in [
            "kafka:t:0",
            "csv:/a \"b\"\\c.csv",
            "tab\there\nnew\u{1}\r\u{8}\u{c}",
            "ünï €",
        ] {
            let mut out = String::new();
            push_json_string(&mut out, text);
            assert_eq!(out, serde_json::Value::String(text.into()).to_string());
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a`b"), "`a\\`b`");
        assert_eq!(quote_str("it's \\"), "'it\\'s \\\\'");
        assert_eq!(
            qualified("t", "default"),
            ("default".to_string(), "t".to_string())
        );
        assert_eq!(
            qualified("db.t", "default"),
            ("db".to_string(), "t".to_string())
        );
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        for _ in 0..100 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn classification() {
        use crate::warehouse::ServerError;
        let server = |code| {
            WarehouseError::Server(ServerError {
                code,
                name: None,
                message: String::new(),
                position: None,
                http_status: 500,
            })
        };
        assert_eq!(classify(&server(27)), ErrorClass::Data);
        assert_eq!(classify(&server(60)), ErrorClass::Fatal);
        assert_eq!(classify(&server(252)), ErrorClass::Transient);
        assert_eq!(
            classify(&WarehouseError::Timeout {
                url: String::new(),
                timeout: Duration::from_secs(1)
            }),
            ErrorClass::Transient
        );
    }
}
