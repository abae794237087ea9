//! A GBNF grammar, made from the live schema, that the local model's answer must follow
//! (llama.cpp checks each token against it, see `llama::pick_token`). The answer continues
//! a forced `SELECT `, so the grammar describes the rest of one query:
//!
//! - no statement separator except one final `;`, so no second statement can follow;
//! - upper-case words only from a list of read-only SQL keywords and common function names,
//!   so `DROP`, `INSERT`, `SETTINGS`, `FORMAT`, `INTO OUTFILE` cannot be written in capitals;
//! - after an upper-case `FROM` or `JOIN`, only a table of the schema or a subquery.
//!
//! It is lexical on purpose: a full SQL grammar makes every token check slow and rejects
//! valid ClickHouse the grammar's author did not foresee. What it cannot see (a lower-case
//! `drop`, a column of the wrong table) the validator and the read-only session refuse.

use std::collections::BTreeSet;

use crate::warehouse::schema::TableInfo;

/// Upper-case words a read-only query may contain.
const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "ANY",
    "ARRAY",
    "AS",
    "ASC",
    "BETWEEN",
    "BY",
    "CASE",
    "CAST",
    "CROSS",
    "DAY",
    "DESC",
    "DISTINCT",
    "ELSE",
    "END",
    "FALSE",
    "FINAL",
    "FULL",
    "GLOBAL",
    "GROUP",
    "HAVING",
    "HOUR",
    "ILIKE",
    "IN",
    "INNER",
    "INTERVAL",
    "IS",
    "LEFT",
    "LIKE",
    "LIMIT",
    "MINUTE",
    "MONTH",
    "NOT",
    "NULL",
    "NULLS",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "PREWHERE",
    "QUARTER",
    "RIGHT",
    "SECOND",
    "SELECT",
    "SEMI",
    "THEN",
    "TOTALS",
    "TRUE",
    "UNION",
    "USING",
    "WEEK",
    "WHEN",
    "WHERE",
    "WITH",
    "YEAR",
    "FIRST",
    "LAST",
    "ROLLUP",
    "CUBE",
    "TIES",
    "FILL",
    "STEP",
    "TO",
    // Functions models like to write in capitals (ClickHouse accepts these case-insensitively).
    "AVG",
    "COALESCE",
    "COUNT",
    "IF",
    "IFNULL",
    "LOWER",
    "MAX",
    "MIN",
    "NOW",
    "NULLIF",
    "ROUND",
    "SUM",
    "UPPER",
    "ABS",
    "LENGTH",
    "SUBSTRING",
    "TRIM",
    "EXTRACT",
    "DATE",
    "TIMESTAMP",
];

fn literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

fn alternatives<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let set: BTreeSet<&str> = items.into_iter().collect();
    set.into_iter().map(literal).collect::<Vec<_>>().join(" | ")
}

/// The grammar for a query over `tables` (usually the linked ones plus any the question
/// might join).
pub fn for_tables<'a>(tables: impl IntoIterator<Item = &'a TableInfo>) -> String {
    let tables: Vec<&TableInfo> = tables.into_iter().collect();
    let mut table_names: Vec<String> = Vec::new();
    let mut upper_names: Vec<String> = Vec::new();
    for t in &tables {
        table_names.push(t.qualified_name());
        table_names.push(t.name.clone());
        table_names.push(format!("`{}`.`{}`", t.database, t.name));
        for name in std::iter::once(&t.name)
            .chain(std::iter::once(&t.database))
            .chain(t.columns.iter().map(|c| &c.name))
        {
            // Names that start with a capital must be listed, or `word` would refuse them.
            if name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                upper_names.push(name.clone());
            }
        }
    }
    let table_alt = if table_names.is_empty() {
        "\"(\"".to_string()
    } else {
        alternatives(table_names.iter().map(String::as_str))
    };
    let upper_alt = alternatives(
        KEYWORDS
            .iter()
            .copied()
            .chain(upper_names.iter().map(String::as_str)),
    );
    format!(
        r#"root ::= item* (";" [ \t\n]*)?
item ::= from | word | number | string | quoted | punct | space
from ::= ("FROM" | "JOIN") space+ (table | "(")
table ::= {table_alt}
word ::= lower | upper
lower ::= [a-z_] [a-zA-Z0-9_]*
upper ::= ({upper_alt}) [a-z0-9_]*
number ::= [0-9]+ ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
string ::= "'" ([^'\\] | "\\" [^\n] | "''")* "'"
quoted ::= "`" [^`\n]+ "`" | "\"" [^"\n]+ "\""
punct ::= [-(),.*+/%<>=!:?\[\]{{}}|^&~]
space ::= [ \t\n]
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::linking::tests::fixture;

    #[test]
    fn lists_the_schema_tables_after_from() {
        let (schema, _) = fixture();
        let g = for_tables(&schema.tables);
        assert!(g.contains("\"demo.events\""), "{g}");
        assert!(g.contains("\"`vega`.`weather`\""), "{g}");
        assert!(!g.contains("\"DROP\""));
        assert!(!g.contains("\"SETTINGS\""));
    }

    #[test]
    fn quotes_literals() {
        assert_eq!(literal("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
