//! What flows from a source to the sink: a record with the position it came from. The position
//! (`source_id`, `offset`) is unique and ever-increasing within one source stream, which is what
//! exactly-once bookkeeping in the sink relies on.

use std::sync::Arc;

/// One record read from a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    /// The stream it belongs to, e.g. `kafka:events:3` or `csv:/data/a.csv`.
    pub source_id: Arc<str>,
    /// Position within the stream; strictly increasing.
    pub offset: u64,
    /// The parsed record (a JSON object; CSV rows become header → field objects).
    pub payload: Result<serde_json::Value, String>,
    /// The record as it arrived, for the dead-letter table.
    pub raw: String,
}

/// How far a sink has durably written one source stream: every record up to and including
/// `offset` is stored (in the target or the dead-letter table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub source_id: Arc<str>,
    pub offset: u64,
}
