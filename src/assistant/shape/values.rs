//! Values and conditions: values the question does or does not name, known (not NULL)
//! values, and compared aggregates moved to HAVING.

use std::collections::BTreeSet;

use sqlparser::ast::{BinaryOperator, Expr, GroupByExpr, Select, Value};

use super::names::initials;
use super::sql::{
    add_condition, aggregate_refs, and_all, call, conjuncts, literal, literals, references_column,
    resolve, string_literal, QueryTable,
};
use super::{Fit, QuestionText};
use crate::assistant::linking::{flat, is_stop_word, stem, words};

/// `WHERE weather = 'drizzle'` when the question says nothing of drizzle: a condition on a
/// value of a low-cardinality column the question does not name is dropped.
pub(super) fn unnamed_values(
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
pub(super) fn named_values(
    select: &mut Select,
    ctx: &Fit<'_>,
    tables: &[QueryTable<'_>],
) -> Option<String> {
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

/// "The cars with a known mpg value": a nullable column the question calls known is
/// filtered on `IS NOT NULL`, unless the query tests it for NULL already.
pub(super) fn known_values(
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
pub(super) fn stated_having(
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
