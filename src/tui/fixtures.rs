//! Test data for the workspace's state, widget and screen tests.

use std::sync::Arc;

use crate::warehouse::result::{Column, QueryResult, QueryStats};
use crate::warehouse::types::DataType;
use crate::warehouse::value::Value;

/// A result with the given `(name, type)` columns and rows.
pub fn result(columns: &[(&str, &str)], rows: Vec<Vec<Value>>) -> QueryResult {
    let columns = columns
        .iter()
        .map(|(name, type_name)| Column {
            name: (*name).to_string(),
            type_name: (*type_name).to_string(),
            data_type: DataType::parse(type_name).unwrap_or_else(|e| panic!("{type_name}: {e}")),
        })
        .collect();
    let result_rows = rows.len() as u64;
    QueryResult {
        columns,
        rows,
        totals: None,
        stats: QueryStats {
            elapsed: std::time::Duration::from_millis(12),
            rows_read: Some(result_rows * 10),
            result_rows,
            ..QueryStats::default()
        },
    }
}

/// Events per hour: a time column and two numeric series.
pub fn hourly() -> Arc<QueryResult> {
    let rows = (0..24u64)
        .map(|h| {
            vec![
                Value::DateTime(format!("2026-11-24 {h:02}:00:00").into()),
                Value::UInt(100 + (h * 37) % 90),
                Value::Decimal(format!("{}.50", 10 + (h * 13) % 40).into()),
            ]
        })
        .collect();
    Arc::new(result(
        &[
            ("hour", "DateTime"),
            ("events", "UInt64"),
            ("revenue", "Decimal(10, 2)"),
        ],
        rows,
    ))
}
