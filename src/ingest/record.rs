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
    /// The parsed record, or why it cannot be read.
    pub payload: Result<Payload, String>,
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

/// A parsed record.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON document (Kafka messages, database rows); records to write are objects.
    Json(serde_json::Value),
    /// A CSV row, kept as its fields: the transform reads them by header without building a
    /// JSON object per row.
    Row(Row),
}

impl From<serde_json::Value> for Payload {
    fn from(v: serde_json::Value) -> Payload {
        Payload::Json(v)
    }
}

impl Payload {
    /// The record as a JSON object (a CSV row: header → text, empty fields null).
    pub fn into_json(self) -> serde_json::Value {
        match self {
            Payload::Json(v) => v,
            Payload::Row(row) => row.to_json(),
        }
    }
}

/// One CSV row: its fields and the file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub header: Arc<[String]>,
    pub fields: csv::StringRecord,
}

impl Row {
    /// The field named `name`: fields past the header are named `c1`, `c2`, ... by position
    /// and, as in a JSON object, a name given twice means its last field. An empty field is
    /// `Some("")` (read as null).
    pub fn get(&self, name: &str) -> Option<&str> {
        let past_header = name
            .strip_prefix('c')
            .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .filter(|i| *i >= self.header.len());
        if let Some(i) = past_header {
            if let Some(field) = self.fields.get(i) {
                return Some(field);
            }
        }
        let count = self.fields.len().min(self.header.len());
        self.header[..count]
            .iter()
            .rposition(|h| h == name)
            .and_then(|i| self.fields.get(i))
    }

    /// The row as a JSON object: header → text, with empty fields as null.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::with_capacity(self.fields.len());
        for (i, field) in self.fields.iter().enumerate() {
            let name = self
                .header
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("c{}", i + 1));
            let value = if field.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(field.to_string())
            };
            map.insert(name, value);
        }
        serde_json::Value::Object(map)
    }
}
