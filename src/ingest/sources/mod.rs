//! Where records come from. Each source reads its input on its own task, turns every record
//! into a `SourceRecord` with a position, and sends it to the engine through a bounded
//! channel. Positions are saved only after the sink stored the records (see `engine`).
//! Implemented: CSV files and Kafka topics. PostgreSQL and MySQL are validated in pipeline
//! files but not runnable yet.

pub mod csv;
pub mod kafka;
