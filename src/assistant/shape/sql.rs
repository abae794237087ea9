//! AST helpers the fitting rules share: the tables a query reads, its select items,
//! literals, conditions and aggregates.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, OrderByExpr, Select, SelectItem, TableFactor, Value,
};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use super::Fit;
use crate::assistant::validate;
use crate::warehouse::schema::{ColumnInfo, Schema, TableInfo};

/// A table the query reads, with the alias it is read under.
pub(crate) struct QueryTable<'a> {
    pub(crate) table: &'a TableInfo,
    pub(crate) alias: Option<String>,
}

impl QueryTable<'_> {
    /// `col`, or `alias.col` when the query names the table by an alias.
    pub(super) fn column_expr(&self, column: &str) -> Expr {
        match &self.alias {
            Some(a) => Expr::CompoundIdentifier(vec![Ident::new(a), Ident::new(column)]),
            None => Expr::Identifier(Ident::new(column)),
        }
    }
}

pub(super) fn query_tables<'a>(select: &Select, ctx: &Fit<'a>) -> Vec<QueryTable<'a>> {
    tables_of(select, ctx.schema, ctx.default_database)
}

/// The schema tables a SELECT reads directly (not through subqueries), with their aliases.
pub(crate) fn tables_of<'a>(
    select: &Select,
    schema: &'a Schema,
    default_database: &str,
) -> Vec<QueryTable<'a>> {
    let mut out = Vec::new();
    let factors = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        if let TableFactor::Table { name, alias, .. } = factor {
            if let Some(table) = schema.table(&validate::relation_name(name), default_database) {
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
pub(super) fn time_column(tables: &[QueryTable<'_>]) -> Option<Expr> {
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
pub(super) fn item_parts(item: &SelectItem) -> Option<(&Expr, Option<&Ident>)> {
    match item {
        SelectItem::UnnamedExpr(e) => Some((e, None)),
        SelectItem::ExprWithAlias { expr, alias } => Some((expr, Some(alias))),
        _ => None,
    }
}

/// The names a select item can be referred to by: its expression's text and its alias.
pub(super) fn item_names(item: &SelectItem) -> Vec<String> {
    item_parts(item).map_or_else(Vec::new, |(expr, alias)| {
        std::iter::once(expr.to_string())
            .chain(alias.map(|a| a.value.clone()))
            .collect()
    })
}

/// How to refer to each aggregate of the select list: its alias, else its expression.
pub(super) fn aggregate_refs(select: &Select) -> Vec<Expr> {
    select
        .projection
        .iter()
        .filter_map(item_parts)
        .filter(|(expr, _)| has_aggregate(*expr))
        .map(|(expr, alias)| alias.map_or_else(|| expr.clone(), |a| Expr::Identifier(a.clone())))
        .collect()
}

/// The column an expression names (`col` or `x.col`), without its qualifier.
pub(super) fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(i) => Some(&i.value),
        Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.as_str()),
        _ => None,
    }
}

/// The table and column info of a column reference, among the query's tables.
pub(crate) fn resolve<'a>(
    expr: &Expr,
    tables: &[QueryTable<'a>],
) -> Option<(&'a TableInfo, &'a ColumnInfo)> {
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

pub(crate) fn string_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn literal(text: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(text.to_string()))
}

pub(super) fn call(function: &str, arg: Expr) -> Expr {
    parse_expr(&format!("{function}({arg})")).unwrap_or(arg)
}

pub(super) fn parse_expr(text: &str) -> Option<Expr> {
    Parser::new(&ClickHouseDialect {})
        .try_with_sql(text)
        .ok()?
        .parse_expr()
        .ok()
}

/// Every string literal and number in an expression tree.
pub(super) fn literals<T: sqlparser::ast::Visit>(node: &T) -> Vec<String> {
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

pub(super) fn references_column<T: sqlparser::ast::Visit>(node: &T, column: &str) -> bool {
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
pub(super) fn conjuncts(expr: Expr, out: &mut Vec<Expr>) {
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

pub(super) fn and_all(mut conditions: Vec<Expr>) -> Option<Expr> {
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

pub(super) fn add_condition(select: &mut Select, condition: Expr) {
    let mut all = Vec::new();
    if let Some(existing) = select.selection.take() {
        conjuncts(existing, &mut all);
    }
    all.push(condition);
    select.selection = and_all(all);
}

pub(super) fn function_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Function(f) => Some(f.name.to_string().to_lowercase()),
        _ => None,
    }
}

/// Replaces every copy of `old` in the SELECT (and its ORDER BY) with `new`.
pub(super) fn replace_everywhere(
    select: &mut Select,
    order: &mut [OrderByExpr],
    old: &Expr,
    new: &Expr,
) {
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

pub(super) fn has_aggregate<T: sqlparser::ast::Visit>(node: &T) -> bool {
    sqlparser::ast::visit_expressions(node, |e| match e {
        Expr::Function(f) if is_aggregate(&f.name.to_string()) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// The one argument of a call to `function` (any case): `sum(x)` → `x`.
pub(super) fn function_arg<'e>(expr: &'e Expr, function: &str) -> Option<&'e Expr> {
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
