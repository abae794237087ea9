//! Measures: the top one of a ranking, every group where none is asked for, one count
//! instead of one per bucket, shares of the total, and counts instead of sums.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, GroupByExpr, OrderByExpr, Select, SelectItem, Value};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use super::grouping::PER_WORDS;
use super::sql::{
    aggregate_refs, column_name, function_arg, has_aggregate, item_names, item_parts, parse_expr,
    replace_everywhere, resolve, QueryTable,
};
use super::time::{is_bucket, relative_period_in};
use super::{Fit, QuestionText};
use crate::assistant::linking::{is_stop_word, stem, words};
use crate::warehouse::types::DataType;

/// Words that ask for the one group at the top (`DESC`) or bottom (`ASC`) of a ranking.
/// Superlatives that say which end of any measure is meant. Words that say it only for one
/// kind of data ("wettest", "coldest") are not here: "the coldest month" is the lowest
/// temperature but the most frost days.
const MOST: &[&str] = &[
    "highest", "most", "largest", "biggest", "greatest", "busiest", "longest", "maximum",
];
const LEAST: &[&str] = &[
    "lowest", "least", "fewest", "smallest", "cheapest", "shortest", "minimum", "quietest",
];

/// "Which month had the most rain?" answered with every month, or with the last month (ordered
/// by the month): a grouped query with one aggregate, ordered by nothing or by its group keys,
/// is ordered by that aggregate, and cut to one row when it had no limit.
pub(super) fn superlative(
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

/// "How many purchases per country?" cut to its first row (`LIMIT 1`) although the question
/// asks for no top one: the limit goes, so every group is shown.
pub(super) fn every_group(
    select: &Select,
    limit: &mut Option<sqlparser::ast::LimitClause>,
    question: &QuestionText,
) -> Option<String> {
    let first = question.lower.split_whitespace().next().unwrap_or("");
    let one_asked = question.has_any(MOST)
        || question.has_any(LEAST)
        || question.has_any(&["top", "first", "latest", "earliest", "single", "one"])
        // "the last order", but not "in the last hour".
        || (question.has_any(&["last"]) && relative_period_in(&question.lower).is_none())
        || matches!(first, "which" | "who");
    if one_asked || !question.has_any(&["per", "each", "every", "by"]) {
        return None;
    }
    let GroupByExpr::Expressions(groups, _) = &select.group_by else {
        return None;
    };
    let Some(sqlparser::ast::LimitClause::LimitOffset {
        limit: Some(n),
        offset: None,
        limit_by,
    }) = limit.as_ref()
    else {
        return None;
    };
    if groups.is_empty() || n.to_string() != "1" || !limit_by.is_empty() {
        return None;
    }
    *limit = None;
    Some("no LIMIT 1: the question asks for every group, not the top one".into())
}

/// "On how many days was there frost?" answered day by day: a "how many" question that asks
/// for no breakdown (no "each", "per", "by", ...) gets one count, not one per time bucket.
pub(super) fn one_count(
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

/// `round(revenue / sum(revenue) * 100, 2)` per device, which the server refuses (error 215:
/// `revenue` is neither grouped nor aggregated): a column divided by its own sum in a grouped
/// query asks for each group's share of the total. It becomes `sum(revenue) / (SELECT
/// sum(revenue) FROM … WHERE …)`, the total of the same rows. Decimals are summed as floats:
/// ClickHouse 18.16 cannot divide by a Decimal scalar subquery.
pub(super) fn share_of_total(select: &mut Select, tables: &[QueryTable<'_>]) -> Option<String> {
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
pub(super) fn counted_not_summed(
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
