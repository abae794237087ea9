//! `aurora schema [TABLE]`: the tables of the server, or one table's columns and keys.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};

use crate::warehouse::schema::{Schema, TableInfo};

use super::session::Session;
use super::GlobalArgs;
use crate::numbers::binary_bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// A table (`name` or `database.name`); omit to list all tables
    pub table: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = SchemaFormat::Table)]
    pub format: SchemaFormat,
}

/// The table `name` (`table` or `database.table`), or an error naming the tables it may mean.
pub(super) fn find_table<'s>(
    schema: &'s Schema,
    name: &str,
    database: &str,
) -> Result<&'s TableInfo> {
    let Some(table) = schema.table(name, database) else {
        let similar = schema.similar_tables(name);
        if similar.is_empty() {
            bail!("no table `{name}`; `aurora schema` lists the tables");
        }
        bail!(
            "no table `{name}`; did you mean {}?",
            similar
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
    };
    Ok(table)
}

pub async fn run(global: &GlobalArgs, args: SchemaArgs) -> Result<ExitCode> {
    let session = Session::open(global).await?;
    let result = async {
        crate::rbac::require("schema", args.table.as_deref().unwrap_or(""))?;
        // Only what the user's roles may read.
        let access = crate::rbac::current();
        let schema = session.warehouse.schema(true).await?;
        let schema = access.visible_schema(&schema);
        let database = &session.warehouse.settings().database;
        let mut out = std::io::stdout().lock();
        match &args.table {
            None => print_tables(&schema, args.format, &mut out),
            Some(name) => print_table(find_table(&schema, name, database)?, args.format, &mut out),
        }
    }
    .await;
    session.close().await;
    result.map(|_| ExitCode::SUCCESS)
}

fn print_tables(schema: &Schema, format: SchemaFormat, out: &mut dyn Write) -> Result<()> {
    if format == SchemaFormat::Json {
        serde_json::to_writer_pretty(&mut *out, schema)?;
        writeln!(out)?;
        return Ok(());
    }
    if schema.tables.is_empty() {
        writeln!(
            out,
            "No tables yet (databases: {}).",
            schema.databases.join(", ")
        )?;
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["table", "engine", "rows", "size", "sorting key"]);
    for t in &schema.tables {
        table.add_row([
            t.qualified_name(),
            t.engine.clone(),
            t.total_rows.to_string(),
            binary_bytes(t.total_bytes),
            t.sorting_key.clone(),
        ]);
    }
    for col in [2, 3] {
        if let Some(c) = table.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} tables", schema.tables.len())?;
    Ok(())
}

fn print_table(t: &TableInfo, format: SchemaFormat, out: &mut dyn Write) -> Result<()> {
    if format == SchemaFormat::Json {
        serde_json::to_writer_pretty(&mut *out, t)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{}  ({})", t.qualified_name(), t.engine)?;
    if !t.partition_key.is_empty() {
        writeln!(out, "  partition by: {}", t.partition_key)?;
    }
    if !t.sorting_key.is_empty() {
        writeln!(out, "  order by:     {}", t.sorting_key)?;
    }
    writeln!(
        out,
        "  rows: {}, size on disk: {}",
        t.total_rows,
        binary_bytes(t.total_bytes)
    )?;
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(["column", "type", "key", "default", "comment"]);
    for c in &t.columns {
        let mut keys = Vec::new();
        if c.in_partition_key {
            keys.push("partition");
        }
        if c.in_sorting_key {
            keys.push("sort");
        }
        if c.in_primary_key {
            keys.push("primary");
        }
        let default = if c.default_kind.is_empty() {
            String::new()
        } else {
            format!("{} {}", c.default_kind, c.default_expression)
        };
        table.add_row([
            c.name.clone(),
            c.type_name.clone(),
            keys.join(","),
            default,
            c.comment.clone(),
        ]);
    }
    writeln!(out, "{table}")?;
    Ok(())
}
