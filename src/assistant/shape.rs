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
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Ident, OrderByExpr, OrderByKind, Select, SelectItem,
    SetExpr, Statement, TableFactor, Value,
};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use super::linking::{flat, is_stop_word, stem, words, LinkedSchema, ValueSamples};
use super::validate::{self, Problem};
use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};
use crate::warehouse::types::DataType;

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
}

/// The query with the fixes that apply, and a short note for each fix made.
pub fn fit(sql: &str, ctx: &Fit<'_>) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let mut sql = sql.to_string();
    let question = QuestionText::new(ctx.question);
    // Made-up columns, one at a time, as the validator finds them.
    for _ in 0..4 {
        let Err(Problem::UnknownColumn { name, .. }) =
            validate::check(&sql, ctx.schema, ctx.default_database)
        else {
            break;
        };
        match replace_unknown_column(&sql, &name, &question, ctx)
            .or_else(|| drop_implied_condition(&sql, &name, ctx))
        {
            Some((fixed, note)) => {
                sql = fixed;
                notes.push(note);
            }
            None => break,
        }
    }
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
        let mut fixes = vec![bucket_names(select, order, &question)];
        if whole {
            fixes.push(filter_not_group(select, order, &question, ctx, &tables));
            fixes.push(unnamed_values(select, &question, ctx, &tables));
            fixes.push(named_values(select, ctx, &tables));
            fixes.push(named_dates(select, &question, &tables));
            fixes.push(aggregate_buckets(select, order, limit, &question, &tables));
        }
        fixes.push(share_of_total(select, &tables));
        fixes.push(ungrouped_columns(select, &tables));
        fixes.push(shown_groups(select));
        fixes.push(redundant_buckets(select, order));
        if whole {
            fixes.push(one_count(select, order, &question));
            fixes.push(counted_not_summed(select, order, &question, ctx, &tables));
            fixes.push(known_values(select, &question, &tables));
            fixes.push(stated_having(select, limit, &question, &tables));
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

/// The first letters of a column name's words: `miles_per_gallon` → `mpg`.
fn initials(column: &str) -> String {
    column.split('_').filter_map(|w| w.chars().next()).collect()
}

/// A table the query reads, with the alias it is read under.
struct QueryTable<'a> {
    table: &'a TableInfo,
    alias: Option<String>,
}

impl QueryTable<'_> {
    /// `col`, or `alias.col` when the query names the table by an alias.
    fn column_expr(&self, column: &str) -> Expr {
        match &self.alias {
            Some(a) => Expr::CompoundIdentifier(vec![Ident::new(a), Ident::new(column)]),
            None => Expr::Identifier(Ident::new(column)),
        }
    }
}

fn query_tables<'a>(select: &Select, ctx: &Fit<'a>) -> Vec<QueryTable<'a>> {
    let mut out = Vec::new();
    let factors = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        if let TableFactor::Table { name, alias, .. } = factor {
            if let Some(table) = ctx
                .schema
                .table(&validate::relation_name(name), ctx.default_database)
            {
                out.push(QueryTable {
                    table,
                    alias: alias.as_ref().map(|a| a.name.value.clone()),
                });
            }
        }
    }
    out
}

/// The one date or date-time column of the query's tables, as an expression.
fn time_column(tables: &[QueryTable<'_>]) -> Option<Expr> {
    let mut found = tables.iter().flat_map(|t| {
        t.table
            .columns
            .iter()
            .filter(|c| c.data_type().is_some_and(|d| d.is_temporal()))
            .map(move |c| t.column_expr(&c.name))
    });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// A select item's expression and alias; `None` for `*` and `t.*`.
fn item_parts(item: &SelectItem) -> Option<(&Expr, Option<&Ident>)> {
    match item {
        SelectItem::UnnamedExpr(e) => Some((e, None)),
        SelectItem::ExprWithAlias { expr, alias } => Some((expr, Some(alias))),
        _ => None,
    }
}

/// The names a select item can be referred to by: its expression's text and its alias.
fn item_names(item: &SelectItem) -> Vec<String> {
    item_parts(item).map_or_else(Vec::new, |(expr, alias)| {
        std::iter::once(expr.to_string())
            .chain(alias.map(|a| a.value.clone()))
            .collect()
    })
}

/// How to refer to each aggregate of the select list: its alias, else its expression.
fn aggregate_refs(select: &Select) -> Vec<Expr> {
    select
        .projection
        .iter()
        .filter_map(item_parts)
        .filter(|(expr, _)| has_aggregate(*expr))
        .map(|(expr, alias)| alias.map_or_else(|| expr.clone(), |a| Expr::Identifier(a.clone())))
        .collect()
}

/// The column an expression names (`col` or `x.col`), without its qualifier.
fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(i) => Some(&i.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        _ => None,
    }
}

/// The table and column info of a column reference, among the query's tables.
fn resolve<'a>(expr: &Expr, tables: &[QueryTable<'a>]) -> Option<(&'a TableInfo, &'a ColumnInfo)> {
    let name = column_name(expr)?;
    let qualifier = match expr {
        Expr::CompoundIdentifier(parts) if parts.len() > 1 => {
            Some(parts[parts.len() - 2].value.as_str())
        }
        _ => None,
    };
    tables
        .iter()
        .filter(|t| match qualifier {
            Some(q) => t.alias.as_deref() == Some(q) || t.table.name == q,
            None => true,
        })
        .find_map(|t| {
            let c = t.table.columns.iter().find(|c| c.name == name)?;
            Some((t.table, c))
        })
}

fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn literal(text: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(text.to_string()))
}

fn call(function: &str, arg: Expr) -> Expr {
    parse_expr(&format!("{function}({arg})")).unwrap_or(arg)
}

fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&ClickHouseDialect {})
        .try_with_sql(text)
        .ok()?
        .parse_expr()
        .ok()
}

/// Every string literal and number in an expression tree.
fn literals<T: sqlparser::ast::Visit>(node: &T) -> Vec<String> {
    let mut out = Vec::new();
    let _ = sqlparser::ast::visit_expressions(node, |e| {
        if let Expr::Value(v) = e {
            match &v.value {
                Value::SingleQuotedString(s) => out.push(s.clone()),
                Value::Number(n, _) => out.push(n.to_string()),
                _ => {}
            }
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

fn references_column<T: sqlparser::ast::Visit>(node: &T, column: &str) -> bool {
    sqlparser::ast::visit_expressions(node, |e| {
        if column_name(e) == Some(column) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// The conditions of a WHERE joined by AND.
fn conjuncts(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner, out)
        }
        other => out.push(other),
    }
}

fn and_all(mut conditions: Vec<Expr>) -> Option<Expr> {
    if conditions.is_empty() {
        return None;
    }
    let first = conditions.remove(0);
    let wrap = |e: Expr| match e {
        e @ Expr::BinaryOp {
            op: BinaryOperator::Or,
            ..
        } => Expr::Nested(Box::new(e)),
        e => e,
    };
    Some(
        conditions
            .into_iter()
            .fold(wrap(first), |acc, c| Expr::BinaryOp {
                left: Box::new(acc),
                op: BinaryOperator::And,
                right: Box::new(wrap(c)),
            }),
    )
}

fn add_condition(select: &mut Select, condition: Expr) {
    let mut all = Vec::new();
    if let Some(existing) = select.selection.take() {
        conjuncts(existing, &mut all);
    }
    all.push(condition);
    select.selection = and_all(all);
}

/// Time units a column may be made up for, and the bucket that computes it.
const TIME_UNITS: &[(&str, &str)] = &[
    ("minute", "toStartOfMinute"),
    ("hour", "toStartOfHour"),
    ("day", "toDate"),
    ("date", "toDate"),
    ("week", "toMonday"),
    ("month", "toStartOfMonth"),
    ("year", "toYear"),
];

fn wants_calendar_month(question: &QuestionText) -> bool {
    ["calendar month", "month of the year", "month of year"]
        .iter()
        .any(|p| question.lower.contains(p))
}

fn bucket_for_unit(unit: &str, question: &QuestionText) -> Option<&'static str> {
    if unit == "month" && wants_calendar_month(question) {
        return Some("toMonth");
    }
    TIME_UNITS.iter().find(|(u, _)| *u == unit).map(|(_, f)| *f)
}

/// A column the model made up: a time unit of the one time column (`year` →
/// `toYear(date)`), an abbreviation of one column's name (`mpg` → `miles_per_gallon`), or
/// one column's name in another number (`cylinder` → `cylinders`).
fn replace_unknown_column(
    sql: &str,
    name: &str,
    question: &QuestionText,
    ctx: &Fit<'_>,
) -> Option<(String, String)> {
    edit_query(sql, ctx, |query, tables| {
        replace_column_in(query, &tables, name, question)
    })
}

/// Parses `sql` as one SELECT, lets `edit` change it (its note, or `None` for no change),
/// and renders it again.
fn edit_query(
    sql: &str,
    ctx: &Fit<'_>,
    edit: impl FnOnce(&mut sqlparser::ast::Query, Vec<QueryTable<'_>>) -> Option<String>,
) -> Option<(String, String)> {
    let mut statements = Parser::parse_sql(&ClickHouseDialect {}, sql).ok()?;
    let [Statement::Query(query)] = statements.as_mut_slice() else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let tables = query_tables(select, ctx);
    let note = edit(query, tables)?;
    Some((statements[0].to_string(), note))
}

fn replace_column_in(
    query: &mut sqlparser::ast::Query,
    tables: &[QueryTable<'_>],
    name: &str,
    question: &QuestionText,
) -> Option<String> {
    let lower = name.to_lowercase();
    let columns: Vec<(&QueryTable<'_>, &ColumnInfo)> = tables
        .iter()
        .flat_map(|t| t.table.columns.iter().map(move |c| (t, c)))
        .collect();
    let unique = |found: Vec<&(&QueryTable<'_>, &ColumnInfo)>| match found.as_slice() {
        [one] => Some(one.1.name.clone()),
        _ => None,
    };
    // What replaces the made-up name: an expression, or a real column (keeping `x.`).
    let (bucket, column) = if let (Some(bucket), Some(time)) =
        (bucket_for_unit(&lower, question), time_column(tables))
    {
        (Some(call(bucket, time)), None)
    } else {
        let abbreviation = unique(
            columns
                .iter()
                .filter(|(_, c)| {
                    c.name.contains('_') && lower.len() >= 2 && initials(&c.name) == lower
                })
                .collect(),
        );
        let other_number = || {
            unique(
                columns
                    .iter()
                    .filter(|(_, c)| stem(&c.name.to_lowercase()) == stem(&lower))
                    .collect(),
            )
        };
        (None, Some(abbreviation.or_else(other_number)?))
    };
    let replacement = |qualifier: Option<&Ident>| match (&bucket, &column, qualifier) {
        (Some(expr), _, _) => expr.clone(),
        (None, Some(c), Some(q)) => Expr::CompoundIdentifier(vec![q.clone(), Ident::new(c)]),
        (None, c, _) => Expr::Identifier(Ident::new(c.as_deref().unwrap_or(name))),
    };
    let note = match (&bucket, &column) {
        (Some(expr), _) => format!("`{name}` is not a column: used {expr}"),
        (None, c) => format!(
            "`{name}` is not a column: used `{}`",
            c.as_deref().unwrap_or(name)
        ),
    };
    // A selected made-up column keeps its name as an alias.
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    for item in &mut select.projection {
        if let SelectItem::UnnamedExpr(e @ Expr::Identifier(_)) = item {
            if column_name(e) == Some(name) {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::new(name),
                };
            }
        }
    }
    let _ = sqlparser::ast::visit_expressions_mut(query, |e| {
        match e {
            Expr::Identifier(i) if i.value == name => *e = replacement(None),
            Expr::CompoundIdentifier(parts)
                if parts.len() == 2 && parts.last().is_some_and(|i| i.value == name) =>
            {
                let qualifier = parts[0].clone();
                *e = replacement(Some(&qualifier));
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Some(note)
}

/// `WHERE city = 'Seattle'` on a table with no `city` column, whose comments say it holds
/// Seattle's data: the condition is what the table is, and is dropped.
fn drop_implied_condition(sql: &str, name: &str, ctx: &Fit<'_>) -> Option<(String, String)> {
    edit_query(sql, ctx, |query, tables| {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return None;
        };
        drop_implied_in(select, &tables, name)
    })
}

fn drop_implied_in(select: &mut Select, tables: &[QueryTable<'_>], name: &str) -> Option<String> {
    let comments: String = tables
        .iter()
        .flat_map(|t| t.table.columns.iter().map(|c| c.comment.to_lowercase()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut all = Vec::new();
    conjuncts(select.selection.take()?, &mut all);
    let mut dropped = None;
    all.retain(|c| {
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        else {
            return true;
        };
        let implied = column_name(left) == Some(name)
            && string_literal(right)
                .is_some_and(|v| v.len() > 2 && comments.contains(&v.to_lowercase()));
        if implied {
            dropped = Some(c.to_string());
        }
        !implied
    });
    select.selection = and_all(all);
    Some(format!(
        "dropped {}: there is no `{name}` column, and the table's comments say all its data is that",
        dropped?
    ))
}

/// Functions that bucket a time, by the unit they bucket to.
const BUCKETS: &[(&str, &str)] = &[
    ("tostartofminute", "minute"),
    ("tostartofhour", "hour"),
    ("todate", "day"),
    ("tostartofday", "day"),
    ("tomonday", "week"),
    ("tostartofweek", "week"),
    ("tostartofmonth", "month"),
    ("tostartofyear", "year"),
    ("toyear", "year"),
];

fn function_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Function(f) => Some(f.name.to_string().to_lowercase()),
        _ => None,
    }
}

fn is_bucket(expr: &Expr) -> bool {
    function_name(expr).is_some_and(|f| {
        BUCKETS.iter().any(|(b, _)| *b == f) || matches!(f.as_str(), "tomonth" | "tohour")
    })
}

/// `toDate(t) AS month` → `toStartOfMonth(t) AS month`: the alias says the unit meant; also
/// `toStartOfYear(t) AS year` → `toYear(t)`, and a calendar month asked for → `toMonth(t)`.
fn bucket_names(
    select: &mut Select,
    order: &mut [OrderByExpr],
    question: &QuestionText,
) -> Option<String> {
    let mut changes: Vec<(Expr, Expr)> = Vec::new();
    for item in &select.projection {
        let SelectItem::ExprWithAlias { expr, alias } = item else {
            continue;
        };
        let Some(function) = function_name(expr) else {
            continue;
        };
        let unit = alias.value.to_lowercase();
        let Some(wanted) = bucket_for_unit(&unit, question) else {
            continue;
        };
        let current = BUCKETS.iter().find(|(b, _)| *b == function);
        // `toMonth`/`toHour` are parts of a date, not buckets: left as written.
        if current.is_none() || function == wanted.to_lowercase() {
            continue;
        }
        let copies = select
            .projection
            .iter()
            .filter(|i| matches!(i, SelectItem::ExprWithAlias { expr: e, .. } | SelectItem::UnnamedExpr(e) if e == expr))
            .count();
        if copies > 1 {
            // The same bucket under two names: which one is meant is not clear.
            continue;
        }
        let Expr::Function(f) = expr else { continue };
        let sqlparser::ast::FunctionArguments::List(args) = &f.args else {
            continue;
        };
        let [arg] = args.args.as_slice() else {
            continue;
        };
        let Some(new) = parse_expr(&format!("{wanted}({arg})")) else {
            continue;
        };
        changes.push((expr.clone(), new));
    }
    if changes.is_empty() {
        return None;
    }
    let mut notes = Vec::new();
    for (old, new) in &changes {
        replace_everywhere(select, order, old, new);
        notes.push(format!("{old} → {new}"));
    }
    Some(format!("bucket named by its alias: {}", notes.join(", ")))
}

/// Replaces every copy of `old` in the SELECT (and its ORDER BY) with `new`.
fn replace_everywhere(select: &mut Select, order: &mut [OrderByExpr], old: &Expr, new: &Expr) {
    let old_text = old.to_string();
    let mut swap = |e: &mut Expr| {
        if e.to_string() == old_text {
            *e = new.clone();
        }
        ControlFlow::<()>::Continue(())
    };
    let _ = sqlparser::ast::visit_expressions_mut(select, &mut swap);
    for o in order.iter_mut() {
        let _ = sqlparser::ast::visit_expressions_mut(&mut o.expr, &mut swap);
    }
}

/// Words that ask for one figure per group or bucket.
const PER_WORDS: &[&str] = &[
    "each", "per", "by", "daily", "hourly", "weekly", "monthly", "yearly", "every",
];

/// `GROUP BY event_type` for "the median purchase amount": the question names one value of
/// the column and not the column, so it asks about that value, not about each one.
fn filter_not_group(
    select: &mut Select,
    order: &mut Vec<OrderByExpr>,
    question: &QuestionText,
    ctx: &Fit<'_>,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return None;
    };
    let all_literals = literals(&*select);
    let (index, value) = groups.iter().enumerate().find_map(|(i, g)| {
        let (table, column) = resolve(g, tables)?;
        let named: Vec<&str> = ctx
            .linked
            .values
            .iter()
            .filter(|v| v.column == column.name && v.table == table.qualified_name())
            .map(|v| v.value.as_str())
            .collect();
        let [value] = named.as_slice() else {
            return None;
        };
        let column_words = words(&column.name.replace('_', " "));
        let column_named = column_words
            .iter()
            .any(|w| !is_stop_word(w) && question.words.contains(w));
        let used = all_literals.iter().any(|l| l.eq_ignore_ascii_case(value));
        (!column_named && !used).then(|| (i, value.to_string()))
    })?;
    let GroupByExpr::Expressions(groups, _) = &mut select.group_by else {
        return None;
    };
    let grouped = groups.remove(index);
    let grouped_name = column_name(&grouped)?.to_string();
    select.projection.retain(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            column_name(e) != Some(grouped_name.as_str())
        }
        _ => true,
    });
    order.retain(|o| column_name(&o.expr) != Some(grouped_name.as_str()));
    let note = format!("filtered on {grouped} = '{value}' instead of grouping by it");
    add_condition(
        select,
        Expr::BinaryOp {
            left: Box::new(grouped),
            op: BinaryOperator::Eq,
            right: Box::new(literal(&value)),
        },
    );
    Some(note)
}

/// `WHERE weather = 'drizzle'` when the question says nothing of drizzle: a condition on a
/// value of a low-cardinality column the question does not name is dropped.
fn unnamed_values(
    select: &mut Select,
    question: &QuestionText,
    ctx: &Fit<'_>,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let existing = select.selection.clone()?;
    let mut all = Vec::new();
    conjuncts(existing, &mut all);
    let mut dropped = Vec::new();
    all.retain(|c| {
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        else {
            return true;
        };
        let (column, value) = match (string_literal(left), string_literal(right)) {
            (None, Some(v)) => (left.as_ref(), v),
            (Some(v), None) => (right.as_ref(), v),
            _ => return true,
        };
        let Some((table, info)) = resolve(column, tables) else {
            return true;
        };
        let sampled = ctx.samples.get(table, &info.name).is_some();
        let linked = ctx.linked.values.iter().any(|v| {
            v.column == info.name && v.table == table.qualified_name() && v.value == value
        });
        // A code ('DE', 'AAPL') may stand for a name the question spells out (Germany).
        let code = value.chars().any(char::is_alphabetic)
            && value
                .chars()
                .all(|c| !c.is_alphabetic() || c.is_uppercase());
        // "add-to-cart" names `add_to_cart`, not the page '/cart' inside it.
        let inside_named = ctx.linked.values.iter().any(|v| {
            let (longer, shorter) = (flat(&v.value), flat(value));
            longer.len() > shorter.len() && longer.contains(&shorter)
        });
        if sampled && !linked && !code && (!question.names(value) || inside_named) {
            dropped.push(c.to_string());
            return false;
        }
        true
    });
    if dropped.is_empty() {
        return None;
    }
    select.selection = and_all(all);
    Some(format!(
        "dropped {}: the question does not name it",
        dropped.join(" AND ")
    ))
}

/// A value the question names ("purchases" → `event_type = 'purchase'`) that the query
/// neither filters on nor otherwise uses: its condition is added.
fn named_values(select: &mut Select, ctx: &Fit<'_>, tables: &[QueryTable<'_>]) -> Option<String> {
    let all_literals = literals(&*select);
    let mut added = Vec::new();
    for value in &ctx.linked.values {
        let Some(t) = tables
            .iter()
            .find(|t| t.table.qualified_name() == value.table)
        else {
            continue;
        };
        let several = ctx
            .linked
            .values
            .iter()
            .filter(|v| v.column == value.column && v.table == value.table)
            .count()
            > 1;
        // "per product name" names the products table, not the page '/product'.
        let schema_words: BTreeSet<String> = tables
            .iter()
            .flat_map(|t| {
                std::iter::once(t.table.name.as_str())
                    .chain(t.table.columns.iter().map(|c| c.name.as_str()))
            })
            .flat_map(|name| words(&name.replace('_', " ")))
            .collect();
        let ambiguous = words(&value.value).iter().any(|w| schema_words.contains(w));
        if several
            || ambiguous
            || all_literals
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&value.value))
            || references_column(&*select, &value.column)
        {
            continue;
        }
        let condition = Expr::BinaryOp {
            left: Box::new(t.column_expr(&value.column)),
            op: BinaryOperator::Eq,
            right: Box::new(literal(&value.value)),
        };
        added.push(condition.to_string());
        add_condition(select, condition);
    }
    (!added.is_empty()).then(|| format!("added {}: the question names it", added.join(" AND ")))
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Dates the question names: whole days (`2026-11-20`, "November 20, 2026", "20 Nov
/// 2026"), months ("March 2014") and years ("in 2013").
#[derive(Debug, Default, PartialEq)]
struct NamedDates {
    days: Vec<String>,
    months: Vec<String>,
    years: Vec<u32>,
}

fn named_dates_in(question: &str) -> NamedDates {
    let tokens: Vec<String> = question
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.trim_matches(|c: char| !c.is_alphanumeric() && c != '-')
                .to_lowercase()
        })
        .collect();
    let month_of = |t: &str| -> Option<u32> {
        if t.len() < 3 {
            return None;
        }
        MONTHS
            .iter()
            .position(|m| t.starts_with(m) && (t.len() == 3 || t.starts_with(&m[..3])))
            .filter(|_| t.chars().all(|c| c.is_ascii_alphabetic()))
            .map(|i| i as u32 + 1)
    };
    let day_of = |t: &str| -> Option<u32> {
        let digits = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let d: u32 = digits.parse().ok()?;
        (digits.len() <= 2 && (1..=31).contains(&d)).then_some(d)
    };
    let year_of = |t: &str| -> Option<u32> {
        let y: u32 = t.parse().ok()?;
        (t.len() == 4 && (1900..=2100).contains(&y)).then_some(y)
    };
    let mut out = NamedDates::default();
    let mut used = vec![false; tokens.len()];
    for (i, t) in tokens.iter().enumerate() {
        // ISO dates.
        let parts: Vec<&str> = t.split('-').collect();
        if let [y, m, d] = parts.as_slice() {
            if let (Some(y), Ok(m), Some(d)) = (year_of(y), m.parse::<u32>(), day_of(d)) {
                out.days.push(format!("{y:04}-{m:02}-{d:02}"));
                used[i] = true;
            }
            continue;
        }
        let Some(m) = month_of(t) else { continue };
        let next = |k: usize| tokens.get(i + k).map(String::as_str);
        let prev = i
            .checked_sub(1)
            .and_then(|k| tokens.get(k))
            .map(String::as_str);
        if let (Some(d), Some(y)) = (next(1).and_then(day_of), next(2).and_then(year_of)) {
            out.days.push(format!("{y:04}-{m:02}-{d:02}"));
            used[i..=i + 2].iter_mut().for_each(|u| *u = true);
        } else if let (Some(d), Some(y)) = (prev.and_then(day_of), next(1).and_then(year_of)) {
            out.days.push(format!("{y:04}-{m:02}-{d:02}"));
            used[i - 1..=i + 1].iter_mut().for_each(|u| *u = true);
        } else if let Some(y) = next(1).and_then(year_of) {
            out.months.push(format!("{y:04}-{m:02}-01"));
            used[i..=i + 1].iter_mut().for_each(|u| *u = true);
        }
    }
    for (i, t) in tokens.iter().enumerate() {
        let after_preposition = i
            .checked_sub(1)
            .and_then(|k| tokens.get(k))
            .is_some_and(|p| matches!(p.as_str(), "in" | "of" | "during" | "for"));
        if let (false, Some(y), true) = (used[i], year_of(t), after_preposition) {
            out.years.push(y);
        }
    }
    out
}

/// A day, month or year the question names, which the query does not filter on: its
/// condition is added. Conditions on the time column that stay inside that period (an
/// off-by-one `date < '2013-12-31'`) are replaced by the whole period.
fn named_dates(
    select: &mut Select,
    question: &QuestionText,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let ranges = [
        "since", "after", "before", "until", "till", "between", "from", "through",
    ];
    if question.has_any(&ranges) || question.lower.contains(':') {
        return None;
    }
    let named = named_dates_in(&question.lower);
    let time = time_column(tables)?;
    let (condition, prefix) = match (
        named.days.as_slice(),
        named.months.as_slice(),
        named.years.as_slice(),
    ) {
        ([day], [], []) => (
            Expr::BinaryOp {
                left: Box::new(call("toDate", time.clone())),
                op: BinaryOperator::Eq,
                right: Box::new(literal(day)),
            },
            day.clone(),
        ),
        ([], [month], []) => (
            Expr::BinaryOp {
                left: Box::new(call("toStartOfMonth", time.clone())),
                op: BinaryOperator::Eq,
                right: Box::new(literal(month)),
            },
            month[..7].to_string(),
        ),
        ([], [], [year]) => (
            parse_expr(&format!("toYear({time}) = {year}"))?,
            year.to_string(),
        ),
        _ => return None,
    };
    let time_name = column_name(&time)?.to_string();
    let mut all = Vec::new();
    if let Some(existing) = select.selection.clone() {
        conjuncts(existing, &mut all);
    }
    if all.iter().any(|c| c.to_string() == condition.to_string()) {
        return None;
    }
    select.selection = None;
    // Conditions on the time column whose literals all lie in the period are replaced.
    let inside = |c: &Expr| {
        let lits = literals(c);
        references_column(c, &time_name)
            && !lits.is_empty()
            && lits.iter().all(|l| l.starts_with(&prefix))
    };
    let replaced: Vec<String> = all
        .iter()
        .filter(|c| inside(c))
        .map(|c| c.to_string())
        .collect();
    all.retain(|c| !inside(c));
    let still_named = all
        .iter()
        .any(|c| literals(c).iter().any(|l| l.contains(&prefix)))
        || literals(&*select).iter().any(|l| l.contains(&prefix));
    if still_named {
        // The period is already used elsewhere (a countIf, a join): nothing to add.
        if replaced.is_empty() {
            select.selection = and_all(all);
            return None;
        }
    }
    let note = if replaced.is_empty() {
        format!("added {condition}: the question names that period")
    } else {
        format!("{condition} instead of {}", replaced.join(" AND "))
    };
    all.push(condition);
    select.selection = and_all(all);
    Some(note)
}

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "median",
    "min",
    "max",
    "any",
    "anylast",
    "argmin",
    "argmax",
    "uniq",
    "uniqexact",
    "uniqcombined",
    "grouparray",
    "stddevpop",
    "stddevsamp",
    "varpop",
    "varsamp",
    "topk",
];

fn is_aggregate(name: &str) -> bool {
    let name = name.to_lowercase();
    let base = name.strip_suffix("if").unwrap_or(&name);
    AGGREGATES.contains(&base) || name.starts_with("quantile")
}

fn has_aggregate<T: sqlparser::ast::Visit>(node: &T) -> bool {
    sqlparser::ast::visit_expressions(node, |e| match e {
        Expr::Function(f) if is_aggregate(&f.name.to_string()) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `SELECT toDate(t) AS day, revenue ...` for "revenue for each day", or `SELECT wind ...
/// ORDER BY wind DESC LIMIT 1` for "the median wind speed": bare numbers and no aggregate at
/// all, next to a bucket or where the question asks for a total, average or median. The
/// numbers are summed (averaged, or their median taken, when the question says so) and the
/// query grouped by the rest; with nothing to group by, the ordering and limit go.
fn aggregate_buckets(
    select: &mut Select,
    order: &mut Vec<OrderByExpr>,
    limit: &mut Option<sqlparser::ast::LimitClause>,
    question: &QuestionText,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let grouped = matches!(&select.group_by, GroupByExpr::Expressions(g, _) if !g.is_empty())
        || matches!(&select.group_by, GroupByExpr::All(_));
    if grouped || select.having.is_some() || has_aggregate(&select.projection) {
        return None;
    }
    let items: Vec<(&Expr, Option<&Ident>)> = select
        .projection
        .iter()
        .map(item_parts)
        .collect::<Option<_>>()?;
    let bucketed = items.iter().any(|(e, _)| is_bucket(e));
    let named = if question.has_any(&["average", "mean", "avg"]) {
        Some("avg")
    } else if question.has_any(&["median"]) {
        Some("median")
    } else if question.has_any(&["total", "sum"]) {
        Some("sum")
    } else {
        None
    };
    let asks_per =
        question.has_any(PER_WORDS) || question.has_any(&["highest", "lowest", "most", "least"]);
    let function = match (bucketed && asks_per, named) {
        (_, Some(f)) if bucketed || !asks_per => f,
        (true, None) => "sum",
        _ => return None,
    };
    let numeric: Vec<bool> = items
        .iter()
        .map(|(e, _)| {
            resolve(e, tables).is_some_and(|(_, c)| {
                c.data_type().is_some_and(|d| d.is_numeric()) && !c.is_key_like()
            })
        })
        .collect();
    let wrapped: Vec<(String, String)> = items
        .iter()
        .zip(&numeric)
        .filter(|(_, n)| **n)
        .filter_map(|((e, alias), _)| {
            let column = column_name(e)?.to_string();
            let alias = alias.map_or_else(|| column.clone(), |a| a.value.clone());
            Some((column, alias))
        })
        .collect();
    let groups: Vec<Expr> = items
        .iter()
        .zip(&numeric)
        .filter(|(_, n)| !**n)
        .map(|((e, alias), _)| match alias {
            Some(a) => Expr::Identifier((*a).clone()),
            None => (*e).clone(),
        })
        .collect();
    let in_where = wrapped.iter().any(|(c, _)| {
        select
            .selection
            .as_ref()
            .is_some_and(|w| references_column(w, c))
    });
    if wrapped.is_empty() || (bucketed && groups.is_empty()) || in_where {
        return None;
    }
    for (item, is_number) in select.projection.iter_mut().zip(&numeric) {
        if !is_number {
            continue;
        }
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e.clone(), None),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            _ => continue,
        };
        let alias = alias.unwrap_or_else(|| Ident::new(column_name(&expr).unwrap_or("value")));
        *item = SelectItem::ExprWithAlias {
            expr: call(function, expr),
            alias,
        };
    }
    if groups.is_empty() {
        // One row: an order or limit of the bare rows means nothing any more.
        order.clear();
        *limit = None;
    } else {
        for o in order.iter_mut() {
            if let Some((_, alias)) = wrapped
                .iter()
                .find(|(c, _)| column_name(&o.expr) == Some(c.as_str()))
            {
                o.expr = Expr::Identifier(Ident::new(alias));
            }
        }
        select.group_by = GroupByExpr::Expressions(groups, Vec::new());
    }
    let names: Vec<&str> = wrapped.iter().map(|(c, _)| c.as_str()).collect();
    Some(format!(
        "{function} of {}: the query had no aggregate",
        names.join(", ")
    ))
}

/// `SELECT avg(x) ... GROUP BY year`: a grouped query that does not show its groups. The
/// keys go first in the select list.
fn shown_groups(select: &mut Select) -> Option<String> {
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return None;
    };
    if select.projection.iter().any(|i| item_parts(i).is_none()) {
        return None;
    }
    let shown: BTreeSet<String> = select.projection.iter().flat_map(item_names).collect();
    let missing: Vec<Expr> = groups
        .iter()
        .filter(|g| {
            !shown.contains(&g.to_string()) && !column_name(g).is_some_and(|c| shown.contains(c))
        })
        .cloned()
        .collect();
    if missing.is_empty() {
        return None;
    }
    let note = format!(
        "selected the group key {}",
        missing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (i, g) in missing.into_iter().enumerate() {
        select.projection.insert(i, SelectItem::UnnamedExpr(g));
    }
    Some(note)
}

/// `SELECT symbol, max(price), toStartOfMonth(date) ... GROUP BY symbol`: a column that is
/// neither grouped nor aggregated (ClickHouse error 215). Next to one `max(x)`/`min(x)` it is
/// read at that extreme (`argMax(.., x)`); pinned to one value by the WHERE it is dropped;
/// with no GROUP BY at all the query is grouped by it; otherwise it is dropped.
fn ungrouped_columns(select: &mut Select, tables: &[QueryTable<'_>]) -> Option<String> {
    if !has_aggregate(&select.projection) {
        return None;
    }
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return None;
    };
    let grouped: BTreeSet<String> = groups.iter().map(ToString::to_string).collect();
    let mut pinned = BTreeSet::new();
    if let Some(w) = &select.selection {
        let mut all = Vec::new();
        conjuncts(w.clone(), &mut all);
        for c in all {
            if let Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } = c
            {
                if matches!(*right, Expr::Value(_)) {
                    pinned.extend(column_name(&left).map(str::to_string));
                }
            }
        }
    }
    let mut extremes = Vec::new();
    let _ = sqlparser::ast::visit_expressions(&select.projection, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_lowercase();
            if let ("max" | "min", sqlparser::ast::FunctionArguments::List(list)) =
                (name.as_str(), &f.args)
            {
                if let [arg] = list.args.as_slice() {
                    extremes.push((
                        if name == "max" { "argMax" } else { "argMin" },
                        arg.to_string(),
                    ));
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    enum Fix {
        Keep,
        Drop,
        At(Expr),
        Group(Expr),
    }
    let only_columns = |e: &Expr| {
        let mut any = false;
        let unresolved = sqlparser::ast::visit_expressions(e, |x| {
            if matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                any = true;
                if resolve(x, tables).is_none() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })
        .is_break();
        any && !unresolved
    };
    let mut fixes = Vec::new();
    for item in &select.projection {
        let (expr, alias) = item_parts(item)?;
        let in_groups = grouped.contains(&expr.to_string())
            || alias.is_some_and(|a| grouped.contains(&a.value))
            || column_name(expr).is_some_and(|c| grouped.iter().any(|g| g.ends_with(c)));
        if in_groups || has_aggregate(expr) || !only_columns(expr) {
            fixes.push(Fix::Keep);
        } else if column_name(expr).is_some_and(|c| pinned.contains(c)) {
            fixes.push(Fix::Drop);
        } else if let [(function, of)] = extremes.as_slice() {
            fixes.push(Fix::At(parse_expr(&format!("{function}({expr}, {of})"))?));
        } else if groups.is_empty() {
            fixes.push(Fix::Group(match alias {
                Some(a) => Expr::Identifier(a.clone()),
                None => expr.clone(),
            }));
        } else {
            fixes.push(Fix::Drop);
        }
    }
    if fixes.iter().all(|f| matches!(f, Fix::Keep)) {
        return None;
    }
    let mut notes = Vec::new();
    let mut new_groups = Vec::new();
    let items = std::mem::take(&mut select.projection);
    for (item, fix) in items.into_iter().zip(fixes) {
        match fix {
            Fix::Keep => select.projection.push(item),
            Fix::Drop => notes.push(format!(
                "dropped {item}, which was neither grouped nor aggregated"
            )),
            Fix::At(at) => {
                let (expr, alias) = match item {
                    SelectItem::ExprWithAlias { expr, alias } => (expr, alias),
                    SelectItem::UnnamedExpr(e) => {
                        let alias = Ident::new(column_name(&e).unwrap_or("value"));
                        (e, alias)
                    }
                    other => {
                        select.projection.push(other);
                        continue;
                    }
                };
                notes.push(format!("{expr} read at the extreme: {at}"));
                select
                    .projection
                    .push(SelectItem::ExprWithAlias { expr: at, alias });
            }
            Fix::Group(g) => {
                notes.push(format!("grouped by {g}"));
                new_groups.push(g);
                select.projection.push(item);
            }
        }
    }
    if !new_groups.is_empty() {
        select.group_by = GroupByExpr::Expressions(new_groups, Vec::new());
    }
    Some(notes.join("; "))
}

/// Words that ask for the one group at the top (`DESC`) or bottom (`ASC`) of a ranking.
const MOST: &[&str] = &[
    "highest", "most", "largest", "biggest", "greatest", "warmest", "hottest", "wettest",
    "rainiest", "busiest", "windiest", "longest", "maximum",
];
const LEAST: &[&str] = &[
    "lowest", "least", "fewest", "smallest", "coldest", "driest", "cheapest", "shortest",
    "minimum", "quietest",
];

/// "Which month was the wettest?" answered with every month, or with the last month (ordered
/// by the month): a grouped query with one aggregate, ordered by nothing or by its group keys,
/// is ordered by that aggregate, and cut to one row when it had no limit.
fn superlative(
    select: &mut Select,
    order: &mut Vec<OrderByExpr>,
    limit: &mut Option<sqlparser::ast::LimitClause>,
    question: &QuestionText,
) -> Option<String> {
    let mut words = question.lower.split_whitespace();
    let (first, second) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    // "Which countries have the most ..." asks for a ranking, not for one.
    let plural = second.len() > 3 && second.ends_with('s') && !second.ends_with("ss");
    if !matches!(first, "which" | "what") || plural {
        return None;
    }
    let direction = if question.has_any(MOST) {
        "DESC"
    } else if question.has_any(LEAST) {
        "ASC"
    } else {
        return None;
    };
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return None;
    };
    if groups.is_empty() {
        return None;
    }
    let keys: BTreeSet<String> = groups
        .iter()
        .map(ToString::to_string)
        .chain(
            select
                .projection
                .iter()
                .filter(|i| item_parts(i).is_some_and(|(e, _)| !has_aggregate(e)))
                .flat_map(item_names),
        )
        .collect();
    let aggregates = aggregate_refs(select);
    let by_keys = !order.is_empty() && order.iter().all(|o| keys.contains(&o.expr.to_string()));
    if limit.is_some() && !by_keys {
        return None;
    }
    let [by] = aggregates.as_slice() else {
        return None;
    };
    let ordered = Parser::new(&ClickHouseDialect {})
        .try_with_sql(&format!("{by} {direction}"))
        .ok()?
        .parse_order_by_expr()
        .ok()?;
    *order = vec![ordered];
    if limit.is_none() {
        *limit = Some(sqlparser::ast::LimitClause::LimitOffset {
            limit: Some(Expr::value(Value::Number("1".into(), false))),
            offset: None,
            limit_by: Vec::new(),
        });
    }
    Some(format!(
        "ORDER BY {by} {direction}: the question asks for the top one"
    ))
}

/// The rank of a time bucket's unit, finest first.
fn unit_rank(unit: &str) -> usize {
    ["minute", "hour", "day", "week", "month", "year"]
        .iter()
        .position(|u| *u == unit)
        .unwrap_or(usize::MAX)
}

/// `toStartOfHour(t) AS hour, toStartOfDay(t) AS date`: a coarser bucket of the same time
/// next to a finer one adds a column and nothing else; it is dropped (also from GROUP BY
/// and ORDER BY).
fn redundant_buckets(select: &mut Select, order: &mut Vec<OrderByExpr>) -> Option<String> {
    let bucket = |item: &SelectItem| -> Option<(usize, String, Vec<String>)> {
        let (expr, _) = item_parts(item)?;
        let Expr::Function(f) = expr else { return None };
        let name = f.name.to_string().to_lowercase();
        let unit = BUCKETS.iter().find(|(b, _)| *b == name)?.1;
        let sqlparser::ast::FunctionArguments::List(list) = &f.args else {
            return None;
        };
        let [arg] = list.args.as_slice() else {
            return None;
        };
        let names = item_names(item);
        Some((unit_rank(unit), arg.to_string(), names))
    };
    let buckets: Vec<Option<(usize, String, Vec<String>)>> =
        select.projection.iter().map(bucket).collect();
    let mut drop = vec![false; buckets.len()];
    for (i, b) in buckets.iter().enumerate() {
        let Some((rank, arg, _)) = b else { continue };
        // Dropped when another bucket of the same time is finer, or as fine and earlier.
        drop[i] = buckets.iter().enumerate().any(|(j, other)| {
            other
                .as_ref()
                .is_some_and(|(r, a, _)| j != i && a == arg && (r < rank || (r == rank && j < i)))
        });
    }
    if !drop.contains(&true) {
        return None;
    }
    let dropped_names: BTreeSet<String> = buckets
        .iter()
        .zip(&drop)
        .filter(|(_, d)| **d)
        .flat_map(|(b, _)| b.as_ref().map(|(_, _, n)| n.clone()).unwrap_or_default())
        .collect();
    let mut notes = Vec::new();
    let items = std::mem::take(&mut select.projection);
    for (item, d) in items.into_iter().zip(drop) {
        if d {
            notes.push(item.to_string());
        } else {
            select.projection.push(item);
        }
    }
    if let GroupByExpr::Expressions(groups, _) = &mut select.group_by {
        groups.retain(|g| !dropped_names.contains(&g.to_string()));
    }
    order.retain(|o| !dropped_names.contains(&o.expr.to_string()));
    Some(format!(
        "dropped {}: a finer bucket of the same time is selected",
        notes.join(", ")
    ))
}

/// "On how many days was there frost?" answered day by day: a "how many" question that asks
/// for no breakdown (no "each", "per", "by", ...) gets one count, not one per time bucket.
fn one_count(
    select: &mut Select,
    order: &mut Vec<OrderByExpr>,
    question: &QuestionText,
) -> Option<String> {
    // "Which hour had the most events, and how many?" asks for the top bucket and its count.
    if !question.lower.contains("how many")
        || question.has_any(PER_WORDS)
        || question.has_any(MOST)
        || question.has_any(LEAST)
    {
        return None;
    }
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return None;
    };
    let buckets: Vec<&SelectItem> = select
        .projection
        .iter()
        .filter(|i| item_parts(i).is_some_and(|(e, _)| is_bucket(e)))
        .collect();
    let bucket_names: BTreeSet<String> = buckets.iter().flat_map(|i| item_names(i)).collect();
    let only_buckets = !groups.is_empty()
        && groups
            .iter()
            .all(|g| bucket_names.contains(&g.to_string()) || is_bucket(g));
    if !only_buckets || buckets.len() == select.projection.len() {
        return None;
    }
    let dropped: Vec<String> = buckets.iter().map(ToString::to_string).collect();
    select
        .projection
        .retain(|i| !item_parts(i).is_some_and(|(e, _)| is_bucket(e)));
    select.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
    order.retain(|o| !bucket_names.contains(&o.expr.to_string()) && !is_bucket(&o.expr));
    Some(format!(
        "one count, not one per {}: the question asks for no breakdown",
        dropped.join(", ")
    ))
}

/// The one argument of a call to `function` (any case): `sum(x)` → `x`.
fn function_arg<'e>(expr: &'e Expr, function: &str) -> Option<&'e Expr> {
    let Expr::Function(f) = expr else {
        return None;
    };
    if !f.name.to_string().eq_ignore_ascii_case(function) {
        return None;
    }
    let sqlparser::ast::FunctionArguments::List(list) = &f.args else {
        return None;
    };
    match list.args.as_slice() {
        [sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e))] => Some(e),
        _ => None,
    }
}

/// `round(revenue / sum(revenue) * 100, 2)` per device, which the server refuses (error 215:
/// `revenue` is neither grouped nor aggregated): a column divided by its own sum in a grouped
/// query asks for each group's share of the total. It becomes `sum(revenue) / (SELECT
/// sum(revenue) FROM … WHERE …)`, the total of the same rows. Decimals are summed as floats:
/// ClickHouse 18.16 cannot divide by a Decimal scalar subquery.
fn share_of_total(select: &mut Select, tables: &[QueryTable<'_>]) -> Option<String> {
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return None;
    };
    if groups.is_empty() {
        return None;
    }
    let grouped: BTreeSet<String> = groups.iter().map(ToString::to_string).collect();
    let from: Vec<String> = select.from.iter().map(ToString::to_string).collect();
    let filter = select
        .selection
        .as_ref()
        .map(|w| format!(" WHERE {w}"))
        .unwrap_or_default();
    let mut notes = Vec::new();
    for item in &mut select.projection {
        let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item else {
            continue;
        };
        let _ = sqlparser::ast::visit_expressions_mut(expr, |e| {
            let written = e.to_string();
            let Expr::BinaryOp {
                left,
                op: BinaryOperator::Divide,
                right,
            } = e
            else {
                return ControlFlow::<()>::Continue(());
            };
            let column = function_arg(left, "sum").unwrap_or(left);
            let share = column_name(column).is_some()
                && !grouped.contains(&column.to_string())
                && function_arg(right, "sum") == Some(column);
            let Some((_, info)) = share.then(|| resolve(column, tables)).flatten() else {
                return ControlFlow::Continue(());
            };
            let decimal = info
                .data_type()
                .is_some_and(|d| matches!(d.unwrap_wrappers(), DataType::Decimal { .. }));
            let measured = if decimal {
                format!("toFloat64({column})")
            } else {
                column.to_string()
            };
            let (Some(part), Some(total)) = (
                parse_expr(&format!("sum({measured})")),
                parse_expr(&format!(
                    "(SELECT sum({measured}) FROM {}{filter})",
                    from.join(", ")
                )),
            ) else {
                return ControlFlow::Continue(());
            };
            notes.push(format!("{part} / {total} for {written}"));
            **left = part;
            **right = total;
            ControlFlow::Continue(())
        });
    }
    (!notes.is_empty()).then(|| {
        format!(
            "{}: a column divided by its own sum is a share of the total",
            notes.join("; ")
        )
    })
}

/// Words after "how many" that show it counts rows: a verb ("how many does it get").
const COUNTING_VERBS: &[&str] = &[
    "does", "do", "did", "is", "are", "was", "were", "there", "times",
];

/// "Which page gets the most page views, and how many?" answered with `sum(quantity)`: when
/// "how many" is followed by a verb, a table's name or a value the question names, it counts
/// rows, so a sum of a column the question never mentions, anywhere in the select list
/// ("how many events per visitor": `sum(quantity) / uniqExact(user_id)`), becomes `count()`.
fn counted_not_summed(
    select: &mut Select,
    order: &mut [OrderByExpr],
    question: &QuestionText,
    ctx: &Fit<'_>,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let tokens = question.tokens();
    let after = tokens
        .windows(3)
        .find(|w| w[0] == "how" && w[1] == "many")
        .map(|w| w[2])?;
    let noun = stem(after);
    let counts_rows = COUNTING_VERBS.contains(&after)
        || tables
            .iter()
            .any(|t| words(&t.table.name.replace('_', " ")).contains(&noun))
        || ctx
            .linked
            .values
            .iter()
            .any(|v| words(&v.value).contains(&noun));
    if !counts_rows {
        return None;
    }
    let mut sums: Vec<Expr> = Vec::new();
    let _ = sqlparser::ast::visit_expressions(&select.projection, |expr| {
        let Some((_, info)) = function_arg(expr, "sum").and_then(|c| resolve(c, tables)) else {
            return ControlFlow::<()>::Continue(());
        };
        let mentioned = words(&format!("{} {}", info.name.replace('_', " "), info.comment))
            .iter()
            .any(|w| !is_stop_word(w) && w.len() > 2 && question.words.contains(w));
        if !mentioned && !sums.contains(expr) {
            sums.push(expr.clone());
        }
        ControlFlow::Continue(())
    });
    if sums.is_empty() {
        return None;
    }
    let count = parse_expr("count()")?;
    for sum in &sums {
        replace_everywhere(select, order, sum, &count);
    }
    let listed: Vec<String> = sums.iter().map(ToString::to_string).collect();
    Some(format!(
        "count() instead of {}: the question asks how many, not how much",
        listed.join(", ")
    ))
}

/// "The cars with a known mpg value": a nullable column the question calls known is
/// filtered on `IS NOT NULL`, unless the query tests it for NULL already.
fn known_values(
    select: &mut Select,
    question: &QuestionText,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    let tokens = question.tokens();
    let mut added = Vec::new();
    for (i, _) in tokens.iter().enumerate().filter(|(_, t)| **t == "known") {
        let next = &tokens[i + 1..tokens.len().min(i + 4)];
        let found = tables.iter().find_map(|t| {
            t.table.columns.iter().find_map(|c| {
                let nullable = c.data_type().is_some_and(|d| d.is_nullable());
                let column_words = words(&c.name.replace('_', " "));
                let named = next.iter().any(|w| {
                    (c.name.contains('_') && *w == initials(&c.name))
                        || column_words
                            .iter()
                            .any(|cw| !is_stop_word(cw) && cw.len() > 2 && *cw == stem(w))
                });
                (nullable && named).then(|| t.column_expr(&c.name))
            })
        });
        let Some(column) = found else {
            continue;
        };
        let tested = select.selection.as_ref().is_some_and(|w| {
            let text = w.to_string();
            text.contains(&format!("{column} IS NOT NULL"))
                || text.contains(&format!("isNotNull({column})"))
        });
        if !tested && !added.contains(&column) {
            added.push(column);
        }
    }
    if added.is_empty() {
        return None;
    }
    let mut notes = Vec::new();
    for column in added {
        let condition = Expr::IsNotNull(Box::new(column));
        notes.push(condition.to_string());
        add_condition(select, condition);
    }
    Some(format!(
        "added {}: the question asks about known values",
        notes.join(" AND ")
    ))
}

/// The comparison a phrase of the question states ("more than 40", "at least 2", "above
/// 50"): the operator and the number.
fn stated_comparison(question: &QuestionText) -> Option<(BinaryOperator, String)> {
    let tokens: Vec<&str> = question
        .lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == '?')
        .filter(|t| !t.is_empty())
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        let next = |k: usize| tokens.get(i + k).copied().unwrap_or("");
        let (op, at) = match (*t, next(1)) {
            ("more" | "greater" | "higher", "than") => (BinaryOperator::Gt, 2),
            ("fewer" | "less" | "lower", "than") => (BinaryOperator::Lt, 2),
            ("at", "least") => (BinaryOperator::GtEq, 2),
            ("at", "most") => (BinaryOperator::LtEq, 2),
            ("over" | "above" | "exceeding", _) => (BinaryOperator::Gt, 1),
            ("under" | "below", _) => (BinaryOperator::Lt, 1),
            _ => continue,
        };
        let number = next(at).trim_start_matches('$');
        if !number.is_empty() && number.parse::<f64>().is_ok() {
            return Some((op, number.to_string()));
        }
    }
    None
}

/// "Which stocks had an average price above 50?" written `WHERE price > 50 GROUP BY symbol`:
/// the question compares an aggregate, so the condition moves to HAVING on that aggregate.
/// "Which products were bought more than 40 times?" with no condition on 40 at all gets
/// `HAVING <the aggregate> > 40` (and loses a `LIMIT 1` it does not ask for).
fn stated_having(
    select: &mut Select,
    limit: &mut Option<sqlparser::ast::LimitClause>,
    question: &QuestionText,
    tables: &[QueryTable<'_>],
) -> Option<String> {
    if !matches!(&select.group_by, GroupByExpr::Expressions(g, _) if !g.is_empty()) {
        return None;
    }
    let (op, number) = stated_comparison(question)?;
    let function = if question.has_any(&["average", "mean", "avg"]) {
        Some("avg")
    } else if question.has_any(&["total"]) {
        Some("sum")
    } else {
        None
    };
    let number_used = literals(&*select).iter().any(|l| l == &number);
    if let (Some(function), Some(w)) = (function, select.selection.clone()) {
        let mut all = Vec::new();
        conjuncts(w, &mut all);
        let position = all.iter().position(|c| {
            matches!(c, Expr::BinaryOp { left, op: o, right }
            if *o == op
                && literals(right.as_ref()) == [number.clone()]
                && resolve(left, tables).is_some_and(|(_, col)| {
                    col.data_type().is_some_and(|d| d.is_numeric())
                }))
        });
        if let Some(i) = position {
            let Expr::BinaryOp { left, op, right } = all.remove(i) else {
                return None;
            };
            let moved = Expr::BinaryOp {
                left: Box::new(call(function, *left)),
                op,
                right,
            };
            let note =
                format!("HAVING {moved} instead of WHERE: the question compares the {function}");
            select.selection = and_all(all);
            select.having = and_all(select.having.take().into_iter().chain([moved]).collect());
            return Some(note);
        }
    }
    if number_used || select.having.is_some() {
        return None;
    }
    let aggregates = aggregate_refs(select);
    let [by] = aggregates.as_slice() else {
        return None;
    };
    let condition = Expr::BinaryOp {
        left: Box::new(by.clone()),
        op,
        right: Box::new(Expr::value(Value::Number(number, false))),
    };
    let one_row = matches!(limit, Some(sqlparser::ast::LimitClause::LimitOffset { limit: Some(l), .. }) if l.to_string() == "1");
    let mut note = format!("HAVING {condition}: the question states that limit");
    if one_row {
        *limit = None;
        note.push_str(", and no LIMIT 1");
    }
    select.having = Some(condition);
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::linking::{link, tests::fixture};

    fn fitted(question: &str, sql: &str) -> String {
        let (schema, samples) = fixture();
        fitted_in(&schema, &samples, question, sql)
    }

    /// The fixture with one table changed.
    fn fixture_changing(
        table: &str,
        change: impl FnOnce(&mut TableInfo),
    ) -> (Schema, ValueSamples) {
        let (mut schema, samples) = fixture();
        change(schema.tables.iter_mut().find(|t| t.name == table).unwrap());
        (schema, samples)
    }

    fn fitted_in(schema: &Schema, samples: &ValueSamples, question: &str, sql: &str) -> String {
        let linked = link(schema, samples, question, 3);
        let ctx = Fit {
            question,
            linked: &linked,
            schema,
            samples,
            default_database: "default",
            follow_up: false,
        };
        fit(sql, &ctx).0
    }

    #[test]
    fn a_query_that_fits_is_left_as_written() {
        for (q, sql) in [
            (
                "Revenue for each day",
                "SELECT toDate(event_time) AS day, sum(revenue) AS revenue FROM demo.events GROUP BY day ORDER BY day",
            ),
            (
                "How many purchases per country?",
                "SELECT country, count() AS purchases FROM demo.events WHERE event_type = 'purchase' GROUP BY country",
            ),
            ("not even sql", "SELEC nothing"),
        ] {
            assert_eq!(fitted(q, sql), sql, "{q}");
        }
    }

    #[test]
    fn made_up_columns_become_real_ones() {
        assert_eq!(
            fitted(
                "For each year, on how many days was it hotter than 30 degrees?",
                "SELECT year, countIf(temp_max > 30) AS hot_days FROM vega.weather GROUP BY year"
            ),
            "SELECT toYear(date) AS year, countIf(temp_max > 30) AS hot_days FROM vega.weather GROUP BY toYear(date)"
        );
        assert_eq!(
            fitted(
                "average max temperature",
                "SELECT avg(tm) FROM vega.weather"
            ),
            "SELECT avg(temp_max) FROM vega.weather",
            "an abbreviation of one column's words is that column"
        );
        let unknown = "SELECT avg(temperature_maximum) FROM vega.weather";
        assert_eq!(fitted("average temperature", unknown), unknown);
        assert_eq!(
            fitted("top states", "SELECT w.states FROM vega.airports AS w"),
            "SELECT w.state FROM vega.airports AS w"
        );
    }

    #[test]
    fn a_bucket_is_the_unit_its_alias_names() {
        assert_eq!(
            fitted(
                "average high per month",
                "SELECT toDate(date) AS month, avg(temp_max) FROM vega.weather GROUP BY toDate(date) ORDER BY toDate(date)"
            ),
            "SELECT toStartOfMonth(date) AS month, avg(temp_max) FROM vega.weather GROUP BY toStartOfMonth(date) ORDER BY toStartOfMonth(date)"
        );
        assert_eq!(
            fitted(
                "precipitation per year",
                "SELECT toStartOfYear(date) AS year, sum(precipitation) FROM vega.weather GROUP BY year"
            ),
            "SELECT toYear(date) AS year, sum(precipitation) FROM vega.weather GROUP BY year"
        );
        assert_eq!(
            fitted(
                "Which calendar month is the warmest?",
                "SELECT toStartOfMonth(date) AS month, avg(temp_max) AS t FROM vega.weather GROUP BY month ORDER BY t DESC LIMIT 1"
            ),
            "SELECT toMonth(date) AS month, avg(temp_max) AS t FROM vega.weather GROUP BY month ORDER BY t DESC LIMIT 1"
        );
    }

    #[test]
    fn a_named_value_filters_rather_than_groups() {
        assert_eq!(
            fitted(
                "What is the median purchase amount?",
                "SELECT event_type, median(toFloat64(revenue)) AS m FROM demo.events GROUP BY event_type ORDER BY event_type"
            ),
            "SELECT median(toFloat64(revenue)) AS m FROM demo.events WHERE event_type = 'purchase'"
        );
        let by_type = "SELECT event_type, count() FROM demo.events GROUP BY event_type";
        assert_eq!(fitted("purchases by event type", by_type), by_type);
    }

    #[test]
    fn conditions_on_values_the_question_does_not_name_are_dropped() {
        assert_eq!(
            fitted(
                "Total precipitation for each year",
                "SELECT toYear(date) AS year, sum(precipitation) FROM vega.weather WHERE weather = 'drizzle' AND temp_max > 3 GROUP BY year"
            ),
            "SELECT toYear(date) AS year, sum(precipitation) FROM vega.weather WHERE temp_max > 3 GROUP BY year"
        );
        let named = "SELECT count() FROM vega.weather WHERE weather = 'drizzle'";
        assert_eq!(fitted("How many days with drizzle?", named), named);
        let code = "SELECT count() FROM demo.events WHERE country = 'DE'";
        assert_eq!(fitted("How many events came from Germany?", code), code);
        let unsampled = "SELECT count() FROM vega.airports WHERE state = 'TX'";
        assert_eq!(fitted("How many airports in Texas?", unsampled), unsampled);
        // A word of a longer named value does not name a shorter one.
        let (schema, mut samples) = fixture();
        samples.values.insert(
            ("demo.events".into(), "page".into()),
            vec!["/".into(), "/cart".into(), "/product".into()],
        );
        assert_eq!(
            fitted_in(
                &schema,
                &samples,
                "add-to-cart events and purchases per device",
                "SELECT device, countIf(event_type = 'add_to_cart') FROM demo.events WHERE page = '/cart' GROUP BY device"
            ),
            "SELECT device, countIf(event_type = 'add_to_cart') FROM demo.events GROUP BY device"
        );
        let cart = "SELECT count() FROM demo.events WHERE page = '/cart'";
        assert_eq!(
            fitted_in(&schema, &samples, "How many views of the cart page?", cart),
            cart
        );
    }

    #[test]
    fn values_the_question_names_are_filtered_on() {
        assert_eq!(
            fitted(
                "How many units were bought in purchases on mobile?",
                "SELECT sum(quantity) FROM demo.events AS e WHERE e.device = 'mobile'"
            ),
            "SELECT sum(quantity) FROM demo.events AS e WHERE e.device = 'mobile' AND e.event_type = 'purchase'"
        );
        let ambiguous = "SELECT o.name, sum(m.revenue) FROM demo.events AS m JOIN demo.products AS o ON m.product_id = o.product_id GROUP BY o.name";
        assert_eq!(fitted("revenue per product name", ambiguous), ambiguous);
        let conditional =
            "SELECT device, countIf(event_type = 'purchase') FROM demo.events GROUP BY device";
        assert_eq!(
            fitted("purchases for each device", conditional),
            conditional
        );
    }

    #[test]
    fn dates_in_the_question() {
        assert_eq!(
            named_dates_in("how many purchases on november 20, 2026 and in 2013?"),
            NamedDates {
                days: vec!["2026-11-20".into()],
                months: vec![],
                years: vec![2013]
            }
        );
        assert_eq!(
            named_dates_in("rain in march 2014, or on 3rd mar 2015, or 2016-01-02"),
            NamedDates {
                days: vec!["2015-03-03".into(), "2016-01-02".into()],
                months: vec!["2014-03-01".into()],
                years: vec![]
            }
        );
        assert_eq!(named_dates_in("may I see 2000 rows"), NamedDates::default());
    }

    #[test]
    fn a_named_period_the_query_forgets_is_added() {
        assert_eq!(
            fitted(
                "How many purchases were there in each hour of November 20, 2026?",
                "SELECT toStartOfHour(event_time) AS hour, count() FROM demo.events WHERE event_type = 'purchase' GROUP BY hour"
            ),
            "SELECT toStartOfHour(event_time) AS hour, count() FROM demo.events WHERE event_type = 'purchase' AND toDate(event_time) = '2026-11-20' GROUP BY hour"
        );
        assert_eq!(
            fitted(
                "Average high for each month of 2013",
                "SELECT toStartOfMonth(date) AS month, avg(temp_max) FROM vega.weather WHERE date >= '2013-01-01' AND date < '2013-12-31' GROUP BY month"
            ),
            "SELECT toStartOfMonth(date) AS month, avg(temp_max) FROM vega.weather WHERE toYear(date) = 2013 GROUP BY month"
        );
        let kept = "SELECT count() FROM vega.weather WHERE toYear(date) = 2013";
        assert_eq!(fitted("How many days in 2013?", kept), kept);
        let range = "SELECT count() FROM vega.weather WHERE date >= '2013-01-01'";
        assert_eq!(fitted("days since 2013-01-01", range), range);
    }

    #[test]
    fn a_condition_the_table_implies_is_dropped() {
        let (schema, samples) = fixture_changing("weather", |weather| {
            weather.columns[0].comment = "day of the observation in Seattle".into();
        });
        assert_eq!(
            fitted_in(
                &schema,
                &samples,
                "How much precipitation in Seattle?",
                "SELECT sum(precipitation) FROM vega.weather WHERE city = 'Seattle' AND temp_max > 0"
            ),
            "SELECT sum(precipitation) FROM vega.weather WHERE temp_max > 0"
        );
        let not_implied = "SELECT sum(precipitation) FROM vega.weather WHERE city = 'Boston'";
        assert_eq!(
            fitted_in(&schema, &samples, "precipitation in Boston", not_implied),
            not_implied
        );
    }

    #[test]
    fn a_column_divided_by_its_own_sum_is_a_share_of_the_total() {
        assert_eq!(
            fitted(
                "What share of the revenue did each device bring, in percent?",
                "SELECT device, round(revenue / sum(revenue) * 100, 2) AS share FROM demo.events WHERE country = 'DE' GROUP BY device"
            ),
            "SELECT device, round(sum(toFloat64(revenue)) / (SELECT sum(toFloat64(revenue)) FROM demo.events WHERE country = 'DE') * 100, 2) AS share FROM demo.events WHERE country = 'DE' GROUP BY device"
        );
        assert_eq!(
            fitted(
                "share of rain per kind of weather",
                "SELECT w.weather, sum(w.precipitation) / sum(w.precipitation) FROM vega.weather AS w GROUP BY w.weather"
            ),
            "SELECT w.weather, sum(w.precipitation) / (SELECT sum(w.precipitation) FROM vega.weather AS w) FROM vega.weather AS w GROUP BY w.weather",
            "a sum divided by itself is 1 in every group"
        );
        for kept in [
            // Another column, or the group key itself: not a share.
            "SELECT device, sum(revenue) / sum(quantity) AS per_item FROM demo.events GROUP BY device",
            "SELECT quantity, quantity / sum(quantity) FROM demo.events GROUP BY quantity",
            "SELECT revenue / quantity FROM demo.events",
        ] {
            assert_eq!(fitted("revenue per item", kept), kept);
        }
    }

    #[test]
    fn how_many_of_a_named_thing_counts_rows() {
        assert_eq!(
            fitted(
                "Which page gets the most page views, and how many does it get?",
                "SELECT page, sum(quantity) AS views FROM demo.events WHERE event_type = 'page_view' GROUP BY page ORDER BY sum(quantity) DESC LIMIT 1"
            ),
            "SELECT page, count() AS views FROM demo.events WHERE event_type = 'page_view' GROUP BY page ORDER BY count() DESC LIMIT 1"
        );
        assert_eq!(
            fitted(
                "How many purchases per country?",
                "SELECT country, sum(quantity) FROM demo.events WHERE event_type = 'purchase' GROUP BY country"
            ),
            "SELECT country, count() FROM demo.events WHERE event_type = 'purchase' GROUP BY country"
        );
        assert_eq!(
            fitted(
                "On average, how many events does a visitor generate?",
                "SELECT round(sum(quantity) / uniqExact(user_id), 2) AS per_visitor FROM demo.events"
            ),
            "SELECT round(count() / uniqExact(user_id), 2) AS per_visitor FROM demo.events"
        );
        for (question, kept) in [
            // "units" may be a measure: the sum stays.
            (
                "How many units of each product were sold?",
                "SELECT product_id, sum(quantity) FROM demo.events WHERE event_type = 'purchase' GROUP BY product_id",
            ),
            // The question names the column (its comment says "items").
            (
                "How many purchases per country, and how many items?",
                "SELECT country, count(), sum(quantity) FROM demo.events WHERE event_type = 'purchase' GROUP BY country",
            ),
            ("What was the total revenue?", "SELECT sum(revenue) FROM demo.events"),
        ] {
            assert_eq!(fitted(question, kept), kept, "{question}");
        }
    }

    #[test]
    fn a_known_value_is_not_null() {
        let (schema, samples) = fixture_changing("airports", |airports| {
            airports.columns[2].type_name = "Nullable(String)".into();
        });
        assert_eq!(
            fitted_in(
                &schema,
                &samples,
                "How many airports with a known city are in TX?",
                "SELECT count() FROM vega.airports WHERE state = 'TX'"
            ),
            "SELECT count() FROM vega.airports WHERE state = 'TX' AND city IS NOT NULL"
        );
        for (question, kept) in [
            (
                "How many airports with a known city?",
                "SELECT count() FROM vega.airports WHERE city IS NOT NULL",
            ),
            // Unknown is not known; a column that cannot be NULL needs no test.
            (
                "How many airports have an unknown city?",
                "SELECT countIf(isNull(city)) FROM vega.airports",
            ),
            (
                "How many airports with a known state?",
                "SELECT count() FROM vega.airports",
            ),
        ] {
            assert_eq!(
                fitted_in(&schema, &samples, question, kept),
                kept,
                "{question}"
            );
        }
    }

    #[test]
    fn group_keys_are_shown() {
        assert_eq!(
            fitted(
                "Average max temperature per weather kind",
                "SELECT avg(temp_max) AS t FROM vega.weather GROUP BY weather ORDER BY t"
            ),
            "SELECT weather, avg(temp_max) AS t FROM vega.weather GROUP BY weather ORDER BY t"
        );
    }

    #[test]
    fn a_named_aggregate_the_query_lacks_is_applied() {
        assert_eq!(
            fitted(
                "What's the median temp max in Seattle?",
                "SELECT temp_max FROM vega.weather ORDER BY temp_max DESC LIMIT 1"
            ),
            "SELECT median(temp_max) AS temp_max FROM vega.weather"
        );
        let top = "SELECT temp_max FROM vega.weather ORDER BY temp_max DESC LIMIT 1";
        assert_eq!(fitted("What was the highest temp max?", top), top);
    }

    #[test]
    fn columns_neither_grouped_nor_aggregated() {
        assert_eq!(
            fitted(
                "For each weather kind, the highest temperature and the day it was reached",
                "SELECT weather, max(temp_max) AS top, date FROM vega.weather GROUP BY weather"
            ),
            "SELECT weather, max(temp_max) AS top, argMax(date, temp_max) AS date FROM vega.weather GROUP BY weather"
        );
        assert_eq!(
            fitted(
                "median revenue of purchases",
                "SELECT event_type, median(toFloat64(revenue)) AS m FROM demo.events WHERE event_type = 'purchase'"
            ),
            "SELECT median(toFloat64(revenue)) AS m FROM demo.events WHERE event_type = 'purchase'"
        );
        assert_eq!(
            fitted(
                "events and their countries",
                "SELECT country, count() AS n FROM demo.events"
            ),
            "SELECT country, count() AS n FROM demo.events GROUP BY country"
        );
        let ratio = "SELECT sum(revenue) AS r, count() AS n, r / n AS per FROM demo.events";
        assert_eq!(fitted("revenue per event", ratio), ratio);
    }

    #[test]
    fn which_one_is_the_top_one() {
        assert_eq!(
            fitted(
                "Which month was the wettest?",
                "SELECT toStartOfMonth(date) AS month, sum(precipitation) AS rain FROM vega.weather GROUP BY month ORDER BY month"
            ),
            "SELECT toStartOfMonth(date) AS month, sum(precipitation) AS rain FROM vega.weather GROUP BY month ORDER BY rain DESC LIMIT 1"
        );
        let all =
            "SELECT weather, count() AS days FROM vega.weather GROUP BY weather ORDER BY days DESC";
        assert_eq!(fitted("How many days of each weather?", all), all);
    }

    #[test]
    fn the_top_one_by_its_aggregate_not_its_key() {
        assert_eq!(
            fitted(
                "Which day had the highest revenue?",
                "SELECT toDate(event_time) AS day, sum(revenue) AS r FROM demo.events GROUP BY day ORDER BY day DESC LIMIT 1"
            ),
            "SELECT toDate(event_time) AS day, sum(revenue) AS r FROM demo.events GROUP BY day ORDER BY r DESC LIMIT 1"
        );
        let by_aggregate = "SELECT toDate(event_time) AS day, sum(revenue) AS r FROM demo.events GROUP BY day ORDER BY r DESC LIMIT 1";
        assert_eq!(
            fitted("Which day had the highest revenue?", by_aggregate),
            by_aggregate
        );
    }

    #[test]
    fn coarser_buckets_of_the_same_time_go() {
        assert_eq!(
            fitted(
                "Which hour had the most events?",
                "SELECT toStartOfHour(event_time) AS hour, toStartOfDay(event_time) AS date, count() AS n FROM demo.events GROUP BY hour, date ORDER BY n DESC LIMIT 1"
            ),
            "SELECT toStartOfHour(event_time) AS hour, count() AS n FROM demo.events GROUP BY hour ORDER BY n DESC LIMIT 1"
        );
    }

    #[test]
    fn compared_aggregates_go_to_having() {
        assert_eq!(
            fitted(
                "Which weather kinds had an average max temperature above 20?",
                "SELECT weather FROM vega.weather WHERE temp_max > 20 GROUP BY weather"
            ),
            "SELECT weather FROM vega.weather GROUP BY weather HAVING avg(temp_max) > 20"
        );
        assert_eq!(
            fitted(
                "Which countries had more than 40 purchases?",
                "SELECT country, count() AS n FROM demo.events WHERE event_type = 'purchase' GROUP BY country ORDER BY n DESC LIMIT 1"
            ),
            "SELECT country, count() AS n FROM demo.events WHERE event_type = 'purchase' GROUP BY country HAVING n > 40 ORDER BY n DESC"
        );
        let raw =
            "SELECT weather, count() AS n FROM vega.weather WHERE temp_max > 20 GROUP BY weather";
        assert_eq!(fitted("days above 20 degrees per weather kind", raw), raw);
    }

    #[test]
    fn a_follow_up_gets_only_the_rules_that_do_not_read_the_question() {
        let (schema, samples) = fixture();
        let question = "only on mobile";
        let linked = link(&schema, &samples, question, 3);
        let ctx = Fit {
            question,
            linked: &linked,
            schema: &schema,
            samples: &samples,
            default_database: "default",
            follow_up: true,
        };
        // The purchase filter came from the earlier question: it stays.
        let refined = "SELECT country, count() AS n FROM demo.events WHERE event_type = 'purchase' AND device = 'mobile' GROUP BY country";
        assert_eq!(fit(refined, &ctx).0, refined);
        // A made-up column is fixed all the same.
        assert_eq!(
            fit("SELECT avg(tm) FROM vega.weather", &ctx).0,
            "SELECT avg(temp_max) FROM vega.weather"
        );
    }

    #[test]
    fn how_many_without_a_breakdown_is_one_count() {
        assert_eq!(
            fitted(
                "On how many days was it below zero?",
                "SELECT toDate(date) AS day, count() AS n FROM vega.weather WHERE temp_max < 0 GROUP BY day ORDER BY day"
            ),
            "SELECT count() AS n FROM vega.weather WHERE temp_max < 0"
        );
        let per_day =
            "SELECT toDate(event_time) AS day, count() AS n FROM demo.events GROUP BY day";
        assert_eq!(fitted("How many events per day?", per_day), per_day);
        let top_hour = "SELECT toStartOfHour(event_time) AS hour, count() AS events FROM demo.events GROUP BY hour ORDER BY events DESC LIMIT 1";
        assert_eq!(
            fitted(
                "Which hour had the most events, and how many were there?",
                top_hour
            ),
            top_hour,
            "the top bucket and its count"
        );
    }

    #[test]
    fn a_bucket_without_an_aggregate_is_aggregated() {
        assert_eq!(
            fitted(
                "Revenue for each day, oldest day first",
                "SELECT toDate(event_time) AS day, revenue FROM demo.events ORDER BY toDate(event_time) ASC"
            ),
            "SELECT toDate(event_time) AS day, sum(revenue) AS revenue FROM demo.events GROUP BY day ORDER BY toDate(event_time) ASC"
        );
        assert_eq!(
            fitted(
                "Which day had the highest revenue?",
                "SELECT toDate(event_time) AS day, revenue AS top FROM demo.events ORDER BY revenue DESC LIMIT 1"
            ),
            "SELECT toDate(event_time) AS day, sum(revenue) AS top FROM demo.events GROUP BY day ORDER BY top DESC LIMIT 1"
        );
        let rows = "SELECT toDate(event_time) AS day, revenue FROM demo.events LIMIT 5";
        assert_eq!(fitted("show five events with their day", rows), rows);
    }
}
