//! `aurora size`: ClickHouse, Kafka and Aurora resources for a workload, each with the rule it
//! came from. The workload comes from flags, or is measured: a running pipeline's rates
//! (`--from-pipeline`) and a table's compression (`--from-table`).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::sizing::{size, Workload};
use crate::warehouse::QueryOptions;

use super::session::Session;
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct SizeArgs {
    /// Events per second to ingest (sustained)
    #[arg(long, value_name = "N", required_unless_present = "from_pipeline")]
    events_per_second: Option<f64>,
    /// Bytes per event as the source sends it (uncompressed)
    #[arg(long, value_name = "BYTES", required_unless_present = "from_pipeline")]
    bytes_per_event: Option<f64>,
    /// Days the data is kept
    #[arg(long, value_name = "DAYS", default_value_t = 30.0)]
    retention_days: f64,
    /// Copies of the data (ClickHouse replicas)
    #[arg(long, default_value_t = 1)]
    replicas: u32,
    /// Queries per second the dashboards and users send
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    queries_per_second: f64,
    /// Raw bytes per stored byte [default: 10, or measured with --from-table]
    #[arg(long, value_name = "RATIO", conflicts_with = "from_table")]
    compression: Option<f64>,
    /// Take events/s and bytes/event from this pipeline's measured rates (aurora serve's, or
    /// the status file of `aurora pipeline run`); flags given as well win
    #[arg(long, value_name = "PIPELINE")]
    from_pipeline: Option<String>,
    /// Take the compression ratio from this table's data on the server
    #[arg(long, value_name = "DB.TABLE")]
    from_table: Option<String>,
    /// One JSON document: the workload and every figure with how and source
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &GlobalArgs, args: SizeArgs) -> Result<ExitCode> {
    let (mut eps, mut bpe) = (args.events_per_second, args.bytes_per_event);
    if let Some(name) = &args.from_pipeline {
        let (rate, bytes) = measured_rates(global, name).await?;
        eps = eps.or(Some(rate));
        bpe = bpe.or(Some(bytes));
    }
    let (Some(eps), Some(bpe)) = (eps, bpe) else {
        bail!("give --events-per-second and --bytes-per-event, or --from-pipeline NAME");
    };
    for (name, v) in [
        ("--events-per-second", eps),
        ("--bytes-per-event", bpe),
        ("--retention-days", args.retention_days),
    ] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{name} must be a number above 0, not {v}");
        }
    }
    if !(args.queries_per_second.is_finite() && args.queries_per_second >= 0.0) {
        bail!("--queries-per-second must be 0 or more");
    }
    if args
        .compression
        .is_some_and(|c| !(c.is_finite() && c > 0.0))
    {
        bail!("--compression must be a ratio above 0, e.g. 8");
    }
    let compression = match &args.from_table {
        Some(table) => Some(measured_compression(global, table).await?),
        None => args.compression,
    };
    let sizing = size(&Workload {
        events_per_second: eps,
        bytes_per_event: bpe,
        retention_days: args.retention_days,
        replicas: args.replicas,
        queries_per_second: args.queries_per_second,
        compression,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&sizing)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} events/s x {} bytes, kept {} days, {} replica(s), {} queries/s{}",
        eps,
        bpe,
        args.retention_days,
        args.replicas.max(1),
        args.queries_per_second,
        compression.map_or(String::new(), |c| format!(", {c:.1}x compression"))
    );
    let mut sources: Vec<&str> = Vec::new();
    for f in &sizing.figures {
        let n = match sources.iter().position(|s| *s == f.source) {
            Some(i) => i + 1,
            None => {
                sources.push(f.source);
                sources.len()
            }
        };
        let value = if f.value.fract() == 0.0 {
            crate::numbers::thousands(f.value as u64)
        } else {
            format!("{:.1}", f.value)
        };
        println!(
            "  {:<34} {:>10} {:<10} {} [{n}]",
            f.name, value, f.unit, f.how
        );
    }
    println!();
    for (i, s) in sources.iter().enumerate() {
        println!("[{}] {s}", i + 1);
    }
    Ok(ExitCode::SUCCESS)
}

/// A pipeline's rows/s and bytes per row over its last 10 s: from the daemon the config
/// names if one answers, else from the status files.
async fn measured_rates(global: &GlobalArgs, name: &str) -> Result<(f64, f64)> {
    let config = super::session::load_config(global)?;
    let mut found = None;
    if let Ok(client) = crate::serve::client::DaemonClient::for_config(&config.serve) {
        if let Ok(list) = client.pipelines().await {
            found = list.into_iter().find(|p| p.status.name == name);
        }
    }
    let status = match found {
        Some(s) => s.status,
        None => crate::ingest::engine::read_statuses(&crate::ingest::engine::default_state_dir())
            .into_iter()
            .find(|s| s.name == name)
            .with_context(|| {
                format!("no pipeline `{name}` runs (neither in aurora serve nor as aurora pipeline run)")
            })?,
    };
    if status.rows_per_sec <= 0.0 {
        bail!(
            "pipeline `{name}` stored nothing in its last 10 s; give --events-per-second and \
             --bytes-per-event"
        );
    }
    Ok((
        status.rows_per_sec,
        status.bytes_per_sec / status.rows_per_sec,
    ))
}

/// `DB.TABLE`'s uncompressed ÷ compressed bytes, from its active parts.
async fn measured_compression(global: &GlobalArgs, table: &str) -> Result<f64> {
    let Some((db, name)) = table.split_once('.') else {
        bail!("--from-table takes DB.TABLE, not `{table}`");
    };
    let session = Session::open(global).await?;
    let sql = format!(
        "SELECT sum(data_uncompressed_bytes), sum(data_compressed_bytes) FROM system.parts \
         WHERE active AND database = {} AND table = {}",
        crate::warehouse::query::quote_str(db),
        crate::warehouse::query::quote_str(name)
    );
    let result = session
        .warehouse
        .query(&sql, &QueryOptions::default())
        .await;
    session.close().await;
    let result = result?;
    let number = |i: usize| -> f64 {
        result
            .rows
            .first()
            .and_then(|r| r.get(i))
            .and_then(|v| v.to_string().parse().ok())
            .unwrap_or(0.0)
    };
    let (raw, stored) = (number(0), number(1));
    if stored <= 0.0 {
        bail!("`{table}` holds no data to measure (no active parts); give --compression instead");
    }
    Ok(raw / stored)
}
