//! `aurora demo`: zero-configuration tour. Starts (or reuses) the private server, loads the
//! bundled clickstream sample from `assets/demo/` (embedded in the binary) once, and prints the
//! schema and a sample query. The server keeps running afterwards for `aurora query`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::warehouse::value::Value;
use crate::warehouse::{QueryOptions, Warehouse};

use super::output::{render, OutputFormat};
use super::session::Session;
use super::GlobalArgs;

const SCHEMA_SQL: &str = include_str!("../../assets/demo/schema.sql");
const EVENTS_CSV: &str = include_str!("../../assets/demo/events.csv");
const PRODUCTS_CSV: &str = include_str!("../../assets/demo/products.csv");

pub const SAMPLE_QUERY: &str = "\
SELECT
    toDate(event_time) AS day,
    count() AS events,
    uniqExact(user_id) AS visitors,
    countIf(event_type = 'purchase') AS purchases,
    sum(revenue) AS revenue
FROM demo.events
GROUP BY day
ORDER BY day";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Drop and reload the sample data set
    #[arg(long)]
    pub reset: bool,
}

/// Splits a SQL script into statements; the demo schema has no `;` inside strings.
fn statements(script: &str) -> impl Iterator<Item = String> + '_ {
    script.split(';').filter_map(|s| {
        let body: String = s
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let body = body.trim();
        (!body.is_empty()).then(|| body.to_string())
    })
}

async fn table_is_empty(warehouse: &Warehouse, table: &str) -> Result<bool> {
    let count = warehouse
        .query(
            &format!("SELECT count() FROM {table}"),
            &QueryOptions::default(),
        )
        .await?;
    Ok(count.rows.first().and_then(|r| r.first()) == Some(&Value::UInt(0)))
}

/// Creates the demo tables and loads them if empty. Returns the number of events loaded now.
pub async fn load_sample(warehouse: &Warehouse, reset: bool) -> Result<u64> {
    let mut ddl = QueryOptions::unrestricted();
    if warehouse.capabilities().low_cardinality_needs_flag {
        ddl.settings
            .push(("allow_experimental_low_cardinality_type".into(), "1".into()));
    }
    if reset {
        warehouse.execute("DROP DATABASE IF EXISTS demo").await?;
    }
    for statement in statements(SCHEMA_SQL) {
        warehouse
            .query(&statement, &ddl)
            .await
            .with_context(|| format!("creating the demo schema failed at:\n{statement}"))?;
    }
    // Each table is loaded on its own, so a run interrupted between the two completes the
    // missing one next time instead of loading the other twice.
    if table_is_empty(warehouse, "demo.products").await? {
        warehouse
            .insert_formatted("demo.products", "CSVWithNames", PRODUCTS_CSV)
            .await?;
    }
    if !table_is_empty(warehouse, "demo.events").await? {
        return Ok(0);
    }
    warehouse
        .insert_formatted("demo.events", "CSVWithNames", EVENTS_CSV)
        .await?;
    Ok(EVENTS_CSV.lines().count().saturating_sub(1) as u64)
}

pub async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<ExitCode> {
    let mut session = Session::open(global).await?;
    // The demo leaves the server up so the next commands can use it.
    session.keep_server()?;
    let warehouse = &session.warehouse;
    let caps = warehouse.capabilities();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "ClickHouse {} at {}{}",
        caps.version_text,
        warehouse.url(),
        if session.local.is_some() {
            " (Aurora's private server)"
        } else {
            ""
        }
    )?;
    let loaded = load_sample(warehouse, args.reset).await?;
    if loaded > 0 {
        writeln!(
            out,
            "Loaded the sample data set: {loaded} events into demo.events."
        )?;
    } else {
        writeln!(
            out,
            "The sample data set is already loaded (use --reset to reload it)."
        )?;
    }
    writeln!(out, "\n$ aurora schema")?;
    drop(out);
    let schema = warehouse.schema(true).await?;
    let mut out = std::io::stdout().lock();
    for t in &schema.tables {
        writeln!(
            out,
            "  {:<20} {:<10} {:>8} rows  order by {}",
            t.qualified_name(),
            t.engine,
            t.total_rows,
            t.sorting_key
        )?;
    }
    if let Some(events) = schema.table("demo.events", "demo") {
        writeln!(out, "\n  demo.events columns:")?;
        for c in &events.columns {
            writeln!(out, "    {:<12} {:<24} {}", c.name, c.type_name, c.comment)?;
        }
    }
    writeln!(
        out,
        "\n$ aurora query \"{}\"",
        SAMPLE_QUERY.replace('\n', " ").replace("    ", "")
    )?;
    let result = warehouse
        .query(SAMPLE_QUERY, &QueryOptions::default())
        .await?;
    render(&result, OutputFormat::Table, &mut out)?;
    if let Some(server) = &session.local {
        // Name the binary the way the user just ran it, which works whether or not it is on
        // PATH (`make demo` runs it by its full path).
        let me = std::env::args().next().unwrap_or_else(|| "aurora".into());
        writeln!(
            out,
            "\nThe private server keeps running at {} (pid {}).\n\
             Try:  {me} query \"SELECT country, sum(revenue) FROM demo.events GROUP BY country ORDER BY 2 DESC\"\n\
             Ask:  {me} ask \"Which 3 countries brought the most revenue?\"\n\
             Stop: {me} server stop",
            server.url(),
            server.state.pid
        )?;
    }
    drop(out);
    session.close().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_script_splits_into_three_statements() {
        let stmts: Vec<String> = statements(SCHEMA_SQL).collect();
        assert_eq!(stmts.len(), 3);
        assert!(stmts[0].starts_with("CREATE DATABASE"));
        assert!(stmts.iter().all(|s| !s.contains("--")));
    }
}
