//! Fitting a generated query to its question. A 0.5B model gets the shape of most answers
//! right and then slips in ways that can be seen by comparing the query with the question
//! and the schema: a column it made up (`year`, `mpg`), a bucket whose name says another
//! unit (`toDate(t) AS month`), a per-day answer with no aggregate, a date the question names
//! but the query forgets, a filter on a value the question never mentions. Each slip has one
//! mechanical fix, made here before the query is checked, so no repair attempt is spent on it.
//!
//! Every rule leaves the query unchanged when it does not apply or when the query does not
//! parse; the validator and the server's dry run still judge the result.

use std::collections::BTreeSet;

use sqlparser::ast::{OrderByKind, SetExpr, Statement};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use super::linking::{flat, is_stop_word, stem, words, LinkedSchema, ValueSamples};
use super::validate::{self, Problem};
use crate::warehouse::schema::Schema;

mod grouping;
mod measures;
mod names;
mod sql;
mod time;
mod values;

use grouping::{filter_not_group, shown_groups, ungrouped_columns};
use measures::{counted_not_summed, every_group, one_count, share_of_total, superlative};
use names::replace_unknown_column;
pub(crate) use names::spelled_like;
use sql::query_tables;
pub(crate) use sql::{resolve, string_literal, QueryTable};
use time::{aggregate_buckets, bucket_names, named_dates, redundant_buckets, relative_period};
use values::{known_values, named_values, stated_having, unnamed_values};

/// What the fitting needs besides the query.
pub struct Fit<'a> {
    pub question: &'a str,
    pub linked: &'a LinkedSchema,
    pub schema: &'a Schema,
    pub samples: &'a ValueSamples,
    pub default_database: &'a str,
    /// The question refines the previous query: only the rules that do not read the
    /// question for the whole query's meaning apply.
    pub follow_up: bool,
    /// Rules (by the names in [`RULES`]) left out, to measure what each one is worth.
    pub disabled: &'a [&'a str],
}

/// The fitting rules, by name, in the order `fit` applies them.
pub const RULES: &[&str] = &[
    "bucket_names",
    "filter_not_group",
    "unnamed_values",
    "named_values",
    "named_dates",
    "relative_period",
    "aggregate_buckets",
    "share_of_total",
    "ungrouped_columns",
    "shown_groups",
    "redundant_buckets",
    "one_count",
    "counted_not_summed",
    "known_values",
    "stated_having",
    "every_group",
    "superlative",
];

/// Columns the validator does not know, replaced one at a time by what they must mean: another
/// spelling of one column of the query's tables (`orderdate` for `o_orderdate`, `dep_delay`
/// for `departure_delay`), an abbreviation (`mpg`), another number (`cylinder`), or a time
/// unit of the one time column (`year` → `toYear(t)`). Triggered by the validator only, so it
/// holds on any schema; a name that could mean two columns is left for the repair prompt.
pub fn repair_names(sql: &str, ctx: &Fit<'_>) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut sql = sql.to_string();
    let question = QuestionText::new(ctx.question);
    for _ in 0..4 {
        let Err(Problem::UnknownColumn { name, .. }) =
            validate::check(&sql, ctx.schema, ctx.default_database)
        else {
            break;
        };
        match replace_unknown_column(&sql, &name, &question, ctx) {
            Some((fixed, note)) => {
                sql = fixed;
                notes.push(note);
            }
            None => break,
        }
    }
    (sql, notes)
}

/// The query with the fixes that apply, and a short note for each fix made.
pub fn fit(sql: &str, ctx: &Fit<'_>) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut sql = sql.to_string();
    let question = QuestionText::new(ctx.question);
    let Ok(mut statements) = Parser::parse_sql(&ClickHouseDialect {}, &sql) else {
        return (sql, notes);
    };
    let [Statement::Query(query)] = statements.as_mut_slice() else {
        return (sql, notes);
    };
    let before = notes.len();
    if query.order_by.is_none() {
        // An empty list for the rules to fill; removed again below when it stays empty.
        query.order_by = Some(sqlparser::ast::OrderBy {
            kind: OrderByKind::Expressions(Vec::new()),
            interpolate: None,
        });
    }
    {
        let mut no_order = Vec::new();
        let order = match query.order_by.as_mut().map(|o| &mut o.kind) {
            Some(OrderByKind::Expressions(list)) => list,
            _ => &mut no_order,
        };
        let limit = &mut query.limit_clause;
        let SetExpr::Select(select) = query.body.as_mut() else {
            return (sql, notes);
        };
        let tables = query_tables(select, ctx);
        // A follow-up's words say only what changes, so the rules that read the question
        // for what the whole query should be are left out; the rest hold for any query.
        let whole = !ctx.follow_up;
        let on = |rule: &str, reads_question: bool| {
            (whole || !reads_question) && !ctx.disabled.contains(&rule)
        };
        let mut fixes = Vec::new();
        if on("bucket_names", false) {
            fixes.push(bucket_names(select, order, &question));
        }
        if on("filter_not_group", true) {
            fixes.push(filter_not_group(select, order, &question, ctx, &tables));
        }
        if on("unnamed_values", true) {
            fixes.push(unnamed_values(select, &question, ctx, &tables));
        }
        if on("named_values", true) {
            fixes.push(named_values(select, ctx, &tables));
        }
        if on("named_dates", true) {
            fixes.push(named_dates(select, &question, &tables));
        }
        if on("relative_period", true) {
            fixes.push(relative_period(select, &question, &tables));
        }
        if on("aggregate_buckets", true) {
            fixes.push(aggregate_buckets(select, order, limit, &question, &tables));
        }
        if on("share_of_total", false) {
            fixes.push(share_of_total(select, &tables));
        }
        if on("ungrouped_columns", false) {
            fixes.push(ungrouped_columns(select, &tables));
        }
        if on("shown_groups", false) {
            fixes.push(shown_groups(select));
        }
        if on("redundant_buckets", false) {
            fixes.push(redundant_buckets(select, order));
        }
        if on("one_count", true) {
            fixes.push(one_count(select, order, &question));
        }
        if on("counted_not_summed", true) {
            fixes.push(counted_not_summed(select, order, &question, ctx, &tables));
        }
        if on("known_values", true) {
            fixes.push(known_values(select, &question, &tables));
        }
        if on("stated_having", true) {
            fixes.push(stated_having(select, limit, &question, &tables));
        }
        if on("every_group", true) {
            fixes.push(every_group(select, limit, &question));
        }
        if on("superlative", true) {
            fixes.push(superlative(select, order, limit, &question));
        }
        notes.extend(fixes.into_iter().flatten());
    }
    if notes.len() == before {
        return (sql, notes);
    }
    if matches!(&query.order_by, Some(o) if matches!(&o.kind, OrderByKind::Expressions(l) if l.is_empty()))
    {
        query.order_by = None;
    }
    sql = statements[0].to_string();
    (sql, notes)
}

/// The question, lower-cased, and its stemmed words.
struct QuestionText {
    lower: String,
    words: BTreeSet<String>,
}

impl QuestionText {
    fn new(question: &str) -> Self {
        Self {
            lower: question.to_lowercase(),
            words: words(question).into_iter().collect(),
        }
    }

    /// The question's words as written (lower-case, unstemmed), in order.
    fn tokens(&self) -> Vec<&str> {
        self.lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .collect()
    }

    fn has_any(&self, list: &[&str]) -> bool {
        list.iter().any(|w| self.words.contains(&stem(w)))
    }

    /// Whether the question names `value`: as written, or by one of its words.
    fn names(&self, value: &str) -> bool {
        let value_flat = flat(value);
        (!value_flat.is_empty() && flat(&self.lower).contains(&value_flat))
            || words(value)
                .iter()
                .any(|w| !is_stop_word(w) && w.len() > 2 && self.words.contains(w))
    }
}

#[cfg(test)]
mod tests;
