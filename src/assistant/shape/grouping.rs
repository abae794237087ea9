//! Grouping: a named value filtered rather than grouped by, group keys shown, and columns
//! neither grouped nor aggregated.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, GroupByExpr, Ident, OrderByExpr, Select, SelectItem};

use super::sql::{
    add_condition, column_name, conjuncts, has_aggregate, item_names, item_parts, literal,
    literals, parse_expr, resolve, QueryTable,
};
use super::{Fit, QuestionText};
use crate::assistant::linking::{is_stop_word, words};

/// Words that ask for one figure per group or bucket.
pub(super) const PER_WORDS: &[&str] = &[
    "each", "per", "by", "daily", "hourly", "weekly", "monthly", "yearly", "every",
];

/// `GROUP BY event_type` for "the median purchase amount": the question names one value of
/// the column and not the column, so it asks about that value, not about each one.
pub(super) fn filter_not_group(
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

/// `SELECT avg(x) ... GROUP BY year`: a grouped query that does not show its groups. The
/// keys go first in the select list.
pub(super) fn shown_groups(select: &mut Select) -> Option<String> {
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
pub(super) fn ungrouped_columns(select: &mut Select, tables: &[QueryTable<'_>]) -> Option<String> {
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
