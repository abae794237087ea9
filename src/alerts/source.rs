//! What a rule measures: the rows of a ClickHouse query (one alert per row: a numeric column
//! `value`, or the last numeric one, and the other columns as labels), or the series of one
//! of Aurora's metrics that match a selector (one alert per series).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::warehouse::{QueryOptions, Warehouse};

/// One measured value and the labels that tell it apart from the rule's other values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// `name{label="value",...}`: a metric name and equality matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub matchers: BTreeMap<String, String>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i..])),
            None => (text, None),
        };
        let name = name.trim();
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(format!("`{text}` does not start with a metric name"));
        }
        let matchers = match rest {
            None => BTreeMap::new(),
            Some(braces) => {
                let inner = braces
                    .strip_prefix('{')
                    .and_then(|b| b.strip_suffix('}'))
                    .ok_or_else(|| format!("`{text}`: the label matchers end without `}}`"))?;
                parse_labels(inner).ok_or_else(|| {
                    format!(
                        "`{text}`: label matchers are written name=\"value\", separated by commas"
                    )
                })?
            }
        };
        Ok(Self {
            name: name.to_string(),
            matchers,
        })
    }

    fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        name == self.name
            && self
                .matchers
                .iter()
                .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}

/// `a="x",b="y \"quoted\""` → the pairs; `None` when it is not that.
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                key.push(c);
                chars.next();
            } else {
                break;
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        out.insert(key, value);
    }
}

/// The samples of `exposition` (Prometheus or OpenMetrics text) that `selector` matches.
pub fn select(exposition: &str, selector: &Selector) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in exposition.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, rest) = match line.find('{') {
            Some(_) => {
                let Some(close) = line.rfind('}') else {
                    continue;
                };
                (&line[..close + 1], &line[close + 1..])
            }
            None => match line.find(' ') {
                Some(space) => (&line[..space], &line[space..]),
                None => continue,
            },
        };
        let (name, labels) = match series.find('{') {
            Some(i) => (
                &series[..i],
                parse_labels(&series[i + 1..series.len() - 1]).unwrap_or_default(),
            ),
            None => (series, BTreeMap::new()),
        };
        if !selector.matches(name, &labels) {
            continue;
        }
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        out.push(Sample { labels, value });
    }
    out
}

/// Where a rule's value comes from.
#[derive(Clone)]
pub enum Measure {
    Query(String),
    Metric(Selector),
}

/// Reads metrics for metric rules: this process's own (the daemon), or another process's
/// `/metrics` (for `aurora alert test` beside a running daemon).
#[derive(Clone)]
pub enum MetricSource {
    Here,
    Text(Arc<str>),
}

/// Measures once. `timeout` bounds a query (the rule's interval).
pub async fn measure(
    measure: &Measure,
    warehouse: &Warehouse,
    metrics: &MetricSource,
    timeout: Duration,
) -> Result<Vec<Sample>, String> {
    match measure {
        Measure::Metric(selector) => Ok(match metrics {
            MetricSource::Here => select(&crate::metrics::render(), selector),
            MetricSource::Text(text) => select(text, selector),
        }),
        Measure::Query(sql) => {
            let options = QueryOptions {
                max_execution_time: Some(timeout.max(Duration::from_secs(1))),
                max_result_rows: Some(1000),
                readonly: true,
                ..QueryOptions::default()
            };
            let result = warehouse
                .query(sql, &options)
                .await
                .map_err(|e| e.to_string())?;
            rows_to_samples(&result)
        }
    }
}

/// One sample per row: the `value` column (or the last numeric one), the rest as labels.
fn rows_to_samples(result: &crate::warehouse::QueryResult) -> Result<Vec<Sample>, String> {
    let columns = &result.columns;
    let numeric = |i: usize| {
        result
            .rows
            .first()
            .and_then(|r| r.get(i))
            .and_then(number)
            .is_some()
    };
    let value_column = columns
        .iter()
        .position(|c| c.name == "value")
        .or_else(|| (0..columns.len()).rev().find(|&i| numeric(i)));
    let Some(value_column) = value_column else {
        if result.rows.is_empty() {
            return Ok(Vec::new());
        }
        return Err(
            "the query returns no numeric column; name the one to compare `value`".to_string(),
        );
    };
    let mut out = Vec::new();
    for row in &result.rows {
        let Some(value) = row.get(value_column).and_then(number) else {
            return Err(format!(
                "column `{}` holds a value that is not a number",
                columns[value_column].name
            ));
        };
        let labels = columns
            .iter()
            .zip(row)
            .enumerate()
            .filter(|(i, _)| *i != value_column)
            .map(|(_, (c, v))| (c.name.clone(), v.to_string()))
            .collect();
        out.push(Sample { labels, value });
    }
    Ok(out)
}

fn number(value: &crate::warehouse::value::Value) -> Option<f64> {
    let text = value.to_string();
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE aurora_pipeline_state gauge
aurora_pipeline_state{pipeline=\"a\",state=\"failed\"} 1
aurora_pipeline_state{pipeline=\"a\",state=\"running\"} 0
aurora_pipeline_state{pipeline=\"b\",state=\"failed\"} 0
aurora_pipeline_lag_records{pipeline=\"a\",source=\"kafka:t:0\"} 12
aurora_uptime_seconds 5.5
# EOF
";

    #[test]
    fn selectors_pick_series_by_name_and_labels() {
        let s = Selector::parse("aurora_pipeline_state{state=\"failed\"}").expect("a selector");
        let found = select(TEXT, &s);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].labels["pipeline"], "a");
        assert_eq!(found[0].value, 1.0);
        let s = Selector::parse("aurora_uptime_seconds").expect("a selector");
        assert_eq!(select(TEXT, &s)[0].value, 5.5);
        let s = Selector::parse("aurora_pipeline_lag_records{ pipeline = \"a\" }").expect("sel");
        assert_eq!(select(TEXT, &s)[0].labels["source"], "kafka:t:0");
        assert!(select(TEXT, &Selector::parse("nope").expect("sel")).is_empty());
    }

    #[test]
    fn bad_selectors_are_refused_with_the_reason() {
        assert!(Selector::parse("").is_err());
        assert!(Selector::parse("{a=\"b\"}").is_err());
        assert!(Selector::parse("m{a=\"b\"")
            .expect_err("open")
            .contains("without `}`"));
        assert!(Selector::parse("m{a=b}").is_err());
        assert!(Selector::parse("m{a=\"b\\\"c\"}").is_ok());
    }
}
