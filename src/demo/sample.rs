//! The demo data set: an online shop's week of clickstream (`demo.events`) and its product list
//! (`demo.products`), embedded in the binary from `assets/demo/` and loaded into ClickHouse
//! once. The live demo appends to the same `demo.events`.

use crate::warehouse::value::Value;
use crate::warehouse::{QueryOptions, Warehouse};

use super::DemoError;

pub const SCHEMA_SQL: &str = include_str!("../../assets/demo/schema.sql");
pub const EVENTS_CSV: &str = include_str!("../../assets/demo/events.csv");
pub const PRODUCTS_CSV: &str = include_str!("../../assets/demo/products.csv");

/// The first query the tour shows: the sample week, day by day.
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

/// Splits a SQL script into statements; the demo schema has no `;` inside strings.
pub(crate) fn statements(script: &str) -> impl Iterator<Item = String> + '_ {
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

async fn table_is_empty(warehouse: &Warehouse, table: &str) -> Result<bool, DemoError> {
    let count = warehouse
        .query(
            &format!("SELECT count() FROM {table}"),
            &QueryOptions::default(),
        )
        .await?;
    Ok(count.rows.first().and_then(|r| r.first()) == Some(&Value::UInt(0)))
}

/// Creates the demo tables and loads them if empty. Returns the number of events loaded now.
pub async fn load_sample(warehouse: &Warehouse, reset: bool) -> Result<u64, DemoError> {
    let mut ddl = QueryOptions::unrestricted();
    if warehouse.capabilities().low_cardinality_needs_flag {
        ddl.settings
            .push(("allow_experimental_low_cardinality_type".into(), "1".into()));
    }
    if reset {
        warehouse.execute("DROP DATABASE IF EXISTS demo").await?;
    }
    for statement in statements(SCHEMA_SQL) {
        if let Err(error) = warehouse.query(&statement, &ddl).await {
            return Err(DemoError::Schema { statement, error });
        }
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
