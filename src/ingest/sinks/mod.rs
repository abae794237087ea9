//! Where records end up. One sink today: ClickHouse (`clickhouse.rs`), which batches records
//! into inserts, keeps the exactly-once bookkeeping and writes the dead-letter table, on one
//! server or the shards of a cluster (`cluster.rs`).

pub mod clickhouse;
pub mod cluster;
