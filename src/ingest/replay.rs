//! `aurora pipeline replay`: dead-lettered records through the pipeline's current mapping,
//! after the user fixed what made them fail (a type, a default, `evolve`, a column).
//!
//! Each record is parsed again from its raw text as its source would (a Kafka message, a CSV
//! line with the header of the files the pipeline reads, a SQL row as JSON) and prepared by the
//! sink as a new record would be, keeping its original position (`source`, `offset`). A dry run
//! only counts how many now pass the mapping. A real run inserts those that pass, then removes
//! them from the dead-letter table. Exactly once without transactions: before inserting, the
//! target table is asked which of the positions it holds already (a replay that stopped between
//! the insert and the removal), and those are only removed. Records that still fail stay, and
//! the report says why, grouped by reason.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::ingest::pipeline::{Pipeline, Source};
use crate::ingest::record::{Payload, SourceRecord};
use crate::ingest::sinks::clickhouse::{
    offsets_by_source, qualified, ClickHouseSink, PreparedRecord,
};
use crate::ingest::sources::{csv, kafka};
use crate::warehouse::query::{quote_ident, quote_str};
use crate::warehouse::value::Value;
use crate::warehouse::{QueryOptions, Warehouse};

/// Dead letters read and handled at once.
const PAGE: usize = 5_000;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ReplayReport {
    /// Dead-lettered records of the pipeline (matching `--where`).
    pub examined: u64,
    /// Passing the mapping now (in a dry run: would be written).
    pub passing: u64,
    /// Written to the target table (0 in a dry run).
    pub written: u64,
    /// Found in the target table already (an earlier replay stopped half-way): only removed.
    pub already_in_table: u64,
    /// Removed from the dead-letter table.
    pub removed: u64,
    /// Still failing, by reason (its first 120 characters), with counts.
    pub still_failing: BTreeMap<String, u64>,
}

/// How a raw dead-lettered text becomes a record again.
enum Parser {
    Kafka(crate::ingest::pipeline::RecordFormat),
    Csv { headers: Vec<String>, delimiter: u8 },
    Json,
}

impl Parser {
    fn for_pipeline(pipeline: &Pipeline, base_dir: &Path) -> Result<Self, String> {
        Ok(match &pipeline.source {
            Source::Kafka(spec) => Parser::Kafka(spec.format),
            Source::Csv(spec) => {
                let delimiter = spec.delimiter.as_bytes().first().copied().unwrap_or(b',');
                let headers = if spec.header {
                    let pattern = crate::config::resolve_path(base_dir, Path::new(&spec.path))
                        .display()
                        .to_string();
                    csv::header_of_first_file(&pattern, delimiter)
                        .map_err(|e| format!("the CSV records need their header: {e}"))?
                } else {
                    Vec::new()
                };
                Parser::Csv { headers, delimiter }
            }
            Source::Postgres(_) | Source::Mysql(_) => Parser::Json,
        })
    }

    fn parse(&self, raw: &str) -> Result<serde_json::Value, String> {
        match self {
            Parser::Kafka(format) => kafka::parse_payload(*format, raw.as_bytes()),
            Parser::Csv { headers, delimiter } => csv::parse_line(headers, *delimiter, raw),
            Parser::Json => serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}")),
        }
    }
}

/// Replays the dead letters of `pipeline` (those matching the SQL condition `filter`, if
/// given) through its current mapping.
pub async fn replay(
    warehouse: Arc<Warehouse>,
    pipeline: &Pipeline,
    base_dir: &Path,
    filter: Option<&str>,
    dry_run: bool,
) -> Result<ReplayReport, String> {
    let Some(dead_letter) = &pipeline.dead_letter else {
        return Err(format!(
            "pipeline `{}` has no `dead_letter` table, so there is nothing to replay",
            pipeline.name
        ));
    };
    let default_db = warehouse.settings().database.clone();
    let dl = qualified(&dead_letter.table, &default_db);
    let dl = format!("{}.{}", quote_ident(&dl.0), quote_ident(&dl.1));
    let parser = Parser::for_pipeline(pipeline, base_dir)?;
    let sink = ClickHouseSink::prepare(warehouse.clone(), pipeline)
        .await
        .map_err(|e| e.to_string())?;
    let preparer = sink.preparer();
    let condition = filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
    let mut report = ReplayReport::default();
    let mut after: Option<(String, u64)> = None;
    loop {
        let from = match &after {
            Some((s, o)) => format!(
                " AND (source > {0} OR (source = {0} AND offset > {o}))",
                quote_str(s)
            ),
            None => String::new(),
        };
        let sql = format!(
            "SELECT source, offset, raw FROM {dl} WHERE pipeline = {}{condition}{from} \
             ORDER BY source, offset LIMIT {PAGE}",
            quote_str(&pipeline.name)
        );
        let page = warehouse
            .query(&sql, &QueryOptions::unrestricted())
            .await
            .map_err(|e| format!("cannot read {dl}: {e}"))?;
        if page.rows.is_empty() {
            break;
        }
        let mut records = Vec::with_capacity(page.rows.len());
        for row in &page.rows {
            let (Some(Value::String(source)), Some(Value::UInt(offset)), Some(Value::String(raw))) =
                (row.first(), row.get(1), row.get(2))
            else {
                continue;
            };
            after = Some((source.to_string(), *offset));
            records.push(preparer.prepare(SourceRecord {
                source_id: Arc::from(&**source),
                offset: *offset,
                payload: parser.parse(raw).map(Payload::Json),
                raw: raw.to_string(),
            }));
        }
        report.examined += records.len() as u64;
        let mut passing = Vec::new();
        for r in records {
            match &r.row {
                Ok(_) => passing.push(r),
                Err(reason) => failing(&mut report, reason),
            }
        }
        report.passing += passing.len() as u64;
        if !dry_run && !passing.is_empty() {
            write_and_remove(&warehouse, &sink, &dl, &pipeline.name, passing, &mut report).await?;
        }
        if page.rows.len() < PAGE {
            break;
        }
    }
    Ok(report)
}

fn failing(report: &mut ReplayReport, reason: &str) {
    let head: String = reason.chars().take(120).collect();
    *report.still_failing.entry(head).or_insert(0) += 1;
}

/// Inserts the records the target table does not hold yet, then removes every record the
/// target now holds from the dead-letter table.
async fn write_and_remove(
    warehouse: &Warehouse,
    sink: &ClickHouseSink,
    dl: &str,
    pipeline: &str,
    records: Vec<PreparedRecord>,
    report: &mut ReplayReport,
) -> Result<(), String> {
    let present = sink
        .stored_positions(&records)
        .await
        .map_err(|e| e.to_string())?;
    let (stored, new): (Vec<PreparedRecord>, Vec<PreparedRecord>) = records
        .into_iter()
        .partition(|r| present.contains(&(r.source_id.clone(), r.offset)));
    report.already_in_table += stored.len() as u64;
    let refused = sink
        .insert_prepared(&new)
        .await
        .map_err(|e| e.to_string())?;
    let refused_at: HashSet<usize> = refused.iter().map(|(i, _)| *i).collect();
    for (_, reason) in &refused {
        failing(report, reason);
    }
    report.written += (new.len() - refused_at.len()) as u64;
    let done = stored.iter().chain(
        new.iter()
            .enumerate()
            .filter(|(i, _)| !refused_at.contains(i))
            .map(|(_, r)| r),
    );
    for (source, list) in offsets_by_source(done) {
        let sql = format!(
            "ALTER TABLE {dl} DELETE WHERE pipeline = {} AND source = {} AND offset IN ({list})",
            quote_str(pipeline),
            quote_str(&source)
        );
        warehouse
            .query(&sql, &QueryOptions::unrestricted())
            .await
            .map_err(|e| format!("stored, but cannot remove them from {dl}: {e}"))?;
        report.removed += list.split(',').count() as u64;
    }
    Ok(())
}
