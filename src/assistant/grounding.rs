//! Text values a query compares a column with, checked against the data before it runs: a
//! model writes the value as the question says it (`'Embraer'`, `'bos'`), while the column
//! holds `'EMBRAER'` and `'BOS'`; such a filter matches nothing and the answer is a silent 0.
//! When the column holds the value in exactly one other letter case, that spelling is used
//! (with a note). The values come from the sampled low-cardinality values when there are
//! any, else from one query per value (`lower(col) = lower('value')`, at most a few rows).

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, InTarget, Statement, TableFactor, Value, Visit, Visitor,
};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

use super::linking::ValueSamples;
use super::shape::{resolve, string_literal, QueryTable};
use super::validate::relation_name;
use crate::warehouse::query::{quote_ident, quote_str};
use crate::warehouse::schema::Schema;
use crate::warehouse::{QueryOptions, Warehouse, WarehouseError};

/// Every table the statement reads, in any of its subqueries, with its alias.
struct Tables<'a> {
    schema: &'a Schema,
    default_database: &'a str,
    found: Vec<QueryTable<'a>>,
}

impl Visitor for Tables<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, .. } = factor {
            if let Some(table) = self
                .schema
                .table(&relation_name(name), self.default_database)
            {
                self.found.push(QueryTable {
                    table,
                    alias: alias.as_ref().map(|a| a.name.value.clone()),
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// A text column a comparison reads: `(database, table, column)`.
type ColumnKey = (String, String, String);

/// Calls `f(column, value)` for each side pair of `a = b`, `a <> b` and `a IN (b, ...)`
/// in the statement, with the right to change the value.
fn each_comparison(statement: &mut Statement, mut f: impl FnMut(&Expr, &mut Expr)) {
    let _ = sqlparser::ast::visit_expressions_mut(statement, |e| {
        match e {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq | BinaryOperator::NotEq,
                right,
            } => {
                let (l, r) = (left.as_ref().clone(), right.as_ref().clone());
                f(&l, right);
                f(&r, left);
            }
            Expr::In {
                expr,
                target: InTarget::List(list),
                ..
            } => {
                let column = expr.as_ref().clone();
                list.iter_mut().for_each(|v| f(&column, v));
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The `(column, value)` pairs of `col = 'v'`, `col <> 'v'` and `col IN ('v', ...)` whose
/// column is a text column of a schema table.
fn comparisons(statement: &Statement, tables: &[QueryTable<'_>]) -> Vec<(ColumnKey, String)> {
    let mut out = Vec::new();
    each_comparison(&mut statement.clone(), |column, value| {
        let (Some((table, info)), Some(text)) = (resolve(column, tables), string_literal(value))
        else {
            return;
        };
        if info.data_type().is_some_and(|t| t.is_string_like()) && !text.is_empty() {
            let key = (
                table.database.clone(),
                table.name.clone(),
                info.name.clone(),
            );
            out.push((key, text.to_string()));
        }
    });
    out
}

/// The query with each compared value the data holds only in another letter case written as
/// the data has it, and a note per change. Values the data does not hold at all are left.
pub async fn ground_values(
    sql: &str,
    schema: &Schema,
    default_database: &str,
    samples: &ValueSamples,
    warehouse: &Warehouse,
    access: Option<&crate::rbac::Access>,
) -> Result<(String, Vec<String>), WarehouseError> {
    let Ok(mut statements) = Parser::parse_sql(&ClickHouseDialect {}, sql) else {
        return Ok((sql.to_string(), Vec::new()));
    };
    let [statement] = statements.as_mut_slice() else {
        return Ok((sql.to_string(), Vec::new()));
    };
    let mut visitor = Tables {
        schema,
        default_database,
        found: Vec::new(),
    };
    let _ = statement.visit(&mut visitor);
    let mut fixes: BTreeMap<(ColumnKey, String), String> = BTreeMap::new();
    for (key, value) in comparisons(statement, &visitor.found) {
        if fixes.contains_key(&(key.clone(), value.clone())) {
            continue;
        }
        let (database, table, column) = &key;
        let qualified = format!("{database}.{table}");
        let sampled = samples
            .values
            .get(&(qualified.clone(), column.clone()))
            .cloned();
        let spellings: Vec<String> = match sampled {
            Some(values) => values
                .into_iter()
                .filter(|v| v.to_lowercase() == value.to_lowercase())
                .collect(),
            // Rows outside the user's row filter are not looked into, not even for a spelling.
            None if access.is_some_and(|a| {
                a.table(database, table)
                    .map_or(true, |t| t.filter.is_some())
            }) =>
            {
                Vec::new()
            }
            None => {
                let sql = format!(
                    "SELECT DISTINCT toString({c}) FROM {}.{} WHERE lower(toString({c})) = lower({}) LIMIT 3",
                    quote_ident(database),
                    quote_ident(table),
                    quote_str(&value),
                    c = quote_ident(column),
                );
                match warehouse.query(&sql, &QueryOptions::default()).await {
                    Ok(result) => result
                        .rows
                        .iter()
                        .filter_map(|r| match r.first() {
                            Some(crate::warehouse::value::Value::String(s)) => Some(s.to_string()),
                            _ => None,
                        })
                        .collect(),
                    // A column that cannot be read this way is left to the checks.
                    Err(WarehouseError::Server(e)) => {
                        tracing::debug!("cannot check values of {qualified}.{column}: {e}");
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if spellings.contains(&value) {
            continue;
        }
        if let [only] = spellings.as_slice() {
            fixes.insert((key, value), only.clone());
        }
    }
    if fixes.is_empty() {
        return Ok((sql.to_string(), Vec::new()));
    }
    let tables = visitor.found;
    let mut notes = Vec::new();
    let mut respell = |column: &Expr, value: &mut Expr| {
        let (Some((table, info)), Some(text)) = (resolve(column, &tables), string_literal(value))
        else {
            return;
        };
        let key = (
            table.database.clone(),
            table.name.clone(),
            info.name.clone(),
        );
        if let Some(fixed) = fixes.get(&(key, text.to_string())) {
            let note = format!(
                "`{}` holds '{fixed}', not '{text}': used '{fixed}'",
                info.name
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
            *value = Expr::value(Value::SingleQuotedString(fixed.clone()));
        }
    };
    each_comparison(statement, &mut respell);
    Ok((statement.to_string(), notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::joins::tests::flights;

    #[test]
    fn comparisons_name_text_columns_only() {
        let schema = flights();
        let sql = "SELECT count() FROM flights.flights AS f JOIN flights.airlines AS a \
                   ON f.carrier = a.carrier WHERE a.name = 'united' AND f.dest IN ('bos', 'LAX') \
                   AND f.year = 2013 AND f.origin <> ''";
        let statement = Parser::parse_sql(&ClickHouseDialect {}, sql)
            .unwrap()
            .remove(0);
        let mut visitor = Tables {
            schema: &schema,
            default_database: "flights",
            found: Vec::new(),
        };
        let _ = statement.visit(&mut visitor);
        let found: Vec<String> = comparisons(&statement, &visitor.found)
            .into_iter()
            .map(|((_, t, c), v)| format!("{t}.{c}={v}"))
            .collect();
        assert_eq!(
            found,
            vec![
                "airlines.name=united",
                "flights.dest=bos",
                "flights.dest=LAX"
            ]
        );
    }
}
