//! Schema linking: from the whole schema, the few tables and columns a question is about, so
//! the prompt stays small (a small model answers faster and mixes up fewer columns). Words of
//! the question are matched against table and column names, column comments and the values
//! of low-cardinality string columns (sampled from the server once, see [`ValueSamples`]).

use std::collections::{BTreeMap, BTreeSet};

use super::joins::JoinGraph;
use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};
use crate::warehouse::types::DataType;
use crate::warehouse::{QueryOptions, Warehouse, WarehouseError};

/// Up to this many distinct values make a column "low cardinality" for prompts and linking.
pub const MAX_SAMPLE_VALUES: usize = 12;

/// Distinct values of low-cardinality columns, by `(qualified table, column)`, and the
/// user's other words for columns and values (`assistant.synonyms`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueSamples {
    pub values: BTreeMap<(String, String), Vec<String>>,
    /// Other words (each possibly several) for a column, by `(qualified table, column)`.
    pub column_words: BTreeMap<(String, String), Vec<String>>,
    /// Other words for a value, by `(qualified table, column, value)`.
    pub value_words: BTreeMap<(String, String, String), Vec<String>>,
}

impl ValueSamples {
    /// Adds the user's synonyms: keys `db.table.column` or `db.table.column = value`. Keys
    /// that name no column of the schema are returned, with the reason.
    pub fn add_synonyms(
        &mut self,
        schema: &Schema,
        synonyms: &[(String, Vec<String>)],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, words) in synonyms {
            let (path, value) = match key.split_once('=') {
                Some((p, v)) => (p.trim(), Some(v.trim().to_string())),
                None => (key.trim(), None),
            };
            let found = path.rsplit_once('.').and_then(|(table, column)| {
                let t = schema.table(table, "")?;
                t.columns
                    .iter()
                    .any(|c| c.name == column)
                    .then(|| (t.qualified_name(), column.to_string()))
            });
            let Some((table, column)) = found else {
                problems.push(format!(
                    "synonyms `{key}`: no column `{path}` (write database.table.column)"
                ));
                continue;
            };
            match value {
                Some(v) => self
                    .value_words
                    .entry((table, column, v))
                    .or_default()
                    .extend(words.iter().cloned()),
                None => self
                    .column_words
                    .entry((table, column))
                    .or_default()
                    .extend(words.iter().cloned()),
            }
        }
        problems
    }

    /// Whether the question's (stemmed) words hold one of these phrases, all of its words.
    fn says_any(phrases: Option<&Vec<String>>, question_words: &[String]) -> bool {
        phrases.is_some_and(|list| {
            list.iter().any(|phrase| {
                let w = words(phrase);
                !w.is_empty() && w.iter().all(|x| question_words.contains(x))
            })
        })
    }
}

impl ValueSamples {
    pub fn get(&self, table: &TableInfo, column: &str) -> Option<&[String]> {
        self.values
            .get(&(table.qualified_name(), column.to_string()))
            .map(Vec::as_slice)
    }

    /// Reads, for each string-like column of each table, its distinct values in the first
    /// 100k rows when there are at most `MAX_SAMPLE_VALUES`. One query per table.
    pub async fn load(warehouse: &Warehouse, schema: &Schema) -> Result<Self, WarehouseError> {
        let mut samples = Self::default();
        for table in user_tables(schema) {
            let candidates: Vec<&ColumnInfo> = table
                .columns
                .iter()
                .filter(|c| sampled_type(&c.type_name))
                .collect();
            if candidates.is_empty() || table.total_rows == 0 && !table.engine.contains("Log") {
                continue;
            }
            // At most one value more than wanted, so "too many" is visible.
            let sql = per_column_sample(
                table,
                &candidates,
                &format!("topK({})", MAX_SAMPLE_VALUES + 1),
            );
            let result = match warehouse.query(&sql, &QueryOptions::default()).await {
                Ok(r) => r,
                // A table that cannot be read (permissions, a broken engine) is linked by
                // its names alone.
                Err(WarehouseError::Server(e)) => {
                    tracing::debug!("no samples for {}: {e}", table.qualified_name());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(row) = result.rows.first() else {
                continue;
            };
            for (column, value) in candidates.iter().zip(row) {
                let crate::warehouse::value::Value::Array(items) = value else {
                    continue;
                };
                if items.is_empty() || items.len() > MAX_SAMPLE_VALUES {
                    continue;
                }
                let mut values: Vec<String> = items
                    .iter()
                    .filter_map(|v| match v {
                        crate::warehouse::value::Value::String(s) if s.len() <= 40 => {
                            Some(s.to_string())
                        }
                        _ => None,
                    })
                    .filter(|s| !s.is_empty())
                    .collect();
                values.sort();
                if !values.is_empty() {
                    samples
                        .values
                        .insert((table.qualified_name(), column.name.clone()), values);
                }
            }
        }
        Ok(samples)
    }
}

/// `SELECT agg(toString(c1)), ... FROM (SELECT c1, ... FROM db.t LIMIT 100000)`: one
/// aggregate (`topK(13)`, `topK(200)`) of each column over the table's first rows,
/// in one scan.
pub(crate) fn per_column_sample(
    table: &TableInfo,
    columns: &[&ColumnInfo],
    aggregate: &str,
) -> String {
    let quote = crate::warehouse::query::quote_ident;
    let select = columns
        .iter()
        .map(|c| format!("{aggregate}(toString({}))", quote(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let names = columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {select} FROM (SELECT {names} FROM {}.{} LIMIT 100000)",
        quote(&table.database),
        quote(&table.name)
    )
}

fn sampled_type(type_name: &str) -> bool {
    match DataType::parse(type_name) {
        Ok(t) => matches!(
            t.unwrap_wrappers(),
            DataType::String | DataType::FixedString(_)
        ),
        Err(_) => false,
    }
}

/// Tables a question may be about: not ClickHouse's own, not Aurora's bookkeeping.
pub fn user_tables(schema: &Schema) -> impl Iterator<Item = &TableInfo> {
    schema.tables.iter().filter(|t| {
        !t.name.starts_with(".inner")
            && !t.name.ends_with("_dead_letter")
            && !t.name.starts_with("_aurora")
    })
}

/// A table chosen for the prompt, with the columns to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedTable {
    pub table: TableInfo,
    /// Columns whose name, comment or values the question mentions.
    pub matched_columns: BTreeSet<String>,
    pub score: u32,
}

/// The part of the schema a question is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkedSchema {
    pub tables: Vec<LinkedTable>,
    /// Words of the question that matched nothing (for "no such data" answers).
    pub unmatched_words: Vec<String>,
    /// No word of the question named a table, column or value: the tables are shown because
    /// the whole schema fits, not because the question is about them.
    pub nothing_matched: bool,
    /// The tables the question's words point at, best first (qualified names): the same as
    /// `tables` for linked tables; a few of them when whole databases are shown.
    pub ranked: Vec<String>,
    /// Column values the question names ("purchases" → `event_type = 'purchase'`).
    pub values: Vec<MatchedValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedValue {
    pub table: String,
    pub column: String,
    pub value: String,
}

impl LinkedSchema {
    /// These tables, as they are, with nothing matched: for a prompt that is not built from
    /// a question (the plain benchmark mode, a warm-up).
    pub fn of<'a>(tables: impl IntoIterator<Item = &'a TableInfo>) -> Self {
        Self {
            tables: tables
                .into_iter()
                .map(|t| LinkedTable {
                    table: t.clone(),
                    matched_columns: BTreeSet::new(),
                    score: 0,
                })
                .collect(),
            unmatched_words: Vec::new(),
            nothing_matched: false,
            ranked: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn table_names(&self) -> Vec<String> {
        self.tables
            .iter()
            .map(|t| t.table.qualified_name())
            .collect()
    }
}

/// Words that carry no schema meaning in analyst questions.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "across",
    "after",
    "all",
    "along",
    "also",
    "among",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "average",
    "avg",
    "be",
    "before",
    "below",
    "between",
    "biggest",
    "both",
    "bottom",
    "but",
    "by",
    "can",
    "count",
    "daily",
    "data",
    "day",
    "days",
    "did",
    "distinct",
    "do",
    "does",
    "each",
    "every",
    "fewest",
    "first",
    "for",
    "from",
    "get",
    "give",
    "group",
    "grouped",
    "had",
    "has",
    "have",
    "highest",
    "hour",
    "hourly",
    "hours",
    "how",
    "i",
    "in",
    "instead",
    "into",
    "is",
    "it",
    "its",
    "last",
    "latest",
    "least",
    "list",
    "lowest",
    "many",
    "max",
    "maximum",
    "me",
    "mean",
    "median",
    "min",
    "minimum",
    "minute",
    "minutes",
    "month",
    "monthly",
    "months",
    "more",
    "most",
    "much",
    "my",
    "number",
    "of",
    "on",
    "only",
    "or",
    "order",
    "ordered",
    "over",
    "per",
    "percent",
    "percentage",
    "please",
    "rate",
    "ratio",
    "rows",
    "record",
    "records",
    "share",
    "show",
    "smallest",
    "so",
    "sorted",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "this",
    "those",
    "to",
    "top",
    "total",
    "totals",
    "under",
    "unique",
    "up",
    "us",
    "value",
    "values",
    "was",
    "week",
    "weekly",
    "weeks",
    "were",
    "what",
    "when",
    "where",
    "which",
    "who",
    "whose",
    "why",
    "with",
    "within",
    "without",
    "year",
    "yearly",
    "years",
    "you",
    "sum",
    "number",
    "amount",
    "ten",
    "five",
    "three",
    "two",
    "one",
    "all",
    "overall",
    "compared",
    "compare",
    "versus",
    "vs",
    "find",
    "tell",
    "return",
    "display",
    "same",
    "than",
    "sort",
    "descending",
    "ascending",
    "table",
    "tables",
    "column",
    "columns",
    "query",
    "select",
    "missing",
    "null",
    "empty",
    "known",
    "we",
    "our",
];

/// Words that never name a table, a column or a value (for the table-name check, which
/// otherwise takes even SQL's words: a table may be called `orders`).
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "doe", "does", "for", "from",
    "had", "has", "this", "was", "ha", "have", "how", "i", "in", "is", "it", "its", "me", "of",
    "on", "or", "that", "the", "their", "them", "there", "these", "thi", "those", "to", "wa", "we",
    "were", "what", "when", "where", "which", "who", "why", "with", "you", "our", "my", "per",
    "each", "all", "any", "many", "much", "than", "then", "so", "up", "into", "over", "under",
];

/// A name's words: split at underscores and where a lower-case letter meets a capital
/// (`sched_dep_time`, `schedDepTime` → `sched`, `dep`, `time`), lower-cased.
pub(crate) fn name_words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            previous_lower = false;
            out.push(String::new());
            continue;
        }
        if c.is_uppercase() && previous_lower {
            out.push(String::new());
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        match out.last_mut() {
            Some(w) => w.extend(c.to_lowercase()),
            None => out.push(c.to_lowercase().collect()),
        }
    }
    out.retain(|w| !w.is_empty());
    out
}

/// Lower-case words of `text`, split on anything that is not a letter or digit, with plural
/// and verb endings folded so that "events" meets `event_time` and "purchases" `purchase`.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| stem(&w.to_lowercase()))
        .collect()
}

pub(crate) fn stem(word: &str) -> String {
    if word.len() > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..word.len() - 3]);
    }
    if word.len() > 3 && word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

pub(crate) fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word) || word.chars().all(|c| c.is_ascii_digit())
}

/// Picks tables and columns for `question`.
///
/// A table scores by the question words found in its name (3 each), its columns' names
/// (2 each), their comments (1 each) and their sampled values (3 each). Every table scoring at
/// least half the best score is kept, best first, at most `max_tables`. With no match at all
/// and a single user table, that table is used (the question can only be about it).
pub fn link(
    schema: &Schema,
    samples: &ValueSamples,
    question: &str,
    max_tables: usize,
) -> LinkedSchema {
    let question_words: Vec<String> = words(question)
        .into_iter()
        .filter(|w| !is_stop_word(w))
        .collect();
    // A table's name counts even when it is also a word of SQL or of questions ("orders",
    // "order"): only words that never name anything are left out.
    let naming_words: Vec<String> = words(question)
        .into_iter()
        .filter(|w| !FUNCTION_WORDS.contains(&w.as_str()) && !w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let mut used_words = BTreeSet::new();
    let mut linked: Vec<LinkedTable> = Vec::new();
    // Tables the question names, by their name or by one of their values.
    let mut named: BTreeSet<String> = BTreeSet::new();
    let mut values = Vec::new();
    for table in user_tables(schema) {
        let mut score = 0;
        let mut matched_columns = BTreeSet::new();
        let table_words: BTreeSet<String> = words(&table.name)
            .into_iter()
            .chain(name_words(&table.name).iter().map(|w| stem(w)))
            .collect();
        for w in &naming_words {
            if table_words.contains(w) {
                score += 3;
                used_words.insert(w.clone());
                named.insert(table.qualified_name());
            }
        }
        let prefix = super::joins::column_prefix(table);
        for column in &table.columns {
            // `o_orderdate` is also `orderdate`; `playerID` is also `player` and `id`.
            let core = prefix
                .as_deref()
                .and_then(|p| column.name.strip_prefix(p))
                .unwrap_or(&column.name);
            let name_words: BTreeSet<String> = words(&column.name)
                .into_iter()
                .chain(words(core))
                .chain(name_words(core).iter().map(|w| stem(w)))
                .collect();
            let comment_words: BTreeSet<String> = words(&column.comment)
                .into_iter()
                .filter(|w| !is_stop_word(w))
                .collect();
            let mut column_score = 0;
            let key = (table.qualified_name(), column.name.clone());
            if ValueSamples::says_any(samples.column_words.get(&key), &question_words) {
                column_score += 2;
            }
            for w in &question_words {
                if name_words.contains(w) {
                    column_score += 2;
                    used_words.insert(w.clone());
                } else if comment_words.contains(w) {
                    column_score += 1;
                    used_words.insert(w.clone());
                }
            }
            for value in samples.get(table, &column.name).unwrap_or_default() {
                let key = (table.qualified_name(), column.name.clone(), value.clone());
                if mentions_value(question, &question_words, value)
                    || ValueSamples::says_any(samples.value_words.get(&key), &question_words)
                {
                    column_score += 3;
                    named.insert(table.qualified_name());
                    values.push(MatchedValue {
                        table: table.qualified_name(),
                        column: column.name.clone(),
                        value: value.clone(),
                    });
                    for w in words(value) {
                        used_words.insert(w);
                    }
                }
            }
            if column_score > 0 {
                matched_columns.insert(column.name.clone());
                score += column_score;
            }
        }
        if score > 0 {
            linked.push(LinkedTable {
                table: table.clone(),
                matched_columns,
                score,
            });
        }
    }
    if linked.is_empty() {
        let mut tables = user_tables(schema);
        if let (Some(only), None) = (tables.next(), tables.next()) {
            linked.push(LinkedTable {
                table: only.clone(),
                matched_columns: BTreeSet::new(),
                score: 0,
            });
        }
    }
    linked.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.table.qualified_name().cmp(&b.table.qualified_name()))
    });
    let best = linked.first().map_or(0, |t| t.score);
    // Besides the best tables (a tie is kept: the words cannot tell them apart), only tables
    // the question names or that share a key (`id`, `*_id`) with the first: a word matching
    // a column by chance ("price", "year") would put an unrelated table in the prompt, which
    // costs prompt time and tempts a small model into a join.
    let first = linked.first().map(|t| t.table.clone());
    linked.retain(|t| {
        let name = t.table.qualified_name();
        let related = first
            .as_ref()
            .is_some_and(|f| f.qualified_name() == name || shares_key(f, &t.table));
        t.score == best || (t.score * 2 >= best && (related || named.contains(&name)))
    });
    linked.truncate(max_tables.max(1));
    values.retain(|v: &MatchedValue| linked.iter().any(|t| t.table.qualified_name() == v.table));
    // The same column and value in two linked tables is one hint.
    let mut seen = BTreeSet::new();
    values.retain(|v| seen.insert((v.column.clone(), v.value.clone())));
    // "add-to-cart" names `add_to_cart`, not also the page '/cart' inside it.
    let all: Vec<String> = values.iter().map(|v| flat(&v.value)).collect();
    values.retain(|v| {
        let shorter = flat(&v.value);
        !all.iter()
            .any(|longer| longer.len() > shorter.len() && longer.contains(&shorter))
    });
    LinkedSchema {
        ranked: linked.iter().map(|t| t.table.qualified_name()).collect(),
        tables: linked,
        values,
        nothing_matched: false,
        unmatched_words: question_words
            .into_iter()
            .filter(|w| !used_words.contains(w))
            .collect(),
    }
}

/// Characters of `CREATE TABLE` text (about three to a token) up to which a prompt shows
/// every table of the scope, or of one database, instead of only the linked ones: small
/// enough to leave room for the rules, examples, question and answer in the model's context.
pub const WHOLE_SCHEMA_CHARS: usize = 9000;

/// The tables a question's prompt shows. When `whole` allows it: the tables of the database
/// the question links best that a chain of joins connects to the linked ones, if their text
/// fits [`WHOLE_SCHEMA_CHARS`], else (or when the question links nothing) every table of the
/// scope if that fits. A question never misses a related table that way, and every question
/// on the same related tables gets the same prompt prefix, which a local model evaluates
/// once. Otherwise the linked tables, plus those on the join paths (at most two joins)
/// between them. Value hints and unmatched words come from the linking either way.
pub fn choose_tables(
    schema: &Schema,
    samples: &ValueSamples,
    joins: Option<&JoinGraph>,
    question: &str,
    max_tables: usize,
    whole: bool,
) -> LinkedSchema {
    let linked = link(schema, samples, question, max_tables);
    let fits = |tables: &[&TableInfo]| {
        !tables.is_empty()
            && tables
                .iter()
                .map(|t| super::prompt::create_table(t, samples).len())
                .sum::<usize>()
                <= WHOLE_SCHEMA_CHARS
    };
    if whole {
        let all: Vec<&TableInfo> = user_tables(schema).collect();
        let database = linked.tables.first().map(|t| t.table.database.clone());
        // The tables the question is about and every table joined to them, of their database:
        // a table no chain of joins reaches (or another database's) only tempts a small model
        // into the wrong table. Without join paths, the whole database.
        let related = joins.map(|graph| graph.connected(&linked.ranked));
        let of_database: Vec<&TableInfo> = all
            .iter()
            .copied()
            .filter(|t| Some(&t.database) == database.as_ref())
            .filter(|t| {
                related
                    .as_ref()
                    .is_none_or(|r| r.contains(&t.qualified_name()))
            })
            .collect();
        for shown in [of_database, all] {
            if fits(&shown) {
                let mut whole = LinkedSchema::of(shown);
                whole.values = linked.values;
                whole.unmatched_words = linked.unmatched_words;
                whole.nothing_matched = linked.tables.is_empty();
                whole.ranked = linked.ranked;
                return whole;
            }
        }
    }
    let Some(graph) = joins else {
        return linked;
    };
    // The tables on the way from the best table to each other linked one.
    let mut tables = linked.tables.clone();
    if let Some(first) = linked.tables.first() {
        for other in &linked.tables[1..] {
            let path = graph
                .path(
                    &first.table.qualified_name(),
                    &other.table.qualified_name(),
                    2,
                )
                .unwrap_or_default();
            for name in path {
                if tables.iter().all(|t| t.table.qualified_name() != name) {
                    if let Some(t) = user_tables(schema).find(|t| t.qualified_name() == name) {
                        tables.push(LinkedTable {
                            table: t.clone(),
                            matched_columns: BTreeSet::new(),
                            score: 0,
                        });
                    }
                }
            }
        }
    }
    LinkedSchema { tables, ..linked }
}

/// Whether two tables have a key column (`id`, `*_id`) of the same name: they can be joined.
pub fn shares_key(a: &TableInfo, b: &TableInfo) -> bool {
    a.columns
        .iter()
        .any(|c| c.is_key_like() && b.columns.iter().any(|o| o.name == c.name))
}

/// Whether the question names a sampled value: the value as written ("DE", "mobile") as a
/// whole word, or all of its words, plurals folded ("page views" for `page_view`,
/// "purchases" for `purchase`). Other words for it come from the user's synonyms.
fn mentions_value(question: &str, question_words: &[String], value: &str) -> bool {
    let mut as_words =
        question.split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-' && c != '/');
    if as_words.any(|w| w == value) {
        return true;
    }
    // Short values ("IN", "US", "DE") count only as written: "in" is a word, not India.
    if value.chars().count() <= 3 {
        return false;
    }
    let value_lower = value.to_lowercase();
    // "add-to-cart" for `add_to_cart`: the same letters and digits, as one word.
    let whole = question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '_' && c != '-' && c != '/')
        .any(|w| w == value_lower || flat(w) == flat(&value_lower));
    if whole {
        return true;
    }
    let value_words = words(value);
    !value_words.is_empty() && value_words.iter().all(|w| question_words.contains(w))
}

/// Lower-case letters and digits only: `add_to_cart` and "Add-to-cart" are `addtocart`.
pub(crate) fn flat(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn column(name: &str, type_name: &str, comment: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            type_name: type_name.into(),
            default_kind: String::new(),
            default_expression: String::new(),
            comment: comment.into(),
            in_partition_key: false,
            in_sorting_key: false,
            in_primary_key: false,
        }
    }

    pub(crate) fn table(database: &str, name: &str, columns: Vec<ColumnInfo>) -> TableInfo {
        TableInfo {
            database: database.into(),
            name: name.into(),
            engine: "MergeTree".into(),
            partition_key: String::new(),
            sorting_key: String::new(),
            primary_key: String::new(),
            total_rows: 100,
            total_bytes: 1000,
            columns,
        }
    }

    /// The columns of `demo.events` (`assets/demo/schema.sql`), as the server reports them.
    pub(crate) fn demo_event_columns() -> Vec<ColumnInfo> {
        vec![
            column("event_time", "DateTime", "when the event happened (UTC)"),
            column("event_id", "UInt64", "unique id of the event"),
            column("user_id", "UInt32", "anonymous visitor id"),
            column(
                "event_type",
                "LowCardinality(String)",
                "page_view, add_to_cart or purchase",
            ),
            column("page", "String", "path of the page"),
            column(
                "product_id",
                "String",
                "product involved, empty for most page views",
            ),
            column(
                "country",
                "LowCardinality(String)",
                "ISO country code of the visitor",
            ),
            column(
                "device",
                "LowCardinality(String)",
                "desktop, mobile or tablet",
            ),
            column("quantity", "UInt8", "items added or bought"),
            column(
                "revenue",
                "Decimal(10, 2)",
                "purchase amount in EUR, 0 for other events",
            ),
        ]
    }

    /// The demo schema and a few vega tables, as the server reports them.
    pub(crate) fn fixture() -> (Schema, ValueSamples) {
        let events = table("demo", "events", demo_event_columns());
        let products = table(
            "demo",
            "products",
            vec![
                column("product_id", "String", "product code"),
                column("name", "String", "product name"),
                column("price", "Decimal(10, 2)", "list price in EUR"),
            ],
        );
        let airports = table(
            "vega",
            "airports",
            vec![
                column("iata", "String", "airport code"),
                column("name", "String", "airport name"),
                column("city", "String", ""),
                column("state", "String", "US state"),
            ],
        );
        let weather = table(
            "vega",
            "weather",
            vec![
                column("date", "Date", "day of the observation"),
                column("precipitation", "Float64", "rain in mm"),
                column("temp_max", "Float64", "highest temperature"),
                column("weather", "String", "drizzle, rain, sun, snow or fog"),
            ],
        );
        let mut samples = ValueSamples::default();
        for (t, c, v) in [
            (
                "demo.events",
                "event_type",
                vec!["add_to_cart", "page_view", "purchase"],
            ),
            ("demo.events", "country", vec!["DE", "FR", "US"]),
            ("demo.events", "device", vec!["desktop", "mobile", "tablet"]),
            (
                "vega.weather",
                "weather",
                vec!["drizzle", "fog", "rain", "snow", "sun"],
            ),
        ] {
            samples.values.insert(
                (t.to_string(), c.to_string()),
                v.into_iter().map(String::from).collect(),
            );
        }
        let schema = Schema {
            databases: vec!["demo".into(), "vega".into()],
            tables: vec![events, products, airports, weather],
        };
        (schema, samples)
    }

    fn linked(question: &str) -> Vec<String> {
        let (schema, samples) = fixture();
        link(&schema, &samples, question, 3).table_names()
    }

    #[test]
    fn picks_the_table_a_question_names() {
        assert_eq!(linked("How many events per hour?"), ["demo.events"]);
        assert_eq!(linked("Which airports are in Texas?"), ["vega.airports"]);
    }

    #[test]
    fn column_comments_and_values_link_tables() {
        assert_eq!(linked("revenue from mobile users in DE"), ["demo.events"]);
        assert_eq!(linked("how many days had snow"), ["vega.weather"]);
        let (schema, samples) = fixture();
        let values = link(&schema, &samples, "purchases from mobile", 3).values;
        let named: Vec<_> = values
            .iter()
            .map(|v| (v.column.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(named, [("event_type", "purchase"), ("device", "mobile")]);
        // "in" is not India, "us" not the United States; "DE" as written is Germany.
        let values = link(
            &schema,
            &samples,
            "how many events are in the data for us",
            3,
        )
        .values;
        assert!(values.is_empty(), "{values:?}");
        let values = link(&schema, &samples, "events from DE", 3).values;
        assert_eq!(values.len(), 1);
        assert_eq!(linked("page views per day"), ["demo.events"]);
        // "add-to-cart" is `add_to_cart`, and not also the page '/cart' inside it.
        let mut with_pages = samples.clone();
        with_pages.values.insert(
            ("demo.events".into(), "page".into()),
            vec!["/cart".into(), "/product".into()],
        );
        let values = link(&schema, &with_pages, "add-to-cart events per device", 3).values;
        let named: Vec<&str> = values.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(named, ["add_to_cart"]);
        let values = link(&schema, &with_pages, "events on the cart", 3).values;
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].value, "/cart");
        // Selling and buying are purchases, when the user's synonyms say so.
        let mut with_words = samples.clone();
        let problems = with_words.add_synonyms(
            &schema,
            &[
                (
                    "demo.events.event_type = purchase".into(),
                    vec!["sold".into(), "bought".into()],
                ),
                ("demo.events.revenue".into(), vec!["turnover".into()]),
                ("demo.nothing.x".into(), vec!["y".into()]),
            ],
        );
        assert_eq!(
            problems,
            ["synonyms `demo.nothing.x`: no column `demo.nothing.x` (write database.table.column)"]
        );
        for question in ["units sold per day", "visitors who bought nothing"] {
            assert!(link(&schema, &samples, question, 3).values.is_empty());
            let values = link(&schema, &with_words, question, 3).values;
            assert_eq!(values.len(), 1, "{question}");
            assert_eq!(values[0].value, "purchase", "{question}");
        }
        let linked = link(&schema, &with_words, "turnover per day", 3);
        assert!(linked.tables[0].matched_columns.contains("revenue"));
    }

    #[test]
    fn a_column_name_shared_by_chance_links_no_second_table() {
        // airports has a `name` too, but shares no key with products and is not named.
        assert_eq!(linked("name and price"), ["demo.products"]);
        // A tie is kept: nothing tells the two apart.
        assert_eq!(linked("name"), ["demo.products", "vega.airports"]);
        assert_eq!(
            linked("name and price of products and airports"),
            ["demo.products", "vega.airports"]
        );
    }

    #[test]
    fn whole_databases_are_shown_the_questions_first() {
        let (schema, samples) = fixture();
        let names = |l: &LinkedSchema| l.table_names();
        // A question about the weather sees the vega database, not the demo's tables.
        let weather = choose_tables(&schema, &samples, None, "precipitation per month", 3, true);
        assert_eq!(names(&weather), ["vega.airports", "vega.weather"]);
        assert_eq!(weather.ranked[0], "vega.weather");
        assert!(!weather.nothing_matched);
        let events = choose_tables(&schema, &samples, None, "purchases per country", 3, true);
        assert_eq!(names(&events), ["demo.events", "demo.products"]);
        // Nothing named: every table, marked as a guess.
        let guess = choose_tables(&schema, &samples, None, "how many invoices", 3, true);
        assert_eq!(guess.tables.len(), schema.tables.len());
        assert!(guess.nothing_matched);
        // With join paths, only the tables joined to the question's: the weather table is
        // joined to nothing, the events are to the products.
        let graph = super::super::joins::by_names(&schema);
        let alone = choose_tables(
            &schema,
            &samples,
            Some(&graph),
            "precipitation per month",
            3,
            true,
        );
        assert_eq!(names(&alone), ["vega.weather"]);
        let joined = choose_tables(
            &schema,
            &samples,
            Some(&graph),
            "purchases per country",
            3,
            true,
        );
        assert_eq!(names(&joined), ["demo.events", "demo.products"]);
        // Without whole schemas: the linked tables only.
        let linked = choose_tables(&schema, &samples, None, "precipitation per month", 3, false);
        assert_eq!(names(&linked), ["vega.weather"]);
    }

    #[test]
    fn a_join_question_links_both_tables() {
        let tables = linked("total revenue by product name");
        assert!(tables.contains(&"demo.events".to_string()), "{tables:?}");
        assert!(tables.contains(&"demo.products".to_string()), "{tables:?}");
    }

    #[test]
    fn nothing_matches_a_question_about_other_data() {
        let (schema, samples) = fixture();
        let linked = link(&schema, &samples, "how many invoices did we send", 3);
        assert!(linked.tables.is_empty());
        assert_eq!(linked.unmatched_words, ["invoice", "send"]);
    }

    #[test]
    fn words_fold_plurals() {
        assert_eq!(
            words("Purchases by countries"),
            ["purchase", "by", "country"]
        );
        assert_eq!(words("status"), ["status"]);
    }
}
