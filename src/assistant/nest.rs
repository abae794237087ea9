//! Chains of joins for servers that take one JOIN per SELECT (ClickHouse before 19.3, see
//! `Capabilities::multiple_joins`): `FROM a JOIN b ON .. JOIN c ON ..` becomes
//! `FROM (SELECT <what the rest needs> FROM a JOIN b ON ..) AS _j1 JOIN c ON ..`, which every
//! version runs and which gives the same rows. Newer servers do the same rewrite themselves;
//! a model writes the plain chain, as it would for any SQL database.
//!
//! Each step moves the first join into a subquery that selects every column of its two
//! tables the rest of the query names: `x.col` as `x_col` (and the rest of the query then says
//! `x_col`), a bare `col` as itself. Queries it cannot follow (`*`, a joined subquery whose
//! columns it cannot see) are left as written; the server then says why.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, Ident, OrderByKind, Query, SelectItem, SetExpr, Statement, TableAlias,
    TableFactor, TableWithJoins,
};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use super::validate::relation_name;
use crate::warehouse::schema::Schema;

/// A relation of the join chain: the names it can be qualified by and its columns.
struct Relation {
    qualifiers: Vec<String>,
    columns: Vec<String>,
}

fn relation(factor: &TableFactor, schema: &Schema, default_database: &str) -> Option<Relation> {
    match factor {
        TableFactor::Table { name, alias, .. } => {
            let written = relation_name(name);
            let table = schema.table(&written, default_database)?;
            let mut qualifiers = vec![table.name.clone(), written];
            if let Some(a) = alias {
                qualifiers.push(a.name.value.clone());
            }
            Some(Relation {
                qualifiers,
                columns: table.columns.iter().map(|c| c.name.clone()).collect(),
            })
        }
        TableFactor::Derived {
            subquery, alias, ..
        } => {
            let SetExpr::Select(select) = subquery.body.as_ref() else {
                return None;
            };
            let columns = select
                .projection
                .iter()
                .map(|item| match item {
                    SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
                    SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                        parts.last().map(|i| i.value.clone())
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Relation {
                qualifiers: alias.iter().map(|a| a.name.value.clone()).collect(),
                columns,
            })
        }
        _ => None,
    }
}

/// `sql` with every chain of joins nested one join per SELECT; `None` when there is nothing
/// to nest or the query cannot be followed.
pub fn nest_joins(sql: &str, schema: &Schema, default_database: &str) -> Option<String> {
    let mut statements = Parser::parse_sql(&ClickHouseDialect {}, sql).ok()?;
    let [Statement::Query(query)] = statements.as_mut_slice() else {
        return None;
    };
    let mut changed = false;
    let mut step = 0;
    while let Some(from) = first_chain(query) {
        if from.joins.len() < 2 {
            break;
        }
        step += 1;
        nest_first_join(query, step, schema, default_database)?;
        changed = true;
    }
    changed.then(|| statements[0].to_string())
}

fn first_chain(query: &mut Query) -> Option<&mut TableWithJoins> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    match select.from.as_mut_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// Moves the chain's first join into a subquery named `_j{step}`.
fn nest_first_join(
    query: &mut Query,
    step: usize,
    schema: &Schema,
    default_database: &str,
) -> Option<()> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    if select.projection.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return None;
    }
    let aliases: BTreeSet<String> = select
        .projection
        .iter()
        .filter_map(|i| match i {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            _ => None,
        })
        .collect();
    let chain = select.from.first_mut()?;
    let left = [
        relation(&chain.relation, schema, default_database)?,
        relation(&chain.joins[0].relation, schema, default_database)?,
    ];
    let owner = |qualifier: &str| {
        left.iter()
            .any(|r| r.qualifiers.iter().any(|q| q == qualifier))
    };
    let bare = |column: &str| {
        !aliases.contains(column) && left.iter().any(|r| r.columns.iter().any(|c| c == column))
    };
    // What the rest of the query reads from the two tables, renamed as the subquery's columns.
    let mut items: Vec<String> = Vec::new();
    let mut rename = |e: &mut Expr| {
        match e {
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let column = parts[parts.len() - 1].value.clone();
                let qualifier = parts[..parts.len() - 1]
                    .iter()
                    .map(|i| i.value.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                if owner(&qualifier) {
                    let name = format!("{}_{column}", parts[parts.len() - 2].value);
                    let item = format!("{} AS {}", e, Ident::new(&name));
                    if !items.contains(&item) {
                        items.push(item);
                    }
                    *e = Expr::Identifier(Ident::new(name));
                }
            }
            Expr::Identifier(i) if bare(&i.value) => {
                let item = e.to_string();
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    };
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.projection, &mut rename);
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.selection, &mut rename);
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.prewhere, &mut rename);
    let _ = sqlparser::ast::visit_expressions_mut(&mut select.having, &mut rename);
    if let GroupByExpr::Expressions(list, _) = &mut select.group_by {
        let _ = sqlparser::ast::visit_expressions_mut(list, &mut rename);
    }
    for join in chain.joins.iter_mut().skip(1) {
        let _ = sqlparser::ast::visit_expressions_mut(join, &mut rename);
    }
    if let Some(order) = query.order_by.as_mut() {
        if let OrderByKind::Expressions(list) = &mut order.kind {
            let _ = sqlparser::ast::visit_expressions_mut(list, &mut rename);
        }
    }
    let limit_by = &mut query.limit_clause;
    let _ = sqlparser::ast::visit_expressions_mut(limit_by, &mut rename);
    if items.is_empty() {
        items.push("1 AS _one".into());
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let chain = select.from.first_mut()?;
    let first = chain.joins.remove(0);
    let inner = format!(
        "SELECT {} FROM {} {}",
        items.join(", "),
        chain.relation,
        first
    );
    let mut parsed = Parser::parse_sql(&ClickHouseDialect {}, &inner).ok()?;
    let Some(Statement::Query(subquery)) = parsed.pop() else {
        return None;
    };
    chain.relation = TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(TableAlias {
            explicit: true,
            name: Ident::new(format!("_j{step}")),
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    };
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::joins::tests::tpch;

    #[test]
    fn a_chain_of_two_joins_becomes_a_join_of_a_subquery() {
        let nested = nest_joins(
            "SELECT r.r_name, count() AS customers FROM tpch.customer AS c \
             JOIN tpch.nation AS n ON c.c_nationkey = n.n_nationkey \
             JOIN tpch.region AS r ON n.n_regionkey = r.r_regionkey \
             WHERE c.c_name <> '' GROUP BY r.r_name ORDER BY customers DESC",
            &tpch(),
            "tpch",
        )
        .unwrap();
        assert_eq!(
            nested,
            "SELECT r.r_name, count() AS customers FROM (SELECT c.c_name AS c_c_name, \
             n.n_regionkey AS n_n_regionkey FROM tpch.customer AS c JOIN tpch.nation AS n \
             ON c.c_nationkey = n.n_nationkey) AS _j1 JOIN tpch.region AS r \
             ON n_n_regionkey = r.r_regionkey WHERE c_c_name <> '' GROUP BY r.r_name \
             ORDER BY customers DESC"
        );
    }

    #[test]
    fn bare_columns_pass_through_and_one_join_is_left_alone() {
        let nested = nest_joins(
            "SELECT r_name, count() FROM tpch.customer JOIN tpch.nation ON c_nationkey = n_nationkey \
             JOIN tpch.region ON n_regionkey = r_regionkey GROUP BY r_name",
            &tpch(),
            "tpch",
        )
        .unwrap();
        assert_eq!(
            nested,
            "SELECT r_name, count() FROM (SELECT n_regionkey FROM tpch.customer JOIN tpch.nation \
             ON c_nationkey = n_nationkey) AS _j1 JOIN tpch.region ON n_regionkey = r_regionkey \
             GROUP BY r_name"
        );
        let one = "SELECT n_name FROM tpch.customer JOIN tpch.nation ON c_nationkey = n_nationkey";
        assert_eq!(nest_joins(one, &tpch(), "tpch"), None);
        assert_eq!(
            nest_joins(
                "SELECT * FROM tpch.customer JOIN tpch.nation ON c_nationkey = n_nationkey \
                 JOIN tpch.region ON n_regionkey = r_regionkey",
                &tpch(),
                "tpch"
            ),
            None
        );
    }
}
