//! Ingestion: pipelines move records from a source (Kafka, CSV files, PostgreSQL, MySQL)
//! through a transform (field mapping and type coercion) into a ClickHouse sink, in background
//! tasks. Sources hand out records with a position; the sink acknowledges a batch only once
//! ClickHouse has stored it, and only then does the source's position advance. This module
//! knows nothing about the screen: the CLI and the TUI both drive it.

pub mod engine;
pub mod handover;
pub mod init;
pub mod pipeline;
pub mod queue;
pub mod record;
pub mod replay;
pub mod sinks;
pub mod sources;
pub mod supervisor;
pub mod transform;

/// Seconds since the Unix epoch, for timestamps Aurora writes (dead letters, status files).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
