//! `aurora query`: runs SQL with limits and prints the result in the chosen format. Ctrl-C
//! cancels the query on the server (`KILL QUERY`), not just the client.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::warehouse::{OverflowMode, QueryOptions, ServerError, WarehouseError};

use super::output::{OutputFormat, RowWriter};
use super::session::Session;
use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL to run; `-` reads it from stdin
    #[arg(value_name = "SQL", required_unless_present = "file")]
    pub sql: Option<String>,
    /// Read the SQL from a file
    #[arg(short, long, value_name = "PATH", conflicts_with = "sql")]
    pub file: Option<std::path::PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Stop after this many result rows (the result is marked truncated) [default: from config]
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,
    /// Fail instead of truncating when the result has more than --max-rows rows
    #[arg(long)]
    pub fail_on_overflow: bool,
    /// Server-side time limit, e.g. 30s or 2m [default: from config]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// Allow writes and DDL (queries are read-only by default)
    #[arg(long)]
    pub write: bool,
    /// Check the query on the server without running it; prints the result's columns
    #[arg(long)]
    pub dry_run: bool,
    /// Query id to use (to find or KILL it from elsewhere)
    #[arg(long, value_name = "ID")]
    pub query_id: Option<String>,
}

/// A server error together with the SQL it refers to, so the position can be shown.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct SqlError {
    pub error: ServerError,
    pub sql: String,
}

impl SqlError {
    /// The SQL line holding the error position, with a caret under it.
    pub fn caret(&self) -> Option<String> {
        let mut pos = self.error.position?.min(self.sql.len());
        // The server counts bytes; never slice inside a multi-byte character.
        while !self.sql.is_char_boundary(pos) {
            pos -= 1;
        }
        let line_start = self.sql[..pos].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.sql[pos..]
            .find('\n')
            .map_or(self.sql.len(), |i| pos + i);
        let line_no = self.sql[..pos].matches('\n').count() + 1;
        let column = self.sql[line_start..pos].chars().count();
        let gutter = format!("{line_no} | ");
        Some(format!(
            "{gutter}{}\n{}^\n",
            &self.sql[line_start..line_end],
            " ".repeat(gutter.len() + column)
        ))
    }
}

fn read_sql(args: &QueryArgs) -> Result<String> {
    let sql = match (&args.sql, &args.file) {
        (_, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read SQL from {}", path.display()))?,
        (Some(s), None) if s == "-" => {
            let mut buf = String::new();
            std::io::stdin()
                .read_to_string(&mut buf)
                .context("cannot read SQL from stdin")?;
            buf
        }
        (Some(s), None) => s.clone(),
        (None, None) => bail!("give the SQL as an argument, with --file, or as `-` for stdin"),
    };
    if sql.trim().is_empty() {
        bail!("the SQL is empty");
    }
    Ok(sql)
}

fn with_sql(err: WarehouseError, sql: &str) -> anyhow::Error {
    match err {
        WarehouseError::Server(error) => SqlError {
            error,
            // Positions refer to the text sent, which is the trimmed SQL.
            sql: crate::warehouse::query::trim_sql(sql).to_string(),
        }
        .into(),
        other => other.into(),
    }
}

pub async fn run(global: &GlobalArgs, args: QueryArgs) -> Result<ExitCode> {
    let sql = read_sql(&args)?;
    let session = match Session::open(global).await {
        Ok(session) => session,
        Err(e) => {
            // Never ran (no server, refused credentials): recorded as tried.
            let event = crate::audit::query_event("query.run", &sql, None).failed(&e);
            crate::audit::record_read(event)?;
            return Err(e);
        }
    };
    let result = run_in(&session, &args, &sql).await;
    session.close().await;
    result
}

async fn run_in(session: &Session, args: &QueryArgs, sql: &str) -> Result<ExitCode> {
    let warehouse = &session.warehouse;
    let defaults = &session.config.clickhouse;
    // The text run is the one the roles allow: row filters applied where they ask for them.
    let sql = &crate::rbac::query("query", sql, &warehouse.settings().database)?;
    if args.dry_run {
        // The dry run wraps the SQL, so a server position would point into the wrapper.
        let report = warehouse.dry_run(sql).await.map_err(|e| match e {
            WarehouseError::Server(mut error) => {
                error.position = None;
                with_sql(WarehouseError::Server(error), sql)
            }
            other => other.into(),
        })?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "ok: the server accepts this query")?;
        for c in &report.columns {
            writeln!(out, "  {}  {}", c.name, c.type_name)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let opts = QueryOptions {
        readonly: !args.write && defaults.readonly,
        max_execution_time: Some(args.timeout.unwrap_or(defaults.query_timeout)),
        max_result_rows: Some(args.max_rows.unwrap_or(defaults.max_result_rows)),
        overflow: if args.fail_on_overflow {
            OverflowMode::Throw
        } else {
            OverflowMode::Break
        },
        query_id: Some(
            args.query_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        ),
        settings: Vec::new(),
    };
    let query_id = opts.query_id.clone().unwrap_or_default();
    let changes = !opts.readonly;
    if changes {
        crate::audit::check_writable()?;
    } else {
        crate::audit::may_read()?;
    }
    let started = std::time::Instant::now();
    let stream_and_print = async {
        let mut stream = warehouse
            .query_stream(sql, &opts)
            .await
            .map_err(|e| with_sql(e, sql))?;
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut writer = RowWriter::new(args.format, stream.columns().to_vec());
        writer.begin(&mut out)?;
        while let Some(chunk) = stream.next_chunk().await.map_err(|e| with_sql(e, sql))? {
            writer.write_rows(&mut out, &chunk)?;
        }
        let stats = stream.stats().clone();
        if let Some(totals) = stream.totals() {
            writer.set_totals(totals.to_vec());
        }
        writer.finish(&mut out, &stats)?;
        out.flush()?;
        // The table format says so in its footer; other formats are data only, so tell stderr.
        if stats.truncated && args.format != OutputFormat::Table {
            eprintln!(
                "warning: the result was cut at {} rows (--max-rows); add a LIMIT or raise --max-rows",
                stats.result_rows
            );
        }
        Ok::<_, anyhow::Error>(stats.result_rows)
    };
    let (result, outcome) = tokio::select! {
        result = stream_and_print => match result {
            Ok(rows) => (Ok(ExitCode::SUCCESS), Ok(rows)),
            Err(e) => {
                let reason = e.to_string();
                (Err(e), Err(reason))
            }
        },
        signal = super::interrupted() => {
            let _ = warehouse.cancel(&query_id).await;
            eprintln!("cancelled by {signal} (query_id {query_id})");
            (Ok(ExitCode::from(130)), Err(format!("cancelled by {signal}")))
        }
    };
    let event = crate::audit::query_event("query.run", sql, Some(&query_id))
        .with("write", changes)
        .with("ms", started.elapsed().as_millis() as u64);
    let event = match outcome {
        Ok(rows) => event.with("rows", rows),
        Err(reason) => event.failed(reason),
    };
    if changes {
        crate::audit::record(event)?;
    } else {
        crate::audit::record_read(event)?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_never_splits_a_multibyte_character() {
        let err = SqlError {
            error: ServerError {
                code: 62,
                name: None,
                message: "Syntax error".into(),
                position: Some(9),
                http_status: 400,
            },
            sql: "SELECT 'ééé' WHER".into(),
        };
        assert!(err.caret().is_some());
    }

    #[test]
    fn caret_points_at_the_error_column_of_the_right_line() {
        let err = SqlError {
            error: ServerError {
                code: 62,
                name: None,
                message: "Syntax error".into(),
                position: Some(16),
                http_status: 400,
            },
            sql: "SELECT 1\nFROM t WHER x".into(),
        };
        assert_eq!(err.caret().unwrap(), "2 | FROM t WHER x\n           ^\n");
    }
}
