//! Where records come from. Each source reads its input on its own task, turns every record
//! into a `SourceRecord` with a position, and sends it to the engine through a bounded
//! channel. Positions are saved only after the sink stored the records (see `engine`).
//! Sources: CSV files, Kafka topics, and PostgreSQL and MySQL/MariaDB tables (`sql`).

pub mod csv;
pub mod kafka;
pub mod mysql;
pub mod postgres;
pub mod sql;

/// Reports a source's health: `Some(error)` while it cannot read (brokers or database down),
/// `None` once it reads again.
pub type HealthReporter = Box<dyn Fn(Option<String>) + Send + Sync>;
