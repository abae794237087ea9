//! The tables a query names, read from its parsed form: what an audit record says a query
//! touched (and what access rules will check).

use std::ops::ControlFlow;

use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;

/// The tables (`db.table` or `table`, as written) that `sql` reads or writes, each once, in
/// order of appearance; common table expressions' own names are left out. None when the text
/// does not parse.
pub fn tables_in(sql: &str) -> Option<Vec<String>> {
    let statements = Parser::parse_sql(&ClickHouseDialect {}, sql).ok()?;
    let mut ctes = Vec::new();
    let _ = sqlparser::ast::visit_statements(&statements, |s| {
        if let sqlparser::ast::Statement::Query(q) = s {
            if let Some(with) = &q.with {
                ctes.extend(with.cte_tables.iter().map(|c| c.alias.name.value.clone()));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let mut tables: Vec<String> = Vec::new();
    let _ = sqlparser::ast::visit_relations(&statements, |name| {
        let text = name
            .0
            .iter()
            .map(|part| {
                part.as_ident()
                    .map_or_else(|| part.to_string(), |i| i.value.clone())
            })
            .collect::<Vec<_>>()
            .join(".");
        if !ctes.contains(&text) && !tables.contains(&text) {
            tables.push(text);
        }
        ControlFlow::<()>::Continue(())
    });
    Some(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_table_once_and_not_ctes() {
        assert_eq!(
            tables_in(
                "WITH top AS (SELECT user FROM shop.orders LIMIT 5) \
                 SELECT * FROM top JOIN users u ON u.id = top.user \
                 WHERE u.id IN (SELECT id FROM shop.orders)"
            )
            .unwrap(),
            ["shop.orders", "users"]
        );
        assert_eq!(tables_in("SELECT 1").unwrap(), Vec::<String>::new());
        assert_eq!(tables_in("SELEC nonsense").map(|t| t.len()), None);
        assert_eq!(
            tables_in("INSERT INTO db.t SELECT * FROM db.s").unwrap(),
            ["db.t", "db.s"]
        );
    }
}
