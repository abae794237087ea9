//! A query checked against an [`Access`]: the tables it reads must be inside the user's roles,
//! it may not name a hidden column (nor `*` over a table with one), and each table with a row
//! filter is read through a subquery that applies it. What cannot be read from the parsed form
//! (text that does not parse, table functions that reach other servers or files, dictionary
//! lookups) is refused for users who may not read everything.
//!
//! This is Aurora's own check. The server's grants, written by `aurora rbac render`, are what
//! holds against a user who reaches ClickHouse without Aurora.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, InTarget, Query, Select, SelectItem, Spanned, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token};

use super::{Access, Denied};

/// Table functions that only make up rows and read nothing.
const HARMLESS_TABLE_FUNCTIONS: &[&str] = &[
    "numbers",
    "numbers_mt",
    "zeros",
    "zeros_mt",
    "generaterandom",
    "values",
    "one",
];

/// Scalar functions that read tables or dictionaries the query does not name.
const READING_FUNCTIONS: &[&str] = &["dictget", "dicthas", "dictisin", "joinget", "file"];

/// Whether `condition` is one expression (a row filter), or what is wrong with it.
pub fn check_condition(condition: &str) -> Result<(), String> {
    let dialect = ClickHouseDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(condition)
        .map_err(|e| e.to_string())?;
    parser.parse_expr().map_err(|e| e.to_string())?;
    parser
        .expect_token(&Token::EOF)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A table as a query names it.
struct Named {
    parts: Vec<String>,
    /// Called with arguments: a table function.
    function: bool,
    alias: Option<String>,
    span: sqlparser::tokenizer::Span,
    text: String,
}

#[derive(Default)]
struct Reader {
    ctes: Vec<String>,
    tables: Vec<Named>,
    /// Every name the statement uses as a relation (FROM, JOIN, INSERT INTO, DROP, ...).
    relations: Vec<Vec<String>>,
    /// Spans of ARRAY JOIN targets: columns, not tables.
    array_joined: Vec<sqlparser::tokenizer::Span>,
    /// The names written there.
    array_names: Vec<Vec<String>>,
    /// Names used as the right side of `x IN name`: tables.
    in_tables: Vec<Vec<String>>,
    /// A table expression this check cannot see into (a JSON table, a pivot, ...).
    opaque: Option<String>,
    identifiers: BTreeSet<String>,
    wildcard: bool,
    functions: BTreeSet<String>,
}

fn parts(name: &sqlparser::ast::ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map_or_else(|| p.to_string(), |i| i.value.clone())
        })
        .collect()
}

impl Visitor for Reader {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes
                .extend(with.cte_tables.iter().map(|c| c.alias.name.value.clone()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
        self.relations.push(parts(relation));
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        use sqlparser::ast::{JoinConstraint, JoinOperator};
        if select.projection.iter().any(|item| {
            matches!(
                item,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        }) {
            self.wildcard = true;
        }
        for from in &select.from {
            for join in &from.joins {
                match &join.join_operator {
                    JoinOperator::ArrayJoin
                    | JoinOperator::LeftArrayJoin
                    | JoinOperator::InnerArrayJoin => {
                        self.array_joined.push(join.relation.span());
                    }
                    other => {
                        let constraint = match other {
                            JoinOperator::Join(c)
                            | JoinOperator::Inner(c)
                            | JoinOperator::Left(c)
                            | JoinOperator::LeftOuter(c)
                            | JoinOperator::Right(c)
                            | JoinOperator::RightOuter(c)
                            | JoinOperator::FullOuter(c)
                            | JoinOperator::Semi(c)
                            | JoinOperator::LeftSemi(c)
                            | JoinOperator::RightSemi(c)
                            | JoinOperator::Anti(c)
                            | JoinOperator::LeftAnti(c)
                            | JoinOperator::RightAnti(c) => Some(c),
                            _ => None,
                        };
                        if let Some(
                            JoinConstraint::Using(names) | JoinConstraint::UsingAlias(names, _),
                        ) = constraint
                        {
                            for name in names {
                                self.identifiers.extend(parts(name));
                            }
                        }
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table { name, .. } if self.array_joined.contains(&factor.span()) => {
                // `ARRAY JOIN emails AS e`: `emails` is a column.
                self.identifiers.extend(parts(name));
                self.array_names.push(parts(name));
            }
            TableFactor::Table {
                name, alias, args, ..
            } => self.tables.push(Named {
                parts: parts(name),
                function: args.is_some(),
                alias: alias.as_ref().map(|a| a.name.value.clone()),
                span: factor.span(),
                text: name.to_string(),
            }),
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {}
            other => {
                let text = other.to_string();
                self.opaque.get_or_insert(text);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        use sqlparser::ast::{FunctionArgExpr, FunctionArguments};
        match expr {
            Expr::Identifier(i) => {
                self.identifiers.insert(i.value.clone());
            }
            // Every part: `contact.email` may be a hidden column's field.
            Expr::CompoundIdentifier(parts) => {
                self.identifiers
                    .extend(parts.iter().map(|p| p.value.clone()));
            }
            // `x IN table` reads the table.
            Expr::In { target, .. } => match target {
                InTarget::Table { name, args: None } => self.in_tables.push(parts(name)),
                // `IN (name)`: ClickHouse may read `name` as a table.
                InTarget::List(list) if list.len() == 1 => match &list[0] {
                    Expr::Identifier(i) => self.in_tables.push(vec![i.value.clone()]),
                    Expr::CompoundIdentifier(p) => self
                        .in_tables
                        .push(p.iter().map(|i| i.value.clone()).collect()),
                    _ => {}
                },
                _ => {}
            },
            Expr::Function(f) => {
                let name = f
                    .name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map_or_else(|| f.name.to_string(), |i| i.value.clone())
                    .to_lowercase();
                // `*` inside a call (`tuple(*)`, `cityHash64(*)`) or `COLUMNS('re')` reads
                // columns the query does not name; `count(*)` reads none.
                let star = matches!(&f.args, FunctionArguments::List(list)
                if list.args.iter().any(|a| matches!(a,
                    sqlparser::ast::FunctionArg::Unnamed(
                        FunctionArgExpr::Wildcard | FunctionArgExpr::QualifiedWildcard(_)
                    ))));
                if (star && name != "count") || name == "columns" {
                    self.wildcard = true;
                }
                self.functions.insert(name);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `sql` as it may run for `access`: unchanged, or with row-filtered tables read through a
/// filtering subquery; or why it may not run. `default_database` resolves unqualified names.
pub fn authorize(access: &Access, sql: &str, default_database: &str) -> Result<String, Denied> {
    if !access.enabled() {
        return Ok(sql.to_string());
    }
    let everything = access.reads_everything();
    let deny = |resource: &str, reason: String| Denied {
        action: "query".into(),
        resource: resource.into(),
        reason,
    };
    let statements = match Parser::parse_sql(&ClickHouseDialect {}, sql) {
        Ok(s) => s,
        Err(_) if everything => return Ok(sql.to_string()),
        Err(e) => {
            return Err(deny(
                "(not parsed)",
                format!(
                    "Aurora cannot read which tables and columns this query uses ({e}), and {}'s roles may not read everything",
                    access.actor.user
                ),
            ))
        }
    };
    let [statement] = statements.as_slice() else {
        return Err(deny("", "run one statement at a time".into()));
    };
    match statement {
        Statement::Query(_) => {}
        Statement::ShowTables { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowCreate { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowViews { .. }
        | Statement::ExplainTable { .. }
        | Statement::Explain { .. } => {
            if everything {
                return Ok(sql.to_string());
            }
            return Err(deny(
                "",
                "SHOW, DESCRIBE and EXPLAIN can name what lies outside this user's roles; `aurora schema` shows what they may read".into(),
            ));
        }
        Statement::Insert(_) => {
            access.allow("query.write", "")?;
        }
        _ => {
            access.allow("query.write", "")?;
            // Only INSERT's target is certain to be read from its parsed form; other writes
            // (DROP, ALTER, TRUNCATE, ...) are left to users who may touch everything.
            if !everything {
                return Err(deny(
                    "",
                    "of the statements that change data, only INSERT is allowed to roles that may not read everything".into(),
                ));
            }
        }
    }
    let mut reader = Reader::default();
    let _ = statement.visit(&mut reader);
    if let Some(what) = &reader.opaque {
        if !everything {
            return Err(deny(
                what,
                format!("Aurora cannot check what `{what}` reads; it is refused for roles that may not read everything"),
            ));
        }
    }
    if !everything {
        if let Some(f) = reader.functions.iter().find(|f| {
            READING_FUNCTIONS
                .iter()
                .any(|r| f.starts_with(r) && (*r != "file" || f.as_str() == "file"))
        }) {
            return Err(deny(
                f,
                format!("`{f}` reads data the query does not name, so it is refused for roles that may not read everything"),
            ));
        }
    }
    let resolve = |parts: &[String]| -> Option<(String, String)> {
        match parts {
            [t] => Some((default_database.to_string(), t.clone())),
            [d, t] => Some((d.clone(), t.clone())),
            _ => None,
        }
    };
    let is_cte = |parts: &[String]| matches!(parts, [t] if reader.ctes.contains(t));
    // A common table expression hides a table of the same name wherever it is visible; so that
    // no name can hide a table the user may not read in full, such names are refused.
    let cte_allowed = |name: &str| -> Result<(), Denied> {
        if everything {
            return Ok(());
        }
        match access.table(default_database, name) {
            Ok(t) if t.hidden.is_empty() && t.filter.is_none() => Ok(()),
            _ => Err(deny(
                name,
                format!("the common table expression `{name}` has the name of a table in {default_database} that this user may read only in part or not at all; rename it"),
            )),
        }
    };
    let mut rewrites = Vec::new();
    let mut seen = BTreeSet::new();
    for named in &reader.tables {
        if named.function {
            let name = named.parts.join(".").to_lowercase();
            if everything || HARMLESS_TABLE_FUNCTIONS.contains(&name.as_str()) {
                continue;
            }
            return Err(deny(
                &name,
                format!("the table function `{name}` reads outside the tables Aurora can check; it is refused for roles that may not read everything"),
            ));
        }
        if is_cte(&named.parts) {
            cte_allowed(&named.parts[0])?;
            continue;
        }
        let Some((database, table)) = resolve(&named.parts) else {
            return Err(deny(
                &named.parts.join("."),
                "a table is `table` or `database.table`".into(),
            ));
        };
        let rules = access.table(&database, &table)?;
        if seen.insert((database.clone(), table.clone())) {
            for column in &rules.hidden {
                let resource = format!("{database}.{table}.{column}");
                let by = access.hiding(&database, &table, column).join(", ");
                if reader.wildcard {
                    return Err(deny(
                        &resource,
                        format!(
                            "`*` would read {resource}, hidden by {by}; name the columns you need"
                        ),
                    ));
                }
                if reader.identifiers.contains(column) {
                    return Err(deny(
                        &resource,
                        format!("column {resource} is hidden by {by}; leave it out of the query"),
                    ));
                }
            }
        }
        if let Some(filter) = rules.filter {
            // `FROM t FINAL` parses with FINAL as the alias: it stays with the table.
            let final_ = named
                .alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("final"));
            let alias = named
                .alias
                .clone()
                .filter(|_| !final_)
                .unwrap_or_else(|| table.clone());
            rewrites.push((
                named.span,
                format!(
                    "(SELECT * FROM {}{} WHERE {filter}) AS {}",
                    named.text,
                    if final_ { " FINAL" } else { "" },
                    crate::warehouse::query::ident(&alias)
                ),
            ));
        }
    }
    // Tables named elsewhere: `x IN table`, INSERT INTO, DROP, ...
    let functions: Vec<&Vec<String>> = reader
        .tables
        .iter()
        .filter(|t| t.function)
        .map(|t| &t.parts)
        .collect();
    let others = reader
        .in_tables
        .iter()
        .map(|p| (p, true))
        .chain(reader.relations.iter().map(|p| (p, false)));
    for (named, in_list) in others {
        if functions.contains(&named) || (!in_list && reader.array_names.contains(named)) {
            continue;
        }
        if is_cte(named) {
            cte_allowed(&named[0])?;
            continue;
        }
        let Some((database, table)) = resolve(named) else {
            continue;
        };
        let rules = access.table(&database, &table)?;
        if in_list && (rules.filter.is_some() || !rules.hidden.is_empty()) {
            return Err(deny(
                &format!("{database}.{table}"),
                format!("`IN {database}.{table}` would read rows or columns the user's roles leave out; write `IN (SELECT column FROM {database}.{table})`"),
            ));
        }
    }
    Ok(splice(sql, rewrites))
}

/// `sql` with each span replaced by its text (spans do not overlap: they are table names).
fn splice(sql: &str, mut rewrites: Vec<(sqlparser::tokenizer::Span, String)>) -> String {
    if rewrites.is_empty() {
        return sql.to_string();
    }
    let offset = |at: Location| -> usize {
        let mut line = 1u64;
        let mut column = 1u64;
        for (i, c) in sql.char_indices() {
            if line == at.line && column == at.column {
                return i;
            }
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        sql.len()
    };
    rewrites.sort_by_key(|(span, _)| std::cmp::Reverse((span.start.line, span.start.column)));
    let mut out = sql.to_string();
    for (span, text) in rewrites {
        let (start, end) = (offset(span.start), offset(span.end));
        out.replace_range(start..end, &text);
    }
    out
}
