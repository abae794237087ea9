//! The shape of a query's answer: typed columns, typed rows and the server's statistics.
//! Produced by the query runner (`query.rs`), consumed by the CLI's formatters and the TUI.

use std::time::Duration;

use super::types::DataType;
use super::value::Value;

/// One result column: its name and ClickHouse type as the server reported them.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The type exactly as the server spelled it, e.g. `Nullable(Decimal(18, 4))`.
    pub type_name: String,
    pub data_type: DataType,
}

/// What the server and the client measured for one query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryStats {
    pub query_id: String,
    /// Wall time seen by Aurora, from sending the request to the last byte.
    pub elapsed: Duration,
    /// Execution time reported by the server, when it reports one.
    pub server_elapsed: Option<Duration>,
    pub rows_read: Option<u64>,
    pub bytes_read: Option<u64>,
    /// Rows in the result as delivered.
    pub result_rows: u64,
    /// True when `max_result_rows` with `result_overflow_mode=break` cut the result short.
    pub truncated: bool,
}

/// A whole result held in memory. Large results can be streamed chunk by chunk instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// The totals row of a `WITH TOTALS` query.
    pub totals: Option<Vec<Value>>,
    pub stats: QueryStats,
}
