//! Ingestion: pipelines move records from a source (Kafka, CSV files, PostgreSQL, MySQL)
//! through a transform (field mapping and type coercion) into a ClickHouse sink, in background
//! tasks. Sources hand out records with a position; the sink acknowledges a batch only once
//! ClickHouse has stored it, and only then does the source's position advance. This module
//! knows nothing about the screen: the CLI and the TUI both drive it.

pub mod engine;
pub mod init;
pub mod pipeline;
pub mod record;
pub mod sinks;
pub mod sources;
pub mod transform;
