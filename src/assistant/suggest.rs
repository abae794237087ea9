//! Questions worth asking about a schema, each with ready-to-run SQL, for a user who does
//! not know the data yet (the TUI's empty question box, `aurora ask --suggest`). Pure
//! functions of the introspected schema (`warehouse::schema`) and the server's
//! `Capabilities`: no model and no query is involved, so the list is instant and the same
//! every time for the same schema.
//!
//! The SQL runs on every supported server, 18.16 included: buckets are `toStartOfMinute`,
//! `toStartOfHour` and `toDate` (never `toStartOfInterval`), and `WITH FILL` is added only
//! when the server has it. Time windows are measured back from the newest row rather than
//! from `now()`, so a table that stopped receiving data (the demo's week of clicks) still
//! answers "the last hour".

use std::collections::BTreeMap;

use crate::dashboards::roles::{Judged, Role};
use crate::warehouse::query::sql_name as ident;
use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};
use crate::warehouse::types::DataType;
use crate::warehouse::Capabilities;

/// Databases that are ClickHouse's own.
const SYSTEM_DATABASES: [&str; 3] = ["system", "information_schema", "INFORMATION_SCHEMA"];
/// Engines a `SELECT` must not touch (reading a Kafka table consumes its messages) or that
/// hold nothing to read.
const UNREADABLE_ENGINES: [&str; 9] = [
    "Kafka",
    "RabbitMQ",
    "NATS",
    "FileLog",
    "S3Queue",
    "AzureQueue",
    "Null",
    "Set",
    "Join",
];
/// The columns of the dead-letter tables the ingestion sink creates.
const DEAD_LETTER_COLUMNS: [&str; 6] = ["pipeline", "source", "offset", "raw", "error", "at"];

/// A question and the SQL that answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suggestion {
    /// `database.table`.
    pub table: String,
    pub question: String,
    pub sql: String,
}

/// Suggestions for every user table, at most `per_table` each, tables with rows first and
/// otherwise in the schema's order (database, then name). ClickHouse's own databases,
/// materialized views' inner tables, Aurora's dead-letter tables and queue engines (which a
/// `SELECT` would consume) are left out. Deterministic for a given schema.
pub fn for_schema(
    schema: &Schema,
    caps: &Capabilities,
    per_table: usize,
    default_database: &str,
) -> Vec<Suggestion> {
    let mut tables: Vec<&TableInfo> = schema.tables.iter().filter(|t| is_suggestable(t)).collect();
    // Stable: equal keys keep the schema's order. The default database's tables first: they
    // are the ones the user's questions name without a database.
    tables.sort_by_key(|t| (is_known_empty(t), t.database != default_database));
    let no_samples = BTreeMap::new();
    tables
        .into_iter()
        .flat_map(|t| for_table(t, caps, &no_samples).into_iter().take(per_table))
        .collect()
}

/// Suggestions for one table, most useful first; seven at most.
///
/// `low_cardinality_samples` holds, by column name, distinct values of this table's string
/// columns where there are few (as `linking::ValueSamples` reads them); such a column is
/// treated as a category like a `LowCardinality` or `Enum` one. An empty map is fine.
pub fn for_table(
    table: &TableInfo,
    caps: &Capabilities,
    low_cardinality_samples: &BTreeMap<String, Vec<String>>,
) -> Vec<Suggestion> {
    let shape = TableShape::of(table, low_cardinality_samples);
    let from = quoted_table(table);
    let noun = TableNoun::of(&table.name);
    let mut out: Vec<(String, String)> = Vec::new();
    let alias = |preferred: &str| free_alias(table, preferred);
    let count = alias("count");

    // Activity over time: the first thing anyone asks of an event table.
    if let Some(time) = shape.time.as_ref().filter(|t| t.has_clock) {
        let minute = alias("minute");
        out.push((
            format!(
                "How many {} per minute in the last hour of data?",
                noun.plural()
            ),
            format!(
                "SELECT toStartOfMinute({t}) AS {minute}, count() AS {count} FROM {from} \
                 WHERE {t} >= (SELECT max({t}) FROM {from}) - INTERVAL 1 HOUR \
                 GROUP BY {minute} ORDER BY {minute}{fill}",
                t = time.sql,
                fill = fill(caps, time, 60),
            ),
        ));
    }
    if let Some(category) = shape.categories.first() {
        let c = &category.sql;
        out.push((
            format!(
                "What are the top 10 {} by number of {}?",
                category.label.plural(),
                noun.plural()
            ),
            format!(
                "SELECT {c}, count() AS {count} FROM {from} GROUP BY {c} \
                 ORDER BY {count} DESC LIMIT 10"
            ),
        ));
    }
    if let Some(measure) = shape.measures.first() {
        // A second category when there is one: the first already has its own question.
        if let Some(category) = shape.categories.get(1).or(shape.categories.first()) {
            let total = alias(&measure.alias());
            out.push((
                format!(
                    "What is the {} by {}?",
                    measure.phrase(),
                    category.label.text
                ),
                format!(
                    "SELECT {c}, {agg} AS {total} FROM {from} GROUP BY {c} ORDER BY {total} DESC",
                    c = category.sql,
                    agg = measure.expression(),
                ),
            ));
        }
        if let Some(time) = &shape.time {
            let total = alias(&measure.alias());
            let question = format!(
                "What is the {} per {}?",
                measure.phrase(),
                if time.has_clock {
                    "hour in the last day of data"
                } else {
                    "day"
                }
            );
            let sql = if time.has_clock {
                let hour = alias("hour");
                format!(
                    "SELECT toStartOfHour({t}) AS {hour}, {agg} AS {total} FROM {from} \
                     WHERE {t} >= (SELECT max({t}) FROM {from}) - INTERVAL 1 DAY \
                     GROUP BY {hour} ORDER BY {hour}{fill}",
                    t = time.sql,
                    agg = measure.expression(),
                    fill = fill(caps, time, 3600),
                )
            } else {
                let day = alias("day");
                format!(
                    "SELECT toDate({t}) AS {day}, {agg} AS {total} FROM {from} \
                     GROUP BY {day} ORDER BY {day}{fill}",
                    t = time.sql,
                    agg = measure.expression(),
                    fill = fill(caps, time, 1),
                )
            };
            out.push((question, sql));
        }
    }
    if let Some(time) = &shape.time {
        let day = alias("day");
        out.push((
            format!("How many {} per day?", noun.plural()),
            format!(
                "SELECT toDate({t}) AS {day}, count() AS {count} FROM {from} \
                 GROUP BY {day} ORDER BY {day}{fill}",
                t = time.sql,
                fill = fill(caps, time, 1),
            ),
        ));
    }
    // With neither time nor category, a measure's range is the one thing left to ask.
    if shape.time.is_none() && shape.categories.is_empty() {
        if let Some(measure) = shape.measures.first() {
            let m = &measure.sql;
            out.push((
                format!(
                    "What are the lowest, average and highest {}?",
                    measure.label.plural()
                ),
                format!(
                    "SELECT min({m}) AS {}, avg({m}) AS {}, max({m}) AS {} FROM {from}",
                    alias("lowest"),
                    alias("average"),
                    alias("highest"),
                ),
            ));
        }
    }
    let recent = match &shape.time {
        Some(time) => (
            format!("Show the 10 most recent {}", noun.plural()),
            format!(
                "SELECT * FROM {from} ORDER BY {t} DESC LIMIT 10",
                t = time.sql
            ),
        ),
        None => (
            format!("Show 10 {}", noun.plural_of_rows()),
            format!("SELECT * FROM {from} LIMIT 10"),
        ),
    };
    let how_many = (
        noun.how_many(),
        format!("SELECT count() AS {count} FROM {from}"),
    );
    if shape.time.is_some() {
        out.push(recent);
        out.push(how_many);
    } else {
        out.push(how_many);
        out.push(recent);
    }
    out.into_iter()
        .map(|(question, sql)| Suggestion {
            table: table.qualified_name(),
            question,
            sql,
        })
        .collect()
}

fn is_suggestable(table: &TableInfo) -> bool {
    let engine = table.engine.split('(').next().unwrap_or("").trim();
    !SYSTEM_DATABASES.contains(&table.database.as_str())
        && !table.name.starts_with(".inner")
        && !table.name.starts_with("_aurora")
        && !table.name.ends_with("_dead_letter")
        && !is_dead_letter_shaped(table)
        && !UNREADABLE_ENGINES.contains(&engine)
        && !table.columns.is_empty()
}

/// A table with exactly the columns of the sink's dead-letter tables, whatever its name.
fn is_dead_letter_shaped(table: &TableInfo) -> bool {
    table.columns.len() == DEAD_LETTER_COLUMNS.len()
        && table
            .columns
            .iter()
            .zip(DEAD_LETTER_COLUMNS)
            .all(|(c, name)| c.name == name)
}

/// A MergeTree table without rows; other engines report no counts, so they are not known
/// to be empty.
fn is_known_empty(table: &TableInfo) -> bool {
    table.total_rows == 0 && table.engine.contains("MergeTree")
}

fn quoted_table(table: &TableInfo) -> String {
    format!("{}.{}", ident(&table.database), ident(&table.name))
}

/// `preferred`, or with underscores appended until no column has the name: ClickHouse lets
/// an alias shadow a column everywhere in the query, which would change what `WHERE` sees.
fn free_alias(table: &TableInfo, preferred: &str) -> String {
    let mut alias = preferred.to_string();
    while table.columns.iter().any(|c| c.name == alias) {
        alias.push('_');
    }
    ident(&alias)
}

/// ` WITH FILL STEP n` when the server has it and the bucket allows it, so buckets without
/// rows show as zeros instead of gaps. `step` is in seconds for date-times, days for dates.
fn fill(caps: &Capabilities, time: &TimeColumn, step: u32) -> String {
    if caps.with_fill && time.fillable {
        format!(" WITH FILL STEP {step}")
    } else {
        String::new()
    }
}

/// What a table offers to ask about.
struct TableShape {
    time: Option<TimeColumn>,
    categories: Vec<Category>,
    measures: Vec<Measure>,
}

struct TimeColumn {
    sql: String,
    /// `DateTime`/`DateTime64`: minutes and hours make sense.
    has_clock: bool,
    /// Plain, non-nullable `DateTime` or `Date`, where `WITH FILL STEP` has a known unit.
    fillable: bool,
}

struct Category {
    sql: String,
    label: Label,
}

struct Measure {
    sql: String,
    label: Label,
    aggregate: Aggregate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Average,
}

impl Aggregate {
    fn word(self) -> &'static str {
        match self {
            Aggregate::Sum => "total",
            Aggregate::Average => "average",
        }
    }
}

impl Measure {
    /// `total revenue`, `average price`; just `order total` when the label says it already.
    fn phrase(&self) -> String {
        let word = self.aggregate.word();
        let says_it = self.label.text.split_whitespace().any(|w| {
            let w = w.to_lowercase();
            w == word || (self.aggregate == Aggregate::Average && (w == "avg" || w == "mean"))
        });
        if says_it {
            self.label.text.clone()
        } else {
            format!("{word} {}", self.label.text)
        }
    }

    fn expression(&self) -> String {
        match self.aggregate {
            Aggregate::Sum => format!("sum({})", self.sql),
            Aggregate::Average => format!("avg({})", self.sql),
        }
    }

    fn alias(&self) -> String {
        let prefix = match self.aggregate {
            Aggregate::Sum => "total",
            Aggregate::Average => "avg",
        };
        format!(
            "{prefix}_{}",
            crate::warehouse::query::identifier_from(&self.sql)
        )
    }
}

/// Names of quantities better averaged than added up.
const AVERAGED: [&str; 16] = [
    "price",
    "rate",
    "ratio",
    "percent",
    "pct",
    "score",
    "avg",
    "mean",
    "temperature",
    "temp",
    "latency",
    "duration",
    "age",
    "level",
    "speed",
    "rating",
];
/// Name endings of columns that identify rather than measure.
const KEY_SUFFIXES: [&str; 9] = [
    "_id", "_key", "_hash", "_code", "_offset", "_version", "_port", "_ip", "_number",
];

impl TableShape {
    fn of(table: &TableInfo, samples: &BTreeMap<String, Vec<String>>) -> Self {
        let columns: Vec<(&ColumnInfo, DataType)> = table
            .columns
            .iter()
            .filter(|c| !c.name.starts_with("_aurora"))
            .filter_map(|c| c.data_type().map(|t| (c, t)))
            .collect();
        let time = pick_time(&columns);
        let mut categories: Vec<(u8, Category)> = columns
            .iter()
            .filter_map(|(c, t)| {
                let rank = category_rank(c, t, samples.get(&c.name))?;
                Some((
                    rank,
                    Category {
                        sql: ident(&c.name),
                        label: Label::of(c),
                    },
                ))
            })
            .collect();
        categories.sort_by_key(|(rank, _)| *rank);
        let mut measures: Vec<(u8, Measure)> = columns
            .iter()
            .filter(|(c, t)| is_quantity(c, t))
            .map(|(c, t)| {
                let lower = c.name.to_ascii_lowercase();
                let aggregate = if AVERAGED.iter().any(|w| lower.split('_').any(|p| p == *w)) {
                    Aggregate::Average
                } else {
                    Aggregate::Sum
                };
                // Money and measurements (decimals, floats) before counts of things.
                let rank = u8::from(t.is_integer());
                (
                    rank,
                    Measure {
                        sql: ident(&c.name),
                        label: Label::of(c),
                        aggregate,
                    },
                )
            })
            .collect();
        measures.sort_by_key(|(rank, _)| *rank);
        Self {
            time: time.map(|(column, ty)| TimeColumn {
                sql: ident(&column.name),
                has_clock: matches!(
                    ty.unwrap_wrappers(),
                    DataType::DateTime(_) | DataType::DateTime64 { .. }
                ),
                fillable: matches!(ty, DataType::DateTime(_) | DataType::Date),
            }),
            categories: categories.into_iter().map(|(_, c)| c).collect(),
            measures: measures.into_iter().map(|(_, m)| m).collect(),
        }
    }
}

/// The column to put on the time axis: date-times before dates, key columns first, then
/// the table's order.
fn pick_time<'c>(
    columns: &'c [(&'c ColumnInfo, DataType)],
) -> Option<(&'c ColumnInfo, &'c DataType)> {
    columns
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| t.is_temporal())
        .min_by_key(|(i, (c, t))| {
            let date_only = matches!(t.unwrap_wrappers(), DataType::Date | DataType::Date32);
            let outside_keys = !(c.in_sorting_key || c.in_partition_key);
            (date_only, outside_keys, *i)
        })
        .map(|(_, (c, t))| (*c, t))
}

/// How good `column` is as a category to group by, lower is better; `None` when it is not
/// one: values of a `LowCardinality` string or an enum, or listed in the comment (0); a
/// string with few sampled values (1); identifiers after both (+2).
fn category_rank(column: &ColumnInfo, ty: &DataType, samples: Option<&Vec<String>>) -> Option<u8> {
    if samples.is_some_and(|values| values.len() < 2) {
        // One value: grouping by it tells nothing.
        return None;
    }
    let inner = ty.unwrap_wrappers();
    let stringish = matches!(inner, DataType::String | DataType::FixedString(_));
    let rank = if matches!(inner, DataType::Enum8(_) | DataType::Enum16(_))
        || (matches!(ty, DataType::LowCardinality(_)) && stringish)
        || (stringish && comment_lists_values(&column.comment))
    {
        0
    } else if stringish && samples.is_some() {
        1
    } else {
        return None;
    };
    Some(if is_identifier_name(&column.name) {
        rank + 2
    } else {
        rank
    })
}

/// A number that is worth adding up or averaging, as the dashboards' column roles judge it:
/// not an identifier or key, not a calendar part, a clock time (`hhmm`), a coordinate or a
/// code.
fn is_quantity(column: &ColumnInfo, ty: &DataType) -> bool {
    ty.is_numeric()
        && !matches!(ty, DataType::LowCardinality(_))
        && !is_identifier_name(&column.name)
        && Judged::new(column, None, 0).is_some_and(|j| j.fit(Role::Measure).is_some())
}

fn is_identifier_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "id"
        || name.ends_with("Id")
        || name.ends_with("ID")
        || KEY_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// A comment such as `page_view, add_to_cart or purchase` or `one of: a|b|c`: two or more
/// short items.
fn comment_lists_values(comment: &str) -> bool {
    let list = comment.rsplit(':').next().unwrap_or("").to_lowercase();
    let items: Vec<&str> = list
        .split([',', '|', '/', ';'])
        .flat_map(|part| part.split(" or "))
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    items.len() >= 2
        && items
            .iter()
            .all(|item| item.len() <= 24 && item.split_whitespace().count() <= 2)
}

/// How a column is called in a question: its comment when that is a short name (`order
/// total`), else its name in words (`event_type` → `event type`).
struct Label {
    text: String,
}

impl Label {
    fn of(column: &ColumnInfo) -> Self {
        let comment = column.comment.trim().trim_end_matches('.');
        let usable = !comment.is_empty()
            && comment.len() <= 24
            && comment.split_whitespace().count() <= 3
            && !comment.contains(['\n', '(', ',', ':', ';', '|', '/'])
            && !comment_lists_values(comment);
        let text = if usable {
            lowercase_first_word(comment)
        } else {
            humanize(&column.name)
        };
        Self { text }
    }

    /// `event types`, `countries`; `values of price in EUR` where the last word is not the
    /// noun.
    fn plural(&self) -> String {
        let has_preposition = self.text.split_whitespace().any(|w| {
            matches!(
                w,
                "of" | "in" | "for" | "per" | "by" | "with" | "from" | "at"
            )
        });
        if has_preposition {
            return format!("values of {}", self.text);
        }
        match self.text.rsplit_once(' ') {
            Some((head, last)) => format!("{head} {}", pluralize(last)),
            None => pluralize(&self.text),
        }
    }
}

/// How a table is called in a question.
struct TableNoun {
    words: String,
    /// The name is already a plural noun (`events`, `page_views`).
    plural: bool,
}

impl TableNoun {
    fn of(name: &str) -> Self {
        let words = humanize(name);
        let last = words.rsplit(' ').next().unwrap_or("");
        let plural = last.len() > 2 && looks_plural(last);
        Self { words, plural }
    }

    /// `events`, or `clickstream rows`.
    fn plural(&self) -> String {
        if self.plural {
            self.words.clone()
        } else {
            format!("{} rows", self.words)
        }
    }

    /// `events`, or `rows of clickstream`.
    fn plural_of_rows(&self) -> String {
        if self.plural {
            self.words.clone()
        } else {
            format!("rows of {}", self.words)
        }
    }

    fn how_many(&self) -> String {
        if self.plural {
            format!("How many {} are there?", self.words)
        } else {
            format!("How many rows are in {}?", self.words)
        }
    }
}

fn looks_plural(word: &str) -> bool {
    word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") && !word.ends_with("is")
}

fn pluralize(word: &str) -> String {
    if word.is_empty() || looks_plural(word) {
        return word.to_string();
    }
    let consonant_y = word.len() > 1
        && word.ends_with('y')
        && !word[..word.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{}ies", &word[..word.len() - 1])
    } else if word.ends_with(['s', 'x', 'z']) || word.ends_with("ch") || word.ends_with("sh") {
        format!("{word}es")
    } else {
        format!("{word}s")
    }
}

/// `event_type` → `event type`, `userAgent` → `user agent`.
fn humanize(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for part in name.split(|c: char| c == '_' || c == '.' || c == '-' || c.is_whitespace()) {
        let mut word = String::new();
        let mut previous_lower = false;
        for c in part.chars() {
            if c.is_uppercase() && previous_lower && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            previous_lower = c.is_lowercase() || c.is_ascii_digit();
            word.extend(c.to_lowercase());
        }
        if !word.is_empty() {
            words.push(word);
        }
    }
    if words.is_empty() {
        name.to_string()
    } else {
        words.join(" ")
    }
}

/// `Order total` → `order total`; `ISO code` stays.
fn lowercase_first_word(text: &str) -> String {
    let first = text.split_whitespace().next().unwrap_or("");
    let acronym = first.chars().filter(|c| c.is_alphabetic()).count() > 1
        && first.chars().all(|c| !c.is_lowercase());
    if acronym {
        return text.to_string();
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sqlparser::dialect::ClickHouseDialect;
    use sqlparser::parser::Parser;

    use crate::assistant::linking::tests::{column, demo_event_columns};

    fn keyed(mut column: ColumnInfo) -> ColumnInfo {
        column.in_sorting_key = true;
        column.in_primary_key = true;
        column
    }

    fn table(
        database: &str,
        name: &str,
        engine: &str,
        rows: u64,
        columns: Vec<ColumnInfo>,
    ) -> TableInfo {
        TableInfo {
            database: database.into(),
            name: name.into(),
            engine: engine.into(),
            partition_key: String::new(),
            sorting_key: String::new(),
            primary_key: String::new(),
            total_rows: rows,
            total_bytes: rows * 10,
            columns,
        }
    }

    /// The demo schema as the server reports it (`assets/demo/schema.sql`): sorted by
    /// event type and time, partitioned by day.
    fn demo_events() -> TableInfo {
        let columns = demo_event_columns()
            .into_iter()
            .map(|mut c| {
                c.in_partition_key = c.name == "event_time";
                if c.name == "event_time" || c.name == "event_type" {
                    c = keyed(c);
                }
                c
            })
            .collect();
        table("demo", "events", "MergeTree", 50_000, columns)
    }

    fn demo_products() -> TableInfo {
        table(
            "demo",
            "products",
            "MergeTree",
            40,
            vec![
                keyed(column("product_id", "String", "product code")),
                column("name", "String", "product name"),
                column("price", "Decimal(10, 2)", "list price in EUR"),
            ],
        )
    }

    fn old() -> Capabilities {
        Capabilities::from_version("18.16.1")
    }

    fn new() -> Capabilities {
        Capabilities::from_version("24.8.4.13")
    }

    fn pairs(suggestions: &[Suggestion]) -> Vec<(&str, &str)> {
        suggestions
            .iter()
            .map(|s| (s.question.as_str(), s.sql.as_str()))
            .collect()
    }

    fn assert_parses(suggestions: &[Suggestion]) {
        for s in suggestions {
            let statements = Parser::parse_sql(&ClickHouseDialect {}, &s.sql)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", s.sql));
            assert_eq!(statements.len(), 1, "{}", s.sql);
        }
    }

    #[test]
    fn demo_events_on_an_old_server() {
        let suggestions = for_table(&demo_events(), &old(), &BTreeMap::new());
        assert!(suggestions.iter().all(|s| s.table == "demo.events"));
        assert_eq!(
            pairs(&suggestions),
            [
                (
                    "How many events per minute in the last hour of data?",
                    "SELECT toStartOfMinute(event_time) AS minute, count() AS count FROM demo.events \
                     WHERE event_time >= (SELECT max(event_time) FROM demo.events) - INTERVAL 1 HOUR \
                     GROUP BY minute ORDER BY minute"
                ),
                (
                    "What are the top 10 event types by number of events?",
                    "SELECT event_type, count() AS count FROM demo.events GROUP BY event_type \
                     ORDER BY count DESC LIMIT 10"
                ),
                (
                    "What is the total revenue by country?",
                    "SELECT country, sum(revenue) AS total_revenue FROM demo.events GROUP BY country \
                     ORDER BY total_revenue DESC"
                ),
                (
                    "What is the total revenue per hour in the last day of data?",
                    "SELECT toStartOfHour(event_time) AS hour, sum(revenue) AS total_revenue \
                     FROM demo.events \
                     WHERE event_time >= (SELECT max(event_time) FROM demo.events) - INTERVAL 1 DAY \
                     GROUP BY hour ORDER BY hour"
                ),
                (
                    "How many events per day?",
                    "SELECT toDate(event_time) AS day, count() AS count FROM demo.events \
                     GROUP BY day ORDER BY day"
                ),
                (
                    "Show the 10 most recent events",
                    "SELECT * FROM demo.events ORDER BY event_time DESC LIMIT 10"
                ),
                ("How many events are there?", "SELECT count() AS count FROM demo.events"),
            ]
        );
        assert_parses(&suggestions);
        // Nothing 18.16 lacks.
        for s in &suggestions {
            for missing in ["toStartOfInterval", "WITH FILL", "OVER", "DateTime64"] {
                assert!(!s.sql.contains(missing), "{}", s.sql);
            }
        }
    }

    #[test]
    fn a_new_server_fills_empty_buckets() {
        let suggestions = for_table(&demo_events(), &new(), &BTreeMap::new());
        assert_parses(&suggestions);
        let sql: Vec<&str> = suggestions.iter().map(|s| s.sql.as_str()).collect();
        assert!(
            sql[0].ends_with("GROUP BY minute ORDER BY minute WITH FILL STEP 60"),
            "{}",
            sql[0]
        );
        assert!(
            sql[3].ends_with("ORDER BY hour WITH FILL STEP 3600"),
            "{}",
            sql[3]
        );
        assert!(
            sql[4].ends_with("ORDER BY day WITH FILL STEP 1"),
            "{}",
            sql[4]
        );
        // A nullable time column is not filled: the step's unit would be a guess.
        let mut events = demo_events();
        events.columns[0].type_name = "Nullable(DateTime)".into();
        let suggestions = for_table(&events, &new(), &BTreeMap::new());
        assert!(suggestions.iter().all(|s| !s.sql.contains("WITH FILL")));
        assert_parses(&suggestions);
    }

    #[test]
    fn demo_products_without_and_with_samples() {
        let suggestions = for_table(&demo_products(), &old(), &BTreeMap::new());
        assert_eq!(
            pairs(&suggestions),
            [
                (
                    "What are the lowest, average and highest prices?",
                    "SELECT min(price) AS lowest, avg(price) AS average, max(price) AS highest \
                     FROM demo.products"
                ),
                (
                    "How many products are there?",
                    "SELECT count() AS count FROM demo.products"
                ),
                ("Show 10 products", "SELECT * FROM demo.products LIMIT 10"),
            ]
        );
        assert_parses(&suggestions);

        // A string column with few sampled values is a category; the identifier ranks last.
        let samples = BTreeMap::from([
            (
                "name".to_string(),
                vec!["Desk".to_string(), "Lamp".to_string()],
            ),
            (
                "product_id".to_string(),
                vec!["P1".to_string(), "P2".to_string()],
            ),
        ]);
        let suggestions = for_table(&demo_products(), &old(), &samples);
        assert_eq!(
            pairs(&suggestions)[..2],
            [
                (
                    "What are the top 10 product names by number of products?",
                    "SELECT name, count() AS count FROM demo.products GROUP BY name \
                     ORDER BY count DESC LIMIT 10"
                ),
                (
                    "What is the average price by product code?",
                    "SELECT product_id, avg(price) AS avg_price FROM demo.products \
                     GROUP BY product_id ORDER BY avg_price DESC"
                ),
            ]
        );
        assert_parses(&suggestions);
    }

    #[test]
    fn for_schema_skips_bookkeeping_and_caps_each_table() {
        let dead_letter_columns = DEAD_LETTER_COLUMNS
            .iter()
            .map(|name| column(name, "String", ""))
            .collect::<Vec<_>>();
        let schema = Schema {
            databases: vec!["demo".into(), "system".into()],
            tables: vec![
                table(
                    "demo",
                    ".inner.daily",
                    "MergeTree",
                    5,
                    demo_events().columns,
                ),
                table(
                    "demo",
                    "empty_events",
                    "MergeTree",
                    0,
                    demo_events().columns,
                ),
                demo_events(),
                table(
                    "demo",
                    "events_dead_letter",
                    "MergeTree",
                    3,
                    dead_letter_columns.clone(),
                ),
                table("demo", "events_queue", "Kafka", 0, demo_events().columns),
                demo_products(),
                table("demo", "rejected", "MergeTree", 3, dead_letter_columns),
                table("system", "query_log", "MergeTree", 9, demo_events().columns),
            ],
        };
        let suggestions = for_schema(&schema, &old(), 3, "demo");
        let tables: Vec<&str> = suggestions.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(
            tables,
            [
                "demo.events",
                "demo.events",
                "demo.events",
                "demo.products",
                "demo.products",
                "demo.products",
                // Tables known to be empty come last.
                "demo.empty_events",
                "demo.empty_events",
                "demo.empty_events",
            ]
        );
        assert_eq!(
            suggestions[..3],
            for_table(&demo_events(), &old(), &BTreeMap::new())[..3]
        );
        assert_eq!(
            suggestions,
            for_schema(&schema, &old(), 3, "demo"),
            "deterministic"
        );
        assert!(for_schema(&schema, &old(), 0, "demo").is_empty());
        assert_parses(&suggestions);
    }

    #[test]
    fn clock_times_coordinates_and_ids_are_never_totalled_and_the_default_database_leads() {
        let flights = table(
            "air",
            "flights",
            "MergeTree",
            100,
            vec![
                column("flight_date", "Date", ""),
                column("dep_time", "Int32", ""),
                column("lat", "Float64", ""),
                column("flight_id", "UInt64", ""),
                column("carrier", "LowCardinality(String)", ""),
                column("distance", "Float32", ""),
            ],
        );
        let other = table("aaa", "t", "MergeTree", 100, demo_events().columns);
        let schema = Schema {
            databases: vec!["aaa".into(), "air".into()],
            tables: vec![other, flights],
        };
        let suggestions = for_schema(&schema, &old(), 7, "air");
        assert_eq!(suggestions[0].table, "air.flights");
        let sql: Vec<&str> = suggestions
            .iter()
            .filter(|s| s.table == "air.flights")
            .map(|s| s.sql.as_str())
            .collect();
        assert!(sql.iter().any(|q| q.contains("distance")), "{sql:#?}");
        for q in &sql {
            for column in ["dep_time", "lat", "flight_id"] {
                for f in ["sum(", "avg(", "min(", "max("] {
                    assert!(!q.contains(&format!("{f}{column})")), "{q}");
                }
            }
        }
    }

    #[test]
    fn odd_names_are_quoted_and_aliases_never_shadow_columns() {
        let unusual = table(
            "my db",
            "order",
            "MergeTree",
            10,
            vec![
                column("from", "DateTime('UTC')", ""),
                column("count", "UInt32", ""),
                column("minute", "UInt8", ""),
                column("day", "Date", ""),
                column("Status", "Enum8('new' = 1, 'paid' = 2)", "Order status"),
                column("my value", "Nullable(Float64)", ""),
                column("total_my_value", "String", ""),
                column("_aurora_offset", "UInt64", ""),
            ],
        );
        for caps in [old(), new()] {
            let suggestions = for_table(&unusual, &caps, &BTreeMap::new());
            assert_parses(&suggestions);
            assert_eq!(
                suggestions[0].question,
                "How many order rows per minute in the last hour of data?"
            );
            assert_eq!(
                suggestions[0].sql,
                format!(
                    "SELECT toStartOfMinute(`from`) AS minute_, count() AS count_ FROM `my db`.`order` \
                     WHERE `from` >= (SELECT max(`from`) FROM `my db`.`order`) - INTERVAL 1 HOUR \
                     GROUP BY minute_ ORDER BY minute_{}",
                    if caps.with_fill { " WITH FILL STEP 60" } else { "" }
                )
            );
            let questions: Vec<&str> = suggestions.iter().map(|s| s.question.as_str()).collect();
            assert!(
                questions.contains(&"What are the top 10 order statuses by number of order rows?")
            );
            assert!(questions.contains(&"What is the total my value by order status?"));
            let by_status = suggestions
                .iter()
                .find(|s| s.question == "What is the total my value by order status?")
                .unwrap();
            assert_eq!(
                by_status.sql,
                "SELECT Status, sum(`my value`) AS total_my_value_ FROM `my db`.`order` \
                 GROUP BY Status ORDER BY total_my_value_ DESC"
            );
            // Aurora's bookkeeping columns are never a measure.
            assert!(suggestions.iter().all(|s| !s.sql.contains("sum(_aurora")));
        }
    }

    #[test]
    fn a_date_only_table_gets_daily_questions() {
        let daily = table(
            "shop",
            "daily_sales",
            "SummingMergeTree",
            100,
            vec![
                keyed(column("day", "Date", "")),
                keyed(column("store_id", "UInt32", "")),
                column("amount", "Float64", "Order total"),
            ],
        );
        let suggestions = for_table(&daily, &old(), &BTreeMap::new());
        assert_eq!(
            pairs(&suggestions),
            [
                (
                    "What is the order total per day?",
                    "SELECT toDate(day) AS day_, sum(amount) AS total_amount FROM shop.daily_sales \
                     GROUP BY day_ ORDER BY day_"
                ),
                (
                    "How many daily sales per day?",
                    "SELECT toDate(day) AS day_, count() AS count FROM shop.daily_sales \
                     GROUP BY day_ ORDER BY day_"
                ),
                (
                    "Show the 10 most recent daily sales",
                    "SELECT * FROM shop.daily_sales ORDER BY day DESC LIMIT 10"
                ),
                ("How many daily sales are there?", "SELECT count() AS count FROM shop.daily_sales"),
            ]
        );
        assert_parses(&suggestions);
    }

    #[test]
    fn words_for_questions() {
        assert_eq!(humanize("event_type"), "event type");
        assert_eq!(humanize("userAgent"), "user agent");
        assert_eq!(humanize("HTTPStatus"), "httpstatus");
        assert_eq!(pluralize("country"), "countries");
        assert_eq!(pluralize("day"), "days");
        assert_eq!(pluralize("status"), "statuses");
        assert_eq!(pluralize("box"), "boxes");
        assert_eq!(pluralize("events"), "events");
        assert_eq!(lowercase_first_word("Order total"), "order total");
        assert_eq!(lowercase_first_word("ISO code"), "ISO code");
        assert!(comment_lists_values("page_view, add_to_cart or purchase"));
        assert!(comment_lists_values("one of: a|b|c"));
        assert!(!comment_lists_values(
            "purchase amount in EUR, 0 for other events"
        ));
        assert!(!comment_lists_values("path of the page"));
        assert_eq!(ident("event_time"), "event_time");
        assert_eq!(ident("order"), "`order`");
        assert_eq!(ident("2fa"), "`2fa`");
        assert_eq!(ident("naïve"), "`naïve`");
    }
}
