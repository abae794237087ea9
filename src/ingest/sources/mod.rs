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

/// Something that lost nothing but needs a look: a CSV file replaced or truncated, Kafka
/// offsets that went back, records found stored that no restart explains. Shown in the
/// pipeline's status and log, and counted in `aurora_pipeline_warnings_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// One of [`crate::metrics::WARNING_KINDS`].
    pub kind: &'static str,
    pub message: String,
}

impl Warning {
    pub fn new(kind: &'static str, message: String) -> Self {
        debug_assert!(crate::metrics::WARNING_KINDS.contains(&kind));
        Self { kind, message }
    }
}

/// Reports a warning to whoever shows the pipeline's status.
pub type WarningReporter = std::sync::Arc<dyn Fn(Warning) + Send + Sync>;
