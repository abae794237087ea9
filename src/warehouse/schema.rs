//! Schema introspection: databases, tables (engine, keys, rows and bytes on disk) and columns
//! (type, default, comment, key membership), read from `system.tables`, `system.parts` and
//! `system.columns` with typed rows through the `clickhouse` crate. The `Warehouse` caches it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::client::Warehouse;
use super::error::Result;

/// Databases that hold ClickHouse's own bookkeeping, hidden from users' schema views.
const HIDDEN_DATABASES: &str = "('system', 'information_schema', 'INFORMATION_SCHEMA')";

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ColumnInfo {
    pub name: String,
    pub type_name: String,
    /// `DEFAULT`, `MATERIALIZED`, `ALIAS` or empty.
    pub default_kind: String,
    pub default_expression: String,
    pub comment: String,
    pub in_partition_key: bool,
    pub in_sorting_key: bool,
    pub in_primary_key: bool,
}

impl ColumnInfo {
    /// The column's type, parsed; `None` for a type Aurora does not know.
    pub fn data_type(&self) -> Option<crate::warehouse::types::DataType> {
        crate::warehouse::types::DataType::parse(&self.type_name).ok()
    }

    /// Whether the name says it is a key (`id`, `user_id`, `userId`): joined on, not summed.
    pub fn is_key_like(&self) -> bool {
        self.name == "id" || self.name.ends_with("_id") || self.name.ends_with("Id")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableInfo {
    pub database: String,
    pub name: String,
    pub engine: String,
    pub partition_key: String,
    pub sorting_key: String,
    pub primary_key: String,
    /// Rows and bytes in active parts (MergeTree family); 0 for other engines.
    pub total_rows: u64,
    pub total_bytes: u64,
    pub columns: Vec<ColumnInfo>,
}

impl TableInfo {
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.database, self.name)
    }
}

/// Every user table of the server, ordered by database then name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Schema {
    pub databases: Vec<String>,
    pub tables: Vec<TableInfo>,
}

impl Schema {
    /// Finds `name` or `database.name`; an unqualified name prefers `default_database`.
    pub fn table(&self, name: &str, default_database: &str) -> Option<&TableInfo> {
        match name.split_once('.') {
            Some((db, table)) => self
                .tables
                .iter()
                .find(|t| t.database == db && t.name == table),
            None => self
                .tables
                .iter()
                .find(|t| t.database == default_database && t.name == name)
                .or_else(|| self.tables.iter().find(|t| t.name == name)),
        }
    }

    /// Table names close to `name`, for "did you mean" hints.
    pub fn similar_tables(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(f64, String)> = self
            .tables
            .iter()
            .map(|t| {
                let score = match name.split_once('.') {
                    Some(_) => strsim::jaro_winkler(&t.qualified_name(), name),
                    None => strsim::jaro_winkler(&t.name, name),
                };
                (score, t.qualified_name())
            })
            .filter(|(score, _)| *score > 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(3).map(|(_, n)| n).collect()
    }

    pub(crate) async fn load(warehouse: &Warehouse) -> Result<Schema> {
        #[derive(clickhouse::Row, Deserialize)]
        struct DbRow {
            name: String,
        }
        #[derive(clickhouse::Row, Deserialize)]
        struct TableRow {
            database: String,
            name: String,
            engine: String,
            partition_key: String,
            sorting_key: String,
            primary_key: String,
        }
        #[derive(clickhouse::Row, Deserialize)]
        struct PartsRow {
            database: String,
            table: String,
            rows: u64,
            bytes: u64,
        }
        #[derive(clickhouse::Row, Deserialize)]
        struct ColumnRow {
            database: String,
            table: String,
            name: String,
            type_name: String,
            default_kind: String,
            default_expression: String,
            comment: String,
            in_partition_key: u8,
            in_sorting_key: u8,
            in_primary_key: u8,
        }
        let client = warehouse.typed_client();
        let err = |e| warehouse.typed_error(e);
        let databases: Vec<String> = client
            .query(&format!(
                "SELECT name FROM system.databases WHERE name NOT IN {HIDDEN_DATABASES} ORDER BY name"
            ))
            .fetch_all::<DbRow>()
            .await
            .map_err(err)?
            .into_iter()
            .map(|r| r.name)
            .collect();
        let tables = client
            .query(&format!(
                "SELECT database, name, engine, partition_key, sorting_key, primary_key \
                 FROM system.tables WHERE database NOT IN {HIDDEN_DATABASES} AND NOT is_temporary \
                 ORDER BY database, name"
            ))
            .fetch_all::<TableRow>()
            .await
            .map_err(err)?;
        // Joined in Rust: 18.16's JOIN syntax differs from today's.
        let parts: BTreeMap<(String, String), (u64, u64)> = client
            .query(&format!(
                "SELECT database, table, toUInt64(sum(rows)) AS rows, \
                 toUInt64(sum(bytes_on_disk)) AS bytes FROM system.parts \
                 WHERE active AND database NOT IN {HIDDEN_DATABASES} GROUP BY database, table"
            ))
            .fetch_all::<PartsRow>()
            .await
            .map_err(err)?
            .into_iter()
            .map(|p| ((p.database, p.table), (p.rows, p.bytes)))
            .collect();
        let mut columns: BTreeMap<(String, String), Vec<ColumnInfo>> = BTreeMap::new();
        let column_rows = client
            .query(&format!(
                "SELECT database, table, name, type AS type_name, default_kind, \
                 default_expression, comment, \
                 toUInt8(is_in_partition_key) AS in_partition_key, \
                 toUInt8(is_in_sorting_key) AS in_sorting_key, \
                 toUInt8(is_in_primary_key) AS in_primary_key \
                 FROM system.columns WHERE database NOT IN {HIDDEN_DATABASES}"
            ))
            .fetch_all::<ColumnRow>()
            .await
            .map_err(err)?;
        // system.columns has no position column on old servers; its natural order is the
        // table's column order, which BTreeMap insertion keeps per table.
        for c in column_rows {
            columns
                .entry((c.database, c.table))
                .or_default()
                .push(ColumnInfo {
                    name: c.name,
                    type_name: c.type_name,
                    default_kind: c.default_kind,
                    default_expression: c.default_expression,
                    comment: c.comment,
                    in_partition_key: c.in_partition_key != 0,
                    in_sorting_key: c.in_sorting_key != 0,
                    in_primary_key: c.in_primary_key != 0,
                });
        }
        let tables = tables
            .into_iter()
            .map(|t| {
                let key = (t.database.clone(), t.name.clone());
                let (total_rows, total_bytes) = parts.get(&key).copied().unwrap_or((0, 0));
                TableInfo {
                    columns: columns.remove(&key).unwrap_or_default(),
                    database: t.database,
                    name: t.name,
                    engine: t.engine,
                    partition_key: t.partition_key,
                    sorting_key: t.sorting_key,
                    primary_key: t.primary_key,
                    total_rows,
                    total_bytes,
                }
            })
            .collect();
        Ok(Schema { databases, tables })
    }
}
