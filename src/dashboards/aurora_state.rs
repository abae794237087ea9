//! Aurora's own pipeline state as rows a panel query can read: `$__aurora_pipelines` becomes
//! a subquery of one row per pipeline (name, state, rows/s, lag, stored, dead-lettered, last
//! error, last report), built from the statuses Aurora keeps: the workspace's supervisor or
//! the status files `aurora pipeline run` writes. The rows travel inside the query as
//! literals (`SELECT … UNION ALL SELECT …`), which every server version runs; ClickHouse
//! itself knows nothing of them.

use crate::ingest::engine::PipelineStatus;
use crate::warehouse::query::quote_str;

/// The columns `$__aurora_pipelines` has, in order.
pub const COLUMNS: [&str; 9] = [
    "name",
    "state",
    "rows_per_sec",
    "lag",
    "rows_written",
    "dead_lettered",
    "already_stored",
    "last_error",
    "updated_at",
];

/// The subquery, in parentheses, for `statuses` (none: no rows, same columns).
pub fn pipelines_subquery(statuses: &[PipelineStatus]) -> String {
    let row = |s: &PipelineStatus| {
        format!(
            "SELECT {} AS name, {} AS state, toFloat64({}) AS rows_per_sec, toUInt64({}) AS lag, \
             toUInt64({}) AS rows_written, toUInt64({}) AS dead_lettered, toUInt64({}) AS already_stored, \
             {} AS last_error, toDateTime({}) AS updated_at",
            quote_str(&s.name),
            quote_str(s.state.name()),
            if s.rows_per_sec.is_finite() { s.rows_per_sec } else { 0.0 },
            s.lag.values().sum::<u64>(),
            s.rows_written,
            s.dead_lettered,
            s.already_stored,
            quote_str(s.last_error.as_deref().unwrap_or("")),
            s.updated_at
        )
    };
    if statuses.is_empty() {
        return format!("({} LIMIT 0)", row(&PipelineStatus::default()));
    }
    let rows: Vec<String> = statuses.iter().map(row).collect();
    format!("({})", rows.join(" UNION ALL "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_pipeline_with_its_lag_summed() {
        let mut s = PipelineStatus {
            name: "clicks".into(),
            rows_written: 10,
            rows_per_sec: 2.5,
            last_error: Some("it's down".into()),
            ..PipelineStatus::default()
        };
        s.lag.insert("kafka:t:0".into(), 3);
        s.lag.insert("kafka:t:1".into(), 4);
        let sql = pipelines_subquery(&[s.clone(), s]);
        assert!(sql.starts_with("(SELECT 'clicks' AS name"), "{sql}");
        assert!(sql.contains("toUInt64(7) AS lag"), "{sql}");
        assert!(sql.contains("'it\\'s down' AS last_error"), "{sql}");
        assert_eq!(sql.matches(" UNION ALL ").count(), 1);
        assert!(pipelines_subquery(&[]).ends_with(" LIMIT 0)"));
    }
}
