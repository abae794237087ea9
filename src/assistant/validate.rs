//! Checks a generated query before anything runs it, without trusting the model: the text is
//! cut out of the answer, obvious dialect slips are rewritten, `sqlparser` (ClickHouse
//! dialect) must find exactly one read-only query, and every table and column it names must
//! exist. The server's dry run comes after this (in `ask`), as the final word.
//! A [`Problem`] is written for two readers: the user, and the model in a repair attempt.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, ObjectNamePart, Query,
    Select, SelectItem, SetExpr, Spanned, Statement, TableFactor, Visit, Visitor,
};
use sqlparser::dialect::ClickHouseDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::linking::user_tables;
use crate::warehouse::schema::{Schema, TableInfo};

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Empty,
    Parse(String),
    /// More than one statement, or a statement that is not a query.
    NotAQuery(String),
    /// A query that would write, or lift Aurora's limits (`INTO OUTFILE`, `SETTINGS`, ...).
    NotReadOnly(String),
    UnknownTable {
        name: String,
        known: Vec<String>,
    },
    UnknownColumn {
        name: String,
        tables: Vec<String>,
        did_you_mean: Option<String>,
    },
    /// `x.col` where `x` is neither a table of the query nor an alias given in it.
    UnknownQualifier {
        name: String,
        known: Vec<String>,
    },
    /// The server's dry run refused it.
    Server(String),
    /// The user's roles do not allow it (the reason names the rule).
    Denied(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => write!(f, "the model wrote no SQL"),
            Problem::Parse(e) => write!(f, "not valid SQL: {e}"),
            Problem::NotAQuery(what) => {
                write!(f, "only a single SELECT query is allowed, not {what}")
            }
            Problem::NotReadOnly(what) => write!(f, "refused: {what}"),
            Problem::Denied(reason) => write!(f, "denied: {reason}"),
            Problem::UnknownTable { name, known } => write!(
                f,
                "there is no table `{name}`; the tables are: {}",
                known.join(", ")
            ),
            Problem::UnknownColumn {
                name,
                tables,
                did_you_mean,
            } => {
                write!(f, "there is no column `{name}` in {}", tables.join(", "))?;
                if let Some(s) = did_you_mean {
                    write!(f, "; did you mean `{s}`?")?;
                }
                Ok(())
            }
            Problem::UnknownQualifier { name, known } if known.is_empty() => write!(
                f,
                "`{name}`: the query gives no table that name; write database.table.column or give the table an alias"
            ),
            Problem::UnknownQualifier { name, known } => write!(
                f,
                "`{name}`: the query gives no table that name; its table aliases are: {}",
                known.join(", ")
            ),
            Problem::Server(e) => write!(f, "{e}"),
        }
    }
}

/// The SQL in a model's answer: `prefix` (the part of the answer that was forced, e.g.
/// `SELECT `) plus what the model wrote, without code fences, explanations after it, or
/// a trailing `;`.
pub fn extract_sql(prefix: &str, generated: &str) -> String {
    let mut text = generated.to_string();
    // A model that opened a code fence itself puts the query inside it.
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        let after = after
            .strip_prefix("sql")
            .or_else(|| after.strip_prefix("SQL"))
            .unwrap_or(after);
        let opens_the_answer = start == 0 || prefix.is_empty();
        text = match after.find("```") {
            Some(end) if opens_the_answer => after[..end].to_string(),
            // A fence the answer opened but did not close (cut by the token limit).
            None if opens_the_answer => after.to_string(),
            _ => text[..start].to_string(),
        };
    }
    // An answer that starts over with its own SELECT or WITH (a backend that could not
    // force the prefix) is whole already.
    let head = text
        .trim_start()
        .get(..6)
        .unwrap_or_default()
        .to_ascii_uppercase();
    let whole =
        head.starts_with("SELECT") || head.starts_with("WITH ") || head.starts_with("WITH\n");
    // Tokenizers often put the space after the prefix into the first generated token.
    let mut sql = match (prefix.is_empty(), text.starts_with(char::is_whitespace)) {
        _ if whole => text.trim_start().to_string(),
        (false, true) => format!("{prefix} {}", text.trim_start()),
        _ => format!("{prefix}{text}"),
    };
    // An explanation after a blank line is prose, not SQL.
    if let Some(at) = sql.find("\n\n") {
        sql.truncate(at);
    }
    let trimmed = sql.trim();
    let end = first_statement_end(trimmed).unwrap_or(trimmed.len());
    trimmed[..end].trim().to_string()
}

/// The byte offset of the first `;` outside string literals and quoted names.
fn first_statement_end(sql: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in sql.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '\'' | '"' | '`') => quote = Some(c),
            None if c == ';' => return Some(i),
            None => {}
        }
    }
    None
}

/// Names the query uses and the tables they resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckedQuery {
    pub sql: String,
    /// Qualified names of the tables read.
    pub tables: Vec<String>,
    /// sqlparser could not read this ClickHouse syntax; the statement was checked from its
    /// tokens instead (one statement, starts with SELECT/WITH, no write keywords).
    pub checked_by_tokens: bool,
}

/// Rewrites slips a small model makes that have one obvious fix: a table written without
/// its database when exactly one table has that name. Returns the query unchanged when it
/// does not parse.
pub fn qualify_tables(sql: &str, schema: &Schema) -> String {
    let Ok(statements) = Parser::parse_sql(&ClickHouseDialect {}, sql) else {
        return sql.to_string();
    };
    let mut ctes = BTreeSet::new();
    let mut bare = Vec::new();
    let _ = sqlparser::ast::visit_statements(&statements, |s| {
        if let Statement::Query(q) = s {
            collect_cte_names(q, &mut ctes);
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = sqlparser::ast::visit_relations(&statements, |name: &ObjectName| {
        if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
            if !ctes.contains(&ident.value) {
                let matches: Vec<&TableInfo> = user_tables(schema)
                    .filter(|t| t.name == ident.value)
                    .collect();
                if let [table] = matches.as_slice() {
                    bare.push((ident.span, table.database.clone()));
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let mut out = sql.to_string();
    // From the end, so earlier offsets stay valid.
    let mut inserts: Vec<(usize, String)> = bare
        .into_iter()
        .filter_map(|(span, db)| {
            offset_of(sql, span.start.line, span.start.column).map(|at| (at, db))
        })
        .collect();
    inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    inserts.dedup_by_key(|(at, _)| *at);
    for (at, db) in inserts {
        out.insert_str(at, &format!("{}.", crate::warehouse::query::ident(&db)));
    }
    out
}

/// Every mechanical rewrite, in order: tables qualified, other dialects' spellings, Decimal
/// arguments of quantiles cast. Each returns its input unchanged when it does not apply.
pub fn rewrite(sql: &str, schema: &Schema, default_database: &str) -> String {
    let sql = qualify_tables(sql, schema);
    let sql = clickhouse_spelling(&sql);
    cast_decimal_quantiles(&sql, schema, default_database)
}

/// Functions of other SQL dialects a small model writes, and their ClickHouse names
/// (valid on every server version; 18.16 has no `year()` alias, for one).
pub const FOREIGN_FUNCTIONS: &[(&str, &str)] = &[
    ("year", "toYear"),
    ("month", "toMonth"),
    ("day", "toDayOfMonth"),
    ("dayofmonth", "toDayOfMonth"),
    ("dayofweek", "toDayOfWeek"),
    ("hour", "toHour"),
    ("minute", "toMinute"),
    ("date", "toDate"),
    ("curdate", "today"),
    ("current_date", "today"),
    ("len", "length"),
];

/// Rewrites what has one ClickHouse spelling: `year(t)` → `toYear(t)` (see
/// [`FOREIGN_FUNCTIONS`]), `CAST(x AS DECIMAL)` without precision, which ClickHouse
/// refuses, → `toFloat64(x)`, `countIf(cond1, cond2)` → `countIf(cond1 AND cond2)`, and
/// `'2026-11-17 18:30'` → `'2026-11-17 18:30:00'`. Returns the query unchanged when it does not parse.
pub fn clickhouse_spelling(sql: &str) -> String {
    let Ok(statements) = Parser::parse_sql(&ClickHouseDialect {}, sql) else {
        return sql.to_string();
    };
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    let range = |span: sqlparser::tokenizer::Span| {
        Some((
            offset_of(sql, span.start.line, span.start.column)?,
            offset_of(sql, span.end.line, span.end.column)?,
        ))
    };
    let _ = sqlparser::ast::visit_expressions(&statements, |expr| {
        match expr {
            Expr::Function(f) => {
                if let [ObjectNamePart::Identifier(ident)] = f.name.0.as_slice() {
                    let lower = ident.value.to_ascii_lowercase();
                    let renamed = FOREIGN_FUNCTIONS.iter().find(|(from, _)| *from == lower);
                    if let (Some((_, to)), Some((a, b))) = (renamed, range(ident.span)) {
                        replacements.push((a, b, (*to).to_string()));
                    }
                    // `countIf(a = 1, b = 2)` means "count where a = 1" to ClickHouse (the
                    // condition is the last argument), but a model writing it means both.
                    if lower == "countif" && conditions_only(f) {
                        if let Some((a, b)) = range(ident.span) {
                            if let Some((close, args)) = call_arguments(sql, b) {
                                let parts: Vec<&str> =
                                    args.iter().map(|(x, y)| sql[*x..*y].trim()).collect();
                                let name = &sql[a..b];
                                replacements.push((
                                    a,
                                    close + 1,
                                    format!("{name}({})", parts.join(" AND ")),
                                ));
                            }
                        }
                    }
                }
            }
            // ClickHouse cannot parse a date-time without its seconds.
            Expr::Value(v) => {
                if let sqlparser::ast::Value::SingleQuotedString(text) = &v.value {
                    if let (true, Some((a, b))) = (is_minute_datetime(text), range(v.span)) {
                        replacements.push((a, b, format!("'{text}:00'")));
                    }
                }
            }
            Expr::Cast {
                expr: inner,
                data_type:
                    sqlparser::ast::DataType::Decimal(sqlparser::ast::ExactNumberInfo::None)
                    | sqlparser::ast::DataType::Numeric(sqlparser::ast::ExactNumberInfo::None)
                    | sqlparser::ast::DataType::Dec(sqlparser::ast::ExactNumberInfo::None),
                ..
            } => {
                // The expression's span covers only its operand: find `CAST(` before it and
                // `AS DECIMAL)` after it in the text.
                if let Some((ia, _)) = range(inner.span()) {
                    if let Some(((a, b), (oa, ob))) = cast_around(sql, ia) {
                        replacements.push((a, b, format!("toFloat64({})", sql[oa..ob].trim())));
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    // From the end, so earlier offsets stay valid. Of two overlapping edits (a renamed
    // function inside a cast) only the inner one is made; the repair loop sees the rest.
    replacements.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out = sql.to_string();
    let mut floor = usize::MAX;
    for (a, b, text) in replacements {
        if b <= floor && a <= b && out.is_char_boundary(a) && out.is_char_boundary(b) {
            out.replace_range(a..b, &text);
            floor = a;
        }
    }
    out
}

/// `2026-11-17 18:30`: a date-time to the minute, which ClickHouse does not parse.
fn is_minute_datetime(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ' || *c == b'T',
            13 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Whether a call has two or more arguments and every one is a condition (a comparison,
/// `IN`, `LIKE`, `IS NULL`, `AND`/`OR`/`NOT` of those).
fn conditions_only(f: &sqlparser::ast::Function) -> bool {
    use sqlparser::ast::BinaryOperator as Op;
    fn condition(e: &Expr) -> bool {
        match e {
            Expr::BinaryOp { op, left, right } => match op {
                Op::And | Op::Or => condition(left) && condition(right),
                Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq => true,
                _ => false,
            },
            Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => condition(inner),
            Expr::In { .. }
            | Expr::Like { .. }
            | Expr::ILike { .. }
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::Between { .. } => true,
            _ => false,
        }
    }
    let FunctionArguments::List(list) = &f.args else {
        return false;
    };
    list.args.len() >= 2
        && list
            .args
            .iter()
            .all(|a| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if condition(e)))
}

/// The tokens directly inside the parentheses opened at byte `open` (nested ones skipped),
/// each with its byte offset, and the offset of the closing parenthesis. Uses sqlparser's
/// tokenizer, so parentheses and commas inside strings do not count.
fn inside_parentheses(sql: &str, open: usize) -> Option<(Vec<(Token, usize)>, usize)> {
    let text = sql.get(open..)?;
    let tokens = Tokenizer::new(&ClickHouseDialect {}, text)
        .tokenize_with_location()
        .ok()?;
    let mut depth = 0usize;
    let mut top = Vec::new();
    for t in tokens {
        let at = open + offset_of(text, t.span.start.line, t.span.start.column)?;
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 1 => return Some((top, at)),
            Token::RParen => depth = depth.checked_sub(1)?,
            token if depth == 1 => top.push((token, at)),
            _ => {}
        }
    }
    None
}

/// The arguments of the call whose name ends at byte `name_end`: the offset of its closing
/// parenthesis and the byte range of each argument.
fn call_arguments(sql: &str, name_end: usize) -> Option<(usize, Vec<(usize, usize)>)> {
    let rest = sql.get(name_end..)?;
    let open = rest.find('(')?;
    if !rest[..open].trim().is_empty() {
        return None;
    }
    let (top, close) = inside_parentheses(sql, name_end + open)?;
    let mut args = Vec::new();
    let mut start = name_end + open + 1;
    for (token, at) in top {
        if token == Token::Comma {
            args.push((start, at));
            start = at + 1;
        }
    }
    args.push((start, close));
    Some((close, args))
}

/// For the operand starting at `ia` of `CAST(<operand> AS DECIMAL)`: the byte range of the
/// whole cast and of the operand. (sqlparser's spans end before a closing parenthesis, so
/// the text is scanned for the matching one.)
fn cast_around(sql: &str, ia: usize) -> Option<((usize, usize), (usize, usize))> {
    let before = sql.get(..ia)?.trim_end().strip_suffix('(')?;
    let open = before.len();
    let before = before.trim_end();
    let start = before.len().checked_sub(4)?;
    if !before.get(start..)?.eq_ignore_ascii_case("cast") {
        return None;
    }
    let (top, close) = inside_parentheses(sql, open)?;
    let last_as = top
        .iter()
        .rev()
        .find(|(t, _)| matches!(t, Token::Word(w) if w.keyword == Keyword::AS))
        .map(|(_, at)| *at)?;
    Some(((start, close + 1), (open + 1, last_as)))
}

/// On servers where `median`/`quantile*` refuse `Decimal` arguments (18.16: "Illegal type
/// Decimal(10, 2) of argument for aggregate function quantile"), wraps such a column in
/// `toFloat64(...)`. A small model cannot fix that from the error; the fix is mechanical.
pub fn cast_decimal_quantiles(sql: &str, schema: &Schema, default_database: &str) -> String {
    let Ok(statements) = Parser::parse_sql(&ClickHouseDialect {}, sql) else {
        return sql.to_string();
    };
    let mut names = Names::default();
    let _ = statements.visit(&mut names);
    let decimal_columns: BTreeSet<&str> = names
        .relations
        .iter()
        .filter_map(|r| schema.table(r, default_database))
        .flat_map(|t| t.columns.iter())
        .filter(|c| c.type_name.contains("Decimal"))
        .map(|c| c.name.as_str())
        .collect();
    let mut wraps = Vec::new();
    let _ = sqlparser::ast::visit_expressions(&statements, |expr| {
        let Expr::Function(f) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let name = f.name.to_string().to_ascii_lowercase();
        if !(name.starts_with("median") || name.starts_with("quantile")) {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &f.args else {
            return ControlFlow::Continue(());
        };
        for arg in &list.args {
            let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg else {
                continue;
            };
            let (column, start, end) = match e {
                Expr::Identifier(i) => (&i.value, i.span.start, i.span.end),
                Expr::CompoundIdentifier(parts) => match (parts.first(), parts.last()) {
                    (Some(a), Some(b)) => (&b.value, a.span.start, b.span.end),
                    _ => continue,
                },
                _ => continue,
            };
            if decimal_columns.contains(column.as_str()) {
                wraps.push((start, end));
            }
        }
        ControlFlow::Continue(())
    });
    let mut edits: Vec<(usize, &str)> = Vec::new();
    for (start, end) in wraps {
        if let (Some(a), Some(b)) = (
            offset_of(sql, start.line, start.column),
            offset_of(sql, end.line, end.column),
        ) {
            edits.push((a, "toFloat64("));
            edits.push((b, ")"));
        }
    }
    // From the end, so earlier offsets stay valid; at one offset, `)` goes before `toFloat64(`.
    edits.sort_by(|x, y| y.0.cmp(&x.0).then_with(|| y.1.cmp(x.1)));
    let mut out = sql.to_string();
    for (at, text) in edits {
        out.insert_str(at, text);
    }
    out
}

/// Byte offset of a 1-based line and character column.
fn offset_of(text: &str, line: u64, column: u64) -> Option<usize> {
    if line == 0 || column == 0 {
        return None;
    }
    let mut line_start = 0;
    for _ in 1..line {
        line_start += text[line_start..].find('\n')? + 1;
    }
    let rest = &text[line_start..];
    let chars = usize::try_from(column - 1).ok()?;
    match rest.char_indices().nth(chars) {
        Some((i, _)) => Some(line_start + i),
        None if rest.chars().count() == chars => Some(text.len()),
        None => None,
    }
}

fn collect_cte_names(query: &Query, names: &mut BTreeSet<String>) {
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            names.insert(cte.alias.name.value.clone());
        }
    }
}

/// Keywords that never belong in a read-only query.
const WRITE_KEYWORDS: &[Keyword] = &[
    Keyword::INSERT,
    Keyword::UPDATE,
    Keyword::DELETE,
    Keyword::DROP,
    Keyword::ALTER,
    Keyword::CREATE,
    Keyword::TRUNCATE,
    Keyword::RENAME,
    Keyword::ATTACH,
    Keyword::DETACH,
    Keyword::OPTIMIZE,
    Keyword::GRANT,
    Keyword::REVOKE,
    Keyword::KILL,
    Keyword::SYSTEM,
    Keyword::SET,
    Keyword::SETTINGS,
    Keyword::INTO,
    Keyword::FORMAT,
];

/// Parses and checks `sql` against `schema`. Unqualified table names resolve in
/// `default_database` first.
pub fn check(sql: &str, schema: &Schema, default_database: &str) -> Result<CheckedQuery, Problem> {
    if sql.trim().is_empty() {
        return Err(Problem::Empty);
    }
    let dialect = ClickHouseDialect {};
    let statements = match Parser::parse_sql(&dialect, sql) {
        Ok(s) => s,
        Err(e) => return check_tokens(sql, e.to_string(), schema, default_database),
    };
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return Err(Problem::Empty),
        many => return Err(Problem::NotAQuery(format!("{} statements", many.len()))),
    };
    let Statement::Query(query) = statement else {
        return Err(Problem::NotAQuery(format!(
            "a {} statement",
            statement_kind(statement)
        )));
    };
    let mut names = Names::default();
    let _ = query.visit(&mut names);
    if let Some(refusal) = names.refusal {
        return Err(Problem::NotReadOnly(refusal));
    }
    let known_tables: Vec<String> = user_tables(schema).map(TableInfo::qualified_name).collect();
    let mut tables: Vec<&TableInfo> = Vec::new();
    for name in &names.relations {
        if names.ctes.contains(name) {
            continue;
        }
        match schema.table(name, default_database) {
            Some(t) if user_tables(schema).any(|u| u == t) => tables.push(t),
            _ => {
                return Err(Problem::UnknownTable {
                    name: name.clone(),
                    known: known_tables,
                })
            }
        }
    }
    tables.dedup();
    let columns: BTreeSet<&str> = tables
        .iter()
        .flat_map(|t| t.columns.iter().map(|c| c.name.as_str()))
        .collect();
    // `x.col`: x must be a table of the query (by name) or an alias given in it.
    let qualifiers: BTreeSet<&str> = tables
        .iter()
        .flat_map(|t| [t.name.as_str(), t.database.as_str()])
        .chain(names.table_aliases.iter().map(String::as_str))
        .chain(names.ctes.iter().map(String::as_str))
        .collect();
    for (qualifier, column) in &names.qualified {
        if !tables.is_empty() && !qualifiers.contains(qualifier.as_str()) {
            return Err(Problem::UnknownQualifier {
                name: format!("{qualifier}.{column}"),
                known: names.table_aliases.iter().cloned().collect(),
            });
        }
    }
    for name in &names.columns {
        let known = columns.contains(name.as_str())
            || names.aliases.contains(name)
            || names.table_aliases.contains(name)
            || names.ctes.contains(name);
        if !known && !tables.is_empty() {
            let did_you_mean = columns
                .iter()
                .map(|c| (strsim::jaro_winkler(c, name), *c))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, c)| c.to_string());
            return Err(Problem::UnknownColumn {
                name: name.clone(),
                tables: tables.iter().map(|t| t.qualified_name()).collect(),
                did_you_mean,
            });
        }
    }
    Ok(CheckedQuery {
        sql: sql.to_string(),
        tables: tables.iter().map(|t| t.qualified_name()).collect(),
        checked_by_tokens: false,
    })
}

/// For ClickHouse syntax sqlparser does not know (e.g. `ANY LEFT JOIN`): the statement must
/// still be one query by its tokens. The server's dry run then decides.
fn check_tokens(
    sql: &str,
    parse_error: String,
    schema: &Schema,
    default_database: &str,
) -> Result<CheckedQuery, Problem> {
    let dialect = ClickHouseDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| Problem::Parse(e.to_string()))?;
    let mut words = tokens.iter().filter_map(|t| match t {
        Token::Word(w) => Some(w),
        _ => None,
    });
    let starts_as_query = tokens
        .iter()
        .find(|t| !matches!(t, Token::Whitespace(_) | Token::LParen))
        .is_some_and(|t| {
            matches!(t, Token::Word(w) if w.keyword == Keyword::SELECT || w.keyword == Keyword::WITH)
        });
    if tokens.iter().any(|t| matches!(t, Token::SemiColon)) {
        return Err(Problem::NotAQuery("more than one statement".into()));
    }
    if let Some(w) = words.find(|w| w.quote_style.is_none() && WRITE_KEYWORDS.contains(&w.keyword))
    {
        return Err(Problem::NotReadOnly(format!("`{}` in a query", w.value)));
    }
    if !starts_as_query {
        return Err(Problem::Parse(parse_error));
    }
    let tables = relations_by_tokens(&tokens, schema, default_database)?;
    Ok(CheckedQuery {
        sql: sql.to_string(),
        tables,
        checked_by_tokens: true,
    })
}

/// What follows each `FROM` and `JOIN` in a token stream: a subquery, a CTE name, or a table
/// of the schema, never a table function (`url(...)`, `remote(...)`, `file(...)`) and never a
/// table outside the schema (`system.query_log`), quoted or not.
fn relations_by_tokens(
    tokens: &[Token],
    schema: &Schema,
    default_database: &str,
) -> Result<Vec<String>, Problem> {
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    // `WITH name AS (...)`: names defined in the query itself.
    let mut ctes = BTreeSet::new();
    for pair in significant.windows(3) {
        if let [Token::Word(name), Token::Word(as_word), Token::LParen] = pair {
            if as_word.keyword == Keyword::AS {
                ctes.insert(name.value.clone());
            }
        }
    }
    let known: Vec<String> = user_tables(schema).map(TableInfo::qualified_name).collect();
    let mut tables = Vec::new();
    let mut i = 0;
    while i < significant.len() {
        let is_from = matches!(significant[i], Token::Word(w)
            if w.quote_style.is_none() && matches!(w.keyword, Keyword::FROM | Keyword::JOIN));
        i += 1;
        if !is_from {
            continue;
        }
        let mut parts = Vec::new();
        while let Some(Token::Word(w)) = significant.get(i) {
            parts.push(w.value.clone());
            i += 1;
            if matches!(significant.get(i), Some(Token::Period)) {
                i += 1;
            } else {
                break;
            }
        }
        if parts.is_empty() {
            continue; // a subquery: `FROM (`
        }
        let name = parts.join(".");
        if matches!(significant.get(i), Some(Token::LParen)) {
            return Err(Problem::NotReadOnly(format!(
                "the table function `{name}` (only tables of the schema can be read)"
            )));
        }
        if parts.len() == 1 && ctes.contains(&name) {
            continue;
        }
        match schema.table(&name, default_database) {
            Some(t) if user_tables(schema).any(|u| u == t) => tables.push(t.qualified_name()),
            _ => {
                return Err(Problem::UnknownTable {
                    name,
                    known: known.clone(),
                })
            }
        }
    }
    tables.dedup();
    Ok(tables)
}

fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    let first = words.first().copied().unwrap_or("non-query").to_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" | "SHOW" | "TRUNCATE" => {
            format!(
                "{first} {}",
                words.get(1).copied().unwrap_or("").to_uppercase()
            )
        }
        _ => first,
    }
}

/// A table's name as written (`db.t`), without quotes.
pub(crate) fn relation_name(relation: &ObjectName) -> String {
    relation
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Everything a query names, collected in one walk.
#[derive(Default)]
struct Names {
    relations: Vec<String>,
    ctes: BTreeSet<String>,
    aliases: BTreeSet<String>,
    /// Aliases given to tables and subqueries, which may qualify a column.
    table_aliases: BTreeSet<String>,
    columns: Vec<String>,
    /// `(qualifier, column)` of each `t.col`.
    qualified: Vec<(String, String)>,
    refusal: Option<String>,
}

impl Names {
    fn alias_select(&mut self, select: &Select) {
        for item in &select.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                self.aliases.insert(alias.value.clone());
            }
        }
        if select.into.is_some() {
            self.refusal = Some("SELECT ... INTO writes a table".into());
        }
    }
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        collect_cte_names(query, &mut self.ctes);
        if query.settings.is_some() {
            self.refusal = Some("a SETTINGS clause (Aurora sets the query's limits)".into());
        }
        if query.format_clause.is_some() {
            self.refusal = Some("a FORMAT clause (Aurora chooses the output format)".into());
        }
        if !query.locks.is_empty() {
            self.refusal = Some("a locking clause".into());
        }
        if let SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) =
            query.body.as_ref()
        {
            self.refusal = Some("a write inside a query".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        self.alias_select(select);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        match factor {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if args.is_some() {
                    self.refusal = Some(format!(
                        "the table function `{name}` (only tables of the schema can be read)"
                    ));
                }
                if let Some(a) = alias {
                    self.table_aliases.insert(a.name.value.clone());
                }
            }
            TableFactor::Derived { alias, .. } => {
                if let Some(a) = alias {
                    self.table_aliases.insert(a.name.value.clone());
                }
            }
            TableFactor::NestedJoin { .. } => {}
            other => {
                self.refusal = Some(format!("`{other}` (only tables of the schema can be read)"));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        self.relations.push(relation_name(relation));
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(ident) if ident.quote_style != Some('\'') => {
                self.columns.push(ident.value.clone());
            }
            // `t.col` or `db.t.col`: the last part is the column.
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last() {
                    self.columns.push(last.value.clone());
                }
                if let [.., qualifier, column] = parts.as_slice() {
                    self.qualified
                        .push((qualifier.value.clone(), column.value.clone()));
                }
            }
            Expr::Lambda(lambda) => {
                for p in lambda.params.iter() {
                    self.aliases.insert(p.name.value.clone());
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::linking::tests::fixture;

    fn checked(sql: &str) -> Result<CheckedQuery, Problem> {
        let (schema, _) = fixture();
        check(sql, &schema, "default")
    }

    #[test]
    fn extracts_the_query_from_an_answer() {
        assert_eq!(
            extract_sql("SELECT ", "count() FROM t;\nmore"),
            "SELECT count() FROM t"
        );
        assert_eq!(
            extract_sql("", "Here you go:\n```sql\nSELECT 1\n```\nThis counts."),
            "SELECT 1"
        );
        assert_eq!(
            extract_sql("SELECT ", "1\n\nThis query selects one."),
            "SELECT 1"
        );
        assert_eq!(extract_sql("SELECT ", "1\n```"), "SELECT 1");
        // A fence the token limit cut before it closed.
        assert_eq!(
            extract_sql("", "```sql\nSELECT count()\nFROM t"),
            "SELECT count()\nFROM t"
        );
        assert_eq!(
            extract_sql("SELECT", "  count() FROM t"),
            "SELECT count() FROM t"
        );
        assert_eq!(
            extract_sql("SELECT", "WITH x AS (SELECT 1) SELECT * FROM x"),
            "WITH x AS (SELECT 1) SELECT * FROM x"
        );
        assert_eq!(extract_sql("SELECT", "select 1"), "select 1");
        assert_eq!(
            extract_sql(
                "SELECT",
                " count() FROM t WHERE s = 'a; b' AND `x;y` = 1; DROP TABLE t"
            ),
            "SELECT count() FROM t WHERE s = 'a; b' AND `x;y` = 1"
        );
    }

    #[test]
    fn accepts_a_query_over_known_names() {
        let q = checked(
            "SELECT toStartOfHour(event_time) AS hour, count() AS n FROM demo.events \
             WHERE country = 'DE' GROUP BY hour ORDER BY hour",
        )
        .unwrap();
        assert_eq!(q.tables, ["demo.events"]);
        let q = checked(
            "SELECT p.name, sum(e.revenue) AS total FROM demo.events AS e \
             JOIN demo.products AS p ON e.product_id = p.product_id GROUP BY p.name",
        )
        .unwrap();
        assert_eq!(q.tables, ["demo.events", "demo.products"]);
        checked("WITH t AS (SELECT country FROM demo.events) SELECT count() FROM t").unwrap();
        checked("SELECT arrayMap(x -> x + 1, [quantity]) FROM demo.events").unwrap();
    }

    #[test]
    fn names_unknown_tables_and_columns() {
        let e = checked("SELECT count() FROM demo.orders").unwrap_err();
        assert!(
            matches!(&e, Problem::UnknownTable { name, .. } if name == "demo.orders"),
            "{e:?}"
        );
        let e = checked(
            "SELECT p.name, sum(r.revenue) FROM demo.products AS p JOIN demo.events AS e ON p.product_id = e.product_id GROUP BY p.name",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`r.revenue`: the query gives no table that name; its table aliases are: e, p"
        );
        checked("SELECT events.revenue, demo.events.quantity FROM demo.events").unwrap();
        let e = checked("SELECT sum(revenu) FROM demo.events").unwrap_err();
        assert_eq!(
            e.to_string(),
            "there is no column `revenu` in demo.events; did you mean `revenue`?"
        );
    }

    #[test]
    fn refuses_everything_but_one_read_query() {
        for (sql, expected) in [
            ("DROP TABLE demo.events", "DROP TABLE"),
            (
                "INSERT INTO demo.events SELECT * FROM demo.events",
                "INSERT",
            ),
            ("SELECT 1; DROP TABLE demo.events", "2 statements"),
            ("ALTER TABLE demo.events DELETE WHERE 1", "ALTER"),
            (
                "SELECT * FROM demo.events SETTINGS max_result_rows = 0",
                "SETTINGS",
            ),
            ("SELECT * FROM demo.events INTO OUTFILE 'x'", ""),
            ("SELECT * FROM demo.events FORMAT CSV", "FORMAT"),
            (
                "SELECT * FROM url('http://x', CSV, 'a String')",
                "table function",
            ),
            ("SELECT * FROM system.tables", "no table `system.tables`"),
        ] {
            let e = checked(sql).expect_err(sql).to_string();
            assert!(e.contains(expected), "{sql}: {e}");
        }
    }

    #[test]
    fn clickhouse_syntax_sqlparser_lacks_is_checked_by_tokens() {
        let q =
            checked("SELECT count() FROM demo.events ANY LEFT JOIN demo.products USING product_id");
        if let Ok(q) = q {
            assert!(q.checked_by_tokens || q.tables.len() == 2);
        }
        let (schema, _) = fixture();
        let by_tokens = |sql: &str| check_tokens(sql, "parse".into(), &schema, "default");
        let e = by_tokens("SELECT 1 INTO OUTFILE 'x'").unwrap_err();
        assert!(matches!(e, Problem::NotReadOnly(_)), "{e:?}");
        for sql in [
            "SELECT count() FROM demo.events ANY LEFT JOIN url('http://x/c.csv', CSV, 'a String') USING a",
            "SELECT count() FROM demo.events ANY LEFT JOIN remote('127.0.0.1:9000', 'db', 'tbl') USING a",
            "SELECT count() FROM demo.events ANY LEFT JOIN file ('x.csv') USING a",
        ] {
            let e = by_tokens(sql).unwrap_err();
            assert!(e.to_string().contains("table function"), "{sql}: {e}");
        }
        let e =
            by_tokens("SELECT count() FROM demo.events ANY LEFT JOIN `system`.query_log USING a")
                .unwrap_err();
        assert!(matches!(e, Problem::UnknownTable { .. }), "{e:?}");
        let ok = by_tokens(
            "SELECT count() FROM demo.events ANY LEFT JOIN demo.products USING product_id",
        )
        .unwrap();
        assert_eq!(ok.tables, ["demo.events", "demo.products"]);
        let ok = by_tokens("WITH t AS (SELECT 1) SELECT * FROM t ANY LEFT JOIN (SELECT 1) USING x")
            .unwrap();
        assert!(ok.tables.is_empty());
        let e = by_tokens("SHOW TABLES").unwrap_err();
        assert!(matches!(e, Problem::Parse(_)), "{e:?}");
    }

    #[test]
    fn spells_foreign_functions_the_clickhouse_way() {
        assert_eq!(
            clickhouse_spelling("SELECT year(date) AS y, HOUR(t), count() FROM x WHERE DATE(t) = '2026-11-20' GROUP BY y"),
            "SELECT toYear(date) AS y, toHour(t), count() FROM x WHERE toDate(t) = '2026-11-20' GROUP BY y"
        );
        assert_eq!(
            clickhouse_spelling("SELECT CAST(sum(revenue) AS DECIMAL) / count() FROM x"),
            "SELECT toFloat64(sum(revenue)) / count() FROM x"
        );
        assert_eq!(
            clickhouse_spelling(
                "SELECT device, countIf(event_type = 'purchase', page IN ('/a', '/b,c')) FROM t GROUP BY device"
            ),
            "SELECT device, countIf(event_type = 'purchase' AND page IN ('/a', '/b,c')) FROM t GROUP BY device"
        );
        // `countIf(x, cond)` with a value first is ClickHouse's own meaning: left alone.
        assert_eq!(
            clickhouse_spelling("SELECT countIf(revenue, device = 'mobile') FROM t"),
            "SELECT countIf(revenue, device = 'mobile') FROM t"
        );
        assert_eq!(
            clickhouse_spelling("SELECT CAST(x AS Decimal(10, 2)) FROM t"),
            "SELECT CAST(x AS Decimal(10, 2)) FROM t"
        );
    }

    #[test]
    fn date_times_get_their_seconds() {
        assert_eq!(
            clickhouse_spelling(
                "SELECT count() FROM demo.events WHERE event_time >= '2026-11-17 18:30' AND page = 'x 12:00'"
            ),
            "SELECT count() FROM demo.events WHERE event_time >= '2026-11-17 18:30:00' AND page = 'x 12:00'"
        );
    }

    #[test]
    fn casts_decimals_for_quantiles() {
        let (schema, _) = fixture();
        assert_eq!(
            cast_decimal_quantiles(
                "SELECT country, median(revenue), quantile(0.9)(e.revenue), median(quantity) FROM demo.events AS e GROUP BY country",
                &schema,
                "default"
            ),
            "SELECT country, median(toFloat64(revenue)), quantile(0.9)(toFloat64(e.revenue)), median(quantity) FROM demo.events AS e GROUP BY country"
        );
    }

    #[test]
    fn qualifies_bare_table_names() {
        let (schema, _) = fixture();
        assert_eq!(
            qualify_tables(
                "SELECT count() FROM events WHERE x IN (SELECT 1 FROM products)",
                &schema
            ),
            "SELECT count() FROM demo.events WHERE x IN (SELECT 1 FROM demo.products)"
        );
        assert_eq!(
            qualify_tables("WITH events AS (SELECT 1) SELECT * FROM events", &schema),
            "WITH events AS (SELECT 1) SELECT * FROM events"
        );
        assert_eq!(
            qualify_tables("SELECT * FROM\n  weather", &schema),
            "SELECT * FROM\n  vega.weather"
        );
    }
}
