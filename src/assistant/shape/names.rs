//! Name repair: columns the model made up, replaced by the real column or time bucket they
//! must mean.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Ident, SelectItem, SetExpr, Statement};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use super::sql::{call, column_name, query_tables, time_column, QueryTable};
use super::time::bucket_for_unit;
use super::{Fit, QuestionText};
use crate::assistant::joins::column_prefix;
use crate::assistant::linking::{flat, name_words, stem};
use crate::warehouse::schema::ColumnInfo;

/// Whether `written` is another spelling of the column `real`: the same letters once case,
/// underscores and the table's column prefix are set aside (`orderdate` or `order_date` for
/// `o_orderdate`, `playerId` for `playerID`), the same words where each starts the other
/// (`departure_delay` for `dep_delay`), or the column's letters in order within a name not
/// much longer, with the same first and last letter (`accountbal` for `c_acctbal`).
pub(crate) fn spelled_like(written: &str, real: &str, prefix: Option<&str>) -> bool {
    let core = prefix.and_then(|p| real.strip_prefix(p)).unwrap_or(real);
    let (w, c) = (flat(written), flat(core));
    if w.is_empty() || c.is_empty() {
        return false;
    }
    if w == c || w == flat(real) {
        return true;
    }
    let (a, b) = (name_words(written), name_words(core));
    let same_words = a.len() == b.len()
        && a.len() > 1
        && a.iter().zip(&b).all(|(x, y)| {
            x.len().min(y.len()) >= 2 && (x.starts_with(y.as_str()) || y.starts_with(x.as_str()))
        });
    if same_words {
        return true;
    }
    // One word that starts the other (`visibility` for `visib`, `dest` for `destination`).
    if a.len() == 1 && b.len() == 1 {
        let (short, long) = if c.len() < w.len() {
            (&c, &w)
        } else {
            (&w, &c)
        };
        if short.len() >= 4 && long.starts_with(short.as_str()) {
            return true;
        }
    }
    let (short, long) = if c.len() < w.len() {
        (&c, &w)
    } else {
        (&w, &c)
    };
    let mut rest = long.chars();
    short.len() >= 4
        && short.len() < long.len()
        && short.len() * 10 >= long.len() * 7
        && short.chars().next() == long.chars().next()
        && short.chars().last() == long.chars().last()
        && short.chars().all(|x| rest.any(|y| y == x))
}

/// The first letters of a column name's words: `miles_per_gallon` → `mpg`.
pub(super) fn initials(column: &str) -> String {
    column.split('_').filter_map(|w| w.chars().next()).collect()
}

/// A column the model made up: a time unit of the one time column (`year` →
/// `toYear(date)`), an abbreviation of one column's name (`mpg` → `miles_per_gallon`), or
/// one column's name in another number (`cylinder` → `cylinders`).
pub(super) fn replace_unknown_column(
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
        let other_spelling = || {
            unique(
                columns
                    .iter()
                    .filter(|(t, c)| spelled_like(name, &c.name, column_prefix(t.table).as_deref()))
                    .collect(),
            )
        };
        (
            None,
            Some(abbreviation.or_else(other_number).or_else(other_spelling)?),
        )
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
