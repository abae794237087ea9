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

use super::cluster::{part_token, shard_of, stable_hash, Shards};
use crate::ingest::pipeline::{
    ColumnSource, CreatePolicy, Delivery, Evolve, InsertFormat, Pipeline, RetryPolicy,
};
use crate::ingest::record::{Ack, Payload, SourceRecord};
use crate::ingest::transform::{Fields, TargetColumn, Transform};
use crate::warehouse::query::{quote_ident, quote_str};
use crate::warehouse::types::DataType;
use crate::warehouse::value::{push_json_string, Value};
use crate::warehouse::{QueryOptions, QueryResult, Warehouse, WarehouseError};

pub const SOURCE_COLUMN: &str = "_aurora_source";
pub const OFFSET_COLUMN: &str = "_aurora_offset";

/// Why the sink could not do its work, and whether waiting can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SinkError {
    /// Known to be temporary: network, timeouts, an overloaded server. Retried for ever.
    #[error("{0}")]
    Transient(String),
    /// Not known to be either: retried `retry.unknown_errors` times, then fatal.
    #[error("{0}")]
    Unknown(String),
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
    /// Known to pass: retry for as long as it takes.
    Transient,
    /// Not on any list: retry a bounded number of times.
    Unknown,
    Fatal,
}

/// Server error codes that mean "try again later" (ClickHouse's `ErrorCodes.cpp`): the
/// network, timeouts, load (too many parts or queries, memory), replication and ZooKeeper
/// trouble, a replica that is read-only for now, an insert whose fate is unknown.
const RETRYABLE_CODES: &[u32] = &[
    3,    // UNEXPECTED_END_OF_FILE (connection cut)
    159,  // TIMEOUT_EXCEEDED
    160,  // TOO_SLOW
    173,  // CANNOT_ALLOCATE_MEMORY
    198,  // DNS_ERROR
    202,  // TOO_MANY_SIMULTANEOUS_QUERIES
    203,  // NO_FREE_CONNECTION
    209,  // SOCKET_TIMEOUT
    210,  // NETWORK_ERROR
    225,  // NO_ZOOKEEPER
    236,  // ABORTED
    241,  // MEMORY_LIMIT_EXCEEDED
    242,  // TABLE_IS_READ_ONLY (a replica that lost ZooKeeper)
    244,  // UNEXPECTED_ZOOKEEPER_ERROR
    252,  // TOO_MANY_PARTS
    279,  // ALL_CONNECTION_TRIES_FAILED
    285,  // TOO_FEW_LIVE_REPLICAS
    286,  // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
    319,  // UNKNOWN_STATUS_OF_INSERT
    394,  // QUERY_WAS_CANCELLED
    425,  // SYSTEM_ERROR
    439,  // CANNOT_SCHEDULE_TASK
    473,  // DEADLOCK_AVOIDED
    999,  // KEEPER_EXCEPTION
    1000, // POCO_EXCEPTION (mostly network)
];

/// Codes caused by a row's values: parse and conversion failures.
const DATA_CODES: &[u32] = &[
    6, 26, 27, 32, 38, 41, 53, 69, 70, 72, 117, 131, 190, 349, 395, 469,
];

/// Codes retrying cannot fix: the table, the database or our rights are gone, a read-only
/// user, a schema that does not fit.
const FATAL_CODES: &[u32] = &[16, 44, 47, 60, 62, 81, 164, 192, 193, 497, 516];

fn classify(err: &WarehouseError) -> ErrorClass {
    match err {
        WarehouseError::Server(e) if RETRYABLE_CODES.contains(&e.code) => ErrorClass::Transient,
        WarehouseError::Server(e) if DATA_CODES.contains(&e.code) => ErrorClass::Data,
        WarehouseError::Server(e) if FATAL_CODES.contains(&e.code) => ErrorClass::Fatal,
        WarehouseError::Server(_) => ErrorClass::Unknown,
        WarehouseError::Connect { .. } | WarehouseError::Timeout { .. } => ErrorClass::Transient,
        WarehouseError::Settings(_) | WarehouseError::LocalServer(_) => ErrorClass::Fatal,
        WarehouseError::Cancelled { .. }
        | WarehouseError::Protocol { .. }
        | WarehouseError::Decode(_) => ErrorClass::Unknown,
    }
}

fn sink_error(err: &WarehouseError) -> SinkError {
    match classify(err) {
        ErrorClass::Fatal => SinkError::Fatal(err.to_string()),
        ErrorClass::Unknown => SinkError::Unknown(err.to_string()),
        ErrorClass::Transient | ErrorClass::Data => SinkError::Transient(err.to_string()),
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
    /// Sources found with more records stored than a restart explains (see `Unexplained`).
    pub unexplained: Vec<Unexplained>,
    /// Per source, the highest offset now durably stored.
    pub acks: Vec<Ack>,
}

/// A source of which the table already holds more records than a crash of this pipeline can
/// have left behind, while the pipeline has no saved position for it: another pipeline writes
/// the same source into the table, or the pipeline's state (its cursor file, its consumer
/// group) was reset. Its records in the table will be skipped as already stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Unexplained {
    pub source_id: Arc<str>,
    pub records: u64,
}

impl Unexplained {
    pub fn describe(&self, table: &str) -> String {
        format!(
            "{table} already holds {} record(s) of {}, but this pipeline has no saved position for it: \
             another pipeline writes the same source into this table, or this pipeline's state \
             (cursor file, consumer group) was reset. Those records are skipped as already stored",
            self.records, self.source_id
        )
    }
}

/// The sources a pipeline has a saved position for (a cursor, a committed offset), which
/// explains finding their records stored after a restart.
pub type KnownPositions = Arc<std::sync::Mutex<HashSet<String>>>;

/// A record turned into what the sink will send: its JSON line for the target table, or why
/// it cannot be stored. Prepared as records arrive, so the parsed record is dropped early and a
/// batch holds compact lines rather than parsed documents.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRecord {
    pub source_id: Arc<str>,
    pub offset: u64,
    /// The row in the sink's format (a RowBinary row, or a JSONEachRow line without its
    /// newline), or the reason the record is rejected.
    pub row: Result<Vec<u8>, String>,
    /// The record as it arrived, for the dead-letter table.
    pub raw: String,
    /// With `evolve: add_columns`, the parsed record when it has fields the table has no
    /// column for: the sink adds the columns, then prepares it again.
    pub evolving: Option<Box<serde_json::Value>>,
    /// Picks the record's shard when the sink writes to shards directly (0 otherwise).
    pub shard_hash: u64,
}

impl PreparedRecord {
    /// Roughly what the record weighs in memory and on the wire.
    pub fn size_bytes(&self) -> usize {
        let parsed = if self.evolving.is_some() {
            self.raw.len() * 2
        } else {
            0
        };
        self.row.as_ref().map_or(0, Vec::len) + self.raw.len() + parsed
    }
}

/// The transform in use, replaced when the table gains columns (`evolve: add_columns`).
type SharedTransform = Arc<std::sync::RwLock<Arc<Transform>>>;

/// Turns source records into prepared ones; cheap to clone, so it can run where records
/// arrive while the sink writes elsewhere.
#[derive(Debug, Clone)]
pub struct RecordPreparer {
    transform: SharedTransform,
    bookkeeping: bool,
    evolve: bool,
    /// Fields evolution cannot turn into columns (objects, arrays): not worth keeping a
    /// record's parsed form for, batch after batch.
    not_evolvable: Arc<std::sync::RwLock<HashSet<String>>>,
    sharding: Sharding,
    format: RowFormat,
}

/// How rows travel to ClickHouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Binary, every column in the transform's order: nothing for the server to parse.
    RowBinary,
    /// One JSON object per line: for types and rows RowBinary cannot express here.
    JsonEachRow,
}

/// How a record's shard is chosen, when the sink writes to shards directly.
#[derive(Debug, Clone)]
enum Sharding {
    /// One server, or a Distributed table that shards by itself.
    None,
    /// By the record's source and offset: even, and the same on every attempt.
    Position,
    /// By the value of this column (its JSON text).
    Key(Arc<str>),
}

impl RecordPreparer {
    pub fn prepare(&self, record: SourceRecord) -> PreparedRecord {
        let SourceRecord {
            source_id,
            offset,
            payload,
            raw,
        } = record;
        let transform = self
            .transform
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (row, shard_hash, evolving) = match payload {
            Err(e) => (Err(e), 0, None),
            Ok(payload) => {
                // Evolution reads the record's field names: it works on the JSON form.
                let payload = if self.evolve {
                    Payload::Json(payload.into_json())
                } else {
                    payload
                };
                let (row, shard_hash) =
                    self.row(&transform, (&payload).into(), &source_id, offset, raw.len());
                let evolving = match payload {
                    Payload::Json(v) if self.evolve && self.may_evolve(&transform, &v) => {
                        Some(Box::new(v))
                    }
                    _ => None,
                };
                (row, shard_hash, evolving)
            }
        };
        PreparedRecord {
            source_id,
            offset,
            row,
            raw,
            evolving,
            shard_hash,
        }
    }

    /// Whether the record has a field the table lacks that could become a column.
    fn may_evolve(&self, transform: &Transform, payload: &serde_json::Value) -> bool {
        let given_up = self.not_evolvable.read().unwrap_or_else(|p| p.into_inner());
        transform
            .unknown_fields(payload)
            .iter()
            .any(|(field, _)| plain_identifier(field) && !given_up.contains(*field))
    }

    /// The column whose value picks a record's shard.
    fn key_column(&self) -> Option<&str> {
        match &self.sharding {
            Sharding::Key(column) => Some(column),
            _ => None,
        }
    }

    /// The hash that picks a record's shard, from its position or its key's encoded value
    /// (a record without one, left to the server's default, hashes as null).
    fn shard_hash(&self, source_id: &str, offset: u64, key: Option<&[u8]>) -> u64 {
        match &self.sharding {
            Sharding::None => 0,
            Sharding::Position => stable_hash(&[source_id.as_bytes(), &offset.to_le_bytes()]),
            Sharding::Key(_) => stable_hash(&[key.unwrap_or(b"null")]),
        }
    }

    /// The record's row with the bookkeeping columns, and its shard hash.
    fn row(
        &self,
        transform: &Transform,
        payload: Fields<'_>,
        source_id: &str,
        offset: u64,
        raw_len: usize,
    ) -> (Result<Vec<u8>, String>, u64) {
        if self.format == RowFormat::RowBinary {
            return self.binary_row(transform, payload, source_id, offset, raw_len);
        }
        let mut line = String::with_capacity(raw_len + 64);
        line.push('{');
        let (wrote, key_at) =
            match transform.apply_into_keyed(payload, &mut line, self.key_column()) {
                Ok(written) => written,
                Err(e) => return (Err(e.to_string()), 0),
            };
        let shard_hash = self.shard_hash(source_id, offset, key_at.map(|at| line[at].as_bytes()));
        if self.bookkeeping {
            if wrote {
                line.push(',');
            }
            line.push('"');
            line.push_str(SOURCE_COLUMN);
            line.push_str("\":");
            push_json_string(&mut line, source_id);
            let _ = write!(line, ",\"{OFFSET_COLUMN}\":{offset}");
        }
        line.push('}');
        (Ok(line.into_bytes()), shard_hash)
    }

    /// The record's RowBinary row (the transform's columns, then the bookkeeping pair), and
    /// its shard hash.
    fn binary_row(
        &self,
        transform: &Transform,
        payload: Fields<'_>,
        source_id: &str,
        offset: u64,
        raw_len: usize,
    ) -> (Result<Vec<u8>, String>, u64) {
        let mut row = Vec::with_capacity(raw_len / 2 + source_id.len() + 16);
        let key_at = match transform.apply_binary(payload, &mut row, self.key_column()) {
            Ok(at) => at,
            Err(e) => return (Err(e.to_string()), 0),
        };
        let shard_hash = self.shard_hash(source_id, offset, key_at.map(|at| &row[at]));
        if self.bookkeeping {
            crate::ingest::transform::push_varint(&mut row, source_id.len() as u64);
            row.extend_from_slice(source_id.as_bytes());
            row.extend_from_slice(&offset.to_le_bytes());
        }
        (Ok(row), shard_hash)
    }
}

/// A record that goes to the dead-letter table.
struct DeadRecord<'a> {
    record: &'a PreparedRecord,
    reason: String,
}

pub struct ClickHouseSink {
    /// The pipeline's connection: the dead-letter table, and the target unless `shards` say
    /// otherwise.
    warehouse: Arc<Warehouse>,
    /// Where the target table lives: this connection, or the shards of a cluster.
    shards: Shards,
    sharding: Sharding,
    format: RowFormat,
    /// With RowBinary, the INSERT's column list: the transform's columns in order, then the
    /// bookkeeping pair.
    binary_columns: String,
    pipeline: String,
    table: (String, String),
    dead_letter: Option<(String, String)>,
    delivery: Delivery,
    transform: SharedTransform,
    /// The mapping, with the columns evolution added (when it names columns).
    mapping: crate::ingest::pipeline::Mapping,
    evolve: bool,
    not_evolvable: Arc<std::sync::RwLock<HashSet<String>>>,
    /// The target table has the bookkeeping columns.
    bookkeeping: bool,
    /// Per source: offsets at or below this may already be stored and must be checked.
    uncertain_up_to: HashMap<Arc<str>, u64>,
    /// Sources whose stored offsets have been looked up.
    known_sources: HashSet<Arc<str>>,
    /// Sources with a saved position; see `Unexplained`.
    known_positions: KnownPositions,
    /// How many stored records a crash can leave behind unsaved: the batch being written
    /// (with some slack for one being retried).
    crash_window: u64,
    /// Found while learning sources, reported with the next outcome.
    unexplained: Vec<Unexplained>,
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
        let cluster = pipeline.sink.cluster.as_ref();
        let mut shards = cluster
            .and_then(|c| Shards::direct(&warehouse, c))
            .unwrap_or_else(|| Shards::single(warehouse.clone()));
        // The table is read where it lives (the first shard, when written directly).
        let reader = shards.first().await.map_err(|e| sink_error(&e))?;
        let schema = reader.schema(true).await.map_err(|e| sink_error(&e))?;
        let exists = schema
            .table(&format!("{}.{}", table.0, table.1), &default_db)
            .is_some();
        if !exists {
            match pipeline.sink.create {
                CreatePolicy::IfMissing => {
                    create_table(&warehouse, &shards, pipeline, &table).await?
                }
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
            reader.schema(true).await.map_err(|e| sink_error(&e))?
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
        shards.distributed = info.engine == "Distributed";
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
        let sharding = match cluster {
            _ if shards.shard_count() < 2 => Sharding::None,
            Some(c) => match &c.sharding_key {
                Some(key) if !transform.columns().any(|column| column == key) => {
                    return Err(SinkError::Fatal(format!(
                        "pipeline `{}`: the sharding key `{key}` is not a column the pipeline writes",
                        pipeline.name
                    )))
                }
                Some(key) => Sharding::Key(Arc::from(key.as_str())),
                None => Sharding::Position,
            },
            None => Sharding::None,
        };
        let evolve = pipeline.evolve == Evolve::AddColumns;
        // Evolution adds columns mid-stream, which rows prepared before would lack.
        let format =
            if pipeline.sink.format == InsertFormat::Auto && !evolve && transform.binary_ready() {
                RowFormat::RowBinary
            } else {
                RowFormat::JsonEachRow
            };
        let mut columns: Vec<String> = transform.columns().map(quote_ident).collect();
        if bookkeeping {
            columns.extend([SOURCE_COLUMN.to_string(), OFFSET_COLUMN.to_string()]);
        }
        Ok(Self {
            warehouse,
            shards,
            sharding,
            format,
            binary_columns: columns.join(", "),
            pipeline: pipeline.name.clone(),
            table,
            dead_letter,
            delivery: pipeline.delivery,
            transform: Arc::new(std::sync::RwLock::new(Arc::new(transform))),
            mapping: pipeline.mapping.clone(),
            evolve,
            not_evolvable: Arc::default(),
            bookkeeping,
            uncertain_up_to: HashMap::new(),
            retry: pipeline.retry.clone(),
            known_sources: HashSet::new(),
            known_positions: KnownPositions::default(),
            crash_window: pipeline.sink.batch.max_rows.saturating_mul(2),
            unexplained: Vec::new(),
        })
    }

    /// What turns source records into rows for this sink's table.
    /// Where the sink learns which sources have a saved position.
    pub fn set_known_positions(&mut self, known: KnownPositions) {
        self.known_positions = known;
    }

    /// How rows travel to the server.
    pub fn format(&self) -> RowFormat {
        self.format
    }

    /// The target table, `db.table`.
    pub fn table_name(&self) -> String {
        format!("{}.{}", self.table.0, self.table.1)
    }

    pub fn preparer(&self) -> RecordPreparer {
        RecordPreparer {
            transform: self.transform.clone(),
            bookkeeping: self.bookkeeping,
            evolve: self.evolve,
            not_evolvable: self.not_evolvable.clone(),
            sharding: self.sharding.clone(),
            format: self.format,
        }
    }

    /// Learns, once per source stream, the highest offset earlier runs stored (target and
    /// dead-letter tables). Done lazily, so a Kafka partition assigned after a rebalance is
    /// looked up when its first record arrives.
    async fn learn_sources(&mut self, records: &[PreparedRecord]) -> Result<(), SinkError> {
        // A source's records share one `Arc` and mostly come in runs: hash each run once.
        let mut new: Vec<Arc<str>> = Vec::new();
        let mut last: Option<&Arc<str>> = None;
        for r in records {
            if last.is_some_and(|l| Arc::ptr_eq(l, &r.source_id)) {
                continue;
            }
            last = Some(&r.source_id);
            if !self.known_sources.contains(&r.source_id) && !new.contains(&r.source_id) {
                new.push(r.source_id.clone());
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let list = new
            .iter()
            .map(|s| quote_str(s))
            .collect::<Vec<_>>()
            .join(", ");
        let mut results = self
            .shards
            .query_each(&format!(
                "SELECT {SOURCE_COLUMN}, max({OFFSET_COLUMN}), count() FROM {} WHERE {SOURCE_COLUMN} IN ({list}) GROUP BY {SOURCE_COLUMN}",
                quoted_table(&self.table)
            ))
            .await
            .map_err(|e| sink_error(&e))?;
        if let Some(dl) = &self.dead_letter {
            results.push(
                self.warehouse
                    .query(
                        &format!(
                            "SELECT source, max(offset), count() FROM {} WHERE pipeline = {} AND source IN ({list}) GROUP BY source",
                            quoted_table(dl),
                            quote_str(&self.pipeline)
                        ),
                        &QueryOptions::unrestricted(),
                    )
                    .await
                    .map_err(|e| sink_error(&e))?,
            );
        }
        let mut counts: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        for result in results {
            for row in result.rows {
                if let (Some(Value::String(source)), Some(Value::UInt(max))) =
                    (row.first(), row.get(1))
                {
                    let source: Arc<str> = Arc::from(&**source);
                    let entry = self.uncertain_up_to.entry(source.clone()).or_insert(0);
                    *entry = (*entry).max(*max);
                    if let Some(Value::UInt(n)) = row.get(2) {
                        *counts.entry(source).or_insert(0) += n;
                    }
                }
            }
        }
        let known = self
            .known_positions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (source, records) in counts {
            if records > self.crash_window && !known.contains(&*source) {
                self.unexplained.push(Unexplained {
                    source_id: source,
                    records,
                });
            }
        }
        drop(known);
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

    /// With `evolve: add_columns`: adds a Nullable column for every top-level field of the
    /// batch's records that the table has none for (type inferred from the batch's values),
    /// then prepares those records again. Returns the columns added, as `name Type`. Fields
    /// whose values are objects or arrays, or whose names are not plain identifiers, are left
    /// to `mapping.unmapped`.
    pub async fn evolve(&mut self, batch: &mut [PreparedRecord]) -> Result<Vec<String>, SinkError> {
        if !self.evolve || batch.iter().all(|r| r.evolving.is_none()) {
            return Ok(Vec::new());
        }
        let transform = self.current_transform();
        let mut values: indexmap::IndexMap<String, Vec<&serde_json::Value>> =
            indexmap::IndexMap::new();
        for record in batch.iter() {
            let Some(payload) = &record.evolving else {
                continue;
            };
            let given_up = self.not_evolvable.read().unwrap_or_else(|p| p.into_inner());
            for (field, value) in transform.unknown_fields(payload) {
                if plain_identifier(field) && !given_up.contains(field) {
                    values.entry(field.to_string()).or_default().push(value);
                }
            }
        }
        if values.is_empty() {
            // Only fields that cannot become columns: `unmapped` decides (as prepared).
            for record in batch.iter_mut() {
                record.evolving = None;
            }
            return Ok(Vec::new());
        }
        let existing: HashSet<String> = self
            .live_table()
            .await?
            .map(|t| t.columns.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        let mut added = Vec::new();
        let mut mapped = false;
        for (field, seen) in &values {
            // A column added by an earlier run (or by hand) only has to be read.
            if !existing.contains(field) {
                let Some(column_type) = crate::ingest::init::evolved_column_type(field, seen)
                else {
                    self.not_evolvable
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(field.clone());
                    continue;
                };
                let sql = format!(
                    "ALTER TABLE {} ADD COLUMN {} {column_type}",
                    quoted_table(&self.table),
                    quote_ident(field)
                );
                match self
                    .warehouse
                    .query(&sql, &QueryOptions::unrestricted())
                    .await
                {
                    Ok(_) => added.push(format!("{field} {column_type}")),
                    // Added meanwhile (another process of the pipeline): fine.
                    Err(WarehouseError::Server(e)) if e.code == 15 || e.code == 44 => {}
                    Err(e) => return Err(sink_error(&e)),
                }
            }
            if !self.mapping.columns.is_empty() {
                self.mapping
                    .columns
                    .insert(field.clone(), ColumnSource::Field(field.clone()));
            }
            mapped = true;
        }
        drop(values);
        if mapped {
            self.reload_transform().await?;
        }
        let transform = self.current_transform();
        let preparer = self.preparer();
        for record in batch.iter_mut() {
            if let Some(payload) = record.evolving.take() {
                (record.row, record.shard_hash) = preparer.row(
                    &transform,
                    (&*payload).into(),
                    &record.source_id,
                    record.offset,
                    record.raw.len(),
                );
            }
        }
        Ok(added)
    }

    fn current_transform(&self) -> Arc<Transform> {
        self.transform
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The target table as the server describes it now; `None` if it is gone.
    async fn live_table(&self) -> Result<Option<crate::warehouse::schema::TableInfo>, SinkError> {
        let default_db = self.warehouse.settings().database.clone();
        let schema = self
            .warehouse
            .schema(true)
            .await
            .map_err(|e| sink_error(&e))?;
        Ok(schema.table(&self.table_name(), &default_db).cloned())
    }

    /// Reads the table's columns again and compiles the mapping against them.
    async fn reload_transform(&mut self) -> Result<(), SinkError> {
        let name = self.table_name();
        let info = self.live_table().await?.ok_or_else(|| {
            SinkError::Fatal(format!("table {name} disappeared while adding columns"))
        })?;
        let info = &info;
        let transform =
            Transform::new(&self.mapping, &target_columns(info)).map_err(|problems| {
                SinkError::Fatal(format!(
                    "pipeline `{}`: after adding columns, the mapping does not fit {name}:\n  - {}",
                    self.pipeline,
                    problems.join("\n  - ")
                ))
            })?;
        *self.transform.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(transform);
        Ok(())
    }

    /// Writes one batch. Returns once every record is stored in the target or dead-letter
    /// table; temporary failures are retried with backoff (reported through `on_retry`),
    /// unknown ones as often as `retry.unknown_errors` allows.
    pub async fn write(
        &mut self,
        records: &[PreparedRecord],
        mut on_retry: impl FnMut(&SinkError, Duration),
    ) -> Result<WriteOutcome, SinkError> {
        let mut delays = backoff(&self.retry);
        let mut unknown_failures = 0u32;
        loop {
            let err = match self.try_write(records).await {
                Ok(outcome) => return Ok(outcome),
                Err(SinkError::Fatal(e)) => return Err(SinkError::Fatal(e)),
                Err(err) => err,
            };
            if let SinkError::Unknown(message) = &err {
                unknown_failures += 1;
                if !self
                    .retry
                    .unknown_errors
                    .allows_retry_after(unknown_failures)
                {
                    return Err(SinkError::Fatal(give_up_message(
                        &self.pipeline,
                        message,
                        unknown_failures,
                    )));
                }
            }
            // Part of the batch may be stored now: check it record by record next time.
            if self.delivery == Delivery::ExactlyOnce {
                for r in records {
                    let entry = self.uncertain_up_to.entry(r.source_id.clone()).or_insert(0);
                    *entry = (*entry).max(r.offset);
                }
            }
            let wait = delays.next().unwrap_or(self.retry.max_backoff);
            on_retry(&err, wait);
            tokio::time::sleep(wait).await;
        }
    }

    async fn try_write(&mut self, records: &[PreparedRecord]) -> Result<WriteOutcome, SinkError> {
        let mut outcome = WriteOutcome::default();
        if self.delivery == Delivery::ExactlyOnce {
            self.learn_sources(records).await?;
        }
        let stored = self.already_stored(records).await?;
        let mut rows: Vec<usize> = Vec::with_capacity(records.len());
        let mut dead: Vec<DeadRecord> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if !stored.is_empty() && stored.contains(&(record.source_id.clone(), record.offset)) {
                outcome.already_stored += 1;
                continue;
            }
            match &record.row {
                Ok(_) => rows.push(i),
                Err(reason) => dead.push(DeadRecord {
                    record,
                    reason: reason.clone(),
                }),
            }
        }
        // Bad rows the server refuses are found by splitting, then dead-lettered too.
        let refused = self.insert_rows(records, &rows, &mut outcome).await?;
        for (i, reason) in refused {
            if let Some(record) = records.get(i) {
                dead.push(DeadRecord { record, reason });
            }
        }
        self.insert_dead(&dead).await?;
        outcome.dead_lettered = dead.len() as u64;
        outcome.unexplained = std::mem::take(&mut self.unexplained);
        let mut acks: BTreeMap<Arc<str>, u64> = BTreeMap::new();
        for r in records {
            // Looked up by name: cloning the source's `Arc` per record costs more.
            match acks.get_mut(&*r.source_id) {
                Some(e) => *e = (*e).max(r.offset),
                None => {
                    acks.insert(r.source_id.clone(), r.offset);
                }
            }
        }
        outcome.acks = acks
            .into_iter()
            .map(|(source_id, offset)| Ack { source_id, offset })
            .collect();
        Ok(outcome)
    }

    /// The positions of `records` the target table holds (the dead-letter table aside); empty
    /// without the bookkeeping columns.
    pub async fn stored_positions(
        &self,
        records: &[PreparedRecord],
    ) -> Result<HashSet<(Arc<str>, u64)>, SinkError> {
        let mut found = HashSet::new();
        if !self.bookkeeping {
            return Ok(found);
        }
        for (source, list) in offsets_by_source(records) {
            let sql = format!(
                "SELECT {OFFSET_COLUMN} FROM {} WHERE {SOURCE_COLUMN} = {} AND {OFFSET_COLUMN} IN ({list})",
                quoted_table(&self.table),
                quote_str(&source)
            );
            for offset in self.table_offsets(&sql).await? {
                found.insert((source.clone(), offset));
            }
        }
        Ok(found)
    }

    /// The offsets a query of the target table lists in its first column, on every shard.
    async fn table_offsets(&self, sql: &str) -> Result<Vec<u64>, SinkError> {
        let results = self
            .shards
            .query_each(sql)
            .await
            .map_err(|e| sink_error(&e))?;
        Ok(results.iter().flat_map(first_column_offsets).collect())
    }

    /// The offsets a query of the dead-letter table lists in its first column.
    async fn dead_letter_offsets(&self, sql: &str) -> Result<Vec<u64>, SinkError> {
        let result = self
            .warehouse
            .query(sql, &QueryOptions::unrestricted())
            .await
            .map_err(|e| sink_error(&e))?;
        Ok(first_column_offsets(&result).collect())
    }

    /// Inserts the prepared rows of `records` (those that prepared), splitting out the ones
    /// the server refuses: returned as (index in `records`, reason).
    pub async fn insert_prepared(
        &self,
        records: &[PreparedRecord],
    ) -> Result<Vec<(usize, String)>, SinkError> {
        let rows: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].row.is_ok())
            .collect();
        self.insert_rows(records, &rows, &mut WriteOutcome::default())
            .await
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
            let mut offsets = self
                .table_offsets(&format!(
                    "SELECT {OFFSET_COLUMN} FROM {} WHERE {SOURCE_COLUMN} = {} AND {OFFSET_COLUMN} BETWEEN {lo} AND {hi}",
                    quoted_table(&self.table),
                    quote_str(&source)
                ))
                .await?;
            if let Some(dl) = &self.dead_letter {
                offsets.extend(
                    self.dead_letter_offsets(&format!(
                        "SELECT offset FROM {} WHERE pipeline = {} AND source = {} AND offset BETWEEN {lo} AND {hi}",
                        quoted_table(dl),
                        quote_str(&self.pipeline),
                        quote_str(&source)
                    ))
                    .await?,
                );
            }
            found.extend(offsets.into_iter().map(|offset| (source.clone(), offset)));
        }
        Ok(found)
    }

    /// Inserts the rows of `records` at indices `rows`: one INSERT per shard. If the server
    /// refuses the data, halves the set until the refused rows are isolated and returns them
    /// (index, the server's message), so one bad row never blocks or drops the rest. A part is
    /// sent byte for byte the same on every attempt, so a replicated table that received it
    /// before deduplicates it.
    async fn insert_rows(
        &self,
        records: &[PreparedRecord],
        rows: &[usize],
        outcome: &mut WriteOutcome,
    ) -> Result<Vec<(usize, String)>, SinkError> {
        let shard_count = self.shards.shard_count();
        let mut per_shard: Vec<Vec<usize>> = vec![Vec::new(); shard_count];
        for &i in rows {
            per_shard[shard_of(records[i].shard_hash, shard_count)].push(i);
        }
        let mut refused = Vec::new();
        for (shard, rows) in per_shard.iter().enumerate() {
            let mut pending: Vec<&[usize]> = vec![rows];
            while let Some(part) = pending.pop() {
                if part.is_empty() {
                    continue;
                }
                let rows = || part.iter().filter_map(|&i| records[i].row.as_deref().ok());
                let mut body = Vec::with_capacity(rows().map(|l| l.len() + 1).sum());
                for row in rows() {
                    body.extend_from_slice(row);
                    if self.format == RowFormat::JsonEachRow {
                        body.push(b'\n');
                    }
                }
                let bytes = body.len() as u64;
                match self.insert_part(shard, records, part, body).await {
                    Ok(()) => {
                        outcome.rows_written += part.len() as u64;
                        outcome.bytes_written += bytes;
                    }
                    Err(e) if classify(&e) == ErrorClass::Data => {
                        if let [i] = part {
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
        }
        Ok(refused)
    }

    /// One INSERT of `body` (the rows of `records` at `part`) into shard `shard`.
    async fn insert_part(
        &self,
        shard: usize,
        records: &[PreparedRecord],
        part: &[usize],
        body: Vec<u8>,
    ) -> Result<(), WarehouseError> {
        let body = bytes::Bytes::from(body);
        let (table, format) = match self.format {
            RowFormat::RowBinary => (
                format!("{} ({})", quoted_table(&self.table), self.binary_columns),
                "RowBinary",
            ),
            RowFormat::JsonEachRow => (quoted_table(&self.table), "JSONEachRow"),
        };
        let distributed = self.shards.distributed;
        self.shards
            .on_shard(shard, |warehouse| {
                let body = body.clone();
                let table = &table;
                // Names the part by the positions it holds: servers that know the setting
                // deduplicate a part sent again even if its bytes changed (a later Aurora, say).
                let token = if warehouse.capabilities().insert_deduplication_token {
                    part_token(
                        &self.pipeline,
                        part.iter()
                            .map(|&i| (&*records[i].source_id, records[i].offset)),
                    )
                } else {
                    String::new()
                };
                async move {
                    let settings = insert_settings(warehouse.capabilities(), distributed, &token);
                    warehouse
                        .insert_formatted_with(table, format, body, &settings)
                        .await
                }
            })
            .await
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

/// The settings of one INSERT into the target table: synchronous through a Distributed
/// table, and the part's deduplication token where the server knows the setting (22.2+).
fn insert_settings<'a>(
    caps: &crate::warehouse::Capabilities,
    distributed: bool,
    token: &'a str,
) -> Vec<(&'static str, &'a str)> {
    let mut settings = Vec::new();
    if distributed {
        settings.push(("insert_distributed_sync", "1"));
    }
    if caps.insert_deduplication_token {
        settings.push(("insert_deduplication_token", token));
    }
    settings
}

/// The offsets in a result's first column.
fn first_column_offsets(result: &QueryResult) -> impl Iterator<Item = u64> + '_ {
    result.rows.iter().filter_map(|row| match row.first() {
        Some(Value::UInt(offset)) => Some(*offset),
        _ => None,
    })
}

/// Each source of `records` with its records' offsets as a comma-separated list, for
/// `offset IN (...)`.
pub fn offsets_by_source<'a>(
    records: impl IntoIterator<Item = &'a PreparedRecord>,
) -> BTreeMap<Arc<str>, String> {
    let mut out: BTreeMap<Arc<str>, String> = BTreeMap::new();
    for r in records {
        let list = out.entry(r.source_id.clone()).or_default();
        if !list.is_empty() {
            list.push(',');
        }
        let _ = write!(list, "{}", r.offset);
    }
    out
}

/// A name that can be a column without quoting or renaming: `[A-Za-z_][A-Za-z0-9_]*`.
fn plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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
    // A sink writing to shards directly reads the table on the first shard.
    let shards = pipeline
        .sink
        .cluster
        .as_ref()
        .and_then(|c| Shards::direct(warehouse, c));
    let schema = match &shards {
        Some(shards) => {
            shards
                .first()
                .await
                .map_err(|e| sink_error(&e))?
                .schema(true)
                .await
        }
        None => warehouse.schema(true).await,
    }
    .map_err(|e| sink_error(&e))?;
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

/// The waits between attempts: exponential from `initial_backoff` to `max_backoff`, each
/// within [d/2, d] with jitter so that many pipelines retrying at once do not hit the server
/// in lockstep. (backon's jitter adds up to one more delay, so it runs on halves.)
fn backoff(policy: &RetryPolicy) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(policy.initial_backoff / 2)
        .with_max_delay(policy.max_backoff / 2)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Why a pipeline stopped retrying an error no list names.
fn give_up_message(pipeline: &str, error: &str, failures: u32) -> String {
    format!(
        "pipeline `{pipeline}`: ClickHouse failed {failures} time(s) in a row with an error Aurora does not know to be temporary: {error}\n\
         If it is temporary, let the pipeline retry longer with `retry: {{unknown_errors: forever}}` (or a larger number)"
    )
}

/// Creates the target table from the mapping's types: on the pipeline's server; on every
/// replica of every shard (`cluster.shards`); or `ON CLUSTER` (`cluster.name`), as
/// `<table>_local` on every shard plus the Distributed `table` over them.
async fn create_table(
    warehouse: &Warehouse,
    shards: &Shards,
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
    let cluster = pipeline.sink.cluster.as_ref();
    let on_cluster = cluster
        .filter(|c| c.shards.is_empty())
        .and_then(|c| c.name.as_deref());
    let local = match on_cluster {
        Some(_) => (table.0.clone(), format!("{}_local", table.1)),
        None => table.clone(),
    };
    let engine = if cluster.is_some_and(|c| c.replicated) {
        format!(
            "ReplicatedMergeTree({}, '{{replica}}')",
            quote_str(&format!(
                "/clickhouse/tables/{{shard}}/{}/{}",
                local.0, local.1
            ))
        )
    } else {
        "MergeTree".to_string()
    };
    let clause = on_cluster
        .map(|c| format!(" ON CLUSTER {}", quote_ident(c)))
        .unwrap_or_default();
    let mut statements = vec![
        format!(
            "CREATE DATABASE IF NOT EXISTS {}{clause}",
            quote_ident(&table.0)
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {}{clause} ({}) ENGINE = {engine}{partition} ORDER BY ({})",
            quoted_table(&local),
            columns.join(", "),
            pipeline.sink.order_by.join(", ")
        ),
    ];
    if let Some(name) = on_cluster {
        let sharding = cluster
            .and_then(|c| c.sharding_key.as_deref())
            .map(|key| format!("cityHash64({})", quote_ident(key)))
            .unwrap_or_else(|| "rand()".to_string());
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {}{clause} AS {} ENGINE = Distributed({}, {}, {}, {sharding})",
            quoted_table(table),
            quoted_table(&local),
            quote_ident(name),
            quote_ident(&local.0),
            quote_ident(&local.1),
        ));
    }
    let opts = ddl_options(warehouse);
    for sql in statements {
        let done = if cluster.is_some_and(|c| !c.shards.is_empty()) {
            shards.execute_everywhere(&sql, &opts).await
        } else {
            warehouse.query(&sql, &opts).await.map(drop)
        };
        done.map_err(|e| sink_error(&e))?;
    }
    Ok(())
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
    warehouse
        .query(sql, &ddl_options(warehouse))
        .await
        .map(drop)
        .map_err(|e| sink_error(&e))
}

/// Options for Aurora's CREATE statements.
fn ddl_options(warehouse: &Warehouse) -> QueryOptions {
    let mut opts = QueryOptions::unrestricted();
    if warehouse.capabilities().low_cardinality_needs_flag {
        opts.settings
            .push(("allow_experimental_low_cardinality_type".into(), "1".into()));
    }
    opts
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
    fn backoff_grows_to_its_cap_and_never_ends() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        let waits: Vec<Duration> = backoff(&policy).take(50).collect();
        assert_eq!(waits.len(), 50);
        assert!(waits[0] >= Duration::from_millis(50) && waits[0] <= Duration::from_millis(100));
        // Never above the cap, never below half of it once there.
        assert!(
            waits.iter().all(|w| *w <= Duration::from_secs(2)),
            "{waits:?}"
        );
        assert!(waits[49] >= Duration::from_secs(1));
    }

    #[test]
    fn unknown_errors_are_retried_as_often_as_the_setting_says() {
        use crate::ingest::pipeline::{Attempts, ForeverWord};
        let five = Attempts::Times(5);
        assert!(five.allows_retry_after(5));
        assert!(!five.allows_retry_after(6));
        assert!(!Attempts::Times(0).allows_retry_after(1));
        assert!(Attempts::Forever(ForeverWord::Forever).allows_retry_after(u32::MAX));
        let parsed: RetryPolicy = serde_yaml::from_str("unknown_errors: forever").unwrap();
        assert_eq!(
            parsed.unknown_errors,
            Attempts::Forever(ForeverWord::Forever)
        );
        let parsed: RetryPolicy = serde_yaml::from_str("unknown_errors: 2").unwrap();
        assert_eq!(parsed.unknown_errors, Attempts::Times(2));
        assert!(serde_yaml::from_str::<RetryPolicy>("unknown_errors: always").is_err());
        let message = give_up_message("p", "ClickHouse error 999999: odd", 6);
        assert!(message.contains("6 time(s)") && message.contains("unknown_errors: forever"));
    }

    #[test]
    fn inserts_carry_a_deduplication_token_only_where_the_server_knows_it() {
        use crate::warehouse::Capabilities;
        let old = Capabilities::from_version("18.16.1");
        let current = Capabilities::from_version("25.8.2.29");
        assert_eq!(insert_settings(&old, false, "t"), vec![]);
        assert_eq!(
            insert_settings(&old, true, "t"),
            vec![("insert_distributed_sync", "1")]
        );
        assert_eq!(
            insert_settings(&current, true, "t"),
            vec![
                ("insert_distributed_sync", "1"),
                ("insert_deduplication_token", "t")
            ]
        );
        assert_eq!(
            insert_settings(&Capabilities::from_version("22.1.3"), false, "t"),
            vec![]
        );
        assert_eq!(
            insert_settings(&Capabilities::from_version("22.2.2"), false, "t"),
            vec![("insert_deduplication_token", "t")]
        );
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
        for code in [252, 241, 242, 159, 209, 210, 319, 999] {
            assert_eq!(classify(&server(code)), ErrorClass::Transient, "{code}");
        }
        // Not on any list: neither retried for ever nor given up at once.
        assert_eq!(classify(&server(48)), ErrorClass::Unknown);
        assert_eq!(classify(&server(123_456)), ErrorClass::Unknown);
        for list in [RETRYABLE_CODES, DATA_CODES] {
            assert!(list.iter().all(|c| !FATAL_CODES.contains(c)));
        }
        assert!(RETRYABLE_CODES.iter().all(|c| !DATA_CODES.contains(c)));
        assert_eq!(
            classify(&WarehouseError::Timeout {
                url: String::new(),
                timeout: Duration::from_secs(1)
            }),
            ErrorClass::Transient
        );
    }
}
