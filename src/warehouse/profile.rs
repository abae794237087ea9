//! Measured facts about a table's columns (distinct values, numeric range, text length, the
//! span of its times), read in two queries: one over a sample of rows, one over the whole
//! table for the temporal columns' first and last values. The dashboard roles use them to
//! tell a category from an identifier, or a clock time stored as `hhmm` from a quantity.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::Warehouse;
use super::error::Result;
use super::query::{quote_ident, QueryOptions};
use super::schema::{ColumnInfo, TableInfo};
use super::types::DataType;
use super::value::Value;

/// Rows read for the distinct counts and ranges: enough to tell ten values from ten
/// thousand, cheap on any table.
pub const SAMPLE_ROWS: u64 = 100_000;

/// What was measured of one column. Fields the column's type has no use for stay `None`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ColumnProfile {
    /// Distinct non-NULL values in the sample (approximate, `uniq`).
    pub distinct: u64,
    /// Smallest and largest value of a number.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Average length in bytes of a string.
    pub avg_length: Option<f64>,
    /// Unix seconds of the oldest and newest value of a date or date-time, whole table.
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
}

/// The measured columns of one table, by name.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TableProfile {
    /// Rows the sample held: fewer than [`SAMPLE_ROWS`] means the whole table was read.
    pub sampled_rows: u64,
    pub columns: BTreeMap<String, ColumnProfile>,
}

impl TableProfile {
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.get(name)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Measure {
    Distinct,
    Min,
    Max,
    AvgLength,
    Oldest,
    Newest,
}

/// Reads the profile of `table`. Columns whose type cannot be compared or hashed simply
/// (arrays, maps, aggregate states) are left out.
pub async fn profile(warehouse: &Warehouse, table: &TableInfo) -> Result<TableProfile> {
    let from = format!(
        "{}.{}",
        quote_ident(&table.database),
        quote_ident(&table.name)
    );
    let mut sampled: Vec<(String, Measure, String)> = Vec::new();
    let mut whole: Vec<(String, Measure, String)> = Vec::new();
    for column in &table.columns {
        let Some(ty) = column.data_type() else {
            continue;
        };
        let c = quote_ident(&column.name);
        let inner = ty.unwrap_wrappers();
        if matches!(
            inner,
            DataType::Array(_)
                | DataType::Map(..)
                | DataType::Tuple(_)
                | DataType::AggregateFunction(_)
                | DataType::Nothing
                | DataType::Other(_)
        ) || is_alias(column)
        {
            continue;
        }
        let name = column.name.clone();
        sampled.push((name.clone(), Measure::Distinct, format!("uniq({c})")));
        if inner.is_temporal() {
            let seconds = format!("toInt64(toUInt32(toDateTime({c})))");
            whole.push((name.clone(), Measure::Oldest, format!("min({seconds})")));
            whole.push((name, Measure::Newest, format!("max({seconds})")));
        } else if inner.is_numeric() && !matches!(inner, DataType::Bool) {
            sampled.push((name.clone(), Measure::Min, format!("min(toFloat64({c}))")));
            sampled.push((name, Measure::Max, format!("max(toFloat64({c}))")));
        } else if inner.is_string_like()
            && !matches!(inner, DataType::Enum8(_) | DataType::Enum16(_))
        {
            sampled.push((name, Measure::AvgLength, format!("avg(length({c}))")));
        }
    }
    let opts = QueryOptions {
        max_execution_time: Some(Duration::from_secs(20)),
        ..QueryOptions::default()
    };
    let mut out = TableProfile::default();
    if !sampled.is_empty() {
        let names: Vec<String> = table
            .columns
            .iter()
            .filter(|c| sampled.iter().any(|(n, _, _)| n == &c.name))
            .map(|c| quote_ident(&c.name))
            .collect();
        let exprs: Vec<&str> = sampled.iter().map(|(_, _, e)| e.as_str()).collect();
        let sql = format!(
            "SELECT count(), {} FROM (SELECT {} FROM {from} LIMIT {SAMPLE_ROWS})",
            exprs.join(", "),
            names.join(", ")
        );
        let result = warehouse.query(&sql, &opts).await?;
        if let Some(row) = result.rows.first() {
            out.sampled_rows = row.first().and_then(Value::as_f64).unwrap_or(0.0) as u64;
            record(&mut out, &sampled, &row[1..]);
        }
    }
    if !whole.is_empty() {
        let exprs: Vec<&str> = whole.iter().map(|(_, _, e)| e.as_str()).collect();
        let sql = format!("SELECT {} FROM {from}", exprs.join(", "));
        let result = warehouse.query(&sql, &opts).await?;
        if let Some(row) = result.rows.first() {
            record(&mut out, &whole, row);
        }
    }
    Ok(out)
}

fn is_alias(column: &ColumnInfo) -> bool {
    column.default_kind == "ALIAS"
}

fn record(out: &mut TableProfile, measures: &[(String, Measure, String)], row: &[Value]) {
    for ((name, measure, _), value) in measures.iter().zip(row) {
        let entry = out.columns.entry(name.clone()).or_default();
        let number = value.as_f64();
        match measure {
            Measure::Distinct => entry.distinct = number.unwrap_or(0.0) as u64,
            Measure::Min => entry.min = number,
            Measure::Max => entry.max = number,
            Measure::AvgLength => entry.avg_length = number,
            // An empty table's min() of a date is 1970; that is no time span at all.
            Measure::Oldest => entry.oldest = number.map(|n| n as i64).filter(|n| *n > 0),
            Measure::Newest => entry.newest = number.map(|n| n as i64).filter(|n| *n > 0),
        }
    }
}
